//! The shared model of agents.md section 2: severities, incidents, remediation actions, agent results and the
//! `ops-state.json` document, with field names compatible with the TypeScript agents (camelCase, optional fields
//! omitted when absent, unknown fields kept).
//!
//! This module holds data and pure rules over it (status computation, active/resolved predicates, id parsing). It
//! does no I/O; the state store (`crate::state`) reads and writes it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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

/// Formats an instant as ISO-8601 UTC with milliseconds and `Z` (agents.md 1.1).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses any RFC 3339 timestamp; unparseable → `None` ("unknown", never now or epoch; agents.md 1.1).
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// An incident (agents.md 2.2). Field order is the serialisation order of 4.5; unknown fields round-trip in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// `<agent>:<type>:<targetId>`, the upsert key.
    pub id: String,
    /// Raising agent (its verbatim name, agents.md 1.1); the only one that may resolve it (2.5).
    pub agent: String,
    /// JSON `type`: the catalogue type (agents.md section 3), without `:`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Current severity; may change within an episode.
    pub severity: Severity,
    /// Entity kind (`service`, `content`, `display`, …).
    pub target: String,
    /// JSON `targetId`: the entity id; may contain `:` (`vizora-web:0`) or be composite (`<idA>+<idB>`).
    pub target_id: String,
    /// Start of the episode (ISO timestamp).
    pub detected: String,
    /// Evidence: the observation, its value and the threshold.
    pub message: String,
    /// What was done, or the next manual step.
    pub remediation: String,
    /// `open`, `escalated`, `resolved` or an unknown value (agents.md 2.1).
    pub status: IncidentStatus,
    /// Remediation attempts in this episode (agents.md 2.5); 0 when absent in the file.
    #[serde(default)]
    pub attempts: u32,
    /// JSON `resolvedAt`: resolution time (ISO timestamp); `None` while active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    /// The last remediation or verification failure; `None` when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// JSON `lastAttemptAt`: last remediation attempt in this episode (ISO timestamp), for backoff (agents.md 6.1.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    /// JSON `alertedAt`: time of the last delivered alert covering it (ISO timestamp; agents.md 7.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerted_at: Option<String>,
    /// JSON `alertedSeverity`: the severity when it was last alerted (agents.md 7.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerted_severity: Option<Severity>,
    /// JSON `alertedStatus`: the status when it was last alerted (agents.md 7.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerted_status: Option<IncidentStatus>,
    /// Unknown fields from other writers, kept unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Incident {
    /// A new open incident with id `<agent>:<kind>:<target_id>`, `detected = now`, 0 attempts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        agent: AgentName,
        kind: &str,
        severity: Severity,
        target: &str,
        target_id: &str,
        message: impl Into<String>,
        remediation: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Incident {
        Incident {
            id: incident_id(agent, kind, target_id),
            agent: agent.as_str().to_string(),
            kind: kind.to_string(),
            severity,
            target: target.to_string(),
            target_id: target_id.to_string(),
            detected: ts(now),
            message: message.into(),
            remediation: remediation.into(),
            status: IncidentStatus::Open,
            attempts: 0,
            resolved_at: None,
            error: None,
            last_attempt_at: None,
            alerted_at: None,
            alerted_severity: None,
            alerted_status: None,
            extra: Map::new(),
        }
    }

    /// Whether the status is `open`, `escalated` or unknown (agents.md 1.1, 2.1).
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }

    /// Forgets the alert stamps (`alertedAt`, `alertedSeverity`, `alertedStatus`): the incident counts as never
    /// alerted (agents.md 2.5, 7.5).
    pub fn clear_alert_stamps(&mut self) {
        self.alerted_at = None;
        self.alerted_severity = None;
        self.alerted_status = None;
    }
}

