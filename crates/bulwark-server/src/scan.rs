//! Scanning in the server (docs/SCANNING.md, "Scanning in the server").
//!
//! - **Scan on push**: the manifest PUT handler calls [`ScanService::on_push`], which queues a
//!   job ([`ScanStore::enqueue`]) for image manifests; for an index, one job per platform
//!   image it lists that has no result yet (attestation manifests, `unknown/unknown`, are
//!   skipped). Artifacts without filesystem layers (signatures, SBOMs, attestations) are not
//!   scanned.
//! - **Workers** ([`ScanService::spawn`]): `scanner.workers` tasks claim jobs, renew their
//!   lease every third of it while they scan (a worker that lost its lease stops reading and
//!   writes nothing), read the image
//!   through [`RegistrySource`] (a [`BlobSource`] over the registry's blob store: the scanner
//!   is synchronous and runs in `spawn_blocking`, each read waits on the async reader with
//!   [`Handle::block_on`], so a layer streams and is never held in memory whole), match the
//!   inventory against the vulnerability database, lint the config, store the result and
//!   attach a CycloneDX 1.5 SBOM to the image as an OCI 1.1 referrer (pushed into the same
//!   repository, so `GET /v2/<name>/referrers/<digest>` lists it).
//! - **Rescan**: every `scanner.rescan_interval_secs`, as the single `scan-rescan` job among
//!   replicas, results matched against an older vulnerability-database generation (the
//!   newest import-log id) are matched again from their stored inventory (no layer is read);
//!   an image that gains a Critical or High finding gets a `scan.new_critical` event and a
//!   warning in the log.
//! - **Pruning**: every `prune_interval`, as the single `scan-prune` job, finished jobs older
//!   than the retention (except the newest of each existing manifest) and the results of
//!   digests no repository holds any more are deleted.
//! - **Backfill** ([`ScanService::backfill`]): on start (and on request), as the single
//!   `scan-backfill` job, every image manifest with no result and no pending job is queued.

use std::collections::BTreeSet;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bulwark_core::Registry;
use bulwark_core::store::MetadataStore;
use bulwark_oci::media_types::{self, essence};
use bulwark_oci::{Descriptor, Digest, ManifestKind, ParsedManifest, Reference, RepoName};
use bulwark_scanner::image::{
    BlobSource, ImageError, ResolvedImage, ScanOptions, ScannedImage, scan_image,
};
use bulwark_scanner::jobs::{
    EVENT_NEW_CRITICAL, Inventory, JobState, Rematch, ScanJob, ScanStore, ScanSummary, StoredScan,
};
use bulwark_scanner::lint::{self, LintOptions};
use bulwark_scanner::report::{VulnReport, match_image, match_packages};
use bulwark_scanner::sbom::{self, SbomImage};
use bulwark_scanner::vulndb::Timestamp;
use bulwark_scanner::vulndb::store::{StoreError, VulnStore};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;
use tokio::sync::Notify;

/// The artifact type of the SBOM referrers.
pub const CYCLONEDX_ARTIFACT: &str = "application/vnd.cyclonedx+json";
/// Annotation naming the tool on SBOM referrers.
const SBOM_CREATOR: &str = "dev.bulwark.sbom.creator";
/// Name of the cross-replica rescan job.
const RESCAN_JOB: &str = "scan-rescan";
/// Stored results re-matched per batch.
const RESCAN_BATCH: u32 = 100;
/// Name of the cross-replica pruning job.
const PRUNE_JOB: &str = "scan-prune";
/// Rows deleted per statement, so a prune never holds the SQLite writer for long.
const PRUNE_BATCH: u32 = 1000;
/// Name of the cross-replica backfill job.
const BACKFILL_JOB: &str = "scan-backfill";
/// Manifests read per backfill batch.
const BACKFILL_BATCH: u32 = 200;
/// Longest error message kept on a failed job.
const MAX_ERROR: usize = 2000;

/// How scanning runs.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Worker tasks of this replica.
    pub workers: usize,
    /// A running job not finished after this long is claimed again (its replica died).
    pub lease_secs: i64,
    /// Seconds between vulnerability-database checks for a rescan; 0: never.
    pub rescan_interval_secs: u64,
    /// Claims of a job before it stays failed.
    pub max_attempts: u32,
    /// Attach a CycloneDX SBOM to each scanned image as a referrer.
    pub sbom_referrer: bool,
    /// How often an idle worker looks for jobs queued by other replicas.
    pub poll_interval: Duration,
    /// Finished jobs older than this many seconds are pruned; 0: never (results of deleted
    /// manifests are pruned either way).
    pub job_retention_secs: i64,
    /// Time between prunes.
    pub prune_interval: Duration,
    /// Queue every image that has no result and no pending job when the workers start.
    pub backfill_on_start: bool,
    /// Keep the queue gauges current (a count query per poll interval); off when no metrics
    /// recorder is installed.
    pub queue_metrics: bool,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            workers: 2,
            lease_secs: 600,
            rescan_interval_secs: 60,
            max_attempts: 3,
            sbom_referrer: true,
            poll_interval: Duration::from_secs(2),
            job_retention_secs: 7 * 86_400,
            prune_interval: Duration::from_secs(3600),
            backfill_on_start: true,
            queue_metrics: true,
        }
    }
}

