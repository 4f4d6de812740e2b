//! db-maintainer (agents.md 6.6, daily 03:00, no API login): PostgreSQL `VACUUM (ANALYZE)` and
//! `REINDEX … CONCURRENTLY`, the Redis memory report, log retention, S3/MinIO bucket usage and backup freshness.
//!
//! The five tasks are independent (6.6): PostgreSQL, Redis, bucket usage and backup verification run concurrently,
//! each bounded by its own timeouts and the run deadline (1.2); log retention runs last, after every other task has
//! written its audit lines, so rotating the audit log (4.8) never races this run's own appends. A task that fails
//! raises its incident and never skips another task (9, item 37).
//!
//! * **Incidents** are the catalogue of 3.6 ([`CATALOGUE`]). Coverage is declared per task that reached a verdict
//!   (2.5): `vacuum-*`/`reindex-*` only when PostgreSQL was reached, `redis-*` when `INFO` succeeded,
//!   `log-retention-failed` when the sweep ran, `bucket-size-high`/`s3-unobservable` when S3 is configured,
//!   `backup-*` per configured location. A `backup-*` incident whose location is no longer configured is resolved by
//!   the sweep with [`STALE_LOCATION_SUFFIX`].
//! * **Maintenance is never a fix** (3.6): `issuesFixed` stays 0; each VACUUM, REINDEX and rotated file is a
//!   [`RemediationAction`] (method `SQL` or `FILE`, no `verified`) plus an audit mutation line (4.8) carrying the SQL
//!   `statement` (`before: null`) or the file `path` relative to the log dir.
//! * **Dry run** (1.5): existence checks, statistics, `INFO`/`SCAN`, listings, backup checks and the rotation *plan*
//!   run; no VACUUM, REINDEX or rotation. Each would-be statement or rotation gets an audit line with `dryRun: true`.
//! * **Demo** (`ctx.cfg.demo`, set only by `vizora-ops demo`): no database, Redis or bucket is contacted even when the
//!   defaults point at localhost; the report says what is not configured and which variables enable each task.
//! * **Secrets** (5.9, 9 item 39): no external program runs; connection strings are shown as `user@host:port/db`, and
//!   every error text comes redacted from `crate::maint`.
//!
//! The report (`outcome.note`) has one line per table, index, Redis, rotated file, bucket and backup location; the
//! same figures go to `agentResults["db-maintainer"].stats.maintenance`.

use super::{AgentContext, AgentOutcome, InlineAlert, InlineKind, WriteMode};
use crate::maint::backup::{self, BackupVerdict};
use crate::maint::logs::{self, RotationParams};
use crate::maint::postgres::{self, PgConn, PgTarget, SQLSTATE_LOCK_TIMEOUT};
use crate::maint::s3::{self, S3Settings, UsageLimits};
use crate::maint::{MaintError, quote_ident};
use crate::model::{AgentName, Incident, RemediationAction, Severity, ts};
use crate::redact::redact_str;
use crate::state::audit::MutationLine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_postgres::types::Type;

const AGENT: AgentName = AgentName::DbMaintainer;

/// Incident types of this agent (agents.md 3.6).
pub const CATALOGUE: &[&str] = &[
    "db-not-configured",
    "vacuum-all-failed",
    "vacuum-table-missing",
    "vacuum-failed",
    "reindex-failed",
    "reindex-unsupported",
    "reindex-invalid-leftover",
    "redis-unobservable",
    "redis-memory-high",
    "redis-fragmentation-high",
    "log-retention-failed",
    "s3-unobservable",
    "bucket-size-high",
    "backup-not-configured",
    "backup-unverifiable",
    "backup-missing",
    "backup-stale",
];

/// Types of the per-location backup checks (6.6.7).
const BACKUP_LOCATION_TYPES: [&str; 3] = ["backup-unverifiable", "backup-missing", "backup-stale"];

/// Message suffix of a `backup-*` incident closed because its location is no longer configured (6.6.7, 9 item 43).
pub const STALE_LOCATION_SUFFIX: &str = " — location no longer configured; closing stale incident (this does not show that a backup exists)";

/// Used memory above which a high fragmentation ratio is reported (6.6.4): 64 MiB.
pub const FRAGMENTATION_MIN_USED_BYTES: u64 = 64 * 1_048_576;
/// Fragmentation ratio above which `redis-fragmentation-high` is raised (6.6.4).
pub const FRAGMENTATION_RATIO_LIMIT: f64 = 1.5;
/// Bound of the Redis key scan (6.6.4): 30 s.
pub const REDIS_SCAN_MAX: Duration = Duration::from_secs(30);

/// Variables that enable each task, as the demo and unconfigured runs report them.
pub const ENABLE_POSTGRES: &str =
    "DATABASE_URL (postgres://user:password@host:5432/vizora?schema=public)";
/// Variables that enable the Redis report.
pub const ENABLE_REDIS: &str = "REDIS_URL (default redis://localhost:6379)";
/// Variables that enable bucket usage.
pub const ENABLE_S3: &str = "OPS_S3_ENDPOINT (or MINIO_ENDPOINT with MINIO_PORT/MINIO_USE_SSL) plus \
     OPS_S3_ACCESS_KEY/OPS_S3_SECRET_KEY (or MINIO_ACCESS_KEY/MINIO_SECRET_KEY); optional OPS_S3_BUCKETS, OPS_S3_WARN_BYTES";
/// Variables that enable backup verification.
pub const ENABLE_BACKUPS: &str = "OPS_BACKUP_LOCATIONS (comma list of s3://bucket[/prefix] or absolute directories), \
     or BACKUP_DIR / BACKUP_S3_BUCKET; S3 backups use OPS_BACKUP_S3_ENDPOINT and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";

// -------------------------------------------------------------------------------------------------------------------
// Formatting helpers

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

fn opt_bytes(v: Option<i64>) -> String {
    v.map(|b| human_bytes(b.max(0) as u64))
        .unwrap_or_else(|| "?".into())
}

fn opt_num(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
}

/// `user@host:port/db` of a PostgreSQL target: never the password, never the verbatim URL (which is a registered
/// secret and would print as `***`).
fn pg_display(t: &PgTarget) -> String {
    let c = t.config();
    let host = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .next()
        .unwrap_or_else(|| "?".into());
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().unwrap_or("?")
    )
}

/// `host:port` of a Redis URL (the URL itself is a registered secret).
fn redis_display(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) => format!(
            "{}:{}",
            p.host_str().unwrap_or("?"),
            p.port().unwrap_or(6379)
        ),
        Err(_) => "<invalid REDIS_URL>".into(),
    }
}

fn past_deadline(ctx: &AgentContext) -> bool {
    Instant::now() >= ctx.deadline
}

fn remaining(ctx: &AgentContext) -> Duration {
    ctx.deadline.saturating_duration_since(Instant::now())
}

// -------------------------------------------------------------------------------------------------------------------
// One task's contribution

/// What one task produced; merged into the outcome in task order.
#[derive(Default)]
struct Part {
    incidents: Vec<Incident>,
    covered: Vec<&'static str>,
    unexamined: Vec<String>,
    suffix: Vec<(String, String)>,
    remediations: Vec<RemediationAction>,
    notes: Vec<String>,
    stats: Map<String, Value>,
    not_configured: Vec<Value>,
}

impl Part {
    fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
    fn stat(&mut self, k: &str, v: Value) {
        self.stats.insert(k.to_string(), v);
    }
    fn not_configured(&mut self, task: &str, enable_with: &str) {
        self.not_configured
            .push(json!({"task": task, "enableWith": enable_with}));
    }
}

fn id_of(kind: &str, target_id: &str) -> String {
    crate::model::incident_id(AGENT, kind, target_id)
}

