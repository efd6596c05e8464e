//! Cleanup of finished pods: the Failed (Evicted counted apart) and
//! Succeeded pods of one namespace, each deleted with a uid precondition so
//! only the pod that was listed goes, through the change engine.
//! [`finished`] picks them (pure).

use kube::api::ListParams;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    OpOptions, Rendered,
    call::Call,
    change::{self, ApiCall, How, Operation, Precondition},
    core_kind,
    mutate::{Target, build},
};
use crate::{
    error::OpError,
    request::{
        names::{Namespace, ObjectName},
        path,
    },
    safety::Action,
};

/// Why a pod is cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Failed because the kubelet evicted it (`status.reason` Evicted).
    Evicted,
    /// Failed otherwise.
    Failed,
    /// Ran to completion.
    Succeeded,
}

impl Reason {
    fn word(self) -> &'static str {
        match self {
            Reason::Evicted => "Evicted",
            Reason::Failed => "Failed",
            Reason::Succeeded => "Succeeded",
        }
    }
}

/// A pod to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Name.
    pub name: String,
    /// Uid (the delete's precondition).
    pub uid: String,
    /// Why.
    pub reason: Reason,
}

/// The finished pods of a pod list answer, sorted by reason then name.
pub fn finished(list: &Value) -> Vec<Finished> {
    let mut out: Vec<Finished> = list
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let text = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
            let reason = match (text("/status/phase")?, text("/status/reason")) {
                ("Failed", Some("Evicted")) => Reason::Evicted,
                ("Failed", _) => Reason::Failed,
                ("Succeeded", _) => Reason::Succeeded,
                _ => return None,
            };
            Some(Finished {
                name: text("/metadata/name")?.to_string(),
                uid: text("/metadata/uid").unwrap_or("").to_string(),
                reason,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.reason, &a.name).cmp(&(b.reason, &b.name)));
    out
}

/// "Evicted 2, Failed 1, Succeeded 0" of `pods`.
pub fn counts(pods: &[&Finished]) -> String {
    [Reason::Evicted, Reason::Failed, Reason::Succeeded]
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.word(),
                pods.iter().filter(|p| p.reason == *r).count()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The delete of one listed pod, only if it still is that pod (uid; a
/// plan binds its resourceVersion instead).
pub fn delete_call(collection: &str, pod: &Finished) -> Result<(ObjectName, ApiCall), OpError> {
    let name = ObjectName::parse("metadata.name", &pod.name)?;
    let mut options = json!({"propagationPolicy": "Background"});
    if !pod.uid.is_empty() {
        options["preconditions"] = json!({"uid": pod.uid});
    }
    let call = ApiCall::new(
        http::Method::DELETE,
        format!("{collection}/{}", path::segment(name.as_str())),
    )
    .body("application/json", options)
    .precondition(Precondition::DeleteOptions);
    Ok((name, call))
}

/// Deletes the finished pods of `namespace` through the change engine
/// (one change per pod: a dry-run previews them all under one plan).
pub async fn cleanup(
    cc: &crate::pool::ClusterClient,
    namespace: &Namespace,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let started = Instant::now();
    let pods = core_kind(cc, "Pod", opts.timeout).await?;
    let what = format!("pods cleanup in namespace {namespace}");
    opts.allow(cc, &pods, Action::List, None, &what)?;
    opts.allow(cc, &pods, Action::Delete, None, &what)?;
    let collection = path::collection(&pods.resource, Some(namespace));
    let list = Call::new(cc, "list", format!("pods in namespace {namespace}"), opts)
        .since(started)
        .json(build(
            kube::core::Request::new(collection.clone()).list(&ListParams::default()),
            "list",
        )?)
        .await?;
    let found = finished(&list);
    if found.is_empty() {
        return Ok(super::mutate::done(format!(
            "no Failed, Evicted or Succeeded pods in namespace {namespace} on cluster {}; nothing was sent\n",
            cc.name
        )));
    }
    let all: Vec<&Finished> = found.iter().collect();
    let head = format!(
        "{} finished pod(s) in namespace {namespace} ({})\n",
        found.len(),
        counts(&all)
    );
    let mut changes = Vec::with_capacity(found.len());
    for pod in &found {
        let (name, call) = delete_call(&collection, pod)?;
        let t = Target {
            kind: pods.clone(),
            namespace: Some(namespace.clone()),
            label: super::mutate::label(&pods, Some(namespace), &name),
        };
        let read = t.object_path(&name);
        changes.push(t.change(Operation::PodsCleanup, &name, read, call, |out| {
            let why = out
                .before
                .pointer("/status/reason")
                .or_else(|| out.before.pointer("/status/phase"))
                .and_then(Value::as_str)
                .unwrap_or("finished");
            format!("deleted ({why})")
        }));
    }
    let mut r = change::execute(cc, opts, how, changes).await?;
    r.text = capped(format!("{head}{}", r.text), found.len(), opts.max_bytes).text;
    Ok(r)
}

fn capped(mut text: String, items: usize, max_bytes: usize) -> Rendered {
    let mut omitted = 0;
    if text.len() > max_bytes {
        let keep = max_bytes.saturating_sub(80);
        let mut cut = text[..keep.min(text.len())].rfind('\n').unwrap_or(0);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        omitted = text[cut..].lines().filter(|l| !l.is_empty()).count();
        text.truncate(cut);
        text.push_str(&format!(
            "\n... {omitted} more line(s) not shown (answer size limit)\n"
        ));
    }
    Rendered {
        text,
        items: items as u32,
        omitted: omitted as u32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finished_pods_are_counted_per_reason() {
        let pod = |name: &str, phase: &str, reason: Option<&str>| json!({"metadata": {"name": name, "uid": format!("u-{name}")}, "status": {"phase": phase, "reason": reason}});
        let list = json!({"items": [
            pod("a", "Running", None), pod("b", "Failed", Some("Evicted")), pod("c", "Failed", Some("Error")),
            pod("d", "Succeeded", None), pod("e", "Pending", None), pod("f", "Failed", Some("Evicted")),
        ]});
        let found = finished(&list);
        assert_eq!(
            found.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["b", "f", "c", "d"]
        );
        let all: Vec<&Finished> = found.iter().collect();
        assert_eq!(counts(&all), "Evicted 2, Failed 1, Succeeded 1");
        let (name, call) = delete_call("/api/v1/namespaces/x/pods", &found[0]).unwrap();
        assert_eq!(name.as_str(), "b");
        assert_eq!(call.path, "/api/v1/namespaces/x/pods/b");
        assert_eq!(call.method, http::Method::DELETE);
        assert_eq!(call.body.unwrap()["preconditions"]["uid"], "u-b");
    }

    #[test]
    fn long_answers_are_capped() {
        let text = "x\n".repeat(10_000);
        let r = capped(text, 10_000, 1000);
        assert!(r.text.len() <= 1000 && r.omitted > 0, "{}", r.text.len());
    }
}
