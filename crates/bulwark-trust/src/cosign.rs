//! cosign key-based signatures: signing, verification and the signature artifacts.
//!
//! A cosign signature is a simple-signing payload (see [`crate::simple_signing`]) stored as a
//! blob, plus the base64 signature over those exact bytes in the layer annotation
//! [`SIGNATURE_ANNOTATION`]. Two places hold them:
//!
//! - the **tag scheme**: an OCI image manifest tagged `sha256-<hex>.sig` in the image's
//!   repository, one layer per signature, config a cosign-style image config;
//! - an **OCI 1.1 referrer**: the same layers in a manifest with `artifactType`
//!   [`SIGNATURE_ARTIFACT_TYPE`], the empty config and `subject` pointing at the image.
//!
//! Verification checks, in this order, and never looks at the payload's claims before the
//! signature over it holds: the signature under a trusted key, the payload's shape, its
//! `docker-manifest-digest` against the image digest, its `docker-reference` against the
//! repository (compared without the registry host).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::{KeyAlgorithm, PrivateKey, PublicKey};
use crate::simple_signing::{self, MAX_PAYLOAD_BYTES, PayloadError, SimpleSigning};

/// Layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// `artifactType` of a cosign signature pushed as an OCI 1.1 referrer.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema 2 manifest media type (older cosign releases pushed these).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI empty descriptor's media type and content (`{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_EMPTY_CONTENT: &[u8] = b"{}";
/// Upper bound on a signature manifest read back from a registry.
pub const MAX_SIGNATURE_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Upper bound on the base64 signature annotation.
const MAX_SIGNATURE_B64: usize = 4096;

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("signing failed: {0}")]
    Crypto(String),
}

/// Why an image's signatures were not accepted. Each variant names one reason.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("image {digest} in {repository} has no signatures")]
    Unsigned { digest: String, repository: String },
    #[error("signature does not verify under the given key (tampered payload or signature)")]
    BadSignature,
    #[error("signature was not made by any of the {0} trusted key(s)")]
    UntrustedKey(usize),
    #[error("signature is for image {found}, not {expected}")]
    DigestMismatch { expected: String, found: String },
    #[error("signature is for repository {found:?}, not {expected:?}")]
    ReferenceMismatch { expected: String, found: String },
    #[error("malformed signature: {0}")]
    Malformed(String),
}

impl VerifyError {
    /// How much a refusal says about the image: when several candidate signatures fail, the
    /// most telling reason is reported (a valid signature for something else beats a
    /// signature by an unknown key, which beats garbage).
    fn weight(&self) -> u8 {
        match self {
            VerifyError::Unsigned { .. } => 0,
            VerifyError::Malformed(_) => 1,
            VerifyError::BadSignature | VerifyError::UntrustedKey(_) => 2,
            VerifyError::DigestMismatch { .. } => 3,
            VerifyError::ReferenceMismatch { .. } => 4,
        }
    }
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The image digest the signature covers (equal to the one asked about).
    pub image_digest: String,
    /// The payload's `docker-reference` as signed.
    pub docker_reference: String,
    /// [`PublicKey::key_id`] of the key that verified it.
    pub key_id: String,
    pub algorithm: KeyAlgorithm,
    /// `sha256:` of the payload bytes (the payload layer's digest).
    pub payload_digest: String,
}

/// A payload and the base64 signature over it, as found in a signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    pub payload: Vec<u8>,
    /// The annotation value: base64 of the signature.
    pub signature: String,
}

/// Signs `payload` and returns the base64 signature for [`SIGNATURE_ANNOTATION`]: ECDSA
/// P-256 over SHA-256 as ASN.1 DER, or a 64-byte Ed25519 signature.
pub fn sign(key: &PrivateKey, payload: &[u8]) -> Result<String, SignError> {
    use p256::ecdsa::signature::Signer as _;
    let raw = match key {
        PrivateKey::EcdsaP256(k) => {
            let sig: p256::ecdsa::Signature = k
                .try_sign(payload)
                .map_err(|e| SignError::Crypto(e.to_string()))?;
            sig.to_der().as_bytes().to_vec()
        }
        PrivateKey::Ed25519(k) => k
            .try_sign(payload)
            .map_err(|e| SignError::Crypto(e.to_string()))?
            .to_bytes()
            .to_vec(),
    };
    Ok(B64.encode(raw))
}

