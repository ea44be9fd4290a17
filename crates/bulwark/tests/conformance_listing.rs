//! OCI Distribution Spec v1.1 conformance, the rest of the surface: the base endpoint, health
//! probes, tag listing and the catalog with pagination, repository names (invalid ones and
//! deep ones) and methods an endpoint does not support.
//!
//! Each test starts its own server on a fresh data dir and uses its own repository names.
// Test helpers outside #[test] functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use bulwark_testkit::{
    TestServer, next_link, push_blob, push_manifest, random_bytes, sha256_digest, with_query,
};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn server() -> TestServer {
    TestServer::start(Path::new(BIN))
}

/// Pushes a small image (config + one layer) into `repo` and returns its manifest bytes.
fn image(s: &TestServer, repo: &str, seed: u64) -> Vec<u8> {
    let config = format!(r#"{{"os":"linux","seed":{seed}}}"#).into_bytes();
    let layer = random_bytes(seed, 256);
    push_blob(&s.base_url(), repo, &config);
    push_blob(&s.base_url(), repo, &layer);
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER}","digest":"{}","size":{}}}]}}"#,
        sha256_digest(&config),
        config.len(),
        sha256_digest(&layer),
        layer.len()
    )
    .into_bytes()
}

/// Pushes one image into `repo` and tags it with every tag in `tags`.
fn tagged_image(s: &TestServer, repo: &str, tags: &[&str]) -> Vec<u8> {
    let m = image(s, repo, 1);
    for tag in tags {
        push_manifest(&s.base_url(), repo, tag, OCI_MANIFEST, &m);
    }
    m
}

fn string_list(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {v}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// Follows `Link: <..>; rel="next"` from `first` to the end; returns the pages' items
/// (under `key`) and the link targets followed.
fn paginate(s: &TestServer, first: &str, key: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let mut pages = Vec::new();
    let mut links = Vec::new();
    let mut target = first.to_owned();
    loop {
        assert!(pages.len() < 50, "pagination does not end");
        let r = s.get(&target);
        r.expect_status(200);
        assert!(
            r.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "GET {target} Content-Type {:?}",
            r.header("content-type")
        );
        pages.push(string_list(&r.json()[key]));
        match r.header("link") {
            None => return (pages, links),
            Some(link) => {
                let next = next_link(link)
                    .unwrap_or_else(|| panic!("GET {target}: Link without rel=\"next\": {link}"));
                target = s.target(&next);
                links.push(target.clone());
            }
        }
    }
}

#[test]
fn base_endpoint() {
    let s = server();
    s.get("/v2/").expect_status(200);
}

#[test]
fn health_and_readiness() {
    let s = server();
    s.get("/healthz").expect_status(200);
    s.get("/readyz").expect_status(200);
}

// Not plain lexical if `v1.10` came after `v1.2`; no uppercase or `_`, whose order differs
// between the spec's two permitted orders (case-insensitive and ASCIIbetical).
const TAGS: [&str; 7] = ["v1.2", "latest", "v1.10", "0.1", "alpha", "a-b", "a.b"];
const SORTED: [&str; 7] = ["0.1", "a-b", "a.b", "alpha", "latest", "v1.10", "v1.2"];

#[test]
fn tags_list_is_sorted() {
    let s = server();
    let repo = "tags/sorted";
    tagged_image(&s, repo, &TAGS);
    let r = s.get(&format!("/v2/{repo}/tags/list"));
    r.expect_status(200);
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
    );
    assert!(r.header("link").is_none(), "Link on a complete list");
    let v = r.json();
    assert_eq!(v["name"], repo);
    assert_eq!(string_list(&v["tags"]), SORTED);
}

