//! The file implementations of the store traits (agents.md section 4): today's files in the state directory, with
//! the lock-file protocol shared with the TypeScript agents. The types are the existing ones, re-exported under
//! `File…` names; `crate::state::…` and `crate::alert::outbox::…` paths keep working.

mod budget;
mod outbox;
mod run_lock;
mod state;

pub use crate::alert::outbox::Outbox as FileOutboxStore;
pub use crate::state::StateStore as FileStateStore;
pub use budget::FileBudgetStore;
pub use run_lock::FileRunLock;
