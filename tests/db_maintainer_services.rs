//! db-maintainer, whole agent through `runner::run_agent`, for its non-PostgreSQL tasks against the real Redis and
//! S3 (moto) started by scripts/test.sh and real directories (agents.md 6.6.4–6.6.7, 1.4, 9 items 40–43): Redis
//! figures, a memory limit, an unreachable Redis; bucket usage with a warning size, a missing bucket, a refusing
//! endpoint; backup verdicts per location, malformed locations, stale locations; log rotation that fails.

mod db_maintainer_harness;

use db_maintainer_harness as h;
use db_maintainer_harness::support;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vizora_ops::agents::db_maintainer::STALE_LOCATION_SUFFIX;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn redis_figures_go_to_the_state_and_no_maxmemory_means_no_memory_warning() {
    let (cfg, _dir_cfg) = h::Setup::with_redis().build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    // Only info findings (db-not-configured, backup-not-configured): exit 0 (9 item 42).
    assert_eq!(r.exit_code, 0, "{:?}", h::raised(&r));
    assert!(h::has(&r, "db-not-configured", "DATABASE_URL"));
    assert!(h::has(&r, "backup-not-configured", "backup"));
    assert!(
        !h::has(&r, "redis-memory-high", "redis"),
        "the test Redis has no maxmemory"
    );
    let redis = &h::maintenance(&cfg)["redis"];
    assert!(redis["usedMemory"].as_u64().unwrap() > 0, "{redis:#}");
    assert_eq!(redis["maxmemory"], 0);
    assert!(redis["memoryUsedPct"].is_null());
    assert!(redis["dbsizeBefore"].is_u64());
    assert!(redis["keysScanned"].is_u64());
    let line = r.report.iter().find(|l| l.starts_with("Redis ")).unwrap();
    assert!(line.contains("no maxmemory set"), "{line}");
    assert!(line.contains("used "), "{line}");
    let cov = &h::state(&cfg)["agentResults"]["db-maintainer"]["coverage"];
    for t in [
        "redis-unobservable",
        "redis-memory-high",
        "redis-fragmentation-high",
    ] {
        assert!(cov.as_array().unwrap().iter().any(|c| c == t), "{cov}");
    }
}

/// A private redis-server on a free port (so its maxmemory can be set without touching the shared one).
struct PrivateRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        let dir = tempfile::tempdir().unwrap();
        let port = h::closed_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                dir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (installed by scripts/test.sh)");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PrivateRedis {
            child,
            port,
            _dir: dir,
        }
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn redis_above_its_memory_share_is_a_warning_and_exit_1() {
    let srv = PrivateRedis::start();
    let mut con = redis::Client::open(srv.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut con)
        .await
        .unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The limit sits just above the current use: ~91 % used (> 85 %).
    let limit = used * 11 / 10;
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(limit)
        .query_async(&mut con)
        .await
        .unwrap();
    let (cfg, _dir_cfg) = h::Setup::bare().set("REDIS_URL", srv.url()).build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    assert_eq!(r.exit_code, 1, "{:?}", h::raised(&r));
    let inc = h::get(&r, "redis-memory-high", "redis");
    assert_eq!(inc.severity.as_str(), "warning");
    assert_eq!(inc.target, "redis");
    assert!(
        inc.message.contains("OPS_REDIS_MEMORY_WARN_PCT 85"),
        "{}",
        inc.message
    );
    let pct = h::maintenance(&cfg)["redis"]["memoryUsedPct"]
        .as_f64()
        .unwrap();
    assert!(pct > 85.0, "{pct}");

    // The limit raised tenfold: Redis has room again, and the prior incident resolves.
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used * 10)
        .query_async(&mut con)
        .await
        .unwrap();
    let cfg2 = cfg.clone();
    let r2 = h::run(&cfg2, false, &sink).await;
    assert_eq!(r2.exit_code, 0, "{:?}", h::raised(&r2));
    assert_eq!(
        h::incident(&cfg2, "db-maintainer:redis-memory-high:redis").unwrap()["status"],
        "resolved"
    );
}

