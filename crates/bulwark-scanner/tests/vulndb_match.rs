//! Matching installed versions against ranges imported from real
//! advisories (`/work/shared/testdata/vulndb`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use bulwark_scanner::version::Ecosystem;
use bulwark_scanner::vulndb::{
    AffectedRange, Event, ImportBatch, MatchResult, affects, import_path,
};

const ROOT: &str = "/work/shared/testdata/vulndb";

fn load(path: &str) -> ImportBatch {
    let b = import_path(Path::new(ROOT).join(path)).unwrap();
    assert!(b.skipped.is_empty(), "{:#?}", b.skipped);
    b
}

/// Evaluates every range of `id` for (`ecosystem`, `package`) and returns
/// the answer: `None` when not affected, else the fixed version to report.
/// At most one range may match.
fn check(
    b: &ImportBatch,
    id: &str,
    ecosystem: &str,
    package: &str,
    installed: &str,
) -> Option<Option<String>> {
    let ranges: Vec<&AffectedRange> = b
        .ranges
        .iter()
        .filter(|r| r.advisory_id == id && r.ecosystem == ecosystem && r.package == package)
        .collect();
    assert!(!ranges.is_empty(), "no range {id} {ecosystem} {package}");
    let eco = Ecosystem::from_osv(ecosystem).unwrap();
    let hits: Vec<MatchResult> = ranges
        .iter()
        .map(|r| affects(r, installed, eco).unwrap())
        .filter(MatchResult::is_affected)
        .collect();
    assert!(hits.len() <= 1, "{id} {installed}: {hits:?}");
    hits.first().map(|m| m.fixed_version().map(str::to_owned))
}

type Case<'a> = (&'a str, Option<Option<&'a str>>);

