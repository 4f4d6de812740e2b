//! [`RunLock`] as `flock` on `<state dir>/ops-run-<agent>.lock` (agents.md 1.3 step 2, 4.1): the kernel releases it
//! when the holder exits, so a crashed run never leaves a stale guard.

use crate::model::AgentName;
use crate::store::{RunLease, RunLock, RunLockError};
use std::path::PathBuf;

/// The single-instance guards of one state directory.
#[derive(Debug, Clone)]
pub struct FileRunLock {
    dir: PathBuf,
}

impl FileRunLock {
    /// Guards in `dir` (the state file's directory); created on first use.
    pub fn new(dir: impl Into<PathBuf>) -> FileRunLock {
        FileRunLock { dir: dir.into() }
    }

    /// The guard file of `agent`: `<dir>/ops-run-<agent>.lock`.
    pub fn path_for(&self, agent: AgentName) -> PathBuf {
        self.dir.join(format!("ops-run-{}.lock", agent.as_str()))
    }
}

impl RunLock for FileRunLock {
    fn try_acquire(&self, agent: AgentName) -> Result<RunLease, RunLockError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            RunLockError::Unavailable(format!(
                "cannot create state dir {}: {e}",
                self.dir.display()
            ))
        })?;
        let path = self.path_for(agent);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                RunLockError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?;
        if file.try_lock().is_err() {
            return Err(RunLockError::Held {
                agent: agent.as_str().to_string(),
                location: path.display().to_string(),
            });
        }
        Ok(RunLease::new(file))
    }
}
