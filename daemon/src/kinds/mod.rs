//! Kinds: how a cluster names them (discovery, cached per cluster client)
//! and how the configuration names them (patterns). A leaf: it knows
//! nothing of clusters beyond a `kube::Client`.

pub mod discovery;
pub mod pattern;

pub use discovery::{ApiDiscovery, ResolvedKind};
pub use pattern::{KindId, KindPattern, PatternError};
