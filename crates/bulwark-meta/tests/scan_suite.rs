//! Contract suite for [`ScanStore`]: the scan job queue (one queued job per subject, claims,
//! leases re-claimed after a replica died, lease renewal, retries), stored results and
//! rescans, events, concurrent claims, pruning of finished jobs and orphaned results, and the
//! backfill's candidates. Every check is an async fn on an empty store (`Arc<dyn ScanStore>`,
//! or the store itself where manifests are needed), run
//! on SQLite (a file in a temporary directory) and, when `BULWARK_TEST_POSTGRES_URL` is set,
//! on PostgreSQL (a database of its own, dropped afterwards; see `common`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bulwark_core::MetadataStore;
use bulwark_core::store::NewManifest;
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_oci::media_types::{OCI_INDEX, OCI_MANIFEST};
use bulwark_oci::{Digest, RepoName};
use bulwark_scanner::jobs::{JobState, Rematch, ScanStore, ScanSummary, StoredScan};
use bytes::Bytes;
use common::with_postgres_database;
use serde_json::json;

type Store = Arc<dyn ScanStore>;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

async fn check_queue(s: Store) {
    assert_eq!(s.pending_counts().await.unwrap(), (0, 0));
    assert!(s.enqueue("p/app", D1, 10).await.unwrap());
    assert!(
        !s.enqueue("p/app", D1, 11).await.unwrap(),
        "one queued job per subject"
    );
    assert!(s.enqueue("p/other", D1, 12).await.unwrap());
    assert!(s.enqueue("p/app", D2, 13).await.unwrap());
    assert_eq!(s.pending_counts().await.unwrap(), (3, 0));

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
    assert_eq!(s.pending_counts().await.unwrap(), (0, 4));

    // Only the holder finishes a job.
    assert!(!s.complete(a.id, "w2", 30).await.unwrap());
    assert!(s.complete(a.id, "w1", 30).await.unwrap());
    assert!(!s.complete(a.id, "w1", 31).await.unwrap(), "already done");
    assert!(s.complete(d.id, "w3", 32).await.unwrap());
    assert_eq!(
        s.pending_counts().await.unwrap(),
        (0, 2),
        "done jobs are not pending"
    );
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

/// A worker renews its lease while it scans; once another worker claimed the job after the
/// lease expired, the renewal fails (and the first worker must stop writing results).
async fn check_lease_renewal(s: Store) {
    assert!(s.enqueue("p/app", D1, 0).await.unwrap());
    let a = s.claim("w1", 100, 60).await.unwrap().unwrap();
    assert!(s.renew(a.id, "w1", 150).await.unwrap());
    let job = s.latest_job("p/app", D1).await.unwrap().unwrap();
    assert_eq!(job.claimed_at, Some(150), "the lease runs from the renewal");
    assert_eq!(job.state, JobState::Running);
    // Past the first lease (160) but within the renewed one (210): nobody else gets it.
    assert!(s.claim("w2", 200, 60).await.unwrap().is_none());
    assert!(
        !s.renew(a.id, "w2", 200).await.unwrap(),
        "only the holder renews"
    );
    // w1 stopped renewing: after the renewed lease w2 claims it, and w1 has lost it.
    let b = s.claim("w2", 211, 60).await.unwrap().unwrap();
    assert_eq!((b.id, b.attempts), (a.id, 2));
    assert!(!s.renew(a.id, "w1", 212).await.unwrap());
    assert!(s.renew(b.id, "w2", 212).await.unwrap());
    assert!(!s.complete(a.id, "w1", 213).await.unwrap());
    assert!(s.complete(b.id, "w2", 214).await.unwrap());
    assert!(
        !s.renew(b.id, "w2", 215).await.unwrap(),
        "a finished job is not renewed"
    );
    assert!(!s.renew(9_999, "w2", 215).await.unwrap());
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

// ---- pruning and backfill (need manifests) ---------------------------------------------------

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

/// A manifest named `name` (an image unless `media_type` says otherwise); referencing no
/// blobs, which the store does not look into.
fn manifest(name: &str, media_type: &str) -> NewManifest {
    let content = Bytes::from(format!(r#"{{"schemaVersion":2,"name":"{name}"}}"#));
    NewManifest {
        digest: Digest::sha256_of(&content),
        media_type: media_type.to_owned(),
        content,
        subject: None,
        artifact_type: None,
        annotations: None,
        blobs: Vec::new(),
        children: Vec::new(),
    }
}

async fn put<S: MetadataStore>(s: &S, r: &str, m: &NewManifest) {
    s.put_manifest(&repo(r), m, None, 1)
        .await
        .unwrap()
        .unwrap_or_else(|rej| panic!("put of {} rejected: {rej:?}", m.digest));
}

/// Runs one job of (`repository`, `digest`) to `done` (or `failed`) at `at`.
async fn finish_job(s: &dyn ScanStore, repository: &str, digest: &str, at: i64, ok: bool) -> i64 {
    assert!(s.enqueue(repository, digest, at).await.unwrap());
    let job = s.claim("w", at, 600).await.unwrap().unwrap();
    assert_eq!(
        (job.repository.as_str(), job.digest.as_str()),
        (repository, digest)
    );
    if ok {
        assert!(s.complete(job.id, "w", at).await.unwrap());
    } else {
        assert!(s.fail(job.id, "w", "bad layer", false, at).await.unwrap());
    }
    job.id
}

async fn job_ids(s: &dyn ScanStore, repository: &str, digest: &str) -> Option<i64> {
    s.latest_job(repository, digest)
        .await
        .unwrap()
        .map(|j| j.id)
}

/// Finished jobs older than the retention go, except the newest of a manifest that still
/// exists; results go with the last manifest of their digest.
async fn check_prune<S: ScanStore + MetadataStore + 'static>(s: Arc<S>) {
    let a = manifest("a", OCI_MANIFEST);
    let b = manifest("b", OCI_MANIFEST);
    let (da, db) = (a.digest.to_string(), b.digest.to_string());
    put(&*s, "p/app", &a).await;
    put(&*s, "p/app", &b).await;
    put(&*s, "p/other", &a).await;
    let scans: &dyn ScanStore = &*s;

    let a_old = finish_job(scans, "p/app", &da, 10, true).await;
    let a_new = finish_job(scans, "p/app", &da, 20, true).await;
    let b_failed = finish_job(scans, "p/app", &db, 30, false).await;
    // D1 is no manifest: its jobs go once old, however new they are relative to each other.
    let gone_old = finish_job(scans, "p/app", D1, 40, true).await;
    let gone_recent = finish_job(scans, "p/app", D2, 5_000, true).await;
    // Queued and running jobs are never pruned.
    assert!(s.enqueue("p/other", &da, 50).await.unwrap());
    let running = s.claim("w", 60, 600).await.unwrap().unwrap();
    assert!(s.enqueue("p/other", &da, 70).await.unwrap());

    // `limit` bounds each call.
    assert_eq!(s.prune_jobs(1_000, 1).await.unwrap(), 1);
    assert_eq!(s.prune_jobs(1_000, 100).await.unwrap(), 1);
    assert_eq!(s.prune_jobs(1_000, 100).await.unwrap(), 0);
    assert_eq!(
        job_ids(scans, "p/app", &da).await,
        Some(a_new),
        "the newest stays"
    );
    assert_eq!(
        job_ids(scans, "p/app", &db).await,
        Some(b_failed),
        "failed, newest"
    );
    assert_eq!(
        job_ids(scans, "p/app", D1).await,
        None,
        "{gone_old}: no manifest"
    );
    assert_eq!(
        job_ids(scans, "p/app", D2).await,
        Some(gone_recent),
        "within retention"
    );
    let other = s.latest_job("p/other", &da).await.unwrap().unwrap();
    assert_eq!(other.state, JobState::Queued);
    assert_ne!(other.id, running.id);
    assert!(
        s.renew(running.id, "w", 80).await.unwrap(),
        "the running job is there"
    );
    assert_ne!(a_old, a_new);

    // Results: one per digest, kept while any repository holds the digest.
    for d in [&da, &db, D1] {
        s.save_result(&StoredScan {
            digest: d.to_string(),
            ..stored(D1, 1, 100)
        })
        .await
        .unwrap();
    }
    assert_eq!(s.prune_results(100).await.unwrap(), 1);
    assert!(s.result(D1).await.unwrap().is_none());
    assert!(s.result(&db).await.unwrap().is_some());
    assert!(s.delete_manifest(&repo("p/app"), &b.digest).await.unwrap());
    assert!(s.delete_manifest(&repo("p/app"), &a.digest).await.unwrap());
    assert_eq!(s.prune_results(100).await.unwrap(), 1);
    assert!(s.result(&db).await.unwrap().is_none());
    assert!(s.result(&da).await.unwrap().is_some(), "still in p/other");
    // Deleted manifests lose their last jobs too.
    assert_eq!(s.prune_jobs(1_000, 100).await.unwrap(), 2);
    assert_eq!(job_ids(scans, "p/app", &da).await, None);
    assert_eq!(job_ids(scans, "p/app", &db).await, None);
}

/// The backfill's candidates: manifests without a result and without a queued or running job
/// in their repository; referrers are left out (the server keeps the images among the rest).
async fn check_unscanned<S: ScanStore + MetadataStore + 'static>(s: Arc<S>) {
    let m1 = manifest("m1", OCI_MANIFEST);
    let m2 = manifest("m2", OCI_MANIFEST);
    let m3 = manifest("m3", OCI_MANIFEST);
    let idx = manifest("idx", OCI_INDEX);
    let sbom = NewManifest {
        subject: Some(m1.digest.clone()),
        artifact_type: Some("application/vnd.cyclonedx+json".to_owned()),
        ..manifest("sbom", OCI_MANIFEST)
    };
    let artifact = NewManifest {
        artifact_type: Some("application/vnd.example".to_owned()),
        ..manifest("artifact", OCI_MANIFEST)
    };
    for m in [&m1, &m2, &idx, &sbom, &artifact] {
        put(&*s, "p/a", m).await;
    }
    put(&*s, "p/b", &m3).await;
    put(&*s, "p/c", &m1).await;
    let list = |after: Option<(String, String)>, limit: u32| {
        let s = s.clone();
        async move {
            s.unscanned_manifests(after.as_ref().map(|(r, d)| (r.as_str(), d.as_str())), limit)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.repository, m.digest))
                .collect::<Vec<_>>()
        }
    };
    let pair = |r: &str, m: &NewManifest| (r.to_owned(), m.digest.to_string());
    let mut p_a = vec![
        pair("p/a", &m1),
        pair("p/a", &m2),
        pair("p/a", &idx),
        pair("p/a", &artifact),
    ];
    p_a.sort();
    let mut all = p_a.clone();
    all.extend([pair("p/b", &m3), pair("p/c", &m1)]);
    assert_eq!(list(None, 100).await, all);
    let first = s.unscanned_manifests(None, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].repository.as_str(), &first[0].digest),
        (all[0].0.as_str(), &all[0].1)
    );
    let expected = [&m1, &m2, &idx, &artifact]
        .into_iter()
        .find(|m| m.digest.to_string() == all[0].1)
        .unwrap();
    assert_eq!(first[0].media_type, expected.media_type);
    assert_eq!(first[0].content, expected.content.to_vec());
    // Paging: strictly after the (repository, digest) given.
    assert_eq!(list(Some(all[0].clone()), 2).await, all[1..3]);
    assert_eq!(list(Some(all[5].clone()), 10).await, []);

    // A result (any repository) or a pending job (this repository) removes a candidate.
    s.save_result(&stored(&m2.digest.to_string(), 1, 1))
        .await
        .unwrap();
    assert!(s.enqueue("p/a", &m1.digest.to_string(), 5).await.unwrap());
    let left = list(None, 100).await;
    assert!(!left.contains(&pair("p/a", &m2)));
    assert!(!left.contains(&pair("p/a", &m1)));
    assert!(
        left.contains(&pair("p/c", &m1)),
        "a job elsewhere does not count"
    );
    let job = s.claim("w", 6, 600).await.unwrap().unwrap();
    assert!(
        !list(None, 100).await.contains(&pair("p/a", &m1)),
        "running"
    );
    assert!(s.fail(job.id, "w", "bad layer", false, 7).await.unwrap());
    assert!(
        list(None, 100).await.contains(&pair("p/a", &m1)),
        "failed, no result"
    );
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
    check_lease_renewal,
    check_prune,
    check_unscanned,
);
