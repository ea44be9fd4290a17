//! Go versions: module versions (`v1.2.3`, pseudo-versions such as
//! `v0.0.0-20191109021931-daa7c04131f5`, `v2.0.0+incompatible`) and Go
//! toolchain releases (`go1.21.3`, `go1.21rc2`).
//!
//! Both are mapped onto SemVer precedence. Module versions follow
//! `golang.org/x/mod/semver` (`v` prefix, `vMAJOR` and `vMAJOR.MINOR`
//! shorthands, build metadata ignored); OSV writes them without the `v`, so
//! it is optional here. Toolchain versions follow the go command's ordering
//! and are embedded the way the Go vulnerability database writes the
//! standard library's versions: `go1.21rc2` is `1.21.0-rc.2`, `go1.21.3` is
//! `1.21.3`. Since Go 1.21, `go1.21` names the language version, which sorts
//! before `go1.21rc1`; it becomes `1.21.0-0`, the lowest pre-release of
//! `1.21.0`, keeping that order. Before 1.21, `go1.20` equals `go1.20.0`.

use std::cmp::Ordering;

use super::semver::{self, SemVer};
use super::{Ecosystem, VersionError, cmp_decimal};

const ECO: Ecosystem = Ecosystem::Go;

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let pa = parse(a)?;
    let pb = parse(b)?;
    Ok(semver::precedence(&pa, &pb))
}

fn parse(input: &str) -> Result<SemVer<'_>, VersionError> {
    let err = |reason| ECO.invalid(input, reason);
    let s = input.as_bytes();
    if let Some(toolchain) = s.strip_prefix(b"go") {
        return parse_toolchain(toolchain).map_err(err);
    }
    if let Some(module) = s.strip_prefix(b"v") {
        return semver::parse(module, true).map_err(err);
    }
    // Without a prefix: OSV's SemVer form first, then a bare toolchain
    // version such as `1.21rc2` (which is not valid SemVer).
    semver::parse(s, true)
        .or_else(|_| parse_toolchain(s))
        .map_err(|_| err("neither a module nor a toolchain version"))
}

/// A toolchain number: digits without a leading zero (the go command's
/// `cutInt`).
fn number(s: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let len = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (digits, rest) = s.split_at_checked(len).unwrap_or((s, &[]));
    match digits {
        [] => Err("expected a number"),
        [b'0', _, ..] => Err("number with a leading zero"),
        _ => Ok((digits, rest)),
    }
}

