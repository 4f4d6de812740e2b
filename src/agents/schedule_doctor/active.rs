//! 6.4.2 active schedules: the three checks in order, first match decides ([`check_active`]): `past_end`, then
//! `broken_refs` (deleted playlist), then `no_target`. Pure; `now` is passed in (the run's start).

use super::targeting::EntitySets;
use super::{broken_refs, no_target, past_end};
use crate::agents::entities::{Schedule, TsField};
use chrono::{DateTime, Utc};

pub use super::no_target::MissingTarget;

/// The first matching fault of an active schedule (agents.md 6.4.2): each ends in one deactivation and one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveFault {
    /// Check 1: `endDate` < now (the end date as written).
    PastEnd {
        /// `endDate` as written (an ISO timestamp).
        end: String,
    },
    /// Check 2: `playlistId` not in the playlist set (`None` = no playlist id at all).
    DeletedPlaylist {
        /// The schedule's `playlistId`; `None` when missing or empty.
        playlist_id: Option<String>,
    },
    /// Check 3: no target, or the named display/group does not exist (`reason` says which).
    NoTarget {
        /// E.g. `its display <id> does not exist`, `it has neither a displayId nor a displayGroupId`.
        reason: String,
        /// The target missing from its list (`None` when the schedule names no target): its absence is confirmed by
        /// a direct read answering 404 before the deactivation (agents.md 6.0, 6.4.2).
        missing: Option<MissingTarget>,
    },
}

impl ActiveFault {
    /// The incident type.
    pub fn kind(&self) -> &'static str {
        match self {
            ActiveFault::PastEnd { .. } => "past_end_schedule",
            ActiveFault::DeletedPlaylist { .. } => "deleted_playlist_schedule",
            ActiveFault::NoTarget { .. } => "no_target_schedule",
        }
    }

    /// Short reason for the fix notification and messages.
    pub fn reason(&self) -> String {
        match self {
            ActiveFault::PastEnd { end } => format!("ended {end}"),
            ActiveFault::DeletedPlaylist {
                playlist_id: Some(p),
            } => format!("its playlist {p} no longer exists"),
            ActiveFault::DeletedPlaylist { playlist_id: None } => "it has no playlist".into(),
            ActiveFault::NoTarget { reason, .. } => reason.clone(),
        }
    }
}

/// Verdict of 6.4.2 on one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActiveVerdict {
    /// `isActive !== true`: nothing to judge (its incidents resolve with evidence).
    Inactive,
    /// One of the three checks matched.
    Fault(ActiveFault),
    /// Active and none of the checks matched (so not ended, if the end is known). `end_known` is false when
    /// `endDate` is unparseable: check 1 was not examined.
    Healthy {
        /// False when `endDate` is unparseable (check 1 and 6.4.3 not examined).
        end_known: bool,
    },
    /// Active, not past its end, but a reference field is malformed (the field's name): checks 2–3 not examined.
    RefsUnknown(&'static str),
}

/// Checks 1–3 of agents.md 6.4.2 in order, first match decides. `sets` is `None` when the scan is incomplete: then
/// only check 1 runs (relational checks need complete lists, 6.0). An unparseable `endDate` skips check 1 only.
pub fn check_active(
    sch: &Schedule,
    now: DateTime<Utc>,
    sets: Option<&EntitySets<'_>>,
) -> ActiveVerdict {
    if !sch.active {
        return ActiveVerdict::Inactive;
    }
    if let Some(end) = past_end::check(sch, now) {
        return ActiveVerdict::Fault(ActiveFault::PastEnd { end });
    }
    let end_known = sch.end != TsField::Unparseable;
    if let Some(field) = sch.malformed_ref {
        return ActiveVerdict::RefsUnknown(field);
    }
    let Some(sets) = sets else {
        return ActiveVerdict::Healthy { end_known };
    };
    if let Some(playlist_id) = broken_refs::deleted_playlist(sch, sets) {
        return ActiveVerdict::Fault(ActiveFault::DeletedPlaylist { playlist_id });
    }
    match no_target::check(sch, sets) {
        Some((reason, missing)) => ActiveVerdict::Fault(ActiveFault::NoTarget { reason, missing }),
        None => ActiveVerdict::Healthy { end_known },
    }
}

