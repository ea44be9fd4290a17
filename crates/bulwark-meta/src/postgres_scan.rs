//! [`ScanStore`] on PostgreSQL: the same tables and statements as the SQLite store (schema in
//! `migrations/postgres/0004_scans.sql`), for replicas sharing one database. A claim picks the
//! oldest claimable job with `FOR UPDATE SKIP LOCKED`, so workers of several replicas never
//! claim one job twice nor wait on each other; a job whose replica died is claimed again once
//! its lease expires.

use async_trait::async_trait;
use bulwark_scanner::jobs::{
    Rematch, ScanEvent, ScanJob, ScanStore, StoredScan, UnscannedManifest,
};
use bulwark_scanner::vulndb::store::StoreResult;

use crate::PostgresStore;
use crate::sqlite_scan::common::{
    self, CLAIM_POSTGRES, COMPLETE, ENQUEUE, EVENTS, EVENTS_OF_KIND, EventTuple, FAIL,
    INSERT_EVENT, JobTuple, LATEST_JOB, PRUNE_JOBS, PRUNE_RESULTS, RENEW, RESULT, ResultTuple,
    SAVE_REMATCH, SAVE_RESULT, STALE, UNSCANNED, UnscannedTuple, event_from, job_from, pg,
    result_from, result_params, unscanned_from,
};
use crate::sqlite_vuln::common::backend;

#[async_trait]
impl ScanStore for PostgresStore {
    async fn enqueue(&self, repository: &str, digest: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(&pg(ENQUEUE))
            .bind(repository)
            .bind(digest)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim(&self, worker: &str, now: i64, lease_secs: i64) -> StoreResult<Option<ScanJob>> {
        let row: Option<JobTuple> = sqlx::query_as(CLAIM_POSTGRES.as_str())
            .bind(worker)
            .bind(now)
            .bind(now.saturating_sub(lease_secs))
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(job_from).transpose()
    }

    async fn complete(&self, id: i64, worker: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(&pg(COMPLETE))
            .bind(id)
            .bind(worker)
            .bind(now)
            .execute(&self.pool)
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
        let done = sqlx::query(&pg(FAIL))
            .bind(id)
            .bind(worker)
            .bind(now)
            .bind(error)
            .bind(retry)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew(&self, id: i64, worker: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(&pg(RENEW))
            .bind(id)
            .bind(worker)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn prune_jobs(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(&pg(PRUNE_JOBS))
            .bind(before)
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn prune_results(&self, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(&pg(PRUNE_RESULTS))
            .bind(i64::from(limit))
            .execute(&self.pool)
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
        let rows: Vec<UnscannedTuple> = sqlx::query_as(&pg(UNSCANNED))
            .bind(repository)
            .bind(digest)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.into_iter().map(unscanned_from).collect())
    }

    async fn latest_job(&self, repository: &str, digest: &str) -> StoreResult<Option<ScanJob>> {
        let row: Option<JobTuple> = sqlx::query_as(&pg(&LATEST_JOB))
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(job_from).transpose()
    }

    async fn save_result(&self, scan: &StoredScan) -> StoreResult<()> {
        let [inventory, report, lint, summary] = result_params(scan);
        sqlx::query(&pg(SAVE_RESULT))
            .bind(&scan.digest)
            .bind(&scan.repository)
            .bind(inventory)
            .bind(report)
            .bind(lint)
            .bind(summary)
            .bind(&scan.summary.grade)
            .bind(common::count(scan.summary.critical))
            .bind(common::count(scan.summary.high))
            .bind(scan.scanned_at)
            .bind(scan.matched_at)
            .bind(scan.vulndb_generation)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn result(&self, digest: &str) -> StoreResult<Option<StoredScan>> {
        let row: Option<ResultTuple> = sqlx::query_as(&pg(&RESULT))
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(result_from).transpose()
    }

    async fn stale_results(&self, generation: i64, limit: u32) -> StoreResult<Vec<StoredScan>> {
        let rows: Vec<ResultTuple> = sqlx::query_as(&pg(&STALE))
            .bind(generation)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.into_iter().map(result_from).collect()
    }

    async fn save_rematch(&self, r: &Rematch) -> StoreResult<()> {
        sqlx::query(&pg(SAVE_REMATCH))
            .bind(&r.digest)
            .bind(r.report.to_string())
            .bind(common::summary_json(&r.summary))
            .bind(&r.summary.grade)
            .bind(common::count(r.summary.critical))
            .bind(common::count(r.summary.high))
            .bind(r.matched_at)
            .bind(r.vulndb_generation)
            .execute(&self.pool)
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
        sqlx::query_scalar(&pg(INSERT_EVENT))
            .bind(kind)
            .bind(repository)
            .bind(digest)
            .bind(detail.to_string())
            .bind(now)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn events(&self, kind: Option<&str>, limit: u32) -> StoreResult<Vec<ScanEvent>> {
        let rows: Vec<EventTuple> = match kind {
            Some(k) => sqlx::query_as(&pg(EVENTS_OF_KIND))
                .bind(i64::from(limit))
                .bind(k)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?,
            None => sqlx::query_as(&pg(EVENTS))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?,
        };
        rows.into_iter().map(event_from).collect()
    }
}
