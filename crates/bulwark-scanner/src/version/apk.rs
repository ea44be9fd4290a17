//! Alpine package versions, ordered as apk-tools does:
//! `digits{.digits}...{letter}{_suffix{digits}}...{~hash}{-rN}`.

use std::cmp::Ordering;

use super::{Ecosystem, VersionError, cmp_decimal};

const ECO: Ecosystem = Ecosystem::Apk;

/// Token kinds in the order they may appear. When two versions agree up to
/// the point where their token kinds differ, the kind order decides (see
/// [`compare_tokens`]), so the declaration order matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
}

/// Suffixes in ascending order; `None` is the position of "no suffix".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Suffix {
    Alpha,
    Beta,
    Pre,
    Rc,
    None,
    Cvs,
    Svn,
    Git,
    Hg,
    P,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    value: &'a [u8],
    suffix: Suffix,
}

impl Token<'_> {
    const END: Token<'static> = Token {
        kind: Kind::End,
        value: b"",
        suffix: Suffix::None,
    };
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let ta = tokenize(a)?;
    let tb = tokenize(b)?;
    Ok(compare_tokens(&ta, &tb))
}

fn suffix_value(name: &[u8]) -> Option<Suffix> {
    Some(match name {
        b"alpha" => Suffix::Alpha,
        b"beta" => Suffix::Beta,
        b"pre" => Suffix::Pre,
        b"rc" => Suffix::Rc,
        b"cvs" => Suffix::Cvs,
        b"svn" => Suffix::Svn,
        b"git" => Suffix::Git,
        b"hg" => Suffix::Hg,
        b"p" => Suffix::P,
        _ => return None,
    })
}

fn span(s: &[u8], start: usize, pred: impl Fn(u8) -> bool) -> usize {
    let len = s
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&c| pred(c))
        .count();
    start + len
}

/// Splits a version into tokens, enforcing which token may follow which
/// (apk's `apk_version_validate`).
fn tokenize(input: &str) -> Result<Vec<Token<'_>>, VersionError> {
    let err = |reason| ECO.invalid(input, reason);
    let s = input.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = span(s, 0, |c| c.is_ascii_digit());
    if pos == 0 {
        return Err(err("must start with a digit"));
    }
    let mut prev = Kind::InitialDigit;
    tokens.push(Token {
        kind: prev,
        value: s.get(..pos).unwrap_or_default(),
        suffix: Suffix::None,
    });

    while let Some(&c) = s.get(pos) {
        let start = pos;
        let (kind, value, suffix) = match c {
            b'a'..=b'z' => {
                if prev > Kind::Digit {
                    return Err(err("letter out of place"));
                }
                pos += 1;
                (Kind::Letter, s.get(start..pos), Suffix::None)
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if prev > Kind::Digit {
                        return Err(err("dot out of place"));
                    }
                    pos += 1;
                }
                let kind = match prev {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => return Err(err("number out of place")),
                };
                let digits_start = pos;
                pos = span(s, pos, |c| c.is_ascii_digit());
                if pos == digits_start {
                    return Err(err("expected digits"));
                }
                (kind, s.get(digits_start..pos), Suffix::None)
            }
            b'_' => {
                if prev > Kind::SuffixNo {
                    return Err(err("suffix out of place"));
                }
                pos = span(s, pos + 1, |c| c.is_ascii_lowercase());
                let name = s.get(start + 1..pos).unwrap_or_default();
                let suffix = suffix_value(name).ok_or_else(|| err("unknown suffix"))?;
                (Kind::Suffix, Some(name), suffix)
            }
            b'~' => {
                if prev >= Kind::CommitHash {
                    return Err(err("commit hash out of place"));
                }
                pos = span(s, pos + 1, |c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
                if pos == start + 1 {
                    return Err(err("empty commit hash"));
                }
                (Kind::CommitHash, s.get(start + 1..pos), Suffix::None)
            }
            b'-' => {
                if prev >= Kind::RevisionNo {
                    return Err(err("revision out of place"));
                }
                if s.get(pos + 1) != Some(&b'r') {
                    return Err(err("expected -r"));
                }
                pos = span(s, pos + 2, |c| c.is_ascii_digit());
                if pos == start + 2 {
                    return Err(err("empty revision"));
                }
                (Kind::RevisionNo, s.get(start + 2..pos), Suffix::None)
            }
            _ => return Err(err("invalid character")),
        };
        prev = kind;
        tokens.push(Token {
            kind,
            value: value.unwrap_or_default(),
            suffix,
        });
    }
    Ok(tokens)
}

