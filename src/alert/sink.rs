//! [`Alerter`] as the agents' [`AlertSink`]: the runtime can hand
//! `Arc::new(Alerter::from_config(&cfg))` to every agent context so inline alerts and fix notifications go through
//! Slack and the outbox (agents.md 7.6). This adapter only translates types; the behaviour is [`Alerter::inline`].

use super::{Alerter, IncidentRef, InlineKind};
use crate::agents::{AlertSink, InlineAlert, InlineKind as AgentInlineKind};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

impl From<AgentInlineKind> for InlineKind {
    fn from(k: AgentInlineKind) -> InlineKind {
        match k {
            AgentInlineKind::Critical => InlineKind::Critical,
            AgentInlineKind::Warning => InlineKind::Warning,
            AgentInlineKind::Fixed => InlineKind::Fixed,
        }
    }
}

#[async_trait]
impl AlertSink for Alerter {
    /// Sends one inline message through [`Alerter::inline`]; returns the ids of the covered incidents when it was
    /// delivered (or captured in the demo), else nothing (a queued message is stamped later by the reporter).
    async fn inline(&self, alert: InlineAlert, now: DateTime<Utc>, dry_run: bool) -> Vec<String> {
        let refs: Vec<IncidentRef> = alert.refs.iter().map(IncidentRef::of).collect();
        Alerter::inline(
            self,
            alert.agent.as_str(),
            alert.kind.into(),
            &alert.summary,
            &alert.items,
            refs,
            now,
            dry_run,
        )
        .await
        .stamped_refs
        .into_iter()
        .map(|r| r.id)
        .collect()
    }
}
