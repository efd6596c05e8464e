//! Node maintenance as `kubectl cordon`, `uncordon` and `drain` do it:
//! cordon, then evict the node's pods through the Eviction API (so
//! PodDisruptionBudgets are honoured; a 429 is retried until the deadline),
//! skipping DaemonSet and mirror pods, each pod's outcome reported. The
//! requests are built by pure functions ([`cordon_patch`],
//! [`eviction_request`]); [`classify`] decides what happens to each pod.

use std::time::Duration;

use kube::api::ListParams;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    OpOptions, Rendered,
    call::Call,
    change::{self, ApiCall, Change, How, Operation, Outcome, Precondition},
    core_kind,
    mutate::{Target, build},
};
use crate::{
    error::{ErrorKind, OpError},
    kinds::ResolvedKind,
    pool::ClusterClient,
    request::{
        names::{Namespace, NodeName, ObjectName, Selector},
        path,
    },
    safety::Action,
};

/// Pause between two rounds of evictions a budget blocked.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// Pause between two checks that evicted pods are gone.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Longest drain accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Annotation of a static pod's mirror.
const MIRROR: &str = "kubernetes.io/config.mirror";

/// A drain to do.
#[derive(Debug, Clone)]
pub struct DrainArgs {
    /// The node.
    pub node: NodeName,
    /// Bound of the whole drain.
    pub timeout: Duration,
    /// Evict unmanaged pods and pods with emptyDir data too.
    pub force: bool,
}

/// What a drain does with one pod (kubectl's filters, in its order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodClass {
    /// Evicted.
    Evict,
    /// Left alone: a DaemonSet would recreate it at once (its name).
    DaemonSet(String),
    /// Left alone: the mirror of a static pod (the kubelet owns it).
    Mirror,
    /// No controller would recreate it: evicted only with `force`.
    Unmanaged,
    /// Its emptyDir data would be lost: evicted only with `force`.
    LocalData,
}

impl PodClass {
    fn needs_force(&self) -> bool {
        matches!(self, PodClass::Unmanaged | PodClass::LocalData)
    }

    fn words(&self) -> String {
        match self {
            PodClass::Evict => "evict".into(),
            PodClass::DaemonSet(ds) => format!("skipped: managed by DaemonSet {ds}"),
            PodClass::Mirror => "skipped: mirror pod of a static pod".into(),
            PodClass::Unmanaged => "not managed by a controller (evicted only with force)".into(),
            PodClass::LocalData => {
                "has emptyDir data that is lost (evicted only with force)".into()
            }
        }
    }
}

/// How `kubectl drain` treats `pod`.
pub fn classify(pod: &Value) -> PodClass {
    let controller = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .find(|r| r["controller"].as_bool() == Some(true))
        });
    if let Some(c) = controller
        && c["kind"].as_str() == Some("DaemonSet")
    {
        return PodClass::DaemonSet(c["name"].as_str().unwrap_or("").to_string());
    }
    if pod
        .pointer(&format!(
            "/metadata/annotations/{}",
            MIRROR.replace('/', "~1")
        ))
        .is_some()
    {
        return PodClass::Mirror;
    }
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if finished {
        return PodClass::Evict;
    }
    let empty_dir = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .is_some_and(|vs| vs.iter().any(|v| v.get("emptyDir").is_some()));
    if empty_dir {
        return PodClass::LocalData;
    }
    if controller.is_none() {
        return PodClass::Unmanaged;
    }
    PodClass::Evict
}

/// The patch that cordons (`unschedulable`) or uncordons a node, or
/// `None` when it already is so.
pub fn cordon_call(node_path: &str, node: &Value, unschedulable: bool) -> Option<ApiCall> {
    let now = node
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    (now != unschedulable).then(|| {
        // Uncordoning removes the field, as kubectl's patch does.
        let value = if unschedulable {
            json!(true)
        } else {
            Value::Null
        };
        ApiCall::new(http::Method::PATCH, node_path.to_string())
            .body(
                "application/merge-patch+json",
                json!({"spec": {"unschedulable": value}}),
            )
            .precondition(Precondition::Metadata)
    })
}

/// The Eviction of one pod, in the API version (`policy/v1` or
/// `policy/v1beta1`) the server serves.
pub fn eviction_request(
    pods: &ResolvedKind,
    policy_version: &str,
    namespace: &Namespace,
    name: &ObjectName,
    dry_run: bool,
) -> Result<http::Request<Vec<u8>>, OpError> {
    let mut url = path::subresource(&pods.resource, Some(namespace), name, "eviction");
    if dry_run {
        url.push_str("?dryRun=All");
    }
    let body = json!({
        "apiVersion": policy_version,
        "kind": "Eviction",
        "metadata": {"name": name.as_str(), "namespace": namespace.as_str()},
    });
    build(
        http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_string().into_bytes()),
        "eviction",
    )
}

