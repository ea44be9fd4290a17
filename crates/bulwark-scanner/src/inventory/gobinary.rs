//! Go executables: the build information the Go linker embeds (what
//! `go version -m` prints).
//!
//! # Format
//!
//! The linker writes a 32-byte header starting with the magic
//! `\xff Go buildinf:` into the `.go.buildinfo` ELF section: byte 14 is the
//! pointer size, byte 15 flags (bit 0: big-endian, bit 1: strings inline).
//!
//! - Go 1.18+ (inline): after the header, two strings, each a uvarint
//!   length and its bytes: the toolchain version (`go1.21.3`) and the
//!   module info.
//! - Before 1.18 (pointers): at offset 16 and 16 + pointer size, the
//!   virtual addresses of two Go string headers `{data, len}`, which are
//!   resolved through the ELF program headers (`PT_LOAD` segments).
//!
//! The module info is framed by two 16-byte sentinels and has one line per
//! item, tab-separated: `path`, `mod <path> <version> <sum>` (the main
//! module), `dep <path> <version> <sum>`, and `=> <path> <version> <sum>`
//! replacing the line before it.
//!
//! # Packages
//!
//! - The toolchain as `stdlib`, version without `go` (`1.21.3`), as the Go
//!   vulnerability database names it. Development toolchains (`devel ...`)
//!   are not recorded; a suffix such as ` X:boringcrypto` is dropped.
//! - The main module with its version as written (`(devel)` when built
//!   from a checkout).
//! - Every `dep`, with a `=>` replacement taking the replacement's path and
//!   version. A replacement by a local directory (`=> ../local (devel)`)
//!   is code no registry or advisory names; that module is not recorded.
//!
//! Module versions keep their `v` (`v1.2.3`); the Go version ordering
//! accepts both forms.
//!
//! # Which files
//!
//! Go binaries can sit at any path, but a layer is streamed once and file
//! selection sees only the path, before the content. [`is_candidate`] takes
//! extensionless file names outside the trees that hold data rather than
//! programs (`usr/share`, `usr/include`, `etc`, `var`, ...): that covers
//! `bin`, `sbin`, `libexec`, `/opt`, `/app` and binaries at the root
//! (`/manager`). The image scan reads each candidate, keeps only
//! [`extract`]'s compact build-info record (or nothing, for the many that
//! are not Go executables), and drops the executable at once, so memory is
//! one file at a time plus a few KiB per Go binary. This parser accepts the
//! compact record as well as a whole ELF file. The same files are read for
//! Rust `cargo auditable` data ([`super::rustbinary`],
//! [`super::parse_executable`]).

use super::elf::{Elf, read_uint};
use super::{
    InventoryError, Package, PackageKind, check_entries, check_size, malformed, package, purl,
};

const FORMAT: &str = "Go build info";

/// The build-info magic.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";

const HEADER_LEN: usize = 32;
const FLAG_BIG_ENDIAN: u8 = 1;
const FLAG_INLINE: u8 = 2;
/// Not a linker flag: marks a compact record that carries an extraction
/// error (see [`extract`]) instead of strings.
const FLAG_ERROR: u8 = 0x80;

const SENTINEL_START: [u8; 16] = [
    0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6,
];

/// Longest toolchain version string accepted.
const MAX_VERSION_LEN: usize = 1024;
/// Longest module-info string accepted (Kubernetes binaries have ~30 KiB).
const MAX_MODINFO_LEN: usize = 4 * 1024 * 1024;
/// Longest error message carried in a compact record.
const MAX_ERROR_LEN: usize = 300;

