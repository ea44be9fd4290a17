#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Authentication flows end to end: real clients (skopeo, podman) logging in with users, robots
//! and personal tokens, anonymous pulls of public and private projects; and over raw HTTP the
//! Bearer challenge, the token endpoint (GET and the OAuth2 POST grants), forged tokens, login
//! rate limiting, no repository-existence leak and no secret in the server log.
//!
//! Client tests fail when a client is missing and `BULWARK_REQUIRE_CLIENTS=1`, skip otherwise.

// Shared with the client and scan tests; each uses a different part of it.
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bulwark_testkit::{
    ADMIN_PASSWORD, ADMIN_USER, Auth, HttpResponse, TestServer, error_codes, push_blob,
    push_blob_as, push_manifest, query_encode, random_bytes, token_target,
};
use serde_json::{Value, json};
use support::{Image, Registry, Tools, image, write_layout};

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const SKOPEO_TIMEOUT: Duration = Duration::from_secs(120);
const PODMAN_TIMEOUT: Duration = Duration::from_secs(180);
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const PASSWORD: &str = "flows-Pa55word!";

fn server() -> TestServer {
    TestServer::start(Path::new(BIN))
}

/// The exact challenge this server sends, with an optional scope and error.
fn challenge(s: &TestServer, scope: Option<&str>, error: Option<&str>) -> String {
    let mut v = format!(
        "Bearer realm=\"http://{}/token\",service=\"bulwark\"",
        s.addr()
    );
    if let Some(scope) = scope {
        v.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Some(error) = error {
        v.push_str(&format!(",error=\"{error}\""));
    }
    v
}

fn expect_challenge(s: &TestServer, r: &HttpResponse, scope: Option<&str>, error: Option<&str>) {
    r.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        r.header("www-authenticate"),
        Some(challenge(s, scope, error).as_str()),
        "{}: {}",
        r.request,
        r.text()
    );
}

