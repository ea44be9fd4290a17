//! Package inventory: which packages an image contains, read from package
//! databases and lockfiles.
//!
//! This module owns turning the contents of one file into [`Package`]s, and
//! routing a file path to the parser that understands it ([`parser_for`]).
//! It does no I/O and knows nothing of layers: a layer walker hands it
//! `(path, bytes)` pairs, and deduplication across files is the caller's job.
//!
//! | format | paths | module |
//! |---|---|---|
//! | dpkg database | `var/lib/dpkg/status`, `var/lib/dpkg/status.d/*` | [`dpkg`] |
//! | apk database | `lib/apk/db/installed` | [`apk`] |
//! | Python core metadata | `**/*.dist-info/METADATA`, `**/*.egg-info/PKG-INFO`, `**/*.egg-info` | [`python`] |
//! | npm | `**/package-lock.json`, `**/npm-shrinkwrap.json`, `**/node_modules/.package-lock.json`, `**/node_modules/[@scope/]name/package.json` | [`npm`] |
//! | Cargo | `**/Cargo.lock` | [`cargo`] |
//! | Composer | `**/composer.lock` | [`composer`] |
//! | RubyGems | `**/specifications/*.gemspec`, `**/specifications/default/*.gemspec` | [`gem`] |
//! | rpm database (sqlite) | `var/lib/rpm/rpmdb.sqlite`, `usr/lib/sysimage/rpm/rpmdb.sqlite` | [`rpm`] |
//! | rpm database (Berkeley DB) | `var/lib/rpm/Packages` | [`rpm`] |
//! | Java archives | `**/*.jar`, `**/*.war`, `**/*.ear` | [`java`] |
//! | Go executables, Rust executables built with `cargo auditable` (ELF) | extensionless files outside data trees ([`gobinary::is_candidate`]) | [`gobinary`], [`rustbinary`] |
//!
//! Every input is untrusted. Parsers never panic; files over
//! [`MAX_FILE_BYTES`] or with more than [`MAX_ENTRIES`] entries are refused
//! with an [`InventoryError`]. A file whose overall structure is broken
//! (invalid JSON or TOML, a gemspec with no name) is an error; a single
//! malformed entry inside an otherwise valid file (a stanza with no
//! `Version`, a lockfile entry with no version) is skipped. Each parser's
//! docs say which is which.

use std::fmt;

use crate::distro::Distro;
use crate::version::Ecosystem;

pub mod apk;
mod bdb;
pub mod cargo;
pub mod composer;
mod control;
pub mod dpkg;
mod elf;
pub mod gem;
pub mod gobinary;
pub mod java;
pub mod npm;
mod purl;
pub mod python;
pub mod rpm;
pub mod rustbinary;

/// Files larger than this are refused.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Files with more entries (stanzas, lockfile entries) than this are refused.
pub const MAX_ENTRIES: usize = 200_000;

/// How a package was installed, i.e. which database or lockfile listed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageKind {
    Dpkg,
    Apk,
    Rpm,
    Python,
    Npm,
    Cargo,
    Go,
    Maven,
    RubyGem,
    Composer,
}

impl PackageKind {
    /// The ordering used to compare this kind's versions.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            PackageKind::Dpkg => Ecosystem::Dpkg,
            PackageKind::Apk => Ecosystem::Apk,
            PackageKind::Rpm => Ecosystem::Rpm,
            PackageKind::Python => Ecosystem::Pep440,
            PackageKind::Npm | PackageKind::Cargo | PackageKind::Composer => Ecosystem::SemVer,
            PackageKind::Go => Ecosystem::Go,
            PackageKind::Maven => Ecosystem::Maven,
            PackageKind::RubyGem => Ecosystem::RubyGems,
        }
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            PackageKind::Dpkg => "dpkg",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
            PackageKind::Python => "python",
            PackageKind::Npm => "npm",
            PackageKind::Cargo => "cargo",
            PackageKind::Go => "go",
            PackageKind::Maven => "maven",
            PackageKind::RubyGem => "gem",
            PackageKind::Composer => "composer",
        }
    }
}

