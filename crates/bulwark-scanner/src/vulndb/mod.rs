//! Vulnerability feeds: parsing and normalising advisories into one model,
//! and deciding whether an advisory's range covers an installed version.
//!
//! This module owns three questions, and does no I/O beyond reading the
//! files it is pointed at (no network, no database):
//!
//! 1. *What does a feed say?* [`import_path`] reads a file, a directory
//!    tree, or a `.zip` / `.tar` / `.tar.gz` archive and returns an
//!    [`ImportBatch`] of [`Advisory`] and [`AffectedRange`] rows (see
//!    [`model`]), ready to be stored by the caller.
//! 2. *How bad is it?* [`severity`]: CVSS base scores and vendor ratings.
//! 3. *Is this version affected?* [`matching::affects`].
//!
//! # Formats
//!
//! | format | recognised by | module |
//! |---|---|---|
//! | OSV JSON: one record, an array, or `{"vulns": [...]}` | `.json` with `id` / array / `vulns` | [`osv`] |
//! | OSV YAML (PyPA) | `.yaml`/`.yml` without a top-level `distroversion:`/`packages:` | [`osv`] |
//! | Alpine secdb, JSON or YAML | `distroversion` (or `packages` + `reponame`) | [`alpine`] |
//! | Debian security tracker JSON | `{pkg: {id: {releases: ...}}}` | [`debian`] |
//! | Red Hat CSAF 2.0 (VEX, advisories) | `document.csaf_version` | [`redhat`] |
//!
//! Files are chosen by extension (`.json`, `.yaml`, `.yml`; archives
//! `.zip`, `.tar`, `.tar.gz`, `.tgz`) and then dispatched by the shape of
//! their content. Other files (licences, READMEs, `.tsv`) are counted in
//! [`ImportBatch::files_ignored`]. Directories are walked recursively in
//! name order, skipping dot-entries (`.git`) and symlinks. Archives are
//! read in memory entry by entry, never extracted; archives inside
//! archives are not opened.
//!
//! # What a record is
//!
//! [`ImportBatch::records`] counts what each feed calls a record: an OSV
//! record, an Alpine package entry, a Debian tracker (package, CVE) pair,
//! a CSAF document.
//!
//! # Duplicates
//!
//! Advisories are keyed by `(source, id)`. For the distro feeds (Alpine,
//! Debian tracker) records with the same key are parts of one advisory
//! (a CVE listed under several packages, releases or repositories) and are
//! merged: ranges concatenated, aliases united. For OSV and CSAF the same
//! key twice means two versions of one record: the later `modified` wins,
//! the first read wins a tie. Identical ranges are removed. Advisories are
//! sorted by `(source, id)` and ranges by all their fields, so a batch
//! does not depend on file or archive-entry order.
//!
//! # Severity precedence
//!
//! [`Advisory::severity`] is, for OSV: the highest v3.x CVSS rating, else
//! the v4.0 heuristic, else v2, else `database_specific.severity` (GHSA),
//! else an `Ubuntu` severity entry, else the highest range urgency; for
//! Red Hat: the vendor's aggregate impact; for the Debian tracker: the
//! highest release urgency; Alpine: none.
//!
//! # Untrusted input
//!
//! A file that cannot be read or parsed, or that breaks a limit, is listed
//! in [`ImportBatch::skipped`] with the reason and the import goes on;
//! inside a file, one bad OSV record of a bundle or one bad Alpine package
//! entry is listed and skipped alone. Limits: [`MAX_FILE_BYTES`] per file
//! or archive entry, [`MAX_ARCHIVE_ENTRIES`] and [`MAX_ARCHIVE_BYTES`] per
//! archive, [`MAX_DIR_DEPTH`], plus the text and list caps of [`model`].
//! JSON nesting is bounded by serde_json's recursion limit, YAML by
//! serde_norway's recursion and alias-expansion limits. Nothing here
//! panics on input.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read, Seek};
use std::path::Path;

