//! Token service behaviour through the public API: round trips, every rejection path, key
//! rotation and persistence, refresh/access separation, and an independent ES256 check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bulwark_auth::scope::{Action, ResourceActions, Scope};
use bulwark_auth::token::{DEFAULT_LEEWAY_SECS, DEFAULT_MAX_ACCESS_TTL_SECS, MAX_TOKEN_LEN};
use bulwark_auth::{SigningKey, TokenError, TokenIssuer, VerifyingKey};
use bulwark_oci::RepoName;

const NOW: i64 = 1_700_000_000;
const SERVICE: &str = "registry.example.test";
const ISSUER: &str = "bulwark-token-service";
const LEEWAY: i64 = DEFAULT_LEEWAY_SECS as i64;

fn issuer() -> TokenIssuer {
    TokenIssuer::new(ISSUER, SigningKey::generate().unwrap())
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn access() -> Vec<ResourceActions> {
    vec![
        Scope::parse("repository:team-a/app:pull,push")
            .unwrap()
            .to_access(),
        Scope::parse("repository:team-a/other:pull")
            .unwrap()
            .granted(&[]),
        Scope::catalog().to_access(),
    ]
}

fn issue(iss: &TokenIssuer) -> String {
    iss.issue("alice", SERVICE, access(), NOW, Duration::from_secs(300))
        .unwrap()
        .token
        .expose()
        .to_owned()
}

fn parts(token: &str) -> (String, String, String) {
    let v: Vec<&str> = token.split('.').collect();
    assert_eq!(v.len(), 3);
    (v[0].to_owned(), v[1].to_owned(), v[2].to_owned())
}

fn decode_json(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_json(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn issue_verify_round_trip() {
    let iss = issuer();
    let token = iss
        .issue("alice", SERVICE, access(), NOW, Duration::from_secs(300))
        .unwrap();
    assert_eq!(token.expires_in, 300);
    assert_eq!(token.issued_at, "2023-11-14T22:13:20Z");
    assert!(!format!("{token:?}").contains(token.token.expose()));

    let body = serde_json::to_value(&token).unwrap();
    assert_eq!(body["token"], token.token.expose());
    assert_eq!(body["access_token"], token.token.expose());
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["issued_at"], "2023-11-14T22:13:20Z");

    let claims = iss.verify(token.token.expose(), SERVICE, NOW).unwrap();
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.aud, SERVICE);
    assert_eq!((claims.iat, claims.nbf, claims.exp), (NOW, NOW, NOW + 300));
    assert_eq!(claims.jti.len(), 22);
    assert_eq!(claims.access, access());
    assert!(claims.allows_catalog());

    // The header and payload have the Docker token shape.
    let (h, p, _) = parts(token.token.expose());
    let header = decode_json(&h);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], iss.active_key().kid());
    let payload = decode_json(&p);
    assert_eq!(
        payload["access"][0],
        serde_json::json!({"type":"repository","name":"team-a/app","actions":["pull","push"]})
    );
    assert_eq!(payload["access"][2]["type"], "registry");

    // jti is unique per token.
    let again = iss.verify(&issue(&iss), SERVICE, NOW).unwrap();
    assert_ne!(again.jti, claims.jti);
}

#[test]
fn verified_claims_mint_capabilities() {
    let iss = issuer();
    let claims = iss.verify(&issue(&iss), SERVICE, NOW).unwrap();
    let app = repo("team-a/app");
    let cap = claims
        .capability(&app, &[Action::Pull, Action::Push])
        .unwrap();
    assert_eq!(cap.repo(), &app);
    assert!(cap.permits(Action::Push));
    assert!(claims.capability(&app, &[Action::Delete]).is_err());
    assert!(
        claims
            .capability(&repo("team-a/other"), &[Action::Pull])
            .is_err()
    );
    assert!(
        claims
            .capability(&repo("team-a/app2"), &[Action::Pull])
            .is_err()
    );

    let anon = iss
        .issue("", SERVICE, vec![], NOW, Duration::from_secs(60))
        .unwrap();
    let claims = iss.verify(anon.token.expose(), SERVICE, NOW).unwrap();
    assert_eq!(claims.sub, "");
    assert!(!claims.allows_catalog());
    assert!(claims.capability(&app, &[Action::Pull]).is_err());
}

