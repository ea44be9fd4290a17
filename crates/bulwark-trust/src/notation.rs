//! Notary Project (Notation) signatures: the JWS and COSE envelopes, X.509 trust, signing,
//! and the signature manifests Notation pushes as OCI 1.1 referrers.
//!
//! A Notation signature is a signature envelope stored as the single layer of an image
//! manifest whose `subject` is the signed artifact. Both envelopes carry the payload
//! `{"targetArtifact": <descriptor>}`, protected headers (`alg`, `cty`, `crit`,
//! `io.cncf.notary.signingScheme`, `io.cncf.notary.signingTime`, optional
//! `io.cncf.notary.expiry`) and the certificate chain, leaf first, unprotected:
//!
//! - JWS (`application/jose+json`): the flattened JSON serialization, base64url `payload` and
//!   `protected`, `header.x5c`, and the signature over `protected.payload`; times RFC 3339;
//! - COSE (`application/cose`): a `COSE_Sign1_Tagged` with the chain in `x5chain` (label 33)
//!   and the signature over the `Signature1` Sig_structure; times CBOR epoch (tag 1).
//!
//! Verification follows the Notary Project order — integrity, then authenticity, then the
//! signer's claims — and never reads the payload before the signature over it holds:
//! strict envelope parsing (unknown critical headers refused), the signature under the leaf
//! certificate's key with `alg` bound to that key, the chain up to a certificate of the
//! [`TrustStore`], every certificate valid now, the leaf fit for code signing, the envelope
//! not expired, and finally the signed descriptor equal to the expected subject.
//!
//! Only the `notary.x509` signing scheme is implemented: `notary.x509.signingAuthority`
//! (RFC 3161 timestamps) and verification plugins are refused with typed errors. Revocation
//! (OCSP/CRL) is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use coset::cbor::Value as CborValue;
use der::{Decode as _, Encode as _};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::pkcs8::{DecodePrivateKey as _, PrivateKeyInfo};
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use crate::cosign::{
    ArtifactError, Blob, DOCKER_MANIFEST, Descriptor, ImageManifest, OCI_EMPTY, OCI_EMPTY_CONTENT,
    OCI_MANIFEST, SignatureArtifact, sha256_digest,
};

/// Media type of the JWS envelope.
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
/// Media type of the COSE_Sign1 envelope (recognised, not yet verified).
pub const COSE_MEDIA_TYPE: &str = "application/cose";
/// The `cty` of a Notation payload.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// `artifactType` of a Notation signature manifest (older Notation put it in `config`).
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// Manifest annotation: JSON list of the hex SHA-256 of each x5c certificate, leaf first.
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";
/// The signing scheme implemented here.
pub const SIGNING_SCHEME_X509: &str = "notary.x509";
/// The RFC 3161 signing-authority scheme (refused: timestamps are not implemented).
pub const SIGNING_SCHEME_SIGNING_AUTHORITY: &str = "notary.x509.signingAuthority";
/// Upper bound on an envelope, checked before parsing.
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// Upper bound on the decoded payload.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Upper bound on the number of certificates in `x5c` (and in a manifest's thumbprints).
pub const MAX_CHAIN_LEN: usize = 10;

const MAX_PROTECTED_BYTES: usize = 16 * 1024;
const MAX_CERT_BYTES: usize = 64 * 1024;
const MAX_SIGNATURE_BYTES: usize = 1024;
const MAX_TRUST_STORE_BYTES: usize = 4 * 1024 * 1024;
const SIGNING_AGENT: &str = concat!("bulwark/", env!("CARGO_PKG_VERSION"));

const HDR_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const HDR_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const HDR_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const HDR_EXPIRY: &str = "io.cncf.notary.expiry";
const HDR_SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
// JWS registered header names may not be listed in `crit` (RFC 7515 §4.1.11).
const REGISTERED_HEADERS: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
];

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
const OID_KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const OID_KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_KP_EMAIL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
const OID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const OID_ANY_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");

/// Why a Notation signature was refused, or could not be made. Each variant names one reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotationError {
    #[error("signature envelope is {0} bytes, more than the {MAX_ENVELOPE_BYTES} allowed")]
    TooLarge(usize),
    #[error("unsupported signature envelope media type {0:?}")]
    UnsupportedEnvelope(String),
    #[error("malformed signature envelope: {0}")]
    MalformedEnvelope(String),
    #[error("unsupported signature algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("header `alg` is {header} but the signing certificate's key calls for {key}")]
    AlgorithmMismatch { header: String, key: String },
    #[error("unsupported signing scheme {0:?}")]
    UnsupportedSigningScheme(String),
    #[error("unknown critical header {0:?}")]
    UnknownCriticalHeader(String),
    #[error(
        "signature does not verify under the signing certificate's key (tampered payload, headers or signature)"
    )]
    BadSignature,
    #[error("invalid certificate chain: {0}")]
    InvalidChain(String),
    #[error("certificate chain does not lead to a certificate in trust store {store:?}")]
    UntrustedChain { store: String },
    #[error("certificate {subject:?} expired at {not_after}")]
    CertificateExpired { subject: String, not_after: String },
    #[error("certificate {subject:?} is not valid before {not_before}")]
    CertificateNotYetValid { subject: String, not_before: String },
    #[error("signing certificate is not a code-signing certificate: {0}")]
    BadKeyUsage(String),
    #[error("signature expired at {0}")]
    SignatureExpired(String),
    #[error("signature is for digest {found}, not {expected}")]
    DigestMismatch { expected: String, found: String },
    #[error("signature is for an artifact of {found} bytes, not {expected}")]
    SizeMismatch { expected: u64, found: u64 },
    #[error("signature is for media type {found:?}, not {expected:?}")]
    MediaTypeMismatch { expected: String, found: String },
    #[error("trust store: {0}")]
    TrustStore(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

fn malformed(what: impl fmt::Display) -> NotationError {
    NotationError::MalformedEnvelope(what.to_string())
}

/// The JWS `alg` values the Notary Project allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlgorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl JwsAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::Es512 => "ES512",
        }
    }

    pub fn from_jws(value: &str) -> Option<Self> {
        Some(match value {
            "PS256" => JwsAlgorithm::Ps256,
            "PS384" => JwsAlgorithm::Ps384,
            "PS512" => JwsAlgorithm::Ps512,
            "ES256" => JwsAlgorithm::Es256,
            "ES384" => JwsAlgorithm::Es384,
            "ES512" => JwsAlgorithm::Es512,
            _ => return None,
        })
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of Notation trust store; a `notary.x509` signature verifies against `ca` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStoreType {
    Ca,
    SigningAuthority,
    Tsa,
}

impl TrustStoreType {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustStoreType::Ca => "ca",
            TrustStoreType::SigningAuthority => "signingAuthority",
            TrustStoreType::Tsa => "tsa",
        }
    }
}

impl fmt::Display for TrustStoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public key taken from a certificate.
#[derive(Clone)]
enum CertKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

