//! Package URL formatting (<https://github.com/package-url/purl-spec>).
//!
//! Builds the canonical string form: `pkg:type/namespace/name@version?qualifiers`.
//! Namespace segments, name, version and qualifier values are UTF-8
//! percent-encoded except for unreserved characters (`A-Z a-z 0-9 - . _ ~`)
//! and `:`, which the specification says must not be encoded. Qualifiers
//! are sorted by key and empty values dropped.

use std::fmt::Write;

pub(crate) fn build(
    ty: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, Option<&str>)],
) -> String {
    let mut out = String::with_capacity(16 + name.len() + version.len());
    out.push_str("pkg:");
    out.push_str(ty);
    out.push('/');
    if let Some(ns) = namespace {
        for segment in ns.split('/').filter(|s| !s.is_empty()) {
            encode_into(&mut out, segment);
            out.push('/');
        }
    }
    encode_into(&mut out, name);
    if !version.is_empty() {
        out.push('@');
        encode_into(&mut out, version);
    }
    let mut qs: Vec<(&str, &str)> = qualifiers
        .iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    qs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (i, (k, v)) in qs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        encode_into(&mut out, v);
    }
    out
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "openssl",
                "3.0.11-1~deb12u2",
                &[("distro", Some("debian-12")), ("arch", Some("amd64"))]
            ),
            "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            build("npm", Some("@angular"), "core", "12.3.1", &[]),
            "pkg:npm/%40angular/core@12.3.1"
        );
        assert_eq!(
            build(
                "deb",
                Some("debian"),
                "tzdata",
                "1:2024a+b1",
                &[("arch", None)]
            ),
            "pkg:deb/debian/tzdata@1:2024a%2Bb1"
        );
        assert_eq!(
            build(
                "gem",
                None,
                "nokogiri",
                "1.15.4",
                &[("platform", Some("x86_64-linux"))]
            ),
            "pkg:gem/nokogiri@1.15.4?platform=x86_64-linux"
        );
        assert_eq!(
            build("x", Some("/a//b/"), "n m", "", &[("k", Some(""))]),
            "pkg:x/a/b/n%20m"
        );
        assert_eq!(build("x", None, "\u{e9}", "1", &[]), "pkg:x/%C3%A9@1");
    }
}
