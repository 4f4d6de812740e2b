//! Remediation planning of health-guardian (agents.md 6.1.3): the work items (actionable incidents continuing their
//! episode, 2.5), the ladder per incident (escalated stays, attempts exhausted escalates, backoff waits) and at most
//! one command per process per run.

use super::probes::Svc;
use super::rules::{Ladder, ladder};
use super::verify::Verify;
use super::{AGENT, CONTINUABLE};
use crate::agents::AgentContext;
use crate::clock::window_elapsed;
use crate::model::{Incident, IncidentStatus, Severity, incident_id, parse_ts, ts};
use crate::procman::ProcTarget;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// A command of this run (one per process at most).
#[derive(Debug)]
pub(super) struct Cmd {
    /// `restart` or `reload`.
    pub(super) verb: &'static str,
    pub(super) target: ProcTarget,
    pub(super) rem_target: &'static str,
    pub(super) rem_target_id: String,
    pub(super) action: String,
    pub(super) before: Value,
    pub(super) svc: Svc,
    pub(super) attempt: u32,
    // Results.
    pub(super) argv: Vec<String>,
    pub(super) ran: bool,
    pub(super) ok: bool,
    pub(super) rejected: bool,
    /// Not started: the run deadline was reached (agents.md 1.2: deferred, not an attempt).
    pub(super) deferred: bool,
    /// Not started: a dry run; the effects gate audited it with `dryRun: true` (agents.md 1.5).
    pub(super) simulated: bool,
    pub(super) error: Option<String>,
    pub(super) mutation_id: Option<String>,
    pub(super) remediation_idx: Option<usize>,
}

/// An actionable incident (`service-down`, `pm2-errored`, `high-memory`) and its plan.
#[derive(Debug)]
pub(super) struct Work {
    pub(super) inc: Incident,
    pub(super) prior_escalated: bool,
    pub(super) verify: Verify,
    /// Index of the command acting on it (its own, or the app restart it rides along with).
    pub(super) cmd: Option<usize>,
    pub(super) owner: bool,
    /// Process name (for log lines).
    pub(super) label: String,
}

/// Plans at most one command per process per run and settles the incidents that get none (6.1.3).
pub(super) struct Planner<'a> {
    pub(super) ctx: &'a AgentContext,
    pub(super) works: Vec<Work>,
    pub(super) cmds: Vec<Cmd>,
    /// Processes (command targets) already covered by a command this run → that command.
    pub(super) commanded: BTreeMap<String, usize>,
}

