//! The remediation plan of one run (agents.md 6.1.3): `service-down` restarts the app (replacing per-instance
//! commands of that app), `pm2-errored` restarts the pm_id, `high-memory` reloads (`cluster_mode`) or restarts
//! (`fork_mode`) it; a name or id outside `[A-Za-z0-9._@:-]` is never put in a command (1.6).

use super::probes::{Health, Svc};
use super::processes::{
    Observed, ProcFinding, app_projection, classify, entry_key, entry_target, projection,
};
use super::restart::Planner;
use super::rules::Ladder;
use super::verify::Verify;
use crate::agents::AgentOutcome;
use crate::model::{IncidentStatus, Severity};
use crate::procman::{ProcStatus, ProcTarget};
use std::collections::{BTreeMap, HashMap};

/// What service-down decided per app (its name): the restart command acting on the app (`None` = no command this
/// run) and the remediation text its per-process incidents follow.
#[derive(Default)]
pub(super) struct AppGates {
    /// App name → the index of its restart command, `None` when service-down planned none.
    pub(super) gate: HashMap<String, Option<usize>>,
    /// App name → the remediation of its service-down incident when no command was planned.
    pub(super) remediation: HashMap<String, String>,
}

/// Plans `service-down` first (6.1.3), so that an app restart replaces the per-instance commands of that app: no
/// command when the app name is rejected, the list unreadable, the app missing, the manager acting or every instance
/// stopped by an operator; else the ladder decides.
pub(super) fn plan_service_down(
    planner: &mut Planner<'_>,
    obs: &Observed,
    health: &BTreeMap<Svc, Health>,
) -> AppGates {
    let h = &planner.ctx.cfg.health;
    let (systemd, listed, acting) = (obs.systemd, &obs.listed, &obs.acting);
    let mut app_gate: HashMap<String, Option<usize>> = HashMap::new();
    let mut sd_remediation: HashMap<String, String> = HashMap::new();
    for app in &obs.apps {
        let Some(Health::Down { detail }) = health.get(&app.svc) else {
            continue;
        };
        let svc = app.svc;
        let confirm = if h.probe_confirm_s > 0 {
            format!("{} s apart", h.probe_confirm_s)
        } else {
            "back to back".to_string()
        };
        let message = format!(
            "{} probe {} failed twice ({confirm}): {detail}",
            svc.key(),
            crate::redact::redact_str(svc.probe_url(h)),
        );
        let mut w = planner.work(
            "service-down",
            Severity::Critical,
            svc.key(),
            "service",
            message,
            Verify::Probe(svc),
            app.name.clone(),
        );
        let gate: Result<(), String> = if !app.valid {
            w.inc.error = Some("rejected process name or id".into());
            Err(format!(
                "the configured app name of {} is rejected ({}); fix the configuration and restart it by hand",
                svc.key(),
                crate::config::process_name::process_name_problem(&app.name)
                    .unwrap_or("it is not a valid process name")
            ))
        } else if listed.is_err() {
            Err(format!(
                "process list unreadable: cannot tell whether {} is stopped on purpose; check it by hand",
                app.name
            ))
        } else if app.entries.is_empty() {
            Err(format!(
                "{} is not in the process list (pm2-missing); start it by hand",
                app.name
            ))
        } else if let Some(why) = acting.get(&app.name) {
            Err(format!(
                "the process manager is acting ({why}); no command this run"
            ))
        } else if app.entries.iter().all(|p| p.status == ProcStatus::Stopped) {
            Err("stopped by an operator; not restarted".to_string())
        } else {
            Ok(())
        };
        match gate {
            Err(rem) => {
                if w.prior_escalated {
                    w.inc.status = IncidentStatus::Escalated;
                } else {
                    w.inc.remediation = rem.clone();
                }
                sd_remediation.insert(app.name.clone(), rem);
                app_gate.insert(app.name.clone(), None);
                planner.works.push(w);
            }
            Ok(()) => {
                let target = if systemd {
                    ProcTarget::Unit(app.name.clone())
                } else {
                    ProcTarget::App(app.name.clone())
                };
                let action = format!(
                    "Restart {} {} (service {} down)",
                    if systemd { "unit" } else { "app" },
                    app.name,
                    svc.key()
                );
                let idx = planner.plan(
                    w,
                    "restart",
                    target,
                    "service",
                    app_projection(app),
                    svc,
                    action,
                );
                if idx.is_none() {
                    let rem = planner
                        .works
                        .last()
                        .map(|w| w.inc.remediation.clone())
                        .unwrap_or_default();
                    sd_remediation.insert(app.name.clone(), rem);
                }
                app_gate.insert(app.name.clone(), idx);
            }
        }
    }
    AppGates {
        gate: app_gate,
        remediation: sd_remediation,
    }
}

