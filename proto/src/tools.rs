//! What each MCP tool does to a cluster: the one table the daemon decides
//! from (which tools a session may see) and the shim's tool annotations
//! are checked against.

/// How much a tool can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolClass {
    /// Reads only (`readOnlyHint`).
    Read,
    /// Creates, or overwrites what exists (`destructiveHint`): hidden under
    /// `read_only`; under `disable_destructive` the daemon still creates but
    /// refuses to overwrite, per object.
    CreateOrOverwrite,
    /// Deletes, overwrites, runs code (`destructiveHint`): also refused and
    /// hidden under `disable_destructive`.
    Destructive,
    /// Flips a switch that stops or removes nothing and is undone by its
    /// twin (cordon/uncordon, rollout pause): hidden under `read_only` only.
    Reversible,
}

/// Every tool that changes a cluster; any other tool reads.
pub const CHANGING_TOOLS: &[(&str, ToolClass)] = &[
    ("resources_create_or_update", ToolClass::CreateOrOverwrite),
    ("resources_delete", ToolClass::Destructive),
    ("pods_delete", ToolClass::Destructive),
    ("pods_run", ToolClass::Destructive),
    ("pods_exec", ToolClass::Destructive),
    ("resources_scale", ToolClass::Destructive),
    ("rollout_restart", ToolClass::Destructive),
    ("resources_patch", ToolClass::Destructive),
    // Restores an older template: pods are replaced.
    ("rollout_undo", ToolClass::Destructive),
    // Running pods keep running; rollout_resume undoes it.
    ("rollout_pause", ToolClass::Reversible),
    // Starts the rollout held while paused: pods are replaced.
    ("rollout_resume", ToolClass::Destructive),
    // Running pods stay; only new ones are kept off; nodes_uncordon undoes it.
    ("nodes_cordon", ToolClass::Reversible),
    ("nodes_uncordon", ToolClass::Reversible),
    ("nodes_drain", ToolClass::Destructive),
    ("pods_cleanup", ToolClass::Destructive),
    ("helm_install", ToolClass::CreateOrOverwrite),
    // Replaces the release's objects: refused under disable_destructive.
    ("helm_upgrade", ToolClass::Destructive),
    ("helm_rollback", ToolClass::Destructive),
    ("helm_uninstall", ToolClass::Destructive),
];

/// The tools that run the helm CLI: hidden when no helm binary is found.
pub const HELM_WRITE_TOOLS: &[&str] = &[
    "helm_install",
    "helm_upgrade",
    "helm_rollback",
    "helm_uninstall",
];

/// What a change does, in the words `[safety] require_plan` and the
/// `[safety] confirm` rules name. Defined once here; the daemon's change
/// engine tags every change with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Create an object that does not exist.
    Create,
    /// Server-side apply (creates or overwrites).
    Apply,
    /// Patch (merge, JSON or strategic).
    Patch,
    /// Delete an object.
    Delete,
    /// Set replicas to a non-zero count.
    Scale,
    /// Set replicas to zero.
    ScaleToZero,
    /// Start a pod (pods_run).
    Run,
    /// Restart a workload's pods.
    RolloutRestart,
    /// Roll a workload back to an earlier revision.
    RolloutUndo,
    /// Pause a rollout.
    RolloutPause,
    /// Resume a rollout.
    RolloutResume,
    /// Mark a node unschedulable.
    Cordon,
    /// Mark a node schedulable.
    Uncordon,
    /// Cordon a node and evict its pods.
    Drain,
    /// Evict one pod (Eviction API).
    Evict,
    /// Delete finished or evicted pods of a namespace.
    PodsCleanup,
    /// Install a Helm release.
    HelmInstall,
    /// Upgrade a Helm release.
    HelmUpgrade,
    /// Roll a Helm release back to an earlier revision.
    HelmRollback,
    /// Uninstall a Helm release.
    HelmUninstall,
}

/// Every operation with its word.
pub const OPERATIONS: &[(Operation, &str)] = &[
    (Operation::Create, "create"),
    (Operation::Apply, "apply"),
    (Operation::Patch, "patch"),
    (Operation::Delete, "delete"),
    (Operation::Scale, "scale"),
    (Operation::ScaleToZero, "scale_to_zero"),
    (Operation::Run, "run"),
    (Operation::RolloutRestart, "rollout_restart"),
    (Operation::RolloutUndo, "rollout_undo"),
    (Operation::RolloutPause, "rollout_pause"),
    (Operation::RolloutResume, "rollout_resume"),
    (Operation::Cordon, "cordon"),
    (Operation::Uncordon, "uncordon"),
    (Operation::Drain, "drain"),
    (Operation::Evict, "evict"),
    (Operation::PodsCleanup, "pods_cleanup"),
    (Operation::HelmInstall, "helm_install"),
    (Operation::HelmUpgrade, "helm_upgrade"),
    (Operation::HelmRollback, "helm_rollback"),
    (Operation::HelmUninstall, "helm_uninstall"),
];

