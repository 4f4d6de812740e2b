//! The e-mail digest (agents.md 7.3): building the `multipart/alternative` message and sending it once over SMTP.
//!
//! [`build_digest`] is pure; the result is serialisable so the outbox can queue it. [`send`] connects with lettre's
//! `AsyncSmtpTransport<Tokio1Executor>` honouring `SMTP_SECURE`, authenticates only when a user is set, and classifies
//! the outcome: 2xx delivered; a 4xx reply or a connection/TLS/timeout failure → retry; a 5xx reply → drop. It knows
//! nothing about de-duplication or queueing. No error text ever contains the SMTP password.

use super::{DeliveryOutcome, verified_fixes_24h};
use crate::config::{AlertConfig, SmtpSecurity};
use crate::model::{Incident, RemediationAction, SystemStatus, parse_ts};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Incidents listed in the digest table before `…and <k> more` (agents.md 7.3).
pub const MAX_DIGEST_INCIDENTS: usize = 20;
/// Remediations of the last 24 h listed in the digest (agents.md 7.3).
pub const MAX_DIGEST_REMEDIATIONS: usize = 10;
/// SMTP timeout (agents.md 7.3): each command, and the whole send.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A built digest, stored as the outbox payload of an e-mail entry (recipients and sender come from the
/// configuration at send time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailDigest {
    /// `[Vizora Ops] <STATUS> — <c> critical, <w> warning(s)` ([`subject()`]).
    pub subject: String,
    /// The `text/plain` part, redacted (agents.md 5.9).
    pub text: String,
    /// The `text/html` part: interpolated text HTML-escaped ([`html_escape`]), then redacted.
    pub html: String,
}

/// HTML-escapes `& < > " '` (agents.md 7.3).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Heading colour of a status: HEALTHY `#2ecc71`, DEGRADED `#f39c12`, CRITICAL `#e74c3c`.
pub fn heading_color(s: SystemStatus) -> &'static str {
    match s {
        SystemStatus::Healthy => "#2ecc71",
        SystemStatus::Degraded => "#f39c12",
        SystemStatus::Critical => "#e74c3c",
    }
}

/// Subject `[Vizora Ops] <STATUS> — <c> critical, <w> warning(s)` (agents.md 7.3).
pub fn subject(status: SystemStatus, critical: usize, warning: usize) -> String {
    format!("[Vizora Ops] {status} — {critical} critical, {warning} warning(s)")
}

