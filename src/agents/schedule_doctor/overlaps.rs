//! 6.4.3 equal-priority overlaps per enabled display: the sweep ([`find_overlaps`]), the pairs reported once across
//! displays, and for the run the `schedule_overlap` incidents with the prior ones whose verdict is unknown.

use super::overlap_window::{OverlapSchedule, pair_overlap};
use super::targeting::{EntitySets, TargetIndex};
use super::{CompleteInputs, Run};
use crate::agents::entities::{Display, FastMap, Schedule, TsField};
use crate::agents::{AgentContext, common};
use crate::model::Severity;
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// One overlapping pair, reported once across displays (agents.md 6.4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlapPair {
    /// `<idA>+<idB>`, ids in ascending byte order.
    pub key: String,
    /// (id, name) of the first schedule in key order.
    pub a: (String, String),
    /// (id, name) of the second schedule.
    pub b: (String, String),
    /// The shared priority.
    pub priority: i64,
    /// Labels of the first 5 enabled displays where they overlap.
    pub displays: Vec<String>,
    /// How many enabled displays they overlap on.
    pub display_count: usize,
    /// First overlapping window on the first display, e.g. `Sat 09:00–18:00 (Europe/London, on Lobby)`.
    pub window: String,
}

impl OverlapPair {
    /// The incident message: both schedules (name, id), the priority, ≤ 5 displays and the first window.
    pub fn message(&self) -> String {
        let more = self.display_count.saturating_sub(self.displays.len());
        format!(
            "Schedules \"{}\" ({}) and \"{}\" ({}) have the same priority {} and overlap on {} enabled display(s): \
             {}{}; first overlapping window {}",
            self.a.1,
            self.a.0,
            self.b.1,
            self.b.0,
            self.priority,
            self.display_count,
            self.displays.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            self.window
        )
    }
}

/// The result of the overlap sweep over all enabled displays.
#[derive(Debug, Default)]
pub struct OverlapResult {
    /// Pairs by key (sorted).
    pub pairs: BTreeMap<String, OverlapPair>,
    /// Comparisons made (date-overlapping pairs whose weekly windows were intersected).
    pub comparisons: u64,
    /// Displays (ids) where a schedule hit `OPS_OVERLAP_MAX_COMPARISONS`.
    pub capped_displays: Vec<String>,
    /// Ids of the schedules of capped displays: their prior overlap incidents are not examined.
    pub capped_schedules: HashSet<String>,
}

/// Builds a pair key: the two ids in ascending byte order joined by `+`.
pub fn pair_key(a: &str, b: &str) -> String {
    if a.as_bytes() <= b.as_bytes() {
        format!("{a}+{b}")
    } else {
        format!("{b}+{a}")
    }
}

/// A pair found during the sweep (schedule positions in key order), before its strings are built.
struct PairAcc {
    a: u32,
    b: u32,
    priority: i64,
    displays: Vec<u32>,
    display_count: usize,
    /// First display, its window and zone.
    first: (u32, i64, i64, Tz),
}

/// The overlap sweep of agents.md 6.4.3 over the `enabled` displays (positions in `displays`): per display and
/// priority, the reaching schedules (from `index`, parsed in `parsed` by schedule position; `None` entries are
/// skipped, their verdicts being unexamined) sorted by start date; a sweep keeps those whose end (open = never) is ≥
/// the current start, so only date-overlapping pairs are compared; at most `cap` comparisons per schedule and display
/// (further ones are skipped and the display is capped). O(n log n) per display plus the compared pairs; strings are
/// built only for the pairs found.
pub fn find_overlaps(
    schedules: &[Schedule],
    displays: &[Display],
    enabled: &[u32],
    index: &TargetIndex,
    parsed: &[Option<OverlapSchedule>],
    cap: usize,
) -> OverlapResult {
    let mut r = OverlapResult::default();
    let mut found: FastMap<(u32, u32), PairAcc> = FastMap::default();
    let mut scratch = Scratch::default();
    for &di in enabled {
        let reach = index.for_display(di);
        if reach.len() < 2 {
            continue;
        }
        let d = &displays[di as usize];
        let (tz, _) = d.tz();
        let capped = sweep_display(
            schedules,
            (di, tz),
            reach,
            parsed,
            cap,
            &mut scratch,
            &mut found,
            &mut r.comparisons,
        );
        if capped {
            r.capped_displays.push(d.id.to_string());
            for &i in reach {
                if let Some(Some(p)) = parsed.get(i as usize) {
                    r.capped_schedules
                        .insert(schedules[p.ix as usize].id.to_string());
                }
            }
        }
    }
    for (_, p) in found {
        let pair = build_pair(schedules, displays, p);
        r.pairs.insert(pair.key.clone(), pair);
    }
    r
}

