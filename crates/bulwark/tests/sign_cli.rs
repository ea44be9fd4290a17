#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `bulwark key generate`, `bulwark sign` and `bulwark verify` against the real server:
//! tag-scheme and referrer signatures, the token login flow, and every refusal the CLI can
//! see (wrong key, unsigned image, tag moved to an unsigned manifest, signature copied into
//! another repository).

use std::path::Path;
use std::process::Command;

use bulwark_testkit::{
    ADMIN_PASSWORD, ADMIN_USER, TestServer, push_blob, push_manifest, random_bytes, sha256_digest,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the CLI with a clean credential environment plus `envs`.
fn bulwark(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in [
        "BULWARK_KEY_PASSWORD",
        "BULWARK_PASSWORD",
        "BULWARK_USERNAME",
        "BULWARK_CONFIG",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().copied());
    let out = cmd.output().unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len() })
}

/// Pushes a small image into `repo` under `tag`; returns its digest.
fn push_image(s: &TestServer, repo: &str, tag: &str, seed: u64) -> String {
    let config = format!(r#"{{"os":"linux","architecture":"amd64","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(seed, 300);
    push_blob(&s.base_url(), repo, &config);
    push_blob(&s.base_url(), repo, &layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
    }))
    .unwrap();
    push_manifest(&s.base_url(), repo, tag, OCI_MANIFEST, &manifest)
}

struct Ctx {
    host: String,
    dir: tempfile::TempDir,
}

