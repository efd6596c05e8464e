//! One Helm write as a change: the safety switches, the dry-run with the
//! rendered manifest's diff against the release's current one, plans
//! bound to the release's current revision, `[safety] require_plan` and
//! `confirm`, then the helm run itself (see [`super::run`]).

use std::time::Instant as StdInstant;

use serde_json::{Value, json};

use super::{
    command::Action,
    run::{HelmError, HelmRunner},
};
use crate::{
    error::OpError,
    helm::{mask::mask_manifest, read::Reader},
    ops::{
        OpOptions, Rendered,
        change::{
            ChangeFacts, Gate, How, Operation, capped, diff, gate, hold,
            plan::{Plan, PlanId},
            previewed, rendered,
        },
    },
    pool::ClusterClient,
    registry::ClusterEntry,
    request::names::Namespace,
};

/// The kind confirm rules name Helm releases by.
pub const RELEASE_KIND: &str = "HelmRelease";

/// One Helm write's checked arguments.
#[derive(Debug, Clone)]
pub struct WriteArgs {
    /// What to do.
    pub action: Action,
    /// The release's namespace.
    pub namespace: Namespace,
    /// Checked YAML values (install/upgrade).
    pub values: Option<String>,
}

impl WriteArgs {
    fn operation(&self) -> Operation {
        match self.action {
            Action::Install { .. } => Operation::HelmInstall,
            Action::Upgrade { .. } => Operation::HelmUpgrade,
            Action::Rollback { .. } => Operation::HelmRollback,
            Action::Uninstall { .. } => Operation::HelmUninstall,
        }
    }

    fn label(&self) -> String {
        format!(
            "release {} in namespace {}",
            self.action.release(),
            self.namespace
        )
    }

    /// What a plan is found again by: every argument (values by digest).
    fn digest(&self, cluster: &str) -> String {
        let (chart, version, revision) = match &self.action {
            Action::Install { chart, version, .. } | Action::Upgrade { chart, version, .. } => (
                chart.as_arg().to_string_lossy().into_owned(),
                version.as_ref().map(|v| v.as_str().to_string()),
                None,
            ),
            Action::Rollback { revision, .. } => (String::new(), None, *revision),
            Action::Uninstall { .. } => (String::new(), None, None),
        };
        let input = json!({
            "cluster": cluster,
            "operation": self.operation().word(),
            "namespace": self.namespace.as_str(),
            "release": self.action.release().as_str(),
            "chart": chart,
            "version": version,
            "revision": revision,
            "values": self.values.as_deref().map(|v| diff::sha256(v.as_bytes())),
        });
        diff::sha256(input.to_string().as_bytes())
    }
}

/// The release as it is now: its latest revision (0: none) and manifest.
#[derive(Debug, Clone, Default)]
struct Current {
    revision: i64,
    manifest: String,
}

async fn current(
    cc: &ClusterClient,
    opts: &OpOptions,
    args: &WriteArgs,
) -> Result<Current, OpError> {
    let reader = Reader::new(cc, opts);
    let records = reader
        .index(Some(&args.namespace), Some(args.action.release()))
        .await?;
    let Some(latest) = records.iter().max_by_key(|r| r.revision) else {
        return Ok(Current::default());
    };
    let release = reader.fetch(latest).await?;
    Ok(Current {
        revision: latest.revision,
        manifest: release.manifest,
    })
}

