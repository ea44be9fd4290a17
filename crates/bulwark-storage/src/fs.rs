use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bulwark_core::store::{BlobReader, BlobStore, ByteStream};
use bulwark_core::{Error, Result};
use bulwark_oci::{Algorithm, ByteRange, Digest, Hasher};
use bytes::Bytes;
use futures::StreamExt;
use std::fs::File;
use std::io::{IoSlice, Read, Seek as _, SeekFrom, Write as _};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes gathered from a request body before one write to the upload file.
const WRITE_BATCH: usize = 1024 * 1024;
/// Written bytes after which a background fdatasync starts (large uploads only).
const SYNC_EVERY: u64 = 8 * 1024 * 1024;
const READ_BUFFER: usize = 1024 * 1024;
/// Chunk size of served blobs, and how many chunks may wait for the socket.
const STREAM_CHUNK: usize = 512 * 1024;
const STREAM_DEPTH: usize = 2;

#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Open (creating if needed) a store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in ["blobs", "uploads", "tmp"] {
            tokio::fs::create_dir_all(root.join(dir))
                .await
                .map_err(Error::storage)?;
        }
        Ok(FsBlobStore { root })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(hex.get(..2).unwrap_or("00"))
            .join(hex)
    }

    // Ids come from the server (uuid) or the endpoint parser ([A-Za-z0-9_-]); never a path.
    fn upload_path(&self, id: &str) -> Result<PathBuf> {
        let safe = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !safe {
            return Err(Error::UploadUnknown);
        }
        let dir = if id.starts_with("tmp-") {
            "tmp"
        } else {
            "uploads"
        };
        Ok(self.root.join(dir).join(id))
    }
}

fn not_found_as_none<T>(r: std::io::Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::storage(e)),
    }
}

