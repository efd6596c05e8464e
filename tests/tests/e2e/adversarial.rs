//! The trust boundary under attack (issue 13): every tool, every string
//! argument, a corpus of hostile strings, through the real mcp-shim and
//! daemon, on the disruptable rig cluster. The witness is the apiserver's
//! own audit log (`nskd_e2e::apiserver_audit`): the daemon runs as the
//! `nskd` user, so its requests are told from the test's own.
//!
//! Asserted for each call: (a) no sentinel Secret value (nor its base64)
//! in the answer; (b) a value that is not valid for its argument is refused
//! with an error naming the argument; (c) the daemon sent nothing but
//! discovery for an invalid value, and only requests on the intended
//! object for a valid one; (d) the seeded namespaces, Secrets and
//! ConfigMaps are unchanged after the corpus. Then the policy switches
//! (`denied_resources`, `disable_destructive`, `read_only`) and huge
//! cluster lists, with the same witness.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use nskd_e2e::{
    apiserver_audit::{AuditLog, Event, Mark, now_stamp},
    bins::bin,
    daemon::{Daemon, DaemonSpec},
    kubeapi,
    mcp::{Answer, Shim},
    rig::{DISRUPTABLE, Rig},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

/// Every call goes to this cluster (its guard is held by each test).
const CLUSTER: &str = DISRUPTABLE;
/// Object names that exist nowhere: destructive tools aim at these.
const MISSING: &str = "adv-missing";
/// Selectors longer than this are over any sane bound.
const SELECTOR_BOUND: usize = 10_000;

// ---------------------------------------------------------------------------
// Seeded world: namespaces, sentinel Secrets, ConfigMaps that must survive.

/// What a test seeded on [`CLUSTER`]; removed when dropped.
struct World {
    rig: &'static Rig,
    /// `adv-<pid>-<tag>-a`: where reads and writes aim.
    a: String,
    /// A second namespace the attacks try to reach.
    b: String,
    /// A namespace the issue's `scratch?` attack would delete.
    scratch: String,
    /// Sentinel Secret name in `shop` and `default`.
    shared_secret: String,
    /// Every value that must never be answered: sentinels and their base64.
    forbidden: Vec<String>,
    /// A Running pod of `shop` (served by the fake kubelet).
    pod: String,
}

impl World {
    fn namespaces(&self) -> [&str; 5] {
        [&self.a, &self.b, &self.scratch, "shop", "default"]
    }

    /// A watch cache of an earlier valid call keeping itself in sync: a
    /// list or watch of a whole collection (never Secrets), everywhere or
    /// in a seeded namespace. Such requests come at any time, so they are
    /// no call's doing; a cache started for a hostile namespace is not
    /// one of them.
    fn cache_refresh(&self, e: &Event) -> bool {
        matches!(e.verb.as_str(), "list" | "watch")
            && e.object_ref.as_ref().is_some_and(|o| {
                o.name.is_empty()
                    && o.subresource.is_empty()
                    && o.resource != "secrets"
                    && (o.namespace.is_empty() || self.namespaces().contains(&o.namespace.as_str()))
            })
    }

    /// The first forbidden value found in `text`.
    fn leak<'t>(&'t self, text: &str) -> Option<&'t str> {
        self.forbidden
            .iter()
            .find(|s| text.contains(s.as_str()))
            .map(String::as_str)
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn post(rig: &Rig, path: &str, body: Value) {
    kubeapi::call(rig.cluster(CLUSTER), "POST", path, Some(&body.to_string()));
}

fn secret(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"name": name}, "data": {"password": b64(value)}})
}

/// Seeds three `adv-` namespaces with a sentinel Secret and a ConfigMap
/// each, a sentinel Secret in `shop` and `default`, and a Deployment `web`
/// in the first one.
fn seed(rig: &'static Rig, tag: &str) -> World {
    let prefix = format!("adv-{}-{tag}", std::process::id());
    let mut w = World {
        rig,
        a: format!("{prefix}-a"),
        b: format!("{prefix}-b"),
        scratch: format!("{prefix}-scratch"),
        shared_secret: format!("{prefix}-sentinel"),
        forbidden: Vec::new(),
        pod: String::new(),
    };
    let mut forbidden = vec![
        format!("s3cr3t-{CLUSTER}"),
        b64(&format!("s3cr3t-{CLUSTER}")),
    ];
    for ns in [&w.a, &w.b, &w.scratch] {
        post(rig, "/api/v1/namespaces", json!({"metadata": {"name": ns}}));
        let value = format!("SENTINEL-{:016x}", fastrand::u64(..));
        post(
            rig,
            &format!("/api/v1/namespaces/{ns}/secrets"),
            secret("sentinel", &value),
        );
        forbidden.push(b64(&value));
        forbidden.push(value);
        post(
            rig,
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            json!({"metadata": {"name": "keep"}, "data": {"note": "must survive"}}),
        );
    }
    for ns in ["shop", "default"] {
        let value = format!("SENTINEL-{:016x}", fastrand::u64(..));
        post(
            rig,
            &format!("/api/v1/namespaces/{ns}/secrets"),
            secret(&w.shared_secret, &value),
        );
        forbidden.push(b64(&value));
        forbidden.push(value);
    }
    post(
        rig,
        &format!("/apis/apps/v1/namespaces/{}/deployments", w.a),
        json!({"metadata": {"name": "web"}, "spec": {"replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}}),
    );
    let pods: Value = serde_json::from_str(&kubeapi::call(
        rig.cluster(CLUSTER),
        "GET",
        "/api/v1/namespaces/shop/pods?fieldSelector=status.phase%3DRunning",
        None,
    ))
    .expect("pod list JSON");
    let pod = pods["items"][0]["metadata"]["name"]
        .as_str()
        .expect("a Running pod in shop")
        .to_string();
    w.forbidden = forbidden;
    w.pod = pod;
    w
}

/// Removes what [`seed`] made (the namespaces stay Terminating: the rig
/// runs no namespace controller; their names are unique per run).
impl Drop for World {
    fn drop(&mut self) {
        cleanup(self.rig, self);
    }
}

fn cleanup(rig: &Rig, w: &World) {
    let c = rig.cluster(CLUSTER);
    for ns in ["shop", "default"] {
        let _ = kubeapi::try_call(
            c,
            "DELETE",
            &format!("/api/v1/namespaces/{ns}/secrets/{}", w.shared_secret),
            None,
        );
    }
    for ns in [&w.a, &w.b, &w.scratch] {
        let _ = kubeapi::try_call(c, "DELETE", &format!("/api/v1/namespaces/{ns}"), None);
    }
    // A daemon failing these tests deletes the rig's own seed (all Secrets
    // of `shop`, through `shop/secrets?`): put it back as seed.py made it,
    // for the tests that come after.
    let seeded = [
        (
            "secrets/db-credentials",
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "db-credentials", "labels": {"app": "cart"}},
                "data": {"username": b64("shop"), "password": b64(&format!("s3cr3t-{CLUSTER}"))}}),
        ),
        (
            "configmaps/app-config",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
                "data": {"LOG_LEVEL": "info", "FEATURE_X": "true"}}),
        ),
    ];
    for (path, object) in seeded {
        let url = format!("/api/v1/namespaces/shop/{path}");
        if kubeapi::try_call(c, "GET", &url, None).is_err() {
            let collection = url.rsplit_once('/').map_or(url.as_str(), |(coll, _)| coll);
            let _ = kubeapi::try_call(c, "POST", collection, Some(&object.to_string()));
        }
    }
}

