#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Notation (Notary Project) signatures: a root → intermediate → leaf PKI built with rcgen,
//! JWS envelopes signed and verified, every refusal with its own error, the signature
//! manifest built and read back, and a cross-check against Python's `cryptography`
//! (skipped when it is missing unless `BULWARK_REQUIRE_CLIENTS=1`).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use bulwark_trust::cosign::{Descriptor, OCI_MANIFEST};
use bulwark_trust::notation::{
    self, JwsAlgorithm, NotationError, NotationSigningKey, Subject, TrustStore, TrustStoreType,
};
use p256::ecdsa::signature::Signer as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, date_time_ymd,
};
use rsa::pkcs8::EncodePrivateKey as _;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

struct Pki {
    root: Ca,
    intermediate: Ca,
}

fn named(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2045, 1, 1);
    params
}

fn ca_params(cn: &str, constraints: BasicConstraints) -> CertificateParams {
    let mut params = named(cn);
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn pki_with(root_constraints: BasicConstraints) -> Pki {
    let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let root = ca_params("Test Root", root_constraints)
        .self_signed(&root_key)
        .unwrap();
    let inter_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let inter = ca_params("Test Intermediate", BasicConstraints::Constrained(0))
        .signed_by(&inter_key, &root, &root_key)
        .unwrap();
    Pki {
        root: Ca {
            cert: root,
            key: root_key,
        },
        intermediate: Ca {
            cert: inter,
            key: inter_key,
        },
    }
}

fn pki() -> Pki {
    pki_with(BasicConstraints::Unconstrained)
}

fn leaf_params() -> CertificateParams {
    let mut params = named("Bulwark Test Signer");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params
}

/// A signer: its key (for `sign_jws`), its raw P-256 key (to forge headers in tests), and
/// the x5c chain leaf → intermediate → root.
struct Signer {
    key: NotationSigningKey,
    p256: Option<p256::ecdsa::SigningKey>,
    chain: Vec<Vec<u8>>,
}

fn es256_signer(pki: &Pki, tweak: impl FnOnce(&mut CertificateParams)) -> Signer {
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = leaf_params();
    tweak(&mut params);
    let leaf = params
        .signed_by(&leaf_key, &pki.intermediate.cert, &pki.intermediate.key)
        .unwrap();
    let pkcs8 = leaf_key.serialize_der();
    use p256::pkcs8::DecodePrivateKey as _;
    Signer {
        key: NotationSigningKey::from_pkcs8_der(&pkcs8).unwrap(),
        p256: Some(p256::ecdsa::SigningKey::from_pkcs8_der(&pkcs8).unwrap()),
        chain: chain_of(&leaf, pki),
    }
}

fn ps256_signer(pki: &Pki) -> Signer {
    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pkcs8 = rsa_key.to_pkcs8_der().unwrap();
    let leaf_key = KeyPair::try_from(pkcs8.as_bytes()).unwrap();
    let leaf = leaf_params()
        .signed_by(&leaf_key, &pki.intermediate.cert, &pki.intermediate.key)
        .unwrap();
    Signer {
        key: NotationSigningKey::from_pkcs8_der(pkcs8.as_bytes()).unwrap(),
        p256: None,
        chain: chain_of(&leaf, pki),
    }
}

fn chain_of(leaf: &rcgen::Certificate, pki: &Pki) -> Vec<Vec<u8>> {
    vec![
        leaf.der().to_vec(),
        pki.intermediate.cert.der().to_vec(),
        pki.root.cert.der().to_vec(),
    ]
}

fn store(pki: &Pki) -> TrustStore {
    TrustStore::from_pem(pki.root.cert.pem().as_bytes()).unwrap()
}

fn image() -> Descriptor {
    Descriptor::of(OCI_MANIFEST, br#"{"schemaVersion":2,"layers":[]}"#)
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn sign(signer: &Signer, subject: &Descriptor, expiry: Option<SystemTime>) -> Vec<u8> {
    notation::sign_jws(
        subject,
        &signer.key,
        &signer.chain,
        now() - Duration::from_secs(60),
        expiry,
    )
    .unwrap()
}

fn verify(envelope: &[u8], store: &TrustStore) -> Result<notation::NotationVerdict, NotationError> {
    let subject = image();
    notation::verify(
        envelope,
        notation::JWS_MEDIA_TYPE,
        &Subject::from(&subject),
        store,
        now(),
    )
}

fn envelope_json(envelope: &[u8]) -> serde_json::Value {
    serde_json::from_slice(envelope).unwrap()
}

/// Rewrites the protected header with `edit` and signs it again with the signer's key: a
/// correctly signed envelope whose headers say something else.
fn resign(
    signer: &Signer,
    envelope: &[u8],
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    let mut env = envelope_json(envelope);
    let protected = B64URL.decode(env["protected"].as_str().unwrap()).unwrap();
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&protected).unwrap();
    edit(&mut header);
    let protected_b64 = B64URL.encode(serde_json::to_vec(&header).unwrap());
    let input = format!("{protected_b64}.{}", env["payload"].as_str().unwrap());
    let sig: p256::ecdsa::Signature = signer.p256.as_ref().unwrap().sign(input.as_bytes());
    env["protected"] = protected_b64.into();
    env["signature"] = B64URL.encode(sig.to_bytes()).into();
    serde_json::to_vec(&env).unwrap()
}

#[test]
fn es256_signature_verifies() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let subject = image();
    let expiry = now() + Duration::from_secs(3600);
    let envelope = sign(&signer, &subject, Some(expiry));
    let verdict = verify(&envelope, &store(&pki)).unwrap();
    assert_eq!(verdict.algorithm, JwsAlgorithm::Es256);
    assert_eq!(verdict.target_artifact, subject);
    assert_eq!(verdict.signing_scheme, notation::SIGNING_SCHEME_X509);
    assert_eq!(verdict.signer_subject, "CN=Bulwark Test Signer");
    assert_eq!(verdict.chain_thumbprints.len(), 3);
    assert_eq!(
        verdict.trust_anchor_thumbprint,
        store(&pki).thumbprints()[0]
    );
    assert_eq!(verdict.trust_store, "ca/default");
    assert!(verdict.signing_agent.unwrap().starts_with("bulwark/"));
    // Whole seconds on the wire.
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(verdict.expiry.map(secs), Some(secs(expiry)));

    // The envelope has the shape the spec fixes.
    let env = envelope_json(&envelope);
    let mut keys: Vec<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["header", "payload", "protected", "signature"]);
    let header: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(env["protected"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["cty"], notation::PAYLOAD_CONTENT_TYPE);
    assert_eq!(header["io.cncf.notary.signingScheme"], "notary.x509");
    assert_eq!(
        header["crit"],
        serde_json::json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"])
    );
    let payload: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(payload["targetArtifact"]["digest"], subject.digest.as_str());
    assert_eq!(env["header"]["x5c"].as_array().unwrap().len(), 3);
}

#[test]
fn ps256_signature_verifies() {
    let pki = pki();
    let signer = ps256_signer(&pki);
    let envelope = sign(&signer, &image(), None);
    let verdict = verify(&envelope, &store(&pki)).unwrap();
    assert_eq!(verdict.algorithm, JwsAlgorithm::Ps256);
    assert_eq!(verdict.expiry, None);
}

#[test]
fn trust_anchors_by_equality_or_by_issuer() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign(&signer, &image(), None);
    // The intermediate alone, as a named store.
    let inter_store = TrustStore::named(
        TrustStoreType::Ca,
        "team",
        pki.intermediate.cert.pem().as_bytes(),
    )
    .unwrap();
    let verdict = verify(&envelope, &inter_store).unwrap();
    assert_eq!(verdict.trust_store, "ca/team");
    assert_eq!(
        verdict.trust_anchor_thumbprint,
        inter_store.thumbprints()[0]
    );

    // A chain without its root still leads to the root in the store.
    let short = notation::sign_jws(&image(), &signer.key, &signer.chain[..2], now(), None).unwrap();
    verify(&short, &store(&pki)).unwrap();

    // A store of several certificates; only one matters.
    let other = pki_with(BasicConstraints::Unconstrained);
    let pem = format!("{}{}", other.root.cert.pem(), pki.root.cert.pem());
    verify(&envelope, &TrustStore::from_pem(pem.as_bytes()).unwrap()).unwrap();

    // A tsa store cannot verify notary.x509 signatures.
    let tsa = TrustStore::named(TrustStoreType::Tsa, "t", pki.root.cert.pem().as_bytes()).unwrap();
    assert!(matches!(
        verify(&envelope, &tsa),
        Err(NotationError::TrustStore(_))
    ));
}

