//! Signing keys in the formats cosign reads and writes.
//!
//! - Public keys: PEM `PUBLIC KEY` (SubjectPublicKeyInfo) holding ECDSA P-256 or Ed25519.
//! - Private keys: PEM `PRIVATE KEY` (unencrypted PKCS#8), or cosign's encrypted PEM
//!   (`ENCRYPTED SIGSTORE PRIVATE KEY`, older files `ENCRYPTED COSIGN PRIVATE KEY`) whose body
//!   is JSON `{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":
//!   "nacl/secretbox","nonce"},"ciphertext"}`: the PKCS#8 DER sealed with NaCl secretbox under
//!   a key derived from the password by scrypt.
//!
//! Scrypt parameters come from the file, so they are bounded before any work is done.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use p256::pkcs8::PrivateKeyInfo;
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// PEM label of cosign's encrypted private keys (cosign ≥ 1.x writes this one).
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label older cosign releases wrote; still read.
pub const LEGACY_COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// PEM label of a public key (SubjectPublicKeyInfo).
pub const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
/// PEM label of an unencrypted PKCS#8 private key.
pub const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// File names `cosign generate-key-pair` uses.
pub const PRIVATE_KEY_FILE: &str = "cosign.key";
pub const PUBLIC_KEY_FILE: &str = "cosign.pub";

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

// cosign's scrypt parameters (N = 2^15, r = 8, p = 1).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
// Bounds for parameters read from a file: at most 512 MiB of scrypt memory.
const MAX_SCRYPT_LOG_N: u32 = 20;
const MAX_SCRYPT_MEMORY: u64 = 512 * 1024 * 1024;
const MAX_SCRYPT_P: u32 = 16;
const MAX_KEY_FILE_BYTES: usize = 64 * 1024;

/// Why a key could not be read, decrypted or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM document: {0}")]
    Pem(String),
    #[error("unexpected PEM label {0:?}")]
    UnexpectedLabel(String),
    #[error("malformed key: {0}")]
    Malformed(String),
    #[error("unsupported key algorithm: {0}")]
    Unsupported(String),
    #[error("malformed encrypted key: {0}")]
    MalformedEncrypted(String),
    #[error("unsupported key encryption: {0}")]
    UnsupportedEncryption(String),
    #[error("wrong password for the encrypted key (or the key file was altered)")]
    WrongPassword,
    #[error("a password is needed to decrypt this key")]
    PasswordRequired,
    #[error("key file is larger than {MAX_KEY_FILE_BYTES} bytes")]
    TooLarge,
    #[error("random number generator failed: {0}")]
    Random(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The signature algorithms supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256, ASN.1 DER signatures (cosign's default).
    EcdsaP256,
    /// Ed25519 (pure), 64-byte signatures.
    Ed25519,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256-sha256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(text)?;
        if label != PUBLIC_KEY_LABEL {
            return Err(KeyError::UnexpectedLabel(label));
        }
        Self::from_der(&der)
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let oid = spki.algorithm.oid;
        if oid == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|e| KeyError::Malformed(e.to_string()))?;
            if curve != OID_P256 {
                return Err(KeyError::Unsupported(format!("elliptic curve {curve}")));
            }
            p256::ecdsa::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::EcdsaP256)
                .map_err(|e| KeyError::Malformed(e.to_string()))
        } else if oid == OID_ED25519 {
            ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::Ed25519)
                .map_err(|e| KeyError::Malformed(e.to_string()))
        } else {
            Err(KeyError::Unsupported(format!("algorithm {oid}")))
        }
    }

    /// Reads a public key file.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read_key_file(path)?)
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PublicKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            PublicKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_der(&self) -> Result<Vec<u8>, KeyError> {
        let doc = match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_der(),
            PublicKey::Ed25519(k) => k.to_public_key_der(),
        }
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// PEM `PUBLIC KEY`, as `cosign.pub` holds it.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        pem::encode_string(PUBLIC_KEY_LABEL, LineEnding::LF, &self.to_der()?)
            .map_err(|e| KeyError::Malformed(e.to_string()))
    }

    /// The key's identifier: `sha256:<hex>` of its DER SubjectPublicKeyInfo.
    pub fn key_id(&self) -> Result<String, KeyError> {
        Ok(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(self.to_der()?))
        ))
    }
}

