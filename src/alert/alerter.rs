//! The [`Alerter`]: the alerting front end shared by all agents, holding the channel configuration, the HTTP client
//! and the outbox; its stages are in `inline` (agents' inline alerts, 7.6), `status` (the reporter's status
//! messages, 6.5.1), `queue` (outbox delivery through the channels' notifiers, 7.7) and `capture` (the demo).

use super::email;
use super::notifier::{EmailNotifier, Notifier, SlackNotifier};
use super::outbox::{self, Channel, Outbox};
use super::{COMPONENT, CapturedMessage, local_hostname};
use crate::config::{AlertConfig, Config};
use crate::logging;
use crate::model::{AgentName, Incident, Severity};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The alerting front end shared by all agents.
pub struct Alerter {
    pub(super) cfg: AlertConfig,
    pub(super) client: reqwest::Client,
    pub(super) outbox: Outbox,
    pub(super) host: String,
    pub(super) notify_timeout: Duration,
    /// Messages recorded instead of sent when `capture_only` is set (the demo).
    pub captured: Mutex<Vec<CapturedMessage>>,
    /// In `capture_only` mode, captured messages are also appended here as JSON lines ([`CAPTURE_FILE`]).
    pub(super) capture_file: Option<PathBuf>,
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

    /// The notifier of `channel` as configured now (`None` when the channel is not configured): Slack with
    /// `SLACK_WEBHOOK_URL`, e-mail with complete SMTP settings (7.3), both with `OPS_NOTIFY_TIMEOUT_MS`.
    pub fn notifier(&self, channel: Channel) -> Option<Box<dyn Notifier>> {
        match channel {
            Channel::Slack => self.cfg.slack_webhook_url.clone().map(|webhook| {
                Box::new(SlackNotifier {
                    client: self.client.clone(),
                    webhook,
                    timeout: self.notify_timeout,
                }) as Box<dyn Notifier>
            }),
            Channel::Email => email::SmtpSettings::from_config(&self.cfg).map(|mut smtp| {
                smtp.timeout = self.notify_timeout;
                Box::new(EmailNotifier { smtp }) as Box<dyn Notifier>
            }),
        }
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