/// An incident in human words for terminals and alert text (issue 9, one vocabulary): `<kind_label> (<target>
/// <targetId>)`, e.g. `display offline (display d1)`; the target part is left out when it adds nothing (empty, or
/// equal to its kind: not `backup backup`). JSON and the state keep the ids.
pub fn incident_words(kind: &str, target: &str, target_id: &str) -> String {
    if target_id.is_empty() || target_id == target {
        kind_label(kind)
    } else {
        format!("{} ({target} {target_id})", kind_label(kind))
    }
}

/// Human words for an incident type of the catalogue (agents.md section 3), the one vocabulary of the screen: the
/// demo summary, `status`, the agents' report lines and the alerts (design/style.md). `service-down` → `service
/// down`, `deleted_playlist_schedule` → `schedule of a deleted playlist`. A type not in the catalogue (another
/// writer's) is shown with `-`/`_` as spaces. JSON and the state file keep the ids.
pub fn kind_label(kind: &str) -> String {
    let words = match kind {
        "service-down" => "service down",
        "service-unready" => "service not ready",
        "service-degraded" => "service degraded",
        "pm2-errored" => "process errored",
        "pm2-stopped" => "process stopped",
        "pm2-missing" => "process missing",
        "high-memory" => "process memory high",
        "host-memory-high" => "host memory high",
        "process-manager-unavailable" => "process manager unavailable",
        "edge-unreachable" => "public edge unreachable",
        "expired_content" => "expired content",
        "orphaned_content" => "orphaned content",
        "missing_thumbnail" => "missing thumbnail",
        "oversized_file" => "oversized file",
        "storage_high" => "storage usage high",
        "storage_check_failed" => "storage check failed",
        "reference-scan-incomplete" => "content reference scan incomplete",
        "scan-truncated" => "incomplete scan",
        "api-contract-drift" => "API contract drift",
        "display_offline" => "display offline",
        "display_offline_persistent" => "display offline for an hour or more",
        "display_error" => "display in error state",
        "location_offline" => "location offline",
        "no_content" => "display without content",
        "display_never_paired" => "display never paired",
        "past_end_schedule" => "schedule past its end",
        "deleted_playlist_schedule" => "schedule of a deleted playlist",
        "no_target_schedule" => "schedule without a target",
        "schedule_overlap" => "overlapping schedules",
        "coverage_gap" => "display with nothing scheduled",
        "empty_playlist_schedule" => "schedule of an empty playlist",
        "fallback_playlist_invalid" => "fallback playlist invalid",
        "agent-silent" => "agent silent",
        "alert-delivery-failed" => "alert delivery failed",
        "alerting-unconfigured" => "no alert channel configured",
        "db-not-configured" => "database not configured",
        "vacuum-all-failed" => "VACUUM failed on every table",
        "vacuum-table-missing" => "VACUUM table missing",
        "vacuum-failed" => "VACUUM failed",
        "reindex-failed" => "REINDEX failed",
        "reindex-unsupported" => "REINDEX unsupported",
        "reindex-invalid-leftover" => "invalid index left by a REINDEX",
        "redis-unobservable" => "Redis not observable",
        "redis-memory-high" => "Redis memory high",
        "redis-fragmentation-high" => "Redis fragmentation high",
        "log-retention-failed" => "log rotation failed",
        "s3-unobservable" => "object storage not observable",
        "bucket-size-high" => "bucket size high",
        "backup-not-configured" => "backups not configured",
        "backup-unverifiable" => "backup unverifiable",
        "backup-missing" => "backup missing",
        "backup-stale" => "backup stale",
        other => return other.replace(['-', '_'], " "),
    };
    words.to_string()
}

/// Longest label taken from the API that enters incidents, remediation actions, audit lines, alerts and summaries, in
/// characters (agents.md 2.2): four 2 MB content names once made the state file 46 MB.
pub const LABEL_MAX_CHARS: usize = 200;

