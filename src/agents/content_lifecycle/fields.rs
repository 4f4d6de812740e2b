//! Small readers and formatters over content JSON shared by the checks (labels, deliverability, byte and day
//! counts for messages; agents.md 2.2, 6.0).

use crate::model::parse_ts;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::Value;

const MIB: f64 = 1_048_576.0;

// ---------------------------------------------------------------------------------------------------------------
// Pure helpers over API JSON
// ---------------------------------------------------------------------------------------------------------------

pub(super) fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub(super) fn id_of(v: &Value) -> Option<&str> {
    s(v, "id")
}

/// The label of a content item or playlist: `name`, else `title`, else the id; capped at 200 characters
/// ([`crate::model::label`], agents.md 2.2).
pub fn label(v: &Value) -> String {
    s(v, "name")
        .or_else(|| s(v, "title"))
        .filter(|n| !n.trim().is_empty())
        .map(|n| crate::model::label(n).into_owned())
        .unwrap_or_else(|| id_of(v).unwrap_or("?").to_string())
}

pub(super) fn is_active(v: &Value) -> bool {
    s(v, "status") == Some("active")
}

/// Deliverable content (agents.md 6.0): `status == "active"` and `expiresAt` null or later than `now`. An unparseable
/// `expiresAt` is not deliverable (it cannot be proven).
pub fn is_deliverable(detail: &Value, now: DateTime<Utc>) -> bool {
    is_active(detail)
        && match detail.get("expiresAt") {
            None | Some(Value::Null) => true,
            Some(Value::String(t)) => parse_ts(t).is_some_and(|t| t > now),
            Some(_) => false,
        }
}

/// Formats bytes for messages: `150000000 bytes (143.1 MiB)`.
pub fn fmt_bytes(b: u64) -> String {
    format!("{b} bytes ({:.1} MiB)", b as f64 / MIB)
}

pub(super) fn fmt_days(d: ChronoDuration) -> String {
    format!("{:.1}", d.num_seconds() as f64 / 86_400.0)
}

pub(super) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
