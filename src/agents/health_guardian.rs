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

use super::probes::{self, LiveService, ProbeVerdict};
use super::{AgentContext, AgentOutcome, InlineAlert, InlineKind, resolved};
use crate::clock::window_elapsed;
use crate::config::HealthConfig;
use crate::model::{
    AgentName, Incident, IncidentStatus, RemediationAction, Severity, incident_id, parse_ts, ts,
};
use crate::procman::{self, PmError, ProcStatus, ProcTarget, ProcessInfo, ProcessManager};
use crate::state::audit::{MutationLine, VerificationLine};
use crate::vizora::budget::{Admission, RateBudget};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures::future::join_all;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
/// Edge paths and the local service backing each (6.1.4).
const EDGE_PATHS: [(&str, Svc); 2] = [("/", Svc::Web), ("/api/v1/health/ready", Svc::Middleware)];

// -------------------------------------------------------------------------------------------------------------------
// Pure rules (unit-tested below)

/// Decision of the remediation ladder for one incident id (agents.md 6.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ladder {
    /// The prior incident is `escalated`: re-raise it unchanged, no command.
    KeepEscalated,
    /// `attempts ≥ OPS_RESTART_MAX_ATTEMPTS` without a verified fix: escalate, no command.
    Escalate,
    /// Inside the backoff window: `open`, `next restart allowed after <instant>` (the nominal end of the window).
    Wait(DateTime<Utc>),
    /// Act now: this is attempt `attempts + 1`.
    Act,
}

/// Backoff before attempt `n + 1` given `n ≥ 1` attempts so far, in seconds: `min(base × 2^n, cap)`
/// (`OPS_RESTART_BACKOFF_BASE_S`, `OPS_RESTART_BACKOFF_CAP_S`; agents.md 6.1.3). Saturates instead of overflowing.
pub fn backoff_s(attempts: u32, base_s: u64, cap_s: u64) -> u64 {
    let factor = 1u64.checked_shl(attempts).unwrap_or(u64::MAX);
    base_s.saturating_mul(factor).min(cap_s)
}

/// The ladder of agents.md 6.1.3 for one incident: `prior_escalated` (the active prior is `escalated`), the
/// episode's `attempts` and the instant of its last attempt (`lastAttemptAt`, else the newest matching
/// RemediationAction; `None` = no wait), judged at the run's start `now` with the early margin `tolerance_s`
/// (agents.md 1.1: a negative age counts as 0).
pub fn ladder(
    prior_escalated: bool,
    attempts: u32,
    last_attempt: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    h: &HealthConfig,
    tolerance_s: i64,
) -> Ladder {
    if prior_escalated {
        return Ladder::KeepEscalated;
    }
    if attempts >= h.restart_max_attempts {
        return Ladder::Escalate;
    }
    if attempts >= 1
        && let Some(last) = last_attempt
    {
        let window = backoff_s(attempts, h.restart_backoff_base_s, h.restart_backoff_cap_s);
        let window = i64::try_from(window).unwrap_or(i64::MAX);
        if !window_elapsed(now, last, window, tolerance_s) {
            return Ladder::Wait(last + ChronoDuration::seconds(window));
        }
    }
    Ladder::Act
}

/// Host memory used in percent from `/proc/meminfo` text: `(MemTotal − MemAvailable) / MemTotal × 100`
/// (agents.md 6.1.2). `None` when either field is missing or MemTotal is 0.
pub fn host_memory_used_pct(meminfo: &str) -> Option<f64> {
    let field = |name: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
    };
    let total = field("MemTotal")?;
    let avail = field("MemAvailable")?;
    if total == 0 {
        return None;
    }
    Some(total.saturating_sub(avail) as f64 / total as f64 * 100.0)
}

/// Whether `memory` bytes exceed `pct` % of `limit` bytes (strict, agents.md 1.1).
pub fn over_threshold(memory: u64, limit: u64, pct: f64) -> bool {
    memory as f64 > limit as f64 * pct / 100.0
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

// -------------------------------------------------------------------------------------------------------------------
// Services and probes

/// A probed service (agents.md 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Svc {
    Middleware,
    Realtime,
    Web,
}

impl Svc {
    const ALL: [Svc; 3] = [Svc::Middleware, Svc::Realtime, Svc::Web];

    fn key(self) -> &'static str {
        match self {
            Svc::Middleware => "middleware",
            Svc::Realtime => "realtime",
            Svc::Web => "web",
        }
    }

    fn probe_url(self, h: &HealthConfig) -> &str {
        match self {
            Svc::Middleware => &h.middleware_probe_url,
            Svc::Realtime => &h.realtime_probe_url,
            Svc::Web => &h.web_probe_url,
        }
    }

    fn live(self) -> Option<LiveService> {
        match self {
            Svc::Middleware => Some(LiveService::Middleware),
            Svc::Realtime => Some(LiveService::Realtime),
            Svc::Web => None,
        }
    }
}

/// A judged probe (agents.md 6.1.1).
#[derive(Debug, Clone)]
enum Health {
    Healthy {
        degraded: bool,
    },
    /// Readiness 503 with JSON while liveness passes: a dependency is down.
    Unready {
        detail: String,
    },
    Down {
        detail: String,
    },
    /// Not probed (budget or deadline): not examined.
    NotProbed {
        reason: String,
    },
}

