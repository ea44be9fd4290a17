//! Test support: runs the real `bulwark` binary on a loopback port with a temporary data dir,
//! and a few small client helpers (a std-only HTTP/1.1 client, blob and manifest pushes,
//! deterministic test data, digests, error bodies and `Link` headers).
//!
//! Access control is on: every server starts with the admin [`ADMIN_USER`] /
//! [`ADMIN_PASSWORD`], and requests go out as that admin unless they say otherwise ([`Auth`],
//! [`TestServer::request_as`], [`http_request_as`]). [`TestServer`] also has helpers for the
//! token endpoint and the `/api/v1` management API.
//!
//! Everything here exists to make integration tests fail loudly and early, so panicking on
//! an unexpected answer is the intended behaviour rather than an error path.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod api;
mod http;
pub mod scale;
mod server;

pub use api::{PersonalToken, Robot};
pub use http::{Auth, HttpResponse, http_request, http_request_as, loopback_addr, request_target};
pub use server::{TestServer, token_target};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The bootstrap administrator every [`TestServer`] has.
pub const ADMIN_USER: &str = "admin";
/// The administrator's password: `BULWARK_ADMIN_PASSWORD` of every [`TestServer`] (unless the
/// `envs` it is started with set another one).
pub const ADMIN_PASSWORD: &str = "testkit-Adm1n-pw-7f3c9e";

/// `Basic <base64(user:password)>`, an `Authorization` header value.
pub fn basic_header(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// Percent-encodes everything but unreserved characters, for a query value.
pub fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `n` pseudo-random bytes, the same for the same `seed` (splitmix64).
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Pushes `bytes` as a blob into `repo` with a monolithic POST + PUT and returns its digest.
/// `base` is a server's `base_url()`. Panics unless the registry answers 202 then 201.
pub fn push_blob(base: &str, repo: &str, bytes: &[u8]) -> String {
    push_blob_as(base, Auth::Admin, repo, bytes)
}

/// [`push_blob`] with the given credentials.
pub fn push_blob_as(base: &str, auth: Auth<'_>, repo: &str, bytes: &[u8]) -> String {
    let addr = loopback_addr(base);
    let digest = sha256_digest(bytes);
    let started = http_request_as(
        addr,
        auth,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        &[],
    )
    .unwrap_or_else(|e| panic!("POST upload in {repo}: {e}"));
    assert_eq!(
        started.status,
        202,
        "POST /v2/{repo}/blobs/uploads/ answered {}: {}",
        started.status,
        started.text()
    );
    let location = started
        .header("location")
        .unwrap_or_else(|| panic!("POST /v2/{repo}/blobs/uploads/ answered without Location"));
    let target = with_query(&request_target(addr, location), "digest", &digest);
    let done = http_request_as(
        addr,
        auth,
        "PUT",
        &target,
        &[("Content-Type", "application/octet-stream")],
        bytes,
    )
    .unwrap_or_else(|e| panic!("PUT {target}: {e}"));
    assert_eq!(
        done.status,
        201,
        "PUT {target} answered {}: {}",
        done.status,
        done.text()
    );
    digest
}

/// PUTs a manifest to `/v2/<repo>/manifests/<reference>` with `media_type` as Content-Type and
/// returns its digest. Panics unless the registry answers 201.
pub fn push_manifest(
    base: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    push_manifest_as(base, Auth::Admin, repo, reference, media_type, bytes)
}

/// [`push_manifest`] with the given credentials.
pub fn push_manifest_as(
    base: &str,
    auth: Auth<'_>,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> String {
    let addr = loopback_addr(base);
    let target = format!("/v2/{repo}/manifests/{reference}");
    let headers = [("Content-Type", media_type)];
    let resp = http_request_as(addr, auth, "PUT", &target, &headers, bytes)
        .unwrap_or_else(|e| panic!("PUT {target}: {e}"));
    assert_eq!(
        resp.status,
        201,
        "PUT {target} answered {}: {}",
        resp.status,
        resp.text()
    );
    sha256_digest(bytes)
}

/// Appends `key=value` to a URL or request target that may already carry a query.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// The `code`s of an OCI error body `{"errors":[{"code":..}]}`; empty when the body is not one.
pub fn error_codes(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    value["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The target of the `rel="next"` link in a `Link` header value, if there is one.
pub fn next_link(link_header: &str) -> Option<String> {
    link_header.split(',').find_map(|link| {
        let link = link.trim();
        let (target, params) = link.strip_prefix('<')?.split_once('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_is_deterministic_and_seeded() {
        assert_eq!(random_bytes(7, 100), random_bytes(7, 100));
        assert_ne!(random_bytes(7, 100), random_bytes(8, 100));
        assert_eq!(random_bytes(7, 13).len(), 13);
        assert_eq!(&random_bytes(7, 100)[..13], &random_bytes(7, 13)[..]);
    }

    #[test]
    fn digest_of_empty_json_object() {
        assert_eq!(
            sha256_digest(b"{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn next_link_parsing() {
        assert_eq!(
            next_link("</v2/a/tags/list?n=2&last=b>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link("</x>; rel=\"prev\""), None);
        assert_eq!(
            next_link("</x>; rel=\"prev\", </y>; rel=\"next\"").as_deref(),
            Some("/y")
        );
    }

    #[test]
    fn error_codes_parsing() {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"m"},{"code":"X"}]}"#;
        assert_eq!(error_codes(body), vec!["BLOB_UNKNOWN", "X"]);
        assert!(error_codes(b"not json").is_empty());
    }

    #[test]
    fn basic_header_and_query_encoding() {
        assert_eq!(
            basic_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(
            query_encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn query_appending() {
        assert_eq!(with_query("/u/1", "digest", "d"), "/u/1?digest=d");
        assert_eq!(with_query("/u/1?s=x", "digest", "d"), "/u/1?s=x&digest=d");
    }
}
