#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scanning in the server, end to end: the real `bulwark serve`, real Debian tracker and
//! Debian OSV records (shared/testdata/vulndb) imported with `bulwark vulndb import`, an image
//! with a dpkg database pushed over HTTP. The push queues a scan; the scan API shows the
//! findings and the grade; a CycloneDX SBOM is attached as a referrer. Importing a newer
//! record makes the rescan match the stored inventory again (the layer blobs are removed from
//! the disk first, so a re-read would fail) and record a `scan.new_critical` event. Readers
//! of another project cannot see the results. A multi-platform index gets one scan per
//! platform image and a per-platform summary; images pushed while scanning was off are
//! backfilled, on request and on start.

// Shared with the client tests; this file uses only the image builders.
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bulwark_testkit::Auth;
use bulwark_testkit::{TestServer, push_blob, push_manifest, query_encode, sha256_digest};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bulwark-scanner/tests/fixtures"
);
const VULNDB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/vulndb"
);
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(rel)).unwrap()
}

fn feed(rel: &str) -> String {
    Path::new(VULNDB).join(rel).to_str().unwrap().to_owned()
}

/// `bulwark vulndb import` into the running server's database (`envs`: the server's
/// `BULWARK_DATABASE__URL`, if any).
fn import(data_dir: &Path, envs: &[(&str, &str)], path: &str) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(["vulndb", "import", path])
        .env("BULWARK_DATA_DIR", data_dir)
        .envs(envs.iter().copied())
        .env_remove("BULWARK_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dpkg(package: &str, source: &str, version: &str) -> String {
    format!(
        "Package: {package}\nStatus: install ok installed\nPriority: optional\n\
         Architecture: amd64\nSource: {source}\nVersion: {version}\n\
         Description: {package} for the scanner tests\n\n"
    )
}

fn scan_target(repo: &str, digest: &str) -> String {
    format!(
        "/repositories/manifests/scan?repository={}&digest={}",
        query_encode(repo),
        query_encode(digest)
    )
}

/// Polls the scan endpoint until `done(result)`.
fn wait_for(
    s: &TestServer,
    repo: &str,
    digest: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        let resp = s.api(Auth::Admin, "GET", &scan_target(repo, digest), None);
        if resp.status == 200 {
            let v = resp.json();
            assert_ne!(v["status"], "failed", "{v:#}\n{}", s.log());
            if done(&v) {
                return v;
            }
            last = format!("{v:#}");
        } else {
            last = format!("{} {}", resp.status, resp.text());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out waiting for {what}; last answer: {last}\n--- server log ---\n{}",
        s.log()
    );
}

fn finding<'a>(scan: &'a Value, package: &str, id: &str) -> &'a Value {
    scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["package"] == package && f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} for {package} in {:#}", scan["findings"]))
}

fn has_finding(scan: &Value, package: &str, id: &str) -> bool {
    scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["package"] == package && f["id"] == id)
}

/// Pushes a Debian 12 image for linux/`arch` whose dpkg database lists `packages` (name,
/// source, version) as `reference` (a tag, or its digest).
fn push_debian(
    s: &TestServer,
    repo: &str,
    reference: Option<&str>,
    arch: &str,
    packages: &[(&str, &str, &str)],
) -> support::Image {
    let status: String = packages.iter().map(|(p, src, v)| dpkg(p, src, v)).collect();
    let img = support::image(
        arch,
        &[
            vec![("etc/os-release", fixture("os-release/debian-12"))],
            vec![("var/lib/dpkg/status", status.into_bytes())],
        ],
    );
    let base = s.base_url();
    push_blob(&base, repo, &img.config.bytes);
    for l in &img.layers {
        push_blob(&base, repo, &l.bytes);
    }
    let digest = push_manifest(
        &base,
        repo,
        reference.unwrap_or(&img.manifest.digest),
        support::OCI_MANIFEST,
        &img.manifest.bytes,
    );
    assert_eq!(digest, img.manifest.digest);
    img
}

/// Pushes a Debian 12 image whose dpkg database lists expat, sope and zlib; returns its
/// manifest digest and layer digests.
fn push_image(s: &TestServer, repo: &str) -> (String, Vec<String>) {
    let img = push_debian(
        s,
        repo,
        Some("v1"),
        "amd64",
        &[
            ("zlib1g", "zlib", "1:1.2.13.dfsg-1"),
            ("libexpat1", "expat", "2.5.0-1"),
            ("libsope1", "sope", "5.8.0-1"),
        ],
    );
    (
        img.manifest.digest.clone(),
        img.layers.iter().map(|l| l.digest.clone()).collect(),
    )
}

