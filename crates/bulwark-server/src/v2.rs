//! The `/v2/` distribution API: one fallback handler that parses the endpoint and dispatches.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_core::ByteStream;
use bulwark_core::registry::Page;
use bulwark_oci::{ByteRange, Digest, Endpoint, Method, RangeError, RepoName, media_types};
use futures::TryStreamExt;
use serde::Serialize;

use crate::{ApiError, AppState, auth};
use bulwark_auth::service::{AuthError, Caller};
use bulwark_auth::{Action, Denied};

type ApiResult = Result<Response, ApiError>;

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_FILTERS: HeaderName = HeaderName::from_static("oci-filters-applied");

pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if path != "/v2" && !path.starts_with("/v2/") {
        return ApiError::new(404, bulwark_oci::ErrorCode::Unsupported, "not found")
            .into_response();
    }
    let mut resp = match handle(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn handle(state: AppState, req: Request) -> ApiResult {
    let method = Method::from_str_upper(req.method().as_str());
    let endpoint = Endpoint::parse(method, req.uri().path(), req.uri().query())?;
    let ip = auth::peer_ip(&req);
    let (parts, body) = req.into_parts();
    let reg = &state.registry;
    let headers = &parts.headers;
    let caller = auth::authenticate(&state, headers, ip).await?;
    let may_push = check_access(&state, headers, &caller, &endpoint).await?;
    match endpoint {
        Endpoint::Base => Ok(json_response(StatusCode::OK, &serde_json::json!({}))),
        Endpoint::Catalog { page } => {
            let p = reg.catalog(page.n, page.last.as_deref()).await?;
            let link = next_link("/v2/_catalog", page.n, &p);
            #[derive(Serialize)]
            struct Catalog<'a> {
                repositories: &'a [String],
            }
            let mut resp = json_response(
                StatusCode::OK,
                &Catalog {
                    repositories: &p.items,
                },
            );
            add_link(&mut resp, link);
            Ok(resp)
        }
        Endpoint::ListTags { name, page } => {
            let p = reg.list_tags(&name, page.n, page.last.as_deref()).await?;
            let link = next_link(&format!("/v2/{name}/tags/list"), page.n, &p);
            #[derive(Serialize)]
            struct Tags<'a> {
                name: &'a str,
                tags: &'a [String],
            }
            let mut resp = json_response(
                StatusCode::OK,
                &Tags {
                    name: name.as_str(),
                    tags: &p.items,
                },
            );
            add_link(&mut resp, link);
            Ok(resp)
        }
        Endpoint::GetManifest {
            name,
            reference,
            head,
        } => {
            let m = reg.get_manifest(&name, &reference).await?;
            crate::trust::check_manifest(&state, &caller, may_push, &name, &m).await?;
            let len = m.content.len();
            let body = if head {
                Body::empty()
            } else {
                Body::from(m.content)
            };
            Ok(with_headers(
                StatusCode::OK,
                body,
                [
                    (header::CONTENT_TYPE, hv(&m.media_type)),
                    (header::CONTENT_LENGTH, HeaderValue::from(len)),
                    (CONTENT_DIGEST, hv(&m.digest.to_string())),
                ],
            ))
        }
        Endpoint::PutManifest { name, reference } => {
            let limit = reg.config().max_manifest_bytes;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = read_limited(body, limit).await?;
            let pushed = reg
                .put_manifest(&name, &reference, content_type.as_deref(), bytes.clone())
                .await?;
            crate::scan::on_push(
                &state,
                &name,
                &pushed.digest,
                content_type.as_deref(),
                &bytes,
            )
            .await;
            state.trust.content_changed();
            let mut resp = created(
                &format!("/v2/{name}/manifests/{}", pushed.digest),
                &pushed.digest,
            );
            if let Some(subject) = pushed.subject {
                resp.headers_mut()
                    .insert(OCI_SUBJECT, hv(&subject.to_string()));
            }
            Ok(resp)
        }
        Endpoint::DeleteManifest { name, reference } => {
            reg.delete_manifest(&name, &reference).await?;
            state.trust.content_changed();
            Ok(empty(StatusCode::ACCEPTED))
        }
        Endpoint::GetBlob { name, digest, head } => {
            crate::trust::check_blob(&state, &caller, Some(may_push), &name, &digest).await?;
            get_blob(&state, &name, &digest, head, headers).await
        }
        Endpoint::DeleteBlob { name, digest } => {
            reg.delete_blob(&name, &digest).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        Endpoint::StartUpload {
            name,
            digest,
            mount,
        } => {
            if let Some(mount) = mount {
                let source = mount_source(&state, &caller, &mount.digest, mount.from).await?;
                if let Some(source) = source
                    && reg.mount_blob(&name, &mount.digest, Some(&source)).await?
                {
                    return Ok(created(
                        &format!("/v2/{name}/blobs/{}", mount.digest),
                        &mount.digest,
                    ));
                }
            } else if let Some(digest) = digest {
                reg.push_blob(&name, &digest, stream(body)).await?;
                return Ok(created(&format!("/v2/{name}/blobs/{digest}"), &digest));
            }
            let session = reg.start_upload(&name).await?;
            Ok(upload_response(StatusCode::ACCEPTED, &name, &session.id, 0))
        }
        Endpoint::UploadStatus { name, id } => {
            let session = reg.upload_status(&name, &id).await?;
            Ok(upload_response(
                StatusCode::NO_CONTENT,
                &name,
                &id,
                session.size,
            ))
        }
        Endpoint::PatchUpload { name, id } => {
            let range = match headers.get(header::CONTENT_RANGE) {
                None => None,
                Some(v) => Some(
                    v.to_str()
                        .ok()
                        .and_then(|s| ByteRange::parse_content_range(s).ok())
                        .ok_or_else(|| {
                            ApiError::from(bulwark_core::Error::UploadInvalid(
                                "malformed Content-Range".into(),
                            ))
                        })?,
                ),
            };
            let size = reg
                .patch_upload(&name, &id, range, content_length(headers), stream(body))
                .await?;
            Ok(upload_response(StatusCode::ACCEPTED, &name, &id, size))
        }
        Endpoint::PutUpload { name, id, digest } => {
            let body = match content_length(headers) {
                Some(0) => None,
                _ => Some(stream(body)),
            };
            reg.finish_upload(&name, &id, &digest, body).await?;
            Ok(created(&format!("/v2/{name}/blobs/{digest}"), &digest))
        }
        Endpoint::CancelUpload { name, id } => {
            reg.cancel_upload(&name, &id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        Endpoint::Referrers {
            name,
            digest,
            artifact_type,
        } => {
            let refs = reg
                .referrers(&name, &digest, artifact_type.as_deref())
                .await?;
            let manifests: Vec<serde_json::Value> = refs
                .into_iter()
                .map(|r| {
                    let mut d = serde_json::json!({
                        "mediaType": r.media_type,
                        "digest": r.digest.to_string(),
                        "size": r.size,
                    });
                    if let Some(t) = r.artifact_type {
                        d["artifactType"] = t.into();
                    }
                    if let Some(a) = r.annotations.and_then(|a| serde_json::from_str(&a).ok()) {
                        d["annotations"] = a;
                    }
                    d
                })
                .collect();
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_types::OCI_INDEX,
                "manifests": manifests,
            });
            let mut resp = json_response(StatusCode::OK, &index);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(media_types::OCI_INDEX),
            );
            if artifact_type.is_some() {
                resp.headers_mut()
                    .insert(OCI_FILTERS, HeaderValue::from_static("artifactType"));
            }
            Ok(resp)
        }
    }
}

