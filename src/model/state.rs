//! Remediation actions, agent results and the `ops-state.json` document (agents.md 2.3, 2.5, 4.5), with malformed
//! elements and unknown keys kept verbatim.

use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A remediation action (agents.md 2.3). `before`/`after` are small projections (5.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemediationAction {
    /// The acting agent's verbatim name (agents.md 1.1).
    pub agent: String,
    /// Start of the action (ISO timestamp).
    pub timestamp: String,
    /// Human description, e.g. `Archive orphaned content "Spring Menu"`.
    pub action: String,
    /// Entity kind acted on (as in [`Incident::target`]).
    pub target: String,
    /// JSON `targetId`: id of the entity acted on.
    pub target_id: String,
    /// HTTP verb, `pm2 restart`, `pm2 reload`, `systemctl restart`, `SQL` or `FILE`.
    pub method: String,
    /// API path including `/api/v1` (API mutations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Small projection of the fresh pre-write read (agents.md 5.8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// Small projection of the response or post-state (agents.md 5.8); absent e.g. when the mutation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Whether the mutation itself succeeded (not whether the fix was verified).
    pub success: bool,
    /// The mutation's failure; `None` on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Additive: the verification verdict after the mutation; `None` = not (yet) verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Additive JSON `runId`: the acting run's UUID (agents.md 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Unknown fields from other writers, kept unchanged (agents.md 4.4).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The result of one agent run (agents.md 2.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AgentResult {
    /// The agent's verbatim name (agents.md 1.1).
    pub agent: String,
    /// End of the run (= `lastRun[agent]`).
    pub timestamp: String,
    /// JSON `durationMs`: wall-clock run time in milliseconds.
    pub duration_ms: u64,
    /// Warning + critical findings raised.
    pub issues_found: u32,
    /// Verified remediations only.
    pub issues_fixed: u32,
    /// JSON `issuesEscalated`: raised incidents ending this run `escalated`.
    pub issues_escalated: u32,
    /// Raised plus resolved copies of this run.
    #[serde(default)]
    pub incidents: Vec<Incident>,
    /// Additive JSON `infoFound`: raised findings that are neither warning nor critical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info_found: Option<u32>,
    /// Additive JSON `issuesResolved`: prior incidents resolved by this run's sweeps (set by the merge, agents.md 4.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issues_resolved: Option<u32>,
    /// Additive JSON `exitCode`: the run's exit code, 0, 1 or 2 (agents.md 1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Additive JSON `runId`: the run's UUID (agents.md 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Additive: the covered types of this run, sorted (agents.md 2.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Vec<String>>,
    /// Additive: per-agent statistics object (agents.md section 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Value>,
    /// Unknown fields from other writers, kept unchanged (agents.md 4.4).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `ops-state.json` document (agents.md 2.3, 4.5). `agent_results` and `last_run` keep unknown agents' entries;
/// entries that fail to parse as typed values are kept as raw JSON in the `*_raw` maps so they round-trip.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsState {
    /// `systemStatus`, recomputed from the incidents on every write (agents.md 2.4).
    pub system_status: SystemStatus,
    /// `lastUpdated`: time of the last write (ISO timestamp).
    pub last_updated: String,
    /// agent → ISO time of its last completed run; `ops-reporter:last-alert` = last delivered status alert.
    pub last_run: Map<String, Value>,
    /// `incidents`: every writer's incidents; pruning evicts only resolved ones (agents.md 4.7).
    pub incidents: Vec<Incident>,
    /// `recentRemediations`: the last 24 h of actions, capped at `OPS_MAX_REMEDIATIONS` (agents.md 4.7).
    pub recent_remediations: Vec<RemediationAction>,
    /// agent → AgentResult (raw JSON so that other writers' entries stay untouched).
    pub agent_results: Map<String, Value>,
    /// Elements of the file's `incidents` array that do not parse as an [`Incident`] (a numeric `id`, `resolvedAt`
    /// as a number, `attempts: "3"`, `null`, …), kept verbatim and written back after the parsed ones; they count
    /// toward nothing (status, alerts, sweeps) and are never pruned by age (agents.md 4.4, 4.7).
    pub verbatim_incidents: Vec<Value>,
    /// Elements of `recentRemediations` that do not parse as a [`RemediationAction`], kept verbatim like
    /// [`OpsState::verbatim_incidents`].
    pub verbatim_remediations: Vec<Value>,
    /// Unknown top-level keys of other writers, written back unchanged after the known keys (agents.md 4.4, 4.5).
    pub extra: Map<String, Value>,
    /// Why each verbatim element did not parse (`incidents[3]: invalid type: …`), for the one ERROR of the state
    /// store; never written.
    pub parse_problems: Vec<String>,
}

impl OpsState {
    /// The empty state `{HEALTHY, now, {}, [], [], {}}` (agents.md 4.4).
    pub fn empty(now: DateTime<Utc>) -> OpsState {
        OpsState {
            system_status: SystemStatus::Healthy,
            last_updated: ts(now),
            last_run: Map::new(),
            incidents: Vec::new(),
            recent_remediations: Vec::new(),
            agent_results: Map::new(),
            verbatim_incidents: Vec::new(),
            verbatim_remediations: Vec::new(),
            extra: Map::new(),
            parse_problems: Vec::new(),
        }
    }

    /// **remediations in 24 h** of this state ([`remediations_24h`] over `recentRemediations`).
    pub fn remediations_24h(&self, now: DateTime<Utc>) -> Vec<&RemediationAction> {
        remediations_24h(&self.recent_remediations, now)
    }

    /// **verified fixes in 24 h** of this state ([`verified_fixes_24h`] over `recentRemediations`).
    pub fn verified_fixes_24h(&self, now: DateTime<Utc>) -> usize {
        verified_fixes_24h(&self.recent_remediations, now)
    }

    /// The status computed from the incidents (agents.md 2.4).
    pub fn computed_status(&self) -> SystemStatus {
        compute_status(self.incidents.iter())
    }

    /// The typed AgentResult of an agent, if present and parseable.
    pub fn agent_result(&self, agent: &str) -> Option<AgentResult> {
        self.agent_results
            .get(agent)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// `lastRun[key]` parsed as a timestamp; missing or unparseable → `None`.
    pub fn last_run_at(&self, key: &str) -> Option<DateTime<Utc>> {
        self.last_run
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(parse_ts)
    }

    /// Serialises with the key order of agents.md 4.5: the six known keys, then unknown ones; verbatim elements
    /// follow the parsed ones in their arrays.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "systemStatus".into(),
            Value::String(self.system_status.as_str().into()),
        );
        m.insert(
            "lastUpdated".into(),
            Value::String(self.last_updated.clone()),
        );
        m.insert("lastRun".into(), Value::Object(self.last_run.clone()));
        m.insert(
            "incidents".into(),
            with_verbatim(
                serde_json::to_value(&self.incidents),
                &self.verbatim_incidents,
            ),
        );
        m.insert(
            "recentRemediations".into(),
            with_verbatim(
                serde_json::to_value(&self.recent_remediations),
                &self.verbatim_remediations,
            ),
        );
        m.insert(
            "agentResults".into(),
            Value::Object(self.agent_results.clone()),
        );
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }

    /// Parses a state document. Each missing top-level field defaults on its own; a known field of the wrong type
    /// (or a non-object top level) is an error naming the field (agents.md 4.4).
    pub fn from_value(v: Value, now: DateTime<Utc>) -> Result<OpsState, String> {
        let Value::Object(mut m) = v else {
            return Err("top level is not a JSON object".into());
        };
        let mut st = OpsState::empty(now);
        if let Some(s) = m.remove("systemStatus") {
            match s.as_str().and_then(SystemStatus::parse) {
                Some(x) => st.system_status = x,
                None if s.is_string() => {}
                None => return Err("field systemStatus has the wrong type".into()),
            }
        }
        if let Some(s) = m.remove("lastUpdated") {
            match s {
                Value::String(s) => st.last_updated = s,
                _ => return Err("field lastUpdated has the wrong type".into()),
            }
        }
        if let Some(s) = m.remove("lastRun") {
            match s {
                Value::Object(o) => st.last_run = o,
                _ => return Err("field lastRun has the wrong type".into()),
            }
        }
        // One malformed element must not cost the whole file (the TypeScript agents share it): elements are parsed
        // one by one and those that fail are kept verbatim (agents.md 4.4). Only a non-array is a wrong type.
        if let Some(s) = m.remove("incidents") {
            let Value::Array(items) = s else {
                return Err("field incidents has the wrong type".into());
            };
            for (n, item) in items.into_iter().enumerate() {
                match Incident::deserialize(&item) {
                    Ok(i) => st.incidents.push(i),
                    Err(e) => {
                        st.parse_problems.push(format!("incidents[{n}]: {e}"));
                        st.verbatim_incidents.push(item);
                    }
                }
            }
        }
        if let Some(s) = m.remove("recentRemediations") {
            let Value::Array(items) = s else {
                return Err("field recentRemediations has the wrong type".into());
            };
            for (n, item) in items.into_iter().enumerate() {
                match RemediationAction::deserialize(&item) {
                    Ok(a) => st.recent_remediations.push(a),
                    Err(e) => {
                        st.parse_problems
                            .push(format!("recentRemediations[{n}]: {e}"));
                        st.verbatim_remediations.push(item);
                    }
                }
            }
        }
        if let Some(s) = m.remove("agentResults") {
            match s {
                Value::Object(o) => st.agent_results = o,
                _ => return Err("field agentResults has the wrong type".into()),
            }
        }
        st.extra = m;
        Ok(st)
    }
}

/// An array of the typed elements (`typed`, a serialised `Vec`) followed by the verbatim ones.
fn with_verbatim(typed: serde_json::Result<Value>, verbatim: &[Value]) -> Value {
    let mut items = match typed {
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    items.extend(verbatim.iter().cloned());
    Value::Array(items)
}
