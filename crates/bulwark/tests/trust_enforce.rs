#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Pull enforcement under per-project trust policies, end to end: images signed with
//! `bulwark sign`, policies set with the API and `bulwark admin trust`, and pulls by a
//! pull-only user over raw HTTP, skopeo and oras (oras-py) — signed images are served, unsigned
//! ones and their blobs are refused with `403 DENIED` naming the reason, signatures stay
//! pullable, every decision is in the audit log.

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bulwark_testkit::{
    ADMIN_PASSWORD, ADMIN_USER, Auth, HttpResponse, TestServer, push_blob, push_manifest,
    random_bytes, sha256_digest,
};
use serde_json::{Value, json};
use support::{Registry, Tools, image, write_auth_file, write_layout};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const READER: &str = "deployer";
const PASSWORD: &str = "trust-Pa55word!";
const SKOPEO_TIMEOUT: Duration = Duration::from_secs(120);

fn desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len() })
}

/// A small image in `repo` under `tag` (as the admin); returns (manifest digest, layer digest).
fn push_image(s: &TestServer, repo: &str, tag: &str, seed: u64) -> (String, String) {
    let config = format!(r#"{{"os":"linux","architecture":"amd64","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(seed, 300);
    push_blob(&s.base_url(), repo, &config);
    let layer_digest = push_blob(&s.base_url(), repo, &layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
    }))
    .unwrap();
    (
        push_manifest(&s.base_url(), repo, tag, OCI_MANIFEST, &manifest),
        layer_digest,
    )
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn bulwark(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in ["BULWARK_KEY_PASSWORD", "BULWARK_PASSWORD", "BULWARK_CONFIG"] {
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

/// Key pairs made with `bulwark key generate`, and signing with `bulwark sign`.
struct Keys {
    dir: tempfile::TempDir,
    host: String,
}

impl Keys {
    fn new(s: &TestServer, names: &[&str]) -> Keys {
        let keys = Keys {
            dir: tempfile::tempdir().unwrap(),
            host: s.base_url().trim_start_matches("http://").to_owned(),
        };
        for name in names {
            let out = keys.dir.path().join(name);
            let run = bulwark(
                &["key", "generate", "--output-dir", out.to_str().unwrap()],
                &[("BULWARK_KEY_PASSWORD", "key-pw")],
            );
            assert!(run.ok, "key generate: {}", run.stderr);
        }
        keys
    }

    fn public(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name).join("cosign.pub")).unwrap()
    }

    fn sign(&self, key: &str, image: &str, extra: &[&str]) {
        let key = self.dir.path().join(key).join("cosign.key");
        let image = format!("{}/{image}", self.host);
        let mut args = vec![
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--plain-http",
            "-u",
            ADMIN_USER,
            &image,
        ];
        args.extend_from_slice(extra);
        let run = bulwark(
            &args,
            &[
                ("BULWARK_KEY_PASSWORD", "key-pw"),
                ("BULWARK_PASSWORD", ADMIN_PASSWORD),
            ],
        );
        assert!(run.ok, "sign {image}: {}{}", run.stdout, run.stderr);
    }
}

fn reader() -> Auth<'static> {
    Auth::Basic(READER, PASSWORD)
}

fn get_manifest(s: &TestServer, auth: Auth<'_>, repo: &str, reference: &str) -> HttpResponse {
    s.request_as(
        auth,
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Accept", &format!("{OCI_MANIFEST}, {OCI_INDEX}"))],
        &[],
    )
}

fn expect_denied(r: &HttpResponse, needle: &str) {
    r.expect_error(403, "DENIED");
    assert!(
        r.text().contains(needle),
        "expected {needle:?} in {}",
        r.text()
    );
}

fn set_policy(s: &TestServer, project: &str, policy: &Value) {
    s.api(
        Auth::Admin,
        "PUT",
        &format!("/projects/{project}/trust-policy"),
        Some(policy),
    )
    .expect_status(200);
}

/// A private project `secure` with a pull-only member.
fn setup(s: &TestServer) {
    s.create_user(READER, PASSWORD);
    s.create_project("secure", "private");
    s.add_member("secure", READER, "reader");
}

