//! Debian security tracker JSON
//! (`https://security-tracker.debian.org/tracker/data/json`):
//!
//! ```text
//! {source_pkg: {CVE: {description, debianbug, scope,
//!   releases: {bookworm: {status, repositories, fixed_version, urgency}}}}}
//! ```
//!
//! One [`AffectedRange`] per (source package, CVE, release), ecosystem
//! `Debian:<number>` (codename mapped by [`debian_release`]; codenames
//! without a number, such as `sid`, are kept: `Debian:sid`):
//!
//! - `fixed_version "0"` → `not_affected` (the release never had the
//!   vulnerable code);
//! - another `fixed_version` → `introduced "0"`, `fixed <v>`;
//! - no `fixed_version` and status `open` or `undetermined` → `unfixed`
//!   (`introduced "0"` only; undetermined is treated as affected);
//! - no `fixed_version` and status `resolved` → `not_affected`.
//!
//! `urgency` becomes the range's severity ([`severity::debian_urgency`]);
//! the advisory's severity is the highest over its ranges. A `releases`
//! value that is not an object (the vunnel fixture has `[]`) gives no
//! ranges. The advisory is a stub keyed by the tracker's id (`CVE-…` or
//! `TEMP-…`) with the description as details; one record is one
//! (package, CVE) pair.

use super::model::{
    Advisory, AffectedRange, Event, FeedSource, MAX_DETAILS_BYTES, RangeKind, truncate, valid_token,
};
use super::severity;
use super::{Parsed, Record};

/// Debian release numbers by codename.
const RELEASES: &[(&str, &str)] = &[
    ("etch", "4"),
    ("lenny", "5"),
    ("squeeze", "6"),
    ("wheezy", "7"),
    ("jessie", "8"),
    ("stretch", "9"),
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
];

/// The OSV-style release for a Debian codename: `bookworm` → `12`;
/// codenames without a number (`sid`) are returned unchanged.
pub fn debian_release(codename: &str) -> &str {
    RELEASES
        .iter()
        .find(|(c, _)| *c == codename)
        .map_or(codename, |(_, n)| n)
}

/// Whether a JSON document has the tracker's shape: an object whose
/// first package maps ids to objects with `releases`.
pub(crate) fn looks_like(value: &serde_json::Value) -> bool {
    let Some(obj) = value.as_object() else {
        return false;
    };
    obj.values().take(4).any(|pkg| {
        pkg.as_object().is_some_and(|cves| {
            cves.values()
                .take(4)
                .any(|c| c.as_object().is_some_and(|c| c.contains_key("releases")))
        })
    })
}

pub(crate) fn parse(value: serde_json::Value) -> Result<Parsed, String> {
    let serde_json::Value::Object(packages) = value else {
        return Err("Debian tracker JSON must be an object".to_owned());
    };
    let mut parsed = Parsed::default();
    for (package, cves) in packages {
        let serde_json::Value::Object(cves) = cves else {
            parsed.warnings.push(format!("{package}: not an object"));
            continue;
        };
        if !valid_token(&package) {
            parsed.warnings.push("invalid package name".to_owned());
            continue;
        }
        for (id, cve) in cves {
            parsed.records += 1;
            if !valid_token(&id) {
                parsed.warnings.push(format!("{package}: invalid id"));
                continue;
            }
            let Some(cve) = cve.as_object() else {
                parsed
                    .warnings
                    .push(format!("{package}/{id}: not an object"));
                continue;
            };
            let details = cve
                .get("description")
                .and_then(|d| d.as_str())
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| truncate(d.to_owned(), MAX_DETAILS_BYTES));
            let mut ranges = Vec::new();
            if let Some(releases) = cve.get("releases").and_then(|r| r.as_object()) {
                for (codename, rel) in releases {
                    if let Some(r) = release_range(&package, &id, codename, rel) {
                        ranges.push(r);
                    }
                }
            }
            let advisory = Advisory {
                source: FeedSource::DebianTracker,
                id: id.clone(),
                aliases: Vec::new(),
                summary: None,
                details,
                published: None,
                modified: None,
                withdrawn: None,
                severity: ranges.iter().filter_map(|r| r.severity).max(),
                cvss: Vec::new(),
                references: Vec::new(),
            };
            parsed.units.push(Record { advisory, ranges });
        }
    }
    Ok(parsed)
}

fn release_range(
    package: &str,
    id: &str,
    codename: &str,
    rel: &serde_json::Value,
) -> Option<AffectedRange> {
    let rel = rel.as_object()?;
    let ecosystem = format!("Debian:{}", debian_release(codename.trim()));
    if !valid_token(&ecosystem) {
        return None;
    }
    let field = |k: &str| rel.get(k).and_then(|v| v.as_str()).map(str::trim);
    let status = field("status").unwrap_or_default();
    let fixed = field("fixed_version").filter(|f| !f.is_empty());
    let (events, fixed_version, unfixed, not_affected) = match fixed {
        Some("0") => (Vec::new(), None, false, true),
        Some(v) if valid_token(v) => (
            vec![
                Event::Introduced("0".to_owned()),
                Event::Fixed(v.to_owned()),
            ],
            Some(v.to_owned()),
            false,
            false,
        ),
        Some(_) => return None,
        None if status == "resolved" => (Vec::new(), None, false, true),
        None => (vec![Event::Introduced("0".to_owned())], None, true, false),
    };
    Some(AffectedRange {
        source: FeedSource::DebianTracker,
        advisory_id: id.to_owned(),
        ecosystem,
        package: package.to_owned(),
        kind: RangeKind::Ecosystem,
        events,
        versions: Vec::new(),
        fixed_version,
        unfixed,
        not_affected,
        severity: field("urgency").and_then(severity::debian_urgency),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codenames() {
        assert_eq!(debian_release("bookworm"), "12");
        assert_eq!(debian_release("trixie"), "13");
        assert_eq!(debian_release("sid"), "sid");
    }

    #[test]
    fn statuses() {
        let v = serde_json::json!({"apparmor": {"CVE-1": {"releases": {
            "bookworm": {"status": "open", "urgency": "unimportant"},
            "bullseye": {"status": "resolved", "fixed_version": "0"},
            "sid": {"status": "resolved", "fixed_version": "3.0.12-1", "urgency": "low**"},
            "buster": {"status": "undetermined"},
            "stretch": "nonsense"
        }}}});
        assert!(looks_like(&v));
        let p = parse(v).unwrap();
        assert_eq!(p.records, 1);
        let r = &p.units[0].ranges;
        assert_eq!(r.len(), 4);
        let get = |e: &str| r.iter().find(|r| r.ecosystem == e).unwrap();
        assert!(get("Debian:12").unfixed);
        assert!(get("Debian:11").not_affected);
        assert_eq!(get("Debian:sid").fixed_version.as_deref(), Some("3.0.12-1"));
        assert!(get("Debian:10").unfixed);
        assert!(!looks_like(&serde_json::json!({"id": "x"})));
    }
}
