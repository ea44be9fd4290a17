//! One BlobStore contract, checked on every backend: the filesystem, the S3 store over
//! object_store's in-memory backend, and the S3 store over a real S3-compatible server (moto)
//! when `BULWARK_TEST_S3_ENDPOINT` is set (required when `BULWARK_REQUIRE_S3=1`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::sync::Arc;

use bulwark_core::Error;
use bulwark_core::store::{BlobStore, ByteStream};
use bulwark_oci::{Algorithm, ByteRange, Digest, Hasher};
use bulwark_storage::{FsBlobStore, PART_SIZE, S3BlobStore, S3Config};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

fn stream(parts: Vec<Vec<u8>>) -> ByteStream {
    Box::pin(futures::stream::iter(
        parts.into_iter().map(|p| Ok(Bytes::from(p))),
    ))
}

fn failing_stream(first: Vec<u8>) -> ByteStream {
    Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from(first)),
        Err(std::io::Error::other("client went away")),
    ]))
}

fn data(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn read_all(s: &dyn BlobStore, d: &Digest, r: Option<ByteRange>) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_blob(d, r)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

/// Reads through `stream_blob`, checking it serves what `read_blob` does.
async fn stream_all(s: &dyn BlobStore, d: &Digest, r: Option<ByteRange>) -> Vec<u8> {
    use futures::TryStreamExt;
    let chunks: Vec<_> = s
        .stream_blob(d, r)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let out = chunks.concat();
    assert_eq!(
        out,
        read_all(s, d, r).await,
        "stream_blob and read_blob differ"
    );
    out
}

async fn append(s: &dyn BlobStore, id: &str, offset: u64, parts: Vec<Vec<u8>>) -> u64 {
    s.append_upload(id, offset, stream(parts), None)
        .await
        .unwrap()
}

async fn check_round_trip(s: &dyn BlobStore) {
    let content = data(1, 300_000);
    let digest = Digest::sha256_of(&content);
    assert_eq!(s.blob_size(&digest).await.unwrap(), None);
    assert!(matches!(
        s.read_blob(&digest, None).await,
        Err(Error::BlobUnknown(_))
    ));
    assert!(matches!(
        s.stream_blob(&digest, None).await,
        Err(Error::BlobUnknown(_))
    ));

    s.create_upload("u-round", false).await.unwrap();
    assert_eq!(s.upload_len("u-round").await.unwrap(), Some(0));
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let n = s
        .append_upload(
            "u-round",
            0,
            stream(vec![
                content[..1000].to_vec(),
                content[1000..100_000].to_vec(),
            ]),
            Some(&mut hasher),
        )
        .await
        .unwrap();
    assert_eq!(n, 100_000);
    let n = append(s, "u-round", 100_000, vec![content[100_000..].to_vec()]).await;
    assert_eq!(n, 300_000);
    assert_eq!(s.upload_len("u-round").await.unwrap(), Some(300_000));
    assert_eq!(
        s.hash_upload("u-round", Algorithm::Sha256).await.unwrap(),
        digest
    );
    s.commit_upload("u-round", &digest).await.unwrap();
    s.delete_upload("u-round").await.unwrap();
    assert_eq!(s.upload_len("u-round").await.unwrap(), None);

    assert_eq!(s.blob_size(&digest).await.unwrap(), Some(300_000));
    assert_eq!(read_all(s, &digest, None).await, content);
    let r = ByteRange {
        start: 1_234,
        end: 99_999,
    };
    assert_eq!(read_all(s, &digest, Some(r)).await, content[1_234..100_000]);
    assert_eq!(stream_all(s, &digest, None).await, content);
    assert_eq!(
        stream_all(s, &digest, Some(r)).await,
        content[1_234..100_000]
    );
    let listed = s.list_blobs().await.unwrap();
    assert!(listed.iter().any(|(d, _)| d == &digest), "{listed:?}");

    s.delete_blob(&digest).await.unwrap();
    assert_eq!(s.blob_size(&digest).await.unwrap(), None);
    // Deleting twice is fine.
    s.delete_blob(&digest).await.unwrap();
}

async fn check_unacknowledged_tail_is_discarded(s: &dyn BlobStore) {
    s.create_upload("u-tail", false).await.unwrap();
    append(s, "u-tail", 0, vec![b"abc".to_vec()]).await;
    append(s, "u-tail", 3, vec![b"def".to_vec()]).await;
    // The second chunk was never acknowledged: the session resumes at 3.
    let n = append(s, "u-tail", 3, vec![b"XY".to_vec()]).await;
    assert_eq!(n, 5);
    assert_eq!(s.upload_len("u-tail").await.unwrap(), Some(5));
    let d = Digest::sha256_of(b"abcXY");
    assert_eq!(s.hash_upload("u-tail", Algorithm::Sha256).await.unwrap(), d);
    // Resuming past the data is refused.
    assert!(matches!(
        s.append_upload("u-tail", 9, stream(vec![b"z".to_vec()]), None)
            .await,
        Err(Error::UploadInvalid(_))
    ));
    s.commit_upload("u-tail", &d).await.unwrap();
    s.delete_upload("u-tail").await.unwrap();
    assert_eq!(read_all(s, &d, None).await, b"abcXY");
}

async fn check_commit_never_replaces(s: &dyn BlobStore) {
    let d = Digest::sha256_of(b"first");
    for (id, body) in [
        ("u-first", b"first".to_vec()),
        ("u-second", b"other".to_vec()),
    ] {
        s.create_upload(id, false).await.unwrap();
        append(s, id, 0, vec![body]).await;
        s.commit_upload(id, &d).await.unwrap();
        s.delete_upload(id).await.unwrap();
    }
    assert_eq!(read_all(s, &d, None).await, b"first");
}

async fn check_unknown_and_empty(s: &dyn BlobStore) {
    assert_eq!(s.upload_len("u-none").await.unwrap(), None);
    assert!(matches!(
        s.append_upload("u-none", 0, stream(vec![b"x".to_vec()]), None)
            .await,
        Err(Error::UploadUnknown)
    ));
    assert!(matches!(
        s.upload_len("../escape").await,
        Err(Error::UploadUnknown) | Ok(None)
    ));
    // A zero-length blob (e.g. an empty config) commits and reads back.
    let d = Digest::sha256_of(b"");
    s.create_upload("tmp-empty", true).await.unwrap();
    assert_eq!(append(s, "tmp-empty", 0, vec![]).await, 0);
    // Bodies may carry empty chunks; they are not a failed write.
    assert_eq!(append(s, "tmp-empty", 0, vec![vec![], vec![]]).await, 0);
    s.commit_upload("tmp-empty", &d).await.unwrap();
    s.delete_upload("tmp-empty").await.unwrap();
    assert_eq!(s.blob_size(&d).await.unwrap(), Some(0));
    assert!(read_all(s, &d, None).await.is_empty());
    assert!(stream_all(s, &d, None).await.is_empty());
}

async fn check_failed_append_keeps_acknowledged_data(s: &dyn BlobStore) {
    s.create_upload("u-fail", false).await.unwrap();
    append(s, "u-fail", 0, vec![b"good".to_vec()]).await;
    assert!(
        s.append_upload("u-fail", 4, failing_stream(b"partial".to_vec()), None)
            .await
            .is_err()
    );
    let len = s.upload_len("u-fail").await.unwrap().unwrap();
    assert!((4..=11).contains(&len), "{len}");
    // The client resumes from what was acknowledged.
    assert_eq!(append(s, "u-fail", 4, vec![b"!".to_vec()]).await, 5);
    assert_eq!(
        s.hash_upload("u-fail", Algorithm::Sha256).await.unwrap(),
        Digest::sha256_of(b"good!")
    );
    s.delete_upload("u-fail").await.unwrap();
}

async fn check_large_multipart(s: &dyn BlobStore) {
    // Two chunks, the first bigger than a part: multipart writes and a streamed concatenation.
    let content = data(7, 2 * PART_SIZE + 12_345);
    let digest = Digest::sha256_of(&content);
    s.create_upload("u-large", false).await.unwrap();
    let split = PART_SIZE + PART_SIZE / 2;
    let pieces: Vec<Vec<u8>> = content[..split]
        .chunks(1 << 20)
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(append(s, "u-large", 0, pieces).await, split as u64);
    append(s, "u-large", split as u64, vec![content[split..].to_vec()]).await;
    s.commit_upload("u-large", &digest).await.unwrap();
    s.delete_upload("u-large").await.unwrap();
    let back = stream_all(s, &digest, None).await;
    assert_eq!(back.len(), content.len());
    assert_eq!(Digest::sha256_of(&back), digest);
    s.ready().await.unwrap();
}

macro_rules! suite {
    ($name:ident, $open:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn round_trip() {
                let Some((_g, s)) = $open.await else { return };
                check_round_trip(&*s).await;
            }
            #[tokio::test]
            async fn unacknowledged_tail_is_discarded() {
                let Some((_g, s)) = $open.await else { return };
                check_unacknowledged_tail_is_discarded(&*s).await;
            }
            #[tokio::test]
            async fn commit_never_replaces() {
                let Some((_g, s)) = $open.await else { return };
                check_commit_never_replaces(&*s).await;
            }
            #[tokio::test]
            async fn unknown_and_empty() {
                let Some((_g, s)) = $open.await else { return };
                check_unknown_and_empty(&*s).await;
            }
            #[tokio::test]
            async fn failed_append_keeps_acknowledged_data() {
                let Some((_g, s)) = $open.await else { return };
                check_failed_append_keeps_acknowledged_data(&*s).await;
            }
            #[tokio::test]
            async fn large_multipart() {
                let Some((_g, s)) = $open.await else { return };
                check_large_multipart(&*s).await;
            }
        }
    };
}

