//! The registry service's domain logic on the real backends: a [`Registry`] over
//! `FsBlobStore` + `SqliteStore` in a temporary directory, with a clock the tests advance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use bulwark_core::gc::{GcOptions, GcReport};
use bulwark_core::store::{
    GcCounts, NewManifest, PutManifestRejection, Referrer, StoredManifest, UploadSession,
};
use bulwark_core::{
    ByteStream, Clock, Error, MetadataStore, Registry, RegistryConfig, SystemClock,
};
use bulwark_meta::SqliteStore;
use bulwark_oci::media_types::{DOCKER_MANIFEST_V1_SIGNED, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use bulwark_oci::{Algorithm, ByteRange, Digest, Reference, RepoName, Tag};
use bulwark_storage::FsBlobStore;
use bytes::Bytes;
use serde_json::json;
use tokio::io::AsyncReadExt;

// ---- fixtures -----------------------------------------------------------------------------

/// A clock that only moves when told to.
struct TestClock(AtomicI64);

impl TestClock {
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A registry on a temporary data directory: blobs under `root`, metadata in `db`.
struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    db: PathBuf,
    config: RegistryConfig,
    clock: Arc<TestClock>,
    meta: Arc<SqliteStore>,
    reg: Arc<Registry>,
}

impl Env {
    async fn new() -> Self {
        Self::with_config(RegistryConfig::default()).await
    }

    async fn with_config(config: RegistryConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let db = dir.path().join("meta.db");
        // Start at the real time, so file modification times and the clock agree.
        let clock = Arc::new(TestClock(AtomicI64::new(SystemClock.now())));
        let (meta, reg) = open_registry(&root, &db, &clock, &config).await;
        Env {
            _dir: dir,
            root,
            db,
            config,
            clock,
            meta,
            reg,
        }
    }

    /// A new registry process on the same directories: every in-memory cache is cold.
    async fn restart(&mut self) {
        let (meta, reg) = open_registry(&self.root, &self.db, &self.clock, &self.config).await;
        self.meta = meta;
        self.reg = reg;
    }

    fn blob_file(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    fn files_in(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every file under `blobs/`, however deep.
    fn blob_files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.join("blobs"), &mut out);
        out.sort();
        out
    }

    async fn gc(&self, grace_secs: i64, dry_run: bool) -> GcReport {
        self.reg
            .collect_garbage(GcOptions {
                grace_secs,
                dry_run,
            })
            .await
            .unwrap()
    }
}

async fn open_registry(
    root: &Path,
    db: &Path,
    clock: &Arc<TestClock>,
    config: &RegistryConfig,
) -> (Arc<SqliteStore>, Arc<Registry>) {
    let blobs = Arc::new(FsBlobStore::open(root).await.unwrap());
    let meta = Arc::new(SqliteStore::open(db).await.unwrap());
    let reg = Registry::new(blobs, meta.clone(), clock.clone(), config.clone());
    reg.ready().await.unwrap();
    (meta, Arc::new(reg))
}

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn tag_ref(name: &str) -> Reference {
    Reference::Tag(Tag::parse(name).unwrap())
}

/// `n` deterministic pseudo-random bytes (xorshift), different per seed.
fn data(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn body(chunks: &[&[u8]]) -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> = chunks
        .iter()
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(items))
}

fn range(start: u64, len: u64) -> Option<ByteRange> {
    Some(ByteRange {
        start,
        end: start + len - 1,
    })
}

async fn read(reg: &Registry, d: &Digest) -> Vec<u8> {
    let mut out = Vec::new();
    reg.read_blob(d, None)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

#[derive(Debug, Clone)]
struct Desc {
    digest: Digest,
    size: u64,
}

async fn push(reg: &Registry, r: &RepoName, content: &[u8]) -> Desc {
    let digest = Digest::sha256_of(content);
    reg.push_blob(r, &digest, body(&[content])).await.unwrap();
    Desc {
        digest,
        size: content.len() as u64,
    }
}

fn descriptor(media_type: &str, d: &Desc) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": d.digest.to_string(), "size": d.size})
}

fn image_json(config: &Desc, layers: &[&Desc]) -> serde_json::Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers
            .iter()
            .map(|l| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", l))
            .collect::<Vec<_>>(),
    })
}

fn image(config: &Desc, layers: &[&Desc]) -> Bytes {
    Bytes::from(serde_json::to_vec(&image_json(config, layers)).unwrap())
}

async fn put(reg: &Registry, r: &RepoName, reference: &Reference, m: &Bytes) -> Digest {
    reg.put_manifest(r, reference, Some(OCI_MANIFEST), m.clone())
        .await
        .unwrap()
        .digest
}

/// Push a config and layers into `r` and tag an image over them.
async fn push_image(
    reg: &Registry,
    r: &RepoName,
    tag: &str,
    layers: &[&[u8]],
) -> (Digest, Vec<Desc>) {
    let config = push(reg, r, format!(r#"{{"image":"{r}:{tag}"}}"#).as_bytes()).await;
    let mut descs = vec![config.clone()];
    for l in layers {
        descs.push(push(reg, r, l).await);
    }
    let layer_refs: Vec<&Desc> = descs[1..].iter().collect();
    let m = image(&config, &layer_refs);
    (put(reg, r, &tag_ref(tag), &m).await, descs)
}

fn set_mtime(path: &Path, ago: Duration) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

const TWO_DAYS: Duration = Duration::from_secs(2 * 24 * 3600);

macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!(
                "expected Err({}), got {:?}",
                stringify!($pattern),
                other.map(|_| ())
            ),
        }
    };
}

// ---- uploads ------------------------------------------------------------------------------

#[tokio::test]
async fn chunked_upload_with_running_hash() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("team/app"));
    let content = data(1, 300_000);
    let digest = Digest::sha256_of(&content);

    let s = reg.start_upload(&r).await.unwrap();
    assert_eq!((s.size, s.repository.as_str()), (0, "team/app"));
    assert_eq!(env.files_in("uploads"), std::slice::from_ref(&s.id));

    // A chunk with Content-Range and Content-Length, arriving as two body frames.
    let n = reg
        .patch_upload(
            &r,
            &s.id,
            range(0, 100_000),
            Some(100_000),
            body(&[&content[..40_000], &content[40_000..100_000]]),
        )
        .await
        .unwrap();
    assert_eq!(n, 100_000);
    assert_eq!(reg.upload_status(&r, &s.id).await.unwrap().size, 100_000);
    // The session belongs to its repository.
    assert_err!(
        reg.upload_status(&repo("team/other"), &s.id).await,
        Error::UploadUnknown
    );
    // A streamed chunk without headers.
    let n = reg
        .patch_upload(&r, &s.id, None, None, body(&[&content[100_000..250_000]]))
        .await
        .unwrap();
    assert_eq!(n, 250_000);

    // The final chunk comes with the closing PUT.
    reg.finish_upload(&r, &s.id, &digest, Some(body(&[&content[250_000..]])))
        .await
        .unwrap();
    assert_eq!(reg.stat_blob(&r, &digest).await.unwrap(), 300_000);
    assert_eq!(read(reg, &digest).await, content);
    assert_eq!(std::fs::read(env.blob_file(&digest)).unwrap(), content);
    // The session is over and its data moved away.
    assert_err!(reg.upload_status(&r, &s.id).await, Error::UploadUnknown);
    assert!(env.meta.get_upload(&s.id).await.unwrap().is_none());
    assert!(env.files_in("uploads").is_empty());
    // Ranged reads return the requested slice.
    let mut part = Vec::new();
    reg.read_blob(&digest, Some(ByteRange { start: 10, end: 19 }))
        .await
        .unwrap()
        .read_to_end(&mut part)
        .await
        .unwrap();
    assert_eq!(part, &content[10..20]);
}

