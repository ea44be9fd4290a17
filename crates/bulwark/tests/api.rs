#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `/api/v1` management API on the real binary: every endpoint group's happy path, 401 for
//! anonymous callers and registry tokens, 403 for non-admins, 400 for bad input, 404 for
//! unknown names, 409 for duplicates, robot secrets and personal access tokens as Basic
//! credentials on `/v2/`, token revocation, last-admin protection, and the OpenAPI
//! description (validated with Python's `openapi-spec-validator` when it is installed; with
//! `BULWARK_REQUIRE_CLIENTS=1` it must be).

use std::path::Path;
use std::process::Command;

use bulwark_testkit::TestServer;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const ADMIN_PW: &str = "admin-secret-pw";
const PW: &str = "user-password-1";

struct Api {
    server: TestServer,
    client: Client,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        if !self.body.is_null() {
            assert_eq!(
                self.headers.get(CONTENT_TYPE).unwrap(),
                "application/json",
                "JSON answers say so"
            );
        }
        self.body
    }

    /// An OCI error body with `code`.
    #[track_caller]
    fn expect_error(self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["errors"][0]["code"], code, "{body}");
        assert!(body["errors"][0]["message"].is_string(), "{body}");
        body
    }
}

fn start(envs: &[(&str, &str)]) -> Api {
    let mut all = vec![("BULWARK_ADMIN_PASSWORD", ADMIN_PW)];
    all.extend_from_slice(envs);
    let server = TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_bulwark")), &all);
    Api {
        server,
        client: Client::new(),
    }
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        body: Option<&Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, self.url(path));
        if let Some((user, password)) = auth {
            req = req.basic_auth(user, Some(password));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        answer(req.send().unwrap())
    }

    /// A management call (`path` below `/api/v1`) with Basic credentials.
    fn call(&self, auth: (&str, &str), method: &str, path: &str, body: Option<Value>) -> Answer {
        self.send(method, &format!("/api/v1{path}"), Some(auth), body.as_ref())
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.call(("admin", ADMIN_PW), method, path, body)
    }

    fn anonymous(&self, method: &str, path: &str) -> Answer {
        self.send(method, &format!("/api/v1{path}"), None, None)
    }

    fn add_user(&self, name: &str) {
        self.admin(
            "POST",
            "/users",
            Some(json!({ "name": name, "password": PW })),
        )
        .expect(201);
    }

    /// `GET /v2/` with Basic credentials: the status.
    fn v2_status(&self, user: &str, password: &str) -> u16 {
        self.send("GET", "/v2/", Some((user, password)), None)
            .status
    }

    /// Push a small OCI image to `repo:tag` as the admin; returns the manifest digest.
    fn push_image(&self, repo: &str, tag: &str, seed: u8) -> String {
        let auth = ("admin", ADMIN_PW);
        let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#);
        let layer = vec![seed; 300];
        for bytes in [config.as_bytes(), &layer] {
            let d = digest(bytes);
            let resp = self
                .client
                .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={d}")))
                .basic_auth(auth.0, Some(auth.1))
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec())
                .send()
                .unwrap();
            assert_eq!(resp.status(), 201, "blob push: {}", resp.text().unwrap());
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config.as_bytes()),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest(&layer),
                "size": layer.len(),
            }],
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let resp = self
            .client
            .put(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .basic_auth(auth.0, Some(auth.1))
            .header(CONTENT_TYPE, "application/vnd.oci.image.manifest.v1+json")
            .body(bytes.clone())
            .send()
            .unwrap();
        assert_eq!(
            resp.status(),
            201,
            "manifest push: {}",
            resp.text().unwrap()
        );
        digest(&bytes)
    }
}

