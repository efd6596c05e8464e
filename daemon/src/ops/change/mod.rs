//! The change engine: every write of nskd goes through [`execute`], which
//! previews it (dry-run and diff), binds it to a plan, asks for the user's
//! confirmation where the configuration says so, applies it, and reports
//! what it did for the audit log.
//!
//! # How an operation uses it
//!
//! 1. Validate the agent's arguments into typed names, resolve the kind,
//!    and pass the policy (`OpOptions::allow`) on the request it will send.
//! 2. Build one [`Change`] per object it changes: the [`Operation`] word,
//!    the object's identity, the path to read it before (`read_path`: the
//!    object, or the subresource the request writes, e.g. `scale`), and the
//!    exact request as an [`ApiCall`] (method, path from
//!    [`crate::request::path`], query, content type, JSON body) with its
//!    [`Precondition`] (how the object's `resourceVersion` is bound in).
//!    Build it the same way every time for the same arguments: a plan is
//!    found again by the digest of these requests.
//! 3. Call [`execute`] with the cluster, the options, the call's [`How`]
//!    (from the request's `ChangeOptions`, see [`How::from_proto`]) and the
//!    changes. It answers the rendered text and the facts the audit log
//!    records ([`ChangeFacts`], put on `Rendered::change`).
//!
//! # What `execute` does
//!
//! * `dryRun`: reads each object, binds its `resourceVersion` into the
//!   request, sends it with `dryRun=All`, diffs before/after (status,
//!   managedFields and server-set metadata stripped, sensitive values
//!   masked), stores a [`plan::Plan`] and answers the diff and the plan id.
//!   A refusal by admission or validation comes back as the error it is.
//! * `plan`: checks the plan (same cluster, session and request digest, not
//!   expired), the confirmation where a rule asks for one, then sends
//!   exactly the stored requests. A `409 Conflict` (the object changed since
//!   the preview) answers a fresh preview and plan instead. Used once.
//! * neither: refused when `[safety] require_plan` names the operation;
//!   previewed and held for confirmation when a `[safety] confirm` rule
//!   matches; otherwise sent at once (for one object the diff is still
//!   computed for the audit log; a manifest of several is not read before,
//!   its digest is of the objects as applied).
//!
//! Several changes (a multi-document manifest, a drain's cordon and
//! evictions) form one plan and are sent in order; a failure part-way says
//! what was already done.

pub mod diff;
pub mod plan;

use std::{sync::Mutex, time::Instant as StdInstant};

use http::Method;
use nskd_proto::v1::{self as pb, Confirmation};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

pub use nskd_proto::tools::Operation;

use super::{OpOptions, Rendered, call::Call};
use crate::{
    access::glob,
    config::{ConfirmFallback, ConfirmRule, SafetyConfig},
    error::OpError,
    kinds::ResolvedKind,
    pool::ClusterClient,
    request::{
        InvalidInput,
        names::{Namespace, ObjectName},
    },
};
use plan::{Plan, PlanId, PlanStore, Step};

/// How the object's `resourceVersion` binds a request to what was
/// previewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing to bind (the request has no object to compare).
    None,
    /// `metadata.resourceVersion` in the JSON body (merge, strategic and
    /// apply patches, updates): the server answers 409 when it differs.
    Metadata,
    /// A JSON patch: a `replace` of `/metadata/resourceVersion` goes first.
    JsonPatch,
    /// A DELETE (or eviction): `preconditions.resourceVersion` in the body
    /// (`deleteOptions.preconditions` for an eviction).
    DeleteOptions,
    /// An eviction: `deleteOptions.preconditions.resourceVersion`.
    Eviction,
}

/// One request exactly as it will be sent (before `dryRun` and the
/// precondition are added).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// GET, POST, PUT, PATCH, DELETE.
    pub method: Method,
    /// The path, built by [`crate::request::path`].
    pub path: String,
    /// Query parameters (names and values from nskd's code, encoded here).
    pub query: Vec<(&'static str, String)>,
    /// Content type of the body.
    pub content_type: Option<&'static str>,
    /// The JSON body.
    pub body: Option<Value>,
    /// How the resourceVersion is bound in.
    pub precondition: Precondition,
}

