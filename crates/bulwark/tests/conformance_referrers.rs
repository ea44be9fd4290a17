//! OCI Distribution Spec v1.1 conformance, the referrers API: `OCI-Subject` on push, the
//! referrers index (image manifests and indexes, `artifactType` and its fallback to the
//! config media type, annotations), `artifactType` filtering with `OCI-Filters-Applied`,
//! unknown subjects, subjects pushed after their referrers, and deletion.
//!
//! Each test starts its own server on a fresh data dir and uses its own repository names.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use bulwark_testkit::{
    HttpResponse, TestServer, push_blob, push_manifest, random_bytes, sha256_digest,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SBOM: &str = "application/vnd.example.sbom.v1";
const SIGNATURE: &str = "application/vnd.example.signature.v1";
const BUNDLE: &str = "application/vnd.example.bundle.v1";
const CUSTOM_CONFIG: &str = "application/vnd.example.config.v1+json";

fn server() -> TestServer {
    TestServer::start(Path::new(BIN))
}

fn desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len() })
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Pushes a config and a layer into `repo` and returns an image manifest over them.
fn image(s: &TestServer, repo: &str, seed: u64) -> Vec<u8> {
    let config = format!(r#"{{"os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(seed, 512);
    push_blob(&s.base_url(), repo, &config);
    push_blob(&s.base_url(), repo, &layer);
    to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(OCI_CONFIG, &config),
        "layers": [desc(OCI_LAYER, &layer)],
    }))
}

/// An artifact manifest (empty config, one payload blob pushed into `repo`) about `subject`.
fn artifact(
    s: &TestServer,
    repo: &str,
    artifact_type: &str,
    subject: &Value,
    annotations: Value,
) -> Vec<u8> {
    push_blob(&s.base_url(), repo, b"{}");
    let payload = format!("payload of {artifact_type} for {}", subject["digest"]).into_bytes();
    push_blob(&s.base_url(), repo, &payload);
    to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": desc(OCI_EMPTY, b"{}"),
        "layers": [desc("application/vnd.example.payload", &payload)],
        "subject": subject,
        "annotations": annotations,
    }))
}

/// PUTs a manifest that has a `subject`: 201 and `OCI-Subject: <subject digest>`.
fn put_referrer(
    s: &TestServer,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
    subject_digest: &str,
) {
    let r = s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    );
    r.expect_status(201);
    assert_eq!(
        r.header("oci-subject"),
        Some(subject_digest),
        "PUT of a manifest with a subject must answer OCI-Subject; headers {:?}",
        r.headers
    );
}

/// GET the referrers of `digest` in `repo` (with an optional query) and checks the envelope.
fn referrers(s: &TestServer, repo: &str, digest: &str, query: &str) -> HttpResponse {
    let r = s.get(&format!("/v2/{repo}/referrers/{digest}{query}"));
    r.expect_status(200);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    assert!(v["manifests"].is_array(), "manifests is not a list: {v}");
    r
}

/// The listed descriptors by digest.
fn listed(r: &HttpResponse) -> BTreeMap<String, Value> {
    r.json()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["digest"].as_str().unwrap().to_owned(), d.clone()))
        .collect()
}

/// What a referrers descriptor of `bytes` must say.
fn expected(
    media_type: &str,
    bytes: &[u8],
    artifact_type: Option<&str>,
    annotations: &Value,
) -> Value {
    let mut d = desc(media_type, bytes);
    if let Some(t) = artifact_type {
        d["artifactType"] = json!(t);
    }
    d["annotations"] = annotations.clone();
    d
}

fn expect_listed(r: &HttpResponse, want: &[&Value]) {
    let got = listed(r);
    let want: BTreeMap<String, Value> = want
        .iter()
        .map(|d| (d["digest"].as_str().unwrap().to_owned(), (*d).clone()))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{}: wrong referrers listed; body {}",
        r.request,
        r.text()
    );
    for (digest, w) in &want {
        let g = &got[digest];
        for field in ["mediaType", "digest", "size", "annotations"] {
            assert_eq!(g[field], w[field], "{}: {field} of {digest}", r.request);
        }
        match w.get("artifactType") {
            Some(t) => assert_eq!(
                &g["artifactType"], t,
                "{}: artifactType of {digest}",
                r.request
            ),
            None => assert!(
                g.get("artifactType").is_none(),
                "{}: an index without artifactType must be listed without one: {g}",
                r.request
            ),
        }
    }
}