#[test]
fn tags_list_pagination() {
    let s = server();
    let repo = "tags/paged";
    tagged_image(&s, repo, &TAGS);
    let first = format!("/v2/{repo}/tags/list?n=3");
    let (pages, links) = paginate(&s, &first, "tags");
    assert_eq!(
        pages,
        [
            vec!["0.1", "a-b", "a.b"],
            vec!["alpha", "latest", "v1.10"],
            vec!["v1.2"]
        ]
    );
    for (link, last) in links.iter().zip(["a.b", "v1.10"]) {
        assert!(
            link.starts_with(&format!("/v2/{repo}/tags/list?")),
            "Link {link}"
        );
        assert!(link.contains("n=3"), "Link {link} lacks n=3");
        assert!(
            link.contains(&format!("last={last}")),
            "Link {link} lacks last={last}"
        );
    }

    // Exactly n remain: no Link.
    let r = s.get(&format!("/v2/{repo}/tags/list?n=7"));
    r.expect_status(200);
    assert_eq!(string_list(&r.json()["tags"]), SORTED);
    assert!(r.header("link").is_none(), "Link when nothing remains");
    let r = s.get(&format!("/v2/{repo}/tags/list?n=100"));
    assert_eq!(string_list(&r.json()["tags"]), SORTED);
    assert!(r.header("link").is_none());

    // `last` alone, and with `n`.
    let r = s.get(&format!("/v2/{repo}/tags/list?last=alpha"));
    r.expect_status(200);
    assert_eq!(string_list(&r.json()["tags"]), ["latest", "v1.10", "v1.2"]);
    let r = s.get(&format!("/v2/{repo}/tags/list?n=2&last=a-b"));
    r.expect_status(200);
    assert_eq!(string_list(&r.json()["tags"]), ["a.b", "alpha"]);
    assert!(r.header("link").is_some(), "Link missing while tags remain");
    // `last` need not be an existing tag.
    let r = s.get(&format!("/v2/{repo}/tags/list?n=2&last=b"));
    assert_eq!(string_list(&r.json()["tags"]), ["latest", "v1.10"]);
    let r = s.get(&format!("/v2/{repo}/tags/list?last=v1.2"));
    assert!(string_list(&r.json()["tags"]).is_empty());
    assert!(r.header("link").is_none());
}

#[test]
fn tags_list_n_zero_and_bad_n() {
    let s = server();
    let repo = "tags/n";
    tagged_image(&s, repo, &TAGS);
    let r = s.get(&format!("/v2/{repo}/tags/list?n=0"));
    r.expect_status(200);
    assert!(string_list(&r.json()["tags"]).is_empty());
    assert!(r.header("link").is_none(), "n=0 MUST NOT have a Link");
    for bad in ["-1", "abc", "1.5", ""] {
        s.get(&format!("/v2/{repo}/tags/list?n={bad}"))
            .expect_error(400, "PAGINATION_NUMBER_INVALID");
    }
}

#[test]
fn tags_list_of_unknown_repository_is_name_unknown() {
    let s = server();
    s.get("/v2/tags/never-pushed/tags/list")
        .expect_error(404, "NAME_UNKNOWN");
}

const REPOS: [&str; 6] = ["cat/b", "cat/a", "cat/a/deeper", "zeta", "cat/c", "alpha"];
const SORTED_REPOS: [&str; 6] = ["alpha", "cat/a", "cat/a/deeper", "cat/b", "cat/c", "zeta"];

