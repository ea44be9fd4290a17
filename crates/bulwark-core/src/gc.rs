//! Online garbage collection. Metadata is swept first (unreachable untagged manifests, then
//! blob links nothing references), then blobs no repository links, then files with no
//! metadata at all. Everything younger than the grace window is kept, which protects blobs of
//! pushes in flight; each blob is removed under its digest lock, so a concurrent push of the
//! same content either keeps it alive or re-creates it.

use std::time::Instant;

use metrics::{Counter, Gauge};
use serde::Serialize;

use crate::error::Result;
use crate::registry::Registry;

/// Metric names (the recorder is the binary's business; without one these are no-ops).
pub mod metric {
    /// Finished runs by `outcome`: `completed`, `dry_run` or `failed`.
    pub const RUNS: &str = "bulwark_gc_runs_total";
    /// 1 while this process is collecting.
    pub const RUNNING: &str = "bulwark_gc_running";
    /// When the last run (any outcome) ended, seconds since the epoch.
    pub const LAST_RUN_TIMESTAMP: &str = "bulwark_gc_last_run_timestamp_seconds";
    /// How long the last run (any outcome) took.
    pub const LAST_RUN_DURATION: &str = "bulwark_gc_last_run_duration_seconds";
    /// When the last run that deleted for real ended successfully.
    pub const LAST_SUCCESS_TIMESTAMP: &str = "bulwark_gc_last_success_timestamp_seconds";
    /// Progress: blobs and stored files the current (or last) run has examined so far.
    pub const BLOBS_EXAMINED: &str = "bulwark_gc_run_blobs_examined";
    pub const MANIFESTS_DELETED: &str = "bulwark_gc_manifests_deleted_total";
    pub const LINKS_DELETED: &str = "bulwark_gc_links_deleted_total";
    pub const BLOBS_DELETED: &str = "bulwark_gc_blobs_deleted_total";
    pub const ORPHAN_FILES_DELETED: &str = "bulwark_gc_orphan_files_deleted_total";
    pub const BYTES_FREED: &str = "bulwark_gc_bytes_freed_total";
}

/// Help texts, and the series alerts rely on at zero (so that the first failure is an
/// increase); call once after installing a recorder.
pub fn init_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge};
    for outcome in ["completed", "dry_run", "failed"] {
        metrics::counter!(metric::RUNS, "outcome" => outcome).absolute(0);
    }
    metrics::gauge!(metric::RUNNING).set(0.0);
    describe_counter!(
        metric::RUNS,
        "Garbage collections finished, by outcome (completed, dry_run, failed)"
    );
    describe_gauge!(
        metric::RUNNING,
        "1 while this process is collecting garbage"
    );
    describe_gauge!(
        metric::LAST_RUN_TIMESTAMP,
        Unit::Seconds,
        "When the last garbage collection (any outcome) ended, seconds since the epoch"
    );
    describe_gauge!(
        metric::LAST_RUN_DURATION,
        Unit::Seconds,
        "How long the last garbage collection took"
    );
    describe_gauge!(
        metric::LAST_SUCCESS_TIMESTAMP,
        Unit::Seconds,
        "When the last successful non-dry-run garbage collection ended"
    );
    describe_gauge!(
        metric::BLOBS_EXAMINED,
        "Blobs and stored files the current (or last) garbage collection has examined"
    );
    describe_counter!(
        metric::MANIFESTS_DELETED,
        "Untagged unreachable manifests deleted by GC"
    );
    describe_counter!(
        metric::LINKS_DELETED,
        "Unused repository-to-blob links deleted by GC"
    );
    describe_counter!(metric::BLOBS_DELETED, "Unlinked blobs deleted by GC");
    describe_counter!(
        metric::ORPHAN_FILES_DELETED,
        "Stored blob files without metadata deleted by GC"
    );
    describe_counter!(
        metric::BYTES_FREED,
        Unit::Bytes,
        "Bytes of blobs and orphan files deleted by GC"
    );
}