/// Whether the file at `path` (normalised, root-relative) may be a Go
/// executable worth reading; see the module docs.
pub fn is_candidate(path: &str) -> bool {
    const DATA_TREES: &[&str] = &[
        "usr/share/",
        "usr/include/",
        "usr/src/",
        "usr/lib/locale/",
        "usr/local/share/",
        "usr/local/include/",
        "etc/",
        "var/",
        "proc/",
        "sys/",
        "dev/",
        "run/",
        "tmp/",
        "boot/",
        "lib/modules/",
        "usr/lib/modules/",
        "usr/lib/firmware/",
        "lib/firmware/",
        "lib/apk/",
    ];
    const DATA_DIRS: &[&str] = &[
        ".git",
        "node_modules",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "zoneinfo",
        "terminfo",
        "locale",
        "man",
        "doc",
        "include",
        "testdata",
    ];
    let (dirs, file) = path.rsplit_once('/').unwrap_or(("", path));
    if file.is_empty() || file.contains('.') || file.len() > 255 {
        return false;
    }
    if DATA_TREES.iter().any(|t| path.starts_with(t)) {
        return false;
    }
    !dirs
        .split('/')
        .any(|d| DATA_DIRS.contains(&d) || d.ends_with(".dist-info") || d.ends_with(".egg-info"))
}

/// Parses a Go executable, or the compact record [`extract`] makes of
/// one. A file with no build info (not Go, or not an ELF file) yields no
/// packages.
pub fn parse(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let info = if contents.starts_with(MAGIC) {
        read_blob(contents, None)
    } else {
        match find(contents) {
            Ok(Some(info)) => Ok(info),
            Ok(None) => return Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
    .map_err(|reason| malformed(path, FORMAT, reason))?;
    packages(path, &info)
}

/// Build info as read from a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.21.3`.
    pub go_version: String,
    /// The module info text, sentinels removed (empty when the binary was
    /// built without module support).
    pub modinfo: String,
}

/// Finds and reads the build info of an ELF executable. `Ok(None)`: not
/// an ELF file, or no build info in it.
pub fn find(contents: &[u8]) -> Result<Option<BuildInfo>, String> {
    let Some(elf) = Elf::parse(contents)? else {
        return Ok(None);
    };
    // Go's own reader looks in `.go.buildinfo`, else at 16-byte aligned
    // offsets of the data; both are done here.
    // Broken section headers are common in non-Go files (`sstrip`,
    // truncation) and say nothing about build info: scan instead.
    let start = elf
        .section(b".go.buildinfo")
        .ok()
        .flatten()
        .filter(|s| contents.get(*s..).is_some_and(|d| d.starts_with(MAGIC)));
    let start = match start {
        Some(s) => s,
        None => {
            let found = (0..contents.len())
                .step_by(16)
                .find(|i| contents.get(*i..).is_some_and(|d| d.starts_with(MAGIC)));
            match found {
                Some(s) => s,
                None => return Ok(None),
            }
        }
    };
    let blob = contents.get(start..).unwrap_or_default();
    read_blob(blob, Some(&elf)).map(Some)
}

/// Reduces an executable to a compact record that [`parse`] reads back:
/// the build-info header and both strings inline. `Ok(None)` when the file
/// has no build info. When the build info is there but broken, the record
/// carries the error, so that parsing it reports the error.
pub fn extract(contents: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    match find(contents) {
        Ok(None) => return None,
        Ok(Some(info)) => {
            out.extend_from_slice(&[8, FLAG_INLINE]);
            out.resize(HEADER_LEN, 0);
            put_string(&mut out, info.go_version.as_bytes());
            let mut modinfo = Vec::with_capacity(info.modinfo.len() + 33);
            if !info.modinfo.is_empty() {
                modinfo.extend_from_slice(&SENTINEL_START);
                modinfo.extend_from_slice(info.modinfo.as_bytes());
                modinfo.extend_from_slice(&[0; 16]);
            }
            put_string(&mut out, &modinfo);
        }
        Err(e) => {
            out.extend_from_slice(&[8, FLAG_ERROR]);
            out.resize(HEADER_LEN, 0);
            let cut = e
                .char_indices()
                .nth(MAX_ERROR_LEN)
                .map_or(e.len(), |(i, _)| i);
            put_string(&mut out, e.get(..cut).unwrap_or_default().as_bytes());
        }
    }
    Some(out)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len() as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s);
}