#[tokio::test]
async fn unreachable_redis_is_info_only_and_keeps_redis_incidents_unjudged() {
    let (cfg, _dir_cfg) = h::Setup::bare()
        .set(
            "REDIS_URL",
            format!("redis://:Redis-Pw-889@127.0.0.1:{}", h::closed_port()),
        )
        .build();
    let sink = Arc::new(h::RecordingSink::default());
    let t0 = Instant::now();
    let r = h::run(&cfg, false, &sink).await;
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(
        r.exit_code,
        0,
        "info never makes the exit non-zero: {:?}",
        h::raised(&r)
    );
    let inc = h::get(&r, "redis-unobservable", "redis");
    assert_eq!(inc.severity.as_str(), "info");
    let st = std::fs::read_to_string(&cfg.state_file).unwrap();
    assert!(!st.contains("Redis-Pw-889"), "password leaked");
    let cov = &h::state(&cfg)["agentResults"]["db-maintainer"]["coverage"];
    assert!(
        !cov.as_array()
            .unwrap()
            .iter()
            .any(|c| c == "redis-memory-high"),
        "{cov}"
    );
}

#[tokio::test]
async fn bucket_usage_is_reported_and_a_bucket_above_the_warning_size_is_a_warning() {
    let small = h::bucket_with(&[("uploads/a.png", 100), ("thumbs/a.jpg", 50)]).await;
    let big = h::bucket_with(&[
        ("uploads/org1/v.mp4", 6000),
        ("uploads/org2/w.mp4", 3000),
        ("thumbs/x.jpg", 500),
        ("root.bin", 10),
    ])
    .await;
    let (cfg, _dir_cfg) = h::Setup::with_redis()
        .set("OPS_S3_ENDPOINT", support::s3_endpoint())
        .set("OPS_S3_ACCESS_KEY", "testing")
        .set("OPS_S3_SECRET_KEY", "testing-secret")
        .set("OPS_S3_BUCKETS", format!("{small},{big}"))
        .set("OPS_S3_WARN_BYTES", "5000")
        .build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    assert_eq!(r.exit_code, 1, "{:?}", h::raised(&r));
    let inc = h::get(&r, "bucket-size-high", &big);
    assert_eq!(inc.severity.as_str(), "warning");
    assert_eq!(inc.target, "storage");
    assert!(inc.message.contains("9510 bytes"), "{}", inc.message);
    assert!(inc.message.contains("uploads/"), "{}", inc.message);
    assert!(!h::has(&r, "bucket-size-high", &small));
    assert!(!h::has(&r, "s3-unobservable", "127.0.0.1:5055"));
    let items = h::maintenance(&cfg)["buckets"]["items"]
        .as_array()
        .unwrap()
        .clone();
    let b = items.iter().find(|i| i["bucket"] == big.as_str()).unwrap();
    assert_eq!(b["objects"], 4);
    assert_eq!(b["bytes"], 9510);
    assert_eq!(b["topPrefixes"][0]["prefix"], "uploads/");
    assert_eq!(b["topPrefixes"][0]["bytes"], 9000);
    let line = r
        .report
        .iter()
        .find(|l| l.starts_with(&format!("bucket \"{big}\": 4 object(s), 9.3 KiB")))
        .unwrap_or_else(|| panic!("{:#?}", r.report));
    assert!(line.contains("largest prefixes uploads/ 8.8 KiB"), "{line}");
}

