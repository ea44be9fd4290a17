//! Where imported advisories live: the [`VulnStore`] trait, implemented by
//! the metadata store (`bulwark-meta`, SQLite and PostgreSQL) and, for
//! tests and tools, by [`MemoryStore`].
//!
//! # Import semantics
//!
//! Rows are keyed by `(source, id)`. Importing an [`ImportBatch`] writes,
//! per source, in one transaction:
//!
//! - advisories not stored yet are inserted;
//! - a stored advisory whose row or ranges differ from the batch is
//!   updated, and its ranges are replaced (in the same transaction);
//! - everything else is left alone and counted as unchanged, so a second
//!   import of the same files writes nothing;
//! - in a merge import, an OSV or CSAF advisory whose stored copy has a later
//!   `modified` is left alone too (counted as `kept_newer`): importing an
//!   older archive, or a record that two bundles carry in different
//!   versions, never moves an advisory back in time.
//!
//! What "its ranges" means depends on the feed. OSV and CSAF records are
//! complete documents: the batch's ranges replace *all* stored ranges of
//! the advisory. The distro feeds (Alpine secdb, Debian tracker) spread one
//! CVE over many files (one per release and repository), so a batch holds
//! only part of an advisory: it replaces the stored ranges of each
//! `(advisory, ecosystem, package)` it contains and keeps the others, and
//! the advisory row is merged (aliases and references united, the higher
//! severity kept). Importing `v3.19/main.json` therefore does not drop what
//! `v3.18/main.json` said. A `(package, CVE)` pair that disappears from a
//! distro feed stays stored until an [`ImportMode::Replace`] import of the
//! whole feed, which also deletes every stored advisory of the batch's
//! sources that the batch does not contain.
//!
//! Backends call [`plan`] with what they have stored for the batch's ids
//! and execute the [`Plan`] it returns; the comparison logic lives here
//! once.
//!
//! # Text
//!
//! Stored text never holds NUL characters (PostgreSQL `TEXT` refuses them):
//! [`normalize`] removes them from free text before comparing and storing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;

use super::ImportBatch;
use super::model::{Advisory, AffectedRange, FeedSource, MAX_ALIASES, MAX_REFERENCES};

/// An error of the storage backend.
#[derive(Debug, thiserror::Error)]
#[error("vulnerability store: {0}")]
pub struct StoreError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError(Box::new(e))
    }

    /// A stored value that cannot be read back.
    pub fn corrupt(what: impl Into<String>) -> StoreError {
        StoreError(Box::new(Corrupt(what.into())))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt vulnerability data: {0}")]
struct Corrupt(String);

pub type StoreResult<T> = Result<T, StoreError>;

/// How an import treats stored advisories the batch does not mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Keep them (the default: importing one file adds to the database).
    #[default]
    Merge,
    /// Delete every stored advisory of the batch's sources that the batch
    /// does not contain: the batch is the whole feed.
    Replace,
}

/// What an import did for one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    #[serde(serialize_with = "ser_source")]
    pub source: FeedSource,
    /// Advisories and ranges of this source in the batch.
    pub advisories: u64,
    pub ranges: u64,
    /// Advisories new to the store.
    pub inserted: u64,
    /// Stored advisories whose row or ranges changed.
    pub updated: u64,
    /// Stored advisories the batch left as they were.
    pub unchanged: u64,
    /// Stored advisories kept because the batch's copy is older (an OSV or CSAF record whose
    /// `modified` is earlier than the stored one's; merge imports only).
    pub kept_newer: u64,
    /// Stored advisories deleted ([`ImportMode::Replace`] only).
    pub removed: u64,
}

fn ser_source<S: serde::Serializer>(s: &FeedSource, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

/// What an import did, per source (in [`FeedSource`] order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub sources: Vec<SourceSummary>,
}

impl ImportSummary {
    /// Advisories inserted or updated, over all sources.
    pub fn changed(&self) -> u64 {
        self.sources.iter().map(|s| s.inserted + s.updated).sum()
    }
}

/// An advisory with the ranges a lookup found for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub advisory: Advisory,
    /// Only the ranges of the looked-up ecosystem and packages.
    pub ranges: Vec<AffectedRange>,
}

