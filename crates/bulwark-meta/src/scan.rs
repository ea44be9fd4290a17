//! [`ScanStore`] on SQLite and PostgreSQL: the scan job queue, stored results and events
//! (schema in `migrations/*/0004_scans.sql`). Both dialects take the same statements (`$N`
//! parameters) but for the claim, one `UPDATE … RETURNING` that picks the oldest claimable
//! job: on SQLite through the single writer connection, on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so workers of several replicas never claim one job twice nor
//! wait on each other. A job whose worker died is claimed again once its lease expires.

use std::sync::LazyLock;

use async_trait::async_trait;
use bulwark_scanner::jobs::{
    JobState, Rematch, ScanEvent, ScanJob, ScanStore, ScanSummary, StoredScan, UnscannedManifest,
};
use bulwark_scanner::vulndb::store::{StoreError, StoreResult};

use crate::sqlite_vuln::common::backend;
use crate::{PostgresStore, SqliteStore, to_i64, to_u64};

const JOB_COLUMNS: &str = "id, repository, digest, state, attempts, claimed_by, claimed_at, \
                           error, created_at, updated_at";

const ENQUEUE: &str = "INSERT INTO scan_jobs (repository, digest, state, attempts, created_at, updated_at) \
     VALUES ($1, $2, 'queued', 0, $3, $3) \
     ON CONFLICT (repository, digest) WHERE state = 'queued' DO NOTHING";

/// The claimable jobs, oldest first: queued, or running with an expired lease (`$3`).
const CLAIMABLE: &str = "SELECT id FROM scan_jobs \
     WHERE state = 'queued' OR (state = 'running' AND claimed_at < $3) \
     ORDER BY id LIMIT 1";

fn claim(lock: &str) -> String {
    format!(
        "UPDATE scan_jobs SET state = 'running', claimed_by = $1, claimed_at = $2, \
         attempts = attempts + 1, error = NULL, updated_at = $2 \
         WHERE id = ({CLAIMABLE}{lock}) RETURNING {JOB_COLUMNS}"
    )
}

/// SQLite has one writer at a time, so its claim needs no row lock.
static CLAIM_SQLITE: LazyLock<String> = LazyLock::new(|| claim(""));
/// Workers of several replicas skip each other's candidate rows instead of waiting on them.
static CLAIM_POSTGRES: LazyLock<String> = LazyLock::new(|| claim(" FOR UPDATE SKIP LOCKED"));

const COMPLETE: &str = "UPDATE scan_jobs SET state = 'done', error = NULL, updated_at = $3 \
     WHERE id = $1 AND claimed_by = $2 AND state = 'running'";

/// `$4`: the error; `$5`: whether to queue the job again (unless another one is queued).
const FAIL: &str = "UPDATE scan_jobs SET error = $4, updated_at = $3, \
     state = CASE WHEN $5 AND NOT EXISTS (SELECT 1 FROM scan_jobs q \
         WHERE q.repository = scan_jobs.repository AND q.digest = scan_jobs.digest \
         AND q.state = 'queued') THEN 'queued' ELSE 'failed' END \
     WHERE id = $1 AND claimed_by = $2 AND state = 'running'";

/// Only the holder of a running job renews its lease.
const RENEW: &str = "UPDATE scan_jobs SET claimed_at = $3, updated_at = $3 \
     WHERE id = $1 AND claimed_by = $2 AND state = 'running'";

/// Finished jobs updated before `$1`, `$2` at a time; the newest job of a subject whose
/// manifest still exists is kept (its status and error stay visible).
const PRUNE_JOBS: &str = "DELETE FROM scan_jobs WHERE id IN (\
     SELECT j.id FROM scan_jobs j \
     WHERE j.state IN ('done', 'failed') AND j.updated_at < $1 \
     AND (EXISTS (SELECT 1 FROM scan_jobs n WHERE n.repository = j.repository \
             AND n.digest = j.digest AND n.id > j.id) \
          OR NOT EXISTS (SELECT 1 FROM manifests m JOIN repositories r ON r.id = m.repo_id \
             WHERE r.name = j.repository AND m.digest = j.digest)) \
     ORDER BY j.id LIMIT $2)";

