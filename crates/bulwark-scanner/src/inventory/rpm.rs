//! The rpm database: `var/lib/rpm/rpmdb.sqlite` and
//! `usr/lib/sysimage/rpm/rpmdb.sqlite` (RHEL/UBI 9+, Fedora 33+, Rocky,
//! Alma, openSUSE), and the Berkeley DB `var/lib/rpm/Packages` of older
//! releases.
//!
//! # sqlite
//!
//! Each row of the `Packages` table holds one installed package's rpm
//! header blob, which is parsed here ([`parse_header`]): tags `NAME`,
//! `VERSION`, `RELEASE`, `EPOCH`, `ARCH`, `SOURCERPM`, `LICENSE` and
//! `MODULARITYLABEL`. The version is `[epoch:]version-release` (epoch
//! omitted when absent or 0, as Red Hat advisories write it); the source
//! package is `SOURCERPM` without `-<version>-<release>.src.rpm`, with the
//! binary's EVR as its version. `gpg-pubkey` pseudo-packages (imported
//! signing keys) are skipped, as are headers missing a name, version or
//! release. A header that is malformed (bad counts, offsets outside the
//! blob, unterminated strings) makes the whole file an error.
//!
//! The database arrives as bytes. The SQLite library is the maintained way
//! to read its B-tree, but `rusqlite` 0.32 (the newest release that shares
//! `libsqlite3-sys` 0.30 with the workspace's `sqlx`, which the `links`
//! rule requires) can only load a database from memory through an
//! `unsafe` constructor, and the workspace forbids unsafe code. So the
//! bytes are written to a private temporary file (removed on drop), which
//! is opened read-only. The WAL flag in the file header is cleared first so
//! SQLite does not look for `-wal`/`-shm` companions (committed rows live in
//! the main file once rpm checkpoints, which it does on close).
//!
//! # Berkeley DB
//!
//! RHEL/CentOS 7 and 8, Amazon Linux 2 and older SUSE keep the same header
//! blobs as the values of a Berkeley DB hash database,
//! `var/lib/rpm/Packages`. No maintained Rust crate reads that format, so
//! [`super::bdb`] reads the part of it rpm uses. When an image holds both
//! (a leftover `Packages` beside `rpmdb.sqlite` after rpm converted its
//! database), the image scan reads only `rpmdb.sqlite`, the one rpm uses.
//!
//! Package URLs: `pkg:rpm/<vendor>/<name>@<version>-<release>?arch=..&epoch=..&distro=..`
//! with the vendor from the distribution (`redhat`, `fedora`, `rocky`, ...).

use std::io::Write;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::distro::{Distro, DistroId};

use super::{
    InventoryError, Package, PackageKind, bdb, check_entries, check_size, malformed, non_empty,
    package, purl,
};

const FORMAT: &str = "rpm database";
const BDB_FORMAT: &str = "rpm database (Berkeley DB)";
const HEADER_FORMAT: &str = "rpm header";

/// rpm's own bounds (`HEADER_TAGS_MAX`, `HEADER_DATA_MAX` in rpm's
/// `header_internal.h`).
const MAX_INDEX_ENTRIES: usize = 0xffff;
const MAX_DATA_BYTES: usize = 0x0fff_ffff;

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_LICENSE: i32 = 1014;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCERPM: i32 = 1044;
const TAG_MODULARITYLABEL: i32 = 5096;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// The fields of one rpm header that the inventory uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpmHeader {
    pub name: Option<String>,
    pub version: Option<String>,
    pub release: Option<String>,
    pub epoch: Option<u32>,
    pub arch: Option<String>,
    pub source_rpm: Option<String>,
    pub license: Option<String>,
    pub modularity_label: Option<String>,
}

impl RpmHeader {
    /// `[epoch:]version-release`, epoch omitted when absent or 0.
    pub fn evr(&self) -> Option<String> {
        let (v, r) = (self.version.as_deref()?, self.release.as_deref()?);
        Some(match self.epoch {
            Some(e) if e != 0 => format!("{e}:{v}-{r}"),
            _ => format!("{v}-{r}"),
        })
    }
}