/// One import run, as recorded in the import log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewImportLog {
    /// `osv`, `alpine-secdb`, … or several joined by `,` for a mixed batch
    /// (`none` when nothing was parsed).
    pub source: String,
    /// What was imported (a path, as given).
    pub path: String,
    pub files: u64,
    pub records: u64,
    pub advisories: u64,
    pub ranges: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Files, entries and parts of documents skipped.
    pub skipped: u64,
    /// Unix seconds.
    pub started_at: i64,
    pub finished_at: i64,
}

impl NewImportLog {
    /// The log entry of importing `batch` (read from `path`) with the outcome `summary`.
    pub fn of(
        path: &str,
        batch: &ImportBatch,
        summary: &ImportSummary,
        started_at: i64,
        finished_at: i64,
    ) -> Self {
        NewImportLog {
            source: log_source(batch),
            path: path.to_owned(),
            files: batch.files_read as u64,
            records: batch.records as u64,
            advisories: batch.advisories.len() as u64,
            ranges: batch.ranges.len() as u64,
            inserted: summary.sources.iter().map(|s| s.inserted).sum(),
            updated: summary.sources.iter().map(|s| s.updated).sum(),
            skipped: batch.skipped.len() as u64,
            started_at,
            finished_at,
        }
    }
}

/// A stored import-log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportLogEntry {
    pub id: i64,
    #[serde(flatten)]
    pub entry: NewImportLog,
}

/// How much one source holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceCounts {
    #[serde(serialize_with = "ser_source")]
    pub source: FeedSource,
    pub advisories: u64,
    pub ranges: u64,
}

/// How much the store holds, per source (in [`FeedSource`] order; sources
/// with nothing stored are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VulnCounts {
    pub sources: Vec<SourceCounts>,
}

impl VulnCounts {
    pub fn advisories(&self) -> u64 {
        self.sources.iter().map(|s| s.advisories).sum()
    }

    pub fn ranges(&self) -> u64 {
        self.sources.iter().map(|s| s.ranges).sum()
    }

    /// Whether anything is stored.
    pub fn is_empty(&self) -> bool {
        self.advisories() == 0
    }
}

/// Storage of advisories and their ranges.
#[async_trait]
pub trait VulnStore: Send + Sync {
    /// Stores `batch` (see the module docs); `now` (Unix seconds) stamps
    /// changed rows. One transaction per source of the batch.
    async fn import(
        &self,
        batch: &ImportBatch,
        mode: ImportMode,
        now: i64,
    ) -> StoreResult<ImportSummary>;

    /// Every advisory with a range for `ecosystem` (exactly, e.g.
    /// `Debian:12`, `PyPI`) and one of `packages`, with those ranges.
    async fn lookup(&self, ecosystem: &str, packages: &[String]) -> StoreResult<Vec<Candidate>>;

    /// One advisory with all its ranges.
    async fn advisory(
        &self,
        source: FeedSource,
        id: &str,
    ) -> StoreResult<Option<(Advisory, Vec<AffectedRange>)>>;

    /// Appends to the import log; returns the entry's id.
    async fn log_import(&self, entry: &NewImportLog) -> StoreResult<i64>;

    /// The newest `limit` log entries, newest first.
    async fn import_log(&self, limit: u32) -> StoreResult<Vec<ImportLogEntry>>;

    async fn counts(&self) -> StoreResult<VulnCounts>;
}

// ---- shared import logic -------------------------------------------------------------------

/// `"osv"` and the other [`FeedSource::as_str`] names back.
pub fn parse_source(s: &str) -> Option<FeedSource> {
    [
        FeedSource::Osv,
        FeedSource::AlpineSecdb,
        FeedSource::DebianTracker,
        FeedSource::RedHatCsaf,
    ]
    .into_iter()
    .find(|f| f.as_str() == s)
}

/// Whether a batch of this source holds whole advisories (OSV, CSAF) or
/// parts of them (distro feeds).
pub fn holds_parts(source: FeedSource) -> bool {
    matches!(source, FeedSource::AlpineSecdb | FeedSource::DebianTracker)
}

