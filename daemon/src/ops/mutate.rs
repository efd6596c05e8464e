//! Changing objects: delete, scale, create or apply, rollout restart, and
//! rollout status. Each resolves its kind, passes the policy on the exact
//! request it will send, and only then sends it.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    OpOptions, Rendered,
    call::Call,
    change::{self, ApiCall, Change, How, Operation, Outcome, Precondition},
    get::expect_object_of,
    resolve_kind,
};
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
    /// The path of the object `name`.
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

impl Target {
    /// A change of this object: `call` sent, `read_path` read before.
    pub(crate) fn change(
        &self,
        operation: Operation,
        name: &ObjectName,
        read_path: String,
        call: ApiCall,
        said: fn(Outcome<'_>) -> String,
    ) -> Change {
        Change {
            operation,
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: name.clone(),
            label: self.label.clone(),
            read_path,
            removes: call.method == http::Method::DELETE,
            call,
            said,
        }
    }
}

/// Deletes one object (in the background, as kubectl does).
pub async fn delete(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let t = allowed(cc, o, opts, "delete", Action::Delete, None).await?;
    let mut options = json!({"propagationPolicy": "Background"});
    if let Some(g) = o.grace_period_seconds {
        options["gracePeriodSeconds"] = json!(g);
    }
    let path = t.object_path(&o.name);
    let call = ApiCall::new(http::Method::DELETE, path.clone())
        .body("application/json", options)
        .precondition(Precondition::DeleteOptions);
    let change = t.change(Operation::Delete, &o.name, path, call, |_| "deleted".into());
    change::execute(cc, opts, how, vec![change]).await
}

/// Sets the replicas of a Deployment, StatefulSet or ReplicaSet (its
/// `scale` subresource).
pub async fn scale(
    cc: &ClusterClient,
    o: &ObjectRef,
    replicas: u32,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let t = allowed(cc, o, opts, "scale", Action::Patch, Some("scale")).await?;
    let url = path::subresource(&t.kind.resource, t.namespace.as_ref(), &o.name, "scale");
    let call = ApiCall::new(http::Method::PATCH, url.clone())
        .body(
            "application/merge-patch+json",
            json!({"spec": {"replicas": replicas}}),
        )
        .precondition(Precondition::Metadata);
    let operation = if replicas == 0 {
        Operation::ScaleToZero
    } else {
        Operation::Scale
    };
    let change = t.change(operation, &o.name, url, call, |out| {
        let n = |v: &Value| {
            v.pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        format!("scaled from {} to {} replicas", n(out.before), n(out.after))
    });
    change::execute(cc, opts, how, vec![change]).await
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
    how: &How,
) -> Result<Rendered, OpError> {
    let t = allowed(cc, o, opts, "rollout restart", Action::Patch, None).await?;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let body = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
    let path = t.object_path(&o.name);
    let call = ApiCall::new(http::Method::PATCH, path.clone())
        .body("application/merge-patch+json", body)
        .precondition(Precondition::Metadata);
    let change = t.change(Operation::RolloutRestart, &o.name, path, call, |out| {
        let at = out
            .after
            .pointer("/spec/template/metadata/annotations")
            .and_then(|a| a.get(RESTARTED_AT))
            .and_then(Value::as_str)
            .unwrap_or("now");
        format!("restarted (restartedAt {at})")
    });
    change::execute(cc, opts, how, vec![change]).await
}

/// The annotation `kubectl rollout restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

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
    how: &How,
    run: bool,
) -> Result<Rendered, OpError> {
    // Where overwriting is forbidden, only a create is sent: the server
    // refuses it if the object exists, with no existence check needed.
    let action = if opts.policy.disable_destructive {
        Action::Create
    } else {
        Action::Apply
    };
    let mut changes = Vec::with_capacity(docs.len());
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
        let object = path::object(&kind.resource, namespace.as_ref(), &doc.name);
        let (operation, call) = match action {
            Action::Create => (
                Operation::Create,
                ApiCall::new(
                    http::Method::POST,
                    path::collection(&kind.resource, namespace.as_ref()),
                )
                .body("application/json", body),
            ),
            _ => (
                Operation::Apply,
                ApiCall::new(http::Method::PATCH, object.clone())
                    .body("application/apply-patch+yaml", body)
                    .query("fieldManager", "nskd")
                    .query("force", "true")
                    .precondition(Precondition::Metadata),
            ),
        };
        changes.push(Change {
            operation: if run { Operation::Run } else { operation },
            kind,
            namespace,
            name: doc.name.clone(),
            label,
            read_path: object,
            call,
            removes: false,
            said: |out| {
                if out.status == 201 {
                    "created".into()
                } else {
                    "configured".into()
                }
            },
        });
    }
    match change::execute(cc, opts, how, changes).await {
        Err(OpError::Api(a)) if a.code == 409 && action == Action::Create => {
            Err(OpError::Refused(format!(
                "cluster {}: {} already exists; overwriting it is destructive and destructive operations are disabled in environment {} (disable_destructive = true){}",
                cc.name,
                a.message,
                opts.policy.environment,
                if a.hint.contains("already done before it") {
                    format!(" ({})", a.hint)
                } else {
                    String::new()
                }
            )))
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
