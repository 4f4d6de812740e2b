//! 6.4.4 coverage gaps: enabled displays without `currentPlaylistId` and with no schedule active now (in the
//! display's time zone) get the fallback playlist (agents.md 6.4.4).

use super::fallback::Fallback;
use super::remediate::{Fix, named};
use super::targeting::{EntitySets, TargetIndex};
use super::{AGENT, CompleteInputs, Run};
use crate::agents::entities::{CurrentPlaylist, Display, Schedule};
use crate::agents::{AgentContext, common, resolved};
use crate::model::{Incident, Severity, incident_id};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Coverage verdict of a display (agents.md 6.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// A schedule is active now for it.
    Covered,
    /// No schedule active now.
    Gap,
    /// Cannot be decided (unknown group membership or unparseable fields of a schedule that might apply).
    Unknown,
}

/// Whether a display without `currentPlaylistId` has no schedule active now (agents.md 6.0 "active now for a
/// display", in the display's time zone). `reaching` are the schedules that target it and are still active after
/// this run's deactivations; `maybe_reaching` those of groups with unknown membership. A direct hit decides
/// `Covered` even when membership elsewhere is unknown.
pub fn coverage<'s>(
    display: &Display,
    reaching: impl IntoIterator<Item = &'s Schedule>,
    maybe_reaching: &[&Schedule],
    now: DateTime<Utc>,
) -> Coverage {
    let (tz, _) = display.tz();
    let minute = std::cell::OnceCell::new();
    let m = || *minute.get_or_init(|| common::week_minute(now, tz));
    let mut unknown = false;
    for sch in reaching {
        match common::schedule_active_at_minute(sch, now, m) {
            Some(true) => return Coverage::Covered,
            Some(false) => {}
            None => unknown = true,
        }
    }
    for sch in maybe_reaching {
        if common::schedule_active_at_minute(sch, now, m) != Some(false) {
            unknown = true;
        }
    }
    if unknown {
        Coverage::Unknown
    } else {
        Coverage::Gap
    }
}

/// The coverage verdict of one enabled display without `currentPlaylistId` that needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayCoverage {
    /// Position in the display list.
    pub display: u32,
    /// Covered now, a gap, or undecidable.
    pub verdict: Coverage,
    /// A deleted-playlist schedule deactivated this run targeted it: it gets the fallback whatever the verdict.
    pub follow_up: bool,
    /// Active schedules (after this run's deactivations) that target it.
    pub reaching: usize,
}

/// 6.4.4 over the enabled displays.
#[derive(Debug, Default)]
pub struct CoverageVerdicts {
    /// Displays without `currentPlaylistId` whose verdict is a gap or unknown, or that are follow-ups, in list order.
    pub displays: Vec<DisplayCoverage>,
    /// Displays without `currentPlaylistId` judged in UTC because their time zone is missing or invalid.
    pub tz_fallbacks: usize,
    /// Displays without `currentPlaylistId` that a schedule covers now (and that are not follow-ups).
    pub covered: usize,
}

/// Coverage of every enabled display without `currentPlaylistId` (agents.md 6.4.4) after this run's deactivations:
/// `inactive_now[i]` says schedule `i` was deactivated (or planned, or found inactive) this run; `follow_up` are the
/// positions of schedules whose deleted-playlist deactivation succeeded (or is planned): the displays they targeted
/// get the fallback too.
pub fn coverage_verdicts(
    schedules: &[Schedule],
    displays: &[Display],
    enabled: &[u32],
    sets: &EntitySets<'_>,
    inactive_now: &[bool],
    follow_up: &[usize],
    now: DateTime<Utc>,
) -> CoverageVerdicts {
    let still_active = (0..schedules.len())
        .filter(|&i| !inactive_now.get(i).copied().unwrap_or(false) && schedules[i].active);
    let cov_index = TargetIndex::build(schedules, still_active, sets);
    let maybe: Vec<&Schedule> = cov_index
        .unknown_membership
        .iter()
        .map(|&i| &schedules[i])
        .collect();
    let follow_index = TargetIndex::build(schedules, follow_up.iter().copied(), sets);
    let mut out = CoverageVerdicts::default();
    for &di in enabled {
        let d = &displays[di as usize];
        if d.current_playlist == CurrentPlaylist::Set {
            continue;
        }
        let reach = cov_index.for_display(di);
        let verdict = coverage(
            d,
            reach.iter().map(|&i| &schedules[i as usize]),
            &maybe,
            now,
        );
        if d.tz.is_none() {
            out.tz_fallbacks += 1;
        }
        let is_follow_up = follow_index.reaches(di);
        if verdict == Coverage::Covered && !is_follow_up {
            out.covered += 1;
            continue;
        }
        out.displays.push(DisplayCoverage {
            display: di,
            verdict,
            follow_up: is_follow_up,
            reaching: reach.len(),
        });
    }
    out
}

