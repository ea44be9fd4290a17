//! Alpine secdb (`secdb.alpinelinux.org/<release>/<repo>.json` and the
//! older `alpine-secdb` YAML files), both serialisations of one shape:
//!
//! ```text
//! {distroversion: "v3.18", reponame: "main",
//!  packages: [{pkg: {name: "openssl", secfixes: {"3.1.4-r1": ["CVE-2023-5678"], "0": [...]}}}]}
//! ```
//!
//! `name` is the origin (source) package. Each fix entry becomes one
//! [`AffectedRange`] per vulnerability id, ecosystem `Alpine:<release>`
//! (`v` prefix added when missing; `edge` kept): events
//! `introduced "0"`, `fixed <key>`. The version key `"0"` is Alpine's
//! "not affected" marker and gives a `not_affected` range. Each id also
//! gets a stub [`Advisory`] (no text; the CVE feeds carry that) holding
//! the other ids written on the same line.
//!
//! Fix entries are free text in practice. [`secfix_ids`] reads:
//! `CVE-2018-3639   XSA-263` (CVE with alias), `CVE_2019-2426` and
//! `CVE 2018-16859` (normalised to `CVE-…`), `CVE-2017-17434-1` and
//! `CVE-2020-8492.patch` (suffix dropped), `CVE-????-?????  XSA-295`
//! (placeholder dropped, the XSA becomes the id), trailing comments in
//! parentheses (ignored), and several CVEs on one line (one range each).
//! Entries with no usable id are dropped. A package entry of the wrong
//! shape is reported and skipped; a file without `distroversion` is an
//! error.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::de::{Text, text};
use super::model::{
    Advisory, AffectedRange, Event, FeedSource, MAX_ALIASES, RangeKind, push_unique, valid_token,
};
use super::{Parsed, Record};

#[derive(Deserialize)]
struct Secdb {
    distroversion: Option<Text>,
    packages: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Package {
    pkg: Pkg,
}

#[derive(Deserialize)]
struct Pkg {
    name: Text,
    secfixes: Option<BTreeMap<String, Option<Vec<Option<Text>>>>>,
}

/// Parses a secdb document already read as JSON (YAML files are read into
/// the same tree first, keys kept as written).
pub(crate) fn parse(value: serde_json::Value) -> Result<Parsed, String> {
    let db: Secdb =
        serde_json::from_value(value).map_err(|e| format!("invalid Alpine secdb: {e}"))?;
    let release = text(db.distroversion).ok_or("Alpine secdb without distroversion")?;
    let release = if release.starts_with('v') || release == "edge" {
        release
    } else {
        format!("v{release}")
    };
    let ecosystem = format!("Alpine:{release}");
    if !valid_token(&ecosystem) {
        return Err("Alpine secdb with an invalid distroversion".to_owned());
    }
    let mut parsed = Parsed::default();
    for (index, entry) in db.packages.unwrap_or_default().into_iter().enumerate() {
        parsed.records += 1;
        let pkg = match serde_json::from_value::<Package>(entry) {
            Ok(p) => p.pkg,
            Err(e) => {
                parsed.warnings.push(format!("packages[{index}]: {e}"));
                continue;
            }
        };
        let name = pkg.name.0.trim().to_owned();
        if !valid_token(&name) {
            parsed
                .warnings
                .push(format!("packages[{index}]: invalid package name"));
            continue;
        }
        for (version, entries) in pkg.secfixes.unwrap_or_default() {
            let version = version.trim();
            if !valid_token(version) {
                continue;
            }
            for raw in entries.unwrap_or_default().into_iter().flatten() {
                let (ids, aliases) = secfix_ids(&raw.0);
                for id in ids {
                    let not_affected = version == "0";
                    let range = AffectedRange {
                        source: FeedSource::AlpineSecdb,
                        advisory_id: id.clone(),
                        ecosystem: ecosystem.clone(),
                        package: name.clone(),
                        kind: RangeKind::Ecosystem,
                        events: if not_affected {
                            Vec::new()
                        } else {
                            vec![
                                Event::Introduced("0".to_owned()),
                                Event::Fixed(version.to_owned()),
                            ]
                        },
                        versions: Vec::new(),
                        fixed_version: (!not_affected).then(|| version.to_owned()),
                        unfixed: false,
                        not_affected,
                        severity: None,
                    };
                    let mut advisory = stub(&id);
                    for a in &aliases {
                        push_unique(&mut advisory.aliases, a, MAX_ALIASES);
                    }
                    parsed.units.push(Record {
                        advisory,
                        ranges: vec![range],
                    });
                }
            }
        }
    }
    Ok(parsed)
}

fn stub(id: &str) -> Advisory {
    Advisory {
        source: FeedSource::AlpineSecdb,
        id: id.to_owned(),
        aliases: Vec::new(),
        summary: None,
        details: None,
        published: None,
        modified: None,
        withdrawn: None,
        severity: None,
        cvss: Vec::new(),
        references: Vec::new(),
    }
}

/// Reads the vulnerability ids of one free-text secfix entry: the ids to
/// key ranges by (every CVE on the line, or else the first other id) and
/// the remaining non-CVE ids as aliases.
pub fn secfix_ids(entry: &str) -> (Vec<String>, Vec<String>) {
    let entry = entry.split('(').next().unwrap_or_default();
    let raw: Vec<&str> = entry.split_whitespace().collect();
    let mut tokens: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&t) = raw.get(i) {
        i += 1;
        if t.eq_ignore_ascii_case("CVE") {
            if let Some(next) = raw
                .get(i)
                .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()))
            {
                tokens.push(format!("CVE-{next}"));
                i += 1;
            }
            continue;
        }
        tokens.push(t.to_owned());
    }
    let mut cves = Vec::new();
    let mut others = Vec::new();
    for t in tokens {
        let t = t.trim_end_matches([',', ';', ':', '.']);
        let t = t.strip_suffix(".patch").unwrap_or(t);
        if t.len() > 3 && t.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("CVE")) {
            if let Some(cve) = normalize_cve(t) {
                push_unique(&mut cves, &cve, MAX_ALIASES);
            }
        } else if valid_token(t)
            && t.chars().any(|c| c.is_ascii_digit())
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            push_unique(&mut others, t, MAX_ALIASES);
        }
    }
    if cves.is_empty() {
        if others.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let first = others.remove(0);
        (vec![first], others)
    } else {
        (cves, others)
    }
}

