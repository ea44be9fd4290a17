//! `bulwark scan` of a real Debian 12 image, end to end: the OCI layout that
//! `scripts/debian-fixture.sh` builds with `debootstrap --variant=minbase bookworm`
//! (path in `BULWARK_DEBIAN12_OCI`), matched against the real Debian OSV and tracker records
//! of shared/testdata/vulndb imported with `bulwark vulndb import`.
//!
//! The mirror moves on with each point release, so nothing here hard-codes an installed
//! version: the installed versions are read from the image's own dpkg status, and the
//! findings the scan must report are worked out from the raw OSV records with
//! `dpkg --compare-versions` as the reference for version order. Named records anchor it:
//! open (unfixed) CVEs that every bookworm version is affected by, and fixed ones that are
//! reported only while the installed version is older than the fix. A second image pins the
//! fixture's glibc back to bookworm's first version (2.36-9), for findings with a fixed
//! version, a severity and a grade that do not depend on the mirror.
//!
//! Without `BULWARK_DEBIAN12_OCI` the test is skipped with a message, unless
//! `BULWARK_REQUIRE_DEBIAN12=1` (scripts/test.sh sets both), which makes that a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the client tests; this file uses only the image builders.
#[allow(dead_code)]
mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const VULNDB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/vulndb"
);

/// Grade as of this time, so that advisory ages do not depend on the day the test runs.
const NOW: &str = "2026-11-23T00:00:00Z";

/// The fixture layout, or `None` (after saying why) when the test is to be skipped.
fn fixture_layout() -> Option<PathBuf> {
    let required = std::env::var("BULWARK_REQUIRE_DEBIAN12").is_ok_and(|v| v == "1");
    match std::env::var_os("BULWARK_DEBIAN12_OCI") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(
                p.join("index.json").is_file(),
                "BULWARK_DEBIAN12_OCI={} is not an OCI layout (no index.json); \
                 build it with scripts/debian-fixture.sh",
                p.display()
            );
            Some(p)
        }
        _ if required => panic!(
            "BULWARK_REQUIRE_DEBIAN12=1 but BULWARK_DEBIAN12_OCI is not set; \
             build the image with scripts/debian-fixture.sh and export its path"
        ),
        _ => {
            eprintln!(
                "skipping the Debian 12 scan test: BULWARK_DEBIAN12_OCI is not set \
                 (scripts/debian-fixture.sh builds the image; scripts/test.sh sets it)"
            );
            None
        }
    }
}

fn feed(rel: &str) -> String {
    Path::new(VULNDB).join(rel).to_str().unwrap().to_owned()
}

fn bulwark(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .env("BULWARK_DATA_DIR", data_dir)
        .env_remove("BULWARK_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn scan(data_dir: &Path, layout: &Path) -> Value {
    let out = bulwark(
        data_dir,
        &["scan", layout.to_str().unwrap(), "--json", "--now", NOW],
    );
    serde_json::from_str(&ok(&out)).unwrap()
}

// ---- the reference: dpkg's version order ---------------------------------------------------

thread_local! {
    static DPKG_LT: RefCell<HashMap<(String, String), bool>> = RefCell::new(HashMap::new());
}

/// `dpkg --compare-versions a lt b`.
fn dpkg_lt(a: &str, b: &str) -> bool {
    let key = (a.to_owned(), b.to_owned());
    if let Some(v) = DPKG_LT.with(|c| c.borrow().get(&key).copied()) {
        return v;
    }
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .status()
        .expect("running dpkg --compare-versions (the Debian reference for version order)");
    let lt = status.success();
    DPKG_LT.with(|c| c.borrow_mut().insert(key, lt));
    lt
}

/// One Debian:12 record that applies to an installed version: its id, aliases and the fix
/// (`None`: open in bookworm).
#[derive(Debug, Clone)]
struct Expected {
    aliases: Vec<String>,
    fixed: Option<String>,
}

/// Every OSV record with a `Debian:12` range for `source`, as (id, aliases, ranges as
/// `(introduced, fixed)` pairs).
type Records = Vec<(String, Vec<String>, Vec<(String, Option<String>)>)>;

fn debian12_records(sources: &BTreeSet<String>) -> BTreeMap<String, Records> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, files);
            } else if p.extension().is_some_and(|x| x == "json") {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&Path::new(VULNDB).join("debian-osv"), &mut files);
    files.sort();
    let mut by_source: BTreeMap<String, Records> = BTreeMap::new();
    for f in files {
        let doc: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        if !doc["withdrawn"].is_null() {
            continue;
        }
        let id = doc["id"].as_str().unwrap().to_owned();
        let aliases: Vec<String> = doc["aliases"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        let mut per_source: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
        for a in doc["affected"].as_array().unwrap() {
            let name = a["package"]["name"].as_str().unwrap_or_default();
            if a["package"]["ecosystem"] != "Debian:12" || !sources.contains(name) {
                continue;
            }
            for r in a["ranges"].as_array().into_iter().flatten() {
                if r["type"] != "ECOSYSTEM" {
                    continue;
                }
                // Debian's ranges are `introduced` followed by an optional `fixed`.
                let mut introduced: Option<String> = None;
                for e in r["events"].as_array().unwrap() {
                    if let Some(i) = e["introduced"].as_str() {
                        if let Some(prev) = introduced.replace(i.to_owned()) {
                            per_source
                                .entry(name.to_owned())
                                .or_default()
                                .push((prev, None));
                        }
                    } else if let Some(fx) = e["fixed"].as_str() {
                        let i = introduced.take().expect("fixed without introduced");
                        per_source
                            .entry(name.to_owned())
                            .or_default()
                            .push((i, Some(fx.to_owned())));
                    } else {
                        panic!("{}: unexpected event {e} in a Debian:12 range", f.display());
                    }
                }
                if let Some(i) = introduced {
                    per_source
                        .entry(name.to_owned())
                        .or_default()
                        .push((i, None));
                }
            }
        }
        for (source, ranges) in per_source {
            by_source
                .entry(source)
                .or_default()
                .push((id.clone(), aliases.clone(), ranges));
        }
    }
    by_source
}

