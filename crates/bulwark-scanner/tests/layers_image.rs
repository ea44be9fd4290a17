//! Whole images: OCI layouts (with indexes and platforms), `docker save`
//! archives (classic and OCI-in-tar), blob verification, and packages from
//! a real dpkg database attributed to layers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod layers_support;

use std::collections::BTreeMap;

use bulwark_oci::{Digest, ParsedManifest};
use bulwark_scanner::distro::DistroId;
use bulwark_scanner::image::{
    BlobSource, Compression, DockerArchive, ImageError, Limits, OciLayout, Platform, ResolvedImage,
    ScanOptions, Selector, default_wanted, scan_docker_archive, scan_image, scan_oci_layout,
};
use bulwark_scanner::inventory;
use layers_support::*;
use serde_json::json;

/// `(media type, blob, uncompressed tar)` of a gzip layer.
fn gz_layer(l: Layer) -> (&'static str, Vec<u8>, Vec<u8>) {
    let tar = l.tar();
    (OCI_LAYER_GZIP, gzip(&tar), tar)
}

fn os_release_layer(tag: &str) -> Layer {
    Layer::new()
        .dir("etc")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("usr/lib/os-release", &fixture("os-release/debian-12"))
        .file("built-for", tag.as_bytes())
}

/// Also reads the marker files these tests put in images.
fn wanted(path: &str) -> bool {
    default_wanted(path) || path == "built-for" || path == "v"
}

fn options(selector: Selector) -> ScanOptions {
    ScanOptions {
        selector,
        wanted,
        ..ScanOptions::default()
    }
}

fn platform(s: &str) -> Selector {
    Selector {
        reference: None,
        platform: Platform::parse(s).unwrap(),
    }
}

#[test]
fn oci_layout_index_picks_linux_amd64_of_two_platforms() {
    let mut blobs = Blobs::default();
    let arm = blobs.image("arm64", &[gz_layer(os_release_layer("arm64"))]);
    let amd = blobs.image("amd64", &[gz_layer(os_release_layer("amd64"))]);
    let image_index = serde_json::to_vec(&index(vec![
        with(
            arm.clone(),
            "platform",
            json!({"os": "linux", "architecture": "arm64", "variant": "v8"}),
        ),
        with(
            amd.clone(),
            "platform",
            json!({"os": "linux", "architecture": "amd64"}),
        ),
        // A BuildKit attestation manifest.
        with(
            descriptor(OCI_MANIFEST, b"attestation"),
            "platform",
            json!({"os": "unknown", "architecture": "unknown"}),
        ),
    ]))
    .unwrap();
    let index_desc = with(
        descriptor(OCI_INDEX, &image_index),
        "annotations",
        json!({"org.opencontainers.image.ref.name": "latest"}),
    );
    blobs.add(image_index);
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![index_desc]));

    let scanned = scan_oci_layout(dir.path(), &options(Selector::default())).unwrap();
    assert_eq!(scanned.config.architecture.as_deref(), Some("amd64"));
    assert_eq!(scanned.files.read("built-for"), Some(&b"amd64"[..]));
    assert_eq!(
        scanned
            .manifest_digest
            .as_ref()
            .map(Digest::to_string)
            .as_deref(),
        amd["digest"].as_str()
    );
    let distro = scanned.distro.as_ref().unwrap();
    assert_eq!(distro.id, DistroId::Debian);
    assert_eq!(distro.version_id.as_deref(), Some("12"));
    assert_eq!(scanned.layer_summaries[0].compression, Compression::Gzip);

    let arm_scan = scan_oci_layout(dir.path(), &options(platform("linux/arm64"))).unwrap();
    assert_eq!(arm_scan.files.read("built-for"), Some(&b"arm64"[..]));
    let named = Selector {
        reference: Some("latest".into()),
        platform: Platform::parse("linux/arm64/v8").unwrap(),
    };
    let arm_scan = scan_oci_layout(dir.path(), &options(named)).unwrap();
    assert_eq!(arm_scan.config.architecture.as_deref(), Some("arm64"));

    let err = scan_oci_layout(dir.path(), &options(platform("linux/s390x"))).unwrap_err();
    assert!(matches!(err, ImageError::NoMatch(_)), "{err}");
    assert!(
        err.to_string().contains("linux/amd64"),
        "lists what exists: {err}"
    );

    // The same two platform manifests listed directly in index.json.
    let dir2 = tempfile::tempdir().unwrap();
    blobs.write_layout(
        dir2.path(),
        &index(vec![
            with(
                arm,
                "platform",
                json!({"os": "linux", "architecture": "arm64"}),
            ),
            with(
                amd,
                "platform",
                json!({"os": "linux", "architecture": "amd64"}),
            ),
        ]),
    );
    let scanned = scan_oci_layout(dir2.path(), &options(Selector::default())).unwrap();
    assert_eq!(scanned.files.read("built-for"), Some(&b"amd64"[..]));
}