impl CertKey {
    fn from_cert(cert: &Certificate) -> Result<Self, NotationError> {
        let spki_der = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| NotationError::InvalidChain(format!("public key: {e}")))?;
        let spki = SubjectPublicKeyInfoRef::try_from(spki_der.as_slice())
            .map_err(|e| NotationError::InvalidChain(format!("public key: {e}")))?;
        let bad = |e: &dyn fmt::Display| NotationError::InvalidChain(format!("public key: {e}"));
        let bits = spki.subject_public_key.raw_bytes();
        let oid = spki.algorithm.oid;
        if oid == OID_EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters_oid().map_err(|e| bad(&e))?;
            if curve == OID_P256 {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                    .map(CertKey::P256)
                    .map_err(|e| bad(&e))
            } else if curve == OID_P384 {
                p384::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                    .map(CertKey::P384)
                    .map_err(|e| bad(&e))
            } else if curve == OID_P521 {
                p521::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                    .map(CertKey::P521)
                    .map_err(|e| bad(&e))
            } else {
                Err(NotationError::UnsupportedAlgorithm(format!(
                    "elliptic curve {curve}"
                )))
            }
        } else if oid == OID_RSA {
            rsa::RsaPublicKey::from_pkcs1_der(bits)
                .map(CertKey::Rsa)
                .map_err(|e| NotationError::UnsupportedAlgorithm(format!("RSA key: {e}")))
        } else {
            Err(NotationError::UnsupportedAlgorithm(format!(
                "public key algorithm {oid}"
            )))
        }
    }

    /// The one `alg` a signing key of this type and size may use (Notary Project mapping).
    fn jws_algorithm(&self) -> Result<JwsAlgorithm, NotationError> {
        match self {
            CertKey::P256(_) => Ok(JwsAlgorithm::Es256),
            CertKey::P384(_) => Ok(JwsAlgorithm::Es384),
            CertKey::P521(_) => Ok(JwsAlgorithm::Es512),
            CertKey::Rsa(k) => match k.n().bits() {
                2048 => Ok(JwsAlgorithm::Ps256),
                3072 => Ok(JwsAlgorithm::Ps384),
                4096 => Ok(JwsAlgorithm::Ps512),
                n => Err(NotationError::UnsupportedAlgorithm(format!(
                    "{n}-bit RSA signing key"
                ))),
            },
        }
    }

    /// Checks a JWS or COSE signature (`alg` already bound to this key): raw `r || s` for
    /// ECDSA, PSS with a hash-length salt.
    fn verify_raw(&self, alg: JwsAlgorithm, input: &[u8], sig: &[u8]) -> Result<(), NotationError> {
        fn bad<E>(_: E) -> NotationError {
            NotationError::BadSignature
        }
        match (self, alg) {
            (CertKey::P256(k), JwsAlgorithm::Es256) => {
                let sig = p256::ecdsa::Signature::from_slice(sig).map_err(bad)?;
                k.verify(input, &sig).map_err(bad)
            }
            (CertKey::P384(k), JwsAlgorithm::Es384) => {
                let sig = p384::ecdsa::Signature::from_slice(sig).map_err(bad)?;
                k.verify(input, &sig).map_err(bad)
            }
            (CertKey::P521(k), JwsAlgorithm::Es512) => {
                let sig = p521::ecdsa::Signature::from_slice(sig).map_err(bad)?;
                k.verify(input, &sig).map_err(bad)
            }
            // JWS PS* fixes the PSS salt length to the hash length (RFC 7518 §3.5).
            (CertKey::Rsa(k), JwsAlgorithm::Ps256) => k
                .verify(rsa::Pss::new::<Sha256>(), &Sha256::digest(input), sig)
                .map_err(bad),
            (CertKey::Rsa(k), JwsAlgorithm::Ps384) => k
                .verify(rsa::Pss::new::<Sha384>(), &Sha384::digest(input), sig)
                .map_err(bad),
            (CertKey::Rsa(k), JwsAlgorithm::Ps512) => k
                .verify(rsa::Pss::new::<Sha512>(), &Sha512::digest(input), sig)
                .map_err(bad),
            _ => Err(NotationError::UnsupportedAlgorithm(format!(
                "{alg} with this key"
            ))),
        }
    }

    /// Checks a certificate's signature made by this (issuer) key.
    fn verify_certificate(&self, cert: &Certificate) -> Result<(), NotationError> {
        let broken = |what: &str| NotationError::InvalidChain(what.to_owned());
        let tbs = cert
            .tbs_certificate
            .to_der()
            .map_err(|_| broken("cannot encode a certificate"))?;
        let sig = cert
            .signature
            .as_bytes()
            .ok_or_else(|| broken("certificate signature is not whole bytes"))?;
        let oid = cert.signature_algorithm.oid;
        let bad_link = || {
            NotationError::InvalidChain(format!(
                "signature of {:?} does not verify under its issuer's key",
                cert.tbs_certificate.subject.to_string()
            ))
        };
        let prehash = if oid == OID_ECDSA_SHA256 || oid == OID_RSA_SHA256 {
            Sha256::digest(&tbs).to_vec()
        } else if oid == OID_ECDSA_SHA384 || oid == OID_RSA_SHA384 {
            Sha384::digest(&tbs).to_vec()
        } else if oid == OID_ECDSA_SHA512 || oid == OID_RSA_SHA512 {
            Sha512::digest(&tbs).to_vec()
        } else {
            // SHA-1 and RSASSA-PSS certificate signatures land here.
            return Err(NotationError::UnsupportedAlgorithm(format!(
                "certificate signature algorithm {oid}"
            )));
        };
        let ecdsa = oid == OID_ECDSA_SHA256 || oid == OID_ECDSA_SHA384 || oid == OID_ECDSA_SHA512;
        match self {
            CertKey::P256(k) if ecdsa => {
                let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| bad_link())?;
                k.verify_prehash(&prehash, &sig).map_err(|_| bad_link())
            }
            CertKey::P384(k) if ecdsa => {
                let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| bad_link())?;
                k.verify_prehash(&prehash, &sig).map_err(|_| bad_link())
            }
            CertKey::P521(k) if ecdsa => {
                let sig = p521::ecdsa::Signature::from_der(sig).map_err(|_| bad_link())?;
                k.verify_prehash(&prehash, &sig).map_err(|_| bad_link())
            }
            CertKey::Rsa(k) if !ecdsa => {
                let scheme = if oid == OID_RSA_SHA256 {
                    rsa::Pkcs1v15Sign::new::<Sha256>()
                } else if oid == OID_RSA_SHA384 {
                    rsa::Pkcs1v15Sign::new::<Sha384>()
                } else {
                    rsa::Pkcs1v15Sign::new::<Sha512>()
                };
                k.verify(scheme, &prehash, sig).map_err(|_| bad_link())
            }
            _ => Err(NotationError::InvalidChain(format!(
                "certificate signature algorithm {oid} does not match the issuer's key"
            ))),
        }
    }
}

/// A certificate with its DER and key, parsed once.
#[derive(Clone)]
struct ParsedCert {
    der: Vec<u8>,
    cert: Certificate,
    key: CertKey,
}

impl ParsedCert {
    fn from_der(der: Vec<u8>) -> Result<Self, NotationError> {
        let cert = Certificate::from_der(&der)
            .map_err(|e| NotationError::InvalidChain(format!("malformed certificate: {e}")))?;
        let key = CertKey::from_cert(&cert)?;
        Ok(ParsedCert { der, cert, key })
    }

    fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    fn thumbprint(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    fn extension<'a, T: der::Decode<'a> + der::oid::AssociatedOid>(
        &'a self,
    ) -> Result<Option<(bool, T)>, NotationError> {
        self.cert.tbs_certificate.get::<T>().map_err(|e| {
            NotationError::InvalidChain(format!("certificate {:?}: {e}", self.subject()))
        })
    }

    /// Checks that this certificate may issue certificates with `cas_below` CA certificates
    /// between it and the leaf (`basicConstraints` cA and pathLen, `keyUsage` keyCertSign).
    fn check_issuer(&self, cas_below: usize) -> Result<(), NotationError> {
        let subject = self.subject();
        let not_ca = |why: &str| NotationError::InvalidChain(format!("issuer {subject:?} {why}"));
        let Some((_, bc)) = self.extension::<BasicConstraints>()? else {
            return Err(not_ca("has no basicConstraints"));
        };
        if !bc.ca {
            return Err(not_ca("is not a CA"));
        }
        if let Some(limit) = bc.path_len_constraint
            && cas_below > usize::from(limit)
        {
            return Err(not_ca("exceeds its pathLenConstraint"));
        }
        match self.extension::<KeyUsage>()? {
            Some((_, ku)) if ku.key_cert_sign() => Ok(()),
            Some(_) => Err(not_ca("lacks the keyCertSign key usage")),
            None => Err(not_ca("has no keyUsage")),
        }
    }

    /// `self` was issued by `issuer`: names chain and the signature holds.
    fn check_issued_by(&self, issuer: &ParsedCert) -> Result<(), NotationError> {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err(NotationError::InvalidChain(format!(
                "{:?} is not issued by the next certificate {:?}",
                self.subject(),
                issuer.subject()
            )));
        }
        issuer.key.verify_certificate(&self.cert)
    }