fn answer(resp: Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "status {status}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every route of the contract, as (method, path) in OpenAPI's notation.
const CONTRACT: &[(&str, &str)] = &[
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/me"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{name}"),
    ("patch", "/api/v1/users/{name}"),
    ("delete", "/api/v1/users/{name}"),
    ("post", "/api/v1/teams"),
    ("get", "/api/v1/teams"),
    ("delete", "/api/v1/teams/{name}"),
    ("get", "/api/v1/teams/{name}/members"),
    ("put", "/api/v1/teams/{name}/members/{user}"),
    ("delete", "/api/v1/teams/{name}/members/{user}"),
    ("post", "/api/v1/projects"),
    ("get", "/api/v1/projects"),
    ("get", "/api/v1/projects/{project}"),
    ("patch", "/api/v1/projects/{project}"),
    ("delete", "/api/v1/projects/{project}"),
    ("get", "/api/v1/projects/{project}/members"),
    ("put", "/api/v1/projects/{project}/members"),
    ("delete", "/api/v1/projects/{project}/members/{kind}/{name}"),
    ("get", "/api/v1/projects/{project}/rules"),
    ("post", "/api/v1/projects/{project}/rules"),
    ("delete", "/api/v1/projects/{project}/rules/{id}"),
    ("get", "/api/v1/projects/{project}/robots"),
    ("post", "/api/v1/projects/{project}/robots"),
    ("patch", "/api/v1/projects/{project}/robots/{short}"),
    ("delete", "/api/v1/projects/{project}/robots/{short}"),
    ("get", "/api/v1/robots"),
    ("post", "/api/v1/robots"),
    ("get", "/api/v1/users/{name}/tokens"),
    ("post", "/api/v1/users/{name}/tokens"),
    ("delete", "/api/v1/users/{name}/tokens/{id}"),
    ("get", "/api/v1/repositories"),
    ("get", "/api/v1/repositories/tags"),
    ("delete", "/api/v1/repositories/tags"),
    ("delete", "/api/v1/repositories/manifests"),
    ("get", "/api/v1/gc"),
    ("post", "/api/v1/gc"),
    ("get", "/api/v1/projects/{project}/trust-policy"),
    ("put", "/api/v1/projects/{project}/trust-policy"),
    ("delete", "/api/v1/projects/{project}/trust-policy"),
    ("get", "/api/v1/projects/{project}/trust-decisions"),
    ("get", "/api/v1/repositories/signatures"),
    ("get", "/api/v1/repositories/manifests/scan"),
    ("post", "/api/v1/repositories/manifests/scan"),
    ("get", "/api/v1/repositories/manifests/sbom"),
    ("get", "/api/v1/scan/events"),
    ("post", "/api/v1/scan/backfill"),
];

#[test]
fn openapi_is_public_valid_and_covers_the_contract() {
    let api = start(&[]);
    let doc = api.anonymous("GET", "/openapi.json").expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["type"],
        "http"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
    for (method, path) in CONTRACT {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing from the OpenAPI description"
        );
    }

    // Python's openapi-spec-validator, when it is there.
    let have_validator = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_validator {
        if std::env::var("BULWARK_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!(
                "BULWARK_REQUIRE_CLIENTS=1 but python3 cannot import openapi_spec_validator \
                 (pip install openapi-spec-validator)"
            );
        }
        eprintln!(
            "note: skipping the openapi-spec-validator check: python3 cannot import \
             openapi_spec_validator (pip install openapi-spec-validator)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate\n\
             validate(json.load(open(sys.argv[1])))\n\
             print('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the description:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn authentication_is_basic_only() {
    let api = start(&[]);
    // Anonymous: 401 with the same challenge /v2 sends.
    let a = api.anonymous("GET", "/me");
    let challenge = a.headers.get(WWW_AUTHENTICATE).unwrap().to_str().unwrap();
    assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
    assert!(challenge.contains("service=\"bulwark\""), "{challenge}");
    a.expect_error(401, "UNAUTHORIZED");
    for (method, path) in [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/teams"),
        ("GET", "/projects"),
        ("GET", "/robots"),
        ("GET", "/users/admin/tokens"),
        ("GET", "/repositories"),
        ("DELETE", "/repositories/tags?repository=a/b&tag=x"),
    ] {
        api.anonymous(method, path)
            .expect_error(401, "UNAUTHORIZED");
    }
    // Wrong password.
    api.call(("admin", "nope-nope"), "GET", "/me", None)
        .expect_error(401, "UNAUTHORIZED");

    let me = api.admin("GET", "/me", None).expect(200);
    assert_eq!(
        me,
        json!({ "name": "admin", "kind": "user", "system_admin": true })
    );

    // A registry access token is not accepted.
    let token: Value = api
        .client
        .get(api.url("/token?service=bulwark&scope=repository:team-a/app:pull"))
        .basic_auth("admin", Some(ADMIN_PW))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let jwt = token["token"].as_str().unwrap();
    let a = answer(
        api.client
            .get(api.url("/api/v1/me"))
            .bearer_auth(jwt)
            .send()
            .unwrap(),
    );
    assert!(a.headers.get(WWW_AUTHENTICATE).is_some());
    a.expect_error(401, "UNAUTHORIZED");
    // Unknown routes below /api/v1 are 404s.
    assert_eq!(api.admin("GET", "/nope", None).status, 404);
}