/// A kubeconfig holding only `entry`'s context (current), its cluster and
/// its user, for helm's private file. Exec plugins and auth providers are
/// refused: helm would run them.
pub fn private_kubeconfig(entry: &ClusterEntry) -> Result<Vec<u8>, OpError> {
    let unusable = |reason: String| OpError::Unusable {
        cluster: entry.name.clone(),
        reason,
    };
    let file = entry
        .file
        .as_ref()
        .ok_or_else(|| unusable(format!("kubeconfig {} is not loaded", entry.path.display())))?;
    let config = &file.config;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == entry.context)
        .ok_or_else(|| {
            unusable(format!(
                "kubeconfig {} has no context {:?}",
                entry.path.display(),
                entry.context
            ))
        })?;
    let ctx = context.context.as_ref();
    let cluster_name = ctx.map(|c| c.cluster.as_str()).unwrap_or_default();
    let user_name = ctx.and_then(|c| c.user.as_deref()).unwrap_or_default();
    let user: Vec<_> = config
        .auth_infos
        .iter()
        .filter(|u| u.name == user_name)
        .cloned()
        .collect();
    if user.iter().any(|u| {
        u.auth_info
            .as_ref()
            .is_some_and(|a| a.exec.is_some() || a.auth_provider.is_some())
    }) {
        return Err(unusable(format!(
            "kubeconfig {} (context {:?}) runs an exec plugin or auth provider for its credentials; helm writes need a kubeconfig whose credentials are in the file (nskd never lets helm run a plugin)",
            entry.path.display(),
            entry.context
        )));
    }
    let one = kube::config::Kubeconfig {
        clusters: config
            .clusters
            .iter()
            .filter(|c| c.name == cluster_name)
            .cloned()
            .collect(),
        auth_infos: user,
        contexts: vec![context.clone()],
        current_context: Some(entry.context.clone()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Default::default()
    };
    yaml_serde::to_string(&one)
        .map(String::into_bytes)
        .map_err(|e| unusable(format!("cannot write its kubeconfig for helm: {e}")))
}

/// A helm failure as the daemon's error.
fn helm_error(cluster: &str, e: HelmError) -> OpError {
    match e {
        HelmError::Timeout { .. } | HelmError::Spawn { .. } | HelmError::Files { .. } => {
            OpError::Refused(format!("cluster {cluster}: {e}"))
        }
        HelmError::Failed { .. } => OpError::InvalidArgument(format!("cluster {cluster}: {e}")),
    }
}

/// The manifest in helm's JSON release output.
fn rendered_manifest(cluster: &str, stdout: &str) -> Result<(String, Value), OpError> {
    let release: Value = serde_json::from_str(stdout).map_err(|e| OpError::UnexpectedAnswer {
        cluster: cluster.to_string(),
        what: "helm's release output".into(),
        expected: "a JSON release (--output=json)".into(),
        got: format!("text that is not JSON ({e})"),
    })?;
    let manifest = release
        .get("manifest")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((manifest, release))
}

/// What the release would be (or is) after the write.
struct After {
    manifest: String,
    /// helm's JSON release (install/upgrade).
    release: Value,
    /// helm's first output line (rollback/uninstall).
    said: String,
}

/// Runs helm for `args` (dry-run or for real) and finds the manifest after.
async fn run_helm(
    runner: &HelmRunner,
    kubeconfig: &[u8],
    cc: &ClusterClient,
    opts: &OpOptions,
    args: &WriteArgs,
    current: &Current,
    dry_run: bool,
) -> Result<After, OpError> {
    let out = runner
        .run(
            kubeconfig,
            &args.action,
            &args.namespace,
            args.values.as_deref(),
            dry_run,
        )
        .await
        .map_err(|e| helm_error(&cc.name, e))?;
    let said = out.stdout.lines().next().unwrap_or_default().to_string();
    match &args.action {
        Action::Install { .. } | Action::Upgrade { .. } => {
            let (manifest, release) = rendered_manifest(&cc.name, &out.stdout)?;
            Ok(After {
                manifest,
                release,
                said,
            })
        }
        Action::Rollback { revision, release } => {
            let target = revision.map_or(current.revision - 1, i64::from);
            let manifest = Reader::new(cc, opts)
                .release(&args.namespace, release, Some(target))
                .await
                .map(|r| r.manifest)
                .unwrap_or_default();
            Ok(After {
                manifest,
                release: Value::Null,
                said,
            })
        }
        Action::Uninstall { .. } => Ok(After {
            manifest: String::new(),
            release: Value::Null,
            said,
        }),
    }
}

