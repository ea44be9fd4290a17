//! Parsing and structural validation of image manifests and indexes (OCI and Docker schema 2).
//! Manifests are stored byte-for-byte; this only extracts what the registry must check and index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media_types::{self, essence};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest invalid: {0}")]
    Invalid(String),
    #[error("manifest media type {0:?} is not supported")]
    UnsupportedMediaType(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl Descriptor {
    /// Foreign (non-distributable) layers live elsewhere; the registry does not hold them.
    pub fn is_foreign(&self) -> bool {
        self.urls.as_ref().is_some_and(|u| !u.is_empty())
    }
}

/// The parts of a manifest the registry checks and indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
    pub media_type: String,
    pub kind: ManifestKind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
}

// Fields are read loosely first so each problem gets a precise message instead of serde's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<serde_json::Value>,
    media_type: Option<serde_json::Value>,
    artifact_type: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
    layers: Option<serde_json::Value>,
    manifests: Option<serde_json::Value>,
    subject: Option<serde_json::Value>,
    annotations: Option<serde_json::Value>,
}

impl ParsedManifest {
    /// Parse `body` pushed with `content_type`. The body's `mediaType`, when present, must agree
    /// with the Content-Type; when absent the Content-Type decides.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ManifestError> {
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
        let declared = match raw.media_type {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(_) => return Err(invalid("mediaType must be a string")),
        };
        let header = content_type.map(essence).filter(|s| !s.is_empty());
        let media_type = match (&declared, header) {
            (Some(d), Some(h)) if d != h => {
                return Err(invalid(format!(
                    "mediaType {d:?} does not match Content-Type {h:?}"
                )));
            }
            (Some(d), _) => d.clone(),
            (None, Some(h)) => h.to_owned(),
            (None, None) => return Err(invalid("no media type given")),
        };
        let kind = match media_type.as_str() {
            media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => ManifestKind::Image,
            media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => ManifestKind::Index,
            _ => return Err(ManifestError::UnsupportedMediaType(media_type)),
        };
        match raw.schema_version {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(2) => {}
            _ => return Err(invalid("schemaVersion must be 2")),
        }
        let docker = media_type.starts_with("application/vnd.docker.");
        let artifact_type = match raw.artifact_type {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if !docker => Some(s),
            Some(_) => return Err(invalid("artifactType must be a string on OCI manifests")),
        };
        let subject = raw
            .subject
            .filter(|v| !v.is_null())
            .map(|v| descriptor(v, "subject"))
            .transpose()?;
        let annotations = match raw.annotations {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value(v)
                    .map_err(|_| invalid("annotations must map strings to strings"))?,
            ),
        };
        let mut parsed = ParsedManifest {
            media_type,
            kind,
            config: None,
            layers: Vec::new(),
            manifests: Vec::new(),
            subject,
            artifact_type,
            annotations,
        };
        match kind {
            ManifestKind::Image => {
                if raw.manifests.is_some() {
                    return Err(invalid("an image manifest has no manifests field"));
                }
                let config = raw.config.ok_or_else(|| invalid("config is required"))?;
                parsed.config = Some(descriptor(config, "config")?);
                parsed.layers = descriptors(raw.layers, "layers", docker)?;
            }
            ManifestKind::Index => {
                if raw.config.is_some() || raw.layers.is_some() {
                    return Err(invalid("an index has no config or layers"));
                }
                parsed.manifests = descriptors(raw.manifests, "manifests", true)?;
            }
        }
        Ok(parsed)
    }

    /// The type reported for this manifest by the referrers API.
    pub fn referrer_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }

    /// Blobs the repository must hold for this manifest to be accepted.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|l| !l.is_foreign()))
    }
}

fn invalid(msg: impl Into<String>) -> ManifestError {
    ManifestError::Invalid(msg.into())
}

fn descriptor(v: serde_json::Value, field: &str) -> Result<Descriptor, ManifestError> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(format!("{field} must be a descriptor object")))?;
    match obj.get("mediaType") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => {}
        _ => return Err(invalid(format!("{field}: mediaType is required"))),
    }
    match obj.get("digest").and_then(|d| d.as_str()) {
        Some(d) => {
            Digest::parse(d).map_err(|e| invalid(format!("{field}: {e}")))?;
        }
        None => return Err(invalid(format!("{field}: digest is required"))),
    }
    if !obj.get("size").is_some_and(|s| s.is_u64()) {
        return Err(invalid(format!(
            "{field}: size must be a non-negative integer"
        )));
    }
    serde_json::from_value(v).map_err(|e| invalid(format!("{field}: {e}")))
}

