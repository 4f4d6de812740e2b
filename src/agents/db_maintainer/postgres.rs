//! PostgreSQL connection (agents.md 6.6.1): `db-not-configured`, the connection failure as `vacuum-all-failed`, the
//! connection figures in the stats; then [`vacuum`](super::vacuum) and [`reindex`](super::reindex) over the
//! [`PgPort`](crate::maint::postgres::PgPort) of the open connection. Also the SQL audit line and the lock-timeout wording both rules share.

use super::report::Part;
use super::{AGENT, ENABLE_POSTGRES};
use crate::agents::AgentContext;
use crate::effects::Gated;
use crate::maint::MaintError;
use crate::maint::postgres::{self, PgTarget, SQLSTATE_LOCK_TIMEOUT};
use crate::model::Severity;
use crate::redact::redact_str;
use crate::state::audit::MutationLine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// `user@host:port/db` of a PostgreSQL target: never the password, never the verbatim URL (which is a registered
/// secret and would print as `***`).
pub(super) fn pg_display(t: &PgTarget) -> String {
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

/// The PostgreSQL task: connect, then VACUUM and REINDEX (6.6.1–6.6.3).
pub(super) async fn task(ctx: &AgentContext, target: Option<&PgTarget>) -> Part {
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
    super::vacuum::vacuum(ctx, &conn, &target.schema, &mut p).await;
    super::reindex::reindex(ctx, &conn, &target.schema, &mut p).await;
    p
}

fn connect_error_text(e: &MaintError) -> String {
    match e {
        MaintError::Connect { message, .. } => message.clone(),
        MaintError::Timeout { after_ms, .. } => format!("no connection within {after_ms} ms"),
        other => other.to_string(),
    }
}

/// The explanation appended to a statement's error when it gave up on `lock_timeout` (6.6.2).
pub(super) fn lock_hint(sqlstate: Option<&str>, lock_timeout_s: u64) -> String {
    if sqlstate == Some(SQLSTATE_LOCK_TIMEOUT) {
        format!(
            " (another session held a conflicting lock longer than OPS_DB_LOCK_TIMEOUT_S={lock_timeout_s} s; \
             the statement gave up instead of blocking writes)"
        )
    } else {
        String::new()
    }
}

/// Remediation of a statement that gave up on `lock_timeout` (6.6.2).
pub(super) const BLOCKER_HINT: &str = "find the blocking session (SELECT pid, state, xact_start, query FROM pg_stat_activity \
     WHERE cardinality(pg_blocking_pids(pid)) > 0 OR state = 'idle in transaction') and end the long transaction; \
     the next run retries";

/// What the audit line of a maintenance statement needs from its result (4.8).
pub(super) trait StatementResult {
    /// The statement as run.
    fn statement(&self) -> &str;
    /// Whether it succeeded.
    fn ok(&self) -> bool;
    /// Its duration, ms.
    fn duration_ms(&self) -> u64;
    /// Its error, if it failed.
    fn error(&self) -> Option<String>;
    /// The audit line's `after` figures (on success).
    fn after(&self) -> Value;
}

impl StatementResult for postgres::TableVacuumReport {
    fn statement(&self) -> &str {
        &self.statement
    }
    fn ok(&self) -> bool {
        postgres::TableVacuumReport::ok(self)
    }
    fn duration_ms(&self) -> u64 {
        self.duration_ms
    }
    fn error(&self) -> Option<String> {
        self.error.clone()
    }
    fn after(&self) -> Value {
        json!({"deadTuples": self.dead_tuples_after, "sizeBytes": self.size_after_bytes})
    }
}

impl StatementResult for postgres::IndexReindexReport {
    fn statement(&self) -> &str {
        &self.statement
    }
    fn ok(&self) -> bool {
        postgres::IndexReindexReport::ok(self)
    }
    fn duration_ms(&self) -> u64 {
        self.duration_ms
    }
    fn error(&self) -> Option<String> {
        self.error.clone()
    }
    fn after(&self) -> Value {
        json!({
            "sizeBytes": self.size_after_bytes,
            "avgLeafDensity": self.avg_leaf_density_after,
            "leafFragmentation": self.leaf_fragmentation_after,
        })
    }
}

impl StatementResult for postgres::TableReindexReport {
    fn statement(&self) -> &str {
        &self.statement
    }
    fn ok(&self) -> bool {
        postgres::TableReindexReport::ok(self)
    }
    fn duration_ms(&self) -> u64 {
        self.duration_ms
    }
    fn error(&self) -> Option<String> {
        self.error.clone()
    }
    fn after(&self) -> Value {
        json!({"indexesSizeBytes": self.indexes_size_after_bytes})
    }
}

/// One VACUUM or REINDEX statement through the effects gate (issue 10; 6.6.2, 6.6.3, 1.5): its audit mutation line
/// (4.8: `method: SQL`, `before: null`, the statement) is written by the gate, with `dryRun: true` and nothing run in
/// a dry run, and completed from the result otherwise.
pub(super) async fn run_statement<R: StatementResult, F>(
    ctx: &AgentContext,
    what: &str,
    target_id: &str,
    statement: &str,
    started: DateTime<Utc>,
    op: impl FnOnce() -> F,
) -> Gated<R>
where
    F: std::future::Future<Output = R>,
{
    let mut line = MutationLine::new(
        &ctx.run_id,
        AGENT.as_str(),
        what,
        "SQL",
        "database",
        target_id,
        started,
        Value::Null,
        false,
    );
    line.statement = Some(statement.to_string());
    ctx.effects()
        .mutate(line, op, |r, line| {
            line.statement = Some(r.statement().to_string());
            line.success = r.ok();
            line.duration_ms = Some(r.duration_ms());
            if r.ok() {
                line.after = Some(r.after());
            } else {
                line.error = r.error();
            }
            true
        })
        .await
        .map_applied(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_never_show_passwords() {
        let t =
            postgres::prepare_url("postgres://ops:hunter2pw@db.internal:6543/vizora?schema=tenant")
                .unwrap();
        let s = pg_display(&t);
        assert_eq!(s, "ops@db.internal:6543/vizora");
    }
}
