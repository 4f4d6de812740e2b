//! Test support for the VACUUM and REINDEX rules: a recording [`PgPort`] fake and a context over a temporary log
//! directory (real audit file, manual clock, logging-only alert sink).

use super::report::Part;
use crate::agents::{AgentContext, LogAlertSink};
use crate::clock::ManualClock;
use crate::config::{Config, Source};
use crate::maint::MaintError;
use crate::maint::postgres::{
    IndexReindexReport, PgPort, SQLSTATE_LOCK_TIMEOUT, TableReindexReport, TableVacuumReport,
};
use crate::model::{AgentName, Incident, OpsState, parse_ts};
use crate::state::audit::AuditLog;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A PostgreSQL that answers from its fields and records every call in order.
pub(super) struct FakePg {
    pub version: i32,
    /// Names (tables or indexes) that do not exist.
    pub missing: HashSet<String>,
    /// Existence checks fail.
    pub existence_fails: bool,
    /// Invalid leftovers of the first check, and of later checks.
    pub leftovers: Vec<String>,
    pub leftovers_later: Vec<String>,
    pub leftovers_fail: bool,
    /// Names whose statement fails, with the SQLSTATE it fails with.
    pub fail: HashMap<String, &'static str>,
    pub calls: Mutex<Vec<String>>,
    leftover_checks: Mutex<usize>,
}

impl FakePg {
    pub fn new() -> FakePg {
        FakePg {
            version: 160_004,
            missing: HashSet::new(),
            existence_fails: false,
            leftovers: Vec::new(),
            leftovers_later: Vec::new(),
            leftovers_fail: false,
            fail: HashMap::new(),
            calls: Mutex::new(Vec::new()),
            leftover_checks: Mutex::new(0),
        }
    }
    pub fn missing(mut self, name: &str) -> FakePg {
        self.missing.insert(name.into());
        self
    }
    pub fn failing(mut self, name: &str, sqlstate: &'static str) -> FakePg {
        self.fail.insert(name.into(), sqlstate);
        self
    }
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    /// Every call, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    /// The maintenance statements issued (VACUUM, REINDEX), in order.
    pub fn statements(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("VACUUM") || c.starts_with("REINDEX"))
            .collect()
    }
    fn split(&self, names: &[String]) -> Result<(Vec<String>, Vec<String>), MaintError> {
        if self.existence_fails {
            return Err(MaintError::Query {
                statement: "existence".into(),
                sqlstate: Some("42501".into()),
                message: "permission denied for pg_class".into(),
            });
        }
        Ok(names
            .iter()
            .cloned()
            .partition(|n| !self.missing.contains(n)))
    }
    fn failure(&self, name: &str) -> (Option<String>, Option<String>) {
        match self.fail.get(name) {
            Some(&s) if s == SQLSTATE_LOCK_TIMEOUT => (
                Some("canceling statement due to lock timeout".into()),
                Some(s.into()),
            ),
            Some(&s) => (Some(format!("failed with {s}")), Some(s.into())),
            None => (None, None),
        }
    }
}

