//! The state store: the TS-compatible `ops-state.json` (agents.md section 4).
//!
//! * [`StateStore::snapshot`] parses without the lock (detection priors; corrupt → empty + ERROR, nothing moved).
//! * [`StateStore::update`] takes the lock, reads (quarantining a corrupt file), applies a pure local closure, prunes,
//!   recomputes the status and writes atomically; no network or subprocess I/O ever happens inside.
//! * [`record_agent_run`] is the merge of 4.6 (upsert, resolution and retired-type sweeps, result, remediations).
//!
//! It deliberately does not decide what an incident means: agents raise, this module merges.

pub mod audit;
pub mod lock;

use crate::model::{
    AgentResult, Incident, IncidentStatus, OpsState, RemediationAction, parse_ts, ts,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

pub use lock::{FileLock, LockError, atomic_write, lock_path_for, quarantine};

/// State store failures (each makes the run exit 2 without writing, agents.md 1.4).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state lock could not be taken: timeout or lock-file I/O (agents.md 4.2).
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The state file exists but cannot be read (or is not a regular file), or is corrupt and could not be
    /// quarantined (agents.md 4.4).
    #[error("cannot read state file {path}: {source}")]
    Read {
        /// The state file's path.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Serialising or the atomic write failed; the old file stays (agents.md 4.5).
    #[error("cannot write state file {path}: {source}")]
    Write {
        /// The state file's path.
        path: String,
        /// The underlying I/O (or serialisation) error.
        source: std::io::Error,
    },
}

/// Caps and retention of agents.md 4.7.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// `OPS_MAX_INCIDENTS` (default 200): above it resolved incidents are evicted, oldest `resolvedAt` first.
    pub max_incidents: usize,
    /// `OPS_MAX_REMEDIATIONS` (default 100): above it the oldest remediations by `timestamp` are evicted.
    pub max_remediations: usize,
    /// `OPS_RESOLVED_RETENTION_HOURS` (default 24): resolved incidents older than this (by `resolvedAt`) are removed.
    pub resolved_retention_hours: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_incidents: 200,
            max_remediations: 100,
            resolved_retention_hours: 24,
        }
    }
}

/// The file-backed state store.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
    lock_timeout: std::time::Duration,
    retention: Retention,
}

impl StateStore {
    /// A store over `path` with the lock deadline and caps.
    pub fn new(
        path: impl Into<PathBuf>,
        lock_timeout: std::time::Duration,
        retention: Retention,
    ) -> StateStore {
        StateStore {
            path: path.into(),
            lock_timeout,
            retention,
        }
    }

    /// A store configured from [`crate::config::Config`].
    pub fn from_config(cfg: &crate::config::Config) -> StateStore {
        StateStore::new(
            cfg.state_file.clone(),
            std::time::Duration::from_millis(cfg.lock_timeout_ms),
            Retention {
                max_incidents: cfg.max_incidents,
                max_remediations: cfg.max_remediations,
                resolved_retention_hours: cfg.resolved_retention_hours,
            },
        )
    }

