//! Contract suite for [`ScanStore`]: the scan job queue (one queued job per subject, claims,
//! leases re-claimed after a replica died, retries), stored results and rescans, events, and
//! concurrent claims. Every check is an `async fn(Arc<dyn ScanStore>)` on an empty store, run
//! on SQLite (a file in a temporary directory) and, when `BULWARK_TEST_POSTGRES_URL` is set,
//! on PostgreSQL (a database of its own, dropped afterwards; see `common`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bulwark_core::MetadataStore;
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_scanner::jobs::{JobState, Rematch, ScanStore, ScanSummary, StoredScan};
use common::with_postgres_database;
use serde_json::json;

type Store = Arc<dyn ScanStore>;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

async fn check_queue(s: Store) {
    assert!(s.enqueue("p/app", D1, 10).await.unwrap());
    assert!(
        !s.enqueue("p/app", D1, 11).await.unwrap(),
        "one queued job per subject"
    );
    assert!(s.enqueue("p/other", D1, 12).await.unwrap());
    assert!(s.enqueue("p/app", D2, 13).await.unwrap());

    let a = s.claim("w1", 20, 600).await.unwrap().unwrap();
    assert_eq!((a.repository.as_str(), a.digest.as_str()), ("p/app", D1));
    assert_eq!(a.state, JobState::Running);
    assert_eq!(a.attempts, 1);
    assert_eq!(a.claimed_by.as_deref(), Some("w1"));
    assert_eq!(a.claimed_at, Some(20));
    assert_eq!(a.created_at, 10);
    // While it runs, the same subject can be queued again.
    assert!(s.enqueue("p/app", D1, 21).await.unwrap());

    let b = s.claim("w2", 22, 600).await.unwrap().unwrap();
    assert_eq!(b.repository, "p/other");
    let c = s.claim("w2", 22, 600).await.unwrap().unwrap();
    assert_eq!(c.digest, D2);
    let d = s.claim("w3", 23, 600).await.unwrap().unwrap();
    assert_eq!((d.repository.as_str(), d.digest.as_str()), ("p/app", D1));
    assert_ne!(d.id, a.id);
    assert!(s.claim("w3", 24, 600).await.unwrap().is_none());

    // Only the holder finishes a job.
    assert!(!s.complete(a.id, "w2", 30).await.unwrap());
    assert!(s.complete(a.id, "w1", 30).await.unwrap());
    assert!(!s.complete(a.id, "w1", 31).await.unwrap(), "already done");
    assert!(s.complete(d.id, "w3", 32).await.unwrap());
    let latest = s.latest_job("p/app", D1).await.unwrap().unwrap();
    assert_eq!(latest.id, d.id);
    assert_eq!(latest.state, JobState::Done);
    assert_eq!(latest.updated_at, 32);
    assert!(s.latest_job("p/none", D1).await.unwrap().is_none());
}

async fn check_lease_and_retries(s: Store) {
    assert!(s.enqueue("p/app", D1, 0).await.unwrap());
    let a = s.claim("w1", 100, 60).await.unwrap().unwrap();
    // Within the lease nobody else gets it.
    assert!(s.claim("w2", 150, 60).await.unwrap().is_none());
    // The replica of w1 died: after the lease the job is claimed again.
    let b = s.claim("w2", 200, 60).await.unwrap().unwrap();
    assert_eq!(b.id, a.id);
    assert_eq!(b.attempts, 2);
    assert_eq!(b.claimed_by.as_deref(), Some("w2"));
    assert!(!s.complete(a.id, "w1", 201).await.unwrap(), "w1 lost it");

    // A failure with retry queues it again; without, it stays failed with the error.
    assert!(
        s.fail(b.id, "w2", "storage hiccup", true, 210)
            .await
            .unwrap()
    );
    let job = s.latest_job("p/app", D1).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.error.as_deref(), Some("storage hiccup"));
    let c = s.claim("w3", 220, 60).await.unwrap().unwrap();
    assert_eq!((c.id, c.attempts), (a.id, 3));
    assert_eq!(c.error, None);
    assert!(s.fail(c.id, "w3", "bad layer", false, 230).await.unwrap());
    let job = s.latest_job("p/app", D1).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.as_deref(), Some("bad layer"));
    assert!(s.claim("w3", 10_000, 60).await.unwrap().is_none());

    // A retry while another job of the subject is queued fails instead (one queued job).
    assert!(s.enqueue("p/app", D2, 300).await.unwrap());
    let e = s.claim("w1", 301, 60).await.unwrap().unwrap();
    assert!(s.enqueue("p/app", D2, 302).await.unwrap());
    assert!(s.fail(e.id, "w1", "again", true, 303).await.unwrap());
    let next = s.claim("w1", 304, 60).await.unwrap().unwrap();
    assert_ne!(next.id, e.id);
    assert!(s.claim("w1", 305, 60).await.unwrap().is_none());
}

fn summary(grade: &str, critical: u64) -> ScanSummary {
    ScanSummary {
        total: critical + 1,
        critical,
        high: 0,
        medium: 1,
        low: 0,
        negligible: 0,
        unknown: 0,
        fixable: critical,
        grade: grade.to_owned(),
        packages: 5,
    }
}