#[test]
fn chain_not_in_trust_store_is_refused() {
    let pki = pki();
    let other = pki_with(BasicConstraints::Unconstrained);
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign(&signer, &image(), None);
    assert_eq!(
        verify(&envelope, &store(&other)),
        Err(NotationError::UntrustedChain {
            store: "ca/default".to_owned()
        })
    );
}

#[test]
fn broken_chains_are_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    // Intermediate left out: the leaf is not issued by the root.
    let gap = vec![signer.chain[0].clone(), signer.chain[2].clone()];
    let envelope = notation::sign_jws(&image(), &signer.key, &gap, now(), None).unwrap();
    assert!(matches!(
        verify(&envelope, &store(&pki)),
        Err(NotationError::InvalidChain(_))
    ));

    // The root allows no intermediate CA (pathLenConstraint 0).
    let strict = pki_with(BasicConstraints::Constrained(0));
    let signer = es256_signer(&strict, |_| {});
    let envelope = sign(&signer, &image(), None);
    match verify(&envelope, &store(&strict)) {
        Err(NotationError::InvalidChain(m)) => assert!(m.contains("pathLen"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_leaf_is_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |p| {
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = date_time_ymd(2021, 1, 1);
    });
    let envelope = sign(&signer, &image(), None);
    match verify(&envelope, &store(&pki)) {
        Err(NotationError::CertificateExpired { subject, .. }) => {
            assert_eq!(subject, "CN=Bulwark Test Signer")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn leaf_without_digital_signature_is_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |p| {
        p.key_usages = vec![KeyUsagePurpose::ContentCommitment];
    });
    let envelope = sign(&signer, &image(), None);
    match verify(&envelope, &store(&pki)) {
        Err(NotationError::BadKeyUsage(m)) => assert!(m.contains("digitalSignature"), "{m}"),
        other => panic!("{other:?}"),
    }

    // A TLS server certificate is not a code-signing certificate either.
    let signer = es256_signer(&pki, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let envelope = sign(&signer, &image(), None);
    assert!(matches!(
        verify(&envelope, &store(&pki)),
        Err(NotationError::BadKeyUsage(_))
    ));
}

#[test]
fn signature_over_another_artifact_is_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let other = Descriptor::of(OCI_MANIFEST, b"another manifest");
    let envelope = sign(&signer, &other, None);
    assert_eq!(
        verify(&envelope, &store(&pki)),
        Err(NotationError::DigestMismatch {
            expected: image().digest,
            found: other.digest,
        })
    );

    // Same digest, other size or media type.
    let mut resized = image();
    resized.size += 1;
    let envelope = sign(&signer, &resized, None);
    assert!(matches!(
        verify(&envelope, &store(&pki)),
        Err(NotationError::SizeMismatch { .. })
    ));
    let mut retyped = image();
    retyped.media_type = "application/vnd.oci.image.index.v1+json".to_owned();
    let envelope = sign(&signer, &retyped, None);
    assert!(matches!(
        verify(&envelope, &store(&pki)),
        Err(NotationError::MediaTypeMismatch { .. })
    ));
}

#[test]
fn tampered_payload_is_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign(&signer, &image(), None);
    let mut env = envelope_json(&envelope);
    let mut payload: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    payload["targetArtifact"]["digest"] = Descriptor::of(OCI_MANIFEST, b"evil").digest.into();
    env["payload"] = B64URL.encode(serde_json::to_vec(&payload).unwrap()).into();
    assert_eq!(
        verify(&serde_json::to_vec(&env).unwrap(), &store(&pki)),
        Err(NotationError::BadSignature)
    );
}

#[test]
fn tampered_signature_is_refused() {
    let pki = pki();
    for signer in [es256_signer(&pki, |_| {}), ps256_signer(&pki)] {
        let envelope = sign(&signer, &image(), None);
        let mut env = envelope_json(&envelope);
        let mut sig = B64URL.decode(env["signature"].as_str().unwrap()).unwrap();
        sig[10] ^= 0x01;
        env["signature"] = B64URL.encode(&sig).into();
        assert_eq!(
            verify(&serde_json::to_vec(&env).unwrap(), &store(&pki)),
            Err(NotationError::BadSignature)
        );
    }
}

#[test]
fn expired_envelope_is_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign(&signer, &image(), Some(now() - Duration::from_secs(5)));
    assert!(matches!(
        verify(&envelope, &store(&pki)),
        Err(NotationError::SignatureExpired(_))
    ));
}

