//! What agents may see and do, decided on the request that will be sent
//! (verb, group, kind, subresource) and on the object the server returned,
//! never on what the agent said it wanted.

use serde_json::Value;

use crate::{
    config::Config,
    error::OpError,
    kinds::ResolvedKind,
    kinds::{KindId, KindPattern},
};

/// Kinds masked whatever the configuration says (`[safety] sensitive_kinds`
/// adds to these; `reveal_secrets = true` shows them all).
pub const BUILTIN_SENSITIVE_KINDS: &[&str] = &[
    "core/Secret",
    "tokens.management.cattle.io",
    "clusterregistrationtokens.management.cattle.io",
    "tokenrequests.authentication.k8s.io",
    "tokenreviews.authentication.k8s.io",
];

/// The safety switches of an environment.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Environment name (for messages).
    pub environment: String,
    /// Only reads.
    pub read_only: bool,
    /// No delete, overwrite, scale, exec, restart, nor creation of
    /// workloads, RBAC, admission, CRDs, quotas or network policies.
    pub disable_destructive: bool,
    /// Kinds nobody may touch, reads included.
    pub denied: Vec<KindPattern>,
    /// What answers hide.
    pub masking: Masking,
}

impl Policy {
    /// From the configuration (whose patterns `check-config` validated;
    /// one that still fails to parse is an error here too).
    pub fn of(config: &Config) -> Result<Self, String> {
        let parse = |key: &str, patterns: &[String]| {
            KindPattern::parse_all(patterns).map_err(|errors| {
                errors
                    .iter()
                    .map(|e| format!("{key}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        };
        Ok(Self {
            environment: config.environment().to_string(),
            read_only: config.read_only,
            disable_destructive: config.disable_destructive,
            denied: parse("denied_resources", &config.denied_resources)?,
            masking: Masking::new(config.reveal_secrets, &config.safety.sensitive_kinds)?,
        })
    }
}

/// What a request does to the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// GET one object (or a read-only subresource: log, node proxy).
    Get,
    /// GET a collection.
    List,
    /// Create a new object (POST; never overwrites).
    Create,
    /// Server-side apply: creates, or overwrites an existing object.
    Apply,
    /// PATCH an existing object (rollout restart, scale).
    Patch,
    /// PATCH of one reversible switch the daemon writes itself, which
    /// stops or removes nothing (node cordon/uncordon, rollout pause).
    Toggle,
    /// DELETE one object.
    Delete,
    /// Run a command in a container (`pods/exec`).
    Exec,
}

impl Action {
    /// The API server's verb.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::List => "list",
            Action::Create | Action::Exec => "create",
            Action::Apply | Action::Patch | Action::Toggle => "patch",
            Action::Delete => "delete",
        }
    }
}

/// One request, as it will be sent.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    /// The kind it acts on, as the cluster resolved it.
    pub kind: &'a ResolvedKind,
    /// What it does.
    pub action: Action,
    /// `log`, `exec`, `scale`, `proxy`, or none.
    pub subresource: Option<&'static str>,
}

/// How much a request can hurt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Risk {
    /// Reads.
    Read,
    /// Creates something harmless.
    Write,
    /// Deletes, overwrites, runs code or grants power.
    Destructive,
}

/// Kinds whose creation runs code or grants power: workloads, RBAC,
/// admission webhooks and policies, CRDs and API services, quotas and
/// network policies (`group`, `Kind`).
const POWERFUL_TO_CREATE: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "ReplicationController"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("networking.k8s.io", "NetworkPolicy"),
];

impl ApiRequest<'_> {
    /// How much this request can hurt.
    pub fn risk(&self) -> Risk {
        let r = &self.kind.resource;
        match self.action {
            Action::Get | Action::List => Risk::Read,
            Action::Toggle => Risk::Write,
            Action::Create
                if !POWERFUL_TO_CREATE
                    .iter()
                    .any(|(g, k)| *g == r.group && *k == r.kind) =>
            {
                Risk::Write
            }
            Action::Create | Action::Apply | Action::Patch | Action::Delete | Action::Exec => {
                Risk::Destructive
            }
        }
    }

    fn id(&self) -> KindId<'_> {
        let r = &self.kind.resource;
        KindId {
            group: &r.group,
            version: &r.version,
            kind: &r.kind,
            plural: &r.plural,
        }
    }
}

