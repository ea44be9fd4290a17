//! Maven versions, ordered as Maven 3.9's `ComparableVersion` (the order
//! described in the POM reference's "Version Order Specification").
//!
//! A version is split at `.`, `-` and digit/letter transitions into a list of
//! numbers and qualifiers; `-` and transitions open a nested sub-list.
//! Trailing "null" items (0, the empty/`ga`/`final`/`release` qualifier)
//! are dropped. Qualifiers order as
//! `alpha < beta < milestone < rc = cr < snapshot < "" = ga = final =
//! release < sp < (any other, case-insensitively lexical)`, and `a1`, `b1`,
//! `m1` are `alpha-1`, `beta-1`, `milestone-1`.

use std::cmp::Ordering;

use super::{Ecosystem, VersionError, cmp_decimal, is_zero, strip_leading_zeros};

const ECO: Ecosystem = Ecosystem::Maven;

/// Every `-` and digit/letter transition nests a list, and comparison
/// recurses through them; hostile input must not exhaust the stack.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Digits without leading zeros ("" is zero).
    Int(String),
    /// Lower-cased qualifier with aliases applied.
    Str(String),
    List(Vec<Item>),
}

/// Rank of a qualifier; known ones in order, then the rest lexically.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Qualifier<'a> {
    Known(u8),
    Other(Utf16Str<'a>),
}

/// Java compares strings by UTF-16 code units.
#[derive(Debug, PartialEq, Eq)]
struct Utf16Str<'a>(&'a str);

impl PartialOrd for Utf16Str<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Utf16Str<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.encode_utf16().cmp(other.0.encode_utf16())
    }
}

/// Index of the empty qualifier, i.e. a plain release.
const RELEASE: Qualifier<'static> = Qualifier::Known(5);

fn qualifier(s: &str) -> Qualifier<'_> {
    match s {
        "alpha" => Qualifier::Known(0),
        "beta" => Qualifier::Known(1),
        "milestone" => Qualifier::Known(2),
        "rc" => Qualifier::Known(3),
        "snapshot" => Qualifier::Known(4),
        "" => RELEASE,
        "sp" => Qualifier::Known(6),
        other => Qualifier::Other(Utf16Str(other)),
    }
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let ia = parse(a)?;
    let ib = parse(b)?;
    Ok(compare_lists(&ia, &ib))
}

fn string_item(value: &str, followed_by_digit: bool) -> Item {
    let value = match value {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    Item::Str(value.to_owned())
}

fn parse_item(is_digit: bool, buf: &str) -> Item {
    if is_digit {
        let digits = strip_leading_zeros(buf.as_bytes());
        Item::Int(String::from_utf8_lossy(digits).into_owned())
    } else {
        string_item(buf, false)
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(n) => is_zero(n.as_bytes()),
            Item::Str(s) => s.is_empty(),
            Item::List(l) => l.is_empty(),
        }
    }
}

/// Drops trailing null items, looking through trailing sub-lists: `1.0-1`
/// becomes `[1, [1]]`. Maven walks back from the end removing nulls and
/// stops at the first non-null item that is not a list.
fn normalize(list: &mut Vec<Item>) {
    let keep = list
        .iter()
        .rposition(|item| !item.is_null() && !matches!(item, Item::List(_)))
        .map_or(0, |i| i + 1);
    // Filtering the tail at once avoids quadratic `remove` calls on inputs
    // such as `0.0.0…0-1`.
    let tail = list.split_off(keep);
    list.extend(tail.into_iter().filter(|item| !item.is_null()));
}

