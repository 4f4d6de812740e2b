//! 6.4.3 empty playlists: remaining active, not-ended schedules whose playlist has 0 items (agents.md 6.4.3, 9.18).

use super::targeting::EntitySets;
use super::{AGENT, CompleteInputs, Run, SCHEDULES};
use crate::agents::entities::{PlaylistSummary, Schedule, TsField};
use crate::model::{Severity, incident_id};
use std::collections::HashSet;

/// The item count of a schedule's playlist (agents.md 6.4.3, 9.18): the walk's `itemCount`, else the schedule's
/// embedded `playlist._count.items`, else `None` (not examined).
pub fn playlist_item_count(walk_playlist: Option<&PlaylistSummary>, sch: &Schedule) -> Option<u64> {
    walk_playlist
        .and_then(|p| p.item_count)
        .or(sch.embedded_item_count)
}

/// 6.4.3 empty playlists over the remaining active schedules with a known end.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EmptyPlaylists {
    /// Schedules (positions) whose playlist has 0 items.
    pub findings: Vec<usize>,
    /// Schedules whose item count is unknown (not examined).
    pub unknown: Vec<usize>,
}

/// Finds the remaining active, not-ended schedules on playlists with 0 items (schedules with an unparseable end
/// are skipped: not examined).
pub fn empty_playlists(
    schedules: &[Schedule],
    remaining: &[usize],
    sets: &EntitySets<'_>,
) -> EmptyPlaylists {
    let mut e = EmptyPlaylists::default();
    for &i in remaining {
        let sch = &schedules[i];
        if sch.end == TsField::Unparseable {
            continue;
        }
        let pl = sets.playlist(sch.playlist_id.as_deref().unwrap_or_default());
        match playlist_item_count(pl, sch) {
            None => e.unknown.push(i),
            Some(0) => e.findings.push(i),
            Some(_) => {}
        }
    }
    e
}

/// 6.4.3 for the run: raises `empty_playlist_schedule` for each finding; an unknown item count leaves it unexamined.
pub(super) fn raise_for_run(
    r: &mut Run<'_>,
    inp: &CompleteInputs<'_>,
    unexamined: &mut HashSet<String>,
) {
    let ctx = r.ctx;
    let schedules = &inp.obs.schedules.items;
    let empty = empty_playlists(schedules, inp.remaining, inp.sets);
    for &i in &empty.unknown {
        unexamined.insert(incident_id(
            AGENT,
            "empty_playlist_schedule",
            &schedules[i].id,
        ));
    }
    for &i in &empty.findings {
        let sch = &schedules[i];
        let sid = &*sch.id;
        let name = sch.name_or_id();
        let pid = sch.playlist_id.as_deref().unwrap_or_default();
        let pname = inp
            .sets
            .playlist(pid)
            .and_then(|p| p.name.as_deref())
            .unwrap_or(pid);
        let until = sch
            .end_text
            .as_deref()
            .map(|e| format!("until {e}"))
            .unwrap_or("with no end date".into());
        let inc = ctx.incident(
            "empty_playlist_schedule",
            Severity::Warning,
            "schedule",
            sid,
            format!(
                "Schedule \"{name}\" ({sid}) is active {until} but its playlist \"{pname}\" ({pid}) has 0 items: \
                 its displays show nothing while it applies"
            ),
            format!(
                "Add content to playlist \"{pname}\", point the schedule at a playlist with content, or \
                 deactivate it (PATCH {SCHEDULES}/{sid} {{\"isActive\":false}})"
            ),
        );
        r.note(format!(
            "{} \"{name}\" ({sid}): playlist \"{pname}\" has 0 items",
            crate::model::kind_label("empty_playlist_schedule")
        ));
        r.o.raise(inc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::entities::FromItem;
    use serde_json::{Value, json};

    #[test]
    fn item_count_comes_from_the_walk_then_the_embedded_count_else_unknown() {
        let pl = |v: Value| PlaylistSummary::from_item(&v);
        let sc = |v: &Value| Schedule::from_item(v);
        let sch = json!({"playlist":{"_count":{"items":3}}});
        assert_eq!(
            playlist_item_count(Some(&pl(json!({"itemCount":0}))), &sc(&sch)),
            Some(0)
        );
        assert_eq!(
            playlist_item_count(Some(&pl(json!({"items":[]}))), &sc(&sch)),
            Some(3)
        );
        assert_eq!(
            playlist_item_count(None, &sc(&json!({"playlist":{"_count":{"schedules":1}}}))),
            None
        );
    }
}