fn descriptors(
    v: Option<serde_json::Value>,
    field: &str,
    required: bool,
) -> Result<Vec<Descriptor>, ManifestError> {
    match v {
        None | Some(serde_json::Value::Null) if !required => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| descriptor(item, &format!("{field}[{i}]")))
            .collect(),
        _ => Err(invalid(format!("{field} must be an array"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_types::*;
    use proptest::prelude::*;

    const D1: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const D2: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"{OCI_CONFIG}","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":10}}]{extra}}}"#
        )
    }

    #[test]
    fn parses_an_image_manifest() {
        let m = ParsedManifest::parse(Some(OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.required_blobs().count(), 2);
        assert_eq!(m.referrer_artifact_type(), Some(OCI_CONFIG));
        assert!(m.subject.is_none());
    }

    #[test]
    fn artifact_with_subject() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/x.sbom",
            "config":{{"mediaType":"{OCI_EMPTY}","digest":"{D2}","size":2}},"layers":[],
            "subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":7}},
            "annotations":{{"a":"b"}}}}"#
        );
        let m = ParsedManifest::parse(Some(OCI_MANIFEST), body.as_bytes()).unwrap();
        assert_eq!(m.referrer_artifact_type(), Some("application/x.sbom"));
        assert_eq!(m.subject.unwrap().digest.to_string(), D1);
        assert_eq!(m.annotations.unwrap()["a"], "b");
    }

    #[test]
    fn media_type_from_header_when_body_has_none() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":3,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let m = ParsedManifest::parse(
            Some(&format!("{OCI_INDEX}; charset=utf-8")),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.manifests.len(), 1);
        assert_eq!(m.media_type, OCI_INDEX);
    }

    #[test]
    fn docker_foreign_layers_are_not_required() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{D2}","size":10,"urls":["https://example.invalid/l"]}}]}}"#
        );
        let m = ParsedManifest::parse(Some(DOCKER_MANIFEST), body.as_bytes()).unwrap();
        assert_eq!(m.required_blobs().count(), 1);
    }

    #[test]
    fn rejects_invalid_manifests() {
        let cases: Vec<(Option<&str>, String)> = vec![
            (Some(OCI_MANIFEST), "not json".into()),
            (Some(OCI_MANIFEST), "[]".into()),
            (Some(OCI_INDEX), image("")),
            (
                None,
                image("").replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), ""),
            ),
            (
                Some(OCI_MANIFEST),
                image("").replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
            ),
            (
                Some(OCI_MANIFEST),
                image("").replace("\"size\":2", "\"size\":-2"),
            ),
            (Some(OCI_MANIFEST), image("").replace(D1, "sha256:abc")),
            (Some(OCI_MANIFEST), image(r#","manifests":[]"#)),
            (Some(OCI_MANIFEST), image(r#","annotations":{"a":1}"#)),
            (Some(OCI_MANIFEST), image(r#","subject":"x""#)),
            (
                Some(OCI_MANIFEST),
                image("").replace(r#""layers":["#, r#""layers":[1,"#),
            ),
        ];
        for (ct, body) in cases {
            assert!(
                ParsedManifest::parse(ct, body.as_bytes()).is_err(),
                "accepted {body}"
            );
        }
        assert!(matches!(
            ParsedManifest::parse(Some(DOCKER_MANIFEST_V1_SIGNED), br#"{"schemaVersion":1}"#),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,400}") {
            let _ = ParsedManifest::parse(Some(OCI_MANIFEST), s.as_bytes());
            let _ = ParsedManifest::parse(None, s.as_bytes());
        }

        #[test]
        fn mutated_manifests_never_panic(idx in 0usize..400, byte in any::<u8>()) {
            let mut body = image("").into_bytes();
            let i = idx % body.len();
            body[i] = byte;
            let _ = ParsedManifest::parse(Some(OCI_MANIFEST), &body);
        }
    }
}
