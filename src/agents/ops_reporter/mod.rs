//! ops-reporter with its watchdog pass (agents.md 6.5, 3.5, 7; 9 items 7, 10, 46–50).
//!
//! Fixes nothing. One run, in the order of 6.5.1:
//!
//! 1. Snapshot (lock-free, from the runtime). A state file that exists but cannot be read or parsed makes the run
//!    exit 2 without writing or alerting: an empty snapshot would report a false HEALTHY.
//! 2. Watchdog ([`watchdog`], pure): each agent of `OPS_AGENTS` except ops-reporter, its `lastRun` against its SLA
//!    (6.5.2, windows per 1.1). Silent → `ops-watchdog:agent-silent:<agent>` (critical for health-guardian, warning
//!    otherwise); within SLA → resolved by the sweep; a missing or unparseable record → WARNING, no verdict, the id is
//!    `unexamined` so it is never resolved by a missing record (9.10).
//! 3. Status S (2.4) over the snapshot with the watchdog's run merged ([`crate::state::record_agent_run`] on a copy).
//! 4. Decision and delivery (6.5.1 steps 4–5): [`crate::alert::decide`] (7.5) and
//!    [`crate::alert::Alerter::deliver_status`], which retries queued outbox entries oldest first and delivers the new
//!    status alert (Slack, then the e-mail digest for DEGRADED/CRITICAL) through the outbox (7.7): nothing counts as
//!    sent until a channel accepted it. An escalated incident's alert carries its attempt history (what was tried and
//!    when, from `recentRemediations`; what verification saw last, from its `error`).
//! 5. Locked write (step 6): the runtime records the `ops-reporter` run (its own incidents `alert-delivery-failed`,
//!    `alerting-unconfigured`, and `stats = {lastReportedStatus, lastReportedAt, lastStatusAlertAt}`); the
//!    [`StateHook`] then records the `ops-watchdog` run (incidents, sweep, `lastRun["ops-watchdog"]`), stamps the
//!    incidents covered by delivered messages (any agent's; stamps are the only change the reporter makes to other
//!    agents' incidents, 2.5) and sets `lastRun["ops-reporter:last-alert"]` when a status alert was delivered.
//! 6. Outbox (step 7): written by the alerter as it goes.
//! 7. Dashboard push (step 8; 7.4, 9.49) of the size-capped state. The runtime writes the state only after this
//!    function returns, so the payload is the snapshot with exactly this run's changes applied (the same merge,
//!    stamps, pruning and status computation the write performs); changes other agents write in between are not in
//!    it. Outcomes go to the outbox `channels` record and become `alert-delivery-failed` incidents on the next run.
//!
//! Layout: `watchdog` (step 2), `status` (steps 1 and 3: S and R), `decision` (the 7.5 de-duplication decision and
//! the alert view), `delivery` (steps 4–5 and the reporter's own incidents), `report` (step 6: stats, locked changes,
//! the projected state), `dashboard` (step 8). This file only sequences.
//!
//! Exit code (1.4): 0 when S is HEALTHY, 1 for DEGRADED or CRITICAL, 2 when the run could not complete. S is the
//! status over the snapshot plus the watchdog's incidents; a channel failing in this run never changes it (7.1), its
//! incident counts from the next run on. Two reporters started at once are handled by the runtime's single-instance
//! guard: the second exits 2 without writing or alerting.

mod dashboard;
mod decision;
mod delivery;
mod report;
mod status;
#[cfg(test)]
mod test_support;
mod watchdog;

use crate::effects::Gated;
pub use decision::attempt_history;
pub use report::LockedChanges;
pub use status::last_reported_status;
pub use watchdog::{Verdict, WatchdogPass, sla_minutes, watchdog, watchdog_record, watched_agents};

use super::{AgentContext, AgentOutcome, StateHook};
use crate::alert::Alerter;
use crate::model::OpsState;
use chrono::{DateTime, Utc};

/// Incident types of ops-reporter (agents.md 3.5).
pub const CATALOGUE: &[&str] = &["alert-delivery-failed", "alerting-unconfigured"];
/// Incident types of the watchdog pass, recorded as agent `ops-watchdog` (agents.md 3.5).
pub const WATCHDOG_CATALOGUE: &[&str] = &["agent-silent"];
/// `lastRun` key of the last delivered status alert (agents.md 2.3, 7.5).
pub const LAST_ALERT_KEY: &str = "ops-reporter:last-alert";
/// Path of the dashboard push on the Vizora API (agents.md 7.4).
pub const OPS_STATUS_PATH: &str = "/api/v1/health/ops-status";

/// Runs ops-reporter once (agents.md 6.5.1; see the module docs for the order and what the hook writes).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut o = AgentOutcome::new(CATALOGUE);
    let cfg = &ctx.cfg;
    let now = ctx.started;

    // (1) The snapshot must be the real state: a corrupt or unreadable file would read as an empty, HEALTHY state.
    if !status::snapshot_readable(ctx, &mut o) {
        return o;
    }

    // (2) Watchdog.
    let pass = watchdog(cfg, &ctx.snapshot, now);
    watchdog::note_pass(ctx, &pass, &mut o);

    // (3) Status over the snapshot plus the watchdog's run.
    let sv = status::compute(ctx, &pass, &mut o);

    // (4, 5) Decision, build, enqueue, deliver (retries first).
    let alert_view = decision::alert_view(cfg, &sv, now);
    let decision = decision::decide_status(cfg, &sv, &alert_view, now);
    let alerter = Alerter::from_config(cfg);
    let sent = delivery::deliver(ctx, &alerter, &sv, &decision, &alert_view).await;
    delivery::note_outcome(
        ctx,
        &alerter,
        sv.status,
        &decision,
        &alert_view,
        &sent,
        &mut o,
    );

    // Own incidents (catalogue 3.5), always judged on the complete outbox record.
    delivery::own_incidents(ctx, &alerter, &mut o);

    // (6) What the locked write records.
    let changes = report::record(ctx, &pass, &sv, &decision, &sent.delivery, &mut o);

    // (8) Dashboard push of the state as this run writes it (see the module docs).
    // The projection is only built when the gate lets the push happen (never in a dry run).
    let pushed = ctx
        .effects()
        .run(|| async {
            let projected = report::project_written_state(ctx, &o, changes.clone(), now);
            dashboard::push_dashboard(ctx, &alerter, &projected, &mut o).await
        })
        .await;
    match pushed {
        Gated::Simulated => {
            o.note("dry run: the ops status would be pushed to the dashboard; nothing sent")
        }
        Gated::Deferred => o.note("dashboard push deferred: the run deadline was reached"),
        Gated::Applied(()) => {}
    }
    let hook: StateHook = Box::new(move |st: &mut OpsState, at: DateTime<Utc>| {
        changes.apply(st, at);
    });
    o.state_hook = Some(hook);
    o
}
