//! `bulwark vulndb import` / `status` and `bulwark scan` with vulnerability matching, end to
//! end: real Debian tracker, Debian OSV and Alpine secdb records (shared/testdata/vulndb)
//! imported into a temporary data directory, then OCI layouts whose dpkg / apk databases list
//! packages at versions those records affect.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the client tests; this file uses only the image builders.
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bulwark-scanner/tests/fixtures"
);
const VULNDB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/vulndb"
);

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(rel)).unwrap()
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

fn dpkg(package: &str, source: &str, version: &str) -> String {
    format!(
        "Package: {package}\nStatus: install ok installed\nPriority: optional\n\
         Architecture: amd64\nSource: {source}\nVersion: {version}\n\
         Description: {package} for the scanner tests\n\n"
    )
}

fn apk(package: &str, origin: &str, version: &str) -> String {
    format!("P:{package}\nV:{version}\nA:x86_64\no:{origin}\nT:{package}\n\n")
}

/// Findings of `package` as (id, installed, fixed, source).
fn findings_of<'a>(report: &'a Value, package: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["package"] == package)
        .collect()
}

fn finding<'a>(report: &'a Value, package: &str, id: &str) -> &'a Value {
    findings_of(report, package)
        .into_iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} for {package} in {:#}", report["findings"]))
}

