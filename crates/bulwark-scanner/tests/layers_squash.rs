//! Squashing real tar layers: whiteouts, opaque directories, re-adds,
//! replacement, links, and the tree's limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod layers_support;

use bulwark_scanner::image::{
    Content, Entry, EntryKind, FileInfo, ImageError, LayerSpec, Limits, Squash, read_layer,
};
use layers_support::*;
use proptest::prelude::*;

fn squash_with(layers: &[Vec<u8>], limits: &Limits) -> Result<Squash, ImageError> {
    let mut s = Squash::new(limits);
    for blob in layers {
        s.begin_layer();
        read_layer(
            blob.as_slice(),
            &LayerSpec::default(),
            limits,
            &all,
            &mut |e| s.apply(e),
        )?;
        s.end_layer();
    }
    Ok(s)
}

fn squash(layers: &[Vec<u8>]) -> Squash {
    squash_with(layers, &Limits::default()).unwrap()
}

fn paths(s: &Squash) -> Vec<&str> {
    s.iter().map(|(p, _)| p).collect()
}

#[test]
fn whiteout_deletes_a_file_and_a_directory_tree() {
    let base = Layer::new()
        .dir("etc")
        .file("etc/passwd", b"root")
        .file("etc/shadow", b"secret")
        .dir("opt/app")
        .file("opt/app/bin/tool", b"x")
        .file("opt/app/lib/libx.so", b"x")
        .file("opt/apple", b"sibling with a shared prefix")
        .gzip();
    let upper = Layer::new()
        .whiteout("etc/shadow")
        .whiteout("opt/app")
        .gzip();
    let s = squash(&[base, upper]);
    assert_eq!(paths(&s), ["etc", "etc/passwd", "opt/apple"]);
    assert_eq!(s.read("etc/passwd"), Some(&b"root"[..]));
    assert_eq!(s.content_bytes(), 4 + 28);
}

#[test]
fn opaque_directory_hides_lower_entries_only() {
    let base = Layer::new()
        .dir("etc/app")
        .file("etc/app/a.conf", b"a")
        .file("etc/app/sub/b.conf", b"b")
        .file("etc/other", b"o")
        .tar();
    // The same-layer file comes before the opaque marker: still kept.
    let upper = Layer::new()
        .file("etc/app/c.conf", b"c")
        .opaque("etc/app")
        .tar();
    let s = squash(&[base, upper]);
    assert_eq!(paths(&s), ["etc/app", "etc/app/c.conf", "etc/other"]);
    assert_eq!(
        s.get("etc/app").unwrap().layer,
        0,
        "the directory itself stays"
    );
    assert_eq!(s.get("etc/app/c.conf").unwrap().layer, 1);
}

#[test]
fn re_add_after_whiteout() {
    let l0 = Layer::new().file("app/config", b"v1").tar();
    let l1 = Layer::new().whiteout("app/config").tar();
    let l2 = Layer::new().file("app/config", b"v3").tar();
    let s = squash(&[l0.clone(), l1.clone()]);
    assert!(s.get("app/config").is_none());
    let s = squash(&[l0.clone(), l1, l2]);
    let f = s.get("app/config").unwrap();
    assert_eq!((f.layer, s.read("app/config")), (2, Some(&b"v3"[..])));

    // Whiteout and replacement in one layer, in either order.
    for upper in [
        Layer::new()
            .whiteout("app")
            .file("app/config", b"new")
            .tar(),
        Layer::new()
            .file("app/config", b"new")
            .whiteout("app")
            .tar(),
    ] {
        let s = squash(&[l0.clone(), upper]);
        assert_eq!(s.read("app/config"), Some(&b"new"[..]));
        assert_eq!(s.get("app/config").unwrap().layer, 1);
    }
}

#[test]
fn later_entries_replace_earlier_ones() {
    let l0 = Layer::new()
        .dir("d")
        .file("d/x", b"1")
        .symlink("link", "d")
        .tar();
    let l1 = Layer::new()
        .file("d", b"a file now")
        .dir("link")
        .file("same", b"first")
        .file("same", b"second")
        .tar();
    let s = squash(&[l0, l1]);
    assert!(s.get("d/x").is_none());
    assert_eq!(s.get("d").unwrap().info.kind, EntryKind::File);
    assert_eq!(s.get("link").unwrap().info.kind, EntryKind::Dir);
    assert_eq!(s.read("same"), Some(&b"second"[..]));
    assert_eq!(s.content_bytes(), 10 + 6);
}

#[test]
fn symlink_loops_are_errors() {
    let l = Layer::new()
        .symlink("a", "b")
        .symlink("b", "/a")
        .symlink("self", "./self")
        .symlink("x/y", "../x/y/z")
        .symlink("ok", "a/../real")
        .file("real", b"data")
        .tar();
    let s = squash(&[l]);
    for p in ["a", "b", "self", "x/y", "a/anything"] {
        let err = s.resolve(p).unwrap_err();
        assert!(
            matches!(err, ImageError::SymlinkLoop { limit: 40, .. }),
            "{p}: {err}"
        );
        assert_eq!(s.read(p), None);
    }
    // `a/..` is resolved after `a` is followed... which loops, as in Linux.
    assert!(s.resolve("ok").is_err());
    let l = Layer::new()
        .file("real", b"data")
        .symlink("one", "two")
        .symlink("two", "/real")
        .tar();
    let s = squash(&[l]);
    assert_eq!(s.read("one"), Some(&b"data"[..]));
    let limits = Limits {
        max_symlink_hops: 1,
        ..Limits::default()
    };
    let l = Layer::new()
        .file("real", b"data")
        .symlink("one", "two")
        .symlink("two", "/real")
        .tar();
    let s = squash_with(&[l], &limits).unwrap();
    assert!(matches!(
        s.resolve("one"),
        Err(ImageError::SymlinkLoop { .. })
    ));
}

