//! Helpers for the real-client tests: a running registry, OCI image layouts built in memory,
//! and client invocations with timeouts that report the tool's stderr and the server log.
//!
//! Clients authenticate through a containers auth file (`REGISTRY_AUTH_FILE`): by default the
//! workspace's [`Workspace::auth_file`], which for a [`Registry`] holds the testkit admin's
//! credentials; `*_as` variants take another file (a missing file means anonymous).

pub mod scale;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use bulwark_testkit::{ADMIN_PASSWORD, ADMIN_USER, TestServer, basic_header, http_request};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

// ---------------------------------------------------------------------------------------------
// The registry under test.

/// `bulwark serve` (via the testkit) plus scratch space for the clients; killed on drop.
pub struct Registry {
    server: TestServer,
    scratch: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        Registry::start_with(&[])
    }

    /// [`Registry::start`] with extra server environment variables. With
    /// `BULWARK_TEST_BACKEND=postgres-s3` the server runs on a fresh PostgreSQL database and S3
    /// bucket instead of its embedded default (see `bulwark_testkit::scale`).
    pub fn start_with(envs: &[(&str, &str)]) -> Self {
        let server = TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_bulwark")), envs);
        // Short paths under /tmp: podman's runroot must stay under ~50 characters.
        let scratch = tempfile::Builder::new()
            .prefix("bw-")
            .tempdir_in("/tmp")
            .expect("scratch dir");
        let reg = Registry { server, scratch };
        write_auth_file(
            &reg.admin_auth_file(),
            &reg.host(),
            ADMIN_USER,
            ADMIN_PASSWORD,
        );
        reg
    }

    /// The server, for requests and management-API calls of its own.
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The auth file holding the admin's credentials (what clients use by default).
    pub fn admin_auth_file(&self) -> PathBuf {
        self.scratch("auth").join("admin.json")
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// `127.0.0.1:PORT/<repo:tag>`
    pub fn image_ref(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.host())
    }

    /// A fresh directory under this test's scratch space.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.scratch.path().join(name);
        std::fs::create_dir_all(&dir).expect("scratch subdir");
        dir
    }

    /// The tail of the server log (the testkit prints all of it when a test panics).
    pub fn log(&self) -> String {
        let log = self.server.log();
        let max = 20_000;
        if log.len() <= max {
            return log;
        }
        let mut cut = log.len() - max;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        format!("[... {cut} bytes cut ...]\n{}", &log[cut..])
    }

    /// Plain `GET` on the registry (manifest Accept headers included): status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = http_request(
            self.server.addr(),
            "GET",
            path,
            &[("Accept", MANIFEST_ACCEPT)],
            &[],
        )
        .unwrap_or_else(|e| panic!("GET {path}: {e}\nserver log:\n{}", self.log()));
        (resp.status, resp.text())
    }
}

/// Where clients keep their files, and what to show when one fails.
pub trait Workspace {
    fn scratch(&self, name: &str) -> PathBuf;
    fn log(&self) -> String;
    /// The containers auth file clients use unless told otherwise.
    fn auth_file(&self) -> PathBuf;
}

impl Workspace for Registry {
    fn scratch(&self, name: &str) -> PathBuf {
        Registry::scratch(self, name)
    }
    fn log(&self) -> String {
        Registry::log(self)
    }
    fn auth_file(&self) -> PathBuf {
        self.admin_auth_file()
    }
}

/// Write a containers auth file (`auth.json`) holding `user:password` for `host`, as
/// `skopeo login --authfile` does.
pub fn write_auth_file(path: &Path, host: &str, user: &str, password: &str) {
    let header = basic_header(user, password);
    let encoded = header.trim_start_matches("Basic ");
    let file = json!({ "auths": { host: { "auth": encoded } } });
    std::fs::create_dir_all(path.parent().expect("auth file directory")).expect("auth dir");
    std::fs::write(path, serde_json::to_vec(&file).expect("auth JSON")).expect("write auth file");
}

/// Scratch space with no registry, for checking the test images with the clients alone.
pub struct Offline(tempfile::TempDir);

impl Offline {
    pub fn new() -> Offline {
        Offline(
            tempfile::Builder::new()
                .prefix("bw-")
                .tempdir_in("/tmp")
                .expect("scratch dir"),
        )
    }
}

