//! Rollout history, undo, pause and resume, as kubectl does them: a
//! Deployment's revisions are its ReplicaSets, a StatefulSet's or
//! DaemonSet's are its ControllerRevisions. The requests are built by pure
//! functions ([`undo_plan`], [`pause_patch`]) from what the server returned,
//! then sent.

use kube::api::ListParams;
use serde_json::{Value, json};

use super::{
    OpOptions, Rendered,
    call::Call,
    change::{self, ApiCall, How, Operation, Outcome, Precondition},
    mutate::{ObjectRef, Target, allowed, build, done},
    resolve_kind,
};
use crate::{
    error::OpError,
    kinds::ResolvedKind,
    pool::ClusterClient,
    request::{
        names::{ApiVersion, KindName, Selector},
        path,
    },
    safety::Action,
};

/// Annotation holding a Deployment's (and its ReplicaSets') revision.
const REVISION: &str = "deployment.kubernetes.io/revision";
/// Annotation holding why a revision was made.
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// Deployment annotations an undo keeps from the Deployment rather than
/// copying from the ReplicaSet (kubectl's `annotationsToSkip`).
const ANNOTATIONS_TO_SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];
/// Most revisions shown (the newest).
const MAX_SHOWN: usize = 50;

/// One revision of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// Revision number.
    pub number: i64,
    /// The ReplicaSet or ControllerRevision holding it.
    pub holder: String,
    /// `kubernetes.io/change-cause`, if any.
    pub change_cause: Option<String>,
    /// The pod template of this revision (ReplicaSet: its
    /// `pod-template-hash` label removed).
    pub template: Value,
    /// ControllerRevisions: the patch that restores it (`data`).
    pub data: Option<Value>,
    /// The holder's annotations (a Deployment undo copies them).
    pub annotations: serde_json::Map<String, Value>,
}

impl Revision {
    /// `container=image` of each container of the template.
    pub fn images(&self) -> Vec<String> {
        images(&self.template)
    }
}

fn images(template: &Value) -> Vec<String> {
    template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c["name"].as_str().unwrap_or("?"),
                        c["image"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn controlled_by(item: &Value, uid: &str) -> bool {
    item.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["uid"].as_str() == Some(uid) && r["controller"].as_bool() == Some(true))
        })
}

