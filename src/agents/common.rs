//! Shared rules and predicates of agents.md 6.0: enabled displays, heartbeat age, labels, the schedule time model
//! (weekly minute intervals in the display's IANA time zone, week shifts −1/0/+1), group membership and "active now".
//! Pure functions over the typed records of [`super::entities`]; no I/O.

use super::entities::{Display, DisplayGroup, FastMap, Schedule, TsField, Week};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// Minutes in a week (Sunday 00:00 = 0).
pub const WEEK_MINUTES: i64 = 10_080;

/// Whether an id from the API may be put in a request path as is: 1–128 cuid/uuid characters (ASCII letters,
/// digits, `-`, `_`; design/vizora-api.md 2.6). Every agent checks an API id with this before it enters a path; an
/// id that fails is never requested (skipped with a WARNING, issue 9 item 8).
pub fn path_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An id as a WARNING shows it: escaped and cut to 60 characters (it failed [`path_safe_id`], so it may hold
/// control characters or be long).
pub fn shown_id(id: &str) -> String {
    let e: String = id.escape_debug().collect();
    if e.chars().count() > 60 {
        format!("{}…", e.chars().take(60).collect::<String>())
    } else {
        e
    }
}

/// A string field of an API object (`None` when missing, null or not a string).
pub fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `isDisabled !== true` of a whole API object (a fresh read; walked displays carry [`Display::enabled`]).
pub fn is_enabled_value(d: &Value) -> bool {
    d.get("isDisabled").and_then(Value::as_bool) != Some(true)
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

/// The heartbeat age at `now` of a display whose `lastHeartbeat` is `last`.
pub fn heartbeat(last: TsField, now: DateTime<Utc>) -> Heartbeat {
    match last {
        TsField::Null => Heartbeat::Never,
        TsField::Unparseable => Heartbeat::Unparseable,
        TsField::At(t) => Heartbeat::Age((now - t).num_seconds().max(0)),
    }
}

/// Never paired: `lastHeartbeat` and `pairedAt` both null (or missing).
pub fn never_paired(last_heartbeat: TsField, paired_at: TsField) -> bool {
    last_heartbeat.is_null() && paired_at.is_null()
}

/// Minute of the week (0 = Sunday 00:00) of `now` in `tz`.
pub fn week_minute(now: DateTime<Utc>, tz: Tz) -> i64 {
    let l = now.with_timezone(&tz);
    l.weekday().num_days_from_sunday() as i64 * 1440 + l.hour() as i64 * 60 + l.minute() as i64
}

/// Up to 14 sorted weekly intervals `[start, end)` in week minutes, on the stack (7 weekdays, each possibly cut in
/// two by [`crate::agents::schedule_doctor::detect::clip_to_days`]). Dereferences to a slice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    len: u8,
    buf: [(i64, i64); 14],
}

impl Intervals {
    /// No interval.
    pub const EMPTY: Intervals = Intervals {
        len: 0,
        buf: [(0, 0); 14],
    };

    /// Appends an interval (panics past 14, which the weekly model cannot produce).
    pub fn push(&mut self, iv: (i64, i64)) {
        self.buf[self.len as usize] = iv;
        self.len += 1;
    }

    /// The last interval, mutable.
    pub fn last_mut(&mut self) -> Option<&mut (i64, i64)> {
        self.buf[..self.len as usize].last_mut()
    }
}

impl std::ops::Deref for Intervals {
    type Target = [(i64, i64)];
    fn deref(&self) -> &[(i64, i64)] {
        &self.buf[..self.len as usize]
    }
}

impl std::fmt::Debug for Intervals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq<Vec<(i64, i64)>> for Intervals {
    fn eq(&self, other: &Vec<(i64, i64)>) -> bool {
        **self == **other
    }
}

/// The weekly intervals `[start, end)` in minutes of a schedule's validated weekly fields (agents.md 6.0): one per
/// listed weekday, ascending; `startTime`/`endTime` null or equal → whole day; `startTime > endTime` wraps into the
/// next day (Saturday → Sunday runs past 10 080 and is matched with week shifts). No weekday → no interval.
/// (A malformed field is `Schedule::week == None`: not examined.)
pub fn weekly_intervals(w: &Week) -> Intervals {
    let mut out = Intervals::EMPTY;
    for d in 0..7i64 {
        if w.days & (1 << d) == 0 {
            continue;
        }
        let base = d * 1440;
        match (w.start, w.end) {
            (Some(a), Some(b)) if a < b => out.push((base + a as i64, base + b as i64)),
            (Some(a), Some(b)) if a > b => out.push((base + a as i64, base + 1440 + b as i64)),
            _ => out.push((base, base + 1440)),
        }
    }
    out
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

/// `"Mon 09:00–17:30"` for a week-minute window.
pub fn describe_window(start: i64, end: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let d = (start / 1440).rem_euclid(7) as usize;
    let hm = |m: i64| format!("{:02}:{:02}", (m.rem_euclid(1440)) / 60, m.rem_euclid(60));
    format!("{} {}–{}", DAYS[d], hm(start), hm(end))
}

/// Display id → position in the display list (the first one when an id repeats). Ids are borrowed from the records.
#[derive(Debug, Default)]
pub struct DisplayIds<'a> {
    map: FastMap<&'a str, u32>,
}

impl<'a> DisplayIds<'a> {
    /// Indexes the ids in list order.
    pub fn build(ids: impl IntoIterator<Item = &'a str>) -> DisplayIds<'a> {
        let ids = ids.into_iter();
        let mut map = FastMap::default();
        map.reserve(ids.size_hint().0);
        for (i, id) in ids.enumerate() {
            map.entry(id).or_insert(i as u32);
        }
        DisplayIds { map }
    }

    /// The position of a display id.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.map.get(id).copied()
    }
}

/// Group id → member displays as positions in the display list (sorted, unique), from `GET /display-groups`
/// (`displays[].displayId`). A group without a `displays` array maps to `None`: membership unknown (agents.md 6.0).
/// Member ids that name no listed display are dropped (no listed display can be reached through them).
#[derive(Debug, Default)]
pub struct Membership<'a> {
    groups: FastMap<&'a str, Option<Box<[u32]>>>,
}

