//! The time-zone handling of the 6.4.3 overlap check: a schedule's overlap view, the local weekdays of a short date
//! intersection and the first shared weekly window of two schedules on a display (agents.md 6.0 time model: weekly
//! minute intervals in the display's IANA zone, intersected under week shifts −1/0/+1).

use crate::agents::common::{self, Intervals};
use crate::agents::entities::{Schedule, TsField, Week};
use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;

/// Minutes in a day.
const DAY_MINUTES: i64 = 1440;

/// The fields of a schedule the overlap check reads, parsed and validated (24–40 bytes, `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlapSchedule {
    /// Position in the schedule list.
    pub ix: u32,
    /// `priority` (missing or null = 0).
    pub priority: i64,
    /// `startDate`.
    pub start: DateTime<Utc>,
    /// `endDate`; `None` = open-ended.
    pub end: Option<DateTime<Utc>>,
    /// The validated weekly fields.
    pub week: Week,
}

impl OverlapSchedule {
    /// The overlap view of schedule `ix`; `None` when `startDate`, `endDate`, `priority` or the time fields are
    /// malformed (its overlap verdicts are then not examined).
    pub fn parse(ix: usize, sch: &Schedule) -> Option<OverlapSchedule> {
        Some(OverlapSchedule {
            ix: ix as u32,
            priority: sch.priority?,
            start: sch.start?,
            end: match sch.end {
                TsField::Null => None,
                TsField::At(t) => Some(t),
                TsField::Unparseable => return None,
            },
            week: sch.week?,
        })
    }

    /// Its weekly intervals (sorted, local minutes of the week).
    pub fn intervals(&self) -> Intervals {
        common::weekly_intervals(&self.week)
    }
}

/// The local weekdays (bit 0 = Sunday … bit 6 = Saturday) of the dates from `lo` to `hi` in `tz`, when that span is
/// shorter than 7 days; `None` when it spans 7 days or more (every weekday counts).
pub fn local_weekdays(lo: DateTime<Utc>, hi: DateTime<Utc>, tz: Tz) -> Option<u8> {
    if hi - lo >= Duration::days(7) {
        return None;
    }
    let mut d = lo.with_timezone(&tz).date_naive();
    let last = hi.with_timezone(&tz).date_naive();
    let mut out = 0u8;
    let mut n = 0;
    while d <= last && n < 7 {
        out |= 1 << d.weekday().num_days_from_sunday();
        n += 1;
        d = d.succ_opt()?;
    }
    Some(out)
}

/// Clips weekly intervals to the weekdays of the bit set `days` at day granularity: each interval is cut at local
/// midnights and the pieces on other weekdays are dropped (a Saturday 22:00–Sunday 02:00 window keeps only its
/// Sunday part when only Sunday is inside the dates). Adjacent pieces are merged again; the result stays sorted.
pub fn clip_to_days(intervals: &[(i64, i64)], days: u8) -> Intervals {
    let mut out = Intervals::EMPTY;
    for &(a, b) in intervals {
        let mut k = a.div_euclid(DAY_MINUTES);
        while k * DAY_MINUTES < b {
            let lo = a.max(k * DAY_MINUTES);
            let hi = b.min((k + 1) * DAY_MINUTES);
            if lo < hi && days & (1 << k.rem_euclid(7)) != 0 {
                match out.last_mut() {
                    Some(last) if last.1 == lo => last.1 = hi,
                    _ => out.push((lo, hi)),
                }
            }
            k += 1;
        }
    }
    out
}