pub mod alpine;
mod de;
pub mod debian;
pub mod matching;
pub mod model;
pub mod osv;
pub mod redhat;
pub mod severity;
pub mod store;

pub use matching::{MatchResult, affects};
pub use model::{Advisory, AffectedRange, Event, FeedSource, RangeKind, Timestamp};
pub use severity::{CvssScore, CvssVersion, Severity};

/// A file or archive entry larger than this is skipped.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// An archive with more entries than this is not read past the limit.
pub const MAX_ARCHIVE_ENTRIES: usize = 1_000_000;
/// At most this many uncompressed bytes are read from one archive.
pub const MAX_ARCHIVE_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Directories nested deeper than this below the import root are skipped.
pub const MAX_DIR_DEPTH: usize = 32;

/// One advisory with its ranges, as a feed parser produces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub advisory: Advisory,
    pub ranges: Vec<AffectedRange>,
}

/// What one feed document yielded.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Feed records seen (see the module docs), including bad ones.
    pub records: usize,
    pub units: Vec<Record>,
    /// Bad parts of an otherwise readable document.
    pub warnings: Vec<String>,
}

/// A file, archive entry or part of a document that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// File path; `archive!entry` inside archives.
    pub path: String,
    /// Why; for one bad part of a readable document the reason starts by
    /// naming it (`#vulns[3]: …`, `packages[12]: …`).
    pub reason: String,
}

/// The result of importing a file, directory or archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportBatch {
    /// Sorted by `(source, id)`, unique.
    pub advisories: Vec<Advisory>,
    /// Sorted, unique.
    pub ranges: Vec<AffectedRange>,
    /// The feed format, when every parsed document had the same one.
    pub source: Option<FeedSource>,
    /// Feed documents parsed (loose or in archives).
    pub files_read: usize,
    /// Files ignored for their extension.
    pub files_ignored: usize,
    /// Feed records seen.
    pub records: usize,
    pub skipped: Vec<Skipped>,
}

/// Why an import could not start.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Imports a feed file, a directory tree of them, or an archive.
///
/// Only an unreadable `path` itself is an error; everything below it that
/// fails is reported in [`ImportBatch::skipped`].
pub fn import_path(path: impl AsRef<Path>) -> Result<ImportBatch, ImportError> {
    let path = path.as_ref();
    let display = path.display().to_string();
    let meta = fs::metadata(path).map_err(|source| ImportError::Io {
        path: display.clone(),
        source,
    })?;
    let mut c = Collector::default();
    if meta.is_dir() {
        fs::read_dir(path).map_err(|source| ImportError::Io {
            path: display.clone(),
            source,
        })?;
        c.walk(path, 0);
    } else {
        let kind = FileKind::of(&display);
        if kind == FileKind::Other {
            c.skip(
                &display,
                "not a feed file (expected .json, .yaml, .yml, .zip, .tar, .tar.gz)",
            );
        } else {
            c.file(path, &display, kind);
        }
    }
    Ok(c.finish())
}

/// Imports one document or archive held in memory; `name` (a file name or
/// URL path) picks the format by extension as [`import_path`] does.
pub fn import_bytes(name: &str, bytes: &[u8]) -> ImportBatch {
    let mut c = Collector::default();
    match FileKind::of(name) {
        FileKind::Other => c.skip(name, "not a feed file"),
        FileKind::Zip => c.zip(name, io::Cursor::new(bytes)),
        FileKind::Tar => c.tar(name, bytes),
        FileKind::TarGz => c.tar(name, flate2::read::GzDecoder::new(bytes)),
        kind @ (FileKind::Json | FileKind::Yaml) => c.document(name, kind, bytes),
    }
    c.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Json,
    Yaml,
    Zip,
    Tar,
    TarGz,
    Other,
}

impl FileKind {
    fn of(name: &str) -> FileKind {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".json") {
            FileKind::Json
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            FileKind::Yaml
        } else if lower.ends_with(".zip") {
            FileKind::Zip
        } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            FileKind::TarGz
        } else if lower.ends_with(".tar") {
            FileKind::Tar
        } else {
            FileKind::Other
        }
    }
}