    fn check_validity(&self, now: SystemTime) -> Result<(), NotationError> {
        let validity = &self.cert.tbs_certificate.validity;
        if now < validity.not_before.to_system_time() {
            return Err(NotationError::CertificateNotYetValid {
                subject: self.subject(),
                not_before: validity.not_before.to_string(),
            });
        }
        if now > validity.not_after.to_system_time() {
            return Err(NotationError::CertificateExpired {
                subject: self.subject(),
                not_after: validity.not_after.to_string(),
            });
        }
        Ok(())
    }

    /// The Notary Project requirements on the signing certificate.
    fn check_leaf(&self) -> Result<(), NotationError> {
        if let Some((_, bc)) = self.extension::<BasicConstraints>()?
            && bc.ca
        {
            return Err(NotationError::BadKeyUsage(
                "the signing certificate is a CA".to_owned(),
            ));
        }
        let Some((_, ku)) = self.extension::<KeyUsage>()? else {
            return Err(NotationError::BadKeyUsage(
                "no keyUsage extension".to_owned(),
            ));
        };
        if !ku.digital_signature() {
            return Err(NotationError::BadKeyUsage(
                "keyUsage lacks digitalSignature".to_owned(),
            ));
        }
        if ku.key_encipherment()
            || ku.data_encipherment()
            || ku.key_agreement()
            || ku.key_cert_sign()
            || ku.crl_sign()
            || ku.encipher_only()
            || ku.decipher_only()
        {
            return Err(NotationError::BadKeyUsage(
                "keyUsage allows more than signing".to_owned(),
            ));
        }
        if let Some((_, ExtendedKeyUsage(ekus))) = self.extension::<ExtendedKeyUsage>()? {
            for forbidden in [
                OID_ANY_EKU,
                OID_KP_SERVER_AUTH,
                OID_KP_CLIENT_AUTH,
                OID_KP_EMAIL,
                OID_KP_TIME_STAMPING,
            ] {
                if ekus.contains(&forbidden) {
                    return Err(NotationError::BadKeyUsage(format!(
                        "extendedKeyUsage contains {forbidden}"
                    )));
                }
            }
            if !ekus.contains(&OID_KP_CODE_SIGNING) {
                return Err(NotationError::BadKeyUsage(
                    "extendedKeyUsage lacks codeSigning".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

/// A named set of trusted certificates (usually root CAs), as in Notation's trust stores
/// (`<type>/<name>`).
#[derive(Clone)]
pub struct TrustStore {
    store_type: TrustStoreType,
    name: String,
    certs: Vec<ParsedCert>,
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("type", &self.store_type)
            .field("name", &self.name)
            .field("certificates", &self.thumbprints())
            .finish()
    }
}

/// The DER encodings of the PEM `CERTIFICATE` blocks in `pem`, each parsed as an X.509
/// certificate; at least one.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, NotationError> {
    let certs = Certificate::load_pem_chain(pem)
        .map_err(|e| NotationError::TrustStore(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(NotationError::TrustStore(
            "no PEM CERTIFICATE block".to_owned(),
        ));
    }
    certs
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NotationError::TrustStore(e.to_string()))
}

impl TrustStore {
    /// A `ca` store named `default` from one or more PEM `CERTIFICATE` blocks.
    pub fn from_pem(pem: &[u8]) -> Result<Self, NotationError> {
        Self::named(TrustStoreType::Ca, "default", pem)
    }

    /// A store of `store_type` named `name` from one or more PEM `CERTIFICATE` blocks.
    pub fn named(
        store_type: TrustStoreType,
        name: &str,
        pem: &[u8],
    ) -> Result<Self, NotationError> {
        if pem.len() > MAX_TRUST_STORE_BYTES {
            return Err(NotationError::TrustStore(format!(
                "{} bytes of PEM is more than allowed",
                pem.len()
            )));
        }
        Self::from_der_certs(store_type, name, pem_certificates(pem)?)
    }

    /// A store from DER certificates.
    pub fn from_der_certs(
        store_type: TrustStoreType,
        name: &str,
        ders: Vec<Vec<u8>>,
    ) -> Result<Self, NotationError> {
        if ders.is_empty() {
            return Err(NotationError::TrustStore("no certificates".to_owned()));
        }
        let certs = ders
            .into_iter()
            .map(|der| {
                ParsedCert::from_der(der).map_err(|e| NotationError::TrustStore(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustStore {
            store_type,
            name: name.to_owned(),
            certs,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn store_type(&self) -> TrustStoreType {
        self.store_type
    }

    /// `<type>/<name>`, as trust policies name stores.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.store_type, self.name)
    }

    /// Hex SHA-256 of each certificate's DER.
    pub fn thumbprints(&self) -> Vec<String> {
        self.certs.iter().map(ParsedCert::thumbprint).collect()
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// A Notation signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationVerdict {
    /// The signed descriptor (equal to the expected subject; annotations as signed).
    pub target_artifact: Descriptor,
    pub algorithm: JwsAlgorithm,
    pub signing_scheme: String,
    /// The signer's claimed signing time (unauthenticated in `notary.x509`).
    pub signing_time: SystemTime,
    pub expiry: Option<SystemTime>,
    /// Unsigned, informational.
    pub signing_agent: Option<String>,
    /// RFC 4514 subject of the signing certificate.
    pub signer_subject: String,
    /// Hex SHA-256 of each x5c certificate, leaf first.
    pub chain_thumbprints: Vec<String>,
    /// Hex SHA-256 of the trust store certificate the chain led to.
    pub trust_anchor_thumbprint: String,
    /// `<type>/<name>` of the trust store.
    pub trust_store: String,
}

/// The expected subject of a signature: what the signed `targetArtifact` must equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: u64,
}

impl<'a> From<&'a Descriptor> for Subject<'a> {
    fn from(d: &'a Descriptor) -> Self {
        Subject {
            media_type: &d.media_type,
            digest: &d.digest,
            size: d.size,
        }
    }
}

/// A JSON object whose duplicate members are refused (RFC 7515 §4: a JWS parser must
/// reject them or take the last; refusing avoids parser differentials).
struct StrictObject(BTreeMap<String, serde_json::Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StrictObject, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!("duplicate member {k:?}")));
                    }
                    out.insert(k, v);
                }
                Ok(StrictObject(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

// The flattened JWS JSON serialization; the spec allows no other top-level members.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJws {
    payload: String,
    protected: String,
    header: StrictObject,
    signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Payload {
    target_artifact: Descriptor,
}

/// The protected headers of a `notary.x509` JWS, checked.
struct ProtectedHeader {
    alg: JwsAlgorithm,
    signing_scheme: String,
    signing_time: SystemTime,
    expiry: Option<SystemTime>,
}

fn header_str<'a>(
    map: &'a BTreeMap<String, serde_json::Value>,
    name: &str,
) -> Result<Option<&'a str>, NotationError> {
    match map.get(name) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(format!("header {name:?} is not a string"))),
    }
}

fn required_str<'a>(
    map: &'a BTreeMap<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, NotationError> {
    header_str(map, name)?.ok_or_else(|| malformed(format!("header {name:?} is missing")))
}

/// The `crit` rules shared by both envelopes: no duplicates, every listed header present and
/// understood, the signing scheme always critical, the expiry critical when present.
fn check_crit(crit: &[String], present: impl Fn(&str) -> bool) -> Result<(), NotationError> {
    let mut seen = BTreeSet::new();
    for name in crit {
        if !seen.insert(name.as_str()) {
            return Err(malformed(format!("{name:?} is listed twice in \"crit\"")));
        }
        if !present(name) {
            return Err(malformed(format!("critical header {name:?} is absent")));
        }
        if name != HDR_SIGNING_SCHEME && name != HDR_EXPIRY && name != HDR_AUTHENTIC_SIGNING_TIME {
            // Includes the verification-plugin headers: no plugin runs here.
            return Err(NotationError::UnknownCriticalHeader(name.clone()));
        }
    }
    if !seen.contains(HDR_SIGNING_SCHEME) {
        return Err(malformed(format!(
            "{HDR_SIGNING_SCHEME:?} must be critical"
        )));
    }
    if present(HDR_EXPIRY) && !seen.contains(HDR_EXPIRY) {
        return Err(malformed(format!("{HDR_EXPIRY:?} must be critical")));
    }
    Ok(())
}

fn check_scheme(scheme: &str, has_authentic_time: bool) -> Result<(), NotationError> {
    if scheme != SIGNING_SCHEME_X509 {
        return Err(NotationError::UnsupportedSigningScheme(scheme.to_owned()));
    }
    if has_authentic_time {
        return Err(malformed(format!(
            "{HDR_AUTHENTIC_SIGNING_TIME:?} is not valid with {SIGNING_SCHEME_X509}"
        )));
    }
    Ok(())
}

fn parse_protected(bytes: &[u8]) -> Result<ProtectedHeader, NotationError> {
    let StrictObject(map) =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("protected header: {e}")))?;
    let crit: Vec<String> = match map.get("crit") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| malformed("header \"crit\" is not a list of strings"))?,
        None => return Err(malformed("header \"crit\" is missing")),
    };
    for name in &crit {
        if REGISTERED_HEADERS.contains(&name.as_str()) {
            return Err(malformed(format!(
                "registered header {name:?} may not be critical"
            )));
        }
    }
    check_crit(&crit, |name| map.contains_key(name))?;

    let alg = required_str(&map, "alg")?;
    let alg = JwsAlgorithm::from_jws(alg)
        .ok_or_else(|| NotationError::UnsupportedAlgorithm(format!("alg {alg:?}")))?;
    let cty = required_str(&map, "cty")?;
    if cty != PAYLOAD_CONTENT_TYPE {
        return Err(malformed(format!(
            "unsupported payload content type {cty:?}"
        )));
    }
    let scheme = required_str(&map, HDR_SIGNING_SCHEME)?;
    check_scheme(scheme, map.contains_key(HDR_AUTHENTIC_SIGNING_TIME))?;
    let signing_time = parse_rfc3339(required_str(&map, HDR_SIGNING_TIME)?)?;
    let expiry = header_str(&map, HDR_EXPIRY)?
        .map(parse_rfc3339)
        .transpose()?;
    Ok(ProtectedHeader {
        alg,
        signing_scheme: scheme.to_owned(),
        signing_time,
        expiry,
    })
}

