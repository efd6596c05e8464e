//! Tool arguments, with the Go kubernetes-mcp-server's names where it has
//! the same tool (`context` is accepted for `cluster`).

use schemars::JsonSchema;
use serde::Deserialize;

/// Several clusters: a list of names, or "*" for every cluster not known
/// to be down.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ClusterSet {
    /// "*" (all healthy clusters) or a single name.
    One(String),
    /// Cluster names.
    Many(Vec<String>),
}

impl ClusterSet {
    /// As the daemon's `Target.clusters`.
    pub fn names(&self) -> Vec<String> {
        match self {
            ClusterSet::One(s) => vec![s.clone()],
            ClusterSet::Many(v) => v.clone(),
        }
    }
}

/// Output format of read tools.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// kubectl-style table (default).
    #[default]
    Table,
    /// YAML documents.
    Yaml,
    /// JSON array.
    Json,
}

/// cluster_use.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterUseArgs {
    /// Cluster to make this session's active cluster.
    #[serde(alias = "context", alias = "name")]
    pub cluster: String,
}

/// clusters_status.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ClustersStatusArgs {
    /// One cluster to show in detail (default: the table of all clusters).
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Probe now.
    #[serde(default)]
    pub refresh: bool,
    /// Token from a previous page's footer.
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
}

/// namespaces_list.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NamespacesListArgs {
    /// Rows per page (default: as many as fit).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Label selector, e.g. "team=shop".
    #[serde(default, rename = "labelSelector")]
    pub label_selector: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    /// table (default), yaml or json.
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Read from the API server even when nskd's watch cache could answer (cached answers are in sync with the API server, and say so).
    #[serde(default)]
    pub live: bool,
    /// Token from a previous page's footer.
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
    /// Counts by cluster and status instead of rows.
    #[serde(default)]
    pub summary: bool,
    /// Count by these keys: cluster, namespace or column names.
    #[serde(default)]
    pub count_by: Option<Vec<String>>,
    /// Only these table columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// JSONPaths to show, e.g. ".spec.containers[*].image".
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// A column name or JSONPath to sort by.
    #[serde(default, rename = "sortBy")]
    pub sort_by: Option<String>,
}

/// pods_list.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PodsListArgs {
    /// Namespace (default: all namespaces).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Label selector, e.g. "app=web,tier!=db".
    #[serde(default, rename = "labelSelector")]
    pub label_selector: Option<String>,
    /// Field selector, e.g. "status.phase=Running" or "spec.nodeName=node-1".
    #[serde(default, rename = "fieldSelector")]
    pub field_selector: Option<String>,
    /// Rows per page (default: as many as fit).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    /// table (default), yaml or json.
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Read from the API server even when nskd's watch cache could answer (cached answers are in sync with the API server, and say so).
    #[serde(default)]
    pub live: bool,
    /// Token from a previous page's footer.
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
    /// Counts by cluster and status instead of rows.
    #[serde(default)]
    pub summary: bool,
    /// Count by these keys: cluster, namespace or column names.
    #[serde(default)]
    pub count_by: Option<Vec<String>>,
    /// Only these table columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// JSONPaths to show, e.g. ".spec.containers[*].image".
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// A column name or JSONPath to sort by.
    #[serde(default, rename = "sortBy")]
    pub sort_by: Option<String>,
}

/// nsk_refresh.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NskRefreshArgs {
    #[serde(default)]
    pub force: bool,
}

/// nsk_clusters_discover.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NskDiscoverArgs {
    /// Regex on cluster names, e.g. "^c1-".
    #[serde(default)]
    pub pattern: Option<String>,
}

/// nsk_get.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NskGetArgs {
    pub cluster_name: String,
    /// Store it in the config directory.
    #[serde(default)]
    pub save: bool,
}

/// resources_list.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourcesListArgs {
    /// apiVersion of the kind, e.g. "v1", "apps/v1", "networking.k8s.io/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind, e.g. "Deployment", "ConfigMap", or a CRD's kind (plural and short names work too).
    pub kind: String,
    /// Namespace (default: all namespaces).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Label selector, e.g. "app=web".
    #[serde(default, rename = "labelSelector")]
    pub label_selector: Option<String>,
    /// Field selector, e.g. "metadata.name=web".
    #[serde(default, rename = "fieldSelector")]
    pub field_selector: Option<String>,
    /// Rows per page (default: as many as fit).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    /// table (default), yaml or json.
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Read from the API server even when nskd's watch cache could answer (cached answers are in sync with the API server, and say so).
    #[serde(default)]
    pub live: bool,
    /// Token from a previous page's footer.
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
    /// Counts by cluster and status instead of rows.
    #[serde(default)]
    pub summary: bool,
    /// Count by these keys: cluster, namespace or column names.
    #[serde(default)]
    pub count_by: Option<Vec<String>>,
    /// Only these table columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// JSONPaths to show, e.g. ".spec.containers[*].image".
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// A column name or JSONPath to sort by.
    #[serde(default, rename = "sortBy")]
    pub sort_by: Option<String>,
}

