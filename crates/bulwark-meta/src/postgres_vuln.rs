//! [`VulnStore`] on PostgreSQL: advisories, their ranges and the import log (schema in
//! `migrations/postgres/0003_vulndb.sql`), with the same semantics as the SQLite store.
//!
//! An import writes each source of a batch in one transaction: it first takes a
//! transaction-scoped advisory lock, so imports from several replicas or processes run one
//! after the other (the plan is computed from what the transaction read, and two concurrent
//! plans for one advisory would both insert its ranges); it then reads what is stored for the
//! batch's ids, lets [`bulwark_scanner::vulndb::store::plan`] decide, and writes only what
//! changed, in multi-row statements. Lookups need no lock: each statement reads committed
//! data, and an import commits its advisory rows and ranges together.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bulwark_scanner::vulndb::store::{
    Candidate, Existing, ImportLogEntry, ImportMode, ImportSummary, NewImportLog, Plan, RangeScope,
    StoreResult, VulnCounts, VulnStore, plan, range_key, split_by_source,
};
use bulwark_scanner::vulndb::{Advisory, AffectedRange, FeedSource, ImportBatch};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::PostgresStore;
use crate::sqlite_vuln::common::{
    ADVISORY_COLUMNS, AdvisoryTuple, LogTuple, RANGE_COLUMNS, RangeTuple, advisory_from,
    advisory_row, backend, log_from, range_from, range_row,
};
use crate::sqlite_vuln::{UPSERT_TAIL, candidates, counts_from};

/// Rows per multi-row statement (PostgreSQL allows 65535 bound values; 12 columns a row).
const CHUNK: usize = 1000;

/// The key of the advisory lock that serialises imports (`bulwvuln` in ASCII).
const IMPORT_LOCK: i64 = 0x6275_6c77_7675_6c6e;

