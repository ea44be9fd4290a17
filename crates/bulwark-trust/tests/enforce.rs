#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The pull enforcer over an in-memory registry and policy store: signature decisions, the
//! vulnerability gate (threshold, allowlist with expiry, unscanned images), exemptions
//! (artifacts, publishers), blob decisions, caching keyed by policy version and invalidated by
//! content changes, and the folded audit log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bulwark_oci::RepoName;
use bulwark_trust::cosign;
use bulwark_trust::enforce::{
    ContentSource, DecisionRecord, Enforcer, EnforcerConfig, GateFinding, Outcome, PolicyStore,
    Referrer, Requester, ScanFindings, SourceError, StoredManifest, StoredPolicy,
};
use bulwark_trust::keys::{KeyAlgorithm, PrivateKey};
use bulwark_trust::policy::Severity;
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Default)]
struct Fake {
    manifests: Mutex<HashMap<(String, String), StoredManifest>>,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    policies: Mutex<HashMap<String, StoredPolicy>>,
    decisions: Mutex<Vec<DecisionRecord>>,
    findings: Mutex<HashMap<String, Vec<GateFinding>>>,
    manifest_reads: AtomicUsize,
}

fn sha(bytes: &[u8]) -> String {
    cosign::sha256_digest(bytes)
}

impl Fake {
    fn put_blob(&self, bytes: &[u8]) -> String {
        let d = sha(bytes);
        self.blobs.lock().unwrap().insert(d.clone(), bytes.to_vec());
        d
    }

    fn put_manifest(&self, repo: &str, tag: Option<&str>, v: &Value) -> StoredManifest {
        let bytes = serde_json::to_vec(v).unwrap();
        let m = StoredManifest {
            digest: sha(&bytes),
            media_type: OCI_MANIFEST.to_owned(),
            bytes: bytes.into(),
        };
        let mut all = self.manifests.lock().unwrap();
        all.insert((repo.to_owned(), m.digest.clone()), m.clone());
        if let Some(tag) = tag {
            all.insert((repo.to_owned(), tag.to_owned()), m.clone());
        }
        m
    }

    fn image(&self, repo: &str, seed: u8) -> StoredManifest {
        let layer = self.put_blob(&[seed; 64]);
        self.put_manifest(
            repo,
            None,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.put_blob(b"{}"), "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": 64}],
            }),
        )
    }

    /// Signs `digest` in `repo` with `key` as cosign's tag scheme does.
    fn sign(&self, repo: &str, digest: &str, key: &PrivateKey, signed_repo: &str) {
        let signed = cosign::sign_image(key, &format!("r.example/{signed_repo}"), digest).unwrap();
        let artifact = cosign::tag_scheme_manifest(&[signed]).unwrap();
        for b in &artifact.blobs {
            self.put_blob(&b.bytes);
        }
        let v: Value = serde_json::from_slice(&artifact.manifest).unwrap();
        self.put_manifest(repo, Some(&cosign::signature_tag(digest).unwrap()), &v);
    }

    fn set_policy(&self, project: &str, policy: Value) {
        let mut p = self.policies.lock().unwrap();
        let version = p.get(project).map_or(1, |s| s.version + 1);
        p.insert(
            project.to_owned(),
            StoredPolicy {
                document: policy.to_string(),
                version,
                updated_at: 0,
                updated_by: "admin".to_owned(),
            },
        );
    }
}

