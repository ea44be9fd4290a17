//! `/api/v1/projects/{project}/trust-policy` and `/trust-decisions`: a project's trust
//! policy (read by anyone who can see the project, changed by its admins) and the log of pull
//! decisions taken under it; `/api/v1/repositories/signatures`: an image's signatures and
//! attestations and what the policy makes of them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_auth::Action;
use bulwark_oci::{ErrorCode, Reference, RepoName};
use bulwark_trust::enforce::{NOTATION_ARTIFACT_TYPE, Outcome, StoredManifest};
use bulwark_trust::policy::TrustPolicy;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::ErrorsDto;
use super::{ApiResult, Authenticated, JsonBody, PathParams, QueryParams, bad_request};
use crate::{ApiError, AppState};

/// A stored trust policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustPolicyDto {
    pub project: String,
    /// Increases with every change.
    pub version: i64,
    /// Unix seconds.
    pub updated_at: i64,
    pub updated_by: String,
    /// The policy document (see docs/TRUST.md for every field).
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
}

/// One folded audit row: identical decisions within a few seconds share a row.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustDecisionDto {
    pub repository: String,
    pub digest: String,
    pub subject: String,
    /// `allowed`, `warned` or `denied`.
    pub decision: String,
    pub reason: String,
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionsQuery {
    /// At most this many rows, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignaturesQuery {
    /// Full repository name.
    pub repository: String,
    /// The image: a tag or a digest.
    pub reference: String,
}

/// A signature, attestation or other artifact attached to an image.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttachedDto {
    pub digest: String,
    /// `cosign-signature`, `notation-signature`, `attestation`, `sbom` or `artifact`.
    pub kind: String,
    /// `referrer` (OCI 1.1 subject) or `tag` (cosign's `sha256-<hex>.sig` tag scheme).
    pub via: String,
    pub artifact_type: Option<String>,
}

/// An image's signatures and the policy's verdict on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignaturesDto {
    pub repository: String,
    pub digest: String,
    pub attached: Vec<AttachedDto>,
    /// `not-checked`, `allowed`, `warned` or `denied`: what a pull-only client would get.
    pub decision: String,
    pub reason: String,
}

async fn project_visible(
    state: &AppState,
    caller: &bulwark_auth::service::Caller,
    project: &str,
) -> ApiResult<()> {
    state.auth.get_project(caller, project).await?;
    Ok(())
}

/// The trust policy of a project (anyone who can see the project).
#[utoipa::path(
    get,
    operation_id = "getTrustPolicy",
    path = "/api/v1/projects/{project}/trust-policy",
    tag = "trust",
    params(("project" = String, Path, description = "Project name")),
    responses(
        (status = 200, body = TrustPolicyDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "A private project the caller is not in", body = ErrorsDto),
        (status = 404, description = "No such project, or no policy", body = ErrorsDto),
    )
)]
pub(super) async fn get_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
) -> ApiResult<Json<TrustPolicyDto>> {
    project_visible(&state, &caller, &project).await?;
    let stored = state
        .trust
        .store()
        .trust_policy(&project)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::new(
                404,
                ErrorCode::NameUnknown,
                format!("project {project} has no trust policy"),
            )
        })?;
    let policy = serde_json::from_str(&stored.document).map_err(|e| internal(e.to_string()))?;
    Ok(Json(TrustPolicyDto {
        project,
        version: stored.version,
        updated_at: stored.updated_at,
        updated_by: stored.updated_by,
        policy,
    }))
}