/// The value of the unlabelled or exactly-labelled series `series` (as the exporter prints
/// it, e.g. `bulwark_scan_jobs_total{outcome="scanned"}`) in a scrape.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `/metrics` counts scan jobs by outcome, times the scans and shows the shared queue.
#[test]
fn scan_jobs_show_in_metrics() {
    let s = TestServer::start_with(
        Path::new(env!("CARGO_BIN_EXE_bulwark")),
        &[("BULWARK_GC__INTERVAL_SECS", "0")],
    );
    let scrape = || {
        let r = s.get_as(Auth::Anonymous, "/metrics");
        r.expect_status(200);
        r.text()
    };
    let before = scrape();
    for outcome in ["scanned", "index", "retried", "failed", "lease_lost"] {
        let series = format!("bulwark_scan_jobs_total{{outcome=\"{outcome}\"}}");
        assert_eq!(metric(&before, &series), Some(0.0), "{before}");
    }

    s.create_project("scans", "private");
    let (digest, _) = push_image(&s, "scans/app");
    wait_for(&s, "scans/app", &digest, "the scan on push", |v| {
        v["status"] == "done"
    });
    // A layer that is not a tar archive: the scan fails.
    let base = s.base_url();
    let junk = b"not a tar archive".repeat(64);
    let junk_digest = push_blob(&base, "scans/junk", &junk);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = push_blob(&base, "scans/junk", config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": support::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": junk_digest, "size": junk.len()}],
    })
    .to_string();
    push_manifest(
        &base,
        "scans/junk",
        "v1",
        support::OCI_MANIFEST,
        manifest.as_bytes(),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = scrape();
        let outcome = |o: &str| {
            metric(&m, &format!("bulwark_scan_jobs_total{{outcome=\"{o}\"}}")).unwrap_or(-1.0)
        };
        let settled = outcome("scanned") == 1.0
            && outcome("failed") + outcome("retried") >= 1.0
            && metric(&m, "bulwark_scan_duration_seconds_count") == Some(1.0)
            && metric(&m, "bulwark_scan_jobs_queued") == Some(0.0)
            && metric(&m, "bulwark_scan_jobs_running") == Some(0.0);
        if settled {
            assert_eq!(outcome("lease_lost"), 0.0);
            assert!(
                m.contains("bulwark_scan_duration_seconds_bucket{le=\"600\"} 1"),
                "{m}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scan metrics did not settle:\n{m}\n--- server log ---\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn scan_on_push_sbom_referrer_and_rescan_on_vulndb_update() {
    scan_flow(&[]);
}

/// The same on PostgreSQL metadata, when `BULWARK_TEST_POSTGRES_URL` names a server.
#[test]
fn scan_on_push_and_rescan_on_postgres() {
    let Ok(admin) = std::env::var("BULWARK_TEST_POSTGRES_URL") else {
        println!("skipped: BULWARK_TEST_POSTGRES_URL not set");
        return;
    };
    let db = support::scale::Database::create(&admin);
    scan_flow(&[("BULWARK_DATABASE__URL", db.url.as_str())]);
}

fn scan_flow(db: &[(&str, &str)]) {
    let mut envs = vec![
        ("BULWARK_SCANNER__RESCAN_INTERVAL_SECS", "1"),
        ("BULWARK_GC__INTERVAL_SECS", "0"),
    ];
    envs.extend_from_slice(db);
    let s = TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_bulwark")), &envs);
    // The Debian tracker only: sope's CVE, not yet expat's.
    import(s.data_dir(), db, &feed("debian-tracker"));
    s.create_project("scans", "private");
    let repo = "scans/app";
    let (digest, layers) = push_image(&s, repo);

    let scan = wait_for(&s, repo, &digest, "the scan on push", |v| {
        v["status"] == "done"
    });
    assert_eq!(scan["repository"], repo);
    assert_eq!(scan["digest"], digest);
    let f = finding(&scan, "libsope1", "CVE-2025-53603");
    assert_eq!(f["source"], "debian-tracker");
    assert_eq!(f["installed_version"], "5.8.0-1");
    assert_eq!(f["fixed_version"], "5.8.0-1+deb12u1");
    assert_eq!(f["layer"], 1);
    assert!(
        !has_finding(&scan, "libexpat1", "CVE-2024-45492"),
        "not imported yet"
    );
    let summary = &scan["summary"];
    assert_eq!(summary["packages"], 3);
    assert_eq!(
        summary["total"].as_u64().unwrap(),
        scan["findings"].as_array().unwrap().len() as u64
    );
    assert_eq!(summary["critical"], 0, "{scan:#}");
    let grade_before = summary["grade"].as_str().unwrap().to_owned();
    assert_ne!(grade_before, "F", "{scan:#}");
    assert_eq!(scan["report_summary"]["grade"], grade_before.as_str());
    let scanned_at = scan["scanned_at"].as_i64().unwrap();
    let generation = scan["vulndb_generation"].as_i64().unwrap();
    assert!(generation > 0);
    assert!(scan["lint"]["findings"].is_array());

    // The CycloneDX SBOM is a referrer of the image.
    let resp = s.get(&format!("/v2/{repo}/referrers/{digest}"));
    resp.expect_status(200);
    let index = resp.json();
    let sboms: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == CYCLONEDX)
        .collect();
    assert_eq!(sboms.len(), 1, "{index:#}");
    let sbom_manifest = s.get(&format!(
        "/v2/{repo}/manifests/{}",
        sboms[0]["digest"].as_str().unwrap()
    ));
    sbom_manifest.expect_status(200);
    let m = sbom_manifest.json();
    assert_eq!(m["subject"]["digest"], digest);
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let doc = s.get(&format!("/v2/{repo}/blobs/{layer}"));
    doc.expect_status(200);
    let doc = doc.json();
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.5");
    let names: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.contains(&"libexpat1"), "{names:?}");
    // The SBOM artifact itself is not scanned.
    let sbom_digest = sboms[0]["digest"].as_str().unwrap();
    s.api(Auth::Admin, "GET", &scan_target(repo, sbom_digest), None)
        .expect_status(404);

    // The SBOM endpoint, both formats.
    let sbom_target = |format: &str| {
        format!(
            "/repositories/manifests/sbom?repository={}&digest={}&format={format}",
            query_encode(repo),
            query_encode(&digest)
        )
    };
    let cdx = s.api(Auth::Admin, "GET", &sbom_target("cyclonedx"), None);
    cdx.expect_status(200);
    assert_eq!(cdx.json()["bomFormat"], "CycloneDX");
    let spdx = s.api(Auth::Admin, "GET", &sbom_target("spdx"), None);
    spdx.expect_status(200);
    assert_eq!(spdx.json()["spdxVersion"], "SPDX-2.3");
    s.api(Auth::Admin, "GET", &sbom_target("xml"), None)
        .expect_status(400);

    // Remove the layers from the disk: a rescan must not need them.
    for l in &layers {
        let hex = l.trim_start_matches("sha256:");
        let path = s.data_dir().join("blobs/sha256").join(&hex[..2]).join(hex);
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    // A newer record: expat's critical CVE, fixed in bookworm's 2.5.0-1+deb12u1.
    import(
        s.data_dir(),
        db,
        &feed("debian-osv/CVE/2024/CVE-2024-45492.json"),
    );
    let rescanned = wait_for(&s, repo, &digest, "the rescan", |v| {
        v["vulndb_generation"].as_i64().unwrap_or(0) > generation
    });
    let f = finding(&rescanned, "libexpat1", "CVE-2024-45492");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["fixed_version"], "2.5.0-1+deb12u1");
    assert_eq!(f["source"], "osv");
    assert_eq!(f["layer"], 1);
    finding(&rescanned, "libsope1", "CVE-2025-53603");
    assert_eq!(
        rescanned["scanned_at"], scanned_at,
        "the layers were not read again"
    );
    assert!(rescanned["matched_at"].as_i64().unwrap() >= scanned_at);
    assert!(rescanned["summary"]["critical"].as_u64().unwrap() >= 1);
    // Published 2024-08-30: a fixable Critical older than a year.
    assert_eq!(rescanned["summary"]["grade"], "F", "{rescanned:#}");
    assert_eq!(
        rescanned["report_summary"]["grade_cause"]["id"],
        "CVE-2024-45492"
    );

    // The event.
    let events = s.api(
        Auth::Admin,
        "GET",
        "/scan/events?kind=scan.new_critical",
        None,
    );
    events.expect_status(200);
    let events = events.json();
    let ours: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["digest"] == digest.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{events:#}");
    assert_eq!(ours[0]["kind"], "scan.new_critical");
    assert_eq!(ours[0]["repository"], repo);
    assert_eq!(ours[0]["detail"]["grade_before"], grade_before.as_str());
    assert_eq!(ours[0]["detail"]["grade"], "F");
    let ids: Vec<&str> = ours[0]["detail"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"CVE-2024-45492"), "{ids:?}");
    assert!(!ids.contains(&"CVE-2025-53603"), "not new: {ids:?}");
    assert!(
        s.log().contains("gained critical/high vulnerabilities"),
        "the warning is logged"
    );

    // A re-queued scan needs the layers, which are gone: it fails, the stored result stays.
    let queued = s.api(Auth::Admin, "POST", &scan_target(repo, &digest), None);
    queued.expect_status(202);
    assert_eq!(queued.json()["queued"], true);
}

