use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bulwark_core::store::{BlobReader, BlobStore, ByteStream};
use bulwark_core::{Error, Result};
use bulwark_oci::{Algorithm, ByteRange, Digest, Hasher};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

const WRITE_BUFFER: usize = 1024 * 1024;
const READ_BUFFER: usize = 1024 * 1024;

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

async fn sync_dir(path: &Path) -> Result<()> {
    let dir = tokio::fs::File::open(path).await.map_err(Error::storage)?;
    dir.sync_all().await.map_err(Error::storage)
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
        let mut file = match tokio::fs::OpenOptions::new().write(true).open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::UploadUnknown),
            Err(e) => return Err(Error::storage(e)),
        };
        let len = file.metadata().await.map_err(Error::storage)?.len();
        if len < offset {
            return Err(Error::UploadInvalid(
                "upload data is shorter than recorded; restart the upload".into(),
            ));
        }
        if len > offset {
            // Bytes past the acknowledged length were never confirmed to the client.
            file.set_len(offset).await.map_err(Error::storage)?;
        }
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(Error::storage)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = offset;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| Error::Body(e.to_string()))?;
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&chunk);
            }
            out.write_all(&chunk).await.map_err(Error::storage)?;
            written += chunk.len() as u64;
        }
        out.flush().await.map_err(Error::storage)?;
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
        let file =
            not_found_as_none(tokio::fs::File::open(&tmp).await)?.ok_or(Error::UploadUnknown)?;
        file.sync_all().await.map_err(Error::storage)?;
        drop(file);
        let target = self.blob_path(digest);
        if not_found_as_none(tokio::fs::metadata(&target).await)?.is_some() {
            // Same verified content is already stored; never replace a visible blob.
            return remove_if_present(&tmp).await;
        }
        let parent = target
            .parent()
            .ok_or_else(|| Error::UploadInvalid("bad blob path".into()))?;
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(Error::storage)?;
        tokio::fs::rename(&tmp, &target)
            .await
            .map_err(Error::storage)?;
        sync_dir(parent).await
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