impl Workspace for Offline {
    fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.0.path().join(name);
        std::fs::create_dir_all(&dir).expect("scratch subdir");
        dir
    }
    fn log(&self) -> String {
        "(no registry in this test)".to_owned()
    }
    fn auth_file(&self) -> PathBuf {
        self.scratch("auth").join("none.json")
    }
}

// ---------------------------------------------------------------------------------------------
// Clients.

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(tool);
            p.is_file()
                && std::fs::metadata(&p).is_ok_and(|m| {
                    use std::os::unix::fs::PermissionsExt;
                    m.permissions().mode() & 0o111 != 0
                })
        })
    })
}

/// The container clients a test needs, known to be installed.
pub struct Tools(());

impl Tools {
    /// `None` (after printing why) when a client is missing, unless `BULWARK_REQUIRE_CLIENTS=1`,
    /// in which case a missing client fails the test.
    pub fn require(tools: &[&str]) -> Option<Tools> {
        let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
        if missing.is_empty() {
            return Some(Tools(()));
        }
        let required = std::env::var("BULWARK_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "BULWARK_REQUIRE_CLIENTS=1 but not installed: {} (apt-get install -y {})",
            missing.join(", "),
            missing.join(" ")
        );
        eprintln!(
            "skipped: {} not installed (set BULWARK_REQUIRE_CLIENTS=1 to make this fail)",
            missing.join(", ")
        );
        None
    }

    /// Run skopeo with the workspace's auth file; panic with its output and the server log
    /// unless it succeeds.
    pub fn skopeo(&self, reg: &dyn Workspace, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = skopeo_command(reg, &reg.auth_file(), args);
        checked(reg, &mut cmd, timeout)
    }

    /// Run skopeo and return whatever happened (it must still finish within the timeout).
    pub fn skopeo_may_fail(&self, reg: &dyn Workspace, args: &[&str], timeout: Duration) -> Output {
        self.skopeo_as(reg, &reg.auth_file(), args, timeout)
    }

    /// Run skopeo with `auth_file` as `REGISTRY_AUTH_FILE` (a missing file: anonymous) and
    /// return whatever happened (it must still finish within the timeout).
    pub fn skopeo_as(
        &self,
        reg: &dyn Workspace,
        auth_file: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> Output {
        let mut cmd = skopeo_command(reg, auth_file, args);
        let (out, timed_out) = run_with_timeout(&mut cmd, timeout);
        assert!(!timed_out, "{}", failure(reg, &cmd, &out, timeout, true));
        out
    }

    /// podman with private vfs storage under the test's scratch space.
    pub fn podman_store<'a>(&self, reg: &'a dyn Workspace) -> Store<'a> {
        let base = reg.scratch("podman");
        let mut global = storage_flags(&base);
        for (flag, value) in [
            ("--cgroup-manager", "cgroupfs".to_owned()),
            ("--events-backend", "file".to_owned()),
            ("--tmpdir", dir(&base.join("tmp"))),
        ] {
            global.push(flag.to_owned());
            global.push(value);
        }
        Store {
            reg,
            program: "podman",
            global,
            tmp: base.join("tmpdir"),
            auth_file: reg.auth_file(),
        }
    }

    /// buildah with private vfs storage under the test's scratch space.
    pub fn buildah_store<'a>(&self, reg: &'a dyn Workspace) -> Store<'a> {
        let base = reg.scratch("buildah");
        Store {
            reg,
            program: "buildah",
            global: storage_flags(&base),
            tmp: base.join("tmpdir"),
            auth_file: reg.auth_file(),
        }
    }
}

fn skopeo_command(reg: &dyn Workspace, auth_file: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("skopeo");
    cmd.args(args)
        .env("TMPDIR", reg.scratch("tmp"))
        .env("REGISTRY_AUTH_FILE", auth_file);
    cmd
}

fn dir(p: &Path) -> String {
    std::fs::create_dir_all(p).expect("create dir");
    p.display().to_string()
}