/// Refuses `request` when the configuration forbids it, saying which
/// switch and how to change it. Called before anything is sent.
pub fn check(
    policy: &Policy,
    cluster: &str,
    request: &ApiRequest<'_>,
    what: &str,
) -> Result<(), OpError> {
    let refused = |why: String| {
        Err(OpError::Refused(format!(
            "cluster {cluster}: {what} refused: {why}"
        )))
    };
    if let Some(p) = policy.denied.iter().find(|p| p.matches(request.id())) {
        return refused(format!(
            "{} is in denied_resources ({:?}) of environment {}; an operator can change that in the daemon's config",
            request.kind.display_name(),
            p.as_str(),
            policy.environment
        ));
    }
    let risk = request.risk();
    if risk != Risk::Read && policy.read_only {
        return refused(format!(
            "environment {} is read-only (read_only = true / --read-only); only read tools work here",
            policy.environment
        ));
    }
    if risk == Risk::Destructive && policy.disable_destructive {
        return refused(format!(
            "destructive operations are disabled in environment {} (disable_destructive = true): deleting, overwriting, scaling, restarting, exec, and creating workloads, RBAC, admission webhooks, CRDs, quotas or network policies",
            policy.environment
        ));
    }
    Ok(())
}

/// Which kinds' values answers hide.
#[derive(Debug, Clone, Default)]
pub struct Masking {
    reveal: bool,
    sensitive: Vec<KindPattern>,
}

/// Fields of a sensitive object shown as they are.
const CLEAR_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "type"];

