//! The one-shot run of the CLI, the demo and the tests: a [`Runtime`] built for one run, [`run_once`], and a logout
//! at the end (agents.md 1.3 step 6). The lifecycle itself is `crate::runtime`'s (design/README.md §3).

use crate::config::Config;
use crate::model::AgentName;
use crate::runtime::{Runtime, run_once};
use std::sync::Arc;

pub use crate::runtime::{RunOptions, RunReport, Wiring, default_alert_sink};

/// Whether the agent cannot run without logging in to the Vizora API (agents.md 6.x inputs).
pub fn needs_api(agent: AgentName) -> bool {
    crate::runtime::agent::agent(agent).needs_api()
}

/// Runs one agent once (agents.md 1.3) and returns its report; never panics on bad input. The session is logged out
/// at the end (one-shot, agents.md 5.2).
pub async fn run_agent(
    cfg: Arc<Config>,
    agent: AgentName,
    opts: RunOptions,
    wiring: Wiring,
) -> RunReport {
    let rt = match Runtime::new(cfg, wiring) {
        Ok(rt) => rt.one_shot(),
        Err(e) => {
            let reason = format!("cannot build the HTTP client: {e}");
            crate::logging::error(agent.as_str(), &reason);
            return RunReport {
                agent,
                exit_code: 2,
                result: crate::model::AgentResult {
                    agent: agent.as_str().into(),
                    timestamp: crate::model::ts(chrono::Utc::now()),
                    exit_code: Some(2),
                    ..Default::default()
                },
                report: vec![],
                fatal: Some(reason),
                wrote_state: false,
            };
        }
    };
    run_once(&rt, crate::runtime::agent::agent(agent), opts).await
}
