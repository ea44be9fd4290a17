//! npm: `package-lock.json` / `npm-shrinkwrap.json` / the hidden
//! `node_modules/.package-lock.json` (lockfile versions 1, 2 and 3), and
//! installed packages' `node_modules/<name>/package.json`.
//!
//! Lockfile v2 and v3 list packages in `packages`, keyed by install path
//! (`node_modules/a/node_modules/@scope/b`); when present it is used and
//! the v1 tree is ignored. The root (`""`) and workspace directories (keys
//! outside `node_modules/`) are the project itself, and `link: true` entries
//! point at them: all are skipped. Lockfile v1 lists packages in a nested
//! `dependencies` tree. In both, entries that do not come from a registry
//! (git, `file:` and `link:` dependencies) are skipped, since registry
//! advisories do not describe them, as are entries without a string
//! `version`. A file that is not a JSON object, or has neither `packages`
//! nor `dependencies` objects, is an error; dev dependencies are included.
//!
//! A `package.json` without a string `name` and `version` yields nothing
//! (private and workspace manifests may omit `version`); invalid JSON is an
//! error.

use serde_json::{Map, Value};

use super::{
    InventoryError, Package, PackageKind, check_entries, check_size, malformed, package, purl,
};

const LOCK_FORMAT: &str = "package-lock.json";
const MANIFEST_FORMAT: &str = "package.json";

/// Parses a `package-lock.json` (any lockfile version).
pub fn parse_lockfile(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let root: Value = serde_json::from_slice(contents)
        .map_err(|e| malformed(path, LOCK_FORMAT, e.to_string()))?;
    let root = root
        .as_object()
        .ok_or_else(|| malformed(path, LOCK_FORMAT, "top level is not an object"))?;
    if let Some(packages) = root.get("packages").and_then(Value::as_object) {
        return parse_packages_map(path, packages);
    }
    if let Some(deps) = root.get("dependencies").and_then(Value::as_object) {
        return parse_dependency_tree(path, deps);
    }
    if root.contains_key("lockfileVersion") {
        // A lockfile of a project with no dependencies.
        return Ok(Vec::new());
    }
    Err(malformed(path, LOCK_FORMAT, "no packages or dependencies"))
}