#[test]
fn scan_results_follow_repository_permissions() {
    let s = TestServer::start_with(
        Path::new(env!("CARGO_BIN_EXE_bulwark")),
        &[("BULWARK_GC__INTERVAL_SECS", "0")],
    );
    s.create_project("secret", "private");
    s.create_project("elsewhere", "private");
    s.create_user("reader", "reader-password-1");
    s.create_user("outsider", "outsider-password-1");
    s.add_member("secret", "reader", "reader");
    s.add_member("elsewhere", "outsider", "developer");
    let repo = "secret/app";
    let (digest, _) = push_image(&s, repo);
    wait_for(&s, repo, &digest, "the scan", |v| v["status"] == "done");

    let reader = Auth::Basic("reader", "reader-password-1");
    let outsider = Auth::Basic("outsider", "outsider-password-1");
    // A member who may pull reads the result, but may not queue a scan (push).
    let ok = s.api(reader, "GET", &scan_target(repo, &digest), None);
    ok.expect_status(200);
    assert_eq!(ok.json()["status"], "done");
    let denied = s.api(reader, "POST", &scan_target(repo, &digest), None);
    assert_eq!(denied.status, 403, "{}", denied.text());
    // A reader of another project sees nothing.
    let resp = s.api(outsider, "GET", &scan_target(repo, &digest), None);
    assert!(
        resp.status == 403 || resp.status == 404,
        "{} {}",
        resp.status,
        resp.text()
    );
    let sbom = format!(
        "/repositories/manifests/sbom?repository={}&digest={}",
        query_encode(repo),
        query_encode(&digest)
    );
    let resp = s.api(outsider, "GET", &sbom, None);
    assert!(resp.status == 403 || resp.status == 404, "{}", resp.status);
    // Events are for system admins.
    s.api(outsider, "GET", "/scan/events", None)
        .expect_status(403);
    // The digest must be a manifest of the repository named.
    let other = s.api(
        Auth::Admin,
        "GET",
        &scan_target("elsewhere/app", &digest),
        None,
    );
    assert_eq!(other.status, 404, "{}", other.text());
    // Anonymous callers get the challenge.
    s.api(Auth::Anonymous, "GET", &scan_target(repo, &digest), None)
        .expect_status(401);
}

