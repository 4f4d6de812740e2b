//! `vizora-ops config check` (agents.md 8): the problems a run only meets later, the effective values with secrets
//! masked, and what each agent can do with this configuration.

use super::{Config, OWN_PREFIXES, backup_location, is_secret_var, mask_userinfo, process_name};
use crate::model::AgentName;

impl Config {
    /// Problems a run only meets later, as `(variable, reason)`; `config check` fails on them (exit 2) while a run
    /// still starts, so that one bad value never silences a whole agent:
    ///
    /// * process names and units that can never enter a command (agents.md 1.6, 6.1.3: only `[A-Za-z0-9._@:-]`, no
    ///   leading `-`): health-guardian probes and reports the service and raises its incident with `rejected process
    ///   name or id` instead of running a command;
    /// * backup locations db-maintainer would reject (agents.md 6.6.7), with the reason of its `backup-unverifiable`
    ///   incident (the value shown redacted, never a password in the URL).
    pub fn run_time_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (prefix, names) in [
            ("OPS_PM2_APP_", &self.health.pm2_apps),
            ("OPS_SYSTEMD_UNIT_", &self.health.systemd_units),
        ] {
            for (svc, name) in names {
                if let Some(why) = process_name::process_name_problem(name) {
                    out.push((
                        format!("{prefix}{}", svc.to_ascii_uppercase()),
                        format!(
                            "rejected process name or id: {}: {why}",
                            process_name::shown_process_name(name)
                        ),
                    ));
                }
            }
        }
        let var = if self.source.peek("OPS_BACKUP_LOCATIONS").is_some() {
            "OPS_BACKUP_LOCATIONS"
        } else {
            "BACKUP_DIR/BACKUP_S3_BUCKET"
        };
        for loc in &self.db.backup_locations {
            if let Err(msg) = backup_location::parse_location(loc) {
                let hint = if loc.contains('@') {
                    "; credentials do not belong in the location (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                } else {
                    ""
                };
                out.push((
                    var.to_string(),
                    format!(
                        "{}{hint}; db-maintainer would raise backup-unverifiable",
                        mask_userinfo(&msg)
                    ),
                ));
            }
        }
        out
    }

    /// Every known variable with its effective value, secrets masked, for `config check`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut keys: Vec<&String> = self.source.keys().collect();
        keys.sort();
        let mut out = vec![
            ("root dir".to_string(), self.root_dir.display().to_string()),
            (
                "state file".to_string(),
                self.state_file.display().to_string(),
            ),
            (
                "audit file".to_string(),
                self.audit_file.display().to_string(),
            ),
            ("API origin".to_string(), self.api.base_url.clone()),
            (
                "API credentials".to_string(),
                match (&self.api.email, &self.api.password) {
                    (Some(e), Some(_)) => format!("{e} / ***"),
                    _ => format!("missing {}", self.missing_credentials().join(", ")),
                },
            ),
            (
                "agents".to_string(),
                self.agents
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("dry run".to_string(), self.dry_run.to_string()),
            (
                "process manager".to_string(),
                format!("{:?}", self.health.process_manager),
            ),
            (
                "slack".to_string(),
                self.alert
                    .slack_webhook_url
                    .as_deref()
                    .map(crate::redact::url_host_only)
                    .unwrap_or_else(|| "not set".into()),
            ),
            (
                "email".to_string(),
                match &self.alert.smtp_host {
                    Some(h) => format!(
                        "{h}:{} → {}",
                        self.alert.smtp_port,
                        self.alert.recipients.join(",")
                    ),
                    None => "not set".into(),
                },
            ),
            (
                "database".to_string(),
                self.db
                    .database_url
                    .as_deref()
                    .map(crate::redact::redact_str)
                    .unwrap_or_else(|| "not set".into()),
            ),
        ];
        for k in keys {
            if !(OWN_PREFIXES.iter().any(|p| k.starts_with(p))
                || [
                    "SLACK_WEBHOOK_URL",
                    "DATABASE_URL",
                    "REDIS_URL",
                    "WEB_URL",
                    "REALTIME_URL",
                ]
                .contains(&k.as_str()))
            {
                continue;
            }
            let v = self.source.peek(k).unwrap_or("");
            let shown = if is_secret_var(k) {
                "***".to_string()
            } else {
                crate::redact::redact_str(v)
            };
            out.push((format!("{k} ({})", self.source.vals[k].1), shown));
        }
        // Userinfo is masked in every value, also without a scheme (`MINIO_ENDPOINT=user:pass@host`), which the
        // redactor's URL rule does not see (agents.md 5.9).
        out.into_iter()
            .map(|(k, v)| (k, mask_userinfo(&v)))
            .collect()
    }

    /// The login variables that are missing (`OPS_EMAIL`, `OPS_PASSWORD`; the `VALIDATOR_*` pair stands in for them,
    /// agents.md 8.3): empty when the API agents can log in.
    pub fn missing_credentials(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.api.email.is_none() {
            out.push("OPS_EMAIL");
        }
        if self.api.password.is_none() {
            out.push("OPS_PASSWORD");
        }
        out
    }

    /// What each agent can do with this configuration, for `config check` (agents.md 6, 7.1, 8): `(agent, can run,
    /// what is missing or limited)`. content-lifecycle, fleet-manager and schedule-doctor cannot run without API
    /// credentials (they exit 2, agents.md 5.2); health-guardian and db-maintainer need no API login; ops-reporter
    /// runs without it but skips the dashboard push (7.4); without Slack or SMTP no alert is delivered (7.1); without
    /// `DATABASE_URL` db-maintainer skips its PostgreSQL tasks (`db-not-configured`, 6.6.1).
    pub fn agent_readiness(&self) -> Vec<(AgentName, bool, Vec<String>)> {
        let missing = self.missing_credentials();
        let no_login = (!missing.is_empty())
            .then(|| format!("{} not set: it needs the API login", missing.join(" and ")));
        let alerts = self.alert.slack_webhook_url.is_some()
            || (self.alert.smtp_host.is_some() && !self.alert.recipients.is_empty());
        let mut out = Vec::new();
        for a in AgentName::ALL {
            let mut notes = Vec::new();
            let mut can_run = true;
            match a {
                AgentName::ContentLifecycle
                | AgentName::FleetManager
                | AgentName::ScheduleDoctor => {
                    if let Some(n) = &no_login {
                        can_run = false;
                        notes.push(n.clone());
                    }
                }
                AgentName::OpsReporter => {
                    if !missing.is_empty() {
                        notes.push(format!(
                            "no dashboard push ({} not set)",
                            missing.join(" and ")
                        ));
                    }
                    if !alerts {
                        notes.push(
                            "no alert is delivered (set SLACK_WEBHOOK_URL, or SMTP_HOST with OPS_ALERT_EMAIL)".into(),
                        );
                    }
                }
                AgentName::DbMaintainer => {
                    if self.db.database_url.is_none() {
                        notes.push(
                            "DATABASE_URL not set: VACUUM/REINDEX skipped (db-not-configured)"
                                .into(),
                        );
                    }
                    if self.db.backup_locations.is_empty() {
                        notes.push(
                            "no backup location (OPS_BACKUP_LOCATIONS, BACKUP_DIR, BACKUP_S3_BUCKET): backups \
                             unverified"
                                .into(),
                        );
                    }
                    if self.db.s3_endpoint.is_none() {
                        notes.push("no S3 endpoint (OPS_S3_ENDPOINT or MINIO_ENDPOINT): bucket usage skipped".into());
                    }
                }
                AgentName::HealthGuardian | AgentName::OpsWatchdog => {}
            }
            if !self.agents.contains(&a) {
                notes.push("not in OPS_AGENTS (not watched by ops-reporter)".into());
            }
            out.push((a, can_run, notes));
        }
        out
    }
}
