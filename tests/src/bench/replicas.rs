//! The section of docs/benchmarks.md `scripts/bench replicas` owns
//! (tests/src/bin/bench-replicas.rs writes it; `bench` keeps it).

/// Where it begins.
pub const SECTION_BEGIN: &str =
    "<!-- replicas-bench:begin (scripts/bench replicas rewrites this section) -->";
/// Where it ends.
pub const SECTION_END: &str = "<!-- replicas-bench:end -->";

/// The section in a benchmarks document, markers included.
pub fn section(doc: &str) -> Option<&str> {
    super::marked_section(doc, SECTION_BEGIN, SECTION_END)
}
