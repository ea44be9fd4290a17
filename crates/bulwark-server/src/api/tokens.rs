//! `/api/v1/users/{name}/tokens`: personal access tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_auth::manage::NewTokenRequest;

use super::dto::{CreateTokenDto, ErrorsDto, TokenDto};
use super::{ApiResult, Authenticated, JsonBody, PathParams};
use crate::AppState;

/// A user's personal access tokens, revoked ones included (the user themself, or system
/// admins).
#[utoipa::path(
    get,
    operation_id = "listTokens",
    path = "/api/v1/users/{name}/tokens",
    tag = "tokens",
    params(("name" = String, Path, description = "User name")),
    responses(
        (status = 200, body = [TokenDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Neither the user nor a system admin", body = ErrorsDto),
        (status = 404, description = "No such user", body = ErrorsDto),
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<Vec<TokenDto>>> {
    let tokens = state.auth.list_tokens(&caller, &name).await?;
    Ok(Json(tokens.into_iter().map(TokenDto::from).collect()))
}

/// Create a personal access token (the user themself, or system admins). The token is in the
/// answer and nowhere else: it cannot be shown again.
#[utoipa::path(
    post,
    operation_id = "createToken",
    path = "/api/v1/users/{name}/tokens",
    tag = "tokens",
    params(("name" = String, Path, description = "User name")),
    request_body = CreateTokenDto,
    responses(
        (status = 201, description = "Created; `token` holds the token", body = TokenDto),
        (status = 400, description = "Invalid name or permissions", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Neither the user nor a system admin", body = ErrorsDto),
        (status = 404, description = "No such user", body = ErrorsDto),
        (status = 409, description = "A live token of that name exists", body = ErrorsDto),
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<CreateTokenDto>,
) -> ApiResult<(StatusCode, Json<TokenDto>)> {
    let created = state
        .auth
        .create_token(
            &caller,
            &name,
            NewTokenRequest {
                name: body.name,
                permissions: body.permissions.iter().map(|p| p.to_spec()).collect(),
                expires_in_secs: body.expires_in_secs,
            },
        )
        .await?;
    let mut dto = TokenDto::from(created.token);
    dto.token = Some(created.secret.expose().to_owned());
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Revoke a personal access token (the user themself, or system admins). Revoking a revoked
/// token again succeeds.
#[utoipa::path(
    delete,
    operation_id = "revokeToken",
    path = "/api/v1/users/{name}/tokens/{id}",
    tag = "tokens",
    params(
        ("name" = String, Path, description = "User name"),
        ("id" = String, Path, description = "Token id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Neither the user nor a system admin", body = ErrorsDto),
        (status = 404, description = "No such user or token", body = ErrorsDto),
    )
)]
pub(super) async fn revoke(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((name, id)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    state.auth.revoke_token(&caller, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
