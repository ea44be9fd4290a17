//! Real-client tests: skopeo, podman and buildah push to and pull from a running `bulwark serve`.
//!
//! Test images are built here as OCI image layouts with real gzip-compressed tar layers; there is
//! no Docker engine and no network beyond loopback. A missing client makes a test fail when
//! `BULWARK_REQUIRE_CLIENTS=1` (as `scripts/test.sh` sets) and skip with a message otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the auth and scan tests; each uses a different part of it.
#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Image, Offline, Registry, Tools, Workspace, image, index, read_layout, sha256_hex, write_layout,
};

const SKOPEO_TIMEOUT: Duration = Duration::from_secs(120);
const PODMAN_TIMEOUT: Duration = Duration::from_secs(180);

/// Push a layout to `repo:tag` with `skopeo copy`, preserving digests.
fn skopeo_push(reg: &Registry, tools: &Tools, layout: &Path, layout_tag: &str, dest: &str) {
    tools.skopeo(
        reg,
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:{layout_tag}", layout.display()),
            &format!("docker://{}", reg.image_ref(dest)),
        ],
        SKOPEO_TIMEOUT,
    );
}

fn three_layer_image() -> Image {
    image(
        "amd64",
        &[
            vec![("etc/bulwark-release", b"bulwark test image\n".to_vec())],
            vec![
                (
                    "usr/share/bulwark/one.txt",
                    b"layer two, file one\n".to_vec(),
                ),
                (
                    "usr/share/bulwark/two.bin",
                    (0..=255u8).cycle().take(70_000).collect(),
                ),
            ],
            vec![("hello.txt", b"hello from the third layer\n".to_vec())],
        ],
    )
}

/// Guards the harness: the images built here are valid for the clients on their own, so a
/// failure in the tests below is the registry's.
#[test]
fn harness_images_are_valid_without_a_registry() {
    let Some(tools) = Tools::require(&["skopeo", "podman"]) else {
        return;
    };
    let ws = Offline::new();
    let img = three_layer_image();
    let arm = image("arm64", &[vec![("a", b"a".to_vec())]]);
    let idx = index(&[(&img, "amd64"), (&arm, "arm64")]);
    let mut blobs = img.blobs();
    blobs.extend(arm.blobs());
    let src = ws.scratch("src");
    write_layout(&src, &blobs, &idx, "multi");
    let dst = ws.scratch("dst");
    tools.skopeo(
        &ws,
        &[
            "copy",
            "--all",
            "--preserve-digests",
            &format!("oci:{}:multi", src.display()),
            &format!("oci:{}:multi", dst.display()),
        ],
        SKOPEO_TIMEOUT,
    );
    let back = read_layout(&dst, "multi");
    assert_eq!(back.top.bytes, idx.bytes);
    assert_eq!(back.blobs.len(), blobs.len() + 1);

    let single = ws.scratch("single");
    write_layout(&single, &img.blobs(), &img.manifest, "v1");
    let podman = tools.podman_store(&ws);
    // Into podman's storage with skopeo (podman names `oci:` pulls after the directory).
    tools.skopeo(
        &ws,
        &[
            "copy",
            &format!("oci:{}:v1", single.display()),
            &format!(
                "containers-storage:{}localhost/harness:v1",
                podman.store_spec()
            ),
        ],
        SKOPEO_TIMEOUT,
    );
    let out = podman.run(
        &["image", "inspect", "localhost/harness:v1"],
        PODMAN_TIMEOUT,
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("podman inspect JSON");
    let layers: Vec<&str> = v[0]["RootFS"]["Layers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let want: Vec<&str> = img.diff_ids.iter().map(String::as_str).collect();
    assert_eq!(layers, want, "{v}");
}

#[test]
fn skopeo_copy_multi_layer_round_trip() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let img = three_layer_image();
    let src = reg.scratch("src-layout");
    write_layout(&src, &img.blobs(), &img.manifest, "v1");

    skopeo_push(&reg, &tools, &src, "v1", "clients/skopeo-multi:v1");

    let raw = tools.skopeo(
        &reg,
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}", reg.image_ref("clients/skopeo-multi:v1")),
        ],
        SKOPEO_TIMEOUT,
    );
    assert_eq!(
        raw.stdout, img.manifest.bytes,
        "skopeo inspect --raw must return the pushed manifest byte for byte"
    );

    // Registry to registry, into another repository: skopeo mounts the blobs across.
    tools.skopeo(
        &reg,
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{}", reg.image_ref("clients/skopeo-multi:v1")),
            &format!("docker://{}", reg.image_ref("clients/skopeo-multi-copy:v1")),
        ],
        SKOPEO_TIMEOUT,
    );
    let (status, body) = reg.get(&format!(
        "/v2/clients/skopeo-multi-copy/manifests/{}",
        img.manifest.digest
    ));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.as_bytes(),
        img.manifest.bytes,
        "copied manifest differs"
    );

    let dst = reg.scratch("dst-layout");
    tools.skopeo(
        &reg,
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{}", reg.image_ref("clients/skopeo-multi-copy:v1")),
            &format!("oci:{}:back", dst.display()),
        ],
        SKOPEO_TIMEOUT,
    );
    let back = read_layout(&dst, "back");
    assert_eq!(
        back.top.digest, img.manifest.digest,
        "manifest digest changed"
    );
    assert_eq!(back.top.bytes, img.manifest.bytes, "manifest bytes changed");
    let want: BTreeSet<String> = img.blobs().iter().map(|b| b.digest.clone()).collect();
    let got: BTreeSet<String> = back.blobs.keys().cloned().collect();
    assert_eq!(got, want, "blob set differs after the round trip");
    for b in img.blobs() {
        assert_eq!(back.blobs[&b.digest], b.bytes, "blob {} differs", b.digest);
    }
}

