//! Repository names, tags and references, per the distribution spec's grammar.

use std::fmt;

use crate::digest::{Digest, DigestError};

/// Longest repository name accepted; clients commonly cap host + name at 255 bytes.
pub const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid repository name {0:?}")]
    Name(String),
    #[error("invalid tag {0:?}")]
    Tag(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > MAX_NAME_LEN || !s.split('/').all(valid_path_component) {
            return Err(NameError::Name(s.chars().take(MAX_NAME_LEN + 1).collect()));
        }
        Ok(RepoName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first path component: the project (namespace) a repository belongs to.
    pub fn project(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    // Each iteration reads one alnum run, then an optional separator that must be followed by alnum.
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let b = s.as_bytes();
        let first_ok = b
            .first()
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
        let rest_ok = b
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || b.len() > MAX_TAG_LEN {
            return Err(NameError::Tag(s.chars().take(MAX_TAG_LEN + 1).collect()));
        }
        Ok(Tag(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manifest reference: a tag or a digest. Anything containing ':' is a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            Ok(Reference::Digest(Digest::parse(s)?))
        } else {
            Ok(Reference::Tag(Tag::parse(s)?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/alpine",
            "team-a/app/api",
            "a.b_c__d---e/f0",
            "x/y/z/w/v/u",
            "0",
            "my--repo",
        ] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a___b", "a..b", "-a", "a-", "a_", "a._b", "a b", "a/B",
            "a:b", "a/../b", "é",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert!(RepoName::parse(&"a".repeat(255)).is_ok());
        assert!(RepoName::parse(&"a".repeat(256)).is_err());
        assert_eq!(
            RepoName::parse("team-a/app/api").unwrap().project(),
            "team-a"
        );
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0.0", "_x", "A-b.c_D", &"a".repeat(128)] {
            assert!(Tag::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".a", "-a", "a/b", "a:b", "a+b", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(matches!(Reference::parse(d), Ok(Reference::Digest(_))));
        assert!(matches!(
            Reference::parse("sha256:abc"),
            Err(NameError::Digest(_))
        ));
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,3}"
    }

    proptest! {
        #[test]
        fn generated_names_are_accepted(parts in prop::collection::vec(component(), 1..5)) {
            let name = parts.join("/");
            prop_assume!(name.len() <= MAX_NAME_LEN);
            let parsed = RepoName::parse(&name).unwrap();
            prop_assert_eq!(parsed.as_str(), name.as_str());
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,300}") {
            let _ = RepoName::parse(&s);
            let _ = Tag::parse(&s);
            let _ = Reference::parse(&s);
            let _ = Digest::parse(&s);
        }

        #[test]
        fn accepted_names_match_the_grammar(s in "[a-z0-9._/-]{1,40}") {
            let re_ok = reference_grammar(&s);
            prop_assert_eq!(RepoName::parse(&s).is_ok(), re_ok, "{}", s);
        }
    }

    // Independent, slower formulation of the grammar to cross-check the hand-written scanner.
    fn reference_grammar(s: &str) -> bool {
        s.split('/').all(|c| {
            let mut tokens = Vec::new();
            let mut cur = String::new();
            let mut is_sep = false;
            for ch in c.chars() {
                let sep = matches!(ch, '.' | '_' | '-');
                if sep != is_sep && !cur.is_empty() {
                    tokens.push((is_sep, std::mem::take(&mut cur)));
                }
                is_sep = sep;
                cur.push(ch);
            }
            if !cur.is_empty() {
                tokens.push((is_sep, cur));
            }
            if tokens.is_empty() || tokens[0].0 || tokens[tokens.len() - 1].0 {
                return false;
            }
            tokens.iter().filter(|t| t.0).all(|(_, sep)| {
                sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-')
            })
        }) && s.len() <= MAX_NAME_LEN
    }
}
