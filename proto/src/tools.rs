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
];

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
    }
}