/// The JSON header and payload of a JWT (unverified).
fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || {
        let part = parts.next().expect("JWT part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    (next(), next())
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A small image manifest pushed by the admin to `repo:tag`; returns its digest.
fn push_image(s: &TestServer, repo: &str, tag: &str) -> String {
    let base = s.base_url();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = push_blob(&base, repo, config);
    let layer = random_bytes(5, 1000);
    let layer_digest = push_blob(&base, repo, &layer);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    });
    push_manifest(
        &base,
        repo,
        tag,
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    )
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", query_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn post_token(s: &TestServer, pairs: &[(&str, &str)]) -> HttpResponse {
    s.request_as(
        Auth::Anonymous,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form(pairs),
    )
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP.

#[test]
fn anonymous_base_request_gets_the_exact_challenge() {
    let s = server();
    let r = s.get_as(Auth::Anonymous, "/v2/");
    expect_challenge(&s, &r, None, None);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    s.get("/v2/").expect_status(200);
    // A token with no access at all is still an authenticated client for /v2/.
    let token = s.token(None, &[]);
    s.get_as(Auth::Bearer(&token), "/v2/").expect_status(200);
}

#[test]
fn anonymous_tokens_grant_pull_on_public_and_nothing_on_private() {
    let s = server();
    s.create_project("open", "public");
    s.create_project("closed", "private");
    let open = push_image(&s, "open/app", "v1");
    push_image(&s, "closed/app", "v1");

    let token = s.token(None, &["repository:open/app:pull,push"]);
    let (_, claims) = jwt_parts(&token);
    assert_eq!(
        claims["access"],
        json!([{ "type": "repository", "name": "open/app", "actions": ["pull"] }]),
        "{claims}"
    );
    assert_eq!(claims["aud"], "bulwark");
    let bearer = Auth::Bearer(&token);
    let r = s.request_as(
        bearer,
        "GET",
        "/v2/open/app/manifests/v1",
        &[("Accept", OCI_MANIFEST)],
        b"",
    );
    r.expect_status(200);
    assert_eq!(r.header("docker-content-digest"), Some(open.as_str()));
    let r = s.request_as(bearer, "POST", "/v2/open/app/blobs/uploads/", &[], b"");
    expect_challenge(
        &s,
        &r,
        Some("repository:open/app:pull,push"),
        Some("insufficient_scope"),
    );

    let token = s.token(None, &["repository:closed/app:pull"]);
    let (_, claims) = jwt_parts(&token);
    assert!(
        claims["access"].as_array().is_some_and(Vec::is_empty) || claims["access"].is_null(),
        "{claims}"
    );
    let r = s.request_as(
        Auth::Bearer(&token),
        "GET",
        "/v2/closed/app/manifests/v1",
        &[("Accept", OCI_MANIFEST)],
        b"",
    );
    expect_challenge(
        &s,
        &r,
        Some("repository:closed/app:pull"),
        Some("insufficient_scope"),
    );
    // Anonymous without a token: challenged with the scope to ask for.
    let r = s.get_as(Auth::Anonymous, "/v2/closed/app/tags/list");
    expect_challenge(&s, &r, Some("repository:closed/app:pull"), None);
    s.get_as(Auth::Anonymous, "/v2/open/app/tags/list")
        .expect_status(200);
}

#[test]
fn wrong_passwords_are_401_then_rate_limited() {
    let s = server();
    s.create_user("victim", PASSWORD);
    let r = s.get_as(Auth::Basic("victim", "wrong"), "/v2/");
    expect_challenge(&s, &r, None, None);
    let target = token_target(&["repository:victim/app:pull"]);
    let r = s.get_as(Auth::Basic("victim", "wrong"), &target);
    r.expect_error(401, "UNAUTHORIZED");
    let mut limited = None;
    for attempt in 3..=20 {
        let r = s.get_as(Auth::Basic("victim", &format!("wrong-{attempt}")), &target);
        if r.status == 429 {
            limited = Some((attempt, r));
            break;
        }
        r.expect_error(401, "UNAUTHORIZED");
    }
    let (attempt, r) = limited.expect("no 429 after 20 wrong passwords");
    assert_eq!(attempt, 11, "10 failures per user are tolerated");
    r.expect_error(429, "TOOMANYREQUESTS");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After on 429")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    // Locked out even with the right password, on /v2/ too; other users are unaffected.
    s.get_as(Auth::Basic("victim", PASSWORD), &target)
        .expect_status(429);
    let r = s.get_as(Auth::Basic("victim", PASSWORD), "/v2/");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    s.get("/v2/").expect_status(200);
}

#[test]
fn password_grant_with_offline_access_and_refresh_grant() {
    let s = server();
    let digest = push_image(&s, "flows/app", "v1");
    let r = post_token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", ADMIN_USER),
            ("password", ADMIN_PASSWORD),
            ("service", "bulwark"),
            ("client_id", "bulwark-tests"),
            ("access_type", "offline"),
            ("scope", "repository:flows/app:pull"),
        ],
    );
    r.expect_status(200);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer", "{v}");
    let access = v["access_token"].as_str().expect("access_token").to_owned();
    let refresh = v["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    let (_, claims) = jwt_parts(&access);
    assert_eq!(
        claims["access"],
        json!([{ "type": "repository", "name": "flows/app", "actions": ["pull"] }])
    );
    // The refresh token is not an access token.
    let r = s.get_as(Auth::Bearer(&refresh), "/v2/flows/app/tags/list");
    expect_challenge(&s, &r, None, Some("invalid_token"));

    // Without access_type=offline there is no refresh token.
    let r = post_token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", ADMIN_USER),
            ("password", ADMIN_PASSWORD),
            ("service", "bulwark"),
        ],
    );
    r.expect_status(200);
    assert!(r.json()["refresh_token"].is_null(), "{}", r.text());

    let r = post_token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", "bulwark"),
            ("scope", "repository:flows/app:pull,push"),
        ],
    );
    r.expect_status(200);
    let fresh = r.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert_ne!(fresh, access);
    let bearer = Auth::Bearer(&fresh);
    let r = s.request_as(
        bearer,
        "GET",
        "/v2/flows/app/manifests/v1",
        &[("Accept", OCI_MANIFEST)],
        b"",
    );
    r.expect_status(200);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    push_blob_as(
        &s.base_url(),
        bearer,
        "flows/app",
        b"pushed with a refreshed token",
    );

    // A broken refresh token and a wrong password are refused.
    let r = post_token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", "x.y.z")],
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post_token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", ADMIN_USER),
            ("password", "nope"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.text());
}

/// A refresh token for `user`/`password` from `GET /token?offline_token=true`.
fn offline_refresh_token(s: &TestServer, user: &str, password: &str) -> String {
    let target = format!("{}&offline_token=true", token_target(&[]));
    let r = s.get_as(Auth::Basic(user, password), &target);
    r.expect_status(200);
    r.json()["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token: {}", r.text()))
        .to_owned()
}

