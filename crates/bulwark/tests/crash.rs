//! Crash consistency: a stream of pushes (blobs monolithic, single-POST and chunked, then
//! manifests) runs against the server while it is killed with SIGKILL at a different moment
//! in each of several rounds. After every restart on the same data dir:
//! - every push the server acknowledged (201) reads back byte for byte under its digest;
//! - anything not acknowledged is either absent (404) or exactly right, never wrong;
//! - no temporary file is left in `<data_dir>/tmp`, and no blob file holds other content than
//!   its name says.
//!
//! Finally the server is stopped with SIGTERM (it must exit cleanly) and restarted with a short
//! upload expiry, after which the abandoned upload sessions must be gone.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bulwark_testkit::{
    TestServer, http_request, random_bytes, request_target, sha256_digest, with_query,
};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const ROUNDS: u64 = 5;
/// Base delays before each kill, in milliseconds; a jitter is added.
const DELAYS_MS: [u64; ROUNDS as usize] = [250, 600, 1000, 1500, 2200];
/// Upper bound of images pushed in one round, to bound the test's run time.
const MAX_ITEMS_PER_ROUND: u64 = 40;
const REPOS: [&str; 3] = ["crash/app", "crash/deep/er/repo", "other"];
const LAYER_SIZES: [usize; 4] = [1024, 256 * 1024 + 5, 1024 * 1024 + 3, 4 * 1024 * 1024 + 1];
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

fn envs() -> Vec<(&'static str, &'static str)> {
    // Online GC off: unreferenced acknowledged blobs must survive for the checks.
    vec![("BULWARK_GC__INTERVAL_SECS", "0")]
}

/// What a blob holds: generated from a seed (large) or literal (small).
#[derive(Clone)]
enum Content {
    Random { seed: u64, len: usize },
    Literal(Vec<u8>),
}

impl Content {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Content::Random { seed, len } => random_bytes(*seed, *len),
            Content::Literal(b) => b.clone(),
        }
    }
}

struct BlobRecord {
    repo: &'static str,
    digest: String,
    content: Content,
    acked: bool,
}

struct ManifestRecord {
    repo: &'static str,
    tag: String,
    bytes: Vec<u8>,
    acked: bool,
}

#[derive(Default)]
struct Journal {
    blobs: Vec<BlobRecord>,
    manifests: Vec<ManifestRecord>,
}

/// How a push ended: acknowledged, cut off by the kill (I/O error), or answered wrongly
/// while the server was alive (a bug).
enum Outcome {
    Acked,
    Cut,
    Wrong(String),
}

fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    want: u16,
) -> Result<bulwark_testkit::HttpResponse, Outcome> {
    match http_request(addr, method, target, headers, body) {
        Err(_) => Err(Outcome::Cut),
        Ok(r) if r.status == want => Ok(r),
        Ok(r) => Err(Outcome::Wrong(format!(
            "{method} {target} answered {} (expected {want}): {}",
            r.status,
            r.text()
        ))),
    }
}

fn location(addr: SocketAddr, r: &bulwark_testkit::HttpResponse) -> Result<String, Outcome> {
    match r.header("location") {
        Some(loc) => Ok(request_target(addr, loc)),
        None => Err(Outcome::Wrong(format!(
            "{} answered without Location",
            r.request
        ))),
    }
}

/// Pushes one blob with one of four methods.
fn push_blob_by(addr: SocketAddr, repo: &str, data: &[u8], method: u64) -> Outcome {
    let digest = sha256_digest(data);
    let run = || -> Result<(), Outcome> {
        let uploads = format!("/v2/{repo}/blobs/uploads/");
        if method == 1 {
            let target = with_query(&uploads, "digest", &digest);
            send(addr, "POST", &target, &[OCTET], data, 201)?;
            return Ok(());
        }
        let r = send(addr, "POST", &uploads, &[], b"", 202)?;
        let mut loc = location(addr, &r)?;
        match method {
            0 => {
                send(
                    addr,
                    "PUT",
                    &with_query(&loc, "digest", &digest),
                    &[OCTET],
                    data,
                    201,
                )?;
            }
            2 | 3 => {
                let third = data.len().div_ceil(3).max(1);
                let chunks: Vec<(usize, &[u8])> = data
                    .chunks(third)
                    .enumerate()
                    .map(|(i, c)| (i * third, c))
                    .collect();
                let (patched, last) = if method == 3 && chunks.len() > 1 {
                    (&chunks[..chunks.len() - 1], chunks.last())
                } else {
                    (&chunks[..], None)
                };
                for (start, chunk) in patched {
                    let range = format!("{start}-{}", start + chunk.len() - 1);
                    let r = send(
                        addr,
                        "PATCH",
                        &loc,
                        &[OCTET, ("Content-Range", range.as_str())],
                        chunk,
                        202,
                    )?;
                    loc = location(addr, &r)?;
                }
                let target = with_query(&loc, "digest", &digest);
                match last {
                    Some((start, chunk)) => {
                        let range = format!("{start}-{}", start + chunk.len() - 1);
                        send(
                            addr,
                            "PUT",
                            &target,
                            &[OCTET, ("Content-Range", range.as_str())],
                            chunk,
                            201,
                        )?;
                    }
                    None => {
                        send(addr, "PUT", &target, &[], b"", 201)?;
                    }
                }
            }
            _ => unreachable!(),
        }
        Ok(())
    };
    match run() {
        Ok(()) => Outcome::Acked,
        Err(outcome) => outcome,
    }
}

