//! Reload commands (agents.md 6.3.3): one capped `reload` fleet command per offline display, or the deferral.

use super::command_caps::{CommandCaps, last_reload};
use super::remediate::{Handled, handle_mutation};
use super::{
    DEFERRED, DISPLAY_ERROR, DISPLAY_OFFLINE, DISPLAYS_PATH, FLEET_COMMANDS_PATH, FleetRun,
    FleetWork, Obs, PER_DISPLAY_TYPES, Pending, SLUG_FLEET, id_for,
};
use crate::agents::common::{self};
use crate::model::{parse_ts, ts};
use crate::vizora::{ApiError, MutationOutcome, MutationRequest, MutationStatus};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Instant;

impl FleetRun<'_> {
    /// 6.3.3: one `reload` within the caps, or the deferral. Returns false when the display is gone.
    pub(super) async fn reload(
        &mut self,
        d: &Obs,
        p: &mut Pending,
        caps: &mut CommandCaps,
        work: &mut FleetWork,
    ) -> bool {
        let ctx = self.ctx;
        let offline = p.offline;
        let inc_id = id_for(
            if offline {
                DISPLAY_OFFLINE
            } else {
                DISPLAY_ERROR
            },
            &d.id,
        );
        let (attempts, last_attempt) = self
            .prior_active(&inc_id)
            .map(|i| (i.attempts, i.last_attempt_at.as_deref().and_then(parse_ts)))
            .unwrap_or((0, None));
        let last = last_reload(&ctx.snapshot, &d.id);
        if let Some(t) = last.into_iter().chain(last_attempt).find(|t| *t > self.now) {
            ctx.warn(format!(
                "display \"{}\": last reload {} lies in the future (clock moved backwards?); counted as age 0",
                d.label,
                ts(t)
            ));
        }
        let send_at = ctx.now();
        if let Err(why) = caps.check(self.now, send_at, attempts, last_attempt, last) {
            ctx.info(format!("reload of \"{}\" deferred: {why}", d.label));
            self.o
                .note(format!("reload deferred for \"{}\": {why}", d.label));
            if let Some(i) = self.raised.get_mut(&inc_id) {
                i.remediation = if offline {
                    DEFERRED.to_string()
                } else {
                    format!("{}; {DEFERRED}", i.remediation)
                };
            }
            return true;
        }
        let out = ctx.api().mutate(reload_request(d)).await;
        if matches!(
            out.status,
            MutationStatus::Done(_) | MutationStatus::DryRun | MutationStatus::Failed(_)
        ) {
            caps.record(send_at);
        }
        let what = if offline {
            "reload command sent; waiting for reconnection (a command alone is not a fix)"
        } else {
            "status reset; reload command sent"
        };
        // For an error display the PATCH of this run already counted as its attempt.
        let count = offline || !d.error_status;
        let inc = self.raised.get_mut(&inc_id).expect("incident raised");
        match handle_mutation(ctx, &out, inc, what, count) {
            Handled::Gone => {
                self.mark_gone(&d.id, &d.label);
                return false;
            }
            Handled::Done => self.reload_sent(d, p, &out, work),
            Handled::DryRun => {
                self.o
                    .note(format!("would send reload to \"{}\" (dry run)", d.label));
            }
            Handled::Failed(e) => {
                self.o
                    .note(format!("reload of \"{}\" failed: {e}", d.label));
                halt_on(&out, &e, caps, work);
            }
        }
        if let Some(a) = out.action {
            self.o.remediations.push(a);
            if p.reload_audit.is_some() {
                p.reload_action = Some(self.o.remediations.len() - 1);
            }
        }
        true
    }

    /// A display vanished between the list and the mutation's `before` read: drop its per-display findings of this
    /// run (the sweep resolves them: "resolves when its entity is gone", section 3).
    pub(super) fn mark_gone(&mut self, display_id: &str, label: &str) {
        for t in PER_DISPLAY_TYPES {
            let id = id_for(t, display_id);
            self.raised.remove(&id);
            self.o
                .resolve_suffix
                .insert(id, " — display no longer exists".into());
        }
        self.o.note(format!(
            "display \"{label}\" no longer exists; nothing sent"
        ));
    }

    /// A reload the API accepted: counted, noted with the delivery counts, and its `before` heartbeat kept for the
    /// verification (6.3.3).
    fn reload_sent(
        &mut self,
        d: &Obs,
        p: &mut Pending,
        out: &MutationOutcome,
        work: &mut FleetWork,
    ) {
        work.route_ok.insert(SLUG_FLEET);
        self.counts.sent += 1;
        work.last_command = Some(Instant::now());
        let after = match &out.status {
            MutationStatus::Done(v) => v.clone(),
            _ => Value::Null,
        };
        let n = |k: &str| after.get(k).and_then(Value::as_u64).unwrap_or(0);
        self.o.note(format!(
            "reload sent to \"{}\" (devicesOnline {}, queued {}, delivered {})",
            d.label,
            n("devicesOnline"),
            n("devicesQueued"),
            n("devicesDelivered")
        ));
        p.before_heartbeat = out
            .before
            .as_ref()
            .and_then(|b| common::s(b, "lastHeartbeat"))
            .and_then(parse_ts);
        p.reload_audit = out.audit_id.clone();
    }
}

/// The `reload` fleet command for one display (agents.md 6.3.3, design/vizora-api.md).
fn reload_request(d: &Obs) -> MutationRequest {
    MutationRequest {
        action: format!("Send reload command to display \"{}\"", d.label),
        target: "display".into(),
        target_id: d.id.clone(),
        method: Method::POST,
        path: FLEET_COMMANDS_PATH.into(),
        body: json!({"command": "reload", "target": {"type": "device", "id": d.id}}),
        before_path: format!("{DISPLAYS_PATH}/{}", d.id),
        route_slug: SLUG_FLEET.into(),
        idempotent: false,
        precondition: None,
    }
}

/// A 429/503 halts further commands this run; a drifted route also records the drift (6.3.3, catalogue 3.3).
fn halt_on(out: &MutationOutcome, e: &str, caps: &mut CommandCaps, work: &mut FleetWork) {
    match &out.status {
        MutationStatus::Failed(ApiError::RateLimited { .. })
        | MutationStatus::Failed(ApiError::Server { status: 503, .. }) => {
            caps.halted = Some(e.to_string());
        }
        _ if out.is_drift() => {
            caps.halted = Some(format!("route {SLUG_FLEET} drifted"));
            work.drift_errors.push((SLUG_FLEET.into(), e.to_string()));
        }
        _ => {}
    }
}