#[test]
fn enforcement_serves_signed_images_and_refuses_the_rest() {
    let s = TestServer::start(Path::new(BIN));
    setup(&s);
    let keys = Keys::new(&s, &["release", "mallory"]);
    let (signed, signed_layer) = push_image(&s, "secure/app", "v1", 1);
    let (unsigned, unsigned_layer) = push_image(&s, "secure/app", "v2", 2);
    let (_, _) = push_image(&s, "secure/app", "v3", 3);
    keys.sign("release", "secure/app:v1", &[]);
    keys.sign("mallory", "secure/app:v3", &[]);

    // Without a policy everything the reader may pull is served.
    get_manifest(&s, reader(), "secure/app", "v2").expect_status(200);

    // Invalid policies are refused with the reason.
    let bad = s.api(
        Auth::Admin,
        "PUT",
        "/projects/secure/trust-policy",
        Some(&json!({"require_signature": "enforce"})),
    );
    bad.expect_status(400);
    assert!(
        bad.text().contains("at least one trusted key"),
        "{}",
        bad.text()
    );
    // Only project admins set policies.
    s.api(
        reader(),
        "PUT",
        "/projects/secure/trust-policy",
        Some(&json!({"require_signature": "off"})),
    )
    .expect_status(403);

    set_policy(
        &s,
        "secure",
        &json!({
            "require_signature": "enforce",
            "keys": [{"name": "release", "public_key": keys.public("release")}],
        }),
    );
    let shown = s.api(reader(), "GET", "/projects/secure/trust-policy", None);
    shown.expect_status(200);
    assert_eq!(shown.json()["policy"]["require_signature"], "enforce");
    assert_eq!(shown.json()["version"], 1);

    // Signed: served, manifest and blobs.
    get_manifest(&s, reader(), "secure/app", "v1").expect_status(200);
    get_manifest(&s, reader(), "secure/app", &signed).expect_status(200);
    s.get_as(reader(), &format!("/v2/secure/app/blobs/{signed_layer}"))
        .expect_status(200);

    // Unsigned: refused by tag, by digest, with HEAD, and its blobs too.
    let r = get_manifest(&s, reader(), "secure/app", "v2");
    expect_denied(
        &r,
        &format!("image {unsigned} in secure/app has no signature from a trusted key"),
    );
    expect_denied(
        &get_manifest(&s, reader(), "secure/app", &unsigned),
        "no signature",
    );
    s.request_as(reader(), "HEAD", "/v2/secure/app/manifests/v2", &[], &[])
        .expect_status(403);
    expect_denied(
        &s.get_as(reader(), &format!("/v2/secure/app/blobs/{unsigned_layer}")),
        "trust policy",
    );

    // Signed by a key the policy does not trust: refused, saying so.
    expect_denied(
        &get_manifest(&s, reader(), "secure/app", "v3"),
        "not by a key the policy trusts",
    );

    // Signature artifacts stay pullable: the tag-scheme manifest and its payload.
    let sig_tag = format!("sha256-{}.sig", &signed[7..]);
    let sig = get_manifest(&s, reader(), "secure/app", &sig_tag);
    sig.expect_status(200);
    let payload = sig.json()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    s.get_as(reader(), &format!("/v2/secure/app/blobs/{payload}"))
        .expect_status(200);

    // Publishers (push permission) are not gated by default...
    get_manifest(&s, Auth::Admin, "secure/app", "v2").expect_status(200);
    // ...unless the policy says so.
    set_policy(
        &s,
        "secure",
        &json!({
            "require_signature": "enforce",
            "enforce_for_pushers": true,
            "keys": [{"name": "release", "public_key": keys.public("release")}],
        }),
    );
    expect_denied(
        &get_manifest(&s, Auth::Admin, "secure/app", "v2"),
        "no signature",
    );
    get_manifest(&s, Auth::Admin, "secure/app", "v1").expect_status(200);

    // Moving the signed tag to an unsigned manifest: the tag is refused at once.
    let moved = get_manifest(&s, Auth::Admin, "secure/app", "v2");
    moved.expect_status(403);
    set_policy(
        &s,
        "secure",
        &json!({
            "require_signature": "enforce",
            "keys": [{"name": "release", "public_key": keys.public("release")}],
        }),
    );
    let v2 = get_manifest(&s, Auth::Admin, "secure/app", "v2");
    push_manifest(&s.base_url(), "secure/app", "v1", OCI_MANIFEST, &v2.body);
    expect_denied(
        &get_manifest(&s, reader(), "secure/app", "v1"),
        "no signature",
    );

    // The listing shows the signatures and the decision for pull-only clients.
    let listing = s.api(
        reader(),
        "GET",
        &format!("/repositories/signatures?repository=secure/app&reference={signed}"),
        None,
    );
    listing.expect_status(200);
    let listing = listing.json();
    assert_eq!(listing["decision"], "allowed", "{listing}");
    assert_eq!(
        listing["attached"][0]["kind"], "cosign-signature",
        "{listing}"
    );
    assert_eq!(listing["attached"][0]["via"], "tag", "{listing}");

    // Every decision is recorded with its reason.
    let log = s.api(Auth::Admin, "GET", "/projects/secure/trust-decisions", None);
    log.expect_status(200);
    let rows = log.json();
    let rows = rows.as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["decision"] == "denied"
            && r["digest"] == unsigned.as_str()
            && r["subject"] == READER
            && r["reason"].as_str().unwrap().contains("no signature")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["decision"] == "allowed" && r["digest"] == signed.as_str()),
        "{rows:?}"
    );
    // Readers cannot read the decision log.
    s.api(reader(), "GET", "/projects/secure/trust-decisions", None)
        .expect_status(403);

    // Warn mode serves everything and records what it would have refused.
    set_policy(
        &s,
        "secure",
        &json!({
            "require_signature": "warn",
            "keys": [{"name": "release", "public_key": keys.public("release")}],
        }),
    );
    get_manifest(&s, reader(), "secure/app", &unsigned).expect_status(200);
    let rows = s
        .api(Auth::Admin, "GET", "/projects/secure/trust-decisions", None)
        .json();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["decision"] == "warned" && r["digest"] == unsigned.as_str()),
        "{rows}"
    );

    // Removing the policy lifts enforcement.
    s.api(Auth::Admin, "DELETE", "/projects/secure/trust-policy", None)
        .expect_status(204);
    s.api(Auth::Admin, "DELETE", "/projects/secure/trust-policy", None)
        .expect_status(404);
    get_manifest(&s, reader(), "secure/app", "v1").expect_status(200);
}

