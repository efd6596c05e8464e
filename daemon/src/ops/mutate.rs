//! Changing objects: delete, scale, create or apply, rollout restart, and
//! rollout status. Each resolves its kind, passes the policy on the exact
//! request it will send, and only then sends it.

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{OpOptions, Rendered, call::Call, get::expect_object_of, resolve_kind};
use crate::{
    error::OpError,
    kinds::ResolvedKind,
    pool::ClusterClient,
    request::{
        InvalidInput,
        names::{ApiVersion, KindName, Namespace, ObjectName},
        path,
    },
    safety::Action,
};

/// One object.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    /// "apps/v1"; `None` resolves through discovery.
    pub api_version: Option<ApiVersion>,
    /// Kind.
    pub kind: KindName,
    /// Namespace of a namespaced kind ("default" when `None`).
    pub namespace: Option<Namespace>,
    /// Name.
    pub name: ObjectName,
    /// Delete only: grace period (`None` = the object's default).
    pub grace_period_seconds: Option<u32>,
}

/// A resolved object: its kind, namespace and a label for messages.
pub(crate) struct Target {
    pub(crate) kind: ResolvedKind,
    pub(crate) namespace: Option<Namespace>,
    pub(crate) label: String,
}

impl Target {
    pub(crate) fn object_path(&self, name: &ObjectName) -> String {
        path::object(&self.kind.resource, self.namespace.as_ref(), name)
    }
}

async fn target(cc: &ClusterClient, o: &ObjectRef, opts: &OpOptions) -> Result<Target, OpError> {
    let kind = resolve_kind(cc, o.api_version.as_ref(), &o.kind, opts.timeout).await?;
    let namespace = kind.namespaced.then(|| {
        o.namespace
            .clone()
            .unwrap_or_else(Namespace::default_namespace)
    });
    let label = label(&kind, namespace.as_ref(), &o.name);
    Ok(Target {
        kind,
        namespace,
        label,
    })
}

/// Resolves the object of `o` and passes the policy for `verb` (`delete`,
/// `scale`, `rollout restart`, ...) as `action`, before anything is sent.
pub(crate) async fn allowed(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
    verb: &str,
    action: Action,
    subresource: Option<&'static str>,
) -> Result<Target, OpError> {
    let t = target(cc, o, opts).await?;
    if let Some(what) = verb.strip_prefix("rollout ") {
        rollout_kind(&t, what)?;
    }
    opts.allow(
        cc,
        &t.kind,
        action,
        subresource,
        &format!("{verb} {}", t.label),
    )?;
    Ok(t)
}

pub(crate) fn label(
    kind: &ResolvedKind,
    namespace: Option<&Namespace>,
    name: &ObjectName,
) -> String {
    match namespace {
        Some(ns) => format!("{}/{name} in namespace {ns}", kind.display_name()),
        None => format!("{}/{name}", kind.display_name()),
    }
}

pub(crate) fn done(text: String) -> Rendered {
    Rendered {
        text,
        items: 1,
        omitted: 0,
        ..Default::default()
    }
}

pub(crate) fn build(
    r: Result<http::Request<Vec<u8>>, impl std::fmt::Display>,
    what: &str,
) -> Result<http::Request<Vec<u8>>, OpError> {
    r.map_err(|e| OpError::InvalidArgument(format!("cannot build the {what} request: {e}")))
}