/// resources_get.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourcesGetArgs {
    /// apiVersion of the kind, e.g. "v1", "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind, e.g. "Deployment" (plural and short names work too).
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace of a namespaced kind (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    /// yaml (default) or json.
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Read from the API server even when nskd's watch cache could answer (cached answers are in sync with the API server, and say so).
    #[serde(default)]
    pub live: bool,
}

/// pods_get.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PodsGetArgs {
    /// Pod name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    /// yaml (default) or json.
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Read from the API server even when nskd's watch cache could answer (cached answers are in sync with the API server, and say so).
    #[serde(default)]
    pub live: bool,
}

/// nodes_list and events_list.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SimpleListArgs {
    /// Namespace (events only; default: all namespaces).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Label selector.
    #[serde(default, rename = "labelSelector")]
    pub label_selector: Option<String>,
    /// Field selector, e.g. "involvedObject.name=web-1" for events.
    #[serde(default, rename = "fieldSelector")]
    pub field_selector: Option<String>,
    /// Rows per page (default: as many as fit).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    /// table (default), yaml or json.
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Read from the API server even when nskd's watch cache could answer (cached answers are in sync with the API server, and say so).
    #[serde(default)]
    pub live: bool,
    /// Token from a previous page's footer.
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
    /// Counts by cluster and status instead of rows.
    #[serde(default)]
    pub summary: bool,
    /// Count by these keys: cluster, namespace or column names.
    #[serde(default)]
    pub count_by: Option<Vec<String>>,
    /// Only these table columns.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// JSONPaths to show, e.g. ".spec.containers[*].image".
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// A column name or JSONPath to sort by.
    #[serde(default, rename = "sortBy")]
    pub sort_by: Option<String>,
}

/// One object a change acts on (rollout_restart, and the base of the
/// other single-object changes); single-object changes take no `clusters`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectArgs {
    /// apiVersion, e.g. "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind, e.g. "Deployment".
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
}

/// resources_delete.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    #[serde(default, rename = "gracePeriodSeconds")]
    pub grace_period_seconds: Option<i64>,
    /// apiVersion, e.g. "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind, e.g. "Deployment".
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview only (server dryRun=All): answers the diff and a plan id.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly what a dry-run previewed: its plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

impl DeleteArgs {
    /// The object, and the grace period (-1: the object's own).
    pub fn split(self) -> (ObjectArgs, i64) {
        let object = ObjectArgs {
            api_version: self.api_version,
            kind: self.kind,
            name: self.name,
            namespace: self.namespace,
            cluster: self.cluster,
        };
        (object, self.grace_period_seconds.unwrap_or(-1))
    }
}

/// One object read on one or several clusters (rollout_status).
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectReadArgs {
    /// apiVersion, e.g. "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind, e.g. "Deployment".
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Read several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

/// rollout_restart.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RestartArgs {
    /// apiVersion, e.g. "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind: Deployment, StatefulSet or DaemonSet.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview only (server dryRun=All): answers the diff and a plan id.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly what a dry-run previewed: its plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// How a patch merges.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PatchKind {
    /// JSON merge patch (RFC 7386).
    #[default]
    Merge,
    /// JSON patch (RFC 6902): a list of operations.
    Json,
    /// Strategic merge patch (built-in kinds only).
    Strategic,
}

/// resources_patch.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchArgs {
    /// apiVersion, e.g. "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind, e.g. "Deployment".
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// An object (merge, strategic) or a list of operations (json).
    pub patch: serde_json::Value,
    #[serde(default, rename = "type")]
    pub patch_type: PatchKind,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview only (server dryRun=All): answers the diff and a plan id.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly what a dry-run previewed: its plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

impl ObjectReadArgs {
    /// The object, and the clusters to read it on.
    pub fn split(self) -> (ObjectArgs, Vec<String>) {
        let object = ObjectArgs {
            api_version: self.api_version,
            kind: self.kind,
            name: self.name,
            namespace: self.namespace,
            cluster: self.cluster,
        };
        (object, self.clusters.map(|c| c.names()).unwrap_or_default())
    }
}