/// Builds the payload for `image_digest` in `docker_reference` and signs it.
pub fn sign_image(
    key: &PrivateKey,
    docker_reference: &str,
    image_digest: &str,
) -> Result<SignedPayload, SignError> {
    let payload = SimpleSigning::new(docker_reference, image_digest)?.to_bytes()?;
    let signature = sign(key, &payload)?;
    Ok(SignedPayload { payload, signature })
}

/// Checks only the signature: `signature_b64` over exactly `payload` under `key`.
pub fn verify_signature(
    payload: &[u8],
    signature_b64: &str,
    key: &PublicKey,
) -> Result<(), VerifyError> {
    use p256::ecdsa::signature::Verifier as _;
    if signature_b64.len() > MAX_SIGNATURE_B64 {
        return Err(VerifyError::Malformed("signature is too long".to_owned()));
    }
    let raw = B64
        .decode(signature_b64.trim())
        .map_err(|e| VerifyError::Malformed(format!("signature is not base64: {e}")))?;
    match key {
        PublicKey::EcdsaP256(k) => {
            let sig =
                p256::ecdsa::Signature::from_der(&raw).map_err(|_| VerifyError::BadSignature)?;
            k.verify(payload, &sig)
                .map_err(|_| VerifyError::BadSignature)
        }
        PublicKey::Ed25519(k) => {
            let sig = ed25519_dalek::Signature::from_slice(&raw)
                .map_err(|_| VerifyError::BadSignature)?;
            k.verify_strict(payload, &sig)
                .map_err(|_| VerifyError::BadSignature)
        }
    }
}

/// Verifies one signature for the image `image_digest` in `repository` against the trusted
/// `keys`: the signature must hold under one of them (else [`VerifyError::UntrustedKey`], or
/// [`VerifyError::BadSignature`] when exactly one key is trusted), then the payload must name
/// that digest and repository.
pub fn verify(
    signed: &SignedPayload,
    keys: &[PublicKey],
    image_digest: &str,
    repository: &str,
) -> Result<Verdict, VerifyError> {
    if signed.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(VerifyError::Malformed("payload is too large".to_owned()));
    }
    let mut verified_by = None;
    let mut malformed = None;
    for key in keys {
        match verify_signature(&signed.payload, &signed.signature, key) {
            Ok(()) => {
                verified_by = Some(key);
                break;
            }
            Err(e @ VerifyError::Malformed(_)) => malformed = Some(e),
            Err(_) => {}
        }
    }
    let Some(key) = verified_by else {
        return Err(match (malformed, keys.len()) {
            (Some(e), _) => e,
            (None, 1) => VerifyError::BadSignature,
            (None, n) => VerifyError::UntrustedKey(n),
        });
    };
    let payload =
        SimpleSigning::parse(&signed.payload).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if payload.manifest_digest != image_digest {
        return Err(VerifyError::DigestMismatch {
            expected: image_digest.to_owned(),
            found: payload.manifest_digest,
        });
    }
    let expected_repo = simple_signing::repository_path(repository);
    let signed_repo = simple_signing::repository_path(&payload.docker_reference);
    if signed_repo != expected_repo {
        return Err(VerifyError::ReferenceMismatch {
            expected: expected_repo.to_owned(),
            found: payload.docker_reference,
        });
    }
    Ok(Verdict {
        image_digest: payload.manifest_digest,
        docker_reference: payload.docker_reference,
        key_id: key
            .key_id()
            .map_err(|e| VerifyError::Malformed(e.to_string()))?,
        algorithm: key.algorithm(),
        payload_digest: sha256_digest(&signed.payload),
    })
}

