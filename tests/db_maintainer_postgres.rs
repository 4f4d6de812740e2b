//! db-maintainer, whole agent through `runner::run_agent`, against the real PostgreSQL, Redis and S3 started by
//! scripts/test.sh (agents.md 6.6.1–6.6.3, 1.4, 1.5, 4.8, 9 items 37–39): per-table VACUUM report, REINDEX
//! CONCURRENTLY, a missing table, a lock held by another session, an unreachable or refusing database, dry run, and
//! the real binary's printed report. Each test works in its own throw-away database.

mod db_maintainer_harness;

use db_maintainer_harness as h;
use db_maintainer_harness::support;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vizora_ops::agents::InlineKind;

fn with_db(s: h::Setup, db: &h::TestDb) -> h::Setup {
    s.set("DATABASE_URL", &db.url).set(
        "OPS_REINDEX_INDEXES",
        "Content_status_idx,devices_status_idx",
    )
}

#[tokio::test]
async fn full_run_reports_per_table_figures_rebuilds_indexes_and_records_state() {
    let db = h::TestDb::new().await;
    db.churn("Content", 3000).await;
    db.churn("content_impressions", 1000).await;
    let s = with_db(h::Setup::with_redis(), &db).set("OPS_LOG_TAIL_BYTES", "1024");
    h::log_file(&s.logs().join("api-out.log"), 20_000);
    let cfg = s.config();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;

    assert_eq!(r.exit_code, 0, "{:?} {:?}", h::raised(&r), r.report);
    assert!(r.fatal.is_none());
    assert_eq!(r.result.issues_fixed, 0, "maintenance is never a fix");
    // The readable per-table line: dead tuples and size before → after and the time taken.
    let content = r
        .report
        .iter()
        .find(|l| l.starts_with("\"Content\": dead tuples "))
        .unwrap_or_else(|| panic!("{:#?}", r.report));
    assert!(content.contains(" → 0, size "), "{content}");
    assert!(content.ends_with(" ms"), "{content}");
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("\"content_impressions\": dead tuples ")),
        "impression data is maintained too (9 item 44): {:#?}",
        r.report
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("index \"Content_status_idx\": rebuilt concurrently")),
        "{:#?}",
        r.report
    );
    assert!(
        r.report.iter().any(|l| l.starts_with("Redis ")),
        "{:#?}",
        r.report
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("logs: archived api-out.log")),
        "{:#?}",
        r.report
    );
    assert_eq!(db.dead_tuples("Content").await, 0);

    // The same figures in the state.
    let m = h::maintenance(&cfg);
    let tables = m["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 7, "{m:#}");
    let c = tables.iter().find(|t| t["table"] == "Content").unwrap();
    assert!(c["deadTuplesBefore"].as_i64().unwrap() >= 3000, "{c}");
    assert_eq!(c["deadTuplesAfter"], 0);
    assert!(c["sizeBeforeBytes"].as_i64().unwrap() > 0);
    assert!(c["sizeAfterBytes"].as_i64().unwrap() > 0);
    assert!(c["durationMs"].is_u64());
    let idx = m["indexes"].as_array().unwrap();
    assert_eq!(idx.len(), 2, "{m:#}");
    assert!(
        idx.iter()
            .all(|i| i["ok"] == true && i["sizeAfterBytes"].as_i64().unwrap() > 0)
    );
    assert!(m["redis"]["usedMemory"].as_u64().unwrap() > 0, "{m:#}");
    assert_eq!(m["rotation"]["rotated"].as_array().unwrap().len(), 1);

    let st = h::state(&cfg);
    let res = &st["agentResults"]["db-maintainer"];
    assert_eq!(res["issuesFixed"], 0);
    for t in [
        "vacuum-failed",
        "vacuum-all-failed",
        "vacuum-table-missing",
        "reindex-failed",
        "reindex-invalid-leftover",
        "redis-memory-high",
        "log-retention-failed",
        "db-not-configured",
    ] {
        assert!(
            res["coverage"].as_array().unwrap().iter().any(|c| c == t),
            "{t} covered: {}",
            res["coverage"]
        );
    }
    // S3 is not configured: its types are not covered.
    assert!(
        !res["coverage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "bucket-size-high")
    );

    // Remediation actions: SQL per VACUUM/REINDEX, FILE per rotated log; none verified (not fixes).
    let rem = st["recentRemediations"].as_array().unwrap();
    let sql: Vec<_> = rem.iter().filter(|a| a["method"] == "SQL").collect();
    assert_eq!(sql.len(), 9, "7 VACUUM + 2 REINDEX: {rem:#?}");
    let vc = sql.iter().find(|a| a["targetId"] == "Content").unwrap();
    assert_eq!(vc["target"], "database");
    assert_eq!(vc["after"]["deadTuples"], 0);
    assert!(vc["before"]["deadTuples"].as_i64().unwrap() >= 3000);
    assert!(rem.iter().all(|a| a.get("verified").is_none()));
    let file = rem.iter().find(|a| a["method"] == "FILE").unwrap();
    assert_eq!(file["target"], "logs");
    assert_eq!(file["targetId"], "api-out.log");

    // Audit: SQL lines carry the statement and before null; the file line its path relative to the log dir.
    let lines = h::audit(&cfg);
    let vac = lines
        .iter()
        .find(|l| l["method"] == "SQL" && l["targetId"] == "Content")
        .unwrap();
    assert_eq!(vac["statement"], "VACUUM (ANALYZE) \"public\".\"Content\"");
    assert!(vac["before"].is_null());
    assert_eq!(vac["dryRun"], false);
    assert_eq!(vac["success"], true);
    assert!(vac["durationMs"].is_u64());
    let re = lines
        .iter()
        .find(|l| l["method"] == "SQL" && l["targetId"] == "devices_status_idx")
        .unwrap();
    assert_eq!(
        re["statement"],
        "REINDEX INDEX CONCURRENTLY \"public\".\"devices_status_idx\""
    );
    let fl = lines.iter().find(|l| l["method"] == "FILE").unwrap();
    assert_eq!(fl["path"], "api-out.log");
    assert_eq!(fl["dryRun"], false);
    assert!(sink.all().is_empty(), "no critical finding, no alert");
    db.drop().await;
}

#[tokio::test]
async fn missing_table_is_one_critical_incident_the_rest_still_runs_and_it_resolves_when_back() {
    let db = h::TestDb::new().await;
    db.client
        .batch_execute("DROP TABLE \"content_impressions\"")
        .await
        .unwrap();
    db.churn("Content", 500).await;
    let (cfg, _dir_cfg) = with_db(h::Setup::with_redis(), &db).build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;

    assert_eq!(r.exit_code, 1, "a critical finding: {:?}", h::raised(&r));
    assert!(r.fatal.is_none(), "a missing table is not a crash");
    let crit: Vec<_> = h::raised(&r)
        .into_iter()
        .filter(|(_, _, s)| s == "critical")
        .collect();
    assert_eq!(
        crit,
        vec![(
            "vacuum-table-missing".to_string(),
            "content_impressions".to_string(),
            "critical".to_string()
        )]
    );
    let inc = h::get(&r, "vacuum-table-missing", "content_impressions");
    assert_eq!(inc.target, "database");
    assert!(
        inc.remediation.contains("physical table names"),
        "{}",
        inc.remediation
    );
    // The six existing tables were vacuumed; Redis still reported.
    assert!(!h::has(&r, "vacuum-all-failed", "all-tables"));
    assert_eq!(
        r.report
            .iter()
            .filter(|l| l.contains("\": dead tuples "))
            .count(),
        6,
        "{:#?}",
        r.report
    );
    assert!(
        h::maintenance(&cfg)["redis"]["usedMemory"]
            .as_u64()
            .is_some()
    );
    // One batched critical alert naming it, stamped in the state.
    let alerts = sink.all();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, InlineKind::Critical);
    assert!(
        alerts[0].items[0].contains("content_impressions"),
        "{alerts:?}"
    );
    let id = "db-maintainer:vacuum-table-missing:content_impressions";
    let stored = h::incident(&cfg, id).unwrap();
    assert_eq!(stored["status"], "open");
    assert!(stored["alertedAt"].is_string(), "{stored}");

    // Second run: still missing → still open, no second alert (not an open transition).
    let r2 = h::run(&cfg, false, &sink).await;
    assert_eq!(r2.exit_code, 1);
    assert_eq!(sink.all().len(), 1);

    // Table back → the sweep resolves the incident (the check ran and the condition is gone).
    db.client
        .batch_execute(
            "CREATE TABLE \"content_impressions\" (id serial PRIMARY KEY, status text, n int, pad text)",
        )
        .await
        .unwrap();
    let r3 = h::run(&cfg, false, &sink).await;
    assert_eq!(r3.exit_code, 0, "{:?}", h::raised(&r3));
    assert_eq!(h::incident(&cfg, id).unwrap()["status"], "resolved");
    assert_eq!(r3.result.issues_resolved, Some(1));
    db.drop().await;
}

#[tokio::test]
async fn a_lock_held_by_another_session_times_out_fast_and_the_other_tasks_still_run() {
    let db = h::TestDb::new().await;
    db.churn("Content", 500).await;
    let holder = h::raw_connect(&db.url).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE \"devices\" IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();
    let backups = tempfile::tempdir().unwrap();
    h::aged_file(backups.path(), "db-1.sql.gz", 100, Duration::from_secs(600));
    let (cfg, _dir_cfg) = with_db(h::Setup::with_redis(), &db)
        .set("OPS_DB_LOCK_TIMEOUT_S", "1")
        .set("OPS_BACKUP_LOCATIONS", backups.path().display().to_string())
        .build();
    let sink = Arc::new(h::RecordingSink::default());
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(60), h::run(&cfg, false, &sink))
        .await
        .expect("the run never hangs on a held lock");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(30), "took {took:?}");

    assert_eq!(r.exit_code, 1, "{:?}", h::raised(&r));
    let vf = h::get(&r, "vacuum-failed", "devices");
    assert_eq!(vf.severity.as_str(), "warning");
    assert!(vf.message.contains("lock timeout"), "{}", vf.message);
    assert!(
        vf.message.contains("OPS_DB_LOCK_TIMEOUT_S=1"),
        "{}",
        vf.message
    );
    assert!(vf.remediation.contains("pg_stat_activity"));
    let rf = h::get(&r, "reindex-failed", "devices_status_idx");
    assert!(rf.message.contains("lock timeout"), "{}", rf.message);
    // Content (not locked) was vacuumed and reindexed; every other task ran.
    assert!(!h::has(&r, "vacuum-all-failed", "all-tables"));
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("\"Content\": dead tuples "))
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("index \"Content_status_idx\": rebuilt"))
    );
    let m = h::maintenance(&cfg);
    assert!(m["redis"]["usedMemory"].as_u64().is_some());
    assert_eq!(m["backups"][0]["verdict"], "fresh");
    // The failed VACUUM is audited as a failed mutation with its statement.
    let failed = h::audit(&cfg)
        .into_iter()
        .find(|l| l["targetId"] == "devices" && l["method"] == "SQL")
        .unwrap();
    assert_eq!(failed["success"], false);
    assert!(failed["error"].as_str().unwrap().contains("lock timeout"));
    assert!(failed.get("after").is_none());
    // Warnings only: no critical alert.
    assert!(sink.all().is_empty());
    holder.batch_execute("ROLLBACK").await.unwrap();
    drop(holder);
    db.drop().await;
}

