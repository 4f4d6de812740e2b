//! The host-wide rate budget (agents.md 5.5): sliding windows of 1 s, 60 s and 3 600 s for every request to the API
//! origin, plus a 60 s window for logins, shared by every agent process on the host through a locked file
//! (`<state dir>/ops-ratelimit.json`) or, in one process, memory. A 429 blocks everyone until `Retry-After`.

use crate::state::lock::{FileLock, LockError, atomic_write, lock_path_for};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

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

/// The old name of [`BudgetError`] (every refusal used to be an exhausted budget).
pub type BudgetExhausted = BudgetError;

/// Lock timeout of one admission's read-modify-write of the shared file (agents.md 5.5).
const FILE_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Windows {
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    requests: VecDeque<i64>,
    #[serde(default)]
    logins: VecDeque<i64>,
    #[serde(default)]
    blocked_until: i64,
}

fn one() -> u32 {
    1
}

/// The longest block a 429 can impose (1 h, the budget's longest window): a bogus `Retry-After` (or a corrupt
/// `blockedUntil` in the shared file) must not stop every agent on the host for years.
pub const MAX_BLOCK_MS: i64 = 3_600_000;

impl Windows {
    fn prune(&mut self, now: i64) {
        while self.requests.front().is_some_and(|&t| t <= now - 3_600_000) {
            self.requests.pop_front();
        }
        while self.logins.front().is_some_and(|&t| t <= now - 3_600_000) {
            self.logins.pop_front();
        }
    }

    /// Milliseconds to wait before one more admission of `kind` fits every window; 0 = now.
    #[cfg(test)]
    fn wait_ms(&self, now: i64, l: &Limits, kind: Admission) -> i64 {
        self.wait_why(now, l, kind).0
    }

