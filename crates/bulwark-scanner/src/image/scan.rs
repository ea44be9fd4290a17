//! Scanning an image: config, layers, squashed tree, distro, packages.
//!
//! # Layer attribution
//!
//! A package is attributed to the layer that introduced it, not merely to
//! the layer that last wrote its database: `apt-get install curl` in layer
//! 3 rewrites `var/lib/dpkg/status`, but the hundred packages of the base
//! layer listed in it still come from layer 0. After each layer, every
//! package file the layer wrote is parsed and each `(name, version)` keeps
//! the layer it first appeared in for as long as every rewrite of that file
//! keeps listing it; an upgrade, a removal and re-install, or a whiteout of
//! the file resets it. [`ImagePackage::file_layer`] is the layer that last
//! wrote the file.
//!
//! Packages are not deduplicated across files: two copies of a library in
//! different places are two findings. Package files are parsed at the path
//! they have in the tree; one that is itself a symlink is not followed.
//! Package files that fail to parse are [`ScannedImage::warnings`], not
//! errors.

use std::collections::HashMap;
use std::path::Path;

use bulwark_oci::Digest;

use super::config::ImageConfig;
use super::layer::{Content, Entry, LayerSpec, LayerSummary, read_layer};
use super::source::{BlobSource, ResolvedImage, Selector, read_blob};
use super::squash::Squash;
use super::{DockerArchive, ImageError, Limits, OciLayout, Warnings};
use crate::distro::{self, Distro};
use crate::inventory::{self, Package, Parser};

/// Files `distro::detect` reads.
pub const RELEASE_FILES: &[&str] = &[
    "etc/os-release",
    "usr/lib/os-release",
    "etc/alpine-release",
    "etc/redhat-release",
    "etc/debian_version",
];

/// The default predicate for which files' content to read: every file an
/// inventory parser handles, and the release files distro detection reads.
///
/// That includes possible Go and Rust executables, which can sit anywhere: by path
/// alone (the predicate runs before the content is seen), extensionless
/// files outside data trees such as `usr/share` and `etc` (see
/// [`inventory::gobinary::is_candidate`]), and Java archives (`*.jar`,
/// `*.war`, `*.ear`). With [`ScanOptions::compact`] (the default) such a
/// file is reduced to a compact record as soon as it is read, so the cost
/// is reading it, not holding it.
pub fn default_wanted(path: &str) -> bool {
    RELEASE_FILES.contains(&path) || inventory::parser_for(path).is_some()
}

/// With [`ScanOptions::compact`]: replaces the content of an executable or
/// Java archive routed to the Go or Java parser by the small record that
/// parser reads back ([`inventory::extract_executable`],
/// [`inventory::java::extract`]); an ELF file with neither Go build info
/// nor `cargo auditable` data loses its content. Other content (scripts,
/// text) is left as read.
fn compact(mut entry: Entry) -> Entry {
    let Content::Loaded(bytes) = &entry.content else {
        return entry;
    };
    match inventory::parser_for(&entry.path) {
        Some(Parser::Executable) if bytes.starts_with(b"\x7fELF") => {
            entry.content = match inventory::extract_executable(bytes) {
                Some(record) => Content::Loaded(record),
                None => Content::Skipped,
            };
        }
        Some(Parser::JavaArchive) if bytes.starts_with(b"PK") => {
            entry.content = Content::Loaded(inventory::java::extract(bytes));
        }
        _ => {}
    }
    entry
}

/// How to scan.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub limits: Limits,
    /// Which image of a multi-image input (OCI layout, archive) to scan.
    pub selector: Selector,
    /// Which regular files' content to read, by normalised path.
    pub wanted: fn(&str) -> bool,
    /// Keep only a compact inventory record of wanted ELF executables and
    /// zip-format Java archives (see [`default_wanted`]), not their bytes,
    /// so that images full of binaries and jars stay well within
    /// [`Limits::max_content_bytes`]. Default `true`; turn it off to get
    /// those files' full content in [`ScannedImage::files`].
    pub compact: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            limits: Limits::default(),
            selector: Selector::default(),
            wanted: default_wanted,
            compact: true,
        }
    }
}

/// A package found in an image, with the layer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePackage {
    pub package: Package,
    /// Index of the layer that introduced the package (see the module
    /// docs).
    pub layer: usize,
    /// That layer's digest (as in [`ScannedImage::layers`]).
    pub layer_digest: Digest,
    /// Index of the layer that last wrote the file the package was read
    /// from.
    pub file_layer: usize,
}

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct ScannedImage {
    /// The image manifest's digest (`None` for `docker save` archives).
    pub manifest_digest: Option<Digest>,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// Layer blob digests, bottom first. For `docker save` layers named
    /// `<id>/layer.tar` this is the uncompressed digest (the diff_id).
    pub layers: Vec<Digest>,
    /// What reading each layer found (compression, sizes, entry counts).
    pub layer_summaries: Vec<LayerSummary>,
    /// The squashed tree: metadata of every path, content of wanted files.
    pub files: Squash,
    pub distro: Option<Distro>,
    pub packages: Vec<ImagePackage>,
    /// What was skipped: oversized wanted files, dangling hardlinks,
    /// package files that failed to parse.
    pub warnings: Warnings,
}

/// Scans the image at an OCI layout directory.
pub fn scan_oci_layout(
    dir: impl AsRef<Path>,
    options: &ScanOptions,
) -> Result<ScannedImage, ImageError> {
    let layout = OciLayout::open(dir)?;
    let image = layout.resolve(&options.selector, &options.limits)?;
    scan_image(&layout, &image, options)
}