/// Percent-encodes a query parameter value (everything but RFC 3986 unreserved characters).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An image and five referrers of every kind, all in `repo`.
struct Fixture {
    subject_digest: String,
    sbom: Value,
    signature: Value,
    by_config: Value,
    bundle: Value,
    plain_index: Value,
}

fn fixture(s: &TestServer, repo: &str) -> Fixture {
    let subject_bytes = image(s, repo, 1);
    let subject_digest = push_manifest(&s.base_url(), repo, "v1", OCI_MANIFEST, &subject_bytes);
    let subject = desc(OCI_MANIFEST, &subject_bytes);

    let sbom_ann = json!({"org.example.sbom.format": "json", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"});
    let sbom = artifact(s, repo, SBOM, &subject, sbom_ann.clone());
    put_referrer(
        s,
        repo,
        &sha256_digest(&sbom),
        OCI_MANIFEST,
        &sbom,
        &subject_digest,
    );

    let sig_ann = json!({"org.example.signature.fingerprint": "abcd"});
    let sig = artifact(s, repo, SIGNATURE, &subject, sig_ann.clone());
    put_referrer(
        s,
        repo,
        "signature-tag",
        OCI_MANIFEST,
        &sig,
        &subject_digest,
    );

    // No artifactType: the config's media type stands in for it.
    let config = br#"{"custom":"config"}"#;
    push_blob(&s.base_url(), repo, config);
    let cfg_ann = json!({"kind": "by-config"});
    let by_config = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(CUSTOM_CONFIG, config),
        "layers": [],
        "subject": subject,
        "annotations": cfg_ann,
    }));
    put_referrer(
        s,
        repo,
        &sha256_digest(&by_config),
        OCI_MANIFEST,
        &by_config,
        &subject_digest,
    );

    let bundle_ann = json!({"kind": "bundle"});
    let bundle = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": BUNDLE,
        "manifests": [desc(OCI_MANIFEST, &sbom)],
        "subject": subject,
        "annotations": bundle_ann,
    }));
    put_referrer(
        s,
        repo,
        &sha256_digest(&bundle),
        OCI_INDEX,
        &bundle,
        &subject_digest,
    );

    let plain_ann = json!({"kind": "plain-index"});
    let plain_index = to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
        "subject": subject,
        "annotations": plain_ann,
    }));
    put_referrer(
        s,
        repo,
        &sha256_digest(&plain_index),
        OCI_INDEX,
        &plain_index,
        &subject_digest,
    );

    Fixture {
        subject_digest,
        sbom: expected(OCI_MANIFEST, &sbom, Some(SBOM), &sbom_ann),
        signature: expected(OCI_MANIFEST, &sig, Some(SIGNATURE), &sig_ann),
        by_config: expected(OCI_MANIFEST, &by_config, Some(CUSTOM_CONFIG), &cfg_ann),
        bundle: expected(OCI_INDEX, &bundle, Some(BUNDLE), &bundle_ann),
        plain_index: expected(OCI_INDEX, &plain_index, None, &plain_ann),
    }
}

#[test]
fn referrers_lists_manifests_and_indexes_with_a_subject() {
    let s = server();
    let repo = "ref/all";
    let f = fixture(&s, repo);
    // An unrelated image in the same repository is not a referrer.
    let other = image(&s, repo, 2);
    push_manifest(&s.base_url(), repo, "other", OCI_MANIFEST, &other);

    let r = referrers(&s, repo, &f.subject_digest, "");
    assert!(
        r.header("oci-filters-applied").is_none(),
        "OCI-Filters-Applied without a filter"
    );
    expect_listed(
        &r,
        &[
            &f.sbom,
            &f.signature,
            &f.by_config,
            &f.bundle,
            &f.plain_index,
        ],
    );
    // The referrers themselves have none.
    let sbom_digest = f.sbom["digest"].as_str().unwrap();
    expect_listed(&referrers(&s, repo, sbom_digest, ""), &[]);
}

