//! The workloads: a setup phase that stores what read workloads need, then one operation per
//! call of [`Ctx::op`].

use anyhow::{Result, bail};
use clap::ValueEnum;
use futures::StreamExt;

use crate::client::{Client, manifest_blobs};
use crate::data;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Push whole small images: every blob by POST + PUT, then the manifest by tag.
    PushSmall,
    /// Pull pre-pushed small images: manifest by tag, then every blob, digests verified.
    PullSmall,
    /// GET a manifest by tag (body hash checked against Docker-Content-Digest).
    ManifestGet,
    /// Push one large blob per op with chunked PATCH uploads streamed from a generator.
    LargePush,
    /// GET a pre-pushed large blob, streamed and verified.
    LargePull,
    /// 90% pull-small, 10% push-small.
    Mixed,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::PushSmall => "push-small",
            Workload::PullSmall => "pull-small",
            Workload::ManifestGet => "manifest-get",
            Workload::LargePush => "large-push",
            Workload::LargePull => "large-pull",
            Workload::Mixed => "mixed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Shape {
    pub layers: usize,
    pub layer_size: usize,
    pub images: usize,
    pub large_size: u64,
    pub chunk_size: u64,
    pub repo_prefix: String,
    pub setup_concurrency: usize,
    /// Read the images an earlier setup pushed instead of pushing new ones.
    pub reuse_images: bool,
}

/// An image the setup phase pushed.
#[derive(Debug, Clone)]
pub struct Stored {
    pub tag: String,
    pub manifest_digest: String,
}

pub struct Ctx {
    pub client: Client,
    pub workload: Workload,
    pub shape: Shape,
    nonce: u64,
    images: Vec<Stored>,
    large: Option<(String, u64)>,
}

/// Distinct, well-spread seeds per (run, stream, index).
fn seed(nonce: u64, stream: u64, n: u64) -> u64 {
    let mut r = data::Rng::new(nonce ^ stream.rotate_left(32) ^ n.wrapping_mul(0x9e37_79b9));
    r.next_u64()
}

const SETUP_STREAM: u64 = 1;
const OP_STREAM: u64 = 2;
const LARGE_STREAM: u64 = 3;

impl Ctx {
    pub fn new(client: Client, workload: Workload, shape: Shape, nonce: u64) -> Self {
        Ctx {
            client,
            workload,
            shape,
            nonce,
            images: Vec::new(),
            large: None,
        }
    }

    fn pull_repo(&self) -> String {
        format!("{}/pull", self.shape.repo_prefix)
    }

    fn push_repo(&self) -> String {
        format!("{}/push", self.shape.repo_prefix)
    }

    fn large_repo(&self) -> String {
        format!("{}/large", self.shape.repo_prefix)
    }

    /// Pushes what the workload reads: small images for pulls and manifest GETs, one large
    /// blob for large-pull.
    pub async fn setup(&mut self) -> Result<()> {
        match self.workload {
            Workload::PullSmall | Workload::ManifestGet | Workload::Mixed => {
                let repo = self.pull_repo();
                let this = &*self;
                let results: Vec<Result<Stored>> =
                    futures::stream::iter(0..this.shape.images.max(1))
                        .map(|i| {
                            let repo = repo.clone();
                            async move {
                                let img = data::make_image(
                                    seed(this.nonce, SETUP_STREAM, i as u64),
                                    this.shape.layers,
                                    this.shape.layer_size,
                                );
                                let tag = format!("img-{i}");
                                if this.shape.reuse_images {
                                    let body = this.client.get_manifest(&repo, &tag, None).await?;
                                    return Ok(Stored {
                                        tag,
                                        manifest_digest: data::sha256_digest(&body),
                                    });
                                }
                                this.push_image(&repo, &tag, &img).await?;
                                Ok(Stored {
                                    tag,
                                    manifest_digest: img.manifest_digest,
                                })
                            }
                        })
                        .buffer_unordered(this.shape.setup_concurrency.max(1))
                        .collect()
                        .await;
                self.images = results.into_iter().collect::<Result<_>>()?;
                // Stable order: op n reads image n mod count.
                self.images.sort_by(|a, b| a.tag.cmp(&b.tag));
            }
            Workload::LargePull => {
                let size = self.shape.large_size;
                let digest = self
                    .client
                    .push_large(
                        &self.large_repo(),
                        size,
                        self.shape.chunk_size,
                        seed(self.nonce, LARGE_STREAM, 0),
                    )
                    .await?;
                self.large = Some((digest, size));
            }
            Workload::PushSmall | Workload::LargePush => {}
        }
        Ok(())
    }

