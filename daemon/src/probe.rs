//! Probing clusters: `/version` (latency), nodes and namespaces, each probe
//! bounded by the probe timeout. Probes of one cluster are single-flight
//! (a caller joins a probe already running); many clusters are probed in
//! parallel with bounded concurrency, so dead clusters cost one timeout.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{
    FutureExt, StreamExt,
    future::{BoxFuture, Shared},
};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    core::v1::{Namespace, Node, Pod, Service},
};
use kube::{Api, api::ListParams};

use crate::{
    error::{CallContext, OpError},
    health::{ClusterHealth, ProbeData, Tracker},
    pool::{ClusterClient, Pool},
    registry::Registry,
};

/// The detailed single-cluster view's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterDetail {
    /// Control-plane nodes and how many are Ready.
    pub control_plane: (u32, u32),
    /// Worker nodes and how many are Ready.
    pub workers: (u32, u32),
    /// Pods by phase.
    pub pods_by_phase: BTreeMap<String, u32>,
    /// Services.
    pub services: u32,
    /// Deployments.
    pub deployments: u32,
    /// StatefulSets.
    pub statefulsets: u32,
    /// `os/arch` from `/version`.
    pub platform: String,
    /// What could not be counted.
    pub partial_errors: Vec<String>,
}

type ProbeFuture = Shared<BoxFuture<'static, ClusterHealth>>;

/// Runs probes and records them in the tracker.
#[derive(Debug)]
pub struct Prober {
    registry: Arc<Registry>,
    pool: Arc<Pool>,
    tracker: Arc<Tracker>,
    inflight: Mutex<HashMap<String, ProbeFuture>>,
}