fn refresh(s: &TestServer, refresh_token: &str) -> HttpResponse {
    post_token(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("scope", "repository:flows/app:pull"),
        ],
    )
}

#[test]
fn refresh_tokens_die_with_their_credential() {
    let s = server();
    // Anonymous callers get no refresh token.
    let target = format!("{}&offline_token=true", token_target(&[]));
    let r = s.get_as(Auth::Anonymous, &target);
    r.expect_status(200);
    assert!(r.json()["refresh_token"].is_null(), "{}", r.text());

    // A disabled user's refresh token stops working; enabled again, it works again.
    s.create_user("dora", PASSWORD);
    let dora = offline_refresh_token(&s, "dora", PASSWORD);
    refresh(&s, &dora).expect_status(200);
    let disable = |disabled: bool| {
        s.api(
            Auth::Admin,
            "PATCH",
            "/users/dora",
            Some(&json!({ "disabled": disabled })),
        )
        .expect_status(200);
    };
    disable(true);
    assert_eq!(refresh(&s, &dora).status, 401);
    expect_challenge(
        &s,
        &s.get_as(Auth::Basic("dora", PASSWORD), "/v2/"),
        None,
        None,
    );
    disable(false);
    refresh(&s, &dora).expect_status(200);

    // A refresh token obtained with a personal token dies with the personal token.
    s.create_user("pat", PASSWORD);
    let pat = s.create_personal_token("pat", "ci", &[]);
    let from_pat = offline_refresh_token(&s, "pat", &pat.token);
    refresh(&s, &from_pat).expect_status(200);
    s.revoke_personal_token("pat", &pat.id);
    assert_eq!(refresh(&s, &from_pat).status, 401);

    // Likewise for a robot that is disabled.
    s.create_project("flows", "private");
    let robot = s.create_robot("flows", "ci", &[("flows/**", &["pull"])], None);
    let from_robot = offline_refresh_token(&s, &robot.name, &robot.secret);
    refresh(&s, &from_robot).expect_status(200);
    s.api(
        Auth::Admin,
        "PATCH",
        "/projects/flows/robots/ci",
        Some(&json!({ "disabled": true })),
    )
    .expect_status(200);
    assert_eq!(refresh(&s, &from_robot).status, 401);
    expect_challenge(&s, &s.get_as(robot.auth(), "/v2/"), None, None);
}

#[test]
fn anonymous_and_robot_push_scopes_create_no_project() {
    let s = server();
    s.create_project("home", "private");
    let robot = s.create_robot("home", "ci", &[("home/**", &["pull", "push"])], None);
    for (auth, project) in [(Auth::Anonymous, "anon-made"), (robot.auth(), "robot-made")] {
        let scope = format!("repository:{project}/app:pull,push");
        let r = s.get_as(auth, &token_target(&[&scope]));
        r.expect_status(200);
        let (_, claims) = jwt_parts(r.json()["token"].as_str().unwrap());
        assert!(
            claims["access"].as_array().is_none_or(Vec::is_empty),
            "{claims}"
        );
        let r = s.request_as(
            auth,
            "POST",
            &format!("/v2/{project}/app/blobs/uploads/"),
            &[],
            b"",
        );
        assert!(r.status == 401 || r.status == 403, "{}", r.status);
        s.api(Auth::Admin, "GET", &format!("/projects/{project}"), None)
            .expect_status(404);
    }
    // A user's push scope creates the project, private, at token time.
    s.create_user("maker", PASSWORD);
    let token = s.token(
        Some(("maker", PASSWORD)),
        &["repository:made/app:pull,push"],
    );
    assert_eq!(
        jwt_parts(&token).1["access"],
        json!([{ "type": "repository", "name": "made/app", "actions": ["pull", "push"] }])
    );
    let r = s.api(Auth::Admin, "GET", "/projects/made", None);
    r.expect_status(200);
    assert_eq!(r.json()["visibility"], "private");
    push_blob_as(&s.base_url(), Auth::Bearer(&token), "made/app", b"mine");
}

