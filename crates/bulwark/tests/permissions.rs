//! The permission matrix: every `/v2` endpoint kind × every kind of caller, on a private and on
//! a public project. The expectation is derived from the server's own tables: the actions an
//! endpoint needs come from `bulwark_server::auth::required_actions` (on the endpoint parsed
//! from the very request sent) and a member's actions from `bulwark_auth::Role::actions`. Allowed
//! requests must answer their success status; denied ones 401 with a Bearer challenge naming the
//! scope (anonymous) or 403 DENIED (authenticated Basic callers), and change nothing.
//! Hand-written cases cover cross-repository mounts, deletes and referrers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use bulwark_auth::{Action, Role};
use bulwark_oci::{Endpoint, Method};
use bulwark_server::auth::required_actions;
use bulwark_testkit::{
    Auth, HttpResponse, Robot, TestServer, error_codes, push_blob, push_manifest, random_bytes,
    sha256_digest, with_query,
};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_bulwark");
const PASSWORD: &str = "matrix-Pa55word!";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const PROJECT: &str = "proj";
const REPO: &str = "proj/app";

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    SystemAdmin,
    /// A user with this role in the project.
    Member(Role),
    /// A user with no role in the project.
    Outsider,
    /// A robot of the project with `pull` on it.
    RobotPull,
    /// A robot of the project with `pull` and `push` on it.
    RobotPush,
    /// A robot of another project, with every action there.
    ForeignRobot,
}

struct Caller {
    who: Who,
    label: String,
    creds: Option<(String, String)>,
}

impl Caller {
    fn auth(&self) -> Auth<'_> {
        match (&self.creds, self.who) {
            (_, Who::SystemAdmin) => Auth::Admin,
            (Some((user, password)), _) => Auth::Basic(user, password),
            (None, _) => Auth::Anonymous,
        }
    }

    /// The repository actions this caller has in a project of the given visibility, by the
    /// documented policy: members get their role's actions, everyone but robots gets pull on
    /// public projects, robots get exactly their permission list.
    fn granted(&self, public: bool) -> Vec<Action> {
        let public_pull: &[Action] = if public { &[Action::Pull] } else { &[] };
        let mut actions: Vec<Action> = match self.who {
            Who::Anonymous | Who::Outsider => public_pull.to_vec(),
            Who::SystemAdmin => vec![Action::Pull, Action::Push, Action::Delete],
            Who::Member(role) => role.actions().iter().chain(public_pull).copied().collect(),
            Who::RobotPull => vec![Action::Pull],
            Who::RobotPush => vec![Action::Pull, Action::Push],
            Who::ForeignRobot => Vec::new(),
        };
        actions.dedup();
        actions
    }
}

/// A server with project `proj` (of the given visibility) holding `proj/app:v1`, a private
/// project `other`, a user per role in `proj`, an outsider, and robots.
struct World {
    server: TestServer,
    public: bool,
    callers: Vec<Caller>,
    layer: String,
    config: String,
    manifest: String,
}

fn member_name(role: Role) -> String {
    format!("m-{role}")
}

fn world(visibility: &str) -> World {
    let server = TestServer::start(Path::new(BIN));
    server.create_project(PROJECT, visibility);
    server.create_project("other", "private");
    let mut callers = vec![
        Caller {
            who: Who::Anonymous,
            label: "anonymous".into(),
            creds: None,
        },
        Caller {
            who: Who::SystemAdmin,
            label: "system admin".into(),
            creds: None,
        },
    ];
    for role in Role::ALL {
        let name = member_name(role);
        server.create_user(&name, PASSWORD);
        server.add_member(PROJECT, &name, role.as_str());
        callers.push(Caller {
            who: Who::Member(role),
            label: format!("project {role}"),
            creds: Some((name, PASSWORD.into())),
        });
    }
    server.create_user("outsider", PASSWORD);
    callers.push(Caller {
        who: Who::Outsider,
        label: "non-member user".into(),
        creds: Some(("outsider".into(), PASSWORD.into())),
    });
    let robot = |project: &str, short: &str, actions: &[&str]| -> Robot {
        server.create_robot(project, short, &[(&format!("{project}/**"), actions)], None)
    };
    for (who, label, robot) in [
        (
            Who::RobotPull,
            "robot (pull)",
            robot(PROJECT, "puller", &["pull"]),
        ),
        (
            Who::RobotPush,
            "robot (pull, push)",
            robot(PROJECT, "pusher", &["pull", "push"]),
        ),
        (
            Who::ForeignRobot,
            "robot of another project",
            robot("other", "ci", &["pull", "push", "delete"]),
        ),
    ] {
        callers.push(Caller {
            who,
            label: label.into(),
            creds: Some((robot.name, robot.secret)),
        });
    }

    let base = server.base_url();
    let config = push_blob(&base, REPO, br#"{"architecture":"amd64","os":"linux"}"#);
    let layer = push_blob(&base, REPO, &random_bytes(1, 4096));
    let manifest = push_manifest(
        &base,
        REPO,
        "v1",
        OCI_MANIFEST,
        &manifest_bytes(&config, &layer, "base"),
    );
    World {
        server,
        public: visibility == "public",
        callers,
        layer,
        config,
        manifest,
    }
}

fn manifest_bytes(config: &str, layer: &str, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": br#"{"architecture":"amd64","os":"linux"}"#.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer,
            "size": 4096,
        }],
        "annotations": { "note": note },
    }))
    .unwrap()
}