async fn remove_if_present(path: &Path) -> Result<()> {
    not_found_as_none(tokio::fs::remove_file(path).await).map(|_| ())
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn create_upload(&self, id: &str, _ephemeral: bool) -> Result<()> {
        let path = self.upload_path(id)?;
        tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(Error::storage)?;
        Ok(())
    }

    async fn append_upload(
        &self,
        id: &str,
        offset: u64,
        mut data: ByteStream,
        mut hasher: Option<&mut Hasher>,
    ) -> Result<u64> {
        let path = self.upload_path(id)?;
        let file = blocking(move || open_at(&path, offset)).await?;
        let mut writer = Appender::new(file);
        let mut written = offset;
        while let Some(chunk) = data.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // Whatever was handed to the disk finishes first: the caller then
                    // records the upload's real length.
                    writer.finish().await?;
                    return Err(Error::Body(e.to_string()));
                }
            };
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&chunk);
            }
            written += chunk.len() as u64;
            writer.push(chunk).await?;
        }
        writer.finish().await?;
        Ok(written)
    }

    async fn upload_len(&self, id: &str) -> Result<Option<u64>> {
        let path = self.upload_path(id)?;
        Ok(not_found_as_none(tokio::fs::metadata(&path).await)?.map(|m| m.len()))
    }

    async fn hash_upload(&self, id: &str, algorithm: Algorithm) -> Result<Digest> {
        let path = self.upload_path(id)?;
        let mut file =
            not_found_as_none(tokio::fs::File::open(&path).await)?.ok_or(Error::UploadUnknown)?;
        let mut hasher = Hasher::new(algorithm);
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let n = file.read(&mut buf).await.map_err(Error::storage)?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        Ok(hasher.finish())
    }

    async fn commit_upload(&self, id: &str, digest: &Digest) -> Result<()> {
        let tmp = self.upload_path(id)?;
        let target = self.blob_path(digest);
        // One blocking hop for the whole sequence instead of one per file operation.
        blocking(move || commit_sync(&tmp, &target)).await
    }

    async fn delete_upload(&self, id: &str) -> Result<()> {
        remove_if_present(&self.upload_path(id)?).await
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(not_found_as_none(tokio::fs::metadata(self.blob_path(digest)).await)?.map(|m| m.len()))
    }

    async fn read_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader> {
        let mut file = not_found_as_none(tokio::fs::File::open(self.blob_path(digest)).await)?
            .ok_or_else(|| Error::BlobUnknown(digest.clone()))?;
        match range {
            None => Ok(Box::pin(file)),
            Some(r) => {
                file.seek(std::io::SeekFrom::Start(r.start))
                    .await
                    .map_err(Error::storage)?;
                Ok(Box::pin(file.take(r.len())))
            }
        }
    }

    async fn stream_blob(&self, digest: &Digest, range: Option<ByteRange>) -> Result<ByteStream> {
        let path = self.blob_path(digest);
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_DEPTH);
        // One blocking task per response reads the file start to end: no hop per chunk and
        // no copy out of an intermediate buffer.
        tokio::task::spawn_blocking(move || {
            let (file, len) = match open_range(&path, range) {
                Ok(found) => {
                    let _ = opened_tx.send(Ok(()));
                    found
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            send_chunks(file, len, &tx);
        });
        match opened.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::BlobUnknown(digest.clone()));
            }
            Ok(Err(e)) => return Err(Error::storage(e)),
            Err(e) => return Err(Error::storage(e)),
        }
        Ok(Box::pin(tokio_stream_from(rx)))
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<()> {
        remove_if_present(&self.blob_path(digest)).await
    }

    async fn list_blobs(&self) -> Result<Vec<(Digest, i64)>> {
        let root = self.root.join("blobs");
        tokio::task::spawn_blocking(move || list_blobs_sync(&root))
            .await
            .map_err(Error::storage)?
    }

    async fn clean_uploads(&self, keep: &[String]) -> Result<u64> {
        let keep: std::collections::HashSet<&str> = keep.iter().map(String::as_str).collect();
        let mut removed = 0;
        for dir in ["tmp", "uploads"] {
            let mut entries = tokio::fs::read_dir(self.root.join(dir))
                .await
                .map_err(Error::storage)?;
            while let Some(entry) = entries.next_entry().await.map_err(Error::storage)? {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if dir == "tmp" || !keep.contains(name.as_ref()) {
                    remove_if_present(&entry.path()).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn ready(&self) -> Result<()> {
        let meta = tokio::fs::metadata(self.root.join("blobs"))
            .await
            .map_err(Error::storage)?;
        if meta.is_dir() {
            Ok(())
        } else {
            Err(Error::UploadInvalid("blob directory missing".into()))
        }
    }
}

/// Runs file work on the blocking pool, in one hop.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.kind() == ErrorKind::NotFound => Err(Error::UploadUnknown),
        Ok(Err(e)) if e.kind() == ErrorKind::InvalidData => {
            Err(Error::UploadInvalid(e.to_string()))
        }
        Ok(Err(e)) => Err(Error::storage(e)),
        Err(e) => Err(Error::storage(e)),
    }
}

/// Opens an upload for writing at `offset`, dropping bytes a crash left past it.
fn open_at(path: &Path, offset: u64) -> std::io::Result<File> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    if len < offset {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "upload data is shorter than recorded; restart the upload",
        ));
    }
    if len > offset {
        // Bytes past the acknowledged length were never confirmed to the client.
        file.set_len(offset)?;
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok(file)
}