/// Parses `rpmdb.sqlite`.
pub fn parse_sqlite(
    path: &str,
    contents: &[u8],
    distro: Option<&Distro>,
) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    if !contents.starts_with(b"SQLite format 3\0") {
        return Err(malformed(path, FORMAT, "not an SQLite database"));
    }
    packages(path, &read_blobs(path, contents)?, distro)
}

/// Parses the Berkeley DB `Packages` hash database (see [`super::bdb`]): every
/// value but the one under key 0 (rpm's record of the next header number) is
/// a header.
pub fn parse_berkeley(
    path: &str,
    contents: &[u8],
    distro: Option<&Distro>,
) -> Result<Vec<Package>, InventoryError> {
    check_size(path, contents)?;
    let pairs = bdb::hash_pairs(contents).map_err(|e| malformed(path, BDB_FORMAT, e))?;
    let blobs: Vec<Vec<u8>> = pairs
        .into_iter()
        .filter(|(key, _)| key.iter().any(|&b| b != 0))
        .map(|(_, value)| value)
        .collect();
    packages(path, &blobs, distro)
}

/// The packages of a database's header blobs.
fn packages(
    path: &str,
    blobs: &[Vec<u8>],
    distro: Option<&Distro>,
) -> Result<Vec<Package>, InventoryError> {
    let ctx = Ctx::new(path, distro);
    let mut out = Vec::new();
    for (i, blob) in blobs.iter().enumerate() {
        check_entries(path, i.saturating_add(1))?;
        let header = parse_header(blob).map_err(|reason| {
            malformed(
                path,
                HEADER_FORMAT,
                format!("package record {}: {reason}", i + 1),
            )
        })?;
        out.extend(ctx.package(&header));
    }
    Ok(out)
}

/// The `blob` column of every `Packages` row, in `hnum` order.
fn read_blobs(path: &str, contents: &[u8]) -> Result<Vec<Vec<u8>>, InventoryError> {
    let sql_err = |e: rusqlite::Error| malformed(path, FORMAT, e.to_string());
    let io_err = |e: std::io::Error| malformed(path, FORMAT, format!("temporary copy: {e}"));
    let mut file = tempfile::NamedTempFile::new().map_err(io_err)?;
    // Bytes 18 and 19 are the read/write format versions; 2 means WAL.
    // Read as a rollback-journal database, SQLite needs no companions.
    let (head, tail) = contents.split_at(contents.len().min(20));
    let mut head = head.to_vec();
    for b in head.iter_mut().skip(18) {
        if *b == 2 {
            *b = 1;
        }
    }
    file.write_all(&head).map_err(io_err)?;
    file.write_all(tail).map_err(io_err)?;
    file.flush().map_err(io_err)?;

    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file.path(), flags).map_err(sql_err)?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cell_size_check = ON;")
        .map_err(sql_err)?;
    let mut stmt = conn
        .prepare("SELECT blob FROM Packages ORDER BY hnum")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        check_entries(path, out.len().saturating_add(1))?;
        // A header is stored as a BLOB; accept TEXT holding the same bytes.
        let blob = match row.get_ref(0).map_err(sql_err)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
            _ => {
                return Err(malformed(
                    path,
                    FORMAT,
                    format!("package row {}: header is not a blob", out.len() + 1),
                ));
            }
        };
        out.push(blob);
    }
    Ok(out)
}

