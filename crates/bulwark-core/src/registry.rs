//! The registry service: every distribution-API operation, independent of HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bulwark_oci::manifest::ManifestKind;
use bulwark_oci::{Algorithm, ByteRange, Digest, Hasher, ParsedManifest, Reference, RepoName};
use bytes::Bytes;
use futures::StreamExt;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::locks::StripedLocks;
use crate::store::{
    BlobReader, BlobStore, ByteStream, MetadataStore, NewManifest, PutManifestRejection, Referrer,
    StoredManifest, UploadSession,
};

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub max_manifest_bytes: u64,
    /// Largest blob accepted on any upload path; `None` for no limit.
    pub max_blob_bytes: Option<u64>,
    /// Upload sessions untouched for this long are removed.
    pub upload_expiry_secs: i64,
    /// Largest page a listing returns, whatever `n` asks for.
    pub max_page: u32,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_blob_bytes: None,
            upload_expiry_secs: 24 * 3600,
            max_page: 10_000,
        }
    }
}

/// Result of a manifest push.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// A page of a listing and whether more entries follow it.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

pub struct Registry {
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) meta: Arc<dyn MetadataStore>,
    pub(crate) clock: Arc<dyn Clock>,
    config: RegistryConfig,
    pub(crate) digest_locks: StripedLocks,
    pub(crate) last_gc: std::sync::Mutex<Option<crate::gc::GcRun>>,
    pub(crate) gc_progress: std::sync::Mutex<Option<crate::gc::GcProgress>>,
    upload_locks: StripedLocks,
    /// Running hash of each in-progress upload, valid at the recorded length. A miss (restart,
    /// failed chunk) only costs a re-read at commit.
    hashers: Mutex<HashMap<String, (u64, Hasher)>>,
}