/// Mirrors `ComparableVersion.parseVersion`. `stack` holds the chain of
/// open lists, outermost first; each list nests inside the previous one as
/// its last item, so they are assembled when parsing ends.
fn parse(input: &str) -> Result<Vec<Item>, VersionError> {
    let err = |reason| ECO.invalid(input, reason);
    if input.is_empty() {
        return Err(err("empty version"));
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("whitespace or control character"));
    }
    // Java treats every Unicode decimal digit as a digit; rather than
    // approximate that, refuse them.
    if input.chars().any(|c| c.is_numeric() && !c.is_ascii_digit()) {
        return Err(err("non-ASCII digit"));
    }

    let version = input.to_lowercase();
    let chars: Vec<(usize, char)> = version.char_indices().collect();
    let slice = |from: usize, to: usize| {
        let start = chars.get(from).map_or(version.len(), |&(b, _)| b);
        let end = chars.get(to).map_or(version.len(), |&(b, _)| b);
        version.get(start..end).unwrap_or_default()
    };

    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let push_list = |stack: &mut Vec<Vec<Item>>| {
        if stack.len() >= MAX_DEPTH {
            return Err(err("too many nested components"));
        }
        stack.push(Vec::new());
        Ok(())
    };
    let mut is_digit = false;
    let mut start = 0;

    for (i, &(_, c)) in chars.iter().enumerate() {
        let Some(list) = stack.last_mut() else { break };
        if c == '.' || c == '-' {
            if i == start {
                list.push(Item::Int(String::new()));
            } else {
                list.push(parse_item(is_digit, slice(start, i)));
            }
            start = i + 1;
            if c == '-' {
                push_list(&mut stack)?;
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                // Letters then digits: `1.0.X1` is treated like `1.0-X-1`.
                if !list.is_empty() {
                    push_list(&mut stack)?;
                }
                if let Some(list) = stack.last_mut() {
                    list.push(string_item(slice(start, i), true));
                }
                start = i;
                push_list(&mut stack)?;
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                list.push(parse_item(true, slice(start, i)));
                start = i;
                push_list(&mut stack)?;
            }
            is_digit = false;
        }
    }
    if chars.len() > start {
        // A trailing qualifier always starts its own sub-list (`.X` is `-X`).
        if !is_digit && stack.last().is_some_and(|l| !l.is_empty()) {
            push_list(&mut stack)?;
        }
        if let Some(list) = stack.last_mut() {
            list.push(parse_item(is_digit, slice(start, chars.len())));
        }
    }

    // Close the lists innermost first, as Maven normalises them.
    let mut inner: Option<Vec<Item>> = None;
    while let Some(mut list) = stack.pop() {
        if let Some(child) = inner.take() {
            list.push(Item::List(child));
        }
        normalize(&mut list);
        inner = Some(list);
    }
    Ok(inner.unwrap_or_default())
}

