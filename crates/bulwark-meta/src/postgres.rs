//! The PostgreSQL metadata store, for registries whose replicas share one database.
//!
//! Same schema and semantics as [`crate::SqliteStore`]; see `migrations/postgres/`.
//!
//! # Concurrency
//!
//! Every connection runs at READ COMMITTED (forced at connect time), where each statement
//! sees the data committed when it started. SQLite's single writer serializes everything;
//! here several replicas write at once, so the invariants the checks protect need locks:
//!
//! * A manifest never references a blob its repository lost: `put_manifest` reads the links
//!   it checks `FOR SHARE` and keeps them locked until it commits its `manifest_blobs` rows.
//! * A link a manifest references is never removed: `unlink_blob` and the GC's link sweep
//!   first lock the link rows they mean to delete (`FOR UPDATE`), then delete them in a
//!   *second* statement whose `NOT EXISTS` check runs on a fresh snapshot.
//! * A blob with a link is never forgotten: `forget_blob_if_unlinked` does the same on the
//!   blob row, which `link_blob` and `blob_committed` update (and the links' foreign key
//!   share-locks) before they link it.
//!
//! Why two statements rather than one `DELETE ... WHERE NOT EXISTS (...)`: a single statement
//! evaluates its `NOT EXISTS` on the snapshot it started with. If it then waits for a row
//! lock held by a concurrent `put_manifest`, it proceeds once that commits, without looking
//! again at the `manifest_blobs` row the commit added (READ COMMITTED only re-checks the
//! locked row itself, and a `FOR SHARE` lock does not even change that row), and deletes a
//! link that is now in use. With the lock taken by an earlier statement, the one that checks
//! and deletes starts after any conflicting transaction has committed, and sees its rows.
//! Conversely, a `put_manifest` that comes second waits for the lock, then finds the link
//! gone and rejects the manifest, exactly as if the delete had run first.
//!
//! The GC's manifest sweep locks its candidates the same way, and both sweeps use
//! `SKIP LOCKED`: a manifest or link a push is using right now is left for the next run, and
//! the GC does not queue behind a push (nor deadlock with one).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bulwark_core::store::{
    BlobLock, GcCounts, MetadataStore, NewManifest, PutManifestRejection, Referrer, StoredManifest,
    UploadSession,
};
use bulwark_core::{Error, Result};
use bulwark_oci::{Digest, RepoName, Tag};
use bytes::Bytes;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use crate::{to_i64, to_u64};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL metadata store: a pool of connections to one database, which several
/// registry replicas may share.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    locks: PgPool,
}

/// A session-level advisory lock on one digest, held on a dedicated connection; dropping it
/// unlocks and returns the connection (or closes it if unlocking fails, which also unlocks).
struct AdvisoryLock {
    key: LockKey,
    conn: Option<sqlx::pool::PoolConnection<Postgres>>,
}

#[derive(Clone, Copy)]
enum LockKey {
    Digest(i64),
    Job(i32),
}

/// First key of the two-key advisory locks that name background jobs ("BWJ").
const JOB_LOCK_CLASS: i32 = 0x0042_574A;

impl Drop for AdvisoryLock {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let key = self.key;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime to unlock on: closing the connection releases the lock.
            let _ = conn.detach();
            return;
        };
        handle.spawn(async move {
            let unlocked = match key {
                LockKey::Digest(k) => {
                    sqlx::query("SELECT pg_advisory_unlock($1)")
                        .bind(k)
                        .execute(&mut *conn)
                        .await
                }
                LockKey::Job(k) => {
                    sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                        .bind(JOB_LOCK_CLASS)
                        .bind(k)
                        .execute(&mut *conn)
                        .await
                }
            };
            if unlocked.is_err() {
                let _ = conn.close().await;
            }
        });
    }
}

/// The advisory-lock key of a digest: its first eight bytes (collisions only serialise).
fn lock_key(digest: &Digest) -> i64 {
    let hex = digest.hex();
    let prefix = hex.get(..16).unwrap_or("0");
    u64::from_str_radix(prefix, 16).map_or(0, |v| v as i64)
}

fn db(e: sqlx::Error) -> Error {
    Error::metadata(e)
}

fn parse_digest(s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(Error::metadata)
}

fn digest_strings<'a>(digests: impl IntoIterator<Item = &'a Digest>) -> Vec<String> {
    digests.into_iter().map(Digest::to_string).collect()
}