#[test]
fn oci_layout_reference_names() {
    let mut blobs = Blobs::default();
    let v1 = blobs.image("amd64", &[gz_layer(Layer::new().file("v", b"1"))]);
    let v2 = blobs.image("amd64", &[gz_layer(Layer::new().file("v", b"2"))]);
    let name = |d: serde_json::Value, n: &str| {
        with(
            d,
            "annotations",
            json!({"org.opencontainers.image.ref.name": n}),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![name(v1, "v1"), name(v2, "v2")]));
    let pick = |r: Option<&str>| {
        scan_oci_layout(
            dir.path(),
            &options(Selector {
                reference: r.map(str::to_owned),
                ..Selector::default()
            }),
        )
    };
    assert_eq!(pick(Some("v2")).unwrap().files.read("v"), Some(&b"2"[..]));
    assert_eq!(pick(Some("v1")).unwrap().files.read("v"), Some(&b"1"[..]));
    let err = pick(None).unwrap_err();
    assert!(matches!(err, ImageError::NoMatch(_)), "{err}");
    assert!(err.to_string().contains("v1, v2"), "{err}");
    assert!(matches!(pick(Some("v3")), Err(ImageError::NoMatch(_))));
}

#[test]
fn layout_blobs_are_verified() {
    let mut blobs = Blobs::default();
    let m = blobs.image(
        "amd64",
        &[
            gz_layer(Layer::new().file("a", b"1")),
            gz_layer(Layer::new().file("b", b"2")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m.clone()]));
    assert!(scan_oci_layout(dir.path(), &ScanOptions::default()).is_ok());

    // Swap the second layer's blob for the first's content.
    let manifest: serde_json::Value = serde_json::from_slice(
        &blobs.blobs[&Digest::parse(m["digest"].as_str().unwrap()).unwrap()],
    )
    .unwrap();
    let digest_of =
        |i: usize| Digest::parse(manifest["layers"][i]["digest"].as_str().unwrap()).unwrap();
    let path_of = |d: &Digest| dir.path().join("blobs/sha256").join(d.hex());
    let first = std::fs::read(path_of(&digest_of(0))).unwrap();
    let second = path_of(&digest_of(1));
    let original = std::fs::read(&second).unwrap();
    std::fs::write(&second, &first).unwrap();
    let err = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap_err();
    match &err {
        ImageError::Layer { index: 1, .. } => {}
        other => panic!("want layer 1 context, got {other}"),
    }
    assert!(
        matches!(
            err.root(),
            ImageError::DigestMismatch { .. } | ImageError::SizeMismatch { .. }
        ),
        "{err}"
    );
    // Same size, one byte flipped.
    let mut flipped = original.clone();
    let n = flipped.len();
    flipped[n - 1] ^= 1;
    std::fs::write(&second, &flipped).unwrap();
    let err = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap_err();
    assert!(!matches!(err.root(), ImageError::Layer { .. }));
    assert!(
        matches!(
            err.root(),
            ImageError::DigestMismatch { .. } | ImageError::MalformedLayer(_)
        ),
        "{err}"
    );
    std::fs::write(&second, &original).unwrap();

    // A missing blob, and a corrupted config.
    std::fs::remove_file(path_of(&digest_of(0))).unwrap();
    let err = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap_err();
    assert!(matches!(err.root(), ImageError::BlobNotFound(_)), "{err}");
    let config = Digest::parse(manifest["config"]["digest"].as_str().unwrap()).unwrap();
    let mut bytes = std::fs::read(path_of(&config)).unwrap();
    bytes[0] = b' ';
    std::fs::write(path_of(&config), bytes).unwrap();
    let err = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn config_diff_ids_must_match_the_layers() {
    let tar = Layer::new().file("a", b"1").tar();
    let gz = gzip(&tar);
    let config = config_json("amd64", &[b"not the layer"]);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER_GZIP, &gz)],
    }))
    .unwrap();
    let mut store = BTreeMap::new();
    store.insert(sha(&config), config);
    store.insert(sha(&gz), gz);
    let parsed = ParsedManifest::parse(Some(OCI_MANIFEST), &manifest).unwrap();
    let image = ResolvedImage::from_manifest(Some(sha(&manifest)), &parsed).unwrap();
    let err = scan_image(&store, &image, &ScanOptions::default()).unwrap_err();
    assert!(
        matches!(err.root(), ImageError::DiffIdMismatch { .. }),
        "{err}"
    );
}

