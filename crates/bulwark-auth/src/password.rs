//! Passwords, random secrets and API tokens.
//!
//! - User passwords are hashed with argon2id (OWASP parameters: m = 7168 KiB, t = 5, p = 1) into a
//!   PHC string (`$argon2id$v=19$m=7168,t=5,p=1$<salt>$<hash>`), which is what the metadata store
//!   keeps. Verification uses the parameters recorded in the PHC string, so hashes made with older
//!   parameters keep working; [`needs_rehash`] tells the caller when to re-hash after a successful
//!   login. argon2 compares the derived hash in constant time.
//! - [`generate_secret`] draws bytes from the operating system's CSPRNG and encodes them as
//!   URL-safe base64 without padding; it is used for robot secrets and token ids.
//! - API tokens ([`ApiToken`]) look like `bwk_<id>_<secret>`: `<id>` is 16 lowercase hex characters
//!   (64 random bits, public, the database lookup key) and `<secret>` is 43 URL-safe base64
//!   characters (256 random bits). Because the secret is high-entropy, the store keeps only its
//!   SHA-256 ([`SecretHash`]) — a slow password hash adds nothing against guessing 2^256 values —
//!   and comparison is constant-time via [`subtle::ConstantTimeEq`]. The hash covers the whole
//!   token string, so an id cannot be paired with another token's secret.
//! - Secrets travel in [`Secret`], whose `Debug` prints `***` and which has no `Display` or
//!   `Serialize`: reading one requires the explicit, greppable [`Secret::expose`].

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// OWASP Password Storage Cheat Sheet: argon2id with 7 MiB of memory, 5 iterations and 1 lane,
/// one of its settings of equal strength (with 19 MiB × 2 and 12 MiB × 3, …). The least memory
/// of them, and about the same CPU: every concurrent login costs the server this much memory,
/// and CI systems log in in bursts. Hashes made with the earlier 19 MiB × 2 keep verifying and
/// are replaced at the next login ([`needs_rehash`]).
pub const ARGON2_M_COST_KIB: u32 = 7_168;
/// Argon2 iterations.
pub const ARGON2_T_COST: u32 = 5;
/// Argon2 parallelism.
pub const ARGON2_P_COST: u32 = 1;
/// Longest password accepted. Argon2 pre-hashes its input, so this only bounds request sizes.
pub const MAX_PASSWORD_LEN: usize = 4096;
/// Fewest random bytes [`generate_secret`] accepts (128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// Most random bytes [`generate_secret`] accepts.
pub const MAX_SECRET_BYTES: usize = 1024;

const SALT_BYTES: usize = 16;
const TOKEN_ID_BYTES: usize = 8;
const TOKEN_SECRET_BYTES: usize = 32;
/// 32 bytes in unpadded base64.
const TOKEN_SECRET_CHARS: usize = 43;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must not be empty")]
    Empty,
    #[error("password longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    #[error("stored password hash is not a valid PHC string")]
    InvalidHash,
    #[error("secret length must be between {MIN_SECRET_BYTES} and {MAX_SECRET_BYTES} bytes")]
    SecretLength,
    #[error("malformed API token")]
    MalformedToken,
    #[error("malformed secret hash")]
    MalformedHash,
    #[error("the operating system's random number generator failed")]
    Randomness,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// A secret string (password, token, private key PEM). `Debug` prints `***`; there is no
/// `Display`, `Serialize` or `PartialEq`, so it cannot end up in logs or be compared in variable
/// time by accident.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret text. Call sites are the places where the secret leaves this wrapper.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time equality with a presented value (length is not hidden).
    pub fn ct_eq(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// Fill `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), PasswordError> {
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(|_| PasswordError::Randomness)
}

fn argon2() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash a password with argon2id and a fresh 128-bit salt; returns the PHC string.
///
/// Takes tens of milliseconds of CPU: async callers should run it on a blocking thread.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; SALT_BYTES];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Ok(hash.to_string())
}

/// Check a password against a stored PHC string. `Ok(false)` for a wrong password; `Err` only
/// when the stored hash itself is unusable. The comparison is argon2's constant-time one.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let hash = PasswordHash::new(phc).map_err(|_| PasswordError::InvalidHash)?;
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Ok(false);
    }
    match Argon2::default().verify_password(password.as_bytes(), &hash) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(_) => Err(PasswordError::InvalidHash),
    }
}

