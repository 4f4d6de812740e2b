//! The host-wide rate budget (agents.md 5.5): sliding windows of 1 s, 60 s and 3 600 s for every request to the API
//! origin, plus a 60 s window for logins, shared by every agent process on the host through a locked file
//! (`<state dir>/ops-ratelimit.json`) or, in one process, memory. A 429 blocks everyone until `Retry-After`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

pub use crate::store::budget::{Admission, BudgetError, BudgetStore, Limits, MAX_BLOCK_MS};

/// The old name of [`BudgetError`] (every refusal used to be an exhausted budget).
pub type BudgetExhausted = BudgetError;

/// Lock timeout of one admission's read-modify-write of the shared file, and the longest a 429 block's record may
/// wait for its store (agents.md 5.5).
pub(crate) const FILE_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// The budget shared by all API users of this process (and, with the file backend, of the host).
pub struct RateBudget {
    limits: Limits,
    /// The shared counters (memory, the host's file, later Redis; design/README.md §3 "store").
    store: std::sync::Arc<dyn BudgetStore>,
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
        RateBudget::with_store(
            limits,
            std::sync::Arc::new(crate::store::budget::MemoryBudgetStore::new()),
        )
    }

    /// A host-wide budget in `path` (`ops-ratelimit.json`), each admission a locked read-modify-write.
    pub fn file(limits: Limits, path: PathBuf) -> RateBudget {
        RateBudget::with_store(
            limits,
            std::sync::Arc::new(crate::store::file::FileBudgetStore::new(path)),
        )
    }

    /// A budget over any [`BudgetStore`] (the runtime's, or a test's).
    pub fn with_store(limits: Limits, store: std::sync::Arc<dyn BudgetStore>) -> RateBudget {
        RateBudget {
            limits,
            store,
            announced_until: AtomicI64::new(0),
        }
    }

    /// The limits this budget admits against.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks once, without waiting, that the store is usable (a lock busy with another process is fine). Runs call
    /// it before any work so a broken lock path stops the run with exit 2 at once (agents.md 4.2).
    ///
    /// Errors: [`BudgetError::Lock`] naming the lock file and the reason. The memory backend never fails.
    pub fn check(&self) -> Result<(), BudgetError> {
        self.store.check()
    }

    /// Waits for the earliest admissible instant and records the admission, or returns [`BudgetExhausted`] at once if
    /// that instant lies past `deadline`.
    ///
    /// Errors: [`BudgetError::Exhausted`] (defer the work), [`BudgetError::Lock`] (the shared file's lock is broken:
    /// the run must stop with exit 2).
    pub async fn acquire(&self, kind: Admission, deadline: Instant) -> Result<(), BudgetError> {
        loop {
            let (wait, why) = self
                .store
                .try_admit(now_ms(), &self.limits, kind, deadline)?;
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
        if let Err(e) = self
            .store
            .block_until(until, Instant::now() + FILE_LOCK_TIMEOUT)
        {
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
    fn wait_messages_name_the_utc_time() {
        assert_eq!(utc_hms(0), "00:00:00 UTC");
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