/// Names and resourceVersions of the seeded namespaces and of the Secrets
/// and ConfigMaps in them (read directly, as admin).
fn snapshot(rig: &Rig, w: &World) -> BTreeMap<String, String> {
    let c = rig.cluster(CLUSTER);
    let mut out = BTreeMap::new();
    let items = |path: &str| -> Vec<Value> {
        let v: Value = serde_json::from_str(&kubeapi::call(c, "GET", path, None)).expect("JSON");
        v["items"].as_array().cloned().unwrap_or_default()
    };
    let rv = |o: &Value| {
        format!(
            "{} {}",
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default(),
            o["status"]["phase"].as_str().unwrap_or_default()
        )
    };
    for ns in items("/api/v1/namespaces") {
        let name = ns["metadata"]["name"].as_str().unwrap_or_default();
        if w.namespaces().contains(&name) {
            out.insert(format!("namespace {name}"), rv(&ns));
        }
    }
    for ns in w.namespaces() {
        for kind in ["secrets", "configmaps"] {
            for o in items(&format!("/api/v1/namespaces/{ns}/{kind}")) {
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                out.insert(format!("{kind} {ns}/{name}"), rv(&o));
            }
        }
    }
    out
}

/// What changed between two snapshots, one line each.
fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| format!("{k}: {:?} -> {:?}", before.get(k), after.get(k)))
        .collect()
}

// ---------------------------------------------------------------------------
// The corpus.

/// Hostile strings: (label for the report, value). Built per run because
/// the attacks aim at the seeded namespaces.
fn corpus(w: &World) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        "..",
        "../..",
        "a/../b",
        "%2e%2e",
        "%2E%2E%2F",
        "..%2f",
        "/",
        "x/y",
        "shop/secrets",
        "shop/secrets?",
        "shop/secrets/db?x=",
        "?watch=true",
        "#frag",
        "x?labelSelector=",
        "%2F",
        "%252F",
        "%00",
        "%0d%0a",
        "shop\u{FF0F}secrets",
        "\u{FF0F}",
        "\u{2024}\u{2024}",
        "\u{FF0E}\u{FF0E}",
        "x\ny",
        "x\r\ny",
        "x\ty",
        "x\u{0}y",
        "\u{1b}[31mred",
        "x\u{7f}",
        "   ",
        ".",
        "Shop",
        "-lead",
        "trail-",
        "*",
        "@",
        "\\",
        "x\\y",
        "shop/secrets/db-credentials?",
        "node-1/proxy/pods?x=",
    ]
    .into_iter()
    .map(|s| (s.escape_debug().to_string(), s.to_string()))
    .collect();
    v.push(("a x 300".into(), "a".repeat(300)));
    v.push(("a x 100000".into(), "a".repeat(100_000)));
    for (label, value) in [
        ("<a>/secrets?", format!("{}/secrets?", w.a)),
        ("<scratch>?", format!("{}?", w.scratch)),
        ("<scratch>/secrets?", format!("{}/secrets?", w.scratch)),
        (
            "<b>/secrets/sentinel?",
            format!("{}/secrets/sentinel?", w.b),
        ),
        ("<a>/../<b>", format!("{}/../{}", w.a, w.b)),
    ] {
        v.push((label.into(), value));
    }
    v
}

// ---------------------------------------------------------------------------
// The contract's rules (what the daemon must accept).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// RFC 1123 label.
    Namespace,
    /// One path segment, <= 253 bytes, no `/ ? # % \`, not `.`/`..`, no
    /// control characters or whitespace.
    Name,
    /// DNS-1123 subdomain.
    Node,
    /// RFC 1123 label.
    Container,
    /// `v1` or `<dns subdomain>/<version>`.
    ApiVersion,
    /// Letters and digits.
    Kind,
    /// No control characters, bounded length.
    Selector,
    /// A known cluster.
    Cluster,
    /// A known cluster, or `*` (all healthy clusters), in a `clusters` list.
    ClusterEntry,
    /// A relative path under the kubelet's `logs/`.
    Query,
    /// A Helm release name: DNS-1123 subdomain of at most 53 bytes.
    Release,
    /// An optional release name (a filter): empty, or [`Rule::Release`].
    ReleaseFilter,
    /// An optional chart name: letters, digits, `-`, `_`, `.`.
    Chart,
    /// An optional Helm status filter: `all` or known statuses, comma-separated.
    HelmStatus,
    /// No rule in the contract (a request body value): only (a), (c), (d).
    Free,
    /// A plan id: "p-" and 24 lowercase hex digits (or empty: no plan).
    Plan,
    /// A `continue` token: only one the daemon issued for this call (none
    /// in the corpus), or none.
    Token,
    /// A column name (ASCII letters, digits, `-_. %`, at most 64), or none.
    Column,
}

/// Helm's release statuses.
const HELM_STATUSES: &[&str] = &[
    "unknown",
    "deployed",
    "uninstalled",
    "superseded",
    "failed",
    "uninstalling",
    "pending-install",
    "pending-upgrade",
    "pending-rollback",
];

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

impl Rule {
    fn accepts(self, s: &str) -> bool {
        match self {
            Rule::Namespace | Rule::Container => is_label(s),
            Rule::Node => is_subdomain(s),
            Rule::Name => {
                !s.is_empty()
                    && s.len() <= 253
                    && s != "."
                    && s != ".."
                    && !s.chars().any(|c| {
                        matches!(c, '/' | '?' | '#' | '%' | '\\')
                            || c.is_control()
                            || c.is_whitespace()
                    })
            }
            Rule::ApiVersion => {
                s == "v1"
                    || s.split_once('/')
                        .is_some_and(|(g, v)| is_subdomain(g) && is_label(v))
            }
            Rule::Kind => !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()),
            Rule::Selector => s.len() <= SELECTOR_BOUND && !s.chars().any(char::is_control),
            Rule::Cluster => s == CLUSTER,
            Rule::ClusterEntry => s == CLUSTER || s == "*",
            Rule::Query => {
                s.is_empty()
                    || s.split('/').all(|seg| {
                        !seg.is_empty()
                            && seg != "."
                            && seg != ".."
                            && seg
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                    })
            }
            Rule::Release => s.len() <= 53 && is_subdomain(s),
            Rule::ReleaseFilter => s.is_empty() || Rule::Release.accepts(s),
            Rule::Chart => {
                s.len() <= 250
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            }
            Rule::HelmStatus => {
                s.is_empty()
                    || s == "all"
                    || s.split(',').all(|p| HELM_STATUSES.contains(&p.trim()))
            }
            Rule::Free => true,
            Rule::Plan => {
                s.is_empty()
                    || (s.len() == 26
                        && s.starts_with("p-")
                        && s[2..]
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            }
            Rule::Token => s.is_empty(),
            Rule::Column => {
                let t = s.trim();
                t.is_empty()
                    || (s.len() <= 64
                        && !t.starts_with(['.', '$', '{'])
                        && s.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ' | '%')
                        }))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Tools: valid arguments, what a valid call may send, where payloads go.

/// What a tool may send for a valid call.
struct Intent {
    /// `resource` or `resource/subresource` it may read (get, list, watch).
    reads: &'static [&'static str],
    /// Mutating verbs it may send on the intended object (of `reads`).
    mutates: &'static [&'static str],
    /// The object name is not an argument (pods_run derives it).
    name_any: bool,
}