impl fmt::Display for PackageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One installed (or locked) package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The name advisories use: the binary package name for dpkg/apk, the
    /// PEP 503-normalised name for Python, `@scope/name` for npm,
    /// `vendor/name` for Composer.
    pub name: String,
    pub version: String,
    /// The source package (dpkg `Source`, apk origin `o`, the rpm
    /// `SOURCERPM` name), when the database names one.
    pub source_name: Option<String>,
    /// The source package's version, when it is known (dpkg: from
    /// `Source: name (version)`, else the binary version).
    pub source_version: Option<String>,
    pub ecosystem: Ecosystem,
    pub kind: PackageKind,
    /// The file the package was read from, as given to the parser.
    pub path: String,
    /// Package URL (<https://github.com/package-url/purl-spec>).
    pub purl: String,
    /// Declared licenses, as written (SPDX expressions or free text).
    pub licenses: Vec<String>,
}

/// Why a file could not be inventoried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// The file exceeds [`MAX_FILE_BYTES`].
    #[error("{path}: {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        path: String,
        size: usize,
        limit: usize,
    },
    /// The file lists more than [`MAX_ENTRIES`] entries.
    #[error("{path}: more than {limit} entries")]
    TooManyEntries { path: String, limit: usize },
    /// The file is not valid in its format.
    #[error("{path}: malformed {format}: {reason}")]
    Malformed {
        path: String,
        format: &'static str,
        reason: String,
    },
}

/// A file format this module can parse; see [`parser_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parser {
    /// `var/lib/dpkg/status`.
    DpkgStatus,
    /// One file of `var/lib/dpkg/status.d/` (distroless).
    DpkgStatusD,
    /// `lib/apk/db/installed`.
    ApkInstalled,
    /// Python core metadata (`METADATA`, `PKG-INFO`).
    PythonMetadata,
    /// npm `package-lock.json` / `npm-shrinkwrap.json`, any lockfile version.
    NpmLock,
    /// An installed package's `node_modules/<name>/package.json`.
    NpmPackageJson,
    /// Cargo `Cargo.lock`, any lockfile version.
    CargoLock,
    /// Composer `composer.lock`.
    ComposerLock,
    /// An installed gem's `specifications/<name>-<version>.gemspec`.
    Gemspec,
    /// The sqlite rpm database, `rpmdb.sqlite`.
    RpmSqlite,
    /// The Berkeley DB rpm database, `var/lib/rpm/Packages`.
    RpmBerkeley,
    /// A possible Go or `cargo auditable` Rust executable (or the compact
    /// record the image scan keeps of one); see [`parse_executable`].
    Executable,
    /// A `.jar`, `.war` or `.ear` (or the compact record the image scan
    /// keeps of one).
    JavaArchive,
}

impl Parser {
    /// The kind of package this parser yields. A [`Parser::Executable`]
    /// yields [`PackageKind::Go`] modules, or [`PackageKind::Cargo`] crates
    /// for a Rust executable; `Go` is returned for it.
    pub fn kind(self) -> PackageKind {
        match self {
            Parser::DpkgStatus | Parser::DpkgStatusD => PackageKind::Dpkg,
            Parser::ApkInstalled => PackageKind::Apk,
            Parser::PythonMetadata => PackageKind::Python,
            Parser::NpmLock | Parser::NpmPackageJson => PackageKind::Npm,
            Parser::CargoLock => PackageKind::Cargo,
            Parser::ComposerLock => PackageKind::Composer,
            Parser::Gemspec => PackageKind::RubyGem,
            Parser::RpmSqlite | Parser::RpmBerkeley => PackageKind::Rpm,
            Parser::Executable => PackageKind::Go,
            Parser::JavaArchive => PackageKind::Maven,
        }
    }