/// The masked diff of the manifest before → after.
fn manifest_diff(before: &str, after: &str, opts: &OpOptions, label: &str) -> diff::Diff {
    let masking = &opts.policy.masking;
    diff::unified_text(
        &mask_manifest(before, masking),
        &mask_manifest(after, masking),
        &format!("manifest of {label}"),
    )
}

/// Refuses what `[safety]`'s switches forbid, before anything runs.
fn check_policy(cc: &ClusterClient, opts: &OpOptions, args: &WriteArgs) -> Result<(), OpError> {
    let word = args.operation().word();
    let policy = &opts.policy;
    let refused = |why: String| {
        Err(OpError::Refused(format!(
            "cluster {}: {word} {} refused: {why}",
            cc.name,
            args.label()
        )))
    };
    if policy.read_only {
        return refused(format!(
            "environment {} is read-only (read_only = true / --read-only); only read tools work here",
            policy.environment
        ));
    }
    let destructive = nskd_proto::tools::class(word) == nskd_proto::tools::ToolClass::Destructive;
    if destructive && policy.disable_destructive {
        return refused(format!(
            "destructive operations are disabled in environment {} (disable_destructive = true): upgrading, rolling back and uninstalling releases",
            policy.environment
        ));
    }
    Ok(())
}

/// A fresh preview of `args`: the plan (not yet stored) and its diff.
#[allow(clippy::too_many_arguments)]
async fn preview(
    runner: &HelmRunner,
    kubeconfig: &[u8],
    cc: &ClusterClient,
    opts: &OpOptions,
    args: &WriteArgs,
    how: &How,
    current: &Current,
) -> Result<Plan, OpError> {
    let after = run_helm(runner, kubeconfig, cc, opts, args, current, true).await?;
    let label = args.label();
    let d = manifest_diff(&current.manifest, &after.manifest, opts, &label);
    let text = if d.text.is_empty() {
        format!("manifest of {label}: no change\n")
    } else {
        d.text
    };
    Ok(Plan {
        id: PlanId::random(),
        cluster: cc.name.clone(),
        session: how.session.clone(),
        request_digest: args.digest(&cc.name),
        operations: vec![args.operation()],
        steps: Vec::new(),
        summary: format!("{} {label} on cluster {}", args.operation().word(), cc.name),
        diff_sha256: diff::sha256(text.as_bytes()),
        diff: text,
        diff_lines: d.changed_lines,
        expires: StdInstant::now() + opts.changes.ttl(),
        release_revision: Some(current.revision),
    })
}

/// What the write did, one line.
fn done_line(args: &WriteArgs, cluster: &str, after: &After) -> String {
    let label = args.label();
    let word = args.operation().word();
    match &args.action {
        Action::Install { .. } | Action::Upgrade { .. } => {
            let r = &after.release;
            let s = |p: &str| r.pointer(p).and_then(Value::as_str).unwrap_or("?");
            format!(
                "{word} {label} on cluster {cluster}: revision {}, status {}, chart {}-{}",
                r.get("version").and_then(Value::as_i64).unwrap_or_default(),
                s("/info/status"),
                s("/chart/metadata/name"),
                s("/chart/metadata/version"),
            )
        }
        Action::Rollback { .. } | Action::Uninstall { .. } => {
            format!(
                "{word} {label} on cluster {cluster}: {}",
                crate::kubeconfig::one_line(after.said.trim())
            )
        }
    }
}

