//! Configuration (agents.md section 8): process environment > `<root>/.env` > optional TOML file > defaults, built and
//! validated once into a [`Config`]; nothing reads environment variables after that (style.md, Gatus).
//!
//! Errors name the variable (`OPS_RATE_PER_SECOND: expected a whole number …`). Booleans accept `true|1|yes` and
//! `false|0|no|` (case-insensitive); numbers must be finite and in range; a malformed value is never defaulted.

pub mod backup_location;
pub mod process_name;

use crate::model::AgentName;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Configuration errors, every one found in one pass (agents.md 8.1): each message names the variable or file, never
/// a secret value. Any of them means exit 2 before any I/O (agents.md 1.3). Displayed one per line, each prefixed with
/// `configuration error: `.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl ConfigError {
    /// One error.
    pub fn one(msg: impl Into<String>) -> ConfigError {
        ConfigError(vec![msg.into()])
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "configuration error: {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The merged key/value sources, with provenance for `config check`; it remembers which variables the configuration
/// read, so that `config check` can name set variables nobody reads (typos such as `OPS_EMIAL`).
///
/// The typed getters ([`Source::bool`], [`Source::u64`], [`Source::f64`], [`Source::url`]) never stop at a malformed
/// value: they record the error (naming the variable) and return the default, so that validation goes on and
/// [`Config::from_source`] fails with every error at once (agents.md 8.1); a malformed value is never used.
#[derive(Debug, Clone, Default)]
pub struct Source {
    vals: HashMap<String, (String, &'static str)>,
    read: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Prefixes of the variables this program owns (agents.md 8); a set variable with one of them that the configuration
/// never reads is reported by [`Source::unread`].
pub const OWN_PREFIXES: [&str; 6] = [
    "OPS_",
    "VALIDATOR_",
    "SMTP_",
    "MINIO_",
    "BACKUP_",
    "HEALTHCHECKS_",
];

impl Source {
    /// Builds the source from explicit maps (highest precedence first): process env, `.env`, file.
    pub fn layered(
        env: HashMap<String, String>,
        dotenv: HashMap<String, String>,
        file: HashMap<String, String>,
    ) -> Source {
        let mut vals = HashMap::new();
        for (k, v) in file {
            vals.insert(k.to_ascii_uppercase(), (v, "file"));
        }
        for (k, v) in dotenv {
            vals.insert(k, (v, ".env"));
        }
        for (k, v) in env {
            vals.insert(k, (v, "env"));
        }
        Source {
            vals,
            read: Default::default(),
            errors: Default::default(),
        }
    }

    /// A source from the given pairs only (tests, the demo).
    pub fn from_pairs<I: IntoIterator<Item = (K, V)>, K: Into<String>, V: Into<String>>(
        pairs: I,
    ) -> Source {
        Source {
            vals: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), (v.into(), "env")))
                .collect(),
            read: Default::default(),
            errors: Default::default(),
        }
    }

    /// The raw value of a variable, if set (even empty). Marks the variable as read.
    pub fn raw(&self, key: &str) -> Option<&str> {
        if let Ok(mut r) = self.read.lock() {
            r.insert(key.to_string());
        }
        self.peek(key)
    }

    /// The raw value without marking it read (listing and redaction).
    fn peek(&self, key: &str) -> Option<&str> {
        self.vals.get(key).map(|(v, _)| v.as_str())
    }

    /// Set variables with one of [`OWN_PREFIXES`] that the configuration never read, sorted, with where each came from
    /// (`env`, `.env`, `file`): most likely misspelt.
    pub fn unread(&self) -> Vec<(String, &'static str)> {
        let read = self.read.lock().map(|r| r.clone()).unwrap_or_default();
        let mut out: Vec<(String, &'static str)> = self
            .vals
            .iter()
            .filter(|(k, _)| OWN_PREFIXES.iter().any(|p| k.starts_with(p)) && !read.contains(*k))
            .map(|(k, (_, from))| (k.clone(), *from))
            .collect();
        out.sort();
        out
    }

    /// The value if set and non-empty after trimming.
    pub fn get(&self, key: &str) -> Option<String> {
        self.raw(key)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        self.vals.keys()
    }

    /// Records a configuration error (the message names the variable, never a secret value).
    pub fn fail(&self, msg: impl Into<String>) {
        if let Ok(mut e) = self.errors.lock() {
            e.push(msg.into());
        }
    }

    /// Takes the errors recorded so far.
    fn take_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// Parses a boolean (`true|1|yes` / `false|0|no|`), default when unset; anything else is recorded as an error
    /// (the default is returned so that validation goes on).
    pub fn bool(&self, key: &str, default: bool) -> bool {
        match self.raw(key) {
            None => default,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" | "" => false,
                _ => {
                    self.fail(format!("{key}: expected true/false/1/0/yes/no, got {v:?}"));
                    default
                }
            },
        }
    }

    /// Parses a whole number in `[min, max]`, default when unset or empty; a malformed or out-of-range value is
    /// recorded as an error (the default is returned so that validation goes on).
    pub fn u64(&self, key: &str, default: u64, min: u64, max: u64) -> u64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Err(_) => {
                    self.fail(format!(
                        "{key}: expected a whole number between {min} and {max}, got {v:?}"
                    ));
                    default
                }
                Ok(n) if n < min || n > max => {
                    self.fail(format!("{key}: {n} is out of range {min}..={max}"));
                    default
                }
                Ok(n) => n,
            },
        }
    }

    /// Parses a finite number in `[min, max]`, default when unset or empty; a malformed or out-of-range value is
    /// recorded as an error (the default is returned so that validation goes on).
    pub fn f64(&self, key: &str, default: f64, min: f64, max: f64) -> f64 {
        match self.get(key) {
            None => default,
            Some(v) => match v.parse::<f64>().ok().filter(|n| n.is_finite()) {
                None => {
                    self.fail(format!("{key}: expected a number, got {v:?}"));
                    default
                }
                Some(n) if n < min || n > max => {
                    self.fail(format!("{key}: {n} is out of range {min}..={max}"));
                    default
                }
                Some(n) => n,
            },
        }
    }

    /// Parses a URL (http/https unless `schemes` says otherwise), `default` when unset; an invalid one is recorded
    /// as an error (the message never quotes the value: URLs carry credentials) and `default` is returned.
    pub fn url(&self, key: &str, default: Option<&str>, schemes: &[&str]) -> Option<String> {
        let v = match self.get(key) {
            Some(v) => v,
            None => return default.map(String::from),
        };
        let problem = match url::Url::parse(&v) {
            Err(e) => Some(format!("{key}: not a valid URL ({e})")),
            Ok(p) if !schemes.contains(&p.scheme()) => Some(format!(
                "{key}: scheme {:?} not allowed (expected {})",
                p.scheme(),
                schemes.join(" or ")
            )),
            Ok(p) if p.host_str().is_none() => Some(format!("{key}: URL has no host")),
            Ok(_) => None,
        };
        match problem {
            Some(m) => {
                self.fail(m);
                default.map(String::from)
            }
            None => Some(v),
        }
    }

    /// A comma-separated list (empty items dropped), `None` when unset.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.raw(key).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }
}

/// Parses `.env` text: `KEY=VALUE`, optional `export `, `#` comments, single or double quotes (double allow `\n`).
pub fn parse_dotenv(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = l.strip_prefix("export ").unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let v = v.trim();
        let val = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
            v[1..v.len() - 1].replace("\\n", "\n").replace("\\\"", "\"")
        } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
            v[1..v.len() - 1].to_string()
        } else {
            // Unquoted: strip an inline comment introduced by " #".
            match v.find(" #") {
                Some(i) => v[..i].trim().to_string(),
                None => v.to_string(),
            }
        };
        out.insert(k.to_string(), val);
    }
    out
}

/// Parses a TOML configuration file whose keys are environment variable names (lower case allowed).
pub fn parse_toml_file(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = read_config_text(path, "config file", false)
        .map_err(ConfigError::one)?
        .unwrap_or_default();
    // The parser's own message quotes the offending line, which may hold a password: report only where and why.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|sp| {
                let before = &text[..sp.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {col}")
            })
            .unwrap_or_default();
        ConfigError::one(format!(
            "config file {}: invalid TOML{at}: {}",
            path.display(),
            e.message().trim()
        ))
    })?;
    let mut out = HashMap::new();
    for (k, v) in table {
        let s = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    toml::Value::String(s) => s.clone(),
                    o => o.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                // Name the kind only: the value itself may be a secret.
                return Err(ConfigError::one(format!(
                    "config file {}: key {k} has an unsupported value (a {}; expected a string, number, boolean or \
                     array)",
                    path.display(),
                    other.type_str()
                )));
            }
        };
        out.insert(k.to_ascii_uppercase(), s);
    }
    Ok(out)
}

/// Which process manager health-guardian uses (agents.md 8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessManagerKind {
    /// `pm2` (the default): `pm2 jlist` / `pm2 restart|reload` run as `OPS_PM2_BIN` (agents.md 6.1.2, 6.1.3).
    Pm2,
    /// `systemd`: `systemctl show|restart <unit>` run as `OPS_SYSTEMCTL_BIN` (agents.md 6.1.2, 6.1.3).
    Systemd,
    /// The demo's simulated services, restarted through the sandbox control API.
    Sandbox,
}

