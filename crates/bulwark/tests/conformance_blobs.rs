//! OCI Distribution Spec v1.1 conformance, blobs: every upload path (monolithic, single POST,
//! chunked, streamed), upload status and cancellation, digest checks, cross-repository mounts,
//! GET/HEAD with `Range`, deletion, repository isolation and a 64 MiB blob.
//!
//! Each test starts its own server on a fresh data dir and uses its own repository names.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use bulwark_testkit::{
    ADMIN_PASSWORD, ADMIN_USER, HttpResponse, TestServer, push_blob, random_bytes, sha256_digest,
    with_query,
};
use sha2::{Digest as _, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

fn server() -> TestServer {
    TestServer::start(Path::new(BIN))
}

/// POST `/v2/<repo>/blobs/uploads/`, checks the 202 and returns the upload's request target.
fn start_upload(s: &TestServer, repo: &str) -> String {
    let r = s.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    r.expect_status(202);
    let uuid = r.header("docker-upload-uuid").unwrap_or_default();
    assert!(
        !uuid.is_empty(),
        "POST upload lacks Docker-Upload-UUID: {:?}",
        r.headers
    );
    assert_eq!(r.header("range"), Some("0-0"), "POST upload Range");
    location(s, &r)
}

fn location(s: &TestServer, r: &HttpResponse) -> String {
    let loc = r
        .header("location")
        .unwrap_or_else(|| panic!("{} answered without Location: {:?}", r.request, r.headers));
    s.target(loc)
}

/// PATCH one chunk with `Content-Range: start-end`; checks the 202, `Range: 0-end` and returns
/// the next location.
fn patch_chunk(s: &TestServer, loc: &str, start: usize, chunk: &[u8]) -> String {
    let end = start + chunk.len() - 1;
    let range = format!("{start}-{end}");
    let r = s.request(
        "PATCH",
        loc,
        &[OCTET, ("Content-Range", range.as_str())],
        chunk,
    );
    r.expect_status(202);
    assert_eq!(r.header("range"), Some(format!("0-{end}").as_str()));
    location(s, &r)
}

/// Checks a 201 that completed a blob: `Location: /v2/<repo>/blobs/<digest>` and, where the
/// response carries it, `Docker-Content-Digest`.
fn expect_blob_created(s: &TestServer, r: &HttpResponse, repo: &str, digest: &str) {
    r.expect_status(201);
    assert_eq!(location(s, r), format!("/v2/{repo}/blobs/{digest}"));
    if let Some(d) = r.header("docker-content-digest") {
        assert_eq!(d, digest, "{} Docker-Content-Digest", r.request);
    }
}

/// GET and HEAD of the blob in `repo` answer its exact bytes and headers.
fn expect_blob(s: &TestServer, repo: &str, data: &[u8]) {
    let digest = sha256_digest(data);
    let path = format!("/v2/{repo}/blobs/{digest}");
    let len = data.len().to_string();
    let r = s.get(&path);
    r.expect_status(200);
    assert!(
        r.body == data,
        "GET {path}: body differs from what was pushed"
    );
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(r.header("content-length"), Some(len.as_str()));
    let r = s.request("HEAD", &path, &[], b"");
    r.expect_status(200);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(r.header("content-length"), Some(len.as_str()));
    assert!(r.body.is_empty());
}

/// The blob is not served from `repo`: GET is 404 BLOB_UNKNOWN, HEAD is 404.
fn expect_no_blob(s: &TestServer, repo: &str, digest: &str) {
    let path = format!("/v2/{repo}/blobs/{digest}");
    s.get(&path).expect_error(404, "BLOB_UNKNOWN");
    s.request("HEAD", &path, &[], b"").expect_status(404);
}

#[test]
fn monolithic_post_then_put() {
    let s = server();
    let repo = "mono/app";
    let data = random_bytes(1, 10_000);
    let digest = sha256_digest(&data);
    expect_no_blob(&s, repo, &digest);

    let loc = start_upload(&s, repo);
    let r = s.request("PUT", &with_query(&loc, "digest", &digest), &[OCTET], &data);
    expect_blob_created(&s, &r, repo, &digest);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    expect_blob(&s, repo, &data);

    // Pushing the same content again is fine and changes nothing.
    assert_eq!(push_blob(&s.base_url(), repo, &data), digest);
    expect_blob(&s, repo, &data);
}

#[test]
fn empty_blob() {
    let s = server();
    let repo = "mono/empty";
    let digest = push_blob(&s.base_url(), repo, b"");
    assert_eq!(
        digest,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    expect_blob(&s, repo, b"");
}

#[test]
fn single_post_with_digest() {
    let s = server();
    let repo = "single/app";
    let data = random_bytes(2, 4321);
    let digest = sha256_digest(&data);
    let r = s.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        &[OCTET],
        &data,
    );
    expect_blob_created(&s, &r, repo, &digest);
    expect_blob(&s, repo, &data);
}

#[test]
fn chunked_upload_three_patches_then_put() {
    let s = server();
    let repo = "chunked/three";
    let data = random_bytes(3, 3 * 1000 + 17);
    let digest = sha256_digest(&data);
    let mut loc = start_upload(&s, repo);
    for (i, chunk) in data.chunks(1006).enumerate() {
        loc = patch_chunk(&s, &loc, i * 1006, chunk);
        // Upload status follows the chunks.
        let st = s.request("GET", &loc, &[], b"");
        st.expect_status(204);
        let end = i * 1006 + chunk.len() - 1;
        assert_eq!(st.header("range"), Some(format!("0-{end}").as_str()));
        assert!(st.header("location").is_some(), "status lacks Location");
        assert!(st.body.is_empty());
    }
    // Not visible before the session is closed.
    expect_no_blob(&s, repo, &digest);
    let r = s.request("PUT", &with_query(&loc, "digest", &digest), &[], b"");
    expect_blob_created(&s, &r, repo, &digest);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    expect_blob(&s, repo, &data);
    // The session is gone once closed.
    s.request("GET", &loc, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn chunked_upload_with_final_chunk_in_put() {
    let s = server();
    let repo = "chunked/final-in-put";
    let data = random_bytes(4, 2500);
    let digest = sha256_digest(&data);
    let mut loc = start_upload(&s, repo);
    loc = patch_chunk(&s, &loc, 0, &data[..1000]);
    loc = patch_chunk(&s, &loc, 1000, &data[1000..2000]);
    let r = s.request(
        "PUT",
        &with_query(&loc, "digest", &digest),
        &[OCTET, ("Content-Range", "2000-2499")],
        &data[2000..],
    );
    expect_blob_created(&s, &r, repo, &digest);
    expect_blob(&s, repo, &data);
}

#[test]
fn streamed_patch_without_content_range() {
    let s = server();
    let repo = "chunked/streamed";
    let data = random_bytes(5, 300_000);
    let digest = sha256_digest(&data);
    let mut loc = start_upload(&s, repo);

    // A PATCH with a Content-Length but no Content-Range appends.
    let r = s.request("PATCH", &loc, &[OCTET], &data[..100_000]);
    r.expect_status(202);
    assert_eq!(r.header("range"), Some("0-99999"));
    loc = location(&s, &r);

    // A PATCH with a chunked transfer encoding (no length at all) appends too.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let body = reqwest::blocking::Body::new(io::Cursor::new(data[100_000..].to_vec()));
    let r = client
        .patch(format!("{}{loc}", s.base_url()))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "streamed PATCH: {r:?}");
    assert_eq!(
        r.headers().get("range").and_then(|v| v.to_str().ok()),
        Some("0-299999")
    );
    let next = r.headers()["location"].to_str().unwrap().to_owned();
    loc = s.target(&next);

    let r = s.request("PUT", &with_query(&loc, "digest", &digest), &[], b"");
    expect_blob_created(&s, &r, repo, &digest);
    expect_blob(&s, repo, &data);
}

#[test]
fn out_of_order_chunks_are_416() {
    let s = server();
    let repo = "chunked/out-of-order";
    let data = random_bytes(6, 300);
    let digest = sha256_digest(&data);

    // A first chunk that does not start at 0.
    let fresh = start_upload(&s, repo);
    s.request(
        "PATCH",
        &fresh,
        &[OCTET, ("Content-Range", "10-19")],
        &data[10..20],
    )
    .expect_error(416, "BLOB_UPLOAD_INVALID");

    let mut loc = start_upload(&s, repo);
    loc = patch_chunk(&s, &loc, 0, &data[..100]);
    // A gap.
    s.request(
        "PATCH",
        &loc,
        &[OCTET, ("Content-Range", "150-199")],
        &data[150..200],
    )
    .expect_error(416, "BLOB_UPLOAD_INVALID");
    // An overlap.
    s.request(
        "PATCH",
        &loc,
        &[OCTET, ("Content-Range", "50-149")],
        &data[50..150],
    )
    .expect_error(416, "BLOB_UPLOAD_INVALID");
    // The session still holds exactly the first chunk and accepts the right next one.
    let st = s.request("GET", &loc, &[], b"");
    st.expect_status(204);
    assert_eq!(st.header("range"), Some("0-99"));
    loc = patch_chunk(&s, &loc, 100, &data[100..200]);
    loc = patch_chunk(&s, &loc, 200, &data[200..]);
    let r = s.request("PUT", &with_query(&loc, "digest", &digest), &[], b"");
    expect_blob_created(&s, &r, repo, &digest);
    expect_blob(&s, repo, &data);
}

#[test]
fn content_range_disagreeing_with_the_body_is_rejected() {
    // The spec does not name the code; BLOB_UPLOAD_INVALID (400 or 416) or SIZE_INVALID (400)
    // are the candidates. What matters is that the chunk is refused.
    let s = server();
    let repo = "chunked/bad-range";
    let loc = start_upload(&s, repo);
    let r = s.request(
        "PATCH",
        &loc,
        &[OCTET, ("Content-Range", "0-99")],
        &random_bytes(7, 50),
    );
    assert!(
        r.status == 400 || r.status == 416,
        "PATCH with Content-Range 0-99 and 50 bytes answered {}: {}",
        r.status,
        r.text()
    );
    let codes = bulwark_testkit::error_codes(&r.body);
    assert!(
        codes
            .iter()
            .any(|c| c == "BLOB_UPLOAD_INVALID" || c == "SIZE_INVALID"),
        "codes {codes:?}"
    );
}

#[test]
fn upload_status() {
    let s = server();
    let repo = "status/app";
    let data = random_bytes(8, 50);
    let loc = start_upload(&s, repo);
    let r = s.request("PATCH", &loc, &[OCTET, ("Content-Range", "0-49")], &data);
    r.expect_status(202);
    let loc = location(&s, &r);
    let st = s.request("GET", &loc, &[], b"");
    st.expect_status(204);
    assert_eq!(st.header("range"), Some("0-49"));
    let st_loc = location(&s, &st);
    // The location from the status answer is usable for the next step.
    let digest = sha256_digest(&data);
    let r = s.request("PUT", &with_query(&st_loc, "digest", &digest), &[], b"");
    expect_blob_created(&s, &r, repo, &digest);
}

#[test]
fn cancel_upload() {
    let s = server();
    let repo = "cancel/app";
    let data = random_bytes(9, 64);
    let digest = sha256_digest(&data);
    let mut loc = start_upload(&s, repo);
    loc = patch_chunk(&s, &loc, 0, &data);
    s.request("DELETE", &loc, &[], b"").expect_status(204);
    s.request("GET", &loc, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request("PATCH", &loc, &[OCTET, ("Content-Range", "64-127")], &data)
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request("PUT", &with_query(&loc, "digest", &digest), &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request("DELETE", &loc, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    expect_no_blob(&s, repo, &digest);
}

#[test]
fn unknown_upload_session() {
    let s = server();
    let loc = "/v2/unknown/app/blobs/uploads/3f2b8a1e-0c7d-4e55-9d1a-000000000000";
    let digest = sha256_digest(b"x");
    s.request("GET", loc, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request("PATCH", loc, &[OCTET, ("Content-Range", "0-0")], b"x")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request("PUT", &with_query(loc, "digest", &digest), &[OCTET], b"x")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request("DELETE", loc, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn upload_session_belongs_to_its_repository() {
    let s = server();
    let r = s.request("POST", "/v2/owner/app/blobs/uploads/", &[], b"");
    r.expect_status(202);
    let uuid = r.header("docker-upload-uuid").unwrap().to_owned();
    let foreign = format!("/v2/intruder/app/blobs/uploads/{uuid}");
    let data = random_bytes(10, 10);
    s.request("GET", &foreign, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request("PATCH", &foreign, &[OCTET, ("Content-Range", "0-9")], &data)
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request(
        "PUT",
        &with_query(&foreign, "digest", &sha256_digest(&data)),
        &[OCTET],
        &data,
    )
    .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    expect_no_blob(&s, "intruder/app", &sha256_digest(&data));
}

#[test]
fn digest_mismatch_monolithic() {
    let s = server();
    let repo = "mismatch/mono";
    let data = random_bytes(11, 1000);
    let claimed = sha256_digest(b"something else entirely");
    let loc = start_upload(&s, repo);
    s.request(
        "PUT",
        &with_query(&loc, "digest", &claimed),
        &[OCTET],
        &data,
    )
    .expect_error(400, "DIGEST_INVALID");
    expect_no_blob(&s, repo, &claimed);
    expect_no_blob(&s, repo, &sha256_digest(&data));
}

#[test]
fn digest_mismatch_single_post() {
    let s = server();
    let repo = "mismatch/single";
    let data = random_bytes(12, 1000);
    let claimed = sha256_digest(b"not the body");
    s.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={claimed}"),
        &[OCTET],
        &data,
    )
    .expect_error(400, "DIGEST_INVALID");
    expect_no_blob(&s, repo, &claimed);
    expect_no_blob(&s, repo, &sha256_digest(&data));
}

#[test]
fn digest_mismatch_chunked() {
    let s = server();
    let repo = "mismatch/chunked";
    let data = random_bytes(13, 3000);
    let claimed = sha256_digest(&data[..2999]);
    let mut loc = start_upload(&s, repo);
    loc = patch_chunk(&s, &loc, 0, &data[..1500]);
    loc = patch_chunk(&s, &loc, 1500, &data[1500..]);
    s.request("PUT", &with_query(&loc, "digest", &claimed), &[], b"")
        .expect_error(400, "DIGEST_INVALID");
    expect_no_blob(&s, repo, &claimed);
    expect_no_blob(&s, repo, &sha256_digest(&data));
}

#[test]
fn malformed_digests_are_digest_invalid() {
    let s = server();
    let repo = "mismatch/malformed";
    let loc = start_upload(&s, repo);
    s.request(
        "PUT",
        &with_query(&loc, "digest", "sha256:not-hex"),
        &[OCTET],
        b"abc",
    )
    .expect_error(400, "DIGEST_INVALID");
    s.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest=sha256:abc"),
        &[OCTET],
        b"abc",
    )
    .expect_error(400, "DIGEST_INVALID");
    for bad in ["sha256:abc", "sha256:zz", "sha256:"] {
        s.get(&format!("/v2/{repo}/blobs/{bad}"))
            .expect_error(400, "DIGEST_INVALID");
    }
}

#[test]
fn blob_path_with_a_non_digest_is_digest_invalid() {
    // `/v2/<name>/blobs/<digest>` with something that is not a digest at all is still that
    // endpoint with an invalid digest, as `/referrers/<not a digest>` is.
    let s = server();
    for bad in ["nodigest", "latest"] {
        s.get(&format!("/v2/mismatch/plain/blobs/{bad}"))
            .expect_error(400, "DIGEST_INVALID");
        s.request(
            "DELETE",
            &format!("/v2/mismatch/plain/blobs/{bad}"),
            &[],
            b"",
        )
        .expect_error(400, "DIGEST_INVALID");
    }
}

#[test]
fn mount_from_a_repository_that_has_the_blob() {
    let s = server();
    let data = random_bytes(14, 2048);
    let digest = push_blob(&s.base_url(), "mount/source", &data);
    expect_no_blob(&s, "mount/target", &digest);
    let r = s.request(
        "POST",
        &format!("/v2/mount/target/blobs/uploads/?mount={digest}&from=mount/source"),
        &[],
        b"",
    );
    expect_blob_created(&s, &r, "mount/target", &digest);
    expect_blob(&s, "mount/target", &data);
    expect_blob(&s, "mount/source", &data);
}

#[test]
fn mount_without_from() {
    let s = server();
    let data = random_bytes(15, 2048);
    let digest = push_blob(&s.base_url(), "mountany/source", &data);
    let r = s.request(
        "POST",
        &format!("/v2/mountany/target/blobs/uploads/?mount={digest}"),
        &[],
        b"",
    );
    expect_blob_created(&s, &r, "mountany/target", &digest);
    expect_blob(&s, "mountany/target", &data);
}

#[test]
fn mount_that_cannot_be_satisfied_starts_an_upload() {
    let s = server();
    let data = random_bytes(16, 777);
    let digest = push_blob(&s.base_url(), "mountfail/has", &data);

    // The named source lacks the blob (it exists elsewhere): 202 and a usable session.
    let r = s.request(
        "POST",
        &format!("/v2/mountfail/target/blobs/uploads/?mount={digest}&from=mountfail/lacks"),
        &[],
        b"",
    );
    r.expect_status(202);
    assert!(
        r.header("docker-upload-uuid")
            .is_some_and(|u| !u.is_empty())
    );
    let loc = location(&s, &r);
    expect_no_blob(&s, "mountfail/target", &digest);
    let done = s.request("PUT", &with_query(&loc, "digest", &digest), &[OCTET], &data);
    expect_blob_created(&s, &done, "mountfail/target", &digest);
    expect_blob(&s, "mountfail/target", &data);

    // A blob no repository has, without `from`: 202 too.
    let unknown = sha256_digest(b"nobody has this");
    let r = s.request(
        "POST",
        &format!("/v2/mountfail/other/blobs/uploads/?mount={unknown}"),
        &[],
        b"",
    );
    r.expect_status(202);
    assert!(r.header("location").is_some());
    expect_no_blob(&s, "mountfail/other", &unknown);
}

#[test]
fn blobs_are_scoped_to_their_repository() {
    let s = server();
    let data = random_bytes(17, 100);
    let digest = push_blob(&s.base_url(), "scope/a", &data);
    expect_blob(&s, "scope/a", &data);
    expect_no_blob(&s, "scope/b", &digest);
    expect_no_blob(&s, "scope/a/sub", &digest);
    // An unknown digest in a known repository.
    expect_no_blob(&s, "scope/a", &sha256_digest(b"unknown"));
}

#[test]
fn blob_range_requests() {
    let s = server();
    let repo = "range/app";
    let data = random_bytes(18, 1000);
    let digest = push_blob(&s.base_url(), repo, &data);
    let path = format!("/v2/{repo}/blobs/{digest}");
    let cases: [(&str, usize, usize); 5] = [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 999),
        ("bytes=-5", 995, 999),
        ("bytes=990-5000", 990, 999),
        ("bytes=999-999", 999, 999),
    ];
    for (range, start, end) in cases {
        let r = s.request("GET", &path, &[("Range", range)], b"");
        r.expect_status(206);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/1000").as_str()),
            "Range {range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start + 1).to_string().as_str()),
            "Range {range}"
        );
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
        assert!(r.body == data[start..=end], "Range {range}: wrong bytes");
    }
    let r = s.request("GET", &path, &[("Range", "bytes=1000-")], b"");
    r.expect_status(416);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    let r = s.request("GET", &path, &[("Range", "bytes=5000-6000")], b"");
    r.expect_status(416);
}

#[test]
fn delete_blob() {
    let s = server();
    let repo = "delete/blob";
    let data = random_bytes(19, 300);
    let digest = push_blob(&s.base_url(), repo, &data);
    push_blob(&s.base_url(), "delete/other", &data);
    let path = format!("/v2/{repo}/blobs/{digest}");
    s.request("DELETE", &path, &[], b"").expect_status(202);
    expect_no_blob(&s, repo, &digest);
    s.request("DELETE", &path, &[], b"")
        .expect_error(404, "BLOB_UNKNOWN");
    // Only this repository lost it.
    expect_blob(&s, "delete/other", &data);
    // It can be pushed again.
    push_blob(&s.base_url(), repo, &data);
    expect_blob(&s, repo, &data);
}

#[test]
fn blob_used_by_a_manifest_cannot_be_deleted() {
    let s = server();
    let repo = "delete/inuse";
    let config = b"{}";
    let layer = random_bytes(23, 100);
    let config_digest = push_blob(&s.base_url(), repo, config);
    let layer_digest = push_blob(&s.base_url(), repo, &layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":100}}]}}"#
    );
    let manifest_digest = bulwark_testkit::push_manifest(
        &s.base_url(),
        repo,
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    let path = format!("/v2/{repo}/blobs/{layer_digest}");
    let r = s.request("DELETE", &path, &[], b"");
    r.expect_error(405, "UNSUPPORTED");
    assert!(r.text().contains(&manifest_digest), "{}", r.text());
    expect_blob(&s, repo, &layer);
    // Once the manifest is gone the layer can be deleted.
    s.request(
        "DELETE",
        &format!("/v2/{repo}/manifests/{manifest_digest}"),
        &[],
        b"",
    )
    .expect_status(202);
    s.request("DELETE", &path, &[], b"").expect_status(202);
    expect_no_blob(&s, repo, &layer_digest);
}

/// Generates the 64 MiB test blob chunk by chunk.
fn large_chunk(i: usize) -> Vec<u8> {
    random_bytes(1000 + i as u64, 8 << 20)
}

#[test]
fn blob_of_64_mib_in_8_chunks() {
    let s = server();
    let repo = "large/blob";
    let chunk_len = 8 << 20;
    let mut hasher = Sha256::new();
    for i in 0..8 {
        hasher.update(large_chunk(i));
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));

    let mut loc = start_upload(&s, repo);
    for i in 0..8 {
        loc = patch_chunk(&s, &loc, i * chunk_len, &large_chunk(i));
    }
    let r = s.request("PUT", &with_query(&loc, "digest", &digest), &[], b"");
    expect_blob_created(&s, &r, repo, &digest);

    let path = format!("/v2/{repo}/blobs/{digest}");
    let head = s.request("HEAD", &path, &[], b"");
    head.expect_status(200);
    assert_eq!(head.header("content-length"), Some("67108864"));

    // Stream it back through the hasher rather than holding it.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let mut resp = client
        .get(format!("{}{path}", s.base_url()))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok()),
        Some(digest.as_str())
    );
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0usize;
    loop {
        let n = resp.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n;
    }
    assert_eq!(total, 64 << 20);
    assert_eq!(format!("sha256:{}", hex::encode(hasher.finalize())), digest);

    // A range deep inside reads the right bytes.
    let r = s.request("GET", &path, &[("Range", "bytes=41943040-41943055")], b"");
    r.expect_status(206);
    assert!(r.body == large_chunk(5)[..16], "range inside chunk 5");
}

#[test]
fn percent_encoded_query_values() {
    // Go clients (containerd, docker) send `digest=sha256%3A...` and `from=a%2Fb`.
    let s = server();
    let data = random_bytes(20, 321);
    let digest = sha256_digest(&data);
    let encoded = digest.replace(':', "%3A");

    let loc = start_upload(&s, "encoded/src");
    let r = s.request(
        "PUT",
        &with_query(&loc, "digest", &encoded),
        &[OCTET],
        &data,
    );
    expect_blob_created(&s, &r, "encoded/src", &digest);

    let r = s.request(
        "POST",
        &format!("/v2/encoded/single/blobs/uploads/?digest={encoded}"),
        &[OCTET],
        &data,
    );
    expect_blob_created(&s, &r, "encoded/single", &digest);

    let r = s.request(
        "POST",
        &format!("/v2/encoded/dst/blobs/uploads/?mount={encoded}&from=encoded%2Fsrc"),
        &[],
        b"",
    );
    expect_blob_created(&s, &r, "encoded/dst", &digest);
    expect_blob(&s, "encoded/dst", &data);
}