fn storage_flags(base: &Path) -> Vec<String> {
    vec![
        "--root".into(),
        dir(&base.join("root")),
        "--runroot".into(),
        dir(&base.join("run")),
        "--storage-driver".into(),
        "vfs".into(),
    ]
}

/// podman or buildah bound to one private storage.
pub struct Store<'a> {
    reg: &'a dyn Workspace,
    program: &'static str,
    global: Vec<String>,
    tmp: PathBuf,
    auth_file: PathBuf,
}

impl Store<'_> {
    /// `[vfs@ROOT+RUNROOT]`, naming this storage in a `containers-storage:` reference.
    pub fn store_spec(&self) -> String {
        let flag = |name: &str| {
            let i = self
                .global
                .iter()
                .position(|g| g == name)
                .expect("flag set");
            self.global[i + 1].clone()
        };
        format!("[vfs@{}+{}]", flag("--root"), flag("--runroot"))
    }

    /// The same storage with `auth_file` as `REGISTRY_AUTH_FILE` (a missing file: anonymous).
    pub fn with_auth_file(mut self, auth_file: &Path) -> Self {
        self.auth_file = auth_file.to_path_buf();
        self
    }

    /// Run the tool; panic with its output and the server log unless it succeeds.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.command(args);
        checked(self.reg, &mut cmd, timeout)
    }

    /// Run the tool and return whatever happened (it must still finish within the timeout).
    pub fn run_may_fail(&self, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.command(args);
        let (out, timed_out) = run_with_timeout(&mut cmd, timeout);
        assert!(
            !timed_out,
            "{}",
            failure(self.reg, &cmd, &out, timeout, true)
        );
        out
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.program);
        cmd.args(&self.global)
            .args(args)
            .env("TMPDIR", dir(&self.tmp))
            // Keep the user's configuration out of the way.
            .env("HOME", dir(&self.tmp.join("home")))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CONTAINERS_STORAGE_CONF")
            .env_remove("CONTAINERS_CONF");
        cmd.env("REGISTRY_AUTH_FILE", &self.auth_file);
        if self.program == "buildah" {
            cmd.env("BUILDAH_ISOLATION", "chroot");
        }
        cmd
    }
}

fn checked(reg: &dyn Workspace, cmd: &mut Command, timeout: Duration) -> Output {
    let (out, timed_out) = run_with_timeout(cmd, timeout);
    if timed_out || !out.status.success() {
        panic!("{}", failure(reg, cmd, &out, timeout, timed_out));
    }
    out
}

fn failure(
    reg: &dyn Workspace,
    cmd: &Command,
    out: &Output,
    timeout: Duration,
    timed_out: bool,
) -> String {
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let what = if timed_out {
        format!("timed out after {timeout:?}")
    } else {
        format!("failed: {}", out.status)
    };
    format!(
        "`{}` {what}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- server log ---\n{}",
        line.join(" "),
        tail(&out.stdout),
        tail(&out.stderr),
        reg.log()
    )
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let max = 8_000;
    if s.len() <= max {
        return s.into_owned();
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    format!("[...]{}", &s[cut..])
}

/// Run to completion or kill after `timeout`; returns the output and whether it timed out.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> (Output, bool) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let (status, timed_out): (ExitStatus, bool) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                break (child.wait().expect("wait after kill"), true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for {:?}: {e}", cmd.get_program()),
        }
    };
    let output = Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    };
    (output, timed_out)
}

// ---------------------------------------------------------------------------------------------
// Images and OCI layouts.

/// Content-addressed bytes with their media type.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: format!("sha256:{}", sha256_hex(&bytes)),
            bytes,
        }
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// A single-platform OCI image.
pub struct Image {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Blob,
    /// sha256 of each uncompressed layer tar, as in the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
}

impl Image {
    /// Config, layers and the manifest itself.
    pub fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .chain(std::iter::once(&self.manifest))
            .collect()
    }
}