/// Refuse before dispatch anything the caller may not do. Unknown repositories are checked like
/// existing ones, so a refusal says nothing about whether the repository exists. For pulls,
/// also answers whether the caller may push there (trust policies exempt publishers by
/// default), from the same permission lookup.
async fn check_access(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    endpoint: &Endpoint,
) -> Result<bool, ApiError> {
    match endpoint {
        Endpoint::Base if caller.is_anonymous() && caller.claims.is_none() => Err(auth::challenge(
            state,
            headers,
            None,
            None,
            "authentication required",
        )),
        Endpoint::Base => Ok(false),
        Endpoint::Catalog { .. } if state.auth.may_list_catalog(caller) => Ok(false),
        Endpoint::Catalog { .. } => {
            let denied = Denied::System {
                what: "listing the whole catalog",
            };
            Err(auth::denied(
                state,
                headers,
                caller,
                "registry:catalog:*".into(),
                &denied,
            ))
        }
        _ => {
            let Some((repo, actions)) = auth::required_actions(endpoint) else {
                return Ok(false);
            };
            if actions == [Action::Pull] {
                let allowed = state
                    .auth
                    .allowed(caller, repo, &[Action::Pull, Action::Push])
                    .await?;
                if allowed.contains(&Action::Pull) {
                    return Ok(allowed.contains(&Action::Push));
                }
            }
            match state.auth.authorize(caller, repo, actions).await {
                Ok(_) => Ok(false),
                Err(AuthError::Denied(d)) => Err(auth::denied(
                    state,
                    headers,
                    caller,
                    auth::scope_for(repo, actions),
                    &d,
                )),
                Err(e) => Err(ApiError::from(e)),
            }
        }
    }
}

