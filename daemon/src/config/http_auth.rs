//! `[http_auth]`: OpenID Connect for `mcp-shim --http --http-oidc`. The
//! daemon holds these settings (one source of truth); the shim asks it to
//! check each caller's token.

use std::time::Duration;

use super::fields::Reader;

/// Clock skew allowed on `exp`/`nbf`/`iat` when none is configured.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The `[http_auth]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAuthConfig {
    /// The OpenID provider's issuer URL; `None`: OIDC is off.
    pub issuer: Option<String>,
    /// The `aud` tokens must carry.
    pub audience: Option<String>,
    /// Claims every token must carry with exactly this string value (or,
    /// for an array claim, containing it), as `(claim, value)`.
    pub required_claims: Vec<(String, String)>,
    /// The claim naming the user (default `email`).
    pub username_claim: String,
    /// The claim listing the user's groups (default `groups`).
    pub groups_claim: String,
    /// Leeway on token times.
    pub clock_skew: Duration,
    /// The public URL of the MCP endpoint (`https://nskd.example/mcp`);
    /// `None`: taken from each request's Host.
    pub resource: Option<String>,
    /// Act on the clusters as each OIDC caller (Kubernetes impersonation);
    /// `false`: as the daemon's own identity.
    pub impersonate: bool,
    /// Calls per second each OIDC caller may make (0: unlimited).
    pub per_user_qps: u32,
    /// Calls an OIDC caller may make at once beyond that rate.
    pub per_user_burst: u32,
}

/// Default `[http_auth] per_user_qps`.
pub const DEFAULT_PER_USER_QPS: u32 = 10;
/// Default `[http_auth] per_user_burst`.
pub const DEFAULT_PER_USER_BURST: u32 = 30;

/// True for `http://` URLs on a loopback host (a test or sidecar provider).
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Reads `[http_auth]`.
pub(super) fn read(r: &mut Reader) -> HttpAuthConfig {
    let issuer = r
        .string("issuer")
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_string());
    if let Some(url) = &issuer
        && !url.starts_with("https://")
        && !loopback_http(url)
    {
        r.error(
            "issuer",
            format!(
                "{url:?} must be an https:// URL (plain http only on a loopback host): tokens and keys must not travel in clear"
            ),
        );
    }
    let audience = r.string("audience").filter(|s| !s.is_empty());
    if issuer.is_some() && audience.is_none() {
        r.error(
            "audience",
            "is required with issuer: name the client id (or API audience) your provider puts in `aud`, so tokens minted for other applications are refused",
        );
    }
    let mut required_claims = Vec::new();
    for (i, rule) in r
        .strings("required_claims")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match rule.split_once('=') {
            Some((claim, value)) if !claim.trim().is_empty() => {
                required_claims.push((claim.trim().to_string(), value.trim().to_string()));
            }
            _ => r.error(
                &format!("required_claims[{i}]"),
                format!("{rule:?} is not CLAIM=VALUE (e.g. \"email_verified=true\")"),
            ),
        }
    }
    let claim = |r: &mut Reader, key: &str, default: &str| {
        let name = r.string(key).unwrap_or_else(|| default.to_string());
        if name.is_empty() {
            r.error(key, format!("is empty: name a claim (default {default:?})"));
        }
        name
    };
    let username_claim = claim(r, "username_claim", "email");
    let groups_claim = claim(r, "groups_claim", "groups");
    let clock_skew = r.duration("clock_skew").unwrap_or(DEFAULT_CLOCK_SKEW);
    if clock_skew > Duration::from_secs(600) {
        r.error(
            "clock_skew",
            "is longer than 10m: fix the clocks (NTP) instead of accepting expired tokens",
        );
    }
    let resource = r.string("resource").filter(|s| !s.is_empty());
    if let Some(url) = &resource
        && !url.starts_with("https://")
        && !loopback_http(url)
    {
        r.error(
            "resource",
            format!("{url:?} must be the https:// URL clients use for the MCP endpoint"),
        );
    }
    if issuer.is_none() && (audience.is_some() || !required_claims.is_empty() || resource.is_some())
    {
        r.error(
            "issuer",
            "is not set, so audience, required_claims and resource have no effect: set issuer to turn OIDC on",
        );
    }
    let impersonate = r.bool("impersonate").unwrap_or(true);
    let per_user_qps = r.integer("per_user_qps").unwrap_or(DEFAULT_PER_USER_QPS);
    let per_user_burst = r
        .integer("per_user_burst")
        .unwrap_or(DEFAULT_PER_USER_BURST)
        .max(1);
    HttpAuthConfig {
        issuer,
        audience,
        required_claims,
        username_claim,
        groups_claim,
        clock_skew,
        resource,
        impersonate,
        per_user_qps,
        per_user_burst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(loopback_http("http://127.0.0.1:9000/oidc"));
        assert!(loopback_http("http://localhost"));
        assert!(!loopback_http("http://127.0.0.1.evil.example/x"));
        assert!(!loopback_http("http://example.com"));
        assert!(!loopback_http("https://127.0.0.1"));
    }
}