#[tokio::test]
async fn a_missing_bucket_or_a_refusing_endpoint_is_s3_unobservable_and_the_rest_runs() {
    let real = h::bucket_with(&[("a/b", 10)]).await;
    let missing = h::unique("vz-dbm-missing").replace('_', "-").to_lowercase();
    let endpoint_host = support::s3_endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (cfg, _dir_cfg) = h::Setup::with_redis()
        .set("OPS_S3_ENDPOINT", support::s3_endpoint())
        .set("OPS_S3_ACCESS_KEY", "testing")
        .set("OPS_S3_SECRET_KEY", "testing-secret")
        .set("OPS_S3_BUCKETS", format!("{missing},{real}"))
        .set("OPS_S3_WARN_BYTES", "1")
        .build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    let inc = h::get(&r, "s3-unobservable", &endpoint_host);
    assert_eq!(inc.severity.as_str(), "info");
    assert!(inc.message.contains(&missing), "{}", inc.message);
    assert!(inc.message.contains("does not exist"), "{}", inc.message);
    // The real bucket was still examined (and is above the 1-byte warning size).
    assert!(h::has(&r, "bucket-size-high", &real));
    assert_eq!(r.exit_code, 1);
    assert!(h::maintenance(&cfg)["redis"]["usedMemory"].is_u64());

    // A refusing endpoint, buckets listed with ListBuckets: unobservable, info only.
    let port = h::closed_port();
    let (cfg, _dir_cfg) = h::Setup::with_redis()
        .set("OPS_S3_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .set("OPS_S3_ACCESS_KEY", "testing")
        .set("OPS_S3_SECRET_KEY", "S3-Secret-553")
        .build();
    let t0 = Instant::now();
    let r = h::run(&cfg, false, &sink).await;
    assert!(t0.elapsed() < Duration::from_secs(60));
    assert_eq!(r.exit_code, 0, "{:?}", h::raised(&r));
    let inc = h::get(&r, "s3-unobservable", &format!("127.0.0.1:{port}"));
    assert!(inc.message.contains("unreachable"), "{}", inc.message);
    let st = std::fs::read_to_string(&cfg.state_file).unwrap();
    assert!(!st.contains("S3-Secret-553"));
    let cov = &h::state(&cfg)["agentResults"]["db-maintainer"]["coverage"];
    assert!(
        !cov.as_array()
            .unwrap()
            .iter()
            .any(|c| c == "bucket-size-high"),
        "{cov}"
    );
}

#[tokio::test]
async fn backups_are_judged_per_location_and_never_reported_as_succeeded_without_evidence() {
    let fresh = tempfile::tempdir().unwrap();
    h::aged_file(fresh.path(), "daily/db-new.sql.gz", 4096, HOUR);
    h::aged_file(fresh.path(), "daily/db-old.sql.gz", 4096, 30 * HOUR);
    let empty = tempfile::tempdir().unwrap();
    h::aged_file(empty.path(), "db-old.sql.gz", 4096, 5 * HOUR);
    h::aged_file(empty.path(), "db-new.sql.gz", 0, HOUR);
    let old = tempfile::tempdir().unwrap();
    h::aged_file(old.path(), "db.sql.gz", 4096, 30 * HOUR);
    let nothing = tempfile::tempdir().unwrap();
    let s3_bucket = h::bucket_with(&[("pg/2026/db.dump", 1234)]).await;
    let loc = |d: &tempfile::TempDir| d.path().display().to_string();
    let locations = [
        loc(&fresh),
        loc(&empty),
        loc(&old),
        loc(&nothing),
        "backups/relative".to_string(),
        "s3://bad bucket".to_string(),
        format!("s3://{s3_bucket}/pg"),
    ]
    .join(",");
    let s = h::Setup::with_redis()
        .set("OPS_BACKUP_LOCATIONS", &locations)
        .set("OPS_BACKUP_S3_ENDPOINT", support::s3_endpoint())
        .set("AWS_ACCESS_KEY_ID", "testing")
        .set("AWS_SECRET_ACCESS_KEY", "testing-secret");
    let cfg = s.config();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    assert_eq!(r.exit_code, 1);

    let by_loc = |l: &str| -> Vec<String> {
        h::raised(&r)
            .into_iter()
            .filter(|(k, t, _)| k.starts_with("backup-") && t == l)
            .map(|(k, _, _)| k)
            .collect()
    };
    assert!(by_loc(&loc(&fresh)).is_empty(), "fresh → no incident");
    assert_eq!(
        by_loc(&loc(&empty)),
        vec!["backup-missing"],
        "0-byte newest"
    );
    assert_eq!(by_loc(&loc(&old)), vec!["backup-stale"]);
    assert_eq!(by_loc(&loc(&nothing)), vec!["backup-missing"]);
    assert_eq!(
        by_loc("backups/relative"),
        vec!["backup-unverifiable"],
        "malformed ≠ unset"
    );
    assert_eq!(by_loc("s3://bad bucket"), vec!["backup-unverifiable"]);
    assert!(
        by_loc(&format!("s3://{s3_bucket}/pg")).is_empty(),
        "fresh S3 backup"
    );
    assert!(!h::has(&r, "backup-not-configured", "backup"));
    for i in r
        .result
        .incidents
        .iter()
        .filter(|i| i.kind.starts_with("backup-"))
    {
        assert_eq!(i.severity.as_str(), "critical", "{i:?}");
        assert_eq!(i.target, "backup");
    }
    let empty_inc = h::get(&r, "backup-missing", &loc(&empty));
    assert!(
        empty_inc.message.contains("empty (0 bytes)"),
        "{}",
        empty_inc.message
    );
    let stale = h::get(&r, "backup-stale", &loc(&old));
    assert!(
        stale.message.contains("> OPS_BACKUP_MAX_AGE_HOURS 24 h"),
        "{}",
        stale.message
    );
    // One batched critical alert listing all five.
    let alerts = sink.all();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].incident_ids.len(), 5, "{alerts:?}");
    // The report names the newest backup and its age.
    let fresh_line = r
        .report
        .iter()
        .find(|l| l.starts_with(&format!("backup {}: newest ", loc(&fresh))))
        .unwrap();
    assert!(fresh_line.contains("db-new.sql.gz"), "{fresh_line}");
    assert!(
        fresh_line.contains("1.0 h old (limit 24 h)"),
        "{fresh_line}"
    );
    let rows = h::maintenance(&cfg)["backups"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0]["verdict"], "fresh");
    assert_eq!(rows[0]["newest"]["size"], 4096);
    assert_eq!(rows[6]["verdict"], "fresh");

    // Only the fresh location stays configured: the others close with the suffix that proves nothing.
    let (cfg2, _dir_cfg2) = h::Setup::with_redis()
        .set("OPS_BACKUP_LOCATIONS", loc(&fresh))
        .set("OPS_STATE_FILE", cfg.state_file.display().to_string())
        .build();
    let r2 = h::run(&cfg2, false, &sink).await;
    assert_eq!(r2.exit_code, 0, "{:?}", h::raised(&r2));
    let id = format!("db-maintainer:backup-stale:{}", loc(&old));
    let closed = h::incident(&cfg2, &id).unwrap();
    assert_eq!(closed["status"], "resolved");
    assert!(
        closed["message"]
            .as_str()
            .unwrap()
            .ends_with(STALE_LOCATION_SUFFIX),
        "{closed}"
    );
    assert_eq!(r2.result.issues_resolved, Some(5));

    // Nothing configured at all: info only, never a claim that a backup exists.
    let (cfg3, _dir_cfg3) = h::Setup::with_redis()
        .set("OPS_STATE_FILE", cfg.state_file.display().to_string())
        .build();
    let r3 = h::run(&cfg3, false, &sink).await;
    assert_eq!(r3.exit_code, 0);
    let inc = h::get(&r3, "backup-not-configured", "backup");
    assert_eq!(inc.severity.as_str(), "info");
    let line = r3
        .report
        .iter()
        .find(|l| l.starts_with("backups: "))
        .unwrap();
    assert!(
        line.contains("nothing shows that a backup exists"),
        "{line}"
    );
}

