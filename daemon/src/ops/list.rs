//! Listing objects of any kind on one cluster.

use kube::api::ListParams;
use serde_json::Value;

use super::{
    OpOptions, Output, Rendered, ResolvedKind,
    call::Call,
    resolve_kind,
    shape::render_objects,
    table::{self, TableStyle},
};
use crate::{
    cache::Query,
    error::OpError,
    pool::ClusterClient,
    request::{
        names::{ApiVersion, KindName, Namespace, Selector},
        path,
        table::{RowObject, TABLE_ACCEPT, include_object},
    },
    safety::{Action, clean_object},
};

/// What to list.
#[derive(Debug, Clone)]
pub struct ListArgs {
    /// "v1", "apps/v1"; `None` resolves through discovery.
    pub api_version: Option<ApiVersion>,
    /// Kind, plural or short name.
    pub kind: KindName,
    /// Namespace; `None` lists across all namespaces.
    pub namespace: Option<Namespace>,
    /// Label selector.
    pub label_selector: Option<Selector>,
    /// Field selector.
    pub field_selector: Option<Selector>,
    /// Server-side limit (0 = none).
    pub limit: u32,
    /// Output format.
    pub output: Output,
    /// Read from the API server even when a watch cache could answer.
    pub live: bool,
    /// Whole objects even for a table (fields or a JSONPath sort need them).
    pub objects: bool,
}

/// One cluster's list as rows, for the answer composer to merge.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Plural noun ("pods").
    pub noun: String,
    /// Whether the kind is namespaced.
    pub namespaced: bool,
    /// Column names (upper case) of `cells`, table mode only.
    pub header: Vec<String>,
    /// The rows, in the server's order.
    pub rows: Vec<ListedRow>,
    /// Answered from a watch cache rather than the API server.
    pub from_cache: bool,
    /// The server said it holds more than it sent (its own limit).
    pub more_on_server: bool,
}

/// One object of a [`Listing`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListedRow {
    /// Its namespace ("" for cluster-scoped kinds).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Table cells, as shown (table mode).
    pub cells: Vec<String>,
    /// The cleaned, masked object (object mode).
    pub object: Option<Value>,
}

/// What [`fetch`] read, before shaping.
struct Fetched {
    kind: ResolvedKind,
    namespace: Option<Namespace>,
    body: Value,
    from_cache: bool,
}

/// A list resolved and allowed: its kind, namespace and call.
struct Target<'a> {
    kind: ResolvedKind,
    namespace: Option<Namespace>,
    call: Call<'a>,
}

async fn fetch(cc: &ClusterClient, args: &ListArgs, opts: &OpOptions) -> Result<Fetched, OpError> {
    let target = target(cc, args, opts).await?;
    fetch_target(cc, target, args, opts).await
}

/// Resolves the kind and checks the list is allowed.
async fn target<'a>(
    cc: &'a ClusterClient,
    args: &ListArgs,
    opts: &'a OpOptions,
) -> Result<Target<'a>, OpError> {
    let started = tokio::time::Instant::now();
    let kind = resolve_kind(cc, args.api_version.as_ref(), &args.kind, opts.timeout).await?;
    opts.allow(
        cc,
        &kind,
        Action::List,
        None,
        &format!("list {}", kind.display_name()),
    )?;
    let namespace = args.namespace.clone().filter(|_| kind.namespaced);
    let resource = match &namespace {
        Some(ns) => format!("{} in namespace {ns}", kind.display_name()),
        None => kind.display_name(),
    };
    let call = Call::new(cc, "list", resource, opts).since(started);
    Ok(Target {
        kind,
        namespace,
        call,
    })
}

/// Reads a resolved list from a watch cache or the API server.
async fn fetch_target(
    cc: &ClusterClient,
    target: Target<'_>,
    args: &ListArgs,
    opts: &OpOptions,
) -> Result<Fetched, OpError> {
    let Target {
        kind,
        namespace,
        call,
    } = target;
    let cached = if args.live || !opts.use_cache {
        None
    } else {
        cached_answer(cc, &kind, namespace.as_ref(), args, opts)
    };
    let from_cache = cached.is_some();
    let body = match cached {
        Some(body) => body,
        None => live_list(&kind, namespace.as_ref(), args, &call).await?,
    };
    expect_list_of(&body, &kind, &call, cc)?;
    Ok(Fetched {
        kind,
        namespace,
        body,
        from_cache,
    })
}

