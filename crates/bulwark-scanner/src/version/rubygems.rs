//! Ruby gem versions, ordered as RubyGems' `Gem::Version#<=>`.
//!
//! A version is a dotted list of numbers and letter runs; any letter makes
//! it a pre-release, and a letter segment sorts before any number in the
//! same position (`1.0.a < 1.0 < 1.0.1`). `-` is shorthand for `.pre.`.
//! Trailing zeros (and zeros just before the first letter segment) do not
//! count: `1.0.0 == 1`, `1.0.a == 1.a`.

use std::cmp::Ordering;

use super::{Ecosystem, VersionError, cmp_decimal, is_zero};

const ECO: Ecosystem = Ecosystem::RubyGems;

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Num(&'a [u8]),
    Str(&'a [u8]),
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let ca = canonical(a)?;
    let cb = canonical(b)?;
    Ok(compare_segments(&segments(&ca), &segments(&cb)))
}

/// Ruby's `\s` (and what `String#strip` removes around a valid version).
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// `Gem::Version::ANCHORED_VERSION_PATTERN`:
/// `[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`.
fn validate(s: &[u8]) -> Result<(), &'static str> {
    let (main, pre) = match s.iter().position(|&c| c == b'-') {
        Some(hyphen) => (
            s.get(..hyphen).unwrap_or_default(),
            Some(s.get(hyphen + 1..).unwrap_or_default()),
        ),
        None => (s, None),
    };
    let mut parts = main.split(|&c| c == b'.');
    let first = parts.next().unwrap_or_default();
    if first.is_empty() || !first.iter().all(u8::is_ascii_digit) {
        return Err("must start with a number");
    }
    for part in parts {
        if part.is_empty() || !part.iter().all(u8::is_ascii_alphanumeric) {
            return Err("malformed segment");
        }
    }
    if let Some(pre) = pre {
        for part in pre.split(|&c| c == b'.') {
            if part.is_empty() || !part.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-') {
                return Err("malformed pre-release");
            }
        }
    }
    Ok(())
}

/// The string whose segments `Gem::Version#canonical_segments` uses.
fn canonical(input: &str) -> Result<Vec<u8>, VersionError> {
    let trimmed = input.trim_matches(is_ruby_space);
    // RubyGems reads a blank version as "0"; here a blank version is more
    // likely missing data than a real version 0, so it is refused.
    if trimmed.is_empty() {
        return Err(ECO.invalid(input, "empty version"));
    }
    validate(trimmed.as_bytes()).map_err(|reason| ECO.invalid(input, reason))?;

    let mut v: Vec<u8> = Vec::with_capacity(trimmed.len());
    for &c in trimmed.as_bytes() {
        if c == b'-' {
            v.extend_from_slice(b".pre.");
        } else {
            v.push(c);
        }
    }
    let prerelease = v.iter().any(u8::is_ascii_alphabetic);

    // Drop a trailing run of `.`/`0` that follows a letter or a dot
    // (Ruby: `sub(/(?<=[a-zA-Z.])[.0]+\z/, "")`).
    let run_start = v
        .iter()
        .rposition(|&c| c != b'.' && c != b'0')
        .map_or(0, |i| i + 1);
    if run_start < v.len() {
        let cut = if run_start > 0 && v.get(run_start - 1).is_some_and(u8::is_ascii_alphabetic) {
            Some(run_start)
        } else {
            // Otherwise the match starts just after the run's first dot.
            (run_start..v.len().saturating_sub(1))
                .find(|&i| v.get(i) == Some(&b'.'))
                .map(|i| i + 1)
        };
        if let Some(cut) = cut {
            v.truncate(cut);
        }
    }

    // For pre-releases, drop the first run of `0`/`.` that starts a segment
    // and runs into a letter (`sub(/(?<=\.|\A)[0.]+(?=[a-zA-Z])/, "")`):
    // `1.0.a` is `1.a`.
    if prerelease {
        let is_run = |c: &u8| *c == b'0' || *c == b'.';
        let mut found = None;
        let mut p = 0;
        while p < v.len() {
            let starts_segment = p == 0 || v.get(p - 1) == Some(&b'.');
            if !starts_segment || !v.get(p).is_some_and(is_run) {
                p += 1;
                continue;
            }
            let run = v
                .get(p..)
                .unwrap_or_default()
                .iter()
                .take_while(|c| is_run(c))
                .count();
            if v.get(p + run).is_some_and(u8::is_ascii_alphabetic) {
                found = Some((p, run));
                break;
            }
            // Every later start inside this run ends at the same non-letter.
            p += run;
        }
        if let Some((p, run)) = found {
            v.drain(p..p + run);
        }
    }
    Ok(v)
}

/// Runs of digits and runs of ASCII letters (`scan(/\d+|[a-z]+/i)`).
fn segments(v: &[u8]) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = v.get(i) {
        let pred: fn(&u8) -> bool = if c.is_ascii_digit() {
            u8::is_ascii_digit
        } else if c.is_ascii_alphabetic() {
            u8::is_ascii_alphabetic
        } else {
            i += 1;
            continue;
        };
        let len = v
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| pred(c))
            .count();
        let run = v.get(i..i + len).unwrap_or_default();
        out.push(if c.is_ascii_digit() {
            Segment::Num(run)
        } else {
            Segment::Str(run)
        });
        i += len;
    }
    out
}