fn descriptor(media_type: &str, data: &[u8]) -> String {
    format!(
        r#"{{"mediaType":"{media_type}","digest":"{}","size":{}}}"#,
        sha256_digest(data),
        data.len()
    )
}

/// Pushes images until stopped, told of a cut, or capped. Records every attempt in the
/// journal before making it and marks it once acknowledged. Returns a bug report, if any.
fn pusher(
    addr: SocketAddr,
    round: u64,
    journal: Arc<Mutex<Journal>>,
    stop: Arc<AtomicBool>,
) -> Option<String> {
    for i in 0..MAX_ITEMS_PER_ROUND {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let n = round * 1000 + i;
        let repo = REPOS[(n % 3) as usize];
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","round":{round},"item":{i}}}"#)
                .into_bytes();
        let layer = Content::Random {
            seed: n,
            len: LAYER_SIZES[((i + round) % 4) as usize],
        };
        let layer_bytes = layer.bytes();
        for (content, data, method) in [
            (Content::Literal(config.clone()), &config, 0),
            (layer.clone(), &layer_bytes, (i + round) % 4),
        ] {
            let index = {
                let mut j = journal.lock().unwrap();
                j.blobs.push(BlobRecord {
                    repo,
                    digest: sha256_digest(data),
                    content,
                    acked: false,
                });
                j.blobs.len() - 1
            };
            match push_blob_by(addr, repo, data, method) {
                Outcome::Acked => journal.lock().unwrap().blobs[index].acked = true,
                Outcome::Cut => return None,
                Outcome::Wrong(why) => return Some(why),
            }
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}],"annotations":{{"round":"{round}"}}}}"#,
            descriptor("application/vnd.oci.image.config.v1+json", &config),
            descriptor("application/vnd.oci.image.layer.v1.tar", &layer_bytes),
        )
        .into_bytes();
        let tag = format!("r{round}-i{i}");
        let index = {
            let mut j = journal.lock().unwrap();
            j.manifests.push(ManifestRecord {
                repo,
                tag: tag.clone(),
                bytes: manifest.clone(),
                acked: false,
            });
            j.manifests.len() - 1
        };
        let target = format!("/v2/{repo}/manifests/{tag}");
        match send(
            addr,
            "PUT",
            &target,
            &[("Content-Type", OCI_MANIFEST)],
            &manifest,
            201,
        ) {
            Ok(_) => journal.lock().unwrap().manifests[index].acked = true,
            Err(Outcome::Cut) => return None,
            Err(Outcome::Wrong(why)) => return Some(why),
            Err(Outcome::Acked) => unreachable!(),
        }
    }
    None
}

