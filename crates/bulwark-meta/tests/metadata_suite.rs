//! Contract suite for [`MetadataStore`].
//!
//! Every check is an `async fn(&dyn MetadataStore)` that starts from an empty store and uses
//! explicit timestamps, so the same checks can run against any implementation (a PostgreSQL
//! store only needs another `*_suite!` invocation with its own opener). The SQLite store is
//! opened on a file in a temporary directory, one fresh database per check.
//!
//! The PostgreSQL store runs the same checks, each in a database of its own created on the
//! server named by `BULWARK_TEST_POSTGRES_URL` (a user allowed to create databases, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards, so they run in
//! parallel. Without that variable the PostgreSQL tests say they are skipped and pass, unless
//! `BULWARK_REQUIRE_POSTGRES=1` makes them fail (scripts/test.sh starts a server and sets both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{with_database, with_postgres_database};
use std::future::Future;

use bulwark_core::MetadataStore;
use bulwark_core::store::{GcCounts, NewManifest, PutManifestRejection, Referrer, UploadSession};
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_oci::media_types::{OCI_INDEX, OCI_MANIFEST};
use bulwark_oci::{Digest, RepoName, Tag};
use bytes::Bytes;

// ---- helpers ------------------------------------------------------------------------------

fn repo(name: &str) -> RepoName {
    RepoName::parse(name).unwrap()
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).unwrap()
}

/// A distinct digest per label (the store never looks at blob bytes).
fn dg(label: &str) -> Digest {
    Digest::sha256_of(label.as_bytes())
}

