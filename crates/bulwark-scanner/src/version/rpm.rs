//! RPM versions: `[epoch:]version[-release]`, ordered as rpm's `rpmverCmp`
//! (epoch, then `rpmvercmp` on version, then on release).

use std::cmp::Ordering;

use super::{Ecosystem, VersionError, cmp_decimal};

const ECO: Ecosystem = Ecosystem::Rpm;

struct Evr<'a> {
    epoch: &'a [u8],
    version: &'a [u8],
    release: Option<&'a [u8]>,
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let a = parse(a)?;
    let b = parse(b)?;
    // A missing epoch is 0; a missing release sorts before any release, as
    // in rpmverCmp (dependency matching treats it as a wildcard instead, but
    // that is not an ordering).
    let release = match (a.release, b.release) {
        (None, None) => Ordering::Equal,
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
    };
    Ok(cmp_decimal(a.epoch, b.epoch)
        .then_with(|| rpmvercmp(a.version, b.version))
        .then(release))
}

/// Characters rpmbuild accepts in Version and Release (after macro expansion).
fn is_version_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'~' | b'^')
}

fn parse(input: &str) -> Result<Evr<'_>, VersionError> {
    let err = |reason| ECO.invalid(input, reason);
    let s = input.as_bytes();
    if s.is_empty() {
        return Err(err("empty version"));
    }
    // As rpm's parseEVR: the epoch is the leading digits when a colon follows.
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (epoch, rest) = match s.get(digits) {
        Some(b':') if digits == 0 => return Err(err("empty epoch")),
        Some(b':') => (
            s.get(..digits).unwrap_or_default(),
            s.get(digits + 1..).unwrap_or_default(),
        ),
        _ => (&b""[..], s),
    };
    let (version, release) = match rest.iter().rposition(|&c| c == b'-') {
        Some(hyphen) => (
            rest.get(..hyphen).unwrap_or_default(),
            Some(rest.get(hyphen + 1..).unwrap_or_default()),
        ),
        None => (rest, None),
    };
    if version.is_empty() {
        return Err(err("empty version"));
    }
    if !version.iter().all(|&c| is_version_char(c)) {
        return Err(err("invalid character in version"));
    }
    if let Some(release) = release {
        if release.is_empty() {
            return Err(err("empty release"));
        }
        if !release.iter().all(|&c| is_version_char(c)) {
            return Err(err("invalid character in release"));
        }
    }
    Ok(Evr {
        epoch,
        version,
        release,
    })
}

