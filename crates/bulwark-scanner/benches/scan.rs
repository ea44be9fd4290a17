//! Scanner benchmark (a benchmark, not a test: it asserts nothing about time).
//!
//! `cargo bench -p bulwark-scanner --bench scan` prints a table and one JSON line per figure
//! (`{"bench": …}`) for:
//!
//! 1. `fixture-*`: inventory (`scan_oci_layout`) and matching (`match_image`) of the Debian 12
//!    fixture image (`BULWARK_DEBIAN12_OCI`, else `$BULWARK_FIXTURE_CACHE` or
//!    `~/.cache/bulwark/debian12-oci`; build it with `scripts/debian-fixture.sh`) against the
//!    whole vulnerability database in a [`MemoryStore`]; median of `BENCH_RUNS` runs (default
//!    7). Target: inventory + match < 2 s.
//! 2. `import-*`: parsing (`vulndb::import_path`) and storing (`MemoryStore::import`) every
//!    feed of shared/testdata/vulndb (`BULWARK_BENCH_VULNDB` to point elsewhere); median of 3
//!    runs into a fresh store. SQLite is not measured here: the SQLite store lives in
//!    bulwark-meta, which depends on this crate, so its import benchmark belongs with it (or
//!    in bulwark-bench), not in a dev-dependency cycle.
//! 3. `rescan-*`: after a database update (a merge re-import of the Debian and Alpine feeds),
//!    `match_packages` over 1,000 inventories held in memory as stored inventories are: 500
//!    variations of the fixture's dpkg list (packages dropped, packages pinned to versions
//!    the records name) and 500 small synthetic Alpine images with language packages.
//!    Target: < 10 s. Per-inventory figures are compared with the first inventory (the
//!    fixture's own list), measured in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bulwark_oci::Digest;
use bulwark_scanner::distro::{self, Distro};
use bulwark_scanner::image::{self, ImagePackage, ScanOptions};
use bulwark_scanner::inventory::{Package, PackageKind};
use bulwark_scanner::report::{match_image, match_packages};
use bulwark_scanner::vulndb::store::{
    Candidate, ImportLogEntry, ImportMode, ImportSummary, MemoryStore, NewImportLog, StoreResult,
    VulnCounts, VulnStore,
};
use bulwark_scanner::vulndb::{self, Advisory, AffectedRange, FeedSource, ImportBatch};
use futures::executor::block_on;
use serde_json::json;

const VULNDB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/vulndb"
);