#[tokio::test]
async fn an_unreachable_or_refusing_database_is_vacuum_all_failed_exit_1_and_no_password_leaks() {
    let backups = tempfile::tempdir().unwrap();
    h::aged_file(backups.path(), "db.dump", 10, Duration::from_secs(60));
    let pg = support::pg_url();
    let hostport = pg
        .trim_start_matches("postgres://")
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let cases = [
        // Nothing listens on this port.
        format!(
            "postgres://ops:Pw-Refused-771@127.0.0.1:{}/vizora",
            h::closed_port()
        ),
        // The server refuses the login (unknown role; the test server trusts known roles).
        format!("postgres://no_such_role:Pw-Refused-772@{hostport}/postgres"),
    ];
    for url in cases {
        let (cfg, _dir_cfg) = h::Setup::with_redis()
            .set("DATABASE_URL", &url)
            .set("OPS_BACKUP_LOCATIONS", backups.path().display().to_string())
            .build();
        let sink = Arc::new(h::RecordingSink::default());
        let r = h::run(&cfg, false, &sink).await;
        assert_eq!(
            r.exit_code,
            1,
            "a finding, not exit 2: {:?} {:?}",
            r.fatal,
            h::raised(&r)
        );
        assert!(r.fatal.is_none());
        let inc = h::get(&r, "vacuum-all-failed", "all-tables");
        assert_eq!(inc.severity.as_str(), "critical");
        assert!(
            inc.message.contains("no VACUUM or REINDEX ran"),
            "{}",
            inc.message
        );
        // The other tasks ran.
        let m = h::maintenance(&cfg);
        assert!(m["redis"]["usedMemory"].as_u64().is_some(), "{m:#}");
        assert_eq!(m["backups"][0]["verdict"], "fresh");
        assert_eq!(sink.all().len(), 1, "critical alert");
        // The password appears nowhere.
        let files = [
            std::fs::read_to_string(&cfg.state_file).unwrap(),
            std::fs::read_to_string(&cfg.audit_file).unwrap_or_default(),
            r.report.join("\n"),
            format!("{:?}", sink.all()),
        ];
        for f in files {
            assert!(!f.contains("Pw-Refused-77"), "password leaked: {f}");
        }
    }
}