fn compare_segments(a: &[Segment<'_>], b: &[Segment<'_>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x, y) {
            (Segment::Num(x), Segment::Num(y)) => cmp_decimal(x, y),
            (Segment::Str(x), Segment::Str(y)) => x.cmp(y),
            (Segment::Str(_), Segment::Num(_)) => Ordering::Less,
            (Segment::Num(_), Segment::Str(_)) => Ordering::Greater,
        };
        if ord.is_ne() {
            return ord;
        }
    }
    // Equal so far: extra zeros are neutral, an extra letter segment makes
    // the longer version a pre-release of the shorter one.
    let extra = |segs: &[Segment<'_>]| {
        for s in segs {
            match s {
                Segment::Str(_) => return Ordering::Less,
                Segment::Num(n) if !is_zero(n) => return Ordering::Greater,
                Segment::Num(_) => {}
            }
        }
        Ordering::Equal
    };
    let common = a.len().min(b.len());
    if a.len() > b.len() {
        extra(a.get(common..).unwrap_or_default())
    } else {
        extra(b.get(common..).unwrap_or_default()).reverse()
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
                // From RubyGems' test_gem_version.rb and the class docs.
                ("1.0", "=", "1.0.0"),
                ("1.0", "=", "1"),
                ("1.0.0.0", "=", "1"),
                ("1.8.2", ">", "0.0.0"),
                ("1.8.2", ">", "1.8.2.a"),
                ("1.8.2.b", ">", "1.8.2.a"),
                ("1.8.2.a10", ">", "1.8.2.a9"),
                ("1.8.2.a", "<", "1.8.2"),
                ("1.0.a", "<", "1.0"),
                ("1.0.b1", ">", "1.0.a.2"),
                ("1.0.a.2", ">", "0.9"),
                ("1.0", ">", "1.0.b1"),
                ("0.beta.1", "=", "0.0.beta.1"),
                ("0.0.beta", "<", "0.0.beta.1"),
                ("0.0.beta", "<", "0.beta.1"),
                ("1.9.3", ">", "1.9.2.99"),
                ("1.2.b1", "=", "1.2.b.1"),
                ("1.2.pre.1", "=", "1.2.0.pre.1.0"),
                ("1.0.0.a.1.0", "=", "1.a.1"),
                ("1.2.3-1", "=", "1.2.3.pre.1"),
                ("1.0.0-1", "<", "1"),
                ("1.0.0-alpha", "<", "1.0.0-alpha.1"),
                ("1.0.0-alpha.1", "<", "1.0.0-beta.2"),
                ("1.0.0-beta.2", "<", "1.0.0-beta.11"),
                ("1.0.0-beta.11", "<", "1.0.0-rc.1"),
                ("1.2.b1", "<", "1.2"),
                ("1.2.b1", ">", "1.2.a1"),
                ("1.2.d.42", ">", "1.2.b.42"),
                ("1.2.0.a", "<", "1.2"),
                ("1.2.0.a", "=", "1.2.a"),
                ("1.0.0.a", "=", "1.a"),
                ("1.0a", "=", "1.a"),
                ("1.0.0a", "=", "1.a"),
                ("1.a.0", "=", "1.a"),
                ("1.a.0.0", "=", "1.a"),
                ("1.9.3", "<", "1.9.3.1"),
                ("1.9.3", "<", "1.10"),
                ("1.10", ">", "1.9.99"),
                ("5.a", "<", "5.0.0.rc2"),
                ("5.x", ">", "5.0.0.rc2"),
                ("1.9.a", "<", "1.9"),
                ("1.9.a", "<", "1.9.0.1"),
                ("1.0.0.pre", "<", "1.0.0"),
                ("1.0.0.rc1", ">", "1.0.0.beta2"),
                ("1.0.0.rc1", "<", "1.0.0"),
                ("1.0.0.rc.1", "=", "1.0.0.rc1"),
                // `-` is `.pre.`.
                ("1.0.0-1", "=", "1.0.0.pre.1"),
                ("1.0.0-rc1", "=", "1.pre.rc1"),
                ("1.0.0-rc1", "<", "1.0.0"),
                ("1.0.0-rc1", "<", "1.0.0.pre"),
                ("1.0-beta-2", "=", "1.0.pre.beta.pre.2"),
                // Letter case matters, in ASCII order.
                ("1.0.A", "<", "1.0.a"),
                ("1.0.RC1", "<", "1.0.beta"),
                // Leading zeros and huge numbers.
                ("1.01", "=", "1.1"),
                ("1.001.0", "=", "1.1"),
                ("1.18446744073709551616", ">", "1.18446744073709551615"),
                ("99999999999999999999999", ">", "18446744073709551616"),
                // Surrounding whitespace is ignored.
                (" 1.0 ", "=", "1.0"),
                ("\t1.2.3\n", "=", "1.2.3"),
                ("0", "=", "0.0"),
                ("0", "<", "0.0.1"),
                ("0.a", "<", "0"),
            ],
        );
    }

    #[test]
    fn invalid() {
        // From RubyGems' test_gem_version.rb malformed cases, plus garbage.
        check_invalid(
            ECO,
            "1.0",
            &[
                "",
                "   ",
                "junk",
                "1.0\n2.0",
                "1..2",
                "1.2 3.4",
                "2.3422222.222.222222222.22222.ads0as.dasd0.ddd2222.2.qd3e.",
                "1.0.",
                ".1",
                "1.0-",
                "1.0-.a",
                "1.0+build",
                "a1.0",
                "v1.0",
                "1.0 beta",
                "1.é",
                "1.0\u{0}",
            ],
        );
    }
}
