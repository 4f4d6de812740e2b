//! What one task contributes to the outcome ([`Part`]) and the helpers every task shares: byte formatting
//! (agents.md 1.1), the run deadline (1.2), incident ids, audit lines (4.8) and remediation records (3.6).

use super::AGENT;
use crate::agents::AgentContext;
use crate::model::{Incident, RemediationAction, ts};
use crate::state::audit::MutationLine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// A byte count for the report: `512 B`, `1.2 KiB`, `3.4 MiB`, `5.6 GiB` (binary units, agents.md 1.1).
pub fn human_bytes(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < K * K {
        format!("{:.1} KiB", b / K)
    } else if b < K * K * K {
        format!("{:.1} MiB", b / (K * K))
    } else {
        format!("{:.1} GiB", b / (K * K * K))
    }
}

pub(super) fn opt_bytes(v: Option<i64>) -> String {
    v.map(|b| human_bytes(b.max(0) as u64))
        .unwrap_or_else(|| "?".into())
}

pub(super) fn opt_num(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
}

pub(super) fn past_deadline(ctx: &AgentContext) -> bool {
    Instant::now() >= ctx.deadline
}

pub(super) fn remaining(ctx: &AgentContext) -> Duration {
    ctx.deadline.saturating_duration_since(Instant::now())
}

/// What one task produced; merged into the outcome in task order.
#[derive(Default)]
pub(super) struct Part {
    pub(super) incidents: Vec<Incident>,
    pub(super) covered: Vec<&'static str>,
    pub(super) unexamined: Vec<String>,
    pub(super) suffix: Vec<(String, String)>,
    pub(super) remediations: Vec<RemediationAction>,
    pub(super) notes: Vec<String>,
    pub(super) stats: Map<String, Value>,
    pub(super) not_configured: Vec<Value>,
}

impl Part {
    pub(super) fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
    pub(super) fn stat(&mut self, k: &str, v: Value) {
        self.stats.insert(k.to_string(), v);
    }
    pub(super) fn not_configured(&mut self, task: &str, enable_with: &str) {
        self.not_configured
            .push(json!({"task": task, "enableWith": enable_with}));
    }
}

pub(super) fn id_of(kind: &str, target_id: &str) -> String {
    crate::model::incident_id(AGENT, kind, target_id)
}

/// Writes an audit mutation line; a failed append is an ERROR, never a reason to stop (4.8).
pub(super) fn audit(ctx: &AgentContext, line: &MutationLine) {
    if let Err(e) = ctx.audit.append(line) {
        ctx.error(format!(
            "audit append failed ({}): {e}",
            ctx.audit.path().display()
        ));
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn action(
    ctx: &AgentContext,
    started: DateTime<Utc>,
    what: &str,
    target: &str,
    target_id: &str,
    method: &str,
    before: Value,
    after: Option<Value>,
    success: bool,
    error: Option<String>,
) -> RemediationAction {
    RemediationAction {
        agent: AGENT.as_str().to_string(),
        timestamp: ts(started),
        action: what.to_string(),
        target: target.to_string(),
        target_id: target_id.to_string(),
        method: method.to_string(),
        endpoint: None,
        before: Some(before),
        after,
        success,
        error,
        verified: None,
        run_id: Some(ctx.run_id.clone()),
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1_258_291), "1.2 MiB");
        assert_eq!(human_bytes(3 * 1_073_741_824), "3.0 GiB");
        assert_eq!(opt_bytes(None), "?");
    }
}
