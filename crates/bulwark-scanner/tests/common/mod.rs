//! Generators of well-formed versions per ecosystem, shared by the property
//! and reference tests.
//!
//! Each ecosystem is a [`Grammar`]: independent parts (epoch, release,
//! separator, qualifier spelling, ...) and a function assembling them. A
//! *family* of versions draws one base set of parts and lets each member
//! redraw some of them, so members share prefixes, differ in one place, or
//! spell the same version differently; that is where comparators go wrong,
//! and where independent random versions rarely land. Alphabets are small
//! for the same reason.

#![allow(dead_code)] // each test binary uses a subset

use std::ops::Range;

use bulwark_scanner::version::Ecosystem;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

pub struct Grammar {
    parts: Vec<BoxedStrategy<String>>,
    assemble: fn(&[String]) -> String,
}

fn one_of(tokens: &'static [&'static str]) -> BoxedStrategy<String> {
    select(tokens).prop_map(str::to_owned).boxed()
}

fn concat(tokens: &'static [&'static str], len: Range<usize>) -> BoxedStrategy<String> {
    vec(select(tokens), len).prop_map(|t| t.concat()).boxed()
}

/// Part `i`, or "" when a grammar asks for a part it does not have.
fn part(p: &[String], i: usize) -> &str {
    p.get(i).map_or("", String::as_str)
}

pub fn dpkg() -> Grammar {
    const UPSTREAM: &[&str] = &[
        "0", "1", "2", "9", "10", "00", "a", "b", "z", "A", "~", "~~", "+", ".",
    ];
    const REVISION: &[&str] = &["0", "1", "2", "a", "b", "~", "+", "."];
    Grammar {
        parts: vec![
            one_of(&["", "", "", "0:", "1:", "2:", "01:"]),
            one_of(&["0", "1", "2", "10", "007"]),
            concat(UPSTREAM, 0..3),
            concat(UPSTREAM, 0..3),
            // Upstream versions may contain hyphens when a revision follows.
            one_of(&["", "", "-1"]),
            one_of(&["", "y", "y"]),
            concat(REVISION, 1..3),
            concat(REVISION, 0..2),
        ],
        assemble: |p| {
            let mut v = format!("{}{}{}", part(p, 0), part(p, 1), part(p, 2)) + part(p, 3);
            if !part(p, 5).is_empty() {
                v += part(p, 4);
                v += "-";
                v += part(p, 6);
                v += part(p, 7);
            }
            v
        },
    }
}

pub fn rpm() -> Grammar {
    const VERSION: &[&str] = &[
        "0", "1", "2", "10", "01", "a", "b", "rc", "~", "^", ".", "_", "+",
    ];
    const RELEASE: &[&str] = &["0", "1", "2", "a", "el8", "~", "^", ".", "_"];
    Grammar {
        parts: vec![
            one_of(&["", "", "", "0:", "1:", "2:", "00:"]),
            concat(VERSION, 1..3),
            // Separators are interchangeable: a cheap respelling.
            one_of(&["", ".", ".", "_", "+"]),
            concat(VERSION, 0..3),
            one_of(&["", "y", "y"]),
            concat(RELEASE, 1..3),
            one_of(&["", ".", ".", "_"]),
            concat(RELEASE, 0..2),
        ],
        assemble: |p| {
            let mut v = p.get(..4).unwrap_or_default().concat();
            if !part(p, 4).is_empty() {
                v = v + "-" + &p.get(5..8).unwrap_or_default().concat();
            }
            v
        },
    }
}

pub fn apk() -> Grammar {
    const DOTTED: &[&str] = &[".0", ".1", ".2", ".10", ".01", ".00", ".001"];
    const SUFFIX: &[&str] = &[
        "", "", "_alpha", "_beta1", "_pre", "_pre2", "_rc1", "_rc10", "_cvs", "_svn", "_git",
        "_hg", "_p", "_p1", "_p01", "_p2",
    ];
    Grammar {
        parts: vec![
            one_of(&["0", "1", "2", "10", "01"]),
            concat(DOTTED, 0..2),
            concat(DOTTED, 0..2),
            one_of(&["", "", "a", "b", "z"]),
            one_of(SUFFIX),
            one_of(SUFFIX),
            one_of(&["", "", "~abc", "~123", "~0"]),
            one_of(&["", "", "-r0", "-r1", "-r2", "-r10", "-r01"]),
        ],
        assemble: |p| p.concat(),
    }
}

const SEMVER_ID: &[&str] = &[
    "", "", "0", "1", "2", "10", "alpha", "beta", "rc", "a-1", "-", "0a", "RC",
];

fn semver_parts() -> Vec<BoxedStrategy<String>> {
    vec![
        one_of(&["", "", "v"]),
        one_of(&["0", "1", "2", "10"]),
        one_of(&["0", "1", "2", "10"]),
        one_of(&["0", "1", "2", "10"]),
        one_of(SEMVER_ID),
        one_of(SEMVER_ID),
        one_of(SEMVER_ID),
        one_of(&["", "", "+build", "+001", "+x.y", "+a-b", "+incompatible"]),
    ]
}