    /// Parses `contents`, the file at `path`.
    ///
    /// `distro` qualifies OS package URLs (`distro=debian-12`) and picks
    /// their namespace (`deb/ubuntu`); language parsers ignore it.
    pub fn parse(
        self,
        path: &str,
        contents: &[u8],
        distro: Option<&Distro>,
    ) -> Result<Vec<Package>, InventoryError> {
        match self {
            Parser::DpkgStatus => dpkg::parse_status(path, contents, distro),
            Parser::DpkgStatusD => dpkg::parse_status_d(path, contents, distro),
            Parser::ApkInstalled => apk::parse_installed(path, contents, distro),
            Parser::PythonMetadata => python::parse_metadata(path, contents),
            Parser::NpmLock => npm::parse_lockfile(path, contents),
            Parser::NpmPackageJson => npm::parse_package_json(path, contents),
            Parser::CargoLock => cargo::parse_lockfile(path, contents),
            Parser::ComposerLock => composer::parse_lockfile(path, contents),
            Parser::Gemspec => gem::parse_gemspec(path, contents),
            Parser::RpmSqlite => rpm::parse_sqlite(path, contents, distro),
            Parser::RpmBerkeley => rpm::parse_berkeley(path, contents, distro),
            Parser::Executable => parse_executable(path, contents),
            Parser::JavaArchive => java::parse_archive(path, contents),
        }
    }
}

/// Which parser handles the file at `path`, if any.
///
/// `path` is relative to the image root; a leading `/` or `./` is ignored.
/// OS databases match only at their fixed location; language files match
/// at any depth (the table in the module docs lists the patterns).
/// Lockfiles inside an installed npm package (`node_modules/x/package-lock.json`)
/// describe that package's development tree, not what is installed, and are
/// not routed.
pub fn parser_for(path: &str) -> Option<Parser> {
    let path = normalize(path);
    match path {
        "var/lib/dpkg/status" => return Some(Parser::DpkgStatus),
        "lib/apk/db/installed" => return Some(Parser::ApkInstalled),
        "var/lib/rpm/rpmdb.sqlite" | "usr/lib/sysimage/rpm/rpmdb.sqlite" => {
            return Some(Parser::RpmSqlite);
        }
        "var/lib/rpm/Packages" => return Some(Parser::RpmBerkeley),
        _ => {}
    }
    if let Some(file) = path.strip_prefix("var/lib/dpkg/status.d/") {
        let routed = !file.is_empty()
            && !file.contains('/')
            && !file.starts_with('.')
            && !file.ends_with(".md5sums");
        return routed.then_some(Parser::DpkgStatusD);
    }

    let segments: Vec<&str> = path.split('/').collect();
    let (file, dirs) = segments.split_last()?;
    let parent = dirs.last().copied().unwrap_or("");
    let grandparent = dirs.len().checked_sub(2).and_then(|i| dirs.get(i)).copied();

    match *file {
        "METADATA" if parent.ends_with(".dist-info") && parent.len() > 10 => {
            return Some(Parser::PythonMetadata);
        }
        "PKG-INFO" if parent.ends_with(".egg-info") && parent.len() > 9 => {
            return Some(Parser::PythonMetadata);
        }
        "Cargo.lock" => return Some(Parser::CargoLock),
        "composer.lock" => return Some(Parser::ComposerLock),
        ".package-lock.json" if parent == "node_modules" => return Some(Parser::NpmLock),
        "package-lock.json" | "npm-shrinkwrap.json" => {
            return (!dirs.contains(&"node_modules")).then_some(Parser::NpmLock);
        }
        "package.json" => {
            let installed = match grandparent {
                Some("node_modules") => is_npm_name_segment(parent),
                Some(scope) => {
                    scope.starts_with('@')
                        && scope.len() > 1
                        && is_npm_name_segment(parent)
                        && dirs.len().checked_sub(3).and_then(|i| dirs.get(i))
                            == Some(&"node_modules")
                }
                None => false,
            };
            return installed.then_some(Parser::NpmPackageJson);
        }
        _ => {}
    }
    if file.ends_with(".egg-info") && file.len() > 9 {
        return Some(Parser::PythonMetadata);
    }
    if file.ends_with(".gemspec") && file.len() > 8 {
        let in_specs = parent == "specifications"
            || (parent == "default" && grandparent == Some("specifications"));
        if in_specs {
            return Some(Parser::Gemspec);
        }
    }
    if java::is_archive(path) {
        return Some(Parser::JavaArchive);
    }
    if gobinary::is_candidate(path) {
        return Some(Parser::Executable);
    }
    None
}