/// Deletes one object.
pub async fn delete(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let t = allowed(cc, o, opts, "delete", Action::Delete, None).await?;
    let params = DeleteParams {
        grace_period_seconds: o.grace_period_seconds,
        ..DeleteParams::background()
    };
    let collection = path::collection(&t.kind.resource, t.namespace.as_ref());
    let request = build(
        kube::core::Request::new(collection).delete(&path::segment(o.name.as_str()), &params),
        "delete",
    )?;
    Call::new(cc, "delete", t.label.clone(), opts)
        .since(started)
        .json(request)
        .await?;
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
    let started = tokio::time::Instant::now();
    let t = allowed(cc, o, opts, "scale", Action::Patch, Some("scale")).await?;
    let url = path::subresource(&t.kind.resource, t.namespace.as_ref(), &o.name, "scale");
    let call = Call::new(cc, "scale", t.label.clone(), opts).since(started);
    let before = call
        .json(build(http::Request::get(&url).body(Vec::new()), "scale")?)
        .await?;
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
        );
    call.json(build(patch, "scale")?).await?;
    Ok(done(format!(
        "{} scaled from {was} to {replicas} replicas on cluster {}\n",
        t.label, cc.name
    )))
}

const ROLLOUT_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

fn rollout_kind(t: &Target, verb: &str) -> Result<(), OpError> {
    let r = &t.kind.resource;
    if r.group == "apps" && ROLLOUT_KINDS.contains(&r.kind.as_str()) {
        Ok(())
    } else {
        Err(OpError::InvalidArgument(format!(
            "rollout {verb} works on Deployments, StatefulSets and DaemonSets (group apps), not {}",
            t.kind.display_name()
        )))
    }
}

/// Restarts the pods of a Deployment, StatefulSet or DaemonSet (as
/// `kubectl rollout restart`: a new template annotation).
pub async fn rollout_restart(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let t = allowed(cc, o, opts, "rollout restart", Action::Patch, None).await?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let body = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}});
    let collection = path::collection(&t.kind.resource, t.namespace.as_ref());
    let request = build(
        kube::core::Request::new(collection).patch(
            &path::segment(o.name.as_str()),
            &PatchParams::default(),
            &Patch::Merge(&body),
        ),
        "patch",
    )?;
    Call::new(cc, "rollout restart", t.label.clone(), opts)
        .since(started)
        .json(request)
        .await?;
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
    let started = tokio::time::Instant::now();
    let t = allowed(cc, o, opts, "rollout status", Action::Get, None).await?;
    let call = Call::new(cc, "get", t.label.clone(), opts).since(started);
    let obj = call
        .json(build(
            http::Request::get(t.object_path(&o.name)).body(Vec::new()),
            "get",
        )?)
        .await?;
    expect_object_of(&obj, &t.kind, &o.name, &call, cc)?;
    let n = |p: &str| obj.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let (generation, observed) = (n("/metadata/generation"), n("/status/observedGeneration"));
    let text = if t.kind.resource.kind == "DaemonSet" {
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
    } else {
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
            format!("Waiting for rollout to finish: {ready} of {want} updated replicas are ready")
        } else {
            format!("successfully rolled out ({ready}/{want} ready)")
        }
    };
    Ok(done(format!("{}: {text}\n", t.label)))
}

/// Largest manifest accepted.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Most documents in one manifest.
pub const MAX_DOCUMENTS: usize = 1000;

/// One document of a manifest, its identity checked.
#[derive(Debug, Clone)]
pub struct ManifestDoc {
    /// `apiVersion`.
    pub api_version: ApiVersion,
    /// `kind`.
    pub kind: KindName,
    /// `metadata.namespace`, if set.
    pub namespace: Option<Namespace>,
    /// `metadata.name`.
    pub name: ObjectName,
    /// The whole document.
    pub body: Value,
}

/// Splits a YAML/JSON manifest into checked documents (before any cluster
/// is asked anything): every document needs a valid apiVersion, kind and
/// metadata.name, and a namespace that agrees with `namespace`.
pub fn parse_manifest(
    manifest: &str,
    namespace: Option<&Namespace>,
) -> Result<Vec<ManifestDoc>, OpError> {
    if manifest.len() > MAX_MANIFEST_BYTES {
        return Err(InvalidInput::new(
            "resource",
            &manifest.chars().take(40).collect::<String>(),
            format!(
                "is {} bytes; a manifest may have at most {MAX_MANIFEST_BYTES}",
                manifest.len()
            ),
        )
        .into());
    }
    let mut docs = Vec::new();
    for value in documents(manifest)? {
        if value.is_null() {
            continue;
        }
        if docs.len() == MAX_DOCUMENTS {
            return Err(OpError::InvalidArgument(format!(
                "`resource` holds more than {MAX_DOCUMENTS} documents; apply it in parts"
            )));
        }
        docs.push(check_doc(value, docs.len(), namespace)?);
    }
    if docs.is_empty() {
        return Err(OpError::InvalidArgument(
            "`resource` holds no object".into(),
        ));
    }
    Ok(docs)
}

