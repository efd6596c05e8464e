//! Getting one object of any kind, cleaned (managedFields and
//! last-applied removed, Secret values masked) and rendered as YAML or JSON.

use kube::{Resource, api::DynamicObject};
use serde_json::Value;

use super::{
    Output, Rendered,
    list::{OpOptions, resolve_kind},
    shape::clean_object,
};
use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
};

/// What to get.
#[derive(Debug, Clone, Default)]
pub struct GetArgs {
    /// "v1", "apps/v1"; empty resolves through discovery.
    pub api_version: String,
    /// Kind, plural or short name.
    pub kind: String,
    /// Namespace of a namespaced kind ("default" when empty).
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
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
    if args.kind.trim().is_empty() || args.name.trim().is_empty() {
        return Err(OpError::InvalidArgument(
            "`kind` and `name` are required (e.g. kind \"Pod\", name \"web-1\")".into(),
        ));
    }
    let started = tokio::time::Instant::now();
    let kind = resolve_kind(cc, &args.api_version, &args.kind, opts.timeout).await?;
    crate::safety::check(
        &opts.policy,
        &cc.name,
        crate::safety::Verb::Read,
        &kind,
        &format!("get {} {}", kind.display_name(), args.name),
    )?;
    let namespace = kind.namespaced.then(|| {
        args.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into())
    });
    let resource = match &namespace {
        Some(ns) => format!("{} {} in namespace {ns}", kind.display_name(), args.name),
        None => format!("{} {}", kind.display_name(), args.name),
    };
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "get",
        resource: &resource,
    };
    let cached = if args.live || !opts.use_cache {
        None
    } else {
        opts.caches
            .answering(cc, &kind, namespace.as_deref())
            .and_then(|w| w.object(namespace.as_deref(), &args.name))
    };
    let from_cache = cached.is_some();
    let mut object = match cached {
        Some(object) => {
            crate::metrics::cache_hit(&cc.name, &kind.display_name());
            object
        }
        None => {
            let url = DynamicObject::url_path(&kind.resource, namespace.as_deref());
            let request = kube::core::Request::new(url)
                .get(&args.name, &Default::default())
                .map_err(|e| {
                    OpError::InvalidArgument(format!("cannot build the get request: {e}"))
                })?;
            let remaining = opts.timeout.saturating_sub(started.elapsed());
            match tokio::time::timeout(remaining, cc.client.request::<Value>(request)).await {
                Err(_) => return Err(ctx.timeout(opts.timeout)),
                Ok(Err(e)) => return Err(ctx.error(e)),
                Ok(Ok(v)) => v,
            }
        }
    };
    clean_object(&mut object, opts.reveal_secrets);
    let text = match args.output {
        Output::Json => serde_json::to_string_pretty(&object).unwrap_or_default() + "\n",
        _ => yaml_serde::to_string(&object).unwrap_or_default(),
    };
    Ok(Rendered {
        text,
        items: 1,
        omitted: 0,
        from_cache,
    })
}