impl Masking {
    /// The built-in sensitive kinds plus `extra`; `reveal` turns masking off.
    pub fn new(reveal: bool, extra: &[String]) -> Result<Self, String> {
        let builtin: Vec<String> = BUILTIN_SENSITIVE_KINDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let sensitive =
            KindPattern::parse_all(&[builtin, extra.to_vec()].concat()).map_err(|errors| {
                errors
                    .iter()
                    .map(|e| format!("[safety] sensitive_kinds: {e}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        Ok(Self { reveal, sensitive })
    }

    /// Whether values are shown.
    pub fn reveals(&self) -> bool {
        self.reveal
    }

    /// Whether objects of `kind` are masked.
    pub fn is_sensitive(&self, kind: &ResolvedKind) -> bool {
        let r = &kind.resource;
        !self.reveal
            && self.sensitive_id(KindId {
                group: &r.group,
                version: &r.version,
                kind: &r.kind,
                plural: &r.plural,
            })
    }

    fn sensitive_id(&self, id: KindId<'_>) -> bool {
        self.sensitive.iter().any(|p| p.matches(id))
    }

    /// Masks `object` when the kind it says it is (its own `apiVersion` and
    /// `kind`) is sensitive: every string outside metadata, `type` and
    /// `kind` becomes a note of its size, keys kept. `plural` is the
    /// resolved plural when the object is of the resolved kind. Masking
    /// twice changes nothing.
    pub fn mask(&self, object: &mut Value, plural: &str) {
        if self.reveal {
            return;
        }
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        // Without a plural from discovery, kubectl's regular plural.
        let guessed = if plural.is_empty() {
            format!("{}s", kind.to_ascii_lowercase())
        } else {
            String::new()
        };
        let id = KindId {
            group,
            version,
            kind,
            plural: if plural.is_empty() { &guessed } else { plural },
        };
        if !self.sensitive_id(id) {
            return;
        }
        if let Value::Object(map) = object {
            for (key, value) in map.iter_mut() {
                if !CLEAR_FIELDS.contains(&key.as_str()) {
                    mask_leaves(value);
                }
            }
            if let Some(Value::Object(ann)) = map
                .get_mut("metadata")
                .and_then(|m| m.get_mut("annotations"))
            {
                // The last-applied annotation repeats the values in clear.
                ann.remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }
    }
}

/// Removes noise agents never need (managedFields, the last-applied
/// annotation) and masks the values of sensitive kinds (keyed on the
/// object's own kind; `plural` is the resolved kind's, when it is that kind).
pub fn clean_object(object: &mut Value, masking: &Masking, plural: &str) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.remove("managedFields");
        if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
            ann.remove("kubectl.kubernetes.io/last-applied-configuration");
            if ann.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    masking.mask(object, plural);
}

/// Replaces every string under `value` by a note of its size (keys kept).
pub fn mask_leaves(value: &mut Value) {
    match value {
        Value::String(s) if !is_mask(s) => {
            *s = format!("[MASKED: {} bytes; reveal_secrets is off]", s.len());
        }
        Value::Array(items) => items.iter_mut().for_each(mask_leaves),
        Value::Object(map) => map.values_mut().for_each(mask_leaves),
        _ => {}
    }
}

/// Whether `s` is already a mask note.
pub fn is_mask(s: &str) -> bool {
    s.strip_prefix("[MASKED: ")
        .and_then(|r| r.strip_suffix(" bytes; reveal_secrets is off]"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use kube::discovery::ApiResource;
    use serde_json::json;

    use super::*;

    fn kind(group: &str, kind: &str, plural: &str) -> ResolvedKind {
        ResolvedKind {
            resource: ApiResource {
                group: group.into(),
                version: "v1".into(),
                api_version: if group.is_empty() {
                    "v1".into()
                } else {
                    format!("{group}/v1")
                },
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced: true,
            verbs: vec![],
            short_names: vec![],
        }
    }

    fn masking() -> Masking {
        Masking::new(false, &["example.com/Vault".into()]).unwrap()
    }

    #[test]
    fn secret_values_are_masked_and_keys_kept() {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "data": {"password": "czNjcjN0"}, "stringData": {"x": "plain"},
            "metadata": {"name": "db", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"czNjcjN0\"}}"}}});
        masking().mask(&mut s, "secrets");
        let once = s.clone();
        masking().mask(&mut s, "secrets");
        assert_eq!(s, once, "masking twice changes nothing");
        let text = s.to_string();
        assert!(
            !text.contains("czNjcjN0") && !text.contains("plain"),
            "{text}"
        );
        assert_eq!(
            s["data"]["password"],
            "[MASKED: 8 bytes; reveal_secrets is off]"
        );
        assert_eq!(
            (s["type"].as_str(), s["metadata"]["name"].as_str()),
            (Some("Opaque"), Some("db"))
        );
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        masking().mask(&mut cm, "configmaps");
        assert_eq!(cm["data"]["a"], "b");
    }

    #[test]
    fn masking_keys_on_the_returned_object_and_covers_rancher_tokens() {
        let mut token = json!({"apiVersion": "management.cattle.io/v3", "kind": "Token",
            "token": "kubeconfig-u-abc:xyz", "metadata": {"name": "t"}});
        masking().mask(&mut token, "");
        assert!(!token.to_string().contains("xyz"), "{token}");
        let mut crt = json!({"apiVersion": "management.cattle.io/v3", "kind": "ClusterRegistrationToken",
            "status": {"token": "abc", "command": "kubectl apply -f https://x/abc.yaml"}});
        masking().mask(&mut crt, "");
        assert!(!crt.to_string().contains("abc"), "{crt}");
        let mut custom =
            json!({"apiVersion": "example.com/v1", "kind": "Vault", "spec": {"key": ["k1"]}});
        masking().mask(&mut custom, "vaults");
        assert!(!custom.to_string().contains("k1"), "{custom}");
        // A planted "mask" with more after it is masked again.
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "[MASKED: 1 bytes; reveal_secrets is off] czNj"}});
        masking().mask(&mut s, "");
        assert!(!s.to_string().contains("czNj"), "{s}");
        let reveal = Masking::new(true, &[]).unwrap();
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "czNj"}});
        reveal.mask(&mut s, "secrets");
        assert_eq!(s["data"]["a"], "czNj");
    }

    #[test]
    fn the_request_decides_the_risk() {
        let req = |k: &ResolvedKind, action| {
            ApiRequest {
                kind: k,
                action,
                subresource: None,
            }
            .risk()
        };
        let cm = kind("", "ConfigMap", "configmaps");
        let pod = kind("", "Pod", "pods");
        let crb = kind(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
        );
        assert_eq!(req(&cm, Action::Create), Risk::Write);
        assert_eq!(req(&pod, Action::Create), Risk::Destructive);
        assert_eq!(req(&crb, Action::Create), Risk::Destructive);
        assert_eq!(req(&cm, Action::Apply), Risk::Destructive);
        assert_eq!(req(&pod, Action::Get), Risk::Read);
        assert_eq!(req(&pod, Action::Exec), Risk::Destructive);
        let node = kind("", "Node", "nodes");
        assert_eq!(req(&node, Action::Toggle), Risk::Write);
    }

    #[test]
    fn denied_kinds_refuse_reads_too_and_name_the_switch() {
        let policy = Policy {
            environment: "prod".into(),
            denied: KindPattern::parse_all(&["core/v1/Secret".into()]).unwrap(),
            disable_destructive: true,
            ..Policy::default()
        };
        let secret = kind("", "Secret", "secrets");
        let read = ApiRequest {
            kind: &secret,
            action: Action::List,
            subresource: None,
        };
        let e = check(&policy, "c1", &read, "list secrets")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("denied_resources") && e.contains("core/v1/Secret"),
            "{e}"
        );
        let pod = kind("", "Pod", "pods");
        let create = ApiRequest {
            kind: &pod,
            action: Action::Create,
            subresource: None,
        };
        let e = check(&policy, "c1", &create, "create pods/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("disable_destructive"), "{e}");
        let cm = kind("", "ConfigMap", "configmaps");
        let ok = ApiRequest {
            kind: &cm,
            action: Action::Create,
            subresource: None,
        };
        assert!(check(&policy, "c1", &ok, "create").is_ok());
    }
}
