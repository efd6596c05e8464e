//! Changing objects: delete, scale, server-side apply, rollout restart,
//! and rollout status, each checked against the safety switches first.

use kube::{
    Resource,
    api::{DeleteParams, DynamicObject, Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{
    Rendered,
    discovery::ResolvedKind,
    list::{OpOptions, resolve_kind},
};
use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
    safety::{self, Verb},
};

/// One object.
#[derive(Debug, Clone, Default)]
pub struct ObjectRef {
    /// "apps/v1"; empty resolves through discovery.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace of a namespaced kind ("default" when empty).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Delete only: grace period (`None` = the object's default).
    pub grace_period_seconds: Option<u32>,
}

/// A resolved object: its kind, namespace and URL.
struct Target {
    kind: ResolvedKind,
    namespace: Option<String>,
    label: String,
}

async fn target(cc: &ClusterClient, o: &ObjectRef, opts: &OpOptions) -> Result<Target, OpError> {
    if o.kind.trim().is_empty() || o.name.trim().is_empty() {
        return Err(OpError::InvalidArgument(
            "`kind` and `name` are required".into(),
        ));
    }
    let kind = resolve_kind(cc, &o.api_version, &o.kind, opts.timeout).await?;
    let namespace = kind.namespaced.then(|| {
        o.namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into())
    });
    let label = match &namespace {
        Some(ns) => format!("{}/{} in namespace {ns}", kind.display_name(), o.name),
        None => format!("{}/{}", kind.display_name(), o.name),
    };
    Ok(Target {
        kind,
        namespace,
        label,
    })
}

fn ctx<'a>(cc: &'a ClusterClient, verb: &'a str, resource: &'a str) -> CallContext<'a> {
    CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb,
        resource,
    }
}

async fn send(
    cc: &ClusterClient,
    request: http::Request<Vec<u8>>,
    c: &CallContext<'_>,
    opts: &OpOptions,
) -> Result<Value, OpError> {
    match tokio::time::timeout(opts.timeout, cc.client.request::<Value>(request)).await {
        Err(_) => Err(c.timeout(opts.timeout)),
        Ok(Err(e)) => Err(c.error(e)),
        Ok(Ok(v)) => Ok(v),
    }
}

fn done(text: String) -> Rendered {
    Rendered {
        text,
        items: 1,
        omitted: 0,
        ..Default::default()
    }
}

/// Deletes one object.
pub async fn delete(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let t = target(cc, o, opts).await?;
    safety::check(
        &opts.policy,
        &cc.name,
        Verb::Destructive,
        &t.kind,
        &format!("delete {}", t.label),
    )?;
    let url = DynamicObject::url_path(&t.kind.resource, t.namespace.as_deref());
    let request = kube::core::Request::new(url)
        .delete(
            &o.name,
            &DeleteParams {
                grace_period_seconds: o.grace_period_seconds,
                ..DeleteParams::background()
            },
        )
        .map_err(|e| OpError::InvalidArgument(format!("cannot build the delete request: {e}")))?;
    send(cc, request, &ctx(cc, "delete", &t.label), opts).await?;
    Ok(done(format!(
        "{} deleted on cluster {}\n",
        t.label, cc.name
    )))
}

/// Sets the replicas of a Deployment, StatefulSet or ReplicaSet (its
/// `scale` subresource).
pub async fn scale(
    cc: &ClusterClient,
    o: &ObjectRef,
    replicas: u32,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let t = target(cc, o, opts).await?;
    safety::check(
        &opts.policy,
        &cc.name,
        Verb::Destructive,
        &t.kind,
        &format!("scale {}", t.label),
    )?;
    let url = format!(
        "{}/{}/scale",
        DynamicObject::url_path(&t.kind.resource, t.namespace.as_deref()),
        o.name
    );
    let c = ctx(cc, "scale", &t.label);
    let get = http::Request::get(&url)
        .body(Vec::new())
        .expect("valid request");
    let before = send(cc, get, &c, opts).await?;
    let was = before
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let patch = http::Request::patch(&url)
        .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
        .body(
            json!({"spec": {"replicas": replicas}})
                .to_string()
                .into_bytes(),
        )
        .expect("valid request");
    send(cc, patch, &c, opts).await?;
    Ok(done(format!(
        "{} scaled from {was} to {replicas} replicas on cluster {}\n",
        t.label, cc.name
    )))
}

/// Restarts the pods of a Deployment, StatefulSet or DaemonSet (as
/// `kubectl rollout restart`: a new template annotation).
pub async fn rollout_restart(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let t = target(cc, o, opts).await?;
    if !matches!(
        t.kind.resource.kind.as_str(),
        "Deployment" | "StatefulSet" | "DaemonSet"
    ) {
        return Err(OpError::InvalidArgument(format!(
            "rollout restart works on Deployments, StatefulSets and DaemonSets, not {}",
            t.kind.resource.kind
        )));
    }
    safety::check(
        &opts.policy,
        &cc.name,
        Verb::Write,
        &t.kind,
        &format!("rollout restart {}", t.label),
    )?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let body = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
    let url = DynamicObject::url_path(&t.kind.resource, t.namespace.as_deref());
    let request = kube::core::Request::new(url)
        .patch(&o.name, &PatchParams::default(), &Patch::Merge(&body))
        .map_err(|e| OpError::InvalidArgument(format!("cannot build the patch request: {e}")))?;
    send(cc, request, &ctx(cc, "rollout restart", &t.label), opts).await?;
    Ok(done(format!(
        "{} restarted (restartedAt {now}) on cluster {}\n",
        t.label, cc.name
    )))
}