/// Verifies every candidate and returns the first that holds; otherwise the most telling
/// refusal ([`VerifyError::Unsigned`] when there are no candidates).
pub fn verify_any(
    candidates: &[SignedPayload],
    keys: &[PublicKey],
    image_digest: &str,
    repository: &str,
) -> Result<Verdict, VerifyError> {
    let mut worst: Option<VerifyError> = None;
    for candidate in candidates {
        match verify(candidate, keys, image_digest, repository) {
            Ok(verdict) => return Ok(verdict),
            Err(e) => {
                if worst.as_ref().is_none_or(|w| e.weight() > w.weight()) {
                    worst = Some(e);
                }
            }
        }
    }
    Err(worst.unwrap_or_else(|| VerifyError::Unsigned {
        digest: image_digest.to_owned(),
        repository: repository.to_owned(),
    }))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The tag-scheme tag of an image's signatures: `sha256:<hex>` → `sha256-<hex>.sig`.
pub fn signature_tag(image_digest: &str) -> Result<String, ArtifactError> {
    if !simple_signing::is_sha256_digest(image_digest) {
        return Err(ArtifactError::Malformed(format!(
            "{image_digest:?} is not a sha256 digest"
        )));
    }
    Ok(format!("{}.sig", image_digest.replacen(':', "-", 1)))
}

/// Why a signature manifest could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("malformed signature manifest: {0}")]
    Malformed(String),
    #[error("signature manifest is {0} bytes, more than allowed")]
    TooLarge(usize),
    #[error("payload blob {digest} does not match its descriptor")]
    BlobMismatch { digest: String },
    #[error("fetching blob {digest}: {message}")]
    Fetch { digest: String, message: String },
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// A descriptor of `bytes` with `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    }
}

/// A blob to upload along with a signature manifest.
#[derive(Debug, Clone)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

/// A signature manifest ready to push: the manifest, its blobs (config first), and where it
/// goes — the tag for the tag scheme, or its digest for a referrer.
#[derive(Debug, Clone)]
pub struct SignatureArtifact {
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
    pub digest: String,
    pub blobs: Vec<Blob>,
}

/// An OCI or Docker image manifest as signature artifacts use it (cosign's and Notation's).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageManifest {
    pub(crate) schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) artifact_type: Option<String>,
    pub(crate) config: Descriptor,
    #[serde(default)]
    pub(crate) layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

fn signature_layers(signatures: &[SignedPayload]) -> Result<Vec<Blob>, ArtifactError> {
    if signatures.is_empty() {
        return Err(ArtifactError::Malformed("no signatures".to_owned()));
    }
    Ok(signatures
        .iter()
        .map(|s| {
            let mut descriptor = Descriptor::of(SIMPLE_SIGNING_MEDIA_TYPE, &s.payload);
            descriptor.annotations = Some(BTreeMap::from([(
                SIGNATURE_ANNOTATION.to_owned(),
                s.signature.clone(),
            )]));
            Blob {
                descriptor,
                bytes: s.payload.clone(),
            }
        })
        .collect())
}

fn finish(
    config: Blob,
    layers: Vec<Blob>,
    artifact_type: Option<&str>,
    subject: Option<Descriptor>,
) -> Result<SignatureArtifact, ArtifactError> {
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: artifact_type.map(str::to_owned),
        config: config.descriptor.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        subject,
        annotations: None,
    };
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    let mut blobs = vec![config];
    blobs.extend(layers);
    Ok(SignatureArtifact {
        digest: sha256_digest(&bytes),
        manifest: bytes,
        media_type: OCI_MANIFEST,
        blobs,
    })
}

