//! Scanning in the registry: the job queue, the stored results and the events, as the port
//! [`ScanStore`] (implemented by the metadata store in `bulwark-meta`, SQLite and PostgreSQL).
//!
//! # Jobs
//!
//! A job names a repository and a manifest digest. At most one job per `(repository,
//! digest)` is `queued` at a time ([`ScanStore::enqueue`] is a no-op while one is). A worker
//! [`ScanStore::claim`]s the oldest queued job, which becomes `running` with the worker's id and
//! the claim time (its lease); a `running` job whose lease is older than the lease duration
//! (its replica died) is claimed again by the next worker that asks. A worker renews its lease
//! while it scans ([`ScanStore::renew`]), so a long scan is not claimed twice. A finished job
//! is `done` or `failed` (with the error); failures may be re-queued a few times (`attempts`).
//! Finished jobs are pruned after a retention ([`ScanStore::prune_jobs`]), except the newest
//! job of each manifest that still exists, so its status stays visible.
//!
//! # Results
//!
//! One result per manifest digest (the content decides the inventory, not the repository):
//! the [`Inventory`] (what [`crate::report::match_packages`] needs, so a rescan reads no
//! layers), the last vulnerability report and lint report (JSON), a [`ScanSummary`] and the
//! vulnerability-database generation the report was matched against (the id of the newest
//! import-log entry at the time; `0` when nothing was ever imported). The result of a digest
//! that is no longer a manifest of any repository is pruned ([`ScanStore::prune_results`]).

use async_trait::async_trait;
use bulwark_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::distro::{Distro, DistroId};
use crate::image::{ImagePackage, ScannedImage};
use crate::inventory::{Package, PackageKind};
use crate::report::VulnReport;
use crate::vulndb::store::{StoreError, StoreResult};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        match s {
            "queued" => Some(JobState::Queued),
            "running" => Some(JobState::Running),
            "done" => Some(JobState::Done),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

/// A stored scan job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanJob {
    pub id: i64,
    pub repository: String,
    pub digest: String,
    pub state: JobState,
    /// Claims so far (including the current one).
    pub attempts: u32,
    pub claimed_by: Option<String>,
    /// Unix seconds of the current claim: the lease start.
    pub claimed_at: Option<i64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Counts by severity and the health grade of a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub total: u64,
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub negligible: u64,
    pub unknown: u64,
    pub fixable: u64,
    /// `A` … `F`.
    pub grade: String,
    /// Packages in the inventory.
    pub packages: u64,
}

impl ScanSummary {
    pub fn of(report: &VulnReport, packages: usize) -> ScanSummary {
        let s = &report.summary;
        ScanSummary {
            total: s.total,
            critical: s.counts.critical,
            high: s.counts.high,
            medium: s.counts.medium,
            low: s.counts.low,
            negligible: s.counts.none,
            unknown: s.counts.unknown,
            fixable: s.fixable,
            grade: s.grade.as_str().to_owned(),
            packages: packages as u64,
        }
    }
}

/// A package of a stored inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPackage {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// [`PackageKind::name`].
    pub kind: String,
    pub path: String,
    pub purl: String,
    #[serde(default)]
    pub licenses: Vec<String>,
    pub layer: usize,
    pub layer_digest: String,
    pub file_layer: usize,
}

/// The distribution of a stored inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDistro {
    pub id: String,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub pretty_name: Option<String>,
    #[serde(default)]
    pub id_like: Vec<String>,
    #[serde(default)]
    pub is_edge: bool,
}

/// What a rescan needs of a scanned image: its distro, packages and layer ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The image manifest scanned (for an index: the platform's manifest).
    pub image_digest: String,
    pub config_digest: String,
    /// `diff_ids[i]` names layer `i` (the config's diff_id, else the blob digest).
    pub diff_ids: Vec<String>,
    pub distro: Option<StoredDistro>,
    pub packages: Vec<StoredPackage>,
}

fn kind_from(name: &str) -> Option<PackageKind> {
    [
        PackageKind::Dpkg,
        PackageKind::Apk,
        PackageKind::Rpm,
        PackageKind::Python,
        PackageKind::Npm,
        PackageKind::Cargo,
        PackageKind::Go,
        PackageKind::Maven,
        PackageKind::RubyGem,
        PackageKind::Composer,
    ]
    .into_iter()
    .find(|k| k.name() == name)
}

