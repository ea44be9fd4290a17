//! Imports every folder of the real vulnerability-feed test data
//! (`/work/shared/testdata/vulndb`, see its README for provenance and the
//! counts asserted here) and checks counts and specific records.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bulwark_scanner::vulndb::{
    Advisory, AffectedRange, CvssVersion, Event, FeedSource, ImportBatch, Severity, import_bytes,
    import_path,
};

const ROOT: &str = "/work/shared/testdata/vulndb";

fn data(folder: &str) -> PathBuf {
    Path::new(ROOT).join(folder)
}

/// Each folder is imported once per test binary and shared.
fn batch(folder: &'static str) -> &'static ImportBatch {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<&'static str, &'static ImportBatch>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(b) = cache.lock().unwrap().get(folder) {
        return b;
    }
    let b: &'static ImportBatch = Box::leak(Box::new(import_path(data(folder)).unwrap()));
    cache.lock().unwrap().insert(folder, b);
    b
}

fn advisory<'a>(b: &'a ImportBatch, id: &str) -> &'a Advisory {
    b.advisories
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("no advisory {id}"))
}

fn ranges<'a>(b: &'a ImportBatch, id: &str) -> Vec<&'a AffectedRange> {
    b.ranges.iter().filter(|r| r.advisory_id == id).collect()
}

fn range<'a>(b: &'a ImportBatch, id: &str, ecosystem: &str, package: &str) -> &'a AffectedRange {
    let found: Vec<_> = b
        .ranges
        .iter()
        .filter(|r| r.advisory_id == id && r.ecosystem == ecosystem && r.package == package)
        .collect();
    assert_eq!(found.len(), 1, "{id} {ecosystem} {package}: {found:#?}");
    found[0]
}

fn ev(kind: &str, v: &str) -> Event {
    let v = v.to_owned();
    match kind {
        "introduced" => Event::Introduced(v),
        "fixed" => Event::Fixed(v),
        "last_affected" => Event::LastAffected(v),
        _ => Event::Limit(v),
    }
}

fn withdrawn(b: &ImportBatch) -> usize {
    b.advisories
        .iter()
        .filter(|a| a.withdrawn.is_some())
        .count()
}

fn assert_clean(b: &ImportBatch, source: FeedSource) {
    assert!(b.skipped.is_empty(), "{:#?}", b.skipped);
    assert_eq!(b.source, Some(source));
    // Withdrawn advisories never carry ranges.
    let withdrawn: BTreeSet<&str> = b
        .advisories
        .iter()
        .filter(|a| a.withdrawn.is_some())
        .map(|a| a.id.as_str())
        .collect();
    assert!(
        b.ranges
            .iter()
            .all(|r| !withdrawn.contains(r.advisory_id.as_str()))
    );
    // Every range points at an advisory of the batch.
    let ids: BTreeSet<(FeedSource, &str)> = b
        .advisories
        .iter()
        .map(|a| (a.source, a.id.as_str()))
        .collect();
    assert!(
        b.ranges
            .iter()
            .all(|r| ids.contains(&(r.source, r.advisory_id.as_str())))
    );
}

