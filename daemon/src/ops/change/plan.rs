//! Plans: what a dry-run previewed, kept in memory for a while under an
//! unguessable id, so that the apply that follows sends exactly that.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{Bound, Operation};
use crate::request::InvalidInput;

/// Most plans kept at once; the oldest goes first past it.
pub const MAX_PLANS: usize = 256;

/// A plan id: "p-" and 24 hex digits (96 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanId(String);

impl PlanId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 12];
        // The OS random source; without it no plan could be trusted.
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        Self(format!(
            "p-{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ))
    }

    /// Checks an id an agent passed (`field` names the argument).
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = value.len() == 26
            && value.starts_with("p-")
            && value[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidInput::new(
                field,
                value,
                "is not a plan id (\"p-\" and 24 hex digits, as a dry-run answered)",
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PlanId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One previewed change of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    /// The request to send, its precondition bound.
    pub bound: Bound,
    /// The object before (raw), `None` when it did not exist.
    pub before: Option<Value>,
    /// Resolved plural (masking).
    pub plural: String,
    /// Object label for messages.
    pub label: String,
}

/// What a dry-run previewed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// The cluster it was made on.
    pub cluster: String,
    /// The session that made it ("" for callers without one).
    pub session: String,
    /// Digest of the requests it was made for (before binding).
    pub request_digest: String,
    /// The operations of its steps.
    pub operations: Vec<Operation>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// One line: what it does.
    pub summary: String,
    /// The previewed diff.
    pub diff: String,
    /// Its changed lines.
    pub diff_lines: u32,
    /// sha256 of the diff.
    pub diff_sha256: String,
    /// When it stops being valid.
    pub expires: Instant,
    /// A Helm write's plan: the release's latest revision when previewed
    /// (0: no release); the apply is refused if it moved.
    pub release_revision: Option<i64>,
}

/// The plans of a daemon: bounded, each valid for a while, each used once.
#[derive(Debug, Default)]
pub struct PlanStore {
    plans: HashMap<PlanId, Plan>,
}

/// Why a plan cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Never made, already used, expired or evicted.
    #[error(
        "plan {0} is unknown to this nskd: it expired, was already used, never existed, or was made by another nskd replica (a plan stays with the replica that made it); preview the change again with dryRun: true and pass the new plan id (behind several replicas: over the same connection, or where the dry run ran)"
    )]
    Unknown(String),
    /// Made on another cluster.
    #[error(
        "plan {id} was made on cluster {made_on}, not {asked}; plans apply only on their cluster"
    )]
    OtherCluster {
        /// The id.
        id: String,
        /// Its cluster.
        made_on: String,
        /// The cluster asked for.
        asked: String,
    },
    /// Made by another session.
    #[error("plan {0} belongs to another session; preview the change in this session")]
    OtherSession(String),
    /// Made for other arguments.
    #[error(
        "plan {0} was made for a different request (other object, operation or arguments); pass the same arguments as the dry-run, or preview this request with dryRun: true"
    )]
    OtherRequest(String),
}

impl PlanStore {
    /// Keeps `plan`, dropping expired ones and, past [`MAX_PLANS`], the
    /// one that expires first.
    pub fn insert(&mut self, plan: Plan) {
        let now = Instant::now();
        self.plans.retain(|_, p| p.expires > now);
        while self.plans.len() >= MAX_PLANS {
            let Some(oldest) = self
                .plans
                .values()
                .min_by_key(|p| p.expires)
                .map(|p| p.id.clone())
            else {
                break;
            };
            self.plans.remove(&oldest);
        }
        self.plans.insert(plan.id.clone(), plan);
    }

    /// The plan `id` if this session may use it on `cluster` for a request
    /// of `request_digest` (left in the store).
    pub fn check(
        &self,
        id: &PlanId,
        cluster: &str,
        session: &str,
        request_digest: &str,
    ) -> Result<Plan, PlanError> {
        let plan = self
            .plans
            .get(id)
            .filter(|p| p.expires > Instant::now())
            .ok_or_else(|| PlanError::Unknown(id.to_string()))?;
        if plan.cluster != cluster {
            return Err(PlanError::OtherCluster {
                id: id.to_string(),
                made_on: plan.cluster.clone(),
                asked: cluster.to_string(),
            });
        }
        if plan.session != session {
            return Err(PlanError::OtherSession(id.to_string()));
        }
        if plan.request_digest != request_digest {
            return Err(PlanError::OtherRequest(id.to_string()));
        }
        Ok(plan.clone())
    }

    /// Uses up the plan `id`.
    pub fn remove(&mut self, id: &PlanId) {
        self.plans.remove(id);
    }

    /// Plans kept now.
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }
}

/// How long plans live, `ttl` or the default when zero.
pub fn ttl_or_default(ttl: Duration) -> Duration {
    if ttl.is_zero() {
        crate::config::DEFAULT_PLAN_TTL
    } else {
        ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cluster: &str, expires: Instant) -> Plan {
        Plan {
            id: PlanId::random(),
            cluster: cluster.into(),
            session: "s1".into(),
            request_digest: "d".into(),
            operations: vec![Operation::Delete],
            steps: Vec::new(),
            summary: String::new(),
            diff: String::new(),
            diff_lines: 0,
            diff_sha256: String::new(),
            expires,
            release_revision: None,
        }
    }

    #[test]
    fn plans_bind_to_cluster_session_and_request_and_expire() {
        let mut store = PlanStore::default();
        let later = Instant::now() + Duration::from_secs(60);
        let p = plan("a", later);
        let id = p.id.clone();
        store.insert(p);
        assert!(store.check(&id, "a", "s1", "d").is_ok());
        assert!(matches!(
            store.check(&id, "b", "s1", "d"),
            Err(PlanError::OtherCluster { .. })
        ));
        assert!(matches!(
            store.check(&id, "a", "s2", "d"),
            Err(PlanError::OtherSession(_))
        ));
        assert!(matches!(
            store.check(&id, "a", "s1", "x"),
            Err(PlanError::OtherRequest(_))
        ));
        store.remove(&id);
        assert!(matches!(
            store.check(&id, "a", "s1", "d"),
            Err(PlanError::Unknown(_))
        ));
        let old = plan("a", Instant::now());
        let old_id = old.id.clone();
        store.insert(old);
        assert!(store.check(&old_id, "a", "s1", "d").is_err());
        for _ in 0..MAX_PLANS + 10 {
            store.insert(plan("a", later));
        }
        assert_eq!(store.len(), MAX_PLANS);
    }

    #[test]
    fn ids_are_random_and_checked() {
        let (a, b) = (PlanId::random(), PlanId::random());
        assert_ne!(a, b);
        assert_eq!(PlanId::parse("plan", a.as_str()).unwrap(), a);
        for bad in [
            "",
            "p-",
            "p-../../etc/passwd........",
            "P-0123456789abcdef01234567",
            "p-0123456789ABCDEF01234567",
            "p-0123456789abcdef012345678",
            "p-0123456789abcdef0123456\n",
        ] {
            assert!(PlanId::parse("plan", bad).is_err(), "{bad:?}");
        }
    }
}
