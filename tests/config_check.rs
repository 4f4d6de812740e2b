//! Configuration through the real binary (agents.md 8, 1.3): regression tests for issue 9's configuration defects.
//! An undecodable `.env` that was skipped with a WARNING (its `OPS_DRY_RUN=yes` lost, a planned dry run changed
//! production), pm2 app names `--help` (wrong reason) and `all` (accepted), S3 backup locations with credentials
//! passing `config check`, `MINIO_ENDPOINT` userinfo printed, and `config check` stopping at the first problem and
//! saying "configuration OK" without API credentials.
//!
//! The helpers follow tests/bad_input.rs (an empty environment plus `PATH`, rooted in a temporary directory).

use std::process::Output;
use std::time::Duration;

#[path = "support/bin.rs"]
mod bin;
use bin::{BIN, demo_sandbox, run, stderr, stdout};

const CREDS: [(&str, &str); 2] = [
    ("OPS_EMAIL", "ops@example.test"),
    ("OPS_PASSWORD", "ops-demo-password"),
];

/// `config check` with the API credentials set beside `vars` (so only the variable under test can fail it), failing
/// the test instead of hanging after 10 s.
async fn check_with_creds(dir: &std::path::Path, vars: &[(&str, &str)]) -> Output {
    let mut all = vars.to_vec();
    all.extend(CREDS);
    run(dir, &all, &["config", "check"], Duration::from_secs(10)).await
}

/// The defect: a `.env` holding `OPS_DRY_RUN=yes` and one Latin-1 byte was skipped with a WARNING, so the planned
/// dry run sent real fleet commands and `config check` said OK. Now both stop with exit 2 naming the file and the
/// offset of the bad byte, before anything is contacted or created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotenv_that_is_not_utf8_stops_run_and_config_check_naming_the_file_and_offset() {
    let sb = demo_sandbox().await;
    let mut vars = vec![
        ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
        ("OPS_RECONNECT_VERIFY_S", "0"),
    ];
    vars.extend(CREDS);

    // Control: the same .env in UTF-8 is read, the run reaches the sandbox and stays a dry run (reads, login and
    // logout only), so an empty request log below really means "nothing contacted".
    let good = tempfile::tempdir().unwrap();
    std::fs::write(
        good.path().join(".env"),
        "OPS_DRY_RUN=yes\nOPS_NOTE_X=café\n",
    )
    .unwrap();
    let o = run(
        good.path(),
        &vars,
        &["run", "fleet-manager"],
        Duration::from_secs(90),
    )
    .await;
    assert_ne!(o.status.code(), Some(2), "control run: {}", stderr(&o));
    let reqs = sb.requests();
    assert!(!reqs.is_empty(), "the control run reaches the sandbox");
    let writes: Vec<String> = reqs
        .iter()
        .filter(|r| {
            !matches!(r.method.as_str(), "GET" | "HEAD") && !r.path.starts_with("/api/v1/auth/")
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        writes.is_empty(),
        "OPS_DRY_RUN=yes from .env is honoured: {writes:?}"
    );
    let before = reqs.len();

    let bad = tempfile::tempdir().unwrap();
    let text = b"OPS_DRY_RUN=yes\nOPS_NOTE_X=caf\xe9\n";
    let offset = text.iter().position(|&b| b == 0xe9).unwrap();
    std::fs::write(bad.path().join(".env"), text).unwrap();
    let env_path = bad.path().join(".env").display().to_string();
    for args in [vec!["run", "fleet-manager"], vec!["config", "check"]] {
        let o = run(bad.path(), &vars, &args, Duration::from_secs(20)).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&env_path) && err.contains(&format!("offset {offset}")),
            "{args:?} names the file and the offset {offset}: {err}"
        );
        assert!(!stdout(&o).contains("configuration OK"), "{args:?}");
    }
    assert_eq!(sb.requests().len(), before, "nothing contacted");
    assert!(
        !bad.path().join("logs").exists(),
        "nothing created (no audit, no state)"
    );
    sb.shutdown().await;
}