#[test]
fn forged_and_tampered_tokens_are_rejected() {
    let s = server();
    push_image(&s, "forge/app", "v1");
    let real = s.token(
        Some((ADMIN_USER, ADMIN_PASSWORD)),
        &["repository:forge/app:pull"],
    );
    let target = "/v2/forge/app/tags/list";
    s.get_as(Auth::Bearer(&real), target).expect_status(200);
    let (header, claims) = jwt_parts(&real);
    let parts: Vec<&str> = real.split('.').collect();
    let mut wider = claims.clone();
    wider["access"] = json!([{ "type": "repository", "name": "forge/app", "actions": ["pull", "push", "delete"] }]);

    // alg=none, no signature.
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&wider)
    );
    // A flipped bit in the signature.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[7] ^= 0x01;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
    // Widened claims under the original signature.
    let widened = format!("{}.{}.{}", parts[0], b64(&wider), parts[2]);
    // Signed by another key that claims the server's key id, and by another key under its own.
    let other = bulwark_auth::SigningKey::generate().unwrap();
    let pem = other.to_pkcs8_pem().unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ec_pem(pem.expose().as_bytes()).unwrap();
    let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jwt_header.typ = header["typ"].as_str().map(str::to_owned);
    jwt_header.kid = header["kid"].as_str().map(str::to_owned);
    let stolen_kid = jsonwebtoken::encode(&jwt_header, &wider, &encoding).unwrap();
    jwt_header.kid = Some(other.kid().to_owned());
    let own_kid = jsonwebtoken::encode(&jwt_header, &wider, &encoding).unwrap();

    for (what, token) in [
        ("alg=none", none.as_str()),
        ("tampered signature", bad_sig.as_str()),
        ("widened claims", widened.as_str()),
        ("another key, the server's kid", stolen_kid.as_str()),
        ("another key", own_kid.as_str()),
        ("garbage", "not-a-jwt"),
    ] {
        let r = s.get_as(Auth::Bearer(token), target);
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        expect_challenge(&s, &r, None, Some("invalid_token"));
        let r = s.request_as(
            Auth::Bearer(token),
            "DELETE",
            "/v2/forge/app/manifests/v1",
            &[],
            b"",
        );
        assert_eq!(r.status, 401, "{what}: DELETE answered {}", r.status);
    }
    s.get(target).expect_status(200);
}

#[test]
fn a_token_for_another_service_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut elsewhere = TestServer::start_in(
        Path::new(BIN),
        dir.path().join("data"),
        &[("BULWARK_AUTH__SERVICE", "elsewhere")],
    );
    push_image(&elsewhere, "svc/app", "v1");
    let r =
        elsewhere.get(&token_target(&["repository:svc/app:pull"]).replace("bulwark", "elsewhere"));
    r.expect_status(200);
    let foreign = r.json()["token"].as_str().unwrap().to_owned();
    elsewhere
        .get_as(Auth::Bearer(&foreign), "/v2/svc/app/tags/list")
        .expect_status(200);
    elsewhere.kill9();

    // Same data dir, so the same signing key: only the service differs.
    let s = TestServer::start_in(Path::new(BIN), dir.path().join("data"), &[]);
    let r = s.get_as(Auth::Bearer(&foreign), "/v2/svc/app/tags/list");
    expect_challenge(&s, &r, None, Some("invalid_token"));
    let own = s.token(
        Some((ADMIN_USER, ADMIN_PASSWORD)),
        &["repository:svc/app:pull"],
    );
    assert_eq!(jwt_parts(&own).0["kid"], jwt_parts(&foreign).0["kid"]);
    s.get_as(Auth::Bearer(&own), "/v2/svc/app/tags/list")
        .expect_status(200);
    // Asking this server for another service's token is refused.
    let r = s.get(&token_target(&[]).replace("bulwark", "elsewhere"));
    assert_eq!(r.status, 400, "{}", r.text());
}

/// What an outsider sees: status, challenge and body.
fn outsider_view(s: &TestServer, auth: Auth<'_>, target: &str) -> (u16, Option<String>, String) {
    let r = s.request_as(auth, "GET", target, &[("Accept", OCI_MANIFEST)], b"");
    (
        r.status,
        r.header("www-authenticate").map(str::to_owned),
        r.text(),
    )
}

