//! The feed-independent domain model every importer produces.
//!
//! Two row types: an [`Advisory`] (one vulnerability record of one feed,
//! keyed by `(source, id)`) and any number of [`AffectedRange`]s pointing
//! at it by `(source, advisory_id)`. Every field is a scalar, a string, a
//! list of strings or a small serialisable value ([`Event`],
//! [`CvssScore`]), so both map onto SQL rows directly (lists as JSON
//! columns or child tables); all model types derive serde.
//!
//! Free text and lists are capped ([`MAX_DETAILS_BYTES`],
//! [`MAX_REFERENCES`], ...) so a hostile feed cannot make rows arbitrarily
//! large: text is truncated at a character boundary, lists are cut.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::severity::{CvssScore, Severity};

/// `details` longer than this is truncated (at a character boundary).
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;
/// `summary` longer than this is truncated.
pub const MAX_SUMMARY_BYTES: usize = 1024;
/// At most this many references are kept per advisory.
pub const MAX_REFERENCES: usize = 64;
/// At most this many aliases are kept per advisory.
pub const MAX_ALIASES: usize = 256;
/// At most this many CVSS vectors are kept per advisory.
pub const MAX_CVSS: usize = 8;
/// Identifiers, package names, ecosystems and versions longer than this
/// make the record (or the affected entry) invalid.
pub const MAX_TOKEN_BYTES: usize = 512;
/// At most this many explicit versions per range; a longer list makes the
/// record invalid (a truncated list would silently change what matches).
pub const MAX_VERSIONS: usize = 100_000;
/// At most this many events per range; more makes the record invalid.
pub const MAX_EVENTS: usize = 1_000;

/// Which feed format a row came from. Together with the id it is the key
/// of an [`Advisory`]: `CVE-2023-4641` from the Debian tracker and from
/// OSV are different rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FeedSource {
    /// Any OSV database (Go, RustSec, PyPA, GHSA, OSV.dev's Debian/Alpine
    /// conversions...), JSON or YAML. The id prefix names the database.
    Osv,
    /// Alpine secdb (`secfixes`), YAML or JSON.
    AlpineSecdb,
    /// Debian security tracker JSON.
    DebianTracker,
    /// Red Hat CSAF 2.0 (VEX and security advisories).
    RedHatCsaf,
}

impl FeedSource {
    /// `"osv"`, `"alpine-secdb"`, `"debian-tracker"`, `"redhat-csaf"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FeedSource::Osv => "osv",
            FeedSource::AlpineSecdb => "alpine-secdb",
            FeedSource::DebianTracker => "debian-tracker",
            FeedSource::RedHatCsaf => "redhat-csaf",
        }
    }

    /// Whether records of this source with the same id from different
    /// files are parts of one advisory (distro feeds list a CVE once per
    /// package and release) rather than competing versions of it.
    pub(crate) fn merges_duplicates(&self) -> bool {
        matches!(self, FeedSource::AlpineSecdb | FeedSource::DebianTracker)
    }
}

impl fmt::Display for FeedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point in time, as whole seconds since the Unix epoch (UTC).
///
/// Parsed leniently from RFC 3339 (`2023-11-07T20:24:23.946863Z`,
/// `2023-10-10T00:00:00+00:00`), a space instead of `T`, or a bare date.
/// Fractional seconds are dropped. OSV's placeholder
/// `0001-01-01T00:00:00Z` (the Go database stamps real times at deploy
/// time) and anything before 1970 read as "unknown" (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses a timestamp; `None` when malformed or a placeholder.
    pub fn parse(s: &str) -> Option<Timestamp> {
        let s = s.trim();
        let b = s.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let digits = b.get(from..from + len)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(digits).ok()?.parse().ok()
        };
        let year = num(0, 4)?;
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let month = num(5, 2)?;
        let day = num(8, 2)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let mut secs = 0;
        let mut offset = 0;
        if b.len() > 10 {
            if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
                return None;
            }
            let (h, m) = (num(11, 2)?, num(14, 2)?);
            if b.get(13) != Some(&b':') {
                return None;
            }
            let mut i = 16;
            let mut sec = 0;
            if b.get(16) == Some(&b':') {
                sec = num(17, 2)?;
                i = 19;
            }
            if h > 23 || m > 59 || sec > 60 {
                return None;
            }
            secs = h * 3600 + m * 60 + sec;
            if b.get(i) == Some(&b'.') {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
            }
            let tz = s.get(i..)?.trim_start();
            offset = match tz.as_bytes() {
                [] | [b'Z' | b'z'] => 0,
                [sign @ (b'+' | b'-'), ..] => {
                    let t = tz.get(1..)?;
                    let (oh, om) = match t.split_once(':') {
                        Some((h, m)) => (h, m),
                        None if t.len() == 4 => (t.get(..2)?, t.get(2..)?),
                        None => (t, "00"),
                    };
                    if oh.len() != 2 || om.len() != 2 {
                        return None;
                    }
                    let o = oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60;
                    if *sign == b'+' { o } else { -o }
                }
                _ => return None,
            };
        }
        let t = days_from_civil(year, month, day) * 86_400 + secs - offset;
        (t >= 0).then_some(Timestamp(t))
    }

    /// RFC 3339 in UTC: `2024-07-05T20:39:42Z`.
    pub fn to_rfc3339(&self) -> String {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One vulnerability record of one feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub source: FeedSource,
    /// The record's own id: `GO-2024-2687`, `GHSA-…`, `PYSEC-…`,
    /// `CVE-…` (Alpine, Debian tracker, OSV.dev CVE records, Red Hat VEX),
    /// `DSA-5587-1`, `RHSA-2024:6163`.
    pub id: String,
    /// Other ids of the same vulnerability, deduplicated, in feed order.
    /// For Red Hat advisories, the CVEs they fix; for OSV, `aliases` only
    /// (`related` is a weaker relation and is not kept).
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    /// Long description, truncated to [`MAX_DETAILS_BYTES`].
    pub details: Option<String>,
    pub published: Option<Timestamp>,
    pub modified: Option<Timestamp>,
    /// Set when the record was withdrawn. Withdrawn advisories carry no
    /// [`AffectedRange`]s, so they can never match.
    pub withdrawn: Option<Timestamp>,
    /// Overall rating; see [`crate::vulndb`] for the precedence per feed.
    pub severity: Option<Severity>,
    pub cvss: Vec<CvssScore>,
    /// Reference URLs (or other strings the feed gives), capped at
    /// [`MAX_REFERENCES`].
    pub references: Vec<String>,
}