/// A label taken from the API (a content, display, schedule, playlist, location or group name), capped at
/// [`LABEL_MAX_CHARS`] characters: longer text is cut on a char boundary and ends in `…` (the result is at most
/// 200 characters including it). Borrowed when short enough. The one function for every API label that enters text
/// (agents.md 2.2).
pub fn label(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(LABEL_MAX_CHARS) {
        None => std::borrow::Cow::Borrowed(s),
        Some(_) => {
            let cut = s
                .char_indices()
                .nth(LABEL_MAX_CHARS - 1)
                .map(|(i, _)| i)
                .unwrap_or(s.len());
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&s[..cut]);
            out.push('…');
            std::borrow::Cow::Owned(out)
        }
    }
}

/// `<agent>:<type>:<targetId>` (agents.md 2.2).
pub fn incident_id(agent: AgentName, kind: &str, target_id: &str) -> String {
    format!("{}:{}:{}", agent.as_str(), kind, target_id)
}

/// Splits an incident id at its first two colons: `(agent, type, targetId)`; `None` if it has fewer than two.
pub fn parse_incident_id(id: &str) -> Option<(&str, &str, &str)> {
    let mut it = id.splitn(3, ':');
    Some((it.next()?, it.next()?, it.next()?))
}

// ---------------------------------------------------------------------------------------------------------------
// The counts (README "What the counts mean", agents.md 2.3, 7.2): one definition each, used by the agents' results,
// the reporter's summary and alerts, `status` and the demo, so that they agree by construction.
// ---------------------------------------------------------------------------------------------------------------

/// Window of "in the last 24 h" counts (agents.md 7.2, 7.3): 24 hours before `now`.
pub const COUNT_WINDOW_HOURS: i64 = 24;

/// Whether a remediation counts as a **fix**: its verification verdict is `verified: true` (agents.md 2.3; a sent
/// command or an unverified mutation is never a fix).
pub fn is_verified_fix(r: &RemediationAction) -> bool {
    r.verified == Some(true)
}

/// **fixed** of one run (`issuesFixed`): the verified remediations among `remediations` (this run's actions).
pub fn verified_fix_count(remediations: &[RemediationAction]) -> u32 {
    remediations.iter().filter(|r| is_verified_fix(r)).count() as u32
}

/// **remediations in 24 h**: the entries of `remediations` (the state's `recentRemediations`) whose `timestamp` lies
/// within [`COUNT_WINDOW_HOURS`] before `now`, in their order; an unparseable timestamp is not counted (it is kept in
/// the state, agents.md 4.4).
pub fn remediations_24h(
    remediations: &[RemediationAction],
    now: DateTime<Utc>,
) -> Vec<&RemediationAction> {
    let since = now - chrono::Duration::hours(COUNT_WINDOW_HOURS);
    remediations
        .iter()
        .filter(|r| parse_ts(&r.timestamp).is_some_and(|t| t >= since))
        .collect()
}

/// **verified fixes in 24 h**: the [`remediations_24h`] that are [`is_verified_fix`]. Equals the sum of the agents'
/// `issuesFixed` over their runs of the last 24 h while no remediation has been pruned (agents.md 4.7).
pub fn verified_fixes_24h(remediations: &[RemediationAction], now: DateTime<Utc>) -> usize {
    remediations_24h(remediations, now)
        .into_iter()
        .filter(|r| is_verified_fix(r))
        .count()
}