/// Writes an audit mutation line; a failed append is an ERROR, never a reason to stop (4.8).
fn audit(ctx: &AgentContext, line: &MutationLine) {
    if let Err(e) = ctx.audit.append(line) {
        ctx.error(format!(
            "audit append failed ({}): {e}",
            ctx.audit.path().display()
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn action(
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

// -------------------------------------------------------------------------------------------------------------------
// Entry point

/// Runs the agent once (agents.md 6.6). Exit 2 only for a `DATABASE_URL` the maintenance client rejects as a setting
/// (invalid schema identifier, unsupported `sslmode`, unknown parameter): configuration errors stop the run before
/// any I/O (1.3). Every service fault is an incident; the exit code follows 1.4 (a remaining warning/critical → 1).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut o = AgentOutcome::new(CATALOGUE);
    let db = &ctx.cfg.db;

    // Settings first (1.3): a DATABASE_URL the client cannot use as configured is a configuration error.
    let pg_target = match db.database_url.as_deref() {
        Some(u) => match postgres::prepare_url(u) {
            Ok(t) => Some(t),
            Err(e) => {
                o.fail(
                    format!("configuration error: {}", redact_str(&e.to_string())),
                    WriteMode::None,
                );
                return o;
            }
        },
        None => None,
    };

    ctx.info(format!(
        "maintenance{}: PostgreSQL {}, Redis {}, logs {}, S3 {}, backups {} location(s){}",
        if ctx.dry_run {
            " (dry run: reads only)"
        } else {
            ""
        },
        pg_target
            .as_ref()
            .map(pg_display)
            .unwrap_or_else(|| "not configured".into()),
        redis_display(&db.redis_url),
        redact_str(&db.pm2_log_dir.display().to_string()),
        S3Settings::for_usage(db)
            .map(|s| s.endpoint_host())
            .unwrap_or_else(|| "not configured".into()),
        db.backup_locations.len(),
        if ctx.cfg.demo {
            " (demo: no database, Redis or bucket is contacted)"
        } else {
            ""
        }
    ));

    let (pg, redis, buckets, backups) = tokio::join!(
        postgres_task(ctx, pg_target.as_ref()),
        redis_task(ctx),
        s3_task(ctx),
        backup_task(ctx),
    );
    let rotation = rotation_task(ctx).await;

    let mut maintenance = Map::new();
    maintenance.insert("dryRun".into(), Value::Bool(ctx.dry_run));
    maintenance.insert("demo".into(), Value::Bool(ctx.cfg.demo));
    let mut not_configured = Vec::new();
    for part in [pg, redis, rotation, buckets, backups] {
        for i in part.incidents {
            o.raise(i);
        }
        for c in part.covered {
            o.cover(c);
        }
        o.unexamined.extend(part.unexamined);
        o.resolve_suffix.extend(part.suffix);
        o.remediations.extend(part.remediations);
        for n in part.notes {
            o.note(n);
        }
        maintenance.extend(part.stats);
        not_configured.extend(part.not_configured);
    }
    maintenance.insert("notConfigured".into(), Value::Array(not_configured));
    o.stats = Some(json!({ "maintenance": Value::Object(maintenance) }));
    o.fixed = 0;

    critical_alert(ctx, &mut o).await;
    o
}

/// One batched inline critical alert (7.6) for the open transition of this run's critical findings (new episode,
/// or a finding that rose to critical); delivered ids are stamped in this run's write.
async fn critical_alert(ctx: &AgentContext, o: &mut AgentOutcome) {
    let priors = ctx.priors();
    let list: Vec<Incident> = o
        .incidents
        .iter()
        .filter(|i| i.is_active() && i.severity == Severity::Critical)
        .filter(|i| {
            priors
                .get(&i.id)
                .filter(|p| p.is_active())
                .is_none_or(|p| p.severity != Severity::Critical)
        })
        .cloned()
        .collect();
    if list.is_empty() {
        return;
    }
    let alert = InlineAlert {
        agent: AGENT,
        kind: InlineKind::Critical,
        summary: format!(
            "db-maintainer: {} critical maintenance finding(s)",
            list.len()
        ),
        items: list
            .iter()
            .map(|i| {
                format!(
                    "{} {}: {} — {}",
                    i.kind, i.target_id, i.message, i.remediation
                )
            })
            .collect(),
        refs: list,
    };
    let stamps = ctx.alerts.inline(alert, ctx.now(), ctx.dry_run).await;
    o.alert_stamps.extend(stamps);
}

// -------------------------------------------------------------------------------------------------------------------
// PostgreSQL (6.6.1–6.6.3)

async fn postgres_task(ctx: &AgentContext, target: Option<&PgTarget>) -> Part {
    let mut p = Part::default();
    let Some(target) = target else {
        if ctx.cfg.demo {
            p.note(format!(
                "PostgreSQL: not configured in the demo — set {ENABLE_POSTGRES} to enable VACUUM (ANALYZE) and \
                 REINDEX CONCURRENTLY"
            ));
        } else {
            p.note(format!(
                "PostgreSQL: not configured — set {ENABLE_POSTGRES} to enable VACUUM (ANALYZE) and REINDEX \
                 CONCURRENTLY"
            ));
        }
        p.not_configured("postgres", ENABLE_POSTGRES);
        p.incidents.push(ctx.incident(
            "db-not-configured",
            Severity::Info,
            "database",
            "DATABASE_URL",
            "DATABASE_URL is not set; PostgreSQL VACUUM and REINDEX were skipped",
            format!("set {ENABLE_POSTGRES} to enable PostgreSQL maintenance"),
        ));
        p.covered.push("db-not-configured");
        p.stat("postgres", json!({"configured": false}));
        return p;
    };
    p.covered.push("db-not-configured");
    let shown = pg_display(target);
    if ctx.cfg.demo {
        p.note(format!(
            "PostgreSQL {shown}: configured but not contacted in the demo"
        ));
        p.stat(
            "postgres",
            json!({"configured": true, "contacted": false, "target": shown}),
        );
        return p;
    }
    let db = &ctx.cfg.db;
    let conn = match postgres::connect(target, db.statement_timeout_s).await {
        Ok(c) => c,
        Err(e) => {
            let err = redact_str(&connect_error_text(&e));
            p.note(format!(
                "PostgreSQL {shown}: connection failed — {err}; no VACUUM or REINDEX ran"
            ));
            let mut inc = ctx.incident(
                "vacuum-all-failed",
                Severity::Critical,
                "database",
                "all-tables",
                format!(
                    "cannot connect to PostgreSQL {shown} (schema \"{}\"): {err}; no VACUUM or REINDEX ran",
                    target.schema
                ),
                "check that PostgreSQL is up and that DATABASE_URL (host, port, user, password, database, sslmode) \
                 is right; the other maintenance tasks still ran",
            );
            inc.error = Some(err.clone());
            p.incidents.push(inc);
            p.stat(
                "postgres",
                json!({"configured": true, "connected": false, "target": shown, "error": err}),
            );
            return p;
        }
    };
    p.stat(
        "postgres",
        json!({
            "configured": true,
            "connected": true,
            "target": shown,
            "schema": target.schema,
            "serverVersionNum": conn.server_version_num(),
            "lockTimeoutS": db.lock_timeout_s,
            "statementTimeoutS": db.statement_timeout_s,
        }),
    );
    vacuum(ctx, &conn, &target.schema, &mut p).await;
    reindex(ctx, &conn, &target.schema, &mut p).await;
    p
}

fn connect_error_text(e: &MaintError) -> String {
    match e {
        MaintError::Connect { message, .. } => message.clone(),
        MaintError::Timeout { after_ms, .. } => format!("no connection within {after_ms} ms"),
        other => other.to_string(),
    }
}

fn lock_hint(sqlstate: Option<&str>, lock_timeout_s: u64) -> String {
    if sqlstate == Some(SQLSTATE_LOCK_TIMEOUT) {
        format!(
            " (another session held a conflicting lock longer than OPS_DB_LOCK_TIMEOUT_S={lock_timeout_s} s; \
             the statement gave up instead of blocking writes)"
        )
    } else {
        String::new()
    }
}

const BLOCKER_HINT: &str = "find the blocking session (SELECT pid, state, xact_start, query FROM pg_stat_activity \
     WHERE cardinality(pg_blocking_pids(pid)) > 0 OR state = 'idle in transaction') and end the long transaction; \
     the next run retries";

/// Reads `n_dead_tup` and the total size of a table without maintaining it (dry run). Statistics reads take no lock;
/// the size read runs under the lock timeout.
async fn table_figures(
    conn: &PgConn,
    schema: &str,
    table: &str,
    lock_timeout_s: u64,
) -> (Option<i64>, Option<i64>) {
    let c = conn.client();
    let bound = Duration::from_secs(lock_timeout_s + 10);
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
        [(&schema, Type::TEXT), (&table, Type::TEXT)];
    let dead = match tokio::time::timeout(
        bound,
        c.query_typed(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2",
            &params,
        ),
    )
    .await
    {
        Ok(Ok(rows)) => rows.first().and_then(|r| r.get::<_, Option<i64>>(0)),
        _ => None,
    };
    let set = format!("SET lock_timeout = '{}s'", lock_timeout_s.max(1));
    let _ = tokio::time::timeout(bound, c.simple_query(&set)).await;
    let size = match tokio::time::timeout(
        bound,
        c.query_typed(
            "SELECT pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &params,
        ),
    )
    .await
    {
        Ok(Ok(rows)) => rows.first().and_then(|r| r.get::<_, Option<i64>>(0)),
        _ => None,
    };
    (dead, size)
}

async fn index_size(conn: &PgConn, schema: &str, index: &str) -> Option<i64> {
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
        [(&schema, Type::TEXT), (&index, Type::TEXT)];
    match tokio::time::timeout(
        Duration::from_secs(30),
        conn.client().query_typed(
            "SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'i'",
            &params,
        ),
    )
    .await
    {
        Ok(Ok(rows)) => rows.first().and_then(|r| r.get::<_, Option<i64>>(0)),
        _ => None,
    }
}

fn sql_line(
    ctx: &AgentContext,
    what: &str,
    target_id: &str,
    statement: &str,
    started: DateTime<Utc>,
) -> MutationLine {
    let mut l = MutationLine::new(
        &ctx.run_id,
        AGENT.as_str(),
        what,
        "SQL",
        "database",
        target_id,
        started,
        Value::Null,
        ctx.dry_run,
    );
    l.statement = Some(statement.to_string());
    l
}

/// VACUUM of `OPS_VACUUM_TABLES` (6.6.2): existence first, then one statement per table.
async fn vacuum(ctx: &AgentContext, conn: &PgConn, schema: &str, p: &mut Part) {
    let db = &ctx.cfg.db;
    let (present, missing) = match conn.existing_tables(schema, &db.vacuum_tables).await {
        Ok(x) => x,
        Err(e) => {
            // Existence unknown: nothing is vacuumed (9 item 38) and no vacuum type is covered.
            let err = redact_str(&e.to_string());
            p.note(format!(
                "VACUUM: table existence check failed — {err}; no VACUUM ran"
            ));
            let mut inc = ctx.incident(
                "vacuum-all-failed",
                Severity::Critical,
                "database",
                "all-tables",
                format!("the table existence check failed: {err}; no VACUUM ran"),
                "check the PostgreSQL log and the maintenance user's catalog access; the next run retries",
            );
            inc.error = Some(err);
            p.incidents.push(inc);
            p.stat("tables", Value::Array(vec![]));
            return;
        }
    };
    p.covered.push("vacuum-table-missing");
    for t in &missing {
        p.note(format!(
            "\"{t}\": table does not exist in schema \"{schema}\" — not vacuumed"
        ));
        p.incidents.push(ctx.incident(
            "vacuum-table-missing",
            Severity::Critical,
            "database",
            t,
            format!(
                "configured table \"{t}\" does not exist in schema \"{schema}\" (OPS_VACUUM_TABLES); it was not vacuumed"
            ),
            "OPS_VACUUM_TABLES must hold physical table names (e.g. \"Content\", \"devices\", \"content_impressions\"), \
             not ORM model names: check the name in the database (\\dt) and correct the setting",
        ));
    }

    let mut rows = Vec::new();
    let mut attempted = 0usize;
    let mut failures: Vec<(String, String, Option<String>)> = Vec::new();
    let mut deferred = Vec::new();
    for t in &present {
        if past_deadline(ctx) {
            deferred.push(t.clone());
            p.unexamined.push(id_of("vacuum-failed", t));
            p.note(format!(
                "\"{t}\": VACUUM deferred — the run deadline was reached"
            ));
            continue;
        }
        let stmt = format!(
            "VACUUM (ANALYZE) {}.{}",
            quote_ident(schema),
            quote_ident(t)
        );
        let what = format!("VACUUM (ANALYZE) \"{t}\"");
        let started = ctx.now();
        if ctx.dry_run {
            let (dead, size) = table_figures(conn, schema, t, db.lock_timeout_s).await;
            audit(ctx, &sql_line(ctx, &what, t, &stmt, started));
            p.unexamined.push(id_of("vacuum-failed", t));
            p.note(format!(
                "\"{t}\": would run {stmt} (dry run) — dead tuples {}, size {}",
                opt_num(dead),
                opt_bytes(size)
            ));
            rows.push(json!({
                "table": t, "dryRun": true, "statement": stmt,
                "deadTuplesBefore": dead, "sizeBeforeBytes": size,
            }));
            continue;
        }
        attempted += 1;
        let r = conn.vacuum_table(schema, t, db.lock_timeout_s).await;
        let mut line = sql_line(ctx, &what, t, &r.statement, started);
        line.success = r.ok();
        line.duration_ms = Some(r.duration_ms);
        let after = json!({"deadTuples": r.dead_tuples_after, "sizeBytes": r.size_after_bytes});
        let before = json!({"deadTuples": r.dead_tuples_before, "sizeBytes": r.size_before_bytes});
        if r.ok() {
            line.after = Some(after.clone());
            p.note(format!(
                "\"{t}\": dead tuples {} → {}, size {} → {}, {} ms",
                opt_num(r.dead_tuples_before),
                opt_num(r.dead_tuples_after),
                opt_bytes(r.size_before_bytes),
                opt_bytes(r.size_after_bytes),
                r.duration_ms
            ));
        } else {
            let err = r.error.clone().unwrap_or_default();
            line.error = Some(err.clone());
            p.note(format!(
                "\"{t}\": VACUUM failed after {} ms — {err}{}",
                r.duration_ms,
                lock_hint(r.sqlstate.as_deref(), db.lock_timeout_s)
            ));
            failures.push((t.clone(), err, r.sqlstate.clone()));
        }
        audit(ctx, &line);
        p.remediations.push(action(
            ctx,
            started,
            &what,
            "database",
            t,
            "SQL",
            before,
            r.ok().then_some(after),
            r.ok(),
            r.error.clone(),
        ));
        rows.push(json!({
            "table": t,
            "statement": r.statement,
            "durationMs": r.duration_ms,
            "deadTuplesBefore": r.dead_tuples_before,
            "deadTuplesAfter": r.dead_tuples_after,
            "sizeBeforeBytes": r.size_before_bytes,
            "sizeAfterBytes": r.size_after_bytes,
            "ok": r.ok(),
            "error": r.error,
            "sqlstate": r.sqlstate,
        }));
    }
    for t in &missing {
        rows.push(json!({"table": t, "missing": true}));
    }
    p.stat("tables", Value::Array(rows));
    if ctx.dry_run || (!deferred.is_empty() && attempted == 0) {
        // Nothing attempted: no verdict on failures.
        return;
    }
    p.covered.push("vacuum-failed");
    p.covered.push("vacuum-all-failed");
    if attempted > 0 && failures.len() == attempted {
        let list: Vec<String> = failures
            .iter()
            .map(|(t, e, s)| format!("\"{t}\": {e}{}", lock_hint(s.as_deref(), db.lock_timeout_s)))
            .collect();
        let any_lock = failures
            .iter()
            .any(|(_, _, s)| s.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT));
        let mut inc = ctx.incident(
            "vacuum-all-failed",
            Severity::Critical,
            "database",
            "all-tables",
            format!(
                "all {attempted} VACUUM statement(s) failed: {}",
                list.join("; ")
            ),
            if any_lock {
                BLOCKER_HINT.to_string()
            } else {
                "check the PostgreSQL log and the maintenance user's privileges (VACUUM needs table ownership); the \
                 next run retries"
                    .to_string()
            },
        );
        inc.error = failures.first().map(|f| f.1.clone());
        p.incidents.push(inc);
        // The per-table failures are represented by vacuum-all-failed: their own incidents are not judged.
        for (t, _, _) in &failures {
            p.unexamined.push(id_of("vacuum-failed", t));
        }
    } else {
        for (t, e, s) in &failures {
            let mut inc = ctx.incident(
                "vacuum-failed",
                Severity::Warning,
                "database",
                t,
                format!(
                    "VACUUM (ANALYZE) {}.{} failed: {e}{}",
                    quote_ident(schema),
                    quote_ident(t),
                    lock_hint(s.as_deref(), db.lock_timeout_s)
                ),
                if s.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT) {
                    BLOCKER_HINT.to_string()
                } else {
                    "check the PostgreSQL log for this table; the next run retries".to_string()
                },
            );
            inc.error = Some(e.clone());
            p.incidents.push(inc);
        }
    }
}

/// REINDEX CONCURRENTLY of `OPS_REINDEX_INDEXES` and `OPS_REINDEX_TABLES` (6.6.3), with invalid `_ccnew` leftovers
/// reported (never dropped) and their indexes skipped.
async fn reindex(ctx: &AgentContext, conn: &PgConn, schema: &str, p: &mut Part) {
    let db = &ctx.cfg.db;
    if db.reindex_indexes.is_empty() && db.reindex_tables.is_empty() {
        p.note(
            "REINDEX: nothing configured (OPS_REINDEX_INDEXES and OPS_REINDEX_TABLES are empty)",
        );
    }
    p.covered.push("reindex-unsupported");
    if !conn.supports_reindex_concurrently() {
        let v = conn.server_version_num();
        p.note(format!(
            "REINDEX: skipped — server_version_num {v} < 120000 (REINDEX CONCURRENTLY needs PostgreSQL 12+)"
        ));
        p.incidents.push(ctx.incident(
            "reindex-unsupported",
            Severity::Info,
            "database",
            "server-version",
            format!(
                "server_version_num {v} < 120000: REINDEX … CONCURRENTLY needs PostgreSQL 12 or later; a \
                 non-concurrent rebuild blocks writes and never runs"
            ),
            "upgrade PostgreSQL to 12 or later; until then rebuild bloated indexes manually in a maintenance window",
        ));
        p.stat("indexes", Value::Array(vec![]));
        return;
    }

    let leftovers = match conn.invalid_leftovers(schema).await {
        Ok(l) => l,
        Err(e) => {
            // Without knowing the leftovers a rebuild could add another one: nothing is reindexed.
            let err = redact_str(&e.to_string());
            p.note(format!(
                "REINDEX: the invalid-index check failed — {err}; nothing was reindexed"
            ));
            for i in db.reindex_indexes.iter().chain(db.reindex_tables.iter()) {
                let mut inc = ctx.incident(
                    "reindex-failed",
                    Severity::Warning,
                    "database",
                    i,
                    format!("not reindexed: the check for invalid _ccnew leftovers failed: {err}"),
                    "check the PostgreSQL log and catalog access; the next run retries",
                );
                inc.error = Some(err.clone());
                p.incidents.push(inc);
            }
            p.stat("indexes", Value::Array(vec![]));
            return;
        }
    };
    p.covered.push("reindex-invalid-leftover");
    report_leftovers(ctx, schema, &leftovers, p);

    let mut rows = Vec::new();
    match conn.existing_indexes(schema, &db.reindex_indexes).await {
        Err(e) => {
            let err = redact_str(&e.to_string());
            p.note(format!(
                "REINDEX: index existence check failed — {err}; no index was reindexed"
            ));
        }
        Ok((present, missing)) => {
            p.covered.push("reindex-failed");
            for i in &missing {
                p.note(format!(
                    "index \"{i}\": does not exist in schema \"{schema}\" — not reindexed"
                ));
                p.incidents.push(ctx.incident(
                    "reindex-failed",
                    Severity::Warning,
                    "database",
                    i,
                    format!(
                        "configured index \"{i}\" does not exist in schema \"{schema}\" (OPS_REINDEX_INDEXES); not \
                         reindexed"
                    ),
                    "correct OPS_REINDEX_INDEXES (physical index names, e.g. \"Content_status_idx\") or create the \
                     index through a migration",
                ));
                rows.push(json!({"index": i, "missing": true}));
            }
            for i in &present {
                if let Some(l) = postgres::leftover_for(i, &leftovers) {
                    p.unexamined.push(id_of("reindex-failed", i));
                    p.note(format!(
                        "index \"{i}\": not reindexed — invalid leftover \"{l}\" of an interrupted rebuild exists"
                    ));
                    rows.push(json!({"index": i, "skipped": format!("invalid leftover {l}")}));
                    continue;
                }
                if past_deadline(ctx) {
                    p.unexamined.push(id_of("reindex-failed", i));
                    p.note(format!(
                        "index \"{i}\": REINDEX deferred — the run deadline was reached"
                    ));
                    continue;
                }
                rows.push(reindex_one(ctx, conn, schema, i, p).await);
            }
        }
    }

    let mut table_rows = Vec::new();
    if !db.reindex_tables.is_empty() {
        match conn.existing_tables(schema, &db.reindex_tables).await {
            Err(e) => {
                let err = redact_str(&e.to_string());
                p.note(format!(
                    "REINDEX TABLE: table existence check failed — {err}; no table was reindexed"
                ));
                for t in &db.reindex_tables {
                    p.unexamined.push(id_of("reindex-failed", t));
                }
            }
            Ok((present, missing)) => {
                for t in &missing {
                    p.note(format!(
                        "table \"{t}\": does not exist in schema \"{schema}\" — REINDEX TABLE skipped"
                    ));
                    p.incidents.push(ctx.incident(
                        "reindex-failed",
                        Severity::Warning,
                        "database",
                        t,
                        format!(
                            "configured table \"{t}\" does not exist in schema \"{schema}\" (OPS_REINDEX_TABLES); \
                             not reindexed"
                        ),
                        "correct OPS_REINDEX_TABLES (physical table names)",
                    ));
                    table_rows.push(json!({"table": t, "missing": true}));
                }
                for t in &present {
                    if past_deadline(ctx) {
                        p.unexamined.push(id_of("reindex-failed", t));
                        continue;
                    }
                    table_rows.push(reindex_table_one(ctx, conn, schema, t, p).await);
                }
            }
        }
    }

    // A failed concurrent rebuild may leave a new invalid index behind: report it in this run.
    let any_failed = p
        .incidents
        .iter()
        .any(|i| i.kind == "reindex-failed" && i.error.is_some());
    if any_failed
        && !ctx.dry_run
        && let Ok(after) = conn.invalid_leftovers(schema).await
    {
        let new: Vec<String> = after
            .into_iter()
            .filter(|l| !leftovers.contains(l))
            .collect();
        report_leftovers(ctx, schema, &new, p);
    }
    p.stat("indexes", Value::Array(rows));
    p.stat("reindexTables", Value::Array(table_rows));
}

fn report_leftovers(ctx: &AgentContext, schema: &str, leftovers: &[String], p: &mut Part) {
    let db = &ctx.cfg.db;
    let mut listed = Vec::new();
    for l in leftovers {
        let owner = db
            .reindex_indexes
            .iter()
            .find(|i| postgres::leftover_for(i, std::slice::from_ref(l)).is_some());
        let of = owner.map(|i| format!(" of \"{i}\"")).unwrap_or_default();
        p.note(format!(
            "index \"{l}\": INVALID leftover of an interrupted REINDEX CONCURRENTLY{of} — reported, not dropped"
        ));
        p.incidents.push(ctx.incident(
            "reindex-invalid-leftover",
            Severity::Warning,
            "database",
            l,
            format!(
                "invalid index \"{l}\" in schema \"{schema}\" is the leftover of an interrupted REINDEX \
                 CONCURRENTLY{of}; it costs write time and disk, is never dropped automatically, and its index is \
                 not reindexed while it exists"
            ),
            format!(
                "make sure no REINDEX is running (pg_stat_progress_create_index), then drop it by hand: DROP INDEX \
                 CONCURRENTLY {}.{}; the next run rebuilds the original index",
                quote_ident(schema),
                quote_ident(l)
            ),
        ));
        listed.push(l.clone());
    }
    if !listed.is_empty() {
        let prev = p
            .stats
            .get("invalidLeftovers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut all = prev;
        all.extend(listed.into_iter().map(Value::String));
        p.stat("invalidLeftovers", Value::Array(all));
    }
}

async fn reindex_one(
    ctx: &AgentContext,
    conn: &PgConn,
    schema: &str,
    index: &str,
    p: &mut Part,
) -> Value {
    let db = &ctx.cfg.db;
    let stmt = format!(
        "REINDEX INDEX CONCURRENTLY {}.{}",
        quote_ident(schema),
        quote_ident(index)
    );
    let what = format!("REINDEX INDEX CONCURRENTLY \"{index}\"");
    let started = ctx.now();
    if ctx.dry_run {
        let size = index_size(conn, schema, index).await;
        audit(ctx, &sql_line(ctx, &what, index, &stmt, started));
        p.unexamined.push(id_of("reindex-failed", index));
        p.note(format!(
            "index \"{index}\": would run {stmt} (dry run) — size {}",
            opt_bytes(size)
        ));
        return json!({"index": index, "dryRun": true, "statement": stmt, "sizeBeforeBytes": size});
    }
    let r = conn.reindex_index(schema, index, db.lock_timeout_s).await;
    let mut line = sql_line(ctx, &what, index, &r.statement, started);
    line.success = r.ok();
    line.duration_ms = Some(r.duration_ms);
    let before = json!({
        "sizeBytes": r.size_before_bytes,
        "avgLeafDensity": r.avg_leaf_density_before,
        "leafFragmentation": r.leaf_fragmentation_before,
    });
    let after = json!({
        "sizeBytes": r.size_after_bytes,
        "avgLeafDensity": r.avg_leaf_density_after,
        "leafFragmentation": r.leaf_fragmentation_after,
    });
    if r.ok() {
        line.after = Some(after.clone());
        let density = match (r.avg_leaf_density_before, r.avg_leaf_density_after) {
            (Some(b), Some(a)) => format!(", leaf density {b:.1} % → {a:.1} %"),
            _ => String::new(),
        };
        p.note(format!(
            "index \"{index}\": rebuilt concurrently, size {} → {}{density}, {} ms",
            opt_bytes(r.size_before_bytes),
            opt_bytes(r.size_after_bytes),
            r.duration_ms
        ));
    } else {
        let err = r.error.clone().unwrap_or_default();
        line.error = Some(err.clone());
        let hint = lock_hint(r.sqlstate.as_deref(), db.lock_timeout_s);
        p.note(format!(
            "index \"{index}\": REINDEX failed after {} ms — {err}{hint}",
            r.duration_ms
        ));
        let mut inc = ctx.incident(
            "reindex-failed",
            Severity::Warning,
            "database",
            index,
            format!("{stmt} failed: {err}{hint}"),
            if r.sqlstate.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT) {
                BLOCKER_HINT.to_string()
            } else {
                "check the PostgreSQL log; an interrupted rebuild may leave an invalid _ccnew index (reported \
                 separately, never dropped automatically); the next run retries"
                    .to_string()
            },
        );
        inc.error = Some(err);
        p.incidents.push(inc);
    }
    audit(ctx, &line);
    p.remediations.push(action(
        ctx,
        started,
        &what,
        "database",
        index,
        "SQL",
        before,
        r.ok().then_some(after),
        r.ok(),
        r.error.clone(),
    ));
    json!({
        "index": index,
        "table": r.table,
        "statement": r.statement,
        "durationMs": r.duration_ms,
        "sizeBeforeBytes": r.size_before_bytes,
        "sizeAfterBytes": r.size_after_bytes,
        "avgLeafDensityBefore": r.avg_leaf_density_before,
        "avgLeafDensityAfter": r.avg_leaf_density_after,
        "leafFragmentationBefore": r.leaf_fragmentation_before,
        "leafFragmentationAfter": r.leaf_fragmentation_after,
        "ok": r.ok(),
        "error": r.error,
        "sqlstate": r.sqlstate,
    })
}

async fn reindex_table_one(
    ctx: &AgentContext,
    conn: &PgConn,
    schema: &str,
    table: &str,
    p: &mut Part,
) -> Value {
    let db = &ctx.cfg.db;
    let stmt = format!(
        "REINDEX TABLE CONCURRENTLY {}.{}",
        quote_ident(schema),
        quote_ident(table)
    );
    let what = format!("REINDEX TABLE CONCURRENTLY \"{table}\"");
    let started = ctx.now();
    if ctx.dry_run {
        audit(ctx, &sql_line(ctx, &what, table, &stmt, started));
        p.unexamined.push(id_of("reindex-failed", table));
        p.note(format!("table \"{table}\": would run {stmt} (dry run)"));
        return json!({"table": table, "dryRun": true, "statement": stmt});
    }
    let r = conn.reindex_table(schema, table, db.lock_timeout_s).await;
    let mut line = sql_line(ctx, &what, table, &r.statement, started);
    line.success = r.ok();
    line.duration_ms = Some(r.duration_ms);
    let before = json!({"indexesSizeBytes": r.indexes_size_before_bytes});
    let after = json!({"indexesSizeBytes": r.indexes_size_after_bytes});
    if r.ok() {
        line.after = Some(after.clone());
        p.note(format!(
            "table \"{table}\": indexes rebuilt concurrently, {} → {}, {} ms",
            opt_bytes(r.indexes_size_before_bytes),
            opt_bytes(r.indexes_size_after_bytes),
            r.duration_ms
        ));
    } else {
        let err = r.error.clone().unwrap_or_default();
        line.error = Some(err.clone());
        let hint = lock_hint(r.sqlstate.as_deref(), db.lock_timeout_s);
        p.note(format!(
            "table \"{table}\": REINDEX TABLE failed after {} ms — {err}{hint}",
            r.duration_ms
        ));
        let mut inc = ctx.incident(
            "reindex-failed",
            Severity::Warning,
            "database",
            table,
            format!("{stmt} failed: {err}{hint}"),
            if r.sqlstate.as_deref() == Some(SQLSTATE_LOCK_TIMEOUT) {
                BLOCKER_HINT.to_string()
            } else {
                "check the PostgreSQL log; the next run retries".to_string()
            },
        );
        inc.error = Some(err);
        p.incidents.push(inc);
    }
    audit(ctx, &line);
    p.remediations.push(action(
        ctx,
        started,
        &what,
        "database",
        table,
        "SQL",
        before,
        r.ok().then_some(after),
        r.ok(),
        r.error.clone(),
    ));
    json!({
        "table": table,
        "statement": r.statement,
        "durationMs": r.duration_ms,
        "indexesSizeBeforeBytes": r.indexes_size_before_bytes,
        "indexesSizeAfterBytes": r.indexes_size_after_bytes,
        "ok": r.ok(),
        "error": r.error,
        "sqlstate": r.sqlstate,
    })
}

// -------------------------------------------------------------------------------------------------------------------
// Redis (6.6.4)

async fn redis_task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let shown = redis_display(&db.redis_url);
    if ctx.cfg.demo {
        p.note(format!(
            "Redis: not contacted in the demo — set {ENABLE_REDIS} in a real run for the memory and keyspace report"
        ));
        p.not_configured("redis", ENABLE_REDIS);
        p.stat("redis", Value::Null);
        return p;
    }
    if past_deadline(ctx) {
        p.note("Redis: deferred — the run deadline was reached");
        p.stat("redis", Value::Null);
        return p;
    }
    let scan_bound = REDIS_SCAN_MAX.min(remaining(ctx));
    let fut = crate::maint::redis::redis_report(&db.redis_url, db.redis_scan_max_keys, scan_bound);
    // The scan is bounded; the outer bound covers the fixed reads around it.
    let result = match tokio::time::timeout(scan_bound + Duration::from_secs(60), fut).await {
        Ok(r) => r,
        Err(_) => Err(MaintError::Timeout {
            what: "Redis report".into(),
            after_ms: (scan_bound + Duration::from_secs(60)).as_millis() as u64,
        }),
    };
    p.covered.push("redis-unobservable");
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            let err = redact_str(&e.to_string());
            p.note(format!("Redis {shown}: not observable — {err}"));
            let mut inc = ctx.incident(
                "redis-unobservable",
                Severity::Info,
                "redis",
                "redis",
                format!("Redis at {shown} could not be observed: {err}"),
                format!(
                    "check that Redis runs and that REDIS_URL is right ({ENABLE_REDIS}); memory figures are \
                     unknown until then"
                ),
            );
            inc.error = Some(err.clone());
            p.incidents.push(inc);
            p.stat("redis", json!({"target": shown, "error": err}));
            return p;
        }
    };
    p.covered.push("redis-memory-high");
    p.covered.push("redis-fragmentation-high");
    let pct = r.memory_used_pct();
    let limit = if r.maxmemory > 0 {
        format!(
            "maxmemory {} ({:.1} % used)",
            human_bytes(r.maxmemory),
            pct.unwrap_or(0.0)
        )
    } else {
        "no maxmemory set (unlimited: the memory share is not checked)".to_string()
    };
    let peak = r
        .used_memory_peak
        .map(|v| format!(" (peak {})", human_bytes(v)))
        .unwrap_or_default();
    let frag = r
        .fragmentation_ratio
        .map(|f| format!(", fragmentation {f:.2}"))
        .unwrap_or_default();
    let scan = format!(
        "{} key(s) scanned{}",
        r.keys_scanned,
        r.scan_stopped
            .as_deref()
            .map(|s| format!(" (stopped: {s})"))
            .unwrap_or_default()
    );
    p.note(format!(
        "Redis {shown}: used {}{peak}, {limit}{frag}; keys {} → {}, {scan}, {} expired during the scan",
        human_bytes(r.used_memory),
        r.dbsize_before,
        r.dbsize_after
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
        r.expired_keys_delta()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
    ));
    if let Some(pct) = pct
        && pct > db.redis_memory_warn_pct
    {
        p.incidents.push(ctx.incident(
            "redis-memory-high",
            Severity::Warning,
            "redis",
            "redis",
            format!(
                "Redis {shown}: used_memory {} is {pct:.1} % of maxmemory {} (> OPS_REDIS_MEMORY_WARN_PCT {} %)",
                human_bytes(r.used_memory),
                human_bytes(r.maxmemory),
                db.redis_memory_warn_pct
            ),
            "check key TTLs and the largest key families, and the maxmemory-policy; raise maxmemory if the working \
             set grew (nothing is deleted automatically)",
        ));
    }
    if let Some(f) = r.fragmentation_ratio
        && f > FRAGMENTATION_RATIO_LIMIT
        && r.used_memory > FRAGMENTATION_MIN_USED_BYTES
    {
        p.incidents.push(ctx.incident(
            "redis-fragmentation-high",
            Severity::Info,
            "redis",
            "redis",
            format!(
                "Redis {shown}: mem_fragmentation_ratio {f:.2} with used_memory {} (> {FRAGMENTATION_RATIO_LIMIT} \
                 and > 64 MiB)",
                human_bytes(r.used_memory)
            ),
            "consider `activedefrag yes` (jemalloc builds) or a restart in a quiet period",
        ));
    }
    let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("target".into(), Value::String(shown));
        m.insert("memoryUsedPct".into(), json!(pct));
        m.insert("expiredKeysDelta".into(), json!(r.expired_keys_delta()));
    }
    p.stat("redis", v);
    p
}

