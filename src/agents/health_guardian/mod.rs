//! health-guardian (agents.md 6.1; catalogue 3.1): every 5 minutes, without an API login.
//!
//! 1. **Probes** (6.1.1): loopback readiness of the middleware and realtime, the web page with its first two static
//!    assets. A failed probe is repeated once after `OPS_PROBE_CONFIRM_S`; only the second result is judged. A
//!    readiness 503 with a JSON body from a process whose liveness passes is `service-unready` (alert-only, never
//!    restarted); any other confirmed failure is `service-down`. Middleware probes count against the host-wide API
//!    budget (5.5); a probe the budget cannot admit before the deadline is not examined.
//! 2. **Processes** (6.1.2): the process manager's list (`pm2 jlist`, `systemctl show`, or the sandbox) per managed
//!    app: `errored` → `pm2-errored`, `stopped` → `pm2-stopped` (info, never acted on), transitional → not examined
//!    (the same `<app>:<pm_id>` transitional in 3 consecutive runs counts as errored; counted in
//!    `agentResults["health-guardian"].stats.transitionalRuns`), absent → `pm2-missing`; memory of online entries
//!    against the entry's own `max_memory_restart`, else the ecosystem file, else unknown (skipped and logged, never a
//!    default) → `high-memory`. An unreadable list is `process-manager-unavailable` with no process verdict. Host
//!    memory from `/proc/meminfo` → `host-memory-high`.
//! 3. **Remediation** (6.1.3): at most one command per process per run; `service-down` restarts the app (replacing
//!    per-instance commands of that app), `pm2-errored` restarts the pm_id, `high-memory` reloads (`cluster_mode`) or
//!    restarts (`fork_mode`) the pm_id. Per incident id: prior `escalated` → unchanged, no command; `attempts ≥
//!    OPS_RESTART_MAX_ATTEMPTS` → `escalated`; backoff `min(base × 2^n, cap)` since the last attempt (windows per 1.1)
//!    else `open` with `next restart allowed after <time>`. An incident resolved less than `OPS_BACKOFF_RESET_MINUTES`
//!    ago is continued by a new failure (2.5). Names and ids outside `[A-Za-z0-9._@:-]` are rejected (1.6, 9 #45).
//!    After the run's commands: one `OPS_RESTART_COOLDOWN_S` wait, full re-probe of the affected services and a fresh
//!    process list; verified → `resolved` (a fix), else `open` with `error` or `escalated` after the last attempt.
//! 4. **Edge watch** (6.1.4): `WEB_URL` when non-loopback; `/` and `/api/v1/health/ready`, each only when its
//!    backing service is locally healthy; alert-only `edge-unreachable`.
//! 5. **Alerts** (6.1.5, 7.6): inline on every transition to `escalated`, and critical on the open transition of
//!    `service-unready`, `edge-unreachable`, `pm2-missing` and `process-manager-unavailable`. Heartbeats are the
//!    runtime's.
//!
//! Every command runs from an argument vector through [`crate::procman`]; each gets an audit mutation line with its
//! `command` argv and `before` = process projection, and a RemediationAction (`pm2 restart`, `pm2 reload` or
//! `systemctl restart`). A dry run plans the commands (audit lines with `dryRun: true`, listed in the report) and runs
//! none.
//!
//! Layout: `probes` (6.1.1), `processes` (6.1.2), `restart` (the ladder per incident) and `plan` (which
//! commands, 6.1.3), `commands` (running them), `verify` and `settle` (after the cooldown), `edge` (6.1.4),
//! `escalation` (6.1.5), `report` (notes and stats); `rules` holds the pure rules. This file only sequences.

mod commands;
mod edge;
mod escalation;
mod plan;
mod probes;
mod processes;
mod report;
mod restart;
mod rules;
mod settle;
mod verify;

pub use rules::{Ladder, backoff_s, host_memory_used_pct, ladder, over_threshold};

use super::{AgentContext, AgentOutcome};
use crate::model::AgentName;
use crate::procman::{self, ProcessManager};
use probes::{Prober, Svc};
use restart::Planner;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Incident types of this agent (agents.md 3.1). The retired `tv-download-surface` (3.7) is deliberately absent, so
/// the runtime closes any active one.
pub const CATALOGUE: &[&str] = &[
    "service-down",
    "service-unready",
    "service-degraded",
    "pm2-errored",
    "pm2-stopped",
    "pm2-missing",
    "high-memory",
    "host-memory-high",
    "process-manager-unavailable",
    "edge-unreachable",
];

