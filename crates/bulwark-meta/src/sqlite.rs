use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bulwark_core::store::{
    GcCounts, MetadataStore, NewManifest, PutManifestRejection, Referrer, StoredManifest,
    UploadSession,
};
use bulwark_core::{Error, Result};
use bulwark_oci::{Digest, RepoName, Tag};
use bytes::Bytes;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::{to_i64, to_u64};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite metadata store. All writes go through one connection (SQLite has one writer anyway),
/// reads through a small pool that WAL lets run beside it.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
}

fn db(e: sqlx::Error) -> Error {
    Error::metadata(e)
}

fn parse_digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(Error::metadata)
}

impl SqliteStore {
    /// Open (creating and migrating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged push survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        MIGRATOR.run(&writer).await.map_err(Error::metadata)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(db)?;
        Ok(SqliteStore { writer, reader })
    }

    /// Runs `query` on the writer with `synchronous = NORMAL`: its commit is not fsynced, but
    /// the next FULL commit's WAL fsync covers it too, and WAL stays consistent either way.
    /// Only for upload-session bookkeeping, which need not survive power loss (the client
    /// restarts its upload) and otherwise cost one serialized fsync per blob push.
    async fn write_unsynced<'q>(
        &self,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<()> {
        let mut conn = self.writer.acquire().await.map_err(db)?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        let result = query.execute(&mut *conn).await.map_err(db);
        if sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await
            .is_err()
        {
            // Never hand a connection that skips fsyncs to the next writer.
            conn.close_on_drop();
        }
        result.map(drop)
    }

    /// Open from a `sqlite://` URL or a plain path.
    pub async fn open_url(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        Self::open(Path::new(path)).await
    }

    /// Record a committed blob and link it to `repo`, inside `tx`.
    async fn record_blob(
        tx: &mut Transaction<'_, Sqlite>,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> Result<()> {
        let repo_id = Self::repo_id(tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, last_linked_at) VALUES (?, ?, ?)
             ON CONFLICT(digest) DO UPDATE SET last_linked_at = excluded.last_linked_at",
        )
        .bind(digest.to_string())
        .bind(to_i64(size))
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES (?, ?, ?)
             ON CONFLICT(repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn repo_id(tx: &mut Transaction<'_, Sqlite>, repo: &RepoName, now: i64) -> Result<i64> {
        sqlx::query("INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING")
            .bind(repo.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(repo.as_str())
            .fetch_one(&mut **tx)
            .await
            .map_err(db)
    }
}

fn manifest_row(row: &SqliteRow) -> Result<StoredManifest> {
    let digest: String = row.try_get("digest").map_err(db)?;
    let content: Vec<u8> = row.try_get("content").map_err(db)?;
    Ok(StoredManifest {
        digest: parse_digest(&digest)?,
        media_type: row.try_get("media_type").map_err(db)?,
        content: Bytes::from(content),
    })
}

const LIVE_MANIFESTS: &str = "
WITH RECURSIVE live(repo_id, digest) AS (
    SELECT repo_id, manifest_digest FROM tags
    UNION SELECT repo_id, digest FROM manifests WHERE pushed_at >= ?1
    UNION SELECT c.repo_id, c.child_digest FROM manifest_children c
          JOIN live l ON c.repo_id = l.repo_id AND c.parent_digest = l.digest
    UNION SELECT m.repo_id, m.digest FROM manifests m
          JOIN live l ON m.repo_id = l.repo_id AND m.subject = l.digest
)";

const REPO_HAS_CONTENT: &str = "(EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)
    OR EXISTS (SELECT 1 FROM repo_blobs b WHERE b.repo_id = r.id))";

const DEAD_MANIFEST: &str = "NOT EXISTS (SELECT 1 FROM live l
    WHERE l.repo_id = manifests.repo_id AND l.digest = manifests.digest)";

const DEAD_LINK: &str = "linked_at < ?1 AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb
    WHERE mb.repo_id = repo_blobs.repo_id AND mb.blob_digest = repo_blobs.digest)";

/// A link a real run removes: old, and used by no manifest that survives the run.
const DEAD_LINK_AFTER_GC: &str = "linked_at < ?1 AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb
    JOIN live l ON l.repo_id = mb.repo_id AND l.digest = mb.manifest_digest
    WHERE mb.repo_id = repo_blobs.repo_id AND mb.blob_digest = repo_blobs.digest)";

