//! Resource limits for reading untrusted images.

/// Bounds on everything an image can make the scanner read, hold or walk.
///
/// Every limit is enforced while streaming and breaking one is an
/// [`ImageError::LimitExceeded`](super::ImageError::LimitExceeded) naming the
/// limit, except [`max_file_bytes`](Limits::max_file_bytes): a wanted file
/// larger than that keeps its metadata, loses its content, and is reported
/// as a [`ScanWarning`](super::ScanWarning), so that one oversized lockfile
/// cannot make a whole image unscannable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes read from one layer blob (compressed, as stored). Default 8 GiB.
    pub max_compressed_layer_bytes: u64,
    /// Bytes of tar stream one layer may decompress to: the decompression
    /// bomb guard. Default 8 GiB.
    pub max_layer_bytes: u64,
    /// Tar entries in one layer (or in an image archive). Default 1,000,000.
    pub max_entries: u64,
    /// Length in bytes of an entry path, hardlink or symlink target.
    /// Default 4096 (Linux `PATH_MAX`).
    pub max_path_len: usize,
    /// Tar metadata in front of one entry: its header blocks, GNU long
    /// names and PAX records, which the tar reader holds in memory. Default
    /// 1 MiB.
    pub max_header_bytes: u64,
    /// Size of one wanted file whose content is loaded. Default 64 MiB
    /// (the inventory parsers' own limit).
    pub max_file_bytes: u64,
    /// Wanted-file content held in memory for the whole image. Default
    /// 512 MiB.
    pub max_content_bytes: u64,
    /// Paths held in the squashed tree (files, directories, links).
    /// Default 4,000,000.
    pub max_tree_entries: u64,
    /// Layers in one image. Default 1000.
    pub max_layers: usize,
    /// Size of a manifest, index, image config or archive `manifest.json`.
    /// Default 8 MiB.
    pub max_metadata_bytes: u64,
    /// Symlinks followed while resolving one path. Default 40 (Linux
    /// `MAXSYMLINKS`).
    pub max_symlink_hops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        const GIB: u64 = 1024 * 1024 * 1024;
        const MIB: u64 = 1024 * 1024;
        Limits {
            max_compressed_layer_bytes: 8 * GIB,
            max_layer_bytes: 8 * GIB,
            max_entries: 1_000_000,
            max_path_len: 4096,
            max_header_bytes: MIB,
            max_file_bytes: 64 * MIB,
            max_content_bytes: 512 * MIB,
            max_tree_entries: 4_000_000,
            max_layers: 1000,
            max_metadata_bytes: 8 * MIB,
            max_symlink_hops: 40,
        }
    }
}