#[test]
fn users() {
    let api = start(&[]);
    let alice = api
        .admin(
            "POST",
            "/users",
            Some(json!({ "name": "alice", "password": PW, "email": "alice@example.com" })),
        )
        .expect(201);
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["system_admin"], false);
    assert_eq!(alice["disabled"], false);
    assert!(alice["id"].is_i64() && alice["created_at"].is_i64());
    assert!(alice.get("password").is_none());
    api.add_user("bob");
    let a = ("alice", PW);
    let b = ("bob", PW);

    // 409, 400.
    api.admin(
        "POST",
        "/users",
        Some(json!({ "name": "alice", "password": PW })),
    )
    .expect(409);
    for bad in [
        json!({ "name": "Alice", "password": PW }),
        json!({ "name": "robot$x", "password": PW }),
        json!({ "name": "", "password": PW }),
        json!({ "name": "carol", "password": "short" }),
        json!({ "name": "carol", "password": PW, "email": "not an address" }),
        json!({ "name": "carol", "password": PW, "role": "god" }),
        json!({ "name": "carol" }),
        json!([1, 2]),
    ] {
        api.admin("POST", "/users", Some(bad.clone()))
            .expect_error(400, "UNSUPPORTED");
    }
    let no_type = answer(
        api.client
            .post(api.url("/api/v1/users"))
            .basic_auth("admin", Some(ADMIN_PW))
            .body(r#"{"name":"carol","password":"user-password-1"}"#)
            .send()
            .unwrap(),
    );
    no_type.expect(400);
    let broken = answer(
        api.client
            .post(api.url("/api/v1/users"))
            .basic_auth("admin", Some(ADMIN_PW))
            .header(CONTENT_TYPE, "application/json")
            .body("{\"name\":")
            .send()
            .unwrap(),
    );
    broken.expect(400);

    // 403 for non-admins.
    api.call(a, "GET", "/users", None)
        .expect_error(403, "DENIED");
    api.call(
        a,
        "POST",
        "/users",
        Some(json!({ "name": "carol", "password": PW })),
    )
    .expect_error(403, "DENIED");
    api.call(a, "GET", "/users/bob", None).expect(403);
    api.call(a, "DELETE", "/users/bob", None).expect(403);
    api.call(
        a,
        "PATCH",
        "/users/alice",
        Some(json!({ "system_admin": true })),
    )
    .expect(403);
    api.call(
        a,
        "PATCH",
        "/users/bob",
        Some(json!({ "password": "hijacked-pw" })),
    )
    .expect(403);

    // Listing and reading.
    let all = api.admin("GET", "/users", None).expect(200);
    assert_eq!(names(&all), ["admin", "alice", "bob"]);
    assert_eq!(
        api.call(a, "GET", "/users/alice", None).expect(200)["name"],
        "alice"
    );
    api.admin("GET", "/users/nobody", None)
        .expect_error(404, "NAME_UNKNOWN");

    // A user changes their own password; Basic on /v2 follows.
    assert_eq!(api.v2_status("alice", PW), 200);
    api.call(
        a,
        "PATCH",
        "/users/alice",
        Some(json!({ "password": "short" })),
    )
    .expect(400);
    api.call(
        a,
        "PATCH",
        "/users/alice",
        Some(json!({ "password": "alice-new-password" })),
    )
    .expect(200);
    assert_eq!(api.v2_status("alice", PW), 401);
    assert_eq!(api.v2_status("alice", "alice-new-password"), 200);

    // The admin disables and deletes.
    let bob = api
        .admin("PATCH", "/users/bob", Some(json!({ "disabled": true })))
        .expect(200);
    assert_eq!(bob["disabled"], true);
    assert_eq!(api.v2_status("bob", PW), 401);
    api.call(b, "GET", "/me", None).expect(401);
    api.admin("PATCH", "/users/bob", Some(json!({ "disabled": false })))
        .expect(200);
    assert_eq!(api.v2_status("bob", PW), 200);
    api.admin("PATCH", "/users/nobody", Some(json!({ "disabled": true })))
        .expect(404);
    assert_eq!(
        api.admin("DELETE", "/users/bob", None).expect(204),
        Value::Null
    );
    api.admin("DELETE", "/users/bob", None).expect(404);
    assert_eq!(api.v2_status("bob", PW), 401);
}

