//! [`StateStore`] over the `ops-state.json` file store of `crate::state` (agents.md 4.1–4.7).

use crate::model::OpsState;
use crate::state::StateError;
use crate::store::{StateChange, StateStore};
use chrono::{DateTime, Utc};

impl StateStore for crate::state::StateStore {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn check(&self, probe_lock: bool) -> Result<(), StateError> {
        self.check_readable()
            .and_then(|()| self.check_lock(probe_lock))
    }

    fn snapshot(&self, now: DateTime<Utc>) -> OpsState {
        crate::state::StateStore::snapshot(self, now)
    }

    fn try_snapshot(&self, now: DateTime<Utc>) -> Result<OpsState, String> {
        crate::state::StateStore::try_snapshot(self, now)
    }

    fn update(&self, now: DateTime<Utc>, change: StateChange<'_>) -> Result<OpsState, StateError> {
        crate::state::StateStore::update(self, now, change).map(|((), st)| st)
    }
}
