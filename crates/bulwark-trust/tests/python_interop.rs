//! Cross-checks against an independent implementation: Python's `cryptography`.
//! Python verifies signatures Bulwark made, and Bulwark verifies signatures (and reads
//! PKCS#8 keys) Python made. Skipped when `cryptography` is missing, unless
//! `BULWARK_REQUIRE_CLIENTS=1`, which turns its absence into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use bulwark_trust::cosign::{self, SignedPayload};
use bulwark_trust::keys::{KeyAlgorithm, PrivateKey, PublicKey};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn python_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("BULWARK_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!("python3 with `cryptography` is required (BULWARK_REQUIRE_CLIENTS=1)");
        }
        eprintln!("skipping: python3 `cryptography` is not installed");
    }
    ok
}

/// Runs `script` with `input` on stdin; returns stdout, panicking with stderr on failure.
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

const PY_VERIFY: &str = r#"
import sys, json, base64
from cryptography.hazmat.primitives import serialization, hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.exceptions import InvalidSignature
req = json.load(sys.stdin)
key = serialization.load_pem_public_key(req["pub"].encode())
results = []
for item in req["items"]:
    payload = base64.b64decode(item["payload"])
    sig = base64.b64decode(item["sig"])
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            assert key.curve.name == "secp256r1"
            key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
        else:
            assert isinstance(key, ed25519.Ed25519PublicKey)
            key.verify(sig, payload)
        results.append(True)
    except InvalidSignature:
        results.append(False)
print(json.dumps(results))
"#;

const PY_SIGN: &str = r#"
import sys, json, base64
from cryptography.hazmat.primitives import serialization, hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
req = json.load(sys.stdin)
if req["alg"] == "p256":
    key = ec.generate_private_key(ec.SECP256R1())
    sign = lambda p: key.sign(p, ec.ECDSA(hashes.SHA256()))
else:
    key = ed25519.Ed25519PrivateKey.generate()
    sign = lambda p: key.sign(p)
payload = base64.b64decode(req["payload"])
out = {
    "pub": key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
    "priv": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    "sigs": [base64.b64encode(sign(payload)).decode() for _ in range(req["n"])],
}
print(json.dumps(out))
"#;

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn python_verifies_bulwark_signatures() {
    if !python_available() {
        return;
    }
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
        let key = PrivateKey::generate(alg).unwrap();
        let mut items = Vec::new();
        for i in 0..8 {
            let signed =
                cosign::sign_image(&key, &format!("reg.example/team/app{i}"), DIGEST).unwrap();
            items.push(
                serde_json::json!({"payload": b64(&signed.payload), "sig": signed.signature}),
            );
        }
        // A tampered payload must fail in Python too.
        let signed = cosign::sign_image(&key, "reg.example/team/app", DIGEST).unwrap();
        let mut tampered = signed.payload.clone();
        tampered.push(b' ');
        items.push(serde_json::json!({"payload": b64(&tampered), "sig": signed.signature}));

        let req = serde_json::json!({"pub": key.public_key().to_pem().unwrap(), "items": items});
        let out: Vec<bool> = serde_json::from_str(&python(PY_VERIFY, &req.to_string())).unwrap();
        let mut expected = vec![true; 8];
        expected.push(false);
        assert_eq!(out, expected, "{alg}");
    }
}

#[test]
fn bulwark_verifies_python_signatures() {
    if !python_available() {
        return;
    }
    for (alg, name) in [
        (KeyAlgorithm::EcdsaP256, "p256"),
        (KeyAlgorithm::Ed25519, "ed25519"),
    ] {
        let payload = bulwark_trust::SimpleSigning::new("reg.example/team/app", DIGEST)
            .unwrap()
            .to_bytes()
            .unwrap();
        // Many ECDSA signatures: Python's `s` is not normalised, so both halves occur.
        let req = serde_json::json!({"alg": name, "payload": b64(&payload), "n": 16});
        let out: serde_json::Value =
            serde_json::from_str(&python(PY_SIGN, &req.to_string())).unwrap();
        let public = PublicKey::from_pem(out["pub"].as_str().unwrap()).unwrap();
        assert_eq!(public.algorithm(), alg);
        // Python's PKCS#8 private key reads and matches.
        let private = PrivateKey::from_pem(out["priv"].as_str().unwrap(), None).unwrap();
        assert_eq!(private.public_key(), public);
        for sig in out["sigs"].as_array().unwrap() {
            let signed = SignedPayload {
                payload: payload.clone(),
                signature: sig.as_str().unwrap().to_owned(),
            };
            let verdict =
                cosign::verify(&signed, std::slice::from_ref(&public), DIGEST, "team/app")
                    .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(verdict.algorithm, alg);
            // Wrong digest is still refused for a foreign signature.
            assert!(
                cosign::verify(
                    &signed,
                    std::slice::from_ref(&public),
                    &DIGEST.replace('0', "1"),
                    "team/app"
                )
                .is_err()
            );
        }
    }
}
