//! `bulwark migrate`: move a registry from the embedded default (SQLite in the data directory,
//! blobs under `<data_dir>/blobs`) to PostgreSQL and, with `--blobs`, to the S3 bucket
//! configured in `[storage]`, without re-pushing anything.
//!
//! It takes the data-directory lock, so it refuses while a server runs there. With `--blobs`
//! the blobs are copied first (each streamed, digest-verified, skipped when the bucket already
//! has it with the same size, so a re-run continues where a failed one stopped); then every
//! metadata table is copied in one PostgreSQL transaction
//! ([`bulwark_meta::copy_sqlite_to_postgres`]): all or nothing, into an empty database only.
//! The destination is checked (same schema version, empty) before any blob is copied.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use bulwark_core::store::{BlobReader, BlobStore, ByteStream};
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_oci::{Digest, Hasher};
use bulwark_storage::FsBlobStore;
use clap::Args;
use futures::StreamExt as _;
use tokio::io::AsyncReadExt as _;

use crate::config::{Config, StorageBackend};

/// Blobs copied at the same time.
const BLOB_CONCURRENCY: usize = 4;
/// Read size when streaming a blob (the only part of it held in memory, besides the target
/// store's own write buffer).
const READ_CHUNK: usize = 1024 * 1024;
/// A progress line at least this often while blobs are copied.
const BLOB_PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// A progress line for a large table every this many rows.
const ROWS_PROGRESS_EVERY: u64 = 50_000;

#[derive(Args)]
pub(crate) struct MigrateArgs {
    /// The SQLite database to copy: sqlite:///path/to/bulwark.db or sqlite:PATH (default: the
    /// data directory's bulwark.db, or database.url when that names a SQLite file).
    #[arg(long, value_name = "URL")]
    from: Option<String>,
    /// The PostgreSQL database to copy into (postgres://user:password@host:port/database).
    /// It must be empty: its schema is created, and no table may hold a row.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Also copy the blobs under <data_dir>/blobs to the storage configured in [storage],
    /// which must be `backend = "s3"`.
    #[arg(long)]
    blobs: bool,
}

/// What [`copy_blobs`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct BlobCopyReport {
    /// Blobs found in the source.
    pub(crate) total: u64,
    pub(crate) copied: u64,
    pub(crate) copied_bytes: u64,
    /// Already in the target with the same size.
    pub(crate) skipped: u64,
    pub(crate) skipped_bytes: u64,
    /// Each blob that could not be copied, with why.
    pub(crate) failed: Vec<(Digest, String)>,
}

enum Outcome {
    Copied(u64),
    Skipped(u64),
}

pub(crate) async fn run(config: &Config, args: MigrateArgs) -> anyhow::Result<()> {
    let _lock = crate::lock_data_dir(config)
        .context("bulwark migrate needs the server on this data directory stopped")?;
    let source = source_path(config, args.from.as_deref())?;
    if !source.is_file() {
        bail!("the source database {} does not exist", source.display());
    }
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        bail!("--to must be a postgres:// or postgresql:// URL");
    }
    let target_blobs = if args.blobs {
        if config.storage.backend != StorageBackend::S3 {
            bail!(
                "--blobs copies <data_dir>/blobs to the storage configured in [storage], which \
                 is the data directory itself here: set storage.backend = \"s3\" and \
                 [storage.s3] (or BULWARK_STORAGE__BACKEND=s3 and BULWARK_STORAGE__S3__*)"
            );
        }
        Some(crate::backends::open_blobs(config).await?)
    } else {
        None
    };

    println!("source:      {} (SQLite)", source.display());
    println!("destination: {} (PostgreSQL)", redact(&args.to));
    // The destination first: an unreachable one leaves the source untouched.
    let dst = PostgresStore::open(&args.to)
        .await
        .context("connecting to the destination database (--to)")?;
    let src = SqliteStore::open(&source)
        .await
        .with_context(|| format!("opening the source database {}", source.display()));
    let outcome = match src {
        Ok(src) => migrate(config, &src, &dst, target_blobs).await,
        Err(e) => Err(e),
    };
    dst.close().await;
    outcome
}

