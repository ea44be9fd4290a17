//! Round trips and every refusal of payloads, keys, signatures and signature manifests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bulwark_trust::cosign::{
    self, ArtifactError, Descriptor, OCI_EMPTY, SIGNATURE_ANNOTATION, SIGNATURE_ARTIFACT_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE, SignedPayload, VerifyError,
};
use bulwark_trust::keys::{self, KeyAlgorithm, KeyError, PrivateKey, PublicKey};
use bulwark_trust::simple_signing::{PayloadError, SimpleSigning};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER_DIGEST: &str =
    "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn key(alg: KeyAlgorithm) -> PrivateKey {
    PrivateKey::generate(alg).unwrap()
}

const ALGS: [KeyAlgorithm; 2] = [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519];

// ---- payload ----

#[test]
fn payload_round_trip_and_cosign_shape() {
    let p = SimpleSigning::new("reg.example/team/app", DIGEST).unwrap();
    let bytes = p.to_bytes().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"reg.example/team/app"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
    );
    assert_eq!(SimpleSigning::parse(&bytes).unwrap(), p);

    let mut optional = serde_json::Map::new();
    optional.insert("creator".into(), "bulwark".into());
    let p = p.with_optional(optional);
    assert_eq!(SimpleSigning::parse(&p.to_bytes().unwrap()).unwrap(), p);
}

#[test]
fn payload_parser_refusals() {
    let ok = |ty: &str, digest: &str, reference: &str| {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"{ty}"}}}}"#
        )
    };
    // Optional may be missing entirely.
    assert!(
        SimpleSigning::parse(ok("cosign container image signature", DIGEST, "a/b").as_bytes())
            .is_ok()
    );
    assert!(matches!(
        SimpleSigning::parse(ok("atomic container signature", DIGEST, "a/b").as_bytes()),
        Err(PayloadError::WrongType(_))
    ));
    assert!(matches!(
        SimpleSigning::parse(
            ok("cosign container image signature", "sha256:abc", "a/b").as_bytes()
        ),
        Err(PayloadError::BadDigest(_))
    ));
    assert!(matches!(
        SimpleSigning::parse(
            ok(
                "cosign container image signature",
                &DIGEST.to_uppercase(),
                "a/b"
            )
            .as_bytes()
        ),
        Err(PayloadError::BadDigest(_))
    ));
    assert!(matches!(
        SimpleSigning::parse(ok("cosign container image signature", DIGEST, " ").as_bytes()),
        Err(PayloadError::EmptyReference)
    ));
    for bad in [
        &b""[..],
        b"null",
        b"[]",
        b"{}",
        b"{\"critical\":{}}",
        b"{\"critical\":{\"identity\":{},\"image\":{},\"type\":\"x\"}}",
        b"\xff\xfe",
    ] {
        assert!(
            matches!(SimpleSigning::parse(bad), Err(PayloadError::Json(_))),
            "{bad:?}"
        );
    }
    // Unknown critical fields are refused.
    let extra = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"a/b"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature","extra":1}}}}"#
    );
    assert!(matches!(
        SimpleSigning::parse(extra.as_bytes()),
        Err(PayloadError::Json(_))
    ));
    let huge = vec![b' '; bulwark_trust::simple_signing::MAX_PAYLOAD_BYTES + 1];
    assert!(matches!(
        SimpleSigning::parse(&huge),
        Err(PayloadError::TooLarge(_))
    ));
}

// ---- keys ----

#[test]
fn public_and_pkcs8_pem_round_trips() {
    for alg in ALGS {
        let k = key(alg);
        let pub_pem = k.public_key().to_pem().unwrap();
        assert!(
            pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"),
            "{pub_pem}"
        );
        let back = PublicKey::from_pem(&pub_pem).unwrap();
        assert_eq!(back, k.public_key());
        assert_eq!(back.algorithm(), alg);
        let id = back.key_id().unwrap();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

        let priv_pem = k.to_pkcs8_pem().unwrap();
        let back = PrivateKey::from_pem(&priv_pem, None).unwrap();
        assert_eq!(back.public_key(), k.public_key());
    }
}