impl Inventory {
    /// The inventory of a scan.
    pub fn from_scan(scan: &ScannedImage) -> Inventory {
        let diff_ids = (0..scan.layers.len())
            .map(|i| {
                scan.config
                    .diff_ids
                    .get(i)
                    .or(scan.layers.get(i))
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect();
        Inventory {
            image_digest: scan
                .manifest_digest
                .as_ref()
                .unwrap_or(&scan.config_digest)
                .to_string(),
            config_digest: scan.config_digest.to_string(),
            diff_ids,
            distro: scan.distro.as_ref().map(|d| StoredDistro {
                id: d.id.as_str().to_owned(),
                version_id: d.version_id.clone(),
                version_codename: d.version_codename.clone(),
                pretty_name: d.pretty_name.clone(),
                id_like: d.id_like.clone(),
                is_edge: d.is_edge,
            }),
            packages: scan
                .packages
                .iter()
                .map(|p| StoredPackage {
                    name: p.package.name.clone(),
                    version: p.package.version.clone(),
                    source_name: p.package.source_name.clone(),
                    source_version: p.package.source_version.clone(),
                    kind: p.package.kind.name().to_owned(),
                    path: p.package.path.clone(),
                    purl: p.package.purl.clone(),
                    licenses: p.package.licenses.clone(),
                    layer: p.layer,
                    layer_digest: p.layer_digest.to_string(),
                    file_layer: p.file_layer,
                })
                .collect(),
        }
    }

    /// The distro back.
    pub fn distro(&self) -> Option<Distro> {
        self.distro.as_ref().map(|d| Distro {
            id: DistroId::from_os_release_id(&d.id),
            version_id: d.version_id.clone(),
            version_codename: d.version_codename.clone(),
            pretty_name: d.pretty_name.clone(),
            id_like: d.id_like.clone(),
            is_edge: d.is_edge,
        })
    }

    /// The packages back, as [`crate::report::match_packages`] and [`crate::sbom`] take them.
    pub fn packages(&self) -> StoreResult<Vec<ImagePackage>> {
        self.packages
            .iter()
            .map(|p| {
                let kind = kind_from(&p.kind)
                    .ok_or_else(|| StoreError::corrupt(format!("package kind {:?}", p.kind)))?;
                let layer_digest = Digest::parse(&p.layer_digest)
                    .map_err(|e| StoreError::corrupt(format!("layer digest: {e}")))?;
                Ok(ImagePackage {
                    package: Package {
                        name: p.name.clone(),
                        version: p.version.clone(),
                        source_name: p.source_name.clone(),
                        source_version: p.source_version.clone(),
                        ecosystem: kind.ecosystem(),
                        kind,
                        path: p.path.clone(),
                        purl: p.purl.clone(),
                        licenses: p.licenses.clone(),
                    },
                    layer: p.layer,
                    layer_digest,
                    file_layer: p.file_layer,
                })
            })
            .collect()
    }
}

/// The stored result of scanning one manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredScan {
    /// The manifest digest (image or index) the result is for.
    pub digest: String,
    /// The repository it was first scanned in.
    pub repository: String,
    /// [`Inventory`] as JSON.
    pub inventory: serde_json::Value,
    /// The last [`VulnReport`] as JSON.
    pub report: serde_json::Value,
    /// The config lint report as JSON.
    pub lint: serde_json::Value,
    pub summary: ScanSummary,
    /// Unix seconds of the layer scan.
    pub scanned_at: i64,
    /// Unix seconds of the last match (scan or rescan).
    pub matched_at: i64,
    /// The vulnerability-database generation `report` was matched against.
    pub vulndb_generation: i64,
}

/// A new rescan report for a stored result.
#[derive(Debug, Clone, PartialEq)]
pub struct Rematch {
    pub digest: String,
    pub report: serde_json::Value,
    pub summary: ScanSummary,
    pub matched_at: i64,
    pub vulndb_generation: i64,
}

/// A manifest the backfill may queue: no result, no queued or running job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnscannedManifest {
    pub repository: String,
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// An event of the scanner (`scan.new_critical`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanEvent {
    pub id: i64,
    pub kind: String,
    pub repository: String,
    pub digest: String,
    pub detail: serde_json::Value,
    pub created_at: i64,
}

