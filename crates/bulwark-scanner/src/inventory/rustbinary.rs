//! Rust executables built with `cargo auditable`: the dependency list it
//! embeds (what `cargo audit bin` reads).
//!
//! # Format
//!
//! An ELF section named `.dep-v0` holds a zlib stream of JSON:
//! `{"packages": [{"name", "version", "source", "kind"?, "dependencies"?,
//! "root"?}]}`. `source` is `"crates.io"`, `"git"`, `"local"`,
//! `"registry"` (another registry) or `{"Other": "..."}`; `kind` is
//! `"runtime"` (the default) or `"build"`. Only ELF is read: PE and Mach-O
//! executables are not inventoried (their names, `*.exe`, `*.dylib`, are
//! not even candidates; see [`super::gobinary::is_candidate`]).
//!
//! # Packages
//!
//! Each `crates.io` package with `kind` runtime, as [`PackageKind::Cargo`]
//! (the kind `Cargo.lock` gives, so RustSec and other `crates.io` OSV
//! records match it), purl `pkg:cargo/<name>@<version>`. Skipped:
//!
//! - other sources (git, path, private registry, `Other`): a crate of the
//!   same name from elsewhere is not the crates.io code the advisories
//!   describe, and the inventory has no kind for it;
//! - build dependencies (build scripts, proc macros): they ran on the
//!   build machine and are not in the executable;
//! - entries without a string name and version, or with whitespace in
//!   them.
//!
//! `dependencies` and `root` are not used (the root is recorded like any
//! other package when it comes from crates.io, as after `cargo install`).
//!
//! # Limits
//!
//! The section may hold at most [`MAX_DATA_BYTES`] compressed and decompress
//! to at most [`MAX_DATA_BYTES`]; at most [`MAX_PACKAGES`] packages. A
//! broken section (outside the file, not zlib, not the JSON above, over a
//! limit) is an [`InventoryError`] for that file; an ELF file without the
//! section, or with section headers too broken to look for it, yields no
//! packages.
//!
//! # Compact record
//!
//! As with Go binaries, the image scan keeps only [`extract`]'s record of
//! an executable: [`MAGIC`], one flag byte, then the section's bytes still
//! compressed (flag 0) or an extraction error (flag 1). [`parse`] accepts
//! the record and a whole ELF file.

use std::io::Read;

use serde::Deserialize;

use super::elf::Elf;
use super::{InventoryError, Package, check_size, malformed};

const FORMAT: &str = "cargo-auditable data";

/// Starts a compact record (not found in executables: `0xff` is not
/// valid UTF-8 and no ELF file starts with it).
pub const MAGIC: &[u8; 16] = b"\xffbulwark.dep-v0:";

/// The section `cargo auditable` writes.
const SECTION: &[u8] = b".dep-v0";

/// Largest compressed section, and largest decompressed JSON, accepted
/// (real lists are a few KiB for hundreds of crates).
pub const MAX_DATA_BYTES: usize = 8 * 1024 * 1024;

/// Most packages accepted in one executable.
pub const MAX_PACKAGES: usize = 50_000;

const FLAG_DATA: u8 = 0;
const FLAG_ERROR: u8 = 1;
/// Longest error message carried in a compact record.
const MAX_ERROR_LEN: usize = 300;

/// The compressed audit data of an ELF executable. `Ok(None)`: not ELF,
/// or no `.dep-v0` section.
pub fn find(contents: &[u8]) -> Result<Option<&[u8]>, String> {
    let Some(elf) = Elf::parse(contents)? else {
        return Ok(None);
    };
    // Broken section headers are common in files that are not Rust
    // binaries at all (`sstrip`, truncation): no audit data, no error.
    let Some((offset, size)) = elf.section_range(SECTION).ok().flatten() else {
        return Ok(None);
    };
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if size > MAX_DATA_BYTES {
        return Err(format!(
            "{size}-byte .dep-v0 section exceeds the {MAX_DATA_BYTES}-byte limit"
        ));
    }
    offset
        .checked_add(size)
        .and_then(|end| contents.get(offset..end))
        .map(Some)
        .ok_or_else(|| format!("the {size}-byte .dep-v0 section at {offset} runs past the file"))
}

/// Reduces an executable to the compact record [`parse`] reads back;
/// `None` when it has no audit data. A section that cannot be read gives a
/// record carrying the error, so that parsing it reports the error.
pub fn extract(contents: &[u8]) -> Option<Vec<u8>> {
    let mut out = MAGIC.to_vec();
    match find(contents) {
        Ok(None) => return None,
        Ok(Some(data)) => {
            out.push(FLAG_DATA);
            out.extend_from_slice(data);
        }
        Err(e) => {
            out.push(FLAG_ERROR);
            let cut = e
                .char_indices()
                .nth(MAX_ERROR_LEN)
                .map_or(e.len(), |(i, _)| i);
            out.extend_from_slice(e.get(..cut).unwrap_or_default().as_bytes());
        }
    }
    Some(out)
}

/// Parses an executable, or the compact record [`extract`] makes of one.
/// A file with no audit data (not ELF, not built by `cargo auditable`)
/// yields no packages.
pub fn parse(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let compressed = if let Some(rest) = contents.strip_prefix(MAGIC.as_slice()) {
        match rest.split_first() {
            Some((&FLAG_DATA, data)) => data,
            Some((&FLAG_ERROR, msg)) => {
                return Err(malformed(path, FORMAT, String::from_utf8_lossy(msg)));
            }
            _ => return Err(malformed(path, FORMAT, "unknown compact record")),
        }
    } else {
        match find(contents) {
            Ok(Some(data)) => data,
            Ok(None) => return Ok(Vec::new()),
            Err(e) => return Err(malformed(path, FORMAT, e)),
        }
    };
    let json = inflate(compressed).map_err(|e| malformed(path, FORMAT, e))?;
    packages(path, &json)
}

