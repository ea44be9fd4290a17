//! The dpkg database: `var/lib/dpkg/status` and distroless
//! `var/lib/dpkg/status.d/<package>` files.
//!
//! Both are deb822 stanzas, one per package. A stanza yields a package when
//! it has `Package` and `Version` and is installed: its `Status` field's
//! third word (the package state) is `installed`, whatever the selection
//! (`install`, `hold`, `deinstall`) and error flag; other states
//! (`config-files`, `unpacked`, `half-installed`, `not-installed`, ...) are
//! skipped. In `status` a stanza without `Status` is skipped. In
//! `status.d/` files, which distroless images write from the package's
//! control file and which therefore carry no `Status`, a stanza without
//! `Status` counts as installed. Stanzas missing `Package` or `Version` are
//! skipped. dpkg does not record licenses.

use crate::distro::{Distro, DistroId};

use super::control::{Stanza, Syntax, stanzas};
use super::{InventoryError, Package, PackageKind, check_entries, check_size, package, purl};

/// Parses `var/lib/dpkg/status`.
pub fn parse_status(
    path: &str,
    contents: &[u8],
    distro: Option<&Distro>,
) -> Result<Vec<Package>, InventoryError> {
    parse(path, contents, distro, false)
}

/// Parses one `var/lib/dpkg/status.d/` file (normally one stanza).
pub fn parse_status_d(
    path: &str,
    contents: &[u8],
    distro: Option<&Distro>,
) -> Result<Vec<Package>, InventoryError> {
    parse(path, contents, distro, true)
}

fn parse(
    path: &str,
    contents: &[u8],
    distro: Option<&Distro>,
    missing_status_is_installed: bool,
) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let text = String::from_utf8_lossy(contents);
    let namespace = match distro.map(|d| &d.id) {
        Some(DistroId::Ubuntu) => "ubuntu",
        Some(DistroId::Other(id)) if !id.is_empty() => id.as_str(),
        _ => "debian",
    };
    let distro_qualifier = distro.and_then(Distro::purl_qualifier);
    let mut out = Vec::new();
    for (seen, stanza) in stanzas(&text, Syntax::Deb822).enumerate() {
        check_entries(path, seen.saturating_add(1))?;
        let installed = match stanza.get("Status") {
            Some(status) => is_installed(status),
            None => missing_status_is_installed,
        };
        if !installed {
            continue;
        }
        if let Some(p) = to_package(&stanza, path, namespace, distro_qualifier.as_deref()) {
            out.push(p);
        }
    }
    Ok(out)
}

/// `Status: <selection> <flag> <state>`; installed when state is `installed`.
fn is_installed(status: &str) -> bool {
    let words: Vec<&str> = status.split_whitespace().collect();
    matches!(words.as_slice(), [_, _, "installed"])
}

fn to_package(
    stanza: &Stanza<'_>,
    path: &str,
    namespace: &str,
    distro_qualifier: Option<&str>,
) -> Option<Package> {
    let name = single_word(stanza.get("Package")?)?;
    let version = single_word(stanza.get("Version")?)?;
    let arch = stanza.get("Architecture").and_then(single_word);
    let purl = purl::build(
        "deb",
        Some(namespace),
        name,
        version,
        &[("arch", arch), ("distro", distro_qualifier)],
    );
    let mut p = package(
        PackageKind::Dpkg,
        path,
        name.to_owned(),
        version.to_owned(),
        purl,
    );
    if let Some((source, source_version)) = stanza.get("Source").and_then(parse_source) {
        p.source_name = Some(source.to_owned());
        p.source_version = Some(source_version.unwrap_or(version).to_owned());
    }
    Some(p)
}

/// `name` or `name (version)`.
fn parse_source(field: &str) -> Option<(&str, Option<&str>)> {
    let (name, rest) = match field.split_once('(') {
        Some((name, rest)) => (name.trim(), Some(rest)),
        None => (field.trim(), None),
    };
    let name = single_word(name)?;
    let version = rest
        .and_then(|r| r.split_once(')'))
        .and_then(|(v, _)| single_word(v.trim()));
    Some((name, version))
}

/// The value when it is one non-empty word without control characters.
fn single_word(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c.is_control())).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6141
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Internet.
 .
 It provides the libssl and libcrypto shared libraries.
Homepage: https://www.openssl.org/

Package: bash
Essential: yes
Status: hold ok installed
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b7
Description: GNU Bourne Again SHell

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: all
Version: 1.0-1
Conffiles:
 /etc/removed.conf 0123456789abcdef0123456789abcdef

Package: half
Status: install reinstreq half-installed
Version: 1.0