fn decode_b64url(value: &str, max_decoded: usize, what: &str) -> Result<Vec<u8>, NotationError> {
    if value.len() > max_decoded.div_ceil(3) * 4 {
        return Err(malformed(format!("{what} is too large")));
    }
    B64URL
        .decode(value)
        .map_err(|e| malformed(format!("{what} is not base64url: {e}")))
}

/// An envelope taken apart; nothing in it is trusted yet.
struct EnvelopeParts {
    signing_input: Vec<u8>,
    header: ProtectedHeader,
    payload: Vec<u8>,
    signature: Vec<u8>,
    chain: Vec<ParsedCert>,
    signing_agent: Option<String>,
}

fn x5c_ders(header: &BTreeMap<String, serde_json::Value>) -> Result<Vec<Vec<u8>>, NotationError> {
    let Some(serde_json::Value::Array(items)) = header.get("x5c") else {
        return Err(malformed(
            "unprotected header \"x5c\" is missing or not a list",
        ));
    };
    if items.is_empty() || items.len() > MAX_CHAIN_LEN {
        return Err(malformed(format!(
            "\"x5c\" holds {} certificates (1 to {MAX_CHAIN_LEN} allowed)",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| {
            let serde_json::Value::String(s) = item else {
                return Err(malformed("\"x5c\" entry is not a string"));
            };
            if s.len() > MAX_CERT_BYTES.div_ceil(3) * 4 {
                return Err(malformed("\"x5c\" certificate is too large"));
            }
            B64.decode(s)
                .map_err(|e| malformed(format!("\"x5c\" entry is not base64: {e}")))
        })
        .collect()
}

fn parse_jws(envelope: &[u8]) -> Result<EnvelopeParts, NotationError> {
    let raw: RawJws = serde_json::from_slice(envelope).map_err(malformed)?;
    let protected = decode_b64url(&raw.protected, MAX_PROTECTED_BYTES, "protected header")?;
    let header = parse_protected(&protected)?;
    let payload = decode_b64url(&raw.payload, MAX_PAYLOAD_BYTES, "payload")?;
    let signature = decode_b64url(&raw.signature, MAX_SIGNATURE_BYTES, "signature")?;
    let StrictObject(unprotected) = raw.header;
    let chain = x5c_ders(&unprotected)?
        .into_iter()
        .map(ParsedCert::from_der)
        .collect::<Result<Vec<_>, _>>()?;
    let signing_agent = header_str(&unprotected, HDR_SIGNING_AGENT)
        .ok()
        .flatten()
        .map(str::to_owned);
    // Sign what was sent, not a re-encoding.
    let mut signing_input = Vec::with_capacity(raw.protected.len() + 1 + raw.payload.len());
    signing_input.extend_from_slice(raw.protected.as_bytes());
    signing_input.push(b'.');
    signing_input.extend_from_slice(raw.payload.as_bytes());
    Ok(EnvelopeParts {
        signing_input,
        header,
        payload,
        signature,
        chain,
        signing_agent,
    })
}

/// Takes an envelope of either format apart.
fn parse_envelope(envelope: &[u8], media_type: &str) -> Result<EnvelopeParts, NotationError> {
    if envelope.len() > MAX_ENVELOPE_BYTES {
        return Err(NotationError::TooLarge(envelope.len()));
    }
    match media_type {
        JWS_MEDIA_TYPE => parse_jws(envelope),
        COSE_MEDIA_TYPE => parse_cose(envelope),
        other => Err(NotationError::UnsupportedEnvelope(other.to_owned())),
    }
}

fn cose_algorithm(alg: JwsAlgorithm) -> coset::iana::Algorithm {
    use coset::iana::Algorithm as A;
    match alg {
        JwsAlgorithm::Ps256 => A::PS256,
        JwsAlgorithm::Ps384 => A::PS384,
        JwsAlgorithm::Ps512 => A::PS512,
        JwsAlgorithm::Es256 => A::ES256,
        JwsAlgorithm::Es384 => A::ES384,
        JwsAlgorithm::Es512 => A::ES512,
    }
}

fn from_cose_algorithm(alg: Option<&coset::Algorithm>) -> Result<JwsAlgorithm, NotationError> {
    use coset::iana::Algorithm as A;
    Ok(match alg {
        Some(coset::RegisteredLabelWithPrivate::Assigned(a)) => match a {
            A::PS256 => JwsAlgorithm::Ps256,
            A::PS384 => JwsAlgorithm::Ps384,
            A::PS512 => JwsAlgorithm::Ps512,
            A::ES256 => JwsAlgorithm::Es256,
            A::ES384 => JwsAlgorithm::Es384,
            A::ES512 => JwsAlgorithm::Es512,
            other => {
                return Err(NotationError::UnsupportedAlgorithm(format!(
                    "COSE alg {other:?}"
                )));
            }
        },
        Some(other) => {
            return Err(NotationError::UnsupportedAlgorithm(format!(
                "COSE alg {other:?}"
            )));
        }
        None => return Err(malformed("header alg (1) is missing")),
    })
}

fn cose_text_header<'a>(header: &'a coset::Header, name: &str) -> Option<&'a CborValue> {
    header.rest.iter().find_map(|(label, value)| match label {
        coset::Label::Text(t) if t == name => Some(value),
        _ => None,
    })
}

/// An RFC 8949 epoch date/time (tag 1) in whole seconds, as Notation writes them.
fn cose_time(value: &CborValue, name: &str) -> Result<SystemTime, NotationError> {
    let bad = || {
        malformed(format!(
            "{name:?} is not an epoch date/time in whole seconds"
        ))
    };
    let CborValue::Tag(1, inner) = value else {
        return Err(bad());
    };
    let CborValue::Integer(secs) = inner.as_ref() else {
        return Err(bad());
    };
    let secs = u64::try_from(i128::from(*secs)).map_err(|_| bad())?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or_else(bad)
}

// COSE header label of the x5chain (RFC 9360).
const COSE_X5CHAIN: i64 = 33;

fn parse_cose(envelope: &[u8]) -> Result<EnvelopeParts, NotationError> {
    use coset::TaggedCborSerializable as _;
    use coset::iana::EnumI64 as _;
    let sign1 = coset::CoseSign1::from_tagged_slice(envelope)
        .map_err(|e| malformed(format!("not a COSE_Sign1_Tagged: {e:?}")))?;
    let h = &sign1.protected.header;
    let mut crit = Vec::new();
    for label in &h.crit {
        match label {
            coset::RegisteredLabel::Text(name) => crit.push(name.clone()),
            // Labels 0..=8 are COSE's own and may not be critical (Notary Project COSE spec).
            coset::RegisteredLabel::Assigned(p) if (0..=8).contains(&p.to_i64()) => {
                return Err(malformed(format!(
                    "registered header {} may not be critical",
                    p.to_i64()
                )));
            }
            coset::RegisteredLabel::Assigned(p) => {
                return Err(NotationError::UnknownCriticalHeader(format!(
                    "label {}",
                    p.to_i64()
                )));
            }
        }
    }
    check_crit(&crit, |name| cose_text_header(h, name).is_some())?;
    let alg = from_cose_algorithm(h.alg.as_ref())?;
    match &h.content_type {
        Some(coset::ContentType::Text(cty)) if cty == PAYLOAD_CONTENT_TYPE => {}
        other => {
            return Err(malformed(format!(
                "unsupported payload content type {other:?}"
            )));
        }
    }
    let scheme = match cose_text_header(h, HDR_SIGNING_SCHEME) {
        Some(CborValue::Text(s)) => s.as_str(),
        _ => return Err(malformed(format!("{HDR_SIGNING_SCHEME:?} is missing"))),
    };
    check_scheme(
        scheme,
        cose_text_header(h, HDR_AUTHENTIC_SIGNING_TIME).is_some(),
    )?;
    let signing_time = cose_text_header(h, HDR_SIGNING_TIME)
        .ok_or_else(|| malformed(format!("{HDR_SIGNING_TIME:?} is missing")))
        .and_then(|v| cose_time(v, HDR_SIGNING_TIME))?;
    let expiry = cose_text_header(h, HDR_EXPIRY)
        .map(|v| cose_time(v, HDR_EXPIRY))
        .transpose()?;
    let header = ProtectedHeader {
        alg,
        signing_scheme: scheme.to_owned(),
        signing_time,
        expiry,
    };

    // x5chain: unprotected as Notation writes it, or protected (the spec allows both).
    let x5chain = [&sign1.unprotected, h].into_iter().find_map(|hdr| {
        hdr.rest.iter().find_map(|(label, value)| match label {
            coset::Label::Int(COSE_X5CHAIN) => Some(value),
            _ => None,
        })
    });
    let ders: Vec<Vec<u8>> = match x5chain {
        Some(CborValue::Bytes(one)) => vec![one.clone()],
        Some(CborValue::Array(items)) => items
            .iter()
            .map(|item| match item {
                CborValue::Bytes(der) => Ok(der.clone()),
                _ => Err(malformed("x5chain entry is not a byte string")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed("x5chain (33) is missing")),
    };
    if ders.is_empty() || ders.len() > MAX_CHAIN_LEN {
        return Err(malformed(format!(
            "x5chain holds {} certificates (1 to {MAX_CHAIN_LEN} allowed)",
            ders.len()
        )));
    }
    let chain = ders
        .into_iter()
        .map(ParsedCert::from_der)
        .collect::<Result<Vec<_>, _>>()?;
    let signing_agent = match cose_text_header(&sign1.unprotected, HDR_SIGNING_AGENT) {
        Some(CborValue::Text(agent)) => Some(agent.clone()),
        _ => None,
    };
    let payload = sign1
        .payload
        .clone()
        .ok_or_else(|| malformed("detached payloads are not supported"))?;
    if payload.len() > MAX_PAYLOAD_BYTES || sign1.signature.len() > MAX_SIGNATURE_BYTES {
        return Err(malformed("payload or signature is too large"));
    }
    Ok(EnvelopeParts {
        // Sig_structure over the protected bytes as received.
        signing_input: sign1.tbs_data(b""),
        header,
        payload,
        signature: sign1.signature,
        chain,
        signing_agent,
    })
}

/// Validates `chain` (leaf first) and finds its trust anchor in `store`. Each certificate
/// must be issued by the next; the chain is trusted when one of its certificates is in the
/// store byte for byte, or when its last certificate is issued by a store certificate.
/// Returns the anchor's thumbprint.
fn validate_chain(
    chain: &[ParsedCert],
    store: &TrustStore,
    now: SystemTime,
) -> Result<String, NotationError> {
    let mut cas_below = 0;
    for pair in chain.windows(2) {
        if let [child, issuer] = pair {
            child.check_issued_by(issuer)?;
            issuer.check_issuer(cas_below)?;
            cas_below += 1;
        }
    }
    let in_store = chain
        .iter()
        .position(|c| store.certs.iter().any(|s| s.der == c.der));
    let anchor = match (in_store, chain.last()) {
        (Some(i), _) => chain.get(i).map(ParsedCert::thumbprint),
        (None, Some(last)) => store
            .certs
            .iter()
            .find(|s| {
                last.check_issued_by(s).is_ok()
                    && s.check_issuer(cas_below).is_ok()
                    && s.check_validity(now).is_ok()
            })
            .map(ParsedCert::thumbprint),
        (None, None) => None,
    };
    let anchor = anchor.ok_or_else(|| NotationError::UntrustedChain {
        store: store.qualified_name(),
    })?;
    for cert in chain {
        cert.check_validity(now)?;
    }
    Ok(anchor)
}

/// Verifies a Notation signature envelope (`envelope_media_type` [`JWS_MEDIA_TYPE`] or
/// [`COSE_MEDIA_TYPE`]) for `expected` against `trust_store` (a `ca` store) at `now`.
///
/// The chain is trusted when one of its certificates is in the store byte for byte, or when
/// its last certificate is issued by a store certificate; every certificate in it must be
/// valid at `now` (there is no authentic timestamp to fall back on).
pub fn verify(
    envelope: &[u8],
    envelope_media_type: &str,
    expected: &Subject<'_>,
    trust_store: &TrustStore,
    now: SystemTime,
) -> Result<NotationVerdict, NotationError> {
    if envelope.len() > MAX_ENVELOPE_BYTES {
        return Err(NotationError::TooLarge(envelope.len()));
    }
    if trust_store.store_type != TrustStoreType::Ca {
        return Err(NotationError::TrustStore(format!(
            "{} cannot verify {SIGNING_SCHEME_X509} signatures (a ca store is needed)",
            trust_store.qualified_name()
        )));
    }
    let parts = parse_envelope(envelope, envelope_media_type)?;
    let leaf = parts
        .chain
        .first()
        .ok_or_else(|| malformed("empty certificate chain"))?;

    // Integrity: `alg` must be the one the signing key calls for (no algorithm substitution).
    let key_alg = leaf.key.jws_algorithm()?;
    if key_alg != parts.header.alg {
        return Err(NotationError::AlgorithmMismatch {
            header: parts.header.alg.to_string(),
            key: key_alg.to_string(),
        });
    }
    leaf.key
        .verify_raw(parts.header.alg, &parts.signing_input, &parts.signature)?;

    // Authenticity: the chain leads to the trust store, every certificate valid now.
    let anchor = validate_chain(&parts.chain, trust_store, now)?;
    leaf.check_leaf()?;

    // The signer's claims.
    if let Some(expiry) = parts.header.expiry
        && now >= expiry
    {
        return Err(NotationError::SignatureExpired(format_rfc3339(expiry)?));
    }
    let payload: Payload =
        serde_json::from_slice(&parts.payload).map_err(|e| malformed(format!("payload: {e}")))?;
    let target = payload.target_artifact;
    if target.digest != expected.digest {
        return Err(NotationError::DigestMismatch {
            expected: expected.digest.to_owned(),
            found: target.digest,
        });
    }
    if target.size != expected.size {
        return Err(NotationError::SizeMismatch {
            expected: expected.size,
            found: target.size,
        });
    }
    if target.media_type != expected.media_type {
        return Err(NotationError::MediaTypeMismatch {
            expected: expected.media_type.to_owned(),
            found: target.media_type,
        });
    }
    Ok(NotationVerdict {
        target_artifact: target,
        algorithm: parts.header.alg,
        signing_scheme: parts.header.signing_scheme,
        signing_time: parts.header.signing_time,
        expiry: parts.header.expiry,
        signing_agent: parts.signing_agent,
        signer_subject: leaf.subject(),
        chain_thumbprints: parts.chain.iter().map(ParsedCert::thumbprint).collect(),
        trust_anchor_thumbprint: anchor,
        trust_store: trust_store.qualified_name(),
    })
}

/// A private key for Notation signing.
#[derive(Clone)]
pub enum NotationSigningKey {
    EcdsaP256(p256::ecdsa::SigningKey),
    EcdsaP384(p384::ecdsa::SigningKey),
    /// RSA 2048/3072/4096, signing with PS256/PS384/PS512 by size.
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl fmt::Debug for NotationSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            NotationSigningKey::EcdsaP256(_) => "ecdsa-p256",
            NotationSigningKey::EcdsaP384(_) => "ecdsa-p384",
            NotationSigningKey::Rsa(_) => "rsa",
        };
        write!(f, "NotationSigningKey({kind}, <redacted>)")
    }
}

impl NotationSigningKey {
    /// Reads a DER PKCS#8 `PrivateKeyInfo` (EC P-256, EC P-384 or RSA).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, NotationError> {
        let bad = |e: &dyn fmt::Display| NotationError::Signing(format!("private key: {e}"));
        let info = PrivateKeyInfo::try_from(der).map_err(|e| bad(&e))?;
        let oid = info.algorithm.oid;
        if oid == OID_EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().map_err(|e| bad(&e))?;
            if curve == OID_P256 {
                p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(NotationSigningKey::EcdsaP256)
                    .map_err(|e| bad(&e))
            } else if curve == OID_P384 {
                p384::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(NotationSigningKey::EcdsaP384)
                    .map_err(|e| bad(&e))
            } else {
                Err(NotationError::UnsupportedAlgorithm(format!(
                    "signing with elliptic curve {curve}"
                )))
            }
        } else if oid == OID_RSA {
            rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map(|k| NotationSigningKey::Rsa(Box::new(k)))
                .map_err(|e| bad(&e))
        } else {
            Err(NotationError::UnsupportedAlgorithm(format!(
                "signing key algorithm {oid}"
            )))
        }
    }

    /// Reads a PEM `PRIVATE KEY` (unencrypted PKCS#8).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, NotationError> {
        let (label, der) = der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| NotationError::Signing(format!("private key PEM: {e}")))?;
        let der = zeroize::Zeroizing::new(der);
        if label != "PRIVATE KEY" {
            return Err(NotationError::Signing(format!(
                "unexpected PEM label {label:?}"
            )));
        }
        Self::from_pkcs8_der(&der)
    }

    /// Whether `key` (from the signing certificate) is this key's public half.
    fn matches(&self, key: &CertKey) -> bool {
        match (self, key) {
            (NotationSigningKey::EcdsaP256(s), CertKey::P256(p)) => s.verifying_key() == p,
            (NotationSigningKey::EcdsaP384(s), CertKey::P384(p)) => s.verifying_key() == p,
            (NotationSigningKey::Rsa(s), CertKey::Rsa(p)) => &rsa::RsaPublicKey::from(&**s) == p,
            _ => false,
        }
    }

    /// Signs the JWS signing input: raw `r || s` for ECDSA, PSS with a hash-length salt.
    fn sign(&self, alg: JwsAlgorithm, input: &[u8]) -> Result<Vec<u8>, NotationError> {
        use p256::ecdsa::signature::Signer as _;
        let fail = |e: &dyn fmt::Display| NotationError::Signing(e.to_string());
        let mut rng = rsa::rand_core::OsRng;
        match (self, alg) {
            (NotationSigningKey::EcdsaP256(k), JwsAlgorithm::Es256) => {
                let sig: p256::ecdsa::Signature = k.try_sign(input).map_err(|e| fail(&e))?;
                Ok(sig.to_bytes().to_vec())
            }
            (NotationSigningKey::EcdsaP384(k), JwsAlgorithm::Es384) => {
                let sig: p384::ecdsa::Signature = k.try_sign(input).map_err(|e| fail(&e))?;
                Ok(sig.to_bytes().to_vec())
            }
            (NotationSigningKey::Rsa(k), JwsAlgorithm::Ps256) => k
                .sign_with_rng(&mut rng, rsa::Pss::new::<Sha256>(), &Sha256::digest(input))
                .map_err(|e| fail(&e)),
            (NotationSigningKey::Rsa(k), JwsAlgorithm::Ps384) => k
                .sign_with_rng(&mut rng, rsa::Pss::new::<Sha384>(), &Sha384::digest(input))
                .map_err(|e| fail(&e)),
            (NotationSigningKey::Rsa(k), JwsAlgorithm::Ps512) => k
                .sign_with_rng(&mut rng, rsa::Pss::new::<Sha512>(), &Sha512::digest(input))
                .map_err(|e| fail(&e)),
            _ => Err(NotationError::UnsupportedAlgorithm(format!(
                "signing {alg} with this key"
            ))),
        }
    }
}

