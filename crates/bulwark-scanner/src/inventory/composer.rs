//! PHP Composer `composer.lock`.
//!
//! Packages are the objects of the `packages` and `packages-dev` arrays,
//! each with `name` (`vendor/package`), `version` (as tagged, often with a
//! leading `v`) and `license` (an array of SPDX identifiers). Entries
//! missing a string `name` or `version`, or installed from a local path
//! repository (`dist.type` = `path`), are skipped. A file that is not a JSON
//! object, or whose package lists are not arrays, is an error.

use serde_json::Value;

use super::{
    InventoryError, Package, PackageKind, check_entries, check_size, malformed, non_empty, package,
    purl,
};

const FORMAT: &str = "composer.lock";

/// Parses a `composer.lock`.
pub fn parse_lockfile(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let root: Value =
        serde_json::from_slice(contents).map_err(|e| malformed(path, FORMAT, e.to_string()))?;
    let root = root
        .as_object()
        .ok_or_else(|| malformed(path, FORMAT, "top level is not an object"))?;
    let mut out = Vec::new();
    let mut seen = 0usize;
    for key in ["packages", "packages-dev"] {
        let list = match root.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(list)) => list,
            Some(_) => return Err(malformed(path, FORMAT, format!("`{key}` is not an array"))),
        };
        for entry in list {
            seen = seen.saturating_add(1);
            check_entries(path, seen)?;
            out.extend(to_package(path, entry));
        }
    }
    Ok(out)
}

fn to_package(path: &str, entry: &Value) -> Option<Package> {
    let name = entry.get("name")?.as_str()?.trim();
    let version = entry.get("version")?.as_str()?.trim();
    if entry.pointer("/dist/type").and_then(Value::as_str) == Some("path") {
        return None;
    }
    if !is_token(name) || !is_token(version) {
        return None;
    }
    // Package names are case-insensitive and conventionally lowercase.
    let lower = name.to_ascii_lowercase();
    let (vendor, bare) = match lower.split_once('/') {
        Some((v, b)) if !v.is_empty() && !b.is_empty() => (Some(v), b),
        _ => (None, lower.as_str()),
    };
    let purl = purl::build("composer", vendor, bare, version, &[]);
    let mut p = package(
        PackageKind::Composer,
        path,
        name.to_owned(),
        version.to_owned(),
        purl,
    );
    p.licenses = match entry.get("license") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter_map(non_empty)
            .collect(),
        Some(Value::String(s)) => non_empty(s).into_iter().collect(),
        _ => Vec::new(),
    };
    Some(p)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_and_dev() {
        let lock = r#"{
  "content-hash": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
  "packages": [
    {"name": "Monolog/Monolog", "version": "3.4.0", "license": ["MIT"], "type": "library"},
    {"name": "symfony/console", "version": "v6.3.4", "license": "MIT"},
    {"name": "acme/local", "version": "dev-main", "dist": {"type": "path", "url": "../local"}},
    {"name": "no/version"},
    "not an object"
  ],
  "packages-dev": [
    {"name": "phpunit/phpunit", "version": "10.3.5", "license": ["BSD-3-Clause"]}
  ],
  "aliases": [], "minimum-stability": "stable", "plugin-api-version": "2.3.0"
}"#;
        let pkgs = parse_lockfile("composer.lock", lock.as_bytes()).unwrap();
        let got: Vec<(&str, &str)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Monolog/Monolog", "3.4.0"),
                ("symfony/console", "v6.3.4"),
                ("phpunit/phpunit", "10.3.5")
            ]
        );
        assert_eq!(pkgs[0].purl, "pkg:composer/monolog/monolog@3.4.0");
        assert_eq!(pkgs[1].licenses, ["MIT"]);
        assert_eq!(pkgs[2].licenses, ["BSD-3-Clause"]);
        assert_eq!(pkgs[2].ecosystem, crate::version::Ecosystem::SemVer);
    }

    #[test]
    fn malformed_files() {
        assert!(parse_lockfile("c", b"{}").unwrap().is_empty());
        assert!(
            parse_lockfile("c", br#"{"packages": [], "packages-dev": null}"#)
                .unwrap()
                .is_empty()
        );
        for bad in [
            &b""[..],
            b"[]",
            b"{\"packages\": {}}",
            b"{\"packages-dev\": 3}",
            b"\x00",
        ] {
            assert!(
                matches!(
                    parse_lockfile("c", bad),
                    Err(InventoryError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