// -------------------------------------------------------------------------------------------------------------------
// Log retention (6.6.5, 4.8)

/// The path of `file` relative to the log dir (4.8), else relative to `dir`, else as given.
fn rel_path(ctx: &AgentContext, file: &Path, dir: &Path) -> String {
    file.strip_prefix(&ctx.cfg.log_dir)
        .or_else(|_| file.strip_prefix(dir))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.display().to_string())
}

async fn rotation_task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let dir = db.pm2_log_dir.clone();
    let shown_dir = redact_str(&dir.display().to_string());
    if past_deadline(ctx) {
        p.note("logs: rotation deferred — the run deadline was reached");
        p.stat("rotation", Value::Null);
        return p;
    }
    let params = RotationParams {
        rotate_days: db.log_rotate_days,
        tail_bytes: db.log_tail_bytes,
        max_bytes: db.log_max_bytes,
        audit_max_bytes: db.audit_max_bytes,
    };
    let audit_file = ctx.cfg.audit_file.clone();
    let now = ctx.now();
    let dry = ctx.dry_run;
    let started = Instant::now();
    let d = dir.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let plan = logs::plan_rotation(&d, Some(&audit_file), &params, now);
        let report = (!dry).then(|| logs::rotate_logs(&d, Some(&audit_file), &params, now));
        (plan, report)
    })
    .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let ((plans, examined, plan_errors), report) = match joined {
        Ok(x) => x,
        Err(e) => {
            let err = format!("rotation task failed: {e}");
            p.covered.push("log-retention-failed");
            p.incidents
                .push(retention_incident(ctx, &shown_dir, &[err]));
            p.stat("rotation", Value::Null);
            return p;
        }
    };
    p.covered.push("log-retention-failed");
    let errors: Vec<String> = match &report {
        Some(r) => r.errors.clone(),
        None => plan_errors.clone(),
    };
    if dry {
        for plan in &plans {
            let rel = rel_path(ctx, &plan.path, &dir);
            let mut line = MutationLine::new(
                &ctx.run_id,
                AGENT.as_str(),
                &format!("Archive and trim log {rel}"),
                "FILE",
                "logs",
                &rel,
                now,
                json!({"sizeBytes": plan.size_bytes}),
                true,
            );
            line.path = Some(rel.clone());
            audit(ctx, &line);
            p.note(format!(
                "logs: would archive {rel} ({}, {}) to archive/ and keep its last {} (dry run)",
                human_bytes(plan.size_bytes),
                serde_json::to_value(plan.reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                if plan.audit {
                    "0 B — the audit log is moved aside, never rewritten".to_string()
                } else {
                    human_bytes(params.tail_bytes.min(plan.size_bytes))
                }
            ));
        }
        if plans.is_empty() {
            p.note(format!(
                "logs: {examined} log file(s) in {shown_dir}, none due for rotation (dry run)"
            ));
        }
        p.stat(
            "rotation",
            json!({"dir": shown_dir, "dryRun": true, "filesExamined": examined, "planned": plans, "errors": errors}),
        );
    } else if let Some(r) = &report {
        for f in &r.rotated {
            let plan = plans.iter().find(|pl| pl.file == f.file);
            let full = plan
                .map(|pl| pl.path.clone())
                .unwrap_or_else(|| dir.join(&f.file));
            let rel = rel_path(ctx, &full, &dir);
            let what = format!("Archive and trim log {rel}");
            let before = json!({"sizeBytes": f.bytes_archived});
            let after = json!({
                "archive": f.archive, "archiveBytes": f.archive_bytes, "keptBytes": f.kept_bytes,
            });
            let mut line = MutationLine::new(
                &ctx.run_id,
                AGENT.as_str(),
                &what,
                "FILE",
                "logs",
                &rel,
                now,
                before.clone(),
                false,
            );
            line.path = Some(rel.clone());
            line.after = Some(after.clone());
            line.duration_ms = Some(duration_ms);
            audit(ctx, &line);
            p.remediations.push(action(
                ctx,
                now,
                &what,
                "logs",
                &rel,
                "FILE",
                before,
                Some(after),
                true,
                None,
            ));
            p.note(format!(
                "logs: archived {rel} ({}) to {} ({}), kept the last {}",
                human_bytes(f.bytes_archived),
                f.archive,
                human_bytes(f.archive_bytes),
                human_bytes(f.kept_bytes)
            ));
        }
        // Planned rotations that failed are audited as failed mutations.
        for plan in &plans {
            if r.rotated.iter().any(|f| f.file == plan.file)
                || r.skipped_changed.contains(&plan.file)
            {
                continue;
            }
            let prefix = format!("{}: ", plan.file);
            if let Some(err) = r.errors.iter().find(|e| e.starts_with(&prefix)) {
                let rel = rel_path(ctx, &plan.path, &dir);
                let mut line = MutationLine::new(
                    &ctx.run_id,
                    AGENT.as_str(),
                    &format!("Archive and trim log {rel}"),
                    "FILE",
                    "logs",
                    &rel,
                    now,
                    json!({"sizeBytes": plan.size_bytes}),
                    false,
                );
                line.path = Some(rel.clone());
                line.success = false;
                line.error = Some(err.clone());
                line.duration_ms = Some(duration_ms);
                audit(ctx, &line);
                p.remediations.push(action(
                    ctx,
                    now,
                    &format!("Archive and trim log {rel}"),
                    "logs",
                    &rel,
                    "FILE",
                    json!({"sizeBytes": plan.size_bytes}),
                    None,
                    false,
                    Some(err.clone()),
                ));
            }
        }
        for s in &r.skipped_changed {
            p.note(format!(
                "logs: {s} changed while it was archived — left untouched (its archive is kept); the next run retries"
            ));
        }
        if r.rotated.is_empty() && errors.is_empty() {
            if r.dir_exists {
                p.note(format!(
                    "logs: {} log file(s) in {shown_dir}, none due for rotation",
                    r.files_examined
                ));
            } else {
                p.note(format!(
                    "logs: {shown_dir} does not exist — nothing to rotate"
                ));
            }
        }
        p.stat(
            "rotation",
            json!({
                "dir": shown_dir,
                "dirExists": r.dir_exists,
                "filesExamined": r.files_examined,
                "rotated": r.rotated,
                "skippedChanged": r.skipped_changed,
                "errors": r.errors,
                "durationMs": duration_ms,
            }),
        );
    }
    if !errors.is_empty() {
        p.note(format!(
            "logs: rotation in {shown_dir} had {} error(s): {}",
            errors.len(),
            errors.join("; ")
        ));
        p.incidents
            .push(retention_incident(ctx, &shown_dir, &errors));
    }
    p
}

