//! Java archives: `*.jar`, `*.war`, `*.ear` (zip files).
//!
//! # Packages
//!
//! - Each `META-INF/maven/<group>/<artifact>/pom.properties` (written by
//!   Maven and Gradle's maven-publish into the archives they build, and
//!   kept by shading) is one Maven package `groupId:artifactId` at
//!   `version`, the name form OSV's `Maven` ecosystem uses. Entries missing
//!   one of the three keys are skipped.
//! - Archives inside the archive (`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`,
//!   an ear's modules: any entry named `*.jar`, `*.war`, `*.ear`) are read
//!   the same way, down to [`MAX_DEPTH`] levels of nesting.
//! - Only an archive with no `pom.properties` of its own falls back to its
//!   `META-INF/MANIFEST.MF`: name from `Bundle-SymbolicName` (before any
//!   `;`) or `Implementation-Title`, version from `Bundle-Version` or
//!   `Implementation-Version`. A manifest does not name a Maven group, and
//!   [`Package`] has no confidence field, so such a package is marked as
//!   lower confidence by its name: the bare artifact, no `group:` (purl
//!   `pkg:maven/<name>@<version>` with no namespace). It is listed (SBOM)
//!   but never matches a Maven advisory by a guessed group.
//!
//! Packages are deduplicated per file by (name, version). Each package's
//! [`Package::path`] is the outer archive's path, as for every parser.
//!
//! # Hostile archives
//!
//! Nothing is extracted to disk and entry names are only compared, never
//! used as paths, so `../` names do nothing. Reads are bounded: at most
//! [`MAX_ZIP_ENTRIES`] entries per archive, [`MAX_META_BYTES`] per
//! properties or manifest file (read through a limit, whatever size the
//! entry claims), [`MAX_NESTED_BYTES`] per nested archive, and
//! [`MAX_TOTAL_BYTES`] decompressed in total per outer file; going over the
//! total (a zip bomb) or the entry count is an error. A nested archive that
//! is not a readable zip, or one deeper than [`MAX_DEPTH`], is skipped.
//!
//! The image scan keeps only [`extract`]'s compact record of an archive
//! (its properties and manifest files), not the archive, so that images
//! full of jars do not fill memory; this parser reads both forms.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read, Seek};

use super::{
    InventoryError, Package, PackageKind, check_entries, check_size, malformed, package, purl,
};

const FORMAT: &str = "Java archive";

/// Levels of archives inside the outer one that are read.
pub const MAX_DEPTH: usize = 3;
/// Entries in one zip (outer or nested).
pub const MAX_ZIP_ENTRIES: usize = 100_000;
/// Bytes read of one `pom.properties` or `MANIFEST.MF`.
pub const MAX_META_BYTES: u64 = 64 * 1024;
/// Bytes read of one nested archive (it is held in memory to be opened).
pub const MAX_NESTED_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes decompressed in total while reading one outer archive.
pub const MAX_TOTAL_BYTES: u64 = 256 * 1024 * 1024;

/// Starts a compact record; see [`extract`].
const RECORD_MAGIC: &[u8] = b"\0bulwark-java-record-v1\0";

/// Whether `path` names a Java archive.
pub fn is_archive(path: &str) -> bool {
    let lower = |ext: &str| {
        path.len() > ext.len()
            && path
                .get(path.len() - ext.len()..)
                .is_some_and(|e| e.eq_ignore_ascii_case(ext))
    };
    let file = path.rsplit('/').next().unwrap_or(path);
    !file.starts_with('.') && (lower(".jar") || lower(".war") || lower(".ear"))
}

/// One file found in an archive: which archive (`""` for the outer one,
/// else `BOOT-INF/lib/x.jar!/...`), the entry name, its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    archive: String,
    name: String,
    data: Vec<u8>,
}

/// Parses a Java archive, or the compact record [`extract`] makes of one.
pub fn parse_archive(path: &str, contents: &[u8]) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let metas = if let Some(record) = contents.strip_prefix(RECORD_MAGIC) {
        decode(record)
    } else {
        collect(contents)
    }
    .map_err(|reason| malformed(path, FORMAT, reason))?;
    packages(path, &metas)
}

