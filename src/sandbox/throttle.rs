//! Per-IP throttling with the production limits of vizora-api.md §8, modelled on `@nestjs/throttler` v6: every hit
//! expires `ttl` after it was made (a sliding log); a hit beyond the limit blocks the bucket for `ttl`, and blocked
//! requests are not counted.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// One named throttler: `limit` requests per `ttl_ms`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    pub name: &'static str,
    pub limit: usize,
    pub ttl_ms: i64,
}

pub(crate) const SHORT: Limit = Limit {
    name: "short",
    limit: 10,
    ttl_ms: 1000,
};
pub(crate) const MEDIUM: Limit = Limit {
    name: "medium",
    limit: 100,
    ttl_ms: 60_000,
};
pub(crate) const LONG: Limit = Limit {
    name: "long",
    limit: 1000,
    ttl_ms: 3_600_000,
};
/// The `default` throttler on ordinary routes.
pub(crate) const DEFAULT: Limit = Limit {
    name: "default",
    limit: 1000,
    ttl_ms: 60_000,
};
/// The `default` throttler as overridden on `auth/login`.
pub(crate) const LOGIN: Limit = Limit {
    name: "default",
    limit: 5,
    ttl_ms: 60_000,
};
/// The `default` throttler as overridden on `auth/refresh`.
pub(crate) const REFRESH: Limit = Limit {
    name: "default",
    limit: 10,
    ttl_ms: 60_000,
};

#[derive(Default, Debug)]
struct Bucket {
    hits: VecDeque<i64>,
    blocked_until: i64,
}

/// A rejection: which throttler and how many seconds until it admits again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Throttled {
    pub name: &'static str,
    pub retry_after_s: i64,
}

/// Buckets per (IP, throttler, bucket key).
#[derive(Default, Debug)]
pub(crate) struct Throttler {
    buckets: HashMap<(IpAddr, &'static str), Bucket>,
}

impl Throttler {
    /// Forgets every bucket.
    pub(crate) fn reset(&mut self) {
        self.buckets.clear();
    }

    /// Counts a request of `ip` against `limits` in order (key suffix `key` separates overridden `default`
    /// buckets); the first throttler that refuses stops the evaluation.
    pub(crate) fn hit(
        &mut self,
        ip: IpAddr,
        limits: &[(Limit, &'static str)],
        now: i64,
    ) -> Result<(), Throttled> {
        for (l, key) in limits {
            let b = self.buckets.entry((ip, key)).or_default();
            while b.hits.front().is_some_and(|&t| t <= now - l.ttl_ms) {
                b.hits.pop_front();
            }
            if b.blocked_until > now {
                return Err(Throttled {
                    name: l.name,
                    retry_after_s: ceil_s(b.blocked_until - now),
                });
            }
            b.hits.push_back(now);
            if b.hits.len() > l.limit {
                b.blocked_until = now + l.ttl_ms;
                return Err(Throttled {
                    name: l.name,
                    retry_after_s: ceil_s(l.ttl_ms),
                });
            }
        }
        Ok(())
    }
}

fn ceil_s(ms: i64) -> i64 {
    ((ms + 999) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_window() {
        let mut t = Throttler::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let l = [(SHORT, "short")];
        for _ in 0..10 {
            assert!(t.hit(ip, &l, 1000).is_ok());
        }
        let e = t.hit(ip, &l, 1001).unwrap_err();
        assert_eq!(e.retry_after_s, 1);
        assert!(t.hit(ip, &l, 1500).is_err());
        assert!(t.hit(ip, &l, 2002).is_ok());
    }
}