/// The event recorded when a rescan finds Critical or High findings an image did not have.
pub const EVENT_NEW_CRITICAL: &str = "scan.new_critical";

/// Storage of scan jobs, results and events.
#[async_trait]
pub trait ScanStore: Send + Sync {
    /// Queues a scan of `digest` in `repository`; `false` when one is queued already.
    async fn enqueue(&self, repository: &str, digest: &str, now: i64) -> StoreResult<bool>;

    /// Claims the oldest queued job, or a running one whose claim is older than
    /// `now - lease_secs`, for `worker`: it becomes `running`, its attempts grow by one.
    async fn claim(&self, worker: &str, now: i64, lease_secs: i64) -> StoreResult<Option<ScanJob>>;

    /// Marks a job `worker` holds `done`; `false` when it no longer holds it.
    async fn complete(&self, id: i64, worker: &str, now: i64) -> StoreResult<bool>;

    /// Marks a job `worker` holds `failed` with `error`, or `queued` again when `retry`.
    async fn fail(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry: bool,
        now: i64,
    ) -> StoreResult<bool>;

    /// Renews the lease of a job `worker` holds (its claim time becomes `now`); `false` when
    /// it no longer holds it (finished, or claimed by another worker after the lease expired).
    async fn renew(&self, id: i64, worker: &str, now: i64) -> StoreResult<bool>;

    /// Deletes up to `limit` `done`/`failed` jobs last updated before `before`, except the
    /// newest job of each (repository, digest) whose manifest is still in that repository;
    /// returns how many were deleted.
    async fn prune_jobs(&self, before: i64, limit: u32) -> StoreResult<u64>;

    /// Deletes up to `limit` results whose digest is no longer a manifest of any repository;
    /// returns how many were deleted.
    async fn prune_results(&self, limit: u32) -> StoreResult<u64>;

    /// Up to `limit` manifests that are not referrers (no `subject`), have no stored result
    /// and no queued or running job in their repository, ordered by (repository, digest) and
    /// after `after` in that order (the backfill pages through them and keeps the images).
    async fn unscanned_manifests(
        &self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> StoreResult<Vec<UnscannedManifest>>;

    /// The newest job of `digest` in `repository`.
    async fn latest_job(&self, repository: &str, digest: &str) -> StoreResult<Option<ScanJob>>;

    /// Jobs waiting to be claimed and jobs running (lease expired or not), over all replicas.
    async fn pending_counts(&self) -> StoreResult<(u64, u64)>;

    /// Stores (replaces) the result for `scan.digest`.
    async fn save_result(&self, scan: &StoredScan) -> StoreResult<()>;

    /// The stored result of `digest`.
    async fn result(&self, digest: &str) -> StoreResult<Option<StoredScan>>;

    /// Up to `limit` results matched against a generation below `generation`, oldest match
    /// first.
    async fn stale_results(&self, generation: i64, limit: u32) -> StoreResult<Vec<StoredScan>>;

    /// Replaces the report of a stored result after a rescan.
    async fn save_rematch(&self, rematch: &Rematch) -> StoreResult<()>;

    /// Records an event; returns its id.
    async fn record_event(
        &self,
        kind: &str,
        repository: &str,
        digest: &str,
        detail: &serde_json::Value,
        now: i64,
    ) -> StoreResult<i64>;

    /// The newest `limit` events, newest first, optionally of one kind.
    async fn events(&self, kind: Option<&str>, limit: u32) -> StoreResult<Vec<ScanEvent>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in [
            "dpkg", "apk", "rpm", "python", "npm", "cargo", "go", "maven", "gem",
        ] {
            assert_eq!(kind_from(k).map(PackageKind::name), Some(k));
        }
        assert_eq!(kind_from("composer"), Some(PackageKind::Composer));
        assert_eq!(kind_from("nope"), None);
        for s in ["queued", "running", "done", "failed"] {
            assert_eq!(JobState::parse(s).map(JobState::as_str), Some(s));
        }
    }
}