impl ApiCall {
    /// A request without body or query.
    pub fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            content_type: None,
            body: None,
            precondition: Precondition::None,
        }
    }

    /// With a JSON body of `content_type`.
    pub fn body(mut self, content_type: &'static str, body: Value) -> Self {
        self.content_type = Some(content_type);
        self.body = Some(body);
        self
    }

    /// With a query parameter.
    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    /// With a precondition.
    pub fn precondition(mut self, p: Precondition) -> Self {
        self.precondition = p;
        self
    }

    /// What identifies the request for a plan: everything but the bound
    /// resourceVersion.
    fn digest_input(&self) -> Value {
        json!({
            "method": self.method.as_str(),
            "path": self.path,
            "query": self.query,
            "contentType": self.content_type,
            "body": self.body,
        })
    }
}

/// A request with its precondition bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The request.
    pub call: ApiCall,
    /// The resourceVersion bound in, if any.
    pub resource_version: Option<String>,
}

impl Bound {
    /// Binds `call` to `resource_version` (the object as read before).
    pub fn new(call: ApiCall, resource_version: Option<String>) -> Self {
        let mut call = call;
        if let Some(rv) = &resource_version {
            let rv = Value::String(rv.clone());
            match (call.precondition, &mut call.body) {
                (Precondition::Metadata, Some(Value::Object(body))) => {
                    let meta = body.entry("metadata").or_insert_with(|| json!({}));
                    if let Value::Object(meta) = meta {
                        meta.insert("resourceVersion".into(), rv);
                    }
                }
                (Precondition::JsonPatch, Some(Value::Array(ops))) => {
                    ops.insert(
                        0,
                        json!({"op": "replace", "path": "/metadata/resourceVersion", "value": rv}),
                    );
                }
                (Precondition::DeleteOptions, body) => {
                    let body = body.get_or_insert_with(|| json!({}));
                    body["preconditions"] = json!({"resourceVersion": rv});
                    call.content_type.get_or_insert("application/json");
                }
                (Precondition::Eviction, Some(body)) => {
                    body["deleteOptions"]["preconditions"] = json!({"resourceVersion": rv});
                }
                _ => {}
            }
        }
        Self {
            call,
            resource_version,
        }
    }

    /// The HTTP request, with `dryRun=All` when `dry_run`.
    pub fn request(&self, dry_run: bool) -> Result<http::Request<Vec<u8>>, OpError> {
        let mut uri = self.call.path.clone();
        let mut query: Vec<String> = self
            .call
            .query
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect();
        if dry_run {
            query.push("dryRun=All".into());
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query.join("&"));
        }
        let mut b = http::Request::builder()
            .method(self.call.method.clone())
            .uri(uri);
        if let Some(ct) = self.call.content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        let mut body = self.call.body.clone();
        if dry_run {
            // A DELETE's DeleteOptions body overrides its query: the body
            // must say dryRun too, or the "dry run" deletes.
            match (&self.call.method, self.call.precondition, &mut body) {
                (&Method::DELETE, _, Some(Value::Object(options))) => {
                    options.insert("dryRun".into(), json!(["All"]));
                }
                (_, Precondition::Eviction, Some(Value::Object(eviction))) => {
                    let options = eviction.entry("deleteOptions").or_insert_with(|| json!({}));
                    options["dryRun"] = json!(["All"]);
                }
                _ => {}
            }
        }
        let body = body
            .map(|v| serde_json::to_vec(&v).unwrap_or_default())
            .unwrap_or_default();
        b.body(body).map_err(|e| {
            OpError::InvalidArgument(format!(
                "cannot build the {} request for {}: {e}",
                self.call.method, self.call.path
            ))
        })
    }
}

/// What a change tells about its outcome, for the answer's line.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// The object before (`Null` when it did not exist).
    pub before: &'a Value,
    /// The server's answer (`Null` when not read).
    pub after: &'a Value,
    /// HTTP status of the answer (201 = created).
    pub status: u16,
}