/// Checks the chain and the key belong together; the `alg` the leaf key calls for.
fn signing_algorithm(
    key: &NotationSigningKey,
    cert_chain_der: &[Vec<u8>],
) -> Result<JwsAlgorithm, NotationError> {
    if cert_chain_der.is_empty() || cert_chain_der.len() > MAX_CHAIN_LEN {
        return Err(NotationError::Signing(format!(
            "the certificate chain must hold 1 to {MAX_CHAIN_LEN} certificates"
        )));
    }
    let leaf = cert_chain_der
        .first()
        .map(|der| ParsedCert::from_der(der.clone()))
        .transpose()?
        .ok_or_else(|| NotationError::Signing("empty certificate chain".to_owned()))?;
    if !key.matches(&leaf.key) {
        return Err(NotationError::Signing(
            "the private key does not match the signing certificate".to_owned(),
        ));
    }
    leaf.key.jws_algorithm()
}

/// Signs `subject` as a Notation JWS envelope (`notary.x509`): `cert_chain_der` is the x5c
/// chain, leaf (holding `key`'s public key) first. `alg` follows the leaf key; times are
/// written in whole seconds, UTC.
pub fn sign_jws(
    subject: &Descriptor,
    key: &NotationSigningKey,
    cert_chain_der: &[Vec<u8>],
    signing_time: SystemTime,
    expiry: Option<SystemTime>,
) -> Result<Vec<u8>, NotationError> {
    let alg = signing_algorithm(key, cert_chain_der)?;
    let mut crit = vec![HDR_SIGNING_SCHEME];
    let mut protected = serde_json::Map::new();
    protected.insert("alg".to_owned(), alg.as_str().into());
    protected.insert("cty".to_owned(), PAYLOAD_CONTENT_TYPE.into());
    protected.insert(HDR_SIGNING_SCHEME.to_owned(), SIGNING_SCHEME_X509.into());
    protected.insert(
        HDR_SIGNING_TIME.to_owned(),
        format_rfc3339(signing_time)?.into(),
    );
    if let Some(expiry) = expiry {
        protected.insert(HDR_EXPIRY.to_owned(), format_rfc3339(expiry)?.into());
        crit.push(HDR_EXPIRY);
    }
    protected.insert("crit".to_owned(), crit.into());
    let protected =
        serde_json::to_vec(&protected).map_err(|e| NotationError::Signing(e.to_string()))?;
    let payload = Payload {
        target_artifact: subject.clone(),
    };
    let payload =
        serde_json::to_vec(&payload).map_err(|e| NotationError::Signing(e.to_string()))?;
    let protected_b64 = B64URL.encode(protected);
    let payload_b64 = B64URL.encode(payload);
    let signature = key.sign(alg, format!("{protected_b64}.{payload_b64}").as_bytes())?;
    let x5c: Vec<String> = cert_chain_der.iter().map(|der| B64.encode(der)).collect();
    let envelope = serde_json::json!({
        "payload": payload_b64,
        "protected": protected_b64,
        "header": {"x5c": x5c, HDR_SIGNING_AGENT: SIGNING_AGENT},
        "signature": B64URL.encode(signature),
    });
    serde_json::to_vec(&envelope).map_err(|e| NotationError::Signing(e.to_string()))
}

