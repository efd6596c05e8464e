//! Many clusters on a few real apiservers: kubeconfigs named `b0000`...
//! aliasing the rig's clusters, every tenth one unreachable (alternately a
//! refused port and a black hole that accepts and never answers).

use std::path::Path;

use crate::{
    endpoints::{BlackHole, refused_port},
    rig::Rig,
};

/// Where the fleet section of docs/benchmarks.md begins (`bench-fleet`
/// rewrites it; `bench` keeps it).
pub const SECTION_BEGIN: &str =
    "<!-- fleet-bench:begin (scripts/bench fleet rewrites this section) -->";
/// Where it ends.
pub const SECTION_END: &str = "<!-- fleet-bench:end -->";

/// The fleet section of a benchmarks document, markers included.
pub fn section(doc: &str) -> Option<&str> {
    let a = doc.find(SECTION_BEGIN)?;
    let b = doc[a..].find(SECTION_END)? + a;
    Some(&doc[a..b + SECTION_END.len()])
}

/// The unreachable endpoints of a fleet; keep it alive while the fleet is used.
#[derive(Debug)]
pub struct Fleet {
    /// The black hole the black-holed kubeconfigs point at.
    pub hole: BlackHole,
    /// Clusters in all.
    pub clusters: usize,
    /// Clusters with a refused port.
    pub refused: usize,
    /// Black-holed clusters.
    pub black_holed: usize,
}

impl Fleet {
    /// Writes `n` kubeconfigs into `dir`, spread over the rig's `live` clusters.
    pub fn write(rig: &Rig, dir: &Path, n: usize, live: &[&str]) -> Fleet {
        let hole = BlackHole::open();
        let refused = refused_port();
        let (mut dead, mut holes) = (0, 0);
        for i in 0..n {
            let name = format!("b{i:04}");
            let like = live[i % live.len()];
            match (i % 10, (i / 10) % 2) {
                (9, 0) => {
                    rig.write_unreachable(dir, &name, like, refused);
                    dead += 1;
                }
                (9, _) => {
                    rig.write_unreachable(dir, &name, like, hole.port);
                    holes += 1;
                }
                _ => rig.write_alias(dir, &name, like),
            }
        }
        Fleet {
            hole,
            clusters: n,
            refused: dead,
            black_holed: holes,
        }
    }

    /// "50 (3 refused, 2 black-holed)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({} refused, {} black-holed)",
            self.clusters, self.refused, self.black_holed
        )
    }
}
