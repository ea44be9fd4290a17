#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The rpm, Go-binary and Java inventories: on fixtures made by the real
//! tools (`rpm`, `go`, `jar`; see tests/fixtures/README.md), on hostile
//! input built here, and end to end through the image scan.

mod layers_support;

use std::io::{Cursor, Write};

use bulwark_scanner::distro;
use bulwark_scanner::image::{ScanOptions, scan_oci_layout};
use bulwark_scanner::inventory::{
    self, InventoryError, Package, PackageKind, Parser, gobinary, java, parser_for, rpm,
};
use bulwark_scanner::version::Ecosystem;
use layers_support::*;

/// Parses fixture `rel` as if found at `image_path`, asserting the route
/// and the invariants every package keeps.
fn parse_as(rel: &str, image_path: &str, want: Parser) -> Vec<Package> {
    parse_bytes_as(&fixture(rel), image_path, want)
}

fn parse_bytes_as(bytes: &[u8], image_path: &str, want: Parser) -> Vec<Package> {
    assert_eq!(parser_for(image_path), Some(want), "{image_path}");
    let pkgs = inventory::parse(image_path, bytes, None)
        .expect("routed")
        .unwrap_or_else(|e| panic!("{image_path}: {e}"));
    for p in &pkgs {
        assert_eq!(p.path, image_path);
        assert_eq!(p.kind, want.kind());
        assert_eq!(p.ecosystem, want.kind().ecosystem());
        assert!(
            p.ecosystem.compare(&p.version, &p.version).is_ok() || p.version == "(devel)",
            "{} {} is not a valid {} version",
            p.name,
            p.version,
            p.ecosystem
        );
        assert!(p.purl.starts_with("pkg:"), "{}", p.purl);
    }
    pkgs
}

fn summary(pkgs: &[Package]) -> Vec<(String, String)> {
    pkgs.iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

// ---------------------------------------------------------------- rpm

#[test]
fn rpm_sqlite_database_made_by_rpm() {
    let fedora = distro::from_os_release(b"ID=fedora\nVERSION_ID=39\n").expect("fedora os-release");
    let bytes = fixture("rpm/rpmdb.sqlite");
    let pkgs = inventory::parse("var/lib/rpm/rpmdb.sqlite", &bytes, Some(&fedora))
        .unwrap()
        .unwrap();
    assert_eq!(
        summary(&pkgs),
        pairs(&[
            ("bulwark-hello-libs", "2:1.2.3-4.fc39"),
            ("bulwark-hello", "2:1.2.3-4.fc39"),
            ("tiny-noarch", "0.9-1"),
        ])
    );
    let libs = &pkgs[0];
    assert_eq!(libs.kind, PackageKind::Rpm);
    assert_eq!(libs.ecosystem, Ecosystem::Rpm);
    assert_eq!(libs.source_name.as_deref(), Some("bulwark-hello"));
    assert_eq!(libs.source_version.as_deref(), Some("2:1.2.3-4.fc39"));
    assert_eq!(libs.licenses, ["Apache-2.0"]);
    assert_eq!(
        libs.purl,
        "pkg:rpm/fedora/bulwark-hello-libs@1.2.3-4.fc39?arch=x86_64&distro=fedora-39&epoch=2"
    );
    let tiny = &pkgs[2];
    assert_eq!(tiny.source_name.as_deref(), Some("tiny-noarch"));
    assert_eq!(tiny.licenses, ["GPL-2.0-or-later"]);
    assert_eq!(
        tiny.purl,
        "pkg:rpm/fedora/tiny-noarch@0.9-1?arch=noarch&distro=fedora-39"
    );
    // Same file at the usr/lib/sysimage location; no distro, no vendor.
    let pkgs = parse_as(
        "rpm/rpmdb.sqlite",
        "usr/lib/sysimage/rpm/rpmdb.sqlite",
        Parser::RpmSqlite,
    );
    assert_eq!(pkgs.len(), 3);
    assert_eq!(pkgs[2].purl, "pkg:rpm/tiny-noarch@0.9-1?arch=noarch");
}

/// Rewrites the fixture database with `sql` run on a copy.
fn edited_rpmdb(sql: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    std::fs::write(&path, fixture("rpm/rpmdb.sqlite")).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=DELETE; PRAGMA foreign_keys=OFF; {sql}"
    ))
    .unwrap();
    drop(conn);
    std::fs::read(&path).unwrap()
}

