//! What the locked write records (agents.md 6.5.1 step 6): the reporter's stats (R, when R took its value, T), the
//! [`LockedChanges`] applied after the runtime recorded the `ops-reporter` run (the `ops-watchdog` run, the stamps of
//! delivered messages, `lastRun["ops-reporter:last-alert"]`), the exit code from S, and the state as that write will
//! produce it (the dashboard payload, step 8).

use super::status::{StatusView, reporter_stat};
use super::watchdog::{WatchdogPass, watchdog_record};
use super::{CATALOGUE, LAST_ALERT_KEY};
use crate::agents::{AgentContext, AgentOutcome};
use crate::alert::{AlertDecision, IncidentRef, StatusDelivery, stamp_incidents};
use crate::model::{AgentName, AgentResult, OpsState, SystemStatus, ts};
use crate::state::{Retention, RunRecord, StampWindow, record_agent_run};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Sets the stats and the exit code (0 when S is HEALTHY, else 1; 1.4) and returns the changes of the locked write.
pub(super) fn record(
    ctx: &AgentContext,
    pass: &WatchdogPass,
    sv: &StatusView,
    decision: &AlertDecision,
    delivery: &StatusDelivery,
    o: &mut AgentOutcome,
) -> LockedChanges {
    let cfg = &ctx.cfg;
    let now = ctx.started;
    let snapshot = &ctx.snapshot;
    let (status, previous) = (sv.status, sv.previous);
    let delivered_at = delivery
        .status_delivered
        .then(|| delivery.delivered_at.unwrap_or(now));
    o.stats = Some(reporter_stats(
        snapshot,
        status,
        previous,
        delivered_at,
        &decision.reason,
    ));
    let changes = LockedChanges {
        watchdog: watchdog_record(
            pass,
            &ctx.run_id,
            now,
            StampWindow::from_config(cfg, ctx.started),
        ),
        stamps: delivery.delivered_refs.clone(),
        stamp_at: now,
        last_alert: delivered_at,
    };
    o.exit_override = Some(if status == SystemStatus::Healthy {
        0
    } else {
        1
    });
    changes
}

/// The reporter's changes to the fresh state inside the lock (agents.md 6.5.1 step 6), after the runtime recorded the
/// `ops-reporter` run: the watchdog run, the alert stamps of delivered messages, `lastRun["ops-reporter:last-alert"]`.
/// Local work only.
#[derive(Debug, Clone)]
pub struct LockedChanges {
    /// The `ops-watchdog` run; its timestamp is set to the write time.
    pub watchdog: RunRecord,
    /// References of every delivered message (stamped with `stamp_at`).
    pub stamps: Vec<IncidentRef>,
    /// `alertedAt` of the stamps.
    pub stamp_at: DateTime<Utc>,
    /// Delivery time of this run's status alert, when one was delivered.
    pub last_alert: Option<DateTime<Utc>>,
}

impl LockedChanges {
    /// Applies the changes to `st` at `now` (the write time).
    pub fn apply(self, st: &mut OpsState, now: DateTime<Utc>) {
        let mut wd = self.watchdog;
        wd.result.timestamp = ts(now);
        record_agent_run(st, wd, now);
        stamp_incidents(&mut st.incidents, &self.stamps, self.stamp_at);
        if let Some(t) = self.last_alert {
            st.last_run
                .insert(LAST_ALERT_KEY.into(), Value::String(ts(t)));
        }
    }
}

/// The stats written to `agentResults["ops-reporter"].stats` (6.5.1 step 6): `lastReportedStatus` (R after this
/// run), `lastReportedAt` (when R took its current value), `lastStatusAlertAt` (T), plus the computed status and the
/// decision reason. Absent values are omitted, never `null`.
fn reporter_stats(
    snapshot: &OpsState,
    status: SystemStatus,
    previous: Option<SystemStatus>,
    delivered_at: Option<DateTime<Utc>>,
    reason: &str,
) -> Value {
    let mut m = Map::new();
    let prior_at = reporter_stat(snapshot, "lastReportedAt").map(str::to_string);
    let prior_alert = snapshot
        .last_run_at(LAST_ALERT_KEY)
        .map(ts)
        .or_else(|| reporter_stat(snapshot, "lastStatusAlertAt").map(str::to_string));
    let (reported, reported_at, alert_at) = match delivered_at {
        Some(t) => {
            let at = if previous == Some(status) {
                prior_at.unwrap_or_else(|| ts(t))
            } else {
                ts(t)
            };
            (Some(status), Some(at), Some(ts(t)))
        }
        None => (previous, prior_at, prior_alert),
    };
    if let Some(r) = reported {
        m.insert("lastReportedStatus".into(), r.as_str().into());
    }
    if let Some(t) = reported_at {
        m.insert("lastReportedAt".into(), t.into());
    }
    if let Some(t) = alert_at {
        m.insert("lastStatusAlertAt".into(), t.into());
    }
    m.insert("computedStatus".into(), status.as_str().into());
    m.insert(
        "alertDecision".into(),
        crate::redact::redact_str(reason).into(),
    );
    Value::Object(m)
}

