//! Severity: CVSS base scores computed from vectors, and vendor ratings.
//!
//! - CVSS v3.0 and v3.1 base scores follow the FIRST specification formula
//!   exactly, including each version's `Roundup` (v3.1 rounds on an integer
//!   to avoid floating-point artefacts; v3.0 is a plain ceiling to one
//!   decimal). Temporal and environmental metrics after the base metrics
//!   are accepted and ignored.
//! - CVSS v2 base scores follow the v2 guide's equations.
//! - CVSS v4.0 is **not scored**. The official v4 score comes from a lookup
//!   table of macro-vectors plus interpolation; that table is not
//!   reproduced here. Instead [`cvss4_severity`] gives a qualitative
//!   severity by translating the v4 base metrics to their closest v3.1
//!   vector (`AT:P` raises `AC` to `H`; `UI:P`/`UI:A` become `UI:R`; any
//!   subsequent-system impact `SC/SI/SA` other than `N` makes the scope
//!   changed and each impact the higher of the vulnerable- and
//!   subsequent-system value) and rating the v3.1 score. It agrees with
//!   the official severity for the common shapes (all-high network RCE,
//!   availability-only DoS, stored XSS, local info leak) and may be one
//!   band off near band edges; [`CvssScore::score`] stays `None` for v4 so
//!   no approximation is ever presented as an official number.
//! - [`Severity::from_score`] uses the CVSS qualitative scale: Critical
//!   ≥ 9.0, High ≥ 7.0, Medium ≥ 4.0, Low > 0, else None.
//! - Vendor ratings: Debian urgency ([`debian_urgency`]), Red Hat impact
//!   ([`redhat_impact`]), and the GHSA `database_specific.severity` words
//!   ([`word`]). Alpine's secdb carries no severity.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Qualitative severity, ordered from `None` to `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// CVSS "None" (score 0.0).
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The CVSS v3/v4 qualitative rating of a base score.
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::None
        }
    }

    /// `"none"`, `"low"`, `"medium"`, `"high"`, `"critical"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses [`Severity::as_str`] output back.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "none" => Some(Severity::None),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CVSS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CvssVersion {
    V2,
    V3_0,
    V3_1,
    V4_0,
}

impl CvssVersion {
    /// `"2.0"`, `"3.0"`, `"3.1"`, `"4.0"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CvssVersion::V2 => "2.0",
            CvssVersion::V3_0 => "3.0",
            CvssVersion::V3_1 => "3.1",
            CvssVersion::V4_0 => "4.0",
        }
    }
}

/// One CVSS vector of an advisory, with what could be derived from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssScore {
    pub version: CvssVersion,
    /// The vector as published (trimmed).
    pub vector: String,
    /// Base score computed from the vector (v2, v3.x); `None` for v4.0.
    pub score: Option<f64>,
    /// Rating of the score, or for v4.0 the heuristic of [`cvss4_severity`].
    pub severity: Option<Severity>,
}

impl CvssScore {
    /// Parses and scores a vector. The version comes from the `CVSS:x.y/`
    /// prefix; a vector without prefix is taken as v2. Returns `None` for
    /// vectors that are not well-formed.
    pub fn from_vector(vector: &str) -> Option<CvssScore> {
        let vector = vector.trim();
        if vector.len() > 512 {
            return None;
        }
        let (version, score, severity) = if let Some(rest) = vector.strip_prefix("CVSS:3.1/") {
            let s = cvss3_base(rest, CvssVersion::V3_1)?;
            (CvssVersion::V3_1, Some(s), Some(Severity::from_score(s)))
        } else if let Some(rest) = vector.strip_prefix("CVSS:3.0/") {
            let s = cvss3_base(rest, CvssVersion::V3_0)?;
            (CvssVersion::V3_0, Some(s), Some(Severity::from_score(s)))
        } else if vector.starts_with("CVSS:4.0/") {
            (CvssVersion::V4_0, None, Some(cvss4_severity(vector)?))
        } else {
            let rest = vector.strip_prefix("(").unwrap_or(vector);
            let rest = rest.strip_suffix(")").unwrap_or(rest);
            let s = cvss2_base(rest)?;
            (CvssVersion::V2, Some(s), Some(cvss2_severity(s)))
        };
        Some(CvssScore {
            version,
            vector: vector.to_owned(),
            score,
            severity,
        })
    }
}

/// Splits `K:V/K:V/...` into pairs; `None` on a malformed or repeated key.
fn metrics(rest: &str) -> Option<Vec<(&str, &str)>> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for part in rest.split('/') {
        let (k, v) = part.split_once(':')?;
        if k.is_empty() || v.is_empty() || out.iter().any(|(seen, _)| *seen == k) {
            return None;
        }
        out.push((k, v));
    }
    Some(out)
}