#[tokio::test]
async fn chunked_upload_completes_after_restart() {
    let mut env = Env::new().await;
    let r = repo("app");
    let content = data(2, 70_000);
    let digest = Digest::sha256_of(&content);

    let id = env.reg.start_upload(&r).await.unwrap().id;
    env.reg
        .patch_upload(
            &r,
            &id,
            range(0, 30_000),
            Some(30_000),
            body(&[&content[..30_000]]),
        )
        .await
        .unwrap();

    env.restart().await;
    let reg = &env.reg;
    // The session and its length survive; the new process has no running hash for it.
    assert_eq!(reg.upload_status(&r, &id).await.unwrap().size, 30_000);
    reg.patch_upload(
        &r,
        &id,
        range(30_000, 20_000),
        Some(20_000),
        body(&[&content[30_000..50_000]]),
    )
    .await
    .unwrap();
    reg.finish_upload(&r, &id, &digest, Some(body(&[&content[50_000..]])))
        .await
        .unwrap();
    assert_eq!(reg.stat_blob(&r, &digest).await.unwrap(), 70_000);
    assert_eq!(read(reg, &digest).await, content);
}

#[tokio::test]
async fn commit_after_restart_still_verifies_the_digest() {
    let mut env = Env::new().await;
    let r = repo("app");
    let content = data(3, 10_000);
    let id = env.reg.start_upload(&r).await.unwrap().id;
    env.reg
        .patch_upload(&r, &id, None, None, body(&[&content]))
        .await
        .unwrap();
    env.restart().await;

    // A digest of other content must be refused by re-reading the data.
    let claimed = Digest::sha256_of(b"something else");
    let err = env
        .reg
        .finish_upload(&r, &id, &claimed, None)
        .await
        .unwrap_err();
    let Error::DigestMismatch { expected, actual } = err else {
        panic!("expected DigestMismatch, got {err:?}");
    };
    assert_eq!(expected, claimed);
    assert_eq!(actual, Digest::sha256_of(&content));
    assert_err!(env.reg.stat_blob(&r, &claimed).await, Error::BlobUnknown(_));
    assert_err!(env.reg.stat_blob(&r, &actual).await, Error::BlobUnknown(_));
    assert!(env.blob_files().is_empty());
}

#[tokio::test]
async fn digest_mismatch_on_finish_leaves_nothing() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let content = data(4, 5_000);
    let actual = Digest::sha256_of(&content);
    let claimed = Digest::sha256_of(b"not the content");

    let id = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(
        &r,
        &id,
        range(0, 2_000),
        Some(2_000),
        body(&[&content[..2_000]]),
    )
    .await
    .unwrap();
    let err = reg
        .finish_upload(&r, &id, &claimed, Some(body(&[&content[2_000..]])))
        .await
        .unwrap_err();
    let Error::DigestMismatch {
        expected,
        actual: got,
    } = err
    else {
        panic!("expected DigestMismatch, got {err:?}");
    };
    assert_eq!((expected, got), (claimed.clone(), actual.clone()));

    for d in [&claimed, &actual] {
        assert_err!(reg.stat_blob(&r, d).await, Error::BlobUnknown(_));
        assert_err!(reg.read_blob(d, None).await, Error::BlobUnknown(_));
        assert_eq!(env.meta.blob_size(d).await.unwrap(), None);
    }
    assert!(env.blob_files().is_empty());
    // The session is gone, data and metadata.
    assert_err!(reg.upload_status(&r, &id).await, Error::UploadUnknown);
    assert_err!(
        reg.patch_upload(&r, &id, None, None, body(&[b"x"])).await,
        Error::UploadUnknown
    );
    assert!(env.files_in("uploads").is_empty());
    assert!(env.meta.all_uploads().await.unwrap().is_empty());
}

#[tokio::test]
async fn out_of_order_chunk_is_refused() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let content = data(5, 30);
    let id = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(&r, &id, range(0, 10), Some(10), body(&[&content[..10]]))
        .await
        .unwrap();

    // A gap, and a resend of what is already there.
    assert_err!(
        reg.patch_upload(&r, &id, range(20, 10), Some(10), body(&[&content[20..]]))
            .await,
        Error::RangeInvalid { expected: 10 }
    );
    assert_err!(
        reg.patch_upload(&r, &id, range(0, 10), Some(10), body(&[&content[..10]]))
            .await,
        Error::RangeInvalid { expected: 10 }
    );
    // Content-Length contradicting Content-Range.
    assert_err!(
        reg.patch_upload(&r, &id, range(10, 10), Some(9), body(&[&content[10..20]]))
            .await,
        Error::SizeInvalid(_)
    );
    // None of that changed the upload.
    assert_eq!(reg.upload_status(&r, &id).await.unwrap().size, 10);
    reg.patch_upload(&r, &id, range(10, 20), Some(20), body(&[&content[10..]]))
        .await
        .unwrap();
    let digest = Digest::sha256_of(&content);
    reg.finish_upload(&r, &id, &digest, None).await.unwrap();
    assert_eq!(read(reg, &digest).await, content);
}

#[tokio::test]
async fn cancelled_upload_is_gone() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let id = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(&r, &id, None, None, body(&[b"abc"]))
        .await
        .unwrap();
    assert_err!(
        reg.cancel_upload(&repo("other"), &id).await,
        Error::UploadUnknown
    );
    reg.cancel_upload(&r, &id).await.unwrap();
    assert_err!(reg.upload_status(&r, &id).await, Error::UploadUnknown);
    assert_err!(reg.cancel_upload(&r, &id).await, Error::UploadUnknown);
    assert!(env.files_in("uploads").is_empty());
}

#[tokio::test]
async fn sha512_uploads_are_verified_and_stored_under_their_algorithm() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let content = data(6, 4_000);
    let d512 = Digest::of_bytes(Algorithm::Sha512, &content);

    let id = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(&r, &id, None, None, body(&[&content]))
        .await
        .unwrap();
    reg.finish_upload(&r, &id, &d512, None).await.unwrap();
    assert_eq!(reg.stat_blob(&r, &d512).await.unwrap(), 4_000);
    assert!(
        env.blob_file(&d512)
            .starts_with(env.root.join("blobs/sha512"))
    );
    assert_eq!(std::fs::read(env.blob_file(&d512)).unwrap(), content);

    // A sha512 digest of other content is refused.
    let other = data(7, 100);
    let wrong = Digest::of_bytes(Algorithm::Sha512, b"nope");
    assert_err!(
        reg.push_blob(&r, &wrong, body(&[&other])).await,
        Error::DigestMismatch { .. }
    );
    let right = Digest::of_bytes(Algorithm::Sha512, &other);
    reg.push_blob(&r, &right, body(&[&other])).await.unwrap();
    assert_eq!(read(reg, &right).await, other);
}

/// A chunk whose body breaks off (client gone) after more than a write buffer's worth of
/// data reached the file: the session stays at the acknowledged length and resumes from it.
#[tokio::test]
async fn upload_resumes_after_a_broken_chunk() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let content = data(14, 3 * 1024 * 1024);
    let digest = Digest::sha256_of(&content);
    let id = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(
        &r,
        &id,
        range(0, 1_000),
        Some(1_000),
        body(&[&content[..1_000]]),
    )
    .await
    .unwrap();

    // 1.5 MiB of other bytes, then the connection drops.
    let junk = data(15, 1_536 * 1024);
    let broken: ByteStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from(junk)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )),
    ]));
    assert_err!(
        reg.patch_upload(&r, &id, None, None, broken).await,
        Error::Body(_)
    );
    assert_eq!(reg.upload_status(&r, &id).await.unwrap().size, 1_000);
    // The broken chunk did reach the file: resuming has to cut it off.
    let on_disk = std::fs::metadata(env.root.join("uploads").join(&id))
        .unwrap()
        .len();
    assert!(on_disk > 1_000, "{on_disk} bytes on disk");

    reg.patch_upload(
        &r,
        &id,
        range(1_000, 1_000_000),
        Some(1_000_000),
        body(&[&content[1_000..1_001_000]]),
    )
    .await
    .unwrap();
    reg.finish_upload(&r, &id, &digest, Some(body(&[&content[1_001_000..]])))
        .await
        .unwrap();
    assert_eq!(
        reg.stat_blob(&r, &digest).await.unwrap(),
        content.len() as u64
    );
    assert_eq!(Digest::sha256_of(&read(reg, &digest).await), digest);
    assert_eq!(
        std::fs::metadata(env.blob_file(&digest)).unwrap().len(),
        content.len() as u64
    );
}

