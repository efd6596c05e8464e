//! One watch cache: the API server's own table rows (cells plus the full
//! object) of one kind in one scope, listed once and kept current by a
//! watch in the same Table format, so cached answers render exactly like
//! live ones.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use kube::{
    api::{ListParams, WatchParams},
    core::WatchEvent,
};
use serde_json::Value;

use super::{Scope, packed::Packed};
use crate::{
    pool::Protocol,
    request::table::{RowObject, TABLE_ONLY, include_object},
    safety::{Masking, clean_object},
    watching::{Follower, Life, Setback, Timing, next_event, run, setback, timing},
};

/// One cached object. The whole object is kept as deflated compact JSON
/// ([`Packed`]; a `serde_json::Value` costs five times the text), inflated
/// and parsed only when objects are asked for; tables read the cells,
/// selectors the few fields kept apart, ages the creation time.
#[derive(Debug, Clone)]
pub struct CachedRow {
    /// The server's table cells.
    pub cells: Vec<Value>,
    /// The fields selectors read ([`super::select::selectable`]), as
    /// compact JSON (a small map as a `Value` costs kilobytes), parsed
    /// only when a selector asks.
    fields: Box<str>,
    /// Its resourceVersion.
    pub resource_version: Box<str>,
    /// When the object was created (its age, without parsing per call).
    pub created: Option<SystemTime>,
    /// The object, cleaned (managedFields gone, Secret values masked
    /// unless revealing is configured), as compact JSON, deflated.
    object: Packed,
    bytes: usize,
}

impl CachedRow {
    /// The whole object (parsed from its compact JSON).
    pub fn object(&self) -> Value {
        serde_json::from_str(&self.object.text()).unwrap_or(Value::Null)
    }

    /// The fields selectors read (parsed from their compact JSON).
    pub fn fields(&self) -> Value {
        serde_json::from_str(&self.fields).unwrap_or(Value::Null)
    }
}

/// The cached state of one scope.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The table's column definitions.
    pub columns: Value,
    /// Rows keyed like the server's storage (`namespace/name`), so
    /// iteration order is the server's list order.
    pub rows: BTreeMap<String, CachedRow>,
    /// Resource version of the last event applied.
    pub resource_version: String,
}

/// Memory accounting shared by every watch (total) and by one cluster.
#[derive(Debug, Default)]
pub struct Usage {
    /// Bytes (serialized size of the cached rows).
    pub bytes: AtomicUsize,
    /// Objects.
    pub objects: AtomicUsize,
}

/// Caps a watch must stay within.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Objects in one scope.
    pub max_objects: usize,
    /// Bytes of one cluster's caches.
    pub max_cluster_bytes: usize,
    /// Bytes of all caches.
    pub max_total_bytes: usize,
    /// What cached objects hide (masked when cached).
    pub masking: Masking,
    /// The cluster's request deadline: watches end a second before it,
    /// and a silent server is noticed within it.
    pub request_timeout: Duration,
    /// Lists in flight across the daemon: a list of full objects is parsed
    /// whole before it is cached, so a fleet starting its caches at once
    /// would hold every cluster's parsed list at the same time.
    pub relists: Arc<tokio::sync::Semaphore>,
}

/// One watch and its cache.
#[derive(Debug)]
pub struct Watch {
    /// What it watches.
    pub scope: Scope,
    /// Cluster name.
    pub cluster: String,
    state: RwLock<Snapshot>,
    /// Whether it answers, its errors, use and task.
    pub life: Life,
    own: Usage,
    cluster_usage: Arc<Usage>,
    total_usage: Arc<Usage>,
    limits: Limits,
}

impl Watch {
    /// A watch not yet started.
    pub fn new(
        scope: Scope,
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
            own: Usage::default(),
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
        let mut state = self.state.write().expect("watch lock poisoned");
        state.rows.clear();
        // Releasing memory never passes a cap.
        let _ = self.charge(-(self.own.bytes.load(Ordering::SeqCst) as isize));
        self.recount(0);
    }

    /// Objects and bytes it holds.
    pub fn size(&self) -> (usize, usize) {
        (
            self.own.objects.load(Ordering::Relaxed),
            self.own.bytes.load(Ordering::Relaxed),
        )
    }

