//! The reporter's alert decision (agents.md 7.5): whether a status alert goes out and which incidents it names.
//!
//! Pure: the inputs are the computed status S, the last reported status R, the last delivered status alert T, the
//! incidents and the run's start time; both windows (`OPS_ALERT_DEDUP_MINUTES`, `OPS_CRITICAL_REALERT_MINUTES`)
//! follow agents.md 1.1 through [`window_elapsed`] (age at the run's start, early margin `OPS_WINDOW_TOLERANCE_S`; a
//! clock that moved backwards never extends a window and is reported in `warnings` for the caller to log). This is
//! the only place de-duplication lives; channels and the outbox know nothing about it.

use crate::clock::window_elapsed;
use crate::model::{Incident, IncidentStatus, Severity, SystemStatus, parse_ts};
use chrono::{DateTime, Utc};

/// Inputs of [`decide`].
#[derive(Debug, Clone)]
pub struct DecisionInput<'a> {
    /// Status S computed over the snapshot plus the watchdog's incidents (2.4).
    pub status: SystemStatus,
    /// R = `agentResults["ops-reporter"].stats.lastReportedStatus`; `None` (absent) counts as HEALTHY.
    pub last_reported: Option<SystemStatus>,
    /// T = `lastRun["ops-reporter:last-alert"]`, the last *delivered* status alert; `None` when absent or unparseable.
    pub last_status_alert: Option<DateTime<Utc>>,
    /// Incidents to judge (any status; only active warning/critical ones can be alert-worthy).
    pub incidents: &'a [Incident],
    /// The run's start time.
    pub now: DateTime<Utc>,
    /// `OPS_ALERT_DEDUP_MINUTES` in seconds.
    pub dedup_window_s: i64,
    /// `OPS_CRITICAL_REALERT_MINUTES` in seconds.
    pub critical_realert_s: i64,
    /// `OPS_WINDOW_TOLERANCE_S`.
    pub tolerance_s: i64,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDecision {
    /// Whether a status alert is sent this run.
    pub send_status: bool,
    /// Why (for the log line), e.g. `status changed DEGRADED -> CRITICAL` or `alert suppressed: …`.
    pub reason: String,
    /// Ids of the alert-worthy incidents, in input order; the status alert names these and stamps them on delivery.
    pub alert_worthy: Vec<String>,
    /// S is HEALTHY and R was not: the message is the recovery form (Slack only, never e-mailed).
    pub is_recovery: bool,
    /// Clock anomalies (a timestamp in the future, i.e. the clock moved backwards) for WARNING lines.
    pub warnings: Vec<String>,
}

/// Whether an incident is alert-worthy (agents.md 7.5): active warning/critical and (no `alertedAt` — an
/// unparseable one counts as none; or severity above `alertedSeverity`; or escalated while `alertedStatus` is not;
/// or S is CRITICAL, the incident is critical and `alertedAt` is at least the de-duplication window old).
pub fn is_alert_worthy(
    i: &Incident,
    status: SystemStatus,
    now: DateTime<Utc>,
    dedup_window_s: i64,
    tolerance_s: i64,
) -> bool {
    if !i.is_active() || !i.severity.counts() {
        return false;
    }
    let Some(alerted_at) = i.alerted_at.as_deref().and_then(parse_ts) else {
        return true;
    };
    let alerted_rank = i.alerted_severity.as_ref().map(Severity::rank).unwrap_or(0);
    if i.severity.rank() > alerted_rank {
        return true;
    }
    if i.status == IncidentStatus::Escalated && i.alerted_status != Some(IncidentStatus::Escalated)
    {
        return true;
    }
    status == SystemStatus::Critical
        && i.severity == Severity::Critical
        && window_elapsed(now, alerted_at, dedup_window_s, tolerance_s)
}

