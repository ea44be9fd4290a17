//! Several `bulwark serve` replicas sharing one PostgreSQL database and one S3 bucket behave as
//! one registry: uploads move between replicas, tags are visible everywhere at once, a replica
//! killed mid-push loses nothing acknowledged, and online GC during a push storm deletes
//! nothing referenced. Needs `BULWARK_TEST_POSTGRES_URL` and `BULWARK_TEST_S3_ENDPOINT`
//! (scripts/test.sh provides both); skipped without them unless `BULWARK_REQUIRE_POSTGRES=1` /
//! `BULWARK_REQUIRE_S3=1` demand them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::time::Duration;

use bulwark_testkit::{push_blob, push_manifest, random_bytes, sha256_digest};

#[allow(dead_code)]
mod support;

use support::scale::{Cluster, backends};

fn location(resp: &bulwark_testkit::HttpResponse) -> String {
    resp.header("location").expect("Location").to_owned()
}

fn manifest_for(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let desc = |media: &str, b: &[u8]| serde_json::json!({"mediaType": media, "digest": sha256_digest(b), "size": b.len()});
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": layers.iter().map(|l| desc("application/vnd.oci.image.layer.v1.tar", l)).collect::<Vec<_>>(),
    }))
    .unwrap()
}

#[test]
fn replicas_share_uploads_tags_and_blobs() {
    let Some((pg, s3)) = backends() else { return };
    let cluster = Cluster::new(&pg, &s3);
    // Started together: the schema, the first admin and the signing key are created once.
    let a = cluster.replica(&[]);
    let b = cluster.replica(&[]);
    let c = cluster.replica(&[]);

    // A chunked upload started on A, continued on B and C, finished on A.
    let data = random_bytes(1, 3 * 1024 * 1024 + 17);
    let digest = sha256_digest(&data);
    let start = a.request("POST", "/v2/team/app/blobs/uploads/", &[], &[]);
    start.expect_status(202);
    let mut loc = location(&start);
    let cuts = [0, 1_000_000, 2_500_000, data.len()];
    for (i, w) in cuts.windows(2).enumerate() {
        let server = [&b, &c, &a][i];
        let range = format!("{}-{}", w[0], w[1] - 1);
        let resp = server.request(
            "PATCH",
            &server.target(&loc),
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", &range),
            ],
            &data[w[0]..w[1]],
        );
        resp.expect_status(202);
        assert_eq!(
            resp.header("range"),
            Some(format!("0-{}", w[1] - 1).as_str())
        );
        loc = location(&resp);
    }
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = b.request(
        "PUT",
        &b.target(&format!("{loc}{sep}digest={digest}")),
        &[],
        &[],
    );
    put.expect_status(201);
    for server in [&a, &b, &c] {
        let got = server.get(&format!("/v2/team/app/blobs/{digest}"));
        got.expect_status(200);
        assert_eq!(got.body, data);
    }

    // A tag pushed on A is visible on B and C immediately, with its exact bytes.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    push_blob(&a.base_url(), "team/app", &config);
    let manifest = manifest_for(&config, &[&data]);
    let mdigest = push_manifest(
        &a.base_url(),
        "team/app",
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );
    for server in [&b, &c] {
        let got = server.get("/v2/team/app/manifests/v1");
        got.expect_status(200);
        assert_eq!(got.body, manifest);
        assert_eq!(got.header("docker-content-digest"), Some(mdigest.as_str()));
    }

    // A token issued by one replica is accepted by the others (shared signing keys).
    let token = a.token(
        Some(("admin", bulwark_testkit::ADMIN_PASSWORD)),
        &["repository:team/app:pull"],
    );
    let bearer = format!("Bearer {token}");
    let got = c.request(
        "GET",
        "/v2/team/app/manifests/v1",
        &[("Authorization", bearer.as_str())],
        &[],
    );
    got.expect_status(200);

    // The same blob pushed concurrently through two replicas: both succeed, one copy.
    let same = random_bytes(9, 2 * 1024 * 1024);
    let same_digest = sha256_digest(&same);
    std::thread::scope(|s| {
        for server in [&a, &b] {
            let same = &same;
            s.spawn(move || push_blob(&server.base_url(), "team/other", same));
        }
    });
    let got = c.get(&format!("/v2/team/other/blobs/{same_digest}"));
    got.expect_status(200);
    assert_eq!(sha256_digest(&got.body), same_digest);
}