/// Reads the build info whose header starts `blob`; `elf` resolves
/// pre-1.18 pointers.
fn read_blob(blob: &[u8], elf: Option<&Elf<'_>>) -> Result<BuildInfo, String> {
    let header = blob
        .get(..HEADER_LEN)
        .ok_or("build-info header truncated")?;
    let ptr_size = usize::from(header.get(14).copied().unwrap_or(0));
    let flags = header.get(15).copied().unwrap_or(0);
    let (version, modinfo) = if flags & FLAG_ERROR != 0 {
        let (msg, _) = get_string(blob, HEADER_LEN, MAX_ERROR_LEN * 4)?;
        return Err(String::from_utf8_lossy(msg).into_owned());
    } else if flags & FLAG_INLINE != 0 {
        let (version, next) = get_string(blob, HEADER_LEN, MAX_VERSION_LEN)?;
        let (modinfo, _) = get_string(blob, next, MAX_MODINFO_LEN)?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        let elf = elf.ok_or("pointer-format build info outside its executable")?;
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("pointer size {ptr_size}"));
        }
        let big = flags & FLAG_BIG_ENDIAN != 0;
        let ptr =
            |at: usize| read_uint(blob, at, ptr_size, big).ok_or("build-info header truncated");
        let version_ptr = ptr(16)?;
        let modinfo_ptr = ptr(16 + ptr_size)?;
        let version = elf.go_string(version_ptr, ptr_size, big, MAX_VERSION_LEN)?;
        let modinfo = elf.go_string(modinfo_ptr, ptr_size, big, MAX_MODINFO_LEN)?;
        (version.to_vec(), modinfo.to_vec())
    };
    if version.is_empty() {
        return Err("empty Go version".into());
    }
    // As Go's debug/buildinfo: strip the sentinels, or there is no module
    // info (binaries built without modules).
    let modinfo = if modinfo.len() >= 33 && modinfo.get(modinfo.len() - 17) == Some(&b'\n') {
        modinfo.get(16..modinfo.len() - 16).unwrap_or_default()
    } else {
        &[]
    };
    Ok(BuildInfo {
        go_version: String::from_utf8_lossy(&version).into_owned(),
        modinfo: String::from_utf8_lossy(modinfo).into_owned(),
    })
}

/// A uvarint-prefixed string at `at`; returns it and the offset after it.
fn get_string(b: &[u8], at: usize, max: usize) -> Result<(&[u8], usize), String> {
    let mut len = 0u64;
    let mut pos = at;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(pos).ok_or("build-info string length truncated")?;
        pos += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let len = usize::try_from(len).map_err(|_| "string length overflows")?;
            if len > max {
                return Err(format!("{len}-byte build-info string exceeds {max}"));
            }
            let s = pos
                .checked_add(len)
                .and_then(|end| b.get(pos..end))
                .ok_or_else(|| format!("{len}-byte build-info string truncated"))?;
            return Ok((s, pos + len));
        }
    }
    Err("build-info string length is not a valid varint".into())
}

/// One module line.
struct Module<'a> {
    path: &'a str,
    version: &'a str,
}

