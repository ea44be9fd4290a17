//! Python package versions (PEP 440), parsed with the same leniency and
//! ordered the same way as `packaging.version.Version`.
//!
//! Accepted spellings: optional `v`, `N!` epoch, dotted release, pre-release
//! `a|alpha|b|beta|c|rc|pre|preview` (normalised to a/b/rc), post-release
//! `post|rev|r` or `-N`, `dev`, each optionally preceded and followed by
//! `.`, `-` or `_` with an optional number (implicitly 0), and a `+local`
//! label; case-insensitive, surrounding whitespace ignored.

use std::cmp::Ordering;

use super::{Ecosystem, VersionError, cmp_decimal, is_zero};

const ECO: Ecosystem = Ecosystem::Pep440;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PreKind {
    Alpha,
    Beta,
    Rc,
}

#[derive(Debug)]
struct Version<'a> {
    epoch: &'a [u8],
    release: Vec<&'a [u8]>,
    pre: Option<(PreKind, &'a [u8])>,
    post: Option<&'a [u8]>,
    dev: Option<&'a [u8]>,
    local: Option<Vec<&'a [u8]>>,
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let va = parse(a).map_err(|reason| ECO.invalid(a, reason))?;
    let vb = parse(b).map_err(|reason| ECO.invalid(b, reason))?;
    Ok(compare_versions(&va, &vb))
}

/// Python's `str.isspace`, which the `\s*` around the version pattern uses.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Byte cursor over the version being parsed.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.s.get(self.pos + offset).copied()
    }

    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// Consumes one of `.`, `-`, `_` if present.
    fn separator(&mut self) {
        if matches!(self.peek(), Some(b'.' | b'-' | b'_')) {
            self.pos += 1;
        }
    }

    /// Consumes the first of `words` that follows, ignoring ASCII case. The
    /// order of `words` matters, as in a regex alternation.
    fn word(&mut self, words: &[&'static str]) -> Option<&'static str> {
        let rest = self.s.get(self.pos..).unwrap_or_default();
        let found = words.iter().copied().find(|w| {
            rest.get(..w.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(w.as_bytes()))
        })?;
        self.pos += found.len();
        Some(found)
    }
}

fn parse(input: &str) -> Result<Version<'_>, &'static str> {
    let trimmed = input.trim_matches(is_py_space);
    let mut c = Cursor {
        s: trimmed.as_bytes(),
        pos: 0,
    };
    if matches!(c.peek(), Some(b'v' | b'V')) {
        c.pos += 1;
    }

    let mut epoch: &[u8] = b"";
    let mut first = c.digits();
    if first.is_empty() {
        return Err("expected a release number");
    }
    if c.peek() == Some(b'!') {
        c.pos += 1;
        epoch = first;
        first = c.digits();
        if first.is_empty() {
            return Err("expected a release number after the epoch");
        }
    }
    let mut release = vec![first];
    while c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
        c.pos += 1;
        release.push(c.digits());
    }

    // Each optional segment: try it, and rewind if its keyword is absent.
    let start = c.pos;
    c.separator();
    let pre = match c.word(&["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"]) {
        Some(word) => {
            let kind = match word {
                "alpha" | "a" => PreKind::Alpha,
                "beta" | "b" => PreKind::Beta,
                _ => PreKind::Rc,
            };
            c.separator();
            Some((kind, c.digits()))
        }
        None => {
            c.pos = start;
            None
        }
    };

    let start = c.pos;
    let post = if c.peek() == Some(b'-') && c.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
        // Implicit post-release: `1.0-1`.
        c.pos += 1;
        Some(c.digits())
    } else {
        c.separator();
        if c.word(&["post", "rev", "r"]).is_some() {
            c.separator();
            Some(c.digits())
        } else {
            c.pos = start;
            None
        }
    };

    let start = c.pos;
    c.separator();
    let dev = if c.word(&["dev"]).is_some() {
        c.separator();
        Some(c.digits())
    } else {
        c.pos = start;
        None
    };

    let local = if c.peek() == Some(b'+') {
        c.pos += 1;
        let rest = c.s.get(c.pos..).unwrap_or_default();
        let mut parts = Vec::new();
        for part in rest.split(|&ch| matches!(ch, b'.' | b'-' | b'_')) {
            if part.is_empty() || !part.iter().all(u8::is_ascii_alphanumeric) {
                return Err("invalid local version label");
            }
            parts.push(part);
        }
        c.pos = c.s.len();
        Some(parts)
    } else {
        None
    };

    if c.pos != c.s.len() {
        return Err("unexpected characters");
    }
    Ok(Version {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// The comparable suffix of `packaging`'s sort key:
/// `(pre_rank, pre_n, post_rank, post_n, dev_rank, dev_n)`, where a
/// dev-only release ranks below every pre-release, a final release above
/// rc, and a dev release below the same version without it.
fn suffix_key<'a>(v: &Version<'a>) -> (i8, &'a [u8], u8, &'a [u8], u8, &'a [u8]) {
    let (pre_rank, pre_n) = match (v.pre, v.post, v.dev) {
        (None, None, Some(_)) => (-1, &b""[..]),
        (None, _, _) => (3, &b""[..]),
        (Some((kind, n)), _, _) => (kind as i8, n),
    };
    let (post_rank, post_n) = v.post.map_or((0, &b""[..]), |n| (1, n));
    let (dev_rank, dev_n) = v.dev.map_or((1, &b""[..]), |n| (0, n));
    (pre_rank, pre_n, post_rank, post_n, dev_rank, dev_n)
}

fn compare_versions(a: &Version<'_>, b: &Version<'_>) -> Ordering {
    let ka = suffix_key(a);
    let kb = suffix_key(b);
    cmp_decimal(a.epoch, b.epoch)
        .then_with(|| compare_release(&a.release, &b.release))
        .then_with(|| ka.0.cmp(&kb.0))
        .then_with(|| cmp_decimal(ka.1, kb.1))
        .then_with(|| ka.2.cmp(&kb.2))
        .then_with(|| cmp_decimal(ka.3, kb.3))
        .then_with(|| ka.4.cmp(&kb.4))
        .then_with(|| cmp_decimal(ka.5, kb.5))
        .then_with(|| match (&a.local, &b.local) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(la), Some(lb)) => compare_local(la, lb),
        })
}