/// The records that affect `version` of a source package, by id (OSV: any range; the fix is
/// the highest over the matching ranges, none if one of them has none).
fn affecting(records: &Records, version: &str) -> BTreeMap<String, Expected> {
    let mut out = BTreeMap::new();
    for (id, aliases, ranges) in records {
        let hits: Vec<&Option<String>> = ranges
            .iter()
            .filter(|(introduced, fixed)| {
                (introduced == "0" || !dpkg_lt(version, introduced))
                    && fixed.as_ref().is_none_or(|f| dpkg_lt(version, f))
            })
            .map(|(_, fixed)| fixed)
            .collect();
        if hits.is_empty() {
            continue;
        }
        let fixed = if hits.iter().any(|f| f.is_none()) {
            None
        } else {
            hits.into_iter()
                .flatten()
                .cloned()
                .reduce(|a, b| if dpkg_lt(&a, &b) { b } else { a })
        };
        out.insert(
            id.clone(),
            Expected {
                aliases: aliases.clone(),
                fixed,
            },
        );
    }
    out
}

// ---- the fixture's own files -----------------------------------------------------------------

/// `(path, content)` of the wanted regular files of the layout's (single) image's layers.
fn layout_files(layout: &Path, wanted: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let read_json =
        |p: PathBuf| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let blob = |digest: &str| layout.join("blobs").join(digest.replacen(':', "/", 1));
    let index = read_json(layout.join("index.json"));
    let manifest = read_json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let mut files = BTreeMap::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let raw = std::fs::File::open(blob(layer["digest"].as_str().unwrap())).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(raw));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let path = path.trim_start_matches("./").to_owned();
            if entry.header().entry_type().is_file() && wanted.contains(&path.as_str()) {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                files.insert(path, content);
            }
        }
    }
    files
}

/// Installed packages of a dpkg status file: binary name → (source, source version).
fn dpkg_status(status: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
                .map(str::trim)
        };
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        if !field("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        // `Source: name (version)` when the source version differs from the binary's.
        let (source, source_version) = match field("Source") {
            None => (name.to_owned(), version.to_owned()),
            Some(s) => match s.split_once(" (") {
                Some((n, v)) => (n.to_owned(), v.trim_end_matches(')').to_owned()),
                None => (s.to_owned(), version.to_owned()),
            },
        };
        out.insert(name.to_owned(), (source, source_version));
    }
    out
}

// ---- checks ----------------------------------------------------------------------------------

fn findings_of<'a>(report: &'a Value, package: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["package"] == package)
        .collect()
}

fn finding<'a>(report: &'a Value, package: &str, id: &str) -> Option<&'a Value> {
    findings_of(report, package)
        .into_iter()
        .find(|f| f["id"] == id)
}