#[test]
fn go_vulndb() {
    let b = batch("go");
    assert_clean(b, FeedSource::Osv);
    assert_eq!(b.records, 4291);
    assert_eq!(b.files_read, 4291);
    assert_eq!(b.files_ignored, 2, "LICENSE and NOTICES");
    assert_eq!(b.advisories.len(), 4291);
    assert_eq!(withdrawn(b), 17);
    // 6,106 SEMVER ranges in non-withdrawn records, 20 of them exact
    // duplicates (same package listed twice with different import paths).
    assert_eq!(b.ranges.len(), 6086);
    assert!(b.ranges.iter().all(|r| r.ecosystem == "Go"));
    // The zero timestamp is "unknown", not year 1.
    assert!(b.advisories.iter().all(|a| a.modified.is_none()));

    let a = advisory(b, "GO-2024-2687");
    assert_eq!(a.aliases, ["CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"]);
    assert_eq!(
        a.summary.as_deref(),
        Some("HTTP/2 CONTINUATION flood in net/http")
    );
    assert_eq!(a.severity, None, "the Go database carries no severity");
    assert_eq!(a.published, None);
    let r = range(b, "GO-2024-2687", "Go", "stdlib");
    assert_eq!(
        r.events,
        [
            ev("introduced", "0"),
            ev("fixed", "1.21.9"),
            ev("introduced", "1.22.0-0"),
            ev("fixed", "1.22.2")
        ]
    );
    assert_eq!(r.fixed_version.as_deref(), Some("1.22.2"));
    assert!(!r.unfixed);
    // The golang.org/x/net side of the same advisory.
    assert!(
        ranges(b, "GO-2024-2687")
            .iter()
            .any(|r| r.package == "golang.org/x/net")
    );

    let w = advisory(b, "GO-2022-0617");
    assert!(w.withdrawn.is_some());
    assert!(ranges(b, "GO-2022-0617").is_empty());
}

#[test]
fn rustsec() {
    let b = batch("rustsec");
    assert_clean(b, FeedSource::Osv);
    assert_eq!(b.records, 1206);
    assert_eq!(b.advisories.len(), 1206);
    assert_eq!(b.files_ignored, 3, "licence files");
    assert_eq!(withdrawn(b), 13);
    assert_eq!(b.ranges.len(), 1206 - 13);
    assert!(b.ranges.iter().all(|r| r.ecosystem == "crates.io"));

    let a = advisory(b, "RUSTSEC-2016-0001");
    assert_eq!(a.aliases, ["CVE-2016-10931", "GHSA-34p9-f4q3-c4r7"]);
    assert_eq!(a.cvss.len(), 1);
    assert_eq!(a.cvss[0].version, CvssVersion::V3_0);
    assert_eq!(a.cvss[0].score, Some(8.1));
    assert_eq!(a.severity, Some(Severity::High));
    assert_eq!(
        a.modified.map(|t| t.to_rfc3339()).as_deref(),
        Some("2023-06-13T13:10:24Z")
    );
    let r = range(b, "RUSTSEC-2016-0001", "crates.io", "openssl");
    assert_eq!(r.fixed_version.as_deref(), Some("0.9.0"));
    assert_eq!(r.events[0], ev("introduced", "0.0.0-0"));
    // CVSS v4 vectors exist in RustSec and get the heuristic rating only.
    let v4: Vec<_> = b
        .advisories
        .iter()
        .flat_map(|a| &a.cvss)
        .filter(|c| c.version == CvssVersion::V4_0)
        .collect();
    assert!(!v4.is_empty());
    assert!(v4.iter().all(|c| c.score.is_none() && c.severity.is_some()));
}

#[test]
fn pypi_yaml() {
    let b = batch("pypi");
    assert_clean(b, FeedSource::Osv);
    assert_eq!(b.records, 2661);
    assert_eq!(b.files_read, 2661);
    assert_eq!(b.advisories.len(), 2661);
    assert_eq!(withdrawn(b), 10);
    assert_eq!(b.ranges.len(), 2651);
    assert!(b.ranges.iter().all(|r| r.ecosystem == "PyPI"));
    // Every record has a readable modified time (266 of them unquoted YAML
    // timestamps) except one stamped with OSV's zero time.
    let unknown: Vec<&str> = b
        .advisories
        .iter()
        .filter(|a| a.modified.is_none())
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(unknown, ["PYSEC-2024-55"]);

    // Unquoted `modified: 2023-07-25T16:31:58.309647Z`.
    let a = advisory(b, "PYSEC-2023-121");
    assert_eq!(
        a.modified.map(|t| t.to_rfc3339()).as_deref(),
        Some("2023-07-25T16:31:58Z")
    );
    assert_eq!(a.aliases, ["CVE-2022-4899"]);
    let r = range(b, "PYSEC-2023-121", "PyPI", "zstd");
    assert!(r.unfixed);
    assert!(r.versions.contains(&"1.3.4.3".to_owned()));

    // The one unquoted `withdrawn:`.
    let w = advisory(b, "PYSEC-2022-43055");
    assert_eq!(
        w.withdrawn.map(|t| t.to_rfc3339()).as_deref(),
        Some("2023-08-22T06:18:00Z")
    );

    // PEP 503 normalisation: `jw.util` is stored as `jw-util`.
    let r = range(b, "PYSEC-2020-341", "PyPI", "jw-util");
    assert_eq!(r.fixed_version.as_deref(), Some("2.3"));

    let a = advisory(b, "PYSEC-2020-342");
    assert_eq!(a.severity, Some(Severity::Critical));
    assert_eq!(a.cvss[0].score, Some(9.8));
}