/// Writes an upload's chunks as they arrive: the body's own buffers are gathered (no copy)
/// and handed to the blocking pool a batch at a time, one write in flight while the next
/// batch is received. Every `SYNC_EVERY` bytes a background `fdatasync` starts, so that the
/// commit's fsync finds little left to write.
struct Appender {
    file: Option<File>,
    in_flight: Option<tokio::task::JoinHandle<std::io::Result<File>>>,
    batch: Vec<Bytes>,
    batched: usize,
    since_sync: u64,
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Appender {
    fn new(file: File) -> Self {
        Appender {
            file: Some(file),
            in_flight: None,
            batch: Vec::new(),
            batched: 0,
            since_sync: 0,
            syncing: None,
        }
    }

    async fn push(&mut self, chunk: Bytes) -> Result<()> {
        if chunk.is_empty() {
            // An empty write would read as "no progress" (WriteZero).
            return Ok(());
        }
        self.batched += chunk.len();
        self.batch.push(chunk);
        if self.batched >= WRITE_BATCH {
            self.write_batch().await?;
        }
        Ok(())
    }

    async fn write_batch(&mut self) -> Result<()> {
        let mut file = self.wait_write().await?;
        let chunks = std::mem::take(&mut self.batch);
        self.since_sync += std::mem::take(&mut self.batched) as u64;
        if self.since_sync >= SYNC_EVERY && self.syncing.as_ref().is_none_or(|s| s.is_finished()) {
            if let Some(done) = self.syncing.take() {
                join(done).await?;
            }
            let clone = file.try_clone().map_err(Error::storage)?;
            self.syncing = Some(tokio::task::spawn_blocking(move || clone.sync_data()));
            self.since_sync = 0;
        }
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            write_chunks(&mut file, &chunks)?;
            Ok(file)
        }));
        Ok(())
    }

    async fn wait_write(&mut self) -> Result<File> {
        if let Some(writing) = self.in_flight.take() {
            return join(writing).await;
        }
        self.file
            .take()
            .ok_or_else(|| Error::UploadInvalid("upload writer used after an error".into()))
    }

    /// Writes what is left and waits for every write and sync started.
    async fn finish(mut self) -> Result<()> {
        if !self.batch.is_empty() {
            self.write_batch().await?;
        }
        let written = self.wait_write().await;
        if let Some(syncing) = self.syncing.take() {
            join(syncing).await?;
        }
        written.map(drop)
    }
}

async fn join<T>(task: tokio::task::JoinHandle<std::io::Result<T>>) -> Result<T> {
    task.await.map_err(Error::storage)?.map_err(Error::storage)
}

fn write_chunks(file: &mut File, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = file.write_vectored(rest)?;
        if n == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// fsync the upload, move it under its digest unless that blob exists, fsync the directory.
fn commit_sync(tmp: &Path, target: &Path) -> std::io::Result<()> {
    File::open(tmp)?.sync_all()?;
    if std::fs::metadata(target).is_ok() {
        // Same verified content is already stored; never replace a visible blob.
        return match std::fs::remove_file(tmp) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let parent = target
        .parent()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "bad blob path"))?;
    std::fs::create_dir_all(parent)?;
    std::fs::rename(tmp, target)?;
    File::open(parent)?.sync_all()
}

/// Opens a blob positioned at the range's start; returns it with the byte count to send.
fn open_range(path: &Path, range: Option<ByteRange>) -> std::io::Result<(File, u64)> {
    let mut file = File::open(path)?;
    match range {
        None => {
            let len = file.metadata()?.len();
            Ok((file, len))
        }
        Some(r) => {
            file.seek(SeekFrom::Start(r.start))?;
            Ok((file, r.len()))
        }
    }
}

