#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `bulwark scan`: config lint in the report, and `--sbom spdx|cyclonedx`, on an OCI layout
//! built here (a setuid file, `ExposedPorts` 22/tcp, a secret in `Env` and history, no `USER`).

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use bulwark_scanner::sbom::check;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bulwark-scanner/tests/fixtures"
);
const NOW: &str = "2025-01-01T00:00:00Z";

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(rel)).unwrap()
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A layer tar of (path, mode, content), with parent directories.
fn layer_tar(files: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for (path, mode, content) in files {
        let parts: Vec<&str> = path.split('/').collect();
        let mut parent = String::new();
        for part in &parts[..parts.len() - 1] {
            parent.push_str(part);
            parent.push('/');
            if dirs.insert(parent.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, &parent, std::io::empty()).unwrap();
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(*mode);
        h.set_size(content.len() as u64);
        b.append_data(&mut h, path, content.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Built {
    manifest_digest: String,
    layer_digests: Vec<String>,
}

/// Writes the OCI layout and returns the manifest and layer digests.
fn build_layout(dir: &Path) -> Built {
    let layers = [
        vec![
            ("etc/os-release", 0o644, fixture("os-release/debian-12")),
            ("var/lib/dpkg/status", 0o644, fixture("dpkg/status")),
            ("usr/bin/ls", 0o755, b"\x7fELF ls".to_vec()),
        ],
        vec![
            ("usr/local/bin/escalate", 0o4755, b"\x7fELF setuid".to_vec()),
            (
                "usr/lib/python3/dist-packages/urllib3-2.7.0.dist-info/METADATA",
                0o644,
                fixture("python/urllib3-2.7.0.dist-info/METADATA"),
            ),
        ],
    ];
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).unwrap();
    let put = |bytes: &[u8]| -> String {
        let d = sha256(bytes);
        std::fs::write(blobs_dir.join(d.trim_start_matches("sha256:")), bytes).unwrap();
        d
    };
    let mut diff_ids = Vec::new();
    let mut descriptors = Vec::new();
    let mut layer_digests = Vec::new();
    for files in &layers {
        let tar = layer_tar(files);
        diff_ids.push(sha256(&tar));
        let gz = gzip(&tar);
        let d = put(&gz);
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d, "size": gz.len(),
        }));
        layer_digests.push(d);
    }
    let config = serde_json::to_vec(&json!({
        "created": "2020-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "DB_PASSWORD=hunter2"],
            "ExposedPorts": { "22/tcp": {}, "8080/tcp": {} },
            "Cmd": ["/usr/local/bin/escalate"],
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": [
            { "created": "2020-01-01T00:00:00Z", "created_by": "ADD rootfs.tar /" },
            { "created": "2020-01-01T00:00:00Z", "created_by": "ENV DB_PASSWORD=hunter2",
              "empty_layer": true },
            { "created": "2020-01-01T00:00:00Z",
              "created_by": "RUN /bin/sh -c install -m 4755 escalate /usr/local/bin/ # buildkit" },
        ],
    }))
    .unwrap();
    let config_digest = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config.len(),
        },
        "layers": descriptors,
    }))
    .unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "v1" },
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    Built {
        manifest_digest,
        layer_digests,
    }
}

fn scan(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg("scan")
        .args(args)
        // An empty data directory: no vulnerability database, inventory and lint only.
        .env(
            "BULWARK_DATA_DIR",
            std::env::temp_dir().join("bulwark-scan-sbom-lint-none"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "bulwark scan {args:?} failed: {stderr}"
    );
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "the secret leaked: {stdout}{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn lint_findings_in_json_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let built = build_layout(dir.path());
    let path = dir.path().to_str().unwrap();

    let (stdout, _) = scan(&[path, "--json", "--now", NOW]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    // Existing keys are still there.
    for key in [
        "image",
        "distro",
        "packages",
        "warnings",
        "warnings_omitted",
    ] {
        assert!(report.get(key).is_some(), "{key} missing");
    }
    let lint = &report["lint"];
    let findings = lint["findings"].as_array().unwrap();
    let get = |id: &str| -> Vec<&Value> { findings.iter().filter(|f| f["id"] == id).collect() };
    let ids: Vec<&str> = findings.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "secret-env",
            "secret-in-history",
            "root-user",
            "setuid-binary",
            "ssh-port-exposed",
            "image-age",
        ],
        "{lint:#}"
    );

    let root = get("root-user")[0];
    assert_eq!(root["severity"], "medium");
    assert_eq!(root["evidence"], "USER not set");

    let env = get("secret-env")[0];
    assert_eq!(env["severity"], "high");
    assert_eq!(env["evidence"], "DB_PASSWORD");

    let history = get("secret-in-history")[0];
    assert_eq!(history["history_index"], 1);
    assert_eq!(history["evidence"], "ENV DB_PASSWORD=<redacted>");

    let ssh = get("ssh-port-exposed")[0];
    assert_eq!(ssh["evidence"], "ExposedPorts 22/tcp");

    let setuid = get("setuid-binary");
    assert_eq!(setuid.len(), 1, "only the setuid file: {lint:#}");
    assert_eq!(setuid[0]["evidence"], "/usr/local/bin/escalate mode 4755");
    assert_eq!(setuid[0]["layer"], 1);

    let age = get("image-age")[0];
    assert_eq!(age["severity"], "low");
    assert_eq!(lint["image_age_days"], 1827);
    assert_eq!(lint["max_age_days"], 365);
    assert_eq!(lint["counts"], json!({ "high": 2, "medium": 3, "low": 1 }));
    assert_eq!(lint["omitted"], 0);

    // A larger threshold drops the age finding.
    let (stdout, _) = scan(&[path, "--json", "--now", NOW, "--max-age-days", "5000"]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        !report["lint"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "image-age")
    );

    // The table has a lint section.
    let (table, _) = scan(&[path, "--now", NOW]);
    assert!(
        table.contains("config lint: high 2, medium 3, low 1 (image age 1827 days)"),
        "{table}"
    );
    assert!(table.contains("/usr/local/bin/escalate"), "{table}");
    assert!(table.contains("DB_PASSWORD"), "{table}");
    assert!(built.manifest_digest.starts_with("sha256:"));
}

