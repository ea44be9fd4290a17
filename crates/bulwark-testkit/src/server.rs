//! `TestServer`: the real `bulwark serve` on a free loopback port.

use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::{Auth, HttpResponse, http_request_as, request_target};
use crate::scale::Cluster;
use crate::{ADMIN_PASSWORD, query_encode};

/// How long a server gets to answer `/healthz` with 200.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts to start when the port picked turned out to be taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// The file, in the data dir, that receives the server's stdout and stderr.
const LOG_FILE: &str = "server.log";

/// A running `bulwark serve`. Dropping it kills the server (SIGKILL) and, if it owns its data
/// dir, removes it. If the test is panicking, the server log is printed to stderr first.
pub struct TestServer {
    child: Child,
    watchdog: Option<Child>,
    exited: Option<ExitStatus>,
    addr: SocketAddr,
    data_dir: PathBuf,
    log_path: PathBuf,
    _owned_dir: Option<TempDir>,
    // Dropped after the server is killed (in `drop`): the database and bucket outlive it.
    _cluster: Option<Cluster>,
}

impl TestServer {
    /// Starts `bin serve` with a fresh temporary data dir.
    pub fn start(bin: &Path) -> TestServer {
        TestServer::start_with(bin, &[])
    }

    /// Starts `bin serve` with a fresh temporary data dir and extra environment variables
    /// (for example `("BULWARK_LIMITS__MAX_MANIFEST_BYTES", "1024")`). Every start sets
    /// `BULWARK_ADMIN_PASSWORD` to [`ADMIN_PASSWORD`] unless `envs` sets it.
    ///
    /// With `BULWARK_TEST_BACKEND=postgres-s3` the server gets a fresh PostgreSQL database and
    /// S3 bucket (see [`crate::scale`]) instead of SQLite and files in its data dir.
    pub fn start_with(bin: &Path, envs: &[(&str, &str)]) -> TestServer {
        let cluster = match std::env::var("BULWARK_TEST_BACKEND").as_deref() {
            Ok("postgres-s3") => {
                let (pg, s3) = crate::scale::backends().expect(
                    "BULWARK_TEST_BACKEND=postgres-s3 needs BULWARK_TEST_POSTGRES_URL and BULWARK_TEST_S3_ENDPOINT",
                );
                Some(Cluster::new(&pg, &s3))
            }
            Ok("") | Err(_) => None,
            Ok(other) => panic!("unknown BULWARK_TEST_BACKEND {other:?}"),
        };
        let mut server = match &cluster {
            Some(c) => TestServer::start_fresh(bin, &c.envs_with(envs)),
            None => TestServer::start_fresh(bin, envs),
        };
        server._cluster = cluster;
        server
    }

    /// Starts one replica of `cluster` (its database and bucket) with a fresh data dir; the
    /// caller keeps the cluster alive for as long as its replicas run.
    pub fn start_in_cluster(bin: &Path, cluster: &Cluster, envs: &[(&str, &str)]) -> TestServer {
        TestServer::start_fresh(bin, &cluster.envs_with(envs))
    }

    fn start_fresh(bin: &Path, envs: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("bulwark-test-")
            .tempdir()
            .expect("create a temporary data dir");
        let mut server = TestServer::start_in(bin, dir.path().to_path_buf(), envs);
        server._owned_dir = Some(dir);
        server
    }

    /// Starts `bin serve` on an existing data dir, which the caller owns: use it to restart a
    /// server on the data a previous (killed or stopped) one left behind.
    pub fn start_in(bin: &Path, data_dir: PathBuf, envs: &[(&str, &str)]) -> TestServer {
        fs::create_dir_all(&data_dir).expect("create the data dir");
        let log_path = data_dir.join(LOG_FILE);
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let addr = free_loopback_port();
            let log_offset = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
            let child = spawn(bin, addr, &data_dir, &log_path, envs);
            let mut server = TestServer {
                watchdog: spawn_watchdog(child.id(), &data_dir),
                child,
                exited: None,
                addr,
                data_dir: data_dir.clone(),
                log_path: log_path.clone(),
                _owned_dir: None,
                _cluster: None,
            };
            match server.wait_healthy() {
                Ok(()) => return server,
                Err(why) => {
                    let log = server.log_since(log_offset);
                    let port_taken = server.exited.is_some()
                        && (log.contains("in use") || log.contains("AddrInUse"));
                    // Dropped outside a panic, so the log is not printed twice.
                    drop(server);
                    if !port_taken {
                        panic!(
                            "bulwark serve on {addr} did not come up: {why}\n--- server log ---\n{log}"
                        );
                    }
                    last_log = log;
                }
            }
        }
        panic!(
            "bulwark serve found no free port in {PORT_ATTEMPTS} attempts\n--- server log ---\n{last_log}"
        )
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The environment that points an offline `bulwark` command (vulndb import, admin, gc)
    /// at this server's data: its data dir, and its database and bucket when it runs on
    /// PostgreSQL + S3.
    pub fn cli_envs(&self) -> Vec<(&str, &str)> {
        let mut envs = vec![(
            "BULWARK_DATA_DIR",
            self.data_dir.to_str().unwrap_or_default(),
        )];
        if let Some(cluster) = &self._cluster {
            envs.extend(cluster.envs_with(&[]));
        }
        envs
    }

