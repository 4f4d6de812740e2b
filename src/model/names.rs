//! The names of agents, severities, incident statuses and the system status (agents.md 1.1, 2.1, 2.4), and the
//! status computation.

use super::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the six agents (agents.md 1.1), plus the watchdog pass recorded inside ops-reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgentName {
    /// `health-guardian`: services, processes, host and edge, every 5 min, no API login (agents.md 6.1).
    HealthGuardian,
    /// `content-lifecycle`: content and storage, every 15 min, logs in (agents.md 6.2).
    ContentLifecycle,
    /// `fleet-manager`: displays and locations, every 10 min, logs in (agents.md 6.3).
    FleetManager,
    /// `schedule-doctor`: schedules, every 15 min, logs in (agents.md 6.4).
    ScheduleDoctor,
    /// `ops-reporter`: system status, alerts, outbox and the watchdog pass, every 30 min; fixes nothing (6.5).
    OpsReporter,
    /// `db-maintainer`: database, Redis, logs and backups, daily at 03:00, no API login (agents.md 6.6).
    DbMaintainer,
    /// The watchdog pass of ops-reporter (agents.md 6.5.2); never run on its own.
    OpsWatchdog,
}

impl AgentName {
    /// The six runnable agents in the demo order of design/README.md §1.
    pub const ALL: [AgentName; 6] = [
        AgentName::HealthGuardian,
        AgentName::FleetManager,
        AgentName::ContentLifecycle,
        AgentName::ScheduleDoctor,
        AgentName::DbMaintainer,
        AgentName::OpsReporter,
    ];

    /// The verbatim name used in ids, `lastRun`, `agentResults`, logs and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentName::HealthGuardian => "health-guardian",
            AgentName::ContentLifecycle => "content-lifecycle",
            AgentName::FleetManager => "fleet-manager",
            AgentName::ScheduleDoctor => "schedule-doctor",
            AgentName::OpsReporter => "ops-reporter",
            AgentName::DbMaintainer => "db-maintainer",
            AgentName::OpsWatchdog => "ops-watchdog",
        }
    }

    /// Parses a runnable agent name (not `ops-watchdog`). Errors name the accepted values.
    pub fn parse(s: &str) -> Result<AgentName, String> {
        AgentName::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown agent {s:?} (expected one of: {})",
                    AgentName::ALL.map(|a| a.as_str()).join(", ")
                )
            })
    }

    /// Nominal interval in seconds (agents.md 1.2).
    pub fn interval_s(self) -> u64 {
        match self {
            AgentName::HealthGuardian => 300,
            AgentName::FleetManager => 600,
            AgentName::ContentLifecycle | AgentName::ScheduleDoctor => 900,
            AgentName::OpsReporter | AgentName::OpsWatchdog => 1800,
            AgentName::DbMaintainer => 86_400,
        }
    }

    /// Default run deadline in seconds: 80 % of the interval, db-maintainer 7 200 s (agents.md 1.2).
    pub fn default_deadline_s(self) -> u64 {
        match self {
            AgentName::DbMaintainer => 7_200,
            a => a.interval_s() * 8 / 10,
        }
    }

    /// Staggered default cron (agents.md 1.2).
    pub fn default_cron(self) -> &'static str {
        match self {
            AgentName::HealthGuardian => "*/5 * * * *",
            AgentName::FleetManager => "2-59/10 * * * *",
            AgentName::ContentLifecycle => "4-59/15 * * * *",
            AgentName::ScheduleDoctor => "7-59/15 * * * *",
            AgentName::OpsReporter | AgentName::OpsWatchdog => "10,40 * * * *",
            AgentName::DbMaintainer => "0 3 * * *",
        }
    }

    /// Upper-case environment suffix: `health-guardian` → `HEALTH_GUARDIAN`.
    pub fn env_suffix(self) -> String {
        self.as_str().to_ascii_uppercase().replace('-', "_")
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Incident severity (agents.md 2.1). Unknown strings from other writers are kept verbatim in `Other` and are
/// neither warning nor critical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Severity {
    /// `"info"`: never changes the status, never alerts, never makes an exit code non-zero (agents.md 2.1).
    Info,
    /// `"warning"`: makes the status at least DEGRADED while active (agents.md 2.4).
    Warning,
    /// `"critical"`: makes the status CRITICAL while active (agents.md 2.4).
    Critical,
    /// Any other string, kept verbatim; neither warning nor critical (agents.md 2.1).
    Other(String),
}