/// The state the locked write will produce from the snapshot: the reporter's run record as the runtime merges it,
/// then [`LockedChanges`], pruning (4.7) and the status.
pub(super) fn project_written_state(
    ctx: &AgentContext,
    o: &AgentOutcome,
    changes: LockedChanges,
    now: DateTime<Utc>,
) -> OpsState {
    let cfg = &ctx.cfg;
    let mut st = ctx.snapshot.clone();
    let record = RunRecord {
        result: AgentResult {
            agent: AgentName::OpsReporter.as_str().into(),
            timestamp: ts(now),
            issues_found: o.incidents.iter().filter(|i| i.severity.counts()).count() as u32,
            incidents: o.incidents.clone(),
            info_found: Some(o.incidents.iter().filter(|i| !i.severity.counts()).count() as u32),
            exit_code: o.exit_override,
            run_id: Some(ctx.run_id.clone()),
            coverage: Some(CATALOGUE.iter().map(|s| s.to_string()).collect()),
            stats: o.stats.clone(),
            ..Default::default()
        },
        covered_types: o.covered_types.clone(),
        unexamined: o.unexamined.clone(),
        catalogue: o.catalogue.clone(),
        resolve_suffix: o.resolve_suffix.clone(),
        remediations: Vec::new(),
        partial: false,
        stamp_window: StampWindow::from_config(cfg, ctx.started),
    };
    record_agent_run(&mut st, record, now);
    changes.apply(&mut st, now);
    crate::state::prune(
        &mut st,
        now,
        Retention {
            max_incidents: cfg.max_incidents,
            max_remediations: cfg.max_remediations,
            resolved_retention_hours: cfg.resolved_retention_hours,
        },
    );
    st.system_status = st.computed_status();
    st.last_updated = ts(now);
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::ops_reporter::status::last_reported_status;
    use crate::agents::ops_reporter::test_support::{cfg, state_with_runs, t0};
    use crate::agents::ops_reporter::watchdog::watchdog;
    use crate::model::{IncidentStatus, Severity};
    use chrono::Duration;
    use serde_json::json;

    #[test]
    fn a_new_silent_episode_inherits_stamps_only_inside_the_window() {
        let c = cfg(&[("OPS_AGENTS", "fleet-manager")]);
        let st0 = state_with_runs(&[("fleet-manager", ts(t0() - Duration::hours(1)).into())]);
        let pass = watchdog(&c, &st0, t0());
        assert_eq!(pass.incidents.len(), 1);
        for (stamp_age, kept) in [(Duration::minutes(20), true), (Duration::hours(3), false)] {
            let mut st = st0.clone();
            let mut old = pass.incidents[0].clone();
            old.status = IncidentStatus::Resolved;
            old.resolved_at = Some(ts(t0() - Duration::minutes(10)));
            old.alerted_at = Some(ts(t0() - stamp_age));
            old.alerted_severity = Some(Severity::Warning);
            st.incidents.push(old);
            LockedChanges {
                watchdog: watchdog_record(
                    &pass,
                    "run",
                    t0(),
                    StampWindow {
                        started: t0(),
                        dedup_s: 3600,
                        tolerance_s: 120,
                    },
                ),
                stamps: vec![],
                stamp_at: t0(),
                last_alert: None,
            }
            .apply(&mut st, t0());
            let i = &st.incidents[0];
            assert!(i.is_active());
            assert_eq!(i.alerted_at.is_some(), kept, "stamp {stamp_age}");
            assert_eq!(st.last_run["ops-watchdog"], Value::String(ts(t0())));
        }
    }

    #[test]
    fn stats_keep_the_last_reported_status_until_a_delivery() {
        let mut st = OpsState::empty(t0());
        st.agent_results.insert(
            "ops-reporter".into(),
            json!({"agent":"ops-reporter","stats":{"lastReportedStatus":"DEGRADED","lastReportedAt":"2026-08-22T08:00:00.000Z"}}),
        );
        let s = reporter_stats(
            &st,
            SystemStatus::Critical,
            last_reported_status(&st),
            None,
            "x",
        );
        assert_eq!(s["lastReportedStatus"], "DEGRADED");
        assert_eq!(s["lastReportedAt"], "2026-08-22T08:00:00.000Z");
        assert!(s.get("lastStatusAlertAt").is_none());
        let s = reporter_stats(
            &st,
            SystemStatus::Critical,
            last_reported_status(&st),
            Some(t0()),
            "x",
        );
        assert_eq!(s["lastReportedStatus"], "CRITICAL");
        assert_eq!(s["lastReportedAt"], ts(t0()));
        assert_eq!(s["lastStatusAlertAt"], ts(t0()));
    }
}
