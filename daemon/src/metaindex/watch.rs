//! One metadata index: the names, uids, resourceVersions and labels of the
//! objects of one kind that a label (and field) selector picks, listed as
//! `PartialObjectMetadataList` and kept current by a metadata watch. No
//! object content is ever read.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use kube::{
    api::{ListParams, WatchParams},
    core::WatchEvent,
};
use serde_json::Value;

use super::IndexScope;
use crate::{
    pool::Protocol,
    watching::{Follower, Life, Setback, Timing, next_event, run, setback, timing},
};

/// Accept header of a metadata-only list.
const LIST_ACCEPT: &str = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";

/// Accept header of a metadata-only watch.
const WATCH_ACCEPT: &str = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io";

/// How long a resumed watch may take to start before the index stops
/// answering.
const RESUME_GRACE: Duration = Duration::from_secs(1);

/// Bytes counted per object beside its strings (map and struct overhead).
const ITEM_OVERHEAD: usize = 96;

/// One object as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaItem {
    /// Namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid.
    pub uid: String,
    /// resourceVersion (changes with every write of the object).
    pub resource_version: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl MetaItem {
    /// From an object's (or a PartialObjectMetadata's) JSON; `None`
    /// without a name.
    pub fn of(object: &Value) -> Option<Self> {
        let meta = object.get("metadata")?;
        let text = |k: &str| {
            meta.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let name = meta.get("name")?.as_str()?.to_string();
        let labels = meta
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            namespace: text("namespace"),
            name,
            uid: text("uid"),
            resource_version: text("resourceVersion"),
            labels,
        })
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn bytes(&self) -> usize {
        ITEM_OVERHEAD
            + self.namespace.len()
            + self.name.len()
            + self.uid.len()
            + self.resource_version.len()
            + self
                .labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 16)
                .sum::<usize>()
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    items: BTreeMap<String, MetaItem>,
    resource_version: String,
    bytes: usize,
}

/// Objects and bytes held, shared by a cluster's indexes or by all.
#[derive(Debug, Default)]
pub struct Usage {
    /// Bytes (estimated from the strings held).
    pub bytes: AtomicUsize,
    /// Objects.
    pub objects: AtomicUsize,
}

/// Caps an index stays within (the `[cache]` ones).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Objects in one index.
    pub max_objects: usize,
    /// Bytes of one cluster's indexes.
    pub max_cluster_bytes: usize,
    /// Bytes of all indexes.
    pub max_total_bytes: usize,
    /// The cluster's request deadline: watches end a second before it.
    pub request_timeout: Duration,
}

/// One metadata watch and its index.
#[derive(Debug)]
pub struct MetaWatch {
    /// What it watches.
    pub scope: IndexScope,
    /// Cluster name.
    pub cluster: String,
    state: RwLock<Snapshot>,
    /// Whether it answers, its errors, use and task.
    pub life: Life,
    cluster_usage: Arc<Usage>,
    total_usage: Arc<Usage>,
    limits: Limits,
}

impl MetaWatch {
    /// An index not yet started.
    pub fn new(
        scope: IndexScope,
        cluster: String,
        limits: Limits,
        cluster_usage: Arc<Usage>,
        total_usage: Arc<Usage>,
    ) -> Self {
        Self {
            scope,
            cluster,
            state: RwLock::new(Snapshot::default()),
            life: Life::default(),
            cluster_usage,
            total_usage,
            limits,
        }
    }

    /// Starts listing and watching with `client`, whose answers' HTTP
    /// version `protocol` records.
    pub fn start(self: &Arc<Self>, client: kube::Client, protocol: Arc<Protocol>) {
        self.life
            .spawn(run(self.clone(), client, move || protocol.is_h2()));
    }

    /// Stops the watch and releases its memory.
    pub fn stop(&self) {
        self.life.abort();
        let mut state = self.state.write().expect("index lock poisoned");
        // Releasing memory never passes a cap.
        let _ = self.account(&state, 0, 0);
        *state = Snapshot::default();
    }