#[test]
fn the_last_admin_cannot_be_removed() {
    let api = start(&[]);
    api.admin("DELETE", "/users/admin", None).expect(409);
    api.admin("PATCH", "/users/admin", Some(json!({ "disabled": true })))
        .expect(409);
    api.admin(
        "PATCH",
        "/users/admin",
        Some(json!({ "system_admin": false })),
    )
    .expect(409);
    assert_eq!(
        api.admin("GET", "/me", None).expect(200)["system_admin"],
        true
    );

    api.admin(
        "POST",
        "/users",
        Some(json!({ "name": "root", "password": PW, "system_admin": true })),
    )
    .expect(201);
    api.admin(
        "PATCH",
        "/users/admin",
        Some(json!({ "system_admin": false })),
    )
    .expect(200);
    let root = ("root", PW);
    api.call(root, "DELETE", "/users/root", None).expect(409);
    api.call(root, "DELETE", "/users/admin", None).expect(204);
}

#[test]
fn teams() {
    let api = start(&[]);
    api.add_user("alice");
    let team = api
        .admin("POST", "/teams", Some(json!({ "name": "devs" })))
        .expect(201);
    assert_eq!(team["name"], "devs");
    api.admin("POST", "/teams", Some(json!({ "name": "devs" })))
        .expect(409);
    api.admin("POST", "/teams", Some(json!({ "name": "Devs!" })))
        .expect(400);
    api.call(
        ("alice", PW),
        "POST",
        "/teams",
        Some(json!({ "name": "x" })),
    )
    .expect(403);
    api.call(("alice", PW), "GET", "/teams", None).expect(403);
    assert_eq!(
        names(&api.admin("GET", "/teams", None).expect(200)),
        ["devs"]
    );

    api.admin("PUT", "/teams/devs/members/alice", None)
        .expect(204);
    api.admin("PUT", "/teams/devs/members/alice", None)
        .expect(204);
    api.admin("PUT", "/teams/devs/members/nobody", None)
        .expect(404);
    api.admin("PUT", "/teams/nope/members/alice", None)
        .expect(404);
    api.call(("alice", PW), "PUT", "/teams/devs/members/alice", None)
        .expect(403);
    let members = api.admin("GET", "/teams/devs/members", None).expect(200);
    assert_eq!(names(&members), ["alice"]);
    api.admin("DELETE", "/teams/devs/members/alice", None)
        .expect(204);
    assert!(
        api.admin("GET", "/teams/devs/members", None)
            .expect(200)
            .as_array()
            .unwrap()
            .is_empty()
    );
    api.admin("DELETE", "/teams/devs", None).expect(204);
    api.admin("DELETE", "/teams/devs", None).expect(404);
    api.admin("GET", "/teams/devs/members", None).expect(404);
}