#[tokio::test]
async fn dry_run_reads_everything_and_changes_nothing() {
    let db = h::TestDb::new().await;
    db.churn("Content", 2000).await;
    let s = with_db(h::Setup::with_redis(), &db).set("OPS_LOG_TAIL_BYTES", "1024");
    let log = s.logs().join("web-error.log");
    let original = h::log_file(&log, 10_000);
    let cfg = s.config();
    let before = db.dead_tuples("Content").await;
    assert!(before >= 2000);
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, true, &sink).await;

    assert_eq!(r.exit_code, 0, "{:?}", h::raised(&r));
    assert!(!r.wrote_state);
    assert!(h::state(&cfg).is_null(), "a dry run writes no state");
    assert_eq!(db.dead_tuples("Content").await, before, "no VACUUM ran");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        original,
        "the log is untouched"
    );
    assert!(!s.logs().join("archive").exists(), "no archive created");
    let line = r
        .report
        .iter()
        .find(|l| l.starts_with("\"Content\": would run VACUUM (ANALYZE)"))
        .unwrap_or_else(|| panic!("{:#?}", r.report));
    assert!(line.contains(&format!("dead tuples {before}")), "{line}");
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("logs: would archive web-error.log"))
    );
    assert!(
        r.report.iter().any(|l| l.starts_with("Redis ")),
        "reads run"
    );

    let lines = h::audit(&cfg);
    assert_eq!(lines.len(), 7 + 2 + 1, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l["dryRun"] == true && l["success"] == true && l.get("after").is_none())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["statement"] == "VACUUM (ANALYZE) \"public\".\"Content\"")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["method"] == "FILE" && l["path"] == "web-error.log")
    );
    db.drop().await;
}