#[test]
fn copied_signatures_repository_patterns_and_mounts() {
    let s = TestServer::start(Path::new(BIN));
    setup(&s);
    s.create_project("scratch", "private");
    s.add_member("scratch", READER, "developer");
    let keys = Keys::new(&s, &["release"]);
    // The same image in two repositories; signed only in `secure/other`.
    let (digest, layer) = push_image(&s, "secure/app", "v1", 7);
    push_image(&s, "secure/other", "v1", 7);
    keys.sign("release", "secure/other:v1", &[]);
    // Copy the signature manifest (and its blobs) into secure/app under the same tag.
    let sig_tag = format!("sha256-{}.sig", &digest[7..]);
    let sig = get_manifest(&s, Auth::Admin, "secure/other", &sig_tag);
    sig.expect_status(200);
    let manifest = sig.json();
    for d in std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap()) {
        let d = d["digest"].as_str().unwrap();
        let bytes = s.get(&format!("/v2/secure/other/blobs/{d}")).body;
        push_blob(&s.base_url(), "secure/app", &bytes);
    }
    push_manifest(
        &s.base_url(),
        "secure/app",
        &sig_tag,
        OCI_MANIFEST,
        &sig.body,
    );

    set_policy(
        &s,
        "secure",
        &json!({
            "require_signature": "enforce",
            "repositories": ["secure/app"],
            "keys": [{"name": "release", "public_key": keys.public("release")}],
        }),
    );
    // The copied signature names secure/other: refused in secure/app.
    expect_denied(
        &get_manifest(&s, reader(), "secure/app", "v1"),
        "is for repository",
    );
    // secure/other is outside the policy's repositories: served.
    get_manifest(&s, reader(), "secure/other", "v1").expect_status(200);

    // A refused blob cannot be laundered through a cross-repository mount.
    let mount = s.request_as(
        reader(),
        "POST",
        &format!("/v2/scratch/copy/blobs/uploads/?mount={layer}&from=secure/app"),
        &[],
        &[],
    );
    mount.expect_status(202);
}

