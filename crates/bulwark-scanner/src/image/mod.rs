//! Image input: from an image to the files the inventory parsers need.
//!
//! This module owns reading an OCI or Docker image as untrusted input and
//! producing a [`ScannedImage`]: the image config, the squashed file tree
//! (metadata for every path, content for the few wanted ones), the detected
//! distribution and the packages found, each attributed to a layer. Nothing
//! is unpacked to disk and no layer is held in memory: each blob is streamed
//! once through digest verification, decompression and a tar reader.
//!
//! The pieces, bottom up:
//!
//! - [`layer::read_layer`] streams one layer blob. It verifies the blob's
//!   digest and size as it reads (and the uncompressed `diff_id` when one is
//!   given), picks the decompressor from the blob's magic bytes (the media
//!   type is only a claim: a layer declared `tar+gzip` that is plain tar is
//!   read as plain tar), and hands each tar entry to a sink as an
//!   [`Entry`] with a normalised path, its kind, mode bits, owner and size;
//!   for paths a predicate wants, the file's content too.
//! - [`Squash`] applies layers in order with OCI whiteout semantics
//!   (`.wh.<name>`, `.wh..wh..opq`) and answers lookups, following symlinks
//!   with [`Squash::resolve`].
//! - [`source`] finds the manifest, config and layers of an image: in an OCI
//!   image layout directory ([`OciLayout`]), in a `docker save` or OCI
//!   layout tarball ([`DockerArchive`]), or in any store behind the
//!   [`BlobSource`] trait (the registry's own blob store). Index entries are
//!   picked by reference name and [`Platform`] (default `linux/amd64`).
//! - [`scan`] ties these together: [`scan_image`], [`scan_oci_layout`],
//!   [`scan_docker_archive`].
//!
//! # Untrusted input
//!
//! Every size, count and length an image controls is bounded by [`Limits`];
//! breaking a limit is an error naming it, never a panic, a hang or an
//! unbounded allocation. Specific decisions:
//!
//! - An entry path, hardlink target or whiteout that climbs above the root
//!   with `..` is rejected: the whole scan fails with
//!   [`ImageError::PathEscapes`]. Runtimes disagree on such entries (Docker
//!   refuses the layer, containerd clamps the path to the root), so no
//!   single reading of the image is "what runs"; a scanner that guessed
//!   would report on an image nobody runs. Absolute paths are ordinary and
//!   are made root-relative.
//! - Symlink targets are kept as written and only interpreted by
//!   [`Squash::resolve`], relative to the image root (as inside the
//!   container), so a link to `/etc/shadow` or `../../..` never leaves it.
//! - Entries are keyed by their literal path. An entry written below a
//!   directory that a lower layer made a symlink (`lib/x` when `lib ->
//!   usr/lib`) stays at `lib/x`, where extraction would have put it under
//!   `usr/lib`; lookups through [`Squash::resolve`] still find it.
//! - A wanted file over [`Limits::max_file_bytes`] keeps its metadata but
//!   not its content, and is reported as a [`ScanWarning`].

use std::io;

use bulwark_oci::{Digest, ManifestError};

pub mod config;
pub mod layer;
pub mod limits;
pub mod path;
pub mod scan;
pub mod source;
pub mod squash;

mod archive;
mod oci_layout;

