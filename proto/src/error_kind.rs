//! The kind of a failure ([`ErrorKind`]) as both sides use it: the daemon
//! turns a kind into a gRPC status ([`status`]), clients read it back
//! ([`kind_of`]) and map it to words ([`gist`]); metrics map it to labels
//! ([`label`]). A kind is never recovered from message text.
//!
//! ```
//! use nskd_proto::{error_kind, v1::ErrorKind};
//! let status = error_kind::status(ErrorKind::Timeout, "cluster a: list pods timed out");
//! assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
//! assert_eq!(error_kind::kind_of(&status), ErrorKind::Timeout);
//! ```

use tonic::{Code, Status, metadata::MetadataValue};

pub use crate::v1::ErrorKind;

/// The kind's short name: the metadata value and metric label
/// (`timeout`, `not_found`, ...; `unspecified` for none).
pub fn label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unspecified => "unspecified",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Refused => "refused",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::Tls => "tls",
        ErrorKind::Dns => "dns",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Invalid => "invalid",
        ErrorKind::Conflict => "conflict",
        ErrorKind::TooLarge => "too_large",
        ErrorKind::Throttled => "throttled",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Internal => "internal",
        ErrorKind::Policy => "policy",
        ErrorKind::Storage => "storage",
    }
}

/// Every kind, for lookups by label.
const ALL: [ErrorKind; 16] = [
    ErrorKind::Unspecified,
    ErrorKind::Timeout,
    ErrorKind::Refused,
    ErrorKind::Unauthorized,
    ErrorKind::Forbidden,
    ErrorKind::Tls,
    ErrorKind::Dns,
    ErrorKind::NotFound,
    ErrorKind::Invalid,
    ErrorKind::Conflict,
    ErrorKind::TooLarge,
    ErrorKind::Throttled,
    ErrorKind::Unavailable,
    ErrorKind::Internal,
    ErrorKind::Policy,
    ErrorKind::Storage,
];

/// The gRPC code of a kind.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::Refused
        | ErrorKind::Tls
        | ErrorKind::Dns
        | ErrorKind::Unavailable
        | ErrorKind::Throttled => Code::Unavailable,
        ErrorKind::Unauthorized => Code::Unauthenticated,
        ErrorKind::Forbidden | ErrorKind::Policy => Code::PermissionDenied,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Invalid => Code::InvalidArgument,
        ErrorKind::Conflict => Code::AlreadyExists,
        ErrorKind::TooLarge | ErrorKind::Storage => Code::ResourceExhausted,
        ErrorKind::Internal | ErrorKind::Unspecified => Code::Internal,
    }
}

/// A status the daemon returns: the kind's code, the kind in
/// [`crate::ERROR_KIND_HEADER`] and [`crate::ORIGIN_HEADER`] set (so a
/// cluster's `Unavailable` is never taken for a lost daemon).
pub fn status(kind: ErrorKind, message: impl Into<String>) -> Status {
    with_kind(Status::new(code(kind), message), kind)
}

/// Marks an existing status as the daemon's, of `kind` (its code is kept).
pub fn with_kind(mut status: Status, kind: ErrorKind) -> Status {
    let metadata = status.metadata_mut();
    metadata.insert(
        crate::ERROR_KIND_HEADER,
        MetadataValue::from_static(label(kind)),
    );
    metadata.insert(crate::ORIGIN_HEADER, MetadataValue::from_static("nskd"));
    status
}

/// The kind the daemon put on a status; `Unspecified` when it has none
/// (an older daemon, or a transport failure that never reached it).
pub fn kind_of(status: &Status) -> ErrorKind {
    status
        .metadata()
        .get(crate::ERROR_KIND_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ALL.into_iter().find(|k| label(*k) == v))
        .unwrap_or(ErrorKind::Unspecified)
}

/// The kind of a proto enum field (unknown numbers read as `Unspecified`).
pub fn from_i32(value: i32) -> ErrorKind {
    ErrorKind::try_from(value).unwrap_or(ErrorKind::Unspecified)
}

/// The words for a kind in a table cell (`None` for `Unspecified`, whose
/// message is shown instead).
pub fn gist(kind: ErrorKind) -> Option<&'static str> {
    Some(match kind {
        ErrorKind::Unspecified => return None,
        ErrorKind::Timeout => "timed out",
        ErrorKind::Refused => "connection refused",
        ErrorKind::Unauthorized => "unauthorized: token expired or invalid",
        ErrorKind::Forbidden => "forbidden: missing RBAC permission",
        ErrorKind::Tls => "TLS/certificate error",
        ErrorKind::Dns => "DNS lookup failed",
        ErrorKind::NotFound => "not found",
        ErrorKind::Invalid => "kubeconfig or request invalid",
        ErrorKind::Conflict => "conflict",
        ErrorKind::TooLarge => "answer too large",
        ErrorKind::Throttled => "throttled by the API server",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Internal => "internal error",
        ErrorKind::Policy => "refused by nskd policy",
        ErrorKind::Storage => "local storage failed",
    })
}

/// Whether a retry may succeed (the source retries these with backoff).
pub fn is_transient(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout | ErrorKind::Refused | ErrorKind::Throttled | ErrorKind::Unavailable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_a_status() {
        for kind in ALL {
            let s = status(kind, "x");
            assert_eq!(kind_of(&s), kind, "{}", label(kind));
            assert_eq!(s.code(), code(kind));
            assert!(s.metadata().get(crate::ORIGIN_HEADER).is_some());
        }
        assert_eq!(kind_of(&Status::unavailable("x")), ErrorKind::Unspecified);
    }

    #[test]
    fn codes_follow_kinds() {
        assert_eq!(code(ErrorKind::Unavailable), Code::Unavailable);
        assert_eq!(code(ErrorKind::Timeout), Code::DeadlineExceeded);
        assert_eq!(code(ErrorKind::Forbidden), Code::PermissionDenied);
        assert_eq!(code(ErrorKind::NotFound), Code::NotFound);
        assert_eq!(code(ErrorKind::Invalid), Code::InvalidArgument);
        assert_eq!(code(ErrorKind::Storage), Code::ResourceExhausted);
        assert_eq!(code(ErrorKind::Internal), Code::Internal);
    }
}