/// Prometheus series of the scan workers.
pub mod metric {
    /// Scan jobs finished by this process, by `outcome`: `scanned`, `index` (its platform
    /// images were queued), `retried` (failed, queued again), `failed` (failed for good) and
    /// `lease_lost` (another worker took the job over; nothing was stored).
    pub const JOBS: &str = "bulwark_scan_jobs_total";
    /// Seconds an image scan took (reading the layers, matching, storing the result).
    pub const DURATION: &str = "bulwark_scan_duration_seconds";
    /// Jobs waiting in the shared queue (every replica reports the same number).
    pub const QUEUED: &str = "bulwark_scan_jobs_queued";
    /// Jobs claimed and not finished, on any replica.
    pub const RUNNING: &str = "bulwark_scan_jobs_running";

    pub(crate) const OUTCOMES: [&str; 5] = ["scanned", "index", "retried", "failed", "lease_lost"];
}

/// Help texts, and every outcome at zero (so that the first failure is an increase); call
/// once after installing a recorder.
pub fn init_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    for outcome in metric::OUTCOMES {
        metrics::counter!(metric::JOBS, "outcome" => outcome).absolute(0);
    }
    describe_counter!(
        metric::JOBS,
        "Scan jobs finished by this process, by outcome (scanned, index, retried, failed, lease_lost)"
    );
    describe_histogram!(
        metric::DURATION,
        Unit::Seconds,
        "Time an image scan took: reading its layers, matching, storing the result"
    );
    describe_gauge!(
        metric::QUEUED,
        "Scan jobs waiting in the queue shared by all replicas"
    );
    describe_gauge!(
        metric::RUNNING,
        "Scan jobs claimed by a worker of any replica and not finished"
    );
}

fn count_job(outcome: &'static str) {
    metrics::counter!(metric::JOBS, "outcome" => outcome).increment(1);
}

/// Scan on push, the workers and the rescan.
pub struct ScanService {
    registry: Arc<Registry>,
    meta: Arc<dyn MetadataStore>,
    scans: Arc<dyn ScanStore>,
    vulns: Arc<dyn VulnStore>,
    config: ScanConfig,
    wake: Notify,
    /// This replica's worker id prefix.
    replica: String,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why a job failed, and whether trying again may help.
#[derive(Debug)]
struct JobError {
    message: String,
    retry: bool,
}

impl JobError {
    fn permanent(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            retry: false,
        }
    }

    fn transient(message: impl Into<String>) -> JobError {
        JobError {
            message: message.into(),
            retry: true,
        }
    }
}