/// `MAJOR.MINOR.PATCH[-ids][+build]` from parts 1..=7 of [`semver_parts`].
fn assemble_semver(p: &[String]) -> String {
    let mut v = format!("{}.{}.{}", part(p, 1), part(p, 2), part(p, 3));
    let ids: Vec<&str> = (4..7)
        .map(|i| part(p, i))
        .filter(|s| !s.is_empty())
        .collect();
    if !ids.is_empty() {
        v = v + "-" + &ids.join(".");
    }
    v + part(p, 7)
}

pub fn semver() -> Grammar {
    Grammar {
        parts: semver_parts(),
        assemble: |p| part(p, 0).to_owned() + &assemble_semver(p),
    }
}

pub fn go() -> Grammar {
    let mut parts = semver_parts();
    parts.extend([
        // 8: which form; 9: module prefix.
        one_of(&[
            "module",
            "module",
            "pseudo",
            "short",
            "toolchain",
            "toolchain",
        ]),
        one_of(&["v", "v", ""]),
        // 10..=12: pseudo-version.
        one_of(&["v0.0.0-", "v1.2.4-0.", "v1.2.4-pre.0.", "0.0.0-", "v1.2.3-"]),
        one_of(&["20191109021931", "20200101000000", "20191109021930"]),
        one_of(&["-daa7c04131f5", "-000000000000"]),
        // 13: shorthand.
        one_of(&["v1", "v1.2", "v0", "1", "1.21", "0", "v1.21"]),
        // 14..=16: toolchain.
        one_of(&["go", "go", ""]),
        one_of(&["1.9", "1.20", "1.21", "1.22"]),
        one_of(&["", ".0", ".1", ".10", "rc1", "rc2", "rc", "beta1", "alpha1"]),
    ]);
    Grammar {
        parts,
        assemble: |p| match part(p, 8) {
            "module" => part(p, 9).to_owned() + &assemble_semver(p),
            "pseudo" => format!("{}{}{}", part(p, 10), part(p, 11), part(p, 12)),
            "short" => part(p, 13).to_owned(),
            _ => format!("{}{}{}", part(p, 14), part(p, 15), part(p, 16)),
        },
    }
}

pub fn pep440() -> Grammar {
    const SEP: &[&str] = &["", "", ".", "-", "_"];
    const NUM: &[&str] = &["", "0", "1", "2", "01", "10"];
    Grammar {
        parts: vec![
            one_of(&["", "", "", "v", "V"]),
            one_of(&["", "", "", "0!", "1!", "01!"]),
            one_of(&["0", "1", "2", "10", "01"]),
            concat(&[".0", ".1", ".2", ".10", ".01"], 0..3),
            one_of(&["", "", ".0", ".0.0"]),
            // 5..=8: pre-release.
            one_of(SEP),
            one_of(&[
                "", "", "a", "alpha", "A", "b", "beta", "c", "rc", "pre", "preview", "RC",
            ]),
            one_of(SEP),
            one_of(NUM),
            // 9..=13: post-release, implicit (`-N`) or spelled out.
            one_of(&["", "", "implicit", "word"]),
            one_of(SEP),
            one_of(&["post", "rev", "r", "POST"]),
            one_of(SEP),
            one_of(NUM),
            // 14..=17: dev release.
            one_of(SEP),
            one_of(&["", "", "dev", "DEV"]),
            one_of(SEP),
            one_of(NUM),
            // 18: local label.
            one_of(&[
                "",
                "",
                "+abc",
                "+1",
                "+01",
                "+ubuntu.1",
                "+ubuntu-1",
                "+UBUNTU_1",
                "+ubuntu",
                "+ubuntu.1.a",
                "+1.a",
                "+1.0",
                "+abd",
                "+2",
                "+10",
            ]),
        ],
        assemble: |p| {
            let mut v: String = p.get(..5).unwrap_or_default().concat();
            if !part(p, 6).is_empty() {
                v += &p.get(5..9).unwrap_or_default().concat();
            }
            match part(p, 9) {
                "implicit" => {
                    v += "-";
                    v += if part(p, 13).is_empty() {
                        "1"
                    } else {
                        part(p, 13)
                    };
                }
                "word" => v += &p.get(10..14).unwrap_or_default().concat(),
                _ => {}
            }
            if !part(p, 15).is_empty() {
                v += &p.get(14..18).unwrap_or_default().concat();
            }
            v + part(p, 18)
        },
    }
}

