//! Pull enforcement at the edge: connects [`bulwark_trust::enforce::Enforcer`] to the registry
//! and turns its refusals into `403 DENIED` OCI errors.

use std::sync::Arc;

use async_trait::async_trait;
use bulwark_auth::Action;
use bulwark_auth::service::Caller;
use bulwark_core::Registry;
use bulwark_oci::{Digest, ErrorCode, Reference, RepoName};
use bulwark_scanner::jobs::ScanStore;
use bulwark_trust::enforce::{
    ContentSource, Enforcer, GateFinding, Outcome, Referrer, Requester, ScanFindings, SourceError,
    StoredManifest,
};
use bulwark_trust::policy::Severity;

use crate::{ApiError, AppState};

/// The registry as the enforcer reads it.
pub struct RegistrySource(pub Arc<Registry>);

fn digest(s: &str) -> Result<Digest, SourceError> {
    Digest::parse(s).map_err(SourceError::new)
}

#[async_trait]
impl ContentSource for RegistrySource {
    async fn manifest(
        &self,
        repo: &RepoName,
        reference: &str,
    ) -> Result<Option<StoredManifest>, SourceError> {
        let Ok(reference) = Reference::parse(reference) else {
            return Ok(None);
        };
        match self.0.get_manifest(repo, &reference).await {
            Ok(m) => Ok(Some(StoredManifest {
                digest: m.digest.to_string(),
                media_type: m.media_type,
                bytes: m.content,
            })),
            Err(bulwark_core::Error::ManifestUnknown | bulwark_core::Error::NameUnknown) => {
                Ok(None)
            }
            Err(e) => Err(SourceError::new(e)),
        }
    }

    async fn referrers(&self, repo: &RepoName, d: &str) -> Result<Vec<Referrer>, SourceError> {
        let refs = match self.0.referrers(repo, &digest(d)?, None).await {
            Ok(r) => r,
            Err(bulwark_core::Error::NameUnknown) => return Ok(Vec::new()),
            Err(e) => return Err(SourceError::new(e)),
        };
        Ok(refs
            .into_iter()
            .map(|r| Referrer {
                digest: r.digest.to_string(),
                artifact_type: r.artifact_type,
            })
            .collect())
    }

    async fn blob(&self, d: &str, max: usize) -> Result<Vec<u8>, SourceError> {
        use tokio::io::AsyncReadExt as _;
        let d = digest(d)?;
        let size = self
            .0
            .blob_store()
            .blob_size(&d)
            .await
            .map_err(SourceError::new)?;
        match size {
            None => return Err(SourceError(format!("blob {d} is missing"))),
            Some(n) if n > max as u64 => {
                return Err(SourceError(format!("blob {d} is larger than {max} bytes")));
            }
            Some(_) => {}
        }
        let reader = self.0.read_blob(&d, None).await.map_err(SourceError::new)?;
        let mut out = Vec::new();
        reader
            .take(max as u64)
            .read_to_end(&mut out)
            .await
            .map_err(SourceError::new)?;
        Ok(out)
    }

    async fn manifests_with_blob(
        &self,
        repo: &RepoName,
        d: &str,
        limit: u32,
    ) -> Result<Vec<String>, SourceError> {
        let found = self
            .0
            .manifests_using_blob(repo, &digest(d)?, limit)
            .await
            .map_err(SourceError::new)?;
        Ok(found.iter().map(ToString::to_string).collect())
    }

    async fn parent_indexes(
        &self,
        repo: &RepoName,
        d: &str,
        limit: u32,
    ) -> Result<Vec<String>, SourceError> {
        let found = self
            .0
            .parent_manifests(repo, &digest(d)?, limit)
            .await
            .map_err(SourceError::new)?;
        Ok(found.iter().map(ToString::to_string).collect())
    }
}

