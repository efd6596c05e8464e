//! Reading Helm's release storage on one cluster, without a helm binary:
//! an index of the release records from their labels only (metadata lists
//! of Secrets of type `helm.sh/release.v1` and ConfigMaps, both labelled
//! `owner=helm`), then the few records an answer needs, decoded. Secret
//! data never leaves this module except as a decoded [`Release`].

use base64::Engine;
use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use super::release::{self, Release};
use crate::{
    error::OpError,
    metaindex::{IndexScope, Lookup, MetaIndexes, MetaItem},
    ops::{OpOptions, ResolvedKind, call::Call, core_kind},
    pool::ClusterClient,
    request::{
        names::{Namespace, ObjectName, ReleaseName},
        path,
    },
    safety::Action,
};

/// Records fetched at once on one cluster.
const FETCH_CONCURRENCY: usize = 8;

/// Most revisions one history reads (Helm's own `--max` default).
pub const MAX_HISTORY: usize = 256;

/// Accept header of a metadata-only list (labels, no data).
const METADATA_ACCEPT: &str =
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json";

/// Where Helm keeps a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// A Secret of type `helm.sh/release.v1` (Helm's default).
    Secret,
    /// A ConfigMap (`HELM_DRIVER=configmap`).
    ConfigMap,
}

impl Driver {
    fn kind(self) -> &'static str {
        match self {
            Driver::Secret => "Secret",
            Driver::ConfigMap => "ConfigMap",
        }
    }
}

/// One release record, as its labels describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Namespace of the record (= the release's).
    pub namespace: String,
    /// The Secret's or ConfigMap's name.
    pub object: String,
    /// Release name (label `name`).
    pub release: String,
    /// Revision (label `version`).
    pub revision: i64,
    /// Status (label `status`).
    pub status: String,
    /// Storage driver.
    pub driver: Driver,
    /// The object's uid and resourceVersion (its content's version).
    pub version: (String, String),
}

/// A reader of one cluster's releases, within one deadline.
pub struct Reader<'a> {
    cc: &'a ClusterClient,
    opts: &'a OpOptions,
    started: Instant,
}

impl<'a> Reader<'a> {
    /// A reader whose calls share one deadline from now.
    pub fn new(cc: &'a ClusterClient, opts: &'a OpOptions) -> Self {
        Self {
            cc,
            opts,
            started: Instant::now(),
        }
    }

    async fn kind(&self, driver: Driver) -> Result<ResolvedKind, OpError> {
        let kind = core_kind(self.cc, driver.kind(), self.opts.timeout).await?;
        Ok(kind)
    }

    /// Every record in `namespace` (all when `None`), of release `name`
    /// when given, from both drivers.
    pub async fn index(
        &self,
        namespace: Option<&Namespace>,
        name: Option<&ReleaseName>,
    ) -> Result<Vec<Stored>, OpError> {
        let (mut all, configmaps) = futures::try_join!(
            self.index_of(Driver::Secret, namespace, name),
            self.index_of(Driver::ConfigMap, namespace, name)
        )?;
        all.extend(configmaps);
        Ok(all)
    }

    /// [`Reader::index`] from the cluster's in-sync metadata indexes of
    /// the release records; `None` (counted as a cache miss, and the
    /// indexes started for the next call) when they cannot answer.
    pub async fn index_from_memory(
        &self,
        indexes: &MetaIndexes,
        namespace: Option<&Namespace>,
        name: Option<&ReleaseName>,
    ) -> Result<Option<Vec<Stored>>, OpError> {
        if !indexes.enabled() {
            return Ok(None);
        }
        let mut all = Vec::new();
        let mut missed = None;
        for driver in [Driver::Secret, Driver::ConfigMap] {
            let kind = self.kind(driver).await?;
            let what = format!("list helm release records ({})", kind.resource.plural);
            self.opts.allow(self.cc, &kind, Action::List, None, &what)?;
            // Every driver's index is looked up (and so started) even
            // after a miss, so both are ready for the next call.
            match indexes.lookup(self.cc, &index_scope(driver, &kind)) {
                Lookup::Hit(index) => all.extend(
                    index
                        .items(namespace.map(Namespace::as_str))
                        .iter()
                        .filter(|item| {
                            name.is_none_or(|n| {
                                item.labels.get("name").map(String::as_str) == Some(n.as_str())
                            })
                        })
                        .filter_map(|item| stored_of(item, driver)),
                ),
                Lookup::Miss(reason) => missed = missed.or(Some(reason)),
            }
        }
        if let Some(reason) = missed {
            crate::metrics::cache_miss(&self.cc.name, INDEX_PURPOSE, reason);
            return Ok(None);
        }
        crate::metrics::cache_hit(&self.cc.name, INDEX_PURPOSE);
        Ok(Some(all))
    }