fn strip_nul(s: &mut String) {
    if s.contains('\0') {
        s.retain(|c| c != '\0');
    }
}

/// Removes NUL characters from an advisory's free text (the model already
/// refuses control characters in ids, packages and versions).
pub fn normalize(a: &mut Advisory) {
    for s in [&mut a.summary, &mut a.details].into_iter().flatten() {
        strip_nul(s);
    }
    for s in a.aliases.iter_mut().chain(a.references.iter_mut()) {
        strip_nul(s);
    }
    for c in &mut a.cvss {
        strip_nul(&mut c.vector);
    }
}

/// The order ranges are compared and returned in.
pub fn range_key(r: &AffectedRange) -> impl Ord + '_ {
    (
        (&r.advisory_id, &r.ecosystem, &r.package, r.kind),
        (&r.fixed_version, &r.events, &r.versions),
        (r.unfixed, r.not_affected, r.severity),
    )
}

/// A set of stored ranges an import replaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RangeScope {
    /// Every range of the advisory.
    Advisory(String),
    /// The ranges of the advisory for one ecosystem and package.
    Package {
        advisory_id: String,
        ecosystem: String,
        package: String,
    },
}

/// What is stored for the advisories of one source a batch mentions.
#[derive(Debug, Default)]
pub struct Existing {
    /// Stored advisories with an id of the batch.
    pub advisories: HashMap<String, Advisory>,
    /// All stored ranges of those advisories.
    pub ranges: Vec<AffectedRange>,
    /// [`ImportMode::Replace`] only: the ids of every stored advisory of
    /// the source.
    pub all_ids: Vec<String>,
}

/// The writes that bring one source's stored rows in line with a batch.
/// Execute in this order: delete advisories (their ranges go with them),
/// upsert advisories, delete range scopes, insert ranges.
#[derive(Debug)]
pub struct Plan {
    pub delete_advisories: Vec<String>,
    pub upsert_advisories: Vec<Advisory>,
    pub delete_ranges: Vec<RangeScope>,
    pub insert_ranges: Vec<AffectedRange>,
    pub summary: SourceSummary,
}

/// The advisories and ranges of `batch` by source, NUL-free.
pub fn split_by_source(
    batch: &ImportBatch,
) -> BTreeMap<FeedSource, (Vec<Advisory>, Vec<AffectedRange>)> {
    let mut by: BTreeMap<FeedSource, (Vec<Advisory>, Vec<AffectedRange>)> = BTreeMap::new();
    for a in &batch.advisories {
        let mut a = a.clone();
        normalize(&mut a);
        by.entry(a.source).or_default().0.push(a);
    }
    for r in &batch.ranges {
        by.entry(r.source).or_default().1.push(r.clone());
    }
    by
}

/// Folds the part of a distro advisory a batch holds into the stored one.
fn merge_part(stored: &Advisory, new: &Advisory) -> Advisory {
    let mut m = stored.clone();
    for alias in &new.aliases {
        if m.aliases.len() < MAX_ALIASES && !m.aliases.contains(alias) {
            m.aliases.push(alias.clone());
        }
    }
    for r in &new.references {
        if m.references.len() < MAX_REFERENCES && !m.references.contains(r) {
            m.references.push(r.clone());
        }
    }
    m.severity = m.severity.max(new.severity);
    if new.summary.is_some() {
        m.summary.clone_from(&new.summary);
    }
    if new.details.is_some() {
        m.details.clone_from(&new.details);
    }
    for (to, from) in [
        (&mut m.published, new.published),
        (&mut m.modified, new.modified),
        (&mut m.withdrawn, new.withdrawn),
    ] {
        if from.is_some() {
            *to = from;
        }
    }
    if !new.cvss.is_empty() {
        m.cvss.clone_from(&new.cvss);
    }
    m
}

/// The batch's and the stored ranges of one scope.
type NewAndOld<'a> = (Vec<&'a AffectedRange>, Vec<&'a AffectedRange>);

