//! The cosign "simple signing" payload: the JSON document a cosign signature is made over.
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"registry.example/team/app"},
//!              "image":{"docker-manifest-digest":"sha256:…"},
//!              "type":"cosign container image signature"},
//!  "optional":{"creator":"…"}}
//! ```
//!
//! Building produces that exact shape; parsing is strict about what matters (the `type`, both
//! required fields, a well-formed `sha256:` digest) and refuses oversized input before
//! looking at it. Unknown keys inside `critical` are refused (a verifier that ignored a
//! critical field would defeat its purpose); `optional` may hold any string-keyed JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The only `critical.type` cosign signs.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// Upper bound on a payload's size; real payloads are a few hundred bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Why a payload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("signing payload is {0} bytes, more than the {MAX_PAYLOAD_BYTES} allowed")]
    TooLarge(usize),
    #[error("signing payload is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("signing payload type is {0:?}, not {COSIGN_SIGNATURE_TYPE:?}")]
    WrongType(String),
    #[error("signing payload has an invalid manifest digest {0:?}")]
    BadDigest(String),
    #[error("signing payload has an empty docker-reference")]
    EmptyReference,
}

/// A parsed (or to-be-built) simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`: the repository the signer meant, usually
    /// `host/path` (cosign writes the registry host too).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`: `sha256:<64 hex>`.
    pub manifest_digest: String,
    /// `optional`: free-form annotations (cosign's `-a key=value`); `None` is written as `null`.
    pub optional: Option<Map<String, Value>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    critical: Critical,
    #[serde(default)]
    optional: Option<Map<String, Value>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

impl SimpleSigning {
    /// A payload for `manifest_digest` in `docker_reference`, with no optional annotations.
    pub fn new(
        docker_reference: impl Into<String>,
        manifest_digest: impl Into<String>,
    ) -> Result<Self, PayloadError> {
        let payload = SimpleSigning {
            docker_reference: docker_reference.into(),
            manifest_digest: manifest_digest.into(),
            optional: None,
        };
        payload.validate()?;
        Ok(payload)
    }

    /// Adds `optional` annotations.
    pub fn with_optional(mut self, optional: Map<String, Value>) -> Self {
        self.optional = Some(optional);
        self
    }

    /// The canonical bytes to sign (compact JSON, cosign's key order).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PayloadError> {
        self.validate()?;
        let wire = Wire {
            critical: Critical {
                identity: Identity {
                    docker_reference: self.docker_reference.clone(),
                },
                image: Image {
                    docker_manifest_digest: self.manifest_digest.clone(),
                },
                kind: COSIGN_SIGNATURE_TYPE.to_owned(),
            },
            optional: self.optional.clone(),
        };
        let bytes = serde_json::to_vec(&wire).map_err(|e| PayloadError::Json(e.to_string()))?;
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Parses payload bytes; refuses anything but a well-formed cosign image signature payload.
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge(bytes.len()));
        }
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(e.to_string()))?;
        if wire.critical.kind != COSIGN_SIGNATURE_TYPE {
            return Err(PayloadError::WrongType(wire.critical.kind));
        }
        let payload = SimpleSigning {
            docker_reference: wire.critical.identity.docker_reference,
            manifest_digest: wire.critical.image.docker_manifest_digest,
            optional: wire.optional,
        };
        payload.validate()?;
        Ok(payload)
    }

    fn validate(&self) -> Result<(), PayloadError> {
        if !is_sha256_digest(&self.manifest_digest) {
            return Err(PayloadError::BadDigest(self.manifest_digest.clone()));
        }
        if self.docker_reference.trim().is_empty() {
            return Err(PayloadError::EmptyReference);
        }
        Ok(())
    }
}

/// `sha256:` followed by exactly 64 lowercase hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The repository path of a docker reference: the reference without a leading registry host
/// (a first component with a `.` or `:`, or `localhost`) and without a tag or digest.
/// `registry.example:5000/team/app:v1` and `team/app` both give `team/app`.
pub fn repository_path(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let path = match no_digest.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => no_digest,
    };
    // A tag is a `:` after the last `/`.
    let last_slash = path.rfind('/').map_or(0, |i| i + 1);
    match path[last_slash..].find(':') {
        Some(colon) => &path[..last_slash + colon],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_path_strips_host_tag_and_digest() {
        assert_eq!(repository_path("team/app"), "team/app");
        assert_eq!(repository_path("reg.example/team/app"), "team/app");
        assert_eq!(repository_path("127.0.0.1:5000/team/app:v1"), "team/app");
        assert_eq!(repository_path("localhost/app"), "app");
        assert_eq!(repository_path("team/app@sha256:abc"), "team/app");
        assert_eq!(repository_path("app"), "app");
    }
}