/// The decision of agents.md 7.5: a status alert is sent when S ≠ R (every transition, recovery included), or S is
/// CRITICAL and the critical re-alert window since T has elapsed (T absent counts as elapsed), or some incident is
/// alert-worthy; otherwise the reason starts with `alert suppressed`. Info never alerts.
pub fn decide(inp: &DecisionInput<'_>) -> AlertDecision {
    let s = inp.status;
    let r = inp.last_reported.unwrap_or(SystemStatus::Healthy);
    let mut warnings = Vec::new();
    let mut note_future = |what: &str, t: DateTime<Utc>| {
        if t > inp.now {
            warnings.push(format!(
                "{what} {} is in the future (clock moved backwards?); treating its age as 0",
                crate::model::ts(t)
            ));
        }
    };
    if let Some(t) = inp.last_status_alert {
        note_future("last status alert", t);
    }
    let alert_worthy: Vec<String> = inp
        .incidents
        .iter()
        .filter(|i| is_alert_worthy(i, s, inp.now, inp.dedup_window_s, inp.tolerance_s))
        .map(|i| i.id.clone())
        .collect();
    for i in inp.incidents.iter().filter(|i| i.is_active()) {
        if let Some(t) = i.alerted_at.as_deref().and_then(parse_ts) {
            note_future(&format!("alertedAt of {}", i.id), t);
        }
    }
    let realert_due = s == SystemStatus::Critical
        && inp
            .last_status_alert
            .is_none_or(|t| window_elapsed(inp.now, t, inp.critical_realert_s, inp.tolerance_s));

    let mut reasons = Vec::new();
    if s != r {
        reasons.push(format!("status changed {r} -> {s}"));
    }
    if realert_due && s == r {
        reasons.push(match inp.last_status_alert {
            Some(t) => format!(
                "CRITICAL re-alert ({} min since the last status alert)",
                crate::clock::age_s(inp.now, t) / 60
            ),
            None => "CRITICAL re-alert (no status alert delivered yet)".to_string(),
        });
    }
    if !alert_worthy.is_empty() {
        reasons.push(format!("{} alert-worthy incident(s)", alert_worthy.len()));
    }
    let send_status = !reasons.is_empty();
    let reason = if send_status {
        reasons.join("; ")
    } else {
        format!("alert suppressed: status {s} unchanged and no incident is alert-worthy")
    };
    AlertDecision {
        send_status,
        reason,
        alert_worthy,
        is_recovery: send_status && s == SystemStatus::Healthy && r != SystemStatus::Healthy,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::model::{AgentName, ts};
    use chrono::Duration;

    const DEDUP: i64 = 3_600;
    const REALERT: i64 = 3_600;
    const TOL: i64 = 120;

    fn t0() -> DateTime<Utc> {
        parse_ts("2026-08-22T10:00:00.000Z").unwrap()
    }

    fn incident(id: &str, sev: Severity) -> Incident {
        Incident::new(
            AgentName::HealthGuardian,
            "service-down",
            sev,
            "service",
            id,
            "down",
            "restart",
            t0(),
        )
    }

    fn stamp(i: &mut Incident, at: DateTime<Utc>) {
        i.alerted_at = Some(ts(at));
        i.alerted_severity = Some(i.severity.clone());
        i.alerted_status = Some(i.status.clone());
    }

    fn run(
        clock: &ManualClock,
        s: SystemStatus,
        r: Option<SystemStatus>,
        t: Option<DateTime<Utc>>,
        incs: &[Incident],
    ) -> AlertDecision {
        decide(&DecisionInput {
            status: s,
            last_reported: r,
            last_status_alert: t,
            incidents: incs,
            now: clock.now(),
            dedup_window_s: DEDUP,
            critical_realert_s: REALERT,
            tolerance_s: TOL,
        })
    }

    #[test]
    fn transitions_in_both_directions_send_and_recovery_is_flagged() {
        let clock = ManualClock::new(t0());
        let mut w = incident("a", Severity::Warning);
        stamp(&mut w, t0());
        let up = run(
            &clock,
            SystemStatus::Degraded,
            None,
            Some(t0()),
            std::slice::from_ref(&w),
        );
        assert!(up.send_status, "{}", up.reason);
        assert!(!up.is_recovery);
        assert!(up.alert_worthy.is_empty(), "already stamped");
        let down = run(
            &clock,
            SystemStatus::Healthy,
            Some(SystemStatus::Degraded),
            Some(t0()),
            &[],
        );
        assert!(down.send_status && down.is_recovery, "{}", down.reason);
    }

    #[test]
    fn stamped_incident_does_not_alert_again_within_the_window() {
        let clock = ManualClock::new(t0());
        let mut w = incident("a", Severity::Warning);
        let first = run(
            &clock,
            SystemStatus::Degraded,
            Some(SystemStatus::Healthy),
            None,
            std::slice::from_ref(&w),
        );
        assert_eq!(first.alert_worthy, vec![w.id.clone()]);
        stamp(&mut w, clock.now());
        for _ in 0..4 {
            clock.advance(Duration::minutes(30));
            let d = run(
                &clock,
                SystemStatus::Degraded,
                Some(SystemStatus::Degraded),
                Some(t0()),
                std::slice::from_ref(&w),
            );
            assert!(!d.send_status, "{}", d.reason);
            assert!(d.reason.starts_with("alert suppressed"));
        }
    }

    #[test]
    fn severity_rise_and_escalation_alert_immediately() {
        let clock = ManualClock::new(t0());
        let mut w = incident("a", Severity::Warning);
        stamp(&mut w, t0());
        clock.advance(Duration::minutes(5));
        let mut risen = w.clone();
        risen.severity = Severity::Critical;
        let d = run(
            &clock,
            SystemStatus::Critical,
            Some(SystemStatus::Critical),
            Some(t0()),
            &[risen],
        );
        assert!(d.send_status);
        assert_eq!(d.alert_worthy, vec![w.id.clone()]);
        let mut esc = w.clone();
        esc.status = IncidentStatus::Escalated;
        let d = run(
            &clock,
            SystemStatus::Degraded,
            Some(SystemStatus::Degraded),
            Some(t0()),
            &[esc.clone()],
        );
        assert!(d.send_status && d.alert_worthy == vec![w.id.clone()]);
        stamp(&mut esc, clock.now());
        let d = run(
            &clock,
            SystemStatus::Degraded,
            Some(SystemStatus::Degraded),
            Some(t0()),
            &[esc],
        );
        assert!(!d.send_status, "escalation already alerted");
    }

    #[test]
    fn critical_realerts_on_the_run_at_about_sixty_minutes_not_ninety() {
        let clock = ManualClock::new(t0());
        let mut c = incident("c", Severity::Critical);
        stamp(&mut c, t0());
        let crit = Some(SystemStatus::Critical);
        clock.advance(Duration::minutes(30));
        assert!(
            !run(
                &clock,
                SystemStatus::Critical,
                crit,
                Some(t0()),
                std::slice::from_ref(&c)
            )
            .send_status
        );
        // The run "at 60 min" starts a little early: 58 min 30 s.
        clock.set(t0() + Duration::seconds(58 * 60 + 30));
        let d = run(
            &clock,
            SystemStatus::Critical,
            crit,
            Some(t0()),
            std::slice::from_ref(&c),
        );
        assert!(d.send_status, "{}", d.reason);
        assert_eq!(d.alert_worthy, vec![c.id.clone()]);
        // Just outside the tolerance: 57 min 59 s.
        clock.set(t0() + Duration::seconds(57 * 60 + 59));
        assert!(
            !run(
                &clock,
                SystemStatus::Critical,
                crit,
                Some(t0()),
                std::slice::from_ref(&c)
            )
            .send_status
        );
        // A DEGRADED status never re-alerts a stamped warning.
        let mut w = incident("w", Severity::Warning);
        stamp(&mut w, t0());
        clock.set(t0() + Duration::hours(5));
        let deg = Some(SystemStatus::Degraded);
        assert!(!run(&clock, SystemStatus::Degraded, deg, Some(t0()), &[w]).send_status);
    }

    #[test]
    fn clock_moved_backwards_never_opens_a_window_and_is_reported() {
        let clock = ManualClock::new(t0());
        let mut c = incident("c", Severity::Critical);
        stamp(&mut c, t0());
        clock.advance(Duration::hours(-3));
        let d = run(
            &clock,
            SystemStatus::Critical,
            Some(SystemStatus::Critical),
            Some(t0()),
            &[c],
        );
        assert!(!d.send_status, "{}", d.reason);
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("clock moved backwards"))
        );
    }

    #[test]
    fn info_and_resolved_never_alert_and_unknown_alerted_at_counts_as_none() {
        let clock = ManualClock::new(t0());
        let info = incident("i", Severity::Info);
        let mut res = incident("r", Severity::Critical);
        res.status = IncidentStatus::Resolved;
        let d = run(&clock, SystemStatus::Healthy, None, None, &[info, res]);
        assert!(!d.send_status);
        let mut w = incident("w", Severity::Warning);
        w.alerted_at = Some("yesterday".into());
        assert!(is_alert_worthy(
            &w,
            SystemStatus::Degraded,
            clock.now(),
            DEDUP,
            TOL
        ));
    }
}
