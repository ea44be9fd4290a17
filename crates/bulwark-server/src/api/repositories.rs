//! `/api/v1/repositories`: repositories the caller may pull, their tags, and deletion of tags
//! and manifests. Every operation is checked like its `/v2` counterpart
//! ([`bulwark_auth::service::AuthService::authorize`]), so robots and scoped personal access
//! tokens may use these endpoints within their permissions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_auth::Action;
use bulwark_auth::service::Caller;
use bulwark_oci::{Digest, ErrorCode, Reference, RepoName, Tag};

use super::dto::{
    ErrorsDto, ManifestQuery, RepositoriesQuery, RepositoryDto, RepositoryQuery, TagDto, TagQuery,
};
use super::{ApiResult, Authenticated, QueryParams};
use crate::{ApiError, AppState};

/// Entries asked for per page when walking the catalog or a tag list.
const PAGE: usize = 1000;

fn repo_name(s: &str) -> Result<RepoName, ApiError> {
    RepoName::parse(s).map_err(|e| ApiError::new(400, ErrorCode::NameInvalid, e.to_string()))
}

async fn check(
    state: &AppState,
    caller: &Caller,
    repo: &RepoName,
    action: Action,
) -> ApiResult<()> {
    state.auth.authorize(caller, repo, &[action]).await?;
    Ok(())
}

/// Whether `name` sorts after every repository of `project` (names of one project are
/// contiguous in the catalog's byte order: `p` itself, then `p/…`, with names such as `p-x`
/// sorting between them).
fn past_project(name: &str, project: &str) -> bool {
    let prefix = format!("{project}/");
    name > prefix.as_str() && !name.starts_with(&prefix)
}

/// The repositories the caller may pull, optionally of one project only.
#[utoipa::path(
    get,
    operation_id = "listRepositories",
    path = "/api/v1/repositories",
    tag = "repositories",
    params(RepositoriesQuery),
    responses(
        (status = 200, body = [RepositoryDto]),
        (status = 400, description = "Invalid project", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<RepositoriesQuery>,
) -> ApiResult<Json<Vec<RepositoryDto>>> {
    if let Some(p) = &query.project {
        bulwark_auth::manage::validate_project_name(p)?;
    }
    let sees_all = state.auth.may_list_catalog(&caller);
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    'pages: loop {
        let page = state.registry.catalog(Some(PAGE), last.as_deref()).await?;
        for name in &page.items {
            let Ok(repo) = RepoName::parse(name) else {
                continue;
            };
            if let Some(p) = &query.project {
                if past_project(name, p) {
                    break 'pages;
                }
                if repo.project() != p {
                    continue;
                }
            }
            let may_pull = sees_all
                || state
                    .auth
                    .allowed(&caller, &repo, &[Action::Pull])
                    .await?
                    .contains(&Action::Pull);
            if may_pull {
                out.push(RepositoryDto { name: name.clone() });
            }
        }
        match page.items.last() {
            Some(l) if page.more => last = Some(l.clone()),
            _ => break,
        }
    }
    Ok(Json(out))
}

/// The tags of a repository and the digests they point to (pull).
#[utoipa::path(
    get,
    operation_id = "listTags",
    path = "/api/v1/repositories/tags",
    tag = "repositories",
    params(RepositoryQuery),
    responses(
        (status = 200, body = [TagDto]),
        (status = 400, description = "Invalid repository name", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "No pull permission", body = ErrorsDto),
        (status = 404, description = "No such repository", body = ErrorsDto),
    )
)]
pub(super) async fn tags(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<RepositoryQuery>,
) -> ApiResult<Json<Vec<TagDto>>> {
    let repo = repo_name(&query.repository)?;
    check(&state, &caller, &repo, Action::Pull).await?;
    let reg = &state.registry;
    let mut out = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let page = reg.list_tags(&repo, Some(PAGE), last.as_deref()).await?;
        for name in &page.items {
            let Ok(tag) = Tag::parse(name) else {
                continue;
            };
            match reg.get_manifest(&repo, &Reference::Tag(tag)).await {
                Ok(m) => out.push(TagDto {
                    name: name.clone(),
                    digest: m.digest.to_string(),
                }),
                // Deleted meanwhile.
                Err(bulwark_core::Error::ManifestUnknown) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match page.items.last() {
            Some(l) if page.more => last = Some(l.clone()),
            _ => break,
        }
    }
    Ok(Json(out))
}

/// Delete a tag; the manifest stays (delete).
#[utoipa::path(
    delete,
    operation_id = "deleteTag",
    path = "/api/v1/repositories/tags",
    tag = "repositories",
    params(TagQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid repository name or tag", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "No delete permission", body = ErrorsDto),
        (status = 404, description = "No such tag", body = ErrorsDto),
    )
)]
pub(super) async fn delete_tag(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<TagQuery>,
) -> ApiResult<StatusCode> {
    let repo = repo_name(&query.repository)?;
    check(&state, &caller, &repo, Action::Delete).await?;
    let tag = Tag::parse(&query.tag)
        .map_err(|e| ApiError::new(400, ErrorCode::TagInvalid, e.to_string()))?;
    state
        .registry
        .delete_manifest(&repo, &Reference::Tag(tag))
        .await?;
    state.trust.content_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a manifest by digest, with the tags pointing to it (delete).
#[utoipa::path(
    delete,
    operation_id = "deleteManifest",
    path = "/api/v1/repositories/manifests",
    tag = "repositories",
    params(ManifestQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid repository name or digest", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "No delete permission", body = ErrorsDto),
        (status = 404, description = "No such manifest", body = ErrorsDto),
    )
)]
pub(super) async fn delete_manifest(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<ManifestQuery>,
) -> ApiResult<StatusCode> {
    let repo = repo_name(&query.repository)?;
    check(&state, &caller, &repo, Action::Delete).await?;
    let digest = Digest::parse(&query.digest)
        .map_err(|e| ApiError::new(400, ErrorCode::DigestInvalid, e.to_string()))?;
    state
        .registry
        .delete_manifest(&repo, &Reference::Digest(digest))
        .await?;
    state.trust.content_changed();
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::past_project;

    #[test]
    fn project_ranges() {
        assert!(!past_project("a", "a"));
        assert!(!past_project("a-x", "a"));
        assert!(!past_project("a/x", "a"));
        assert!(!past_project("a/x/y", "a"));
        assert!(past_project("a0", "a"));
        assert!(past_project("b", "a"));
        assert!(!past_project("0", "a"));
    }
}