/// The same rule for the TOML file and for a `.env` that cannot be read at all (a directory, a FIFO that would block
/// the read): exit 2 naming the file, no I/O, no hang.
#[tokio::test]
async fn config_file_that_is_not_utf8_or_an_unreadable_dotenv_is_a_configuration_error() {
    let d = tempfile::tempdir().unwrap();
    let toml = d.path().join("ops.toml");
    let text = b"OPS_DRY_RUN = true\n# caf\xc3\n";
    std::fs::write(&toml, text).unwrap();
    let offset = text.iter().position(|&b| b == 0xc3).unwrap();
    for args in [
        vec!["--config", toml.to_str().unwrap(), "run", "db-maintainer"],
        vec!["--config", toml.to_str().unwrap(), "config", "check"],
    ] {
        let o = run(d.path(), &[], &args, Duration::from_secs(20)).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(
            err.contains("ops.toml") && err.contains(&format!("offset {offset}")),
            "{args:?}: {err}"
        );
    }
    assert!(!d.path().join("logs").exists(), "no I/O before validation");

    let dir_env = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir_env.path().join(".env")).unwrap();
    let fifo_env = tempfile::tempdir().unwrap();
    let fifo = fifo_env.path().join(".env");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    for root in [dir_env.path(), fifo_env.path()] {
        for args in [vec!["run", "db-maintainer"], vec!["config", "check"]] {
            let o = run(root, &[], &args, Duration::from_secs(20)).await;
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.contains(&root.join(".env").display().to_string()),
                "{args:?}: {err}"
            );
        }
        assert!(!root.join("logs").exists());
    }
}

