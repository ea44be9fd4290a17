//! Where an image's blobs come from, and which manifest is the image.
//!
//! A [`BlobSource`] opens blobs by digest: an OCI layout directory, an image
//! archive, an in-memory map, or the registry's blob store. Whatever the
//! source, nothing it returns is trusted: every blob is hashed as it is read
//! and must match the digest it was asked for (and the descriptor's size,
//! when there is one).
//!
//! Choosing the image: an index (an OCI layout's `index.json`, an image
//! index or Docker manifest list) is narrowed by [`Selector::reference`]
//! (matched against the `org.opencontainers.image.ref.name` and
//! `io.containerd.image.name` annotations), then by [`Selector::platform`];
//! nested indexes are followed up to [`MAX_INDEX_DEPTH`] levels.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;

use bulwark_oci::media_types::{self, essence};
use bulwark_oci::{Descriptor, Digest, Hasher, ManifestKind, ParsedManifest};

use super::{ImageError, Limits};

/// Annotation naming a manifest in an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker add with the full image name.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// Indexes nested deeper than this are refused.
pub const MAX_INDEX_DEPTH: usize = 4;

/// Opens blobs by digest.
pub trait BlobSource {
    /// A reader over the blob's bytes as stored, or
    /// [`ImageError::BlobNotFound`]. Callers verify the content.
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError>;
}

impl<S: BlobSource + ?Sized> BlobSource for &S {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        (**self).open(digest)
    }
}

impl BlobSource for BTreeMap<Digest, Vec<u8>> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let bytes = self
            .get(digest)
            .ok_or_else(|| ImageError::BlobNotFound(digest.clone()))?;
        Ok(Box::new(bytes.as_slice()))
    }
}

impl BlobSource for HashMap<Digest, Vec<u8>> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let bytes = self
            .get(digest)
            .ok_or_else(|| ImageError::BlobNotFound(digest.clone()))?;
        Ok(Box::new(bytes.as_slice()))
    }
}

/// A blob of the image: config or layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: Digest,
    /// The descriptor's size, verified when known.
    pub size: Option<u64>,
    /// The descriptor's media type; empty when unknown (`docker save`).
    pub media_type: String,
}

impl From<&Descriptor> for BlobRef {
    fn from(d: &Descriptor) -> BlobRef {
        BlobRef {
            digest: d.digest.clone(),
            size: Some(d.size),
            media_type: d.media_type.clone(),
        }
    }
}

/// One image, its blobs identified: what [`scan_image`](super::scan_image)
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The image manifest's digest; `None` for `docker save` archives,
    /// which carry no manifest.
    pub manifest_digest: Option<Digest>,
    pub config: BlobRef,
    /// Bottom layer first.
    pub layers: Vec<BlobRef>,
}

impl ResolvedImage {
    /// The image described by an image manifest. Refuses indexes and
    /// manifests whose config is not an image config (artifacts).
    pub fn from_manifest(
        manifest_digest: Option<Digest>,
        manifest: &ParsedManifest,
    ) -> Result<ResolvedImage, ImageError> {
        if manifest.kind != ManifestKind::Image {
            return Err(ImageError::UnsupportedMediaType(format!(
                "{} is an index, not an image manifest",
                manifest.media_type
            )));
        }
        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| ImageError::InvalidLayout("manifest has no config".into()))?;
        match essence(&config.media_type) {
            media_types::OCI_CONFIG | media_types::DOCKER_CONFIG => {}
            other => {
                return Err(ImageError::UnsupportedMediaType(format!(
                    "config media type {other:?}: not a container image"
                )));
            }
        }
        Ok(ResolvedImage {
            manifest_digest,
            config: config.into(),
            layers: manifest.layers.iter().map(BlobRef::from).collect(),
        })
    }
}

