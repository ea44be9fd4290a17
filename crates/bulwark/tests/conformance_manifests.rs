//! OCI Distribution Spec v1.1 conformance, manifests: push and pull by tag and digest of OCI
//! manifests, OCI indexes, Docker schema 2 manifests and manifest lists and artifacts, stored
//! byte for byte; validation errors; the size limit; tag and manifest deletion.
//!
//! Each test starts its own server on a fresh data dir and uses its own repository names.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use bulwark_testkit::{TestServer, push_blob, push_manifest, random_bytes, sha256_digest};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn server() -> TestServer {
    TestServer::start(Path::new(BIN))
}

/// A descriptor's three required fields.
struct Desc {
    media_type: String,
    digest: String,
    size: usize,
}

impl Desc {
    fn of(media_type: &str, bytes: &[u8]) -> Desc {
        Desc {
            media_type: media_type.to_owned(),
            digest: sha256_digest(bytes),
            size: bytes.len(),
        }
    }

    /// The descriptor as JSON, with `extra` (`, "k": v ...`) appended inside the object.
    fn json(&self, extra: &str) -> String {
        format!(
            r#"{{ "mediaType": "{}", "digest": "{}", "size": {}{extra} }}"#,
            self.media_type, self.digest, self.size
        )
    }
}

/// Pushes `bytes` as a blob into `repo` and returns its descriptor.
fn blob(s: &TestServer, repo: &str, media_type: &str, bytes: &[u8]) -> Desc {
    push_blob(&s.base_url(), repo, bytes);
    Desc::of(media_type, bytes)
}

/// Pushes a config and two layers into `repo` and returns an OCI image manifest over them,
/// formatted unusually (spacing, key order, trailing newline) so that any re-serialisation
/// by the registry shows.
fn oci_image(s: &TestServer, repo: &str, seed: u64) -> Vec<u8> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#);
    let config = blob(s, repo, OCI_CONFIG, config.as_bytes());
    let l1 = blob(s, repo, OCI_LAYER, &random_bytes(seed, 1500));
    let l2 = blob(s, repo, OCI_LAYER, &random_bytes(seed + 1, 700));
    oci_manifest_over(&config, &[&l1, &l2], seed)
}

fn oci_manifest_over(config: &Desc, layers: &[&Desc], seed: u64) -> Vec<u8> {
    let layers: Vec<String> = layers.iter().map(|l| l.json("")).collect();
    format!(
        "{{\n   \"mediaType\" :  \"{OCI_MANIFEST}\",\n   \"config\": {},\n   \"layers\": [\n      {}\n   ],\n   \"annotations\": {{ \"test.seed\": \"{seed}\" }},\n   \"schemaVersion\": 2\n}}\n",
        config.json(""),
        layers.join(",\n      ")
    )
    .into_bytes()
}

fn oci_index_over(children: &[&Desc], extra: &str) -> Vec<u8> {
    let children: Vec<String> = children
        .iter()
        .map(|c| c.json(r#", "platform": { "architecture": "amd64", "os": "linux" }"#))
        .collect();
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_INDEX}\",\n\"manifests\":[{}]{extra}}}",
        children.join(",")
    )
    .into_bytes()
}

/// GET and HEAD of `/v2/<repo>/manifests/<reference>` answer exactly `bytes` as `media_type`.
fn expect_manifest(s: &TestServer, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let digest = sha256_digest(bytes);
    let len = bytes.len().to_string();
    for method in ["GET", "HEAD"] {
        let r = s.request(method, &path, &[("Accept", media_type)], b"");
        r.expect_status(200);
        assert_eq!(
            r.header("content-type"),
            Some(media_type),
            "{method} {path}"
        );
        assert_eq!(
            r.header("docker-content-digest"),
            Some(digest.as_str()),
            "{method} {path}"
        );
        assert_eq!(
            r.header("content-length"),
            Some(len.as_str()),
            "{method} {path}"
        );
        if method == "GET" {
            assert!(
                r.body == bytes,
                "GET {path}: not byte-for-byte what was pushed:\n{}\n---\n{}",
                r.text(),
                String::from_utf8_lossy(bytes)
            );
        } else {
            assert!(r.body.is_empty(), "HEAD {path} has a body");
        }
    }
}