impl From<bulwark_core::Error> for JobError {
    fn from(e: bulwark_core::Error) -> JobError {
        match e {
            bulwark_core::Error::ManifestUnknown | bulwark_core::Error::BlobUnknown(_) => {
                JobError::permanent(e.to_string())
            }
            _ => JobError::transient(e.to_string()),
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> JobError {
        JobError::transient(e.to_string())
    }
}

/// Whether a pushed manifest is worth scanning: an image index (not an artifact index), or an
/// image manifest with an image config and filesystem layers only.
pub fn is_scannable(manifest: &ParsedManifest) -> bool {
    match manifest.kind {
        ManifestKind::Index => manifest.artifact_type.is_none() && !manifest.manifests.is_empty(),
        ManifestKind::Image => {
            let config_ok = manifest.config.as_ref().is_some_and(|c| {
                matches!(
                    essence(&c.media_type),
                    media_types::OCI_CONFIG | media_types::DOCKER_CONFIG
                )
            });
            let layers_ok = !manifest.layers.is_empty()
                && manifest
                    .layers
                    .iter()
                    .all(|l| is_filesystem_layer(&l.media_type));
            manifest.artifact_type.is_none() && config_ok && layers_ok
        }
    }
}

fn is_filesystem_layer(media_type: &str) -> bool {
    let m = essence(media_type);
    m.starts_with("application/vnd.oci.image.layer.")
        || m.starts_with("application/vnd.docker.image.rootfs.")
}

impl ScanService {
    pub fn new(
        registry: Arc<Registry>,
        meta: Arc<dyn MetadataStore>,
        scans: Arc<dyn ScanStore>,
        vulns: Arc<dyn VulnStore>,
        config: ScanConfig,
    ) -> ScanService {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        ScanService {
            registry,
            meta,
            scans,
            vulns,
            config,
            wake: Notify::new(),
            replica: format!("{}-{nanos:08x}", std::process::id()),
        }
    }

    pub fn scans(&self) -> &Arc<dyn ScanStore> {
        &self.scans
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// After a successful manifest push: queue a scan if the manifest is an image or an
    /// index. Never fails the push; problems are logged.
    pub async fn on_push(
        &self,
        repo: &RepoName,
        digest: &Digest,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        let Some(manifest) = ParsedManifest::parse(content_type, body)
            .ok()
            .filter(is_scannable)
        else {
            return;
        };
        let queued = match manifest.kind {
            ManifestKind::Image => self.enqueue(repo, digest).await.map(|_| ()),
            // The platform images were pushed (and queued) just before, usually.
            ManifestKind::Index => self.enqueue_index(repo, &manifest, false).await.map(|_| ()),
        };
        if let Err(e) = queued {
            tracing::warn!(error = %e, %repo, %digest, "queueing a scan failed");
        }
    }

    /// Queues a new scan of a manifest of `repo`: an image, or every platform image of an
    /// index. `false` when everything was queued already.
    pub async fn request_scan(
        &self,
        repo: &RepoName,
        manifest: &bulwark_core::store::StoredManifest,
    ) -> Result<bool, StoreError> {
        match ParsedManifest::parse(Some(&manifest.media_type), &manifest.content) {
            Ok(index) if index.kind == ManifestKind::Index => {
                Ok(self.enqueue_index(repo, &index, true).await? > 0)
            }
            _ => self.enqueue(repo, &manifest.digest).await,
        }
    }

    /// Queues the platform images of `index`: all of them when `force`, else those with no
    /// result and no queued or running job. Returns how many were queued.
    async fn enqueue_index(
        &self,
        repo: &RepoName,
        index: &ParsedManifest,
        force: bool,
    ) -> Result<u32, StoreError> {
        let images = self
            .index_images(repo, index)
            .await
            .map_err(StoreError::backend)?;
        let mut queued = 0;
        for (_, child) in images {
            let child = child.to_string();
            if !force && self.has_result_or_pending(repo, &child).await? {
                continue;
            }
            if self.scans.enqueue(repo.as_str(), &child, now()).await? {
                queued += 1;
                self.wake.notify_one();
            }
        }
        Ok(queued)
    }

    async fn has_result_or_pending(
        &self,
        repo: &RepoName,
        digest: &str,
    ) -> Result<bool, StoreError> {
        if self.scans.result(digest).await?.is_some() {
            return Ok(true);
        }
        let job = self.scans.latest_job(repo.as_str(), digest).await?;
        Ok(job.is_some_and(|j| matches!(j.state, JobState::Queued | JobState::Running)))
    }

    /// The platform images of an index in `repo`, in its order, with their platform
    /// (`os/arch[/variant]`): image manifests the repository holds, not attestations
    /// (`unknown/unknown`) nor nested indexes.
    async fn index_images(
        &self,
        repo: &RepoName,
        index: &ParsedManifest,
    ) -> Result<Vec<(String, Digest)>, bulwark_core::Error> {
        let mut images = Vec::new();
        for d in &index.manifests {
            let os = d
                .platform
                .as_ref()
                .and_then(|p| p.get("os"))
                .and_then(Value::as_str);
            if os == Some("unknown")
                || matches!(
                    essence(&d.media_type),
                    media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST
                )
            {
                continue;
            }
            let child = match self
                .registry
                .get_manifest(repo, &Reference::Digest(d.digest.clone()))
                .await
            {
                Ok(m) => m,
                Err(bulwark_core::Error::ManifestUnknown) => continue,
                Err(e) => return Err(e),
            };
            let image = ParsedManifest::parse(Some(&child.media_type), &child.content)
                .is_ok_and(|m| m.kind == ManifestKind::Image && is_scannable(&m));
            if image {
                images.push((platform_name(d), d.digest.clone()));
            }
        }
        Ok(images)
    }

    /// For an index: the scan state of each platform image (see [`PlatformScan`]); `None`
    /// for any other manifest.
    pub async fn index_platforms(
        &self,
        repo: &RepoName,
        manifest: &bulwark_core::store::StoredManifest,
    ) -> Result<Option<Vec<PlatformScan>>, StoreError> {
        let index = match ParsedManifest::parse(Some(&manifest.media_type), &manifest.content) {
            Ok(m) if m.kind == ManifestKind::Index => m,
            _ => return Ok(None),
        };
        let images = self
            .index_images(repo, &index)
            .await
            .map_err(StoreError::backend)?;
        let mut platforms = Vec::with_capacity(images.len());
        for (platform, digest) in images {
            let digest = digest.to_string();
            let job = self.scans.latest_job(repo.as_str(), &digest).await?;
            let result = self.scans.result(&digest).await?;
            platforms.push(PlatformScan {
                platform,
                digest,
                job,
                result,
            });
        }
        Ok(Some(platforms))
    }

    /// Queues a scan of `digest` in `repo`; `false` when one is queued already.
    pub async fn enqueue(&self, repo: &RepoName, digest: &Digest) -> Result<bool, StoreError> {
        let queued = self
            .scans
            .enqueue(repo.as_str(), &digest.to_string(), now())
            .await?;
        self.wake.notify_one();
        Ok(queued)
    }

    /// Starts the workers and the rescan loop; abort the handles to stop them.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for i in 0..self.config.workers {
            let me = self.clone();
            tasks.push(tokio::spawn(async move { me.work(i).await }));
        }
        if self.config.rescan_interval_secs > 0 {
            let me = self.clone();
            tasks.push(tokio::spawn(async move { me.rescan_loop().await }));
        }
        let me = self.clone();
        tasks.push(tokio::spawn(async move { me.prune_loop().await }));
        if self.config.queue_metrics {
            let me = self.clone();
            tasks.push(tokio::spawn(async move { me.queue_metrics_loop().await }));
        }
        if self.config.backfill_on_start {
            let me = self.clone();
            tasks.push(tokio::spawn(async move {
                match me.backfill().await {
                    Ok(Some(0)) => {}
                    Ok(Some(n)) => tracing::info!(images = n, "queued scans of unscanned images"),
                    Ok(None) => tracing::debug!("the backfill is running on another replica"),
                    Err(e) => tracing::error!(error = %e, "scan backfill failed"),
                }
            }));
        }
        tasks
    }

    async fn work(&self, index: usize) {
        let worker = format!("{}-{index}", self.replica);
        loop {
            match self
                .scans
                .claim(&worker, now(), self.config.lease_secs)
                .await
            {
                Ok(Some(job)) => self.run(&worker, job).await,
                Ok(None) => {
                    let _ =
                        tokio::time::timeout(self.config.poll_interval, self.wake.notified()).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming a scan job failed");
                    tokio::time::sleep(self.config.poll_interval).await;
                }
            }
        }
    }

    /// Keeps the queue gauges current: one count query per poll interval.
    async fn queue_metrics_loop(&self) {
        let queued = metrics::gauge!(metric::QUEUED);
        let running = metrics::gauge!(metric::RUNNING);
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.scans.pending_counts().await {
                Ok((q, r)) => {
                    queued.set(q as f64);
                    running.set(r as f64);
                }
                Err(e) => tracing::debug!(error = %e, "counting pending scan jobs failed"),
            }
        }
    }

