//! `read_layer` on layers built here: compression by media type and by
//! magic bytes, entry metadata, hostile paths, and every limit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod layers_support;

use std::time::{Duration, Instant};

use bulwark_scanner::image::{
    Compression, Content, EntryKind, ImageError, LayerSpec, Limits, read_layer,
};
use layers_support::*;
use proptest::prelude::*;

fn spec(media_type: &str) -> LayerSpec {
    LayerSpec {
        media_type: media_type.into(),
        ..LayerSpec::default()
    }
}

fn sample() -> Vec<u8> {
    Layer::new()
        .dir("./")
        .dir("./etc/")
        .file("./etc/os-release", b"ID=alpine\nVERSION_ID=3.18.4\n")
        .file_mode("usr/bin/sudo", b"ELF", 0o4755)
        .file_mode("/usr/bin/wall", b"ELF", 0o2755)
        .symlink("bin", "usr/bin")
        .hardlink("usr/bin/sudoedit", "./usr/bin/sudo")
        .raw("dev/null", tar::EntryType::Char, 0o666, None, b"")
        .tar()
}

#[test]
fn plain_gzip_and_zstd_read_alike() {
    let tar = sample();
    let wanted = |p: &str| p == "etc/os-release";
    let (plain, s0) = entries(&tar, &spec(OCI_LAYER), &Limits::default(), &wanted).unwrap();
    let (gz, s1) = entries(
        &gzip(&tar),
        &spec(OCI_LAYER_GZIP),
        &Limits::default(),
        &wanted,
    )
    .unwrap();
    let (zs, s2) = entries(
        &zstd(&tar),
        &spec(OCI_LAYER_ZSTD),
        &Limits::default(),
        &wanted,
    )
    .unwrap();
    assert_eq!(plain, gz);
    assert_eq!(plain, zs);
    assert_eq!(s0.compression, Compression::None);
    assert_eq!(s1.compression, Compression::Gzip);
    assert_eq!(s2.compression, Compression::Zstd);
    assert_eq!(s1.uncompressed_bytes, tar.len() as u64);
    assert_eq!(s1.compressed_bytes, gzip(&tar).len() as u64);
    assert_eq!(s0.digest, sha(&tar));
    // The root entry `./` is not passed on.
    assert_eq!(plain.len(), 7);
}

#[test]
fn compression_is_sniffed_not_trusted() {
    let tar = sample();
    // Declared gzip, actually plain; declared plain, actually zstd; unknown.
    for (mt, blob, want) in [
        (OCI_LAYER_GZIP, tar.clone(), Compression::None),
        (OCI_LAYER, zstd(&tar), Compression::Zstd),
        ("", gzip(&tar), Compression::Gzip),
    ] {
        let (e, s) = entries(&blob, &spec(mt), &Limits::default(), &all).unwrap();
        assert_eq!(e.len(), 7);
        assert_eq!(s.compression, want);
    }
    let err = entries(&tar, &spec(OCI_CONFIG), &Limits::default(), &all).unwrap_err();
    assert!(matches!(err, ImageError::UnsupportedMediaType(_)), "{err}");
}

#[test]
fn entry_metadata() {
    let wanted = |p: &str| p == "etc/os-release" || p == "usr/bin/sudoedit";
    let (e, _) = entries(&sample(), &spec(""), &Limits::default(), &wanted).unwrap();
    let by = |p: &str| {
        e.iter()
            .find(|x| x.path == p)
            .unwrap_or_else(|| panic!("{p}"))
    };
    assert_eq!(by("etc").info.kind, EntryKind::Dir);
    assert_eq!(
        by("etc/os-release").content,
        Content::Loaded(b"ID=alpine\nVERSION_ID=3.18.4\n".to_vec())
    );
    let sudo = by("usr/bin/sudo");
    assert!(sudo.info.is_setuid());
    assert_eq!(sudo.info.mode, 0o4755);
    assert_eq!(sudo.content, Content::Skipped, "not wanted");
    assert!(
        by("usr/bin/wall").info.is_setgid(),
        "absolute path made relative"
    );
    assert_eq!(
        by("bin").info.kind,
        EntryKind::Symlink {
            target: "usr/bin".into()
        }
    );
    assert_eq!(
        by("usr/bin/sudoedit").info.kind,
        EntryKind::Hardlink {
            target: "usr/bin/sudo".into()
        }
    );
    // Hardlinks have no data of their own; Squash fills it in.
    assert_eq!(by("usr/bin/sudoedit").content, Content::Skipped);
    assert_eq!(
        by("dev/null").info.kind,
        EntryKind::Other { type_flag: b'3' }
    );
}