/// Decides what to write for one source (see the module docs).
pub fn plan(
    source: FeedSource,
    mode: ImportMode,
    advisories: Vec<Advisory>,
    mut ranges: Vec<AffectedRange>,
    existing: Existing,
) -> Plan {
    let parts = holds_parts(source);
    let mut summary = SourceSummary {
        source,
        advisories: advisories.len() as u64,
        ranges: ranges.len() as u64,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        kept_newer: 0,
        removed: 0,
    };
    let mut new_ranges: HashMap<&str, Vec<&AffectedRange>> = HashMap::new();
    ranges.sort_by(|a, b| range_key(a).cmp(&range_key(b)));
    for r in &ranges {
        new_ranges
            .entry(r.advisory_id.as_str())
            .or_default()
            .push(r);
    }
    let mut old_ranges: HashMap<&str, Vec<&AffectedRange>> = HashMap::new();
    let mut stored_ranges = existing.ranges;
    stored_ranges.sort_by(|a, b| range_key(a).cmp(&range_key(b)));
    for r in &stored_ranges {
        old_ranges
            .entry(r.advisory_id.as_str())
            .or_default()
            .push(r);
    }

    let mut out = Plan {
        delete_advisories: Vec::new(),
        upsert_advisories: Vec::new(),
        delete_ranges: Vec::new(),
        insert_ranges: Vec::new(),
        summary: summary.clone(),
    };
    let batch_ids: BTreeSet<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
    if mode == ImportMode::Replace {
        out.delete_advisories = existing
            .all_ids
            .iter()
            .filter(|id| !batch_ids.contains(id.as_str()))
            .cloned()
            .collect();
        summary.removed = out.delete_advisories.len() as u64;
    }
    let mut insert: Vec<&AffectedRange> = Vec::new();
    for advisory in &advisories {
        let id = advisory.id.as_str();
        let new = new_ranges.get(id).map(Vec::as_slice).unwrap_or_default();
        let Some(stored) = existing.advisories.get(id) else {
            summary.inserted += 1;
            out.upsert_advisories.push(advisory.clone());
            insert.extend(new);
            continue;
        };
        // An older copy of a complete record (an archive imported after a newer one, or the
        // same advisory in two bundles) must not undo the newer one. A replace import makes
        // the store equal to the batch, so it takes the batch's copy whatever its age.
        if !parts
            && mode == ImportMode::Merge
            && advisory.modified.is_some()
            && advisory.modified < stored.modified
        {
            summary.kept_newer += 1;
            continue;
        }
        let old = old_ranges.get(id).map(Vec::as_slice).unwrap_or_default();
        // In replace mode a batch is the whole feed, so even a distro
        // advisory is complete.
        let row = if parts && mode == ImportMode::Merge {
            merge_part(stored, advisory)
        } else {
            advisory.clone()
        };
        let mut changed = row != *stored;
        if changed {
            out.upsert_advisories.push(row);
        }
        if parts && mode == ImportMode::Merge {
            let mut scopes: BTreeMap<(&str, &str), NewAndOld<'_>> = BTreeMap::new();
            for r in new {
                scopes
                    .entry((r.ecosystem.as_str(), r.package.as_str()))
                    .or_default()
                    .0
                    .push(r);
            }
            for r in old {
                if let Some(s) = scopes.get_mut(&(r.ecosystem.as_str(), r.package.as_str())) {
                    s.1.push(r);
                }
            }
            for ((ecosystem, package), (new, old)) in scopes {
                if new != old {
                    changed = true;
                    if !old.is_empty() {
                        out.delete_ranges.push(RangeScope::Package {
                            advisory_id: id.to_owned(),
                            ecosystem: ecosystem.to_owned(),
                            package: package.to_owned(),
                        });
                    }
                    insert.extend(new);
                }
            }
        } else if new != old {
            changed = true;
            if !old.is_empty() {
                out.delete_ranges.push(RangeScope::Advisory(id.to_owned()));
            }
            insert.extend(new);
        }
        if changed {
            summary.updated += 1;
        } else {
            summary.unchanged += 1;
        }
    }
    out.insert_ranges = insert.into_iter().cloned().collect();
    out.summary = summary;
    out
}

