//! `bulwark-bench`: load generator for OCI registries on loopback.
//!
//! `bulwark-bench --url http://127.0.0.1:5000 --workload pull-small --concurrency 8
//! --duration 10 --server-pid PID` runs one workload and reports throughput, latency
//! percentiles, and (with `--server-pid`) the server's CPU per operation and peak RSS.
//! `bulwark-bench compare results.jsonl` summarises `--json` lines of several runs.

mod auth;
mod client;
mod compare;
mod data;
mod procfs;
mod stats;
mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::stats::{KindReport, Params, Recorder, Report, ServerReport};
use crate::workload::{Ctx, Shape, Workload};

#[derive(Parser)]
#[command(
    name = "bulwark-bench",
    version,
    about = "Benchmark an OCI registry on loopback",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Summarise `--json` result lines of two registries: medians per workload and ratios.
    Compare(compare::CompareArgs),
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Registry base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:5000")]
    url: String,
    #[arg(long, value_enum, required = true)]
    workload: Option<Workload>,
    /// Concurrent workers (each one operation at a time).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to run; 0 = until --count operations.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many operations (whichever of --count and --duration comes first).
    #[arg(long)]
    count: Option<u64>,
    /// Size of each layer of a small image (suffixes K, M, G, KiB, MiB, GiB).
    #[arg(long, default_value = "256KiB", value_parser = parse_size)]
    layer_size: u64,
    /// Layers per small image.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Images the setup phase pushes for pull-small, manifest-get and mixed.
    #[arg(long, default_value_t = 16)]
    images: usize,
    /// Blob size for large-push and large-pull.
    #[arg(long, default_value = "128MiB", value_parser = parse_size)]
    large_size: u64,
    /// PATCH size for chunked uploads.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    chunk_size: u64,
    #[arg(long, env = "BULWARK_BENCH_USERNAME")]
    username: Option<String>,
    #[arg(long, env = "BULWARK_BENCH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Server process to measure: CPU time and peak RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// VmRSS sampling period in milliseconds (with --server-pid).
    #[arg(long, default_value_t = 100)]
    rss_sample_ms: u64,
    /// Print one JSON object per run instead of the table.
    #[arg(long)]
    json: bool,
    /// Read workloads use the images img-0 … img-<images-1> already in <prefix>/pull (from an
    /// earlier run) instead of pushing new ones: lets a pull-only account be measured, or the
    /// same (e.g. signed) images be read under different server settings.
    #[arg(long)]
    reuse_images: bool,
    /// Repositories used: <prefix>/push, <prefix>/pull, <prefix>/large.
    #[arg(long, default_value = "bench")]
    repo_prefix: String,
    /// Free-form label copied into the report (e.g. the registry's name).
    #[arg(long)]
    label: Option<String>,
}

/// "262144", "256K", "256KiB", "128M", "1GiB" (K/M/G are binary here, as in dd).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("unknown size unit {u:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} overflows"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::Compare(args)) => compare::run(&args),
        None => run(cli.run).await,
    }
}

const MAX_ERROR_MESSAGES: usize = 5;