    /// The state file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that an existing state file can be read (a missing one is fine; a corrupt one is quarantined later, at
    /// the locked write). Runs call this first: an unreadable state would hide the priors (backoff, cooldowns), so
    /// the run stops with exit 2 before doing anything (agents.md 4.4).
    pub fn check_readable(&self) -> Result<(), StateError> {
        // A symlinked state file is refused (agents.md 4.1): the atomic rename would replace the link and split the
        // state in two.
        lock::refuse_symlink(&self.path).map_err(|e| StateError::Read {
            path: self.path.display().to_string(),
            source: e,
        })?;
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::Read {
                path: self.path.display().to_string(),
                source: e,
            }),
            Ok(m) if !m.is_file() => Err(StateError::Read {
                path: self.path.display().to_string(),
                source: std::io::Error::other("not a regular file"),
            }),
            Ok(_) => std::fs::File::open(&self.path)
                .map(|_| ())
                .map_err(|e| StateError::Read {
                    path: self.path.display().to_string(),
                    source: e,
                }),
        }
    }

    /// Checks, before a run does any work, that the state lock can be taken (agents.md 4.2): something other than
    /// a regular file at `<state>.lock` (a directory, a symlink) fails at once. With `probe` (real runs; a dry run
    /// creates no lock file, 4.3) the lock is also taken and released once without waiting, so an unwritable state
    /// dir fails here too; a lock busy with another writer is fine.
    ///
    /// Errors: [`StateError::Lock`] naming the lock file and the reason.
    pub fn check_lock(&self, probe: bool) -> Result<(), StateError> {
        let lp = lock_path_for(&self.path);
        if let Ok(m) = std::fs::symlink_metadata(&lp)
            && !m.file_type().is_file()
        {
            return Err(StateError::Lock(LockError::Io {
                path: lp.display().to_string(),
                source: std::io::Error::other(
                    "something other than a regular file (a directory or symbolic link) is in the place of the \
                     lock file; remove it by hand",
                ),
            }));
        }
        if probe {
            match FileLock::acquire(&lp, std::time::Duration::ZERO) {
                Ok(_) | Err(LockError::Timeout { .. }) => {}
                Err(e) => return Err(StateError::Lock(e)),
            }
        }
        Ok(())
    }

    /// Lock-free snapshot (agents.md 4.3): missing → empty; unreadable or corrupt → empty with an ERROR line; never
    /// quarantines or writes.
    pub fn snapshot(&self, now: DateTime<Utc>) -> OpsState {
        match self.try_snapshot(now) {
            Ok(s) => {
                self.report_verbatim(&s);
                s
            }
            Err(e) => {
                crate::logging::error("ops-state", format!("{e}; using an empty snapshot"));
                OpsState::empty(now)
            }
        }
    }

    /// Lock-free read that reports problems instead of hiding them (for `status`): missing → empty state; unreadable
    /// or corrupt → `Err` with a message naming the file and the reason. Logs, moves and writes nothing.
    pub fn try_snapshot(&self, now: DateTime<Utc>) -> Result<OpsState, String> {
        match read_regular(&self.path) {
            Ok(bytes) => parse_state(&bytes, now)
                .map_err(|e| format!("state file {} is corrupt ({e})", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OpsState::empty(now)),
            Err(e) => Err(format!(
                "cannot read state file {}: {e}",
                self.path.display()
            )),
        }
    }

    /// Locked read-modify-write (agents.md 4.3, 4.6): acquire the lock, read (a corrupt file is quarantined to
    /// `<state>.corrupt-<pid>-<n>` and the update continues from empty), apply `f` (local work only), prune (4.7),
    /// recompute `systemStatus`, set `lastUpdated`, write atomically (4.5), release. Returns `f`'s value and the
    /// written state.
    ///
    /// Errors: lock timeout, unreadable file, failed write — in each case nothing is written.
    pub fn update<R>(
        &self,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut OpsState) -> R,
    ) -> Result<(R, OpsState), StateError> {
        let _guard = FileLock::acquire(&lock_path_for(&self.path), self.lock_timeout)?;
        let mut state = self.read_locked(now)?;
        let r = f(&mut state);
        prune(&mut state, now, self.retention);
        state.system_status = state.computed_status();
        state.last_updated = ts(now);
        self.write(&state)?;
        Ok((r, state))
    }

    fn read_locked(&self, now: DateTime<Utc>) -> Result<OpsState, StateError> {
        let bytes = match read_regular(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OpsState::empty(now)),
            Err(e) => {
                return Err(StateError::Read {
                    path: self.path.display().to_string(),
                    source: e,
                });
            }
        };
        match parse_state(&bytes, now) {
            Ok(s) => {
                self.report_verbatim(&s);
                Ok(s)
            }
            Err(reason) => match lock::quarantine(&self.path) {
                Ok(q) => {
                    crate::logging::error(
                        "ops-state",
                        format!(
                            "state file {} is corrupt ({reason}); quarantined as {} and continuing from an empty state",
                            self.path.display(),
                            q.display()
                        ),
                    );
                    Ok(OpsState::empty(now))
                }
                // Never overwrite a corrupt file that could not be moved aside (agents.md 9.5).
                Err(e) => Err(StateError::Read {
                    path: self.path.display().to_string(),
                    source: std::io::Error::other(format!(
                        "the file is corrupt ({reason}) and could not be quarantined ({e}); nothing written"
                    )),
                }),
            },
        }
    }

    /// One ERROR for the elements kept verbatim (agents.md 4.4), logged once per process for the same content so
    /// the snapshot and the locked read of a run (or every run of the daemon) do not repeat it.
    fn report_verbatim(&self, st: &OpsState) {
        if st.parse_problems.is_empty() {
            return;
        }
        const SHOWN: usize = 3;
        let n = st.parse_problems.len();
        let mut listed = st.parse_problems[..n.min(SHOWN)].join("; ");
        if n > SHOWN {
            listed.push_str(&format!("; … {} more", n - SHOWN));
        }
        let msg = format!(
            "state file {}: {n} element{} do{} not parse and {} kept verbatim (not counted as incidents or \
             remediations; the file is not quarantined): {listed}",
            self.path.display(),
            if n == 1 { "" } else { "s" },
            if n == 1 { "es" } else { "" },
            if n == 1 { "is" } else { "are" },
        );
        static REPORTED: std::sync::Mutex<Option<HashSet<String>>> = std::sync::Mutex::new(None);
        let mut g = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
        if g.get_or_insert_with(HashSet::new).insert(msg.clone()) {
            crate::logging::error("ops-state", msg);
        }
    }

    fn write(&self, state: &OpsState) -> Result<(), StateError> {
        let bytes =
            serde_json::to_vec_pretty(&state.to_value()).map_err(|e| StateError::Write {
                path: self.path.display().to_string(),
                source: std::io::Error::other(e),
            })?;
        atomic_write(&self.path, &bytes, 0o644).map_err(|e| StateError::Write {
            path: self.path.display().to_string(),
            source: e,
        })
    }
}