/// `policy/v1` when the server serves it, else `policy/v1beta1` (1.20).
pub fn policy_version(group: &Value) -> Option<&'static str> {
    let served: Vec<&str> = group
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter_map(|v| v["version"].as_str()).collect())
        .unwrap_or_default();
    if served.contains(&"v1") {
        Some("policy/v1")
    } else if served.contains(&"v1beta1") {
        Some("policy/v1beta1")
    } else {
        None
    }
}

/// `kubectl cordon` (`unschedulable`) or `uncordon`, through the change
/// engine.
pub async fn cordon(
    cc: &ClusterClient,
    node: &NodeName,
    unschedulable: bool,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let started = Instant::now();
    let (verb, operation) = if unschedulable {
        ("cordon", Operation::Cordon)
    } else {
        ("uncordon", Operation::Uncordon)
    };
    let nodes = core_kind(cc, "Node", opts.timeout).await?;
    opts.allow(
        cc,
        &nodes,
        Action::Toggle,
        None,
        &format!("{verb} node {node}"),
    )?;
    let want = Want {
        unschedulable,
        operation,
        always: false,
    };
    match node_change(cc, &nodes, node, want, opts, started).await? {
        Some(change) => change::execute(cc, opts, how, vec![change]).await,
        None => Ok(super::mutate::done(format!(
            "node {node} already {verb}ed on cluster {}; nothing was sent\n",
            cc.name
        ))),
    }
}

/// What a node change sets.
#[derive(Debug, Clone, Copy)]
struct Want {
    /// Cordon (true) or uncordon.
    unschedulable: bool,
    /// The operation it is tagged with.
    operation: Operation,
    /// Send it even when the node already is so (a drain's cordon).
    always: bool,
}

/// The change that cordons or uncordons `node`, or `None` when it already
/// is so (unless `want.always`).
async fn node_change(
    cc: &ClusterClient,
    nodes: &ResolvedKind,
    node: &NodeName,
    want: Want,
    opts: &OpOptions,
    started: Instant,
) -> Result<Option<Change>, OpError> {
    let Want {
        unschedulable,
        operation,
        always,
    } = want;
    let name = ObjectName::parse("name", node.as_str())?;
    let t = Target {
        kind: nodes.clone(),
        namespace: None,
        label: super::mutate::label(nodes, None, &name),
    };
    let node_path = t.object_path(&name);
    let object = Call::new(cc, "get", t.label.clone(), opts)
        .since(started)
        .json(build(
            http::Request::get(&node_path).body(Vec::new()),
            "get",
        )?)
        .await?;
    let said: fn(Outcome<'_>) -> String = if unschedulable {
        |_| "cordoned".into()
    } else {
        |_| "uncordoned".into()
    };
    let current = if always { &Value::Null } else { &object };
    Ok(cordon_call(&node_path, current, unschedulable)
        .map(|call| t.change(operation, &name, node_path, call, said)))
}