/// One object a change writes.
#[derive(Debug, Clone)]
pub struct Change {
    /// What it does (require_plan / confirm rules).
    pub operation: Operation,
    /// Its kind as resolved.
    pub kind: ResolvedKind,
    /// Its namespace (namespaced kinds).
    pub namespace: Option<Namespace>,
    /// Its name.
    pub name: ObjectName,
    /// "Deployment/web in namespace shop", for messages.
    pub label: String,
    /// Where to read it before (the object, or the written subresource).
    pub read_path: String,
    /// The request.
    pub call: ApiCall,
    /// The request removes the object (delete, eviction): no "after".
    pub removes: bool,
    /// The line said once done ("scaled from 1 to 3 replicas").
    pub said: fn(Outcome<'_>) -> String,
}

/// How one call wants its change run (the request's `ChangeOptions`).
#[derive(Debug, Clone, Default)]
pub struct How {
    /// Preview only.
    pub dry_run: bool,
    /// Apply this plan.
    pub plan: Option<PlanId>,
    /// What the user answered, as the shim says.
    pub confirmation: Confirmation,
    /// The caller's session ("" for nskctl).
    pub session: String,
}

impl How {
    /// From the request's options and the caller's session; a plan id is
    /// checked here.
    pub fn from_proto(o: Option<&pb::ChangeOptions>, session: &str) -> Result<Self, InvalidInput> {
        let Some(o) = o else {
            return Ok(Self {
                session: session.to_string(),
                ..Self::default()
            });
        };
        let plan = match o.plan.as_str() {
            "" => None,
            p => Some(PlanId::parse("plan", p)?),
        };
        if o.dry_run && plan.is_some() {
            return Err(InvalidInput::new(
                "plan",
                &o.plan,
                "cannot go with dryRun: true; preview with dryRun, then apply with plan",
            ));
        }
        Ok(Self {
            dry_run: o.dry_run,
            plan,
            confirmation: Confirmation::try_from(o.confirmation).unwrap_or_default(),
            session: session.to_string(),
        })
    }
}

/// What the audit log records of a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFacts {
    /// The plan made (dry-run) or applied.
    pub plan: String,
    /// sha256 of the diff.
    pub diff_sha256: String,
    /// "accepted", "declined", "cancelled", "unavailable", "fallback-allow",
    /// "not-required", or "" when no rule asked.
    pub confirmation: String,
    /// Set when the change waits for the user's confirmation.
    pub confirm_needed: Option<pb::ConfirmationNeeded>,
}

/// The daemon's plans and the rules on them, from `[safety]`.
#[derive(Debug)]
pub struct Engine {
    plans: Mutex<PlanStore>,
    require_plan: Vec<Operation>,
    confirm: Vec<ConfirmRule>,
    fallback: ConfirmFallback,
    ttl: std::time::Duration,
}

impl Engine {
    /// From the `[safety]` section (its words were checked when read).
    pub fn new(safety: &SafetyConfig) -> Self {
        Self {
            plans: Mutex::new(PlanStore::default()),
            require_plan: safety
                .require_plan
                .iter()
                .filter_map(|w| Operation::parse(w))
                .collect(),
            confirm: safety.confirm.clone(),
            fallback: safety.confirm_fallback,
            ttl: plan::ttl_or_default(safety.plan_ttl),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, PlanStore> {
        self.plans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `[safety] require_plan` names `op`.
    pub fn requires_plan(&self, op: Operation) -> bool {
        self.require_plan.contains(&op)
    }

    /// Whether a confirm rule matches `op` on an object of `kind` (its
    /// name, lower case, as rules spell it) in `namespace` on `cluster`.
    pub fn confirms(&self, cluster: &str, op: Operation, kind: &str, namespace: &str) -> bool {
        self.confirm.iter().any(|r| {
            r.operation.as_deref().is_none_or(|o| o == op.word())
                && r.kind
                    .as_deref()
                    .is_none_or(|k| k.eq_ignore_ascii_case(kind))
                && r.namespace.as_deref().is_none_or(|n| n == namespace)
                && r.cluster.as_deref().is_none_or(|p| glob(p, cluster))
        })
    }

    /// How long plans live.
    pub fn ttl(&self) -> std::time::Duration {
        self.ttl
    }

    /// Keeps `plan`.
    pub fn keep(&self, plan: Plan) {
        self.store().insert(plan);
    }

    /// The plan `id` if `session` may use it on `cluster` for a request of
    /// `digest` (left in the store).
    pub fn check(
        &self,
        id: &PlanId,
        cluster: &str,
        session: &str,
        digest: &str,
    ) -> Result<Plan, plan::PlanError> {
        self.store().check(id, cluster, session, digest)
    }

    /// Uses up plan `id`.
    pub fn forget(&self, id: &PlanId) {
        self.store().remove(id);
    }

    /// The first change whose operation needs a plan.
    fn needs_plan<'a>(&self, changes: &'a [Change]) -> Option<&'a Change> {
        changes
            .iter()
            .find(|c| self.require_plan.contains(&c.operation))
    }

    /// The first change a confirm rule matches on `cluster`.
    pub fn needs_confirmation<'a>(
        &self,
        cluster: &str,
        changes: &'a [Change],
    ) -> Option<&'a Change> {
        changes
            .iter()
            .find(|c| self.confirm.iter().any(|r| rule_matches(r, cluster, c)))
    }
}