const NOTHING: Intent = Intent {
    reads: &[],
    mutates: &[],
    name_any: false,
};

fn intent(tool: &str) -> Intent {
    let r = |reads, mutates| Intent {
        reads,
        mutates,
        name_any: false,
    };
    match tool {
        "events_list" => r(&["events"], &[]),
        "namespaces_list" => r(&["namespaces"], &[]),
        "nodes_list" => r(&["nodes"], &[]),
        "nodes_log" | "nodes_stats_summary" => r(&["nodes", "nodes/proxy"], &[]),
        "nodes_top" | "pods_top" => r(&["nodes", "pods"], &[]),
        "pods_get" | "pods_list" => r(&["pods"], &[]),
        "pods_log" => r(&["pods", "pods/log"], &[]),
        "pods_exec" => r(&["pods", "pods/exec"], &["create"]),
        "pods_delete" => r(&["pods"], &["delete"]),
        "pods_run" => Intent {
            reads: &["pods"],
            mutates: &["create", "patch"],
            name_any: true,
        },
        "resources_list" | "resources_get" => r(&["configmaps"], &[]),
        "resources_describe" => r(&["configmaps", "events"], &[]),
        "resources_delete" => r(&["configmaps"], &["delete"]),
        "resources_patch" => r(&["configmaps"], &["patch"]),
        "resources_create_or_update" => r(&["configmaps"], &["patch", "create", "update"]),
        "resources_scale" => r(&["deployments", "deployments/scale"], &["patch", "update"]),
        "rollout_restart" => r(&["deployments"], &["patch"]),
        "rollout_status" => r(&["deployments", "replicasets", "pods"], &[]),
        "rollout_history" => r(&["deployments", "replicasets"], &[]),
        "rollout_undo" => r(&["deployments", "replicasets"], &["patch"]),
        "rollout_pause" | "rollout_resume" => r(&["deployments"], &["patch"]),
        "nodes_cordon" | "nodes_uncordon" => r(&["nodes"], &["patch"]),
        "nodes_drain" => r(&["nodes", "pods", "pods/eviction"], &["patch", "create"]),
        "pods_cleanup" => r(&["pods"], &["delete"]),
        // Release records: listed by label, read one by one (none exist in
        // the adversarial world, so only lists are sent).
        t if t.starts_with("helm_") => r(&["secrets", "configmaps"], &[]),
        _ => NOTHING,
    }
}

/// A ConfigMap manifest as JSON (hostile strings embedded safely).
fn manifest(name: &str, namespace: Option<&str>) -> String {
    let mut meta = json!({"name": name});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"from": "adversarial"}})
        .to_string()
}

/// Valid arguments of every tool (reads aim at real objects holding or
/// next to sentinels; destructive tools at [`MISSING`]).
fn base_args(tool: &str, w: &World) -> Value {
    let a = w.a.as_str();
    match tool {
        "cluster_use" | "clusters_status" => json!({"cluster": CLUSTER}),
        // Reads answer JSON: what an unmasked Secret would show up in.
        "events_list" | "pods_list" => {
            json!({"namespace": a, "output": "json"})
        }
        "pods_top" => json!({"namespace": a}),
        "nodes_log" => json!({"name": "node-1", "query": "kubelet.log", "tailLines": 1}),
        "nodes_stats_summary" => json!({"name": "node-1"}),
        "nodes_top" | "nodes_list" | "namespaces_list" => json!({}),
        "nsk_clusters_discover" => json!({"pattern": "^c1-"}),
        "nsk_get" => json!({"cluster_name": CLUSTER}),
        "pods_delete" => json!({"name": MISSING, "namespace": a}),
        "pods_exec" => json!({"name": w.pod, "namespace": "shop", "command": ["echo", "hi"]}),
        "pods_get" => json!({"name": w.pod, "namespace": "shop", "output": "json"}),
        "pods_log" => json!({"name": w.pod, "namespace": "shop", "tail": 1}),
        "pods_run" => json!({"image": "registry.invalid/adv:1", "namespace": a, "name": "adv-run"}),
        "resources_create_or_update" => json!({"resource": manifest("adv-applied", Some(a))}),
        "resources_delete" => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": MISSING, "namespace": a})
        }
        "resources_describe" => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "namespace": a})
        }
        "resources_get" => json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "keep",
                                  "namespace": a, "output": "json"}),
        "resources_list" => {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": a, "output": "json"})
        }
        "resources_patch" => json!({"apiVersion": "v1", "kind": "ConfigMap", "name": MISSING,
                                    "namespace": a, "patch": {"data": {"x": "y"}}}),
        "resources_scale" => json!({"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": MISSING, "namespace": a, "scale": 1}),
        "rollout_restart" => {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": MISSING, "namespace": a})
        }
        "rollout_status" => {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": a})
        }
        "rollout_history" | "rollout_undo" => {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": MISSING, "namespace": a})
        }
        "rollout_pause" | "rollout_resume" => json!({"name": MISSING, "namespace": a}),
        "nodes_cordon" | "nodes_uncordon" => json!({"name": MISSING}),
        "nodes_drain" => json!({"name": MISSING, "timeout": 3}),
        // A namespace without pods: nothing to delete whatever happens.
        "pods_cleanup" => json!({"namespace": MISSING}),
        "helm_list" => json!({"namespace": a, "output": "json"}),
        "helm_install" | "helm_upgrade" => {
            json!({"name": "adv-release", "namespace": a, "chart": "oci://registry.example/adv"})
        }
        t if t.starts_with("helm_") => json!({"name": "adv-release", "namespace": a}),
        _ => json!({}),
    }
}

/// Where a payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A string argument.
    Arg(&'static str),
    /// One entry of `clusters` (a list).
    ClustersEntry,
    /// `command` entry 1 (argv[1]).
    CommandEntry,
    /// `metadata.name` of the applied manifest.
    ManifestName,
    /// `metadata.namespace` of the applied manifest.
    ManifestNamespace,
}