#[test]
fn unknown_critical_header_is_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign(&signer, &image(), None);
    let forged = resign(&signer, &envelope, |h| {
        h.insert("com.example.policy".to_owned(), "strict".into());
        h.insert(
            "crit".to_owned(),
            serde_json::json!(["io.cncf.notary.signingScheme", "com.example.policy"]),
        );
    });
    assert_eq!(
        verify(&forged, &store(&pki)),
        Err(NotationError::UnknownCriticalHeader(
            "com.example.policy".to_owned()
        ))
    );
    // A non-critical unknown header is ignored, as JWS says.
    let extra = resign(&signer, &envelope, |h| {
        h.insert("com.example.note".to_owned(), "hello".into());
    });
    verify(&extra, &store(&pki)).unwrap();
    // A verification plugin cannot be honoured here.
    let plugin = resign(&signer, &envelope, |h| {
        h.insert(
            "io.cncf.notary.verificationPlugin".to_owned(),
            "com.example.plugin".into(),
        );
        h.insert(
            "crit".to_owned(),
            serde_json::json!([
                "io.cncf.notary.signingScheme",
                "io.cncf.notary.verificationPlugin"
            ]),
        );
    });
    assert!(matches!(
        verify(&plugin, &store(&pki)),
        Err(NotationError::UnknownCriticalHeader(_))
    ));
}