    /// [`Windows::wait_ms`] with what the wait is for: the binding limit (its setting) or a 429's block.
    fn wait_why(&self, now: i64, l: &Limits, kind: Admission) -> (i64, String) {
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

    fn admit(&mut self, now: i64, kind: Admission) {
        self.requests.push_back(now);
        if kind == Admission::Login {
            self.logins.push_back(now);
        }
    }
}

enum Backend {
    Memory(Mutex<Windows>),
    /// The shared file, plus this process's last view of it: used when the file is missing, unreadable or corrupt,
    /// so a broken file never lifts the limits (agents.md 5.5: never bypass).
    File(PathBuf, Mutex<Windows>),
}

/// The budget shared by all API users of this process (and, with the file backend, of the host).
pub struct RateBudget {
    limits: Limits,
    backend: Backend,
    /// Epoch ms of the latest wait end already announced (one WARNING per wait, not per waiting task).
    announced_until: AtomicI64,
}

/// `HH:MM:SS UTC` of an epoch-ms instant (wait messages say until when).
pub(crate) fn utc_hms(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .map(|t| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl RateBudget {
    /// An in-process budget (daemon, demo, benchmarks).
    pub fn memory(limits: Limits) -> RateBudget {
        RateBudget {
            limits,
            backend: Backend::Memory(Mutex::new(Windows::default())),
            announced_until: AtomicI64::new(0),
        }
    }

    /// A host-wide budget in `path` (`ops-ratelimit.json`), each admission a locked read-modify-write.
    pub fn file(limits: Limits, path: PathBuf) -> RateBudget {
        RateBudget {
            limits,
            backend: Backend::File(path, Mutex::new(Windows::default())),
            announced_until: AtomicI64::new(0),
        }
    }

    /// Checks once, without waiting, that the shared file's lock can be taken (a lock busy with another process is
    /// fine). Runs call it before any work so a broken lock path stops the run with exit 2 at once (agents.md 4.2).
    ///
    /// Errors: [`BudgetError::Lock`] naming the lock file and the reason. The memory backend never fails.
    pub fn check(&self) -> Result<(), BudgetError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::File(p, _) => match FileLock::acquire(&lock_path_for(p), Duration::ZERO) {
                Ok(_) | Err(LockError::Timeout { .. }) => Ok(()),
                Err(e) => Err(BudgetError::Lock(e.to_string())),
            },
        }
    }

    /// Applies `f` to the windows under the backend's lock; file lock timeout 2 s, then wait and retry until
    /// `deadline` (never bypass, agents.md 5.5). A lock that cannot be taken at all is [`BudgetError::Lock`] at once;
    /// a lock still busy at `deadline` is [`BudgetError::Exhausted`]. The busy WARNING is rate-limited (one per second).
    fn with_windows<R>(
        &self,
        deadline: Instant,
        f: impl FnOnce(&mut Windows) -> R,
    ) -> Result<R, BudgetError> {
        match &self.backend {
            Backend::Memory(m) => Ok(f(&mut m.lock().expect("budget lock"))),
            Backend::File(p, local) => loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match FileLock::acquire(&lock_path_for(p), FILE_LOCK_TIMEOUT.min(left)) {
                    Ok(_g) => {
                        let mut local = local.lock().expect("budget lock");
                        // Only a regular file is read: a FIFO in its place would block the run forever.
                        let bytes = match std::fs::metadata(p) {
                            Ok(m) if !m.is_file() => {
                                Err(std::io::Error::other("not a regular file"))
                            }
                            _ => std::fs::read(p),
                        };
                        let mut w: Windows = match bytes {
                            Ok(b) => match serde_json::from_slice::<Windows>(&b) {
                                Ok(w) => w,
                                Err(e) => {
                                    crate::logging::warn_every(
                                        "api-client",
                                        &format!("budget-parse:{}", p.display()),
                                        format!(
                                            "rate budget {} is unparseable ({e}); rewriting it from this process's \
                                             record",
                                            p.display()
                                        ),
                                    );
                                    std::mem::take(&mut *local)
                                }
                            },
                            Err(_) => std::mem::take(&mut *local),
                        };
                        w.version = 1;
                        let r = f(&mut w);
                        *local = Windows {
                            version: 1,
                            requests: w.requests.clone(),
                            logins: w.logins.clone(),
                            blocked_until: w.blocked_until,
                        };
                        // Every admission writes: an unwritable file must not log one ERROR per request.
                        if let Ok(b) = serde_json::to_vec(&w)
                            && let Err(e) = atomic_write(p, &b, 0o644)
                        {
                            crate::logging::error_every(
                                "api-client",
                                &format!("budget-write:{}", p.display()),
                                format!("cannot write rate budget {}: {e}", p.display()),
                            );
                        }
                        return Ok(r);
                    }
                    Err(e @ LockError::Io { .. }) => {
                        return Err(BudgetError::Lock(e.to_string()));
                    }
                    Err(e) => {
                        if Instant::now() >= deadline {
                            return Err(BudgetError::Exhausted);
                        }
                        crate::logging::warn_every(
                            "api-client",
                            &format!("budget-lock:{}", p.display()),
                            format!("rate budget lock busy ({e}); retrying"),
                        );
                        let left = deadline.saturating_duration_since(Instant::now());
                        std::thread::sleep(Duration::from_millis(100).min(left));
                    }
                }
            },
        }
    }

    /// Waits for the earliest admissible instant and records the admission, or returns [`BudgetExhausted`] at once if
    /// that instant lies past `deadline`.
    ///
    /// Errors: [`BudgetError::Exhausted`] (defer the work), [`BudgetError::Lock`] (the shared file's lock is broken:
    /// the run must stop with exit 2).
    pub async fn acquire(&self, kind: Admission, deadline: Instant) -> Result<(), BudgetError> {
        loop {
            let limits = self.limits;
            let (wait, why) = self.with_windows(deadline, |w| {
                let now = now_ms();
                w.prune(now);
                let (wait, why) = w.wait_why(now, &limits, kind);
                if wait == 0 {
                    w.admit(now, kind);
                }
                (wait, why)
            })?;
            if wait == 0 {
                return Ok(());
            }
            let d = Duration::from_millis(wait as u64);
            if Instant::now() + d > deadline {
                return Err(BudgetError::Exhausted);
            }
            if d >= Duration::from_secs(2) {
                // One line per wait, not one per waiting task: concurrent walks waiting for the same window end
                // share the announcement (issue 9: never flood; say what for and until when).
                let until = now_ms() + wait;
                self.announce_wait(until, || {
                    format!(
                        "waiting {:.0} s, until {}, for {why}{}",
                        d.as_secs_f64(),
                        utc_hms(until),
                        if kind == Admission::Login {
                            " (a login)"
                        } else {
                            ""
                        }
                    )
                });
            }
            tokio::time::sleep(d).await;
        }
    }