/// Buffers of the per-display sweep, reused across displays.
#[derive(Default)]
struct Scratch {
    /// Positions (in the sorted list) of the schedules whose dates may still overlap the current one.
    active: Vec<usize>,
    /// Comparisons made per schedule of the sorted list.
    counts: Vec<usize>,
}

/// The sweep on one display `(position, zone)` over the schedules reaching it: sorted by priority, start and id;
/// within one priority, each schedule is compared with those whose end (open = never) is ≥ its start, at most `cap`
/// comparisons per schedule. Found pairs accumulate in `found`; returns whether the cap was hit.
#[allow(clippy::too_many_arguments)]
fn sweep_display(
    schedules: &[Schedule],
    (di, tz): (u32, Tz),
    reach: &[u32],
    parsed: &[Option<OverlapSchedule>],
    cap: usize,
    scratch: &mut Scratch,
    found: &mut FastMap<(u32, u32), PairAcc>,
    comparisons: &mut u64,
) -> bool {
    let id = |ix: u32| schedules[ix as usize].id.as_bytes();
    let mut list: Vec<&OverlapSchedule> = reach
        .iter()
        .filter_map(|&i| parsed.get(i as usize)?.as_ref())
        .collect();
    list.sort_by(|x, y| (x.priority, x.start, id(x.ix)).cmp(&(y.priority, y.start, id(y.ix))));
    let Scratch { active, counts } = scratch;
    counts.clear();
    counts.resize(list.len(), 0);
    let mut capped = false;
    let mut g0 = 0;
    while g0 < list.len() {
        let prio = list[g0].priority;
        let mut g1 = g0;
        while g1 < list.len() && list[g1].priority == prio {
            g1 += 1;
        }
        active.clear();
        for c in g0..g1 {
            let cur = list[c];
            active.retain(|&t| list[t].end.is_none_or(|e| e >= cur.start));
            for &t in active.iter() {
                if counts[c] >= cap || counts[t] >= cap {
                    capped = true;
                    continue;
                }
                counts[c] += 1;
                counts[t] += 1;
                *comparisons += 1;
                let other = list[t];
                let Some((ws, we)) = pair_overlap(cur, other, tz) else {
                    continue;
                };
                let (a, b) = if id(cur.ix) <= id(other.ix) {
                    (cur.ix, other.ix)
                } else {
                    (other.ix, cur.ix)
                };
                let p = found.entry((a, b)).or_insert_with(|| PairAcc {
                    a,
                    b,
                    priority: prio,
                    displays: Vec::new(),
                    display_count: 0,
                    first: (di, ws, we, tz),
                });
                p.display_count += 1;
                if p.displays.len() < 5 {
                    p.displays.push(di);
                }
            }
            active.push(c);
        }
        g0 = g1;
    }
    capped
}

/// The reported pair with its strings: names, the first 5 display labels and the first window with its zone.
fn build_pair(schedules: &[Schedule], displays: &[Display], p: PairAcc) -> OverlapPair {
    let (sa, sb) = (&schedules[p.a as usize], &schedules[p.b as usize]);
    let named = |s: &Schedule| {
        (
            s.id.to_string(),
            s.name.as_deref().unwrap_or_default().to_string(),
        )
    };
    let (fd, ws, we, tz) = p.first;
    OverlapPair {
        key: pair_key(&sa.id, &sb.id),
        a: named(sa),
        b: named(sb),
        priority: p.priority,
        displays: p
            .displays
            .iter()
            .map(|&d| displays[d as usize].label().to_string())
            .collect(),
        display_count: p.display_count,
        window: format!(
            "{} ({}{}, on {})",
            common::describe_window(ws, we),
            tz.name(),
            if displays[fd as usize].tz().1 {
                " as a fallback: the display's time zone is missing or invalid"
            } else {
                ""
            },
            displays[fd as usize].label()
        ),
    }
}