/// Signs `subject` as a Notation COSE_Sign1_Tagged envelope (`application/cose`), with the
/// same inputs and rules as [`sign_jws`]; times are CBOR epoch date/times (tag 1).
pub fn sign_cose(
    subject: &Descriptor,
    key: &NotationSigningKey,
    cert_chain_der: &[Vec<u8>],
    signing_time: SystemTime,
    expiry: Option<SystemTime>,
) -> Result<Vec<u8>, NotationError> {
    use coset::TaggedCborSerializable as _;
    let alg = signing_algorithm(key, cert_chain_der)?;
    let epoch = |t: SystemTime| -> Result<CborValue, NotationError> {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| NotationError::Signing("time before 1970".to_owned()))?
            .as_secs();
        Ok(CborValue::Tag(1, Box::new(CborValue::Integer(secs.into()))))
    };
    let mut protected = coset::HeaderBuilder::new()
        .algorithm(cose_algorithm(alg))
        .add_critical_label(coset::RegisteredLabel::Text(HDR_SIGNING_SCHEME.to_owned()))
        .content_type(PAYLOAD_CONTENT_TYPE.to_owned())
        .text_value(
            HDR_SIGNING_SCHEME.to_owned(),
            CborValue::Text(SIGNING_SCHEME_X509.to_owned()),
        )
        .text_value(HDR_SIGNING_TIME.to_owned(), epoch(signing_time)?);
    if let Some(expiry) = expiry {
        protected = protected
            .add_critical_label(coset::RegisteredLabel::Text(HDR_EXPIRY.to_owned()))
            .text_value(HDR_EXPIRY.to_owned(), epoch(expiry)?);
    }
    let chain = cert_chain_der
        .iter()
        .map(|der| CborValue::Bytes(der.clone()))
        .collect();
    let unprotected = coset::HeaderBuilder::new()
        .value(COSE_X5CHAIN, CborValue::Array(chain))
        .text_value(
            HDR_SIGNING_AGENT.to_owned(),
            CborValue::Text(SIGNING_AGENT.to_owned()),
        );
    let payload = serde_json::to_vec(&Payload {
        target_artifact: subject.clone(),
    })
    .map_err(|e| NotationError::Signing(e.to_string()))?;
    coset::CoseSign1Builder::new()
        .protected(protected.build())
        .unprotected(unprotected.build())
        .payload(payload)
        .try_create_signature(b"", |tbs| key.sign(alg, tbs))?
        .build()
        .to_tagged_vec()
        .map_err(|e| NotationError::Signing(format!("{e:?}")))
}