/// Builds the digest (agents.md 7.3) from the status, all incidents (active warning/critical ones are listed:
/// escalated, critical, warning, newest first, first 20 then `…and <k> more`) and the state's `recentRemediations`
/// (the 10 newest of the last 24 h). All interpolated text is HTML-escaped in the HTML part.
pub fn build_digest(
    status: SystemStatus,
    incidents: &[Incident],
    remediations: &[RemediationAction],
    host: &str,
    now: DateTime<Utc>,
) -> EmailDigest {
    let (c, w, e) = super::slack::active_counts(incidents.iter());
    let fixes = verified_fixes_24h(remediations, now);
    let mut active: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.is_active() && i.severity.counts())
        .collect();
    active.sort_by(|a, b| super::slack::alert_order(a, b));
    let more = active.len().saturating_sub(MAX_DIGEST_INCIDENTS);
    let shown = &active[..active.len().min(MAX_DIGEST_INCIDENTS)];

    let since = now - ChronoDuration::hours(24);
    let mut rems: Vec<(&RemediationAction, DateTime<Utc>)> = remediations
        .iter()
        .filter_map(|r| parse_ts(&r.timestamp).map(|t| (r, t)))
        .filter(|(_, t)| *t >= since && *t <= now + ChronoDuration::minutes(5))
        .collect();
    rems.sort_by_key(|r| std::cmp::Reverse(r.1));
    rems.truncate(MAX_DIGEST_REMEDIATIONS);

    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let generated = crate::model::ts(now);

    // Plain text part.
    let mut t = String::new();
    t.push_str(&format!("Vizora Ops: {status}\n\n"));
    t.push_str(&format!(
        "Critical: {c}\nWarning: {w}\nEscalated: {e}\nVerified fixes (24 h): {fixes}\n\n"
    ));
    t.push_str("Active incidents:\n");
    if shown.is_empty() {
        t.push_str("No active incidents.\n");
    }
    for i in shown {
        t.push_str(&format!(
            "- {} | {} | {} | {}:{} | {} | attempts {} | since {}\n",
            i.severity.as_str(),
            i.status.as_str(),
            // Human words for the type (issue 9, one vocabulary); the target column keeps the ids.
            crate::model::kind_label(&i.kind),
            i.target,
            i.target_id,
            i.message,
            i.attempts,
            i.detected
        ));
    }
    if more > 0 {
        t.push_str(&format!("…and {more} more\n"));
    }
    t.push_str("\nRemediations (last 24 h):\n");
    if rems.is_empty() {
        t.push_str("No remediations in the last 24 h.\n");
    }
    for (r, _) in &rems {
        t.push_str(&format!(
            "- {} | {} | {} | success: {} | verified: {}\n",
            r.timestamp,
            r.agent,
            r.action,
            yes_no(r.success),
            yes_no(r.verified == Some(true))
        ));
    }
    t.push_str(&format!(
        "\nGenerated {generated} by vizora-ops on {host}\n"
    ));

    // HTML part.
    let h = html_escape;
    let mut x = String::new();
    x.push_str("<!DOCTYPE html>\n<html><body style=\"font-family:Arial,Helvetica,sans-serif\">\n");
    x.push_str(&format!(
        "<h2 style=\"color:{}\">Vizora Ops: {}</h2>\n",
        heading_color(status),
        h(status.as_str())
    ));
    x.push_str(&format!(
        "<ul><li>Critical: {c}</li><li>Warning: {w}</li><li>Escalated: {e}</li>\
         <li>Verified fixes (24 h): {fixes}</li></ul>\n"
    ));
    x.push_str("<h3>Active incidents</h3>\n");
    if shown.is_empty() {
        x.push_str("<p>No active incidents.</p>\n");
    } else {
        x.push_str(
            "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr><th>Severity</th><th>Status</th>\
             <th>Type</th><th>Target</th><th>Message</th><th>Attempts</th><th>Since</th></tr>\n",
        );
        for i in shown {
            x.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                h(i.severity.as_str()),
                h(i.status.as_str()),
                h(&crate::model::kind_label(&i.kind)),
                h(&format!("{}:{}", i.target, i.target_id)),
                h(&i.message),
                i.attempts,
                h(&i.detected)
            ));
        }
        x.push_str("</table>\n");
        if more > 0 {
            x.push_str(&format!("<p>…and {more} more</p>\n"));
        }
    }
    x.push_str("<h3>Remediations (last 24 h)</h3>\n");
    if rems.is_empty() {
        x.push_str("<p>No remediations in the last 24 h.</p>\n");
    } else {
        x.push_str(
            "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr><th>Time</th><th>Agent</th>\
             <th>Action</th><th>Success</th><th>Verified</th></tr>\n",
        );
        for (r, _) in &rems {
            x.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                h(&r.timestamp),
                h(&r.agent),
                h(&r.action),
                yes_no(r.success),
                yes_no(r.verified == Some(true))
            ));
        }
        x.push_str("</table>\n");
    }
    x.push_str(&format!(
        "<p style=\"color:#888;font-size:12px\">Generated {} by vizora-ops on {}</p>\n</body></html>\n",
        h(&generated),
        h(host)
    ));

    EmailDigest {
        subject: subject(status, c, w),
        text: crate::redact::redact_str(&t),
        html: crate::redact::redact_str(&x),
    }
}

