//! The report lines and stats of one run (agents.md 6.1, 2.3): a note per planned incident, then
//! `agentResults["health-guardian"].stats` (transitional runs, probe words, process manager, commands run).

use super::probes::{Health, Svc};
use super::restart::{Cmd, Work};
use crate::agents::AgentOutcome;
use crate::model::IncidentStatus;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Notes each settled work item (closed by the verified fix, or its status and remediation when it had no command)
/// and raises its incident.
pub(super) fn raise_works(works: Vec<Work>, o: &mut AgentOutcome) {
    for w in works {
        if w.inc.status == IncidentStatus::Resolved {
            o.note(format!(
                "{} {}: closed by the verified fix",
                crate::model::kind_label(&w.inc.kind),
                w.inc.target_id
            ));
        } else if w.cmd.is_none() {
            o.note(format!(
                "{} {}: {} — {}",
                crate::model::kind_label(&w.inc.kind),
                w.inc.target_id,
                w.inc.status.as_str(),
                w.inc.remediation
            ));
        }
        o.raise(w.inc);
    }
}

/// The run's stats: `transitionalRuns`, the final word of each probe, the process manager kind and the number of
/// commands that ran.
pub(super) fn stats(
    transitional_runs: Map<String, Value>,
    final_health: &BTreeMap<Svc, Health>,
    kind: &str,
    cmds: &[Cmd],
) -> Value {
    let probes_json: Map<String, Value> = final_health
        .iter()
        .map(|(s, hl)| (s.key().to_string(), Value::from(hl.word())))
        .collect();
    json!({
        "transitionalRuns": transitional_runs,
        "probes": probes_json,
        "processManager": kind,
        "commands": cmds.iter().filter(|c| c.ran).count(),
    })
}