/// Hex SHA-256 of each certificate of an envelope's chain, leaf first: the value of
/// [`THUMBPRINT_ANNOTATION`]. The envelope is parsed as [`verify`] does (nothing verified).
pub fn chain_thumbprints(envelope: &[u8], media_type: &str) -> Result<Vec<String>, NotationError> {
    Ok(parse_envelope(envelope, media_type)?
        .chain
        .iter()
        .map(ParsedCert::thumbprint)
        .collect())
}

/// The OCI 1.1 signature manifest Notation pushes for `subject` holding one `envelope` of
/// `envelope_media_type` ([`JWS_MEDIA_TYPE`] or [`COSE_MEDIA_TYPE`]):
/// `artifactType` [`SIGNATURE_ARTIFACT_TYPE`], the empty config, the envelope as the single
/// layer and the chain thumbprints annotation.
pub fn signature_manifest(
    subject: Descriptor,
    envelope: &[u8],
    envelope_media_type: &str,
) -> Result<SignatureArtifact, ArtifactError> {
    let media_type = match envelope_media_type {
        JWS_MEDIA_TYPE => JWS_MEDIA_TYPE,
        COSE_MEDIA_TYPE => COSE_MEDIA_TYPE,
        other => {
            return Err(ArtifactError::Malformed(format!(
                "envelope media type {other:?}"
            )));
        }
    };
    let thumbprints = chain_thumbprints(envelope, media_type)
        .map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    let thumbprints =
        serde_json::to_string(&thumbprints).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    let config = Blob {
        descriptor: Descriptor::of(OCI_EMPTY, OCI_EMPTY_CONTENT),
        bytes: OCI_EMPTY_CONTENT.to_vec(),
    };
    let layer = Blob {
        descriptor: Descriptor::of(media_type, envelope),
        bytes: envelope.to_vec(),
    };
    let subject = Descriptor {
        annotations: None,
        artifact_type: None,
        ..subject
    };
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        artifact_type: Some(SIGNATURE_ARTIFACT_TYPE.to_owned()),
        config: config.descriptor.clone(),
        layers: vec![layer.descriptor.clone()],
        subject: Some(subject),
        annotations: Some(BTreeMap::from([(
            THUMBPRINT_ANNOTATION.to_owned(),
            thumbprints,
        )])),
    };
    let bytes =
        serde_json::to_vec(&manifest).map_err(|e| ArtifactError::Malformed(e.to_string()))?;
    Ok(SignatureArtifact {
        digest: sha256_digest(&bytes),
        manifest: bytes,
        media_type: OCI_MANIFEST,
        blobs: vec![config, layer],
    })
}

