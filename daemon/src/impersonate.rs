//! Per-user identity on the clusters: the HTTP caller a shim names in the
//! `x-nskd-user` / `x-nskd-groups` metadata (trusted because only peers of
//! the daemon's own uid are served at all; see docs/security.md) becomes
//! [`Caller`], held in a task-local for the call ([`scope`], [`current`]),
//! and every request sent for it carries `Impersonate-User` and one
//! `Impersonate-Group` per group ([`client_as`]), so each cluster's RBAC
//! decides and its audit log names the person.

use std::{future::Future, sync::Arc};

use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue, Request, Response};
use kube::client::Body;

/// Longest username or group accepted.
pub const MAX_NAME: usize = 256;
/// Most groups accepted for one caller.
pub const MAX_GROUPS: usize = 64;

/// A username or group that cannot be named to Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

impl From<String> for NameError {
    fn from(s: String) -> Self {
        NameError(s)
    }
}

/// An authenticated caller nskd acts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// Username (`Impersonate-User`).
    pub user: String,
    /// Groups (`Impersonate-Group`, one header each).
    pub groups: Vec<String>,
}

tokio::task_local! {
    static CALLER: Option<Arc<Caller>>;
}

/// Runs `f` on behalf of `caller` (`None`: as the daemon itself).
pub async fn scope<F: Future>(caller: Option<Arc<Caller>>, f: F) -> F::Output {
    CALLER.scope(caller, f).await
}

/// The caller the current call is made for, if any.
pub fn current() -> Option<Arc<Caller>> {
    CALLER.try_with(Clone::clone).ok().flatten()
}

/// A username or group that can travel in an `Impersonate-*` header (or a
/// comma-joined metadata value) and names no Kubernetes system identity.
pub fn check_name(what: &str, name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(NameError(format!(
            "the {what} claim is empty or longer than {MAX_NAME} bytes"
        )));
    }
    if name
        .bytes()
        .any(|b| !(0x20..0x7f).contains(&b) || b == b',')
        || name.trim() != name
    {
        return Err(NameError(format!(
            "the {what} claim holds control, non-ASCII or comma characters or surrounding spaces; nskd cannot name it to Kubernetes"
        )));
    }
    if name.starts_with("system:") {
        return Err(NameError(format!(
            "the {what} {name:?} is a Kubernetes system identity; nskd never acts as one"
        )));
    }
    Ok(())
}

impl Caller {
    /// The caller named by a shim's `x-nskd-user` and `x-nskd-groups`
    /// (comma-separated) metadata; `None` when no user is named.
    pub fn from_metadata(
        user: Option<&str>,
        groups: Option<&str>,
    ) -> Result<Option<Caller>, NameError> {
        let Some(user) = user.filter(|u| !u.is_empty()) else {
            if groups.is_some_and(|g| !g.is_empty()) {
                return Err(NameError(
                    "x-nskd-groups without x-nskd-user: name the user the groups belong to".into(),
                ));
            }
            return Ok(None);
        };
        check_name("username", user)?;
        let groups: Vec<String> = groups
            .filter(|g| !g.is_empty())
            .map(|g| g.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        if groups.len() > MAX_GROUPS {
            return Err(NameError(format!(
                "{} groups named; at most {MAX_GROUPS} are accepted",
                groups.len()
            )));
        }
        for g in &groups {
            check_name("group", g)?;
        }
        Ok(Some(Caller {
            user: user.to_string(),
            groups,
        }))
    }

    /// `user` or `user (group, group)`, for logs and audit entries.
    pub fn subject(&self) -> String {
        if self.groups.is_empty() {
            self.user.clone()
        } else {
            format!("{} ({})", self.user, self.groups.join(", "))
        }
    }

    /// The impersonation headers.
    fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let value = |s: &str| HeaderValue::from_str(s).expect("checked header-safe");
        let mut headers = vec![(
            HeaderName::from_static("impersonate-user"),
            value(&self.user),
        )];
        for g in &self.groups {
            headers.push((HeaderName::from_static("impersonate-group"), value(g)));
        }
        headers
    }
}

/// A client that sends every request of `base` (its connections, TLS,
/// credentials and throttle shared) as `caller`.
pub fn client_as(base: &kube::Client, caller: &Caller) -> kube::Client {
    kube::Client::new(
        Impersonating {
            base: base.clone(),
            headers: Arc::new(caller.headers()),
        },
        base.default_namespace().to_string(),
    )
}

/// The service behind [`client_as`].
#[derive(Clone)]
struct Impersonating {
    base: kube::Client,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
}

impl tower::Service<Request<Body>> for Impersonating {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let h = req.headers_mut();
        // Whatever the request carried, only the caller's identity goes out.
        h.remove("impersonate-user");
        h.remove("impersonate-group");
        h.remove("impersonate-uid");
        for (name, value) in self.headers.iter() {
            h.append(name.clone(), value.clone());
        }
        let base = self.base.clone();
        Box::pin(async move { base.send(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_header_safe_and_not_system() {
        assert!(check_name("username", "alice@example.com").is_ok());
        assert!(check_name("group", "shop-editors").is_ok());
        for bad in [
            "",
            "a\r\nImpersonate-Group: system:masters",
            "a,b",
            " alice",
            "système",
            "system:masters",
            "system:serviceaccount:kube-system:default",
        ] {
            let e = check_name("group", bad).unwrap_err().to_string();
            assert!(e.contains("group"), "{bad:?}: {e}");
        }
        assert!(check_name("username", &"a".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn metadata_names_a_caller_or_nobody() {
        assert_eq!(Caller::from_metadata(None, None), Ok(None));
        assert_eq!(Caller::from_metadata(Some(""), Some("")), Ok(None));
        assert!(Caller::from_metadata(None, Some("readers")).is_err());
        let c = Caller::from_metadata(Some("bob@example.com"), Some("shop-editors,readers"))
            .unwrap()
            .unwrap();
        assert_eq!(c.groups, ["shop-editors", "readers"]);
        assert_eq!(c.subject(), "bob@example.com (shop-editors, readers)");
        assert_eq!(c.headers().len(), 3);
        for (user, groups) in [
            ("bob\nx", ""),
            ("bob", "readers,system:masters"),
            ("bob", "readers,,x"),
            ("system:admin", ""),
        ] {
            assert!(
                Caller::from_metadata(Some(user), Some(groups)).is_err(),
                "{user:?} {groups:?}"
            );
        }
        let many = (0..=MAX_GROUPS)
            .map(|i| format!("g{i}"))
            .collect::<Vec<_>>();
        assert!(Caller::from_metadata(Some("bob"), Some(&many.join(","))).is_err());
    }

    #[tokio::test]
    async fn the_caller_holds_for_the_scope_only() {
        assert!(current().is_none());
        let c = Arc::new(Caller {
            user: "alice".into(),
            groups: vec![],
        });
        let seen = scope(Some(c.clone()), async { current() }).await;
        assert_eq!(seen, Some(c));
        assert!(current().is_none());
    }
}
