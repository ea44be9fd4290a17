//! Scan results: `/api/v1/repositories/manifests/scan` (status, summary and findings of a
//! manifest, or per platform for an index; `POST` queues a new scan),
//! `/api/v1/repositories/manifests/sbom` (the SBOM of the stored inventory),
//! `/api/v1/scan/events` and `POST /api/v1/scan/backfill` (system admins). Repository and
//! digest are query parameters, as in the other `/repositories` endpoints (names contain
//! slashes).
//!
//! Reading a result needs the permission to pull the repository, queueing one the permission
//! to push to it, exactly as `/v2`; a digest that is not a manifest of the repository is a 404
//! whatever was scanned elsewhere.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_auth::Action;
use bulwark_auth::Denied;
use bulwark_auth::service::{AuthError, Caller};
use bulwark_core::store::StoredManifest;
use bulwark_oci::{Digest, ErrorCode, Reference, RepoName};
use bulwark_scanner::jobs::{Inventory, ScanJob, ScanSummary, StoredScan};
use bulwark_scanner::sbom::{self, SbomFormat, SbomImage};
use bulwark_scanner::vulndb::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::{ErrorsDto, ManifestQuery};
use super::{ApiResult, Authenticated, QueryParams};
use crate::scan::{PlatformScan, ScanService};
use crate::{ApiError, AppState};

/// Most events one request returns.
const MAX_EVENTS: u32 = 1000;

/// The scan state of a manifest and, once scanned, its results.
#[derive(Serialize, ToSchema)]
pub struct ScanDto {
    pub repository: String,
    pub digest: String,
    /// For an index, `status` is `running` or `queued` while a platform is, else `failed`
    /// when one failed, else `done` (`unscanned` when a platform has neither a job nor a
    /// result); the other fields of the state are absent.
    #[serde(flatten)]
    pub state: ScanStateDto,
    /// As in `bulwark scan --json` (`id`, `package`, `severity`, `fixed_version`, …).
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<serde_json::Value>,
    /// The full summary of the report (counts, grade cause, outdated packages).
    #[schema(value_type = Object)]
    pub report_summary: serde_json::Value,
    /// The config lint report.
    #[schema(value_type = Object)]
    pub lint: serde_json::Value,
    pub warnings: Vec<String>,
    /// For an index: each platform image, with its own status, counts and grade (its
    /// findings are under its own digest). Absent for an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<PlatformScanDto>>,
}

/// The scan of one platform image of an index.
#[derive(Serialize, ToSchema)]
pub struct PlatformScanDto {
    /// `os/arch[/variant]` as the index lists it (empty when it names none).
    pub platform: String,
    /// The platform image's manifest digest.
    pub digest: String,
    #[serde(flatten)]
    pub state: ScanStateDto,
}

/// Where an image's scanning stands: its newest job and its stored result.
#[derive(Serialize, ToSchema)]
pub struct ScanStateDto {
    /// `queued`, `running`, `done` or `failed`: the newest job's state, `done` when the
    /// stored result has no job in this repository, `unscanned` with neither.
    pub status: String,
    /// The newest job's error, when it failed.
    pub error: Option<String>,
    /// Claims of the newest job.
    pub attempts: Option<u32>,
    /// When the layers were read (Unix seconds); absent until the first scan finished.
    pub scanned_at: Option<i64>,
    /// When the findings were last matched (scan or rescan).
    pub matched_at: Option<i64>,
    /// The vulnerability-database generation (newest import id) of the findings.
    pub vulndb_generation: Option<i64>,
    pub summary: Option<ScanSummaryDto>,
}

impl ScanStateDto {
    fn new(job: Option<&ScanJob>, result: Option<&StoredScan>) -> Self {
        ScanStateDto {
            status: match job {
                Some(j) => j.state.as_str(),
                None if result.is_some() => "done",
                None => "unscanned",
            }
            .to_owned(),
            error: job.and_then(|j| j.error.clone()),
            attempts: job.map(|j| j.attempts),
            scanned_at: result.map(|r| r.scanned_at),
            matched_at: result.map(|r| r.matched_at),
            vulndb_generation: result.map(|r| r.vulndb_generation),
            summary: result.map(|r| r.summary.clone().into()),
        }
    }