#[derive(Default)]
struct Collector {
    units: Vec<Record>,
    sources: BTreeSet<FeedSource>,
    files_read: usize,
    files_ignored: usize,
    records: usize,
    skipped: Vec<Skipped>,
}

impl Collector {
    fn skip(&mut self, path: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            path: path.to_owned(),
            reason: reason.into(),
        });
    }

    fn walk(&mut self, dir: &Path, depth: usize) {
        let display = dir.display().to_string();
        if depth > MAX_DIR_DEPTH {
            self.skip(&display, format!("deeper than {MAX_DIR_DEPTH} directories"));
            return;
        }
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return self.skip(&display, format!("cannot list directory: {e}")),
        };
        let mut names = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => names.push(e.file_name()),
                Err(e) => self.skip(&display, format!("cannot list directory: {e}")),
            }
        }
        names.sort();
        for name in names {
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = dir.join(&name);
            let shown = path.display().to_string();
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.skip(&shown, format!("cannot stat: {e}"));
                    continue;
                }
            };
            if meta.is_dir() {
                self.walk(&path, depth + 1);
            } else if meta.is_file() {
                match FileKind::of(&shown) {
                    FileKind::Other => self.files_ignored += 1,
                    kind => self.file(&path, &shown, kind),
                }
            } else {
                self.files_ignored += 1;
            }
        }
    }

    fn file(&mut self, path: &Path, shown: &str, kind: FileKind) {
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return self.skip(shown, format!("cannot open: {e}")),
        };
        match kind {
            FileKind::Zip => self.zip(shown, io::BufReader::new(file)),
            FileKind::Tar => self.tar(shown, io::BufReader::new(file)),
            FileKind::TarGz => self.tar(
                shown,
                flate2::read::GzDecoder::new(io::BufReader::new(file)),
            ),
            FileKind::Json | FileKind::Yaml => match read_capped(file) {
                Ok(bytes) => self.document(shown, kind, &bytes),
                Err(reason) => self.skip(shown, reason),
            },
            FileKind::Other => self.files_ignored += 1,
        }
    }

    fn archive_entry(&mut self, shown: &str, reader: impl Read) {
        let kind = FileKind::of(shown);
        match kind {
            FileKind::Json | FileKind::Yaml => match read_capped(reader) {
                Ok(bytes) => self.document(shown, kind, &bytes),
                Err(reason) => self.skip(shown, reason),
            },
            FileKind::Zip | FileKind::Tar | FileKind::TarGz => {
                self.skip(shown, "archive inside an archive is not read")
            }
            FileKind::Other => self.files_ignored += 1,
        }
    }

    fn zip<R: Read + Seek>(&mut self, shown: &str, reader: R) {
        let mut archive = match zip::ZipArchive::new(reader) {
            Ok(a) => a,
            Err(e) => return self.skip(shown, format!("invalid zip archive: {e}")),
        };
        if archive.len() > MAX_ARCHIVE_ENTRIES {
            return self.skip(
                shown,
                format!("zip archive has more than {MAX_ARCHIVE_ENTRIES} entries"),
            );
        }
        let mut total: u64 = 0;
        for i in 0..archive.len() {
            let entry = match archive.by_index(i) {
                Ok(e) => e,
                Err(e) => {
                    self.skip(
                        &format!("{shown}!#{i}"),
                        format!("unreadable zip entry: {e}"),
                    );
                    continue;
                }
            };
            if !entry.is_file() {
                continue;
            }
            let inner = format!("{shown}!{}", entry.name());
            if entry.size() > MAX_FILE_BYTES {
                self.skip(&inner, format!("larger than {MAX_FILE_BYTES} bytes"));
                continue;
            }
            total = total.saturating_add(entry.size());
            if total > MAX_ARCHIVE_BYTES {
                return self.skip(
                    shown,
                    format!("more than {MAX_ARCHIVE_BYTES} bytes of content"),
                );
            }
            self.archive_entry(&inner, entry);
        }
    }

    fn tar<R: Read>(&mut self, shown: &str, reader: R) {
        let mut archive = tar::Archive::new(reader);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => return self.skip(shown, format!("invalid tar archive: {e}")),
        };
        let mut total: u64 = 0;
        for (count, entry) in entries.enumerate() {
            if count >= MAX_ARCHIVE_ENTRIES {
                return self.skip(
                    shown,
                    format!("tar archive has more than {MAX_ARCHIVE_ENTRIES} entries"),
                );
            }
            let entry = match entry {
                Ok(e) => e,
                // A broken tar stream cannot be resynchronised.
                Err(e) => return self.skip(shown, format!("invalid tar archive: {e}")),
            };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let inner = format!("{shown}!{name}");
            let size = entry.size();
            if size > MAX_FILE_BYTES {
                self.skip(&inner, format!("larger than {MAX_FILE_BYTES} bytes"));
                continue;
            }
            total = total.saturating_add(size);
            if total > MAX_ARCHIVE_BYTES {
                return self.skip(
                    shown,
                    format!("more than {MAX_ARCHIVE_BYTES} bytes of content"),
                );
            }
            self.archive_entry(&inner, entry);
        }
    }

    fn document(&mut self, shown: &str, kind: FileKind, bytes: &[u8]) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let result = match kind {
            FileKind::Yaml => parse_yaml(bytes),
            _ => parse_json_bytes(bytes),
        };
        match result {
            Ok((source, parsed)) => {
                self.files_read += 1;
                self.sources.insert(source);
                self.records += parsed.records;
                for w in parsed.warnings {
                    self.skipped.push(Skipped {
                        path: shown.to_owned(),
                        reason: w,
                    });
                }
                self.units.extend(parsed.units);
            }
            Err(reason) => self.skip(shown, reason),
        }
    }

    fn finish(self) -> ImportBatch {
        let mut merged: Vec<Record> = Vec::with_capacity(self.units.len());
        let mut index: HashMap<(FeedSource, String), usize> = HashMap::new();
        for unit in self.units {
            let key = (unit.advisory.source, unit.advisory.id.clone());
            let Some(&at) = index.get(&key) else {
                index.insert(key, merged.len());
                merged.push(unit);
                continue;
            };
            let Some(existing) = merged.get_mut(at) else {
                continue;
            };
            if unit.advisory.source.merges_duplicates() {
                merge(existing, unit);
            } else if unit.advisory.modified > existing.advisory.modified {
                *existing = unit;
            }
        }
        let mut advisories = Vec::with_capacity(merged.len());
        let mut ranges = Vec::new();
        for mut unit in merged {
            if unit.advisory.source.merges_duplicates() {
                unit.advisory.aliases.sort();
                unit.advisory.aliases.dedup();
            }
            advisories.push(unit.advisory);
            ranges.append(&mut unit.ranges);
        }
        advisories.sort_by(|a, b| (a.source, &a.id).cmp(&(b.source, &b.id)));
        ranges.sort_by(range_order);
        ranges.dedup();
        let source = match (self.sources.first(), self.sources.len()) {
            (Some(s), 1) => Some(*s),
            _ => None,
        };
        ImportBatch {
            advisories,
            ranges,
            source,
            files_read: self.files_read,
            files_ignored: self.files_ignored,
            records: self.records,
            skipped: self.skipped,
        }
    }
}