#[test]
fn multi_arch_index_signed_as_a_whole_or_per_platform() {
    let s = TestServer::start(Path::new(BIN));
    setup(&s);
    let keys = Keys::new(&s, &["release"]);
    let (amd64, _) = push_image(&s, "secure/multi", "amd64", 11);
    let (arm64, _) = push_image(&s, "secure/multi", "arm64", 12);
    let child = |d: &str, arch: &str| {
        json!({"mediaType": OCI_MANIFEST, "digest": d, "size": get_manifest(&s, Auth::Admin, "secure/multi", d).body.len(),
               "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [child(&amd64, "amd64"), child(&arm64, "arm64")],
    }))
    .unwrap();
    let index_digest = push_manifest(&s.base_url(), "secure/multi", "latest", OCI_INDEX, &index);
    let policy = |mode: &str| {
        json!({
            "require_signature": "enforce",
            "multi_arch": mode,
            "keys": [{"name": "release", "public_key": keys.public("release")}],
        })
    };

    set_policy(&s, "secure", &policy("index"));
    expect_denied(
        &get_manifest(&s, reader(), "secure/multi", "latest"),
        &format!("index {index_digest} in secure/multi has no signature"),
    );
    keys.sign("release", "secure/multi:latest", &[]);
    get_manifest(&s, reader(), "secure/multi", "latest").expect_status(200);
    // Platform manifests are trusted through the signed index.
    get_manifest(&s, reader(), "secure/multi", &amd64).expect_status(200);

    // Per platform: the index signature is not enough for an unsigned platform manifest.
    set_policy(&s, "secure", &policy("platforms"));
    expect_denied(
        &get_manifest(&s, reader(), "secure/multi", &amd64),
        "no signature",
    );
    keys.sign("release", &format!("secure/multi@{amd64}"), &[]);
    keys.sign("release", &format!("secure/multi@{arm64}"), &[]);
    get_manifest(&s, reader(), "secure/multi", &amd64).expect_status(200);
    get_manifest(&s, reader(), "secure/multi", &arm64).expect_status(200);
}

#[test]
fn admin_cli_sets_shows_and_removes_policies() {
    let s = TestServer::start(Path::new(BIN));
    setup(&s);
    let keys = Keys::new(&s, &["release"]);
    let file = keys.dir.path().join("policy.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({
            "require_signature": "enforce",
            "keys": [{"name": "release", "public_key": keys.public("release")}],
            "vulnerabilities": {"refuse_severity": "high", "unscanned": "allow",
                                "allowlist": [{"id": "CVE-2024-0001", "expires": 1893456000}]},
        }))
        .unwrap(),
    )
    .unwrap();
    let url = s.base_url();
    let env = [("BULWARK_PASSWORD", ADMIN_PASSWORD)];
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--url", url.as_str()];
        all.extend_from_slice(args);
        bulwark(&all, &env)
    };
    let run = admin(&["trust", "set", "secure", file.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("version 1"), "{}", run.stdout);
    let run = admin(&["--json", "trust", "show", "secure"]);
    assert!(run.ok, "{}", run.stderr);
    let shown: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        shown["policy"]["vulnerabilities"]["refuse_severity"],
        "high"
    );
    let (unsigned, _) = push_image(&s, "secure/app", "v1", 21);
    expect_denied(
        &get_manifest(&s, reader(), "secure/app", "v1"),
        "no signature",
    );
    let run = admin(&["trust", "decisions", "secure"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("denied") && run.stdout.contains(&unsigned),
        "{}",
        run.stdout
    );
    let bad = keys.dir.path().join("bad.json");
    std::fs::write(
        &bad,
        br#"{"require_signature": "enforce", "repositories": ["elsewhere/*"], "keys": []}"#,
    )
    .unwrap();
    let run = admin(&["trust", "set", "secure", bad.to_str().unwrap()]);
    assert!(!run.ok);
    assert!(run.stderr.contains("outside project"), "{}", run.stderr);
    let run = admin(&["trust", "unset", "secure"]);
    assert!(run.ok, "{}", run.stderr);
    get_manifest(&s, reader(), "secure/app", "v1").expect_status(200);
    let run = admin(&["trust", "show", "secure"]);
    assert!(!run.ok);
}

// ---------------------------------------------------------------------------------------------
// Real clients.

