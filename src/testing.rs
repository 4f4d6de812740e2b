//! Test doubles defined once for the crate's tests and benches (feature `test-util`; issue 10): the recording alert
//! sink, and re-exports of the other fakes that live beside their port ([`ManualClock`], the sandbox process manager
//! and the in-process Vizora sandbox). Nothing here is used by the product itself.

pub use crate::clock::ManualClock;
pub use crate::procman::SandboxProcessManager;
pub use crate::sandbox::{DEMO_FIXTURE, Sandbox, SandboxOptions};

use crate::alert::{AlertSink, InlineAlert, InlineKind};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// One inline alert as an agent raised it through [`RecordingSink`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAlert {
    /// Critical, warning or fix notification.
    pub kind: InlineKind,
    /// The one-line summary.
    pub summary: String,
    /// The item lines.
    pub items: Vec<String>,
    /// Ids of the incidents the alert covers.
    pub incident_ids: Vec<String>,
    /// Whether the run was a dry run (agents.md 1.5: printed, never delivered).
    pub dry_run: bool,
}

/// An [`AlertSink`] that records every inline alert and, on real runs, reports the covered incidents as delivered
/// (so they are stamped `alertedAt`, agents.md 2.5); in a dry run it reports nothing delivered, like the real sink.
/// [`RecordingSink::undelivered`] records the same but never reports a delivery (every channel down).
#[derive(Default)]
pub struct RecordingSink {
    alerts: Mutex<Vec<RecordedAlert>>,
    undelivered: bool,
}

#[async_trait]
impl AlertSink for RecordingSink {
    async fn inline(&self, a: InlineAlert, _now: DateTime<Utc>, dry_run: bool) -> Vec<String> {
        let ids: Vec<String> = a.refs.iter().map(|i| i.id.clone()).collect();
        self.alerts.lock().unwrap().push(RecordedAlert {
            kind: a.kind,
            summary: a.summary,
            items: a.items,
            incident_ids: ids.clone(),
            dry_run,
        });
        if dry_run || self.undelivered {
            Vec::new()
        } else {
            ids
        }
    }
}

impl RecordingSink {
    /// A sink that records every alert and reports none delivered (no `alertedAt` stamp ever).
    pub fn undelivered() -> RecordingSink {
        RecordingSink {
            undelivered: true,
            ..Default::default()
        }
    }

    /// Every alert recorded so far, oldest first.
    pub fn all(&self) -> Vec<RecordedAlert> {
        self.alerts.lock().unwrap().clone()
    }

    /// Every alert recorded so far, oldest first, emptying the record.
    pub fn take(&self) -> Vec<RecordedAlert> {
        std::mem::take(&mut *self.alerts.lock().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentName, Incident, Severity};

    fn alert() -> InlineAlert {
        let i = Incident::new(
            AgentName::FleetManager,
            "display_offline",
            Severity::Warning,
            "display",
            "d1",
            "offline",
            "reload",
            Utc::now(),
        );
        InlineAlert {
            agent: AgentName::FleetManager,
            kind: InlineKind::Warning,
            summary: "1 display offline".into(),
            items: vec!["d1".into()],
            refs: vec![i],
        }
    }

    #[tokio::test]
    async fn recording_sink_reports_delivery_only_on_real_runs_and_take_empties_it() {
        let s = RecordingSink::default();
        assert_eq!(
            s.inline(alert(), Utc::now(), true).await,
            Vec::<String>::new()
        );
        let delivered = s.inline(alert(), Utc::now(), false).await;
        assert_eq!(
            delivered,
            vec!["fleet-manager:display_offline:d1".to_string()]
        );
        let all = s.take();
        assert_eq!(all.len(), 2);
        assert!(all[0].dry_run && !all[1].dry_run);
        assert_eq!(all[1].incident_ids, delivered);
        assert!(s.all().is_empty());
        let down = RecordingSink::undelivered();
        assert!(down.inline(alert(), Utc::now(), false).await.is_empty());
        assert_eq!(down.all().len(), 1);
    }
}
