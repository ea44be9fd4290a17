//! Streaming one layer blob: verify, decompress, walk the tar entries.
//!
//! [`read_layer`] reads a blob exactly once, front to back, through this
//! chain of readers:
//!
//! ```text
//! blob ─▶ RawReader ─▶ decompressor ─▶ Guard ─▶ tar::Archive ─▶ sink(Entry)
//!         digest, size,  gzip / zstd /   bytes-out limit,
//!         bytes-in limit plain (sniffed) header budget, diff_id
//! ```
//!
//! Limits are enforced inside the readers, so a decompression bomb stops
//! after [`Limits::max_layer_bytes`] bytes of output, not after it has been
//! inflated. The tar crate reads GNU long names and PAX records into memory
//! whole; the guard bounds those with [`Limits::max_header_bytes`]: after
//! each entry it allows the entry's padded data plus that budget before the
//! next entry must have been produced.
//!
//! After the tar end marker the rest of the stream (padding) is drained so
//! the digests cover the whole blob; data hidden after the end marker is
//! hashed but not read as entries, as Go's tar reader (containerd, Docker)
//! would not extract it either.

use std::cell::{Cell, RefCell};
use std::io::{self, BufReader, Cursor, Read};
use std::rc::Rc;

use bulwark_oci::media_types::essence;
use bulwark_oci::{Algorithm, Digest, Hasher};
use flate2::read::MultiGzDecoder;

use super::path::{check_len, normalize, truncated};
use super::{ImageError, Limits};

/// Largest zstd window accepted: 2^27 = 128 MiB of decoder memory, zstd's
/// own default cap, set explicitly so a frame cannot ask for more.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// A layer's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares; `Ok(None)` for an empty
    /// media type (unknown, e.g. `docker save` layers), an error for a media
    /// type that is not a filesystem layer.
    pub fn from_media_type(media_type: &str) -> Result<Option<Compression>, ImageError> {
        let mt = essence(media_type);
        let c = match mt {
            "" => return Ok(None),
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            other => {
                return Err(ImageError::UnsupportedMediaType(format!(
                    "{other:?} is not a filesystem layer"
                )));
            }
        };
        Ok(Some(c))
    }

    /// The compression the first bytes of a blob show. Plain tar has no
    /// magic at offset 0, so anything unrecognised is taken as plain (and
    /// fails as a tar if it is not).
    pub fn sniff(prefix: &[u8]) -> Result<Compression, ImageError> {
        match prefix {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
            // zstd skippable frame (zstd:chunked starts with data frames,
            // but a stream may begin with one).
            [m, 0x2a, 0x4d, 0x18, ..] if m & 0xf0 == 0x50 => Ok(Compression::Zstd),
            [
                b'B',
                b'Z',
                b'h',
                b'1'..=b'9',
                0x31,
                0x41,
                0x59,
                0x26,
                0x53,
                0x59,
                ..,
            ] => Err(ImageError::UnsupportedMediaType(
                "bzip2-compressed layer (OCI layers are tar, gzip or zstd)".into(),
            )),
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Err(ImageError::UnsupportedMediaType(
                "xz-compressed layer (OCI layers are tar, gzip or zstd)".into(),
            )),
            _ => Ok(Compression::None),
        }
    }
}

/// What is known about a layer blob before reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerSpec {
    /// The descriptor's media type; empty when unknown.
    pub media_type: String,
    /// The blob digest to verify, when known.
    pub digest: Option<Digest>,
    /// The blob size to verify, when known.
    pub size: Option<u64>,
    /// The config's `rootfs.diff_ids` entry: the digest of the
    /// uncompressed tar, verified when given.
    pub diff_id: Option<Digest>,
}

/// What reading a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    /// The compression the media type declared (`None` when it declared
    /// nothing).
    pub declared: Option<Compression>,
    /// The compression the blob actually uses, from its magic bytes.
    pub compression: Compression,
    /// The blob's digest, as computed (equal to [`LayerSpec::digest`] when
    /// one was given).
    pub digest: Digest,
    /// The uncompressed tar's digest, when a `diff_id` was verified.
    pub diff_id: Option<Digest>,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    /// Tar entries read, including ones not passed to the sink.
    pub entries: u64,
}

