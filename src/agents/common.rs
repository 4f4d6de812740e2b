//! Shared rules and predicates of agents.md 6.0: enabled displays, heartbeat age, labels, the schedule time model
//! (weekly minute intervals in the display's IANA time zone, week shifts −1/0/+1), group membership and "active now".
//! Pure functions over API JSON; no I/O.

use crate::model::parse_ts;
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Minutes in a week (Sunday 00:00 = 0).
pub const WEEK_MINUTES: i64 = 10_080;

/// A string field of an API object.
pub fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The entity id (`id` as a string).
pub fn id_of(v: &Value) -> String {
    match v.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// `isDisabled !== true` (agents.md 6.0).
pub fn is_enabled_display(d: &Value) -> bool {
    d.get("isDisabled").and_then(Value::as_bool) != Some(true)
}

/// Display label: `nickname`, else the id.
pub fn display_label(d: &Value) -> String {
    s(d, "nickname")
        .filter(|n| !n.trim().is_empty())
        .map(String::from)
        .unwrap_or_else(|| id_of(d))
}

/// Heartbeat of a display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Heartbeat {
    /// `lastHeartbeat` null.
    Never,
    /// Present but unparseable: not examined (agents.md 9.18).
    Unparseable,
    /// Age in seconds (negative ages, a clock skew, count as 0).
    Age(i64),
}

/// The heartbeat age of a display at `now`.
pub fn heartbeat(d: &Value, now: DateTime<Utc>) -> Heartbeat {
    match d.get("lastHeartbeat") {
        None | Some(Value::Null) => Heartbeat::Never,
        Some(Value::String(t)) => match parse_ts(t) {
            Some(t) => Heartbeat::Age((now - t).num_seconds().max(0)),
            None => Heartbeat::Unparseable,
        },
        Some(_) => Heartbeat::Unparseable,
    }
}

/// Never paired: `lastHeartbeat` and `pairedAt` both null.
pub fn never_paired(d: &Value) -> bool {
    d.get("lastHeartbeat").is_none_or(Value::is_null)
        && d.get("pairedAt").is_none_or(Value::is_null)
}

/// The display's time zone (`timezone`), UTC when missing or invalid; the bool says whether it fell back.
pub fn display_tz(d: &Value) -> (Tz, bool) {
    match s(d, "timezone").map(str::parse::<Tz>) {
        Some(Ok(tz)) => (tz, false),
        _ => (chrono_tz::UTC, true),
    }
}

/// Minute of the week (0 = Sunday 00:00) of `now` in `tz`.
pub fn week_minute(now: DateTime<Utc>, tz: Tz) -> i64 {
    let l = now.with_timezone(&tz);
    l.weekday().num_days_from_sunday() as i64 * 1440 + l.hour() as i64 * 60 + l.minute() as i64
}

/// The weekly intervals `[start, end)` in minutes of a schedule (agents.md 6.0): one per listed weekday;
/// `startTime`/`endTime` null or equal → whole day; `startTime > endTime` wraps into the next day (Saturday → Sunday
/// runs past 10 080 and is matched with week shifts). Empty `daysOfWeek` → no interval. `None` when a field is
/// malformed (not examined).
pub fn weekly_intervals(sch: &Value) -> Option<Vec<(i64, i64)>> {
    let days = match sch.get("daysOfWeek") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|d| d.as_i64().filter(|d| (0..=6).contains(d)))
            .collect::<Option<Vec<i64>>>()?,
        None | Some(Value::Null) => Vec::new(),
        _ => return None,
    };
    let minute = |k: &str| -> Result<Option<i64>, ()> {
        match sch.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|m| (0..1440).contains(m))
                .map(Some)
                .ok_or(()),
        }
    };
    let st = minute("startTime").ok()?;
    let et = minute("endTime").ok()?;
    let mut days = days;
    days.sort_unstable();
    days.dedup();
    let mut out = Vec::with_capacity(days.len());
    for d in days {
        let base = d * 1440;
        match (st, et) {
            (Some(a), Some(b)) if a < b => out.push((base + a, base + b)),
            (Some(a), Some(b)) if a > b => out.push((base + a, base + 1440 + b)),
            _ => out.push((base, base + 1440)),
        }
    }
    Some(out)
}