const UNLINKED_BLOB: &str = "last_linked_at < ?1 AND NOT EXISTS (SELECT 1 FROM repo_blobs rb
    WHERE rb.digest = blobs.digest)";

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn ready(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db)?;
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn create_upload(&self, id: &str, repo: &RepoName, now: i64) -> Result<()> {
        self.write_unsynced(
            sqlx::query("INSERT INTO uploads (id, repository, size, created_at, updated_at) VALUES (?, ?, 0, ?, ?)")
            .bind(id)
            .bind(repo.as_str())
            .bind(now)
            .bind(now),
        )
        .await
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadSession>> {
        // Read through the writer: a chunk acknowledged a moment ago must be seen.
        let row = sqlx::query(
            "SELECT id, repository, size, created_at, updated_at FROM uploads WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(db)?;
        row.map(|r| {
            Ok(UploadSession {
                id: r.try_get("id").map_err(db)?,
                repository: r.try_get("repository").map_err(db)?,
                size: to_u64(r.try_get("size").map_err(db)?),
                created_at: r.try_get("created_at").map_err(db)?,
                updated_at: r.try_get("updated_at").map_err(db)?,
            })
        })
        .transpose()
    }

    async fn set_upload_size(&self, id: &str, size: u64, now: i64) -> Result<()> {
        self.write_unsynced(
            sqlx::query("UPDATE uploads SET size = ?, updated_at = ? WHERE id = ?")
                .bind(to_i64(size))
                .bind(now)
                .bind(id),
        )
        .await
    }

    async fn delete_upload(&self, id: &str) -> Result<()> {
        self.write_unsynced(sqlx::query("DELETE FROM uploads WHERE id = ?").bind(id))
            .await
    }

    async fn stale_uploads(&self, before: i64) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < ?")
            .bind(before)
            .fetch_all(&self.writer)
            .await
            .map_err(db)
    }

    async fn all_uploads(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT id FROM uploads")
            .fetch_all(&self.writer)
            .await
            .map_err(db)
    }

    async fn blob_committed(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db)?;
        Self::record_blob(&mut tx, repo, digest, size, now).await?;
        tx.commit().await.map_err(db)
    }

    async fn upload_completed(
        &self,
        upload_id: &str,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await.map_err(db)?;
        Self::record_blob(&mut tx, repo, digest, size, now).await?;
        sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(upload_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn repo_blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repo_blobs rb
             JOIN repositories r ON r.id = rb.repo_id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = ? AND rb.digest = ?",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        Ok(size.map(to_u64))
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE digest = ?")
            .bind(digest.to_string())
            .fetch_optional(&self.writer)
            .await
            .map_err(db)?;
        Ok(size.map(to_u64))
    }

    async fn repos_with_blob(&self, digest: &Digest, limit: u32) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT r.name FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
             WHERE rb.digest = ? ORDER BY r.name LIMIT ?",
        )
        .bind(digest.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db)
    }

    async fn link_blob(&self, repo: &RepoName, digest: &Digest, now: i64) -> Result<bool> {
        let mut tx = self.writer.begin().await.map_err(db)?;
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blobs WHERE digest = ?")
            .bind(digest.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if known.is_none() {
            return Ok(false);
        }
        let repo_id = Self::repo_id(&mut tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES (?, ?, ?)
             ON CONFLICT(repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("UPDATE blobs SET last_linked_at = ? WHERE digest = ?")
            .bind(now)
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        // One statement, so a manifest pushed concurrently cannot lose its layer.
        let done = sqlx::query(
            "DELETE FROM repo_blobs WHERE digest = ?1
             AND repo_id = (SELECT id FROM repositories WHERE name = ?2)
             AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb
                             WHERE mb.repo_id = repo_blobs.repo_id AND mb.blob_digest = ?1)",
        )
        .bind(digest.to_string())
        .bind(repo.as_str())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn manifest_using_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<Digest>> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT mb.manifest_digest FROM manifest_blobs mb
             JOIN repositories r ON r.id = mb.repo_id
             WHERE r.name = ? AND mb.blob_digest = ? ORDER BY mb.manifest_digest LIMIT 1",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.writer)
        .await
        .map_err(db)?;
        found.as_deref().map(parse_digest).transpose()
    }

    async fn manifests_using_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<Digest>> {
        self.related_manifests(
            "SELECT mb.manifest_digest FROM manifest_blobs mb
             JOIN repositories r ON r.id = mb.repo_id
             WHERE r.name = ? AND mb.blob_digest = ? ORDER BY mb.manifest_digest LIMIT ?",
            repo,
            digest,
            limit,
        )
        .await
    }

    async fn parent_manifests(
        &self,
        repo: &RepoName,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<Digest>> {
        self.related_manifests(
            "SELECT mc.parent_digest FROM manifest_children mc
             JOIN repositories r ON r.id = mc.repo_id
             WHERE r.name = ? AND mc.child_digest = ? ORDER BY mc.parent_digest LIMIT ?",
            repo,
            digest,
            limit,
        )
        .await
    }

    async fn put_manifest(
        &self,
        repo: &RepoName,
        m: &NewManifest,
        tag: Option<&Tag>,
        now: i64,
    ) -> Result<Result<(), PutManifestRejection>> {
        let mut tx = self.writer.begin().await.map_err(db)?;
        let repo_id = Self::repo_id(&mut tx, repo, now).await?;
        for (digest, declared) in &m.blobs {
            let size: Option<i64> = sqlx::query_scalar(
                "SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repo_id = ? AND rb.digest = ?",
            )
            .bind(repo_id)
            .bind(digest.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            match size.map(to_u64) {
                None => return Ok(Err(PutManifestRejection::MissingBlob(digest.clone()))),
                Some(actual) if actual != *declared => {
                    return Ok(Err(PutManifestRejection::SizeMismatch {
                        digest: digest.clone(),
                        declared: *declared,
                        actual,
                    }));
                }
                Some(_) => {}
            }
        }
        for child in &m.children {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?")
                    .bind(repo_id)
                    .bind(child.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            if found.is_none() {
                return Ok(Err(PutManifestRejection::MissingChild(child.clone())));
            }
        }
        let digest = m.digest.to_string();
        sqlx::query(
            "INSERT INTO manifests (repo_id, digest, media_type, size, content, subject, artifact_type, annotations, pushed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(repo_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at",
        )
        .bind(repo_id)
        .bind(&digest)
        .bind(&m.media_type)
        .bind(to_i64(m.content.len() as u64))
        .bind(m.content.as_ref())
        .bind(m.subject.as_ref().map(Digest::to_string))
        .bind(m.artifact_type.as_deref())
        .bind(m.annotations.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        for (blob, _) in &m.blobs {
            sqlx::query("INSERT OR IGNORE INTO manifest_blobs (repo_id, manifest_digest, blob_digest) VALUES (?, ?, ?)")
                .bind(repo_id)
                .bind(&digest)
                .bind(blob.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        for child in &m.children {
            sqlx::query("INSERT OR IGNORE INTO manifest_children (repo_id, parent_digest, child_digest) VALUES (?, ?, ?)")
                .bind(repo_id)
                .bind(&digest)
                .bind(child.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repo_id, name, manifest_digest, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT(repo_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at",
            )
            .bind(repo_id)
            .bind(tag.as_str())
            .bind(&digest)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Ok(()))
    }

    async fn get_manifest_by_digest(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<StoredManifest>> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.content FROM manifests m
             JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? AND m.digest = ?",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        row.as_ref().map(manifest_row).transpose()
    }

    async fn get_manifest_by_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
    ) -> Result<Option<StoredManifest>> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.content FROM tags t
             JOIN repositories r ON r.id = t.repo_id
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest
             WHERE r.name = ? AND t.name = ?",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        row.as_ref().map(manifest_row).transpose()
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        // Tags, blob references and child links go with it (ON DELETE CASCADE).
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = ?
             AND repo_id = (SELECT id FROM repositories WHERE name = ?)",
        )
        .bind(digest.to_string())
        .bind(repo.as_str())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM tags WHERE name = ?
             AND repo_id = (SELECT id FROM repositories WHERE name = ?)",
        )
        .bind(tag.as_str())
        .bind(repo.as_str())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Option<Vec<String>>> {
        // A repository exists while it holds something, as in the catalog.
        let repo_id: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM repositories r WHERE name = ? AND {REPO_HAS_CONTENT}"
        ))
        .bind(repo.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(db)?;
        let Some(repo_id) = repo_id else {
            return Ok(None);
        };
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repo_id = ? AND name > ? ORDER BY name LIMIT ?",
        )
        .bind(repo_id)
        .bind(last.unwrap_or(""))
        .bind(limit.map(i64::from).unwrap_or(-1))
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        Ok(Some(tags))
    }

    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<String>> {
        sqlx::query_scalar(
            &format!("SELECT name FROM repositories r WHERE name > ? AND {REPO_HAS_CONTENT} ORDER BY name LIMIT ?"),
        )
        .bind(last.unwrap_or(""))
        .bind(limit.map(i64::from).unwrap_or(-1))
        .fetch_all(&self.reader)
        .await
        .map_err(db)
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m
             JOIN repositories r ON r.id = m.repo_id
             WHERE r.name = ? AND m.subject = ? AND (? IS NULL OR m.artifact_type = ?)
             ORDER BY m.pushed_at, m.digest",
        )
        .bind(repo.as_str())
        .bind(subject.to_string())
        .bind(artifact_type)
        .bind(artifact_type)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let digest: String = r.try_get("digest").map_err(db)?;
                Ok(Referrer {
                    digest: parse_digest(&digest)?,
                    media_type: r.try_get("media_type").map_err(db)?,
                    size: to_u64(r.try_get("size").map_err(db)?),
                    artifact_type: r.try_get("artifact_type").map_err(db)?,
                    annotations: r.try_get("annotations").map_err(db)?,
                })
            })
            .collect()
    }

    async fn gc_metadata(&self, cutoff: i64, dry_run: bool) -> Result<GcCounts> {
        if dry_run {
            let manifests: i64 = sqlx::query_scalar(&format!(
                "{LIVE_MANIFESTS} SELECT COUNT(*) FROM manifests WHERE {DEAD_MANIFEST}"
            ))
            .bind(cutoff)
            .fetch_one(&self.reader)
            .await
            .map_err(db)?;
            let links: i64 = sqlx::query_scalar(&format!(
                "{LIVE_MANIFESTS} SELECT COUNT(*) FROM repo_blobs WHERE {DEAD_LINK_AFTER_GC}"
            ))
            .bind(cutoff)
            .fetch_one(&self.reader)
            .await
            .map_err(db)?;
            return Ok(GcCounts {
                manifests: to_u64(manifests),
                links: to_u64(links),
            });
        }
        let manifests = sqlx::query(&format!(
            "{LIVE_MANIFESTS} DELETE FROM manifests WHERE {DEAD_MANIFEST}"
        ))
        .bind(cutoff)
        .execute(&self.writer)
        .await
        .map_err(db)?
        .rows_affected();
        let links = sqlx::query(&format!("DELETE FROM repo_blobs WHERE {DEAD_LINK}"))
            .bind(cutoff)
            .execute(&self.writer)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(GcCounts { manifests, links })
    }

    async fn gc_dry_run_blobs(&self, cutoff: i64) -> Result<Vec<Digest>> {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "{LIVE_MANIFESTS} SELECT digest FROM blobs WHERE last_linked_at < ?1
             AND NOT EXISTS (SELECT 1 FROM repo_blobs WHERE repo_blobs.digest = blobs.digest
                             AND NOT ({DEAD_LINK_AFTER_GC}))
             ORDER BY digest"
        ))
        .bind(cutoff)
        .fetch_all(&self.reader)
        .await
        .map_err(db)?;
        rows.iter().map(|d| parse_digest(d)).collect()
    }

    async fn unlinked_blobs(&self, cutoff: i64, limit: u32) -> Result<Vec<Digest>> {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT digest FROM blobs WHERE {UNLINKED_BLOB} ORDER BY digest LIMIT ?2"
        ))
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(db)?;
        rows.iter().map(|d| parse_digest(d)).collect()
    }

    async fn forget_blob_if_unlinked(&self, digest: &Digest, cutoff: i64) -> Result<bool> {
        let done = sqlx::query(&format!(
            "DELETE FROM blobs WHERE digest = ?2 AND {UNLINKED_BLOB}"
        ))
        .bind(cutoff)
        .bind(digest.to_string())
        .execute(&self.writer)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}

impl SqliteStore {
    /// Manifest digests of `repo` that `sql` relates to `digest` (bound as repository name,
    /// digest, limit).
    async fn related_manifests(
        &self,
        sql: &'static str,
        repo: &RepoName,
        digest: &Digest,
        limit: u32,
    ) -> Result<Vec<Digest>> {
        let found: Vec<String> = sqlx::query_scalar(sql)
            .bind(repo.as_str())
            .bind(digest.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db)?;
        found.iter().map(|d| parse_digest(d)).collect()
    }
}
