//! OSV records (<https://ossf.github.io/osv-schema/>), JSON or YAML.
//!
//! Covers the Go vulnerability database, RustSec's OSV export, the PyPA
//! advisory database (YAML), GHSA, OSV.dev API output and OSV.dev's
//! Debian/Alpine conversions. Schema versions 1.0–1.6 and records with no
//! `schema_version` are read alike.
//!
//! Per `affected[]` entry: each `ECOSYSTEM` or `SEMVER` range becomes one
//! [`AffectedRange`]; `GIT` ranges (and unknown range types) are dropped;
//! the entry's explicit `versions` list goes on the first emitted range,
//! or on a range of its own with no events when every range was dropped
//! (PyPA records whose only range is `GIT`). Entries without a package
//! (OSV.dev's `GIT`-only entries) are skipped. PyPI names are
//! PEP 503-normalised; other names are kept as published (`Axios` stays
//! capitalised). `affected[].severity` and `database_specific` beyond the
//! severity word are ignored.
//!
//! A record is rejected as a whole (reported by the importer, never a
//! panic) when its id is missing or invalid, an event has no recognised
//! key or more than one, or a list exceeds [`MAX_EVENTS`] /
//! [`MAX_VERSIONS`].

use serde::Deserialize;

use super::Record;
use super::de::{LenientVec, Maybe, Text, text};
use super::model::{
    Advisory, AffectedRange, Event, FeedSource, MAX_ALIASES, MAX_CVSS, MAX_DETAILS_BYTES,
    MAX_EVENTS, MAX_REFERENCES, MAX_SUMMARY_BYTES, MAX_VERSIONS, RangeKind, Timestamp, non_empty,
    push_unique, truncate, valid_token,
};
use super::severity::{self, CvssScore, CvssVersion, Severity};
use crate::version::Ecosystem;

#[derive(Deserialize)]
struct OsvRecord {
    id: Option<Text>,
    modified: Option<Text>,
    published: Option<Text>,
    withdrawn: Option<Text>,
    #[serde(default)]
    aliases: LenientVec<Text>,
    summary: Option<Text>,
    details: Option<Text>,
    #[serde(default)]
    severity: LenientVec<OsvSeverity>,
    affected: Option<Vec<OsvAffected>>,
    #[serde(default)]
    references: LenientVec<OsvReference>,
    database_specific: Option<DatabaseSpecific>,
}

#[derive(Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: Option<Text>,
    score: Option<Text>,
}

#[derive(Deserialize)]
struct OsvReference {
    url: Option<Text>,
}

#[derive(Deserialize)]
struct DatabaseSpecific {
    #[serde(default)]
    severity: Maybe<Text>,
}

#[derive(Deserialize)]
struct OsvAffected {
    package: Option<OsvPackage>,
    ranges: Option<Vec<OsvRange>>,
    versions: Option<Vec<Text>>,
    ecosystem_specific: Option<EcosystemSpecific>,
}

#[derive(Deserialize)]
struct OsvPackage {
    ecosystem: Option<Text>,
    name: Option<Text>,
}

#[derive(Deserialize)]
struct EcosystemSpecific {
    #[serde(default)]
    urgency: Maybe<Text>,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: Option<Text>,
    events: Option<Vec<OsvEvent>>,
}

#[derive(Deserialize)]
struct OsvEvent {
    introduced: Option<Text>,
    fixed: Option<Text>,
    last_affected: Option<Text>,
    limit: Option<Text>,
}

/// Parses one OSV record from a JSON value.
pub(crate) fn from_json(value: serde_json::Value) -> Result<Record, String> {
    let rec: OsvRecord =
        serde_json::from_value(value).map_err(|e| format!("invalid OSV record: {e}"))?;
    convert(rec)
}

/// Parses one OSV record from JSON text.
pub(crate) fn from_json_slice(bytes: &[u8]) -> Result<Record, String> {
    let rec: OsvRecord =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid OSV record: {e}"))?;
    convert(rec)
}