/// A signing key.
#[derive(Clone)]
pub enum PrivateKey {
    EcdsaP256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm())
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                // A random 32-byte string is a valid scalar except with negligible
                // probability (zero or ≥ n); draw again in that case.
                for _ in 0..64 {
                    let bytes = random_array::<32>()?;
                    if let Ok(key) = p256::ecdsa::SigningKey::from_bytes(&(*bytes).into()) {
                        return Ok(PrivateKey::EcdsaP256(key));
                    }
                }
                Err(KeyError::Random("no valid P-256 scalar drawn".to_owned()))
            }
            KeyAlgorithm::Ed25519 => {
                let seed = random_array::<32>()?;
                Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                    &seed,
                )))
            }
        }
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PrivateKey::EcdsaP256(_) => KeyAlgorithm::EcdsaP256,
            PrivateKey::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// Reads a DER PKCS#8 `PrivateKeyInfo` (P-256 or Ed25519).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = PrivateKeyInfo::try_from(der).map_err(|e| KeyError::Malformed(e.to_string()))?;
        let oid = info.algorithm.oid;
        if oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|e| KeyError::Malformed(e.to_string()))?;
            if curve != OID_P256 {
                return Err(KeyError::Unsupported(format!("elliptic curve {curve}")));
            }
            p256::ecdsa::SigningKey::from_pkcs8_der(der)
                .map(PrivateKey::EcdsaP256)
                .map_err(|e| KeyError::Malformed(e.to_string()))
        } else if oid == OID_ED25519 {
            ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map(PrivateKey::Ed25519)
                .map_err(|e| KeyError::Malformed(e.to_string()))
        } else {
            Err(KeyError::Unsupported(format!("algorithm {oid}")))
        }
    }

    /// The DER PKCS#8 encoding (secret material; zeroed on drop).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match self {
            PrivateKey::EcdsaP256(k) => k.to_pkcs8_der(),
            PrivateKey::Ed25519(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Reads a private key PEM: unencrypted PKCS#8 (`PRIVATE KEY`, `password` ignored) or
    /// cosign's encrypted format (needs `password`; cosign allows an empty one).
    pub fn from_pem(text: &str, password: Option<&[u8]>) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(text)?;
        let der = Zeroizing::new(der);
        match label.as_str() {
            PRIVATE_KEY_LABEL => Self::from_pkcs8_der(&der),
            SIGSTORE_PRIVATE_KEY_LABEL | LEGACY_COSIGN_PRIVATE_KEY_LABEL => {
                let password = password.ok_or(KeyError::PasswordRequired)?;
                let pkcs8 = decrypt_cosign(&der, password)?;
                Self::from_pkcs8_der(&pkcs8)
            }
            _ => Err(KeyError::UnexpectedLabel(label)),
        }
    }

    /// Reads a private key file (see [`PrivateKey::from_pem`]).
    pub fn from_file(path: &Path, password: Option<&[u8]>) -> Result<Self, KeyError> {
        Self::from_pem(&read_key_file(path)?, password)
    }

    /// Unencrypted PKCS#8 PEM (`PRIVATE KEY`).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.to_pkcs8_der()?;
        pem::encode_string(PRIVATE_KEY_LABEL, LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|e| KeyError::Malformed(e.to_string()))
    }

    /// cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`), sealed under `password`
    /// with cosign's scrypt parameters.
    pub fn to_cosign_pem(&self, password: &[u8]) -> Result<String, KeyError> {
        self.to_cosign_pem_with(password, SCRYPT_LOG_N)
    }

    fn to_cosign_pem_with(&self, password: &[u8], log_n: u8) -> Result<String, KeyError> {
        let pkcs8 = self.to_pkcs8_der()?;
        let salt = random_array::<32>()?;
        let nonce = random_array::<24>()?;
        let key = derive_key(password, &salt[..], log_n, SCRYPT_R, SCRYPT_P)?;
        let cipher = XSalsa20Poly1305::new(&(*key).into());
        let ciphertext = cipher
            .encrypt(&(*nonce).into(), pkcs8.as_slice())
            .map_err(|_| KeyError::MalformedEncrypted("sealing failed".to_owned()))?;
        let envelope = Envelope {
            kdf: Kdf {
                name: "scrypt".to_owned(),
                params: ScryptParams {
                    n: 1u64 << log_n,
                    r: SCRYPT_R,
                    p: SCRYPT_P,
                },
                salt: B64.encode(&salt[..]),
            },
            cipher: Cipher {
                name: "nacl/secretbox".to_owned(),
                nonce: B64.encode(&nonce[..]),
            },
            ciphertext: B64.encode(&ciphertext),
        };
        let json = serde_json::to_vec(&envelope)
            .map_err(|e| KeyError::MalformedEncrypted(e.to_string()))?;
        pem::encode_string(SIGSTORE_PRIVATE_KEY_LABEL, LineEnding::LF, &json)
            .map_err(|e| KeyError::Malformed(e.to_string()))
    }

    /// Testing aid: [`PrivateKey::to_cosign_pem`] with a cheaper scrypt cost (`2^log_n`),
    /// still readable by cosign and by [`PrivateKey::from_pem`].
    #[doc(hidden)]
    pub fn to_cosign_pem_with_cost(&self, password: &[u8], log_n: u8) -> Result<String, KeyError> {
        self.to_cosign_pem_with(password, log_n)
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn decrypt_cosign(json: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let env: Envelope =
        serde_json::from_slice(json).map_err(|e| KeyError::MalformedEncrypted(e.to_string()))?;
    if env.kdf.name != "scrypt" {
        return Err(KeyError::UnsupportedEncryption(format!(
            "key derivation {:?}",
            env.kdf.name
        )));
    }
    if env.cipher.name != "nacl/secretbox" {
        return Err(KeyError::UnsupportedEncryption(format!(
            "cipher {:?}",
            env.cipher.name
        )));
    }
    let ScryptParams { n, r, p } = env.kdf.params;
    if n < 2 || !n.is_power_of_two() || n.trailing_zeros() > MAX_SCRYPT_LOG_N {
        return Err(KeyError::MalformedEncrypted(format!(
            "scrypt N={n} out of range"
        )));
    }
    if r == 0 || p == 0 || p > MAX_SCRYPT_P || 128 * u64::from(r) * n > MAX_SCRYPT_MEMORY {
        return Err(KeyError::MalformedEncrypted(format!(
            "scrypt parameters N={n} r={r} p={p} out of range"
        )));
    }
    let salt = decode_b64(&env.kdf.salt, "salt")?;
    let nonce = decode_b64(&env.cipher.nonce, "nonce")?;
    let ciphertext = decode_b64(&env.ciphertext, "ciphertext")?;
    let nonce: [u8; 24] = nonce
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::MalformedEncrypted("nonce must be 24 bytes".to_owned()))?;
    let log_n = u8::try_from(n.trailing_zeros())
        .map_err(|_| KeyError::MalformedEncrypted("scrypt N out of range".to_owned()))?;
    let key = derive_key(password, &salt, log_n, r, p)?;
    let cipher = XSalsa20Poly1305::new(&(*key).into());
    cipher
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::WrongPassword)
}

