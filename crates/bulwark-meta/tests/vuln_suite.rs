//! Contract suite for [`VulnStore`]: importing advisory batches (insert, idempotent
//! re-import, updates that replace ranges, distro feeds imported in parts, replace mode),
//! lookups for matching, the import log and counts; and every folder of the real feed test
//! data (`shared/testdata/vulndb`, see its README) imported through the store.
//!
//! Every check is an `async fn(Arc<dyn VulnStore>)` that starts from an empty store, so the
//! same checks run against both implementations, with [`MemoryStore`] (the reference model
//! of the import semantics) as the oracle where counts depend on import order. The SQLite
//! store is opened on a file in a temporary directory, one fresh database per check.
//!
//! The PostgreSQL store runs the same checks, each in a database of its own created on the
//! server named by `BULWARK_TEST_POSTGRES_URL` and dropped afterwards. Without that variable
//! the PostgreSQL tests say they are skipped and pass, unless `BULWARK_REQUIRE_POSTGRES=1`
//! makes them fail (scripts/test.sh starts a server and sets both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::with_postgres_database;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bulwark_core::MetadataStore;
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_scanner::vulndb::store::{ImportMode, MemoryStore, NewImportLog, VulnStore, range_key};
use bulwark_scanner::vulndb::{
    AffectedRange, Event, FeedSource, ImportBatch, Severity, import_bytes, import_path,
};

type Store = Arc<dyn VulnStore>;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/vulndb"
);

fn data(folder: &str) -> PathBuf {
    Path::new(DATA).join(folder)
}

/// Each folder is parsed once per test binary and shared by both backends' checks.
fn batch(folder: &'static str) -> &'static ImportBatch {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<&'static str, &'static ImportBatch>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache.lock().unwrap();
    if let Some(b) = guard.get(folder) {
        return b;
    }
    let b: &'static ImportBatch = Box::leak(Box::new(import_path(data(folder)).unwrap()));
    guard.insert(folder, b);
    b
}

fn sorted(mut ranges: Vec<AffectedRange>) -> Vec<AffectedRange> {
    ranges.sort_by(|a, b| range_key(a).cmp(&range_key(b)));
    ranges
}

const OSV_V1: &str = r#"{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-01-01T00:00:00Z",
    "published": "2023-12-01T00:00:00Z", "aliases": ["CVE-2023-1111"],
    "summary": "first", "details": "a\u0000b",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [
      {"package": {"ecosystem": "npm", "name": "left-pad"},
       "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]},
      {"package": {"ecosystem": "PyPI", "name": "left_pad"},
       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.4"}]}],
       "versions": ["1.0", "1.4"]}]}"#;

fn osv_v2() -> String {
    OSV_V1
        .replace("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
        .replace(r#"{"fixed": "1.2.0"}"#, r#"{"fixed": "1.3.0"}"#)
}

fn secdb(release: &str, pkg: &str, fixed: &str, cve: &str) -> String {
    format!(
        r#"{{"distroversion": "{release}", "reponame": "main", "packages": [
        {{"pkg": {{"name": "{pkg}", "secfixes": {{"{fixed}": ["{cve}"], "0": ["CVE-2020-0001"]}}}}}}]}}"#
    )
}

// ---- checks --------------------------------------------------------------------------------

