//! Per-project trust policies: the document a project admin stores (JSON), its validation,
//! and the compiled form the enforcer evaluates.
//!
//! A policy says whether pulls need a signature (`off`, `warn`, `enforce`), which of the
//! project's repositories it covers, which keys (cosign, PEM public keys) and certificate
//! authorities (Notation trust store, PEM) are trusted, how multi-arch indexes are judged, and
//! an optional vulnerability gate.

use std::fmt;

use bulwark_auth::policy::RepoPattern;
use bulwark_oci::RepoName;
use serde::{Deserialize, Serialize};

use crate::keys::PublicKey;

/// Upper bound on a stored policy document.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
const MAX_ENTRIES: usize = 64;

/// How a missing or invalid signature is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    /// Signatures are not checked.
    #[default]
    Off,
    /// Checked, recorded and logged, but pulls are served.
    Warn,
    /// Pulls of images without a valid trusted signature are refused.
    Enforce,
}

/// Which manifests of a multi-arch image must carry the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MultiArch {
    /// The index is signed; its platform manifests are trusted through it.
    #[default]
    Index,
    /// Every platform manifest is signed itself; an index passes when all its platform
    /// manifests do (or when it is signed itself).
    Platforms,
}

/// What happens to images that have not been scanned (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Unscanned {
    #[default]
    Allow,
    Refuse,
}

/// Severities in increasing order, as the scanner reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Parses the scanner's spelling (`Critical`, `HIGH`, `moderate`…); unknown → `None`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "low" | "negligible" => Some(Severity::Low),
            "medium" | "moderate" => Some(Severity::Medium),
            "high" | "important" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        })
    }
}

/// A trusted cosign public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    pub name: String,
    /// PEM `PUBLIC KEY` (ECDSA P-256 or Ed25519), as `cosign.pub`.
    pub public_key: String,
}

/// A trusted certificate authority for Notation signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedCertificate {
    pub name: String,
    /// One or more PEM `CERTIFICATE`s.
    pub pem: String,
}

/// A vulnerability that is accepted until a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedVulnerability {
    /// The advisory id or one of its aliases (`CVE-2024-1234`, `GHSA-…`).
    pub id: String,
    /// Unix seconds after which the exception no longer applies; `None`: no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Refuse pulls of images with findings at or above a severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VulnerabilityGate {
    /// Findings of this severity or worse refuse the pull.
    pub refuse_severity: Severity,
    #[serde(default)]
    pub allowlist: Vec<AllowedVulnerability>,
    #[serde(default)]
    pub unscanned: Unscanned,
}

/// The stored policy document of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    #[serde(default)]
    pub require_signature: Requirement,
    /// Repository globs (full names, within the project) the signature requirement and the
    /// vulnerability gate apply to; empty: every repository of the project.
    #[serde(default)]
    pub repositories: Vec<String>,
    #[serde(default)]
    pub keys: Vec<TrustedKey>,
    #[serde(default)]
    pub certificates: Vec<TrustedCertificate>,
    #[serde(default)]
    pub multi_arch: MultiArch,
    /// Also gate callers who may push to the repository. Off by default so that publishers
    /// can read back what they push, e.g. to sign it.
    #[serde(default)]
    pub enforce_for_pushers: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<VulnerabilityGate>,
}

/// Why a policy document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy is not valid JSON: {0}")]
    Json(String),
    #[error("policy is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Invalid(String),
}

/// A policy ready to evaluate: keys parsed, patterns compiled.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub project: String,
    /// Increases with every stored change; part of every cached decision's key.
    pub version: i64,
    pub policy: TrustPolicy,
    pub keys: Vec<(String, PublicKey)>,
    /// DER certificates of the Notation trust store, with the name they came under.
    pub certificates: Vec<(String, Vec<u8>)>,
    /// The same certificates as a Notation `ca` trust store; `None` without certificates.
    pub notation_store: Option<crate::notation::TrustStore>,
    patterns: Vec<RepoPattern>,
}

impl TrustPolicy {
    /// Parses and validates a policy document for `project`.
    pub fn from_json(project: &str, bytes: &[u8]) -> Result<TrustPolicy, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let policy: TrustPolicy =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Json(e.to_string()))?;
        policy.compile(project, 0)?;
        Ok(policy)
    }

    pub fn to_json(&self) -> Result<String, PolicyError> {
        serde_json::to_string(self).map_err(|e| PolicyError::Json(e.to_string()))
    }

    /// Validates the policy and prepares it for evaluation.
    pub fn compile(&self, project: &str, version: i64) -> Result<CompiledPolicy, PolicyError> {
        let invalid = |m: String| PolicyError::Invalid(m);
        if self.keys.len() > MAX_ENTRIES
            || self.certificates.len() > MAX_ENTRIES
            || self.repositories.len() > MAX_ENTRIES
        {
            return Err(invalid(format!(
                "at most {MAX_ENTRIES} keys, certificates and repository patterns each"
            )));
        }
        let mut patterns = Vec::new();
        for p in &self.repositories {
            let in_project = p == project || p.starts_with(&format!("{project}/"));
            if !in_project {
                return Err(invalid(format!(
                    "repository pattern {p:?} is outside project {project:?} (patterns are full repository names, e.g. \"{project}/*\")"
                )));
            }
            let compiled = RepoPattern::new(p).map_err(|e| invalid(e.to_string()))?;
            patterns.push(compiled);
        }
        let mut keys = Vec::new();
        for k in &self.keys {
            check_name("key", &k.name)?;
            let key = PublicKey::from_pem(&k.public_key)
                .map_err(|e| invalid(format!("key {:?}: {e}", k.name)))?;
            keys.push((k.name.clone(), key));
        }
        let mut certificates = Vec::new();
        for c in &self.certificates {
            check_name("certificate", &c.name)?;
            let ders = crate::notation::pem_certificates(c.pem.as_bytes())
                .map_err(|e| invalid(format!("certificate {:?}: {e}", c.name)))?;
            certificates.extend(ders.into_iter().map(|d| (c.name.clone(), d)));
        }
        let notation_store = if certificates.is_empty() {
            None
        } else {
            let ders = certificates.iter().map(|(_, d)| d.clone()).collect();
            Some(
                crate::notation::TrustStore::from_der_certs(
                    crate::notation::TrustStoreType::Ca,
                    project,
                    ders,
                )
                .map_err(|e| invalid(format!("certificates: {e}")))?,
            )
        };
        if self.require_signature != Requirement::Off && keys.is_empty() && certificates.is_empty()
        {
            return Err(invalid(
                "a policy that checks signatures needs at least one trusted key or certificate"
                    .to_owned(),
            ));
        }
        if let Some(gate) = &self.vulnerabilities {
            if gate.allowlist.len() > 1024 {
                return Err(invalid("at most 1024 allowlist entries".to_owned()));
            }
            for a in &gate.allowlist {
                if a.id.is_empty() || a.id.len() > 128 {
                    return Err(invalid(format!("allowlist id {:?}", a.id)));
                }
            }
        }
        Ok(CompiledPolicy {
            project: project.to_owned(),
            version,
            policy: self.clone(),
            keys,
            certificates,
            notation_store,
            patterns,
        })
    }
}