fn packages(path: &str, info: &BuildInfo) -> Result<Vec<Package>, InventoryError> {
    let mut out = Vec::new();
    let go = info.go_version.split_whitespace().next().unwrap_or("");
    if let Some(v) = go.strip_prefix("go").filter(|v| is_token(v)) {
        let purl = purl::build("golang", None, "stdlib", v, &[]);
        out.push(package(
            PackageKind::Go,
            path,
            "stdlib".into(),
            v.into(),
            purl,
        ));
    }

    // Each `mod`/`dep` line, possibly replaced by the `=>` line after it.
    let mut pending: Option<Module<'_>> = None;
    let flush = |m: Option<Module<'_>>, out: &mut Vec<Package>| -> Result<(), InventoryError> {
        let Some(m) = m else { return Ok(()) };
        if !is_token(m.path) || !is_token(m.version) {
            return Ok(());
        }
        check_entries(path, out.len().saturating_add(1))?;
        let purl = purl::build("golang", None, m.path, m.version, &[]);
        out.push(package(
            PackageKind::Go,
            path,
            m.path.to_owned(),
            m.version.to_owned(),
            purl,
        ));
        Ok(())
    };
    for line in info.modinfo.lines() {
        let mut fields = line.split('\t');
        let key = fields.next().unwrap_or("");
        let mod_path = fields.next().unwrap_or("");
        let version = fields.next().unwrap_or("");
        match key {
            "mod" | "dep" => {
                flush(pending.take(), &mut out)?;
                pending = Some(Module {
                    path: mod_path,
                    version,
                });
            }
            "=>" => {
                // A directory replacement (`=> ../local (devel)`) is not
                // recorded.
                let local =
                    version.is_empty() || version == "(devel)" || mod_path.starts_with(['.', '/']);
                if pending.is_some() {
                    pending = (!local).then_some(Module {
                        path: mod_path,
                        version,
                    });
                }
            }
            _ => flush(pending.take(), &mut out)?,
        }
    }
    flush(pending.take(), &mut out)?;
    Ok(out)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline_blob(version: &str, modinfo: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[8, FLAG_INLINE]);
        out.resize(HEADER_LEN, 0);
        put_string(&mut out, version.as_bytes());
        let mut m = SENTINEL_START.to_vec();
        m.extend_from_slice(modinfo.as_bytes());
        m.extend_from_slice(&[0xf9; 16]);
        put_string(&mut out, &m);
        out
    }

    #[test]
    fn inline_modinfo_with_replacements() {
        let modinfo = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.7\th1:abc=\ndep\tgithub.com/a/b\tv1.0.0\th1:x=\n=>\tgithub.com/fork/b\tv1.0.1\th1:y=\ndep\texample.com/local\tv0.1.0\t\n=>\t../local\t\t\nbuild\tGOOS=linux\n";
        let pkgs = parse(
            "usr/bin/app",
            &inline_blob("go1.21.3 X:boringcrypto", modinfo),
        )
        .unwrap();
        let got: Vec<(&str, &str)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("stdlib", "1.21.3"),
                ("example.com/app", "(devel)"),
                ("golang.org/x/text", "v0.3.7"),
                ("github.com/fork/b", "v1.0.1"),
            ]
        );
        assert_eq!(pkgs[2].purl, "pkg:golang/golang.org%2Fx%2Ftext@v0.3.7");
        assert_eq!(pkgs[0].ecosystem, crate::version::Ecosystem::Go);
    }

    #[test]
    fn candidates() {
        for (path, want) in [
            ("usr/local/bin/helm", true),
            ("manager", true),
            ("ko-app/server", true),
            ("usr/libexec/docker/cli-plugins/docker-compose", true),
            ("usr/bin/python3.11", false),
            ("usr/share/zoneinfo/UTC", false),
            ("etc/hostname", false),
            ("var/lib/rpm/Packages", false),
            ("usr/include/c++/12/vector", false),
            ("app/.hidden", false),
            ("lib/libc.so.6", false),
        ] {
            assert_eq!(is_candidate(path), want, "{path}");
        }
    }

    #[test]
    fn error_records_round_trip() {
        let mut elf = b"\x7fELF\x02\x01".to_vec();
        elf.resize(64, 0);
        elf.extend_from_slice(MAGIC);
        elf.resize(64 + 20, 0); // header truncated
        let record = extract(&elf).unwrap();
        let err = parse("x", &record).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        assert_eq!(extract(b"#!/bin/sh\n"), None);
        assert_eq!(extract(&elf[..64]), None);
    }
}
