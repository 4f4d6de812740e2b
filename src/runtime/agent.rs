//! The agents as the runtime sees them (design/README.md §3 "runtime"): [`Agent`] is what [`super::run_once`] needs
//! to know of an agent — its name, its incident catalogue (the retired-type rule of agents.md 2.5), how it uses the
//! API (which decides the login and the credential check of 1.3) — and its `run`. One unit struct per agent, all
//! listed in [`registry`], so a new agent is one struct here and one line there.

use crate::agents::{self, AgentContext, AgentOutcome};
use crate::model::AgentName;
use async_trait::async_trait;

/// How an agent uses the Vizora API (agents.md 1.3 step 3, 6.x inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiUse {
    /// Never logs in (health-guardian, db-maintainer).
    None,
    /// Logs in when credentials are configured, runs without otherwise (ops-reporter's dashboard push).
    IfCredentials,
    /// Cannot run without a session: missing credentials end the run with exit 2 before anything is opened.
    Required,
}

/// One agent: detect → remediate → verify over the ports of an [`AgentContext`], returning an [`AgentOutcome`].
/// Sessions, the run lock, the state merge, exit codes and heartbeats are the runtime's (agents.md 1.3), never the
/// agent's.
#[async_trait]
pub trait Agent: Send + Sync {
    /// The agent's name (logs, incident ids, the audit, state keys; agents.md 1.1).
    fn name(&self) -> AgentName;

    /// The incident types this agent raises (agents.md section 3); active incidents of other types of this agent
    /// are retired at a full write (2.5).
    fn catalogue(&self) -> &'static [&'static str];

    /// How the agent uses the API.
    fn api_use(&self) -> ApiUse;

    /// Whether a run cannot do anything without an API session ([`ApiUse::Required`]).
    fn needs_api(&self) -> bool {
        self.api_use() == ApiUse::Required
    }

    /// Whether the agent's own requests (health probes of `/api/` paths) count against the host-wide budget even
    /// without a session (agents.md 5.5): the budget's store is then checked before the run.
    fn probes_through_budget(&self) -> bool {
        false
    }

    /// Whether the run must stop mutating when the audit log is not writable (agents.md 4.8). Every agent but
    /// ops-reporter, which mutates nothing it audits.
    fn audits_mutations(&self) -> bool {
        true
    }

    /// One run: the agent's detect, remediate and verify (agents.md section 6).
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome;
}

/// health-guardian (agents.md 6.1).
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthGuardian;
/// content-lifecycle (agents.md 6.2).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContentLifecycle;
/// fleet-manager (agents.md 6.3).
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetManager;
/// schedule-doctor (agents.md 6.4).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleDoctor;
/// ops-reporter (agents.md 6.5).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpsReporter;
/// ops-reporter's watchdog pass (agents.md 6.5.2): registered so that every [`AgentName`] resolves; never scheduled
/// on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpsWatchdog;
/// db-maintainer (agents.md 6.6).
#[derive(Debug, Clone, Copy, Default)]
pub struct DbMaintainer;

#[async_trait]
impl Agent for HealthGuardian {
    fn name(&self) -> AgentName {
        AgentName::HealthGuardian
    }
    fn catalogue(&self) -> &'static [&'static str] {
        agents::health_guardian::CATALOGUE
    }
    fn api_use(&self) -> ApiUse {
        ApiUse::None
    }
    fn probes_through_budget(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        agents::health_guardian::run(ctx).await
    }
}

#[async_trait]
impl Agent for ContentLifecycle {
    fn name(&self) -> AgentName {
        AgentName::ContentLifecycle
    }
    fn catalogue(&self) -> &'static [&'static str] {
        agents::content_lifecycle::CATALOGUE
    }
    fn api_use(&self) -> ApiUse {
        ApiUse::Required
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        agents::content_lifecycle::run(ctx).await
    }
}

#[async_trait]
impl Agent for FleetManager {
    fn name(&self) -> AgentName {
        AgentName::FleetManager
    }
    fn catalogue(&self) -> &'static [&'static str] {
        agents::fleet_manager::CATALOGUE
    }
    fn api_use(&self) -> ApiUse {
        ApiUse::Required
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        agents::fleet_manager::run(ctx).await
    }
}

#[async_trait]
impl Agent for ScheduleDoctor {
    fn name(&self) -> AgentName {
        AgentName::ScheduleDoctor
    }
    fn catalogue(&self) -> &'static [&'static str] {
        agents::schedule_doctor::CATALOGUE
    }
    fn api_use(&self) -> ApiUse {
        ApiUse::Required
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        agents::schedule_doctor::run(ctx).await
    }
}

#[async_trait]
impl Agent for OpsReporter {
    fn name(&self) -> AgentName {
        AgentName::OpsReporter
    }
    fn catalogue(&self) -> &'static [&'static str] {
        agents::ops_reporter::CATALOGUE
    }
    fn api_use(&self) -> ApiUse {
        ApiUse::IfCredentials
    }
    fn audits_mutations(&self) -> bool {
        false
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        agents::ops_reporter::run(ctx).await
    }
}

#[async_trait]
impl Agent for OpsWatchdog {
    fn name(&self) -> AgentName {
        AgentName::OpsWatchdog
    }
    fn catalogue(&self) -> &'static [&'static str] {
        agents::ops_reporter::CATALOGUE
    }
    // As the runner always did: the watchdog shares ops-reporter's code but not its session or audit exemption.
    fn api_use(&self) -> ApiUse {
        ApiUse::None
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        agents::ops_reporter::run(ctx).await
    }
}

#[async_trait]
impl Agent for DbMaintainer {
    fn name(&self) -> AgentName {
        AgentName::DbMaintainer
    }
    fn catalogue(&self) -> &'static [&'static str] {
        agents::db_maintainer::CATALOGUE
    }
    fn api_use(&self) -> ApiUse {
        ApiUse::None
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        agents::db_maintainer::run(ctx).await
    }
}

/// Every agent, once: the one place an agent is registered (the CLI, the demo, later the daemon look agents up here).
pub fn registry() -> &'static [&'static dyn Agent] {
    &[
        &HealthGuardian,
        &ContentLifecycle,
        &FleetManager,
        &ScheduleDoctor,
        &OpsReporter,
        &OpsWatchdog,
        &DbMaintainer,
    ]
}

/// The registered agent named `name`. Every [`AgentName`] is registered (a unit test checks it), so this never
/// fails for a parsed name.
pub fn agent(name: AgentName) -> &'static dyn Agent {
    registry()
        .iter()
        .copied()
        .find(|a| a.name() == name)
        .unwrap_or(&HealthGuardian)
}