async fn check_import_and_update(s: Store) {
    let b1 = import_bytes("a.json", OSV_V1.as_bytes());
    assert!(b1.skipped.is_empty(), "{:?}", b1.skipped);
    let r = s.import(&b1, ImportMode::Merge, 100).await.unwrap();
    assert_eq!(r.sources.len(), 1);
    let src = &r.sources[0];
    assert_eq!(src.source, FeedSource::Osv);
    assert_eq!((src.advisories, src.ranges, src.inserted), (1, 2, 1));

    // Stored exactly as parsed (NUL removed from the free text).
    let (a, ranges) = s
        .advisory(FeedSource::Osv, "GHSA-aaaa-bbbb-cccc")
        .await
        .unwrap()
        .unwrap();
    let mut want = b1.advisories[0].clone();
    want.details = Some("ab".into());
    assert_eq!(a, want);
    assert_eq!(a.severity, Some(Severity::Critical));
    assert_eq!(ranges, sorted(b1.ranges.clone()));
    assert!(
        s.advisory(FeedSource::AlpineSecdb, "GHSA-aaaa-bbbb-cccc")
            .await
            .unwrap()
            .is_none()
    );

    // Idempotent.
    let r = s.import(&b1, ImportMode::Merge, 200).await.unwrap();
    assert_eq!((r.sources[0].unchanged, r.changed()), (1, 0));

    // A changed record: updated, its ranges replaced in the same transaction.
    let b2 = import_bytes("a.json", osv_v2().as_bytes());
    let r = s.import(&b2, ImportMode::Merge, 300).await.unwrap();
    assert_eq!((r.sources[0].updated, r.sources[0].inserted), (1, 0));
    let (a, ranges) = s
        .advisory(FeedSource::Osv, "GHSA-aaaa-bbbb-cccc")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.modified, b2.advisories[0].modified);
    assert_eq!(ranges.len(), 2);
    assert_eq!(ranges, sorted(b2.ranges.clone()));
    let npm = s.lookup("npm", &["left-pad".into()]).await.unwrap();
    assert_eq!(npm.len(), 1);
    assert_eq!(npm[0].ranges.len(), 1, "only the looked-up ecosystem");
    assert_eq!(npm[0].ranges[0].fixed_version.as_deref(), Some("1.3.0"));
    assert_eq!(
        npm[0].ranges[0].events,
        [Event::Introduced("0".into()), Event::Fixed("1.3.0".into())]
    );
    let py = s
        .lookup("PyPI", &["left-pad".into(), "left_pad".into()])
        .await
        .unwrap();
    assert_eq!(py.len(), 1);
    assert_eq!(py[0].ranges[0].versions, ["1.0", "1.4"]);
    assert!(
        s.lookup("npm", &["right-pad".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.lookup("Go", &["left-pad".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.lookup("npm", &[]).await.unwrap().is_empty());

    // A withdrawn version drops the ranges.
    let withdrawn = osv_v2()
        .replace("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")
        .replace(
            r#""summary""#,
            r#""withdrawn": "2024-03-01T00:00:00Z", "summary""#,
        );
    let b3 = import_bytes("a.json", withdrawn.as_bytes());
    assert!(b3.ranges.is_empty());
    s.import(&b3, ImportMode::Merge, 400).await.unwrap();
    assert!(
        s.lookup("npm", &["left-pad".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let counts = s.counts().await.unwrap();
    assert_eq!((counts.advisories(), counts.ranges()), (1, 0));
}

async fn check_distro_parts(s: Store) {
    let v318 = import_bytes(
        "a.json",
        secdb("v3.18", "curl", "8.4.0-r0", "CVE-2023-38545").as_bytes(),
    );
    let v319 = import_bytes(
        "b.json",
        secdb("v3.19", "curl", "8.4.0-r1", "CVE-2023-38545").as_bytes(),
    );
    assert!(v318.skipped.is_empty(), "{:?}", v318.skipped);
    s.import(&v318, ImportMode::Merge, 1).await.unwrap();
    let r = s.import(&v319, ImportMode::Merge, 2).await.unwrap();
    assert_eq!(r.sources[0].updated, 2, "both CVEs gain a release");
    let (_, ranges) = s
        .advisory(FeedSource::AlpineSecdb, "CVE-2023-38545")
        .await
        .unwrap()
        .unwrap();
    let fixes: Vec<_> = ranges
        .iter()
        .map(|r| (r.ecosystem.as_str(), r.fixed_version.as_deref()))
        .collect();
    assert_eq!(
        fixes,
        [
            ("Alpine:v3.18", Some("8.4.0-r0")),
            ("Alpine:v3.19", Some("8.4.0-r1"))
        ]
    );
    // Re-importing either part changes nothing.
    for b in [&v318, &v319] {
        assert_eq!(
            s.import(b, ImportMode::Merge, 3).await.unwrap().changed(),
            0
        );
    }
    // The not-affected marker is stored as such.
    let na = s.lookup("Alpine:v3.18", &["curl".into()]).await.unwrap();
    let marker = na
        .iter()
        .find(|c| c.advisory.id == "CVE-2020-0001")
        .unwrap();
    assert!(marker.ranges[0].not_affected && marker.ranges[0].events.is_empty());

    // A changed fix replaces its own (release, package) part only.
    let fixed = import_bytes(
        "a.json",
        secdb("v3.18", "curl", "8.4.0-r2", "CVE-2023-38545").as_bytes(),
    );
    let r = s.import(&fixed, ImportMode::Merge, 4).await.unwrap();
    assert_eq!((r.sources[0].updated, r.sources[0].unchanged), (1, 1));
    let hits = s.lookup("Alpine:v3.18", &["curl".into()]).await.unwrap();
    let cve = hits
        .iter()
        .find(|c| c.advisory.id == "CVE-2023-38545")
        .unwrap();
    assert_eq!(cve.ranges.len(), 1);
    assert_eq!(cve.ranges[0].fixed_version.as_deref(), Some("8.4.0-r2"));
    assert_eq!(
        s.lookup("Alpine:v3.19", &["curl".into()])
            .await
            .unwrap()
            .len(),
        2
    );

    // Replace: the batch is the whole feed; what it lacks goes.
    let other = import_bytes("c.json", OSV_V1.as_bytes());
    s.import(&other, ImportMode::Merge, 5).await.unwrap();
    let only = import_bytes(
        "a.json",
        secdb("v3.18", "curl", "8.4.0-r2", "CVE-2023-38545").as_bytes(),
    );
    let trimmed: ImportBatch = ImportBatch {
        advisories: only
            .advisories
            .iter()
            .filter(|a| a.id == "CVE-2023-38545")
            .cloned()
            .collect(),
        ranges: only
            .ranges
            .iter()
            .filter(|r| r.advisory_id == "CVE-2023-38545")
            .cloned()
            .collect(),
        ..only.clone()
    };
    let r = s.import(&trimmed, ImportMode::Replace, 6).await.unwrap();
    assert_eq!((r.sources[0].removed, r.sources[0].updated), (1, 1));
    assert!(
        s.advisory(FeedSource::AlpineSecdb, "CVE-2020-0001")
            .await
            .unwrap()
            .is_none()
    );
    let (_, ranges) = s
        .advisory(FeedSource::AlpineSecdb, "CVE-2023-38545")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ranges.len(), 1, "the v3.19 part is gone too");
    // Other sources are untouched.
    assert!(
        s.advisory(FeedSource::Osv, "GHSA-aaaa-bbbb-cccc")
            .await
            .unwrap()
            .is_some()
    );
    let counts = s.counts().await.unwrap();
    let by: Vec<_> = counts
        .sources
        .iter()
        .map(|c| (c.source, c.advisories, c.ranges))
        .collect();
    assert_eq!(
        by,
        [(FeedSource::Osv, 1, 2), (FeedSource::AlpineSecdb, 1, 1)]
    );
}

async fn check_import_log(s: Store) {
    assert!(s.import_log(10).await.unwrap().is_empty());
    assert!(s.counts().await.unwrap().is_empty());
    let mut ids = Vec::new();
    for i in 0..3u64 {
        let e = NewImportLog {
            source: if i == 2 {
                "osv,alpine-secdb".into()
            } else {
                "osv".into()
            },
            path: format!("/feeds/{i}"),
            files: 10 + i,
            records: 20 + i,
            advisories: 30 + i,
            ranges: 40 + i,
            inserted: 5,
            updated: i,
            skipped: 2,
            started_at: 1_000 + i as i64,
            finished_at: 2_000 + i as i64,
        };
        ids.push((s.log_import(&e).await.unwrap(), e));
    }
    let log = s.import_log(2).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].id, ids[2].0);
    assert_eq!(log[0].entry, ids[2].1);
    assert_eq!(log[1].entry, ids[1].1);
    assert!(ids[0].0 < ids[1].0 && ids[1].0 < ids[2].0);
    assert_eq!(s.import_log(100).await.unwrap().len(), 3);
}

/// Imports of the same data at the same time (two CLI runs, two replicas) serialise: one
/// inserts, the other finds everything unchanged, and no range is stored twice.
async fn check_concurrent_imports(s: Store) {
    let b = batch("rustsec");
    let (x, y) = tokio::join!(
        tokio::spawn({
            let s = s.clone();
            async move { s.import(b, ImportMode::Merge, 1).await.unwrap() }
        }),
        tokio::spawn({
            let s = s.clone();
            async move { s.import(b, ImportMode::Merge, 2).await.unwrap() }
        }),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let inserted = x.sources[0].inserted + y.sources[0].inserted;
    let unchanged = x.sources[0].unchanged + y.sources[0].unchanged;
    assert_eq!((inserted, unchanged), (1206, 1206), "{x:?} {y:?}");
    let counts = s.counts().await.unwrap();
    assert_eq!((counts.advisories(), counts.ranges()), (1206, 1193));
}

/// (folder, source, advisories, ranges) of every folder, in import order.
const FOLDERS: &[(&str, FeedSource, u64, u64)] = &[
    ("go", FeedSource::Osv, 4291, 6086),
    ("rustsec", FeedSource::Osv, 1206, 1193),
    ("pypi", FeedSource::Osv, 2661, 2651),
    ("ghsa", FeedSource::Osv, 52, 117),
    ("ghsa-osvdev-bundle", FeedSource::Osv, 356, 901),
    ("debian-osv", FeedSource::Osv, 1319, 8700),
    ("debian-tracker", FeedSource::DebianTracker, 10, 40),
    ("alpine-secdb", FeedSource::AlpineSecdb, 2474, 12_005),
    ("alpine-secdb-json", FeedSource::AlpineSecdb, 6814, 39_275),
    ("redhat", FeedSource::RedHatCsaf, 11, 0),
];

async fn check_real_feeds(s: Store) {
    let reference = MemoryStore::new();
    let started = std::time::Instant::now();
    for &(folder, source, advisories, ranges) in FOLDERS {
        let b = batch(folder);
        assert!(b.skipped.is_empty(), "{folder}: {:?}", b.skipped);
        assert_eq!(b.advisories.len() as u64, advisories, "{folder}");
        if source != FeedSource::RedHatCsaf {
            assert_eq!(b.ranges.len() as u64, ranges, "{folder}");
        }
        let got = s.import(b, ImportMode::Merge, 1_000).await.unwrap();
        let want = reference.import(b, ImportMode::Merge, 1_000).await.unwrap();
        assert_eq!(got, want, "{folder}");
        assert_eq!(got.sources.len(), 1, "{folder}");
        assert_eq!(got.sources[0].source, source);
        assert_eq!(got.sources[0].advisories, advisories, "{folder}");
        // Importing the same folder again writes nothing.
        let again = s.import(b, ImportMode::Merge, 2_000).await.unwrap();
        assert_eq!(again.changed(), 0, "{folder}: {again:?}");
        // Of the 16 advisories the GHSA bundle shares with ghsa/, GHSA-crjg-w57m-rqqf is the
        // one whose ghsa/ copy is the newer (modified 2024-08-01 against 2024-07-22).
        let kept = u64::from(folder == "ghsa-osvdev-bundle");
        assert_eq!(got.sources[0].kept_newer, kept, "{folder}");
        assert_eq!(again.sources[0].kept_newer, kept, "{folder}");
        assert_eq!(again.sources[0].unchanged, advisories - kept, "{folder}");
    }
    eprintln!("imported the test set twice in {:?}", started.elapsed());
    // ghsa/ again, after the bundle: 15 of its advisories are older copies of the bundle's,
    // which stay; GHSA-crjg-w57m-rqqf kept its ghsa/ copy all along, so nothing changes.
    let again = s
        .import(batch("ghsa"), ImportMode::Merge, 3_000)
        .await
        .unwrap();
    let o = &again.sources[0];
    assert_eq!(
        (o.kept_newer, o.unchanged, again.changed()),
        (15, 37, 0),
        "{again:?}"
    );
    let (crjg, _) = s
        .advisory(FeedSource::Osv, "GHSA-crjg-w57m-rqqf")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        crjg.modified.map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-08-01T05:06:44Z")
    );
    // The first folder of each kind went into an empty store.
    assert_eq!(s.counts().await.unwrap(), reference.counts().await.unwrap());
    let counts = s.counts().await.unwrap();
    let by: BTreeMap<FeedSource, (u64, u64)> = counts
        .sources
        .iter()
        .map(|c| (c.source, (c.advisories, c.ranges)))
        .collect();
    // OSV: the GHSA bundle repeats 16 advisories of ghsa/.
    assert_eq!(
        by[&FeedSource::Osv].0,
        4291 + 1206 + 2661 + 52 + 356 - 16 + 1319
    );
    assert_eq!(by[&FeedSource::DebianTracker], (10, 40));
    assert_eq!(by[&FeedSource::RedHatCsaf].0, 11);
    assert!(by[&FeedSource::AlpineSecdb].0 >= 6814);

    // Stored rows equal the parsed ones (a sample of each folder; the newest copy of an id
    // wins for OSV, and distro advisories are merged, so compare with the reference).
    for &(folder, _, _, _) in FOLDERS {
        for a in batch(folder).advisories.iter().step_by(37) {
            let got = s.advisory(a.source, &a.id).await.unwrap();
            let want = reference.advisory(a.source, &a.id).await.unwrap();
            assert_eq!(got, want, "{folder} {}", a.id);
        }
    }

    // Specific records.
    let (go, ranges) = s
        .advisory(FeedSource::Osv, "GO-2024-2687")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(go.aliases, ["CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"]);
    assert!(ranges.iter().any(|r| r.package == "stdlib"
        && r.events
            == [
                Event::Introduced("0".into()),
                Event::Fixed("1.21.9".into()),
                Event::Introduced("1.22.0-0".into()),
                Event::Fixed("1.22.2".into()),
            ]));
    let (rh, _) = s
        .advisory(FeedSource::RedHatCsaf, "RHSA-2024:6163")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rh.aliases, ["CVE-2024-8088"]);
    assert_eq!(rh.severity, Some(Severity::Medium));

    // Lookups as the matcher makes them.
    let shadow = s.lookup("Debian:12", &["shadow".into()]).await.unwrap();
    let open = shadow
        .iter()
        .find(|c| c.advisory.id == "CVE-2023-4641" && c.advisory.source == FeedSource::Osv)
        .unwrap();
    assert!(
        open.ranges
            .iter()
            .all(|r| r.ecosystem == "Debian:12" && r.package == "shadow")
    );
    assert!(open.ranges[0].unfixed && open.ranges[0].fixed_version.is_none());
    let apparmor = s.lookup("Debian:12", &["apparmor".into()]).await.unwrap();
    let tracker: BTreeMap<&str, &AffectedRange> = apparmor
        .iter()
        .filter(|c| c.advisory.source == FeedSource::DebianTracker)
        .map(|c| (c.advisory.id.as_str(), &c.ranges[0]))
        .collect();
    assert!(tracker["CVE-2014-1424"].not_affected);
    assert!(tracker["CVE-2016-1585"].unfixed);
    assert_eq!(
        tracker["CVE-2017-6507"].fixed_version.as_deref(),
        Some("2.11.0-3")
    );
    let sope = s.lookup("Debian:12", &["sope".into()]).await.unwrap();
    assert_eq!(
        sope[0].ranges[0].fixed_version.as_deref(),
        Some("5.8.0-1+deb12u1")
    );
    let curl = s.lookup("Alpine:v3.18", &["curl".into()]).await.unwrap();
    let c = curl
        .iter()
        .find(|c| c.advisory.id == "CVE-2023-38545")
        .unwrap();
    assert_eq!(c.ranges[0].fixed_version.as_deref(), Some("8.4.0-r0"));
    let busybox = s.lookup("Alpine:v3.20", &["busybox".into()]).await.unwrap();
    let na = busybox
        .iter()
        .find(|c| c.advisory.id == "CVE-2021-42373")
        .unwrap();
    assert!(na.ranges.iter().all(|r| r.not_affected));
    let py = s
        .lookup("PyPI", &["jinja2".into(), "django".into()])
        .await
        .unwrap();
    assert!(py.len() > 50, "{}", py.len());
    assert!(
        py.iter()
            .all(|c| c.ranges.iter().all(|r| r.ecosystem == "PyPI"))
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

macro_rules! sqlite_suite {
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
    };
}

async fn open_postgres(url: &str) -> PostgresStore {
    let store = PostgresStore::open(url).await.unwrap();
    store.ready().await.unwrap();
    store
}

macro_rules! postgres_suite {
    ($($check:ident),* $(,)?) => {
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

/// Every check of the contract suite, run by each backend's `*_suite!`.
macro_rules! all_checks {
    ($suite:ident) => {
        $suite!(
            check_import_and_update,
            check_distro_parts,
            check_import_log,
            check_concurrent_imports,
            check_real_feeds,
        );
    };
}

all_checks!(sqlite_suite);
all_checks!(postgres_suite);

/// The in-memory reference passes the same semantic checks.
mod memory {
    #[tokio::test]
    async fn check_import_and_update() {
        super::check_import_and_update(std::sync::Arc::new(super::MemoryStore::new())).await;
    }

    #[tokio::test]
    async fn check_distro_parts() {
        super::check_distro_parts(std::sync::Arc::new(super::MemoryStore::new())).await;
    }
}

/// Two stores on one SQLite file: an import through one is seen by the other (as the CLI
/// importing beside a running server).
#[tokio::test]
async fn sqlite_import_is_seen_by_another_process_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let batch = import_bytes("a.json", OSV_V1.as_bytes());
    a.import(&batch, ImportMode::Merge, 1).await.unwrap();
    assert_eq!(b.counts().await.unwrap().advisories(), 1);
    assert_eq!(
        b.lookup("npm", &["left-pad".into()]).await.unwrap().len(),
        1
    );
}