/// Backend of the host-wide rate budget (agents.md 5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBackend {
    /// `memory`: sliding windows kept in this process only, not shared with other processes (agents.md 5.5).
    Memory,
    /// `file`, and `auto` without `OPS_RATE_LIMIT_REDIS_URL`: `<state dir>/ops-ratelimit.json`, shared by the host's
    /// processes under its own lock (agents.md 5.5).
    File,
    /// `redis`, and `auto` with `OPS_RATE_LIMIT_REDIS_URL`: not available in this version, so
    /// [`Config::from_source`] rejects it with a configuration error.
    Redis,
}

/// `SMTP_SECURE` (agents.md 7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `auto` (the default): implicit TLS on port 465; else STARTTLS, required when `SMTP_USER` is set and used when
    /// offered otherwise (agents.md 7.3).
    Auto,
    /// `tls` (or `true`): implicit TLS from the first byte.
    Tls,
    /// `starttls`: STARTTLS required; a server that does not offer it fails the delivery.
    StartTls,
    /// `none` (or `false`): plain text, for local test servers.
    None,
}

/// API client settings (agents.md 8.3).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// API origin, e.g. `http://localhost:3000` (a path is ignored).
    pub base_url: String,
    /// Login e-mail: `OPS_EMAIL`, else `VALIDATOR_EMAIL`; empty counts as unset. `None` → a run that needs
    /// the API fails with `no API credentials`, exit 2 (agents.md 5.2).
    pub email: Option<String>,
    /// Login password: `OPS_PASSWORD`, else `VALIDATOR_PASSWORD` (empty = unset); a secret registered with
    /// the redactor (agents.md 5.2, 5.9). `None` as for `email`.
    pub password: Option<String>,
    /// `OPS_HTTP_CONNECT_TIMEOUT_MS` (default 5 000 ms, 1..=600 000): connect timeout of the API client and of the
    /// run's shared HTTP client (agents.md 5.6).
    pub connect_timeout: Duration,
    /// `OPS_HTTP_TIMEOUT_MS` (default 30 000 ms): one API request, body included (agents.md 5.6).
    pub request_timeout: Duration,
    /// `OPS_PROBE_TIMEOUT_MS` (default 5 000 ms): each health, edge and thumbnail probe and each dead-man
    /// heartbeat (agents.md 5.6, 7.8).
    pub probe_timeout: Duration,
    /// `OPS_NOTIFY_TIMEOUT_MS` (default 10 000 ms): Slack, SMTP, dashboard push and logout
    /// (agents.md 5.6).
    pub notify_timeout: Duration,
    /// `OPS_HTTP_RETRIES` (default 3, 0..=10): retries of idempotent API requests on transport errors,
    /// timeouts, 5xx and 429 (agents.md 5.6).
    pub retries: u32,
    /// `OPS_MAX_LIST_ITEMS` (default 100 000): items after which a page walk stops, incomplete
    /// (agents.md 5.4).
    pub max_list_items: usize,
    /// `OPS_RATE_PER_SECOND` (default 10): host-wide API requests per sliding second (agents.md 5.5).
    pub rate_per_second: u32,
    /// `OPS_RATE_PER_MINUTE` (default 100): host-wide API requests per sliding minute (agents.md 5.5).
    pub rate_per_minute: u32,
    /// `OPS_RATE_PER_HOUR` (default 1 000): host-wide API requests per sliding hour (agents.md 5.5).
    pub rate_per_hour: u32,
    /// `OPS_LOGINS_PER_MINUTE` (default 5): host-wide logins per sliding minute (agents.md 5.5).
    pub logins_per_minute: u32,
    /// `OPS_RATE_LIMIT_BACKEND` (`auto` default, `memory`, `file`, `redis`): where the rate budget is kept
    /// (agents.md 5.5).
    pub rate_backend: RateLimitBackend,
    /// `OPS_RATE_LIMIT_REDIS_URL` (`redis://` or `rediss://`, a secret); `None` when unset.
    pub rate_redis_url: Option<String>,
}

/// health-guardian settings (agents.md 8.4).
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// `OPS_PROCESS_MANAGER`: `pm2` (default), `systemd` or `sandbox` (the demo).
    pub process_manager: ProcessManagerKind,
    /// `OPS_PM2_BIN` (default `pm2`, found on `PATH`): program run for PM2 commands, from an argv
    /// (agents.md 1.6).
    pub pm2_bin: String,
    /// `OPS_SYSTEMCTL_BIN` (default `systemctl`, found on `PATH`).
    pub systemctl_bin: String,
    /// `OPS_PM2_TIMEOUT_S` (default 30 s, 1..=3600): `pm2 restart|reload` and `systemctl` commands
    /// (agents.md 5.6).
    pub pm2_timeout: Duration,
    /// `OPS_PM2_JLIST_TIMEOUT_S` (default 15 s, 1..=3600): `pm2 jlist` (agents.md 5.6).
    pub pm2_jlist_timeout: Duration,
    /// service key (`middleware`, `realtime`, `web`) → PM2 app name.
    pub pm2_apps: BTreeMap<String, String>,
    /// service key → systemd unit.
    pub systemd_units: BTreeMap<String, String>,
    /// `OPS_MIDDLEWARE_PROBE_URL` (default `http://127.0.0.1:3000/api/v1/health/ready`); loopback
    /// only, any other host is a configuration error (agents.md 6.1).
    pub middleware_probe_url: String,
    /// `OPS_REALTIME_PROBE_URL` (default `http://127.0.0.1:3002/api/health/ready`); loopback only
    /// (agents.md 6.1).
    pub realtime_probe_url: String,
    /// `OPS_WEB_PROBE_URL` (default `http://127.0.0.1:3001/`); loopback only (agents.md 6.1).
    pub web_probe_url: String,
    /// `OPS_PROBE_CONFIRM_S` (default 5 s, 0..=600): wait before a failed probe is repeated
    /// (agents.md 6.1.1).
    pub probe_confirm_s: u64,
    /// `OPS_ECOSYSTEM_FILE` (default `<root>/ecosystem.config.js`): PM2 ecosystem file read for
    /// memory limits jlist does not report (agents.md 6.1.2).
    pub ecosystem_file: PathBuf,
    /// `OPS_NODE_BIN` (default `node`): program that reads the ecosystem file (agents.md 6.1).
    pub node_bin: String,
    /// `OPS_MEMORY_THRESHOLD_PCT` (default 85, percent 0–100): a process using more than this
    /// share of its memory limit is `high-memory` (agents.md 6.1.2).
    pub memory_threshold_pct: f64,
    /// `OPS_HOST_MEMORY_THRESHOLD_PCT` (default 85, percent 0–100): host memory use above
    /// it is `host-memory-high` (agents.md 6.1.2).
    pub host_memory_threshold_pct: f64,
    /// `OPS_RESTART_COOLDOWN_S` (default 30 s, 0..=3600): wait after the run's commands before
    /// re-probing (agents.md 6.1.3).
    pub restart_cooldown_s: u64,
    /// `OPS_RESTART_BACKOFF_BASE_S` (default 30 s): base of the restart backoff
    /// `min(base × 2^n, cap)` (agents.md 6.1.3).
    pub restart_backoff_base_s: u64,
    /// `OPS_RESTART_BACKOFF_CAP_S` (default 600 s): cap of the restart backoff (agents.md 6.1.3).
    pub restart_backoff_cap_s: u64,
    /// `OPS_RESTART_MAX_ATTEMPTS` (default 2, 1..=100): attempts after which an incident is
    /// escalated (agents.md 6.1.3).
    pub restart_max_attempts: u32,
    /// `OPS_BACKOFF_RESET_MINUTES` (default 30 min): an incident resolved less than this ago
    /// continues its episode and backoff (agents.md 2.5, 6.1.3).
    pub backoff_reset_minutes: u64,
    /// `WEB_URL` when http(s) with a non-loopback host (edge watch), else `None`.
    pub edge_url: Option<String>,
    /// Why the edge watch is off, for the log.
    pub edge_off_reason: Option<String>,
    /// Sandbox control API (demo process manager).
    pub sandbox_control_url: Option<String>,
}