/// The scan reports exactly the records that affect each installed package, with the fix the
/// records give; returns how many fixable findings there are.
fn check_against_records(
    report: &Value,
    installed: &BTreeMap<String, (String, String)>,
    records: &BTreeMap<String, Records>,
) -> usize {
    let mut fixable = 0;
    for (package, (source, version)) in installed {
        let expected = records
            .get(source)
            .map(|r| affecting(r, version))
            .unwrap_or_default();
        let found = findings_of(report, package);
        // Ids the scan reports for the package, including merged duplicates.
        let mut reported: BTreeSet<String> = BTreeSet::new();
        for f in &found {
            assert_eq!(f["source"], "osv", "{f:#}");
            assert_eq!(f["ecosystem"], "Debian:12");
            assert_eq!(f["advisory_package"], source.as_str());
            assert_eq!(f["installed_version"], version.as_str());
            let id = f["id"].as_str().unwrap();
            let e = expected.get(id).unwrap_or_else(|| {
                panic!(
                    "{package} {version}: {id} reported, but no Debian:12 range of it \
                     affects that version (dpkg --compare-versions)"
                )
            });
            assert_eq!(
                f["fixed_version"].as_str(),
                e.fixed.as_deref(),
                "{package} {version}: fix of {id}"
            );
            if e.fixed.is_some() {
                fixable += 1;
            }
            reported.insert(id.to_owned());
            for other in f["also_reported_by"].as_array().unwrap() {
                let other = other.as_str().unwrap();
                reported.insert(other.split_once(':').map_or(other, |(_, i)| i).to_owned());
            }
        }
        for (id, e) in &expected {
            // A record merged into another finding of the same vulnerability shows up in its
            // `also_reported_by`; its aliases name the vulnerability too.
            let covered = reported.contains(id)
                || found.iter().any(|f| {
                    f["aliases"].as_array().unwrap().iter().any(|a| {
                        a.as_str() == Some(id.as_str())
                            || e.aliases.iter().any(|x| a.as_str() == Some(x.as_str()))
                    })
                });
            assert!(
                covered,
                "{package} {version}: {id} (fixed {:?}) affects it but is not reported; \
                 reported: {reported:?}",
                e.fixed
            );
        }
    }
    fixable
}

