//! Vulnerability-database import benchmark (it measures, it asserts nothing about time).
//!
//! `cargo bench -p bulwark-meta --bench vulndb_import` imports every feed folder of
//! shared/testdata/vulndb (`BULWARK_BENCH_VULNDB` to point elsewhere), one import per folder in
//! merge mode as `bulwark vulndb import FOLDER...` does (parse with `vulndb::import_path`, then
//! `VulnStore::import` and one import-log row), into a fresh [`SqliteStore`] in a temporary
//! directory. It prints one JSON line per figure (`{"bench": …}`) and a table:
//!
//! - `sqlite-parse`, `sqlite-write`, `sqlite-total`: the first import into the empty store;
//! - `sqlite-reimport-*`: the same folders imported again into the same store (parsed again,
//!   as a second `bulwark vulndb import` run would), with whether the stored advisory and
//!   range counts stayed the same and how many advisories the store reported as changed.
//!
//! With `BULWARK_TEST_POSTGRES_URL` set (a user allowed to create databases), the same is
//! measured on a [`PostgresStore`] in a database of its own, dropped afterwards (`pg-*`).
//! Without it PostgreSQL is skipped.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_scanner::vulndb::import_path;
use bulwark_scanner::vulndb::store::{ImportMode, NewImportLog, VulnStore};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

type BenchResult<T> = Result<T, Box<dyn Error>>;

const VULNDB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/vulndb"
);

/// Every feed folder of shared/testdata/vulndb (its README.md lists them).
const FEED_DIRS: [&str; 10] = [
    "go",
    "rustsec",
    "pypi",
    "alpine-secdb",
    "alpine-secdb-json",
    "debian-tracker",
    "debian-osv",
    "ghsa",
    "ghsa-osvdev-bundle",
    "redhat",
];

/// 2026-11-23T00:00:00Z for the first import; the re-import is stamped a day later.
const FIRST_AT: i64 = 1_795_392_000;
const AGAIN_AT: i64 = FIRST_AT + 86_400;

/// Figures, printed as JSON lines as they come and as a table at the end.
#[derive(Default)]
struct Report {
    lines: Vec<(String, String, String)>,
}

impl Report {
    fn add(&mut self, bench: &str, shown: String, note: String, fields: Value) {
        let mut obj = serde_json::Map::new();
        obj.insert("bench".to_owned(), Value::from(bench));
        if let Value::Object(extra) = fields {
            obj.extend(extra);
        }
        println!("{}", Value::Object(obj));
        self.lines.push((bench.to_owned(), shown, note));
    }