/// A remediation action (agents.md 2.3). `before`/`after` are small projections (5.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationAction {
    /// The acting agent's verbatim name (agents.md 1.1).
    pub agent: String,
    /// Start of the action (ISO timestamp).
    pub timestamp: String,
    /// Human description, e.g. `Archive orphaned content "Spring Menu"`.
    pub action: String,
    /// Entity kind acted on (as in [`Incident::target`]).
    pub target: String,
    /// JSON `targetId`: id of the entity acted on.
    pub target_id: String,
    /// HTTP verb, `pm2 restart`, `pm2 reload`, `systemctl restart`, `SQL` or `FILE`.
    pub method: String,
    /// API path including `/api/v1` (API mutations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Small projection of the fresh pre-write read (agents.md 5.8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// Small projection of the response or post-state (agents.md 5.8); absent e.g. when the mutation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Whether the mutation itself succeeded (not whether the fix was verified).
    pub success: bool,
    /// The mutation's failure; `None` on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Additive: the verification verdict after the mutation; `None` = not (yet) verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Additive JSON `runId`: the acting run's UUID (agents.md 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Unknown fields from other writers, kept unchanged (agents.md 4.4).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The result of one agent run (agents.md 2.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AgentResult {
    /// The agent's verbatim name (agents.md 1.1).
    pub agent: String,
    /// End of the run (= `lastRun[agent]`).
    pub timestamp: String,
    /// JSON `durationMs`: wall-clock run time in milliseconds.
    pub duration_ms: u64,
    /// Warning + critical findings raised.
    pub issues_found: u32,
    /// Verified remediations only.
    pub issues_fixed: u32,
    /// JSON `issuesEscalated`: raised incidents ending this run `escalated`.
    pub issues_escalated: u32,
    /// Raised plus resolved copies of this run.
    #[serde(default)]
    pub incidents: Vec<Incident>,
    /// Additive JSON `infoFound`: raised findings that are neither warning nor critical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info_found: Option<u32>,
    /// Additive JSON `issuesResolved`: prior incidents resolved by this run's sweeps (set by the merge, agents.md 4.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issues_resolved: Option<u32>,
    /// Additive JSON `exitCode`: the run's exit code, 0, 1 or 2 (agents.md 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Additive JSON `runId`: the run's UUID (agents.md 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Additive: the covered types of this run, sorted (agents.md 2.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Vec<String>>,
    /// Additive: per-agent statistics object (agents.md section 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Value>,
    /// Unknown fields from other writers, kept unchanged (agents.md 4.4).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `ops-state.json` document (agents.md 2.3, 4.5). `agent_results` and `last_run` keep unknown agents' entries;
/// entries that fail to parse as typed values are kept as raw JSON in the `*_raw` maps so they round-trip.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsState {
    /// `systemStatus`, recomputed from the incidents on every write (agents.md 2.4).
    pub system_status: SystemStatus,
    /// `lastUpdated`: time of the last write (ISO timestamp).
    pub last_updated: String,
    /// agent → ISO time of its last completed run; `ops-reporter:last-alert` = last delivered status alert.
    pub last_run: Map<String, Value>,
    /// `incidents`: every writer's incidents; pruning evicts only resolved ones (agents.md 4.7).
    pub incidents: Vec<Incident>,
    /// `recentRemediations`: the last 24 h of actions, capped at `OPS_MAX_REMEDIATIONS` (agents.md 4.7).
    pub recent_remediations: Vec<RemediationAction>,
    /// agent → AgentResult (raw JSON so that other writers' entries stay untouched).
    pub agent_results: Map<String, Value>,
    /// Elements of the file's `incidents` array that do not parse as an [`Incident`] (a numeric `id`, `resolvedAt`
    /// as a number, `attempts: "3"`, `null`, …), kept verbatim and written back after the parsed ones; they count
    /// toward nothing (status, alerts, sweeps) and are never pruned by age (agents.md 4.4, 4.7).
    pub verbatim_incidents: Vec<Value>,
    /// Elements of `recentRemediations` that do not parse as a [`RemediationAction`], kept verbatim like
    /// [`OpsState::verbatim_incidents`].
    pub verbatim_remediations: Vec<Value>,
    /// Unknown top-level keys of other writers, written back unchanged after the known keys (agents.md 4.4, 4.5).
    pub extra: Map<String, Value>,
    /// Why each verbatim element did not parse (`incidents[3]: invalid type: …`), for the one ERROR of the state
    /// store; never written.
    pub parse_problems: Vec<String>,
}

