//! Operational behaviour of the real binary: health endpoints, TLS, JSON logs, graceful
//! shutdown, the offline `gc` command and the data-directory lock, and streaming memory use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bulwark_testkit::{
    ADMIN_PASSWORD, ADMIN_USER, TestServer, basic_header, push_blob, random_bytes, sha256_digest,
};
use sha2::{Digest as _, Sha256};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bulwark"))
}

#[test]
fn health_and_readiness() {
    let server = TestServer::start(bin());
    let r = server.get("/healthz");
    assert_eq!(r.status, 200);
    let r = server.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    // Readiness follows storage: without the blob directory the server is not ready.
    std::fs::rename(
        server.data_dir().join("blobs"),
        server.data_dir().join("blobs.moved"),
    )
    .unwrap();
    assert_eq!(server.get("/readyz").status, 503);
    assert_eq!(server.get("/healthz").status, 200);
    std::fs::rename(
        server.data_dir().join("blobs.moved"),
        server.data_dir().join("blobs"),
    )
    .unwrap();
    assert_eq!(server.get("/readyz").status, 200);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = TestServer::start_with(bin(), &[("BULWARK_LOG__FORMAT", "json")]);
    assert_eq!(server.get("/v2/").status, 200);
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("bulwark listening"))
        .unwrap_or_else(|| panic!("no start-up line in {log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["addr"], server.addr().to_string());
}

#[test]
fn serves_https_with_configured_certificate() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();

    let data = tempfile::tempdir().unwrap();
    let log_path = data.path().join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin())
        .arg("serve")
        .env("BULWARK_LISTEN", format!("127.0.0.1:{port}"))
        .env("BULWARK_DATA_DIR", data.path())
        .env("BULWARK_TLS__CERT", &cert_path)
        .env("BULWARK_TLS__KEY", &key_path)
        .env("BULWARK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/v2/");
    let mut answer = None;
    for _ in 0..150 {
        if let Ok(r) = client
            .get(&url)
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
            .send()
        {
            answer = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let r = answer.unwrap_or_else(|| {
        panic!(
            "no HTTPS answer; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        )
    });
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
}

/// Sends the head of a chunked-upload PATCH, then the body in slices with `between` run after
/// the first slice; returns the raw response.
fn slow_patch(
    addr: std::net::SocketAddr,
    target: &str,
    body: &[u8],
    between: impl FnOnce(),
) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PATCH {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nContent-Range: 0-{}\r\nConnection: close\r\n\r\n",
        basic_header(ADMIN_USER, ADMIN_PASSWORD),
        body.len(),
        body.len() - 1
    )
    .unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    s.write_all(first).unwrap();
    s.flush().unwrap();
    between();
    s.write_all(rest).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn sigterm_lets_inflight_uploads_finish() {
    let mut server = TestServer::start(bin());
    let started = server.request("POST", "/v2/ops/drain/blobs/uploads/", &[], &[]);
    assert_eq!(started.status, 202);
    let location = server.target(started.header("location").unwrap());
    let body = random_bytes(7, 4 * 1024 * 1024);
    let raw = slow_patch(server.addr(), &location, &body, || {
        server.terminate();
        std::thread::sleep(Duration::from_millis(300));
    });
    assert!(
        raw.starts_with("HTTP/1.1 202"),
        "in-flight chunk was not completed: {raw}\n{}",
        server.log()
    );
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("server exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(server.log().contains("shutting down"));

    // The acknowledged chunk survives the restart and the upload completes.
    let data_dir = server.data_dir().to_path_buf();
    let again = TestServer::start_in(bin(), data_dir, &[]);
    let status = again.get(&location);
    assert_eq!(status.status, 204);
    assert_eq!(
        status.header("range"),
        Some(format!("0-{}", body.len() - 1).as_str())
    );
    let digest = sha256_digest(&body);
    let done = again.request("PUT", &format!("{location}?digest={digest}"), &[], &[]);
    assert_eq!(done.status, 201, "{}", done.text());
    let blob = again.get(&format!("/v2/ops/drain/blobs/{digest}"));
    assert_eq!(sha256_digest(&blob.body), digest);
}

#[test]
fn offline_gc_removes_unreferenced_blobs_and_refuses_a_running_server() {
    let mut server = TestServer::start(bin());
    let unreferenced = push_blob(&server.base_url(), "ops/gc", b"nobody references me");
    let hex = unreferenced.trim_start_matches("sha256:").to_owned();
    let file = server
        .data_dir()
        .join("blobs/sha256")
        .join(&hex[..2])
        .join(&hex);
    assert!(file.exists());

    let data_dir = server.data_dir().to_path_buf();
    let gc = |args: &[&str]| {
        Command::new(bin())
            .arg("gc")
            .args(args)
            .env("BULWARK_DATA_DIR", &data_dir)
            .output()
            .unwrap()
    };
    let refused = gc(&["--grace-secs", "0"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("another bulwark process"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    server.terminate();
    server.wait_exit(Duration::from_secs(20)).unwrap();
    // Timestamps have one-second resolution; "older than 0 s" needs the next second.
    std::thread::sleep(Duration::from_millis(1100));

    let dry = gc(&["--dry-run", "--grace-secs", "0"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["links_deleted"], 1);
    assert!(file.exists(), "dry run deleted the blob");

    // With the default 24 h grace window a fresh blob is kept.
    let kept = gc(&[]);
    assert!(kept.status.success());
    let report: serde_json::Value = serde_json::from_slice(&kept.stdout).unwrap();
    assert_eq!(report["blobs_deleted"], 0);
    assert!(file.exists());

    let real = gc(&["--grace-secs", "0"]);
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(report["links_deleted"], 1);
    assert_eq!(report["blobs_deleted"], 1);
    assert_eq!(report["bytes_freed"], 20);
    assert!(!file.exists(), "blob file survived gc");
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn two_gib_layer_push_is_streamed() {
    const SIZE: u64 = 2 * 1024 * 1024 * 1024;
    const SLICE: usize = 4 * 1024 * 1024;
    let server = TestServer::start(bin());
    // Warm up allocator and pools with a small push, then measure.
    push_blob(&server.base_url(), "ops/big", b"warm-up");
    let before = peak_rss_kib(server.pid());

    let started = server.request("POST", "/v2/ops/big/blobs/uploads/", &[], &[]);
    let location = server.target(started.header("location").unwrap());
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    write!(
        s,
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n",
        server.addr(),
        basic_header(ADMIN_USER, ADMIN_PASSWORD)
    )
    .unwrap();
    let slice = random_bytes(11, SLICE);
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut i = 0u8;
    let mut buf = slice.clone();
    while sent < SIZE {
        // Vary each slice cheaply so the blob is not one repeated pattern.
        buf[0] = i;
        i = i.wrapping_add(1);
        hasher.update(&buf);
        s.write_all(&buf).unwrap();
        sent += SLICE as u64;
    }
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 202"), "{resp}");
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    let done = server.request("PUT", &format!("{location}?digest={digest}"), &[], &[]);
    assert_eq!(done.status, 201, "{}", done.text());
    let head = server.request("HEAD", &format!("/v2/ops/big/blobs/{digest}"), &[], &[]);
    assert_eq!(
        head.header("content-length"),
        Some(SIZE.to_string().as_str())
    );

    let after = peak_rss_kib(server.pid());
    let growth_mib = after.saturating_sub(before) / 1024;
    assert!(
        growth_mib <= 64,
        "peak RSS grew by {growth_mib} MiB ({before} -> {after} KiB) during a 2 GiB push"
    );
}

#[test]
fn blob_size_limit_is_enforced_on_every_upload_path() {
    let server = TestServer::start_with(bin(), &[("BULWARK_LIMITS__MAX_BLOB_BYTES", "1024")]);
    let big = random_bytes(3, 2000);
    let digest = sha256_digest(&big);
    let r = server.request(
        "POST",
        &format!("/v2/ops/limit/blobs/uploads/?digest={digest}"),
        &[],
        &big,
    );
    r.expect_error(413, "SIZE_INVALID");

    let started = server.request("POST", "/v2/ops/limit/blobs/uploads/", &[], &[]);
    let location = server.target(started.header("location").unwrap());
    server
        .request(
            "PATCH",
            &location,
            &[("Content-Range", "0-999")],
            &big[..1000],
        )
        .expect_status(202);
    // The second chunk would take the blob past the limit.
    server
        .request(
            "PATCH",
            &location,
            &[("Content-Range", "1000-1999")],
            &big[1000..],
        )
        .expect_error(413, "SIZE_INVALID");
    server
        .request(
            "PUT",
            &format!("{location}?digest={digest}"),
            &[],
            &big[1000..],
        )
        .expect_error(413, "SIZE_INVALID");
    server
        .request("HEAD", &format!("/v2/ops/limit/blobs/{digest}"), &[], &[])
        .expect_status(404);
    // Within the limit everything works as usual.
    push_blob(&server.base_url(), "ops/limit", &big[..1024]);
}