#[test]
fn skopeo_and_oras_under_enforcement() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let s = reg.server();
    setup(s);
    let keys = Keys::new(s, &["release"]);
    let signed = image("amd64", &[vec![("signed.txt", b"signed\n".to_vec())]]);
    let unsigned = image("amd64", &[vec![("unsigned.txt", b"unsigned\n".to_vec())]]);
    for (img, tag) in [(&signed, "signed"), (&unsigned, "unsigned")] {
        let dir = reg.scratch(&format!("src-{tag}"));
        write_layout(&dir, &img.blobs(), &img.manifest, tag);
        tools.skopeo(
            &reg,
            &[
                "copy",
                "--dest-tls-verify=false",
                &format!("oci:{}:{tag}", dir.display()),
                &format!("docker://{}", reg.image_ref(&format!("secure/app:{tag}"))),
            ],
            SKOPEO_TIMEOUT,
        );
    }
    keys.sign("release", "secure/app:signed", &["--referrer"]);
    set_policy(
        s,
        "secure",
        &json!({
            "require_signature": "enforce",
            "keys": [{"name": "release", "public_key": keys.public("release")}],
        }),
    );
    let authfile = reg.scratch("auth").join("deployer.json");
    write_auth_file(&authfile, &reg.host(), READER, PASSWORD);

    let dest = reg.scratch("pulled");
    let out = tools.skopeo_as(
        &reg,
        &authfile,
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}", reg.image_ref("secure/app:signed")),
            &format!("oci:{}:signed", dest.display()),
        ],
        SKOPEO_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "skopeo copy of the signed image: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        reg.log()
    );
    let out = tools.skopeo_as(
        &reg,
        &authfile,
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}", reg.image_ref("secure/app:unsigned")),
            &format!("oci:{}:unsigned", dest.display()),
        ],
        SKOPEO_TIMEOUT,
    );
    assert!(!out.status.success(), "the unsigned image was copied");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has no signature from a trusted key"),
        "the refusal is not visible to the user: {stderr}"
    );

    // oras (the ORAS project's Python client) fetches the signature artifacts.
    let signed_digest = sha256_digest(&signed.manifest.bytes);
    let referrers = s.get_as(
        reader(),
        &format!("/v2/secure/app/referrers/{signed_digest}"),
    );
    referrers.expect_status(200);
    let sig = referrers.json()["manifests"][0]["digest"]
        .as_str()
        .expect("a referrer signature")
        .to_owned();
    oras_pull(&reg, &format!("{}/secure/app@{sig}", reg.host()));
}

/// `oras pull` through oras-py; skipped (or failed with BULWARK_REQUIRE_CLIENTS=1) when the
/// module is missing.
fn oras_pull(reg: &Registry, target: &str) {
    let have = Command::new("python3")
        .args(["-c", "import oras.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("BULWARK_REQUIRE_CLIENTS").ok().as_deref() != Some("1"),
            "BULWARK_REQUIRE_CLIENTS=1 but the oras Python module is missing (pip install oras)"
        );
        eprintln!("skipped the oras part: pip install oras");
        return;
    }
    let outdir = reg.scratch("oras");
    let script = r#"
import hashlib, sys, oras.client
host, target, user, password, outdir = sys.argv[1:6]
c = oras.client.OrasClient(hostname=host, insecure=True)
c.login(hostname=host, username=user, password=password, tls_verify=False)
manifest = c.get_manifest(target)
for layer in manifest["layers"]:
    blob = c.get_blob(target, layer["digest"])
    blob.raise_for_status()
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer["digest"]
c.pull(target=target, outdir=outdir)
print(len(manifest["layers"]))
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &reg.host(),
            target,
            READER,
            PASSWORD,
            outdir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oras pull {target}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        reg.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "one signature layer"
    );
}

// ---------------------------------------------------------------------------------------------
// Notation.

/// A root CA and a code-signing leaf under it (valid `not_after`), as Notation users have.
struct NotationPki {
    root_pem: String,
    key: bulwark_trust::notation::NotationSigningKey,
    chain: Vec<Vec<u8>>,
}