/// Parses a possible executable: a compact record of either parser, or an
/// ELF file, read for Go build info and for `cargo auditable` data (a
/// binary could carry both).
pub fn parse_executable(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    if contents.starts_with(rustbinary::MAGIC) {
        return rustbinary::parse(path, contents);
    }
    let mut found = gobinary::parse(path, contents)?;
    if !contents.starts_with(gobinary::MAGIC) {
        found.extend(rustbinary::parse(path, contents)?);
    }
    Ok(found)
}

/// Compacts an executable for the image scan: the Go build-info record,
/// else the `cargo auditable` one; `None` when it has neither (when it has
/// both, the Go record is kept).
pub fn extract_executable(contents: &[u8]) -> Option<Vec<u8>> {
    gobinary::extract(contents).or_else(|| rustbinary::extract(contents))
}

/// Parses `contents` with the parser [`parser_for`] picks for `path`;
/// `None` when no parser handles the path.
pub fn parse(
    path: &str,
    contents: &[u8],
    distro: Option<&Distro>,
) -> Option<Result<Vec<Package>, InventoryError>> {
    parser_for(path).map(|p| p.parse(path, contents, distro))
}

fn normalize(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            return p;
        }
    }
}

fn is_npm_name_segment(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && !s.starts_with('@')
}

