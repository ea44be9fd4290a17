//! An in-memory limiter for failed logins, keyed by client IP and by username.
//!
//! Each key has a token bucket, implemented as GCRA (one timestamp per key): a [`Limit`] of
//! `max_failures` per `window` lets a key fail `max_failures` times in a burst; after that the
//! key is refused until the bucket drains, at a rate of one failure every
//! `window / max_failures` (so in the long run at most `max_failures` failures per `window`). A
//! refused attempt is not counted: checking does not extend a lockout. A success clears the
//! username's bucket but not the IP's, so an attacker holding one valid account cannot reset the
//! counter of the address it is guessing from.
//!
//! Defaults: 10 failures per 5 minutes per username, 50 per 5 minutes per IP.
//!
//! Keys are normalised so that trivial variations share a bucket: usernames are lower-cased
//! and truncated to 256 bytes, IPv4-mapped IPv6 addresses count as IPv4, and IPv6 addresses are
//! reduced to their /64 prefix (one host usually controls a whole /64).
//!
//! Memory is bounded: each map (usernames, IPs) holds at most `max_entries` keys (default
//! 100 000). When a new key would exceed that, keys whose buckets have drained are dropped; if
//! the map is still full, the eighth of the keys closest to draining are evicted — the keys
//! under the heaviest attack are the last to go.
//!
//! Time is passed in (seconds since the epoch); nothing here reads a clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

/// Longest username kept as a key, in bytes.
const MAX_USER_KEY_LEN: usize = 256;

/// At most `max_failures` failures per `window_secs` (both at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_failures: u32,
    pub window_secs: u64,
}

impl Limit {
    /// Milliseconds between drained failures, and the burst tolerance.
    fn params(self) -> (i64, i64) {
        let window_ms =
            i64::try_from(self.window_secs.max(1).saturating_mul(1000)).unwrap_or(i64::MAX / 4);
        let n = i64::from(self.max_failures.max(1));
        let interval = (window_ms / n).max(1);
        (interval, window_ms - interval)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub per_user: Limit,
    pub per_ip: Limit,
    /// Per map (usernames, IPs).
    pub max_entries: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_user: Limit {
                max_failures: 10,
                window_secs: 300,
            },
            per_ip: Limit {
                max_failures: 50,
                window_secs: 300,
            },
            max_entries: 100_000,
        }
    }
}

/// What a failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Ip(IpAddr),
    User(String),
}

/// Refused: try again after this many seconds (the `Retry-After` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed login attempts; retry after {0} s")]
pub struct RetryAfter(pub u64);

fn normalise_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn normalise_user(user: &str) -> String {
    let mut end = user.len().min(MAX_USER_KEY_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_lowercase()
}

/// Theoretical arrival times (ms) per key.
#[derive(Debug)]
struct Buckets<K> {
    tat: HashMap<K, i64>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new() -> Self {
        Buckets {
            tat: HashMap::new(),
        }
    }

    fn check(&self, key: &K, limit: Limit, now_ms: i64) -> Result<(), RetryAfter> {
        let (_, tolerance) = limit.params();
        match self.tat.get(key) {
            Some(&tat) if tat - now_ms > tolerance => {
                let wait_ms = tat - now_ms - tolerance;
                let secs = u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1);
                Err(RetryAfter(secs))
            }
            _ => Ok(()),
        }
    }

    fn record_failure(&mut self, key: K, limit: Limit, now_ms: i64, max_entries: usize) {
        let (interval, _) = limit.params();
        if !self.tat.contains_key(&key) {
            self.make_room(now_ms, max_entries);
        }
        let tat = self.tat.entry(key).or_insert(now_ms);
        *tat = (*tat).max(now_ms).saturating_add(interval);
    }

    fn make_room(&mut self, now_ms: i64, max_entries: usize) {
        let max_entries = max_entries.max(1);
        if self.tat.len() < max_entries {
            return;
        }
        self.tat.retain(|_, &mut tat| tat > now_ms);
        if self.tat.len() < max_entries {
            return;
        }
        let mut by_tat: Vec<(i64, K)> = self.tat.iter().map(|(k, &t)| (t, k.clone())).collect();
        let evict = (by_tat.len() / 8).max(1).min(by_tat.len());
        by_tat.select_nth_unstable_by_key(evict - 1, |(t, _)| *t);
        for (_, k) in by_tat.into_iter().take(evict) {
            self.tat.remove(&k);
        }
    }

    fn purge(&mut self, now_ms: i64) {
        self.tat.retain(|_, &mut tat| tat > now_ms);
    }
}