#[test]
fn private_repositories_do_not_leak_their_existence() {
    let s = server();
    s.create_project("vault", "private");
    s.create_user("stranger", PASSWORD);
    let stranger = Auth::Basic("stranger", PASSWORD);
    let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let targets = [
        "/v2/vault/app/manifests/v1".to_owned(),
        "/v2/vault/app/tags/list".to_owned(),
        format!("/v2/vault/app/blobs/{digest}"),
        format!("/v2/vault/app/referrers/{digest}"),
    ];
    let before: Vec<_> = [Auth::Anonymous, stranger]
        .iter()
        .flat_map(|a| targets.iter().map(|t| outsider_view(&s, *a, t)))
        .collect();
    push_image(&s, "vault/app", "v1");
    // The admin now sees the repository...
    s.get("/v2/vault/app/tags/list").expect_status(200);
    // ...outsiders see exactly what they saw before it existed.
    let after: Vec<_> = [Auth::Anonymous, stranger]
        .iter()
        .flat_map(|a| targets.iter().map(|t| outsider_view(&s, *a, t)))
        .collect();
    assert_eq!(before, after);
    assert!(before[..4].iter().all(|v| v.0 == 401), "{before:?}");
    assert!(before[4..].iter().all(|v| v.0 == 403), "{before:?}");

    // An unknown project answers like an existing private one, up to the name.
    for auth in [Auth::Anonymous, stranger] {
        let known = outsider_view(&s, auth, "/v2/vault/app/manifests/v1");
        let unknown = outsider_view(&s, auth, "/v2/ghost/app/manifests/v1");
        let norm = |v: (u16, Option<String>, String)| {
            (
                v.0,
                v.1.map(|h| h.replace("ghost/app", "vault/app")),
                v.2.replace("ghost/app", "vault/app"),
            )
        };
        assert_eq!(known, norm(unknown), "{auth:?}");
    }
}

#[test]
fn secrets_never_appear_in_the_server_log() {
    let s = TestServer::start_with(Path::new(BIN), &[("BULWARK_LOG__LEVEL", "debug")]);
    s.create_project("logs", "private");
    s.create_user("logger", PASSWORD);
    s.add_member("logs", "logger", "developer");
    let robot = s.create_robot("logs", "ci", &[("logs/**", &["pull", "push"])], None);
    let pat = s.create_personal_token("logger", "laptop", &[]);
    push_image(&s, "logs/app", "v1");
    let mut secrets = vec![
        ADMIN_PASSWORD.to_owned(),
        PASSWORD.to_owned(),
        robot.secret.clone(),
        pat.token.clone(),
    ];
    for auth in [
        Auth::Admin,
        Auth::Basic("logger", PASSWORD),
        robot.auth(),
        Auth::Basic("logger", &pat.token),
    ] {
        s.get_as(auth, "/v2/logs/app/tags/list").expect_status(200);
        let r = s.get_as(auth, &token_target(&["repository:logs/app:pull,push"]));
        r.expect_status(200);
        secrets.push(r.json()["token"].as_str().unwrap().to_owned());
    }
    let r = post_token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", "logger"),
            ("password", PASSWORD),
            ("access_type", "offline"),
            ("scope", "repository:logs/app:pull"),
        ],
    );
    r.expect_status(200);
    let v = r.json();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    secrets.push(v["access_token"].as_str().unwrap().to_owned());
    let r = post_token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    r.expect_status(200);
    secrets.push(r.json()["access_token"].as_str().unwrap().to_owned());
    secrets.push(refresh);
    // Failed attempts with near-miss passwords are not logged either.
    let near_miss = format!("{ADMIN_PASSWORD}x");
    s.get_as(Auth::Basic(ADMIN_USER, &near_miss), "/v2/")
        .expect_status(401);
    secrets.push(near_miss);
    for token in &secrets[4..] {
        s.get_as(Auth::Bearer(token), "/v2/logs/app/tags/list");
    }

    let log = s.log();
    assert!(log.contains("DEBUG"), "the log level is not debug:\n{log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret ({} bytes) is in the server log:\n{log}",
            secret.len()
        );
        // Nor the signature part of a token on its own.
        if let Some(sig) = secret.rsplit('.').next().filter(|s| s.len() > 20) {
            assert!(!log.contains(sig), "a token signature is in the server log");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real clients.

fn small_image(note: &str) -> Image {
    image("amd64", &[vec![("note.txt", note.as_bytes().to_vec())]])
}

/// An OCI layout holding `img` as `tag`, under the registry's scratch space.
fn layout(reg: &Registry, name: &str, img: &Image, tag: &str) -> PathBuf {
    let dir = reg.scratch(name);
    write_layout(&dir, &img.blobs(), &img.manifest, tag);
    dir
}

/// A path under scratch that holds no credentials: clients using it are anonymous.
fn anonymous_auth(reg: &Registry) -> PathBuf {
    reg.scratch("auth").join("anonymous.json")
}

fn skopeo_login(
    reg: &Registry,
    tools: &Tools,
    authfile: &Path,
    user: &str,
    password: &str,
) -> std::process::Output {
    tools.skopeo_as(
        reg,
        authfile,
        &[
            "login",
            "--authfile",
            &authfile.display().to_string(),
            "--tls-verify=false",
            "--username",
            user,
            "--password",
            password,
            &reg.host(),
        ],
        SKOPEO_TIMEOUT,
    )
}

fn assert_ok(out: &std::process::Output, what: &str, reg: &Registry) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        reg.log()
    );
}