impl Registry {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetadataStore>,
        clock: Arc<dyn Clock>,
        config: RegistryConfig,
    ) -> Self {
        Registry {
            blobs,
            meta,
            clock,
            config,
            digest_locks: StripedLocks::default(),
            last_gc: std::sync::Mutex::new(None),
            gc_progress: std::sync::Mutex::new(None),
            upload_locks: StripedLocks::default(),
            hashers: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    pub async fn ready(&self) -> Result<()> {
        self.meta.ready().await?;
        self.blobs.ready().await
    }

    /// Start-up housekeeping: drop expired sessions and any upload data a crash left behind.
    pub async fn clean_uploads(&self) -> Result<u64> {
        let cutoff = self.clock.now() - self.config.upload_expiry_secs;
        let stale = self.meta.stale_uploads(cutoff).await?;
        for id in &stale {
            self.meta.delete_upload(id).await?;
            self.blobs.delete_upload(id).await?;
        }
        let keep = self.meta.all_uploads().await?;
        let removed = self.blobs.clean_uploads(&keep).await?;
        Ok(removed + stale.len() as u64)
    }

    // ---- uploads -------------------------------------------------------------------------

    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadSession> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = self.clock.now();
        self.blobs.create_upload(&id, false).await?;
        self.meta.create_upload(&id, repo, now).await?;
        self.cache_hasher(&id, 0, Hasher::new(Algorithm::Sha256));
        Ok(UploadSession {
            id,
            repository: repo.to_string(),
            size: 0,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadSession> {
        self.session(repo, id).await
    }

    /// Append a chunk. `range` is the client's Content-Range, `length` its Content-Length.
    pub async fn patch_upload(
        &self,
        repo: &RepoName,
        id: &str,
        range: Option<ByteRange>,
        length: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        let _guard = self.upload_locks.lock(id).await;
        let session = self.session(repo, id).await?;
        if let Some(r) = range {
            if r.start != session.size {
                return Err(Error::RangeInvalid {
                    expected: session.size,
                });
            }
            if length.is_some_and(|l| l != r.len()) {
                return Err(Error::SizeInvalid(
                    "Content-Length does not match Content-Range".into(),
                ));
            }
        }
        if let (Some(max), Some(len)) = (self.config.max_blob_bytes, length)
            && session.size.saturating_add(len) > max
        {
            return Err(Error::BlobTooLarge { limit: max });
        }
        let new_size = self.append(&session, body, true).await?;
        if let Some(expected) = range.map(|r| r.len()).or(length)
            && new_size - session.size != expected
        {
            return Err(Error::SizeInvalid(format!(
                "received {} bytes, expected {expected}",
                new_size - session.size
            )));
        }
        Ok(new_size)
    }

    /// Complete an upload with an optional final chunk and make the blob visible in `repo`.
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        body: Option<ByteStream>,
    ) -> Result<()> {
        let _guard = self.upload_locks.lock(id).await;
        let mut session = self.session(repo, id).await?;
        // Always append (possibly nothing): it also cuts off any bytes a broken chunk left
        // past the acknowledged length, so only acknowledged data is hashed and committed.
        let body = body.unwrap_or_else(|| Box::pin(futures::stream::empty()));
        // A refused final chunk (e.g. over the size limit) leaves the session usable.
        session.size = self.append(&session, body, false).await?;
        match self.commit(repo, id, digest, session.size).await {
            // The metadata row went with the commit; only the (already moved) data remains.
            Ok(()) => {
                self.take_hasher(id, u64::MAX);
                self.blobs.delete_upload(id).await
            }
            // A failed upload is over as well (the spec's PUT ends the session).
            Err(e) => {
                self.forget_upload(id).await?;
                Err(e)
            }
        }
    }

    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> Result<()> {
        let _guard = self.upload_locks.lock(id).await;
        self.session(repo, id).await?;
        self.forget_upload(id).await
    }

    /// Single-request push (`POST ?digest=` or a monolithic PUT without a session).
    pub async fn push_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: ByteStream,
    ) -> Result<()> {
        let id = format!("tmp-{}", uuid::Uuid::new_v4().simple());
        self.blobs.create_upload(&id, true).await?;
        let result = async {
            let mut hasher = Hasher::new(digest.algorithm());
            let (body, exceeded) = self.limited(body, 0);
            let size = self
                .blobs
                .append_upload(&id, 0, body, Some(&mut hasher))
                .await
                .map_err(|e| self.too_large_or(e, &exceeded))?;
            check_digest(digest, hasher.finish())?;
            self.commit_verified(repo, &id, None, digest, size).await
        }
        .await;
        // Commit moved the data away; otherwise drop the temporary object.
        self.blobs.delete_upload(&id).await?;
        result
    }

    async fn session(&self, repo: &RepoName, id: &str) -> Result<UploadSession> {
        match self.meta.get_upload(id).await? {
            Some(s) if s.repository == repo.as_str() => Ok(s),
            _ => Err(Error::UploadUnknown),
        }
    }

    /// Cut `body` off once the blob would exceed `max_blob_bytes`; the flag tells why it ended.
    fn limited(&self, body: ByteStream, already: u64) -> (ByteStream, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        let Some(max) = self.config.max_blob_bytes else {
            return (body, exceeded);
        };
        let flag = exceeded.clone();
        let mut total = already;
        let body = body.map(move |chunk| {
            let chunk = chunk?;
            total = total.saturating_add(chunk.len() as u64);
            if total > max {
                flag.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other("blob exceeds the size limit"));
            }
            Ok(chunk)
        });
        (Box::pin(body), exceeded)
    }

    fn too_large_or(&self, e: Error, exceeded: &AtomicBool) -> Error {
        match self.config.max_blob_bytes {
            Some(limit) if exceeded.load(Ordering::Relaxed) => Error::BlobTooLarge { limit },
            _ => e,
        }
    }

    /// Append to a session. `record`: persist the new length (a resumable chunk); the final
    /// PUT passes `false`, as its session ends with the commit that follows. A failed append
    /// always records what is durably there, so the session stays resumable.
    async fn append(&self, session: &UploadSession, body: ByteStream, record: bool) -> Result<u64> {
        let (body, exceeded) = self.limited(body, session.size);
        let cached = self.take_hasher(&session.id, session.size);
        let new_size = match cached {
            Some(mut hasher) => {
                let size = self
                    .blobs
                    .append_upload(&session.id, session.size, body, Some(&mut hasher))
                    .await;
                if let Ok(size) = size {
                    self.cache_hasher(&session.id, size, hasher);
                }
                size
            }
            None => {
                self.blobs
                    .append_upload(&session.id, session.size, body, None)
                    .await
            }
        };
        // Whatever happened, record what is durably the upload's length now.
        let size = match new_size {
            Ok(size) => size,
            Err(e) => {
                if let Ok(Some(len)) = self.blobs.upload_len(&session.id).await {
                    let _ = self
                        .meta
                        .set_upload_size(&session.id, len.min(session.size), self.clock.now())
                        .await;
                }
                return Err(self.too_large_or(e, &exceeded));
            }
        };
        if record {
            self.meta
                .set_upload_size(&session.id, size, self.clock.now())
                .await?;
        }
        Ok(size)
    }

    async fn commit(&self, repo: &RepoName, id: &str, digest: &Digest, size: u64) -> Result<()> {
        let actual = match self.take_hasher(id, size) {
            Some(h) if digest.algorithm() == Algorithm::Sha256 => h.finish(),
            _ => self.blobs.hash_upload(id, digest.algorithm()).await?,
        };
        check_digest(digest, actual)?;
        self.commit_verified(repo, id, Some(id), digest, size).await
    }

    /// Move verified data `id` under `digest` and record it; `session` names the upload
    /// session to close in the same metadata transaction.
    async fn commit_verified(
        &self,
        repo: &RepoName,
        id: &str,
        session: Option<&str>,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let _guard = self.digest_locks.lock(digest).await;
        let _shared = self.meta.lock_blob(digest).await?;
        self.blobs.commit_upload(id, digest).await?;
        let now = self.clock.now();
        match session {
            Some(s) => self.meta.upload_completed(s, repo, digest, size, now).await,
            None => self.meta.blob_committed(repo, digest, size, now).await,
        }
    }

    async fn forget_upload(&self, id: &str) -> Result<()> {
        self.take_hasher(id, u64::MAX);
        self.meta.delete_upload(id).await?;
        self.blobs.delete_upload(id).await
    }

    fn cache_hasher(&self, id: &str, size: u64, hasher: Hasher) {
        if let Ok(mut map) = self.hashers.lock() {
            map.insert(id.to_owned(), (size, hasher));
        }
    }

    fn take_hasher(&self, id: &str, size: u64) -> Option<Hasher> {
        let mut map = self.hashers.lock().ok()?;
        match map.remove(id) {
            Some((s, h)) if s == size => Some(h),
            _ => None,
        }
    }

    // ---- blobs ---------------------------------------------------------------------------

    /// Mount `digest` into `repo`. With `from`, the blob must be in that repository; without,
    /// it must be readable from one of `readable` (the caller's authorised repositories), or
    /// anywhere when `readable` is `None`. Returns whether the mount happened.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool> {
        if let Some(from) = from
            && self.meta.repo_blob_size(from, digest).await?.is_none()
        {
            return Ok(false);
        }
        self.meta.link_blob(repo, digest, self.clock.now()).await
    }

    /// Repositories holding `digest`, for deciding whether a `from`-less mount is allowed.
    pub async fn repositories_with_blob(&self, digest: &Digest) -> Result<Vec<String>> {
        self.meta.repos_with_blob(digest, 100).await
    }

    /// Up to `limit` manifests of `repo` that use the blob `digest`.
    pub async fn manifests_using_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<Digest>> {
        self.meta.manifests_using_blob(repo, digest, limit).await
    }

    /// Up to `limit` indexes of `repo` that list the manifest `digest`.
    pub async fn parent_manifests(
        &self,
        repo: &RepoName,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<Digest>> {
        self.meta.parent_manifests(repo, digest, limit).await
    }

    pub async fn stat_blob(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        self.meta
            .repo_blob_size(repo, digest)
            .await?
            .ok_or_else(|| Error::BlobUnknown(digest.clone()))
    }

    /// Where to redirect a client for the blob's bytes instead of streaming them, if anywhere.
    pub async fn blob_download_url(&self, digest: &Digest) -> Result<Option<String>> {
        self.blobs.download_url(digest).await
    }

    pub async fn read_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader> {
        self.blobs.read_blob(digest, range).await
    }

    /// A blob (or a range) as a stream of chunks, for a response body.
    pub async fn stream_blob(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        self.blobs.stream_blob(digest, range).await
    }

    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        if self.meta.unlink_blob(repo, digest).await? {
            return Ok(());
        }
        match self.meta.manifest_using_blob(repo, digest).await? {
            Some(manifest) => Err(Error::BlobInUse {
                blob: digest.clone(),
                manifest,
            }),
            None => Err(Error::BlobUnknown(digest.clone())),
        }
    }

    // ---- manifests -----------------------------------------------------------------------

    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<PushedManifest> {
        let limit = self.config.max_manifest_bytes;
        if body.len() as u64 > limit {
            return Err(Error::ManifestTooLarge {
                size: body.len() as u64,
                limit,
            });
        }
        let parsed = ParsedManifest::parse(content_type, &body)?;
        let (digest, tag) = match reference {
            Reference::Digest(d) => {
                check_digest(d, Digest::of_bytes(d.algorithm(), &body))?;
                (d.clone(), None)
            }
            Reference::Tag(t) => (Digest::sha256_of(&body), Some(t)),
        };
        let new = NewManifest {
            digest: digest.clone(),
            media_type: parsed.media_type.clone(),
            subject: parsed.subject.as_ref().map(|s| s.digest.clone()),
            artifact_type: parsed.referrer_artifact_type().map(str::to_owned),
            annotations: parsed
                .annotations
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok()),
            blobs: parsed
                .required_blobs()
                .map(|d| (d.digest.clone(), d.size))
                .collect(),
            children: match parsed.kind {
                ManifestKind::Index => parsed.manifests.iter().map(|d| d.digest.clone()).collect(),
                ManifestKind::Image => Vec::new(),
            },
            content: body,
        };
        match self
            .meta
            .put_manifest(repo, &new, tag, self.clock.now())
            .await?
        {
            Ok(()) => Ok(PushedManifest {
                digest,
                subject: new.subject,
            }),
            Err(PutManifestRejection::MissingBlob(d) | PutManifestRejection::MissingChild(d)) => {
                Err(Error::ManifestBlobUnknown(d))
            }
            Err(PutManifestRejection::SizeMismatch {
                digest,
                declared,
                actual,
            }) => Err(Error::ManifestInvalid(format!(
                "descriptor of {digest} declares size {declared}, the blob has {actual} bytes"
            ))),
        }
    }

    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        let found = match reference {
            Reference::Digest(d) => self.meta.get_manifest_by_digest(repo, d).await?,
            Reference::Tag(t) => self.meta.get_manifest_by_tag(repo, t).await?,
        };
        found.ok_or(Error::ManifestUnknown)
    }

    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let deleted = match reference {
            Reference::Digest(d) => self.meta.delete_manifest(repo, d).await?,
            Reference::Tag(t) => self.meta.delete_tag(repo, t).await?,
        };
        if deleted {
            Ok(())
        } else {
            Err(Error::ManifestUnknown)
        }
    }

    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        self.meta.referrers(repo, subject, artifact_type).await
    }

    // ---- listings ------------------------------------------------------------------------

    pub async fn list_tags(
        &self,
        repo: &RepoName,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page> {
        let limit = self.page_limit(n);
        let mut items = self
            .meta
            .list_tags(repo, last, limit.map(|l| l + 1))
            .await?
            .ok_or(Error::NameUnknown)?;
        Ok(page(&mut items, limit))
    }

    pub async fn catalog(&self, n: Option<usize>, last: Option<&str>) -> Result<Page> {
        let limit = self.page_limit(n);
        let mut items = self
            .meta
            .list_repositories(last, limit.map(|l| l + 1))
            .await?;
        Ok(page(&mut items, limit))
    }

    fn page_limit(&self, n: Option<usize>) -> Option<u32> {
        n.map(|n| {
            u32::try_from(n)
                .unwrap_or(u32::MAX)
                .min(self.config.max_page)
        })
    }

    pub fn blob_store(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }
}

fn page(items: &mut Vec<String>, limit: Option<u32>) -> Page {
    let more = limit.is_some_and(|l| items.len() > l as usize);
    if let Some(l) = limit {
        items.truncate(l as usize);
    }
    Page {
        items: std::mem::take(items),
        more,
    }
}

fn check_digest(expected: &Digest, actual: Digest) -> Result<()> {
    if *expected == actual {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            expected: expected.clone(),
            actual,
        })
    }
}