#[test]
fn paths_escaping_the_root_are_rejected() {
    for name in [
        "../../etc/passwd",
        "./../x",
        "a/../../etc/shadow",
        "/../etc/passwd",
    ] {
        let tar = Layer::new().file("ok", b"").file(name, b"root:x:0:0").tar();
        let err = entries(&tar, &spec(""), &Limits::default(), &all).unwrap_err();
        assert!(matches!(err, ImageError::PathEscapes(_)), "{name}: {err}");
        assert!(err.to_string().contains("escapes the image root"), "{err}");
    }
    let tar = Layer::new().hardlink("x", "../../etc/shadow").tar();
    let err = entries(&tar, &spec(""), &Limits::default(), &all).unwrap_err();
    assert!(matches!(err, ImageError::PathEscapes(_)), "{err}");
    // Inside the root, `..` is fine, and absolute paths are root-relative.
    let tar = Layer::new()
        .file("a/b/../c", b"")
        .file("/etc/passwd", b"")
        .tar();
    let (e, _) = entries(&tar, &spec(""), &Limits::default(), &all).unwrap();
    assert_eq!(e[0].path, "a/c");
    assert_eq!(e[1].path, "etc/passwd");
}

#[test]
fn decompression_bomb_stops_at_the_limit_quickly() {
    let limits = Limits {
        max_layer_bytes: 1 << 20,
        ..Limits::default()
    };
    // 64 MiB of zeros after a small valid tar: gzip makes ~64 KiB of it.
    let mut stream = Layer::new().file("a", b"x").tar();
    stream.resize(stream.len() + (64 << 20), 0);
    let bomb = gzip(&stream);
    assert!(bomb.len() < 1 << 20);
    let start = Instant::now();
    let err = entries(&bomb, &spec(OCI_LAYER_GZIP), &limits, &all).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::LimitExceeded {
                what: "uncompressed layer size",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // A single entry claiming more than the limit fails before its data.
    let big = Layer::new().file("big", &vec![0u8; 2 << 20]).tar();
    let err = entries(&gzip(&big), &spec(OCI_LAYER_GZIP), &limits, &all).unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");
}

#[test]
fn compressed_size_limit() {
    let limits = Limits {
        max_compressed_layer_bytes: 1000,
        ..Limits::default()
    };
    let tar = Layer::new().file("a", &[7u8; 4000]).tar();
    let err = entries(&tar, &spec(""), &limits, &all).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::LimitExceeded {
                what: "compressed layer size",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn too_many_entries() {
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let mut l = Layer::new();
    for i in 0..11 {
        l = l.file(&format!("f{i}"), b"");
    }
    let tar = l.tar();
    let err = entries(&gzip(&tar), &spec(""), &limits, &all).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::LimitExceeded {
                what: "tar entries in one layer",
                limit: 10
            }
        ),
        "{err}"
    );
    let limits = Limits {
        max_entries: 11,
        ..Limits::default()
    };
    assert!(entries(&tar, &spec(""), &limits, &all).is_ok());
}

#[test]
fn truncated_streams_are_errors() {
    let tar = Layer::new()
        .file("etc/os-release", &[b'x'; 10_000])
        .file("b", &[b'y'; 10_000])
        .tar();
    let gz = gzip(&tar);
    for cut in [gz.len() / 2, gz.len() - 4, 10] {
        let err = entries(&gz[..cut], &spec(OCI_LAYER_GZIP), &Limits::default(), &all).unwrap_err();
        assert!(
            matches!(err, ImageError::MalformedLayer(_)),
            "cut {cut}: {err}"
        );
    }
    let zs = zstd(&tar);
    let err = entries(&zs[..zs.len() - 3], &spec(""), &Limits::default(), &all).unwrap_err();
    assert!(matches!(err, ImageError::MalformedLayer(_)), "{err}");
    // Plain tar cut inside a wanted file's data.
    let err = entries(&tar[..700], &spec(""), &Limits::default(), &all).unwrap_err();
    assert!(matches!(err, ImageError::MalformedLayer(_)), "{err}");
}

#[test]
fn blob_digest_size_and_diff_id_are_verified() {
    let tar = sample();
    let gz = gzip(&tar);
    let good = LayerSpec {
        media_type: OCI_LAYER_GZIP.into(),
        digest: Some(sha(&gz)),
        size: Some(gz.len() as u64),
        diff_id: Some(sha(&tar)),
    };
    let (_, s) = entries(&gz, &good, &Limits::default(), &all).unwrap();
    assert_eq!(s.digest, sha(&gz));
    assert_eq!(s.diff_id, Some(sha(&tar)));

    let wrong = LayerSpec {
        digest: Some(sha(b"something else")),
        ..good.clone()
    };
    let err = entries(&gz, &wrong, &Limits::default(), &all).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");

    let short = LayerSpec {
        size: Some(gz.len() as u64 - 1),
        ..good.clone()
    };
    let err = entries(&gz, &short, &Limits::default(), &all).unwrap_err();
    assert!(
        matches!(err, ImageError::SizeMismatch { actual: None, .. }),
        "{err}"
    );
    let long = LayerSpec {
        size: Some(gz.len() as u64 + 1),
        ..good.clone()
    };
    let err = entries(&gz, &long, &Limits::default(), &all).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::SizeMismatch {
                actual: Some(_),
                ..
            }
        ),
        "{err}"
    );

    let bad_diff = LayerSpec {
        diff_id: Some(sha(b"other")),
        ..good.clone()
    };
    let err = entries(&gz, &bad_diff, &Limits::default(), &all).unwrap_err();
    assert!(matches!(err, ImageError::DiffIdMismatch { .. }), "{err}");

    // A flipped byte in the middle of a plain layer still parses as tar,
    // but not as the blob that was asked for.
    let mut tampered = tar.clone();
    let i = tampered.windows(9).position(|w| w == b"ID=alpine").unwrap();
    tampered[i + 3] = b'A';
    let spec = LayerSpec {
        digest: Some(sha(&tar)),
        ..LayerSpec::default()
    };
    let err = entries(&tampered, &spec, &Limits::default(), &all).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn long_names_and_metadata_are_bounded() {
    let long = format!("{}/f", "d".repeat(5000));
    let tar = Layer::new().file(&long, b"").tar();
    let err = entries(&tar, &spec(""), &Limits::default(), &all).unwrap_err();
    assert!(
        matches!(err, ImageError::PathTooLong { len: 5002, .. }),
        "{err}"
    );

    // A GNU long name bigger than the header budget is refused while it is
    // read, before the path length is even known.
    let huge = format!("{}/f", "d".repeat(64 * 1024));
    let tar = Layer::new().file("a", b"1").file(&huge, b"").tar();
    let limits = Limits {
        max_header_bytes: 8 * 1024,
        max_path_len: usize::MAX,
        ..Limits::default()
    };
    let err = entries(&tar, &spec(""), &limits, &all).unwrap_err();
    assert!(
        matches!(err, ImageError::LimitExceeded { what, .. } if what.starts_with("tar metadata")),
        "{err}"
    );
    let limits = Limits {
        max_header_bytes: 128 * 1024,
        max_path_len: usize::MAX,
        ..Limits::default()
    };
    let (e, _) = entries(&tar, &spec(""), &limits, &all).unwrap();
    assert_eq!(e[1].path, huge);
}

