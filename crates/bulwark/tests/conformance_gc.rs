//! The binary's contract beyond the OCI API: `bulwark gc [--dry-run] [--grace-secs N]` against
//! a data dir, and a graceful stop on SIGTERM. What the registry serves afterwards is checked
//! over HTTP; what is on disk through the documented layout
//! (`<data_dir>/blobs/sha256/<first two hex>/<hex>`).

// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use bulwark_testkit::{TestServer, push_blob, push_manifest, random_bytes, sha256_digest};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn blob_file(data_dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    data_dir
        .join("blobs")
        .join("sha256")
        .join(&hex[..2])
        .join(hex)
}

/// Runs `bulwark gc <args>` on `data_dir` with no other configuration.
fn gc_output(data_dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BULWARK_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("gc")
        .args(args)
        .env("BULWARK_DATA_DIR", data_dir)
        .output()
        .unwrap()
}

/// Runs `bulwark gc <args>` on `data_dir` and checks it succeeded and said something.
fn gc(data_dir: &Path, args: &[&str]) -> Output {
    let out = gc_output(data_dir, args);
    assert!(
        out.status.success(),
        "bulwark gc {args:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.stdout.is_empty() || !out.stderr.is_empty(),
        "bulwark gc {args:?} printed no summary"
    );
    out
}

/// Pushes an image (config + layer + manifest tagged `tag`); returns (manifest, blob digests).
fn image(s: &TestServer, repo: &str, tag: &str, seed: u64) -> (Vec<u8>, [String; 2]) {
    let config = format!(r#"{{"os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(seed, 4096);
    let config_digest = push_blob(&s.base_url(), repo, &config);
    let layer_digest = push_blob(&s.base_url(), repo, &layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    )
    .into_bytes();
    push_manifest(&s.base_url(), repo, tag, OCI_MANIFEST, &manifest);
    (manifest, [config_digest, layer_digest])
}

fn stop(mut s: TestServer) {
    s.terminate();
    let status = s.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|st| st.success()),
        "SIGTERM: no clean exit within 20 s ({status:?})\n{}",
        s.log()
    );
}

#[test]
fn gc_removes_unreferenced_blobs_only() {
    let dir = tempfile::Builder::new()
        .prefix("bulwark-gc-")
        .tempdir()
        .unwrap();
    let data = dir.path().to_path_buf();
    let bin = Path::new(BIN);
    let envs = [("BULWARK_GC__INTERVAL_SECS", "0")];

    let s = TestServer::start_in(bin, data.clone(), &envs);
    let (kept_manifest, kept_blobs) = image(&s, "gc/app", "keep", 1);
    let (_, dropped_blobs) = image(&s, "gc/app", "drop", 2);
    let orphan = random_bytes(3, 10_000);
    let orphan_digest = push_blob(&s.base_url(), "gc/app", &orphan);
    // The second image's manifest goes, which leaves its blobs unreferenced.
    let dropped_manifest = s.get("/v2/gc/app/manifests/drop");
    dropped_manifest.expect_status(200);
    let dropped_digest = sha256_digest(&dropped_manifest.body);
    s.request(
        "DELETE",
        &format!("/v2/gc/app/manifests/{dropped_digest}"),
        &[],
        b"",
    )
    .expect_status(202);
    stop(s);

    for d in kept_blobs
        .iter()
        .chain(&dropped_blobs)
        .chain([&orphan_digest])
    {
        assert!(
            blob_file(&data, d).is_file(),
            "blob {d} is not where the layout says"
        );
    }

    // Ages are compared in whole seconds: let everything be at least a second old before
    // `--grace-secs 0` should see it as garbage.
    std::thread::sleep(Duration::from_millis(2100));

    // A generous grace period protects fresh garbage.
    gc(&data, &["--grace-secs", "3600"]);
    assert!(blob_file(&data, &orphan_digest).is_file());

    // A dry run deletes nothing.
    gc(&data, &["--dry-run", "--grace-secs", "0"]);
    for d in kept_blobs
        .iter()
        .chain(&dropped_blobs)
        .chain([&orphan_digest])
    {
        assert!(blob_file(&data, d).is_file(), "dry run deleted {d}");
    }

    gc(&data, &["--grace-secs", "0"]);
    for d in &kept_blobs {
        assert!(blob_file(&data, d).is_file(), "gc deleted referenced {d}");
    }
    for d in dropped_blobs.iter().chain([&orphan_digest]) {
        assert!(!blob_file(&data, d).exists(), "gc kept unreferenced {d}");
    }

    // The registry agrees.
    let s = TestServer::start_in(bin, data.clone(), &envs);
    let r = s.get("/v2/gc/app/manifests/keep");
    r.expect_status(200);
    assert!(r.body == kept_manifest);
    for d in &kept_blobs {
        s.get(&format!("/v2/gc/app/blobs/{d}")).expect_status(200);
    }
    for d in dropped_blobs.iter().chain([&orphan_digest]) {
        s.get(&format!("/v2/gc/app/blobs/{d}"))
            .expect_error(404, "BLOB_UNKNOWN");
    }
    // And garbage collected content can be pushed again.
    push_blob(&s.base_url(), "gc/app", &orphan);
    let r = s.get(&format!("/v2/gc/app/blobs/{orphan_digest}"));
    r.expect_status(200);
    assert!(r.body == orphan);
}