/// Start an upload with `acked` acknowledged bytes, then break a chunk off after `junk` bytes
/// reached the file.
async fn upload_with_broken_tail(env: &Env, r: &RepoName, acked: &[u8], junk: &[u8]) -> String {
    let reg = &env.reg;
    let id = reg.start_upload(r).await.unwrap().id;
    reg.patch_upload(r, &id, None, None, body(&[acked]))
        .await
        .unwrap();
    let broken: ByteStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::copy_from_slice(junk)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )),
    ]));
    assert_err!(
        reg.patch_upload(r, &id, None, None, broken).await,
        Error::Body(_)
    );
    assert_eq!(
        reg.upload_status(r, &id).await.unwrap().size,
        acked.len() as u64
    );
    id
}

/// Closing the upload right after a broken chunk: the blob is the acknowledged bytes.
#[tokio::test]
async fn finish_after_a_broken_chunk_commits_only_acknowledged_bytes() {
    let env = Env::new().await;
    let r = repo("app");
    let acked = data(18, 1_000);
    let id = upload_with_broken_tail(&env, &r, &acked, &data(19, 1_536 * 1024)).await;
    let digest = Digest::sha256_of(&acked);
    env.reg.finish_upload(&r, &id, &digest, None).await.unwrap();
    assert_eq!(env.reg.stat_blob(&r, &digest).await.unwrap(), 1_000);
    assert_eq!(read(&env.reg, &digest).await, acked);
}

/// The flip side: a client that knows how much of its broken chunk reached the disk can have
/// never-acknowledged bytes committed, and the recorded size then disagrees with the file.
#[tokio::test]
async fn finish_after_a_broken_chunk_rejects_a_digest_over_unacknowledged_bytes() {
    let env = Env::new().await;
    let r = repo("app");
    let acked = data(20, 1_000);
    let junk = data(21, 1_536 * 1024);
    let id = upload_with_broken_tail(&env, &r, &acked, &junk).await;
    let everything = Digest::sha256_of(&[acked.as_slice(), junk.as_slice()].concat());
    let result = env.reg.finish_upload(&r, &id, &everything, None).await;
    let recorded = env.reg.stat_blob(&r, &everything).await.ok();
    let on_disk = std::fs::metadata(env.blob_file(&everything))
        .ok()
        .map(|m| m.len());
    assert!(
        matches!(result, Err(Error::DigestMismatch { .. })),
        "accepted: recorded size {recorded:?}, file size {on_disk:?}"
    );
}

#[tokio::test]
async fn empty_blob_upload() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let empty = Digest::sha256_of(b"");
    let id = reg.start_upload(&r).await.unwrap().id;
    reg.finish_upload(&r, &id, &empty, None).await.unwrap();
    assert_eq!(reg.stat_blob(&r, &empty).await.unwrap(), 0);
    assert!(read(reg, &empty).await.is_empty());
    // And as a single-request push into another repository.
    reg.push_blob(&repo("other"), &empty, body(&[]))
        .await
        .unwrap();
    assert_eq!(reg.stat_blob(&repo("other"), &empty).await.unwrap(), 0);
}

#[tokio::test]
async fn blob_size_limit_on_every_upload_path() {
    let env = Env::with_config(RegistryConfig {
        max_blob_bytes: Some(1_000),
        ..RegistryConfig::default()
    })
    .await;
    let (reg, r) = (&env.reg, repo("app"));
    let content = data(16, 1_001);

    // Single request: one byte over is refused and leaves nothing; exactly the limit is fine.
    let over = Digest::sha256_of(&content);
    assert_err!(
        reg.push_blob(&r, &over, body(&[&content[..600], &content[600..]]))
            .await,
        Error::BlobTooLarge { limit: 1_000 }
    );
    assert_err!(reg.stat_blob(&r, &over).await, Error::BlobUnknown(_));
    assert!(env.files_in("tmp").is_empty());
    assert!(env.blob_files().is_empty());
    push(reg, &r, &content[..1_000]).await;

    // Chunked: refused up front when the declared length is too much, or while streaming.
    let id = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(&r, &id, range(0, 600), Some(600), body(&[&content[..600]]))
        .await
        .unwrap();
    assert_err!(
        reg.patch_upload(
            &r,
            &id,
            range(600, 401),
            Some(401),
            body(&[&content[600..]])
        )
        .await,
        Error::BlobTooLarge { limit: 1_000 }
    );
    assert_err!(
        reg.patch_upload(
            &r,
            &id,
            None,
            None,
            body(&[&content[600..800], &content[800..]])
        )
        .await,
        Error::BlobTooLarge { limit: 1_000 }
    );
    assert_eq!(reg.upload_status(&r, &id).await.unwrap().size, 600);
    assert_err!(
        reg.finish_upload(&r, &id, &over, Some(body(&[&content[600..]])))
            .await,
        Error::BlobTooLarge { limit: 1_000 }
    );
    assert_err!(reg.stat_blob(&r, &over).await, Error::BlobUnknown(_));
    // The session is still usable up to the limit.
    assert_eq!(reg.upload_status(&r, &id).await.unwrap().size, 600);
    let exact = Digest::sha256_of(&data(17, 1_000));
    let rest = data(17, 1_000);
    let id2 = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(&r, &id2, None, None, body(&[&rest[..999]]))
        .await
        .unwrap();
    reg.finish_upload(&r, &id2, &exact, Some(body(&[&rest[999..]])))
        .await
        .unwrap();
    assert_eq!(reg.stat_blob(&r, &exact).await.unwrap(), 1_000);
}