/// The repository a cross-repository mount may take the blob from: `from` when the caller may
/// pull it, or (without `from`) the first repository holding the blob that the caller may pull.
/// `None` turns the mount into an ordinary upload session, as the spec allows.
async fn mount_source(
    state: &AppState,
    caller: &Caller,
    digest: &Digest,
    from: Option<RepoName>,
) -> Result<Option<RepoName>, ApiError> {
    let candidates = match from {
        Some(from) => vec![from],
        None => state
            .registry
            .repositories_with_blob(digest)
            .await?
            .iter()
            .filter_map(|r| RepoName::parse(r).ok())
            .collect(),
    };
    for repo in candidates {
        match state.auth.authorize(caller, &repo, &[Action::Pull]).await {
            // A blob the trust policy would not hand out cannot be mounted elsewhere either.
            Ok(_)
                if crate::trust::check_blob(state, caller, None, &repo, digest)
                    .await
                    .is_err() => {}
            Ok(_) => return Ok(Some(repo)),
            Err(AuthError::Denied(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

async fn get_blob(
    state: &AppState,
    name: &RepoName,
    digest: &Digest,
    head: bool,
    headers: &HeaderMap,
) -> ApiResult {
    let reg = &state.registry;
    let size = reg.stat_blob(name, digest).await?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => match ByteRange::parse_range(v, size) {
            Ok(r) => Some(r),
            // An unparseable Range is ignored (RFC 9110), the whole blob is served.
            Err(RangeError::Malformed) => None,
            Err(RangeError::Unsatisfiable) => {
                return Ok(with_headers(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    Body::empty(),
                    [
                        (header::CONTENT_RANGE, hv(&format!("bytes */{size}"))),
                        (CONTENT_DIGEST, hv(&digest.to_string())),
                    ],
                ));
            }
        },
    };
    if !head && let Some(url) = reg.blob_download_url(digest).await? {
        // The object store serves the bytes (and any Range) itself; the permission check has
        // already passed, and the URL expires shortly.
        return Ok(with_headers(
            StatusCode::TEMPORARY_REDIRECT,
            Body::empty(),
            [
                (header::LOCATION, hv(&url)),
                (CONTENT_DIGEST, hv(&digest.to_string())),
            ],
        ));
    }
    let (status, len) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.len()),
        None => (StatusCode::OK, size),
    };
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(reg.stream_blob(digest, range).await?)
    };
    let mut resp = with_headers(
        status,
        body,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
            (CONTENT_DIGEST, hv(&digest.to_string())),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        ],
    );
    if let Some(r) = range {
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {}-{}/{size}", r.start, r.end)),
        );
    }
    Ok(resp)
}

fn stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

async fn read_limited(body: Body, limit: u64) -> Result<bytes::Bytes, ApiError> {
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let too_large =
        |size: u64| ApiError::from(bulwark_core::Error::ManifestTooLarge { size, limit });
    let bytes = axum::body::to_bytes(body, limit_usize.saturating_add(1))
        .await
        .map_err(|e| {
            if is_length_limit(&e) {
                too_large(limit.saturating_add(1))
            } else {
                // A client that went away or sent a broken chunked body: not a size problem.
                ApiError::from(bulwark_core::Error::ManifestInvalid(format!(
                    "reading the manifest body failed: {e}"
                )))
            }
        })?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn with_headers<const N: usize>(
    status: StatusCode,
    body: Body,
    headers: [(HeaderName, HeaderValue); N],
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    for (k, v) in headers {
        resp.headers_mut().insert(k, v);
    }
    resp
}

fn empty(status: StatusCode) -> Response {
    with_headers(
        status,
        Body::empty(),
        [(header::CONTENT_LENGTH, HeaderValue::from(0))],
    )
}

fn created(location: &str, digest: &Digest) -> Response {
    with_headers(
        StatusCode::CREATED,
        Body::empty(),
        [
            (header::LOCATION, hv(location)),
            (CONTENT_DIGEST, hv(&digest.to_string())),
            (header::CONTENT_LENGTH, HeaderValue::from(0)),
        ],
    )
}

fn upload_response(status: StatusCode, name: &RepoName, id: &str, size: u64) -> Response {
    with_headers(
        status,
        Body::empty(),
        [
            (
                header::LOCATION,
                hv(&format!("/v2/{name}/blobs/uploads/{id}")),
            ),
            (header::RANGE, hv(&format!("0-{}", size.saturating_sub(1)))),
            (UPLOAD_UUID, hv(id)),
            (header::CONTENT_LENGTH, HeaderValue::from(0)),
        ],
    )
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_headers(
        status,
        Body::from(body),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
    )
}

fn next_link(path: &str, n: Option<usize>, page: &Page) -> Option<String> {
    let (n, last) = (n?, page.items.last()?);
    if !page.more {
        return None;
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("n", &n.to_string())
        .append_pair("last", last)
        .finish();
    Some(format!("<{path}?{query}>; rel=\"next\""))
}

fn add_link(resp: &mut Response, link: Option<String>) {
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, hv(&l));
    }
}