fn notation_pki(leaf_not_after: (i32, u8, u8)) -> NotationPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, date_time_ymd,
    };
    let named = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2045, 1, 1);
        p
    };
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = named("Bulwark Test Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let root = root.self_signed(&root_key).unwrap();
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = named("release signer");
    leaf.not_after = date_time_ymd(leaf_not_after.0, leaf_not_after.1, leaf_not_after.2);
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let leaf = leaf.signed_by(&leaf_key, &root, &root_key).unwrap();
    NotationPki {
        root_pem: root.pem(),
        key: bulwark_trust::notation::NotationSigningKey::from_pkcs8_der(&leaf_key.serialize_der())
            .unwrap(),
        chain: vec![leaf.der().to_vec(), root.der().to_vec()],
    }
}

/// Pushes a Notation JWS signature of `digest` (in `repo`) as an OCI 1.1 referrer.
fn notation_sign(s: &TestServer, pki: &NotationPki, repo: &str, digest: &str) {
    use bulwark_trust::cosign::Descriptor;
    use bulwark_trust::notation;
    let manifest = get_manifest(s, Auth::Admin, repo, digest);
    manifest.expect_status(200);
    let subject = Descriptor::of(OCI_MANIFEST, &manifest.body);
    assert_eq!(subject.digest, digest);
    let now = std::time::SystemTime::now();
    let envelope = notation::sign_jws(
        &subject,
        &pki.key,
        &pki.chain,
        now - Duration::from_secs(60),
        None,
    )
    .unwrap();
    let artifact =
        notation::signature_manifest(subject, &envelope, notation::JWS_MEDIA_TYPE).unwrap();
    for b in &artifact.blobs {
        push_blob(&s.base_url(), repo, &b.bytes);
    }
    push_manifest(
        &s.base_url(),
        repo,
        &artifact.digest,
        artifact.media_type,
        &artifact.manifest,
    );
}