fn assert_failed(out: &std::process::Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded but must fail");
    String::from_utf8_lossy(&out.stderr).to_lowercase()
}

#[test]
fn skopeo_login_then_copy_into_a_private_project() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let s = reg.server();
    s.create_user("alice", PASSWORD);
    s.create_project("team", "private");
    s.add_member("team", "alice", "developer");
    let img = small_image("alice's image\n");
    let src = layout(&reg, "src", &img, "v1");
    let authfile = reg.scratch("auth").join("alice.json");

    let out = skopeo_login(&reg, &tools, &authfile, "alice", "not her password");
    assert_failed(&out, "skopeo login with a wrong password");
    let out = skopeo_login(&reg, &tools, &authfile, "alice", PASSWORD);
    assert_ok(&out, "skopeo login", &reg);
    let saved = std::fs::read_to_string(&authfile).unwrap();
    assert!(saved.contains(&reg.host()), "{saved}");

    for dest in ["team/app:v1", "alice-own/app:v1"] {
        let out = tools.skopeo_as(
            &reg,
            &authfile,
            &[
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &format!("oci:{}:v1", src.display()),
                &format!("docker://{}", reg.image_ref(dest)),
            ],
            SKOPEO_TIMEOUT,
        );
        assert_ok(&out, &format!("skopeo copy to {dest}"), &reg);
        let out = tools.skopeo_as(
            &reg,
            &authfile,
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}", reg.image_ref(dest)),
            ],
            SKOPEO_TIMEOUT,
        );
        assert_ok(&out, "skopeo inspect", &reg);
        assert_eq!(out.stdout, img.manifest.bytes, "{dest}");
        // Private: anonymous clients get nothing.
        let out = tools.skopeo_as(
            &reg,
            &anonymous_auth(&reg),
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}", reg.image_ref(dest)),
            ],
            SKOPEO_TIMEOUT,
        );
        assert_failed(&out, &format!("anonymous inspect of {dest}"));
    }
    // The push created alice's own project, private, with her as its admin.
    let project = s.api(Auth::Admin, "GET", "/projects/alice-own", None);
    project.expect_status(200);
    assert_eq!(
        project.json()["visibility"],
        "private",
        "{}",
        project.text()
    );
    let members = s.api(Auth::Admin, "GET", "/projects/alice-own/members", None);
    members.expect_status(200);
    let members = members.json();
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "alice" && m["role"] == "admin"),
        "{members}"
    );
}

