//! The run lifecycle of agents.md 1.3, written once for every agent: single-instance guard, lock-free snapshot,
//! API session, the agent's detect/remediate/verify, one short locked read-merge-write, logout, dead-man heartbeat,
//! summary line and exit code (1.4). This is also the one place where real implementations are wired together.

use crate::agents::{self, AgentContext, AgentOutcome, AlertSink, WriteMode};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::model::{AgentName, AgentResult, IncidentStatus, ts};
use crate::state::audit::AuditLog;
use crate::state::{RunRecord, StateStore, record_agent_run};
use crate::vizora::budget::RateBudget;
use crate::vizora::{Client, ClientOptions, VizoraApi};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Options of one `run`.
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
    /// Whether the state file was written.
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

/// Whether the agent logs in to the Vizora API (agents.md 6.x inputs).
pub fn needs_api(agent: AgentName) -> bool {
    matches!(
        agent,
        AgentName::ContentLifecycle | AgentName::FleetManager | AgentName::ScheduleDoctor
    )
}

async fn dispatch(agent: AgentName, ctx: &AgentContext) -> AgentOutcome {
    match agent {
        AgentName::HealthGuardian => agents::health_guardian::run(ctx).await,
        AgentName::ContentLifecycle => agents::content_lifecycle::run(ctx).await,
        AgentName::FleetManager => agents::fleet_manager::run(ctx).await,
        AgentName::ScheduleDoctor => agents::schedule_doctor::run(ctx).await,
        AgentName::OpsReporter | AgentName::OpsWatchdog => agents::ops_reporter::run(ctx).await,
        AgentName::DbMaintainer => agents::db_maintainer::run(ctx).await,
    }
}