/// Results of digests no repository holds any more. `NOT IN` over an uncorrelated
/// subquery: `manifests` has no index on the digest alone, and both databases build the
/// set once instead of scanning it per result.
const PRUNE_RESULTS: &str = "DELETE FROM scan_results WHERE digest IN (\
     SELECT s.digest FROM scan_results s \
     WHERE s.digest NOT IN (SELECT m.digest FROM manifests m) LIMIT $1)";

/// Backfill candidates after (`$1`, `$2`): not referrers, no result, no queued or running
/// job. Whether one is an image (not an index nor an artifact) is decided by parsing it:
/// `artifact_type` is set for images too (the config media type, for the referrers API).
const UNSCANNED: &str = "SELECT r.name, m.digest, m.media_type, m.content \
     FROM manifests m JOIN repositories r ON r.id = m.repo_id \
     WHERE m.subject IS NULL \
     AND (r.name > $1 OR (r.name = $1 AND m.digest > $2)) \
     AND NOT EXISTS (SELECT 1 FROM scan_results s WHERE s.digest = m.digest) \
     AND NOT EXISTS (SELECT 1 FROM scan_jobs j WHERE j.repository = r.name \
         AND j.digest = m.digest AND j.state IN ('queued', 'running')) \
     ORDER BY r.name, m.digest LIMIT $3";

/// repository, digest, media type, content.
type UnscannedTuple = (String, String, String, Vec<u8>);

fn unscanned_from(t: UnscannedTuple) -> UnscannedManifest {
    UnscannedManifest {
        repository: t.0,
        digest: t.1,
        media_type: t.2,
        content: t.3,
    }
}

const PENDING: &str = "SELECT \
     COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END), 0) \
     FROM scan_jobs WHERE state IN ('queued', 'running')";

static LATEST_JOB: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {JOB_COLUMNS} FROM scan_jobs WHERE repository = $1 AND digest = $2 \
         ORDER BY id DESC LIMIT 1"
    )
});

const RESULT_COLUMNS: &str = "digest, repository, inventory, report, lint, summary, \
                              scanned_at, matched_at, vulndb_generation";

const SAVE_RESULT: &str = "INSERT INTO scan_results (digest, repository, inventory, report, lint, summary, grade, \
     critical, high, scanned_at, matched_at, vulndb_generation) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (digest) DO UPDATE SET repository = excluded.repository, \
     inventory = excluded.inventory, report = excluded.report, lint = excluded.lint, \
     summary = excluded.summary, grade = excluded.grade, critical = excluded.critical, \
     high = excluded.high, scanned_at = excluded.scanned_at, \
     matched_at = excluded.matched_at, vulndb_generation = excluded.vulndb_generation";

/// Never moves a result back to an older generation (a slow rescan racing a newer one).
const SAVE_REMATCH: &str = "UPDATE scan_results SET report = $2, summary = $3, grade = $4, critical = $5, \
     high = $6, matched_at = $7, vulndb_generation = $8 \
     WHERE digest = $1 AND vulndb_generation <= $8";

static RESULT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {RESULT_COLUMNS} FROM scan_results WHERE digest = $1"));

static STALE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RESULT_COLUMNS} FROM scan_results WHERE vulndb_generation < $1 \
         ORDER BY matched_at, digest LIMIT $2"
    )
});

const INSERT_EVENT: &str = "INSERT INTO scan_events (kind, repository, digest, detail, created_at) \
     VALUES ($1, $2, $3, $4, $5) RETURNING id";
const EVENTS: &str = "SELECT id, kind, repository, digest, detail, created_at FROM scan_events \
     ORDER BY id DESC LIMIT $1";
const EVENTS_OF_KIND: &str = "SELECT id, kind, repository, digest, detail, created_at FROM scan_events \
     WHERE kind = $2 ORDER BY id DESC LIMIT $1";

