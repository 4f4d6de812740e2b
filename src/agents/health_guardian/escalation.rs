//! Escalation alerts of health-guardian (agents.md 6.1.5, 7.6): one inline alert per severity on every transition to
//! `escalated` and on the open transition of the critical alert-only types; a FIXED notification for verified fixes.
//! Heartbeats are the runtime's.

use super::{AGENT, ALERT_ON_OPEN};
use crate::agents::{AgentContext, AgentOutcome, InlineAlert, InlineKind};
use crate::model::{Incident, IncidentStatus, Severity};
use std::collections::HashMap;

/// Sends the inline alerts of this run against the incidents before it (`priors`), stamping the alerted incidents.
pub(super) async fn send_alerts(
    ctx: &AgentContext,
    priors: &HashMap<String, Incident>,
    o: &mut AgentOutcome,
) {
    let mut crit: Vec<Incident> = Vec::new();
    let mut warn: Vec<Incident> = Vec::new();
    for inc in &o.incidents {
        let prior_active = priors.get(&inc.id).filter(|p| p.is_active());
        let to_escalated = inc.status == IncidentStatus::Escalated
            && !prior_active.is_some_and(|p| p.status == IncidentStatus::Escalated);
        let open_transition =
            ALERT_ON_OPEN.contains(&inc.kind.as_str()) && inc.is_active() && prior_active.is_none();
        if !(to_escalated || open_transition) {
            continue;
        }
        match inc.severity {
            Severity::Critical => crit.push(inc.clone()),
            Severity::Warning => warn.push(inc.clone()),
            _ => {}
        }
    }
    let item = |i: &Incident| {
        let mut s = format!(
            "[{}] {} {}: {}",
            i.status.as_str(),
            crate::model::kind_label(&i.kind),
            i.target_id,
            i.message
        );
        if let Some(e) = &i.error {
            s.push_str(&format!(" (error: {e})"));
        }
        s.push_str(&format!(" — {}", i.remediation));
        s
    };
    for (kind, list, word) in [
        (InlineKind::Critical, crit, "critical"),
        (InlineKind::Warning, warn, "warning"),
    ] {
        if list.is_empty() {
            continue;
        }
        let escalated = list
            .iter()
            .filter(|i| i.status == IncidentStatus::Escalated)
            .count();
        let summary = format!(
            "health-guardian: {} {word} finding(s){}",
            list.len(),
            if escalated > 0 {
                format!(", {escalated} escalated (automatic restarts exhausted)")
            } else {
                String::new()
            }
        );
        let alert = InlineAlert {
            agent: AGENT,
            kind,
            summary,
            items: list.iter().map(item).collect(),
            refs: list,
        };
        let stamped = ctx.effects().alert(alert).await;
        o.alert_stamps.extend(stamped);
    }
    let fixed: Vec<String> = o
        .incidents
        .iter()
        .filter(|i| i.status == IncidentStatus::Resolved && i.kind != "edge-unreachable")
        .map(|i| {
            format!(
                "{} {}: {}",
                crate::model::kind_label(&i.kind),
                i.target_id,
                i.remediation
            )
        })
        .collect();
    if !fixed.is_empty() {
        // A notification, not an alert: no incident is stamped (a stamp on a resolved incident would suppress the
        // next episode's alert).
        let _ = ctx
            .effects()
            .alert(InlineAlert {
                agent: AGENT,
                kind: InlineKind::Fixed,
                // One count vocabulary (README "What the counts mean"): fixed = verified remediations; one
                // restart can close several incidents.
                summary: format!(
                    "health-guardian: {} verified fix(es) closed {} incident(s)",
                    o.fixed,
                    fixed.len()
                ),
                items: fixed,
                refs: Vec::new(),
            })
            .await;
    }
}
