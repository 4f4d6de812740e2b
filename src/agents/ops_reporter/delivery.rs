//! Delivery of the status alert (agents.md 6.5.1 steps 4–5, 7.7): queued outbox entries are retried oldest first,
//! then the new status alert goes out (Slack, then the e-mail digest for DEGRADED/CRITICAL) through the outbox;
//! nothing counts as sent until a channel accepted it. The report lines say what went where, and the reporter's own
//! incidents (`alert-delivery-failed`, `alerting-unconfigured`, catalogue 3.5) come from the outbox record.

use super::CATALOGUE;
use super::decision::note_alert_worthy;
use super::status::StatusView;
use crate::agents::{AgentContext, AgentOutcome};
use crate::alert::{
    AlertDecision, Alerter, Channel, DeliveryOutcome, EntryKind, StatusDelivery, StatusRequest,
    email,
};
use crate::model::{Incident, SystemStatus};
use std::collections::HashSet;

/// What the delivery pass did, with the names the report lines use.
pub(super) struct Sent {
    /// The attempts, deliveries and stamps of the pass.
    pub(super) delivery: StatusDelivery,
    /// Outbox entry ids queued before this run (their attempts are retries).
    queued_before: HashSet<String>,
    /// The Slack title of this run's status alert.
    slack_title: String,
    /// The e-mail digest's subject.
    email_subject: String,
}

/// Retries the queued entries and delivers the status alert when `decision` says so (in a dry run nothing is sent).
pub(super) async fn deliver(
    ctx: &AgentContext,
    alerter: &Alerter,
    sv: &StatusView,
    decision: &AlertDecision,
    alert_view: &[Incident],
) -> Sent {
    let now = ctx.started;
    let StatusView {
        view,
        status,
        previous,
        last_alert,
        critical: c,
        warning: w,
    } = sv;
    let (status, previous, last_alert) = (*status, *previous, *last_alert);
    let queued_before: HashSet<String> = alerter
        .outbox()
        .read()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    let delivery = ctx
        .effects()
        .deliver_status(
            alerter,
            StatusRequest {
                decision,
                status,
                previous: previous.unwrap_or(SystemStatus::Healthy),
                last_status_alert: last_alert,
                incidents: alert_view,
                remediations: &view.recent_remediations,
                now,
                dry_run: false, // the gate sets the run's flag
            },
        )
        .await;
    let slack_title = if decision.is_recovery {
        format!(
            "Vizora Ops: HEALTHY (recovered from {})",
            previous.unwrap_or(SystemStatus::Healthy)
        )
    } else {
        format!("Vizora Ops: {status}")
    };
    let email_subject = email::subject(status, *c, *w);
    Sent {
        delivery,
        queued_before,
        slack_title,
        email_subject,
    }
}

/// Notes the decision and what happened on each channel (6.5.1 step 5): the alert due and whom it names, what a
/// dry run or capture-only mode would send, unconfigured channels, one line per delivery attempt, and a status
/// alert that no channel accepted (it stays queued; nothing is stamped; R is kept).
pub(super) fn note_outcome(
    ctx: &AgentContext,
    alerter: &Alerter,
    status: SystemStatus,
    decision: &AlertDecision,
    alert_view: &[Incident],
    sent: &Sent,
    o: &mut AgentOutcome,
) {
    let cfg = &ctx.cfg;
    let Sent {
        delivery,
        queued_before,
        slack_title,
        email_subject,
    } = sent;
    if !decision.send_status {
        o.note(decision.reason.clone());
    } else {
        o.note(format!("status alert due: {}", decision.reason));
        note_alert_worthy(o, decision, alert_view);
        note_channels(ctx, alerter, status, decision, sent, o);
    }
    for l in delivery_lines(delivery, queued_before, slack_title, email_subject) {
        o.note(l);
    }
    if decision.send_status
        && !ctx.effects().is_dry_run()
        && !cfg.alert.capture_only
        && !delivery.status_delivered
    {
        o.note("status alert not delivered on any channel: it stays queued, nothing is stamped, the last reported status is kept");
    }
}

