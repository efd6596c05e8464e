//! Leader election on a `coordination.k8s.io/v1` Lease: create it, renew
//! it every third of its duration, take it over once its holder let it
//! expire, every write with the resourceVersion read (a conflict means
//! someone else wrote first). Expiry is judged by when this replica last
//! saw the Lease change, never by the holder's clock.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use super::{Replication, Role};

/// What one round of the election decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// This replica holds the Lease (created, renewed or taken over).
    Holding,
    /// Another replica holds it.
    Following(Option<String>),
}

/// The Lease as last seen, and when it was first seen that way.
#[derive(Debug, Clone)]
pub struct Observed {
    version: String,
    at: Instant,
}

/// Whether a Lease held by someone else may be taken over: nobody holds
/// it, or it has not changed for longer than its duration since this
/// replica first saw it that way.
pub fn expired(spec: &LeaseSpec, unchanged_since: Instant, fallback: Duration) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return true;
    }
    let duration = spec
        .lease_duration_seconds
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(fallback);
    unchanged_since.elapsed() > duration
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// One round: read the Lease, then create, renew, take over or follow.
pub async fn round(
    api: &Api<Lease>,
    repl: &Replication,
    observed: &mut Option<Observed>,
) -> Result<Round, kube::Error> {
    let me = &repl.identity;
    let Some(mut lease) = api.get_opt(&repl.lease).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(repl.lease.clone()),
                namespace: Some(repl.namespace.clone()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_string(),
                        "nskd".to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(me.clone()),
                lease_duration_seconds: Some(seconds(repl.lease_duration)),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        api.create(&PostParams::default(), &lease).await?;
        return Ok(Round::Holding);
    };
    let version = lease.metadata.resource_version.clone().unwrap_or_default();
    let unchanged_since = match observed {
        Some(o) if o.version == version => o.at,
        _ => {
            *observed = Some(Observed {
                version: version.clone(),
                at: Instant::now(),
            });
            Instant::now()
        }
    };
    let mut spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    if holder.as_deref() == Some(me.as_str()) {
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(seconds(repl.lease_duration));
    } else if expired(&spec, unchanged_since, repl.lease_duration) {
        tracing::info!(lease = %repl.lease, previous = holder.as_deref().unwrap_or("nobody"), "taking over the Lease");
        spec.holder_identity = Some(me.clone());
        spec.acquire_time = Some(now());
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(seconds(repl.lease_duration));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    } else {
        return Ok(Round::Following(holder));
    }
    lease.spec = Some(spec);
    // metadata.resourceVersion is kept: the write fails if anyone else
    // wrote the Lease since it was read.
    api.replace(&repl.lease, &PostParams::default(), &lease)
        .await?;
    Ok(Round::Holding)
}

/// Gives the Lease up (holder cleared), so another replica need not wait
/// for it to expire. Only while this replica still holds it.
async fn release(api: &Api<Lease>, repl: &Replication) {
    let Ok(Some(mut lease)) = api.get_opt(&repl.lease).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(repl.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    match api
        .replace(&repl.lease, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(lease = %repl.lease, "Lease released"),
        Err(e) => {
            tracing::warn!(lease = %repl.lease, error = %e, "could not release the Lease; another replica takes over once it expires")
        }
    }
}

/// Runs the election until `shutdown`, then releases the Lease if held.
pub async fn run(repl: Arc<Replication>, mut shutdown: watch::Receiver<bool>) {
    let api: Api<Lease> = Api::namespaced(repl.client.clone(), &repl.namespace);
    let period = repl.lease_duration / 3;
    // A holder that cannot renew for this long steps down before anyone
    // else may take over (which needs a whole lease_duration).
    let renew_deadline = repl.lease_duration * 2 / 3;
    let mut observed = None;
    let mut last_renewed: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let result = tokio::time::timeout(
            period.max(Duration::from_secs(1)),
            round(&api, &repl, &mut observed),
        )
        .await;
        match result {
            Ok(Ok(Round::Holding)) => {
                if !repl.role().leader {
                    tracing::info!(lease = %repl.lease, namespace = %repl.namespace, identity = %repl.identity, "holding the Lease");
                }
                last_renewed = Some(started);
                repl.set_role(
                    Role {
                        leader: true,
                        holder: Some(repl.identity.clone()),
                    },
                    Some(started + renew_deadline),
                );
            }
            Ok(Ok(Round::Following(holder))) => {
                last_renewed = None;
                repl.set_role(
                    Role {
                        leader: false,
                        holder,
                    },
                    None,
                );
            }
            failed => {
                let why = match failed {
                    Ok(Err(e)) => lease_error(&repl, &e),
                    _ => format!(
                        "Lease {}/{}: no answer within {period:?}",
                        repl.namespace, repl.lease
                    ),
                };
                let lost = last_renewed.is_none_or(|t| t.elapsed() >= renew_deadline);
                if repl.role().leader && lost {
                    tracing::warn!(error = %why, "could not renew the Lease in time: stepping down");
                    last_renewed = None;
                    repl.set_role(
                        Role {
                            leader: false,
                            holder: None,
                        },
                        None,
                    );
                } else {
                    tracing::debug!(error = %why, "Lease round failed");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(period.saturating_sub(started.elapsed())) => {}
            _ = shutdown.changed() => {
                if repl.role().leader {
                    repl.set_role(Role::default(), None);
                    release(&api, &repl).await;
                }
                return;
            }
        }
    }
}

/// A failed Lease call, naming the Lease and what to do.
fn lease_error(repl: &Replication, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 409 => format!(
            "Lease {}/{} was written by another replica first (conflict); retrying",
            repl.namespace, repl.lease
        ),
        kube::Error::Api(s) if s.code == 403 => format!(
            "Lease {}/{}: forbidden ({}); grant nskd's service account get, create and update on leases.coordination.k8s.io in {}",
            repl.namespace, repl.lease, s.message, repl.namespace
        ),
        other => format!("Lease {}/{}: {other}", repl.namespace, repl.lease),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_only_after_it_stayed_unchanged_for_its_duration() {
        let held = LeaseSpec {
            holder_identity: Some("a".into()),
            lease_duration_seconds: Some(2),
            ..Default::default()
        };
        assert!(!expired(&held, Instant::now(), Duration::from_secs(15)));
        let long_ago = Instant::now() - Duration::from_secs(3);
        assert!(expired(&held, long_ago, Duration::from_secs(15)));
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..held.clone()
        };
        assert!(expired(&released, Instant::now(), Duration::from_secs(15)));
        let no_duration = LeaseSpec {
            lease_duration_seconds: None,
            ..held
        };
        assert!(!expired(&no_duration, long_ago, Duration::from_secs(15)));
    }
}
