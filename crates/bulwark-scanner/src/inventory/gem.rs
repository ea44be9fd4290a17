//! RubyGems installed specifications: `specifications/*.gemspec` and
//! `specifications/default/*.gemspec` (gems bundled with Ruby).
//!
//! These files are Ruby source that `Gem::Specification#to_ruby` generated:
//!
//! ```ruby
//! # stub: rake 13.0.6 ruby lib
//! Gem::Specification.new do |s|
//!   s.name = "rake".freeze
//!   s.version = "13.0.6"
//!   s.licenses = ["MIT".freeze]
//! ```
//!
//! Nothing is evaluated. The parser finds the block variable of
//! `Gem::Specification.new do |s|` and reads one-line assignments of string
//! literals (`"..."`, `'...'`, `%q{...}`, with or without `.freeze`) to
//! `name`, `version`, `platform`, `license` and `licenses`. When the block
//! has no literal name or version, the `# stub: <name> <version> <platform>`
//! header is used. A file with neither is an error.

use super::{InventoryError, Package, PackageKind, check_size, malformed, package, purl};

const FORMAT: &str = "gemspec";

#[derive(Default)]
struct Spec {
    name: Option<String>,
    version: Option<String>,
    platform: Option<String>,
    licenses: Vec<String>,
}

/// Parses one installed `.gemspec`.
pub fn parse_gemspec(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let text = String::from_utf8_lossy(contents);
    let var = block_variable(&text).unwrap_or("s");
    let mut spec = Spec::default();
    let mut stub: Option<(&str, &str, Option<&str>)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# stub:") {
            if stub.is_none() {
                let mut words = rest.split_whitespace();
                if let (Some(n), Some(v)) = (words.next(), words.next()) {
                    stub = Some((n, v, words.next()));
                }
            }
            continue;
        }
        let Some((attr, value)) = assignment(line, var) else {
            continue;
        };
        match attr {
            "name" if spec.name.is_none() => spec.name = string_literal(value).map(|(s, _)| s),
            "version" if spec.version.is_none() => {
                spec.version = string_literal(value).map(|(s, _)| s);
            }
            "platform" if spec.platform.is_none() => {
                spec.platform = string_literal(value).map(|(s, _)| s);
            }
            "license" => spec.licenses.extend(string_literal(value).map(|(s, _)| s)),
            "licenses" => spec.licenses.extend(string_array(value)),
            _ => {}
        }
    }
    if let (None, Some((n, _, _))) = (&spec.name, stub) {
        spec.name = Some(n.to_owned());
    }
    if let (None, Some((_, v, _))) = (&spec.version, stub) {
        spec.version = Some(v.to_owned());
    }
    if let (None, Some((_, _, Some(p)))) = (&spec.platform, stub) {
        spec.platform = Some(p.to_owned());
    }
    let name = spec
        .name
        .filter(|n| is_token(n))
        .ok_or_else(|| malformed(path, FORMAT, "no gem name"))?;
    let version = spec
        .version
        .filter(|v| is_token(v))
        .ok_or_else(|| malformed(path, FORMAT, "no gem version"))?;
    let platform = spec.platform.filter(|p| is_token(p) && p != "ruby");
    let purl = purl::build(
        "gem",
        None,
        &name,
        &version,
        &[("platform", platform.as_deref())],
    );
    let mut p = package(PackageKind::RubyGem, path, name, version, purl);
    p.licenses = spec
        .licenses
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .collect();
    Ok(vec![p])
}

/// `s` in `Gem::Specification.new do |s|`.
fn block_variable(text: &str) -> Option<&str> {
    let start = text.find("Gem::Specification.new")?;
    let rest = text.get(start..)?;
    let line = rest.lines().next()?;
    let open = line.find('|')?;
    let after = line.get(open + 1..)?;
    let close = after.find('|')?;
    let var = after.get(..close)?.trim();
    let ident = !var.is_empty()
        && var.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ident.then_some(var)
}

/// `s.name = <value>` → `("name", "<value>")`.
fn assignment<'a>(line: &'a str, var: &str) -> Option<(&'a str, &'a str)> {
    let rest = line.strip_prefix(var)?.strip_prefix('.')?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let attr = rest.get(..end)?;
    let value = rest.get(end..)?.trim_start().strip_prefix('=')?;
    if value.starts_with(['=', '~']) {
        return None; // `==` or `=~`, not an assignment
    }
    Some((attr, value.trim_start()))
}

/// A Ruby string literal at the start of `s`, optionally followed by
/// `.freeze`; returns the string and the remaining text.
fn string_literal(s: &str) -> Option<(String, &str)> {
    // `body` starts right after the opening delimiter.
    let (body, close, escapes) = if let Some(body) = s.strip_prefix('"') {
        (body, '"', true)
    } else if let Some(body) = s.strip_prefix('\'') {
        (body, '\'', false)
    } else {
        let rest = s.strip_prefix('%')?;
        let (escapes, rest) = if let Some(r) = rest.strip_prefix('q') {
            (false, r)
        } else if let Some(r) = rest.strip_prefix('Q') {
            (true, r)
        } else {
            (true, rest)
        };
        let open = rest.chars().next().filter(char::is_ascii_punctuation)?;
        let close = match open {
            '{' => '}',
            '(' => ')',
            '[' => ']',
            '<' => '>',
            c => c,
        };
        (rest.get(open.len_utf8()..)?, close, escapes)
    };
    let (value, consumed) = quoted(body, close, escapes)?;
    let rest = body.get(consumed..)?;
    let rest = rest.strip_prefix(".freeze").unwrap_or(rest);
    Some((value, rest))
}

