//! Operating-system detection from an image's root filesystem.
//!
//! This module owns one question: which distribution and release is this
//! image built on? It answers from file contents only, through a lookup
//! closure that maps a root-relative path (`"etc/os-release"`, no leading
//! slash) to that file's bytes; reading layers and resolving symlinks is the
//! caller's job. The answer picks the vulnerability feed ([`Distro::feed_key`])
//! and qualifies package URLs.
//!
//! Sources, in order of preference:
//!
//! 1. `etc/os-release`, then `usr/lib/os-release` (the systemd
//!    `os-release(5)` format, parsed by [`parse_os_release`]);
//! 2. when neither names a distribution: `etc/alpine-release`,
//!    `etc/redhat-release`, then `etc/debian_version`.
//!
//! Distroless images (Debian-based, `var/lib/dpkg/status.d/` instead of
//! `var/lib/dpkg/status`) ship an os-release whose `ID` is `debian` but with
//! no `VERSION_CODENAME`; the codename is then recovered from `VERSION` or
//! from the release number. All inputs are untrusted: files larger than
//! [`MAX_RELEASE_FILE`] are ignored and nothing here panics.

use std::fmt;

/// Release files larger than this are ignored (real ones are under 1 KiB).
pub const MAX_RELEASE_FILE: usize = 64 * 1024;

/// A distribution, as named by os-release `ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DistroId {
    Debian,
    Ubuntu,
    Alpine,
    /// Red Hat Enterprise Linux (including UBI images).
    Rhel,
    Rocky,
    Alma,
    Fedora,
    CentOS,
    /// Any other `ID`, lowercased.
    Other(String),
}

impl DistroId {
    /// Maps an os-release `ID` value (case-insensitive).
    pub fn from_os_release_id(id: &str) -> DistroId {
        let id = id.trim().to_ascii_lowercase();
        match id.as_str() {
            "debian" => DistroId::Debian,
            "ubuntu" => DistroId::Ubuntu,
            "alpine" => DistroId::Alpine,
            "rhel" => DistroId::Rhel,
            "rocky" => DistroId::Rocky,
            "almalinux" => DistroId::Alma,
            "fedora" => DistroId::Fedora,
            "centos" => DistroId::CentOS,
            _ => DistroId::Other(id),
        }
    }

    /// The os-release `ID` spelling (`"almalinux"`, `"rhel"`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            DistroId::Debian => "debian",
            DistroId::Ubuntu => "ubuntu",
            DistroId::Alpine => "alpine",
            DistroId::Rhel => "rhel",
            DistroId::Rocky => "rocky",
            DistroId::Alma => "almalinux",
            DistroId::Fedora => "fedora",
            DistroId::CentOS => "centos",
            DistroId::Other(id) => id,
        }
    }
}

impl fmt::Display for DistroId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The detected distribution and release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distro {
    pub id: DistroId,
    /// `VERSION_ID` (`"12"`, `"3.18.4"`, `"22.04"`, `"9.3"`).
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`"bookworm"`, `"jammy"`), or for Debian a codename
    /// recovered from `VERSION` or the release number.
    pub version_codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// `ID_LIKE`, split on whitespace and lowercased (`["rhel", "fedora"]`).
    pub id_like: Vec<String>,
    /// A rolling development release with no numbered feed: Alpine edge,
    /// Debian testing/sid (no `VERSION_ID`).
    pub is_edge: bool,
}

/// Where to look up advisories for a [`Distro`]: an OSV-style ecosystem
/// name and release, e.g. `Debian` / `12`, `Alpine` / `v3.18`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedKey {
    /// `"Debian"`, `"Ubuntu"`, `"Alpine"`, `"Red Hat"`, `"Rocky Linux"`,
    /// `"AlmaLinux"`, `"Fedora"`, `"CentOS"`, or the raw `ID` for others.
    pub ecosystem: String,
    /// `"12"` (Debian major), `"bookworm"` (Debian without a number),
    /// `"22.04"` (Ubuntu), `"v3.18"` / `"edge"` (Alpine), `"9"` (RHEL and
    /// rebuilds, major only), `"39"` (Fedora).
    pub release: String,
}

