//! db-maintainer without services (agents.md 6.6, 1.4, 8.1, 9 items 42–43): the demo contacts no database, Redis or
//! bucket even when settings point at one and says which variables enable each task; an unconfigured run is
//! info-only; a DATABASE_URL the client cannot use is a configuration error (exit 2, nothing written).

mod db_maintainer_harness;

use db_maintainer_harness as h;
use std::net::TcpListener;
use std::sync::Arc;

#[tokio::test]
async fn the_demo_contacts_nothing_and_says_which_variables_enable_each_task() {
    // Listeners where the database and Redis would be: the demo must never connect to them.
    let pg = TcpListener::bind("127.0.0.1:0").unwrap();
    let redis = TcpListener::bind("127.0.0.1:0").unwrap();
    pg.set_nonblocking(true).unwrap();
    redis.set_nonblocking(true).unwrap();
    let s = h::Setup::bare()
        .set("OPS_DEMO", "true")
        .set(
            "REDIS_URL",
            format!("redis://127.0.0.1:{}", redis.local_addr().unwrap().port()),
        )
        .set(
            "OPS_S3_ENDPOINT",
            format!("http://127.0.0.1:{}", pg.local_addr().unwrap().port()),
        );
    let (cfg, _dir) = s.build();
    assert!(cfg.demo);
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;

    assert_eq!(r.exit_code, 0, "{:?} {:?}", r.fatal, h::raised(&r));
    assert!(pg.accept().is_err(), "no connection to the S3 endpoint");
    assert!(redis.accept().is_err(), "no connection to Redis");
    let report = r.report.join("\n");
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "OPS_BACKUP_LOCATIONS",
        "BACKUP_DIR",
        "BACKUP_S3_BUCKET",
    ] {
        assert!(report.contains(var), "{var} named: {report}");
    }
    assert!(report.contains("not contacted in the demo"), "{report}");
    let mut kinds: Vec<_> = h::raised(&r).into_iter().map(|(k, _, s)| (k, s)).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("backup-not-configured".to_string(), "info".to_string()),
            ("db-not-configured".to_string(), "info".to_string()),
        ]
    );
    let nc = &h::maintenance(&cfg)["notConfigured"];
    let tasks: Vec<_> = nc
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["task"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tasks, vec!["postgres", "redis", "backups"], "{nc}");
}

#[tokio::test]
async fn the_demo_does_not_contact_a_configured_database_either() {
    let pg = TcpListener::bind("127.0.0.1:0").unwrap();
    pg.set_nonblocking(true).unwrap();
    let (cfg, _dir) = h::Setup::bare()
        .set("OPS_DEMO", "true")
        .set(
            "DATABASE_URL",
            format!(
                "postgres://ops:pw@127.0.0.1:{}/vizora",
                pg.local_addr().unwrap().port()
            ),
        )
        .build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    assert_eq!(r.exit_code, 0, "{:?}", h::raised(&r));
    assert!(pg.accept().is_err(), "no connection to PostgreSQL");
    assert!(!h::has(&r, "vacuum-all-failed", "all-tables"));
    assert!(
        r.report
            .iter()
            .any(|l| l.contains("configured but not contacted in the demo"))
    );
}

#[tokio::test]
async fn an_unconfigured_run_outside_the_demo_is_info_only_with_exit_0() {
    // Nothing configured; Redis at a port where nothing listens.
    let (cfg, _dir) = h::Setup::bare()
        .set(
            "REDIS_URL",
            format!("redis://127.0.0.1:{}", h::closed_port()),
        )
        .build();
    let sink = Arc::new(h::RecordingSink::default());
    let r = h::run(&cfg, false, &sink).await;
    assert_eq!(r.exit_code, 0, "{:?}", h::raised(&r));
    assert!(r.wrote_state, "a run with nothing to do is still recorded");
    let mut kinds: Vec<_> = h::raised(&r).into_iter().map(|(k, _, _)| k).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            "backup-not-configured",
            "db-not-configured",
            "redis-unobservable"
        ]
    );
    assert!(h::raised(&r).iter().all(|(_, _, s)| s == "info"));
    assert!(sink.all().is_empty(), "info never alerts");
    assert_eq!(h::state(&cfg)["systemStatus"], "HEALTHY");
    assert!(h::state(&cfg)["lastRun"]["db-maintainer"].is_string());
}

#[tokio::test]
async fn a_database_url_the_client_cannot_use_is_a_configuration_error_and_nothing_is_written() {
    for url in [
        "postgres://ops:pw@127.0.0.1:5432/vizora?schema=bad-schema",
        "postgres://ops:pw@127.0.0.1:5432/vizora?sslmode=verify-full",
    ] {
        let (cfg, _dir) = h::Setup::bare().set("DATABASE_URL", url).build();
        let sink = Arc::new(h::RecordingSink::default());
        let r = h::run(&cfg, false, &sink).await;
        assert_eq!(r.exit_code, 2, "{url}");
        assert!(
            r.fatal.as_deref().unwrap().contains("DATABASE_URL"),
            "{:?}",
            r.fatal
        );
        assert!(!r.wrote_state);
        assert!(h::state(&cfg).is_null());
    }
}