#[test]
fn alpine_secdb_yaml() {
    let b = batch("alpine-secdb");
    assert_clean(b, FeedSource::AlpineSecdb);
    assert_eq!(b.files_read, 18);
    assert_eq!(b.files_ignored, 1, "README.upstream.md");
    assert_eq!(b.records, 1652, "package entries");
    // 12,028 fix entries: free-text ids normalised (see alpine.rs), then
    // identical (release, package, fix, id) rows merged.
    assert_eq!(b.ranges.len(), 12_005);
    assert_eq!(b.advisories.len(), 2474);
    assert_eq!(b.ranges.iter().filter(|r| r.not_affected).count(), 5);
    let releases: BTreeSet<&str> = b.ranges.iter().map(|r| r.ecosystem.as_str()).collect();
    assert_eq!(releases.len(), 9, "v3.3 ... v3.11: {releases:?}");

    let r = range(b, "CVE-2019-10206", "Alpine:v3.10", "ansible");
    assert_eq!(r.fixed_version.as_deref(), Some("2.8.4-r0"));
    assert_eq!(r.events, [ev("introduced", "0"), ev("fixed", "2.8.4-r0")]);
    // `CVE-2018-3639   XSA-263` → CVE id with the XSA as alias.
    assert!(
        advisory(b, "CVE-2018-3639")
            .aliases
            .contains(&"XSA-263".to_owned())
    );
    // `CVE_2019-2426` normalised.
    assert!(b.advisories.iter().any(|a| a.id == "CVE-2019-2426"));
    assert!(
        b.advisories
            .iter()
            .all(|a| !a.id.contains(' ') && !a.id.contains('?'))
    );
}

#[test]
fn alpine_secdb_json() {
    let b = batch("alpine-secdb-json");
    assert_clean(b, FeedSource::AlpineSecdb);
    assert_eq!(b.files_read, 11);
    assert_eq!(
        b.records,
        3 + 355 + 246 + 383 + 257 + 408 + 255 + 414 + 256 + 416 + 258
    );
    assert_eq!(b.ranges.len(), 39_275);
    assert_eq!(b.advisories.len(), 6814);
    // The "0" (not affected) keys: 16+42+16+45+18+50+17+50+17+51 ids.
    assert_eq!(b.ranges.iter().filter(|r| r.not_affected).count(), 322);

    let na = range(b, "CVE-2021-42373", "Alpine:v3.20", "busybox");
    assert!(na.not_affected && na.events.is_empty() && na.fixed_version.is_none());
    let r = range(b, "CVE-2023-38545", "Alpine:v3.18", "curl");
    assert_eq!(r.fixed_version.as_deref(), Some("8.4.0-r0"));
    assert!(b.ranges.iter().any(|r| r.ecosystem == "Alpine:edge"));

    // The claircore excerpt equals those packages in the 2020 YAML.
    let excerpt = import_path(data("alpine-secdb-json/claircore/v3.10/community.json")).unwrap();
    let yaml = import_path(data("alpine-secdb/v3.10/community.yaml")).unwrap();
    let pkgs: BTreeSet<&str> = excerpt.ranges.iter().map(|r| r.package.as_str()).collect();
    assert_eq!(pkgs, BTreeSet::from(["botan", "cfengine", "chicken"]));
    let from_yaml: Vec<&AffectedRange> = yaml
        .ranges
        .iter()
        .filter(|r| pkgs.contains(r.package.as_str()))
        .collect();
    assert_eq!(excerpt.ranges.iter().collect::<Vec<_>>(), from_yaml);
}

