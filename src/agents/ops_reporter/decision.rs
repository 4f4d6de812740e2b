//! The de-duplication decision (agents.md 7.5): which incidents the status alert may name, with stamps of an
//! earlier episode outside the window dropped (2.5) and an escalated incident's attempt history; then
//! [`crate::alert::decide`] says whether a status alert is due.

use super::status::StatusView;
use crate::agents::AgentOutcome;
use crate::alert::{AlertDecision, decide, decision::DecisionInput};
use crate::config::Config;
use crate::model::{Incident, IncidentStatus, RemediationAction, parse_ts};
use chrono::{DateTime, Utc};

/// Entries of the attempt history shown for an escalated incident.
const HISTORY_MAX: usize = 5;

/// The incidents as the alert sees them: active ones without stale stamps, escalated ones with their attempt history
/// appended to the message.
pub(super) fn alert_view(cfg: &Config, sv: &StatusView, now: DateTime<Utc>) -> Vec<Incident> {
    let dedup_s = cfg.alert.dedup_minutes as i64 * 60;
    let view = &sv.view;
    let mut alert_view: Vec<Incident> = view.incidents.clone();
    for i in alert_view.iter_mut().filter(|i| i.is_active()) {
        drop_stale_stamps(i, now, dedup_s, cfg.window_tolerance_s);
        if i.status == IncidentStatus::Escalated {
            let h = attempt_history(i, &view.recent_remediations);
            if !h.is_empty() {
                i.message = format!("{}\n{h}", i.message);
            }
        }
    }
    alert_view
}

/// The decision of 7.5 over S, R, T and the alert view (windows per 1.1).
pub(super) fn decide_status(
    cfg: &Config,
    sv: &StatusView,
    alert_view: &[Incident],
    now: DateTime<Utc>,
) -> AlertDecision {
    let dedup_s = cfg.alert.dedup_minutes as i64 * 60;
    decide(&DecisionInput {
        status: sv.status,
        last_reported: sv.previous,
        last_status_alert: sv.last_alert,
        incidents: alert_view,
        now,
        dedup_window_s: dedup_s,
        critical_realert_s: cfg.alert.critical_realert_minutes as i64 * 60,
        tolerance_s: cfg.window_tolerance_s,
    })
}

/// Notes which incidents a due alert names, in human words and targets, not incident ids (issue 9, one vocabulary):
/// the first 5, then how many more.
pub(super) fn note_alert_worthy(
    o: &mut AgentOutcome,
    decision: &AlertDecision,
    alert_view: &[Incident],
) {
    if !decision.alert_worthy.is_empty() {
        // Human words and targets, not incident ids (issue 9, one vocabulary).
        let names: Vec<String> = decision
            .alert_worthy
            .iter()
            .take(5)
            .map(|id| match alert_view.iter().find(|i| &i.id == id) {
                Some(i) => crate::model::incident_words(&i.kind, &i.target, &i.target_id),
                None => match crate::model::parse_incident_id(id) {
                    Some((_, kind, target_id)) => {
                        format!("{} ({target_id})", crate::model::kind_label(kind))
                    }
                    None => id.clone(),
                },
            })
            .collect();
        let more = decision.alert_worthy.len().saturating_sub(names.len());
        o.note(format!(
            "alert names {} incident(s): {}{}",
            decision.alert_worthy.len(),
            names.join(", "),
            if more > 0 {
                format!(", …and {more} more")
            } else {
                String::new()
            }
        ));
    }
}

/// Clears, on a copy used for the decision, alert stamps that belong to an earlier episode and lie outside the
/// de-duplication window (agents.md 2.5: a resolved incident passes on its stamps only inside the window, so that
/// flapping does not re-alert but a new episode later does).
pub(super) fn drop_stale_stamps(
    i: &mut Incident,
    now: DateTime<Utc>,
    window_s: i64,
    tolerance_s: i64,
) {
    let (Some(at), Some(detected)) = (
        i.alerted_at.as_deref().and_then(parse_ts),
        parse_ts(&i.detected),
    ) else {
        return;
    };
    if at < detected && crate::clock::window_elapsed(now, at, window_s, tolerance_s) {
        i.clear_alert_stamps();
    }
}

