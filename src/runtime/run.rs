//! [`Runtime`] and [`run_once`]: the run lifecycle of agents.md 1.3, written once for every agent — run lock,
//! lock-free snapshot, API session, the agent's detect/remediate/verify, one short locked read-merge-write, dead-man
//! heartbeat, summary line and exit code (1.4). The runtime is long-lived: its API session survives the run (a
//! 401 re-logs in, 5.2), unless it is a one-shot runtime, which logs out after each run as the CLI always did.
//! This is also the one place where the real implementations are wired together.

use super::agent::{Agent, ApiUse};
use crate::agents::{AgentContext, AlertSink, WriteMode};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::model::{AgentName, AgentResult, IncidentStatus, ts};
use crate::state::audit::AuditLog;
use crate::store::file::{FileOutboxStore, FileRunLock, FileStateStore};
use crate::store::{OutboxStore, RunLock, RunRecord, StampWindow, StateStore};
use crate::vizora::budget::RateBudget;
use crate::vizora::{Client, ClientOptions, SharedSession, VizoraApi};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// `--dry-run` (or `OPS_DRY_RUN=true`).
    pub dry_run: bool,
}

/// Overrides of the real implementations (tests, the demo). `Default` = everything from configuration.
#[derive(Clone, Default)]
pub struct Wiring {
    /// Source of "now" (run start and later instants); `None` = the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// Inline alert delivery (agents.md 7.6); `None` = [`default_alert_sink`].
    pub alerts: Option<Arc<dyn AlertSink>>,
    /// Host-wide API rate budget (agents.md 5.5); `None` = the configured file or memory backend.
    pub budget: Option<Arc<RateBudget>>,
    /// Process manager for health-guardian (agents.md 6.1); `None` = the configured one.
    pub process_manager: Option<Arc<dyn crate::procman::ProcessManager>>,
}

/// What a run produced, for the CLI (`--json`) and the demo.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The agent that ran.
    pub agent: AgentName,
    /// Exit code of agents.md 1.4.
    pub exit_code: i32,
    /// The AgentResult as written (with the resolved copies of this run).
    pub result: AgentResult,
    /// Human-readable lines from the agent.
    pub report: Vec<String>,
    /// Why the run could not complete (exit 2).
    pub fatal: Option<String>,
    /// Whether the state was written.
    pub wrote_state: bool,
}

impl RunReport {
    /// The `--json` object: the AgentResult plus `exitCode` (design/README.md §1).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.result).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("exitCode".into(), Value::from(self.exit_code));
            if let Some(f) = &self.fatal {
                m.insert("error".into(), Value::String(crate::redact::redact_str(f)));
            }
        }
        v
    }
}

/// The default alert sink for a configuration: the [`crate::alert::Alerter`] (Slack and the outbox when configured,
/// otherwise a WARNING per message; captured in the demo), agents.md 7.6.
pub fn default_alert_sink(cfg: &Arc<Config>) -> Arc<dyn AlertSink> {
    Arc::new(crate::alert::Alerter::from_config(cfg))
}

/// What every run of a process shares: configuration, clock, HTTP clients, the API session, the rate budget, the
/// stores and the alert sink (design/README.md §3 "runtime"). Build it once ([`Runtime::new`]) and call
/// [`run_once`] per run; [`Runtime::shutdown`] logs the session out.
pub struct Runtime {
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    /// The API client's HTTP client (no redirects, 5.1), shared by every run so connections are reused.
    http: reqwest::Client,
    /// Per agent: the HTTP client of its probes, thumbnails and heartbeats (`User-Agent` names the agent, 5.1).
    agent_http: Mutex<HashMap<AgentName, reqwest::Client>>,
    session: Arc<SharedSession>,
    budget: Arc<RateBudget>,
    state: Arc<dyn StateStore>,
    run_lock: Arc<dyn RunLock>,
    outbox: Arc<dyn OutboxStore>,
    alerts: Arc<dyn AlertSink>,
    process_manager: Option<Arc<dyn crate::procman::ProcessManager>>,
    logout_after_run: bool,
}