/// One range event, as in OSV.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Event {
    /// Versions from this one on are affected; `"0"` means from the first.
    Introduced(String),
    /// This version and later ones are not affected (exclusive end).
    Fixed(String),
    /// The last affected version (inclusive end).
    LastAffected(String),
    /// Versions from this one on are outside the range.
    Limit(String),
}

impl Event {
    /// The event's version string.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// How a range's versions are ordered. OSV `GIT` ranges (commit hashes)
/// are not imported: container scanning sees package versions, not
/// commits, so there is no variant for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RangeKind {
    /// Ordered by the ecosystem's own rules (dpkg, apk, rpm, PEP 440...).
    Ecosystem,
    /// Ordered by SemVer 2.0 (OSV `SEMVER`; Go and crates.io use it).
    Semver,
}

/// Which versions of one package in one ecosystem an advisory affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedRange {
    pub source: FeedSource,
    /// The [`Advisory::id`] this range belongs to.
    pub advisory_id: String,
    /// OSV ecosystem name with release: `Go`, `PyPI`, `crates.io`,
    /// `Debian:12`, `Alpine:v3.18`, `Red Hat:enterprise_linux:9::appstream`.
    pub ecosystem: String,
    /// Package name: PEP 503-normalised for PyPI, the source package for
    /// Debian and Alpine, the RPM name for Red Hat, as published otherwise.
    pub package: String,
    pub kind: RangeKind,
    /// Events in feed order (matching sorts them).
    pub events: Vec<Event>,
    /// Explicitly listed affected versions (OSV `versions`).
    pub versions: Vec<String>,
    /// The fixed version to report: the highest `fixed` event of the
    /// range. Matching reports the one relevant to the installed version.
    pub fixed_version: Option<String>,
    /// Affected with no fix published (open in the distribution, or an OSV
    /// range with `introduced` events only).
    pub unfixed: bool,
    /// The distribution states that this package is not affected (Debian
    /// `fixed_version "0"`, Alpine's `"0"` secfix, Red Hat
    /// `known_not_affected`). Such a range never matches; `events` is empty.
    pub not_affected: bool,
    /// A rating specific to this package/release (Debian urgency, Red Hat
    /// impact per product), when the feed gives one.
    pub severity: Option<Severity>,
}

/// Truncates `s` to at most `max` bytes at a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Trims; `None` when empty.
pub(crate) fn non_empty(s: Option<String>) -> Option<String> {
    let s = s?;
    let t = s.trim();
    if t.is_empty() {
        None
    } else if t.len() == s.len() {
        Some(s)
    } else {
        Some(t.to_owned())
    }
}

/// Whether a token (id, package, version) is acceptable: non-empty, not
/// too long, no control characters.
pub(crate) fn valid_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN_BYTES && !s.chars().any(char::is_control)
}

/// Appends `item` to `list` unless present or the list is full.
pub(crate) fn push_unique(list: &mut Vec<String>, item: &str, cap: usize) {
    if list.len() < cap && !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let t = |s: &str| Timestamp::parse(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2023-11-07T20:24:23.946863Z").as_deref(),
            Some("2023-11-07T20:24:23Z")
        );
        assert_eq!(
            t("2023-10-10T00:00:00+00:00").as_deref(),
            Some("2023-10-10T00:00:00Z")
        );
        assert_eq!(
            t("2023-10-10T01:30:00+02:00").as_deref(),
            Some("2023-10-09T23:30:00Z")
        );
        assert_eq!(
            t("2024-02-29 12:00:00").as_deref(),
            Some("2024-02-29T12:00:00Z")
        );
        assert_eq!(t("2021-07-01").as_deref(), Some("2021-07-01T00:00:00Z"));
        assert_eq!(
            t("1970-01-01T00:00:00Z").as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            Timestamp::parse("2024-07-05T20:39:42Z"),
            Some(Timestamp(1_720_211_982))
        );
        for bad in [
            "0001-01-01T00:00:00Z",
            "",
            "2023-02-29",
            "2023-13-01",
            "2023-1-01",
            "2023-01-01X",
            "2023-01-01T25:00:00Z",
            "2023-01-01T10:00:00.Z",
            "2023-01-01T10:00:00+0",
            "२०२३-01-01",
            "9999999999-01-01",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trip_many_days() {
        for days in (0..200_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo".to_owned(), 2), "h");
        assert_eq!(truncate("abc".to_owned(), 10), "abc");
    }
}
