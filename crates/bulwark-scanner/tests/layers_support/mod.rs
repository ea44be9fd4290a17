//! Builders shared by the `layers_*` tests: tar layers written entry by
//! entry (raw names, so hostile paths can be written too), compression,
//! OCI layouts and `docker save` archives assembled in temporary
//! directories.

#![allow(dead_code)] // each test binary uses a subset

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use bulwark_oci::Digest;
use bulwark_scanner::image::{Entry, ImageError, LayerSpec, LayerSummary, Limits, read_layer};
use serde_json::{Value, json};

pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A tar stream built entry by entry.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Layer {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// Appends an entry with `name` written verbatim (at most 100 bytes).
    pub fn raw(
        mut self,
        name: &str,
        ty: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) -> Layer {
        let mut h = tar::Header::new_gnu();
        let field = &mut h.as_old_mut().name;
        assert!(name.len() <= field.len(), "name too long for raw: {name}");
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name_literal(l).unwrap();
        }
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Layer {
        self.file_mode(name, data, 0o644)
    }

    pub fn file_mode(mut self, name: &str, data: &[u8], mode: u32) -> Layer {
        if name.len() <= 100 {
            return self.raw(name, tar::EntryType::Regular, mode, None, data);
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        self.builder.append_data(&mut h, name, data).unwrap();
        self
    }

    pub fn dir(self, name: &str) -> Layer {
        self.raw(name, tar::EntryType::Directory, 0o755, None, b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> Layer {
        self.raw(name, tar::EntryType::Symlink, 0o777, Some(target), b"")
    }

    pub fn hardlink(self, name: &str, target: &str) -> Layer {
        self.raw(name, tar::EntryType::Link, 0o644, Some(target), b"")
    }

    /// `dir/.wh.name` for `path` = `dir/name`.
    pub fn whiteout(self, path: &str) -> Layer {
        let wh = match path.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.wh.{name}"),
            None => format!(".wh.{path}"),
        };
        self.file(&wh, b"")
    }

    pub fn opaque(self, dir: &str) -> Layer {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }

    pub fn gzip(self) -> Vec<u8> {
        gzip(&self.tar())
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

pub fn sha(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// Reads a layer, collecting its entries.
pub fn entries(
    blob: &[u8],
    spec: &LayerSpec,
    limits: &Limits,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<(Vec<Entry>, LayerSummary), ImageError> {
    let mut out = Vec::new();
    let summary = read_layer(blob, spec, limits, wanted, &mut |e| {
        out.push(e);
        Ok(())
    })?;
    Ok((out, summary))
}

pub fn all(_: &str) -> bool {
    true
}

pub fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A config blob for `layers` (uncompressed tars, for the diff_ids).
pub fn config_json(arch: &str, uncompressed_layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = uncompressed_layers
        .iter()
        .map(|l| sha(l).to_string())
        .collect();
    let history: Vec<Value> = (0..uncompressed_layers.len())
        .map(|i| json!({"created_by": format!("step {i}")}))
        .collect();
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "config": {"User": "1000", "Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap()
}

pub fn descriptor(media_type: &str, blob: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha(blob).to_string(), "size": blob.len()})
}

/// Content-addressed blobs plus the JSON documents pointing at them.
#[derive(Default)]
pub struct Blobs {
    pub blobs: BTreeMap<Digest, Vec<u8>>,
}

impl Blobs {
    pub fn add(&mut self, data: Vec<u8>) -> Digest {
        let d = sha(&data);
        self.blobs.insert(d.clone(), data);
        d
    }

    /// Adds config and layers (`(media type, blob, uncompressed tar)`),
    /// and an image manifest; returns the manifest's descriptor.
    pub fn image(&mut self, arch: &str, layers: &[(&str, Vec<u8>, Vec<u8>)]) -> Value {
        let tars: Vec<&[u8]> = layers.iter().map(|(_, _, t)| t.as_slice()).collect();
        let config = config_json(arch, &tars);
        let config_desc = descriptor(OCI_CONFIG, &config);
        self.add(config);
        let layer_descs: Vec<Value> = layers
            .iter()
            .map(|(mt, blob, _)| {
                let d = descriptor(mt, blob);
                self.add(blob.clone());
                d
            })
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc,
            "layers": layer_descs,
        }))
        .unwrap();
        let desc = descriptor(OCI_MANIFEST, &manifest);
        self.add(manifest);
        desc
    }

    /// Writes an OCI layout with `index` as `index.json` into `dir`.
    pub fn write_layout(&self, dir: &Path, index: &Value) {
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(dir.join("index.json"), serde_json::to_vec(index).unwrap()).unwrap();
        for (d, data) in &self.blobs {
            let p = dir.join("blobs").join(d.algorithm().as_str());
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join(d.hex()), data).unwrap();
        }
    }

    /// The same layout as a tar (an `oci-archive`), plus `extra` members.
    pub fn layout_tar(&self, index: &Value, extra: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut l = Layer::new()
            .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .file("index.json", &serde_json::to_vec(index).unwrap());
        for (d, data) in &self.blobs {
            l = l.file(
                &format!("blobs/{}/{}", d.algorithm().as_str(), d.hex()),
                data,
            );
        }
        for (name, data) in extra {
            l = l.file(name, data);
        }
        l.tar()
    }
}

pub fn index(manifests: Vec<Value>) -> Value {
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
}

pub fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

pub fn write_temp(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}