    /// Objects and bytes it holds.
    pub fn size(&self) -> (usize, usize) {
        let state = self.state.read().expect("index lock poisoned");
        (state.items.len(), state.bytes)
    }

    /// The objects held (only meaningful while [`MetaWatch::in_sync`]),
    /// in namespace/name order, those of `namespace` only when given.
    pub fn items(&self, namespace: Option<&str>) -> Vec<MetaItem> {
        let state = self.state.read().expect("index lock poisoned");
        match namespace {
            None => state.items.values().cloned().collect(),
            Some(ns) => {
                let from = format!("{ns}/");
                state
                    .items
                    .range(from.clone()..)
                    .take_while(|(k, _)| k.starts_with(&from))
                    .map(|(_, v)| v.clone())
                    .collect()
            }
        }
    }

    /// Applies one event's object; returns its resource version.
    fn apply(&self, object: &Value, deleted: bool) -> Result<Option<String>, String> {
        let Some(item) = MetaItem::of(object) else {
            return Ok(None);
        };
        let rv = Some(item.resource_version.clone()).filter(|v| !v.is_empty());
        let mut state = self.state.write().expect("index lock poisoned");
        let (mut count, mut bytes) = (state.items.len(), state.bytes);
        let key = item.key();
        if let Some(old) = state.items.get(&key) {
            count -= 1;
            bytes -= old.bytes();
        }
        if !deleted {
            count += 1;
            bytes += item.bytes();
        }
        if count > self.limits.max_objects {
            return Err(format!(
                "more than {} objects (cache.max_objects)",
                self.limits.max_objects
            ));
        }
        self.account(&state, count, bytes)?;
        if deleted {
            state.items.remove(&key);
        } else {
            state.items.insert(key, item);
        }
        state.bytes = bytes;
        if let Some(rv) = &rv {
            state.resource_version = rv.clone();
        }
        Ok(rv)
    }

    /// Moves the shared usage from what `state` holds to `count` objects
    /// of `bytes`; when that passes a cap, moves nothing and says which.
    fn account(&self, state: &Snapshot, count: usize, bytes: usize) -> Result<(), String> {
        let shared = [&self.cluster_usage, &self.total_usage];
        let grows = bytes.saturating_sub(state.bytes);
        let caps = [
            (
                self.limits.max_cluster_bytes,
                "the cluster's metadata indexes",
                "cache.max_cluster_bytes",
            ),
            (
                self.limits.max_total_bytes,
                "all metadata indexes",
                "cache.max_bytes",
            ),
        ];
        for (usage, (cap, what, key)) in shared.iter().zip(caps) {
            if grows > 0 && usage.bytes.load(Ordering::SeqCst) + grows > cap {
                return Err(format!("{what} would pass {cap} bytes ({key})"));
            }
        }
        for usage in shared {
            shift(&usage.objects, state.items.len(), count);
            shift(&usage.bytes, state.bytes, bytes);
        }
        Ok(())
    }
}

/// Moves `u` by `new - old`.
fn shift(u: &AtomicUsize, old: usize, new: usize) {
    if new >= old {
        u.fetch_add(new - old, Ordering::SeqCst);
    } else {
        u.fetch_sub(old - new, Ordering::SeqCst);
    }
}

fn accept(mut request: http::Request<Vec<u8>>, accept: &'static str) -> http::Request<Vec<u8>> {
    request
        .headers_mut()
        .insert(http::header::ACCEPT, http::HeaderValue::from_static(accept));
    request
}

impl Follower for MetaWatch {
    fn cluster(&self) -> &str {
        &self.cluster
    }

    fn label(&self) -> String {
        self.scope.label()
    }

