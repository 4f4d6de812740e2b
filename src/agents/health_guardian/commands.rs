//! Running the planned commands (agents.md 6.1.3, 2.3): each from an argument vector through [`crate::procman`],
//! with an audit mutation line (`command` argv, `before` = process projection) and a RemediationAction; a dry run
//! audits them with `dryRun: true` and runs none; the run deadline defers what has not started (1.2).

use super::AGENT;
use super::restart::{Cmd, Work};
use crate::agents::{AgentContext, AgentOutcome};
use crate::config::HealthConfig;
use crate::effects::Gated;
use crate::model::{RemediationAction, ts};
use crate::procman::{PmError, ProcTarget, ProcessManager};
use crate::state::audit::MutationLine;
use serde_json::{Map, json};

/// `pm2 restart`, `pm2 reload` or `systemctl restart` (agents.md 2.3).
pub(super) fn method_for(kind: &str, verb: &str) -> String {
    if kind == "systemd" {
        "systemctl restart".into()
    } else {
        format!("pm2 {verb}")
    }
}

/// The argv a command would run (dry run, failure records without one).
pub(super) fn planned_argv(
    h: &HealthConfig,
    kind: &str,
    verb: &str,
    target: &ProcTarget,
) -> Vec<String> {
    let arg = target.to_string();
    match kind {
        "systemd" => vec![h.systemctl_bin.clone(), "restart".into(), arg],
        "pm2" => vec![h.pm2_bin.clone(), verb.into(), arg],
        other => vec![other.into(), verb.into(), arg],
    }
}

/// An argv as shown in notes and remediation texts (never run through a shell).
pub(super) fn show_argv(argv: &[String]) -> String {
    argv.join(" ")
}

/// The redacted error of a failed command: its stderr's first line, or the error.
fn command_error(method: &str, e: &PmError) -> String {
    let first = e
        .stderr_first_line()
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string());
    crate::redact::redact_str(&format!("{method} failed: {first}"))
}

/// Runs (or in a dry run, audits and lists) `cmds` in order, counting an attempt on every incident a command acted
/// on. Returns whether any command ran successfully (then verification follows).
pub(super) async fn execute(
    ctx: &AgentContext,
    pm: &dyn ProcessManager,
    cmds: &mut [Cmd],
    works: &mut [Work],
    o: &mut AgentOutcome,
) -> bool {
    let h = &ctx.cfg.health;
    let kind = pm.kind();
    let max = h.restart_max_attempts;
    let mut any_ran = false;
    for (idx, c) in cmds.iter_mut().enumerate() {
        let method = method_for(kind, c.verb);
        let planned = planned_argv(h, kind, c.verb, &c.target);
        let at = ctx.now();
        let mut line = MutationLine::new(
            &ctx.run_id,
            AGENT.as_str(),
            &c.action,
            &method,
            c.rem_target,
            &c.rem_target_id,
            at,
            c.before.clone(),
            false,
        );
        line.command = Some(planned.clone());
        let target = c.target.clone();
        let op = || async {
            // Logged only when the gate lets the command run.
            ctx.info(format!("running `{}` ({})", show_argv(&planned), c.action));
            if c.verb == "reload" {
                pm.reload(&target).await
            } else {
                pm.restart(&target).await
            }
        };
        let gated = ctx
            .effects()
            .mutate(line, op, |res, line| {
                match res {
                    Ok(rec) => {
                        line.command = Some(rec.argv.clone());
                        line.success = true;
                        line.after =
                            Some(json!({"exitCode": rec.exit_code, "durationMs": rec.duration_ms}));
                    }
                    Err(PmError::Rejected(_)) => return false, // nothing ran: no mutation (6.1.3)
                    Err(e) => {
                        line.command =
                            Some(e.argv().map(<[String]>::to_vec).unwrap_or(planned.clone()));
                        line.success = false;
                        line.error = Some(command_error(&method, e));
                    }
                }
                true
            })
            .await;
        let (res, line) = match gated {
            Gated::Simulated => {
                c.argv = planned;
                c.simulated = true;
                o.note(format!(
                    "dry run: would run `{}` ({}, attempt {} of {max})",
                    show_argv(&c.argv),
                    c.action,
                    c.attempt
                ));
                continue;
            }
            Gated::Deferred => {
                c.argv = planned;
                c.deferred = true;
                ctx.warn(format!(
                    "run deadline reached: `{}` deferred ({})",
                    show_argv(&c.argv),
                    c.action
                ));
                continue;
            }
            Gated::Applied(done) => done,
        };
        // The argv as run (or, when nothing ran, as planned): `finish` above recorded it in the audit line.
        c.argv = line.command.clone().unwrap_or_else(|| planned.clone());
        match res {
            Ok(_) => {
                c.ran = true;
                c.ok = true;
                any_ran = true;
            }
            Err(PmError::Rejected(why)) => {
                c.rejected = true;
                c.error = Some("rejected process name or id".into());
                ctx.error(format!("command rejected, nothing ran: {why}"));
                continue; // nothing ran: no mutation, no attempt (6.1.3)
            }
            Err(e) => {
                c.ran = true;
                c.error = line.error.clone();
                ctx.error(format!("`{}` failed: {e}", show_argv(&c.argv)));
            }
        }
        c.mutation_id = Some(line.id.clone());
        o.remediations.push(RemediationAction {
            agent: AGENT.as_str().into(),
            timestamp: ts(at),
            action: c.action.clone(),
            target: c.rem_target.into(),
            target_id: c.rem_target_id.clone(),
            method,
            endpoint: None,
            before: Some(c.before.clone()),
            after: line.after.clone(),
            success: c.ok,
            error: c.error.clone(),
            verified: None,
            run_id: Some(ctx.run_id.clone()),
            extra: Map::new(),
        });
        c.remediation_idx = Some(o.remediations.len() - 1);
        o.note(match &c.error {
            None => format!(
                "ran `{}` ({}, attempt {} of {max})",
                show_argv(&c.argv),
                c.action,
                c.attempt
            ),
            Some(err) => format!(
                "command failed: {err} ({}, attempt {} of {max})",
                c.action, c.attempt
            ),
        });
        // Attempt bookkeeping for every incident this command acts on.
        for w in works.iter_mut().filter(|w| w.cmd == Some(idx)) {
            if w.owner || !w.prior_escalated {
                w.inc.attempts += 1;
                w.inc.last_attempt_at = Some(ts(at));
            }
        }
    }
    any_ran
}
