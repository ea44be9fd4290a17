#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `bulwark admin` on the real binary: offline on a data directory (and refused while a server
//! runs there), and online through a running server's `/api/v1` with `--url`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use bulwark_testkit::TestServer;
use serde_json::Value;

const ADMIN_PW: &str = "admin-secret-pw";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bulwark"))
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn success(self) -> String {
        assert!(
            self.ok,
            "failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    #[track_caller]
    fn json(self) -> Value {
        let out = self.success();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    #[track_caller]
    fn failure(self, needle: &str) {
        assert!(!self.ok, "succeeded unexpectedly:\n{}", self.stdout);
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
    }
}

/// Runs `bulwark admin <args>` with only the given `BULWARK_*` variables and `stdin`.
fn admin(envs: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(bin());
    cmd.arg("admin").args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BULWARK_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_BACKTRACE", "0")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect()
}

fn v2_status(server: &TestServer, user: &str, password: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{}/v2/", server.base_url()))
        .basic_auth(user, Some(password))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn offline_on_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let base = [
        ("BULWARK_DATA_DIR", data.as_str()),
        ("BULWARK_ADMIN_PASSWORD", ADMIN_PW),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        v
    };

    // Users: the new password from the environment or standard input, never argv.
    let table = admin(
        &with(&[("BULWARK_NEW_PASSWORD", "bob-password-1")]),
        &["user", "add", "bob", "--email", "bob@example.com"],
        None,
    )
    .success();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("bob@example.com"), "{table}");
    let carol = admin(
        &base,
        &["user", "add", "carol", "--password-stdin", "--json"],
        Some("carol-password-1\n"),
    )
    .json();
    assert_eq!(carol["name"], "carol");
    assert_eq!(carol["system_admin"], false);
    admin(&base, &["user", "add", "dave"], None).failure("BULWARK_NEW_PASSWORD");
    admin(
        &with(&[("BULWARK_NEW_PASSWORD", "dave-password-1")]),
        &["user", "add", "Dave"],
        None,
    )
    .failure("invalid user name");
    admin(
        &with(&[("BULWARK_NEW_PASSWORD", "short")]),
        &["user", "add", "dave"],
        None,
    )
    .failure("password");
    admin(
        &with(&[("BULWARK_NEW_PASSWORD", "bob-password-1")]),
        &["user", "add", "bob"],
        None,
    )
    .failure("bob");
    let users = admin(&base, &["user", "list", "--json"], None).json();
    assert_eq!(names(&users), ["admin", "bob", "carol"]);
    let table = admin(&base, &["user", "list"], None).success();
    assert_eq!(table.lines().count(), 4, "{table}");
    admin(
        &base,
        &["user", "passwd", "bob", "--password-stdin"],
        Some("bob-password-2\n"),
    )
    .success();
    admin(&base, &["user", "disable", "carol"], None).success();
    admin(&base, &["user", "disable", "admin"], None).failure("last enabled system admin");
    admin(&base, &["user", "disable", "nobody"], None).failure("not found");

    // Projects and robots.
    let p = admin(
        &base,
        &[
            "project",
            "create",
            "team-a",
            "--visibility",
            "public",
            "--json",
        ],
        None,
    )
    .json();
    assert_eq!(p["visibility"], "public");
    admin(&base, &["project", "create", "team-a"], None).failure("team-a");
    let table = admin(&base, &["project", "list"], None).success();
    assert!(
        table.contains("team-a") && table.contains("public"),
        "{table}"
    );
    let robot = admin(
        &base,
        &[
            "robot",
            "create",
            "ci",
            "--project",
            "team-a",
            "--permission",
            "team-a/*=pull,push",
            "--json",
        ],
        None,
    )
    .json();
    assert_eq!(robot["name"], "robot$team-a+ci");
    let secret = robot["secret"].as_str().unwrap().to_owned();
    let text = admin(
        &base,
        &[
            "robot",
            "create",
            "ci2",
            "--project",
            "team-a",
            "--permission",
            "team-a/**=pull",
        ],
        None,
    )
    .success();
    assert!(
        text.contains("robot$team-a+ci2") && text.contains("secret:"),
        "{text}"
    );
    admin(
        &base,
        &[
            "robot",
            "create",
            "x",
            "--project",
            "team-a",
            "--permission",
            "team-b/*=pull",
        ],
        None,
    )
    .failure("outside project team-a");
    admin(
        &base,
        &["robot", "create", "x", "--permission", "no-equals-sign"],
        None,
    )
    .failure("PATTERN=ACTIONS");

    // Key rotation.
    let rotated = admin(&base, &["key", "rotate"], None).success();
    assert!(rotated.contains("signing key"), "{rotated}");

    // A server on the same data: what the CLI did is in force.
    let server = TestServer::start_in(bin(), dir.path().to_path_buf(), &base);
    assert_eq!(v2_status(&server, "bob", "bob-password-2"), 200);
    assert_eq!(v2_status(&server, "bob", "bob-password-1"), 401);
    assert_eq!(v2_status(&server, "carol", "carol-password-1"), 401);
    assert_eq!(v2_status(&server, "robot$team-a+ci", &secret), 200);
    assert_eq!(v2_status(&server, "admin", ADMIN_PW), 200);
    // ... and the offline mode refuses while it runs.
    admin(&base, &["user", "list"], None).failure("--url");
    drop(server);
}

#[test]
fn online_through_the_api() {
    let server = TestServer::start_with(bin(), &[("BULWARK_ADMIN_PASSWORD", ADMIN_PW)]);
    let url = server.base_url();
    let login = [("BULWARK_PASSWORD", ADMIN_PW)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = login.to_vec();
        v.extend_from_slice(extra);
        v
    };

    let erin = admin(
        &with(&[("BULWARK_NEW_PASSWORD", "erin-password-1")]),
        &["--url", &url, "user", "add", "erin", "--json"],
        None,
    )
    .json();
    assert_eq!(erin["name"], "erin");
    assert_eq!(v2_status(&server, "erin", "erin-password-1"), 200);
    // The login password on standard input, the new one in the environment.
    admin(
        &[("BULWARK_NEW_PASSWORD", "erin-password-2")],
        &["--url", &url, "--password-stdin", "user", "passwd", "erin"],
        Some(&format!("{ADMIN_PW}\n")),
    )
    .success();
    assert_eq!(v2_status(&server, "erin", "erin-password-2"), 200);
    // Standard input carries one password only.
    admin(
        &[],
        &[
            "--url",
            &url,
            "--password-stdin",
            "user",
            "add",
            "x",
            "--password-stdin",
        ],
        Some(&format!("{ADMIN_PW}\n")),
    )
    .failure("standard input already carries");

    let users = admin(&with(&[]), &["--url", &url, "user", "list", "--json"], None).json();
    assert_eq!(names(&users), ["admin", "erin"]);
    let table = admin(&with(&[]), &["--url", &url, "user", "list"], None).success();
    assert!(table.contains("erin"), "{table}");
    admin(
        &with(&[]),
        &["--url", &url, "user", "disable", "erin"],
        None,
    )
    .success();
    assert_eq!(v2_status(&server, "erin", "erin-password-2"), 401);
    admin(&with(&[]), &["--url", &url, "user", "enable", "erin"], None).success();
    assert_eq!(v2_status(&server, "erin", "erin-password-2"), 200);

    admin(
        &with(&[]),
        &["--url", &url, "project", "create", "team-u"],
        None,
    )
    .success();
    let projects = admin(
        &with(&[]),
        &["--url", &url, "project", "list", "--json"],
        None,
    )
    .json();
    assert_eq!(names(&projects), ["team-u"]);
    let robot = admin(
        &with(&[]),
        &[
            "--url",
            &url,
            "--json",
            "robot",
            "create",
            "mirror",
            "--permission",
            "**=pull",
        ],
        None,
    )
    .json();
    assert_eq!(robot["name"], "robot$mirror");
    assert_eq!(
        v2_status(&server, "robot$mirror", robot["secret"].as_str().unwrap()),
        200
    );

    // Errors from the server are reported.
    admin(
        &with(&[]),
        &["--url", &url, "project", "create", "team-u"],
        None,
    )
    .failure("409");
    admin(
        &[("BULWARK_PASSWORD", "wrong-password")],
        &["--url", &url, "user", "list"],
        None,
    )
    .failure("401");
    // Erin is no admin.
    admin(
        &[("BULWARK_PASSWORD", "erin-password-2")],
        &["--url", &url, "--username", "erin", "user", "list"],
        None,
    )
    .failure("403");
    admin(&[], &["--url", &url, "user", "list"], None).failure("BULWARK_PASSWORD");
    admin(&with(&[]), &["--url", &url, "key", "rotate"], None).failure("offline only");
    admin(&with(&[]), &["--url", "ftp://x", "user", "list"], None).failure("http://");
}
