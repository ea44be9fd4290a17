//! Does an [`AffectedRange`] cover an installed version?
//!
//! OSV semantics (<https://ossf.github.io/osv-schema/#evaluation>), with
//! versions ordered by the caller's [`Ecosystem`]:
//!
//! - events are sorted by version (`introduced "0"` first, meaning "from
//!   the beginning"); walking them in order, an `introduced` at or below
//!   the installed version opens the range, a `fixed` at or below it
//!   closes it (fixed is exclusive), a `last_affected` strictly below it
//!   closes it (last_affected is inclusive);
//! - `limit` events bound the range from above: the installed version
//!   must be below at least one limit;
//! - a version in the explicit `versions` list is affected whatever the
//!   events say;
//! - at equal versions the order is introduced, last_affected, fixed,
//!   limit (so `introduced X, fixed X` is empty).
//!
//! Distribution rules: a `not_affected` range (Debian `fixed_version
//! "0"`, Alpine's `"0"` secfix, Red Hat `known_not_affected`) never
//! matches; an `unfixed` range (`introduced "0"` only) matches every
//! version and reports no fix.
//!
//! The reported fixed version is the first `fixed` event above the
//! installed version, i.e. the upgrade that leaves the range the installed
//! version is in (`1.21.9` for Go 1.21.3 in `0 → 1.21.9, 1.22.0-0 →
//! 1.22.2`). An installed or event version the ecosystem cannot parse is
//! an error; malformed entries of `versions` are skipped.

use std::cmp::Ordering;

use super::model::{AffectedRange, Event};
use crate::version::{Ecosystem, VersionError};

/// The answer for one range and one installed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchResult {
    NotAffected,
    /// Affected; `fixed_version` is the version to upgrade to, `None`
    /// when no fix is published.
    Affected {
        fixed_version: Option<String>,
    },
}

impl MatchResult {
    pub fn is_affected(&self) -> bool {
        matches!(self, MatchResult::Affected { .. })
    }

    /// The fixed version to report, if affected and a fix exists.
    pub fn fixed_version(&self) -> Option<&str> {
        match self {
            MatchResult::Affected { fixed_version } => fixed_version.as_deref(),
            MatchResult::NotAffected => None,
        }
    }
}

fn rank(e: &Event) -> u8 {
    match e {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) => 2,
        Event::Limit(_) => 3,
    }
}

fn is_zero(e: &Event) -> bool {
    matches!(e, Event::Introduced(v) if v == "0")
}