fn retention_incident(ctx: &AgentContext, dir: &str, errors: &[String]) -> Incident {
    let mut shown: Vec<String> = errors.iter().take(3).map(|e| redact_str(e)).collect();
    if errors.len() > 3 {
        shown.push(format!("and {} more", errors.len() - 3));
    }
    let mut inc = ctx.incident(
        "log-retention-failed",
        Severity::Warning,
        "logs",
        "logs-dir",
        format!(
            "log rotation in {dir} had {} error(s): {}",
            errors.len(),
            shown.join("; ")
        ),
        format!(
            "check permissions and free space of {dir} and its archive/ directory; nothing was emptied or deleted \
             and the affected logs keep growing until rotation succeeds"
        ),
    );
    inc.error = errors.first().map(|e| redact_str(e));
    inc
}

// -------------------------------------------------------------------------------------------------------------------
// Bucket usage (6.6.6)

async fn s3_task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let Some(settings) = S3Settings::for_usage(db) else {
        p.note(format!("bucket usage: not configured — set {ENABLE_S3}"));
        p.not_configured("s3", ENABLE_S3);
        p.stat("buckets", Value::Null);
        return p;
    };
    let host = settings.endpoint_host();
    if ctx.cfg.demo {
        p.note(format!(
            "bucket usage: S3 endpoint {host} configured but not contacted in the demo"
        ));
        p.stat("buckets", Value::Null);
        return p;
    }
    if past_deadline(ctx) {
        p.note("bucket usage: deferred — the run deadline was reached");
        p.stat("buckets", Value::Null);
        return p;
    }
    p.covered.push("s3-unobservable");
    let buckets = match &db.s3_buckets {
        Some(b) => b.clone(),
        None => {
            let listed =
                match tokio::time::timeout(remaining(ctx), s3::list_buckets(&settings)).await {
                    Ok(r) => r,
                    Err(_) => Err(MaintError::Timeout {
                        what: "ListBuckets".into(),
                        after_ms: remaining(ctx).as_millis() as u64,
                    }),
                };
            match listed {
                Ok(b) => b,
                Err(e) => {
                    let err = redact_str(&e.to_string());
                    p.note(format!("bucket usage: S3 endpoint {host} — {err}"));
                    p.incidents
                        .push(s3_incident(ctx, &host, std::slice::from_ref(&err)));
                    p.stat("buckets", json!({"endpoint": host, "error": err}));
                    return p;
                }
            }
        }
    };
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for b in &buckets {
        if past_deadline(ctx) {
            p.unexamined.push(id_of("bucket-size-high", b));
            p.note(format!(
                "bucket \"{b}\": deferred — the run deadline was reached"
            ));
            continue;
        }
        let limits = UsageLimits {
            max_duration: UsageLimits::default().max_duration.min(remaining(ctx)),
            ..UsageLimits::default()
        };
        match s3::bucket_usage(&settings, b, limits).await {
            Ok(u) => {
                let top: Vec<String> = u
                    .top_prefixes
                    .iter()
                    .map(|t| format!("{} {}", t.prefix, human_bytes(t.bytes)))
                    .collect();
                p.note(format!(
                    "bucket \"{b}\": {} object(s), {}{}{}",
                    u.objects,
                    human_bytes(u.bytes),
                    if u.partial {
                        " (partial: listing bound reached)"
                    } else {
                        ""
                    },
                    if top.is_empty() {
                        String::new()
                    } else {
                        format!("; largest prefixes {}", top.join(", "))
                    }
                ));
                if let Some(warn) = db.s3_warn_bytes {
                    if u.bytes > warn {
                        p.incidents.push(ctx.incident(
                            "bucket-size-high",
                            Severity::Warning,
                            "storage",
                            b,
                            format!(
                                "bucket \"{b}\" holds {} object(s), {} ({} bytes){} > OPS_S3_WARN_BYTES {} ({warn} \
                                 bytes); largest prefixes: {}",
                                u.objects,
                                human_bytes(u.bytes),
                                u.bytes,
                                if u.partial { ", at least" } else { "" },
                                human_bytes(warn),
                                if top.is_empty() { "none".to_string() } else { top.join(", ") }
                            ),
                            "review the largest prefixes; archive unused content through Vizora (content-lifecycle) \
                             or add a bucket lifecycle rule; raise OPS_S3_WARN_BYTES if the growth is expected",
                        ));
                    } else if u.partial {
                        // A partial sum below the limit proves nothing (6.6.6).
                        p.unexamined.push(id_of("bucket-size-high", b));
                    }
                }
                rows.push(serde_json::to_value(&u).unwrap_or(Value::Null));
            }
            Err(e) => {
                let err = redact_str(&e.to_string());
                p.note(format!("bucket \"{b}\": not observable — {err}"));
                p.unexamined.push(id_of("bucket-size-high", b));
                rows.push(json!({"bucket": b, "error": err}));
                failures.push(err);
            }
        }
    }
    p.covered.push("bucket-size-high");
    if !failures.is_empty() {
        p.incidents.push(s3_incident(ctx, &host, &failures));
    }
    p.stat(
        "buckets",
        json!({"endpoint": host, "warnBytes": db.s3_warn_bytes, "items": rows}),
    );
    p
}