impl fmt::Display for FeedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ecosystem, self.release)
    }
}

/// Debian release numbers and codenames, newest first.
const DEBIAN_CODENAMES: &[(&str, &str)] = &[
    ("14", "forky"),
    ("13", "trixie"),
    ("12", "bookworm"),
    ("11", "bullseye"),
    ("10", "buster"),
    ("9", "stretch"),
    ("8", "jessie"),
    ("7", "wheezy"),
];

impl Distro {
    fn new(id: DistroId) -> Distro {
        Distro {
            id,
            version_id: None,
            version_codename: None,
            pretty_name: None,
            id_like: Vec::new(),
            is_edge: false,
        }
    }

    /// The vulnerability-feed key, or `None` when the release is unknown.
    pub fn feed_key(&self) -> Option<FeedKey> {
        let (ecosystem, release) = match &self.id {
            DistroId::Debian => {
                let release = match self.version_id.as_deref().and_then(major) {
                    Some(m) => m.to_owned(),
                    None => self.version_codename.clone()?,
                };
                ("Debian", release)
            }
            DistroId::Ubuntu => ("Ubuntu", self.version_id.clone()?),
            DistroId::Alpine => {
                let release = if self.is_edge {
                    "edge".to_owned()
                } else {
                    format!("v{}", major_minor(self.version_id.as_deref()?)?)
                };
                ("Alpine", release)
            }
            DistroId::Rhel => ("Red Hat", self.major()?),
            DistroId::Rocky => ("Rocky Linux", self.major()?),
            DistroId::Alma => ("AlmaLinux", self.major()?),
            DistroId::Fedora => ("Fedora", self.major()?),
            DistroId::CentOS => ("CentOS", self.major()?),
            DistroId::Other(id) => (id.as_str(), self.version_id.clone()?),
        };
        Some(FeedKey {
            ecosystem: ecosystem.to_owned(),
            release,
        })
    }

    /// The release codename for distributions that key feeds by it (Debian
    /// security tracker, Ubuntu CVE tracker): `"bookworm"`, `"jammy"`.
    pub fn codename(&self) -> Option<&str> {
        self.version_codename.as_deref()
    }

    /// The `distro` qualifier of package URLs: `debian-12`, `alpine-3.18.4`.
    pub fn purl_qualifier(&self) -> Option<String> {
        let version = match (&self.version_id, &self.version_codename) {
            (Some(v), _) => v.as_str(),
            (None, Some(c)) => c.as_str(),
            (None, None) => return None,
        };
        Some(format!("{}-{}", self.id.as_str(), version))
    }

    fn major(&self) -> Option<String> {
        self.version_id
            .as_deref()
            .and_then(major)
            .map(str::to_owned)
    }

    /// Fills the fields a release file left empty, from distro knowledge.
    fn complete(mut self, version: Option<&str>) -> Distro {
        match self.id {
            DistroId::Debian => {
                if self.version_codename.is_none() {
                    self.version_codename = version
                        .and_then(parenthesised)
                        .map(str::to_ascii_lowercase)
                        .or_else(|| {
                            let m = self.version_id.as_deref().and_then(major)?;
                            debian_codename(m).map(str::to_owned)
                        });
                }
                if self.version_id.is_none() {
                    self.is_edge = true;
                }
            }
            DistroId::Alpine => {
                let pretty_edge = self.pretty_name.as_deref().is_some_and(|p| {
                    p.to_ascii_lowercase()
                        .split_whitespace()
                        .any(|w| w == "edge")
                });
                let version_edge = self
                    .version_id
                    .as_deref()
                    .is_some_and(|v| v.contains("_alpha") || v.contains("_beta") || v == "edge");
                self.is_edge = pretty_edge || version_edge;
            }
            _ => {}
        }
        self
    }
}

