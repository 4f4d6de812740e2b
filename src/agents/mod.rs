//! The agents (agents.md section 6), one module each, as plain logic over small traits: each reads its inputs through
//! an [`AgentContext`], derives findings with pure functions, remediates and verifies, and returns an
//! [`AgentOutcome`]. Sessions, budgets, the state merge, exit codes and heartbeats are the runtime's job
//! (`crate::runner`), written once.

pub mod common;
pub mod content_lifecycle;
pub mod db_maintainer;
pub mod entities;
pub mod fleet_manager;
pub mod health_guardian;
pub mod ops_reporter;
pub mod probes;
pub mod schedule_doctor;

// The alert types live in `alert` so that `alert` never imports `agents` (design/README.md §3); re-exported here
// because every agent raises them.
pub use crate::alert::{AlertSink, InlineAlert, InlineKind, LogAlertSink};
use crate::clock::Clock;
use crate::config::Config;
use crate::effects::Effects;
use crate::model::{AgentName, Incident, OpsState, RemediationAction, Severity, ts};
use crate::state::audit::AuditLog;
use crate::vizora::VizoraApi;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Everything an agent run reads: configuration, time, the lock-free prior state, the API, alerting.
pub struct AgentContext {
    /// The validated configuration (agents.md 8).
    pub cfg: Arc<Config>,
    /// The agent this run is for (its name in logs, incident ids and the audit, agents.md 1.1).
    pub agent: AgentName,
    /// UUID v4 of this run.
    pub run_id: String,
    /// The run's start time (all "at least N since" windows use it; agents.md 1.1).
    pub started: DateTime<Utc>,
    /// The injected clock ([`AgentContext::now`] for instants after the start).
    pub clock: Arc<dyn Clock>,
    /// Dry run (agents.md 1.5): reads only, would-be mutations listed and audited with `dryRun: true`. Also forced on
    /// when the audit log is not writable (agents.md 4.8; not for ops-reporter).
    pub dry_run: bool,
    /// Lock-free snapshot of the state (priors only; never written back).
    pub snapshot: OpsState,
    /// The audit log (`cfg.audit_file`, agents.md 4.8): non-API mutations and verifications append their lines here.
    pub audit: AuditLog,
    /// No wait or request starts past this instant.
    pub deadline: Instant,
    /// Where inline alerts and fix notifications go (agents.md 7.6).
    pub alerts: Arc<dyn AlertSink>,
    /// The Vizora API (agents that log in).
    pub api: Option<Arc<dyn VizoraApi>>,
    /// HTTP client for probes and thumbnails.
    pub http: reqwest::Client,
    /// Process manager override (tests, the demo); `None` = from configuration.
    pub process_manager: Option<Arc<dyn crate::procman::ProcessManager>>,
}

impl AgentContext {
    /// The effects gate of this run ([`crate::effects`]): every side effect outside the Vizora API (process
    /// commands, maintenance statements, file changes, alert deliveries) passes through it; agents branch on its
    /// [`crate::effects::Gated`] result instead of reading the dry-run flag.
    pub fn effects(&self) -> Effects<'_> {
        Effects::new(
            self.agent.as_str(),
            self.dry_run,
            &self.audit,
            self.deadline,
            &self.alerts,
            &self.clock,
        )
    }

    /// The current instant from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The API client. Panics when the run has none (health-guardian, db-maintainer, ops-reporter without
    /// credentials); check the `api` field first where it may be `None`.
    pub fn api(&self) -> &Arc<dyn VizoraApi> {
        self.api
            .as_ref()
            .expect("this agent runs with an API client")
    }

    /// Prior incidents of this agent in the snapshot, by id.
    pub fn priors(&self) -> HashMap<String, Incident> {
        self.snapshot
            .incidents
            .iter()
            .filter(|i| i.agent == self.agent.as_str())
            .map(|i| (i.id.clone(), i.clone()))
            .collect()
    }

    /// Sleeps `secs` seconds (bounded by the deadline) — verification waits.
    pub async fn wait_s(&self, secs: u64) {
        let d = std::time::Duration::from_secs(secs)
            .min(self.deadline.saturating_duration_since(Instant::now()));
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// Logs an INFO line under the agent's name.
    pub fn info(&self, msg: impl AsRef<str>) {
        crate::logging::info(self.agent.as_str(), msg);
    }
    /// Logs a WARNING line under the agent's name.
    pub fn warn(&self, msg: impl AsRef<str>) {
        crate::logging::warn(self.agent.as_str(), msg);
    }
    /// Logs an ERROR line under the agent's name.
    pub fn error(&self, msg: impl AsRef<str>) {
        crate::logging::error(self.agent.as_str(), msg);
    }

    /// A new incident of this agent at the run's start, continuing the prior episode when one is active (agents.md
    /// 2.5: `detected` and `attempts` carried, `lastAttemptAt` carried).
    pub fn incident(
        &self,
        kind: &str,
        severity: Severity,
        target: &str,
        target_id: &str,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Incident {
        let mut i = Incident::new(
            self.agent,
            kind,
            severity,
            target,
            target_id,
            message,
            remediation,
            self.started,
        );
        if let Some(p) = self
            .snapshot
            .incidents
            .iter()
            .find(|p| p.id == i.id && p.is_active())
        {
            i.detected = p.detected.clone();
            i.attempts = p.attempts;
            i.last_attempt_at = p.last_attempt_at.clone();
        }
        i
    }
}

/// How the run writes the state (agents.md 1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Full write: incidents, sweeps, `lastRun`.
    #[default]
    Full,
    /// Abort after a mutation was attempted: incidents and remediations, no sweeps, `lastRun` unstamped.
    Partial,
    /// Configuration, credentials, login, first page, lock timeout, second instance: nothing written.
    None,
}