fn table(b: &ImportBatch, id: &str, ecosystem: &str, package: &str, cases: &[Case<'_>]) {
    for (installed, want) in cases {
        let want = want.map(|f| f.map(str::to_owned));
        assert_eq!(
            check(b, id, ecosystem, package, installed),
            want,
            "{id} {ecosystem} {package} {installed}"
        );
    }
}

const NOT: Option<Option<&str>> = None;
const OPEN: Option<Option<&str>> = Some(None);

fn fix(v: &str) -> Option<Option<&str>> {
    Some(Some(v))
}

#[test]
fn go_stdlib() {
    let b = load("go/GO-2024-2687.json");
    table(
        &b,
        "GO-2024-2687",
        "Go",
        "stdlib",
        &[
            ("1.18", fix("1.21.9")),
            ("go1.21.3", fix("1.21.9")),
            ("1.21.8", fix("1.21.9")),
            ("1.21.9", NOT),
            ("1.21.10", NOT),
            ("1.22rc1", fix("1.22.2")),
            ("1.22.0", fix("1.22.2")),
            ("1.22.1", fix("1.22.2")),
            ("1.22.2", NOT),
            ("go1.23.0", NOT),
        ],
    );
    table(
        &b,
        "GO-2024-2687",
        "Go",
        "golang.org/x/net",
        &[
            ("v0.22.0", fix("0.23.0")),
            ("v0.23.0", NOT),
            ("v0.0.0-20230101000000-abcdefabcdef", fix("0.23.0")),
        ],
    );
}

#[test]
fn pypi_django_and_last_affected() {
    let b = load("pypi/django/PYSEC-2024-70.yaml");
    table(
        &b,
        "PYSEC-2024-70",
        "PyPI",
        "django",
        &[
            ("4.1.13", NOT),
            ("4.2", fix("4.2.15")),
            ("4.2.14", fix("4.2.15")),
            ("4.2.15", NOT),
            ("5.0rc1", NOT),
            ("5.0", fix("5.0.8")),
            ("5.0.7", fix("5.0.8")),
            ("5.0.8", NOT),
            ("5.1", NOT),
        ],
    );
    // `last_affected` is inclusive.
    let b = load("pypi/py/PYSEC-2022-42969.yaml");
    table(
        &b,
        "PYSEC-2022-42969",
        "PyPI",
        "py",
        &[("1.4.0", OPEN), ("1.11.0", OPEN), ("1.11.1", NOT)],
    );
    // Explicit `versions` with a garbage entry; name PEP 503-normalised.
    let b = load("pypi/jw.util/PYSEC-2020-341.yaml");
    table(
        &b,
        "PYSEC-2020-341",
        "PyPI",
        "jw-util",
        &[("1.0a", fix("2.3")), ("2.2", fix("2.3")), ("2.3", NOT)],
    );
}

#[test]
fn maven_log4shell_and_npm() {
    let b = load("ghsa");
    table(
        &b,
        "GHSA-jfh8-c2jp-5v3q",
        "Maven",
        "org.apache.logging.log4j:log4j-core",
        &[
            ("2.0-beta9", fix("2.3.1")),
            ("2.3", fix("2.3.1")),
            ("2.3.1", NOT),
            ("2.4", fix("2.12.2")),
            ("2.12.1", fix("2.12.2")),
            ("2.12.2", NOT),
            ("2.13.0", fix("2.15.0")),
            ("2.14.1", fix("2.15.0")),
            ("2.15.0", NOT),
            ("2.17.1", NOT),
        ],
    );
    table(
        &b,
        "GHSA-8hc4-vh64-cxmj",
        "npm",
        "Axios",
        &[
            ("1.3.1", NOT),
            ("1.3.2", fix("1.7.4")),
            ("1.7.3", fix("1.7.4")),
            ("1.7.4", NOT),
        ],
    );
    let b = load("rustsec/RUSTSEC-2016-0001.json");
    table(
        &b,
        "RUSTSEC-2016-0001",
        "crates.io",
        "openssl",
        &[("0.8.3", fix("0.9.0")), ("0.9.0", NOT), ("0.10.60", NOT)],
    );
}

#[test]
fn debian() {
    let b = load("debian-osv/CVE/2023/CVE-2023-4641.json");
    // Open in bookworm: every version affected, no fix to report.
    table(
        &b,
        "CVE-2023-4641",
        "Debian:12",
        "shadow",
        &[("1:4.13+dfsg1-1", OPEN), ("1:4.13+dfsg1-1+deb12u1", OPEN)],
    );
    let b = load("debian-osv/DSA/2023/DSA-5587-1.json");
    table(
        &b,
        "DSA-5587-1",
        "Debian:12",
        "curl",
        &[
            ("7.88.1-10", fix("7.88.1-10+deb12u5")),
            ("7.88.1-10+deb12u4", fix("7.88.1-10+deb12u5")),
            ("7.88.1-10+deb12u5~bpo11+1", fix("7.88.1-10+deb12u5")),
            ("7.88.1-10+deb12u5", NOT),
            ("7.88.1-10+deb12u12", NOT),
        ],
    );
    table(
        &b,
        "DSA-5587-1",
        "Debian:11",
        "curl",
        &[("7.74.0-1.3+deb11u10", fix("7.74.0-1.3+deb11u11"))],
    );

    let t = load("debian-tracker");
    // status open in bookworm.
    table(
        &t,
        "CVE-2016-1585",
        "Debian:12",
        "apparmor",
        &[("3.0.8-3", OPEN)],
    );
    // fixed in sid only.
    table(
        &t,
        "CVE-2016-1585",
        "Debian:sid",
        "apparmor",
        &[("3.0.8-3", fix("3.0.12-1")), ("3.0.12-1", NOT)],
    );
    // fixed_version "0": not affected at any version.
    table(
        &t,
        "CVE-2014-1424",
        "Debian:12",
        "apparmor",
        &[("3.0.8-3", NOT), ("0.1-1", NOT)],
    );
    table(
        &t,
        "CVE-2025-53603",
        "Debian:12",
        "sope",
        &[
            ("5.8.0-1", fix("5.8.0-1+deb12u1")),
            ("5.8.0-1+deb12u1", NOT),
        ],
    );
}

#[test]
fn alpine() {
    let b = load("alpine-secdb/v3.10/main.yaml");
    table(
        &b,
        "CVE-2019-10206",
        "Alpine:v3.10",
        "ansible",
        &[
            ("2.8.3-r0", fix("2.8.4-r0")),
            ("2.8.4_rc1-r0", fix("2.8.4-r0")),
            ("2.8.4-r0", NOT),
            ("2.8.5-r0", NOT),
        ],
    );
    let b = load("alpine-secdb-json/vulsio/3.20/main.json");
    // The "0" secfix key: not affected.
    table(
        &b,
        "CVE-2021-42373",
        "Alpine:v3.20",
        "busybox",
        &[("1.36.1-r29", NOT), ("1.0-r0", NOT)],
    );
    let b = load("alpine-secdb-json/vulsio/3.18/main.json");
    table(
        &b,
        "CVE-2023-38545",
        "Alpine:v3.18",
        "curl",
        &[("8.3.0-r0", fix("8.4.0-r0")), ("8.4.0-r0", NOT)],
    );
}

#[test]
fn red_hat() {
    let b = load("redhat");
    table(
        &b,
        "RHSA-2025:23414",
        "Red Hat:rhel_els:6",
        "bind",
        &[
            (
                "32:9.8.2-0.68.rc1.el6_10.16",
                fix("32:9.8.2-0.68.rc1.el6_10.17"),
            ),
            // No epoch means epoch 0: older than any epoch-32 build.
            ("9.9.9-1.el6", fix("32:9.8.2-0.68.rc1.el6_10.17")),
            ("32:9.8.2-0.68.rc1.el6_10.17", NOT),
        ],
    );
    table(
        &b,
        "CVE-2023-38545",
        "Red Hat:enterprise_linux:9::baseos",
        "curl",
        &[
            ("7.76.1-23.el9_2.4", fix("7.76.1-26.el9_3.2")),
            ("7.76.1-26.el9_3.2", NOT),
        ],
    );
    table(
        &b,
        "CVE-2023-38545",
        "Red Hat:enterprise_linux:8",
        "curl",
        &[("7.61.1-30.el8", NOT)],
    );
}

/// Over whole folders of real data: a range's own `fixed` versions are
/// never affected by it (fixed is exclusive), unless the feed also lists
/// that version as affected; and every version parses under its
/// ecosystem, except a handful of Alpine secfix keys that apk-tools
/// itself rejects (`6.6.2p1-r0`, `2021-03-27-r5`, `10.0.11-0`,
/// `4.8.0.-r1`), which make only their own range an error.
#[test]
fn fixed_versions_are_not_affected_across_real_data() {
    let mut checked = 0;
    let mut violations = Vec::new();
    let mut unparsable = std::collections::BTreeSet::new();
    for folder in [
        "go",
        "rustsec",
        "debian-osv",
        "alpine-secdb-json",
        "ghsa-osvdev-bundle",
        "redhat",
    ] {
        let b = load(folder);
        for r in &b.ranges {
            let Some(eco) = Ecosystem::from_osv(&r.ecosystem) else {
                continue;
            };
            for e in &r.events {
                let Event::Fixed(f) = e else { continue };
                checked += 1;
                match affects(r, f, eco) {
                    Ok(MatchResult::NotAffected) => {}
                    Ok(_) if r.versions.contains(f) => {}
                    Ok(m) => violations.push(format!("{} {} {f}: {m:?}", r.advisory_id, r.package)),
                    Err(err) => {
                        assert_eq!(
                            eco,
                            Ecosystem::Apk,
                            "{} {}: {err}",
                            r.advisory_id,
                            r.package
                        );
                        unparsable.insert(f.clone());
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert!(checked > 40_000, "{checked}");
    assert_eq!(
        unparsable.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "1.9.5p2-r0",
            "10.0.11-0",
            "2021-03-27-r5",
            "4.8.0.-r1",
            "6.6.2p1-r0"
        ]
    );
}