#[test]
fn import_then_scan_debian_and_alpine_images() {
    let data = tempfile::tempdir().unwrap();

    // Import: per-source counts; a missing path is reported but does not fail the run.
    let out = bulwark(
        data.path(),
        &[
            "vulndb",
            "import",
            &feed("debian-tracker"),
            &feed("debian-osv"),
            &feed("alpine-secdb-json"),
            "/nonexistent/feed",
        ],
    );
    let stdout = ok(&out);
    assert!(
        stdout.contains(
            "debian-tracker       10 advisories (10 new, 0 updated, 0 unchanged), 40 ranges"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("osv                1319 advisories (1319 new"),
        "{stdout}"
    );
    assert!(
        stdout.contains("alpine-secdb       6814 advisories (6814 new"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/feed"),
        "the failed path is named"
    );
    // Again: idempotent.
    let stdout = ok(&bulwark(
        data.path(),
        &["vulndb", "import", &feed("debian-tracker")],
    ));
    assert!(
        stdout.contains("(0 new, 0 updated, 10 unchanged)"),
        "{stdout}"
    );

    let status: Value =
        serde_json::from_str(&ok(&bulwark(data.path(), &["vulndb", "status", "--json"]))).unwrap();
    assert_eq!(status["advisories"], 10 + 1319 + 6814);
    let imports = status["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 4);
    assert_eq!(imports[0]["source"], "debian-tracker");
    assert_eq!(imports[0]["inserted"], 0);
    assert_eq!(imports[3]["advisories"], 10);
    let table = ok(&bulwark(data.path(), &["vulndb", "status"]));
    assert!(table.contains("debian-tracker"), "{table}");

    // Nothing importable at all: non-zero exit.
    let out = bulwark(data.path(), &["vulndb", "import", "/nonexistent/feed"]);
    assert!(!out.status.success());

    // ---- Debian 12: base layer, then a layer that installs two more packages.
    let base = [
        dpkg("zlib1g", "zlib", "1:1.2.13.dfsg-1"),
        dpkg("libexpat1", "expat", "2.5.0-1"),
        dpkg("passwd", "shadow", "1:4.13+dfsg1-1"),
    ]
    .concat();
    let more = [
        base.clone(),
        dpkg("libsope1", "sope", "5.8.0-1"),
        dpkg("libapparmor1", "apparmor", "3.0.8-3"),
    ]
    .concat();
    let img = support::image(
        "amd64",
        &[
            vec![
                ("etc/os-release", fixture("os-release/debian-12")),
                ("var/lib/dpkg/status", base.into_bytes()),
            ],
            vec![("var/lib/dpkg/status", more.into_bytes())],
        ],
    );
    let layout = tempfile::tempdir().unwrap();
    support::write_layout(layout.path(), &img.blobs(), &img.manifest, "v1");
    let dir = layout.path().to_str().unwrap();
    let scan = |now: &str| -> Value {
        let out = bulwark(data.path(), &["scan", dir, "--json", "--now", now]);
        serde_json::from_str(&ok(&out)).unwrap()
    };
    let report = scan("2024-09-05T00:00:00Z");
    // The inventory keys are unchanged.
    assert_eq!(report["distro"]["version_id"], "12");
    assert_eq!(report["packages"].as_array().unwrap().len(), 5);

    // Fixed in bookworm (OSV Debian:12): the critical expat overflow, from layer 0.
    let f = finding(&report, "libexpat1", "CVE-2024-45492");
    assert_eq!(f["installed_version"], "2.5.0-1");
    assert_eq!(f["fixed_version"], "2.5.0-1+deb12u1");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["source"], "osv");
    assert_eq!(f["ecosystem"], "Debian:12");
    assert_eq!(f["advisory_package"], "expat");
    assert_eq!(f["kind"], "dpkg");
    assert_eq!(f["layer"], 0);
    assert_eq!(f["layer_diff_id"], img.diff_ids[0]);
    assert_eq!(f["published"], "2024-08-30T03:15:03Z");
    finding(&report, "libexpat1", "DSA-5770-1");
    // Open in bookworm: reported without a fix.
    let f = finding(&report, "zlib1g", "CVE-2023-45853");
    assert_eq!(f["fixed_version"], Value::Null);
    assert_eq!(f["severity"], "critical");
    let f = finding(&report, "passwd", "CVE-2023-4641");
    assert_eq!(f["fixed_version"], Value::Null);
    assert_eq!(f["installed_version"], "1:4.13+dfsg1-1");
    // Old zlib CVEs were fixed long before bookworm.
    assert!(
        findings_of(&report, "zlib1g")
            .iter()
            .all(|f| f["id"] != "CVE-2022-37434" && f["id"] != "CVE-2018-25032")
    );
    // The Debian tracker, keyed by source package, from the second layer.
    let f = finding(&report, "libsope1", "CVE-2025-53603");
    assert_eq!(f["source"], "debian-tracker");
    assert_eq!(f["installed_version"], "5.8.0-1");
    assert_eq!(f["fixed_version"], "5.8.0-1+deb12u1");
    assert_eq!(f["layer"], 1);
    assert_eq!(f["layer_diff_id"], img.diff_ids[1]);
    // apparmor: one open CVE; "fixed 0" (not affected) and an old fix are not findings.
    let apparmor: Vec<&str> = findings_of(&report, "libapparmor1")
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(apparmor, ["CVE-2016-1585"]);
    assert_eq!(
        finding(&report, "libapparmor1", "CVE-2016-1585")["fixed_version"],
        Value::Null
    );

    let summary = &report["summary"];
    let total = report["findings"].as_array().unwrap().len() as u64;
    assert_eq!(summary["total"], total);
    assert_eq!(
        summary["fixable"].as_u64().unwrap() + summary["unfixed"].as_u64().unwrap(),
        total
    );
    let counts = &summary["counts"];
    let counted: u64 = ["critical", "high", "medium", "low", "none", "unknown"]
        .iter()
        .map(|k| counts[k].as_u64().unwrap())
        .sum();
    assert_eq!(counted, total);
    assert!(counts["critical"].as_u64().unwrap() >= 3);
    // Grade: the oldest fixable Critical/High is expat's, published 2024-08-30.
    assert_eq!(summary["grade"], "B", "{summary:#}");
    assert_eq!(summary["grade_cause"]["age_days"], 5);
    // 46 days later a Critical is past 30 days: D.
    let later = scan("2024-10-15T12:00:00Z");
    assert_eq!(later["summary"]["grade"], "D");
    // Outdated packages: those with a fixed version.
    let outdated: Vec<(&str, &str)> = summary["outdated"]
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
    assert!(
        outdated.contains(&("libexpat1", "2.5.0-1+deb12u1")),
        "{outdated:?}"
    );
    assert!(
        outdated.contains(&("libsope1", "5.8.0-1+deb12u1")),
        "{outdated:?}"
    );
    assert!(
        !outdated
            .iter()
            .any(|(p, _)| *p == "libapparmor1" || *p == "zlib1g")
    );

    // The table shows findings and the grade.
    let table = ok(&bulwark(
        data.path(),
        &["scan", dir, "--now", "2024-09-05T00:00:00Z"],
    ));
    assert!(table.contains("health grade B"), "{table}");
    assert!(table.contains("CVE-2024-45492"), "{table}");
    assert!(table.contains("outdated packages"), "{table}");

    // ---- Alpine 3.18.
    let installed = [
        apk("libexpat", "expat", "2.6.2-r0"),
        apk("zlib", "zlib", "1.2.13-r1"),
        apk("busybox", "busybox", "1.36.1-r5"),
    ]
    .concat();
    let img = support::image(
        "amd64",
        &[vec![
            ("etc/os-release", fixture("os-release/alpine-3.18")),
            ("lib/apk/db/installed", installed.into_bytes()),
        ]],
    );
    let layout = tempfile::tempdir().unwrap();
    support::write_layout(layout.path(), &img.blobs(), &img.manifest, "v1");
    let dir = layout.path().to_str().unwrap();
    let report: Value = serde_json::from_str(&ok(&bulwark(
        data.path(),
        &["scan", dir, "--json", "--now", "2024-09-05T00:00:00Z"],
    )))
    .unwrap();
    // Keyed by origin in the v3.18 branch; the OSV copy of the same CVE is merged into the
    // distro feed's finding, which takes its severity and date.
    let f = finding(&report, "libexpat", "CVE-2024-45492");
    assert_eq!(f["source"], "alpine-secdb");
    assert_eq!(f["ecosystem"], "Alpine:v3.18");
    assert_eq!(f["installed_version"], "2.6.2-r0");
    assert_eq!(f["fixed_version"], "2.6.3-r0");
    assert_eq!(
        f["also_reported_by"],
        serde_json::json!(["osv:CVE-2024-45492"])
    );
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["published"], "2024-08-30T03:15:03Z");
    assert_eq!(
        finding(&report, "libexpat", "CVE-2024-50602")["fixed_version"],
        "2.6.4-r0"
    );
    assert_eq!(
        findings_of(&report, "libexpat")
            .iter()
            .filter(|f| f["id"] == "CVE-2024-45492")
            .count(),
        1,
        "one finding per vulnerability"
    );
    assert_eq!(
        finding(&report, "busybox", "CVE-2023-42366")["fixed_version"],
        "1.36.1-r6"
    );
    assert_eq!(
        finding(&report, "busybox", "CVE-2023-42363")["fixed_version"],
        "1.36.1-r7"
    );
    // zlib: Alpine's "0" marks CVE-2023-45853 not affected.
    assert!(
        findings_of(&report, "zlib").is_empty(),
        "{:#}",
        report["findings"]
    );
    assert_eq!(report["summary"]["grade"], "B");

    // ---- No vulnerability data: the scan output has no findings keys.
    let empty = tempfile::tempdir().unwrap();
    let report: Value =
        serde_json::from_str(&ok(&bulwark(empty.path(), &["scan", dir, "--json"]))).unwrap();
    assert!(report.get("findings").is_none());
    assert!(report.get("summary").is_none());
    assert!(
        !empty.path().join("bulwark.db").exists(),
        "scan creates no database"
    );
}