/// `--help` was rejected as if it had a bad character (`-` is allowed): the reason is now the leading dash.
#[tokio::test]
async fn pm2_app_named_help_is_rejected_because_it_starts_with_a_dash() {
    let d = tempfile::tempdir().unwrap();
    let o = run(
        d.path(),
        &[("OPS_PM2_APP_WEB", "--help")],
        &["config", "check"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("OPS_PM2_APP_WEB")
            && err.contains("starts with '-'")
            && err.contains("option"),
        "{err}"
    );
    assert!(
        !err.contains("characters outside"),
        "not the alphabet: {err}"
    );
}

/// `OPS_PM2_APP_*=all` was accepted: `pm2 restart all` restarts every process on the host. It is a configuration
/// error (the run too stops before any I/O: nothing at run time would stop the command).
#[tokio::test]
async fn pm2_app_named_all_is_rejected_because_pm2_reads_it_as_every_process() {
    let d = tempfile::tempdir().unwrap();
    for value in ["all", "ALL"] {
        for args in [vec!["config", "check"], vec!["run", "health-guardian"]] {
            let o = run(
                d.path(),
                &[("OPS_PM2_APP_MIDDLEWARE", value)],
                &args,
                Duration::from_secs(10),
            )
            .await;
            assert_eq!(o.status.code(), Some(2), "{value} {args:?}");
            let err = stderr(&o);
            assert!(
                err.contains("OPS_PM2_APP_MIDDLEWARE") && err.contains("every process"),
                "{value} {args:?}: {err}"
            );
        }
    }
    assert!(!d.path().join("logs").exists());
    // A name that merely contains "all" is fine.
    let o = check_with_creds(d.path(), &[("OPS_PM2_APP_MIDDLEWARE", "all-in-one")]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `BACKUP_S3_BUCKET=s3://key:secret@bucket/…` passed `config check` and failed every db-maintainer run. The check
/// now fails with the run's reason, and prints neither the secret nor the key.
#[tokio::test]
async fn backup_s3_location_with_credentials_fails_config_check_with_the_run_reason_without_the_secret()
 {
    let d = tempfile::tempdir().unwrap();
    let loc = "s3://AKIAEXAMPLEKEY:BackupSecret-77@backups/nightly";
    let run_reason = vizora_ops::maint::backup::parse_location(loc).unwrap_err();
    let reason = run_reason.split(": ").last().unwrap();
    assert!(reason.contains("expected s3://bucket"), "{run_reason}");
    for var in ["BACKUP_S3_BUCKET", "OPS_BACKUP_LOCATIONS"] {
        let o = check_with_creds(d.path(), &[(var, loc)]).await;
        assert_eq!(o.status.code(), Some(2), "{var}");
        let err = stderr(&o);
        assert!(err.contains(var) && err.contains(reason), "{var}: {err}");
        let all = format!("{}{err}", stdout(&o));
        assert!(
            !all.contains("BackupSecret-77") && !all.contains("AKIAEXAMPLEKEY"),
            "{var}: {all}"
        );
    }
    // Control: the same location without credentials passes.
    let o = check_with_creds(d.path(), &[("BACKUP_S3_BUCKET", "s3://backups/nightly")]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `MINIO_ENDPOINT=user:pass@host` (no scheme, so the redactor's URL rule missed it) was printed as is.
#[tokio::test]
async fn minio_endpoint_userinfo_is_masked_by_config_check() {
    let d = tempfile::tempdir().unwrap();
    for endpoint in [
        "minio-user:MinioPass-55@minio.internal",
        "http://minio-user:MinioPass-55@minio.internal",
    ] {
        let o = check_with_creds(d.path(), &[("MINIO_ENDPOINT", endpoint)]).await;
        assert_eq!(o.status.code(), Some(0), "{endpoint}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("MINIO_ENDPOINT") && out.contains("***@minio.internal"),
            "{out}"
        );
        assert!(
            !out.contains("MinioPass-55") && !out.contains("minio-user"),
            "{endpoint}: {out}"
        );
        // E-mail addresses are not userinfo.
        assert!(out.contains("ops@example.test"), "{out}");
    }
}

/// `config check` stopped at the first bad variable: every problem is now listed in one pass (exit 2).
#[tokio::test]
async fn config_check_reports_every_invalid_variable_in_one_pass() {
    let d = tempfile::tempdir().unwrap();
    let vars = [
        ("OPS_DRY_RUN", "maybe"),
        ("OPS_RATE_PER_SECOND", "-3"),
        ("OPS_ORPHAN_MIN_AGE_DAYS", "0"),
        ("SMTP_SECURE", "sometimes"),
        ("OPS_PM2_APP_WEB", "--help"),
        ("OPS_VACUUM_TABLES", "Content; DROP TABLE x"),
    ];
    let o = run(
        d.path(),
        &vars,
        &["config", "check"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for (k, _) in vars {
        assert!(
            err.contains(&format!("configuration error: {k}")),
            "{k} missing: {err}"
        );
    }
    assert!(err.contains("6 errors"), "{err}");
    assert!(!stdout(&o).contains("configuration OK"));
    // The run names every one too (and stops before any I/O).
    let o = run(
        d.path(),
        &vars,
        &["run", "db-maintainer"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for k in [
        "OPS_DRY_RUN",
        "OPS_RATE_PER_SECOND",
        "OPS_ORPHAN_MIN_AGE_DAYS",
        "SMTP_SECURE",
    ] {
        assert!(err.contains(k), "{k}: {err}");
    }
    assert!(!d.path().join("logs").exists());
}

/// `config check` said "configuration OK" with no API credentials and named neither variable. Missing credentials
/// stay a warning (exit 0: health-guardian, db-maintainer and ops-reporter run without them) but the headline and the
/// per-agent lines say what cannot run.
#[tokio::test]
async fn config_check_without_credentials_names_them_and_the_agents_that_cannot_run() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &[], &["config", "check"], Duration::from_secs(10)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("configuration OK"), "{out}");
    assert!(
        out.contains("INCOMPLETE") && out.contains("OPS_EMAIL and OPS_PASSWORD not set"),
        "{out}"
    );
    let line = |agent: &str| -> String {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{agent} ")))
            .unwrap_or_else(|| panic!("no line for {agent}: {out}"))
            .to_string()
    };
    for a in ["content-lifecycle", "fleet-manager", "schedule-doctor"] {
        assert!(
            line(a).contains("CANNOT RUN") && line(a).contains("OPS_EMAIL"),
            "{}",
            line(a)
        );
    }
    assert!(line("health-guardian").contains("can run"));
    assert!(!line("health-guardian").contains("CANNOT"));
    assert!(
        line("db-maintainer").contains("DATABASE_URL"),
        "{}",
        line("db-maintainer")
    );
    assert!(
        line("ops-reporter").contains("no dashboard push"),
        "{}",
        line("ops-reporter")
    );
    assert!(
        line("ops-reporter").contains("no alert is delivered"),
        "{}",
        line("ops-reporter")
    );

    // Only the missing half is named.
    let o = run(
        d.path(),
        &[("OPS_EMAIL", "ops@example.test")],
        &["config", "check"],
        Duration::from_secs(10),
    )
    .await;
    let out = stdout(&o);
    assert!(
        out.contains("OPS_PASSWORD not set") && !out.contains("OPS_EMAIL and"),
        "{out}"
    );

    // Everything set: OK, and the API agents can run.
    let mut vars = vec![
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.example/services/T0/B0/xyz",
        ),
        (
            "DATABASE_URL",
            "postgres://ops:DbSecret-9@db.internal/vizora",
        ),
    ];
    vars.extend(CREDS);
    let o = run(
        d.path(),
        &vars,
        &["config", "check"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("configuration OK"), "{out}");
    assert!(
        !out.contains("CANNOT RUN") && !out.contains("DbSecret-9"),
        "{out}"
    );
}

/// A non-UTF-8 value in the process environment made the binary panic (`std::env::vars`). One this program reads is
/// now a configuration error naming it (exit 2); anyone else's is ignored.
#[tokio::test]
async fn non_utf8_environment_variable_is_a_configuration_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let base = || {
        let mut c = tokio::process::Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OPS_ROOT_DIR", d.path())
            .env("OPS_EMAIL", "ops@example.test")
            .env("OPS_PASSWORD", "ops-demo-password")
            .current_dir(d.path())
            .kill_on_drop(true);
        c
    };
    let o = base()
        .env("OPS_DRY_RUN", bad)
        .args(["config", "check"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("OPS_DRY_RUN") && !stderr(&o).contains("panicked"));
    let o = base()
        .env("SOME_OTHER_TOOL", bad)
        .args(["config", "check"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
