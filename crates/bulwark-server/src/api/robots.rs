//! `/api/v1/projects/{project}/robots` (project admins) and `/api/v1/robots` (system robots,
//! system admins).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_auth::manage::NewRobotRequest;
use bulwark_auth::service::Caller;

use super::dto::{CreateRobotDto, ErrorsDto, RobotDto, UpdateRobotDto};
use super::{ApiResult, Authenticated, JsonBody, PathParams};
use crate::AppState;

async fn list(
    state: &AppState,
    caller: &Caller,
    project: Option<&str>,
) -> ApiResult<Json<Vec<RobotDto>>> {
    let robots = state.auth.list_robots(caller, project).await?;
    Ok(Json(robots.into_iter().map(RobotDto::from).collect()))
}

async fn create(
    state: &AppState,
    caller: &Caller,
    project: Option<&str>,
    body: CreateRobotDto,
) -> ApiResult<(StatusCode, Json<RobotDto>)> {
    let created = state
        .auth
        .create_robot(
            caller,
            project,
            NewRobotRequest {
                name: body.name,
                description: body.description,
                permissions: body.permissions.iter().map(|p| p.to_spec()).collect(),
                expires_in_secs: body.expires_in_secs,
            },
        )
        .await?;
    let mut dto = RobotDto::from(created.robot);
    dto.secret = Some(created.secret.expose().to_owned());
    Ok((StatusCode::CREATED, Json(dto)))
}

/// The robots of a project.
#[utoipa::path(
    get,
    operation_id = "listProjectRobots",
    path = "/api/v1/projects/{project}/robots",
    tag = "robots",
    params(("project" = String, Path, description = "Project name")),
    responses(
        (status = 200, body = [RobotDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn list_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
) -> ApiResult<Json<Vec<RobotDto>>> {
    list(&state, &caller, Some(&project)).await
}

/// Create a project robot, `robot$<project>+<name>`. Its patterns must start with
/// `<project>/`. The secret is in the answer and nowhere else: it cannot be shown again.
#[utoipa::path(
    post,
    operation_id = "createProjectRobot",
    path = "/api/v1/projects/{project}/robots",
    tag = "robots",
    params(("project" = String, Path, description = "Project name")),
    request_body = CreateRobotDto,
    responses(
        (status = 201, description = "Created; `secret` holds the secret", body = RobotDto),
        (status = 400, description = "Invalid name, permissions or expiry", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
        (status = 409, description = "The name is taken", body = ErrorsDto),
    )
)]
pub(super) async fn create_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
    JsonBody(body): JsonBody<CreateRobotDto>,
) -> ApiResult<(StatusCode, Json<RobotDto>)> {
    create(&state, &caller, Some(&project), body).await
}

/// Enable or disable a project robot.
#[utoipa::path(
    patch,
    operation_id = "updateProjectRobot",
    path = "/api/v1/projects/{project}/robots/{short}",
    tag = "robots",
    params(
        ("project" = String, Path, description = "Project name"),
        ("short" = String, Path, description = "The robot's short name"),
    ),
    request_body = UpdateRobotDto,
    responses(
        (status = 200, body = RobotDto),
        (status = 400, description = "Invalid body", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project or robot", body = ErrorsDto),
    )
)]
pub(super) async fn update_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((project, short)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<UpdateRobotDto>,
) -> ApiResult<Json<RobotDto>> {
    let robot = state
        .auth
        .set_robot_disabled(&caller, Some(&project), &short, body.disabled)
        .await?;
    Ok(Json(robot.into()))
}

/// Delete a project robot.
#[utoipa::path(
    delete,
    operation_id = "deleteProjectRobot",
    path = "/api/v1/projects/{project}/robots/{short}",
    tag = "robots",
    params(
        ("project" = String, Path, description = "Project name"),
        ("short" = String, Path, description = "The robot's short name"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project or robot", body = ErrorsDto),
    )
)]
pub(super) async fn remove_project(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((project, short)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .auth
        .delete_robot(&caller, Some(&project), &short)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The system robots (system admins).
#[utoipa::path(
    get,
    operation_id = "listSystemRobots",
    path = "/api/v1/robots",
    tag = "robots",
    responses(
        (status = 200, body = [RobotDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
    )
)]
pub(super) async fn list_system(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<RobotDto>>> {
    list(&state, &caller, None).await
}

/// Create a system robot, `robot$<name>`, whose patterns may name any project (system
/// admins). The secret is in the answer and nowhere else.
#[utoipa::path(
    post,
    operation_id = "createSystemRobot",
    path = "/api/v1/robots",
    tag = "robots",
    request_body = CreateRobotDto,
    responses(
        (status = 201, description = "Created; `secret` holds the secret", body = RobotDto),
        (status = 400, description = "Invalid name, permissions or expiry", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 409, description = "The name is taken", body = ErrorsDto),
    )
)]
pub(super) async fn create_system(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateRobotDto>,
) -> ApiResult<(StatusCode, Json<RobotDto>)> {
    create(&state, &caller, None, body).await
}

/// Enable or disable a system robot (system admins).
#[utoipa::path(
    patch,
    operation_id = "updateSystemRobot",
    path = "/api/v1/robots/{short}",
    tag = "robots",
    params(("short" = String, Path, description = "The robot's short name")),
    request_body = UpdateRobotDto,
    responses(
        (status = 200, body = RobotDto),
        (status = 400, description = "Invalid body", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such robot", body = ErrorsDto),
    )
)]
pub(super) async fn update_system(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(short): PathParams<String>,
    JsonBody(body): JsonBody<UpdateRobotDto>,
) -> ApiResult<Json<RobotDto>> {
    let robot = state
        .auth
        .set_robot_disabled(&caller, None, &short, body.disabled)
        .await?;
    Ok(Json(robot.into()))
}

/// Delete a system robot (system admins).
#[utoipa::path(
    delete,
    operation_id = "deleteSystemRobot",
    path = "/api/v1/robots/{short}",
    tag = "robots",
    params(("short" = String, Path, description = "The robot's short name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such robot", body = ErrorsDto),
    )
)]
pub(super) async fn remove_system(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(short): PathParams<String>,
) -> ApiResult<StatusCode> {
    state.auth.delete_robot(&caller, None, &short).await?;
    Ok(StatusCode::NO_CONTENT)
}