/// One (tool, slot) of the sweep.
struct Case {
    tool: String,
    slot: Slot,
    rule: Rule,
    /// What a refusal must name.
    field: &'static str,
    live: bool,
}

/// The rule and refusal word for a string argument of `tool`.
fn rule_for(tool: &str, arg: &str) -> Option<(Rule, &'static str)> {
    Some(match arg {
        "namespace" => (Rule::Namespace, "namespace"),
        "name" if tool == "helm_list" => (Rule::ReleaseFilter, "name"),
        "name" if tool.starts_with("helm_") => (Rule::Release, "name"),
        "chart" => (Rule::Chart, "chart"),
        "status" => (Rule::HelmStatus, "status"),
        "name" if tool.starts_with("nodes_") => (Rule::Node, "name"),
        "name" => (Rule::Name, "name"),
        "container" => (Rule::Container, "container"),
        "apiVersion" => (Rule::ApiVersion, "apiVersion"),
        "kind" => (Rule::Kind, "kind"),
        "labelSelector" => (Rule::Selector, "labelSelector"),
        "fieldSelector" => (Rule::Selector, "fieldSelector"),
        "cluster" => (Rule::Cluster, "cluster"),
        "query" => (Rule::Query, "query"),
        // A regex and a time: refused or sent encoded (logs_search.rs
        // checks both against the audit log).
        "pattern" | "cluster_name" | "image" | "grep" | "sinceTime" => (Rule::Free, "-"),
        // Helm writes: the values file and the chart version reach only the
        // helm binary, never a URL (helm_writes.rs checks them one by one).
        "values" | "version" => (Rule::Free, "-"),
        "plan" => (Rule::Plan, "plan"),
        "continue" => (Rule::Token, "continue"),
        "sortBy" => (Rule::Column, "sortBy"),
        _ => return None,
    })
}