/// The `source` column of an import-log entry for `batch`.
pub fn log_source(batch: &ImportBatch) -> String {
    let sources: BTreeSet<&str> = batch
        .advisories
        .iter()
        .map(|a| a.source.as_str())
        .chain(batch.source.map(|s| s.as_str()))
        .collect();
    if sources.is_empty() {
        "none".to_owned()
    } else {
        sources.into_iter().collect::<Vec<_>>().join(",")
    }
}

// ---- in memory -----------------------------------------------------------------------------

/// A [`VulnStore`] in memory, with the same import semantics as the SQL
/// backends. For tests and one-shot tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    advisories: BTreeMap<(FeedSource, String), Advisory>,
    ranges: BTreeMap<(FeedSource, String), Vec<AffectedRange>>,
    log: Vec<ImportLogEntry>,
    /// (ecosystem, package) → advisories with a range for it; rebuilt on the first lookup
    /// after an import, so a lookup does not walk every stored range.
    index: Option<PackageIndex>,
}

type PackageIndex = HashMap<(String, String), BTreeSet<(FeedSource, String)>>;

impl Memory {
    fn index(&mut self) -> &PackageIndex {
        let ranges = &self.ranges;
        self.index.get_or_insert_with(|| {
            let mut index = PackageIndex::new();
            for (key, list) in ranges {
                for r in list {
                    index
                        .entry((r.ecosystem.clone(), r.package.clone()))
                        .or_default()
                        .insert(key.clone());
                }
            }
            index
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("memory store lock poisoned")]
struct Poisoned;

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> StoreResult<std::sync::MutexGuard<'_, Memory>> {
        self.inner.lock().map_err(|_| StoreError::backend(Poisoned))
    }
}

#[async_trait]
impl VulnStore for MemoryStore {
    async fn import(
        &self,
        batch: &ImportBatch,
        mode: ImportMode,
        _now: i64,
    ) -> StoreResult<ImportSummary> {
        let mut m = self.lock()?;
        m.index = None;
        let mut summary = ImportSummary::default();
        for (source, (advisories, ranges)) in split_by_source(batch) {
            let mut existing = Existing::default();
            for a in &advisories {
                let key = (source, a.id.clone());
                if let Some(stored) = m.advisories.get(&key) {
                    existing.advisories.insert(a.id.clone(), stored.clone());
                    existing
                        .ranges
                        .extend(m.ranges.get(&key).cloned().unwrap_or_default());
                }
            }
            if mode == ImportMode::Replace {
                existing.all_ids = m
                    .advisories
                    .keys()
                    .filter(|(s, _)| *s == source)
                    .map(|(_, id)| id.clone())
                    .collect();
            }
            let p = plan(source, mode, advisories, ranges, existing);
            for id in &p.delete_advisories {
                m.advisories.remove(&(source, id.clone()));
                m.ranges.remove(&(source, id.clone()));
            }
            for a in p.upsert_advisories {
                m.advisories.insert((source, a.id.clone()), a);
            }
            for scope in &p.delete_ranges {
                match scope {
                    RangeScope::Advisory(id) => {
                        m.ranges.remove(&(source, id.clone()));
                    }
                    RangeScope::Package {
                        advisory_id,
                        ecosystem,
                        package,
                    } => {
                        if let Some(list) = m.ranges.get_mut(&(source, advisory_id.clone())) {
                            list.retain(|r| r.ecosystem != *ecosystem || r.package != *package);
                        }
                    }
                }
            }
            for r in p.insert_ranges {
                m.ranges
                    .entry((source, r.advisory_id.clone()))
                    .or_default()
                    .push(r);
            }
            summary.sources.push(p.summary);
        }
        Ok(summary)
    }

    async fn lookup(&self, ecosystem: &str, packages: &[String]) -> StoreResult<Vec<Candidate>> {
        let mut m = self.lock()?;
        let wanted: BTreeSet<&str> = packages.iter().map(String::as_str).collect();
        let index = m.index();
        let keys: BTreeSet<(FeedSource, String)> = wanted
            .iter()
            .filter_map(|p| index.get(&(ecosystem.to_owned(), (*p).to_owned())))
            .flatten()
            .cloned()
            .collect();
        let mut out = Vec::new();
        for key in &keys {
            let Some(ranges) = m.ranges.get(key) else {
                continue;
            };
            let hits: Vec<AffectedRange> = ranges
                .iter()
                .filter(|r| r.ecosystem == ecosystem && wanted.contains(r.package.as_str()))
                .cloned()
                .collect();
            if hits.is_empty() {
                continue;
            }
            if let Some(a) = m.advisories.get(key) {
                out.push(Candidate {
                    advisory: a.clone(),
                    ranges: hits,
                });
            }
        }
        Ok(out)
    }