/// Lockfile v2/v3 `packages`.
fn parse_packages_map(
    path: &str,
    packages: &Map<String, Value>,
) -> Result<Vec<Package>, InventoryError> {
    let mut out = Vec::new();
    for (seen, (key, entry)) in packages.iter().enumerate() {
        check_entries(path, seen.saturating_add(1))?;
        let Some(install_name) = key.rsplit_once("node_modules/").map(|(_, n)| n) else {
            continue; // the root "" or a workspace directory
        };
        let Some(entry) = entry.as_object() else {
            continue;
        };
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if entry
            .get("resolved")
            .and_then(Value::as_str)
            .is_some_and(is_non_registry)
        {
            continue;
        }
        // Aliased installs (`"x": "npm:real@1"`) record the real name.
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(install_name);
        let Some(version) = entry.get("version").and_then(Value::as_str) else {
            continue;
        };
        if let Some(p) = make(path, name, version, licenses(entry)) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Lockfile v1 nested `dependencies`, walked without recursion.
fn parse_dependency_tree(
    path: &str,
    deps: &Map<String, Value>,
) -> Result<Vec<Package>, InventoryError> {
    let mut out = Vec::new();
    let mut stack = vec![deps];
    let mut seen = 0usize;
    while let Some(level) = stack.pop() {
        for (name, entry) in level {
            seen = seen.saturating_add(1);
            check_entries(path, seen)?;
            let Some(entry) = entry.as_object() else {
                continue;
            };
            if let Some(children) = entry.get("dependencies").and_then(Value::as_object) {
                stack.push(children);
            }
            let Some(version) = entry.get("version").and_then(Value::as_str) else {
                continue;
            };
            if is_non_registry(version)
                || entry
                    .get("resolved")
                    .and_then(Value::as_str)
                    .is_some_and(is_non_registry)
            {
                continue;
            }
            // v1 aliases record `"version": "npm:real@1.2.3"`.
            let (name, version) = match version.strip_prefix("npm:").and_then(split_alias) {
                Some((real, v)) => (real, v),
                None => (name.as_str(), version),
            };
            if let Some(p) = make(path, name, version, Vec::new()) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Parses an installed package's `package.json`.
pub fn parse_package_json(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let root: Value = serde_json::from_slice(contents)
        .map_err(|e| malformed(path, MANIFEST_FORMAT, e.to_string()))?;
    let Some(obj) = root.as_object() else {
        return Err(malformed(
            path,
            MANIFEST_FORMAT,
            "top level is not an object",
        ));
    };
    let name = obj.get("name").and_then(Value::as_str);
    let version = obj.get("version").and_then(Value::as_str);
    let (Some(name), Some(version)) = (name, version) else {
        return Ok(Vec::new());
    };
    Ok(make(path, name, version, licenses(obj))
        .into_iter()
        .collect())
}

/// `real@1.2.3` or `@scope/real@1.2.3`.
fn split_alias(spec: &str) -> Option<(&str, &str)> {
    let at = spec.get(1..)?.find('@')?.checked_add(1)?;
    Some((spec.get(..at)?, spec.get(at.checked_add(1)?..)?))
}

fn is_non_registry(spec: &str) -> bool {
    [
        "git+",
        "git:",
        "github:",
        "gitlab:",
        "bitbucket:",
        "file:",
        "link:",
    ]
    .iter()
    .any(|p| spec.starts_with(p))
}

/// `license: "MIT"`, `license: {"type": "MIT"}` or legacy
/// `licenses: [{"type": "MIT"}, ...]`.
fn licenses(obj: &Map<String, Value>) -> Vec<String> {
    let one = |v: &Value| -> Option<String> {
        let s = v
            .as_str()
            .or_else(|| v.get("type").and_then(Value::as_str))?;
        super::non_empty(s)
    };
    if let Some(l) = obj.get("license").and_then(one) {
        return vec![l];
    }
    obj.get("licenses")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(one).collect())
        .unwrap_or_default()
}

fn make(path: &str, name: &str, version: &str, licenses: Vec<String>) -> Option<Package> {
    if !valid_name(name) || !is_token(version) {
        return None;
    }
    let (namespace, bare) = match name.split_once('/') {
        Some((scope, bare)) => (Some(scope), bare),
        None => (None, name),
    };
    let purl = purl::build("npm", namespace, bare, version, &[]);
    let mut p = package(
        PackageKind::Npm,
        path,
        name.to_owned(),
        version.to_owned(),
        purl,
    );
    p.licenses = licenses;
    Some(p)
}

/// `name` or `@scope/name`, each part non-empty and without whitespace.
fn valid_name(name: &str) -> bool {
    if !is_token(name) {
        return false;
    }
    match name.split_once('/') {
        None => !name.starts_with('@'),
        Some((scope, bare)) => {
            scope.len() > 1 && scope.starts_with('@') && !bare.is_empty() && !bare.contains('/')
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pkgs: &[Package]) -> Vec<String> {
        let mut v: Vec<String> = pkgs
            .iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn v3_packages_map() {
        let lock = r#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "app", "version": "1.0.0"},
    "node_modules/@types/node": {"version": "20.8.0", "license": "MIT", "dev": true},
    "node_modules/debug": {"version": "4.3.4", "license": {"type": "MIT"}},
    "node_modules/send/node_modules/debug": {"version": "2.6.9"},
    "node_modules/lodash-es": {"name": "lodash", "version": "4.17.21"},
    "node_modules/local": {"resolved": "packages/local", "link": true},
    "node_modules/forked": {"version": "1.0.0", "resolved": "git+ssh://git@github.com/a/forked.git#0123abc"},
    "node_modules/noversion": {"resolved": "https://example.invalid/x.tgz"},
    "node_modules/badversion": {"version": 1},
    "node_modules/notobject": [],
    "packages/local": {"name": "local", "version": "0.0.1"}
  }
}"#;
        let pkgs = parse_lockfile("app/package-lock.json", lock.as_bytes()).unwrap();
        assert_eq!(
            names(&pkgs),
            [
                "@types/node@20.8.0",
                "debug@2.6.9",
                "debug@4.3.4",
                "lodash@4.17.21"
            ]
        );
        let types = pkgs.iter().find(|p| p.name == "@types/node").unwrap();
        assert_eq!(types.purl, "pkg:npm/%40types/node@20.8.0");
        assert_eq!(types.licenses, ["MIT"]);
        assert_eq!(types.ecosystem, crate::version::Ecosystem::SemVer);
        let debug = pkgs.iter().find(|p| p.version == "4.3.4").unwrap();
        assert_eq!(debug.licenses, ["MIT"]);
    }

    #[test]
    fn v1_tree() {
        let lock = r#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 1, "requires": true,
  "dependencies": {
    "send": {"version": "0.18.0", "dependencies": {
        "debug": {"version": "2.6.9", "dependencies": {"ms": {"version": "2.0.0"}}}
    }},
    "ms": {"version": "2.1.3"},
    "my-lodash": {"version": "npm:lodash@4.17.21"},
    "my-types": {"version": "npm:@types/ms@0.7.34"},
    "local": {"version": "file:packages/local"},
    "forked": {"version": "github:a/forked#0123abc", "from": "github:a/forked"},
    "weird": {"version": ["1"]},
    "@bad": {"version": "1.0.0"}
  }
}"#;
        let pkgs = parse_lockfile("package-lock.json", lock.as_bytes()).unwrap();
        assert_eq!(
            names(&pkgs),
            [
                "@types/ms@0.7.34",
                "debug@2.6.9",
                "lodash@4.17.21",
                "ms@2.0.0",
                "ms@2.1.3",
                "send@0.18.0"
            ]
        );
    }

    #[test]
    fn empty_and_invalid_lockfiles() {
        let empty = br#"{"name":"x","lockfileVersion":3,"requires":true,"packages":{"":{}}}"#;
        assert!(parse_lockfile("l", empty).unwrap().is_empty());
        let no_deps = br#"{"name":"x","lockfileVersion":1}"#;
        assert!(parse_lockfile("l", no_deps).unwrap().is_empty());
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{}",
            b"null",
            b"\xff",
            b"{\"packages\": 1}",
        ] {
            assert!(
                matches!(
                    parse_lockfile("l", bad),
                    Err(InventoryError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut s = String::from(r#"{"dependencies":"#);
        for _ in 0..10_000 {
            s.push_str(r#"{"a":{"dependencies":"#);
        }
        assert!(parse_lockfile("l", s.as_bytes()).is_err());
    }

    #[test]
    fn installed_package_json() {
        let pj =
            br#"{"name": "abbrev", "version": "4.0.0", "license": "ISC", "main": "lib/index.js"}"#;
        let pkgs = parse_package_json("node_modules/abbrev/package.json", pj).unwrap();
        assert_eq!(names(&pkgs), ["abbrev@4.0.0"]);
        assert_eq!(pkgs[0].licenses, ["ISC"]);
        assert_eq!(pkgs[0].purl, "pkg:npm/abbrev@4.0.0");

        let legacy = br#"{"name": "@scope/x", "version": "1.0.0", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}"#;
        let pkgs = parse_package_json("p", legacy).unwrap();
        assert_eq!(pkgs[0].licenses, ["MIT", "Apache-2.0"]);
        assert_eq!(pkgs[0].purl, "pkg:npm/%40scope/x@1.0.0");

        assert!(
            parse_package_json("p", br#"{"name": "private-thing"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_package_json("p", br#"{"name": 5, "version": "1"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(parse_package_json("p", b"[1]").is_err());
        assert!(parse_package_json("p", b"not json").is_err());
    }

    #[test]
    fn names_and_aliases() {
        assert!(valid_name("a"));
        assert!(valid_name("@s/a"));
        assert!(!valid_name("@s"));
        assert!(!valid_name("@/a"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("@s/a/b"));
        assert!(!valid_name("a b"));
        assert_eq!(split_alias("lodash@1"), Some(("lodash", "1")));
        assert_eq!(split_alias("@s/x@1"), Some(("@s/x", "1")));
        assert_eq!(split_alias("@"), None);
        assert_eq!(split_alias("x"), None);
        assert_eq!(split_alias("x@"), Some(("x", "")));
    }
}
