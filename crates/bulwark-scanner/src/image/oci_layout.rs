//! An OCI image layout directory: `oci-layout`, `index.json`,
//! `blobs/<algorithm>/<hex>`.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bulwark_oci::Digest;

use super::source::{BlobSource, ResolvedImage, Selector, read_bounded, resolve_index};
use super::{ImageError, Limits};

/// The `oci-layout` marker is a one-line JSON document.
const MAX_LAYOUT_FILE: u64 = 64 * 1024;

/// An OCI image layout on disk (the image spec's `image-layout.md`), as
/// written by `skopeo copy ... oci:DIR`, `buildah push ... oci:DIR` or
/// BuildKit's `--output type=oci,tar=false`.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// Opens the layout at `dir`, checking its `oci-layout` marker
    /// (`imageLayoutVersion` 1.x).
    pub fn open(dir: impl AsRef<Path>) -> Result<OciLayout, ImageError> {
        let root = dir.as_ref().to_path_buf();
        let marker = read_file(&root.join("oci-layout"), MAX_LAYOUT_FILE)?;
        check_layout_marker(&marker)?;
        Ok(OciLayout { root })
    }

    /// The image `selector` picks from `index.json`.
    pub fn resolve(
        &self,
        selector: &Selector,
        limits: &Limits,
    ) -> Result<ResolvedImage, ImageError> {
        let index = read_file(&self.root.join("index.json"), limits.max_metadata_bytes)?;
        resolve_index(self, &index, selector, limits)
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        // A parsed Digest is `[a-z0-9]+:[0-9a-f]+`: no path separators.
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }
}

impl BlobSource for OciLayout {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        match File::open(self.blob_path(digest)) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ImageError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(ImageError::io(format!("opening blob {digest}"), e)),
        }
    }
}

/// Checks an `oci-layout` file's `imageLayoutVersion`.
pub(crate) fn check_layout_marker(bytes: &[u8]) -> Result<(), ImageError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::InvalidLayout(format!("oci-layout: {e}")))?;
    match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
        Some(version) if version.starts_with("1.") => Ok(()),
        Some(version) => Err(ImageError::InvalidLayout(format!(
            "unsupported imageLayoutVersion {version:?}"
        ))),
        None => Err(ImageError::InvalidLayout(
            "oci-layout has no imageLayoutVersion".into(),
        )),
    }
}

fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, ImageError> {
    let f = File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            ImageError::InvalidLayout(format!("{} is missing", path.display()))
        } else {
            ImageError::io(format!("opening {}", path.display()), e)
        }
    })?;
    read_bounded(f, max, &path.display().to_string())
}