/// content-lifecycle, fleet-manager and schedule-doctor settings (agents.md 8.5).
#[derive(Debug, Clone)]
pub struct EntityConfig {
    /// `OPS_ORPHAN_MIN_AGE_DAYS` (default 30 days): minimum `createdAt` age of an orphan
    /// candidate (agents.md 6.2.4).
    pub orphan_min_age_days: u64,
    /// `OPS_MAX_ARCHIVES_PER_RUN` (default 100): orphan candidates processed per run; the rest
    /// are deferred (agents.md 6.2.4).
    pub max_archives_per_run: usize,
    /// `OPS_STORAGE_WARN_PCT` (default 80, percent 0–100): storage use above it is a warning
    /// `storage_high` (agents.md 6.2.5).
    pub storage_warn_pct: f64,
    /// `OPS_STORAGE_CRITICAL_PCT` (default 90, percent, not below the warning level): above it
    /// `storage_high` is critical and archiving starts (agents.md 6.2.5).
    pub storage_critical_pct: f64,
    /// `OPS_STORAGE_MAX_ARCHIVES_PER_RUN` (default 100): archives per run to relieve
    /// critical storage (agents.md 6.2.5).
    pub storage_max_archives_per_run: usize,
    /// `OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS` (default 7 days): minimum age of content
    /// archived for storage (agents.md 6.2.5).
    pub storage_archive_min_age_days: u64,
    /// `OPS_CONTENT_DETAIL_READS_PER_RUN` (default 100): content detail reads per run
    /// that refresh the detail cache (agents.md 6.2.1).
    pub content_detail_reads_per_run: usize,
    /// `OPS_THUMBNAIL_PROBES_PER_RUN` (default 100): thumbnail probes per run
    /// (agents.md 6.2.3).
    pub thumbnail_probes_per_run: usize,
    /// `OPS_THUMBNAIL_RECHECK_HOURS` (default 24 h): a cached result for the same URL
    /// younger than this is reused, not re-probed (agents.md 6.2.3).
    pub thumbnail_recheck_hours: u64,
    /// Oversized threshold in bytes (`OPS_MAX_FILE_SIZE_MB` × 1 048 576).
    pub max_file_size_bytes: u64,
    /// `MINIO_BUCKET` (default `vizora-assets`): bucket of `minio://<key>` thumbnails (agents.md 6.2.3).
    pub minio_bucket: String,
    /// `OPS_OFFLINE_MINUTES` (default 15 min): heartbeat age from which a paired display is offline
    /// (agents.md 6.0, 6.3.1).
    pub offline_minutes: u64,
    /// `OPS_PERSISTENT_OFFLINE_MINUTES` (default 60 min, greater than `offline_minutes`):
    /// age from which offline is persistent: escalated, no command (agents.md 6.3.1).
    pub persistent_offline_minutes: u64,
    /// `OPS_RECONNECT_VERIFY_S` (default 60 s, 0..=3600): wait after a reload command before
    /// checking the reconnection (agents.md 6.3.3).
    pub reconnect_verify_s: u64,
    /// `OPS_FLEET_COMMANDS_PER_MINUTE` (default 10): fleet commands in any 60 s
    /// (agents.md 6.3.3).
    pub fleet_commands_per_minute: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_RUN` (default 20): fleet commands per run
    /// (agents.md 6.3.3).
    pub fleet_max_commands_per_run: usize,
    /// `OPS_FLEET_MAX_COMMANDS_PER_EPISODE` (default 2): reloads per offline episode
    /// (agents.md 6.3.3).
    pub fleet_max_commands_per_episode: u32,
    /// `OPS_FLEET_DISPLAY_COOLDOWN_MINUTES` (default 30 min): at most one reload per
    /// display per this period, across episodes (agents.md 6.3.3).
    pub fleet_display_cooldown_minutes: u64,
    /// `OPS_LOCATION_MIN_DISPLAYS` (default 3): enabled paired displays a location needs, all
    /// offline, for `location_offline` (agents.md 6.3.2).
    pub location_min_displays: usize,
    /// `OPS_FALLBACK_PLAYLIST_ID`: last-resort fallback playlist id; `None` when unset
    /// (agents.md 6.4.1).
    pub fallback_playlist_id: Option<String>,
    /// `OPS_OVERLAP_MAX_COMPARISONS` (default 50): overlap comparisons per schedule
    /// (agents.md 6.4.3).
    pub overlap_max_comparisons: usize,
}

/// ops-reporter and alerting settings (agents.md 8.6, 7.8).
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// `SLACK_WEBHOOK_URL` (http(s), a secret; only its host is ever printed); `None` → no Slack
    /// (agents.md 7.1, 7.2).
    pub slack_webhook_url: Option<String>,
    /// `SMTP_HOST`; `None` → no e-mail digest (agents.md 7.3).
    pub smtp_host: Option<String>,
    /// `SMTP_PORT` (default 587, 1..=65535) (agents.md 7.3).
    pub smtp_port: u16,
    /// `SMTP_SECURE` (default `auto`) (agents.md 7.3).
    pub smtp_secure: SmtpSecurity,
    /// `SMTP_USER`; SMTP authentication only when set (agents.md 7.3).
    pub smtp_user: Option<String>,
    /// `SMTP_PASS`, else legacy `SMTP_PASSWORD`; a secret (agents.md 7.3, 5.9).
    pub smtp_pass: Option<String>,
    /// `SMTP_FROM` (default `vizora-ops@vizora.cloud`): sender of the digest (agents.md 7.3).
    pub smtp_from: String,
    /// `OPS_ALERT_EMAIL`, else `SMTP_TO` (comma lists); empty → e-mail disabled with a WARNING.
    pub recipients: Vec<String>,
    /// `OPS_ALERT_DEDUP_MINUTES` (default 60 min): an alerted critical incident is alert-worthy again
    /// after this while the status is CRITICAL (agents.md 7.5).
    pub dedup_minutes: u64,
    /// `OPS_CRITICAL_REALERT_MINUTES` (default 60 min): interval of repeated CRITICAL
    /// status alerts (agents.md 7.5).
    pub critical_realert_minutes: u64,
    /// `OPS_NOTIFY_FIXES` (default true): Slack fix notifications on (agents.md 7.6).
    pub notify_fixes: bool,
    /// `OPS_DASHBOARD_MAX_BYTES` (default 90 000 bytes, 1 000..=100 000 000): the dashboard
    /// push payload is trimmed below it (agents.md 7.4).
    pub dashboard_max_bytes: usize,
    /// `OPS_SERVER_URL`: own ops server that also receives the dashboard push; `None` → not pushed
    /// (agents.md 7.4).
    pub ops_server_url: Option<String>,
    /// `OPS_API_TOKEN`: bearer token of that push, a secret; `None` with a URL set → push skipped
    /// with a WARNING (agents.md 7.4).
    pub ops_api_token: Option<String>,
    /// agent → SLA minutes (agents.md 6.5.2).
    pub sla_minutes: BTreeMap<AgentName, u64>,
    /// agent → dead-man heartbeat URL (7.8).
    pub heartbeat_urls: BTreeMap<AgentName, String>,
    /// Demo: print would-be messages instead of delivering them.
    pub capture_only: bool,
}

/// db-maintainer settings (agents.md 8.7, 8.8).
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `DATABASE_URL` (`postgres://` or `postgresql://`, a secret); `None` → `db-not-configured`
    /// (agents.md 6.6.1).
    pub database_url: Option<String>,
    /// `REDIS_URL` (default `redis://localhost:6379`; `redis` or `rediss`), a secret (agents.md 6.6.4).
    pub redis_url: String,
    /// `OPS_VACUUM_TABLES`: physical tables to VACUUM (ANALYZE), plain SQL identifiers; default the
    /// seven of agents.md 6.6.2.
    pub vacuum_tables: Vec<String>,
    /// `OPS_REINDEX_INDEXES`: indexes to REINDEX CONCURRENTLY, plain SQL identifiers; default the
    /// twelve of agents.md 6.6.3.
    pub reindex_indexes: Vec<String>,
    /// `OPS_REINDEX_TABLES` (default empty): tables to REINDEX CONCURRENTLY (agents.md 6.6.3).
    pub reindex_tables: Vec<String>,
    /// `OPS_DB_LOCK_TIMEOUT_S` (default 30 s): `lock_timeout` set before every VACUUM and REINDEX
    /// (agents.md 6.6.1).
    pub lock_timeout_s: u64,
    /// `OPS_DB_STATEMENT_TIMEOUT_S` (default 1 800 s): the session's `statement_timeout`
    /// (agents.md 6.6.1).
    pub statement_timeout_s: u64,
    /// `OPS_REDIS_SCAN_MAX_KEYS` (default 100 000): keys after which the SCAN pass stops
    /// (agents.md 6.6.4).
    pub redis_scan_max_keys: u64,
    /// `OPS_REDIS_MEMORY_WARN_PCT` (default 85, percent 0–100): `used_memory` above this share
    /// of `maxmemory` is `redis-memory-high` (agents.md 6.6.4).
    pub redis_memory_warn_pct: f64,
    /// `OPS_PM2_LOG_DIR` (default the log dir): directory whose `*.log` files are rotated
    /// (agents.md 6.6.5).
    pub pm2_log_dir: PathBuf,
    /// `OPS_LOG_ROTATE_DAYS` (default 7 days): a log is due when its newest archive is older
    /// (agents.md 6.6.5).
    pub log_rotate_days: u64,
    /// `OPS_LOG_TAIL_BYTES` (default 1 048 576 bytes): logs at or below it never rotate; the tail kept
    /// after a rotation (agents.md 6.6.5).
    pub log_tail_bytes: u64,
    /// `OPS_LOG_MAX_BYTES` (default 52 428 800 bytes): a log above it rotates whatever its age
    /// (agents.md 6.6.5).
    pub log_max_bytes: u64,
    /// `OPS_AUDIT_MAX_BYTES` (default 52 428 800 bytes): the audit log above it is archived
    /// (agents.md 4.8, 6.6.5).
    pub audit_max_bytes: u64,
    /// Raw backup locations (validated by db-maintainer, where a malformed one is an incident, not a config error).
    pub backup_locations: Vec<String>,
    /// `OPS_BACKUP_S3_ENDPOINT` (http(s)); `None` → the AWS default endpoint (agents.md 6.6.7).
    pub backup_s3_endpoint: Option<String>,
    /// `OPS_BACKUP_MAX_AGE_HOURS` (default 24 h): a newest backup older than this is
    /// `backup-stale` (agents.md 6.6.7).
    pub backup_max_age_hours: u64,
    /// `OPS_BACKUP_PATTERN`: optional glob that backup file names must match; `None` → every file
    /// (agents.md 6.6.7).
    pub backup_pattern: Option<String>,
    /// `AWS_ACCESS_KEY_ID`: access key for listing S3 backups (agents.md 6.6.7).
    pub aws_access_key: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`: its secret key, a secret (agents.md 6.6.7, 5.9).
    pub aws_secret_key: Option<String>,
    /// `AWS_REGION` (default `us-east-1`): region of the backup listing (agents.md 6.6.7).
    pub aws_region: String,
    /// `OPS_S3_ENDPOINT`, else `http(s)://<MINIO_ENDPOINT>:<MINIO_PORT>` (`MINIO_USE_SSL`); `None` → S3
    /// features off: bucket usage and `minio://` thumbnails (agents.md 8.8).
    pub s3_endpoint: Option<String>,
    /// `OPS_S3_ACCESS_KEY`, else `MINIO_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID` (agents.md 8.8).
    pub s3_access_key: Option<String>,
    /// `OPS_S3_SECRET_KEY`, else `MINIO_SECRET_KEY`, else `AWS_SECRET_ACCESS_KEY`; a secret
    /// (agents.md 8.8).
    pub s3_secret_key: Option<String>,
    /// `OPS_S3_REGION` (default `us-east-1`) (agents.md 8.8).
    pub s3_region: String,
    /// `OPS_S3_BUCKETS` (comma list); `None` when unset or empty → every bucket `ListBuckets` returns
    /// (agents.md 6.6.6).
    pub s3_buckets: Option<Vec<String>>,
    /// `OPS_S3_WARN_BYTES` (bytes): a bucket above it is `bucket-size-high`; `None` → no size verdict
    /// (agents.md 6.6.6).
    pub s3_warn_bytes: Option<u64>,
}

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// `OPS_ROOT_DIR`, else the default root (the working directory for [`Config::load`]): base of the
    /// defaults and of `.env` (agents.md 8.1).
    pub root_dir: PathBuf,
    /// `OPS_LOG_DIR` (default `<root>/logs`): default home of the state file and of the logs to rotate
    /// (agents.md 8.2).
    pub log_dir: PathBuf,
    /// `OPS_STATE_FILE` (default `<log dir>/ops-state.json`), which must name a file; its directory is
    /// the state dir (agents.md 4.1).
    pub state_file: PathBuf,
    /// `OPS_AUDIT_FILE` (default `<state dir>/ops-audit.jsonl`), which must name a file (agents.md 4.8).
    pub audit_file: PathBuf,
    /// `OPS_LOCK_TIMEOUT_MS` (default 5 000 ms, 1..=600 000): deadline for the state lock and the
    /// outbox and cache locks (agents.md 4.2).
    pub lock_timeout_ms: u64,
    /// `OPS_MAX_INCIDENTS` (default 200): incident cap of the state file (agents.md 4.7).
    pub max_incidents: usize,
    /// `OPS_MAX_REMEDIATIONS` (default 100): cap of `recentRemediations` (agents.md 4.7).
    pub max_remediations: usize,
    /// `OPS_RESOLVED_RETENTION_HOURS` (default 24 h): resolved incidents older than this
    /// (by `resolvedAt`) are pruned (agents.md 4.7).
    pub resolved_retention_hours: u64,
    /// `OPS_DRY_RUN` (default false); `--dry-run` turns dry run on as well (agents.md 1.5).
    pub dry_run: bool,
    /// `OPS_LOG_FORMAT`: `text` (default, the agents.md 1.5 line) or `json` (one object per line); anything else is
    /// a configuration error (agents.md 8.2).
    pub log_format: crate::logging::LogFormat,
    /// `OPS_AGENTS` (comma list; unset or empty → all six): the enabled agents; an unknown name is a
    /// configuration error (agents.md 8.2).
    pub agents: Vec<AgentName>,
    /// agent → run deadline in seconds (agents.md 1.2).
    pub deadlines_s: BTreeMap<AgentName, u64>,
    /// `OPS_WINDOW_TOLERANCE_S` (default 120 s, 0..=86 400): early margin of every
    /// "at least N since" window (agents.md 1.1).
    pub window_tolerance_s: i64,
    /// API client settings (agents.md 8.3).
    pub api: ApiConfig,
    /// health-guardian settings (agents.md 8.4).
    pub health: HealthConfig,
    /// content-lifecycle, fleet-manager and schedule-doctor settings (agents.md 8.5).
    pub entity: EntityConfig,
    /// ops-reporter and alerting settings (agents.md 8.6).
    pub alert: AlertConfig,
    /// db-maintainer and S3 settings (agents.md 8.7, 8.8).
    pub db: DbConfig,
    /// The built-in demo (`OPS_DEMO`, set only by `vizora-ops demo`): no real database, Redis or bucket is contacted.
    pub demo: bool,
    /// The source the configuration was built from (for `config check`).
    pub source: Source,
}

