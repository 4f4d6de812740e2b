//! The channels stage, in the manner of Alertmanager's `notify.Notifier`: one [`Notifier`] per channel makes one
//! delivery attempt of a queued payload and classifies the result (agents.md 7.2, 7.3); it knows nothing of
//! de-duplication, queueing or retries (the outbox, 7.7, and the delivery stage do that). A new channel is a new
//! implementation here, registered in [`Alerter::notifier`](super::Alerter::notifier).

use super::email::{self, EmailDigest, SmtpSettings};
use super::outbox::Channel;
use super::{DeliveryOutcome, slack};
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// One channel's delivery of a queued payload.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The channel this notifier delivers to (the outbox entries it takes).
    fn channel(&self) -> Channel;
    /// One attempt to deliver `payload` (a Slack message body, or an [`EmailDigest`] as JSON). Never panics; every
    /// failure is a classified [`DeliveryOutcome`] whose reason names hosts only.
    async fn notify(&self, payload: &Value) -> DeliveryOutcome;
}

/// Slack through an incoming webhook (7.2).
pub struct SlackNotifier {
    /// The HTTP client (shared with the rest of alerting).
    pub client: reqwest::Client,
    /// `SLACK_WEBHOOK_URL` (a secret: never logged).
    pub webhook: String,
    /// `OPS_NOTIFY_TIMEOUT_MS`.
    pub timeout: Duration,
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn channel(&self) -> Channel {
        Channel::Slack
    }

    async fn notify(&self, payload: &Value) -> DeliveryOutcome {
        slack::deliver(&self.client, &self.webhook, payload, self.timeout).await
    }
}

/// The e-mail digest over SMTP (7.3).
pub struct EmailNotifier {
    /// Server, credentials, sender, recipients and timeout.
    pub smtp: SmtpSettings,
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn notify(&self, payload: &Value) -> DeliveryOutcome {
        match serde_json::from_value::<EmailDigest>(payload.clone()) {
            // A payload that cannot be read will never become readable: drop it rather than retry forever.
            Err(err) => {
                DeliveryOutcome::Drop(format!("queued e-mail payload is unreadable: {err}"))
            }
            Ok(dg) => email::send(&self.smtp, &dg).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SmtpSecurity;

    #[tokio::test]
    async fn an_unreadable_queued_email_payload_is_dropped_without_contacting_the_server() {
        // Port 9 on loopback: nothing listens; a connection attempt would come back as Retry, not Drop.
        let n = EmailNotifier {
            smtp: SmtpSettings {
                host: "127.0.0.1".into(),
                port: 9,
                security: SmtpSecurity::None,
                user: None,
                pass: None,
                from: "ops@example.com".into(),
                recipients: vec!["oncall@example.com".into()],
                timeout: Duration::from_secs(1),
            },
        };
        assert_eq!(n.channel(), Channel::Email);
        match n.notify(&serde_json::json!({"subject": 7})).await {
            DeliveryOutcome::Drop(r) => assert!(r.contains("unreadable"), "{r}"),
            other => panic!("expected Drop, got {other:?}"),
        }
    }
}
