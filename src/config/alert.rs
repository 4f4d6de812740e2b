//! ops-reporter and alerting settings (agents.md 8.6, 7): Slack, the e-mail digest ([`super::smtp`]), de-duplication,
//! the dashboard push, per-agent SLAs and dead-man heartbeats.

use super::Source;
use super::smtp::{self, DEFAULT_SMTP_FROM, DEFAULT_SMTP_PORT, SmtpSecurity};
use crate::model::AgentName;
use std::collections::BTreeMap;

/// Default of `OPS_ALERT_DEDUP_MINUTES`, in minutes.
pub const DEFAULT_DEDUP_MINUTES: u64 = 60;
/// Default of `OPS_CRITICAL_REALERT_MINUTES`, in minutes.
pub const DEFAULT_CRITICAL_REALERT_MINUTES: u64 = 60;
/// Default of `OPS_NOTIFY_FIXES`.
pub const DEFAULT_NOTIFY_FIXES: bool = true;
/// Default of `OPS_DASHBOARD_MAX_BYTES`, in bytes.
pub const DEFAULT_DASHBOARD_MAX_BYTES: u64 = 90_000;
/// Default of `OPS_SLA_DB_MAINTAINER_MINUTES`, in minutes (26 hours: one daily run and some slack, agents.md 6.5.2).
pub const DEFAULT_DB_MAINTAINER_SLA_MINUTES: u64 = 1560;

/// ops-reporter and alerting settings (agents.md 8.6, 7.8).
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// `SLACK_WEBHOOK_URL` (http(s), a secret; only its host is ever printed); `None` → no Slack
    /// (agents.md 7.1, 7.2).
    pub slack_webhook_url: Option<String>,
    /// `SMTP_HOST`; `None` → no e-mail digest (agents.md 7.3).
    pub smtp_host: Option<String>,
    /// `SMTP_PORT` (default [`DEFAULT_SMTP_PORT`], 1..=65535) (agents.md 7.3).
    pub smtp_port: u16,
    /// `SMTP_SECURE` (default `auto`) (agents.md 7.3).
    pub smtp_secure: SmtpSecurity,
    /// `SMTP_USER`; SMTP authentication only when set (agents.md 7.3).
    pub smtp_user: Option<String>,
    /// `SMTP_PASS`, else legacy `SMTP_PASSWORD`; a secret (agents.md 7.3, 5.9).
    pub smtp_pass: Option<String>,
    /// `SMTP_FROM` (default [`DEFAULT_SMTP_FROM`]): sender of the digest (agents.md 7.3).
    pub smtp_from: String,
    /// `OPS_ALERT_EMAIL`, else `SMTP_TO` (comma lists); empty → e-mail disabled with a WARNING.
    pub recipients: Vec<String>,
    /// `OPS_ALERT_DEDUP_MINUTES` (default [`DEFAULT_DEDUP_MINUTES`]): an alerted critical incident is alert-worthy
    /// again after this while the status is CRITICAL (agents.md 7.5).
    pub dedup_minutes: u64,
    /// `OPS_CRITICAL_REALERT_MINUTES` (default [`DEFAULT_CRITICAL_REALERT_MINUTES`]): interval of repeated CRITICAL
    /// status alerts (agents.md 7.5).
    pub critical_realert_minutes: u64,
    /// `OPS_NOTIFY_FIXES` (default [`DEFAULT_NOTIFY_FIXES`]): Slack fix notifications on (agents.md 7.6).
    pub notify_fixes: bool,
    /// `OPS_DASHBOARD_MAX_BYTES` (default [`DEFAULT_DASHBOARD_MAX_BYTES`], 1 000..=100 000 000): the dashboard push
    /// payload is trimmed below it (agents.md 7.4).
    pub dashboard_max_bytes: usize,
    /// `OPS_SERVER_URL`: own ops server that also receives the dashboard push; `None` → not pushed
    /// (agents.md 7.4).
    pub ops_server_url: Option<String>,
    /// `OPS_API_TOKEN`: bearer token of that push, a secret; `None` with a URL set → push skipped
    /// with a WARNING (agents.md 7.4).
    pub ops_api_token: Option<String>,
    /// agent → SLA minutes: `OPS_SLA_<AGENT>_MINUTES`, default twice the agent's interval (legacy
    /// `OPS_WATCHDOG_SLA_MINUTES` for all), db-maintainer [`DEFAULT_DB_MAINTAINER_SLA_MINUTES`] (agents.md 6.5.2).
    pub sla_minutes: BTreeMap<AgentName, u64>,
    /// agent → dead-man heartbeat URL (7.8).
    pub heartbeat_urls: BTreeMap<AgentName, String>,
    /// Demo: print would-be messages instead of delivering them.
    pub capture_only: bool,
}

