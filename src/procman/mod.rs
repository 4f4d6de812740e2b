//! Process managers behind one trait (agents.md 6.1.2, 6.1.3; design README §3 `procman`): PM2 (`jlist`, `restart`,
//! `reload`), systemd (`systemctl show` / `restart` per configured unit) and the sandbox's simulated services (the
//! demo), which health-guardian reads and restarts.
//!
//! Safety (agents.md 1.6, 6.1.3, 9 #45): every external program runs from an argument vector, never through a shell;
//! each argument is a constant or a value checked by [`validate_name`] (`[A-Za-z0-9._@:-]+`, pm_ids are numbers),
//! and each value is exactly one argv element. Children get a null stdin, run in their own process group and are
//! killed (the whole group) when their timeout (agents.md 5.6) expires.
//!
//! Redaction (agents.md 5.9): from `pm2 jlist` only `name`, `pm_id`, `monit.memory` and
//! `pm2_env.{status, exec_mode, restart_time, pm_uptime, max_memory_restart}` are read; environment blocks are
//! skipped while parsing and never kept, logged or stored.
//!
//! This module does not decide anything: which process to restart, backoff and verification belong to
//! health-guardian.

mod cmd;
mod pm2;
mod sandbox;
mod systemd;

pub use pm2::{Pm2, parse_jlist, parse_memory_limit, read_ecosystem_limits};
pub use sandbox::SandboxProcessManager;
pub use systemd::{Systemd, parse_systemd_show};

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A process manager health-guardian can list and restart (agents.md 6.1.2, 6.1.3).
#[async_trait]
pub trait ProcessManager: Send + Sync {
    /// `"pm2"`, `"systemd"` or `"sandbox"`.
    fn kind(&self) -> &'static str;
    /// Every process the manager reports: `pm2 jlist`; `systemctl show` per configured unit; the sandbox services.
    async fn list(&self) -> Result<Vec<ProcessInfo>, PmError>;
    /// Restarts the target (`pm2 restart <app|pm_id>`, `systemctl restart <unit>`, sandbox restart).
    async fn restart(&self, target: &ProcTarget) -> Result<CommandRecord, PmError>;
    /// Reloads the target (`pm2 reload <pm_id>`, for `cluster_mode`); systemd and the sandbox restart instead.
    async fn reload(&self, target: &ProcTarget) -> Result<CommandRecord, PmError>;
}

/// One process as the manager reports it, reduced to the fields health-guardian reads (agents.md 5.9, 6.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessInfo {
    /// PM2 app name, systemd unit, or the sandbox service's app name.
    pub name: String,
    /// PM2 `pm_id` (the sandbox numbers its services 0–2); `None` for systemd.
    pub pm_id: Option<u32>,
    /// Process state.
    pub status: ProcStatus,
    /// PM2 `pm2_env.exec_mode` (`fork_mode`, `cluster_mode`).
    pub exec_mode: Option<String>,
    /// Resident memory in bytes (`monit.memory`, systemd `MemoryCurrent`).
    pub memory_bytes: Option<u64>,
    /// Memory limit in bytes (`pm2_env.max_memory_restart`, systemd `MemoryMax`); `None` = unknown.
    pub max_memory_restart: Option<u64>,
    /// PM2 restart counter (`pm2_env.restart_time`; sandbox restart count).
    pub restart_time: Option<u64>,
    /// PM2 `pm2_env.pm_uptime`: epoch milliseconds of the last start.
    pub pm_uptime: Option<i64>,
}

/// Process state (agents.md 6.1.2). Serialized as the manager's word (`online`, `errored`, `launching`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcStatus {
    /// PM2 `online`, systemd `active`.
    Online,
    /// PM2 `errored`, systemd `failed`.
    Errored,
    /// PM2 `stopped`, systemd `inactive`: an operator's choice, never acted on.
    Stopped,
    /// The manager is acting (PM2 `launching`, `waiting restart`, `stopping`, `one-launch-status`; systemd
    /// `activating`, `deactivating`, `reloading`, …): no command this run.
    Transitional(String),
    /// Any other word (kept verbatim).
    Other(String),
}

impl ProcStatus {
    /// Maps a PM2 `pm2_env.status` word.
    pub fn from_pm2(s: &str) -> ProcStatus {
        match s {
            "online" => ProcStatus::Online,
            "errored" => ProcStatus::Errored,
            "stopped" => ProcStatus::Stopped,
            "launching" | "waiting restart" | "stopping" | "one-launch-status" => {
                ProcStatus::Transitional(s.to_string())
            }
            other => ProcStatus::Other(other.to_string()),
        }
    }