/// 6.4.4 for the run, after this run's deactivations: a `coverage_gap` per enabled display without content and
/// without a schedule active now, remedied with the fallback playlist when it is valid; the displays of a
/// deactivated deleted-playlist schedule get the fallback too (a follow-up, not a finding).
pub(super) async fn raise_for_run(
    r: &mut Run<'_>,
    inp: &CompleteInputs<'_>,
    fallback: &Fallback,
    unexamined: &mut HashSet<String>,
    stats: &mut Value,
) {
    let ctx = r.ctx;
    let now = ctx.started;
    let schedules = &inp.obs.schedules.items;
    let displays = &inp.obs.displays.items;
    let cov = coverage_verdicts(
        schedules,
        displays,
        inp.enabled,
        inp.sets,
        inp.inactive_now,
        inp.follow_up_schedules,
        now,
    );
    let mut assigned_once: HashSet<u32> = HashSet::new();
    let mut gaps = 0usize;
    for dc in &cov.displays {
        let d = &displays[dc.display as usize];
        let did = &*d.id;
        let label = d.label();
        if dc.verdict == Coverage::Unknown {
            unexamined.insert(incident_id(AGENT, "coverage_gap", did));
            if !dc.follow_up {
                continue;
            }
        }
        let gap = dc.verdict == Coverage::Gap;
        let mut inc = gap_incident(ctx, d, dc, now);
        if gap {
            gaps += 1;
        }
        let fix = match fallback {
            Fallback::Valid { id, name, .. } => {
                if !assigned_once.insert(dc.display) {
                    continue;
                }
                Some(r.assign(d, id, name, &mut inc).await)
            }
            _ => {
                inc.remediation = no_fallback_remediation(fallback, inp.org_id);
                None
            }
        };
        let outcome = match &fix {
            Some(Fix::Verified) => "fallback assigned, verified".to_string(),
            Some(Fix::Planned) => "would assign the fallback (dry run)".to_string(),
            Some(Fix::AlreadyDone(w) | Fix::Refuted(w)) => w.clone(),
            Some(Fix::NotDone) => {
                format!("open: {}", inc.error.as_deref().unwrap_or(&inc.remediation))
            }
            None => "open: no usable fallback playlist".to_string(),
        };
        if !gap {
            // Follow-up of a deleted-playlist deactivation: an assignment, not a coverage finding.
            r.note(format!(
                "fallback for display {} after its deleted-playlist schedule was deactivated: {outcome}",
                named(label, did)
            ));
            continue;
        }
        r.note(format!(
            "{} {}: {outcome}",
            crate::model::kind_label("coverage_gap"),
            named(label, did)
        ));
        settle_gap(r, inc, fix);
    }
    if cov.tz_fallbacks > 0 {
        ctx.info(format!(
            "{} display(s) without content have a missing or invalid timezone: judged in UTC",
            cov.tz_fallbacks
        ));
    }
    if let Value::Object(m) = stats {
        m.insert("coverageGaps".into(), json!(gaps));
    }
}

/// The `coverage_gap` incident of a display, with its local time and zone (the remediation is filled in later).
fn gap_incident(
    ctx: &AgentContext,
    d: &Display,
    dc: &DisplayCoverage,
    now: DateTime<Utc>,
) -> Incident {
    let did = &*d.id;
    let label = d.label();
    let (tz, fell_back) = d.tz();
    let local = now.with_timezone(&tz).format("%a %H:%M");
    ctx.incident(
        "coverage_gap",
        Severity::Warning,
        "display",
        did,
        format!(
            "Display {} is enabled, has no currentPlaylistId and no schedule is active now \
             ({local} {}{}; {} active schedule(s) target it): it has nothing to play",
            named(label, did),
            tz.name(),
            if fell_back {
                ", timezone missing or invalid so UTC"
            } else {
                ""
            },
            dc.reaching
        ),
        String::new(),
    )
}

