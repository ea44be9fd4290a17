//! Server process figures from Linux `/proc`: CPU time (utime + stime from `stat`) and memory
//! (`VmRSS`, `VmHWM` from `status`). No unsafe code: the clock tick rate comes from
//! `getconf CLK_TCK`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// utime + stime, in clock ticks, from the contents of `/proc/<pid>/stat`.
///
/// The second field (`comm`) is parenthesised and may itself contain spaces and parentheses,
/// so fields are counted from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Result<u64> {
    let close = stat
        .rfind(')')
        .ok_or_else(|| anyhow!("no ')' in /proc stat line"))?;
    let rest = stat.get(close + 1..).unwrap_or_default();
    // After the comm: field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |i: usize, name: &str| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("/proc stat line has no {name}"))?
            .parse::<u64>()
            .with_context(|| format!("/proc stat {name}"))
    };
    Ok(field(11, "utime")? + field(12, "stime")?)
}

/// A `kB` value such as `VmHWM:  12345 kB` from the contents of `/proc/<pid>/status`.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut parts = v.split_whitespace();
        let n = parts.next()?.parse().ok()?;
        match parts.next() {
            None | Some("kB") => Some(n),
            Some(_) => None,
        }
    })
}

/// Clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`; 100 if that fails, the
/// value on every mainstream Linux platform).
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t: &u64| t > 0)
        .unwrap_or(100)
}

/// A process watched through `/proc`.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    tck: u64,
}

impl Proc {
    pub fn new(pid: u32) -> Result<Self> {
        let p = Proc {
            pid,
            tck: clk_tck(),
        };
        p.cpu_ms().with_context(|| format!("reading /proc/{pid}"))?;
        Ok(p)
    }

    pub fn current() -> Result<Self> {
        Self::new(std::process::id())
    }

    /// CPU time (user + system) consumed so far, in milliseconds.
    pub fn cpu_ms(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        let ticks = parse_stat_cpu_ticks(&stat)?;
        Ok(ticks as f64 * 1000.0 / self.tck as f64)
    }

    pub fn status_kib(&self, key: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        match parse_status_kib(&status, key) {
            Some(v) => Ok(v),
            None => bail!("/proc/{}/status has no {key}", self.pid),
        }
    }
}

/// Samples VmRSS every `every` until stopped; yields (max kB, number of samples).
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<(u64, u64)>,
}

impl RssSampler {
    pub fn start(proc: Proc, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let (mut max, mut n) = (0u64, 0u64);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Ok(v) = proc.status_kib("VmRSS") {
                    max = max.max(v);
                    n += 1;
                }
                if flag.load(Ordering::Relaxed) {
                    return (max, n);
                }
            }
        });
        RssSampler { stop, handle }
    }

    pub async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_awkward_comm() {
        let line = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line).unwrap(), 325);
        assert!(parse_stat_cpu_ticks("1 (x) S 1 2").is_err());
        assert!(parse_stat_cpu_ticks("no parens").is_err());
    }

    #[test]
    fn status_values() {
        let status = "Name:\tbulwark\nVmPeak:\t  200000 kB\nVmHWM:\t   51234 kB\n\
                      VmRSS:\t   40000 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51234));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(40000));
        assert_eq!(parse_status_kib(status, "Threads"), Some(3));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib("VmRSS:\tlots kB\n", "VmRSS"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = Proc::current().unwrap();
        assert!(me.cpu_ms().unwrap() >= 0.0);
        assert!(me.status_kib("VmRSS").unwrap() > 0);
        assert!(me.status_kib("VmHWM").unwrap() >= me.status_kib("VmRSS").unwrap() / 2);
        assert!(clk_tck() > 0);
    }

    #[tokio::test]
    async fn sampler_sees_own_rss() {
        let s = RssSampler::start(Proc::current().unwrap(), Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (max, n) = s.finish().await;
        assert!(max > 0);
        assert!(n >= 2);
    }
}
