//! Helm's release records as its storage drivers keep them: the `release`
//! value of a Secret (type `helm.sh/release.v1`) or ConfigMap labelled
//! `owner=helm` is base64 (Helm's own) of gzip of the release JSON.
//!
//! ```
//! # use nskd::helm::release::{decode, encode_for_tests};
//! let stored = encode_for_tests(br#"{"name":"web","namespace":"default","version":1}"#);
//! assert_eq!(decode(stored.as_bytes()).unwrap().name, "web");
//! ```

use std::io::Read;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

/// Most bytes of one stored record (Helm's base64 text) nskd reads: a
/// Secret or ConfigMap holds at most 1 MiB.
pub const MAX_STORED_BYTES: usize = 2 * 1024 * 1024;

/// Most bytes of one release's JSON once decompressed (a gzip bomb stops
/// here).
pub const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// Why a stored release cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The record is larger than [`MAX_STORED_BYTES`].
    #[error("the stored record is {0} bytes, more than the {MAX_STORED_BYTES} nskd reads")]
    StoredTooLarge(usize),
    /// Not base64.
    #[error("the stored record is not base64 ({0})")]
    Base64(String),
    /// Decompresses past [`MAX_JSON_BYTES`].
    #[error("the release decompresses to more than {MAX_JSON_BYTES} bytes; refused")]
    JsonTooLarge,
    /// Not gzip, or a broken gzip stream.
    #[error("the stored record is not valid gzip ({0})")]
    Gzip(String),
    /// Not a release JSON.
    #[error("the release is not valid Helm release JSON ({0})")]
    Json(String),
}

/// One revision of a release, with the fields nskd shows.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Namespace it was installed in.
    pub namespace: String,
    /// Revision.
    pub version: i64,
    /// Status, times, description, notes.
    pub info: Info,
    /// The chart it was made from.
    pub chart: Option<Chart>,
    /// User-supplied values (`helm get values`).
    pub config: Option<Value>,
    /// The rendered manifest.
    pub manifest: String,
}

/// `info` of a release.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Info {
    /// RFC 3339.
    pub first_deployed: String,
    /// RFC 3339.
    pub last_deployed: String,
    /// RFC 3339, when uninstalled.
    pub deleted: String,
    /// What the last operation said.
    pub description: String,
    /// deployed, failed, superseded, uninstalled, pending-install, ...
    pub status: String,
    /// The rendered NOTES.txt.
    pub notes: String,
}

/// `chart` of a release (only what nskd reads).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Chart {
    /// Chart.yaml.
    pub metadata: ChartMetadata,
    /// The chart's default values.
    pub values: Option<Value>,
}

/// Chart.yaml fields nskd shows.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChartMetadata {
    /// Chart name.
    pub name: String,
    /// Chart version.
    pub version: String,
    /// App version.
    #[serde(rename = "appVersion")]
    pub app_version: String,
}

impl Release {
    /// `name-version` as `helm list` shows the chart.
    pub fn chart_ref(&self) -> String {
        match &self.chart {
            Some(c) => format!("{}-{}", c.metadata.name, c.metadata.version),
            None => "MISSING".into(),
        }
    }

    /// The chart's name ("" when the record has none).
    pub fn chart_name(&self) -> &str {
        self.chart.as_ref().map_or("", |c| c.metadata.name.as_str())
    }

    /// The chart's version.
    pub fn chart_version(&self) -> &str {
        self.chart
            .as_ref()
            .map_or("", |c| c.metadata.version.as_str())
    }

    /// The app version.
    pub fn app_version(&self) -> &str {
        self.chart
            .as_ref()
            .map_or("", |c| c.metadata.app_version.as_str())
    }

    /// The values Helm computed: the chart's defaults with the user's
    /// values merged over them (`helm get values --all`).
    pub fn computed_values(&self) -> Value {
        let mut base = self
            .chart
            .as_ref()
            .and_then(|c| c.values.clone())
            .unwrap_or(Value::Object(Default::default()));
        if let Some(user) = &self.config {
            merge(&mut base, user);
        }
        base
    }
}