impl Health {
    fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy { .. })
    }

    fn word(&self) -> &'static str {
        match self {
            Health::Healthy { degraded: false } => "healthy",
            Health::Healthy { degraded: true } => "degraded",
            Health::Unready { .. } => "unready",
            Health::Down { .. } => "down",
            Health::NotProbed { .. } => "not probed",
        }
    }

    fn describe(&self) -> String {
        match self {
            Health::Healthy { degraded: false } => "healthy".into(),
            Health::Healthy { degraded: true } => "healthy (readiness reports degraded)".into(),
            Health::Unready { detail } => format!("unready ({detail}); liveness passes"),
            Health::Down { detail } => format!("down ({detail})"),
            Health::NotProbed { reason } => format!("not probed ({reason})"),
        }
    }
}

struct Prober<'a> {
    ctx: &'a AgentContext,
    client: reqwest::Client,
    budget: Arc<RateBudget>,
}

impl Prober<'_> {
    /// One request-level probe; `Err` = not probed (budget or deadline).
    async fn once(&self, svc: Svc) -> Result<ProbeVerdict, String> {
        let h = &self.ctx.cfg.health;
        let t = self.ctx.cfg.api.probe_timeout;
        if Instant::now() >= self.ctx.deadline {
            return Err("run deadline reached".into());
        }
        let url = svc.probe_url(h);
        Ok(match svc {
            Svc::Middleware => {
                self.budget
                    .acquire(Admission::Request, self.ctx.deadline)
                    .await
                    .map_err(|e| e.to_string())?;
                probes::probe_middleware(&self.client, url, t).await
            }
            Svc::Realtime => probes::probe_realtime(&self.client, url, t).await,
            Svc::Web => probes::probe_web(&self.client, url, t).await,
        })
    }

    /// Judges the (second) result: a readiness 503 with JSON asks liveness (agents.md 6.1.1).
    async fn judge(&self, svc: Svc, v: Result<ProbeVerdict, String>) -> Health {
        let v = match v {
            Ok(v) => v,
            Err(reason) => return Health::NotProbed { reason },
        };
        match v {
            ProbeVerdict::Healthy { degraded } => Health::Healthy { degraded },
            ProbeVerdict::Unhealthy {
                detail,
                readiness_503_json: true,
            } if svc.live().is_some() => {
                let live_url = probes::live_url_for(
                    svc.probe_url(&self.ctx.cfg.health),
                    svc.live().expect("checked"),
                );
                if svc == Svc::Middleware
                    && let Err(e) = self
                        .budget
                        .acquire(Admission::Request, self.ctx.deadline)
                        .await
                {
                    return Health::NotProbed {
                        reason: format!("liveness not probed: {e}"),
                    };
                }
                if probes::probe_live(&self.client, &live_url, self.ctx.cfg.api.probe_timeout).await
                {
                    Health::Unready { detail }
                } else {
                    Health::Down {
                        detail: format!(
                            "{detail}; liveness {} failed",
                            crate::redact::redact_str(&live_url)
                        ),
                    }
                }
            }
            ProbeVerdict::Unhealthy { detail, .. } => Health::Down { detail },
        }
    }

    /// Probes `svcs` concurrently; with `confirm`, failed ones are probed again after `OPS_PROBE_CONFIRM_S` and the
    /// second result is judged. Returns each service's health and whether a confirmation probe ran.
    async fn probe(&self, svcs: &[Svc], confirm: bool) -> Vec<(Svc, Health, bool)> {
        let first = join_all(svcs.iter().map(|&s| async move { (s, self.once(s).await) })).await;
        let failing: Vec<Svc> = first
            .iter()
            .filter(|(_, r)| matches!(r, Ok(v) if !v.is_healthy()))
            .map(|(s, _)| *s)
            .collect();
        let mut results: Vec<(Svc, Result<ProbeVerdict, String>, bool)> =
            first.into_iter().map(|(s, r)| (s, r, false)).collect();
        if confirm && !failing.is_empty() {
            let secs = self.ctx.cfg.health.probe_confirm_s;
            self.ctx.info(format!(
                "probe failed for {}; confirming in {secs} s",
                failing
                    .iter()
                    .map(|s| s.key())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            self.ctx.wait_s(secs).await;
            let second = join_all(
                failing
                    .iter()
                    .map(|&s| async move { (s, self.once(s).await) }),
            )
            .await;
            for (s, r) in second {
                if let Some(slot) = results.iter_mut().find(|(x, _, _)| *x == s) {
                    slot.1 = r;
                    slot.2 = true;
                }
            }
        }
        join_all(
            results
                .into_iter()
                .map(|(s, r, c)| async move { (s, self.judge(s, r).await, c) }),
        )
        .await
    }
}

// -------------------------------------------------------------------------------------------------------------------
// Processes

/// A managed app (agents.md 8.4): its service, its name (PM2 app or systemd unit), whether the name may enter an argv.
#[derive(Debug, Clone)]
struct App {
    svc: Svc,
    name: String,
    valid: bool,
    entries: Vec<ProcessInfo>,
}

/// `<app>:<pm_id>` (PM2, sandbox) or the unit (systemd) (agents.md 3.1).
fn entry_key(p: &ProcessInfo, systemd: bool) -> String {
    match (systemd, p.pm_id) {
        (false, Some(id)) => format!("{}:{id}", p.name),
        _ => p.name.clone(),
    }
}

/// The command target of one process: the pm_id (never the app name), or the systemd unit.
fn entry_target(p: &ProcessInfo, systemd: bool) -> Option<ProcTarget> {
    if systemd {
        Some(ProcTarget::Unit(p.name.clone()))
    } else {
        p.pm_id.map(ProcTarget::PmId)
    }
}

fn projection(p: &ProcessInfo) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}

fn app_projection(app: &App) -> Value {
    json!({
        "app": app.name,
        "instances": app.entries.iter().map(projection).collect::<Vec<_>>(),
    })
}

