//! Pull enforcement: decides whether a manifest or blob of a repository may be handed out
//! under its project's trust policy, caches the decision per (repository, digest, policy
//! version), and records every decision for the audit log.
//!
//! The registry is reached through [`ContentSource`] and policies and audit rows through
//! [`PolicyStore`], so this module has no I/O of its own and is tested with in-memory fakes.
//!
//! What is gated: container images (manifests with at least one filesystem layer) and indexes.
//! Artifacts without filesystem layers — cosign and Notation signatures, attestations, SBOMs —
//! stay pullable so clients can verify. Callers who may push to the repository are not gated
//! unless the policy says `enforce_for_pushers` (they could push the content anyway, and must
//! read what they push to sign it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bulwark_oci::RepoName;
use serde::Deserialize;

use crate::cosign::{self, SignedPayload};
use crate::notation;
use crate::policy::{CompiledPolicy, MultiArch, Requirement, Severity, TrustPolicy, Unscanned};
use crate::simple_signing::MAX_PAYLOAD_BYTES;

/// `artifactType` of Notation signature manifests.
pub const NOTATION_ARTIFACT_TYPE: &str = notation::SIGNATURE_ARTIFACT_TYPE;
/// At most this many signature manifests are examined per image.
const MAX_SIGNATURE_MANIFESTS: usize = 16;
/// At most this many manifests are examined to admit a blob or a platform manifest.
const MAX_PARENTS: u32 = 16;
const MAX_CACHE_ENTRIES: usize = 100_000;

/// A failure of the registry or the database behind the enforcer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        SourceError(e.to_string())
    }
}

/// A stored manifest as the registry holds it.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: bytes::Bytes,
}

/// One referrer of a manifest.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub digest: String,
    pub artifact_type: Option<String>,
}

/// Read access to the registry's content.
#[async_trait]
pub trait ContentSource: Send + Sync {
    /// A manifest of `repo` by tag or digest.
    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &str,
    ) -> Result<Option<StoredManifest>, SourceError>;
    /// The referrers of `digest` in `repo`.
    async fn referrers(&self, repo: &RepoName, digest: &str) -> Result<Vec<Referrer>, SourceError>;
    /// A blob's bytes; refuse blobs larger than `max`.
    async fn blob(&self, digest: &str, max: usize) -> Result<Vec<u8>, SourceError>;
    /// Manifests of `repo` that reference the blob `digest` (config or layer).
    async fn manifests_with_blob(
        &self,
        repo: &RepoName,
        digest: &str,
        limit: u32,
    ) -> Result<Vec<String>, SourceError>;
    /// Indexes of `repo` that list the manifest `digest`.
    async fn parent_indexes(
        &self,
        repo: &RepoName,
        digest: &str,
        limit: u32,
    ) -> Result<Vec<String>, SourceError>;
}

/// A stored policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub document: String,
    pub version: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// One audit row: identical decisions in a flush window are folded into a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub project: String,
    pub repository: String,
    pub digest: String,
    /// Who pulled: user, robot or `anonymous`.
    pub subject: String,
    /// `allowed`, `warned` or `denied`.
    pub decision: String,
    pub reason: String,
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
}

