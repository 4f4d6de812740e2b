//! The host-wide rate budget's shared counters (agents.md 5.5) behind [`BudgetStore`]: the pure sliding windows
//! ([`BudgetWindows`]), the limits, and the in-process store. The waiting policy (sleep until admissible, the 429
//! block, one WARNING per wait) is `crate::vizora::budget::RateBudget`'s; the file store is
//! [`crate::store::file::FileBudgetStore`], a Redis one comes with issue 16 (one atomic script per admission).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

/// Limits of the budget (requests per window; logins per minute).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests in any sliding 1 s window (`OPS_RATE_PER_SECOND`, 10; agents.md 5.5).
    pub per_second: u32,
    /// Requests in any sliding 60 s window (`OPS_RATE_PER_MINUTE`, 100).
    pub per_minute: u32,
    /// Requests in any sliding 3 600 s window (`OPS_RATE_PER_HOUR`, 1000).
    pub per_hour: u32,
    /// Logins in any sliding 60 s window (`OPS_LOGINS_PER_MINUTE`, 5), on top of the request windows.
    pub logins_per_minute: u32,
}

/// What is being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Any other request to the API origin (logouts, probes of `/api/` paths included): the request windows only.
    Request,
    /// A login: counts as a request and against the login window.
    Login,
}

/// Why an admission was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BudgetError {
    /// The admissible instant lies past the caller's deadline, or the shared file's lock stayed busy until it: the
    /// work is deferred (not examined).
    #[error("API budget exhausted before the run deadline")]
    Exhausted,
    /// The shared file's lock cannot be taken at all (a directory or symlink at `ops-ratelimit.json.lock`, an
    /// unwritable state dir, a stale lock that cannot be removed): waiting would never help, so the run stops with
    /// exit 2 (agents.md 4.2, 5.5; never bypass the budget).
    #[error("host-wide API budget unusable: {0}")]
    Lock(String),
}

/// The budget's shared counters (agents.md 5.5): the admission instants (epoch ms) of requests and logins of the
/// last hour and the 429 block's end. Serialised as the `ops-ratelimit.json` document (`version`, `requests`,
/// `logins`, `blockedUntil`) by the file store; held in memory by [`MemoryBudgetStore`].
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetWindows {
    #[serde(default = "one")]
    pub(crate) version: u32,
    #[serde(default)]
    pub(crate) requests: VecDeque<i64>,
    #[serde(default)]
    pub(crate) logins: VecDeque<i64>,
    #[serde(default)]
    pub(crate) blocked_until: i64,
}

fn one() -> u32 {
    1
}

/// The longest block a 429 can impose (1 h, the budget's longest window): a bogus `Retry-After` (or a corrupt
/// `blockedUntil` in the shared file) must not stop every agent on the host for years.
pub const MAX_BLOCK_MS: i64 = 3_600_000;

impl BudgetWindows {
    /// Drops admissions older than the longest window (1 h) at `now` (epoch ms).
    pub fn prune(&mut self, now: i64) {
        while self.requests.front().is_some_and(|&t| t <= now - 3_600_000) {
            self.requests.pop_front();
        }
        while self.logins.front().is_some_and(|&t| t <= now - 3_600_000) {
            self.logins.pop_front();
        }
    }

    /// Milliseconds to wait before one more admission of `kind` fits every window; 0 = now.
    #[cfg(test)]
    pub(crate) fn wait_ms(&self, now: i64, l: &Limits, kind: Admission) -> i64 {
        self.wait_why(now, l, kind).0
    }

    /// `BudgetWindows::wait_ms` with what the wait is for: the binding limit (its setting) or a 429's block.
    pub fn wait_why(&self, now: i64, l: &Limits, kind: Admission) -> (i64, String) {
        let mut wait = (self.blocked_until - now).clamp(0, MAX_BLOCK_MS);
        let mut why = "the API's 429 Retry-After (shared by every agent on the host)".to_string();
        let mut check = |q: &VecDeque<i64>, limit: u32, window: i64, name: &str| {
            // Admissions are appended in time order, so the window's start is found by binary search: each check
            // stays O(log n) even with a raised hourly limit (the scale benchmark walks 400 000 requests).
            let in_window = q.len() - q.partition_point(|&t| t <= now - window);
            if in_window >= limit as usize {
                // The oldest entry that must leave the window for one more to fit.
                let idx = q.len() - in_window + (in_window - limit as usize);
                let w = q[idx] + window - now;
                if w > wait {
                    wait = w;
                    why = format!("the host-wide API budget: {limit} {name}");
                }
            }
        };
        check(
            &self.requests,
            l.per_second,
            1_000,
            "requests per second (OPS_RATE_PER_SECOND)",
        );
        check(
            &self.requests,
            l.per_minute,
            60_000,
            "requests per minute (OPS_RATE_PER_MINUTE)",
        );
        check(
            &self.requests,
            l.per_hour,
            3_600_000,
            "requests per hour (OPS_RATE_PER_HOUR)",
        );
        if kind == Admission::Login {
            check(
                &self.logins,
                l.logins_per_minute,
                60_000,
                "logins per minute (OPS_LOGINS_PER_MINUTE)",
            );
        }
        (wait, why)
    }

    /// Records one admission of `kind` at `now` (epoch ms).
    pub fn admit(&mut self, now: i64, kind: Admission) {
        self.requests.push_back(now);
        if kind == Admission::Login {
            self.logins.push_back(now);
        }
    }