#[test]
fn killing_a_replica_mid_push_loses_nothing_acknowledged() {
    let Some((pg, s3)) = backends() else { return };
    let cluster = Cluster::new(&pg, &s3);
    let mut a = cluster.replica(&[]);
    let b = cluster.replica(&[]);

    let data = random_bytes(3, 4 * 1024 * 1024);
    let digest = sha256_digest(&data);
    let start = a.request("POST", "/v2/team/big/blobs/uploads/", &[], &[]);
    start.expect_status(202);
    let loc = location(&start);
    let first = a.request(
        "PATCH",
        &a.target(&loc),
        &[("Content-Range", "0-1048575")],
        &data[..1_048_576],
    );
    first.expect_status(202);
    let loc = location(&first);

    // A second chunk is on its way to A when A dies: send half of it, then kill -9.
    let addr = a.addr();
    let target = a.target(&loc);
    let auth = bulwark_testkit::basic_header("admin", bulwark_testkit::ADMIN_PASSWORD);
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "PATCH {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Range: 1048576-4194303\r\nContent-Length: 3145728\r\n\r\n"
    )
    .unwrap();
    stream.write_all(&data[1_048_576..2_500_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a.kill9();
    drop(stream);

    // B serves on, and knows the session: at least the acknowledged megabyte, never more than
    // was sent, and the client resumes there.
    let status = b.get(&b.target(&loc));
    status.expect_status(204);
    let range = status.header("range").expect("Range").to_owned();
    let end: usize = range
        .strip_prefix("0-")
        .and_then(|e| e.parse().ok())
        .expect("a 0-N range");
    assert!(
        (1_048_575..2_500_000).contains(&end),
        "after the kill the session holds 0-{end}"
    );
    let resume = format!("{}-{}", end + 1, data.len() - 1);
    let patch = b.request(
        "PATCH",
        &b.target(&loc),
        &[("Content-Range", resume.as_str())],
        &data[end + 1..],
    );
    patch.expect_status(202);
    let loc = location(&patch);
    let sep = if loc.contains('?') { '&' } else { '?' };
    b.request(
        "PUT",
        &b.target(&format!("{loc}{sep}digest={digest}")),
        &[],
        &[],
    )
    .expect_status(201);
    let got = b.get(&format!("/v2/team/big/blobs/{digest}"));
    got.expect_status(200);
    assert_eq!(got.body, data);
}

#[test]
fn gc_during_a_push_storm_deletes_nothing_referenced() {
    let Some((pg, s3)) = backends() else { return };
    let cluster = Cluster::new(&pg, &s3);
    // Both replicas collect garbage every second with a 2 s grace window while pushes go on.
    let gc = [
        ("BULWARK_GC__INTERVAL_SECS", "1"),
        ("BULWARK_GC__GRACE_SECS", "2"),
    ];
    let a = cluster.replica(&gc);
    let b = cluster.replica(&gc);

    // Garbage for the collectors: blobs no manifest will ever reference.
    for i in 0..5 {
        push_blob(&a.base_url(), "team/junk", &random_bytes(100 + i, 10_000));
    }
    let images: Vec<(String, Vec<u8>, Vec<Vec<u8>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12u64)
            .map(|i| {
                let server = if i % 2 == 0 { &a } else { &b };
                s.spawn(move || {
                    // Some layers are shared between images, so GC meets re-linked blobs.
                    let layers = vec![
                        random_bytes(1000 + i % 3, 50_000),
                        random_bytes(2000 + i, 70_000),
                    ];
                    let config = format!(r#"{{"os":"linux","n":{i}}}"#).into_bytes();
                    for l in &layers {
                        push_blob(&server.base_url(), "team/storm", l);
                    }
                    push_blob(&server.base_url(), "team/storm", &config);
                    let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
                    let manifest = manifest_for(&config, &refs);
                    let tag = format!("t{i}");
                    push_manifest(
                        &server.base_url(),
                        "team/storm",
                        &tag,
                        "application/vnd.oci.image.manifest.v1+json",
                        &manifest,
                    );
                    std::thread::sleep(Duration::from_millis(250));
                    (tag, config, layers)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Let several collections pass the grace window.
    std::thread::sleep(Duration::from_secs(5));
    for (tag, config, layers) in &images {
        for server in [&a, &b] {
            server
                .get(&format!("/v2/team/storm/manifests/{tag}"))
                .expect_status(200);
            for blob in std::iter::once(config).chain(layers) {
                let got = server.get(&format!("/v2/team/storm/blobs/{}", sha256_digest(blob)));
                got.expect_status(200);
                assert_eq!(&got.body, blob);
            }
        }
    }
    // And the collectors did run: the unreferenced blobs are gone.
    let junk = sha256_digest(&random_bytes(100, 10_000));
    let mut gone = false;
    for _ in 0..20 {
        if a.get(&format!("/v2/team/junk/blobs/{junk}")).status == 404 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(gone, "GC never removed the unreferenced blob");
}

#[test]
fn blob_downloads_can_redirect_to_presigned_urls() {
    let Some((pg, s3)) = backends() else { return };
    let cluster = Cluster::new(&pg, &s3);
    let r = cluster.replica(&[("BULWARK_STORAGE__S3__PRESIGNED_REDIRECT_SECS", "60")]);
    let data = random_bytes(77, 200_000);
    let digest = push_blob(&r.base_url(), "team/redirect", &data);
    // Still only after the permission check: anonymous callers get the challenge.
    r.get_as(
        bulwark_testkit::Auth::Anonymous,
        &format!("/v2/team/redirect/blobs/{digest}"),
    )
    .expect_status(401);
    let resp = r.get(&format!("/v2/team/redirect/blobs/{digest}"));
    resp.expect_status(307);
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    let url = resp.header("location").expect("Location").to_owned();
    assert!(url.starts_with(&s3), "{url}");
    let body = reqwest::blocking::get(&url).unwrap();
    assert_eq!(body.status().as_u16(), 200);
    assert_eq!(body.bytes().unwrap().as_ref(), data.as_slice());
    // HEAD is answered by the registry itself.
    r.request(
        "HEAD",
        &format!("/v2/team/redirect/blobs/{digest}"),
        &[],
        &[],
    )
    .expect_status(200);
}