/// Persistence of policies and the decision log (implemented in `bulwark-meta`).
#[async_trait]
pub trait PolicyStore: Send + Sync {
    async fn trust_policy(&self, project: &str) -> Result<Option<StoredPolicy>, SourceError>;
    /// Stores a policy and returns its new version (greater than any before for the project).
    async fn put_trust_policy(
        &self,
        project: &str,
        document: &str,
        by: &str,
        now: i64,
    ) -> Result<i64, SourceError>;
    async fn delete_trust_policy(&self, project: &str) -> Result<bool, SourceError>;
    async fn record_trust_decisions(&self, rows: &[DecisionRecord]) -> Result<(), SourceError>;
    /// The newest decisions of a project, newest first.
    async fn trust_decisions(
        &self,
        project: &str,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, SourceError>;
}

/// A finding as the vulnerability gate sees it.
#[derive(Debug, Clone)]
pub struct GateFinding {
    pub id: String,
    pub aliases: Vec<String>,
    pub package: String,
    pub severity: Option<Severity>,
}

/// Scan results for the vulnerability gate (implemented over the scanner's store).
#[async_trait]
pub trait ScanFindings: Send + Sync {
    /// The findings of a scanned manifest; `None` if it has not been scanned.
    async fn findings(
        &self,
        repo: &RepoName,
        digest: &str,
    ) -> Result<Option<Vec<GateFinding>>, SourceError>;
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No policy checks this repository, or the content is not gated.
    NotChecked,
    Allowed(String),
    /// Served, but the policy (in `warn` mode) was not met.
    Warned(String),
    Denied(String),
}

impl Outcome {
    pub fn is_denied(&self) -> bool {
        matches!(self, Outcome::Denied(_))
    }
    fn label(&self) -> &'static str {
        match self {
            Outcome::NotChecked => "not-checked",
            Outcome::Allowed(_) => "allowed",
            Outcome::Warned(_) => "warned",
            Outcome::Denied(_) => "denied",
        }
    }
    fn reason(&self) -> &str {
        match self {
            Outcome::NotChecked => "",
            Outcome::Allowed(r) | Outcome::Warned(r) | Outcome::Denied(r) => r,
        }
    }
}

/// Who asks and with which rights.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub subject: &'a str,
    pub may_push: bool,
}

/// Cache lifetimes. Decisions are also dropped at once on this replica when a manifest of
/// the project is pushed or deleted here; the lifetimes bound how long another replica's
/// change (a new signature, a removed one, a new policy) takes to be seen.
#[derive(Debug, Clone, Copy)]
pub struct EnforcerConfig {
    pub policy_ttl: Duration,
    pub allow_ttl: Duration,
    pub deny_ttl: Duration,
}

impl Default for EnforcerConfig {
    fn default() -> Self {
        EnforcerConfig {
            policy_ttl: Duration::from_secs(5),
            allow_ttl: Duration::from_secs(30),
            deny_ttl: Duration::from_secs(5),
        }
    }
}

/// A decision with what the audit log needs, shared by the cache and the audit counters so
/// that a cached answer costs no allocation.
struct Judged {
    project: String,
    repository: String,
    digest: String,
    outcome: Arc<Outcome>,
}

#[derive(Clone)]
struct Cached {
    version: i64,
    generation: u64,
    at: Instant,
    judged: Arc<Judged>,
}

/// Repository → manifest or blob digest → decision; looked up with borrowed names.
type DecisionMap = RwLock<HashMap<String, HashMap<String, Cached>>>;

/// An audit counter: one decision (by identity) for one caller.
struct AuditKey {
    judged: Arc<Judged>,
    subject: String,
}

impl PartialEq for AuditKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.judged, &other.judged) && self.subject == other.subject
    }
}

impl Eq for AuditKey {}

impl std::hash::Hash for AuditKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.judged) as usize).hash(state);
        self.subject.hash(state);
    }
}

/// Audit counters are sharded so concurrent pulls rarely wait for one another.
const AUDIT_SHARDS: usize = 16;
type AuditShard = Mutex<HashMap<AuditKey, (i64, i64, i64)>>;

type PolicyEntry = (Instant, Option<Arc<CompiledPolicy>>);

/// What a manifest is, for the policy.
enum Kind {
    /// Has filesystem layers: gated.
    Image,
    /// An index: its children's digests, and those of them the vulnerability gate judges
    /// (platform images; not attestation manifests, which are never scanned).
    Index(Vec<String>, Vec<String>),
    /// No filesystem layers (signature, attestation, SBOM, other artifact): not gated.
    Artifact,
}

#[derive(Deserialize)]
struct Shape {
    #[serde(default)]
    layers: Option<Vec<Desc>>,
    #[serde(default)]
    manifests: Option<Vec<Desc>>,
}

#[derive(Deserialize)]
struct Desc {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    platform: Option<DescPlatform>,
}

#[derive(Deserialize)]
struct DescPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

impl Desc {
    /// BuildKit's attestation manifests sit in the index as platform `unknown/unknown`.
    fn is_attestation(&self) -> bool {
        self.platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
    }
}

fn is_filesystem_layer(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
}