impl Operation {
    /// Its word ("scale_to_zero").
    pub fn word(self) -> &'static str {
        OPERATIONS
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("", |(_, w)| w)
    }

    /// The operation named `word`, if any.
    pub fn parse(word: &str) -> Option<Self> {
        OPERATIONS.iter().find(|(_, w)| *w == word).map(|(o, _)| *o)
    }

    /// Every word, for error messages.
    pub fn words() -> Vec<&'static str> {
        OPERATIONS.iter().map(|(_, w)| *w).collect()
    }
}

/// The class of `tool`.
pub fn class(tool: &str) -> ToolClass {
    CHANGING_TOOLS
        .iter()
        .find(|(name, _)| *name == tool)
        .map_or(ToolClass::Read, |(_, c)| *c)
}

/// The tools a session may not call under these switches.
pub fn hidden(read_only: bool, disable_destructive: bool) -> Vec<String> {
    CHANGING_TOOLS
        .iter()
        .filter(|(_, c)| read_only || (disable_destructive && *c == ToolClass::Destructive))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The prompts every shim serves; `[[prompts]]` may not reuse these names.
pub const BUILTIN_PROMPTS: &[&str] = &["fleet_health", "debug_pod", "cluster_compare"];

/// Every toolset, in the order `[server] toolsets` documents them.
pub const TOOLSETS: &[&str] = &["core", "changes", "nodes", "helm", "nsk", "clusters"];

/// The toolset of every tool (a test in the shim fails for a tool missing
/// here).
pub const TOOL_TOOLSETS: &[(&str, &str)] = &[
    ("namespaces_list", "core"),
    ("pods_list", "core"),
    ("pods_get", "core"),
    ("pods_log", "core"),
    ("pods_top", "core"),
    ("resources_list", "core"),
    ("resources_get", "core"),
    ("resources_describe", "core"),
    ("events_list", "core"),
    ("rollout_status", "core"),
    ("resources_create_or_update", "changes"),
    ("resources_delete", "changes"),
    ("resources_scale", "changes"),
    ("pods_delete", "changes"),
    ("pods_run", "changes"),
    ("pods_exec", "changes"),
    ("rollout_restart", "changes"),
    ("resources_patch", "changes"),
    ("rollout_history", "core"),
    ("rollout_undo", "changes"),
    ("rollout_pause", "changes"),
    ("rollout_resume", "changes"),
    ("pods_cleanup", "changes"),
    ("nodes_cordon", "nodes"),
    ("nodes_uncordon", "nodes"),
    ("nodes_drain", "nodes"),
    ("helm_list", "helm"),
    ("helm_status", "helm"),
    ("helm_history", "helm"),
    ("helm_get_values", "helm"),
    ("helm_get_manifest", "helm"),
    ("helm_get_notes", "helm"),
    ("helm_install", "helm"),
    ("helm_upgrade", "helm"),
    ("helm_rollback", "helm"),
    ("helm_uninstall", "helm"),
    ("nodes_list", "nodes"),
    ("nodes_log", "nodes"),
    ("nodes_stats_summary", "nodes"),
    ("nodes_top", "nodes"),
    ("nsk_refresh", "nsk"),
    ("nsk_status", "nsk"),
    ("nsk_clusters_discover", "nsk"),
    ("nsk_get", "nsk"),
    ("clusters_refresh_status", "nsk"),
    ("cluster_current", "clusters"),
    ("cluster_use", "clusters"),
    ("clusters_list", "clusters"),
    ("clusters_status", "clusters"),
    ("configuration_view", "clusters"),
];

/// The toolset `tool` belongs to.
pub fn toolset(tool: &str) -> Option<&'static str> {
    TOOL_TOOLSETS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, set)| *set)
}

