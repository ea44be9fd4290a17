//! A minimal OCI distribution client: monolithic and chunked blob pushes, manifest push and
//! pull, streamed blob pulls with digest verification, and the auth flow of [`crate::auth`].

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use sha2::{Digest as _, Sha256};

use crate::auth::{Authenticator, is_loopback_url, snippet};
use crate::data::{self, Blob, MANIFEST_ACCEPT, OCI_MANIFEST};

const CONTENT_DIGEST: &str = "docker-content-digest";
const OCTET_STREAM: &str = "application/octet-stream";

pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Authenticator,
}

/// Token scope for a repository.
pub fn scope(repo: &str, push: bool) -> String {
    if push {
        format!("repository:{repo}:pull,push")
    } else {
        format!("repository:{repo}:pull")
    }
}

async fn fail(what: &str, resp: Response) -> anyhow::Error {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    anyhow!("{what}: unexpected {status}: {}", snippet(&body))
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl Client {
    /// Builds the client and probes `GET /v2/`, learning the auth challenge if there is one.
    pub async fn connect(base: &str, creds: Option<(String, String)>, pool: usize) -> Result<Self> {
        let base = Url::parse(base).with_context(|| format!("--url {base:?}"))?;
        if !is_loopback_url(&base) {
            bail!("--url must be a loopback address (127.0.0.0/8, ::1, localhost), got {base}");
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool.max(1))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(600))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::custom(|a| {
                if a.previous().len() < 5 && is_loopback_url(a.url()) {
                    a.follow()
                } else {
                    a.stop()
                }
            }))
            .build()?;
        let client = Client {
            http,
            base,
            auth: Authenticator::new(creds),
        };
        let url = client.url("/v2/")?;
        let resp = client
            .http
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("GET {url}: is the registry running?"))?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                let h = header_str(resp.headers(), "www-authenticate")
                    .ok_or_else(|| anyhow!("GET /v2/ answered 401 without WWW-Authenticate"))?;
                client.auth.learn(h, "")?;
            }
            _ => return Err(fail("GET /v2/", resp).await),
        }
        Ok(client)
    }

    /// `anonymous`, `basic` or `bearer`.
    pub fn auth_mode(&self) -> String {
        self.auth.mode()
    }

    fn url(&self, path: &str) -> Result<Url> {
        let u = self.base.join(path)?;
        if !is_loopback_url(&u) {
            bail!("refusing non-loopback URL {u}");
        }
        Ok(u)
    }

    /// Sends a request built by `build` with the right authorisation; on a 401 learns the
    /// challenge and retries once (the body must be rebuildable, so `build` is called again).
    async fn send(
        &self,
        scope: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        for attempt in 0..2 {
            let auth = self.auth.header_for(&self.http, scope).await?;
            let resp = auth.apply(build(&self.http)).send().await?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            let Some(h) = header_str(resp.headers(), "www-authenticate") else {
                return Ok(resp);
            };
            // A rejected token (expired, or too narrow a scope) or a first challenge: learn it
            // and go again once.
            self.auth.learn(h, scope)?;
        }
        Err(anyhow!("unreachable retry loop end"))
    }

    /// Sends a request whose body cannot be replayed (a stream): one attempt.
    async fn send_once(&self, scope: &str, rb: RequestBuilder) -> Result<Response> {
        let auth = self.auth.header_for(&self.http, scope).await?;
        Ok(auth.apply(rb).send().await?)
    }

    fn location(&self, resp: &Response) -> Result<Url> {
        let loc = header_str(resp.headers(), "location")
            .ok_or_else(|| anyhow!("{} response without Location", resp.status()))?;
        let u = self.base.join(loc)?;
        if !is_loopback_url(&u) {
            bail!("refusing non-loopback Location {u}");
        }
        Ok(u)
    }

    /// `POST /v2/<repo>/blobs/uploads/`: a new upload session's URL.
    pub async fn start_upload(&self, repo: &str) -> Result<Url> {
        let sc = scope(repo, true);
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let resp = self
            .send(&sc, |h| {
                h.post(url.clone()).header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(fail("start upload", resp).await);
        }
        self.location(&resp)
    }

    /// Monolithic push: POST for a session, then one PUT with the whole blob and its digest.
    pub async fn push_blob(&self, repo: &str, blob: &Blob) -> Result<()> {
        let sc = scope(repo, true);
        let mut url = self.start_upload(repo).await?;
        url.query_pairs_mut().append_pair("digest", &blob.digest);
        let resp = self
            .send(&sc, |h| {
                h.put(url.clone())
                    .header(header::CONTENT_TYPE, OCTET_STREAM)
                    .header(header::CONTENT_LENGTH, blob.data.len())
                    .body(blob.data.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(fail("blob PUT", resp).await);
        }
        check_digest_header(resp.headers(), &blob.digest)
    }

    /// Chunked push of `size` generated bytes: POST, PATCHes of `chunk` bytes streamed from the
    /// generator, then a PUT with the digest computed on the way. Returns the digest.
    pub async fn push_large(&self, repo: &str, size: u64, chunk: u64, seed: u64) -> Result<String> {
        let sc = scope(repo, true);
        let mut url = self.start_upload(repo).await?;
        let src = data::LargeSource::shared(seed);
        let mut offset = 0u64;
        while offset < size {
            let len = chunk.max(1).min(size - offset);
            let body = reqwest::Body::wrap_stream(data::chunk_stream(src.clone(), len));
            let rb = self
                .http
                .patch(url.clone())
                .header(header::CONTENT_TYPE, OCTET_STREAM)
                .header(header::CONTENT_LENGTH, len)
                .header(
                    header::CONTENT_RANGE,
                    format!("{offset}-{}", offset + len - 1),
                )
                .body(body);
            let resp = self.send_once(&sc, rb).await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(fail(&format!("PATCH at offset {offset}"), resp).await);
            }
            url = self.location(&resp)?;
            offset += len;
        }
        let digest = {
            let s = src.lock().map_err(|_| anyhow!("generator poisoned"))?;
            if s.produced() != size {
                bail!("generated {} bytes, wanted {size}", s.produced());
            }
            s.digest()
        };
        url.query_pairs_mut().append_pair("digest", &digest);
        let resp = self
            .send(&sc, |h| {
                h.put(url.clone()).header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(fail("final PUT", resp).await);
        }
        check_digest_header(resp.headers(), &digest)?;
        Ok(digest)
    }

    /// `PUT /v2/<repo>/manifests/<reference>` of an OCI image manifest.
    pub async fn push_manifest(&self, repo: &str, reference: &str, body: &Bytes) -> Result<()> {
        let sc = scope(repo, true);
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&sc, |h| {
                h.put(url.clone())
                    .header(header::CONTENT_TYPE, OCI_MANIFEST)
                    .body(body.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(fail("manifest PUT", resp).await);
        }
        check_digest_header(resp.headers(), &data::sha256_digest(body))
    }

    /// `GET` a manifest; checks that the body hashes to `Docker-Content-Digest` (when sent) and
    /// to `expect` (when given).
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        expect: Option<&str>,
    ) -> Result<Bytes> {
        let sc = scope(repo, false);
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&sc, |h| {
                h.request(Method::GET, url.clone())
                    .header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(fail("manifest GET", resp).await);
        }
        let header_digest = header_str(resp.headers(), CONTENT_DIGEST).map(str::to_owned);
        let body = resp.bytes().await?;
        let actual = data::sha256_digest(&body);
        if let Some(h) = header_digest
            && h != actual
        {
            bail!("manifest body hashes to {actual}, Docker-Content-Digest says {h}");
        }
        if let Some(e) = expect
            && e != actual
        {
            bail!("manifest {reference} hashes to {actual}, expected {e}");
        }
        Ok(body)
    }

    /// Streams a blob, hashing as it arrives; fails unless it hashes to `digest` (and has
    /// `size` bytes when given). Returns the byte count.
    pub async fn get_blob(&self, repo: &str, digest: &str, size: Option<u64>) -> Result<u64> {
        let sc = scope(repo, false);
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let mut resp = self.send(&sc, |h| h.get(url.clone())).await?;
        if resp.status() != StatusCode::OK {
            return Err(fail("blob GET", resp).await);
        }
        if let Some(h) = header_str(resp.headers(), CONTENT_DIGEST)
            && h != digest
        {
            bail!("blob GET {digest}: Docker-Content-Digest says {h}");
        }
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            hasher.update(&chunk);
            n += chunk.len() as u64;
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            bail!("blob {digest} arrived as {actual} ({n} bytes)");
        }
        if let Some(s) = size
            && s != n
        {
            bail!("blob {digest}: {n} bytes, manifest says {s}");
        }
        Ok(n)
    }
}

fn check_digest_header(h: &HeaderMap, expected: &str) -> Result<()> {
    match header_str(h, CONTENT_DIGEST) {
        Some(d) if d != expected => bail!("server reports digest {d}, pushed {expected}"),
        _ => Ok(()),
    }
}

/// Layer and config descriptors of an OCI/Docker image manifest: (digest, size).
pub fn manifest_blobs(manifest: &[u8]) -> Result<Vec<(String, u64)>> {
    let v: serde_json::Value = serde_json::from_slice(manifest).context("manifest JSON")?;
    let desc = |d: &serde_json::Value| -> Result<(String, u64)> {
        Ok((
            d["digest"]
                .as_str()
                .ok_or_else(|| anyhow!("descriptor without digest"))?
                .to_owned(),
            d["size"]
                .as_u64()
                .ok_or_else(|| anyhow!("descriptor without size"))?,
        ))
    };
    let mut out = vec![desc(&v["config"])?];
    for l in v["layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        out.push(desc(l)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn manifest_blob_list() {
        let img = data::make_image(3, 2, 10);
        let blobs = manifest_blobs(&img.manifest).unwrap();
        assert_eq!(blobs.len(), 3);
        assert_eq!(blobs[0].0, img.config.digest);
        assert_eq!(blobs[2], (img.layers[1].digest.clone(), 10));
        assert!(manifest_blobs(b"{}").is_err());
    }

    /// A tiny token-auth registry: `/v2/` and manifests want a Bearer token, `/token` hands
    /// one out for Basic `u:p`, counting how often it was asked.
    async fn fake_token_registry() -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let (realm, count) = (format!("{base}/token"), fetches.clone());
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut tmp).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                let target = req.split_whitespace().nth(1).unwrap_or("").to_owned();
                let auth = req
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: "))
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                let (status, headers, body) = if target.starts_with("/token?") {
                    assert!(target.contains("service=fake"), "{target}");
                    assert!(target.contains("scope=repository%3Ar%3Apull"), "{target}");
                    if auth == "Basic dTpw" {
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        (
                            "200 OK",
                            String::new(),
                            format!(r#"{{"token":"tok-{n}","expires_in":300}}"#),
                        )
                    } else {
                        ("401 Unauthorized", String::new(), String::new())
                    }
                } else if auth.starts_with("Bearer tok-") {
                    let d = data::sha256_digest(b"{}");
                    (
                        "200 OK",
                        format!("docker-content-digest: {d}\r\n"),
                        "{}".to_owned(),
                    )
                } else {
                    (
                        "401 Unauthorized",
                        format!(
                            "www-authenticate: Bearer realm=\"{realm}\",service=\"fake\",\
                             scope=\"repository:r:pull\"\r\n"
                        ),
                        String::new(),
                    )
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
                sock.shutdown().await.ok();
            }
        });
        (base, fetches)
    }

    #[tokio::test]
    async fn bearer_token_flow_and_cache() {
        let (base, fetches) = fake_token_registry().await;
        let c = Client::connect(&base, Some(("u".into(), "p".into())), 1)
            .await
            .unwrap();
        assert_eq!(c.auth_mode(), "bearer");
        let d = data::sha256_digest(b"{}");
        for _ in 0..3 {
            let body = c.get_manifest("r", "t", Some(&d)).await.unwrap();
            assert_eq!(&body[..], b"{}");
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "token is cached per scope"
        );

        let bad = Client::connect(&base, Some(("u".into(), "wrong".into())), 1)
            .await
            .unwrap();
        let err = bad.get_manifest("r", "t", None).await.unwrap_err();
        assert!(format!("{err:#}").contains("token request"), "{err:#}");
        assert!(
            Client::connect("http://10.1.2.3:5000", None, 1)
                .await
                .is_err()
        );
    }

    #[test]
    fn scopes() {
        assert_eq!(scope("a/b", true), "repository:a/b:pull,push");
        assert_eq!(scope("a", false), "repository:a:pull");
    }
}