fn classify(bytes: &[u8]) -> Kind {
    let Ok(shape) = serde_json::from_slice::<Shape>(bytes) else {
        // The registry validated it on push; anything unreadable is gated, not waved through.
        return Kind::Image;
    };
    if let Some(children) = shape.manifests {
        let gated = children
            .iter()
            .filter(|d| !d.is_attestation())
            .map(|d| d.digest.clone())
            .collect();
        return Kind::Index(children.into_iter().map(|d| d.digest).collect(), gated);
    }
    match shape.layers {
        Some(layers) if layers.iter().any(|l| is_filesystem_layer(&l.media_type)) => Kind::Image,
        _ => Kind::Artifact,
    }
}

/// The pull enforcer. One per server process; cheap to share behind an `Arc`.
pub struct Enforcer {
    store: Arc<dyn PolicyStore>,
    source: Arc<dyn ContentSource>,
    scans: RwLock<Option<Arc<dyn ScanFindings>>>,
    config: EnforcerConfig,
    now: Box<dyn Fn() -> i64 + Send + Sync>,
    policies: RwLock<HashMap<String, PolicyEntry>>,
    decisions: DecisionMap,
    blob_decisions: DecisionMap,
    cached_entries: std::sync::atomic::AtomicUsize,
    generation: AtomicU64,
    audit: [AuditShard; AUDIT_SHARDS],
}