/// Reads up to the unescaped `close`; returns the text and the byte length
/// consumed including `close`. `escapes` enables double-quote escapes.
fn quoted(s: &str, close: char, escapes: bool) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == close {
            return Some((out, i + c.len_utf8()));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next()?;
        match (escapes, e) {
            (true, 'n') => out.push('\n'),
            (true, 't') => out.push('\t'),
            (true, other) => out.push(other),
            (false, e) if e == close || e == '\\' => out.push(e),
            (false, e) => {
                out.push('\\');
                out.push(e);
            }
        }
    }
    None
}

/// `["MIT".freeze, "Ruby".freeze]` → `["MIT", "Ruby"]`; stops at the first
/// element that is not a string literal.
fn string_array(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(mut rest) = s.trim_start().strip_prefix('[') else {
        return out;
    };
    loop {
        rest = rest.trim_start();
        let Some((v, after)) = string_literal(rest) else {
            break;
        };
        out.push(v);
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RACK: &str = r#"# -*- encoding: utf-8 -*-
# stub: rack 2.2.8 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.8"

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.metadata = { "bug_tracker_uri" => "https://github.com/rack/rack/issues" } if s.respond_to? :metadata=
  s.require_paths = ["lib".freeze]
  s.authors = ["Leah Neukirchen".freeze]
  s.description = "Rack provides a minimal, modular, and adaptable interface.\n  s.name = \"evil\"\n".freeze
  s.licenses = ["MIT".freeze]
  s.summary = "A modular Ruby webserver interface".freeze

  s.installed_by_version = "3.4.10" if s.respond_to? :installed_by_version
end
"#;

    #[test]
    fn rubygems_generated_spec() {
        let pkgs = parse_gemspec("specifications/rack-2.2.8.gemspec", RACK.as_bytes()).unwrap();
        assert_eq!(pkgs.len(), 1);
        let p = &pkgs[0];
        assert_eq!((p.name.as_str(), p.version.as_str()), ("rack", "2.2.8"));
        assert_eq!(p.licenses, ["MIT"]);
        assert_eq!(p.purl, "pkg:gem/rack@2.2.8");
        assert_eq!(p.ecosystem, crate::version::Ecosystem::RubyGems);
    }

    #[test]
    fn platform_gem_other_variable_and_old_syntax() {
        let spec = "Gem::Specification.new do |spec|\n  spec.name = %q{nokogiri}\n  spec.version = '1.15.4'\n  spec.platform = \"x86_64-linux\".freeze\n  spec.license = \"MIT\".freeze\n  spec.licenses = [\"MIT\".freeze, 'Ruby']\nend\n";
        let pkgs = parse_gemspec("g", spec.as_bytes()).unwrap();
        let p = &pkgs[0];
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("nokogiri", "1.15.4")
        );
        assert_eq!(p.purl, "pkg:gem/nokogiri@1.15.4?platform=x86_64-linux");
        assert_eq!(p.licenses, ["MIT", "MIT", "Ruby"]);
    }

    #[test]
    fn stub_header_fallback() {
        let spec = "# stub: bigdecimal 3.1.1 x86_64-linux lib\nGem::Specification.new do |s|\n  s.name = NAME\nend\n";
        let p = &parse_gemspec("g", spec.as_bytes()).unwrap()[0];
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("bigdecimal", "3.1.1")
        );
        assert_eq!(p.purl, "pkg:gem/bigdecimal@3.1.1?platform=x86_64-linux");
    }

    #[test]
    fn literals() {
        assert_eq!(
            string_literal(r#""a\"b".freeze x"#),
            Some(("a\"b".to_owned(), " x"))
        );
        assert_eq!(string_literal(r"'a\'b\n'"), Some(("a'b\\n".to_owned(), "")));
        assert_eq!(string_literal("%q(a(b)"), Some(("a(b".to_owned(), "")));
        assert_eq!(string_literal("%Q[x]"), Some(("x".to_owned(), "")));
        assert_eq!(string_literal("%{é}"), Some(("é".to_owned(), "")));
        assert_eq!(string_literal("\"unterminated"), None);
        assert_eq!(string_literal("%q"), None);
        assert_eq!(string_literal("%qé"), None);
        assert_eq!(string_literal("\"\\"), None);
        assert_eq!(string_literal(""), None);
        assert_eq!(string_array(r#"["a".freeze, 'b', c]"#), ["a", "b"]);
        assert_eq!(string_array("[\"é\""), ["é"]);
        assert!(string_array("x").is_empty());
    }

    #[test]
    fn assignments() {
        assert_eq!(assignment("s.name = \"x\"", "s"), Some(("name", "\"x\"")));
        assert_eq!(assignment("s.name==x", "s"), None);
        assert_eq!(assignment("s.respond_to? :x", "s"), None);
        assert_eq!(assignment("spec.name = 1", "s"), None);
        assert_eq!(
            block_variable("Gem::Specification.new do |gem|\n"),
            Some("gem")
        );
        assert_eq!(block_variable("Gem::Specification.new do |A|"), None);
        assert_eq!(block_variable("Gem::Specification.new do ||"), None);
        assert_eq!(block_variable("Gem::Specification.new\n|s|"), None);
    }

    #[test]
    fn missing_name_or_version_is_an_error() {
        for bad in [
            &b""[..],
            b"Gem::Specification.new do |s|\nend\n",
            b"s.name = \"x\"\n",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(
                    parse_gemspec("g", bad),
                    Err(InventoryError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
