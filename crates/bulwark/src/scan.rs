//! `bulwark scan`: inventory of an image on disk (OCI layout directory or `docker save` /
//! OCI tarball) — distro, packages and the layer that introduced each — and, when the
//! vulnerability database has data, its findings, counts, health grade and outdated
//! packages (docs/SCANNING.md); the config lint; or instead of all that, an SPDX or
//! CycloneDX SBOM.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bulwark_meta::SqliteStore;
use bulwark_scanner::image::{self, Platform, ScanOptions, ScannedImage, Selector};
use bulwark_scanner::lint::{self, LintOptions, LintReport};
use bulwark_scanner::report::{VulnReport, match_image};
use bulwark_scanner::sbom::{self, SbomFormat, SbomImage};
use bulwark_scanner::vulndb::Timestamp;
use bulwark_scanner::vulndb::store::VulnStore;
use serde_json::{Value, json};

use crate::config::Config;

/// What `bulwark scan` was asked for.
pub struct ScanArgs {
    pub path: PathBuf,
    pub reference: Option<String>,
    pub platform: String,
    pub json: bool,
    /// The metadata database to match against; default: the configured data directory's.
    pub db: Option<PathBuf>,
    /// Grade as of this time (RFC 3339); default: now.
    pub now: Option<String>,
    pub output: OutputArgs,
}

/// `bulwark scan` flags for what to print and where.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print an SBOM of the image's inventory instead of the report (no vulnerability
    /// matching): SPDX 2.3 JSON or CycloneDX 1.5 JSON.
    #[arg(long, value_name = "FORMAT", value_parser = ["spdx", "cyclonedx"])]
    pub sbom: Option<String>,
    /// Write the report or SBOM to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Config lint: flag images whose config `created` is more than this many days old.
    #[arg(long, value_name = "DAYS", default_value_t = lint::DEFAULT_MAX_AGE_DAYS)]
    pub max_age_days: u64,
}

pub async fn run(config: &Config, args: ScanArgs) -> anyhow::Result<()> {
    let options = ScanOptions {
        selector: Selector {
            reference: args.reference.clone(),
            platform: Platform::parse(&args.platform).context("parsing --platform")?,
        },
        ..ScanOptions::default()
    };
    let now = match &args.now {
        Some(t) => {
            Timestamp::parse(t)
                .with_context(|| format!("--now {t:?} is not an RFC 3339 time"))?
                .0
        }
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    };
    let path = args.path.clone();
    let scanned = tokio::task::spawn_blocking(move || {
        if path.is_dir() {
            image::scan_oci_layout(&path, &options)
        } else {
            image::scan_docker_archive(&path, &options)
        }
    })
    .await
    .context("scan task")?
    .with_context(|| format!("scanning {}", args.path.display()))?;
    if let Some(format) = &args.output.sbom {
        let format = SbomFormat::parse(format)
            .with_context(|| format!("--sbom {format:?}: expected spdx or cyclonedx"))?;
        let image = SbomImage::from_scan(&scanned, args.reference.as_deref());
        let doc = sbom::generate(format, &image, Timestamp(now));
        return emit(
            args.output.output.as_deref(),
            serde_json::to_string_pretty(&doc)?,
        );
    }
    let vulns = match_vulns(config, args.db.as_deref(), &scanned, now).await?;
    let lint = lint::lint_image(
        &scanned,
        &LintOptions {
            now,
            max_age_days: args.output.max_age_days,
        },
    );
    let report = report(&scanned, vulns.as_ref(), &lint);
    let text = if args.json {
        serde_json::to_string_pretty(&report)?
    } else {
        let mut out = String::new();
        print_table(&mut out, &report);
        out
    };
    emit(args.output.output.as_deref(), text)
}