#[test]
fn oversized_wanted_files_keep_metadata_only() {
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let tar = Layer::new()
        .file("var/lib/dpkg/status", &[b'x'; 101])
        .file("small", &[b'x'; 100])
        .tar();
    let (e, _) = entries(&tar, &spec(""), &limits, &all).unwrap();
    assert_eq!(e[0].content, Content::TooLarge);
    assert_eq!(e[0].info.size, 101);
    assert_eq!(e[1].content, Content::Loaded(vec![b'x'; 100]));
}

#[test]
fn sink_errors_stop_the_read() {
    let tar = sample();
    let mut seen = 0;
    let err = read_layer(
        tar.as_slice(),
        &spec(""),
        &Limits::default(),
        &all,
        &mut |_| {
            seen += 1;
            Err(ImageError::NoMatch("stop".into()))
        },
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::NoMatch(_)));
    assert_eq!(seen, 1);
}

#[test]
fn empty_layers() {
    for blob in [Vec::new(), vec![0u8; 1024], gzip(&[0u8; 1024])] {
        let (e, s) = entries(&blob, &spec(""), &Limits::default(), &all).unwrap();
        assert!(e.is_empty());
        assert_eq!(s.entries, 0);
    }
}

fn small_limits() -> Limits {
    Limits {
        max_layer_bytes: 1 << 20,
        max_compressed_layer_bytes: 1 << 20,
        max_entries: 1000,
        max_header_bytes: 64 * 1024,
        ..Limits::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = entries(&bytes, &spec(""), &small_limits(), &all);
        let _ = entries(&bytes, &spec(OCI_LAYER_GZIP), &small_limits(), &all);
        let mut gz = vec![0x1f, 0x8b, 8, 0];
        gz.extend_from_slice(&bytes);
        let _ = entries(&gz, &spec(""), &small_limits(), &all);
        let mut zs = vec![0x28, 0xb5, 0x2f, 0xfd];
        zs.extend_from_slice(&bytes);
        let _ = entries(&zs, &spec(""), &small_limits(), &all);
    }

    #[test]
    fn mutated_layers_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        compress in 0u8..3,
    ) {
        let mut tar = sample();
        for (i, b) in &edits {
            let n = tar.len();
            tar[i % n] = *b;
        }
        let blob = match compress {
            0 => tar,
            1 => gzip(&tar),
            _ => zstd(&tar),
        };
        let _ = entries(&blob, &spec(""), &small_limits(), &all);
    }

    #[test]
    fn mutated_compressed_layers_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut gz = gzip(&sample());
        for (i, b) in &edits {
            let n = gz.len();
            gz[i % n] = *b;
        }
        let _ = entries(&gz, &spec(""), &small_limits(), &all);
    }
}
