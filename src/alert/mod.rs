//! Alerting (agents.md section 7): separate stages in the manner of Alertmanager's notify pipeline (style.md).
//!
//! * [`decision`] — the reporter's pure alert decision and de-duplication (7.5); the only place windows are judged.
//! * [`slack`], [`email`] — payload builders and one-shot delivery per channel (7.2, 7.3), classified as
//!   [`DeliveryOutcome`]; a channel knows nothing about de-duplication or queueing.
//! * [`outbox`] — `ops-outbox.json` (7.7): queued before the first attempt, removed only when delivered.
//! * [`dashboard`] — the size-capped dashboard payload (7.4).
//! * [`Alerter`] — ties them together for agents' inline alerts and fix notifications (7.6), the reporter's status
//!   delivery and retries (6.5.1 steps 4–5), and dead-man heartbeats ([`heartbeat`], 7.8); [`sink`] defines what
//!   agents raise ([`InlineAlert`], [`AlertSink`]) and makes [`Alerter`] an `AlertSink`.
//!
//! A failing channel never blocks another, never panics and never changes an agent's exit code; in dry run nothing
//! is written or sent (1.5) and would-be alerts are logged.

pub mod dashboard;
pub mod decision;
pub mod email;
pub mod outbox;
pub mod sink;
pub mod slack;

pub use decision::{AlertDecision, DecisionInput, decide};
pub use outbox::{Channel, EntryKind, Outbox, OutboxEntry, OutboxFile};
pub use sink::{AlertSink, InlineAlert, InlineKind, LogAlertSink};

use crate::config::{AlertConfig, Config};
use crate::logging;
use crate::model::{
    AgentName, Incident, IncidentStatus, RemediationAction, Severity, SystemStatus, parse_ts, ts,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

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

/// A message recorded instead of sent when `capture_only` is set (the demo prints these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMessage {
    /// `slack` or `email`.
    pub channel: String,
    /// `inline`, `fixed`, `status`, `recovery` or `digest`.
    pub kind: String,
    /// Slack attachment title or e-mail subject.
    pub title: String,
    /// Summary / first attachment text, or the digest's plain-text part.
    pub text: String,
}

/// Result of [`Alerter::inline`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InlineOutcome {
    /// Slack accepted the message now (or it was captured in the demo).
    pub delivered: bool,
    /// The references to stamp in the agent's own state write (empty unless delivered).
    pub stamped_refs: Vec<IncidentRef>,
}

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

/// The alerting front end shared by all agents.
pub struct Alerter {
    cfg: AlertConfig,
    client: reqwest::Client,
    outbox: Outbox,
    host: String,
    notify_timeout: Duration,
    /// Messages recorded instead of sent when `capture_only` is set (the demo).
    pub captured: Mutex<Vec<CapturedMessage>>,
    /// In `capture_only` mode, captured messages are also appended here as JSON lines ([`CAPTURE_FILE`]).
    capture_file: Option<PathBuf>,
}

/// File name, in the log dir, of the messages captured in `capture_only` mode (the demo prints it): one JSON object
/// per line with `channel`, `kind`, `title`, `text`. Several runs (each with its own [`Alerter`]) append to it.
pub const CAPTURE_FILE: &str = "ops-captured-alerts.jsonl";

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field(
                "slack",
                &self
                    .cfg
                    .slack_webhook_url
                    .as_deref()
                    .map(crate::redact::url_host_only),
            )
            .field("smtp_host", &self.cfg.smtp_host)
            .field("outbox", &self.outbox.path())
            .field("host", &self.host)
            .finish()
    }
}