    fn print_table(&self) {
        println!();
        println!("{:<24} {:>12}  NOTE", "BENCH", "VALUE");
        for (bench, shown, note) in &self.lines {
            println!("{bench:<24} {shown:>12}  {note}");
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one pass over all feed folders took and did.
#[derive(Default)]
struct Pass {
    parse: Duration,
    write: Duration,
    feeds: usize,
    files: usize,
    skipped: usize,
    /// Advisories and ranges in the parsed batches.
    batch_advisories: usize,
    batch_ranges: usize,
    inserted: u64,
    updated: u64,
    unchanged: u64,
    kept_newer: u64,
}

/// Imports every feed folder under `root` into `store`, one merge import (and one import-log
/// row) per folder.
fn import_feeds(rt: &Runtime, root: &Path, store: &dyn VulnStore, now: i64) -> BenchResult<Pass> {
    let mut pass = Pass::default();
    for dir in FEED_DIRS {
        let path = root.join(dir);
        if !path.is_dir() {
            continue;
        }
        let started = Instant::now();
        let batch = import_path(&path)?;
        pass.parse += started.elapsed();

        let started = Instant::now();
        let summary = rt.block_on(store.import(&batch, ImportMode::Merge, now))?;
        let entry = NewImportLog::of(&path.display().to_string(), &batch, &summary, now, now);
        rt.block_on(store.log_import(&entry))?;
        pass.write += started.elapsed();

        pass.feeds += 1;
        pass.files += batch.files_read;
        pass.skipped += batch.skipped.len();
        pass.batch_advisories += batch.advisories.len();
        pass.batch_ranges += batch.ranges.len();
        for s in &summary.sources {
            pass.inserted += s.inserted;
            pass.updated += s.updated;
            pass.unchanged += s.unchanged;
            pass.kept_newer += s.kept_newer;
        }
    }
    Ok(pass)
}

/// The first import and the re-import into `store`, reported as `<prefix>-…` figures.
fn measure(
    rt: &Runtime,
    root: &Path,
    store: &dyn VulnStore,
    prefix: &str,
    report: &mut Report,
) -> BenchResult<()> {
    let first = import_feeds(rt, root, store, FIRST_AT)?;
    let counts = rt.block_on(store.counts())?;
    let (advisories, ranges) = (counts.advisories(), counts.ranges());
    report.add(
        &format!("{prefix}-parse"),
        format!("{:.0} ms", millis(first.parse)),
        format!(
            "{} files, {} feeds, {} skipped; {} advisories, {} ranges parsed",
            first.files, first.feeds, first.skipped, first.batch_advisories, first.batch_ranges
        ),
        json!({
            "ms": millis(first.parse),
            "files": first.files,
            "feeds": first.feeds,
            "skipped": first.skipped,
            "parsed_advisories": first.batch_advisories,
            "parsed_ranges": first.batch_ranges,
        }),
    );
    report.add(
        &format!("{prefix}-write"),
        format!("{:.0} ms", millis(first.write)),
        format!(
            "{advisories} advisories, {ranges} ranges stored ({} new)",
            first.inserted
        ),
        json!({
            "ms": millis(first.write),
            "advisories": advisories,
            "ranges": ranges,
            "inserted": first.inserted,
            "updated": first.updated,
        }),
    );
    let total = first.parse + first.write;
    report.add(
        &format!("{prefix}-total"),
        format!("{:.0} ms", millis(total)),
        "parse + write, empty store, one run".to_owned(),
        json!({ "ms": millis(total), "runs": 1 }),
    );

    let again = import_feeds(rt, root, store, AGAIN_AT)?;
    let after = rt.block_on(store.counts())?;
    let same = after.advisories() == advisories && after.ranges() == ranges;
    let changed = again.inserted + again.updated;
    report.add(
        &format!("{prefix}-reimport-parse"),
        format!("{:.0} ms", millis(again.parse)),
        "same folders parsed again".to_owned(),
        json!({ "ms": millis(again.parse) }),
    );
    report.add(
        &format!("{prefix}-reimport-write"),
        format!("{:.0} ms", millis(again.write)),
        format!(
            "{} unchanged, {} older than stored, {changed} changed; counts {}",
            again.unchanged,
            again.kept_newer,
            if same { "unchanged" } else { "CHANGED" }
        ),
        json!({
            "ms": millis(again.write),
            "unchanged": again.unchanged,
            "kept_newer": again.kept_newer,
            "inserted": again.inserted,
            "updated": again.updated,
            "advisories": after.advisories(),
            "ranges": after.ranges(),
            "same_counts": same,
        }),
    );
    let total = again.parse + again.write;
    report.add(
        &format!("{prefix}-reimport-total"),
        format!("{:.0} ms", millis(total)),
        format!(
            "{} advisories, {} ranges after",
            after.advisories(),
            after.ranges()
        ),
        json!({ "ms": millis(total), "same_counts": same }),
    );
    Ok(())
}

/// Bytes of the SQLite database file and its WAL and shared-memory files.
fn db_bytes(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(PathBuf::from(name)).ok()
        })
        .map(|m| m.len())
        .sum()
}

fn sqlite(rt: &Runtime, root: &Path, report: &mut Report) -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bulwark.db");
    let store = rt.block_on(SqliteStore::open(&db))?;
    measure(rt, root, &store, "sqlite", report)?;
    let bytes = db_bytes(&db);
    report.add(
        "sqlite-db-size",
        format!("{:.1} MB", bytes as f64 / 1e6),
        "database + WAL files after both imports".to_owned(),
        json!({ "bytes": bytes }),
    );
    Ok(())
}

/// `url` naming `database` instead of the database it names (query string kept).
fn url_for_database(url: &str, database: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, ""), |(h, q)| (h, q));
    let host_start = head.find("://").map_or(0, |i| i + 3);
    let head = head[host_start..]
        .find('/')
        .map_or(head, |slash| &head[..host_start + slash]);
    if query.is_empty() {
        format!("{head}/{database}")
    } else {
        format!("{head}/{database}?{query}")
    }
}

/// On a database of its own on `admin_url`'s server, dropped afterwards.
fn postgres(rt: &Runtime, root: &Path, admin_url: &str, report: &mut Report) -> BenchResult<()> {
    use sqlx::{Connection, Executor};

    let name = format!("bulwark_bench_vulndb_{}", std::process::id());
    let mut admin = rt.block_on(sqlx::PgConnection::connect(admin_url))?;
    rt.block_on(admin.execute(format!("CREATE DATABASE {name}").as_str()))?;
    let outcome = (|| -> BenchResult<()> {
        let store = rt.block_on(PostgresStore::open(&url_for_database(admin_url, &name)))?;
        let measured = measure(rt, root, &store, "pg", report);
        rt.block_on(store.close());
        measured
    })();
    let dropped =
        rt.block_on(admin.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()));
    rt.block_on(admin.close()).ok();
    outcome?;
    dropped?;
    Ok(())
}

fn main() -> BenchResult<()> {
    let root = std::env::var_os("BULWARK_BENCH_VULNDB")
        .map_or_else(|| PathBuf::from(VULNDB), PathBuf::from);
    let rt = Runtime::new()?;
    println!(
        "bulwark-meta vulndb import bench: {} CPU(s), vulndb {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        root.display()
    );
    let mut report = Report::default();
    sqlite(&rt, &root, &mut report)?;
    match std::env::var("BULWARK_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => postgres(&rt, &root, &url, &mut report)?,
        _ => {}
    }
    report.print_table();
    Ok(())
}