/// pods_delete.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PodsDeleteArgs {
    /// Pod name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview only (server dryRun=All): answers the diff and a plan id.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly what a dry-run previewed: its plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// resources_scale.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ScaleArgs {
    /// apiVersion, e.g. "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Kind: Deployment, StatefulSet or ReplicaSet.
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(alias = "replicas")]
    pub scale: u32,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview only (server dryRun=All): answers the diff and a plan id.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly what a dry-run previewed: its plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// resources_create_or_update.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ApplyArgs {
    /// YAML or JSON manifest, documents separated by "---".
    pub resource: String,
    /// Namespace for namespaced objects that name none (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview only (server dryRun=All): answers the diff and a plan id.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly what a dry-run previewed: its plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// pods_log.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PodsLogArgs {
    /// Pod name (or use labelSelector).
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Container (needed when the pod has several).
    #[serde(default)]
    pub container: Option<String>,
    /// The previous (crashed) instance.
    #[serde(default)]
    pub previous: bool,
    /// Last N lines.
    #[serde(default)]
    pub tail: Option<i64>,
    /// Last N seconds.
    #[serde(default)]
    pub since: Option<i64>,
    /// RFC 3339 time, e.g. "2026-01-02T15:04:05Z".
    #[serde(default, rename = "sinceTime")]
    pub since_time: Option<String>,
    /// Regex lines must match; "(?i)" ignores case.
    #[serde(default)]
    pub grep: Option<String>,
    #[serde(default)]
    pub timestamps: bool,
    /// Instead of name: all matching pods (<= 50), lines prefixed [pod/container].
    #[serde(default, rename = "labelSelector")]
    pub label_selector: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Read several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

/// configuration_view.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigViewArgs {
    /// Only the current context (default).
    #[serde(default)]
    pub minified: Option<bool>,
}

/// pods_top and nodes_top.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TopArgs {
    /// Namespace (pods_top; default: all namespaces).
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub all_namespaces: Option<bool>,
    /// Only this pod or node.
    #[serde(default)]
    pub name: Option<String>,
    /// Label selector (`label_selector` accepted too).
    #[serde(default, rename = "labelSelector", alias = "label_selector")]
    pub label_selector: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

/// nodes_top.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NodesTopArgs {
    /// Only this node.
    #[serde(default)]
    pub name: Option<String>,
    /// Label selector (`label_selector` accepted too).
    #[serde(default, rename = "labelSelector", alias = "label_selector")]
    pub label_selector: Option<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Run on several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

impl NodesTopArgs {
    /// As a list of the metrics kind, and the one node asked for.
    pub fn into_list(self) -> (SimpleListArgs, Option<String>) {
        let list = SimpleListArgs {
            label_selector: self.label_selector,
            cluster: self.cluster,
            clusters: self.clusters,
            ..Default::default()
        };
        (list, self.name)
    }
}

impl TopArgs {
    /// As a list of the metrics kind, and the one object asked for.
    pub fn into_list(self) -> (SimpleListArgs, Option<String>) {
        let list = SimpleListArgs {
            namespace: self.namespace.filter(|_| self.all_namespaces != Some(true)),
            label_selector: self.label_selector,
            cluster: self.cluster,
            clusters: self.clusters,
            ..Default::default()
        };
        (list, self.name)
    }
}

/// pods_run.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PodsRunArgs {
    /// e.g. "nginx:1.27".
    pub image: String,
    /// Pod name (default: derived from the image).
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview only (server dryRun=All): answers the diff.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
}

/// pods_exec.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PodsExecArgs {
    /// Pod name.
    pub name: String,
    /// Namespace (default: "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// Container (needed when the pod has several).
    #[serde(default)]
    pub container: Option<String>,
    /// Command and arguments, e.g. ["ls", "-l", "/tmp"].
    pub command: Vec<String>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
}

/// nodes_log.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NodesLogArgs {
    /// Node name.
    pub name: String,
    /// File under /logs/, e.g. "kubelet.log".
    #[serde(default)]
    pub query: Option<String>,
    /// Last N lines.
    #[serde(default, rename = "tailLines", alias = "tail")]
    pub tail_lines: Option<u32>,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Read several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

/// nodes_stats_summary.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NodeNameArgs {
    /// Node name.
    pub name: String,
    /// Cluster to run on (default: this session's active cluster). `context` is accepted too.
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Read several clusters at once: a list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