/// Whether `rule` matches change `c` on `cluster`.
fn rule_matches(rule: &ConfirmRule, cluster: &str, c: &Change) -> bool {
    let r = &c.kind.resource;
    rule.operation
        .as_deref()
        .is_none_or(|o| o == c.operation.word())
        && rule.kind.as_deref().is_none_or(|k| {
            let k = k.to_ascii_lowercase();
            k == r.kind.to_ascii_lowercase()
                || k == r.plural
                || (!r.group.is_empty() && k == format!("{}.{}", r.plural, r.group))
        })
        && rule
            .namespace
            .as_deref()
            .is_none_or(|n| c.namespace.as_ref().is_some_and(|ns| ns.as_str() == n))
        && rule.cluster.as_deref().is_none_or(|p| glob(p, cluster))
}

/// The digest of `changes` on `cluster`: what a plan is found again by.
fn request_digest(cluster: &str, changes: &[Change]) -> String {
    let input = json!({
        "cluster": cluster,
        "changes": changes.iter().map(|c| json!({
            "operation": c.operation.word(),
            "read": c.read_path,
            "call": c.call.digest_input(),
        })).collect::<Vec<_>>(),
    });
    diff::sha256(input.to_string().as_bytes())
}

/// Reads what a change writes; `None` when it does not exist (404).
async fn read_before(call: &Call<'_>, c: &Change) -> Result<Option<Value>, OpError> {
    let request = http::Request::get(&c.read_path)
        .body(Vec::new())
        .map_err(|e| {
            OpError::InvalidArgument(format!("cannot build the read of {}: {e}", c.label))
        })?;
    match call.json(request).await {
        Ok(v) => Ok(Some(v)),
        Err(OpError::Api(a)) if a.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

fn resource_version(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| v.pointer("/metadata/resourceVersion"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The diff of one step.
fn step_diff(step: &Step, after: Option<&Value>, opts: &OpOptions) -> diff::Diff {
    let masking = &opts.policy.masking;
    let before = step
        .before
        .as_ref()
        .map(|b| diff::clean(b, None, masking, &step.plural));
    let after = after.map(|a| diff::clean(a, step.before.as_ref(), masking, &step.plural));
    diff::unified(before.as_ref(), after.as_ref(), &step.label)
}

/// A diff of several steps, joined, and what it counts.
#[derive(Debug, Default)]
struct Joined {
    text: String,
    lines: u32,
}

impl Joined {
    /// Adds the diff of `step` done by `c` (the server answered `after`
    /// with `status`) and returns the line said of it.
    fn done(
        &mut self,
        step: &Step,
        c: &Change,
        after: &Value,
        status: http::StatusCode,
        opts: &OpOptions,
    ) -> String {
        let kept = (!c.removes).then_some(after);
        self.push(step_diff(step, kept, opts), &step.label, c.removes);
        let said = (c.said)(Outcome {
            before: step.before.as_ref().unwrap_or(&Value::Null),
            after,
            status: status.as_u16(),
        });
        format!("{} {said}", step.label)
    }

    fn push(&mut self, d: diff::Diff, label: &str, removes: bool) {
        if d.text.is_empty() {
            let what = if removes { "removed" } else { "no change" };
            self.text.push_str(&format!("{label}: {what}\n"));
        } else {
            self.text.push_str(&d.text);
        }
        self.lines += d.changed_lines;
    }
}

/// Previews `changes`: reads, binds and dry-runs each. Returns the plan
/// (not yet stored).
async fn preview(
    cc: &ClusterClient,
    opts: &OpOptions,
    how: &How,
    changes: &[Change],
    started: tokio::time::Instant,
) -> Result<Plan, OpError> {
    let mut steps = Vec::with_capacity(changes.len());
    let mut joined = Joined::default();
    for c in changes {
        let call = Call::new(cc, "dry-run", c.label.clone(), opts).since(started);
        let before = read_before(&call, c).await?;
        let bound = Bound::new(c.call.clone(), resource_version(before.as_ref()));
        let after = call
            .json(bound.request(true)?)
            .await
            .map_err(|e| refused_at_dry_run(e, &c.label))?;
        let step = Step {
            bound,
            before,
            plural: c.kind.resource.plural.clone(),
            label: c.label.clone(),
        };
        let after = (!c.removes).then_some(after);
        joined.push(step_diff(&step, after.as_ref(), opts), &c.label, c.removes);
        steps.push(step);
    }
    let summary = summary(cc, changes);
    Ok(Plan {
        id: PlanId::random(),
        cluster: cc.name.clone(),
        session: how.session.clone(),
        request_digest: request_digest(&cc.name, changes),
        operations: changes.iter().map(|c| c.operation).collect(),
        steps,
        summary,
        diff_sha256: diff::sha256(joined.text.as_bytes()),
        diff: joined.text,
        diff_lines: joined.lines,
        expires: StdInstant::now() + opts.changes.ttl,
        release_revision: None,
    })
}

/// An API refusal at dry-run names admission/validation as the refuser.
fn refused_at_dry_run(e: OpError, label: &str) -> OpError {
    match e {
        OpError::Api(mut a) if matches!(a.code, 400 | 403 | 409 | 422) => {
            a.hint = format!(
                "the API server refused the dry-run of {label} (validation or admission); nothing was changed. {}",
                a.hint
            );
            OpError::Api(a)
        }
        other => other,
    }
}

fn summary(cc: &ClusterClient, changes: &[Change]) -> String {
    let first = changes
        .first()
        .map(|c| format!("{} {}", c.operation.word(), c.label))
        .unwrap_or_default();
    let more = match changes.len() {
        0 | 1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    format!("{first}{more} on cluster {}", cc.name)
}

/// Cuts `text` to about `max` bytes at a line end, saying what was left out.
pub fn capped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = text[..cut].rfind('\n').map_or(cut, |i| i + 1);
    let left = text[cut..].lines().count();
    format!(
        "{}[diff cut: {left} more lines left out to respect [output] max_bytes]\n",
        &text[..cut]
    )
}

/// Runs `changes` on `cc` as `how` says (see the module doc).
pub async fn execute(
    cc: &ClusterClient,
    opts: &OpOptions,
    how: &How,
    changes: Vec<Change>,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let engine = &opts.changes;
    if let Some(id) = &how.plan {
        return apply_plan(cc, opts, how, id, &changes, started).await;
    }
    if how.dry_run {
        let plan = preview(cc, opts, how, &changes, started).await?;
        let confirm = engine.needs_confirmation(&cc.name, &changes).is_some();
        let required = engine.needs_plan(&changes).is_some();
        return Ok(previewed(
            opts,
            &cc.name,
            plan,
            (
                "dryRun=All",
                "(after = the API server's answer: defaults and mutating admission included)\n",
            ),
            [required, confirm],
            changes.len(),
        ));
    }
    if let Some(c) = engine.needs_plan(&changes) {
        return Err(OpError::Refused(format!(
            "cluster {}: {} {} refused: [safety] require_plan names {:?}; call it with dryRun: true first, check the diff, then call again with the plan id it answers",
            cc.name,
            c.operation.word(),
            c.label,
            c.operation.word()
        )));
    }
    if engine.needs_confirmation(&cc.name, &changes).is_some() {
        let plan = preview(cc, opts, how, &changes, started).await?;
        return Ok(hold_for_confirmation(opts, plan, &changes, how));
    }
    apply_direct(cc, opts, changes, started).await
}

/// Keeps a dry run's `plan` (of `items` changes on `cluster`) and answers
/// its diff and id. `how` is how it was previewed ("dryRun=All") and a note
/// line; `rules` whether require_plan names it and a confirm rule holds it.
pub fn previewed(
    opts: &OpOptions,
    cluster: &str,
    plan: Plan,
    how: (&str, &str),
    rules: [bool; 2],
    items: usize,
) -> Rendered {
    let [required, held] = rules;
    let text = format!(
        "Dry run on cluster {cluster} ({}; nothing was changed): {}\n{}{}plan: {} (valid {}; apply exactly this change by calling again with plan=\"{}\" and the same arguments){}{}\n",
        how.0,
        plan.summary,
        how.1,
        capped(&plan.diff, opts.max_bytes.saturating_sub(1024)),
        plan.id,
        humantime::format_duration(opts.changes.ttl),
        plan.id,
        if required {
            "; a plan is required for this operation"
        } else {
            ""
        },
        if held {
            "; applying it asks the user for confirmation"
        } else {
            ""
        },
    );
    let facts = ChangeFacts {
        plan: plan.id.to_string(),
        diff_sha256: plan.diff_sha256.clone(),
        ..ChangeFacts::default()
    };
    opts.changes.store().insert(plan);
    rendered(text, items, facts)
}

/// Stores `plan` and answers that it waits for the user's confirmation.
fn hold_for_confirmation(opts: &OpOptions, plan: Plan, changes: &[Change], how: &How) -> Rendered {
    let operation = opts
        .changes
        .needs_confirmation(&plan.cluster, changes)
        .map(|c| c.operation.word())
        .unwrap_or_default();
    hold(opts, plan, operation, changes.len(), how)
}

/// Stores `plan` (of `items` changes, held by a confirm rule on
/// `operation`) and answers that it waits for the user's confirmation.
pub fn hold(opts: &OpOptions, plan: Plan, operation: &str, items: usize, how: &How) -> Rendered {
    let needed = pb::ConfirmationNeeded {
        plan: plan.id.to_string(),
        summary: plan.summary.clone(),
        diff_bytes: plan.diff.len() as u64,
        diff_lines: plan.diff_lines,
        operation: operation.to_string(),
    };
    let text = format!(
        "Not applied: {} needs the user's confirmation ([safety] confirm); the MCP client is asked, nothing was changed. plan: {} ({} changed diff lines){}\n",
        plan.summary,
        plan.id,
        plan.diff_lines,
        match how.confirmation {
            Confirmation::None => String::new(),
            other => format!(
                "; the confirmation given ({}) needs a plan id",
                confirmation_word(other)
            ),
        }
    );
    let facts = ChangeFacts {
        plan: plan.id.to_string(),
        diff_sha256: plan.diff_sha256.clone(),
        confirmation: "requested".into(),
        confirm_needed: Some(needed),
    };
    opts.changes.store().insert(plan);
    rendered(text, items, facts)
}

/// The audit word of a confirmation.
pub fn confirmation_word(c: Confirmation) -> &'static str {
    match c {
        Confirmation::None => "",
        Confirmation::Accepted => "accepted",
        Confirmation::Declined => "declined",
        Confirmation::Cancelled => "cancelled",
        Confirmation::Unavailable => "unavailable",
    }
}

/// A change's answer with the facts the audit log records.
pub fn rendered(text: String, items: usize, facts: ChangeFacts) -> Rendered {
    Rendered {
        text,
        items: items as u32,
        omitted: 0,
        from_cache: false,
        change: Some(facts),
    }
}

/// Sends `changes` at once (no precondition); the diff is computed for the
/// audit log.
async fn apply_direct(
    cc: &ClusterClient,
    opts: &OpOptions,
    changes: Vec<Change>,
    started: tokio::time::Instant,
) -> Result<Rendered, OpError> {
    let mut lines = Vec::new();
    let mut joined = Joined::default();
    // One object is read before, for the audited diff. A manifest of many
    // is not: the reads would double its requests under the [pool] qps
    // limit; its audited digest is of the objects as applied.
    let read = changes.len() == 1;
    for c in &changes {
        let call = Call::new(cc, "apply", c.label.clone(), opts).since(started);
        let before = if read {
            read_before(&call, c)
                .await
                .map_err(|e| with_done(e, &lines))?
        } else {
            None
        };
        let bound = Bound::new(c.call.clone(), None);
        let (status, after) = call
            .json_reply(bound.request(false)?)
            .await
            .map_err(|e| with_done(e, &lines))?;
        let step = Step {
            bound,
            before,
            plural: c.kind.resource.plural.clone(),
            label: c.label.clone(),
        };
        lines.push(joined.done(&step, c, &after, status, opts));
    }
    let facts = ChangeFacts {
        diff_sha256: diff::sha256(joined.text.as_bytes()),
        ..ChangeFacts::default()
    };
    Ok(rendered(
        format!("{} on cluster {}\n", lines.join("\n"), cc.name),
        changes.len(),
        facts,
    ))
}

/// A failure part-way says what was already done.
fn with_done(e: OpError, lines: &[String]) -> OpError {
    if lines.is_empty() {
        return e;
    }
    let done = format!("; already done before it: {}", lines.join(", "));
    match e {
        OpError::Api(mut a) => {
            a.hint = format!("{}{done}", a.hint);
            OpError::Api(a)
        }
        OpError::Refused(m) => OpError::Refused(format!("{m}{done}")),
        other => other,
    }
}

/// Applies plan `id` to `changes` (the same arguments as its dry-run).
async fn apply_plan(
    cc: &ClusterClient,
    opts: &OpOptions,
    how: &How,
    id: &PlanId,
    changes: &[Change],
    started: tokio::time::Instant,
) -> Result<Rendered, OpError> {
    let engine = &opts.changes;
    let digest = request_digest(&cc.name, changes);
    let plan = engine
        .store()
        .check(id, &cc.name, &how.session, &digest)
        .map_err(|e| OpError::Refused(format!("cluster {}: {e}; nothing was sent", cc.name)))?;
    let confirmation = match gate(
        engine,
        &cc.name,
        &plan,
        engine.needs_confirmation(&cc.name, changes).is_some(),
        how,
    )? {
        Gate::Go(word) => word,
        Gate::Hold => return Ok(hold_for_confirmation(opts, plan, changes, how)),
    };
    engine.store().remove(id);
    let mut lines = Vec::new();
    let mut joined = Joined::default();
    for (i, (step, c)) in plan.steps.iter().zip(changes).enumerate() {
        let call = Call::new(cc, "apply", step.label.clone(), opts).since(started);
        let (status, after) = match call.json_reply(step.bound.request(false)?).await {
            Ok(r) => r,
            Err(OpError::Api(a)) if a.code == 409 && i == 0 => {
                return Err(changed_since(cc, opts, how, changes, &plan, a.message).await);
            }
            Err(e) => return Err(with_done(e, &lines)),
        };
        lines.push(joined.done(step, c, &after, status, opts));
    }
    let text = format!(
        "Applied plan {} on cluster {}:\n{}\n{}",
        plan.id,
        cc.name,
        lines.join("\n"),
        capped(&joined.text, opts.max_bytes.saturating_sub(1024)),
    );
    let facts = ChangeFacts {
        plan: plan.id.to_string(),
        diff_sha256: diff::sha256(joined.text.as_bytes()),
        confirmation,
        confirm_needed: None,
    };
    Ok(rendered(text, changes.len(), facts))
}

/// What the user's answer lets a plan do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Apply it; the audit word of the confirmation ("" when none asked).
    Go(String),
    /// Ask the user first (no answer was given).
    Hold,
}

/// Checks the confirmation `how` carries for `plan` on `cluster`, when a
/// confirm rule holds it (`held`). A refusal (declined, or no way to ask
/// under `confirm_fallback = "deny"`) uses the plan up.
pub fn gate(
    engine: &Engine,
    cluster: &str,
    plan: &Plan,
    held: bool,
    how: &How,
) -> Result<Gate, OpError> {
    if !held {
        return Ok(Gate::Go(String::new()));
    }
    match how.confirmation {
        Confirmation::Accepted => Ok(Gate::Go("accepted".into())),
        Confirmation::None => Ok(Gate::Hold),
        Confirmation::Unavailable if engine.fallback == ConfirmFallback::Allow => {
            Ok(Gate::Go("fallback-allow".into()))
        }
        Confirmation::Unavailable => {
            engine.forget(&plan.id);
            Err(OpError::Refused(format!(
                "cluster {cluster}: {} refused: a [safety] confirm rule asks the user to confirm it, but this MCP client cannot ask (no elicitation support, or a stateless HTTP endpoint), and confirm_fallback = \"deny\"; nothing was sent. Use a client that supports elicitation through a stateful endpoint (stdio, or mcp-shim --http without --stateless), or an operator sets confirm_fallback = \"allow\"",
                plan.summary
            )))
        }
        Confirmation::Declined | Confirmation::Cancelled => {
            engine.forget(&plan.id);
            Err(OpError::Refused(format!(
                "cluster {cluster}: {} not applied: the user {} the confirmation; nothing was sent",
                plan.summary,
                confirmation_word(how.confirmation)
            )))
        }
    }
}

/// The refusal of a plan whose object changed since its preview, with a
/// fresh preview (and plan) when one can be made.
async fn changed_since(
    cc: &ClusterClient,
    opts: &OpOptions,
    how: &How,
    changes: &[Change],
    plan: &Plan,
    message: String,
) -> OpError {
    let fresh_how = How {
        dry_run: true,
        plan: None,
        ..how.clone()
    };
    let fresh = match preview(cc, opts, &fresh_how, changes, tokio::time::Instant::now()).await {
        Ok(fresh) => {
            let text = format!(
                "a fresh preview:\n{}new plan: {}",
                capped(&fresh.diff, opts.max_bytes.saturating_sub(2048)),
                fresh.id
            );
            opts.changes.store().insert(fresh);
            text
        }
        Err(e) => format!("no fresh preview could be made: {e}"),
    };
    OpError::Refused(format!(
        "cluster {}: plan {} not applied: {} changed since the plan was made (the API server answered 409 Conflict: {}); nothing was sent. Check {fresh}",
        cc.name,
        plan.id,
        plan.steps
            .first()
            .map_or("the object", |s| s.label.as_str()),
        crate::kubeconfig::one_line(&message),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment_delete(ns: &str) -> Change {
        let resource = kube::discovery::ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        Change {
            operation: Operation::Delete,
            kind: ResolvedKind {
                resource,
                namespaced: true,
                verbs: Vec::new(),
                short_names: Vec::new(),
            },
            namespace: Some(Namespace::parse("namespace", ns).unwrap()),
            name: ObjectName::parse("name", "web").unwrap(),
            label: "deployments.apps/web".into(),
            read_path: "/x".into(),
            call: ApiCall::new(Method::DELETE, "/x".into()),
            removes: true,
            said: |_| String::new(),
        }
    }

    #[test]
    fn rules_match_on_every_part_they_name() {
        let rule =
            |o: Option<&str>, k: Option<&str>, n: Option<&str>, c: Option<&str>| ConfirmRule {
                operation: o.map(str::to_string),
                kind: k.map(str::to_string),
                namespace: n.map(str::to_string),
                cluster: c.map(str::to_string),
            };
        let c = deployment_delete("shop");
        assert!(rule_matches(
            &rule(Some("delete"), None, None, None),
            "prod-1",
            &c
        ));
        assert!(rule_matches(
            &rule(None, Some("deployment"), Some("shop"), Some("prod-*")),
            "prod-1",
            &c
        ));
        assert!(rule_matches(
            &rule(None, Some("deployments.apps"), None, None),
            "x",
            &c
        ));
        assert!(!rule_matches(
            &rule(Some("scale"), None, None, None),
            "prod-1",
            &c
        ));
        assert!(!rule_matches(
            &rule(None, None, Some("other"), None),
            "prod-1",
            &c
        ));
        assert!(!rule_matches(
            &rule(Some("delete"), None, None, Some("prod-*")),
            "dev-1",
            &c
        ));
        let safety = SafetyConfig {
            require_plan: vec!["delete".into()],
            confirm: vec![rule(None, None, Some("shop"), None)],
            ..SafetyConfig::default()
        };
        let engine = Engine::new(&safety);
        assert!(engine.needs_plan(std::slice::from_ref(&c)).is_some());
        assert!(engine.needs_confirmation("any", &[c]).is_some());
        assert!(
            engine
                .needs_confirmation("any", &[deployment_delete("dev")])
                .is_none()
        );
        assert_eq!(engine.ttl, crate::config::DEFAULT_PLAN_TTL);
    }

    #[test]
    fn globs_match_cluster_names() {
        assert!(glob("prod-*", "prod-eu"));
        assert!(glob("*", "x"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("prod-*", "dev-prod-x"));
        assert!(!glob("prod", "prod-1"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn preconditions_bind_the_resource_version() {
        let merge = ApiCall::new(Method::PATCH, "/x".into())
            .body(
                "application/merge-patch+json",
                json!({"spec": {"replicas": 0}}),
            )
            .precondition(Precondition::Metadata);
        let b = Bound::new(merge, Some("7".into()));
        assert_eq!(
            b.call.body.as_ref().unwrap()["metadata"]["resourceVersion"],
            "7"
        );
        let jp = ApiCall::new(Method::PATCH, "/x".into())
            .body(
                "application/json-patch+json",
                json!([{"op": "add", "path": "/a", "value": 1}]),
            )
            .precondition(Precondition::JsonPatch);
        let b = Bound::new(jp, Some("8".into()));
        assert_eq!(b.call.body.as_ref().unwrap()[0]["value"], "8");
        let del =
            ApiCall::new(Method::DELETE, "/x".into()).precondition(Precondition::DeleteOptions);
        let b = Bound::new(del, Some("9".into()));
        assert_eq!(
            b.call.body.as_ref().unwrap()["preconditions"]["resourceVersion"],
            "9"
        );
        let r = b.request(true).unwrap();
        assert_eq!(r.uri().to_string(), "/x?dryRun=All");
        let sent: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            sent["dryRun"],
            json!(["All"]),
            "a DELETE body overrides the query"
        );
        let real: Value = serde_json::from_slice(b.request(false).unwrap().body()).unwrap();
        assert!(real.get("dryRun").is_none());
        let q = ApiCall::new(Method::PATCH, "/y".into()).query("fieldManager", "nskd a&b");
        assert_eq!(
            Bound::new(q, None)
                .request(false)
                .unwrap()
                .uri()
                .to_string(),
            "/y?fieldManager=nskd%20a%26b"
        );
    }

    #[test]
    fn diffs_are_capped_at_a_line_end() {
        let text = "line\n".repeat(100);
        let c = capped(&text, 52);
        assert!(
            c.starts_with("line\n") && c.contains("90 more lines"),
            "{c}"
        );
        assert_eq!(capped("a\n", 10), "a\n");
    }
}
