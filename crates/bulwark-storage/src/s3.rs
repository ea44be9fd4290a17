//! Blobs on S3-compatible object storage through `object_store`.
//!
//! Layout under the configured prefix:
//! - `blobs/<alg>/<xx>/<hex>`: committed blobs, written once and never replaced;
//! - `uploads/<id>/.session`: marks an upload session (`tmp/<id>/…` for single-request pushes);
//! - `uploads/<id>/<offset>`: one object per appended chunk, named by its zero-padded offset.
//!
//! S3 has no append, so each chunk is its own object, written atomically (a plain PUT, or a
//! multipart upload for chunks over [`PART_SIZE`]); a chunk cut off mid-stream is aborted and
//! never becomes visible, so an upload's length is always the sum of contiguous chunks. The
//! chunk objects live in the shared bucket, so any replica can continue a session. Commit is a
//! server-side copy for a single chunk, otherwise a streamed multipart concatenation; either is
//! atomic, so a blob name never shows partial content.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bulwark_core::store::{BlobReader, BlobStore, ByteStream};
use bulwark_core::{Error, Result};
use bulwark_oci::{Algorithm, ByteRange, Digest, Hasher};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

/// Multipart part size; chunks up to this size are sent in one PUT.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// CopyObject's limit; larger single chunks are concatenated by streaming instead.
const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Leftover upload objects younger than this are left alone at start-up: another replica may
/// be writing them.
const CLEANUP_MIN_AGE_SECS: i64 = 3600;
const SESSION_MARKER: &str = ".session";

/// Where and how to reach the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix for everything Bulwark stores (no leading or trailing slash needed).
    pub prefix: String,
    /// Endpoint URL for S3-compatible services (MinIO, Ceph, moto, ...); unset: AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Credentials; unset: the standard `AWS_*` environment variables, profile or instance role.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints (test servers, private networks).
    pub allow_http: bool,
    /// Path-style requests (`endpoint/bucket/key`) are the default, as most S3-compatible
    /// servers expect; set this for virtual-hosted style (`bucket.endpoint/key`).
    pub virtual_hosted_style: bool,
    /// When above 0, blob downloads are redirected (307) to presigned URLs valid this long,
    /// so bytes flow from the bucket to the client without passing through Bulwark. Off (0)
    /// by default: clients must then be able to reach the endpoint.
    pub presigned_redirect_secs: u64,
}

/// [`BlobStore`] on an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    presign: Option<(Arc<AmazonS3>, Duration)>,
}

