//! Rust `Cargo.lock`, lockfile versions 1 to 4.
//!
//! Every version lists packages as `[[package]]` tables with `name`,
//! `version` and, for packages not in the workspace, `source`; the versions
//! differ only in how dependencies and checksums are written, which this
//! parser does not need. Only registry packages are reported (`source`
//! starting with `registry+` or `sparse+`, i.e. crates.io or another
//! registry): workspace and path packages (no `source`) are the project
//! itself, and git packages (`git+`) are not described by registry
//! advisories, so both are skipped, as are tables missing a string `name`
//! or `version`. A file that is not TOML, or whose `package` key is not an
//! array of tables, is an error. Cargo.lock records no licenses.

use toml::{Table, Value};

use super::{
    InventoryError, Package, PackageKind, check_entries, check_size, malformed, package, purl,
};

const FORMAT: &str = "Cargo.lock";

/// Parses a `Cargo.lock`.
pub fn parse_lockfile(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let text = std::str::from_utf8(contents).map_err(|e| malformed(path, FORMAT, e.to_string()))?;
    let doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| malformed(path, FORMAT, e.message().to_owned()))?;
    let packages = match doc.get("package") {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(malformed(
                path,
                FORMAT,
                "`package` is not an array of tables",
            ));
        }
    };
    let mut out = Vec::new();
    for (seen, entry) in packages.iter().enumerate() {
        check_entries(path, seen.saturating_add(1))?;
        let Some(entry) = entry.as_table() else {
            return Err(malformed(
                path,
                FORMAT,
                "`package` is not an array of tables",
            ));
        };
        let field = |k: &str| entry.get(k).and_then(Value::as_str);
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            continue;
        };
        let Some(source) = field("source") else {
            continue;
        };
        if !(source.starts_with("registry+") || source.starts_with("sparse+")) {
            continue;
        }
        out.extend(crate_package(path, name, version));
    }
    Ok(out)
}

/// A crates.io crate found at `path` (a lockfile or an audited binary); `None` when the name
/// or version is empty or has whitespace or control characters.
pub(super) fn crate_package(path: &str, name: &str, version: &str) -> Option<Package> {
    if !is_token(name) || !is_token(version) {
        return None;
    }
    let purl = purl::build("cargo", None, name, version, &[]);
    Some(package(
        PackageKind::Cargo,
        path,
        name.to_owned(),
        version.to_owned(),
        purl,
    ))
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "serde 1.0.188 (registry+https://github.com/rust-lang/crates.io-index)",
 "forked 0.2.0 (git+https://github.com/example/forked?branch=main#0123456789abcdef0123456789abcdef01234567)",
]

[[package]]
name = "serde"
version = "1.0.188"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "forked"
version = "0.2.0"
source = "git+https://github.com/example/forked?branch=main#0123456789abcdef0123456789abcdef01234567"

[metadata]
"checksum serde 1.0.188 (registry+https://github.com/rust-lang/crates.io-index)" = "cf9e0fcba69a370eed61bcf2b728575f726b50b55cba78064753d708ddc7549e"
"#;

    #[test]
    fn v1_registry_only() {
        let pkgs = parse_lockfile("Cargo.lock", V1.as_bytes()).unwrap();
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name, "serde");
        assert_eq!(pkgs[0].version, "1.0.188");
        assert_eq!(pkgs[0].purl, "pkg:cargo/serde@1.0.188");
        assert_eq!(pkgs[0].kind, PackageKind::Cargo);
        assert_eq!(pkgs[0].ecosystem, crate::version::Ecosystem::SemVer);
    }

    #[test]
    fn sparse_registry_and_v4() {
        let lock = "version = 4\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.9\"\nsource = \"sparse+https://index.crates.io/\"\nchecksum = \"af150ab688ff2122fcef229be89cb50dd66af9e01a4ff320cc137eecc9bacc38\"\n";
        let pkgs = parse_lockfile("Cargo.lock", lock.as_bytes()).unwrap();
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name, "itoa");
    }

    #[test]
    fn malformed_files() {
        assert!(parse_lockfile("l", b"").unwrap().is_empty());
        assert!(parse_lockfile("l", b"version = 3\n").unwrap().is_empty());
        for bad in [
            &b"[[package]\n"[..],
            b"package = 1",
            b"package = [1]",
            b"\xff",
            b"a = [",
        ] {
            assert!(
                matches!(
                    parse_lockfile("l", bad),
                    Err(InventoryError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        // A table missing its version, or with a non-string name, is skipped.
        let partial = "[[package]]\nname = \"a\"\nsource = \"registry+x\"\n\n[[package]]\nname = 1\nversion = \"1\"\nsource = \"registry+x\"\n";
        assert!(parse_lockfile("l", partial.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = format!("a = {}", "[".repeat(100_000));
        assert!(parse_lockfile("l", s.as_bytes()).is_err());
        let s = format!("a = {}", "{b = ".repeat(100_000));
        assert!(parse_lockfile("l", s.as_bytes()).is_err());
    }
}