#[tokio::test]
async fn a_log_dir_where_rotation_fails_is_log_retention_failed_and_nothing_is_emptied() {
    let s = h::Setup::with_redis().set("OPS_LOG_TAIL_BYTES", "1024");
    let logs = s.logs();
    let a = h::log_file(&logs.join("api-error.log"), 8_000);
    let b = h::log_file(&logs.join("web-out.log"), 9_000);
    // A dangling symlink where the archive directory should be: the files are due, but no archive can be created
    // (works as root too).
    std::os::unix::fs::symlink(s.dir.path().join("no-such-target"), logs.join("archive")).unwrap();
    let cfg = s.config();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    assert_eq!(r.exit_code, 1, "{:?}", h::raised(&r));
    let inc = h::get(&r, "log-retention-failed", "logs-dir");
    assert_eq!(inc.severity.as_str(), "warning");
    assert_eq!(inc.target, "logs");
    assert!(inc.message.contains("2 error(s)"), "{}", inc.message);
    assert!(inc.message.contains("api-error.log: "), "{}", inc.message);
    assert_eq!(std::fs::read(logs.join("api-error.log")).unwrap(), a);
    assert_eq!(std::fs::read(logs.join("web-out.log")).unwrap(), b);
    // The failed rotations are audited as failed FILE mutations.
    let failed: Vec<_> = h::audit(&cfg)
        .into_iter()
        .filter(|l| l["method"] == "FILE")
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(
        failed
            .iter()
            .all(|l| l["success"] == false && l["error"].is_string())
    );
    // The other tasks ran.
    assert!(h::maintenance(&cfg)["redis"]["usedMemory"].is_u64());

    // Fixed: the next run rotates both and resolves the incident.
    std::fs::remove_file(logs.join("archive")).unwrap(); // the symlink itself
    let r2 = h::run(&cfg, false, &sink).await;
    assert_eq!(r2.exit_code, 0, "{:?}", h::raised(&r2));
    assert_eq!(
        h::incident(&cfg, "db-maintainer:log-retention-failed:logs-dir").unwrap()["status"],
        "resolved"
    );
    let rotated = h::maintenance(&cfg)["rotation"]["rotated"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rotated.len(), 2);
    for f in ["api-error.log", "web-out.log"] {
        let now = std::fs::read_to_string(logs.join(f)).unwrap();
        assert!(now.starts_with("[log-retention] "), "{now}");
        assert!(now.contains("this log was not emptied"));
        assert!(now.len() > 100, "kept a tail");
    }
}