impl OpsState {
    /// The empty state `{HEALTHY, now, {}, [], [], {}}` (agents.md 4.4).
    pub fn empty(now: DateTime<Utc>) -> OpsState {
        OpsState {
            system_status: SystemStatus::Healthy,
            last_updated: ts(now),
            last_run: Map::new(),
            incidents: Vec::new(),
            recent_remediations: Vec::new(),
            agent_results: Map::new(),
            verbatim_incidents: Vec::new(),
            verbatim_remediations: Vec::new(),
            extra: Map::new(),
            parse_problems: Vec::new(),
        }
    }

    /// **remediations in 24 h** of this state ([`remediations_24h`] over `recentRemediations`).
    pub fn remediations_24h(&self, now: DateTime<Utc>) -> Vec<&RemediationAction> {
        remediations_24h(&self.recent_remediations, now)
    }

    /// **verified fixes in 24 h** of this state ([`verified_fixes_24h`] over `recentRemediations`).
    pub fn verified_fixes_24h(&self, now: DateTime<Utc>) -> usize {
        verified_fixes_24h(&self.recent_remediations, now)
    }

    /// The status computed from the incidents (agents.md 2.4).
    pub fn computed_status(&self) -> SystemStatus {
        compute_status(self.incidents.iter())
    }

    /// The typed AgentResult of an agent, if present and parseable.
    pub fn agent_result(&self, agent: &str) -> Option<AgentResult> {
        self.agent_results
            .get(agent)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// `lastRun[key]` parsed as a timestamp; missing or unparseable → `None`.
    pub fn last_run_at(&self, key: &str) -> Option<DateTime<Utc>> {
        self.last_run
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(parse_ts)
    }

    /// Serialises with the key order of agents.md 4.5: the six known keys, then unknown ones; verbatim elements
    /// follow the parsed ones in their arrays.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "systemStatus".into(),
            Value::String(self.system_status.as_str().into()),
        );
        m.insert(
            "lastUpdated".into(),
            Value::String(self.last_updated.clone()),
        );
        m.insert("lastRun".into(), Value::Object(self.last_run.clone()));
        m.insert(
            "incidents".into(),
            with_verbatim(
                serde_json::to_value(&self.incidents),
                &self.verbatim_incidents,
            ),
        );
        m.insert(
            "recentRemediations".into(),
            with_verbatim(
                serde_json::to_value(&self.recent_remediations),
                &self.verbatim_remediations,
            ),
        );
        m.insert(
            "agentResults".into(),
            Value::Object(self.agent_results.clone()),
        );
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }

    /// Parses a state document. Each missing top-level field defaults on its own; a known field of the wrong type
    /// (or a non-object top level) is an error naming the field (agents.md 4.4).
    pub fn from_value(v: Value, now: DateTime<Utc>) -> Result<OpsState, String> {
        let Value::Object(mut m) = v else {
            return Err("top level is not a JSON object".into());
        };
        let mut st = OpsState::empty(now);
        if let Some(s) = m.remove("systemStatus") {
            match s.as_str().and_then(SystemStatus::parse) {
                Some(x) => st.system_status = x,
                None if s.is_string() => {}
                None => return Err("field systemStatus has the wrong type".into()),
            }
        }
        if let Some(s) = m.remove("lastUpdated") {
            match s {
                Value::String(s) => st.last_updated = s,
                _ => return Err("field lastUpdated has the wrong type".into()),
            }
        }
        if let Some(s) = m.remove("lastRun") {
            match s {
                Value::Object(o) => st.last_run = o,
                _ => return Err("field lastRun has the wrong type".into()),
            }
        }
        // One malformed element must not cost the whole file (the TypeScript agents share it): elements are parsed
        // one by one and those that fail are kept verbatim (agents.md 4.4). Only a non-array is a wrong type.
        if let Some(s) = m.remove("incidents") {
            let Value::Array(items) = s else {
                return Err("field incidents has the wrong type".into());
            };
            for (n, item) in items.into_iter().enumerate() {
                match Incident::deserialize(&item) {
                    Ok(i) => st.incidents.push(i),
                    Err(e) => {
                        st.parse_problems.push(format!("incidents[{n}]: {e}"));
                        st.verbatim_incidents.push(item);
                    }
                }
            }
        }
        if let Some(s) = m.remove("recentRemediations") {
            let Value::Array(items) = s else {
                return Err("field recentRemediations has the wrong type".into());
            };
            for (n, item) in items.into_iter().enumerate() {
                match RemediationAction::deserialize(&item) {
                    Ok(a) => st.recent_remediations.push(a),
                    Err(e) => {
                        st.parse_problems
                            .push(format!("recentRemediations[{n}]: {e}"));
                        st.verbatim_remediations.push(item);
                    }
                }
            }
        }
        if let Some(s) = m.remove("agentResults") {
            match s {
                Value::Object(o) => st.agent_results = o,
                _ => return Err("field agentResults has the wrong type".into()),
            }
        }
        st.extra = m;
        Ok(st)
    }
}

