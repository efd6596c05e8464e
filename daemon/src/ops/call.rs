//! Sending one request to a cluster's API server: the deadline, the byte
//! cap on what is read back, and the mapping of failures to [`OpError`],
//! in one place for every operation.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::time::Instant;

use super::OpOptions;
use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
};

/// Most bytes of an error answer read (a `Status` is small).
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// One call: what it is (for errors) and when it must be done.
#[derive(Debug)]
pub struct Call<'a> {
    cc: &'a ClusterClient,
    verb: &'a str,
    resource: String,
    timeout: Duration,
    deadline: Instant,
    max_read: usize,
}

/// A successful answer, read within the cap.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status (2xx).
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes (all of them, or the kept tail).
    pub body: Vec<u8>,
    /// Bytes of the body left out at its start (tail reads only).
    pub skipped_bytes: u64,
    /// Lines (newlines) in those bytes.
    pub skipped_lines: u64,
}

impl Reply {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The media type (`text/plain`), lowercase, without parameters.
    pub fn media_type(&self) -> String {
        media_type(&self.headers)
    }
}

/// The media type of an answer with `headers` (`text/plain`), lowercase,
/// without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Which part of a body larger than the cap to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// All of it, or fail with [`OpError::TooLarge`] past this many bytes.
    All(usize),
    /// The last `n` bytes (logs: the newest lines), reading to the end.
    Tail(usize),
}

impl<'a> Call<'a> {
    /// A call doing `verb` on `resource` of `cc`, within the options'
    /// timeout from now.
    pub fn new(
        cc: &'a ClusterClient,
        verb: &'a str,
        resource: impl Into<String>,
        opts: &OpOptions,
    ) -> Self {
        Self {
            cc,
            verb,
            resource: resource.into(),
            timeout: opts.timeout,
            deadline: Instant::now() + opts.timeout,
            max_read: opts.max_read_bytes,
        }
    }

    /// Shares `started`'s deadline (several requests of one operation).
    pub fn since(mut self, started: Instant) -> Self {
        self.deadline = started + self.timeout;
        self
    }

    /// The context errors are described with.
    pub fn context(&self) -> CallContext<'_> {
        CallContext {
            cluster: &self.cc.name,
            server: &self.cc.server,
            path: &self.cc.path,
            verb: self.verb,
            resource: &self.resource,
        }
    }

    /// The resource this call is about, for messages.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Sends `request` and parses the JSON answer (at most the read cap).
    pub async fn json(&self, request: http::Request<Vec<u8>>) -> Result<Value, OpError> {
        Ok(self.json_reply(request).await?.1)
    }

    /// Same, with the HTTP status (201 tells a create from an update).
    pub async fn json_reply(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<(StatusCode, Value), OpError> {
        let reply = self.exchange(request, Keep::All(self.max_read)).await?;
        let value = serde_json::from_slice(&reply.body).map_err(|e| OpError::UnexpectedAnswer {
            cluster: self.cc.name.clone(),
            what: format!("{} {}", self.verb, self.resource),
            expected: "JSON".into(),
            got: format!("something else ({e})"),
        })?;
        Ok((reply.status, value))
    }

    /// Sends `request` and keeps the last `keep` bytes of the answer,
    /// reading the rest only to count it (memory stays bounded however
    /// long the answer is).
    pub async fn tail(
        &self,
        request: http::Request<Vec<u8>>,
        keep: usize,
    ) -> Result<Reply, OpError> {
        self.exchange(request, Keep::Tail(keep)).await
    }

    /// When this call must be done.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sends `request` and returns the headers and the unread body of a
    /// successful answer, for the caller to stream within
    /// [`Call::deadline`]; a failed answer is the same error as for the
    /// other calls.
    pub async fn open(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<(HeaderMap, kube::client::Body), OpError> {
        match tokio::time::timeout_at(self.deadline, self.start(request)).await {
            Err(_) => Err(self.context().timeout(self.timeout)),
            Ok(result) => result.map(|(parts, body)| (parts.headers, body)),
        }
    }

    /// Sends `request`; a failed answer becomes the error it describes.
    async fn start(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<(http::response::Parts, kube::client::Body), OpError> {
        let ctx = self.context();
        let response = self
            .cc
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(|e| ctx.error(e))?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let read = read_body(body, Keep::Tail(ERROR_BODY_BYTES), &ctx).await?;
            let status = api_status(parts.status, &read.bytes.unwrap_or_default());
            return Err(ctx.error(kube::Error::Api(status.boxed())));
        }
        Ok((parts, body))
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        keep: Keep,
    ) -> Result<Reply, OpError> {
        let ctx = self.context();
        let work = async {
            let (parts, body) = self.start(request).await?;
            let read = read_body(body, keep, &ctx).await?;
            let Some(body) = read.bytes else {
                return Err(OpError::TooLarge {
                    cluster: self.cc.name.clone(),
                    what: format!("{} {}", self.verb, self.resource),
                    limit: self.max_read,
                    hint: "narrow it (namespace, labelSelector, fieldSelector, limit), or an operator raises [pool] max_response_bytes".into(),
                });
            };
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
                skipped_bytes: read.skipped_bytes,
                skipped_lines: read.skipped_lines,
            })
        };
        match tokio::time::timeout_at(self.deadline, work).await {
            Err(_) => Err(ctx.timeout(self.timeout)),
            Ok(result) => result,
        }
    }
}

/// The `Status` of an error answer, or one made from its text.
fn api_status(code: StatusCode, body: &[u8]) -> kube::core::Status {
    serde_json::from_slice::<kube::core::Status>(body)
        .ok()
        .filter(|s| s.code != 0 || !s.message.is_empty())
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(300).collect();
            kube::core::Status::failure(&text, code.canonical_reason().unwrap_or("Error"))
        })
        .with_code(code.as_u16())
}

/// What [`read_body`] read.
struct Read {
    /// All of the body (`None` past the cap), or its kept tail.
    bytes: Option<Vec<u8>>,
    skipped_bytes: u64,
    skipped_lines: u64,
}

/// Reads `body` by frames: all of it up to the cap, or its last bytes
/// with the count of those left out.
async fn read_body(
    mut body: kube::client::Body,
    keep: Keep,
    ctx: &CallContext<'_>,
) -> Result<Read, OpError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut read = Read {
        bytes: None,
        skipped_bytes: 0,
        skipped_lines: 0,
    };
    let drop_front = |buf: &mut Vec<u8>, n: usize, read: &mut Read| {
        let cut = buf.len() - n;
        read.skipped_lines += buf[..cut].iter().filter(|b| **b == b'\n').count() as u64;
        read.skipped_bytes += cut as u64;
        buf.drain(..cut);
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ctx.error(e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        match keep {
            Keep::All(cap) if buf.len() > cap => return Ok(read),
            Keep::All(_) => {}
            // Trim in batches so the copying stays linear.
            Keep::Tail(n) if buf.len() > n.saturating_mul(2).max(64 * 1024) => {
                drop_front(&mut buf, n, &mut read);
            }
            Keep::Tail(_) => {}
        }
    }
    if let Keep::Tail(n) = keep
        && buf.len() > n
    {
        drop_front(&mut buf, n, &mut read);
    }
    read.bytes = Some(buf);
    Ok(read)
}