/// Helm's coalescing: maps merge key by key, anything else replaces; a
/// user's `null` deletes the default.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) = b.get_mut(k) {
                    merge(existing, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Decodes one stored record (Helm's base64 text, as the Secret's decoded
/// data or the ConfigMap's value holds it) into a release, within the caps.
pub fn decode(stored: &[u8]) -> Result<Release, ReleaseError> {
    if stored.len() > MAX_STORED_BYTES {
        return Err(ReleaseError::StoredTooLarge(stored.len()));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(stored.trim_ascii())
        .map_err(|e| ReleaseError::Base64(e.to_string()))?;
    // Helm reads an uncompressed record too (older writers).
    let json = if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_JSON_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ReleaseError::Gzip(e.to_string()))?;
        if out.len() > MAX_JSON_BYTES {
            return Err(ReleaseError::JsonTooLarge);
        }
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| ReleaseError::Json(e.to_string()))
}

/// Encodes release JSON the way Helm stores it (tests and doc examples).
pub fn encode_for_tests(json: &[u8]) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json).expect("write to memory");
    base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip to memory"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({"name": "web", "namespace": "shop", "version": 3,
            "info": {"status": "deployed", "last_deployed": "2026-01-02T03:04:05Z",
                     "description": "Upgrade complete", "notes": "hi"},
            "chart": {"metadata": {"name": "nginx", "version": "1.2.3", "appVersion": "1.25"},
                      "values": {"replicas": 1, "image": {"tag": "old", "pull": "IfNotPresent"}, "drop": 1},
                      "templates": [{"name": "t", "data": "eA=="}]},
            "config": {"image": {"tag": "new"}, "drop": null},
            "manifest": "---\nkind: ConfigMap\n"})
    }

    #[test]
    fn decodes_what_helm_stores() {
        let r = decode(encode_for_tests(sample().to_string().as_bytes()).as_bytes()).unwrap();
        assert_eq!(
            (r.name.as_str(), r.namespace.as_str(), r.version),
            ("web", "shop", 3)
        );
        assert_eq!(r.info.status, "deployed");
        assert_eq!(r.chart_ref(), "nginx-1.2.3");
        assert_eq!(r.app_version(), "1.25");
        assert_eq!(
            r.computed_values(),
            json!({"replicas": 1, "image": {"tag": "new", "pull": "IfNotPresent"}})
        );
    }

    #[test]
    fn uncompressed_records_are_read_too() {
        let plain = base64::engine::general_purpose::STANDARD.encode(sample().to_string());
        assert_eq!(decode(plain.as_bytes()).unwrap().version, 3);
    }

    #[test]
    fn gzip_bomb_is_refused() {
        // 64 MiB of zeros compress to ~64 KiB.
        let zeros = vec![b' '; 64 * 1024 * 1024];
        let bomb = encode_for_tests(&zeros);
        assert!(bomb.len() < MAX_STORED_BYTES, "{}", bomb.len());
        assert_eq!(decode(bomb.as_bytes()), Err(ReleaseError::JsonTooLarge));
    }

    #[test]
    fn malformed_records_say_what_is_wrong() {
        assert!(matches!(
            decode(b"%%%not base64"),
            Err(ReleaseError::Base64(_))
        ));
        let mut broken = base64::engine::general_purpose::STANDARD
            .decode(encode_for_tests(b"{\"name\":\"x\"}"))
            .unwrap();
        broken.truncate(12);
        let broken = base64::engine::general_purpose::STANDARD.encode(broken);
        assert!(matches!(
            decode(broken.as_bytes()),
            Err(ReleaseError::Gzip(_))
        ));
        let not_json = encode_for_tests(b"<xml/>");
        let err = decode(not_json.as_bytes()).unwrap_err();
        assert!(matches!(err, ReleaseError::Json(_)), "{err}");
        let wrong_shape = encode_for_tests(b"{\"name\": 5}");
        assert!(matches!(
            decode(wrong_shape.as_bytes()),
            Err(ReleaseError::Json(_))
        ));
    }

    #[test]
    fn huge_records_are_refused_before_decoding() {
        let huge = vec![b'A'; MAX_STORED_BYTES + 4];
        assert_eq!(
            decode(&huge),
            Err(ReleaseError::StoredTooLarge(MAX_STORED_BYTES + 4))
        );
    }
}