#[test]
fn rpm_corrupt_headers_are_errors_not_panics() {
    for (what, sql) in [
        (
            "truncated",
            "UPDATE Packages SET blob = substr(blob, 1, 40) WHERE hnum = 2",
        ),
        (
            "huge index count",
            "UPDATE Packages SET blob = X'FFFFFFFF00000010' || substr(blob, 9) WHERE hnum = 1",
        ),
        (
            "huge data length",
            "UPDATE Packages SET blob = substr(blob, 1, 4) || X'0FFFFFF0' || substr(blob, 9) WHERE hnum = 1",
        ),
        (
            "empty blob",
            "UPDATE Packages SET blob = X'' WHERE hnum = 3",
        ),
    ] {
        let bytes = edited_rpmdb(sql);
        let err = inventory::parse("var/lib/rpm/rpmdb.sqlite", &bytes, None)
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(
                &err,
                InventoryError::Malformed {
                    format: "rpm header",
                    ..
                }
            ),
            "{what}: {err}"
        );
    }
    // No Packages table, a non-SQLite file, a truncated database.
    let no_table = edited_rpmdb("DROP TABLE Packages");
    let full = fixture("rpm/rpmdb.sqlite");
    for bytes in [
        no_table.as_slice(),
        b"not a database".as_slice(),
        &full[..100],
        &full[..full.len() / 2],
    ] {
        let err = rpm::parse_sqlite("var/lib/rpm/rpmdb.sqlite", bytes, None).unwrap_err();
        assert!(matches!(&err, InventoryError::Malformed { .. }), "{err}");
    }
}

#[test]
fn rpm_hostile_header_bytes() {
    // Every prefix of a real header is an error or a clean parse, never a
    // panic; the whole header parses.
    let blob = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::write(&path, fixture("rpm/rpmdb.sqlite")).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("SELECT blob FROM Packages WHERE hnum = 3", [], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .unwrap()
    };
    let h = rpm::parse_header(&blob).unwrap();
    assert_eq!(h.name.as_deref(), Some("tiny-noarch"));
    assert_eq!(h.epoch, None);
    for n in 0..blob.len() {
        assert!(rpm::parse_header(&blob[..n]).is_err(), "prefix {n}");
    }
    // Flip each byte of the index: errors or parses, never panics.
    for i in 0..blob.len().min(8 + 16 * 8) {
        let mut b = blob.clone();
        b[i] ^= 0xff;
        let _ = rpm::parse_header(&b);
    }
}

/// The same three headers as rpmdb.sqlite, stored by Berkeley DB 5.3's db_load
/// (fixtures/rpm/make-bdb.sh): 512-byte pages little-endian, 4096-byte pages big-endian.
#[test]
fn rpm_berkeley_db_packages() {
    let fedora = distro::from_os_release(b"ID=fedora\nVERSION_ID=39\n").expect("fedora os-release");
    let sqlite = inventory::parse(
        "var/lib/rpm/rpmdb.sqlite",
        &fixture("rpm/rpmdb.sqlite"),
        Some(&fedora),
    )
    .unwrap()
    .unwrap();
    let sorted = |mut p: Vec<Package>| {
        p.sort_by(|a, b| a.name.cmp(&b.name));
        p
    };
    for file in ["rpm/Packages-512", "rpm/Packages-be"] {
        let pkgs = inventory::parse("var/lib/rpm/Packages", &fixture(file), Some(&fedora))
            .unwrap()
            .unwrap();
        assert_eq!(pkgs.len(), 3, "{file}");
        let mut want = sorted(sqlite.clone());
        for p in &mut want {
            p.path = "var/lib/rpm/Packages".to_owned();
        }
        assert_eq!(sorted(pkgs), want, "{file}");
    }
}