/// The endpoint kinds of the matrix.
#[derive(Debug, Clone, Copy)]
enum Kind {
    GetManifest,
    HeadManifest,
    PutManifest,
    DeleteManifest,
    GetBlob,
    HeadBlob,
    DeleteBlob,
    StartUpload,
    PatchUpload,
    PutUpload,
    UploadStatus,
    CancelUpload,
    ListTags,
    Referrers,
    Catalog,
}

const KINDS: [Kind; 15] = [
    Kind::GetManifest,
    Kind::HeadManifest,
    Kind::PutManifest,
    Kind::DeleteManifest,
    Kind::GetBlob,
    Kind::HeadBlob,
    Kind::DeleteBlob,
    Kind::StartUpload,
    Kind::PatchUpload,
    Kind::PutUpload,
    Kind::UploadStatus,
    Kind::CancelUpload,
    Kind::ListTags,
    Kind::Referrers,
    Kind::Catalog,
];

/// One request of the matrix, prepared by the admin: what to send, the status it answers when
/// allowed, and what the admin must still see after a refusal.
struct Probe {
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    ok: u16,
    /// (target, status) of an admin GET that must hold after a denial.
    unchanged: Option<(String, u16)>,
}

fn start_upload(s: &TestServer) -> String {
    let r = s.request("POST", &format!("/v2/{REPO}/blobs/uploads/"), &[], b"");
    r.expect_status(202);
    s.target(r.header("location").expect("upload Location"))
}

fn probe(w: &World, kind: Kind, cell: usize) -> Probe {
    let s = &w.server;
    let base = s.base_url();
    let mut p = Probe {
        method: "GET",
        target: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
        ok: 200,
        unchanged: None,
    };
    let manifests = format!("/v2/{REPO}/manifests");
    let blobs = format!("/v2/{REPO}/blobs");
    match kind {
        Kind::GetManifest | Kind::HeadManifest => {
            p.method = if matches!(kind, Kind::GetManifest) {
                "GET"
            } else {
                "HEAD"
            };
            p.target = format!("{manifests}/v1");
            p.headers = vec![("Accept", OCI_MANIFEST)];
        }
        Kind::PutManifest => {
            p.method = "PUT";
            p.target = format!("{manifests}/put-{cell}");
            p.headers = vec![("Content-Type", OCI_MANIFEST)];
            p.body = manifest_bytes(&w.config, &w.layer, &format!("put {cell}"));
            p.ok = 201;
            p.unchanged = Some((p.target.clone(), 404));
        }
        Kind::DeleteManifest => {
            let bytes = manifest_bytes(&w.config, &w.layer, &format!("delete {cell}"));
            let digest = push_manifest(&base, REPO, &format!("del-{cell}"), OCI_MANIFEST, &bytes);
            p.method = "DELETE";
            p.target = format!("{manifests}/{digest}");
            p.ok = 202;
            p.unchanged = Some((p.target.clone(), 200));
        }
        Kind::GetBlob | Kind::HeadBlob => {
            p.method = if matches!(kind, Kind::GetBlob) {
                "GET"
            } else {
                "HEAD"
            };
            p.target = format!("{blobs}/{}", w.layer);
        }
        Kind::DeleteBlob => {
            let digest = push_blob(&base, REPO, format!("delete blob {cell}").as_bytes());
            p.method = "DELETE";
            p.target = format!("{blobs}/{digest}");
            p.ok = 202;
            p.unchanged = Some((p.target.clone(), 200));
        }
        Kind::StartUpload => {
            p.method = "POST";
            p.target = format!("{blobs}/uploads/");
            p.ok = 202;
        }
        Kind::PatchUpload => {
            p.method = "PATCH";
            p.target = start_upload(s);
            p.headers = vec![
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", "0-9"),
            ];
            p.body = b"0123456789".to_vec();
            p.ok = 202;
        }
        Kind::PutUpload => {
            let body = format!("put upload {cell}").into_bytes();
            let digest = sha256_digest(&body);
            p.method = "PUT";
            p.target = with_query(&start_upload(s), "digest", &digest);
            p.headers = vec![("Content-Type", "application/octet-stream")];
            p.body = body;
            p.ok = 201;
            p.unchanged = Some((format!("{blobs}/{digest}"), 404));
        }
        Kind::UploadStatus => {
            p.target = start_upload(s);
            p.ok = 204;
        }
        Kind::CancelUpload => {
            p.method = "DELETE";
            p.target = start_upload(s);
            p.ok = 204;
            p.unchanged = Some((p.target.clone(), 204));
        }
        Kind::ListTags => p.target = format!("/v2/{REPO}/tags/list"),
        Kind::Referrers => p.target = format!("/v2/{REPO}/referrers/{}", w.manifest),
        Kind::Catalog => p.target = "/v2/_catalog".into(),
    }
    p
}