#[async_trait]
impl PgPort for FakePg {
    fn server_version_num(&self) -> i32 {
        self.version
    }
    async fn existing_tables(
        &self,
        _schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError> {
        self.record(format!("existing_tables {}", names.join(",")));
        self.split(names)
    }
    async fn existing_indexes(
        &self,
        _schema: &str,
        names: &[String],
    ) -> Result<(Vec<String>, Vec<String>), MaintError> {
        self.record(format!("existing_indexes {}", names.join(",")));
        self.split(names)
    }
    async fn invalid_leftovers(&self, _schema: &str) -> Result<Vec<String>, MaintError> {
        self.record("invalid_leftovers".into());
        if self.leftovers_fail {
            return Err(MaintError::Query {
                statement: "leftovers".into(),
                sqlstate: None,
                message: "connection reset".into(),
            });
        }
        let mut n = self.leftover_checks.lock().unwrap();
        *n += 1;
        Ok(if *n == 1 {
            self.leftovers.clone()
        } else {
            self.leftovers_later.clone()
        })
    }
    async fn table_figures(&self, _s: &str, table: &str, _l: u64) -> (Option<i64>, Option<i64>) {
        self.record(format!("table_figures {table}"));
        (Some(7), Some(8192))
    }
    async fn index_size(&self, _schema: &str, index: &str) -> Option<i64> {
        self.record(format!("index_size {index}"));
        Some(16384)
    }
    async fn vacuum_table(&self, schema: &str, table: &str, lock: u64) -> TableVacuumReport {
        let statement = format!("VACUUM (ANALYZE) \"{schema}\".\"{table}\"");
        self.record(format!("VACUUM {table} lock_timeout={lock}"));
        let (error, sqlstate) = self.failure(table);
        TableVacuumReport {
            table: table.into(),
            statements: vec![statement.clone()],
            statement,
            duration_ms: 3,
            dead_tuples_before: Some(100),
            dead_tuples_after: error.is_none().then_some(0),
            size_before_bytes: Some(8192),
            size_after_bytes: error.is_none().then_some(8192),
            error,
            sqlstate,
        }
    }
    async fn reindex_index(&self, schema: &str, index: &str, lock: u64) -> IndexReindexReport {
        let statement = format!("REINDEX INDEX CONCURRENTLY \"{schema}\".\"{index}\"");
        self.record(format!("REINDEX INDEX {index} lock_timeout={lock}"));
        let (error, sqlstate) = self.failure(index);
        IndexReindexReport {
            index: index.into(),
            table: Some("t".into()),
            statements: vec![statement.clone()],
            statement,
            duration_ms: 4,
            size_before_bytes: Some(16384),
            size_after_bytes: error.is_none().then_some(8192),
            avg_leaf_density_before: None,
            avg_leaf_density_after: None,
            leaf_fragmentation_before: None,
            leaf_fragmentation_after: None,
            error,
            sqlstate,
        }
    }
    async fn reindex_table(&self, schema: &str, table: &str, lock: u64) -> TableReindexReport {
        let statement = format!("REINDEX TABLE CONCURRENTLY \"{schema}\".\"{table}\"");
        self.record(format!("REINDEX TABLE {table} lock_timeout={lock}"));
        let (error, sqlstate) = self.failure(table);
        TableReindexReport {
            table: table.into(),
            statements: vec![statement.clone()],
            statement,
            duration_ms: 5,
            indexes_size_before_bytes: Some(32768),
            indexes_size_after_bytes: error.is_none().then_some(16384),
            error,
            sqlstate,
        }
    }
}

/// A context whose configuration is the defaults plus `pairs`, with its log dir (and audit file) in a temporary
/// directory; `deadline_in` from now.
pub(super) struct Harness {
    _dir: tempfile::TempDir,
    pub ctx: AgentContext,
}

impl Harness {
    pub fn new(pairs: &[(&str, &str)], dry_run: bool, deadline_in: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut all: Vec<(String, String)> =
            vec![("OPS_LOG_DIR".into(), dir.path().display().to_string())];
        all.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cfg = Arc::new(Config::from_source(Source::from_pairs(all), dir.path()).unwrap());
        let t0 = parse_ts("2026-08-26T03:00:00.000Z").unwrap();
        let ctx = AgentContext {
            audit: AuditLog::new(cfg.audit_file.clone()),
            cfg,
            agent: AgentName::DbMaintainer,
            run_id: "run-1".into(),
            started: t0,
            clock: Arc::new(ManualClock::new(t0)),
            dry_run,
            snapshot: OpsState::empty(t0),
            deadline: Instant::now() + deadline_in,
            alerts: Arc::new(LogAlertSink),
            api: None,
            http: reqwest::Client::new(),
            process_manager: None,
        };
        Harness { _dir: dir, ctx }
    }
    /// The audit lines written so far.
    pub fn audit(&self) -> Vec<Value> {
        self.ctx.audit.read_all()
    }
}

/// The incident of `kind` on `target` in a part.
pub(super) fn incident<'a>(p: &'a Part, kind: &str, target: &str) -> Option<&'a Incident> {
    p.incidents
        .iter()
        .find(|i| i.kind == kind && i.target_id == target)
}