/// Whether week minute `m` lies in one of the intervals, trying week shifts −1, 0, +1.
pub fn in_intervals(intervals: &[(i64, i64)], m: i64) -> bool {
    intervals.iter().any(|&(a, b)| {
        [-WEEK_MINUTES, 0, WEEK_MINUTES]
            .iter()
            .any(|sh| a + sh <= m && m < b + sh)
    })
}

/// The first intersection of two sorted interval lists under week shifts −1, 0, +1, as `(start, end)` week minutes
/// (normalised into `[0, 10 080)` for the start). Linear merge per shift.
pub fn first_intersection(a: &[(i64, i64)], b: &[(i64, i64)]) -> Option<(i64, i64)> {
    let mut best: Option<(i64, i64)> = None;
    for sh in [-WEEK_MINUTES, 0, WEEK_MINUTES] {
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let (a0, a1) = a[i];
            let (b0, b1) = (b[j].0 + sh, b[j].1 + sh);
            let lo = a0.max(b0);
            let hi = a1.min(b1);
            if lo < hi {
                let norm = (
                    lo.rem_euclid(WEEK_MINUTES),
                    lo.rem_euclid(WEEK_MINUTES) + (hi - lo),
                );
                if best.is_none_or(|b| norm.0 < b.0) {
                    best = Some(norm);
                }
                break;
            }
            if a1 <= b1 {
                i += 1;
            } else {
                j += 1;
            }
        }
    }
    best
}

/// Restricts intervals to the given local weekdays (0 = Sunday), by the weekday they start on.
pub fn restrict_days(intervals: &[(i64, i64)], days: &HashSet<i64>) -> Vec<(i64, i64)> {
    intervals
        .iter()
        .copied()
        .filter(|(a, _)| days.contains(&(a.rem_euclid(WEEK_MINUTES) / 1440)))
        .collect()
}

/// `"Mon 09:00–17:30"` for a week-minute window.
pub fn describe_window(start: i64, end: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let d = (start / 1440).rem_euclid(7) as usize;
    let hm = |m: i64| format!("{:02}:{:02}", (m.rem_euclid(1440)) / 60, m.rem_euclid(60));
    format!("{} {}–{}", DAYS[d], hm(start), hm(end))
}

/// Group id → member display ids, from `GET /display-groups` items (`displays[].displayId`). A group without a
/// `displays` array maps to `None`: membership unknown (agents.md 6.0).
pub fn group_members(groups: &[Value]) -> HashMap<String, Option<HashSet<String>>> {
    groups
        .iter()
        .map(|g| {
            let members = g.get("displays").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|m| {
                        m.get("displayId")
                            .and_then(Value::as_str)
                            .or_else(|| m.get("id").and_then(Value::as_str))
                            .map(String::from)
                    })
                    .collect::<HashSet<String>>()
            });
            (id_of(g), members)
        })
        .collect()
}

/// Whether a schedule targets a display: `Some(true/false)`, or `None` when group membership is unknown.
pub fn targets_display(
    sch: &Value,
    display_id: &str,
    groups: &HashMap<String, Option<HashSet<String>>>,
) -> Option<bool> {
    if s(sch, "displayId") == Some(display_id) {
        return Some(true);
    }
    match s(sch, "displayGroupId") {
        Some(g) => match groups.get(g) {
            Some(Some(members)) => Some(members.contains(display_id)),
            Some(None) => None,
            None => Some(false),
        },
        None => Some(false),
    }
}