#[tokio::test]
async fn push_blob_with_wrong_digest_stores_nothing() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let content = data(8, 50_000);
    let actual = Digest::sha256_of(&content);
    let claimed = Digest::sha256_of(b"other");

    let err = reg
        .push_blob(
            &r,
            &claimed,
            body(&[&content[..25_000], &content[25_000..]]),
        )
        .await
        .unwrap_err();
    let Error::DigestMismatch {
        expected,
        actual: got,
    } = err
    else {
        panic!("expected DigestMismatch, got {err:?}");
    };
    assert_eq!((expected, got), (claimed.clone(), actual.clone()));
    for d in [&claimed, &actual] {
        assert_err!(reg.stat_blob(&r, d).await, Error::BlobUnknown(_));
        assert_eq!(env.meta.blob_size(d).await.unwrap(), None);
    }
    assert!(env.blob_files().is_empty());
    assert!(env.files_in("tmp").is_empty());
    assert!(env.reg.catalog(None, None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn push_blob_deduplicates_across_repositories() {
    let env = Env::new().await;
    let reg = &env.reg;
    let content = data(9, 1_000);
    let a = push(reg, &repo("a"), &content).await;
    let b = push(reg, &repo("b"), &content).await;
    assert_eq!(a.digest, b.digest);
    assert_eq!(env.blob_files(), [env.blob_file(&a.digest)]);
    assert_eq!(reg.stat_blob(&repo("a"), &a.digest).await.unwrap(), 1_000);
    assert_eq!(reg.stat_blob(&repo("b"), &a.digest).await.unwrap(), 1_000);
    assert_err!(
        reg.stat_blob(&repo("c"), &a.digest).await,
        Error::BlobUnknown(_)
    );
    assert_eq!(read(reg, &a.digest).await, content);
    assert!(env.files_in("tmp").is_empty());

    // Deleting from one repository leaves the other's link and the data.
    reg.delete_blob(&repo("a"), &a.digest).await.unwrap();
    assert_err!(
        reg.delete_blob(&repo("a"), &a.digest).await,
        Error::BlobUnknown(_)
    );
    assert_err!(
        reg.stat_blob(&repo("a"), &a.digest).await,
        Error::BlobUnknown(_)
    );
    assert_eq!(reg.stat_blob(&repo("b"), &a.digest).await.unwrap(), 1_000);
}

#[tokio::test]
async fn mount_requires_the_source_repository_to_hold_the_blob() {
    let env = Env::new().await;
    let reg = &env.reg;
    let (src, dst) = (repo("src"), repo("dst"));
    let blob = push(reg, &src, &data(10, 500)).await;

    // `from` a repository that does not have it: no mount.
    assert!(
        !reg.mount_blob(&dst, &blob.digest, Some(&repo("empty")))
            .await
            .unwrap()
    );
    assert_err!(
        reg.stat_blob(&dst, &blob.digest).await,
        Error::BlobUnknown(_)
    );
    // `from` the right one.
    assert!(
        reg.mount_blob(&dst, &blob.digest, Some(&src))
            .await
            .unwrap()
    );
    assert_eq!(reg.stat_blob(&dst, &blob.digest).await.unwrap(), 500);
    // Without `from`: anywhere in the registry will do.
    assert!(
        reg.mount_blob(&repo("dst2"), &blob.digest, None)
            .await
            .unwrap()
    );
    assert_eq!(
        reg.stat_blob(&repo("dst2"), &blob.digest).await.unwrap(),
        500
    );
    // An unknown blob can't be mounted either way.
    let unknown = Digest::sha256_of(b"unknown");
    assert!(!reg.mount_blob(&dst, &unknown, None).await.unwrap());
    assert!(!reg.mount_blob(&dst, &unknown, Some(&src)).await.unwrap());
    assert_eq!(
        reg.repositories_with_blob(&blob.digest).await.unwrap(),
        ["dst", "dst2", "src"]
    );
    // Mounts share the one file.
    assert_eq!(env.blob_files().len(), 1);
    // A mounted blob can be referenced by a manifest in its new repository.
    let cfg = push(reg, &dst, b"{}").await;
    put(reg, &dst, &tag_ref("v1"), &image(&cfg, &[&blob])).await;
}

// ---- manifests ----------------------------------------------------------------------------

#[tokio::test]
async fn put_and_get_manifests() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let cfg = push(reg, &r, b"{\"os\":\"linux\"}").await;
    let layer = push(reg, &r, &data(11, 3_000)).await;
    let m = image(&cfg, &[&layer]);

    let pushed = reg
        .put_manifest(&r, &tag_ref("v1"), Some(OCI_MANIFEST), m.clone())
        .await
        .unwrap();
    assert_eq!(pushed.digest, Digest::sha256_of(&m));
    assert_eq!(pushed.subject, None);
    for reference in [tag_ref("v1"), Reference::Digest(pushed.digest.clone())] {
        let got = reg.get_manifest(&r, &reference).await.unwrap();
        assert_eq!(got.content, m);
        assert_eq!(got.media_type, OCI_MANIFEST);
        assert_eq!(got.digest, pushed.digest);
    }
    assert_err!(
        reg.get_manifest(&r, &tag_ref("v2")).await,
        Error::ManifestUnknown
    );
    assert_err!(
        reg.get_manifest(&repo("other"), &tag_ref("v1")).await,
        Error::ManifestUnknown
    );

    // PUT by the right digest; media type from the body when the header is absent.
    let m2 = image(&cfg, &[]);
    let d2 = Digest::sha256_of(&m2);
    let pushed = reg
        .put_manifest(&r, &Reference::Digest(d2.clone()), None, m2.clone())
        .await
        .unwrap();
    assert_eq!(pushed.digest, d2);
    assert_eq!(
        reg.get_manifest(&r, &Reference::Digest(d2.clone()))
            .await
            .unwrap()
            .content,
        m2
    );

    // A referrer reports its subject and is listed with the config media type as its type.
    let mut sig = image_json(&cfg, &[]);
    sig["subject"] = descriptor(
        OCI_MANIFEST,
        &Desc {
            digest: Digest::sha256_of(&m),
            size: m.len() as u64,
        },
    );
    sig["annotations"] = json!({"k": "v"});
    let sig = Bytes::from(serde_json::to_vec(&sig).unwrap());
    let pushed_sig = reg
        .put_manifest(
            &r,
            &Reference::Digest(Digest::sha256_of(&sig)),
            Some(OCI_MANIFEST),
            sig.clone(),
        )
        .await
        .unwrap();
    assert_eq!(pushed_sig.subject, Some(Digest::sha256_of(&m)));
    let refs = reg
        .referrers(&r, &Digest::sha256_of(&m), None)
        .await
        .unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].digest, Digest::sha256_of(&sig));
    assert_eq!(refs[0].size, sig.len() as u64);
    assert_eq!(refs[0].artifact_type.as_deref(), Some(OCI_CONFIG));
    assert_eq!(refs[0].annotations.as_deref(), Some(r#"{"k":"v"}"#));

    // An index over the repository's manifests.
    let idx = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &Desc { digest: Digest::sha256_of(&m), size: m.len() as u64 })],
    });
    let idx = Bytes::from(serde_json::to_vec(&idx).unwrap());
    reg.put_manifest(&r, &tag_ref("multi"), Some(OCI_INDEX), idx.clone())
        .await
        .unwrap();
    assert_eq!(
        reg.get_manifest(&r, &tag_ref("multi"))
            .await
            .unwrap()
            .media_type,
        OCI_INDEX
    );

    // Deleting by tag keeps the manifest; by digest removes it and its tags.
    reg.delete_manifest(&r, &tag_ref("multi")).await.unwrap();
    assert_err!(
        reg.delete_manifest(&r, &tag_ref("multi")).await,
        Error::ManifestUnknown
    );
    assert!(
        reg.get_manifest(&r, &Reference::Digest(Digest::sha256_of(&idx)))
            .await
            .is_ok()
    );
    reg.delete_manifest(&r, &Reference::Digest(Digest::sha256_of(&m)))
        .await
        .unwrap();
    assert_err!(
        reg.get_manifest(&r, &tag_ref("v1")).await,
        Error::ManifestUnknown
    );
    assert_err!(
        reg.delete_manifest(&r, &Reference::Digest(Digest::sha256_of(&m)))
            .await,
        Error::ManifestUnknown
    );
}