#[test]
fn scans_a_real_debian12_image() {
    let Some(layout) = fixture_layout() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let imported = ok(&bulwark(
        data.path(),
        &[
            "vulndb",
            "import",
            &feed("debian-osv"),
            &feed("debian-tracker"),
        ],
    ));
    assert!(
        imported.contains("osv                1319 advisories"),
        "{imported}"
    );

    let files = layout_files(&layout, &["usr/lib/os-release", "var/lib/dpkg/status"]);
    let status = String::from_utf8(files["var/lib/dpkg/status"].clone()).unwrap();
    let installed = dpkg_status(&status);
    let sources: BTreeSet<String> = installed.values().map(|(s, _)| s.clone()).collect();
    let records = debian12_records(&sources);

    // ---- the image as debootstrap built it
    let report = scan(data.path(), &layout);
    assert_eq!(report["distro"]["id"], "debian");
    assert_eq!(report["distro"]["version_id"], "12");
    assert_eq!(report["distro"]["codename"], "bookworm");
    let packages = report["packages"].as_array().unwrap();
    // minbase installs about 90 packages (88 with Debian 12.15).
    assert!(
        (70..=130).contains(&packages.len()),
        "{} packages",
        packages.len()
    );
    assert!(
        packages
            .iter()
            .all(|p| p["kind"] == "dpkg" && p["layer"] == 0)
    );
    assert_eq!(packages.len(), installed.len(), "every installed stanza");
    for p in packages {
        let (source, source_version) = &installed[p["name"].as_str().unwrap()];
        let source_name = p["source_name"]
            .as_str()
            .unwrap_or(p["name"].as_str().unwrap());
        assert_eq!(source_name, source, "{p}");
        let v = p["source_version"]
            .as_str()
            .unwrap_or(p["version"].as_str().unwrap());
        assert_eq!(v, source_version, "{p}");
    }
    let version_of = |binary: &str| installed[binary].1.clone();

    let real_fixable = check_against_records(&report, &installed, &records);

    // Open in bookworm (no fix in the record): every installed version is affected.
    let zlib = version_of("zlib1g");
    let f = finding(&report, "zlib1g", "CVE-2023-45853").expect("zlib CVE-2023-45853");
    assert_eq!(f["advisory_package"], "zlib");
    assert_eq!(f["installed_version"], zlib.as_str());
    assert_eq!(f["fixed_version"], Value::Null);
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["published"], "2023-10-14T02:15:09Z");
    let f = finding(&report, "passwd", "CVE-2023-4641").expect("shadow CVE-2023-4641");
    assert_eq!(f["advisory_package"], "shadow");
    assert_eq!(f["installed_version"], version_of("passwd").as_str());
    assert_eq!(f["fixed_version"], Value::Null);

    // Fixed before bookworm's first version: never a finding.
    assert!(dpkg_lt("1:1.2.11.dfsg-4.1", &zlib));
    assert!(finding(&report, "zlib1g", "CVE-2022-37434").is_none());
    // Looking Glass (glibc, High, fixed in 2.36-9+deb12u3): a finding exactly while the
    // installed glibc is older than the fix.
    let glibc = version_of("libc6");
    match finding(&report, "libc6", "CVE-2023-4911") {
        Some(f) => {
            assert!(dpkg_lt(&glibc, "2.36-9+deb12u3"), "{glibc} has the fix");
            assert_eq!(f["fixed_version"], "2.36-9+deb12u3");
            assert_eq!(f["severity"], "high");
        }
        None => assert!(!dpkg_lt(&glibc, "2.36-9+deb12u3"), "{glibc} lacks the fix"),
    }

    let summary = &report["summary"];
    let total = report["findings"].as_array().unwrap().len() as u64;
    assert_eq!(summary["total"], total);
    assert_eq!(summary["fixable"], real_fixable as u64);
    let counted: u64 = ["critical", "high", "medium", "low", "none", "unknown"]
        .iter()
        .map(|k| summary["counts"][k].as_u64().unwrap())
        .sum();
    assert_eq!(counted, total);
    assert!(summary["counts"]["critical"].as_u64().unwrap() >= 1);
    // The records (snapshot of 2025-02) fix nothing newer than what bookworm ships since
    // 12.10, so only open CVEs remain: none counts for the grade. With an older mirror the
    // image has fixable findings, and then at least one High/Critical (Looking Glass above
    // or its successors) makes it worse than A.
    if real_fixable == 0 {
        assert_eq!(summary["grade"], "A", "{summary:#}");
        assert_eq!(summary["grade_cause"], Value::Null);
        assert_eq!(summary["outdated"].as_array().unwrap().len(), 0);
    } else {
        assert_ne!(summary["grade"], "A", "{summary:#}");
    }

    // ---- the same image with glibc pinned back to bookworm's first version
    let pinned_version = "2.36-9";
    let mut pinned = String::new();
    for stanza in status.split_inclusive("\n\n") {
        let glibc_binary = stanza
            .lines()
            .any(|l| l == "Source: glibc" || l.starts_with("Source: glibc "));
        if glibc_binary {
            let old = stanza
                .lines()
                .find_map(|l| l.strip_prefix("Version: "))
                .unwrap();
            pinned.push_str(&stanza.replace(
                &format!("\nVersion: {old}\n"),
                &format!("\nVersion: {pinned_version}\n"),
            ));
        } else {
            pinned.push_str(stanza);
        }
    }
    let pinned_installed = dpkg_status(&pinned);
    assert_eq!(pinned_installed["libc6"].1, pinned_version);
    assert_eq!(pinned_installed["libc-bin"].1, pinned_version);
    let img = support::image(
        "amd64",
        &[vec![
            ("etc/os-release", files["usr/lib/os-release"].clone()),
            ("var/lib/dpkg/status", pinned.into_bytes()),
        ]],
    );
    let old = tempfile::tempdir().unwrap();
    support::write_layout(old.path(), &img.blobs(), &img.manifest, "bookworm");
    let report = scan(data.path(), old.path());
    let fixable = check_against_records(&report, &pinned_installed, &records);
    assert!(fixable > 0);
    for binary in ["libc6", "libc-bin"] {
        let f = finding(&report, binary, "CVE-2023-4911").expect("Looking Glass");
        assert_eq!(f["advisory_package"], "glibc");
        assert_eq!(f["installed_version"], "2.36-9");
        assert_eq!(f["fixed_version"], "2.36-9+deb12u3");
        assert_eq!(f["severity"], "high");
        assert_eq!(f["published"], "2023-10-03T18:15:10Z");
        let f = finding(&report, binary, "DSA-5678-1").expect("DSA-5678-1");
        assert_eq!(f["fixed_version"], "2.36-9+deb12u7");
    }
    // A High fixed for more than two years at NOW: F.
    let summary = &report["summary"];
    assert_eq!(summary["grade"], "F", "{summary:#}");
    let cause = &summary["grade_cause"];
    assert!(["critical", "high"].contains(&cause["severity"].as_str().unwrap()));
    assert!(cause["age_days"].as_u64().unwrap() > 730, "{cause}");
    // The upgrade that fixes every glibc finding: the highest fix over them.
    let outdated: BTreeMap<&str, &str> = summary["outdated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["package"].as_str().unwrap(),
                o["fixed_version"].as_str().unwrap(),
            )
        })
        .collect();
    let highest = affecting(&records["glibc"], pinned_version)
        .into_values()
        .filter_map(|e| e.fixed)
        .reduce(|a, b| if dpkg_lt(&a, &b) { b } else { a })
        .unwrap();
    assert_eq!(
        outdated.get("libc6"),
        Some(&highest.as_str()),
        "{outdated:?}"
    );
    assert_eq!(outdated.get("libc-bin"), Some(&highest.as_str()));
    if real_fixable == 0 {
        assert_eq!(outdated.len(), 2, "only glibc is behind: {outdated:?}");
    }
}
