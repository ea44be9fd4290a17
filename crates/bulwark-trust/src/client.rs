//! A small OCI distribution client: just what signing and verifying need (resolve a tag,
//! read and push manifests and blobs, list referrers) against any registry.
//!
//! Authentication follows the registry's challenge: requests go out anonymously until a
//! `401` says `WWW-Authenticate: Basic …` (then Basic credentials are sent from there on) or
//! `Bearer realm=…,service=…,scope=…` (then a token is fetched from the realm with the Basic
//! credentials, or anonymously, and the request is retried with it). Every response body is
//! read with a size bound.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use crate::cosign::{Descriptor, sha256_digest};
use crate::simple_signing::is_sha256_digest;

/// Manifest media types asked for when resolving a reference.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
/// Upper bound on a manifest or referrers index read from a registry.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
const MAX_ERROR_BODY: usize = 4096;
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid image reference {0:?}: expected REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST]")]
    BadReference(String),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("registry protocol error: {0}")]
    Protocol(String),
    #[error("response from {0} is larger than {1} bytes")]
    TooLarge(String, usize),
}

/// What an image reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) | Reference::Digest(t) => t,
        }
    }
}

/// `REGISTRY/REPOSITORY[:TAG|@DIGEST]` (the tag defaults to `latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]`.
    pub registry: String,
    pub repository: String,
    pub reference: Reference,
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadReference(s.to_owned());
        let (registry, rest) = s.split_once('/').ok_or_else(bad)?;
        if registry.is_empty() || registry.contains(['@', ' ']) {
            return Err(bad());
        }
        let (repository, reference) = if let Some((repo, digest)) = rest.split_once('@') {
            if !is_sha256_digest(digest) {
                return Err(bad());
            }
            (repo, Reference::Digest(digest.to_owned()))
        } else {
            let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
            match rest[last_slash..].find(':') {
                Some(colon) => {
                    let (repo, tag) = rest.split_at(last_slash + colon);
                    (repo, Reference::Tag(tag[1..].to_owned()))
                }
                None => (rest, Reference::Tag("latest".to_owned())),
            }
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        let tag_ok = match &reference {
            Reference::Tag(t) => {
                !t.is_empty()
                    && t.len() <= 128
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            }
            Reference::Digest(_) => true,
        };
        if !repo_ok || !tag_ok {
            return Err(bad());
        }
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            reference,
        })
    }

    /// `registry/repository`, the `docker-reference` cosign signs.
    pub fn docker_reference(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reference {
            Reference::Tag(t) => write!(f, "{}/{}:{t}", self.registry, self.repository),
            Reference::Digest(d) => write!(f, "{}/{}@{d}", self.registry, self.repository),
        }
    }
}

/// Username and password (or token) for the registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

#[derive(Default)]
struct AuthState {
    bearer: Option<String>,
    basic: bool,
}

/// A client for one registry.
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
}

/// A manifest as fetched: bytes, Content-Type and digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

impl FetchedManifest {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    }
}