impl AlertConfig {
    /// Reads and validates the section; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> AlertConfig {
        let smtp_secure = SmtpSecurity::parse(src);
        let recipients = smtp::recipients(src);
        let (sla_minutes, heartbeat_urls) = sla_and_heartbeats(src);
        AlertConfig {
            slack_webhook_url: src.url("SLACK_WEBHOOK_URL", None, &["http", "https"]),
            smtp_host: src.get("SMTP_HOST"),
            smtp_port: src.u64("SMTP_PORT", DEFAULT_SMTP_PORT, 1, 65_535) as u16,
            smtp_secure,
            smtp_user: src.get("SMTP_USER"),
            smtp_pass: src.get("SMTP_PASS").or_else(|| src.get("SMTP_PASSWORD")),
            smtp_from: src
                .get("SMTP_FROM")
                .unwrap_or_else(|| DEFAULT_SMTP_FROM.into()),
            recipients,
            dedup_minutes: src.u64(
                "OPS_ALERT_DEDUP_MINUTES",
                DEFAULT_DEDUP_MINUTES,
                0,
                1_000_000,
            ),
            critical_realert_minutes: src.u64(
                "OPS_CRITICAL_REALERT_MINUTES",
                DEFAULT_CRITICAL_REALERT_MINUTES,
                0,
                1_000_000,
            ),
            notify_fixes: src.bool("OPS_NOTIFY_FIXES", DEFAULT_NOTIFY_FIXES),
            dashboard_max_bytes: src.u64(
                "OPS_DASHBOARD_MAX_BYTES",
                DEFAULT_DASHBOARD_MAX_BYTES,
                1_000,
                100_000_000,
            ) as usize,
            ops_server_url: src.url("OPS_SERVER_URL", None, &["http", "https"]),
            ops_api_token: src.get("OPS_API_TOKEN"),
            sla_minutes,
            heartbeat_urls,
            capture_only: src.bool("OPS_ALERT_CAPTURE_ONLY", false),
        }
    }
}

/// Per agent: the SLA in minutes and the dead-man heartbeat URL (`OPS_HEARTBEAT_URL_<AGENT>`; health-guardian also
/// the legacy `HEALTHCHECKS_HEALTH_GUARDIAN_URL`) (agents.md 6.5.2, 7.8).
fn sla_and_heartbeats(src: &Source) -> (BTreeMap<AgentName, u64>, BTreeMap<AgentName, String>) {
    let legacy_sla = src
        .get("OPS_WATCHDOG_SLA_MINUTES")
        .map(|_| src.u64("OPS_WATCHDOG_SLA_MINUTES", 0, 1, 1_000_000));
    let mut sla_minutes = BTreeMap::new();
    let mut heartbeat_urls = BTreeMap::new();
    for a in AgentName::ALL {
        let default = match a {
            AgentName::DbMaintainer => DEFAULT_DB_MAINTAINER_SLA_MINUTES,
            _ => legacy_sla.unwrap_or(a.interval_s() * 2 / 60),
        };
        let k = format!("OPS_SLA_{}_MINUTES", a.env_suffix());
        sla_minutes.insert(a, src.u64(&k, default, 1, 1_000_000));
        let hk = format!("OPS_HEARTBEAT_URL_{}", a.env_suffix());
        let mut hb = src.url(&hk, None, &["http", "https"]);
        if hb.is_none() && a == AgentName::HealthGuardian {
            hb = src.url("HEALTHCHECKS_HEALTH_GUARDIAN_URL", None, &["http", "https"]);
        }
        if let Some(h) = hb {
            heartbeat_urls.insert(a, h);
        }
    }
    (sla_minutes, heartbeat_urls)
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use crate::model::AgentName;

    #[test]
    fn sla_defaults_follow_the_interval_and_the_legacy_variables_still_count() {
        let c = cfg(&[
            ("OPS_WATCHDOG_SLA_MINUTES", "7"),
            (
                "HEALTHCHECKS_HEALTH_GUARDIAN_URL",
                "https://hc.example.test/hg",
            ),
        ])
        .unwrap();
        assert_eq!(c.alert.sla_minutes[&AgentName::FleetManager], 7);
        assert_eq!(
            c.alert.sla_minutes[&AgentName::DbMaintainer],
            super::DEFAULT_DB_MAINTAINER_SLA_MINUTES
        );
        assert_eq!(
            c.alert
                .heartbeat_urls
                .get(&AgentName::HealthGuardian)
                .map(String::as_str),
            Some("https://hc.example.test/hg")
        );
        assert_eq!(c.alert.heartbeat_urls.len(), 1);
        assert!(c.alert.notify_fixes);
    }
}