fn storage(e: object_store::Error) -> Error {
    Error::storage(e)
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

fn invalid_id(id: &str) -> bool {
    id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

struct Chunk {
    offset: u64,
    size: u64,
    location: Path,
}

impl S3BlobStore {
    async fn get_blob(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<object_store::GetResult> {
        let options = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.start..r.end.saturating_add(1))),
            ..GetOptions::default()
        };
        match self.store.get_opts(&self.blob_path(digest), options).await {
            Ok(r) => Ok(r),
            Err(e) if is_not_found(&e) => Err(Error::BlobUnknown(digest.clone())),
            Err(e) => Err(storage(e)),
        }
    }

    /// Connect to the bucket described by `config`.
    pub fn connect(config: &S3Config) -> Result<Self> {
        if config.bucket.is_empty() {
            return Err(Error::UploadInvalid("storage.s3.bucket is not set".into()));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(config.virtual_hosted_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = Arc::new(builder.build().map_err(storage)?);
        let mut this = Self::with_store(store.clone(), &config.prefix);
        if config.presigned_redirect_secs > 0 {
            this.presign = Some((store, Duration::from_secs(config.presigned_redirect_secs)));
        }
        Ok(this)
    }

    /// A store over any `object_store` backend (the tests use this with S3 and in-memory).
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        S3BlobStore {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            presign: None,
        }
    }

    fn key(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn blob_path(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.key(&format!(
            "blobs/{}/{}/{hex}",
            digest.algorithm().as_str(),
            hex.get(..2).unwrap_or("00")
        ))
    }

    fn upload_dir(&self, id: &str) -> Result<Path> {
        if invalid_id(id) {
            return Err(Error::UploadUnknown);
        }
        let area = if id.starts_with("tmp-") {
            "tmp"
        } else {
            "uploads"
        };
        Ok(self.key(&format!("{area}/{id}")))
    }

    fn chunk_path(dir: &Path, offset: u64) -> Path {
        dir.clone().join(format!("{offset:020}"))
    }

    async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(storage)
    }

    /// The session's chunks in offset order, `None` if the session does not exist.
    async fn chunks(&self, id: &str) -> Result<Option<Vec<Chunk>>> {
        let dir = self.upload_dir(id)?;
        let mut marker = false;
        let mut chunks = Vec::new();
        for meta in self.list(&dir).await? {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if name == SESSION_MARKER {
                marker = true;
            } else if let Ok(offset) = name.parse::<u64>() {
                chunks.push(Chunk {
                    offset,
                    size: meta.size,
                    location: meta.location,
                });
            }
        }
        chunks.sort_by_key(|c| c.offset);
        Ok(marker.then_some(chunks))
    }

    /// Length of the contiguous data from offset 0, and any chunks beyond a gap.
    fn contiguous(chunks: &[Chunk]) -> Result<u64> {
        let mut len = 0u64;
        for c in chunks {
            if c.offset != len {
                return Err(Error::UploadInvalid(
                    "upload data is not contiguous; restart the upload".into(),
                ));
            }
            len = len.saturating_add(c.size);
        }
        Ok(len)
    }

    async fn delete_all(&self, locations: Vec<Path>) -> Result<()> {
        for location in locations {
            match self.store.delete(&location).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(storage(e)),
            }
        }
        Ok(())
    }

    async fn stream_chunks(
        &self,
        chunks: &[Chunk],
        mut each: impl FnMut(&Bytes) -> std::result::Result<(), Error>,
    ) -> Result<()> {
        for c in chunks {
            let mut stream = self
                .store
                .get_opts(&c.location, GetOptions::default())
                .await
                .map_err(storage)?
                .into_stream();
            while let Some(bytes) = stream.next().await {
                each(&bytes.map_err(storage)?)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn create_upload(&self, id: &str, _ephemeral: bool) -> Result<()> {
        let dir = self.upload_dir(id)?;
        self.store
            .put(&dir.clone().join(SESSION_MARKER), PutPayload::new())
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn append_upload(
        &self,
        id: &str,
        offset: u64,
        mut data: ByteStream,
        mut hasher: Option<&mut Hasher>,
    ) -> Result<u64> {
        let dir = self.upload_dir(id)?;
        let chunks = self.chunks(id).await?.ok_or(Error::UploadUnknown)?;
        // Chunks at or past the acknowledged length were never confirmed to the client.
        let (kept, stale): (Vec<Chunk>, Vec<Chunk>) =
            chunks.into_iter().partition(|c| c.offset < offset);
        self.delete_all(stale.into_iter().map(|c| c.location).collect())
            .await?;
        let len = Self::contiguous(&kept)?;
        if len != offset {
            return Err(Error::UploadInvalid(
                "upload data does not end where recorded; restart the upload".into(),
            ));
        }
        let mut writer: Option<BufWriter> = None;
        let mut written = offset;
        while let Some(chunk) = data.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    if let Some(w) = writer.as_mut() {
                        let _ = w.abort().await;
                    }
                    return Err(Error::Body(e.to_string()));
                }
            };
            if chunk.is_empty() {
                continue;
            }
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&chunk);
            }
            written += chunk.len() as u64;
            let w = writer.get_or_insert_with(|| {
                BufWriter::with_capacity(
                    self.store.clone(),
                    Self::chunk_path(&dir, offset),
                    PART_SIZE,
                )
            });
            if let Err(e) = w.put(chunk).await {
                let _ = w.abort().await;
                return Err(storage(e));
            }
        }
        if let Some(mut w) = writer {
            // Completing the write is what makes the chunk visible, atomically.
            w.shutdown().await.map_err(Error::storage)?;
        }
        Ok(written)
    }

    async fn upload_len(&self, id: &str) -> Result<Option<u64>> {
        match self.chunks(id).await? {
            None => Ok(None),
            Some(chunks) => Ok(Some(Self::contiguous(&chunks)?)),
        }
    }

    async fn hash_upload(&self, id: &str, algorithm: Algorithm) -> Result<Digest> {
        let chunks = self.chunks(id).await?.ok_or(Error::UploadUnknown)?;
        Self::contiguous(&chunks)?;
        let mut hasher = Hasher::new(algorithm);
        self.stream_chunks(&chunks, |b| {
            hasher.update(b);
            Ok(())
        })
        .await?;
        Ok(hasher.finish())
    }

    async fn commit_upload(&self, id: &str, digest: &Digest) -> Result<()> {
        let chunks = self.chunks(id).await?.ok_or(Error::UploadUnknown)?;
        let size = Self::contiguous(&chunks)?;
        let target = self.blob_path(digest);
        if self.blob_size(digest).await?.is_some() {
            // Same verified content is already stored; never replace a visible blob.
            return Ok(());
        }
        match chunks.as_slice() {
            [only] if size <= MAX_COPY_BYTES => self
                .store
                .copy(&only.location, &target)
                .await
                .map_err(storage),
            [] => self
                .store
                .put(&target, PutPayload::new())
                .await
                .map(|_| ())
                .map_err(storage),
            _ => {
                let mut w = BufWriter::with_capacity(self.store.clone(), target, PART_SIZE);
                for c in &chunks {
                    let mut stream = self
                        .store
                        .get_opts(&c.location, GetOptions::default())
                        .await
                        .map_err(storage)?
                        .into_stream();
                    while let Some(bytes) = stream.next().await {
                        let put = match bytes {
                            Ok(b) => w.put(b).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = put {
                            let _ = w.abort().await;
                            return Err(storage(e));
                        }
                    }
                }
                w.shutdown().await.map_err(Error::storage)
            }
        }
    }

    async fn delete_upload(&self, id: &str) -> Result<()> {
        let dir = self.upload_dir(id)?;
        let all = self.list(&dir).await?;
        self.delete_all(all.into_iter().map(|m| m.location).collect())
            .await
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match self.store.head(&self.blob_path(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }

    async fn read_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader> {
        let result = self.get_blob(digest, range).await?;
        let stream = result.into_stream().map_err(std::io::Error::other);
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }

    async fn stream_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<ByteStream> {
        let result = self.get_blob(digest, range).await?;
        // The object store's own chunks go straight to the response body.
        Ok(Box::pin(
            result.into_stream().map_err(std::io::Error::other),
        ))
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<()> {
        self.delete_all(vec![self.blob_path(digest)]).await
    }

    async fn list_blobs(&self) -> Result<Vec<(Digest, i64)>> {
        let mut out = Vec::new();
        for meta in self.list(&self.key("blobs")).await? {
            let parts: Vec<_> = meta.location.parts().collect();
            let n = parts.len();
            if n < 3 {
                continue;
            }
            let (alg, hex) = (parts[n - 3].as_ref(), parts[n - 1].as_ref());
            if let Ok(d) = Digest::parse(&format!("{alg}:{hex}")) {
                out.push((d, meta.last_modified.timestamp()));
            }
        }
        Ok(out)
    }

    async fn clean_uploads(&self, keep: &[String]) -> Result<u64> {
        let keep: std::collections::HashSet<&str> = keep.iter().map(String::as_str).collect();
        let cutoff = unix_now().saturating_sub(CLEANUP_MIN_AGE_SECS);
        let mut removed = 0;
        for area in ["tmp", "uploads"] {
            let mut by_id: std::collections::BTreeMap<String, (i64, Vec<Path>)> =
                std::collections::BTreeMap::new();
            for meta in self.list(&self.key(area)).await? {
                let parts: Vec<_> = meta.location.parts().collect();
                let Some(id) = parts
                    .iter()
                    .position(|p| p.as_ref() == area)
                    .and_then(|i| parts.get(i + 1))
                else {
                    continue;
                };
                let entry = by_id.entry(id.as_ref().to_owned()).or_default();
                entry.0 = entry.0.max(meta.last_modified.timestamp());
                entry.1.push(meta.location);
            }
            for (id, (newest, locations)) in by_id {
                let dead = area == "tmp" || !keep.contains(id.as_str());
                if dead && newest < cutoff {
                    self.delete_all(locations).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn download_url(&self, digest: &Digest) -> Result<Option<String>> {
        let Some((signer, ttl)) = &self.presign else {
            return Ok(None);
        };
        let url = signer
            .signed_url(Method::GET, &self.blob_path(digest), *ttl)
            .await
            .map_err(storage)?;
        Ok(Some(url.to_string()))
    }

    async fn ready(&self) -> Result<()> {
        self.store
            .list_with_delimiter(Some(&self.key("blobs")))
            .await
            .map(|_| ())
            .map_err(storage)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
