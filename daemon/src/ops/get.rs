//! Getting one object of any kind, cleaned (managedFields and
//! last-applied removed, Secret values masked) and rendered as YAML or JSON.

use serde_json::Value;

use super::{OpOptions, Output, Rendered, call::Call, resolve_kind};
use crate::{
    error::OpError,
    kinds::ResolvedKind,
    pool::ClusterClient,
    request::{
        names::{ApiVersion, KindName, Namespace, ObjectName},
        path,
    },
    safety::{Action, clean_object},
};

/// What to get.
#[derive(Debug, Clone)]
pub struct GetArgs {
    /// "v1", "apps/v1"; `None` resolves through discovery.
    pub api_version: Option<ApiVersion>,
    /// Kind, plural or short name.
    pub kind: KindName,
    /// Namespace of a namespaced kind ("default" when `None`).
    pub namespace: Option<Namespace>,
    /// Object name.
    pub name: ObjectName,
    /// YAML (default for Table) or JSON.
    pub output: Output,
    /// Read from the API server even when a watch cache could answer.
    pub live: bool,
}

/// Gets one object.
pub async fn get(
    cc: &ClusterClient,
    args: &GetArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let kind = resolve_kind(cc, args.api_version.as_ref(), &args.kind, opts.timeout).await?;
    opts.allow(
        cc,
        &kind,
        Action::Get,
        None,
        &format!("get {} {}", kind.display_name(), args.name),
    )?;
    let namespace = kind.namespaced.then(|| {
        args.namespace
            .clone()
            .unwrap_or_else(Namespace::default_namespace)
    });
    let resource = match &namespace {
        Some(ns) => format!("{} {} in namespace {ns}", kind.display_name(), args.name),
        None => format!("{} {}", kind.display_name(), args.name),
    };
    let cached = if args.live || !opts.use_cache {
        None
    } else {
        opts.caches
            .answering(cc, &kind, namespace.as_ref())
            .and_then(|w| {
                w.object(
                    namespace.as_ref().map(Namespace::as_str),
                    args.name.as_str(),
                )
            })
    };
    let from_cache = cached.is_some();
    let mut object = match cached {
        Some(object) => {
            crate::metrics::cache_hit(&cc.name, &kind.display_name());
            object
        }
        None => {
            let call = Call::new(cc, "get", resource, opts).since(started);
            let url = path::object(&kind.resource, namespace.as_ref(), &args.name);
            let request = http::Request::get(url).body(Vec::new()).map_err(|e| {
                OpError::InvalidArgument(format!("cannot build the get request: {e}"))
            })?;
            let object = call.json(request).await?;
            expect_object_of(&object, &kind, &args.name, &call, cc)?;
            object
        }
    };
    clean_object(&mut object, &opts.policy.masking, &kind.resource.plural);
    let text = match args.output {
        Output::Json => serde_json::to_string_pretty(&object).unwrap_or_default() + "\n",
        _ => yaml_serde::to_string(&object).unwrap_or_default(),
    };
    Ok(Rendered {
        text,
        items: 1,
        omitted: 0,
        from_cache,
        change: None,
    })
}

/// Refuses an answer that is not the asked object: another kind, group or
/// name is never relabelled.
pub fn expect_object_of(
    object: &Value,
    kind: &ResolvedKind,
    name: &ObjectName,
    call: &Call<'_>,
    cc: &ClusterClient,
) -> Result<(), OpError> {
    let got_kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let got_name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if got_kind == kind.resource.kind && group == kind.resource.group && got_name == name.as_str() {
        return Ok(());
    }
    Err(OpError::UnexpectedAnswer {
        cluster: cc.name.clone(),
        what: format!("get {}", call.resource()),
        expected: format!(
            "{} {name} ({})",
            kind.resource.kind, kind.resource.api_version
        ),
        got: format!("{got_kind:?} {got_name:?} ({api_version:?})"),
    })
}