/// A BuildKit-style attestation manifest (in-toto layer) for `subject`, pushed by digest;
/// returns its index entry (platform `unknown/unknown`).
fn push_attestation(s: &TestServer, repo: &str, subject: &str) -> Value {
    let base = s.base_url();
    let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[]}"#;
    push_blob(&base, repo, config);
    push_blob(&base, repo, statement);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": support::OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.in-toto+json",
            "digest": sha256_digest(statement),
            "size": statement.len(),
            "annotations": { "in-toto.io/predicate-type": "https://spdx.dev/Document" },
        }],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256_digest(&bytes);
    push_manifest(&base, repo, &digest, support::OCI_MANIFEST, &bytes);
    json!({
        "mediaType": support::OCI_MANIFEST,
        "digest": digest,
        "size": bytes.len(),
        "platform": { "architecture": "unknown", "os": "unknown" },
        "annotations": {
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": subject,
        },
    })
}

fn platform_entry(img: &support::Image, arch: &str) -> Value {
    json!({
        "mediaType": support::OCI_MANIFEST,
        "digest": img.manifest.digest,
        "size": img.manifest.bytes.len(),
        "platform": { "architecture": arch, "os": "linux" },
    })
}

/// An index over linux/amd64 and linux/arm64 images with different packages, plus an
/// attestation manifest: each platform image is scanned on its own, the attestation is not,
/// and the index's scan answer lists the platforms with their own status, counts and grade.
#[test]
fn every_platform_of_an_index_is_scanned() {
    let s = TestServer::start_with(
        Path::new(env!("CARGO_BIN_EXE_bulwark")),
        &[
            ("BULWARK_GC__INTERVAL_SECS", "0"),
            ("BULWARK_SCANNER__RESCAN_INTERVAL_SECS", "0"),
            // Heartbeats every second while scanning.
            ("BULWARK_SCANNER__LEASE_SECS", "3"),
        ],
    );
    import(s.data_dir(), &[], &feed("debian-tracker"));
    s.create_project("multi", "private");
    let repo = "multi/app";
    // sope has a Debian tracker CVE; the arm64 image's packages have none.
    let amd64 = push_debian(
        &s,
        repo,
        None,
        "amd64",
        &[
            ("libexpat1", "expat", "2.5.0-1"),
            ("libsope1", "sope", "5.8.0-1"),
        ],
    );
    let arm64 = push_debian(
        &s,
        repo,
        None,
        "arm64",
        &[("bulwark-arm-tool", "bulwark-arm-tool", "1.0-1")],
    );
    let attestation = push_attestation(&s, repo, &amd64.manifest.digest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": support::OCI_INDEX,
        "manifests": [platform_entry(&amd64, "amd64"), platform_entry(&arm64, "arm64"), attestation],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = push_manifest(
        &s.base_url(),
        repo,
        "multi",
        support::OCI_INDEX,
        &index_bytes,
    );

    let scan = wait_for(&s, repo, &index_digest, "both platforms", |v| {
        v["status"] == "done"
    });
    assert_eq!(scan["digest"], index_digest);
    assert!(scan["summary"].is_null(), "{scan:#}");
    assert_eq!(scan["findings"].as_array().unwrap().len(), 0);
    let platforms = scan["platforms"].as_array().unwrap();
    assert_eq!(
        platforms.len(),
        2,
        "the attestation is not a platform: {scan:#}"
    );
    let (a, b) = (&platforms[0], &platforms[1]);
    assert_eq!(a["platform"], "linux/amd64");
    assert_eq!(a["digest"], amd64.manifest.digest);
    assert_eq!(a["status"], "done");
    assert_eq!(a["summary"]["packages"], 2);
    assert!(a["summary"]["total"].as_u64().unwrap() >= 1, "{a:#}");
    assert!(a["scanned_at"].is_i64());
    assert_eq!(b["platform"], "linux/arm64");
    assert_eq!(b["digest"], arm64.manifest.digest);
    assert_eq!(b["status"], "done");
    assert_eq!(b["summary"]["packages"], 1);
    assert_eq!(b["summary"]["total"], 0, "{b:#}");
    assert_eq!(b["summary"]["grade"], "A");

    // Each platform image has its own result (and SBOM referrer); the attestation none.
    let one = wait_for(&s, repo, &amd64.manifest.digest, "amd64", |v| {
        v["status"] == "done"
    });
    finding(&one, "libsope1", "CVE-2025-53603");
    assert!(one.get("platforms").is_none(), "{one:#}");
    let other = wait_for(&s, repo, &arm64.manifest.digest, "arm64", |v| {
        v["status"] == "done"
    });
    assert!(!has_finding(&other, "libsope1", "CVE-2025-53603"));
    assert_eq!(other["summary"]["packages"], 1);
    let att = attestation_digest(&index);
    s.api(Auth::Admin, "GET", &scan_target(repo, &att), None)
        .expect_status(404);
    for digest in [&amd64.manifest.digest, &arm64.manifest.digest] {
        let referrers = s.get(&format!("/v2/{repo}/referrers/{digest}"));
        referrers.expect_status(200);
        let sboms = referrers.json()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["artifactType"] == CYCLONEDX)
            .count();
        assert_eq!(sboms, 1, "{digest}");
    }

    // Queueing a scan of the index queues every platform image again.
    let queued = s.api(Auth::Admin, "POST", &scan_target(repo, &index_digest), None);
    queued.expect_status(202);
    assert_eq!(queued.json()["queued"], true);
    wait_for(
        &s,
        repo,
        &index_digest,
        "the rescan of both platforms",
        |v| {
            v["status"] == "done"
                && v["platforms"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["attempts"] == 1))
        },
    );
}