    /// The atomic step of an admission (agents.md 5.5): prune, and if one more `kind` fits every window at `now`
    /// (epoch ms) record it and return `(0, _)`; otherwise `(ms to wait, what the wait is for)` and nothing recorded.
    pub fn try_admit(&mut self, now: i64, limits: &Limits, kind: Admission) -> (i64, String) {
        self.prune(now);
        let (wait, why) = self.wait_why(now, limits, kind);
        if wait == 0 {
            self.admit(now, kind);
        }
        (wait, why)
    }

    /// Extends the 429 block to at least `until_ms` (epoch ms).
    pub fn block_until(&mut self, until_ms: i64) {
        self.blocked_until = self.blocked_until.max(until_ms);
    }
}

/// Where the budget's counters live (agents.md 5.5; design/README.md §3 "store"). Each method is one atomic step on
/// the shared counters, so a store can be a locked file, memory or one Redis script; none of them sleeps past
/// `deadline` and none of them bypasses the budget on failure.
pub trait BudgetStore: Send + Sync {
    /// Checks once, without waiting, that the store is usable (a lock busy with another process is fine), so a
    /// broken store stops a run with exit 2 before any work (agents.md 4.2).
    ///
    /// Errors: [`BudgetError::Lock`] naming what is broken.
    fn check(&self) -> Result<(), BudgetError>;

    /// [`BudgetWindows::try_admit`] on the shared counters at `now_ms` (epoch ms): `(0, _)` = admitted and recorded,
    /// otherwise the wait in ms and what it is for.
    ///
    /// Errors: [`BudgetError::Exhausted`] when the store stayed busy until `deadline`, [`BudgetError::Lock`] when it
    /// cannot be used at all.
    fn try_admit(
        &self,
        now_ms: i64,
        limits: &Limits,
        kind: Admission,
        deadline: Instant,
    ) -> Result<(i64, String), BudgetError>;

    /// Blocks every user of the store until `until_ms` (epoch ms; a 429's `Retry-After`). A store that cannot record
    /// it still blocks this process (never bypass) and returns the error for the caller to log.
    fn block_until(&self, until_ms: i64, deadline: Instant) -> Result<(), BudgetError>;
}

/// The budget of one process (daemon, demo, benchmarks; `OPS_RATE_LIMIT_BACKEND=memory`).
#[derive(Debug, Default)]
pub struct MemoryBudgetStore {
    windows: Mutex<BudgetWindows>,
}

impl MemoryBudgetStore {
    /// An empty in-process store.
    pub fn new() -> MemoryBudgetStore {
        MemoryBudgetStore::default()
    }
}

impl BudgetStore for MemoryBudgetStore {
    fn check(&self) -> Result<(), BudgetError> {
        Ok(())
    }

    fn try_admit(
        &self,
        now_ms: i64,
        limits: &Limits,
        kind: Admission,
        _deadline: Instant,
    ) -> Result<(i64, String), BudgetError> {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Ok(w.try_admit(now_ms, limits, kind))
    }

    fn block_until(&self, until_ms: i64, _deadline: Instant) -> Result<(), BudgetError> {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .block_until(until_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            per_second: 10,
            per_minute: 100,
            per_hour: 1000,
            logins_per_minute: 5,
        }
    }

    #[test]
    fn windows_admit_up_to_each_limit_then_wait_until_the_oldest_leaves() {
        let mut w = BudgetWindows::default();
        let l = limits();
        for i in 0..10 {
            assert_eq!(w.wait_ms(1_000_000 + i, &l, Admission::Request), 0);
            w.admit(1_000_000 + i, Admission::Request);
        }
        assert_eq!(w.wait_ms(1_000_010, &l, Admission::Request), 990);
        for i in 0..5 {
            w.admit(1_002_000 + i, Admission::Login);
        }
        assert!(w.wait_ms(1_002_010, &l, Admission::Login) > 0);
        assert_eq!(w.wait_ms(1_003_100, &l, Admission::Request), 0);
    }

    /// Issue 9: "waiting 48 s for the host-wide API budget (requests)" did not say which limit or setting.
    #[test]
    fn budget_wait_names_the_binding_limit_and_its_setting() {
        let mut w = BudgetWindows::default();
        let l = limits();
        // 100 requests spread over 20 s: the per-second window is clear, the per-minute one binds.
        for i in 0..100 {
            w.admit(1_000_000 + i * 200, Admission::Request);
        }
        let (wait, why) = w.wait_why(1_030_000, &l, Admission::Request);
        assert_eq!(wait, 30_000);
        assert!(
            why.contains("100 requests per minute (OPS_RATE_PER_MINUTE)"),
            "{why}"
        );
        let blocked = BudgetWindows {
            blocked_until: 1_005_000,
            ..Default::default()
        };
        let (wait, why) = blocked.wait_why(1_000_000, &l, Admission::Request);
        assert_eq!(wait, 5_000);
        assert!(why.contains("429 Retry-After"), "{why}");
    }

    #[test]
    fn a_stored_block_far_in_the_future_waits_at_most_an_hour() {
        let w = BudgetWindows {
            blocked_until: 99_999_999_999_999,
            ..Default::default()
        };
        assert_eq!(
            w.wait_ms(1_000_000, &limits(), Admission::Request),
            MAX_BLOCK_MS
        );
    }
}