/// Whether a policy checks pulls of `repo`, and then whether `caller` may push there (known
/// from the access check, or looked up).
async fn requester(
    state: &AppState,
    caller: &Caller,
    may_push: Option<bool>,
    repo: &RepoName,
) -> Result<Option<bool>, ApiError> {
    let policy = state.trust.policy(repo.project()).await.map_err(internal)?;
    if !policy.is_some_and(|p| p.checks(repo)) {
        return Ok(None);
    }
    let may_push = match may_push {
        Some(p) => p,
        None => state
            .auth
            .allowed(caller, repo, &[Action::Push])
            .await?
            .contains(&Action::Push),
    };
    Ok(Some(may_push))
}

fn internal(e: SourceError) -> ApiError {
    tracing::error!(error = %e, "trust policy evaluation failed");
    ApiError::new(500, ErrorCode::Unknown, "internal server error")
}

fn answer(outcome: &Outcome, repo: &RepoName, caller: &Caller) -> Result<(), ApiError> {
    match outcome {
        Outcome::Denied(reason) => {
            tracing::info!(repository = %repo, caller = %caller.subject(), %reason, "pull refused by trust policy");
            Err(ApiError::new(403, ErrorCode::Denied, reason.clone()))
        }
        Outcome::Warned(reason) => {
            tracing::warn!(repository = %repo, caller = %caller.subject(), %reason, "trust policy not met (warn mode)");
            Ok(())
        }
        Outcome::Allowed(_) | Outcome::NotChecked => Ok(()),
    }
}

/// Refuses a manifest the project's trust policy does not admit for this caller.
pub async fn check_manifest(
    state: &AppState,
    caller: &Caller,
    may_push: bool,
    repo: &RepoName,
    manifest: &bulwark_core::store::StoredManifest,
) -> Result<(), ApiError> {
    let Some(may_push) = requester(state, caller, Some(may_push), repo).await? else {
        return Ok(());
    };
    let m = StoredManifest {
        digest: manifest.digest.to_string(),
        media_type: manifest.media_type.clone(),
        bytes: manifest.content.clone(),
    };
    let who = Requester {
        subject: caller.subject(),
        may_push,
    };
    let outcome = state
        .trust
        .check_manifest(repo, &m, who)
        .await
        .map_err(internal)?;
    answer(&outcome, repo, caller)
}

/// Refuses a blob that belongs to no image the project's trust policy admits for this caller
/// (`may_push`: `None` to look it up).
pub async fn check_blob(
    state: &AppState,
    caller: &Caller,
    may_push: Option<bool>,
    repo: &RepoName,
    digest: &Digest,
) -> Result<(), ApiError> {
    let Some(may_push) = requester(state, caller, may_push, repo).await? else {
        return Ok(());
    };
    let who = Requester {
        subject: caller.subject(),
        may_push,
    };
    let outcome = state
        .trust
        .check_blob(repo, &digest.to_string(), who)
        .await
        .map_err(internal)?;
    answer(&outcome, repo, caller)
}

/// Scan results as the vulnerability gate reads them: the findings of the last (re)match.
pub struct StoredFindings(pub Arc<dyn ScanStore>);

#[async_trait]
impl ScanFindings for StoredFindings {
    async fn findings(
        &self,
        _repo: &RepoName,
        digest: &str,
    ) -> Result<Option<Vec<GateFinding>>, SourceError> {
        let Some(scan) = self.0.result(digest).await.map_err(SourceError::new)? else {
            return Ok(None);
        };
        let findings = scan.report["findings"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|f| GateFinding {
                        id: f["id"].as_str().unwrap_or_default().to_owned(),
                        aliases: f["aliases"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        package: f["package"].as_str().unwrap_or_default().to_owned(),
                        severity: f["severity"].as_str().and_then(Severity::parse),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(findings))
    }
}

/// The enforcer for a registry whose policies live in `store`.
pub fn enforcer(
    registry: Arc<Registry>,
    store: Arc<dyn bulwark_trust::enforce::PolicyStore>,
) -> Arc<Enforcer> {
    Arc::new(Enforcer::new(
        store,
        Arc::new(RegistrySource(registry)),
        Default::default(),
    ))
}
