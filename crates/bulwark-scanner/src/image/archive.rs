//! Image archives: `docker save` tarballs and OCI layouts packed in a tar.
//!
//! The archive is indexed once (member name → offset and size, seeking
//! over member data) and members are then read in place: nothing is
//! extracted. Formats:
//!
//! - OCI layout in a tar (`oci-layout`, `index.json`, `blobs/...`): written
//!   by `skopeo copy ... oci-archive:`, BuildKit `--output type=oci`, and
//!   by `docker save` since Docker 25 alongside `manifest.json`. Preferred
//!   when present: it has manifests, so descriptors with sizes and a
//!   manifest digest.
//! - Classic `docker save` (`manifest.json` listing `Config`, `RepoTags`
//!   and `Layers` paths). Layers at `blobs/<alg>/<hex>` are verified by
//!   that digest; layers at `<id>/layer.tar` are uncompressed and verified
//!   against the config's `rootfs.diff_ids`. The config is verified by its
//!   file name (`<hex>.json` or `blobs/sha256/<hex>`).
//!
//! Symlinked members (older `docker save` links identical layers) are
//! followed. Compressed archives (`docker save | gzip`) cannot be read in
//! place and are refused with a message saying so.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bulwark_oci::Digest;
use serde::Deserialize;

use super::config::ImageConfig;
use super::layer::{Compression, Guard, GuardState, Trip};
use super::oci_layout::check_layout_marker;
use super::path::{self, normalize};
use super::source::{BlobRef, BlobSource, ResolvedImage, Selector, read_blob, read_bounded};
use super::{ImageError, Limits};

/// Links followed when opening a member.
const MAX_MEMBER_LINKS: usize = 16;

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

#[derive(Debug, Clone)]
struct SavedImage {
    repo_tags: Vec<String>,
    config: BlobRef,
    layers: Vec<BlobRef>,
}

#[derive(Debug, Clone)]
enum Format {
    Oci,
    Docker(Vec<SavedImage>),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A `docker save` or OCI layout tarball, read in place; see the module
/// docs.
#[derive(Debug, Clone)]
pub struct DockerArchive {
    path: PathBuf,
    members: HashMap<String, Member>,
    blobs: HashMap<Digest, String>,
    format: Format,
}

impl DockerArchive {
    /// Indexes the archive at `path` and reads its `manifest.json` (and
    /// the configs it names) or checks its `oci-layout`.
    pub fn open(path: impl AsRef<Path>, limits: &Limits) -> Result<DockerArchive, ImageError> {
        let path = path.as_ref().to_path_buf();
        let ctx = || format!("reading {}", path.display());
        let mut file = File::open(&path).map_err(|e| ImageError::io(ctx(), e))?;
        let mut magic = [0u8; 6];
        let got = read_up_to(&mut file, &mut magic).map_err(|e| ImageError::io(ctx(), e))?;
        if Compression::sniff(magic.get(..got).unwrap_or_default())? != Compression::None {
            return Err(ImageError::UnsupportedMediaType(
                "compressed image archive: decompress it first (it is read in place)".into(),
            ));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ImageError::io(ctx(), e))?;
        let members = index_members(file, limits)?;

        let mut blobs = HashMap::new();
        for name in members.keys() {
            if let Some(d) = digest_of_blob_path(name) {
                blobs.insert(d, name.clone());
            }
        }
        let mut archive = DockerArchive {
            path,
            members,
            blobs,
            format: Format::Oci,
        };
        if archive.members.contains_key("index.json") && archive.members.contains_key("oci-layout")
        {
            let marker = archive.read_member("oci-layout", 64 * 1024)?;
            check_layout_marker(&marker)?;
            return Ok(archive);
        }
        if !archive.members.contains_key("manifest.json") {
            return Err(ImageError::InvalidLayout(
                "archive has neither manifest.json nor an OCI layout (oci-layout, index.json)"
                    .into(),
            ));
        }
        let bytes = archive.read_member("manifest.json", limits.max_metadata_bytes)?;
        let entries: Vec<ManifestEntry> = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::InvalidLayout(format!("manifest.json: {e}")))?;
        let mut images = Vec::with_capacity(entries.len());
        let mut diff_ids = HashMap::new();
        for entry in entries {
            images.push(archive.saved_image(entry, limits, &mut diff_ids)?);
        }
        archive.format = Format::Docker(images);
        Ok(archive)
    }