/// The actions the server requires for this request, from its own table; `None` for the
/// catalog (system admins only).
fn required(method: &str, target: &str) -> Option<Vec<Action>> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let endpoint = Endpoint::parse(Method::from_str_upper(method), path, query)
        .unwrap_or_else(|e| panic!("{method} {target} is not a /v2 endpoint: {e}"));
    required_actions(&endpoint).map(|(repo, actions)| {
        assert_eq!(repo.as_str(), REPO, "{method} {target}");
        actions.to_vec()
    })
}

fn challenge(s: &TestServer, scope: &str) -> String {
    format!(
        "Bearer realm=\"http://{}/token\",service=\"bulwark\",scope=\"{scope}\"",
        s.addr()
    )
}

/// Checks one answer; returns a description of the mismatch, if any.
fn check(w: &World, caller: &Caller, kind: Kind, p: &Probe, r: &HttpResponse) -> Option<String> {
    let s = &w.server;
    let required = required(p.method, &p.target);
    let (allowed, scope) = match &required {
        Some(actions) => {
            let granted = caller.granted(w.public);
            let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
            (
                actions.iter().all(|a| granted.contains(a)),
                format!("repository:{REPO}:{}", names.join(",")),
            )
        }
        None => (
            caller.who == Who::SystemAdmin,
            "registry:catalog:*".to_owned(),
        ),
    };
    let what = format!(
        "{} as {} ({kind:?}, needs {required:?}): {} {:?} {}",
        r.request,
        caller.label,
        r.status,
        r.header("www-authenticate"),
        r.text()
    );
    if allowed {
        return (r.status != p.ok).then(|| format!("allowed, expected {}: {what}", p.ok));
    }
    let head = p.method == "HEAD";
    if caller.who == Who::Anonymous {
        let want = challenge(s, &scope);
        let ok = r.status == 401
            && r.header("www-authenticate") == Some(want.as_str())
            && (head || error_codes(&r.body) == ["UNAUTHORIZED"]);
        if !ok {
            return Some(format!("denied, expected 401 with {want}: {what}"));
        }
    } else if r.status != 403 || !(head || error_codes(&r.body) == ["DENIED"]) {
        return Some(format!("denied, expected 403 DENIED: {what}"));
    }
    if let Some((target, status)) = &p.unchanged {
        let after = s.request("GET", target, &[("Accept", OCI_MANIFEST)], b"");
        if after.status != *status {
            return Some(format!(
                "denied, but afterwards GET {target} answers {} instead of {status}: {what}",
                after.status
            ));
        }
    }
    None
}

fn run_matrix(visibility: &str) {
    let w = world(visibility);
    let mut failures = Vec::new();
    let mut cells = 0;
    for caller in &w.callers {
        for kind in KINDS {
            cells += 1;
            let p = probe(&w, kind, cells);
            let headers: Vec<(&str, &str)> = p.headers.to_vec();
            let r = w
                .server
                .request_as(caller.auth(), p.method, &p.target, &headers, &p.body);
            failures.extend(check(&w, caller, kind, &p, &r));
        }
    }
    assert_eq!(cells, 10 * 15);
    assert!(
        failures.is_empty(),
        "{} of {cells} cells on a {visibility} project are wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn matrix_on_a_private_project() {
    run_matrix("private");
}

#[test]
fn matrix_on_a_public_project() {
    run_matrix("public");
}

fn mount(
    s: &TestServer,
    auth: Auth<'_>,
    target: &str,
    digest: &str,
    from: Option<&str>,
) -> HttpResponse {
    let mut path = format!("/v2/{target}/blobs/uploads/?mount={digest}");
    if let Some(from) = from {
        path = with_query(&path, "from", from);
    }
    s.request_as(auth, "POST", &path, &[], b"")
}

fn blob_status(s: &TestServer, repo: &str, digest: &str) -> u16 {
    s.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], b"")
        .status
}

