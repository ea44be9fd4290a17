//! The registry client against a scripted HTTP server: Basic and Bearer challenges, digest
//! checks and size bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use bulwark_trust::client::{ClientError, Credentials, ImageRef, RegistryClient};
use bulwark_trust::cosign::sha256_digest;

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

struct Request {
    target: String,
    authorization: Option<String>,
}

type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

type Handler = dyn Fn(&Request, &str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// Serves `handler` on a loopback port, one request per connection; returns the address and
/// the log of requests seen (target, Authorization).
fn serve(handler: Arc<Handler>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (log2, addr2) = (log.clone(), addr.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut authorization = None;
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                if k.eq_ignore_ascii_case("authorization") {
                    authorization = Some(v.trim().to_owned());
                }
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let req = Request {
                target,
                authorization,
            };
            log2.lock()
                .unwrap()
                .push((req.target.clone(), req.authorization.clone()));
            let (status, headers, body) = handler(&req, &addr2);
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let _ = stream.write_all(out.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (addr, log)
}

fn creds() -> Option<Credentials> {
    Some(Credentials {
        username: "u".to_owned(),
        password: "p".to_owned(),
    })
}

fn manifest_ok() -> (u16, Vec<(String, String)>, Vec<u8>) {
    (
        200,
        vec![(
            "Content-Type".to_owned(),
            "application/vnd.oci.image.manifest.v1+json".to_owned(),
        )],
        MANIFEST.to_vec(),
    )
}

#[tokio::test]
async fn basic_challenge_then_basic_credentials() {
    // "u:p" in base64.
    let (addr, log) = serve(Arc::new(|req: &Request, _: &str| {
        if req.authorization.as_deref() == Some("Basic dTpw") {
            manifest_ok()
        } else {
            (
                401,
                vec![(
                    "WWW-Authenticate".to_owned(),
                    r#"Basic realm="reg""#.to_owned(),
                )],
                Vec::new(),
            )
        }
    }));
    let image = ImageRef::parse(&format!("{addr}/team/app:v1")).unwrap();
    let client = RegistryClient::new(&addr, true, creds()).unwrap();
    let m = client.resolve(&image).await.unwrap();
    assert_eq!(m.digest, sha256_digest(MANIFEST));
    assert_eq!(m.media_type, "application/vnd.oci.image.manifest.v1+json");
    // Anonymous first, then Basic; the next request sends Basic straight away.
    client.resolve(&image).await.unwrap();
    // A copy: the server thread needs the lock for the requests below.
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.len(),
        3,
        "{:?}",
        log.iter().map(|l| &l.0).collect::<Vec<_>>()
    );
    assert_eq!(log[0].1, None);
    assert_eq!(log[1].1.as_deref(), Some("Basic dTpw"));
    assert_eq!(log[2].1.as_deref(), Some("Basic dTpw"));

    // Without credentials a Basic challenge is a clear error.
    let anonymous = RegistryClient::new(&addr, true, None).unwrap();
    assert!(matches!(
        anonymous.resolve(&image).await,
        Err(ClientError::Auth(_))
    ));
}

#[tokio::test]
async fn bearer_challenge_fetches_a_token_with_basic_credentials() {
    let (addr, log) = serve(Arc::new(|req: &Request, addr: &str| {
        if req.target.starts_with("/token?") {
            if req.authorization.as_deref() == Some("Basic dTpw") {
                return (200, Vec::new(), br#"{"token":"tok-1"}"#.to_vec());
            }
            return (401, Vec::new(), b"no".to_vec());
        }
        if req.authorization.as_deref() == Some("Bearer tok-1") {
            return manifest_ok();
        }
        let challenge = format!(
            r#"Bearer realm="http://{addr}/token",service="reg",scope="repository:team/app:pull""#
        );
        (
            401,
            vec![("WWW-Authenticate".to_owned(), challenge)],
            Vec::new(),
        )
    }));
    let image = ImageRef::parse(&format!("{addr}/team/app:v1")).unwrap();
    let client = RegistryClient::new(&addr, true, creds()).unwrap();
    let m = client.resolve(&image).await.unwrap();
    assert_eq!(m.digest, sha256_digest(MANIFEST));
    // A copy: the server thread needs the lock for the requests below.
    let log = log.lock().unwrap().clone();
    let token_request = &log[1].0;
    assert!(token_request.starts_with("/token?"), "{token_request}");
    assert!(token_request.contains("service=reg"), "{token_request}");
    assert!(
        token_request.contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{token_request}"
    );
    assert_eq!(log[2].1.as_deref(), Some("Bearer tok-1"));

    // Wrong credentials: the token endpoint's refusal is reported.
    let bad = RegistryClient::new(
        &addr,
        true,
        Some(Credentials {
            username: "u".to_owned(),
            password: "wrong".to_owned(),
        }),
    )
    .unwrap();
    assert!(matches!(
        bad.resolve(&image).await,
        Err(ClientError::Auth(_))
    ));
}

#[tokio::test]
async fn content_is_checked_against_digests_and_bounded() {
    let (addr, _) = serve(Arc::new(|req: &Request, _: &str| {
        if req.target.contains("/blobs/") {
            // A huge blob, announced up front.
            return (200, Vec::new(), vec![b'x'; 100_000]);
        }
        manifest_ok()
    }));
    let client = RegistryClient::new(&addr, true, None).unwrap();
    // Asked by a digest the content does not have: refused.
    let other = sha256_digest(b"other");
    let err = client.get_manifest("team/app", &other).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err}");
    // Bounded blob reads.
    let err = client.get_blob("team/app", &other, 1024).await.unwrap_err();
    assert!(matches!(err, ClientError::TooLarge(..)), "{err}");
    // Non-sha256 digests are refused before any request.
    assert!(client.get_blob("team/app", "md5:abc", 10).await.is_err());
}