fn check_name(what: &str, name: &str) -> Result<(), PolicyError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(PolicyError::Invalid(format!("{what} name {name:?}")));
    }
    Ok(())
}

impl CompiledPolicy {
    /// Whether the policy covers `repo` at all.
    pub fn covers(&self, repo: &RepoName) -> bool {
        repo.project() == self.project
            && (self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(repo)))
    }

    /// Whether pulls of `repo` are checked (signatures or vulnerabilities).
    pub fn checks(&self, repo: &RepoName) -> bool {
        (self.policy.require_signature != Requirement::Off || self.policy.vulnerabilities.is_some())
            && self.covers(repo)
    }

    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.keys.iter().map(|(_, k)| k.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::keys::{KeyAlgorithm, PrivateKey};

    fn pem() -> String {
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)
            .unwrap()
            .public_key()
            .to_pem()
            .unwrap()
    }

    #[test]
    fn parses_and_covers() {
        let doc = serde_json::json!({
            "require_signature": "enforce",
            "repositories": ["team-a/app", "team-a/svc/*"],
            "keys": [{"name": "release", "public_key": pem()}],
        });
        let p = TrustPolicy::from_json("team-a", doc.to_string().as_bytes()).unwrap();
        let c = p.compile("team-a", 3).unwrap();
        assert!(c.covers(&RepoName::parse("team-a/app").unwrap()));
        assert!(c.covers(&RepoName::parse("team-a/svc/x").unwrap()));
        assert!(!c.covers(&RepoName::parse("team-a/svc/x/y").unwrap()));
        assert!(!c.covers(&RepoName::parse("team-a/other").unwrap()));
        assert!(!c.covers(&RepoName::parse("team-b/app").unwrap()));
        assert_eq!(c.version, 3);
        assert_eq!(c.keys.len(), 1);
    }

    #[test]
    fn empty_patterns_cover_the_whole_project() {
        let p = TrustPolicy {
            require_signature: Requirement::Warn,
            keys: vec![TrustedKey {
                name: "k".into(),
                public_key: pem(),
            }],
            ..Default::default()
        };
        let c = p.compile("p", 1).unwrap();
        assert!(c.checks(&RepoName::parse("p/a/b").unwrap()));
        assert!(!c.checks(&RepoName::parse("q/a").unwrap()));
    }

    #[test]
    fn refusals() {
        let bad = |doc: serde_json::Value| TrustPolicy::from_json("p", doc.to_string().as_bytes());
        assert!(matches!(
            bad(serde_json::json!({"require_signature": "enforce"})),
            Err(PolicyError::Invalid(m)) if m.contains("at least one trusted key")
        ));
        assert!(matches!(
            bad(serde_json::json!({"repositories": ["other/*"]})),
            Err(PolicyError::Invalid(m)) if m.contains("outside project")
        ));
        assert!(matches!(
            bad(serde_json::json!({"keys": [{"name": "k", "public_key": "nope"}]})),
            Err(PolicyError::Invalid(m)) if m.contains("key \"k\"")
        ));
        assert!(matches!(
            bad(serde_json::json!({"require_signature": "always"})),
            Err(PolicyError::Json(_))
        ));
        assert!(matches!(
            bad(serde_json::json!({"unknown": 1})),
            Err(PolicyError::Json(_))
        ));
        assert!(matches!(
            bad(serde_json::json!({"certificates": [{"name": "c", "pem": "x"}]})),
            Err(PolicyError::Invalid(m)) if m.contains("no PEM CERTIFICATE")
        ));
        let huge = vec![b' '; MAX_POLICY_BYTES + 1];
        assert_eq!(
            TrustPolicy::from_json("p", &huge),
            Err(PolicyError::TooLarge)
        );
    }

    #[test]
    fn severity_spellings() {
        assert_eq!(Severity::parse("CRITICAL"), Some(Severity::Critical));
        assert_eq!(Severity::parse("Important"), Some(Severity::High));
        assert_eq!(Severity::parse("moderate"), Some(Severity::Medium));
        assert_eq!(Severity::parse("unknown"), None);
        assert!(Severity::High > Severity::Medium);
    }
}