/// Refuses oversized files.
pub(crate) fn check_size(path: &str, contents: &[u8]) -> Result<(), InventoryError> {
    if contents.len() > MAX_FILE_BYTES {
        return Err(InventoryError::TooLarge {
            path: path.to_owned(),
            size: contents.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(())
}

/// Refuses files with too many entries; call once per entry seen.
pub(crate) fn check_entries(path: &str, seen: usize) -> Result<(), InventoryError> {
    if seen > MAX_ENTRIES {
        return Err(InventoryError::TooManyEntries {
            path: path.to_owned(),
            limit: MAX_ENTRIES,
        });
    }
    Ok(())
}

pub(crate) fn malformed(
    path: &str,
    format: &'static str,
    reason: impl Into<String>,
) -> InventoryError {
    InventoryError::Malformed {
        path: path.to_owned(),
        format,
        reason: reason.into(),
    }
}

/// Builds a [`Package`] of `kind` with no source and no licenses.
pub(crate) fn package(
    kind: PackageKind,
    path: &str,
    name: String,
    version: String,
    purl: String,
) -> Package {
    Package {
        name,
        version,
        source_name: None,
        source_version: None,
        ecosystem: kind.ecosystem(),
        kind,
        path: path.to_owned(),
        purl,
        licenses: Vec::new(),
    }
}

/// A non-empty trimmed string, or `None`.
pub(crate) fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        let cases: &[(&str, Option<Parser>)] = &[
            ("var/lib/dpkg/status", Some(Parser::DpkgStatus)),
            ("/var/lib/dpkg/status", Some(Parser::DpkgStatus)),
            ("./var/lib/dpkg/status", Some(Parser::DpkgStatus)),
            ("var/lib/dpkg/status-old", None),
            (
                "var/lib/dpkg/status.d/base-files",
                Some(Parser::DpkgStatusD),
            ),
            ("var/lib/dpkg/status.d/libssl3", Some(Parser::DpkgStatusD)),
            ("var/lib/dpkg/status.d/libssl3.md5sums", None),
            ("var/lib/dpkg/status.d/", None),
            ("var/lib/dpkg/status.d/sub/x", None),
            // Not the dpkg database; extensionless, so a possible Go binary.
            ("opt/var/lib/dpkg/status", Some(Parser::Executable)),
            ("lib/apk/db/installed", Some(Parser::ApkInstalled)),
            ("lib/apk/db/lock", None),
            (
                "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
                Some(Parser::PythonMetadata),
            ),
            (
                "usr/local/lib/python3.11/site-packages/pip-23.2.1.dist-info/METADATA",
                Some(Parser::PythonMetadata),
            ),
            ("x/.dist-info/METADATA", None),
            ("x/foo.dist-info/RECORD", None),
            (
                "usr/lib/python3/dist-packages/PyJWT-2.6.0.egg-info/PKG-INFO",
                Some(Parser::PythonMetadata),
            ),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
                Some(Parser::PythonMetadata),
            ),
            ("app/package-lock.json", Some(Parser::NpmLock)),
            ("package-lock.json", Some(Parser::NpmLock)),
            ("app/npm-shrinkwrap.json", Some(Parser::NpmLock)),
            ("app/node_modules/.package-lock.json", Some(Parser::NpmLock)),
            ("app/node_modules/foo/package-lock.json", None),
            (
                "app/node_modules/express/package.json",
                Some(Parser::NpmPackageJson),
            ),
            (
                "node_modules/express/package.json",
                Some(Parser::NpmPackageJson),
            ),
            (
                "app/node_modules/@types/node/package.json",
                Some(Parser::NpmPackageJson),
            ),
            (
                "usr/lib/node_modules/npm/node_modules/abbrev/package.json",
                Some(Parser::NpmPackageJson),
            ),
            ("app/node_modules/express/lib/package.json", None),
            ("app/node_modules/@types/package.json", None),
            ("app/node_modules/.bin/package.json", None),
            ("app/package.json", None),
            ("package.json", None),
            ("@scope/x/package.json", None),
            ("src/app/Cargo.lock", Some(Parser::CargoLock)),
            ("Cargo.lock", Some(Parser::CargoLock)),
            ("var/www/composer.lock", Some(Parser::ComposerLock)),
            (
                "usr/share/rubygems-integration/all/specifications/rake-13.0.6.gemspec",
                Some(Parser::Gemspec),
            ),
            (
                "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
                Some(Parser::Gemspec),
            ),
            ("app/rake.gemspec", None),
            ("var/lib/rpm/rpmdb.sqlite", Some(Parser::RpmSqlite)),
            ("usr/lib/sysimage/rpm/rpmdb.sqlite", Some(Parser::RpmSqlite)),
            ("var/lib/rpm/Packages", Some(Parser::RpmBerkeley)),
            ("var/lib/rpm/Name", None),
            (
                "opt/app/lib/spring-core-6.1.0.jar",
                Some(Parser::JavaArchive),
            ),
            (
                "usr/local/tomcat/webapps/ROOT.war",
                Some(Parser::JavaArchive),
            ),
            ("usr/local/bin/helm", Some(Parser::Executable)),
            ("manager", Some(Parser::Executable)),
            ("usr/share/zoneinfo/UTC", None),
            ("etc/passwd", None),
            ("", None),
            ("/", None),
        ];
        for (path, want) in cases {
            assert_eq!(parser_for(path), *want, "{path:?}");
        }
    }

    #[test]
    fn kinds_map_to_ecosystems() {
        assert_eq!(Parser::CargoLock.kind().ecosystem(), Ecosystem::SemVer);
        assert_eq!(Parser::PythonMetadata.kind().ecosystem(), Ecosystem::Pep440);
        assert_eq!(Parser::Gemspec.kind().ecosystem(), Ecosystem::RubyGems);
        assert_eq!(Parser::DpkgStatusD.kind(), PackageKind::Dpkg);
        assert_eq!(PackageKind::RubyGem.to_string(), "gem");
    }

    #[test]
    fn oversized_files_are_refused_by_every_parser() {
        let big = vec![b' '; MAX_FILE_BYTES + 1];
        for p in [
            Parser::DpkgStatus,
            Parser::DpkgStatusD,
            Parser::ApkInstalled,
            Parser::PythonMetadata,
            Parser::NpmLock,
            Parser::NpmPackageJson,
            Parser::CargoLock,
            Parser::ComposerLock,
            Parser::Gemspec,
            Parser::RpmSqlite,
            Parser::RpmBerkeley,
            Parser::Executable,
            Parser::JavaArchive,
        ] {
            let err = p.parse("f", &big, None).unwrap_err();
            assert!(
                matches!(err, InventoryError::TooLarge { .. }),
                "{p:?}: {err}"
            );
        }
    }
}