/// Every (tool, string argument) of tests/golden/tools.json as cases;
/// panics on a string argument this suite does not cover (a new one
/// must be added here).
fn cases() -> Vec<Case> {
    let golden: Value = serde_json::from_str(include_str!("../../golden/tools.json"))
        .expect("tests/golden/tools.json");
    let tools = golden
        .as_array()
        .or_else(|| golden["tools"].as_array())
        .expect("tools array");
    let mut out = Vec::new();
    for t in tools {
        let tool = t["name"].as_str().expect("tool name").to_string();
        let props = t["inputSchema"]["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let has_live = props.contains_key("live");
        for (arg, schema) in &props {
            let is_string = schema["type"] == "string"
                || schema["type"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "string"));
            let mut add = |slot, rule, field, live| {
                out.push(Case {
                    tool: tool.clone(),
                    slot,
                    rule,
                    field,
                    live,
                })
            };
            match arg.as_str() {
                "clusters" => add(Slot::ClustersEntry, Rule::ClusterEntry, "clusters", false),
                "command" => add(Slot::CommandEntry, Rule::Free, "-", false),
                "resource" => {
                    add(Slot::ManifestName, Rule::Name, "name", false);
                    add(Slot::ManifestNamespace, Rule::Namespace, "namespace", false);
                }
                // Enums: the schema refuses any other value.
                "output" | "type" => {}
                a if is_string => {
                    let (rule, field) = rule_for(&tool, a).unwrap_or_else(|| {
                        panic!("{tool}.{a}: a string argument the adversarial suite does not cover; add it to rule_for")
                    });
                    let slot = Slot::Arg(
                        [
                            "namespace",
                            "name",
                            "container",
                            "apiVersion",
                            "kind",
                            "labelSelector",
                            "fieldSelector",
                            "cluster",
                            "query",
                            "pattern",
                            "cluster_name",
                            "image",
                            "grep",
                            "sinceTime",
                            "plan",
                            "chart",
                            "status",
                            "continue",
                            "sortBy",
                            "values",
                            "version",
                        ]
                        .into_iter()
                        .find(|k| *k == a)
                        .expect("known argument"),
                    );
                    add(slot, rule, field, false);
                    if has_live && matches!(a, "namespace" | "name") {
                        add(slot, rule, field, true);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The arguments of one call: `base` with `value` in `slot`.
fn with_payload(tool: &str, base: &Value, slot: Slot, value: &str, w: &World) -> Value {
    let mut args = base.clone();
    match slot {
        Slot::Arg(k) => {
            args[k] = json!(value);
            if tool == "pods_run" && k == "image" {
                // The pod name is then derived from the image.
                args.as_object_mut().expect("object").remove("name");
            }
        }
        Slot::ClustersEntry => args["clusters"] = json!([value]),
        Slot::CommandEntry => args["command"] = json!(["echo", value]),
        Slot::ManifestName => args["resource"] = json!(manifest(value, Some(&w.a))),
        Slot::ManifestNamespace => args["resource"] = json!(manifest("adv-applied", Some(value))),
    }
    args
}

/// Namespace and name a valid call aims at (`None`: none).
fn target(tool: &str, args: &Value) -> (Option<String>, Option<String>) {
    let s = |v: &Value| v.as_str().map(str::to_string);
    if tool == "resources_create_or_update" {
        let doc: Value =
            serde_json::from_str(args["resource"].as_str().unwrap_or("{}")).unwrap_or_default();
        return (
            s(&doc["metadata"]["namespace"]).or(s(&args["namespace"])),
            s(&doc["metadata"]["name"]),
        );
    }
    let namespaced = !tool.starts_with("nodes_") && tool != "namespaces_list";
    let ns = s(&args["namespace"]).or(namespaced.then(|| "default".to_string()));
    (ns, s(&args["name"]))
}

/// Whether `e` is a request a valid call of `tool` aimed at (ns, name) may send.
fn intended(e: &Event, tool: &str, ns: &Option<String>, name: &Option<String>) -> bool {
    if e.is_discovery() {
        return true;
    }
    let Some(o) = &e.object_ref else {
        return false;
    };
    let it = intent(tool);
    let res = if o.subresource.is_empty() {
        o.resource.clone()
    } else {
        format!("{}/{}", o.resource, o.subresource)
    };
    if !it.reads.contains(&res.as_str()) {
        return false;
    }
    let ns_ok = o.namespace.is_empty() || Some(&o.namespace) == ns.as_ref();
    let name_ok = it.name_any || o.name.is_empty() || Some(&o.name) == name.as_ref();
    if e.is_mutating() {
        it.mutates.contains(&e.verb.as_str())
            && Some(&o.namespace) == ns.as_ref()
            && (it.name_any || o.name.is_empty() || Some(&o.name) == name.as_ref())
    } else {
        ns_ok && name_ok
    }
}

/// A collection read of the base call's kind in its namespace: what a
/// watch cache started by an earlier valid call may still send.
fn base_background(e: &Event, tool: &str, base_ns: &Option<String>) -> bool {
    !e.is_mutating()
        && e.object_ref.as_ref().is_some_and(|o| {
            o.name.is_empty()
                && intent(tool).reads.contains(&o.resource.as_str())
                && (o.namespace.is_empty() || Some(&o.namespace) == base_ns.as_ref())
        })
}

// ---------------------------------------------------------------------------
// Answers.

/// Whether `text` names `field` as a word (`namespace` does not name `name`).
fn names_field(text: &str, field: &str) -> bool {
    let lower = text.to_lowercase();
    let field = field.to_lowercase();
    lower.match_indices(&field).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + field.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// `answer` is an error naming `field`; the reason when it is not.
fn refused(answer: &Answer, field: &str) -> Result<(), String> {
    if !answer.is_error {
        return Err(format!("answered without error: {}", excerpt(&answer.text)));
    }
    if !names_field(&answer.text, field) {
        return Err(format!(
            "the error does not name `{field}`: {}",
            excerpt(&answer.text)
        ));
    }
    Ok(())
}

/// Asserts that `answer` is an error naming `field` (MCP `isError`, or a
/// JSON-RPC error).
fn assert_refused(answer: &Answer, field: &str) {
    if let Err(why) = refused(answer, field) {
        panic!("expected a refusal naming `{field}`: {why}");
    }
}

fn excerpt(text: &str) -> String {
    let t: String = text.chars().take(240).collect();
    t.escape_debug().to_string()
}

/// One failed expectation of the sweep.
struct Failure {
    what: &'static str,
    tool: String,
    field: String,
    payload: String,
    detail: String,
}

/// Failures grouped as "what — tool.field: payloads", with one example each.
fn report(failures: &[Failure]) -> String {
    let mut groups: BTreeMap<(String, String), (Vec<String>, String)> = BTreeMap::new();
    for f in failures {
        let g = groups
            .entry((f.what.to_string(), format!("{} {}", f.tool, f.field)))
            .or_insert_with(|| (Vec::new(), f.detail.clone()));
        if !g.0.contains(&f.payload) {
            g.0.push(f.payload.clone());
        }
    }
    let mut out = format!("{} failures in {} groups\n", failures.len(), groups.len());
    for ((what, at), (payloads, example)) in groups {
        out.push_str(&format!(
            "- {what} — {at}: [{}]\n    e.g. {example}\n",
            payloads.join(", ")
        ));
    }
    out
}

fn spec(top: &str) -> DaemonSpec {
    DaemonSpec {
        default_cluster: Some(CLUSTER.into()),
        top: top.into(),
        // No background probes in the audit windows (one at start only);
        // a request the apiserver never answers gives up after 3 s.
        sections: "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"1h\"\n[pool]\nrequest_timeout = \"3s\"\n".into(),
        ..DaemonSpec::default()
    }
}

/// A daemon on [`CLUSTER`] as the `nskd` user, started once its first
/// probe is done (so that the probe's requests fall in no call's window).
fn start(rig: &Rig, top: &str) -> Daemon {
    let d = Daemon::start(&spec(top), |dir| {
        rig.write_nskd_kubeconfigs(dir, &[CLUSTER])
    });
    let probed = crate::eventually(15.0, || {
        let status = d.nskctl_json(&["status", CLUSTER]);
        (status["clusters"][0]["status"] != "Unknown").then_some(())
    });
    assert!(
        probed.is_some(),
        "{CLUSTER} was not probed within 15s; log:\n{}",
        d.log_text()
    );
    d
}

/// One call and the daemon's requests received while it ran.
async fn call_seen(shim: &Shim, audit: &AuditLog, tool: &str, args: Value) -> (Answer, Vec<Event>) {
    let mark: Mark = audit.mark();
    let from = now_stamp();
    let answer = shim.try_call(tool, args).await.unwrap_or_else(|e| Answer {
        text: e,
        parts: Vec::new(),
        is_error: true,
    });
    (answer, audit.nskd_requests_since(&mark, &from))
}

fn lines(events: &[Event]) -> String {
    events
        .iter()
        .map(Event::describe)
        .collect::<Vec<_>>()
        .join("\n  ")
}

// ---------------------------------------------------------------------------
// The sweep.

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_refuses_hostile_strings_and_sends_only_what_it_was_asked() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let _kubelet = rig.start_fake_kubelet(CLUSTER);
    let w = seed(rig, "sweep");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "");
    let shim = Shim::start(&d.socket).await;
    let payloads = corpus(&w);
    let all_cases = cases();
    let started = std::time::Instant::now();
    let before = snapshot(rig, &w);
    let mut failures: Vec<Failure> = Vec::new();
    let mut calls = 0usize;

    // Debugging knob: only the tools whose name contains this.
    let only = std::env::var("NSKD_ADV_TOOLS").unwrap_or_default();
    let mut slow: Vec<(u128, String)> = Vec::new();
    for case in all_cases.iter().filter(|c| c.tool.contains(&only)) {
        let case_started = std::time::Instant::now();
        let mut base = base_args(&case.tool, &w);
        if case.live {
            base["live"] = json!(true);
        }
        let (base_ns, _) = target(&case.tool, &base);
        // Warm up (watch caches, discovery) with the valid call.
        let _ = shim.try_call(&case.tool, base.clone()).await;
        let mark = audit.mark();
        let mut done: Vec<(String, String, Value, Answer, String)> = Vec::new();
        for (label, value) in &payloads {
            let args = with_payload(&case.tool, &base, case.slot, value, &w);
            let from = now_stamp();
            let call_started = std::time::Instant::now();
            let answer = match shim.try_call(&case.tool, args.clone()).await {
                Ok(a) => a,
                Err(e) => {
                    failures.push(Failure {
                        what: "the MCP session failed",
                        tool: case.tool.clone(),
                        field: format!("{:?}", case.slot),
                        payload: label.clone(),
                        detail: e,
                    });
                    panic!("{}", report(&failures));
                }
            };
            calls += 1;
            slow.push((
                call_started.elapsed().as_millis(),
                format!("{} {:?} {label}", case.tool, case.slot),
            ));
            done.push((label.clone(), value.clone(), args, answer, from));
        }
        eprintln!(
            "[adversarial] {} {:?}{}: {} calls in {:.1}s",
            case.tool,
            case.slot,
            if case.live { " live" } else { "" },
            done.len(),
            case_started.elapsed().as_secs_f64()
        );
        let (events, fence) = audit.fence(&mark);
        let nskd: Vec<Event> = events.into_iter().filter(Event::is_nskd).collect();
        let field_label = format!("{:?}{}", case.slot, if case.live { " live" } else { "" });
        for (i, (label, value, args, answer, from)) in done.iter().enumerate() {
            let to = done.get(i + 1).map_or(fence.as_str(), |n| n.4.as_str());
            let seen: Vec<&Event> = nskd
                .iter()
                .filter(|e| e.received_within(from, to))
                .collect();
            let mut fail = |what: &'static str, detail: String| {
                failures.push(Failure {
                    what,
                    tool: case.tool.clone(),
                    field: field_label.clone(),
                    payload: label.clone(),
                    detail,
                })
            };
            // (a) no sentinel.
            if let Some(s) = w.leak(&answer.text) {
                fail(
                    "(a) a sentinel Secret value was answered",
                    format!("{s} in {}", excerpt(&answer.text)),
                );
            }
            let valid = case.rule.accepts(value);
            if !valid {
                // (b) refused, naming the argument.
                // A control character inside a YAML manifest makes the
                // whole `resource` unreadable: refusing `resource` is right.
                let yaml_unreadable =
                    matches!(case.slot, Slot::ManifestName | Slot::ManifestNamespace)
                        && value.chars().any(char::is_control)
                        && refused(answer, "resource").is_ok();
                if case.field != "-"
                    && !yaml_unreadable
                    && let Err(why) = refused(answer, case.field)
                {
                    fail("(b) invalid value not refused naming the argument", why);
                }
                // (c) nothing sent but discovery.
                let sent: Vec<Event> = seen
                    .iter()
                    .filter(|e| {
                        !e.is_discovery()
                            && !base_background(e, &case.tool, &base_ns)
                            && !w.cache_refresh(e)
                    })
                    .map(|e| (*e).clone())
                    .collect();
                if !sent.is_empty() {
                    fail("(c) requests sent for an invalid value", lines(&sent));
                }
            } else {
                // (c) only what the tool intended.
                let (ns, name) = target(&case.tool, args);
                let stray: Vec<Event> = seen
                    .iter()
                    .filter(|e| !intended(e, &case.tool, &ns, &name) && !w.cache_refresh(e))
                    .map(|e| (*e).clone())
                    .collect();
                if !stray.is_empty() {
                    fail(
                        "(c) requests beyond the intended object",
                        format!("intended ns {ns:?} name {name:?}: {}", lines(&stray)),
                    );
                }
            }
        }
    }
    eprintln!(
        "[adversarial] {calls} hostile calls over {} (tool, argument) cases in {:.1}s",
        all_cases.len(),
        started.elapsed().as_secs_f64()
    );
    slow.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (ms, what) in slow.iter().take(15) {
        eprintln!("[adversarial] slow: {ms} ms {what}");
    }

    // (d) nothing changed (what the valid calls may create is named).
    let after = snapshot(rig, &w);
    let changed: Vec<String> = diff(&before, &after)
        .into_iter()
        .filter(|l| !l.starts_with(&format!("configmaps {}/", w.a)) || l.contains("keep"))
        .collect();
    if !changed.is_empty() {
        failures.push(Failure {
            what: "(d) the cluster state changed",
            tool: "*".into(),
            field: "*".into(),
            payload: "whole corpus".into(),
            detail: changed.join("; "),
        });
    }

    eprintln!("[adversarial] sweep: {}", report(&failures));

    // A valid delete: exactly one delete, of exactly that object.
    post(
        rig,
        &format!("/api/v1/namespaces/{}/configmaps", w.a),
        json!({"metadata": {"name": "x"}}),
    );
    let before_delete = snapshot(rig, &w);
    let (answer, seen) = call_seen(
        &shim,
        &audit,
        "resources_delete",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": w.a, "name": "x"}),
    )
    .await;
    assert!(!answer.is_error, "{}", answer.text);
    let mutating: Vec<&Event> = seen.iter().filter(|e| e.is_mutating()).collect();
    let exactly_one = mutating.len() == 1 && {
        let o = mutating[0].object_ref.clone().unwrap_or_default();
        mutating[0].verb == "delete"
            && o.resource == "configmaps"
            && o.namespace == w.a
            && o.name == "x"
            && o.subresource.is_empty()
    };
    assert!(
        exactly_one,
        "a delete of ConfigMap x must send one delete of it, sent:\n  {}",
        lines(&seen)
    );
    let gone = diff(&before_delete, &snapshot(rig, &w));
    assert_eq!(
        gone,
        vec![format!(
            "configmaps {}/x: {:?} -> None",
            w.a,
            before_delete.get(&format!("configmaps {}/x", w.a))
        )],
        "only x may change"
    );

    // No sentinel in the daemon's log or its own audit log either.
    let audit_text = std::fs::read_to_string(d.home.path().join("audit.jsonl")).unwrap_or_default();
    for (what, text) in [("daemon log", d.log_text()), ("nskd audit log", audit_text)] {
        if let Some(s) = w.leak(&text) {
            failures.push(Failure {
                what: "(a) a sentinel Secret value was logged",
                tool: "*".into(),
                field: what.into(),
                payload: "whole corpus".into(),
                detail: s.to_string(),
            });
        }
    }
    shim.close().await;
    drop(d);
    assert!(failures.is_empty(), "{}", report(&failures));
}

// ---------------------------------------------------------------------------
// Policy switches, with the same witness.

/// Secret reads and writes a `denied_resources` entry for Secrets must
/// refuse (`w.a` holds the sentinel Secret).
fn secret_calls(w: &World) -> Vec<(&'static str, Value)> {
    let a = w.a.as_str();
    let secret_manifest = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "adv-denied", "namespace": a}, "stringData": {"k": "v"}})
    .to_string();
    vec![
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "Secret", "name": "sentinel", "namespace": a}),
        ),
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "Secret", "name": "sentinel", "namespace": a, "live": true, "output": "json"}),
        ),
        (
            "resources_get",
            json!({"kind": "secrets", "name": "sentinel", "namespace": a}),
        ),
        (
            "resources_list",
            json!({"apiVersion": "v1", "kind": "Secret", "namespace": a, "output": "yaml"}),
        ),
        (
            "resources_list",
            json!({"kind": "secret", "namespace": a, "live": true}),
        ),
        ("resources_list", json!({"kind": "Secret"})),
        (
            "resources_describe",
            json!({"apiVersion": "v1", "kind": "Secret", "name": "sentinel", "namespace": a}),
        ),
        (
            "resources_delete",
            json!({"apiVersion": "v1", "kind": "Secret", "name": MISSING, "namespace": a}),
        ),
        (
            "resources_create_or_update",
            json!({"resource": secret_manifest}),
        ),
    ]
}