/// Decompresses at most [`MAX_DATA_BYTES`]; more is an error, not a cut.
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, String> {
    if compressed.len() > MAX_DATA_BYTES {
        return Err(format!(
            "{}-byte .dep-v0 section exceeds the {MAX_DATA_BYTES}-byte limit",
            compressed.len()
        ));
    }
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_DATA_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("zlib: {e}"))?;
    if out.len() > MAX_DATA_BYTES {
        return Err(format!(
            "decompresses to more than the {MAX_DATA_BYTES}-byte limit"
        ));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct VersionInfo {
    packages: Vec<AuditPackage>,
}

/// One entry; unknown keys (`dependencies`, `root`, later additions) are
/// ignored. Fields are loose so that one odd entry skips, not fails.
#[derive(Deserialize)]
struct AuditPackage {
    #[serde(default)]
    name: serde_json::Value,
    #[serde(default)]
    version: serde_json::Value,
    #[serde(default)]
    source: serde_json::Value,
    #[serde(default)]
    kind: serde_json::Value,
}

fn packages(path: &str, json: &[u8]) -> Result<Vec<Package>, InventoryError> {
    let info: VersionInfo =
        serde_json::from_slice(json).map_err(|e| malformed(path, FORMAT, e.to_string()))?;
    if info.packages.len() > MAX_PACKAGES {
        return Err(InventoryError::TooManyEntries {
            path: path.to_owned(),
            limit: MAX_PACKAGES,
        });
    }
    let mut out = Vec::new();
    for p in &info.packages {
        // "CratesIo" is how the format's JSON schema spells the variant.
        let from_crates_io = matches!(p.source.as_str(), Some("crates.io" | "CratesIo"));
        let build_only = p.kind.as_str() == Some("build");
        let (Some(name), Some(version)) = (p.name.as_str(), p.version.as_str()) else {
            continue;
        };
        if !from_crates_io || build_only {
            continue;
        }
        out.extend(super::cargo::crate_package(path, name, version));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::PackageKind;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn record(json: &str) -> Vec<u8> {
        let mut r = MAGIC.to_vec();
        r.push(FLAG_DATA);
        r.extend_from_slice(&zlib(json.as_bytes()));
        r
    }

    #[test]
    fn sources_and_kinds() {
        let json = r#"{"packages":[
            {"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[1,2,3,4,5]},
            {"name":"smallvec","version":"1.6.0","source":"crates.io"},
            {"name":"serde_derive","version":"1.0.100","source":"crates.io","kind":"build"},
            {"name":"libc","version":"0.2.150","source":"CratesIo","kind":"runtime"},
            {"name":"forked","version":"1.0.0","source":"git"},
            {"name":"private","version":"1.0.0","source":"registry"},
            {"name":"odd","version":"1.0.0","source":{"Other":"svn"}},
            {"name":7,"version":"1.0.0","source":"crates.io"},
            {"name":"bad name","version":"1.0.0","source":"crates.io"}
        ]}"#;
        let pkgs = parse("usr/bin/app", &record(json)).unwrap();
        let got: Vec<(&str, &str)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(got, [("smallvec", "1.6.0"), ("libc", "0.2.150")]);
        assert_eq!(pkgs[0].kind, PackageKind::Cargo);
        assert_eq!(pkgs[0].purl, "pkg:cargo/smallvec@1.6.0");
        assert_eq!(pkgs[0].path, "usr/bin/app");
    }

    #[test]
    fn broken_data_is_an_error() {
        for (what, rec) in [
            ("not zlib", {
                let mut r = MAGIC.to_vec();
                r.push(FLAG_DATA);
                r.extend_from_slice(b"plain text");
                r
            }),
            ("not json", record("{")),
            ("no packages key", record("{}")),
            ("packages not a list", record(r#"{"packages":{}}"#)),
            ("unknown flag", {
                let mut r = MAGIC.to_vec();
                r.push(9);
                r
            }),
        ] {
            let err = parse("x", &rec).unwrap_err();
            assert!(
                matches!(err, InventoryError::Malformed { .. }),
                "{what}: {err}"
            );
        }
        let mut err_record = MAGIC.to_vec();
        err_record.push(FLAG_ERROR);
        err_record.extend_from_slice(b"the .dep-v0 section runs past the end of the file");
        let err = parse("x", &err_record).unwrap_err().to_string();
        assert!(err.contains("runs past"), "{err}");
    }

    #[test]
    fn limits() {
        // A zlib bomb: 9 MiB of spaces compress to a few KiB.
        let bomb = zlib(&vec![b' '; MAX_DATA_BYTES + 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let mut r = MAGIC.to_vec();
        r.push(FLAG_DATA);
        r.extend_from_slice(&bomb);
        let err = parse("x", &r).unwrap_err().to_string();
        assert!(err.contains("more than the 8388608-byte limit"), "{err}");
        // Too many packages.
        let one = r#"{"name":"a","version":"1.0.0","source":"crates.io"}"#;
        let json = format!(
            r#"{{"packages":[{}]}}"#,
            vec![one; MAX_PACKAGES + 1].join(",")
        );
        let err = parse("x", &record(&json)).unwrap_err();
        assert!(
            matches!(err, InventoryError::TooManyEntries { limit, .. } if limit == MAX_PACKAGES),
            "{err}"
        );
    }

    #[test]
    fn not_rust() {
        assert_eq!(parse("x", b"#!/bin/sh\n").unwrap(), []);
        assert_eq!(extract(b"#!/bin/sh\n"), None);
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        assert_eq!(parse("x", &elf).unwrap(), []);
        assert_eq!(extract(&elf), None);
    }
}