/// Reads `len` bytes in `STREAM_CHUNK` pieces into fresh buffers and sends them; stops when
/// the receiver (the response body) is gone.
fn send_chunks(file: File, len: u64, tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) {
    let mut file = file;
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left.min(STREAM_CHUNK as u64)).unwrap_or(STREAM_CHUNK);
        let mut buf = Vec::with_capacity(want);
        let item = match (&mut file).take(want as u64).read_to_end(&mut buf) {
            Ok(n) if n == want => Ok(Bytes::from(buf)),
            Ok(_) => Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "blob file is shorter than its recorded size",
            )),
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
        left -= want as u64;
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn list_blobs_sync(root: &Path) -> Result<Vec<(Digest, i64)>> {
    let mut out = Vec::new();
    let read = |p: &Path| not_found_as_none(std::fs::read_dir(p));
    let Some(algs) = read(root)? else {
        return Ok(out);
    };
    for alg in algs.flatten() {
        let alg_name = alg.file_name().to_string_lossy().into_owned();
        for prefix in read(&alg.path())?.into_iter().flatten().flatten() {
            for blob in read(&prefix.path())?.into_iter().flatten().flatten() {
                let name = format!("{alg_name}:{}", blob.file_name().to_string_lossy());
                // Anything that is not a well-formed digest is not ours to judge or delete.
                let Ok(digest) = Digest::parse(&name) else {
                    continue;
                };
                let mtime = blob
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                out.push((digest, mtime));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stream(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<std::io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(items))
    }

    async fn read_all(store: &FsBlobStore, d: &Digest, r: Option<ByteRange>) -> Vec<u8> {
        let mut out = Vec::new();
        store
            .read_blob(d, r)
            .await
            .unwrap()
            .read_to_end(&mut out)
            .await
            .unwrap();
        out
    }

    #[tokio::test]
    async fn upload_commit_read_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        store.create_upload("u1", false).await.unwrap();
        let mut h = Hasher::new(Algorithm::Sha256);
        let n = store
            .append_upload("u1", 0, stream(&[b"hello ", b"world"]), Some(&mut h))
            .await
            .unwrap();
        assert_eq!(n, 11);
        let d = h.finish();
        assert_eq!(d, Digest::sha256_of(b"hello world"));
        assert_eq!(store.hash_upload("u1", Algorithm::Sha256).await.unwrap(), d);
        store.commit_upload("u1", &d).await.unwrap();
        assert_eq!(store.upload_len("u1").await.unwrap(), None);
        assert_eq!(store.blob_size(&d).await.unwrap(), Some(11));
        assert_eq!(read_all(&store, &d, None).await, b"hello world");
        assert_eq!(
            read_all(&store, &d, Some(ByteRange { start: 6, end: 10 })).await,
            b"world"
        );
        assert_eq!(store.list_blobs().await.unwrap().len(), 1);
        store.delete_blob(&d).await.unwrap();
        assert!(matches!(
            store.read_blob(&d, None).await,
            Err(Error::BlobUnknown(_))
        ));
    }

    #[tokio::test]
    async fn append_discards_unacknowledged_tail() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        store.create_upload("u2", false).await.unwrap();
        store
            .append_upload("u2", 0, stream(&[b"abcdef"]), None)
            .await
            .unwrap();
        // Simulate a crash after "abc" was acknowledged but "def" was not.
        let n = store
            .append_upload("u2", 3, stream(&[b"XYZ"]), None)
            .await
            .unwrap();
        assert_eq!(n, 6);
        let d = store.hash_upload("u2", Algorithm::Sha256).await.unwrap();
        assert_eq!(d, Digest::sha256_of(b"abcXYZ"));
        assert!(matches!(
            store.append_upload("u2", 10, stream(&[b"x"]), None).await,
            Err(Error::UploadInvalid(_))
        ));
    }

    #[tokio::test]
    async fn commit_never_replaces_and_cleanup_keeps_live_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let d = Digest::sha256_of(b"x");
        for id in ["a", "b"] {
            store.create_upload(id, false).await.unwrap();
            store
                .append_upload(id, 0, stream(&[b"x"]), None)
                .await
                .unwrap();
            store.commit_upload(id, &d).await.unwrap();
        }
        assert_eq!(read_all(&store, &d, None).await, b"x");
        store.create_upload("tmp-1", true).await.unwrap();
        store.create_upload("live", false).await.unwrap();
        store.create_upload("dead", false).await.unwrap();
        assert_eq!(store.clean_uploads(&["live".into()]).await.unwrap(), 2);
        assert_eq!(store.upload_len("live").await.unwrap(), Some(0));
        assert_eq!(store.upload_len("dead").await.unwrap(), None);
        assert!(matches!(
            store.create_upload("../x", false).await,
            Err(Error::UploadUnknown)
        ));
    }
}