const SECRET_SUFFIXES: [&str; 3] = ["_PASSWORD", "_PASS", "_TOKEN"];

/// Whether a variable name is a secret setting (agents.md 5.9).
pub fn is_secret_var(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    SECRET_SUFFIXES.iter().any(|s| n.ends_with(s))
        || n.contains("SECRET")
        || n.ends_with("_KEY")
        || n == "DATABASE_URL"
        || n == "SLACK_WEBHOOK_URL"
        || n.starts_with("OPS_HEARTBEAT_URL_")
        || n == "HEALTHCHECKS_HEALTH_GUARDIAN_URL"
        || n.ends_with("REDIS_URL")
}

fn is_loopback_url(u: &str) -> bool {
    url::Url::parse(u)
        .ok()
        .and_then(|p| p.host_str().map(|h| h.to_string()))
        .map(|h| {
            let h = h.trim_start_matches('[').trim_end_matches(']').to_string();
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false)
        })
        .unwrap_or(false)
}

fn origin_of(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) => p.origin().ascii_serialization(),
        Err(_) => u.to_string(),
    }
}

/// The result of `vizora-ops config check` ([`Config::check`]).
#[derive(Debug)]
pub struct ConfigCheck {
    /// The configuration, defaults standing in for invalid values: only for describing it when `errors` is non-empty.
    pub config: Config,
    /// Every configuration error found (empty → valid), each naming the variable or file, never a secret.
    pub errors: Vec<String>,
}

/// Reads a configuration file as UTF-8 text (agents.md 8.1). `Ok(None)` when it does not exist and `optional`.
/// Anything else that keeps its values from being read in full (not a regular file, unreadable, not valid UTF-8) is an
/// error naming the file and, for bad bytes, the byte offset of the first invalid byte: silently dropping a file
/// could lose `OPS_DRY_RUN=yes` and let a planned dry run change production.
fn read_config_text(path: &Path, what: &str, optional: bool) -> Result<Option<String>, String> {
    let shown = path.display();
    // Checked before reading: a FIFO or device in place of the file would block the read (never hang, agents.md 1.6).
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => return Ok(None),
        Err(e) => return Err(format!("{what} {shown}: cannot read it ({e})")),
        Ok(m) if !m.is_file() => {
            return Err(format!("{what} {shown}: not a regular file"));
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {shown}: cannot read it ({e})"))?;
    match String::from_utf8(bytes) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            let off = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..off].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(format!(
                "{what} {shown}: not valid UTF-8: invalid byte at offset {off} (line {line}); none of its values \
                 were used; save the file as UTF-8"
            ))
        }
    }
}

/// The process environment, `<root>/.env` and the TOML file as one source, with the root directory and the errors
/// met reading them (agents.md 8.1).
fn gather(config_file: Option<&Path>) -> (Source, PathBuf, Vec<String>) {
    let mut errors = Vec::new();
    // `std::env::vars` panics on a non-UTF-8 variable: take them raw, and fail only on one this program reads.
    let mut env: HashMap<String, String> = HashMap::new();
    for (k, v) in std::env::vars_os() {
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => {
                env.insert(k, v);
            }
            (Ok(k), Err(_))
                if OWN_PREFIXES.iter().any(|p| k.starts_with(p)) || is_secret_var(&k) =>
            {
                errors.push(format!("{k} (environment): not valid UTF-8"));
            }
            _ => {}
        }
    }
    let root = env
        .get("OPS_ROOT_DIR")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")));
    let dotenv = match read_config_text(&root.join(".env"), ".env file", true) {
        Ok(Some(t)) => parse_dotenv(&t),
        Ok(None) => HashMap::new(),
        Err(e) => {
            errors.push(e);
            HashMap::new()
        }
    };
    let file_path = config_file.map(PathBuf::from).or_else(|| {
        env.get("OPS_CONFIG_FILE")
            .or_else(|| dotenv.get("OPS_CONFIG_FILE"))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    });
    let file = match file_path {
        Some(p) => parse_toml_file(&p).unwrap_or_else(|e| {
            errors.extend(e.0);
            HashMap::new()
        }),
        None => HashMap::new(),
    };
    let src = Source::layered(env, dotenv, file);
    src.raw("OPS_CONFIG_FILE"); // read above, before the source existed
    (src, root, errors)
}