#[test]
fn debian_tracker() {
    let b = batch("debian-tracker");
    assert_clean(b, FeedSource::DebianTracker);
    assert_eq!(b.files_read, 2);
    assert_eq!(b.files_ignored, 2, "LICENSE files");
    assert_eq!(b.records, 10, "(package, CVE) pairs");
    assert_eq!(b.advisories.len(), 10);
    assert_eq!(b.ranges.len(), 40);
    // `"releases": []` (vunnel edge case): an advisory with no ranges.
    assert!(ranges(b, "CVE-2022-0358").is_empty());

    let open = range(b, "CVE-2016-1585", "Debian:12", "apparmor");
    assert!(open.unfixed && open.fixed_version.is_none());
    assert_eq!(open.events, [ev("introduced", "0")]);
    assert_eq!(open.severity, Some(Severity::Low), "unimportant");
    let sid = range(b, "CVE-2016-1585", "Debian:sid", "apparmor");
    assert_eq!(sid.fixed_version.as_deref(), Some("3.0.12-1"));

    let na = range(b, "CVE-2014-1424", "Debian:12", "apparmor");
    assert!(na.not_affected && !na.unfixed);

    let sope = range(b, "CVE-2025-53603", "Debian:12", "sope");
    assert_eq!(sope.fixed_version.as_deref(), Some("5.8.0-1+deb12u1"));
    assert!(
        advisory(b, "CVE-2025-53603")
            .details
            .as_deref()
            .unwrap()
            .starts_with("In Alinto SOPE SOGo")
    );
    // `high**`: urgency from NVD, still High.
    assert_eq!(advisory(b, "CVE-2008-7220").severity, Some(Severity::High));
}

/// From the README: per source package, Debian:12 entries with a fix /
/// without one.
const DEBIAN_PER_PACKAGE: &str = "acl 1/0, apt 21/1, audit 2/0, bash 16/0, bzip2 8/0, coreutils 8/2, curl 140/5, cyrus-sasl2 8/0, db5.3 2/0, dpkg 15/0, e2fsprogs 6/0, expat 35/4, findutils 1/0, gcc-12 0/2, glibc 136/8, gmp 1/0, gnupg2 19/1, gnutls28 42/2, grep 2/0, gzip 13/0, krb5 119/4, libbsd 2/0, libcap2 3/0, libffi 1/0, libgcrypt20 12/2, libidn2 2/0, libseccomp 1/0, libsepol 4/0, libtasn1-6 13/0, libxcrypt 1/0, libxml2 92/5, libzstd 4/0, lz4 4/0, ncurses 25/2, nettle 7/0, openldap 33/5, openssl 223/2, p11-kit 3/0, pam 19/2, pcre2 7/0, perl 60/3, sensible-utils 1/0, shadow 15/4, sqlite3 51/1, systemd 47/4, tar 13/1, util-linux 20/1, xz-utils 1/0, zlib 10/1";