/// Extra work the runtime applies inside the locked write after the merge (local only; ops-reporter's stamps).
/// `Sync` (like [`AfterWrite`]) so that an agent's run future, which may hold `&AgentOutcome` across an await, is
/// `Send` (`crate::runtime::Agent::run`).
pub type StateHook = Box<dyn FnOnce(&mut OpsState, DateTime<Utc>) + Send + Sync>;

/// Local file work the runtime runs once the run's state write succeeded, outside the state lock (content-lifecycle's
/// detail cache, written "after the state write", agents.md 6.2.1). Its error is logged; it never changes the exit
/// code. Not run in a dry run or when nothing was written.
pub type AfterWrite = Box<dyn FnOnce() -> Result<(), String> + Send + Sync>;

/// What one run produced.
#[derive(Default)]
pub struct AgentOutcome {
    /// Incidents raised this run, with their final status after remediation and verification.
    pub incidents: Vec<Incident>,
    /// Types whose check reached a verdict on complete input.
    pub covered_types: HashSet<String>,
    /// Ids judged impossible to examine this run (never swept).
    pub unexamined: HashSet<String>,
    /// Message suffix for specific swept ids.
    pub resolve_suffix: HashMap<String, String>,
    /// Remediation actions of this run (`verified` set where verification ran).
    pub remediations: Vec<RemediationAction>,
    /// Verified fixes (issuesFixed).
    pub fixed: u32,
    /// `agentResults[agent].stats`.
    pub stats: Option<Value>,
    /// Reason the run could not complete (exit 2).
    pub fatal: Option<String>,
    /// How the runtime writes the state (agents.md 1.4); [`WriteMode::Full`] unless [`AgentOutcome::fail`] set it.
    pub write: WriteMode,
    /// Exit code override (ops-reporter: from its computed status).
    pub exit_override: Option<i32>,
    /// Human-readable report lines (the demo summary, `run` output).
    pub report: Vec<String>,
    /// The agent's incident catalogue (retired-type rule).
    pub catalogue: Vec<String>,
    /// Incidents covered by delivered inline alerts: stamped in this run's write.
    pub alert_stamps: Vec<String>,
    /// Extra local state work inside the lock.
    pub state_hook: Option<StateHook>,
    /// Work after a successful state write ([`AfterWrite`]).
    pub after_write: Option<AfterWrite>,
}

impl AgentOutcome {
    /// An outcome with the agent's catalogue set.
    pub fn new(catalogue: &[&str]) -> AgentOutcome {
        AgentOutcome {
            catalogue: catalogue.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// Marks a type covered.
    pub fn cover(&mut self, kind: &str) {
        self.covered_types.insert(kind.to_string());
    }

    /// Raises (or re-raises) an incident; its message, remediation and error are redacted (agents.md 5.9).
    pub fn raise(&mut self, mut inc: Incident) {
        // Incident text can quote API data (names, URLs, errors): redacted before it reaches the state, alerts or
        // the dashboard (agents.md 5.9).
        inc.message = crate::redact::redact_str(&inc.message);
        inc.remediation = crate::redact::redact_str(&inc.remediation);
        if let Some(e) = &inc.error {
            inc.error = Some(crate::redact::redact_str(e));
        }
        if let Some(existing) = self.incidents.iter_mut().find(|i| i.id == inc.id) {
            *existing = inc;
        } else {
            self.incidents.push(inc);
        }
    }

    /// Ends the run with exit 2 for `reason`, with the given write mode.
    pub fn fail(&mut self, reason: impl Into<String>, write: WriteMode) {
        self.fatal = Some(reason.into());
        self.write = write;
    }

    /// Adds a report line (redacted).
    pub fn note(&mut self, line: impl Into<String>) {
        self.report.push(crate::redact::redact_str(&line.into()));
    }
}

/// Marks an incident resolved now (a verified fix), returning it.
pub fn resolved(mut inc: Incident, now: DateTime<Utc>) -> Incident {
    inc.status = crate::model::IncidentStatus::Resolved;
    inc.resolved_at = Some(ts(now));
    inc.error = None;
    inc
}
