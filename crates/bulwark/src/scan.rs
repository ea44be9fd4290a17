//! `bulwark scan`: inventory of an image on disk (OCI layout directory or `docker save` /
//! OCI tarball) — distro, packages and the layer that introduced each. Vulnerability
//! matching joins this once the vulnerability database lands.

use std::path::Path;

use anyhow::Context;
use bulwark_scanner::image::{self, Platform, ScanOptions, ScannedImage, Selector};
use serde_json::{Value, json};

pub fn run(
    path: &Path,
    reference: Option<String>,
    platform: &str,
    json_out: bool,
) -> anyhow::Result<()> {
    let options = ScanOptions {
        selector: Selector {
            reference,
            platform: Platform::parse(platform).context("parsing --platform")?,
        },
        ..ScanOptions::default()
    };
    let scanned = if path.is_dir() {
        image::scan_oci_layout(path, &options)
    } else {
        image::scan_docker_archive(path, &options)
    }
    .with_context(|| format!("scanning {}", path.display()))?;
    let report = report(&scanned);
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// The stable JSON shape of a scan (documented in docs/SCANNING.md).
fn report(s: &ScannedImage) -> Value {
    let distro = s.distro.as_ref().map(|d| {
        json!({
            "id": d.id.as_str(),
            "version_id": d.version_id,
            "codename": d.version_codename,
            "pretty_name": d.pretty_name,
        })
    });
    let packages: Vec<Value> = s
        .packages
        .iter()
        .map(|p| {
            json!({
                "name": p.package.name,
                "version": p.package.version,
                "source_name": p.package.source_name,
                "source_version": p.package.source_version,
                "kind": p.package.kind.name(),
                "purl": p.package.purl,
                "path": p.package.path,
                "layer": p.layer,
                "layer_digest": p.layer_digest.to_string(),
            })
        })
        .collect();
    json!({
        "image": {
            "manifest_digest": s.manifest_digest.as_ref().map(ToString::to_string),
            "config_digest": s.config_digest.to_string(),
            "os": s.config.os,
            "architecture": s.config.architecture,
            "created": s.config.created,
            "user": s.config.user,
            "layers": s.layers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
        "distro": distro,
        "packages": packages,
        "warnings": s.warnings.list.iter().map(|w| {
            let layer = w.layer.map(|l| format!("layer {l}: ")).unwrap_or_default();
            format!("{layer}{}: {}", w.path, w.message)
        }).collect::<Vec<_>>(),
        "warnings_omitted": s.warnings.omitted,
    })
}

fn print_table(report: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let distro = &report["distro"];
    println!(
        "image   {}",
        report["image"]["manifest_digest"]
            .as_str()
            .or(report["image"]["config_digest"].as_str())
            .unwrap_or("-")
    );
    println!(
        "distro  {}",
        distro["pretty_name"]
            .as_str()
            .or(distro["id"].as_str())
            .unwrap_or("unknown")
    );
    let empty = Vec::new();
    let packages = report["packages"].as_array().unwrap_or(&empty);
    println!("{} packages\n", packages.len());
    println!(
        "{:<8} {:<40} {:<32} {:<24} LAYER",
        "KIND", "NAME", "VERSION", "SOURCE"
    );
    for p in packages {
        println!(
            "{:<8} {:<40} {:<32} {:<24} {}",
            text(&p["kind"]),
            text(&p["name"]),
            text(&p["version"]),
            text(&p["source_name"]),
            p["layer"]
        );
    }
    if let Some(w) = report["warnings"].as_array().filter(|w| !w.is_empty()) {
        println!("\nwarnings:");
        for line in w {
            println!("  {}", text(line));
        }
    }
}