/// What a tar entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file (also contiguous and GNU sparse files).
    File,
    Dir,
    /// A symbolic link with its target as written (not normalised).
    Symlink {
        target: String,
    },
    /// A hard link to `target`, a normalised path in the same image.
    Hardlink {
        target: String,
    },
    /// Character or block device, FIFO, or an unknown type; `type_flag` is
    /// the tar type byte (`b'3'`, `b'4'`, `b'6'`, ...).
    Other {
        type_flag: u8,
    },
}

impl EntryKind {
    pub fn is_dir(&self) -> bool {
        matches!(self, EntryKind::Dir)
    }
}

/// Metadata of one path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileInfo {
    pub kind: EntryKind,
    /// Permission bits including setuid (`0o4000`), setgid (`0o2000`) and
    /// sticky (`0o1000`); file-type bits are masked off.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Size in bytes (the real size for sparse files; 0 for most
    /// non-files).
    pub size: u64,
}

impl FileInfo {
    pub fn is_setuid(&self) -> bool {
        self.mode & 0o4000 != 0
    }

    pub fn is_setgid(&self) -> bool {
        self.mode & 0o2000 != 0
    }

    /// Writable by others (`o+w`).
    pub fn is_world_writable(&self) -> bool {
        self.mode & 0o002 != 0
    }
}

/// A wanted file's content, as read from the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not a regular file, or not wanted.
    Skipped,
    Loaded(Vec<u8>),
    /// Wanted, but larger than [`Limits::max_file_bytes`]; not read.
    TooLarge,
}

/// One tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Root-relative, normalised (see [`normalize`]); never empty.
    pub path: String,
    pub info: FileInfo,
    pub content: Content,
}