/// Parses one OSV record from YAML text.
pub(crate) fn from_yaml(bytes: &[u8]) -> Result<Record, String> {
    let rec: OsvRecord =
        serde_norway::from_slice(bytes).map_err(|e| format!("invalid OSV YAML: {e}"))?;
    convert(rec)
}

fn convert(rec: OsvRecord) -> Result<Record, String> {
    let id = text(rec.id).ok_or("OSV record without id")?;
    if !valid_token(&id) {
        return Err("OSV record with an invalid id".to_owned());
    }
    let mut aliases = Vec::new();
    for a in rec.aliases.0 {
        let a = a.0.trim();
        if valid_token(a) && a != id {
            push_unique(&mut aliases, a, MAX_ALIASES);
        }
    }
    let modified = text(rec.modified).as_deref().and_then(Timestamp::parse);
    let withdrawn =
        text(rec.withdrawn).map(|w| Timestamp::parse(&w).or(modified).unwrap_or(Timestamp(0)));

    let mut cvss: Vec<CvssScore> = Vec::new();
    let mut ubuntu = None;
    for s in rec.severity.0 {
        let (Some(kind), Some(score)) = (text(s.kind), text(s.score)) else {
            continue;
        };
        match kind.as_str() {
            "CVSS_V2" | "CVSS_V3" | "CVSS_V4" => {
                if let Some(c) = CvssScore::from_vector(&score)
                    && cvss.len() < MAX_CVSS
                    && !cvss.iter().any(|x| x.vector == c.vector)
                {
                    cvss.push(c);
                }
            }
            "Ubuntu" => ubuntu = severity::word(&score),
            _ => {}
        }
    }
    let db_severity = rec
        .database_specific
        .and_then(|d| text(d.severity.0))
        .and_then(|w| severity::word(&w));

    let mut references = Vec::new();
    for r in rec.references.0 {
        if let Some(url) = text(r.url)
            && url.len() <= 2048
        {
            push_unique(&mut references, &url, MAX_REFERENCES);
        }
    }

    let mut ranges = Vec::new();
    if withdrawn.is_none() {
        for affected in rec.affected.unwrap_or_default() {
            convert_affected(&id, affected, &mut ranges)?;
        }
    }

    let range_severity = ranges
        .iter()
        .filter_map(|r: &AffectedRange| r.severity)
        .max();
    let severity = best_cvss_severity(&cvss)
        .or(db_severity)
        .or(ubuntu)
        .or(range_severity);

    let advisory = Advisory {
        source: FeedSource::Osv,
        id,
        aliases,
        summary: text(rec.summary).map(|s| truncate(s, MAX_SUMMARY_BYTES)),
        details: text(rec.details).map(|s| truncate(s, MAX_DETAILS_BYTES)),
        published: text(rec.published).as_deref().and_then(Timestamp::parse),
        modified,
        withdrawn,
        severity,
        cvss,
        references,
    };
    Ok(Record { advisory, ranges })
}

/// The rating from the most trustworthy CVSS vector: an exact v3.x score,
/// else the v4.0 heuristic, else v2. The highest wins within a version.
pub(crate) fn best_cvss_severity(cvss: &[CvssScore]) -> Option<Severity> {
    let pick = |want: &[CvssVersion]| {
        cvss.iter()
            .filter(|c| want.contains(&c.version))
            .filter_map(|c| c.severity)
            .max()
    };
    pick(&[CvssVersion::V3_1, CvssVersion::V3_0])
        .or_else(|| pick(&[CvssVersion::V4_0]))
        .or_else(|| pick(&[CvssVersion::V2]))
}

