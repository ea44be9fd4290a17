//! Debian package versions: `[epoch:]upstream_version[-debian_revision]`,
//! ordered as `dpkg --compare-versions` does (Debian Policy §5.6.12).

use std::cmp::Ordering;

use super::{Ecosystem, VersionError, cmp_decimal};

const ECO: Ecosystem = Ecosystem::Dpkg;

/// dpkg refuses epochs that do not fit a C `int`.
const MAX_EPOCH: &[u8] = b"2147483647";

struct Version<'a> {
    epoch: &'a [u8],
    upstream: &'a [u8],
    revision: &'a [u8],
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let a = parse(a)?;
    let b = parse(b)?;
    Ok(cmp_decimal(a.epoch, b.epoch)
        .then_with(|| verrevcmp(a.upstream, b.upstream))
        .then_with(|| verrevcmp(a.revision, b.revision)))
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn parse(input: &str) -> Result<Version<'_>, VersionError> {
    let err = |reason| ECO.invalid(input, reason);
    // dpkg ignores surrounding whitespace but rejects it inside.
    let s = input.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
    let s = s.as_bytes();
    if s.is_empty() {
        return Err(err("empty version"));
    }
    if s.iter().any(|&c| is_space(c)) {
        return Err(err("embedded whitespace"));
    }

    let (epoch, rest) = match s.iter().position(|&c| c == b':') {
        Some(colon) => {
            let epoch = s.get(..colon).unwrap_or_default();
            let rest = s.get(colon + 1..).unwrap_or_default();
            if epoch.is_empty() {
                return Err(err("empty epoch"));
            }
            if !epoch.iter().all(u8::is_ascii_digit) {
                return Err(err("epoch is not a number"));
            }
            if cmp_decimal(epoch, MAX_EPOCH) == Ordering::Greater {
                return Err(err("epoch is too big"));
            }
            if rest.is_empty() {
                return Err(err("nothing after the epoch colon"));
            }
            (epoch, rest)
        }
        None => (&b""[..], s),
    };

    // The revision starts after the last hyphen; upstream may contain hyphens.
    let (upstream, revision) = match rest.iter().rposition(|&c| c == b'-') {
        Some(hyphen) => {
            let revision = rest.get(hyphen + 1..).unwrap_or_default();
            if revision.is_empty() {
                return Err(err("empty revision"));
            }
            (rest.get(..hyphen).unwrap_or_default(), revision)
        }
        None => (rest, &b""[..]),
    };

    match upstream.first() {
        None => return Err(err("empty upstream version")),
        Some(c) if !c.is_ascii_digit() => {
            return Err(err("upstream version does not start with a digit"));
        }
        Some(_) => {}
    }
    if !upstream
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'~' | b':'))
    {
        return Err(err("invalid character in upstream version"));
    }
    if !revision
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'~'))
    {
        return Err(err("invalid character in revision"));
    }

    Ok(Version {
        epoch,
        upstream,
        revision,
    })
}