#[test]
fn offline_gc_next_to_a_running_server_does_no_harm() {
    // `bulwark gc` may work next to a running server or refuse to; either way the server must
    // keep serving everything that is referenced.
    let s = TestServer::start_with(Path::new(BIN), &[("BULWARK_GC__INTERVAL_SECS", "0")]);
    let (manifest, blobs) = image(&s, "gclive/app", "v1", 4);
    let orphan = random_bytes(5, 1000);
    push_blob(&s.base_url(), "gclive/app", &orphan);
    std::thread::sleep(Duration::from_millis(2100));
    let out = gc_output(s.data_dir(), &["--grace-secs", "0"]);
    if !out.status.success() {
        assert!(
            !out.stderr.is_empty(),
            "bulwark gc refused without saying why"
        );
    }
    let r = s.get("/v2/gclive/app/manifests/v1");
    r.expect_status(200);
    assert!(r.body == manifest);
    for d in &blobs {
        s.get(&format!("/v2/gclive/app/blobs/{d}"))
            .expect_status(200);
    }
    // Whatever happened to the orphan, it can be pushed and read again.
    let orphan_digest = push_blob(&s.base_url(), "gclive/app", &orphan);
    let r = s.get(&format!("/v2/gclive/app/blobs/{orphan_digest}"));
    r.expect_status(200);
    assert!(r.body == orphan);
}