impl PostgresStore {
    /// Connect to the database at `url` (`postgres://user:password@host:port/database`) and
    /// bring its schema up to date. Replicas starting together are fine: the migrations run
    /// under a database-wide lock.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(db)?;
        Self::open_with(options).await
    }

    /// [`PostgresStore::open`] with explicit connection options.
    pub async fn open_with(options: PgConnectOptions) -> Result<Self> {
        let options = if options.get_application_name().is_none() {
            options.application_name("bulwark")
        } else {
            options
        };
        // The locking scheme (module docs) relies on READ COMMITTED, whatever the server's or
        // the URL's default_transaction_isolation says (a later `-c` wins; the backslash
        // keeps the value's space inside one startup option). JIT off: the planner badly
        // overestimates the GC's recursive queries, and compiling them then costs far more
        // (half a second each) than running them; nothing here is a long analytic query.
        let options = options.options([
            ("default_transaction_isolation", r"read\ committed"),
            ("jit", "off"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db)?;
        MIGRATOR.run(&pool).await.map_err(Error::metadata)?;
        // Digest locks hold a connection each while the holder uses `pool` for its writes;
        // a separate pool means lock holders can never starve each other of connections.
        let locks = PgPoolOptions::new()
            .max_connections(32)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy_with(pool.connect_options().as_ref().clone());
        Ok(PostgresStore { pool, locks })
    }

    /// Close every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Record a committed blob and link it to `repo`, inside `tx`.
    async fn record_blob(
        tx: &mut Transaction<'_, Postgres>,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        now: i64,
    ) -> Result<()> {
        // The blob row first: waits for a `forget_blob_if_unlinked` holding it, and inserts
        // afresh if that one forgot it.
        sqlx::query(
            "INSERT INTO blobs (digest, size, last_linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET last_linked_at = excluded.last_linked_at",
        )
        .bind(digest.to_string())
        .bind(to_i64(size))
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        let repo_id = Self::repo_id(tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn repo_id(tx: &mut Transaction<'_, Postgres>, repo: &RepoName, now: i64) -> Result<i64> {
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(repo.as_str())
                .fetch_optional(&mut **tx)
                .await
                .map_err(db)?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(repo.as_str())
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
        if let Some(id) = created {
            return Ok(id);
        }
        // Another transaction created it meanwhile: the insert waited for that one to
        // commit, and this new statement sees it.
        sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(repo.as_str())
            .fetch_one(&mut **tx)
            .await
            .map_err(db)
    }
}

fn manifest_row(row: &PgRow) -> Result<StoredManifest> {
    let digest: String = row.try_get("digest").map_err(db)?;
    let content: Vec<u8> = row.try_get("content").map_err(db)?;
    Ok(StoredManifest {
        digest: parse_digest(&digest)?,
        media_type: row.try_get("media_type").map_err(db)?,
        content: Bytes::from(content),
    })
}

/// Manifests reachable from tags or pushed at or after `$1`, through index children and
/// referrers (manifests whose subject is live). PostgreSQL allows one recursive reference,
/// so both kinds of edge hang off a single `live` row through a lateral join.
const LIVE_MANIFESTS: &str = "
WITH RECURSIVE live(repo_id, digest) AS (
    SELECT repo_id, manifest_digest FROM tags
    UNION SELECT repo_id, digest FROM manifests WHERE pushed_at >= $1
    UNION SELECT e.repo_id, e.digest FROM live l CROSS JOIN LATERAL (
        SELECT c.repo_id, c.child_digest FROM manifest_children c
         WHERE c.repo_id = l.repo_id AND c.parent_digest = l.digest
        UNION ALL
        SELECT m.repo_id, m.digest FROM manifests m
         WHERE m.repo_id = l.repo_id AND m.subject = l.digest
    ) e(repo_id, digest)
)";

const REPO_HAS_CONTENT: &str = "(EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id)
    OR EXISTS (SELECT 1 FROM repo_blobs b WHERE b.repo_id = r.id))";

const DEAD_MANIFEST: &str = "NOT EXISTS (SELECT 1 FROM live l
    WHERE l.repo_id = manifests.repo_id AND l.digest = manifests.digest)";

const DEAD_LINK: &str = "linked_at < $1 AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb
    WHERE mb.repo_id = repo_blobs.repo_id AND mb.blob_digest = repo_blobs.digest)";

