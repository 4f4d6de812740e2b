//! The run's bookkeeping (agents.md 2.5, 6.4.5): the stats of `agentResults["schedule-doctor"]`, the incident types
//! a complete scan may sweep, and the ids this run did not examine.

use super::observe::Inputs;
use super::{AGENT, CATALOGUE, PATCH_DISPLAYS, PATCH_SCHEDULES, Run};
use crate::agents::AgentOutcome;
use crate::model::incident_id;
use serde_json::{Value, json};
use std::collections::HashSet;

/// The stats every run reports (the complete-scan checks add theirs to it).
pub(super) fn base_stats(inp: &Inputs, active: usize) -> Value {
    let obs = &inp.obs;
    json!({
        "schedules": obs.schedules.items.len(),
        "displays": obs.displays.items.len(),
        "enabledDisplays": inp.enabled.len(),
        "playlists": obs.playlists.items.len(),
        "groups": obs.groups.items.len(),
        "scanComplete": inp.scan_complete,
        "activeSchedules": active,
    })
}

impl Run<'_> {
    /// Ends the run: on a complete scan every type is swept except drift on a route not exercised this run (2.5);
    /// the counts of fixes and unexamined ids go into the stats.
    pub(super) fn finish(
        self,
        scan_complete: bool,
        mut unexamined: HashSet<String>,
        mut stats: Value,
    ) -> AgentOutcome {
        let mut r = self;
        let ctx = r.ctx;
        if scan_complete {
            for t in CATALOGUE {
                if *t != "api-contract-drift" {
                    r.o.cover(t);
                }
            }
            // A drift incident resolves when its route succeeds later; a route not exercised this run proves nothing.
            r.o.cover("api-contract-drift");
            for slug in [PATCH_SCHEDULES, PATCH_DISPLAYS] {
                let id = incident_id(AGENT, "api-contract-drift", slug);
                if !r.route_ok.contains(slug) && r.prior_active(&id) {
                    unexamined.insert(id);
                }
            }
        }
        if let Value::Object(m) = &mut stats {
            m.insert("deactivated".into(), json!(r.deactivated.len()));
            m.insert("fallbackAssigned".into(), json!(r.assigned.len()));
            m.insert("unexamined".into(), json!(unexamined.len()));
        }
        if !unexamined.is_empty() {
            ctx.info(format!(
                "{} incident id(s) not examined this run",
                unexamined.len()
            ));
        }
        r.o.unexamined.extend(unexamined);
        r.o.stats = Some(stats);
        r.o
    }
}