/// Polls `/readyz` until it answers 200.
fn wait_ready(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http_request(s.addr(), "GET", "/readyz", &[], &[]).is_ok_and(|r| r.status == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not answer 200 within 30 s\n{}",
            s.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Every regular file below `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => out.push(path),
                Err(_) => {}
            }
        }
    }
    out
}

/// The on-disk checks: nothing left in `tmp/`, every blob file holds what its name says.
fn check_data_dir(data: &Path, context: &str) {
    let stale = files_under(&data.join("tmp"));
    assert!(
        stale.is_empty(),
        "{context}: temporary files survived start-up: {stale:?}"
    );
    for file in files_under(&data.join("blobs").join("sha256")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "{context}: a file in the blob store that is not a blob: {}",
            file.display()
        );
        let bytes = fs::read(&file).unwrap();
        assert_eq!(
            sha256_digest(&bytes),
            format!("sha256:{name}"),
            "{context}: blob file {} holds other content than its name says",
            file.display()
        );
    }
}

/// The HTTP checks against the journal.
fn verify(s: &TestServer, journal: &Journal, context: &str) {
    let addr = s.addr();
    for b in &journal.blobs {
        let path = format!("/v2/{}/blobs/{}", b.repo, b.digest);
        let r = http_request(addr, "GET", &path, &[], &[])
            .unwrap_or_else(|e| panic!("{context}: GET {path}: {e}"));
        match (b.acked, r.status) {
            (_, 200) => {
                assert_eq!(
                    sha256_digest(&r.body),
                    b.digest,
                    "{context}: GET {path} served wrong content (acknowledged: {})",
                    b.acked
                );
                assert!(r.body == b.content.bytes());
            }
            (false, 404) => {}
            (acked, status) => panic!(
                "{context}: GET {path} answered {status} (acknowledged: {acked}): {}\n{}",
                r.text(),
                s.log()
            ),
        }
    }
    for m in &journal.manifests {
        let digest = sha256_digest(&m.bytes);
        for reference in [m.tag.as_str(), digest.as_str()] {
            let path = format!("/v2/{}/manifests/{reference}", m.repo);
            let r = http_request(addr, "GET", &path, &[], &[])
                .unwrap_or_else(|e| panic!("{context}: GET {path}: {e}"));
            match (m.acked, r.status) {
                (_, 200) => {
                    assert!(
                        r.body == m.bytes,
                        "{context}: GET {path} served wrong content (acknowledged: {}): {}",
                        m.acked,
                        r.text()
                    );
                    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
                }
                (false, 404) => {}
                (acked, status) => panic!(
                    "{context}: GET {path} answered {status} (acknowledged: {acked}): {}",
                    r.text()
                ),
            }
        }
    }
}

/// Leaves a stray temporary file behind, as a crash mid-write would.
fn plant_stale_temp_file(data: &Path, round: u64) {
    let tmp = data.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    fs::write(tmp.join(format!("planted-by-crash-test-{round}")), b"stale").unwrap();
}

fn jitter_ms() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos ^ std::process::id().wrapping_mul(7919)) % 250
}

#[test]
fn acknowledged_pushes_survive_sigkill() {
    let bin = Path::new(BIN);
    let dir = tempfile::Builder::new()
        .prefix("bulwark-crash-")
        .tempdir()
        .unwrap();
    let data = dir.path().to_path_buf();
    let envs = envs();
    let journal = Arc::new(Mutex::new(Journal::default()));

    for round in 0..ROUNDS {
        let mut server = TestServer::start_in(bin, data.clone(), &envs);
        wait_ready(&server);
        let context = format!("after restart {round}");
        check_data_dir(&data, &context);
        verify(&server, &journal.lock().unwrap(), &context);

        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (journal, stop, addr) = (Arc::clone(&journal), Arc::clone(&stop), server.addr());
            thread::spawn(move || pusher(addr, round, journal, stop))
        };
        let delay = DELAYS_MS[round as usize] + jitter_ms();
        thread::sleep(Duration::from_millis(delay));
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let bug = worker.join().expect("the pusher thread panicked");
        assert!(
            bug.is_none(),
            "round {round}: the live server answered a push wrongly: {}\n{}",
            bug.unwrap_or_default(),
            server.log()
        );
        {
            let j = journal.lock().unwrap();
            eprintln!(
                "round {round}: killed after {delay} ms; journal: {} blobs ({} acknowledged), {} manifests ({} acknowledged)",
                j.blobs.len(),
                j.blobs.iter().filter(|b| b.acked).count(),
                j.manifests.len(),
                j.manifests.iter().filter(|m| m.acked).count()
            );
        }
        plant_stale_temp_file(&data, round);
    }

    // A last restart, then a graceful stop.
    let mut server = TestServer::start_in(bin, data.clone(), &envs);
    wait_ready(&server);
    check_data_dir(&data, "after the last restart");
    verify(&server, &journal.lock().unwrap(), "after the last restart");
    {
        let j = journal.lock().unwrap();
        assert!(
            j.blobs.iter().filter(|b| b.acked).count() >= 10,
            "too few pushes were acknowledged for the test to mean anything"
        );
    }
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM: the server did not exit cleanly within 20 s: {status:?}\n{}",
        server.log()
    );
    drop(server);

    // Abandoned upload sessions (cut mid-chunk by the kills) expire and are cleaned at start.
    thread::sleep(Duration::from_secs(2));
    let mut short_expiry = envs.clone();
    short_expiry.push(("BULWARK_UPLOADS__EXPIRY_SECS", "1"));
    let server = TestServer::start_in(bin, data.clone(), &short_expiry);
    wait_ready(&server);
    check_data_dir(&data, "after the graceful restart");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = files_under(&data.join("uploads"));
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expired upload sessions were not cleaned up: {left:?}\n{}",
            server.log()
        );
        thread::sleep(Duration::from_millis(100));
    }
    verify(
        &server,
        &journal.lock().unwrap(),
        "after the graceful restart",
    );
}