#[test]
fn podman_push_with_robot_credentials() {
    let Some(tools) = Tools::require(&["skopeo", "podman"]) else {
        return;
    };
    let reg = Registry::start();
    let s = reg.server();
    s.create_project("ci", "private");
    let robot = s.create_robot("ci", "builder", &[("ci/**", &["pull", "push"])], None);
    assert_eq!(robot.name, "robot$ci+builder");
    let img = small_image("built in CI\n");
    let src = layout(&reg, "src", &img, "v1");
    let podman = tools.podman_store(&reg);
    let dest = reg.image_ref("ci/app:v1");
    tools.skopeo(
        &reg,
        &[
            "copy",
            &format!("oci:{}:v1", src.display()),
            &format!("containers-storage:{}{dest}", podman.store_spec()),
        ],
        SKOPEO_TIMEOUT,
    );
    let authfile = reg.scratch("auth").join("robot.json");
    let podman = podman.with_auth_file(&authfile);
    // Without logging in, the push is refused.
    let out = podman.run_may_fail(&["push", "--tls-verify=false", &dest], PODMAN_TIMEOUT);
    assert_failed(&out, "podman push without credentials");
    podman.run(
        &[
            "login",
            "--tls-verify=false",
            "--username",
            &robot.name,
            "--password",
            &robot.secret,
            &reg.host(),
        ],
        PODMAN_TIMEOUT,
    );
    podman.run(&["push", "--tls-verify=false", &dest], PODMAN_TIMEOUT);

    let r = s.request("GET", "/v2/ci/app/tags/list", &[], b"");
    r.expect_status(200);
    assert_eq!(r.json()["tags"], json!(["v1"]));
    let out = tools.skopeo(
        &reg,
        &["inspect", "--tls-verify=false", &format!("docker://{dest}")],
        SKOPEO_TIMEOUT,
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(1), "{v}");
    // The robot pulls back what it pushed.
    podman.run(&["rmi", "--all", "--force"], PODMAN_TIMEOUT);
    podman.run(&["pull", "--tls-verify=false", &dest], PODMAN_TIMEOUT);
}

#[test]
fn anonymous_clients_pull_public_projects_only() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let s = reg.server();
    s.create_project("open", "public");
    s.create_project("closed", "private");
    let img = small_image("for everyone?\n");
    let src = layout(&reg, "src", &img, "v1");
    for dest in ["open/app:v1", "closed/app:v1"] {
        tools.skopeo(
            &reg,
            &[
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &format!("oci:{}:v1", src.display()),
                &format!("docker://{}", reg.image_ref(dest)),
            ],
            SKOPEO_TIMEOUT,
        );
    }
    let anon = anonymous_auth(&reg);
    let inspect = |repo: &str| {
        tools.skopeo_as(
            &reg,
            &anon,
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}", reg.image_ref(repo)),
            ],
            SKOPEO_TIMEOUT,
        )
    };
    let copy = |repo: &str, into: &str| {
        let dst = reg.scratch(into);
        tools.skopeo_as(
            &reg,
            &anon,
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{}", reg.image_ref(repo)),
                &format!("oci:{}:back", dst.display()),
            ],
            SKOPEO_TIMEOUT,
        )
    };
    let out = inspect("open/app:v1");
    assert_ok(&out, "anonymous inspect of a public image", &reg);
    assert_eq!(out.stdout, img.manifest.bytes);
    assert_ok(
        &copy("open/app:v1", "open-back"),
        "anonymous copy of a public image",
        &reg,
    );

    let err = assert_failed(
        &inspect("closed/app:v1"),
        "anonymous inspect of a private image",
    );
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    assert_failed(
        &copy("closed/app:v1", "closed-back"),
        "anonymous copy of a private image",
    );
    // And anonymous pushes go nowhere, public or not.
    let out = tools.skopeo_as(
        &reg,
        &anon,
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{}", reg.image_ref("open/app:anon")),
        ],
        SKOPEO_TIMEOUT,
    );
    assert_failed(&out, "anonymous push to a public project");
    s.get("/v2/open/app/manifests/anon").expect_status(404);
}

#[test]
fn a_reader_cannot_push() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let s = reg.server();
    s.create_project("team", "private");
    s.create_user("rita", PASSWORD);
    s.add_member("team", "rita", "reader");
    push_image(s, "team/app", "v1");
    let img = small_image("rita tries\n");
    let src = layout(&reg, "src", &img, "v1");
    let creds = format!("rita:{PASSWORD}");

    let out = tools.skopeo_as(
        &reg,
        &anonymous_auth(&reg),
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{}", reg.image_ref("team/app:rita")),
        ],
        SKOPEO_TIMEOUT,
    );
    let err = assert_failed(&out, "skopeo push as a reader");
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );
    s.get("/v2/team/app/manifests/rita").expect_status(404);
    // She may pull.
    let out = tools.skopeo_as(
        &reg,
        &anonymous_auth(&reg),
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &creds,
            &format!("docker://{}", reg.image_ref("team/app:v1")),
        ],
        SKOPEO_TIMEOUT,
    );
    assert_ok(&out, "skopeo inspect as a reader", &reg);

    // Raw HTTP: Basic gets 403 DENIED; a token asked for push carries pull only and is
    // challenged for the missing scope.
    let rita = Auth::Basic("rita", PASSWORD);
    s.request_as(rita, "POST", "/v2/team/app/blobs/uploads/", &[], b"")
        .expect_error(403, "DENIED");
    let token = s.token(Some(("rita", PASSWORD)), &["repository:team/app:pull,push"]);
    assert_eq!(
        jwt_parts(&token).1["access"],
        json!([{ "type": "repository", "name": "team/app", "actions": ["pull"] }])
    );
    let r = s.request_as(
        Auth::Bearer(&token),
        "POST",
        "/v2/team/app/blobs/uploads/",
        &[],
        b"",
    );
    expect_challenge(
        s,
        &r,
        Some("repository:team/app:pull,push"),
        Some("insufficient_scope"),
    );
    s.get_as(Auth::Bearer(&token), "/v2/team/app/tags/list")
        .expect_status(200);
    assert!(error_codes(&r.body).contains(&"UNAUTHORIZED".to_owned()));
}