/// rollout_history.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RolloutHistoryArgs {
    /// "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Deployment, StatefulSet or DaemonSet.
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// A list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

/// rollout_undo.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RolloutUndoArgs {
    /// "apps/v1" (empty: found through discovery).
    #[serde(default, rename = "apiVersion")]
    pub api_version: String,
    /// Deployment, StatefulSet or DaemonSet.
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Revision to restore (default: the previous one).
    #[serde(default, rename = "toRevision")]
    pub to_revision: Option<i64>,
    /// Preview with the server's dryRun=All: a diff and a plan id; nothing changes.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly the change a dry run previewed under this plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// rollout_pause, rollout_resume (Deployments).
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DeploymentChangeArgs {
    /// Deployment name.
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview with the server's dryRun=All: a diff and a plan id; nothing changes.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly the change a dry run previewed under this plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// nodes_cordon, nodes_uncordon.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NodeChangeArgs {
    /// Node name.
    pub name: String,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview with the server's dryRun=All: a diff and a plan id; nothing changes.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly the change a dry run previewed under this plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// nodes_drain.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NodesDrainArgs {
    /// Node name.
    pub name: String,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Seconds for the whole drain (max 3600).
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Also evict unmanaged and emptyDir pods.
    #[serde(default)]
    pub force: bool,
    /// Preview with the server's dryRun=All: a diff and a plan id; nothing changes.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly the change a dry run previewed under this plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// pods_cleanup.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PodsCleanupArgs {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// Preview with the server's dryRun=All: a diff and a plan id; nothing changes.
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    /// Apply exactly the change a dry run previewed under this plan id.
    #[serde(default)]
    pub plan: Option<String>,
}

/// helm_list.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmListArgs {
    /// Default: all namespaces.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only this release.
    #[serde(default)]
    pub name: Option<String>,
    /// Only releases of this chart, e.g. "nginx".
    #[serde(default)]
    pub chart: Option<String>,
    /// "all" or statuses, e.g. "failed,pending-install" (default: deployed,failed).
    #[serde(default)]
    pub status: Option<String>,
    /// Count releases by chart x version x status instead of listing them.
    #[serde(default)]
    pub summary: bool,
    /// The next page: the token the previous answer's footer gave.
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// A list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Read from the API server, not nskd's cache.
    #[serde(default)]
    pub live: bool,
}

/// helm_status.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmReleaseArgs {
    /// Release name.
    pub name: String,
    /// Default: "default".
    #[serde(default)]
    pub namespace: Option<String>,
    /// Default: the latest.
    #[serde(default)]
    pub revision: Option<i64>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// A list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    #[serde(default)]
    pub output: Option<OutputFormat>,
}

/// helm_get_values.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmValuesArgs {
    /// Release name.
    pub name: String,
    /// Default: "default".
    #[serde(default)]
    pub namespace: Option<String>,
    /// Default: the latest.
    #[serde(default)]
    pub revision: Option<i64>,
    /// Computed values (chart defaults merged with the user's).
    #[serde(default)]
    pub all: bool,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// A list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    /// yaml (default) or json.
    #[serde(default)]
    pub output: Option<OutputFormat>,
}

/// helm_history.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmHistoryArgs {
    /// Release name.
    pub name: String,
    /// Default: "default".
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// A list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
    #[serde(default)]
    pub output: Option<OutputFormat>,
}

