//! Version ordering per package ecosystem.
//!
//! This module owns one question: given two version strings from the same
//! ecosystem, which is newer? Vulnerability matching depends on answering it
//! exactly as the ecosystem's own tooling does (dpkg, rpm, apk-tools, SemVer,
//! PEP 440 / `packaging`, the Go command, Maven's `ComparableVersion`,
//! RubyGems' `Gem::Version`), so each comparator follows that tool's rules,
//! including its quirks. Inputs come from untrusted image contents and
//! advisories: malformed versions yield [`VersionError`], never a panic, and
//! numeric components of any length are compared without overflow.
//!
//! Range matching, advisory parsing and package inventory live elsewhere.

use std::cmp::Ordering;
use std::fmt;

mod apk;
mod dpkg;
mod golang;
mod maven;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

/// A version ordering scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ecosystem {
    /// Debian and Ubuntu packages: `[epoch:]upstream[-revision]`.
    Dpkg,
    /// RPM packages: `[epoch:]version[-release]` ordered by `rpmvercmp`.
    Rpm,
    /// Alpine packages (apk-tools ordering).
    Apk,
    /// SemVer 2.0.0 (npm, crates.io, NuGet, Packagist); a leading `v` is tolerated.
    SemVer,
    /// Python packages (PEP 440).
    Pep440,
    /// Go modules (`v1.2.3`, pseudo-versions, `+incompatible`) and Go
    /// toolchain releases (`go1.21.3`, `1.21rc2`).
    Go,
    /// Maven artifacts (`ComparableVersion`).
    Maven,
    /// Ruby gems (`Gem::Version`).
    RubyGems,
}

/// Why a version could not be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The string is not a valid version in the ecosystem.
    #[error("invalid {ecosystem} version {version:?}: {reason}")]
    Invalid {
        ecosystem: Ecosystem,
        version: String,
        reason: &'static str,
    },
}

impl Ecosystem {
    /// Every ecosystem, for callers (and tests) that iterate over them.
    pub const ALL: [Ecosystem; 8] = [
        Ecosystem::Dpkg,
        Ecosystem::Rpm,
        Ecosystem::Apk,
        Ecosystem::SemVer,
        Ecosystem::Pep440,
        Ecosystem::Go,
        Ecosystem::Maven,
        Ecosystem::RubyGems,
    ];

    /// Orders `a` relative to `b` under this ecosystem's rules.
    ///
    /// Versions that the ecosystem considers equal (`1.0` and `1.0.0` in
    /// Maven, `1.0-0` and `1.0` in dpkg, ...) compare as `Equal`.
    pub fn compare(&self, a: &str, b: &str) -> Result<Ordering, VersionError> {
        match self {
            Ecosystem::Dpkg => dpkg::compare(a, b),
            Ecosystem::Rpm => rpm::compare(a, b),
            Ecosystem::Apk => apk::compare(a, b),
            Ecosystem::SemVer => semver::compare(a, b),
            Ecosystem::Pep440 => pep440::compare(a, b),
            Ecosystem::Go => golang::compare(a, b),
            Ecosystem::Maven => maven::compare(a, b),
            Ecosystem::RubyGems => rubygems::compare(a, b),
        }
    }

