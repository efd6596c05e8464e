//! The floor of a read: one keep-alive HTTPS GET straight to the apiserver
//! with the admin token (hyper + rustls), asking for the same server-side
//! Table that nskd and the Go server ask for.

use std::time::{Duration, Instant};

use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::{
    fake_rancher::{HttpsClient, https_client},
    rig::RigCluster,
};

const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// A reused connection to one apiserver.
pub struct RawGet {
    client: HttpsClient,
    server: String,
    token: String,
}

impl RawGet {
    /// A client for `cluster` (connects on the first GET, then keeps it).
    pub fn new(cluster: &RigCluster) -> Self {
        let ca = std::fs::read(&cluster.ca).expect("read rig CA");
        Self {
            client: https_client(&ca),
            server: cluster.server.clone(),
            token: cluster.admin_token.clone(),
        }
    }

    /// GETs `path` (e.g. `/api/v1/namespaces`), reads the whole body and
    /// returns how long that took; panics unless the answer is 200.
    pub async fn get(&self, path: &str) -> Duration {
        let started = Instant::now();
        let req = Request::get(format!("{}{path}", self.server))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, TABLE_ACCEPT)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let resp = self.client.request(req).await.expect("raw GET");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert!(status.is_success(), "GET {path}: {status}: {body:?}");
        started.elapsed()
    }
}