impl RegistryClient {
    /// A client for `registry` (`host[:port]`) over HTTPS, or HTTP with `plain_http`.
    pub fn new(
        registry: &str,
        plain_http: bool,
        credentials: Option<Credentials>,
    ) -> Result<Self, ClientError> {
        let scheme = if plain_http { "http" } else { "https" };
        let http = reqwest::Client::builder()
            .user_agent(concat!("bulwark-trust/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        Ok(RegistryClient {
            base: format!("{scheme}://{registry}"),
            http,
            credentials,
            auth: Mutex::new(AuthState::default()),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth_header(&self) -> Option<String> {
        let state = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = &state.bearer {
            return Some(format!("Bearer {token}"));
        }
        if state.basic {
            return self.basic_header();
        }
        None
    }

    fn basic_header(&self) -> Option<String> {
        self.credentials.as_ref().map(|c| {
            let encoded = B64.encode(format!("{}:{}", c.username, c.password));
            format!("Basic {encoded}")
        })
    }

    /// Sends a request, answering one authentication challenge. `scope` is the token scope
    /// the operation needs (`repository:<name>:pull` or `…:pull,push`).
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(reqwest::header::HeaderName, &str)],
        body: Option<&[u8]>,
        scope: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let mut answered_challenge = false;
        loop {
            let mut request = self.http.request(method.clone(), url);
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            if let Some(auth) = self.auth_header() {
                request = request.header(AUTHORIZATION, auth);
            }
            if let Some(body) = body {
                request = request.body(body.to_vec());
            }
            let response = request.send().await?;
            if response.status() != StatusCode::UNAUTHORIZED || answered_challenge {
                return Ok(response);
            }
            answered_challenge = true;
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default();
            let (scheme, params) = parse_challenge(&challenge);
            if scheme.eq_ignore_ascii_case("basic") {
                if self.credentials.is_none() {
                    return Err(ClientError::Auth(format!(
                        "{url} needs credentials (--username and BULWARK_PASSWORD)"
                    )));
                }
                self.auth.lock().unwrap_or_else(|e| e.into_inner()).basic = true;
            } else if scheme.eq_ignore_ascii_case("bearer") {
                let token = self.fetch_token(&params, scope).await?;
                self.auth.lock().unwrap_or_else(|e| e.into_inner()).bearer = Some(token);
            } else {
                return Ok(response);
            }
        }
    }

    async fn fetch_token(
        &self,
        params: &[(String, String)],
        scope: &str,
    ) -> Result<String, ClientError> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let realm = param("realm")
            .ok_or_else(|| ClientError::Auth("Bearer challenge without a realm".to_owned()))?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(ClientError::Auth(format!(
                "token realm {realm:?} is not a URL"
            )));
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = param("service") {
            query.push(("service", service));
        }
        query.push(("scope", scope));
        if let Some(challenge_scope) = param("scope")
            && challenge_scope != scope
        {
            query.push(("scope", challenge_scope));
        }
        let mut request = self.http.get(realm).query(&query);
        if let Some(basic) = self.basic_header() {
            request = request.header(AUTHORIZATION, basic);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = read_bounded(response, MAX_TOKEN_BYTES, realm).await?;
        if !status.is_success() {
            return Err(ClientError::Auth(format!(
                "token endpoint {realm} answered {status}: {}",
                lossy(&body, MAX_ERROR_BODY)
            )));
        }
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ClientError::Auth(format!("token response is not JSON: {e}")))?;
        value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Auth("token response has no token".to_owned()))
    }

    async fn expect_success(
        method: &Method,
        url: &str,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, ClientError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = read_bounded(response, MAX_ERROR_BODY, url)
            .await
            .map(|b| lossy(&b, MAX_ERROR_BODY))
            .unwrap_or_default();
        Err(ClientError::Status {
            method: method.to_string(),
            url: url.to_owned(),
            status,
            body,
        })
    }

    /// Fetches a manifest by tag or digest; `None` on 404. A manifest fetched by digest is
    /// checked against it.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, ClientError> {
        self.get_manifest_scoped(repository, reference, &pull_scope(repository))
            .await
    }

    async fn get_manifest_scoped(
        &self,
        repository: &str,
        reference: &str,
        scope: &str,
    ) -> Result<Option<FetchedManifest>, ClientError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let response = self
            .send(Method::GET, &url, &[(ACCEPT, MANIFEST_ACCEPT)], None, scope)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = Self::expect_success(&Method::GET, &url, response).await?;
        let media_type = content_type(response.headers());
        let bytes = read_bounded(response, MAX_MANIFEST_BYTES, &url).await?;
        let digest = sha256_digest(&bytes);
        if is_sha256_digest(reference) && digest != reference {
            return Err(ClientError::Protocol(format!(
                "{url} returned content with digest {digest}"
            )));
        }
        let media_type = media_type
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
            })
            .ok_or_else(|| {
                ClientError::Protocol(format!("{url}: manifest without a media type"))
            })?;
        Ok(Some(FetchedManifest {
            bytes,
            media_type,
            digest,
        }))
    }

    /// [`Self::resolve`] with a token that may also push: what a signer needs, and what lets
    /// a publisher read an image that a trust policy keeps from pull-only clients.
    pub async fn resolve_for_push(&self, image: &ImageRef) -> Result<FetchedManifest, ClientError> {
        self.get_manifest_scoped(
            &image.repository,
            image.reference.as_str(),
            &push_scope(&image.repository),
        )
        .await?
        .ok_or_else(|| self.unknown_manifest(image))
    }

    fn unknown_manifest(&self, image: &ImageRef) -> ClientError {
        ClientError::Status {
            method: "GET".to_owned(),
            url: self.url(&format!(
                "/v2/{}/manifests/{}",
                image.repository,
                image.reference.as_str()
            )),
            status: 404,
            body: "manifest unknown".to_owned(),
        }
    }

    /// Resolves a reference to the manifest it names (fetching it: the digest is computed
    /// here, not taken from the registry's word).
    pub async fn resolve(&self, image: &ImageRef) -> Result<FetchedManifest, ClientError> {
        self.get_manifest(&image.repository, image.reference.as_str())
            .await?
            .ok_or_else(|| self.unknown_manifest(image))
    }

    /// PUTs a manifest under `reference` (a tag or its digest) and returns its digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, ClientError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let response = self
            .send(
                Method::PUT,
                &url,
                &[(CONTENT_TYPE, media_type)],
                Some(bytes),
                &push_scope(repository),
            )
            .await?;
        Self::expect_success(&Method::PUT, &url, response).await?;
        Ok(sha256_digest(bytes))
    }

    /// Uploads `bytes` as a blob unless the repository already has it; returns its digest.
    pub async fn push_blob(&self, repository: &str, bytes: &[u8]) -> Result<String, ClientError> {
        let digest = sha256_digest(bytes);
        let scope = push_scope(repository);
        let head_url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let head = self
            .send(Method::HEAD, &head_url, &[], None, &scope)
            .await?;
        if head.status() == StatusCode::OK {
            return Ok(digest);
        }
        let start_url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let started = self
            .send(Method::POST, &start_url, &[], None, &scope)
            .await?;
        let started = Self::expect_success(&Method::POST, &start_url, started).await?;
        let location = started
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol("upload started without a Location".to_owned()))?;
        let mut put_url = if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else if location.starts_with('/') {
            self.url(location)
        } else {
            return Err(ClientError::Protocol(format!(
                "upload Location {location:?} is not a URL or absolute path"
            )));
        };
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(&digest);
        let done = self
            .send(
                Method::PUT,
                &put_url,
                &[(CONTENT_TYPE, "application/octet-stream")],
                Some(bytes),
                &scope,
            )
            .await?;
        Self::expect_success(&Method::PUT, &put_url, done).await?;
        Ok(digest)
    }

    /// Fetches a blob of at most `max` bytes and checks it against `digest`.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &str,
        max: usize,
    ) -> Result<Vec<u8>, ClientError> {
        if !is_sha256_digest(digest) {
            return Err(ClientError::Protocol(format!(
                "unsupported digest {digest:?}"
            )));
        }
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let response = self
            .send(Method::GET, &url, &[], None, &pull_scope(repository))
            .await?;
        let response = Self::expect_success(&Method::GET, &url, response).await?;
        let bytes = read_bounded(response, max, &url).await?;
        if sha256_digest(&bytes) != digest {
            return Err(ClientError::Protocol(format!(
                "{url} returned content that does not match its digest"
            )));
        }
        Ok(bytes)
    }

    /// The referrers of `digest` (OCI 1.1 referrers API), filtered by `artifact_type`.
    /// An empty list when the registry has no referrers API (404).
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, ClientError> {
        let mut url = self.url(&format!("/v2/{repository}/referrers/{digest}"));
        if let Some(t) = artifact_type {
            url.push_str("?artifactType=");
            url.push_str(&percent_encode(t));
        }
        let response = self
            .send(Method::GET, &url, &[], None, &pull_scope(repository))
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let response = Self::expect_success(&Method::GET, &url, response).await?;
        let bytes = read_bounded(response, MAX_MANIFEST_BYTES, &url).await?;
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("referrers index: {e}")))?;
        Ok(index
            .manifests
            .into_iter()
            .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
            .collect())
    }
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn lossy(bytes: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    s.truncate(s.trim_end().len());
    s
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, ClientError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(ClientError::TooLarge(what.to_owned(), max));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > max {
            return Err(ClientError::TooLarge(what.to_owned(), max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Splits `Scheme k="v", k2=v2` into the scheme and its parameters; quoted values may hold
/// commas and backslash escapes.
pub fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => break,
                        _ => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        params.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    (scheme.to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_with_commas_in_quotes() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="http://r/token",service="bulwark",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            vec![
                ("realm".to_owned(), "http://r/token".to_owned()),
                ("service".to_owned(), "bulwark".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull,push".to_owned()),
            ]
        );
    }

    #[test]
    fn image_refs() {
        let r = ImageRef::parse("127.0.0.1:5000/team/app:v1").ok();
        assert_eq!(
            r,
            Some(ImageRef {
                registry: "127.0.0.1:5000".to_owned(),
                repository: "team/app".to_owned(),
                reference: Reference::Tag("v1".to_owned()),
            })
        );
        let r = ImageRef::parse("reg.example/app").ok();
        assert_eq!(
            r.map(|r| r.reference),
            Some(Reference::Tag("latest".to_owned()))
        );
        assert!(ImageRef::parse("app").is_err());
        assert!(ImageRef::parse("reg/App").is_err());
        assert!(ImageRef::parse("reg/app@sha256:zz").is_err());
    }
}