/// Where a rollout stands, as `kubectl rollout status` says it.
pub async fn rollout_status(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let t = target(cc, o, opts).await?;
    safety::check(
        &opts.policy,
        &cc.name,
        Verb::Read,
        &t.kind,
        &format!("rollout status {}", t.label),
    )?;
    let url = format!(
        "{}/{}",
        DynamicObject::url_path(&t.kind.resource, t.namespace.as_deref()),
        o.name
    );
    let get = http::Request::get(&url)
        .body(Vec::new())
        .expect("valid request");
    let obj = send(cc, get, &ctx(cc, "get", &t.label), opts).await?;
    let n = |p: &str| obj.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let (generation, observed) = (n("/metadata/generation"), n("/status/observedGeneration"));
    let text = match t.kind.resource.kind.as_str() {
        "Deployment" | "StatefulSet" => {
            let (want, updated, ready) = (
                n("/spec/replicas"),
                n("/status/updatedReplicas"),
                n("/status/readyReplicas"),
            );
            if observed < generation {
                "Waiting for the rollout to be observed by its controller (status.observedGeneration < metadata.generation; is the controller-manager running?)".to_string()
            } else if updated < want {
                format!(
                    "Waiting for rollout to finish: {updated} of {want} updated replicas are available"
                )
            } else if ready < want {
                format!(
                    "Waiting for rollout to finish: {ready} of {want} updated replicas are ready"
                )
            } else {
                format!("successfully rolled out ({ready}/{want} ready)")
            }
        }
        "DaemonSet" => {
            let (want, updated, ready) = (
                n("/status/desiredNumberScheduled"),
                n("/status/updatedNumberScheduled"),
                n("/status/numberReady"),
            );
            if observed < generation || updated < want || ready < want {
                format!(
                    "Waiting for daemon set rollout to finish: {updated} of {want} updated, {ready} ready"
                )
            } else {
                format!("successfully rolled out ({ready}/{want} ready)")
            }
        }
        other => {
            return Err(OpError::InvalidArgument(format!(
                "rollout status works on Deployments, StatefulSets and DaemonSets, not {other}"
            )));
        }
    };
    Ok(done(format!("{}: {text}\n", t.label)))
}

/// Server-side apply of every document of `manifest` (YAML or JSON).
pub async fn apply(
    cc: &ClusterClient,
    manifest: &str,
    namespace: Option<&str>,
    run: bool,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let docs: Vec<Value> = manifest
        .split("\n---")
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|d| {
            yaml_serde::from_str::<Value>(d).map_err(|e| {
                OpError::InvalidArgument(format!("the manifest is not valid YAML/JSON: {e}"))
            })
        })
        .collect::<Result<_, _>>()?;
    if docs.is_empty() {
        return Err(OpError::InvalidArgument(
            "`resource` holds no object".into(),
        ));
    }
    let mut lines = Vec::new();
    for mut doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind_name = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if api_version.is_empty() || kind_name.is_empty() || name.is_empty() {
            return Err(OpError::InvalidArgument(
                "every object needs apiVersion, kind and metadata.name".into(),
            ));
        }
        let kind = resolve_kind(cc, &api_version, &kind_name, opts.timeout).await?;
        let ns = kind.namespaced.then(|| {
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(namespace.map(str::to_string))
                .unwrap_or_else(|| "default".into())
        });
        if let (Some(ns), Value::Object(meta)) = (&ns, &mut doc["metadata"]) {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        let label = match &ns {
            Some(n) => format!("{}/{name} in namespace {n}", kind.display_name()),
            None => format!("{}/{name}", kind.display_name()),
        };
        let url = DynamicObject::url_path(&kind.resource, ns.as_deref());
        let c = ctx(cc, "apply", &label);
        let exists = {
            let get = http::Request::get(format!("{url}/{name}"))
                .body(Vec::new())
                .expect("valid request");
            match send(cc, get, &c, opts).await {
                Ok(_) => true,
                Err(OpError::Api(a)) if a.code == 404 => false,
                Err(e) => return Err(e),
            }
        };
        // Overwriting an object, or running a workload, is destructive.
        let verb = if exists || run {
            Verb::Destructive
        } else {
            Verb::Write
        };
        safety::check(
            &opts.policy,
            &cc.name,
            verb,
            &kind,
            &format!("apply {label}"),
        )?;
        let request = kube::core::Request::new(url)
            .patch(
                &name,
                &PatchParams::apply("nskd").force(),
                &Patch::Apply(&doc),
            )
            .map_err(|e| {
                OpError::InvalidArgument(format!("cannot build the apply request: {e}"))
            })?;
        send(cc, request, &c, opts).await?;
        lines.push(format!(
            "{label} {}",
            if exists { "configured" } else { "created" }
        ));
    }
    Ok(Rendered {
        text: format!("{} on cluster {}\n", lines.join("\n"), cc.name),
        items: lines.len() as u32,
        omitted: 0,
        ..Default::default()
    })
}
