//! No content (agents.md 6.3.5): online displays without a playlist or an active schedule, informational only.

use super::classify::{Class, FleetDisplay, classify};
use super::{FleetRun, NO_CONTENT, Scan, id_for};
use crate::agents::common::{self, DisplayIds, Membership};
use crate::agents::entities::{CurrentPlaylist, Schedule};
use crate::model::Severity;
use std::collections::HashSet;

impl FleetRun<'_> {
    /// 6.3.5 (complete scans): online, no `currentPlaylistId`, no schedule active now → info `no_content`.
    pub(super) fn no_content(
        &mut self,
        enabled: &[(u32, &FleetDisplay)],
        scan: &Scan,
        skip: &HashSet<String>,
    ) {
        let ids = DisplayIds::build(scan.displays.iter().map(|d| &*d.display.id));
        let group_map = Membership::build(&scan.groups, &ids);
        let schedules: Vec<&Schedule> = scan.schedules.iter().collect();
        for &(ix, d) in enabled {
            let id = &*d.display.id;
            if skip.contains(id)
                || !matches!(classify(d, self.now, self.th), Class::Online(_))
                || d.display.current_playlist != CurrentPlaylist::Null
            {
                continue;
            }
            let label = d.display.label();
            match common::any_schedule_active_for(&d.display, ix, &schedules, &group_map, self.now)
            {
                Some(true) => {}
                Some(false) => {
                    self.o.note(format!(
                        "no content: \"{label}\" is online with nothing to play"
                    ));
                    self.raised.put(self.ctx.incident(
                        NO_CONTENT,
                        Severity::Info,
                        "display",
                        id,
                        format!(
                            "Display \"{label}\" is online but has no current playlist and no schedule active now"
                        ),
                        "schedule-doctor's coverage_gap owns the fix (fallback playlist); assign a playlist or a \
                         schedule",
                    ));
                }
                None => {
                    self.o.unexamined.insert(id_for(NO_CONTENT, id));
                    self.o.note(format!(
                        "no-content check of \"{label}\" not examined (group membership or schedule fields unknown)"
                    ));
                }
            }
        }
    }
}
