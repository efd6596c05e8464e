//! Listing objects of any kind on one cluster.

use std::time::Duration;

use kube::{
    Resource,
    api::{DynamicObject, ListParams},
};
use serde_json::Value;

use super::{
    Output, Rendered,
    discovery::ResolvedKind,
    shape::{clean_object, render_objects},
    table::{self, TABLE_ACCEPT, TableStyle},
};
use crate::{
    cache::Query,
    error::{CallContext, OpError},
    pool::ClusterClient,
};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListArgs {
    /// "v1", "apps/v1"; empty resolves through discovery.
    pub api_version: String,
    /// Kind, plural or short name.
    pub kind: String,
    /// Namespace; `None` lists across all namespaces.
    pub namespace: Option<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// Server-side limit (0 = none).
    pub limit: u32,
    /// Output format.
    pub output: Output,
    /// Read from the API server even when a watch cache could answer.
    pub live: bool,
}

/// Limits every operation respects.
#[derive(Debug, Clone)]
pub struct OpOptions {
    /// Deadline of the whole operation.
    pub timeout: Duration,
    /// Byte cap of the answer.
    pub max_bytes: usize,
    /// Show Secret values.
    pub reveal_secrets: bool,
    /// read_only, disable_destructive, denied_resources.
    pub policy: std::sync::Arc<crate::safety::Policy>,
    /// Watch caches that may answer reads.
    pub caches: std::sync::Arc<crate::cache::WatchCaches>,
    /// Whether a cache may answer for this cluster now (not while its last
    /// probe or call failed: a watch can look open on a server that hangs).
    pub use_cache: bool,
}

/// Resolves `api_version`/`kind` on this cluster, within `timeout`.
pub async fn resolve_kind(
    cc: &ClusterClient,
    api_version: &str,
    kind: &str,
    timeout: Duration,
) -> Result<ResolvedKind, OpError> {
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "discover",
        resource: kind,
    };
    match tokio::time::timeout(timeout, cc.discovery.resolve(&cc.client, api_version, kind)).await {
        Err(_) => Err(ctx.timeout(timeout)),
        Ok(Err(e)) => Err(ctx.error(e)),
        Ok(Ok(None)) if api_version.starts_with("metrics.k8s.io") => {
            Err(OpError::InvalidArgument(format!(
                "cluster {}: the metrics API (metrics.k8s.io) is not served, so there is no CPU/memory usage to show; install metrics-server on the cluster",
                cc.name
            )))
        }
        Ok(Ok(None)) => Err(OpError::UnknownKind {
            cluster: cc.name.clone(),
            kind: kind.to_string(),
            api_version: api_version.to_string(),
        }),
        Ok(Ok(Some(k))) => Ok(k),
    }
}

/// Lists objects and renders them.
pub async fn list(
    cc: &ClusterClient,
    args: &ListArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    if args.kind.trim().is_empty() {
        return Err(OpError::InvalidArgument(
            "`kind` is required (e.g. \"Pod\", \"deployments\")".into(),
        ));
    }
    let started = tokio::time::Instant::now();
    let kind = resolve_kind(cc, &args.api_version, &args.kind, opts.timeout).await?;
    crate::safety::check(
        &opts.policy,
        &cc.name,
        crate::safety::Verb::Read,
        &kind,
        &format!("list {}", kind.display_name()),
    )?;
    let namespace = args
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty() && kind.namespaced);
    let resource = match namespace {
        Some(ns) => format!("{} in namespace {ns}", kind.display_name()),
        None => kind.display_name(),
    };
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "list",
        resource: &resource,
    };
    let cached = if args.live || !opts.use_cache {
        None
    } else {
        cached_answer(cc, &kind, namespace, args, opts)
    };
    let from_cache = cached.is_some();
    let body = match cached {
        Some(body) => body,
        None => live_list(cc, &kind, namespace, args, &ctx, opts, started).await?,
    };
    let more = body
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|_| {
            body.pointer("/metadata/remainingItemCount")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        });
    let noun = kind.resource.plural.clone();
    if args.output == Output::Table && body["kind"] == "Table" {
        let style = TableStyle {
            namespace_column: kind.namespaced && namespace.is_none(),
            noun: &noun,
            max_bytes: opts.max_bytes,
            remaining: more,
        };
        let mut rendered = table::render(&body, &style);
        rendered.from_cache = from_cache;
        return Ok(rendered);
    }
    let items: Vec<Value> = body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut item| {
            // List items carry no kind of their own; masking needs it.
            if let Value::Object(map) = &mut item {
                map.insert(
                    "apiVersion".into(),
                    Value::String(kind.resource.api_version.clone()),
                );
                map.insert("kind".into(), Value::String(kind.resource.kind.clone()));
            }
            clean_object(&mut item, opts.reveal_secrets);
            item
        })
        .collect();
    let output = if args.output == Output::Table {
        Output::Yaml
    } else {
        args.output
    };
    let mut rendered = render_objects(items, output, opts.max_bytes, &noun);
    rendered.from_cache = from_cache;
    if more.is_some() {
        rendered.text.push_str(&format!(
            "... the server has more {noun} beyond the limit.\n"
        ));
    }
    Ok(rendered)
}

/// Lists through the API server (a Table when the output is one).
async fn live_list(
    cc: &ClusterClient,
    kind: &ResolvedKind,
    namespace: Option<&str>,
    args: &ListArgs,
    ctx: &CallContext<'_>,
    opts: &OpOptions,
    started: tokio::time::Instant,
) -> Result<Value, OpError> {
    let params = ListParams {
        label_selector: args.label_selector.clone().filter(|s| !s.is_empty()),
        field_selector: args.field_selector.clone().filter(|s| !s.is_empty()),
        limit: (args.limit > 0).then_some(args.limit),
        ..ListParams::default()
    };
    let url = DynamicObject::url_path(&kind.resource, namespace);
    let mut request = kube::core::Request::new(url)
        .list(&params)
        .map_err(|e| OpError::InvalidArgument(format!("cannot build the list request: {e}")))?;
    if args.output == Output::Table {
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(TABLE_ACCEPT),
        );
        // Rows need their object's namespace only for a NAMESPACE column;
        // otherwise cells alone are a much smaller answer to parse.
        if namespace.is_some() || !kind.namespaced {
            table::include_object(&mut request, "None");
        }
    }
    let remaining = opts.timeout.saturating_sub(started.elapsed());
    match tokio::time::timeout(remaining, cc.client.request::<Value>(request)).await {
        Err(_) => Err(ctx.timeout(opts.timeout)),
        Ok(Err(e)) => Err(ctx.error(e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// The same answer from an in-sync watch cache, when one holds this kind
/// and can evaluate the selectors exactly.
fn cached_answer(
    cc: &ClusterClient,
    kind: &ResolvedKind,
    namespace: Option<&str>,
    args: &ListArgs,
    opts: &OpOptions,
) -> Option<Value> {
    if !opts.caches.caches_kind(kind) {
        return None;
    }
    let Some(query) = Query::new(
        namespace,
        args.label_selector.as_deref(),
        args.field_selector.as_deref(),
        args.limit,
        &kind.resource.group,
        &kind.resource.plural,
    ) else {
        crate::metrics::cache_miss(&cc.name, &kind.display_name(), "selector");
        return None;
    };
    let watch = opts.caches.answering(cc, kind, namespace)?;
    crate::metrics::cache_hit(&cc.name, &kind.display_name());
    Some(if args.output == Output::Table {
        watch.table(&query)
    } else {
        watch.list(&query)
    })
}