    /// The image `selector` picks. For `docker save` archives the reference
    /// is matched against `RepoTags` (`alpine:3.18`) or just their tag
    /// (`3.18`); the platform is not consulted (each saved image has one).
    pub fn resolve(
        &self,
        selector: &Selector,
        limits: &Limits,
    ) -> Result<ResolvedImage, ImageError> {
        match &self.format {
            Format::Oci => {
                let index = self.read_member("index.json", limits.max_metadata_bytes)?;
                super::source::resolve_index(self, &index, selector, limits)
            }
            Format::Docker(images) => {
                let chosen: Vec<&SavedImage> = match &selector.reference {
                    Some(r) => images
                        .iter()
                        .filter(|i| {
                            i.repo_tags.iter().any(|t| {
                                t == r || t.rsplit_once(':').is_some_and(|(_, tag)| tag == r)
                            })
                        })
                        .collect(),
                    None => images.iter().collect(),
                };
                let tags = || {
                    let all: Vec<&str> = images
                        .iter()
                        .flat_map(|i| i.repo_tags.iter().map(String::as_str))
                        .collect();
                    if all.is_empty() {
                        "none".to_owned()
                    } else {
                        all.join(", ")
                    }
                };
                match chosen.as_slice() {
                    [one] => Ok(ResolvedImage {
                        manifest_digest: None,
                        config: one.config.clone(),
                        layers: one.layers.clone(),
                    }),
                    [] => Err(ImageError::NoMatch(match &selector.reference {
                        Some(r) => format!("no image tagged {r:?}; tags: {}", tags()),
                        None => "manifest.json lists no images".into(),
                    })),
                    many => Err(ImageError::NoMatch(format!(
                        "{} images match; choose one by tag: {}",
                        many.len(),
                        tags()
                    ))),
                }
            }
        }
    }

    /// `RepoTags` of every image in a `docker save` archive (empty for OCI
    /// layout archives).
    pub fn repo_tags(&self) -> Vec<&str> {
        match &self.format {
            Format::Oci => Vec::new(),
            Format::Docker(images) => images
                .iter()
                .flat_map(|i| i.repo_tags.iter().map(String::as_str))
                .collect(),
        }
    }

    /// Reads one `manifest.json` entry. `diff_ids` caches configs already
    /// read, so a manifest naming one config many times reads it once.
    fn saved_image(
        &mut self,
        entry: ManifestEntry,
        limits: &Limits,
        diff_ids: &mut HashMap<Digest, Vec<Digest>>,
    ) -> Result<SavedImage, ImageError> {
        let config_path = normalize(entry.config.as_bytes(), limits.max_path_len)?;
        let config_digest = digest_of_blob_path(&config_path)
            .or_else(|| digest_of_config_name(&config_path))
            .ok_or_else(|| {
                ImageError::InvalidLayout(format!(
                    "config path {config_path:?} does not name its digest"
                ))
            })?;
        let config_size = self.member_size(&config_path)?;
        self.blobs.insert(config_digest.clone(), config_path);
        let config = BlobRef {
            digest: config_digest,
            size: Some(config_size),
            media_type: bulwark_oci::media_types::DOCKER_CONFIG.into(),
        };
        let diff_ids = match diff_ids.get(&config.digest) {
            Some(ids) => ids.clone(),
            None => {
                let bytes = read_blob(self, &config, limits.max_metadata_bytes)?;
                let ids = ImageConfig::parse(&bytes)?.diff_ids;
                diff_ids.insert(config.digest.clone(), ids.clone());
                ids
            }
        };
        if entry.layers.len() > limits.max_layers {
            return Err(ImageError::LimitExceeded {
                what: "layers in one image",
                limit: limits.max_layers as u64,
            });
        }
        let mut layers = Vec::with_capacity(entry.layers.len());
        for (i, raw) in entry.layers.iter().enumerate() {
            let layer_path = normalize(raw.as_bytes(), limits.max_path_len)?;
            let size = self.member_size(&layer_path)?;
            let digest = match digest_of_blob_path(&layer_path) {
                Some(d) => d,
                None => diff_ids.get(i).cloned().ok_or_else(|| {
                    ImageError::InvalidLayout(format!(
                        "layer {layer_path:?} has no digest: its path names none and the \
                         config lists {} diff_ids for {} layers",
                        diff_ids.len(),
                        entry.layers.len()
                    ))
                })?,
            };
            self.blobs.insert(digest.clone(), layer_path);
            layers.push(BlobRef {
                digest,
                size: Some(size),
                media_type: String::new(),
            });
        }
        Ok(SavedImage {
            repo_tags: entry.repo_tags.unwrap_or_default(),
            config,
            layers,
        })
    }