async fn migrate(
    config: &Config,
    src: &SqliteStore,
    dst: &PostgresStore,
    target_blobs: Option<Arc<dyn BlobStore>>,
) -> anyhow::Result<()> {
    // Fail before copying blobs (which may take long) if the metadata copy would be refused.
    bulwark_meta::check_sqlite_to_postgres(src, dst)
        .await
        .context("checking the destination database")?;

    let copied_blobs = target_blobs.is_some();
    if let Some(target) = target_blobs {
        let source: Arc<dyn BlobStore> = Arc::new(
            FsBlobStore::open(&config.data_dir)
                .await
                .context("opening <data_dir>/blobs")?,
        );
        println!(
            "copying blobs from {} to the S3 bucket {:?}",
            config.data_dir.join("blobs").display(),
            config.storage.s3.bucket
        );
        let mut last = Instant::now();
        let report = copy_blobs(source, target, |done, total, bytes| {
            if done == total || last.elapsed() >= BLOB_PROGRESS_EVERY {
                last = Instant::now();
                println!(
                    "  blobs: {done}/{total} done, {} copied",
                    human_bytes(bytes)
                );
            }
        })
        .await?;
        println!(
            "blobs: {} copied ({}), {} already in the bucket ({}), {} failed",
            report.copied,
            human_bytes(report.copied_bytes),
            report.skipped,
            human_bytes(report.skipped_bytes),
            report.failed.len()
        );
        if !report.failed.is_empty() {
            for (digest, why) in &report.failed {
                eprintln!("  {digest}: {why}");
            }
            bail!(
                "{} of {} blobs could not be copied; nothing was written to the destination \
                 database. Fix the cause and run the same command again (blobs already copied \
                 are skipped)",
                report.failed.len(),
                report.total
            );
        }
    }

    println!("copying metadata");
    let mut progress = TableProgress::default();
    let report = bulwark_meta::copy_sqlite_to_postgres(src, dst, |table, rows| {
        progress.update(table, rows);
    })
    .await
    .context("copying the metadata (nothing was committed)")?;
    progress.finish();
    println!(
        "metadata: {} rows in {} tables copied and row counts verified (schema version {}); \
         {} id sequences reset",
        report.total_rows(),
        report.tables.len(),
        report
            .schema_version
            .map_or_else(|| "none".to_owned(), |v| v.to_string()),
        report.sequences.len()
    );
    println!(
        "done. Next: stop using this data directory's database: set database.url to the \
         destination (or BULWARK_DATABASE__URL) and start the server."
    );
    match (copied_blobs, config.storage.backend) {
        (true, _) => println!(
            "The blobs are in the bucket now (storage.backend = \"s3\" is already set); the \
             copies under {} are no longer read: keep them until the new setup is checked.",
            config.data_dir.join("blobs").display()
        ),
        (false, StorageBackend::Filesystem) => println!(
            "Blobs were not copied (no --blobs): they stay under {}, which the server keeps using.",
            config.data_dir.join("blobs").display()
        ),
        (false, StorageBackend::S3) => println!(
            "Note: storage.backend is \"s3\" but --blobs was not given: blobs under {} were not \
             copied to the bucket.",
            config.data_dir.join("blobs").display()
        ),
    }
    Ok(())
}

/// One line per table (and one every [`ROWS_PROGRESS_EVERY`] rows of a large one).
#[derive(Default)]
struct TableProgress {
    table: String,
    rows: u64,
    printed: u64,
}

impl TableProgress {
    fn update(&mut self, table: &str, rows: u64) {
        if table != self.table {
            self.finish();
            self.table = table.to_owned();
            self.printed = 0;
        }
        self.rows = rows;
        if rows - self.printed.min(rows) >= ROWS_PROGRESS_EVERY {
            println!("  {table}: {rows} rows so far");
            self.printed = rows;
        }
    }

    fn finish(&mut self) {
        if !self.table.is_empty() {
            println!("  {:<24} {} rows", self.table, self.rows);
        }
        self.table.clear();
    }
}

/// The SQLite file to copy: `--from`, else a `sqlite:` database.url, else `<data_dir>/bulwark.db`.
fn source_path(config: &Config, from: Option<&str>) -> anyhow::Result<PathBuf> {
    let url = match from {
        Some(url) => url,
        None => match config.database.url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) if url.starts_with("sqlite:") => url,
            _ => return Ok(config.db_path()),
        },
    };
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.is_empty())
        .with_context(|| {
            format!("--from must be sqlite:///path/to/bulwark.db or sqlite:PATH, not {url:?}")
        })?;
    Ok(Path::new(path).to_path_buf())
}