#[test]
fn catalog_lists_repositories_sorted() {
    let s = server();
    for (i, repo) in REPOS.iter().enumerate() {
        let m = image(&s, repo, i as u64);
        push_manifest(&s.base_url(), repo, "latest", OCI_MANIFEST, &m);
    }
    let r = s.get("/v2/_catalog");
    r.expect_status(200);
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
    );
    assert_eq!(string_list(&r.json()["repositories"]), SORTED_REPOS);
    assert!(r.header("link").is_none());

    let (pages, links) = paginate(&s, "/v2/_catalog?n=2", "repositories");
    assert_eq!(
        pages,
        [
            vec!["alpha", "cat/a"],
            vec!["cat/a/deeper", "cat/b"],
            vec!["cat/c", "zeta"]
        ]
    );
    for link in &links {
        assert!(link.starts_with("/v2/_catalog?"), "Link {link}");
        assert!(link.contains("n=2"), "Link {link}");
        assert!(link.contains("last="), "Link {link}");
    }
    let r = s.get("/v2/_catalog?n=3&last=cat/a");
    assert_eq!(
        string_list(&r.json()["repositories"]),
        ["cat/a/deeper", "cat/b", "cat/c"]
    );
    let r = s.get("/v2/_catalog?last=cat/c");
    assert_eq!(string_list(&r.json()["repositories"]), ["zeta"]);

    let r = s.get("/v2/_catalog?n=0");
    r.expect_status(200);
    assert!(string_list(&r.json()["repositories"]).is_empty());
    assert!(r.header("link").is_none());
    for bad in ["-2", "many"] {
        s.get(&format!("/v2/_catalog?n={bad}"))
            .expect_error(400, "PAGINATION_NUMBER_INVALID");
    }
}

#[test]
fn invalid_repository_names_are_name_invalid() {
    let s = server();
    let digest = sha256_digest(b"x");
    let long = format!("a/{}", "b".repeat(254));
    for name in [
        "Upper",
        "lower/Upper",
        "a..b",
        "trailing-",
        "-leading",
        long.as_str(),
    ] {
        s.get(&format!("/v2/{name}/tags/list"))
            .expect_error(400, "NAME_INVALID");
        s.get(&format!("/v2/{name}/manifests/latest"))
            .expect_error(400, "NAME_INVALID");
        s.get(&format!("/v2/{name}/blobs/{digest}"))
            .expect_error(400, "NAME_INVALID");
        s.request("POST", &format!("/v2/{name}/blobs/uploads/"), &[], b"")
            .expect_error(400, "NAME_INVALID");
        s.request(
            "PUT",
            &format!("/v2/{name}/manifests/latest"),
            &[("Content-Type", OCI_MANIFEST)],
            b"{}",
        )
        .expect_error(400, "NAME_INVALID");
    }
}