/// Calls whose only way to a Secret is a trick in another argument: they
/// must answer no sentinel and send no request for `secrets`.
fn secret_tricks(w: &World) -> Vec<(&'static str, Value)> {
    let a = w.a.as_str();
    vec![
        (
            "pods_log",
            json!({"name": "x", "namespace": format!("{a}/secrets/sentinel?")}),
        ),
        (
            "pods_log",
            json!({"name": "../secrets/sentinel?", "namespace": a}),
        ),
        (
            "resources_list",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": format!("{a}/secrets?"), "output": "json", "live": true}),
        ),
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": a, "name": "../secrets/sentinel"}),
        ),
    ]
}

fn touches(events: &[Event], resource: &str) -> Vec<Event> {
    events
        .iter()
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|o| o.resource == resource)
                || e.request_uri.contains(&format!("/{resource}"))
        })
        .cloned()
        .collect()
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_resources_in_every_spelling_keep_secrets_out_of_reach() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let _leftovers = Leftovers(rig);
    let w = seed(rig, "denied");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let mut failures = Vec::new();
    for pattern in [
        "v1/Secret",
        "Secret",
        "core/Secret",
        "core/v1/Secret",
        "secrets",
        "secrets.v1",
    ] {
        let d = start(rig, &format!("denied_resources = [{pattern:?}]\n"));
        let shim = Shim::start(&d.socket).await;
        for (tool, args) in secret_calls(&w).into_iter().chain(secret_tricks(&w)) {
            let label = format!("{tool} {args}");
            let (answer, seen) = call_seen(&shim, &audit, tool, args).await;
            let mut fail = |what: &'static str, detail: String| {
                failures.push(Failure {
                    what,
                    tool: format!("denied_resources = [{pattern:?}]"),
                    field: tool.into(),
                    payload: excerpt(&label),
                    detail,
                })
            };
            if let Some(s) = w.leak(&answer.text) {
                fail("a sentinel Secret value was answered", s.into());
            }
            if !answer.is_error {
                fail("not refused", excerpt(&answer.text));
            }
            let secrets = touches(&seen, "secrets");
            if !secrets.is_empty() {
                fail("a request for secrets was sent", lines(&secrets));
            }
        }
        shim.close().await;
    }
    for (pattern, calls, resource) in [
        (
            "rbac.authorization.k8s.io/ClusterRoleBinding",
            vec![
                (
                    "resources_list",
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding"}),
                ),
                (
                    "resources_get",
                    json!({"kind": "ClusterRoleBinding", "name": "cluster-admin"}),
                ),
                (
                    "resources_create_or_update",
                    json!({"resource": cluster_admin_binding()}),
                ),
            ],
            "clusterrolebindings",
        ),
        (
            "deployments.apps",
            vec![
                (
                    "resources_list",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": w.a}),
                ),
                (
                    "resources_get",
                    json!({"kind": "Deployment", "name": "web", "namespace": w.a}),
                ),
                (
                    "rollout_restart",
                    json!({"kind": "Deployment", "name": "web", "namespace": w.a}),
                ),
                (
                    "resources_scale",
                    json!({"kind": "Deployment", "name": "web", "namespace": w.a, "scale": 2}),
                ),
            ],
            "deployments",
        ),
    ] {
        let d = start(rig, &format!("denied_resources = [{pattern:?}]\n"));
        let shim = Shim::start(&d.socket).await;
        for (tool, args) in calls {
            let label = format!("{tool} {args}");
            let (answer, seen) = call_seen(&shim, &audit, tool, args).await;
            let mut fail = |what: &'static str, detail: String| {
                failures.push(Failure {
                    what,
                    tool: format!("denied_resources = [{pattern:?}]"),
                    field: tool.into(),
                    payload: excerpt(&label),
                    detail,
                })
            };
            if !answer.is_error {
                fail("not refused", excerpt(&answer.text));
            }
            let sent = touches(&seen, resource);
            if !sent.is_empty() {
                fail("a request for the denied kind was sent", lines(&sent));
            }
        }
        shim.close().await;
    }
    assert!(failures.is_empty(), "{}", report(&failures));
}