/// Releases compare as tuples after dropping trailing zeros (1.0 == 1).
fn compare_release(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    let trim = |r: &[&[u8]]| r.iter().rposition(|p| !is_zero(p)).map_or(0, |i| i + 1);
    let a = a.get(..trim(a)).unwrap_or_default();
    let b = b.get(..trim(b)).unwrap_or_default();
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp_decimal(x, y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Local labels compare segment by segment: numeric segments numerically
/// and above alphanumeric ones, which compare case-insensitively.
fn compare_local(a: &[&[u8]], b: &[&[u8]]) -> Ordering {
    let numeric = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    a.iter()
        .zip(b)
        .map(|(x, y)| match (numeric(x), numeric(y)) {
            (true, true) => cmp_decimal(x, y),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x
                .iter()
                .map(u8::to_ascii_lowercase)
                .cmp(y.iter().map(u8::to_ascii_lowercase)),
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
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
                // PEP 440's summary of ordering within a release.
                ("1.0.dev456", "<", "1.0a1"),
                ("1.0a1", "<", "1.0a2.dev456"),
                ("1.0a2.dev456", "<", "1.0a12.dev456"),
                ("1.0a12.dev456", "<", "1.0a12"),
                ("1.0a12", "<", "1.0b1.dev456"),
                ("1.0b1.dev456", "<", "1.0b2"),
                ("1.0b2", "<", "1.0b2.post345.dev456"),
                ("1.0b2.post345.dev456", "<", "1.0b2.post345"),
                ("1.0b2.post345", "<", "1.0b2-346"),
                ("1.0b2-346", "<", "1.0c1.dev456"),
                ("1.0c1.dev456", "<", "1.0c1"),
                ("1.0c1", "<", "1.0rc2"),
                ("1.0rc2", "<", "1.0c3"),
                ("1.0c3", "<", "1.0"),
                ("1.0", "<", "1.0.post456.dev34"),
                ("1.0.post456.dev34", "<", "1.0.post456"),
                ("1.0.post456", "<", "1.1.dev1"),
                // Trailing zeros and epochs.
                ("1.0", "=", "1"),
                ("1.0.0", "=", "1"),
                ("1.0.0.0.0", "=", "1.0"),
                ("1.0.1", ">", "1"),
                ("1.01", "=", "1.1"),
                ("1.9", "<", "1.10"),
                ("0!1.0", "=", "1.0"),
                ("1!0.1", ">", "2.0"),
                ("1!1.0", "<", "2!0.1"),
                // Alternative spellings normalise to the same version.
                ("1.0alpha1", "=", "1.0a1"),
                ("1.0-alpha-1", "=", "1.0a1"),
                ("1.0.ALPHA.1", "=", "1.0a1"),
                ("1.0beta2", "=", "1.0b2"),
                ("1.0c1", "=", "1.0rc1"),
                ("1.0pre1", "=", "1.0rc1"),
                ("1.0preview1", "=", "1.0rc1"),
                ("1.0a", "=", "1.0a0"),
                ("1.0-post1", "=", "1.0.post1"),
                ("1.0post1", "=", "1.0.post1"),
                ("1.0_post_1", "=", "1.0.post1"),
                ("1.0-1", "=", "1.0.post1"),
                ("1.0rev1", "=", "1.0.post1"),
                ("1.0r1", "=", "1.0.post1"),
                ("1.0.post", "=", "1.0.post0"),
                ("1.0.dev", "=", "1.0.dev0"),
                ("1.0-dev-1", "=", "1.0.dev1"),
                ("1.0DEV1", "=", "1.0.dev1"),
                ("v1.0", "=", "1.0"),
                ("V1.0", "=", "1.0"),
                ("  1.0\n", "=", "1.0"),
                ("1.0a-1", "=", "1.0a1"),
                ("1.0a1-1", "=", "1.0a1.post1"),
                // dev-only releases sort before pre-releases of the same
                // release; a post-release of a pre-release before the next.
                ("1.0.dev1", "<", "1.0a0"),
                ("1.0a1.post1", "<", "1.0a2"),
                ("1.0a1.post1.dev1", "<", "1.0a1.post1"),
                ("1.0.post1.dev1", ">", "1.0"),
                ("1.0rc1", "<", "1.0"),
                ("1.0.post0", ">", "1.0"),
                // Local versions: above the public version; numeric segments
                // above alphanumeric ones; case-insensitive; separators equal.
                ("1.0+local", ">", "1.0"),
                ("1.0+local", "<", "1.0.post1"),
                ("1.0+abc", "<", "1.0+abd"),
                ("1.0+abc", "<", "1.0+1"),
                ("1.0+1", "<", "1.0+2"),
                ("1.0+2", "<", "1.0+10"),
                ("1.0+01", "=", "1.0+1"),
                ("1.0+ubuntu.1", "=", "1.0+ubuntu-1"),
                ("1.0+ubuntu.1", "=", "1.0+ubuntu_1"),
                ("1.0+Ubuntu.1", "=", "1.0+ubuntu.1"),
                ("1.0+ubuntu", "<", "1.0+ubuntu.1"),
                ("1.0+ubuntu.1", "<", "1.0+ubuntu.1.a"),
                ("1.0+1.a", "<", "1.0+1.0"),
                // Huge numbers.
                ("1.18446744073709551616", ">", "1.18446744073709551615"),
                (
                    "99999999999999999999999!1.0",
                    ">",
                    "18446744073709551616!1.0",
                ),
                (
                    "1.0.post99999999999999999999",
                    ">",
                    "1.0.post18446744073709551616",
                ),
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
                "v",
                "1.0.",
                ".1",
                "1..0",
                "1.0-",
                "1.0+",
                "1.0+local.",
                "1.0+loc@l",
                "1.0+.local",
                "1!",
                "!1.0",
                "1.0a1a2",
                "1.0.dev1.post1",
                "1.0rc1.a1",
                "1.0-abc",
                "1.0foo",
                "1.0 1",
                "1.0.x",
                "1.0é",
                "2.0b1pre",
                "1.0.*",
                "latest",
                "1.0+ubuntu+1",
            ],
        );
    }
}
