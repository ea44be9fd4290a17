//! The image config: the parts of an OCI / Docker image configuration that
//! scanning and config lint use.
//!
//! Parsing is lenient about field types (a tool writing `"Cmd": "sh"`
//! instead of `["sh"]`, a non-string label value): what cannot be read is
//! left empty. The document must be a JSON object, and `rootfs.diff_ids`,
//! used to verify layers, must be valid digests.

use std::collections::BTreeMap;

use bulwark_oci::Digest;
use serde_json::{Map, Value};

use super::ImageError;

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created: Option<String>,
    /// The instruction, e.g. `/bin/sh -c apt-get install -y curl`.
    pub created_by: Option<String>,
    pub comment: Option<String>,
    /// The step made no layer (`ENV`, `CMD`, ...).
    pub empty_layer: bool,
}

/// The image config; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub variant: Option<String>,
    pub created: Option<String>,
    /// `config.User`; `None` or empty means root.
    pub user: Option<String>,
    /// `config.Env`, `KEY=value` strings in order.
    pub env: Vec<String>,
    /// `config.ExposedPorts` keys (`80/tcp`), sorted.
    pub exposed_ports: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub history: Vec<HistoryEntry>,
    /// `rootfs.diff_ids`: the uncompressed digest of each layer.
    pub diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses a config blob.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ImageError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ImageError::InvalidConfig(e.to_string()))?;
        let Value::Object(top) = value else {
            return Err(ImageError::InvalidConfig("not a JSON object".into()));
        };
        let empty = Map::new();
        let cfg = top
            .get("config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);

        let diff_ids = match top
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(Value::as_array)
        {
            None => Vec::new(),
            Some(ids) => ids
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .ok_or_else(|| format!("rootfs.diff_ids[{i}] is not a string"))
                        .and_then(|s| {
                            Digest::parse(s).map_err(|e| format!("rootfs.diff_ids[{i}]: {e}"))
                        })
                        .map_err(ImageError::InvalidConfig)
                })
                .collect::<Result<_, _>>()?,
        };

        let history = top
            .get("history")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|h| HistoryEntry {
                        created: string(h.get("created")),
                        created_by: string(h.get("created_by")),
                        comment: string(h.get("comment")),
                        empty_layer: h
                            .get("empty_layer")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();

        let mut exposed_ports: Vec<String> = cfg
            .get("ExposedPorts")
            .and_then(Value::as_object)
            .map(|ports| ports.keys().cloned().collect())
            .unwrap_or_default();
        exposed_ports.sort();

        let labels = cfg
            .get("Labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();

        Ok(ImageConfig {
            architecture: string(top.get("architecture")),
            os: string(top.get("os")),
            variant: string(top.get("variant")),
            created: string(top.get("created")),
            user: string(cfg.get("User")),
            env: strings(cfg.get("Env")).unwrap_or_default(),
            exposed_ports,
            entrypoint: strings(cfg.get("Entrypoint")),
            cmd: strings(cfg.get("Cmd")),
            working_dir: string(cfg.get("WorkingDir")),
            labels,
            history,
            diff_ids,
        })
    }

    /// The history entry that created layer `index` (counting only entries
    /// without `empty_layer`), when the history is that long.
    pub fn layer_history(&self, index: usize) -> Option<&HistoryEntry> {
        self.history.iter().filter(|h| !h.empty_layer).nth(index)
    }

    /// Whether the image runs as root: no user, or user `root` / uid 0
    /// (with or without a group).
    pub fn runs_as_root(&self) -> bool {
        let user = self.user.as_deref().unwrap_or("").trim();
        let name = user.split(':').next().unwrap_or("");
        name.is_empty() || name == "root" || name == "0"
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

/// A string array (non-strings dropped), a lone string as a one-element
/// array, `None` for null or absent.
fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_a_docker_config() {
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{{"User":"app:app","Env":["PATH=/usr/bin",3],"ExposedPorts":{{"8080/tcp":{{}},"443/tcp":{{}}}},
            "Entrypoint":["/entry"],"Cmd":null,"WorkingDir":"/app","Labels":{{"a":"b","n":1}}}},
            "rootfs":{{"type":"layers","diff_ids":["{D}"]}},
            "history":[{{"created_by":"ENV x","empty_layer":true}},{{"created_by":"ADD rootfs /"}}]}}"#
        );
        let c = ImageConfig::parse(json.as_bytes()).unwrap();
        assert_eq!(c.architecture.as_deref(), Some("amd64"));
        assert_eq!(c.user.as_deref(), Some("app:app"));
        assert!(!c.runs_as_root());
        assert_eq!(c.env, ["PATH=/usr/bin"]);
        assert_eq!(c.exposed_ports, ["443/tcp", "8080/tcp"]);
        assert_eq!(c.entrypoint, Some(vec!["/entry".to_owned()]));
        assert_eq!(c.cmd, None);
        assert_eq!(c.labels.len(), 1);
        assert_eq!(c.diff_ids.len(), 1);
        assert_eq!(
            c.layer_history(0).unwrap().created_by.as_deref(),
            Some("ADD rootfs /")
        );
    }

    #[test]
    fn minimal_and_invalid() {
        let c = ImageConfig::parse(b"{}").unwrap();
        assert!(c.runs_as_root());
        assert!(ImageConfig::parse(b"[]").is_err());
        assert!(ImageConfig::parse(b"nope").is_err());
        assert!(ImageConfig::parse(br#"{"rootfs":{"diff_ids":["md5:x"]}}"#).is_err());
        let root = ImageConfig::parse(br#"{"config":{"User":"0:0"}}"#).unwrap();
        assert!(root.runs_as_root());
    }
}
