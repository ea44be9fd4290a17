//! The Docker registry token endpoint: `GET /token` (Basic or anonymous, the flow docker,
//! podman and skopeo use) and `POST /token` (the OAuth2 password and refresh-token grants
//! containerd and docker use for refresh tokens).

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bulwark_auth::Secret;
use bulwark_auth::scope::{Scope, parse_scopes};
use bulwark_auth::service::{AuthError, Caller, IssuedToken};
use bulwark_oci::ErrorCode;
use serde::Serialize;

use crate::auth::{basic_credentials, peer_ip};
use crate::{ApiError, AppState};

const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Serialize)]
struct GetTokenResponse<'a> {
    token: &'a str,
    access_token: &'a str,
    expires_in: u64,
    issued_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

#[derive(Serialize)]
struct OAuthTokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    issued_at: &'a str,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

fn values<'a>(pairs: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a str> {
    pairs
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn check_service(state: &AppState, service: Option<&str>) -> Result<(), ApiError> {
    match service {
        Some(s) if s != state.auth.config().service => Err(ApiError::new(
            400,
            ErrorCode::Unsupported,
            format!(
                "unknown service {s:?}; this registry's service is {:?}",
                state.auth.config().service
            ),
        )),
        _ => Ok(()),
    }
}

fn scopes<'a>(params: impl IntoIterator<Item = &'a str>) -> Result<Vec<Scope>, ApiError> {
    parse_scopes(params).map_err(|e| ApiError::from(AuthError::Invalid(e.to_string())))
}

/// `GET /token?service=…&scope=…[&offline_token=true]`.
pub async fn get_token(State(state): State<AppState>, req: Request) -> Response {
    match get_token_inner(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn get_token_inner(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let ip = peer_ip(&req);
    let query = pairs(req.uri().query().unwrap_or("").as_bytes());
    check_service(state, first(&query, "service"))?;
    let scopes = scopes(values(&query, "scope"))?;
    let caller = login(state, req.headers(), ip).await?;
    let offline = first(&query, "offline_token") == Some("true");
    let issued = state.auth.issue_token(&caller, &scopes, offline).await?;
    log_issue(&caller, &issued);
    Ok(get_response(&issued))
}

async fn login(
    state: &AppState,
    headers: &HeaderMap,
    ip: std::net::IpAddr,
) -> Result<Caller, ApiError> {
    match basic_credentials(headers)? {
        Some(c) => Ok(state.auth.login(&c.username, &c.password, ip).await?),
        None => Ok(Caller::anonymous()),
    }
}

fn get_response(issued: &IssuedToken) -> Response {
    let token = issued.token.token.expose();
    Json(GetTokenResponse {
        token,
        access_token: token,
        expires_in: issued.token.expires_in,
        issued_at: &issued.token.issued_at,
        refresh_token: issued.refresh.as_ref().map(|r| r.token.expose()),
    })
    .into_response()
}

fn log_issue(caller: &Caller, issued: &IssuedToken) {
    let granted: Vec<String> = issued
        .access
        .iter()
        .map(|a| {
            let actions: Vec<&str> = a.actions.iter().map(|x| x.as_str()).collect();
            format!("{}:{}:{}", a.resource_type, a.name, actions.join(","))
        })
        .collect();
    tracing::debug!(subject = %caller.subject(), granted = ?granted, "token issued");
}

/// `POST /token` with a form body: `grant_type=password` (username, password) or
/// `grant_type=refresh_token` (refresh_token); `service`, `scope`, `client_id`,
/// `access_type=offline` for a refresh token.
pub async fn post_token(State(state): State<AppState>, req: Request) -> Response {
    match post_token_inner(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn post_token_inner(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let ip = peer_ip(&req);
    let body: Body = req.into_body();
    let raw = to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        ApiError::new(
            400,
            ErrorCode::Unsupported,
            format!("token request body must be a form of at most {MAX_FORM_BYTES} bytes"),
        )
    })?;
    let form = pairs(&raw);
    check_service(state, first(&form, "service"))?;
    let scopes = scopes(values(&form, "scope"))?;
    let offline = first(&form, "access_type") == Some("offline");
    let issued = match first(&form, "grant_type") {
        Some("password") => {
            let (Some(user), Some(password)) = (first(&form, "username"), first(&form, "password"))
            else {
                return Err(ApiError::new(
                    400,
                    ErrorCode::Unsupported,
                    "grant_type=password needs username and password",
                ));
            };
            let password = Secret::new(password);
            let caller = state.auth.login(user, password.expose(), ip).await?;
            let issued = state.auth.issue_token(&caller, &scopes, offline).await?;
            log_issue(&caller, &issued);
            issued
        }
        Some("refresh_token") => {
            let Some(refresh) = first(&form, "refresh_token") else {
                return Err(ApiError::new(
                    400,
                    ErrorCode::Unsupported,
                    "grant_type=refresh_token needs refresh_token",
                ));
            };
            let mut issued = state.auth.refresh(refresh, &scopes).await?;
            if issued.refresh.is_none() {
                // Hand the same refresh token back, as OAuth2 clients expect a value.
                issued.refresh = Some(bulwark_auth::RefreshToken {
                    token: Secret::new(refresh),
                    expires_in: 0,
                });
            }
            issued
        }
        other => {
            return Err(ApiError::new(
                400,
                ErrorCode::Unsupported,
                format!(
                    "unsupported grant_type {:?}; use password or refresh_token",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    let scope = scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let token = issued.token.token.expose();
    Ok(Json(OAuthTokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: issued.token.expires_in,
        issued_at: &issued.token.issued_at,
        scope,
        refresh_token: issued.refresh.as_ref().map(|r| r.token.expose()),
    })
    .into_response())
}
