//! The Docker registry token service: ES256-signed JWT access tokens and refresh tokens.
//!
//! # Keys
//!
//! A [`TokenIssuer`] signs with one active P-256 [`SigningKey`] and verifies with it plus any
//! retired keys ([`RetiredKey`]). [`TokenIssuer::rotate`] retires the active key with
//! `valid_until = now + max(max access TTL, max refresh TTL) + leeway`: every token the old key
//! signed expires by then (TTLs are capped at issue time), so rotation never invalidates a live
//! token, and [`TokenIssuer::prune`] drops keys past that instant. Keys persist as PKCS#8 PEM
//! (private) and SubjectPublicKeyInfo PEM (public) so the server can store them.
//!
//! The key id (`kid` header) is derived from the public key the way Docker's libtrust does it:
//! SHA-256 of the DER SubjectPublicKeyInfo, truncated to 240 bits, base32 (RFC 4648, upper
//! case, no padding), in twelve colon-separated groups of four, e.g.
//! `ABCD:EFGH:…:WXYZ`. It is stable across PEM round trips and matches what registries built
//! on docker/distribution compute for the same key.
//!
//! # Access tokens
//!
//! Header `{"alg":"ES256","typ":"JWT","kid":…}`; claims `iss`, `sub` (empty for anonymous),
//! `aud` (the service), `exp`, `nbf`, `iat`, `jti` (128 random bits) and `access` (the
//! [`ResourceActions`] granted). [`TokenIssuer::verify`] checks, in order: size, `alg` is ES256,
//! `typ` is `JWT`, the `kid` names a known, unexpired key, the signature, `iss`, `aud`, then
//! `nbf`/`exp` against the caller's `now` with a leeway (default 30 s). jsonwebtoken's own clock
//! is never consulted.
//!
//! # Refresh tokens
//!
//! For the OAuth2 flow (`grant_type=refresh_token`): header `typ` is `refresh+jwt`, the
//! audience is the issuer itself and the payload carries `"token_use":"refresh"` instead of
//! `access`. Each check rejects the other kind: an access token is not accepted as a refresh
//! token, nor the reverse, even though both are signed by the same keys. Refresh tokens are
//! stateless; the server can deny-list a `jti` if it needs revocation.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use bulwark_oci::RepoName;

use crate::password::{Secret, fill_random};
use crate::policy::{Capability, Denied, check};
use crate::scope::{Action, ActionSet, ResourceActions};

/// Leeway applied to `exp` and `nbf`, for clock skew between replicas.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Longest access-token lifetime [`TokenIssuer::issue`] grants.
pub const DEFAULT_MAX_ACCESS_TTL_SECS: u64 = 60 * 60;
/// Longest refresh-token lifetime [`TokenIssuer::issue_refresh`] grants.
pub const DEFAULT_MAX_REFRESH_TTL_SECS: u64 = 30 * 24 * 60 * 60;
/// Tokens longer than this are rejected before any parsing.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

const ACCESS_TYP: &str = "JWT";
const REFRESH_TYP: &str = "refresh+jwt";
const REFRESH_USE: &str = "refresh";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported token algorithm")]
    Algorithm,
    #[error("wrong token type")]
    WrongType,
    #[error("token signed by an unknown or retired key")]
    UnknownKey,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued by another issuer")]
    WrongIssuer,
    #[error("token intended for another audience")]
    WrongAudience,
    #[error("key error: {0}")]
    Key(String),
    #[error("the operating system's random number generator failed")]
    Randomness,
}

fn key_err(e: impl fmt::Display) -> TokenError {
    TokenError::Key(e.to_string())
}