/// The fixture database with base-files upgraded and a package added.
fn upgraded_status() -> Vec<u8> {
    let status = String::from_utf8(fixture("dpkg/status")).unwrap();
    assert!(status.contains("Version: 12.4+deb12u11\n"));
    let mut s = status.replacen("Version: 12.4+deb12u11\n", "Version: 12.4+deb12u12\n", 1);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(
        "\nPackage: jq\nStatus: install ok installed\nArchitecture: amd64\n\
         Version: 1.6-2.1\nDescription: command-line JSON processor\n",
    );
    s.into_bytes()
}

#[test]
fn dpkg_packages_are_attributed_to_the_layer_that_introduced_them() {
    let base_status = fixture("dpkg/status");
    let want_base = inventory::parse("var/lib/dpkg/status", &base_status, None)
        .unwrap()
        .unwrap();
    assert!(want_base.len() > 20);

    let l0 = os_release_layer("amd64")
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", &base_status);
    let l1 = Layer::new().file("unrelated", b"x");
    let l2 = Layer::new()
        .file("var/lib/dpkg/status", &upgraded_status())
        .file("var/lib/dpkg/status-old", &base_status);
    let l3 = Layer::new()
        .dir("var/lib/dpkg/status.d")
        .file(
            "var/lib/dpkg/status.d/tzdata",
            &fixture("dpkg/status.d/tzdata"),
        )
        .file(
            "var/lib/dpkg/status.d/tzdata.md5sums",
            &fixture("dpkg/status.d/tzdata.md5sums"),
        );
    let mut blobs = Blobs::default();
    let l2 = l2.tar();
    let layers = [
        gz_layer(l0),
        gz_layer(l1),
        (OCI_LAYER_ZSTD, zstd(&l2), l2),
        gz_layer(l3),
    ];
    let m = blobs.image("amd64", &layers);
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));

    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    assert!(scanned.warnings.list.is_empty(), "{:?}", scanned.warnings);
    assert_eq!(scanned.layers.len(), 4);
    let layer_digests: Vec<Digest> = layers.iter().map(|(_, b, _)| sha(b)).collect();
    assert_eq!(scanned.layers, layer_digests);
    let dpkg: Vec<_> = scanned
        .packages
        .iter()
        .filter(|p| p.package.path == "var/lib/dpkg/status")
        .collect();
    assert_eq!(dpkg.len(), want_base.len() + 1);
    for p in &dpkg {
        assert_eq!(p.file_layer, 2, "{}", p.package.name);
        let want_layer = match p.package.name.as_str() {
            "jq" | "base-files" => 2,
            _ => 0,
        };
        assert_eq!(p.layer, want_layer, "{}", p.package.name);
        assert_eq!(p.layer_digest, layer_digests[want_layer]);
        assert!(
            p.package.purl.contains("distro=debian-12"),
            "{}",
            p.package.purl
        );
    }
    let base_files = dpkg
        .iter()
        .find(|p| p.package.name == "base-files")
        .unwrap();
    assert_eq!(base_files.package.version, "12.4+deb12u12");

    let tzdata: Vec<_> = scanned
        .packages
        .iter()
        .filter(|p| p.package.path.starts_with("var/lib/dpkg/status.d/"))
        .collect();
    assert_eq!(tzdata.len(), 1);
    assert_eq!(
        (tzdata[0].package.name.as_str(), tzdata[0].layer),
        ("tzdata", 3)
    );

    // A database replaced wholesale (every version different) in a later
    // layer: every package is that layer's.
    let replaced = String::from_utf8(base_status.clone())
        .unwrap()
        .replace("\nVersion: ", "\nVersion: 1:");
    let l1 = Layer::new().file("var/lib/dpkg/status", replaced.as_bytes());
    let mut blobs = Blobs::default();
    let m = blobs.image(
        "amd64",
        &[
            gz_layer(Layer::new().file("var/lib/dpkg/status", &base_status)),
            gz_layer(l1),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    assert_eq!(scanned.packages.len(), want_base.len());
    assert!(
        scanned
            .packages
            .iter()
            .all(|p| p.layer == 1 && p.file_layer == 1)
    );
    assert!(scanned.distro.is_none());

    // Whited out, then reinstalled unchanged: the reinstalling layer's.
    let mut blobs = Blobs::default();
    let m = blobs.image(
        "amd64",
        &[
            gz_layer(Layer::new().file("var/lib/dpkg/status", &base_status)),
            gz_layer(Layer::new().whiteout("var/lib/dpkg/status")),
            gz_layer(Layer::new().file("var/lib/dpkg/status", &base_status)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    assert!(scanned.packages.iter().all(|p| p.layer == 2));
}

/// A classic `docker save` archive: `<id>/layer.tar`, `<hex>.json`,
/// `manifest.json`, one layer linked to another's file.
fn docker_save(tag: &str, layers: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let tars: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let config = config_json("amd64", &tars);
    let config_name = format!("{}.json", sha(&config).hex());
    let mut archive = Layer::new().file(&config_name, &config);
    let mut names = Vec::new();
    for (i, tar) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        let name = format!("{id}/layer.tar");
        archive = archive
            .dir(&format!("{id}/"))
            .file(&format!("{id}/VERSION"), b"1.0");
        // Identical layers are stored once; later ones link to it.
        match layers[..i].iter().position(|t| t == tar) {
            Some(j) => {
                archive = archive.symlink(&name, &format!("../{:064x}/layer.tar", j + 1));
            }
            None => archive = archive.file(&name, tar),
        }
        names.push(name);
    }
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name, "RepoTags": [tag], "Layers": names,
    }]))
    .unwrap();
    (archive.file("manifest.json", &manifest).tar(), config)
}