    async fn run(&self, worker: &str, job: ScanJob) {
        let started = std::time::Instant::now();
        let lost = Arc::new(AtomicBool::new(false));
        let scan = self.scan_job(&job, &lost);
        let heartbeat = self.heartbeat(worker, job.id, &lost);
        tokio::pin!(scan, heartbeat);
        let outcome = tokio::select! {
            outcome = &mut scan => outcome,
            // The lease is lost: the scan stops at its next read and stores nothing.
            () = &mut heartbeat => scan.await,
        };
        if lost.load(Ordering::SeqCst) {
            tracing::warn!(
                job = job.id,
                repository = %job.repository,
                digest = %job.digest,
                "scan job was claimed by another worker (lease lost); its result is discarded"
            );
            count_job("lease_lost");
            return;
        }
        let stored = match outcome {
            Ok(None) => {
                tracing::info!(
                    repository = %job.repository,
                    digest = %job.digest,
                    "index: its platform images are queued"
                );
                count_job("index");
                self.scans.complete(job.id, worker, now()).await
            }
            Ok(Some(summary)) => {
                tracing::info!(
                    repository = %job.repository,
                    digest = %job.digest,
                    grade = %summary.grade,
                    critical = summary.critical,
                    high = summary.high,
                    total = summary.total,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "image scanned"
                );
                count_job("scanned");
                metrics::histogram!(metric::DURATION).record(started.elapsed().as_secs_f64());
                self.scans.complete(job.id, worker, now()).await
            }
            Err(e) => {
                let retry = e.retry && job.attempts < self.config.max_attempts;
                count_job(if retry { "retried" } else { "failed" });
                tracing::warn!(
                    repository = %job.repository,
                    digest = %job.digest,
                    attempt = job.attempts,
                    retry,
                    error = %e.message,
                    "image scan failed"
                );
                let mut message = e.message;
                if message.len() > MAX_ERROR {
                    let mut cut = MAX_ERROR;
                    while !message.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    message.truncate(cut);
                }
                self.scans
                    .fail(job.id, worker, &message, retry, now())
                    .await
            }
        };
        match stored {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                job = job.id,
                "scan job was claimed by another worker meanwhile (lease expired)"
            ),
            Err(e) => tracing::error!(error = %e, job = job.id, "recording a scan job failed"),
        }
    }

    /// Renews the lease of job `id` every third of the lease (see [`renew_lease`]).
    async fn heartbeat(&self, worker: &str, id: i64, lost: &AtomicBool) {
        let every = u64::try_from(self.config.lease_secs / 3)
            .unwrap_or(0)
            .max(1);
        renew_lease(&*self.scans, worker, id, Duration::from_secs(every), lost).await;
    }

    /// The newest vulnerability-database generation: the id of the newest import.
    async fn generation(&self) -> Result<i64, StoreError> {
        Ok(self.vulns.import_log(1).await?.first().map_or(0, |e| e.id))
    }

    /// Scans the image of `job` and stores the result; for an index, queues its platform
    /// images instead (`None`). Writes nothing once `lost` is set.
    async fn scan_job(
        &self,
        job: &ScanJob,
        lost: &Arc<AtomicBool>,
    ) -> Result<Option<ScanSummary>, JobError> {
        let repo = RepoName::parse(&job.repository)
            .map_err(|e| JobError::permanent(format!("repository name: {e}")))?;
        let digest =
            Digest::parse(&job.digest).map_err(|e| JobError::permanent(format!("digest: {e}")))?;
        let stored = self
            .registry
            .get_manifest(&repo, &Reference::Digest(digest.clone()))
            .await?;
        let top = ParsedManifest::parse(Some(&stored.media_type), &stored.content)
            .map_err(|e| JobError::permanent(format!("manifest: {e}")))?;
        if top.kind == ManifestKind::Index {
            // Jobs queued for an index before platforms were scanned one by one, or an index
            // whose platform images were pushed while scanning was off.
            self.enqueue_index(&repo, &top, false).await?;
            return Ok(None);
        }
        let resolved = ResolvedImage::from_manifest(Some(digest.clone()), &top)
            .map_err(|e| JobError::permanent(e.to_string()))?;

        let generation = self.generation().await?;
        let source = RegistrySource {
            registry: self.registry.clone(),
            handle: Handle::current(),
            lost: lost.clone(),
        };
        let scanned = tokio::task::spawn_blocking(move || {
            scan_image(&source, &resolved, &ScanOptions::default())
        })
        .await
        .map_err(|e| JobError::transient(format!("scan task: {e}")))?
        .map_err(|e| {
            let retry = matches!(e.root(), ImageError::Io { .. });
            JobError {
                message: e.to_string(),
                retry,
            }
        })?;

        let at = now();
        let report = match_image(&scanned, &*self.vulns, at).await?;
        let lint = lint::lint_image(&scanned, &LintOptions::at(at));
        let inventory = Inventory::from_scan(&scanned);
        let summary = ScanSummary::of(&report, scanned.packages.len());
        if lost.load(Ordering::SeqCst) {
            return Err(JobError::permanent("the lease was lost"));
        }
        let result = StoredScan {
            digest: job.digest.clone(),
            repository: job.repository.clone(),
            inventory: serde_json::to_value(&inventory).unwrap_or(Value::Null),
            report: report_json(&report, &scanned),
            lint: serde_json::to_value(&lint).unwrap_or(Value::Null),
            summary: summary.clone(),
            scanned_at: at,
            matched_at: at,
            vulndb_generation: generation,
        };
        self.scans.save_result(&result).await?;
        if self.config.sbom_referrer
            && !lost.load(Ordering::SeqCst)
            && let Err(e) = self
                .attach_sbom(&repo, &digest, &stored, &scanned, at)
                .await
        {
            // The scan itself succeeded; the referrer is retried on the next scan.
            tracing::warn!(error = %e, %repo, %digest, "attaching the SBOM failed");
        }
        Ok(Some(summary))
    }

    /// Pushes a CycloneDX SBOM of `scanned` into `repo` as a referrer of `subject`, unless
    /// one made by this tool is there already.
    async fn attach_sbom(
        &self,
        repo: &RepoName,
        subject: &Digest,
        subject_manifest: &bulwark_core::store::StoredManifest,
        scanned: &ScannedImage,
        at: i64,
    ) -> Result<(), bulwark_core::Error> {
        let existing = self
            .registry
            .referrers(repo, subject, Some(CYCLONEDX_ARTIFACT))
            .await?;
        let ours = existing.iter().any(|r| {
            r.annotations
                .as_deref()
                .is_some_and(|a| a.contains(SBOM_CREATOR))
        });
        if ours {
            return Ok(());
        }
        let mut image = SbomImage::from_scan(scanned, Some(&format!("{repo}@{subject}")));
        image.digest = subject;
        let doc = sbom::cyclonedx(&image, Timestamp(at));
        let sbom_bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let sbom_digest = Digest::sha256_of(&sbom_bytes);
        let empty = Bytes::from_static(b"{}");
        let empty_digest = Digest::sha256_of(&empty);
        for (digest, bytes) in [(&empty_digest, &empty), (&sbom_digest, &sbom_bytes)] {
            let body = bytes.clone();
            let stream: bulwark_core::store::ByteStream =
                Box::pin(futures::stream::once(async move { Ok(body) }));
            self.registry.push_blob(repo, digest, stream).await?;
        }
        let created = Timestamp(at).to_rfc3339();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "artifactType": CYCLONEDX_ARTIFACT,
            "config": {
                "mediaType": media_types::OCI_EMPTY,
                "digest": empty_digest.to_string(),
                "size": empty.len(),
            },
            "layers": [{
                "mediaType": CYCLONEDX_ARTIFACT,
                "digest": sbom_digest.to_string(),
                "size": sbom_bytes.len(),
                "annotations": { "org.opencontainers.image.title": "sbom.cdx.json" },
            }],
            "subject": {
                "mediaType": subject_manifest.media_type,
                "digest": subject.to_string(),
                "size": subject_manifest.content.len(),
            },
            "annotations": {
                "org.opencontainers.image.created": created,
                SBOM_CREATOR: format!("{} {}", sbom::TOOL_NAME, sbom::TOOL_VERSION),
            },
        });
        let body = Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default());
        let digest = Digest::sha256_of(&body);
        self.registry
            .put_manifest(
                repo,
                &Reference::Digest(digest),
                Some(media_types::OCI_MANIFEST),
                body,
            )
            .await?;
        Ok(())
    }

    // ---- rescan ------------------------------------------------------------------------------

    async fn rescan_loop(&self) {
        let mut tick =
            tokio::time::interval(Duration::from_secs(self.config.rescan_interval_secs.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.rescan_job().await {
                Ok(Some(0)) => {}
                Ok(Some(n)) => tracing::info!(
                    images = n,
                    "rescanned after a vulnerability-database update"
                ),
                Ok(None) => tracing::debug!("rescan is running on another replica"),
                Err(e) => tracing::error!(error = %e, "rescan failed"),
            }
        }
    }

    /// Re-matches every stored result matched against an older vulnerability-database
    /// generation, as the single `scan-rescan` job among replicas: `None` when another
    /// replica holds it; else how many results were re-matched.
    pub async fn rescan_job(&self) -> Result<Option<u64>, String> {
        let Some(_lock) = self
            .meta
            .try_job_lock(RESCAN_JOB)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let generation = self.generation().await.map_err(|e| e.to_string())?;
        let mut done = 0u64;
        let mut failed: BTreeSet<String> = BTreeSet::new();
        loop {
            let batch = self
                .scans
                .stale_results(generation, RESCAN_BATCH + failed.len() as u32)
                .await
                .map_err(|e| e.to_string())?;
            let todo: Vec<StoredScan> = batch
                .into_iter()
                .filter(|r| !failed.contains(&r.digest))
                .collect();
            if todo.is_empty() {
                break;
            }
            for stored in todo {
                match self.rematch(&stored, generation).await {
                    Ok(()) => done += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, digest = %stored.digest, "rescan of a stored result failed");
                        failed.insert(stored.digest);
                    }
                }
            }
        }
        Ok(Some(done))
    }

    async fn rematch(&self, stored: &StoredScan, generation: i64) -> Result<(), StoreError> {
        let inventory: Inventory = serde_json::from_value(stored.inventory.clone())
            .map_err(|e| StoreError::corrupt(format!("stored inventory: {e}")))?;
        let packages = inventory.packages()?;
        let distro = inventory.distro();
        let at = now();
        let report = match_packages(
            &packages,
            distro.as_ref(),
            &inventory.diff_ids,
            &*self.vulns,
            at,
        )
        .await?;
        let summary = ScanSummary::of(&report, packages.len());
        let new_json = rematch_json(&report, &stored.report);
        let before = serious(&stored.report);
        let gained: Vec<&Value> = report_findings(&new_json)
            .iter()
            .filter(|f| is_serious(f) && !before.contains(&finding_key(f)))
            .collect();
        if !gained.is_empty() {
            let ids: Vec<String> = gained
                .iter()
                .map(|f| format!("{} ({})", text(&f["id"]), text(&f["package"])))
                .collect();
            tracing::warn!(
                repository = %stored.repository,
                digest = %stored.digest,
                findings = %ids.join(", "),
                grade = %summary.grade,
                "image gained critical/high vulnerabilities after a vulnerability-database update"
            );
            let detail = json!({
                "findings": gained,
                "grade_before": stored.summary.grade,
                "grade": summary.grade,
                "vulndb_generation": generation,
            });
            self.scans
                .record_event(
                    EVENT_NEW_CRITICAL,
                    &stored.repository,
                    &stored.digest,
                    &detail,
                    at,
                )
                .await?;
        }
        self.scans
            .save_rematch(&Rematch {
                digest: stored.digest.clone(),
                report: new_json,
                summary,
                matched_at: at,
                vulndb_generation: generation,
            })
            .await
    }
}

