//! The reporter's status stage (agents.md 6.5.1 steps 4–5, 7.2, 7.3): builds the Slack status or recovery message and
//! the e-mail digest for a decision of [`super::decision`], queues them and hands the queue to the delivery stage.

use super::outbox::{Channel, EntryKind, OutboxEntry};
use super::{
    AlertDecision, Alerter, COMPONENT, CapturedMessage, IncidentRef, StatusDelivery, email, slack,
    verified_fixes_24h,
};
use crate::logging;
use crate::model::{Incident, IncidentStatus, RemediationAction, SystemStatus, parse_ts};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Inputs of [`Alerter::deliver_status`].
#[derive(Debug, Clone)]
pub struct StatusRequest<'a> {
    /// The decision of this run (7.5); nothing new is built when `send_status` is false.
    pub decision: &'a AlertDecision,
    /// S.
    pub status: SystemStatus,
    /// R (absent = HEALTHY).
    pub previous: SystemStatus,
    /// T, for the recovery's "resolved since the last status alert" count.
    pub last_status_alert: Option<DateTime<Utc>>,
    /// Snapshot incidents plus the watchdog's.
    pub incidents: &'a [Incident],
    /// The state's `recentRemediations`.
    pub remediations: &'a [RemediationAction],
    /// The run's time.
    pub now: DateTime<Utc>,
    /// Dry run: log the would-be messages; nothing is sent, queued or retried.
    pub dry_run: bool,
}

impl Alerter {
    /// The reporter's delivery pass for a decision (agents.md 6.5.1 steps 4–5, 7.2, 7.3, 7.7): when
    /// `decision.send_status`, builds the Slack status (or recovery) message and, for DEGRADED/CRITICAL, the e-mail
    /// digest, and enqueues them (superseding older undelivered status entries); then delivers every queued entry
    /// oldest first (older inline and status entries before the new ones; Slack before e-mail). A channel whose
    /// attempt failed temporarily is not tried again this run (its remaining entries stay queued), and one channel
    /// failing never blocks the other. In dry run the would-be messages are logged and nothing is queued or sent;
    /// with `capture_only` they are recorded and count as delivered. Logs the decision's reason and clock warnings.
    /// Never fails: outbox errors are logged.
    pub async fn deliver_status(&self, req: &StatusRequest<'_>) -> StatusDelivery {
        let d = req.decision;
        for w in &d.warnings {
            logging::warn(COMPONENT, w);
        }
        if !d.send_status {
            logging::info(COMPONENT, &d.reason);
            if req.dry_run {
                return StatusDelivery::default();
            }
            return self.run_queue(&[], req.now).await;
        }
        let worthy: Vec<&Incident> = d
            .alert_worthy
            .iter()
            .filter_map(|id| req.incidents.iter().find(|i| &i.id == id))
            .collect();
        let refs: Vec<IncidentRef> = worthy.iter().map(|i| IncidentRef::of(i)).collect();
        let slack_payload = if d.is_recovery {
            let resolved = req
                .incidents
                .iter()
                .filter(|i| i.status == IncidentStatus::Resolved)
                .filter(|i| {
                    match (
                        req.last_status_alert,
                        i.resolved_at.as_deref().and_then(parse_ts),
                    ) {
                        (Some(t), Some(r)) => r > t,
                        (None, _) => true,
                        (Some(_), None) => false,
                    }
                })
                .count();
            slack::recovery_payload(req.previous, resolved, &self.host, req.now)
        } else {
            slack::status_payload(&slack::StatusAlert {
                status: req.status,
                previous: req.previous,
                incidents: req.incidents,
                alert_worthy: &worthy,
                verified_fixes_24h: verified_fixes_24h(req.remediations, req.now),
                host: &self.host,
                now: req.now,
            })
        };
        let slack_payload = crate::redact::redact_value(&slack_payload);
        let digest = (!d.is_recovery && req.status != SystemStatus::Healthy).then(|| {
            email::build_digest(
                req.status,
                req.incidents,
                req.remediations,
                &self.host,
                req.now,
            )
        });
        let slack_title = slack_payload["attachments"][0]["title"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        logging::info(
            COMPONENT,
            format!("status alert: {} ({})", slack_title, d.reason),
        );

        if req.dry_run {
            logging::info(
                COMPONENT,
                format!(
                    "dry run: would send Slack: {}",
                    slack_payload["text"].as_str().unwrap_or_default()
                ),
            );
            if let Some(dg) = &digest {
                logging::info(
                    COMPONENT,
                    format!("dry run: would e-mail digest: {}", dg.subject),
                );
            }
            return StatusDelivery::default();
        }
        if self.cfg.capture_only {
            self.capture(CapturedMessage {
                channel: "slack".into(),
                kind: if d.is_recovery { "recovery" } else { "status" }.into(),
                title: slack_title,
                text: slack_payload["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            });
            if let Some(dg) = &digest {
                self.capture(CapturedMessage {
                    channel: "email".into(),
                    kind: "digest".into(),
                    title: dg.subject.clone(),
                    text: dg.text.clone(),
                });
            }
            return StatusDelivery {
                status_delivered: true,
                delivered_at: Some(req.now),
                delivered_refs: refs,
                ..StatusDelivery::default()
            };
        }

        let mut new_entries = Vec::new();
        if self.cfg.slack_webhook_url.is_some() {
            new_entries.push(OutboxEntry::new(
                Channel::Slack,
                EntryKind::Status,
                &slack_payload,
                refs.clone(),
                req.now,
            ));
        } else {
            logging::warn(
                COMPONENT,
                "Slack is not configured (SLACK_WEBHOOK_URL unset): status alert not sent to Slack",
            );
        }
        if let Some(dg) = digest {
            if email::SmtpSettings::from_config(&self.cfg).is_some() {
                let v = serde_json::to_value(&dg).unwrap_or(Value::Null);
                new_entries.push(OutboxEntry::new(
                    Channel::Email,
                    EntryKind::Status,
                    &v,
                    refs.clone(),
                    req.now,
                ));
            } else {
                logging::warn(
                    COMPONENT,
                    "e-mail is disabled (SMTP_HOST or OPS_ALERT_EMAIL/SMTP_TO unset): digest not sent",
                );
            }
        }
        let new_ids: Vec<String> = new_entries.iter().map(|e| e.id.clone()).collect();
        let enqueue = {
            let entries = new_entries.clone();
            self.outbox.update(req.now, move |f| {
                for e in entries {
                    f.enqueue(e);
                }
            })
        };
        match enqueue {
            Ok(()) => self.run_queue(&new_ids, req.now).await,
            Err(e) => {
                logging::error(
                    COMPONENT,
                    format!(
                        "cannot queue the status alert in the outbox: {e}; sending it unqueued"
                    ),
                );
                self.run_entries(new_entries, &new_ids, req.now, false)
                    .await
            }
        }
    }
}