/// `/v2/<repo>/manifests/<reference>` is unknown: GET 404 MANIFEST_UNKNOWN, HEAD 404.
fn expect_no_manifest(s: &TestServer, repo: &str, reference: &str) {
    let path = format!("/v2/{repo}/manifests/{reference}");
    s.get(&path).expect_error(404, "MANIFEST_UNKNOWN");
    s.request("HEAD", &path, &[], b"").expect_status(404);
}

/// PUT a manifest; returns the response after checking 201, Location and, where present,
/// Docker-Content-Digest.
fn put_manifest(
    s: &TestServer,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> bulwark_testkit::HttpResponse {
    let r = s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        bytes,
    );
    r.expect_status(201);
    let digest = sha256_digest(bytes);
    let loc = s.target(r.header("location").expect("manifest PUT without Location"));
    assert!(
        loc == format!("/v2/{repo}/manifests/{digest}")
            || loc == format!("/v2/{repo}/manifests/{reference}"),
        "manifest PUT Location {loc}"
    );
    if let Some(d) = r.header("docker-content-digest") {
        assert_eq!(d, digest);
    }
    r
}

fn tags(s: &TestServer, repo: &str) -> Vec<String> {
    let r = s.get(&format!("/v2/{repo}/tags/list"));
    r.expect_status(200);
    let v = r.json();
    assert_eq!(v["name"], repo);
    v["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn oci_manifest_by_tag_and_digest() {
    let s = server();
    let repo = "man/oci";
    let m = oci_image(&s, repo, 100);
    let digest = sha256_digest(&m);
    expect_no_manifest(&s, repo, "v1");
    let r = put_manifest(&s, repo, "v1", OCI_MANIFEST, &m);
    // The Location is pullable.
    let loc = s.target(r.header("location").unwrap());
    let pulled = s.get(&loc);
    pulled.expect_status(200);
    assert!(pulled.body == m);
    expect_manifest(&s, repo, "v1", OCI_MANIFEST, &m);
    expect_manifest(&s, repo, &digest, OCI_MANIFEST, &m);
    // Another repository does not see it.
    expect_no_manifest(&s, "man/other", &digest);
    expect_no_manifest(&s, "man/other", "v1");
}

#[test]
fn oci_manifest_by_digest() {
    let s = server();
    let repo = "man/by-digest";
    let m = oci_image(&s, repo, 110);
    let digest = sha256_digest(&m);
    put_manifest(&s, repo, &digest, OCI_MANIFEST, &m);
    expect_manifest(&s, repo, &digest, OCI_MANIFEST, &m);
    assert!(tags(&s, repo).is_empty());
}

#[test]
fn put_by_digest_that_does_not_match_is_digest_invalid() {
    let s = server();
    let repo = "man/digest-mismatch";
    let m = oci_image(&s, repo, 120);
    let wrong = sha256_digest(b"another manifest");
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{wrong}"),
        &[("Content-Type", OCI_MANIFEST)],
        &m,
    )
    .expect_error(400, "DIGEST_INVALID");
    expect_no_manifest(&s, repo, &wrong);
    expect_no_manifest(&s, repo, &sha256_digest(&m));
}

