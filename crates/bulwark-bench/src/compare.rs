//! `bulwark-bench compare`: medians of repeated runs per (workload, label) and the
//! candidate/baseline ratios against the project's performance targets, as a Markdown table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::stats::Report;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Files of JSON lines written by `--json` runs with `--label` (other lines are skipped).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Label of the reference registry.
    #[arg(long, default_value = "distribution")]
    baseline: String,
    /// Label of the registry under test.
    #[arg(long, default_value = "bulwark")]
    candidate: String,
    /// The disk's fsync'd sequential write speed in MiB/s, for the large-push target.
    #[arg(long)]
    disk_mib_per_s: Option<f64>,
}

const ORDER: [&str; 6] = [
    "push-small",
    "pull-small",
    "manifest-get",
    "large-push",
    "large-pull",
    "mixed",
];

pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    /// candidate / baseline at least this.
    AtLeast(f64),
    /// candidate / baseline at most this.
    AtMost(f64),
    /// candidate at least this fraction of the disk's fsync'd write speed.
    DiskFraction(f64),
}

#[derive(Clone, Copy)]
struct Metric {
    name: &'static str,
    get: fn(&Report) -> Option<f64>,
    decimals: usize,
}

fn is_large(workload: &str) -> bool {
    workload.starts_with("large-")
}

fn metrics(workload: &str) -> Vec<Metric> {
    let throughput = if is_large(workload) {
        Metric {
            name: "throughput MiB/s",
            get: |r| Some(r.total.mib_per_s),
            decimals: 1,
        }
    } else {
        Metric {
            name: "throughput ops/s",
            get: |r| Some(r.total.ops_per_s),
            decimals: 1,
        }
    };
    vec![
        throughput,
        Metric {
            name: "p50 latency ms",
            get: |r| Some(r.total.latency_ms.p50),
            decimals: 2,
        },
        Metric {
            name: "p99 latency ms",
            get: |r| Some(r.total.latency_ms.p99),
            decimals: 2,
        },
        Metric {
            name: "server CPU ms/op",
            get: |r| r.server.as_ref().map(|s| s.cpu_ms_per_op),
            decimals: 3,
        },
        Metric {
            name: "peak RSS MiB",
            get: |r| r.server.as_ref().map(|s| s.vmhwm_kib as f64 / 1024.0),
            decimals: 1,
        },
    ]
}

fn target(workload: &str, metric: &str) -> Option<Target> {
    match (workload, metric) {
        ("push-small" | "pull-small", "throughput ops/s") => Some(Target::AtLeast(1.5)),
        ("manifest-get", "throughput ops/s") => Some(Target::AtLeast(3.0)),
        ("large-push", "throughput MiB/s") => Some(Target::DiskFraction(0.9)),
        ("large-pull", "throughput MiB/s") => Some(Target::AtLeast(1.0)),
        (_, "server CPU ms/op") | (_, "peak RSS MiB") => Some(Target::AtMost(0.5)),
        _ => None,
    }
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) => format!("{x:.decimals$}"),
        None => "—".to_owned(),
    }
}