    /// Reads the snapshot (only meaningful while [`Watch::in_sync`]).
    pub fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.state.read().expect("watch lock poisoned"))
    }

    /// Applies one watch event's table; returns its resource version.
    fn apply(&self, table: &Value, deleted: bool) -> Result<Option<String>, String> {
        let mut rv = table
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let rows = table["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut state = self.state.write().expect("watch lock poisoned");
        for row in rows {
            let Some((key, fresh)) = self.cached_row(row) else {
                continue;
            };
            if !fresh.resource_version.is_empty() {
                rv = Some(fresh.resource_version.to_string());
            }
            let old = if deleted {
                state.rows.remove(&key)
            } else {
                let bytes = fresh.bytes as isize;
                let old = state.rows.insert(key, fresh);
                let delta = bytes - old.as_ref().map_or(0, |o| o.bytes as isize);
                self.charge(delta)?;
                old
            };
            if deleted && let Some(old) = &old {
                self.charge(-(old.bytes as isize))?;
            }
        }
        if let Some(rv) = &rv {
            state.resource_version = rv.clone();
        }
        let count = state.rows.len();
        drop(state);
        self.recount(count);
        Ok(rv)
    }

    /// A table row as cached: cleaned object, its storage key, its size.
    fn cached_row(&self, row: &Value) -> Option<(String, CachedRow)> {
        let mut object = row.get("object")?.clone();
        clean_object(
            &mut object,
            &self.limits.masking,
            &self.scope.resource.plural,
        );
        let name = object.pointer("/metadata/name")?.as_str()?.to_string();
        let key = match object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        {
            Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
            _ => name,
        };
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        let packed = Packed::new(&serde_json::to_string(&object).ok()?);
        let fields = super::select::selectable(&object).to_string();
        let bytes =
            packed.bytes() + fields.len() + serde_json::to_vec(&cells).map_or(0, |v| v.len());
        let created = object
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
        Some((
            key,
            CachedRow {
                cells,
                created,
                resource_version: object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
                fields: fields.into_boxed_str(),
                object: packed,
                bytes,
            },
        ))
    }

    /// Adds `delta` bytes to this watch, its cluster and the total; fails
    /// (without undoing) when a cap is passed. The metrics follow at the
    /// [`Watch::recount`] every change ends with.
    fn charge(&self, delta: isize) -> Result<(), String> {
        let apply = |u: &AtomicUsize| {
            if delta >= 0 {
                u.fetch_add(delta as usize, Ordering::SeqCst) + delta as usize
            } else {
                u.fetch_sub(delta.unsigned_abs(), Ordering::SeqCst) - delta.unsigned_abs()
            }
        };
        apply(&self.own.bytes);
        let cluster = apply(&self.cluster_usage.bytes);
        let total = apply(&self.total_usage.bytes);
        if delta > 0 && cluster > self.limits.max_cluster_bytes {
            return Err(format!(
                "cluster caches would pass {} bytes (cache.max_cluster_bytes)",
                self.limits.max_cluster_bytes
            ));
        }
        if delta > 0 && total > self.limits.max_total_bytes {
            return Err(format!(
                "all caches would pass {} bytes (cache.max_bytes)",
                self.limits.max_total_bytes
            ));
        }
        Ok(())
    }

    /// Records that it now holds `count` objects.
    fn recount(&self, count: usize) {
        let old = self.own.objects.swap(count, Ordering::SeqCst);
        for usage in [&self.cluster_usage, &self.total_usage] {
            if count >= old {
                usage.objects.fetch_add(count - old, Ordering::SeqCst);
            } else {
                usage.objects.fetch_sub(old - count, Ordering::SeqCst);
            }
        }
        crate::metrics::cache_usage(
            &self.cluster,
            self.cluster_usage.objects.load(Ordering::Relaxed),
            self.cluster_usage.bytes.load(Ordering::Relaxed),
        );
    }

    fn url(&self) -> String {
        crate::request::path::collection(&self.scope.resource, self.scope.namespace.as_ref())
    }
}

/// Asks for the server's table with full objects in each row.
fn as_table(mut request: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    include_object(&mut request, RowObject::Object);
    request.headers_mut().insert(
        http::header::ACCEPT,
        // Tables only: a kind the server cannot print as a table is not cached.
        http::HeaderValue::from_static(TABLE_ONLY),
    );
    request
}

impl Follower for Watch {
    fn cluster(&self) -> &str {
        &self.cluster
    }

    fn label(&self) -> String {
        self.scope.resource_label()
    }