#[test]
fn docker_save_archive() {
    let l0 = os_release_layer("docker")
        .file("var/lib/dpkg/status", &fixture("dpkg/status"))
        .tar();
    let l1 = Layer::new()
        .file_mode("usr/bin/newuidmap", b"", 0o4755)
        .tar();
    let l2 = Layer::new()
        .file("app/Cargo.lock", &fixture("cargo/v4/Cargo.lock"))
        .tar();
    let (archive, config) = docker_save(
        "example/app:1.0",
        &[l0.clone(), l1.clone(), l2.clone(), l1.clone()],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "app.tar", &archive);

    let scanned = scan_docker_archive(&path, &ScanOptions::default()).unwrap();
    assert_eq!(scanned.manifest_digest, None);
    assert_eq!(scanned.config_digest, sha(&config));
    assert_eq!(scanned.layers, [sha(&l0), sha(&l1), sha(&l2), sha(&l1)]);
    assert_eq!(scanned.config.user.as_deref(), Some("1000"));
    assert_eq!(scanned.distro.as_ref().unwrap().id, DistroId::Debian);
    assert!(
        scanned
            .files
            .get("usr/bin/newuidmap")
            .unwrap()
            .info
            .is_setuid()
    );
    assert_eq!(scanned.files.get("usr/bin/newuidmap").unwrap().layer, 3);
    let cargo: Vec<_> = scanned
        .packages
        .iter()
        .filter(|p| p.package.path == "app/Cargo.lock")
        .collect();
    assert!(!cargo.is_empty());
    assert!(
        cargo
            .iter()
            .all(|p| p.layer == 2 && p.layer_digest == sha(&l2))
    );
    assert!(
        scanned
            .packages
            .iter()
            .any(|p| p.package.name == "bash" && p.layer == 0)
    );

    // Selection by tag, and tags listed when nothing matches.
    let archive_ = DockerArchive::open(&path, &Limits::default()).unwrap();
    assert_eq!(archive_.repo_tags(), ["example/app:1.0"]);
    let by_tag = |r: &str| {
        archive_.resolve(
            &Selector {
                reference: Some(r.into()),
                ..Selector::default()
            },
            &Limits::default(),
        )
    };
    assert!(by_tag("example/app:1.0").is_ok());
    assert!(by_tag("1.0").is_ok());
    let err = by_tag("2.0").unwrap_err();
    assert!(err.to_string().contains("example/app:1.0"), "{err}");

    // A tampered layer.tar no longer matches the config's diff_ids.
    let tampered: Vec<u8> = {
        let i = archive.windows(9).position(|w| w == b"ID=debian").unwrap();
        let mut a = archive.clone();
        a[i + 3] = b'D';
        a
    };
    let bad = write_temp(dir.path(), "bad.tar", &tampered);
    let err = scan_docker_archive(&bad, &ScanOptions::default()).unwrap_err();
    assert!(
        matches!(err.root(), ImageError::DigestMismatch { .. }),
        "{err}"
    );

    // Compressed archives are refused with a hint.
    let gz = write_temp(dir.path(), "app.tar.gz", &gzip(&archive));
    let err = scan_docker_archive(&gz, &ScanOptions::default()).unwrap_err();
    assert!(err.to_string().contains("decompress"), "{err}");
}