#[test]
fn projects_members_and_rules() {
    let api = start(&[]);
    api.add_user("alice");
    api.add_user("bob");
    let a = ("alice", PW);
    let b = ("bob", PW);

    // Any user may create a project by default; the creator is its admin.
    let p = api
        .call(
            a,
            "POST",
            "/projects",
            Some(json!({ "name": "team-a", "visibility": "private" })),
        )
        .expect(201);
    assert_eq!(p["name"], "team-a");
    assert_eq!(p["visibility"], "private");
    api.call(
        b,
        "POST",
        "/projects",
        Some(json!({ "name": "team-a", "visibility": "public" })),
    )
    .expect(409);
    for bad in [
        json!({ "name": "Team-A", "visibility": "private" }),
        json!({ "name": "a/b", "visibility": "private" }),
        json!({ "name": "team-c", "visibility": "secret" }),
        json!({ "name": "team-c" }),
    ] {
        api.call(b, "POST", "/projects", Some(bad)).expect(400);
    }
    let members = api
        .call(a, "GET", "/projects/team-a/members", None)
        .expect(200);
    assert_eq!(
        members,
        json!([{ "kind": "user", "name": "alice", "role": "admin" }])
    );

    // Private: bob neither sees nor manages it.
    api.call(b, "GET", "/projects/team-a", None)
        .expect_error(403, "DENIED");
    assert!(names(&api.call(b, "GET", "/projects", None).expect(200)).is_empty());
    assert_eq!(
        names(&api.admin("GET", "/projects", None).expect(200)),
        ["team-a"]
    );
    api.call(b, "GET", "/projects/team-a/members", None)
        .expect(403);
    api.call(
        b,
        "PATCH",
        "/projects/team-a",
        Some(json!({ "visibility": "public" })),
    )
    .expect(403);
    api.call(
        b,
        "PUT",
        "/projects/team-a/members",
        Some(json!({ "kind": "user", "name": "bob", "role": "admin" })),
    )
    .expect(403);

    // The project admin makes it public and adds bob.
    let p = api
        .call(
            a,
            "PATCH",
            "/projects/team-a",
            Some(json!({ "visibility": "public" })),
        )
        .expect(200);
    assert_eq!(p["visibility"], "public");
    assert_eq!(
        api.call(b, "GET", "/projects/team-a", None).expect(200)["name"],
        "team-a"
    );
    assert_eq!(
        names(&api.call(b, "GET", "/projects", None).expect(200)),
        ["team-a"]
    );
    api.call(
        a,
        "PUT",
        "/projects/team-a/members",
        Some(json!({ "kind": "user", "name": "bob", "role": "developer" })),
    )
    .expect(204);
    api.call(
        a,
        "PUT",
        "/projects/team-a/members",
        Some(json!({ "kind": "user", "name": "nobody", "role": "developer" })),
    )
    .expect(404);
    api.call(
        a,
        "PUT",
        "/projects/team-a/members",
        Some(json!({ "kind": "robot", "name": "bob", "role": "developer" })),
    )
    .expect(400);
    api.call(
        a,
        "PUT",
        "/projects/team-a/members",
        Some(json!({ "kind": "user", "name": "bob", "role": "owner" })),
    )
    .expect(400);
    let members = api
        .call(b, "GET", "/projects/team-a/members", None)
        .expect(200);
    assert_eq!(members.as_array().unwrap().len(), 2);
    api.admin(
        "PUT",
        "/projects/nope/members",
        Some(json!({ "kind": "user", "name": "bob", "role": "reader" })),
    )
    .expect(404);

    // Rules.
    api.call(
        a,
        "POST",
        "/projects/team-a/rules",
        Some(json!({ "pattern": "team-b/*", "kind": "user", "name": "bob", "role": "maintainer" })),
    )
    .expect(400);
    api.call(
        b,
        "POST",
        "/projects/team-a/rules",
        Some(json!({ "pattern": "team-a/app/*", "kind": "user", "name": "bob", "role": "maintainer" })),
    )
    .expect(403);
    let rule = api
        .call(
            a,
            "POST",
            "/projects/team-a/rules",
            Some(json!({ "pattern": "team-a/app/*", "kind": "user", "name": "bob", "role": "maintainer" })),
        )
        .expect(201);
    assert_eq!(rule["pattern"], "team-a/app/*");
    assert_eq!(rule["kind"], "user");
    assert_eq!(rule["name"], "bob");
    assert_eq!(rule["role"], "maintainer");
    let id = rule["id"].as_i64().unwrap();
    let rules = api
        .call(a, "GET", "/projects/team-a/rules", None)
        .expect(200);
    assert_eq!(rules, json!([rule]));
    api.call(b, "GET", "/projects/team-a/rules", None)
        .expect(403);
    api.call(a, "DELETE", "/projects/team-a/rules/abc", None)
        .expect(400);
    api.call(a, "DELETE", &format!("/projects/team-a/rules/{id}"), None)
        .expect(204);
    api.call(a, "DELETE", &format!("/projects/team-a/rules/{id}"), None)
        .expect(404);

    // Removing members.
    api.call(a, "DELETE", "/projects/team-a/members/user/bob", None)
        .expect(204);
    api.call(a, "DELETE", "/projects/team-a/members/user/bob", None)
        .expect(404);
    api.call(a, "DELETE", "/projects/team-a/members/robot/bob", None)
        .expect(400);

    // Deleting is for system admins.
    api.call(a, "DELETE", "/projects/team-a", None).expect(403);
    api.admin("DELETE", "/projects/team-a", None).expect(204);
    api.admin("GET", "/projects/team-a", None).expect(404);
    api.admin("DELETE", "/projects/team-a", None).expect(404);
}