    /// Lists the scope's metadata; returns the resource version to watch
    /// from.
    async fn relist(&self, client: &kube::Client) -> Result<String, Setback> {
        self.life.set_in_sync(false);
        let params = ListParams {
            label_selector: self.scope.labels.clone(),
            field_selector: self.scope.fields.clone(),
            limit: Some(self.limits.max_objects as u32 + 1),
            ..ListParams::default()
        };
        let request = kube::core::Request::new(self.scope.url())
            .list(&params)
            .map_err(|e| Setback::Retry(e.to_string()))?;
        let list: Value = tokio::time::timeout(
            self.limits.request_timeout,
            client.request::<Value>(accept(request, LIST_ACCEPT)),
        )
        .await
        .map_err(|_| {
            Setback::Retry(format!(
                "list timed out after {:?}",
                self.limits.request_timeout
            ))
        })?
        .map_err(setback)?;
        if list["kind"] != "PartialObjectMetadataList" {
            return Err(Setback::Refuse(format!(
                "the API server answered a {} to a metadata list",
                list["kind"]
            )));
        }
        let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let more = list
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty());
        if more || items.len() > self.limits.max_objects {
            return Err(Setback::Refuse(format!(
                "more than {} objects (cache.max_objects)",
                self.limits.max_objects
            )));
        }
        let mut fresh = Snapshot::default();
        for item in items.iter().filter_map(MetaItem::of) {
            fresh.bytes += item.bytes();
            fresh.items.insert(item.key(), item);
        }
        fresh.resource_version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let rv = fresh.resource_version.clone();
        let mut state = self.state.write().expect("index lock poisoned");
        self.account(&state, fresh.items.len(), fresh.bytes)
            .map_err(Setback::Refuse)?;
        *state = fresh;
        Ok(rv)
    }

    /// Watches from `rv` until the server ends the watch. `Ok(Some(rv))`
    /// continues from `rv`; `Ok(None)` asks for a relist.
    async fn follow(
        &self,
        client: &kube::Client,
        rv: String,
        h2: bool,
    ) -> Result<Option<String>, Setback> {
        let Timing { seconds, silence } = timing(
            h2,
            self.limits.request_timeout,
            (&self.cluster, self.scope.label()),
        );
        let mut params = WatchParams::default().timeout(seconds);
        if let Some(labels) = &self.scope.labels {
            params = params.labels(labels);
        }
        if let Some(fields) = &self.scope.fields {
            params = params.fields(fields);
        }
        let request = kube::core::Request::new(self.scope.url())
            .watch(&params, &rv)
            .map_err(|e| Setback::Retry(e.to_string()))?;
        // Resuming after the server ended a watch keeps the index in sync
        // (no event is lost from `rv` on) unless the new watch is slow to
        // start: then it is out of sync until it does.
        let starting = client.request_events::<Value>(accept(request, WATCH_ACCEPT));
        let mut starting = std::pin::pin!(starting);
        let started = match tokio::time::timeout(RESUME_GRACE, &mut starting).await {
            Ok(started) => started,
            Err(_) => {
                self.life.set_in_sync(false);
                tokio::time::timeout(
                    self.limits.request_timeout.saturating_sub(RESUME_GRACE),
                    starting,
                )
                .await
                .map_err(|_| {
                    Setback::Retry(format!(
                        "watch did not start within {:?}",
                        self.limits.request_timeout
                    ))
                })?
            }
        };
        let events = match started {
            Ok(events) => events,
            Err(kube::Error::Api(status)) if status.code == 410 => return Ok(None),
            Err(e) => return Err(setback(e)),
        };
        self.life.set_in_sync(true);
        let mut events = std::pin::pin!(events);
        let mut last = rv;
        while let Some(event) = next_event(&self.life, &mut events, silence).await? {
            let (object, deleted) = match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => (o, false),
                WatchEvent::Deleted(o) => (o, true),
                WatchEvent::Bookmark(b) => {
                    last = b.metadata.resource_version;
                    self.state
                        .write()
                        .expect("index lock poisoned")
                        .resource_version = last.clone();
                    continue;
                }
                WatchEvent::Error(status) if status.code == 410 => {
                    self.life.set_in_sync(false);
                    return Ok(None);
                }
                WatchEvent::Error(status) => {
                    self.life.set_in_sync(false);
                    return Err(Setback::Retry(format!(
                        "watch error {}: {}",
                        status.code, status.message
                    )));
                }
            };
            if let Some(rv) = self.apply(&object, deleted).map_err(|e| {
                self.life.set_in_sync(false);
                Setback::Refuse(e)
            })? {
                last = rv;
            }
        }
        // The server ended the watch (its timeout): the next one resumes
        // from `last` at once (see above).
        Ok(Some(last))
    }

    fn resource_version(&self) -> String {
        self.state
            .read()
            .expect("index lock poisoned")
            .resource_version
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index(max_objects: usize, max_bytes: usize) -> MetaWatch {
        let scope = IndexScope {
            resource: kube::discovery::ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "Secret".into(),
                plural: "secrets".into(),
            },
            labels: Some("owner=helm".into()),
            fields: None,
            purpose: "helm-releases",
        };
        let limits = Limits {
            max_objects,
            max_cluster_bytes: max_bytes,
            max_total_bytes: max_bytes,
            request_timeout: Duration::from_secs(5),
        };
        MetaWatch::new(
            scope,
            "test-cluster".into(),
            limits,
            Arc::default(),
            Arc::default(),
        )
    }

    fn object(ns: &str, name: &str, rv: &str, status: &str) -> Value {
        json!({"kind": "PartialObjectMetadata", "metadata": {
            "namespace": ns, "name": name, "uid": format!("uid-{ns}-{name}"),
            "resourceVersion": rv,
            "labels": {"owner": "helm", "name": name, "status": status, "version": "1"}}})
    }

    #[test]
    fn items_come_from_metadata_only() {
        let item = MetaItem::of(&object("a", "web", "7", "deployed")).unwrap();
        assert_eq!(item.namespace, "a");
        assert_eq!(item.uid, "uid-a-web");
        assert_eq!(item.resource_version, "7");
        assert_eq!(item.labels["status"], "deployed");
        assert_eq!(MetaItem::of(&json!({"metadata": {"namespace": "a"}})), None);
    }

    #[test]
    fn events_add_modify_and_delete_with_accounting() {
        let w = index(10, 1 << 20);
        assert_eq!(
            w.apply(&object("a", "web", "1", "deployed"), false),
            Ok(Some("1".into()))
        );
        w.apply(&object("b", "web", "2", "deployed"), false)
            .unwrap();
        w.apply(&object("a", "web", "3", "superseded"), false)
            .unwrap();
        let (count, bytes) = w.size();
        assert_eq!(count, 2);
        assert_eq!(w.cluster_usage.objects.load(Ordering::SeqCst), 2);
        assert_eq!(w.total_usage.bytes.load(Ordering::SeqCst), bytes);
        let a = w.items(Some("a"));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].labels["status"], "superseded");
        assert_eq!(a[0].resource_version, "3");
        // A namespace that is a prefix of another is not mixed with it.
        w.apply(&object("ab", "x", "4", "deployed"), false).unwrap();
        assert_eq!(w.items(Some("a")).len(), 1);
        assert_eq!(w.items(None).len(), 3);
        w.apply(&object("a", "web", "5", "superseded"), true)
            .unwrap();
        assert_eq!(w.items(Some("a")), vec![]);
        assert_eq!(w.state.read().unwrap().resource_version, "5");
        w.stop();
        assert_eq!(w.size(), (0, 0));
        assert_eq!(w.cluster_usage.objects.load(Ordering::SeqCst), 0);
        assert_eq!(w.total_usage.bytes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn caps_refuse_without_changing_the_index() {
        let w = index(1, 1 << 20);
        w.apply(&object("a", "web", "1", "deployed"), false)
            .unwrap();
        let err = w
            .apply(&object("a", "db", "2", "deployed"), false)
            .unwrap_err();
        assert!(err.contains("cache.max_objects"), "{err}");
        assert_eq!(w.size().0, 1);
        let small = index(10, 100);
        let err = small
            .apply(&object("a", "web", "1", "deployed"), false)
            .unwrap_err();
        assert!(err.contains("cache.max_cluster_bytes"), "{err}");
        assert_eq!(small.size(), (0, 0));
        assert_eq!(small.total_usage.bytes.load(Ordering::SeqCst), 0);
    }
}