/// id, repository, digest, state, attempts, claimed_by, claimed_at, error, created_at,
/// updated_at.
type JobTuple = (
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

fn job_from(t: JobTuple) -> StoreResult<ScanJob> {
    let state =
        JobState::parse(&t.3).ok_or_else(|| StoreError::corrupt(format!("job state {:?}", t.3)))?;
    Ok(ScanJob {
        id: t.0,
        repository: t.1,
        digest: t.2,
        state,
        attempts: u32::try_from(t.4).unwrap_or(u32::MAX),
        claimed_by: t.5,
        claimed_at: t.6,
        error: t.7,
        created_at: t.8,
        updated_at: t.9,
    })
}

/// digest, repository, inventory, report, lint, summary, scanned_at, matched_at,
/// vulndb_generation.
type ResultTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
);

fn json(what: &str, s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

fn result_from(t: ResultTuple) -> StoreResult<StoredScan> {
    let summary: ScanSummary = serde_json::from_str(&t.5)
        .map_err(|e| StoreError::corrupt(format!("scan summary: {e}")))?;
    Ok(StoredScan {
        digest: t.0,
        repository: t.1,
        inventory: json("scan inventory", &t.2)?,
        report: json("scan report", &t.3)?,
        lint: json("lint report", &t.4)?,
        summary,
        scanned_at: t.6,
        matched_at: t.7,
        vulndb_generation: t.8,
    })
}

/// The JSON columns of a result: inventory, report, lint, summary.
fn result_params(s: &StoredScan) -> [String; 4] {
    [
        s.inventory.to_string(),
        s.report.to_string(),
        s.lint.to_string(),
        summary_json(&s.summary),
    ]
}

fn summary_json(s: &ScanSummary) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "{}".to_owned())
}

/// id, kind, repository, digest, detail, created_at.
type EventTuple = (i64, String, String, String, String, i64);

fn event_from(t: EventTuple) -> StoreResult<ScanEvent> {
    Ok(ScanEvent {
        id: t.0,
        kind: t.1,
        repository: t.2,
        digest: t.3,
        detail: json("event detail", &t.4)?,
        created_at: t.5,
    })
}