#[tokio::test]
async fn put_manifest_validation_errors() {
    let env = Env::with_config(RegistryConfig {
        max_manifest_bytes: 2_048,
        ..RegistryConfig::default()
    })
    .await;
    let (reg, r) = (&env.reg, repo("app"));
    let cfg = push(reg, &r, b"{}").await;
    let layer = push(reg, &r, &data(12, 100)).await;
    let elsewhere = push(reg, &repo("other"), &data(13, 100)).await;
    let never = Desc {
        digest: Digest::sha256_of(b"never pushed"),
        size: 12,
    };

    let try_put = |reference: Reference, ct: Option<&'static str>, m: Bytes| {
        let reg = reg.clone();
        let r = r.clone();
        async move { reg.put_manifest(&r, &reference, ct, m).await }
    };
    let v1 = || tag_ref("v1");

    // Blobs unknown to the repository (also when another repository has them).
    assert_err!(
        try_put(v1(), Some(OCI_MANIFEST), image(&cfg, &[&never])).await,
        Error::ManifestBlobUnknown(d) if d == never.digest
    );
    assert_err!(
        try_put(v1(), Some(OCI_MANIFEST), image(&cfg, &[&layer, &elsewhere])).await,
        Error::ManifestBlobUnknown(d) if d == elsewhere.digest
    );
    assert_err!(
        try_put(v1(), Some(OCI_MANIFEST), image(&never, &[&layer])).await,
        Error::ManifestBlobUnknown(d) if d == never.digest
    );
    // An index with a child the repository doesn't have.
    let missing_child = Bytes::from(
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, &never)],
        }))
        .unwrap(),
    );
    assert_err!(
        try_put(v1(), Some(OCI_INDEX), missing_child).await,
        Error::ManifestBlobUnknown(d) if d == never.digest
    );

    // Structurally invalid: not JSON, wrong schema version, wrong declared size, type clash.
    assert_err!(
        try_put(v1(), Some(OCI_MANIFEST), Bytes::from_static(b"{not json")).await,
        Error::ManifestInvalid(_)
    );
    let mut v1_schema = image_json(&cfg, &[&layer]);
    v1_schema["schemaVersion"] = json!(1);
    assert_err!(
        try_put(
            v1(),
            Some(OCI_MANIFEST),
            Bytes::from(serde_json::to_vec(&v1_schema).unwrap())
        )
        .await,
        Error::ManifestInvalid(_)
    );
    let wrong_size = Desc {
        size: layer.size + 1,
        ..layer.clone()
    };
    assert_err!(
        try_put(v1(), Some(OCI_MANIFEST), image(&cfg, &[&wrong_size])).await,
        Error::ManifestInvalid(msg) if msg.contains(&layer.digest.to_string())
    );
    assert_err!(
        try_put(v1(), Some(OCI_INDEX), image(&cfg, &[&layer])).await,
        Error::ManifestInvalid(_)
    );

    // Unsupported media types.
    assert_err!(
        try_put(v1(), Some(DOCKER_MANIFEST_V1_SIGNED), Bytes::from_static(br#"{"schemaVersion":1}"#)).await,
        Error::ManifestUnsupported(t) if t == DOCKER_MANIFEST_V1_SIGNED
    );
    let mut untyped = image_json(&cfg, &[]);
    untyped.as_object_mut().unwrap().remove("mediaType");
    let untyped = Bytes::from(serde_json::to_vec(&untyped).unwrap());
    assert_err!(
        try_put(v1(), Some("application/x.unknown"), untyped.clone()).await,
        Error::ManifestUnsupported(t) if t == "application/x.unknown"
    );
    // Without a media type anywhere the manifest is invalid.
    assert_err!(
        try_put(v1(), None, untyped).await,
        Error::ManifestInvalid(_)
    );

    // Size limit: exactly the limit is accepted, one byte more is not (before parsing).
    let mut at_limit = serde_json::to_vec(&image_json(&cfg, &[&layer])).unwrap();
    at_limit.resize(2_048, b' ');
    let at_limit = Bytes::from(at_limit);
    try_put(tag_ref("big"), Some(OCI_MANIFEST), at_limit.clone())
        .await
        .unwrap();
    let mut over = at_limit.to_vec();
    over.push(b' ');
    assert_err!(
        try_put(v1(), Some(OCI_MANIFEST), Bytes::from(over)).await,
        Error::ManifestTooLarge {
            size: 2_049,
            limit: 2_048
        }
    );
    assert_err!(
        try_put(v1(), Some(OCI_MANIFEST), Bytes::from(vec![b'x'; 10_000])).await,
        Error::ManifestTooLarge {
            size: 10_000,
            limit: 2_048
        }
    );

    // PUT by a digest that isn't the body's.
    let m = image(&cfg, &[&layer]);
    let claimed = Digest::sha256_of(b"another manifest");
    let err = try_put(
        Reference::Digest(claimed.clone()),
        Some(OCI_MANIFEST),
        m.clone(),
    )
    .await
    .unwrap_err();
    let Error::DigestMismatch { expected, actual } = err else {
        panic!("expected DigestMismatch, got {err:?}");
    };
    assert_eq!((expected, actual), (claimed.clone(), Digest::sha256_of(&m)));

    // None of the failures recorded anything: only the at-limit push is there.
    assert_eq!(reg.list_tags(&r, None, None).await.unwrap().items, ["big"]);
    assert_err!(
        reg.get_manifest(&r, &Reference::Digest(Digest::sha256_of(&m)))
            .await,
        Error::ManifestUnknown
    );
    assert_err!(
        reg.get_manifest(&r, &Reference::Digest(claimed)).await,
        Error::ManifestUnknown
    );
}

#[tokio::test]
async fn listings_page_and_report_more() {
    let env = Env::with_config(RegistryConfig {
        max_page: 3,
        ..RegistryConfig::default()
    })
    .await;
    let reg = &env.reg;
    let r = repo("app");
    assert_err!(reg.list_tags(&r, None, None).await, Error::NameUnknown);
    let cfg = push(reg, &r, b"{}").await;
    let m = image(&cfg, &[]);
    for t in ["d", "a", "c", "b", "e"] {
        put(reg, &r, &tag_ref(t), &m).await;
    }
    let page = reg.list_tags(&r, Some(2), None).await.unwrap();
    assert_eq!(
        (page.items, page.more),
        (vec!["a".into(), "b".into()], true)
    );
    let page = reg.list_tags(&r, Some(2), Some("c")).await.unwrap();
    assert_eq!(
        (page.items, page.more),
        (vec!["d".into(), "e".into()], false)
    );
    // `n` is capped by max_page.
    let page = reg.list_tags(&r, Some(1_000), None).await.unwrap();
    assert_eq!((page.items.len(), page.more), (3, true));
    let page = reg.list_tags(&r, None, None).await.unwrap();
    assert_eq!((page.items.len(), page.more), (5, false));

    for name in ["b", "c"] {
        push(reg, &repo(name), b"x").await;
    }
    let page = reg.catalog(Some(2), None).await.unwrap();
    assert_eq!(
        (page.items, page.more),
        (vec!["app".into(), "b".into()], true)
    );
    let page = reg.catalog(Some(2), Some("b")).await.unwrap();
    assert_eq!((page.items, page.more), (vec!["c".into()], false));
}

// ---- upload housekeeping ------------------------------------------------------------------

#[tokio::test]
async fn clean_uploads_removes_expired_sessions_and_crash_leftovers() {
    let env = Env::with_config(RegistryConfig {
        upload_expiry_secs: 3_600,
        ..RegistryConfig::default()
    })
    .await;
    let (reg, r) = (&env.reg, repo("app"));

    let old = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(&r, &old, None, None, body(&[b"old data"]))
        .await
        .unwrap();
    env.clock.advance(3_000);
    let live = reg.start_upload(&r).await.unwrap().id;
    reg.patch_upload(&r, &live, None, None, body(&[b"live "]))
        .await
        .unwrap();
    env.clock.advance(700);

    // What a crash leaves: single-request push data and session data with no session.
    std::fs::write(env.root.join("tmp/tmp-0123abcd"), b"partial push").unwrap();
    std::fs::write(env.root.join("tmp/junk"), b"junk").unwrap();
    std::fs::write(env.root.join("uploads/deadbeef"), b"orphan session data").unwrap();

    // One expired session, two temporary files, one orphaned upload file.
    assert_eq!(reg.clean_uploads().await.unwrap(), 4);
    assert_err!(reg.upload_status(&r, &old).await, Error::UploadUnknown);
    assert!(env.files_in("tmp").is_empty());
    assert_eq!(env.files_in("uploads"), std::slice::from_ref(&live));
    assert_eq!(
        env.meta.all_uploads().await.unwrap(),
        std::slice::from_ref(&live)
    );
    assert_eq!(reg.upload_status(&r, &live).await.unwrap().size, 5);

    // Activity keeps a session alive past its creation time plus the expiry.
    env.clock.advance(3_000);
    reg.patch_upload(&r, &live, range(5, 5), Some(5), body(&[b"data!"]))
        .await
        .unwrap();
    env.clock.advance(3_000);
    assert_eq!(reg.clean_uploads().await.unwrap(), 0);
    let digest = Digest::sha256_of(b"live data!");
    reg.finish_upload(&r, &live, &digest, None).await.unwrap();
    assert_eq!(read(reg, &digest).await, b"live data!");

    // Nothing to do on a clean directory.
    assert_eq!(reg.clean_uploads().await.unwrap(), 0);
    // And an idle session does expire eventually.
    let idle = reg.start_upload(&r).await.unwrap().id;
    env.clock.advance(3_601);
    assert_eq!(reg.clean_uploads().await.unwrap(), 1);
    assert_err!(reg.upload_status(&r, &idle).await, Error::UploadUnknown);
    assert!(env.files_in("uploads").is_empty());
}

// ---- garbage collection -------------------------------------------------------------------

#[tokio::test]
async fn gc_collects_a_deleted_image_but_keeps_shared_blobs() {
    let env = Env::new().await;
    let reg = &env.reg;
    let (a, b) = (repo("a"), repo("b"));
    let shared = data(20, 8_000);
    let (ma, descs_a) = push_image(reg, &a, "v1", &[&data(21, 4_000), &shared]).await;
    let (mb, descs_b) = push_image(reg, &b, "v1", &[&shared]).await;
    let (cfg_a, layer_a, shared_d) = (&descs_a[0], &descs_a[1], &descs_a[2]);
    assert_eq!(shared_d.digest, descs_b[1].digest);
    assert_eq!(env.blob_files().len(), 4);

    reg.delete_manifest(&a, &tag_ref("v1")).await.unwrap();
    // Within the grace window nothing goes.
    assert_eq!(env.gc(3_600, false).await, GcReport::default());
    assert!(
        reg.get_manifest(&a, &Reference::Digest(ma.clone()))
            .await
            .is_ok()
    );

    env.clock.advance(7_200);
    // A dry run deletes nothing.
    let dry = env.gc(3_600, true).await;
    assert!(dry.dry_run);
    assert_eq!((dry.manifests_deleted, dry.orphan_files_deleted), (1, 0));
    assert!(
        reg.get_manifest(&a, &Reference::Digest(ma.clone()))
            .await
            .is_ok()
    );
    assert_eq!(env.blob_files().len(), 4);
    assert_eq!(reg.stat_blob(&a, &layer_a.digest).await.unwrap(), 4_000);

    let report = env.gc(3_600, false).await;
    assert_eq!(
        report,
        GcReport {
            dry_run: false,
            manifests_deleted: 1,
            links_deleted: 3,
            blobs_deleted: 2,
            bytes_freed: cfg_a.size + layer_a.size,
            orphan_files_deleted: 0,
        }
    );
    assert_err!(
        reg.get_manifest(&a, &Reference::Digest(ma)).await,
        Error::ManifestUnknown
    );
    for d in [cfg_a, layer_a] {
        assert!(
            !env.blob_file(&d.digest).exists(),
            "{} still on disk",
            d.digest
        );
        assert_err!(reg.read_blob(&d.digest, None).await, Error::BlobUnknown(_));
        assert_eq!(env.meta.blob_size(&d.digest).await.unwrap(), None);
    }
    assert_err!(
        reg.stat_blob(&a, &shared_d.digest).await,
        Error::BlobUnknown(_)
    );
    // The image in `b` is intact.
    assert_eq!(
        reg.get_manifest(&b, &tag_ref("v1")).await.unwrap().digest,
        mb
    );
    for d in &descs_b {
        assert_eq!(reg.stat_blob(&b, &d.digest).await.unwrap(), d.size);
        assert_eq!(Digest::sha256_of(&read(reg, &d.digest).await), d.digest);
    }
    assert_eq!(read(reg, &shared_d.digest).await, shared);
    assert_eq!(env.blob_files().len(), 2);
    // `a` holds nothing any more.
    assert_eq!(reg.catalog(None, None).await.unwrap().items, ["b"]);
    // A second run finds nothing.
    assert_eq!(env.gc(3_600, false).await, GcReport::default());
}

#[tokio::test]
async fn gc_keeps_unreferenced_blobs_within_the_grace_window() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let x = push(reg, &r, &data(30, 1_234)).await;
    env.clock.advance(100);
    assert_eq!(env.gc(3_600, false).await, GcReport::default());
    assert_eq!(reg.stat_blob(&r, &x.digest).await.unwrap(), 1_234);
    assert!(env.blob_file(&x.digest).exists());

    // A mount refreshes the blob: young again.
    env.clock.advance(7_200);
    assert!(
        reg.mount_blob(&repo("other"), &x.digest, Some(&r))
            .await
            .unwrap()
    );
    let report = env.gc(3_600, false).await;
    // The original link is old and unreferenced; the fresh one keeps the blob.
    assert_eq!((report.links_deleted, report.blobs_deleted), (1, 0));
    assert!(env.blob_file(&x.digest).exists());
    assert_eq!(
        reg.stat_blob(&repo("other"), &x.digest).await.unwrap(),
        1_234
    );

    // Exactly the grace window old: still kept; one second more and it goes.
    env.clock.advance(3_600);
    assert_eq!(env.gc(3_600, false).await, GcReport::default());
    assert!(env.blob_file(&x.digest).exists());
    env.clock.advance(1);
    let report = env.gc(3_600, false).await;
    assert_eq!(
        report,
        GcReport {
            dry_run: false,
            manifests_deleted: 0,
            links_deleted: 1,
            blobs_deleted: 1,
            bytes_freed: 1_234,
            orphan_files_deleted: 0,
        }
    );
    assert!(!env.blob_file(&x.digest).exists());
    assert_err!(
        reg.stat_blob(&repo("other"), &x.digest).await,
        Error::BlobUnknown(_)
    );

    // Pushing the same content again after collection works and is readable.
    let again = push(reg, &r, &data(30, 1_234)).await;
    assert_eq!(again.digest, x.digest);
    assert_eq!(Digest::sha256_of(&read(reg, &x.digest).await), x.digest);
}