const AGENT: AgentName = AgentName::HealthGuardian;
/// Types judged by the probes.
const PROBE_TYPES: [&str; 3] = ["service-down", "service-unready", "service-degraded"];
/// Types judged from the process list.
const PROCESS_TYPES: [&str; 4] = ["pm2-errored", "pm2-stopped", "pm2-missing", "high-memory"];
/// Types whose recently resolved incident is continued by a new failure (agents.md 2.5, 6.1.3).
const CONTINUABLE: [&str; 3] = ["service-down", "pm2-errored", "high-memory"];
/// Critical types without automatic remediation: inline critical alert on their open transition (6.1.5).
const ALERT_ON_OPEN: [&str; 4] = [
    "service-unready",
    "edge-unreachable",
    "pm2-missing",
    "process-manager-unavailable",
];
/// Consecutive runs a process may be seen transitional before it is treated as `errored` (6.1.2).
pub const TRANSITIONAL_RUNS_LIMIT: u64 = 3;
/// Timeout of the ecosystem-file read (agents.md 5.6: 10 s).
const ECOSYSTEM_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs health-guardian once (agents.md 6.1). Never logs in to the API; never fails the run for a finding (a process
/// manager that cannot be read is the critical finding `process-manager-unavailable`, exit 1).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut o = AgentOutcome::new(CATALOGUE);
    let prober = Prober {
        ctx,
        client: crate::agents::probes::probe_client(),
        budget: crate::vizora::Client::budget_from_config(&ctx.cfg),
    };

    // 1. Probes (6.1.1).
    let health = probes::detect(&prober, &mut o).await;

    // 2. Processes (6.1.2).
    let pm: Arc<dyn ProcessManager> = match &ctx.process_manager {
        Some(p) => p.clone(),
        None => Arc::from(procman::from_config(&ctx.cfg.health)),
    };
    let obs = processes::observe(ctx, pm.as_ref(), &mut o).await;

    // 3. Remediation plan (6.1.3): service-down first, so that it replaces per-instance commands of its app.
    let mut planner = Planner {
        ctx,
        works: Vec::new(),
        cmds: Vec::new(),
        commanded: BTreeMap::new(),
    };
    let gates = plan::plan_service_down(&mut planner, &obs, &health);
    plan::plan_processes(&mut planner, &obs, &gates, &mut o).await;

    // 4. Execute (or, in a dry run, list) the commands.
    let Planner {
        mut works,
        mut cmds,
        ..
    } = planner;
    let any_ran = commands::execute(ctx, pm.as_ref(), &mut cmds, &mut works, &mut o).await;

    // 5. Verification (6.1.3): one cooldown, full re-probe of the affected services, a fresh process list.
    let mut final_health = health.clone();
    let mut recheck = verify::Recheck::default();
    if any_ran {
        let affected: Vec<Svc> = cmds
            .iter()
            .filter(|c| c.ok)
            .map(|c| c.svc)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        recheck = verify::after_cooldown(&prober, pm.as_ref(), &affected).await;
        for (svc, hl) in &recheck.reprobed {
            final_health.insert(*svc, hl.clone());
        }
    }
    let priors = ctx.priors();
    settle::settle(ctx, &mut works, &cmds, &recheck, obs.systemd, &mut o);
    report::raise_works(works, &mut o);

    // Host memory (6.1.2).
    processes::host_memory(ctx, &mut o);

    // 6. Edge watch (6.1.4), with the local health after verification.
    edge::edge_watch(ctx, &prober, &final_health, &mut o).await;

    // 7. Inline alerts (6.1.5, 7.6).
    escalation::send_alerts(ctx, &priors, &mut o).await;

    o.stats = Some(report::stats(
        obs.transitional_runs,
        &final_health,
        obs.kind,
        &cmds,
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_every_type_of_3_1_and_not_the_retired_one() {
        assert_eq!(CATALOGUE.len(), 10);
        assert!(!CATALOGUE.contains(&"tv-download-surface"));
    }
}
