//! [`VulnStore`] on SQLite: advisories, their ranges and the import log (schema in
//! `migrations/sqlite/0003_vulndb.sql`).
//!
//! An import writes each source of a batch in one `BEGIN IMMEDIATE` transaction on the
//! writer connection: it reads what is stored for the batch's ids, lets
//! [`bulwark_scanner::vulndb::store::plan`] decide, and writes only what changed, in
//! multi-row statements. Lookups use the reader pool, which WAL lets run beside an import
//! (they see the last committed import).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bulwark_scanner::vulndb::store::{
    Candidate, Existing, ImportLogEntry, ImportMode, ImportSummary, NewImportLog, Plan, RangeScope,
    SourceCounts, StoreResult, VulnCounts, VulnStore, plan, range_key, split_by_source,
};
use bulwark_scanner::vulndb::{Advisory, AffectedRange, FeedSource, ImportBatch};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::SqliteStore;
use common::{
    ADVISORY_COLUMNS, AdvisoryTuple, LogTuple, RANGE_COLUMNS, RangeTuple, advisory_from,
    advisory_row, backend, count_from, log_from, range_from, range_row, source_from,
};

/// Rows per multi-row statement (SQLite allows 32766 bound values; 12 columns a row).
const CHUNK: usize = 500;

/// Row conversions shared by the SQLite and PostgreSQL implementations. Rows are read as
/// tuples, which decode the same way on both backends.
pub(crate) mod common {
    use bulwark_scanner::vulndb::store::{
        ImportLogEntry, NewImportLog, StoreError, StoreResult, parse_source,
    };
    use bulwark_scanner::vulndb::{
        Advisory, AffectedRange, CvssScore, Event, FeedSource, RangeKind, Severity, Timestamp,
    };

    pub(crate) const ADVISORY_COLUMNS: &str = "source, id, aliases, summary, details, published, modified, withdrawn, severity, cvss, refs";
    pub(crate) const RANGE_COLUMNS: &str = "source, advisory_id, ecosystem, package, kind, events, \
         versions, fixed_version, unfixed, not_affected, severity";