#[test]
fn signature_is_standard_es256() {
    // Check the JWS with p256's ECDSA implementation, independent of the signing library.
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::{Signature, VerifyingKey as EcdsaKey};
    use p256::pkcs8::DecodePublicKey as _;

    let iss = issuer();
    let token = issue(&iss);
    let pem = iss
        .active_key()
        .verifying_key()
        .to_public_key_pem()
        .unwrap();
    let key = EcdsaKey::from_public_key_pem(&pem).unwrap();
    let (h, p, s) = parts(&token);
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(&s).unwrap()).unwrap();
    let message = format!("{h}.{p}");
    key.verify(message.as_bytes(), &sig).unwrap();
    assert!(key.verify(b"something else", &sig).is_err());
}

#[test]
fn expiry_and_not_before_with_leeway() {
    let iss = issuer();
    let token = issue(&iss);
    let exp = NOW + 300;
    assert!(iss.verify(&token, SERVICE, exp - 1).is_ok());
    assert!(iss.verify(&token, SERVICE, exp + LEEWAY - 1).is_ok());
    assert_eq!(
        iss.verify(&token, SERVICE, exp + LEEWAY),
        Err(TokenError::Expired)
    );
    assert_eq!(
        iss.verify(&token, SERVICE, exp + 86_400),
        Err(TokenError::Expired)
    );
    assert!(iss.verify(&token, SERVICE, NOW - LEEWAY).is_ok());
    assert_eq!(
        iss.verify(&token, SERVICE, NOW - LEEWAY - 1),
        Err(TokenError::NotYetValid)
    );

    let strict = iss.clone().with_leeway(Duration::ZERO);
    assert_eq!(
        strict.verify(&token, SERVICE, exp),
        Err(TokenError::Expired)
    );
}

#[test]
fn ttl_is_clamped() {
    let iss = issuer();
    let t = iss
        .issue("a", SERVICE, vec![], NOW, Duration::from_secs(10 * 86_400))
        .unwrap();
    assert_eq!(t.expires_in, DEFAULT_MAX_ACCESS_TTL_SECS);
    let t = iss
        .issue("a", SERVICE, vec![], NOW, Duration::ZERO)
        .unwrap();
    assert_eq!(t.expires_in, 1);
    let short = iss.clone().with_max_access_ttl(Duration::from_secs(60));
    let t = short
        .issue("a", SERVICE, vec![], NOW, Duration::from_secs(300))
        .unwrap();
    assert_eq!(t.expires_in, 60);
    assert_eq!(
        short.verify(t.token.expose(), SERVICE, NOW + 60 + LEEWAY),
        Err(TokenError::Expired)
    );
}

