//! The stores behind traits (design/README.md §3 "store"; agents.md section 4, 5.5, 7.7): what the runtime keeps
//! between runs, without saying where. Each trait is the small set of atomic steps a backend must offer, so the file
//! implementations of [`file`](mod@file) (today's files, shared with the TypeScript agents) and the Redis ones of issue 16 are
//! interchangeable; no trait names a path or a `std::fs` type.
//!
//! * [`StateStore`]: lock-free snapshot (4.3) and one locked read-merge-write (4.6) applying the pure merge
//!   [`record_agent_run`], re-exported here beside it.
//! * [`RunLock`]: one run per agent at a time (1.3 step 2).
//! * [`BudgetStore`]: the host-wide rate budget's shared counters (5.5).
//! * [`OutboxStore`]: queued alerts and channel records (7.7).
//!
//! The content detail cache (6.2.1) is not here yet: it moves behind a `DetailCache` trait separately.

pub mod budget;
pub mod file;

pub use crate::state::{
    Retention, RunRecord, StampWindow, StateError, parse_state, prune, record_agent_run, upsert,
};
pub use budget::{BudgetStore, BudgetWindows, MemoryBudgetStore};

use crate::alert::outbox::{OutboxError, OutboxFile};
use crate::model::{AgentName, AgentResult, OpsState};
use chrono::{DateTime, Utc};

/// A local change applied inside the state's locked write, after the merge (ops-reporter's stamps, alert stamps).
pub type StateChange<'a> = Box<dyn FnOnce(&mut OpsState) + Send + 'a>;

/// The shared `OpsState` document (agents.md section 4). Implementations keep its format and the merge rules; they
/// only decide where the document lives and how writers exclude each other.
pub trait StateStore: Send + Sync {
    /// Where the state lives, for messages (a file path, a Redis key): never a secret.
    fn location(&self) -> String;

    /// Checks before a run does any work that the state can be read and its lock taken (agents.md 4.2, 4.4); with
    /// `probe_lock` (real runs; a dry run takes no lock, 4.3) the lock is taken and released once without waiting.
    ///
    /// Errors: [`StateError`] naming the state or lock and the reason; the run stops with exit 2.
    fn check(&self, probe_lock: bool) -> Result<(), StateError>;

    /// Lock-free snapshot (agents.md 4.3): missing → empty; unreadable or corrupt → empty with one ERROR line;
    /// never moves or writes anything.
    fn snapshot(&self, now: DateTime<Utc>) -> OpsState;

    /// Lock-free read that reports problems instead of hiding them (`status`): `Err` names the state and the reason.
    fn try_snapshot(&self, now: DateTime<Utc>) -> Result<OpsState, String>;

    /// Locked read-modify-write (agents.md 4.3, 4.6, 4.7): take the lock, read the fresh document (a corrupt one
    /// set aside, 4.4), apply `change` (local work only: no network or subprocess I/O), prune, recompute
    /// `systemStatus`, stamp `lastUpdated` with `now`, write atomically, release. Returns the written document.
    ///
    /// Errors: lock timeout, unreadable or unwritable state; nothing is written in each case.
    fn update(&self, now: DateTime<Utc>, change: StateChange<'_>) -> Result<OpsState, StateError>;
}

impl dyn StateStore {
    /// The run's one locked read-merge-write (agents.md 1.3 step 5, 4.6): [`record_agent_run`] on the fresh state,
    /// then `after_merge` (local only), in one [`StateStore::update`]. Returns the stored result (resolved copies
    /// included) and the written document.
    ///
    /// Errors: as [`StateStore::update`]; nothing is written.
    pub fn record_run(
        &self,
        now: DateTime<Utc>,
        record: RunRecord,
        after_merge: Option<StateChange<'_>>,
    ) -> Result<(AgentResult, OpsState), StateError> {
        let mut stored = None;
        let slot = &mut stored;
        let written = self.update(
            now,
            Box::new(move |st: &mut OpsState| {
                *slot = Some(record_agent_run(st, record, now));
                if let Some(f) = after_merge {
                    f(st);
                }
            }),
        )?;
        // `update` returned Ok, so the change ran and filled the slot.
        Ok((stored.unwrap_or_default(), written))
    }
}

/// Why a run could not take its agent's run lock (agents.md 1.3 step 2). Either way the run ends with exit 2 and
/// writes nothing (1.4 "second instance").
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    /// Another run of the agent holds it (this host's one-shot run, the daemon, or later another instance).
    #[error("another {agent} run is in progress (lock {location})")]
    Held {
        /// The agent's name (agents.md 1.1).
        agent: String,
        /// Where the lock lives, for the operator.
        location: String,
    },
    /// The lock cannot be taken at all (unwritable state dir, something else in its place, store unreachable).
    #[error("{0}")]
    Unavailable(String),
}

/// A held run lock: released when dropped, on every path (errors and panics included).
pub struct RunLease {
    _held: Box<dyn Send + Sync>,
}

impl RunLease {
    /// A lease whose release is dropping `held` (a locked file, a lease-renewal task handle, …).
    pub fn new(held: impl Send + Sync + 'static) -> RunLease {
        RunLease {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for RunLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLease")
    }
}

/// One run per agent at a time (agents.md 1.3 step 2): a one-shot run beside a daemon never runs an agent twice.
pub trait RunLock: Send + Sync {
    /// Takes the agent's lock without waiting.
    ///
    /// Errors: [`RunLockError::Held`] when another run holds it, [`RunLockError::Unavailable`] when it cannot be
    /// taken at all.
    fn try_acquire(&self, agent: AgentName) -> Result<RunLease, RunLockError>;
}

/// A local change applied to the outbox inside its locked write.
pub type OutboxChange<'a> = Box<dyn FnOnce(&mut OutboxFile) + Send + 'a>;

/// The alert outbox (agents.md 7.7): queued messages per channel and each channel's last outcome.
pub trait OutboxStore: Send + Sync {
    /// Where the outbox lives, for messages.
    fn location(&self) -> String;

    /// Lock-free read: missing → empty; unreadable or corrupt → empty with one ERROR line (nothing moved).
    fn read(&self) -> OutboxFile;

    /// Locked read-modify-write: apply `change` (local only), enforce the queue limits at `now`, write. In a dry run
    /// (the store's mode) nothing is written.
    ///
    /// Errors: [`OutboxError`] (lock timeout, unreadable or unwritable outbox); the stored outbox is unchanged.
    fn update(&self, now: DateTime<Utc>, change: OutboxChange<'_>) -> Result<(), OutboxError>;
}
