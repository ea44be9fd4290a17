//! `bulwark scan` on OCI layouts built from real package databases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the client tests; this file uses only the image builders.
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../bulwark-scanner/tests/fixtures"
);

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(rel)).unwrap()
}

fn scan(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg("scan")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scans_an_oci_layout_into_distro_and_packages_per_layer() {
    let img = support::image(
        "amd64",
        &[
            vec![
                ("etc/os-release", fixture("os-release/debian-12")),
                ("var/lib/dpkg/status", fixture("dpkg/status")),
            ],
            vec![(
                "usr/lib/python3/dist-packages/urllib3-2.7.0.dist-info/METADATA",
                fixture("python/urllib3-2.7.0.dist-info/METADATA"),
            )],
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    support::write_layout(dir.path(), &img.blobs(), &img.manifest, "v1");

    let (ok, stdout, stderr) = scan(&[dir.path().to_str().unwrap(), "--json"]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["image"]["manifest_digest"], img.manifest.digest);
    assert_eq!(report["distro"]["id"], "debian");
    assert_eq!(report["distro"]["version_id"], "12");
    let packages = report["packages"].as_array().unwrap();
    let find = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {stdout}"))
    };
    let dpkg = packages.iter().filter(|p| p["kind"] == "dpkg").count();
    assert_eq!(dpkg, 29, "installed stanzas of the fixture");
    let libssl = find("libssl3");
    assert_eq!(libssl["source_name"], "openssl");
    assert_eq!(libssl["layer"], 0);
    assert_eq!(libssl["layer_digest"], img.layers[0].digest);
    let urllib3 = find("urllib3");
    assert_eq!(urllib3["kind"], "python");
    assert_eq!(urllib3["version"], "2.7.0");
    assert_eq!(urllib3["layer"], 1);
    assert!(
        urllib3["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:pypi/urllib3@2.7.0")
    );

    // The table form names the distro and counts the same packages.
    let (ok, table, _) = scan(&[dir.path().to_str().unwrap()]);
    assert!(ok);
    assert!(table.contains("Debian GNU/Linux 12"), "{table}");
    assert!(
        table.contains(&format!("{} packages", packages.len())),
        "{table}"
    );
}

#[test]
fn refuses_a_layout_with_a_corrupted_layer() {
    let mut img = support::image(
        "amd64",
        &[vec![("etc/os-release", fixture("os-release/debian-12"))]],
    );
    let dir = tempfile::tempdir().unwrap();
    // Same name, different bytes: the digest check must catch it.
    img.layers[0].bytes[20] ^= 0xff;
    support::write_layout(dir.path(), &img.blobs(), &img.manifest, "v1");
    let (ok, _, stderr) = scan(&[dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("scanning"), "{stderr}");
}