#[tokio::test]
async fn the_binary_prints_the_readable_report_and_exits_with_the_run_code() {
    let db = h::TestDb::new().await;
    db.churn("Content", 1000).await;
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    h::aged_file(
        backups.path(),
        "nightly/db.sql.gz",
        2048,
        Duration::from_secs(3600),
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vizora-ops"))
        .args(["run", "db-maintainer"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OPS_ROOT_DIR", dir.path())
        .env("OPS_LOG_DIR", dir.path().join("logs"))
        .env("DATABASE_URL", &db.url)
        .env("OPS_REINDEX_INDEXES", "Content_status_idx")
        .env("REDIS_URL", support::redis_url())
        .env("OPS_BACKUP_LOCATIONS", backups.path())
        .output()
        .await
        .expect("run the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("\"Content\": dead tuples "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains(" → 0, size "), "{line}");
    assert!(
        stdout.contains("index \"Content_status_idx\": rebuilt concurrently"),
        "{stdout}"
    );
    assert!(stdout.contains("backup "), "{stdout}");
    assert!(stdout.contains("h old (limit 24 h)"), "{stdout}");
    assert!(stdout.contains("db-maintainer"), "{stdout}");
    let st: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("logs/ops-state.json")).unwrap(),
    )
    .unwrap();
    let tables = &st["agentResults"]["db-maintainer"]["stats"]["maintenance"]["tables"];
    assert_eq!(
        tables
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == "Content")
            .unwrap()["deadTuplesAfter"],
        0
    );
    db.drop().await;
}