/// Reads one layer blob, passing each entry to `sink` in archive order.
///
/// `wanted` is asked about every regular file's normalised path; the
/// content of those it accepts is read into memory (up to
/// [`Limits::max_file_bytes`]). The root directory entry (`./`) and PAX
/// global headers are not passed on. Whiteout entries (`.wh.*`) are passed
/// on as ordinary entries; [`Squash`](super::Squash) interprets them.
///
/// Errors: any limit, a digest, size or diff_id mismatch, a path escaping
/// the root, corrupt compression or tar data, or an error returned by
/// `sink` (which stops the read).
pub fn read_layer<R: Read>(
    reader: R,
    spec: &LayerSpec,
    limits: &Limits,
    wanted: &dyn Fn(&str) -> bool,
    sink: &mut dyn FnMut(Entry) -> Result<(), ImageError>,
) -> Result<LayerSummary, ImageError> {
    let declared = Compression::from_media_type(&spec.media_type)?;
    let trip = Trip::default();
    let raw_algorithm = spec
        .digest
        .as_ref()
        .map_or(Algorithm::Sha256, Digest::algorithm);
    let mut raw = RawReader {
        inner: reader,
        read: 0,
        limit: limits.max_compressed_layer_bytes,
        expected_size: spec.size,
        expected_digest: spec.digest.clone(),
        hasher: Some(Hasher::new(raw_algorithm)),
        computed: None,
        trip: trip.clone(),
    };

    let mut prefix = [0u8; 10];
    let got = read_prefix(&mut raw, &mut prefix).map_err(|e| trip.classify(e))?;
    let compression = Compression::sniff(prefix.get(..got).unwrap_or_default())?;
    let chained = Cursor::new(prefix.get(..got).unwrap_or_default().to_vec()).chain(raw);
    let decoder = Decoder::new(compression, chained).map_err(|e| trip.classify(e))?;

    // For plain tar the diff_id is the blob digest; hash once.
    let diff_hasher = spec.diff_id.as_ref().and_then(|d| {
        let same = compression == Compression::None && raw_algorithm == d.algorithm();
        (!same).then(|| Hasher::new(d.algorithm()))
    });
    let state = Rc::new(GuardState {
        pos: Cell::new(0),
        limit: limits.max_layer_bytes,
        deadline: Cell::new(limits.max_header_bytes),
        header_budget: limits.max_header_bytes,
    });
    let guard = Guard {
        inner: decoder,
        state: Rc::clone(&state),
        hasher: diff_hasher,
        trip: trip.clone(),
    };

    let mut archive = tar::Archive::new(guard);
    let mut entries = 0u64;
    {
        let iter = archive.entries().map_err(|e| trip.classify(e))?;
        for item in iter {
            let mut entry = item.map_err(|e| trip.classify(e))?;
            entries += 1;
            if entries > limits.max_entries {
                return Err(ImageError::LimitExceeded {
                    what: "tar entries in one layer",
                    limit: limits.max_entries,
                });
            }
            let size = entry.size();
            if size > limits.max_layer_bytes {
                return Err(ImageError::LimitExceeded {
                    what: "uncompressed layer size",
                    limit: limits.max_layer_bytes,
                });
            }
            let padded = size.saturating_add(511) / 512 * 512;
            state.deadline.set(
                state
                    .pos
                    .get()
                    .saturating_add(padded)
                    .saturating_add(limits.max_header_bytes),
            );
            if let Some(e) = convert(&mut entry, limits, wanted).map_err(|e| trip.or(e))? {
                sink(e)?;
            }
        }
    }

    // Drain the tar padding, then the compressed stream, so both digests
    // cover everything.
    state.deadline.set(u64::MAX);
    let mut guard = archive.into_inner();
    io::copy(&mut guard, &mut io::sink()).map_err(|e| trip.classify(e))?;
    let computed_diff_id = guard.hasher.take().map(Hasher::finish);
    let (_, mut raw) = guard.inner.into_inner().into_inner();
    io::copy(&mut raw, &mut io::sink()).map_err(|e| trip.classify(e))?;
    if let Some(e) = trip.take() {
        return Err(e);
    }
    let compressed_bytes = raw.read;
    let digest = raw.finish()?;

    let diff_id = match &spec.diff_id {
        None => None,
        Some(expected) => {
            let actual = computed_diff_id.unwrap_or_else(|| digest.clone());
            if &actual != expected {
                return Err(ImageError::DiffIdMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
            Some(actual)
        }
    };
    Ok(LayerSummary {
        declared,
        compression,
        digest,
        diff_id,
        compressed_bytes,
        uncompressed_bytes: state.pos.get(),
        entries,
    })
}

/// Turns a tar entry into an [`Entry`], reading wanted content.
fn convert<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    limits: &Limits,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Option<Entry>, ImageError> {
    let header = entry.header();
    let ty = header.entry_type();
    // Extension headers are consumed by the tar reader when well formed;
    // global PAX headers and stray extension entries carry no file.
    if ty.is_pax_global_extensions()
        || ty.is_pax_local_extensions()
        || ty.is_gnu_longname()
        || ty.is_gnu_longlink()
    {
        return Ok(None);
    }
    let type_flag = header.as_old().linkflag[0];
    let raw_path = entry.path_bytes();
    let trailing_slash = raw_path.ends_with(b"/");
    let path = normalize(&raw_path, limits.max_path_len)?;
    if path.is_empty() {
        return Ok(None);
    }
    let old = header.as_old();
    let mode = numeric(header.mode().map(u64::from), &old.mode).map_err(|e| malformed(&path, e))?;
    let mode = u32::try_from(mode & 0o7777).unwrap_or(0);
    let uid = numeric(header.uid(), &old.uid).map_err(|e| malformed(&path, e))?;
    let gid = numeric(header.gid(), &old.gid).map_err(|e| malformed(&path, e))?;
    let size = entry.size();
    let link = || -> Result<Vec<u8>, ImageError> {
        let target = entry.link_name_bytes().unwrap_or_default().into_owned();
        check_len(&target, limits.max_path_len)?;
        Ok(target)
    };
    let kind = match ty {
        tar::EntryType::Regular if type_flag == 0 && trailing_slash => EntryKind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            EntryKind::File
        }
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink {
            target: String::from_utf8_lossy(&link()?).into_owned(),
        },
        tar::EntryType::Link => {
            let target = normalize(&link()?, limits.max_path_len)?;
            if target.is_empty() {
                return Err(ImageError::MalformedLayer(format!(
                    "hardlink {:?} has no target",
                    truncated(&path)
                )));
            }
            EntryKind::Hardlink { target }
        }
        _ => EntryKind::Other { type_flag },
    };

    let content = if kind == EntryKind::File && wanted(&path) {
        if size > limits.max_file_bytes {
            Content::TooLarge
        } else {
            let cap = usize::try_from(size.min(1 << 20)).unwrap_or(0);
            let mut buf = Vec::with_capacity(cap);
            Read::by_ref(entry)
                .take(size)
                .read_to_end(&mut buf)
                .map_err(|e| malformed(&path, e))?;
            if buf.len() as u64 != size {
                return Err(ImageError::MalformedLayer(format!(
                    "{}: data ends after {} of {size} bytes",
                    truncated(&path),
                    buf.len()
                )));
            }
            Content::Loaded(buf)
        }
    } else {
        Content::Skipped
    };
    Ok(Some(Entry {
        path,
        info: FileInfo {
            kind,
            mode,
            uid,
            gid,
            size,
        },
        content,
    }))
}

/// A numeric header field; an empty one (all NULs or spaces) is 0, as Go's
/// tar reader (Docker, containerd) reads it.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Ok(n) => Ok(n),
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        Err(e) => Err(e),
    }
}