#[test]
fn oci_index() {
    let s = server();
    let repo = "man/index";
    let a = oci_image(&s, repo, 130);
    let b = oci_image(&s, repo, 140);
    push_manifest(&s.base_url(), repo, &sha256_digest(&a), OCI_MANIFEST, &a);
    push_manifest(&s.base_url(), repo, &sha256_digest(&b), OCI_MANIFEST, &b);
    let index = oci_index_over(
        &[&Desc::of(OCI_MANIFEST, &a), &Desc::of(OCI_MANIFEST, &b)],
        r#", "annotations": {"test": "index"}"#,
    );
    put_manifest(&s, repo, "multi", OCI_INDEX, &index);
    expect_manifest(&s, repo, "multi", OCI_INDEX, &index);
    expect_manifest(&s, repo, &sha256_digest(&index), OCI_INDEX, &index);
    expect_manifest(&s, repo, &sha256_digest(&a), OCI_MANIFEST, &a);
}

#[test]
fn docker_schema2_manifest_and_manifest_list() {
    let s = server();
    let repo = "man/docker";
    let config = blob(
        &s,
        repo,
        DOCKER_CONFIG,
        br#"{"architecture":"arm64","os":"linux"}"#,
    );
    let layer = blob(&s, repo, DOCKER_LAYER, &random_bytes(150, 999));
    let manifest = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{DOCKER_MANIFEST}\",\n  \"config\": {},\n  \"layers\": [{}]\n}}",
        config.json(""),
        layer.json("")
    )
    .into_bytes();
    put_manifest(&s, repo, "single", DOCKER_MANIFEST, &manifest);
    expect_manifest(&s, repo, "single", DOCKER_MANIFEST, &manifest);

    let child = Desc::of(DOCKER_MANIFEST, &manifest);
    let list = format!(
        "{{\"schemaVersion\": 2, \"mediaType\": \"{DOCKER_LIST}\", \"manifests\": [{}]}}",
        child.json(r#", "platform": {"architecture": "arm64", "os": "linux"}"#)
    )
    .into_bytes();
    put_manifest(&s, repo, "list", DOCKER_LIST, &list);
    expect_manifest(&s, repo, "list", DOCKER_LIST, &list);
    expect_manifest(&s, repo, &sha256_digest(&list), DOCKER_LIST, &list);
}

#[test]
fn artifact_manifest_with_empty_config() {
    let s = server();
    let repo = "man/artifact";
    let empty = blob(&s, repo, OCI_EMPTY, b"{}");
    assert_eq!(
        empty.digest,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(empty.size, 2);
    let payload = blob(
        &s,
        repo,
        "application/vnd.example.thing.v1+json",
        br#"{"hello":"artifact"}"#,
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.thing.v1","config":{},"layers":[{}],"annotations":{{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}}}"#,
        empty.json(""),
        payload.json("")
    )
    .into_bytes();
    put_manifest(&s, repo, "thing", OCI_MANIFEST, &manifest);
    expect_manifest(&s, repo, "thing", OCI_MANIFEST, &manifest);

    // The empty descriptor may also stand in for the layers.
    let bare = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.bare.v1","config":{},"layers":[{}]}}"#,
        empty.json(""),
        empty.json("")
    )
    .into_bytes();
    put_manifest(&s, repo, "bare", OCI_MANIFEST, &bare);
    expect_manifest(&s, repo, "bare", OCI_MANIFEST, &bare);
}

#[test]
fn manifest_referencing_missing_blobs_is_manifest_blob_unknown() {
    let s = server();
    let repo = "man/missing";
    let config = blob(&s, repo, OCI_CONFIG, br#"{"os":"linux"}"#);
    let layer = blob(&s, repo, OCI_LAYER, &random_bytes(160, 100));
    let absent = Desc::of(OCI_LAYER, b"never pushed");

    let missing_layer = oci_manifest_over(&config, &[&layer, &absent], 1);
    let missing_config = oci_manifest_over(&absent, &[&layer], 2);
    for m in [&missing_layer, &missing_config] {
        s.request(
            "PUT",
            &format!("/v2/{repo}/manifests/latest"),
            &[("Content-Type", OCI_MANIFEST)],
            m,
        )
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    }
    expect_no_manifest(&s, repo, "latest");

    // Blobs that exist only in another repository do not count.
    let elsewhere = Desc::of(OCI_LAYER, &random_bytes(161, 100));
    push_blob(&s.base_url(), "man/elsewhere", &random_bytes(161, 100));
    let m = oci_manifest_over(&config, &[&elsewhere], 3);
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/latest"),
        &[("Content-Type", OCI_MANIFEST)],
        &m,
    )
    .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    expect_no_manifest(&s, repo, "latest");
}