    /// source, id, aliases, summary, details, published, modified, withdrawn, severity,
    /// cvss, refs.
    pub(crate) type AdvisoryTuple = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        String,
        String,
    );
    /// source, advisory_id, ecosystem, package, kind, events, versions, fixed_version,
    /// unfixed, not_affected, severity.
    pub(crate) type RangeTuple = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        bool,
        bool,
        Option<String>,
    );
    /// id, source, path, files, records, advisories, ranges, inserted, updated, skipped,
    /// started_at, finished_at.
    pub(crate) type LogTuple = (
        i64,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    );

    pub(crate) fn backend(e: sqlx::Error) -> StoreError {
        StoreError::backend(e)
    }

    /// JSON text of a list (concrete types: this crate does not name serde).
    macro_rules! json {
        ($v:expr) => {
            serde_json::to_string($v).map_err(StoreError::backend)
        };
    }

    macro_rules! unjson {
        ($what:literal, $s:expr) => {
            serde_json::from_str($s).map_err(|e| StoreError::corrupt(format!("{}: {e}", $what)))
        };
    }

    pub(crate) fn source_from(s: &str) -> StoreResult<FeedSource> {
        parse_source(s).ok_or_else(|| StoreError::corrupt(format!("unknown source {s:?}")))
    }

    fn severity_from(s: Option<String>) -> StoreResult<Option<Severity>> {
        s.map(|s| Severity::parse(&s).ok_or_else(|| StoreError::corrupt(format!("severity {s:?}"))))
            .transpose()
    }

    pub(crate) fn kind_str(k: RangeKind) -> &'static str {
        match k {
            RangeKind::Ecosystem => "ecosystem",
            RangeKind::Semver => "semver",
        }
    }

    /// An advisory as column values (see [`ADVISORY_COLUMNS`]).
    pub(crate) struct AdvisoryRow {
        pub source: &'static str,
        pub id: String,
        pub aliases: String,
        pub summary: Option<String>,
        pub details: Option<String>,
        pub published: Option<i64>,
        pub modified: Option<i64>,
        pub withdrawn: Option<i64>,
        pub severity: Option<&'static str>,
        pub cvss: String,
        pub refs: String,
    }

    pub(crate) fn advisory_row(a: &Advisory) -> StoreResult<AdvisoryRow> {
        Ok(AdvisoryRow {
            source: a.source.as_str(),
            id: a.id.clone(),
            aliases: json!(&a.aliases)?,
            summary: a.summary.clone(),
            details: a.details.clone(),
            published: a.published.map(|t| t.0),
            modified: a.modified.map(|t| t.0),
            withdrawn: a.withdrawn.map(|t| t.0),
            severity: a.severity.map(|s| s.as_str()),
            cvss: json!(&a.cvss)?,
            refs: json!(&a.references)?,
        })
    }

    pub(crate) fn advisory_from(t: AdvisoryTuple) -> StoreResult<Advisory> {
        let (
            source,
            id,
            aliases,
            summary,
            details,
            published,
            modified,
            withdrawn,
            sev,
            cvss,
            refs,
        ) = t;
        Ok(Advisory {
            source: source_from(&source)?,
            aliases: unjson!("aliases", &aliases)?,
            summary,
            details,
            published: published.map(Timestamp),
            modified: modified.map(Timestamp),
            withdrawn: withdrawn.map(Timestamp),
            severity: severity_from(sev)?,
            cvss: {
                let v: Vec<CvssScore> = unjson!("cvss", &cvss)?;
                v
            },
            references: unjson!("refs", &refs)?,
            id,
        })
    }

    /// A range as column values (see [`RANGE_COLUMNS`]).
    pub(crate) struct RangeRow {
        pub source: &'static str,
        pub advisory_id: String,
        pub ecosystem: String,
        pub package: String,
        pub kind: &'static str,
        pub events: String,
        pub versions: String,
        pub fixed_version: Option<String>,
        pub unfixed: bool,
        pub not_affected: bool,
        pub severity: Option<&'static str>,
    }

    pub(crate) fn range_row(r: &AffectedRange) -> StoreResult<RangeRow> {
        Ok(RangeRow {
            source: r.source.as_str(),
            advisory_id: r.advisory_id.clone(),
            ecosystem: r.ecosystem.clone(),
            package: r.package.clone(),
            kind: kind_str(r.kind),
            events: json!(&r.events)?,
            versions: json!(&r.versions)?,
            fixed_version: r.fixed_version.clone(),
            unfixed: r.unfixed,
            not_affected: r.not_affected,
            severity: r.severity.map(|s| s.as_str()),
        })
    }

    pub(crate) fn range_from(t: RangeTuple) -> StoreResult<AffectedRange> {
        let (
            source,
            advisory_id,
            ecosystem,
            package,
            kind,
            events,
            versions,
            fixed,
            unfixed,
            na,
            sev,
        ) = t;
        Ok(AffectedRange {
            source: source_from(&source)?,
            advisory_id,
            ecosystem,
            package,
            kind: match kind.as_str() {
                "ecosystem" => RangeKind::Ecosystem,
                "semver" => RangeKind::Semver,
                other => return Err(StoreError::corrupt(format!("range kind {other:?}"))),
            },
            events: {
                let v: Vec<Event> = unjson!("events", &events)?;
                v
            },
            versions: unjson!("versions", &versions)?,
            fixed_version: fixed,
            unfixed,
            not_affected: na,
            severity: severity_from(sev)?,
        })
    }

    pub(crate) fn count_from(v: i64) -> u64 {
        u64::try_from(v).unwrap_or(0)
    }

    pub(crate) fn log_from(t: LogTuple) -> ImportLogEntry {
        let (
            id,
            source,
            path,
            files,
            records,
            advisories,
            ranges,
            inserted,
            updated,
            skipped,
            s,
            f,
        ) = t;
        ImportLogEntry {
            id,
            entry: NewImportLog {
                source,
                path,
                files: count_from(files),
                records: count_from(records),
                advisories: count_from(advisories),
                ranges: count_from(ranges),
                inserted: count_from(inserted),
                updated: count_from(updated),
                skipped: count_from(skipped),
                started_at: s,
                finished_at: f,
            },
        }
    }
}