fn compare_token(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        // apk compares a dotted component with a leading zero as a string
        // (so 1.01 < 1.1 and 1.0 < 1.001), otherwise numerically.
        Kind::Digit if a.value.first() == Some(&b'0') || b.value.first() == Some(&b'0') => {
            a.value.cmp(b.value)
        }
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
            cmp_decimal(a.value, b.value)
        }
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        Kind::Letter | Kind::CommitHash | Kind::End => a.value.cmp(b.value),
    }
}

fn compare_tokens(a: &[Token<'_>], b: &[Token<'_>]) -> Ordering {
    let mut k = 0;
    let (ta, tb) = loop {
        let ta = a.get(k).copied().unwrap_or(Token::END);
        let tb = b.get(k).copied().unwrap_or(Token::END);
        if ta.kind != tb.kind || ta.kind == Kind::End {
            break (ta, tb);
        }
        let ord = compare_token(&ta, &tb);
        if ord != Ordering::Equal {
            return ord;
        }
        k += 1;
    };
    if ta.kind == tb.kind {
        return Ordering::Equal;
    }
    // Equal so far: the longer version is newer unless what it continues
    // with is a pre-release suffix; otherwise a token kind that comes
    // earlier in the grammar (e.g. another `.N`) beats a later one.
    if ta.kind == Kind::Suffix && ta.suffix < Suffix::None {
        return Ordering::Less;
    }
    if tb.kind == Kind::Suffix && tb.suffix < Suffix::None {
        return Ordering::Greater;
    }
    tb.kind.cmp(&ta.kind)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check, check_invalid};
    use super::*;

    #[test]
    fn ordering() {
        // Mostly from apk-tools' test/unit/version.data.
        check(
            ECO,
            &[
                ("2.34", ">", "0.1.0_alpha"),
                ("0.1.0_alpha", "=", "0.1.0_alpha"),
                ("0.1.0_alpha", "<", "0.1.3_alpha"),
                ("0.1.0_alpha2", ">", "0.1.0_alpha"),
                ("0.1.0_alpha", "<", "2.2.39-r1"),
                ("1.0.4-r3", "<", "1.0.4-r4"),
                ("1.1", ">", "1.1_alpha1"),
                ("1.2.1", ">", "1.2"),
                ("1.3_alpha2", "<", "1.3_alpha3"),
                ("0.7.0", "<", "0.8_beta1"),
                ("2.3.0b-r1", "<", "2.3.0b-r2"),
                ("0.13_beta4", "<", "0.13_beta5"),
                ("1.2.12.1", "<", "1.2.13"),
                ("3.1_p16", "<", "3.1_p17"),
                ("3.1_p17", ">", "1.06-r6"),
                ("1.06-r6", "<", "006"),
                ("006", ">", "1.0.0"),
                ("2.5.1-r8", "<", "2.5.1a-r1"),
                ("20040401", ">", "2.0.0_rc3-r1"),
                ("3.0.0-r2", "<", "021109-r3"),
                ("3.9_pre20060124", ">", "0.01"),
                ("0.01", "<", "0.06"),
                ("1.1.7", "<", "6b-r7"),
                ("0.10.0", "<", "0.10.1_rc1"),
                ("2.10.1", ">", "02.08.01b"),
                ("1.2.07.8", "<", "1.2.12.04"),
                ("1.2.12.04", "<", "1.2.12.05"),
                ("1.07-r1", "<", "1.07.5"),
                ("0.20070118", "<", "0.20070207_rc1"),
                ("2.9.11_pre20051101-r3", ">", "2.9.11_pre20051101"),
                ("1.0_p10-r0", ">", "1.0_p9-r0"),
                ("0.1.0_alpha_pre2", "<", "0.1.0_alpha"),
                (
                    "1.0.0_pre20191002222144-r0",
                    "<",
                    "1.0.0_pre20210530193627-r0",
                ),
                ("6.0_pre1", "<", "6.0"),
                ("6.0_p1", ">", "6.0"),
                ("8.2.0", "<", "8.2.001"),
                ("8.2.0015", "<", "8.2.002"),
                ("1.0~1234", "<", "1.0~2345"),
                ("1.0~1234-r1", "<", "1.0~2345-r0"),
                ("1.0~1234-r1", ">", "1.0~1234-r0"),
                // Suffix order: pre-releases < none < post-releases.
                ("1.0_alpha", "<", "1.0_beta"),
                ("1.0_beta", "<", "1.0_pre"),
                ("1.0_pre", "<", "1.0_rc"),
                ("1.0_rc", "<", "1.0"),
                ("1.0", "<", "1.0_cvs"),
                ("1.0_cvs", "<", "1.0_svn"),
                ("1.0_svn", "<", "1.0_git"),
                ("1.0_git", "<", "1.0_hg"),
                ("1.0_hg", "<", "1.0_p"),
                ("1.0_rc1", "<", "1.0-r1"),
                ("1.0-r1", "<", "1.0_p1"),
                ("1.0_p1", "<", "1.0a"),
                ("1.0a", "<", "1.0.1"),
                ("1.0z", "<", "1.0.0"),
                ("1.0a_p1", ">", "1.0a"),
                ("1.0-r0", ">", "1.0"),
                ("1.0_alpha1_pre2", "<", "1.0_alpha1"),
                ("1.0_alpha1_p2", ">", "1.0_alpha1"),
                // A commit hash sorts after the plain version, before a
                // revision of it.
                ("1.0~abc", ">", "1.0"),
                ("1.0~abc", ">", "1.0-r1"),
                // Leading zeros: string comparison of dotted parts; the
                // first part is always numeric.
                ("1.01", "<", "1.1"),
                ("1.001", "<", "1.01"),
                ("1.010", ">", "1.01"),
                ("1.0", "<", "1.00"),
                ("01.1", "=", "1.1"),
                ("1.1-r01", "=", "1.1-r1"),
                ("1.0_rc01", "=", "1.0_rc1"),
                // Huge numbers do not overflow.
                ("1.18446744073709551616", ">", "1.18446744073709551615"),
                ("99999999999999999999999", ">", "18446744073709551616"),
                (
                    "1.0-r99999999999999999999999",
                    ">",
                    "1.0-r18446744073709551616",
                ),
            ],
        );
    }

    #[test]
    fn invalid() {
        // apk-tools' list of invalid versions, plus garbage.
        check_invalid(
            ECO,
            "1.0",
            &[
                "",
                "0.1bc",
                "0.1bc1",
                "0.1a1",
                "0.1a.1",
                "0.1_pre2~",
                "0.1_pre2~1234xbcd",
                "0.1_pre2~1234abcd_pre1",
                "0.1_pre2-r1~1234xbcd",
                "0.1_foobar",
                "0.1_foobar1",
                "0.1-pre1.1",
                "0.1-r",
                "0.1-r2_pre1",
                "0.1-r2_p3_pre1",
                "0.1-r2-r3",
                "0.1-r2.1",
                ".1",
                "a",
                "_pre1",
                "-r1",
                "0.1_",
                "0.1_-r0",
                "0.1__alpha",
                "0.1_1_alpha",
                "1.0A",
                "1.0 ",
                "1..0",
                "1.0.",
                "1.0~ABC",
                "v1.0",
                "1.0\u{0}",
            ],
        );
        // And a few valid ones from the same list.
        for v in [
            "1.2",
            "0.1_pre2",
            "0.1_pre2~1234abcd",
            "0.1_p1_pre2",
            "0.1_alpha1_pre2",
            "0.1_git20240101_pre1",
        ] {
            assert!(ECO.compare(v, v).is_ok(), "{v}");
        }
    }
}
