#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Whole images of the distributions whose feeds name releases
//! differently from os-release: Ubuntu (OSV `Ubuntu:22.04:LTS`) and RHEL
//! (CSAF `Red Hat:enterprise_linux:9::baseos`), scanned and matched.

mod layers_support;

use std::path::Path;

use bulwark_scanner::image::{ScanOptions, ScannedImage, scan_oci_layout};
use bulwark_scanner::report::{VulnReport, feed_ecosystems, match_image};
use bulwark_scanner::vulndb::store::{ImportMode, MemoryStore, VulnStore};
use bulwark_scanner::vulndb::{import_bytes, import_path};
use layers_support::*;

fn scan_one_layer(tar: Vec<u8>) -> (tempfile::TempDir, ScannedImage) {
    let mut blobs = Blobs::default();
    let m = blobs.image("amd64", &[(OCI_LAYER_GZIP, gzip(&tar), tar)]);
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    (dir, scanned)
}

/// (id, package, installed, fixed, severity, ecosystem) of every finding.
type Row<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
);

fn rows(report: &VulnReport) -> Vec<Row<'_>> {
    let mut r: Vec<Row<'_>> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.package.as_str(),
                f.installed_version.as_str(),
                f.fixed_version.as_deref(),
                f.severity,
                f.ecosystem.as_str(),
            )
        })
        .collect();
    r.sort_unstable();
    r
}

// ------------------------------------------------------------- Ubuntu

const UBUNTU_STATUS: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Architecture: amd64
Source: openssl
Version: 3.0.2-0ubuntu1.15

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.2-0ubuntu1.15

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.11.dfsg-2ubuntu9

Package: libzmq5
Status: install ok installed
Architecture: amd64
Source: zeromq3
Version: 4.3.4-2
";

/// Hand-written in the shape of Ubuntu's OSV records (the shared test
/// data has none): `UBUNTU-CVE-*` ids with the CVE in `related`, one
/// `affected` entry per release keyed on the source package, dpkg
/// `ECOSYSTEM` ranges, the affected `versions` and the binaries in
/// `ecosystem_specific`, an `Ubuntu` priority as severity. The versions
/// are illustrative, not Ubuntu's.
const UBUNTU_OPENSSL: &str = r#"{
  "schema_version": "1.6.3",
  "id": "UBUNTU-CVE-2024-6119",
  "details": "Applications performing certificate name checks (e.g., TLS clients checking server certificates) may attempt to read an invalid memory address resulting in abnormal termination of the application process.",
  "aliases": [],
  "related": ["CVE-2024-6119"],
  "published": "2024-09-03T16:15:00Z",
  "modified": "2024-09-04T10:00:00Z",
  "affected": [
    {
      "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "openssl",
                  "purl": "pkg:deb/ubuntu/openssl@3.0.2-0ubuntu1.18?arch=source&distro=jammy"},
      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.18"}]}],
      "versions": ["3.0.2-0ubuntu1", "3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.16", "3.0.2-0ubuntu1.17"],
      "ecosystem_specific": {"binaries": [{"binary_name": "libssl3", "binary_version": "3.0.2-0ubuntu1.18"},
                                          {"binary_name": "openssl", "binary_version": "3.0.2-0ubuntu1.18"}],
                             "availability": "No subscription required"}
    },
    {
      "package": {"ecosystem": "Ubuntu:Pro:FIPS-updates:22.04:LTS", "name": "openssl"},
      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.18+Fips1"}]}],
      "ecosystem_specific": {"availability": "Available with Ubuntu Pro: https://ubuntu.com/pro"}
    },
    {
      "package": {"ecosystem": "Ubuntu:24.04:LTS", "name": "openssl"},
      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-0ubuntu3.4"}]}]
    }
  ],
  "severity": [{"type": "Ubuntu", "score": "medium"}]
}"#;

/// A release without the `:LTS` marker, and a Pro-only (esm-apps) fix.
const UBUNTU_OTHERS: &str = r#"[
  {
    "id": "UBUNTU-CVE-2022-37434",
    "related": ["CVE-2022-37434"],
    "published": "2022-08-05T07:15:00Z",
    "modified": "2022-10-01T00:00:00Z",
    "affected": [{
      "package": {"ecosystem": "Ubuntu:22.04", "name": "zlib"},
      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2.11.dfsg-2ubuntu9.1"}]}]
    }],
    "severity": [{"type": "Ubuntu", "score": "high"}]
  },
  {
    "id": "UBUNTU-CVE-2021-20237",
    "related": ["CVE-2021-20237"],
    "published": "2021-02-19T00:00:00Z",
    "modified": "2024-03-01T00:00:00Z",
    "affected": [{
      "package": {"ecosystem": "Ubuntu:Pro:22.04:LTS", "name": "zeromq3"},
      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.3.4-2ubuntu0.1~esm1"}]}],
      "ecosystem_specific": {"availability": "Available with Ubuntu Pro: https://ubuntu.com/pro"}
    }],
    "severity": [{"type": "Ubuntu", "score": "medium"}]
  }
]"#;