#[tokio::test]
async fn an_invalid_ccnew_leftover_is_reported_never_dropped_and_its_index_is_not_rebuilt() {
    let db = h::TestDb::new().await;
    db.churn("Content", 300).await;
    // A failed CREATE INDEX CONCURRENTLY leaves an INVALID index, as an interrupted REINDEX CONCURRENTLY does.
    let e = db
        .client
        .batch_execute(
            "CREATE UNIQUE INDEX CONCURRENTLY \"Content_status_idx_ccnew\" ON \"Content\" (status)",
        )
        .await;
    assert!(e.is_err(), "duplicates make the unique build fail");
    let (cfg, _dir) = with_db(h::Setup::with_redis(), &db).build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;

    assert_eq!(r.exit_code, 1, "{:?}", h::raised(&r));
    let inc = h::get(&r, "reindex-invalid-leftover", "Content_status_idx_ccnew");
    assert_eq!(inc.severity.as_str(), "warning");
    assert!(
        inc.message.contains("of \"Content_status_idx\""),
        "{}",
        inc.message
    );
    assert!(
        inc.remediation.contains("DROP INDEX CONCURRENTLY"),
        "{}",
        inc.remediation
    );
    assert!(!h::has(&r, "reindex-failed", "Content_status_idx"));
    // The leftover's index was not rebuilt; the other one was.
    let sql: Vec<String> = h::audit(&cfg)
        .into_iter()
        .filter(|l| l["method"] == "SQL")
        .map(|l| l["statement"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !sql.iter().any(|s| s.contains("\"Content_status_idx\"")),
        "{sql:?}"
    );
    assert!(
        sql.iter().any(|s| s.contains("\"devices_status_idx\"")),
        "{sql:?}"
    );
    // Never dropped.
    let still = db
        .client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'Content_status_idx_ccnew'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(still, 1);
    let m = h::maintenance(&cfg);
    assert_eq!(m["invalidLeftovers"][0], "Content_status_idx_ccnew");

    // Dropped by the operator: the next run resolves the incident and rebuilds the index.
    db.client
        .batch_execute("DROP INDEX \"Content_status_idx_ccnew\"")
        .await
        .unwrap();
    let r2 = h::run(&cfg, false, &sink).await;
    assert_eq!(r2.exit_code, 0, "{:?}", h::raised(&r2));
    assert_eq!(
        h::incident(
            &cfg,
            "db-maintainer:reindex-invalid-leftover:Content_status_idx_ccnew"
        )
        .unwrap()["status"],
        "resolved"
    );
    assert!(
        r2.report
            .iter()
            .any(|l| l.starts_with("index \"Content_status_idx\": rebuilt"))
    );
    db.drop().await;
}