impl Prober {
    /// A prober over the daemon's registry, pool and tracker.
    pub fn new(registry: Arc<Registry>, pool: Arc<Pool>, tracker: Arc<Tracker>) -> Self {
        Self {
            registry,
            pool,
            tracker,
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// Probes `name` now (or joins the probe already running).
    pub async fn probe(self: &Arc<Self>, name: &str) -> ClusterHealth {
        let fut = {
            let mut inflight = self.inflight.lock().expect("prober lock poisoned");
            match inflight.get(name) {
                Some(f) => f.clone(),
                None => {
                    let this = self.clone();
                    let owned = name.to_string();
                    let f = async move {
                        let h = this.probe_uncached(&owned).await;
                        this.inflight
                            .lock()
                            .expect("prober lock poisoned")
                            .remove(&owned);
                        h
                    }
                    .boxed()
                    .shared();
                    inflight.insert(name.to_string(), f.clone());
                    f
                }
            }
        };
        fut.await
    }

    /// Probes every name in parallel, at most `probe_concurrency` at once.
    pub async fn probe_many(self: &Arc<Self>, names: Vec<String>) -> Vec<(String, ClusterHealth)> {
        let limit = self.tracker.config().probe_concurrency.max(1);
        futures::stream::iter(names)
            .map(|name| {
                let this = self.clone();
                async move {
                    let h = this.probe(&name).await;
                    (name, h)
                }
            })
            .buffer_unordered(limit)
            .collect()
            .await
    }

    async fn probe_uncached(&self, name: &str) -> ClusterHealth {
        let Some(entry) = self.registry.get(name) else {
            return self.tracker.get(name);
        };
        if let Some(error) = &entry.error {
            return self
                .tracker
                .record_unusable(name, crate::error::ErrorKind::Invalid, error);
        }
        let cc = match self.pool.get(&entry).await {
            Ok(cc) => cc,
            Err(e) => return self.tracker.record_unusable(name, e.kind(), &e.to_string()),
        };
        let timeout = self.tracker.config().probe_timeout;
        let started = std::time::Instant::now();
        let outcome = probe_client(&cc, timeout).await;
        crate::metrics::api_latency(name, "probe", started.elapsed());
        match outcome {
            Ok(data) => self.tracker.record_probe(name, Ok(data)),
            Err(e) => self.tracker.record_probe(name, Err(&e)),
        }
    }

    /// Counts for the detailed view of one cluster, within the probe timeout.
    pub async fn detail(&self, name: &str) -> Result<ClusterDetail, OpError> {
        let entry = self
            .registry
            .get(name)
            .ok_or_else(|| OpError::UnknownCluster {
                name: name.to_string(),
                known: self.registry.names(),
            })?;
        let cc = self.pool.get(&entry).await?;
        let timeout = self.tracker.config().probe_timeout;
        let ctx = CallContext {
            cluster: &cc.name,
            server: &cc.server,
            path: &cc.path,
            verb: "count",
            resource: "nodes, pods, services, deployments, statefulsets",
        };
        tokio::time::timeout(timeout, detail_client(&cc))
            .await
            .map_err(|_| ctx.timeout(timeout))
    }

    /// Probes every known cluster each `probe_interval` until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let interval = self.tracker.config().probe_interval;
        let mut generation = self.registry.subscribe();
        loop {
            let names = self.registry.names();
            self.probe_many(names).await;
            let evicted = self.pool.evict_idle();
            if evicted > 0 {
                tracing::debug!(evicted, "dropped idle cluster clients");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                // New or changed kubeconfigs get probed right away.
                Ok(()) = generation.changed() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// One probe: `/version` (timed), then nodes and namespaces in parallel.
pub async fn probe_client(cc: &ClusterClient, timeout: Duration) -> Result<ProbeData, OpError> {
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "get",
        resource: "/version",
    };
    let deadline = Instant::now() + timeout;
    let started = Instant::now();
    let version = match tokio::time::timeout(timeout, cc.client.apiserver_version()).await {
        Err(_) => return Err(ctx.timeout(timeout)),
        Ok(Err(e)) => return Err(ctx.error(e)),
        Ok(Ok(v)) => v,
    };
    let latency = started.elapsed();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let nodes = Api::<Node>::all(cc.client.clone());
    let namespaces = Api::<Namespace>::all(cc.client.clone());
    let params = ListParams::default();
    let (nodes, namespaces) = tokio::join!(
        tokio::time::timeout(remaining, nodes.list(&params)),
        tokio::time::timeout(remaining, namespaces.list_metadata(&params)),
    );
    let mut data = ProbeData {
        version: version.git_version,
        latency,
        ..Default::default()
    };
    match nodes {
        Ok(Ok(list)) => {
            data.nodes_total = Some(list.items.len() as u32);
            data.nodes_ready = Some(list.items.iter().filter(|n| node_ready(n)).count() as u32);
        }
        Ok(Err(e)) => data
            .partial_errors
            .push(format!("nodes: {}", short_kube_error(&e))),
        Err(_) => data.partial_errors.push("nodes: timed out".into()),
    }
    match namespaces {
        Ok(Ok(list)) => data.namespaces = Some(list.items.len() as u32),
        Ok(Err(e)) => data
            .partial_errors
            .push(format!("namespaces: {}", short_kube_error(&e))),
        Err(_) => data.partial_errors.push("namespaces: timed out".into()),
    }
    Ok(data)
}

async fn detail_client(cc: &ClusterClient) -> ClusterDetail {
    let c = &cc.client;
    let params = ListParams::default();
    let (node_api, pod_api) = (Api::<Node>::all(c.clone()), Api::<Pod>::all(c.clone()));
    let service_api = Api::<Service>::all(c.clone());
    let deployment_api = Api::<Deployment>::all(c.clone());
    let statefulset_api = Api::<StatefulSet>::all(c.clone());
    let (version, nodes, pods, services, deployments, statefulsets) = tokio::join!(
        c.apiserver_version(),
        node_api.list(&params),
        pod_api.list(&params),
        service_api.list_metadata(&params),
        deployment_api.list_metadata(&params),
        statefulset_api.list_metadata(&params),
    );
    let mut d = ClusterDetail::default();
    match version {
        Ok(v) => d.platform = v.platform,
        Err(e) => d
            .partial_errors
            .push(format!("version: {}", short_kube_error(&e))),
    }
    match nodes {
        Ok(list) => {
            for n in &list.items {
                let ready = u32::from(node_ready(n));
                let slot = if is_control_plane(n) {
                    &mut d.control_plane
                } else {
                    &mut d.workers
                };
                slot.0 += 1;
                slot.1 += ready;
            }
        }
        Err(e) => d
            .partial_errors
            .push(format!("nodes: {}", short_kube_error(&e))),
    }
    match pods {
        Ok(list) => {
            for p in &list.items {
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_else(|| "Unknown".into());
                *d.pods_by_phase.entry(phase).or_default() += 1;
            }
        }
        Err(e) => d
            .partial_errors
            .push(format!("pods: {}", short_kube_error(&e))),
    }
    let counts = [
        ("services", services.map(|l| l.items.len())),
        ("deployments", deployments.map(|l| l.items.len())),
        ("statefulsets", statefulsets.map(|l| l.items.len())),
    ];
    for (what, result) in counts {
        match (what, result) {
            ("services", Ok(n)) => d.services = n as u32,
            ("deployments", Ok(n)) => d.deployments = n as u32,
            (_, Ok(n)) => d.statefulsets = n as u32,
            (_, Err(e)) => d
                .partial_errors
                .push(format!("{what}: {}", short_kube_error(&e))),
        }
    }
    d
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn is_control_plane(n: &Node) -> bool {
    n.metadata.labels.as_ref().is_some_and(|l| {
        l.contains_key("node-role.kubernetes.io/control-plane")
            || l.contains_key("node-role.kubernetes.io/master")
    })
}

fn short_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.reason),
        other => crate::kubeconfig::one_line(&crate::error::error_chain(other)),
    }
}
