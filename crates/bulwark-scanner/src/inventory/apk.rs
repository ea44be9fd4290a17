//! The apk database, `lib/apk/db/installed` (Alpine, Wolfi, Chainguard).
//!
//! Packages are blocks separated by blank lines; each line is a one-letter
//! key, a colon and a value (`P:musl`, `V:1.2.4-r2`). Read keys: `P` name,
//! `V` version, `A` architecture, `o` origin (the source package, kept in
//! [`Package::source_name`](super::Package::source_name) with the package
//! version as `source_version`), `L` license. File-list keys (`F`, `R`,
//! `a`, `Z`, ...) are ignored. Blocks without `P` or `V` are skipped, as are
//! lines that are not `key:value`. The file holds only installed packages.

use crate::distro::{Distro, DistroId};

use super::{
    InventoryError, Package, PackageKind, check_entries, check_size, non_empty, package, purl,
};

#[derive(Default)]
struct Block<'a> {
    name: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    origin: Option<&'a str>,
    license: Option<&'a str>,
    any: bool,
}

/// Parses `lib/apk/db/installed`.
pub fn parse_installed(
    path: &str,
    contents: &[u8],
    distro: Option<&Distro>,
) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let text = String::from_utf8_lossy(contents);
    let namespace = match distro.map(|d| &d.id) {
        Some(DistroId::Other(id)) if !id.is_empty() => id.as_str(),
        _ => "alpine",
    };
    let distro_qualifier = distro.and_then(Distro::purl_qualifier);
    let ctx = Ctx {
        path,
        namespace,
        distro: distro_qualifier.as_deref(),
    };

    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut block = Block::default();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if block.any {
                seen = seen.saturating_add(1);
                check_entries(path, seen)?;
                out.extend(ctx.finish(&block));
            }
            block = Block::default();
            continue;
        }
        let mut chars = line.chars();
        let (Some(key), Some(':')) = (chars.next(), chars.next()) else {
            continue;
        };
        let value = chars.as_str().trim();
        block.any = true;
        match key {
            'P' => block.name = Some(value),
            'V' => block.version = Some(value),
            'A' => block.arch = Some(value),
            'o' => block.origin = Some(value),
            'L' => block.license = Some(value),
            _ => {}
        }
    }
    if block.any {
        check_entries(path, seen.saturating_add(1))?;
        out.extend(ctx.finish(&block));
    }
    Ok(out)
}

struct Ctx<'a> {
    path: &'a str,
    namespace: &'a str,
    distro: Option<&'a str>,
}

impl Ctx<'_> {
    fn finish(&self, b: &Block<'_>) -> Option<Package> {
        let name = b.name.filter(|n| is_token(n))?;
        let version = b.version.filter(|v| is_token(v))?;
        let arch = b.arch.filter(|a| is_token(a));
        let purl = purl::build(
            "apk",
            Some(self.namespace),
            name,
            version,
            &[("arch", arch), ("distro", self.distro)],
        );
        let mut p = package(
            PackageKind::Apk,
            self.path,
            name.to_owned(),
            version.to_owned(),
            purl,
        );
        if let Some(origin) = b.origin.filter(|o| is_token(o)) {
            p.source_name = Some(origin.to_owned());
            p.source_version = Some(version.to_owned());
        }
        p.licenses.extend(b.license.and_then(non_empty));
        Some(p)
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = "\
C:Q1Gq8MQ+Dlr6rPfEQm2sE4gWvZZUc=
P:musl
V:1.2.4-r2
A:x86_64
S:407061
I:647168
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Ter\u{e4}s <timo.teras@iki.fi>
t:1698152398
c:a1ba1fcd9bd3c3b6a6e4c4e8b2e4e3d09c0c5e50
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1+Hd2mpW7bBSDsp41Nq37p2eQYLY=
R:libc.musl-x86_64.so.1

C:Q1x4fWbcVlCY4jYMDpx4f4kl+vqPE=
P:libcrypto3
V:3.1.4-r1
A:x86_64
S:1787556
I:4227072
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1698834245
c:e8a6ab3bf0ac8a5d6dd0bf1df5a8c4d28d4c0a3c
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3
F:lib
R:libcrypto.so.3

P:no-version
A:x86_64

V:1.0-r0
";

    #[test]
    fn parses_blocks() {
        let alpine = crate::distro::from_os_release(b"ID=alpine\nVERSION_ID=3.18.4\n").unwrap();
        let pkgs =
            parse_installed("lib/apk/db/installed", INSTALLED.as_bytes(), Some(&alpine)).unwrap();
        assert_eq!(pkgs.len(), 2);
        let musl = &pkgs[0];
        assert_eq!(
            (musl.name.as_str(), musl.version.as_str()),
            ("musl", "1.2.4-r2")
        );
        assert_eq!(musl.licenses, ["MIT"]);
        assert_eq!(
            musl.purl,
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.4"
        );
        assert_eq!(musl.ecosystem, crate::version::Ecosystem::Apk);
        let crypto = &pkgs[1];
        assert_eq!(crypto.source_name.as_deref(), Some("openssl"));
        assert_eq!(crypto.source_version.as_deref(), Some("3.1.4-r1"));
    }

    #[test]
    fn last_block_without_trailing_newline_and_crlf() {
        let pkgs = parse_installed("f", b"P:a\r\nV:1-r0\r\n\r\nP:b\r\nV:2-r0", None).unwrap();
        let got: Vec<(&str, &str)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(got, [("a", "1-r0"), ("b", "2-r0")]);
        assert_eq!(pkgs[0].purl, "pkg:apk/alpine/a@1-r0");
    }

    #[test]
    fn wolfi_namespace() {
        let wolfi = crate::distro::from_os_release(b"ID=wolfi\nVERSION_ID=20230201\n").unwrap();
        let pkgs = parse_installed("f", b"P:glibc\nV:2.38-r5\n", Some(&wolfi)).unwrap();
        assert_eq!(
            pkgs[0].purl,
            "pkg:apk/wolfi/glibc@2.38-r5?distro=wolfi-20230201"
        );
    }

    #[test]
    fn hostile_input() {
        for input in [
            &b""[..],
            b"\xff:\xff",
            b"P\nV",
            b"::::\n\n",
            b"P:\nV:\n",
            b"P:a b\nV:1\n",
            "P:\u{e9}\nV:\u{e9}".as_bytes(),
        ] {
            let pkgs = parse_installed("f", input, None).unwrap();
            assert!(
                pkgs.iter()
                    .all(|p| is_token(&p.name) && is_token(&p.version))
            );
        }
    }
}