    /// An index's state: only a status, from its platforms'.
    fn of_index(platforms: &[PlatformScanDto]) -> Self {
        let any = |s: &str| platforms.iter().any(|p| p.state.status == s);
        let status = if any("running") {
            "running"
        } else if any("queued") {
            "queued"
        } else if any("failed") {
            "failed"
        } else if any("unscanned") {
            "unscanned"
        } else {
            "done"
        };
        ScanStateDto {
            status: status.to_owned(),
            error: None,
            attempts: None,
            scanned_at: None,
            matched_at: None,
            vulndb_generation: None,
            summary: None,
        }
    }
}

/// Counts by severity and the health grade.
#[derive(Serialize, ToSchema)]
pub struct ScanSummaryDto {
    pub total: u64,
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub negligible: u64,
    pub unknown: u64,
    pub fixable: u64,
    /// `A` (no fixable Critical/High) … `F`.
    pub grade: String,
    pub packages: u64,
}

impl From<ScanSummary> for ScanSummaryDto {
    fn from(s: ScanSummary) -> Self {
        ScanSummaryDto {
            total: s.total,
            critical: s.critical,
            high: s.high,
            medium: s.medium,
            low: s.low,
            negligible: s.negligible,
            unknown: s.unknown,
            fixable: s.fixable,
            grade: s.grade,
            packages: s.packages,
        }
    }
}

/// A queued scan.
#[derive(Serialize, ToSchema)]
pub struct QueuedDto {
    /// `false` when a scan of the manifest (of every platform image, for an index) was
    /// queued already.
    pub queued: bool,
}