impl Enforcer {
    pub fn new(
        store: Arc<dyn PolicyStore>,
        source: Arc<dyn ContentSource>,
        config: EnforcerConfig,
    ) -> Self {
        Enforcer {
            store,
            source,
            scans: RwLock::new(None),
            config,
            now: Box::new(unix_now),
            policies: RwLock::new(HashMap::new()),
            decisions: RwLock::new(HashMap::new()),
            blob_decisions: RwLock::new(HashMap::new()),
            cached_entries: std::sync::atomic::AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            audit: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    /// Replaces the clock (allowlist expiry, audit times); for tests.
    pub fn with_clock(mut self, now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.now = Box::new(now);
        self
    }

    /// Connects the vulnerability gate to scan results.
    pub fn set_scan_findings(&self, scans: Arc<dyn ScanFindings>) {
        if let Ok(mut s) = self.scans.write() {
            *s = Some(scans);
        }
    }

    pub fn store(&self) -> &Arc<dyn PolicyStore> {
        &self.store
    }

    /// Drops cached decisions after content changed on this replica (a push or delete).
    pub fn content_changed(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops the cached policy of `project` (after it was changed here).
    pub fn policy_changed(&self, project: &str) {
        if let Ok(mut p) = self.policies.write() {
            p.remove(project);
        }
        self.content_changed();
    }

    /// The compiled policy of `project`, cached for `policy_ttl`. A stored document that no
    /// longer compiles (e.g. written by a newer version) fails closed.
    pub async fn policy(&self, project: &str) -> Result<Option<Arc<CompiledPolicy>>, SourceError> {
        if let Ok(p) = self.policies.read()
            && let Some((at, policy)) = p.get(project)
            && at.elapsed() < self.config.policy_ttl
        {
            return Ok(policy.clone());
        }
        let stored = self.store.trust_policy(project).await?;
        let compiled = match stored {
            None => None,
            Some(s) => {
                let policy: TrustPolicy = serde_json::from_str(&s.document).map_err(|e| {
                    SourceError(format!(
                        "stored trust policy of {project} is unreadable: {e}"
                    ))
                })?;
                let c = policy.compile(project, s.version).map_err(|e| {
                    SourceError(format!("stored trust policy of {project} is invalid: {e}"))
                })?;
                Some(Arc::new(c))
            }
        };
        if let Ok(mut p) = self.policies.write() {
            p.insert(project.to_owned(), (Instant::now(), compiled.clone()));
        }
        Ok(compiled)
    }

    /// Whether `manifest` (just resolved in `repo`) may be served to `who`.
    pub async fn check_manifest(
        &self,
        repo: &RepoName,
        manifest: &StoredManifest,
        who: Requester<'_>,
    ) -> Result<Arc<Outcome>, SourceError> {
        let Some(policy) = self.policy(repo.project()).await? else {
            return Ok(not_checked());
        };
        if !policy.checks(repo) {
            return Ok(not_checked());
        }
        if who.may_push && !policy.policy.enforce_for_pushers {
            return Ok(not_checked());
        }
        let judged = self.judge_cached(&policy, repo, manifest).await?;
        if *judged.outcome != Outcome::NotChecked {
            self.record(&judged, who.subject);
        }
        Ok(judged.outcome.clone())
    }

    /// The decision for a pull-only client, without recording it (for listings).
    pub async fn evaluate(
        &self,
        repo: &RepoName,
        manifest: &StoredManifest,
    ) -> Result<Arc<Outcome>, SourceError> {
        match self.policy(repo.project()).await? {
            Some(policy) if policy.checks(repo) => Ok(self
                .judge_cached(&policy, repo, manifest)
                .await?
                .outcome
                .clone()),
            _ => Ok(not_checked()),
        }
    }

    /// Whether the blob `digest` of `repo` may be served to `who`: it must belong to at least
    /// one manifest of the repository that the policy admits.
    pub async fn check_blob(
        &self,
        repo: &RepoName,
        digest: &str,
        who: Requester<'_>,
    ) -> Result<Arc<Outcome>, SourceError> {
        let Some(policy) = self.policy(repo.project()).await? else {
            return Ok(not_checked());
        };
        if !policy.checks(repo) || (who.may_push && !policy.policy.enforce_for_pushers) {
            return Ok(not_checked());
        }
        let judged = match self.cached(&self.blob_decisions, repo.as_str(), digest, &policy) {
            Some(j) => j,
            None => {
                let outcome = self.judge_blob(&policy, repo, digest).await?;
                let judged = Arc::new(Judged {
                    project: policy.project.clone(),
                    repository: repo.as_str().to_owned(),
                    digest: digest.to_owned(),
                    outcome: Arc::new(outcome),
                });
                self.remember(&self.blob_decisions, &policy, judged.clone());
                judged
            }
        };
        // Blob decisions follow from manifest decisions already recorded; only refusals are
        // worth a row of their own.
        if judged.outcome.is_denied() {
            self.record(&judged, who.subject);
        }
        Ok(judged.outcome.clone())
    }

    async fn judge_blob(
        &self,
        policy: &CompiledPolicy,
        repo: &RepoName,
        digest: &str,
    ) -> Result<Outcome, SourceError> {
        let users = self
            .source
            .manifests_with_blob(repo, digest, MAX_PARENTS)
            .await?;
        let mut refusal = None;
        for m in users {
            let Some(manifest) = self.source.manifest(repo, &m).await? else {
                continue;
            };
            let judged = self.judge_cached(policy, repo, &manifest).await?;
            match &*judged.outcome {
                Outcome::Denied(r) => refusal = refusal.or(Some(r.clone())),
                o => return Ok(o.clone()),
            }
        }
        Ok(Outcome::Denied(match refusal {
            Some(r) => {
                format!("blob {digest} belongs only to images the trust policy refuses: {r}")
            }
            None => {
                format!("blob {digest} in {repo} is not part of any image the trust policy admits")
            }
        }))
    }

    fn cached(
        &self,
        map: &DecisionMap,
        repo: &str,
        key: &str,
        policy: &CompiledPolicy,
    ) -> Option<Arc<Judged>> {
        let generation = self.generation.load(Ordering::Relaxed);
        let map = map.read().ok()?;
        let c = map.get(repo)?.get(key)?;
        let ttl = if c.judged.outcome.is_denied() {
            self.config.deny_ttl
        } else {
            self.config.allow_ttl
        };
        (c.version == policy.version && c.generation == generation && c.at.elapsed() < ttl)
            .then(|| c.judged.clone())
    }

    fn remember(&self, map: &DecisionMap, policy: &CompiledPolicy, judged: Arc<Judged>) {
        let generation = self.generation.load(Ordering::Relaxed);
        let Ok(mut map) = map.write() else {
            return;
        };
        if self.cached_entries.fetch_add(1, Ordering::Relaxed) >= MAX_CACHE_ENTRIES {
            map.clear();
            self.cached_entries.store(0, Ordering::Relaxed);
        }
        map.entry(judged.repository.clone()).or_default().insert(
            judged.digest.clone(),
            Cached {
                version: policy.version,
                generation,
                at: Instant::now(),
                judged,
            },
        );
    }

    async fn judge_cached(
        &self,
        policy: &CompiledPolicy,
        repo: &RepoName,
        manifest: &StoredManifest,
    ) -> Result<Arc<Judged>, SourceError> {
        if let Some(j) = self.cached(&self.decisions, repo.as_str(), &manifest.digest, policy) {
            return Ok(j);
        }
        let outcome = self.judge(policy, repo, manifest).await?;
        let judged = Arc::new(Judged {
            project: policy.project.clone(),
            repository: repo.as_str().to_owned(),
            digest: manifest.digest.clone(),
            outcome: Arc::new(outcome),
        });
        self.remember(&self.decisions, policy, judged.clone());
        Ok(judged)
    }

    async fn judge(
        &self,
        policy: &CompiledPolicy,
        repo: &RepoName,
        manifest: &StoredManifest,
    ) -> Result<Outcome, SourceError> {
        let kind = classify(&manifest.bytes);
        if matches!(kind, Kind::Artifact) {
            return Ok(Outcome::NotChecked);
        }
        let digest = manifest.digest.as_str();
        let mut warnings = Vec::new();
        let mut allowed = Vec::new();
        if policy.policy.require_signature != Requirement::Off {
            match self.signature_check(policy, repo, manifest, &kind).await? {
                Ok(who) => allowed.push(who),
                Err(why) => {
                    if policy.policy.require_signature == Requirement::Enforce {
                        return Ok(Outcome::Denied(why));
                    }
                    warnings.push(why);
                }
            }
        }
        if policy.policy.vulnerabilities.is_some() {
            let targets = match &kind {
                Kind::Index(_, gated) => gated.clone(),
                _ => vec![digest.to_owned()],
            };
            for target in targets {
                if let Some(why) = self.vulnerability_check(policy, repo, &target).await? {
                    return Ok(Outcome::Denied(why));
                }
            }
            allowed.push("vulnerability gate passed".to_owned());
        }
        Ok(if warnings.is_empty() {
            Outcome::Allowed(allowed.join("; "))
        } else {
            Outcome::Warned(warnings.join("; "))
        })
    }

    /// `Ok(Ok(by whom))` when the image passes the signature requirement.
    async fn signature_check(
        &self,
        policy: &CompiledPolicy,
        repo: &RepoName,
        manifest: &StoredManifest,
        kind: &Kind,
    ) -> Result<Result<String, String>, SourceError> {
        let digest = manifest.digest.as_str();
        let own = self.signed(policy, repo, manifest).await?;
        let own_err = match own {
            Ok(who) => return Ok(Ok(who)),
            Err(e) => e,
        };
        let what = if matches!(kind, Kind::Index(..)) {
            "index"
        } else {
            "image"
        };
        match (kind, policy.policy.multi_arch) {
            (Kind::Image, MultiArch::Index) => {
                for parent in self
                    .source
                    .parent_indexes(repo, digest, MAX_PARENTS)
                    .await?
                {
                    let Some(index) = self.source.manifest(repo, &parent).await? else {
                        continue;
                    };
                    if let Ok(who) = self.signed(policy, repo, &index).await? {
                        return Ok(Ok(format!("{who}, through signed index {parent}")));
                    }
                }
            }
            (Kind::Index(children, _), MultiArch::Platforms) if !children.is_empty() => {
                let mut all = true;
                for child in children {
                    let Some(m) = self.source.manifest(repo, child).await? else {
                        all = false;
                        break;
                    };
                    if matches!(classify(&m.bytes), Kind::Artifact) {
                        continue;
                    }
                    if self.signed(policy, repo, &m).await?.is_err() {
                        all = false;
                        break;
                    }
                }
                if all {
                    return Ok(Ok("every platform manifest is signed".to_owned()));
                }
            }
            _ => {}
        }
        Ok(Err(format!(
            "{what} {digest} in {repo} has no signature from a trusted key ({own_err})"
        )))
    }

    /// Whether `digest` carries a valid signature by a trusted key: `Ok(by whom)` or
    /// `Err(why not)`.
    async fn signed(
        &self,
        policy: &CompiledPolicy,
        repo: &RepoName,
        subject: &StoredManifest,
    ) -> Result<Result<String, String>, SourceError> {
        let digest = subject.digest.as_str();
        let mut manifests = Vec::new();
        if let Ok(tag) = cosign::signature_tag(digest)
            && let Some(m) = self.source.manifest(repo, &tag).await?
        {
            manifests.push(m);
        }
        let mut notation = Vec::new();
        for r in self.source.referrers(repo, digest).await? {
            if manifests.len() + notation.len() >= MAX_SIGNATURE_MANIFESTS {
                break;
            }
            match r.artifact_type.as_deref() {
                Some(cosign::SIGNATURE_ARTIFACT_TYPE) => {
                    if let Some(m) = self.source.manifest(repo, &r.digest).await? {
                        manifests.push(m);
                    }
                }
                Some(NOTATION_ARTIFACT_TYPE) => {
                    if let Some(m) = self.source.manifest(repo, &r.digest).await? {
                        notation.push(m);
                    }
                }
                _ => {}
            }
        }
        let mut candidates: Vec<SignedPayload> = Vec::new();
        let mut problems = Vec::new();
        for m in &manifests {
            match cosign::parse_signature_manifest(&m.bytes) {
                Ok(parsed) => {
                    for layer in parsed.layers {
                        let bytes = match self
                            .source
                            .blob(&layer.descriptor.digest, MAX_PAYLOAD_BYTES)
                            .await
                        {
                            Ok(b) => b,
                            Err(e) => {
                                problems.push(format!("payload unreadable: {e}"));
                                continue;
                            }
                        };
                        match layer.with_payload(bytes) {
                            Ok(c) => candidates.push(c),
                            Err(e) => problems.push(e.to_string()),
                        }
                    }
                }
                Err(e) => problems.push(format!("signature manifest {}: {e}", m.digest)),
            }
        }
        if !policy.keys.is_empty() && !candidates.is_empty() {
            match cosign::verify_any(&candidates, &policy.public_keys(), digest, repo.as_str()) {
                Ok(v) => {
                    let name = policy
                        .keys
                        .iter()
                        .find(|(_, k)| k.key_id().ok().as_deref() == Some(v.key_id.as_str()))
                        .map(|(n, _)| n.as_str())
                        .unwrap_or("trusted key");
                    return Ok(Ok(format!("signed with cosign key {name:?}")));
                }
                Err(cosign::VerifyError::BadSignature | cosign::VerifyError::UntrustedKey(_)) => {
                    problems.push(
                        "signed, but not by a key the policy trusts (or the signature was tampered with)"
                            .to_owned(),
                    )
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        if !notation.is_empty() {
            match self.notation_signed(policy, subject, &notation).await? {
                Ok(who) => return Ok(Ok(who)),
                Err(e) => problems.push(e),
            }
        }
        Ok(Err(if problems.is_empty() {
            "no signatures found".to_owned()
        } else {
            problems.join("; ")
        }))
    }

    async fn notation_signed(
        &self,
        policy: &CompiledPolicy,
        subject: &StoredManifest,
        signatures: &[StoredManifest],
    ) -> Result<Result<String, String>, SourceError> {
        let Some(store) = &policy.notation_store else {
            return Ok(Err(format!(
                "{} Notation signature(s), but the policy trusts no certificate authority",
                signatures.len()
            )));
        };
        let expected = notation::Subject {
            media_type: &subject.media_type,
            digest: &subject.digest,
            size: subject.bytes.len() as u64,
        };
        let now =
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from((self.now)()).unwrap_or(0));
        let mut problems = Vec::new();
        for m in signatures {
            let parsed = match notation::parse_signature_manifest(&m.bytes) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(format!("Notation signature {}: {e}", m.digest));
                    continue;
                }
            };
            let envelope = match self
                .source
                .blob(&parsed.envelope.digest, notation::MAX_ENVELOPE_BYTES)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    problems.push(format!("Notation envelope unreadable: {e}"));
                    continue;
                }
            };
            if let Err(e) = parsed.check_envelope(&envelope) {
                problems.push(e.to_string());
                continue;
            }
            match notation::verify(
                &envelope,
                &parsed.envelope.media_type,
                &expected,
                store,
                now,
            ) {
                Ok(v) => {
                    let name = policy
                        .certificates
                        .iter()
                        .find(|(_, der)| {
                            cosign::sha256_digest(der).trim_start_matches("sha256:")
                                == v.trust_anchor_thumbprint
                        })
                        .map_or("trusted CA", |(n, _)| n.as_str());
                    return Ok(Ok(format!(
                        "Notation signature by {:?} under certificate {name:?}",
                        v.signer_subject
                    )));
                }
                Err(e) => problems.push(format!("Notation: {e}")),
            }
        }
        Ok(Err(problems.join("; ")))
    }

    /// `Some(why)` when the vulnerability gate refuses `digest`.
    async fn vulnerability_check(
        &self,
        policy: &CompiledPolicy,
        repo: &RepoName,
        digest: &str,
    ) -> Result<Option<String>, SourceError> {
        let Some(gate) = &policy.policy.vulnerabilities else {
            return Ok(None);
        };
        let scans = self.scans.read().ok().and_then(|s| s.clone());
        let findings = match scans {
            Some(s) => s.findings(repo, digest).await?,
            None => None,
        };
        let Some(findings) = findings else {
            return Ok(match gate.unscanned {
                Unscanned::Allow => None,
                Unscanned::Refuse => Some(format!(
                    "image {digest} in {repo} has not been scanned yet and the policy refuses unscanned images"
                )),
            });
        };
        let now = (self.now)();
        let excused = |f: &GateFinding| {
            gate.allowlist.iter().any(|a| {
                a.expires.is_none_or(|e| e > now) && (a.id == f.id || f.aliases.contains(&a.id))
            })
        };
        let mut worst: Vec<&GateFinding> = findings
            .iter()
            .filter(|f| f.severity.is_some_and(|s| s >= gate.refuse_severity) && !excused(f))
            .collect();
        if worst.is_empty() {
            return Ok(None);
        }
        worst.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        let named: Vec<String> = worst
            .iter()
            .take(3)
            .map(|f| {
                format!(
                    "{} ({}, {})",
                    f.id,
                    f.severity.map(|s| s.to_string()).unwrap_or_default(),
                    f.package
                )
            })
            .collect();
        let more = worst.len().saturating_sub(named.len());
        Ok(Some(format!(
            "image {digest} in {repo} has {} finding(s) of severity {} or higher: {}{}",
            worst.len(),
            gate.refuse_severity,
            named.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )))
    }

    fn record(&self, judged: &Arc<Judged>, subject: &str) {
        use std::hash::{Hash as _, Hasher as _};
        let now = (self.now)();
        let key = AuditKey {
            judged: judged.clone(),
            subject: subject.to_owned(),
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let shard = (h.finish() as usize) % AUDIT_SHARDS;
        if let Some(Ok(mut audit)) = self.audit.get(shard).map(Mutex::lock) {
            let e = audit.entry(key).or_insert((0, now, now));
            e.0 += 1;
            e.2 = now;
        }
    }

    /// Writes the folded decisions to the store; called periodically and at shutdown.
    pub async fn flush_audit(&self) -> Result<usize, SourceError> {
        let mut pending: Vec<DecisionRecord> = Vec::new();
        for shard in &self.audit {
            let Ok(mut a) = shard.lock() else {
                continue;
            };
            pending.extend(
                a.drain()
                    .map(|(k, (count, first_at, last_at))| DecisionRecord {
                        project: k.judged.project.clone(),
                        repository: k.judged.repository.clone(),
                        digest: k.judged.digest.clone(),
                        subject: k.subject,
                        decision: k.judged.outcome.label().to_owned(),
                        reason: k.judged.outcome.reason().to_owned(),
                        count,
                        first_at,
                        last_at,
                    }),
            );
        }
        if pending.is_empty() {
            return Ok(0);
        }
        self.store.record_trust_decisions(&pending).await?;
        Ok(pending.len())
    }

    /// Flushes the audit log every `interval` until the handle is aborted.
    pub fn spawn_audit_flusher(
        self: &Arc<Self>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.flush_audit().await {
                    tracing::error!(error = %e, "writing trust decisions failed");
                }
            }
        })
    }
}

fn not_checked() -> Arc<Outcome> {
    static NOT_CHECKED: std::sync::LazyLock<Arc<Outcome>> =
        std::sync::LazyLock::new(|| Arc::new(Outcome::NotChecked));
    NOT_CHECKED.clone()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