impl ScanService {
    // ---- pruning -----------------------------------------------------------------------------

    async fn prune_loop(&self) {
        let mut tick =
            tokio::time::interval(self.config.prune_interval.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.prune().await {
                Ok(Some((0, 0))) => {}
                Ok(Some((jobs, results))) => {
                    tracing::info!(
                        jobs,
                        results,
                        "pruned finished scan jobs and orphaned results"
                    )
                }
                Ok(None) => tracing::debug!("pruning is running on another replica"),
                Err(e) => tracing::error!(error = %e, "pruning scan jobs failed"),
            }
        }
    }

    /// Deletes finished jobs older than `scanner.job_retention_days` (the newest job of each
    /// existing manifest is kept) and the results of digests no repository holds, as the
    /// single `scan-prune` job among replicas: `None` when another replica holds it; else
    /// how many jobs and results were deleted.
    pub async fn prune(&self) -> Result<Option<(u64, u64)>, String> {
        let Some(_lock) = self
            .meta
            .try_job_lock(PRUNE_JOB)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let mut jobs = 0;
        if self.config.job_retention_secs > 0 {
            let before = now().saturating_sub(self.config.job_retention_secs);
            loop {
                let n = self
                    .scans
                    .prune_jobs(before, PRUNE_BATCH)
                    .await
                    .map_err(|e| e.to_string())?;
                jobs += n;
                if n < u64::from(PRUNE_BATCH) {
                    break;
                }
            }
        }
        let mut results = 0;
        loop {
            let n = self
                .scans
                .prune_results(PRUNE_BATCH)
                .await
                .map_err(|e| e.to_string())?;
            results += n;
            if n < u64::from(PRUNE_BATCH) {
                break;
            }
        }
        Ok(Some((jobs, results)))
    }

