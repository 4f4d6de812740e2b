//! The shared model of agents.md section 2: severities, incidents, remediation actions, agent results and the
//! `ops-state.json` document, with field names compatible with the TypeScript agents (camelCase, optional fields
//! omitted when absent, unknown fields kept).
//!
//! This module holds data and pure rules over it (status computation, active/resolved predicates, id parsing). It
//! does no I/O; the state store (`crate::state`) reads and writes it.

mod counts;
mod incident;
mod names;
mod state;

pub use counts::*;
pub use incident::*;
pub use names::*;
pub use state::*;

use chrono::{DateTime, SecondsFormat, Utc};

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