#[test]
fn spdx_sbom() {
    let dir = tempfile::tempdir().unwrap();
    let built = build_layout(dir.path());
    let path = dir.path().to_str().unwrap();
    let (stdout, _) = scan(&[path, "--sbom", "spdx", "--now", NOW]);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(check::spdx(&doc), Vec::<String>::new());
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], NOW);
    let hex = built.manifest_digest.trim_start_matches("sha256:");
    assert_eq!(
        doc["documentNamespace"],
        format!("https://spdx.org/spdxdocs/bulwark/sha256/{hex}")
    );
    let packages = doc["packages"].as_array().unwrap();
    let image = &packages[0];
    assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(image["versionInfo"], built.manifest_digest);
    assert_eq!(image["checksums"][0]["checksumValue"], hex);
    let described = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["relationshipType"] == "DESCRIBES")
        .unwrap();
    assert_eq!(described["relatedSpdxElement"], image["SPDXID"]);
    // The OS, 29 dpkg packages of the fixture, urllib3.
    assert_eq!(packages.len(), 1 + 1 + 29 + 1);
    let find = |name: &str| packages.iter().find(|p| p["name"] == name).unwrap();
    let comments = |p: &Value| -> Vec<String> {
        p["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["comment"].as_str().unwrap().to_owned())
            .collect()
    };
    let libssl = find("libssl3");
    let purl = libssl["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    assert!(purl.starts_with("pkg:deb/debian/libssl3@"), "{purl}");
    assert_eq!(libssl["externalRefs"][0]["referenceType"], "purl");
    assert!(
        libssl["sourceInfo"]
            .as_str()
            .unwrap()
            .starts_with("built from source package: openssl "),
        "{libssl}"
    );
    assert!(comments(libssl).contains(&"bulwark:LayerIndex: 0".to_owned()));
    assert!(comments(libssl).contains(&"bulwark:SrcName: openssl".to_owned()));
    let urllib3 = find("urllib3");
    assert_eq!(urllib3["versionInfo"], "2.7.0");
    assert!(comments(urllib3).contains(&"bulwark:LayerIndex: 1".to_owned()));
    assert!(
        comments(urllib3).contains(&format!("bulwark:LayerDigest: {}", built.layer_digests[1]))
    );

    // --output writes the same document to a file.
    let file = dir.path().join("sbom.spdx.json");
    let (quiet, _) = scan(&[
        path,
        "--sbom",
        "spdx",
        "--now",
        NOW,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(quiet.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);
}

#[test]
fn cyclonedx_sbom() {
    let dir = tempfile::tempdir().unwrap();
    let built = build_layout(dir.path());
    let path = dir.path().to_str().unwrap();
    let (stdout, _) = scan(&[path, "--sbom", "cyclonedx", "--now", NOW]);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(check::cyclonedx(&doc), Vec::<String>::new());
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.5");
    assert_eq!(doc["metadata"]["timestamp"], NOW);
    let image = &doc["metadata"]["component"];
    assert_eq!(image["type"], "container");
    assert_eq!(image["version"], built.manifest_digest);
    assert_eq!(
        image["hashes"][0]["content"],
        built.manifest_digest.trim_start_matches("sha256:")
    );
    let components = doc["components"].as_array().unwrap();
    assert_eq!(components.len(), 1 + 29 + 1);
    assert_eq!(components[0]["type"], "operating-system");
    assert_eq!(components[0]["name"], "debian");
    assert_eq!(components[0]["version"], "12");
    let find = |name: &str| components.iter().find(|c| c["name"] == name).unwrap();
    let prop = |c: &Value, name: &str| -> Option<String> {
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["value"].as_str().unwrap().to_owned())
    };
    let libssl = find("libssl3");
    assert!(
        libssl["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:deb/debian/libssl3@")
    );
    assert_eq!(
        prop(libssl, "bulwark:source_name").as_deref(),
        Some("openssl")
    );
    assert_eq!(prop(libssl, "bulwark:layer_index").as_deref(), Some("0"));
    let urllib3 = find("urllib3");
    assert!(
        urllib3["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:pypi/urllib3@2.7.0")
    );
    assert_eq!(prop(urllib3, "bulwark:layer_index").as_deref(), Some("1"));
    assert_eq!(
        prop(urllib3, "bulwark:layer_digest").as_deref(),
        Some(built.layer_digests[1].as_str())
    );
    assert_eq!(prop(urllib3, "bulwark:source_name"), None);
    // The image depends on every component.
    let root = doc["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ref"] == image["bom-ref"])
        .unwrap();
    assert_eq!(
        root["dependsOn"].as_array().unwrap().len(),
        components.len()
    );

    // Deterministic.
    let (again, _) = scan(&[path, "--sbom", "cyclonedx", "--now", NOW]);
    assert_eq!(again, stdout);
}
