//! Validated request parts: agent strings become typed names here, once,
//! and URL paths are built only from those (see `docs/security.md`).

pub mod logfilter;
pub mod names;
pub mod path;
pub mod table;

pub use names::InvalidInput;