/// A link a real run removes: old, and used by no manifest that survives the run.
const DEAD_LINK_AFTER_GC: &str = "linked_at < $1 AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb
    JOIN live l ON l.repo_id = mb.repo_id AND l.digest = mb.manifest_digest
    WHERE mb.repo_id = repo_blobs.repo_id AND mb.blob_digest = repo_blobs.digest)";

const UNLINKED_BLOB: &str = "last_linked_at < $1 AND NOT EXISTS (SELECT 1 FROM repo_blobs rb
    WHERE rb.digest = blobs.digest)";

/// Split `(repo_id, digest)` keys into the two arrays `unnest($2, $3)` takes.
fn key_arrays(keys: Vec<(i64, String)>) -> (Vec<i64>, Vec<String>) {
    keys.into_iter().unzip()
}

#[async_trait]
impl MetadataStore for PostgresStore {
    async fn ready(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn try_job_lock(&self, job: &str) -> Result<Option<BlobLock>> {
        // Two-key advisory locks live in a space apart from the one-key digest locks.
        let key = job
            .bytes()
            .fold(0i32, |h, b| h.wrapping_mul(31).wrapping_add(i32::from(b)));
        let mut conn = self.locks.acquire().await.map_err(db)?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(JOB_LOCK_CLASS)
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        if !got {
            return Ok(None);
        }
        Ok(Some(BlobLock::held(AdvisoryLock {
            key: LockKey::Job(key),
            conn: Some(conn),
        })))
    }

    async fn lock_blob(&self, digest: &Digest) -> Result<BlobLock> {
        let key = lock_key(digest);
        let mut conn = self.locks.acquire().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        Ok(BlobLock::held(AdvisoryLock {
            key: LockKey::Digest(key),
            conn: Some(conn),
        }))
    }

    async fn create_upload(&self, id: &str, repo: &RepoName, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repository, size, created_at, updated_at)
             VALUES ($1, $2, 0, $3, $3)",
        )
        .bind(id)
        .bind(repo.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadSession>> {
        let row = sqlx::query(
            "SELECT id, repository, size, created_at, updated_at FROM uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
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
        sqlx::query("UPDATE uploads SET size = $1, updated_at = $2 WHERE id = $3")
            .bind(to_i64(size))
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn delete_upload(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn stale_uploads(&self, before: i64) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < $1")
            .bind(before)
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn all_uploads(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT id FROM uploads")
            .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(db)?;
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        Self::record_blob(&mut tx, repo, digest, size, now).await?;
        sqlx::query("DELETE FROM uploads WHERE id = $1")
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
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(size.map(to_u64))
    }

    async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        Ok(size.map(to_u64))
    }

    async fn repos_with_blob(&self, digest: &Digest, limit: u32) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT r.name FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
             WHERE rb.digest = $1 ORDER BY r.name LIMIT $2",
        )
        .bind(digest.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn link_blob(&self, repo: &RepoName, digest: &Digest, now: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Checking that the blob is known by updating it locks its row: a concurrent
        // `forget_blob_if_unlinked` either forgot it already (no row: unknown), or waits for
        // this commit and then sees the link.
        let known = sqlx::query("UPDATE blobs SET last_linked_at = $1 WHERE digest = $2")
            .bind(now)
            .bind(digest.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        if !known {
            return Ok(false);
        }
        let repo_id = Self::repo_id(&mut tx, repo, now).await?;
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        // Lock the link, then check and delete in a statement of its own (module docs): a
        // manifest pushed concurrently either committed before (and is seen) or waits for
        // this commit (and finds the blob missing).
        let mut tx = self.pool.begin().await.map_err(db)?;
        let repo_id: Option<i64> = sqlx::query_scalar(
            "SELECT rb.repo_id FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id
             WHERE r.name = $1 AND rb.digest = $2 FOR UPDATE OF rb",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(repo_id) = repo_id else {
            return Ok(false);
        };
        let done = sqlx::query(
            "DELETE FROM repo_blobs WHERE repo_id = $1 AND digest = $2
             AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb
                             WHERE mb.repo_id = $1 AND mb.blob_digest = $2)",
        )
        .bind(repo_id)
        .bind(digest.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
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
             WHERE r.name = $1 AND mb.blob_digest = $2 ORDER BY mb.manifest_digest LIMIT 1",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
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
             WHERE r.name = $1 AND mb.blob_digest = $2 ORDER BY mb.manifest_digest LIMIT $3",
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
             WHERE r.name = $1 AND mc.child_digest = $2 ORDER BY mc.parent_digest LIMIT $3",
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        let repo_id = Self::repo_id(&mut tx, repo, now).await?;
        if !m.blobs.is_empty() {
            // FOR SHARE keeps these links until this transaction ends: `unlink_blob` and the
            // GC cannot remove one between this check and the commit of the references
            // below. One statement in digest order, so that concurrent lockers take the rows
            // in the same order.
            let rows = sqlx::query(
                "SELECT rb.digest, b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repo_id = $1 AND rb.digest = ANY($2)
                 ORDER BY rb.digest FOR SHARE OF rb",
            )
            .bind(repo_id)
            .bind(digest_strings(m.blobs.iter().map(|(d, _)| d)))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let mut linked = std::collections::HashMap::with_capacity(rows.len());
            for row in &rows {
                let digest: String = row.try_get("digest").map_err(db)?;
                let size: i64 = row.try_get("size").map_err(db)?;
                linked.insert(digest, to_u64(size));
            }
            // Report the first bad reference in the manifest's own order.
            for (digest, declared) in &m.blobs {
                match linked.get(&digest.to_string()) {
                    None => return Ok(Err(PutManifestRejection::MissingBlob(digest.clone()))),
                    Some(&actual) if actual != *declared => {
                        return Ok(Err(PutManifestRejection::SizeMismatch {
                            digest: digest.clone(),
                            declared: *declared,
                            actual,
                        }));
                    }
                    Some(_) => {}
                }
            }
        }
        if !m.children.is_empty() {
            // Locked too, so the GC (which skips locked rows) leaves them to the next run.
            let found: Vec<String> = sqlx::query_scalar(
                "SELECT digest FROM manifests WHERE repo_id = $1 AND digest = ANY($2)
                 ORDER BY digest FOR SHARE",
            )
            .bind(repo_id)
            .bind(digest_strings(&m.children))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            if let Some(child) = m.children.iter().find(|c| !found.contains(&c.to_string())) {
                return Ok(Err(PutManifestRejection::MissingChild(child.clone())));
            }
        }
        let digest = m.digest.to_string();
        sqlx::query(
            "INSERT INTO manifests (repo_id, digest, media_type, size, content, subject, artifact_type, annotations, pushed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (repo_id, digest) DO UPDATE SET pushed_at = excluded.pushed_at",
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
        if !m.blobs.is_empty() {
            sqlx::query(
                "INSERT INTO manifest_blobs (repo_id, manifest_digest, blob_digest)
                 SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(digest_strings(m.blobs.iter().map(|(d, _)| d)))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        if !m.children.is_empty() {
            sqlx::query(
                "INSERT INTO manifest_children (repo_id, parent_digest, child_digest)
                 SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(digest_strings(&m.children))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        if let Some(tag) = tag {
            sqlx::query(
                "INSERT INTO tags (repo_id, name, manifest_digest, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repo_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at",
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
             JOIN repositories r ON r.id = m.repo_id WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repo.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.pool)
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
             WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repo.as_str())
        .bind(tag.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(manifest_row).transpose()
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<bool> {
        // Tags, blob references and child links go with it (ON DELETE CASCADE).
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = $1
             AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(digest.to_string())
        .bind(repo.as_str())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM tags WHERE name = $1
             AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(tag.as_str())
        .bind(repo.as_str())
        .execute(&self.pool)
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
            "SELECT id FROM repositories r WHERE name = $1 AND {REPO_HAS_CONTENT}"
        ))
        .bind(repo.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(repo_id) = repo_id else {
            return Ok(None);
        };
        // Names are COLLATE "C": byte order, as in SQLite. LIMIT NULL means no limit.
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last.unwrap_or(""))
        .bind(limit.map(i64::from))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(Some(tags))
    }

    async fn list_repositories(
        &self,
        last: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<String>> {
        sqlx::query_scalar(&format!(
            "SELECT name FROM repositories r WHERE name > $1 AND {REPO_HAS_CONTENT}
             ORDER BY name LIMIT $2"
        ))
        .bind(last.unwrap_or(""))
        .bind(limit.map(i64::from))
        .fetch_all(&self.pool)
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
             WHERE r.name = $1 AND m.subject = $2 AND ($3::text IS NULL OR m.artifact_type = $3)
             ORDER BY m.pushed_at, m.digest",
        )
        .bind(repo.as_str())
        .bind(subject.to_string())
        .bind(artifact_type)
        .fetch_all(&self.pool)
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
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
            let links: i64 = sqlx::query_scalar(&format!(
                "{LIVE_MANIFESTS} SELECT COUNT(*) FROM repo_blobs WHERE {DEAD_LINK_AFTER_GC}"
            ))
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
            return Ok(GcCounts {
                manifests: to_u64(manifests),
                links: to_u64(links),
            });
        }

        // Manifests: lock the dead ones (skipping any a push holds), then delete those of
        // them that a fresh look still finds dead (module docs).
        let mut tx = self.pool.begin().await.map_err(db)?;
        let candidates: Vec<(i64, String)> = sqlx::query_as(&format!(
            "{LIVE_MANIFESTS} SELECT repo_id, digest FROM manifests WHERE {DEAD_MANIFEST}
             ORDER BY repo_id, digest FOR UPDATE OF manifests SKIP LOCKED"
        ))
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut manifests = 0;
        if !candidates.is_empty() {
            let (repo_ids, digests) = key_arrays(candidates);
            manifests = sqlx::query(&format!(
                "{LIVE_MANIFESTS} DELETE FROM manifests
                 USING unnest($2::bigint[], $3::text[]) AS c(repo_id, digest)
                 WHERE manifests.repo_id = c.repo_id AND manifests.digest = c.digest
                 AND {DEAD_MANIFEST}"
            ))
            .bind(cutoff)
            .bind(repo_ids)
            .bind(digests)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        }
        tx.commit().await.map_err(db)?;

        // Then the links no manifest references any more, the same way.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let candidates: Vec<(i64, String)> = sqlx::query_as(&format!(
            "SELECT repo_id, digest FROM repo_blobs WHERE {DEAD_LINK}
             ORDER BY repo_id, digest FOR UPDATE SKIP LOCKED"
        ))
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let mut links = 0;
        if !candidates.is_empty() {
            let (repo_ids, digests) = key_arrays(candidates);
            links = sqlx::query(&format!(
                "DELETE FROM repo_blobs USING unnest($2::bigint[], $3::text[]) AS c(repo_id, digest)
                 WHERE repo_blobs.repo_id = c.repo_id AND repo_blobs.digest = c.digest
                 AND {DEAD_LINK}"
            ))
            .bind(cutoff)
            .bind(repo_ids)
            .bind(digests)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(GcCounts { manifests, links })
    }

    async fn gc_dry_run_blobs(&self, cutoff: i64) -> Result<Vec<Digest>> {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "{LIVE_MANIFESTS} SELECT digest FROM blobs WHERE last_linked_at < $1
             AND NOT EXISTS (SELECT 1 FROM repo_blobs WHERE repo_blobs.digest = blobs.digest
                             AND NOT ({DEAD_LINK_AFTER_GC}))
             ORDER BY digest"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|d| parse_digest(d)).collect()
    }

    async fn unlinked_blobs(&self, cutoff: i64, limit: u32) -> Result<Vec<Digest>> {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT digest FROM blobs WHERE {UNLINKED_BLOB} ORDER BY digest LIMIT $2"
        ))
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(|d| parse_digest(d)).collect()
    }

    async fn forget_blob_if_unlinked(&self, digest: &Digest, cutoff: i64) -> Result<bool> {
        // Lock the blob row, then check and delete with a fresh snapshot (module docs).
        // `link_blob` and `blob_committed` write that row before they link, so they either
        // committed already (the check sees their link or their newer last_linked_at) or
        // wait for this commit (and find the blob forgotten, or record it anew).
        let mut tx = self.pool.begin().await.map_err(db)?;
        let candidate: Option<i32> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM blobs WHERE digest = $2 AND {UNLINKED_BLOB} FOR UPDATE"
        ))
        .bind(cutoff)
        .bind(digest.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if candidate.is_none() {
            return Ok(false);
        }
        let done = sqlx::query(&format!(
            "DELETE FROM blobs WHERE digest = $2 AND {UNLINKED_BLOB}"
        ))
        .bind(cutoff)
        .bind(digest.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}

impl PostgresStore {
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
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        found.iter().map(|d| parse_digest(d)).collect()
    }
}