#[test]
fn ubuntu_feed_names() {
    assert_eq!(
        feed_ecosystems("Ubuntu:22.04"),
        ["Ubuntu:22.04", "Ubuntu:22.04:LTS"]
    );
    assert_eq!(feed_ecosystems("Debian:12"), ["Debian:12"]);
    assert_eq!(feed_ecosystems("crates.io"), ["crates.io"]);
    let rhel = feed_ecosystems("Red Hat:9");
    assert_eq!(rhel[0], "Red Hat:9");
    for want in [
        "Red Hat:enterprise_linux:9",
        "Red Hat:enterprise_linux:9::baseos",
        "Red Hat:enterprise_linux:9::appstream",
        "Red Hat:enterprise_linux:9::crb",
    ] {
        assert!(rhel.iter().any(|e| e == want), "{want}: {rhel:?}");
    }
    assert!(!rhel.iter().any(|e| e.contains("eus") || e.contains(":8")));
}

#[test]
fn ubuntu_image_matches_lts_records_not_pro() {
    let store = MemoryStore::new();
    for (name, doc) in [("o.json", UBUNTU_OPENSSL), ("z.json", UBUNTU_OTHERS)] {
        let batch = import_bytes(name, doc.as_bytes());
        assert!(batch.skipped.is_empty(), "{:?}", batch.skipped);
        futures::executor::block_on(store.import(&batch, ImportMode::Merge, 0)).unwrap();
    }
    let tar = Layer::new()
        .file(
            "etc/os-release",
            b"PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n",
        )
        .file("var/lib/dpkg/status", UBUNTU_STATUS.as_bytes())
        .tar();
    let (_dir, scanned) = scan_one_layer(tar);
    assert_eq!(scanned.packages.len(), 4);
    let report = futures::executor::block_on(match_image(&scanned, &store, 0)).unwrap();
    // openssl under `Ubuntu:22.04:LTS` for both binaries, with the standard
    // fix (not the FIPS stream's higher one); zlib under plain
    // `Ubuntu:22.04`; nothing from the 24.04 entry; the Pro-only zeromq3
    // fix does not apply to an image that is not attached to Pro.
    assert_eq!(
        rows(&report),
        [
            (
                "UBUNTU-CVE-2022-37434",
                "zlib1g",
                "1:1.2.11.dfsg-2ubuntu9",
                Some("1:1.2.11.dfsg-2ubuntu9.1"),
                Some("high"),
                "Ubuntu:22.04",
            ),
            (
                "UBUNTU-CVE-2024-6119",
                "libssl3",
                "3.0.2-0ubuntu1.15",
                Some("3.0.2-0ubuntu1.18"),
                Some("medium"),
                "Ubuntu:22.04",
            ),
            (
                "UBUNTU-CVE-2024-6119",
                "openssl",
                "3.0.2-0ubuntu1.15",
                Some("3.0.2-0ubuntu1.18"),
                Some("medium"),
                "Ubuntu:22.04",
            ),
        ],
        "{:#?}",
        report.findings
    );
    let ssl = report
        .findings
        .iter()
        .find(|f| f.package == "libssl3")
        .unwrap();
    assert_eq!(ssl.advisory_package, "openssl");
    assert_eq!(ssl.source, "osv");

    // A 24.04 image with the same packages: only the 24.04 entry applies.
    let tar = Layer::new()
        .file("etc/os-release", b"ID=ubuntu\nVERSION_ID=\"24.04\"\n")
        .file("var/lib/dpkg/status", UBUNTU_STATUS.as_bytes())
        .tar();
    let (_dir, scanned) = scan_one_layer(tar);
    let report = futures::executor::block_on(match_image(&scanned, &store, 0)).unwrap();
    let got: Vec<(&str, Option<&str>)> = report
        .findings
        .iter()
        .map(|f| (f.package.as_str(), f.fixed_version.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("libssl3", Some("3.0.13-0ubuntu3.4")),
            ("openssl", Some("3.0.13-0ubuntu3.4")),
        ]
    );
}

// --------------------------------------------------------------- RHEL