#[test]
fn cross_repository_mount_needs_pull_on_the_source() {
    let w = world("private");
    let s = &w.server;
    let base = s.base_url();
    let dev_name = member_name(Role::Developer);
    let dev = Auth::Basic(&dev_name, PASSWORD);
    let secret_blob = b"only in a project the developer cannot read";
    let hidden = push_blob(&base, "other/src", secret_blob);
    let readable = push_blob(&base, "proj/lib", b"readable by the developer");

    // From a readable repository: mounted.
    let r = mount(s, dev, "proj/target", &readable, Some("proj/lib"));
    r.expect_status(201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/proj/target/blobs/{readable}").as_str())
    );
    assert_eq!(blob_status(s, "proj/target", &readable), 200);

    // From an unreadable repository: a new upload session, nothing linked.
    let r = mount(s, dev, "proj/target", &hidden, Some("other/src"));
    r.expect_status(202);
    let session = s.target(r.header("location").expect("upload Location"));
    assert!(
        session.starts_with("/v2/proj/target/blobs/uploads/"),
        "{session}"
    );
    assert_eq!(blob_status(s, "proj/target", &hidden), 404);
    // Without `from`, the server must not pick the unreadable repository either.
    let r = mount(s, dev, "proj/target", &hidden, None);
    r.expect_status(202);
    assert_eq!(blob_status(s, "proj/target", &hidden), 404);
    // The session is a real one: uploading the content itself still works.
    s.request_as(
        dev,
        "PUT",
        &with_query(&session, "digest", &hidden),
        &[],
        secret_blob,
    )
    .expect_status(201);
    assert_eq!(blob_status(s, "proj/target", &hidden), 200);

    // Naming a readable `from` that does not hold the blob does not reach the unreadable copy.
    let r = mount(s, dev, "proj/target5", &hidden, Some("proj/lib"));
    r.expect_status(202);
    assert_eq!(blob_status(s, "proj/target5", &hidden), 404);

    // A `from`-less mount of a blob the caller can read somewhere is linked.
    let r = mount(s, dev, "proj/target2", &readable, None);
    r.expect_status(201);
    assert_eq!(blob_status(s, "proj/target2", &readable), 200);

    // Reading the source is not enough: the target needs push.
    let reader_name = member_name(Role::Reader);
    let reader = Auth::Basic(&reader_name, PASSWORD);
    mount(s, reader, "proj/target3", &readable, Some("proj/lib")).expect_error(403, "DENIED");
    assert_eq!(blob_status(s, "proj/target3", &readable), 404);
    // A robot of `other` may read the source but not push into `proj`.
    let foreign = w
        .callers
        .iter()
        .find(|c| c.who == Who::ForeignRobot)
        .unwrap();
    mount(
        s,
        foreign.auth(),
        "proj/target3",
        &hidden,
        Some("other/src"),
    )
    .expect_error(403, "DENIED");
    // Anonymous callers are challenged for push on the target.
    let r = mount(
        s,
        Auth::Anonymous,
        "proj/target3",
        &readable,
        Some("proj/lib"),
    );
    r.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        r.header("www-authenticate"),
        Some(challenge(s, "repository:proj/target3:pull,push").as_str())
    );
    assert_eq!(blob_status(s, "proj/target3", &readable), 404);

    // Control: the admin may read everything, so its `from`-less mount of the hidden blob works.
    mount(s, Auth::Admin, "proj/target4", &hidden, None).expect_status(201);
    assert_eq!(blob_status(s, "proj/target4", &hidden), 200);
}

