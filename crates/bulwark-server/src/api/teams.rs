//! `/api/v1/teams` (system admins).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::dto::{CreateTeamDto, ErrorsDto, TeamDto, UserDto};
use super::{ApiResult, Authenticated, JsonBody, PathParams};
use crate::AppState;

/// Every team.
#[utoipa::path(
    get,
    operation_id = "listTeams",
    path = "/api/v1/teams",
    tag = "teams",
    responses(
        (status = 200, body = [TeamDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<TeamDto>>> {
    let teams = state.auth.list_teams(&caller).await?;
    Ok(Json(teams.into_iter().map(TeamDto::from).collect()))
}

/// Create a team.
#[utoipa::path(
    post,
    operation_id = "createTeam",
    path = "/api/v1/teams",
    tag = "teams",
    request_body = CreateTeamDto,
    responses(
        (status = 201, body = TeamDto),
        (status = 400, description = "Invalid name", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 409, description = "The name is taken", body = ErrorsDto),
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateTeamDto>,
) -> ApiResult<(StatusCode, Json<TeamDto>)> {
    let team = state.auth.create_team(&caller, &body.name).await?;
    Ok((StatusCode::CREATED, Json(team.into())))
}

/// Delete a team with its memberships and rules.
#[utoipa::path(
    delete,
    operation_id = "deleteTeam",
    path = "/api/v1/teams/{name}",
    tag = "teams",
    params(("name" = String, Path, description = "Team name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such team", body = ErrorsDto),
    )
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(name): PathParams<String>,
) -> ApiResult<StatusCode> {
    state.auth.delete_team(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The users of a team.
#[utoipa::path(
    get,
    operation_id = "listTeamMembers",
    path = "/api/v1/teams/{name}/members",
    tag = "teams",
    params(("name" = String, Path, description = "Team name")),
    responses(
        (status = 200, body = [UserDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such team", body = ErrorsDto),
    )
)]
pub(super) async fn members(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<Vec<UserDto>>> {
    let users = state.auth.team_members(&caller, &name).await?;
    Ok(Json(users.into_iter().map(UserDto::from).collect()))
}

/// Add a user to a team (idempotent).
#[utoipa::path(
    put,
    operation_id = "addTeamMember",
    path = "/api/v1/teams/{name}/members/{user}",
    tag = "teams",
    params(
        ("name" = String, Path, description = "Team name"),
        ("user" = String, Path, description = "User name"),
    ),
    responses(
        (status = 204, description = "The user is a member"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such team or user", body = ErrorsDto),
    )
)]
pub(super) async fn add_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((name, user)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    state.auth.add_team_member(&caller, &name, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from a team (idempotent).
#[utoipa::path(
    delete,
    operation_id = "removeTeamMember",
    path = "/api/v1/teams/{name}/members/{user}",
    tag = "teams",
    params(
        ("name" = String, Path, description = "Team name"),
        ("user" = String, Path, description = "User name"),
    ),
    responses(
        (status = 204, description = "The user is not a member"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such team or user", body = ErrorsDto),
    )
)]
pub(super) async fn remove_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((name, user)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    state.auth.remove_team_member(&caller, &name, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
