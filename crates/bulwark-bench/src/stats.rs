//! Recording operations and summarising them: every latency is kept and sorted at the end, so
//! percentiles are exact (nearest-rank).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one kind of operation did (successful ops only carry a latency).
#[derive(Debug, Default, Clone)]
pub struct KindRecord {
    pub latencies_us: Vec<u64>,
    pub bytes: u64,
    pub errors: u64,
}

/// Per-worker recorder; workers' recorders are merged at the end.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pub kinds: BTreeMap<&'static str, KindRecord>,
}

impl Recorder {
    pub fn ok(&mut self, kind: &'static str, latency: Duration, bytes: u64) {
        let k = self.kinds.entry(kind).or_default();
        k.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        k.bytes += bytes;
    }

    pub fn error(&mut self, kind: &'static str) {
        self.kinds.entry(kind).or_default().errors += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        for (kind, rec) in other.kinds {
            let k = self.kinds.entry(kind).or_default();
            k.latencies_us.extend(rec.latencies_us);
            k.bytes += rec.bytes;
            k.errors += rec.errors;
        }
    }

    /// All kinds together.
    pub fn total(&self) -> KindRecord {
        let mut t = KindRecord::default();
        for rec in self.kinds.values() {
            t.latencies_us.extend_from_slice(&rec.latencies_us);
            t.bytes += rec.bytes;
            t.errors += rec.errors;
        }
        t
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p`% of the
/// values at or below it. `p` in (0, 100]; 0 for no values.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil();
    let idx = if rank.is_finite() && rank >= 1.0 {
        (rank as usize).min(n) - 1
    } else {
        0
    };
    sorted.get(idx).copied().unwrap_or(0)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub fn from_micros(values: &mut [u64]) -> Self {
        values.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let mean = if values.is_empty() {
            0.0
        } else {
            values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64 / 1000.0
        };
        Latency {
            p50: ms(percentile(values, 50.0)),
            p90: ms(percentile(values, 90.0)),
            p99: ms(percentile(values, 99.0)),
            max: ms(values.last().copied().unwrap_or(0)),
            mean,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KindReport {
    pub ops: u64,
    pub errors: u64,
    pub bytes: u64,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
    pub latency_ms: Latency,
}

impl KindReport {
    pub fn new(mut rec: KindRecord, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ops = rec.latencies_us.len() as u64;
        KindReport {
            ops,
            errors: rec.errors,
            bytes: rec.bytes,
            ops_per_s: ops as f64 / secs,
            mib_per_s: rec.bytes as f64 / (1024.0 * 1024.0) / secs,
            latency_ms: Latency::from_micros(&mut rec.latencies_us),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerReport {
    pub pid: u32,
    /// utime + stime consumed during the measured phase.
    pub cpu_ms: f64,
    pub cpu_ms_per_op: f64,
    /// Largest VmRSS seen while sampling during the measured phase.
    pub rss_peak_sampled_kib: u64,
    /// VmHWM at the end: peak RSS since the process started (setup included).
    pub vmhwm_kib: u64,
    pub rss_samples: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub layers: usize,
    pub layer_size: u64,
    pub images: usize,
    pub large_size: u64,
    pub chunk_size: u64,
}

/// One run's result; printed as one JSON line with `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    #[serde(default)]
    pub label: Option<String>,
    pub workload: String,
    pub url: String,
    pub concurrency: usize,
    pub elapsed_s: f64,
    pub setup_s: f64,
    #[serde(flatten)]
    pub total: KindReport,
    pub by_kind: BTreeMap<String, KindReport>,
    pub server: Option<ServerReport>,
    pub client_cpu_ms_per_op: Option<f64>,
    pub params: Params,
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    pub fn human(&self) -> String {
        let mut s = String::new();
        let label = self
            .label
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        s.push_str(&format!(
            "{}{label}  {}  concurrency {}  elapsed {:.2} s (setup {:.2} s)\n",
            self.workload, self.url, self.concurrency, self.elapsed_s, self.setup_s
        ));
        s.push_str(&format!(
            "  {:<8} {:>8} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "kind", "ops", "errors", "ops/s", "MiB/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        ));
        let mut row = |name: &str, k: &KindReport| {
            s.push_str(&format!(
                "  {:<8} {:>8} {:>7} {:>10.1} {:>9.1} {:>9} {:>9} {:>9} {:>9}\n",
                name,
                k.ops,
                k.errors,
                k.ops_per_s,
                k.mib_per_s,
                fmt_ms(k.latency_ms.p50),
                fmt_ms(k.latency_ms.p90),
                fmt_ms(k.latency_ms.p99),
                fmt_ms(k.latency_ms.max),
            ));
        };
        if self.by_kind.len() > 1 {
            for (name, k) in &self.by_kind {
                row(name, k);
            }
        }
        row("all", &self.total);
        if let Some(srv) = &self.server {
            s.push_str(&format!(
                "  server pid {}: CPU {:.0} ms = {:.3} ms/op; peak RSS {:.1} MiB sampled in run \
                 ({} samples), VmHWM {:.1} MiB\n",
                srv.pid,
                srv.cpu_ms,
                srv.cpu_ms_per_op,
                srv.rss_peak_sampled_kib as f64 / 1024.0,
                srv.rss_samples,
                srv.vmhwm_kib as f64 / 1024.0,
            ));
        }
        if let Some(c) = self.client_cpu_ms_per_op {
            s.push_str(&format!("  client CPU {c:.3} ms/op\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[], 99.0), 0);
        assert_eq!(percentile(&[7], 1.0), 7);
        assert_eq!(percentile(&[7], 99.9), 7);
        // Small samples: p99 of 10 values is the maximum, p50 the 5th.
        let w: Vec<u64> = (10..20).collect();
        assert_eq!(percentile(&w, 99.0), 19);
        assert_eq!(percentile(&w, 50.0), 14);
        assert_eq!(percentile(&w, 90.0), 18);
    }

    #[test]
    fn latency_summary_sorts_and_converts() {
        let mut v = vec![3000, 1000, 2000, 10_000];
        let l = Latency::from_micros(&mut v);
        assert_eq!(l.p50, 2.0);
        assert_eq!(l.p99, 10.0);
        assert_eq!(l.max, 10.0);
        assert_eq!(l.mean, 4.0);
        assert_eq!(Latency::from_micros(&mut []), Latency::default());
    }

    #[test]
    fn recorders_merge_by_kind() {
        let mut a = Recorder::default();
        a.ok("pull", Duration::from_millis(2), 10);
        a.error("push");
        let mut b = Recorder::default();
        b.ok("pull", Duration::from_millis(4), 5);
        b.ok("push", Duration::from_millis(8), 1);
        a.merge(b);
        assert_eq!(a.kinds["pull"].latencies_us.len(), 2);
        assert_eq!(a.kinds["pull"].bytes, 15);
        assert_eq!(a.kinds["push"].errors, 1);
        let t = KindReport::new(a.total(), Duration::from_secs(2));
        assert_eq!(t.ops, 3);
        assert_eq!(t.errors, 1);
        assert_eq!(t.ops_per_s, 1.5);
        assert_eq!(t.latency_ms.max, 8.0);
    }
}