#[test]
fn debian_osv() {
    let b = batch("debian-osv");
    assert_clean(b, FeedSource::Osv);
    assert_eq!(b.records, 1319);
    assert_eq!(b.advisories.len(), 1319);
    assert_eq!(
        b.advisories
            .iter()
            .filter(|a| a.id.starts_with("DSA-"))
            .count(),
        13
    );
    // Every ECOSYSTEM range kept, GIT ranges and package-less entries dropped.
    assert_eq!(b.ranges.len(), 8700);
    assert!(
        b.ranges
            .iter()
            .all(|r| r.ecosystem.starts_with("Debian:") || r.ecosystem.starts_with("Alpine:"))
    );

    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for r in b.ranges.iter().filter(|r| r.ecosystem == "Debian:12") {
        if seen.insert((&r.advisory_id, &r.package, r.unfixed)) {
            let e = per.entry(r.package.as_str()).or_default();
            if r.unfixed {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
    }
    for item in DEBIAN_PER_PACKAGE.split(", ") {
        let (pkg, counts) = item.split_once(' ').unwrap();
        let (fixed, open) = counts.split_once('/').unwrap();
        let want = (fixed.parse().unwrap(), open.parse().unwrap());
        assert_eq!(per.get(pkg).copied().unwrap_or_default(), want, "{pkg}");
    }
    // 62 open (package, CVE) pairs in bookworm for the 58 packages.
    let open: usize = DEBIAN_PER_PACKAGE
        .split(", ")
        .filter_map(|item| per.get(item.split(' ').next()?))
        .map(|(_, open)| open)
        .sum();
    assert_eq!(open, 62);

    let shadow = range(b, "CVE-2023-4641", "Debian:12", "shadow");
    assert!(shadow.unfixed);
    assert!(shadow.versions.contains(&"1:4.13+dfsg1-1".to_owned()));
    assert_eq!(shadow.severity, None, "urgency 'not yet assigned'");
    let a = advisory(b, "CVE-2023-4641");
    assert_eq!(a.severity, Some(Severity::Medium));
    assert_eq!(a.cvss[0].score, Some(5.5));

    let dsa = advisory(b, "DSA-5587-1");
    assert_eq!(dsa.summary.as_deref(), Some("curl - security update"));
    let r = range(b, "DSA-5587-1", "Debian:12", "curl");
    assert_eq!(r.fixed_version.as_deref(), Some("7.88.1-10+deb12u5"));
    assert!(r.versions.contains(&"7.88.1-10+deb12u5~bpo11+1".to_owned()));
}

#[test]
fn ghsa() {
    let b = batch("ghsa");
    assert_clean(b, FeedSource::Osv);
    assert_eq!(b.records, 52);
    assert_eq!(b.advisories.len(), 52);
    assert_eq!(b.files_ignored, 1, "PROVENANCE.tsv");
    assert_eq!(b.ranges.len(), 117);
    let mut per_eco: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &b.ranges {
        per_eco
            .entry(r.ecosystem.as_str())
            .or_default()
            .insert(r.advisory_id.as_str());
    }
    let counts: BTreeMap<&str, usize> = per_eco.iter().map(|(k, v)| (*k, v.len())).collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("GitHub Actions", 1),
            ("Maven", 21),
            ("NuGet", 2),
            ("RubyGems", 1),
            ("npm", 31)
        ])
    );

    let log4shell = advisory(b, "GHSA-jfh8-c2jp-5v3q");
    assert_eq!(log4shell.aliases, ["CVE-2021-44228"]);
    assert_eq!(log4shell.severity, Some(Severity::Critical));
    assert_eq!(log4shell.cvss[0].score, Some(10.0));
    let fixes: BTreeSet<&str> = ranges(b, "GHSA-jfh8-c2jp-5v3q")
        .iter()
        .filter(|r| r.package == "org.apache.logging.log4j:log4j-core")
        .filter_map(|r| r.fixed_version.as_deref())
        .collect();
    assert_eq!(fixes, BTreeSet::from(["2.15.0", "2.3.1", "2.12.2"]));

    // Package names kept as published.
    let axios = range(b, "GHSA-8hc4-vh64-cxmj", "npm", "Axios");
    assert_eq!(axios.fixed_version.as_deref(), Some("1.7.4"));
    // No CVSS at all: the GHSA severity word is used.
    assert_eq!(
        advisory(b, "GHSA-8hc4-vh64-cxmj").severity,
        Some(Severity::High)
    );

    // CVSS v3.1 and v4.0 both present: the exact v3.1 score decides.
    let tomcat = advisory(b, "GHSA-wm9w-rjj3-j356");
    assert_eq!(tomcat.cvss.len(), 2);
    assert_eq!(tomcat.cvss[0].score, Some(7.5));
    assert_eq!(tomcat.cvss[1].version, CvssVersion::V4_0);
    assert_eq!(tomcat.severity, Some(Severity::High));

    // An only-introduced range (no fix) is open.
    assert!(
        b.ranges
            .iter()
            .any(|r| r.package == "@babel/traverse" && r.unfixed)
            || b.ranges
                .iter()
                .any(|r| r.package == "babel-traverse" && r.unfixed)
    );
}

