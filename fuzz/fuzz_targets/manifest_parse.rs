//! Feeds arbitrary bytes to `ParsedManifest::parse` as a manifest pushed with one of the four
//! manifest media types (chosen by the first input byte), and checks what it accepts.

#![no_main]

use bulwark_oci::media_types::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use bulwark_oci::{Descriptor, Digest, ManifestKind, ParsedManifest};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let media_type = TYPES[usize::from(first & 3)];
    // Bits 2-3 vary the header form: plain, with parameters, absent, or empty.
    let with_params = format!("{media_type}; charset=utf-8");
    let content_type = match (first >> 2) & 3 {
        0 => Some(media_type),
        1 => Some(with_params.as_str()),
        2 => None,
        _ => Some(""),
    };
    let Ok(m) = ParsedManifest::parse(content_type, body) else {
        return;
    };

    assert!(TYPES.contains(&m.media_type.as_str()), "{:?}", m.media_type);
    if let Some(ct) = content_type.filter(|c| !c.is_empty()) {
        assert_eq!(
            m.media_type, media_type,
            "accepted with Content-Type {ct:?}"
        );
    }
    let is_index = m.media_type == OCI_INDEX || m.media_type == DOCKER_MANIFEST_LIST;
    match m.kind {
        ManifestKind::Image => {
            assert!(!is_index);
            assert!(m.config.is_some(), "image manifest without config");
            assert!(m.manifests.is_empty());
        }
        ManifestKind::Index => {
            assert!(is_index);
            assert!(m.config.is_none() && m.layers.is_empty());
        }
    }
    if m.media_type.starts_with("application/vnd.docker.") {
        assert!(m.artifact_type.is_none());
    }
    let _ = m.referrer_artifact_type();

    let descriptors = m
        .config
        .iter()
        .chain(&m.layers)
        .chain(&m.manifests)
        .chain(&m.subject);
    for d in descriptors {
        assert!(!d.media_type.is_empty());
        // Digests are stored and compared as strings: they must print back as they parse.
        let printed = d.digest.to_string();
        assert_eq!(Digest::parse(&printed).as_ref(), Ok(&d.digest));
        // Descriptors are re-serialized (referrers API); that must round-trip.
        let json = serde_json::to_vec(d).expect("descriptor serializes");
        let back: Descriptor = serde_json::from_slice(&json).expect("descriptor re-parses");
        assert_eq!(&back, d);
    }
    for d in m.required_blobs() {
        assert!(!d.is_foreign());
    }
});