/// Reduces an archive to a compact record holding only what [`parse_archive`]
/// reads (properties and manifests, of nested archives too), or the reason
/// it cannot be read.
pub fn extract(contents: &[u8]) -> Vec<u8> {
    let mut out = RECORD_MAGIC.to_vec();
    match collect(contents) {
        Ok(metas) => {
            out.push(0);
            for m in metas {
                put(&mut out, m.archive.as_bytes());
                put(&mut out, m.name.as_bytes());
                put(&mut out, &m.data);
            }
        }
        Err(e) => {
            out.push(1);
            put(&mut out, e.as_bytes());
        }
    }
    out
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

fn take(record: &mut &[u8]) -> Result<Vec<u8>, String> {
    let len = record
        .get(..8)
        .and_then(|l| <[u8; 8]>::try_from(l).ok())
        .map(u64::from_le_bytes)
        .ok_or("record truncated")?;
    let len = usize::try_from(len).map_err(|_| "record length overflows")?;
    let data = record
        .get(8..)
        .and_then(|r| r.get(..len))
        .ok_or("record truncated")?
        .to_vec();
    *record = record.get(8 + len..).unwrap_or_default();
    Ok(data)
}

fn decode(record: &[u8]) -> Result<Vec<Meta>, String> {
    let (status, mut record) = record.split_first().ok_or("record truncated")?;
    if *status != 0 {
        let msg = take(&mut record)?;
        return Err(String::from_utf8_lossy(&msg).into_owned());
    }
    let mut out = Vec::new();
    while !record.is_empty() {
        let archive = take(&mut record)?;
        let name = take(&mut record)?;
        let data = take(&mut record)?;
        out.push(Meta {
            archive: String::from_utf8_lossy(&archive).into_owned(),
            name: String::from_utf8_lossy(&name).into_owned(),
            data,
        });
    }
    Ok(out)
}

/// Reads the properties and manifests of `contents` and of the archives
/// inside it.
fn collect(contents: &[u8]) -> Result<Vec<Meta>, String> {
    let mut budget = MAX_TOTAL_BYTES;
    let mut out = Vec::new();
    let archive = zip::ZipArchive::new(Cursor::new(contents))
        .map_err(|e| format!("not a readable zip: {e}"))?;
    walk(archive, "", 0, &mut budget, &mut out)?;
    Ok(out)
}

fn walk<R: Read + Seek>(
    mut archive: zip::ZipArchive<R>,
    prefix: &str,
    depth: usize,
    budget: &mut u64,
    out: &mut Vec<Meta>,
) -> Result<(), String> {
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(format!(
            "{}more than {MAX_ZIP_ENTRIES} zip entries",
            shown(prefix)
        ));
    }
    for i in 0..archive.len() {
        let Ok(mut entry) = archive.by_index(i) else {
            continue; // unsupported compression, bad local header
        };
        if !entry.is_file() {
            continue;
        }
        let name = entry.name().to_owned();
        let is_meta = is_pom_properties(&name) || name.eq_ignore_ascii_case("META-INF/MANIFEST.MF");
        let nested = is_archive(&name) && depth < MAX_DEPTH;
        if !is_meta && !nested {
            continue;
        }
        let cap = if is_meta {
            MAX_META_BYTES
        } else {
            MAX_NESTED_BYTES
        };
        let limit = cap.min(*budget);
        let mut data =
            Vec::with_capacity(usize::try_from(entry.size().min(limit).min(1 << 20)).unwrap_or(0));
        // One byte over the limit tells a cut-off read from an exact fit.
        let read = Read::by_ref(&mut entry)
            .take(limit.saturating_add(1))
            .read_to_end(&mut data);
        if read.is_err() {
            continue; // corrupt deflate data: skip the entry
        }
        let got = data.len() as u64;
        if got > limit {
            if limit == *budget {
                return Err(format!(
                    "more than {MAX_TOTAL_BYTES} bytes decompressed (zip bomb?) at {}{name}",
                    shown(prefix)
                ));
            }
            continue; // one oversized properties file or nested archive
        }
        *budget -= got;
        if is_meta {
            out.push(Meta {
                archive: prefix.to_owned(),
                name,
                data,
            });
        } else if let Ok(inner) = zip::ZipArchive::new(Cursor::new(data.as_slice())) {
            let inner_prefix = format!("{prefix}{name}!/");
            walk(inner, &inner_prefix, depth + 1, budget, out)?;
        }
    }
    Ok(())
}

fn shown(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}: ")
    }
}

