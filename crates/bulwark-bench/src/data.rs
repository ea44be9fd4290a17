//! Test content: a fast deterministic byte generator, small OCI images, and a streamed large
//! blob whose digest is computed while it is sent.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::Stream;
use serde_json::json;
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// Accept header for manifest GETs (Distribution 2.8 hides OCI manifests from clients that do
/// not list the OCI type).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// splitmix64: incompressible-looking bytes at several GB/s, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        for (d, s) in rest.iter_mut().zip(last) {
            *d = s;
        }
    }

    pub fn bytes(&mut self, len: usize) -> Bytes {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        Bytes::from(v)
    }
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A blob ready to push.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub data: Bytes,
}

impl Blob {
    pub fn new(data: Bytes) -> Self {
        Blob {
            digest: sha256_digest(&data),
            data,
        }
    }
}

/// A complete single-platform OCI image.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

impl Image {
    /// Layers plus config: every blob the manifest refers to.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }

    pub fn total_bytes(&self) -> u64 {
        self.blobs().map(|b| b.data.len() as u64).sum::<u64>() + self.manifest.len() as u64
    }
}

/// An image of `layers` random layers of `layer_size` bytes; distinct seeds give distinct
/// content, so nothing is deduplicated by the registry.
pub fn make_image(seed: u64, layers: usize, layer_size: usize) -> Image {
    let mut rng = Rng::new(seed);
    let layers: Vec<Blob> = (0..layers)
        .map(|_| Blob::new(rng.bytes(layer_size)))
        .collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "bench.seed": seed.to_string() } },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        },
    });
    let config = Blob::new(Bytes::from(config.to_string()));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config.digest, "size": config.data.len() },
        "layers": layers.iter().map(|l| json!({
            "mediaType": OCI_LAYER, "digest": l.digest, "size": l.data.len(),
        })).collect::<Vec<_>>(),
    });
    let manifest = Bytes::from(manifest.to_string());
    Image {
        manifest_digest: sha256_digest(&manifest),
        layers,
        config,
        manifest,
    }
}

/// Generates a large blob piece by piece and hashes what it generated; shared between the
/// successive chunk bodies of one upload.
pub struct LargeSource {
    rng: Rng,
    hasher: Sha256,
    produced: u64,
}

pub type SharedSource = Arc<Mutex<LargeSource>>;

impl LargeSource {
    pub fn shared(seed: u64) -> SharedSource {
        Arc::new(Mutex::new(LargeSource {
            rng: Rng::new(seed),
            hasher: Sha256::new(),
            produced: 0,
        }))
    }

    fn next_piece(&mut self, len: usize) -> Bytes {
        let b = self.rng.bytes(len);
        self.hasher.update(&b);
        self.produced += len as u64;
        b
    }

    /// Digest of everything produced so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    pub fn produced(&self) -> u64 {
        self.produced
    }
}

/// Piece size of streamed bodies: one of these is in memory at a time per stream.
pub const PIECE: usize = 1024 * 1024;

/// A body stream of the next `len` bytes of `src`, generated lazily.
pub fn chunk_stream(
    src: SharedSource,
    len: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(len, move |left| {
        let src = src.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = usize::try_from(left.min(PIECE as u64)).unwrap_or(PIECE);
            let piece = match src.lock() {
                Ok(mut s) => Ok(s.next_piece(n)),
                Err(_) => Err(std::io::Error::other("generator poisoned")),
            };
            Some((piece, left - n as u64))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn rng_is_deterministic_and_fills_tails() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let (mut x, mut y) = (vec![0u8; 13], vec![0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert!(x[8..].iter().any(|&v| v != 0));
        assert_ne!(Rng::new(8).bytes(16), Rng::new(7).bytes(16));
    }

    #[test]
    fn image_is_consistent() {
        let img = make_image(1, 3, 1000);
        let m: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
        assert_eq!(m["layers"].as_array().unwrap().len(), 3);
        assert_eq!(m["config"]["digest"], img.config.digest.as_str());
        assert_eq!(m["layers"][2]["size"], 1000);
        assert_eq!(img.manifest_digest, sha256_digest(&img.manifest));
        assert_ne!(
            make_image(2, 3, 1000).layers[0].digest,
            img.layers[0].digest
        );
    }

    #[tokio::test]
    async fn streamed_chunks_hash_to_whole_content() {
        let src = LargeSource::shared(9);
        let mut all = Vec::new();
        for len in [PIECE as u64 + 5, 3, 0, 1000] {
            let mut s = Box::pin(chunk_stream(src.clone(), len));
            let mut got = 0;
            while let Some(p) = s.next().await {
                let p = p.unwrap();
                got += p.len() as u64;
                all.extend_from_slice(&p);
            }
            assert_eq!(got, len);
        }
        let s = src.lock().unwrap();
        assert_eq!(s.produced(), all.len() as u64);
        assert_eq!(s.digest(), sha256_digest(&all));
    }
}