    async fn index_of(
        &self,
        driver: Driver,
        namespace: Option<&Namespace>,
        name: Option<&ReleaseName>,
    ) -> Result<Vec<Stored>, OpError> {
        let kind = self.kind(driver).await?;
        let what = format!("list helm release records ({})", kind.resource.plural);
        self.opts.allow(self.cc, &kind, Action::List, None, &what)?;
        // Release names are label values by their own rule.
        let labels = match name {
            Some(n) => format!("owner=helm,name={n}"),
            None => "owner=helm".to_string(),
        };
        let params = kube::api::ListParams {
            label_selector: Some(labels),
            field_selector: (driver == Driver::Secret).then(|| "type=helm.sh/release.v1".into()),
            ..Default::default()
        };
        let resource = match namespace {
            Some(ns) => format!("helm release {} in namespace {ns}", kind.resource.plural),
            None => format!("helm release {}", kind.resource.plural),
        };
        let call = Call::new(self.cc, "list", resource, self.opts).since(self.started);
        let mut request = kube::core::Request::new(path::collection(&kind.resource, namespace))
            .list(&params)
            .map_err(|e| OpError::InvalidArgument(format!("cannot build the list request: {e}")))?;
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(METADATA_ACCEPT),
        );
        let body = call.json(request).await?;
        let got = body.get("kind").and_then(Value::as_str).unwrap_or("");
        let full_list = format!("{}List", kind.resource.kind);
        if got != "PartialObjectMetadataList" && got != full_list {
            return Err(OpError::UnexpectedAnswer {
                cluster: self.cc.name.clone(),
                what: call.resource().to_string(),
                expected: format!("a PartialObjectMetadataList or {full_list}"),
                got: format!("{got:?}"),
            });
        }
        let items = body["items"].as_array().cloned().unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|item| stored(item, driver))
            .collect())
    }

    /// Decodes one record.
    pub async fn fetch(&self, s: &Stored) -> Result<Release, OpError> {
        let kind = self.kind(s.driver).await?;
        let what = format!("read helm release {}/{}", s.namespace, s.release);
        self.opts.allow(self.cc, &kind, Action::Get, None, &what)?;
        let ns = Namespace::parse("namespace", &s.namespace)?;
        let object = ObjectName::parse("name", &s.object)?;
        let resource = format!(
            "helm release {} revision {} ({} {}/{})",
            s.release, s.revision, kind.resource.kind, s.namespace, s.object
        );
        let call = Call::new(self.cc, "get", resource, self.opts).since(self.started);
        let request = http::Request::get(path::object(&kind.resource, Some(&ns), &object))
            .body(Vec::new())
            .map_err(|e| OpError::InvalidArgument(format!("cannot build the get request: {e}")))?;
        let body = call.json(request).await?;
        let field = body.pointer("/data/release").and_then(Value::as_str);
        let bad = |why: String| OpError::Other {
            cluster: self.cc.name.clone(),
            message: format!(
                "{}: {why}; Helm cannot read this record either: inspect it with `kubectl get {} {} -n {}` or remove the broken revision",
                call.resource(),
                kind.resource.plural,
                s.object,
                s.namespace
            ),
        };
        let Some(field) = field else {
            return Err(bad("it has no data.release".into()));
        };
        let stored = match s.driver {
            // The API's own base64 around Helm's.
            Driver::Secret => {
                if field.len() > release::MAX_STORED_BYTES * 4 / 3 + 4 {
                    return Err(bad(release::ReleaseError::StoredTooLarge(
                        field.len() * 3 / 4,
                    )
                    .to_string()));
                }
                base64::engine::general_purpose::STANDARD
                    .decode(field)
                    .map_err(|e| bad(format!("data.release is not base64 ({e})")))?
            }
            Driver::ConfigMap => field.as_bytes().to_vec(),
        };
        release::decode(&stored).map_err(|e| bad(e.to_string()))
    }

    /// Decodes `records` (at most [`FETCH_CONCURRENCY`] at once), in order;
    /// the first failure fails them all.
    pub async fn fetch_all(&self, records: &[Stored]) -> Result<Vec<Release>, OpError> {
        self.fetch_each(records).await.into_iter().collect()
    }

    /// Decodes `records` (at most [`FETCH_CONCURRENCY`] at once), in order,
    /// each with its own outcome.
    pub async fn fetch_each(&self, records: &[Stored]) -> Vec<Result<Release, OpError>> {
        // Owned records: a closure over borrowed ones is not `Send` enough
        // for the gRPC handlers' futures.
        futures::stream::iter(
            records
                .iter()
                .cloned()
                .map(|s| async move { self.fetch(&s).await }),
        )
        .buffered(FETCH_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
    }

    /// The records of release `name` in `namespace`, oldest first; an error
    /// that says so when there are none.
    pub async fn revisions(
        &self,
        namespace: &Namespace,
        name: &ReleaseName,
    ) -> Result<Vec<Stored>, OpError> {
        let mut records = self.index(Some(namespace), Some(name)).await?;
        if records.is_empty() {
            return Err(OpError::Api(Box::new(crate::error::ApiFailure {
                cluster: self.cc.name.clone(),
                verb: "get".into(),
                resource: format!("helm release {name} in namespace {namespace}"),
                code: 404,
                reason: "NotFound".into(),
                message: "release: not found".into(),
                hint: "list releases with helm_list (all namespaces unless one is named)".into(),
            })));
        }
        records.sort_by_key(|r| r.revision);
        Ok(records)
    }

    /// One revision of a release (the latest when `revision` is `None`).
    pub async fn release(
        &self,
        namespace: &Namespace,
        name: &ReleaseName,
        revision: Option<i64>,
    ) -> Result<Release, OpError> {
        let records = self.revisions(namespace, name).await?;
        let record = match revision {
            None => records.last(),
            Some(v) => records.iter().find(|r| r.revision == v),
        };
        let Some(record) = record else {
            let known: Vec<String> = records.iter().map(|r| r.revision.to_string()).collect();
            return Err(OpError::InvalidArgument(format!(
                "cluster {}: release {name} in namespace {namespace} has no revision {}; its revisions: {}",
                self.cc.name,
                revision.unwrap_or_default(),
                known.join(", ")
            )));
        };
        self.fetch(record).await
    }
}

