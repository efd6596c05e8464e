//! The daemon's modules import one way (docs/architecture.md): every
//! `crate::x` in a module's non-test code names a module of a lower layer.

use std::{collections::BTreeSet, fs, path::Path};

/// Lowest first; keep in step with docs/architecture.md.
const LAYERS: &[&[&str]] = &[
    &[
        "request",
        "redact",
        "throttle",
        "certexpiry",
        "metrics",
        "child",
        "blocking",
        "impersonate",
        "trim",
    ],
    &["kinds", "counted"],
    &["config"],
    &["audit", "kubeconfig", "obs", "socket", "access"],
    &["error"],
    &["health", "registry", "store"],
    &["pool", "safety", "source", "discovery", "oidc", "watching"],
    &["cache", "metaindex", "probe", "refresh", "check"],
    &["ops", "replication"],
    &["answer"],
    &["helm"],
    &["app"],
    &["api", "watch"],
    &["http"],
    &["server", "cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules named after each `crate::` in `code`, groups
/// (`crate::{a::x, b}`) included.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (1, true);
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                let separator = matches!(c, ',' | '{' | '}');
                if (depth == 0 || (depth == 1 && separator)) && !name.is_empty() {
                    found.insert(std::mem::take(&mut name));
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 && separator {
                    start = true;
                } else if depth == 1 && start && (c.is_alphanumeric() || c == '_') {
                    name.push(c);
                } else if depth == 1 && start && !name.is_empty() {
                    found.insert(std::mem::take(&mut name));
                    start = false;
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found.remove("self");
    found
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer(&module) else {
            problems.push(format!(
                "module `{module}` is in no layer: add it to LAYERS here and to docs/architecture.md"
            ));
            continue;
        };
        for used in imports(&code(&fs::read_to_string(&file).unwrap())) {
            if used == module {
                continue;
            }
            match layer(&used) {
                Some(l) if l < own => {}
                Some(l) => problems.push(format!(
                    "{}: `{module}` (layer {own}) uses `crate::{used}` (layer {l}); move the code down or pass values up",
                    relative.display()
                )),
                None => problems.push(format!(
                    "{}: uses `crate::{used}`, a module in no layer",
                    relative.display()
                )),
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_plain_imports() {
    let found = imports(&code(
        "use crate::{a::{x, y}, b, c::z, e};\nfn f() { crate::d::g(); }\n// crate::f\n",
    ));
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e"]
    );
}