fn annotations(item: &Value) -> serde_json::Map<String, Value> {
    item.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn name_of(item: &Value) -> String {
    item.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The revisions of a Deployment (`owner`) among `replicasets` (a list
/// answer): those it controls, with a revision annotation, oldest first.
pub fn replicaset_revisions(owner: &Value, replicasets: &Value) -> Vec<Revision> {
    let uid = owner.pointer("/metadata/uid").and_then(Value::as_str);
    let mut out: Vec<Revision> = items(replicasets)
        .iter()
        .filter(|rs| uid.is_some_and(|u| controlled_by(rs, u)))
        .filter_map(|rs| {
            let annotations = annotations(rs);
            let number = annotations.get(REVISION)?.as_str()?.parse().ok()?;
            let mut template = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
            strip_hash(&mut template);
            Some(Revision {
                number,
                holder: name_of(rs),
                change_cause: change_cause(&annotations),
                template,
                data: None,
                annotations,
            })
        })
        .collect();
    out.sort_by_key(|r| r.number);
    out
}

/// The revisions of a StatefulSet or DaemonSet (`owner`) among
/// `revisions` (a ControllerRevision list answer), oldest first.
pub fn controller_revisions(owner: &Value, revisions: &Value) -> Vec<Revision> {
    let uid = owner.pointer("/metadata/uid").and_then(Value::as_str);
    let mut out: Vec<Revision> = items(revisions)
        .iter()
        .filter(|cr| uid.is_some_and(|u| controlled_by(cr, u)))
        .filter_map(|cr| {
            let number = cr["revision"].as_i64()?;
            let data = cr.get("data").cloned().unwrap_or(Value::Null);
            let mut template = data
                .pointer("/spec/template")
                .cloned()
                .unwrap_or(Value::Null);
            if let Value::Object(t) = &mut template {
                t.remove("$patch");
            }
            let annotations = annotations(cr);
            Some(Revision {
                number,
                holder: name_of(cr),
                change_cause: change_cause(&annotations),
                template,
                data: Some(data),
                annotations,
            })
        })
        .collect();
    out.sort_by_key(|r| r.number);
    out
}

fn items(list: &Value) -> Vec<Value> {
    list.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn change_cause(annotations: &serde_json::Map<String, Value>) -> Option<String> {
    annotations
        .get(CHANGE_CAUSE)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn strip_hash(template: &mut Value) {
    if let Some(Value::Object(labels)) = template.pointer_mut("/metadata/labels") {
        labels.remove("pod-template-hash");
    }
}

/// The `kubectl rollout history` table of `revisions`.
pub fn history_table(revisions: &[Revision]) -> String {
    if revisions.is_empty() {
        return "No rollout history found (no revisions are recorded yet; is the controller-manager running?)\n".into();
    }
    let shown = &revisions[revisions.len().saturating_sub(MAX_SHOWN)..];
    let rows: Vec<[String; 3]> = shown
        .iter()
        .map(|r| {
            [
                r.number.to_string(),
                r.images().join(","),
                one_line(r.change_cause.as_deref().unwrap_or("<none>")),
            ]
        })
        .collect();
    let width = |i: usize, head: &str| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .max(head.len())
    };
    let (w0, w1) = (width(0, "REVISION"), width(1, "IMAGES"));
    let mut text = format!("{:<w0$}  {:<w1$}  CHANGE-CAUSE\n", "REVISION", "IMAGES");
    for r in &rows {
        text.push_str(&format!("{:<w0$}  {:<w1$}  {}\n", r[0], r[1], r[2]));
    }
    if shown.len() < revisions.len() {
        text.push_str(&format!(
            "({} older revisions not shown)\n",
            revisions.len() - shown.len()
        ));
    }
    text
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// What an undo does.
#[derive(Debug)]
pub enum UndoPlan {
    /// The current template already is that revision's: nothing to send.
    Skip {
        /// The revision.
        revision: i64,
    },
    /// Send this patch.
    Patch {
        /// The revision restored.
        revision: i64,
        /// The request.
        call: ApiCall,
    },
}

/// The revision an undo restores: `to_revision`, or (0) the newest one
/// before the current, as kubectl picks them.
pub fn pick_revision(
    revisions: &[Revision],
    to_revision: i64,
    what: &str,
) -> Result<Revision, OpError> {
    let known = || {
        let n: Vec<String> = revisions.iter().map(|r| r.number.to_string()).collect();
        if n.is_empty() {
            "none".into()
        } else {
            n.join(", ")
        }
    };
    if to_revision > 0 {
        return revisions
            .iter()
            .find(|r| r.number == to_revision)
            .cloned()
            .ok_or_else(|| {
                OpError::InvalidArgument(format!(
                    "{what}: revision {to_revision} is not in its history (revisions: {}); rollout_history lists them",
                    known()
                ))
            });
    }
    match revisions {
        [.., previous, _current] => Ok(previous.clone()),
        _ => Err(OpError::InvalidArgument(format!(
            "{what}: no previous revision to roll back to (revisions: {})",
            known()
        ))),
    }
}

/// The undo of `object` (as the server returned it; `kind` is its Kind)
/// to `revision`. Deployments get kubectl's JSON patch of the template and
/// annotations, StatefulSets and DaemonSets the revision's own strategic
/// merge patch; the change engine binds the object's resourceVersion into
/// either when a plan is used.
pub fn undo_plan(
    kind: &str,
    object_path: &str,
    object: &Value,
    revision: &Revision,
) -> Result<UndoPlan, OpError> {
    let mut current = object
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    strip_hash(&mut current);
    if current == revision.template {
        return Ok(UndoPlan::Skip {
            revision: revision.number,
        });
    }
    let call = ApiCall::new(http::Method::PATCH, object_path.to_string());
    let call = if kind == "Deployment" {
        let own = annotations(object);
        let mut restored = serde_json::Map::new();
        for k in ANNOTATIONS_TO_SKIP {
            if let Some(v) = own.get(*k) {
                restored.insert((*k).to_string(), v.clone());
            }
        }
        for (k, v) in &revision.annotations {
            if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
                restored.insert(k.clone(), v.clone());
            }
        }
        call.body(
            "application/json-patch+json",
            json!([
                {"op": "replace", "path": "/spec/template", "value": revision.template},
                {"op": "replace", "path": "/metadata/annotations", "value": restored},
            ]),
        )
        .precondition(Precondition::JsonPatch)
    } else {
        let patch = revision.data.clone().unwrap_or(Value::Null);
        if !patch.is_object() {
            return Err(OpError::InvalidArgument(format!(
                "ControllerRevision {} holds no patch (data); it cannot be restored",
                revision.holder
            )));
        }
        call.body("application/strategic-merge-patch+json", patch)
            .precondition(Precondition::Metadata)
    };
    Ok(UndoPlan::Patch {
        revision: revision.number,
        call,
    })
}

/// The merge patch that pauses (`paused`) or resumes a Deployment, or
/// `None` when it already is so.
pub fn pause_call(object_path: &str, object: &Value, paused: bool) -> Option<ApiCall> {
    let now = object
        .pointer("/spec/paused")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    (now != paused).then(|| {
        ApiCall::new(http::Method::PATCH, object_path.to_string())
            .body(
                "application/merge-patch+json",
                json!({"spec": {"paused": paused}}),
            )
            .precondition(Precondition::Metadata)
    })
}

async fn apps_kind(
    cc: &ClusterClient,
    kind: &'static str,
    opts: &OpOptions,
) -> Result<ResolvedKind, OpError> {
    let apps = ApiVersion::parse("apiVersion", "apps/v1").expect("apps/v1 is an API version");
    let kind = KindName::parse("kind", kind).expect("a built-in kind name");
    resolve_kind(cc, Some(&apps), &kind, opts.timeout).await
}

/// The object and its revisions, oldest first.
async fn revisions(
    cc: &ClusterClient,
    t: &Target,
    o: &ObjectRef,
    opts: &OpOptions,
    started: tokio::time::Instant,
) -> Result<(Value, Vec<Revision>), OpError> {
    let call = Call::new(cc, "get", t.label.clone(), opts).since(started);
    let object = call
        .json(build(
            http::Request::get(t.object_path(&o.name)).body(Vec::new()),
            "get",
        )?)
        .await?;
    let is_deployment = t.kind.resource.kind == "Deployment";
    let holder = apps_kind(
        cc,
        if is_deployment {
            "ReplicaSet"
        } else {
            "ControllerRevision"
        },
        opts,
    )
    .await?;
    opts.allow(
        cc,
        &holder,
        Action::List,
        None,
        &format!("list the revisions of {}", t.label),
    )?;
    // matchLabels only: a superset of the selector; ownership decides.
    let selector = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let selector = Selector::parse("spec.selector", &selector)?;
    let params = ListParams::default().labels(selector.as_str());
    let request = build(
        kube::core::Request::new(path::collection(&holder.resource, t.namespace.as_ref()))
            .list(&params),
        "list",
    )?;
    let list = Call::new(cc, "list", holder.resource.plural.clone(), opts)
        .since(started)
        .json(request)
        .await?;
    let revs = if is_deployment {
        replicaset_revisions(&object, &list)
    } else {
        controller_revisions(&object, &list)
    };
    Ok((object, revs))
}

/// `kubectl rollout history`: revisions with images and change-cause.
pub async fn history(
    cc: &ClusterClient,
    o: &ObjectRef,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let t = allowed(cc, o, opts, "rollout history", Action::Get, None).await?;
    let (_, revs) = revisions(cc, &t, o, opts, started).await?;
    Ok(Rendered {
        text: format!("{}\n{}", t.label, history_table(&revs)),
        items: revs.len() as u32,
        omitted: revs.len().saturating_sub(MAX_SHOWN) as u32,
        ..Default::default()
    })
}

/// `kubectl rollout undo`: restores the template of `to_revision` (0 =
/// the previous revision), through the change engine.
pub async fn undo(
    cc: &ClusterClient,
    o: &ObjectRef,
    to_revision: i64,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let t = allowed(cc, o, opts, "rollout undo", Action::Patch, None).await?;
    let (object, revs) = revisions(cc, &t, o, opts, started).await?;
    let kind = t.kind.resource.kind.as_str();
    if kind == "Deployment" && object.pointer("/spec/paused") == Some(&Value::Bool(true)) {
        return Err(OpError::InvalidArgument(format!(
            "{} is paused; as kubectl, a paused Deployment is not rolled back: resume it first (rollout_resume) and try again",
            t.label
        )));
    }
    let revision = pick_revision(&revs, to_revision, &t.label)?;
    let path = t.object_path(&o.name);
    match undo_plan(kind, &path, &object, &revision)? {
        UndoPlan::Skip { revision } => Ok(done(format!(
            "{}: skipped rollback (current template already matches revision {revision}); nothing was sent\n",
            t.label
        ))),
        UndoPlan::Patch { call, .. } => {
            let change = t.change(Operation::RolloutUndo, &o.name, path, call, |out| {
                let images = |v: &Value| {
                    images(v.pointer("/spec/template").unwrap_or(&Value::Null)).join(",")
                };
                format!(
                    "rolled back (images {} -> {})",
                    images(out.before),
                    images(out.after)
                )
            });
            change::execute(cc, opts, how, vec![change]).await
        }
    }
}

/// `kubectl rollout pause` (`paused`) or `resume`: Deployments only, as
/// kubectl.
pub async fn pause(
    cc: &ClusterClient,
    o: &ObjectRef,
    paused: bool,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    // Pausing stops nothing that runs; resuming may start a pending rollout.
    let (verb, action, operation) = if paused {
        ("rollout pause", Action::Toggle, Operation::RolloutPause)
    } else {
        ("rollout resume", Action::Patch, Operation::RolloutResume)
    };
    let t = allowed(cc, o, opts, verb, action, None).await?;
    if t.kind.resource.kind != "Deployment" {
        return Err(OpError::InvalidArgument(format!(
            "{verb} works on Deployments only (as kubectl), not {}; a StatefulSet or DaemonSet rollout is held with its updateStrategy (partition, OnDelete)",
            t.kind.display_name()
        )));
    }
    let path = t.object_path(&o.name);
    let object = Call::new(cc, "get", t.label.clone(), opts)
        .since(started)
        .json(build(http::Request::get(&path).body(Vec::new()), "get")?)
        .await?;
    let Some(call) = pause_call(&path, &object, paused) else {
        return Ok(done(format!(
            "{} already {}; nothing was sent\n",
            t.label,
            if paused { "paused" } else { "not paused" }
        )));
    };
    let said: fn(Outcome<'_>) -> String = if paused {
        |_| "paused".into()
    } else {
        |_| "resumed".into()
    };
    let change = t.change(operation, &o.name, path, call, said);
    change::execute(cc, opts, how, vec![change]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(name: &str, rev: &str, image: &str, owner: &str, cause: Option<&str>) -> Value {
        let mut ann = json!({REVISION: rev});
        if let Some(c) = cause {
            ann[CHANGE_CAUSE] = json!(c);
        }
        json!({"metadata": {"name": name, "annotations": ann,
            "ownerReferences": [{"uid": owner, "controller": true, "kind": "Deployment", "name": "web"}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    fn deployment(image: &str) -> Value {
        json!({"metadata": {"name": "web", "uid": "u1", "resourceVersion": "42",
            "annotations": {REVISION: "3", "team": "a"}},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn deployment_revisions_are_its_own_replicasets_in_order() {
        let list = json!({"items": [
            rs("web-3", "3", "web:3", "u1", None),
            rs("web-1", "1", "web:1", "u1", Some("first")),
            rs("other", "2", "x:2", "u2", None),
            rs("web-2", "2", "web:2", "u1", None),
            rs("web-x", "zz", "web:x", "u1", None),
        ]});
        let revs = replicaset_revisions(&deployment("web:3"), &list);
        assert_eq!(
            revs.iter().map(|r| r.number).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(revs[0].template["metadata"]["labels"]["pod-template-hash"].is_null());
        let table = history_table(&revs);
        assert!(
            table.contains("first") && table.contains("web=web:2"),
            "{table}"
        );
        assert!(history_table(&[]).contains("No rollout history"));
    }

    #[test]
    fn undo_picks_the_previous_or_the_named_revision() {
        let list = json!({"items": [rs("web-1", "1", "web:1", "u1", None), rs("web-2", "2", "web:2", "u1", None), rs("web-3", "3", "web:3", "u1", None)]});
        let revs = replicaset_revisions(&deployment("web:3"), &list);
        assert_eq!(pick_revision(&revs, 0, "d").unwrap().number, 2);
        assert_eq!(pick_revision(&revs, 1, "d").unwrap().number, 1);
        for bad in [4, i64::MAX] {
            let e = pick_revision(&revs, bad, "d").unwrap_err().to_string();
            assert!(
                e.contains("not in its history") && e.contains("1, 2, 3"),
                "{e}"
            );
        }
        let e = pick_revision(&revs[..1], 0, "d").unwrap_err().to_string();
        assert!(e.contains("no previous revision"), "{e}");
    }

    #[test]
    fn deployment_undo_is_kubectls_json_patch() {
        let list = json!({"items": [rs("web-1", "1", "web:1", "u1", Some("v1 please")), rs("web-3", "3", "web:3", "u1", None)]});
        let d = deployment("web:3");
        let revs = replicaset_revisions(&d, &list);
        let plan = undo_plan(
            "Deployment",
            "/apis/apps/v1/namespaces/a/deployments/web",
            &d,
            &revs[0],
        )
        .unwrap();
        let UndoPlan::Patch { call, revision } = plan else {
            panic!("expected a patch")
        };
        assert_eq!(revision, 1);
        assert_eq!(call.method, http::Method::PATCH);
        assert_eq!(call.content_type, Some("application/json-patch+json"));
        assert_eq!(call.precondition, Precondition::JsonPatch);
        let body = call.body.unwrap();
        assert_eq!(body[0]["path"], "/spec/template");
        assert_eq!(body[0]["value"]["spec"]["containers"][0]["image"], "web:1");
        assert!(body[0]["value"]["metadata"]["labels"]["pod-template-hash"].is_null());
        // Revision kept from the Deployment; change-cause taken from the ReplicaSet.
        assert_eq!(body[1]["value"][REVISION], "3");
        assert_eq!(body[1]["value"][CHANGE_CAUSE], "v1 please");
        // The current template: nothing to send.
        let same = undo_plan("Deployment", "/x", &d, &revs[1]).unwrap();
        assert!(matches!(same, UndoPlan::Skip { revision: 3 }));
    }

    #[test]
    fn controller_revision_undo_sends_its_data() {
        let cr = |n: i64, image: &str| {
            json!({"metadata": {"name": format!("ds-{n}"),
            "ownerReferences": [{"uid": "u1", "controller": true}]}, "revision": n,
            "data": {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}}}}})
        };
        let ds = deployment("web:2");
        let revs = controller_revisions(&ds, &json!({"items": [cr(2, "web:2"), cr(1, "web:1")]}));
        assert_eq!(revs[0].number, 1);
        let UndoPlan::Patch { call, .. } = undo_plan("DaemonSet", "/p", &ds, &revs[0]).unwrap()
        else {
            panic!("expected a patch")
        };
        assert_eq!(call.precondition, Precondition::Metadata);
        assert_eq!(
            call.content_type,
            Some("application/strategic-merge-patch+json")
        );
        assert_eq!(call.body.unwrap()["spec"]["template"]["$patch"], "replace");
        assert!(matches!(
            undo_plan("DaemonSet", "/p", &ds, &revs[1]).unwrap(),
            UndoPlan::Skip { .. }
        ));
    }

    #[test]
    fn pause_patches_only_what_changes() {
        let d = json!({"spec": {"paused": true}});
        assert!(pause_call("/p", &d, true).is_none());
        let c = pause_call("/p", &d, false).unwrap();
        assert_eq!(c.body.unwrap(), json!({"spec": {"paused": false}}));
        assert!(pause_call("/p", &json!({}), true).is_some());
    }
}