fn random_id() -> Result<String, TokenError> {
    let mut b = [0u8; 16];
    fill_random(&mut b).map_err(|_| TokenError::Randomness)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// libtrust-style key id of a DER SubjectPublicKeyInfo.
fn key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let bytes = &digest[..30];
    let mut chars = Vec::with_capacity(48);
    for chunk in bytes.chunks(5) {
        let mut buf = 0u64;
        for &b in chunk {
            buf = (buf << 8) | u64::from(b);
        }
        for i in (0..8).rev() {
            // Every chunk is 5 bytes, so it yields exactly 8 five-bit symbols.
            let idx = ((buf >> (i * 5)) & 31) as usize;
            chars.push(BASE32[idx]);
        }
    }
    chars
        .chunks(4)
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// A P-256 public key that verifies tokens.
#[derive(Clone)]
pub struct VerifyingKey {
    public: p256::PublicKey,
    kid: String,
    decoding: DecodingKey,
}

impl VerifyingKey {
    fn from_public(public: p256::PublicKey) -> Result<Self, TokenError> {
        let spki = public.to_public_key_der().map_err(key_err)?;
        let kid = key_id(spki.as_bytes());
        let (x, y) = coordinates(&public)?;
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(key_err)?;
        Ok(VerifyingKey {
            public,
            kid,
            decoding,
        })
    }

    /// Import a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_public_key_pem(pem: &str) -> Result<Self, TokenError> {
        let public = p256::PublicKey::from_public_key_pem(pem).map_err(key_err)?;
        Self::from_public(public)
    }

    pub fn to_public_key_pem(&self) -> Result<String, TokenError> {
        self.public
            .to_public_key_pem(LineEnding::LF)
            .map_err(key_err)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key as a JWK (for a JWKS document).
    pub fn jwk(&self) -> Result<serde_json::Value, TokenError> {
        let (x, y) = coordinates(&self.public)?;
        Ok(serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "alg": "ES256",
            "use": "sig",
            "kid": self.kid,
            "x": x,
            "y": y,
        }))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.kid)
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}

fn coordinates(public: &p256::PublicKey) -> Result<(String, String), TokenError> {
    let point = public.to_encoded_point(false);
    match (point.x(), point.y()) {
        (Some(x), Some(y)) => Ok((URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))),
        _ => Err(TokenError::Key("public key is the identity point".into())),
    }
}

/// A P-256 private key that signs tokens. `Debug` shows only the key id.
#[derive(Clone)]
pub struct SigningKey {
    secret: p256::SecretKey,
    encoding: EncodingKey,
    verifying: VerifyingKey,
}

impl SigningKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, TokenError> {
        // A random 256-bit string is a valid scalar unless it is zero or >= the group order,
        // which happens with probability below 2^-32; retry a few times regardless.
        for _ in 0..8 {
            let mut bytes = [0u8; 32];
            fill_random(&mut bytes).map_err(|_| TokenError::Randomness)?;
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                return Self::from_secret(secret);
            }
        }
        Err(TokenError::Key(
            "could not generate a valid P-256 scalar".into(),
        ))
    }

    fn from_secret(secret: p256::SecretKey) -> Result<Self, TokenError> {
        let der = secret.to_pkcs8_der().map_err(key_err)?;
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let verifying = VerifyingKey::from_public(secret.public_key())?;
        Ok(SigningKey {
            secret,
            encoding,
            verifying,
        })
    }

    /// Import a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, TokenError> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem).map_err(key_err)?;
        Self::from_secret(secret)
    }

    /// Export as PKCS#8 PEM, for the server to persist (with restrictive file permissions).
    pub fn to_pkcs8_pem(&self) -> Result<Secret, TokenError> {
        let pem = self.secret.to_pkcs8_pem(LineEnding::LF).map_err(key_err)?;
        Ok(Secret::new(pem.as_str()))
    }

    pub fn kid(&self) -> &str {
        self.verifying.kid()
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.kid())
    }
}

/// A no-longer-active key that still verifies tokens until `valid_until` (seconds since the
/// epoch). Persist it alongside the active key.
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredKey {
    pub key: VerifyingKey,
    pub valid_until: i64,
}