/// `pm2 restart`, `pm2 reload` or `systemctl restart` (agents.md 2.3).
fn method_for(kind: &str, verb: &str) -> String {
    if kind == "systemd" {
        "systemctl restart".into()
    } else {
        format!("pm2 {verb}")
    }
}

/// The argv a command would run (dry run, failure records without one).
fn planned_argv(h: &HealthConfig, kind: &str, verb: &str, target: &ProcTarget) -> Vec<String> {
    let arg = target.to_string();
    match kind {
        "systemd" => vec![h.systemctl_bin.clone(), "restart".into(), arg],
        "pm2" => vec![h.pm2_bin.clone(), verb.into(), arg],
        other => vec![other.into(), verb.into(), arg],
    }
}

fn show_argv(argv: &[String]) -> String {
    argv.join(" ")
}

// -------------------------------------------------------------------------------------------------------------------
// Work items

/// What verification checks for one incident.
#[derive(Debug, Clone)]
enum Verify {
    Probe(Svc),
    Online {
        name: String,
        pm_id: Option<u32>,
    },
    Memory {
        name: String,
        pm_id: Option<u32>,
        limit: u64,
    },
}

/// A command of this run (one per process at most).
#[derive(Debug)]
struct Cmd {
    verb: &'static str,
    target: ProcTarget,
    rem_target: &'static str,
    rem_target_id: String,
    action: String,
    before: Value,
    svc: Svc,
    attempt: u32,
    // Results.
    argv: Vec<String>,
    ran: bool,
    ok: bool,
    rejected: bool,
    /// Not started: the run deadline was reached (agents.md 1.2: deferred, not an attempt).
    deferred: bool,
    error: Option<String>,
    mutation_id: Option<String>,
    remediation_idx: Option<usize>,
}

/// An actionable incident (`service-down`, `pm2-errored`, `high-memory`) and its plan.
#[derive(Debug)]
struct Work {
    inc: Incident,
    prior_escalated: bool,
    verify: Verify,
    /// Index of the command acting on it (its own, or the app restart it rides along with).
    cmd: Option<usize>,
    owner: bool,
    /// Process name (for log lines).
    label: String,
}