#[test]
fn malformed_or_unsupported_headers_are_refused() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign(&signer, &image(), Some(now() + Duration::from_secs(3600)));
    let store = store(&pki);
    let case = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        verify(&resign(&signer, &envelope, edit), &store)
    };
    assert!(matches!(
        case(&|h| {
            h.insert("alg".to_owned(), "none".into());
        }),
        Err(NotationError::UnsupportedAlgorithm(_))
    ));
    assert_eq!(
        case(&|h| {
            h.insert("alg".to_owned(), "ES384".into());
        }),
        Err(NotationError::AlgorithmMismatch {
            header: "ES384".to_owned(),
            key: "ES256".to_owned()
        })
    );
    assert!(matches!(
        case(&|h| {
            h.insert(
                "io.cncf.notary.signingScheme".to_owned(),
                "notary.x509.signingAuthority".into(),
            );
        }),
        Err(NotationError::UnsupportedSigningScheme(_))
    ));
    // Expiry present but not critical.
    assert!(matches!(
        case(&|h| {
            h.insert(
                "crit".to_owned(),
                serde_json::json!(["io.cncf.notary.signingScheme"]),
            );
        }),
        Err(NotationError::MalformedEnvelope(_))
    ));
    assert!(matches!(
        case(&|h| {
            h.remove("crit");
        }),
        Err(NotationError::MalformedEnvelope(_))
    ));
    assert!(matches!(
        case(&|h| {
            h.insert("cty".to_owned(), "application/json".into());
        }),
        Err(NotationError::MalformedEnvelope(_))
    ));
    assert!(matches!(
        case(&|h| {
            h.insert("io.cncf.notary.signingTime".to_owned(), "yesterday".into());
        }),
        Err(NotationError::MalformedEnvelope(_))
    ));

    // Envelope-level strictness.
    let mut env = envelope_json(&envelope);
    env["extra"] = "x".into();
    assert!(matches!(
        verify(&serde_json::to_vec(&env).unwrap(), &store),
        Err(NotationError::MalformedEnvelope(_))
    ));
    let text = String::from_utf8(envelope.clone()).unwrap();
    let duplicated = text.replacen("{\"header\"", "{\"signature\":\"AA\",\"header\"", 1);
    assert_ne!(duplicated, text);
    assert!(matches!(
        verify(duplicated.as_bytes(), &store),
        Err(NotationError::MalformedEnvelope(_))
    ));
    assert!(matches!(
        verify(b"not json", &store),
        Err(NotationError::MalformedEnvelope(_))
    ));
    let huge = vec![b' '; notation::MAX_ENVELOPE_BYTES + 1];
    assert!(matches!(
        verify(&huge, &store),
        Err(NotationError::TooLarge(_))
    ));
    let subject = image();
    let as_type = |media_type: &str| {
        notation::verify(
            &envelope,
            media_type,
            &Subject::from(&subject),
            &store,
            now(),
        )
    };
    assert_eq!(
        as_type("application/pgp-signature"),
        Err(NotationError::UnsupportedEnvelope(
            "application/pgp-signature".to_owned()
        ))
    );
    // A JWS read as COSE is garbage, not a signature.
    assert!(matches!(
        as_type(notation::COSE_MEDIA_TYPE),
        Err(NotationError::MalformedEnvelope(_))
    ));
}