/// 6.4.2 over every schedule (positions in the schedule list).
#[derive(Debug, Default)]
pub struct ActiveChecks {
    /// Active schedules with their first fault, in list order.
    pub faults: Vec<(usize, ActiveFault)>,
    /// Active schedules without a fault, in list order.
    pub remaining: Vec<usize>,
    /// Those of `remaining` whose `endDate` is unparseable (check 1 and 6.4.3 not examined).
    pub end_unknown: Vec<usize>,
    /// Active schedules with a malformed reference field (the field): checks 2–3, 6.4.3 and overlaps not examined;
    /// not in `remaining`.
    pub refs_unknown: Vec<(usize, &'static str)>,
    /// Active schedules (`faults` + `remaining`).
    pub active: usize,
}

/// Runs [`check_active`] over all schedules (one pass).
pub fn check_schedules(
    schedules: &[Schedule],
    now: DateTime<Utc>,
    sets: Option<&EntitySets<'_>>,
) -> ActiveChecks {
    let mut c = ActiveChecks::default();
    for (i, sch) in schedules.iter().enumerate() {
        match check_active(sch, now, sets) {
            ActiveVerdict::Inactive => {}
            ActiveVerdict::Fault(f) => {
                c.active += 1;
                c.faults.push((i, f));
            }
            ActiveVerdict::Healthy { end_known } => {
                c.active += 1;
                if !end_known {
                    c.end_unknown.push(i);
                }
                c.remaining.push(i);
            }
            ActiveVerdict::RefsUnknown(field) => {
                c.active += 1;
                c.refs_unknown.push((i, field));
            }
        }
    }
    c
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::entities::{Display, FromItem, PlaylistSummary};
    use crate::agents::schedule_doctor::test_support::{ALL, at, display, records, sched};
    use serde_json::{Value, json};

    fn chk(v: &Value, now: DateTime<Utc>, sets: Option<&EntitySets>) -> ActiveVerdict {
        check_active(&Schedule::from_item(v), now, sets)
    }

    #[test]
    fn first_matching_check_decides_and_disabled_display_is_a_target() {
        let pl = records(&[json!({"id":"p1"})]);
        let ds = records(&[json!({"id":"d1","isDisabled":true})]);
        let gs = records(&[json!({"id":"g1","displays":[]})]);
        let sets = EntitySets::new(&pl, &ds, &gs);
        let now = at("2026-08-26T12:00:00Z");
        let mut s1 = sched(
            "a",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        s1["playlistId"] = json!("gone");
        s1["displayId"] = json!("nope");
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "past_end_schedule");
        s1["endDate"] = Value::Null;
        assert_eq!(
            chk(&s1, now, Some(&sets)).kind_str(),
            "deleted_playlist_schedule"
        );
        s1["playlistId"] = json!("p1");
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "no_target_schedule");
        s1["displayId"] = json!("d1");
        assert_eq!(
            chk(&s1, now, Some(&sets)),
            ActiveVerdict::Healthy { end_known: true },
            "a disabled but existing display is a target"
        );
        s1["displayId"] = Value::Null;
        s1["displayGroupId"] = json!("g1");
        assert_eq!(
            chk(&s1, now, Some(&sets)),
            ActiveVerdict::Healthy { end_known: true }
        );
        s1["displayGroupId"] = json!("g-missing");
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "no_target_schedule");
        s1["displayGroupId"] = Value::Null;
        assert_eq!(chk(&s1, now, Some(&sets)).kind_str(), "no_target_schedule");
        s1["isActive"] = json!(false);
        assert_eq!(chk(&s1, now, Some(&sets)), ActiveVerdict::Inactive);
    }

    #[test]
    fn incomplete_scan_runs_only_check_one_and_unparseable_end_is_unknown() {
        let now = at("2026-08-26T12:00:00Z");
        let mut s1 = sched(
            "a",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-26T11:59:59Z"),
            ALL,
            None,
            None,
        );
        s1["playlistId"] = json!("gone");
        assert_eq!(chk(&s1, now, None).kind_str(), "past_end_schedule");
        s1["endDate"] = json!("2026-08-26T12:00:00Z");
        assert_eq!(
            chk(&s1, now, None),
            ActiveVerdict::Healthy { end_known: true },
            "end == now is not past"
        );
        s1["endDate"] = json!("next tuesday");
        assert_eq!(
            chk(&s1, now, None),
            ActiveVerdict::Healthy { end_known: false }
        );
    }

    impl ActiveVerdict {
        fn kind_str(&self) -> &'static str {
            match self {
                ActiveVerdict::Fault(f) => f.kind(),
                ActiveVerdict::Inactive => "inactive",
                ActiveVerdict::Healthy { .. } => "healthy",
                ActiveVerdict::RefsUnknown(_) => "refs unknown",
            }
        }
    }

    #[test]
    fn check_schedules_partitions_faults_healthy_and_unknown_ends() {
        let now = at("2026-08-26T12:00:00Z");
        let mut past = sched(
            "a",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        past["playlistId"] = json!("gone");
        let ok = sched("b", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        let odd_end = sched(
            "c",
            0,
            "2026-01-01T00:00:00Z",
            Some("someday"),
            ALL,
            None,
            None,
        );
        let mut inactive = sched(
            "d",
            0,
            "2026-01-01T00:00:00Z",
            Some("2026-08-01T00:00:00Z"),
            ALL,
            None,
            None,
        );
        inactive["isActive"] = json!(false);
        let mut orphan = sched("e", 0, "2026-01-01T00:00:00Z", None, ALL, None, None);
        orphan["playlistId"] = json!("gone");
        let scheds: Vec<Schedule> = records(&[past, ok, odd_end, inactive, orphan]);
        let pl: Vec<PlaylistSummary> = records(&[json!({"id":"p1","itemCount":1})]);
        let ds: Vec<Display> = records(&[display("d1", "UTC", false)]);
        let sets = EntitySets::new(&pl, &ds, &[]);
        let c = check_schedules(&scheds, now, Some(&sets));
        let kinds: Vec<(usize, &str)> = c.faults.iter().map(|(i, f)| (*i, f.kind())).collect();
        assert_eq!(
            kinds,
            vec![(0, "past_end_schedule"), (4, "deleted_playlist_schedule")]
        );
        assert_eq!(c.remaining, vec![1, 2]);
        assert_eq!(c.end_unknown, vec![2]);
        assert_eq!(c.active, 4);
        let partial = check_schedules(&scheds, now, None);
        assert_eq!(
            partial.faults.len(),
            1,
            "an incomplete scan runs check 1 only"
        );
    }
}
