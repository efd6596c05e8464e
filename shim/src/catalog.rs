//! The tool list agents see, generated ahead of time: `tools.jsonl` holds
//! every tool (compact JSON, one per line, in `tools/list` order) as
//! crate::contract compacts it from the `#[tool]` definitions and their
//! argument structs. A session answers `tools/list` from these bytes and
//! generates no schema: the shim links no schema generator for its tools,
//! and its router carries empty schemas (docs/benchmarks.md, "The stdio
//! shim's memory").
//!
//! The test `catalog::tests::tools_jsonl_is_current` regenerates the list
//! and fails when the file is stale; `NSKD_UPDATE_GOLDEN=1 cargo test -p
//! mcp-shim tools_jsonl` rewrites it.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};

/// Every tool, one compact JSON object a line, each starting with its name.
const TOOLS_JSONL: &str = include_str!("tools.jsonl");

/// The schema of a tool's arguments `T` in the tool's router entry. Outside
/// tests it is empty: the list comes from `tools.jsonl`, and nothing reads a
/// router entry's schema (calls deserialize the arguments into `T`).
#[cfg_attr(
    not(test),
    allow(
        clippy::extra_unused_type_parameters,
        reason = "T names the arguments; only the generator test builds their schema"
    )
)]
pub fn input_schema<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    #[cfg(test)]
    {
        rmcp::handler::server::common::schema_for_input::<T>()
            .unwrap_or_else(|e| panic!("{}: {e}", std::any::type_name::<T>()))
    }
    #[cfg(not(test))]
    {
        static EMPTY: std::sync::OnceLock<Arc<JsonObject>> = std::sync::OnceLock::new();
        EMPTY.get_or_init(Default::default).clone()
    }
}

/// Each tool's compact JSON, in `tools/list` order.
pub fn lines() -> impl Iterator<Item = &'static str> {
    TOOLS_JSONL.lines().filter(|l| !l.is_empty())
}

/// The compact JSON of the tool `name`.
pub fn find(name: &str) -> Option<&'static str> {
    lines().find(|l| name_of(l) == Some(name))
}

/// The name a line starts with (`{"name":"…"`; the generator test checks
/// that every line does).
fn name_of(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("{\"name\":\"")?;
    rest.split_once('"').map(|(name, _)| name)
}

/// One tool of the list, parsed.
pub fn parse(json: &str) -> Option<Tool> {
    serde_json::from_str(json)
        .inspect_err(|e| {
            tracing::error!("a built-in tool in shim/src/tools.jsonl does not parse: {e}")
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list as the tool definitions make it today.
    fn generated() -> String {
        let mut router = crate::tools::NskdTools::full_router();
        for route in router.map.values_mut() {
            crate::contract::compact_tool(&mut route.attr);
        }
        router
            .list_all()
            .iter()
            .map(|tool| serde_json::to_string(tool).unwrap() + "\n")
            .collect()
    }

    /// `tools.jsonl` is what the `#[tool]` definitions and argument structs
    /// generate; a change to either fails here until the file is rewritten.
    #[test]
    fn tools_jsonl_is_current() {
        let want = generated();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tools.jsonl");
        if std::env::var_os("NSKD_UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &want).unwrap();
            return;
        }
        assert!(
            TOOLS_JSONL == want,
            "shim/src/tools.jsonl is stale (a #[tool] or an argument struct changed): rewrite it with `NSKD_UPDATE_GOLDEN=1 cargo test -p mcp-shim tools_jsonl`, then review the diff"
        );
    }

    /// Every line names its tool first, and the router has a route for
    /// each tool of the list and no other.
    #[test]
    fn every_listed_tool_has_a_route_and_is_found_by_name() {
        let router = crate::tools::NskdTools::full_router();
        let mut listed = Vec::new();
        for line in lines() {
            let tool = parse(line).expect("every line parses");
            assert_eq!(name_of(line), Some(tool.name.as_ref()), "{line}");
            assert_eq!(find(&tool.name), Some(line));
            assert!(router.has_route(&tool.name), "{} has no route", tool.name);
            listed.push(tool.name.to_string());
        }
        let mut routed: Vec<String> = router
            .list_all()
            .into_iter()
            .map(|t| t.name.into())
            .collect();
        routed.sort();
        listed.sort();
        assert_eq!(listed, routed);
        assert_eq!(find("no_such_tool"), None);
    }

    /// Every `#[tool]` with arguments names its schema through
    /// [`input_schema`]: without it rmcp generates the schema when the
    /// router is built, in every session, and links the generator again.
    #[test]
    fn every_tool_with_arguments_takes_its_schema_from_here() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut tools = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            // This file names the attribute in its test, not as one.
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("catalog.rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for block in source.split("#[tool(").skip(1) {
                let (attribute, rest) = block.split_once(")]").unwrap();
                let signature = rest.split_once("->").unwrap().0;
                tools += 1;
                if signature.contains("Parameters<") {
                    assert!(
                        attribute.contains("input_schema = crate::catalog::input_schema::<"),
                        "{}: a #[tool] without `input_schema = crate::catalog::input_schema::<Args>()`: {}",
                        path.display(),
                        attribute.trim()
                    );
                }
            }
        }
        assert_eq!(tools, lines().count(), "a #[tool] the list does not have");
    }
}