#[async_trait]
impl ContentSource for Fake {
    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &str,
    ) -> Result<Option<StoredManifest>, SourceError> {
        self.manifest_reads.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .manifests
            .lock()
            .unwrap()
            .get(&(repo.as_str().to_owned(), reference.to_owned()))
            .cloned())
    }
    async fn referrers(&self, _: &RepoName, _: &str) -> Result<Vec<Referrer>, SourceError> {
        Ok(Vec::new())
    }
    async fn blob(&self, digest: &str, _max: usize) -> Result<Vec<u8>, SourceError> {
        self.blobs
            .lock()
            .unwrap()
            .get(digest)
            .cloned()
            .ok_or_else(|| SourceError("missing".into()))
    }
    async fn manifests_with_blob(
        &self,
        repo: &RepoName,
        digest: &str,
        _limit: u32,
    ) -> Result<Vec<String>, SourceError> {
        let all = self.manifests.lock().unwrap();
        let mut out: Vec<String> = all
            .iter()
            .filter(|((r, reference), m)| {
                r == repo.as_str()
                    && reference.starts_with("sha256:")
                    && String::from_utf8_lossy(&m.bytes).contains(digest)
            })
            .map(|(_, m)| m.digest.clone())
            .collect();
        out.sort();
        Ok(out)
    }
    async fn parent_indexes(
        &self,
        _: &RepoName,
        _: &str,
        _: u32,
    ) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl PolicyStore for Fake {
    async fn trust_policy(&self, project: &str) -> Result<Option<StoredPolicy>, SourceError> {
        Ok(self.policies.lock().unwrap().get(project).cloned())
    }
    async fn put_trust_policy(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: i64,
    ) -> Result<i64, SourceError> {
        unreachable!()
    }
    async fn delete_trust_policy(&self, _: &str) -> Result<bool, SourceError> {
        unreachable!()
    }
    async fn record_trust_decisions(&self, rows: &[DecisionRecord]) -> Result<(), SourceError> {
        self.decisions.lock().unwrap().extend_from_slice(rows);
        Ok(())
    }
    async fn trust_decisions(&self, _: &str, _: u32) -> Result<Vec<DecisionRecord>, SourceError> {
        Ok(self.decisions.lock().unwrap().clone())
    }
}

#[async_trait]
impl ScanFindings for Fake {
    async fn findings(
        &self,
        _: &RepoName,
        digest: &str,
    ) -> Result<Option<Vec<GateFinding>>, SourceError> {
        Ok(self.findings.lock().unwrap().get(digest).cloned())
    }
}

fn setup(now: i64) -> (Arc<Fake>, Enforcer) {
    let fake = Arc::new(Fake::default());
    let config = EnforcerConfig {
        policy_ttl: std::time::Duration::ZERO,
        ..EnforcerConfig::default()
    };
    let e = Enforcer::new(fake.clone(), fake.clone(), config).with_clock(move || now);
    e.set_scan_findings(fake.clone());
    (fake, e)
}

/// The outcome of a check, owned.
fn out(r: Result<Arc<Outcome>, SourceError>) -> Outcome {
    (*r.unwrap()).clone()
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

const PULLER: Requester<'static> = Requester {
    subject: "deployer",
    may_push: false,
};

fn key() -> PrivateKey {
    PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap()
}

fn enforce(key: &PrivateKey) -> Value {
    json!({
        "require_signature": "enforce",
        "keys": [{"name": "release", "public_key": key.public_key().to_pem().unwrap()}],
    })
}

