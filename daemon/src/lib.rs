//! nskd: one daemon per Rancher environment.
pub mod config;
pub mod discovery;
pub mod kubeconfig;
pub mod registry;