    /// Sends one request to this server as the admin (unless `headers` has an
    /// `Authorization`); `target` is a path and query such as `/v2/`.
    /// Panics (with the server log) if the request cannot be sent or answered.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.request_as(Auth::Admin, method, target, headers, body)
    }

    /// [`TestServer::request`] with the given credentials.
    pub fn request_as(
        &self,
        auth: Auth<'_>,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request_as(self.addr, auth, method, target, headers, body).unwrap_or_else(|e| {
            panic!("{method} {target}: {e}\n--- server log ---\n{}", self.log())
        })
    }

    /// `GET target` as the admin, with no other headers.
    pub fn get(&self, target: &str) -> HttpResponse {
        self.request("GET", target, &[], &[])
    }

    /// `GET target` with the given credentials and no other headers.
    pub fn get_as(&self, auth: Auth<'_>, target: &str) -> HttpResponse {
        self.request_as(auth, "GET", target, &[], &[])
    }

    /// An access token from `GET /token?service=bulwark&scope=…`, with Basic `user_pass` or
    /// anonymously. Panics unless the answer is 200 with a token.
    pub fn token(&self, user_pass: Option<(&str, &str)>, scopes: &[&str]) -> String {
        let auth = match user_pass {
            Some((user, password)) => Auth::Basic(user, password),
            None => Auth::Anonymous,
        };
        let resp = self.get_as(auth, &token_target(scopes));
        resp.expect_status(200);
        resp.json()["token"]
            .as_str()
            .unwrap_or_else(|| panic!("/token answered without a token: {}", resp.text()))
            .to_owned()
    }

    /// The request target of a `Location` header this server sent (relative or absolute).
    pub fn target(&self, location: &str) -> String {
        request_target(self.addr, location)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL and reaps it. Idempotent.
    pub fn kill9(&mut self) {
        if self.exited.is_none() {
            // Fails only if the child is already gone, which `wait` then reports.
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
        self.stop_watchdog();
    }

    /// Sends SIGTERM (via the `kill` command, the workspace forbids `unsafe`). Use
    /// `wait_exit` to see the server finish.
    pub fn terminate(&mut self) {
        if self.exited.is_some() {
            return;
        }
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits up to `timeout` for the server to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll_exit() {
                self.stop_watchdog();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server (and earlier servers on the same data dir) wrote to stdout/stderr.
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let bytes = fs::read(&self.log_path).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.poll_exit() {
                return Err(format!("it exited with {status}"));
            }
            if http_request_as(self.addr, Auth::Anonymous, "GET", "/healthz", &[], &[])
                .is_ok_and(|r| r.status == 200)
            {
                // A 200 from a server that then exits was someone else's port.
                thread::sleep(Duration::from_millis(20));
                return match self.poll_exit() {
                    Some(status) => Err(format!("it exited with {status}")),
                    None => Ok(()),
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "/healthz did not answer 200 within {STARTUP_TIMEOUT:?}"
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        if thread::panicking() {
            eprintln!(
                "--- bulwark server log ({}) ---\n{}--- end of server log ---",
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// The request target `/token?service=bulwark&scope=…` for `scopes` (percent-encoded).
pub fn token_target(scopes: &[&str]) -> String {
    let mut target = "/token?service=bulwark".to_owned();
    for scope in scopes {
        target.push_str("&scope=");
        target.push_str(&query_encode(scope));
    }
    target
}

/// A port the kernel just handed out on 127.0.0.1, released again for the server to bind.
fn free_loopback_port() -> SocketAddr {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("local address of the listener")
}

fn spawn(
    bin: &Path,
    addr: SocketAddr,
    data_dir: &Path,
    log_path: &Path,
    envs: &[(&str, &str)],
) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("open the server log");
    let log_err = log.try_clone().expect("clone the server log handle");
    let mut cmd = Command::new(bin);
    cmd.arg("serve");
    // Hermetic: no configuration leaks in from the environment running the tests.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BULWARK_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("BULWARK_LISTEN", addr.to_string())
        .env("BULWARK_DATA_DIR", data_dir)
        .env("BULWARK_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {} serve: {e}", bin.display()))
}

/// A shell that SIGKILLs the server once this test process is gone, so that a server held in
/// a static, or left behind by an aborted test run, does not outlive the tests. It checks the
/// server's environment first so that a recycled pid is never hit.
fn spawn_watchdog(server_pid: u32, data_dir: &Path) -> Option<Child> {
    let script = r#"
        while kill -0 "$0" 2>/dev/null; do sleep 1; done
        if tr '\0' '\n' < "/proc/$1/environ" 2>/dev/null | grep -qxF "BULWARK_DATA_DIR=$2"; then
            kill -9 "$1"
        fi
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(std::process::id().to_string())
        .arg(server_pid.to_string())
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}