/// An rpm header blob as stored in `rpmdb.sqlite` (no lead, no magic):
/// string tags only.
fn rpm_header(tags: &[(i32, &str)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (tag, value) in tags {
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&6u32.to_be_bytes()); // RPM_STRING_TYPE
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(value.as_bytes());
        data.push(0);
    }
    let mut out = (tags.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend(index);
    out.extend(data);
    out
}

/// The fixture database made by `rpm` (tests/fixtures/rpm), its packages
/// replaced by `(name, version-release, source rpm)`, x86_64.
fn rpmdb_with(packages: &[(&str, &str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    std::fs::write(&path, fixture("rpm/rpmdb.sqlite")).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE; PRAGMA foreign_keys=OFF; DELETE FROM Packages;",
    )
    .unwrap();
    for (name, vr, srpm) in packages {
        let (version, release) = vr.split_once('-').unwrap();
        let blob = rpm_header(&[
            (1000, name),
            (1001, version),
            (1002, release),
            (1022, "x86_64"),
            (1044, srpm),
        ]);
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
            .unwrap();
    }
    drop(conn);
    std::fs::read(&path).unwrap()
}

#[test]
fn rhel9_image_matches_red_hat_csaf_and_vex() {
    let batch = import_path(Path::new("/work/shared/testdata/vulndb/redhat")).unwrap();
    assert!(batch.skipped.is_empty(), "{:?}", batch.skipped);
    let store = MemoryStore::new();
    futures::executor::block_on(store.import(&batch, ImportMode::Merge, 0)).unwrap();

    let rpmdb = rpmdb_with(&[
        // CVE-2023-38545 (VEX): fixed in 7.76.1-26.el9_3.2 (BaseOS).
        (
            "curl",
            "7.76.1-23.el9_2.4",
            "curl-7.76.1-23.el9_2.4.src.rpm",
        ),
        (
            "libcurl",
            "7.76.1-23.el9_2.4",
            "curl-7.76.1-23.el9_2.4.src.rpm",
        ),
        // RHSA-2024:0010: fixed in 1.13.1-3.el9_3.3 (AppStream).
        (
            "tigervnc-server",
            "1.13.1-3.el9_3.1",
            "tigervnc-1.13.1-3.el9_3.1.src.rpm",
        ),
        // RHSA-2024:9371 fixes python3.9 in exactly this build, RHSA-2024:6163
        // in an older one: not affected.
        ("python3", "3.9.19-8.el9", "python3.9-3.9.19-8.el9.src.rpm"),
        // CVE-2023-4154 / CVE-2023-42670 (VEX): known_not_affected in RHEL 9.
        (
            "samba-client",
            "4.18.6-100.el9",
            "samba-4.18.6-100.el9.src.rpm",
        ),
    ]);
    let tar = Layer::new()
        .file(
            "etc/os-release",
            b"NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.3 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\n",
        )
        .file("var/lib/rpm/rpmdb.sqlite", &rpmdb)
        .tar();
    let (_dir, scanned) = scan_one_layer(tar);
    assert_eq!(scanned.packages.len(), 5, "{:?}", scanned.warnings);
    let report = futures::executor::block_on(match_image(&scanned, &store, 0)).unwrap();
    assert_eq!(
        rows(&report),
        [
            (
                "CVE-2023-38545",
                "curl",
                "7.76.1-23.el9_2.4",
                Some("7.76.1-26.el9_3.2"),
                Some("high"),
                "Red Hat:9",
            ),
            (
                "CVE-2023-38545",
                "libcurl",
                "7.76.1-23.el9_2.4",
                Some("7.76.1-26.el9_3.2"),
                Some("high"),
                "Red Hat:9",
            ),
            (
                "RHSA-2024:0010",
                "tigervnc-server",
                "1.13.1-3.el9_3.1",
                Some("1.13.1-3.el9_3.3"),
                Some("high"),
                "Red Hat:9",
            ),
        ],
        "{:#?}\n{:?}",
        report.findings,
        report.warnings
    );
    let vnc = report
        .findings
        .iter()
        .find(|f| f.id == "RHSA-2024:0010")
        .unwrap();
    assert_eq!(vnc.advisory_package, "tigervnc");
    assert_eq!(vnc.source, "redhat-csaf");
    assert_eq!(
        vnc.aliases,
        ["CVE-2023-5367", "CVE-2023-6377", "CVE-2023-6478"]
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // The same packages on RHEL 8 match none of the RHEL 9 statements (curl
    // is known_not_affected there).
    let tar = Layer::new()
        .file("etc/os-release", b"ID=\"rhel\"\nVERSION_ID=\"8.9\"\n")
        .file("var/lib/rpm/rpmdb.sqlite", &rpmdb)
        .tar();
    let (_dir, scanned) = scan_one_layer(tar);
    let report = futures::executor::block_on(match_image(&scanned, &store, 0)).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}