/// Set the trust policy of a project (project admins). The document is validated: keys and
/// certificates must parse, repository patterns must lie inside the project.
#[utoipa::path(
    put,
    operation_id = "putTrustPolicy",
    path = "/api/v1/projects/{project}/trust-policy",
    tag = "trust",
    params(("project" = String, Path, description = "Project name")),
    request_body(content = Object, description = "The policy document"),
    responses(
        (status = 200, body = TrustPolicyDto),
        (status = 400, description = "Invalid policy", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn put_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> ApiResult<Json<TrustPolicyDto>> {
    state
        .auth
        .manage_project_policies(&caller, &project)
        .await?;
    let bytes = serde_json::to_vec(&body).map_err(|e| bad_request(e.to_string()))?;
    let policy = TrustPolicy::from_json(&project, &bytes)
        .map_err(|e| bad_request(format!("invalid trust policy: {e}")))?;
    let document = policy.to_json().map_err(|e| internal(e.to_string()))?;
    let now = state.auth.now();
    let version = state
        .trust
        .store()
        .put_trust_policy(&project, &document, caller.subject(), now)
        .await
        .map_err(internal)?;
    state.trust.policy_changed(&project);
    tracing::info!(%project, version, by = %caller.subject(), "trust policy changed");
    Ok(Json(TrustPolicyDto {
        project,
        version,
        updated_at: now,
        updated_by: caller.subject().to_owned(),
        policy: serde_json::to_value(&policy).map_err(|e| internal(e.to_string()))?,
    }))
}

/// Remove the trust policy of a project (project admins): pulls are no longer checked.
#[utoipa::path(
    delete,
    operation_id = "deleteTrustPolicy",
    path = "/api/v1/projects/{project}/trust-policy",
    tag = "trust",
    params(("project" = String, Path, description = "Project name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project, or no policy", body = ErrorsDto),
    )
)]
pub(super) async fn delete_policy(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
) -> ApiResult<StatusCode> {
    state
        .auth
        .manage_project_policies(&caller, &project)
        .await?;
    let removed = state
        .trust
        .store()
        .delete_trust_policy(&project)
        .await
        .map_err(internal)?;
    state.trust.policy_changed(&project);
    if !removed {
        return Err(ApiError::new(
            404,
            ErrorCode::NameUnknown,
            format!("project {project} has no trust policy"),
        ));
    }
    tracing::info!(%project, by = %caller.subject(), "trust policy removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Pull decisions taken under the project's trust policy, newest first (project admins).
#[utoipa::path(
    get,
    operation_id = "listTrustDecisions",
    path = "/api/v1/projects/{project}/trust-decisions",
    tag = "trust",
    params(("project" = String, Path, description = "Project name"), DecisionsQuery),
    responses(
        (status = 200, body = [TrustDecisionDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn decisions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
    QueryParams(query): QueryParams<DecisionsQuery>,
) -> ApiResult<Json<Vec<TrustDecisionDto>>> {
    state
        .auth
        .manage_project_policies(&caller, &project)
        .await?;
    // Decisions folded in memory are written first, so the answer includes the latest pulls.
    state.trust.flush_audit().await.map_err(internal)?;
    let rows = state
        .trust
        .store()
        .trust_decisions(&project, query.limit.unwrap_or(100).clamp(1, 1000))
        .await
        .map_err(internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|r| TrustDecisionDto {
                repository: r.repository,
                digest: r.digest,
                subject: r.subject,
                decision: r.decision,
                reason: r.reason,
                count: r.count,
                first_at: r.first_at,
                last_at: r.last_at,
            })
            .collect(),
    ))
}

fn kind_of(artifact_type: Option<&str>) -> &'static str {
    match artifact_type {
        Some(bulwark_trust::cosign::SIGNATURE_ARTIFACT_TYPE) => "cosign-signature",
        Some(NOTATION_ARTIFACT_TYPE) => "notation-signature",
        Some(t) if t.contains("dsse") || t.contains("in-toto") || t.contains("attestation") => {
            "attestation"
        }
        Some(t) if t.contains("spdx") || t.contains("cyclonedx") || t.contains("sbom") => "sbom",
        _ => "artifact",
    }
}

/// An image's signatures and attestations (referrers and cosign tag-scheme signatures), and
/// the decision the project's trust policy takes for a pull-only client (callers who may pull).
#[utoipa::path(
    get,
    operation_id = "listSignatures",
    path = "/api/v1/repositories/signatures",
    tag = "trust",
    params(SignaturesQuery),
    responses(
        (status = 200, body = SignaturesDto),
        (status = 400, description = "Invalid repository or reference", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not allowed to pull", body = ErrorsDto),
        (status = 404, description = "No such image", body = ErrorsDto),
    )
)]
pub(super) async fn signatures(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<SignaturesQuery>,
) -> ApiResult<Json<SignaturesDto>> {
    let repo = RepoName::parse(&query.repository)
        .map_err(|e| ApiError::new(400, ErrorCode::NameInvalid, e.to_string()))?;
    let reference = Reference::parse(&query.reference)
        .map_err(|e| ApiError::new(400, ErrorCode::ManifestInvalid, e.to_string()))?;
    state
        .auth
        .authorize(&caller, &repo, &[Action::Pull])
        .await?;
    let m = state.registry.get_manifest(&repo, &reference).await?;
    let mut attached = Vec::new();
    if let Ok(tag) = bulwark_trust::cosign::signature_tag(&m.digest.to_string())
        && let Ok(tag) = Reference::parse(&tag)
        && let Ok(sig) = state.registry.get_manifest(&repo, &tag).await
    {
        attached.push(AttachedDto {
            digest: sig.digest.to_string(),
            kind: "cosign-signature".to_owned(),
            via: "tag".to_owned(),
            artifact_type: None,
        });
    }
    for r in state.registry.referrers(&repo, &m.digest, None).await? {
        attached.push(AttachedDto {
            digest: r.digest.to_string(),
            kind: kind_of(r.artifact_type.as_deref()).to_owned(),
            via: "referrer".to_owned(),
            artifact_type: r.artifact_type,
        });
    }
    let manifest = StoredManifest {
        digest: m.digest.to_string(),
        media_type: m.media_type.clone(),
        bytes: m.content.clone(),
    };
    let outcome = state
        .trust
        .evaluate(&repo, &manifest)
        .await
        .map_err(internal)?;
    let (decision, reason) = match &*outcome {
        Outcome::NotChecked => ("not-checked", String::new()),
        Outcome::Allowed(r) => ("allowed", r.clone()),
        Outcome::Warned(r) => ("warned", r.clone()),
        Outcome::Denied(r) => ("denied", r.clone()),
    };
    Ok(Json(SignaturesDto {
        repository: repo.to_string(),
        digest: m.digest.to_string(),
        attached,
        decision: decision.to_owned(),
        reason,
    }))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "trust policy store failed");
    ApiError::new(500, ErrorCode::Unknown, "internal server error")
}