/// A name in a tool selection that is no toolset or tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// Not a toolset.
    #[error("unknown toolset {name:?} in {origin}; valid toolsets: {}", TOOLSETS.join(", "))]
    Toolset {
        /// The name given.
        name: String,
        /// Where it was given (`[server] toolsets`, `--toolsets`).
        origin: String,
    },
    /// Not a tool.
    #[error("unknown tool {name:?} in {origin}; valid tools: {}", TOOL_TOOLSETS.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", "))]
    Tool {
        /// The name given.
        name: String,
        /// Where it was given (`[server] enabled_tools`, ...).
        origin: String,
    },
}

/// Which tools a session may call: those of the chosen toolsets (all when
/// none are chosen) and the enabled tools, minus the disabled tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSelection {
    /// Toolsets offered (empty: all).
    pub toolsets: Vec<String>,
    /// Tools offered beyond those toolsets.
    pub enabled: Vec<String>,
    /// Tools never offered.
    pub disabled: Vec<String>,
}

/// Checks that every name in `names` is a toolset.
pub fn check_toolsets(names: &[String], origin: &str) -> Result<(), SelectionError> {
    match names.iter().find(|n| !TOOLSETS.contains(&n.as_str())) {
        Some(n) => Err(SelectionError::Toolset {
            name: n.clone(),
            origin: origin.into(),
        }),
        None => Ok(()),
    }
}

/// Checks that every name in `names` is a tool.
pub fn check_tools(names: &[String], origin: &str) -> Result<(), SelectionError> {
    match names.iter().find(|n| toolset(n).is_none()) {
        Some(n) => Err(SelectionError::Tool {
            name: n.clone(),
            origin: origin.into(),
        }),
        None => Ok(()),
    }
}

impl ToolSelection {
    /// Whether `tool` is offered. A tool missing from [`TOOL_TOOLSETS`] is
    /// offered unless disabled.
    pub fn allows(&self, tool: &str) -> bool {
        if self.disabled.iter().any(|d| d == tool) {
            return false;
        }
        if self.toolsets.is_empty() || self.enabled.iter().any(|e| e == tool) {
            return true;
        }
        toolset(tool).is_none_or(|set| self.toolsets.iter().any(|s| s == set))
    }

    /// The known tools this selection does not offer.
    pub fn left_out(&self) -> Vec<String> {
        TOOL_TOOLSETS
            .iter()
            .filter(|(name, _)| !self.allows(name))
            .map(|(name, _)| name.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_hide_by_class() {
        assert!(hidden(false, false).is_empty());
        assert_eq!(hidden(true, false).len(), CHANGING_TOOLS.len());
        let no_destructive = hidden(false, true);
        assert!(no_destructive.contains(&"rollout_restart".to_string()));
        assert!(!no_destructive.contains(&"resources_create_or_update".to_string()));
        assert_eq!(class("pods_list"), ToolClass::Read);
        assert!(!no_destructive.contains(&"nodes_cordon".to_string()));
        assert!(no_destructive.contains(&"nodes_drain".to_string()));
        assert!(hidden(true, false).contains(&"rollout_pause".to_string()));
    }

    #[test]
    fn operation_words_round_trip() {
        for (op, word) in OPERATIONS {
            assert_eq!(Operation::parse(word), Some(*op));
            assert_eq!(op.word(), *word);
        }
        assert_eq!(Operation::parse("Delete"), None);
    }

    #[test]
    fn every_changing_tool_and_toolset_is_in_the_table() {
        for (name, _) in CHANGING_TOOLS {
            assert!(toolset(name).is_some(), "{name} has no toolset");
        }
        for (name, set) in TOOL_TOOLSETS {
            assert!(TOOLSETS.contains(set), "{name}: unknown toolset {set}");
        }
    }

    #[test]
    fn selection_offers_toolsets_plus_enabled_minus_disabled() {
        let all = ToolSelection::default();
        assert!(all.left_out().is_empty());
        let core = ToolSelection {
            toolsets: vec!["core".into()],
            enabled: vec!["cluster_use".into()],
            disabled: vec!["pods_log".into()],
        };
        assert!(core.allows("pods_list") && core.allows("cluster_use"));
        assert!(!core.allows("pods_log") && !core.allows("resources_delete"));
        assert!(core.left_out().contains(&"nodes_list".to_string()));
        let err = check_toolsets(&["core".into(), "kore".into()], "--toolsets").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"kore\"")
                && text.contains("--toolsets")
                && text.contains("core, changes"),
            "{text}"
        );
        let err = check_tools(&["pods_lst".into()], "[server] disabled_tools").unwrap_err();
        assert!(err.to_string().contains("pods_list"), "{err}");
    }
}