/// The documents of a manifest: a JSON object or array of objects (JSON
/// allows characters YAML refuses), else YAML documents.
fn documents(manifest: &str) -> Result<Vec<Value>, OpError> {
    if manifest.trim_start().starts_with(['{', '[']) {
        match serde_json::from_str::<Value>(manifest) {
            Ok(Value::Array(items)) => return Ok(items),
            Ok(one) => return Ok(vec![one]),
            // Not JSON after all: YAML flow style reads it below.
            Err(_) => {}
        }
    }
    yaml_serde::Deserializer::from_str(manifest)
        .enumerate()
        .map(|(i, de)| {
            Value::deserialize(de).map_err(|e| {
                OpError::InvalidArgument(format!(
                    "`resource` is not valid YAML/JSON (document {}): {}",
                    i + 1,
                    crate::kubeconfig::one_line(&e.to_string())
                ))
            })
        })
        .collect()
}

fn check_doc(
    mut body: Value,
    index: usize,
    namespace: Option<&Namespace>,
) -> Result<ManifestDoc, OpError> {
    let text = |p: &str| body.pointer(p).and_then(Value::as_str).map(str::to_string);
    let field = |f: &str| format!("resource document {} {f}", index + 1);
    let (Some(api_version), Some(kind), Some(name)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(OpError::InvalidArgument(format!(
            "resource document {}: every object needs apiVersion, kind and metadata.name (strings)",
            index + 1
        )));
    };
    let api_version = ApiVersion::parse(&field("apiVersion"), &api_version)?;
    let kind = KindName::parse(&field("kind"), &kind)?;
    let name = ObjectName::parse(&field("metadata.name"), &name)?;
    let own = match body.pointer("/metadata/namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(ns)) => Some(Namespace::parse(&field("metadata.namespace"), ns)?),
        Some(other) => {
            return Err(InvalidInput::new(
                &field("metadata.namespace"),
                &other.to_string(),
                "must be a string",
            )
            .into());
        }
    };
    if let (Some(own), Some(arg)) = (&own, namespace)
        && own != arg
    {
        return Err(OpError::InvalidArgument(format!(
            "resource document {} ({kind} {name}) names namespace {own:?} but the call's `namespace` is {arg:?}; make them agree or leave one out",
            index + 1
        )));
    }
    if let Value::Object(map) = &mut body
        && let Some(Value::Object(meta)) = map.get_mut("metadata")
    {
        meta.remove("resourceVersion");
    }
    Ok(ManifestDoc {
        api_version,
        kind,
        namespace: own.or_else(|| namespace.cloned()),
        name,
        body,
    })
}