/// The limiter; share it behind an `Arc`. All methods take `&self`.
#[derive(Debug)]
pub struct LoginLimiter {
    config: RateLimitConfig,
    users: Mutex<Buckets<String>>,
    ips: Mutex<Buckets<IpAddr>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked, so poisoning is not an error here.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(now: i64) -> i64 {
    now.saturating_mul(1000)
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(RateLimitConfig::default())
    }
}

impl LoginLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        LoginLimiter {
            config,
            users: Mutex::new(Buckets::new()),
            ips: Mutex::new(Buckets::new()),
        }
    }

    pub fn config(&self) -> &RateLimitConfig {
        &self.config
    }

    /// `Ok` if `key` may attempt a login at `now`.
    pub fn check(&self, key: &LimitKey, now: i64) -> Result<(), RetryAfter> {
        match key {
            LimitKey::Ip(ip) => {
                lock(&self.ips).check(&normalise_ip(*ip), self.config.per_ip, ms(now))
            }
            LimitKey::User(u) => {
                lock(&self.users).check(&normalise_user(u), self.config.per_user, ms(now))
            }
        }
    }

    /// Count a failed login against `key`.
    pub fn record_failure(&self, key: &LimitKey, now: i64) {
        let max = self.config.max_entries;
        match key {
            LimitKey::Ip(ip) => {
                lock(&self.ips).record_failure(normalise_ip(*ip), self.config.per_ip, ms(now), max)
            }
            LimitKey::User(u) => lock(&self.users).record_failure(
                normalise_user(u),
                self.config.per_user,
                ms(now),
                max,
            ),
        }
    }

    /// Forget the failures counted against `key`.
    pub fn record_success(&self, key: &LimitKey) {
        match key {
            LimitKey::Ip(ip) => {
                lock(&self.ips).tat.remove(&normalise_ip(*ip));
            }
            LimitKey::User(u) => {
                lock(&self.users).tat.remove(&normalise_user(u));
            }
        }
    }

    /// Check both the IP and the username; on refusal, the longer wait.
    pub fn check_login(&self, ip: IpAddr, user: &str, now: i64) -> Result<(), RetryAfter> {
        let a = self.check(&LimitKey::Ip(ip), now);
        let b = self.check(&LimitKey::User(user.to_owned()), now);
        match (a, b) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(x), Ok(())) | (Ok(()), Err(x)) => Err(x),
            (Err(RetryAfter(x)), Err(RetryAfter(y))) => Err(RetryAfter(x.max(y))),
        }
    }

    /// Count a failed login against both the IP and the username.
    pub fn login_failed(&self, ip: IpAddr, user: &str, now: i64) {
        self.record_failure(&LimitKey::Ip(ip), now);
        self.record_failure(&LimitKey::User(user.to_owned()), now);
    }

    /// A successful login clears the username's failures (not the IP's; see the module docs).
    pub fn login_succeeded(&self, user: &str) {
        self.record_success(&LimitKey::User(user.to_owned()));
    }

    /// Drop every key whose bucket has drained (optional housekeeping; insertion does this too
    /// when a map is full).
    pub fn purge(&self, now: i64) {
        lock(&self.ips).purge(ms(now));
        lock(&self.users).purge(ms(now));
    }

    /// Keys currently tracked (IPs + usernames).
    pub fn len(&self) -> usize {
        lock(&self.ips).tat.len() + lock(&self.users).tat.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> LimitKey {
        LimitKey::User(s.into())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ten_failures_then_locked() {
        let l = LoginLimiter::default();
        let k = user("alice");
        for i in 0..10 {
            assert_eq!(l.check(&k, 1000), Ok(()), "attempt {i}");
            l.record_failure(&k, 1000);
        }
        assert_eq!(l.check(&k, 1000), Err(RetryAfter(30)));
        assert_eq!(l.check(&k, 1029), Err(RetryAfter(1)));
        assert_eq!(l.check(&k, 1030), Ok(()));
        // One more failure locks again for one interval.
        l.record_failure(&k, 1030);
        assert_eq!(l.check(&k, 1030), Err(RetryAfter(30)));
        // After a full window everything has drained.
        assert_eq!(l.check(&k, 1030 + 300), Ok(()));
        for _ in 0..9 {
            l.record_failure(&k, 1030 + 330);
        }
        assert_eq!(l.check(&k, 1030 + 330), Ok(()));
    }

    #[test]
    fn checks_do_not_count() {
        let l = LoginLimiter::default();
        let k = user("bob");
        for _ in 0..10 {
            l.record_failure(&k, 0);
        }
        for _ in 0..100 {
            assert!(l.check(&k, 0).is_err());
        }
        assert_eq!(l.check(&k, 30), Ok(()));
    }

    #[test]
    fn long_run_rate_is_bounded() {
        // An attacker who retries as soon as allowed gets at most max_failures per window
        // after the initial burst.
        let l = LoginLimiter::default();
        let k = user("carol");
        let mut failures = 0;
        for t in 0..3600 {
            if l.check(&k, t).is_ok() {
                l.record_failure(&k, t);
                failures += 1;
            }
        }
        // Burst of 10, then one every 30 s.
        assert_eq!(failures, 10 + 3600 / 30 - 1);
    }

    #[test]
    fn success_clears_user_only() {
        let l = LoginLimiter::default();
        let addr = ip("192.0.2.1");
        for _ in 0..50 {
            l.login_failed(addr, "dave", 0);
        }
        assert!(l.check(&LimitKey::Ip(addr), 0).is_err());
        assert!(l.check(&user("dave"), 0).is_err());
        assert_eq!(l.check_login(addr, "dave", 0), Err(RetryAfter(1230)));
        l.login_succeeded("dave");
        assert_eq!(l.check(&user("dave"), 0), Ok(()));
        assert_eq!(l.check_login(addr, "dave", 0), Err(RetryAfter(6)));
        l.record_success(&LimitKey::Ip(addr));
        assert_eq!(l.check_login(addr, "dave", 0), Ok(()));
    }

    #[test]
    fn per_ip_limit() {
        let l = LoginLimiter::default();
        let addr = ip("198.51.100.7");
        for i in 0..50 {
            // Spraying usernames does not help against the IP limit.
            assert_eq!(l.check_login(addr, &format!("u{i}"), 0), Ok(()));
            l.login_failed(addr, &format!("u{i}"), 0);
        }
        assert_eq!(l.check_login(addr, "fresh", 0), Err(RetryAfter(6)));
        assert_eq!(l.check_login(ip("198.51.100.8"), "fresh", 0), Ok(()));
    }

    #[test]
    fn keys_are_normalised() {
        let l = LoginLimiter::default();
        for _ in 0..10 {
            l.record_failure(&user("Eve"), 0);
        }
        assert!(l.check(&user("eve"), 0).is_err());
        assert!(l.check(&user("EVE"), 0).is_err());

        for _ in 0..50 {
            l.record_failure(&LimitKey::Ip(ip("2001:db8:1:2:aaaa::1")), 0);
        }
        assert!(
            l.check(&LimitKey::Ip(ip("2001:db8:1:2:ffff::9")), 0)
                .is_err()
        );
        assert!(l.check(&LimitKey::Ip(ip("2001:db8:1:3::1")), 0).is_ok());

        for _ in 0..50 {
            l.record_failure(&LimitKey::Ip(ip("::ffff:203.0.113.5")), 0);
        }
        assert!(l.check(&LimitKey::Ip(ip("203.0.113.5")), 0).is_err());

        let long = "é".repeat(1000);
        for _ in 0..10 {
            l.record_failure(&user(&long), 0);
        }
        assert!(l.check(&user(&"é".repeat(500)), 0).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let cfg = RateLimitConfig {
            max_entries: 64,
            ..RateLimitConfig::default()
        };
        let l = LoginLimiter::new(cfg);
        // A heavily attacked account...
        for _ in 0..10 {
            l.record_failure(&user("victim"), 0);
        }
        // ...survives a flood of one-off usernames.
        for i in 0..10_000 {
            l.record_failure(&user(&format!("spray{i}")), 0);
            assert!(lock(&l.users).tat.len() <= 64);
        }
        assert!(l.check(&user("victim"), 0).is_err());
        // Drained entries are dropped first, and by purge.
        l.purge(10_000);
        assert!(l.is_empty());
    }

    #[test]
    fn degenerate_limits_still_limit() {
        let l = LoginLimiter::new(RateLimitConfig {
            per_user: Limit {
                max_failures: 0,
                window_secs: 0,
            },
            per_ip: Limit {
                max_failures: 1,
                window_secs: 60,
            },
            max_entries: 0,
        });
        l.record_failure(&user("x"), 0);
        assert_eq!(l.check(&user("x"), 0), Err(RetryAfter(1)));
        assert_eq!(l.check(&user("x"), 1), Ok(()));
        let a = LimitKey::Ip(ip("192.0.2.9"));
        l.record_failure(&a, 0);
        assert_eq!(l.check(&a, 0), Err(RetryAfter(60)));
    }
}
