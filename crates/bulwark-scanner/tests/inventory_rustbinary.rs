#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Rust executables built with `cargo auditable`: ELF files with a
//! `.dep-v0` section built here byte by byte, read by the inventory, by the
//! image scan (layer attribution, compact records) and matched against the
//! real RustSec records of the shared test data.

mod layers_support;

use std::io::Write;
use std::path::Path;

use bulwark_scanner::image::{ScanOptions, scan_oci_layout};
use bulwark_scanner::inventory::{
    self, InventoryError, Package, PackageKind, Parser, parser_for, rustbinary,
};
use bulwark_scanner::report::match_image;
use bulwark_scanner::vulndb::import_path;
use bulwark_scanner::vulndb::store::{ImportMode, MemoryStore, VulnStore};
use layers_support::*;
use proptest::prelude::*;

/// What a `cargo auditable` build of a small tool records: the root (a
/// local crate), crates.io runtime crates, a build-only proc macro, a git
/// fork and a crate from a private registry.
const AUDIT_JSON: &str = r#"{"packages":[
 {"name":"mytool","version":"0.3.0","source":"local","root":true,"dependencies":[1,2,3,4,5,6]},
 {"name":"smallvec","version":"1.6.0","source":"crates.io"},
 {"name":"itoa","version":"1.0.9","source":"crates.io"},
 {"name":"serde_derive","version":"1.0.100","source":"crates.io","kind":"build"},
 {"name":"libc","version":"0.2.150","source":"crates.io","kind":"runtime"},
 {"name":"smallvec","version":"1.0.0","source":"git"},
 {"name":"internal-rpc","version":"2.1.0","source":"registry"}
]}"#;

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An ELF relocatable-style file with three sections (null, `name` holding
/// `data`, `.shstrtab`), in either class and byte order: the shape the
/// linker leaves `.dep-v0` in, without code.
fn elf_with_section(is64: bool, big: bool, name: &str, data: &[u8]) -> Vec<u8> {
    let put = |out: &mut Vec<u8>, at: usize, v: u64, size: usize| {
        let bytes = if big {
            v.to_be_bytes()[8 - size..].to_vec()
        } else {
            v.to_le_bytes()[..size].to_vec()
        };
        out[at..at + size].copy_from_slice(&bytes);
    };
    let word = if is64 { 8 } else { 4 };
    let (ehsize, shentsize) = if is64 { (64, 64) } else { (52, 40) };
    let mut shstrtab = b"\0".to_vec();
    let name_off = shstrtab.len();
    shstrtab.extend_from_slice(name.as_bytes());
    shstrtab.push(0);
    let strtab_name_off = shstrtab.len();
    shstrtab.extend_from_slice(b".shstrtab\0");

    let data_off = ehsize;
    let strtab_off = data_off + data.len();
    let shoff = (strtab_off + shstrtab.len()).next_multiple_of(8);
    let mut f = vec![0u8; shoff + 3 * shentsize];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = if is64 { 2 } else { 1 };
    f[5] = if big { 2 } else { 1 };
    f[6] = 1; // EI_VERSION
    put(&mut f, 16, 2, 2); // e_type: ET_EXEC
    put(&mut f, 18, if is64 { 62 } else { 3 }, 2); // x86-64 / i386
    put(&mut f, 20, 1, 4); // e_version
    // e_shoff, e_ehsize, e_shentsize, e_shnum, e_shstrndx
    let (shoff_at, tail) = if is64 { (0x28, 0x34) } else { (0x20, 0x28) };
    put(&mut f, shoff_at, shoff as u64, word);
    put(&mut f, tail, ehsize as u64, 2);
    put(&mut f, tail + 6, shentsize as u64, 2);
    put(&mut f, tail + 8, 3, 2);
    put(&mut f, tail + 10, 2, 2);
    f[data_off..data_off + data.len()].copy_from_slice(data);
    f[strtab_off..strtab_off + shstrtab.len()].copy_from_slice(&shstrtab);
    // Section headers: sh_name, sh_type, then sh_offset and sh_size.
    let (off_field, size_field) = if is64 { (0x18, 0x20) } else { (0x10, 0x14) };
    for (i, (name, ty, off, size)) in [
        (name_off, 1u64, data_off, data.len()), // SHT_PROGBITS
        (strtab_name_off, 3, strtab_off, shstrtab.len()), // SHT_STRTAB
    ]
    .into_iter()
    .enumerate()
    {
        let h = shoff + (i + 1) * shentsize;
        put(&mut f, h, name as u64, 4);
        put(&mut f, h + 4, ty, 4);
        put(&mut f, h + off_field, off as u64, word);
        put(&mut f, h + size_field, size as u64, word);
    }
    f
}

fn auditable_elf(json: &str) -> Vec<u8> {
    elf_with_section(true, false, ".dep-v0", &zlib(json.as_bytes()))
}

fn summary(pkgs: &[Package]) -> Vec<(&str, &str)> {
    pkgs.iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect()
}

const WANT: &[(&str, &str)] = &[
    ("smallvec", "1.6.0"),
    ("itoa", "1.0.9"),
    ("libc", "0.2.150"),
];

#[test]
fn auditable_elf_through_the_inventory() {
    let path = "usr/local/bin/mytool";
    assert_eq!(parser_for(path), Some(Parser::Executable));
    for (is64, big) in [(true, false), (true, true), (false, false), (false, true)] {
        let elf = elf_with_section(is64, big, ".dep-v0", &zlib(AUDIT_JSON.as_bytes()));
        let pkgs = inventory::parse(path, &elf, None).unwrap().unwrap();
        assert_eq!(summary(&pkgs), WANT, "is64={is64} big={big}");
        for p in &pkgs {
            assert_eq!(p.kind, PackageKind::Cargo);
            assert_eq!(p.ecosystem, PackageKind::Cargo.ecosystem());
            assert_eq!(p.path, path);
            assert_eq!(p.purl, format!("pkg:cargo/{}@{}", p.name, p.version));
        }
        // The compact record parses to the same packages.
        let record = inventory::extract_executable(&elf).unwrap();
        assert!(record.starts_with(rustbinary::MAGIC));
        assert!(record.len() < elf.len());
        assert_eq!(
            inventory::parse(path, &record, None).unwrap().unwrap(),
            pkgs
        );
    }
    // Another section name, or no sections at all: nothing.
    let other = elf_with_section(true, false, ".dep-v1", &zlib(AUDIT_JSON.as_bytes()));
    assert_eq!(inventory::parse(path, &other, None).unwrap().unwrap(), []);
    assert_eq!(inventory::extract_executable(&other), None);
}

#[test]
fn hostile_sections_are_errors_not_panics() {
    let good = auditable_elf(AUDIT_JSON);
    // Every truncation: no panic; the section cut off is an error naming
    // it, anything else is no audit data at all.
    for n in 0..good.len() {
        match rustbinary::parse("x", &good[..n]) {
            Ok(pkgs) => assert!(pkgs.is_empty() || pkgs.len() == WANT.len(), "{n}"),
            Err(InventoryError::Malformed { .. }) => {}
            Err(e) => panic!("{n}: {e}"),
        }
        if let Some(record) = rustbinary::extract(&good[..n]) {
            let _ = rustbinary::parse("x", &record);
        }
    }
    // The section header says more bytes than the file has.
    let mut bad = auditable_elf(AUDIT_JSON);
    let size_at = bad.len() - 2 * 64 + 0x20;
    bad[size_at..size_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = rustbinary::parse("x", &bad).unwrap_err().to_string();
    assert!(err.contains("exceeds the 8388608-byte limit"), "{err}");
    bad[size_at..size_at + 8].copy_from_slice(&1_000_000u64.to_le_bytes());
    let err = rustbinary::parse("x", &bad).unwrap_err().to_string();
    assert!(err.contains("runs past the file"), "{err}");
    // The compact record carries that error, and the image scan reports it.
    let record = rustbinary::extract(&bad).unwrap();
    let again = rustbinary::parse("x", &record).unwrap_err().to_string();
    assert!(again.contains("runs past the file"), "{again}");
    // A truncated zlib stream, and a zlib bomb (9 MiB of JSON whitespace).
    let z = zlib(AUDIT_JSON.as_bytes());
    let half = elf_with_section(true, false, ".dep-v0", &z[..z.len() / 2]);
    let err = rustbinary::parse("x", &half).unwrap_err().to_string();
    assert!(err.contains("zlib"), "{err}");
    let mut padded = b"{\"packages\":[]".to_vec();
    padded.resize(9 * 1024 * 1024, b' ');
    padded.push(b'}');
    let bomb = elf_with_section(true, false, ".dep-v0", &zlib(&padded));
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let err = rustbinary::parse("x", &bomb).unwrap_err().to_string();
    assert!(err.contains("more than the 8388608-byte limit"), "{err}");
    // Valid zlib, not the JSON format.
    for json in ["[]", r#"{"packages":7}"#, r#"{"packages":[{"name":"a"}],"#] {
        let err = rustbinary::parse("x", &auditable_elf(json)).unwrap_err();
        assert!(
            matches!(err, InventoryError::Malformed { .. }),
            "{json}: {err}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary byte edits of a valid executable, and arbitrary section
    /// contents: parsing and extracting never panic.
    #[test]
    fn mutated_executables_never_panic(
        edits in proptest::collection::vec((0usize..4096, any::<u8>()), 1..16),
        section in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut elf = auditable_elf(AUDIT_JSON);
        let len = elf.len();
        for (at, byte) in edits {
            elf[at % len] = byte;
        }
        let _ = inventory::parse_executable("x", &elf);
        if let Some(r) = inventory::extract_executable(&elf) {
            let _ = inventory::parse_executable("x", &r);
        }
        let raw = elf_with_section(false, true, ".dep-v0", &section);
        let _ = inventory::parse_executable("x", &raw);
        let mut record = rustbinary::MAGIC.to_vec();
        record.push(0);
        record.extend_from_slice(&section);
        let _ = inventory::parse_executable("x", &record);
    }
}

/// Layer 0: Debian os-release and a shell script; layer 1: the Rust
/// binary and an ELF file without audit data; layer 2: an unrelated file.
fn rust_image() -> tempfile::TempDir {
    let l0 = Layer::new()
        .file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n")
        .file_mode("usr/local/bin/run", b"#!/bin/sh\nexec mytool\n", 0o755)
        .tar();
    let l1 = Layer::new()
        .file_mode("usr/local/bin/mytool", &auditable_elf(AUDIT_JSON), 0o755)
        .file_mode(
            "usr/local/bin/plain",
            &elf_with_section(true, false, ".comment", b"GCC\0"),
            0o755,
        )
        .tar();
    let l2 = Layer::new().file("etc/motd", b"hi\n").tar();
    let mut blobs = Blobs::default();
    let layers = [
        (OCI_LAYER_GZIP, gzip(&l0), l0),
        (OCI_LAYER_GZIP, gzip(&l1), l1),
        (OCI_LAYER, l2.clone(), l2),
    ];
    let m = blobs.image("amd64", &layers);
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));
    dir
}

#[test]
fn image_scan_attributes_crates_to_the_binary_layer() {
    let dir = rust_image();
    for compact in [true, false] {
        let options = ScanOptions {
            compact,
            ..ScanOptions::default()
        };
        let scanned = scan_oci_layout(dir.path(), &options).unwrap();
        let found: Vec<(usize, &str, &str, &str, PackageKind)> = scanned
            .packages
            .iter()
            .map(|p| {
                (
                    p.layer,
                    p.package.path.as_str(),
                    p.package.name.as_str(),
                    p.package.version.as_str(),
                    p.package.kind,
                )
            })
            .collect();
        let want: Vec<_> = WANT
            .iter()
            .map(|(n, v)| (1, "usr/local/bin/mytool", *n, *v, PackageKind::Cargo))
            .collect();
        assert_eq!(found, want, "compact={compact}");
        assert!(
            scanned
                .packages
                .iter()
                .all(|p| p.layer_digest == scanned.layers[1]),
            "compact={compact}"
        );
        assert!(scanned.warnings.list.is_empty(), "{:?}", scanned.warnings);
        let held = |p: &str| scanned.files.get(p).and_then(|n| n.content.clone());
        if compact {
            assert!(
                held("usr/local/bin/mytool")
                    .unwrap()
                    .starts_with(rustbinary::MAGIC)
            );
            assert_eq!(held("usr/local/bin/plain"), None);
        }
    }
}

#[test]
fn broken_audit_data_is_a_warning_for_that_file() {
    let mut bad = auditable_elf(AUDIT_JSON);
    let size_at = bad.len() - 2 * 64 + 0x20;
    bad[size_at..size_at + 8].copy_from_slice(&1_000_000u64.to_le_bytes());
    let l0 = Layer::new()
        .file_mode("usr/bin/broken", &bad, 0o755)
        .file_mode("usr/bin/mytool", &auditable_elf(AUDIT_JSON), 0o755)
        .tar();
    let mut blobs = Blobs::default();
    let m = blobs.image("amd64", &[(OCI_LAYER, l0.clone(), l0)]);
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    assert_eq!(scanned.packages.len(), WANT.len());
    let warnings: Vec<(&str, &str)> = scanned
        .warnings
        .list
        .iter()
        .map(|w| (w.path.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].0, "usr/bin/broken");
    assert!(
        warnings[0].1.contains("malformed cargo-auditable data")
            && warnings[0].1.contains("runs past the file"),
        "{warnings:?}"
    );
}

#[test]
fn rust_binary_matches_the_real_rustsec_record() {
    let batch = import_path(Path::new("/work/shared/testdata/vulndb/rustsec")).unwrap();
    assert!(batch.advisories.len() > 1000);
    let store = MemoryStore::new();
    futures::executor::block_on(store.import(&batch, ImportMode::Merge, 0)).unwrap();

    let dir = rust_image();
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    let report = futures::executor::block_on(match_image(&scanned, &store, 0)).unwrap();
    let hits: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.package.as_str(),
                f.installed_version.as_str(),
                f.fixed_version.as_deref(),
                f.severity,
                f.ecosystem.as_str(),
                f.layer,
                f.kind,
            )
        })
        .collect();
    // RUSTSEC-2021-0003: smallvec 1.0.0 ≤ v < 1.6.1 (CVSS 3.1 9.8). The
    // git-sourced smallvec 1.0.0 is not recorded, so it does not match;
    // itoa 1.0.9 and libc 0.2.150 have no advisory.
    assert_eq!(
        hits,
        [(
            "RUSTSEC-2021-0003",
            "smallvec",
            "1.6.0",
            Some("1.6.1"),
            Some("critical"),
            "crates.io",
            1,
            "cargo",
        )],
        "{:#?}",
        report.findings
    );
    let f = &report.findings[0];
    assert_eq!(f.aliases, ["CVE-2021-25900", "GHSA-43w2-9j62-hq99"]);
    assert_eq!(f.path, "usr/local/bin/mytool");
    assert_eq!(f.layer_diff_id, scanned.config.diff_ids[1].to_string());
    assert_eq!(report.summary.outdated.len(), 1);
    assert_eq!(report.summary.outdated[0].fixed_version, "1.6.1");

    // The same binary with smallvec at the fix matches nothing.
    let fixed = AUDIT_JSON.replace(
        r#""smallvec","version":"1.6.0""#,
        r#""smallvec","version":"1.6.1""#,
    );
    assert_ne!(fixed, AUDIT_JSON);
    let l0 = Layer::new()
        .file_mode("usr/local/bin/mytool", &auditable_elf(&fixed), 0o755)
        .tar();
    let mut blobs = Blobs::default();
    let m = blobs.image("amd64", &[(OCI_LAYER, l0.clone(), l0)]);
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    assert_eq!(scanned.packages.len(), WANT.len());
    let report = futures::executor::block_on(match_image(&scanned, &store, 0)).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}