#[test]
fn ghsa_osvdev_bundle() {
    let b = batch("ghsa-osvdev-bundle");
    assert_clean(b, FeedSource::Osv);
    assert_eq!(b.files_read, 1);
    assert_eq!(b.records, 356);
    assert_eq!(b.advisories.len(), 356);
    assert_eq!(b.ranges.len(), 901);
    let maven: BTreeSet<&str> = b
        .ranges
        .iter()
        .filter(|r| r.ecosystem == "Maven")
        .map(|r| r.package.as_str())
        .collect();
    assert_eq!(maven.len(), 147);
    let with_maven: BTreeSet<&str> = b
        .ranges
        .iter()
        .filter(|r| r.ecosystem == "Maven")
        .map(|r| r.advisory_id.as_str())
        .collect();
    assert_eq!(with_maven.len(), 356);
    let r = range(
        b,
        "GHSA-vmfg-rjjm-rjrj",
        "Maven",
        "ch.qos.logback:logback-classic",
    );
    assert_eq!(r.fixed_version.as_deref(), Some("1.2.0"));
    assert_eq!(r.versions.len(), 65);
    assert_eq!(
        advisory(b, "GHSA-vmfg-rjjm-rjrj").severity,
        Some(Severity::Critical)
    );

    // 16 advisories are in both serialisations: importing both folders
    // keeps one row each (the later `modified`).
    let ghsa = batch("ghsa");
    let both: BTreeSet<&str> = ghsa
        .advisories
        .iter()
        .map(|a| a.id.as_str())
        .filter(|id| b.advisories.iter().any(|x| x.id == *id))
        .collect();
    assert_eq!(both.len(), 16);
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        data("ghsa-osvdev-bundle/vulnerabilities.json"),
        dir.path().join("bundle.json"),
    )
    .unwrap();
    for id in &both {
        let src = find_file(&data("ghsa"), &format!("{id}.json")).unwrap();
        fs::copy(src, dir.path().join(format!("{id}.json"))).unwrap();
    }
    let merged = import_path(dir.path()).unwrap();
    assert_eq!(merged.records, 356 + 16);
    assert_eq!(merged.advisories.len(), 356);
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(p) = find_file(&path, name) {
                return Some(p);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

#[test]
fn redhat_csaf() {
    let b = batch("redhat");
    assert_clean(b, FeedSource::RedHatCsaf);
    assert_eq!(b.files_read, 11);
    assert_eq!(b.records, 11);
    assert_eq!(b.advisories.len(), 11);
    assert_eq!(
        b.advisories
            .iter()
            .filter(|a| a.id.starts_with("CVE-"))
            .count(),
        3,
        "VEX documents"
    );

    // Security advisory: id RHSA, CVEs as aliases, source RPM only.
    let a = advisory(b, "RHSA-2024:6163");
    assert_eq!(a.aliases, ["CVE-2024-8088"]);
    assert_eq!(a.severity, Some(Severity::Medium), "Moderate");
    assert_eq!(a.cvss[0].score, Some(5.3));
    let r = range(
        b,
        "RHSA-2024:6163",
        "Red Hat:enterprise_linux:9::appstream",
        "python3.9",
    );
    assert_eq!(r.fixed_version.as_deref(), Some("3.9.18-3.el9_4.5"));
    assert_eq!(ranges(b, "RHSA-2024:6163").len(), 3);

    // Epoch from the purl qualifier; a binary not affected while fixed elsewhere.
    let bind = range(b, "RHSA-2025:23414", "Red Hat:rhel_els:6", "bind");
    assert_eq!(
        bind.fixed_version.as_deref(),
        Some("32:9.8.2-0.68.rc1.el6_10.17")
    );
    assert_eq!(advisory(b, "RHSA-2025:23414").aliases.len(), 2);

    // VEX: curl fixed in RHEL 9 (newest stream's fix), not affected in 6-8.
    let vex = advisory(b, "CVE-2023-38545");
    assert_eq!(vex.severity, Some(Severity::High), "Important");
    assert!(vex.aliases.is_empty());
    let r9 = range(
        b,
        "CVE-2023-38545",
        "Red Hat:enterprise_linux:9::baseos",
        "curl",
    );
    assert_eq!(r9.fixed_version.as_deref(), Some("7.76.1-26.el9_3.2"));
    let r8 = range(b, "CVE-2023-38545", "Red Hat:enterprise_linux:8", "curl");
    assert!(r8.not_affected);
    // samba VEX: known_not_affected only.
    let samba = ranges(b, "CVE-2023-42670");
    assert!(!samba.is_empty() && samba.iter().all(|r| r.not_affected));

    // Our CVSS scores equal Red Hat's published base scores.
    let mut checked = 0;
    for path in [
        "vex/cve-2023-38545.json",
        "vex/cve-2023-4154.json",
        "vex/cve-2023-42670.json",
        "csaf/rhsa-2023_3821.json",
        "csaf/rhsa-2023_7025.json",
        "csaf/rhsa-2024_0010.json",
        "csaf/rhsa-2024_0811.json",
        "csaf/rhsa-2024_1431.json",
        "csaf/rhsa-2024_6163.json",
        "csaf/rhsa-2024_9371.json",
        "csaf/rhsa-2025_23414.json",
    ] {
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(data("redhat").join(path)).unwrap()).unwrap();
        for v in doc["vulnerabilities"].as_array().unwrap() {
            for s in v["scores"].as_array().unwrap() {
                let vector = s["cvss_v3"]["vectorString"].as_str().unwrap();
                let want = s["cvss_v3"]["baseScore"].as_f64().unwrap();
                let got = bulwark_scanner::vulndb::CvssScore::from_vector(vector).unwrap();
                assert_eq!(got.score, Some(want), "{path} {vector}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 24, "one score per vulnerability");
}

#[test]
fn importing_twice_gives_identical_batches() {
    for f in ["pypi", "alpine-secdb", "redhat", "debian-tracker", "ghsa"] {
        let again = import_path(data(f)).unwrap();
        assert_eq!(&again, batch(f), "{f}");
    }
}

/// A few files from several feeds, as loose files and as archives.
fn sample_files() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("go/GO-2024-2687.json", data("go/GO-2024-2687.json")),
        (
            "pypi/django/PYSEC-2024-70.yaml",
            data("pypi/django/PYSEC-2024-70.yaml"),
        ),
        (
            "alpine/v3.10/main.yaml",
            data("alpine-secdb/v3.10/main.yaml"),
        ),
        (
            "alpine/3.20/main.json",
            data("alpine-secdb-json/vulsio/3.20/main.json"),
        ),
        (
            "debian/tracker.json",
            data("debian-tracker/osv.dev/debian_security_tracker_mock.json"),
        ),
        (
            "redhat/rhsa-2024_6163.json",
            data("redhat/csaf/rhsa-2024_6163.json"),
        ),
        (
            "bundle/vulnerabilities.json",
            data("ghsa-osvdev-bundle/vulnerabilities.json"),
        ),
        ("LICENSE", data("go/LICENSE")),
    ]
}

fn same_content(a: &ImportBatch, b: &ImportBatch) {
    assert_eq!(a.advisories, b.advisories);
    assert_eq!(a.ranges, b.ranges);
    assert_eq!(a.records, b.records);
    assert_eq!(a.files_read, b.files_read);
    assert_eq!(a.files_ignored, b.files_ignored);
    assert_eq!(a.source, b.source);
    assert_eq!(a.skipped.len(), b.skipped.len());
}

#[test]
fn archives_import_like_loose_files() {
    let dir = tempfile::tempdir().unwrap();
    let loose = dir.path().join("loose");
    for (name, src) in sample_files() {
        let dst = loose.join(name);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(src, dst).unwrap();
    }
    let expected = import_path(&loose).unwrap();
    assert!(expected.skipped.is_empty(), "{:#?}", expected.skipped);
    assert_eq!(expected.files_read, 7);
    assert_eq!(expected.files_ignored, 1);
    assert_eq!(expected.source, None, "mixed formats");
    assert_eq!(expected.records, 1 + 1 + 166 + 255 + 3 + 1 + 356);
    assert!(expected.advisories.iter().any(|a| a.id == "GO-2024-2687"));

    // Zip, deflated, entries in reverse order.
    let zip_path = dir.path().join("feeds.zip");
    {
        let mut zip = zip::ZipWriter::new(fs::File::create(&zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.add_directory("go/", opts).unwrap();
        for (name, src) in sample_files().into_iter().rev() {
            zip.start_file(name, opts).unwrap();
            zip.write_all(&fs::read(src).unwrap()).unwrap();
        }
        zip.finish().unwrap();
    }
    let from_zip = import_path(&zip_path).unwrap();
    same_content(&from_zip, &expected);
    let from_zip_bytes = import_bytes("feeds.zip", &fs::read(&zip_path).unwrap());
    same_content(&from_zip_bytes, &expected);

    // tar.gz.
    let tgz_path = dir.path().join("feeds.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&tgz_path).unwrap(),
            flate2::Compression::default(),
        );
        let mut tar = tar::Builder::new(gz);
        for (name, src) in sample_files() {
            tar.append_path_with_name(src, name).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }
    let from_tgz = import_path(&tgz_path).unwrap();
    same_content(&from_tgz, &expected);

    // Plain tar, found while walking a directory.
    let walk = dir.path().join("walk");
    fs::create_dir_all(&walk).unwrap();
    {
        let mut tar = tar::Builder::new(fs::File::create(walk.join("feeds.tar")).unwrap());
        for (name, src) in sample_files() {
            tar.append_path_with_name(src, name).unwrap();
        }
        tar.finish().unwrap();
    }
    let from_walk = import_path(&walk).unwrap();
    same_content(&from_walk, &expected);
}

#[test]
fn bad_files_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(data("go/GO-2024-2687.json"), dir.path().join("good.json")).unwrap();
    fs::write(
        dir.path().join("truncated.json"),
        b"{\"id\": \"GO-1\", \"affected\": [",
    )
    .unwrap();
    fs::write(dir.path().join("other.json"), b"{\"some\": \"thing\"}").unwrap();
    fs::write(dir.path().join("bad.yaml"), b"id: X\naffected: [{ranges: [{type: ECOSYSTEM, events: [{}]}], package: {ecosystem: PyPI, name: x}}]\n").unwrap();
    fs::write(dir.path().join("nested.zip"), b"PK").unwrap();
    fs::create_dir(dir.path().join(".git")).unwrap();
    fs::write(dir.path().join(".git/x.json"), b"garbage").unwrap();
    let b = import_path(dir.path()).unwrap();
    assert_eq!(b.advisories.len(), 1);
    assert_eq!(b.files_read, 1);
    let skipped: BTreeSet<String> = b
        .skipped
        .iter()
        .map(|s| {
            Path::new(&s.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        skipped,
        BTreeSet::from([
            "bad.yaml".to_owned(),
            "nested.zip".to_owned(),
            "other.json".to_owned(),
            "truncated.json".to_owned()
        ]),
        "{:#?}",
        b.skipped
    );
    assert!(import_path(dir.path().join("missing")).is_err());
}