/// What a backfill queued.
#[derive(Serialize, ToSchema)]
pub struct BackfillDto {
    /// Image manifests queued: those with no result and no queued or running job.
    pub queued: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SbomQuery {
    /// The full repository name.
    pub repository: String,
    /// `sha256:<hex>`
    pub digest: String,
    /// `cyclonedx` (default, CycloneDX 1.5 JSON) or `spdx` (SPDX 2.3 JSON).
    pub format: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events of this kind (`scan.new_critical`).
    pub kind: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// An event of the scanner.
#[derive(Serialize, ToSchema)]
pub struct ScanEventDto {
    pub id: i64,
    /// `scan.new_critical`: a rescan found Critical or High findings the image did not have.
    pub kind: String,
    pub repository: String,
    pub digest: String,
    /// For `scan.new_critical`: `findings`, `grade_before`, `grade`, `vulndb_generation`.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
}

fn service(state: &AppState) -> ApiResult<&ScanService> {
    state.scans.as_deref().ok_or_else(|| {
        ApiError::new(
            404,
            ErrorCode::Unsupported,
            "scanning is turned off on this server (scanner.enabled)",
        )
    })
}

fn not_scanned() -> ApiError {
    ApiError::new(
        404,
        ErrorCode::ManifestUnknown,
        "the manifest has not been scanned",
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "scan store");
    ApiError::new(
        500,
        ErrorCode::Unsupported,
        "reading the scan results failed",
    )
}

/// The repository and manifest, checked: the caller holds `action` on the repository and the
/// digest is one of its manifests.
async fn subject(
    state: &AppState,
    caller: &Caller,
    repository: &str,
    digest: &str,
    action: Action,
) -> ApiResult<(RepoName, StoredManifest)> {
    let repo = RepoName::parse(repository)
        .map_err(|e| ApiError::new(400, ErrorCode::NameInvalid, e.to_string()))?;
    state.auth.authorize(caller, &repo, &[action]).await?;
    let digest = Digest::parse(digest)
        .map_err(|e| ApiError::new(400, ErrorCode::DigestInvalid, e.to_string()))?;
    let manifest = state
        .registry
        .get_manifest(&repo, &Reference::Digest(digest))
        .await?;
    Ok((repo, manifest))
}

fn platform_dto(p: PlatformScan) -> PlatformScanDto {
    PlatformScanDto {
        state: ScanStateDto::new(p.job.as_ref(), p.result.as_ref()),
        platform: p.platform,
        digest: p.digest,
    }
}

/// The scan status, summary and findings of a manifest (pull).
#[utoipa::path(
    get,
    operation_id = "getScan",
    path = "/api/v1/repositories/manifests/scan",
    tag = "scans",
    params(ManifestQuery),
    responses(
        (status = 200, body = ScanDto),
        (status = 400, description = "Invalid repository name or digest", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "No pull permission", body = ErrorsDto),
        (status = 404, description = "No such manifest, or never scanned", body = ErrorsDto),
    )
)]
pub(super) async fn get_scan(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<ManifestQuery>,
) -> ApiResult<Json<ScanDto>> {
    let scans = service(&state)?;
    let (repo, manifest) = subject(
        &state,
        &caller,
        &query.repository,
        &query.digest,
        Action::Pull,
    )
    .await?;
    let digest = manifest.digest.to_string();
    if let Some(platforms) = scans
        .index_platforms(&repo, &manifest)
        .await
        .map_err(internal)?
    {
        let platforms: Vec<PlatformScanDto> = platforms.into_iter().map(platform_dto).collect();
        if platforms.iter().all(|p| p.state.status == "unscanned") {
            return Err(not_scanned());
        }
        return Ok(Json(ScanDto {
            repository: repo.to_string(),
            digest,
            state: ScanStateDto::of_index(&platforms),
            findings: Vec::new(),
            report_summary: serde_json::Value::Null,
            lint: serde_json::Value::Null,
            warnings: Vec::new(),
            platforms: Some(platforms),
        }));
    }
    let store = scans.scans();
    let job = store
        .latest_job(repo.as_str(), &digest)
        .await
        .map_err(internal)?;
    let result = store.result(&digest).await.map_err(internal)?;
    if job.is_none() && result.is_none() {
        return Err(not_scanned());
    }
    let mut dto = ScanDto {
        repository: repo.to_string(),
        digest,
        state: ScanStateDto::new(job.as_ref(), result.as_ref()),
        findings: Vec::new(),
        report_summary: serde_json::Value::Null,
        lint: serde_json::Value::Null,
        warnings: Vec::new(),
        platforms: None,
    };
    if let Some(r) = result {
        dto.findings = r.report["findings"].as_array().cloned().unwrap_or_default();
        dto.report_summary = r.report["summary"].clone();
        dto.warnings = r.report["warnings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        dto.lint = r.lint;
    }
    Ok(Json(dto))
}

/// Queue a new scan of a manifest (push).
#[utoipa::path(
    post,
    operation_id = "queueScan",
    path = "/api/v1/repositories/manifests/scan",
    tag = "scans",
    params(ManifestQuery),
    responses(
        (status = 202, body = QueuedDto),
        (status = 400, description = "Invalid repository name or digest", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "No push permission", body = ErrorsDto),
        (status = 404, description = "No such manifest", body = ErrorsDto),
    )
)]
pub(super) async fn queue_scan(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<ManifestQuery>,
) -> ApiResult<(StatusCode, Json<QueuedDto>)> {
    let scans = service(&state)?;
    let (repo, manifest) = subject(
        &state,
        &caller,
        &query.repository,
        &query.digest,
        Action::Push,
    )
    .await?;
    let queued = scans
        .request_scan(&repo, &manifest)
        .await
        .map_err(internal)?;
    Ok((StatusCode::ACCEPTED, Json(QueuedDto { queued })))
}

