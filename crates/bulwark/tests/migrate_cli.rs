//! `bulwark migrate`: a registry on the embedded default (SQLite + data-directory blobs) is
//! moved to PostgreSQL + S3 without re-pushing: a server started afterwards on PostgreSQL + S3
//! with a new, empty data directory serves the same manifest and blobs byte for byte and
//! accepts the old passwords. The command refuses while the server runs and when the
//! destination is not empty. Needs `BULWARK_TEST_POSTGRES_URL` and `BULWARK_TEST_S3_ENDPOINT`
//! (scripts/test.sh provides both); skipped without them unless `BULWARK_REQUIRE_POSTGRES=1` /
//! `BULWARK_REQUIRE_S3=1` demand them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bulwark_testkit::{
    ADMIN_PASSWORD, ADMIN_USER, Auth, TestServer, push_blob, push_manifest, random_bytes,
    sha256_digest,
};

#[allow(dead_code)]
mod support;

use support::scale::{Database, backends, create_bucket};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn s3_envs(bucket: &str, endpoint: &str) -> Vec<(String, String)> {
    [
        ("BULWARK_STORAGE__BACKEND", "s3"),
        ("BULWARK_STORAGE__S3__BUCKET", bucket),
        ("BULWARK_STORAGE__S3__PREFIX", "registry"),
        ("BULWARK_STORAGE__S3__ENDPOINT", endpoint),
        ("BULWARK_STORAGE__S3__REGION", "us-east-1"),
        ("BULWARK_STORAGE__S3__ACCESS_KEY_ID", "testing"),
        ("BULWARK_STORAGE__S3__SECRET_ACCESS_KEY", "testing"),
        ("BULWARK_STORAGE__S3__ALLOW_HTTP", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `bulwark migrate <args>` on `data_dir` with `envs` and no other BULWARK_* variable.
fn migrate(data_dir: &Path, envs: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("migrate").args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BULWARK_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("BULWARK_DATA_DIR", data_dir)
        .env("RUST_BACKTRACE", "0")
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    cmd.output().unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn manifest_for(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let desc = |media: &str, b: &[u8]| serde_json::json!({"mediaType": media, "digest": sha256_digest(b), "size": b.len()});
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
    }))
    .unwrap()
}

#[test]
fn migrate_moves_sqlite_and_blobs_to_postgres_and_s3() {
    let Some((pg, s3)) = backends() else { return };

    // The embedded default: SQLite and blobs in the data directory.
    let mut old = TestServer::start_with(Path::new(BIN), &[]);
    let base = old.base_url();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let small = random_bytes(1, 4096);
    // Larger than one S3 part (8 MiB): a multipart write in the bucket.
    let large = random_bytes(2, 9 * 1024 * 1024 + 123);
    let blobs = [&config, &small, &large];
    for blob in blobs {
        push_blob(&base, "app/web", blob);
    }
    let manifest = manifest_for(&config, &[&small, &large]);
    let digest = push_manifest(&base, "app/web", "v1", MANIFEST, &manifest);
    old.create_user("dev", "dev-Passw0rd-123");
    let data_dir = old.data_dir().to_path_buf();

    let db = Database::create(&pg);
    let bucket = create_bucket(&s3);
    let envs = s3_envs(&bucket, &s3);

    // Refused while the server runs on the data directory.
    let out = migrate(&data_dir, &envs, &["--to", &db.url, "--blobs"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another bulwark process"),
        "{}",
        describe(&out)
    );

    old.terminate();
    assert!(
        old.wait_exit(Duration::from_secs(30)).is_some(),
        "the old server did not stop"
    );

    let out = migrate(&data_dir, &envs, &["--to", &db.url, "--blobs"]);
    assert!(out.status.success(), "{}", describe(&out));
    println!("{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("blobs: 3 copied"), "{}", describe(&out));
    assert!(stdout.contains("row counts verified"), "{}", describe(&out));
    assert!(stdout.contains("users"), "{}", describe(&out));

    // A second run is refused (the destination has rows) and changes nothing.
    let again = migrate(&data_dir, &envs, &["--to", &db.url, "--blobs"]);
    assert!(!again.status.success(), "{}", describe(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already has rows"),
        "{}",
        describe(&again)
    );

    // A server on PostgreSQL + S3 with a new, empty data directory. Its own bootstrap
    // password is a different one: the old admin (and password) must come from the copy.
    let mut new_envs: Vec<(&str, &str)> =
        envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    new_envs.push(("BULWARK_DATABASE__URL", &db.url));
    new_envs.push(("BULWARK_ADMIN_PASSWORD", "not-the-old-Passw0rd"));
    new_envs.push(("BULWARK_GC__INTERVAL_SECS", "0"));
    let new = TestServer::start_with(Path::new(BIN), &new_envs);
    assert!(!new.data_dir().join("bulwark.db").exists());

    let resp = new.request(
        "GET",
        "/v2/app/web/manifests/v1",
        &[("Accept", MANIFEST)],
        &[],
    );
    resp.expect_status(200);
    assert_eq!(resp.body, manifest);
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    for blob in blobs {
        let resp = new.get(&format!("/v2/app/web/blobs/{}", sha256_digest(blob)));
        resp.expect_status(200);
        assert!(resp.body == *blob, "blob {} differs", sha256_digest(blob));
    }
    let tags = new.get("/v2/app/web/tags/list");
    tags.expect_status(200);
    assert_eq!(tags.json()["tags"], serde_json::json!(["v1"]));

    // Old passwords work; the new server's bootstrap password was never used.
    new.token(Some((ADMIN_USER, ADMIN_PASSWORD)), &[]);
    new.token(Some(("dev", "dev-Passw0rd-123")), &[]);
    let refused = new.get_as(
        Auth::Basic(ADMIN_USER, "not-the-old-Passw0rd"),
        "/token?service=bulwark",
    );
    assert_eq!(refused.status, 401, "{}", refused.text());

    // Pushing still works (fresh ids after the copy).
    let extra = random_bytes(3, 1000);
    push_blob(&new.base_url(), "app/other", &extra);
    push_manifest(
        &new.base_url(),
        "app/other",
        "v1",
        MANIFEST,
        &manifest_for(&extra, &[]),
    );
}