#[test]
fn signing_refuses_a_key_that_is_not_the_leafs() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let stranger = es256_signer(&pki, |_| {});
    assert!(matches!(
        notation::sign_jws(&image(), &stranger.key, &signer.chain, now(), None),
        Err(NotationError::Signing(_))
    ));
    assert!(matches!(
        notation::sign_jws(&image(), &signer.key, &[], now(), None),
        Err(NotationError::Signing(_))
    ));
}

#[test]
fn signature_manifest_round_trip() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let mut subject = image();
    subject.annotations = Some([("a".to_owned(), "b".to_owned())].into());
    let envelope = sign(&signer, &image(), None);
    let artifact =
        notation::signature_manifest(subject.clone(), &envelope, notation::JWS_MEDIA_TYPE).unwrap();
    assert_eq!(artifact.media_type, OCI_MANIFEST);
    assert_eq!(artifact.blobs.len(), 2);
    let manifest: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["artifactType"], notation::SIGNATURE_ARTIFACT_TYPE);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(manifest["config"]["size"], 2);
    assert_eq!(manifest["layers"][0]["mediaType"], notation::JWS_MEDIA_TYPE);
    assert_eq!(manifest["subject"]["digest"], subject.digest.as_str());
    assert!(manifest["subject"].get("annotations").is_none());
    let thumbprints: Vec<String> = serde_json::from_str(
        manifest["annotations"][notation::THUMBPRINT_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let expected: Vec<String> = signer
        .chain
        .iter()
        .map(|der| {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(der))
        })
        .collect();
    assert_eq!(thumbprints, expected);

    let parsed = notation::parse_signature_manifest(&artifact.manifest).unwrap();
    assert_eq!(parsed.thumbprints, expected);
    assert!(parsed.mentions(&store(&pki)));
    assert!(!parsed.mentions(&store(&pki_with(BasicConstraints::Unconstrained))));
    let (parsed, bytes) = notation::read_envelope(&artifact.manifest, |d| {
        assert_eq!(d, &artifact.blobs[1].descriptor);
        Ok::<_, String>(envelope.clone())
    })
    .unwrap();
    assert_eq!(bytes, envelope);
    notation::verify(
        &bytes,
        &parsed.envelope.media_type,
        &Subject::from(&parsed.subject),
        &store(&pki),
        now(),
    )
    .unwrap();

    // A blob that is not the layer is refused; so is a manifest that is no Notation signature.
    assert!(
        notation::read_envelope(&artifact.manifest, |_| Ok::<_, String>(b"x".to_vec())).is_err()
    );
    let cosign = bulwark_trust::cosign::referrer_manifest(
        image(),
        &[bulwark_trust::cosign::SignedPayload {
            payload: b"{}".to_vec(),
            signature: "AA==".to_owned(),
        }],
    )
    .unwrap();
    assert!(notation::parse_signature_manifest(&cosign.manifest).is_err());
    // The older form (marker in config.mediaType) still reads.
    let mut old = manifest.clone();
    old.as_object_mut().unwrap().remove("artifactType");
    old["config"]["mediaType"] = notation::SIGNATURE_ARTIFACT_TYPE.into();
    notation::parse_signature_manifest(&serde_json::to_vec(&old).unwrap()).unwrap();
}

// --- COSE_Sign1 envelopes (`application/cose`). ---

fn sign_cose(signer: &Signer, subject: &Descriptor, expiry: Option<SystemTime>) -> Vec<u8> {
    notation::sign_cose(
        subject,
        &signer.key,
        &signer.chain,
        now() - Duration::from_secs(60),
        expiry,
    )
    .unwrap()
}

fn verify_cose(
    envelope: &[u8],
    store: &TrustStore,
) -> Result<notation::NotationVerdict, NotationError> {
    let subject = image();
    notation::verify(
        envelope,
        notation::COSE_MEDIA_TYPE,
        &Subject::from(&subject),
        store,
        now(),
    )
}

/// Edits a COSE envelope's protected header and signs it again with the signer's key.
fn resign_cose(signer: &Signer, envelope: &[u8], edit: impl FnOnce(&mut coset::Header)) -> Vec<u8> {
    use coset::TaggedCborSerializable as _;
    let mut sign1 = coset::CoseSign1::from_tagged_slice(envelope).unwrap();
    edit(&mut sign1.protected.header);
    sign1.protected.original_data = None;
    let sig: p256::ecdsa::Signature = signer.p256.as_ref().unwrap().sign(&sign1.tbs_data(b""));
    sign1.signature = sig.to_bytes().to_vec();
    sign1.to_tagged_vec().unwrap()
}

