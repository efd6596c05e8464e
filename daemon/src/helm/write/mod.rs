//! Helm writes through the helm CLI: [`chart`] decides which chart
//! references are allowed, [`command`] builds helm's argv from validated
//! values only, [`run`] runs it confined (cleared environment, private
//! kubeconfig and values files, a timeout that kills the process group),
//! [`apply`] makes it a change (dry-run diff, plans, confirmation).

pub mod apply;
pub mod chart;
pub mod command;
pub mod run;