/// The overlap check of 6.4.3 over the remaining active schedules (positions): parses them (those with an
/// unparseable end or malformed fields are skipped), indexes their targets and sweeps the enabled displays. Returns
/// the result and the positions of schedules whose overlap verdicts are not examined (unparseable fields, a group
/// with unknown membership); the ids of capped schedules are in the result.
pub fn overlaps(
    schedules: &[Schedule],
    displays: &[Display],
    enabled: &[u32],
    remaining: &[usize],
    sets: &EntitySets<'_>,
    cap: usize,
) -> (OverlapResult, Vec<usize>) {
    let index = TargetIndex::build(schedules, remaining.iter().copied(), sets);
    let mut parsed: Vec<Option<OverlapSchedule>> = vec![None; schedules.len()];
    let mut blind = Vec::new();
    for &i in remaining {
        let sch = &schedules[i];
        let p = if sch.end == TsField::Unparseable {
            None
        } else {
            OverlapSchedule::parse(i, sch)
        };
        if p.is_none() {
            blind.push(i);
        }
        parsed[i] = p;
    }
    blind.extend(index.unknown_membership.iter().copied());
    let r = find_overlaps(schedules, displays, enabled, &index, &parsed, cap);
    (r, blind)
}

/// 6.4.3 for the run: raises `schedule_overlap` per pair and marks unexamined the prior overlap incidents of
/// schedules whose verdicts were not reached (failed deactivation, malformed fields, unknown membership, the cap);
/// records the sweep's counts in the stats.
pub(super) fn raise_for_run(
    r: &mut Run<'_>,
    inp: &CompleteInputs<'_>,
    unexamined: &mut HashSet<String>,
    stats: &mut Value,
) {
    let ctx = r.ctx;
    let schedules = &inp.obs.schedules.items;
    let displays = &inp.obs.displays.items;
    let cap = ctx.cfg.entity.overlap_max_comparisons;
    let (ov, blind) = overlaps(
        schedules,
        displays,
        inp.enabled,
        inp.remaining,
        inp.sets,
        cap,
    );
    let mut overlap_blind: HashSet<&str> = inp.unremediated.iter().map(String::as_str).collect();
    overlap_blind.extend(blind.iter().map(|&i| &*schedules[i].id));
    if !ov.capped_displays.is_empty() {
        ctx.warn(format!(
            "{} display(s) hit OPS_OVERLAP_MAX_COMPARISONS ({cap}); their overlap verdicts are not examined",
            ov.capped_displays.len(),
        ));
    }
    overlap_blind.extend(ov.capped_schedules.iter().map(String::as_str));
    for pair in ov.pairs.values() {
        let inc = ctx.incident(
            "schedule_overlap",
            Severity::Warning,
            "schedule",
            &pair.key,
            pair.message(),
            "Give one schedule a higher priority, or change their dates, weekdays or time windows so they no longer \
             intersect",
        );
        r.note(format!(
            "{}: {}",
            crate::model::kind_label("schedule_overlap"),
            pair.message()
        ));
        r.o.raise(inc);
    }
    for (id, prior) in ctx.priors() {
        if prior.kind == "schedule_overlap" && prior.is_active() {
            let blind = prior
                .target_id
                .split('+')
                .any(|sid| overlap_blind.contains(sid));
            if blind && !ov.pairs.contains_key(&prior.target_id) {
                unexamined.insert(id);
            }
        }
    }
    if let Value::Object(m) = stats {
        m.insert("overlapComparisons".into(), json!(ov.comparisons));
        m.insert(
            "overlapCappedDisplays".into(),
            json!(ov.capped_displays.len()),
        );
        m.insert("overlapPairs".into(), json!(ov.pairs.len()));
    }
}