#[test]
fn rpm_berkeley_db_hostile_files_are_errors() {
    let real = fixture("rpm/Packages-512");
    let bdb_error = |bytes: &[u8]| {
        let err = rpm::parse_berkeley("var/lib/rpm/Packages", bytes, None).unwrap_err();
        assert!(
            matches!(
                &err,
                InventoryError::Malformed {
                    format: "rpm database (Berkeley DB)" | "rpm header",
                    ..
                }
            ),
            "{err}"
        );
        err.to_string()
    };
    assert!(bdb_error(b"short").contains("not a Berkeley DB"));
    assert!(bdb_error(&vec![0u8; 4096]).contains("not a Berkeley DB"));
    // Cut short: the overflow chains run out of pages.
    let cut = bdb_error(&real[..real.len() - 512]);
    assert!(cut.contains("overflow"), "{cut}");
    // Every single-byte change and every truncation: an answer, never a panic.
    for i in 0..real.len() {
        let mut b = real.clone();
        b[i] ^= 0x5a;
        let _ = rpm::parse_berkeley("p", &b, None);
    }
    for n in (0..real.len()).step_by(13) {
        let _ = rpm::parse_berkeley("p", &real[..n], None);
    }
}

// ----------------------------------------------------------------- Go

const GO_WANT: &[(&str, &str)] = &[
    ("stdlib", "1.19.8"),
    ("example.com/hello", "(devel)"),
    ("example.com/fork/greet", "v1.2.4"),
    ("example.com/util", "v0.3.0"),
];

#[test]
fn go_binary_built_by_go() {
    let pkgs = parse_as("go/hello.elf", "usr/local/bin/hello", Parser::Executable);
    assert_eq!(summary(&pkgs), pairs(GO_WANT));
    assert!(pkgs.iter().all(|p| p.kind == PackageKind::Go));
    assert_eq!(pkgs[0].purl, "pkg:golang/stdlib@1.19.8");
    assert_eq!(pkgs[2].purl, "pkg:golang/example.com%2Ffork%2Fgreet@v1.2.4");
    // The compact record the scan keeps parses to the same packages.
    let record = gobinary::extract(&fixture("go/hello.elf")).unwrap();
    assert!(record.starts_with(gobinary::MAGIC));
    let again = parse_bytes_as(&record, "usr/local/bin/hello", Parser::Executable);
    assert_eq!(again, pkgs);
}

#[test]
fn go_inline_build_info_on_hand_built_bytes() {
    let modinfo = "path\tgithub.com/acme/tool\nmod\tgithub.com/acme/tool\tv1.4.0\th1:x=\ndep\tgolang.org/x/net\tv0.17.0\th1:y=\ndep\tgithub.com/old/lib\tv1.0.0\th1:z=\n=>\tgithub.com/new/lib\tv1.1.0\th1:w=\n";
    let elf = inline_elf("go1.21.3", modinfo);
    let pkgs = parse_bytes_as(&elf, "usr/bin/tool", Parser::Executable);
    assert_eq!(
        summary(&pkgs),
        pairs(&[
            ("stdlib", "1.21.3"),
            ("github.com/acme/tool", "v1.4.0"),
            ("golang.org/x/net", "v0.17.0"),
            ("github.com/new/lib", "v1.1.0"),
        ])
    );
    // The Go ordering accepts what was recorded, stdlib included.
    assert!(Ecosystem::Go.compare("1.21.3", "1.21.10").unwrap().is_lt());
}

#[test]
fn go_pointer_format_before_1_18() {
    let modinfo = "path\texample.com/old\nmod\texample.com/old\tv0.1.0\t\ndep\tgithub.com/pkg/errors\tv0.9.1\th1:a=\n";
    for (is64, big) in [(true, false), (false, true), (false, false)] {
        let elf = pointer_elf(is64, big, "go1.16.15", modinfo);
        let pkgs = inventory::parse("app/server", &elf, None).unwrap().unwrap();
        assert_eq!(
            summary(&pkgs),
            pairs(&[
                ("stdlib", "1.16.15"),
                ("example.com/old", "v0.1.0"),
                ("github.com/pkg/errors", "v0.9.1"),
            ]),
            "is64={is64} big={big}"
        );
        // The compact record turns pointers into inline strings.
        let record = gobinary::extract(&elf).unwrap();
        assert_eq!(gobinary::parse("x", &record).unwrap(), {
            let mut p = pkgs.clone();
            p.iter_mut().for_each(|p| p.path = "x".into());
            p
        });
    }
    // A pointer outside every segment is an error.
    let mut elf = pointer_elf(true, false, "go1.16.15", modinfo);
    let header = elf.windows(14).position(|w| w == gobinary::MAGIC).unwrap();
    elf[header + 16..header + 24].copy_from_slice(&0xdead_beef_u64.to_le_bytes());
    let err = gobinary::parse("x", &elf).unwrap_err();
    assert!(err.to_string().contains("no loaded segment"), "{err}");
}