/// One pod of the node and what became of it.
#[derive(Debug, Clone)]
struct PodOutcome {
    namespace: String,
    name: String,
    uid: String,
    class: PodClass,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not tried yet (or blocked so far, with the server's words).
    Pending(Option<String>),
    /// Eviction accepted; waiting for the pod to go.
    Evicting,
    /// Gone.
    Evicted,
    /// Refused for another reason than a budget.
    Failed(String),
    /// Not to be evicted.
    Skipped,
}

impl PodOutcome {
    fn words(&self) -> String {
        match &self.state {
            State::Skipped => self.class.words(),
            State::Pending(None) => "not evicted (the deadline came first)".into(),
            State::Pending(Some(why)) => {
                format!("blocked by a PodDisruptionBudget until the deadline: {why}")
            }
            State::Evicting => "evicted; still terminating at the deadline".into(),
            State::Evicted => "evicted".into(),
            State::Failed(why) => format!("eviction failed: {why}"),
        }
    }
}

/// `kubectl drain --ignore-daemonsets` (with `force`: also `--force
/// --delete-emptydir-data`), bounded by `args.timeout`. The cordon runs
/// through the change engine (dry-run, plan, require_plan, confirmation:
/// the evictions follow only once it is applied); a dry-run also dry-runs
/// each eviction, so budgets that would block are named.
pub async fn drain(
    cc: &ClusterClient,
    args: &DrainArgs,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let started = Instant::now();
    let opts = &OpOptions {
        timeout: args.timeout,
        ..opts.clone()
    };
    let node = &args.node;
    let nodes = core_kind(cc, "Node", opts.timeout).await?;
    let pods = core_kind(cc, "Pod", opts.timeout).await?;
    let what = format!("drain node {node}");
    opts.allow(cc, &nodes, Action::Toggle, None, &what)?;
    opts.allow(cc, &pods, Action::List, None, &what)?;
    opts.allow(cc, &pods, Action::Create, Some("eviction"), &what)?;
    let params =
        ListParams::default().fields(&Selector::field_equals("spec.nodeName", node.as_str()));
    let list = Call::new(cc, "list", format!("pods on node {node}"), opts)
        .since(started)
        .json(build(
            kube::core::Request::new(path::collection(&pods.resource, None)).list(&params),
            "list",
        )?)
        .await?;
    let mut outcomes = outcomes(&list, args.force);
    let held: Vec<String> = outcomes
        .iter()
        .filter(|o| o.class.needs_force() && !args.force)
        .map(|o| format!("{}/{} ({})", o.namespace, o.name, o.class.words()))
        .collect();
    if !held.is_empty() {
        // kubectl cordons first and stops here; nskd checks first, so a
        // refused drain changes nothing.
        return Err(OpError::InvalidArgument(format!(
            "cluster {}: drain node {node} refused, nothing was changed (not even the cordon): {} pod(s) would be lost for good: {}; pass force: true to evict them too (kubectl drain --force --delete-emptydir-data)",
            cc.name,
            held.len(),
            held.join(", ")
        )));
    }
    // Always sent (a no-op on a cordoned node), so that require_plan and
    // confirm rules on "drain" hold whatever the node's state.
    let want = Want {
        unschedulable: true,
        operation: Operation::Drain,
        always: true,
    };
    let cordon = node_change(cc, &nodes, node, want, opts, started)
        .await?
        .ok_or_else(|| OpError::Other {
            cluster: cc.name.clone(),
            message: format!(
                "drain node {node}: no cordon request could be built; nothing was changed"
            ),
        })?;
    let mut engine = change::execute(cc, opts, how, vec![cordon]).await?;
    if engine
        .change
        .as_ref()
        .is_some_and(|c| c.confirm_needed.is_some())
    {
        return Ok(engine);
    }
    let group = Call::new(cc, "get", "API group policy", opts)
        .since(started)
        .json(build(
            http::Request::get("/apis/policy").body(Vec::new()),
            "get",
        )?)
        .await?;
    let version = policy_version(&group).ok_or_else(|| OpError::Other {
        cluster: cc.name.clone(),
        message: format!(
            "the API server serves neither policy/v1 nor policy/v1beta1, so pods cannot be evicted; nothing was evicted{}",
            if how.dry_run { "" } else { " (the node stays cordoned)" }
        ),
    })?;

    if how.dry_run {
        evict_round(cc, &pods, version, &mut outcomes, true, opts, started).await?;
        let would = outcomes
            .iter()
            .filter(|o| o.state == State::Evicting)
            .count();
        let lines: Vec<(&PodOutcome, String)> = outcomes
            .iter()
            .map(|o| {
                let what = match &o.state {
                    State::Evicting => "would be evicted".to_string(),
                    State::Pending(Some(why)) => {
                        format!("would be blocked by a PodDisruptionBudget now: {why}")
                    }
                    _ => o.words(),
                };
                (o, what)
            })
            .collect();
        let head = format!(
            "{}evictions (dryRun=All): {would} of {} pod(s) on node {node} would be evicted; nothing was changed",
            engine.text,
            outcomes.len()
        );
        engine.text = report(head, &lines, opts.max_bytes).text;
        return Ok(engine);
    }

    evict_all(cc, &pods, version, &mut outcomes, opts, started).await?;
    wait_gone(cc, &pods, &mut outcomes, opts, started).await;

    let count = |f: &dyn Fn(&State) -> bool| outcomes.iter().filter(|o| f(&o.state)).count();
    let evicted = count(&|s| *s == State::Evicted);
    let skipped = count(&|s| *s == State::Skipped);
    let unfinished = outcomes.len() - evicted - skipped;
    let lines: Vec<(&PodOutcome, String)> = outcomes.iter().map(|o| (o, o.words())).collect();
    let head = format!(
        "{}node {node}: {evicted} pod(s) evicted, {skipped} skipped, {unfinished} not evicted",
        engine.text
    );
    if unfinished == 0 {
        engine.text = report(format!("{head}: drained"), &lines, opts.max_bytes).text;
        return Ok(engine);
    }
    let text = report(
        format!(
            "{head} within the {:?} timeout: NOT drained (the node stays cordoned; call again, raise timeout, or fix what blocks)",
            args.timeout
        ),
        &lines,
        opts.max_bytes,
    )
    .text;
    Err(OpError::Kinded {
        kind: ErrorKind::Timeout,
        message: text,
    })
}

/// The node's pods as `list` has them, sorted, each with its class.
fn outcomes(list: &Value, force: bool) -> Vec<PodOutcome> {
    let mut out: Vec<PodOutcome> = list
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let class = classify(p);
            let state = if class == PodClass::Evict || (class.needs_force() && force) {
                State::Pending(None)
            } else {
                State::Skipped
            };
            let text = |ptr: &str| {
                p.pointer(ptr)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            PodOutcome {
                namespace: text("/metadata/namespace"),
                name: text("/metadata/name"),
                uid: text("/metadata/uid"),
                class,
                state,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// Evicts every pending pod; retries those a budget blocks (429) until the
/// deadline.
async fn evict_all(
    cc: &ClusterClient,
    pods: &ResolvedKind,
    version: &str,
    outcomes: &mut [PodOutcome],
    opts: &OpOptions,
    started: Instant,
) -> Result<(), OpError> {
    let deadline = started + opts.timeout;
    loop {
        evict_round(cc, pods, version, outcomes, false, opts, started).await?;
        let pending = outcomes
            .iter()
            .any(|o| matches!(o.state, State::Pending(_)));
        let now = Instant::now();
        if !pending || now >= deadline {
            return Ok(());
        }
        tokio::time::sleep_until((now + RETRY_EVERY).min(deadline)).await;
    }
}

/// One eviction of each pending pod (with `dryRun=All` when `dry_run`).
async fn evict_round(
    cc: &ClusterClient,
    pods: &ResolvedKind,
    version: &str,
    outcomes: &mut [PodOutcome],
    dry_run: bool,
    opts: &OpOptions,
    started: Instant,
) -> Result<(), OpError> {
    let deadline = started + opts.timeout;
    for o in outcomes.iter_mut() {
        if !matches!(o.state, State::Pending(_)) || Instant::now() >= deadline {
            continue;
        }
        let namespace = Namespace::parse("metadata.namespace", &o.namespace)?;
        let name = ObjectName::parse("metadata.name", &o.name)?;
        let request = eviction_request(pods, version, &namespace, &name, dry_run)?;
        let call =
            Call::new(cc, "evict", format!("pod {}/{}", o.namespace, o.name), opts).since(started);
        o.state = match call.json(request).await {
            Ok(_) => State::Evicting,
            Err(OpError::Api(a)) if a.code == 429 => State::Pending(Some(a.message.clone())),
            Err(OpError::Api(a)) if a.code == 404 => State::Evicted,
            Err(OpError::Timeout { .. }) => State::Pending(None),
            Err(e) => State::Failed(e.to_string()),
        };
    }
    Ok(())
}

/// Waits (until the deadline) for evicted pods to be gone: deleted, or
/// replaced by a pod of the same name and another uid.
async fn wait_gone(
    cc: &ClusterClient,
    pods: &ResolvedKind,
    outcomes: &mut [PodOutcome],
    opts: &OpOptions,
    started: Instant,
) {
    let deadline = started + opts.timeout;
    loop {
        for o in outcomes.iter_mut().filter(|o| o.state == State::Evicting) {
            let (Ok(namespace), Ok(name)) = (
                Namespace::parse("metadata.namespace", &o.namespace),
                ObjectName::parse("metadata.name", &o.name),
            ) else {
                continue;
            };
            let url = path::object(&pods.resource, Some(&namespace), &name);
            let Ok(request) = build(http::Request::get(url).body(Vec::new()), "get") else {
                continue;
            };
            match Call::new(cc, "get", format!("pod {}/{}", o.namespace, o.name), opts)
                .since(started)
                .json(request)
                .await
            {
                Err(OpError::Api(a)) if a.code == 404 => o.state = State::Evicted,
                Ok(p) if p.pointer("/metadata/uid").and_then(Value::as_str) != Some(&o.uid) => {
                    o.state = State::Evicted
                }
                _ => {}
            }
        }
        let now = Instant::now();
        if !outcomes.iter().any(|o| o.state == State::Evicting) || now >= deadline {
            return;
        }
        tokio::time::sleep_until((now + POLL_EVERY).min(deadline)).await;
    }
}

/// `head`, then one line per pod, within `max_bytes`.
fn report(head: String, lines: &[(&PodOutcome, String)], max_bytes: usize) -> Rendered {
    let mut text = format!("{head}\n");
    let mut shown = 0;
    for (o, what) in lines {
        let line = format!("{}/{}: {what}\n", o.namespace, o.name);
        // Room for the closing note.
        if text.len() + line.len() + 64 > max_bytes {
            break;
        }
        text.push_str(&line);
        shown += 1;
    }
    if shown < lines.len() {
        text.push_str(&format!(
            "... {} more pod(s) not shown (answer size limit)\n",
            lines.len() - shown
        ));
    }
    Rendered {
        text,
        items: lines.len() as u32,
        omitted: (lines.len() - shown) as u32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(owner: Option<&str>, phase: &str) -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "a"}, "status": {"phase": phase}, "spec": {}});
        if let Some(kind) = owner {
            p["metadata"]["ownerReferences"] =
                json!([{"kind": kind, "name": "owner", "controller": true}]);
        }
        p
    }

    #[test]
    fn pods_are_classified_as_kubectl_drain_does() {
        assert_eq!(
            classify(&pod(Some("ReplicaSet"), "Running")),
            PodClass::Evict
        );
        assert_eq!(
            classify(&pod(Some("DaemonSet"), "Running")),
            PodClass::DaemonSet("owner".into())
        );
        assert_eq!(classify(&pod(None, "Running")), PodClass::Unmanaged);
        // Finished pods go whatever they are.
        assert_eq!(classify(&pod(None, "Succeeded")), PodClass::Evict);
        let mut mirror = pod(None, "Running");
        mirror["metadata"]["annotations"] = json!({MIRROR: "x"});
        assert_eq!(classify(&mirror), PodClass::Mirror);
        let mut local = pod(Some("ReplicaSet"), "Running");
        local["spec"]["volumes"] = json!([{"name": "tmp", "emptyDir": {}}]);
        assert_eq!(classify(&local), PodClass::LocalData);
    }

    #[test]
    fn cordon_patches_only_what_changes() {
        let node = json!({"spec": {}});
        let c = cordon_call("/api/v1/nodes/n1", &node, true).unwrap();
        assert_eq!(c.body.unwrap(), json!({"spec": {"unschedulable": true}}));
        assert_eq!(
            (c.method, c.precondition),
            (http::Method::PATCH, Precondition::Metadata)
        );
        assert!(cordon_call("/p", &node, false).is_none());
        let cordoned = json!({"spec": {"unschedulable": true}});
        assert!(cordon_call("/p", &cordoned, true).is_none());
        let c = cordon_call("/p", &cordoned, false).unwrap();
        assert_eq!(c.body.unwrap(), json!({"spec": {"unschedulable": null}}));
    }

    #[test]
    fn evictions_use_the_served_policy_version() {
        let beta = json!({"versions": [{"groupVersion": "policy/v1beta1", "version": "v1beta1"}]});
        assert_eq!(policy_version(&beta), Some("policy/v1beta1"));
        let both = json!({"versions": [{"version": "v1"}, {"version": "v1beta1"}]});
        assert_eq!(policy_version(&both), Some("policy/v1"));
        assert_eq!(policy_version(&json!({})), None);
        let pods = ResolvedKind {
            resource: kube::discovery::ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "Pod".into(),
                plural: "pods".into(),
            },
            namespaced: true,
            verbs: vec![],
            short_names: vec![],
        };
        let ns = Namespace::parse("namespace", "shop").unwrap();
        let name = ObjectName::parse("name", "web-1").unwrap();
        let r = eviction_request(&pods, "policy/v1beta1", &ns, &name, false).unwrap();
        assert_eq!(
            r.uri().path(),
            "/api/v1/namespaces/shop/pods/web-1/eviction"
        );
        assert_eq!(r.uri().query(), None);
        let dry = eviction_request(&pods, "policy/v1beta1", &ns, &name, true).unwrap();
        assert_eq!(dry.uri().query(), Some("dryRun=All"));
        let body: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["apiVersion"], "policy/v1beta1");
        assert_eq!(
            body["metadata"],
            json!({"name": "web-1", "namespace": "shop"})
        );
    }

    #[test]
    fn reports_stay_within_the_answer_size() {
        let o = PodOutcome {
            namespace: "a".into(),
            name: "p".repeat(50),
            uid: String::new(),
            class: PodClass::Evict,
            state: State::Evicted,
        };
        let lines: Vec<(&PodOutcome, String)> = (0..100).map(|_| (&o, o.words())).collect();
        let r = report("head".into(), &lines, 1024);
        assert!(r.text.len() <= 1024, "{}", r.text.len());
        assert!(r.omitted > 0 && r.text.contains("more pod(s) not shown"));
    }
}