/// Parses one header blob as stored in the database: no lead, no header
/// magic; `il` and `dl` (big-endian u32), `il` 16-byte index entries
/// (tag, type, offset, count), then `dl` bytes of data. Every count and
/// offset is checked against the blob; errors say which.
pub fn parse_header(blob: &[u8]) -> Result<RpmHeader, String> {
    let il = be_u32(blob, 0).ok_or("blob shorter than 8 bytes")? as usize;
    let dl = be_u32(blob, 4).ok_or("blob shorter than 8 bytes")? as usize;
    if il == 0 || il > MAX_INDEX_ENTRIES {
        return Err(format!(
            "{il} index entries (1 to {MAX_INDEX_ENTRIES} allowed)"
        ));
    }
    if dl > MAX_DATA_BYTES {
        return Err(format!("{dl}-byte data store exceeds {MAX_DATA_BYTES}"));
    }
    let data_start = 8 + il * 16;
    let data = data_start
        .checked_add(dl)
        .and_then(|end| blob.get(data_start..end))
        .ok_or_else(|| {
            format!(
                "{il} entries and {dl} data bytes need {} bytes, blob has {}",
                data_start.saturating_add(dl),
                blob.len()
            )
        })?;

    let mut h = RpmHeader::default();
    for i in 0..il {
        let at = 8 + i * 16;
        let (Some(tag), Some(ty), Some(offset), Some(count)) = (
            be_u32(blob, at),
            be_u32(blob, at + 4),
            be_u32(blob, at + 8),
            be_u32(blob, at + 12),
        ) else {
            return Err(format!("index entry {i} truncated"));
        };
        let tag = i32::from_be_bytes(tag.to_be_bytes());
        let offset = offset as usize;
        if offset > dl {
            return Err(format!("tag {tag}: offset {offset} beyond {dl}-byte data"));
        }
        let string = || -> Result<String, String> {
            if ty != TYPE_STRING && ty != TYPE_I18NSTRING {
                return Err(format!("tag {tag}: type {ty}, expected a string"));
            }
            let rest = data.get(offset..).unwrap_or_default();
            let end = rest
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| format!("tag {tag}: unterminated string"))?;
            Ok(String::from_utf8_lossy(rest.get(..end).unwrap_or_default()).into_owned())
        };
        match tag {
            TAG_NAME => h.name = Some(string()?),
            TAG_VERSION => h.version = Some(string()?),
            TAG_RELEASE => h.release = Some(string()?),
            TAG_ARCH => h.arch = Some(string()?),
            TAG_SOURCERPM => h.source_rpm = Some(string()?),
            TAG_LICENSE => h.license = Some(string()?),
            TAG_MODULARITYLABEL => h.modularity_label = Some(string()?),
            TAG_EPOCH => {
                if ty != TYPE_INT32 || count < 1 {
                    return Err(format!("EPOCH: type {ty} count {count}, expected INT32"));
                }
                h.epoch = Some(be_u32(data, offset).ok_or("EPOCH: value outside the data")?);
            }
            _ => {}
        }
    }
    Ok(h)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// `openssl-3.0.7-24.el9.src.rpm` → `openssl`.
pub fn source_name(source_rpm: &str) -> Option<&str> {
    let stem = source_rpm
        .strip_suffix(".src.rpm")
        .or_else(|| source_rpm.strip_suffix(".nosrc.rpm"))?;
    let (name_version, _release) = stem.rsplit_once('-')?;
    let (name, _version) = name_version.rsplit_once('-')?;
    (!name.is_empty()).then_some(name)
}

struct Ctx<'a> {
    path: &'a str,
    vendor: Option<&'a str>,
    distro: Option<String>,
}

impl<'a> Ctx<'a> {
    fn new(path: &'a str, distro: Option<&'a Distro>) -> Self {
        let vendor = distro.map(|d| match &d.id {
            DistroId::Rhel => "redhat",
            id => id.as_str(),
        });
        Ctx {
            path,
            vendor: vendor.filter(|v| !v.is_empty()),
            distro: distro.and_then(Distro::purl_qualifier),
        }
    }