    /// Lists the scope as a table; returns the resource version to watch
    /// from.
    async fn relist(&self, client: &kube::Client) -> Result<String, Setback> {
        self.life.set_in_sync(false);
        let _turn = self
            .limits
            .relists
            .acquire()
            .await
            .map_err(|e| Setback::Retry(e.to_string()))?;
        let params = ListParams {
            limit: Some(self.limits.max_objects as u32 + 1),
            ..ListParams::default()
        };
        let request = kube::core::Request::new(self.url())
            .list(&params)
            .map_err(|e| Setback::Retry(e.to_string()))?;
        let request = as_table(request);
        let table: Value = tokio::time::timeout(
            self.limits.request_timeout,
            client.request::<Value>(request),
        )
        .await
        .map_err(|_| {
            Setback::Retry(format!(
                "list timed out after {:?}",
                self.limits.request_timeout
            ))
        })?
        .map_err(setback)?;
        if table["kind"] != "Table" {
            return Err(Setback::Refuse(
                "the API server does not print this kind as a table".into(),
            ));
        }
        let rows = table["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let more = table
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty());
        if more || rows.len() > self.limits.max_objects {
            return Err(Setback::Refuse(format!(
                "more than {} objects (cache.max_objects)",
                self.limits.max_objects
            )));
        }
        let mut fresh = BTreeMap::new();
        let mut bytes = 0usize;
        for row in rows {
            if let Some((key, row)) = self.cached_row(row) {
                bytes += row.bytes;
                fresh.insert(key, row);
            }
        }
        let rv = table
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut state = self.state.write().expect("watch lock poisoned");
        let old = self.own.bytes.load(Ordering::SeqCst);
        self.charge(bytes as isize - old as isize)
            .map_err(Setback::Refuse)?;
        let count = fresh.len();
        state.columns = table["columnDefinitions"].clone();
        state.rows = fresh;
        state.resource_version = rv.clone();
        drop(state);
        self.recount(count);
        Ok(rv)
    }

    /// Watches from `rv` until the server ends the watch. `Ok(Some(rv))`
    /// continues from `rv`; `Ok(None)` asks for a relist (the version is
    /// too old).
    ///
    /// Over HTTP/2 (`h2`) the connection is pinged, so a watch lasts
    /// minutes (spread per cache, so a fleet's watches do not restart
    /// together). Over HTTP/1.1 nothing notices a silent server but the
    /// watch itself: it ends a second before the request deadline, and
    /// silence longer than the deadline is an error.
    async fn follow(
        &self,
        client: &kube::Client,
        rv: String,
        h2: bool,
    ) -> Result<Option<String>, Setback> {
        let Timing { seconds, silence } = timing(
            h2,
            self.limits.request_timeout,
            (&self.cluster, &self.scope),
        );
        let params = WatchParams::default().disable_bookmarks().timeout(seconds);
        let request = kube::core::Request::new(self.url())
            .watch(&params, &rv)
            .map_err(|e| Setback::Retry(e.to_string()))?;
        let started = tokio::time::timeout(
            self.limits.request_timeout,
            client.request_events::<Value>(as_table(request)),
        )
        .await
        .map_err(|_| {
            Setback::Retry(format!(
                "watch did not start within {:?}",
                self.limits.request_timeout
            ))
        })?;
        let events = match started {
            Ok(events) => events,
            Err(kube::Error::Api(status)) if status.code == 410 => return Ok(None),
            Err(e) => return Err(setback(e)),
        };
        self.life.set_in_sync(true);
        let mut events = std::pin::pin!(events);
        let mut last = rv;
        while let Some(event) = next_event(&self.life, &mut events, silence).await? {
            match event {
                WatchEvent::Added(table) | WatchEvent::Modified(table) => {
                    if let Some(rv) = self.apply(&table, false).map_err(Setback::Refuse)? {
                        last = rv;
                    }
                }
                WatchEvent::Deleted(table) => {
                    if let Some(rv) = self.apply(&table, true).map_err(Setback::Refuse)? {
                        last = rv;
                    }
                }
                WatchEvent::Bookmark(b) => last = b.metadata.resource_version,
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
            }
        }
        // The server ended the watch (its timeout, or the connection went
        // quiet): out of sync until the next watch is established.
        self.life.set_in_sync(false);
        Ok(Some(last))
    }

    fn resource_version(&self) -> String {
        self.read(|s| s.resource_version.clone())
    }
}