#[test]
fn cosign_encrypted_key_round_trip_and_wrong_password() {
    for alg in ALGS {
        let k = key(alg);
        let pem = k.to_cosign_pem(b"correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        // The body is the JSON envelope cosign writes.
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let json: serde_json::Value = serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(json["kdf"]["params"]["N"], 32768);
        assert_eq!(json["kdf"]["params"]["r"], 8);
        assert_eq!(json["kdf"]["params"]["p"], 1);
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            B64.decode(json["cipher"]["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            24
        );
        assert_eq!(
            B64.decode(json["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );

        let back = PrivateKey::from_pem(&pem, Some(b"correct horse")).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        assert!(matches!(
            PrivateKey::from_pem(&pem, Some(b"wrong")),
            Err(KeyError::WrongPassword)
        ));
        assert!(matches!(
            PrivateKey::from_pem(&pem, None),
            Err(KeyError::PasswordRequired)
        ));
        // Legacy label reads the same.
        let legacy = pem.replace("SIGSTORE", "COSIGN");
        assert!(PrivateKey::from_pem(&legacy, Some(b"correct horse")).is_ok());
    }
}

fn encrypted_pem(json: &serde_json::Value) -> String {
    let body = B64.encode(serde_json::to_vec(json).unwrap());
    format!(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{body}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
}

#[test]
fn hostile_encrypted_keys_are_refused_without_work() {
    let k = key(KeyAlgorithm::EcdsaP256);
    let pem = k.to_cosign_pem_with_cost(b"pw", 4).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let good: serde_json::Value = serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
    assert!(PrivateKey::from_pem(&encrypted_pem(&good), Some(b"pw")).is_ok());

    let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        PrivateKey::from_pem(&encrypted_pem(&v), Some(b"pw"))
    };
    // Absurd scrypt costs would take forever or exhaust memory: refused up front.
    assert!(matches!(
        mutate(&|v| v["kdf"]["params"]["N"] = (1u64 << 40).into()),
        Err(KeyError::MalformedEncrypted(_))
    ));
    assert!(matches!(
        mutate(&|v| v["kdf"]["params"]["N"] = 1000.into()),
        Err(KeyError::MalformedEncrypted(_))
    ));
    assert!(matches!(
        mutate(&|v| v["kdf"]["params"]["r"] = 1_000_000.into()),
        Err(KeyError::MalformedEncrypted(_))
    ));
    assert!(matches!(
        mutate(&|v| v["kdf"]["params"]["p"] = 0.into()),
        Err(KeyError::MalformedEncrypted(_))
    ));
    assert!(matches!(
        mutate(&|v| v["kdf"]["name"] = "pbkdf2".into()),
        Err(KeyError::UnsupportedEncryption(_))
    ));
    assert!(matches!(
        mutate(&|v| v["cipher"]["name"] = "aes".into()),
        Err(KeyError::UnsupportedEncryption(_))
    ));
    assert!(matches!(
        mutate(&|v| v["cipher"]["nonce"] = B64.encode([0u8; 12]).into()),
        Err(KeyError::MalformedEncrypted(_))
    ));
    assert!(matches!(
        mutate(&|v| v["ciphertext"] = "!!!".into()),
        Err(KeyError::MalformedEncrypted(_))
    ));
    // A flipped ciphertext byte fails authentication like a wrong password would.
    assert!(matches!(
        mutate(&|v| {
            let mut c = B64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
            c[20] ^= 1;
            v["ciphertext"] = B64.encode(c).into();
        }),
        Err(KeyError::WrongPassword)
    ));
    assert!(matches!(
        mutate(&|v| *v = serde_json::json!({"kdf": 1})),
        Err(KeyError::MalformedEncrypted(_))
    ));
}

#[test]
fn malformed_pems_are_errors() {
    let k = key(KeyAlgorithm::EcdsaP256);
    let pub_pem = k.public_key().to_pem().unwrap();
    let cases = [
        String::new(),
        "not a pem".to_owned(),
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n".to_owned(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_owned(),
        pub_pem.replace("PUBLIC KEY", "CERTIFICATE"),
        pub_pem[..pub_pem.len() / 2].to_owned(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
    ];
    for case in &cases {
        assert!(PublicKey::from_pem(case).is_err(), "accepted {case:?}");
        assert!(
            PrivateKey::from_pem(case, Some(b"pw")).is_err(),
            "accepted {case:?}"
        );
    }
    // A private key where a public key is expected, and the other way round.
    let private_pem = k.to_pkcs8_pem().unwrap();
    assert!(matches!(
        PublicKey::from_pem(&private_pem),
        Err(KeyError::UnexpectedLabel(_))
    ));
    assert!(matches!(
        PrivateKey::from_pem(&pub_pem, None),
        Err(KeyError::UnexpectedLabel(_))
    ));
    // Line wrapping and CRLF do not matter.
    let crlf = pub_pem.replace('\n', "\r\n");
    assert_eq!(PublicKey::from_pem(&crlf).unwrap(), k.public_key());
    // A P-384 SPKI is an unsupported curve, not a crash.
    let mut der = k.public_key().to_der().unwrap();
    // Change the curve OID's last arc (1.2.840.10045.3.1.7 -> …3.1.6).
    let pos = der
        .windows(8)
        .position(|w| w == [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07])
        .unwrap();
    der[pos + 7] = 0x06;
    assert!(matches!(
        PublicKey::from_der(&der),
        Err(KeyError::Unsupported(_))
    ));
    // Garbage DER.
    assert!(PublicKey::from_der(&[0x30, 0x82, 0xff, 0xff]).is_err());
    assert!(PrivateKey::from_pkcs8_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
}

#[test]
fn generate_key_pair_writes_cosign_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = keys::generate_key_pair(dir.path(), b"pw", KeyAlgorithm::EcdsaP256).unwrap();
    assert_eq!(out.private_key_path, dir.path().join("cosign.key"));
    assert_eq!(out.public_key_path, dir.path().join("cosign.pub"));
    let private = PrivateKey::from_file(&out.private_key_path, Some(b"pw")).unwrap();
    let public = PublicKey::from_file(&out.public_key_path).unwrap();
    assert_eq!(private.public_key(), public);
    assert_eq!(public, out.public_key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out.private_key_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwrites an existing private key.
    assert!(matches!(
        keys::generate_key_pair(dir.path(), b"pw", KeyAlgorithm::EcdsaP256),
        Err(KeyError::Io { .. })
    ));
}

// ---- signing and verification ----

#[test]
fn sign_verify_round_trip_both_algorithms() {
    for alg in ALGS {
        let k = key(alg);
        let signed = cosign::sign_image(&k, "127.0.0.1:5000/team/app", DIGEST).unwrap();
        let keys = [k.public_key()];
        let verdict = cosign::verify(&signed, &keys, DIGEST, "team/app").unwrap();
        assert_eq!(verdict.image_digest, DIGEST);
        assert_eq!(verdict.docker_reference, "127.0.0.1:5000/team/app");
        assert_eq!(verdict.algorithm, alg);
        assert_eq!(verdict.key_id, k.public_key().key_id().unwrap());
        assert_eq!(
            verdict.payload_digest,
            cosign::sha256_digest(&signed.payload)
        );
        // host/repo and repo forms are both accepted on either side.
        assert!(cosign::verify(&signed, &keys, DIGEST, "127.0.0.1:5000/team/app").is_ok());
        assert!(cosign::verify(&signed, &keys, DIGEST, "other.example/team/app").is_ok());
        let bare = cosign::sign_image(&k, "team/app", DIGEST).unwrap();
        assert!(cosign::verify(&bare, &keys, DIGEST, "reg.example/team/app").is_ok());
        if alg == KeyAlgorithm::EcdsaP256 {
            // ASN.1 DER: a SEQUENCE.
            assert_eq!(B64.decode(&signed.signature).unwrap()[0], 0x30);
        } else {
            assert_eq!(B64.decode(&signed.signature).unwrap().len(), 64);
        }
    }
}

#[test]
fn every_refusal_has_its_reason() {
    for alg in ALGS {
        let k = key(alg);
        let other = key(alg);
        let trusted = [k.public_key()];
        let signed = cosign::sign_image(&k, "reg.example/team/app", DIGEST).unwrap();

        // Unsigned.
        assert!(matches!(
            cosign::verify_any(&[], &trusted, DIGEST, "team/app"),
            Err(VerifyError::Unsigned { .. })
        ));
        // Signature by another key: one trusted key → bad signature; a set → untrusted key.
        let by_other = cosign::sign_image(&other, "reg.example/team/app", DIGEST).unwrap();
        assert_eq!(
            cosign::verify(&by_other, &trusted, DIGEST, "team/app"),
            Err(VerifyError::BadSignature)
        );
        let third = key(KeyAlgorithm::EcdsaP256).public_key();
        assert_eq!(
            cosign::verify(&by_other, &[k.public_key(), third], DIGEST, "team/app"),
            Err(VerifyError::UntrustedKey(2))
        );
        // No trusted keys at all.
        assert_eq!(
            cosign::verify(&signed, &[], DIGEST, "team/app"),
            Err(VerifyError::UntrustedKey(0))
        );
        // Copied from another repository.
        assert!(matches!(
            cosign::verify(&signed, &trusted, DIGEST, "team/other"),
            Err(VerifyError::ReferenceMismatch { .. })
        ));
        assert!(matches!(
            cosign::verify(&signed, &trusted, DIGEST, "reg.example/team/app/sub"),
            Err(VerifyError::ReferenceMismatch { .. })
        ));
        // Over a different digest.
        assert_eq!(
            cosign::verify(&signed, &trusted, OTHER_DIGEST, "team/app"),
            Err(VerifyError::DigestMismatch {
                expected: OTHER_DIGEST.to_owned(),
                found: DIGEST.to_owned()
            })
        );
        // Tampered payload: re-pointed at another digest without re-signing.
        let tampered = SignedPayload {
            payload: String::from_utf8(signed.payload.clone())
                .unwrap()
                .replace(DIGEST, OTHER_DIGEST)
                .into_bytes(),
            signature: signed.signature.clone(),
        };
        assert_eq!(
            cosign::verify(&tampered, &trusted, OTHER_DIGEST, "team/app"),
            Err(VerifyError::BadSignature)
        );
        // A single added byte.
        let mut padded = signed.clone();
        padded.payload.push(b' ');
        assert_eq!(
            cosign::verify(&padded, &trusted, DIGEST, "team/app"),
            Err(VerifyError::BadSignature)
        );
        // Tampered signature.
        let mut raw = B64.decode(&signed.signature).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0x01;
        let bad_sig = SignedPayload {
            payload: signed.payload.clone(),
            signature: B64.encode(&raw),
        };
        assert_eq!(
            cosign::verify(&bad_sig, &trusted, DIGEST, "team/app"),
            Err(VerifyError::BadSignature)
        );
        // Not base64 at all.
        let garbage = SignedPayload {
            payload: signed.payload.clone(),
            signature: "***".to_owned(),
        };
        assert!(matches!(
            cosign::verify(&garbage, &trusted, DIGEST, "team/app"),
            Err(VerifyError::Malformed(_))
        ));
        // A signed payload that is not a cosign payload.
        let junk = b"{\"hello\":1}".to_vec();
        let junk_signed = SignedPayload {
            signature: cosign::sign(&k, &junk).unwrap(),
            payload: junk,
        };
        assert!(matches!(
            cosign::verify(&junk_signed, &trusted, DIGEST, "team/app"),
            Err(VerifyError::Malformed(_))
        ));
        // Among several candidates, the valid one wins, and otherwise the most telling reason
        // is reported.
        let all = [garbage.clone(), by_other.clone(), signed.clone()];
        assert!(cosign::verify_any(&all, &trusted, DIGEST, "team/app").is_ok());
        assert!(matches!(
            cosign::verify_any(&all, &trusted, DIGEST, "team/other"),
            Err(VerifyError::ReferenceMismatch { .. })
        ));
        assert_eq!(
            cosign::verify_any(&[garbage, by_other], &trusted, DIGEST, "team/app"),
            Err(VerifyError::BadSignature)
        );
    }
}

#[test]
fn signature_tag_scheme() {
    assert_eq!(
        cosign::signature_tag(DIGEST).unwrap(),
        format!("sha256-{}.sig", &DIGEST[7..])
    );
    assert!(cosign::signature_tag("sha512:abc").is_err());
}

// ---- artifacts ----

fn blob_store(artifact: &cosign::SignatureArtifact) -> HashMap<String, Vec<u8>> {
    artifact
        .blobs
        .iter()
        .map(|b| (b.descriptor.digest.clone(), b.bytes.clone()))
        .collect()
}

#[test]
fn tag_scheme_manifest_round_trip() {
    let k = key(KeyAlgorithm::EcdsaP256);
    let a = cosign::sign_image(&k, "reg.example/team/app", DIGEST).unwrap();
    let b =
        cosign::sign_image(&key(KeyAlgorithm::Ed25519), "reg.example/team/app", DIGEST).unwrap();
    let artifact = cosign::tag_scheme_manifest(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(artifact.digest, cosign::sha256_digest(&artifact.manifest));
    let json: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
    assert_eq!(json["schemaVersion"], 2);
    assert_eq!(json["mediaType"], cosign::OCI_MANIFEST);
    assert_eq!(json["config"]["mediaType"], cosign::OCI_CONFIG);
    assert!(json.get("subject").is_none());
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["mediaType"], SIMPLE_SIGNING_MEDIA_TYPE);
    assert_eq!(
        layers[0]["annotations"][SIGNATURE_ANNOTATION],
        a.signature.as_str()
    );
    // The config blob is among the blobs and its diff_ids name the payloads.
    let store = blob_store(&artifact);
    let config: serde_json::Value =
        serde_json::from_slice(&store[json["config"]["digest"].as_str().unwrap()]).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], layers[0]["digest"]);

    let read = cosign::read_signatures(&artifact.manifest, |d: &Descriptor| {
        store.get(&d.digest).cloned().ok_or("missing")
    })
    .unwrap();
    assert_eq!(read, vec![a, b]);
    assert!(cosign::verify_any(&read, &[k.public_key()], DIGEST, "team/app").is_ok());
}

#[test]
fn referrer_manifest_round_trip() {
    let k = key(KeyAlgorithm::EcdsaP256);
    let signed = cosign::sign_image(&k, "reg.example/team/app", DIGEST).unwrap();
    let subject = Descriptor {
        media_type: cosign::OCI_MANIFEST.to_owned(),
        digest: DIGEST.to_owned(),
        size: 1234,
        artifact_type: None,
        annotations: None,
    };
    let artifact =
        cosign::referrer_manifest(subject.clone(), std::slice::from_ref(&signed)).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
    assert_eq!(json["artifactType"], SIGNATURE_ARTIFACT_TYPE);
    assert_eq!(json["config"]["mediaType"], OCI_EMPTY);
    assert_eq!(json["config"]["size"], 2);
    assert_eq!(
        json["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(json["subject"]["digest"], DIGEST);
    let parsed = cosign::parse_signature_manifest(&artifact.manifest).unwrap();
    assert_eq!(parsed.subject, Some(subject));
    assert_eq!(
        parsed.artifact_type.as_deref(),
        Some(SIGNATURE_ARTIFACT_TYPE)
    );
    let store = blob_store(&artifact);
    let read = cosign::read_signatures(&artifact.manifest, |d: &Descriptor| {
        store.get(&d.digest).cloned().ok_or("missing")
    })
    .unwrap();
    assert_eq!(read, vec![signed]);
}

#[test]
fn signature_manifest_refusals() {
    let k = key(KeyAlgorithm::EcdsaP256);
    let signed = cosign::sign_image(&k, "reg.example/team/app", DIGEST).unwrap();
    let artifact = cosign::tag_scheme_manifest(std::slice::from_ref(&signed)).unwrap();
    // A fetched blob that does not match its descriptor (a swapped payload).
    let err = cosign::read_signatures(&artifact.manifest, |_: &Descriptor| {
        Ok::<_, String>(b"{}".to_vec())
    })
    .unwrap_err();
    assert!(matches!(err, ArtifactError::BlobMismatch { .. }), "{err}");
    // Fetch failures are reported.
    let err = cosign::read_signatures(&artifact.manifest, |_: &Descriptor| {
        Err::<Vec<u8>, _>("gone")
    })
    .unwrap_err();
    assert!(matches!(err, ArtifactError::Fetch { .. }), "{err}");
    // Malformed manifests.
    for bad in [
        &b""[..],
        b"{}",
        b"[]",
        b"{\"schemaVersion\":1,\"config\":{\"mediaType\":\"x\",\"digest\":\"y\",\"size\":1}}",
        b"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"config\":{\"mediaType\":\"x\",\"digest\":\"y\",\"size\":1}}",
        b"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"y\",\"size\":-1}}",
    ] {
        assert!(cosign::parse_signature_manifest(bad).is_err(), "{bad:?}");
    }
    // An oversized payload layer is refused before fetching.
    let mut json: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
    json["layers"][0]["size"] = (u64::MAX).into();
    assert!(cosign::parse_signature_manifest(&serde_json::to_vec(&json).unwrap()).is_err());
    // Layers that are not signatures are skipped: the manifest reads as unsigned.
    let mut json: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
    json["layers"][0]["annotations"] = serde_json::json!({});
    let parsed = cosign::parse_signature_manifest(&serde_json::to_vec(&json).unwrap()).unwrap();
    assert!(parsed.layers.is_empty());
    assert!(cosign::tag_scheme_manifest(&[]).is_err());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn payload_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = SimpleSigning::parse(&bytes);
        }

        #[test]
        fn payload_parser_never_panics_on_near_json(s in r#"\{"critical":\{"identity":\{"docker-reference":"[a-z/.:]{0,20}"\},"image":\{"docker-manifest-digest":"sha256:[0-9a-f]{0,70}"\},"type":"[a-z ]{0,40}"\}(,"optional":(null|\{\}|1))?\}"#) {
            let _ = SimpleSigning::parse(s.as_bytes());
        }

        #[test]
        fn manifest_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = cosign::parse_signature_manifest(&bytes);
        }

        #[test]
        fn key_parsers_never_panic(s in "(-----BEGIN (PUBLIC KEY|PRIVATE KEY|ENCRYPTED SIGSTORE PRIVATE KEY)-----\n)?[A-Za-z0-9+/=\n]{0,300}(-----END PUBLIC KEY-----)?") {
            let _ = PublicKey::from_pem(&s);
            let _ = PrivateKey::from_pem(&s, Some(b"pw"));
        }

        #[test]
        fn der_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PublicKey::from_der(&bytes);
            let _ = PrivateKey::from_pkcs8_der(&bytes);
        }

        #[test]
        fn signature_decoding_never_panics(sig in "[A-Za-z0-9+/=]{0,200}") {
            let k = PublicKey::from_pem(
                &PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap().public_key().to_pem().unwrap(),
            ).unwrap();
            let _ = cosign::verify_signature(b"payload", &sig, &k);
        }
    }
}