/// Creates (with `disable_destructive`: never overwrites) or server-side
/// applies every document. All documents are resolved and checked against
/// the policy before the first is sent.
pub async fn apply(
    cc: &ClusterClient,
    docs: &[ManifestDoc],
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    // Where overwriting is forbidden, only a create is sent: the server
    // refuses it if the object exists, with no existence check needed.
    let action = if opts.policy.disable_destructive {
        Action::Create
    } else {
        Action::Apply
    };
    let mut planned = Vec::with_capacity(docs.len());
    for doc in docs {
        let kind = resolve_kind(cc, Some(&doc.api_version), &doc.kind, opts.timeout).await?;
        let namespace = kind.namespaced.then(|| {
            doc.namespace
                .clone()
                .unwrap_or_else(Namespace::default_namespace)
        });
        let label = label(&kind, namespace.as_ref(), &doc.name);
        let verb = if action == Action::Create {
            "create"
        } else {
            "apply"
        };
        opts.allow(cc, &kind, action, None, &format!("{verb} {label}"))?;
        let mut body = doc.body.clone();
        if let (Some(ns), Value::Object(meta)) = (&namespace, &mut body["metadata"]) {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        }
        planned.push((kind, namespace, label, body, doc));
    }
    let mut lines = Vec::new();
    for (kind, namespace, label, body, doc) in planned {
        let collection = path::collection(&kind.resource, namespace.as_ref());
        let call = Call::new(cc, "apply", label.clone(), opts).since(started);
        let request = match action {
            Action::Create => {
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                build(
                    kube::core::Request::new(collection).create(&PostParams::default(), bytes),
                    "create",
                )?
            }
            _ => build(
                kube::core::Request::new(collection).patch(
                    &path::segment(doc.name.as_str()),
                    &PatchParams::apply("nskd").force(),
                    &Patch::Apply(&body),
                ),
                "apply",
            )?,
        };
        let (status, _) = match call.json_reply(request).await {
            Err(OpError::Api(a)) if a.code == 409 && action == Action::Create => {
                return Err(OpError::Refused(format!(
                    "cluster {}: {label} already exists; overwriting it is destructive and destructive operations are disabled in environment {} (disable_destructive = true){}",
                    cc.name,
                    opts.policy.environment,
                    applied_so_far(&lines)
                )));
            }
            Err(e) => {
                return Err(with_applied(e, &lines));
            }
            Ok(reply) => reply,
        };
        let outcome = if status == http::StatusCode::CREATED {
            "created"
        } else {
            "configured"
        };
        lines.push(format!("{label} {outcome}"));
    }
    Ok(Rendered {
        text: format!("{} on cluster {}\n", lines.join("\n"), cc.name),
        items: lines.len() as u32,
        omitted: 0,
        ..Default::default()
    })
}

fn applied_so_far(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; already applied before it: {}", lines.join(", "))
    }
}

/// A failure part-way through a manifest says what was already applied.
fn with_applied(e: OpError, lines: &[String]) -> OpError {
    if lines.is_empty() {
        return e;
    }
    match e {
        OpError::Api(mut a) => {
            a.hint = format!("{}{}", a.hint, applied_so_far(lines));
            OpError::Api(a)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_checked_before_anything_is_sent() {
        let ns = Namespace::parse("namespace", "shop").unwrap();
        let docs = parse_manifest(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# c\n---\n{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"b\", \"namespace\": \"shop\", \"resourceVersion\": \"1\"}}\n",
            Some(&ns),
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].namespace.as_ref().unwrap().as_str(), "shop");
        assert!(docs[1].body.pointer("/metadata/resourceVersion").is_none());
        // A string holding a document separator is not split.
        let docs = parse_manifest(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: |\n    one\n    ---\n    two\n",
            None,
        )
        .unwrap();
        assert_eq!(docs.len(), 1);
        for (bad, field) in [
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: 'scratch?'}\n",
                "metadata.namespace",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 'x/../y'}\n",
                "metadata.name",
            ),
            (
                "apiVersion: 'v1?x'\nkind: ConfigMap\nmetadata: {name: x}\n",
                "apiVersion",
            ),
            (
                "apiVersion: v1\nkind: 'secrets/x'\nmetadata: {name: x}\n",
                "kind",
            ),
        ] {
            let e = parse_manifest(bad, None).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("nothing was sent"), "{e}");
        }
        let e = parse_manifest(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: other}\n",
            Some(&ns),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("make them agree"), "{e}");
        assert!(parse_manifest("", None).is_err());
        assert!(parse_manifest(&"#".repeat(MAX_MANIFEST_BYTES + 1), None).is_err());
        let many =
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n".repeat(MAX_DOCUMENTS + 1);
        assert!(
            parse_manifest(&many, None)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }
}