#[test]
fn online_gc_collects_unreferenced_blobs() {
    let s = TestServer::start_with(
        Path::new(BIN),
        &[
            ("BULWARK_GC__INTERVAL_SECS", "1"),
            ("BULWARK_GC__GRACE_SECS", "2"),
        ],
    );
    let (manifest, blobs) = image(&s, "gconline/app", "v1", 6);
    let orphan = random_bytes(7, 1000);
    let orphan_digest = push_blob(&s.base_url(), "gconline/app", &orphan);
    let orphan_path = format!("/v2/gconline/app/blobs/{orphan_digest}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.get(&orphan_path);
        if r.status == 404 {
            r.expect_error(404, "BLOB_UNKNOWN");
            break;
        }
        r.expect_status(200);
        assert!(
            std::time::Instant::now() < deadline,
            "online GC did not collect an unreferenced blob within 30 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The file goes right after the metadata.
    while blob_file(s.data_dir(), &orphan_digest).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the collected blob's file is still on disk"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = s.get("/v2/gconline/app/manifests/v1");
    r.expect_status(200);
    assert!(r.body == manifest);
    for d in &blobs {
        s.get(&format!("/v2/gconline/app/blobs/{d}"))
            .expect_status(200);
    }
}

/// `/api/v1/gc`: system admins run a collection on demand (dry run first) and read the last
/// result; other users are refused and anonymous callers challenged.
#[test]
fn gc_on_demand_through_the_management_api() {
    use bulwark_testkit::Auth;
    use serde_json::json;

    let server = TestServer::start_with(Path::new(BIN), &[("BULWARK_GC__INTERVAL_SECS", "0")]);
    let junk = random_bytes(4242, 20_000);
    let digest = push_blob(&server.base_url(), "team/junk", &junk);
    server.create_user("carol", "carol-password-1");
    // Grace 0 still means "older than now": let a second pass.
    std::thread::sleep(Duration::from_millis(1_100));

    let status = server.api(Auth::Admin, "GET", "/gc", None);
    status.expect_status(200);
    assert_eq!(status.json()["last"], serde_json::Value::Null);

    server
        .api(
            Auth::Basic("carol", "carol-password-1"),
            "POST",
            "/gc",
            Some(&json!({})),
        )
        .expect_error(403, "DENIED");
    server
        .api(Auth::Anonymous, "GET", "/gc", None)
        .expect_error(401, "UNAUTHORIZED");
    server
        .api(
            Auth::Admin,
            "POST",
            "/gc",
            Some(&json!({ "grace_secs": -1 })),
        )
        .expect_status(400);

    let dry = server.api(
        Auth::Admin,
        "POST",
        "/gc",
        Some(&json!({ "dry_run": true, "grace_secs": 0 })),
    );
    dry.expect_status(200);
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["blobs_deleted"], 1, "{dry}");
    server
        .get(&format!("/v2/team/junk/blobs/{digest}"))
        .expect_status(200);

    let real = server.api(
        Auth::Admin,
        "POST",
        "/gc",
        Some(&json!({ "grace_secs": 0 })),
    );
    real.expect_status(200);
    assert_eq!(real.json()["blobs_deleted"], 1, "{}", real.text());
    assert_eq!(real.json()["bytes_freed"], 20_000);
    server
        .get(&format!("/v2/team/junk/blobs/{digest}"))
        .expect_status(404);

    let status = server.api(Auth::Admin, "GET", "/gc", None).json();
    assert_eq!(status["last"]["blobs_deleted"], 1, "{status}");
    assert!(status["finished_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(status["running"], serde_json::Value::Null, "{status}");
}

/// While a collection runs, `GET /api/v1/gc` shows its progress; afterwards it is gone.
#[test]
fn gc_api_reports_progress_while_running() {
    use bulwark_testkit::Auth;
    use serde_json::json;
    let server = TestServer::start_with(Path::new(BIN), &[("BULWARK_GC__INTERVAL_SECS", "0")]);
    const JUNK: u64 = 400;
    for i in 0..JUNK {
        push_blob(
            &server.base_url(),
            "team/junk",
            &random_bytes(10_000 + i, 1_000),
        );
    }
    std::thread::sleep(Duration::from_millis(1_100));
    let mut seen = Vec::new();
    std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            server.api(
                Auth::Admin,
                "POST",
                "/gc",
                Some(&json!({ "grace_secs": 0 })),
            )
        });
        while !run.is_finished() {
            let status = server.api(Auth::Admin, "GET", "/gc", None).json();
            if !status["running"].is_null() {
                seen.push(status["running"].clone());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let done = run.join().unwrap();
        done.expect_status(200);
        assert_eq!(done.json()["blobs_deleted"], JUNK, "{}", done.text());
    });
    assert!(!seen.is_empty(), "never saw the collection running");
    let last = seen.last().unwrap();
    assert!(
        last["started_at"].as_i64().unwrap() > 1_700_000_000,
        "{last}"
    );
    assert!(
        last["blobs_examined"].as_u64().unwrap() <= 2 * JUNK,
        "{last}"
    );
    let deleted: Vec<u64> = seen
        .iter()
        .map(|p| p["blobs_deleted"].as_u64().unwrap())
        .collect();
    assert!(deleted.windows(2).all(|w| w[0] <= w[1]), "{deleted:?}");
    let status = server.api(Auth::Admin, "GET", "/gc", None).json();
    assert_eq!(status["running"], serde_json::Value::Null, "{status}");
    assert_eq!(status["last"]["blobs_deleted"], JUNK, "{status}");
}
