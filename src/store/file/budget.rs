//! The host-wide rate budget's counters in `<state dir>/ops-ratelimit.json` (agents.md 5.5), shared by every agent
//! process on the host: each admission one locked read-modify-write of the file.

use crate::state::lock::{FileLock, LockError, atomic_write, lock_path_for};
use crate::store::budget::{Admission, BudgetError, BudgetStore, BudgetWindows, Limits};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lock timeout of one admission's read-modify-write of the shared file (agents.md 5.5).
const FILE_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// The file store, plus this process's last view of it: used when the file is missing, unreadable or corrupt, so a
/// broken file never lifts the limits (agents.md 5.5: never bypass).
#[derive(Debug)]
pub struct FileBudgetStore {
    path: PathBuf,
    local: Mutex<BudgetWindows>,
}

impl FileBudgetStore {
    /// A store over `path` (normally `<state dir>/ops-ratelimit.json`); nothing is opened until the first use.
    pub fn new(path: PathBuf) -> FileBudgetStore {
        FileBudgetStore {
            path,
            local: Mutex::new(BudgetWindows::default()),
        }
    }

    /// Applies `f` to the windows under the backend's lock; file lock timeout 2 s, then wait and retry until
    /// `deadline` (never bypass, agents.md 5.5). A lock that cannot be taken at all is [`BudgetError::Lock`] at once;
    /// a lock still busy at `deadline` is [`BudgetError::Exhausted`]. The busy WARNING is rate-limited (one per second).
    fn with_windows<R>(
        &self,
        deadline: Instant,
        f: impl FnOnce(&mut BudgetWindows) -> R,
    ) -> Result<R, BudgetError> {
        let (p, local) = (&self.path, &self.local);
        {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match FileLock::acquire(&lock_path_for(p), FILE_LOCK_TIMEOUT.min(left)) {
                    Ok(_g) => {
                        let mut local = local.lock().unwrap_or_else(|e| e.into_inner());
                        // Only a regular file is read: a FIFO in its place would block the run forever.
                        let bytes = match std::fs::metadata(p) {
                            Ok(m) if !m.is_file() => {
                                Err(std::io::Error::other("not a regular file"))
                            }
                            _ => std::fs::read(p),
                        };
                        let mut w: BudgetWindows = match bytes {
                            Ok(b) => match serde_json::from_slice::<BudgetWindows>(&b) {
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
                        *local = w.clone();
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
            }
        }
    }
}

impl BudgetStore for FileBudgetStore {
    fn check(&self) -> Result<(), BudgetError> {
        match FileLock::acquire(&lock_path_for(&self.path), Duration::ZERO) {
            Ok(_) | Err(LockError::Timeout { .. }) => Ok(()),
            Err(e) => Err(BudgetError::Lock(e.to_string())),
        }
    }

    fn try_admit(
        &self,
        now_ms: i64,
        limits: &Limits,
        kind: Admission,
        deadline: Instant,
    ) -> Result<(i64, String), BudgetError> {
        self.with_windows(deadline, |w| w.try_admit(now_ms, limits, kind))
    }

    fn block_until(&self, until_ms: i64, deadline: Instant) -> Result<(), BudgetError> {
        let r = self.with_windows(deadline, |w| w.block_until(until_ms));
        if r.is_err() {
            // A broken or busy file still blocks this process (its own record): never bypass.
            self.local
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .block_until(until_ms);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            per_second: 2,
            per_minute: 100,
            per_hour: 1000,
            logins_per_minute: 5,
        }
    }

    #[test]
    fn admissions_are_recorded_in_the_shared_document_and_limited() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ops-ratelimit.json");
        let s = FileBudgetStore::new(p.clone());
        let deadline = Instant::now() + Duration::from_secs(1);
        s.check().unwrap();
        assert_eq!(
            s.try_admit(1_000_000, &limits(), Admission::Request, deadline)
                .unwrap()
                .0,
            0
        );
        assert_eq!(
            s.try_admit(1_000_001, &limits(), Admission::Login, deadline)
                .unwrap()
                .0,
            0
        );
        let (wait, why) = s
            .try_admit(1_000_002, &limits(), Admission::Request, deadline)
            .unwrap();
        assert_eq!(wait, 998, "{why}");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["requests"].as_array().unwrap().len(), 2);
        assert_eq!(v["logins"].as_array().unwrap().len(), 1);
        // Another store over the same file (another process) sees the same counters.
        let other = FileBudgetStore::new(p);
        assert!(
            other
                .try_admit(1_000_003, &limits(), Admission::Request, deadline)
                .unwrap()
                .0
                > 0
        );
    }

    #[test]
    fn a_block_that_cannot_be_recorded_still_blocks_this_process() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ops-ratelimit.json");
        // A directory in place of the lock file: the store cannot be used at all.
        std::fs::create_dir(lock_path_for(&p)).unwrap();
        let s = FileBudgetStore::new(p);
        assert!(matches!(s.check(), Err(BudgetError::Lock(_))));
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(s.block_until(2_000_000, deadline).is_err());
        let local = s.local.lock().unwrap().clone();
        assert_eq!(local.blocked_until, 2_000_000);
    }
}