/// Folds a distro record into an earlier one with the same key.
fn merge(into: &mut Record, from: Record) {
    let a = &mut into.advisory;
    let b = from.advisory;
    for alias in &b.aliases {
        model::push_unique(&mut a.aliases, alias, model::MAX_ALIASES);
    }
    for r in &b.references {
        model::push_unique(&mut a.references, r, model::MAX_REFERENCES);
    }
    a.severity = a.severity.max(b.severity);
    if a.details.is_none() {
        a.details = b.details;
    }
    if a.summary.is_none() {
        a.summary = b.summary;
    }
    into.ranges.extend(from.ranges);
}

/// A total order on ranges, so sorting is independent of input order.
fn range_order(a: &AffectedRange, b: &AffectedRange) -> std::cmp::Ordering {
    (a.source, &a.advisory_id, &a.ecosystem, &a.package, a.kind)
        .cmp(&(b.source, &b.advisory_id, &b.ecosystem, &b.package, b.kind))
        .then_with(|| a.fixed_version.cmp(&b.fixed_version))
        .then_with(|| a.events.cmp(&b.events))
        .then_with(|| a.versions.cmp(&b.versions))
        .then_with(|| {
            (a.unfixed, a.not_affected, a.severity).cmp(&(b.unfixed, b.not_affected, b.severity))
        })
}