/// The attempt history of an escalated incident (agents.md 7.5 issue text): the remediations of its episode on its
/// target (newest last, at most 5: time, action, method, outcome, verification) and what verification saw last (its
/// `error`). Empty when there is nothing to tell.
pub fn attempt_history(i: &Incident, remediations: &[RemediationAction]) -> String {
    let since = parse_ts(&i.detected);
    let same_target = |r: &RemediationAction| {
        r.target_id == i.target_id
            || i.target_id.starts_with(&format!("{}:", r.target_id))
            || r.target_id.starts_with(&format!("{}:", i.target_id))
    };
    let mut rows: Vec<(&RemediationAction, DateTime<Utc>)> = remediations
        .iter()
        .filter(|r| r.agent == i.agent && same_target(r))
        .filter_map(|r| parse_ts(&r.timestamp).map(|t| (r, t)))
        .filter(|(_, t)| since.is_none_or(|s| *t >= s))
        .collect();
    rows.sort_by_key(|(_, t)| *t);
    let skipped = rows.len().saturating_sub(HISTORY_MAX);
    let mut out = Vec::new();
    if !rows.is_empty() || i.attempts > 0 {
        out.push(format!(
            "Attempt history ({} attempt(s){}):",
            i.attempts,
            i.last_attempt_at
                .as_deref()
                .map(|t| format!(", last at {t}"))
                .unwrap_or_default()
        ));
    }
    if skipped > 0 {
        out.push(format!("…{skipped} earlier action(s)"));
    }
    for (r, _) in rows.iter().skip(skipped) {
        let outcome = if r.success { "done" } else { "failed" };
        let verified = match r.verified {
            Some(true) => ", verified",
            Some(false) => ", verification failed",
            None => ", not verified",
        };
        out.push(format!(
            "- {} {} ({}): {outcome}{verified}{}",
            r.timestamp,
            r.action,
            r.method,
            r.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    if let Some(e) = &i.error {
        out.push(format!("Last verification: {e}"));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::ops_reporter::test_support::t0;
    use crate::model::{AgentName, Severity, ts};
    use chrono::Duration;
    use serde_json::Map;

    #[test]
    fn stamp_of_an_earlier_episode_outside_the_window_is_ignored_but_kept_inside_it() {
        let mut i = Incident::new(
            AgentName::FleetManager,
            "display_offline",
            Severity::Warning,
            "display",
            "d1",
            "m",
            "r",
            t0(),
        );
        i.alerted_at = Some(ts(t0() - Duration::hours(3)));
        i.alerted_severity = Some(Severity::Warning);
        let mut a = i.clone();
        drop_stale_stamps(&mut a, t0(), 3600, 120);
        assert!(a.alerted_at.is_none());
        let mut b = i.clone();
        b.alerted_at = Some(ts(t0() - Duration::minutes(20)));
        drop_stale_stamps(&mut b, t0(), 3600, 120);
        assert!(
            b.alerted_at.is_some(),
            "flapping inside the window stays quiet"
        );
    }

    #[test]
    fn escalated_history_lists_the_episode_actions_and_the_last_verification() {
        let mut i = Incident::new(
            AgentName::HealthGuardian,
            "pm2-errored",
            Severity::Critical,
            "pm2-process",
            "vizora-web:0",
            "errored",
            "r",
            t0(),
        );
        i.status = IncidentStatus::Escalated;
        i.attempts = 2;
        i.error = Some("still errored 30 s after the restart".into());
        let rem = |at: DateTime<Utc>, ok: bool, verified: bool| RemediationAction {
            agent: "health-guardian".into(),
            timestamp: ts(at),
            action: "Restart vizora-web".into(),
            target: "pm2-process".into(),
            target_id: "vizora-web:0".into(),
            method: "pm2 restart".into(),
            endpoint: None,
            before: None,
            after: None,
            success: ok,
            error: None,
            verified: Some(verified),
            run_id: None,
            extra: Map::new(),
        };
        let rems = vec![
            rem(t0() - Duration::hours(1), true, true),
            rem(t0() + Duration::minutes(5), true, false),
            rem(t0() + Duration::minutes(10), false, false),
        ];
        let h = attempt_history(&i, &rems);
        assert!(h.starts_with("Attempt history (2 attempt(s)"), "{h}");
        assert_eq!(
            h.matches("Restart vizora-web").count(),
            2,
            "before the episode excluded: {h}"
        );
        assert!(h.contains("done, verification failed"));
        assert!(h.contains("failed, verification failed"));
        assert!(h.ends_with("Last verification: still errored 30 s after the restart"));
    }
}
