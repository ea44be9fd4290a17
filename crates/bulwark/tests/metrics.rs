//! `GET /metrics` of the real binary: HTTP request series per route class, garbage-collection
//! results and progress after runs through `/api/v1/gc`, and the optional bearer token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use bulwark_testkit::{Auth, TestServer, push_blob, push_manifest, random_bytes};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const TEXT_FORMAT: &str = "text/plain; version=0.0.4";

/// The value of the sample `name{labels}` (labels in any order, and exactly these), if any.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    want.sort();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, mut got) = match series.split_once('{') {
                Some((n, rest)) => (
                    n,
                    rest.strip_suffix('}')?
                        .split(',')
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            got.sort();
            (n == name && got == want).then(|| value.parse().unwrap())
        })
}

fn scrape(server: &TestServer) -> String {
    let r = server.get_as(Auth::Anonymous, "/metrics");
    r.expect_status(200);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with(TEXT_FORMAT), "content type {ct}");
    r.text()
}

fn manifest(config: &str, config_len: usize, layer: &str, layer_len: usize, note: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_len}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_len}}}],"annotations":{{"note":"{note}"}}}}"#
    )
    .into_bytes()
}

#[test]
fn http_and_gc_metrics_follow_what_the_server_did() {
    let server = TestServer::start_with(
        Path::new(BIN),
        &[
            ("BULWARK_GC__INTERVAL_SECS", "0"),
            // Scan-on-push would add SBOM referrers, changing what GC finds.
            ("BULWARK_SCANNER__ENABLED", "false"),
        ],
    );
    let base = server.base_url();

    // Nothing has been collected yet; the run counters start at zero so that alerts on
    // their increase see the first one.
    let before = scrape(&server);
    for outcome in ["completed", "dry_run", "failed"] {
        assert_eq!(
            sample(&before, "bulwark_gc_runs_total", &[("outcome", outcome)]),
            Some(0.0),
            "{before}"
        );
    }
    assert_eq!(
        sample(&before, "bulwark_gc_running", &[]),
        Some(0.0),
        "{before}"
    );

    let config = br#"{"os":"linux","seed":7}"#.to_vec();
    let layer = random_bytes(7, 4096);
    let config_digest = push_blob(&base, "team/app", &config);
    let layer_digest = push_blob(&base, "team/app", &layer);
    let tagged = manifest(
        &config_digest,
        config.len(),
        &layer_digest,
        layer.len(),
        "tagged",
    );
    push_manifest(&base, "team/app", "v1", OCI_MANIFEST, &tagged);
    // An untagged manifest nothing refers to: GC's to delete.
    let untagged = manifest(
        &config_digest,
        config.len(),
        &layer_digest,
        layer.len(),
        "loose",
    );
    let untagged_digest = bulwark_testkit::sha256_digest(&untagged);
    push_manifest(&base, "team/app", &untagged_digest, OCI_MANIFEST, &untagged);
    // A blob no manifest uses: GC's to delete, 20 000 bytes.
    let junk = random_bytes(8, 20_000);
    let junk_digest = push_blob(&base, "team/junk", &junk);
    server.get("/v2/team/app/manifests/v1").expect_status(200);
    server.get("/v2/team/app/manifests/v2").expect_status(404);
    server
        .get(&format!("/v2/team/app/blobs/{layer_digest}"))
        .expect_status(200);

    let m = scrape(&server);
    let req = |method, route, status| {
        sample(
            &m,
            "bulwark_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(req("PUT", "v2_manifest", "2xx"), Some(2.0), "{m}");
    assert_eq!(req("GET", "v2_manifest", "2xx"), Some(1.0), "{m}");
    assert_eq!(req("GET", "v2_manifest", "4xx"), Some(1.0), "{m}");
    assert_eq!(req("POST", "v2_upload", "2xx"), Some(3.0), "{m}");
    assert_eq!(req("PUT", "v2_upload", "2xx"), Some(3.0), "{m}");
    assert_eq!(req("GET", "v2_blob", "2xx"), Some(1.0), "{m}");
    // 4 manifest requests, each in the latency histogram, each bucket cumulative.
    let count = sample(
        &m,
        "bulwark_http_request_duration_seconds_count",
        &[("route", "v2_manifest")],
    );
    assert_eq!(count, Some(4.0), "{m}");
    let inf = sample(
        &m,
        "bulwark_http_request_duration_seconds_bucket",
        &[("route", "v2_manifest"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(4.0), "{m}");

    // Grace 0 still means "older than now": let a second pass.
    std::thread::sleep(Duration::from_millis(1_100));
    let dry = server.api(
        Auth::Admin,
        "POST",
        "/gc",
        Some(&json!({ "dry_run": true, "grace_secs": 0 })),
    );
    dry.expect_status(200);
    let m = scrape(&server);
    assert_eq!(
        sample(&m, "bulwark_gc_runs_total", &[("outcome", "dry_run")]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "bulwark_gc_runs_total", &[("outcome", "completed")]),
        Some(0.0)
    );
    // A dry run deletes nothing, so it counts nothing as deleted.
    for name in [
        "bulwark_gc_blobs_deleted_total",
        "bulwark_gc_bytes_freed_total",
    ] {
        assert!(
            sample(&m, name, &[]).is_none_or(|v| v == 0.0),
            "{name} after a dry run:\n{m}"
        );
    }
    assert_eq!(sample(&m, "bulwark_gc_running", &[]), Some(0.0), "{m}");
    assert!(
        sample(&m, "bulwark_gc_run_blobs_examined", &[]).unwrap() >= 1.0,
        "{m}"
    );
    let dry_at = sample(&m, "bulwark_gc_last_run_timestamp_seconds", &[]).unwrap();
    assert!(dry_at > 1_700_000_000.0, "{m}");
    assert_eq!(
        sample(&m, "bulwark_gc_last_success_timestamp_seconds", &[]),
        None
    );

    let real = server.api(
        Auth::Admin,
        "POST",
        "/gc",
        Some(&json!({ "grace_secs": 0 })),
    );
    real.expect_status(200);
    let report = real.json();
    assert_eq!(report["manifests_deleted"], 1, "{report}");
    assert_eq!(report["blobs_deleted"], 1, "{report}");
    assert_eq!(report["bytes_freed"], 20_000, "{report}");
    server
        .get(&format!("/v2/team/junk/blobs/{junk_digest}"))
        .expect_status(404);

    let m = scrape(&server);
    let value = |name| sample(&m, name, &[]);
    assert_eq!(
        sample(&m, "bulwark_gc_runs_total", &[("outcome", "completed")]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "bulwark_gc_runs_total", &[("outcome", "dry_run")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "bulwark_gc_runs_total", &[("outcome", "failed")]),
        Some(0.0)
    );
    assert_eq!(
        value("bulwark_gc_manifests_deleted_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value("bulwark_gc_blobs_deleted_total"), Some(1.0), "{m}");
    assert_eq!(value("bulwark_gc_bytes_freed_total"), Some(20_000.0), "{m}");
    assert!(
        value("bulwark_gc_links_deleted_total").unwrap() >= 1.0,
        "{m}"
    );
    assert_eq!(value("bulwark_gc_running"), Some(0.0));
    assert!(
        value("bulwark_gc_run_blobs_examined").unwrap() >= 1.0,
        "{m}"
    );
    assert!(value("bulwark_gc_last_run_duration_seconds").unwrap() >= 0.0);
    let done_at = value("bulwark_gc_last_success_timestamp_seconds").unwrap();
    assert!(done_at >= dry_at, "{m}");
    assert_eq!(
        value("bulwark_gc_last_run_timestamp_seconds"),
        Some(done_at)
    );
    // The GC API calls themselves were counted.
    assert_eq!(
        sample(
            &m,
            "bulwark_http_requests_total",
            &[("method", "POST"), ("route", "api"), ("status", "2xx")]
        ),
        Some(2.0),
        "{m}"
    );
    assert!(
        m.contains("# TYPE bulwark_http_request_duration_seconds histogram"),
        "{m}"
    );
}

#[test]
fn metrics_token_path_and_switch() {
    let token = "scrape-secret-123";
    let server = TestServer::start_with(
        Path::new(BIN),
        &[
            ("BULWARK_METRICS__TOKEN", token),
            ("BULWARK_METRICS__PATH", "/internal/metrics"),
        ],
    );
    server
        .get_as(Auth::Anonymous, "/internal/metrics")
        .expect_status(401);
    // Registry credentials are not the scrape token.
    server
        .get_as(Auth::Admin, "/internal/metrics")
        .expect_status(401);
    server
        .get_as(Auth::Bearer("scrape-secret-12"), "/internal/metrics")
        .expect_status(401);
    let ok = server.get_as(Auth::Bearer(token), "/internal/metrics");
    ok.expect_status(200);
    assert!(
        ok.text().contains("bulwark_http_requests_total"),
        "{}",
        ok.text()
    );
    // Only the configured path serves metrics.
    assert_ne!(server.get_as(Auth::Bearer(token), "/metrics").status, 200);

    let off = TestServer::start_with(Path::new(BIN), &[("BULWARK_METRICS__ENABLED", "false")]);
    let r = off.get_as(Auth::Anonymous, "/metrics");
    assert_ne!(r.status, 200);
    assert!(!r.text().contains("bulwark_"), "{}", r.text());
}
