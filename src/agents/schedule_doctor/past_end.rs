//! 6.4.2 check 1, past end: an active schedule whose `endDate` is before the run's start is deactivated (agents.md
//! 6.4.2). An unparseable `endDate` is not examined: its past-end and empty-playlist incidents stay unexamined.

use crate::agents::AgentContext;
use crate::agents::entities::{Schedule, TsField};
use crate::model::incident_id;
use chrono::{DateTime, Utc};
use std::collections::HashSet;

use super::AGENT;

/// Check 1: `Some(endDate as written)` when the end is known and before `now` (an end equal to `now` is not past).
pub(super) fn check(sch: &Schedule, now: DateTime<Utc>) -> Option<String> {
    match sch.end {
        TsField::At(e) if e < now => Some(sch.end_text.as_deref().unwrap_or_default().to_string()),
        _ => None,
    }
}

/// Warns once per active schedule whose `endDate` cannot be parsed and marks its past-end and empty-playlist
/// incidents unexamined (agents.md 2.5: a verdict that was not reached resolves nothing).
pub(super) fn note_unknown_ends(
    ctx: &AgentContext,
    schedules: &[Schedule],
    end_unknown: &[usize],
    unexamined: &mut HashSet<String>,
) {
    for &i in end_unknown {
        let sch = &schedules[i];
        ctx.warn(format!(
            "schedule {}: endDate {:?} is unparseable; not examined",
            sch.id,
            sch.end_text.as_deref().unwrap_or("(not a string)")
        ));
        unexamined.insert(incident_id(AGENT, "past_end_schedule", &sch.id));
        unexamined.insert(incident_id(AGENT, "empty_playlist_schedule", &sch.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::entities::FromItem;
    use crate::agents::schedule_doctor::test_support::{ALL, at, sched};
    use serde_json::json;

    #[test]
    fn end_before_now_is_past_and_end_at_now_or_unparseable_is_not() {
        let now = at("2026-08-26T12:00:00Z");
        let mut v = sched(
            "a",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-26T11:59:59Z"),
            ALL,
            None,
            None,
        );
        assert_eq!(
            check(&Schedule::from_item(&v), now).as_deref(),
            Some("2026-08-26T11:59:59Z")
        );
        v["endDate"] = json!("2026-08-26T12:00:00Z");
        assert_eq!(check(&Schedule::from_item(&v), now), None);
        v["endDate"] = json!("next tuesday");
        assert_eq!(check(&Schedule::from_item(&v), now), None);
        v["endDate"] = json!(null);
        assert_eq!(check(&Schedule::from_item(&v), now), None);
    }
}