fn s3_incident(ctx: &AgentContext, host: &str, errors: &[String]) -> Incident {
    let mut inc = ctx.incident(
        "s3-unobservable",
        Severity::Info,
        "storage",
        host,
        format!(
            "S3 endpoint {host} configured but listing failed: {}",
            errors.join("; ")
        ),
        "check OPS_S3_ENDPOINT (or MINIO_ENDPOINT), the access keys and OPS_S3_BUCKETS; bucket sizes are unknown \
         until then",
    );
    inc.error = errors.first().cloned();
    inc
}

// -------------------------------------------------------------------------------------------------------------------
// Backup verification (6.6.7)

async fn backup_task(ctx: &AgentContext) -> Part {
    let mut p = Part::default();
    let db = &ctx.cfg.db;
    let priors = ctx.priors();
    p.covered.push("backup-not-configured");
    // Every location type is judged per configured location; any other location's incident is stale.
    for t in BACKUP_LOCATION_TYPES {
        p.covered.push(t);
    }
    let mut configured_ids: HashSet<String> = HashSet::new();

    if db.backup_locations.is_empty() {
        p.note(format!(
            "backups: no backup location configured — nothing shows that a backup exists; set {ENABLE_BACKUPS}"
        ));
        p.not_configured("backups", ENABLE_BACKUPS);
        p.incidents.push(ctx.incident(
            "backup-not-configured",
            Severity::Info,
            "backup",
            "backup",
            "no backup location is configured (OPS_BACKUP_LOCATIONS, BACKUP_DIR and BACKUP_S3_BUCKET are unset); \
             no backup is verified and none is known to exist",
            format!("set {ENABLE_BACKUPS} so db-maintainer verifies the newest backup every day"),
        ));
        p.stat("backups", Value::Array(vec![]));
    } else if ctx.cfg.demo {
        p.note("backups: locations configured but not checked in the demo (no bucket or directory is contacted)");
        // Nothing judged: keep every prior backup incident as it is.
        for i in priors.values() {
            if BACKUP_LOCATION_TYPES.contains(&i.kind.as_str()) {
                p.unexamined.push(i.id.clone());
            }
        }
        p.stat("backups", Value::Array(vec![]));
        return p;
    } else {
        let s3 = S3Settings::for_backups(db);
        let mut rows = Vec::new();
        for raw in &db.backup_locations {
            let (row, target_id) = check_location(ctx, raw, &s3, &mut p).await;
            configured_ids.insert(target_id);
            rows.extend(row);
        }
        p.stat("backups", Value::Array(rows));
    }

    // Incidents of locations that are no longer configured close with a suffix that proves nothing (9 item 43).
    for i in priors.values() {
        if i.is_active()
            && BACKUP_LOCATION_TYPES.contains(&i.kind.as_str())
            && !configured_ids.contains(&i.target_id)
        {
            p.suffix
                .push((i.id.clone(), STALE_LOCATION_SUFFIX.to_string()));
        }
    }
    p
}