/// What the operator should do when there is no usable fallback playlist (6.4.1): unconfigured, invalid or unknown.
fn no_fallback_remediation(fallback: &Fallback, org_id: Option<&str>) -> String {
    match fallback {
        Fallback::Unconfigured => format!(
            "No fallback playlist is configured: set the organization's settings.opsFallbackPlaylistId to a \
             playlist with content (PATCH /api/v1/organizations/{} {{\"settings\":{{\"opsFallbackPlaylistId\":\
             \"<playlistId>\"}}}}) or set OPS_FALLBACK_PLAYLIST_ID, or assign a playlist or an always-on \
             schedule to this display",
            org_id.unwrap_or("<organizationId>")
        ),
        Fallback::Invalid { reason, .. } => format!(
            "The configured fallback playlist is unusable ({reason}; see fallback_playlist_invalid): fix \
             settings.opsFallbackPlaylistId or OPS_FALLBACK_PLAYLIST_ID, or assign a playlist or an always-on \
             schedule to this display"
        ),
        Fallback::Unknown(why) => format!(
            "The fallback playlist is unknown this run ({why}); assign a playlist or an always-on schedule \
             to this display, or wait for the next run"
        ),
        Fallback::Valid { .. } => String::new(),
    }
}

/// Raises a gap in its final status: resolved after a verified assignment (the fix notification refers to it),
/// resolved with evidence only when a prior episode is active, else open.
fn settle_gap(r: &mut Run<'_>, inc: Incident, fix: Option<Fix>) {
    let now2 = r.ctx.now();
    match fix {
        Some(Fix::Verified) => {
            let done = resolved(inc, now2);
            if let Some(n) = r.assigned.last_mut() {
                n.incident = Some(done.clone());
            }
            r.o.raise(done);
        }
        Some(Fix::AlreadyDone(_)) => {
            let done = resolved(inc, now2);
            if r.prior_active(&done.id) {
                r.o.raise(done);
            }
        }
        _ => r.o.raise(inc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::entities::{DisplayGroup, FromItem};
    use crate::agents::schedule_doctor::test_support::{ALL, at, display, records, sched};
    use serde_json::{Value, json};

    fn cov(d: &Value, reaching: &[&Value], maybe: &[&Value], now: DateTime<Utc>) -> Coverage {
        let r: Vec<Schedule> = reaching.iter().map(|v| Schedule::from_item(v)).collect();
        let m: Vec<Schedule> = maybe.iter().map(|v| Schedule::from_item(v)).collect();
        let m: Vec<&Schedule> = m.iter().collect();
        coverage(&Display::from_item(d), &r, &m, now)
    }

    #[test]
    fn coverage_is_judged_in_the_display_time_zone() {
        // 2026-08-26T23:30Z: Wednesday 23:30 UTC, Thursday 00:30 in London.
        let now = at("2026-08-26T23:30:00Z");
        let thu = sched("t", 0, "2026-01-01T00:00:00Z", None, &[4], None, None);
        assert_eq!(
            cov(&display("d1", "Europe/London", false), &[&thu], &[], now),
            Coverage::Covered
        );
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&thu], &[], now),
            Coverage::Gap
        );
        assert_eq!(
            cov(&display("d1", "Not/AZone", false), &[&thu], &[], now),
            Coverage::Gap,
            "an invalid zone falls back to UTC"
        );
        let mut ended = sched(
            "e",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&ended], &[], now),
            Coverage::Gap
        );
        ended["endDate"] = json!("garbage");
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&ended], &[], now),
            Coverage::Unknown
        );
    }

    #[test]
    fn overnight_schedule_covers_early_morning_of_the_next_day() {
        // Monday 02:00 UTC; the window is Sunday 22:00 → Monday 06:00.
        let now = at("2026-08-24T02:00:00Z");
        let night = sched(
            "n",
            0,
            "2026-01-01T00:00:00Z",
            None,
            &[0],
            Some(1320),
            Some(360),
        );
        assert_eq!(
            cov(&display("d1", "UTC", false), &[&night], &[], now),
            Coverage::Covered
        );
        let night_sat = sched(
            "n",
            0,
            "2026-01-01T00:00:00Z",
            None,
            &[6],
            Some(1320),
            Some(360),
        );
        // Sunday 03:00 UTC: Saturday's overnight window wraps into Sunday (week shift).
        assert_eq!(
            cov(
                &display("d1", "UTC", false),
                &[&night_sat],
                &[],
                at("2026-08-23T03:00:00Z")
            ),
            Coverage::Covered
        );
    }

    #[test]
    fn coverage_verdicts_follow_this_runs_deactivations_and_flag_follow_ups() {
        let now = at("2026-08-26T12:00:00Z");
        let mut covering = sched("s1", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        covering["displayId"] = json!("d1");
        let mut deleted = sched("s2", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        deleted["displayId"] = json!("d2");
        let mut unknown = sched("s3", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        unknown["displayId"] = Value::Null;
        unknown["displayGroupId"] = json!("gx");
        let scheds: Vec<Schedule> = records(&[covering, deleted, unknown]);
        let mut with_playlist = display("d4", "UTC", false);
        with_playlist["currentPlaylistId"] = json!("p1");
        let ds: Vec<Display> = records(&[
            display("d1", "UTC", false),
            display("d2", "UTC", false),
            display("d3", "Not/AZone", false),
            with_playlist,
        ]);
        let gs: Vec<DisplayGroup> = records(&[json!({"id":"gx"})]);
        let sets = EntitySets::new(&[], &ds, &gs);
        let enabled = [0u32, 1, 2, 3];
        // Nothing deactivated: the unknown-membership group may reach every display.
        let v = coverage_verdicts(&scheds, &ds, &enabled, &sets, &[false; 3], &[], now);
        assert_eq!(v.covered, 2, "d1 and d2 are covered directly");
        assert_eq!(
            v.displays,
            vec![DisplayCoverage {
                display: 2,
                verdict: Coverage::Unknown,
                follow_up: false,
                reaching: 0
            }]
        );
        assert_eq!(v.tz_fallbacks, 1);
        // s2 (deleted playlist) and s3 deactivated this run: d2 is a gap and a follow-up, d3 a gap.
        let v = coverage_verdicts(
            &scheds,
            &ds,
            &enabled,
            &sets,
            &[false, true, true],
            &[1],
            now,
        );
        let got: Vec<(u32, Coverage, bool)> = v
            .displays
            .iter()
            .map(|d| (d.display, d.verdict, d.follow_up))
            .collect();
        assert_eq!(
            got,
            vec![(1, Coverage::Gap, true), (2, Coverage::Gap, false)],
            "a display with a current playlist is never judged"
        );
        assert_eq!(v.covered, 1);
    }

    #[test]
    fn unknown_group_membership_is_kept_apart() {
        let mut g = sched("g1s", 1, "2026-01-01T00:00:00Z", None, ALL, None, None);
        g["displayId"] = Value::Null;
        g["displayGroupId"] = json!("gx");
        let direct = sched("d1s", 1, "2026-01-01T00:00:00Z", None, ALL, None, None);
        let scheds = vec![g, direct];
        let recs: Vec<Schedule> = records(&scheds);
        let groups: Vec<DisplayGroup> = records(&[json!({"id":"gx","name":"no members array"})]);
        let d = display("d1", "UTC", false);
        let displays: Vec<Display> = records(std::slice::from_ref(&d));
        let sets = EntitySets::new(&[], &displays, &groups);
        let idx = TargetIndex::build(&recs, 0..2, &sets);
        assert_eq!(idx.unknown_membership, vec![0]);
        assert_eq!(idx.for_display(0), &[1]);
        let now = at("2026-08-26T12:00:00Z");
        assert_eq!(
            cov(&d, &[], &[&scheds[0]], now),
            Coverage::Unknown,
            "not examined"
        );
        assert_eq!(
            cov(&d, &[&scheds[1]], &[&scheds[0]], now),
            Coverage::Covered,
            "direct coverage decides"
        );
    }
}