/// An OS / architecture / variant triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    /// `linux/amd64`.
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Parses `os/arch[/variant]` (`linux/arm64/v8`). Architecture aliases
    /// are normalised (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(s: &str) -> Result<Platform, ImageError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ImageError::NoMatch(format!("invalid platform {s:?}; want os/arch[/variant]"));
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => {
                let variant = parts
                    .get(2)
                    .filter(|v| !v.is_empty())
                    .map(|v| v.to_string());
                Ok(Platform {
                    os: os.to_ascii_lowercase(),
                    architecture: normalize_arch(arch),
                    variant,
                })
            }
            _ => Err(bad()),
        }
    }

    /// How well a descriptor's `platform` object matches: `None` when it
    /// does not, `Some(2)` for an exact variant match, `Some(1)` when this
    /// platform names no variant and the descriptor neither (or the
    /// architecture's default), `Some(0)` for another variant.
    fn score(&self, platform: Option<&serde_json::Value>) -> Option<u8> {
        let p = platform?;
        let os = p.get("os")?.as_str()?;
        let arch = p.get("architecture")?.as_str()?;
        if !os.eq_ignore_ascii_case(&self.os) || normalize_arch(arch) != self.architecture {
            return None;
        }
        let theirs = normalize_variant(
            &self.architecture,
            p.get("variant").and_then(|v| v.as_str()),
        );
        let ours = normalize_variant(&self.architecture, self.variant.as_deref());
        match (ours, theirs) {
            (Some(a), Some(b)) if a == b => Some(2),
            (Some(_), _) => None,
            (None, None) => Some(1),
            (None, Some(_)) => Some(0),
        }
    }
}

fn normalize_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_owned(),
    }
}

/// `arm64/v8` is plain `arm64`.
fn normalize_variant<'a>(arch: &str, variant: Option<&'a str>) -> Option<&'a str> {
    match (arch, variant) {
        (_, Some("")) | (_, None) => None,
        ("arm64", Some("v8")) => None,
        (_, v) => v,
    }
}

/// Which image of a multi-image input to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// A reference name (`latest`, `alpine:3.18`,
    /// `docker.io/library/alpine:3.18`); `None` accepts the only image,
    /// or picks by platform.
    pub reference: Option<String>,
    /// Used when an index lists several platforms. Default `linux/amd64`.
    pub platform: Platform,
}

/// Reads a whole blob of at most `max` bytes and verifies it.
pub fn read_blob(source: &dyn BlobSource, blob: &BlobRef, max: u64) -> Result<Vec<u8>, ImageError> {
    if blob.size.is_some_and(|size| size > max) {
        return Err(ImageError::LimitExceeded {
            what: "metadata blob size",
            limit: max,
        });
    }
    let reader = source.open(&blob.digest)?;
    let mut bytes = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ImageError::io(format!("reading blob {}", blob.digest), e))?;
    if bytes.len() as u64 > max {
        return Err(ImageError::LimitExceeded {
            what: "metadata blob size",
            limit: max,
        });
    }
    verify(&blob.digest, blob.size, &bytes)?;
    Ok(bytes)
}

/// Checks `bytes` against a digest and optional size.
pub(crate) fn verify(digest: &Digest, size: Option<u64>, bytes: &[u8]) -> Result<(), ImageError> {
    if let Some(expected) = size.filter(|e| bytes.len() as u64 != *e) {
        return Err(ImageError::SizeMismatch {
            blob: digest.to_string(),
            expected,
            actual: Some(bytes.len() as u64),
        });
    }
    let mut h = Hasher::new(digest.algorithm());
    h.update(bytes);
    let actual = h.finish();
    if &actual != digest {
        return Err(ImageError::DigestMismatch {
            expected: digest.clone(),
            actual,
        });
    }
    Ok(())
}

/// Reads at most `max` bytes of a file-like reader.
pub(crate) fn read_bounded(
    mut reader: impl Read,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    (&mut reader)
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ImageError::io(format!("reading {what}"), e))?;
    if bytes.len() as u64 > max {
        return Err(ImageError::LimitExceeded {
            what: "metadata file size",
            limit: max,
        });
    }
    Ok(bytes)
}

/// Follows a manifest or index descriptor down to one image manifest.
pub fn resolve_descriptor(
    source: &dyn BlobSource,
    descriptor: &Descriptor,
    platform: &Platform,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let mut descriptor = descriptor.clone();
    for _ in 0..=MAX_INDEX_DEPTH {
        let bytes = read_blob(
            source,
            &BlobRef::from(&descriptor),
            limits.max_metadata_bytes,
        )?;
        let parsed = ParsedManifest::parse(Some(&descriptor.media_type), &bytes)?;
        match parsed.kind {
            ManifestKind::Image => {
                return ResolvedImage::from_manifest(Some(descriptor.digest.clone()), &parsed);
            }
            ManifestKind::Index => {
                descriptor = pick_platform(&parsed.manifests, platform)?.clone();
            }
        }
    }
    Err(ImageError::InvalidLayout(format!(
        "indexes nested more than {MAX_INDEX_DEPTH} deep"
    )))
}

