//! Bulwark's HTTP edge: the `/v2/` distribution API, the Docker token endpoint (`/token`),
//! health endpoints and background workers. Handlers are thin: authenticate, check the
//! endpoint's required actions, call [`bulwark_core::Registry`] or
//! [`bulwark_auth::service::AuthService`], shape the response. Errors are mapped to OCI error
//! bodies in exactly one place ([`error::ApiError`]).

mod api;
pub mod auth;
mod error;
pub mod scan;
pub mod telemetry;
mod token;
pub mod trust;
mod v2;
pub mod worker;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use bulwark_auth::service::AuthService;
use bulwark_core::Registry;

pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub auth: Arc<AuthService>,
    pub settings: Arc<Settings>,
    /// Scan on push and the scan results API; `None` when `scanner.enabled` is off.
    pub scans: Option<Arc<scan::ScanService>>,
    /// Pull enforcement under per-project trust policies.
    pub trust: Arc<bulwark_trust::enforce::Enforcer>,
}

/// Edge settings that are not the domain's business.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The token realm to advertise; `None`: this server's `/token` on the requested host.
    pub realm: Option<String>,
    /// Whether the listener speaks TLS (decides the scheme of a derived realm).
    pub tls: bool,
    /// Default grace window of on-demand garbage collection (`gc.grace_secs`).
    pub gc_grace_secs: i64,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/token", get(token::get_token).post(token::post_token))
        .nest("/api/v1", api::router())
        .fallback(v2::dispatch)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(telemetry::HttpMetricsLayer)
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.registry.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
    }
}