#[test]
fn hardlinks_share_their_targets_content() {
    let l0 = Layer::new()
        .file("usr/lib/os-release", b"ID=debian\n")
        .tar();
    let l1 = Layer::new()
        .file_mode("usr/bin/su", b"ELF", 0o4755)
        .hardlink("etc/os-release", "usr/lib/os-release")
        .hardlink("usr/bin/su2", "/usr/bin/su")
        .hardlink("dangling", "nowhere")
        .tar();
    let s = squash(&[l0, l1]);
    assert_eq!(s.read("etc/os-release"), Some(&b"ID=debian\n"[..]));
    assert_eq!(s.read("usr/bin/su2"), Some(&b"ELF"[..]));
    assert_eq!(
        s.get("usr/bin/su2").unwrap().info.kind,
        EntryKind::Hardlink {
            target: "usr/bin/su".into()
        }
    );
    assert_eq!(s.read("dangling"), None);
    let w = &s.warnings().list;
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "dangling");
    assert_eq!(w[0].layer, Some(1));
}

#[test]
fn setuid_bits_survive_squashing() {
    let l0 = Layer::new().file_mode("usr/bin/passwd", b"", 0o4755).tar();
    let l1 = Layer::new().file_mode("usr/bin/newgrp", b"", 0o2755).tar();
    let s = squash(&[l0, l1]);
    let suid: Vec<&str> = s
        .iter()
        .filter(|(_, f)| f.info.is_setuid() || f.info.is_setgid())
        .map(|(p, _)| p)
        .collect();
    assert_eq!(suid, ["usr/bin/newgrp", "usr/bin/passwd"]);
}

#[test]
fn content_and_tree_limits() {
    let limits = Limits {
        max_content_bytes: 10,
        ..Limits::default()
    };
    let l = Layer::new().file("a", b"123456").file("b", b"123456").tar();
    let err = squash_with(&[l], &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::LimitExceeded {
                what: "wanted-file content held in memory",
                ..
            }
        ),
        "{err}"
    );
    // Replaced and whited-out content is released.
    let l0 = Layer::new().file("a", b"123456").tar();
    let l1 = Layer::new().whiteout("a").file("b", b"123456").tar();
    let l2 = Layer::new().file("b", b"1234567890").tar();
    let s = squash_with(&[l0, l1, l2], &limits).unwrap();
    assert_eq!(s.content_bytes(), 10);

    let limits = Limits {
        max_tree_entries: 3,
        ..Limits::default()
    };
    let l0 = Layer::new().file("a", b"").file("b", b"").tar();
    let l1 = Layer::new().file("c", b"").file("d", b"").tar();
    let err = squash_with(&[l0, l1], &limits).unwrap_err();
    assert!(matches!(err, ImageError::LimitExceeded { .. }), "{err}");
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    let name = prop::sample::select(vec![
        "a",
        "b",
        "a/b",
        "a/c",
        "a/b/c",
        ".wh.a",
        "a/.wh.b",
        "a/.wh..wh..opq",
        ".wh..wh..opq",
        "a/.wh.",
        "b/.wh..wh.plnk",
    ]);
    let kind = prop_oneof![
        Just(EntryKind::File),
        Just(EntryKind::Dir),
        prop::sample::select(vec!["a", "/b", "../a/b", "a/b/c", "."])
            .prop_map(|t| EntryKind::Symlink { target: t.into() }),
        prop::sample::select(vec!["a", "b", "a/b"])
            .prop_map(|t| EntryKind::Hardlink { target: t.into() }),
    ];
    (name, kind, prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(name, kind, data)| {
        let content = if kind == EntryKind::File {
            Content::Loaded(data.clone())
        } else {
            Content::Skipped
        };
        Entry {
            path: name.into(),
            info: FileInfo {
                kind,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: data.len() as u64,
            },
            content,
        }
    })
}

proptest! {
    #[test]
    fn squash_never_panics_and_accounts_content(
        layers in prop::collection::vec(prop::collection::vec(arb_entry(), 0..12), 1..5)
    ) {
        let mut s = Squash::new(&Limits::default());
        for layer in layers {
            s.begin_layer();
            for e in layer {
                let _ = s.apply(e);
            }
            s.end_layer();
        }
        let held: u64 = s.iter().map(|(_, f)| f.content.as_ref().map_or(0, |c| c.len() as u64)).sum();
        prop_assert_eq!(held, s.content_bytes());
        for (p, _) in s.iter() {
            prop_assert!(!p.contains(".wh."), "whiteout {} in tree", p);
            let _ = s.resolve(p);
        }
    }
}