    /// Logs the WARNING `msg()` for a wait ending at `until_ms` (epoch ms) unless a wait ending within 1 s of it or
    /// later was already announced: concurrent tasks waiting for the same instant produce one line (never flood).
    pub(crate) fn announce_wait(&self, until_ms: i64, msg: impl FnOnce() -> String) {
        let prev = self.announced_until.load(Ordering::Relaxed);
        if until_ms > prev + 1_000
            && self
                .announced_until
                .compare_exchange(prev, until_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            crate::logging::warn("api-client", msg());
        }
    }

    /// Blocks every user of the budget until `now + retry_after` (after a 429).
    pub fn block_for(&self, retry_after: Duration) {
        let ms = retry_after.as_millis().min(MAX_BLOCK_MS as u128) as i64;
        if retry_after.as_millis() > MAX_BLOCK_MS as u128 {
            crate::logging::warn(
                "api-client",
                format!(
                    "Retry-After of {} s capped at {} s",
                    retry_after.as_secs(),
                    MAX_BLOCK_MS / 1000
                ),
            );
        }
        let until = now_ms() + ms;
        // One lock timeout at most: a broken or busy shared file still blocks this process (its own record), and
        // the caller's next admission reports a broken lock.
        if let Err(e) = self.with_windows(Instant::now() + FILE_LOCK_TIMEOUT, |w| {
            w.blocked_until = w.blocked_until.max(until)
        }) {
            if let Backend::File(_, local) = &self.backend {
                let mut l = local.lock().expect("budget lock");
                l.blocked_until = l.blocked_until.max(until);
            }
            crate::logging::error_every(
                "api-client",
                "budget-block",
                format!("cannot record the 429 block in the shared budget: {e}"),
            );
        }
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
        let mut w = Windows::default();
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
        let mut w = Windows::default();
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
        let blocked = Windows {
            blocked_until: 1_005_000,
            ..Default::default()
        };
        let (wait, why) = blocked.wait_why(1_000_000, &l, Admission::Request);
        assert_eq!(wait, 5_000);
        assert!(why.contains("429 Retry-After"), "{why}");
        assert_eq!(utc_hms(0), "00:00:00 UTC");
    }

    #[test]
    fn a_stored_block_far_in_the_future_waits_at_most_an_hour() {
        let w = Windows {
            blocked_until: 99_999_999_999_999,
            ..Default::default()
        };
        assert_eq!(
            w.wait_ms(1_000_000, &limits(), Admission::Request),
            MAX_BLOCK_MS
        );
    }

    #[tokio::test]
    async fn file_budget_is_shared_between_instances_and_429_blocks_all() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ops-ratelimit.json");
        let a = RateBudget::file(limits(), p.clone());
        let b = RateBudget::file(limits(), p.clone());
        let deadline = Instant::now() + Duration::from_millis(200);
        for _ in 0..5 {
            a.acquire(Admission::Request, deadline).await.unwrap();
            b.acquire(Admission::Request, deadline).await.unwrap();
        }
        // 10 in this second across both: the 11th must wait ~1 s, past the 200 ms deadline.
        assert!(a.acquire(Admission::Request, deadline).await.is_err());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["requests"].as_array().unwrap().len(), 10);
        a.block_for(Duration::from_secs(30));
        assert!(
            b.acquire(Admission::Request, Instant::now() + Duration::from_secs(5))
                .await
                .is_err()
        );
    }
}