/// Whether `range` covers `installed` under `eco`'s version ordering.
pub fn affects(
    range: &AffectedRange,
    installed: &str,
    eco: Ecosystem,
) -> Result<MatchResult, VersionError> {
    if range.not_affected {
        return Ok(MatchResult::NotAffected);
    }
    // Validates the installed version.
    eco.compare(installed, installed)?;

    let mut events: Vec<&Event> = Vec::with_capacity(range.events.len());
    for e in &range.events {
        if !is_zero(e) {
            eco.compare(e.version(), e.version())?;
        }
        events.push(e);
    }
    // Every version was validated above, so the comparisons cannot fail.
    events.sort_by(|a, b| {
        let by_version = match (is_zero(a), is_zero(b)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => eco
                .compare(a.version(), b.version())
                .unwrap_or(Ordering::Equal),
        };
        by_version.then_with(|| rank(a).cmp(&rank(b)))
    });

    let cmp = |v: &str| eco.compare(installed, v);
    let mut vulnerable = false;
    let mut below_limit = None::<bool>;
    for e in &events {
        match e {
            Event::Introduced(v) => {
                if is_zero(e) || cmp(v)? != Ordering::Less {
                    vulnerable = true;
                }
            }
            Event::Fixed(v) => {
                if cmp(v)? != Ordering::Less {
                    vulnerable = false;
                }
            }
            Event::LastAffected(v) => {
                if cmp(v)? == Ordering::Greater {
                    vulnerable = false;
                }
            }
            Event::Limit(v) => {
                let below = cmp(v)? == Ordering::Less;
                below_limit = Some(below_limit.unwrap_or(false) || below);
            }
        }
    }
    if below_limit == Some(false) {
        vulnerable = false;
    }
    if !vulnerable {
        vulnerable = range.versions.iter().any(|listed| {
            listed == installed || eco.compare(installed, listed) == Ok(Ordering::Equal)
        });
    }
    if !vulnerable {
        return Ok(MatchResult::NotAffected);
    }
    let mut fixed_version = None;
    for e in &events {
        if let Event::Fixed(v) = e
            && cmp(v)? == Ordering::Less
        {
            fixed_version = Some(v.clone());
            break;
        }
    }
    Ok(MatchResult::Affected { fixed_version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulndb::model::{FeedSource, RangeKind};

    fn range(events: &[(&str, &str)], versions: &[&str]) -> AffectedRange {
        AffectedRange {
            source: FeedSource::Osv,
            advisory_id: "X".into(),
            ecosystem: "X".into(),
            package: "p".into(),
            kind: RangeKind::Ecosystem,
            events: events
                .iter()
                .map(|(k, v)| {
                    let v = (*v).to_owned();
                    match *k {
                        "i" => Event::Introduced(v),
                        "f" => Event::Fixed(v),
                        "l" => Event::LastAffected(v),
                        _ => Event::Limit(v),
                    }
                })
                .collect(),
            versions: versions.iter().map(|v| (*v).to_owned()).collect(),
            fixed_version: None,
            unfixed: false,
            not_affected: false,
            severity: None,
        }
    }

    fn check(eco: Ecosystem, r: &AffectedRange, cases: &[(&str, Option<Option<&str>>)]) {
        for (v, want) in cases {
            let got = affects(r, v, eco).unwrap();
            let want = match want {
                None => MatchResult::NotAffected,
                Some(f) => MatchResult::Affected {
                    fixed_version: f.map(str::to_owned),
                },
            };
            assert_eq!(got, want, "{eco} {v} in {:?}", r.events);
        }
    }

    #[test]
    fn semver_multi_interval() {
        // Events deliberately out of order.
        let r = range(
            &[
                ("i", "1.22.0-0"),
                ("f", "1.22.2"),
                ("i", "0"),
                ("f", "1.21.9"),
            ],
            &[],
        );
        check(
            Ecosystem::Go,
            &r,
            &[
                ("1.0.0", Some(Some("1.21.9"))),
                ("1.21.8", Some(Some("1.21.9"))),
                ("1.21.9", None),
                ("1.21.20", None),
                ("1.22.0-0", Some(Some("1.22.2"))),
                ("1.22.0", Some(Some("1.22.2"))),
                ("1.22.1", Some(Some("1.22.2"))),
                ("1.22.2", None),
                ("1.23.0", None),
            ],
        );
    }

    #[test]
    fn last_affected_is_inclusive_and_limit_bounds() {
        let r = range(&[("i", "1.0.0"), ("l", "1.2.0")], &[]);
        check(
            Ecosystem::SemVer,
            &r,
            &[
                ("0.9.0", None),
                ("1.0.0", Some(None)),
                ("1.2.0", Some(None)),
                ("1.2.1", None),
            ],
        );
        let r = range(&[("i", "0"), ("x", "2.0.0")], &[]);
        check(
            Ecosystem::SemVer,
            &r,
            &[("1.9.9", Some(None)), ("2.0.0", None), ("3.0.0", None)],
        );
    }

    #[test]
    fn explicit_versions_and_pep440() {
        let r = range(&[("i", "0"), ("f", "2.0")], &["3.0.1"]);
        check(
            Ecosystem::Pep440,
            &r,
            &[
                ("1.0", Some(Some("2.0"))),
                ("2.0.0", None),
                ("3.0.1", Some(None)),
                ("3.0.1.0", Some(None)),
                ("3.0.2", None),
            ],
        );
        let only_list = range(&[], &["1.0", "not a version!"]);
        check(
            Ecosystem::Pep440,
            &only_list,
            &[("1.0", Some(None)), ("1.1", None)],
        );
    }

    #[test]
    fn distro_rules() {
        let mut r = range(&[], &[]);
        r.not_affected = true;
        check(Ecosystem::Dpkg, &r, &[("1.0-1", None)]);
        let unfixed = range(&[("i", "0")], &[]);
        check(Ecosystem::Dpkg, &unfixed, &[("1:4.13+dfsg1-1", Some(None))]);
        let fixed = range(&[("i", "0"), ("f", "1:4.13+dfsg1-1")], &[]);
        check(
            Ecosystem::Dpkg,
            &fixed,
            &[
                ("4.99-1", Some(Some("1:4.13+dfsg1-1"))),
                ("1:4.13+dfsg1-1", None),
                ("1:4.13+dfsg1-1+deb12u1", None),
                ("1:4.13~rc1-1", Some(Some("1:4.13+dfsg1-1"))),
            ],
        );
        let apk = range(&[("i", "0"), ("f", "3.1.4-r1")], &[]);
        check(
            Ecosystem::Apk,
            &apk,
            &[
                ("3.1.4-r0", Some(Some("3.1.4-r1"))),
                ("3.1.4-r1", None),
                ("3.1.10-r0", None),
            ],
        );
        let rpm = range(&[("i", "0"), ("f", "32:9.8.2-0.68.rc1.el6_10.17")], &[]);
        check(
            Ecosystem::Rpm,
            &rpm,
            &[
                (
                    "32:9.8.2-0.68.rc1.el6_10.16",
                    Some(Some("32:9.8.2-0.68.rc1.el6_10.17")),
                ),
                ("32:9.8.2-0.68.rc1.el6_10.17", None),
                ("9.9.9-1", Some(Some("32:9.8.2-0.68.rc1.el6_10.17"))),
            ],
        );
    }

    #[test]
    fn equal_introduced_and_fixed_is_empty() {
        let r = range(&[("f", "1.0.0"), ("i", "1.0.0")], &[]);
        check(Ecosystem::SemVer, &r, &[("1.0.0", None), ("0.1.0", None)]);
    }

    #[test]
    fn invalid_versions_are_errors() {
        let r = range(&[("i", "0"), ("f", "1.0.0")], &[]);
        assert!(affects(&r, "not-semver", Ecosystem::SemVer).is_err());
        let bad = range(&[("i", "0"), ("f", "bogus!")], &[]);
        assert!(affects(&bad, "1.0.0", Ecosystem::SemVer).is_err());
        // A not-affected range needs no parsing.
        let mut na = range(&[], &[]);
        na.not_affected = true;
        assert_eq!(
            affects(&na, "garbage", Ecosystem::SemVer).unwrap(),
            MatchResult::NotAffected
        );
    }
}