impl Config {
    /// Loads from the process environment, `<root>/.env` and the optional TOML file (`config_file` wins over
    /// `OPS_CONFIG_FILE`). Registers every secret value for redaction.
    ///
    /// # Errors
    /// Every problem found, in one [`ConfigError`]: an unreadable or non-UTF-8 `.env` or TOML file (naming the file and
    /// the byte offset of the first invalid byte; the file's values are then not used at all), and every invalid
    /// variable (agents.md 8.1).
    pub fn load(config_file: Option<&Path>) -> Result<Config, ConfigError> {
        let (src, root, mut errors) = gather(config_file);
        let (cfg, build_errors) = Config::build(src, &root);
        errors.extend(build_errors);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(errors))
        }
    }

    /// What `vizora-ops config check` reports: [`Config::load`]'s errors plus the problems a run would only meet later
    /// ([`Config::run_time_problems`]), all in one pass. The returned configuration stands in defaults for invalid
    /// values: it is for describing the configuration only and must never run an agent when `errors` is non-empty.
    pub fn check(config_file: Option<&Path>) -> ConfigCheck {
        let (src, root, mut errors) = gather(config_file);
        let (config, build_errors) = Config::build(src, &root);
        errors.extend(build_errors);
        errors.extend(
            config
                .run_time_problems()
                .into_iter()
                .map(|(var, why)| format!("{var}: {why}")),
        );
        ConfigCheck { config, errors }
    }

    /// Builds and validates a configuration from a source; `default_root` is used when `OPS_ROOT_DIR` is unset.
    ///
    /// # Errors
    /// Every invalid variable, each message naming it (agents.md 8.1).
    pub fn from_source(src: Source, default_root: &Path) -> Result<Config, ConfigError> {
        let (cfg, errors) = Config::build(src, default_root);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(errors))
        }
    }

    /// Builds the configuration and collects every validation error instead of stopping at the first (agents.md 8.1):
    /// an invalid value is replaced by its default so that the checks after it still run; with errors, the
    /// configuration is only good for describing.
    fn build(src: Source, default_root: &Path) -> (Config, Vec<String>) {
        src.take_errors();
        let root = src
            .get("OPS_ROOT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_root.to_path_buf());
        let log_dir = src
            .get("OPS_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("logs"));
        let state_file = src
            .get("OPS_STATE_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| log_dir.join("ops-state.json"));
        let state_dir = state_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let audit_file = src
            .get("OPS_AUDIT_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| state_dir.join("ops-audit.jsonl"));
        // A directory here would only fail at the state write, after the run's mutations (agents.md 1.3: invalid
        // configuration stops before any I/O).
        for key in ["OPS_STATE_FILE", "OPS_AUDIT_FILE"] {
            if let Some(v) = src.get(key) {
                let p = Path::new(&v);
                if v.ends_with('/')
                    || p.file_name().is_none()
                    || p.file_name().is_some_and(|n| n == "." || n == "..")
                {
                    src.fail(format!(
                        "{key}: must name a file, not a directory (got {v:?})"
                    ));
                }
            }
        }
        match src.get("OPS_STATE_BACKEND").as_deref() {
            None | Some("file") => {}
            Some("redis") => src.fail(
                "OPS_STATE_BACKEND: the redis state backend is not available in this version; use file",
            ),
            Some(o) => src.fail(format!(
                "OPS_STATE_BACKEND: expected file or redis, got {o:?}"
            )),
        }

        let agents = match src.list("OPS_AGENTS") {
            None => AgentName::ALL.to_vec(),
            Some(l) if l.is_empty() => AgentName::ALL.to_vec(),
            Some(l) => l
                .iter()
                .filter_map(|a| {
                    AgentName::parse(a)
                        .map_err(|e| src.fail(format!("OPS_AGENTS: {e}")))
                        .ok()
                })
                .collect(),
        };
        let global_deadline = src
            .get("OPS_RUN_DEADLINE_S")
            .map(|_| ())
            .map(|_| src.u64("OPS_RUN_DEADLINE_S", 0, 1, 86_400));
        let mut deadlines_s = BTreeMap::new();
        for a in AgentName::ALL {
            let k = format!("OPS_RUN_DEADLINE_S_{}", a.env_suffix());
            let d = match src.get(&k) {
                Some(_) => src.u64(&k, 0, 1, 86_400),
                None => global_deadline.unwrap_or(a.default_deadline_s()),
            };
            deadlines_s.insert(a, d);
        }
        for a in AgentName::ALL {
            let k = format!("OPS_SCHEDULE_{}", a.env_suffix());
            if let Some(c) = src.get(&k)
                && c.split_whitespace().count() != 5
            {
                src.fail(format!(
                    "{k}: expected a 5-field cron expression, got {c:?}"
                ));
            }
        }

        // API
        let base_url = src
            .url(
                "VALIDATOR_BASE_URL",
                Some("http://localhost:3000"),
                &["http", "https"],
            )
            .map(|u| origin_of(&u))
            .unwrap_or_default();
        let email = src.get("OPS_EMAIL").or_else(|| src.get("VALIDATOR_EMAIL"));
        let password = src
            .get("OPS_PASSWORD")
            .or_else(|| src.get("VALIDATOR_PASSWORD"));
        let rate_backend = match src.get("OPS_RATE_LIMIT_BACKEND").as_deref() {
            None | Some("auto") => {
                if src.get("OPS_RATE_LIMIT_REDIS_URL").is_some() {
                    RateLimitBackend::Redis
                } else {
                    RateLimitBackend::File
                }
            }
            Some("memory") => RateLimitBackend::Memory,
            Some("file") => RateLimitBackend::File,
            Some("redis") => RateLimitBackend::Redis,
            Some(o) => {
                src.fail(format!(
                    "OPS_RATE_LIMIT_BACKEND: expected auto, memory, file or redis, got {o:?}"
                ));
                RateLimitBackend::File
            }
        };
        if rate_backend == RateLimitBackend::Redis {
            src.fail(
                "OPS_RATE_LIMIT_BACKEND: the redis rate budget is not available in this version; use file or memory",
            );
        }
        let api = ApiConfig {
            base_url,
            email,
            password,
            connect_timeout: Duration::from_millis(src.u64(
                "OPS_HTTP_CONNECT_TIMEOUT_MS",
                5000,
                1,
                600_000,
            )),
            request_timeout: Duration::from_millis(src.u64(
                "OPS_HTTP_TIMEOUT_MS",
                30_000,
                1,
                600_000,
            )),
            probe_timeout: Duration::from_millis(src.u64("OPS_PROBE_TIMEOUT_MS", 5000, 1, 600_000)),
            notify_timeout: Duration::from_millis(src.u64(
                "OPS_NOTIFY_TIMEOUT_MS",
                10_000,
                1,
                600_000,
            )),
            retries: src.u64("OPS_HTTP_RETRIES", 3, 0, 10) as u32,
            max_list_items: src.u64("OPS_MAX_LIST_ITEMS", 100_000, 1, 100_000_000) as usize,
            rate_per_second: src.u64("OPS_RATE_PER_SECOND", 10, 1, 1_000_000) as u32,
            rate_per_minute: src.u64("OPS_RATE_PER_MINUTE", 100, 1, 100_000_000) as u32,
            rate_per_hour: src.u64("OPS_RATE_PER_HOUR", 1000, 1, 1_000_000_000) as u32,
            logins_per_minute: src.u64("OPS_LOGINS_PER_MINUTE", 5, 1, 1_000_000) as u32,
            rate_backend,
            rate_redis_url: src.url("OPS_RATE_LIMIT_REDIS_URL", None, &["redis", "rediss"]),
        };

        // health-guardian
        let process_manager = match src.get("OPS_PROCESS_MANAGER").as_deref() {
            None | Some("pm2") => ProcessManagerKind::Pm2,
            Some("systemd") => ProcessManagerKind::Systemd,
            Some("sandbox") => ProcessManagerKind::Sandbox,
            Some(o) => {
                src.fail(format!(
                    "OPS_PROCESS_MANAGER: expected pm2, systemd or sandbox, got {o:?}"
                ));
                ProcessManagerKind::Pm2
            }
        };
        let mut pm2_apps = BTreeMap::new();
        let mut systemd_units = BTreeMap::new();
        for (svc, app, unit) in [
            (
                "middleware",
                "vizora-middleware",
                "vizora-middleware.service",
            ),
            ("realtime", "vizora-realtime", "vizora-realtime.service"),
            ("web", "vizora-web", "vizora-web.service"),
        ] {
            let up = svc.to_ascii_uppercase();
            let key = format!("OPS_PM2_APP_{up}");
            let name = src.get(&key).unwrap_or(app.into());
            // pm2 reads `all` as every process: a restart of this one service would restart every app on the host,
            // the ops agents included, and nothing at run time stops it (agents.md 6.1.3, 8.4).
            if name.eq_ignore_ascii_case("all") {
                src.fail(format!("{key}: {PM2_ALL_REASON}"));
            }
            pm2_apps.insert(svc.to_string(), name);
            systemd_units.insert(
                svc.to_string(),
                src.get(&format!("OPS_SYSTEMD_UNIT_{up}"))
                    .unwrap_or(unit.into()),
            );
        }
        let probe = |key: &str, default: &str| -> String {
            let u = src
                .url(key, Some(default), &["http", "https"])
                .unwrap_or_default();
            if !is_loopback_url(&u) {
                src.fail(format!(
                    "{key}: probes are loopback only (got a non-loopback host)"
                ));
                return default.to_string();
            }
            u
        };
        let middleware_probe_url = probe(
            "OPS_MIDDLEWARE_PROBE_URL",
            "http://127.0.0.1:3000/api/v1/health/ready",
        );
        let realtime_probe_url = probe(
            "OPS_REALTIME_PROBE_URL",
            "http://127.0.0.1:3002/api/health/ready",
        );
        let web_probe_url = probe("OPS_WEB_PROBE_URL", "http://127.0.0.1:3001/");
        let (edge_url, edge_off_reason) = match src.get("WEB_URL") {
            None => (None, Some("WEB_URL is unset".to_string())),
            Some(w) => match url::Url::parse(&w) {
                Ok(p)
                    if (p.scheme() == "http" || p.scheme() == "https") && !is_loopback_url(&w) =>
                {
                    (Some(w), None)
                }
                Ok(_) => (None, Some("WEB_URL is loopback or not http(s)".to_string())),
                Err(_) => {
                    src.fail("WEB_URL: not a valid URL");
                    (None, Some("WEB_URL is not a valid URL".to_string()))
                }
            },
        };
        let health = HealthConfig {
            process_manager,
            pm2_bin: src.get("OPS_PM2_BIN").unwrap_or_else(|| "pm2".into()),
            systemctl_bin: src
                .get("OPS_SYSTEMCTL_BIN")
                .unwrap_or_else(|| "systemctl".into()),
            pm2_timeout: Duration::from_secs(src.u64("OPS_PM2_TIMEOUT_S", 30, 1, 3600)),
            pm2_jlist_timeout: Duration::from_secs(src.u64("OPS_PM2_JLIST_TIMEOUT_S", 15, 1, 3600)),
            pm2_apps,
            systemd_units,
            middleware_probe_url,
            realtime_probe_url,
            web_probe_url,
            probe_confirm_s: src.u64("OPS_PROBE_CONFIRM_S", 5, 0, 600),
            ecosystem_file: src
                .get("OPS_ECOSYSTEM_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("ecosystem.config.js")),
            node_bin: src.get("OPS_NODE_BIN").unwrap_or_else(|| "node".into()),
            memory_threshold_pct: src.f64("OPS_MEMORY_THRESHOLD_PCT", 85.0, 0.0, 100.0),
            host_memory_threshold_pct: src.f64("OPS_HOST_MEMORY_THRESHOLD_PCT", 85.0, 0.0, 100.0),
            restart_cooldown_s: src.u64("OPS_RESTART_COOLDOWN_S", 30, 0, 3600),
            restart_backoff_base_s: src.u64("OPS_RESTART_BACKOFF_BASE_S", 30, 0, 86_400),
            restart_backoff_cap_s: src.u64("OPS_RESTART_BACKOFF_CAP_S", 600, 0, 86_400),
            restart_max_attempts: src.u64("OPS_RESTART_MAX_ATTEMPTS", 2, 1, 100) as u32,
            backoff_reset_minutes: src.u64("OPS_BACKOFF_RESET_MINUTES", 30, 0, 100_000),
            edge_url,
            edge_off_reason,
            sandbox_control_url: src.url("OPS_SANDBOX_CONTROL_URL", None, &["http"]),
        };

        let storage_warn_pct = src.f64("OPS_STORAGE_WARN_PCT", 80.0, 0.0, 100.0);
        let storage_critical_pct = src.f64("OPS_STORAGE_CRITICAL_PCT", 90.0, 0.0, 100.0);
        if storage_critical_pct < storage_warn_pct {
            src.fail("OPS_STORAGE_CRITICAL_PCT: must not be below OPS_STORAGE_WARN_PCT");
        }
        let offline_minutes = src.u64("OPS_OFFLINE_MINUTES", 15, 1, 100_000);
        let persistent_offline_minutes = src.u64("OPS_PERSISTENT_OFFLINE_MINUTES", 60, 1, 100_000);
        if persistent_offline_minutes <= offline_minutes {
            src.fail("OPS_PERSISTENT_OFFLINE_MINUTES: must be greater than OPS_OFFLINE_MINUTES");
        }
        let entity = EntityConfig {
            // 0 days would make content created a moment ago an orphan candidate, archived before any playlist could
            // reference it (agents.md 6.2.4, 8.5: at least 1 day).
            orphan_min_age_days: src.u64("OPS_ORPHAN_MIN_AGE_DAYS", 30, 1, 36_500),
            max_archives_per_run: src.u64("OPS_MAX_ARCHIVES_PER_RUN", 100, 0, 1_000_000) as usize,
            storage_warn_pct,
            storage_critical_pct,
            storage_max_archives_per_run: src.u64(
                "OPS_STORAGE_MAX_ARCHIVES_PER_RUN",
                100,
                0,
                1_000_000,
            ) as usize,
            storage_archive_min_age_days: src.u64("OPS_STORAGE_ARCHIVE_MIN_AGE_DAYS", 7, 0, 36_500),
            content_detail_reads_per_run: src.u64(
                "OPS_CONTENT_DETAIL_READS_PER_RUN",
                100,
                0,
                100_000_000,
            ) as usize,
            thumbnail_probes_per_run: src.u64("OPS_THUMBNAIL_PROBES_PER_RUN", 100, 0, 100_000_000)
                as usize,
            thumbnail_recheck_hours: src.u64("OPS_THUMBNAIL_RECHECK_HOURS", 24, 0, 100_000),
            max_file_size_bytes: src.u64("OPS_MAX_FILE_SIZE_MB", 100, 1, 10_000_000) * 1_048_576,
            minio_bucket: src
                .get("MINIO_BUCKET")
                .unwrap_or_else(|| "vizora-assets".into()),
            offline_minutes,
            persistent_offline_minutes,
            reconnect_verify_s: src.u64("OPS_RECONNECT_VERIFY_S", 60, 0, 3600),
            fleet_commands_per_minute: src.u64("OPS_FLEET_COMMANDS_PER_MINUTE", 10, 1, 10_000)
                as usize,
            fleet_max_commands_per_run: src.u64("OPS_FLEET_MAX_COMMANDS_PER_RUN", 20, 0, 100_000)
                as usize,
            fleet_max_commands_per_episode: src.u64(
                "OPS_FLEET_MAX_COMMANDS_PER_EPISODE",
                2,
                0,
                1000,
            ) as u32,
            fleet_display_cooldown_minutes: src.u64(
                "OPS_FLEET_DISPLAY_COOLDOWN_MINUTES",
                30,
                0,
                100_000,
            ),
            location_min_displays: src.u64("OPS_LOCATION_MIN_DISPLAYS", 3, 1, 100_000) as usize,
            fallback_playlist_id: src.get("OPS_FALLBACK_PLAYLIST_ID"),
            overlap_max_comparisons: src.u64("OPS_OVERLAP_MAX_COMPARISONS", 50, 1, 1_000_000)
                as usize,
        };

        // alerting
        let smtp_secure = match src
            .get("SMTP_SECURE")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("auto") => SmtpSecurity::Auto,
            Some("tls") | Some("true") => SmtpSecurity::Tls,
            Some("starttls") => SmtpSecurity::StartTls,
            Some("none") | Some("false") => SmtpSecurity::None,
            Some(o) => {
                src.fail(format!(
                    "SMTP_SECURE: expected auto, tls, starttls or none, got {o:?}"
                ));
                SmtpSecurity::Auto
            }
        };
        let recipients = src
            .list("OPS_ALERT_EMAIL")
            .filter(|l| !l.is_empty())
            .or_else(|| src.list("SMTP_TO"))
            .unwrap_or_default();
        for r in &recipients {
            if !r.contains('@') || r.contains(char::is_whitespace) {
                src.fail(format!(
                    "OPS_ALERT_EMAIL/SMTP_TO: {r:?} is not an e-mail address"
                ));
            }
        }
        let legacy_sla = src
            .get("OPS_WATCHDOG_SLA_MINUTES")
            .map(|_| src.u64("OPS_WATCHDOG_SLA_MINUTES", 0, 1, 1_000_000));
        let mut sla_minutes = BTreeMap::new();
        let mut heartbeat_urls = BTreeMap::new();
        for a in AgentName::ALL {
            let default = match a {
                AgentName::DbMaintainer => 1560,
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
        let alert = AlertConfig {
            slack_webhook_url: src.url("SLACK_WEBHOOK_URL", None, &["http", "https"]),
            smtp_host: src.get("SMTP_HOST"),
            smtp_port: src.u64("SMTP_PORT", 587, 1, 65_535) as u16,
            smtp_secure,
            smtp_user: src.get("SMTP_USER"),
            smtp_pass: src.get("SMTP_PASS").or_else(|| src.get("SMTP_PASSWORD")),
            smtp_from: src
                .get("SMTP_FROM")
                .unwrap_or_else(|| "vizora-ops@vizora.cloud".into()),
            recipients,
            dedup_minutes: src.u64("OPS_ALERT_DEDUP_MINUTES", 60, 0, 1_000_000),
            critical_realert_minutes: src.u64("OPS_CRITICAL_REALERT_MINUTES", 60, 0, 1_000_000),
            notify_fixes: src.bool("OPS_NOTIFY_FIXES", true),
            dashboard_max_bytes: src.u64("OPS_DASHBOARD_MAX_BYTES", 90_000, 1_000, 100_000_000)
                as usize,
            ops_server_url: src.url("OPS_SERVER_URL", None, &["http", "https"]),
            ops_api_token: src.get("OPS_API_TOKEN"),
            sla_minutes,
            heartbeat_urls,
            capture_only: src.bool("OPS_ALERT_CAPTURE_ONLY", false),
        };

        // db-maintainer
        let ident = regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("regex");
        let ident_list = |key: &str, default: &[&str]| -> Vec<String> {
            let l = src
                .list(key)
                .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect());
            for i in &l {
                if !ident.is_match(i) {
                    src.fail(format!("{key}: {i:?} is not a plain SQL identifier"));
                }
            }
            l
        };
        let vacuum_tables = ident_list(
            "OPS_VACUUM_TABLES",
            &[
                "Content",
                "devices",
                "Schedule",
                "Playlist",
                "AuditLog",
                "users",
                "content_impressions",
            ],
        );
        let reindex_indexes = ident_list(
            "OPS_REINDEX_INDEXES",
            &[
                "devices_organizationId_idx",
                "devices_status_idx",
                "devices_lastHeartbeat_idx",
                "devices_organizationId_status_createdAt_idx",
                "Content_organizationId_status_createdAt_idx",
                "Content_status_idx",
                "Content_expiresAt_idx",
                "Schedule_organizationId_isActive_priority_createdAt_idx",
                "Schedule_displayId_startDate_endDate_idx",
                "PlaylistItem_playlistId_idx",
                "PlaylistItem_contentId_idx",
                "AuditLog_createdAt_idx",
            ],
        );
        let reindex_tables = ident_list("OPS_REINDEX_TABLES", &[]);
        let database_url = src.get("DATABASE_URL");
        if let Some(d) = &database_url
            && !(d.starts_with("postgres://") || d.starts_with("postgresql://"))
        {
            src.fail("DATABASE_URL: expected a postgres:// or postgresql:// URL");
        }
        let backup_locations = match src.list("OPS_BACKUP_LOCATIONS") {
            Some(l) => l,
            None => {
                let mut l = Vec::new();
                if let Some(d) = src.get("BACKUP_DIR") {
                    l.push(d);
                }
                if let Some(b) = src.get("BACKUP_S3_BUCKET") {
                    l.push(if b.starts_with("s3://") {
                        b
                    } else {
                        format!("s3://{b}")
                    });
                }
                l
            }
        };
        let s3_endpoint = match src.get("OPS_S3_ENDPOINT") {
            Some(e) => src.url("OPS_S3_ENDPOINT", Some(&e), &["http", "https"]),
            None => match src.get("MINIO_ENDPOINT") {
                Some(h) => {
                    let ssl = src.bool("MINIO_USE_SSL", false);
                    let port = src.u64("MINIO_PORT", 9000, 1, 65_535);
                    let host = h
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .to_string();
                    Some(format!(
                        "{}://{}:{}",
                        if ssl { "https" } else { "http" },
                        host,
                        port
                    ))
                }
                None => None,
            },
        };
        let db = DbConfig {
            database_url,
            redis_url: src
                .url(
                    "REDIS_URL",
                    Some("redis://localhost:6379"),
                    &["redis", "rediss"],
                )
                .unwrap_or_default(),
            vacuum_tables,
            reindex_indexes,
            reindex_tables,
            lock_timeout_s: src.u64("OPS_DB_LOCK_TIMEOUT_S", 30, 1, 86_400),
            statement_timeout_s: src.u64("OPS_DB_STATEMENT_TIMEOUT_S", 1800, 1, 86_400),
            redis_scan_max_keys: src.u64("OPS_REDIS_SCAN_MAX_KEYS", 100_000, 0, 1_000_000_000),
            redis_memory_warn_pct: src.f64("OPS_REDIS_MEMORY_WARN_PCT", 85.0, 0.0, 100.0),
            pm2_log_dir: src
                .get("OPS_PM2_LOG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| log_dir.clone()),
            log_rotate_days: src.u64("OPS_LOG_ROTATE_DAYS", 7, 0, 36_500),
            log_tail_bytes: src.u64("OPS_LOG_TAIL_BYTES", 1_048_576, 1, u64::MAX / 2),
            log_max_bytes: src.u64("OPS_LOG_MAX_BYTES", 52_428_800, 1, u64::MAX / 2),
            audit_max_bytes: src.u64("OPS_AUDIT_MAX_BYTES", 52_428_800, 1, u64::MAX / 2),
            backup_locations,
            backup_s3_endpoint: src.url("OPS_BACKUP_S3_ENDPOINT", None, &["http", "https"]),
            backup_max_age_hours: src.u64("OPS_BACKUP_MAX_AGE_HOURS", 24, 1, 1_000_000),
            backup_pattern: src.get("OPS_BACKUP_PATTERN"),
            aws_access_key: src.get("AWS_ACCESS_KEY_ID"),
            aws_secret_key: src.get("AWS_SECRET_ACCESS_KEY"),
            aws_region: src.get("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            s3_access_key: src
                .get("OPS_S3_ACCESS_KEY")
                .or_else(|| src.get("MINIO_ACCESS_KEY"))
                .or_else(|| src.get("AWS_ACCESS_KEY_ID")),
            s3_secret_key: src
                .get("OPS_S3_SECRET_KEY")
                .or_else(|| src.get("MINIO_SECRET_KEY"))
                .or_else(|| src.get("AWS_SECRET_ACCESS_KEY")),
            s3_endpoint,
            s3_region: src
                .get("OPS_S3_REGION")
                .unwrap_or_else(|| "us-east-1".into()),
            s3_buckets: src.list("OPS_S3_BUCKETS").filter(|l| !l.is_empty()),
            s3_warn_bytes: src
                .get("OPS_S3_WARN_BYTES")
                .map(|_| src.u64("OPS_S3_WARN_BYTES", 0, 0, u64::MAX / 2)),
        };

        let cfg = Config {
            root_dir: root,
            log_dir,
            state_file,
            audit_file,
            lock_timeout_ms: src.u64("OPS_LOCK_TIMEOUT_MS", 5000, 1, 600_000),
            max_incidents: src.u64("OPS_MAX_INCIDENTS", 200, 1, 1_000_000) as usize,
            max_remediations: src.u64("OPS_MAX_REMEDIATIONS", 100, 1, 1_000_000) as usize,
            resolved_retention_hours: src.u64("OPS_RESOLVED_RETENTION_HOURS", 24, 0, 1_000_000),
            dry_run: src.bool("OPS_DRY_RUN", false),
            log_format: src
                .get("OPS_LOG_FORMAT")
                .map_or_else(Default::default, |v| {
                    crate::logging::LogFormat::parse(&v).unwrap_or_else(|e| {
                        src.fail(format!("OPS_LOG_FORMAT: {e}"));
                        Default::default()
                    })
                }),
            agents,
            deadlines_s,
            window_tolerance_s: src.u64("OPS_WINDOW_TOLERANCE_S", 120, 0, 86_400) as i64,
            api,
            health,
            entity,
            alert,
            db,
            demo: src.bool("OPS_DEMO", false),
            source: src,
        };
        cfg.register_secrets();
        let errors = cfg.source.take_errors();
        (cfg, errors)
    }

    /// Registers every secret value with the redactor (agents.md 5.9).
    pub fn register_secrets(&self) {
        for k in self.source.keys() {
            if is_secret_var(k)
                && let Some(v) = self.source.peek(k).map(str::trim).filter(|v| !v.is_empty())
            {
                crate::redact::register_secret(v);
            }
        }
        if let Some(p) = &self.api.password {
            crate::redact::register_secret(p);
        }
        if let Some(p) = &self.alert.smtp_pass {
            crate::redact::register_secret(p);
        }
    }

    /// The state directory (the state file's directory).
    pub fn state_dir(&self) -> PathBuf {
        self.state_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The run deadline of an agent (agents.md 1.2).
    pub fn deadline(&self, agent: AgentName) -> Duration {
        Duration::from_secs(
            *self
                .deadlines_s
                .get(&agent)
                .unwrap_or(&agent.default_deadline_s()),
        )
    }

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

/// `pm2 restart all` restarts every process: why `OPS_PM2_APP_*=all` is a configuration error (agents.md 8.4).
const PM2_ALL_REASON: &str = "\"all\" is rejected: pm2 reads it as every process, so restarting this one service \
                              would restart every app on the host (the ops agents included); set the app's own name";

static URL_USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s,]+@").expect("regex")
});
static BARE_USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(^|[\s,=])[^\s,/@:]*:[^\s,/@]*@").expect("regex")
});

/// Masks the userinfo of every URL-ish part of a value, `scheme://user:pass@host` and schemeless `user:pass@host`
/// alike, as `***@host` (agents.md 5.9); plain e-mail addresses (`ops@example.com`, no `:`) are left alone.
pub fn mask_userinfo(v: &str) -> String {
    let v = URL_USERINFO.replace_all(v, "${1}***@");
    BARE_USERINFO.replace_all(&v, "${1}***@").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_source(
            Source::from_pairs(pairs.iter().copied()),
            Path::new("/tmp/ops-root"),
        )
    }

    #[test]
    fn every_documented_variable_is_read_so_only_unknown_ones_are_reported() {
        // The variable names of agents.md section 8 (the copy in design/), per-agent patterns expanded.
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/design/agents.md"))
            .unwrap();
        let sec = &doc[doc.find("\n## 8").unwrap()..];
        let sec = &sec[..sec[1..].find("\n## ").map_or(sec.len(), |i| i + 1)];
        let re =
            regex::Regex::new(r"`((?:OPS|VALIDATOR|SMTP|MINIO|BACKUP|HEALTHCHECKS)_[A-Z0-9_<>]+)`")
                .unwrap();
        let mut names = Vec::new();
        for c in re.captures_iter(sec) {
            let n = &c[1];
            if n.contains("<AGENT>") {
                for a in AgentName::ALL {
                    let up = a.as_str().to_ascii_uppercase().replace('-', "_");
                    names.push(n.replace("<AGENT>", &up));
                }
            } else {
                names.push(n.to_string());
            }
        }
        assert!(names.len() > 100, "{} names found", names.len());
        // OPS_CONFIG_FILE is read by `Config::load` before the source exists; MINIO_PORT/MINIO_USE_SSL only with an
        // endpoint to build.
        names.retain(|n| n != "OPS_CONFIG_FILE");
        let src = Source::from_pairs([("MINIO_ENDPOINT", "minio.internal")]);
        Config::from_source(src.clone(), Path::new("/tmp/ops-root")).unwrap();
        let read = src.read.lock().unwrap().clone();
        let unread: Vec<&String> = names.iter().filter(|n| !read.contains(*n)).collect();
        assert!(unread.is_empty(), "documented but never read: {unread:?}");

        // A misspelt variable is reported with where it came from; documented ones are not.
        let src = Source::layered(
            HashMap::from([("OPS_EMIAL".to_string(), "a@b.c".to_string())]),
            HashMap::new(),
            HashMap::from([
                ("ops_bogus_key".to_string(), "1".to_string()),
                ("OPS_DRY_RUN".to_string(), "true".to_string()),
                ("PATH".to_string(), "/bin".to_string()),
            ]),
        );
        Config::from_source(src.clone(), Path::new("/tmp/ops-root")).unwrap();
        assert_eq!(
            src.unread(),
            vec![
                ("OPS_BOGUS_KEY".to_string(), "file"),
                ("OPS_EMIAL".to_string(), "env")
            ]
        );
    }

    #[test]
    fn defaults_match_agents_md_section_8() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            c.state_file,
            PathBuf::from("/tmp/ops-root/logs/ops-state.json")
        );
        assert_eq!(
            c.audit_file,
            PathBuf::from("/tmp/ops-root/logs/ops-audit.jsonl")
        );
        assert_eq!(c.api.rate_per_minute, 100);
        assert_eq!(c.entity.max_file_size_bytes, 100 * 1_048_576);
        assert_eq!(c.deadline(AgentName::FleetManager).as_secs(), 480);
        assert_eq!(c.alert.sla_minutes[&AgentName::DbMaintainer], 1560);
        assert_eq!(c.alert.sla_minutes[&AgentName::HealthGuardian], 10);
        assert_eq!(c.db.vacuum_tables.len(), 7);
    }

    #[test]
    fn invalid_values_are_errors_naming_the_variable() {
        let e = cfg(&[("OPS_AGENTS", "health-guardian,bogus")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("OPS_AGENTS") && e.contains("bogus"), "{e}");
        let e = cfg(&[("OPS_RATE_PER_SECOND", "-3")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("OPS_RATE_PER_SECOND"), "{e}");
        let e = cfg(&[("VALIDATOR_BASE_URL", "not a url")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("VALIDATOR_BASE_URL"), "{e}");
        let e = cfg(&[("OPS_DRY_RUN", "maybe")]).unwrap_err().to_string();
        assert!(e.contains("OPS_DRY_RUN"), "{e}");
        let e = cfg(&[(
            "OPS_MIDDLEWARE_PROBE_URL",
            "http://example.com/api/v1/health/ready",
        )])
        .unwrap_err()
        .to_string();
        assert!(e.contains("loopback"), "{e}");
        let e = cfg(&[("OPS_VACUUM_TABLES", "Content; DROP TABLE x")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("OPS_VACUUM_TABLES"), "{e}");
    }

    #[test]
    fn orphan_min_age_of_zero_days_is_rejected() {
        let e = cfg(&[("OPS_ORPHAN_MIN_AGE_DAYS", "0")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("OPS_ORPHAN_MIN_AGE_DAYS") && e.contains("1..="),
            "{e}"
        );
        let c = cfg(&[("OPS_ORPHAN_MIN_AGE_DAYS", "1")]).unwrap();
        assert_eq!(c.entity.orphan_min_age_days, 1);
    }

    #[test]
    fn from_source_reports_every_invalid_variable_not_only_the_first() {
        let e = cfg(&[
            ("OPS_DRY_RUN", "maybe"),
            ("OPS_AGENTS", "bogus"),
            ("OPS_STATE_BACKEND", "nfs"),
            ("OPS_MIDDLEWARE_PROBE_URL", "http://example.com/health"),
            ("WEB_URL", "not a url"),
            ("DATABASE_URL", "mysql://x"),
            ("OPS_PM2_APP_WEB", "all"),
        ])
        .unwrap_err();
        assert_eq!(e.0.len(), 7, "{e}");
        for k in [
            "OPS_DRY_RUN",
            "OPS_AGENTS",
            "OPS_STATE_BACKEND",
            "OPS_MIDDLEWARE_PROBE_URL",
            "WEB_URL",
            "DATABASE_URL",
            "OPS_PM2_APP_WEB",
        ] {
            assert!(e.0.iter().any(|m| m.starts_with(k)), "{k}: {e}");
        }
        // One line per error, each with the prefix.
        assert_eq!(e.to_string().matches("configuration error: ").count(), 7);
    }

    #[test]
    fn userinfo_is_masked_with_or_without_a_scheme_but_e_mail_addresses_are_not() {
        assert_eq!(mask_userinfo("user:pass@minio.local"), "***@minio.local");
        assert_eq!(
            mask_userinfo("s3://key:secret@bucket/x"),
            "s3://***@bucket/x"
        );
        assert_eq!(mask_userinfo("https://tok@h/p@q"), "https://***@h/p@q");
        assert_eq!(mask_userinfo("a@b.test,c@d.test"), "a@b.test,c@d.test");
        assert_eq!(mask_userinfo("web@1.service"), "web@1.service");
    }

    #[test]
    fn ops_credentials_win_over_validator_and_empty_is_unset() {
        let c = cfg(&[
            ("OPS_EMAIL", ""),
            ("VALIDATOR_EMAIL", "v@x.test"),
            ("OPS_PASSWORD", "opspw-1"),
            ("VALIDATOR_PASSWORD", "valpw-1"),
        ])
        .unwrap();
        assert_eq!(c.api.email.as_deref(), Some("v@x.test"));
        assert_eq!(c.api.password.as_deref(), Some("opspw-1"));
    }

    #[test]
    fn dotenv_never_overrides_the_environment_and_file_is_lowest() {
        let env = HashMap::from([("OPS_EMAIL".to_string(), String::new())]);
        let dotenv = parse_dotenv(
            "# c\nexport OPS_EMAIL=dot@x.test\nOPS_PASSWORD=\"a\\nb\"\nOPS_AGENTS='fleet-manager'\n",
        );
        let file = HashMap::from([
            ("ops_agents".to_string(), "schedule-doctor".to_string()),
            ("OPS_MAX_INCIDENTS".to_string(), "7".to_string()),
        ]);
        let s = Source::layered(env, dotenv, file);
        assert_eq!(s.raw("OPS_EMAIL"), Some(""), "env wins even when empty");
        assert_eq!(s.raw("OPS_PASSWORD"), Some("a\nb"));
        assert_eq!(s.raw("OPS_AGENTS"), Some("fleet-manager"));
        assert_eq!(s.raw("OPS_MAX_INCIDENTS"), Some("7"));
    }
}
