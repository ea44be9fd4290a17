//! Robustness of distro detection and every inventory parser: arbitrary
//! bytes, mutated real fixtures and token soups never panic, and whatever
//! comes back is well-formed. Plus an os-release quoting round trip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use bulwark_scanner::distro::{self, parse_os_release};
use bulwark_scanner::inventory::{Package, Parser, parser_for};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

const PARSERS: [Parser; 9] = [
    Parser::DpkgStatus,
    Parser::DpkgStatusD,
    Parser::ApkInstalled,
    Parser::PythonMetadata,
    Parser::NpmLock,
    Parser::NpmPackageJson,
    Parser::CargoLock,
    Parser::ComposerLock,
    Parser::Gemspec,
];

/// Each parser with a real fixture in its format.
const FIXTURES: [(Parser, &str); 9] = [
    (Parser::DpkgStatus, "dpkg/status"),
    (Parser::DpkgStatusD, "dpkg/status.d/libssl3"),
    (Parser::ApkInstalled, "apk/installed"),
    (
        Parser::PythonMetadata,
        "python/traitlets-5.15.0.dist-info/METADATA",
    ),
    (Parser::NpmLock, "npm/v1/package-lock.json"),
    (
        Parser::NpmPackageJson,
        "npm/node_modules/abbrev/package.json",
    ),
    (Parser::CargoLock, "cargo/v3/Cargo.lock"),
    (Parser::ComposerLock, "composer/composer.lock"),
    (Parser::Gemspec, "gem/specifications/rake-13.0.6.gemspec"),
];

fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_packages(pkgs: &[Package], parser: Parser) -> Result<(), TestCaseError> {
    for p in pkgs {
        prop_assert!(!p.name.trim().is_empty(), "empty name from {:?}", parser);
        prop_assert!(
            !p.version.trim().is_empty(),
            "empty version from {:?}",
            parser
        );
        prop_assert!(p.purl.starts_with("pkg:"), "{}", p.purl);
        prop_assert!(
            !p.purl
                .contains(|c: char| c.is_whitespace() || c.is_control()),
            "unencoded purl {:?}",
            p.purl
        );
        prop_assert_eq!(p.kind, parser.kind());
    }
    Ok(())
}

fn run_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    for parser in PARSERS {
        if let Ok(pkgs) = parser.parse("fuzz", bytes, None) {
            check_packages(&pkgs, parser)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

const INSERTS: &[&[u8]] = &[
    b"\n",
    b"\n\n",
    b" ",
    b":",
    b"\"",
    b"'",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"=",
    b"(",
    b")",
    b"\xff",
    b"\0",
    b"node_modules/",
    b"Status: install ok installed\n",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                vec(any::<u8>(), 1..8),
                select(INSERTS).prop_map(<[u8]>::to_vec),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..256).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = data.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Flip(i, b) if len > 0 => data[i % len] ^= b | 1,
            Mutation::Flip(..) => {}
            Mutation::Insert(i, bytes) => {
                let i = at(*i);
                data.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = at(*i);
                let end = (i + n).min(len);
                data.drain(i..end);
            }
            Mutation::Truncate(i) => data.truncate(at(*i)),
            Mutation::Duplicate(i, n) => {
                let i = at(*i);
                let end = (i + n).min(len);
                let chunk = data[i..end].to_vec();
                data.splice(end..end, chunk);
            }
        }
    }
    data
}

/// Fragments of every format, shuffled into near-valid inputs.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    const TOKENS: &[&str] = &[
        "\n",
        "\n\n",
        " ",
        "Package: a\n",
        "Version: 1.0-1\n",
        "Status: install ok installed\n",
        "Source: s (1)\n",
        "Source: (\n",
        "Architecture: amd64\n",
        "P:a\n",
        "V:1-r0\n",
        "o:x\n",
        "L:MIT\n",
        "Name: x\n",
        "License: a\n",
        "        b\n",
        "Classifier: License :: X\n",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"packages\":",
        "\"dependencies\":",
        "\"packages-dev\":",
        "\"node_modules/a\":",
        "\"node_modules/@s/b\":",
        "\"\":",
        "\"version\":\"1.0.0\"",
        "\"name\":\"@x/y\"",
        "\"link\":true",
        "\"license\":[\"MIT\"]",
        "\"lockfileVersion\":3",
        "null",
        "[[package]]\n",
        "name = \"a\"\n",
        "version = \"1.0.0\"\n",
        "source = \"registry+x\"\n",
        "version = 4\n",
        "Gem::Specification.new do |s|\n",
        "s.name = \"rack\".freeze\n",
        "s.version = %q{1}\n",
        "s.licenses = [\"MIT\".freeze, \n",
        "# stub: a 1 ruby\n",
        "\\",
        "'",
        "\"",
        "%q(",
        "\u{e9}",
    ];
    vec(select(TOKENS), 0..64).prop_map(|t| t.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        run_all(&bytes)?;
    }

    #[test]
    fn token_soup_never_panics(bytes in token_soup()) {
        run_all(&bytes)?;
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..FIXTURES.len(),
        muts in vec(mutation(), 1..8),
    ) {
        let (parser, rel) = FIXTURES[which];
        let data = apply(fixture(rel), &muts);
        if let Ok(pkgs) = parser.parse(rel, &data, None) {
            check_packages(&pkgs, parser)?;
        }
    }

    #[test]
    fn routing_never_panics_and_ignores_leading_slash(path in "[a-zA-Z0-9_./@-]{0,80}") {
        let routed = parser_for(&path);
        prop_assert_eq!(parser_for(&format!("/{path}")), routed);
        prop_assert_eq!(parser_for(&format!("./{path}")), routed);
    }

    #[test]
    fn routing_arbitrary_unicode(path in any::<String>()) {
        let _ = parser_for(&path);
    }

    #[test]
    fn detection_never_panics(
        os in vec(any::<u8>(), 0..512),
        alpine in vec(any::<u8>(), 0..64),
        redhat in vec(any::<u8>(), 0..128),
        debian in vec(any::<u8>(), 0..64),
    ) {
        let lookup = |p: &str| -> Option<Vec<u8>> {
            match p {
                "etc/os-release" => Some(os.clone()),
                "etc/alpine-release" => Some(alpine.clone()),
                "etc/redhat-release" => Some(redhat.clone()),
                "etc/debian_version" => Some(debian.clone()),
                _ => None,
            }
        };
        if let Some(d) = distro::detect(&lookup) {
            let _ = d.feed_key();
            let _ = d.purl_qualifier();
        }
        // Each fallback alone, too.
        for only in ["etc/alpine-release", "etc/redhat-release", "etc/debian_version"] {
            let one = |p: &str| if p == only { lookup(p) } else { None };
            if let Some(d) = distro::detect(&one) {
                let _ = d.feed_key();
            }
        }
    }

    #[test]
    fn os_release_double_quoting_round_trips(
        pairs in vec(("[A-Z_][A-Z0-9_]{0,12}", "[^\n\r]{0,40}"), 0..8),
    ) {
        let mut file = String::from("# generated\n");
        for (k, v) in &pairs {
            let mut quoted = String::new();
            for c in v.chars() {
                if matches!(c, '"' | '\\' | '$' | '`') {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            file.push_str(&format!("{k}=\"{quoted}\"\n"));
        }
        let got = parse_os_release(file.as_bytes());
        prop_assert_eq!(got, pairs);
    }
}
