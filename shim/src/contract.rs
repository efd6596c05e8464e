//! The agent contract: every tool's schema is compacted here, in one place,
//! when the tool list is built. Optional arguments become plain types that
//! are not required, `$defs` are inlined, small enums become `enum`, and the
//! arguments every tool shares get one description written once
//! ([`SHARED`]). New argument structs get all of it for free.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value};

/// The budget for the whole `tools/list` answer (compact JSON, every tool).
#[cfg(test)]
pub const LIST_BUDGET: usize = 16 * 1024;
/// The longest tool description.
#[cfg(test)]
pub const TOOL_DESCRIPTION_MAX: usize = 160;
/// The longest argument description.
#[cfg(test)]
pub const ARG_DESCRIPTION_MAX: usize = 80;

/// Arguments shared by many tools, with the one description each gets
/// (`None`: the name says it, and the server instructions explain cluster
/// targeting, `"*"`, `live` and discovery once). Overrides the struct
/// field's doc comment.
pub const SHARED: &[(&str, Option<&str>)] = &[
    ("cluster", None),
    ("clusters", None),
    ("namespace", None),
    ("name", None),
    ("kind", None),
    ("apiVersion", None),
    ("output", None),
    ("live", None),
    ("labelSelector", None),
    ("fieldSelector", None),
    ("limit", None),
    ("container", None),
    ("dryRun", None),
    ("plan", None),
    ("continue", None),
    ("summary", None),
    ("count_by", None),
    ("columns", None),
    ("fields", None),
    ("sortBy", None),
    ("revision", None),
    ("refresh", None),
    ("minified", None),
    ("force", None),
    ("timeout", Some("Seconds (max 3600).")),
    ("tailLines", None),
    ("tail", None),
    ("since", Some("Seconds.")),
    ("sinceTime", Some("RFC 3339.")),
    ("previous", None),
    ("grep", Some("Regex; (?i) ignores case.")),
    ("pattern", Some("Regex on cluster names.")),
    ("save", None),
    ("command", None),
    ("image", None),
    ("resource", Some("YAML or JSON manifest.")),
    ("patch", None),
    ("type", None),
    ("toRevision", None),
    ("all", Some("Computed values.")),
    ("chart", None),
    ("version", None),
    ("values", None),
    ("status", Some("\"all\" or statuses, e.g. \"failed\".")),
    ("query", Some("File under /logs/; empty lists them.")),
];

/// Keys that only cost bytes in a tool's schema.
const NOISE: &[&str] = &[
    "$schema",
    "$defs",
    "definitions",
    "title",
    "format",
    "additionalProperties",
];

/// Compacts one tool in place: its input schema and its annotations.
pub fn compact_tool(tool: &mut Tool) {
    let mut schema = Value::Object((*tool.input_schema).clone());
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    compact(&mut schema, &defs);
    let schema_required = schema.get("required").cloned().unwrap_or(Value::Null);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            describe_shared(name, prop);
        }
        // `clusters` takes one name too: a tool with both advertises only
        // `clusters` (`cluster` and `context` are still accepted).
        if props.contains_key("clusters") {
            props.remove("cluster");
        }
        // Every tool runs on the active cluster or on `cluster`, as the
        // instructions say once: advertised only where it is required.
        let required = schema_requires(&schema_required, "cluster");
        if !required {
            props.remove("cluster");
        }
        // Explained once in the instructions, accepted by every read.
        props.remove("live");
    }
    if let Value::Object(mut obj) = schema {
        obj.entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        tool.input_schema = Arc::new(obj as JsonObject);
    }
    tool.annotations = tool.annotations.take().and_then(compact_annotations);
}

/// Whether `required` (a schema's list) names `arg`.
fn schema_requires(required: &Value, arg: &str) -> bool {
    required
        .as_array()
        .is_some_and(|r| r.iter().any(|n| n == arg))
}

/// Annotations without the display title and without hints that say what
/// the MCP specification assumes anyway (readOnly false, destructive true,
/// idempotent false, openWorld true); a destructive hint is dropped when
/// the tool only reads.
fn compact_annotations(a: ToolAnnotations) -> Option<ToolAnnotations> {
    let read_only = a.read_only_hint == Some(true);
    let out = ToolAnnotations::from_raw(
        None,
        a.read_only_hint.filter(|r| *r),
        a.destructive_hint.filter(|d| !d && !read_only),
        None,
        a.open_world_hint.filter(|o| !o),
    );
    let empty = out.read_only_hint.is_none()
        && out.destructive_hint.is_none()
        && out.idempotent_hint.is_none()
        && out.open_world_hint.is_none();
    (!empty).then_some(out)
}