/// `CVE-2019-1234`, `CVE_2019-1234`, `cve-2019-1234-1` → `CVE-2019-1234`;
/// `None` without a four-digit year and an id of at least four digits.
fn normalize_cve(t: &str) -> Option<String> {
    let rest = t.get(3..)?;
    let rest = rest.strip_prefix(['-', '_'])?;
    let year = rest.get(..4)?;
    if !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.get(4..)?.strip_prefix(['-', '_'])?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.len() < 4 || digits.len() > 12 {
        return None;
    }
    Some(format!("CVE-{year}-{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messy_secfix_entries() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("CVE-2019-10206", &["CVE-2019-10206"], &[]),
            ("CVE-2018-3639   XSA-263", &["CVE-2018-3639"], &["XSA-263"]),
            (
                "CVE-2019-5060 TALOS-2019-0844",
                &["CVE-2019-5060"],
                &["TALOS-2019-0844"],
            ),
            ("XSA-207", &["XSA-207"], &[]),
            ("CVE_2019-2426", &["CVE-2019-2426"], &[]),
            ("CVE 2018-16859", &["CVE-2018-16859"], &[]),
            ("CVE-2017-17434-1", &["CVE-2017-17434"], &[]),
            ("CVE-????-?????  XSA-295", &["XSA-295"], &[]),
            (
                "CVE-2018-10103 (SMB - partially fixed, but SMB printing disabled)",
                &["CVE-2018-10103"],
                &[],
            ),
            ("CVE-2020-8492.patch", &["CVE-2020-8492"], &[]),
            (
                "CVE-2018-12891 CVE-2018-12893 CVE-2018-12892 XSA-264 XPTI",
                &["CVE-2018-12891", "CVE-2018-12893", "CVE-2018-12892"],
                &["XSA-264"],
            ),
            ("CVE-12345", &[], &[]),
            ("", &[], &[]),
            ("(comment only)", &[], &[]),
        ];
        for (entry, ids, aliases) in cases {
            let (got_ids, got_aliases) = secfix_ids(entry);
            assert_eq!(&got_ids, ids, "{entry:?}");
            assert_eq!(&got_aliases, aliases, "{entry:?}");
        }
    }

    #[test]
    fn not_affected_marker_and_bad_entries() {
        let v = serde_json::json!({
            "distroversion": "3.18",
            "packages": [
                {"pkg": {"name": "openssl", "secfixes": {"0": ["CVE-2022-0001"], "3.1.4-r1": ["CVE-2023-5678"], "1.0-r0": null}}},
                {"pkg": "broken"},
                {"pkg": {"name": "zlib"}}
            ]
        });
        let p = parse(v).unwrap();
        assert_eq!(p.records, 3);
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.units.len(), 2);
        let na = p
            .units
            .iter()
            .find(|u| u.advisory.id == "CVE-2022-0001")
            .unwrap();
        assert!(na.ranges[0].not_affected);
        assert_eq!(na.ranges[0].ecosystem, "Alpine:v3.18");
        assert!(parse(serde_json::json!({"packages": []})).is_err());
    }
}