#[test]
fn skopeo_copy_all_multi_arch_index_round_trip() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let amd = image("amd64", &[vec![("arch.txt", b"amd64 flavour\n".to_vec())]]);
    let arm = image(
        "arm64",
        &[
            vec![("arch.txt", b"arm64 flavour\n".to_vec())],
            vec![("extra.txt", b"only on arm\n".to_vec())],
        ],
    );
    let idx = index(&[(&amd, "amd64"), (&arm, "arm64")]);
    let mut blobs = amd.blobs();
    blobs.extend(arm.blobs());
    blobs.push(&idx);
    let src = reg.scratch("src-layout");
    write_layout(&src, &blobs, &idx, "multi");

    tools.skopeo(
        &reg,
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:multi", src.display()),
            &format!("docker://{}", reg.image_ref("clients/skopeo-index:multi")),
        ],
        SKOPEO_TIMEOUT,
    );

    let remote = format!("docker://{}", reg.image_ref("clients/skopeo-index:multi"));
    let raw = tools.skopeo(
        &reg,
        &["inspect", "--raw", "--tls-verify=false", &remote],
        SKOPEO_TIMEOUT,
    );
    assert_eq!(raw.stdout, idx.bytes, "index bytes changed");
    // skopeo resolves the index to the platform it is asked for.
    for (arch, img) in [("amd64", &amd), ("arm64", &arm)] {
        let out = tools.skopeo(
            &reg,
            &[
                "--override-arch",
                arch,
                "--override-os",
                "linux",
                "inspect",
                "--tls-verify=false",
                &remote,
            ],
            SKOPEO_TIMEOUT,
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("skopeo inspect JSON");
        assert_eq!(v["Architecture"], arch, "{v}");
        // skopeo 1.9 reports the digest of the index it fetched first; the layers are the
        // platform image's.
        assert_eq!(v["Digest"], idx.digest.as_str(), "{v}");
        let layers: Vec<&str> = img.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(v["Layers"], json!(layers), "{v}");
    }

    let dst = reg.scratch("dst-layout");
    tools.skopeo(
        &reg,
        &[
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            &remote,
            &format!("oci:{}:back", dst.display()),
        ],
        SKOPEO_TIMEOUT,
    );
    let back = read_layout(&dst, "back");
    assert_eq!(back.top.digest, idx.digest);
    assert_eq!(back.top.bytes, idx.bytes, "index bytes changed");
    let want: BTreeSet<String> = blobs.iter().map(|b| b.digest.clone()).collect();
    let got: BTreeSet<String> = back.blobs.keys().cloned().collect();
    assert_eq!(got, want, "blob set differs after copy --all");
    for b in &blobs {
        assert_eq!(back.blobs[&b.digest], b.bytes, "blob {} differs", b.digest);
    }
}