/// Scans an image in a `docker save` or OCI layout tarball.
pub fn scan_docker_archive(
    path: impl AsRef<Path>,
    options: &ScanOptions,
) -> Result<ScannedImage, ImageError> {
    let archive = DockerArchive::open(path, &options.limits)?;
    let image = archive.resolve(&options.selector, &options.limits)?;
    scan_image(&archive, &image, options)
}

/// Scans `image`, reading its blobs from `source`.
///
/// Errors inside a layer are wrapped in [`ImageError::Layer`]; use
/// [`ImageError::root`] to match on the cause.
pub fn scan_image(
    source: &dyn BlobSource,
    image: &ResolvedImage,
    options: &ScanOptions,
) -> Result<ScannedImage, ImageError> {
    let limits = &options.limits;
    if image.layers.len() > limits.max_layers {
        return Err(ImageError::LimitExceeded {
            what: "layers in one image",
            limit: limits.max_layers as u64,
        });
    }
    let config_bytes = read_blob(source, &image.config, limits.max_metadata_bytes)?;
    let config = ImageConfig::parse(&config_bytes)?;
    let verify_diff_ids = !config.diff_ids.is_empty();
    if verify_diff_ids && config.diff_ids.len() != image.layers.len() {
        return Err(ImageError::InvalidConfig(format!(
            "rootfs.diff_ids lists {} layers, the manifest {}",
            config.diff_ids.len(),
            image.layers.len()
        )));
    }

    let mut squash = Squash::new(limits);
    let mut summaries = Vec::with_capacity(image.layers.len());
    let mut warnings = Warnings::default();
    let mut origins = Origins::default();
    for (index, blob) in image.layers.iter().enumerate() {
        let in_layer = |e: ImageError| ImageError::Layer {
            index,
            digest: blob.digest.to_string(),
            source: Box::new(e),
        };
        let spec = LayerSpec {
            media_type: blob.media_type.clone(),
            digest: Some(blob.digest.clone()),
            size: blob.size,
            diff_id: config.diff_ids.get(index).cloned(),
        };
        let reader = source.open(&blob.digest).map_err(in_layer)?;
        squash.begin_layer();
        let summary = read_layer(reader, &spec, limits, &options.wanted, &mut |entry| {
            squash.apply(if options.compact {
                compact(entry)
            } else {
                entry
            })
        })
        .map_err(in_layer)?;
        let written = squash.end_layer();
        origins.update(&squash, index, &written);
        summaries.push(summary);
    }
    warnings.extend(squash.warnings().clone());

    let distro = distro::detect(&|p: &str| squash.read(p).map(<[u8]>::to_vec));
    let layer_digests: Vec<Digest> = image.layers.iter().map(|l| l.digest.clone()).collect();
    let mut packages = Vec::new();
    // rpm reads one database: after a conversion to sqlite, a leftover Berkeley DB is stale.
    let rpm_sqlite = squash.iter().any(|(path, node)| {
        node.content.is_some() && inventory::parser_for(path) == Some(inventory::Parser::RpmSqlite)
    });
    for (path, node) in squash.iter() {
        let Some(content) = &node.content else {
            continue;
        };
        if rpm_sqlite && inventory::parser_for(path) == Some(inventory::Parser::RpmBerkeley) {
            continue;
        }
        match inventory::parse(path, content, distro.as_ref()) {
            None => {}
            Some(Err(e)) => warnings.push(Some(node.layer), path, e.to_string()),
            Some(Ok(found)) => {
                for package in found {
                    let layer = origins.layer_of(path, &package).unwrap_or(node.layer);
                    let Some(layer_digest) = layer_digests.get(layer).cloned() else {
                        continue;
                    };
                    packages.push(ImagePackage {
                        package,
                        layer,
                        layer_digest,
                        file_layer: node.layer,
                    });
                }
            }
        }
    }

    Ok(ScannedImage {
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config.digest.clone(),
        config,
        layers: layer_digests,
        layer_summaries: summaries,
        files: squash,
        distro,
        packages,
        warnings,
    })
}

/// For each package file, the layer each `(name, version)` it lists first
/// appeared in (see the module docs).
#[derive(Default)]
struct Origins {
    files: HashMap<String, HashMap<(String, String), usize>>,
}

impl Origins {
    fn update(&mut self, squash: &Squash, layer: usize, written: &[String]) {
        for path in written {
            if inventory::parser_for(path).is_none() {
                continue;
            }
            let parsed = squash
                .get(path)
                .and_then(|n| n.content.as_ref())
                .and_then(|c| inventory::parse(path, c, None))
                .and_then(Result::ok);
            let Some(packages) = parsed else {
                self.files.remove(path);
                continue;
            };
            let old = self.files.remove(path).unwrap_or_default();
            let new = packages
                .into_iter()
                .map(|p| {
                    let key = (p.name, p.version);
                    let first = old.get(&key).copied().unwrap_or(layer);
                    (key, first)
                })
                .collect();
            self.files.insert(path.clone(), new);
        }
        // Whiteouts and replaced directories drop files.
        self.files.retain(|path, _| squash.get(path).is_some());
    }

    fn layer_of(&self, path: &str, package: &Package) -> Option<usize> {
        self.files
            .get(path)?
            .get(&(package.name.clone(), package.version.clone()))
            .copied()
    }
}