#[test]
fn project_creation_can_be_reserved_to_admins() {
    let api = start(&[("BULWARK_AUTH__PROJECT_CREATION", "admins")]);
    api.add_user("alice");
    api.call(
        ("alice", PW),
        "POST",
        "/projects",
        Some(json!({ "name": "team-a", "visibility": "private" })),
    )
    .expect_error(403, "DENIED");
    api.admin(
        "POST",
        "/projects",
        Some(json!({ "name": "team-a", "visibility": "private" })),
    )
    .expect(201);
}

#[test]
fn robots_secret_is_shown_once_and_works_on_v2() {
    let api = start(&[]);
    api.add_user("alice");
    api.add_user("bob");
    let a = ("alice", PW);
    api.call(
        a,
        "POST",
        "/projects",
        Some(json!({ "name": "team-a", "visibility": "private" })),
    )
    .expect(201);
    let body = json!({
        "name": "ci",
        "description": "CI pipeline",
        "permissions": [{ "pattern": "team-a/*", "actions": ["pull", "push"] }],
    });
    api.call(
        ("bob", PW),
        "POST",
        "/projects/team-a/robots",
        Some(body.clone()),
    )
    .expect_error(403, "DENIED");
    let robot = api
        .call(a, "POST", "/projects/team-a/robots", Some(body.clone()))
        .expect(201);
    assert_eq!(robot["name"], "robot$team-a+ci");
    assert_eq!(robot["project"], "team-a");
    assert_eq!(robot["description"], "CI pipeline");
    assert_eq!(
        robot["permissions"],
        json!([{ "pattern": "team-a/*", "actions": ["pull", "push"] }])
    );
    let secret = robot["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 40);
    // Shown once: the listing has no secret.
    let listed = api
        .call(a, "GET", "/projects/team-a/robots", None)
        .expect(200);
    assert_eq!(names(&listed), ["robot$team-a+ci"]);
    assert!(listed[0].get("secret").is_none(), "{listed}");
    assert!(!listed.to_string().contains(&secret));

    // Usable as Basic on /v2/, and on /api/v1/me, but it manages nothing.
    assert_eq!(api.v2_status("robot$team-a+ci", &secret), 200);
    let me = api
        .call(("robot$team-a+ci", &secret), "GET", "/me", None)
        .expect(200);
    assert_eq!(me["kind"], "robot");
    assert_eq!(me["system_admin"], false);
    api.call(
        ("robot$team-a+ci", &secret),
        "GET",
        "/projects/team-a/robots",
        None,
    )
    .expect(403);

    // 409, 400, 404.
    api.call(a, "POST", "/projects/team-a/robots", Some(body))
        .expect(409);
    for bad in [
        json!({ "name": "x", "permissions": [{ "pattern": "team-b/*", "actions": ["pull"] }] }),
        json!({ "name": "x", "permissions": [{ "pattern": "**", "actions": ["pull"] }] }),
        json!({ "name": "x", "permissions": [{ "pattern": "team-a/*", "actions": [] }] }),
        json!({ "name": "x", "permissions": [{ "pattern": "team-a/*", "actions": ["fly"] }] }),
        json!({ "name": "x", "permissions": [] }),
        json!({ "name": "X", "permissions": [{ "pattern": "team-a/*", "actions": ["pull"] }] }),
        json!({ "name": "x", "permissions": [{ "pattern": "team-a/*", "actions": ["pull"] }], "expires_in_secs": 0 }),
    ] {
        api.call(a, "POST", "/projects/team-a/robots", Some(bad))
            .expect(400);
    }
    api.admin(
        "POST",
        "/projects/nope/robots",
        Some(json!({ "name": "x", "permissions": [{ "pattern": "nope/*", "actions": ["pull"] }] })),
    )
    .expect(404);
    api.call(
        a,
        "PATCH",
        "/projects/team-a/robots/nope",
        Some(json!({ "disabled": true })),
    )
    .expect(404);

    // Disabled: Basic stops working; enabled again: it works.
    let r = api
        .call(
            a,
            "PATCH",
            "/projects/team-a/robots/ci",
            Some(json!({ "disabled": true })),
        )
        .expect(200);
    assert_eq!(r["disabled"], true);
    assert_eq!(api.v2_status("robot$team-a+ci", &secret), 401);
    api.call(
        a,
        "PATCH",
        "/projects/team-a/robots/ci",
        Some(json!({ "disabled": false })),
    )
    .expect(200);
    assert_eq!(api.v2_status("robot$team-a+ci", &secret), 200);
    api.call(a, "DELETE", "/projects/team-a/robots/ci", None)
        .expect(204);
    api.call(a, "DELETE", "/projects/team-a/robots/ci", None)
        .expect(404);
    assert_eq!(api.v2_status("robot$team-a+ci", &secret), 401);

    // System robots: system admins only.
    let sys_body =
        json!({ "name": "mirror", "permissions": [{ "pattern": "**", "actions": ["pull"] }] });
    api.call(a, "GET", "/robots", None).expect(403);
    api.call(a, "POST", "/robots", Some(sys_body.clone()))
        .expect(403);
    let sys = api
        .admin("POST", "/robots", Some(sys_body.clone()))
        .expect(201);
    assert_eq!(sys["name"], "robot$mirror");
    assert!(sys["project"].is_null());
    api.admin("POST", "/robots", Some(sys_body)).expect(409);
    assert_eq!(
        api.v2_status("robot$mirror", sys["secret"].as_str().unwrap()),
        200
    );
    assert_eq!(
        names(&api.admin("GET", "/robots", None).expect(200)),
        ["robot$mirror"]
    );
}

#[test]
fn personal_tokens_and_revocation() {
    let api = start(&[]);
    api.add_user("alice");
    api.add_user("bob");
    let a = ("alice", PW);

    let created = api
        .call(
            a,
            "POST",
            "/users/alice/tokens",
            Some(json!({ "name": "laptop" })),
        )
        .expect(201);
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("bwk_"), "{token}");
    assert_eq!(created["name"], "laptop");
    assert!(created["revoked_at"].is_null());
    assert_eq!(api.v2_status("alice", &token), 200);

    // Shown once.
    let listed = api.call(a, "GET", "/users/alice/tokens", None).expect(200);
    assert_eq!(names(&listed), ["laptop"]);
    assert!(!listed.to_string().contains(&token));
    assert!(listed[0].get("token").is_none());

    // Others may not; admins may; duplicates and bad input.
    api.call(("bob", PW), "GET", "/users/alice/tokens", None)
        .expect(403);
    api.call(
        ("bob", PW),
        "DELETE",
        &format!("/users/alice/tokens/{id}"),
        None,
    )
    .expect(403);
    api.call(
        ("bob", PW),
        "DELETE",
        &format!("/users/bob/tokens/{id}"),
        None,
    )
    .expect(404);
    assert_eq!(
        names(&api.admin("GET", "/users/alice/tokens", None).expect(200)),
        ["laptop"]
    );
    api.call(
        a,
        "POST",
        "/users/alice/tokens",
        Some(json!({ "name": "laptop" })),
    )
    .expect(409);
    api.call(
        a,
        "POST",
        "/users/alice/tokens",
        Some(json!({ "name": "" })),
    )
    .expect(400);
    api.call(
        a,
        "POST",
        "/users/alice/tokens",
        Some(json!({ "name": "x", "permissions": [{ "pattern": "A/*", "actions": ["pull"] }] })),
    )
    .expect(400);
    api.admin("GET", "/users/nobody/tokens", None).expect(404);

    // The token manages its owner's tokens, nothing else.
    let t = ("alice", token.as_str());
    api.call(
        t,
        "POST",
        "/users/alice/tokens",
        Some(json!({ "name": "ci", "expires_in_secs": 3600 })),
    )
    .expect(201);
    api.call(
        t,
        "POST",
        "/projects",
        Some(json!({ "name": "team-t", "visibility": "private" })),
    )
    .expect(403);
    // A restricted token does not even manage tokens.
    let scoped = api
        .call(
            a,
            "POST",
            "/users/alice/tokens",
            Some(json!({ "name": "scoped", "permissions": [{ "pattern": "team-a/*", "actions": ["pull"] }] })),
        )
        .expect(201);
    assert_eq!(
        scoped["permissions"],
        json!([{ "pattern": "team-a/*", "actions": ["pull"] }])
    );
    let scoped = scoped["token"].as_str().unwrap().to_owned();
    api.call(("alice", &scoped), "GET", "/users/alice/tokens", None)
        .expect(403);

    // Revocation stops Basic logins at once.
    api.call(a, "DELETE", &format!("/users/alice/tokens/{id}"), None)
        .expect(204);
    assert_eq!(api.v2_status("alice", &token), 401);
    api.call(t, "GET", "/me", None).expect(401);
    api.call(a, "DELETE", "/users/alice/tokens/0123456789abcdef", None)
        .expect(404);
    let listed = api.call(a, "GET", "/users/alice/tokens", None).expect(200);
    let revoked = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_i64());
}