#[test]
fn cose_signatures_verify() {
    let pki = pki();
    for (signer, alg) in [
        (es256_signer(&pki, |_| {}), JwsAlgorithm::Es256),
        (ps256_signer(&pki), JwsAlgorithm::Ps256),
    ] {
        let expiry = now() + Duration::from_secs(3600);
        let envelope = sign_cose(&signer, &image(), Some(expiry));
        // COSE_Sign1_Tagged: CBOR tag 18.
        assert_eq!(envelope[0], 0xd2);
        let verdict = verify_cose(&envelope, &store(&pki)).unwrap();
        assert_eq!(verdict.algorithm, alg);
        assert_eq!(verdict.target_artifact, image());
        assert_eq!(verdict.chain_thumbprints.len(), 3);
        assert!(verdict.expiry.is_some());
        assert!(verdict.signing_agent.unwrap().starts_with("bulwark/"));
    }
}

#[test]
fn cose_refusals() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign_cose(&signer, &image(), None);
    let store = store(&pki);

    let other = pki_with(BasicConstraints::Unconstrained);
    assert!(matches!(
        verify_cose(
            &envelope,
            &TrustStore::from_pem(other.root.cert.pem().as_bytes()).unwrap()
        ),
        Err(NotationError::UntrustedChain { .. })
    ));
    let foreign = sign_cose(&signer, &Descriptor::of(OCI_MANIFEST, b"other"), None);
    assert!(matches!(
        verify_cose(&foreign, &store),
        Err(NotationError::DigestMismatch { .. })
    ));
    let expired = sign_cose(&signer, &image(), Some(now() - Duration::from_secs(5)));
    assert!(matches!(
        verify_cose(&expired, &store),
        Err(NotationError::SignatureExpired(_))
    ));
    let old_leaf = es256_signer(&pki, |p| p.not_after = date_time_ymd(2021, 1, 1));
    assert!(matches!(
        verify_cose(&sign_cose(&old_leaf, &image(), None), &store),
        Err(NotationError::CertificateExpired { .. })
    ));

    // Tampered payload and signature.
    use coset::TaggedCborSerializable as _;
    let mut sign1 = coset::CoseSign1::from_tagged_slice(&envelope).unwrap();
    sign1.payload = Some(
        String::from_utf8(sign1.payload.clone().unwrap())
            .unwrap()
            .replace("\"size\":", "\"size\":1")
            .into_bytes(),
    );
    assert_eq!(
        verify_cose(&sign1.to_tagged_vec().unwrap(), &store),
        Err(NotationError::BadSignature)
    );
    let mut sign1 = coset::CoseSign1::from_tagged_slice(&envelope).unwrap();
    sign1.signature[5] ^= 0x80;
    assert_eq!(
        verify_cose(&sign1.to_tagged_vec().unwrap(), &store),
        Err(NotationError::BadSignature)
    );

    // Unknown critical header, correctly signed.
    let forged = resign_cose(&signer, &envelope, |h| {
        h.rest.push((
            coset::Label::Text("com.example.policy".to_owned()),
            coset::cbor::Value::Text("strict".to_owned()),
        ));
        h.crit.push(coset::RegisteredLabel::Text(
            "com.example.policy".to_owned(),
        ));
    });
    assert_eq!(
        verify_cose(&forged, &store),
        Err(NotationError::UnknownCriticalHeader(
            "com.example.policy".to_owned()
        ))
    );
    // The control: the same re-signing without the header verifies.
    verify_cose(&resign_cose(&signer, &envelope, |_| {}), &store).unwrap();
    let wrong_alg = resign_cose(&signer, &envelope, |h| {
        h.alg = Some(coset::Algorithm::Assigned(coset::iana::Algorithm::PS256));
    });
    assert!(matches!(
        verify_cose(&wrong_alg, &store),
        Err(NotationError::AlgorithmMismatch { .. })
    ));
    let untagged = coset::CoseSign1::from_tagged_slice(&envelope).unwrap();
    use coset::CborSerializable as _;
    assert!(matches!(
        verify_cose(&untagged.to_vec().unwrap(), &store),
        Err(NotationError::MalformedEnvelope(_))
    ));
}