    async fn advisory(
        &self,
        source: FeedSource,
        id: &str,
    ) -> StoreResult<Option<(Advisory, Vec<AffectedRange>)>> {
        let m = self.lock()?;
        let key = (source, id.to_owned());
        Ok(m.advisories.get(&key).map(|a| {
            let mut ranges = m.ranges.get(&key).cloned().unwrap_or_default();
            ranges.sort_by(|a, b| range_key(a).cmp(&range_key(b)));
            (a.clone(), ranges)
        }))
    }

    async fn log_import(&self, entry: &NewImportLog) -> StoreResult<i64> {
        let mut m = self.lock()?;
        let id = i64::try_from(m.log.len()).unwrap_or(i64::MAX - 1) + 1;
        m.log.push(ImportLogEntry {
            id,
            entry: entry.clone(),
        });
        Ok(id)
    }

    async fn import_log(&self, limit: u32) -> StoreResult<Vec<ImportLogEntry>> {
        let m = self.lock()?;
        Ok(m.log.iter().rev().take(limit as usize).cloned().collect())
    }

    async fn counts(&self) -> StoreResult<VulnCounts> {
        let m = self.lock()?;
        let mut by: BTreeMap<FeedSource, (u64, u64)> = BTreeMap::new();
        for (source, _) in m.advisories.keys() {
            by.entry(*source).or_default().0 += 1;
        }
        for ((source, _), ranges) in &m.ranges {
            by.entry(*source).or_default().1 += ranges.len() as u64;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulndb::import_bytes;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    const OSV_V1: &str = r#"{"id": "GO-1", "modified": "2024-01-01T00:00:00Z", "summary": "one",
        "affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}"#;
    const OSV_V2: &str = r#"{"id": "GO-1", "modified": "2024-02-01T00:00:00Z", "summary": "one",
        "affected": [{"package": {"ecosystem": "Go", "name": "example.com/m"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.3.0"}]}]}]}"#;

    fn secdb(release: &str, pkg: &str, fixed: &str, cve: &str) -> String {
        format!(
            r#"{{"distroversion": "{release}", "reponame": "main", "packages": [
            {{"pkg": {{"name": "{pkg}", "secfixes": {{"{fixed}": ["{cve}"]}}}}}}]}}"#
        )
    }

    #[test]
    fn reimport_is_idempotent_and_updates() {
        let s = MemoryStore::new();
        let b1 = import_bytes("a.json", OSV_V1.as_bytes());
        let r = block_on(s.import(&b1, ImportMode::Merge, 1)).unwrap();
        assert_eq!(r.sources[0].inserted, 1);
        let r = block_on(s.import(&b1, ImportMode::Merge, 2)).unwrap();
        assert_eq!((r.sources[0].unchanged, r.changed()), (1, 0));
        let b2 = import_bytes("a.json", OSV_V2.as_bytes());
        let r = block_on(s.import(&b2, ImportMode::Merge, 3)).unwrap();
        assert_eq!(r.sources[0].updated, 1);
        let (_, ranges) = block_on(s.advisory(FeedSource::Osv, "GO-1"))
            .unwrap()
            .unwrap();
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0].fixed_version.as_deref(), Some("1.3.0"));
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let s = MemoryStore::new();
        let v1 = import_bytes("a.json", OSV_V1.as_bytes());
        let v2 = import_bytes("b.json", OSV_V2.as_bytes());
        block_on(s.import(&v2, ImportMode::Merge, 1)).unwrap();
        for at in [2, 3] {
            let r = block_on(s.import(&v1, ImportMode::Merge, at)).unwrap();
            assert_eq!((r.sources[0].kept_newer, r.changed()), (1, 0), "{r:?}");
        }
        let fixed = |s: &MemoryStore| {
            let (_, ranges) = block_on(s.advisory(FeedSource::Osv, "GO-1"))
                .unwrap()
                .unwrap();
            ranges[0].fixed_version.clone()
        };
        assert_eq!(fixed(&s).as_deref(), Some("1.3.0"));
        // Re-importing the newer copy is a no-op, not an update.
        let r = block_on(s.import(&v2, ImportMode::Merge, 4)).unwrap();
        assert_eq!((r.sources[0].unchanged, r.changed()), (1, 0));
        // A replace import makes the store equal to the batch, older or not.
        let r = block_on(s.import(&v1, ImportMode::Replace, 5)).unwrap();
        assert_eq!((r.sources[0].updated, r.sources[0].kept_newer), (1, 0));
        assert_eq!(fixed(&s).as_deref(), Some("1.2.0"));
    }