#[tokio::test]
async fn gc_dry_run_counts_without_removing() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    // An image whose tag is deleted, an unreferenced blob, a blob deleted from its repository
    // and a file with no metadata.
    let (m, descs) = push_image(reg, &r, "gone", &[]).await;
    reg.delete_manifest(&r, &tag_ref("gone")).await.unwrap();
    let x = push(reg, &r, &data(40, 300)).await;
    let y = push(reg, &r, &data(41, 500)).await;
    reg.delete_blob(&r, &y.digest).await.unwrap();
    let orphan = data(42, 700);
    let z = Digest::sha256_of(&orphan);
    std::fs::create_dir_all(env.blob_file(&z).parent().unwrap()).unwrap();
    std::fs::write(env.blob_file(&z), &orphan).unwrap();
    set_mtime(&env.blob_file(&z), TWO_DAYS);
    env.clock.advance(7_200);

    let dry = env.gc(3_600, true).await;
    assert_eq!(
        dry,
        GcReport {
            dry_run: true,
            manifests_deleted: 1,
            // Exactly what the real run below removes, including what the manifest frees.
            links_deleted: 2,
            blobs_deleted: 3,
            bytes_freed: 300 + 500 + descs[0].size + 700,
            orphan_files_deleted: 1,
        }
    );
    assert!(
        reg.get_manifest(&r, &Reference::Digest(m.clone()))
            .await
            .is_ok()
    );
    assert_eq!(reg.stat_blob(&r, &x.digest).await.unwrap(), 300);
    assert_eq!(
        reg.stat_blob(&r, &descs[0].digest).await.unwrap(),
        descs[0].size
    );
    assert_eq!(env.meta.blob_size(&y.digest).await.unwrap(), Some(500));
    for d in [&x.digest, &y.digest, &z, &descs[0].digest] {
        assert!(env.blob_file(d).exists());
    }
    // Dry runs are repeatable.
    assert_eq!(env.gc(3_600, true).await, dry);

    let real = env.gc(3_600, false).await;
    assert_eq!(
        real,
        GcReport {
            dry_run: false,
            manifests_deleted: 1,
            links_deleted: 2,
            blobs_deleted: 3,
            bytes_freed: 300 + 500 + descs[0].size + 700,
            orphan_files_deleted: 1,
        }
    );
    assert!(env.blob_files().is_empty());
    assert_err!(
        reg.get_manifest(&r, &Reference::Digest(m)).await,
        Error::ManifestUnknown
    );
}