fn binding_name() -> String {
    format!("adv-{}-everyone-admin", std::process::id())
}

fn webhook_name() -> String {
    format!("adv-{}-hook", std::process::id())
}

fn crd_name() -> String {
    format!("widgets{}.adv.example.com", std::process::id())
}

/// Deletes, when dropped (also after a failed assertion), the
/// cluster-scoped objects a daemon that fails these tests may have created:
/// left behind, the ClusterRoleBinding would make every user of the rig an
/// admin and break other tests.
struct Leftovers<'r>(&'r Rig);

impl Drop for Leftovers<'_> {
    fn drop(&mut self) {
        let c = self.0.cluster(CLUSTER);
        for path in [
            format!(
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{}",
                binding_name()
            ),
            format!(
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{}",
                webhook_name()
            ),
            format!(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
                crd_name()
            ),
        ] {
            let _ = kubeapi::try_call(c, "DELETE", &path, None);
        }
    }
}

/// A ClusterRoleBinding of cluster-admin to every authenticated user.
fn cluster_admin_binding() -> String {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": binding_name()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]})
    .to_string()
}

#[test]
fn denied_resources_that_can_never_match_fail_check_config_and_startup() {
    let config = |top: &str| DaemonSpec {
        top: top.into(),
        ..DaemonSpec::default()
    };
    // The control: a pattern that matches passes.
    let good = Daemon::prepare(&config("denied_resources = [\"v1/Secret\"]\n"), |_| {});
    let out = std::process::Command::new(bin("nskd"))
        .arg("check-config")
        .arg("--config")
        .arg(&good.config)
        .output()
        .expect("run nskd check-config");
    assert!(
        out.status.success(),
        "check-config refused denied_resources = [\"v1/Secret\"]: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pattern in ["no/such/thing/here", "v1/", ""] {
        let d = Daemon::prepare(
            &config(&format!("denied_resources = [{pattern:?}]\n")),
            |_| {},
        );
        let out = std::process::Command::new(bin("nskd"))
            .arg("check-config")
            .arg("--config")
            .arg(&d.config)
            .output()
            .expect("run nskd check-config");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "check-config accepted denied_resources = [{pattern:?}]:\n{all}"
        );
        assert!(
            all.contains("denied_resources") && all.contains(&format!("{pattern:?}")),
            "check-config must name denied_resources and the pattern {pattern:?}:\n{all}"
        );
        let mut child = std::process::Command::new(bin("nskd"))
            .arg("--config")
            .arg(&d.config)
            .arg("--socket")
            .arg(&d.socket)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run nskd");
        let exited = crate::eventually(10.0, || child.try_wait().ok().flatten());
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            exited.is_some_and(|s| !s.success()),
            "nskd started with denied_resources = [{pattern:?}] (exit: {exited:?})"
        );
    }
}

