//! Alerting (agents.md section 7) as a pipeline of stages in the manner of Alertmanager's notify pipeline
//! (style.md), one module per stage and one per channel:
//!
//! 1. transitions and de-duplication: [`decision`], the reporter's pure alert decision (7.5), the only place windows
//!    are judged;
//! 2. message building: `inline` (agents' inline alerts and fix notifications, 7.6) and `status` (the reporter's
//!    status, recovery and digest messages, 6.5.1 steps 4–5), with the payload builders of [`slack`] and [`email`]
//!    (7.2, 7.3);
//! 3. the [`outbox`] (7.7): every message is queued before its first attempt and removed only when delivered;
//! 4. delivery: `queue` hands each queued entry, oldest first, to its channel's [`Notifier`] ([`notifier`]: Slack,
//!    e-mail), which makes one attempt and classifies it as a [`DeliveryOutcome`];
//! 5. in the demo, `capture` records messages instead (`capture_only`).
//!
//! [`Alerter`] holds the configuration, client and outbox the stages share; [`dashboard`] builds the size-capped
//! dashboard payload (7.4); [`heartbeat`] pings the dead-man switch (7.8); [`sink`] defines what agents raise
//! ([`InlineAlert`], [`AlertSink`]) and makes [`Alerter`] an `AlertSink`.
//!
//! A failing channel never blocks another, never panics and never changes an agent's exit code; in dry run nothing
//! is written or sent (1.5) and would-be alerts are logged.

mod alerter;
mod capture;
pub mod dashboard;
pub mod decision;
pub mod email;
mod heartbeat;
mod inline;
pub mod notifier;
pub mod outbox;
mod queue;
pub mod sink;
pub mod slack;
mod status;

pub use alerter::{Alerter, CAPTURE_FILE};
pub use capture::CapturedMessage;
pub use heartbeat::heartbeat;
pub use inline::InlineOutcome;
pub use notifier::Notifier;
pub use queue::{AttemptResult, StatusDelivery};
pub use status::StatusRequest;

pub use decision::{AlertDecision, DecisionInput, decide};
pub use outbox::{Channel, EntryKind, Outbox, OutboxEntry, OutboxFile};
pub use sink::{AlertSink, InlineAlert, InlineKind, LogAlertSink};

use crate::model::{Incident, IncidentStatus, Severity, ts};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const COMPONENT: &str = "alerting";

/// The classified result of one delivery attempt (agents.md 7.2, 7.3), applied by the outbox (7.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted by the channel (Slack HTTP 2xx, SMTP 2xx).
    Delivered,
    /// Temporary failure; the message stays queued (Slack 429/5xx/timeout/transport; SMTP 4xx,
    /// connection/TLS/timeout). The reason is redacted and names hosts only.
    Retry(String),
    /// Permanent failure; the message is dropped with an ERROR (Slack other 4xx; SMTP 5xx).
    Drop(String),
}

impl DeliveryOutcome {
    /// Whether the message was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, DeliveryOutcome::Delivered)
    }
}

/// A reference from a queued message to an incident it covers, with the severity and status at alert time; the
/// alert stamps (`alertedAt`, `alertedSeverity`, `alertedStatus`, 2.2) are written from it on delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentRef {
    /// Incident id (`<agent>:<type>:<targetId>`, agents.md 2.2); JSON `id`.
    pub id: String,
    /// Severity the message showed, written to `alertedSeverity` on delivery; JSON `severity`.
    pub severity: Severity,
    /// Status the message showed (e.g. `open`, `escalated`), written to `alertedStatus` on delivery; JSON `status`.
    pub status: IncidentStatus,
}

impl IncidentRef {
    /// The reference of an incident as it is now.
    pub fn of(i: &Incident) -> IncidentRef {
        IncidentRef {
            id: i.id.clone(),
            severity: i.severity.clone(),
            status: i.status.clone(),
        }
    }
}

/// Writes the alert stamps of every incident named in `refs`: `alertedAt = at`, `alertedSeverity`/`alertedStatus` from
/// the reference (the values the delivered message showed). Returns how many incidents were stamped.
pub fn stamp_incidents(
    incidents: &mut [Incident],
    refs: &[IncidentRef],
    at: DateTime<Utc>,
) -> usize {
    let by_id: HashMap<&str, &IncidentRef> = refs.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut n = 0;
    for i in incidents.iter_mut() {
        if let Some(r) = by_id.get(i.id.as_str()) {
            i.alerted_at = Some(ts(at));
            i.alerted_severity = Some(r.severity.clone());
            i.alerted_status = Some(r.status.clone());
            n += 1;
        }
    }
    n
}

/// `recentRemediations` with `verified: true` whose `timestamp` lies in the 24 h before `now`: the one definition of
/// [`crate::model::verified_fixes_24h`] (README "What the counts mean"), re-exported for the alert builders.
pub use crate::model::verified_fixes_24h;

/// This machine's host name (footer of Slack messages and digests); `unknown-host` if it cannot be read.
pub fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let s = String::from_utf8_lossy(&buf[..end]).trim().to_string();
        if !s.is_empty() {
            return s;
        }
    }
    "unknown-host".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgentName;

    #[test]
    fn stamps_take_severity_and_status_from_the_reference() {
        let now = Utc::now();
        let mut i = Incident::new(
            AgentName::FleetManager,
            "t",
            Severity::Critical,
            "display",
            "d",
            "m",
            "r",
            now,
        );
        let r = IncidentRef {
            id: i.id.clone(),
            severity: Severity::Warning,
            status: IncidentStatus::Open,
        };
        assert_eq!(stamp_incidents(std::slice::from_mut(&mut i), &[r], now), 1);
        assert_eq!(i.alerted_severity, Some(Severity::Warning));
        assert_eq!(i.alerted_at, Some(ts(now)));
        let v = serde_json::to_value(IncidentRef::of(&i)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": i.id, "severity": "critical", "status": "open"})
        );
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!local_hostname().is_empty());
    }
}