#[test]
fn cose_signature_manifest_round_trip() {
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let envelope = sign_cose(&signer, &image(), None);
    let artifact =
        notation::signature_manifest(image(), &envelope, notation::COSE_MEDIA_TYPE).unwrap();
    let (parsed, bytes) =
        notation::read_envelope(&artifact.manifest, |_| Ok::<_, String>(envelope.clone())).unwrap();
    assert_eq!(parsed.envelope.media_type, notation::COSE_MEDIA_TYPE);
    assert_eq!(parsed.thumbprints.len(), 3);
    notation::verify(
        &bytes,
        &parsed.envelope.media_type,
        &Subject::from(&parsed.subject),
        &store(&pki),
        now(),
    )
    .unwrap();
}

// Hostile input never panics: arbitrary bytes and single-byte corruptions of valid
// envelopes of both formats come back as values.
#[test]
fn corrupted_envelopes_never_panic() {
    use proptest::prelude::*;
    let pki = pki();
    let signer = es256_signer(&pki, |_| {});
    let store = store(&pki);
    let jws = sign(&signer, &image(), Some(now() + Duration::from_secs(60)));
    let cose = sign_cose(&signer, &image(), Some(now() + Duration::from_secs(60)));
    let config = ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    };
    proptest!(config, |(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                        at in any::<usize>(), with in any::<u8>(), cose_first in any::<bool>())| {
        for media_type in [notation::JWS_MEDIA_TYPE, notation::COSE_MEDIA_TYPE] {
            prop_assert!(verify_as(&bytes, media_type, &store).is_err());
        }
        let (valid, media_type) = if cose_first {
            (&cose, notation::COSE_MEDIA_TYPE)
        } else {
            (&jws, notation::JWS_MEDIA_TYPE)
        };
        let mut corrupted = valid.clone();
        let i = at % corrupted.len();
        corrupted[i] = with;
        // Some corruptions land in unsigned, unchecked bytes (the signing agent); only a
        // panic would be a failure here.
        let _ = verify_as(&corrupted, media_type, &store);
        let mut truncated = valid.clone();
        truncated.truncate(i);
        prop_assert!(verify_as(&truncated, media_type, &store).is_err());
    });
}

fn verify_as(
    envelope: &[u8],
    media_type: &str,
    store: &TrustStore,
) -> Result<notation::NotationVerdict, NotationError> {
    let subject = image();
    notation::verify(envelope, media_type, &Subject::from(&subject), store, now())
}

// --- Interop with Python's `cryptography`, an independent JWS implementation. ---

fn python_available() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import cryptography.x509; from cryptography.x509 import Certificate; \
             assert hasattr(Certificate, 'verify_directly_issued_by')",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("BULWARK_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!("python3 with `cryptography` >= 40 is required (BULWARK_REQUIRE_CLIENTS=1)");
        }
        eprintln!("skipping: python3 `cryptography` (>= 40) is not installed");
    }
    ok
}

fn python(script: &str, input: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Builds a root → intermediate → leaf PKI and a Notation JWS for the given descriptor.
const PY_SIGN: &str = r#"
import sys, json, base64, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

req = json.load(sys.stdin)
now = datetime.datetime.now(datetime.timezone.utc)
def b64url(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def name(cn): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def ku(sign, cert_sign):
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False)
def cert(subject, issuer, pub, key, ca):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(pub).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(ku(not ca, ca), critical=True))
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return b.sign(key, hashes.SHA256())

root_key = ec.generate_private_key(ec.SECP384R1())
root = cert("Py Root", "Py Root", root_key.public_key(), root_key, True)
inter_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
inter = cert("Py Intermediate", "Py Root", inter_key.public_key(), root_key, True)
if req["alg"] == "ES256":
    leaf_key = ec.generate_private_key(ec.SECP256R1())
else:
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
leaf = cert("Py Signer", "Py Intermediate", leaf_key.public_key(), inter_key, False)

protected = json.dumps({
    "alg": req["alg"],
    "cty": "application/vnd.cncf.notary.payload.v1+json",
    "crit": ["io.cncf.notary.signingScheme"],
    "io.cncf.notary.signingScheme": "notary.x509",
    "io.cncf.notary.signingTime": now.replace(microsecond=0).isoformat(),
}).encode()
payload = json.dumps({"targetArtifact": req["subject"]}).encode()
signing_input = (b64url(protected) + "." + b64url(payload)).encode()
if req["alg"] == "ES256":
    r, s = decode_dss_signature(leaf_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
else:
    sig = leaf_key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
        salt_length=32), hashes.SHA256())