/// Plans the per-process incidents (6.1.3): with a service-down of the app, they ride along with its restart or wait
/// with it; otherwise each gets its own command on its pm_id (never the app name) or unit, when the ladder allows.
pub(super) async fn plan_processes(
    planner: &mut Planner<'_>,
    obs: &Observed,
    gates: &AppGates,
    o: &mut AgentOutcome,
) {
    let ctx = planner.ctx;
    let systemd = obs.systemd;
    let (app_gate, sd_remediation) = (&gates.gate, &gates.remediation);
    let mut ecosystem: Option<HashMap<String, u64>> = None;
    if obs.listed.is_err() {
        return;
    }
    for app in &obs.apps {
        for p in &app.entries {
            let key = entry_key(p, systemd);
            let Some(ProcFinding {
                kind: kind_s,
                severity,
                message,
                verify,
                verb,
            }) = classify(ctx, obs, p, &mut ecosystem, o).await
            else {
                continue;
            };
            let mut w = planner.work(
                kind_s,
                severity,
                &key,
                "pm2-process",
                message,
                verify,
                key.clone(),
            );
            if let Some(gate) = app_gate.get(&app.name) {
                // service-down of this app governs restarts: ride along with its command, or wait with it.
                match gate {
                    Some(idx) => {
                        w.cmd = Some(*idx);
                        w.owner = false;
                        w.inc.remediation = format!(
                            "covered by the restart of {} (service-down {})",
                            app.name,
                            app.svc.key()
                        );
                        if w.prior_escalated {
                            w.inc.status = IncidentStatus::Escalated;
                        }
                        planner.works.push(w);
                    }
                    None => {
                        let lad = planner.ladder_for(&w, "pm2-process", &key.clone());
                        let rem = format!(
                            "restarts of {} follow its service-down incident: {}",
                            app.name,
                            sd_remediation.get(&app.name).cloned().unwrap_or_default()
                        );
                        let lad = match lad {
                            Ladder::Act | Ladder::Wait(_) => Ladder::Act,
                            other => other,
                        };
                        planner.settle_without_command(&mut w, &lad, rem);
                        if !app.valid {
                            w.inc.error = Some("rejected process name or id".into());
                        }
                        planner.works.push(w);
                    }
                }
                continue;
            }
            let Some(target) = entry_target(p, systemd) else {
                w.inc.remediation = format!(
                    "{key} has no pm_id in the process list; restart it by hand (never by app name)"
                );
                planner.works.push(w);
                continue;
            };
            if !app.valid {
                w.inc.error = Some("rejected process name or id".into());
                w.inc.remediation = format!(
                    "the process name is rejected ({}); no command",
                    crate::config::process_name::process_name_problem(&app.name)
                        .unwrap_or("it is not a valid process name")
                );
                planner.works.push(w);
                continue;
            }
            let action = format!(
                "{} {key} ({})",
                if verb == "reload" {
                    "Reload"
                } else {
                    "Restart"
                },
                if kind_s == "high-memory" {
                    "memory above threshold"
                } else {
                    "process errored"
                }
            );
            planner.plan(
                w,
                verb,
                target,
                "pm2-process",
                projection(p),
                app.svc,
                action,
            );
        }
    }
}
