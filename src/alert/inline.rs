//! The inline stage (agents.md 7.6): an agent's inline alert or fix notification, Slack only, queued in the outbox
//! before its first attempt.

use super::outbox::{Channel, EntryKind, OutboxEntry};
use super::{Alerter, COMPONENT, CapturedMessage, DeliveryOutcome, IncidentRef, InlineKind, slack};
use crate::logging;
use chrono::{DateTime, Utc};

/// Result of [`Alerter::inline`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InlineOutcome {
    /// Slack accepted the message now (or it was captured in the demo).
    pub delivered: bool,
    /// The references to stamp in the agent's own state write (empty unless delivered).
    pub stamped_refs: Vec<IncidentRef>,
}

impl Alerter {
    /// An agent's inline alert or fix notification (agents.md 7.6), Slack only. `items` are named in the `Details`
    /// field (first 10, then `…and <k> more`); `refs` are the incidents it covers.
    ///
    /// `Fixed` is off when `OPS_NOTIFY_FIXES=false`. In dry run the would-be alert is logged and nothing is written
    /// or sent. With `capture_only` the message is recorded in [`Alerter::captured`] and counts as delivered.
    /// Otherwise it is queued in the outbox before the first attempt, removed when Slack accepts it (then the refs
    /// come back in `stamped_refs` for the agent's state write), and left queued on a temporary failure (the reporter
    /// retries and stamps it later). Never fails.
    #[allow(clippy::too_many_arguments)] // the signature agents share (7.6); each argument is distinct
    pub async fn inline(
        &self,
        agent: &str,
        kind: InlineKind,
        summary: &str,
        items: &[String],
        refs: Vec<IncidentRef>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> InlineOutcome {
        if kind == InlineKind::Fixed && !self.cfg.notify_fixes {
            return InlineOutcome::default();
        }
        let title = slack::inline_title(kind, agent);
        let summary = crate::redact::redact_str(summary);
        let items: Vec<String> = items.iter().map(|s| crate::redact::redact_str(s)).collect();
        if dry_run {
            logging::info(
                COMPONENT,
                format!(
                    "dry run: would send Slack {}: {title}: {summary}{}",
                    if kind == InlineKind::Fixed {
                        "fix notification"
                    } else {
                        "inline alert"
                    },
                    if items.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", slack::inline_details(&items).replace('\n', "; "))
                    }
                ),
            );
            return InlineOutcome::default();
        }
        if self.cfg.capture_only {
            let mut text = summary.clone();
            if !items.is_empty() {
                text.push('\n');
                text.push_str(&slack::inline_details(&items));
            }
            self.capture(CapturedMessage {
                channel: "slack".into(),
                kind: if kind == InlineKind::Fixed {
                    "fixed"
                } else {
                    "inline"
                }
                .into(),
                title,
                text,
            });
            return InlineOutcome {
                delivered: true,
                stamped_refs: refs,
            };
        }
        let Some(notifier) = self.notifier(Channel::Slack) else {
            logging::warn(
                COMPONENT,
                format!("Slack is not configured (SLACK_WEBHOOK_URL unset): {title} not sent"),
            );
            return InlineOutcome::default();
        };
        let payload = crate::redact::redact_value(&slack::inline_payload(
            kind, agent, &summary, &items, &self.host, now,
        ));
        let entry = OutboxEntry::new(
            Channel::Slack,
            EntryKind::Inline,
            &payload,
            refs.clone(),
            now,
        );
        let id = entry.id.clone();
        let queued = match self.outbox.enqueue(entry, now) {
            Ok(()) => true,
            Err(e) => {
                logging::error(
                    COMPONENT,
                    format!("cannot queue {title} in the outbox: {e}; sending it unqueued"),
                );
                false
            }
        };
        let outcome = notifier.notify(&payload).await;
        if queued
            && let Err(e) = self
                .outbox
                .record_outcome(&id, Channel::Slack, &outcome, now)
        {
            logging::error(
                COMPONENT,
                format!("cannot record the Slack outcome in the outbox: {e}"),
            );
        }
        match outcome {
            DeliveryOutcome::Delivered => {
                logging::info(COMPONENT, format!("Slack: sent {title}"));
                InlineOutcome {
                    delivered: true,
                    stamped_refs: refs,
                }
            }
            DeliveryOutcome::Retry(r) => {
                logging::warn(
                    COMPONENT,
                    format!(
                        "Slack delivery of {title} failed ({r}); {}",
                        if queued {
                            "queued for the reporter to retry"
                        } else {
                            "not queued"
                        }
                    ),
                );
                InlineOutcome::default()
            }
            DeliveryOutcome::Drop(r) => {
                // A queued entry's drop is logged by the outbox.
                if !queued {
                    logging::error(COMPONENT, format!("Slack rejected {title} ({r}); dropped"));
                }
                InlineOutcome::default()
            }
        }
    }
}
