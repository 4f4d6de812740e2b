//! The incident (agents.md 2.2), its id, and the human words and labels it is shown with.

use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