fn convert_affected(
    id: &str,
    affected: OsvAffected,
    out: &mut Vec<AffectedRange>,
) -> Result<(), String> {
    let Some(package) = affected.package else {
        return Ok(());
    };
    let (Some(ecosystem), Some(name)) = (text(package.ecosystem), text(package.name)) else {
        return Ok(());
    };
    if !valid_token(&ecosystem) || !valid_token(&name) {
        return Err(format!("{id}: invalid package name or ecosystem"));
    }
    let package = normalize_package(&ecosystem, &name);
    let eco = Ecosystem::from_osv(&ecosystem);
    let severity = affected
        .ecosystem_specific
        .and_then(|e| text(e.urgency.0))
        .and_then(|u| severity::debian_urgency(&u));

    let mut versions = Vec::new();
    let listed = affected.versions.unwrap_or_default();
    if listed.len() > MAX_VERSIONS {
        return Err(format!("{id}: more than {MAX_VERSIONS} versions"));
    }
    for v in listed {
        let v = v.0.trim();
        if valid_token(v) {
            versions.push(v.to_owned());
        }
    }

    let first = out.len();
    for range in affected.ranges.unwrap_or_default() {
        let kind = match text(range.kind).as_deref() {
            Some("ECOSYSTEM") => RangeKind::Ecosystem,
            Some("SEMVER") => RangeKind::Semver,
            _ => continue,
        };
        let raw = range.events.unwrap_or_default();
        if raw.len() > MAX_EVENTS {
            return Err(format!("{id}: more than {MAX_EVENTS} events"));
        }
        let mut events = Vec::with_capacity(raw.len());
        for e in raw {
            events.push(convert_event(id, e)?);
        }
        if events.is_empty() {
            continue;
        }
        let (fixed_version, unfixed) = summarize(&events, eco);
        out.push(AffectedRange {
            source: FeedSource::Osv,
            advisory_id: id.to_owned(),
            ecosystem: ecosystem.clone(),
            package: package.clone(),
            kind,
            events,
            versions: Vec::new(),
            fixed_version,
            unfixed,
            not_affected: false,
            severity,
        });
    }
    if !versions.is_empty() {
        if let Some(r) = out.get_mut(first) {
            r.versions = versions;
        } else {
            out.push(AffectedRange {
                source: FeedSource::Osv,
                advisory_id: id.to_owned(),
                ecosystem,
                package,
                kind: RangeKind::Ecosystem,
                events: Vec::new(),
                versions,
                fixed_version: None,
                unfixed: false,
                not_affected: false,
                severity,
            });
        }
    }
    Ok(())
}

fn convert_event(id: &str, e: OsvEvent) -> Result<Event, String> {
    let mut found = Vec::with_capacity(1);
    if let Some(v) = text(e.introduced) {
        found.push(Event::Introduced(v));
    }
    if let Some(v) = text(e.fixed) {
        found.push(Event::Fixed(v));
    }
    if let Some(v) = text(e.last_affected) {
        found.push(Event::LastAffected(v));
    }
    if let Some(v) = text(e.limit) {
        found.push(Event::Limit(v));
    }
    match found.pop() {
        Some(ev) if found.is_empty() && valid_token(ev.version()) => Ok(ev),
        _ => Err(format!(
            "{id}: range event must have exactly one valid version"
        )),
    }
}

/// The fixed version to store (the highest `fixed` event, by the
/// ecosystem's ordering when it is known and every fixed version parses,
/// else the last in feed order) and whether the range is open-ended with
/// no fix (`introduced` events only).
pub(crate) fn summarize(events: &[Event], eco: Option<Ecosystem>) -> (Option<String>, bool) {
    let mut fixed: Option<&str> = None;
    for e in events {
        if let Event::Fixed(v) = e {
            fixed = Some(match (fixed, eco) {
                (None, _) => v,
                (Some(cur), Some(eco)) => match eco.compare(v, cur) {
                    Ok(std::cmp::Ordering::Less) => cur,
                    _ => v,
                },
                (Some(_), None) => v,
            });
        }
    }
    let unfixed = events.iter().all(|e| matches!(e, Event::Introduced(_)));
    (fixed.map(str::to_owned), unfixed)
}

