//! The ports the domain consumes: where blob bytes live and where metadata lives.

use std::pin::Pin;

use async_trait::async_trait;
use bulwark_oci::{ByteRange, Digest, RepoName, Tag};
use bytes::Bytes;
use futures::Stream;
use tokio::io::AsyncRead;

use crate::Result;

pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// Chunk size of the default [`BlobStore::stream_blob`].
const STREAM_CHUNK: usize = 256 * 1024;

/// Content-addressed blob bytes and in-progress upload data.
///
/// Uploads are identified by an opaque id. Data is appended to a temporary object, and only
/// `commit_upload` (after the caller verified the digest) makes it visible under its digest.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Create an empty upload object. Ephemeral uploads (single-request pushes) are never
    /// resumed and are removed wholesale at start-up.
    async fn create_upload(&self, id: &str, ephemeral: bool) -> Result<()>;
    /// Append `data` at `offset`, discarding anything a crash left beyond it, and feed every
    /// byte written through `hasher`. Returns the new length.
    async fn append_upload(
        &self,
        id: &str,
        offset: u64,
        data: ByteStream,
        hasher: Option<&mut bulwark_oci::Hasher>,
    ) -> Result<u64>;
    /// Current length of an upload, `None` when it does not exist.
    async fn upload_len(&self, id: &str) -> Result<Option<u64>>;
    /// Digest of everything written to the upload so far (re-reads the data).
    async fn hash_upload(&self, id: &str, algorithm: bulwark_oci::Algorithm) -> Result<Digest>;
    /// Durably move the verified upload under `digest`; never replaces an existing blob.
    async fn commit_upload(&self, id: &str, digest: &Digest) -> Result<()>;
    /// Remove an upload's data; absent uploads are fine.
    async fn delete_upload(&self, id: &str) -> Result<()>;
    /// Size of a stored blob, `None` when absent.
    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Read a blob, or one range of it.
    async fn read_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader>;
    /// The same bytes as [`BlobStore::read_blob`] as a stream of chunks, for serving a
    /// response body; backends override it to hand over their own buffers without re-copying.
    async fn stream_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<ByteStream> {
        let reader = self.read_blob(digest, range).await?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            STREAM_CHUNK,
        )))
    }
    /// Delete a blob; absent blobs are fine.
    async fn delete_blob(&self, digest: &Digest) -> Result<()>;
    /// Every stored blob with its modification time (seconds since the epoch).
    async fn list_blobs(&self) -> Result<Vec<(Digest, i64)>>;
    /// Remove ephemeral uploads left by a crash, and session uploads not in `keep`.
    async fn clean_uploads(&self, keep: &[String]) -> Result<u64>;
    /// Check the storage is usable.
    async fn ready(&self) -> Result<()>;
    /// A short-lived URL from which a client may download the blob directly (a presigned
    /// object-store URL), when the store offers and is configured for that.
    async fn download_url(&self, _digest: &Digest) -> Result<Option<String>> {
        Ok(None)
    }
}

/// A lock on one digest across every process sharing the metadata store, released on drop.
/// Committing a blob and sweeping it in GC hold it (besides the in-process digest stripe), so
/// replicas sharing a bucket cannot delete what another replica just deduplicated against.
pub struct BlobLock(Option<Box<dyn Send + Sync>>);

impl BlobLock {
    /// No cross-process lock: the backend serves one process (SQLite in a locked data dir).
    pub fn none() -> Self {
        BlobLock(None)
    }

    pub fn held(guard: impl Send + Sync + 'static) -> Self {
        BlobLock(Some(Box::new(guard)))
    }
}

impl std::fmt::Debug for BlobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BlobLock(held)"
        } else {
            "BlobLock(none)"
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    pub id: String,
    pub repository: String,
    pub size: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
}