#[test]
fn wrong_audience_and_issuer() {
    let iss = issuer();
    let token = issue(&iss);
    assert_eq!(
        iss.verify(&token, "other.example.test", NOW),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(iss.verify(&token, "", NOW), Err(TokenError::WrongAudience));
    // Same key, other issuer name.
    let pem = iss.active_key().to_pkcs8_pem().unwrap();
    let other = TokenIssuer::new(
        "someone-else",
        SigningKey::from_pkcs8_pem(pem.expose()).unwrap(),
    );
    assert_eq!(
        other.verify(&token, SERVICE, NOW),
        Err(TokenError::WrongIssuer)
    );
}

#[test]
fn tampered_tokens_are_rejected() {
    let iss = issuer();
    let token = issue(&iss);
    let (h, p, s) = parts(&token);

    // Grant ourselves delete by editing the payload.
    let mut payload = decode_json(&p);
    payload["access"][0]["actions"] = serde_json::json!(["pull", "push", "delete"]);
    let forged = format!("{h}.{}.{s}", encode_json(&payload));
    assert_eq!(
        iss.verify(&forged, SERVICE, NOW),
        Err(TokenError::BadSignature)
    );

    // Change the subject.
    let mut payload = decode_json(&p);
    payload["sub"] = "root".into();
    let forged = format!("{h}.{}.{s}", encode_json(&payload));
    assert_eq!(
        iss.verify(&forged, SERVICE, NOW),
        Err(TokenError::BadSignature)
    );

    // Flip a signature bit.
    let mut sig = URL_SAFE_NO_PAD.decode(&s).unwrap();
    sig[10] ^= 1;
    let forged = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(&sig));
    assert_eq!(
        iss.verify(&forged, SERVICE, NOW),
        Err(TokenError::BadSignature)
    );

    // Drop the signature.
    assert!(iss.verify(&format!("{h}.{p}."), SERVICE, NOW).is_err());

    // Downgrade the algorithm.
    for alg in ["none", "HS256", "RS256", "ES384"] {
        let mut header = decode_json(&h);
        header["alg"] = alg.into();
        let forged = format!("{}.{p}.{s}", encode_json(&header));
        let err = iss.verify(&forged, SERVICE, NOW).unwrap_err();
        assert!(
            matches!(err, TokenError::Algorithm | TokenError::Malformed),
            "{alg}: {err:?}"
        );
    }

    // HS256 with the public key as the HMAC secret (the classic key-confusion attack).
    let pub_pem = iss
        .active_key()
        .verifying_key()
        .to_public_key_pem()
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(iss.active_key().kid().to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &decode_json(&p),
        &jsonwebtoken::EncodingKey::from_secret(pub_pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        iss.verify(&forged, SERVICE, NOW),
        Err(TokenError::Algorithm)
    );
}

#[test]
fn malformed_tokens_are_rejected() {
    let iss = issuer();
    for bad in [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "..",
        "a.b.c.d",
        "eyJhbGciOiJFUzI1NiJ9.e30.",
    ] {
        assert!(iss.verify(bad, SERVICE, NOW).is_err(), "{bad:?}");
        assert!(iss.verify_refresh(bad, NOW).is_err(), "{bad:?}");
    }
    let huge = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(iss.verify(&huge, SERVICE, NOW), Err(TokenError::Malformed));
}

#[test]
fn unknown_or_missing_kid() {
    let iss = issuer();
    let stranger = TokenIssuer::new(ISSUER, SigningKey::generate().unwrap());
    let token = issue(&stranger);
    assert_eq!(
        iss.verify(&token, SERVICE, NOW),
        Err(TokenError::UnknownKey)
    );

    // A token signed by our key but with the kid removed or pointing elsewhere.
    let pem = iss.active_key().to_pkcs8_pem().unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.expose().as_bytes()).unwrap();
    let (_, p, _) = parts(&issue(&iss));
    let claims = decode_json(&p);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("JWT".into());
    let no_kid = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(
        iss.verify(&no_kid, SERVICE, NOW),
        Err(TokenError::UnknownKey)
    );
    header.kid = Some(stranger.active_key().kid().to_owned());
    let wrong_kid = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(
        iss.verify(&wrong_kid, SERVICE, NOW),
        Err(TokenError::UnknownKey)
    );
    // A stranger's key claiming our kid fails the signature check.
    let stranger_pem = stranger.active_key().to_pkcs8_pem().unwrap();
    let stranger_key =
        jsonwebtoken::EncodingKey::from_ec_pem(stranger_pem.expose().as_bytes()).unwrap();
    header.kid = Some(iss.active_key().kid().to_owned());
    let impostor = jsonwebtoken::encode(&header, &claims, &stranger_key).unwrap();
    assert_eq!(
        iss.verify(&impostor, SERVICE, NOW),
        Err(TokenError::BadSignature)
    );
    // Sanity: the same construction with the right kid verifies.
    header.kid = Some(iss.active_key().kid().to_owned());
    let right = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert!(iss.verify(&right, SERVICE, NOW).is_ok());
}