async fn run(args: RunArgs) -> Result<()> {
    let Some(workload) = args.workload else {
        bail!("--workload is required");
    };
    if args.duration <= 0.0 && args.count.is_none() {
        bail!("--duration 0 needs --count");
    }
    if !args.duration.is_finite() || args.duration < 0.0 {
        bail!("--duration must be a non-negative number of seconds");
    }
    let creds = match (&args.username, &args.password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) => None,
        _ => bail!("--username and --password go together"),
    };
    let concurrency = args.concurrency.max(1);
    let layer_size = usize::try_from(args.layer_size).context("--layer-size")?;
    let server = match args.server_pid {
        Some(pid) => Some(procfs::Proc::new(pid)?),
        None => None,
    };
    let me = procfs::Proc::current().ok();

    let client = client::Client::connect(&args.url, creds, concurrency).await?;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id());
    let shape = Shape {
        layers: args.layers,
        layer_size,
        images: args.images,
        large_size: args.large_size,
        chunk_size: args.chunk_size.max(1),
        repo_prefix: args.repo_prefix.clone(),
        setup_concurrency: concurrency.min(8),
        reuse_images: args.reuse_images,
    };
    let mut ctx = Ctx::new(client, workload, shape, nonce);
    if !args.json {
        eprintln!(
            "{}: setting up on {} (auth: {})",
            workload.name(),
            args.url,
            ctx.client.auth_mode()
        );
    }
    let setup_start = Instant::now();
    ctx.setup().await.context("setup phase")?;
    let setup_s = setup_start.elapsed().as_secs_f64();
    let ctx = Arc::new(ctx);

    // Measured phase.
    let server_cpu0 = server.as_ref().map(|p| p.cpu_ms()).transpose()?;
    let client_cpu0 = me.as_ref().and_then(|p| p.cpu_ms().ok());
    let sampler = server
        .clone()
        .map(|p| procfs::RssSampler::start(p, Duration::from_millis(args.rss_sample_ms.max(1))));
    let counter = Arc::new(AtomicU64::new(0));
    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let start = Instant::now();
    let deadline = (args.duration > 0.0).then(|| start + Duration::from_secs_f64(args.duration));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let ctx = ctx.clone();
        let counter = counter.clone();
        let messages = messages.clone();
        let count = args.count;
        workers.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|c| n >= c) {
                    break;
                }
                let t0 = Instant::now();
                let (kind, result) = ctx.op(n).await;
                match result {
                    Ok(bytes) => rec.ok(kind, t0.elapsed(), bytes),
                    Err(e) => {
                        rec.error(kind);
                        if let Ok(mut m) = messages.lock()
                            && m.len() < MAX_ERROR_MESSAGES
                        {
                            m.push(format!("{kind} op {n}: {e:#}"));
                        }
                    }
                }
            }
            rec
        }));
    }
    let mut rec = Recorder::default();
    for w in workers {
        rec.merge(w.await.context("worker task")?);
    }
    let elapsed = start.elapsed();
    let server_cpu1 = server.as_ref().map(|p| p.cpu_ms()).transpose()?;
    let client_cpu1 = me.as_ref().and_then(|p| p.cpu_ms().ok());
    let (rss_peak, rss_samples) = match sampler {
        Some(s) => s.finish().await,
        None => (0, 0),
    };

    let by_kind: BTreeMap<String, KindReport> = rec
        .kinds
        .iter()
        .map(|(k, r)| (k.to_string(), KindReport::new(r.clone(), elapsed)))
        .collect();
    let total = KindReport::new(rec.total(), elapsed);
    let per_op = |ms: f64| {
        if total.ops > 0 {
            ms / total.ops as f64
        } else {
            0.0
        }
    };
    let server_report = match (&server, server_cpu0, server_cpu1) {
        (Some(p), Some(c0), Some(c1)) => Some(ServerReport {
            pid: p.pid,
            cpu_ms: c1 - c0,
            cpu_ms_per_op: per_op(c1 - c0),
            rss_peak_sampled_kib: rss_peak,
            vmhwm_kib: p.status_kib("VmHWM").unwrap_or(0),
            rss_samples,
        }),
        _ => None,
    };
    let client_cpu_ms_per_op = match (client_cpu0, client_cpu1) {
        (Some(a), Some(b)) if total.ops > 0 => Some(per_op(b - a)),
        _ => None,
    };
    let report = Report {
        label: args.label.clone(),
        workload: workload.name().to_owned(),
        url: args.url.clone(),
        concurrency,
        elapsed_s: elapsed.as_secs_f64(),
        setup_s,
        total,
        by_kind,
        server: server_report,
        client_cpu_ms_per_op,
        params: Params {
            layers: args.layers,
            layer_size: args.layer_size,
            images: args.images,
            large_size: args.large_size,
            chunk_size: args.chunk_size,
        },
    };
    if let Ok(m) = messages.lock() {
        for msg in m.iter() {
            eprintln!("error: {msg}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.human());
    }
    if report.total.ops == 0 {
        bail!("no operation succeeded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("262144"), Ok(262_144));
        assert_eq!(parse_size("256KiB"), Ok(262_144));
        assert_eq!(parse_size("256k"), Ok(262_144));
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }

    #[test]
    fn cli_shapes() {
        let c = Cli::try_parse_from([
            "bulwark-bench",
            "--workload",
            "large-push",
            "--large-size",
            "8MiB",
            "--json",
        ])
        .unwrap();
        assert!(c.cmd.is_none());
        assert_eq!(c.run.workload, Some(Workload::LargePush));
        assert_eq!(c.run.large_size, 8 << 20);
        assert_eq!(c.run.chunk_size, 16 << 20);
        let c = Cli::try_parse_from(["bulwark-bench", "compare", "r.jsonl"]).unwrap();
        assert!(matches!(c.cmd, Some(Cmd::Compare(_))));
        assert!(Cli::try_parse_from(["bulwark-bench", "--url", "http://127.0.0.1:1"]).is_err());
    }
}
