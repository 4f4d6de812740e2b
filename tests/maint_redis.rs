//! db-maintainer Redis report against a real server (agents.md 6.6.4). Keys use a unique prefix and expire on their
//! own, so tests can run in parallel with each other and with other suites on the same server.

mod support;

use std::time::{Duration, Instant};
use vizora_ops::maint::MaintError;
use vizora_ops::maint::redis::{DEFAULT_SCAN_MAX_DURATION, redis_report};

fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("vz:maint-test:{}:{nanos}", std::process::id())
}

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(support::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test Redis")
}

#[tokio::test]
async fn report_has_memory_figures_scan_counts_and_expired_keys() {
    let mut con = raw().await;
    let p = prefix();
    // 300 keys that expire almost at once, 200 that outlive the test.
    let mut pipe = redis::pipe();
    for i in 0..300 {
        pipe.cmd("SET")
            .arg(format!("{p}:short:{i}"))
            .arg("v")
            .arg("PX")
            .arg(50)
            .ignore();
    }
    for i in 0..200 {
        pipe.cmd("SET")
            .arg(format!("{p}:long:{i}"))
            .arg("v")
            .arg("EX")
            .arg(120)
            .ignore();
    }
    let () = pipe.query_async(&mut con).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let r = redis_report(&support::redis_url(), 100_000, DEFAULT_SCAN_MAX_DURATION)
        .await
        .expect("report");
    assert!(r.used_memory > 0);
    assert!(r.used_memory_peak.unwrap() >= r.used_memory / 2);
    // The test server runs without a memory limit: maxmemory 0 means "unlimited", no percentage.
    assert_eq!(r.maxmemory, 0);
    assert_eq!(r.memory_used_pct(), None);
    assert!(r.fragmentation_ratio.unwrap() > 0.0);
    assert!(r.dbsize_before >= 200, "{r:?}");
    assert!(r.dbsize_after.is_some());
    assert!(r.scan_complete, "{r:?}");
    assert!(r.scan_stopped.is_none());
    assert!(r.keys_scanned >= 200, "{r:?}");
    let (before, after) = (
        r.expired_keys_before.unwrap(),
        r.expired_keys_after.unwrap(),
    );
    assert!(after >= before);
    assert!(r.evicted_keys.is_some());
    assert!(
        r.commands.iter().any(|c| c == "INFO memory")
            && r.commands.iter().any(|c| c.starts_with("SCAN"))
    );
    // Read-only: nothing but INFO, DBSIZE and SCAN was sent.
    assert!(
        r.commands
            .iter()
            .all(|c| c.starts_with("INFO") || c.starts_with("DBSIZE") || c.starts_with("SCAN"))
    );
    // Our long-lived keys are still there.
    let n: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{p}:long:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n.len(), 200);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("keysScanned").is_some() && json.get("usedMemory").is_some());
}

#[tokio::test]
async fn scan_stops_at_the_key_bound() {
    let mut con = raw().await;
    let p = prefix();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET")
            .arg(format!("{p}:k:{i}"))
            .arg("v")
            .arg("EX")
            .arg(120)
            .ignore();
    }
    let () = pipe.query_async(&mut con).await.unwrap();
    let r = redis_report(&support::redis_url(), 10, DEFAULT_SCAN_MAX_DURATION)
        .await
        .unwrap();
    assert!(!r.scan_complete, "{r:?}");
    assert_eq!(r.scan_stopped.as_deref(), Some("max keys"));
    assert!(
        r.keys_scanned >= 10 && r.keys_scanned < r.dbsize_before,
        "{r:?}"
    );

    let r = redis_report(&support::redis_url(), 1_000_000, Duration::ZERO)
        .await
        .unwrap();
    assert!(!r.scan_complete);
    assert_eq!(r.scan_stopped.as_deref(), Some("max duration"));
    assert_eq!(r.keys_scanned, 0);
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error_without_the_password() {
    let secret = "r3dis-Secret-pass";
    let started = Instant::now();
    let e = redis_report(
        &format!("redis://:{secret}@127.0.0.1:1"),
        100,
        DEFAULT_SCAN_MAX_DURATION,
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(8));
    let msg = e.to_string();
    assert!(
        matches!(e, MaintError::Connect { .. } | MaintError::Timeout { .. }),
        "{e:?}"
    );
    assert!(!msg.contains(secret), "{msg}");
    assert!(msg.contains("127.0.0.1"), "{msg}");

    let e = redis_report(
        &format!("notredis://:{secret}@h"),
        100,
        DEFAULT_SCAN_MAX_DURATION,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, MaintError::Config { .. }), "{e:?}");
    assert!(!e.to_string().contains(secret));
}