async fn load_existing(
    conn: &mut PgConnection,
    source: FeedSource,
    advisories: &[Advisory],
    mode: ImportMode,
) -> StoreResult<Existing> {
    let mut existing = Existing::default();
    for chunk in advisories.chunks(CHUNK) {
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {ADVISORY_COLUMNS} FROM vuln_advisories WHERE source = "
        ));
        q.push_bind(source.as_str()).push(" AND id IN (");
        let mut list = q.separated(", ");
        for a in chunk {
            list.push_bind(a.id.as_str());
        }
        q.push(")");
        let rows: Vec<AdvisoryTuple> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        for row in rows {
            let a = advisory_from(row)?;
            existing.advisories.insert(a.id.clone(), a);
        }
    }
    let stored: Vec<&String> = existing.advisories.keys().collect();
    for chunk in stored.chunks(CHUNK) {
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {RANGE_COLUMNS} FROM vuln_ranges WHERE source = "
        ));
        q.push_bind(source.as_str()).push(" AND advisory_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id.as_str());
        }
        q.push(")");
        let rows: Vec<RangeTuple> = q
            .build_query_as()
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
        for row in rows {
            existing.ranges.push(range_from(row)?);
        }
    }
    if mode == ImportMode::Replace {
        existing.all_ids = sqlx::query_scalar("SELECT id FROM vuln_advisories WHERE source = $1")
            .bind(source.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(existing)
}

async fn execute(
    conn: &mut PgConnection,
    source: FeedSource,
    plan: &Plan,
    now: i64,
) -> StoreResult<()> {
    for chunk in plan.delete_advisories.chunks(CHUNK) {
        let mut q = QueryBuilder::<Postgres>::new("DELETE FROM vuln_advisories WHERE source = ");
        q.push_bind(source.as_str()).push(" AND id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(id.as_str());
        }
        q.push(")");
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    for chunk in plan.upsert_advisories.chunks(CHUNK) {
        let rows = chunk
            .iter()
            .map(advisory_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "INSERT INTO vuln_advisories ({ADVISORY_COLUMNS}, updated_at) "
        ));
        q.push_values(rows, |mut b, r| {
            b.push_bind(r.source)
                .push_bind(r.id)
                .push_bind(r.aliases)
                .push_bind(r.summary)
                .push_bind(r.details)
                .push_bind(r.published)
                .push_bind(r.modified)
                .push_bind(r.withdrawn)
                .push_bind(r.severity)
                .push_bind(r.cvss)
                .push_bind(r.refs)
                .push_bind(now);
        });
        q.push(UPSERT_TAIL);
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    let mut whole = Vec::new();
    for scope in &plan.delete_ranges {
        match scope {
            RangeScope::Advisory(id) => whole.push(id.as_str()),
            RangeScope::Package {
                advisory_id,
                ecosystem,
                package,
            } => {
                sqlx::query(
                    "DELETE FROM vuln_ranges WHERE source = $1 AND advisory_id = $2 \
                     AND ecosystem = $3 AND package = $4",
                )
                .bind(source.as_str())
                .bind(advisory_id)
                .bind(ecosystem)
                .bind(package)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            }
        }
    }
    for chunk in whole.chunks(CHUNK) {
        let mut q = QueryBuilder::<Postgres>::new("DELETE FROM vuln_ranges WHERE source = ");
        q.push_bind(source.as_str()).push(" AND advisory_id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    for chunk in plan.insert_ranges.chunks(CHUNK) {
        let rows = chunk
            .iter()
            .map(range_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut q =
            QueryBuilder::<Postgres>::new(format!("INSERT INTO vuln_ranges ({RANGE_COLUMNS}) "));
        q.push_values(rows, |mut b, r| {
            b.push_bind(r.source)
                .push_bind(r.advisory_id)
                .push_bind(r.ecosystem)
                .push_bind(r.package)
                .push_bind(r.kind)
                .push_bind(r.events)
                .push_bind(r.versions)
                .push_bind(r.fixed_version)
                .push_bind(r.unfixed)
                .push_bind(r.not_affected)
                .push_bind(r.severity);
        });
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl VulnStore for PostgresStore {
    async fn import(
        &self,
        batch: &ImportBatch,
        mode: ImportMode,
        now: i64,
    ) -> StoreResult<ImportSummary> {
        let mut summary = ImportSummary::default();
        for (source, (advisories, ranges)) in split_by_source(batch) {
            let mut tx = self.pool.begin().await.map_err(backend)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(IMPORT_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let existing = load_existing(&mut tx, source, &advisories, mode).await?;
            let plan = plan(source, mode, advisories, ranges, existing);
            execute(&mut tx, source, &plan, now).await?;
            tx.commit().await.map_err(backend)?;
            summary.sources.push(plan.summary);
        }
        Ok(summary)
    }

    async fn lookup(&self, ecosystem: &str, packages: &[String]) -> StoreResult<Vec<Candidate>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let mut ranges = Vec::new();
        for chunk in packages.chunks(CHUNK) {
            let mut q = QueryBuilder::<Postgres>::new(format!(
                "SELECT {RANGE_COLUMNS} FROM vuln_ranges WHERE ecosystem = "
            ));
            q.push_bind(ecosystem).push(" AND package IN (");
            let mut list = q.separated(", ");
            for p in chunk {
                list.push_bind(p.as_str());
            }
            q.push(")");
            let rows: Vec<RangeTuple> = q
                .build_query_as()
                .fetch_all(&mut *conn)
                .await
                .map_err(backend)?;
            for row in rows {
                ranges.push(range_from(row)?);
            }
        }
        let mut ids: BTreeMap<FeedSource, Vec<&str>> = BTreeMap::new();
        for r in &ranges {
            ids.entry(r.source)
                .or_default()
                .push(r.advisory_id.as_str());
        }
        let mut advisories = HashMap::new();
        for (source, mut list) in ids {
            list.sort_unstable();
            list.dedup();
            for chunk in list.chunks(CHUNK) {
                let mut q = QueryBuilder::<Postgres>::new(format!(
                    "SELECT {ADVISORY_COLUMNS} FROM vuln_advisories WHERE source = "
                ));
                q.push_bind(source.as_str()).push(" AND id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                q.push(")");
                let rows: Vec<AdvisoryTuple> = q
                    .build_query_as()
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(backend)?;
                for row in rows {
                    let a = advisory_from(row)?;
                    advisories.insert((a.source, a.id.clone()), a);
                }
            }
        }
        Ok(candidates(ranges, advisories))
    }

    async fn advisory(
        &self,
        source: FeedSource,
        id: &str,
    ) -> StoreResult<Option<(Advisory, Vec<AffectedRange>)>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        let row: Option<AdvisoryTuple> = sqlx::query_as(&format!(
            "SELECT {ADVISORY_COLUMNS} FROM vuln_advisories WHERE source = $1 AND id = $2"
        ))
        .bind(source.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rows: Vec<RangeTuple> = sqlx::query_as(&format!(
            "SELECT {RANGE_COLUMNS} FROM vuln_ranges WHERE source = $1 AND advisory_id = $2"
        ))
        .bind(source.as_str())
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let mut ranges = rows
            .into_iter()
            .map(range_from)
            .collect::<StoreResult<Vec<_>>>()?;
        ranges.sort_by(|a, b| range_key(a).cmp(&range_key(b)));
        Ok(Some((advisory_from(row)?, ranges)))
    }

    async fn log_import(&self, e: &NewImportLog) -> StoreResult<i64> {
        use crate::to_i64;
        sqlx::query_scalar(
            "INSERT INTO vuln_import_log (source, path, files, records, advisories, ranges, \
             inserted, updated, skipped, started_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&e.source)
        .bind(&e.path)
        .bind(to_i64(e.files))
        .bind(to_i64(e.records))
        .bind(to_i64(e.advisories))
        .bind(to_i64(e.ranges))
        .bind(to_i64(e.inserted))
        .bind(to_i64(e.updated))
        .bind(to_i64(e.skipped))
        .bind(e.started_at)
        .bind(e.finished_at)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)
    }

    async fn import_log(&self, limit: u32) -> StoreResult<Vec<ImportLogEntry>> {
        let rows: Vec<LogTuple> = sqlx::query_as(
            "SELECT id, source, path, files, records, advisories, ranges, inserted, updated, \
             skipped, started_at, finished_at FROM vuln_import_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(log_from).collect())
    }

    async fn counts(&self) -> StoreResult<VulnCounts> {
        let advisories: Vec<(String, i64)> =
            sqlx::query_as("SELECT source, COUNT(*) FROM vuln_advisories GROUP BY source")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        let ranges: Vec<(String, i64)> =
            sqlx::query_as("SELECT source, COUNT(*) FROM vuln_ranges GROUP BY source")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        counts_from(advisories, ranges)
    }
}