    async fn push_image(&self, repo: &str, tag: &str, img: &data::Image) -> Result<u64> {
        for blob in img.blobs() {
            self.client.push_blob(repo, blob).await?;
        }
        self.client.push_manifest(repo, tag, &img.manifest).await?;
        Ok(img.total_bytes())
    }

    async fn push_small(&self, n: u64) -> Result<u64> {
        let img = data::make_image(
            seed(self.nonce, OP_STREAM, n),
            self.shape.layers,
            self.shape.layer_size,
        );
        self.push_image(&self.push_repo(), &format!("op-{n}"), &img)
            .await
    }

    fn image_for(&self, n: u64) -> Result<&Stored> {
        if self.images.is_empty() {
            bail!("no images were set up");
        }
        let i = usize::try_from(n % self.images.len() as u64).unwrap_or(0);
        match self.images.get(i) {
            Some(s) => Ok(s),
            None => bail!("image index out of range"),
        }
    }

    async fn pull_small(&self, n: u64) -> Result<u64> {
        let img = self.image_for(n)?;
        let repo = self.pull_repo();
        let manifest = self
            .client
            .get_manifest(&repo, &img.tag, Some(&img.manifest_digest))
            .await?;
        let mut bytes = manifest.len() as u64;
        for (digest, size) in manifest_blobs(&manifest)? {
            bytes += self.client.get_blob(&repo, &digest, Some(size)).await?;
        }
        Ok(bytes)
    }

    /// Runs operation number `n`; returns its kind and the bytes it moved.
    pub async fn op(&self, n: u64) -> (&'static str, Result<u64>) {
        match self.workload {
            Workload::PushSmall => ("push", self.push_small(n).await),
            Workload::PullSmall => ("pull", self.pull_small(n).await),
            Workload::ManifestGet => {
                let r = async {
                    let img = self.image_for(n)?;
                    let body = self
                        .client
                        .get_manifest(&self.pull_repo(), &img.tag, Some(&img.manifest_digest))
                        .await?;
                    Ok(body.len() as u64)
                };
                ("manifest", r.await)
            }
            Workload::LargePush => {
                let r = self
                    .client
                    .push_large(
                        &self.large_repo(),
                        self.shape.large_size,
                        self.shape.chunk_size,
                        seed(self.nonce, LARGE_STREAM, n + 1),
                    )
                    .await
                    .map(|_| self.shape.large_size);
                ("push", r)
            }
            Workload::LargePull => {
                let r = async {
                    let Some((digest, size)) = &self.large else {
                        bail!("no large blob was set up");
                    };
                    self.client
                        .get_blob(&self.large_repo(), digest, Some(*size))
                        .await
                };
                ("pull", r.await)
            }
            Workload::Mixed => {
                if n % 10 == 9 {
                    ("push", self.push_small(n).await)
                } else {
                    ("pull", self.pull_small(n).await)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_across_streams_and_ops() {
        let s: std::collections::HashSet<u64> = (0..1000)
            .flat_map(|n| [seed(5, SETUP_STREAM, n), seed(5, OP_STREAM, n)])
            .collect();
        assert_eq!(s.len(), 2000);
        assert_ne!(seed(5, OP_STREAM, 1), seed(6, OP_STREAM, 1));
    }
}
