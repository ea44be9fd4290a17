//! Content trust for Bulwark.
//!
//! This crate owns the formats and the cryptography of image signatures, independent of the
//! registry server:
//!
//! - [`simple_signing`]: the cosign "simple signing" payload — build and strict parse;
//! - [`keys`]: cosign-compatible keys — PEM public keys (ECDSA P-256, Ed25519), PKCS#8 and
//!   cosign's encrypted private keys (scrypt + NaCl secretbox), key generation, key ids;
//! - [`cosign`]: signing, verification with a typed [`cosign::Verdict`] or a typed
//!   [`cosign::VerifyError`], and the signature artifacts (tag-scheme `sha256-<hex>.sig`
//!   manifests and OCI 1.1 referrers) — built and read back;
//! - [`notation`]: Notary Project (Notation) signatures — JWS and COSE envelopes, verification
//!   against an X.509 [`notation::TrustStore`] with a typed [`notation::NotationError`],
//!   signing, and Notation's OCI 1.1 signature manifests;
//! - `client` (feature `client`): a small OCI distribution client with Basic and Docker
//!   token authentication, used by `bulwark sign` / `bulwark verify`;
//! - [`policy`]: per-project trust policy documents, validated and compiled;
//! - [`enforce`]: the pull enforcer — decisions per (repository, digest, policy version),
//!   cached, recorded for audit — over a registry and a store reached through traits.
//!
//! The server wires the enforcer to the registry and the metadata store. Nothing here
//! panics on hostile input: every parser bounds its input and returns an error.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(feature = "client")]
pub mod client;
pub mod cosign;
pub mod enforce;
pub mod keys;
pub mod notation;
pub mod policy;
pub mod simple_signing;

pub use cosign::{SignedPayload, Verdict, VerifyError};
pub use keys::{KeyAlgorithm, KeyError, PrivateKey, PublicKey};
pub use simple_signing::{PayloadError, SimpleSigning};
