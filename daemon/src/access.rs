//! Per-caller policy for OIDC callers: the `[[access]]` rules of their
//! groups (tools offered, read-only, no destructive tools, clusters) and
//! the per-user rate limit (`[http_auth] per_user_qps`, `per_user_burst`),
//! so one runaway agent cannot starve the others. Callers without an OIDC
//! identity (stdio shims, nskctl) are not subject to either.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use nskd_proto::tools::{self, ToolClass};

use crate::{
    config::{AccessRule, HttpAuthConfig},
    impersonate::Caller,
};

/// Users tracked by the rate limiter before idle ones are forgotten.
const MAX_TRACKED_USERS: usize = 10_000;

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The policy.
pub struct Access {
    rules: Vec<AccessRule>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    qps: u32,
    burst: u32,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("rules", &self.rules)
            .field("qps", &self.qps)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl Access {
    /// From `[[access]]` and `[http_auth]`.
    pub fn new(rules: &[AccessRule], auth: &HttpAuthConfig) -> Self {
        let limiter = NonZeroU32::new(auth.per_user_qps).map(|qps| {
            let burst = NonZeroU32::new(auth.per_user_burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_second(qps).allow_burst(burst))
        });
        Self {
            rules: rules.to_vec(),
            limiter,
            qps: auth.per_user_qps,
            burst: auth.per_user_burst,
        }
    }

    /// The rules naming one of `caller`'s groups (or `*`).
    fn rules_of<'a>(&'a self, caller: &'a Caller) -> impl Iterator<Item = &'a AccessRule> {
        self.rules
            .iter()
            .filter(|r| r.group == "*" || caller.groups.contains(&r.group))
    }

    fn refused_everything(&self, caller: &Caller) -> String {
        format!(
            "no [[access]] rule of nskd names a group of {} (groups: {}); ask the nskd operators for an [[access]] rule for one of your groups",
            caller.user,
            if caller.groups.is_empty() {
                "none".to_string()
            } else {
                caller.groups.join(", ")
            }
        )
    }

    /// Whether `rule` offers `tool`.
    fn offers(rule: &AccessRule, tool: &str) -> bool {
        let class = tools::class(tool);
        if rule.read_only && class != ToolClass::Read {
            return false;
        }
        if rule.disable_destructive && class == ToolClass::Destructive {
            return false;
        }
        rule.toolsets.is_empty()
            || rule.tools.iter().any(|t| t == tool)
            || tools::toolset(tool).is_none_or(|set| rule.toolsets.iter().any(|s| s == set))
    }

    /// `Ok` when `caller` may call `tool` (empty: no tool named); else why not.
    pub fn check_tool(&self, caller: &Caller, tool: &str) -> Result<(), String> {
        if self.rules.is_empty() || tool.is_empty() {
            return Ok(());
        }
        let mut rules = self.rules_of(caller).peekable();
        if rules.peek().is_none() {
            return Err(self.refused_everything(caller));
        }
        if rules.any(|r| Self::offers(r, tool)) {
            return Ok(());
        }
        Err(format!(
            "{tool} is not open to {}: the [[access]] rules for the groups {} do not offer it (read_only, disable_destructive or toolsets); use another tool or ask the nskd operators",
            caller.user,
            caller.groups.join(", ")
        ))
    }

    /// The known tools `caller` may not call.
    pub fn hidden_tools(&self, caller: &Caller) -> Vec<String> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        tools::TOOL_TOOLSETS
            .iter()
            .filter(|(tool, _)| self.check_tool(caller, tool).is_err())
            .map(|(tool, _)| tool.to_string())
            .collect()
    }

    /// Whether `caller` may act on `cluster`.
    pub fn allows_cluster(&self, caller: &Caller, cluster: &str) -> bool {
        self.rules.is_empty()
            || self
                .rules_of(caller)
                .any(|r| r.clusters.is_empty() || r.clusters.iter().any(|p| glob(p, cluster)))
    }

    /// Why `caller` may not act on `cluster`.
    pub fn cluster_refusal(&self, caller: &Caller, cluster: &str) -> String {
        let patterns: Vec<&str> = self
            .rules_of(caller)
            .flat_map(|r| r.clusters.iter().map(String::as_str))
            .collect();
        if patterns.is_empty() {
            return self.refused_everything(caller);
        }
        format!(
            "cluster {cluster} is not open to {}: the [[access]] rules of its groups open only {}; name one of those",
            caller.user,
            patterns.join(", ")
        )
    }

