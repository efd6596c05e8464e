//! `[[access]]`: what the OIDC callers of each group may do through nskd
//! (on top of what each cluster's RBAC lets them do).

use super::fields::Reader;

/// One `[[access]]` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessRule {
    /// The group it applies to (`*`: every OIDC caller).
    pub group: String,
    /// Only tools that change nothing.
    pub read_only: bool,
    /// No tool that deletes, overwrites or runs code.
    pub disable_destructive: bool,
    /// Toolsets offered (empty: all).
    pub toolsets: Vec<String>,
    /// Tools offered beyond those toolsets.
    pub tools: Vec<String>,
    /// Cluster name patterns (`*` wildcards) it opens (empty: all).
    pub clusters: Vec<String>,
}

/// Reads every `[[access]]` entry; errors name the entry and the key.
pub(super) fn read(top: &mut Reader) -> Vec<AccessRule> {
    let mut out = Vec::new();
    for mut r in top.tables("access") {
        let group = r.string("group").unwrap_or_default();
        if group.is_empty() {
            r.error(
                "group",
                "is required: name the OIDC group this rule is for (\"*\" for every caller)",
            );
        }
        let toolsets = r.strings("toolsets").unwrap_or_default();
        if let Err(e) = nskd_proto::tools::check_toolsets(&toolsets, "[[access]] toolsets") {
            r.error("toolsets", e.to_string());
        }
        let tools = r.strings("tools").unwrap_or_default();
        if let Err(e) = nskd_proto::tools::check_tools(&tools, "[[access]] tools") {
            r.error("tools", e.to_string());
        }
        let clusters = r.strings("clusters").unwrap_or_default();
        if clusters.iter().any(String::is_empty) {
            r.error(
                "clusters",
                "holds an empty pattern; use \"*\" for all clusters",
            );
        }
        out.push(AccessRule {
            group,
            read_only: r.bool("read_only").unwrap_or(false),
            disable_destructive: r.bool("disable_destructive").unwrap_or(false),
            toolsets,
            tools,
            clusters,
        });
        r.finish(&super::keys::known("access"));
    }
    out
}