/// Detects the distribution of an image root.
///
/// `files` maps a root-relative path without a leading slash to the file's
/// contents, or `None` when absent. Returns `None` when no release file
/// identifies a distribution.
pub fn detect(files: &dyn Fn(&str) -> Option<Vec<u8>>) -> Option<Distro> {
    let read = |path: &str| files(path).filter(|b| b.len() <= MAX_RELEASE_FILE);

    for path in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(d) = read(path).and_then(|b| from_os_release(&b)) {
            return Some(d);
        }
    }
    if let Some(d) = read("etc/alpine-release").and_then(|b| from_alpine_release(&b)) {
        return Some(d);
    }
    if let Some(d) = read("etc/redhat-release").and_then(|b| from_redhat_release(&b)) {
        return Some(d);
    }
    read("etc/debian_version").and_then(|b| from_debian_version(&b))
}

/// Builds a [`Distro`] from os-release contents; `None` without an `ID`.
///
/// os-release(5) defaults a missing `ID` to `linux`, which identifies
/// nothing, so such files defer to the fallback release files.
pub fn from_os_release(contents: &[u8]) -> Option<Distro> {
    let fields = parse_os_release(contents);
    let get = |key: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    };
    let id = get("ID")?;
    let mut d = Distro::new(DistroId::from_os_release_id(id));
    d.version_id = get("VERSION_ID").map(|v| v.trim().to_owned());
    d.version_codename = get("VERSION_CODENAME").map(|v| v.trim().to_owned());
    d.pretty_name = get("PRETTY_NAME").map(str::to_owned);
    d.id_like = get("ID_LIKE")
        .map(|v| v.split_whitespace().map(str::to_ascii_lowercase).collect())
        .unwrap_or_default();
    Some(d.complete(get("VERSION")))
}

/// Parses os-release(5) contents into `(KEY, value)` pairs in file order.
///
/// Follows the format's shell-compatible subset: `#` comments, blank lines,
/// `KEY=value` with values unquoted, `'single'` (literal) or `"double"`
/// quoted (backslash escapes `\\ \" \$` and `` \` ``), and concatenations of
/// these. Lines that are not assignments, and keys that are not shell
/// variable names, are skipped. Invalid UTF-8 is replaced.
pub fn parse_os_release(contents: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(contents);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        if !is_variable_name(key) {
            continue;
        }
        if let Some(value) = unquote(raw) {
            out.push((key.to_owned(), value));
        }
    }
    out
}

fn is_variable_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Shell-style unquoting of one assignment value; `None` when a quote is
/// left open. Unquoted whitespace ends the value (what follows is ignored,
/// as a shell would treat it as a command).
fn unquote(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        c @ ('\\' | '"' | '$' | '`') => out.push(c),
                        c => {
                            out.push('\\');
                            out.push(c);
                        }
                    },
                    c => out.push(c),
                }
            },
            '\\' => {
                if let Some(c) = chars.next() {
                    out.push(c);
                }
            }
            c if c.is_whitespace() => break,
            c => out.push(c),
        }
    }
    Some(out)
}

fn from_alpine_release(contents: &[u8]) -> Option<Distro> {
    let version = first_line(contents)?;
    let mut d = Distro::new(DistroId::Alpine);
    d.version_id = Some(version);
    Some(d.complete(None))
}

/// `Rocky Linux release 9.3 (Blue Onyx)`, `CentOS Linux release 7.9.2009
/// (Core)`, `Red Hat Enterprise Linux release 8.9 (Ootpa)`.
fn from_redhat_release(contents: &[u8]) -> Option<Distro> {
    let line = first_line(contents)?;
    let (name, rest) = line.split_once(" release ")?;
    let version = rest.split_whitespace().next().map(str::to_owned);
    let name_lower = name.to_ascii_lowercase();
    let id = if name_lower.starts_with("red hat") {
        DistroId::Rhel
    } else if name_lower.starts_with("rocky") {
        DistroId::Rocky
    } else if name_lower.starts_with("almalinux") {
        DistroId::Alma
    } else if name_lower.starts_with("centos") {
        DistroId::CentOS
    } else if name_lower.starts_with("fedora") {
        DistroId::Fedora
    } else {
        DistroId::Other(name_lower.split_whitespace().next()?.to_owned())
    };
    let mut d = Distro::new(id);
    d.version_id = version;
    d.version_codename = parenthesised(&line).map(str::to_owned);
    d.pretty_name = Some(line.clone());
    Some(d.complete(None))
}