der = lambda c: base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
envelope = {
    "payload": b64url(payload),
    "protected": b64url(protected),
    "header": {"x5c": [der(leaf), der(inter), der(root)], "io.cncf.notary.signingAgent": "python"},
    "signature": b64url(sig),
}
print(json.dumps({"envelope": json.dumps(envelope),
                  "root": root.public_bytes(serialization.Encoding.PEM).decode()}))
"#;

/// Verifies Notation JWS envelopes independently: chain links, signature, payload digest.
const PY_VERIFY: &str = r#"
import sys, json, base64
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.exceptions import InvalidSignature

req = json.load(sys.stdin)
root = x509.load_pem_x509_certificate(req["root"].encode())
def unb64url(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
results = []
for text in req["envelopes"]:
    env = json.loads(text)
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in env["header"]["x5c"]]
        for child, parent in zip(chain, chain[1:]):
            child.verify_directly_issued_by(parent)
        assert chain[-1] == root
        header = json.loads(unb64url(env["protected"]))
        assert header["cty"] == "application/vnd.cncf.notary.payload.v1+json"
        assert header["io.cncf.notary.signingScheme"] == "notary.x509"
        assert "io.cncf.notary.signingScheme" in header["crit"]
        signing_input = (env["protected"] + "." + env["payload"]).encode()
        sig = unb64url(env["signature"])
        key = chain[0].public_key()
        if header["alg"] == "ES256":
            assert isinstance(key, ec.EllipticCurvePublicKey) and len(sig) == 64
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            assert header["alg"] == "PS256" and isinstance(key, rsa.RSAPublicKey)
            key.verify(sig, signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                salt_length=32), hashes.SHA256())
        payload = json.loads(unb64url(env["payload"]))
        results.append(payload["targetArtifact"]["digest"])
    except InvalidSignature:
        results.append(None)
print(json.dumps(results))
"#;

#[test]
fn python_verifies_bulwark_envelopes() {
    if !python_available() {
        return;
    }
    let pki = pki();
    let mut envelopes = Vec::new();
    for signer in [es256_signer(&pki, |_| {}), ps256_signer(&pki)] {
        envelopes.push(String::from_utf8(sign(&signer, &image(), None)).unwrap());
    }
    // A tampered one must fail in Python too.
    let mut env = envelope_json(envelopes[0].as_bytes());
    let mut payload: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    payload["targetArtifact"]["size"] = 1.into();
    env["payload"] = B64URL.encode(serde_json::to_vec(&payload).unwrap()).into();
    envelopes.push(env.to_string());

    let req = serde_json::json!({"root": pki.root.cert.pem(), "envelopes": envelopes});
    let out: Vec<Option<String>> =
        serde_json::from_str(&python(PY_VERIFY, &req.to_string())).unwrap();
    let digest = image().digest;
    assert_eq!(out, vec![Some(digest.clone()), Some(digest), None]);
}

#[test]
fn bulwark_verifies_python_envelopes() {
    if !python_available() {
        return;
    }
    let subject = image();
    for (alg, expected) in [
        ("ES256", JwsAlgorithm::Es256),
        ("PS256", JwsAlgorithm::Ps256),
    ] {
        let req = serde_json::json!({"alg": alg, "subject": subject});
        let out: serde_json::Value =
            serde_json::from_str(&python(PY_SIGN, &req.to_string())).unwrap();
        let envelope = out["envelope"].as_str().unwrap().as_bytes();
        let store = TrustStore::from_pem(out["root"].as_str().unwrap().as_bytes()).unwrap();
        let verdict = notation::verify(
            envelope,
            notation::JWS_MEDIA_TYPE,
            &Subject::from(&subject),
            &store,
            now(),
        )
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verdict.algorithm, expected);
        assert_eq!(verdict.signer_subject, "CN=Py Signer");
        assert_eq!(verdict.signing_agent.as_deref(), Some("python"));
        // The thumbprints annotation is computed from Python's chain too.
        assert_eq!(
            notation::chain_thumbprints(envelope, notation::JWS_MEDIA_TYPE).unwrap(),
            verdict.chain_thumbprints
        );
        // And a foreign signature over another digest is still refused.
        let other = Descriptor::of(OCI_MANIFEST, b"other");
        assert!(matches!(
            notation::verify(
                envelope,
                notation::JWS_MEDIA_TYPE,
                &Subject::from(&other),
                &store,
                now()
            ),
            Err(NotationError::DigestMismatch { .. })
        ));
    }
}