fn derive_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| KeyError::MalformedEncrypted(format!("scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, &mut key[..])
        .map_err(|e| KeyError::MalformedEncrypted(format!("scrypt: {e}")))?;
    Ok(key)
}

fn decode_b64(value: &str, what: &str) -> Result<Vec<u8>, KeyError> {
    B64.decode(value)
        .map_err(|e| KeyError::MalformedEncrypted(format!("{what}: {e}")))
}

/// Reads one PEM block: the label and the decoded body. Lenient about line length, CRLF and
/// surrounding text (as Go's decoder, which wrote most cosign keys, is); strict about the
/// END label matching and the base64.
fn decode_pem(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    if text.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge);
    }
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| KeyError::Pem("no BEGIN line".to_owned()))?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| KeyError::Pem("unterminated BEGIN line".to_owned()))?;
    if label.is_empty() || label.contains(['\r', '\n']) {
        return Err(KeyError::Pem("malformed BEGIN line".to_owned()));
    }
    let end_line = format!("-----END {label}-----");
    let (body, _) = rest
        .split_once(&end_line)
        .ok_or_else(|| KeyError::Pem(format!("no END line for {label:?}")))?;
    if body.contains(':') {
        return Err(KeyError::Pem("PEM headers are not supported".to_owned()));
    }
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = B64
        .decode(compact.as_bytes())
        .map_err(|e| KeyError::Pem(format!("body is not base64: {e}")))?;
    if der.is_empty() {
        return Err(KeyError::Pem("empty body".to_owned()));
    }
    Ok((label.to_owned(), der))
}

fn read_key_file(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_KEY_FILE_BYTES as u64 {
        return Err(KeyError::TooLarge);
    }
    std::fs::read_to_string(path).map_err(io)
}

fn random_array<const N: usize>() -> Result<Zeroizing<[u8; N]>, KeyError> {
    let mut out = Zeroizing::new([0u8; N]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut out[..])
        .map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(out)
}

/// The files [`generate_key_pair`] wrote.
#[derive(Debug, Clone)]
pub struct GeneratedKeyPair {
    pub private_key_path: PathBuf,
    pub public_key_path: PathBuf,
    pub public_key: PublicKey,
}

/// Generates a key pair and writes `cosign.key` (encrypted under `password`, mode 0600 on
/// Unix) and `cosign.pub` into `dir`. Refuses to overwrite an existing `cosign.key`.
pub fn generate_key_pair(
    dir: &Path,
    password: &[u8],
    algorithm: KeyAlgorithm,
) -> Result<GeneratedKeyPair, KeyError> {
    let key = PrivateKey::generate(algorithm)?;
    let private_pem = key.to_cosign_pem(password)?;
    let public_key = key.public_key();
    let public_pem = public_key.to_pem()?;
    let private_key_path = dir.join(PRIVATE_KEY_FILE);
    let public_key_path = dir.join(PUBLIC_KEY_FILE);
    std::fs::create_dir_all(dir).map_err(|source| KeyError::Io {
        path: dir.to_owned(),
        source,
    })?;
    write_new(&private_key_path, private_pem.as_bytes(), true)?;
    write_new(&public_key_path, public_pem.as_bytes(), false)?;
    Ok(GeneratedKeyPair {
        private_key_path,
        public_key_path,
        public_key,
    })
}

fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), KeyError> {
    use std::io::Write as _;
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if secret {
        options.create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
    } else {
        options.create(true).truncate(true);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}