/// Sort weight of a non-digit character: `~` before the end of the string,
/// the end before letters, letters before all other characters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares alternating non-digit and digit runs, as dpkg's `verrevcmp`.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let mut a = a.iter().copied().peekable();
    let mut b = b.iter().copied().peekable();
    while a.peek().is_some() || b.peek().is_some() {
        // Non-digit prefix, character by character.
        while a.peek().is_some_and(|c| !c.is_ascii_digit())
            || b.peek().is_some_and(|c| !c.is_ascii_digit())
        {
            let ac = order(a.peek().copied());
            let bc = order(b.peek().copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            a.next();
            b.next();
        }
        // Digit run, numerically: collect both runs and compare as integers.
        let mut da = Vec::new();
        while let Some(c) = a.next_if(u8::is_ascii_digit) {
            da.push(c);
        }
        let mut db = Vec::new();
        while let Some(c) = b.next_if(u8::is_ascii_digit) {
            db.push(c);
        }
        let ord = cmp_decimal(&da, &db);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
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
                // Plain numeric components.
                ("1.0", "=", "1.0"),
                ("1.0", "<", "2.0"),
                ("2.0", "<", "10.0"),
                ("1.2.3", "<", "1.2.10"),
                ("1.10", ">", "1.9"),
                ("1.0", "<", "1.0.1"),
                ("1", "<", "1.0"),
                // Leading zeros are numerically irrelevant.
                ("1.01", "=", "1.1"),
                ("1.001", "=", "1.1"),
                ("01.0", "=", "1.0"),
                ("1.0", "<", "1.00a"),
                // Huge numbers: no overflow, compared by magnitude.
                ("1.18446744073709551616", ">", "1.18446744073709551615"),
                (
                    "1.99999999999999999999999999",
                    ">",
                    "1.18446744073709551616",
                ),
                ("1.00000000000000000000000001", "=", "1.1"),
                // Epochs.
                ("0:1.0", "=", "1.0"),
                ("1:1.0", ">", "2.0"),
                ("1:1.0", "<", "2:0.1"),
                ("00001:1.0", "=", "1:1.0"),
                ("2147483647:1.0", ">", "2147483646:9"),
                // Revisions; a missing revision equals revision "0".
                ("1.0-1", "<", "1.0-2"),
                ("1.0-0", "=", "1.0"),
                ("1.0-1", ">", "1.0"),
                ("1.0-1ubuntu1", ">", "1.0-1"),
                ("1.0-1", "<", "1.0-1+deb12u1"),
                ("1.0-1+deb11u1", "<", "1.0-1+deb12u1"),
                ("1.0-10", ">", "1.0-9"),
                // The revision starts after the last hyphen.
                ("1.0-rc1-1", ">", "1.0-1"),
                ("1.0-1-1", "<", "1.0-1-2"),
                ("2.30-1-2", "=", "2.30-1-2"),
                // Tilde sorts before everything, including the end.
                ("1.0~rc1", "<", "1.0"),
                ("1.0~rc1", "<", "1.0~rc2"),
                ("1.0~~", "<", "1.0~~a"),
                ("1.0~~a", "<", "1.0~"),
                ("1.0~", "<", "1.0"),
                ("1.0", "<", "1.0a"),
                ("1.0~rc1-1", "<", "1.0-1"),
                ("1.0-1~bpo1", "<", "1.0-1"),
                ("2.6.32~rc3", "<", "2.6.32"),
                // Letters sort before non-letters; ASCII order among letters.
                ("1.0a", "<", "1.0+"),
                ("1.0a", "<", "1.0."),
                ("1.0A", "<", "1.0a"),
                ("1.0+b1", ">", "1.0"),
                ("1.0+dfsg", ">", "1.0"),
                ("1.0+dfsg", "<", "1.0.1"),
                ("1.0.", ">", "1.0"),
                ("1.0.a", ">", "1.0+a"),
                // Letters after a number end that number.
                ("1a", "<", "1b"),
                ("1a2", "<", "1a10"),
                ("1:2.36.1-8+deb11u1", "<", "1:2.36.1-8+deb11u2"),
                ("7.88.1-10+deb12u5", "<", "7.88.1-10+deb12u12"),
                ("3.0.11-1~deb12u2", "<", "3.0.11-1"),
                ("1:9.18.24-1", ">", "9.18.28-1"),
                ("2.7.4+dfsg-1", "<", "2.7.4+dfsg1-1"),
                // Colons may appear in the upstream version after an epoch.
                ("1:1.0:1", ">", "1:1.0"),
                // Surrounding whitespace is ignored.
                (" 1.0 ", "=", "1.0"),
            ],
        );
    }

    #[test]
    fn invalid() {
        check_invalid(
            ECO,
            "1.0",
            &[
                "",
                "   ",
                "1.0 1",
                ":1.0",
                "a:1.0",
                "-1:1.0",
                "1:",
                "2147483648:1.0",
                "99999999999999999999:1.0",
                "1.0-",
                "-1",
                "1:-1",
                "a1.0",
                "~1.0",
                "1.0_1",
                "1.0!",
                "1.0-1:2",
                "1.0-1_2",
                "1.0é",
                "1.0\u{0}",
            ],
        );
    }
}
