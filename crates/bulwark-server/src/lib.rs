//! Bulwark's HTTP edge: the `/v2/` distribution API, health endpoints and background workers.
//! Handlers are thin: parse the endpoint, call [`bulwark_core::Registry`], shape the response.
//! Errors are mapped to OCI error bodies in exactly one place ([`error::ApiError`]).

mod error;
mod v2;
pub mod worker;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use bulwark_core::Registry;

pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(v2::dispatch)
        .layer(tower_http::trace::TraceLayer::new_for_http())
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