/// helm_get_manifest, helm_get_notes.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmTextArgs {
    /// Release name.
    pub name: String,
    /// Default: "default".
    #[serde(default)]
    pub namespace: Option<String>,
    /// Default: the latest.
    #[serde(default)]
    pub revision: Option<i64>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    /// A list of names, or "*" for all healthy clusters.
    #[serde(default)]
    pub clusters: Option<ClusterSet>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;
    use serde_json::{Map, Value};

    use super::*;

    /// Names a type accepts: its schema's properties plus the serde aliases.
    fn accepted<T: JsonSchema>() -> Vec<String> {
        let schema = schemars::schema_for!(T);
        let mut names: Vec<String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        names.extend(["context", "name", "tail"].map(String::from));
        names
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
            Just(Value::from("*")),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("\\PC{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Objects mixing the type's own fields (any values) with other keys.
    fn object(known: Vec<String>) -> impl Strategy<Value = Map<String, Value>> {
        let key = prop_oneof![proptest::sample::select(known), "\\PC{0,12}"];
        proptest::collection::btree_map(key, json(), 0..6).prop_map(|m| m.into_iter().collect())
    }

    /// Any object deserializes or fails without panicking; an object with a
    /// key the type does not know always fails, and when only unknown keys
    /// are given the error names one of them.
    fn check<T: DeserializeOwned + JsonSchema>(
        runner: &mut proptest::test_runner::TestRunner,
    ) -> Result<(), proptest::test_runner::TestError<Map<String, Value>>> {
        let known = accepted::<T>();
        runner.run(&object(known.clone()), |obj| {
            let unknown: Vec<&String> = obj.keys().filter(|k| !known.contains(k)).collect();
            let result = serde_json::from_value::<T>(Value::Object(obj.clone()));
            if !unknown.is_empty() {
                prop_assert!(result.is_err(), "{obj:?} accepted");
            }
            if !unknown.is_empty() && unknown.len() == obj.len() {
                let msg = result.err().unwrap().to_string();
                prop_assert!(
                    unknown
                        .iter()
                        .any(|k| msg.contains(&format!("unknown field `{k}`"))),
                    "{msg} names none of {unknown:?}"
                );
            }
            Ok(())
        })
    }

    macro_rules! every_args_type {
        ($($t:ty),* $(,)?) => {
            #[test]
            fn arbitrary_objects_never_panic_and_unknown_fields_are_named() {
                let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(96));
                $(
                    if let Err(e) = check::<$t>(&mut runner) {
                        panic!("{}: {e}", stringify!($t));
                    }
                )*
            }
        };
    }

    every_args_type!(
        ClusterUseArgs,
        ClustersStatusArgs,
        NamespacesListArgs,
        PodsListArgs,
        NskRefreshArgs,
        NskDiscoverArgs,
        NskGetArgs,
        ResourcesListArgs,
        ResourcesGetArgs,
        PodsGetArgs,
        SimpleListArgs,
        ObjectArgs,
        DeleteArgs,
        ObjectReadArgs,
        NodesTopArgs,
        PodsDeleteArgs,
        ScaleArgs,
        ApplyArgs,
        PodsLogArgs,
        ConfigViewArgs,
        TopArgs,
        PodsRunArgs,
        PodsExecArgs,
        NodesLogArgs,
        NodeNameArgs,
        RolloutHistoryArgs,
        RolloutUndoArgs,
        DeploymentChangeArgs,
        NodeChangeArgs,
        NodesDrainArgs,
        PodsCleanupArgs,
    );
}

/// The paging and shaping arguments of a list tool, for its request.
#[derive(Debug, Clone, Default)]
pub struct Shaping {
    /// `continue`.
    pub continue_token: Option<String>,
    /// `summary`.
    pub summary: bool,
    /// `count_by`.
    pub count_by: Option<Vec<String>>,
    /// `columns`.
    pub columns: Option<Vec<String>>,
    /// `fields`.
    pub fields: Option<Vec<String>>,
    /// `sortBy`.
    pub sort_by: Option<String>,
}

macro_rules! shaping_of {
    ($($t:ty),*) => {$(
        impl $t {
            /// Its paging and shaping arguments.
            pub fn shaping(&self) -> Shaping {
                Shaping {
                    continue_token: self.continue_token.clone(),
                    summary: self.summary,
                    count_by: self.count_by.clone(),
                    columns: self.columns.clone(),
                    fields: self.fields.clone(),
                    sort_by: self.sort_by.clone(),
                }
            }
        }
    )*};
}
shaping_of!(
    NamespacesListArgs,
    PodsListArgs,
    ResourcesListArgs,
    SimpleListArgs
);

impl Shaping {
    /// Fills these arguments into `request`.
    pub fn fill(self, request: &mut nskd_proto::v1::ListRequest) {
        request.continue_token = self.continue_token.unwrap_or_default();
        request.summary = self.summary;
        request.count_by = self.count_by.unwrap_or_default();
        request.columns = self.columns.unwrap_or_default();
        request.fields = self.fields.unwrap_or_default();
        request.sort_by = self.sort_by.unwrap_or_default();
    }
}

/// helm_install, helm_upgrade.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmChartArgs {
    pub name: String,
    pub chart: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub values: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    #[serde(default)]
    pub plan: Option<String>,
}

/// helm_uninstall.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmChangeArgs {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    #[serde(default)]
    pub plan: Option<String>,
}

/// helm_rollback.
#[derive(Debug, Clone, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HelmRollbackArgs {
    pub name: String,
    #[serde(default)]
    pub revision: Option<i64>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default, alias = "context")]
    pub cluster: Option<String>,
    #[serde(default, rename = "dryRun")]
    pub dry_run: bool,
    #[serde(default)]
    pub plan: Option<String>,
}
