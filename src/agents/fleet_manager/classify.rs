//! Classification (agents.md 6.3.1): heartbeat thresholds, the display classes, the typed display row and
//! the location key.

use crate::agents::common::{self, Heartbeat};
use crate::agents::entities::{Display, FromItem, Text, TsField, text};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Heartbeat thresholds in seconds: online below `offline_s`, offline from it, persistent from `persistent_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// `OPS_OFFLINE_MINUTES` × 60 (default 900 s).
    pub offline_s: i64,
    /// `OPS_PERSISTENT_OFFLINE_MINUTES` × 60 (default 3 600 s).
    pub persistent_s: i64,
}

impl Thresholds {
    /// From the configuration (agents.md 8.5).
    pub fn from_config(cfg: &crate::config::Config) -> Thresholds {
        Thresholds {
            offline_s: cfg.entity.offline_minutes as i64 * 60,
            persistent_s: cfg.entity.persistent_offline_minutes as i64 * 60,
        }
    }
}

/// The connectivity class of an enabled display at the run's start (agents.md 6.0, 6.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `lastHeartbeat` and `pairedAt` null → info `display_never_paired`.
    NeverPaired,
    /// Heartbeat age (s) below the offline threshold.
    Online(i64),
    /// Offline 15–60 min (age in s) → `display_offline` and a capped reload.
    Offline(i64),
    /// Age (s) ≥ the persistence threshold, or `None` = paired without any heartbeat → escalated, no command.
    Persistent(Option<i64>),
    /// `lastHeartbeat` present but unparseable: not examined (agents.md 9.18).
    Unknown,
}

impl Class {
    /// Paired and offline (age ≥ the offline threshold or no heartbeat): what a location counts.
    pub fn is_offline(self) -> bool {
        matches!(self, Class::Offline(_) | Class::Persistent(_))
    }
}

/// A walked display as fleet-manager judges it (agents.md 6.0, 6.3): the shared [`Display`] record plus the
/// heartbeat, pairing, location, organisation and `status == "error"`. Timestamps are parsed once; the texts are kept
/// as written for the messages.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetDisplay {
    /// Id, label, enabled, time zone, current playlist.
    pub display: Display,
    /// `lastHeartbeat`.
    pub last_heartbeat: TsField,
    /// `lastHeartbeat` as written, when a string.
    pub heartbeat_text: Option<Text>,
    /// `pairedAt` (only its null-ness is a rule; see [`common::never_paired`]).
    pub paired_at: TsField,
    /// `pairedAt` as written, when a string.
    pub paired_at_text: Option<Text>,
    /// `location` as written, when a string.
    pub location: Option<Text>,
    /// `organizationId`, when a string.
    pub organization_id: Option<Text>,
    /// `status == "error"`.
    pub error_status: bool,
}

impl FromItem for FleetDisplay {
    fn from_item(v: &Value) -> FleetDisplay {
        FleetDisplay {
            display: Display::from_item(v),
            last_heartbeat: TsField::of(v, "lastHeartbeat"),
            heartbeat_text: text(v, "lastHeartbeat"),
            paired_at: TsField::of(v, "pairedAt"),
            paired_at_text: text(v, "pairedAt"),
            location: crate::agents::entities::label_text(v, "location"),
            organization_id: text(v, "organizationId"),
            error_status: common::s(v, "status") == Some("error"),
        }
    }
}

/// Classifies one display at `now` (the run's start). `status` is never used for connectivity (6.0).
pub fn classify(d: &FleetDisplay, now: DateTime<Utc>, th: Thresholds) -> Class {
    if common::never_paired(d.last_heartbeat, d.paired_at) {
        return Class::NeverPaired;
    }
    match common::heartbeat(d.last_heartbeat, now) {
        Heartbeat::Never => Class::Persistent(None),
        Heartbeat::Unparseable => Class::Unknown,
        Heartbeat::Age(a) if a < th.offline_s => Class::Online(a),
        Heartbeat::Age(a) if a < th.persistent_s => Class::Offline(a),
        Heartbeat::Age(a) => Class::Persistent(Some(a)),
    }
}

/// The location key of 6.3.2: `location` trimmed, inner whitespace collapsed to one space, lower-cased; empty or
/// absent → `None` (ungrouped).
pub fn location_key(location: Option<&str>) -> Option<String> {
    let k = location?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    (!k.is_empty()).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::fleet_manager::tests::{TH, display, fd, t0};

    use serde_json::{Value, json};

    #[test]
    fn heartbeat_ages_classify_at_the_fifteen_and_sixty_minute_edges() {
        let c = |m| classify(&fd(&display("a", Some(m), None)), t0(), TH);
        assert_eq!(c(14.9), Class::Online(894));
        assert_eq!(c(15.0), Class::Offline(900));
        assert_eq!(c(59.9), Class::Offline(3594));
        assert_eq!(c(60.0), Class::Persistent(Some(3600)));
    }

    #[test]
    fn never_paired_paired_without_heartbeat_and_unparseable_are_distinct() {
        let mut d = display("a", None, None);
        assert_eq!(classify(&fd(&d), t0(), TH), Class::Persistent(None));
        d["pairedAt"] = Value::Null;
        assert_eq!(classify(&fd(&d), t0(), TH), Class::NeverPaired);
        let mut u = display("b", None, None);
        u["lastHeartbeat"] = json!("last tuesday");
        assert_eq!(classify(&fd(&u), t0(), TH), Class::Unknown);
        assert!(!Class::Unknown.is_offline());
    }
}