    // ---- backfill ----------------------------------------------------------------------------

    /// Queues a scan of every image manifest that has no result and no queued or running job
    /// (pushed while scanning was off, or before), in batches, as the single `scan-backfill`
    /// job among replicas: `None` when another replica holds it; else how many were queued.
    /// Indexes are not queued themselves: their platform images are manifests of the
    /// repository too.
    pub async fn backfill(&self) -> Result<Option<u64>, String> {
        let Some(_lock) = self
            .meta
            .try_job_lock(BACKFILL_JOB)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let mut queued = 0u64;
        let mut after: Option<(String, String)> = None;
        loop {
            let batch = self
                .scans
                .unscanned_manifests(
                    after.as_ref().map(|(r, d)| (r.as_str(), d.as_str())),
                    BACKFILL_BATCH,
                )
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = batch.last() else {
                break;
            };
            after = Some((last.repository.clone(), last.digest.clone()));
            for m in &batch {
                let image = ParsedManifest::parse(Some(&m.media_type), &m.content)
                    .is_ok_and(|p| p.kind == ManifestKind::Image && is_scannable(&p));
                if !image {
                    continue;
                }
                if self
                    .scans
                    .enqueue(&m.repository, &m.digest, now())
                    .await
                    .map_err(|e| e.to_string())?
                {
                    queued += 1;
                    self.wake.notify_one();
                }
            }
            if batch.len() < BACKFILL_BATCH as usize {
                break;
            }
        }
        Ok(Some(queued))
    }
}

