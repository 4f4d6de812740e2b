//! VACUUM (ANALYZE) of `OPS_VACUUM_TABLES` (agents.md 6.6.2) over [`PgPort`]: `vacuum-table-missing`,
//! `vacuum-failed`, `vacuum-all-failed`.

use super::postgres::{BLOCKER_HINT, lock_hint, run_statement};
use super::report::{Part, action, id_of, opt_bytes, opt_num, past_deadline};
use crate::agents::AgentContext;
use crate::effects::Gated;
use crate::maint::postgres::{PgPort, SQLSTATE_LOCK_TIMEOUT};
use crate::maint::quote_ident;
use crate::model::Severity;
use crate::redact::redact_str;
use serde_json::{Value, json};

/// VACUUM of `OPS_VACUUM_TABLES` (6.6.2): existence first, then one statement per table.
pub(super) async fn vacuum(ctx: &AgentContext, conn: &dyn PgPort, schema: &str, p: &mut Part) {
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
    let mut failures: Vec<Failure> = Vec::new();
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
        match vacuum_one(ctx, conn, schema, t, p).await {
            Step::DryRun(row) => rows.push(row),
            Step::Deferred => {
                deferred.push(t.clone());
                p.unexamined.push(id_of("vacuum-failed", t));
                p.note(format!(
                    "\"{t}\": VACUUM deferred — the run deadline was reached"
                ));
            }
            Step::Ran(row, failure) => {
                attempted += 1;
                failures.extend(failure);
                rows.push(row);
            }
        }
    }
    for t in &missing {
        rows.push(json!({"table": t, "missing": true}));
    }
    p.stat("tables", Value::Array(rows));
    if ctx.effects().is_dry_run() || (!deferred.is_empty() && attempted == 0) {
        // Nothing attempted: no verdict on failures (a dry run attempts nothing, 1.5).
        return;
    }
    judge(ctx, schema, attempted, &failures, p);
}

/// One table's failed statement: (table, error, SQLSTATE).
type Failure = (String, String, Option<String>);

/// What one table came to: its stats row, and for a statement that ran its failure if any.
enum Step {
    DryRun(Value),
    Ran(Value, Option<Failure>),
    /// The gate found the run deadline passed before the statement could start.
    Deferred,
}

/// One table (6.6.2): in a dry run the figures and the would-be statement's audit line; otherwise the statement,
/// its audit line and its remediation record.
async fn vacuum_one(
    ctx: &AgentContext,
    conn: &dyn PgPort,
    schema: &str,
    t: &str,
    p: &mut Part,
) -> Step {
    let db = &ctx.cfg.db;
    let stmt = format!(
        "VACUUM (ANALYZE) {}.{}",
        quote_ident(schema),
        quote_ident(t)
    );
    let what = format!("VACUUM (ANALYZE) \"{t}\"");
    let started = ctx.now();
    let op = || conn.vacuum_table(schema, t, db.lock_timeout_s);
    let gated = run_statement(ctx, &what, t, &stmt, started, op).await;
    let r = match gated {
        Gated::Applied(r) => r,
        Gated::Deferred => return Step::Deferred,
        Gated::Simulated => {
            let (dead, size) = conn.table_figures(schema, t, db.lock_timeout_s).await;
            p.unexamined.push(id_of("vacuum-failed", t));
            p.note(format!(
                "\"{t}\": would run {stmt} (dry run) — dead tuples {}, size {}",
                opt_num(dead),
                opt_bytes(size)
            ));
            return Step::DryRun(json!({
                "table": t, "dryRun": true, "statement": stmt,
                "deadTuplesBefore": dead, "sizeBeforeBytes": size,
            }));
        }
    };
    let mut failure = None;
    let after = json!({"deadTuples": r.dead_tuples_after, "sizeBytes": r.size_after_bytes});
    let before = json!({"deadTuples": r.dead_tuples_before, "sizeBytes": r.size_before_bytes});
    if r.ok() {
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
        p.note(format!(
            "\"{t}\": VACUUM failed after {} ms — {err}{}",
            r.duration_ms,
            lock_hint(r.sqlstate.as_deref(), db.lock_timeout_s)
        ));
        failure = Some((t.to_string(), err, r.sqlstate.clone()));
    }
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
    let row = json!({
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
    });
    Step::Ran(row, failure)
}