#[test]
fn rotation_keeps_old_tokens_valid_until_they_expire() {
    let mut iss = issuer();
    let old_kid = iss.active_key().kid().to_owned();
    let old_token = issue(&iss);
    let old_refresh = iss
        .issue_refresh("alice", NOW, Duration::from_secs(7 * 86_400))
        .unwrap();

    let retired = iss.rotate(SigningKey::generate().unwrap(), NOW + 10);
    assert_eq!(retired.key.kid(), old_kid);
    assert_ne!(iss.active_key().kid(), old_kid);
    assert_eq!(iss.retired_keys().len(), 1);

    // Old tokens still verify; new ones carry the new kid.
    assert!(iss.verify(&old_token, SERVICE, NOW + 20).is_ok());
    assert!(
        iss.verify_refresh(old_refresh.token.expose(), NOW + 86_400)
            .is_ok()
    );
    let new_token = issue(&iss);
    let (h, _, _) = parts(&new_token);
    assert_eq!(decode_json(&h)["kid"], iss.active_key().kid());
    assert!(iss.verify(&new_token, SERVICE, NOW).is_ok());

    // The retired key outlives every token it can have signed.
    assert!(retired.valid_until >= NOW + 7 * 86_400 + LEEWAY);
    assert!(
        iss.verify_refresh(old_refresh.token.expose(), NOW + 7 * 86_400 + LEEWAY - 1)
            .is_ok()
    );

    // Rotating again keeps both retired keys; pruning past valid_until drops the first.
    let second = iss.rotate(SigningKey::generate().unwrap(), NOW + 20);
    assert_eq!(iss.retired_keys().len(), 2);
    iss.prune(retired.valid_until + 1);
    assert_eq!(iss.retired_keys().len(), 1);
    assert_eq!(iss.retired_keys()[0].key.kid(), second.key.kid());
    assert_eq!(
        iss.verify_refresh(old_refresh.token.expose(), retired.valid_until + 1),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn retired_key_is_not_trusted_after_valid_until_even_unpruned() {
    let mut iss = issuer();
    let old_token = issue(&iss);
    let old_kid = iss.active_key().kid().to_owned();
    let mut restored = TokenIssuer::new(ISSUER, SigningKey::generate().unwrap());
    restored.add_verification_key(iss.active_key().verifying_key().clone(), NOW + 100);
    assert!(restored.verify(&old_token, SERVICE, NOW + 100).is_ok());
    assert_eq!(
        restored.verify(&old_token, SERVICE, NOW + 101),
        Err(TokenError::UnknownKey)
    );
    // Re-adding the same kid replaces, not duplicates.
    restored.add_verification_key(iss.active_key().verifying_key().clone(), NOW + 200);
    assert_eq!(restored.retired_keys().len(), 1);
    // Adding the active key as a verification key is a no-op.
    let active = restored.active_key().verifying_key().clone();
    restored.add_verification_key(active, 0);
    assert_eq!(restored.retired_keys().len(), 1);
    let _ = iss.rotate(SigningKey::generate().unwrap(), NOW);
    assert_eq!(iss.retired_keys()[0].key.kid(), old_kid);
}

#[test]
fn keys_persist_through_pem() {
    let mut iss = issuer();
    let token_a = issue(&iss);
    let retired = iss.rotate(SigningKey::generate().unwrap(), NOW);
    let token_b = issue(&iss);

    // What the server would store.
    let active_pem = iss.active_key().to_pkcs8_pem().unwrap();
    let retired_pem = retired.key.to_public_key_pem().unwrap();
    let valid_until = retired.valid_until;

    // A restart (or another replica) loads them.
    let mut reloaded = TokenIssuer::new(
        ISSUER,
        SigningKey::from_pkcs8_pem(active_pem.expose()).unwrap(),
    );
    reloaded.add_verification_key(
        VerifyingKey::from_public_key_pem(&retired_pem).unwrap(),
        valid_until,
    );
    assert!(reloaded.verify(&token_a, SERVICE, NOW).is_ok());
    assert!(reloaded.verify(&token_b, SERVICE, NOW).is_ok());
    let token_c = issue(&reloaded);
    assert!(iss.verify(&token_c, SERVICE, NOW).is_ok());
}

#[test]
fn refresh_tokens_round_trip() {
    let iss = issuer();
    let r = iss
        .issue_refresh("alice", NOW, Duration::from_secs(86_400))
        .unwrap();
    assert_eq!(r.expires_in, 86_400);
    assert!(!format!("{r:?}").contains(r.token.expose()));
    let claims = iss.verify_refresh(r.token.expose(), NOW + 10).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.iss, ISSUER);
    assert_eq!((claims.iat, claims.exp), (NOW, NOW + 86_400));
    assert_eq!(
        iss.verify_refresh(r.token.expose(), NOW + 86_400 + LEEWAY),
        Err(TokenError::Expired)
    );
    let (h, _, _) = parts(r.token.expose());
    assert_eq!(decode_json(&h)["typ"], "refresh+jwt");

    let stranger = TokenIssuer::new(ISSUER, SigningKey::generate().unwrap());
    assert_eq!(
        stranger.verify_refresh(r.token.expose(), NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn refresh_and_access_tokens_cannot_be_confused() {
    let iss = issuer();
    let access = issue(&iss);
    let refresh = iss
        .issue_refresh("alice", NOW, Duration::from_secs(3600))
        .unwrap();
    let refresh = refresh.token.expose();

    assert_eq!(
        iss.verify(refresh, SERVICE, NOW),
        Err(TokenError::WrongType)
    );
    // Even when the caller's service happens to equal the issuer name.
    assert_eq!(iss.verify(refresh, ISSUER, NOW), Err(TokenError::WrongType));
    assert_eq!(iss.verify_refresh(&access, NOW), Err(TokenError::WrongType));

    // Relabelling the header breaks the signature...
    let (h, p, s) = parts(refresh);
    let mut header = decode_json(&h);
    header["typ"] = "JWT".into();
    let relabelled = format!("{}.{p}.{s}", encode_json(&header));
    assert_eq!(
        iss.verify(&relabelled, ISSUER, NOW),
        Err(TokenError::BadSignature)
    );

    // ...and a correctly signed token whose header and payload disagree is still refused,
    // because each payload shape lacks the other's mandatory claim.
    let pem = iss.active_key().to_pkcs8_pem().unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(pem.expose().as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(iss.active_key().kid().to_owned());
    header.typ = Some("JWT".into());
    let refresh_payload_as_access = jsonwebtoken::encode(&header, &decode_json(&p), &key).unwrap();
    assert_eq!(
        iss.verify(&refresh_payload_as_access, ISSUER, NOW),
        Err(TokenError::Malformed)
    );
    header.typ = Some("refresh+jwt".into());
    let (_, ap, _) = parts(&access);
    let mut access_payload = decode_json(&ap);
    access_payload["aud"] = ISSUER.into();
    let access_payload_as_refresh = jsonwebtoken::encode(&header, &access_payload, &key).unwrap();
    assert_eq!(
        iss.verify_refresh(&access_payload_as_refresh, NOW),
        Err(TokenError::Malformed)
    );
    // A refresh payload with a different token_use is refused too.
    let mut payload = decode_json(&p);
    payload["token_use"] = "access".into();
    let odd = jsonwebtoken::encode(&header, &payload, &key).unwrap();
    assert_eq!(iss.verify_refresh(&odd, NOW), Err(TokenError::WrongType));
}