/// Reads reports from JSON lines, skipping anything that is not one.
pub fn read_reports(text: &str) -> Vec<Report> {
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn render(reports: &[Report], args: &CompareArgs) -> String {
    // workload -> label -> runs
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&Report>>> = BTreeMap::new();
    for r in reports {
        groups
            .entry(r.workload.as_str())
            .or_default()
            .entry(r.label.as_deref().unwrap_or("unlabelled"))
            .or_default()
            .push(r);
    }
    let (b, c) = (args.baseline.as_str(), args.candidate.as_str());
    let mut out = String::new();
    out.push_str(&format!(
        "| workload | metric | {b} | {c} | {c}/{b} | target | met |\n|---|---|---:|---:|---:|---|---|\n"
    ));
    let mut workloads: Vec<&str> = groups.keys().copied().collect();
    workloads.sort_by_key(|w| ORDER.iter().position(|o| o == w).unwrap_or(ORDER.len()));
    let mut notes = Vec::new();
    for w in &workloads {
        let Some(by_label) = groups.get(w) else {
            continue;
        };
        let empty = Vec::new();
        let base_runs = by_label.get(b).unwrap_or(&empty);
        let cand_runs = by_label.get(c).unwrap_or(&empty);
        for m in metrics(w) {
            let med = |runs: &[&Report]| {
                let v: Vec<f64> = runs.iter().filter_map(|r| (m.get)(r)).collect();
                median(&v)
            };
            let (bv, cv) = (med(base_runs), med(cand_runs));
            let ratio = match (bv, cv) {
                (Some(x), Some(y)) if x > 0.0 => Some(y / x),
                _ => None,
            };
            let (tgt, met) = match target(w, m.name) {
                None => (String::new(), String::new()),
                Some(Target::AtLeast(t)) => (
                    format!("≥ {t}×"),
                    ratio.map_or("n/a".into(), |r| yes_no(r >= t)),
                ),
                Some(Target::AtMost(t)) => (
                    format!("≤ {t}×"),
                    ratio.map_or("n/a".into(), |r| yes_no(r <= t)),
                ),
                Some(Target::DiskFraction(f)) => match args.disk_mib_per_s {
                    Some(d) => (
                        format!("≥ {:.0}% of disk {d:.0} MiB/s", f * 100.0),
                        cv.map_or("n/a".into(), |v| {
                            format!("{} ({:.0}%)", yes_no(v >= f * d), v / d * 100.0)
                        }),
                    ),
                    None => ("disk speed not given".into(), "n/a".into()),
                },
            };
            out.push_str(&format!(
                "| {w} | {} | {} | {} | {} | {tgt} | {met} |\n",
                m.name,
                fmt(bv, m.decimals),
                fmt(cv, m.decimals),
                ratio.map_or("—".into(), |r| format!("{r:.2}×")),
            ));
        }
        for (label, runs) in by_label {
            let tput: Vec<String> = runs
                .iter()
                .map(|r| {
                    if is_large(w) {
                        format!("{:.1}", r.total.mib_per_s)
                    } else {
                        format!("{:.1}", r.total.ops_per_s)
                    }
                })
                .collect();
            let errors: u64 = runs.iter().map(|r| r.total.errors).sum();
            let conc = runs.first().map(|r| r.concurrency).unwrap_or(0);
            notes.push(format!(
                "- {w} / {label}: {} run(s) at concurrency {conc}, throughput per run [{}]{}",
                runs.len(),
                tput.join(", "),
                if errors > 0 {
                    format!(", **{errors} failed ops**")
                } else {
                    String::new()
                }
            ));
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }
    out
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "**no**".into() }
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let mut reports = Vec::new();
    for f in &args.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        reports.extend(read_reports(&text));
    }
    if reports.is_empty() {
        bail!("no result lines found");
    }
    print!("{}", render(&reports, args));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{KindReport, Latency, Params, ServerReport};

    fn report(label: &str, workload: &str, ops_s: f64, mib_s: f64, cpu: f64) -> Report {
        Report {
            label: Some(label.into()),
            workload: workload.into(),
            url: "http://127.0.0.1:1".into(),
            concurrency: 4,
            elapsed_s: 1.0,
            setup_s: 0.0,
            total: KindReport {
                ops: 10,
                errors: 0,
                bytes: 0,
                ops_per_s: ops_s,
                mib_per_s: mib_s,
                latency_ms: Latency::default(),
            },
            by_kind: BTreeMap::new(),
            server: Some(ServerReport {
                cpu_ms_per_op: cpu,
                vmhwm_kib: 10240,
                ..Default::default()
            }),
            client_cpu_ms_per_op: None,
            params: Params {
                layers: 3,
                layer_size: 1,
                images: 1,
                large_size: 1,
                chunk_size: 1,
            },
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn table_has_ratios_and_verdicts() {
        let reports = vec![
            report("distribution", "manifest-get", 100.0, 0.0, 1.0),
            report("distribution", "manifest-get", 200.0, 0.0, 1.0),
            report("bulwark", "manifest-get", 600.0, 0.0, 0.4),
            report("bulwark", "large-push", 0.0, 95.0, 0.4),
        ];
        let args = CompareArgs {
            files: vec![],
            baseline: "distribution".into(),
            candidate: "bulwark".into(),
            disk_mib_per_s: Some(100.0),
        };
        let t = render(&reports, &args);
        assert!(
            t.contains("| manifest-get | throughput ops/s | 150.0 | 600.0 | 4.00× | ≥ 3× | yes |"),
            "{t}"
        );
        assert!(t.contains(
            "| manifest-get | server CPU ms/op | 1.000 | 0.400 | 0.40× | ≤ 0.5× | yes |"
        ));
        assert!(
            t.contains("| manifest-get | peak RSS MiB | 10.0 | 10.0 | 1.00× | ≤ 0.5× | **no** |")
        );
        assert!(t.contains("| large-push | throughput MiB/s | — | 95.0 | — | ≥ 90% of disk 100 MiB/s | yes (95%) |"), "{t}");
        assert!(t.contains("manifest-get / distribution: 2 run(s)"));
    }

    #[test]
    fn reads_json_lines_only() {
        let r = report("x", "mixed", 1.0, 1.0, 1.0);
        let text = format!(
            "noise\n{}\n\n{{broken\n",
            serde_json::to_string(&r).unwrap()
        );
        let got = read_reports(&text);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].workload, "mixed");
    }
}