/// Checks one configured location; returns its stats row (`None` when deferred past the deadline: its incidents
/// are then not examined) and its incident target id.
async fn check_location(
    ctx: &AgentContext,
    raw: &str,
    s3: &S3Settings,
    p: &mut Part,
) -> (Option<Value>, String) {
    let db = &ctx.cfg.db;
    let loc = match backup::parse_location(raw) {
        Ok(l) => l,
        Err(msg) => {
            let target = redact_str(raw.trim());
            p.note(format!("backup {target}: unverifiable — {msg}"));
            let mut inc = ctx.incident(
                "backup-unverifiable",
                Severity::Critical,
                "backup",
                &target,
                format!("{msg}; a malformed location is a failure, not \"unset\": no backup was verified"),
                "fix OPS_BACKUP_LOCATIONS (comma list of s3://bucket[/prefix] or absolute directories) or \
                 BACKUP_DIR / BACKUP_S3_BUCKET",
            );
            inc.error = Some(msg.clone());
            p.incidents.push(inc);
            return (
                Some(json!({"location": target, "verdict": "unverifiable", "error": msg})),
                target,
            );
        }
    };
    let target = loc.to_string();
    let kind = match &loc {
        backup::BackupLocation::S3 { .. } => "s3",
        backup::BackupLocation::Dir(_) => "dir",
    };
    let deferred = |p: &mut Part| {
        p.note(format!(
            "backup {target}: deferred — the run deadline was reached"
        ));
        for t in BACKUP_LOCATION_TYPES {
            p.unexamined.push(id_of(t, &target));
        }
    };
    if past_deadline(ctx) {
        deferred(p);
        return (None, target);
    }
    let Ok(result) = tokio::time::timeout(
        remaining(ctx),
        backup::newest_backup(&loc, db.backup_pattern.as_deref(), s3),
    )
    .await
    else {
        deferred(p);
        return (None, target);
    };
    let scan = match result {
        Ok(s) => s,
        Err(e) => {
            let err = redact_str(&e.to_string());
            p.note(format!("backup {target}: unverifiable — {err}"));
            let mut inc = ctx.incident(
                "backup-unverifiable",
                Severity::Critical,
                "backup",
                &target,
                format!("cannot list backups at {target}: {err}; no backup was verified"),
                if kind == "s3" {
                    "check the bucket and prefix, OPS_BACKUP_S3_ENDPOINT and the AWS_* credentials"
                } else {
                    "check that the directory exists and is readable by vizora-ops"
                },
            );
            inc.error = Some(err.clone());
            p.incidents.push(inc);
            return (
                Some(
                    json!({"location": target, "kind": kind, "verdict": "unverifiable", "error": err}),
                ),
                target,
            );
        }
    };
    let max_h = db.backup_max_age_hours;
    let verdict = backup::judge(scan.newest.as_ref(), ctx.started, max_h);
    let pattern = db
        .backup_pattern
        .as_deref()
        .map(|g| format!(" matching OPS_BACKUP_PATTERN {g:?}"))
        .unwrap_or_default();
    let newest_desc = scan.newest.as_ref().map(|b| {
        format!(
            "{} ({}, modified {})",
            redact_str(&b.path_or_key),
            human_bytes(b.size),
            ts(b.modified)
        )
    });
    let mut row = json!({
        "location": target,
        "kind": kind,
        "candidates": scan.candidates,
        "partial": scan.partial,
        "newest": scan.newest,
        "maxAgeHours": max_h,
    });
    let inconclusive = scan.partial && !matches!(verdict, BackupVerdict::Fresh { .. });
    let (verdict_name, age) = match verdict {
        BackupVerdict::Fresh { age_h } => ("fresh", Some(age_h)),
        BackupVerdict::Stale { age_h } => ("stale", Some(age_h)),
        BackupVerdict::Missing => ("missing", None),
        BackupVerdict::Empty => ("empty", None),
    };
    if let Value::Object(m) = &mut row {
        m.insert(
            "verdict".into(),
            Value::String(
                if inconclusive {
                    "unverifiable"
                } else {
                    verdict_name
                }
                .into(),
            ),
        );
        m.insert("ageHours".into(), json!(age));
    }
    if inconclusive {
        let msg = format!(
            "the listing of {target} stopped at its bound (1 000 000 objects or 10 min) before a fresh backup was \
             found; the newest backup is unknown"
        );
        p.note(format!("backup {target}: unverifiable — {msg}"));
        p.incidents.push(ctx.incident(
            "backup-unverifiable",
            Severity::Critical,
            "backup",
            &target,
            msg,
            "narrow the location with a prefix (s3://bucket/prefix) or OPS_BACKUP_PATTERN",
        ));
        return (Some(row), target);
    }
    match verdict {
        BackupVerdict::Fresh { age_h } => {
            p.note(format!(
                "backup {target}: newest {}, {age_h:.1} h old (limit {max_h} h)",
                newest_desc.unwrap_or_default()
            ));
        }
        BackupVerdict::Stale { age_h } => {
            let d = newest_desc.unwrap_or_default();
            p.note(format!(
                "backup {target}: STALE — newest {d} is {age_h:.1} h old (limit {max_h} h)"
            ));
            p.incidents.push(ctx.incident(
                "backup-stale",
                Severity::Critical,
                "backup",
                &target,
                format!(
                    "newest backup at {target} is {age_h:.1} h old (> OPS_BACKUP_MAX_AGE_HOURS {max_h} h): {d}"
                ),
                format!(
                    "check the backup job (schedule, logs, disk space, credentials): it has not produced a backup \
                     in the last {max_h} h; run one now and verify it is non-empty"
                ),
            ));
        }
        BackupVerdict::Missing => {
            p.note(format!(
                "backup {target}: MISSING — no backup found{pattern} ({} candidate(s))",
                scan.candidates
            ));
            p.incidents.push(ctx.incident(
                "backup-missing",
                Severity::Critical,
                "backup",
                &target,
                format!("no backup found at {target}{pattern}"),
                "check the backup job and that it writes to this location; run a backup now and verify it is \
                 non-empty",
            ));
        }
        BackupVerdict::Empty => {
            let d = newest_desc.unwrap_or_default();
            p.note(format!(
                "backup {target}: MISSING — the newest backup {d} is empty (0 bytes)"
            ));
            p.incidents.push(ctx.incident(
                "backup-missing",
                Severity::Critical,
                "backup",
                &target,
                format!(
                    "the newest backup at {target} is empty (0 bytes): {d}; an empty file is not a backup"
                ),
                "check the backup job's log (a failed dump often leaves a 0-byte file); run a backup now and verify \
                 it is non-empty",
            ));
        }
    }
    (Some(row), target)
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

    #[test]
    fn catalogue_is_the_design_table() {
        assert_eq!(CATALOGUE.len(), 17);
        for t in BACKUP_LOCATION_TYPES {
            assert!(CATALOGUE.contains(&t));
        }
        assert!(!CATALOGUE.contains(&"backup-failed"), "retired (3.7)");
        assert!(
            !CATALOGUE.contains(&"alert-fire-prune-failed"),
            "retired (3.7)"
        );
    }

    #[test]
    fn displays_never_show_passwords() {
        let t =
            postgres::prepare_url("postgres://ops:hunter2pw@db.internal:6543/vizora?schema=tenant")
                .unwrap();
        let s = pg_display(&t);
        assert_eq!(s, "ops@db.internal:6543/vizora");
        assert_eq!(
            redis_display("redis://:sekret99@cache:6390/0"),
            "cache:6390"
        );
        assert_eq!(redis_display("redis://localhost"), "localhost:6379");
    }
}