/// `url` with any password replaced, for printing.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit.min(UNITS.len() - 1)])
    }
}

/// Copy every blob of `source` (the data directory's filesystem store) to `target`, at most
/// [`BLOB_CONCURRENCY`] at a time. A blob the target already holds with the same size is
/// skipped; every other one is streamed through an upload of the target, its digest checked,
/// and committed. A failed blob does not stop the others: the report lists it. `progress` gets
/// (blobs done, blobs in total, bytes copied so far) after each blob.
pub(crate) async fn copy_blobs(
    source: Arc<dyn BlobStore>,
    target: Arc<dyn BlobStore>,
    mut progress: impl FnMut(u64, u64, u64),
) -> anyhow::Result<BlobCopyReport> {
    let blobs = source
        .list_blobs()
        .await
        .context("listing the source blobs")?;
    let mut report = BlobCopyReport {
        total: blobs.len() as u64,
        ..BlobCopyReport::default()
    };
    let mut results =
        futures::stream::iter(blobs.into_iter().enumerate().map(|(n, (digest, _))| {
            let (source, target) = (source.clone(), target.clone());
            async move {
                let outcome = copy_blob(source.as_ref(), target.as_ref(), &digest, n).await;
                (digest, outcome)
            }
        }))
        .buffer_unordered(BLOB_CONCURRENCY);
    let mut done = 0;
    while let Some((digest, outcome)) = results.next().await {
        match outcome {
            Ok(Outcome::Copied(size)) => {
                report.copied += 1;
                report.copied_bytes += size;
            }
            Ok(Outcome::Skipped(size)) => {
                report.skipped += 1;
                report.skipped_bytes += size;
            }
            Err(e) => report.failed.push((digest, format!("{e:#}"))),
        }
        done += 1;
        progress(done, report.total, report.copied_bytes);
    }
    Ok(report)
}

async fn copy_blob(
    source: &dyn BlobStore,
    target: &dyn BlobStore,
    digest: &Digest,
    n: usize,
) -> anyhow::Result<Outcome> {
    let size = source
        .blob_size(digest)
        .await
        .context("reading the source size")?
        .context("the blob disappeared from the source")?;
    match target
        .blob_size(digest)
        .await
        .context("checking the target")?
    {
        Some(existing) if existing == size => return Ok(Outcome::Skipped(size)),
        Some(existing) => bail!(
            "the target already has this blob with {existing} bytes instead of {size}; delete \
             that object and run again"
        ),
        None => {}
    }
    // Single use, never resumed: an ephemeral upload (`tmp-`), which start-up cleans away.
    let hex = digest.hex();
    let id = format!(
        "tmp-migrate-{}-{}-{n}",
        std::process::id(),
        hex.get(..16).unwrap_or(hex)
    );
    target
        .create_upload(&id, true)
        .await
        .context("starting an upload in the target")?;
    let copied = stream_into(source, target, digest, size, &id).await;
    let cleanup = target.delete_upload(&id).await;
    copied?;
    cleanup.context("removing the upload data from the target")?;
    match target
        .blob_size(digest)
        .await
        .context("checking the copy")?
    {
        Some(stored) if stored == size => Ok(Outcome::Copied(size)),
        other => bail!("after the copy the target reports {other:?} bytes instead of {size}"),
    }
}

async fn stream_into(
    source: &dyn BlobStore,
    target: &dyn BlobStore,
    digest: &Digest,
    size: u64,
    id: &str,
) -> anyhow::Result<()> {
    let reader = source
        .read_blob(digest, None)
        .await
        .context("opening the source blob")?;
    let mut hasher = Hasher::new(digest.algorithm());
    let written = target
        .append_upload(id, 0, reader_stream(reader), Some(&mut hasher))
        .await
        .context("writing to the target")?;
    if written != size {
        bail!("read {written} bytes, expected {size}");
    }
    let actual = hasher.finish();
    if &actual != digest {
        bail!("the source content hashes to {actual}: the stored blob is corrupt");
    }
    target
        .commit_upload(id, digest)
        .await
        .context("committing in the target")?;
    Ok(())
}