/// The manifest PUT handler's hook: queues a scan when the server scans (see
/// [`ScanService::on_push`]).
pub(crate) async fn on_push(
    state: &crate::AppState,
    repo: &RepoName,
    digest: &Digest,
    content_type: Option<&str>,
    body: &[u8],
) {
    if let Some(scans) = &state.scans {
        scans.on_push(repo, digest, content_type, body).await;
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn report_findings(report: &Value) -> &[Value] {
    report["findings"].as_array().map_or(&[], Vec::as_slice)
}

fn is_serious(f: &Value) -> bool {
    matches!(f["severity"].as_str(), Some("critical" | "high"))
}

fn finding_key(f: &Value) -> (String, String, String) {
    (
        text(&f["id"]).to_owned(),
        text(&f["package"]).to_owned(),
        text(&f["path"]).to_owned(),
    )
}

/// The Critical and High findings of a stored report.
fn serious(report: &Value) -> BTreeSet<(String, String, String)> {
    report_findings(report)
        .iter()
        .filter(|f| is_serious(f))
        .map(finding_key)
        .collect()
}

/// The stored report: the findings, the summary and the warnings of matching and scanning.
fn report_json(report: &VulnReport, scanned: &ScannedImage) -> Value {
    let mut warnings: Vec<String> = scanned
        .warnings
        .list
        .iter()
        .map(|w| {
            let layer = w.layer.map(|l| format!("layer {l}: ")).unwrap_or_default();
            format!("{layer}{}: {}", w.path, w.message)
        })
        .collect();
    let scan_warnings = warnings.clone();
    warnings.extend(report.warnings.iter().cloned());
    json!({
        "findings": report.findings,
        "summary": report.summary,
        "warnings": warnings,
        "scan_warnings": scan_warnings,
    })
}

/// A rescan's report: new findings and summary, the layer scan's warnings kept.
fn rematch_json(report: &VulnReport, old: &Value) -> Value {
    let scan_warnings: Vec<String> = old["scan_warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut warnings = scan_warnings.clone();
    warnings.extend(report.warnings.iter().cloned());
    json!({
        "findings": report.findings,
        "summary": report.summary,
        "warnings": warnings,
        "scan_warnings": scan_warnings,
    })
}

/// Renews the lease of job `id` every `every` until it is lost (then sets `lost` and
/// returns); never returns while the lease holds. A failed renewal (database down) is
/// retried on the next beat: the lease is lost only when another worker took it.
async fn renew_lease(
    scans: &dyn ScanStore,
    worker: &str,
    id: i64,
    every: Duration,
    lost: &AtomicBool,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match scans.renew(id, worker, now()).await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(error = %e, job = id, "renewing a scan lease failed"),
        }
    }
}

/// `os/arch[/variant]` of an index entry; empty when it names no platform.
fn platform_name(d: &Descriptor) -> String {
    let field = |k: &str| {
        d.platform
            .as_ref()
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    match (field("os"), field("architecture")) {
        (Some(os), Some(arch)) => match field("variant") {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        },
        (Some(os), None) => os.to_owned(),
        _ => String::new(),
    }
}

/// The scan state of one platform image of an index.
#[derive(Debug, Clone)]
pub struct PlatformScan {
    /// `os/arch[/variant]` as the index lists it.
    pub platform: String,
    /// The platform image's manifest digest.
    pub digest: String,
    /// Its newest job in the repository.
    pub job: Option<ScanJob>,
    /// Its stored result.
    pub result: Option<StoredScan>,
}

/// A [`BlobSource`] over the registry's blob store, for the synchronous scanner running in
/// `spawn_blocking`: each read blocks on the async reader, so layers stream.
pub struct RegistrySource {
    registry: Arc<Registry>,
    handle: Handle,
    /// Set when the job's lease was lost: reads fail, so the scan stops early.
    lost: Arc<AtomicBool>,
}

struct BlockingReader {
    reader: Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    handle: Handle,
    lost: Arc<AtomicBool>,
}

fn lease_lost() -> std::io::Error {
    std::io::Error::other("the scan job's lease was lost")
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(lease_lost());
        }
        let reader = &mut self.reader;
        self.handle.block_on(reader.read(buf))
    }
}