/// Manifests `disable_destructive` must refuse to create, by label.
fn destructive_manifests(w: &World) -> Vec<(&'static str, String)> {
    let a = w.a.as_str();
    let id = std::process::id();
    vec![
        ("Pod", json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "adv-pod", "namespace": a},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]}}).to_string()),
        ("Deployment", json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "adv-deploy", "namespace": a},
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]}}}}).to_string()),
        ("ClusterRoleBinding", cluster_admin_binding()),
        // Harmless if created anyway: it ignores its own failure and
        // matches no namespace ([`Leftovers`] removes it).
        ("ValidatingWebhookConfiguration", json!({"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration", "metadata": {"name": webhook_name()},
            "webhooks": [{"name": "adv.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": "Ignore",
                "namespaceSelector": {"matchLabels": {"adv-never": "true"}},
                "clientConfig": {"url": "https://127.0.0.1:1/hook"},
                "rules": [{"operations": ["CREATE"], "apiGroups": ["adv.example.com"], "apiVersions": ["v1"], "resources": ["widgets"]}]}]}).to_string()),
        ("CustomResourceDefinition", json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition", "metadata": {"name": crd_name()},
            "spec": {"group": "adv.example.com", "scope": "Namespaced",
                "names": {"plural": format!("widgets{id}"), "singular": format!("widget{id}"), "kind": format!("Widget{id}")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}}).to_string()),
        ("ResourceQuota", json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "adv-quota", "namespace": a}, "spec": {"hard": {"pods": "0"}}}).to_string()),
        ("NetworkPolicy", json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "adv-deny-all", "namespace": a},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}).to_string()),
    ]
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_destructive_refuses_workloads_rbac_admission_crds_quotas_policies_exec_and_restart()
 {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let _leftovers = Leftovers(rig);
    let w = seed(rig, "nodestroy");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "disable_destructive = true\n");
    let shim = Shim::start(&d.socket).await;
    let mut failures = Vec::new();
    let mut calls: Vec<(String, &str, Value)> = destructive_manifests(&w)
        .into_iter()
        .map(|(label, m)| {
            (
                format!("create a {label}"),
                "resources_create_or_update",
                json!({"resource": m}),
            )
        })
        .collect();
    calls.push((
        "pods_run".into(),
        "pods_run",
        json!({"image": "registry.invalid/x:1", "namespace": w.a}),
    ));
    calls.push((
        "rollout_restart".into(),
        "rollout_restart",
        json!({"kind": "Deployment", "name": "web", "namespace": w.a}),
    ));
    calls.push((
        "pods_exec".into(),
        "pods_exec",
        json!({"name": w.pod, "namespace": "shop", "command": ["echo", "hi"]}),
    ));
    for (label, tool, args) in calls {
        let (answer, seen) = call_seen(&shim, &audit, tool, args).await;
        let mut fail = |what: &'static str, detail: String| {
            failures.push(Failure {
                what,
                tool: "disable_destructive = true".into(),
                field: tool.into(),
                payload: label.clone(),
                detail,
            })
        };
        if !answer.is_error {
            fail("not refused", excerpt(&answer.text));
        }
        // Not even an existence GET of the refused object.
        let sent: Vec<Event> = seen.into_iter().filter(|e| !e.is_discovery()).collect();
        if !sent.is_empty() {
            fail("requests were sent for a refused call", lines(&sent));
        }
    }
    // Creating a ConfigMap is not destructive.
    let (answer, seen) = call_seen(
        &shim,
        &audit,
        "resources_create_or_update",
        json!({"resource": manifest("adv-allowed", Some(&w.a))}),
    )
    .await;
    assert!(
        !answer.is_error && answer.text.contains("created"),
        "{}",
        answer.text
    );
    let mutating: Vec<&Event> = seen.iter().filter(|e| e.is_mutating()).collect();
    assert!(
        mutating.len() == 1
            && mutating[0]
                .object_ref
                .as_ref()
                .is_some_and(|o| o.resource == "configmaps"
                    && o.namespace == w.a
                    && o.name == "adv-allowed"),
        "one write of the ConfigMap, sent:\n  {}",
        lines(&seen)
    );
    shim.close().await;
    assert!(failures.is_empty(), "{}", report(&failures));
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sends_no_mutating_request_for_any_change_tool() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let w = seed(rig, "readonly");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "read_only = true\n");
    let shim = Shim::start(&d.socket).await;
    let mut failures = Vec::new();
    let a = w.a.as_str();
    let mut calls = vec![
        (
            "resources_create_or_update",
            json!({"resource": manifest("adv-ro", Some(a))}),
        ),
        (
            "resources_delete",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": MISSING, "namespace": a}),
        ),
        (
            "resources_scale",
            json!({"kind": "Deployment", "name": "web", "namespace": a, "scale": 3}),
        ),
        (
            "rollout_restart",
            json!({"kind": "Deployment", "name": "web", "namespace": a}),
        ),
        ("pods_delete", json!({"name": MISSING, "namespace": a})),
        (
            "pods_run",
            json!({"image": "registry.invalid/x:1", "namespace": a}),
        ),
        (
            "pods_exec",
            json!({"name": w.pod, "namespace": "shop", "command": ["echo", "hi"]}),
        ),
    ];
    // The tricks through read tools too.
    calls.extend(secret_tricks(&w));
    for (tool, args) in calls {
        let label = format!("{tool} {args}");
        let (answer, seen) = call_seen(&shim, &audit, tool, args).await;
        let mutating: Vec<Event> = seen.into_iter().filter(Event::is_mutating).collect();
        if !mutating.is_empty() {
            failures.push(Failure {
                what: "a mutating request reached the apiserver",
                tool: "read_only = true".into(),
                field: tool.into(),
                payload: excerpt(&label),
                detail: lines(&mutating),
            });
        }
        if let Some(s) = w.leak(&answer.text) {
            failures.push(Failure {
                what: "a sentinel Secret value was answered",
                tool: "read_only = true".into(),
                field: tool.into(),
                payload: excerpt(&label),
                detail: s.into(),
            });
        }
    }
    shim.close().await;
    assert!(failures.is_empty(), "{}", report(&failures));
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_duplicate_cluster_lists_cost_one_request_per_real_cluster() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "");
    let shim = Shim::start(&d.socket).await;
    for live in [false, true] {
        let (answer, seen) = call_seen(
            &shim,
            &audit,
            "pods_list",
            json!({"clusters": vec![CLUSTER; 3000], "namespace": "shop", "live": live}),
        )
        .await;
        let (cache_starts, lists): (Vec<Event>, Vec<Event>) = seen
            .into_iter()
            .filter(|e| {
                e.verb == "list" && e.object_ref.as_ref().is_some_and(|o| o.resource == "pods")
            })
            // The watch cache's own first list (full objects in a table).
            .partition(|e| e.request_uri.contains("includeObject=Object"));
        assert!(
            cache_starts.len() <= 1,
            "3000 copies of one cluster (live {live}) started {} watch caches:\n  {}",
            cache_starts.len(),
            lines(&cache_starts)
        );
        assert!(
            lists.len() <= 1,
            "3000 copies of one cluster (live {live}) sent {} pod lists:\n  {}",
            lists.len(),
            lines(&lists)
        );
        if !answer.is_error {
            assert!(
                answer.text.matches(CLUSTER).count() <= 25 && answer.text.len() <= 33 * 1024,
                "3000 copies of one cluster must answer as one cluster: {} bytes",
                answer.text.len()
            );
        }
    }
    // More names than known clusters (one is known here).
    let (answer, seen) = call_seen(
        &shim,
        &audit,
        "pods_list",
        json!({"clusters": [CLUSTER, "c1-sv5", "c1-dfw1"], "namespace": "shop"}),
    )
    .await;
    assert_refused(&answer, "clusters");
    assert!(
        seen.iter().all(Event::is_discovery),
        "a refused cluster list sends nothing:\n  {}",
        lines(&seen)
    );
    shim.close().await;
}
