//! nskd: one daemon per Rancher environment.
pub mod config;