#[test]
fn index_with_a_missing_child_is_manifest_blob_unknown() {
    let s = server();
    let repo = "man/index-missing";
    let a = oci_image(&s, repo, 170);
    push_manifest(&s.base_url(), repo, &sha256_digest(&a), OCI_MANIFEST, &a);
    let absent = oci_image(&s, repo, 180); // its blobs exist, the manifest itself was never pushed
    let index = oci_index_over(
        &[
            &Desc::of(OCI_MANIFEST, &a),
            &Desc::of(OCI_MANIFEST, &absent),
        ],
        "",
    );
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/idx"),
        &[("Content-Type", OCI_INDEX)],
        &index,
    )
    .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    expect_no_manifest(&s, repo, "idx");

    // A child that exists only in another repository does not count either.
    let other = oci_image(&s, "man/index-other", 190);
    push_manifest(
        &s.base_url(),
        "man/index-other",
        &sha256_digest(&other),
        OCI_MANIFEST,
        &other,
    );
    let index = oci_index_over(&[&Desc::of(OCI_MANIFEST, &other)], "");
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/idx"),
        &[("Content-Type", OCI_INDEX)],
        &index,
    )
    .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[test]
fn content_type_must_match_media_type() {
    let s = server();
    let repo = "man/content-type";
    let m = oci_image(&s, repo, 200);
    for wrong in [DOCKER_MANIFEST, OCI_INDEX] {
        s.request(
            "PUT",
            &format!("/v2/{repo}/manifests/latest"),
            &[("Content-Type", wrong)],
            &m,
        )
        .expect_error(400, "MANIFEST_INVALID");
    }
    expect_no_manifest(&s, repo, "latest");
}

#[test]
fn malformed_manifests_are_manifest_invalid() {
    let s = server();
    let repo = "man/malformed";
    let config = blob(&s, repo, OCI_CONFIG, br#"{"os":"linux"}"#);
    let bad: Vec<Vec<u8>> = vec![
        b"this is not json".to_vec(),
        b"{\"schemaVersion\":2,\"mediaType\":\"".to_vec(),
        format!(
            r#"{{"schemaVersion":1,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[]}}"#,
            config.json("")
        )
        .into_bytes(),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":"nope"}}"#,
            config.json("")
        )
        .into_bytes(),
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#).into_bytes(),
    ];
    for body in &bad {
        let r = s.request(
            "PUT",
            &format!("/v2/{repo}/manifests/latest"),
            &[("Content-Type", OCI_MANIFEST)],
            body,
        );
        r.expect_error(400, "MANIFEST_INVALID");
    }
    expect_no_manifest(&s, repo, "latest");
}

#[test]
fn unsupported_manifest_media_type_is_415() {
    let s = server();
    let repo = "man/unsupported";
    let config = blob(&s, repo, OCI_CONFIG, br#"{"os":"linux"}"#);
    // No mediaType in the body, so only the Content-Type is in question.
    let m = format!(
        r#"{{"schemaVersion":2,"config":{},"layers":[]}}"#,
        config.json("")
    )
    .into_bytes();
    for ct in ["text/plain", "application/vnd.example.unknown+json"] {
        s.request(
            "PUT",
            &format!("/v2/{repo}/manifests/latest"),
            &[("Content-Type", ct)],
            &m,
        )
        .expect_error(415, "UNSUPPORTED");
    }
    expect_no_manifest(&s, repo, "latest");
}

/// An OCI manifest of exactly `len` bytes (padded through an annotation).
fn manifest_of_len(config: &Desc, len: usize) -> Vec<u8> {
    let build = |pad: usize| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[],"annotations":{{"pad":"{}"}}}}"#,
            config.json(""),
            "x".repeat(pad)
        )
        .into_bytes()
    };
    let base = build(0).len();
    assert!(base <= len, "manifest skeleton is already {base} bytes");
    let m = build(len - base);
    assert_eq!(m.len(), len);
    m
}