/// An issued access token, serialised as the token endpoint's response body:
/// `{"token":…,"access_token":…,"expires_in":…,"issued_at":…}`.
#[derive(Debug, Clone)]
pub struct Token {
    pub token: Secret,
    /// Seconds.
    pub expires_in: u64,
    /// RFC 3339, UTC.
    pub issued_at: String,
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("Token", 4)?;
        st.serialize_field("token", self.token.expose())?;
        st.serialize_field("access_token", self.token.expose())?;
        st.serialize_field("expires_in", &self.expires_in)?;
        st.serialize_field("issued_at", &self.issued_at)?;
        st.end()
    }
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub token: Secret,
    /// Seconds.
    pub expires_in: u64,
}

#[derive(Serialize, Deserialize)]
struct AccessPayload {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    access: Vec<ResourceActions>,
}

#[derive(Serialize, Deserialize)]
struct RefreshPayload {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    token_use: String,
}

/// The claims of a verified access token. Only [`TokenIssuer::verify`] produces one, so
/// [`Claims::capability`] can mint [`Capability`] handles.
/// `#[non_exhaustive]` keeps other crates from building one with a struct literal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<ResourceActions>,
}

impl Claims {
    /// A capability for `required` on `repo` if the token grants all of it. Entries match by
    /// type `repository` and exact name; a repository class is ignored.
    pub fn capability(&self, repo: &RepoName, required: &[Action]) -> Result<Capability, Denied> {
        let granted = self
            .access
            .iter()
            .filter(|e| e.resource_type == "repository" && e.name == repo.as_str())
            .fold(ActionSet::EMPTY, |acc, e| {
                acc.union(ActionSet::of(&e.actions))
            });
        check(granted, repo, required)
    }

    /// Whether the token grants `registry:catalog:*`.
    pub fn allows_catalog(&self) -> bool {
        self.access.iter().any(|e| {
            e.resource_type == "registry" && e.name == "catalog" && e.actions.contains(&Action::All)
        })
    }
}

/// The claims of a verified refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
}

/// Issues and verifies tokens for one issuer name.
#[derive(Clone)]
pub struct TokenIssuer {
    issuer: String,
    active: SigningKey,
    retired: Vec<RetiredKey>,
    leeway: u64,
    max_access_ttl: u64,
    max_refresh_ttl: u64,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("active", &self.active)
            .field("retired", &self.retired)
            .field("leeway", &self.leeway)
            .field("max_access_ttl", &self.max_access_ttl)
            .field("max_refresh_ttl", &self.max_refresh_ttl)
            .finish()
    }
}