Package: noversion
Status: install ok installed

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: nostatus
Version: 1
";

    fn debian12() -> Distro {
        crate::distro::from_os_release(b"ID=debian\nVERSION_ID=\"12\"\n").unwrap()
    }

    #[test]
    fn installed_stanzas_only() {
        let pkgs =
            parse_status("var/lib/dpkg/status", STATUS.as_bytes(), Some(&debian12())).unwrap();
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libssl3", "bash", "tzdata"]);

        let ssl = &pkgs[0];
        assert_eq!(ssl.version, "3.0.11-1~deb12u2");
        assert_eq!(ssl.source_name.as_deref(), Some("openssl"));
        assert_eq!(ssl.source_version.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(
            ssl.purl,
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
        );
        assert_eq!(ssl.kind, PackageKind::Dpkg);
        assert_eq!(ssl.ecosystem, crate::version::Ecosystem::Dpkg);
        assert_eq!(ssl.path, "var/lib/dpkg/status");
        assert!(ssl.licenses.is_empty());

        let bash = &pkgs[1];
        assert_eq!(bash.source_name.as_deref(), Some("bash"));
        assert_eq!(bash.source_version.as_deref(), Some("5.2.15-2"));

        let tz = &pkgs[2];
        assert_eq!(tz.source_name, None);
        assert_eq!(tz.source_version, None);
    }

    #[test]
    fn status_d_without_status_field() {
        // As distroless writes var/lib/dpkg/status.d/base-files.
        let file = "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nMaintainer: Santiago Vila <sanvila@debian.org>\nInstalled-Size: 340\nPriority: required\nSection: admin\nDescription: Debian base system miscellaneous files\n";
        let pkgs =
            parse_status_d("var/lib/dpkg/status.d/base-files", file.as_bytes(), None).unwrap();
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name, "base-files");
        assert_eq!(
            pkgs[0].purl,
            "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64"
        );
        // status proper requires Status.
        assert!(parse_status("s", file.as_bytes(), None).unwrap().is_empty());
        // An explicit non-installed Status still excludes it.
        let removed = format!("{file}Status: deinstall ok config-files\n");
        assert!(
            parse_status_d("s", removed.as_bytes(), None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn ubuntu_namespace() {
        let ubuntu = crate::distro::from_os_release(b"ID=ubuntu\nVERSION_ID=\"22.04\"\n").unwrap();
        let pkgs = parse_status("s", STATUS.as_bytes(), Some(&ubuntu)).unwrap();
        assert!(pkgs[0].purl.starts_with("pkg:deb/ubuntu/libssl3@"));
        assert!(pkgs[0].purl.ends_with("distro=ubuntu-22.04"));
    }

    #[test]
    fn source_field_forms() {
        assert_eq!(
            parse_source("glibc (2.36-9+deb12u4)"),
            Some(("glibc", Some("2.36-9+deb12u4")))
        );
        assert_eq!(parse_source("glibc"), Some(("glibc", None)));
        assert_eq!(parse_source("glibc (unterminated"), Some(("glibc", None)));
        assert_eq!(parse_source("glibc ()"), Some(("glibc", None)));
        assert_eq!(parse_source(" (1.0)"), None);
        assert_eq!(parse_source("two words"), None);
    }

    #[test]
    fn status_words() {
        assert!(is_installed("install ok installed"));
        assert!(is_installed("hold ok installed"));
        assert!(is_installed("deinstall ok installed"));
        assert!(!is_installed("deinstall ok config-files"));
        assert!(!is_installed("install ok unpacked"));
        assert!(!is_installed("installed"));
        assert!(!is_installed("install ok installed extra"));
    }

    #[test]
    fn hostile_input() {
        for input in [
            &b""[..],
            b"\xff\xfe\xfd",
            b"Package: \x00\nVersion: 1\nStatus: install ok installed",
            b"Package:\nVersion:\nStatus: install ok installed",
            b"Package: a b\nVersion: 1\nStatus: install ok installed",
            b":::\n\n\n:\n ",
            b"Package: x\nVersion: 1\nStatus: install ok installed\nSource: (((",
        ] {
            let pkgs = parse_status("s", input, None).unwrap();
            assert!(
                pkgs.iter()
                    .all(|p| !p.name.is_empty() && !p.version.is_empty())
            );
        }
    }

    #[test]
    fn entry_cap() {
        let many = "Package: a\n\n".repeat(super::super::MAX_ENTRIES + 1);
        let err = parse_status("s", many.as_bytes(), None).unwrap_err();
        assert!(
            matches!(err, InventoryError::TooManyEntries { .. }),
            "{err}"
        );
    }
}