    #[test]
    fn distro_parts_accumulate() {
        let s = MemoryStore::new();
        let a = import_bytes(
            "a.json",
            secdb("v3.18", "openssl", "3.1.4-r1", "CVE-2023-5678").as_bytes(),
        );
        assert!(a.skipped.is_empty(), "{:?}", a.skipped);
        let b = import_bytes(
            "b.json",
            secdb("v3.19", "openssl", "3.1.4-r2", "CVE-2023-5678").as_bytes(),
        );
        block_on(s.import(&a, ImportMode::Merge, 1)).unwrap();
        let r = block_on(s.import(&b, ImportMode::Merge, 2)).unwrap();
        assert_eq!(r.sources[0].updated, 1);
        let (_, ranges) = block_on(s.advisory(FeedSource::AlpineSecdb, "CVE-2023-5678"))
            .unwrap()
            .unwrap();
        assert_eq!(ranges.len(), 2);
        // Again: nothing changes.
        let r = block_on(s.import(&a, ImportMode::Merge, 3)).unwrap();
        assert_eq!(r.sources[0].unchanged, 1);
        // A changed fix replaces only its own (release, package) part.
        let a2 = import_bytes(
            "a.json",
            secdb("v3.18", "openssl", "3.1.4-r3", "CVE-2023-5678").as_bytes(),
        );
        let r = block_on(s.import(&a2, ImportMode::Merge, 4)).unwrap();
        assert_eq!(r.sources[0].updated, 1);
        let (_, ranges) = block_on(s.advisory(FeedSource::AlpineSecdb, "CVE-2023-5678"))
            .unwrap()
            .unwrap();
        let fixes: Vec<_> = ranges
            .iter()
            .map(|r| (r.ecosystem.as_str(), r.fixed_version.as_deref()))
            .collect();
        assert_eq!(
            fixes,
            [
                ("Alpine:v3.18", Some("3.1.4-r3")),
                ("Alpine:v3.19", Some("3.1.4-r2"))
            ]
        );
        // Replace: the batch is the whole feed.
        let r = block_on(s.import(&a2, ImportMode::Replace, 5)).unwrap();
        assert_eq!(r.sources[0].updated, 1);
        let (_, ranges) = block_on(s.advisory(FeedSource::AlpineSecdb, "CVE-2023-5678"))
            .unwrap()
            .unwrap();
        assert_eq!(ranges.len(), 1);
    }

    #[test]
    fn replace_removes_missing_advisories() {
        let s = MemoryStore::new();
        let both = format!("[{OSV_V1}, {}]", OSV_V1.replace("GO-1", "GO-2"));
        block_on(s.import(
            &import_bytes("b.json", both.as_bytes()),
            ImportMode::Merge,
            1,
        ))
        .unwrap();
        let r = block_on(s.import(
            &import_bytes("a.json", OSV_V1.as_bytes()),
            ImportMode::Replace,
            2,
        ))
        .unwrap();
        assert_eq!((r.sources[0].removed, r.sources[0].unchanged), (1, 1));
        assert_eq!(block_on(s.counts()).unwrap().advisories(), 1);
        let hits = block_on(s.lookup("Go", &["example.com/m".to_owned()])).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].advisory.id, "GO-1");
    }
}