/// Warns about each remaining active schedule whose `daysOfWeek`/`startTime`/`endTime` are malformed: its overlaps
/// and coverage are not examined (agents.md 6.4.3).
pub(super) fn warn_malformed_weeks(
    ctx: &AgentContext,
    schedules: &[Schedule],
    remaining: &[usize],
) {
    for &i in remaining {
        if schedules[i].week.is_none() {
            ctx.warn(format!(
                "schedule {}: daysOfWeek/startTime/endTime malformed; its overlaps and coverage are not examined",
                schedules[i].id
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::entities::DisplayGroup;
    use crate::agents::schedule_doctor::test_support::{ALL, display, records, sched};
    use chrono::{Duration, TimeZone, Utc};
    use serde_json::{Value, json};

    fn run_overlaps(
        scheds: &[Value],
        displays: &[Value],
        groups: &[Value],
        cap: usize,
    ) -> OverlapResult {
        let scheds: Vec<Schedule> = records(scheds);
        let displays: Vec<Display> = records(displays);
        let groups: Vec<DisplayGroup> = records(groups);
        let sets = EntitySets::new(&[], &displays, &groups);
        let idx = TargetIndex::build(&scheds, 0..scheds.len(), &sets);
        let parsed: Vec<Option<OverlapSchedule>> = scheds
            .iter()
            .enumerate()
            .map(|(i, s)| OverlapSchedule::parse(i, s))
            .collect();
        let enabled: Vec<u32> = (0..displays.len() as u32)
            .filter(|&i| displays[i as usize].enabled)
            .collect();
        find_overlaps(&scheds, &displays, &enabled, &idx, &parsed, cap)
    }

    #[test]
    fn equal_priority_overlaps_are_reported_once_across_displays_and_different_priorities_never() {
        let mut g1 = sched(
            "zz",
            20,
            "2026-08-01T00:00:00Z",
            None,
            ALL,
            Some(480),
            Some(1200),
        );
        g1["displayId"] = Value::Null;
        g1["displayGroupId"] = json!("g");
        let mut g2 = sched(
            "aa",
            20,
            "2026-08-10T00:00:00Z",
            Some("2026-09-20T00:00:00Z"),
            &[6],
            Some(540),
            Some(1080),
        );
        g2["displayId"] = Value::Null;
        g2["displayGroupId"] = json!("g");
        let other_prio = sched("mm", 21, "2026-08-01T00:00:00Z", None, ALL, None, None);
        let groups = vec![
            json!({"id":"g","displays":[{"displayId":"d1"},{"displayId":"d2"},{"displayId":"d3"}]}),
        ];
        let displays = vec![
            display("d1", "UTC", false),
            display("d2", "Europe/London", false),
            display("d3", "UTC", true),
        ];
        let (c1, c2) = (g1.clone(), g2.clone());
        let r = run_overlaps(&[g1, g2, other_prio], &displays, &groups, 50);
        assert_eq!(r.pairs.len(), 1);
        let p = r.pairs.get("aa+zz").expect("key in ascending byte order");
        assert_eq!(p.display_count, 2, "the disabled display is excluded");
        assert_eq!(p.priority, 20);
        let m = p.message();
        assert!(
            m.contains("\"S aa\" (aa)") && m.contains("\"S zz\" (zz)") && m.contains("priority 20"),
            "{m}"
        );
        assert!(m.contains("Sat 09:00–18:00"), "{m}");
        assert!(m.contains("Screen d1") && !m.contains("Screen d3"), "{m}");
        assert!(
            m.contains("(UTC, on Screen d1)"),
            "a real UTC zone is not a fallback: {m}"
        );
        // A display without a valid time zone is judged in UTC, and the message says so.
        let displays = vec![display("d1", "Not/AZone", false)];
        let r = run_overlaps(&[c1, c2], &displays, &groups, 50);
        let m = r.pairs.get("aa+zz").expect("pair").message();
        assert!(
            m.contains(
                "(UTC as a fallback: the display's time zone is missing or invalid, on Screen d1)"
            ),
            "{m}"
        );
    }

    #[test]
    fn overlap_cap_marks_the_display_and_its_schedules() {
        let scheds: Vec<Value> = (0..5)
            .map(|i| {
                sched(
                    &format!("s{i}"),
                    1,
                    "2026-08-01T00:00:00Z",
                    None,
                    ALL,
                    None,
                    None,
                )
            })
            .collect();
        let displays = vec![display("d1", "UTC", false)];
        let full = run_overlaps(&scheds, &displays, &[], 50);
        assert_eq!(full.pairs.len(), 10);
        assert!(full.capped_displays.is_empty());
        let capped = run_overlaps(&scheds, &displays, &[], 2);
        assert!(capped.pairs.len() < 10);
        assert_eq!(capped.capped_displays, vec!["d1".to_string()]);
        assert_eq!(capped.capped_schedules.len(), 5);
        assert!(capped.comparisons <= 5);
    }

    #[test]
    fn sweep_only_compares_date_overlapping_schedules() {
        let scheds: Vec<Value> = (0..20)
            .map(|i| {
                let start =
                    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(10 * i);
                let end = start + Duration::days(5);
                sched(
                    &format!("s{i:02}"),
                    1,
                    &crate::model::ts(start),
                    Some(&crate::model::ts(end)),
                    ALL,
                    None,
                    None,
                )
            })
            .collect();
        let r = run_overlaps(&scheds, &[display("d1", "UTC", false)], &[], 50);
        assert_eq!(r.comparisons, 0);
        assert!(r.pairs.is_empty());
    }
}