#[test]
fn oci_layout_in_a_docker_archive() {
    let l0 = os_release_layer("oci-archive").tar();
    let l1 = Layer::new()
        .file("lib/apk/db/installed", &fixture("apk/installed"))
        .tar();
    let mut blobs = Blobs::default();
    let m = blobs.image(
        "amd64",
        &[(OCI_LAYER, l0.clone(), l0), (OCI_LAYER, l1.clone(), l1)],
    );
    let named = with(
        m.clone(),
        "annotations",
        json!({
            "io.containerd.image.name": "docker.io/library/app:2",
            "org.opencontainers.image.ref.name": "2",
        }),
    );
    // Docker 25 writes manifest.json too; the OCI index is preferred.
    let tar = blobs.layout_tar(&index(vec![named]), &[("manifest.json", b"[]".to_vec())]);
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(dir.path(), "oci.tar", &tar);
    let by = |r: Option<&str>| {
        scan_docker_archive(
            &path,
            &options(Selector {
                reference: r.map(str::to_owned),
                ..Selector::default()
            }),
        )
    };
    for r in [None, Some("2"), Some("docker.io/library/app:2")] {
        let scanned = by(r).unwrap();
        assert_eq!(
            scanned
                .manifest_digest
                .as_ref()
                .map(Digest::to_string)
                .as_deref(),
            m["digest"].as_str()
        );
        let apk: Vec<_> = scanned
            .packages
            .iter()
            .filter(|p| p.package.path == "lib/apk/db/installed")
            .collect();
        assert!(!apk.is_empty());
        assert!(apk.iter().all(|p| p.layer == 1));
    }
    assert!(matches!(by(Some("3")), Err(ImageError::NoMatch(_))));
}

#[test]
fn blob_sources_feed_scan_image() {
    // The registry's path: a manifest from its store, blobs by digest.
    let tar = os_release_layer("store").tar();
    let mut blobs = Blobs::default();
    let m = blobs.image("amd64", &[(OCI_LAYER_ZSTD, zstd(&tar), tar)]);
    let digest = Digest::parse(m["digest"].as_str().unwrap()).unwrap();
    let manifest = ParsedManifest::parse(Some(OCI_MANIFEST), &blobs.blobs[&digest]).unwrap();
    let image = ResolvedImage::from_manifest(Some(digest.clone()), &manifest).unwrap();
    let source: &dyn BlobSource = &blobs.blobs;
    let scanned = scan_image(source, &image, &ScanOptions::default()).unwrap();
    assert_eq!(scanned.manifest_digest, Some(digest));
    assert_eq!(scanned.layer_summaries[0].compression, Compression::Zstd);
    assert!(scanned.distro.is_some());

    // Limits apply to images as a whole too.
    let limits = Limits {
        max_layers: 0,
        ..Limits::default()
    };
    let err = scan_image(
        source,
        &image,
        &ScanOptions {
            limits,
            ..ScanOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");
}

#[test]
fn results_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<bulwark_scanner::image::ScannedImage>();
    send_sync::<DockerArchive>();
    send_sync::<OciLayout>();
    send_sync::<ImageError>();
}

#[test]
fn invalid_layouts() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        OciLayout::open(dir.path()),
        Err(ImageError::InvalidLayout(_))
    ));
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    assert!(matches!(
        OciLayout::open(dir.path()),
        Err(ImageError::InvalidLayout(_))
    ));
    std::fs::write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let layout = OciLayout::open(dir.path()).unwrap();
    assert!(
        layout
            .resolve(&Selector::default(), &Limits::default())
            .is_err()
    );
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&index(vec![])).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        layout.resolve(&Selector::default(), &Limits::default()),
        Err(ImageError::NoMatch(_))
    ));
    let not_tar = write_temp(dir.path(), "x.tar", b"definitely not a tar archive");
    assert!(DockerArchive::open(&not_tar, &Limits::default()).is_err());
    let empty = write_temp(dir.path(), "empty.tar", &Layer::new().file("x", b"").tar());
    assert!(matches!(
        DockerArchive::open(&empty, &Limits::default()),
        Err(ImageError::InvalidLayout(_))
    ));
}