/// Package names as keys: PEP 503 for PyPI, unchanged otherwise.
pub(crate) fn normalize_package(ecosystem: &str, name: &str) -> String {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    if base == "PyPI" {
        crate::inventory::python::normalize_name(name)
    } else {
        non_empty(Some(name.to_owned())).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_json_record() {
        let v = serde_json::json!({
            "id": "GO-2099-0001",
            "modified": "0001-01-01T00:00:00Z",
            "aliases": ["CVE-2099-1", "GO-2099-0001", "CVE-2099-1"],
            "affected": [{
                "package": {"ecosystem": "Go", "name": "stdlib"},
                "ranges": [
                    {"type": "SEMVER", "events": [
                        {"introduced": "0"}, {"fixed": "1.21.9"},
                        {"introduced": "1.22.0-0"}, {"fixed": "1.22.2"}]},
                    {"type": "GIT", "repo": "x", "events": [{"introduced": "abc"}]}
                ]
            }, {"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}]
        });
        let rec = from_json(v).unwrap();
        assert_eq!(rec.advisory.id, "GO-2099-0001");
        assert_eq!(rec.advisory.aliases, ["CVE-2099-1"]);
        assert_eq!(rec.advisory.modified, None);
        assert_eq!(rec.ranges.len(), 1);
        assert_eq!(rec.ranges[0].fixed_version.as_deref(), Some("1.22.2"));
        assert!(!rec.ranges[0].unfixed);
    }

    #[test]
    fn bad_events_reject_the_record() {
        for events in [
            serde_json::json!([{"introduced": "0", "fixed": "1"}]),
            serde_json::json!([{}]),
            serde_json::json!([{"fixed": ""}]),
        ] {
            let v = serde_json::json!({
                "id": "X-1",
                "affected": [{"package": {"ecosystem": "npm", "name": "a"},
                              "ranges": [{"type": "SEMVER", "events": events}]}]
            });
            assert!(from_json(v).is_err());
        }
        assert!(from_json(serde_json::json!({"affected": []})).is_err());
        assert!(from_json(serde_json::json!({"id": ["x"]})).is_err());
    }

    #[test]
    fn yaml_keeps_scalars_as_written() {
        let y = b"id: PYSEC-2099-1\nmodified: 2023-11-07T20:24:23.946863Z\npublished: 2020-08-05T14:15:00Z\nwithdrawn: 2023-08-22T06:18:00Z\naffected:\n- package:\n    ecosystem: PyPI\n    name: Foo_Bar.baz\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n    - fixed: 1.10\n  versions:\n  - 1.0\n";
        let rec = from_yaml(y).unwrap();
        assert_eq!(
            rec.advisory.modified.map(|t| t.to_rfc3339()).as_deref(),
            Some("2023-11-07T20:24:23Z")
        );
        assert!(rec.advisory.withdrawn.is_some());
        // Withdrawn: no ranges.
        assert!(rec.ranges.is_empty());
        let y2 = String::from_utf8_lossy(y).replace("withdrawn: 2023-08-22T06:18:00Z\n", "");
        let rec = from_yaml(y2.as_bytes()).unwrap();
        assert_eq!(rec.ranges[0].package, "foo-bar-baz");
        assert_eq!(rec.ranges[0].fixed_version.as_deref(), Some("1.10"));
        assert_eq!(rec.ranges[0].versions, ["1.0"]);
    }

    #[test]
    fn yaml_alias_bomb_is_refused_quickly() {
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            let p = i - 1;
            y.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        // Unused keys are skipped without expansion.
        let ignored = format!("{y}id: X-1\n");
        assert!(from_yaml(ignored.as_bytes()).is_ok());
        // Expanding the bomb into a used field hits the alias limit.
        let used = format!("{y}id: X-1\naliases: *a29\n");
        assert!(from_yaml(used.as_bytes()).is_err());
        let secdb = format!("{y}distroversion: v3.1\npackages: *a29\n");
        let b = crate::vulndb::import_bytes("x.yaml", secdb.as_bytes());
        assert_eq!(b.skipped.len(), 1);
    }
}