#[test]
fn podman_pull_push_pull_inspect() {
    let Some(tools) = Tools::require(&["skopeo", "podman"]) else {
        return;
    };
    let reg = Registry::start();
    let img = three_layer_image();
    let src = reg.scratch("src-layout");
    write_layout(&src, &img.blobs(), &img.manifest, "v1");
    skopeo_push(&reg, &tools, &src, "v1", "clients/podman-src:v1");

    let podman = tools.podman_store(&reg);
    let src_ref = reg.image_ref("clients/podman-src:v1");
    let dst_ref = reg.image_ref("clients/podman-dst:pushed");
    podman.run(&["pull", "--tls-verify=false", &src_ref], PODMAN_TIMEOUT);
    let inspect = podman.run(&["image", "inspect", &src_ref], PODMAN_TIMEOUT);
    let v: Value = serde_json::from_slice(&inspect.stdout).expect("podman inspect JSON");
    assert_eq!(v[0]["Digest"], img.manifest.digest.as_str(), "{v}");

    podman.run(&["tag", &src_ref, &dst_ref], PODMAN_TIMEOUT);
    podman.run(&["push", "--tls-verify=false", &dst_ref], PODMAN_TIMEOUT);
    podman.run(&["rmi", "--all", "--force"], PODMAN_TIMEOUT);
    let listed = podman.run(&["images", "--quiet"], PODMAN_TIMEOUT);
    assert!(
        String::from_utf8_lossy(&listed.stdout).trim().is_empty(),
        "images left after rmi --all"
    );

    podman.run(&["pull", "--tls-verify=false", &dst_ref], PODMAN_TIMEOUT);
    let inspect = podman.run(&["image", "inspect", &dst_ref], PODMAN_TIMEOUT);
    let v: Value = serde_json::from_slice(&inspect.stdout).expect("podman inspect JSON");
    let v = &v[0];
    assert_eq!(v["Architecture"], "amd64", "{v}");
    assert_eq!(v["Os"], "linux", "{v}");
    let tags: Vec<&str> = v["RepoTags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(tags.contains(&dst_ref.as_str()), "RepoTags {tags:?}");
    // The pushed layers may be recompressed, but their uncompressed content must be the same.
    let layers: Vec<&str> = v["RootFS"]["Layers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let want: Vec<&str> = img.diff_ids.iter().map(String::as_str).collect();
    assert_eq!(layers, want, "diff ids after podman push/pull");

    // What podman pushed is a well-formed image in the registry.
    let out = tools.skopeo(
        &reg,
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{dst_ref}"),
        ],
        SKOPEO_TIMEOUT,
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("skopeo inspect JSON");
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(3), "{v}");
}

#[test]
fn buildah_push_from_scratch() {
    let Some(tools) = Tools::require(&["buildah", "skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let buildah = tools.buildah_store(&reg);
    let ctx = reg.scratch("context");
    let content = b"built by buildah for bulwark\n";
    std::fs::write(ctx.join("greeting.txt"), content).unwrap();

    let ctr = buildah.run(&["from", "scratch"], PODMAN_TIMEOUT);
    let ctr = String::from_utf8_lossy(&ctr.stdout).trim().to_owned();
    assert!(!ctr.is_empty(), "buildah from printed no container name");
    buildah.run(
        &[
            "copy",
            &ctr,
            &ctx.join("greeting.txt").display().to_string(),
            "/greeting.txt",
        ],
        PODMAN_TIMEOUT,
    );
    buildah.run(
        &[
            "config",
            "--label",
            "org.example.built-by=bulwark-tests",
            &ctr,
        ],
        PODMAN_TIMEOUT,
    );
    buildah.run(
        &["commit", &ctr, "localhost/bulwark-buildah:v1"],
        PODMAN_TIMEOUT,
    );
    let dest = reg.image_ref("clients/buildah-scratch:v1");
    buildah.run(
        &[
            "push",
            "--tls-verify=false",
            "localhost/bulwark-buildah:v1",
            &format!("docker://{dest}"),
        ],
        PODMAN_TIMEOUT,
    );

    let out = tools.skopeo(
        &reg,
        &["inspect", "--tls-verify=false", &format!("docker://{dest}")],
        SKOPEO_TIMEOUT,
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("skopeo inspect JSON");
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["Labels"]["org.example.built-by"], "bulwark-tests", "{v}");

    // Pull it back and find the copied file in the layer.
    let dst = reg.scratch("pulled");
    tools.skopeo(
        &reg,
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{dest}"),
            &format!("oci:{}:pulled", dst.display()),
        ],
        SKOPEO_TIMEOUT,
    );
    let back = read_layout(&dst, "pulled");
    let manifest: Value = serde_json::from_slice(&back.top.bytes).unwrap();
    let layer = &manifest["layers"][0];
    let digest = layer["digest"].as_str().expect("layer digest");
    let media_type = layer["mediaType"].as_str().unwrap_or_default();
    let files = support::untar(&back.blobs[digest], media_type);
    assert_eq!(
        files.get("greeting.txt").map(Vec::as_slice),
        Some(&content[..]),
        "files in the pushed layer: {:?}",
        files.keys().collect::<Vec<_>>()
    );
}

#[test]
fn skopeo_delete_by_tag_and_by_digest() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let repo = "clients/skopeo-delete";
    let images: Vec<Image> = ["by-tag", "by-digest", "survivor"]
        .iter()
        .map(|t| image("amd64", &[vec![("which.txt", t.as_bytes().to_vec())]]))
        .collect();
    for (img, tag) in images.iter().zip(["by-tag", "by-digest", "survivor"]) {
        let src = reg.scratch(tag);
        write_layout(&src, &img.blobs(), &img.manifest, tag);
        skopeo_push(&reg, &tools, &src, tag, &format!("{repo}:{tag}"));
    }

    tools.skopeo(
        &reg,
        &[
            "delete",
            "--tls-verify=false",
            &format!("docker://{}", reg.image_ref(&format!("{repo}:by-tag"))),
        ],
        SKOPEO_TIMEOUT,
    );
    tools.skopeo(
        &reg,
        &[
            "delete",
            "--tls-verify=false",
            &format!(
                "docker://{}/{repo}@{}",
                reg.host(),
                images[1].manifest.digest
            ),
        ],
        SKOPEO_TIMEOUT,
    );

    for (img, tag) in images.iter().zip(["by-tag", "by-digest"]) {
        let by_tag = format!("docker://{}", reg.image_ref(&format!("{repo}:{tag}")));
        let by_digest = format!("docker://{}/{repo}@{}", reg.host(), img.manifest.digest);
        for gone in [by_tag, by_digest] {
            let out = tools.skopeo_may_fail(
                &reg,
                &["inspect", "--raw", "--tls-verify=false", &gone],
                SKOPEO_TIMEOUT,
            );
            assert!(
                !out.status.success(),
                "{gone} still readable after delete:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
            let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
            assert!(
                err.contains("manifest unknown") || err.contains("not found"),
                "unexpected error for {gone}: {err}\nserver log:\n{}",
                reg.log()
            );
        }
        // And over plain HTTP the digest is a 404 MANIFEST_UNKNOWN.
        let (status, body) = reg.get(&format!("/v2/{repo}/manifests/{}", img.manifest.digest));
        assert_eq!(status, 404, "GET deleted manifest: {body}");
        assert!(body.contains("MANIFEST_UNKNOWN"), "{body}");
    }

    let raw = tools.skopeo(
        &reg,
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}", reg.image_ref(&format!("{repo}:survivor"))),
        ],
        SKOPEO_TIMEOUT,
    );
    assert_eq!(
        raw.stdout, images[2].manifest.bytes,
        "the untouched image changed"
    );
    let tags = list_tags(&reg, &tools, repo);
    assert_eq!(tags, ["survivor"], "tags after deleting two images");
}