/// The items of a list answer, each with its kind, cleaned and masked.
fn clean_items(body: &Value, kind: &ResolvedKind, opts: &OpOptions) -> Vec<Value> {
    body["items"]
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
            clean_object(&mut item, &opts.policy.masking, &kind.resource.plural);
            item
        })
        .collect()
}

/// Lists objects as rows: table cells when `args.output` is a table and
/// `args.objects` is not set, else cleaned objects.
pub async fn rows(
    cc: &ClusterClient,
    args: &ListArgs,
    opts: &OpOptions,
) -> Result<Listing, OpError> {
    let target = target(cc, args, opts).await?;
    if args.output == Output::Table
        && !args.objects
        && !args.live
        && opts.use_cache
        && let Some(listing) =
            cached_listing(cc, &target.kind, target.namespace.as_ref(), args, opts)
    {
        return Ok(listing);
    }
    let f = fetch_target(cc, target, args, opts).await?;
    let more_on_server = f
        .body
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let mut listing = Listing {
        noun: f.kind.resource.plural.clone(),
        namespaced: f.kind.namespaced,
        from_cache: f.from_cache,
        more_on_server,
        ..Listing::default()
    };
    let request_ns = f
        .namespace
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    if f.body["kind"] == "Table" {
        let style = TableStyle {
            sensitive: opts.policy.masking.is_sensitive(&f.kind),
            core_secret: f.kind.resource.group.is_empty() && f.kind.resource.kind == "Secret",
            namespace_column: false,
            noun: &listing.noun,
            max_bytes: opts.max_bytes,
            remaining: None,
        };
        let cells = table::cells(&f.body, &style);
        fill(&mut listing, cells, &request_ns);
        return Ok(listing);
    }
    listing.rows = clean_items(&f.body, &f.kind, opts)
        .into_iter()
        .map(|o| ListedRow {
            namespace: o
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name: o
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            cells: Vec::new(),
            object: Some(o),
        })
        .collect();
    Ok(listing)
}

/// Puts a table's cells into `listing` (rows without a namespace of
/// their own are in `request_ns`).
fn fill(listing: &mut Listing, cells: table::Cells, request_ns: &str) {
    listing.header = cells.header;
    listing.rows = cells
        .rows
        .into_iter()
        .map(|r| ListedRow {
            namespace: r.namespace.unwrap_or_else(|| request_ns.to_string()),
            name: r.cells.get(cells.name_column).cloned().unwrap_or_default(),
            cells: r.cells,
            object: None,
        })
        .collect();
}

/// The table rows of a list straight from an in-sync watch cache, with
/// no JSON built in between, when one holds this kind and can evaluate
/// the selectors exactly.
fn cached_listing(
    cc: &ClusterClient,
    kind: &ResolvedKind,
    namespace: Option<&Namespace>,
    args: &ListArgs,
    opts: &OpOptions,
) -> Option<Listing> {
    let (watch, query) = answering_cache(cc, kind, namespace, args, opts)?;
    let noun = kind.resource.plural.clone();
    let style = TableStyle {
        sensitive: opts.policy.masking.is_sensitive(kind),
        core_secret: kind.resource.group.is_empty() && kind.resource.kind == "Secret",
        namespace_column: false,
        noun: &noun,
        max_bytes: opts.max_bytes,
        remaining: None,
    };
    let (cells, more) = watch.read_table(&query, |columns, rows| {
        table::cells_of(columns, rows, &style)
    });
    let mut listing = Listing {
        noun: noun.clone(),
        namespaced: kind.namespaced,
        from_cache: true,
        more_on_server: more > 0,
        ..Listing::default()
    };
    let request_ns = namespace.map(ToString::to_string).unwrap_or_default();
    fill(&mut listing, cells, &request_ns);
    Some(listing)
}