/// Date-and-weekly activity of a schedule at `now` for a display in `tz` (targeting is checked separately):
/// `isActive === true`, `startDate` ≤ now, `endDate` null or ≥ now, local now in a weekly interval. `None` when a
/// date or time field is unparseable.
pub fn schedule_active_at(sch: &Value, now: DateTime<Utc>, tz: Tz) -> Option<bool> {
    if sch.get("isActive").and_then(Value::as_bool) != Some(true) {
        return Some(false);
    }
    let start = parse_ts(s(sch, "startDate")?)?;
    if start > now {
        return Some(false);
    }
    match sch.get("endDate") {
        None | Some(Value::Null) => {}
        Some(Value::String(e)) => {
            if parse_ts(e)? < now {
                return Some(false);
            }
        }
        Some(_) => return None,
    }
    let iv = weekly_intervals(sch)?;
    Some(in_intervals(&iv, week_minute(now, tz)))
}

/// Whether any schedule is active now for a display (agents.md 6.0 "active now for a display"): `Some(bool)`, or
/// `None` when it cannot be decided (unknown membership or unparseable fields of a schedule that might apply).
pub fn any_schedule_active_for(
    display: &Value,
    schedules: &[&Value],
    groups: &HashMap<String, Option<HashSet<String>>>,
    now: DateTime<Utc>,
) -> Option<bool> {
    let did = id_of(display);
    let (tz, _) = display_tz(display);
    let mut unknown = false;
    for sch in schedules {
        match targets_display(sch, &did, groups) {
            Some(false) => continue,
            None => {
                if sch.get("isActive").and_then(Value::as_bool) == Some(true) {
                    unknown = true;
                }
                continue;
            }
            Some(true) => {}
        }
        match schedule_active_at(sch, now, tz) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(false) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn overnight_saturday_window_wraps_into_sunday() {
        let sch = json!({"daysOfWeek":[6],"startTime":1320,"endTime":120});
        let iv = weekly_intervals(&sch).unwrap();
        assert_eq!(iv, vec![(6 * 1440 + 1320, 7 * 1440 + 120)]);
        assert!(
            in_intervals(&iv, 60),
            "Sunday 01:00 is inside via the week shift"
        );
        assert!(!in_intervals(&iv, 180));
    }

    #[test]
    fn null_or_equal_times_mean_whole_day_and_empty_days_never() {
        assert_eq!(
            weekly_intervals(&json!({"daysOfWeek":[1],"startTime":null,"endTime":null})).unwrap(),
            vec![(1440, 2880)]
        );
        assert_eq!(
            weekly_intervals(&json!({"daysOfWeek":[1],"startTime":600,"endTime":600})).unwrap(),
            vec![(1440, 2880)]
        );
        assert!(
            weekly_intervals(&json!({"daysOfWeek":[],"startTime":1,"endTime":5}))
                .unwrap()
                .is_empty()
        );
        assert!(weekly_intervals(&json!({"daysOfWeek":[9]})).is_none());
    }

    #[test]
    fn intersection_is_found_across_the_week_boundary() {
        let a = weekly_intervals(&json!({"daysOfWeek":[6],"startTime":1380,"endTime":60})).unwrap();
        let b = weekly_intervals(&json!({"daysOfWeek":[0],"startTime":0,"endTime":30})).unwrap();
        assert_eq!(first_intersection(&a, &b), Some((0, 30)));
        let c = weekly_intervals(&json!({"daysOfWeek":[2],"startTime":0,"endTime":30})).unwrap();
        assert_eq!(first_intersection(&a, &c), None);
    }

    #[test]
    fn heartbeat_null_unparseable_and_future_are_distinguished() {
        let now = Utc::now();
        assert_eq!(
            heartbeat(&json!({"lastHeartbeat":null}), now),
            Heartbeat::Never
        );
        assert_eq!(
            heartbeat(&json!({"lastHeartbeat":"yesterday"}), now),
            Heartbeat::Unparseable
        );
        let fut = crate::model::ts(now + chrono::Duration::minutes(5));
        assert_eq!(
            heartbeat(&json!({"lastHeartbeat":fut}), now),
            Heartbeat::Age(0)
        );
    }
}
