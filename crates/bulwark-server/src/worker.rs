//! Background workers: the online garbage collector.

use std::sync::Arc;
use std::time::Duration;

use bulwark_core::Registry;
use bulwark_core::gc::GcOptions;

/// Run GC every `interval` until the returned handle is aborted, as the single `gc` job among
/// replicas (a tick finding another replica collecting skips). Failures are logged and
/// retried at the next tick; GC never blocks pushes or pulls.
pub fn spawn_gc(
    registry: Arc<Registry>,
    interval: Duration,
    grace_secs: i64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match registry
                .run_gc_job(GcOptions {
                    grace_secs,
                    dry_run: false,
                })
                .await
            {
                Ok(Some(report)) => tracing::info!(?report, "garbage collection finished"),
                Ok(None) => tracing::debug!("garbage collection is running on another replica"),
                Err(e) => tracing::error!(error = %e, "garbage collection failed"),
            }
        }
    })
}