/// Reads a file that must be a regular file (a symlink is refused, agents.md 4.1). A FIFO, socket or device in its place is an error
/// instead of a read that could block the run forever; a directory fails as usual (`EISDIR`).
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    lock::refuse_symlink(path)?;
    let meta = std::fs::metadata(path)?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_dir() {
        return Err(std::io::Error::other(
            "not a regular file (FIFO, socket or device)",
        ));
    }
    std::fs::read(path)
}

/// Parses state bytes; errors describe why the file is corrupt.
pub fn parse_state(bytes: &[u8], now: DateTime<Utc>) -> Result<OpsState, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("unparseable JSON: {e}"))?;
    OpsState::from_value(v, now)
}

/// What one agent run contributes to the state (agents.md 2.5, 4.6).
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// The run's result; `result.incidents` holds the raised incidents (resolved copies are added by the merge).
    pub result: AgentResult,
    /// Types whose check reached a verdict on complete input this run.
    pub covered_types: HashSet<String>,
    /// Ids the run would have judged but did not (read failed, deferred, unparseable, …): never swept.
    pub unexamined: HashSet<String>,
    /// Types of the agent's current catalogue; active incidents of other types are retired at a full write.
    pub catalogue: Vec<String>,
    /// Message suffix of a swept incident, by id (e.g. ` — superseded by display_offline_persistent`).
    pub resolve_suffix: HashMap<String, String>,
    /// The run's remediation actions.
    pub remediations: Vec<RemediationAction>,
    /// Partial write (agents.md 1.4): no `lastRun` stamp, no sweeps.
    pub partial: bool,
    /// The de-duplication window deciding whether a re-raised incident inherits its resolved predecessor's alert
    /// stamps (agents.md 2.5).
    pub stamp_window: StampWindow,
}

/// The alert de-duplication window of agents.md 2.5, as the merge applies it: a new episode of a resolved incident
/// inherits the predecessor's `alertedAt`/`alertedSeverity`/`alertedStatus` only while that stamp is younger than
/// `dedup_s` seconds (minus the early margin `tolerance_s`, agents.md 1.1) at `started`, so flapping does not
/// re-alert but an old alert is not reused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StampWindow {
    /// The run's start.
    pub started: DateTime<Utc>,
    /// `OPS_ALERT_DEDUP_MINUTES` in seconds.
    pub dedup_s: i64,
    /// `OPS_WINDOW_TOLERANCE_S` (seconds).
    pub tolerance_s: i64,
}

impl StampWindow {
    /// The window of a configuration for a run started at `started`.
    pub fn from_config(cfg: &crate::config::Config, started: DateTime<Utc>) -> StampWindow {
        StampWindow {
            started,
            dedup_s: cfg.alert.dedup_minutes as i64 * 60,
            tolerance_s: cfg.window_tolerance_s,
        }
    }