#[test]
fn an_expired_robot_cannot_log_in() {
    let reg_tools = Tools::require(&["skopeo"]);
    let reg = Registry::start();
    let s = reg.server();
    s.create_project("temp", "private");
    let perms: &[(&str, &[&str])] = &[("temp/**", &["pull", "push"])];
    let expiring = s.create_robot("temp", "short", perms, Some(1));
    let lasting = s.create_robot("temp", "long", perms, Some(3600));
    std::thread::sleep(Duration::from_secs(2));

    expect_challenge(s, &s.get_as(expiring.auth(), "/v2/"), None, None);
    let target = token_target(&["repository:temp/app:pull"]);
    s.get_as(expiring.auth(), &target)
        .expect_error(401, "UNAUTHORIZED");
    s.get_as(lasting.auth(), "/v2/").expect_status(200);
    s.get_as(lasting.auth(), &target).expect_status(200);

    let Some(tools) = reg_tools else {
        return;
    };
    let expired_file = reg.scratch("auth").join("expired.json");
    let out = skopeo_login(
        &reg,
        &tools,
        &expired_file,
        &expiring.name,
        &expiring.secret,
    );
    assert_failed(&out, "skopeo login as an expired robot");
    let lasting_file = reg.scratch("auth").join("lasting.json");
    let out = skopeo_login(&reg, &tools, &lasting_file, &lasting.name, &lasting.secret);
    assert_ok(&out, "skopeo login as a live robot", &reg);
}

#[test]
fn a_revoked_personal_token_stops_working() {
    let tools = Tools::require(&["skopeo"]);
    let reg = Registry::start();
    let s = reg.server();
    s.create_user("pat", PASSWORD);
    let pat = s.create_personal_token("pat", "laptop", &[]);
    assert!(pat.token.starts_with("bwk_"), "{}", pat.token);
    let auth = Auth::Basic("pat", &pat.token);
    let target = token_target(&["repository:pat/app:pull,push"]);
    s.get_as(auth, "/v2/").expect_status(200);
    s.get_as(auth, &target).expect_status(200);
    // Only its owner may use it.
    s.create_user("mallory", PASSWORD);
    expect_challenge(
        s,
        &s.get_as(Auth::Basic("mallory", &pat.token), "/v2/"),
        None,
        None,
    );
    let before = reg.scratch("auth").join("pat-before.json");
    if let Some(tools) = &tools {
        let out = skopeo_login(&reg, tools, &before, "pat", &pat.token);
        assert_ok(&out, "skopeo login with a personal token", &reg);
    }

    s.revoke_personal_token("pat", &pat.id);
    expect_challenge(s, &s.get_as(auth, "/v2/"), None, None);
    s.get_as(auth, &target).expect_error(401, "UNAUTHORIZED");
    // The password still works.
    s.get_as(Auth::Basic("pat", PASSWORD), "/v2/")
        .expect_status(200);
    if let Some(tools) = &tools {
        let after = reg.scratch("auth").join("pat-after.json");
        let out = skopeo_login(&reg, tools, &after, "pat", &pat.token);
        assert_failed(&out, "skopeo login with a revoked personal token");
        // A login saved before the revocation is dead too.
        let out = tools.skopeo_as(
            &reg,
            &before,
            &[
                "list-tags",
                "--tls-verify=false",
                &format!("docker://{}/pat/app", reg.host()),
            ],
            SKOPEO_TIMEOUT,
        );
        assert_failed(&out, "skopeo with a saved login of a revoked token");
    }
}
