//! URL paths of API requests, built from checked names only, with every
//! segment percent-encoded: the one place a path is put together.

use kube::discovery::ApiResource;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::names::{Namespace, NodeLogPath, NodeName, ObjectName};

/// Bytes escaped in a path segment: everything that could end, split or
/// re-interpret it.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'[')
    .add(b']');

/// One path segment, percent-encoded.
pub fn segment(s: &str) -> String {
    let encoded = utf8_percent_encode(s, SEGMENT).to_string();
    // "." and ".." are names of directories to a URL, never of objects.
    match encoded.as_str() {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => encoded,
    }
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
fn group_version(r: &ApiResource) -> String {
    if r.group.is_empty() {
        format!("/api/{}", segment(&r.version))
    } else {
        format!("/apis/{}/{}", segment(&r.group), segment(&r.version))
    }
}

/// The collection of `r`, in `namespace` or cluster-wide.
pub fn collection(r: &ApiResource, namespace: Option<&Namespace>) -> String {
    match namespace {
        Some(ns) => format!(
            "{}/namespaces/{}/{}",
            group_version(r),
            segment(ns.as_str()),
            segment(&r.plural)
        ),
        None => format!("{}/{}", group_version(r), segment(&r.plural)),
    }
}

/// One object of `r`.
pub fn object(r: &ApiResource, namespace: Option<&Namespace>, name: &ObjectName) -> String {
    format!("{}/{}", collection(r, namespace), segment(name.as_str()))
}

/// A subresource (`scale`, `log`, `exec`) of one object.
pub fn subresource(
    r: &ApiResource,
    namespace: Option<&Namespace>,
    name: &ObjectName,
    sub: &'static str,
) -> String {
    format!("{}/{sub}", object(r, namespace, name))
}

/// What nskd reads from a kubelet through the node proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletPath {
    /// `/logs/<file>` (or the directory listing).
    Logs(NodeLogPath),
    /// `/stats/summary`.
    StatsSummary,
}

impl KubeletPath {
    /// The path under the kubelet, for messages and the audit log.
    pub fn display(&self) -> String {
        match self {
            Self::Logs(p) => format!("logs/{}", p.as_str()),
            Self::StatsSummary => "stats/summary".into(),
        }
    }
}

/// `/api/v1/nodes/NODE/proxy/...` for `what`; every segment encoded.
pub fn node_proxy(node: &NodeName, what: &KubeletPath) -> String {
    let base = format!("/api/v1/nodes/{}/proxy", segment(node.as_str()));
    match what {
        KubeletPath::StatsSummary => format!("{base}/stats/summary"),
        KubeletPath::Logs(p) => {
            let mut path = format!("{base}/logs/");
            let body = p.as_str().trim_end_matches('/');
            if !body.is_empty() {
                let segments: Vec<String> = body.split('/').map(segment).collect();
                path.push_str(&segments.join("/"));
                if p.as_str().ends_with('/') {
                    path.push('/');
                }
            }
            path
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> ApiResource {
        ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "Pod".into(),
            plural: "pods".into(),
        }
    }

    #[test]
    fn paths_are_built_from_encoded_segments() {
        let ns = Namespace::parse("namespace", "shop").unwrap();
        let name = ObjectName::parse("name", "system:node:x").unwrap();
        assert_eq!(collection(&pods(), None), "/api/v1/pods");
        assert_eq!(
            object(&pods(), Some(&ns), &name),
            "/api/v1/namespaces/shop/pods/system:node:x"
        );
        assert_eq!(
            subresource(&pods(), Some(&ns), &name, "log"),
            "/api/v1/namespaces/shop/pods/system:node:x/log"
        );
        let deploy = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        assert_eq!(
            collection(&deploy, Some(&ns)),
            "/apis/apps/v1/namespaces/shop/deployments"
        );
    }

    #[test]
    fn hostile_discovery_data_cannot_change_the_path() {
        let mut r = pods();
        r.plural = "secrets/../x?y#z".into();
        r.version = "..".into();
        assert_eq!(collection(&r, None), "/api/%2E%2E/secrets%2F..%2Fx%3Fy%23z");
        assert_eq!(segment("%2e"), "%252e");
        assert_eq!(segment("a b\n"), "a%20b%0A");
    }

    #[test]
    fn node_proxy_paths_stay_under_logs() {
        let node = NodeName::parse("name", "node-1").unwrap();
        let log = |p: &str| KubeletPath::Logs(NodeLogPath::parse("query", p).unwrap());
        assert_eq!(
            node_proxy(&node, &log("")),
            "/api/v1/nodes/node-1/proxy/logs/"
        );
        assert_eq!(
            node_proxy(&node, &log("pods/")),
            "/api/v1/nodes/node-1/proxy/logs/pods/"
        );
        assert_eq!(
            node_proxy(&node, &log("kubelet.log")),
            "/api/v1/nodes/node-1/proxy/logs/kubelet.log"
        );
        assert_eq!(
            node_proxy(&node, &KubeletPath::StatsSummary),
            "/api/v1/nodes/node-1/proxy/stats/summary"
        );
    }
}