/// `reader` as a stream of chunks of at most [`READ_CHUNK`] bytes.
fn reader_stream(reader: BlobReader) -> ByteStream {
    let buffer = vec![0u8; READ_CHUNK];
    Box::pin(futures::stream::try_unfold(
        (reader, buffer),
        |(mut reader, mut buffer)| async move {
            let n = reader.read(&mut buffer).await?;
            if n == 0 {
                return Ok(None);
            }
            let chunk = Bytes::copy_from_slice(buffer.get(..n).unwrap_or_default());
            Ok(Some((chunk, (reader, buffer))))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls() {
        let config = Config {
            data_dir: PathBuf::from("/data"),
            ..Config::default()
        };
        assert_eq!(
            source_path(&config, None).unwrap(),
            PathBuf::from("/data/bulwark.db")
        );
        assert_eq!(
            source_path(&config, Some("sqlite:///srv/b.db")).unwrap(),
            PathBuf::from("/srv/b.db")
        );
        assert_eq!(
            source_path(&config, Some("sqlite:rel/b.db")).unwrap(),
            PathBuf::from("rel/b.db")
        );
        assert!(source_path(&config, Some("/srv/b.db")).is_err());
        let mut sqlite_url = config.clone();
        sqlite_url.database.url = Some("sqlite:/elsewhere.db".into());
        assert_eq!(
            source_path(&sqlite_url, None).unwrap(),
            PathBuf::from("/elsewhere.db")
        );
        let mut pg_url = config;
        pg_url.database.url = Some("postgres://h/db".into());
        assert_eq!(
            source_path(&pg_url, None).unwrap(),
            PathBuf::from("/data/bulwark.db")
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[tokio::test]
    async fn copies_streams_verifies_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let src = FsBlobStore::open(dir.path().join("src")).await.unwrap();
        let dst = FsBlobStore::open(dir.path().join("dst")).await.unwrap();
        let mut digests = Vec::new();
        for (i, len) in [0usize, 10, READ_CHUNK * 2 + 7].into_iter().enumerate() {
            let data: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
            let digest = Digest::sha256_of(&data);
            let id = format!("seed{i}");
            src.create_upload(&id, false).await.unwrap();
            let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from(data.clone()))]));
            src.append_upload(&id, 0, body, None).await.unwrap();
            src.commit_upload(&id, &digest).await.unwrap();
            digests.push((digest, data));
        }
        let (src, dst): (Arc<dyn BlobStore>, Arc<dyn BlobStore>) = (Arc::new(src), Arc::new(dst));
        let report = copy_blobs(src.clone(), dst.clone(), |_, _, _| {})
            .await
            .unwrap();
        assert_eq!((report.total, report.copied, report.skipped), (3, 3, 0));
        assert_eq!(report.copied_bytes, (READ_CHUNK * 2 + 17) as u64);
        assert!(report.failed.is_empty());
        for (digest, data) in &digests {
            let mut out = Vec::new();
            let mut reader = dst.read_blob(digest, None).await.unwrap();
            reader.read_to_end(&mut out).await.unwrap();
            assert_eq!(&out, data);
        }
        let again = copy_blobs(src, dst, |_, _, _| {}).await.unwrap();
        assert_eq!((again.copied, again.skipped), (0, 3));
    }

    #[tokio::test]
    async fn corrupt_blob_is_reported_and_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let src = FsBlobStore::open(dir.path().join("src")).await.unwrap();
        let dst = FsBlobStore::open(dir.path().join("dst")).await.unwrap();
        let claimed = Digest::sha256_of(b"the real content");
        src.create_upload("bad", false).await.unwrap();
        let body: ByteStream = Box::pin(futures::stream::iter([Ok(Bytes::from_static(
            b"something else!!",
        ))]));
        src.append_upload("bad", 0, body, None).await.unwrap();
        src.commit_upload("bad", &claimed).await.unwrap();
        let (src, dst): (Arc<dyn BlobStore>, Arc<dyn BlobStore>) = (Arc::new(src), Arc::new(dst));
        let report = copy_blobs(src, dst.clone(), |_, _, _| {}).await.unwrap();
        assert_eq!(report.copied, 0);
        assert_eq!(report.failed.len(), 1);
        assert!(
            report.failed[0].1.contains("corrupt"),
            "{:?}",
            report.failed
        );
        assert_eq!(dst.blob_size(&claimed).await.unwrap(), None);
        assert!(dst.list_blobs().await.unwrap().is_empty());
    }
}