/// The SBOM of a scanned manifest's inventory (pull).
#[utoipa::path(
    get,
    operation_id = "getSbom",
    path = "/api/v1/repositories/manifests/sbom",
    tag = "scans",
    params(SbomQuery),
    responses(
        (status = 200, description = "CycloneDX 1.5 or SPDX 2.3 JSON", content_type = "application/json", body = Object),
        (status = 400, description = "Invalid repository name, digest or format", body = ErrorsDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "No pull permission", body = ErrorsDto),
        (status = 404, description = "No such manifest, or never scanned", body = ErrorsDto),
    )
)]
pub(super) async fn get_sbom(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<SbomQuery>,
) -> ApiResult<Response> {
    let scans = service(&state)?;
    let format = match query.format.as_deref() {
        None => SbomFormat::CycloneDx,
        Some(f) => SbomFormat::parse(f).ok_or_else(|| {
            ApiError::new(
                400,
                ErrorCode::Unsupported,
                format!("format {f:?}: expected cyclonedx or spdx"),
            )
        })?,
    };
    let (repo, manifest) = subject(
        &state,
        &caller,
        &query.repository,
        &query.digest,
        Action::Pull,
    )
    .await?;
    let digest = manifest.digest;
    let stored = scans
        .scans()
        .result(&digest.to_string())
        .await
        .map_err(internal)?
        .ok_or_else(not_scanned)?;
    let inventory: Inventory =
        serde_json::from_value(stored.inventory.clone()).map_err(internal)?;
    let packages = inventory.packages().map_err(internal)?;
    let distro = inventory.distro();
    let image = SbomImage {
        name: format!("{repo}@{digest}"),
        digest: &digest,
        distro: distro.as_ref(),
        packages: &packages,
    };
    let doc = sbom::generate(format, &image, Timestamp(stored.scanned_at));
    let content_type = match format {
        SbomFormat::CycloneDx => "application/vnd.cyclonedx+json",
        SbomFormat::Spdx => "application/spdx+json",
    };
    let mut resp = (StatusCode::OK, Json(doc)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

/// Events of the scanner, newest first (system admins).
#[utoipa::path(
    get,
    operation_id = "listScanEvents",
    path = "/api/v1/scan/events",
    tag = "scans",
    params(EventsQuery),
    responses(
        (status = 200, body = [ScanEventDto]),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
    )
)]
pub(super) async fn events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    QueryParams(query): QueryParams<EventsQuery>,
) -> ApiResult<Json<Vec<ScanEventDto>>> {
    if !caller.is_system_admin() {
        return Err(AuthError::Denied(Denied::System {
            what: "scan events",
        })
        .into());
    }
    let scans = service(&state)?;
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_EVENTS);
    let events = scans
        .scans()
        .events(query.kind.as_deref(), limit)
        .await
        .map_err(internal)?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| ScanEventDto {
                id: e.id,
                kind: e.kind,
                repository: e.repository,
                digest: e.digest,
                detail: e.detail,
                created_at: e.created_at,
            })
            .collect(),
    ))
}

/// Queue a scan of every image manifest that has no result and no queued or running job
/// (system admins). Refused with 409 while another replica backfills.
#[utoipa::path(
    post,
    operation_id = "backfillScans",
    path = "/api/v1/scan/backfill",
    tag = "scans",
    responses(
        (status = 200, body = BackfillDto),
        (status = 401, description = "Not authenticated", body = ErrorsDto),
        (status = 403, description = "Not a system admin", body = ErrorsDto),
        (status = 404, description = "Scanning is turned off", body = ErrorsDto),
        (status = 409, description = "Another replica is backfilling", body = ErrorsDto),
    )
)]
pub(super) async fn backfill(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<BackfillDto>> {
    if !caller.is_system_admin() {
        return Err(AuthError::Denied(Denied::System {
            what: "scan backfill",
        })
        .into());
    }
    let scans = service(&state)?;
    match scans.backfill().await.map_err(internal)? {
        Some(queued) => {
            tracing::info!(by = %caller.subject(), queued, "scan backfill run through the API");
            Ok(Json(BackfillDto { queued }))
        }
        None => Err(ApiError::new(
            409,
            ErrorCode::Denied,
            "a scan backfill is already running on another replica",
        )),
    }
}