/// An array of the typed elements (`typed`, a serialised `Vec`) followed by the verbatim ones.
fn with_verbatim(typed: serde_json::Result<Value>, verbatim: &[Value]) -> Value {
    let mut items = match typed {
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    items.extend(verbatim.iter().cloned());
    Value::Array(items)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(sev: Severity, status: IncidentStatus) -> Incident {
        let mut i = Incident::new(
            AgentName::FleetManager,
            "display_offline",
            sev,
            "display",
            "d1",
            "m",
            "r",
            Utc::now(),
        );
        i.status = status;
        i
    }

    #[test]
    fn escalated_critical_makes_status_critical_and_info_never_counts() {
        let a = [inc(Severity::Info, IncidentStatus::Open)];
        assert_eq!(compute_status(a.iter()), SystemStatus::Healthy);
        let b = [
            inc(Severity::Warning, IncidentStatus::Open),
            inc(Severity::Critical, IncidentStatus::Resolved),
        ];
        assert_eq!(compute_status(b.iter()), SystemStatus::Degraded);
        let c = [inc(Severity::Critical, IncidentStatus::Escalated)];
        assert_eq!(compute_status(c.iter()), SystemStatus::Critical);
    }

    #[test]
    fn incident_id_with_colons_in_target_parses_at_first_two() {
        assert_eq!(
            parse_incident_id("health-guardian:pm2-errored:vizora-web:0"),
            Some(("health-guardian", "pm2-errored", "vizora-web:0"))
        );
    }

    #[test]
    fn unknown_fields_and_enum_values_round_trip() {
        let raw = serde_json::json!({"id":"a:b:c","agent":"a","type":"b","severity":"fatal","target":"x",
            "targetId":"c","detected":"2026-01-01T00:00:00.000Z","message":"m","remediation":"r",
            "status":"snoozed","attempts":1,"customField":{"k":1}});
        let i: Incident = serde_json::from_value(raw.clone()).unwrap();
        assert!(i.is_active(), "unknown status counts as active");
        assert!(!i.severity.counts());
        assert_eq!(serde_json::to_value(&i).unwrap(), raw);
    }

    #[test]
    fn api_labels_are_capped_at_200_chars_on_a_char_boundary() {
        assert_eq!(label("Lobby"), "Lobby");
        let exact = "é".repeat(LABEL_MAX_CHARS);
        assert_eq!(label(&exact), exact.as_str());
        let capped = label(&"é".repeat(2 * 1024 * 1024)).into_owned();
        assert_eq!(capped.chars().count(), LABEL_MAX_CHARS);
        assert!(capped.ends_with("é…"));
    }

    #[test]
    fn incident_types_have_human_words_and_unknown_ones_lose_their_separators() {
        assert_eq!(
            kind_label("deleted_playlist_schedule"),
            "schedule of a deleted playlist"
        );
        assert_eq!(
            kind_label("backup-not-configured"),
            "backups not configured"
        );
        assert_eq!(kind_label("custom-thing_x"), "custom thing x");
    }
}