fn get<'a>(m: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    m.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// CVSS v3.x base score from the metrics after the `CVSS:3.x/` prefix.
pub fn cvss3_base(rest: &str, version: CvssVersion) -> Option<f64> {
    let m = metrics(rest)?;
    let av = match get(&m, "AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match get(&m, "AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let changed = match get(&m, "S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let pr = match (get(&m, "PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match get(&m, "UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |key: &str| -> Option<f64> {
        match get(&m, key)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(match version {
        CvssVersion::V3_0 => (raw * 10.0).ceil() / 10.0,
        _ => roundup_31(raw),
    })
}

/// CVSS v3.1 `Roundup`: smallest one-decimal number ≥ the input, computed
/// on integers so that e.g. 4.000000000000001 does not become 4.1.
fn roundup_31(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

/// CVSS v2 base score from a vector such as `AV:N/AC:L/Au:N/C:P/I:P/A:P`.
pub fn cvss2_base(rest: &str) -> Option<f64> {
    let m = metrics(rest)?;
    let av = match get(&m, "AV")? {
        "L" => 0.395,
        "A" => 0.646,
        "N" => 1.0,
        _ => return None,
    };
    let ac = match get(&m, "AC")? {
        "H" => 0.35,
        "M" => 0.61,
        "L" => 0.71,
        _ => return None,
    };
    let au = match get(&m, "Au")? {
        "M" => 0.45,
        "S" => 0.56,
        "N" => 0.704,
        _ => return None,
    };
    let cia = |key: &str| -> Option<f64> {
        match get(&m, key)? {
            "N" => Some(0.0),
            "P" => Some(0.275),
            "C" => Some(0.660),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let impact = 10.41 * (1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a));
    let exploitability = 20.0 * av * ac * au;
    let f = if impact == 0.0 { 0.0 } else { 1.176 };
    let score = ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f;
    Some(((score * 10.0).round() / 10.0).max(0.0))
}

/// NVD's v2 rating: High ≥ 7.0, Medium ≥ 4.0, else Low (v2 has no
/// Critical and no None band).
fn cvss2_severity(score: f64) -> Severity {
    if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// Heuristic severity of a `CVSS:4.0/...` vector (see the module docs):
/// the rating of the closest CVSS v3.1 base vector. `None` if the vector
/// lacks a base metric or has an unknown value.
pub fn cvss4_severity(vector: &str) -> Option<Severity> {
    let rest = vector.trim().strip_prefix("CVSS:4.0/")?;
    let m = metrics(rest)?;
    let one_of = |key: &str, allowed: &[&str]| -> Option<String> {
        let v = get(&m, key)?;
        allowed.contains(&v).then(|| v.to_owned())
    };
    let av = one_of("AV", &["N", "A", "L", "P"])?;
    let mut ac = one_of("AC", &["L", "H"])?;
    if one_of("AT", &["N", "P"])? == "P" {
        ac = "H".to_owned();
    }
    let pr = one_of("PR", &["N", "L", "H"])?;
    let ui = match one_of("UI", &["N", "P", "A"])?.as_str() {
        "N" => "N",
        _ => "R",
    };
    let level = |v: &str| match v {
        "H" => 2,
        "L" => 1,
        _ => 0,
    };
    let hln = &["H", "L", "N"];
    let vc = level(&one_of("VC", hln)?);
    let vi = level(&one_of("VI", hln)?);
    let va = level(&one_of("VA", hln)?);
    let sc = level(&one_of("SC", hln)?);
    let si = level(&one_of("SI", hln)?);
    let sa = level(&one_of("SA", hln)?);
    let changed = sc.max(si).max(sa) > 0;
    let letter = |n: i32| match n {
        2 => "H",
        1 => "L",
        _ => "N",
    };
    let (c, i, a) = if changed {
        (vc.max(sc), vi.max(si), va.max(sa))
    } else {
        (vc, vi, va)
    };
    let v3 = format!(
        "AV:{av}/AC:{ac}/PR:{pr}/UI:{ui}/S:{}/C:{}/I:{}/A:{}",
        if changed { "C" } else { "U" },
        letter(c),
        letter(i),
        letter(a)
    );
    cvss3_base(&v3, CvssVersion::V3_1).map(Severity::from_score)
}

/// Debian security-tracker urgency. `unimportant` (negligible impact) is
/// rated Low so it is still shown; `not yet assigned`, `end-of-life` and
/// unknown words give `None`. A trailing `*`/`**` (urgency taken from NVD)
/// is ignored.
pub fn debian_urgency(urgency: &str) -> Option<Severity> {
    match urgency.trim().trim_end_matches('*').trim() {
        "unimportant" | "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        _ => None,
    }
}

/// Red Hat impact rating: Critical, Important → High, Moderate → Medium, Low.
pub fn redhat_impact(impact: &str) -> Option<Severity> {
    match impact.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "important" => Some(Severity::High),
        "moderate" => Some(Severity::Medium),
        "low" => Some(Severity::Low),
        _ => None,
    }
}

/// Severity words as used by GHSA (`LOW`, `MODERATE`, `HIGH`, `CRITICAL`)
/// and other feeds, case-insensitively.
pub fn word(s: &str) -> Option<Severity> {
    match s.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "high" | "important" => Some(Severity::High),
        "medium" | "moderate" => Some(Severity::Medium),
        "low" | "negligible" => Some(Severity::Low),
        "none" => Some(Severity::None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(v: &str) -> Option<f64> {
        CvssScore::from_vector(v).and_then(|s| s.score)
    }

    #[test]
    fn cvss31_published_examples() {
        let cases = [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1),
            ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:N/I:N/A:H", 5.3),
            ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:N/I:H/A:N", 6.8),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H", 6.5),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            // Log4Shell.
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            // Temporal metrics are ignored.
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C",
                9.8,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(score(v), Some(want), "{v}");
        }
    }

    #[test]
    fn cvss30_uses_plain_ceiling() {
        assert_eq!(
            score("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(8.1)
        );
        assert_eq!(
            score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
    }

    #[test]
    fn roundup_avoids_float_artefacts() {
        assert_eq!(roundup_31(4.000_000_000_000_001), 4.0);
        assert_eq!(roundup_31(4.02), 4.1);
        assert_eq!(roundup_31(10.0), 10.0);
    }

    #[test]
    fn cvss2_examples() {
        assert_eq!(score("AV:N/AC:L/Au:N/C:P/I:P/A:P"), Some(7.5));
        assert_eq!(score("AV:N/AC:L/Au:N/C:C/I:C/A:C"), Some(10.0));
        assert_eq!(score("AV:N/AC:M/Au:N/C:N/I:P/A:N"), Some(4.3));
        assert_eq!(score("(AV:L/AC:L/Au:N/C:C/I:C/A:C)"), Some(7.2));
    }

    #[test]
    fn malformed_vectors_are_rejected() {
        for v in [
            "",
            "CVSS:3.1/",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
            "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H//",
            "CVSS:4.0/AV:N",
            "CVSS:9.9/AV:N",
            "garbage",
        ] {
            assert_eq!(CvssScore::from_vector(v), None, "{v:?}");
        }
        let long = format!("CVSS:3.1/{}", "X:Y/".repeat(1000));
        assert_eq!(CvssScore::from_vector(&long), None);
    }

    #[test]
    fn cvss4_heuristic() {
        let cases = [
            // Official 9.3.
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                Severity::Critical,
            ),
            // Official 8.7.
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
                Severity::High,
            ),
            // Official 5.1 (reflected XSS shape).
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N",
                Severity::Medium,
            ),
            // Official 6.8 (local info leak).
            (
                "CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
                Severity::Medium,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
                Severity::None,
            ),
        ];
        for (v, want) in cases {
            let s = CvssScore::from_vector(v);
            assert_eq!(s.as_ref().and_then(|s| s.severity), Some(want), "{v}");
            assert_eq!(s.and_then(|s| s.score), None, "{v}");
        }
    }

    #[test]
    fn score_bands() {
        assert_eq!(Severity::from_score(9.0), Severity::Critical);
        assert_eq!(Severity::from_score(8.9), Severity::High);
        assert_eq!(Severity::from_score(7.0), Severity::High);
        assert_eq!(Severity::from_score(6.9), Severity::Medium);
        assert_eq!(Severity::from_score(4.0), Severity::Medium);
        assert_eq!(Severity::from_score(3.9), Severity::Low);
        assert_eq!(Severity::from_score(0.1), Severity::Low);
        assert_eq!(Severity::from_score(0.0), Severity::None);
        assert!(Severity::Critical > Severity::High);
        for s in [
            Severity::None,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn vendor_ratings() {
        assert_eq!(debian_urgency("unimportant"), Some(Severity::Low));
        assert_eq!(debian_urgency("low**"), Some(Severity::Low));
        assert_eq!(debian_urgency("medium"), Some(Severity::Medium));
        assert_eq!(debian_urgency("high*"), Some(Severity::High));
        assert_eq!(debian_urgency("not yet assigned"), None);
        assert_eq!(debian_urgency("end-of-life"), None);
        assert_eq!(redhat_impact("Critical"), Some(Severity::Critical));
        assert_eq!(redhat_impact("Important"), Some(Severity::High));
        assert_eq!(redhat_impact("Moderate"), Some(Severity::Medium));
        assert_eq!(redhat_impact("Low"), Some(Severity::Low));
        assert_eq!(redhat_impact("Unknown"), None);
        assert_eq!(word("MODERATE"), Some(Severity::Medium));
        assert_eq!(word("CRITICAL"), Some(Severity::Critical));
        assert_eq!(word("whatever"), None);
    }
}