/// `a` compared with `b`, where `None` is the padding used when one list is
/// shorter than the other.
fn compare_item(a: &Item, b: Option<&Item>) -> Ordering {
    match (a, b) {
        (Item::Int(x), None) => {
            if is_zero(x.as_bytes()) {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Int(x), Some(Item::Int(y))) => cmp_decimal(x.as_bytes(), y.as_bytes()),
        (Item::Int(_), Some(Item::Str(_) | Item::List(_))) => Ordering::Greater,

        (Item::Str(s), None) => qualifier(s).cmp(&RELEASE),
        (Item::Str(_), Some(Item::Int(_) | Item::List(_))) => Ordering::Less,
        (Item::Str(s), Some(Item::Str(t))) => qualifier(s).cmp(&qualifier(t)),

        (Item::List(l), None) => l
            .iter()
            .map(|i| compare_item(i, None))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
        (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
        (Item::List(l), Some(Item::List(r))) => compare_lists(l, r),
    }
}

fn compare_lists(l: &[Item], r: &[Item]) -> Ordering {
    for k in 0..l.len().max(r.len()) {
        let ord = match (l.get(k), r.get(k)) {
            (Some(x), y) => compare_item(x, y),
            (None, Some(y)) => compare_item(y, None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord.is_ne() {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check, check_invalid};
    use super::*;

    /// Each version is less than all that follow it.
    fn check_ascending(versions: &[&str]) {
        let mut cases = Vec::new();
        for (i, a) in versions.iter().enumerate() {
            for b in versions.iter().skip(i + 1) {
                cases.push((*a, "<", *b));
            }
        }
        check(ECO, &cases);
    }

    #[test]
    fn qualifier_order() {
        // Maven's ComparableVersionTest.VERSIONS_QUALIFIER.
        check_ascending(&[
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ]);
    }

    #[test]
    fn number_order() {
        // Maven's ComparableVersionTest.VERSIONS_NUMBER.
        check_ascending(&[
            "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
            "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11",
            "11", "11.a", "11b", "11c", "11m",
        ]);
    }

    #[test]
    fn equalities_and_pairs() {
        check(
            ECO,
            &[
                ("1", "=", "1.0"),
                ("1", "=", "1.0.0"),
                ("1", "=", "1-0"),
                ("1", "=", "1.0-0"),
                ("1a", "=", "1-a"),
                ("1a", "=", "1.0.0-a"),
                ("1.0x", "=", "1-x"),
                ("1ga", "=", "1"),
                ("1release", "=", "1"),
                ("1final", "=", "1"),
                ("1-GA", "=", "1"),
                ("1.0.FINAL", "=", "1"),
                ("1cr", "=", "1rc"),
                ("1a1", "=", "1-alpha-1"),
                ("1b2", "=", "1-beta-2"),
                ("1m3", "=", "1-milestone-3"),
                ("1X", "=", "1x"),
                ("1m3", "=", "1MILESTONE3"),
                (
                    "1-abcdefghijklmnopqrstuvwxyz",
                    "=",
                    "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                ),
                ("2-abc", "=", "2.0.abc"),
                ("2-RC", "=", "2.0.0.RC"),
                ("0000000000000000001", "=", "1"),
                ("0000000000000000000", "=", "0"),
                ("1", "<", "2"),
                ("1.5", "<", "2"),
                ("1.0.1", "<", "1.1"),
                ("1.0-alpha-1", "<", "1.0"),
                ("1.0-alpha-1", "<", "1.0-beta-1"),
                ("1.0-SNAPSHOT", "<", "1.0"),
                ("1.0-alpha-1-SNAPSHOT", "<", "1.0-alpha-1"),
                ("1.0", "<", "1.0-1"),
                ("1.0.0", "<", "1.0-1"),
                ("2.0-1", "<", "2.0.1"),
                ("2.0.1-klm", "<", "2.0.1-lmn"),
                ("2.0.1", "<", "2.0.1-xyz"),
                ("2.0.1-xyz", "<", "2.0.1-123"),
                // MNG-5568, MNG-6572, MNG-6964, MNG-7644.
                ("6.1.0rc3", "<", "6.1.0"),
                ("6.1.0rc3", "<", "6.1H.5-beta"),
                ("6.1.0", "<", "6.1H.5-beta"),
                ("20190126.230843", "<", "1234567890.12345"),
                ("1234567890.12345", "<", "123456789012345.1H.5-beta"),
                (
                    "123456789012345.1H.5-beta",
                    "<",
                    "12345678901234567890.1H.5-beta",
                ),
                ("1-0.alpha", "<", "1"),
                ("1-0.beta", "<", "1"),
                ("1-0.alpha", "<", "1-0.beta"),
                ("1.0.0.RC1", "<", "1.0.0-RC2"),
                ("1.0.0.a1", "<", "1.0.0-a2"),
                // Real-world spellings.
                ("2.12.7.1", ">", "2.12.7"),
                ("5.3.18.RELEASE", "=", "5.3.18"),
                ("5.3.18.RELEASE", "<", "5.3.19"),
                ("1.0.0.Final", "<", "1.0.1.Final"),
                ("2.0.0-M1", "<", "2.0.0-RC1"),
                ("2.0.0-RC1", "<", "2.0.0"),
                ("31.1-jre", ">", "31.0.1-jre"),
                ("31.1-android", "<", "31.1-jre"),
                ("1.2.3-SP1", ">", "1.2.3"),
                ("1.2.3-SP1", "<", "1.2.4"),
                ("99999999999999999999999", ">", "18446744073709551616"),
                ("1.99999999999999999999999", ">", "1.9223372036854775808"),
            ],
        );
    }

    #[test]
    fn invalid() {
        check_invalid(
            ECO,
            "1.0",
            &["", " ", "1.0 ", "1\t0", "1.0\n", "1.\u{0}", "1.\u{663}"],
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "1-".repeat(100_000);
        assert!(ECO.compare(&deep, "1").is_err());
        let deep = "a1".repeat(100_000);
        assert!(ECO.compare(&deep, "1").is_err());
        let ok = "1-".repeat(100);
        assert!(ECO.compare(&ok, "1").is_ok());
    }
}