/// Whether a stored hash was made with other parameters than the current ones (or is not a
/// parseable argon2id hash), so it should be replaced after the next successful login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(Version::V0x13.into())
    {
        return true;
    }
    match Params::try_from(&hash) {
        Ok(p) => {
            p.m_cost() != ARGON2_M_COST_KIB
                || p.t_cost() != ARGON2_T_COST
                || p.p_cost() != ARGON2_P_COST
        }
        Err(_) => true,
    }
}

/// `bytes` random bytes from the OS, as URL-safe base64 without padding (for robot secrets and
/// other bearer credentials). `bytes` must be between 16 and 1024.
pub fn generate_secret(bytes: usize) -> Result<Secret, PasswordError> {
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes) {
        return Err(PasswordError::SecretLength);
    }
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf)?;
    Ok(Secret(URL_SAFE_NO_PAD.encode(&buf)))
}

/// SHA-256 of a high-entropy secret, as stored by the metadata store (hex via [`Self::to_hex`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hash a secret.
    pub fn of(secret: &str) -> Self {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    /// Constant-time check of a presented secret against this hash.
    pub fn verify(&self, presented: &str) -> bool {
        let other = Sha256::digest(presented.as_bytes());
        self.0.ct_eq(other.as_slice()).into()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, PasswordError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| PasswordError::MalformedHash)?;
        Ok(SecretHash(out))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secret, but there is no reason to print it either.
        f.write_str("SecretHash(..)")
    }
}

/// A freshly generated API token: show `token` to the user once, store `id` and `hash`.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: String,
    pub token: Secret,
    pub hash: SecretHash,
}

/// A presented API token, `bwk_<id>_<secret>`, parsed but not yet checked.
#[derive(Debug, Clone)]
pub struct ApiToken {
    id: String,
    full: Secret,
}

impl ApiToken {
    pub const PREFIX: &'static str = "bwk_";

    /// Generate a new token with a random id and a 256-bit secret.
    pub fn generate() -> Result<NewApiToken, PasswordError> {
        let mut id = [0u8; TOKEN_ID_BYTES];
        fill_random(&mut id)?;
        let id = hex::encode(id);
        let mut secret = [0u8; TOKEN_SECRET_BYTES];
        fill_random(&mut secret)?;
        let token = format!("{}{id}_{}", Self::PREFIX, URL_SAFE_NO_PAD.encode(secret));
        let hash = SecretHash::of(&token);
        Ok(NewApiToken {
            id,
            token: Secret(token),
            hash,
        })
    }

    /// Whether a credential has the API token shape (so a Basic-auth password can be routed to
    /// token lookup instead of password verification).
    pub fn looks_like(s: &str) -> bool {
        Self::parse(s).is_ok()
    }

    /// Parse a presented token. Only the shape is checked; use [`Self::matches`] against the
    /// hash stored for [`Self::id`].
    pub fn parse(presented: &str) -> Result<Self, PasswordError> {
        let rest = presented
            .strip_prefix(Self::PREFIX)
            .ok_or(PasswordError::MalformedToken)?;
        let id_len = TOKEN_ID_BYTES * 2;
        let (id, rest) = rest
            .split_at_checked(id_len)
            .ok_or(PasswordError::MalformedToken)?;
        let secret = rest
            .strip_prefix('_')
            .ok_or(PasswordError::MalformedToken)?;
        let id_ok = id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let secret_ok = secret.len() == TOKEN_SECRET_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok || !secret_ok {
            return Err(PasswordError::MalformedToken);
        }
        Ok(ApiToken {
            id: id.to_owned(),
            full: Secret(presented.to_owned()),
        })
    }