    /// Maps a systemd `ActiveState` word.
    pub fn from_systemd(s: &str) -> ProcStatus {
        match s {
            "active" => ProcStatus::Online,
            "failed" => ProcStatus::Errored,
            "inactive" => ProcStatus::Stopped,
            "activating" | "deactivating" | "reloading" | "refreshing" | "maintenance" => {
                ProcStatus::Transitional(s.to_string())
            }
            other => ProcStatus::Other(other.to_string()),
        }
    }

    /// The word for logs and JSON (`online`, `errored`, `stopped`, or the transitional/other word).
    pub fn as_str(&self) -> &str {
        match self {
            ProcStatus::Online => "online",
            ProcStatus::Errored => "errored",
            ProcStatus::Stopped => "stopped",
            ProcStatus::Transitional(s) | ProcStatus::Other(s) => s,
        }
    }
}

impl fmt::Display for ProcStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProcStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProcStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ProcStatus::from_pm2(&s))
    }
}

/// What a command acts on. Every value is validated ([`validate_name`]) before it enters an argv.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcTarget {
    /// A PM2 app name (all its instances), e.g. `vizora-web`.
    App(String),
    /// One PM2 instance.
    PmId(u32),
    /// A systemd unit, e.g. `vizora-web.service`.
    Unit(String),
}

impl ProcTarget {
    /// The single argv element for this target, after validation.
    pub fn arg(&self) -> Result<String, PmError> {
        match self {
            ProcTarget::App(s) | ProcTarget::Unit(s) => {
                validate_name(s)?;
                Ok(s.clone())
            }
            ProcTarget::PmId(n) => Ok(n.to_string()),
        }
    }
}

impl fmt::Display for ProcTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcTarget::App(s) | ProcTarget::Unit(s) => f.write_str(s),
            ProcTarget::PmId(n) => write!(f, "{n}"),
        }
    }
}

/// A command that ran (for the audit line, agents.md 6.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRecord {
    /// Program and arguments, exactly what ran (the sandbox records e.g. `["sandbox", "restart", "vizora-web"]`).
    pub argv: Vec<String>,
    /// Exit code (`None` for the sandbox's HTTP control call).
    pub exit_code: Option<i32>,
    /// First non-empty stderr line, ANSI colours stripped, redacted, at most 300 characters.
    pub stderr_first_line: Option<String>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// A process-manager failure. Display texts are meant for incidents and logs (already free of secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PmError {
    /// The program (`pm2`, `systemctl`, `node`) is not on `PATH` or not executable.
    #[error(
        "`{0}` not found on PATH or not executable (check OPS_PM2_BIN / OPS_SYSTEMCTL_BIN / OPS_NODE_BIN)"
    )]
    NotFound(String),
    /// The command exceeded its timeout (agents.md 5.6) and was killed with its process group.
    #[error("`{}` timed out after {after_s} s and was killed", show_argv(.argv))]
    Timeout {
        /// What ran.
        argv: Vec<String>,
        /// The timeout in seconds.
        after_s: u64,
    },
    /// Non-zero exit (or death by a signal: `code` is `None`).
    #[error("`{}` failed ({}): {}", show_argv(.argv), show_code(*.code), .stderr_first_line.as_deref().unwrap_or("no error output"))]
    Failed {
        /// What ran.
        argv: Vec<String>,
        /// Exit code, `None` when killed by a signal or when it could not be waited for.
        code: Option<i32>,
        /// First non-empty stderr line (redacted).
        stderr_first_line: Option<String>,
    },
    /// Output that cannot be parsed (jlist without a JSON array, invalid JSON, unexpected shape). The message never
    /// contains the output itself.
    #[error("unparseable process-manager output: {0}")]
    BadOutput(String),
    /// A process name or id outside `[A-Za-z0-9._@:-]` (agents.md 6.1.3); nothing ran.
    #[error("rejected process name or id: {0}")]
    Rejected(String),
    /// The sandbox control API failed (transport error, timeout, non-2xx, bad body).
    #[error("sandbox control API: {0}")]
    Http(String),
}

impl PmError {
    /// The first stderr line of a failed command, for `pm2 <verb> failed: <first stderr line>` (agents.md 6.1.3).
    pub fn stderr_first_line(&self) -> Option<&str> {
        match self {
            PmError::Failed {
                stderr_first_line, ..
            } => stderr_first_line.as_deref(),
            _ => None,
        }
    }

    /// The argv of a command that ran and failed or timed out.
    pub fn argv(&self) -> Option<&[String]> {
        match self {
            PmError::Failed { argv, .. } | PmError::Timeout { argv, .. } => Some(argv),
            _ => None,
        }
    }
}

fn show_code(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_string(),
    }
}