pub use archive::DockerArchive;
pub use config::{HistoryEntry, ImageConfig};
pub use layer::{
    Compression, Content, Entry, EntryKind, FileInfo, LayerSpec, LayerSummary, read_layer,
};
pub use limits::Limits;
pub use oci_layout::OciLayout;
pub use scan::{
    ImagePackage, ScanOptions, ScannedImage, default_wanted, scan_docker_archive, scan_image,
    scan_oci_layout,
};
pub use source::{BlobRef, BlobSource, Platform, ResolvedImage, Selector};
pub use squash::{Squash, SquashedFile};

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading a file or blob failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// One of the [`Limits`] was exceeded; `what` names it.
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded { what: &'static str, limit: u64 },
    /// The layer is not a valid (compressed) tar stream: bad compression
    /// data, a truncated stream, a corrupt tar header.
    #[error("malformed layer: {0}")]
    MalformedLayer(String),
    /// An entry path or hardlink target climbs above the image root.
    #[error("entry path {0:?} escapes the image root")]
    PathEscapes(String),
    /// A path or link target is longer than [`Limits::max_path_len`].
    #[error("path of {len} bytes exceeds the {limit}-byte limit: {prefix:?}")]
    PathTooLong {
        len: usize,
        limit: usize,
        prefix: String,
    },
    /// A whiteout names nothing (`.wh.`) or a parent (`.wh..`).
    #[error("invalid whiteout {0:?}")]
    InvalidWhiteout(String),
    /// More than [`Limits::max_symlink_hops`] symlinks on the way: a loop.
    #[error("too many levels of symbolic links resolving {path:?} (limit {limit})")]
    SymlinkLoop { path: String, limit: usize },
    /// A blob's content does not hash to the digest it was fetched by.
    #[error("blob digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// A blob is shorter or longer than its descriptor's size.
    #[error("blob {blob}: descriptor size is {expected} bytes, blob has {}", describe_size(*.actual, *.expected))]
    SizeMismatch {
        /// The blob's digest (or a name when it has none).
        blob: String,
        expected: u64,
        /// The blob's size, or `None` when it is longer than `expected`
        /// (reading stops there).
        actual: Option<u64>,
    },
    /// The uncompressed layer does not hash to the config's
    /// `rootfs.diff_ids` entry.
    #[error("uncompressed layer hashes to {actual}, config rootfs.diff_ids says {expected}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    /// The blob source does not hold this blob.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// A layer, config or manifest media type this module does not read, or
    /// a compression OCI layers cannot use.
    #[error("unsupported media type or format: {0}")]
    UnsupportedMediaType(String),
    /// A manifest or index is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The image config is not a JSON object or lists invalid `diff_ids`.
    #[error("invalid image config: {0}")]
    InvalidConfig(String),
    /// An OCI layout or image archive is malformed (missing `index.json`,
    /// `manifest.json` naming absent files, ...).
    #[error("invalid image layout: {0}")]
    InvalidLayout(String),
    /// No manifest matches the requested reference or platform, or several
    /// do and none was requested.
    #[error("no image selected: {0}")]
    NoMatch(String),
    /// An error inside one layer, with the layer it happened in.
    #[error("layer {index} ({digest}): {source}")]
    Layer {
        index: usize,
        digest: String,
        source: Box<ImageError>,
    },
}

fn describe_size(actual: Option<u64>, expected: u64) -> String {
    match actual {
        Some(n) => format!("{n} bytes"),
        None => format!("more than {expected} bytes"),
    }
}

impl ImageError {
    /// The error without [`ImageError::Layer`] context.
    pub fn root(&self) -> &ImageError {
        match self {
            ImageError::Layer { source, .. } => source.root(),
            other => other,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ImageError {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Something a scan skipped or could not interpret, without failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanWarning {
    /// The layer (index into the manifest's layers) it concerns, if one.
    pub layer: Option<usize>,
    /// The path it concerns.
    pub path: String,
    pub message: String,
}

/// At most this many warnings are kept; further ones are only counted.
pub const MAX_WARNINGS: usize = 1000;

/// A bounded list of warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warnings {
    pub list: Vec<ScanWarning>,
    /// Warnings past [`MAX_WARNINGS`], counted but not kept.
    pub omitted: usize,
}

impl Warnings {
    pub(crate) fn push(&mut self, layer: Option<usize>, path: &str, message: impl Into<String>) {
        if self.list.len() < MAX_WARNINGS {
            self.list.push(ScanWarning {
                layer,
                path: path.to_owned(),
                message: message.into(),
            });
        } else {
            self.omitted = self.omitted.saturating_add(1);
        }
    }

    pub(crate) fn extend(&mut self, other: Warnings) {
        for w in other.list {
            self.push(w.layer, &w.path, w.message);
        }
        self.omitted = self.omitted.saturating_add(other.omitted);
    }
}