#[test]
fn repositories_tags_and_manifests() {
    let api = start(&[]);
    api.add_user("alice");
    api.add_user("bob");
    for p in ["team-a", "team-b"] {
        api.admin(
            "POST",
            "/projects",
            Some(json!({ "name": p, "visibility": "private" })),
        )
        .expect(201);
    }
    api.admin(
        "PUT",
        "/projects/team-a/members",
        Some(json!({ "kind": "user", "name": "alice", "role": "reader" })),
    )
    .expect(204);
    let d1 = api.push_image("team-a/app", "v1", 1);
    api.push_image("team-a/app", "v2", 2);
    api.push_image("team-b/other", "latest", 3);
    let a = ("alice", PW);
    let b = ("bob", PW);

    // Listing: only what the caller may pull.
    assert_eq!(
        names(&api.admin("GET", "/repositories", None).expect(200)),
        ["team-a/app", "team-b/other"]
    );
    assert_eq!(
        names(
            &api.admin("GET", "/repositories?project=team-b", None)
                .expect(200)
        ),
        ["team-b/other"]
    );
    assert_eq!(
        names(&api.call(a, "GET", "/repositories", None).expect(200)),
        ["team-a/app"]
    );
    assert!(
        names(
            &api.call(a, "GET", "/repositories?project=team-b", None)
                .expect(200)
        )
        .is_empty()
    );
    assert!(names(&api.call(b, "GET", "/repositories", None).expect(200)).is_empty());
    api.call(a, "GET", "/repositories?project=Bad!", None)
        .expect(400);

    // Tags (pull).
    let tags = api
        .call(a, "GET", "/repositories/tags?repository=team-a/app", None)
        .expect(200);
    assert_eq!(names(&tags), ["v1", "v2"]);
    assert_eq!(tags[0]["digest"], d1.as_str());
    api.call(b, "GET", "/repositories/tags?repository=team-a/app", None)
        .expect_error(403, "DENIED");
    api.admin("GET", "/repositories/tags?repository=team-a/nope", None)
        .expect_error(404, "NAME_UNKNOWN");
    api.admin("GET", "/repositories/tags?repository=Team/App", None)
        .expect_error(400, "NAME_INVALID");
    api.admin("GET", "/repositories/tags", None).expect(400);

    // Deleting a tag (delete): readers may not.
    api.call(
        a,
        "DELETE",
        "/repositories/tags?repository=team-a/app&tag=v2",
        None,
    )
    .expect_error(403, "DENIED");
    api.admin(
        "DELETE",
        "/repositories/tags?repository=team-a/app&tag=v2",
        None,
    )
    .expect(204);
    api.admin(
        "DELETE",
        "/repositories/tags?repository=team-a/app&tag=v2",
        None,
    )
    .expect(404);
    api.admin(
        "DELETE",
        "/repositories/tags?repository=team-a/app&tag=-bad",
        None,
    )
    .expect_error(400, "TAG_INVALID");
    let tags = api
        .call(a, "GET", "/repositories/tags?repository=team-a/app", None)
        .expect(200);
    assert_eq!(names(&tags), ["v1"]);

    // Deleting a manifest by digest takes its tags along.
    let path = format!("/repositories/manifests?repository=team-a/app&digest={d1}");
    api.call(a, "DELETE", &path, None).expect(403);
    api.admin("DELETE", &path, None).expect(204);
    api.admin("DELETE", &path, None).expect(404);
    api.admin(
        "DELETE",
        "/repositories/manifests?repository=team-a/app&digest=sha256:xyz",
        None,
    )
    .expect_error(400, "DIGEST_INVALID");
    let tags = api
        .admin("GET", "/repositories/tags?repository=team-a/app", None)
        .expect(200);
    assert!(names(&tags).is_empty());
}