/// The verdict on the statements that ran (6.6.2): all failed → one critical `vacuum-all-failed` (the per-table
/// incidents are then not judged); otherwise one `vacuum-failed` warning per failed table.
fn judge(ctx: &AgentContext, schema: &str, attempted: usize, failures: &[Failure], p: &mut Part) {
    let db = &ctx.cfg.db;
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
        for (t, _, _) in failures {
            p.unexamined.push(id_of("vacuum-failed", t));
        }
    } else {
        for (t, e, s) in failures {
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

#[cfg(test)]
mod tests {
    use super::super::fake::{FakePg, Harness, incident};
    use super::*;
    use crate::model::IncidentStatus;
    use std::time::Duration;

    const TABLES: (&str, &str) = ("OPS_VACUUM_TABLES", "Content,devices,content_impressions");

    async fn run(h: &Harness, pg: &FakePg) -> Part {
        let mut p = Part::default();
        vacuum(&h.ctx, pg, "public", &mut p).await;
        p
    }

    #[tokio::test]
    async fn vacuum_checks_existence_first_then_one_statement_per_present_table_in_order() {
        let h = Harness::new(
            &[TABLES, ("OPS_DB_LOCK_TIMEOUT_S", "7")],
            false,
            Duration::from_secs(60),
        );
        let pg = FakePg::new().missing("devices");
        let p = run(&h, &pg).await;
        assert_eq!(
            pg.calls(),
            [
                "existing_tables Content,devices,content_impressions",
                "VACUUM Content lock_timeout=7",
                "VACUUM content_impressions lock_timeout=7",
            ]
        );
        let missing =
            incident(&p, "vacuum-table-missing", "devices").expect("missing table raised");
        assert_eq!(missing.severity, Severity::Critical);
        assert!(incident(&p, "vacuum-failed", "Content").is_none());
        assert!(p.covered.contains(&"vacuum-failed") && p.covered.contains(&"vacuum-all-failed"));
        assert_eq!(p.remediations.len(), 2);
        assert!(
            p.remediations
                .iter()
                .all(|r| r.success && r.method == "SQL")
        );
        // One audit mutation line per statement, carrying it (4.8).
        let audit = h.audit();
        assert_eq!(audit.len(), 2);
        assert_eq!(
            audit[0]["statement"],
            "VACUUM (ANALYZE) \"public\".\"Content\""
        );
        assert_eq!(audit[0]["dryRun"], false);
    }

    #[tokio::test]
    async fn dry_run_vacuum_issues_no_statement_and_audits_each_would_be_statement() {
        let h = Harness::new(&[TABLES], true, Duration::from_secs(60));
        let pg = FakePg::new();
        let p = run(&h, &pg).await;
        assert!(pg.statements().is_empty(), "{:?}", pg.calls());
        assert_eq!(
            pg.calls()
                .iter()
                .filter(|c| c.starts_with("table_figures"))
                .count(),
            3
        );
        assert!(p.remediations.is_empty());
        assert!(
            !p.covered.contains(&"vacuum-failed"),
            "no verdict without an attempt"
        );
        assert_eq!(p.unexamined.len(), 3);
        let audit = h.audit();
        assert_eq!(audit.len(), 3);
        assert!(audit.iter().all(|l| l["dryRun"] == true));
    }

    #[tokio::test]
    async fn one_lock_timeout_is_a_warning_on_that_table_with_the_blocker_hint() {
        let h = Harness::new(&[TABLES], false, Duration::from_secs(60));
        let pg = FakePg::new().failing("devices", SQLSTATE_LOCK_TIMEOUT);
        let p = run(&h, &pg).await;
        assert_eq!(pg.statements().len(), 3, "a failure never stops the others");
        let inc = incident(&p, "vacuum-failed", "devices").expect("raised");
        assert_eq!(inc.severity, Severity::Warning);
        assert_eq!(inc.status, IncidentStatus::Open);
        assert!(
            inc.message.contains("OPS_DB_LOCK_TIMEOUT_S=30"),
            "{}",
            inc.message
        );
        assert_eq!(inc.remediation, BLOCKER_HINT);
        assert!(incident(&p, "vacuum-all-failed", "all-tables").is_none());
        let failed: Vec<_> = h
            .audit()
            .into_iter()
            .filter(|l| l["success"] == false)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["targetId"], "devices");
    }

    #[tokio::test]
    async fn every_statement_failing_is_one_critical_vacuum_all_failed() {
        let h = Harness::new(
            &[("OPS_VACUUM_TABLES", "a,b")],
            false,
            Duration::from_secs(60),
        );
        let pg = FakePg::new()
            .failing("a", SQLSTATE_LOCK_TIMEOUT)
            .failing("b", "42501");
        let p = run(&h, &pg).await;
        let all = incident(&p, "vacuum-all-failed", "all-tables").expect("raised");
        assert_eq!(all.severity, Severity::Critical);
        assert!(
            all.message.starts_with("all 2 VACUUM statement(s) failed"),
            "{}",
            all.message
        );
        assert_eq!(
            all.remediation, BLOCKER_HINT,
            "a lock timeout among them points at the blocker"
        );
        assert!(incident(&p, "vacuum-failed", "a").is_none());
        // The per-table incidents are represented by the critical one: not judged.
        assert!(
            p.unexamined.contains(&id_of("vacuum-failed", "a")),
            "{:?}",
            p.unexamined
        );
    }

    #[tokio::test]
    async fn failed_existence_check_vacuums_nothing_and_covers_no_vacuum_type() {
        let h = Harness::new(&[TABLES], false, Duration::from_secs(60));
        let mut pg = FakePg::new();
        pg.existence_fails = true;
        let p = run(&h, &pg).await;
        assert!(pg.statements().is_empty());
        let inc = incident(&p, "vacuum-all-failed", "all-tables").expect("raised");
        assert!(inc.message.contains("permission denied"), "{}", inc.message);
        assert!(p.covered.is_empty(), "{:?}", p.covered);
    }

    #[tokio::test]
    async fn past_the_deadline_every_table_is_deferred_without_a_statement() {
        let h = Harness::new(&[TABLES], false, Duration::ZERO);
        let pg = FakePg::new();
        let p = run(&h, &pg).await;
        assert!(pg.statements().is_empty());
        assert_eq!(p.unexamined.len(), 3);
        assert!(!p.covered.contains(&"vacuum-failed"));
        assert_eq!(
            p.notes
                .iter()
                .filter(|n| n.contains("VACUUM deferred"))
                .count(),
            3
        );
    }
}