/// Prints `text` (with a final newline) to standard output or writes it to `file`.
fn emit(file: Option<&Path>, mut text: String) -> anyhow::Result<()> {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match file {
        Some(f) => std::fs::write(f, text).with_context(|| format!("writing {}", f.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// `writeln!` into a `String` (which cannot fail).
macro_rules! out {
    ($o:expr) => {
        $o.push('\n')
    };
    ($o:expr, $($t:tt)*) => {{
        let _ = writeln!($o, $($t)*);
    }};
}

/// Matches the image against the vulnerability database: `None` when the database does not
/// exist (the configured one only; a `--db` that does not exist is an error) or holds no
/// advisories.
async fn match_vulns(
    config: &Config,
    db: Option<&Path>,
    scanned: &ScannedImage,
    now: i64,
) -> anyhow::Result<Option<(VulnReport, u64)>> {
    let (store, name): (std::sync::Arc<dyn VulnStore>, String) = match db {
        Some(p) if !p.exists() => anyhow::bail!("--db {} does not exist", p.display()),
        Some(p) => (
            std::sync::Arc::new(open_sqlite(p).await?),
            p.display().to_string(),
        ),
        None => match crate::backends::open_postgres_vulndb(config).await? {
            Some(pg) => pg,
            None => {
                let path = config.db_path();
                if !path.exists() {
                    return Ok(None);
                }
                (
                    std::sync::Arc::new(open_sqlite(&path).await?),
                    path.display().to_string(),
                )
            }
        },
    };
    let counts = store
        .counts()
        .await
        .context("reading the vulnerability database")?;
    if counts.is_empty() {
        if db.is_some() {
            eprintln!("note: {name} holds no vulnerability data (bulwark vulndb import PATH...)");
        }
        return Ok(None);
    }
    let found = match_image(scanned, &*store, now)
        .await
        .context("matching vulnerabilities")?;
    Ok(Some((found, counts.advisories())))
}

async fn open_sqlite(path: &Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(path)
        .await
        .with_context(|| format!("opening the vulnerability database {}", path.display()))
}

/// The stable JSON shape of a scan (documented in docs/SCANNING.md).
fn report(s: &ScannedImage, vulns: Option<&(VulnReport, u64)>, lint: &LintReport) -> Value {
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
    let mut warnings: Vec<String> = s
        .warnings
        .list
        .iter()
        .map(|w| {
            let layer = w.layer.map(|l| format!("layer {l}: ")).unwrap_or_default();
            format!("{layer}{}: {}", w.path, w.message)
        })
        .collect();
    if let Some((v, _)) = vulns {
        warnings.extend(v.warnings.iter().cloned());
    }
    let mut out = json!({
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
        "warnings": warnings,
        "warnings_omitted": s.warnings.omitted,
        "lint": serde_json::to_value(lint).unwrap_or(Value::Null),
    });
    if let (Some((v, advisories)), Some(obj)) = (vulns, out.as_object_mut()) {
        obj.insert(
            "findings".to_owned(),
            serde_json::to_value(&v.findings).unwrap_or(Value::Null),
        );
        let mut summary = serde_json::to_value(&v.summary).unwrap_or(Value::Null);
        if let Some(m) = summary.as_object_mut() {
            m.insert("database_advisories".to_owned(), json!(advisories));
        }
        obj.insert("summary".to_owned(), summary);
    }
    out
}

fn print_table(out: &mut String, report: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let distro = &report["distro"];
    out!(
        out,
        "image   {}",
        report["image"]["manifest_digest"]
            .as_str()
            .or(report["image"]["config_digest"].as_str())
            .unwrap_or("-")
    );
    out!(
        out,
        "distro  {}",
        distro["pretty_name"]
            .as_str()
            .or(distro["id"].as_str())
            .unwrap_or("unknown")
    );
    let empty = Vec::new();
    let packages = report["packages"].as_array().unwrap_or(&empty);
    out!(out, "{} packages\n", packages.len());
    out!(
        out,
        "{:<8} {:<40} {:<32} {:<24} LAYER",
        "KIND",
        "NAME",
        "VERSION",
        "SOURCE"
    );
    for p in packages {
        out!(
            out,
            "{:<8} {:<40} {:<32} {:<24} {}",
            text(&p["kind"]),
            text(&p["name"]),
            text(&p["version"]),
            text(&p["source_name"]),
            p["layer"]
        );
    }
    if let Some(findings) = report["findings"].as_array() {
        print_findings(out, report, findings);
    }
    print_lint(out, &report["lint"]);
    if let Some(w) = report["warnings"].as_array().filter(|w| !w.is_empty()) {
        out!(out, "\nwarnings:");
        for line in w {
            out!(out, "  {}", text(line));
        }
    }
}

fn print_findings(out: &mut String, report: &Value, findings: &[Value]) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    let summary = &report["summary"];
    let c = &summary["counts"];
    out!(
        out,
        "\n{} vulnerabilities ({} advisories in the database): critical {}, high {}, medium {}, \
         low {}, negligible {}, unknown {}; {} fixable, {} without a fix",
        num(&summary["total"]),
        num(&summary["database_advisories"]),
        num(&c["critical"]),
        num(&c["high"]),
        num(&c["medium"]),
        num(&c["low"]),
        num(&c["none"]),
        num(&c["unknown"]),
        num(&summary["fixable"]),
        num(&summary["unfixed"]),
    );
    let cause = &summary["grade_cause"];
    let because = if cause.is_object() {
        let age = cause["age_days"]
            .as_u64()
            .map_or("unknown age".to_owned(), |d| format!("{d} days old"));
        format!(
            " (oldest fixable: {} {} in {}, {age})",
            text(&cause["severity"]),
            text(&cause["id"]),
            text(&cause["package"])
        )
    } else {
        String::new()
    };
    out!(out, "health grade {}{because}", text(&summary["grade"]));
    if !findings.is_empty() {
        out!(
            out,
            "\n{:<9} {:<22} {:<28} {:<26} {:<26} {:<5} SOURCE",
            "SEVERITY",
            "ID",
            "PACKAGE",
            "INSTALLED",
            "FIXED",
            "LAYER"
        );
    }
    for f in findings {
        out!(
            out,
            "{:<9} {:<22} {:<28} {:<26} {:<26} {:<5} {}",
            f["severity"].as_str().unwrap_or("unknown"),
            text(&f["id"]),
            text(&f["package"]),
            text(&f["installed_version"]),
            f["fixed_version"].as_str().unwrap_or("(no fix)"),
            f["layer"],
            text(&f["source"]),
        );
    }
    if let Some(outdated) = summary["outdated"].as_array().filter(|o| !o.is_empty()) {
        out!(
            out,
            "\n{} outdated packages (a fixed version exists):",
            outdated.len()
        );
        for o in outdated {
            out!(
                out,
                "  {:<28} {} -> {} ({} fixed)",
                text(&o["package"]),
                text(&o["installed_version"]),
                text(&o["fixed_version"]),
                num(&o["fixes"]),
            );
        }
    }
}

fn print_lint(out: &mut String, lint: &Value) {
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    let c = &lint["counts"];
    let age = lint["image_age_days"]
        .as_u64()
        .map_or("unknown".to_owned(), |d| format!("{d} days"));
    out!(
        out,
        "\nconfig lint: high {}, medium {}, low {} (image age {age})",
        num(&c["high"]),
        num(&c["medium"]),
        num(&c["low"]),
    );
    let empty = Vec::new();
    let findings = lint["findings"].as_array().unwrap_or(&empty);
    if !findings.is_empty() {
        out!(
            out,
            "{:<7} {:<20} {:<40} MESSAGE",
            "LEVEL",
            "ID",
            "EVIDENCE"
        );
    }
    for f in findings {
        out!(
            out,
            "{:<7} {:<20} {:<40} {}",
            f["severity"].as_str().unwrap_or("-"),
            f["id"].as_str().unwrap_or("-"),
            f["evidence"].as_str().unwrap_or("-"),
            f["message"].as_str().unwrap_or("-"),
        );
    }
    if num(&lint["omitted"]) > 0 {
        out!(
            out,
            "  … and {} more setuid/setgid files",
            num(&lint["omitted"])
        );
    }
}