#[test]
fn manifest_above_the_size_limit_is_413() {
    let s = TestServer::start_with(
        Path::new(BIN),
        &[("BULWARK_LIMITS__MAX_MANIFEST_BYTES", "1024")],
    );
    let repo = "man/limit";
    let config = blob(&s, repo, OCI_CONFIG, br#"{"os":"linux"}"#);
    let at_limit = manifest_of_len(&config, 1024);
    put_manifest(&s, repo, "fits", OCI_MANIFEST, &at_limit);
    expect_manifest(&s, repo, "fits", OCI_MANIFEST, &at_limit);

    let above = manifest_of_len(&config, 1025);
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/too-big"),
        &[("Content-Type", OCI_MANIFEST)],
        &above,
    )
    .expect_error(413, "SIZE_INVALID");
    let far_above = manifest_of_len(&config, 64 * 1024);
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/too-big"),
        &[("Content-Type", OCI_MANIFEST)],
        &far_above,
    )
    .expect_error(413, "SIZE_INVALID");
    expect_no_manifest(&s, repo, "too-big");
}

#[test]
fn default_size_limit_accepts_a_large_manifest() {
    // Clients expect at least 4 MB; the default limit is 4194304 bytes.
    let s = server();
    let repo = "man/large";
    let config = blob(&s, repo, OCI_CONFIG, br#"{"os":"linux"}"#);
    let m = manifest_of_len(&config, 4_194_304);
    put_manifest(&s, repo, "big", OCI_MANIFEST, &m);
    expect_manifest(&s, repo, "big", OCI_MANIFEST, &m);
    let above = manifest_of_len(&config, 4_194_305);
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/bigger"),
        &[("Content-Type", OCI_MANIFEST)],
        &above,
    )
    .expect_error(413, "SIZE_INVALID");
}

#[test]
fn unknown_manifests() {
    let s = server();
    let repo = "man/unknown";
    expect_no_manifest(&s, repo, "latest");
    expect_no_manifest(&s, repo, &sha256_digest(b"nothing"));
    let m = oci_image(&s, repo, 210);
    put_manifest(&s, repo, "present", OCI_MANIFEST, &m);
    expect_no_manifest(&s, repo, "absent");
    expect_no_manifest(&s, repo, &sha256_digest(b"nothing"));
}

#[test]
fn retagging_moves_the_tag_only() {
    let s = server();
    let repo = "man/retag";
    let m1 = oci_image(&s, repo, 220);
    let m2 = oci_image(&s, repo, 230);
    put_manifest(&s, repo, "latest", OCI_MANIFEST, &m1);
    put_manifest(&s, repo, "latest", OCI_MANIFEST, &m2);
    expect_manifest(&s, repo, "latest", OCI_MANIFEST, &m2);
    expect_manifest(&s, repo, &sha256_digest(&m1), OCI_MANIFEST, &m1);
    // The same manifest under a second tag.
    put_manifest(&s, repo, "stable", OCI_MANIFEST, &m2);
    expect_manifest(&s, repo, "stable", OCI_MANIFEST, &m2);
    assert_eq!(tags(&s, repo), ["latest", "stable"]);
}

