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
}