    /// Maps an OSV `affected[].package.ecosystem` name to its ordering.
    ///
    /// Release suffixes such as `Debian:12` or `Alpine:v3.18` are ignored:
    /// the ordering does not depend on the distribution release.
    pub fn from_osv(name: &str) -> Option<Ecosystem> {
        let base = name.split(':').next().unwrap_or(name).trim();
        let eco = match base {
            "Debian" | "Ubuntu" => Ecosystem::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Ecosystem::Apk,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" => {
                Ecosystem::Rpm
            }
            "npm" | "crates.io" | "NuGet" | "Packagist" | "Hex" => Ecosystem::SemVer,
            "PyPI" => Ecosystem::Pep440,
            "Go" => Ecosystem::Go,
            "Maven" => Ecosystem::Maven,
            "RubyGems" => Ecosystem::RubyGems,
            _ => return None,
        };
        Some(eco)
    }

    /// A short lowercase name, used in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Ecosystem::Dpkg => "dpkg",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Apk => "apk",
            Ecosystem::SemVer => "semver",
            Ecosystem::Pep440 => "pep440",
            Ecosystem::Go => "go",
            Ecosystem::Maven => "maven",
            Ecosystem::RubyGems => "rubygems",
        }
    }

    pub(crate) fn invalid(self, version: &str, reason: &'static str) -> VersionError {
        VersionError::Invalid {
            ecosystem: self,
            version: version.to_owned(),
            reason,
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Compares two ASCII digit strings as unbounded non-negative integers.
///
/// Version components can be arbitrarily long (dates, hashes mistaken for
/// numbers, hostile input), so they are never parsed into a machine integer.
pub(crate) fn cmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let a = strip_leading_zeros(a);
    let b = strip_leading_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `digits` without its leading `0`s (`"000"` becomes `""`, i.e. zero).
pub(crate) fn strip_leading_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    digits.get(start..).unwrap_or_default()
}

/// Whether a digit string denotes zero (the empty string counts as zero).
pub(crate) fn is_zero(digits: &[u8]) -> bool {
    digits.iter().all(|&c| c == b'0')
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Ecosystem;
    use std::cmp::Ordering;

    /// Checks `a op b` and the mirrored `b op' a`, where `op` is one of
    /// `<`, `=`, `>`.
    pub(crate) fn check(eco: Ecosystem, cases: &[(&str, &str, &str)]) {
        let mut failures = Vec::new();
        for &(a, op, b) in cases {
            let want = match op {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                ">" => Ordering::Greater,
                other => panic!("bad op {other:?}"),
            };
            match (eco.compare(a, b), eco.compare(b, a)) {
                (Ok(got), Ok(rev)) if got == want && rev == want.reverse() => {}
                (got, rev) => {
                    failures.push(format!("{a:?} {op} {b:?}: got {got:?}, reversed {rev:?}"))
                }
            }
        }
        assert!(failures.is_empty(), "{eco}:\n{}", failures.join("\n"));
    }

    /// Checks that each version is rejected, against itself and a valid one.
    pub(crate) fn check_invalid(eco: Ecosystem, valid: &str, cases: &[&str]) {
        let mut failures = Vec::new();
        for &v in cases {
            if eco.compare(v, valid).is_ok() || eco.compare(valid, v).is_ok() {
                failures.push(format!("{v:?} accepted"));
            }
        }
        assert!(failures.is_empty(), "{eco}:\n{}", failures.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_osv_names() {
        let cases = [
            ("Debian", Some(Ecosystem::Dpkg)),
            ("Debian:12", Some(Ecosystem::Dpkg)),
            ("Ubuntu:22.04:LTS", Some(Ecosystem::Dpkg)),
            ("Alpine", Some(Ecosystem::Apk)),
            ("Alpine:v3.18", Some(Ecosystem::Apk)),
            ("Red Hat", Some(Ecosystem::Rpm)),
            (
                "Red Hat:enterprise_linux:9::appstream",
                Some(Ecosystem::Rpm),
            ),
            ("Rocky Linux:9", Some(Ecosystem::Rpm)),
            ("AlmaLinux:8", Some(Ecosystem::Rpm)),
            ("npm", Some(Ecosystem::SemVer)),
            ("crates.io", Some(Ecosystem::SemVer)),
            ("NuGet", Some(Ecosystem::SemVer)),
            ("Packagist", Some(Ecosystem::SemVer)),
            ("PyPI", Some(Ecosystem::Pep440)),
            ("Go", Some(Ecosystem::Go)),
            ("Maven", Some(Ecosystem::Maven)),
            ("RubyGems", Some(Ecosystem::RubyGems)),
            ("", None),
            (":", None),
            ("debian", None),
            ("Hackage", None),
            ("CRAN", None),
        ];
        for (name, want) in cases {
            assert_eq!(Ecosystem::from_osv(name), want, "{name:?}");
        }
    }

    #[test]
    fn decimal_comparison_is_unbounded() {
        assert_eq!(cmp_decimal(b"0", b""), Ordering::Equal);
        assert_eq!(cmp_decimal(b"007", b"7"), Ordering::Equal);
        assert_eq!(cmp_decimal(b"10", b"9"), Ordering::Greater);
        let big = "9".repeat(400);
        let bigger = format!("1{}", "0".repeat(400));
        assert_eq!(
            cmp_decimal(big.as_bytes(), bigger.as_bytes()),
            Ordering::Less
        );
        assert!(is_zero(b"000"));
        assert!(!is_zero(b"010"));
    }

    #[test]
    fn error_message_names_the_ecosystem() {
        let err = Ecosystem::SemVer.compare("", "1.0.0").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("semver"), "{msg}");
        let VersionError::Invalid { ecosystem, .. } = err;
        assert_eq!(ecosystem, Ecosystem::SemVer);
    }
}
