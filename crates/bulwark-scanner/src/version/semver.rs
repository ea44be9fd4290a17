//! SemVer 2.0.0 precedence (semver.org §11). Also the core of Go module
//! versions, which are SemVer with a `v` prefix.

use std::cmp::Ordering;

use super::{Ecosystem, VersionError, cmp_decimal};

const ECO: Ecosystem = Ecosystem::SemVer;

/// The parts of a version that take part in precedence; build metadata is
/// validated and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SemVer<'a> {
    pub(super) major: &'a [u8],
    pub(super) minor: &'a [u8],
    pub(super) patch: &'a [u8],
    pub(super) pre: Vec<&'a [u8]>,
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let pa = parse_tolerant(a)?;
    let pb = parse_tolerant(b)?;
    Ok(precedence(&pa, &pb))
}

fn parse_tolerant(input: &str) -> Result<SemVer<'_>, VersionError> {
    let s = input
        .strip_prefix('v')
        .or_else(|| input.strip_prefix('V'))
        .unwrap_or(input);
    parse(s.as_bytes(), false).map_err(|reason| ECO.invalid(input, reason))
}

/// A numeric component: `0` or digits without a leading zero.
fn number(s: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let len = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (digits, rest) = s.split_at_checked(len).unwrap_or((s, &[]));
    match digits {
        [] => Err("expected a number"),
        [b'0', _, ..] => Err("number with a leading zero"),
        _ => Ok((digits, rest)),
    }
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Parses `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]` (no prefix).
///
/// With `allow_short`, `MAJOR` and `MAJOR.MINOR` alone are accepted as
/// shorthands for `MAJOR.0.0` and `MAJOR.MINOR.0`, as Go's semver package
/// does.
pub(super) fn parse(s: &[u8], allow_short: bool) -> Result<SemVer<'_>, &'static str> {
    let (major, rest) = number(s)?;
    if rest.is_empty() && allow_short {
        return Ok(SemVer {
            major,
            minor: b"0",
            patch: b"0",
            pre: Vec::new(),
        });
    }
    let rest = rest.strip_prefix(b".").ok_or("expected '.' after major")?;
    let (minor, rest) = number(rest)?;
    if rest.is_empty() && allow_short {
        return Ok(SemVer {
            major,
            minor,
            patch: b"0",
            pre: Vec::new(),
        });
    }
    let rest = rest.strip_prefix(b".").ok_or("expected '.' after minor")?;
    let (patch, rest) = number(rest)?;

    let (pre_part, build_part) = match rest.iter().position(|&c| c == b'+') {
        Some(plus) => (
            rest.get(..plus).unwrap_or_default(),
            Some(rest.get(plus + 1..).unwrap_or_default()),
        ),
        None => (rest, None),
    };
    let mut pre = Vec::new();
    if !pre_part.is_empty() {
        let ids = pre_part
            .strip_prefix(b"-")
            .ok_or("unexpected characters after patch")?;
        for id in ids.split(|&c| c == b'.') {
            if id.is_empty() {
                return Err("empty pre-release identifier");
            }
            if !id.iter().all(|&c| is_ident_char(c)) {
                return Err("invalid character in pre-release");
            }
            if id.len() > 1 && id.first() == Some(&b'0') && id.iter().all(u8::is_ascii_digit) {
                return Err("numeric pre-release identifier with a leading zero");
            }
            pre.push(id);
        }
    }
    if let Some(build) = build_part {
        for id in build.split(|&c| c == b'.') {
            if id.is_empty() {
                return Err("empty build identifier");
            }
            if !id.iter().all(|&c| is_ident_char(c)) {
                return Err("invalid character in build metadata");
            }
        }
    }
    Ok(SemVer {
        major,
        minor,
        patch,
        pre,
    })
}

/// SemVer precedence: numeric core, then a release beats any pre-release,
/// then pre-release identifiers left to right (numeric ones numerically and
/// below alphanumeric ones, which compare in ASCII order), then the longer
/// list of identifiers.
pub(super) fn precedence(a: &SemVer<'_>, b: &SemVer<'_>) -> Ordering {
    cmp_decimal(a.major, b.major)
        .then_with(|| cmp_decimal(a.minor, b.minor))
        .then_with(|| cmp_decimal(a.patch, b.patch))
        .then_with(|| match (a.pre.is_empty(), b.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let ids = a.pre.iter().zip(&b.pre);
                ids.map(|(x, y)| compare_identifier(x, y))
                    .find(|o| o.is_ne())
                    .unwrap_or_else(|| a.pre.len().cmp(&b.pre.len()))
            }
        })
}