/// The channel notes of a due status alert: what a dry run would send, what capture-only mode captured, or which
/// channel is not configured.
fn note_channels(
    ctx: &AgentContext,
    alerter: &Alerter,
    status: SystemStatus,
    decision: &AlertDecision,
    sent: &Sent,
    o: &mut AgentOutcome,
) {
    let cfg = &ctx.cfg;
    let (slack_title, email_subject) = (&sent.slack_title, &sent.email_subject);
    let digest_due = !decision.is_recovery && status != SystemStatus::Healthy;
    if ctx.effects().is_dry_run() {
        o.note(format!(
            "dry run: would send to slack: status alert \"{slack_title}\""
        ));
        if digest_due {
            o.note(format!(
                "dry run: would send to email: digest \"{email_subject}\""
            ));
        }
    } else if cfg.alert.capture_only {
        for m in alerter.captured() {
            o.note(format!(
                "alert → {} (captured, not sent): {} \"{}\"",
                m.channel, m.kind, m.title
            ));
        }
    } else {
        if cfg.alert.slack_webhook_url.is_none() {
            o.note("slack: not configured (SLACK_WEBHOOK_URL unset), status alert not sent there");
        }
        if digest_due && email::SmtpSettings::from_config(&cfg.alert).is_none() {
            o.note("email: not configured (SMTP_HOST or OPS_ALERT_EMAIL/SMTP_TO unset), digest not sent");
        }
    }
}

/// The reporter's own incidents (catalogue 3.5), always judged on the complete outbox record: a continuing episode
/// keeps its `detected` and attempts; both types are covered every run.
pub(super) fn own_incidents(ctx: &AgentContext, alerter: &Alerter, o: &mut AgentOutcome) {
    let now = ctx.started;
    let priors = ctx.priors();
    let mut own: Vec<Incident> = alerter.delivery_failed_incidents(now);
    own.extend(alerter.unconfigured_incident(now));
    for i in own.iter_mut() {
        if let Some(p) = priors.get(&i.id).filter(|p| p.is_active()) {
            i.detected = p.detected.clone();
            i.attempts = p.attempts;
        }
        o.note(format!(
            "{} ({}): {}",
            i.kind,
            i.severity.as_str(),
            i.message
        ));
    }
    for t in CATALOGUE {
        o.cover(t);
    }
    for i in &own {
        o.raise(i.clone());
    }
}

fn channel_word(c: Channel) -> &'static str {
    match c {
        Channel::Slack => "slack",
        Channel::Email => "email",
    }
}

/// Report lines for the delivery pass: one per attempt (which message went to which channel and what happened).
fn delivery_lines(
    d: &StatusDelivery,
    queued_before: &HashSet<String>,
    slack_title: &str,
    email_subject: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for a in &d.attempts {
        let what = if queued_before.contains(&a.entry_id) {
            match a.kind {
                EntryKind::Status => "queued status message (retry)".to_string(),
                EntryKind::Inline => "queued inline message (retry)".to_string(),
            }
        } else {
            match a.channel {
                Channel::Slack => format!("status alert \"{slack_title}\""),
                Channel::Email => format!("e-mail digest \"{email_subject}\""),
            }
        };
        let result = match &a.outcome {
            DeliveryOutcome::Delivered => "delivered".to_string(),
            DeliveryOutcome::Retry(r) => format!("not delivered, stays queued ({r})"),
            DeliveryOutcome::Drop(r) => format!("rejected, dropped ({r})"),
        };
        out.push(format!(
            "alert → {}: {what} {result}",
            channel_word(a.channel)
        ));
    }
    if d.deferred > 0 {
        out.push(format!(
            "{} queued message(s) left for the next run (channel failing or unconfigured)",
            d.deferred
        ));
    }
    out
}