impl Alerter {
    /// An alerter with the outbox at `outbox_path`, the outbox lock deadline, and `notify_timeout`
    /// (`OPS_NOTIFY_TIMEOUT_MS`, used for Slack, SMTP and pushes).
    pub fn new(
        cfg: AlertConfig,
        outbox_path: impl Into<PathBuf>,
        lock_timeout: Duration,
        notify_timeout: Duration,
    ) -> Alerter {
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "vizora-ops/",
                env!("CARGO_PKG_VERSION"),
                " (alerting)"
            ))
            .connect_timeout(notify_timeout)
            .build()
            .unwrap_or_default();
        Alerter {
            cfg,
            client,
            outbox: Outbox::new(outbox_path, lock_timeout, false),
            host: local_hostname(),
            notify_timeout,
            captured: Mutex::new(Vec::new()),
            capture_file: None,
        }
    }

    /// The alerter of a process: outbox `<state dir>/ops-outbox.json`, lock deadline `OPS_LOCK_TIMEOUT_MS`, timeout
    /// `OPS_NOTIFY_TIMEOUT_MS`; in `capture_only` mode captured messages are also appended to
    /// `<log dir>/ops-captured-alerts.jsonl` ([`CAPTURE_FILE`]).
    pub fn from_config(cfg: &Config) -> Alerter {
        let a = Alerter::new(
            cfg.alert.clone(),
            Outbox::path_for_state_file(&cfg.state_file),
            Duration::from_millis(cfg.lock_timeout_ms),
            cfg.api.notify_timeout,
        );
        if cfg.alert.capture_only {
            a.with_capture_file(cfg.log_dir.join(CAPTURE_FILE))
        } else {
            a
        }
    }

    /// Also appends every captured message (`capture_only` mode) to `path` as one JSON line
    /// `{"channel","kind","title","text"}`.
    pub fn with_capture_file(mut self, path: impl Into<PathBuf>) -> Alerter {
        self.capture_file = Some(path.into());
        self
    }

    /// Replaces the HTTP client (shared client of the daemon, tests).
    pub fn with_client(mut self, client: reqwest::Client) -> Alerter {
        self.client = client;
        self
    }

    /// Replaces the host name shown in footers.
    pub fn with_host(mut self, host: impl Into<String>) -> Alerter {
        self.host = host.into();
        self
    }

    /// The alert configuration.
    pub fn config(&self) -> &AlertConfig {
        &self.cfg
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The captured messages so far (demo).
    pub fn captured(&self) -> Vec<CapturedMessage> {
        self.captured.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn capture(&self, m: CapturedMessage) {
        if let Some(path) = &self.capture_file {
            append_captured(path, &m);
        }
        if let Ok(mut g) = self.captured.lock() {
            g.push(m);
        }
    }

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
        let Some(webhook) = self.cfg.slack_webhook_url.clone() else {
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
        let outcome = slack::deliver(&self.client, &webhook, &payload, self.notify_timeout).await;
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

    async fn run_queue(&self, new_ids: &[String], now: DateTime<Utc>) -> StatusDelivery {
        let pending = self.outbox.read().pending();
        self.run_entries(pending, new_ids, now, true).await
    }

    async fn run_entries(
        &self,
        entries: Vec<OutboxEntry>,
        new_ids: &[String],
        now: DateTime<Utc>,
        queued: bool,
    ) -> StatusDelivery {
        let mut out = StatusDelivery::default();
        let mut failing: Vec<Channel> = Vec::new();
        let mut refs: Vec<IncidentRef> = Vec::new();
        let smtp = email::SmtpSettings::from_config(&self.cfg).map(|mut s| {
            s.timeout = self.notify_timeout;
            s
        });
        // Slack before e-mail among entries created at the same instant; otherwise oldest first.
        let mut entries = entries;
        entries.sort_by_key(|e| (parse_ts(&e.created_at), e.channel == Channel::Email));
        for e in entries {
            if failing.contains(&e.channel) {
                out.deferred += 1;
                continue;
            }
            let outcome = match e.channel {
                Channel::Slack => match &self.cfg.slack_webhook_url {
                    Some(w) => {
                        slack::deliver(&self.client, w, &e.payload, self.notify_timeout).await
                    }
                    None => {
                        out.deferred += 1;
                        continue;
                    }
                },
                Channel::Email => match (
                    &smtp,
                    serde_json::from_value::<email::EmailDigest>(e.payload.clone()),
                ) {
                    (None, _) => {
                        out.deferred += 1;
                        continue;
                    }
                    (Some(_), Err(err)) => {
                        DeliveryOutcome::Drop(format!("queued e-mail payload is unreadable: {err}"))
                    }
                    (Some(s), Ok(dg)) => email::send(s, &dg).await,
                },
            };
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

    /// Records a dashboard push outcome in the outbox `channels` record (`dashboard` or `opsServer`, 6.5.1 step 8).
    /// Nothing is written in dry run; errors are logged.
    pub fn record_push(
        &self,
        key: &str,
        result: Result<(), &str>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) {
        if dry_run {
            return;
        }
        if let Err(e) = self.outbox.record_channel(key, result, now) {
            logging::error(
                COMPONENT,
                format!("cannot record the {key} push outcome in the outbox: {e}"),
            );
        }
    }

    /// The `ops-reporter:alert-delivery-failed` incidents derived from the outbox (catalogue 3.5, 7.7).
    pub fn delivery_failed_incidents(&self, now: DateTime<Utc>) -> Vec<Incident> {
        outbox::delivery_failed_incidents(&self.outbox.read(), now)
    }

    /// `ops-reporter:alerting-unconfigured` (info, `alerting`/`channels`) when neither Slack nor e-mail is configured
    /// (catalogue 3.5); `None` when one is (or in `capture_only` mode).
    pub fn unconfigured_incident(&self, now: DateTime<Utc>) -> Option<Incident> {
        let slack = self.cfg.slack_webhook_url.is_some();
        let mail = email::SmtpSettings::from_config(&self.cfg).is_some();
        if slack || mail || self.cfg.capture_only {
            return None;
        }
        Some(Incident::new(
            AgentName::OpsReporter,
            "alerting-unconfigured",
            Severity::Info,
            "alerting",
            "channels",
            "neither Slack (SLACK_WEBHOOK_URL) nor e-mail (SMTP_HOST and OPS_ALERT_EMAIL/SMTP_TO) is configured",
            "set SLACK_WEBHOOK_URL, or SMTP_HOST with OPS_ALERT_EMAIL, so that alerts reach someone",
            now,
        ))
    }
}

/// Appends one captured message as a redacted JSON line with a single `O_APPEND` write (runs of several agents append
/// to the same file). Failures are logged.
fn append_captured(path: &std::path::Path, m: &CapturedMessage) {
    use std::io::Write;
    let line = crate::redact::redact_value(&serde_json::json!({
        "channel": m.channel,
        "kind": m.kind,
        "title": m.title,
        "text": m.text,
    }));
    let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
    bytes.push(b'\n');
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&bytes));
    if let Err(e) = r {
        logging::error(
            COMPONENT,
            format!(
                "cannot append the captured message to {}: {e}",
                path.display()
            ),
        );
    }
}

/// Dead-man heartbeat (agents.md 7.8): `POST <url>`, or `POST <url>/fail` when `fail`. Failures are only logged
/// (WARNING naming the host, never the URL); returns whether the ping was accepted (2xx). The caller skips it in dry
/// run (1.5).
pub async fn heartbeat(client: &reqwest::Client, url: &str, fail: bool, timeout: Duration) -> bool {
    let target = if fail {
        format!("{}/fail", url.trim_end_matches('/'))
    } else {
        url.to_string()
    };
    let host = crate::redact::url_host_only(url);
    match client.post(&target).timeout(timeout).send().await {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            logging::warn(
                COMPONENT,
                format!("heartbeat to {host} failed: HTTP {}", r.status().as_u16()),
            );
            false
        }
        Err(e) => {
            let why = if e.is_timeout() {
                "timeout".to_string()
            } else {
                e.without_url().to_string()
            };
            logging::warn(
                COMPONENT,
                format!(
                    "heartbeat to {host} failed: {}",
                    crate::redact::redact_str(&why)
                ),
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