impl BlobSource for RegistrySource {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(ImageError::Io {
                context: format!("opening blob {digest}"),
                source: lease_lost(),
            });
        }
        let reader = self
            .handle
            .block_on(self.registry.read_blob(digest, None))
            .map_err(|e| match e {
                bulwark_core::Error::BlobUnknown(d) => ImageError::BlobNotFound(d),
                other => ImageError::Io {
                    context: format!("opening blob {digest}"),
                    source: std::io::Error::other(other.to_string()),
                },
            })?;
        Ok(Box::new(BlockingReader {
            reader,
            handle: self.handle.clone(),
            lost: self.lost.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> ParsedManifest {
        let ct = v["mediaType"].as_str().map(str::to_owned);
        ParsedManifest::parse(ct.as_deref(), &serde_json::to_vec(&v).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn desc(media_type: &str) -> Value {
        json!({
            "mediaType": media_type,
            "digest": Digest::sha256_of(media_type.as_bytes()).to_string(),
            "size": 1,
        })
    }

    #[test]
    #[allow(clippy::panic)]
    fn images_and_indexes_are_scanned_artifacts_not() {
        let image = parse(json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": desc(media_types::OCI_CONFIG),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip")],
        }));
        assert!(is_scannable(&image));
        let cosign = parse(json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": desc(media_types::OCI_CONFIG),
            "layers": [desc("application/vnd.dev.cosign.simplesigning.v1+json")],
        }));
        assert!(!is_scannable(&cosign));
        let sbom = parse(json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "artifactType": CYCLONEDX_ARTIFACT,
            "config": desc(media_types::OCI_EMPTY),
            "layers": [desc(CYCLONEDX_ARTIFACT)],
        }));
        assert!(!is_scannable(&sbom));
        let index = parse(json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": [desc(media_types::OCI_MANIFEST)],
        }));
        assert!(is_scannable(&index));
        // A BuildKit attestation manifest: an image config, but in-toto layers.
        let attestation = parse(json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_MANIFEST,
            "config": desc(media_types::OCI_CONFIG),
            "layers": [desc("application/vnd.in-toto+json")],
        }));
        assert!(!is_scannable(&attestation));
    }

    /// A store whose renewals answer from a script (`Err` for a database error); the rest is
    /// never called.
    struct Renewals(
        std::sync::Mutex<Vec<Option<bool>>>,
        std::sync::atomic::AtomicUsize,
    );

    #[async_trait::async_trait]
    #[allow(clippy::unimplemented)]
    impl ScanStore for Renewals {
        async fn renew(&self, id: i64, worker: &str, _now: i64) -> Result<bool, StoreError> {
            assert_eq!((id, worker), (7, "w1"));
            self.1.fetch_add(1, Ordering::SeqCst);
            let mut script = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match script.remove(0) {
                Some(held) => Ok(held),
                None => Err(StoreError::corrupt("database down")),
            }
        }
        async fn enqueue(&self, _: &str, _: &str, _: i64) -> Result<bool, StoreError> {
            unimplemented!()
        }
        async fn claim(&self, _: &str, _: i64, _: i64) -> Result<Option<ScanJob>, StoreError> {
            unimplemented!()
        }
        async fn complete(&self, _: i64, _: &str, _: i64) -> Result<bool, StoreError> {
            unimplemented!()
        }
        async fn fail(
            &self,
            _: i64,
            _: &str,
            _: &str,
            _: bool,
            _: i64,
        ) -> Result<bool, StoreError> {
            unimplemented!()
        }
        async fn prune_jobs(&self, _: i64, _: u32) -> Result<u64, StoreError> {
            unimplemented!()
        }
        async fn prune_results(&self, _: u32) -> Result<u64, StoreError> {
            unimplemented!()
        }
        async fn unscanned_manifests(
            &self,
            _: Option<(&str, &str)>,
            _: u32,
        ) -> Result<Vec<bulwark_scanner::jobs::UnscannedManifest>, StoreError> {
            unimplemented!()
        }
        async fn pending_counts(&self) -> Result<(u64, u64), StoreError> {
            unimplemented!()
        }
        async fn latest_job(&self, _: &str, _: &str) -> Result<Option<ScanJob>, StoreError> {
            unimplemented!()
        }
        async fn save_result(&self, _: &StoredScan) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn result(&self, _: &str) -> Result<Option<StoredScan>, StoreError> {
            unimplemented!()
        }
        async fn stale_results(&self, _: i64, _: u32) -> Result<Vec<StoredScan>, StoreError> {
            unimplemented!()
        }
        async fn save_rematch(&self, _: &Rematch) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn record_event(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &Value,
            _: i64,
        ) -> Result<i64, StoreError> {
            unimplemented!()
        }
        async fn events(
            &self,
            _: Option<&str>,
            _: u32,
        ) -> Result<Vec<bulwark_scanner::jobs::ScanEvent>, StoreError> {
            unimplemented!()
        }
    }

    /// The heartbeat keeps renewing through a database error and stops, flagging the lease
    /// lost, at the first renewal another worker's claim refuses.
    #[tokio::test]
    async fn the_heartbeat_flags_a_lost_lease() {
        let store = Renewals(
            std::sync::Mutex::new(vec![Some(true), None, Some(true), Some(false), Some(true)]),
            std::sync::atomic::AtomicUsize::new(0),
        );
        let lost = AtomicBool::new(false);
        let beat = renew_lease(&store, "w1", 7, Duration::from_millis(5), &lost);
        tokio::time::timeout(Duration::from_secs(10), beat)
            .await
            .unwrap_or_else(|_| panic!("the heartbeat did not stop"));
        assert!(lost.load(Ordering::SeqCst));
        assert_eq!(
            store.1.load(Ordering::SeqCst),
            4,
            "no renewal after the lost one"
        );
    }

    /// Reads through a source whose lease is lost fail, so the scan stops early.
    #[test]
    #[allow(clippy::panic)]
    fn a_lost_lease_stops_reading() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut reader = BlockingReader {
            reader: Box::pin(tokio::io::empty()),
            handle: rt.handle().clone(),
            lost: Arc::new(AtomicBool::new(true)),
        };
        let mut buf = [0u8; 8];
        let err = reader.read(&mut buf).err();
        assert!(err.is_some_and(|e| e.to_string().contains("lease was lost")));
    }

    #[test]
    #[allow(clippy::panic)]
    fn platform_names() {
        let entry = |platform: Option<Value>| {
            let mut d = desc(media_types::OCI_MANIFEST);
            if let Some(p) = platform {
                d["platform"] = p;
            }
            serde_json::from_value::<Descriptor>(d).unwrap_or_else(|e| panic!("{e}"))
        };
        let name = |p: Option<Value>| platform_name(&entry(p));
        assert_eq!(
            name(Some(json!({"os": "linux", "architecture": "amd64"}))),
            "linux/amd64"
        );
        assert_eq!(
            name(Some(
                json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
            )),
            "linux/arm64/v8"
        );
        assert_eq!(name(Some(json!({"os": "windows"}))), "windows");
        assert_eq!(name(None), "");
    }
}