/// What the metadata store records for a pushed manifest.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Bytes,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
    /// Config and layers that must be linked to the repository, with their declared sizes.
    pub blobs: Vec<(Digest, u64)>,
    /// Child manifests (of an index) that must already be in the repository.
    pub children: Vec<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// Why a manifest could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutManifestRejection {
    MissingBlob(Digest),
    MissingChild(Digest),
    SizeMismatch {
        digest: Digest,
        declared: u64,
        actual: u64,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcCounts {
    pub manifests: u64,
    pub links: u64,
}

/// Repositories, manifests, tags, blob links and upload sessions.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    async fn ready(&self) -> Result<()>;

    /// Take the cross-process lock on `digest` (see [`BlobLock`]); waits while another process
    /// holds it.
    async fn lock_blob(&self, _digest: &Digest) -> Result<BlobLock> {
        Ok(BlobLock::none())
    }

    /// Try to become the one process running background job `job` (e.g. `gc`): `None` while
    /// another process holds it. The lock dies with its holder, so a job whose replica died
    /// is picked up by the next one that tries.
    async fn try_job_lock(&self, _job: &str) -> Result<Option<BlobLock>> {
        Ok(Some(BlobLock::none()))
    }

    async fn create_upload(&self, id: &str, repo: &RepoName, now: i64) -> Result<()>;
    async fn get_upload(&self, id: &str) -> Result<Option<UploadSession>>;
    async fn set_upload_size(&self, id: &str, size: u64, now: i64) -> Result<()>;
    async fn delete_upload(&self, id: &str) -> Result<()>;
    /// Ids of sessions last touched before `before`.
    async fn stale_uploads(&self, before: i64) -> Result<Vec<String>>;
    async fn all_uploads(&self) -> Result<Vec<String>>;

    /// Record a committed blob and link it to `repo`.
    async fn blob_committed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> Result<()>;
    /// [`Self::blob_committed`] and [`Self::delete_upload`] of the session that produced the
    /// blob, atomically where the backend can (one durable commit instead of two).
    async fn upload_completed(
        &self,
        upload_id: &str,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> Result<()> {
        self.blob_committed(repo, digest, size, now).await?;
        self.delete_upload(upload_id).await
    }
    /// Size of a blob linked to `repo`.
    async fn repo_blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>>;
    /// Size of a blob known anywhere in the registry.
    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Repositories that hold `digest`, for mount permission checks.
    async fn repos_with_blob(&self, digest: &Digest, limit: u32) -> Result<Vec<String>>;
    /// Link an existing blob into `repo`; `false` if the blob is unknown.
    async fn link_blob(&self, repo: &RepoName, digest: &Digest, now: i64) -> Result<bool>;
    /// Remove a blob from `repo`; `false` if it was not linked or a manifest of the
    /// repository still references it.
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool>;
    /// A manifest of `repo` that references `digest` as config or layer, if any.
    async fn manifest_using_blob(&self, repo: &RepoName, digest: &Digest)
    -> Result<Option<Digest>>;
    /// Up to `limit` manifests of `repo` that reference `digest` as config or layer.
    async fn manifests_using_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<Digest>> {
        let _ = limit;
        Ok(self
            .manifest_using_blob(repo, digest)
            .await?
            .into_iter()
            .collect())
    }
    /// Up to `limit` indexes of `repo` that list the manifest `digest`.
    async fn parent_manifests(
        &self,
        _repo: &RepoName,
        _digest: &Digest,
        _limit: u32,
    ) -> Result<Vec<Digest>> {
        Ok(Vec::new())
    }

    /// Check references and record the manifest (and tag) atomically.
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
        now: i64,
    ) -> Result<Result<(), PutManifestRejection>>;
    async fn get_manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>>;
    async fn get_manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> Result<Option<StoredManifest>>;
    /// Delete a manifest and every tag on it; `false` if absent.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<bool>;
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool>;
    /// Tags in lexical order after `last`; `None` when the repository is unknown.
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Option<Vec<String>>>;
    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<String>>;
    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>>;

    /// Delete untagged manifests unreachable from tags (via index children and referrer
    /// subjects) and last pushed before `cutoff`, then blob links no manifest of the
    /// repository references and created before `cutoff`. With `dry_run` only count.
    async fn gc_metadata(&self, cutoff: i64, dry_run: bool) -> Result<GcCounts>;
    /// Blobs a real run would remove after `gc_metadata`: those that would be left with no
    /// link, last linked before `cutoff`. For dry runs; touches nothing.
    async fn gc_dry_run_blobs(&self, cutoff: i64) -> Result<Vec<Digest>>;
    /// Blobs linked to no repository and last linked before `cutoff`.
    async fn unlinked_blobs(&self, cutoff: i64, limit: u32) -> Result<Vec<Digest>>;
    /// Forget a blob if it is still unlinked and older than `cutoff`; `true` if forgotten.
    async fn forget_blob_if_unlinked(&self, digest: &Digest, cutoff: i64) -> Result<bool>;
}
