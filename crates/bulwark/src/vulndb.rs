//! `bulwark vulndb`: import vulnerability feeds into the metadata database of the configured
//! data directory, and show what it holds.
//!
//! The data-directory lock is not taken: the database is SQLite in WAL mode, so an import
//! runs beside a serving registry (its writes wait for the server's, and the other way
//! round, through SQLite's busy timeout).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bulwark_meta::SqliteStore;
use bulwark_scanner::vulndb::store::{ImportMode, NewImportLog, VulnStore};
use bulwark_scanner::vulndb::{ImportBatch, Timestamp, import_path};
use clap::Subcommand;
use serde_json::json;

use crate::config::Config;

/// Skipped files listed per path before the rest are only counted.
const MAX_SKIPPED_SHOWN: usize = 50;

#[derive(Subcommand)]
pub enum VulndbCommand {
    /// Import feeds: OSV JSON/YAML, Alpine secdb (YAML/JSON), Debian security tracker JSON,
    /// Red Hat CSAF/VEX; files, directories, and .zip/.tar/.tar.gz archives of them.
    Import {
        /// Files, directories or archives.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// PATH is the whole feed: also delete stored advisories of its sources that it
        /// does not contain (one PATH only).
        #[arg(long)]
        replace: bool,
    },
    /// Show what the vulnerability database holds and the recent imports.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// How many import-log entries to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

pub async fn run(config: &Config, command: VulndbCommand) -> anyhow::Result<()> {
    match command {
        VulndbCommand::Import { paths, replace } => import(config, &paths, replace).await,
        VulndbCommand::Status { json, limit } => status(config, json, limit).await,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The configured metadata database (PostgreSQL when `database.url` names one, else the data
/// directory's SQLite file) and a printable name for it.
async fn open_store(config: &Config) -> anyhow::Result<(Arc<dyn VulnStore>, String)> {
    if let Some(pg) = crate::backends::open_postgres_vulndb(config).await? {
        return Ok(pg);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let path = config.db_path();
    let store = SqliteStore::open(&path)
        .await
        .with_context(|| format!("opening the metadata database {}", path.display()))?;
    Ok((Arc::new(store), path.display().to_string()))
}

async fn import(config: &Config, paths: &[PathBuf], replace: bool) -> anyhow::Result<()> {
    if replace && paths.len() != 1 {
        anyhow::bail!("--replace takes exactly one PATH (the whole feed)");
    }
    let mode = if replace {
        ImportMode::Replace
    } else {
        ImportMode::Merge
    };
    let (store, name) = open_store(config).await?;
    println!("database {name}");
    let mut imported = 0u64;
    let mut failed = 0usize;
    for path in paths {
        let started = Instant::now();
        let started_at = unix_now();
        let owned = path.clone();
        let parsed = tokio::task::spawn_blocking(move || import_path(&owned))
            .await
            .context("import task")?;
        let batch = match parsed {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        let summary = match store.import(&batch, mode, unix_now()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let finished_at = unix_now();
        imported += batch.advisories.len() as u64;
        print_batch(path, &batch, started.elapsed().as_secs_f64());
        for s in &summary.sources {
            println!(
                "  {:<15} {:>7} advisories ({} new, {} updated, {} unchanged{}{}), {} ranges",
                s.source.as_str(),
                s.advisories,
                s.inserted,
                s.updated,
                s.unchanged,
                if s.kept_newer > 0 {
                    format!(", {} older than stored, kept", s.kept_newer)
                } else {
                    String::new()
                },
                if replace {
                    format!(", {} removed", s.removed)
                } else {
                    String::new()
                },
                s.ranges,
            );
        }
        print_skipped(&batch);
        let entry = NewImportLog::of(
            &path.display().to_string(),
            &batch,
            &summary,
            started_at,
            finished_at,
        );
        if let Err(e) = store.log_import(&entry).await {
            eprintln!("warning: could not write the import log: {e}");
        }
    }
    if imported == 0 {
        anyhow::bail!(
            "nothing imported ({} of {} paths failed; the others held no advisories)",
            failed,
            paths.len()
        );
    }
    Ok(())
}

fn print_batch(path: &Path, b: &ImportBatch, secs: f64) {
    println!(
        "{}: {} files read, {} ignored, {} records, {} skipped ({secs:.1}s)",
        path.display(),
        b.files_read,
        b.files_ignored,
        b.records,
        b.skipped.len(),
    );
}

fn print_skipped(b: &ImportBatch) {
    for s in b.skipped.iter().take(MAX_SKIPPED_SHOWN) {
        println!("  skipped {}: {}", s.path, s.reason);
    }
    if b.skipped.len() > MAX_SKIPPED_SHOWN {
        println!(
            "  ... and {} more skipped",
            b.skipped.len() - MAX_SKIPPED_SHOWN
        );
    }
}

fn time(t: i64) -> String {
    Timestamp(t).to_rfc3339()
}

async fn status(config: &Config, json_out: bool, limit: u32) -> anyhow::Result<()> {
    let path = config.db_path();
    let pg = crate::backends::open_postgres_vulndb(config).await?;
    let database = match &pg {
        Some((_, name)) => name.clone(),
        None => path.display().to_string(),
    };
    let store: Option<Arc<dyn VulnStore>> = match pg {
        Some((store, _)) => Some(store),
        None if path.exists() => {
            Some(Arc::new(SqliteStore::open(&path).await.with_context(
                || format!("opening the metadata database {}", path.display()),
            )?))
        }
        None => None,
    };
    let (counts, log) = if let Some(store) = store {
        (
            store.counts().await.context("counting advisories")?,
            store
                .import_log(limit)
                .await
                .context("reading the import log")?,
        )
    } else {
        (Default::default(), Vec::new())
    };
    if json_out {
        let report = json!({
            "database": database,
            "advisories": counts.advisories(),
            "ranges": counts.ranges(),
            "sources": counts.sources,
            "imports": log.iter().map(|e| json!({
                "id": e.id,
                "source": e.entry.source,
                "path": e.entry.path,
                "files": e.entry.files,
                "records": e.entry.records,
                "advisories": e.entry.advisories,
                "ranges": e.entry.ranges,
                "inserted": e.entry.inserted,
                "updated": e.entry.updated,
                "skipped": e.entry.skipped,
                "started_at": time(e.entry.started_at),
                "finished_at": time(e.entry.finished_at),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("database {database}");
    if counts.is_empty() {
        println!("no vulnerability data: run `bulwark vulndb import PATH...`");
    } else {
        println!("\n{:<16} {:>10} {:>10}", "SOURCE", "ADVISORIES", "RANGES");
        for s in &counts.sources {
            println!(
                "{:<16} {:>10} {:>10}",
                s.source.as_str(),
                s.advisories,
                s.ranges
            );
        }
        println!(
            "{:<16} {:>10} {:>10}",
            "total",
            counts.advisories(),
            counts.ranges()
        );
    }
    if !log.is_empty() {
        println!(
            "\n{:<5} {:<20} {:<16} {:>10} {:>7} {:>7} {:>8} {:>7} {:>7}  PATH",
            "ID",
            "FINISHED",
            "SOURCE",
            "ADVISORIES",
            "NEW",
            "UPDATED",
            "RANGES",
            "FILES",
            "SKIPPED"
        );
        for e in &log {
            let x = &e.entry;
            println!(
                "{:<5} {:<20} {:<16} {:>10} {:>7} {:>7} {:>8} {:>7} {:>7}  {}",
                e.id,
                time(x.finished_at),
                x.source,
                x.advisories,
                x.inserted,
                x.updated,
                x.ranges,
                x.files,
                x.skipped,
                x.path
            );
        }
    }
    Ok(())
}