impl Planner<'_> {
    /// The episode prior of `id`: the active incident, else (continuable types) one resolved less than
    /// `OPS_BACKOFF_RESET_MINUTES` ago (agents.md 2.5, windows per 1.1).
    fn episode_prior(&self, id: &str, kind: &str) -> Option<Incident> {
        episode_prior(self.ctx, id, kind)
    }

    /// The instant of the episode's last attempt: `lastAttemptAt`, else the newest matching RemediationAction.
    fn last_attempt(
        &self,
        inc: &Incident,
        rem_target: &str,
        rem_target_id: &str,
    ) -> Option<DateTime<Utc>> {
        if let Some(t) = inc.last_attempt_at.as_deref().and_then(parse_ts) {
            return Some(t);
        }
        self.ctx
            .snapshot
            .recent_remediations
            .iter()
            .filter(|a| {
                a.agent == AGENT.as_str() && a.target == rem_target && a.target_id == rem_target_id
            })
            .filter_map(|a| parse_ts(&a.timestamp))
            .max()
    }

    pub(super) fn ladder_for(&self, w: &Work, rem_target: &str, rem_target_id: &str) -> Ladder {
        let last = self.last_attempt(&w.inc, rem_target, rem_target_id);
        ladder(
            w.prior_escalated,
            w.inc.attempts,
            last,
            self.ctx.started,
            &self.ctx.cfg.health,
            self.ctx.cfg.window_tolerance_s,
        )
    }

    /// Builds a work item continuing its episode.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn work(
        &self,
        kind: &str,
        severity: Severity,
        target_id: &str,
        target: &str,
        message: String,
        verify: Verify,
        label: String,
    ) -> Work {
        let id = incident_id(AGENT, kind, target_id);
        let prior = self.episode_prior(&id, kind);
        let mut inc = Incident::new(
            AGENT,
            kind,
            severity,
            target,
            target_id,
            message,
            "",
            self.ctx.started,
        );
        let mut prior_escalated = false;
        if let Some(p) = &prior {
            inc.detected = p.detected.clone();
            inc.attempts = p.attempts;
            inc.last_attempt_at = p.last_attempt_at.clone();
            prior_escalated = p.status == IncidentStatus::Escalated;
            if prior_escalated {
                inc.remediation = p.remediation.clone();
                inc.error = p.error.clone();
            }
        }
        Work {
            inc,
            prior_escalated,
            verify,
            cmd: None,
            owner: false,
            label,
        }
    }

    /// Applies a non-acting ladder result to `w` (no command this run). `reason` explains a plain "open".
    pub(super) fn settle_without_command(
        &self,
        w: &mut Work,
        lad: &Ladder,
        open_remediation: String,
    ) {
        let max = self.ctx.cfg.health.restart_max_attempts;
        match lad {
            Ladder::KeepEscalated => {
                w.inc.status = IncidentStatus::Escalated;
                if w.inc.remediation.is_empty() {
                    w.inc.remediation = exhausted_remediation(&w.label, w.inc.attempts, max);
                }
            }
            Ladder::Escalate => {
                w.inc.status = IncidentStatus::Escalated;
                w.inc.remediation = exhausted_remediation(&w.label, w.inc.attempts, max);
            }
            Ladder::Wait(_) | Ladder::Act => {
                w.inc.status = IncidentStatus::Open;
                w.inc.remediation = open_remediation;
            }
        }
    }

    /// Plans a command for `w` (the owner) or settles it by the ladder.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan(
        &mut self,
        mut w: Work,
        verb: &'static str,
        target: ProcTarget,
        rem_target: &'static str,
        before: Value,
        svc: Svc,
        action: String,
    ) -> Option<usize> {
        let rem_target_id = w.inc.target_id.clone();
        let lad = self.ladder_for(&w, rem_target, &rem_target_id);
        let max = self.ctx.cfg.health.restart_max_attempts;
        match &lad {
            Ladder::Act => {
                let key = target_key(&target);
                if let Some(&idx) = self.commanded.get(&key) {
                    // One command per process per run: ride along with the command already planned for it.
                    w.cmd = Some(idx);
                    w.inc.remediation =
                        format!("covered by the command already planned for {target}");
                    self.works.push(w);
                    return Some(idx);
                }
                let idx = self.cmds.len();
                self.commanded.insert(key, idx);
                self.cmds.push(Cmd {
                    verb,
                    target,
                    rem_target,
                    rem_target_id,
                    action,
                    before,
                    svc,
                    attempt: w.inc.attempts + 1,
                    argv: Vec::new(),
                    ran: false,
                    ok: false,
                    rejected: false,
                    deferred: false,
                    simulated: false,
                    error: None,
                    mutation_id: None,
                    remediation_idx: None,
                });
                w.cmd = Some(idx);
                w.owner = true;
                self.works.push(w);
                Some(idx)
            }
            Ladder::Wait(t) => {
                let rem = format!(
                    "restart backoff: next restart allowed after {} (attempt {} of {max} so far)",
                    ts(*t),
                    w.inc.attempts
                );
                self.settle_without_command(&mut w, &lad, rem);
                self.works.push(w);
                None
            }
            _ => {
                self.settle_without_command(&mut w, &lad, String::new());
                self.works.push(w);
                None
            }
        }
    }
}

/// The key of one command target: one command per process per run.
fn target_key(t: &ProcTarget) -> String {
    match t {
        ProcTarget::App(s) => format!("app:{s}"),
        ProcTarget::PmId(n) => format!("id:{n}"),
        ProcTarget::Unit(u) => format!("unit:{u}"),
    }
}

/// The remediation text of an incident whose automatic restarts are exhausted.
pub(super) fn exhausted_remediation(label: &str, attempts: u32, max: u32) -> String {
    format!(
        "automatic restarts exhausted ({attempts} of {max} attempts without a verified fix); investigate {label} \
         (logs, dependencies, recent deploys) and restart it by hand"
    )
}

/// The episode prior of `id` (agents.md 2.5): this agent's active incident with that id, else for `service-down`,
/// `pm2-errored` and `high-memory` the newest one resolved less than `OPS_BACKOFF_RESET_MINUTES` before the run's
/// start (window per 1.1). An unparseable `resolvedAt` is unknown: no continuation.
pub(super) fn episode_prior(ctx: &AgentContext, id: &str, kind: &str) -> Option<Incident> {
    let mine = || {
        ctx.snapshot
            .incidents
            .iter()
            .filter(|i| i.agent == AGENT.as_str() && i.id == id)
    };
    if let Some(a) = mine().find(|i| i.is_active()) {
        return Some(a.clone());
    }
    if !CONTINUABLE.contains(&kind) {
        return None;
    }
    let reset_s =
        i64::try_from(ctx.cfg.health.backoff_reset_minutes.saturating_mul(60)).unwrap_or(i64::MAX);
    mine()
        .filter_map(|i| {
            let r = i.resolved_at.as_deref().and_then(parse_ts)?;
            (!window_elapsed(ctx.started, r, reset_s, ctx.cfg.window_tolerance_s)).then_some((r, i))
        })
        .max_by_key(|(r, _)| *r)
        .map(|(_, i)| i.clone())
}