impl<'a> Membership<'a> {
    /// Builds the membership of `groups` against `displays` (a later group with the same id replaces an earlier one).
    pub fn build(groups: &'a [DisplayGroup], displays: &DisplayIds<'_>) -> Membership<'a> {
        let mut map = FastMap::default();
        map.reserve(groups.len());
        for g in groups {
            let members = g.members.as_ref().map(|m| {
                let mut v: Vec<u32> = m.iter().filter_map(|id| displays.get(id)).collect();
                v.sort_unstable();
                v.dedup();
                v.into_boxed_slice()
            });
            map.insert(&*g.id, members);
        }
        Membership { groups: map }
    }

    /// `None` = no such group; `Some(None)` = membership unknown; `Some(Some(members))` otherwise.
    pub fn get(&self, group_id: &str) -> Option<Option<&[u32]>> {
        self.groups.get(group_id).map(Option::as_deref)
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// No group at all.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Whether a schedule targets a display (`display_id` at position `display_ix` of the list the membership was built
/// over): `Some(true/false)`, or `None` when group membership is unknown (agents.md 6.0).
pub fn targets_display(
    sch: &Schedule,
    display_id: &str,
    display_ix: u32,
    groups: &Membership<'_>,
) -> Option<bool> {
    if sch.display_id.as_deref() == Some(display_id) {
        return Some(true);
    }
    if matches!(sch.malformed_ref, Some("displayId" | "displayGroupId")) {
        return None;
    }
    match sch.group_id.as_deref() {
        Some(g) => match groups.get(g) {
            Some(Some(members)) => Some(members.binary_search(&display_ix).is_ok()),
            Some(None) => None,
            None => Some(false),
        },
        None => Some(false),
    }
}

/// Date-and-weekly activity of a schedule at `now` for a display in `tz` (targeting is checked separately):
/// `isActive === true`, `startDate` ≤ now, `endDate` null or ≥ now, local now in a weekly interval. `None` when a
/// date or time field is unparseable.
pub fn schedule_active_at(sch: &Schedule, now: DateTime<Utc>, tz: Tz) -> Option<bool> {
    schedule_active_at_minute(sch, now, || week_minute(now, tz))
}

/// [`schedule_active_at`] with the local week minute computed lazily by `minute` (callers judging many schedules
/// for one display compute it once).
pub fn schedule_active_at_minute(
    sch: &Schedule,
    now: DateTime<Utc>,
    minute: impl FnOnce() -> i64,
) -> Option<bool> {
    if !sch.active {
        return Some(false);
    }
    if sch.start? > now {
        return Some(false);
    }
    match sch.end {
        TsField::Null => {}
        TsField::At(e) => {
            if e < now {
                return Some(false);
            }
        }
        TsField::Unparseable => return None,
    }
    let iv = weekly_intervals(sch.week.as_ref()?);
    Some(in_intervals(&iv, minute()))
}

/// Whether any schedule is active now for a display (agents.md 6.0 "active now for a display"): `Some(bool)`, or
/// `None` when it cannot be decided (unknown membership or unparseable fields of a schedule that might apply).
/// `display_ix` is the display's position in the list `groups` was built over.
pub fn any_schedule_active_for(
    display: &Display,
    display_ix: u32,
    schedules: &[&Schedule],
    groups: &Membership<'_>,
    now: DateTime<Utc>,
) -> Option<bool> {
    let (tz, _) = display.tz();
    let minute = std::cell::OnceCell::new();
    let mut unknown = false;
    for sch in schedules {
        match targets_display(sch, &display.id, display_ix, groups) {
            Some(false) => continue,
            None => {
                if sch.active {
                    unknown = true;
                }
                continue;
            }
            Some(true) => {}
        }
        match schedule_active_at_minute(sch, now, || *minute.get_or_init(|| week_minute(now, tz))) {
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
    use crate::agents::entities::{FromItem, Records};
    use serde_json::json;

    fn week(v: Value) -> Option<Intervals> {
        Week::of(&v).map(|w| weekly_intervals(&w))
    }

    #[test]
    fn overnight_saturday_window_wraps_into_sunday() {
        let iv = week(json!({"daysOfWeek":[6],"startTime":1320,"endTime":120})).unwrap();
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
            week(json!({"daysOfWeek":[1],"startTime":null,"endTime":null})).unwrap(),
            vec![(1440, 2880)]
        );
        assert_eq!(
            week(json!({"daysOfWeek":[1],"startTime":600,"endTime":600})).unwrap(),
            vec![(1440, 2880)]
        );
        assert!(
            week(json!({"daysOfWeek":[],"startTime":1,"endTime":5}))
                .unwrap()
                .is_empty()
        );
        assert!(week(json!({"daysOfWeek":[9]})).is_none());
        assert_eq!(
            week(json!({"daysOfWeek":[3,1,3]})).unwrap(),
            vec![(1440, 2880), (3 * 1440, 4 * 1440)],
            "weekdays sorted and de-duplicated"
        );
    }

    #[test]
    fn intersection_is_found_across_the_week_boundary() {
        let a = week(json!({"daysOfWeek":[6],"startTime":1380,"endTime":60})).unwrap();
        let b = week(json!({"daysOfWeek":[0],"startTime":0,"endTime":30})).unwrap();
        assert_eq!(first_intersection(&a, &b), Some((0, 30)));
        let c = week(json!({"daysOfWeek":[2],"startTime":0,"endTime":30})).unwrap();
        assert_eq!(first_intersection(&a, &c), None);
    }

    #[test]
    fn heartbeat_null_unparseable_and_future_are_distinguished() {
        let now = Utc::now();
        let hb = |v: Value| heartbeat(TsField::of(&v, "lastHeartbeat"), now);
        assert_eq!(hb(json!({"lastHeartbeat":null})), Heartbeat::Never);
        assert_eq!(
            hb(json!({"lastHeartbeat":"yesterday"})),
            Heartbeat::Unparseable
        );
        assert_eq!(hb(json!({"lastHeartbeat":42})), Heartbeat::Unparseable);
        let fut = crate::model::ts(now + chrono::Duration::minutes(5));
        assert_eq!(hb(json!({ "lastHeartbeat": fut })), Heartbeat::Age(0));
    }

    #[test]
    fn targeting_by_display_group_and_unknown_membership() {
        let displays: Vec<Display> =
            Records::from_values(&[json!({"id":"d1"}), json!({"id":"d2"})]);
        let ids = DisplayIds::build(displays.iter().map(|d| &*d.id));
        let groups: Vec<DisplayGroup> = Records::from_values(&[
            json!({"id":"g","displays":[{"displayId":"d2"},{"displayId":"gone"}]}),
            json!({"id":"gx"}),
        ]);
        let m = Membership::build(&groups, &ids);
        let sch = |v: Value| Schedule::from_item(&v);
        let direct = sch(json!({"id":"s","displayId":"d1"}));
        let grp = sch(json!({"id":"s","displayGroupId":"g"}));
        let unknown = sch(json!({"id":"s","displayGroupId":"gx"}));
        let missing = sch(json!({"id":"s","displayGroupId":"nope"}));
        assert_eq!(targets_display(&direct, "d1", 0, &m), Some(true));
        assert_eq!(targets_display(&direct, "d2", 1, &m), Some(false));
        assert_eq!(targets_display(&grp, "d2", 1, &m), Some(true));
        assert_eq!(targets_display(&grp, "d1", 0, &m), Some(false));
        assert_eq!(targets_display(&unknown, "d1", 0, &m), None);
        assert_eq!(targets_display(&missing, "d1", 0, &m), Some(false));
    }

    #[test]
    fn active_now_needs_dates_and_weekly_window_and_reports_unknowns() {
        let now = crate::model::parse_ts("2026-08-26T12:00:00Z").unwrap(); // Wednesday
        let displays: Vec<Display> = Records::from_values(&[json!({"id":"d1","timezone":"UTC"})]);
        let ids = DisplayIds::build(displays.iter().map(|d| &*d.id));
        let groups: Vec<DisplayGroup> = Records::from_values(&[json!({"id":"gx"})]);
        let m = Membership::build(&groups, &ids);
        let base = json!({"id":"s","isActive":true,"startDate":"2026-01-01T00:00:00Z","endDate":null,
                          "daysOfWeek":[3],"startTime":600,"endTime":780,"displayId":"d1"});
        let s1 = Schedule::from_item(&base);
        assert_eq!(
            any_schedule_active_for(&displays[0], 0, &[&s1], &m, now),
            Some(true)
        );
        let mut v = base.clone();
        v["startTime"] = json!(800);
        v["endTime"] = json!(900);
        let s2 = Schedule::from_item(&v);
        assert_eq!(
            any_schedule_active_for(&displays[0], 0, &[&s2], &m, now),
            Some(false)
        );
        v["endDate"] = json!("garbage");
        let s3 = Schedule::from_item(&v);
        assert_eq!(
            any_schedule_active_for(&displays[0], 0, &[&s3], &m, now),
            None
        );
        let s4 = Schedule::from_item(&json!({"id":"g","isActive":true,"displayGroupId":"gx"}));
        assert_eq!(
            any_schedule_active_for(&displays[0], 0, &[&s2, &s4], &m, now),
            None,
            "an active schedule of a group with unknown members leaves it undecided"
        );
        assert_eq!(
            any_schedule_active_for(&displays[0], 0, &[&s4, &s1], &m, now),
            Some(true),
            "a direct hit decides"
        );
    }
}
