//! Kubernetes operations behind the tools: kind resolution through API
//! discovery, calls with deadlines, and output shaped for agents.

pub mod describe;
pub mod discovery;
pub mod exec;
pub mod get;
pub mod list;
pub mod logs;
pub mod mutate;
pub mod nodeproxy;
pub mod shape;
pub mod table;

/// Output format of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// A kubectl-style table.
    #[default]
    Table,
    /// YAML documents.
    Yaml,
    /// A JSON array.
    Json,
}

/// Rendered answer of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// Items found.
    pub items: u32,
    /// Items left out (byte cap or limit).
    pub omitted: u32,
    /// Answered from a watch cache rather than the API server.
    pub from_cache: bool,
}