type Opened = Option<(Box<dyn std::any::Any + Send>, Arc<dyn BlobStore>)>;

async fn open_fs() -> Opened {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).await.unwrap();
    Some((Box::new(dir), Arc::new(store)))
}

async fn open_memory() -> Opened {
    let store = S3BlobStore::with_store(Arc::new(object_store::memory::InMemory::new()), "pfx");
    Some((Box::new(()), Arc::new(store)))
}

/// A fresh bucket on the S3-compatible test server, or `None` (skip) when none is configured.
async fn open_s3() -> Opened {
    open_s3_with(0).await
}

async fn open_s3_with(presigned_redirect_secs: u64) -> Opened {
    let Ok(endpoint) = std::env::var("BULWARK_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("BULWARK_REQUIRE_S3").as_deref() != Ok("1"),
            "BULWARK_REQUIRE_S3=1 but BULWARK_TEST_S3_ENDPOINT is not set"
        );
        eprintln!("skipped: BULWARK_TEST_S3_ENDPOINT not set");
        return None;
    };
    let bucket = format!("bulwark-test-{}", uuid_like());
    create_bucket(&endpoint, &bucket);
    let store = S3BlobStore::connect(&S3Config {
        bucket,
        prefix: "registry".into(),
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        allow_http: true,
        virtual_hosted_style: false,
        presigned_redirect_secs,
    })
    .unwrap();
    Some((Box::new(()), Arc::new(store)))
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// `PUT /<bucket>` on the loopback test server (moto accepts unsigned requests).
fn create_bucket(endpoint: &str, bucket: &str) {
    let authority = endpoint
        .strip_prefix("http://")
        .expect("loopback http endpoint")
        .trim_end_matches('/');
    assert!(
        authority.starts_with("127.0.0.1:") || authority.starts_with("localhost:"),
        "tests only talk to loopback, not {authority}"
    );
    let mut s = std::net::TcpStream::connect(authority).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
}

suite!(fs, open_fs());
suite!(s3_in_memory, open_memory());
suite!(s3_server, open_s3());

/// With redirects on, the store hands out a presigned URL that serves the blob by itself.
#[tokio::test]
async fn s3_presigned_download_url_serves_the_blob() {
    let Some((_g, s)) = open_s3_with(60).await else {
        return;
    };
    let content = data(5, 5_000);
    let d = Digest::sha256_of(&content);
    s.create_upload("u-presign", false).await.unwrap();
    append(&*s, "u-presign", 0, vec![content.clone()]).await;
    s.commit_upload("u-presign", &d).await.unwrap();
    let url = s.download_url(&d).await.unwrap().expect("a presigned URL");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, target) = rest.split_at(rest.find('/').unwrap());
    assert!(authority.starts_with("127.0.0.1:"));
    let mut conn = std::net::TcpStream::connect(authority).unwrap();
    write!(
        conn,
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).unwrap();
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        resp.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp[..head_end])
    );
    assert_eq!(&resp[head_end + 4..], &content[..]);
    // Stores without redirects configured give no URL.
    let (_g2, plain) = open_memory().await.unwrap();
    assert_eq!(plain.download_url(&d).await.unwrap(), None);
}