#[test]
fn unsupported_methods_are_405() {
    let s = server();
    let repo = "methods/app";
    let m = tagged_image(&s, repo, &["latest"]);
    let digest = sha256_digest(&m);
    let blob = sha256_digest(br#"{"os":"linux","seed":1}"#);
    let cases = [
        ("POST", "/v2/".to_owned()),
        ("DELETE", "/v2/".to_owned()),
        ("POST", format!("/v2/{repo}/manifests/latest")),
        ("PATCH", format!("/v2/{repo}/manifests/{digest}")),
        ("PUT", format!("/v2/{repo}/blobs/{blob}")),
        ("POST", format!("/v2/{repo}/blobs/{blob}")),
        ("PATCH", format!("/v2/{repo}/blobs/{blob}")),
        ("DELETE", format!("/v2/{repo}/tags/list")),
        ("PUT", format!("/v2/{repo}/tags/list")),
        ("POST", "/v2/_catalog".to_owned()),
        ("PUT", format!("/v2/{repo}/referrers/{digest}")),
        ("DELETE", format!("/v2/{repo}/referrers/{digest}")),
    ];
    for (method, path) in &cases {
        s.request(method, path, &[], b"")
            .expect_error(405, "UNSUPPORTED");
    }
    // Nothing was changed by the refused requests.
    s.get(&format!("/v2/{repo}/manifests/latest"))
        .expect_status(200);
    s.get(&format!("/v2/{repo}/blobs/{blob}"))
        .expect_status(200);
}

/// A full round trip in `repo`: blob push (monolithic and chunked), manifest push, pulls,
/// tags, referrers, deletes.
fn round_trip(s: &TestServer, repo: &str) {
    let m = image(s, repo, 7);
    let digest = push_manifest(&s.base_url(), repo, "v1", OCI_MANIFEST, &m);
    let r = s.get(&format!("/v2/{repo}/manifests/v1"));
    r.expect_status(200);
    assert!(r.body == m);
    let r = s.get(&format!("/v2/{repo}/manifests/{digest}"));
    r.expect_status(200);
    let layer = random_bytes(7, 256);
    let r = s.get(&format!("/v2/{repo}/blobs/{}", sha256_digest(&layer)));
    r.expect_status(200);
    assert!(r.body == layer);

    // Chunked upload.
    let data = random_bytes(8, 100);
    let data_digest = sha256_digest(&data);
    let r = s.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    r.expect_status(202);
    let loc = s.target(r.header("location").unwrap());
    let r = s.request(
        "PATCH",
        &loc,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "0-99"),
        ],
        &data,
    );
    r.expect_status(202);
    let loc = s.target(r.header("location").unwrap());
    s.request("GET", &loc, &[], b"").expect_status(204);
    let r = s.request("PUT", &with_query(&loc, "digest", &data_digest), &[], b"");
    r.expect_status(201);
    assert_eq!(
        s.target(r.header("location").unwrap()),
        format!("/v2/{repo}/blobs/{data_digest}")
    );
    s.get(&format!("/v2/{repo}/blobs/{data_digest}"))
        .expect_status(200);

    let r = s.get(&format!("/v2/{repo}/tags/list"));
    r.expect_status(200);
    assert_eq!(r.json()["name"], repo);
    assert_eq!(string_list(&r.json()["tags"]), ["v1"]);
    s.get(&format!("/v2/{repo}/referrers/{digest}"))
        .expect_status(200);

    s.request("DELETE", &format!("/v2/{repo}/manifests/v1"), &[], b"")
        .expect_status(202);
    s.request(
        "DELETE",
        &format!("/v2/{repo}/manifests/{digest}"),
        &[],
        b"",
    )
    .expect_status(202);
    s.request(
        "DELETE",
        &format!("/v2/{repo}/blobs/{data_digest}"),
        &[],
        b"",
    )
    .expect_status(202);
    s.get(&format!("/v2/{repo}/blobs/{data_digest}"))
        .expect_error(404, "BLOB_UNKNOWN");
}

#[test]
fn deep_repository_names() {
    let s = server();
    round_trip(&s, "a/b/c/d");
    round_trip(&s, "x/y/z/w/v/u/t/s/r/q");
    round_trip(&s, "a.b/c_d/e__f/g--h");
}

#[test]
fn repository_names_that_look_like_endpoints() {
    // Valid names whose components are the spec's own path keywords.
    let s = server();
    round_trip(&s, "team/blobs");
    round_trip(&s, "team/manifests/tags");
    round_trip(&s, "blobs/uploads/referrers/list");
}

#[test]
fn catalog_shows_deep_repositories() {
    let s = server();
    round_trip(&s, "deep/one/two/three");
    let m = image(&s, "deep/one", 9);
    push_manifest(&s.base_url(), "deep/one", "v1", OCI_MANIFEST, &m);
    let r = s.get("/v2/_catalog");
    r.expect_status(200);
    let repos = string_list(&r.json()["repositories"]);
    assert!(repos.contains(&"deep/one".to_owned()), "{repos:?}");
}

#[test]
fn json_log_format() {
    let mut s = TestServer::start_with(
        Path::new(BIN),
        &[
            ("BULWARK_LOG__FORMAT", "json"),
            ("BULWARK_LOG__LEVEL", "debug"),
        ],
    );
    s.get("/v2/").expect_status(200);
    s.get("/v2/logs/app/tags/list")
        .expect_error(404, "NAME_UNKNOWN");
    s.terminate();
    assert!(
        s.wait_exit(std::time::Duration::from_secs(20))
            .is_some_and(|st| st.success()),
        "no clean exit on SIGTERM"
    );
    let log = s.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing was logged");
    for line in lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
            "not a JSON log line: {line}"
        );
    }
}