impl Runtime {
    /// A long-lived runtime from the configuration and its overrides: the file stores of the state directory (no
    /// file is opened yet), the configured (or overridden) budget and alert sink, no session yet (the first API
    /// request logs in, agents.md 5.2).
    ///
    /// Errors: the HTTP client cannot be built (no TLS backend).
    pub fn new(cfg: Arc<Config>, wiring: Wiring) -> anyhow::Result<Runtime> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.api.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("vizora-ops/{}", env!("CARGO_PKG_VERSION")))
            .build()?;
        let lock_timeout = std::time::Duration::from_millis(cfg.lock_timeout_ms);
        Ok(Runtime {
            clock: wiring.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            http,
            agent_http: Mutex::new(HashMap::new()),
            session: Arc::new(SharedSession::new()),
            budget: wiring
                .budget
                .unwrap_or_else(|| Client::budget_from_config(&cfg)),
            state: Arc::new(FileStateStore::from_config(&cfg)),
            run_lock: Arc::new(FileRunLock::new(cfg.state_dir())),
            outbox: Arc::new(FileOutboxStore::new(
                FileOutboxStore::path_for_state_file(&cfg.state_file),
                lock_timeout,
                false,
            )),
            alerts: wiring.alerts.unwrap_or_else(|| default_alert_sink(&cfg)),
            process_manager: wiring.process_manager,
            logout_after_run: false,
            cfg,
        })
    }

    /// This runtime, logging out after every run: the one-shot CLI's behaviour (agents.md 1.3 step 6, 5.2).
    pub fn one_shot(mut self) -> Runtime {
        self.logout_after_run = true;
        self
    }

    /// Replaces the state store (tests; the Redis store of issue 16).
    pub fn with_state_store(mut self, store: Arc<dyn StateStore>) -> Runtime {
        self.state = store;
        self
    }

    /// Replaces the run lock (tests; cluster leases of issue 16).
    pub fn with_run_lock(mut self, lock: Arc<dyn RunLock>) -> Runtime {
        self.run_lock = lock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.cfg
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The host-wide rate budget every run's requests go through (agents.md 5.5).
    pub fn budget(&self) -> &Arc<RateBudget> {
        &self.budget
    }

    /// The state store.
    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// The run lock.
    pub fn run_lock(&self) -> &Arc<dyn RunLock> {
        &self.run_lock
    }

    /// The alert outbox store. The alert sink still keeps its own file outbox at the same place; it moves onto this
    /// store with the alert pipeline (issue 10).
    pub fn outbox(&self) -> &Arc<dyn OutboxStore> {
        &self.outbox
    }

    /// The alert sink.
    pub fn alerts(&self) -> &Arc<dyn AlertSink> {
        &self.alerts
    }

    /// The API session shared by this runtime's runs.
    pub fn session(&self) -> &Arc<SharedSession> {
        &self.session
    }

    /// Logs the shared session out (awaited, bounded by `OPS_NOTIFY_TIMEOUT_MS`) and prints `released <n>
    /// session(s)`; nothing is sent without a session. A long-lived runtime calls it once when it stops.
    pub async fn shutdown(&self) {
        if !self.session.is_logged_in().await {
            return;
        }
        let client = self.client(
            "ops",
            "shutdown",
            true,
            Instant::now(),
            AuditLog::new(self.cfg.audit_file.clone()),
        );
        client.finish().await;
    }

    fn agent_http(&self, agent: AgentName) -> reqwest::Client {
        let mut m = self.agent_http.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(agent)
            .or_insert_with(|| {
                reqwest::Client::builder()
                    .connect_timeout(self.cfg.api.connect_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(format!(
                        "vizora-ops/{} ({})",
                        env!("CARGO_PKG_VERSION"),
                        agent.as_str()
                    ))
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }

    /// A client for one run over the shared session: the run's agent, id, dry run and deadline.
    fn client(
        &self,
        agent: &str,
        run_id: &str,
        dry_run: bool,
        deadline: Instant,
        audit: AuditLog,
    ) -> Client {
        let api = &self.cfg.api;
        Client::with_session(
            ClientOptions {
                base_url: api.base_url.clone(),
                email: api.email.clone(),
                password: api.password.clone(),
                agent: agent.to_string(),
                run_id: run_id.to_string(),
                connect_timeout: api.connect_timeout,
                request_timeout: api.request_timeout,
                notify_timeout: api.notify_timeout,
                retries: api.retries,
                max_list_items: api.max_list_items,
                dry_run,
                deadline,
            },
            self.budget.clone(),
            audit,
            self.http.clone(),
            self.session.clone(),
        )
    }
}

fn fatal_report(
    agent: AgentName,
    run_id: &str,
    started: chrono::DateTime<chrono::Utc>,
    reason: String,
) -> RunReport {
    crate::logging::error(agent.as_str(), &reason);
    RunReport {
        agent,
        exit_code: 2,
        result: AgentResult {
            agent: agent.as_str().into(),
            timestamp: ts(chrono::Utc::now()),
            duration_ms: (chrono::Utc::now() - started).num_milliseconds().max(0) as u64,
            exit_code: Some(2),
            run_id: Some(run_id.to_string()),
            ..Default::default()
        },
        report: vec![],
        fatal: Some(reason),
        wrote_state: false,
    }
}

/// Runs `agent` once on `rt` (agents.md 1.3) and returns its report; never panics on bad input. Exit codes of 1.4:
/// 0 clear, 1 findings remain active, 2 could not run (the run lock held, a broken state or budget store, missing
/// credentials, the agent's fatal reason, a failed state write).
pub async fn run_once(rt: &Runtime, agent: &dyn Agent, opts: RunOptions) -> RunReport {
    // Every line of the run carries its run id (the `run` span, agents.md 1.5).
    let run_id = uuid::Uuid::new_v4().to_string();
    let span = crate::logging::run_span(
        &run_id,
        agent.name().as_str(),
        opts.dry_run || rt.cfg.dry_run,
    );
    tracing::Instrument::instrument(run_once_in(rt, agent, opts, run_id), span).await
}

async fn run_once_in(
    rt: &Runtime,
    agent: &dyn Agent,
    opts: RunOptions,
    run_id: String,
) -> RunReport {
    let cfg = rt.cfg.clone();
    let clock = rt.clock.clone();
    let started = clock.now();
    let t0 = Instant::now();
    let dry_run = opts.dry_run || cfg.dry_run;
    let name = agent.name();
    let name_s = name.as_str();

    // 2. Single-instance guard (held until the end of this function).
    let lease = match rt.run_lock.try_acquire(name) {
        Ok(l) => l,
        Err(e) => return fatal_report(name, &run_id, started, e.to_string()),
    };

    crate::logging::info(
        name_s,
        format!(
            "run {run_id} start{}",
            if dry_run { " (dry run)" } else { "" }
        ),
    );
    let store = rt.state.clone();
    // A broken state lock path fails before any work, not after the mutations (agents.md 4.2).
    if let Err(e) = store.check(!dry_run) {
        return fatal_report(name, &run_id, started, e.to_string());
    }
    // Missing credentials end an API agent's run before anything is opened or created (the audit file included).
    let has_creds = cfg.api.email.is_some() && cfg.api.password.is_some();
    if agent.needs_api() && !has_creds {
        return fatal_report(
            name,
            &run_id,
            started,
            crate::vizora::ApiError::NoCredentials.to_string(),
        );
    }
    // The host-wide budget's lock likewise (agents.md 5.5): retrying a lock that cannot be taken never helps.
    let logs_in = match agent.api_use() {
        ApiUse::Required => true,
        ApiUse::IfCredentials => has_creds,
        ApiUse::None => false,
    };
    if logs_in || agent.probes_through_budget() {
        // health-guardian builds its own budget from the configuration (its probes share the host's).
        let own = agent
            .probes_through_budget()
            .then(|| Client::budget_from_config(&cfg));
        for b in std::iter::once(&rt.budget).chain(own.as_ref()) {
            if let Err(e) = b.check() {
                return fatal_report(name, &run_id, started, e.to_string());
            }
        }
    }
    let snapshot = store.snapshot(started);
    let audit = AuditLog::new(cfg.audit_file.clone());
    let deadline = Instant::now() + cfg.deadline(name);

    // Audit log must open before any mutation (agents.md 4.8).
    let mut effective_dry_run = dry_run;
    let mut audit_broken = None;
    if !dry_run
        && agent.audits_mutations()
        && let Err(e) = audit.check_writable()
    {
        audit_broken = Some(format!(
            "audit log not writable ({}: {e}); nothing was changed",
            audit.path().display()
        ));
        effective_dry_run = true;
    }

    // 3. API client over the runtime's session (lazy login; a session of an earlier run is reused).
    let client = logs_in
        .then(|| Arc::new(rt.client(name_s, &run_id, effective_dry_run, deadline, audit.clone())));
    let http = rt.agent_http(name);
    let ctx = AgentContext {
        cfg: cfg.clone(),
        agent: name,
        run_id: run_id.clone(),
        started,
        clock: clock.clone(),
        dry_run: effective_dry_run,
        snapshot,
        audit,
        deadline,
        alerts: rt.alerts.clone(),
        api: client.clone().map(|c| c as Arc<dyn VizoraApi>),
        http: http.clone(),
        process_manager: rt.process_manager.clone(),
    };

    // 4. Detect, remediate, verify.
    let mut outcome = agent.run(&ctx).await;
    let audit_broken_write = audit_broken.is_some();
    if let Some(reason) = audit_broken {
        for i in outcome.incidents.iter_mut() {
            if i.is_active() && i.error.is_none() {
                i.error = Some("audit log not writable".into());
            }
        }
        if outcome.fatal.is_none() {
            outcome.fatal = Some(reason);
        }
    }

    let ended = clock.now();
    let raised = &outcome.incidents;
    let issues_found = raised.iter().filter(|i| i.severity.counts()).count() as u32;
    let info_found = raised.iter().filter(|i| !i.severity.counts()).count() as u32;
    let escalated = raised
        .iter()
        .filter(|i| i.status == IncidentStatus::Escalated)
        .count() as u32;
    let still_active = raised.iter().any(|i| i.is_active() && i.severity.counts());
    let exit_code = if outcome.fatal.is_some() {
        2
    } else if let Some(x) = outcome.exit_override {
        x
    } else if still_active {
        1
    } else {
        0
    };
    let mut coverage: Vec<String> = outcome.covered_types.iter().cloned().collect();
    coverage.sort();
    let result = AgentResult {
        agent: name_s.to_string(),
        timestamp: ts(ended),
        duration_ms: t0.elapsed().as_millis() as u64,
        issues_found,
        // One definition of "fixed" (README "What the counts mean", agents.md 2.3): the run's verified
        // remediations, the same predicate the reporter's "verified fixes in 24 h" and `status` count.
        issues_fixed: crate::model::verified_fix_count(&outcome.remediations),
        issues_escalated: escalated,
        incidents: outcome.incidents.clone(),
        info_found: Some(info_found),
        issues_resolved: None,
        exit_code: Some(exit_code),
        run_id: Some(run_id.clone()),
        coverage: Some(coverage),
        stats: outcome.stats.clone(),
        extra: Default::default(),
    };

    // 5. One short locked read-merge-write (never in a dry run).
    let mut written = result.clone();
    let mut wrote_state = false;
    let mut exit_code = exit_code;
    let mut fatal = outcome.fatal.clone();
    let write = outcome.write;
    // A broken audit log made the run change nothing; its findings are still recorded (agents.md 4.8).
    if (!effective_dry_run || audit_broken_write) && write != WriteMode::None {
        let record = RunRecord {
            result: result.clone(),
            covered_types: outcome.covered_types.clone(),
            unexamined: outcome.unexamined.clone(),
            catalogue: outcome.catalogue.clone(),
            resolve_suffix: outcome.resolve_suffix.clone(),
            remediations: outcome.remediations.clone(),
            partial: write == WriteMode::Partial,
            stamp_window: StampWindow::from_config(&cfg, started),
        };
        let stamps = outcome.alert_stamps.clone();
        let hook = outcome.state_hook.take();
        let after_write = outcome.after_write.take();
        let stamp_time = ts(ended);
        let after_merge = Box::new(move |st: &mut crate::model::OpsState| {
            for inc in st.incidents.iter_mut() {
                if stamps.contains(&inc.id) {
                    inc.alerted_at = Some(stamp_time.clone());
                    inc.alerted_severity = Some(inc.severity.clone());
                    inc.alerted_status = Some(inc.status.clone());
                }
            }
            if let Some(h) = hook {
                h(st, ended);
            }
        });
        match store.record_run(ended, record, Some(after_merge)) {
            Ok((r, _)) => {
                written = r;
                wrote_state = true;
                if let Some(f) = after_write
                    && let Err(e) = f()
                {
                    crate::logging::error(name_s, e);
                }
            }
            Err(e) => {
                // Logged once, below, with the other fatal reasons.
                exit_code = 2;
                fatal = Some(e.to_string());
            }
        }
    }

    // 6. Logout (one-shot only; awaited), heartbeat, summary.
    if rt.logout_after_run
        && let Some(c) = &client
    {
        c.finish().await;
    }
    if !effective_dry_run && let Some(url) = cfg.alert.heartbeat_urls.get(&name) {
        let fail = exit_code == 2
            || (name == AgentName::HealthGuardian
                && outcome
                    .incidents
                    .iter()
                    .any(|i| i.is_active() && i.severity.counts() && i.kind != "edge-unreachable"));
        crate::alert::heartbeat(&http, url, fail, cfg.api.probe_timeout).await;
    }
    if let Some(f) = &fatal {
        crate::logging::error(name_s, f);
    }
    crate::logging::info(
        name_s,
        format!(
            "run {run_id} done: found={} fixed={} escalated={} resolved={} exit={exit_code} ({} ms)",
            issues_found,
            written.issues_fixed,
            escalated,
            written.issues_resolved.unwrap_or(0),
            t0.elapsed().as_millis()
        ),
    );
    written.exit_code = Some(exit_code);
    drop(lease);
    RunReport {
        agent: name,
        exit_code,
        result: written,
        report: outcome.report,
        fatal,
        wrote_state,
    }
}