/// Replaces a shared argument's description with the table's.
fn describe_shared(name: &str, prop: &mut Value) {
    let Some((_, text)) = SHARED.iter().find(|(n, _)| *n == name) else {
        return;
    };
    if let Value::Object(obj) = prop {
        match text {
            Some(t) => {
                obj.insert("description".into(), Value::from(*t));
            }
            None => {
                obj.remove("description");
            }
        }
    }
}

/// Compacts one schema node and everything under it.
fn compact(v: &mut Value, defs: &Map<String, Value>) {
    let Value::Object(obj) = v else { return };
    inline_ref(obj, defs);
    for key in NOISE {
        obj.remove(*key);
    }
    // What an absent argument means anyway.
    let zero = match obj.get("default") {
        Some(Value::Null | Value::Bool(false)) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if zero {
        obj.remove("default");
    }
    if obj.get("minimum") == Some(&Value::from(0)) {
        obj.remove("minimum");
    }
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for p in props.values_mut() {
            compact(p, defs);
        }
    }
    if let Some(items) = obj.get_mut("items") {
        compact(items, defs);
    }
    // Lists of strings: "array" says enough beside the argument's name and
    // the instructions.
    let string_items = obj.get("items") == Some(&serde_json::json!({"type": "string"}));
    if obj.get("type") == Some(&serde_json::json!(["string", "array"]))
        || (obj.get("type") == Some(&Value::from("array")) && string_items)
    {
        obj.remove("items");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(variants)) = obj.remove(key) {
            let merged = merge_variants(variants, defs);
            match merged {
                Merged::Into(fields) => {
                    for (k, val) in fields {
                        obj.entry(k).or_insert(val);
                    }
                }
                Merged::Kept(variants) => {
                    obj.insert(key.into(), Value::Array(variants));
                }
            }
        }
    }
}