/// Handles for one run. Deletions are counted as they happen, so the counters are right even
/// when a run fails half-way; dry runs count nothing as deleted.
struct RunMetrics<'a> {
    examined: Gauge,
    blobs_deleted: Counter,
    orphans_deleted: Counter,
    bytes_freed: Counter,
    /// The same progress for `GET /api/v1/gc` (this process's run).
    progress: &'a std::sync::Mutex<Option<GcProgress>>,
}

impl<'a> RunMetrics<'a> {
    fn new(progress: &'a std::sync::Mutex<Option<GcProgress>>, started_at: i64) -> Self {
        let examined = metrics::gauge!(metric::BLOBS_EXAMINED);
        examined.set(0.0);
        if let Ok(mut p) = progress.lock() {
            *p = Some(GcProgress {
                started_at,
                ..GcProgress::default()
            });
        }
        RunMetrics {
            examined,
            blobs_deleted: metrics::counter!(metric::BLOBS_DELETED),
            orphans_deleted: metrics::counter!(metric::ORPHAN_FILES_DELETED),
            bytes_freed: metrics::counter!(metric::BYTES_FREED),
            progress,
        }
    }

    fn update(&self, f: impl FnOnce(&mut GcProgress)) {
        if let Ok(mut p) = self.progress.lock()
            && let Some(p) = p.as_mut()
        {
            f(p);
        }
    }

    fn examined(&self) {
        self.examined.increment(1.0);
        self.update(|p| p.blobs_examined += 1);
    }

    /// A blob (`orphan`: a file without metadata) of `size` bytes was deleted.
    fn deleted(&self, size: u64, orphan: bool) {
        if orphan {
            self.orphans_deleted.increment(1);
        } else {
            self.blobs_deleted.increment(1);
        }
        self.bytes_freed.increment(size);
        self.update(|p| {
            p.blobs_deleted += 1;
            p.bytes_freed += size;
        });
    }
}

impl Drop for RunMetrics<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.progress.lock() {
            *p = None;
        }
    }
}

/// A collection in progress in this process: when it started (seconds since the epoch) and
/// what it has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GcProgress {
    pub started_at: i64,
    pub blobs_examined: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
}

/// Holds `bulwark_gc_running` up while a run is in progress, also when its future is dropped
/// half-way (a client hanging up on `POST /api/v1/gc`, shutdown).
struct Running(Gauge);

impl Running {
    fn start() -> Self {
        let g = metrics::gauge!(metric::RUNNING);
        g.increment(1.0);
        Running(g)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    pub grace_secs: i64,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub manifests_deleted: u64,
    pub links_deleted: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub orphan_files_deleted: u64,
}

const BATCH: u32 = 500;

/// A finished collection: when it ended (seconds since the epoch) and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GcRun {
    pub finished_at: i64,
    pub report: GcReport,
}

impl Registry {
    /// Collect garbage as the single `gc` job among replicas sharing the metadata store:
    /// `None` when another replica is collecting right now. The result is kept as
    /// [`Registry::last_gc`].
    pub async fn run_gc_job(&self, opts: GcOptions) -> Result<Option<GcReport>> {
        let Some(_job) = self.meta.try_job_lock("gc").await? else {
            return Ok(None);
        };
        let report = self.collect_garbage(opts).await?;
        if let Ok(mut last) = self.last_gc.lock() {
            *last = Some(GcRun {
                finished_at: self.clock.now(),
                report,
            });
        }
        Ok(Some(report))
    }

    /// The last collection this process ran, if any.
    pub fn last_gc(&self) -> Option<GcRun> {
        self.last_gc.lock().ok().and_then(|l| *l)
    }

    /// The collection running in this process right now, if any.
    pub fn gc_progress(&self) -> Option<GcProgress> {
        self.gc_progress.lock().ok().and_then(|p| *p)
    }