/// The feeds of shared/testdata/vulndb, one import each.
const FEEDS: &[&str] = &[
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

/// 2026-11-23T00:00:00Z: grades do not depend on the day of the run.
const NOW: i64 = 1_795_392_000;

const INVENTORIES: usize = 1_000;

struct Row {
    name: String,
    value: String,
    note: String,
}

#[derive(Default)]
struct Out {
    rows: Vec<Row>,
}

impl Out {
    /// One figure: a table row and a JSON line.
    fn figure(&mut self, name: &str, value: String, note: String, extra: serde_json::Value) {
        let mut line = json!({ "bench": name });
        if let (Some(obj), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
            obj.extend(extra.clone());
        }
        println!("{line}");
        self.rows.push(Row {
            name: name.to_owned(),
            value,
            note,
        });
    }

    fn table(&self) {
        println!();
        println!("{:<28} {:>14}  NOTE", "BENCH", "VALUE");
        for r in &self.rows {
            println!("{:<28} {:>14}  {}", r.name, r.value, r.note);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(7)
}

fn fixture_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BULWARK_DEBIAN12_OCI").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("BULWARK_FIXTURE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/bulwark")))?;
    let p = cache.join("debian12-oci");
    p.join("index.json").is_file().then_some(p)
}

/// Imports every feed into `store`; returns (parse time, store time, batches).
fn import_all(
    root: &Path,
    store: &MemoryStore,
) -> (Duration, Duration, Vec<(String, ImportBatch)>) {
    let mut parse = Duration::ZERO;
    let mut write = Duration::ZERO;
    let mut batches = Vec::new();
    for feed in FEEDS {
        let dir = root.join(feed);
        if !dir.exists() {
            continue;
        }
        let t = Instant::now();
        let batch = vulndb::import_path(&dir).unwrap();
        parse += t.elapsed();
        let t = Instant::now();
        block_on(store.import(&batch, ImportMode::Merge, NOW)).unwrap();
        write += t.elapsed();
        batches.push(((*feed).to_owned(), batch));
    }
    (parse, write, batches)
}

fn digest() -> Digest {
    Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap()
}

fn package(kind: PackageKind, name: &str, version: &str, path: &str) -> ImagePackage {
    let source = matches!(kind, PackageKind::Apk).then(|| name.to_owned());
    ImagePackage {
        package: Package {
            name: name.to_owned(),
            version: version.to_owned(),
            source_name: source,
            source_version: None,
            ecosystem: kind.ecosystem(),
            kind,
            path: path.to_owned(),
            purl: String::new(),
            licenses: Vec::new(),
        },
        layer: 0,
        layer_digest: digest(),
        file_layer: 0,
    }
}

/// A stored inventory: what a rescan needs without the image.
struct Inventory {
    packages: Vec<ImagePackage>,
    distro: Option<Distro>,
    diff_ids: Vec<String>,
}

/// Per ecosystem: the packages the records name, each with the versions they name (fixed
/// versions), sorted.
fn named_versions(
    batches: &[(String, ImportBatch)],
) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let mut by: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (_, b) in batches {
        for r in &b.ranges {
            let versions = by
                .entry(r.ecosystem.clone())
                .or_default()
                .entry(r.package.clone())
                .or_default();
            if let Some(f) = &r.fixed_version {
                versions.insert(f.clone());
            }
        }
    }
    by.into_iter()
        .map(|(eco, pkgs)| {
            (
                eco,
                pkgs.into_iter()
                    .map(|(p, v)| (p, v.into_iter().collect()))
                    .collect(),
            )
        })
        .collect()
}

/// 500 variations of the fixture's list (the first one unchanged), then 500 small synthetic
/// Alpine images with Python, npm, Go, Rust and Java packages.
fn inventories(
    base: &[ImagePackage],
    debian: Option<&Distro>,
    diff_ids: &[String],
    named: &BTreeMap<String, Vec<(String, Vec<String>)>>,
) -> Vec<Inventory> {
    let mut out = Vec::with_capacity(INVENTORIES);
    let debian_fixes: BTreeMap<&str, &Vec<String>> = named
        .get("Debian:12")
        .map(|l| l.iter().map(|(p, v)| (p.as_str(), v)).collect())
        .unwrap_or_default();
    let half = if base.is_empty() { 0 } else { INVENTORIES / 2 };
    for i in 0..half {
        let mut packages = Vec::with_capacity(base.len());
        for (j, p) in base.iter().enumerate() {
            // Some packages not installed in this image.
            if i > 0 && (i + j) % 11 == 0 {
                continue;
            }
            let mut p = p.clone();
            // Some pinned to a version the records name (older images, other point releases).
            if i > 0 && (i * 31 + j * 17) % 5 == 0 {
                let source = p.package.source_name.as_deref().unwrap_or(&p.package.name);
                if let Some(versions) = debian_fixes.get(source).filter(|v| !v.is_empty()) {
                    let v = versions[(i + j) % versions.len()].clone();
                    p.package.version.clone_from(&v);
                    p.package.source_version = Some(v);
                }
            }
            packages.push(p);
        }
        out.push(Inventory {
            packages,
            distro: debian.cloned(),
            diff_ids: diff_ids.to_vec(),
        });
    }
    let langs: [(&str, PackageKind, &str, &str); 5] = [
        (
            "PyPI",
            PackageKind::Python,
            "0.0.1",
            "usr/lib/python3/site-packages",
        ),
        ("npm", PackageKind::Npm, "0.0.1", "app/package-lock.json"),
        ("Go", PackageKind::Go, "0.0.1", "app/server"),
        ("crates.io", PackageKind::Cargo, "0.0.1", "app/Cargo.lock"),
        ("Maven", PackageKind::Maven, "0.0.1", "app/app.jar"),
    ];
    let empty = Vec::new();
    let mut k = 0;
    while out.len() < INVENTORIES {
        let branch = ["v3.18", "v3.19", "v3.20", "v3.21"][k % 4];
        let alpine = distro::from_os_release(
            format!("ID=alpine\nVERSION_ID={}.{}\n", &branch[1..], k % 7).as_bytes(),
        );
        let mut packages = Vec::new();
        let apk = named.get(&format!("Alpine:{branch}")).unwrap_or(&empty);
        // 20-40 OS packages: half at a fixed version the feed names (not affected), half
        // older than any (affected by every fix entry).
        let n = 20 + k % 21;
        for m in 0..n.min(apk.len()) {
            let (name, versions) = &apk[(k * 37 + m * 101) % apk.len()];
            let version = match versions.last() {
                Some(v) if m % 2 == 0 => v.clone(),
                _ => "0.1-r0".to_owned(),
            };
            packages.push(package(
                PackageKind::Apk,
                name,
                &version,
                "lib/apk/db/installed",
            ));
        }
        // 10 language packages, two per ecosystem.
        for (e, (eco, kind, low, path)) in langs.iter().enumerate() {
            let list = named.get(*eco).unwrap_or(&empty);
            for m in 0..2.min(list.len()) {
                let (name, versions) = &list[(k * 13 + e * 7 + m * 53) % list.len()];
                let version = match versions.first() {
                    Some(v) if (k + m) % 2 == 0 => v.clone(),
                    _ => (*low).to_owned(),
                };
                packages.push(package(*kind, name, &version, path));
            }
        }
        packages
            .dedup_by(|a, b| a.package.name == b.package.name && a.package.kind == b.package.kind);
        out.push(Inventory {
            packages,
            distro: alpine,
            diff_ids: vec![format!("sha256:{}", "b".repeat(64))],
        });
        k += 1;
    }
    out
}

/// A read-only view of a store with its candidates indexed by (ecosystem, package), built
/// once after a database update: what a rescan of many inventories can use instead of one
/// full lookup per inventory and ecosystem. [`MemoryStore::lookup`] walks every stored range
/// on each call.
struct Indexed {
    by: HashMap<(String, String), Vec<Candidate>>,
    counts: VulnCounts,
}

impl Indexed {
    async fn build(
        store: &dyn VulnStore,
        names: &BTreeMap<String, Vec<(String, Vec<String>)>>,
    ) -> Indexed {
        let mut by: HashMap<(String, String), Vec<Candidate>> = HashMap::new();
        for (eco, packages) in names {
            let list: Vec<String> = packages.iter().map(|(p, _)| p.clone()).collect();
            for c in store.lookup(eco, &list).await.unwrap() {
                let mut per: BTreeMap<&str, Vec<AffectedRange>> = BTreeMap::new();
                for r in &c.ranges {
                    per.entry(r.package.as_str()).or_default().push(r.clone());
                }
                for (package, ranges) in per {
                    by.entry((eco.clone(), package.to_owned()))
                        .or_default()
                        .push(Candidate {
                            advisory: c.advisory.clone(),
                            ranges,
                        });
                }
            }
        }
        Indexed {
            by,
            counts: store.counts().await.unwrap(),
        }
    }
}

#[async_trait::async_trait]
impl VulnStore for Indexed {
    async fn import(&self, _: &ImportBatch, _: ImportMode, _: i64) -> StoreResult<ImportSummary> {
        unreachable!("read-only")
    }

    async fn lookup(&self, ecosystem: &str, packages: &[String]) -> StoreResult<Vec<Candidate>> {
        // One candidate per advisory, with the ranges of every looked-up package.
        let mut out: BTreeMap<(FeedSource, &str), Candidate> = BTreeMap::new();
        for p in packages {
            let Some(list) = self.by.get(&(ecosystem.to_owned(), p.clone())) else {
                continue;
            };
            for c in list {
                out.entry((c.advisory.source, c.advisory.id.as_str()))
                    .and_modify(|have| have.ranges.extend(c.ranges.iter().cloned()))
                    .or_insert_with(|| c.clone());
            }
        }
        Ok(out.into_values().collect())
    }

    async fn advisory(
        &self,
        _: FeedSource,
        _: &str,
    ) -> StoreResult<Option<(Advisory, Vec<AffectedRange>)>> {
        unreachable!("not used by matching")
    }

    async fn log_import(&self, _: &NewImportLog) -> StoreResult<i64> {
        unreachable!("read-only")
    }

    async fn import_log(&self, _: u32) -> StoreResult<Vec<ImportLogEntry>> {
        Ok(Vec::new())
    }

    async fn counts(&self) -> StoreResult<VulnCounts> {
        Ok(self.counts.clone())
    }
}

/// `match_packages` over every inventory: (total time, time per inventory, findings).
fn rescan(invs: &[Inventory], store: &dyn VulnStore) -> (Duration, Vec<Duration>, usize) {
    let mut each = Vec::with_capacity(invs.len());
    let mut findings = 0usize;
    let t = Instant::now();
    for inv in invs {
        let ti = Instant::now();
        let r = block_on(match_packages(
            &inv.packages,
            inv.distro.as_ref(),
            &inv.diff_ids,
            store,
            NOW,
        ))
        .unwrap();
        each.push(ti.elapsed());
        findings += r.findings.len();
    }
    (t.elapsed(), each, findings)
}

fn main() {
    let mut out = Out::default();
    let runs = runs();
    let root = std::env::var_os("BULWARK_BENCH_VULNDB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(VULNDB));
    println!(
        "bulwark-scanner bench: {} CPU(s), vulndb {}, {runs} runs",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        root.display()
    );

    // ---- (2) import of the whole database
    let mut parse_t = Vec::new();
    let mut store_t = Vec::new();
    let mut total_t = Vec::new();
    let mut kept: Option<(MemoryStore, Vec<(String, ImportBatch)>)> = None;
    for _ in 0..3 {
        let store = MemoryStore::new();
        let (p, w, batches) = import_all(&root, &store);
        parse_t.push(p);
        store_t.push(w);
        total_t.push(p + w);
        kept = Some((store, batches));
    }
    let (store, batches) = kept.unwrap();
    let counts = block_on(store.counts()).unwrap();
    let files: usize = batches.iter().map(|(_, b)| b.files_read).sum();
    let skipped: usize = batches.iter().map(|(_, b)| b.skipped.len()).sum();
    let (p, w, t) = (median(parse_t), median(store_t), median(total_t));
    out.figure(
        "import-parse",
        format!("{:.0} ms", ms(p)),
        format!("{files} files, {} feeds, {skipped} skipped", batches.len()),
        json!({ "ms": ms(p), "files": files, "feeds": batches.len(), "skipped": skipped }),
    );
    out.figure(
        "import-memory-store",
        format!("{:.0} ms", ms(w)),
        format!(
            "{} advisories, {} ranges",
            counts.advisories(),
            counts.ranges()
        ),
        json!({ "ms": ms(w), "advisories": counts.advisories(), "ranges": counts.ranges() }),
    );
    out.figure(
        "import-total",
        format!("{:.0} ms", ms(t)),
        "parse + memory store, median of 3".to_owned(),
        json!({ "ms": ms(t), "runs": 3 }),
    );

    // ---- (1) the Debian 12 fixture: inventory + match
    let fixture = fixture_path();
    let mut base: Vec<ImagePackage> = Vec::new();
    let mut debian: Option<Distro> = None;
    let mut diff_ids: Vec<String> = Vec::new();
    match &fixture {
        None => println!(
            "fixture: skipped (no BULWARK_DEBIAN12_OCI and no cached layout; \
             run scripts/debian-fixture.sh)"
        ),
        Some(path) => {
            let mut inv = Vec::new();
            let mut mat = Vec::new();
            let mut both = Vec::new();
            let mut findings = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let scanned = image::scan_oci_layout(path, &ScanOptions::default()).unwrap();
                let i = t.elapsed();
                let t = Instant::now();
                let report = block_on(match_image(&scanned, &store, NOW)).unwrap();
                let m = t.elapsed();
                inv.push(i);
                mat.push(m);
                both.push(i + m);
                findings = report.findings.len();
                base.clone_from(&scanned.packages);
                debian.clone_from(&scanned.distro);
                diff_ids = scanned
                    .config
                    .diff_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            }
            let bytes: u64 = std::fs::read_dir(path.join("blobs/sha256"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            let (i, m, b) = (median(inv), median(mat), median(both));
            out.figure(
                "fixture-inventory",
                format!("{:.0} ms", ms(i)),
                format!(
                    "{} packages, {:.1} MB layout, median of {runs}",
                    base.len(),
                    bytes as f64 / 1e6
                ),
                json!({ "ms": ms(i), "packages": base.len(), "layout_bytes": bytes, "runs": runs }),
            );
            out.figure(
                "fixture-match",
                format!("{:.1} ms", ms(m)),
                format!("{findings} findings"),
                json!({ "ms": ms(m), "findings": findings, "runs": runs }),
            );
            let met = b < Duration::from_secs(2);
            out.figure(
                "fixture-total",
                format!("{:.0} ms", ms(b)),
                format!("target < 2000 ms: {}", if met { "met" } else { "NOT met" }),
                json!({ "ms": ms(b), "target_ms": 2000, "met": met }),
            );
        }
    }

    // ---- (3) rescan of 1,000 stored inventories after a database update
    let named = named_versions(&batches);
    let invs = inventories(&base, debian.as_ref(), &diff_ids, &named);
    let t = Instant::now();
    for feed in ["debian-tracker", "debian-osv", "alpine-secdb-json"] {
        let batch = vulndb::import_path(root.join(feed)).unwrap();
        block_on(store.import(&batch, ImportMode::Merge, NOW + 1)).unwrap();
    }
    let update = t.elapsed();
    out.figure(
        "rescan-db-update",
        format!("{:.0} ms", ms(update)),
        "merge re-import: debian-tracker, debian-osv, alpine-secdb-json".to_owned(),
        json!({ "ms": ms(update) }),
    );
    // The first inventory alone, repeated: the per-inventory baseline.
    let first = median(
        (0..runs)
            .map(|_| {
                let inv = &invs[0];
                let t = Instant::now();
                block_on(match_packages(
                    &inv.packages,
                    inv.distro.as_ref(),
                    &inv.diff_ids,
                    &store,
                    NOW,
                ))
                .unwrap();
                t.elapsed()
            })
            .collect(),
    );
    // How much of it is the store lookup (one per ecosystem).
    let lookup = median(
        (0..runs)
            .map(|_| {
                let inv = &invs[0];
                let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for p in &inv.packages {
                    let eco = match (
                        p.package.kind,
                        inv.distro.as_ref().and_then(Distro::feed_key),
                    ) {
                        (PackageKind::Dpkg, Some(k)) => format!("Debian:{}", k.release),
                        (PackageKind::Apk, Some(k)) => k.to_string(),
                        (PackageKind::Python, _) => "PyPI".to_owned(),
                        _ => continue,
                    };
                    let name = p
                        .package
                        .source_name
                        .clone()
                        .unwrap_or(p.package.name.clone());
                    names.entry(eco).or_default().insert(name);
                }
                let t = Instant::now();
                for (eco, set) in names {
                    let list: Vec<String> = set.into_iter().collect();
                    block_on(store.lookup(&eco, &list)).unwrap();
                }
                t.elapsed()
            })
            .collect(),
    );
    let packages: usize = invs.iter().map(|i| i.packages.len()).sum();
    let (total, each, findings) = rescan(&invs, &store);
    let debian_n = if base.is_empty() { 0 } else { INVENTORIES / 2 };
    let mean = |d: &[Duration]| {
        if d.is_empty() {
            Duration::ZERO
        } else {
            d.iter().sum::<Duration>() / u32::try_from(d.len()).unwrap()
        }
    };
    let ratio = |d: Duration, base: Duration| {
        if base.is_zero() {
            0.0
        } else {
            d.as_secs_f64() / base.as_secs_f64()
        }
    };
    let per_inventory = |out: &mut Out, name: &str, each: &[Duration], first: Duration| {
        let (deb, syn) = each.split_at(debian_n);
        let (deb_mean, syn_mean, all_mean) = (mean(deb), mean(syn), mean(each));
        out.figure(
            name,
            format!("{:.2} ms", ms(all_mean)),
            format!(
                "mean ({:.2}x first); debian variants {:.2} ms ({:.2}x), synthetic alpine {:.2} ms ({:.2}x)",
                ratio(all_mean, first),
                ms(deb_mean),
                ratio(deb_mean, first),
                ms(syn_mean),
                ratio(syn_mean, first)
            ),
            json!({
                "ms": ms(all_mean),
                "ratio_to_first": ratio(all_mean, first),
                "debian_ms": ms(deb_mean),
                "debian_ratio": ratio(deb_mean, first),
                "synthetic_ms": ms(syn_mean),
                "synthetic_ratio": ratio(syn_mean, first),
                "median_ms": ms(median(each.to_vec())),
            }),
        );
    };
    out.figure(
        "rescan-first-inventory",
        format!("{:.2} ms", ms(first)),
        format!(
            "{} packages (the per-inventory baseline); store lookup {:.2} ms of it",
            invs[0].packages.len(),
            ms(lookup)
        ),
        json!({ "ms": ms(first), "packages": invs[0].packages.len(), "lookup_ms": ms(lookup) }),
    );
    per_inventory(&mut out, "rescan-per-inventory", &each, first);
    let met = total < Duration::from_secs(10);
    out.figure(
        "rescan-1000",
        format!("{:.0} ms", ms(total)),
        format!(
            "MemoryStore; {} inventories, {packages} packages, {findings} findings; target < 10000 ms: {}",
            invs.len(),
            if met { "met" } else { "NOT met" }
        ),
        json!({
            "ms": ms(total),
            "store": "memory",
            "inventories": invs.len(),
            "packages": packages,
            "findings": findings,
            "target_ms": 10000,
            "met": met,
        }),
    );

    // The same rescan through an index of the store built once after the update.
    let t = Instant::now();
    let indexed = block_on(Indexed::build(&store, &named));
    let build = t.elapsed();
    let first_indexed = median(
        (0..runs)
            .map(|_| {
                let inv = &invs[0];
                let t = Instant::now();
                block_on(match_packages(
                    &inv.packages,
                    inv.distro.as_ref(),
                    &inv.diff_ids,
                    &indexed,
                    NOW,
                ))
                .unwrap();
                t.elapsed()
            })
            .collect(),
    );
    let (total_indexed, each_indexed, findings_indexed) = rescan(&invs, &indexed);
    out.figure(
        "rescan-index-build",
        format!("{:.0} ms", ms(build)),
        format!("{} (ecosystem, package) keys", indexed.by.len()),
        json!({ "ms": ms(build), "keys": indexed.by.len() }),
    );
    out.figure(
        "rescan-first-indexed",
        format!("{:.2} ms", ms(first_indexed)),
        format!(
            "{:.2}x the MemoryStore first inventory",
            ratio(first_indexed, first)
        ),
        json!({ "ms": ms(first_indexed), "ratio_to_memory_first": ratio(first_indexed, first) }),
    );
    per_inventory(
        &mut out,
        "rescan-per-inv-indexed",
        &each_indexed,
        first_indexed,
    );
    let with_build = total_indexed + build;
    let met = with_build < Duration::from_secs(10);
    out.figure(
        "rescan-1000-indexed",
        format!("{:.0} ms", ms(with_build)),
        format!(
            "index build + {:.0} ms matching; {findings_indexed} findings ({}); target < 10000 ms: {}",
            ms(total_indexed),
            if findings_indexed == findings { "same as MemoryStore" } else { "DIFFERENT from MemoryStore" },
            if met { "met" } else { "NOT met" }
        ),
        json!({
            "ms": ms(with_build),
            "match_ms": ms(total_indexed),
            "build_ms": ms(build),
            "store": "indexed",
            "findings": findings_indexed,
            "same_findings": findings_indexed == findings,
            "target_ms": 10000,
            "met": met,
        }),
    );
    out.table();
}
