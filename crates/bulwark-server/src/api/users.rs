//! `/api/v1/me` and `/api/v1/users`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bulwark_auth::Secret;
use bulwark_auth::manage::{NewUserRequest, UserChanges};
use bulwark_auth::policy::Principal;

use super::dto::{CreateUserDto, ErrorsDto, MeDto, PrincipalKind, UpdateUserDto, UserDto};
use super::{ApiResult, Authenticated, JsonBody, PathParams};
use crate::AppState;

/// The authenticated caller.
#[utoipa::path(
    get,
    operation_id = "getMe",
    path = "/api/v1/me",
    tag = "meta",
    responses(
        (status = 200, body = MeDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
    )
)]
pub(super) async fn me(Authenticated(caller): Authenticated) -> ApiResult<Json<MeDto>> {
    let (kind, system_admin) = match &caller.principal {
        Principal::User { system_admin, .. } => (PrincipalKind::User, *system_admin),
        _ => (PrincipalKind::Robot, false),
    };
    Ok(Json(MeDto {
        name: caller.principal.subject().to_owned(),
        kind,
        system_admin,
    }))
}

/// Every user (system admins).
#[utoipa::path(
    get,
    operation_id = "listUsers",
    path = "/api/v1/users",
    tag = "users",
    responses(
        (status = 200, body = [UserDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
    )
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<Vec<UserDto>>> {
    let users = state.auth.list_users(&caller).await?;
    Ok(Json(users.into_iter().map(UserDto::from).collect()))
}

/// Create a user (system admins).
#[utoipa::path(
    post,
    operation_id = "createUser",
    path = "/api/v1/users",
    tag = "users",
    request_body = CreateUserDto,
    responses(
        (status = 201, body = UserDto),
        (status = 400, description = "Invalid name, password or e-mail", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 409, description = "The name is taken", body = ErrorsDto),
    )
)]
pub(super) async fn create(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<CreateUserDto>,
) -> ApiResult<(StatusCode, Json<UserDto>)> {
    let user = state
        .auth
        .create_user(
            &caller,
            NewUserRequest {
                name: body.name,
                password: Secret::new(body.password),
                email: body.email,
                system_admin: body.system_admin,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// One user (system admins, or the user themself).
#[utoipa::path(
    get,
    operation_id = "getUser",
    path = "/api/v1/users/{name}",
    tag = "users",
    params(("name" = String, Path, description = "User name")),
    responses(
        (status = 200, body = UserDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Neither a system admin nor the user", body = ErrorsDto),
        (status = 404, description = "No such user", body = ErrorsDto),
    )
)]
pub(super) async fn get_one(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(name): PathParams<String>,
) -> ApiResult<Json<UserDto>> {
    Ok(Json(state.auth.get_user(&caller, &name).await?.into()))
}

/// Change a user (system admins; a user may change only their own password). Disabling or
/// demoting the last enabled system admin is refused with 409.
#[utoipa::path(
    patch,
    operation_id = "updateUser",
    path = "/api/v1/users/{name}",
    tag = "users",
    params(("name" = String, Path, description = "User name")),
    request_body = UpdateUserDto,
    responses(
        (status = 200, body = UserDto),
        (status = 400, description = "Invalid password or e-mail", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not allowed", body = ErrorsDto),
        (status = 404, description = "No such user", body = ErrorsDto),
        (status = 409, description = "The last enabled system admin", body = ErrorsDto),
    )
)]
pub(super) async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<UpdateUserDto>,
) -> ApiResult<Json<UserDto>> {
    let changes = UserChanges {
        password: body.password.map(Secret::new),
        disabled: body.disabled,
        system_admin: body.system_admin,
        email: body.email,
    };
    Ok(Json(
        state
            .auth
            .update_user(&caller, &name, changes)
            .await?
            .into(),
    ))
}

/// Delete a user with their memberships, rules and tokens (system admins). Deleting the last
/// enabled system admin is refused with 409.
#[utoipa::path(
    delete,
    operation_id = "deleteUser",
    path = "/api/v1/users/{name}",
    tag = "users",
    params(("name" = String, Path, description = "User name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "No such user", body = ErrorsDto),
        (status = 409, description = "The last enabled system admin", body = ErrorsDto),
    )
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(name): PathParams<String>,
) -> ApiResult<StatusCode> {
    state.auth.delete_user(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