/// A dry run previews the real run, including links and blobs released by the manifests the
/// same run deletes.
#[tokio::test]
async fn gc_dry_run_report_matches_the_real_run() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    push_image(reg, &r, "v1", &[&data(50, 1_000)]).await;
    reg.delete_manifest(&r, &tag_ref("v1")).await.unwrap();
    env.clock.advance(7_200);
    let dry = env.gc(3_600, true).await;
    let real = env.gc(3_600, false).await;
    assert_eq!(
        (
            real.manifests_deleted,
            real.links_deleted,
            real.blobs_deleted
        ),
        (1, 2, 2)
    );
    assert_eq!(
        GcReport {
            dry_run: false,
            ..dry
        },
        real
    );
}

#[tokio::test]
async fn gc_removes_old_orphan_files_only() {
    let env = Env::new().await;
    let (reg, r) = (&env.reg, repo("app"));
    let write_orphan = |content: &[u8]| {
        let d = Digest::sha256_of(content);
        let p = env.blob_file(&d);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        (d, p)
    };
    let (_, old) = write_orphan(&data(60, 900));
    set_mtime(&old, TWO_DAYS);
    let (_, fresh) = write_orphan(&data(61, 100));
    // Not a digest name: not GC's to judge.
    let junk = env.root.join("blobs/sha256/ab/not-a-digest");
    std::fs::create_dir_all(junk.parent().unwrap()).unwrap();
    std::fs::write(&junk, b"junk").unwrap();
    set_mtime(&junk, TWO_DAYS);
    // A blob with metadata is never an orphan, however old its file.
    let (_, descs) = push_image(reg, &r, "v1", &[&data(62, 400)]).await;
    for d in &descs {
        set_mtime(&env.blob_file(&d.digest), TWO_DAYS);
    }

    let report = env.gc(3_600, false).await;
    assert_eq!(
        report,
        GcReport {
            orphan_files_deleted: 1,
            bytes_freed: 900,
            ..GcReport::default()
        }
    );
    assert!(!old.exists());
    assert!(fresh.exists());
    assert!(junk.exists());
    for d in &descs {
        assert_eq!(Digest::sha256_of(&read(reg, &d.digest).await), d.digest);
    }

    // The fresh orphan goes once the clock has passed its mtime by the grace window.
    env.clock.advance(7_200);
    let report = env.gc(3_600, false).await;
    assert_eq!((report.orphan_files_deleted, report.bytes_freed), (1, 100));
    assert!(!fresh.exists());
    assert!(junk.exists());
    assert_eq!(
        reg.get_manifest(&r, &tag_ref("v1"))
            .await
            .unwrap()
            .media_type,
        OCI_MANIFEST
    );
}

/// Delegates to SQLite, but performs a mount of every GC candidate right after
/// `unlinked_blobs` has listed it: a client racing the sweep, deterministically.
struct MountDuringSweep {
    inner: Arc<SqliteStore>,
    clock: Arc<TestClock>,
    into: std::sync::Mutex<Option<RepoName>>,
}

#[async_trait::async_trait]
impl MetadataStore for MountDuringSweep {
    async fn ready(&self) -> bulwark_core::Result<()> {
        self.inner.ready().await
    }
    async fn create_upload(&self, id: &str, repo: &RepoName, now: i64) -> bulwark_core::Result<()> {
        self.inner.create_upload(id, repo, now).await
    }
    async fn get_upload(&self, id: &str) -> bulwark_core::Result<Option<UploadSession>> {
        self.inner.get_upload(id).await
    }
    async fn set_upload_size(&self, id: &str, size: u64, now: i64) -> bulwark_core::Result<()> {
        self.inner.set_upload_size(id, size, now).await
    }
    async fn delete_upload(&self, id: &str) -> bulwark_core::Result<()> {
        self.inner.delete_upload(id).await
    }
    async fn stale_uploads(&self, before: i64) -> bulwark_core::Result<Vec<String>> {
        self.inner.stale_uploads(before).await
    }
    async fn all_uploads(&self) -> bulwark_core::Result<Vec<String>> {
        self.inner.all_uploads().await
    }
    async fn blob_committed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> bulwark_core::Result<()> {
        self.inner.blob_committed(repo, digest, size, now).await
    }
    async fn repo_blob_size(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> bulwark_core::Result<Option<u64>> {
        self.inner.repo_blob_size(repo, digest).await
    }
    async fn blob_size(&self, digest: &Digest) -> bulwark_core::Result<Option<u64>> {
        self.inner.blob_size(digest).await
    }
    async fn repos_with_blob(
        &self,
        digest: &Digest,
        limit: u32,
    ) -> bulwark_core::Result<Vec<String>> {
        self.inner.repos_with_blob(digest, limit).await
    }
    async fn link_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        now: i64,
    ) -> bulwark_core::Result<bool> {
        self.inner.link_blob(repo, digest, now).await
    }
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> bulwark_core::Result<bool> {
        self.inner.unlink_blob(repo, digest).await
    }
    async fn manifest_using_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> bulwark_core::Result<Option<Digest>> {
        self.inner.manifest_using_blob(repo, digest).await
    }
    async fn put_manifest(
        &self,
        repo: &RepoName,
        manifest: &NewManifest,
        tag: Option<&Tag>,
        now: i64,
    ) -> bulwark_core::Result<Result<(), PutManifestRejection>> {
        self.inner.put_manifest(repo, manifest, tag, now).await
    }
    async fn get_manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> bulwark_core::Result<Option<StoredManifest>> {
        self.inner.get_manifest_by_digest(repo, digest).await
    }
    async fn get_manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> bulwark_core::Result<Option<StoredManifest>> {
        self.inner.get_manifest_by_tag(repo, tag).await
    }
    async fn delete_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> bulwark_core::Result<bool> {
        self.inner.delete_manifest(repo, digest).await
    }
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> bulwark_core::Result<bool> {
        self.inner.delete_tag(repo, tag).await
    }
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> bulwark_core::Result<Option<Vec<String>>> {
        self.inner.list_tags(repo, last, limit).await
    }
    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> bulwark_core::Result<Vec<String>> {
        self.inner.list_repositories(last, limit).await
    }
    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> bulwark_core::Result<Vec<Referrer>> {
        self.inner.referrers(repo, subject, artifact_type).await
    }
    async fn gc_metadata(&self, cutoff: i64, dry_run: bool) -> bulwark_core::Result<GcCounts> {
        self.inner.gc_metadata(cutoff, dry_run).await
    }
    async fn gc_dry_run_blobs(&self, cutoff: i64) -> bulwark_core::Result<Vec<Digest>> {
        self.inner.gc_dry_run_blobs(cutoff).await
    }
    async fn unlinked_blobs(&self, cutoff: i64, limit: u32) -> bulwark_core::Result<Vec<Digest>> {
        let candidates = self.inner.unlinked_blobs(cutoff, limit).await?;
        let into = self.into.lock().unwrap().take();
        if let Some(into) = into {
            for d in &candidates {
                assert!(self.inner.link_blob(&into, d, self.clock.now()).await?);
            }
        }
        Ok(candidates)
    }
    async fn forget_blob_if_unlinked(
        &self,
        digest: &Digest,
        cutoff: i64,
    ) -> bulwark_core::Result<bool> {
        self.inner.forget_blob_if_unlinked(digest, cutoff).await
    }
}