/// SMTP settings of one send (agents.md 7.3, 8.6).
#[derive(Clone)]
pub struct SmtpSettings {
    /// SMTP server host name (`SMTP_HOST`); also the TLS server name.
    pub host: String,
    /// SMTP port (`SMTP_PORT`, 587); 465 means implicit TLS under `SMTP_SECURE=auto`.
    pub port: u16,
    /// Transport security (`SMTP_SECURE`: `auto`, `tls`, `starttls`, `none`).
    pub security: SmtpSecurity,
    /// AUTH is attempted only when set.
    pub user: Option<String>,
    /// AUTH password (`SMTP_PASS`, legacy `SMTP_PASSWORD`); secret: masked in `Debug`, scrubbed from reasons.
    pub pass: Option<String>,
    /// Sender address (`SMTP_FROM`, `vizora-ops@vizora.cloud`); unparseable → the send is dropped.
    pub from: String,
    /// Recipients (`OPS_ALERT_EMAIL`, else `SMTP_TO`; non-empty from `from_config`); an unparseable one → dropped.
    pub recipients: Vec<String>,
    /// Per command and for the whole send; [`SMTP_TIMEOUT`] by default.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("recipients", &self.recipients)
            .finish()
    }
}

impl SmtpSettings {
    /// Settings from the alert configuration; `None` when `SMTP_HOST` or every recipient is missing (e-mail disabled;
    /// the caller logs the WARNING of agents.md 7.3 / 9.46).
    pub fn from_config(cfg: &AlertConfig) -> Option<SmtpSettings> {
        let host = cfg.smtp_host.clone()?;
        if cfg.recipients.is_empty() {
            return None;
        }
        Some(SmtpSettings {
            host,
            port: cfg.smtp_port,
            security: cfg.smtp_secure,
            user: cfg.smtp_user.clone(),
            pass: cfg.smtp_pass.clone(),
            from: cfg.smtp_from.clone(),
            recipients: cfg.recipients.clone(),
            timeout: SMTP_TIMEOUT,
        })
    }

    /// Removes the password (and any registered secret) from a text.
    fn scrub(&self, s: &str) -> String {
        let mut s = s.to_string();
        if let Some(p) = self.pass.as_deref().filter(|p| !p.is_empty()) {
            s = s.replace(p, "***");
        }
        crate::redact::redact_str(&s)
    }
}

/// The lettre TLS mode of `SMTP_SECURE` (agents.md 7.3): `auto` → implicit TLS on port 465, else STARTTLS when
/// offered, and required when credentials will be sent (no AUTH over plaintext); `tls` → implicit TLS; `starttls` →
/// required STARTTLS; `none` → plaintext (local test servers).
fn tls_mode(s: &SmtpSettings) -> Result<Tls, lettre::transport::smtp::Error> {
    let params = || TlsParameters::new(s.host.clone());
    Ok(match s.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Tls => Tls::Wrapper(params()?),
        SmtpSecurity::StartTls => Tls::Required(params()?),
        SmtpSecurity::Auto if s.port == 465 => Tls::Wrapper(params()?),
        SmtpSecurity::Auto if s.user.is_some() => Tls::Required(params()?),
        SmtpSecurity::Auto => Tls::Opportunistic(params()?),
    })
}

