//! The system status S (agents.md 2.4: HEALTHY, DEGRADED or CRITICAL) over the snapshot with the watchdog's run
//! merged, and R, the last reported status (`agentResults["ops-reporter"].stats`). A snapshot that cannot be read
//! never reads as an empty, HEALTHY state (6.5.1 step 1).

use super::LAST_ALERT_KEY;
use super::watchdog::{WatchdogPass, watchdog_record};
use crate::agents::{AgentContext, AgentOutcome, WriteMode};
use crate::alert::slack;
use crate::model::{AgentName, OpsState, SystemStatus, compute_status};
use crate::state::{StampWindow, record_agent_run};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Step 1 (6.5.1): the snapshot must be the real state. A state file that exists but cannot be read or parsed fails
/// the run with exit 2 and no write (`false`); a missing file is an empty state.
pub(super) fn snapshot_readable(ctx: &AgentContext, o: &mut AgentOutcome) -> bool {
    let cfg = &ctx.cfg;
    let now = ctx.started;
    match std::fs::read(&cfg.state_file) {
        Ok(bytes) => {
            if let Err(e) = crate::state::parse_state(&bytes, now) {
                o.fail(
                    format!(
                        "state file {} is unreadable ({e}); cannot compute the system status",
                        cfg.state_file.display()
                    ),
                    WriteMode::None,
                );
                return false;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            o.fail(
                format!(
                    "cannot read state file {}: {e}; cannot compute the system status",
                    cfg.state_file.display()
                ),
                WriteMode::None,
            );
            return false;
        }
    }
    true
}

/// The status of this run and what it is compared with (6.5.1 step 3, 7.5).
pub(super) struct StatusView {
    /// The snapshot with the watchdog's run merged (a copy; the real write happens under the lock).
    pub(super) view: OpsState,
    /// S.
    pub(super) status: SystemStatus,
    /// R (`None`: nothing reported before, read as HEALTHY).
    pub(super) previous: Option<SystemStatus>,
    /// T: the last delivered status alert.
    pub(super) last_alert: Option<DateTime<Utc>>,
    /// Active critical and warning incidents (the e-mail subject's counts).
    pub(super) critical: usize,
    /// See `critical`.
    pub(super) warning: usize,
}

/// Computes S over the snapshot plus the watchdog's run and notes it with R and the counts of the README's "What
/// the counts mean" (the same functions as `status` and the demo).
pub(super) fn compute(ctx: &AgentContext, pass: &WatchdogPass, o: &mut AgentOutcome) -> StatusView {
    let cfg = &ctx.cfg;
    let now = ctx.started;
    let snapshot = &ctx.snapshot;
    let mut view = snapshot.clone();
    let window = StampWindow::from_config(cfg, ctx.started);
    record_agent_run(
        &mut view,
        watchdog_record(pass, &ctx.run_id, now, window),
        now,
    );
    let status = compute_status(view.incidents.iter());
    let previous = last_reported_status(snapshot);
    let last_alert = snapshot.last_run_at(LAST_ALERT_KEY);
    let (c, w, e) = slack::active_counts(view.incidents.iter());
    // One definition (README "What the counts mean"): the same function as `status` and the demo.
    let fixes = view.verified_fixes_24h(now);
    o.note(format!(
        "status {status} ({}): {c} critical, {w} warning active ({e} escalated); {fixes} verified fix(es) in 24 h",
        match previous {
            Some(p) => format!("last reported {p}"),
            None => "nothing reported before; read as HEALTHY".to_string(),
        }
    ));
    StatusView {
        view,
        status,
        previous,
        last_alert,
        critical: c,
        warning: w,
    }
}

/// `R`: `agentResults["ops-reporter"].stats.lastReportedStatus` (absent or unknown → `None`, read as HEALTHY).
pub fn last_reported_status(st: &OpsState) -> Option<SystemStatus> {
    reporter_stat(st, "lastReportedStatus").and_then(SystemStatus::parse)
}

/// A string stat of the reporter's last recorded run.
pub(super) fn reporter_stat<'a>(st: &'a OpsState, key: &str) -> Option<&'a str> {
    st.agent_results
        .get(AgentName::OpsReporter.as_str())
        .and_then(|r| r.get("stats"))
        .and_then(|s| s.get(key))
        .and_then(Value::as_str)
}