/// `MAJOR[.MINOR[.PATCH]]` or `MAJOR.MINOR(KIND)[N]` with KIND in `a-z`
/// (`alpha`, `beta`, `rc`); pre-releases of patch releases do not exist.
fn parse_toolchain(s: &[u8]) -> Result<SemVer<'_>, &'static str> {
    let (major, rest) = number(s)?;
    if rest.is_empty() {
        return Ok(SemVer {
            major,
            minor: b"0",
            patch: b"0",
            pre: Vec::new(),
        });
    }
    let rest = rest.strip_prefix(b".").ok_or("expected '.' after major")?;
    let (minor, rest) = number(rest)?;
    if rest.is_empty() {
        // From 1.21 on, `1.N` is the language version, below `1.NrcM`. The
        // go command tests only the minor number, whatever the major.
        let pre: Vec<&[u8]> = if cmp_decimal(minor, b"21").is_ge() {
            vec![b"0"]
        } else {
            Vec::new()
        };
        return Ok(SemVer {
            major,
            minor,
            patch: b"0",
            pre,
        });
    }
    if let Some(rest) = rest.strip_prefix(b".") {
        let (patch, rest) = number(rest)?;
        if !rest.is_empty() {
            return Err("unexpected characters after patch");
        }
        return Ok(SemVer {
            major,
            minor,
            patch,
            pre: Vec::new(),
        });
    }
    let kind_len = rest.iter().take_while(|c| c.is_ascii_lowercase()).count();
    let (kind, rest) = rest.split_at_checked(kind_len).unwrap_or((rest, &[]));
    if kind.is_empty() {
        return Err("expected a pre-release kind");
    }
    let mut pre = vec![kind];
    if !rest.is_empty() {
        let (n, rest) = number(rest)?;
        if !rest.is_empty() {
            return Err("unexpected characters after pre-release");
        }
        pre.push(n);
    }
    Ok(SemVer {
        major,
        minor,
        patch: b"0",
        pre,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{check, check_invalid};
    use super::*;

    #[test]
    fn module_versions() {
        check(
            ECO,
            &[
                // golang.org/x/mod/semver semantics.
                ("v1.0.0", "<", "v1.0.1"),
                ("v1.2.3", "=", "1.2.3"),
                ("v1", "=", "v1.0.0"),
                ("v1.2", "=", "v1.2.0"),
                ("v1.2", "<", "v1.2.1"),
                ("v1.9.0", "<", "v1.10.0"),
                ("v2.0.0+incompatible", "=", "v2.0.0"),
                ("v2.0.0+incompatible", ">", "v1.99.99"),
                ("v2.0.1+incompatible", ">", "v2.0.0+incompatible"),
                ("2.0.0+incompatible", "=", "v2.0.0+incompatible"),
                ("v1.0.0-rc.1", "<", "v1.0.0"),
                ("v1.0.0-alpha", "<", "v1.0.0-alpha.1"),
                ("v1.0.0-beta.2", "<", "v1.0.0-beta.11"),
                ("v1.0.0-beta.11", "<", "v1.0.0-rc.1"),
                // Pseudo-versions order as pre-releases.
                (
                    "v0.0.0-20191109021931-daa7c04131f5",
                    "<",
                    "v0.0.0-20200101000000-000000000000",
                ),
                ("v0.0.0-20191109021931-daa7c04131f5", "<", "v0.0.1"),
                ("v0.0.0-20191109021931-daa7c04131f5", "<", "v0.1.0"),
                ("v1.2.4-0.20191109021931-daa7c04131f5", ">", "v1.2.3"),
                ("v1.2.4-0.20191109021931-daa7c04131f5", "<", "v1.2.4"),
                ("v1.2.4-0.20191109021931-daa7c04131f5", "<", "v1.2.4-pre"),
                (
                    "v1.2.4-pre.0.20191109021931-daa7c04131f5",
                    ">",
                    "v1.2.4-pre",
                ),
                (
                    "v1.2.4-pre.0.20191109021931-daa7c04131f5",
                    "<",
                    "v1.2.4-pre.1",
                ),
                (
                    "0.0.0-20230101000000-abcdef012345",
                    "<",
                    "0.0.0-20230102000000-000000000000",
                ),
                // OSV "introduced: 0".
                ("0", "<", "0.0.1"),
                ("0", "=", "v0.0.0"),
                ("0", "<", "0.0.1-20191109021931-daa7c04131f5"),
                ("0", ">", "0.0.0-20191109021931-daa7c04131f5"),
            ],
        );
    }

    #[test]
    fn toolchain_versions() {
        check(
            ECO,
            &[
                // The go command's order (go/version): 1.21 < 1.21rc1 < 1.21.0.
                ("go1.21", "<", "go1.21rc1"),
                ("go1.21rc1", "<", "go1.21rc2"),
                ("go1.21rc2", "<", "go1.21.0"),
                ("go1.21.0", "<", "go1.21.1"),
                ("go1.21.3", "<", "go1.21.10"),
                ("go1.21.10", "<", "go1.22rc1"),
                ("go1.9beta1", "<", "go1.9beta2"),
                ("go1.9beta2", "<", "go1.9rc1"),
                ("go1.9rc1", "<", "go1.9"),
                ("go1.9alpha1", "<", "go1.9beta1"),
                ("go1.9rc", "<", "go1.9rc0"),
                // Before 1.21, 1.N and 1.N.0 are the same release.
                ("go1.20", "=", "go1.20.0"),
                ("go1", "=", "go1.0.0"),
                ("go1.2", "<", "go1.10"),
                // Bare toolchain syntax and the vulnerability database's
                // SemVer form agree.
                ("1.21rc2", "=", "go1.21rc2"),
                ("go1.21rc2", "=", "1.21.0-rc.2"),
                ("go1.21rc2", "=", "v1.21.0-rc.2"),
                ("go1.21.3", "=", "1.21.3"),
                ("go1.9beta1", "=", "1.9.0-beta.1"),
                ("go1.21.3", "<", "1.21.4"),
                ("go1.22.0", ">", "1.21.99"),
                ("go1.21", "<", "1.21.0-rc.1"),
                ("go1.21", "=", "1.21.0-0"),
                ("go1.21.0", "=", "1.21.0"),
                ("go2", ">", "go1.999.999"),
                ("go2.0", "=", "go2.0.0"),
                (
                    "go1.99999999999999999999999",
                    ">",
                    "go1.18446744073709551616",
                ),
            ],
        );
    }

    #[test]
    fn invalid() {
        check_invalid(
            ECO,
            "v1.0.0",
            &[
                "",
                "v",
                "go",
                "v01.0.0",
                "v1.0.0-01",
                "v1.2-pre",
                "v1.2+meta",
                "v1.0.0.0",
                "vv1.0.0",
                "v1.21rc2",
                "go1.21.3rc1",
                "go1.21RC1",
                "go1.021",
                "go1.21rc01",
                "go1.21rc1x",
                "go1.21-rc1",
                "go 1.21",
                "go1.21.3 X:boringcrypto",
                "devel",
                "1.0.0 ",
                "latest",
            ],
        );
    }
}