fn list_tags(reg: &Registry, tools: &Tools, repo: &str) -> Vec<String> {
    let out = tools.skopeo(
        reg,
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{}/{repo}", reg.host()),
        ],
        SKOPEO_TIMEOUT,
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("list-tags JSON");
    assert_eq!(v["Repository"], format!("{}/{repo}", reg.host()), "{v}");
    let mut tags: Vec<String> = v["Tags"]
        .as_array()
        .expect("Tags array")
        .iter()
        .map(|t| t.as_str().expect("tag string").to_owned())
        .collect();
    tags.sort();
    tags
}

#[test]
fn skopeo_list_tags_shows_every_pushed_tag() {
    let Some(tools) = Tools::require(&["skopeo"]) else {
        return;
    };
    let reg = Registry::start();
    let repo = "clients/skopeo-tags";
    let first = image("amd64", &[vec![("v.txt", b"one\n".to_vec())]]);
    let second = image("amd64", &[vec![("v.txt", b"two\n".to_vec())]]);
    let src1 = reg.scratch("one");
    write_layout(&src1, &first.blobs(), &first.manifest, "t");
    let src2 = reg.scratch("two");
    write_layout(&src2, &second.blobs(), &second.manifest, "t");

    let mut expected: BTreeMap<&str, &Image> = BTreeMap::new();
    for tag in ["1.0.0", "1.0", "latest", "Stable_2"] {
        skopeo_push(&reg, &tools, &src1, "t", &format!("{repo}:{tag}"));
        expected.insert(tag, &first);
    }
    for tag in ["2.0.0", "edge"] {
        skopeo_push(&reg, &tools, &src2, "t", &format!("{repo}:{tag}"));
        expected.insert(tag, &second);
    }
    // Moving a tag to another manifest keeps one entry for it.
    skopeo_push(&reg, &tools, &src2, "t", &format!("{repo}:latest"));
    expected.insert("latest", &second);

    let mut want: Vec<String> = expected.keys().map(|t| (*t).to_owned()).collect();
    want.sort();
    assert_eq!(list_tags(&reg, &tools, repo), want);

    for (tag, img) in expected {
        let (status, body) = reg.get(&format!("/v2/{repo}/manifests/{tag}"));
        assert_eq!(status, 200, "GET {tag}: {body}");
        assert_eq!(
            sha256_hex(body.as_bytes()),
            img.manifest.digest.trim_start_matches("sha256:"),
            "tag {tag} points at the wrong manifest"
        );
    }
    // A repository nobody pushed to is unknown.
    let out = tools.skopeo_may_fail(
        &reg,
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{}/clients/never-pushed", reg.host()),
        ],
        SKOPEO_TIMEOUT,
    );
    assert!(
        !out.status.success(),
        "list-tags of an unknown repository succeeded"
    );
}