/// Lists objects and renders them (one cluster's answer on its own).
pub async fn list(
    cc: &ClusterClient,
    args: &ListArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let Fetched {
        kind,
        namespace,
        body,
        from_cache,
    } = fetch(cc, args, opts).await?;
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
            sensitive: opts.policy.masking.is_sensitive(&kind),
            core_secret: kind.resource.group.is_empty() && kind.resource.kind == "Secret",
            namespace_column: kind.namespaced && namespace.is_none(),
            noun: &noun,
            max_bytes: opts.max_bytes,
            remaining: more,
        };
        let mut rendered = table::render(&body, &style);
        rendered.from_cache = from_cache;
        return Ok(rendered);
    }
    let items = clean_items(&body, &kind, opts);
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
    kind: &ResolvedKind,
    namespace: Option<&Namespace>,
    args: &ListArgs,
    call: &Call<'_>,
) -> Result<Value, OpError> {
    let params = ListParams {
        label_selector: args.label_selector.as_ref().map(|s| s.to_string()),
        field_selector: args.field_selector.as_ref().map(|s| s.to_string()),
        limit: (args.limit > 0).then_some(args.limit),
        ..ListParams::default()
    };
    let url = path::collection(&kind.resource, namespace);
    let mut request = kube::core::Request::new(url)
        .list(&params)
        .map_err(|e| OpError::InvalidArgument(format!("cannot build the list request: {e}")))?;
    if args.output == Output::Table && !args.objects {
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(TABLE_ACCEPT),
        );
        // Rows need their object's namespace only for a NAMESPACE column;
        // otherwise cells alone are a much smaller answer to parse.
        if namespace.is_some() || !kind.namespaced {
            include_object(&mut request, RowObject::None);
        }
    }
    call.json(request).await
}

/// Refuses a list answer that is not a list of `kind` (or a Table): a
/// server or proxy that answers something else is never relabelled.
fn expect_list_of(
    body: &Value,
    kind: &ResolvedKind,
    call: &Call<'_>,
    cc: &ClusterClient,
) -> Result<(), OpError> {
    let got = body.get("kind").and_then(Value::as_str).unwrap_or("");
    let list_kind = format!("{}List", kind.resource.kind);
    let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    if got == "Table" || (got == list_kind && group == kind.resource.group) {
        return Ok(());
    }
    Err(OpError::UnexpectedAnswer {
        cluster: cc.name.clone(),
        what: format!("list {}", call.resource()),
        expected: format!("a {list_kind} ({})", kind.resource.api_version),
        got: format!("{got:?} ({api_version:?})"),
    })
}

/// The same answer from an in-sync watch cache, when one holds this kind
/// and can evaluate the selectors exactly.
fn cached_answer(
    cc: &ClusterClient,
    kind: &ResolvedKind,
    namespace: Option<&Namespace>,
    args: &ListArgs,
    opts: &OpOptions,
) -> Option<Value> {
    let (watch, query) = answering_cache(cc, kind, namespace, args, opts)?;
    Some(if args.output == Output::Table && !args.objects {
        watch.table(&query)
    } else {
        watch.list(&query)
    })
}

/// The in-sync watch cache that can answer this list, and the query it
/// answers (counted as a hit); `None` (a miss, counted by reason) when
/// the kind is not cached, a selector is one the cache cannot evaluate
/// exactly, or the cache is not in sync.
fn answering_cache(
    cc: &ClusterClient,
    kind: &ResolvedKind,
    namespace: Option<&Namespace>,
    args: &ListArgs,
    opts: &OpOptions,
) -> Option<(std::sync::Arc<crate::cache::Watch>, Query)> {
    if !opts.caches.caches_kind(kind) {
        return None;
    }
    let Some(query) = Query::new(
        namespace.map(Namespace::as_str),
        args.label_selector.as_ref().map(Selector::as_str),
        args.field_selector.as_ref().map(Selector::as_str),
        args.limit,
        &kind.resource.group,
        &kind.resource.plural,
    ) else {
        crate::metrics::cache_miss(&cc.name, &kind.display_name(), "selector");
        return None;
    };
    let watch = opts.caches.answering(cc, kind, namespace)?;
    crate::metrics::cache_hit(&cc.name, &kind.display_name());
    Some((watch, query))
}