/// What the release record indexes are called in metrics and statistics.
pub const INDEX_PURPOSE: &str = "helm-releases";

/// The metadata index of `driver`'s release records (every namespace).
fn index_scope(driver: Driver, kind: &ResolvedKind) -> IndexScope {
    IndexScope {
        resource: kind.resource.clone(),
        labels: Some("owner=helm".into()),
        fields: (driver == Driver::Secret).then(|| "type=helm.sh/release.v1".into()),
        purpose: INDEX_PURPOSE,
    }
}

/// A record from an index's item; `None` for an object whose labels are
/// not a release record's.
fn stored_of(item: &MetaItem, driver: Driver) -> Option<Stored> {
    let label = |k: &str| item.labels.get(k).cloned();
    Some(Stored {
        namespace: item.namespace.clone(),
        object: item.name.clone(),
        release: label("name")?,
        revision: label("version")?.parse().ok()?,
        status: label("status").unwrap_or_default(),
        driver,
        version: (item.uid.clone(), item.resource_version.clone()),
    })
}

/// A record from one item of a metadata list; `None` for an object whose
/// labels are not a release record's.
fn stored(item: &Value, driver: Driver) -> Option<Stored> {
    item.pointer("/metadata/namespace")?;
    stored_of(&MetaItem::of(item)?, driver)
}

/// The newest record of each release (by namespace and name).
pub fn latest(records: Vec<Stored>) -> Vec<Stored> {
    let mut by_release: std::collections::BTreeMap<(String, String), Stored> = Default::default();
    for r in records {
        let key = (r.namespace.clone(), r.release.clone());
        match by_release.get(&key) {
            Some(have) if have.revision >= r.revision => {}
            _ => {
                by_release.insert(key, r);
            }
        }
    }
    by_release.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(ns: &str, name: &str, v: i64, status: &str) -> Stored {
        Stored {
            namespace: ns.into(),
            object: format!("sh.helm.release.v1.{name}.v{v}"),
            release: name.into(),
            revision: v,
            status: status.into(),
            driver: Driver::Secret,
            version: Default::default(),
        }
    }

    #[test]
    fn latest_keeps_the_newest_revision_of_each_release() {
        let got = latest(vec![
            rec("a", "web", 1, "superseded"),
            rec("a", "web", 10, "deployed"),
            rec("a", "web", 9, "superseded"),
            rec("b", "web", 1, "failed"),
        ]);
        assert_eq!(
            got,
            vec![
                rec("a", "web", 10, "deployed"),
                rec("b", "web", 1, "failed")
            ]
        );
    }

    #[test]
    fn index_items_carry_the_record_version() {
        let item = MetaItem::of(&json!({"metadata": {"name": "sh.helm.release.v1.web.v3",
            "namespace": "a", "uid": "u-1", "resourceVersion": "42",
            "labels": {"owner": "helm", "name": "web", "version": "3", "status": "failed"}}}))
        .unwrap();
        let got = stored_of(&item, Driver::ConfigMap).unwrap();
        assert_eq!(got.version, ("u-1".to_string(), "42".to_string()));
        assert_eq!((got.revision, got.status.as_str()), (3, "failed"));
        assert_eq!(got.driver, Driver::ConfigMap);
        let mut bad = item.clone();
        bad.labels.insert("version".into(), "three".into());
        assert_eq!(stored_of(&bad, Driver::Secret), None);
    }

    #[test]
    fn records_come_from_labels_only() {
        let item = json!({"metadata": {"name": "sh.helm.release.v1.web.v2", "namespace": "a",
            "labels": {"owner": "helm", "name": "web", "version": "2", "status": "deployed"}}});
        assert_eq!(
            stored(&item, Driver::Secret),
            Some(rec("a", "web", 2, "deployed"))
        );
        let no_version = json!({"metadata": {"name": "x", "namespace": "a",
            "labels": {"owner": "helm", "name": "web"}}});
        assert_eq!(stored(&no_version, Driver::Secret), None);
    }
}
