//! Authentication at the edge: who the caller is (from `Authorization`), which actions each
//! `/v2` endpoint needs, and the 401 challenge / 403 denial that tells a client what to do.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bulwark_auth::service::{AuthError, Caller};
use bulwark_auth::{Action, Denied};
use bulwark_oci::{Endpoint, ErrorCode, RepoName};

use crate::{ApiError, AppState};

/// The actions an endpoint needs on its repository; `None` for endpoints that are not about one
/// repository (base and catalog are handled by the caller). No wildcard arm: a new endpoint
/// must be classified here before it compiles.
pub fn required_actions(endpoint: &Endpoint) -> Option<(&RepoName, &'static [Action])> {
    const PULL: &[Action] = &[Action::Pull];
    const PUSH: &[Action] = &[Action::Pull, Action::Push];
    const DELETE: &[Action] = &[Action::Delete];
    match endpoint {
        Endpoint::Base | Endpoint::Catalog { .. } => None,
        Endpoint::ListTags { name, .. }
        | Endpoint::GetManifest { name, .. }
        | Endpoint::GetBlob { name, .. }
        | Endpoint::Referrers { name, .. } => Some((name, PULL)),
        Endpoint::PutManifest { name, .. }
        | Endpoint::StartUpload { name, .. }
        | Endpoint::UploadStatus { name, .. }
        | Endpoint::PatchUpload { name, .. }
        | Endpoint::PutUpload { name, .. }
        | Endpoint::CancelUpload { name, .. } => Some((name, PUSH)),
        Endpoint::DeleteManifest { name, .. } | Endpoint::DeleteBlob { name, .. } => {
            Some((name, DELETE))
        }
    }
}

/// The peer address the connection came from (unspecified when the router runs without
/// connect info, e.g. in unit tests).
pub fn peer_ip<B>(req: &Request<B>) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Decoded HTTP Basic credentials.
pub struct BasicCredentials {
    pub username: String,
    pub password: String,
}

/// Parse `Authorization: Basic …`; `Ok(None)` when the header is absent or another scheme.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            400,
            ErrorCode::Unauthorized,
            "malformed Authorization header",
        )
    };
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some(BasicCredentials {
        username: username.to_owned(),
        password: password.to_owned(),
    }))
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

/// Who is calling: a Bearer access token, Basic credentials, or nobody. Invalid credentials are
/// an error (never silently anonymous).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    if let Some(token) = bearer_token(headers) {
        return state
            .auth
            .verify_access_token(token)
            .await
            .map_err(|e| challenge_error(state, headers, e, None));
    }
    match basic_credentials(headers)? {
        Some(c) => state
            .auth
            .login(&c.username, &c.password, ip)
            .await
            .map_err(|e| challenge_error(state, headers, e, None)),
        None => Ok(Caller::anonymous()),
    }
}

/// The token realm: configured, or this server's own `/token` on the host the client used.
pub fn realm(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(r) = &state.settings.realm {
        return r.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = if state.settings.tls { "https" } else { "http" };
    format!("{scheme}://{host}/token")
}

/// A 401 with `WWW-Authenticate: Bearer realm=…,service=…[,scope=…][,error=…]`.
pub fn challenge(
    state: &AppState,
    headers: &HeaderMap,
    scope: Option<String>,
    error: Option<&str>,
    message: &str,
) -> ApiError {
    let mut value = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        realm(state, headers),
        state.auth.config().service
    );
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Some(error) = error {
        value.push_str(&format!(",error=\"{error}\""));
    }
    let mut err = ApiError::new(401, ErrorCode::Unauthorized, message);
    if let Ok(v) = HeaderValue::from_str(&value) {
        err = err.with_header(header::WWW_AUTHENTICATE, v);
    }
    err
}

/// Map an authentication or authorisation failure to the response a client can act on.
pub fn challenge_error(
    state: &AppState,
    headers: &HeaderMap,
    e: AuthError,
    scope: Option<String>,
) -> ApiError {
    match e {
        AuthError::InvalidCredentials => challenge(
            state,
            headers,
            scope,
            None,
            "authentication required: invalid username or password",
        ),
        AuthError::Token(t) => challenge(
            state,
            headers,
            scope,
            Some("invalid_token"),
            &format!("authentication required: {t}"),
        ),
        other => ApiError::from(other),
    }
}

/// The response for a failed permission check: anonymous callers and token holders get a
/// challenge naming the scope they need; authenticated users and robots get 403 DENIED.
pub fn denied(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    scope: String,
    denied: &Denied,
) -> ApiError {
    if caller.is_anonymous() && caller.claims.is_none() {
        challenge(state, headers, Some(scope), None, "authentication required")
    } else if caller.claims.is_some() {
        challenge(
            state,
            headers,
            Some(scope),
            Some("insufficient_scope"),
            &denied.to_string(),
        )
    } else {
        ApiError::new(403, ErrorCode::Denied, denied.to_string())
    }
}

/// The scope string a client should request for `actions` on `repo`.
pub fn scope_for(repo: &RepoName, actions: &[Action]) -> String {
    let list: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    format!("repository:{repo}:{}", list.join(","))
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => {
                ApiError::new(401, ErrorCode::Unauthorized, e.to_string())
            }
            AuthError::RateLimited(retry) => {
                let mut err = ApiError::new(429, ErrorCode::TooManyRequests, e.to_string());
                if let Ok(v) = HeaderValue::from_str(&retry.0.to_string()) {
                    err = err.with_header(header::RETRY_AFTER, v);
                }
                err
            }
            AuthError::Token(_) => ApiError::new(401, ErrorCode::Unauthorized, e.to_string()),
            AuthError::Denied(_) => ApiError::new(403, ErrorCode::Denied, e.to_string()),
            AuthError::Invalid(_) => ApiError::new(400, ErrorCode::Unsupported, e.to_string()),
            AuthError::NotFound(_) => ApiError::new(404, ErrorCode::NameUnknown, e.to_string()),
            AuthError::Conflict(_) => ApiError::new(409, ErrorCode::Denied, e.to_string()),
            AuthError::Store(_) | AuthError::Password(_) | AuthError::Internal(_) => {
                tracing::error!(error = %e, "internal error in access control");
                ApiError::new(500, ErrorCode::Unknown, "internal server error")
            }
        }
    }
}
