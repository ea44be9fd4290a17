//! RFC 822-style field blocks, shared by the dpkg database (deb822) and
//! Python core metadata (email headers).
//!
//! A block is a run of non-blank lines; blocks are separated by one or more
//! blank lines. In deb822 ([`Syntax::Deb822`]) a whitespace-only line is
//! blank, as dpkg accepts; in email headers ([`Syntax::Email`]) only an
//! empty line is, and a whitespace-only line continues the previous field
//! (setuptools writes multi-line `License` values that way). Each field is `Name: value`; a line that
//! starts with a space or tab continues the previous field. Lines starting
//! with `#` are comments. Lines that are neither (no colon, empty name, or a
//! continuation with nothing to continue) are skipped.

/// One block of fields, in file order.
#[derive(Debug, Default)]
pub(crate) struct Stanza<'a> {
    fields: Vec<(&'a str, String)>,
}

impl<'a> Stanza<'a> {
    /// The first value of field `name` (case-insensitive), trimmed; `None`
    /// when absent. Multi-line values join their lines with `\n`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of field `name` (case-insensitive), in order.
    pub(crate) fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.fields
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Which lines separate blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Deb822,
    Email,
}

/// Iterates over the blocks of `text`.
pub(crate) fn stanzas(text: &str, syntax: Syntax) -> Stanzas<'_> {
    Stanzas {
        lines: text.split('\n'),
        syntax,
    }
}

pub(crate) struct Stanzas<'a> {
    lines: std::str::Split<'a, char>,
    syntax: Syntax,
}

impl<'a> Iterator for Stanzas<'a> {
    type Item = Stanza<'a>;

    fn next(&mut self) -> Option<Stanza<'a>> {
        let mut stanza = Stanza::default();
        // Whether the last line read was a field that may be continued.
        let mut open = false;
        for line in self.lines.by_ref() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let blank = match self.syntax {
                Syntax::Deb822 => line.trim().is_empty(),
                Syntax::Email => line.is_empty(),
            };
            if blank {
                if stanza.fields.is_empty() {
                    continue;
                }
                return Some(stanza);
            }
            if line.starts_with([' ', '\t']) {
                if let (true, Some((_, value))) = (open, stanza.fields.last_mut()) {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            open = false;
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.is_empty() || name.contains(char::is_whitespace) {
                continue;
            }
            stanza.fields.push((name, value.trim().to_owned()));
            open = true;
        }
        (!stanza.fields.is_empty()).then_some(stanza)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_fields_and_continuations() {
        let text = "\n\nPackage: a\r\nDescription: short\n long line\n .\n more\nversion:1\n\n \t\nPackage: b\nbad line\n continuation of nothing\n: no name\nbad name: x\n# comment\nX-Y:  spaced  \n";
        let all: Vec<Stanza<'_>> = stanzas(text, Syntax::Deb822).collect();
        assert_eq!(all.len(), 2);
        let a = &all[0];
        assert_eq!(a.get("package"), Some("a"));
        assert_eq!(a.get("Description"), Some("short\nlong line\n.\nmore"));
        assert_eq!(a.get("Version"), Some("1"));
        let b = &all[1];
        assert_eq!(b.get("Package"), Some("b"));
        assert_eq!(b.get("X-Y"), Some("spaced"));
        assert_eq!(b.fields.len(), 2);
    }

    #[test]
    fn repeated_fields() {
        let s = stanzas("Classifier: a\nClassifier: b\n", Syntax::Email)
            .next()
            .unwrap();
        assert_eq!(s.get_all("classifier").collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn empty_input() {
        assert_eq!(stanzas("", Syntax::Deb822).count(), 0);
        assert_eq!(stanzas("\n\n  \n", Syntax::Deb822).count(), 0);
    }

    #[test]
    fn email_whitespace_lines_continue() {
        let text = "License: first\n        \n        second\nName: x\n\nBody: no\n";
        let s = stanzas(text, Syntax::Email).next().unwrap();
        assert_eq!(s.get("License"), Some("first\n\nsecond"));
        assert_eq!(s.get("Name"), Some("x"));
        assert_eq!(s.get("Body"), None);
        let d = stanzas(text, Syntax::Deb822).next().unwrap();
        assert_eq!(d.get("License"), Some("first"));
        assert_eq!(d.get("Name"), None);
    }
}