/// `12.11` (stable point release) or `trixie/sid` (testing/unstable).
fn from_debian_version(contents: &[u8]) -> Option<Distro> {
    let line = first_line(contents)?;
    let mut d = Distro::new(DistroId::Debian);
    if line.starts_with(|c: char| c.is_ascii_digit()) {
        d.version_id = major(&line).map(str::to_owned);
    } else {
        let codename = line.split('/').next().unwrap_or(&line);
        d.version_codename = Some(codename.to_owned());
    }
    Some(d.complete(None))
}

/// The first non-empty line, trimmed.
fn first_line(contents: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(contents);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.to_owned())
}

/// The text inside the last `( ... )`, e.g. `bookworm` in `12 (bookworm)`.
fn parenthesised(s: &str) -> Option<&str> {
    let open = s.rfind('(')?;
    let inner = s.get(open + 1..)?;
    let close = inner.find(')')?;
    let inner = inner.get(..close)?.trim();
    (!inner.is_empty() && !inner.contains(char::is_whitespace)).then_some(inner)
}

/// Leading numeric component: `9` of `9.3`; `None` if not numeric.
fn major(v: &str) -> Option<&str> {
    let m = v.split('.').next()?;
    (!m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())).then_some(m)
}

/// `3.18` of `3.18.4`; both components numeric.
fn major_minor(v: &str) -> Option<String> {
    let mut parts = v.split('.');
    let a = parts.next()?;
    let b = parts.next()?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    (numeric(a) && numeric(b)).then(|| format!("{a}.{b}"))
}

