//! `/api/v1/projects`: projects, their members and per-repository rules.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_auth::manage::MemberRef;

use super::dto::{
    CreateProjectDto, CreateRuleDto, ErrorsDto, MemberDto, MemberKind, ProjectDto, RuleDto,
    SetMemberDto, UpdateProjectDto,
};
use super::{ApiResult, Authenticated, JsonBody, PathParams, bad_request};
use crate::AppState;

fn member_ref(kind: MemberKind, name: String) -> MemberRef {
    match kind {
        MemberKind::User => MemberRef::User(name),
        MemberKind::Team => MemberRef::Team(name),
    }
}

/// The projects the caller can see: all for system admins; public ones and those the caller
/// is a member of otherwise.
#[utoipa::path(
    get,
    operation_id = "listProjects",
    path = "/api/v1/projects",
    tag = "projects",
    responses(
        (status = 200, body = [ProjectDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<ProjectDto>>> {
    let projects = state.auth.list_projects(&caller).await?;
    Ok(Json(projects.into_iter().map(ProjectDto::from).collect()))
}

/// Create a project (system admins, or any user when `auth.project_creation = users`); the
/// creator becomes its admin.
#[utoipa::path(
    post,
    operation_id = "createProject",
    path = "/api/v1/projects",
    tag = "projects",
    request_body = CreateProjectDto,
    responses(
        (status = 201, body = ProjectDto),
        (status = 400, description = "Invalid name", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not allowed to create projects", body = ErrorsDto),
        (status = 409, description = "The name is taken", body = ErrorsDto),
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateProjectDto>,
) -> ApiResult<(StatusCode, Json<ProjectDto>)> {
    let project = state
        .auth
        .create_project(&caller, &body.name, body.visibility.into())
        .await?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// One project, if the caller can see it.
#[utoipa::path(
    get,
    operation_id = "getProject",
    path = "/api/v1/projects/{project}",
    tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses(
        (status = 200, body = ProjectDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "A private project the caller is not in", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn get_one(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
) -> ApiResult<Json<ProjectDto>> {
    Ok(Json(
        state.auth.get_project(&caller, &project).await?.into(),
    ))
}

/// Change a project's visibility (project admins).
#[utoipa::path(
    patch,
    operation_id = "updateProject",
    path = "/api/v1/projects/{project}",
    tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    request_body = UpdateProjectDto,
    responses(
        (status = 200, body = ProjectDto),
        (status = 400, description = "Invalid body", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
    JsonBody(body): JsonBody<UpdateProjectDto>,
) -> ApiResult<Json<ProjectDto>> {
    let p = state
        .auth
        .set_project_visibility(&caller, &project, body.visibility.into())
        .await?;
    Ok(Json(p.into()))
}

/// Delete a project with its members, rules and robots; its repositories stay (system
/// admins).
#[utoipa::path(
    delete,
    operation_id = "deleteProject",
    path = "/api/v1/projects/{project}",
    tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
) -> ApiResult<StatusCode> {
    state.auth.delete_project(&caller, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a project (project members with any role, and system admins).
#[utoipa::path(
    get,
    operation_id = "listProjectMembers",
    path = "/api/v1/projects/{project}/members",
    tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses(
        (status = 200, body = [MemberDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a member", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn members(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
) -> ApiResult<Json<Vec<MemberDto>>> {
    let members = state.auth.list_members(&caller, &project).await?;
    Ok(Json(members.into_iter().map(MemberDto::from).collect()))
}

/// Give a user or team a role in the project, or change it (project admins).
#[utoipa::path(
    put,
    operation_id = "setProjectMember",
    path = "/api/v1/projects/{project}/members",
    tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    request_body = SetMemberDto,
    responses(
        (status = 204, description = "The member has the role"),
        (status = 400, description = "Invalid body", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project, user or team", body = ErrorsDto),
    )
)]
pub(super) async fn set_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
    JsonBody(body): JsonBody<SetMemberDto>,
) -> ApiResult<StatusCode> {
    let member = member_ref(body.kind, body.name);
    state
        .auth
        .set_member(&caller, &project, &member, body.role.into())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a user's or team's role in the project away (project admins).
#[utoipa::path(
    delete,
    operation_id = "removeProjectMember",
    path = "/api/v1/projects/{project}/members/{kind}/{name}",
    tag = "projects",
    params(
        ("project" = String, Path, description = "Project name"),
        ("kind" = MemberKind, Path, description = "`user` or `team`"),
        ("name" = String, Path, description = "User or team name"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Invalid kind", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project or member", body = ErrorsDto),
    )
)]
pub(super) async fn remove_member(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((project, kind, name)): PathParams<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = MemberKind::parse(&kind)
        .ok_or_else(|| bad_request("member kind must be \"user\" or \"team\""))?;
    let member = member_ref(kind, name);
    state.auth.remove_member(&caller, &project, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The per-repository rules of a project (project admins).
#[utoipa::path(
    get,
    operation_id = "listRepoRules",
    path = "/api/v1/projects/{project}/rules",
    tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    responses(
        (status = 200, body = [RuleDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project", body = ErrorsDto),
    )
)]
pub(super) async fn rules(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
) -> ApiResult<Json<Vec<RuleDto>>> {
    let rules = state.auth.list_repo_rules(&caller, &project).await?;
    Ok(Json(rules.into_iter().map(RuleDto::from).collect()))
}

/// Add a per-repository rule (project admins): the user or team gets `role` on the
/// repositories matching `pattern`, which must start with `<project>/`.
#[utoipa::path(
    post,
    operation_id = "addRepoRule",
    path = "/api/v1/projects/{project}/rules",
    tag = "projects",
    params(("project" = String, Path, description = "Project name")),
    request_body = CreateRuleDto,
    responses(
        (status = 201, body = RuleDto),
        (status = 400, description = "Invalid pattern or body", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project, user or team", body = ErrorsDto),
    )
)]
pub(super) async fn add_rule(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(project): PathParams<String>,
    JsonBody(body): JsonBody<CreateRuleDto>,
) -> ApiResult<(StatusCode, Json<RuleDto>)> {
    let member = member_ref(body.kind, body.name);
    let rule = state
        .auth
        .add_repo_rule(&caller, &project, &body.pattern, &member, body.role.into())
        .await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// Delete a per-repository rule (project admins).
#[utoipa::path(
    delete,
    operation_id = "deleteRepoRule",
    path = "/api/v1/projects/{project}/rules/{id}",
    tag = "projects",
    params(
        ("project" = String, Path, description = "Project name"),
        ("id" = i64, Path, description = "Rule id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Invalid id", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a project admin", body = ErrorsDto),
        (status = 404, description = "No such project or rule", body = ErrorsDto),
    )
)]
pub(super) async fn delete_rule(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((project, id)): PathParams<(String, String)>,
) -> ApiResult<StatusCode> {
    let id: i64 = id
        .parse()
        .map_err(|_| bad_request("rule id must be an integer"))?;
    state.auth.delete_repo_rule(&caller, &project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