fn compare_identifier(a: &[u8], b: &[u8]) -> Ordering {
    let numeric = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match (numeric(a), numeric(b)) {
        (true, true) => cmp_decimal(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check, check_invalid};
    use super::*;

    #[test]
    fn ordering() {
        check(
            ECO,
            &[
                // semver.org §11 examples.
                ("1.0.0", "<", "2.0.0"),
                ("2.0.0", "<", "2.1.0"),
                ("2.1.0", "<", "2.1.1"),
                ("1.0.0-alpha", "<", "1.0.0"),
                ("1.0.0-alpha", "<", "1.0.0-alpha.1"),
                ("1.0.0-alpha.1", "<", "1.0.0-alpha.beta"),
                ("1.0.0-alpha.beta", "<", "1.0.0-beta"),
                ("1.0.0-beta", "<", "1.0.0-beta.2"),
                ("1.0.0-beta.2", "<", "1.0.0-beta.11"),
                ("1.0.0-beta.11", "<", "1.0.0-rc.1"),
                ("1.0.0-rc.1", "<", "1.0.0"),
                // Numeric, not lexical, components.
                ("1.9.0", "<", "1.10.0"),
                ("1.10.0", "<", "1.11.0"),
                ("10.0.0", ">", "9.99.99"),
                // Build metadata is ignored.
                ("1.0.0+build.1", "=", "1.0.0+build.2"),
                ("1.0.0-alpha+001", "=", "1.0.0-alpha"),
                ("1.0.0+20130313144700", "=", "1.0.0"),
                ("1.0.0-beta+exp.sha.5114f85", "<", "1.0.0"),
                ("1.0.0+0.build.1-rc.10000aaa-kk-0.1", "=", "1.0.0"),
                // A leading v is tolerated.
                ("v1.2.3", "=", "1.2.3"),
                ("V1.2.3", "=", "v1.2.3"),
                ("v1.2.3", "<", "1.2.4"),
                // Pre-release identifier rules.
                ("1.0.0-1", "<", "1.0.0-a"),
                ("1.0.0-2", "<", "1.0.0-10"),
                ("1.0.0-a", "<", "1.0.0-b"),
                ("1.0.0-B", "<", "1.0.0-a"),
                ("1.0.0-alpha-1", "<", "1.0.0-alpha-2"),
                ("1.0.0-alpha-10", "<", "1.0.0-alpha-2"),
                ("1.0.0-0a", ">", "1.0.0-999"),
                ("1.0.0-01a", ">", "1.0.0-0"),
                ("1.0.0--", ">", "1.0.0-1"),
                ("1.0.0-x.7.z.92", ">", "1.0.0-x.7.z.91"),
                ("1.0.0-rc.1.0", ">", "1.0.0-rc.1"),
                // Huge numbers.
                (
                    "99999999999999999999999.999999999999999999.99999999999999999",
                    ">",
                    "18446744073709551616.0.0",
                ),
                (
                    "1.0.0-18446744073709551616",
                    ">",
                    "1.0.0-18446744073709551615",
                ),
                ("0.0.0", "<", "0.0.1"),
                ("0.0.0-0", "<", "0.0.0"),
            ],
        );
    }

    #[test]
    fn invalid() {
        check_invalid(
            ECO,
            "1.0.0",
            &[
                "",
                "v",
                "1",
                "1.0",
                "1.0.0.0",
                "01.0.0",
                "1.00.0",
                "1.0.00",
                "1.0.0-",
                "1.0.0-01",
                "1.0.0-alpha..1",
                "1.0.0-alpha.",
                "1.0.0+",
                "1.0.0+a..b",
                "1.0.0-a_b",
                "1.0.0 ",
                " 1.0.0",
                "1.0.0-é",
                "a.b.c",
                "1.0.0junk",
                "-1.0.0",
                "1.-1.0",
                "vv1.0.0",
            ],
        );
    }
}
