//! Python core metadata: `*.dist-info/METADATA` (wheels, pip installs) and
//! `*.egg-info/PKG-INFO` or a `*.egg-info` file (setuptools, Debian's
//! `python3-*` packages).
//!
//! The format is email headers: fields up to the first blank line, the
//! description after it (ignored). One file describes one distribution.
//! `Name` and `Version` are required by the core metadata specification;
//! a file missing either is an error. The package name is normalised per
//! PEP 503 (lowercase, runs of `-`, `_`, `.` become one `-`), which is the
//! form advisories and the `pypi` package-URL type use.
//!
//! Licenses, first match wins: `License-Expression` (metadata 2.4); a
//! one-line `License` other than `UNKNOWN` (multi-line values are whole
//! license texts and are not recorded); otherwise the last component of
//! each `Classifier: License :: ...` (`MIT License`).

use super::control::{Syntax, stanzas};
use super::{
    InventoryError, Package, PackageKind, check_size, malformed, non_empty, package, purl,
};

const FORMAT: &str = "Python metadata";

/// A `License` value longer than this is treated as license text, not a name.
const MAX_LICENSE_NAME: usize = 200;

/// Parses one `METADATA` / `PKG-INFO` file.
pub fn parse_metadata(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let text = String::from_utf8_lossy(contents);
    let headers = stanzas(&text, Syntax::Email)
        .next()
        .ok_or_else(|| malformed(path, FORMAT, "no header fields"))?;
    let raw_name = headers
        .get("Name")
        .filter(is_token)
        .ok_or_else(|| malformed(path, FORMAT, "missing or invalid Name"))?;
    let version = headers
        .get("Version")
        .filter(is_token)
        .ok_or_else(|| malformed(path, FORMAT, "missing or invalid Version"))?;
    let name = normalize_name(raw_name);
    let purl = purl::build("pypi", None, &name, version, &[]);
    let mut p = package(PackageKind::Python, path, name, version.to_owned(), purl);

    let expression = headers.get("License-Expression").and_then(non_empty);
    let license = headers
        .get("License")
        .filter(|l| !l.contains('\n') && l.len() <= MAX_LICENSE_NAME)
        .and_then(non_empty)
        .filter(|l| !l.eq_ignore_ascii_case("UNKNOWN"));
    if let Some(l) = expression.or(license) {
        p.licenses.push(l);
    } else {
        p.licenses.extend(
            headers
                .get_all("Classifier")
                .filter_map(|c| c.strip_prefix("License ::"))
                .filter_map(|c| c.rsplit("::").next())
                .filter_map(non_empty),
        );
    }
    Ok(vec![p])
}

/// PEP 503 normalisation: lowercase; each run of `-`, `_`, `.` becomes `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

fn is_token(s: &&str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_metadata() {
        let text = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\nSummary: YAML parser and emitter for Python\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n\nYAML is a data serialization format.\nName: NotAHeader\n";
        let pkgs = parse_metadata("x/PyYAML-6.0.dist-info/METADATA", text.as_bytes()).unwrap();
        assert_eq!(pkgs.len(), 1);
        let p = &pkgs[0];
        assert_eq!(p.name, "pyyaml");
        assert_eq!(p.version, "6.0");
        assert_eq!(p.licenses, ["MIT"]);
        assert_eq!(p.purl, "pkg:pypi/pyyaml@6.0");
        assert_eq!(p.ecosystem, crate::version::Ecosystem::Pep440);
    }

    #[test]
    fn license_sources() {
        let expr = "Metadata-Version: 2.4\nName: urllib3\nVersion: 2.7.0\nLicense-Expression: MIT\nLicense: ignored\n";
        assert_eq!(
            parse_metadata("m", expr.as_bytes()).unwrap()[0].licenses,
            ["MIT"]
        );

        let text = "Name: traitlets\nVersion: 5.15.0\nLicense: BSD 3-Clause License\n        \n        - Copyright (c) 2001-, IPython Development Team\nClassifier: License :: OSI Approved :: BSD License\n";
        assert_eq!(
            parse_metadata("m", text.as_bytes()).unwrap()[0].licenses,
            ["BSD License"]
        );

        let unknown = "Name: x\nVersion: 1\nLicense: UNKNOWN\n";
        assert!(
            parse_metadata("m", unknown.as_bytes()).unwrap()[0]
                .licenses
                .is_empty()
        );
    }

    #[test]
    fn pep503_names() {
        for (raw, want) in [
            ("Django", "django"),
            ("zope.interface", "zope-interface"),
            ("typing_extensions", "typing-extensions"),
            ("Foo__--..Bar", "foo-bar"),
            ("ruamel.yaml.clib", "ruamel-yaml-clib"),
        ] {
            assert_eq!(normalize_name(raw), want);
        }
    }

    #[test]
    fn missing_fields_are_errors() {
        for input in [
            &b""[..],
            b"\n\n",
            b"Name: x\n",
            b"Version: 1\n",
            b"Name:\nVersion: 1\n",
            b"Name: a b\nVersion: 1\n",
            b"\nName: x\nVersion: 1\n\xff",
        ] {
            let err = parse_metadata("m", input);
            if input.starts_with(b"\nName") {
                // Leading blank lines are skipped; this one is fine.
                assert!(err.is_ok());
                continue;
            }
            assert!(
                matches!(err, Err(InventoryError::Malformed { .. })),
                "{input:?}: {err:?}"
            );
        }
    }
}
