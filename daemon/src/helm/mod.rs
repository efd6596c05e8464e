//! Helm releases, read natively from Helm's own storage (no helm binary):
//! [`release`] decodes a record, [`read`] finds and fetches records on a
//! cluster, [`cache`] keeps what lists show per record version, [`answer`] shapes what each tool returns, [`mask`] hides
//! credentials in values and manifests, [`summary`] counts a fleet.

pub mod answer;
pub mod cache;
pub mod mask;
pub mod read;
pub mod release;
pub mod summary;
pub mod write;