/// Runs one Helm write on `cc` as `how` says: the same rules as every
/// other change (see [`crate::ops::change`]), the plan also bound to the
/// release's current revision.
pub async fn write(
    runner: &HelmRunner,
    kubeconfig: &[u8],
    cc: &ClusterClient,
    opts: &OpOptions,
    args: &WriteArgs,
    how: &How,
) -> Result<Rendered, OpError> {
    check_policy(cc, opts, args)?;
    if runner.find_binary().is_none() {
        return Err(OpError::Refused(format!(
            "cluster {}: {} refused: {}",
            cc.name,
            args.operation().word(),
            runner.unavailable()
        )));
    }
    let engine = &opts.changes;
    let op = args.operation();
    let max = opts.max_bytes.saturating_sub(1024);
    let now = current(cc, opts, args).await?;
    let held = engine.confirms(&cc.name, op, RELEASE_KIND, args.namespace.as_str());
    if let Some(id) = &how.plan {
        let plan = engine
            .check(id, &cc.name, &how.session, &args.digest(&cc.name))
            .map_err(|e| OpError::Refused(format!("cluster {}: {e}; nothing was run", cc.name)))?;
        if plan.release_revision != Some(now.revision) {
            engine.forget(id);
            let fresh = preview(runner, kubeconfig, cc, opts, args, how, &now).await?;
            let text = format!(
                "cluster {}: plan {id} not applied: {} moved from revision {} to {} since the plan was made; nothing was run. A fresh preview:\n{}new plan: {}",
                cc.name,
                args.label(),
                plan.release_revision.unwrap_or_default(),
                now.revision,
                capped(&fresh.diff, max.saturating_sub(1024)),
                fresh.id
            );
            engine.keep(fresh);
            return Err(OpError::Refused(text));
        }
        let confirmation = match gate(engine, &cc.name, &plan, held, how)? {
            Gate::Go(word) => word,
            Gate::Hold => return Ok(hold(opts, plan, op.word(), 1, how)),
        };
        engine.forget(id);
        let after = run_helm(runner, kubeconfig, cc, opts, args, &now, false).await?;
        let text = format!(
            "Applied plan {} on cluster {}:\n{}\n{}",
            plan.id,
            cc.name,
            done_line(args, &cc.name, &after),
            capped(&plan.diff, max)
        );
        let facts = ChangeFacts {
            plan: plan.id.to_string(),
            diff_sha256: plan.diff_sha256.clone(),
            confirmation,
            confirm_needed: None,
        };
        return Ok(rendered(text, 1, facts));
    }
    if how.dry_run {
        let plan = preview(runner, kubeconfig, cc, opts, args, how, &now).await?;
        let note = format!(
            "(the plan is bound to revision {} of the release)\n",
            now.revision
        );
        return Ok(previewed(
            opts,
            &cc.name,
            plan,
            ("helm --dry-run=server", &note),
            [engine.requires_plan(op), held],
            1,
        ));
    }
    if engine.requires_plan(op) {
        return Err(OpError::Refused(format!(
            "cluster {}: {} {} refused: [safety] require_plan names {:?}; call it with dryRun: true first, check the diff, then call again with the plan id it answers",
            cc.name,
            op.word(),
            args.label(),
            op.word()
        )));
    }
    if held {
        let plan = preview(runner, kubeconfig, cc, opts, args, how, &now).await?;
        return Ok(hold(opts, plan, op.word(), 1, how));
    }
    let after = run_helm(runner, kubeconfig, cc, opts, args, &now, false).await?;
    let d = manifest_diff(&now.manifest, &after.manifest, opts, &args.label());
    let facts = ChangeFacts {
        diff_sha256: diff::sha256(d.text.as_bytes()),
        ..ChangeFacts::default()
    };
    Ok(rendered(
        format!("{}\n", done_line(args, &cc.name, &after)),
        1,
        facts,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::names::ReleaseName;

    #[test]
    fn the_digest_names_every_argument() {
        let args = |revision, values: Option<&str>| WriteArgs {
            action: Action::Rollback {
                release: ReleaseName::parse("name", "web").unwrap(),
                revision,
            },
            namespace: Namespace::parse("namespace", "apps").unwrap(),
            values: values.map(str::to_string),
        };
        let a = args(Some(1), None).digest("c1");
        assert_eq!(a, args(Some(1), None).digest("c1"));
        assert_ne!(a, args(Some(2), None).digest("c1"));
        assert_ne!(a, args(Some(1), None).digest("c2"));
        assert_ne!(a, args(Some(1), Some("a: 1")).digest("c1"));
    }
}
