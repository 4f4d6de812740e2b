//! The agents' side of alerting: [`InlineAlert`] and its [`InlineKind`], the [`AlertSink`] trait agents raise them
//! through, the log-only [`LogAlertSink`], and [`Alerter`] as the real sink: the runtime can hand
//! `Arc::new(Alerter::from_config(&cfg))` to every agent context so inline alerts and fix notifications go through
//! Slack and the outbox (agents.md 7.6). They live here, not in `agents`, so that `alert` never imports `agents`
//! (design/README.md §3); this adapter only translates types, the behaviour is [`Alerter::inline`].

use super::{Alerter, IncidentRef};
use crate::model::{AgentName, Incident};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Kind of an inline message (agents.md 7.6); its Slack title word and colour are in [`super::slack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InlineKind {
    /// Inline critical alert: `danger`, title `Vizora Ops: CRITICAL (<agent>)`.
    Critical,
    /// Inline warning alert: `warning`, title `Vizora Ops: WARNING (<agent>)`.
    Warning,
    /// Fix notification: `good`, title `Vizora Ops: FIXED (<agent>)`; Slack only, off with `OPS_NOTIFY_FIXES=false`.
    Fixed,
}

/// An inline alert or fix notification raised where an agent acts (agents.md 7.6).
#[derive(Debug, Clone)]
pub struct InlineAlert {
    /// The agent raising it.
    pub agent: AgentName,
    /// Critical, warning or fix notification.
    pub kind: InlineKind,
    /// One-line summary, e.g. `Auto-archived 3 expired content item(s)`.
    pub summary: String,
    /// Item lines (the first 10 are named).
    pub items: Vec<String>,
    /// Incidents covered (stamped when delivered): `(id, severity, status)`.
    pub refs: Vec<Incident>,
}

/// Where inline alerts go. Delivery failures never change an agent's exit code.
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// Sends (or, in a dry run, prints) one inline message; returns the ids of the incidents whose alert was
    /// delivered (to stamp in this run's write).
    async fn inline(&self, alert: InlineAlert, now: DateTime<Utc>, dry_run: bool) -> Vec<String>;
}

/// An alert sink that only logs (no channel configured).
pub struct LogAlertSink;

#[async_trait]
impl AlertSink for LogAlertSink {
    async fn inline(&self, alert: InlineAlert, _now: DateTime<Utc>, _dry_run: bool) -> Vec<String> {
        crate::logging::info(
            alert.agent.as_str(),
            format!(
                "alert ({:?}, no channel delivered): {} {}",
                alert.kind,
                alert.summary,
                alert.items.join("; ")
            ),
        );
        Vec::new()
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
            alert.kind,
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