/// Reads at most [`MAX_FILE_BYTES`]; more is an error.
fn read_capped(reader: impl Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("read error: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// The top-level keys that decide a JSON document's format. Reading it
/// skips every value without allocating, so single OSV records (most
/// files) are then parsed straight into their typed form rather than
/// through a `serde_json::Value`.
#[derive(serde::Deserialize)]
struct JsonShape {
    id: Option<serde::de::IgnoredAny>,
    affected: Option<serde::de::IgnoredAny>,
    modified: Option<serde::de::IgnoredAny>,
    published: Option<serde::de::IgnoredAny>,
    schema_version: Option<serde::de::IgnoredAny>,
    distroversion: Option<serde::de::IgnoredAny>,
    document: Option<serde::de::IgnoredAny>,
}

fn parse_json_bytes(bytes: &[u8]) -> Result<(FeedSource, Parsed), String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{')
        && let Ok(shape) = serde_json::from_slice::<JsonShape>(bytes)
    {
        let osv = shape.id.is_some()
            && (shape.affected.is_some()
                || shape.modified.is_some()
                || shape.published.is_some()
                || shape.schema_version.is_some());
        if osv && shape.distroversion.is_none() && shape.document.is_none() {
            let unit = osv::from_json_slice(bytes)?;
            return Ok((
                FeedSource::Osv,
                Parsed {
                    records: 1,
                    units: vec![unit],
                    warnings: Vec::new(),
                },
            ));
        }
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| format!("invalid JSON: {e}"))
        .and_then(parse_json)
}

/// Dispatches a JSON document by its shape.
fn parse_json(value: serde_json::Value) -> Result<(FeedSource, Parsed), String> {
    use serde_json::Value;
    let list = match value {
        Value::Array(items) => Some((items, "")),
        Value::Object(mut obj) if obj.get("vulns").is_some_and(Value::is_array) => {
            match obj.remove("vulns") {
                Some(Value::Array(items)) => Some((items, "vulns")),
                _ => None,
            }
        }
        other => return parse_json_object(other),
    };
    let Some((items, field)) = list else {
        return Err("unrecognised JSON document".to_owned());
    };
    let mut parsed = Parsed::default();
    for (i, item) in items.into_iter().enumerate() {
        parsed.records += 1;
        match osv::from_json(item) {
            Ok(unit) => parsed.units.push(unit),
            Err(e) => parsed.warnings.push(format!("#{field}[{i}]: {e}")),
        }
    }
    Ok((FeedSource::Osv, parsed))
}

fn parse_json_object(value: serde_json::Value) -> Result<(FeedSource, Parsed), String> {
    let Some(obj) = value.as_object() else {
        return Err("unrecognised JSON document (not an object or array)".to_owned());
    };
    if redhat::looks_like(&value) {
        return Ok((FeedSource::RedHatCsaf, redhat::parse(value)?));
    }
    if obj.contains_key("distroversion")
        || (obj.contains_key("packages") && obj.contains_key("reponame"))
    {
        return Ok((FeedSource::AlpineSecdb, alpine::parse(value)?));
    }
    if obj.contains_key("id")
        && ["affected", "modified", "published", "schema_version"]
            .iter()
            .any(|k| obj.contains_key(*k))
    {
        let unit = osv::from_json(value)?;
        return Ok((
            FeedSource::Osv,
            Parsed {
                records: 1,
                units: vec![unit],
                warnings: Vec::new(),
            },
        ));
    }
    if debian::looks_like(&value) {
        return Ok((FeedSource::DebianTracker, debian::parse(value)?));
    }
    Err("unrecognised JSON document".to_owned())
}

/// Dispatches a YAML document: Alpine secdb when a top-level
/// `distroversion:` or `packages:` key is present, else OSV.
fn parse_yaml(bytes: &[u8]) -> Result<(FeedSource, Parsed), String> {
    let is_secdb = bytes
        .split(|&b| b == b'\n')
        .any(|line| line.starts_with(b"distroversion:") || line.starts_with(b"packages:"));
    if is_secdb {
        let value: serde_json::Value =
            serde_norway::from_slice(bytes).map_err(|e| format!("invalid YAML: {e}"))?;
        Ok((FeedSource::AlpineSecdb, alpine::parse(value)?))
    } else {
        let unit = osv::from_yaml(bytes)?;
        Ok((
            FeedSource::Osv,
            Parsed {
                records: 1,
                units: vec![unit],
                warnings: Vec::new(),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_extension() {
        assert_eq!(FileKind::of("a/GO-1.json"), FileKind::Json);
        assert_eq!(FileKind::of("x.YAML"), FileKind::Yaml);
        assert_eq!(FileKind::of("x.yml"), FileKind::Yaml);
        assert_eq!(FileKind::of("all.zip"), FileKind::Zip);
        assert_eq!(FileKind::of("a.tar.gz"), FileKind::TarGz);
        assert_eq!(FileKind::of("a.tgz"), FileKind::TarGz);
        assert_eq!(FileKind::of("a.tar"), FileKind::Tar);
        assert_eq!(FileKind::of("LICENSE"), FileKind::Other);
    }

    #[test]
    fn hostile_documents_are_skipped_not_fatal() {
        let cases: &[(&str, &[u8])] = &[
            ("a.json", b""),
            ("a.json", b"{"),
            ("a.json", b"42"),
            ("a.json", b"{\"hello\": 1}"),
            ("a.json", &[b'['; 10_000]),
            ("a.yaml", b"id: [unclosed"),
            ("a.yaml", b"- just\n- a list\n"),
            ("a.yaml", b"packages: 5\n"),
            ("a.zip", b"PK\x03\x04garbage"),
            ("a.tar.gz", b"\x1f\x8b\x08garbage"),
            ("a.tar", &[7u8; 1024]),
        ];
        for (name, bytes) in cases {
            let b = import_bytes(name, bytes);
            assert!(b.advisories.is_empty(), "{name}");
            assert_eq!(b.skipped.len(), 1, "{name}: {:?}", b.skipped);
        }
    }

    #[test]
    fn bundle_with_one_bad_record() {
        let doc = br#"{"vulns": [{"id": "A-1", "modified": "2024-01-01T00:00:00Z"}, {"nope": 1}, {"id": "A-2", "affected": []}]}"#;
        let b = import_bytes("bundle.json", doc);
        assert_eq!(b.records, 3);
        assert_eq!(b.advisories.len(), 2);
        assert_eq!(b.skipped.len(), 1);
        assert!(b.skipped[0].reason.starts_with("#vulns[1]"));
        assert_eq!(b.source, Some(FeedSource::Osv));
    }

    #[test]
    fn newer_osv_record_wins() {
        let doc = br#"[
            {"id": "A-1", "modified": "2024-01-01T00:00:00Z", "summary": "old"},
            {"id": "A-1", "modified": "2024-06-01T00:00:00Z", "summary": "new"},
            {"id": "A-1", "modified": "2024-03-01T00:00:00Z", "summary": "middle"}
        ]"#;
        let b = import_bytes("list.json", doc);
        assert_eq!(b.advisories.len(), 1);
        assert_eq!(b.advisories[0].summary.as_deref(), Some("new"));
    }
}