fn malformed(path: &str, e: io::Error) -> ImageError {
    ImageError::MalformedLayer(format!("{}: {e}", truncated(path)))
}

/// Fills as much of `buf` as the stream has; returns the count.
fn read_prefix(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The first error a reader in the chain hit, which its `io::Error` only
/// summarises. Decompressors and the tar reader pass inner errors through,
/// but this does not rely on it.
#[derive(Clone, Default)]
pub(crate) struct Trip(Rc<RefCell<Option<ImageError>>>);

impl Trip {
    /// Records `e` (unless an earlier error is recorded) and returns an
    /// `io::Error` to unwind the readers with.
    pub(crate) fn set(&self, e: ImageError) -> io::Error {
        let msg = e.to_string();
        let mut slot = self.0.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
        io::Error::other(msg)
    }

    pub(crate) fn take(&self) -> Option<ImageError> {
        self.0.borrow_mut().take()
    }

    /// The recorded error, or `e` as a malformed layer.
    pub(crate) fn classify(&self, e: io::Error) -> ImageError {
        self.take()
            .unwrap_or_else(|| ImageError::MalformedLayer(e.to_string()))
    }

    /// The recorded error, or `e`.
    fn or(&self, e: ImageError) -> ImageError {
        self.take().unwrap_or(e)
    }
}

/// The blob as stored: counts, bounds and hashes it.
struct RawReader<R> {
    inner: R,
    read: u64,
    limit: u64,
    expected_size: Option<u64>,
    expected_digest: Option<Digest>,
    hasher: Option<Hasher>,
    /// The digest, once EOF was reached.
    computed: Option<Digest>,
    trip: Trip,
}

impl<R: Read> RawReader<R> {
    /// The verified digest; the stream must have been read to EOF.
    fn finish(mut self) -> Result<Digest, ImageError> {
        if self.computed.is_none() {
            let mut probe = [0u8; 1];
            if self.read(&mut probe).map_err(|e| self.trip.classify(e))? != 0 {
                return Err(ImageError::MalformedLayer(
                    "blob not read to the end".into(),
                ));
            }
        }
        match self.computed.take() {
            Some(d) => Ok(d),
            None => Err(self
                .trip
                .take()
                .unwrap_or_else(|| ImageError::MalformedLayer("blob not verified".into()))),
        }
    }

    fn at_eof(&mut self) -> io::Result<()> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        let actual = hasher.finish();
        self.computed = Some(actual.clone());
        if let Some(expected) = self.expected_size.filter(|e| *e != self.read) {
            return Err(self.trip.set(ImageError::SizeMismatch {
                blob: self.name(),
                expected,
                actual: Some(self.read),
            }));
        }
        if let Some(expected) = self.expected_digest.as_ref().filter(|e| **e != actual) {
            return Err(self.trip.set(ImageError::DigestMismatch {
                expected: expected.clone(),
                actual,
            }));
        }
        Ok(())
    }
}