fn attestation_digest(index: &Value) -> String {
    index["manifests"][2]["digest"].as_str().unwrap().to_owned()
}

fn stop(s: &mut TestServer) {
    s.terminate();
    assert!(
        s.wait_exit(Duration::from_secs(30)).is_some(),
        "the server did not stop\n{}",
        s.log()
    );
}

/// Images pushed while scanning was off get scanned without a new push: through
/// `POST /api/v1/scan/backfill` (system admins), and when a server starts with scanning on.
#[test]
fn images_pushed_while_scanning_was_off_are_backfilled() {
    backfill_flow(&[]);
}

/// The same on PostgreSQL metadata, when `BULWARK_TEST_POSTGRES_URL` names a server.
#[test]
fn images_pushed_while_scanning_was_off_are_backfilled_on_postgres() {
    let Ok(admin) = std::env::var("BULWARK_TEST_POSTGRES_URL") else {
        println!("skipped: BULWARK_TEST_POSTGRES_URL not set");
        return;
    };
    let db = support::scale::Database::create(&admin);
    backfill_flow(&[("BULWARK_DATABASE__URL", db.url.as_str())]);
}

fn backfill_flow(db: &[(&str, &str)]) {
    let bin = Path::new(env!("CARGO_BIN_EXE_bulwark"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut envs: Vec<(&str, &str)> = vec![("BULWARK_GC__INTERVAL_SECS", "0")];
        envs.extend_from_slice(extra);
        envs.extend_from_slice(db);
        envs
    };
    let off = with(&[("BULWARK_SCANNER__ENABLED", "false")]);
    let repo = "old/app";

    let mut s = TestServer::start_in(bin, data.clone(), &off);
    s.create_project("old", "private");
    s.create_user("dev", "dev-password-1");
    s.add_member("old", "dev", "developer");
    let (first, _) = push_image(&s, repo);
    stop(&mut s);

    // Scanning on, but no backfill at start: nothing queued the image.
    let mut s = TestServer::start_in(
        bin,
        data.clone(),
        &with(&[("BULWARK_SCANNER__BACKFILL_ON_START", "false")]),
    );
    std::thread::sleep(Duration::from_millis(500));
    s.api(Auth::Admin, "GET", &scan_target(repo, &first), None)
        .expect_status(404);
    let denied = s.api(
        Auth::Basic("dev", "dev-password-1"),
        "POST",
        "/scan/backfill",
        None,
    );
    assert_eq!(denied.status, 403, "{}", denied.text());
    let backfill = s.api(Auth::Admin, "POST", "/scan/backfill", None);
    backfill.expect_status(200);
    assert_eq!(backfill.json()["queued"], 1);
    let scan = wait_for(&s, repo, &first, "the backfilled scan", |v| {
        v["status"] == "done"
    });
    assert_eq!(scan["summary"]["packages"], 3);
    // Scanned, so a second backfill has nothing to queue.
    let again = s.api(Auth::Admin, "POST", "/scan/backfill", None);
    again.expect_status(200);
    assert_eq!(again.json()["queued"], 0);
    stop(&mut s);

    // Another image pushed while scanning is off; a plain start backfills it.
    let mut s = TestServer::start_in(bin, data.clone(), &off);
    let second = push_debian(
        &s,
        repo,
        Some("v2"),
        "amd64",
        &[("libexpat1", "expat", "2.5.0-1")],
    )
    .manifest
    .digest;
    s.api(Auth::Admin, "POST", "/scan/backfill", None)
        .expect_status(404);
    stop(&mut s);
    let s = TestServer::start_in(bin, data, &with(&[]));
    let scan = wait_for(&s, repo, &second, "the scan backfilled at start", |v| {
        v["status"] == "done"
    });
    assert_eq!(scan["summary"]["packages"], 1);
    assert_eq!(scan["attempts"], 1);
    // The first image was not queued again.
    let first_scan = s.api(Auth::Admin, "GET", &scan_target(repo, &first), None);
    first_scan.expect_status(200);
    assert_eq!(first_scan.json()["attempts"], 1);
    assert_eq!(first_scan.json()["status"], "done");
}
