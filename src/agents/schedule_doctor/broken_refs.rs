//! 6.4.2 check 2 and malformed references: an active schedule whose playlist no longer exists is deactivated; one
//! whose reference field is neither a string nor null is not examined (agents.md 6.4.2).

use crate::agents::AgentContext;
use crate::agents::entities::Schedule;
use crate::model::incident_id;
use std::collections::HashSet;

use super::AGENT;
use super::targeting::EntitySets;

/// Check 2: `Some(playlistId)` (`Some(None)` when it has none) when the playlist is missing from the complete
/// playlist list and the schedule does not embed it. An embedded relation in the same answer proves existence:
/// absence from another list alone never decides (a list can be cut short with a consistent total; 6.4.2).
pub(super) fn deleted_playlist(sch: &Schedule, sets: &EntitySets<'_>) -> Option<Option<String>> {
    let playlist = sch.playlist_id.as_deref().filter(|p| !p.is_empty());
    if playlist.is_some_and(|p| sets.has_playlist(p) || sch.embeds_playlist) {
        return None;
    }
    Some(playlist.map(String::from))
}

/// Warns about each active schedule with a malformed reference field and marks its 6.4.2/6.4.3 incidents and its
/// prior overlap incidents (target `<a>+<b>`) unexamined: it is left out of the overlap check too.
pub(super) fn note_unknown_refs(
    ctx: &AgentContext,
    schedules: &[Schedule],
    refs_unknown: &[(usize, &'static str)],
    unexamined: &mut HashSet<String>,
) {
    for &(i, field) in refs_unknown {
        let sch = &schedules[i];
        ctx.warn(format!(
            "schedule {}: {field} is neither a string nor null; its references are not examined",
            sch.id
        ));
        for kind in [
            "deleted_playlist_schedule",
            "no_target_schedule",
            "empty_playlist_schedule",
        ] {
            unexamined.insert(incident_id(AGENT, kind, &sch.id));
        }
        // It is left out of the overlap check too: its prior overlap incidents (target `<a>+<b>`) stay as they are.
        for p in ctx.snapshot.incidents.iter().filter(|p| {
            p.agent == AGENT.as_str()
                && p.kind == "schedule_overlap"
                && p.is_active()
                && p.target_id.split('+').any(|x| x == &*sch.id)
        }) {
            unexamined.insert(p.id.clone());
        }
    }
}
