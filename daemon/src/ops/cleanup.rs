//! Cleanup of finished pods: the Failed (Evicted counted apart) and
//! Succeeded pods of one namespace, each deleted with a uid precondition so
//! only the pod that was listed goes. [`finished`] picks them (pure).

use kube::api::{DeleteParams, ListParams, Preconditions};
use serde_json::Value;
use tokio::time::Instant;

use super::{OpOptions, Rendered, call::Call, core_kind, mutate::build};
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

/// The delete of one listed pod, only if it still is that pod (uid).
pub fn delete_request(
    collection: String,
    pod: &Finished,
) -> Result<http::Request<Vec<u8>>, OpError> {
    let params = DeleteParams {
        preconditions: (!pod.uid.is_empty()).then(|| Preconditions {
            uid: Some(pod.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    let name = ObjectName::parse("metadata.name", &pod.name)?;
    build(
        kube::core::Request::new(collection).delete(&path::segment(name.as_str()), &params),
        "delete",
    )
}

/// Deletes (or with `dry_run` only counts) the finished pods of `namespace`.
pub async fn cleanup(
    cc: &crate::pool::ClusterClient,
    namespace: &Namespace,
    dry_run: bool,
    opts: &OpOptions,
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
    let all: Vec<&Finished> = found.iter().collect();
    if found.is_empty() {
        return Ok(super::mutate::done(format!(
            "no Failed, Evicted or Succeeded pods in namespace {namespace} on cluster {}\n",
            cc.name
        )));
    }
    if dry_run {
        let names: Vec<String> = found
            .iter()
            .map(|p| format!("{} ({})", p.name, p.reason.word()))
            .collect();
        return Ok(capped(
            format!(
                "dry run on cluster {}: would delete {} pod(s) in namespace {namespace} ({}); nothing changed\n{}\n",
                cc.name,
                found.len(),
                counts(&all),
                names.join("\n")
            ),
            found.len(),
            opts.max_bytes,
        ));
    }
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for pod in &found {
        let call =
            Call::new(cc, "delete", format!("pod {namespace}/{}", pod.name), opts).since(started);
        match call.json(delete_request(collection.clone(), pod)?).await {
            Ok(_) => deleted.push(pod),
            // Gone already, or replaced by another pod of that name: not ours to delete.
            Err(OpError::Api(a)) if a.code == 404 || a.code == 409 => {}
            Err(e) => failed.push(format!("{}: {e}", pod.name)),
        }
    }
    let mut text = format!(
        "deleted {} pod(s) in namespace {namespace} on cluster {} ({})\n",
        deleted.len(),
        cc.name,
        counts(&deleted)
    );
    if !failed.is_empty() {
        text.push_str(&format!(
            "{} not deleted:\n{}\n",
            failed.len(),
            failed.join("\n")
        ));
        return Err(OpError::Other {
            cluster: cc.name.clone(),
            message: text,
        });
    }
    Ok(capped(text, deleted.len(), opts.max_bytes))
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
        let r = delete_request("/api/v1/namespaces/x/pods".into(), &found[0]).unwrap();
        assert_eq!(r.uri().path(), "/api/v1/namespaces/x/pods/b");
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["preconditions"]["uid"], "u-b");
    }

    #[test]
    fn long_answers_are_capped() {
        let text = "x\n".repeat(10_000);
        let r = capped(text, 10_000, 1000);
        assert!(r.text.len() <= 1000 && r.omitted > 0, "{}", r.text.len());
    }
}