/// The tag-scheme manifest (push it under [`signature_tag`] of the image digest) holding
/// `signatures`, one layer each, with a cosign-style image config whose `rootfs.diff_ids` are
/// the payload digests.
pub fn tag_scheme_manifest(
    signatures: &[SignedPayload],
) -> Result<SignatureArtifact, ArtifactError> {
    let layers = signature_layers(signatures)?;
    let diff_ids: Vec<&str> = layers
        .iter()
        .map(|l| l.descriptor.digest.as_str())
        .collect();
    let epoch = "0001-01-01T00:00:00Z";
    let config = serde_json::json!({
        "architecture": "",
        "created": epoch,
        "history": [{"created": epoch}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    let config = Blob {
        descriptor: Descriptor::of(OCI_CONFIG, &config_bytes),
        bytes: config_bytes,
    };
    finish(config, layers, None, None)
}

/// The OCI 1.1 referrer manifest for `subject` (the signed image's descriptor) holding
/// `signatures`: `artifactType` [`SIGNATURE_ARTIFACT_TYPE`], the empty config.
pub fn referrer_manifest(
    subject: Descriptor,
    signatures: &[SignedPayload],
) -> Result<SignatureArtifact, ArtifactError> {
    let layers = signature_layers(signatures)?;
    let config = Blob {
        descriptor: Descriptor::of(OCI_EMPTY, OCI_EMPTY_CONTENT),
        bytes: OCI_EMPTY_CONTENT.to_vec(),
    };
    let subject = Descriptor {
        annotations: None,
        artifact_type: None,
        ..subject
    };
    finish(config, layers, Some(SIGNATURE_ARTIFACT_TYPE), Some(subject))
}

/// A signature layer of a manifest, before its payload blob is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    pub descriptor: Descriptor,
    /// The [`SIGNATURE_ANNOTATION`] value.
    pub signature: String,
}

impl SignatureLayer {
    /// Pairs the layer with its fetched blob after checking size and digest.
    pub fn with_payload(&self, bytes: Vec<u8>) -> Result<SignedPayload, ArtifactError> {
        if bytes.len() as u64 != self.descriptor.size
            || sha256_digest(&bytes) != self.descriptor.digest
        {
            return Err(ArtifactError::BlobMismatch {
                digest: self.descriptor.digest.clone(),
            });
        }
        Ok(SignedPayload {
            payload: bytes,
            signature: self.signature.clone(),
        })
    }
}

/// A parsed signature manifest: its signature layers and, for a referrer, its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureManifest {
    pub artifact_type: Option<String>,
    pub subject: Option<Descriptor>,
    pub layers: Vec<SignatureLayer>,
}

/// Reads a signature manifest (tag scheme or referrer). Layers that are not simple-signing
/// payloads with a signature annotation are skipped; payload layers larger than
/// [`MAX_PAYLOAD_BYTES`] or with a non-sha256 digest are refused.
pub fn parse_signature_manifest(bytes: &[u8]) -> Result<SignatureManifest, ArtifactError> {
    if bytes.len() > MAX_SIGNATURE_MANIFEST_BYTES {
        return Err(ArtifactError::TooLarge(bytes.len()));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    if manifest.schema_version != 2 {
        return Err(ArtifactError::Malformed(format!(
            "schemaVersion {}",
            manifest.schema_version
        )));
    }
    if let Some(mt) = &manifest.media_type
        && mt != OCI_MANIFEST
        && mt != DOCKER_MANIFEST
    {
        return Err(ArtifactError::Malformed(format!(
            "media type {mt:?} is not an image manifest"
        )));
    }
    let mut layers = Vec::new();
    for layer in manifest.layers {
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
            continue;
        }
        let Some(signature) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            .cloned()
        else {
            continue;
        };
        if layer.size > MAX_PAYLOAD_BYTES as u64 {
            return Err(ArtifactError::Malformed(format!(
                "payload layer {} is {} bytes",
                layer.digest, layer.size
            )));
        }
        if !simple_signing::is_sha256_digest(&layer.digest) {
            return Err(ArtifactError::Malformed(format!(
                "payload layer digest {:?}",
                layer.digest
            )));
        }
        layers.push(SignatureLayer {
            descriptor: layer,
            signature,
        });
    }
    Ok(SignatureManifest {
        artifact_type: manifest.artifact_type,
        subject: manifest.subject,
        layers,
    })
}

/// Reads a signature manifest and fetches each payload with `fetch`, checking every blob
/// against its descriptor: the (payload, signature) pairs to hand to [`verify_any`].
pub fn read_signatures<E: std::fmt::Display>(
    manifest: &[u8],
    mut fetch: impl FnMut(&Descriptor) -> Result<Vec<u8>, E>,
) -> Result<Vec<SignedPayload>, ArtifactError> {
    let parsed = parse_signature_manifest(manifest)?;
    parsed
        .layers
        .iter()
        .map(|layer| {
            let bytes = fetch(&layer.descriptor).map_err(|e| ArtifactError::Fetch {
                digest: layer.descriptor.digest.clone(),
                message: e.to_string(),
            })?;
            layer.with_payload(bytes)
        })
        .collect()
}