/// The default alert sink for a configuration: the [`crate::alert::Alerter`] (Slack and the outbox when configured,
/// otherwise a WARNING per message; captured in the demo), agents.md 7.6.
pub fn default_alert_sink(cfg: &Arc<Config>) -> Arc<dyn AlertSink> {
    Arc::new(crate::alert::Alerter::from_config(cfg))
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

/// Runs one agent once (agents.md 1.3) and returns its report; never panics on bad input.
pub async fn run_agent(
    cfg: Arc<Config>,
    agent: AgentName,
    opts: RunOptions,
    wiring: Wiring,
) -> RunReport {
    // Every line of the run carries its run id (the `run` span, agents.md 1.5).
    let run_id = uuid::Uuid::new_v4().to_string();
    let span = crate::logging::run_span(&run_id, agent.as_str(), opts.dry_run || cfg.dry_run);
    tracing::Instrument::instrument(run_agent_in(cfg, agent, opts, wiring, run_id), span).await
}

async fn run_agent_in(
    cfg: Arc<Config>,
    agent: AgentName,
    opts: RunOptions,
    wiring: Wiring,
    run_id: String,
) -> RunReport {
    let clock: Arc<dyn Clock> = wiring
        .clock
        .clone()
        .unwrap_or_else(|| Arc::new(SystemClock));
    let started = clock.now();
    let t0 = Instant::now();
    let dry_run = opts.dry_run || cfg.dry_run;
    let name = agent.as_str();

    // 2. Single-instance guard.
    let guard_path = cfg.state_dir().join(format!("ops-run-{name}.lock"));
    if let Err(e) = std::fs::create_dir_all(cfg.state_dir()) {
        return fatal_report(
            agent,
            &run_id,
            started,
            format!("cannot create state dir {}: {e}", cfg.state_dir().display()),
        );
    }
    let guard = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&guard_path)
    {
        Ok(f) => f,
        Err(e) => {
            return fatal_report(
                agent,
                &run_id,
                started,
                format!("cannot open {}: {e}", guard_path.display()),
            );
        }
    };
    if guard.try_lock().is_err() {
        return fatal_report(
            agent,
            &run_id,
            started,
            format!(
                "another {name} run is in progress (lock {})",
                guard_path.display()
            ),
        );
    }

    crate::logging::info(
        name,
        format!(
            "run {run_id} start{}",
            if dry_run { " (dry run)" } else { "" }
        ),
    );
    let store = StateStore::from_config(&cfg);
    // A broken state lock path fails before any work, not after the mutations (agents.md 4.2).
    if let Err(e) = store
        .check_readable()
        .and_then(|()| store.check_lock(!dry_run))
    {
        return fatal_report(agent, &run_id, started, e.to_string());
    }
    // Missing credentials end an API agent's run before anything is opened or created (the audit file included).
    let has_creds = cfg.api.email.is_some() && cfg.api.password.is_some();
    if needs_api(agent) && !has_creds {
        return fatal_report(
            agent,
            &run_id,
            started,
            crate::vizora::ApiError::NoCredentials.to_string(),
        );
    }
    // The host-wide budget's lock likewise (agents.md 5.5): retrying a lock that cannot be taken never helps.
    let budget = wiring
        .budget
        .clone()
        .unwrap_or_else(|| Client::budget_from_config(&cfg));
    let uses_budget = needs_api(agent)
        || agent == AgentName::HealthGuardian
        || (agent == AgentName::OpsReporter && has_creds);
    if uses_budget {
        // health-guardian builds its own budget from the configuration (its probes share the host's).
        let own = (agent == AgentName::HealthGuardian).then(|| Client::budget_from_config(&cfg));
        for b in std::iter::once(&budget).chain(own.as_ref()) {
            if let Err(e) = b.check() {
                return fatal_report(agent, &run_id, started, e.to_string());
            }
        }
    }
    let snapshot = store.snapshot(started);
    let audit = AuditLog::new(cfg.audit_file.clone());
    let deadline = Instant::now() + cfg.deadline(agent);

    // Audit log must open before any mutation (agents.md 4.8).
    let mut effective_dry_run = dry_run;
    let mut audit_broken = None;
    if !dry_run
        && agent != AgentName::OpsReporter
        && let Err(e) = audit.check_writable()
    {
        audit_broken = Some(format!(
            "audit log not writable ({}: {e}); nothing was changed",
            audit.path().display()
        ));
        effective_dry_run = true;
    }

    // 3. API client (lazy login).
    let client = if needs_api(agent) || (agent == AgentName::OpsReporter && has_creds) {
        match Client::new(
            ClientOptions {
                base_url: cfg.api.base_url.clone(),
                email: cfg.api.email.clone(),
                password: cfg.api.password.clone(),
                agent: name.to_string(),
                run_id: run_id.clone(),
                connect_timeout: cfg.api.connect_timeout,
                request_timeout: cfg.api.request_timeout,
                notify_timeout: cfg.api.notify_timeout,
                retries: cfg.api.retries,
                max_list_items: cfg.api.max_list_items,
                dry_run: effective_dry_run,
                deadline,
            },
            budget,
            audit.clone(),
        ) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                return fatal_report(
                    agent,
                    &run_id,
                    started,
                    format!("cannot build the HTTP client: {e}"),
                );
            }
        }
    } else {
        None
    };
    let http = reqwest::Client::builder()
        .connect_timeout(cfg.api.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("vizora-ops/{} ({name})", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    let alerts = wiring
        .alerts
        .clone()
        .unwrap_or_else(|| default_alert_sink(&cfg));
    let ctx = AgentContext {
        cfg: cfg.clone(),
        agent,
        run_id: run_id.clone(),
        started,
        clock: clock.clone(),
        dry_run: effective_dry_run,
        snapshot,
        audit,
        deadline,
        alerts,
        api: client.clone().map(|c| c as Arc<dyn VizoraApi>),
        http: http.clone(),
        process_manager: wiring.process_manager.clone(),
    };

    // 4. Detect, remediate, verify.
    let mut outcome = dispatch(agent, &ctx).await;
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
        agent: name.to_string(),
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
            stamp_window: crate::state::StampWindow::from_config(&cfg, started),
        };
        let stamps = outcome.alert_stamps.clone();
        let hook = outcome.state_hook.take();
        let after_write = outcome.after_write.take();
        let stamp_time = ts(ended);
        match store.update(ended, move |st| {
            let r = record_agent_run(st, record, ended);
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
            r
        }) {
            Ok((r, _)) => {
                written = r;
                wrote_state = true;
                if let Some(f) = after_write
                    && let Err(e) = f()
                {
                    crate::logging::error(name, e);
                }
            }
            Err(e) => {
                // Logged once, below, with the other fatal reasons.
                exit_code = 2;
                fatal = Some(e.to_string());
            }
        }
    }

    // 6. Logout (awaited), heartbeat, summary.
    if let Some(c) = &client {
        c.finish().await;
    }
    if !effective_dry_run && let Some(url) = cfg.alert.heartbeat_urls.get(&agent) {
        let fail = exit_code == 2
            || (agent == AgentName::HealthGuardian
                && outcome
                    .incidents
                    .iter()
                    .any(|i| i.is_active() && i.severity.counts() && i.kind != "edge-unreachable"));
        crate::alert::heartbeat(&http, url, fail, cfg.api.probe_timeout).await;
    }
    if let Some(f) = &fatal {
        crate::logging::error(name, f);
    }
    crate::logging::info(
        name,
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
    drop(guard);
    RunReport {
        agent,
        exit_code,
        result: written,
        report: outcome.report,
        fatal,
        wrote_state,
    }
}