/// The first overlapping weekly window `(start, end)` (week minutes, local) of two schedules on a display in `tz`,
/// or `None` (agents.md 6.4.3): their date ranges must intersect; when that intersection spans < 7 days only its
/// local weekdays count; the weekly intervals are intersected by a linear merge under week shifts −1/0/+1.
pub fn pair_overlap(a: &OverlapSchedule, b: &OverlapSchedule, tz: Tz) -> Option<(i64, i64)> {
    let lo = a.start.max(b.start);
    let hi = match (a.end, b.end) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    if hi.is_some_and(|h| h < lo) {
        return None;
    }
    let (ia, ib) = (a.intervals(), b.intervals());
    if ia.is_empty() || ib.is_empty() {
        return None;
    }
    match hi.and_then(|h| local_weekdays(lo, h, tz)) {
        Some(days) => {
            common::first_intersection(&clip_to_days(&ia, days), &clip_to_days(&ib, days))
        }
        None => common::first_intersection(&ia, &ib),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::entities::FromItem;
    use crate::agents::schedule_doctor::test_support::{ALL, sched};
    use serde_json::Value;

    fn parsed(v: &Value) -> OverlapSchedule {
        OverlapSchedule::parse(0, &Schedule::from_item(v)).unwrap()
    }

    #[test]
    fn wrap_around_night_window_overlaps_the_early_morning_slot() {
        let night = parsed(&sched(
            "n",
            40,
            "2026-07-12T00:00:00Z",
            None,
            ALL,
            Some(1260),
            Some(360),
        ));
        let early = parsed(&sched(
            "e",
            40,
            "2026-08-12T00:00:00Z",
            None,
            &[1, 2, 3, 4, 5],
            Some(330),
            Some(480),
        ));
        let w = pair_overlap(&night, &early, chrono_tz::UTC).unwrap();
        assert_eq!(w, (1440 + 330, 1440 + 360), "Monday 05:30–06:00");
        let late = parsed(&sched(
            "l",
            40,
            "2026-08-12T00:00:00Z",
            None,
            &[1],
            Some(360),
            Some(480),
        ));
        assert_eq!(
            pair_overlap(&night, &late, chrono_tz::UTC),
            None,
            "end is exclusive"
        );
    }

    #[test]
    fn saturday_night_window_meets_sunday_morning_through_the_week_shift() {
        let sat = parsed(&sched(
            "a",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[6],
            Some(1380),
            Some(120),
        ));
        let sun = parsed(&sched(
            "b",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[0],
            Some(60),
            Some(90),
        ));
        assert_eq!(pair_overlap(&sat, &sun, chrono_tz::UTC), Some((60, 90)));
        let mon = parsed(&sched(
            "c",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[1],
            Some(60),
            Some(90),
        ));
        assert_eq!(pair_overlap(&sat, &mon, chrono_tz::UTC), None);
    }

    #[test]
    fn adjacent_windows_and_disjoint_dates_do_not_overlap() {
        let a = parsed(&sched(
            "a",
            1,
            "2026-09-01T00:00:00Z",
            Some("2026-10-01T23:59:00Z"),
            ALL,
            None,
            None,
        ));
        let b = parsed(&sched(
            "b",
            1,
            "2026-10-05T00:00:00Z",
            Some("2026-10-19T23:59:00Z"),
            ALL,
            None,
            None,
        ));
        assert_eq!(pair_overlap(&a, &b, chrono_tz::UTC), None);
        let x = parsed(&sched(
            "x",
            1,
            "2026-01-01T00:00:00Z",
            None,
            ALL,
            Some(420),
            Some(630),
        ));
        let y = parsed(&sched(
            "y",
            1,
            "2026-01-01T00:00:00Z",
            None,
            ALL,
            Some(630),
            Some(900),
        ));
        assert_eq!(pair_overlap(&x, &y, chrono_tz::UTC), None);
        let z = parsed(&sched(
            "z",
            1,
            "2026-01-01T00:00:00Z",
            None,
            &[],
            None,
            None,
        ));
        assert_eq!(
            pair_overlap(&x, &z, chrono_tz::UTC),
            None,
            "empty daysOfWeek never plays"
        );
    }

    #[test]
    fn short_date_intersection_counts_only_its_local_weekdays() {
        // Dates intersect Thu 2026-08-27 .. Fri 2026-08-28 only; both run whole days but on different weekdays sets.
        let a = parsed(&sched(
            "a",
            1,
            "2026-08-27T00:00:00Z",
            Some("2026-08-28T23:59:00Z"),
            ALL,
            None,
            None,
        ));
        let sat = parsed(&sched(
            "b",
            1,
            "2026-08-01T00:00:00Z",
            None,
            &[6],
            None,
            None,
        ));
        assert_eq!(
            pair_overlap(&a, &sat, chrono_tz::UTC),
            None,
            "no Saturday inside Thu–Fri"
        );
        let fri = parsed(&sched(
            "c",
            1,
            "2026-08-01T00:00:00Z",
            None,
            &[5],
            Some(600),
            Some(660),
        ));
        assert_eq!(
            pair_overlap(&a, &fri, chrono_tz::UTC),
            Some((5 * 1440 + 600, 5 * 1440 + 660))
        );
        // A week or longer: every weekday counts.
        let long = parsed(&sched(
            "d",
            1,
            "2026-08-27T00:00:00Z",
            Some("2026-09-03T00:00:00Z"),
            ALL,
            None,
            None,
        ));
        assert!(pair_overlap(&long, &sat, chrono_tz::UTC).is_some());
    }

    #[test]
    fn short_date_intersection_uses_the_display_time_zone() {
        // 2026-08-29T23:30Z is Saturday 23:30 in UTC but Sunday 00:30 in London (BST); the range ends Sunday.
        let a = parsed(&sched(
            "a",
            1,
            "2026-08-29T23:30:00Z",
            Some("2026-08-30T20:00:00Z"),
            ALL,
            None,
            None,
        ));
        let sat = parsed(&sched(
            "b",
            1,
            "2026-08-01T00:00:00Z",
            None,
            &[6],
            None,
            None,
        ));
        assert!(
            pair_overlap(&a, &sat, chrono_tz::UTC).is_some(),
            "UTC dates include Saturday"
        );
        assert_eq!(
            pair_overlap(&a, &sat, chrono_tz::Europe::London),
            None,
            "London dates are Sunday only"
        );
    }

    #[test]
    fn clip_keeps_the_in_range_part_of_a_window_crossing_midnight() {
        let iv = vec![(6 * 1440 + 1320, 7 * 1440 + 120)]; // Sat 22:00 – Sun 02:00
        let sun = 1u8;
        assert_eq!(clip_to_days(&iv, sun), vec![(7 * 1440, 7 * 1440 + 120)]);
        let both = 1u8 | 1 << 6;
        assert_eq!(clip_to_days(&iv, both), iv);
        let mon_tue = vec![(1440 + 600, 1440 + 700), (2 * 1440 + 600, 2 * 1440 + 700)];
        assert_eq!(
            clip_to_days(&mon_tue, 1 << 2),
            vec![(2 * 1440 + 600, 2 * 1440 + 700)],
            "other weekdays are dropped"
        );
    }
}