    /// Collect garbage once (see the module docs), reporting to the metrics recorder.
    pub async fn collect_garbage(&self, opts: GcOptions) -> Result<GcReport> {
        let started = Instant::now();
        let running = Running::start();
        let result = self
            .collect(opts, &RunMetrics::new(&self.gc_progress, self.clock.now()))
            .await;
        drop(running);
        let outcome = match (&result, opts.dry_run) {
            (Err(_), _) => "failed",
            (Ok(_), true) => "dry_run",
            (Ok(_), false) => "completed",
        };
        let now = self.clock.now() as f64;
        metrics::counter!(metric::RUNS, "outcome" => outcome).increment(1);
        metrics::gauge!(metric::LAST_RUN_TIMESTAMP).set(now);
        metrics::gauge!(metric::LAST_RUN_DURATION).set(started.elapsed().as_secs_f64());
        if outcome == "completed" {
            metrics::gauge!(metric::LAST_SUCCESS_TIMESTAMP).set(now);
        }
        result
    }

    async fn collect(&self, opts: GcOptions, m: &RunMetrics<'_>) -> Result<GcReport> {
        let cutoff = self.clock.now() - opts.grace_secs.max(0);
        let counts = self.meta.gc_metadata(cutoff, opts.dry_run).await?;
        let mut report = GcReport {
            dry_run: opts.dry_run,
            manifests_deleted: counts.manifests,
            links_deleted: counts.links,
            ..GcReport::default()
        };
        if !opts.dry_run {
            metrics::counter!(metric::MANIFESTS_DELETED).increment(counts.manifests);
            metrics::counter!(metric::LINKS_DELETED).increment(counts.links);
        }

        if opts.dry_run {
            for digest in self.meta.gc_dry_run_blobs(cutoff).await? {
                m.examined();
                report.blobs_deleted += 1;
                report.bytes_freed += self.blobs.blob_size(&digest).await?.unwrap_or(0);
            }
        } else {
            self.sweep_unlinked_blobs(cutoff, &mut report, m).await?;
        }

        // Files without metadata: left by a crash between rename and the metadata commit.
        for (digest, mtime) in self.blobs.list_blobs().await? {
            m.examined();
            if mtime >= cutoff {
                continue;
            }
            let _guard = self.digest_locks.lock(&digest).await;
            let _shared = self.meta.lock_blob(&digest).await?;
            if self.meta.blob_size(&digest).await?.is_none() {
                let size = self.blobs.blob_size(&digest).await?.unwrap_or(0);
                if !opts.dry_run {
                    self.blobs.delete_blob(&digest).await?;
                    m.deleted(size, true);
                }
                report.orphan_files_deleted += 1;
                report.bytes_freed += size;
            }
        }
        Ok(report)
    }

    /// Blobs no repository links any more. A candidate re-linked meanwhile is skipped by
    /// `forget_blob_if_unlinked`; the loop ends when a batch makes no progress.
    async fn sweep_unlinked_blobs(
        &self,
        cutoff: i64,
        report: &mut GcReport,
        m: &RunMetrics<'_>,
    ) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        loop {
            let batch = self.meta.unlinked_blobs(cutoff, BATCH).await?;
            let fresh: Vec<_> = batch
                .into_iter()
                .filter(|d| seen.insert(d.clone()))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            tracing::debug!(
                candidates = fresh.len(),
                blobs_deleted = report.blobs_deleted,
                bytes_freed = report.bytes_freed,
                "garbage collection: sweeping a batch of unlinked blobs"
            );
            for digest in fresh {
                m.examined();
                let _guard = self.digest_locks.lock(&digest).await;
                let _shared = self.meta.lock_blob(&digest).await?;
                let size = self.blobs.blob_size(&digest).await?.unwrap_or(0);
                if self.meta.forget_blob_if_unlinked(&digest, cutoff).await? {
                    self.blobs.delete_blob(&digest).await?;
                    m.deleted(size, false);
                    report.blobs_deleted += 1;
                    report.bytes_freed += size;
                }
            }
        }
    }
}