/// An image manifest named `name` that references `blobs`.
fn image(name: &str, blobs: &[(&Digest, u64)]) -> NewManifest {
    let content = Bytes::from(format!(r#"{{"schemaVersion":2,"name":"{name}"}}"#));
    NewManifest {
        digest: Digest::sha256_of(&content),
        media_type: OCI_MANIFEST.to_owned(),
        content,
        subject: None,
        artifact_type: None,
        annotations: None,
        blobs: blobs.iter().map(|(d, s)| ((*d).clone(), *s)).collect(),
        children: Vec::new(),
    }
}

/// An index named `name` over `children`.
fn index(name: &str, children: &[&Digest]) -> NewManifest {
    let content = Bytes::from(format!(r#"{{"schemaVersion":2,"index":"{name}"}}"#));
    NewManifest {
        digest: Digest::sha256_of(&content),
        media_type: OCI_INDEX.to_owned(),
        content,
        subject: None,
        artifact_type: None,
        annotations: None,
        blobs: Vec::new(),
        children: children.iter().map(|d| (*d).clone()).collect(),
    }
}

/// An artifact manifest named `name` whose subject is `subject`, referencing no blobs.
fn referrer(name: &str, subject: &Digest, artifact_type: &str) -> NewManifest {
    NewManifest {
        subject: Some(subject.clone()),
        artifact_type: Some(artifact_type.to_owned()),
        ..image(name, &[])
    }
}

async fn put_ok(s: &dyn MetadataStore, r: &RepoName, m: &NewManifest, t: Option<&str>, now: i64) {
    let t = t.map(tag);
    s.put_manifest(r, m, t.as_ref(), now)
        .await
        .unwrap()
        .unwrap_or_else(|rej| panic!("put of {} rejected: {rej:?}", m.digest));
}

async fn has_manifest(s: &dyn MetadataStore, r: &RepoName, d: &Digest) -> bool {
    s.get_manifest_by_digest(r, d).await.unwrap().is_some()
}

async fn tags_of(s: &dyn MetadataStore, r: &RepoName) -> Option<Vec<String>> {
    s.list_tags(r, None, None).await.unwrap()
}

async fn digest_by_tag(s: &dyn MetadataStore, r: &RepoName, t: &str) -> Option<Digest> {
    s.get_manifest_by_tag(r, &tag(t))
        .await
        .unwrap()
        .map(|m| m.digest)
}

// ---- upload sessions ----------------------------------------------------------------------

async fn check_upload_sessions(s: &dyn MetadataStore) {
    let r = repo("team/app");
    assert_eq!(s.get_upload("u1").await.unwrap(), None);
    assert!(s.all_uploads().await.unwrap().is_empty());

    s.create_upload("u1", &r, 100).await.unwrap();
    assert_eq!(
        s.get_upload("u1").await.unwrap(),
        Some(UploadSession {
            id: "u1".into(),
            repository: "team/app".into(),
            size: 0,
            created_at: 100,
            updated_at: 100,
        })
    );

    s.set_upload_size("u1", 42, 150).await.unwrap();
    let u1 = s.get_upload("u1").await.unwrap().unwrap();
    assert_eq!((u1.size, u1.created_at, u1.updated_at), (42, 100, 150));
    // A size beyond 32 bits survives the round trip.
    s.set_upload_size("u1", 5_000_000_000, 160).await.unwrap();
    assert_eq!(
        s.get_upload("u1").await.unwrap().unwrap().size,
        5_000_000_000
    );

    s.create_upload("u2", &repo("other"), 200).await.unwrap();
    let mut all = s.all_uploads().await.unwrap();
    all.sort();
    assert_eq!(all, ["u1", "u2"]);

    // Stale means "last touched strictly before"; the update at 160 counts, not the creation.
    assert!(s.stale_uploads(160).await.unwrap().is_empty());
    assert_eq!(s.stale_uploads(161).await.unwrap(), ["u1"]);
    let mut stale = s.stale_uploads(201).await.unwrap();
    stale.sort();
    assert_eq!(stale, ["u1", "u2"]);

    s.delete_upload("u1").await.unwrap();
    assert_eq!(s.get_upload("u1").await.unwrap(), None);
    assert_eq!(s.all_uploads().await.unwrap(), ["u2"]);
    assert_eq!(s.stale_uploads(1_000).await.unwrap(), ["u2"]);
    // Deleting an absent session is not an error.
    s.delete_upload("u1").await.unwrap();
    assert_eq!(
        s.get_upload("u2").await.unwrap().unwrap().repository,
        "other"
    );
}

async fn check_upload_completed(s: &dyn MetadataStore) {
    let r = repo("team/app");
    let d = dg("completed");
    s.create_upload("u1", &r, 100).await.unwrap();
    s.create_upload("u2", &r, 100).await.unwrap();
    s.upload_completed("u1", &r, &d, 77, 120).await.unwrap();
    // The session is gone and the blob is linked, in one step; other sessions are untouched.
    assert_eq!(s.get_upload("u1").await.unwrap(), None);
    assert_eq!(s.all_uploads().await.unwrap(), ["u2"]);
    assert_eq!(s.repo_blob_size(&r, &d).await.unwrap(), Some(77));
    assert_eq!(s.blob_size(&d).await.unwrap(), Some(77));
    assert_eq!(s.repo_blob_size(&repo("other"), &d).await.unwrap(), None);
}

// ---- blobs and links ----------------------------------------------------------------------

async fn check_blob_links(s: &dyn MetadataStore) {
    let (a, b) = (repo("a"), repo("b"));
    let d = dg("layer");
    let unknown = dg("never-pushed");

    assert_eq!(s.blob_size(&d).await.unwrap(), None);
    assert_eq!(s.repo_blob_size(&a, &d).await.unwrap(), None);
    assert!(s.repos_with_blob(&d, 10).await.unwrap().is_empty());

    s.blob_committed(&a, &d, 5, 100).await.unwrap();
    assert_eq!(s.repo_blob_size(&a, &d).await.unwrap(), Some(5));
    assert_eq!(s.repo_blob_size(&b, &d).await.unwrap(), None);
    assert_eq!(s.blob_size(&d).await.unwrap(), Some(5));
    assert_eq!(s.repos_with_blob(&d, 10).await.unwrap(), ["a"]);
    assert_eq!(s.list_repositories(None, None).await.unwrap(), ["a"]);

    // Committing the same content again (another push) is idempotent.
    s.blob_committed(&a, &d, 5, 110).await.unwrap();
    assert_eq!(s.repos_with_blob(&d, 10).await.unwrap(), ["a"]);

    // Linking an unknown blob fails and creates nothing visible.
    assert!(!s.link_blob(&b, &unknown, 120).await.unwrap());
    assert_eq!(s.repo_blob_size(&b, &unknown).await.unwrap(), None);
    assert_eq!(s.blob_size(&unknown).await.unwrap(), None);
    assert_eq!(s.list_repositories(None, None).await.unwrap(), ["a"]);

    assert!(s.link_blob(&b, &d, 130).await.unwrap());
    assert_eq!(s.repo_blob_size(&b, &d).await.unwrap(), Some(5));
    assert_eq!(s.repos_with_blob(&d, 10).await.unwrap(), ["a", "b"]);
    assert_eq!(s.repos_with_blob(&d, 1).await.unwrap().len(), 1);
    assert_eq!(s.list_repositories(None, None).await.unwrap(), ["a", "b"]);
    // Linking twice is fine.
    assert!(s.link_blob(&b, &d, 140).await.unwrap());

    assert!(s.unlink_blob(&a, &d).await.unwrap());
    assert!(!s.unlink_blob(&a, &d).await.unwrap());
    assert!(!s.unlink_blob(&repo("nowhere"), &d).await.unwrap());
    assert!(!s.unlink_blob(&b, &unknown).await.unwrap());
    assert_eq!(s.repo_blob_size(&a, &d).await.unwrap(), None);
    assert_eq!(s.repo_blob_size(&b, &d).await.unwrap(), Some(5));
    assert_eq!(s.repos_with_blob(&d, 10).await.unwrap(), ["b"]);
    // The blob itself stays known to the registry until GC forgets it.
    assert_eq!(s.blob_size(&d).await.unwrap(), Some(5));
    // A repository holding nothing any more is not listed.
    assert_eq!(s.list_repositories(None, None).await.unwrap(), ["b"]);

    // Large sizes survive.
    let big = dg("big");
    s.blob_committed(&a, &big, 6_000_000_000, 150)
        .await
        .unwrap();
    assert_eq!(s.blob_size(&big).await.unwrap(), Some(6_000_000_000));
}

// ---- manifests ----------------------------------------------------------------------------

async fn check_put_manifest_rejections(s: &dyn MetadataStore) {
    let (app, other) = (repo("app"), repo("other"));
    let foreign = dg("foreign-layer");
    s.blob_committed(&other, &foreign, 7, 10).await.unwrap();

    // The blob exists in the registry, but not in this repository.
    let m = image("m1", &[(&foreign, 7)]);
    assert_eq!(
        s.put_manifest(&app, &m, Some(&tag("v1")), 20)
            .await
            .unwrap(),
        Err(PutManifestRejection::MissingBlob(foreign.clone()))
    );
    // Nothing is left behind: no repository (not even an empty one for list_tags), no manifest.
    assert_eq!(s.list_repositories(None, None).await.unwrap(), ["other"]);
    assert_eq!(tags_of(s, &app).await, None);
    assert!(!has_manifest(s, &app, &m.digest).await);
    assert_eq!(digest_by_tag(s, &app, "v1").await, None);
    // Nor in the repository that does hold the blob.
    assert!(!has_manifest(s, &other, &m.digest).await);

    // An index whose child is unknown here (even if it exists in another repository).
    let config = dg("config");
    s.blob_committed(&other, &config, 3, 10).await.unwrap();
    let child = image("child", &[(&config, 3)]);
    put_ok(s, &other, &child, None, 15).await;
    let idx = index("idx", &[&child.digest]);
    assert_eq!(
        s.put_manifest(&app, &idx, Some(&tag("multi")), 20)
            .await
            .unwrap(),
        Err(PutManifestRejection::MissingChild(child.digest.clone()))
    );
    assert_eq!(tags_of(s, &app).await, None);
    assert!(!has_manifest(s, &app, &idx.digest).await);

    // The declared size disagrees with the stored blob.
    let layer = dg("layer");
    s.blob_committed(&app, &layer, 5, 30).await.unwrap();
    let bad = image("bad-size", &[(&layer, 6)]);
    assert_eq!(
        s.put_manifest(&app, &bad, Some(&tag("v1")), 40)
            .await
            .unwrap(),
        Err(PutManifestRejection::SizeMismatch {
            digest: layer.clone(),
            declared: 6,
            actual: 5,
        })
    );
    assert_eq!(tags_of(s, &app).await, Some(vec![]));
    assert!(!has_manifest(s, &app, &bad.digest).await);

    // The first missing reference is reported even after valid ones.
    let missing = dg("missing");
    let partly = image("partly", &[(&layer, 5), (&missing, 1)]);
    assert_eq!(
        s.put_manifest(&app, &partly, None, 50).await.unwrap(),
        Err(PutManifestRejection::MissingBlob(missing))
    );
    assert!(!has_manifest(s, &app, &partly.digest).await);
    // The blob's link is untouched by the failed puts.
    assert_eq!(s.repo_blob_size(&app, &layer).await.unwrap(), Some(5));

    // The same manifest with the right size goes in.
    let good = image("good", &[(&layer, 5)]);
    put_ok(s, &app, &good, Some("v1"), 60).await;
    assert_eq!(digest_by_tag(s, &app, "v1").await, Some(good.digest));
}

async fn check_put_get_and_retag(s: &dyn MetadataStore) {
    let r = repo("app");
    let (cfg, layer) = (dg("cfg"), dg("layer"));
    s.blob_committed(&r, &cfg, 2, 10).await.unwrap();
    s.blob_committed(&r, &layer, 1000, 10).await.unwrap();

    let m1 = image("one", &[(&cfg, 2), (&layer, 1000)]);
    let m2 = image("two", &[(&cfg, 2)]);
    put_ok(s, &r, &m1, Some("latest"), 20).await;

    let by_tag = s
        .get_manifest_by_tag(&r, &tag("latest"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tag.digest, m1.digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(by_tag.content, m1.content);
    let by_digest = s
        .get_manifest_by_digest(&r, &m1.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_digest.digest, m1.digest);
    assert_eq!(by_digest.content, m1.content);
    // Manifests are per repository.
    assert!(!has_manifest(s, &repo("elsewhere"), &m1.digest).await);
    assert!(
        s.get_manifest_by_tag(&repo("elsewhere"), &tag("latest"))
            .await
            .unwrap()
            .is_none()
    );

    // Re-tagging moves the tag; the old manifest stays reachable by digest.
    put_ok(s, &r, &m2, Some("latest"), 30).await;
    assert_eq!(
        digest_by_tag(s, &r, "latest").await,
        Some(m2.digest.clone())
    );
    assert!(has_manifest(s, &r, &m1.digest).await);
    assert_eq!(tags_of(s, &r).await, Some(vec!["latest".to_owned()]));

    // Pushing an existing manifest again (with another tag, or none) is idempotent.
    put_ok(s, &r, &m1, Some("v1"), 40).await;
    put_ok(s, &r, &m1, None, 50).await;
    assert_eq!(
        tags_of(s, &r).await,
        Some(vec!["latest".to_owned(), "v1".to_owned()])
    );
    assert_eq!(digest_by_tag(s, &r, "v1").await, Some(m1.digest.clone()));
    assert_eq!(
        s.get_manifest_by_digest(&r, &m1.digest)
            .await
            .unwrap()
            .unwrap()
            .content,
        m1.content
    );

    // An index over manifests of the repository.
    let idx = index("multi", &[&m1.digest, &m2.digest]);
    put_ok(s, &r, &idx, Some("multi"), 60).await;
    let got = s
        .get_manifest_by_tag(&r, &tag("multi"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.media_type, OCI_INDEX);
    assert_eq!(got.digest, idx.digest);
}

async fn check_deletes(s: &dyn MetadataStore) {
    let r = repo("app");
    let cfg = dg("cfg");
    s.blob_committed(&r, &cfg, 2, 10).await.unwrap();
    let m1 = image("one", &[(&cfg, 2)]);
    let m2 = image("two", &[(&cfg, 2)]);
    put_ok(s, &r, &m1, Some("a"), 20).await;
    put_ok(s, &r, &m1, Some("b"), 20).await;
    put_ok(s, &r, &m2, Some("c"), 20).await;

    // Deleting a tag keeps its manifest.
    assert!(s.delete_tag(&r, &tag("c")).await.unwrap());
    assert!(!s.delete_tag(&r, &tag("c")).await.unwrap());
    assert!(has_manifest(s, &r, &m2.digest).await);
    assert_eq!(digest_by_tag(s, &r, "c").await, None);
    assert_eq!(tags_of(s, &r).await, Some(vec!["a".into(), "b".into()]));

    // Deleting a manifest removes every tag on it.
    assert!(s.delete_manifest(&r, &m1.digest).await.unwrap());
    assert!(!has_manifest(s, &r, &m1.digest).await);
    assert_eq!(digest_by_tag(s, &r, "a").await, None);
    assert_eq!(digest_by_tag(s, &r, "b").await, None);
    assert_eq!(tags_of(s, &r).await, Some(vec![]));
    assert!(!s.delete_manifest(&r, &m1.digest).await.unwrap());
    assert!(!s.delete_tag(&r, &tag("a")).await.unwrap());

    // The blob link is not a manifest's to remove; the other manifest is untouched.
    assert_eq!(s.repo_blob_size(&r, &cfg).await.unwrap(), Some(2));
    assert!(has_manifest(s, &r, &m2.digest).await);

    // Unknown repositories: nothing to delete.
    assert!(!s.delete_manifest(&repo("nope"), &m2.digest).await.unwrap());
    assert!(!s.delete_tag(&repo("nope"), &tag("a")).await.unwrap());

    // A deleted manifest can be pushed again.
    put_ok(s, &r, &m1, Some("a"), 30).await;
    assert_eq!(digest_by_tag(s, &r, "a").await, Some(m1.digest));
}

// ---- listings -----------------------------------------------------------------------------

async fn check_list_tags(s: &dyn MetadataStore) {
    let r = repo("app");
    assert_eq!(s.list_tags(&r, None, None).await.unwrap(), None);
    let m = image("m", &[]);
    let names = ["v10", "v2", "latest", "1.0", "V1", "_x", "v1"];
    for (i, t) in names.iter().enumerate() {
        put_ok(s, &r, &m, Some(t), 10 + i as i64).await;
    }
    // Lexical (byte) order, whatever the push order.
    let all = ["1.0", "V1", "_x", "latest", "v1", "v10", "v2"];
    assert_eq!(s.list_tags(&r, None, None).await.unwrap().unwrap(), all);
    assert_eq!(
        s.list_tags(&r, None, Some(2)).await.unwrap().unwrap(),
        ["1.0", "V1"]
    );
    assert_eq!(
        s.list_tags(&r, Some("V1"), Some(3)).await.unwrap().unwrap(),
        ["_x", "latest", "v1"]
    );
    assert_eq!(
        s.list_tags(&r, Some("v1"), None).await.unwrap().unwrap(),
        ["v10", "v2"]
    );
    // `last` need not be an existing tag.
    assert_eq!(
        s.list_tags(&r, Some("m"), None).await.unwrap().unwrap(),
        ["v1", "v10", "v2"]
    );
    assert!(
        s.list_tags(&r, Some("v2"), None)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_tags(&r, None, Some(0))
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    // Walking page by page yields everything exactly once.
    let mut walked = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let page = s
            .list_tags(&r, last.as_deref(), Some(3))
            .await
            .unwrap()
            .unwrap();
        if page.is_empty() {
            break;
        }
        last = page.last().cloned();
        walked.extend(page);
    }
    assert_eq!(walked, all);
    // Tags belong to their repository.
    assert_eq!(s.list_tags(&repo("app2"), None, None).await.unwrap(), None);
}

async fn check_list_repositories(s: &dyn MetadataStore) {
    assert!(s.list_repositories(None, None).await.unwrap().is_empty());
    for (i, name) in ["c", "a/x", "b", "a", "a-b"].iter().enumerate() {
        s.blob_committed(&repo(name), &dg(name), 1, i as i64)
            .await
            .unwrap();
    }
    // A repository holding only a manifest (an empty index) is listed too.
    put_ok(s, &repo("d"), &index("empty", &[]), Some("t"), 10).await;
    let all = ["a", "a-b", "a/x", "b", "c", "d"];
    assert_eq!(s.list_repositories(None, None).await.unwrap(), all);
    assert_eq!(
        s.list_repositories(None, Some(2)).await.unwrap(),
        ["a", "a-b"]
    );
    assert_eq!(
        s.list_repositories(Some("a-b"), Some(2)).await.unwrap(),
        ["a/x", "b"]
    );
    assert_eq!(
        s.list_repositories(Some("b"), Some(10)).await.unwrap(),
        ["c", "d"]
    );
    assert!(
        s.list_repositories(Some("d"), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.list_repositories(None, Some(0)).await.unwrap().is_empty());
}

// ---- referrers ----------------------------------------------------------------------------

async fn check_referrers(s: &dyn MetadataStore) {
    let (r, other) = (repo("app"), repo("other"));
    let subject = image("subject", &[]);
    put_ok(s, &r, &subject, Some("v1"), 10).await;

    let annotations = r#"{"org.opencontainers.image.created":"2024-01-01T00:00:00Z","x":"ü"}"#;
    let sig = NewManifest {
        annotations: Some(annotations.to_owned()),
        ..referrer("sig", &subject.digest, "application/vnd.example.signature")
    };
    let sbom = referrer("sbom", &subject.digest, "application/spdx+json");
    put_ok(s, &r, &sig, None, 20).await;
    put_ok(s, &r, &sbom, None, 30).await;
    // A referrer of the same subject in another repository is not listed here.
    put_ok(
        s,
        &other,
        &referrer("elsewhere", &subject.digest, "a/b"),
        None,
        40,
    )
    .await;
    // An unrelated manifest is not a referrer.
    put_ok(s, &r, &image("plain", &[]), None, 50).await;

    let expected_sig = Referrer {
        digest: sig.digest.clone(),
        media_type: OCI_MANIFEST.to_owned(),
        size: sig.content.len() as u64,
        artifact_type: Some("application/vnd.example.signature".to_owned()),
        annotations: Some(annotations.to_owned()),
    };
    let expected_sbom = Referrer {
        digest: sbom.digest.clone(),
        media_type: OCI_MANIFEST.to_owned(),
        size: sbom.content.len() as u64,
        artifact_type: Some("application/spdx+json".to_owned()),
        annotations: None,
    };
    let mut all = s.referrers(&r, &subject.digest, None).await.unwrap();
    all.sort_by(|a, b| a.digest.cmp(&b.digest));
    let mut want = vec![expected_sig.clone(), expected_sbom.clone()];
    want.sort_by(|a, b| a.digest.cmp(&b.digest));
    assert_eq!(all, want);

    assert_eq!(
        s.referrers(&r, &subject.digest, Some("application/spdx+json"))
            .await
            .unwrap(),
        [expected_sbom]
    );
    assert_eq!(
        s.referrers(
            &r,
            &subject.digest,
            Some("application/vnd.example.signature")
        )
        .await
        .unwrap(),
        [expected_sig]
    );
    assert!(
        s.referrers(&r, &subject.digest, Some("application/none"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.referrers(&r, &sig.digest, None).await.unwrap().is_empty());
    assert!(
        s.referrers(&repo("unknown"), &subject.digest, None)
            .await
            .unwrap()
            .is_empty()
    );

    // A referrer may arrive before its subject (OCI 1.1); it is listed anyway.
    let absent = dg("not-pushed-yet");
    let early = referrer("early", &absent, "application/x.early");
    put_ok(s, &r, &early, None, 60).await;
    let got = s.referrers(&r, &absent, None).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].digest, early.digest);

    // Deleting a referrer removes it from the list.
    assert!(s.delete_manifest(&r, &sig.digest).await.unwrap());
    let left = s.referrers(&r, &subject.digest, None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].digest, sbom.digest);
}

// ---- garbage collection -------------------------------------------------------------------

/// Which manifests use a blob and which indexes list a manifest, for trust decisions on blobs
/// and platform manifests: per repository, ordered, limited.
async fn check_manifest_relations(s: &dyn MetadataStore) {
    let r = repo("rel/app");
    let other = repo("rel/other");
    let (shared, own) = (dg("shared-layer"), dg("own-layer"));
    for b in [&shared, &own] {
        s.blob_committed(&r, b, 1, 100).await.unwrap();
        s.link_blob(&other, b, 100).await.unwrap();
    }
    let a = image("rel-a", &[(&shared, 1)]);
    let b = image("rel-b", &[(&shared, 1), (&own, 1)]);
    put_ok(s, &r, &a, Some("a"), 100).await;
    put_ok(s, &r, &b, Some("b"), 100).await;
    put_ok(s, &other, &a, Some("a"), 100).await;
    let mut both = vec![a.digest.clone(), b.digest.clone()];
    both.sort();
    assert_eq!(s.manifests_using_blob(&r, &shared, 10).await.unwrap(), both);
    assert_eq!(
        s.manifests_using_blob(&r, &shared, 1).await.unwrap(),
        both[..1].to_vec()
    );
    assert_eq!(
        s.manifests_using_blob(&r, &own, 10).await.unwrap(),
        vec![b.digest.clone()]
    );
    assert_eq!(
        s.manifests_using_blob(&other, &own, 10).await.unwrap(),
        Vec::<Digest>::new()
    );
    assert!(
        s.manifests_using_blob(&repo("rel/none"), &own, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let i1 = index("rel-i1", &[&a.digest, &b.digest]);
    let i2 = index("rel-i2", &[&a.digest]);
    put_ok(s, &r, &i1, Some("multi"), 100).await;
    put_ok(s, &r, &i2, None, 100).await;
    let mut parents = vec![i1.digest.clone(), i2.digest.clone()];
    parents.sort();
    assert_eq!(
        s.parent_manifests(&r, &a.digest, 10).await.unwrap(),
        parents
    );
    assert_eq!(
        s.parent_manifests(&r, &b.digest, 10).await.unwrap(),
        vec![i1.digest.clone()]
    );
    assert!(
        s.parent_manifests(&other, &a.digest, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.parent_manifests(&r, &i1.digest, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn check_gc_manifests(s: &dyn MetadataStore) {
    let (r, other) = (repo("app"), repo("other"));
    const OLD: i64 = 1_000;
    const CUTOFF: i64 = 2_000;

    let cfg = dg("cfg");
    s.blob_committed(&r, &cfg, 2, OLD).await.unwrap();
    s.blob_committed(&other, &cfg, 2, OLD).await.unwrap();

    let tagged = image("tagged", &[(&cfg, 2)]);
    put_ok(s, &r, &tagged, Some("v1"), OLD).await;
    let untagged = image("untagged", &[(&cfg, 2)]);
    put_ok(s, &r, &untagged, None, OLD).await;

    // A tagged index keeps its (untagged) children.
    let child1 = image("child1", &[(&cfg, 2)]);
    let child2 = image("child2", &[(&cfg, 2)]);
    put_ok(s, &r, &child1, None, OLD).await;
    put_ok(s, &r, &child2, None, OLD).await;
    let idx = index("idx", &[&child1.digest, &child2.digest]);
    put_ok(s, &r, &idx, Some("multi"), OLD).await;

    // An untagged index dies with its only-there child; a child shared with the live index lives.
    let child3 = image("child3", &[(&cfg, 2)]);
    put_ok(s, &r, &child3, None, OLD).await;
    let dead_idx = index("dead-idx", &[&child1.digest, &child3.digest]);
    put_ok(s, &r, &dead_idx, None, OLD).await;

    // Referrers of live manifests live, transitively (a signature of a signature), including
    // referrers of a manifest that is only live as an index child.
    let sig = referrer("sig", &tagged.digest, "application/x.sig");
    let sig_of_sig = referrer("sig-of-sig", &sig.digest, "application/x.sig");
    let child_sbom = referrer("child-sbom", &child2.digest, "application/x.sbom");
    put_ok(s, &r, &sig, None, OLD).await;
    put_ok(s, &r, &sig_of_sig, None, OLD).await;
    put_ok(s, &r, &child_sbom, None, OLD).await;
    // A referrer of a dead manifest dies with it.
    let dead_sig = referrer("dead-sig", &untagged.digest, "application/x.sig");
    put_ok(s, &r, &dead_sig, None, OLD).await;

    // Young untagged manifests (pushed at or after the cutoff) are kept, with their referrers.
    let young = image("young", &[(&cfg, 2)]);
    put_ok(s, &r, &young, None, CUTOFF).await;
    let young_sig = referrer("young-sig", &young.digest, "application/x.sig");
    put_ok(s, &r, &young_sig, None, OLD).await;

    // Liveness is per repository: a tag in `other` does not keep `app`'s copy alive.
    let shared = image("shared", &[(&cfg, 2)]);
    put_ok(s, &r, &shared, None, OLD).await;
    put_ok(s, &other, &shared, Some("keep"), OLD).await;

    let dead = [&untagged, &dead_sig, &dead_idx, &child3, &shared];
    let live = [
        &tagged,
        &idx,
        &child1,
        &child2,
        &sig,
        &sig_of_sig,
        &child_sbom,
        &young,
        &young_sig,
    ];

    // Dry run: counts only.
    let counts = s.gc_metadata(CUTOFF, true).await.unwrap();
    assert_eq!(counts.manifests, dead.len() as u64);
    for m in dead.iter().chain(live.iter()) {
        assert!(
            has_manifest(s, &r, &m.digest).await,
            "dry run deleted {}",
            m.digest
        );
    }

    let counts = s.gc_metadata(CUTOFF, false).await.unwrap();
    assert_eq!(counts.manifests, dead.len() as u64);
    for m in dead {
        assert!(
            !has_manifest(s, &r, &m.digest).await,
            "kept dead {}",
            m.digest
        );
    }
    for m in live {
        assert!(
            has_manifest(s, &r, &m.digest).await,
            "deleted live {}",
            m.digest
        );
    }
    assert!(has_manifest(s, &other, &shared.digest).await);
    assert_eq!(
        digest_by_tag(s, &r, "v1").await,
        Some(tagged.digest.clone())
    );
    assert_eq!(
        digest_by_tag(s, &r, "multi").await,
        Some(idx.digest.clone())
    );
    let sigs = s.referrers(&r, &tagged.digest, None).await.unwrap();
    assert_eq!(sigs.len(), 1);
    assert!(
        s.referrers(&r, &untagged.digest, None)
            .await
            .unwrap()
            .is_empty()
    );
    // `cfg` is still referenced by live manifests in both repositories.
    assert_eq!(counts.links, 0);
    assert_eq!(s.repo_blob_size(&r, &cfg).await.unwrap(), Some(2));

    // Nothing is left to collect at the same cutoff.
    assert_eq!(
        s.gc_metadata(CUTOFF, false).await.unwrap(),
        GcCounts::default()
    );

    // Once the tag goes, the image and its whole referrer chain go; the index stays.
    assert!(s.delete_tag(&r, &tag("v1")).await.unwrap());
    let counts = s.gc_metadata(CUTOFF, false).await.unwrap();
    assert_eq!(counts.manifests, 3);
    for m in [&tagged, &sig, &sig_of_sig] {
        assert!(!has_manifest(s, &r, &m.digest).await);
    }
    assert!(has_manifest(s, &r, &child_sbom.digest).await);

    // Deleting the index's tag frees the children and their referrers.
    assert!(s.delete_tag(&r, &tag("multi")).await.unwrap());
    assert_eq!(s.gc_metadata(CUTOFF, false).await.unwrap().manifests, 4);
    // With a later cutoff the young ones go as well, and then the unreferenced link.
    let counts = s.gc_metadata(CUTOFF + 1, false).await.unwrap();
    assert_eq!(
        counts,
        GcCounts {
            manifests: 2,
            links: 1
        }
    );
    assert_eq!(s.repo_blob_size(&r, &cfg).await.unwrap(), None);
    assert_eq!(s.repo_blob_size(&other, &cfg).await.unwrap(), Some(2));
}

async fn check_gc_links(s: &dyn MetadataStore) {
    let (r, other) = (repo("app"), repo("other"));
    const OLD: i64 = 1_000;
    const CUTOFF: i64 = 2_000;
    let [stray, tagged_blob, young_ref, fresh, elsewhere] =
        ["stray", "tagged", "young-ref", "fresh", "elsewhere"].map(dg);

    // Old and referenced by nothing: collected.
    s.blob_committed(&r, &stray, 1, OLD).await.unwrap();
    // Referenced by a tagged manifest: kept.
    s.blob_committed(&r, &tagged_blob, 2, OLD).await.unwrap();
    put_ok(
        s,
        &r,
        &image("tagged", &[(&tagged_blob, 2)]),
        Some("v1"),
        OLD,
    )
    .await;
    // Referenced by a young untagged manifest: kept.
    s.blob_committed(&r, &young_ref, 3, OLD).await.unwrap();
    put_ok(s, &r, &image("young", &[(&young_ref, 3)]), None, CUTOFF).await;
    // Linked at the cutoff: young, kept.
    s.blob_committed(&r, &fresh, 4, CUTOFF).await.unwrap();
    // Referenced only by a manifest of another repository: that doesn't keep this link.
    s.blob_committed(&r, &elsewhere, 5, OLD).await.unwrap();
    s.blob_committed(&other, &elsewhere, 5, OLD).await.unwrap();
    put_ok(
        s,
        &other,
        &image("other", &[(&elsewhere, 5)]),
        Some("v1"),
        OLD,
    )
    .await;

    let dry = s.gc_metadata(CUTOFF, true).await.unwrap();
    assert_eq!(
        dry,
        GcCounts {
            manifests: 0,
            links: 2
        }
    );
    assert_eq!(s.repo_blob_size(&r, &stray).await.unwrap(), Some(1));
    assert_eq!(s.repo_blob_size(&r, &elsewhere).await.unwrap(), Some(5));
    assert!(s.unlinked_blobs(CUTOFF, 100).await.unwrap().is_empty());

    let counts = s.gc_metadata(CUTOFF, false).await.unwrap();
    assert_eq!(
        counts,
        GcCounts {
            manifests: 0,
            links: 2
        }
    );
    assert_eq!(s.repo_blob_size(&r, &stray).await.unwrap(), None);
    assert_eq!(s.repo_blob_size(&r, &elsewhere).await.unwrap(), None);
    assert_eq!(s.repo_blob_size(&other, &elsewhere).await.unwrap(), Some(5));
    assert_eq!(s.repo_blob_size(&r, &tagged_blob).await.unwrap(), Some(2));
    assert_eq!(s.repo_blob_size(&r, &young_ref).await.unwrap(), Some(3));
    assert_eq!(s.repo_blob_size(&r, &fresh).await.unwrap(), Some(4));

    // Only the stray blob is now linked nowhere.
    assert_eq!(
        s.unlinked_blobs(CUTOFF, 100).await.unwrap(),
        std::slice::from_ref(&stray)
    );
    assert!(s.forget_blob_if_unlinked(&stray, CUTOFF).await.unwrap());
    assert_eq!(s.blob_size(&stray).await.unwrap(), None);
    assert!(!s.forget_blob_if_unlinked(&elsewhere, CUTOFF).await.unwrap());
    assert_eq!(s.blob_size(&elsewhere).await.unwrap(), Some(5));
}

async fn check_unlinked_blobs(s: &dyn MetadataStore) {
    let (r1, r2) = (repo("r1"), repo("r2"));
    let x = dg("x");
    s.blob_committed(&r1, &x, 9, 1_000).await.unwrap();
    assert!(s.unlinked_blobs(5_000, 10).await.unwrap().is_empty());
    assert!(!s.forget_blob_if_unlinked(&x, 5_000).await.unwrap());

    assert!(s.unlink_blob(&r1, &x).await.unwrap());
    // Last linked at 1000: not older than a cutoff of 1000, older than 1001.
    assert!(s.unlinked_blobs(1_000, 10).await.unwrap().is_empty());
    assert!(!s.forget_blob_if_unlinked(&x, 1_000).await.unwrap());
    assert_eq!(
        s.unlinked_blobs(1_001, 10).await.unwrap(),
        std::slice::from_ref(&x)
    );

    // A re-link (mount) makes it live again, and young once it is unlinked again.
    assert!(s.link_blob(&r2, &x, 1_500).await.unwrap());
    assert!(s.unlinked_blobs(9_000, 10).await.unwrap().is_empty());
    assert!(!s.forget_blob_if_unlinked(&x, 9_000).await.unwrap());
    assert!(s.unlink_blob(&r2, &x).await.unwrap());
    assert!(s.unlinked_blobs(1_200, 10).await.unwrap().is_empty());
    assert!(!s.forget_blob_if_unlinked(&x, 1_200).await.unwrap());
    assert_eq!(s.blob_size(&x).await.unwrap(), Some(9));

    // A re-commit (push of the same content) refreshes it too.
    s.blob_committed(&r1, &x, 9, 1_700).await.unwrap();
    assert!(s.unlink_blob(&r1, &x).await.unwrap());
    assert!(s.unlinked_blobs(1_600, 10).await.unwrap().is_empty());

    assert_eq!(
        s.unlinked_blobs(1_701, 10).await.unwrap(),
        std::slice::from_ref(&x)
    );
    assert!(s.forget_blob_if_unlinked(&x, 1_701).await.unwrap());
    assert_eq!(s.blob_size(&x).await.unwrap(), None);
    assert!(!s.forget_blob_if_unlinked(&x, 1_701).await.unwrap());
    // A forgotten blob can no longer be mounted, only pushed again.
    assert!(!s.link_blob(&r1, &x, 1_800).await.unwrap());
    assert!(s.unlinked_blobs(9_000, 10).await.unwrap().is_empty());
    s.blob_committed(&r1, &x, 9, 1_900).await.unwrap();
    assert_eq!(s.repo_blob_size(&r1, &x).await.unwrap(), Some(9));

    // The limit bounds a batch; successive batches drain the candidates.
    let many: Vec<Digest> = (0..5).map(|i| dg(&format!("many-{i}"))).collect();
    for d in &many {
        s.blob_committed(&r2, d, 1, 100).await.unwrap();
        assert!(s.unlink_blob(&r2, d).await.unwrap());
    }
    let first = s.unlinked_blobs(200, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    for d in &first {
        assert!(s.forget_blob_if_unlinked(d, 200).await.unwrap());
    }
    let rest = s.unlinked_blobs(200, 3).await.unwrap();
    assert_eq!(rest.len(), 2);
    let mut seen: Vec<Digest> = first.into_iter().chain(rest).collect();
    seen.sort();
    let mut want = many.clone();
    want.sort();
    assert_eq!(seen, want);
}

/// A blob link that a manifest still references is never collected, even when old.
async fn check_gc_keeps_links_of_untagged_young_and_index(s: &dyn MetadataStore) {
    let r = repo("app");
    let layer = dg("layer");
    s.blob_committed(&r, &layer, 10, 100).await.unwrap();
    let child = image("child", &[(&layer, 10)]);
    put_ok(s, &r, &child, None, 100).await;
    put_ok(s, &r, &index("idx", &[&child.digest]), Some("t"), 100).await;
    let counts = s.gc_metadata(10_000, false).await.unwrap();
    assert_eq!(counts, GcCounts::default());
    assert_eq!(s.repo_blob_size(&r, &layer).await.unwrap(), Some(10));
    assert!(s.unlinked_blobs(10_000, 10).await.unwrap().is_empty());
}

/// What a dry run reports is what the same run would delete. Manifests the sweep deletes
/// release their blob links in the same run, so those links must be counted as well.
async fn check_gc_dry_run_matches_real_run(s: &dyn MetadataStore) {
    let r = repo("app");
    let layer = dg("layer");
    s.blob_committed(&r, &layer, 10, 100).await.unwrap();
    put_ok(s, &r, &image("m", &[(&layer, 10)]), None, 100).await;
    let dry = s.gc_metadata(1_000, true).await.unwrap();
    let real = s.gc_metadata(1_000, false).await.unwrap();
    assert_eq!(
        real,
        GcCounts {
            manifests: 1,
            links: 1
        }
    );
    assert_eq!(dry, real, "dry run under-reports");
}

/// A repository that no longer holds anything is unknown to tags/list, as to the catalog.
async fn check_emptied_repository_is_unknown(s: &dyn MetadataStore) {
    let r = repo("gone/app");
    let d = dg("only");
    s.blob_committed(&r, &d, 4, 100).await.unwrap();
    assert_eq!(tags_of(s, &r).await, Some(vec![]));
    assert!(s.unlink_blob(&r, &d).await.unwrap());
    assert_eq!(tags_of(s, &r).await, None);
    assert!(s.list_repositories(None, None).await.unwrap().is_empty());
}

// ---- concurrent writers -------------------------------------------------------------------

/// Run `op` after `delay` round trips to the store, to vary which of two racers gets ahead.
async fn after<T>(s: &dyn MetadataStore, delay: usize, op: impl Future<Output = T>) -> T {
    for _ in 0..delay {
        s.ready().await.unwrap();
    }
    op.await
}

/// Operations that cannot both win, started together: whichever wins, no manifest is left
/// without the blob links it references and no link without its blob. SQLite serializes
/// them; on PostgreSQL they overlap on separate connections, and the rounds vary which one
/// starts first and by how much.
async fn check_concurrent_link_races(s: &dyn MetadataStore) {
    let (r, other) = (repo("race"), repo("race-other"));
    const CUTOFF: i64 = 1_000;
    for i in 0..24 {
        // Round trips by which the first racer (d1) or the second (d2) is held back.
        let (d1, d2) = if i % 2 == 0 {
            (i / 2 % 6, 0)
        } else {
            (0, i / 2 % 6)
        };
        // A push referencing a layer while the layer is deleted from the repository.
        let b = dg(&format!("unlink-{i}"));
        s.blob_committed(&r, &b, 1, 100).await.unwrap();
        let m = image(&format!("unlink-{i}"), &[(&b, 1)]);
        let (put, unlinked) = futures::join!(
            after(s, d1, s.put_manifest(&r, &m, None, 100)),
            after(s, d2, s.unlink_blob(&r, &b))
        );
        match put.unwrap() {
            Ok(()) => {
                assert!(!unlinked.unwrap(), "round {i}: unlinked a layer now in use");
                assert_eq!(s.repo_blob_size(&r, &b).await.unwrap(), Some(1));
                assert_eq!(
                    s.manifest_using_blob(&r, &b).await.unwrap(),
                    Some(m.digest.clone())
                );
            }
            Err(rejection) => {
                assert_eq!(rejection, PutManifestRejection::MissingBlob(b.clone()));
                assert!(unlinked.unwrap());
                assert!(!has_manifest(s, &r, &m.digest).await);
            }
        }

        // A push referencing an old, so far unused, link while GC sweeps.
        let g = dg(&format!("gc-{i}"));
        s.blob_committed(&r, &g, 1, 100).await.unwrap();
        let m = image(&format!("gc-{i}"), &[(&g, 1)]);
        let t = tag(&format!("gc-{i}"));
        let (put, gc) = futures::join!(
            after(s, d1, s.put_manifest(&r, &m, Some(&t), 5_000)),
            after(s, d2, s.gc_metadata(CUTOFF, false))
        );
        gc.unwrap();
        match put.unwrap() {
            Ok(()) => {
                assert_eq!(
                    s.repo_blob_size(&r, &g).await.unwrap(),
                    Some(1),
                    "round {i}"
                );
                assert!(has_manifest(s, &r, &m.digest).await);
            }
            Err(rejection) => {
                assert_eq!(rejection, PutManifestRejection::MissingBlob(g.clone()));
                assert_eq!(s.repo_blob_size(&r, &g).await.unwrap(), None);
            }
        }

        // Tagging an old untagged manifest (pushing it again) while GC collects it: the push
        // always wins, and its tag stays.
        let l = dg(&format!("retag-{i}"));
        s.blob_committed(&r, &l, 1, 5_000).await.unwrap();
        let m = image(&format!("retag-{i}"), &[(&l, 1)]);
        put_ok(s, &r, &m, None, 100).await;
        let t = format!("retag-{i}");
        let tg = tag(&t);
        let (put, gc) = futures::join!(
            after(s, d1, s.put_manifest(&r, &m, Some(&tg), 5_000)),
            after(s, d2, s.gc_metadata(CUTOFF, false))
        );
        put.unwrap().unwrap();
        gc.unwrap();
        assert_eq!(
            digest_by_tag(s, &r, &t).await,
            Some(m.digest.clone()),
            "round {i}"
        );
        assert_eq!(s.manifest_using_blob(&r, &l).await.unwrap(), Some(m.digest));

        // A mount of an unlinked, old blob while GC forgets it; the mount's own time is
        // sometimes before the cutoff too, so only the link itself can save the blob.
        let f = dg(&format!("forget-{i}"));
        s.blob_committed(&r, &f, 1, 100).await.unwrap();
        assert!(s.unlink_blob(&r, &f).await.unwrap());
        let now = if i % 4 < 2 { 5_000 } else { 500 };
        let (linked, forgotten) = futures::join!(
            after(s, d1, s.link_blob(&other, &f, now)),
            after(s, d2, s.forget_blob_if_unlinked(&f, CUTOFF))
        );
        let (linked, forgotten) = (linked.unwrap(), forgotten.unwrap());
        assert_ne!(
            linked, forgotten,
            "round {i}: exactly one of mount and forget wins"
        );
        if linked {
            assert_eq!(s.blob_size(&f).await.unwrap(), Some(1));
            assert_eq!(s.repo_blob_size(&other, &f).await.unwrap(), Some(1));
        } else {
            assert_eq!(s.blob_size(&f).await.unwrap(), None);
            assert_eq!(s.repo_blob_size(&other, &f).await.unwrap(), None);
        }

        // A fresh push of the same content while GC forgets it: the push always wins.
        let p = dg(&format!("repush-{i}"));
        s.blob_committed(&r, &p, 1, 100).await.unwrap();
        assert!(s.unlink_blob(&r, &p).await.unwrap());
        let (committed, forgotten) = futures::join!(
            after(s, d1, s.blob_committed(&other, &p, 1, now)),
            after(s, d2, s.forget_blob_if_unlinked(&p, CUTOFF))
        );
        committed.unwrap();
        forgotten.unwrap();
        assert_eq!(s.blob_size(&p).await.unwrap(), Some(1), "round {i}");
        assert_eq!(s.repo_blob_size(&other, &p).await.unwrap(), Some(1));
    }
}

// ---- runners ------------------------------------------------------------------------------

async fn open_sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("meta.db"))
        .await
        .unwrap();
    store.ready().await.unwrap();
    (dir, store)
}

macro_rules! sqlite_suite {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let (_dir, store) = super::open_sqlite().await;
                    super::$check(&store).await;
                }
            )*
        }
    };
}

// ---- PostgreSQL ---------------------------------------------------------------------------

async fn open_postgres(url: &str) -> PostgresStore {
    let store = PostgresStore::open(url).await.unwrap();
    store.ready().await.unwrap();
    store
}

macro_rules! postgres_suite {
    ($($check:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    super::with_postgres_database(|url| async move {
                        let store = super::open_postgres(&url).await;
                        super::$check(&store).await;
                        store.close().await;
                    })
                    .await;
                }
            )*
        }
    };
}

/// Every check of the contract suite, run by each backend's `*_suite!`.
macro_rules! all_checks {
    ($suite:ident) => {
        $suite!(
            check_upload_sessions,
            check_upload_completed,
            check_blob_links,
            check_put_manifest_rejections,
            check_put_get_and_retag,
            check_deletes,
            check_list_tags,
            check_list_repositories,
            check_referrers,
            check_manifest_relations,
            check_gc_manifests,
            check_gc_links,
            check_unlinked_blobs,
            check_gc_keeps_links_of_untagged_young_and_index,
            check_emptied_repository_is_unknown,
            check_concurrent_link_races,
        );
    };
}

all_checks!(sqlite_suite);
all_checks!(postgres_suite);

#[tokio::test]
async fn sqlite_gc_dry_run_matches_real_run() {
    let (_dir, store) = open_sqlite().await;
    check_gc_dry_run_matches_real_run(&store).await;
}

/// A committed write is on disk: a store opened afresh on the same file sees all of it.
#[tokio::test]
async fn sqlite_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let r = repo("team/app");
    let layer = dg("layer");
    let m = NewManifest {
        annotations: Some(r#"{"a":"b"}"#.into()),
        ..image("persisted", &[(&layer, 3)])
    };
    let sig = referrer("sig", &m.digest, "application/x.sig");
    {
        let s = SqliteStore::open(&path).await.unwrap();
        s.create_upload("sess", &r, 100).await.unwrap();
        s.set_upload_size("sess", 77, 110).await.unwrap();
        s.blob_committed(&r, &layer, 3, 120).await.unwrap();
        put_ok(&s, &r, &m, Some("v1"), 130).await;
        put_ok(&s, &r, &sig, None, 140).await;
        assert!(s.delete_tag(&r, &tag("v1")).await.unwrap());
        put_ok(&s, &r, &m, Some("v2"), 150).await;
    }
    // Reopening runs the migrations again; they must be a no-op on a migrated database.
    let s = SqliteStore::open(&path).await.unwrap();
    let u = s.get_upload("sess").await.unwrap().unwrap();
    assert_eq!((u.size, u.created_at, u.updated_at), (77, 100, 110));
    assert_eq!(s.blob_size(&layer).await.unwrap(), Some(3));
    assert_eq!(s.repo_blob_size(&r, &layer).await.unwrap(), Some(3));
    assert_eq!(tags_of(&s, &r).await, Some(vec!["v2".to_owned()]));
    let got = s
        .get_manifest_by_tag(&r, &tag("v2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, m.digest);
    assert_eq!(got.content, m.content);
    let refs = s.referrers(&r, &m.digest, None).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].digest, sig.digest);
    assert_eq!(s.list_repositories(None, None).await.unwrap(), ["team/app"]);

    // And a third opening, while the second is still open, sees the second's writes.
    s.delete_upload("sess").await.unwrap();
    let s3 = SqliteStore::open(&path).await.unwrap();
    assert_eq!(s3.get_upload("sess").await.unwrap(), None);
    assert_eq!(s3.blob_size(&layer).await.unwrap(), Some(3));
}

#[tokio::test]
async fn sqlite_open_url_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("url.db");
    let r = repo("app");
    {
        let s = SqliteStore::open_url(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        s.blob_committed(&r, &dg("b"), 1, 1).await.unwrap();
    }
    let s = SqliteStore::open_url(path.to_str().unwrap()).await.unwrap();
    assert_eq!(s.blob_size(&dg("b")).await.unwrap(), Some(1));
    assert!(path.exists());
}

#[tokio::test]
async fn postgres_gc_dry_run_matches_real_run() {
    with_postgres_database(|url| async move {
        let store = open_postgres(&url).await;
        check_gc_dry_run_matches_real_run(&store).await;
        store.close().await;
    })
    .await;
}

/// A committed write is in the database: a store opened afresh on it sees all of it.
#[tokio::test]
async fn postgres_data_survives_reopen() {
    with_postgres_database(|url| async move {
        let r = repo("team/app");
        let layer = dg("layer");
        let m = NewManifest {
            annotations: Some(r#"{"a":"b"}"#.into()),
            ..image("persisted", &[(&layer, 3)])
        };
        let sig = referrer("sig", &m.digest, "application/x.sig");
        {
            let s = PostgresStore::open(&url).await.unwrap();
            s.create_upload("sess", &r, 100).await.unwrap();
            s.set_upload_size("sess", 77, 110).await.unwrap();
            s.blob_committed(&r, &layer, 3, 120).await.unwrap();
            put_ok(&s, &r, &m, Some("v1"), 130).await;
            put_ok(&s, &r, &sig, None, 140).await;
            assert!(s.delete_tag(&r, &tag("v1")).await.unwrap());
            put_ok(&s, &r, &m, Some("v2"), 150).await;
            s.close().await;
        }
        // Reopening runs the migrations again; they must be a no-op on a migrated database.
        let s = PostgresStore::open(&url).await.unwrap();
        let u = s.get_upload("sess").await.unwrap().unwrap();
        assert_eq!((u.size, u.created_at, u.updated_at), (77, 100, 110));
        assert_eq!(s.blob_size(&layer).await.unwrap(), Some(3));
        assert_eq!(s.repo_blob_size(&r, &layer).await.unwrap(), Some(3));
        assert_eq!(tags_of(&s, &r).await, Some(vec!["v2".to_owned()]));
        let got = s
            .get_manifest_by_tag(&r, &tag("v2"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.digest, m.digest);
        assert_eq!(got.content, m.content);
        let refs = s.referrers(&r, &m.digest, None).await.unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].digest, sig.digest);
        assert_eq!(refs[0].annotations, None);
        assert_eq!(s.list_repositories(None, None).await.unwrap(), ["team/app"]);

        // And another store (a second replica) opened while this one is still open sees
        // this one's writes, and this one sees the other's.
        s.delete_upload("sess").await.unwrap();
        let s2 = PostgresStore::open(&url).await.unwrap();
        assert_eq!(s2.get_upload("sess").await.unwrap(), None);
        assert_eq!(s2.blob_size(&layer).await.unwrap(), Some(3));
        s2.create_upload("from-s2", &r, 200).await.unwrap();
        assert_eq!(s.all_uploads().await.unwrap(), ["from-s2"]);
        s2.close().await;
        s.close().await;
    })
    .await;
}

#[test]
fn postgres_url_database_is_replaced() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(with_database("postgres://u:p@h", "x"), "postgres://u:p@h/x");
    assert_eq!(
        with_database("postgresql://h/db?sslmode=disable", "x"),
        "postgresql://h/x?sslmode=disable"
    );
}

/// Two replicas' stores on one database: a digest lock held by one makes the other wait until
/// it is dropped; other digests are not blocked.
#[tokio::test]
async fn postgres_blob_lock_is_exclusive_across_replicas() {
    with_postgres_database(|url| async move {
        let a = open_postgres(&url).await;
        let b = open_postgres(&url).await;
        let d = dg("locked");
        let held = a.lock_blob(&d).await.unwrap();
        let waiting = tokio::spawn({
            let b = b.clone();
            let d = d.clone();
            async move {
                let _lock = b.lock_blob(&d).await.unwrap();
            }
        });
        // Another digest is free meanwhile.
        let other =
            tokio::time::timeout(std::time::Duration::from_secs(5), b.lock_blob(&dg("other")))
                .await
                .expect("an unrelated digest is not blocked")
                .unwrap();
        drop(other);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "the second replica got the lock while it was held"
        );
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the lock is released on drop")
            .unwrap();
        a.close().await;
        b.close().await;
    })
    .await;
}

/// Background jobs run on one replica at a time: the second try fails while the first holds
/// the job, and succeeds once it is released (as when the holder's process dies).
#[tokio::test]
async fn postgres_job_lock_admits_one_replica() {
    with_postgres_database(|url| async move {
        let a = open_postgres(&url).await;
        let b = open_postgres(&url).await;
        let held = a.try_job_lock("gc").await.unwrap().expect("first replica");
        assert!(b.try_job_lock("gc").await.unwrap().is_none());
        // Another job and the digest locks are independent of it.
        let other = b.try_job_lock("scan").await.unwrap().expect("another job");
        drop(other);
        drop(b.lock_blob(&dg("x")).await.unwrap());
        drop(held);
        let mut again = None;
        for _ in 0..50 {
            again = b.try_job_lock("gc").await.unwrap();
            if again.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(again.is_some(), "the job lock is released on drop");
        a.close().await;
        b.close().await;
    })
    .await;
}
