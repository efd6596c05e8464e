//! nskd's gRPC API v1 and the client side of its Unix socket.
//!
//! Both `mcp-shim` and `nskctl` use this crate to find the socket
//! ([`socket::SocketLocation`]), connect, check the API version and turn
//! errors into messages that say what to do ([`client::NskdClient`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), nskd_proto::client::ConnectError> {
//! use nskd_proto::{client::NskdClient, socket::SocketLocation};
//! let location = SocketLocation::resolve(None, None)?;
//! let client = NskdClient::connect(&location, "example 0.1").await?;
//! println!("daemon {} serves {}", client.info().version, client.info().environment);
//! # Ok(()) }
//! ```

pub mod autostart;
pub mod bearer;
pub mod cli_docs;
pub mod client;
pub mod error_kind;
pub mod escape;
pub mod memory;
pub mod present;
pub mod private;
pub mod refresh_view;
pub mod socket;
pub mod tools;

/// The wire API version both sides must agree on. Bump on any incompatible
/// change to `nskd/v1/*.proto`.
pub const API_VERSION: u32 = 1;

/// gRPC metadata key carrying the caller's session id (one per MCP session).
pub const SESSION_HEADER: &str = "x-nskd-session";
/// gRPC metadata key carrying the caller's client name.
pub const CLIENT_HEADER: &str = "x-nskd-client";
/// Response metadata: the daemon's verdict on a call that succeeded at the
/// gRPC level but failed for the agent ("error", "partial").
pub const OUTCOME_HEADER: &str = "x-nskd-outcome";
/// gRPC metadata: the MCP tool a shim call serves (metrics, audit).
pub const TOOL_HEADER: &str = "x-nskd-tool";
/// gRPC metadata: the authenticated HTTP caller's username (OIDC), as the
/// daemon's `Identity.Authenticate` returned it.
pub const USER_HEADER: &str = "x-nskd-user";
/// gRPC metadata: that caller's groups, comma-separated (each checked
/// comma-free by `Identity.Authenticate`).
pub const GROUPS_HEADER: &str = "x-nskd-groups";
/// Set on statuses the daemon itself produced (so `Unavailable` from a
/// cluster is never taken for a lost daemon connection).
pub const ORIGIN_HEADER: &str = "x-nskd-origin";
/// Set on statuses the daemon produced: the failure's kind
/// ([`error_kind::label`], e.g. `timeout`); see `nskd/v1/errors.proto`.
pub const ERROR_KIND_HEADER: &str = "x-nskd-error-kind";
/// Response metadata (binary): a `v1::ConfirmationNeeded` when a change
/// waits for the user's confirmation (nothing was changed).
pub const CONFIRM_HEADER: &str = "x-nskd-confirm-bin";

/// Generated messages and services of package `nskd.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("nskd.v1");
}