impl Severity {
    /// The JSON string: `info`, `warning`, `critical` or the unknown value as written.
    pub fn as_str(&self) -> &str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Other(s) => s,
        }
    }
    /// Rank for comparisons: info 1 < warning 2 < critical 3; unknown 0.
    pub fn rank(&self) -> u8 {
        match self {
            Severity::Info => 1,
            Severity::Warning => 2,
            Severity::Critical => 3,
            Severity::Other(_) => 0,
        }
    }
    /// Warning or critical: the severities that change the status, alert and make exit codes non-zero.
    pub fn counts(&self) -> bool {
        matches!(self, Severity::Warning | Severity::Critical)
    }
}

impl Serialize for Severity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            _ => Severity::Other(s),
        })
    }
}

/// Incident status (agents.md 2.1). Unknown strings count as active.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IncidentStatus {
    /// `"open"`: active; the condition is still observed (agents.md 2.1).
    Open,
    /// `"escalated"`: active; automatic remediation exhausted or proven useless, a human must act (agents.md 2.1, 2.5).
    Escalated,
    /// `"resolved"`: inactive; `resolvedAt` says when (agents.md 2.5).
    Resolved,
    /// Any other string, kept verbatim; counts as active (agents.md 2.1).
    Other(String),
}

impl IncidentStatus {
    /// The JSON string: `open`, `escalated`, `resolved` or the unknown value as written.
    pub fn as_str(&self) -> &str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Escalated => "escalated",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Other(s) => s,
        }
    }
    /// `open`, `escalated` or unknown (agents.md 1.1, 2.1).
    pub fn is_active(&self) -> bool {
        !matches!(self, IncidentStatus::Resolved)
    }
}

impl Serialize for IncidentStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for IncidentStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "open" => IncidentStatus::Open,
            "escalated" => IncidentStatus::Escalated,
            "resolved" => IncidentStatus::Resolved,
            _ => IncidentStatus::Other(s),
        })
    }
}

/// `HEALTHY` / `DEGRADED` / `CRITICAL` (agents.md 2.1, 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum SystemStatus {
    /// `"HEALTHY"`: no active warning or critical incident (also the empty state).
    #[serde(rename = "HEALTHY")]
    Healthy,
    /// `"DEGRADED"`: some active warning incident and no active critical one.
    #[serde(rename = "DEGRADED")]
    Degraded,
    /// `"CRITICAL"`: some active (open, escalated or unknown-status) critical incident.
    #[serde(rename = "CRITICAL")]
    Critical,
}

impl SystemStatus {
    /// The JSON string: `HEALTHY`, `DEGRADED` or `CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemStatus::Healthy => "HEALTHY",
            SystemStatus::Degraded => "DEGRADED",
            SystemStatus::Critical => "CRITICAL",
        }
    }
    /// Parses `HEALTHY`/`DEGRADED`/`CRITICAL`; anything else is `None`.
    pub fn parse(s: &str) -> Option<SystemStatus> {
        match s {
            "HEALTHY" => Some(SystemStatus::Healthy),
            "DEGRADED" => Some(SystemStatus::Degraded),
            "CRITICAL" => Some(SystemStatus::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for SystemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CRITICAL if any active incident is critical, DEGRADED if any active one is warning, else HEALTHY (agents.md 2.4).
pub fn compute_status<'a>(incidents: impl Iterator<Item = &'a Incident>) -> SystemStatus {
    let mut st = SystemStatus::Healthy;
    for i in incidents.filter(|i| i.is_active()) {
        match i.severity {
            Severity::Critical => return SystemStatus::Critical,
            Severity::Warning => st = SystemStatus::Degraded,
            _ => {}
        }
    }
    st
}