async fn load_existing(
    conn: &mut SqliteConnection,
    source: FeedSource,
    advisories: &[Advisory],
    mode: ImportMode,
) -> StoreResult<Existing> {
    let mut existing = Existing::default();
    for chunk in advisories.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(format!(
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
        let mut q = QueryBuilder::<Sqlite>::new(format!(
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
        existing.all_ids = sqlx::query_scalar("SELECT id FROM vuln_advisories WHERE source = ?")
            .bind(source.as_str())
            .fetch_all(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(existing)
}

async fn execute(
    conn: &mut SqliteConnection,
    source: FeedSource,
    plan: &Plan,
    now: i64,
) -> StoreResult<()> {
    for chunk in plan.delete_advisories.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM vuln_advisories WHERE source = ");
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
        let mut q = QueryBuilder::<Sqlite>::new(format!(
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
                    "DELETE FROM vuln_ranges WHERE source = ? AND advisory_id = ? \
                     AND ecosystem = ? AND package = ?",
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
        let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM vuln_ranges WHERE source = ");
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
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO vuln_ranges ({RANGE_COLUMNS}) "));
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

/// The `ON CONFLICT` clause of the advisory upsert (same on both backends).
pub(crate) const UPSERT_TAIL: &str = " ON CONFLICT (source, id) DO UPDATE SET \
    aliases = excluded.aliases, summary = excluded.summary, details = excluded.details, \
    published = excluded.published, modified = excluded.modified, \
    withdrawn = excluded.withdrawn, severity = excluded.severity, cvss = excluded.cvss, \
    refs = excluded.refs, updated_at = excluded.updated_at";

/// Groups ranges under their advisories, fetched by `(source, id)`.
pub(crate) fn candidates(
    ranges: Vec<AffectedRange>,
    advisories: HashMap<(FeedSource, String), Advisory>,
) -> Vec<Candidate> {
    let mut by: BTreeMap<(FeedSource, String), Vec<AffectedRange>> = BTreeMap::new();
    for r in ranges {
        by.entry((r.source, r.advisory_id.clone()))
            .or_default()
            .push(r);
    }
    by.into_iter()
        .filter_map(|(key, mut ranges)| {
            let advisory = advisories.get(&key)?.clone();
            ranges.sort_by(|a, b| range_key(a).cmp(&range_key(b)));
            Some(Candidate { advisory, ranges })
        })
        .collect()
}

#[async_trait]
impl VulnStore for SqliteStore {
    async fn import(
        &self,
        batch: &ImportBatch,
        mode: ImportMode,
        now: i64,
    ) -> StoreResult<ImportSummary> {
        let mut summary = ImportSummary::default();
        for (source, (advisories, ranges)) in split_by_source(batch) {
            let mut tx = self
                .writer
                .begin_with("BEGIN IMMEDIATE")
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
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        let mut ranges = Vec::new();
        for chunk in packages.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(format!(
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
                let mut q = QueryBuilder::<Sqlite>::new(format!(
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
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        let row: Option<AdvisoryTuple> = sqlx::query_as(&format!(
            "SELECT {ADVISORY_COLUMNS} FROM vuln_advisories WHERE source = ? AND id = ?"
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
            "SELECT {RANGE_COLUMNS} FROM vuln_ranges WHERE source = ? AND advisory_id = ?"
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
        .fetch_one(&self.writer)
        .await
        .map_err(backend)
    }

    async fn import_log(&self, limit: u32) -> StoreResult<Vec<ImportLogEntry>> {
        let rows: Vec<LogTuple> = sqlx::query_as(
            "SELECT id, source, path, files, records, advisories, ranges, inserted, updated, \
             skipped, started_at, finished_at FROM vuln_import_log ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(rows.into_iter().map(log_from).collect())
    }

    async fn counts(&self) -> StoreResult<VulnCounts> {
        let advisories: Vec<(String, i64)> =
            sqlx::query_as("SELECT source, COUNT(*) FROM vuln_advisories GROUP BY source")
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
        let ranges: Vec<(String, i64)> =
            sqlx::query_as("SELECT source, COUNT(*) FROM vuln_ranges GROUP BY source")
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
        counts_from(advisories, ranges)
    }
}

/// Per-source counts from `(source, count)` rows of both tables.
pub(crate) fn counts_from(
    advisories: Vec<(String, i64)>,
    ranges: Vec<(String, i64)>,
) -> StoreResult<VulnCounts> {
    let mut by: BTreeMap<FeedSource, (u64, u64)> = BTreeMap::new();
    for (s, n) in advisories {
        by.entry(source_from(&s)?).or_default().0 = count_from(n);
    }
    for (s, n) in ranges {
        by.entry(source_from(&s)?).or_default().1 = count_from(n);
    }
    Ok(VulnCounts {
        sources: by
            .into_iter()
            .map(|(source, (advisories, ranges))| SourceCounts {
                source,
                advisories,
                ranges,
            })
            .collect(),
    })
}
