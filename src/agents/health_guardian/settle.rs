//! Settling the incidents that had a command (agents.md 6.1.3): dry run, deferred, rejected and failed commands
//! leave them open (escalated stays escalated); a command that ran is verified: fixed → `resolved`, else `open` with
//! `error`, or `escalated` after the last attempt. Each verification is audited once, by the command's owner.

use super::AGENT;
use super::commands::show_argv;
use super::restart::{Cmd, Work, exhausted_remediation};
use super::verify::{Recheck, check};
use crate::agents::{AgentContext, AgentOutcome, resolved};
use crate::model::IncidentStatus;
use crate::state::audit::VerificationLine;

/// Settles every work item with a command from the command's result and the `recheck` after the cooldown.
pub(super) fn settle(
    ctx: &AgentContext,
    works: &mut [Work],
    cmds: &[Cmd],
    recheck: &Recheck,
    systemd: bool,
    o: &mut AgentOutcome,
) {
    let max = ctx.cfg.health.restart_max_attempts;
    let threshold = ctx.cfg.health.memory_threshold_pct;
    let now_end = ctx.now();
    for w in works.iter_mut() {
        let Some(idx) = w.cmd else {
            continue;
        };
        let c = &cmds[idx];
        if c.simulated {
            if w.prior_escalated {
                continue;
            }
            w.inc.status = IncidentStatus::Open;
            w.inc.remediation = format!(
                "dry run: would run `{}` (attempt {} of {max})",
                show_argv(&c.argv),
                c.attempt
            );
            continue;
        }
        if c.deferred {
            w.inc.status = if w.prior_escalated {
                IncidentStatus::Escalated
            } else {
                IncidentStatus::Open
            };
            w.inc.remediation = format!(
                "deferred: the run deadline was reached before `{}` could start",
                show_argv(&c.argv)
            );
            continue;
        }
        if c.rejected {
            w.inc.status = if w.prior_escalated {
                IncidentStatus::Escalated
            } else {
                IncidentStatus::Open
            };
            w.inc.error = Some("rejected process name or id".into());
            w.inc.remediation =
                "the command was rejected and nothing ran; restart it by hand".into();
            continue;
        }
        if !c.ok {
            w.inc.status = if w.prior_escalated {
                IncidentStatus::Escalated
            } else {
                IncidentStatus::Open
            };
            w.inc.error = c.error.clone();
            w.inc.remediation = format!(
                "`{}` failed (attempt {} of {max}); the next attempt follows the restart backoff",
                show_argv(&c.argv),
                w.inc.attempts
            );
            continue;
        }
        let (verified, detail) = check(
            &w.verify,
            &recheck.reprobed,
            recheck.relist.as_ref(),
            systemd,
            threshold,
        );
        if w.owner {
            let line = VerificationLine::new(
                &ctx.run_id,
                AGENT.as_str(),
                c.mutation_id.as_deref().unwrap_or(""),
                c.rem_target,
                &c.rem_target_id,
                verified,
                detail.clone(),
                now_end,
            );
            if let Err(e) = ctx.audit.append(&line) {
                ctx.error(format!("audit append failed (verification): {e}"));
            }
            if let Some(ri) = c.remediation_idx {
                o.remediations[ri].verified = Some(verified);
            }
            o.note(format!(
                "verification of `{}`: {} ({detail})",
                show_argv(&c.argv),
                if verified { "fixed" } else { "still failing" }
            ));
        }
        if verified {
            w.inc.remediation = format!(
                "restarted with `{}` (attempt {} of {max}); verified: {detail}",
                show_argv(&c.argv),
                w.inc.attempts
            );
            w.inc = resolved(w.inc.clone(), now_end);
            if w.owner {
                o.fixed += 1;
            }
        } else {
            w.inc.error = Some(format!(
                "still failing after `{}`: {detail}",
                show_argv(&c.argv)
            ));
            if w.prior_escalated || w.inc.attempts >= max {
                w.inc.status = IncidentStatus::Escalated;
                w.inc.remediation = exhausted_remediation(&w.label, w.inc.attempts, max);
            } else {
                w.inc.status = IncidentStatus::Open;
                w.inc.remediation = format!(
                    "restarted with `{}` (attempt {} of {max}) without a fix; the next restart follows the backoff",
                    show_argv(&c.argv),
                    w.inc.attempts
                );
            }
        }
    }
}