    /// Whether a stamp taken at `alerted_at` (ISO text; unparseable or absent counts as outside) is outside the
    /// window.
    pub fn expired(&self, alerted_at: Option<&str>) -> bool {
        alerted_at.and_then(crate::model::parse_ts).is_none_or(|t| {
            crate::clock::window_elapsed(self.started, t, self.dedup_s, self.tolerance_s)
        })
    }
}

/// Suffix of the retired-type rule (agents.md 2.5).
pub const RETIRED_SUFFIX: &str = " — incident type retired; closed by vizora-ops";

/// The merge of agents.md 4.6 on the fresh (locked) state: stamps `lastRun`, upserts raised incidents (position kept,
/// fields the stored copy has and the new one lacks carried over), runs the resolution and retired-type sweeps,
/// stores the result (with the resolved copies added to `result.incidents` and counted in `issuesResolved`) and
/// appends the remediations. Returns the stored result.
pub fn record_agent_run(
    state: &mut OpsState,
    mut run: RunRecord,
    now: DateTime<Utc>,
) -> AgentResult {
    let agent = run.result.agent.clone();
    if !run.partial {
        state
            .last_run
            .insert(agent.clone(), Value::String(run.result.timestamp.clone()));
    }
    let raised: HashSet<String> = run.result.incidents.iter().map(|i| i.id.clone()).collect();
    // A new episode inherits the resolved predecessor's alert stamps only inside the window (2.5).
    for stored in state.incidents.iter_mut() {
        if !stored.is_active()
            && raised.contains(&stored.id)
            && run.stamp_window.expired(stored.alerted_at.as_deref())
        {
            stored.clear_alert_stamps();
        }
    }
    for inc in &run.result.incidents {
        upsert(state, inc.clone());
    }
    let mut resolved_copies = Vec::new();
    if !run.partial {
        let catalogue: HashSet<&str> = run.catalogue.iter().map(String::as_str).collect();
        for stored in state.incidents.iter_mut() {
            if stored.agent != agent || !stored.is_active() || raised.contains(&stored.id) {
                continue;
            }
            let retired = !catalogue.is_empty() && !catalogue.contains(stored.kind.as_str());
            let swept =
                run.covered_types.contains(&stored.kind) && !run.unexamined.contains(&stored.id);
            if retired || swept {
                stored.status = IncidentStatus::Resolved;
                stored.resolved_at = Some(ts(now));
                if retired {
                    stored.message.push_str(RETIRED_SUFFIX);
                } else if let Some(sfx) = run.resolve_suffix.get(&stored.id) {
                    stored.message.push_str(sfx);
                }
                resolved_copies.push(stored.clone());
            }
        }
    }
    run.result.issues_resolved = Some(resolved_copies.len() as u32);
    run.result.incidents.extend(resolved_copies);
    if let Ok(v) = serde_json::to_value(&run.result) {
        state.agent_results.insert(agent, v);
    }
    state.recent_remediations.extend(run.remediations);
    run.result
}