/// Build an image for linux/`arch` whose layers hold the given files (path, content).
pub fn image(arch: &str, layers: &[Vec<(&str, Vec<u8>)>]) -> Image {
    let mut blobs = Vec::new();
    let mut diff_ids = Vec::new();
    for files in layers {
        let tar = layer_tar(files);
        diff_ids.push(format!("sha256:{}", sha256_hex(&tar)));
        blobs.push(Blob::new(OCI_LAYER_GZIP, gzip(&tar)));
    }
    let history: Vec<Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| {
            json!({
                "created": "2024-01-01T00:00:00Z",
                "created_by": format!("bulwark client tests: layer {i}"),
            })
        })
        .collect();
    let config = json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": { "Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/true"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history,
    });
    let config = Blob::new(
        OCI_CONFIG,
        serde_json::to_vec(&config).expect("config JSON"),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": blobs.iter().map(Blob::descriptor).collect::<Vec<_>>(),
        "annotations": { "org.opencontainers.image.title": format!("bulwark test {arch}") },
    });
    let manifest = Blob::new(
        OCI_MANIFEST,
        serde_json::to_vec_pretty(&manifest).expect("manifest JSON"),
    );
    Image {
        config,
        layers: blobs,
        manifest,
        diff_ids,
    }
}

/// An OCI image index over linux images of the given architectures.
pub fn index(images: &[(&Image, &str)]) -> Blob {
    let manifests: Vec<Value> = images
        .iter()
        .map(|(img, arch)| {
            let mut d = img.manifest.descriptor();
            d["platform"] = json!({ "architecture": arch, "os": "linux" });
            d
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    Blob::new(OCI_INDEX, serde_json::to_vec(&index).expect("index JSON"))
}

fn layer_tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, content) in files {
        // Parent directories first, as real image layers have them.
        let mut parent = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            parent.push_str(part);
            parent.push('/');
            if dirs.insert(parent.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(1_700_000_000);
                h.set_uid(0);
                h.set_gid(0);
                builder
                    .append_data(&mut h, &parent, std::io::empty())
                    .expect("tar dir");
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        builder
            .append_data(&mut h, path, content.as_slice())
            .expect("tar file");
    }
    builder.into_inner().expect("tar finish")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip finish")
}

/// Regular files of a layer (gzip or plain tar), keyed by path without a leading `./` or `/`.
pub fn untar(layer: &[u8], media_type: &str) -> BTreeMap<String, Vec<u8>> {
    let plain = if media_type.ends_with("gzip") || layer.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(layer)
            .read_to_end(&mut out)
            .expect("gunzip layer");
        out
    } else {
        layer.to_vec()
    };
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(plain.as_slice());
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().expect("tar path").display().to_string();
        let path = path
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("tar content");
        files.insert(path, content);
    }
    files
}

/// Write an OCI image layout holding `blobs`, with `top` tagged `tag` in `index.json`.
pub fn write_layout(dir: &Path, blobs: &[&Blob], top: &Blob, tag: &str) {
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).expect("layout blobs dir");
    for b in blobs.iter().copied().chain(std::iter::once(top)) {
        let hex = b.digest.trim_start_matches("sha256:");
        std::fs::write(blob_dir.join(hex), &b.bytes).expect("write blob");
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    let mut d = top.descriptor();
    d["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({ "schemaVersion": 2, "manifests": [d] });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index.json"),
    )
    .expect("write index.json");
}

/// An OCI image layout read back from disk, every blob verified against its name.
pub struct Layout {
    /// The manifest or index tagged with the requested name.
    pub top: Blob,
    /// All blobs by digest.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

pub fn read_layout(dir: &Path, tag: &str) -> Layout {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("read index.json"))
            .expect("index.json is JSON");
    let entry = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter().find(|d| {
                d["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(tag)
            })
        })
        .unwrap_or_else(|| panic!("no {tag:?} in {index}"));
    let mut blobs = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("blobs/sha256")).expect("layout blobs") {
        let e = e.expect("blob entry");
        let name = e.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(e.path()).expect("read blob");
        assert_eq!(
            sha256_hex(&bytes),
            name,
            "blob content does not match its name"
        );
        blobs.insert(format!("sha256:{name}"), bytes);
    }
    let digest = entry["digest"].as_str().expect("digest").to_owned();
    let top = Blob {
        media_type: entry["mediaType"].as_str().unwrap_or_default().to_owned(),
        bytes: blobs
            .get(&digest)
            .unwrap_or_else(|| panic!("{digest} missing from the layout"))
            .clone(),
        digest,
    };
    Layout { top, blobs }
}
