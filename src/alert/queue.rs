//! The delivery stage (agents.md 7.7): every queued outbox entry, oldest first, through its channel's
//! [`super::Notifier`]; a channel failing temporarily is not tried again this run, and never blocks the other.

use super::outbox::{Channel, EntryKind, OutboxEntry};
use super::{Alerter, COMPONENT, DeliveryOutcome, IncidentRef};
use crate::logging;
use crate::model::parse_ts;
use chrono::{DateTime, Utc};

/// One delivery attempt made by [`Alerter::deliver_status`] or [`Alerter::retry_queued`].
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    /// Id (UUID) of the outbox entry attempted ([`OutboxEntry::id`]).
    pub entry_id: String,
    /// Channel the attempt went to.
    pub channel: Channel,
    /// Status alert or inline message.
    pub kind: EntryKind,
    /// The classified result (agents.md 7.2, 7.3), recorded in the outbox (7.7) when the entry was queued.
    pub outcome: DeliveryOutcome,
}

/// What the reporter's delivery pass did (6.5.1 steps 4–5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusDelivery {
    /// This run's new status message was delivered on at least one channel: set R := S, T := `delivered_at`.
    pub status_delivered: bool,
    /// When the new status message was first delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// References of every delivered message (new and retried, status and inline), one per incident id (the newest
    /// message wins): stamp these.
    pub delivered_refs: Vec<IncidentRef>,
    /// Every attempt in order.
    pub attempts: Vec<AttemptResult>,
    /// Entries left queued without an attempt (channel failing this run or no longer configured).
    pub deferred: usize,
}

impl Alerter {
    /// Retries every queued entry oldest first (agents.md 6.5.1 step 4, 7.7) without building anything new. In dry
    /// run nothing is attempted.
    pub async fn retry_queued(&self, now: DateTime<Utc>, dry_run: bool) -> StatusDelivery {
        if dry_run {
            let n = self.outbox.read().entries.len();
            if n > 0 {
                logging::info(
                    COMPONENT,
                    format!("dry run: would retry {n} queued message(s)"),
                );
            }
            return StatusDelivery::default();
        }
        self.run_queue(&[], now).await
    }

    pub(super) async fn run_queue(&self, new_ids: &[String], now: DateTime<Utc>) -> StatusDelivery {
        let pending = self.outbox.read().pending();
        self.run_entries(pending, new_ids, now, true).await
    }

    pub(super) async fn run_entries(
        &self,
        entries: Vec<OutboxEntry>,
        new_ids: &[String],
        now: DateTime<Utc>,
        queued: bool,
    ) -> StatusDelivery {
        let mut out = StatusDelivery::default();
        let mut failing: Vec<Channel> = Vec::new();
        let mut refs: Vec<IncidentRef> = Vec::new();
        let notifiers = [self.notifier(Channel::Slack), self.notifier(Channel::Email)];
        // Slack before e-mail among entries created at the same instant; otherwise oldest first.
        let mut entries = entries;
        entries.sort_by_key(|e| (parse_ts(&e.created_at), e.channel == Channel::Email));
        for e in entries {
            if failing.contains(&e.channel) {
                out.deferred += 1;
                continue;
            }
            // A channel no longer configured leaves its entries queued.
            let Some(n) = notifiers
                .iter()
                .flatten()
                .find(|n| n.channel() == e.channel)
            else {
                out.deferred += 1;
                continue;
            };
            let outcome = n.notify(&e.payload).await;
            let what = format!(
                "{} {} message{}",
                e.channel.key(),
                match e.kind {
                    EntryKind::Status => "status",
                    EntryKind::Inline => "inline",
                },
                if e.attempts > 0 {
                    format!(" (retry {})", e.attempts)
                } else {
                    String::new()
                }
            );
            match &outcome {
                DeliveryOutcome::Delivered => {
                    logging::info(COMPONENT, format!("{what}: delivered"));
                    for r in &e.incident_refs {
                        refs.retain(|x| x.id != r.id);
                        refs.push(r.clone());
                    }
                    if new_ids.contains(&e.id) && !out.status_delivered {
                        out.status_delivered = true;
                        out.delivered_at = Some(now);
                    }
                }
                DeliveryOutcome::Retry(r) => {
                    logging::warn(
                        COMPONENT,
                        format!("{what}: delivery failed, stays queued: {r}"),
                    );
                    failing.push(e.channel);
                }
                DeliveryOutcome::Drop(r) => {
                    // A queued entry's drop is logged by the outbox.
                    if !queued {
                        logging::error(
                            COMPONENT,
                            format!("{what}: permanent failure, dropped: {r}"),
                        );
                    }
                }
            }
            if queued && let Err(err) = self.outbox.record_outcome(&e.id, e.channel, &outcome, now)
            {
                logging::error(
                    COMPONENT,
                    format!("cannot record the {what} outcome in the outbox: {err}"),
                );
            }
            out.attempts.push(AttemptResult {
                entry_id: e.id.clone(),
                channel: e.channel,
                kind: e.kind,
                outcome,
            });
        }
        if out.deferred > 0 {
            logging::warn(
                COMPONENT,
                format!(
                    "{} queued message(s) left for the next run (channel failing or unconfigured)",
                    out.deferred
                ),
            );
        }
        out.delivered_refs = refs;
        out
    }
}
