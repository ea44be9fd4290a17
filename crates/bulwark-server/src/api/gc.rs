//! `/api/v1/gc`: garbage-collection results and on-demand runs (system admins).

use axum::Json;
use axum::extract::State;
use bulwark_auth::Denied;
use bulwark_auth::service::AuthError;
use bulwark_core::gc::{GcOptions, GcReport, GcRun};
use bulwark_oci::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dto::ErrorsDto;
use super::{ApiResult, Authenticated, JsonBody};
use crate::{ApiError, AppState};

/// What one collection did.
#[derive(Serialize, ToSchema)]
pub struct GcReportDto {
    pub dry_run: bool,
    /// Untagged manifests nothing live refers to.
    pub manifests_deleted: u64,
    /// Repository→blob links no manifest uses.
    pub links_deleted: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    /// Stored blobs without metadata (left by a crash).
    pub orphan_files_deleted: u64,
}

impl From<GcReport> for GcReportDto {
    fn from(r: GcReport) -> Self {
        GcReportDto {
            dry_run: r.dry_run,
            manifests_deleted: r.manifests_deleted,
            links_deleted: r.links_deleted,
            blobs_deleted: r.blobs_deleted,
            bytes_freed: r.bytes_freed,
            orphan_files_deleted: r.orphan_files_deleted,
        }
    }
}

/// The last collection this replica ran, and the one it is running.
#[derive(Serialize, ToSchema)]
pub struct GcStatusDto {
    /// Seconds since the epoch; absent when this replica has not collected since it started.
    pub finished_at: Option<i64>,
    pub last: Option<GcReportDto>,
    /// Progress of the collection running on this replica now; absent when none is.
    pub running: Option<GcProgressDto>,
}

/// A collection in progress.
#[derive(Serialize, ToSchema)]
pub struct GcProgressDto {
    /// Seconds since the epoch.
    pub started_at: i64,
    /// Candidate and stored blobs looked at so far.
    pub blobs_examined: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
}

/// Run a collection now.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GcRequestDto {
    /// Report what would be removed without removing anything.
    pub dry_run: bool,
    /// Grace window in seconds (default: the server's `gc.grace_secs`).
    pub grace_secs: Option<i64>,
}

fn require_admin(caller: &bulwark_auth::service::Caller) -> Result<(), ApiError> {
    if caller.is_system_admin() {
        Ok(())
    } else {
        Err(AuthError::Denied(Denied::System {
            what: "garbage collection",
        })
        .into())
    }
}

/// The last garbage collection this replica ran.
#[utoipa::path(
    get,
    operation_id = "gcStatus",
    path = "/api/v1/gc",
    tag = "gc",
    responses(
        (status = 200, body = GcStatusDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
    )
)]
pub(super) async fn status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<GcStatusDto>> {
    require_admin(&caller)?;
    let last: Option<GcRun> = state.registry.last_gc();
    Ok(Json(GcStatusDto {
        finished_at: last.map(|r| r.finished_at),
        last: last.map(|r| r.report.into()),
        running: state.registry.gc_progress().map(|p| GcProgressDto {
            started_at: p.started_at,
            blobs_examined: p.blobs_examined,
            blobs_deleted: p.blobs_deleted,
            bytes_freed: p.bytes_freed,
        }),
    }))
}

/// Collect garbage now (or report what would go, with `dry_run`). Refused with 409 while
/// another replica is collecting.
#[utoipa::path(
    post,
    operation_id = "runGc",
    path = "/api/v1/gc",
    tag = "gc",
    request_body = GcRequestDto,
    responses(
        (status = 200, body = GcReportDto),
        (status = 400, description = "Invalid request", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 409, description = "Another replica is collecting", body = ErrorsDto),
    )
)]
pub(super) async fn run(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(body): JsonBody<GcRequestDto>,
) -> ApiResult<Json<GcReportDto>> {
    require_admin(&caller)?;
    let grace_secs = body.grace_secs.unwrap_or(state.settings.gc_grace_secs);
    if grace_secs < 0 {
        return Err(ApiError::new(
            400,
            ErrorCode::Unsupported,
            "grace_secs must not be negative",
        ));
    }
    let opts = GcOptions {
        grace_secs,
        dry_run: body.dry_run,
    };
    match state.registry.run_gc_job(opts).await? {
        Some(report) => {
            tracing::info!(by = %caller.subject(), ?report, "garbage collection run through the API");
            Ok(Json(report.into()))
        }
        None => Err(ApiError::new(
            409,
            ErrorCode::Denied,
            "garbage collection is already running on another replica",
        )),
    }
}
