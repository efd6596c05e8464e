//! A cached object's JSON, deflated: a watch cache holds every object of
//! its kind whole (for YAML/JSON answers and gets) but reads it far less
//! often than its table cells, so it keeps it compressed (a fast deflate
//! shrinks Kubernetes objects' JSON severalfold) and inflates it per read.

use std::io::{Read, Write};

use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};

/// Compressed JSON text and its inflated length.
#[derive(Debug, Clone)]
pub struct Packed {
    data: Box<[u8]>,
    len: u32,
}

impl Packed {
    /// `text`, deflated.
    pub fn new(text: &str) -> Self {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        // Writing to a Vec cannot fail.
        let data = encoder
            .write_all(text.as_bytes())
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        Self {
            data: data.into_boxed_slice(),
            len: u32::try_from(text.len()).unwrap_or(u32::MAX),
        }
    }

    /// The text again ("" if it cannot be inflated, which only a bug could
    /// cause: the data never leaves this process).
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.len as usize);
        let mut decoder = DeflateDecoder::new(&self.data[..]).take(u64::from(self.len));
        match decoder.read_to_string(&mut text) {
            Ok(_) => text,
            Err(_) => String::new(),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_holds_less() {
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "frontend-7d9f", "namespace": "shop", "labels": {"app": "frontend", "tier": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]},
                                     {"name": "sidecar", "image": "envoy:1.30", "ports": [{"containerPort": 9901}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}]}
        })
        .to_string();
        let packed = Packed::new(&pod);
        assert_eq!(packed.text(), pod);
        assert!(
            packed.bytes() < pod.len(),
            "{} of {}",
            packed.bytes(),
            pod.len()
        );
        assert_eq!(Packed::new("").text(), "");
    }
}