fn debian_codename(major: &str) -> Option<&'static str> {
    DEBIAN_CODENAMES
        .iter()
        .find(|(n, _)| *n == major)
        .map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn root(files: &[(&str, &str)]) -> HashMap<String, Vec<u8>> {
        files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
            .collect()
    }

    fn detect_in(files: &[(&str, &str)]) -> Option<Distro> {
        let m = root(files);
        detect(&|p: &str| m.get(p).cloned())
    }

    const DEBIAN_12: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

    #[test]
    fn debian_bookworm() {
        let d = detect_in(&[("etc/os-release", DEBIAN_12)]).unwrap();
        assert_eq!(d.id, DistroId::Debian);
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(d.codename(), Some("bookworm"));
        assert_eq!(
            d.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert!(!d.is_edge);
        let key = d.feed_key().unwrap();
        assert_eq!(key.to_string(), "Debian:12");
        assert_eq!(d.purl_qualifier().as_deref(), Some("debian-12"));
    }

    #[test]
    fn usr_lib_fallback_when_etc_is_a_dangling_symlink() {
        let d = detect_in(&[("usr/lib/os-release", DEBIAN_12)]).unwrap();
        assert_eq!(d.id, DistroId::Debian);
    }

    #[test]
    fn distroless_has_no_codename_field() {
        // gcr.io/distroless/static-debian12 ships this os-release.
        let os = r#"PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"
BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"
"#;
        let d = detect_in(&[("etc/os-release", os)]).unwrap();
        assert_eq!(d.id, DistroId::Debian);
        assert_eq!(d.codename(), Some("bookworm"));
        assert_eq!(d.feed_key().unwrap().release, "12");

        // Without VERSION either, the codename comes from the number.
        let d = from_os_release(b"ID=debian\nVERSION_ID=11\n").unwrap();
        assert_eq!(d.codename(), Some("bullseye"));
    }

    #[test]
    fn debian_testing_is_edge_keyed_by_codename() {
        let os = "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nNAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=trixie\nID=debian\n";
        let d = detect_in(&[("etc/os-release", os)]).unwrap();
        assert!(d.is_edge);
        assert_eq!(d.feed_key().unwrap().to_string(), "Debian:trixie");
    }

    #[test]
    fn ubuntu() {
        let os = r#"PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.3 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
"#;
        let d = detect_in(&[
            ("etc/os-release", os),
            ("etc/debian_version", "bookworm/sid\n"),
        ])
        .unwrap();
        assert_eq!(d.id, DistroId::Ubuntu);
        assert_eq!(d.codename(), Some("jammy"));
        assert_eq!(d.id_like, vec!["debian"]);
        assert_eq!(d.feed_key().unwrap().to_string(), "Ubuntu:22.04");
    }

    #[test]
    fn alpine_release_and_edge() {
        let os = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.4\nPRETTY_NAME=\"Alpine Linux v3.18\"\nHOME_URL=\"https://alpinelinux.org/\"\n";
        let d = detect_in(&[("etc/os-release", os)]).unwrap();
        assert_eq!(d.id, DistroId::Alpine);
        assert!(!d.is_edge);
        assert_eq!(d.feed_key().unwrap().to_string(), "Alpine:v3.18");
        assert_eq!(d.purl_qualifier().as_deref(), Some("alpine-3.18.4"));

        let edge = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19_alpha20230901\nPRETTY_NAME=\"Alpine Linux edge\"\n";
        let d = detect_in(&[("etc/os-release", edge)]).unwrap();
        assert!(d.is_edge);
        assert_eq!(d.feed_key().unwrap().to_string(), "Alpine:edge");
    }

    #[test]
    fn alpine_release_file_fallback() {
        let d = detect_in(&[("etc/alpine-release", "3.17.5\n")]).unwrap();
        assert_eq!(d.id, DistroId::Alpine);
        assert_eq!(d.feed_key().unwrap().release, "v3.17");
    }

    #[test]
    fn rhel_family() {
        let os = "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.3 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\n";
        let d = detect_in(&[("etc/os-release", os)]).unwrap();
        assert_eq!(d.id, DistroId::Rhel);
        assert_eq!(d.feed_key().unwrap().to_string(), "Red Hat:9");

        let rocky = "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\n";
        let d = detect_in(&[("etc/os-release", rocky)]).unwrap();
        assert_eq!(d.id, DistroId::Rocky);
        assert_eq!(d.id_like, vec!["rhel", "centos", "fedora"]);
        assert_eq!(d.feed_key().unwrap().to_string(), "Rocky Linux:8");

        let alma = "ID=\"almalinux\"\nVERSION_ID=\"9.3\"\n";
        assert_eq!(
            detect_in(&[("etc/os-release", alma)]).unwrap().id,
            DistroId::Alma
        );
        let fedora = "ID=fedora\nVERSION_ID=39\n";
        let d = detect_in(&[("etc/os-release", fedora)]).unwrap();
        assert_eq!(d.feed_key().unwrap().to_string(), "Fedora:39");
    }

    #[test]
    fn redhat_release_fallback() {
        let cases = [
            (
                "CentOS Linux release 7.9.2009 (Core)\n",
                DistroId::CentOS,
                "CentOS:7",
            ),
            (
                "Rocky Linux release 9.3 (Blue Onyx)\n",
                DistroId::Rocky,
                "Rocky Linux:9",
            ),
            (
                "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n",
                DistroId::Rhel,
                "Red Hat:7",
            ),
            (
                "AlmaLinux release 8.9 (Midnight Oncilla)\n",
                DistroId::Alma,
                "AlmaLinux:8",
            ),
            (
                "Fedora release 39 (Thirty Nine)\n",
                DistroId::Fedora,
                "Fedora:39",
            ),
        ];
        for (text, id, key) in cases {
            let d = detect_in(&[("etc/redhat-release", text)]).unwrap();
            assert_eq!(d.id, id, "{text}");
            assert_eq!(d.feed_key().unwrap().to_string(), key, "{text}");
        }
    }

    #[test]
    fn debian_version_fallback() {
        let d = detect_in(&[("etc/debian_version", "12.11\n")]).unwrap();
        assert_eq!(d.id, DistroId::Debian);
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(d.codename(), Some("bookworm"));
        let d = detect_in(&[("etc/debian_version", "trixie/sid\n")]).unwrap();
        assert!(d.is_edge);
        assert_eq!(d.feed_key().unwrap().release, "trixie");
    }

    #[test]
    fn other_distro_keeps_raw_id() {
        let os = "ID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\nID_LIKE=\"suse opensuse\"\n";
        let d = detect_in(&[("etc/os-release", os)]).unwrap();
        assert_eq!(d.id, DistroId::Other("opensuse-leap".into()));
        assert_eq!(d.feed_key().unwrap().to_string(), "opensuse-leap:15.5");
    }

    #[test]
    fn nothing_to_detect() {
        assert_eq!(detect_in(&[]), None);
        // os-release without ID, and no fallback file.
        assert_eq!(detect_in(&[("etc/os-release", "NAME=Linux\n")]), None);
        // os-release without ID defers to a fallback file.
        let d = detect_in(&[
            ("etc/os-release", "NAME=x\n"),
            ("etc/alpine-release", "3.18.0"),
        ]);
        assert_eq!(d.map(|d| d.id), Some(DistroId::Alpine));
    }

    #[test]
    fn oversized_release_file_is_ignored() {
        let big = format!("ID=debian\n{}", "#".repeat(MAX_RELEASE_FILE));
        assert_eq!(detect_in(&[("etc/os-release", &big)]), None);
    }

    #[test]
    fn os_release_quoting_and_escapes() {
        let text = concat!(
            "# a comment\n",
            "\n",
            "  # indented comment\n",
            "A=plain\n",
            "B=\"double quoted\"\n",
            "C='single \"quoted\" \\n'\n",
            "D=\"esc \\\"q\\\" \\$HOME \\` \\\\ \\n\"\n",
            "E=unquoted\\ space\n",
            "F=\"con\"'cat'enated\n",
            "G=\"unterminated\n",
            "not an assignment\n",
            "1BAD=x\n",
            "H=first trailing\n",
            "I=\n",
            "J=\"caf\u{e9}\"\n",
        );
        let got = parse_os_release(text.as_bytes());
        let want: Vec<(String, String)> = [
            ("A", "plain"),
            ("B", "double quoted"),
            ("C", "single \"quoted\" \\n"),
            ("D", "esc \"q\" $HOME ` \\ \\n"),
            ("E", "unquoted space"),
            ("F", "concatenated"),
            ("H", "first"),
            ("I", ""),
            ("J", "caf\u{e9}"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn later_assignment_wins_and_crlf_is_tolerated() {
        let d = from_os_release(b"ID=ubuntu\r\nID=debian\r\nVERSION_ID=\"12\"\r\n").unwrap();
        assert_eq!(d.id, DistroId::Debian);
        assert_eq!(d.version_id.as_deref(), Some("12"));
    }

    #[test]
    fn hostile_bytes_do_not_panic() {
        for input in [
            &b"\xff\xfe\x00ID=\xff"[..],
            b"ID='",
            b"ID=\"\\",
            b"ID=\\",
            b"VERSION_ID=.\nID=alpine",
            b"ID=debian\nVERSION=\"((((\"",
            b"ID=debian\nVERSION=\")(\"",
        ] {
            let _ = from_os_release(input);
            let _ = from_redhat_release(input);
            let _ = from_debian_version(input);
            if let Some(d) = from_alpine_release(input) {
                let _ = d.feed_key();
            }
        }
    }
}