impl<R: Read> Read for RawReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.computed.is_some() {
            return Ok(0);
        }
        let bound = self.limit.min(self.expected_size.unwrap_or(u64::MAX));
        let room = bound.saturating_sub(self.read);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if want == 0 {
            // At the bound: the stream must end here.
            let mut probe = [0u8; 1];
            let n = self
                .inner
                .read(&mut probe)
                .map_err(|e| self.inner_error(e))?;
            if n == 0 {
                self.at_eof()?;
                return Ok(0);
            }
            return Err(match self.expected_size {
                Some(expected) if expected <= self.limit => {
                    self.trip.set(ImageError::SizeMismatch {
                        blob: self.name(),
                        expected,
                        actual: None,
                    })
                }
                _ => self.trip.set(ImageError::LimitExceeded {
                    what: "compressed layer size",
                    limit: self.limit,
                }),
            });
        }
        let slice = buf.get_mut(..want).unwrap_or_default();
        let n = self.inner.read(slice).map_err(|e| self.inner_error(e))?;
        if n == 0 {
            self.at_eof()?;
            return Ok(0);
        }
        if let (Some(h), Some(data)) = (self.hasher.as_mut(), slice.get(..n)) {
            h.update(data);
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl<R> RawReader<R> {
    fn name(&self) -> String {
        self.expected_digest
            .as_ref()
            .map_or_else(|| "layer".to_owned(), Digest::to_string)
    }

    fn inner_error(&self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::Interrupted {
            return e;
        }
        self.trip.set(ImageError::io("reading blob", e))
    }
}

/// The decompressor picked by [`Compression::sniff`].
enum Decoder<R: Read> {
    Plain(R),
    Gzip(Box<MultiGzDecoder<R>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<R>>>),
}

impl<R: Read> Decoder<R> {
    fn new(compression: Compression, r: R) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Decoder::Plain(r),
            // Multi-member: pigz output and eStargz layers are several gzip
            // members back to back.
            Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(r))),
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::new(r)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Decoder::Zstd(Box::new(d))
            }
        })
    }

    fn into_inner(self) -> R {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// Position and bounds of the decompressed stream, shared between the
/// [`Guard`] (owned by the tar reader) and the loop driving it.
pub(crate) struct GuardState {
    pub(crate) pos: Cell<u64>,
    /// Total bytes allowed.
    pub(crate) limit: u64,
    /// Position the tar reader may not read past before yielding the next
    /// entry (see the module docs).
    pub(crate) deadline: Cell<u64>,
    /// [`Limits::max_header_bytes`], for the error message.
    pub(crate) header_budget: u64,
}

/// Counts, bounds and optionally hashes the stream the tar reader reads.
pub(crate) struct Guard<R> {
    pub(crate) inner: R,
    pub(crate) state: Rc<GuardState>,
    pub(crate) hasher: Option<Hasher>,
    pub(crate) trip: Trip,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let pos = self.state.pos.get();
        let deadline = self.state.deadline.get();
        let stop = self.state.limit.min(deadline);
        let room = stop.saturating_sub(pos);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if want == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            return Err(if deadline < self.state.limit {
                self.trip.set(ImageError::LimitExceeded {
                    what: "tar metadata (headers, long names, PAX records) for one entry",
                    limit: self.state.header_budget,
                })
            } else {
                self.trip.set(ImageError::LimitExceeded {
                    what: "uncompressed layer size",
                    limit: self.state.limit,
                })
            });
        }
        let slice = buf.get_mut(..want).unwrap_or_default();
        let n = self.inner.read(slice)?;
        if let (Some(h), Some(data)) = (self.hasher.as_mut(), slice.get(..n)) {
            h.update(data);
        }
        self.state.pos.set(pos + n as u64);
        Ok(n)
    }
}

impl<R: io::Seek> io::Seek for Guard<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let pos = self.inner.seek(to)?;
        self.state.pos.set(pos);
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip")
                .unwrap(),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_media_type("").unwrap(), None);
        assert!(Compression::from_media_type("application/vnd.oci.image.config.v1+json").is_err());
    }

    #[test]
    fn sniffing() {
        assert_eq!(
            Compression::sniff(&[0x1f, 0x8b, 8]).unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            Compression::sniff(&[0x5e, 0x2a, 0x4d, 0x18]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/").unwrap(), Compression::None);
        assert_eq!(Compression::sniff(b"").unwrap(), Compression::None);
        assert!(Compression::sniff(b"BZh91AY&SY\x00").is_err());
        assert_eq!(Compression::sniff(b"BZh9-name").unwrap(), Compression::None);
    }

    #[test]
    fn file_info_bits() {
        let info = FileInfo {
            kind: EntryKind::File,
            mode: 0o4755,
            uid: 0,
            gid: 0,
            size: 0,
        };
        assert!(info.is_setuid());
        assert!(!info.is_setgid());
        assert!(!info.is_world_writable());
    }
}
