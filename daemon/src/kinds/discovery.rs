//! Resolving a kind the way kubectl does (kind, plural, singular or short
//! name, any case), from each cluster's own API discovery, cached per
//! cluster client. Old and new API servers alike, CRDs included.

use std::{collections::HashMap, sync::Arc};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::discovery::ApiResource;
use tokio::sync::Mutex;

/// A kind as this cluster serves it.
#[derive(Debug, Clone)]
pub struct ResolvedKind {
    /// Group, version, kind, plural.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs the server allows (list, get, watch, patch...).
    pub verbs: Vec<String>,
    /// Short names (po, svc, deploy...).
    pub short_names: Vec<String>,
}

impl ResolvedKind {
    /// Whether `name` (any case) names this kind.
    pub fn matches(&self, name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        self.resource.kind.to_ascii_lowercase() == n
            || self.resource.plural == n
            || self.short_names.contains(&n)
    }

    /// e.g. `pods` or `deployments.apps`.
    pub fn display_name(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        }
    }
}

/// Discovery cache of one cluster, keyed only on group-versions the
/// server lists (so callers naming others cannot grow it).
#[derive(Debug, Default)]
pub struct ApiDiscovery {
    by_group_version: Mutex<HashMap<String, Arc<Vec<ResolvedKind>>>>,
    groups: Mutex<Option<Arc<Groups>>>,
}

/// The server's API groups.
#[derive(Debug)]
struct Groups {
    /// Each group's preferred version, in the server's order.
    preferred: Vec<String>,
    /// Every served group-version.
    served: std::collections::HashSet<String>,
    /// When they were read.
    fetched: std::time::Instant,
}

/// How soon the group list may be re-read for a group-version it lacks
/// (a CRD installed since).
const GROUPS_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

impl ApiDiscovery {
    /// Resolves `kind` within `api_version` ("" = search core v1, then every
    /// group's preferred version).
    pub async fn resolve(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<ResolvedKind>, kube::Error> {
        if !api_version.is_empty() {
            if api_version != "v1" && !self.serves(client, api_version).await? {
                return Ok(None);
            }
            let kinds = self.group_version(client, api_version).await?;
            return Ok(kinds.iter().find(|k| k.matches(kind)).cloned());
        }
        let core = self.group_version(client, "v1").await?;
        if let Some(found) = core.iter().find(|k| k.matches(kind)) {
            return Ok(Some(found.clone()));
        }
        for gv in self.groups(client, false).await?.preferred.iter() {
            let kinds = self.group_version(client, gv).await?;
            if let Some(found) = kinds.iter().find(|k| k.matches(kind)) {
                return Ok(Some(found.clone()));
            }
        }
        Ok(None)
    }

    async fn group_version(
        &self,
        client: &kube::Client,
        api_version: &str,
    ) -> Result<Arc<Vec<ResolvedKind>>, kube::Error> {
        if let Some(hit) = self.by_group_version.lock().await.get(api_version) {
            return Ok(hit.clone());
        }
        let list = if api_version.contains('/') {
            client.list_api_group_resources(api_version).await
        } else {
            client.list_core_api_resources(api_version).await
        };
        let list = match list {
            Ok(l) => l,
            // An unknown group-version is "no such kind", not a failure.
            Err(kube::Error::Api(s)) if s.code == 404 => APIResourceList {
                group_version: api_version.to_string(),
                resources: vec![],
            },
            Err(e) => return Err(e),
        };
        let kinds = Arc::new(kinds_of(&list));
        self.by_group_version
            .lock()
            .await
            .insert(api_version.to_string(), kinds.clone());
        Ok(kinds)
    }

    /// Whether the server lists `api_version` (re-reading the list, at
    /// most every few seconds, when it does not).
    async fn serves(&self, client: &kube::Client, api_version: &str) -> Result<bool, kube::Error> {
        let groups = self.groups(client, false).await?;
        if groups.served.contains(api_version) {
            return Ok(true);
        }
        if groups.fetched.elapsed() < GROUPS_REFRESH {
            return Ok(false);
        }
        Ok(self
            .groups(client, true)
            .await?
            .served
            .contains(api_version))
    }

    async fn groups(
        &self,
        client: &kube::Client,
        reread: bool,
    ) -> Result<Arc<Groups>, kube::Error> {
        let mut slot = self.groups.lock().await;
        if let Some(v) = slot.as_ref()
            && !reread
        {
            return Ok(v.clone());
        }
        let list = client.list_api_groups().await?;
        let preferred = list
            .groups
            .iter()
            .filter_map(|g| {
                g.preferred_version
                    .as_ref()
                    .map(|v| v.group_version.clone())
                    .or_else(|| g.versions.first().map(|v| v.group_version.clone()))
            })
            .collect();
        let served = list
            .groups
            .iter()
            .flat_map(|g| g.versions.iter().map(|v| v.group_version.clone()))
            .collect();
        let groups = Arc::new(Groups {
            preferred,
            served,
            fetched: std::time::Instant::now(),
        });
        *slot = Some(groups.clone());
        Ok(groups)
    }
}

fn kinds_of(list: &APIResourceList) -> Vec<ResolvedKind> {
    let (group, version) = match list.group_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), list.group_version.clone()),
    };
    list.resources
        .iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| ResolvedKind {
            resource: ApiResource {
                group: group.clone(),
                version: version.clone(),
                api_version: list.group_version.clone(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
            },
            namespaced: r.namespaced,
            verbs: r.verbs.clone(),
            short_names: r.short_names.clone().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    #[test]
    fn matches_kind_plural_and_short_names_but_not_subresources() {
        let list = APIResourceList {
            group_version: "apps/v1".into(),
            resources: vec![
                APIResource {
                    name: "deployments".into(),
                    kind: "Deployment".into(),
                    namespaced: true,
                    short_names: Some(vec!["deploy".into()]),
                    verbs: vec!["list".into()],
                    ..Default::default()
                },
                APIResource {
                    name: "deployments/scale".into(),
                    kind: "Scale".into(),
                    namespaced: true,
                    ..Default::default()
                },
            ],
        };
        let kinds = kinds_of(&list);
        assert_eq!(kinds.len(), 1);
        for name in ["Deployment", "deployments", "deploy", "DEPLOY"] {
            assert!(kinds[0].matches(name), "{name}");
        }
        assert_eq!(kinds[0].resource.group, "apps");
        assert_eq!(kinds[0].display_name(), "deployments.apps");
    }
}