fn secs_i64(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl TokenIssuer {
    pub fn new(issuer: impl Into<String>, key: SigningKey) -> Self {
        TokenIssuer {
            issuer: issuer.into(),
            active: key,
            retired: Vec::new(),
            leeway: DEFAULT_LEEWAY_SECS,
            max_access_ttl: DEFAULT_MAX_ACCESS_TTL_SECS,
            max_refresh_ttl: DEFAULT_MAX_REFRESH_TTL_SECS,
        }
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    pub fn with_max_access_ttl(mut self, ttl: Duration) -> Self {
        self.max_access_ttl = ttl.as_secs().max(1);
        self
    }

    pub fn with_max_refresh_ttl(mut self, ttl: Duration) -> Self {
        self.max_refresh_ttl = ttl.as_secs().max(1);
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn active_key(&self) -> &SigningKey {
        &self.active
    }

    pub fn retired_keys(&self) -> &[RetiredKey] {
        &self.retired
    }

    /// Trust a retired key (e.g. loaded from storage at startup) until `valid_until`.
    pub fn add_verification_key(&mut self, key: VerifyingKey, valid_until: i64) {
        if key.kid() == self.active.kid() {
            return;
        }
        self.retired.retain(|r| r.key.kid() != key.kid());
        self.retired.push(RetiredKey { key, valid_until });
    }

    /// Make `new_key` the signing key; the previous one keeps verifying until every token it
    /// may have signed has expired. Returns the retired key so the caller can persist it.
    pub fn rotate(&mut self, new_key: SigningKey, now: i64) -> RetiredKey {
        let lifetime = self
            .max_access_ttl
            .max(self.max_refresh_ttl)
            .saturating_add(self.leeway);
        let old = std::mem::replace(&mut self.active, new_key);
        let retired = RetiredKey {
            key: old.verifying,
            valid_until: now.saturating_add(secs_i64(lifetime)),
        };
        self.add_verification_key(retired.key.clone(), retired.valid_until);
        self.prune(now);
        retired
    }

    /// Forget retired keys whose tokens have all expired.
    pub fn prune(&mut self, now: i64) {
        self.retired.retain(|r| now <= r.valid_until);
    }

    /// A JWKS document with every key that currently verifies tokens.
    pub fn jwks(&self, now: i64) -> Result<serde_json::Value, TokenError> {
        let mut keys = vec![self.active.verifying.jwk()?];
        for r in self.retired.iter().filter(|r| now <= r.valid_until) {
            keys.push(r.key.jwk()?);
        }
        Ok(serde_json::json!({ "keys": keys }))
    }

    fn key_for(&self, kid: &str, now: i64) -> Option<&VerifyingKey> {
        if kid == self.active.kid() {
            return Some(&self.active.verifying);
        }
        self.retired
            .iter()
            .find(|r| r.key.kid() == kid && now <= r.valid_until)
            .map(|r| &r.key)
    }

    fn sign<T: Serialize>(&self, typ: &str, payload: &T) -> Result<String, TokenError> {
        let header = Header {
            typ: Some(typ.to_owned()),
            kid: Some(self.active.kid().to_owned()),
            ..Header::new(Algorithm::ES256)
        };
        jsonwebtoken::encode(&header, payload, &self.active.encoding).map_err(key_err)
    }

    /// Issue an access token for `subject` (empty for anonymous) to present to `service`,
    /// granting `access`. The lifetime is `ttl`, clamped to 1 s ..= the maximum access TTL.
    pub fn issue(
        &self,
        subject: &str,
        service: &str,
        access: Vec<ResourceActions>,
        now: i64,
        ttl: Duration,
    ) -> Result<Token, TokenError> {
        let ttl = ttl.as_secs().clamp(1, self.max_access_ttl);
        let payload = AccessPayload {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: service.to_owned(),
            exp: now.saturating_add(secs_i64(ttl)),
            nbf: now,
            iat: now,
            jti: random_id()?,
            access,
        };
        let token = self.sign(ACCESS_TYP, &payload)?;
        Ok(Token {
            token: Secret::new(token),
            expires_in: ttl,
            issued_at: rfc3339(now),
        })
    }

    /// Issue a refresh token for `subject`, clamped to 1 s ..= the maximum refresh TTL.
    pub fn issue_refresh(
        &self,
        subject: &str,
        now: i64,
        ttl: Duration,
    ) -> Result<RefreshToken, TokenError> {
        let ttl = ttl.as_secs().clamp(1, self.max_refresh_ttl);
        let payload = RefreshPayload {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: self.issuer.clone(),
            exp: now.saturating_add(secs_i64(ttl)),
            nbf: now,
            iat: now,
            jti: random_id()?,
            token_use: REFRESH_USE.to_owned(),
        };
        let token = self.sign(REFRESH_TYP, &payload)?;
        Ok(RefreshToken {
            token: Secret::new(token),
            expires_in: ttl,
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        now: i64,
    ) -> Result<T, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Algorithm);
        }
        if header.typ.as_deref() != Some(typ) {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.key_for(&kid, now).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<T>(token, &key.decoding, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                    _ => TokenError::Malformed,
                }
            })?;
        Ok(data.claims)
    }

    fn check_time(&self, nbf: i64, exp: i64, now: i64) -> Result<(), TokenError> {
        let leeway = secs_i64(self.leeway);
        if now.saturating_add(leeway) < nbf {
            return Err(TokenError::NotYetValid);
        }
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// Verify an access token presented to `service` at `now`.
    pub fn verify(&self, token: &str, service: &str, now: i64) -> Result<Claims, TokenError> {
        let p: AccessPayload = self.decode(token, ACCESS_TYP, now)?;
        if p.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if p.aud != service {
            return Err(TokenError::WrongAudience);
        }
        self.check_time(p.nbf, p.exp, now)?;
        Ok(Claims {
            iss: p.iss,
            sub: p.sub,
            aud: p.aud,
            exp: p.exp,
            nbf: p.nbf,
            iat: p.iat,
            jti: p.jti,
            access: p.access,
        })
    }

    /// Verify a refresh token at `now`.
    pub fn verify_refresh(&self, token: &str, now: i64) -> Result<RefreshClaims, TokenError> {
        let p: RefreshPayload = self.decode(token, REFRESH_TYP, now)?;
        if p.token_use != REFRESH_USE {
            return Err(TokenError::WrongType);
        }
        if p.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if p.aud != self.issuer {
            return Err(TokenError::WrongAudience);
        }
        self.check_time(p.nbf, p.exp, now)?;
        Ok(RefreshClaims {
            iss: p.iss,
            sub: p.sub,
            exp: p.exp,
            iat: p.iat,
            jti: p.jti,
        })
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (proleptic Gregorian calendar).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days since 1970-01-01 to a civil date, with eras of 400 years starting on March 1st.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        // Every day boundary over 400 years agrees with a naive day-by-day walk.
        let (mut y, mut mo, mut d) = (1970i64, 1i64, 1i64);
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for day in 0..146_097i64 {
            assert_eq!(
                rfc3339(day * 86_400 + 86_399),
                format!("{y:04}-{mo:02}-{d:02}T23:59:59Z")
            );
            let len = match mo {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                mo += 1;
                if mo > 12 {
                    mo = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn key_ids() {
        let k = SigningKey::generate().unwrap();
        let kid = k.kid();
        assert_eq!(kid.len(), 12 * 4 + 11);
        let groups: Vec<&str> = kid.split(':').collect();
        assert_eq!(groups.len(), 12);
        assert!(groups.iter().all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        }));
        assert_ne!(kid, SigningKey::generate().unwrap().kid());
        // Base32 of known bytes: SHA-256("") starts e3b0c442 98fc…
        let kid = key_id(b"");
        assert!(kid.starts_with("4OYM:IQUY:"), "{kid}");
    }

    #[test]
    fn pem_round_trip_keeps_kid() {
        let k = SigningKey::generate().unwrap();
        let pem = k.to_pkcs8_pem().unwrap();
        assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(format!("{pem:?}"), "***");
        let back = SigningKey::from_pkcs8_pem(pem.expose()).unwrap();
        assert_eq!(back.kid(), k.kid());
        let pub_pem = k.verifying_key().to_public_key_pem().unwrap();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let vk = VerifyingKey::from_public_key_pem(&pub_pem).unwrap();
        assert_eq!(vk.kid(), k.kid());
        assert_eq!(&vk, k.verifying_key());
        assert!(SigningKey::from_pkcs8_pem("nope").is_err());
        assert!(VerifyingKey::from_public_key_pem(pem.expose()).is_err());
        assert_eq!(format!("{k:?}"), format!("SigningKey({})", k.kid()));
    }

    #[test]
    fn jwks_lists_live_keys() {
        let mut issuer = TokenIssuer::new("bulwark", SigningKey::generate().unwrap());
        let old_kid = issuer.active_key().kid().to_owned();
        let retired = issuer.rotate(SigningKey::generate().unwrap(), 1000);
        assert_eq!(retired.key.kid(), old_kid);
        let jwks = issuer.jwks(1000).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["kid"], issuer.active_key().kid());
        assert_eq!(keys[0]["kty"], "EC");
        assert_eq!(keys[0]["x"].as_str().unwrap().len(), 43);
        assert_eq!(keys[1]["kid"], old_kid.as_str());
        let jwks = issuer.jwks(retired.valid_until + 1).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn issuer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TokenIssuer>();
    }
}