#[test]
fn delete_needs_delete_and_referrers_need_pull() {
    let w = world("private");
    let s = &w.server;
    let target = format!("/v2/{REPO}/manifests/{}", w.manifest);
    let dev_name = member_name(Role::Developer);
    let maint_name = member_name(Role::Maintainer);
    let reader_name = member_name(Role::Reader);

    // A developer may push but not delete, neither manifests nor blobs.
    s.request_as(
        Auth::Basic(&dev_name, PASSWORD),
        "DELETE",
        &target,
        &[],
        b"",
    )
    .expect_error(403, "DENIED");
    let blob = format!("/v2/{REPO}/blobs/{}", w.layer);
    s.request_as(Auth::Basic(&dev_name, PASSWORD), "DELETE", &blob, &[], b"")
        .expect_error(403, "DENIED");
    s.request("GET", &target, &[("Accept", OCI_MANIFEST)], b"")
        .expect_status(200);
    s.request("HEAD", &blob, &[], b"").expect_status(200);

    // Referrers need pull: a reader gets the index, an outsider is refused, anonymous is
    // challenged for pull.
    let referrers = format!("/v2/{REPO}/referrers/{}", w.manifest);
    let r = s.request_as(
        Auth::Basic(&reader_name, PASSWORD),
        "GET",
        &referrers,
        &[],
        b"",
    );
    r.expect_status(200);
    assert_eq!(r.json()["manifests"], json!([]));
    s.request_as(
        Auth::Basic("outsider", PASSWORD),
        "GET",
        &referrers,
        &[],
        b"",
    )
    .expect_error(403, "DENIED");
    let r = s.request_as(Auth::Anonymous, "GET", &referrers, &[], b"");
    r.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        r.header("www-authenticate"),
        Some(challenge(s, &format!("repository:{REPO}:pull")).as_str())
    );

    // A maintainer may delete.
    s.request_as(
        Auth::Basic(&maint_name, PASSWORD),
        "DELETE",
        &target,
        &[],
        b"",
    )
    .expect_status(202);
    s.request("GET", &target, &[("Accept", OCI_MANIFEST)], b"")
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[test]
fn a_restricted_personal_token_gets_at_most_its_permissions() {
    let w = world("private");
    let s = &w.server;
    let dev_name = member_name(Role::Developer);
    let pat = s.create_personal_token(&dev_name, "read-only", &[("proj/**", &["pull"])]);
    let auth = Auth::Basic(&dev_name, &pat.token);
    s.request_as(auth, "GET", &format!("/v2/{REPO}/tags/list"), &[], b"")
        .expect_status(200);
    s.request_as(
        auth,
        "POST",
        &format!("/v2/{REPO}/blobs/uploads/"),
        &[],
        b"",
    )
    .expect_error(403, "DENIED");
    // The same user's password still pushes.
    s.request_as(
        Auth::Basic(&dev_name, PASSWORD),
        "POST",
        &format!("/v2/{REPO}/blobs/uploads/"),
        &[],
        b"",
    )
    .expect_status(202);
    // A token asked for push with it carries pull only.
    let token = s.token(
        Some((&dev_name, &pat.token)),
        &[&format!("repository:{REPO}:pull,push")],
    );
    let r = s.request_as(
        Auth::Bearer(&token),
        "POST",
        &format!("/v2/{REPO}/blobs/uploads/"),
        &[],
        b"",
    );
    r.expect_error(401, "UNAUTHORIZED");
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"http://{}/token\",service=\"bulwark\",scope=\"repository:{REPO}:pull,push\",error=\"insufficient_scope\"",
                s.addr()
            )
            .as_str()
        )
    );
    // Permissions never widen the owner's rights: pull on a project the owner cannot read.
    let wide = s.create_personal_token(&dev_name, "wide", &[("other/**", &["pull", "push"])]);
    push_blob(&s.base_url(), "other/src", b"not for the developer");
    s.request_as(
        Auth::Basic(&dev_name, &wide.token),
        "GET",
        "/v2/other/src/tags/list",
        &[],
        b"",
    )
    .expect_error(403, "DENIED");
}

#[test]
fn an_upload_session_is_bound_to_its_repository() {
    let w = world("private");
    let s = &w.server;
    // The outsider owns a project of their own (created by pushing to it)...
    let outsider = Auth::Basic("outsider", PASSWORD);
    let r = s.request_as(outsider, "POST", "/v2/mine/app/blobs/uploads/", &[], b"");
    r.expect_status(202);
    // ...and learns the id of a session in `proj/app`, which they may not touch.
    let theirs = start_upload(s);
    let id = theirs.rsplit('/').next().unwrap().to_owned();
    s.request_as(outsider, "GET", &theirs, &[], b"")
        .expect_error(403, "DENIED");
    let hijack = format!("/v2/mine/app/blobs/uploads/{id}");
    s.request_as(outsider, "GET", &hijack, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request_as(
        outsider,
        "PATCH",
        &hijack,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "0-4"),
        ],
        b"evil!",
    )
    .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    s.request_as(outsider, "DELETE", &hijack, &[], b"")
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    // The session is untouched.
    let r = s.request("GET", &theirs, &[], b"");
    r.expect_status(204);
    assert_eq!(r.header("range"), Some("0-0"));
}
