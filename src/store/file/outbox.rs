//! [`OutboxStore`] over the `ops-outbox.json` file of `crate::alert::outbox` (agents.md 7.7).

use crate::alert::outbox::{Outbox, OutboxError, OutboxFile};
use crate::store::{OutboxChange, OutboxStore};
use chrono::{DateTime, Utc};

impl OutboxStore for Outbox {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn read(&self) -> OutboxFile {
        Outbox::read(self)
    }

    fn update(&self, now: DateTime<Utc>, change: OutboxChange<'_>) -> Result<(), OutboxError> {
        Outbox::update(self, now, change)
    }
}