fn stored(digest: &str, generation: i64, matched_at: i64) -> StoredScan {
    StoredScan {
        digest: digest.to_owned(),
        repository: "p/app".to_owned(),
        inventory: json!({"packages": [{"name": "zlib1g", "version": "1:1.2.13"}]}),
        report: json!({"findings": [{"id": "CVE-1", "severity": "medium"}]}),
        lint: json!({"findings": []}),
        summary: summary("A", 0),
        scanned_at: 100,
        matched_at,
        vulndb_generation: generation,
    }
}

async fn check_results(s: Store) {
    assert!(s.result(D1).await.unwrap().is_none());
    let one = stored(D1, 3, 100);
    s.save_result(&one).await.unwrap();
    s.save_result(&stored(D2, 5, 90)).await.unwrap();
    assert_eq!(s.result(D1).await.unwrap().unwrap(), one);

    // Stale: matched against an older generation than the newest import.
    let stale: Vec<String> = s
        .stale_results(5, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.digest)
        .collect();
    assert_eq!(stale, [D1]);
    assert_eq!(s.stale_results(6, 10).await.unwrap().len(), 2);
    assert_eq!(
        s.stale_results(6, 1).await.unwrap()[0].digest,
        D2,
        "oldest match first"
    );
    assert!(s.stale_results(3, 10).await.unwrap().is_empty());

    let rematch = Rematch {
        digest: D1.to_owned(),
        report: json!({"findings": [{"id": "CVE-2", "severity": "critical"}]}),
        summary: summary("F", 1),
        matched_at: 200,
        vulndb_generation: 5,
    };
    s.save_rematch(&rematch).await.unwrap();
    let got = s.result(D1).await.unwrap().unwrap();
    assert_eq!(got.report, rematch.report);
    assert_eq!(got.summary, rematch.summary);
    assert_eq!(
        (got.scanned_at, got.matched_at, got.vulndb_generation),
        (100, 200, 5)
    );
    assert_eq!(got.inventory, one.inventory, "a rescan keeps the inventory");
    assert!(s.stale_results(5, 10).await.unwrap().is_empty());

    // A slow rescan of an older generation does not overwrite a newer one.
    let older = Rematch {
        vulndb_generation: 4,
        report: json!({"findings": []}),
        ..rematch.clone()
    };
    s.save_rematch(&older).await.unwrap();
    assert_eq!(s.result(D1).await.unwrap().unwrap().report, rematch.report);

    // A new scan replaces the whole result.
    let again = StoredScan {
        scanned_at: 300,
        ..stored(D1, 7, 300)
    };
    s.save_result(&again).await.unwrap();
    assert_eq!(s.result(D1).await.unwrap().unwrap(), again);
}

async fn check_events(s: Store) {
    assert!(s.events(None, 10).await.unwrap().is_empty());
    let detail = json!({"findings": [{"id": "CVE-2024-45492"}], "grade": "F"});
    let a = s
        .record_event("scan.new_critical", "p/app", D1, &detail, 50)
        .await
        .unwrap();
    let b = s
        .record_event("scan.other", "p/app", D2, &json!({}), 60)
        .await
        .unwrap();
    assert!(b > a);
    let all = s.events(None, 10).await.unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [b, a]);
    assert_eq!(all[1].detail, detail);
    assert_eq!(all[1].kind, "scan.new_critical");
    assert_eq!(all[1].repository, "p/app");
    assert_eq!(all[1].digest, D1);
    assert_eq!(all[1].created_at, 50);
    let critical = s.events(Some("scan.new_critical"), 10).await.unwrap();
    assert_eq!(critical.len(), 1);
    assert_eq!(s.events(None, 1).await.unwrap()[0].id, b);
}

/// Workers racing for jobs each get distinct ones, and all of them.
async fn check_concurrent_claims(s: Store) {
    for i in 0..24 {
        let digest = format!("sha256:{i:064x}");
        assert!(s.enqueue("p/app", &digest, i).await.unwrap());
    }
    let mut tasks = Vec::new();
    for w in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = s.claim(&format!("w{w}"), 100, 600).await.unwrap() {
                mine.push(job.id);
                assert!(s.complete(job.id, &format!("w{w}"), 101).await.unwrap());
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 24, "{all:?}");
    assert_eq!(unique.len(), 24);
}

// ---- runners ------------------------------------------------------------------------------

async fn open_sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    store.ready().await.unwrap();
    (dir, store)
}

async fn open_postgres(url: &str) -> PostgresStore {
    let store = PostgresStore::open(url).await.unwrap();
    store.ready().await.unwrap();
    store
}

macro_rules! suites {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (_dir, store) = super::open_sqlite().await;
                    super::$check(std::sync::Arc::new(store)).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::with_postgres_database(|url| async move {
                        let store = super::open_postgres(&url).await;
                        super::$check(std::sync::Arc::new(store.clone())).await;
                        store.close().await;
                    })
                    .await;
                }
            )*
        }
    };
}

suites!(
    check_queue,
    check_lease_and_retries,
    check_results,
    check_events,
    check_concurrent_claims,
);