/// One implementation for both backends: `$write` names the pool to write through, `$read`
/// the one to read from and `$claim` the claim statement.
macro_rules! scan_store {
    ($store:ty, $write:ident, $read:ident, $claim:ident) => {
        #[async_trait]
        impl ScanStore for $store {
            async fn enqueue(&self, repository: &str, digest: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(ENQUEUE)
                    .bind(repository)
                    .bind(digest)
                    .bind(now)
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim(
                &self,
                worker: &str,
                now: i64,
                lease_secs: i64,
            ) -> StoreResult<Option<ScanJob>> {
                let row: Option<JobTuple> = sqlx::query_as($claim.as_str())
                    .bind(worker)
                    .bind(now)
                    .bind(now.saturating_sub(lease_secs))
                    .fetch_optional(&self.$write)
                    .await
                    .map_err(backend)?;
                row.map(job_from).transpose()
            }

            async fn complete(&self, id: i64, worker: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(COMPLETE)
                    .bind(id)
                    .bind(worker)
                    .bind(now)
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() == 1)
            }

            async fn fail(
                &self,
                id: i64,
                worker: &str,
                error: &str,
                retry: bool,
                now: i64,
            ) -> StoreResult<bool> {
                let done = sqlx::query(FAIL)
                    .bind(id)
                    .bind(worker)
                    .bind(now)
                    .bind(error)
                    .bind(retry)
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() == 1)
            }

            async fn renew(&self, id: i64, worker: &str, now: i64) -> StoreResult<bool> {
                let done = sqlx::query(RENEW)
                    .bind(id)
                    .bind(worker)
                    .bind(now)
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() == 1)
            }

            async fn prune_jobs(&self, before: i64, limit: u32) -> StoreResult<u64> {
                let done = sqlx::query(PRUNE_JOBS)
                    .bind(before)
                    .bind(i64::from(limit))
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected())
            }

            async fn prune_results(&self, limit: u32) -> StoreResult<u64> {
                let done = sqlx::query(PRUNE_RESULTS)
                    .bind(i64::from(limit))
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected())
            }

            async fn unscanned_manifests(
                &self,
                after: Option<(&str, &str)>,
                limit: u32,
            ) -> StoreResult<Vec<UnscannedManifest>> {
                let (repository, digest) = after.unwrap_or(("", ""));
                let rows: Vec<UnscannedTuple> = sqlx::query_as(UNSCANNED)
                    .bind(repository)
                    .bind(digest)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err(backend)?;
                Ok(rows.into_iter().map(unscanned_from).collect())
            }

            async fn latest_job(
                &self,
                repository: &str,
                digest: &str,
            ) -> StoreResult<Option<ScanJob>> {
                let row: Option<JobTuple> = sqlx::query_as(LATEST_JOB.as_str())
                    .bind(repository)
                    .bind(digest)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err(backend)?;
                row.map(job_from).transpose()
            }

            async fn pending_counts(&self) -> StoreResult<(u64, u64)> {
                let (queued, running): (i64, i64) = sqlx::query_as(PENDING)
                    .fetch_one(&self.$read)
                    .await
                    .map_err(backend)?;
                Ok((to_u64(queued), to_u64(running)))
            }

            async fn save_result(&self, scan: &StoredScan) -> StoreResult<()> {
                let [inventory, report, lint, summary] = result_params(scan);
                sqlx::query(SAVE_RESULT)
                    .bind(&scan.digest)
                    .bind(&scan.repository)
                    .bind(inventory)
                    .bind(report)
                    .bind(lint)
                    .bind(summary)
                    .bind(&scan.summary.grade)
                    .bind(to_i64(scan.summary.critical))
                    .bind(to_i64(scan.summary.high))
                    .bind(scan.scanned_at)
                    .bind(scan.matched_at)
                    .bind(scan.vulndb_generation)
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn result(&self, digest: &str) -> StoreResult<Option<StoredScan>> {
                let row: Option<ResultTuple> = sqlx::query_as(RESULT.as_str())
                    .bind(digest)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err(backend)?;
                row.map(result_from).transpose()
            }

            async fn stale_results(
                &self,
                generation: i64,
                limit: u32,
            ) -> StoreResult<Vec<StoredScan>> {
                let rows: Vec<ResultTuple> = sqlx::query_as(STALE.as_str())
                    .bind(generation)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await
                    .map_err(backend)?;
                rows.into_iter().map(result_from).collect()
            }

            async fn save_rematch(&self, r: &Rematch) -> StoreResult<()> {
                sqlx::query(SAVE_REMATCH)
                    .bind(&r.digest)
                    .bind(r.report.to_string())
                    .bind(summary_json(&r.summary))
                    .bind(&r.summary.grade)
                    .bind(to_i64(r.summary.critical))
                    .bind(to_i64(r.summary.high))
                    .bind(r.matched_at)
                    .bind(r.vulndb_generation)
                    .execute(&self.$write)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn record_event(
                &self,
                kind: &str,
                repository: &str,
                digest: &str,
                detail: &serde_json::Value,
                now: i64,
            ) -> StoreResult<i64> {
                sqlx::query_scalar(INSERT_EVENT)
                    .bind(kind)
                    .bind(repository)
                    .bind(digest)
                    .bind(detail.to_string())
                    .bind(now)
                    .fetch_one(&self.$write)
                    .await
                    .map_err(backend)
            }

            async fn events(&self, kind: Option<&str>, limit: u32) -> StoreResult<Vec<ScanEvent>> {
                let rows: Vec<EventTuple> = match kind {
                    Some(k) => sqlx::query_as(EVENTS_OF_KIND)
                        .bind(i64::from(limit))
                        .bind(k)
                        .fetch_all(&self.$read)
                        .await
                        .map_err(backend)?,
                    None => sqlx::query_as(EVENTS)
                        .bind(i64::from(limit))
                        .fetch_all(&self.$read)
                        .await
                        .map_err(backend)?,
                };
                rows.into_iter().map(event_from).collect()
            }
        }
    };
}

scan_store!(SqliteStore, writer, reader, CLAIM_SQLITE);
scan_store!(PostgresStore, pool, pool, CLAIM_POSTGRES);