/// Maven versions of the shapes found in practice: dotted numbers, then
/// qualifiers after `-` or glued to a number (`1.0-alpha-1`, `1.0-rc1`,
/// `2.0.0-beta.1`, `1.0-SNAPSHOT`), then possibly a final dotted or hyphenated
/// qualifier (`1.0.RELEASE`, `1.0.0.Final`, `31.1-jre`).
///
/// `ComparableVersion` is not transitive on some other shapes, because a
/// qualifier compares below any sub-list and a number above either, whatever
/// they hold, and normalisation drops null items in the middle:
/// `a < 0.alpha < - < a`, `1-a < 1--alpha < 1 < 1-a`,
/// `00 < 0.a < 0.alpha.0 < 00`, `10-ga.alpha < 10 < 10.sp < 10-ga.alpha`,
/// `00-0-alpha < 00 < 0-sp.0 < 00-0-alpha`.
pub fn maven() -> Grammar {
    // A zero qualifier (`1-0-alpha`) would be dropped by normalisation,
    // leaving a nested list behind: another intransitive shape.
    const QUALIFIER: &[&str] = &[
        "",
        "",
        "a1",
        "b2",
        "m1",
        "alpha",
        "alpha1",
        "alpha-1",
        "beta",
        "beta.2",
        "milestone",
        "rc",
        "rc1",
        "RC2",
        "cr1",
        "snapshot",
        "SNAPSHOT",
        "sp",
        "sp1",
        "foo",
        "jre",
        "android",
        "1",
        "2",
        "10",
    ];
    Grammar {
        parts: vec![
            one_of(&["0", "1", "2", "10", "00"]),
            concat(&[".0", ".1", ".2", ".10", ".00"], 0..2),
            concat(&[".0", ".1", ".2", ".10", ".00"], 0..2),
            one_of(&["-", "-", ""]),
            one_of(QUALIFIER),
            one_of(&["-", "-", ""]),
            one_of(QUALIFIER),
            one_of(&[
                "",
                "",
                "",
                ".RELEASE",
                ".Final",
                ".GA",
                "-ga",
                ".final",
                ".sp",
                "-SNAPSHOT",
                ".jre",
                "-jre",
            ]),
        ],
        assemble: |p| {
            let mut v = p.get(..3).unwrap_or_default().concat();
            for (sep, q) in [(part(p, 3), part(p, 4)), (part(p, 5), part(p, 6))] {
                if q.is_empty() {
                    continue;
                }
                // Glue only letters to a preceding number (`1.0rc1`).
                let glue = sep.is_empty()
                    && v.ends_with(|c: char| c.is_ascii_digit())
                    && q.starts_with(|c: char| c.is_ascii_alphabetic());
                v += if glue { "" } else { "-" };
                v += q;
            }
            v + part(p, 7)
        },
    }
}

pub fn rubygems() -> Grammar {
    const SEGMENT: &[&str] = &[
        "", "", ".0", ".1", ".2", ".10", ".a", ".b", ".rc", ".pre", ".A", ".0a", ".1b", ".a1",
        ".00",
    ];
    Grammar {
        parts: vec![
            one_of(&["0", "1", "2", "10", "01"]),
            one_of(SEGMENT),
            one_of(SEGMENT),
            one_of(SEGMENT),
            one_of(&["", "", "y"]),
            one_of(&["0", "1", "a", "rc1", "beta", "pre", "x-y"]),
            one_of(&["", "", "0", "1", "a"]),
        ],
        assemble: |p| {
            let mut v = p.get(..4).unwrap_or_default().concat();
            if !part(p, 4).is_empty() {
                v = v + "-" + part(p, 5);
                if !part(p, 6).is_empty() {
                    v = v + "." + part(p, 6);
                }
            }
            v
        },
    }
}

pub fn grammar(eco: Ecosystem) -> Grammar {
    match eco {
        Ecosystem::Dpkg => dpkg(),
        Ecosystem::Rpm => rpm(),
        Ecosystem::Apk => apk(),
        Ecosystem::SemVer => semver(),
        Ecosystem::Pep440 => pep440(),
        Ecosystem::Go => go(),
        Ecosystem::Maven => maven(),
        Ecosystem::RubyGems => rubygems(),
    }
}

/// Related versions: each member keeps each base part (with probability 0.9
/// or 0.6, chosen per member) and redraws the others.
pub fn family(eco: Ecosystem, size: Range<usize>) -> BoxedStrategy<Vec<String>> {
    let Grammar { parts, assemble } = grammar(eco);
    let n = parts.len();
    // Some members stay close to the base (often a respelling of it),
    // others wander off.
    let keep = prop_oneof![
        vec(proptest::bool::weighted(0.9), n),
        vec(proptest::bool::weighted(0.6), n),
    ];
    let member = (keep, parts.clone());
    (parts, vec(member, size))
        .prop_map(move |(base, members)| {
            members
                .into_iter()
                .map(|(keep, fresh)| {
                    let chosen: Vec<String> = keep
                        .iter()
                        .zip(base.iter().zip(fresh))
                        .map(|(&keep, (b, f))| if keep { b.clone() } else { f })
                        .collect();
                    assemble(&chosen)
                })
                .collect()
        })
        .boxed()
}

/// Two related versions.
pub fn pair(eco: Ecosystem) -> BoxedStrategy<(String, String)> {
    family(eco, 2..3)
        .prop_map(|mut f| {
            let b = f.pop().unwrap_or_default();
            let a = f.pop().unwrap_or_default();
            (a, b)
        })
        .boxed()
}