    /// The data range of a member, following links.
    fn locate(&self, name: &str) -> Result<(u64, u64), ImageError> {
        let mut name = name.to_owned();
        for _ in 0..=MAX_MEMBER_LINKS {
            match self.members.get(&name) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(target)) => name = target.clone(),
                None => {
                    return Err(ImageError::InvalidLayout(format!(
                        "archive member {name:?} is missing"
                    )));
                }
            }
        }
        Err(ImageError::InvalidLayout(format!(
            "archive member {name:?}: too many links"
        )))
    }

    fn member_size(&self, name: &str) -> Result<u64, ImageError> {
        self.locate(name).map(|(_, size)| size)
    }

    fn open_member(&self, name: &str) -> Result<io::Take<File>, ImageError> {
        let (offset, size) = self.locate(name)?;
        let ctx = || format!("reading {name} in {}", self.path.display());
        let mut f = File::open(&self.path).map_err(|e| ImageError::io(ctx(), e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| ImageError::io(ctx(), e))?;
        Ok(f.take(size))
    }

    fn read_member(&self, name: &str, max: u64) -> Result<Vec<u8>, ImageError> {
        read_bounded(self.open_member(name)?, max, name)
    }
}

impl BlobSource for DockerArchive {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let name = self
            .blobs
            .get(digest)
            .ok_or_else(|| ImageError::BlobNotFound(digest.clone()))?;
        Ok(Box::new(self.open_member(name)?))
    }
}

/// Member name → location, for every regular file and link in the tar.
/// Members whose names escape the root or are too long are ignored (no
/// manifest can name them); later members replace earlier ones.
fn index_members(file: File, limits: &Limits) -> Result<HashMap<String, Member>, ImageError> {
    let trip = Trip::default();
    let state = Rc::new(GuardState {
        pos: std::cell::Cell::new(0),
        limit: u64::MAX,
        deadline: std::cell::Cell::new(limits.max_header_bytes),
        header_budget: limits.max_header_bytes,
    });
    let guard = Guard {
        inner: file,
        state: Rc::clone(&state),
        hasher: None,
        trip: trip.clone(),
    };
    let mut archive = tar::Archive::new(guard);
    let mut members = HashMap::new();
    let mut count = 0u64;
    for item in archive.entries_with_seek().map_err(|e| trip.classify(e))? {
        let entry = item.map_err(|e| trip.classify(e))?;
        count += 1;
        if count > limits.max_entries {
            return Err(ImageError::LimitExceeded {
                what: "members in the image archive",
                limit: limits.max_entries,
            });
        }
        let size = entry.size();
        let padded = size.saturating_add(511) / 512 * 512;
        state.deadline.set(
            state
                .pos
                .get()
                .saturating_add(padded)
                .saturating_add(limits.max_header_bytes),
        );
        let Ok(name) = normalize(&entry.path_bytes(), limits.max_path_len) else {
            continue;
        };
        let link_target = || -> Option<String> {
            let raw = entry.link_name_bytes()?;
            normalize(&raw, limits.max_path_len).ok()
        };
        let member = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                offset: entry.raw_file_position(),
                size,
            },
            tar::EntryType::Link => match link_target() {
                Some(t) => Member::Link(t),
                None => continue,
            },
            tar::EntryType::Symlink => {
                let Some(raw) = entry.link_name_bytes() else {
                    continue;
                };
                let joined = if raw.starts_with(b"/") {
                    raw.into_owned()
                } else {
                    let mut j = path::parent(&name).as_bytes().to_vec();
                    j.push(b'/');
                    j.extend_from_slice(&raw);
                    j
                };
                match normalize(&joined, limits.max_path_len) {
                    Ok(t) => Member::Link(t),
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        members.insert(name, member);
    }
    Ok(members)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// `blobs/sha256/<hex>` → `sha256:<hex>`.
fn digest_of_blob_path(name: &str) -> Option<Digest> {
    let rest = name.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    Digest::parse(&format!("{alg}:{hex}")).ok()
}

/// `<hex>.json` (classic `docker save`) → `sha256:<hex>`.
fn digest_of_config_name(name: &str) -> Option<Digest> {
    let hex = name.strip_suffix(".json")?;
    if hex.contains('/') {
        return None;
    }
    Digest::parse(&format!("sha256:{hex}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_from_names() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            digest_of_blob_path(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .hex(),
            hex
        );
        assert!(digest_of_blob_path("blobs/sha256/xyz").is_none());
        assert!(digest_of_blob_path(&format!("x/sha256/{hex}")).is_none());
        assert_eq!(
            digest_of_config_name(&format!("{hex}.json")).unwrap().hex(),
            hex
        );
        assert!(digest_of_config_name("manifest.json").is_none());
        assert!(digest_of_config_name(&format!("a/{hex}.json")).is_none());
    }
}