/// Replaces `$ref` by the definition it names (the node's own keys win).
fn inline_ref(obj: &mut Map<String, Value>, defs: &Map<String, Value>) {
    let Some(Value::String(r)) = obj.remove("$ref") else {
        return;
    };
    let name = r.rsplit('/').next().unwrap_or_default();
    if let Some(Value::Object(def)) = defs.get(name) {
        for (k, val) in def {
            obj.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
}

/// What an `anyOf`/`oneOf` became.
enum Merged {
    /// Fields to merge into the parent.
    Into(Map<String, Value>),
    /// Variants that stay a choice.
    Kept(Vec<Value>),
}

/// `null` variants go (optional is "not required"); constants become one
/// `enum` (which needs no type beside it); plain types become one type list; a single variant merges up.
fn merge_variants(variants: Vec<Value>, defs: &Map<String, Value>) -> Merged {
    let mut kept: Vec<Value> = variants
        .into_iter()
        .filter(|v| v.get("type") != Some(&Value::from("null")))
        .map(|mut v| {
            compact(&mut v, defs);
            v
        })
        .collect();
    if kept.len() == 1 {
        if let Value::Object(only) = kept.remove(0) {
            return Merged::Into(only);
        }
        return Merged::Kept(kept);
    }
    if !kept.is_empty() && kept.iter().all(|v| v.get("const").is_some()) {
        let mut fields = Map::new();
        let consts = kept
            .iter()
            .filter_map(|v| v.get("const").cloned())
            .collect();
        fields.insert("enum".into(), Value::Array(consts));
        return Merged::Into(fields);
    }
    let plain = kept.iter().all(|v| {
        v.as_object().is_some_and(|o| {
            o.get("type").is_some_and(Value::is_string)
                && o.keys()
                    .all(|k| matches!(k.as_str(), "type" | "items" | "description"))
        })
    });
    let with_items = kept.iter().filter(|v| v.get("items").is_some()).count();
    if plain && with_items <= 1 {
        let mut fields = Map::new();
        let types = kept.iter().filter_map(|v| v.get("type").cloned()).collect();
        fields.insert("type".into(), Value::Array(types));
        if let Some(items) = kept.iter().find_map(|v| v.get("items").cloned()) {
            fields.insert("items".into(), items);
        }
        return Merged::Into(fields);
    }
    Merged::Kept(kept)
}

#[cfg(test)]
/// The compact JSON size of a `tools/list` answer carrying `tools`.
pub fn list_size(tools: &[Tool]) -> usize {
    let answer = serde_json::json!({ "tools": tools });
    serde_json::to_vec(&answer).map_or(usize::MAX, |b| b.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema_of(v: Value) -> Value {
        let mut tool = Tool::new("t", "d", Arc::new(v.as_object().unwrap().clone()));
        compact_tool(&mut tool);
        Value::Object((*tool.input_schema).clone())
    }

    #[test]
    fn optional_arguments_become_plain_types() {
        let out = schema_of(json!({
            "$schema": "x", "title": "T", "type": "object", "additionalProperties": false,
            "properties": {"n": {"type": ["integer", "null"], "default": null, "format": "uint32", "minimum": 0}}
        }));
        assert_eq!(
            out,
            json!({"type": "object", "properties": {"n": {"type": "integer"}}})
        );
    }

    #[test]
    fn defs_are_inlined_and_enums_and_unions_collapse() {
        let out = schema_of(json!({
            "type": "object",
            "$defs": {
                "Set": {"anyOf": [{"type": "string", "description": "one"},
                                  {"type": "array", "items": {"type": "string"}}]},
                "Fmt": {"oneOf": [{"const": "a", "type": "string", "description": "A"},
                                  {"const": "b", "type": "string"}]}
            },
            "properties": {
                "clusters": {"anyOf": [{"$ref": "#/$defs/Set"}, {"type": "null"}], "description": "long"},
                "output": {"anyOf": [{"$ref": "#/$defs/Fmt"}, {"type": "null"}], "description": "x"},
                "mixed": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {}}]}
            }
        }));
        let props = &out["properties"];
        assert_eq!(props["clusters"]["type"], json!(["string", "array"]));
        assert!(props["clusters"].get("items").is_none(), "{out}");
        assert!(props["clusters"].get("description").is_none(), "{out}");
        assert_eq!(props["output"], json!({"enum": ["a", "b"]}));
        assert!(props["mixed"]["anyOf"].is_array(), "{out}");
        assert!(!out.to_string().contains("$ref") && !out.to_string().contains("$defs"));
    }

    #[test]
    fn annotations_keep_only_what_differs_from_the_spec_defaults() {
        let read =
            ToolAnnotations::from_raw(Some("X".into()), Some(true), Some(false), None, Some(true));
        let out = compact_annotations(read).unwrap();
        assert_eq!(out.read_only_hint, Some(true));
        assert_eq!(
            (out.title, out.destructive_hint, out.open_world_hint),
            (None, None, None)
        );
        let destructive =
            ToolAnnotations::from_raw(None, Some(false), Some(true), Some(false), Some(true));
        assert!(compact_annotations(destructive).is_none());
    }

    /// The whole list fits the budget, and every description its limit.
    #[test]
    fn the_tool_list_fits_its_budget() {
        let tools = crate::tools::NskdTools::tool_list();
        let size = list_size(&tools);
        eprintln!("tools/list: {} tools, {size} bytes", tools.len());
        if let Some(path) = std::env::var_os("NSKD_DUMP_TOOLS") {
            std::fs::write(path, serde_json::to_vec(&tools).unwrap()).unwrap();
        }
        assert!(
            size <= LIST_BUDGET,
            "tools/list is {size} bytes (of {LIST_BUDGET}), over the {LIST_BUDGET}-byte budget: shorten descriptions (shim/src/contract.rs SHARED)"
        );
        for tool in &tools {
            let d = tool.description.as_deref().unwrap_or_default();
            assert!(
                !d.is_empty() && d.len() <= TOOL_DESCRIPTION_MAX,
                "{}: description is {} bytes (1..={TOOL_DESCRIPTION_MAX}): {d}",
                tool.name,
                d.len()
            );
            let schema = Value::Object((*tool.input_schema).clone());
            let text = schema.to_string();
            for noise in ["$ref", "$defs", "\"null\"", "$schema", "\"title\""] {
                assert!(!text.contains(noise), "{}: {noise} in {text}", tool.name);
            }
            for (arg, prop) in schema["properties"].as_object().unwrap() {
                let d = prop["description"].as_str().unwrap_or_default();
                assert!(
                    d.len() <= ARG_DESCRIPTION_MAX,
                    "{}.{arg}: description is {} bytes (max {ARG_DESCRIPTION_MAX}): {d}",
                    tool.name,
                    d.len()
                );
            }
        }
    }
}