    /// The public id, the metadata store's lookup key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Constant-time check against the hash stored for this token's id.
    pub fn matches(&self, stored: &SecretHash) -> bool {
        stored.verify(self.full.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc).unwrap());
        assert!(!verify_password("correct horse battery stapl", &phc).unwrap());
        assert!(!verify_password("", &phc).unwrap());
        assert!(!needs_rehash(&phc));
        // Fresh salt every time.
        assert_ne!(phc, hash_password("correct horse battery staple").unwrap());
    }

    #[test]
    fn hash_rejects_empty_and_huge() {
        assert_eq!(hash_password(""), Err(PasswordError::Empty));
        let huge = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert_eq!(hash_password(&huge), Err(PasswordError::TooLong));
    }

    #[test]
    fn verify_rejects_garbage_hash() {
        assert_eq!(
            verify_password("pw", "not a hash"),
            Err(PasswordError::InvalidHash)
        );
        assert_eq!(verify_password("pw", ""), Err(PasswordError::InvalidHash));
    }

    #[test]
    fn hashes_of_the_earlier_owasp_setting_verify_and_get_replaced() {
        let params = Params::new(19_456, 2, 1, None).unwrap();
        let before = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = before.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("pw", &phc).unwrap());
        assert!(!verify_password("pW", &phc).unwrap());
        assert!(needs_rehash(&phc));
    }

    #[test]
    fn older_parameters_still_verify_but_need_rehash() {
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = weak.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_password("pw", &phc).unwrap());
        assert!(!verify_password("pW", &phc).unwrap());
        assert!(needs_rehash(&phc));

        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default());
        let phc = argon2i.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(needs_rehash(&phc));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn secrets() {
        let s = generate_secret(32).unwrap();
        assert_eq!(s.expose().len(), 43);
        assert!(
            s.expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(!generate_secret(32).unwrap().ct_eq(s.expose()));
        assert!(s.ct_eq(s.expose()));
        assert_eq!(generate_secret(15).err(), Some(PasswordError::SecretLength));
        assert_eq!(
            generate_secret(1025).err(),
            Some(PasswordError::SecretLength)
        );
        assert_eq!(generate_secret(16).unwrap().expose().len(), 22);
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        let t = ApiToken::generate().unwrap();
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(t.token.expose()), "{dbg}");
        let parsed = ApiToken::parse(t.token.expose()).unwrap();
        assert!(!format!("{parsed:?}").contains(t.token.expose()));
    }

    #[test]
    fn api_token_round_trip() {
        let t = ApiToken::generate().unwrap();
        let token = t.token.expose();
        assert!(token.starts_with("bwk_"));
        assert_eq!(token.len(), 4 + 16 + 1 + 43);
        let parsed = ApiToken::parse(token).unwrap();
        assert_eq!(parsed.id(), t.id);
        assert!(parsed.matches(&t.hash));
        assert!(ApiToken::looks_like(token));

        // Stored form round-trips.
        let stored = SecretHash::from_hex(&t.hash.to_hex()).unwrap();
        assert_eq!(stored, t.hash);
        assert!(parsed.matches(&stored));

        // Another token with the same shape does not match.
        let other = ApiToken::generate().unwrap();
        assert!(
            !ApiToken::parse(other.token.expose())
                .unwrap()
                .matches(&t.hash)
        );

        // Swapping the id onto another secret does not match either.
        let forged = format!("bwk_{}_{}", t.id, &other.token.expose()[21..]);
        assert!(!ApiToken::parse(&forged).unwrap().matches(&t.hash));
    }

    #[test]
    fn api_token_parse_rejects_bad_shapes() {
        let good = ApiToken::generate().unwrap().token.expose().to_owned();
        let mut bad = vec![
            String::new(),
            "bwk_".into(),
            good.replacen("bwk_", "bwx_", 1),
            good[..good.len() - 1].to_owned(),
            format!("{good}A"),
            good.replacen('_', "-", 2),
            format!("bwk_{}_{}", "G".repeat(16), "a".repeat(43)),
            format!("bwk_{}_{}", "A".repeat(16), "a".repeat(43)),
            format!("bwk_{}_{}", "a".repeat(16), "a=".repeat(21) + "a"),
            format!("bwk_{}_{}", "a".repeat(15), "a".repeat(44)),
            "bwk_é".into(),
        ];
        bad.push(format!("bwk_{}-{}", "a".repeat(16), "a".repeat(43)));
        for b in &bad {
            assert_eq!(
                ApiToken::parse(b).err(),
                Some(PasswordError::MalformedToken),
                "{b}"
            );
        }
        assert!(
            ApiToken::parse(&format!("bwk_{}_{}", "0a".repeat(8), "_-".repeat(21) + "z")).is_ok()
        );
    }

    #[test]
    fn secret_hash_hex() {
        let h = SecretHash::of("abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(h.verify("abc"));
        assert!(!h.verify("abd"));
        assert_eq!(
            SecretHash::from_hex("zz").err(),
            Some(PasswordError::MalformedHash)
        );
        assert_eq!(
            SecretHash::from_hex(&"a".repeat(62)).err(),
            Some(PasswordError::MalformedHash)
        );
        assert_eq!(format!("{h:?}"), "SecretHash(..)");
    }
}