/// rpm's segment-wise comparison: runs of digits and runs of letters are
/// compared, anything else separates them. `~` sorts before everything
/// (even the end), `^` sorts after the end but before anything else.
fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let at = |s: &[u8], k: usize| s.get(k).copied();
    let skip_separators = |s: &[u8], mut k: usize| {
        while let Some(c) = at(s, k) {
            if c.is_ascii_alphanumeric() || c == b'~' || c == b'^' {
                break;
            }
            k += 1;
        }
        k
    };
    let run_end = |s: &[u8], k: usize, digits: bool| {
        let len = s
            .get(k..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| {
                if digits {
                    c.is_ascii_digit()
                } else {
                    c.is_ascii_alphabetic()
                }
            })
            .count();
        k + len
    };

    let (mut i, mut j) = (0, 0);
    while at(a, i).is_some() || at(b, j).is_some() {
        i = skip_separators(a, i);
        j = skip_separators(b, j);
        let (ca, cb) = (at(a, i), at(b, j));

        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let Some(ca) = ca else { break };
        if cb.is_none() {
            break;
        }

        // The segment type is decided by `a`; a segment of the other type in
        // `b` counts as empty, and numeric segments beat alphabetic ones.
        let numeric = ca.is_ascii_digit();
        let end_a = run_end(a, i, numeric);
        let end_b = run_end(b, j, numeric);
        if end_b == j {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let seg_a = a.get(i..end_a).unwrap_or_default();
        let seg_b = b.get(j..end_b).unwrap_or_default();
        let ord = if numeric {
            cmp_decimal(seg_a, seg_b)
        } else {
            seg_a.cmp(seg_b)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        i = end_a;
        j = end_b;
    }
    // Equal segments: whichever still has characters left is newer.
    match (at(a, i).is_some(), at(b, j).is_some()) {
        (false, false) => Ordering::Equal,
        (false, true) => Ordering::Less,
        (true, _) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check, check_invalid};
    use super::*;

    #[test]
    fn rpmvercmp_cases() {
        // rpm's own rpmvercmp test table (tests/rpmvercmp.at).
        check(
            ECO,
            &[
                ("1.0", "=", "1.0"),
                ("1.0", "<", "2.0"),
                ("2.0.1", "=", "2.0.1"),
                ("2.0", "<", "2.0.1"),
                ("2.0.1a", "=", "2.0.1a"),
                ("2.0.1a", ">", "2.0.1"),
                ("5.5p1", "<", "5.5p2"),
                ("5.5p1", "<", "5.5p10"),
                ("10xyz", "<", "10.1xyz"),
                ("xyz10", "<", "xyz10.1"),
                ("xyz.4", "<", "8"),
                ("xyz.4", "<", "2"),
                ("5.5p2", "<", "5.6p1"),
                ("5.6p1", "<", "6.5p1"),
                ("6.0.rc1", ">", "6.0"),
                ("10b2", ">", "10a1"),
                ("10a2", "<", "10b2"),
                ("1.0aa", "=", "1.0aa"),
                ("1.0a", "<", "1.0aa"),
                ("10.0001", "=", "10.1"),
                ("10.0001", "<", "10.0039"),
                ("4.999.9", "<", "5.0"),
                ("20101121", "<", "20101122"),
                ("2_0", "=", "2.0"),
                ("a+", "=", "a_"),
                ("+a", "=", "_a"),
                ("1.0~rc1", "<", "1.0"),
                ("1.0~rc1", "<", "1.0~rc2"),
                ("1.0~rc1~git123", "<", "1.0~rc1"),
                ("1.0^", ">", "1.0"),
                ("1.0^git1", ">", "1.0"),
                ("1.0^git1", "<", "1.0^git2"),
                ("1.0^git1", "<", "1.01"),
                ("1.0^20160101", "<", "1.0.1"),
                ("1.0^20160102", ">", "1.0^20160101^git1"),
                ("1.0~rc1^git1", ">", "1.0~rc1"),
                ("1.0^git1", ">", "1.0^git1~pre"),
            ],
        );
    }

    #[test]
    fn evr() {
        check(
            ECO,
            &[
                ("0:1.0-1", "=", "1.0-1"),
                ("1:1.0-1", ">", "2.0-1"),
                ("2:1.0", ">", "1:9.9"),
                ("01:1.0", "=", "1:1.0"),
                ("1.0-1", "<", "1.0-2"),
                ("1.0-1.el8", "<", "1.0-1.el9"),
                ("1.0-1.el8_4", ">", "1.0-1.el8"),
                ("1.0-10.el8", ">", "1.0-9.el8"),
                ("1.0", "<", "1.0-1"),
                ("1.0", "=", "0:1.0"),
                ("2.17-326.el7_9", "<", "2.17-326.el7_9.3"),
                ("3.6.8-51.el8_8.2", ">", "3.6.8-51.el8"),
                ("1.1.1k-7.el8_6", "<", "1.1.1k-12.el8_9"),
                ("1.1.1k-7.el8_6", "<", "1:1.1.1k-7.el8_6"),
                (
                    "99999999999999999999999999",
                    "<",
                    "100000000000000000000000000",
                ),
                (
                    "1.99999999999999999999999999",
                    ">",
                    "1.18446744073709551616",
                ),
                ("1:1.0", "<", "99999999999999999999:0.1"),
                ("1.0~beta-1", "<", "1.0-1"),
                ("1.0^post-1", ">", "1.0-1"),
                ("1.0-1~pre", "<", "1.0-1"),
            ],
        );
    }

    #[test]
    fn invalid() {
        check_invalid(
            ECO,
            "1.0-1",
            &[
                "", ":1.0", "1:", "1.0-", "-1", "1:-1", "1.0 -1", "1.0-1 ", "a:1.0", "1.0:1",
                "1.0-1:2", "1.0/1", "1.0é", "1.0\n",
            ],
        );
    }
}