#[test]
fn referrers_filtered_by_artifact_type() {
    let s = server();
    let repo = "ref/filter";
    let f = fixture(&s, repo);
    let cases: [(&str, Vec<&Value>); 5] = [
        (SBOM, vec![&f.sbom]),
        (SIGNATURE, vec![&f.signature]),
        (CUSTOM_CONFIG, vec![&f.by_config]),
        (BUNDLE, vec![&f.bundle]),
        ("application/vnd.example.nothing", vec![]),
    ];
    for (artifact_type, want) in cases {
        let r = referrers(
            &s,
            repo,
            &f.subject_digest,
            &format!("?artifactType={}", query_escape(artifact_type)),
        );
        assert_eq!(
            r.header("oci-filters-applied"),
            Some("artifactType"),
            "filter {artifact_type}"
        );
        expect_listed(&r, &want);
    }
    // Unencoded `/` in the filter value works the same.
    let r = referrers(
        &s,
        repo,
        &f.subject_digest,
        &format!("?artifactType={SBOM}"),
    );
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    expect_listed(&r, &[&f.sbom]);
}

#[test]
fn unknown_subject_has_an_empty_list() {
    let s = server();
    let unknown = sha256_digest(b"no such manifest");
    // In a repository that does not exist at all.
    let r = referrers(&s, "ref/nowhere", &unknown, "");
    expect_listed(&r, &[]);
    // And in one that does.
    let m = image(&s, "ref/somewhere", 3);
    push_manifest(&s.base_url(), "ref/somewhere", "v1", OCI_MANIFEST, &m);
    expect_listed(&referrers(&s, "ref/somewhere", &unknown, ""), &[]);
    // A subject without referrers.
    expect_listed(&referrers(&s, "ref/somewhere", &sha256_digest(&m), ""), &[]);
}

#[test]
fn referrers_are_scoped_to_the_repository() {
    let s = server();
    let f = fixture(&s, "ref/scoped");
    expect_listed(
        &referrers(&s, "ref/scoped-other", &f.subject_digest, ""),
        &[],
    );
}

#[test]
fn referrer_may_be_pushed_before_its_subject() {
    let s = server();
    let repo = "ref/early";
    let subject_bytes = image(&s, repo, 4);
    let subject = desc(OCI_MANIFEST, &subject_bytes);
    let subject_digest = sha256_digest(&subject_bytes);
    let ann = json!({"early": "yes"});
    let sig = artifact(&s, repo, SIGNATURE, &subject, ann.clone());
    put_referrer(
        &s,
        repo,
        &sha256_digest(&sig),
        OCI_MANIFEST,
        &sig,
        &subject_digest,
    );
    let want = expected(OCI_MANIFEST, &sig, Some(SIGNATURE), &ann);
    expect_listed(&referrers(&s, repo, &subject_digest, ""), &[&want]);
    // The subject arrives later; the referrer stays listed.
    push_manifest(&s.base_url(), repo, "v1", OCI_MANIFEST, &subject_bytes);
    expect_listed(&referrers(&s, repo, &subject_digest, ""), &[&want]);
}

#[test]
fn deleted_referrer_is_no_longer_listed() {
    let s = server();
    let repo = "ref/delete";
    let f = fixture(&s, repo);
    let sig = f.signature["digest"].as_str().unwrap();
    s.request("DELETE", &format!("/v2/{repo}/manifests/{sig}"), &[], b"")
        .expect_status(202);
    expect_listed(
        &referrers(&s, repo, &f.subject_digest, ""),
        &[&f.sbom, &f.by_config, &f.bundle, &f.plain_index],
    );
    expect_listed(
        &referrers(
            &s,
            repo,
            &f.subject_digest,
            &format!("?artifactType={SIGNATURE}"),
        ),
        &[],
    );
}

#[test]
fn referrers_of_an_invalid_digest_is_400() {
    let s = server();
    for bad in ["sha256:abc", "latest", "sha256:XYZ"] {
        let r = s.get(&format!("/v2/ref/invalid/referrers/{bad}"));
        r.expect_error(400, "DIGEST_INVALID");
    }
}