#[tokio::test]
async fn gc_spares_a_blob_mounted_between_listing_and_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let clock = Arc::new(TestClock(AtomicI64::new(SystemClock.now())));
    let sqlite = Arc::new(
        SqliteStore::open(&dir.path().join("meta.db"))
            .await
            .unwrap(),
    );
    let meta = Arc::new(MountDuringSweep {
        inner: sqlite.clone(),
        clock: clock.clone(),
        into: std::sync::Mutex::new(None),
    });
    let blobs = Arc::new(FsBlobStore::open(&root).await.unwrap());
    let reg = Registry::new(
        blobs,
        meta.clone(),
        clock.clone(),
        RegistryConfig::default(),
    );
    let (src, dst) = (repo("src"), repo("dst"));

    let content = data(70, 2_000);
    let x = push(&reg, &src, &content).await;
    reg.delete_blob(&src, &x.digest).await.unwrap();
    clock.advance(7_200);
    *meta.into.lock().unwrap() = Some(dst.clone());

    let report = reg
        .collect_garbage(GcOptions {
            grace_secs: 3_600,
            dry_run: false,
        })
        .await
        .unwrap();
    assert!(
        meta.into.lock().unwrap().is_none(),
        "the sweep listed no candidate"
    );
    assert_eq!(report, GcReport::default());
    assert_eq!(reg.stat_blob(&dst, &x.digest).await.unwrap(), 2_000);
    assert_eq!(read(&reg, &x.digest).await, content);
    assert_eq!(sqlite.blob_size(&x.digest).await.unwrap(), Some(2_000));
}

/// Twenty clients push images (sharing layers) into four repositories, round after round,
/// while GC runs in a loop with no grace window and the clock ticking. Each round's image
/// replaces the previous one (by retagging, or by deleting the tag first), so GC keeps
/// deleting shared blobs that other clients are pushing again at the same moment. A manifest
/// push may be refused because GC already swept a blob it references (the client then pushes
/// again); but every image that did get its tag must stay complete and intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_concurrent_with_pushes_never_breaks_tagged_images() {
    const TASKS: u64 = 20;
    const ROUNDS: u64 = 6;
    let env = Env::new().await;
    let done = Arc::new(AtomicBool::new(false));
    let started = std::time::Instant::now();

    let gc = {
        let (reg, clock, done) = (env.reg.clone(), env.clock.clone(), done.clone());
        tokio::spawn(async move {
            let (mut runs, mut blobs_deleted) = (0u64, 0u64);
            while !done.load(Ordering::SeqCst) {
                clock.advance(1);
                let report = reg
                    .collect_garbage(GcOptions {
                        grace_secs: 0,
                        dry_run: false,
                    })
                    .await
                    .unwrap();
                runs += 1;
                blobs_deleted += report.blobs_deleted;
                tokio::task::yield_now().await;
            }
            (runs, blobs_deleted)
        })
    };

    let pushers: Vec<_> = (0..TASKS)
        .map(|i| {
            let reg = env.reg.clone();
            tokio::spawn(async move {
                let r = repo(&format!("proj/r{}", i % 4));
                let t = tag_ref(&format!("t{i}"));
                let mut retries = 0;
                let mut last = None;
                for round in 0..ROUNDS {
                    let shared = data(1_000 + (i + round) % 3, 20_000);
                    let own = data(2_000 + i * 10 + round, 10_000 + i as usize * 10);
                    let config = format!(r#"{{"task":{i},"round":{round}}}"#).into_bytes();
                    // Garbage nobody references.
                    push(&reg, &r, &data(3_000 + i * 10 + round, 300)).await;
                    let mut attempt = 0;
                    let digest = loop {
                        attempt += 1;
                        assert!(attempt <= 500, "task {i} never got its manifest in");
                        let s = push(&reg, &r, &shared).await;
                        let l = if (i + round) % 2 == 0 {
                            push(&reg, &r, &own).await
                        } else {
                            let id = reg.start_upload(&r).await.unwrap().id;
                            let (first, rest) = own.split_at(4_000);
                            reg.patch_upload(&r, &id, range(0, 4_000), Some(4_000), body(&[first]))
                                .await
                                .unwrap();
                            let d = Digest::sha256_of(&own);
                            reg.finish_upload(&r, &id, &d, Some(body(&[rest])))
                                .await
                                .unwrap();
                            Desc {
                                digest: d,
                                size: own.len() as u64,
                            }
                        };
                        let c = push(&reg, &r, &config).await;
                        match reg
                            .put_manifest(&r, &t, Some(OCI_MANIFEST), image(&c, &[&s, &l]))
                            .await
                        {
                            Ok(p) => break p.digest,
                            Err(Error::ManifestBlobUnknown(_)) => {
                                retries += 1;
                                tokio::task::yield_now().await;
                            }
                            Err(e) => panic!("task {i}: {e:?}"),
                        }
                    };
                    if i % 2 == 0 && round + 1 < ROUNDS {
                        reg.delete_manifest(&r, &t).await.unwrap();
                    }
                    last = Some(digest);
                    // Think time, so sweeps run between rounds as well as during them.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (r, t, last.unwrap(), retries)
            })
        })
        .collect();
    let mut pushed = Vec::new();
    for p in pushers {
        pushed.push(p.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let (runs, blobs_deleted) = gc.await.unwrap();
    let retries: u32 = pushed.iter().map(|p| p.3).sum();
    eprintln!(
        "{:?}: {runs} gc runs deleted {blobs_deleted} blobs; {retries} manifest retries",
        started.elapsed()
    );
    assert!(runs > 0);

    // Sweep the leftovers, then check every tagged image end to end.
    env.clock.advance(10);
    env.gc(0, false).await;
    let reg = &env.reg;
    let mut expected_files = std::collections::BTreeSet::new();
    for (r, t, digest, _) in &pushed {
        let m = reg.get_manifest(r, t).await.unwrap();
        assert_eq!(&m.digest, digest);
        assert_eq!(Digest::sha256_of(&m.content), *digest);
        let json: serde_json::Value = serde_json::from_slice(&m.content).unwrap();
        let descs = std::iter::once(&json["config"]).chain(json["layers"].as_array().unwrap());
        for d in descs {
            let digest = Digest::parse(d["digest"].as_str().unwrap()).unwrap();
            let size = d["size"].as_u64().unwrap();
            assert_eq!(reg.stat_blob(r, &digest).await.unwrap(), size, "{r} {t}");
            let content = read(reg, &digest).await;
            assert_eq!(content.len() as u64, size);
            assert_eq!(Digest::sha256_of(&content), digest, "{r} {t}: corrupt blob");
            expected_files.insert(env.blob_file(&digest));
        }
    }
    // The last round's 20 configs, 20 own layers and 3 shared layers; everything else is gone.
    assert_eq!(expected_files.len(), 43);
    assert_eq!(
        env.blob_files()
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        expected_files
    );
    for (r, _, _, _) in &pushed {
        assert_eq!(reg.list_tags(r, None, None).await.unwrap().items.len(), 5);
    }
    assert!(env.files_in("tmp").is_empty());
    assert!(env.files_in("uploads").is_empty());
}