/// A parsed Notation signature manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationSignatureManifest {
    pub subject: Descriptor,
    /// The envelope layer; its media type says which envelope format it is.
    pub envelope: Descriptor,
    /// The [`THUMBPRINT_ANNOTATION`] list, lowercase hex (empty when absent).
    pub thumbprints: Vec<String>,
}

impl NotationSignatureManifest {
    /// Checks a fetched envelope blob against the layer descriptor.
    pub fn check_envelope(&self, bytes: &[u8]) -> Result<(), ArtifactError> {
        if bytes.len() as u64 != self.envelope.size || sha256_digest(bytes) != self.envelope.digest
        {
            return Err(ArtifactError::BlobMismatch {
                digest: self.envelope.digest.clone(),
            });
        }
        Ok(())
    }

    /// Whether the chain annotation names a certificate of `store` (a cheap filter before
    /// fetching the envelope; verification does not rely on it).
    pub fn mentions(&self, store: &TrustStore) -> bool {
        let ours = store.thumbprints();
        self.thumbprints.iter().any(|t| ours.contains(t))
    }
}

fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Reads a Notation signature manifest: an image manifest marked as a Notation signature
/// (by `artifactType`, or by `config.mediaType` as older Notation wrote it) with a subject
/// and exactly one envelope layer.
pub fn parse_signature_manifest(bytes: &[u8]) -> Result<NotationSignatureManifest, ArtifactError> {
    let bad = |m: String| ArtifactError::Malformed(m);
    if bytes.len() > crate::cosign::MAX_SIGNATURE_MANIFEST_BYTES {
        return Err(ArtifactError::TooLarge(bytes.len()));
    }
    let manifest: ImageManifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if manifest.schema_version != 2 {
        return Err(bad(format!("schemaVersion {}", manifest.schema_version)));
    }
    if let Some(mt) = &manifest.media_type
        && mt != OCI_MANIFEST
        && mt != DOCKER_MANIFEST
    {
        return Err(bad(format!("media type {mt:?} is not an image manifest")));
    }
    if manifest.artifact_type.as_deref() != Some(SIGNATURE_ARTIFACT_TYPE)
        && manifest.config.media_type != SIGNATURE_ARTIFACT_TYPE
    {
        return Err(bad("not a Notation signature manifest".to_owned()));
    }
    let subject = manifest
        .subject
        .ok_or_else(|| bad("no subject".to_owned()))?;
    let [envelope] = <[Descriptor; 1]>::try_from(manifest.layers)
        .map_err(|l| bad(format!("{} layers, one expected", l.len())))?;
    if envelope.media_type != JWS_MEDIA_TYPE && envelope.media_type != COSE_MEDIA_TYPE {
        return Err(bad(format!(
            "envelope media type {:?}",
            envelope.media_type
        )));
    }
    if envelope.size > MAX_ENVELOPE_BYTES as u64 || !is_sha256_digest(&envelope.digest) {
        return Err(bad(format!(
            "envelope layer {} of {} bytes",
            envelope.digest, envelope.size
        )));
    }
    let thumbprints = match manifest
        .annotations
        .as_ref()
        .and_then(|a| a.get(THUMBPRINT_ANNOTATION))
    {
        None => Vec::new(),
        Some(value) => {
            let list: Vec<String> = serde_json::from_str(value)
                .map_err(|e| bad(format!("{THUMBPRINT_ANNOTATION}: {e}")))?;
            if list.len() > MAX_CHAIN_LEN {
                return Err(bad(format!("{THUMBPRINT_ANNOTATION}: too many entries")));
            }
            list.into_iter().map(|t| t.to_ascii_lowercase()).collect()
        }
    };
    Ok(NotationSignatureManifest {
        subject,
        envelope,
        thumbprints,
    })
}

/// Reads a signature manifest and fetches its envelope with `fetch`, checked against the
/// layer descriptor: the envelope bytes and media type to hand to [`verify`].
pub fn read_envelope<E: fmt::Display>(
    manifest: &[u8],
    fetch: impl FnOnce(&Descriptor) -> Result<Vec<u8>, E>,
) -> Result<(NotationSignatureManifest, Vec<u8>), ArtifactError> {
    let parsed = parse_signature_manifest(manifest)?;
    let bytes = fetch(&parsed.envelope).map_err(|e| ArtifactError::Fetch {
        digest: parsed.envelope.digest.clone(),
        message: e.to_string(),
    })?;
    parsed.check_envelope(&bytes)?;
    Ok((parsed, bytes))
}

/// `YYYY-MM-DDTHH:MM:SSZ` (whole seconds; the spec advises against fractions).
pub fn format_rfc3339(time: SystemTime) -> Result<String, NotationError> {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| malformed("time before 1970"))?
        .as_secs();
    let dt = der::DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|e| malformed(format!("time out of range: {e}")))?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minutes(),
        dt.seconds()
    ))
}

/// Parses an RFC 3339 date-time (`Z` or a numeric offset; a fraction is accepted and
/// truncated to the second).
pub fn parse_rfc3339(value: &str) -> Result<SystemTime, NotationError> {
    let bad = || malformed(format!("{value:?} is not an RFC 3339 time"));
    let b = value.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u16, NotationError> {
        let digits = b.get(range).ok_or_else(bad)?;
        digits.iter().try_fold(0u16, |acc, &d| {
            if d.is_ascii_digit() {
                Ok(acc * 10 + u16::from(d - b'0'))
            } else {
                Err(bad())
            }
        })
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return Err(bad());
    }
    let small = |v: u16| u8::try_from(v).map_err(|_| bad());
    let (year, month, day) = (num(0..4)?, small(num(5..7)?)?, small(num(8..10)?)?);
    let (hour, minute) = (small(num(11..13)?)?, small(num(14..16)?)?);
    // A leap second is read as the second before it.
    let second = small(num(17..19)?)?.min(59);
    let mut i = 19;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let hours = i64::from(num(i + 1..i + 3)?);
            let minutes = i64::from(num(i + 4..i + 6)?);
            if hours > 23 || minutes > 59 {
                return Err(bad());
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return Err(bad()),
    };
    let local = der::DateTime::new(year, month, day, hour, minute, second).map_err(|_| bad())?;
    let local = i64::try_from(local.unix_duration().as_secs()).map_err(|_| bad())?;
    let utc = u64::try_from(local - offset_secs).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_and_offsets() {
        let t = parse_rfc3339("2022-04-06T07:01:20Z").unwrap();
        assert_eq!(format_rfc3339(t).unwrap(), "2022-04-06T07:01:20Z");
        assert_eq!(parse_rfc3339("2022-04-06T00:01:20-07:00").unwrap(), t);
        assert_eq!(parse_rfc3339("2022-04-06T09:01:20.123+02:00").unwrap(), t);
        for bad in [
            "2022-04-06 07:01:20Z",
            "2022-04-06T07:01:20",
            "2022-13-06T07:01:20Z",
            "2022-04-06T07:01:20+7:00",
            "2022-04-06T07:01:20.Z",
            "１９７０-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
