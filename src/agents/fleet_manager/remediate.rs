//! Remediation pass (agents.md 6.3.3, 6.3.4, 5.7–5.8): the candidates in list order, and how a mutation
//! outcome is applied to its incident.

use super::classify::Class;
use super::command_caps::{CommandCaps, is_fleet_action};
use super::{DISPLAY_ERROR, DISPLAY_OFFLINE, FleetRun, FleetWork, Obs, Pending, id_for, path_safe};
use crate::agents::AgentContext;
use crate::model::{Incident, parse_ts, ts};
use crate::vizora::{MutationOutcome, MutationStatus};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

impl FleetRun<'_> {
    /// 6.3.3 and 6.3.4 for every candidate, in list order: PATCH an `error` display to `offline`, then a reload
    /// within every cap (never for persistent, never-paired or unknown displays).
    pub(super) async fn remediate(&mut self, candidates: Vec<&Obs>) -> FleetWork {
        let ctx = self.ctx;
        let prior_sends: Vec<DateTime<Utc>> = ctx
            .snapshot
            .recent_remediations
            .iter()
            .filter(|a| is_fleet_action(a))
            .filter_map(|a| parse_ts(&a.timestamp))
            .collect();
        let mut caps = CommandCaps::from_config(&ctx.cfg, prior_sends);
        let mut work = FleetWork::default();
        let mut gone: HashSet<String> = HashSet::new();
        for d in candidates {
            if gone.contains(&d.id) {
                continue;
            }
            if !path_safe(&d.id) {
                let why = format!("display id {:?} is not a plain id; no request sent", d.id);
                ctx.warn(&why);
                for t in [DISPLAY_OFFLINE, DISPLAY_ERROR] {
                    if let Some(i) = self.raised.get_mut(&id_for(t, &d.id)) {
                        i.remediation = "no automatic remediation (unsafe id)".into();
                        i.error = Some(why.clone());
                    }
                }
                continue;
            }
            let mut p = Pending {
                display_id: d.id.clone(),
                label: d.label.clone(),
                before_heartbeat: None,
                reload_audit: None,
                reload_action: None,
                offline: matches!(d.class, Class::Offline(_)),
                patch_audit: None,
                patch_action: None,
            };
            if d.error_status && !self.reset_error(d, &mut p, &mut work).await {
                gone.insert(d.id.clone());
                continue;
            }
            if matches!(d.class, Class::Offline(_) | Class::Online(_))
                && !self.reload(d, &mut p, &mut caps, &mut work).await
            {
                gone.insert(d.id.clone());
                continue;
            }
            if p.reload_audit.is_some() || p.patch_audit.is_some() {
                work.pending.push(p);
            }
        }
        work
    }
}

/// How a mutation outcome was applied to its incident.
pub(super) enum Handled {
    Done,
    DryRun,
    Gone,
    Failed(String),
}

/// Applies a mutation outcome to its incident: attempts + 1 and `lastAttemptAt` for a request that reached the API,
/// remediation text, or the error (agents.md 5.7–5.8).
pub(super) fn handle_mutation(
    ctx: &AgentContext,
    out: &MutationOutcome,
    inc: &mut Incident,
    done_text: &str,
    count_attempt: bool,
) -> Handled {
    let attempt = |inc: &mut Incident| {
        if count_attempt {
            inc.attempts += 1;
        }
        inc.last_attempt_at = Some(ts(ctx.now()));
    };
    match &out.status {
        MutationStatus::Done(_) => {
            attempt(inc);
            inc.remediation = done_text.to_string();
            inc.error = None;
            Handled::Done
        }
        MutationStatus::DryRun => {
            inc.remediation = format!("dry run: would do: {done_text}");
            Handled::DryRun
        }
        MutationStatus::Gone => Handled::Gone,
        MutationStatus::PreReadFailed(e) => {
            let e = format!("pre-write read failed: {e}");
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
        MutationStatus::SkippedDrift => {
            let e = "route drifted earlier in this run; not called".to_string();
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
        // fleet-manager sends its writes without a precondition; kept total for the type.
        MutationStatus::Unneeded(why) => {
            let e = format!("not sent: {why}");
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
        MutationStatus::Failed(e) => {
            attempt(inc);
            let e = e.to_string();
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
    }
}
