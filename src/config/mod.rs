//! Configuration (agents.md section 8): process environment > `<root>/.env` > optional TOML file > defaults, built and
//! validated once into a [`Config`]; nothing reads environment variables after that (style.md, Gatus).
//!
//! Errors name the variable (`OPS_RATE_PER_SECOND: expected a whole number …`). Booleans accept `true|1|yes` and
//! `false|0|no|` (case-insensitive); numbers must be finite and in range; a malformed value is never defaulted.
//!
//! Layout (Gatus's `ValidateAndSetDefaults` beside each config struct): [`source`](Source) gathers the layers,
//! one module per section holds its struct, one `DEFAULT_*` constant per default (the docstrings name them) and its
//! validation (`paths`, `run`, `api`, `apps` and `health`, `entity`, `alert` and `smtp`, `db`, `backup`,
//! `storage`), and [`Config::from_source`] reads the sections in a fixed order so that errors are listed in it.
//! `check.rs` is `config check`; `process_name` and `backup_location` are rules later layers share.

pub mod alert;
pub mod api;
pub mod apps;
pub mod backup;
pub mod backup_location;
mod check;
pub mod content;
pub mod db;
pub mod entity;
pub mod fleet;
pub mod health;
pub mod paths;
pub mod process_name;
pub mod run;
mod secrets;
pub mod smtp;
mod source;
pub mod storage;

pub use alert::AlertConfig;
pub use api::{ApiConfig, RateLimitBackend};
pub use apps::ProcessManagerKind;
pub use db::DbConfig;
pub use entity::EntityConfig;
pub use health::HealthConfig;
pub use secrets::{is_secret_var, mask_userinfo};
pub use smtp::SmtpSecurity;
pub use source::{OWN_PREFIXES, Source, parse_dotenv, parse_toml_file};

use crate::model::AgentName;
use paths::{Paths, StateLimits};
use run::{Agents, RunFlags};
use source::gather;
use std::collections::BTreeMap;
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

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// `OPS_ROOT_DIR`, else the default root (the working directory for [`Config::load`]): base of the
    /// defaults and of `.env` (agents.md 8.1).
    pub root_dir: PathBuf,
    /// `OPS_LOG_DIR` (default `<root>/`[`paths::DEFAULT_LOG_DIR`]): default home of the state file and of the logs to rotate
    /// (agents.md 8.2).
    pub log_dir: PathBuf,
    /// `OPS_STATE_FILE` (default `<log dir>/`[`paths::DEFAULT_STATE_FILE`]), which must name a file; its directory is
    /// the state dir (agents.md 4.1).
    pub state_file: PathBuf,
    /// `OPS_AUDIT_FILE` (default `<state dir>/`[`paths::DEFAULT_AUDIT_FILE`]), which must name a file (agents.md 4.8).
    pub audit_file: PathBuf,
    /// `OPS_LOCK_TIMEOUT_MS` (default [`paths::DEFAULT_LOCK_TIMEOUT_MS`], 1..=600 000 ms; also [`Config::lock_timeout`]): deadline for the
    /// state lock and the outbox and cache locks (agents.md 4.2).
    pub lock_timeout_ms: u64,
    /// `OPS_MAX_INCIDENTS` (default [`paths::DEFAULT_MAX_INCIDENTS`]): incident cap of the state file (agents.md 4.7).
    pub max_incidents: usize,
    /// `OPS_MAX_REMEDIATIONS` (default [`paths::DEFAULT_MAX_REMEDIATIONS`]): cap of `recentRemediations` (agents.md 4.7).
    pub max_remediations: usize,
    /// `OPS_RESOLVED_RETENTION_HOURS` (default [`paths::DEFAULT_RESOLVED_RETENTION_HOURS`]): resolved incidents older than this
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
    /// `OPS_WINDOW_TOLERANCE_S` (default [`run::DEFAULT_WINDOW_TOLERANCE_S`], 0..=86 400 s): early margin of every
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

/// The result of `vizora-ops config check` ([`Config::check`]).
#[derive(Debug)]
pub struct ConfigCheck {
    /// The configuration, defaults standing in for invalid values: only for describing it when `errors` is non-empty.
    pub config: Config,
    /// Every configuration error found (empty → valid), each naming the variable or file, never a secret.
    pub errors: Vec<String>,
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
    /// configuration is only good for describing. The sections are read in this order so that the errors are listed
    /// in it.
    fn build(src: Source, default_root: &Path) -> (Config, Vec<String>) {
        src.take_errors();
        let paths = Paths::parse(&src, default_root);
        let agents = Agents::parse(&src);
        let api = ApiConfig::parse(&src);
        let health = HealthConfig::parse(&src, &paths.root);
        let entity = EntityConfig::parse(&src);
        let alert = AlertConfig::parse(&src);
        let db = DbConfig::parse(&src, &paths.log_dir);
        let limits = StateLimits::parse(&src);
        let flags = RunFlags::parse(&src);
        let cfg = Config {
            root_dir: paths.root,
            log_dir: paths.log_dir,
            state_file: paths.state_file,
            audit_file: paths.audit_file,
            lock_timeout_ms: limits.lock_timeout_ms,
            max_incidents: limits.max_incidents,
            max_remediations: limits.max_remediations,
            resolved_retention_hours: limits.resolved_retention_hours,
            dry_run: flags.dry_run,
            log_format: flags.log_format,
            agents: agents.enabled,
            deadlines_s: agents.deadlines_s,
            window_tolerance_s: flags.window_tolerance_s,
            api,
            health,
            entity,
            alert,
            db,
            demo: flags.demo,
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
        paths::dir_of(&self.state_file)
    }

    /// [`Config::lock_timeout_ms`] as a duration: the deadline of the state, outbox and cache locks (agents.md 4.2).
    pub fn lock_timeout(&self) -> Duration {
        Duration::from_millis(self.lock_timeout_ms)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(super) fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
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
        assert_eq!(c.lock_timeout(), Duration::from_millis(5_000));
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
    fn errors_are_listed_in_section_order_whatever_order_the_variables_come_in() {
        // `config check` has always listed errors in this order (paths, run, api, health, entity, alert, db, state
        // limits, run flags); the section parsers must keep it.
        let e = cfg(&[
            ("OPS_DRY_RUN", "maybe"),
            ("OPS_MAX_INCIDENTS", "0"),
            ("REDIS_URL", "http://r"),
            ("SMTP_PORT", "0"),
            ("OPS_THUMBNAIL_RECHECK_HOURS", "x"),
            ("OPS_PROCESS_MANAGER", "k8s"),
            ("OPS_HTTP_RETRIES", "11"),
            ("OPS_AGENTS", "bogus"),
            ("OPS_STATE_BACKEND", "nfs"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = e.0.iter().map(|m| m.split(':').next().unwrap()).collect();
        assert_eq!(
            vars,
            [
                "OPS_STATE_BACKEND",
                "OPS_AGENTS",
                "OPS_HTTP_RETRIES",
                "OPS_PROCESS_MANAGER",
                "OPS_THUMBNAIL_RECHECK_HOURS",
                "SMTP_PORT",
                "REDIS_URL",
                "OPS_MAX_INCIDENTS",
                "OPS_DRY_RUN",
            ]
        );
    }
}
