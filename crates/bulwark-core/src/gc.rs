//! Online garbage collection. Metadata is swept first (unreachable untagged manifests, then
//! blob links nothing references), then blobs no repository links, then files with no
//! metadata at all. Everything younger than the grace window is kept, which protects blobs of
//! pushes in flight; each blob is removed under its digest lock, so a concurrent push of the
//! same content either keeps it alive or re-creates it.

use serde::Serialize;

use crate::error::Result;
use crate::registry::Registry;

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

    pub async fn collect_garbage(&self, opts: GcOptions) -> Result<GcReport> {
        let cutoff = self.clock.now() - opts.grace_secs.max(0);
        let counts = self.meta.gc_metadata(cutoff, opts.dry_run).await?;
        let mut report = GcReport {
            dry_run: opts.dry_run,
            manifests_deleted: counts.manifests,
            links_deleted: counts.links,
            ..GcReport::default()
        };

        if opts.dry_run {
            for digest in self.meta.gc_dry_run_blobs(cutoff).await? {
                report.blobs_deleted += 1;
                report.bytes_freed += self.blobs.blob_size(&digest).await?.unwrap_or(0);
            }
        } else {
            self.sweep_unlinked_blobs(cutoff, &mut report).await?;
        }

        // Files without metadata: left by a crash between rename and the metadata commit.
        for (digest, mtime) in self.blobs.list_blobs().await? {
            if mtime >= cutoff {
                continue;
            }
            let _guard = self.digest_locks.lock(&digest).await;
            let _shared = self.meta.lock_blob(&digest).await?;
            if self.meta.blob_size(&digest).await?.is_none() {
                let size = self.blobs.blob_size(&digest).await?.unwrap_or(0);
                if !opts.dry_run {
                    self.blobs.delete_blob(&digest).await?;
                }
                report.orphan_files_deleted += 1;
                report.bytes_freed += size;
            }
        }
        Ok(report)
    }

    /// Blobs no repository links any more. A candidate re-linked meanwhile is skipped by
    /// `forget_blob_if_unlinked`; the loop ends when a batch makes no progress.
    async fn sweep_unlinked_blobs(&self, cutoff: i64, report: &mut GcReport) -> Result<()> {
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
            for digest in fresh {
                let _guard = self.digest_locks.lock(&digest).await;
                let _shared = self.meta.lock_blob(&digest).await?;
                let size = self.blobs.blob_size(&digest).await?.unwrap_or(0);
                if self.meta.forget_blob_if_unlinked(&digest, cutoff).await? {
                    self.blobs.delete_blob(&digest).await?;
                    report.blobs_deleted += 1;
                    report.bytes_freed += size;
                }
            }
        }
    }
}