impl Ctx {
    fn new(s: &TestServer) -> Ctx {
        let host = s.base_url().trim_start_matches("http://").to_owned();
        Ctx {
            host,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_str().unwrap().to_owned()
    }

    fn generate(&self, name: &str, extra: &[&str]) {
        let out = self.path(name);
        let mut args = vec!["key", "generate", "--output-dir", &out];
        args.extend_from_slice(extra);
        let run = bulwark(&args, &[("BULWARK_KEY_PASSWORD", "key-pw")]);
        assert!(run.ok, "key generate: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("Key id: sha256:"), "{}", run.stdout);
        let key = std::fs::read_to_string(self.dir.path().join(name).join("cosign.key")).unwrap();
        assert!(key.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let public =
            std::fs::read_to_string(self.dir.path().join(name).join("cosign.pub")).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    fn sign(&self, key: &str, image: &str, extra: &[&str]) -> Run {
        let key = self.path(&format!("{key}/cosign.key"));
        let image = format!("{}/{image}", self.host);
        let mut args = vec![
            "sign",
            "--key",
            &key,
            "--plain-http",
            "-u",
            ADMIN_USER,
            &image,
        ];
        args.extend_from_slice(extra);
        bulwark(
            &args,
            &[
                ("BULWARK_KEY_PASSWORD", "key-pw"),
                ("BULWARK_PASSWORD", ADMIN_PASSWORD),
            ],
        )
    }

    fn verify(&self, keys: &[&str], image: &str) -> Run {
        let image = format!("{}/{image}", self.host);
        let key_paths: Vec<String> = keys
            .iter()
            .map(|k| self.path(&format!("{k}/cosign.pub")))
            .collect();
        let mut args = vec!["verify", "--plain-http", "--username", ADMIN_USER];
        for k in &key_paths {
            args.extend(["--key", k.as_str()]);
        }
        args.push(&image);
        bulwark(&args, &[("BULWARK_PASSWORD", ADMIN_PASSWORD)])
    }
}

fn assert_ok(run: &Run, what: &str) {
    assert!(
        run.ok,
        "{what} failed:\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
}

fn assert_refused(run: &Run, what: &str, reason: &str) {
    assert!(!run.ok, "{what} unexpectedly succeeded: {}", run.stdout);
    assert!(
        run.stderr.contains(reason),
        "{what}: expected {reason:?} in stderr: {}",
        run.stderr
    );
}

#[test]
fn tag_scheme_signatures_sign_verify_and_refusals() {
    let s = TestServer::start_with(Path::new(BIN), &[]);
    let ctx = Ctx::new(&s);
    ctx.generate("alice", &[]);
    ctx.generate("mallory", &[]);

    let signed = push_image(&s, "team/app", "v1", 1);
    let unsigned = push_image(&s, "team/app", "v2", 2);

    let run = ctx.sign("alice", "team/app:v1", &[]);
    assert_ok(&run, "sign");
    let sig_tag = format!("sha256-{}.sig", &signed[7..]);
    assert!(run.stdout.contains(&sig_tag), "{}", run.stdout);

    // The signature manifest is in the tag scheme, with the cosign layer.
    let resp = s.request(
        "GET",
        &format!("/v2/team/app/manifests/{sig_tag}"),
        &[("Accept", OCI_MANIFEST)],
        &[],
    );
    resp.expect_status(200);
    let sig_manifest = resp.json();
    let layer = &sig_manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(layer["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    let payload = s.get(&format!(
        "/v2/team/app/blobs/{}",
        layer["digest"].as_str().unwrap()
    ));
    payload.expect_status(200);
    let payload = payload.json();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        signed.as_str()
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        format!("{}/team/app", ctx.host)
    );
    assert_eq!(
        payload["critical"]["type"],
        "cosign container image signature"
    );

    // Verifies with the right key, by tag and by digest.
    let run = ctx.verify(&["alice"], "team/app:v1");
    assert_ok(&run, "verify by tag");
    assert!(
        run.stdout.contains(&format!("tag {sig_tag}")),
        "{}",
        run.stdout
    );
    assert_ok(
        &ctx.verify(&["alice"], &format!("team/app@{signed}")),
        "verify by digest",
    );
    assert_ok(
        &ctx.verify(&["mallory", "alice"], "team/app:v1"),
        "verify with a key set",
    );

    // Another key.
    assert_refused(
        &ctx.verify(&["mallory"], "team/app:v1"),
        "verify with another key",
        "does not verify",
    );
    // Unsigned image.
    assert_refused(
        &ctx.verify(&["alice"], "team/app:v2"),
        "verify unsigned",
        "has no signatures",
    );

    // A second signature joins the first under the same tag; both keys verify then.
    assert_ok(&ctx.sign("mallory", "team/app:v1", &[]), "second sign");
    let layers = s
        .request(
            "GET",
            &format!("/v2/team/app/manifests/{sig_tag}"),
            &[("Accept", OCI_MANIFEST)],
            &[],
        )
        .json()["layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 2);
    assert_ok(
        &ctx.verify(&["alice"], "team/app:v1"),
        "verify first signer",
    );
    assert_ok(
        &ctx.verify(&["mallory"], "team/app:v1"),
        "verify second signer",
    );

    // The tag moves to an unsigned manifest: the tag no longer verifies, the digest still does.
    let unsigned_manifest = s
        .request(
            "GET",
            "/v2/team/app/manifests/v2",
            &[("Accept", OCI_MANIFEST)],
            &[],
        )
        .body;
    push_manifest(
        &s.base_url(),
        "team/app",
        "v1",
        OCI_MANIFEST,
        &unsigned_manifest,
    );
    let run = ctx.verify(&["alice"], "team/app:v1");
    assert_refused(&run, "verify moved tag", "has no signatures");
    assert!(run.stderr.contains(&unsigned), "{}", run.stderr);
    assert_ok(
        &ctx.verify(&["alice"], &format!("team/app@{signed}")),
        "verify old digest",
    );

    // The same image and its signature copied into another repository: refused, because the
    // signature names team/app.
    let image_manifest = s
        .request(
            "GET",
            &format!("/v2/team/app/manifests/{signed}"),
            &[("Accept", OCI_MANIFEST)],
            &[],
        )
        .body;
    let image: Value = serde_json::from_slice(&image_manifest).unwrap();
    let sig_bytes = s
        .request(
            "GET",
            &format!("/v2/team/app/manifests/{sig_tag}"),
            &[("Accept", OCI_MANIFEST)],
            &[],
        )
        .body;
    let sig: Value = serde_json::from_slice(&sig_bytes).unwrap();
    let mut blobs = vec![image["config"].clone(), sig["config"].clone()];
    blobs.extend(image["layers"].as_array().unwrap().iter().cloned());
    blobs.extend(sig["layers"].as_array().unwrap().iter().cloned());
    for blob in blobs {
        let bytes = s.get(&format!(
            "/v2/team/app/blobs/{}",
            blob["digest"].as_str().unwrap()
        ));
        bytes.expect_status(200);
        push_blob(&s.base_url(), "team/copy", &bytes.body);
    }
    push_manifest(
        &s.base_url(),
        "team/copy",
        "v1",
        OCI_MANIFEST,
        &image_manifest,
    );
    push_manifest(
        &s.base_url(),
        "team/copy",
        &sig_tag,
        OCI_MANIFEST,
        &sig_bytes,
    );
    assert_refused(
        &ctx.verify(&["alice"], "team/copy:v1"),
        "verify copied signature",
        "not \"team/copy\"",
    );

    // Wrong key password: signing refuses before touching the registry.
    let key = ctx.path("alice/cosign.key");
    let image = format!("{}/team/app:v2", ctx.host);
    let run = bulwark(
        &["sign", "--key", &key, "--plain-http", &image],
        &[("BULWARK_KEY_PASSWORD", "nope")],
    );
    assert_refused(&run, "sign with a wrong password", "wrong password");
    // Without credentials the registry refuses the anonymous token for a push.
    let run = bulwark(
        &["sign", "--key", &key, "--plain-http", &image],
        &[("BULWARK_KEY_PASSWORD", "key-pw")],
    );
    assert!(!run.ok, "anonymous sign succeeded: {}", run.stdout);
}

#[test]
fn referrer_signatures_and_ed25519() {
    let s = TestServer::start_with(Path::new(BIN), &[]);
    let ctx = Ctx::new(&s);
    ctx.generate("p256", &[]);
    ctx.generate("ed", &["--algorithm", "ed25519"]);

    let digest = push_image(&s, "team/web", "v1", 10);
    let by_digest = format!("team/web@{digest}");
    let run = ctx.sign("p256", &by_digest, &["--referrer"]);
    assert_ok(&run, "sign --referrer");
    assert!(run.stdout.contains("referrer sha256:"), "{}", run.stdout);

    // No tag-scheme manifest was pushed; the referrers API lists the signature.
    s.request(
        "GET",
        &format!("/v2/team/web/manifests/sha256-{}.sig", &digest[7..]),
        &[("Accept", OCI_MANIFEST)],
        &[],
    )
    .expect_status(404);
    let referrers = s.get(&format!("/v2/team/web/referrers/{digest}"));
    referrers.expect_status(200);
    let index = referrers.json();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["artifactType"], SIG_ARTIFACT);
    let referrer_digest = manifests[0]["digest"].as_str().unwrap().to_owned();
    let referrer = s
        .request(
            "GET",
            &format!("/v2/team/web/manifests/{referrer_digest}"),
            &[("Accept", OCI_MANIFEST)],
            &[],
        )
        .json();
    assert_eq!(referrer["subject"]["digest"], digest.as_str());
    assert_eq!(
        referrer["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );

    let run = ctx.verify(&["p256"], "team/web:v1");
    assert_ok(&run, "verify referrer");
    assert!(
        run.stdout.contains(&format!("referrer {referrer_digest}")),
        "{}",
        run.stdout
    );
    assert_refused(
        &ctx.verify(&["ed"], "team/web:v1"),
        "verify with another key",
        "does not verify",
    );

    // Ed25519 keys sign and verify too, in either scheme.
    let other = push_image(&s, "team/web", "v2", 11);
    assert_ok(&ctx.sign("ed", "team/web:v2", &[]), "ed25519 sign");
    let run = ctx.verify(&["ed"], "team/web:v2");
    assert_ok(&run, "ed25519 verify");
    assert!(run.stdout.contains("ed25519"), "{}", run.stdout);
    assert!(run.stdout.contains(&other), "{}", run.stdout);
    assert_refused(
        &ctx.verify(&["p256"], "team/web:v2"),
        "p256 key on ed25519 signature",
        "does not verify",
    );

    // A missing tag is an error, not a silent success.
    let run = ctx.verify(&["p256"], "team/web:nope");
    assert!(!run.ok);
}