/// `META-INF/maven/<group>/<artifact>/pom.properties`.
fn is_pom_properties(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("META-INF/maven/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [g, a, "pom.properties"] if !g.is_empty() && !a.is_empty())
}

fn packages(path: &str, metas: &[Meta]) -> Result<Vec<Package>, InventoryError> {
    let mut out: Vec<Package> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut push = |out: &mut Vec<Package>, name: String, version: String, purl: String| {
        if seen.insert((name.clone(), version.clone())) {
            out.push(package(PackageKind::Maven, path, name, version, purl));
        }
    };
    // Group by archive, in order of first appearance.
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&Meta>> = HashMap::new();
    for m in metas {
        groups
            .entry(m.archive.as_str())
            .or_insert_with(|| {
                order.push(m.archive.as_str());
                Vec::new()
            })
            .push(m);
    }
    for archive in order {
        let in_archive = groups.get(archive).map(Vec::as_slice).unwrap_or_default();
        let mut any_pom = false;
        for m in in_archive.iter().filter(|m| is_pom_properties(&m.name)) {
            any_pom = true;
            check_entries(path, out.len().saturating_add(1))?;
            let text = String::from_utf8_lossy(&m.data);
            let props = properties(&text);
            let get = |k: &str| {
                props
                    .iter()
                    .rev()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| *v)
                    .filter(|v| is_token(v))
            };
            let (Some(g), Some(a), Some(v)) = (get("groupId"), get("artifactId"), get("version"))
            else {
                continue;
            };
            let purl = purl::build("maven", Some(g), a, v, &[]);
            push(&mut out, format!("{g}:{a}"), v.to_owned(), purl);
        }
        if any_pom {
            continue;
        }
        let Some(manifest) = in_archive.iter().find(|m| !is_pom_properties(&m.name)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&manifest.data);
        let attrs = manifest_attributes(&text);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let name = get("Bundle-SymbolicName")
            .map(|n| n.split(';').next().unwrap_or("").trim())
            .or_else(|| get("Implementation-Title"))
            .filter(|n| is_token(n));
        let version = get("Bundle-Version")
            .or_else(|| get("Implementation-Version"))
            .filter(|v| is_token(v));
        if let (Some(n), Some(v)) = (name, version) {
            check_entries(path, out.len().saturating_add(1))?;
            let purl = purl::build("maven", None, n, v, &[]);
            push(&mut out, n.to_owned(), v.to_owned(), purl);
        }
    }
    Ok(out)
}

/// `key=value` / `key: value` lines of a Java properties file (no line
/// continuations or escapes: pom.properties has none).
fn properties(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l.get(..at)?.trim(), l.get(at + 1..)?.trim()))
        })
        .collect()
}

/// The main section of a manifest: `Name: value` lines, continuation lines
/// starting with one space; stops at the first blank line.
fn manifest_attributes(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(cont) = line.strip_prefix(' ') {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(cont);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    for (_, v) in &mut out {
        *v = v.trim().to_owned();
    }
    out
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        for (p, want) in [
            ("app/app.jar", true),
            ("x/Y.WAR", true),
            ("a.ear", true),
            ("lib/.jar", false),
            ("jar", false),
            ("a.jar.sha1", false),
        ] {
            assert_eq!(is_archive(p), want, "{p}");
        }
    }

    #[test]
    fn pom_paths() {
        assert!(is_pom_properties(
            "META-INF/maven/org.slf4j/slf4j-api/pom.properties"
        ));
        assert!(!is_pom_properties(
            "META-INF/maven/org.slf4j/pom.properties"
        ));
        assert!(!is_pom_properties("META-INF/maven//a/pom.properties"));
        assert!(!is_pom_properties("x/META-INF/maven/g/a/pom.properties"));
    }

    #[test]
    fn manifest_continuations() {
        let m = "Manifest-Version: 1.0\r\nBundle-SymbolicName: org.example.very.long.na\r\n me;singleton:=true\r\nBundle-Version: 1.2.3\r\n\r\nName: x\r\nBundle-Version: 9\r\n";
        let attrs = manifest_attributes(m);
        assert!(attrs.contains(&(
            "Bundle-SymbolicName".into(),
            "org.example.very.long.name;singleton:=true".into()
        )));
        assert!(!attrs.iter().any(|(_, v)| v == "9"));
    }

    #[test]
    fn records_round_trip_and_truncation() {
        let metas = vec![Meta {
            archive: "lib/a.jar!/".into(),
            name: "META-INF/maven/g/a/pom.properties".into(),
            data: b"groupId=g\nartifactId=a\nversion=1\n".to_vec(),
        }];
        let mut rec = RECORD_MAGIC.to_vec();
        rec.push(0);
        for m in &metas {
            put(&mut rec, m.archive.as_bytes());
            put(&mut rec, m.name.as_bytes());
            put(&mut rec, &m.data);
        }
        assert_eq!(decode(&rec[RECORD_MAGIC.len()..]).unwrap(), metas);
        let cut = &rec[RECORD_MAGIC.len()..rec.len() - 3];
        assert!(decode(cut).is_err());
        let pkgs = parse_archive("x.jar", &rec).unwrap();
        assert_eq!(pkgs[0].name, "g:a");
        assert_eq!(pkgs[0].purl, "pkg:maven/g/a@1");
        let err = parse_archive("x.jar", &extract(b"PK\x03\x04 not a zip")).unwrap_err();
        assert!(err.to_string().contains("not a readable zip"), "{err}");
    }
}