#[test]
fn go_truncated_and_hostile_build_info() {
    let real = fixture("go/hello.elf");
    // Every truncation of the real file: no panic; once the header is in,
    // either the build info parses or it is reported malformed.
    for n in 0..real.len() {
        match gobinary::parse("x", &real[..n]) {
            Ok(_) => {}
            Err(InventoryError::Malformed { .. }) => {}
            Err(e) => panic!("{n}: {e}"),
        }
    }
    // The strings cut short: malformed.
    let magic_at = real.windows(14).position(|w| w == gobinary::MAGIC).unwrap();
    let cut = &real[..magic_at + 32 + 40];
    let err = gobinary::parse("x", cut).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // A varint length far beyond the file.
    let mut blob = gobinary::MAGIC.to_vec();
    blob.extend_from_slice(&[8, 2]);
    blob.resize(32, 0);
    blob.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(gobinary::parse("x", &blob).is_err());
    // An over-long varint.
    blob.truncate(32);
    blob.extend_from_slice(&[0x80; 12]);
    assert!(gobinary::parse("x", &blob).is_err());
    // Not ELF, or ELF without build info: nothing, no error.
    assert_eq!(gobinary::parse("x", b"#!/bin/sh\necho hi\n").unwrap(), []);
    assert_eq!(gobinary::parse("x", &minimal_elf64(&[])).unwrap(), []);
    assert_eq!(gobinary::extract(&minimal_elf64(&[])), None);
    // Section headers pointing outside the file: the aligned scan still
    // finds the build info.
    let mut bad = real.clone();
    bad[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        summary(&gobinary::parse("x", &bad).unwrap()),
        pairs(GO_WANT)
    );
    // An ELF with broken section headers and no build info is no error.
    let mut stripped = minimal_elf64(&[0u8; 64]);
    stripped[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
    stripped[0x3c] = 5;
    assert_eq!(gobinary::parse("x", &stripped).unwrap(), []);
    assert_eq!(gobinary::extract(&stripped), None);
}

/// An ELF64 LE header, no segments or sections, then `body`.
fn minimal_elf64(body: &[u8]) -> Vec<u8> {
    let mut e = vec![0u8; 64];
    e[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    e.extend_from_slice(body);
    e
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

const SENTINEL_START: [u8; 16] = [
    0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6,
];
const SENTINEL_END: [u8; 16] = [
    0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2,
];

fn framed(modinfo: &str) -> Vec<u8> {
    let mut m = SENTINEL_START.to_vec();
    m.extend_from_slice(modinfo.as_bytes());
    m.extend_from_slice(&SENTINEL_END);
    m
}

/// A Go 1.18+ style executable: build info inline, found by scanning
/// (no section headers), at a 16-byte aligned offset.
fn inline_elf(version: &str, modinfo: &str) -> Vec<u8> {
    let mut body = vec![0u8; 64]; // padding: header at 128
    body.extend_from_slice(gobinary::MAGIC);
    body.extend_from_slice(&[8, 2]);
    body.resize(64 + 32, 0);
    put_varint(&mut body, version.len());
    body.extend_from_slice(version.as_bytes());
    let m = framed(modinfo);
    put_varint(&mut body, m.len());
    body.extend_from_slice(&m);
    body.extend_from_slice(&[0; 16]);
    minimal_elf64(&body)
}

/// A pre-1.18 executable: one `PT_LOAD` segment mapping the whole file
/// at `BASE`; the build-info header points at two Go string headers.
fn pointer_elf(is64: bool, big: bool, version: &str, modinfo: &str) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let ptr = if is64 { 8 } else { 4 };
    let put = |out: &mut Vec<u8>, at: usize, v: u64, size: usize| {
        let bytes = if big {
            v.to_be_bytes()[8 - size..].to_vec()
        } else {
            v.to_le_bytes()[..size].to_vec()
        };
        out[at..at + size].copy_from_slice(&bytes);
    };
    let (ehsize, phentsize) = if is64 { (64, 56) } else { (52, 32) };
    let info = 0x100usize;
    let strings = 0x140usize;
    let data = 0x200usize;
    let modinfo = framed(modinfo);
    let total = data + version.len() + modinfo.len() + 16;
    let mut f = vec![0u8; total];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = if is64 { 2 } else { 1 };
    f[5] = if big { 2 } else { 1 };
    f[6] = 1;
    // e_phoff, e_phentsize, e_phnum
    if is64 {
        put(&mut f, 0x20, ehsize as u64, 8);
        put(&mut f, 0x36, phentsize, 2);
        put(&mut f, 0x38, 1, 2);
    } else {
        put(&mut f, 0x1c, ehsize as u64, 4);
        put(&mut f, 0x2a, phentsize, 2);
        put(&mut f, 0x2c, 1, 2);
    }
    // The PT_LOAD program header.
    let ph = ehsize;
    put(&mut f, ph, 1, 4);
    if is64 {
        put(&mut f, ph + 8, 0, 8); // p_offset
        put(&mut f, ph + 16, BASE, 8); // p_vaddr
        put(&mut f, ph + 32, total as u64, 8); // p_filesz
    } else {
        put(&mut f, ph + 4, 0, 4);
        put(&mut f, ph + 8, BASE, 4);
        put(&mut f, ph + 16, total as u64, 4);
    }
    // Build-info header.
    f[info..info + 14].copy_from_slice(gobinary::MAGIC);
    f[info + 14] = ptr as u8;
    f[info + 15] = u8::from(big);
    let vhdr = strings;
    let mhdr = strings + 2 * ptr;
    put(&mut f, info + 16, BASE + vhdr as u64, ptr);
    put(&mut f, info + 16 + ptr, BASE + mhdr as u64, ptr);
    // String headers and data.
    let vdata = data;
    let mdata = data + version.len();
    put(&mut f, vhdr, BASE + vdata as u64, ptr);
    put(&mut f, vhdr + ptr, version.len() as u64, ptr);
    put(&mut f, mhdr, BASE + mdata as u64, ptr);
    put(&mut f, mhdr + ptr, modinfo.len() as u64, ptr);
    f[vdata..vdata + version.len()].copy_from_slice(version.as_bytes());
    f[mdata..mdata + modinfo.len()].copy_from_slice(&modinfo);
    f
}

// --------------------------------------------------------------- Java

#[test]
fn java_spring_boot_jar_made_by_jar() {
    let pkgs = parse_as("java/demo-app.jar", "app/demo-app.jar", Parser::JavaArchive);
    assert_eq!(
        summary(&pkgs),
        pairs(&[
            ("com.example:demo-app", "0.0.1-SNAPSHOT"),
            ("com.fasterxml.jackson.core:jackson-databind", "2.13.0"),
            // Manifest only: bare name, the lower-confidence form.
            ("org.example.osgi.helper", "3.1.4"),
        ])
    );
    assert!(pkgs.iter().all(|p| p.kind == PackageKind::Maven));
    assert_eq!(
        pkgs[1].purl,
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.13.0"
    );
    assert_eq!(pkgs[2].purl, "pkg:maven/org.example.osgi.helper@3.1.4");
    let record = java::extract(&fixture("java/demo-app.jar"));
    assert!(record.len() < 2048, "{}", record.len());
    assert_eq!(
        parse_bytes_as(&record, "app/demo-app.jar", Parser::JavaArchive),
        pkgs
    );
}

#[test]
fn java_war_with_web_inf_lib() {
    let pkgs = parse_as(
        "java/demo.war",
        "usr/local/tomcat/webapps/demo.war",
        Parser::JavaArchive,
    );
    assert_eq!(
        summary(&pkgs),
        pairs(&[("com.fasterxml.jackson.core:jackson-databind", "2.13.0")])
    );
}

fn pom(group: &str, artifact: &str, version: &str) -> (String, Vec<u8>) {
    (
        format!("META-INF/maven/{group}/{artifact}/pom.properties"),
        format!("groupId={group}\nartifactId={artifact}\nversion={version}\n").into_bytes(),
    )
}

fn zip_of(entries: &[(String, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn java_nesting_depth_is_bounded() {
    // a0.jar ⊃ lib/a1.jar ⊃ lib/a2.jar ⊃ ... ⊃ lib/a6.jar, each with a pom.
    let mut inner = zip_of(&[pom("g", "a6", "6")], zip::CompressionMethod::Stored);
    for level in (0..6).rev() {
        inner = zip_of(
            &[
                pom("g", &format!("a{level}"), &level.to_string()),
                ("lib/next.jar".into(), inner),
            ],
            zip::CompressionMethod::Deflated,
        );
    }
    let pkgs = java::parse_archive("a0.jar", &inner).unwrap();
    // The outer archive and MAX_DEPTH levels below it.
    let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["g:a0", "g:a1", "g:a2", "g:a3"]);
    assert_eq!(java::MAX_DEPTH, 3);
}

#[test]
fn java_zip_bomb_is_bounded() {
    // One deflated entry of 60 MiB of zeros (~60 KiB compressed), copied
    // raw under five nested-archive names: 300 MiB claimed in a small file.
    let zeros = vec![0u8; 60 * 1024 * 1024];
    let one = zip_of(&[("x.jar".into(), zeros)], zip::CompressionMethod::Deflated);
    let mut src = zip::ZipArchive::new(Cursor::new(one)).unwrap();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let (name, data) = pom("g", "a", "1");
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(&data).unwrap();
    for i in 0..5 {
        let f = src.by_index_raw(0).unwrap();
        w.raw_copy_file_rename(f, format!("BOOT-INF/lib/bomb{i}.jar"))
            .unwrap();
    }
    let bomb = w.finish().unwrap().into_inner();
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    let err = java::parse_archive("bomb.jar", &bomb).unwrap_err();
    assert!(err.to_string().contains("zip bomb"), "{err}");

    // A single oversized nested archive (over MAX_NESTED_BYTES) or
    // pom.properties (over MAX_META_BYTES) is skipped, not read whole.
    let big = vec![b'#'; 70 * 1024 * 1024];
    let mut entries = vec![pom("g", "kept", "1")];
    entries.push(("lib/huge.jar".into(), big));
    entries.push((
        "META-INF/maven/g/huge/pom.properties".into(),
        [
            b"groupId=g\nartifactId=huge\nversion=1\n".as_slice(),
            &[b'#'; 70_000],
        ]
        .concat(),
    ));
    let z = zip_of(&entries, zip::CompressionMethod::Deflated);
    let pkgs = java::parse_archive("x.jar", &z).unwrap();
    assert_eq!(summary(&pkgs), pairs(&[("g:kept", "1")]));
}

#[test]
fn java_path_tricks_and_garbage() {
    let (_, data) = pom("evil", "x", "1");
    let entries = vec![
        ("../../etc/passwd".to_owned(), b"root:x:0:0".to_vec()),
        (
            "/abs/META-INF/maven/evil/x/pom.properties".to_owned(),
            data.clone(),
        ),
        (
            "META-INF/maven/../../META-INF/maven/evil/x/pom.properties/extra".to_owned(),
            data.clone(),
        ),
        ("lib/../../nested.jar".to_owned(), b"not a zip".to_vec()),
        pom("good", "y", "2"),
    ];
    let z = zip_of(&entries, zip::CompressionMethod::Deflated);
    let pkgs = java::parse_archive("x.jar", &z).unwrap();
    assert_eq!(summary(&pkgs), pairs(&[("good:y", "2")]));

    for bytes in [
        &b""[..],
        b"PK\x03\x04",
        b"PK\x05\x06garbage",
        &z[..z.len() / 2],
    ] {
        let err = java::parse_archive("x.jar", bytes).unwrap_err();
        assert!(matches!(err, InventoryError::Malformed { .. }), "{err}");
    }
    // Every truncation of a real jar: no panic.
    let real = fixture("java/demo-app.jar");
    for n in (0..real.len()).step_by(7) {
        let _ = java::parse_archive("x.jar", &real[..n]);
    }
}

// ---------------------------------------------------------- end to end

/// An OCI layout: layer 0 an rpm database and a Fedora os-release; layer
/// 1 a Go binary, a non-Go ELF file, a script and a jar; layer 2 two
/// Berkeley DB files, one at the rpm path.
fn test_image() -> tempfile::TempDir {
    let not_go = minimal_elf64(&[0u8; 256]);
    let bdb = fixture("rpm/Packages-512");
    let l0 = Layer::new()
        .file(
            "etc/os-release",
            b"NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=39\n",
        )
        .file("var/lib/rpm/rpmdb.sqlite", &fixture("rpm/rpmdb.sqlite"))
        .tar();
    let l1 = Layer::new()
        .file_mode("usr/local/bin/hello", &fixture("go/hello.elf"), 0o755)
        .file_mode("usr/bin/not-go", &not_go, 0o755)
        .file_mode("usr/bin/run", SCRIPT, 0o755)
        .file("app/demo-app.jar", &fixture("java/demo-app.jar"))
        .tar();
    let l2 = Layer::new()
        .file("opt/legacy/var/lib/rpm/Packages", &bdb)
        .file("var/lib/rpm/Packages", &bdb)
        .tar();
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

const SCRIPT: &[u8] = b"#!/bin/sh\nexec /usr/local/bin/hello \"$@\"\n";

/// An RHEL 8 image keeps its rpm database in Berkeley DB only: the scan lists
/// its packages with the layer that wrote the database.
#[test]
fn scan_reads_a_berkeley_db_rpm_database() {
    let l0 = Layer::new()
        .file(
            "etc/os-release",
            b"NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"8.9\"\n",
        )
        .tar();
    let l1 = Layer::new()
        .file("var/lib/rpm/Packages", &fixture("rpm/Packages-512"))
        .tar();
    let mut blobs = Blobs::default();
    let layers = [(OCI_LAYER_GZIP, gzip(&l0), l0), (OCI_LAYER, l1.clone(), l1)];
    let m = blobs.image("amd64", &layers);
    let dir = tempfile::tempdir().unwrap();
    blobs.write_layout(dir.path(), &index(vec![m]));
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    assert!(
        scanned.warnings.list.is_empty(),
        "{:?}",
        scanned.warnings.list
    );
    let mut found: Vec<(usize, &str, &str, &str)> = scanned
        .packages
        .iter()
        .map(|p| {
            (
                p.layer,
                p.package.name.as_str(),
                p.package.version.as_str(),
                p.package.purl.as_str(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found[0],
        (
            1,
            "bulwark-hello",
            "2:1.2.3-4.fc39",
            "pkg:rpm/redhat/bulwark-hello@1.2.3-4.fc39?arch=x86_64&distro=rhel-8.9&epoch=2"
        )
    );
}

#[test]
fn scan_picks_the_new_inventories_out_of_layers() {
    let dir = test_image();
    for compact in [true, false] {
        let options = ScanOptions {
            compact,
            ..ScanOptions::default()
        };
        let scanned = scan_oci_layout(dir.path(), &options).unwrap();
        let found: Vec<(usize, &str, &str, &str)> = scanned
            .packages
            .iter()
            .map(|p| {
                (
                    p.layer,
                    p.package.path.as_str(),
                    p.package.name.as_str(),
                    p.package.version.as_str(),
                )
            })
            .collect();
        for want in [
            (
                0,
                "var/lib/rpm/rpmdb.sqlite",
                "bulwark-hello",
                "2:1.2.3-4.fc39",
            ),
            (0, "var/lib/rpm/rpmdb.sqlite", "tiny-noarch", "0.9-1"),
            (1, "usr/local/bin/hello", "stdlib", "1.19.8"),
            (1, "usr/local/bin/hello", "example.com/util", "v0.3.0"),
            (
                1,
                "app/demo-app.jar",
                "com.fasterxml.jackson.core:jackson-databind",
                "2.13.0",
            ),
            (1, "app/demo-app.jar", "org.example.osgi.helper", "3.1.4"),
        ] {
            assert!(
                found.contains(&want),
                "compact={compact}: {want:?} not in {found:?}"
            );
        }
        assert_eq!(found.len(), 3 + GO_WANT.len() + 3, "{found:?}");
        let rpm = scanned
            .packages
            .iter()
            .find(|p| p.package.name == "bulwark-hello")
            .unwrap();
        assert_eq!(rpm.layer_digest, scanned.layers[0]);
        assert_eq!(
            rpm.package.purl,
            "pkg:rpm/fedora/bulwark-hello@1.2.3-4.fc39?arch=x86_64&distro=fedora-39&epoch=2"
        );
        // The Berkeley DB beside rpmdb.sqlite is a leftover rpm no longer reads, so
        // its packages are not listed twice; the copy elsewhere is not routed to
        // the rpm parser (and is not a Go binary either: not ELF).
        assert!(
            scanned
                .packages
                .iter()
                .all(|p| !p.package.path.ends_with("Packages")),
            "{found:?}"
        );
        assert!(
            scanned.warnings.list.is_empty(),
            "{:?}",
            scanned.warnings.list
        );
        // What the scan holds of each file.
        let held = |p: &str| scanned.files.get(p).and_then(|n| n.content.clone());
        let hello = held("usr/local/bin/hello").unwrap();
        let jar = held("app/demo-app.jar").unwrap();
        if compact {
            assert!(hello.starts_with(gobinary::MAGIC));
            assert!(!jar.starts_with(b"PK"));
            assert_eq!(held("usr/bin/not-go"), None);
        } else {
            assert_eq!(&hello[..], &fixture("go/hello.elf")[..]);
            assert!(jar.starts_with(b"PK"));
            assert!(held("usr/bin/not-go").is_some());
        }
        assert_eq!(held("usr/bin/run").as_deref(), Some(SCRIPT));
    }
}

#[test]
fn scanned_go_and_maven_packages_match_osv_advisories() {
    use bulwark_scanner::report::match_image;
    use bulwark_scanner::vulndb::import_bytes;
    use bulwark_scanner::vulndb::store::{ImportMode, MemoryStore, VulnStore};

    let osv = |id: &str, eco: &str, name: &str, introduced: &str, fixed: &str| {
        format!(
            r#"{{"id": "{id}", "modified": "2024-01-01T00:00:00Z", "summary": "s",
            "affected": [{{"package": {{"ecosystem": "{eco}", "name": "{name}"}},
            "ranges": [{{"type": "{}", "events": [{{"introduced": "{introduced}"}}, {{"fixed": "{fixed}"}}]}}]}}]}}"#,
            if eco == "Maven" {
                "ECOSYSTEM"
            } else {
                "SEMVER"
            }
        )
    };
    let store = MemoryStore::new();
    for (i, doc) in [
        osv("GO-2023-0001", "Go", "stdlib", "1.19.0", "1.19.9"),
        osv("GO-2023-0002", "Go", "example.com/util", "0", "0.3.1"),
        osv("GO-2023-0003", "Go", "example.com/util", "0", "0.2.0"),
        osv(
            "GHSA-jjjh-jjxp-wpff",
            "Maven",
            "com.fasterxml.jackson.core:jackson-databind",
            "2.13.0",
            "2.13.4.1",
        ),
    ]
    .iter()
    .enumerate()
    {
        let batch = import_bytes(&format!("{i}.json"), doc.as_bytes());
        futures::executor::block_on(store.import(&batch, ImportMode::Merge, 0)).unwrap();
    }
    let dir = test_image();
    let scanned = scan_oci_layout(dir.path(), &ScanOptions::default()).unwrap();
    let report = futures::executor::block_on(match_image(&scanned, &store, 0)).unwrap();
    let mut hits: Vec<(&str, &str, &str)> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.id.as_str(),
                f.package.as_str(),
                f.installed_version.as_str(),
            )
        })
        .collect();
    hits.sort_unstable();
    assert_eq!(
        hits,
        [
            (
                "GHSA-jjjh-jjxp-wpff",
                "com.fasterxml.jackson.core:jackson-databind",
                "2.13.0"
            ),
            ("GO-2023-0001", "stdlib", "1.19.8"),
            ("GO-2023-0002", "example.com/util", "v0.3.0"),
        ],
        "{:#?}",
        report.findings
    );
}