#[test]
fn notation_signatures_against_the_policy_trust_store() {
    let s = TestServer::start(Path::new(BIN));
    setup(&s);
    let trusted = notation_pki((2045, 1, 1));
    let stranger = notation_pki((2045, 1, 1));
    let expired = notation_pki((2021, 1, 1));
    let (good, _) = push_image(&s, "secure/n", "good", 31);
    let (untrusted, _) = push_image(&s, "secure/n", "untrusted", 32);
    let (stale, _) = push_image(&s, "secure/n", "expired", 33);
    notation_sign(&s, &trusted, "secure/n", &good);
    notation_sign(&s, &stranger, "secure/n", &untrusted);
    // Same root as `expired`'s leaf: trusted below, but the leaf has expired.
    notation_sign(&s, &expired, "secure/n", &stale);

    // A policy with a broken certificate is refused.
    let bad = s.api(
        Auth::Admin,
        "PUT",
        "/projects/secure/trust-policy",
        Some(&json!({"require_signature": "enforce",
                     "certificates": [{"name": "ca", "pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}]})),
    );
    bad.expect_status(400);

    set_policy(
        &s,
        "secure",
        &json!({
            "require_signature": "enforce",
            "certificates": [
                {"name": "release-ca", "pem": trusted.root_pem},
                {"name": "old-ca", "pem": expired.root_pem},
            ],
        }),
    );
    get_manifest(&s, reader(), "secure/n", "good").expect_status(200);
    expect_denied(
        &get_manifest(&s, reader(), "secure/n", "untrusted"),
        "Notation",
    );
    expect_denied(
        &get_manifest(&s, reader(), "secure/n", "expired"),
        "expired",
    );
    // The signature artifact itself stays pullable, and is listed as a Notation signature.
    let listing = s.api(
        reader(),
        "GET",
        &format!("/repositories/signatures?repository=secure/n&reference={good}"),
        None,
    );
    listing.expect_status(200);
    let listing = listing.json();
    assert_eq!(
        listing["attached"][0]["kind"], "notation-signature",
        "{listing}"
    );
    assert!(
        listing["reason"].as_str().unwrap().contains("release-ca"),
        "{listing}"
    );
    let sig = listing["attached"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    get_manifest(&s, reader(), "secure/n", &sig).expect_status(200);
}

// ---------------------------------------------------------------------------------------------
// Vulnerability gate, on the server's own scan results.

/// `bulwark vulndb import` of one real record into the running server's database.
fn import_record(s: &TestServer, rel: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/vulndb")
        .join(rel);
    let run = bulwark(&["vulndb", "import", path.to_str().unwrap()], &s.cli_envs());
    assert!(run.ok, "vulndb import {rel}: {}", run.stderr);
}

/// A Debian 12 image whose dpkg database lists expat 2.5.0-1 (CVE-2024-45492, critical, fixed
/// in 2.5.0-1+deb12u1), pushed as `repo:tag`; returns its digest.
fn push_debian_image(s: &TestServer, repo: &str, tag: &str, expat: &str) -> String {
    let os_release = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../bulwark-scanner/tests/fixtures/os-release/debian-12"),
    )
    .unwrap();
    let status = format!(
        "Package: libexpat1\nStatus: install ok installed\nPriority: optional\n\
         Architecture: amd64\nSource: expat\nVersion: {expat}\nDescription: XML parsing\n\n"
    );
    let img = image(
        "amd64",
        &[
            vec![("etc/os-release", os_release)],
            vec![("var/lib/dpkg/status", status.into_bytes())],
        ],
    );
    for b in std::iter::once(&img.config).chain(&img.layers) {
        push_blob(&s.base_url(), repo, &b.bytes);
    }
    push_manifest(&s.base_url(), repo, tag, OCI_MANIFEST, &img.manifest.bytes)
}

fn wait_scanned(s: &TestServer, repo: &str, digest: &str) {
    let target = format!("/repositories/manifests/scan?repository={repo}&digest={digest}");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        let r = s.api(Auth::Admin, "GET", &target, None);
        if r.status == 200 && r.json()["status"] == "done" {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{digest} was not scanned in time\n{}", s.log());
}

#[test]
fn vulnerability_gate_on_scan_results() {
    let s = TestServer::start_with(
        Path::new(BIN),
        &[
            ("BULWARK_SCANNER__RESCAN_INTERVAL_SECS", "0"),
            ("BULWARK_GC__INTERVAL_SECS", "0"),
        ],
    );
    setup(&s);
    import_record(&s, "debian-osv/CVE/2024/CVE-2024-45492.json");
    let vulnerable = push_debian_image(&s, "secure/web", "old", "2.5.0-1");
    let patched = push_debian_image(&s, "secure/web", "new", "2.5.0-1+deb12u1");
    let gate = |allowlist: Value, unscanned: &str| {
        json!({"vulnerabilities": {"refuse_severity": "high", "allowlist": allowlist,
                                    "unscanned": unscanned}})
    };
    // Not scanned yet (or just scanned): with "refuse", unscanned images wait for their scan.
    set_policy(&s, "secure", &gate(json!([]), "refuse"));
    wait_scanned(&s, "secure/web", &vulnerable);
    wait_scanned(&s, "secure/web", &patched);
    set_policy(&s, "secure", &gate(json!([]), "refuse"));

    let r = get_manifest(&s, reader(), "secure/web", "old");
    expect_denied(&r, "1 finding(s) of severity High or higher");
    assert!(r.text().contains("CVE-2024-45492"), "{}", r.text());
    get_manifest(&s, reader(), "secure/web", "new").expect_status(200);

    // The allowlist excuses the finding until it expires.
    set_policy(
        &s,
        "secure",
        &gate(
            json!([{"id": "CVE-2024-45492", "expires": 4_102_444_800_i64}]),
            "refuse",
        ),
    );
    get_manifest(&s, reader(), "secure/web", "old").expect_status(200);
    set_policy(
        &s,
        "secure",
        &gate(
            json!([{"id": "CVE-2024-45492", "expires": 1_000_000_000}]),
            "refuse",
        ),
    );
    expect_denied(
        &get_manifest(&s, reader(), "secure/web", "old"),
        "CVE-2024-45492",
    );
}

#[test]
fn vulnerability_gate_on_unscanned_images() {
    let s = TestServer::start_with(Path::new(BIN), &[("BULWARK_SCANNER__ENABLED", "false")]);
    setup(&s);
    push_debian_image(&s, "secure/web", "v1", "2.5.0-1+deb12u1");
    let gate = |unscanned: &str| json!({"vulnerabilities": {"refuse_severity": "critical", "unscanned": unscanned}});
    set_policy(&s, "secure", &gate("refuse"));
    expect_denied(
        &get_manifest(&s, reader(), "secure/web", "v1"),
        "has not been scanned yet",
    );
    set_policy(&s, "secure", &gate("allow"));
    get_manifest(&s, reader(), "secure/web", "v1").expect_status(200);
}