    /// `Ok` when `caller` is within its rate; else the limit and when to retry.
    pub fn check_rate(&self, caller: &Caller) -> Result<(), String> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED_USERS {
            limiter.retain_recent();
        }
        limiter.check_key(&caller.user).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            format!(
                "{} made more than [http_auth] per_user_qps = {} calls per second (burst {}); retry in {} ms",
                caller.user,
                self.qps,
                self.burst,
                wait.as_millis().max(1)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(groups: &[&str]) -> Caller {
        Caller {
            user: "alice@example.com".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn rule(group: &str) -> AccessRule {
        AccessRule {
            group: group.into(),
            ..AccessRule::default()
        }
    }

    #[test]
    fn rules_by_group_decide_tools_and_clusters() {
        let auth = HttpAuthConfig::default();
        let open = Access::new(&[], &auth);
        assert!(open.check_tool(&caller(&[]), "resources_delete").is_ok());
        assert!(open.allows_cluster(&caller(&[]), "prod-1"));

        let readers = AccessRule {
            read_only: true,
            clusters: vec!["dev-*".into()],
            ..rule("readers")
        };
        let editors = AccessRule {
            disable_destructive: true,
            toolsets: vec!["core".into(), "changes".into()],
            ..rule("shop-editors")
        };
        let access = Access::new(&[readers, editors], &auth);
        let alice = caller(&["readers"]);
        assert!(access.check_tool(&alice, "pods_list").is_ok());
        let e = access.check_tool(&alice, "resources_delete").unwrap_err();
        assert!(
            e.contains("resources_delete") && e.contains("readers"),
            "{e}"
        );
        assert!(
            access
                .hidden_tools(&alice)
                .contains(&"pods_delete".to_string())
        );
        assert!(
            !access
                .hidden_tools(&alice)
                .contains(&"pods_list".to_string())
        );
        assert!(access.allows_cluster(&alice, "dev-3"));
        assert!(!access.allows_cluster(&alice, "prod-1"));
        assert!(access.cluster_refusal(&alice, "prod-1").contains("dev-*"));

        let bob = caller(&["shop-editors"]);
        assert!(
            access
                .check_tool(&bob, "resources_create_or_update")
                .is_ok()
        );
        assert!(access.check_tool(&bob, "resources_delete").is_err());
        assert!(
            access.check_tool(&bob, "helm_list").is_err(),
            "not in core, changes"
        );
        assert!(access.allows_cluster(&bob, "prod-1"));

        let nobody = caller(&["other"]);
        let e = access.check_tool(&nobody, "pods_list").unwrap_err();
        assert!(
            e.contains("no [[access]] rule") && e.contains("other"),
            "{e}"
        );
        assert!(!access.allows_cluster(&nobody, "dev-1"));
        assert_eq!(
            access.hidden_tools(&nobody).len(),
            tools::TOOL_TOOLSETS.len()
        );
    }

    #[test]
    fn each_user_has_its_own_rate() {
        let auth = HttpAuthConfig {
            per_user_qps: 1,
            per_user_burst: 2,
            ..HttpAuthConfig::default()
        };
        let access = Access::new(&[], &auth);
        let alice = caller(&[]);
        let bob = Caller {
            user: "bob".into(),
            groups: vec![],
        };
        assert!(access.check_rate(&alice).is_ok());
        assert!(access.check_rate(&alice).is_ok());
        let e = access.check_rate(&alice).unwrap_err();
        assert!(
            e.contains("per_user_qps = 1") && e.contains("retry in"),
            "{e}"
        );
        assert!(
            access.check_rate(&bob).is_ok(),
            "bob is not starved by alice"
        );
        let unlimited = Access::new(&[], &HttpAuthConfig::default());
        for _ in 0..100 {
            assert!(unlimited.check_rate(&alice).is_ok());
        }
    }

    #[test]
    fn globs() {
        assert!(glob("prod-*", "prod-1"));
        assert!(glob("*", "x"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("prod-*", "dev-1"));
        assert!(glob("exact", "exact"));
    }
}