fn denied(o: &Outcome) -> &str {
    match o {
        Outcome::Denied(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn signatures_artifacts_publishers_and_blobs() {
    let (fake, e) = setup(1000);
    let release = key();
    let app = repo("team/app");
    let signed = fake.image("team/app", 1);
    let unsigned = fake.image("team/app", 2);
    fake.sign("team/app", &signed.digest, &release, "team/app");

    // No policy: nothing is checked.
    assert_eq!(
        out(e.check_manifest(&app, &unsigned, PULLER).await),
        Outcome::NotChecked
    );

    fake.set_policy("team", enforce(&release));
    assert!(matches!(
        out(e.check_manifest(&app, &signed, PULLER).await),
        Outcome::Allowed(r) if r.contains("release")
    ));
    let o = out(e.check_manifest(&app, &unsigned, PULLER).await);
    assert!(denied(&o).contains("no signatures found"), "{o:?}");
    // Publishers are not gated; the signature manifest itself is an artifact.
    let publisher = Requester {
        subject: "ci",
        may_push: true,
    };
    assert_eq!(
        out(e.check_manifest(&app, &unsigned, publisher).await),
        Outcome::NotChecked
    );
    let sig = fake
        .manifest(&app, &cosign::signature_tag(&signed.digest).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out(e.check_manifest(&app, &sig, PULLER).await),
        Outcome::NotChecked
    );

    // Blobs follow their images: the unsigned image's layer is refused, the signed one's
    // served, the signature payload served (its manifest is an artifact), an orphan refused.
    let layer_of = |m: &StoredManifest| {
        let v: Value = serde_json::from_slice(&m.bytes).unwrap();
        v["layers"][0]["digest"].as_str().unwrap().to_owned()
    };
    assert!(!out(e.check_blob(&app, &layer_of(&signed), PULLER).await).is_denied());
    let o = out(e.check_blob(&app, &layer_of(&unsigned), PULLER).await);
    assert!(
        denied(&o).contains("belongs only to images the trust policy refuses"),
        "{o:?}"
    );
    assert!(!out(e.check_blob(&app, &layer_of(&sig), PULLER).await).is_denied());
    let orphan = fake.put_blob(b"orphan");
    let o = out(e.check_blob(&app, &orphan, PULLER).await);
    assert!(denied(&o).contains("not part of any image"), "{o:?}");

    // Decisions are folded for the audit log.
    for _ in 0..3 {
        out(e.check_manifest(&app, &unsigned, PULLER).await);
    }
    assert!(e.flush_audit().await.unwrap() > 0);
    let rows = fake.decisions.lock().unwrap().clone();
    let refusals = rows
        .iter()
        .find(|r| r.digest == unsigned.digest && r.decision == "denied")
        .unwrap();
    assert_eq!(refusals.count, 4);
    assert_eq!((refusals.first_at, refusals.last_at), (1000, 1000));
    assert_eq!(refusals.subject, "deployer");
    assert_eq!(e.flush_audit().await.unwrap(), 0);
}

#[tokio::test]
async fn the_cache_follows_policy_versions_and_content_changes() {
    let (fake, e) = setup(1000);
    let release = key();
    let other = key();
    let app = repo("team/app");
    let image = fake.image("team/app", 1);
    fake.set_policy("team", enforce(&release));
    assert!(out(e.check_manifest(&app, &image, PULLER).await).is_denied());

    // Signed now, but the refusal is cached until content changes here...
    fake.sign("team/app", &image.digest, &release, "team/app");
    let reads = fake.manifest_reads.load(Ordering::Relaxed);
    assert!(out(e.check_manifest(&app, &image, PULLER).await).is_denied());
    assert_eq!(
        fake.manifest_reads.load(Ordering::Relaxed),
        reads,
        "served from the cache"
    );
    e.content_changed();
    assert!(!out(e.check_manifest(&app, &image, PULLER).await).is_denied());

    // A new policy version (trusting another key) decides afresh.
    fake.set_policy("team", enforce(&other));
    let o = out(e.check_manifest(&app, &image, PULLER).await);
    assert!(
        denied(&o).contains("not by a key the policy trusts"),
        "{o:?}"
    );

    // Copied from another repository: the payload names it.
    let copy = repo("team/copy");
    let copied = fake.image("team/copy", 1);
    assert_eq!(copied.digest, image.digest);
    fake.sign("team/copy", &copied.digest, &other, "team/app");
    let o = out(e.check_manifest(&copy, &copied, PULLER).await);
    assert!(denied(&o).contains("is for repository"), "{o:?}");
}

fn finding(id: &str, alias: &str, severity: Severity) -> GateFinding {
    GateFinding {
        id: id.to_owned(),
        aliases: vec![alias.to_owned()],
        package: "openssl".to_owned(),
        severity: Some(severity),
    }
}

#[tokio::test]
async fn vulnerability_gate() {
    let now = 1_800_000_000;
    let (fake, e) = setup(now);
    let app = repo("team/app");
    let scanned = fake.image("team/app", 1);
    let unscanned = fake.image("team/app", 2);
    fake.findings.lock().unwrap().insert(
        scanned.digest.clone(),
        vec![
            finding("DSA-1", "CVE-2024-0001", Severity::Critical),
            finding("DSA-2", "CVE-2024-0002", Severity::High),
            finding("DSA-3", "CVE-2024-0003", Severity::Medium),
        ],
    );
    let gate = |allow: Value, unscanned: &str| json!({"vulnerabilities": {"refuse_severity": "high", "allowlist": allow, "unscanned": unscanned}});
    fake.set_policy("team", gate(json!([]), "allow"));
    let o = out(e.check_manifest(&app, &scanned, PULLER).await);
    let why = denied(&o);
    assert!(
        why.contains("2 finding(s) of severity High or higher"),
        "{why}"
    );
    assert!(
        why.find("DSA-1").unwrap() < why.find("DSA-2").unwrap(),
        "worst first: {why}"
    );
    assert!(!why.contains("DSA-3"), "{why}");
    assert!(matches!(
        out(e.check_manifest(&app, &unscanned, PULLER).await),
        Outcome::Allowed(_)
    ));

    // Allowlisted by alias until an expiry: one left; an expired entry excuses nothing.
    fake.set_policy(
        "team",
        gate(
            json!([{"id": "CVE-2024-0001", "expires": now + 60}, {"id": "DSA-2", "expires": now - 1}]),
            "refuse",
        ),
    );
    let o = out(e.check_manifest(&app, &scanned, PULLER).await);
    let why = denied(&o);
    assert!(
        why.contains("1 finding(s)") && why.contains("DSA-2"),
        "{why}"
    );
    let o = out(e.check_manifest(&app, &unscanned, PULLER).await);
    assert!(denied(&o).contains("has not been scanned"), "{o:?}");

    fake.set_policy(
        "team",
        gate(json!([{"id": "DSA-1"}, {"id": "CVE-2024-0002"}]), "allow"),
    );
    assert!(matches!(
        out(e.check_manifest(&app, &scanned, PULLER).await),
        Outcome::Allowed(_)
    ));

    // An index is judged by its platform images; BuildKit's attestation manifests
    // (platform unknown/unknown) are never scanned and do not count as unscanned images.
    let clean = fake.image("team/app", 3);
    fake.findings
        .lock()
        .unwrap()
        .insert(clean.digest.clone(), vec![]);
    let attestation = fake.image("team/app", 4);
    let index = |children: &[(&StoredManifest, &str, &str)]| {
        let manifests: Vec<Value> = children
            .iter()
            .map(|(m, os, arch)| json!({"mediaType": OCI_MANIFEST, "digest": m.digest, "size": m.bytes.len(), "platform": {"os": os, "architecture": arch}}))
            .collect();
        fake.put_manifest(
            "team/app",
            None,
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}),
        )
    };
    fake.set_policy("team", gate(json!([]), "refuse"));
    let attested = index(&[
        (&clean, "linux", "amd64"),
        (&attestation, "unknown", "unknown"),
    ]);
    let o = out(e.check_manifest(&app, &attested, PULLER).await);
    assert!(matches!(o, Outcome::Allowed(_)), "{o:?}");
    let mixed = index(&[(&clean, "linux", "amd64"), (&unscanned, "linux", "arm64")]);
    let o = out(e.check_manifest(&app, &mixed, PULLER).await);
    assert!(
        denied(&o).contains(&format!(
            "image {} in team/app has not been scanned",
            unscanned.digest
        )),
        "{o:?}"
    );
}

#[tokio::test]
async fn warn_mode_serves_and_records() {
    let (fake, e) = setup(5);
    let release = key();
    let app = repo("team/app");
    let image = fake.image("team/app", 9);
    let mut policy = enforce(&release);
    policy["require_signature"] = "warn".into();
    policy["repositories"] = json!(["team/app"]);
    fake.set_policy("team", policy);
    assert!(matches!(
        out(e.check_manifest(&app, &image, PULLER).await),
        Outcome::Warned(r) if r.contains("no signature")
    ));
    // Outside the policy's repositories nothing is checked.
    let other = repo("team/other");
    let image2 = fake.image("team/other", 9);
    assert_eq!(
        out(e.check_manifest(&other, &image2, PULLER).await),
        Outcome::NotChecked
    );
    e.flush_audit().await.unwrap();
    assert_eq!(fake.decisions.lock().unwrap()[0].decision, "warned");
}