/// The manifest of `manifests` best matching `platform`: an exact variant
/// match first, then one with no variant, then the first listed. An index
/// with a single entry and no platform information yields that entry.
pub fn pick_platform<'a>(
    manifests: &'a [Descriptor],
    platform: &Platform,
) -> Result<&'a Descriptor, ImageError> {
    if let [only @ Descriptor { platform: None, .. }] = manifests {
        return Ok(only);
    }
    let mut best: Option<(u8, &Descriptor)> = None;
    for d in manifests {
        let better = |s: &u8| best.is_none_or(|(b, _)| *s > b);
        if let Some(score) = platform.score(d.platform.as_ref()).filter(better) {
            best = Some((score, d));
        }
    }
    match best {
        Some((_, d)) => Ok(d),
        None => Err(ImageError::NoMatch(format!(
            "no manifest for platform {platform}; available: {}",
            available_platforms(manifests)
        ))),
    }
}

fn available_platforms(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .filter_map(|d| {
            let p = d.platform.as_ref()?;
            let os = p.get("os")?.as_str()?;
            let arch = p.get("architecture")?.as_str()?;
            Some(match p.get("variant").and_then(|v| v.as_str()) {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            })
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn ref_names(d: &Descriptor) -> impl Iterator<Item = &str> {
    d.annotations.iter().flat_map(|a| {
        [REF_NAME, CONTAINERD_IMAGE_NAME]
            .into_iter()
            .filter_map(|k| a.get(k).map(String::as_str))
    })
}

/// Picks the image from a top-level index such as an OCI layout's
/// `index.json`: by reference name when `selector` has one, else the only
/// image, else by platform across the listed manifests.
pub fn resolve_index(
    source: &dyn BlobSource,
    index_json: &[u8],
    selector: &Selector,
    limits: &Limits,
) -> Result<ResolvedImage, ImageError> {
    let index = ParsedManifest::parse(Some(media_types::OCI_INDEX), index_json)?;
    let mut candidates: Vec<&Descriptor> = match &selector.reference {
        Some(r) => index
            .manifests
            .iter()
            .filter(|d| ref_names(d).any(|n| n == r))
            .collect(),
        None => index.manifests.iter().collect(),
    };
    candidates.dedup_by(|a, b| a.digest == b.digest);
    let names = || {
        let mut all: Vec<&str> = index.manifests.iter().flat_map(ref_names).collect();
        all.sort_unstable();
        all.dedup();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    };
    let chosen = match candidates.as_slice() {
        [] => {
            return Err(ImageError::NoMatch(match &selector.reference {
                Some(r) => format!("no manifest named {r:?}; names: {}", names()),
                None => "the index lists no manifests".to_owned(),
            }));
        }
        [only] => *only,
        many => {
            let all_same = many.iter().all(|d| d.digest == many[0].digest);
            if all_same {
                many[0]
            } else if many.iter().any(|d| d.platform.is_some()) {
                let owned: Vec<Descriptor> = many.iter().map(|d| (*d).clone()).collect();
                let picked = pick_platform(&owned, &selector.platform)?;
                return resolve_descriptor(source, picked, &selector.platform, limits);
            } else {
                return Err(ImageError::NoMatch(format!(
                    "the index lists {} images; choose one by reference: {}",
                    many.len(),
                    names()
                )));
            }
        }
    };
    resolve_descriptor(source, chosen, &selector.platform, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        let mut p = serde_json::json!({"os": os, "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        Descriptor {
            media_type: media_types::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(format!("{os}{arch}{variant:?}").as_bytes()),
            size: 1,
            artifact_type: None,
            annotations: None,
            urls: None,
            platform: Some(p),
        }
    }

    #[test]
    fn platform_parsing() {
        let p = Platform::parse("linux/aarch64/v8").unwrap();
        assert_eq!(p.architecture, "arm64");
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::default().to_string(), "linux/amd64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn picks_platforms() {
        let list = vec![
            desc("linux", "arm", Some("v7")),
            desc("linux", "arm64", Some("v8")),
            desc("linux", "amd64", None),
            desc("unknown", "unknown", None),
        ];
        let pick =
            |s: &str| pick_platform(&list, &Platform::parse(s).unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64").unwrap(), list[2].digest);
        assert_eq!(pick("linux/arm64").unwrap(), list[1].digest);
        assert_eq!(pick("linux/arm64/v8").unwrap(), list[1].digest);
        assert_eq!(pick("linux/arm/v7").unwrap(), list[0].digest);
        assert_eq!(pick("linux/arm").unwrap(), list[0].digest);
        assert!(pick("linux/arm/v6").is_err());
        assert!(matches!(pick("windows/amd64"), Err(ImageError::NoMatch(_))));
    }
}