/// An argv for messages: elements joined by spaces, an element with whitespace, quotes or nothing shown quoted.
pub(crate) fn show_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty()
                || a.chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\'')
            {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a process name, unit or id before it may enter an argv (agents.md 1.6, 6.1.3, 8.4): non-empty and only
/// `[A-Za-z0-9._@:-]`; a leading `-` is refused too, so a value can never be read as an option, and so is `all` in any
/// case (pm2 reads it as every process). The error shows the value quoted and shortened to 64 characters, and for
/// `all` the reason (the value alone looks well-formed). The rule is `config`'s, so `config check` and every command
/// agree ([`crate::config::process_name`]).
pub fn validate_name(s: &str) -> Result<(), PmError> {
    use crate::config::process_name::{process_name_problem, shown_process_name};
    match process_name_problem(s) {
        None => Ok(()),
        Some(why) if s.eq_ignore_ascii_case("all") => Err(PmError::Rejected(format!(
            "{}: {why}",
            shown_process_name(s)
        ))),
        Some(_) => Err(PmError::Rejected(shown_process_name(s))),
    }
}

/// The process manager selected by `OPS_PROCESS_MANAGER` (agents.md 8.4) with its binary and timeouts.
pub fn from_config(cfg: &crate::config::HealthConfig) -> Box<dyn ProcessManager> {
    use crate::config::ProcessManagerKind;
    match cfg.process_manager {
        ProcessManagerKind::Pm2 => Box::new(Pm2 {
            bin: cfg.pm2_bin.clone(),
            timeout_cmd: cfg.pm2_timeout,
            timeout_jlist: cfg.pm2_jlist_timeout,
            pm2_home: None,
        }),
        ProcessManagerKind::Systemd => Box::new(Systemd {
            bin: cfg.systemctl_bin.clone(),
            units: cfg.systemd_units.values().cloned().collect(),
            timeout: cfg.pm2_timeout,
        }),
        ProcessManagerKind::Sandbox => Box::new(SandboxProcessManager::new(
            cfg.sandbox_control_url.clone().unwrap_or_default(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_name_accepts_the_allowed_alphabet_only() {
        for ok in [
            "vizora-web",
            "a.b_c@d:e-f",
            "0",
            "vizora-web.service",
            "x@1.service",
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a b", "a;b", "$(id)", "`id`", "a/b", "a\nb", "é", "a|b", "a&b", "a>b", "x\0",
            "-h", "--help",
        ] {
            assert!(
                matches!(validate_name(bad), Err(PmError::Rejected(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn validate_name_rejects_all_in_any_case_with_the_reason() {
        for all in ["all", "ALL", "All"] {
            let e = validate_name(all).unwrap_err();
            assert!(matches!(e, PmError::Rejected(_)), "{all}");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("rejected process name or id: {all:?}: "))
                    && msg.contains("every process"),
                "{msg}"
            );
        }
        assert!(validate_name("allow").is_ok());
    }

    #[test]
    fn status_words_map_per_manager() {
        assert_eq!(ProcStatus::from_pm2("online"), ProcStatus::Online);
        assert_eq!(ProcStatus::from_pm2("errored"), ProcStatus::Errored);
        assert_eq!(ProcStatus::from_pm2("stopped"), ProcStatus::Stopped);
        assert_eq!(
            ProcStatus::from_pm2("waiting restart"),
            ProcStatus::Transitional("waiting restart".into())
        );
        assert_eq!(
            ProcStatus::from_pm2("weird"),
            ProcStatus::Other("weird".into())
        );
        assert_eq!(ProcStatus::from_systemd("active"), ProcStatus::Online);
        assert_eq!(ProcStatus::from_systemd("failed"), ProcStatus::Errored);
        assert_eq!(ProcStatus::from_systemd("inactive"), ProcStatus::Stopped);
        assert_eq!(
            ProcStatus::from_systemd("activating"),
            ProcStatus::Transitional("activating".into())
        );
        assert_eq!(
            serde_json::to_string(&ProcStatus::Errored).unwrap(),
            "\"errored\""
        );
    }

    #[test]
    fn errors_explain_themselves() {
        let e = PmError::Failed {
            argv: vec!["pm2".into(), "restart".into(), "3".into()],
            code: Some(1),
            stderr_first_line: Some("[PM2][ERROR] Process 3 not found".into()),
        };
        assert_eq!(
            e.to_string(),
            "`pm2 restart 3` failed (exit code 1): [PM2][ERROR] Process 3 not found"
        );
        let t = PmError::Timeout {
            argv: vec!["pm2".into(), "jlist".into()],
            after_s: 15,
        };
        assert_eq!(
            t.to_string(),
            "`pm2 jlist` timed out after 15 s and was killed"
        );
        assert_eq!(
            validate_name("a b").unwrap_err().to_string(),
            "rejected process name or id: \"a b\""
        );
    }
}