/// Upserts one incident by id: replaced in place (position kept), with fields the stored copy has and the new one
/// lacks carried over (alert stamps, unknown fields); new ids are appended.
pub fn upsert(state: &mut OpsState, mut inc: Incident) {
    if let Some(stored) = state.incidents.iter_mut().find(|s| s.id == inc.id) {
        if inc.alerted_at.is_none() {
            inc.alerted_at = stored.alerted_at.clone();
        }
        if inc.alerted_severity.is_none() {
            inc.alerted_severity = stored.alerted_severity.clone();
        }
        if inc.alerted_status.is_none() {
            inc.alerted_status = stored.alerted_status.clone();
        }
        if inc.last_attempt_at.is_none() && inc.is_active() && stored.is_active() {
            inc.last_attempt_at = stored.last_attempt_at.clone();
        }
        for (k, v) in &stored.extra {
            inc.extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
        *stored = inc;
    } else {
        // A stored copy that did not parse is replaced like any stored copy (no duplicate ids in the file).
        state
            .verbatim_incidents
            .retain(|v| v.get("id").and_then(Value::as_str) != Some(inc.id.as_str()));
        state.incidents.push(inc);
    }
}

/// Most elements of each array kept verbatim because they do not parse (agents.md 4.7): beyond it the oldest (first
/// in the file) go, with a WARNING. They are never pruned by age (they have no usable time).
pub const MAX_VERBATIM: usize = 50;

/// Pruning, caps and eviction of agents.md 4.7. Never evicts an active incident (a WARNING when active ones alone
/// exceed the cap). Verbatim elements are capped at [`MAX_VERBATIM`] per array.
pub fn prune(state: &mut OpsState, now: DateTime<Utc>, r: Retention) {
    let cutoff = now - Duration::hours(r.resolved_retention_hours as i64);
    state.incidents.retain(|i| {
        i.is_active()
            || match i.resolved_at.as_deref().and_then(parse_ts) {
                Some(t) => t >= cutoff,
                None => true,
            }
    });
    let rem_cutoff = now - Duration::hours(24);
    // An unparseable timestamp is an unknown age, not an old one (agents.md 1.1): kept, evicted first by the cap.
    state.recent_remediations.retain(|a| {
        parse_ts(&a.timestamp)
            .map(|t| t >= rem_cutoff)
            .unwrap_or(true)
    });
    if state.incidents.len() > r.max_incidents {
        let mut resolved: Vec<(Option<DateTime<Utc>>, String)> = state
            .incidents
            .iter()
            .filter(|i| !i.is_active())
            .map(|i| (i.resolved_at.as_deref().and_then(parse_ts), i.id.clone()))
            .collect();
        resolved.sort(); // None (missing) first, then oldest.
        let excess = state.incidents.len() - r.max_incidents;
        let evict: HashSet<String> = resolved
            .into_iter()
            .take(excess)
            .map(|(_, id)| id)
            .collect();
        state.incidents.retain(|i| !evict.contains(&i.id));
        if state.incidents.len() > r.max_incidents {
            crate::logging::warn(
                "ops-state",
                format!(
                    "{} active incidents exceed OPS_MAX_INCIDENTS ({}); keeping all active ones",
                    state.incidents.len(),
                    r.max_incidents
                ),
            );
        }
    }
    for (what, items) in [
        ("incidents", &mut state.verbatim_incidents),
        ("recentRemediations", &mut state.verbatim_remediations),
    ] {
        if items.len() > MAX_VERBATIM {
            let excess = items.len() - MAX_VERBATIM;
            items.drain(..excess);
            crate::logging::warn(
                "ops-state",
                format!(
                    "dropped the {excess} oldest unparseable {what} element(s) kept verbatim (at most \
                     {MAX_VERBATIM} are kept)"
                ),
            );
        }
    }
    if state.recent_remediations.len() > r.max_remediations {
        state
            .recent_remediations
            .sort_by_key(|a| parse_ts(&a.timestamp));
        let excess = state.recent_remediations.len() - r.max_remediations;
        state.recent_remediations.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentName, Severity};

    fn inc(kind: &str, target: &str, now: DateTime<Utc>) -> Incident {
        Incident::new(
            AgentName::ScheduleDoctor,
            kind,
            Severity::Warning,
            "schedule",
            target,
            "m",
            "r",
            now,
        )
    }

    fn record(incidents: Vec<Incident>, covered: &[&str], now: DateTime<Utc>) -> RunRecord {
        RunRecord {
            result: AgentResult {
                agent: "schedule-doctor".into(),
                timestamp: ts(now),
                incidents,
                ..Default::default()
            },
            covered_types: covered.iter().map(|s| s.to_string()).collect(),
            unexamined: HashSet::new(),
            catalogue: vec!["past_end_schedule".into(), "no_target_schedule".into()],
            resolve_suffix: HashMap::new(),
            remediations: vec![],
            partial: false,
            stamp_window: StampWindow {
                started: now,
                dedup_s: 3600,
                tolerance_s: 120,
            },
        }
    }

    #[test]
    fn a_new_episode_inherits_alert_stamps_only_inside_the_dedup_window() {
        let now = Utc::now();
        for (stamp_age_min, kept) in [(20, true), (57, true), (59, false), (180, false)] {
            let mut st = OpsState::empty(now);
            let mut old = inc("past_end_schedule", "s1", now - Duration::hours(5));
            old.status = IncidentStatus::Resolved;
            old.resolved_at = Some(ts(now - Duration::minutes(10)));
            old.alerted_at = Some(ts(now - Duration::minutes(stamp_age_min)));
            old.alerted_severity = Some(Severity::Warning);
            st.incidents.push(old);
            // The window is 3600 s with a 120 s early margin: a 58-minute-old stamp already counts as outside.
            record_agent_run(
                &mut st,
                record(vec![inc("past_end_schedule", "s1", now)], &[], now),
                now,
            );
            let i = &st.incidents[0];
            assert!(i.is_active());
            assert_eq!(
                i.alerted_at.is_some(),
                kept,
                "stamp {stamp_age_min} min old"
            );
            assert_eq!(i.alerted_severity.is_some(), kept);
        }
    }

    #[test]
    fn sweep_resolves_only_covered_unraised_and_retires_old_types() {
        let now = Utc::now();
        let mut st = OpsState::empty(now);
        st.incidents.push(inc("past_end_schedule", "a", now));
        st.incidents.push(inc("past_end_schedule", "b", now));
        st.incidents.push(inc("no_target_schedule", "c", now));
        st.incidents.push(inc("orphan_schedule", "d", now));
        let r = record_agent_run(
            &mut st,
            record(
                vec![inc("past_end_schedule", "a", now)],
                &["past_end_schedule"],
                now,
            ),
            now,
        );
        let by = |id: &str| {
            st.incidents
                .iter()
                .find(|i| i.id.ends_with(id))
                .unwrap()
                .clone()
        };
        assert!(by(":a").is_active());
        assert!(!by(":b").is_active(), "covered and not raised → resolved");
        assert!(by(":c").is_active(), "type not covered → untouched");
        assert!(by(":d").message.ends_with(RETIRED_SUFFIX));
        assert_eq!(r.issues_resolved, Some(2));
        assert_eq!(st.last_run["schedule-doctor"], Value::String(ts(now)));
    }

    #[test]
    fn eviction_never_drops_an_active_incident() {
        let now = Utc::now();
        let mut st = OpsState::empty(now);
        for n in 0..5 {
            let mut i = inc("past_end_schedule", &format!("r{n}"), now);
            i.status = IncidentStatus::Resolved;
            i.resolved_at = Some(ts(now - Duration::minutes(n)));
            st.incidents.push(i);
        }
        for n in 0..4 {
            st.incidents
                .push(inc("past_end_schedule", &format!("a{n}"), now));
        }
        prune(
            &mut st,
            now,
            Retention {
                max_incidents: 3,
                max_remediations: 10,
                resolved_retention_hours: 24,
            },
        );
        assert_eq!(st.incidents.len(), 4);
        assert!(st.incidents.iter().all(|i| i.is_active()));
    }

    #[test]
    fn verbatim_elements_are_capped_not_pruned_by_age_and_replaced_by_an_upsert_of_their_id() {
        let now = Utc::now();
        let mut st = OpsState::empty(now);
        for n in 0..MAX_VERBATIM + 3 {
            st.verbatim_incidents.push(serde_json::json!({"id": n}));
        }
        let re_raised = inc("past_end_schedule", "s1", now);
        st.verbatim_incidents
            .push(serde_json::json!({"id": re_raised.id, "attempts": "3"}));
        upsert(&mut st, re_raised);
        assert_eq!(st.incidents.len(), 1);
        prune(&mut st, now, Retention::default());
        assert_eq!(st.verbatim_incidents.len(), MAX_VERBATIM);
        assert_eq!(
            st.verbatim_incidents[0],
            serde_json::json!({"id": 3}),
            "the oldest go first"
        );
    }

    #[test]
    fn corrupt_state_is_quarantined_under_the_lock_and_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ops-state.json");
        std::fs::write(&p, b"{not json").unwrap();
        let store = StateStore::new(&p, std::time::Duration::from_secs(1), Retention::default());
        let now = Utc::now();
        assert!(store.snapshot(now).incidents.is_empty());
        assert!(p.exists(), "snapshot quarantines nothing");
        store.update(now, |_| ()).unwrap();
        let q: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert_eq!(q.len(), 1);
        assert_eq!(std::fs::read(d.path().join(&q[0])).unwrap(), b"{not json");
        let written = std::fs::read_to_string(&p).unwrap();
        assert!(written.starts_with("{\n  \"systemStatus\""), "{written}");
        assert!(!written.ends_with('\n'));
    }
}
