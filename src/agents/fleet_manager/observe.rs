//! Observe (agents.md 6.3 inputs, 2.5, 5.4): the three walks, coverage of an incomplete scan, and why
//! incidents of vanished displays close.

use super::classify::FleetDisplay;
use super::{
    DISPLAY_ERROR, DISPLAY_NEVER_PAIRED, DISPLAY_OFFLINE, DISPLAY_OFFLINE_PERSISTENT,
    DISPLAYS_PATH, FleetRun, GROUPS_PATH, LOCATION_OFFLINE, NO_CONTENT, SCAN_TRUNCATED,
    SCHEDULES_PATH, Scan,
};
use crate::agents::WriteMode;
use crate::agents::entities::{DisplayGroup, Records, Schedule};
use crate::model::Severity;
use crate::vizora::ListResult;
use std::collections::HashSet;

pub(super) fn describe_walk(name: &str, l: &ListResult) -> String {
    format!(
        "{name}: collected {} of {} ({})",
        l.collected,
        l.total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "unknown".into()),
        l.reason.as_deref().unwrap_or("incomplete")
    )
}

impl FleetRun<'_> {
    /// Inputs of 6.3: the three walks, concurrently. A first-page failure or an unknown shape ends the run with
    /// exit 2 and no write (`None`).
    pub(super) async fn observe(&mut self) -> Option<Scan> {
        let api = self.ctx.api();
        let mut displays = Records::<FleetDisplay>::default();
        let mut schedules = Records::<Schedule>::default();
        let mut groups = Records::<DisplayGroup>::default();
        let (dw, sw, gw) = tokio::join!(
            api.walk_into(DISPLAYS_PATH, &mut displays),
            api.walk_into(SCHEDULES_PATH, &mut schedules),
            api.walk_into(GROUPS_PATH, &mut groups)
        );
        match (dw, sw, gw) {
            (Ok(displays_walk), Ok(schedules_walk), Ok(groups_walk)) => Some(Scan {
                displays: displays.items,
                schedules: schedules.items,
                groups: groups.items,
                displays_walk,
                schedules_walk,
                groups_walk,
                default_org: api
                    .organization_id()
                    .unwrap_or_else(|| "unknown-organization".into()),
            }),
            (d, s, g) => {
                let e = [
                    d.err().map(|e| format!("{DISPLAYS_PATH}: {e}")),
                    s.err().map(|e| format!("{SCHEDULES_PATH}: {e}")),
                    g.err().map(|e| format!("{GROUPS_PATH}: {e}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
                self.o.fail(
                    format!("cannot read the fleet (first page failed or unknown shape): {e}"),
                    WriteMode::None,
                );
                None
            }
        }
    }

    /// Coverage (2.5, 5.4): per-display types need the display list complete; locations and no-content need the
    /// whole scan. An incomplete scan raises the info `scan-truncated`.
    pub(super) fn coverage(&mut self, scan: &Scan) {
        self.o.cover(SCAN_TRUNCATED);
        if scan.displays_walk.complete {
            for t in [
                DISPLAY_OFFLINE,
                DISPLAY_OFFLINE_PERSISTENT,
                DISPLAY_ERROR,
                DISPLAY_NEVER_PAIRED,
            ] {
                self.o.cover(t);
            }
        }
        if scan.complete() {
            self.o.cover(LOCATION_OFFLINE);
            self.o.cover(NO_CONTENT);
            return;
        }
        let parts: Vec<String> = [
            ("displays", &scan.displays_walk),
            ("schedules", &scan.schedules_walk),
            ("display-groups", &scan.groups_walk),
        ]
        .iter()
        .filter(|(_, l)| !l.complete)
        .map(|(n, l)| describe_walk(n, l))
        .collect();
        let msg = format!("Incomplete scan: {}", parts.join("; "));
        self.ctx.warn(&msg);
        self.o.note(format!("scan truncated: {}", parts.join("; ")));
        self.raised.put(self.ctx.incident(
            SCAN_TRUNCATED,
            Severity::Info,
            "display",
            "entity-lists",
            msg,
            "Investigate the failing page or API; location and no-content checks were skipped and nothing was \
             resolved for the incomplete lists",
        ));
    }

    /// Prior incidents of displays that no longer exist (unfiltered set, complete list) close through the sweep;
    /// the suffix says why. Disabled displays still exist: theirs close without a suffix.
    pub(super) fn explain_gone(&mut self, scan: &Scan) {
        if !scan.displays_walk.complete {
            return;
        }
        let all: HashSet<&str> = scan.displays.iter().map(|d| &*d.display.id).collect();
        for (id, p) in &self.priors {
            if p.is_active() && p.target == "display" && !all.contains(p.target_id.as_str()) {
                self.o
                    .resolve_suffix
                    .entry(id.clone())
                    .or_insert_with(|| " — display no longer exists".into());
            }
        }
    }
}