#[test]
fn delete_tag_removes_only_the_tag() {
    let s = server();
    let repo = "man/delete-tag";
    let m = oci_image(&s, repo, 240);
    let digest = sha256_digest(&m);
    put_manifest(&s, repo, "a", OCI_MANIFEST, &m);
    put_manifest(&s, repo, "b", OCI_MANIFEST, &m);
    s.request("DELETE", &format!("/v2/{repo}/manifests/a"), &[], b"")
        .expect_status(202);
    expect_no_manifest(&s, repo, "a");
    expect_manifest(&s, repo, "b", OCI_MANIFEST, &m);
    expect_manifest(&s, repo, &digest, OCI_MANIFEST, &m);
    assert_eq!(tags(&s, repo), ["b"]);
    s.request("DELETE", &format!("/v2/{repo}/manifests/a"), &[], b"")
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn delete_manifest_by_digest_removes_its_tags() {
    let s = server();
    let repo = "man/delete-digest";
    let m = oci_image(&s, repo, 250);
    let keep = oci_image(&s, repo, 260);
    let digest = sha256_digest(&m);
    put_manifest(&s, repo, "t1", OCI_MANIFEST, &m);
    put_manifest(&s, repo, "t2", OCI_MANIFEST, &m);
    put_manifest(&s, repo, "keep", OCI_MANIFEST, &keep);
    // The same manifest in another repository is independent.
    let other = "man/delete-digest-other";
    oci_image(&s, other, 250);
    put_manifest(&s, other, "t1", OCI_MANIFEST, &m);

    s.request(
        "DELETE",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[],
        b"",
    )
    .expect_status(202);
    expect_no_manifest(&s, repo, &digest);
    expect_no_manifest(&s, repo, "t1");
    expect_no_manifest(&s, repo, "t2");
    expect_manifest(&s, repo, "keep", OCI_MANIFEST, &keep);
    assert_eq!(tags(&s, repo), ["keep"]);
    expect_manifest(&s, other, "t1", OCI_MANIFEST, &m);

    s.request(
        "DELETE",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[],
        b"",
    )
    .expect_error(404, "MANIFEST_UNKNOWN");
    // It can be pushed again.
    put_manifest(&s, repo, "t1", OCI_MANIFEST, &m);
    expect_manifest(&s, repo, "t1", OCI_MANIFEST, &m);
}

#[test]
fn invalid_tags_are_tag_invalid() {
    let s = server();
    let repo = "man/bad-tag";
    let m = oci_image(&s, repo, 270);
    let long = "t".repeat(129);
    for bad in ["-leading-dash", ".leading-dot", long.as_str()] {
        let path = format!("/v2/{repo}/manifests/{bad}");
        s.request("PUT", &path, &[("Content-Type", OCI_MANIFEST)], &m)
            .expect_error(400, "TAG_INVALID");
        s.get(&path).expect_error(400, "TAG_INVALID");
    }
    // The longest valid tag is fine.
    let longest = "t".repeat(128);
    put_manifest(&s, repo, &longest, OCI_MANIFEST, &m);
    expect_manifest(&s, repo, &longest, OCI_MANIFEST, &m);
}

#[test]
fn invalid_manifest_digests_are_digest_invalid() {
    let s = server();
    let repo = "man/bad-digest";
    let m = oci_image(&s, repo, 280);
    for bad in [
        "sha256:abc",
        "sha256:XYZ0000000000000000000000000000000000000000000000000000000000000",
    ] {
        let path = format!("/v2/{repo}/manifests/{bad}");
        s.request("PUT", &path, &[("Content-Type", OCI_MANIFEST)], &m)
            .expect_error(400, "DIGEST_INVALID");
        s.get(&path).expect_error(400, "DIGEST_INVALID");
    }
}

#[test]
fn content_type_parameters_are_ignored() {
    // Registries SHOULD ignore parameters on the Content-Type of a manifest PUT.
    let s = server();
    let repo = "man/ct-params";
    let m = oci_image(&s, repo, 290);
    let ct = format!("{OCI_MANIFEST}; charset=utf-8");
    s.request(
        "PUT",
        &format!("/v2/{repo}/manifests/v1"),
        &[("Content-Type", ct.as_str())],
        &m,
    )
    .expect_status(201);
    expect_manifest(&s, repo, "v1", OCI_MANIFEST, &m);
}