struct Planner<'a> {
    ctx: &'a AgentContext,
    works: Vec<Work>,
    cmds: Vec<Cmd>,
    /// Processes (command targets) already covered by a command this run → that command.
    commanded: BTreeMap<String, usize>,
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

    fn ladder_for(&self, w: &Work, rem_target: &str, rem_target_id: &str) -> Ladder {
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
    fn work(
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
    fn settle_without_command(&self, w: &mut Work, lad: &Ladder, open_remediation: String) {
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
    fn plan(
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

fn target_key(t: &ProcTarget) -> String {
    match t {
        ProcTarget::App(s) => format!("app:{s}"),
        ProcTarget::PmId(n) => format!("id:{n}"),
        ProcTarget::Unit(u) => format!("unit:{u}"),
    }
}

fn exhausted_remediation(label: &str, attempts: u32, max: u32) -> String {
    format!(
        "automatic restarts exhausted ({attempts} of {max} attempts without a verified fix); investigate {label} \
         (logs, dependencies, recent deploys) and restart it by hand"
    )
}

/// The episode prior of `id` (agents.md 2.5): this agent's active incident with that id, else for `service-down`,
/// `pm2-errored` and `high-memory` the newest one resolved less than `OPS_BACKOFF_RESET_MINUTES` before the run's
/// start (window per 1.1). An unparseable `resolvedAt` is unknown: no continuation.
fn episode_prior(ctx: &AgentContext, id: &str, kind: &str) -> Option<Incident> {
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

// -------------------------------------------------------------------------------------------------------------------
// The run

/// Runs health-guardian once (agents.md 6.1). Never logs in to the API; never fails the run for a finding (a process
/// manager that cannot be read is the critical finding `process-manager-unavailable`, exit 1).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut o = AgentOutcome::new(CATALOGUE);
    let h = &ctx.cfg.health;
    let prober = Prober {
        ctx,
        client: probes::probe_client(),
        budget: crate::vizora::Client::budget_from_config(&ctx.cfg),
    };

    // 1. Probes (6.1.1).
    let detected = prober.probe(&Svc::ALL, true).await;
    let mut health: BTreeMap<Svc, Health> = BTreeMap::new();
    for (svc, hl, confirmed) in detected {
        let how = if confirmed && !hl.is_healthy() {
            format!(
                " (confirmed by a second probe after {} s)",
                h.probe_confirm_s
            )
        } else if confirmed {
            " (first probe failed, confirmation probe passed)".to_string()
        } else {
            String::new()
        };
        o.note(format!("probe {}: {}{how}", svc.key(), hl.describe()));
        health.insert(svc, hl);
    }
    for t in PROBE_TYPES {
        o.cover(t);
    }
    for (svc, hl) in &health {
        if let Health::NotProbed { reason } = hl {
            ctx.warn(format!("{} not probed: {reason}", svc.key()));
            for t in PROBE_TYPES {
                o.unexamined.insert(incident_id(AGENT, t, svc.key()));
            }
        }
        match hl {
            Health::Healthy { degraded: true } => {
                o.raise(ctx.incident(
                    "service-degraded",
                    Severity::Info,
                    "service",
                    svc.key(),
                    format!(
                        "{} readiness answered 2xx with status \"degraded\" ({})",
                        svc.key(),
                        crate::redact::redact_str(svc.probe_url(h))
                    ),
                    "informational: a non-critical dependency is degraded; nothing restarted",
                ));
            }
            Health::Unready { detail } => {
                o.raise(ctx.incident(
                    "service-unready",
                    Severity::Critical,
                    "service",
                    svc.key(),
                    format!(
                        "{} readiness failed twice ({detail}) while its liveness probe passes: the process is alive \
                         and a dependency (database, object storage, Redis, …) is down",
                        svc.key()
                    ),
                    "fix the failing dependency; a restart cannot fix it, so none is made",
                ));
            }
            _ => {}
        }
    }

    // 2. Processes (6.1.2).
    let pm: Arc<dyn ProcessManager> = match &ctx.process_manager {
        Some(p) => p.clone(),
        None => Arc::from(procman::from_config(h)),
    };
    let kind = pm.kind();
    let systemd = kind == "systemd";
    let listed = pm.list().await;
    let apps: Vec<App> = Svc::ALL
        .iter()
        .map(|&svc| {
            let name = if systemd {
                h.systemd_units.get(svc.key())
            } else {
                h.pm2_apps.get(svc.key())
            }
            .cloned()
            .unwrap_or_default();
            let valid = procman::validate_name(&name).is_ok();
            if !valid {
                // The actual reason (empty, leading '-', `all`, characters), not always "characters outside …".
                let why = crate::config::process_name::process_name_problem(&name)
                    .unwrap_or("it is not a valid process name");
                ctx.error(format!(
                    "rejected process name or id for {}: {:?}: {why}; no command will name it",
                    svc.key(),
                    name.chars().take(64).collect::<String>()
                ));
            }
            let entries = match &listed {
                Ok(list) => list.iter().filter(|p| p.name == name).cloned().collect(),
                Err(_) => Vec::new(),
            };
            App {
                svc,
                name,
                valid,
                entries,
            }
        })
        .collect();

    let prior_transitional = prior_transitional_runs(ctx);
    let mut transitional_runs: Map<String, Value> = Map::new();
    let mut planner = Planner {
        ctx,
        works: Vec::new(),
        cmds: Vec::new(),
        commanded: BTreeMap::new(),
    };
    // Apps where PM2 is acting (a transitional instance not yet treated as errored): no app-level command.
    let mut acting: HashMap<String, String> = HashMap::new();
    // (app name, entry key) → treated as errored after repeated transitional runs.
    let mut stuck: BTreeSet<String> = BTreeSet::new();
    let mut ecosystem: Option<HashMap<String, u64>> = None;

    match &listed {
        Err(e) => {
            let msg = crate::redact::redact_str(&e.to_string());
            ctx.error(format!("process list unreadable: {msg}"));
            o.note(format!("process manager ({kind}): unreadable — {msg}"));
            o.raise(ctx.incident(
                "process-manager-unavailable",
                Severity::Critical,
                "host",
                kind,
                format!("the {kind} process list could not be read: {msg}"),
                format!(
                    "check the process manager on this host ({}); no process verdict and no restart this run",
                    if systemd {
                        "systemctl, OPS_SYSTEMCTL_BIN"
                    } else {
                        "is the PM2 daemon running? OPS_PM2_BIN, PM2_HOME"
                    }
                ),
            ));
            o.cover("process-manager-unavailable");
            // Transitional counters carry over unchanged: this run saw nothing.
            transitional_runs = prior_transitional.clone();
        }
        Ok(list) => {
            o.cover("process-manager-unavailable");
            for t in PROCESS_TYPES {
                o.cover(t);
            }
            o.note(format!(
                "process manager ({kind}): {} process(es) listed",
                list.len()
            ));
            for app in &apps {
                if app.entries.is_empty() {
                    o.raise(ctx.incident(
                        "pm2-missing",
                        Severity::Critical,
                        "pm2-process",
                        &app.name,
                        format!(
                            "managed app {:?} ({}) is absent from the {kind} process list",
                            app.name,
                            app.svc.key()
                        ),
                        if systemd {
                            format!("check that the unit {} is installed and enabled", app.name)
                        } else {
                            format!(
                                "start it (e.g. `pm2 start ecosystem.config.js --only {}`); health-guardian never \
                                 starts missing apps",
                                app.name
                            )
                        },
                    ));
                    o.note(format!("process {}: missing from the list", app.name));
                    continue;
                }
                for p in &app.entries {
                    let key = entry_key(p, systemd);
                    if let ProcStatus::Transitional(word) = &p.status {
                        let n = prior_transitional
                            .get(&key)
                            .and_then(Value::as_u64)
                            .unwrap_or(0)
                            + 1;
                        transitional_runs.insert(key.clone(), Value::from(n));
                        if n >= TRANSITIONAL_RUNS_LIMIT {
                            ctx.warn(format!(
                                "{key} seen {word:?} in {n} consecutive runs: treated as errored"
                            ));
                            stuck.insert(key.clone());
                        } else {
                            ctx.info(format!(
                                "{key} is {word:?} ({n} consecutive run(s)): the process manager is acting; not \
                                 examined, no command"
                            ));
                            o.note(format!("process {key}: {word} (run {n}); not examined"));
                            acting.insert(app.name.clone(), format!("{key} is {word}"));
                            for t in ["pm2-errored", "pm2-stopped", "high-memory"] {
                                o.unexamined.insert(incident_id(AGENT, t, &key));
                            }
                        }
                    }
                }
            }
        }
    }

    // 3. Remediation plan (6.1.3): service-down first, so that it replaces per-instance commands of its app.
    let mut app_gate: HashMap<String, Option<usize>> = HashMap::new(); // app name → its restart command (if any)
    let mut sd_remediation: HashMap<String, String> = HashMap::new();
    for app in &apps {
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

    // Per-process incidents.
    let threshold = h.memory_threshold_pct;
    if listed.is_ok() {
        for app in &apps {
            for p in &app.entries {
                let key = entry_key(p, systemd);
                let errored = p.status == ProcStatus::Errored || stuck.contains(&key);
                let (kind_s, severity, message, verify, verb) = if errored {
                    let message = if stuck.contains(&key) {
                        format!(
                            "{key} was {} in {TRANSITIONAL_RUNS_LIMIT} consecutive runs: treated as errored",
                            p.status
                        )
                    } else {
                        format!(
                            "{key} is {}{}",
                            if systemd { "failed" } else { "errored" },
                            p.restart_time
                                .map(|n| format!(" (restart count {n})"))
                                .unwrap_or_default()
                        )
                    };
                    (
                        "pm2-errored",
                        Severity::Critical,
                        message,
                        Verify::Online {
                            name: p.name.clone(),
                            pm_id: p.pm_id,
                        },
                        "restart",
                    )
                } else if p.status == ProcStatus::Stopped {
                    o.raise(ctx.incident(
                        "pm2-stopped",
                        Severity::Info,
                        "pm2-process",
                        &key,
                        format!("{key} is stopped"),
                        "stopped by an operator; left alone (health-guardian never starts a stopped process)",
                    ));
                    o.note(format!("process {key}: stopped (left alone)"));
                    continue;
                } else if p.status == ProcStatus::Online {
                    let Some(mem) = p.memory_bytes else {
                        ctx.info(format!("{key}: memory not reported; memory check skipped"));
                        o.unexamined.insert(incident_id(AGENT, "high-memory", &key));
                        continue;
                    };
                    let (limit, source) = match p.max_memory_restart {
                        Some(l) => (Some(l), "its max_memory_restart"),
                        None if kind == "pm2" => {
                            if ecosystem.is_none() {
                                ecosystem = Some(load_ecosystem(ctx).await);
                            }
                            (
                                ecosystem.as_ref().and_then(|m| m.get(&p.name).copied()),
                                "the ecosystem file",
                            )
                        }
                        None => (None, ""),
                    };
                    let Some(limit) = limit else {
                        ctx.info(format!(
                            "{key}: memory limit unknown (no max_memory_restart, none in the ecosystem file); memory \
                             check skipped"
                        ));
                        o.unexamined.insert(incident_id(AGENT, "high-memory", &key));
                        continue;
                    };
                    if !over_threshold(mem, limit, threshold) {
                        continue;
                    }
                    let pct = mem as f64 / limit as f64 * 100.0;
                    let cluster = p.exec_mode.as_deref() == Some("cluster_mode");
                    (
                        "high-memory",
                        Severity::Warning,
                        format!(
                            "{key} uses {} = {pct:.1} % of its limit {} (from {source}); threshold {threshold} %",
                            mib(mem),
                            mib(limit)
                        ),
                        Verify::Memory {
                            name: p.name.clone(),
                            pm_id: p.pm_id,
                            limit,
                        },
                        if cluster && !systemd {
                            "reload"
                        } else {
                            "restart"
                        },
                    )
                } else {
                    if !matches!(p.status, ProcStatus::Transitional(_)) {
                        ctx.warn(format!(
                            "{key}: unknown status {:?}; not examined",
                            p.status.as_str()
                        ));
                        for t in ["pm2-errored", "pm2-stopped", "high-memory"] {
                            o.unexamined.insert(incident_id(AGENT, t, &key));
                        }
                    }
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

    // 4. Execute (or, in a dry run, list) the commands.
    let max = h.restart_max_attempts;
    let mut any_ran = false;
    let Planner {
        mut works,
        mut cmds,
        ..
    } = planner;
    for (idx, c) in cmds.iter_mut().enumerate() {
        let method = method_for(kind, c.verb);
        let planned = planned_argv(h, kind, c.verb, &c.target);
        let at = ctx.now();
        if ctx.dry_run {
            let mut line = MutationLine::new(
                &ctx.run_id,
                AGENT.as_str(),
                &c.action,
                &method,
                c.rem_target,
                &c.rem_target_id,
                at,
                c.before.clone(),
                true,
            );
            line.command = Some(planned.clone());
            if let Err(e) = ctx.audit.append(&line) {
                ctx.error(format!("audit append failed: {e}"));
            }
            c.argv = planned;
            o.note(format!(
                "dry run: would run `{}` ({}, attempt {} of {max})",
                show_argv(&c.argv),
                c.action,
                c.attempt
            ));
            continue;
        }
        if Instant::now() >= ctx.deadline {
            c.argv = planned;
            c.deferred = true;
            ctx.warn(format!(
                "run deadline reached: `{}` deferred ({})",
                show_argv(&c.argv),
                c.action
            ));
            continue;
        }
        ctx.info(format!("running `{}` ({})", show_argv(&planned), c.action));
        let t0 = Instant::now();
        let res = if c.verb == "reload" {
            pm.reload(&c.target).await
        } else {
            pm.restart(&c.target).await
        };
        let duration_ms = t0.elapsed().as_millis() as u64;
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
        line.duration_ms = Some(duration_ms);
        match res {
            Ok(rec) => {
                c.argv = rec.argv.clone();
                c.ran = true;
                c.ok = true;
                line.after =
                    Some(json!({"exitCode": rec.exit_code, "durationMs": rec.duration_ms}));
                any_ran = true;
            }
            Err(PmError::Rejected(why)) => {
                c.argv = planned.clone();
                c.rejected = true;
                c.error = Some("rejected process name or id".into());
                ctx.error(format!("command rejected, nothing ran: {why}"));
            }
            Err(e) => {
                c.argv = e.argv().map(<[String]>::to_vec).unwrap_or(planned.clone());
                c.ran = true;
                let first = e
                    .stderr_first_line()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.to_string());
                c.error = Some(crate::redact::redact_str(&format!(
                    "{method} failed: {first}"
                )));
                ctx.error(format!("`{}` failed: {e}", show_argv(&c.argv)));
            }
        }
        if c.rejected {
            continue; // nothing ran: no mutation, no attempt (6.1.3)
        }
        line.command = Some(c.argv.clone());
        line.success = c.ok;
        line.error = c.error.clone();
        c.mutation_id = Some(line.id.clone());
        if let Err(e) = ctx.audit.append(&line) {
            ctx.error(format!("audit append failed after a command: {e}"));
        }
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

    // 5. Verification (6.1.3): one cooldown, full re-probe of the affected services, a fresh process list.
    let mut final_health = health.clone();
    let mut reprobed: BTreeMap<Svc, Health> = BTreeMap::new();
    let mut relist: Option<Result<Vec<ProcessInfo>, PmError>> = None;
    if any_ran {
        // Says what for and until when (issue 9: a long wait never looks like a hang).
        let until = ctx.now() + chrono::Duration::seconds(h.restart_cooldown_s as i64);
        ctx.info(format!(
            "waiting {} s, until {}, for the restarted service(s) to come up (OPS_RESTART_COOLDOWN_S), then \
             re-probing to verify",
            h.restart_cooldown_s,
            until.format("%H:%M:%S UTC")
        ));
        ctx.wait_s(h.restart_cooldown_s).await;
        let affected: Vec<Svc> = cmds
            .iter()
            .filter(|c| c.ok)
            .map(|c| c.svc)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for (svc, hl, _) in prober.probe(&affected, false).await {
            final_health.insert(svc, hl.clone());
            reprobed.insert(svc, hl);
        }
        relist = Some(pm.list().await);
    }

    let priors = ctx.priors();
    let now_end = ctx.now();
    for w in works.iter_mut() {
        let Some(idx) = w.cmd else {
            continue;
        };
        let c = &cmds[idx];
        if ctx.dry_run {
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
        let (verified, detail) = verify(&w.verify, &reprobed, relist.as_ref(), systemd, threshold);
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
    for w in works {
        if w.inc.status == IncidentStatus::Resolved {
            o.note(format!(
                "{} {}: closed by the verified fix",
                crate::model::kind_label(&w.inc.kind),
                w.inc.target_id
            ));
        } else if w.cmd.is_none() {
            o.note(format!(
                "{} {}: {} — {}",
                crate::model::kind_label(&w.inc.kind),
                w.inc.target_id,
                w.inc.status.as_str(),
                w.inc.remediation
            ));
        }
        o.raise(w.inc);
    }

    // Host memory (6.1.2).
    match std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(host_memory_used_pct)
    {
        Some(pct) => {
            o.cover("host-memory-high");
            if pct > h.host_memory_threshold_pct {
                let host = hostname();
                o.raise(ctx.incident(
                    "host-memory-high",
                    Severity::Warning,
                    "host",
                    &host,
                    format!(
                        "host {host}: {pct:.1} % of memory used (MemTotal − MemAvailable); threshold {} %",
                        h.host_memory_threshold_pct
                    ),
                    "find the largest processes (ps, pm2 monit) and free memory; nothing is restarted for host \
                     memory",
                ));
                o.note(format!("host memory: {pct:.1} % used (above threshold)"));
            }
        }
        None => ctx.warn("/proc/meminfo unreadable or incomplete; host memory not examined"),
    }

    // 6. Edge watch (6.1.4), with the local health after verification.
    edge_watch(ctx, &prober, &final_health, &mut o).await;

    // 7. Inline alerts (6.1.5, 7.6).
    send_alerts(ctx, &priors, &mut o).await;

    // Stats.
    let probes_json: Map<String, Value> = final_health
        .iter()
        .map(|(s, hl)| (s.key().to_string(), Value::from(hl.word())))
        .collect();
    o.stats = Some(json!({
        "transitionalRuns": transitional_runs,
        "probes": probes_json,
        "processManager": kind,
        "commands": cmds.iter().filter(|c| c.ran).count(),
    }));
    o
}

/// Checks one incident after the cooldown (6.1.3): service probe healthy; process `online`; memory ≤ threshold.
fn verify(
    v: &Verify,
    reprobed: &BTreeMap<Svc, Health>,
    relist: Option<&Result<Vec<ProcessInfo>, PmError>>,
    systemd: bool,
    threshold: f64,
) -> (bool, String) {
    let find = |name: &str, pm_id: Option<u32>| -> Result<Option<ProcessInfo>, String> {
        match relist {
            Some(Ok(l)) => Ok(l
                .iter()
                .find(|p| p.name == name && (systemd || p.pm_id == pm_id))
                .cloned()),
            Some(Err(e)) => Err(format!("process list unreadable after the restart: {e}")),
            None => Err("process list not re-read".into()),
        }
    };
    match v {
        Verify::Probe(svc) => match reprobed.get(svc) {
            Some(hl) if hl.is_healthy() => (true, format!("{} probe {}", svc.key(), hl.word())),
            Some(hl) => (false, format!("{} probe {}", svc.key(), hl.describe())),
            None => (false, format!("{} not re-probed", svc.key())),
        },
        Verify::Online { name, pm_id } => match find(name, *pm_id) {
            Ok(Some(p)) if p.status == ProcStatus::Online => (true, "status=online".into()),
            Ok(Some(p)) => (false, format!("status={}", p.status)),
            Ok(None) => (false, "process gone from the list".into()),
            Err(e) => (false, e),
        },
        Verify::Memory { name, pm_id, limit } => match find(name, *pm_id) {
            Ok(Some(p)) if p.status == ProcStatus::Online => {
                let limit = p.max_memory_restart.unwrap_or(*limit);
                match p.memory_bytes {
                    Some(m) if !over_threshold(m, limit, threshold) => (
                        true,
                        format!("status=online memory={} limit={}", mib(m), mib(limit)),
                    ),
                    Some(m) => (
                        false,
                        format!("memory still {} of limit {}", mib(m), mib(limit)),
                    ),
                    None => (false, "memory not reported".into()),
                }
            }
            Ok(Some(p)) => (false, format!("status={}", p.status)),
            Ok(None) => (false, "process gone from the list".into()),
            Err(e) => (false, e),
        },
    }
}

/// `agentResults["health-guardian"].stats.transitionalRuns` of the snapshot (`{"<app>:<pm_id>": n}`).
fn prior_transitional_runs(ctx: &AgentContext) -> Map<String, Value> {
    ctx.snapshot
        .agent_results
        .get(AGENT.as_str())
        .and_then(|r| r.get("stats"))
        .and_then(|s| s.get("transitionalRuns"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The ecosystem file's limits (6.1), read once per run; an unreadable file means "unknown" for every app (logged).
async fn load_ecosystem(ctx: &AgentContext) -> HashMap<String, u64> {
    let h = &ctx.cfg.health;
    if !h.ecosystem_file.exists() {
        ctx.info(format!(
            "ecosystem file {} not found; limits without max_memory_restart are unknown",
            h.ecosystem_file.display()
        ));
        return HashMap::new();
    }
    match procman::read_ecosystem_limits(&h.node_bin, &h.ecosystem_file, ECOSYSTEM_TIMEOUT).await {
        Ok(m) => m,
        Err(e) => {
            ctx.warn(format!(
                "ecosystem file {} unreadable ({e}); limits without max_memory_restart are unknown",
                h.ecosystem_file.display()
            ));
            HashMap::new()
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

// -------------------------------------------------------------------------------------------------------------------
// Edge watch (6.1.4)

/// GET `url` through `client` (which follows no redirect), following at most 5 same-origin redirects, each request
/// with its body within `timeout`. `Ok(status)` of the final answer, `Err` = no answer or a refused redirect.
async fn edge_fetch(
    client: &reqwest::Client,
    url: url::Url,
    timeout: Duration,
) -> Result<u16, String> {
    let origin = url.origin();
    let mut cur = url;
    for _ in 0..=probes::MAX_REDIRECTS {
        let req = async {
            let r = client.get(cur.clone()).send().await?;
            let status = r.status();
            let loc = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let _ = r.bytes().await?;
            Ok::<_, reqwest::Error>((status, loc))
        };
        let (status, loc) = match tokio::time::timeout(timeout, req).await {
            Err(_) => return Err(format!("timed out after {} ms", timeout.as_millis())),
            Ok(Err(e)) => return Err(format!("no answer ({})", e.without_url())),
            Ok(Ok(x)) => x,
        };
        if !status.is_redirection() || status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(status.as_u16());
        }
        let next = loc
            .and_then(|l| cur.join(&l).ok())
            .ok_or_else(|| format!("HTTP {} without a usable Location", status.as_u16()))?;
        if next.origin() != origin {
            return Err("redirect to another origin refused".into());
        }
        cur = next;
    }
    Err(format!("more than {} redirects", probes::MAX_REDIRECTS))
}

async fn edge_watch(
    ctx: &AgentContext,
    prober: &Prober<'_>,
    local: &BTreeMap<Svc, Health>,
    o: &mut AgentOutcome,
) {
    let h = &ctx.cfg.health;
    let Some(edge) = h.edge_url.as_deref() else {
        let why = h
            .edge_off_reason
            .clone()
            .unwrap_or_else(|| "WEB_URL is not a public http(s) URL".into());
        ctx.info(format!("edge watch off: {why}"));
        o.cover("edge-unreachable");
        for p in ctx.priors().values() {
            if p.kind == "edge-unreachable" && p.is_active() {
                o.resolve_suffix.insert(
                    p.id.clone(),
                    " — edge watch disabled by configuration; closing stale incident".into(),
                );
            }
        }
        return;
    };
    let Ok(base) = url::Url::parse(edge) else {
        ctx.warn("edge watch: WEB_URL does not parse; no verdict");
        return;
    };
    let host = base.host_str().unwrap_or("edge").to_string();
    let id = incident_id(AGENT, "edge-unreachable", &host);
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut probed = 0usize;
    for (path, svc) in EDGE_PATHS {
        if !local.get(&svc).is_some_and(Health::is_healthy) {
            skipped.push(format!(
                "(skipped: {path} — local {} not healthy)",
                svc.key()
            ));
            continue;
        }
        let Ok(u) = base.join(path) else {
            continue;
        };
        if path.starts_with("/api/")
            && let Err(e) = prober
                .budget
                .acquire(Admission::Request, ctx.deadline)
                .await
        {
            skipped.push(format!("(skipped: {path} — {e})"));
            continue;
        }
        probed += 1;
        match edge_fetch(&ctx.http, u, ctx.cfg.api.probe_timeout).await {
            Ok(s) if (200..300).contains(&s) => {}
            Ok(s) => failures.push(format!("{path} (backed by {}): HTTP {s}", svc.key())),
            Err(e) => failures.push(format!("{path} (backed by {}): {e}", svc.key())),
        }
    }
    if !failures.is_empty() {
        let mut err = failures.join("; ");
        if !skipped.is_empty() {
            err.push(' ');
            err.push_str(&skipped.join(" "));
        }
        let mut inc = ctx.incident(
            "edge-unreachable",
            Severity::Critical,
            "edge",
            &host,
            format!(
                "public edge {host} failed while the backing service answers locally; this is a probe from the \
                 host itself, not proof of external DNS/firewall reachability"
            ),
            "check the reverse proxy (`nginx -t`, proxy status and logs, TLS certificates); do not restart the \
             Node services — they are healthy locally",
        );
        inc.error = Some(crate::redact::redact_str(&err));
        o.note(format!(
            "edge {host}: unreachable — {}",
            inc.error.as_deref().unwrap_or("")
        ));
        o.raise(inc);
        o.cover("edge-unreachable");
    } else if probed > 0 && skipped.is_empty() {
        o.note(format!("edge {host}: all paths healthy"));
        o.cover("edge-unreachable");
    } else {
        // Nothing probed, or partial evidence: no verdict, nothing resolves (9 #24).
        o.note(format!("edge {host}: no verdict {}", skipped.join(" ")));
        o.unexamined.insert(id);
    }
}

// -------------------------------------------------------------------------------------------------------------------
// Alerts (6.1.5, 7.6)

async fn send_alerts(ctx: &AgentContext, priors: &HashMap<String, Incident>, o: &mut AgentOutcome) {
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
        let stamped = ctx.alerts.inline(alert, ctx.now(), ctx.dry_run).await;
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
            .alerts
            .inline(
                InlineAlert {
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
                },
                ctx.now(),
                ctx.dry_run,
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cfg() -> HealthConfig {
        let dir = std::env::temp_dir();
        crate::config::Config::from_source(
            crate::config::Source::from_pairs([
                ("VALIDATOR_BASE_URL", "http://127.0.0.1:9"),
                ("OPS_RATE_LIMIT_BACKEND", "memory"),
            ]),
            &dir,
        )
        .expect("config")
        .health
    }

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 8, 22, 12, 0, 0).unwrap() + ChronoDuration::seconds(s)
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        assert_eq!(backoff_s(1, 30, 600), 60);
        assert_eq!(backoff_s(2, 30, 600), 120);
        assert_eq!(backoff_s(4, 30, 600), 480);
        assert_eq!(backoff_s(5, 30, 600), 600);
        assert_eq!(backoff_s(200, 30, 600), 600);
    }

    #[test]
    fn ladder_keeps_escalated_escalates_at_the_limit_waits_inside_the_backoff() {
        let h = cfg();
        assert_eq!(h.restart_max_attempts, 2);
        assert_eq!(ladder(true, 0, None, t(0), &h, 0), Ladder::KeepEscalated);
        assert_eq!(
            ladder(false, 2, Some(t(-10_000)), t(0), &h, 0),
            Ladder::Escalate
        );
        assert_eq!(ladder(false, 0, None, t(0), &h, 0), Ladder::Act);
        // One attempt 30 s ago: the window is 60 s.
        assert_eq!(
            ladder(false, 1, Some(t(-30)), t(0), &h, 0),
            Ladder::Wait(t(30))
        );
        assert_eq!(ladder(false, 1, Some(t(-60)), t(0), &h, 0), Ladder::Act);
        // No last attempt known: no wait.
        assert_eq!(ladder(false, 1, None, t(0), &h, 0), Ladder::Act);
        // The early margin of 1.1 applies; a clock that moved backwards never opens the window.
        assert_eq!(ladder(false, 1, Some(t(-30)), t(0), &h, 30), Ladder::Act);
        assert_eq!(
            ladder(false, 1, Some(t(100)), t(0), &h, 0),
            Ladder::Wait(t(160))
        );
    }

    #[test]
    fn host_memory_comes_from_memtotal_and_memavailable() {
        let text = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    2000000 kB\n";
        let pct = host_memory_used_pct(text).unwrap();
        assert!((pct - 87.5).abs() < 1e-9, "{pct}");
        assert_eq!(host_memory_used_pct("MemTotal: 100 kB\n"), None);
        assert_eq!(
            host_memory_used_pct("MemTotal: 0 kB\nMemAvailable: 0 kB\n"),
            None
        );
    }

    #[test]
    fn memory_threshold_is_strict() {
        assert!(!over_threshold(85, 100, 85.0));
        assert!(over_threshold(86, 100, 85.0));
    }

    #[test]
    fn systemd_entries_are_keyed_by_unit_and_pm2_by_app_and_pm_id() {
        let p = ProcessInfo {
            name: "vizora-web".into(),
            pm_id: Some(3),
            status: ProcStatus::Online,
            exec_mode: None,
            memory_bytes: None,
            max_memory_restart: None,
            restart_time: None,
            pm_uptime: None,
        };
        assert_eq!(entry_key(&p, false), "vizora-web:3");
        assert_eq!(entry_target(&p, false), Some(ProcTarget::PmId(3)));
        assert_eq!(entry_key(&p, true), "vizora-web");
        assert_eq!(
            entry_target(&p, true),
            Some(ProcTarget::Unit("vizora-web".into()))
        );
    }

    #[test]
    fn catalogue_has_every_type_of_3_1_and_not_the_retired_one() {
        assert_eq!(CATALOGUE.len(), 10);
        assert!(!CATALOGUE.contains(&"tv-download-surface"));
    }
}
