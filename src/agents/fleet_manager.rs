//! fleet-manager (agents.md section 6): not implemented yet.

use super::{AgentContext, AgentOutcome, WriteMode};

/// Incident types of this agent (agents.md section 3).
pub const CATALOGUE: &[&str] = &[];

/// Runs the agent once. Not available yet: exits 2 without writing.
pub async fn run(_ctx: &AgentContext) -> AgentOutcome {
    let mut o = AgentOutcome::new(CATALOGUE);
    o.fail(
        "fleet-manager is not available in this version",
        WriteMode::None,
    );
    o
}

/// Human lines for `vizora-ops status` from `agentResults["fleet-manager"].stats` (agents.md 6.3.6).
pub fn reconnect_summary(_stats: &serde_json::Value) -> Vec<String> {
    Vec::new()
}