    fn package(&self, h: &RpmHeader) -> Option<Package> {
        let name = h.name.as_deref().filter(|n| is_token(n))?;
        if name == "gpg-pubkey" {
            return None;
        }
        let (v, r) = (h.version.as_deref()?, h.release.as_deref()?);
        if !is_token(v) || !is_token(r) {
            return None;
        }
        let evr = h.evr()?;
        let epoch = h.epoch.map(|e| e.to_string());
        let arch = h.arch.as_deref().filter(|a| is_token(a));
        let label = h.modularity_label.as_deref().filter(|l| is_token(l));
        let purl = purl::build(
            "rpm",
            self.vendor,
            name,
            &format!("{v}-{r}"),
            &[
                ("arch", arch),
                ("epoch", epoch.as_deref()),
                ("distro", self.distro.as_deref()),
                ("modularitylabel", label),
            ],
        );
        let mut p = package(
            PackageKind::Rpm,
            self.path,
            name.to_owned(),
            evr.clone(),
            purl,
        );
        if let Some(src) = h.source_rpm.as_deref().and_then(source_name) {
            p.source_name = Some(src.to_owned());
            p.source_version = Some(evr);
        }
        p.licenses.extend(h.license.as_deref().and_then(non_empty));
        Some(p)
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header blob from `(tag, type, value)` entries.
    fn header(entries: &[(i32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, value) in entries {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&ty.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(value);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn parses_a_header() {
        let blob = header(&[
            (TAG_NAME, TYPE_STRING, b"openssl-libs\0"),
            (TAG_VERSION, TYPE_STRING, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, b"24.el9\0"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0"),
            (
                TAG_SOURCERPM,
                TYPE_STRING,
                b"openssl-3.0.7-24.el9.src.rpm\0",
            ),
        ]);
        let h = parse_header(&blob).unwrap();
        assert_eq!(h.evr().as_deref(), Some("1:3.0.7-24.el9"));
        let rhel = crate::distro::from_os_release(b"ID=rhel\nVERSION_ID=9.3\n").unwrap();
        let p = Ctx::new("p", Some(&rhel)).package(&h).unwrap();
        assert_eq!(p.source_name.as_deref(), Some("openssl"));
        assert_eq!(p.version, "1:3.0.7-24.el9");
        assert_eq!(
            p.purl,
            "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rhel-9.3&epoch=1"
        );
    }

    #[test]
    fn source_names() {
        assert_eq!(source_name("openssl-3.0.7-24.el9.src.rpm"), Some("openssl"));
        assert_eq!(
            source_name("python3.11-3.11.5-1.el9_3.src.rpm"),
            Some("python3.11")
        );
        assert_eq!(source_name("x.src.rpm"), None);
        assert_eq!(source_name("a-1.src.rpm"), None);
        assert_eq!(source_name("a-1-2.rpm"), None);
    }

    #[test]
    fn hostile_headers_are_errors() {
        let good = header(&[(TAG_NAME, TYPE_STRING, b"a\0")]);
        let mut unterminated = header(&[(TAG_NAME, TYPE_STRING, b"abc")]);
        let mut big_offset = good.clone();
        big_offset[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        let mut huge_il = good.clone();
        huge_il[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut huge_dl = good.clone();
        huge_dl[4..8].copy_from_slice(&0x0fff_fff0u32.to_be_bytes());
        let epoch_at_end = header(&[(TAG_EPOCH, TYPE_INT32, &[0, 1])]);
        let wrong_type = header(&[(TAG_NAME, TYPE_INT32, b"a\0")]);
        unterminated.truncate(unterminated.len());
        for (what, blob) in [
            ("empty", Vec::new()),
            ("short", vec![0, 0, 0, 1]),
            ("truncated", good[..good.len() - 1].to_vec()),
            ("unterminated", unterminated),
            ("offset", big_offset),
            ("il", huge_il),
            ("dl", huge_dl),
            ("epoch", epoch_at_end),
            ("type", wrong_type),
            ("zero entries", vec![0; 8]),
        ] {
            assert!(parse_header(&blob).is_err(), "{what}");
        }
        assert!(parse_header(&good).is_ok());
    }
}