/// Sends the digest once (agents.md 7.3). Outcome: accepted (2xx) → [`DeliveryOutcome::Delivered`]; 4xx reply,
/// connection, TLS or timeout failure → [`DeliveryOutcome::Retry`]; 5xx reply (including refused credentials, 535)
/// → [`DeliveryOutcome::Drop`]; an invalid sender or recipient address → `Drop` (retrying cannot help). Reasons name
/// host and port and never contain the password.
pub async fn send(s: &SmtpSettings, digest: &EmailDigest) -> DeliveryOutcome {
    let target = format!("SMTP {}:{}", s.host, s.port);
    let from: Mailbox = match s.from.parse() {
        Ok(m) => m,
        Err(e) => return DeliveryOutcome::Drop(format!("{target}: invalid SMTP_FROM: {e}")),
    };
    let mut b = Message::builder()
        .from(from)
        .subject(digest.subject.clone());
    for r in &s.recipients {
        match r.parse::<Mailbox>() {
            Ok(m) => b = b.to(m),
            Err(e) => {
                return DeliveryOutcome::Drop(format!(
                    "{target}: invalid recipient {:?}: {e}",
                    s.scrub(r)
                ));
            }
        }
    }
    let msg = match b.multipart(MultiPart::alternative_plain_html(
        digest.text.clone(),
        digest.html.clone(),
    )) {
        Ok(m) => m,
        Err(e) => return DeliveryOutcome::Drop(format!("{target}: cannot build message: {e}")),
    };
    let tls = match tls_mode(s) {
        Ok(t) => t,
        Err(e) => {
            return DeliveryOutcome::Retry(format!(
                "{target}: TLS setup failed: {}",
                s.scrub(&e.to_string())
            ));
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout))
        .pool_config(PoolConfig::new().min_idle(0).max_size(1));
    if let Some(user) = &s.user {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            s.pass.clone().unwrap_or_default(),
        ));
    }
    let transport = builder.build();
    let res = tokio::time::timeout(s.timeout, transport.send(msg)).await;
    // Stop the pool's background task now so nothing delays process exit (agents.md 9.48).
    let _ = tokio::time::timeout(Duration::from_secs(2), transport.shutdown()).await;
    match res {
        Err(_) => DeliveryOutcome::Retry(format!(
            "{target}: timeout after {} ms",
            s.timeout.as_millis()
        )),
        Ok(Ok(_)) => DeliveryOutcome::Delivered,
        Ok(Err(e)) => {
            // lettre's Display already includes the underlying cause ("Connection error: <io error>").
            let text = s.scrub(&e.to_string());
            if e.is_permanent() {
                DeliveryOutcome::Drop(format!("{target}: rejected: {text}"))
            } else if e.is_transient() {
                DeliveryOutcome::Retry(format!("{target}: temporary failure: {text}"))
            } else if e.is_tls() {
                DeliveryOutcome::Retry(format!("{target}: TLS failure: {text}"))
            } else if e.is_timeout() {
                DeliveryOutcome::Retry(format!("{target}: timeout: {text}"))
            } else {
                DeliveryOutcome::Retry(format!("{target}: connection failure: {text}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentName, IncidentStatus, Severity};

    #[test]
    fn html_escape_covers_five_characters() {
        assert_eq!(
            html_escape(r#"<b>"x" & 'y'</b>"#),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn digest_lists_twenty_then_and_k_more_and_counts() {
        let now = Utc::now();
        let mut incs: Vec<Incident> = (0..23)
            .map(|n| {
                Incident::new(
                    AgentName::FleetManager,
                    "display_offline",
                    Severity::Warning,
                    "display",
                    &format!("d{n}"),
                    "offline",
                    "check",
                    now,
                )
            })
            .collect();
        incs[0].severity = Severity::Critical;
        incs[1].status = IncidentStatus::Escalated;
        let d = build_digest(SystemStatus::Critical, &incs, &[], "host<1>", now);
        assert_eq!(
            d.subject,
            "[Vizora Ops] CRITICAL — 1 critical, 22 warning(s)"
        );
        assert!(d.text.contains("…and 3 more"));
        assert!(d.html.contains("color:#e74c3c"));
        assert!(d.html.contains("host&lt;1&gt;"));
        assert!(d.text.contains("No remediations in the last 24 h."));
        let first = d.text.lines().find(|l| l.starts_with("- ")).unwrap();
        assert!(first.contains("escalated"), "{first}");
    }

    #[test]
    fn empty_digest_says_no_active_incidents() {
        let d = build_digest(SystemStatus::Healthy, &[], &[], "h", Utc::now());
        assert!(d.text.contains("No active incidents."));
        assert!(d.html.contains("No active incidents."));
        assert!(d.html.contains("#2ecc71"));
    }
}
