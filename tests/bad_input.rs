//! Bad input from a careless or hostile operator or API (agents.md 1.3–1.5, 4.2–4.4, 5.2–5.5, 8.1): each case gets
//! a clear message and exit code, leaks no secret and loses nothing. Regression tests for defects found by probing
//! the binary: repeated bad logins, id-less list items proving completeness, a bogus `Retry-After` blocking the host,
//! an unwritable budget file lifting the limits, TOML errors echoing secrets, `--json` without JSON, `status` showing
//! a corrupt state as HEALTHY, a FIFO hanging the run, a directory accepted as the state file, forged log lines.

use serde_json::{Value, json};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vizora_ops::sandbox::{FaultSpec, Sandbox};
use vizora_ops::state::audit::AuditLog;
use vizora_ops::vizora::budget::{Admission, Limits, RateBudget};
use vizora_ops::vizora::{Client, ClientOptions, VizoraApi};

#[path = "support/bin.rs"]
mod bin;
use bin::{demo_sandbox, run, stderr, stdout};

/// Stdout must be exactly one JSON object.
fn one_json_object(o: &Output) -> Value {
    let s = stdout(o);
    let v: Value = serde_json::from_str(&s)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{s}"));
    assert!(v.is_object(), "stdout is not an object: {s}");
    v
}

fn logins(sb: &Sandbox) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/auth/login")
        .count()
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("logs").join("ops-state.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_sent_once_per_run_even_with_concurrent_list_walks() {
    let sb = demo_sandbox().await;
    let d = tempfile::tempdir().unwrap();
    // fleet-manager walks displays, schedules and display groups concurrently: each walk needs the session.
    let o = run(
        d.path(),
        &[
            ("VALIDATOR_BASE_URL", &sb.api_url),
            ("OPS_EMAIL", "ops@example.test"),
            ("OPS_PASSWORD", "wrong-password-42"),
        ],
        &["run", "fleet-manager", "--json"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v = one_json_object(&o);
    assert_eq!(v["exitCode"], 2);
    assert!(
        v["error"].as_str().unwrap().contains("login failed"),
        "{v:#}"
    );
    assert_eq!(logins(&sb), 1, "one bad login per run (the account locks)");
    assert!(!state_file(d.path()).exists(), "login failure → no write");
    assert!(!stdout(&o).contains("wrong-password-42") && !stderr(&o).contains("wrong-password-42"));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_login_is_retried_by_one_walk_only() {
    let sb = demo_sandbox().await;
    sb.add_fault(FaultSpec {
        method: Some("POST".into()),
        path: "/api/v1/auth/login".into(),
        status: Some(429),
        retry_after: Some(json!(1)),
        count: 100,
        ..Default::default()
    });
    let d = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let o = run(
        d.path(),
        &[
            ("VALIDATOR_BASE_URL", &sb.api_url),
            ("OPS_EMAIL", "ops@example.test"),
            ("OPS_PASSWORD", "ops-demo-password"),
            ("OPS_HTTP_RETRIES", "1"),
        ],
        &["run", "fleet-manager", "--json"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(one_json_object(&o)["exitCode"], 2);
    assert_eq!(logins(&sb), 2, "the first attempt and its one 429 retry");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(!state_file(d.path()).exists());
    sb.shutdown().await;
}

fn client(sb: &Sandbox, dir: &Path) -> Client {
    Client::new(
        ClientOptions {
            base_url: sb.api_url.clone(),
            email: Some("ops@example.test".into()),
            password: Some("ops-demo-password".into()),
            agent: "schedule-doctor".into(),
            run_id: "bad-input".into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            notify_timeout: Duration::from_secs(2),
            retries: 0,
            max_list_items: 100_000,
            dry_run: true,
            deadline: Instant::now() + Duration::from_secs(30),
        },
        Arc::new(RateBudget::memory(Limits {
            per_second: 1000,
            per_minute: 100_000,
            per_hour: 1_000_000,
            logins_per_minute: 100,
        })),
        AuditLog::new(dir.join("ops-audit.jsonl")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_items_without_a_usable_id_never_make_a_walk_complete() {
    let sb = demo_sandbox().await;
    let d = tempfile::tempdir().unwrap();
    let c = client(&sb, d.path());
    for items in [
        json!([{"name": "a"}, {"name": "b"}]),
        json!([{"id": null, "name": "a"}, {"id": "", "name": "b"}]),
        json!([{"id": {"x": 1}}, 7]),
    ] {
        sb.clear_faults();
        sb.add_fault(FaultSpec {
            method: Some("GET".into()),
            path: "/api/v1/playlists*".into(),
            status: Some(200),
            body: Some(json!({"success": true, "data": {"data": items,
                "meta": {"total": 2, "page": 1, "limit": 100, "totalPages": 1}}})),
            count: 10,
            ..Default::default()
        });
        let l = c.walk("/api/v1/playlists").await.expect("a list");
        assert!(!l.complete, "{items}: an id-less list proves nothing");
        assert_eq!(
            l.items.len(),
            2,
            "{items}: collected items are still returned"
        );
        assert!(l.reason.unwrap().contains("without an id"), "{items}");
    }
    c.logout().await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_doctor_deactivates_nothing_when_the_playlist_list_has_no_ids() {
    // Before the fix, two id-less playlists with total 2 made the list "complete" and every schedule's playlist
    // "deleted": ~40 schedules were deactivated.
    let sb = demo_sandbox().await;
    sb.add_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/playlists*".into(),
        status: Some(200),
        body: Some(
            json!({"success": true, "data": {"data": [{"name": "a"}, {"name": "b"}],
            "meta": {"total": 2, "page": 1, "limit": 100, "totalPages": 1}}}),
        ),
        count: 100,
        ..Default::default()
    });
    let d = tempfile::tempdir().unwrap();
    let o = run(
        d.path(),
        &[
            ("VALIDATOR_BASE_URL", &sb.api_url),
            ("OPS_EMAIL", "ops@example.test"),
            ("OPS_PASSWORD", "ops-demo-password"),
        ],
        &["run", "schedule-doctor", "--dry-run", "--json"],
        Duration::from_secs(30),
    )
    .await;
    let v = one_json_object(&o);
    let types: Vec<&str> = v["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"scan-truncated"), "{types:?}");
    for relational in [
        "deleted_playlist_schedule",
        "coverage_gap",
        "fallback_playlist_invalid",
    ] {
        assert!(
            !types.contains(&relational),
            "{relational} from an id-less list: {types:?}"
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn a_bogus_retry_after_blocks_the_host_for_at_most_an_hour() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ops-ratelimit.json");
    let b = RateBudget::file(
        Limits {
            per_second: 10,
            per_minute: 100,
            per_hour: 1000,
            logins_per_minute: 5,
        },
        p.clone(),
    );
    let before = chrono::Utc::now().timestamp_millis();
    b.block_for(Duration::from_secs(999_999_999));
    let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let until = v["blockedUntil"].as_i64().unwrap();
    assert!(until >= before + 3_599_000, "still blocked: {until}");
    assert!(
        until <= chrono::Utc::now().timestamp_millis() + 3_600_000,
        "blocked past one hour: {until}"
    );
}

#[tokio::test]
async fn a_budget_file_that_cannot_be_written_still_limits_this_process() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ops-ratelimit.json");
    std::fs::create_dir(&p).unwrap(); // a directory where the shared file belongs
    let b = RateBudget::file(
        Limits {
            per_second: 2,
            per_minute: 100,
            per_hour: 1000,
            logins_per_minute: 5,
        },
        p,
    );
    let deadline = Instant::now() + Duration::from_millis(300);
    b.acquire(Admission::Request, deadline).await.unwrap();
    b.acquire(Admission::Request, deadline).await.unwrap();
    assert!(
        b.acquire(Admission::Request, deadline).await.is_err(),
        "a third request in the same second must wait past the deadline"
    );
}

#[test]
fn a_fifo_in_place_of_the_budget_file_does_not_hang_the_admission() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ops-ratelimit.json");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    // A thread of its own: a blocked read cannot be cancelled, so the test fails instead of hanging.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let b = RateBudget::file(
            Limits {
                per_second: 10,
                per_minute: 100,
                per_hour: 1000,
                logins_per_minute: 5,
            },
            p,
        );
        let r = rt.block_on(b.acquire(Admission::Request, Instant::now() + Duration::from_secs(5)));
        let _ = tx.send(r.is_ok());
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Ok(true),
        "admission blocked on the FIFO"
    );
}

#[tokio::test]
async fn toml_errors_name_the_place_but_never_echo_the_value() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unterminated.toml",
            "OPS_EMAIL = \"ops@example.test\"\nOPS_PASSWORD = \"TomlSecret-1\n",
            "line 2",
        ),
        ("bare.toml", "OPS_PASSWORD = TomlSecret-1\n", "line 1"),
        (
            "table.toml",
            "[database]\npassword = \"TomlSecret-1\"\n",
            "a table",
        ),
    ];
    for (name, text, place) in cases {
        let f = d.path().join(name);
        std::fs::write(&f, text).unwrap();
        let o = run(
            d.path(),
            &[],
            &["--config", f.to_str().unwrap(), "config", "check"],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = stderr(&o);
        assert!(err.contains(name) && err.contains(place), "{name}: {err}");
        assert!(
            !err.contains("TomlSecret-1") && !stdout(&o).contains("TomlSecret-1"),
            "{name}: {err}"
        );
    }
    let missing = d.path().join("missing.toml");
    let o = run(
        d.path(),
        &[],
        &["--config", missing.to_str().unwrap(), "config", "check"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
}

#[tokio::test]
async fn missing_credentials_end_an_api_agent_before_anything_is_created() {
    for agent in ["content-lifecycle", "fleet-manager", "schedule-doctor"] {
        let d = tempfile::tempdir().unwrap();
        let o = run(d.path(), &[], &["run", agent], Duration::from_secs(20)).await;
        assert_eq!(o.status.code(), Some(2), "{agent}: {}", stderr(&o));
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(out.contains("no API credentials"), "{agent}: {out}");
        let logs = d.path().join("logs");
        for f in ["ops-audit.jsonl", "ops-state.json"] {
            assert!(!logs.join(f).exists(), "{agent} created {f}");
        }
    }
}

#[tokio::test]
async fn config_check_rejects_process_names_that_could_never_enter_a_command() {
    let d = tempfile::tempdir().unwrap();
    for (var, bad) in [
        ("OPS_PM2_APP_WEB", "vizora-web; touch /tmp/x"),
        ("OPS_PM2_APP_MIDDLEWARE", "-vizora"),
        ("OPS_SYSTEMD_UNIT_REALTIME", "vizora realtime.service"),
    ] {
        let o = run(
            d.path(),
            &[(var, bad)],
            &["config", "check"],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.status.code(), Some(2), "{var}={bad:?}");
        let err = stderr(&o);
        assert!(
            err.contains(var) && err.contains("rejected process name or id"),
            "{var}: {err}"
        );
        assert!(!stdout(&o).contains("configuration OK"), "{var}");
    }
    // A misspelt variable is named as a warning (the check still passes: the environment may hold other tools' keys).
    let o = run(
        d.path(),
        &[("OPS_EMIAL", "ops@example.test"), ("OPS_DRY_RUN", "true")],
        &["config", "check"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("warning: OPS_EMIAL (env) is set but not used"),
        "{out}"
    );
    assert!(
        !out.contains("OPS_DRY_RUN (env) is set but not used"),
        "{out}"
    );
    // Valid names (templated systemd units included) pass.
    let o = run(
        d.path(),
        &[
            ("OPS_PM2_APP_WEB", "vizora-web-2"),
            ("OPS_SYSTEMD_UNIT_WEB", "web@1.service"),
            // "configuration OK" needs the API login too (without it: "INCOMPLETE", tests/config_check.rs).
            ("OPS_EMAIL", "ops@example.test"),
            ("OPS_PASSWORD", "ops-demo-password"),
        ],
        &["config", "check"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("configuration OK"));
}

/// Environment, arguments and the text the error must contain.
type Case<'a> = (&'a [(&'a str, &'a str)], Vec<&'a str>, &'a str);

#[tokio::test]
async fn run_json_prints_one_object_even_when_the_run_cannot_start() {
    let d = tempfile::tempdir().unwrap();
    let bad_toml = d.path().join("bad.toml");
    std::fs::write(&bad_toml, "OPS_DRY_RUN = \n").unwrap();
    let cases: [Case; 3] = [
        (&[], vec!["run", "no-such-agent", "--json"], "unknown agent"),
        (
            &[("OPS_DRY_RUN", "maybe")],
            vec!["run", "fleet-manager", "--json"],
            "OPS_DRY_RUN",
        ),
        (
            &[],
            vec![
                "--config",
                bad_toml.to_str().unwrap(),
                "run",
                "db-maintainer",
                "--json",
            ],
            "bad.toml",
        ),
    ];
    for (vars, args, says) in cases {
        let o = run(d.path(), vars, &args, Duration::from_secs(10)).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let v = one_json_object(&o);
        assert_eq!(v["exitCode"], 2, "{args:?}");
        assert!(
            v["error"].as_str().unwrap().contains(says),
            "{args:?}: {v:#}"
        );
        assert!(stderr(&o).contains(says), "the message is on stderr too");
    }
    assert!(!d.path().join("logs").exists(), "no I/O before validation");
}

#[tokio::test]
async fn status_reports_a_corrupt_state_as_unknown_and_leaves_it_alone() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("logs")).unwrap();
    let corrupt = br#"{"incidents":"x"}"#;
    std::fs::write(state_file(d.path()), corrupt).unwrap();

    let o = run(d.path(), &[], &["status"], Duration::from_secs(10)).await;
    assert_eq!(o.status.code(), Some(3), "unknown (agents.md 1.4)");
    let out = stdout(&o);
    assert!(
        out.contains("System status: UNKNOWN") && out.contains("corrupt"),
        "{out}"
    );
    assert!(!out.contains("HEALTHY"), "{out}");

    let o = run(
        d.path(),
        &[],
        &["status", "--json"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "unknown (agents.md 1.4)");
    let v = one_json_object(&o);
    assert_eq!(v["computedStatus"], "UNKNOWN");
    assert!(v["error"].as_str().unwrap().contains("corrupt"), "{v:#}");

    assert_eq!(
        std::fs::read(state_file(d.path())).unwrap(),
        corrupt,
        "status moves nothing"
    );
    let names: Vec<String> = std::fs::read_dir(d.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["ops-state.json".to_string()], "{names:?}");

    // A missing state still prints pure JSON on stdout: nothing has run, status unknown (exit 3).
    std::fs::remove_file(state_file(d.path())).unwrap();
    let o = run(
        d.path(),
        &[],
        &["status", "--json"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(one_json_object(&o)["neverRun"], true);
}

#[tokio::test]
async fn a_fifo_in_place_of_the_state_file_fails_the_run_instead_of_hanging() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("logs")).unwrap();
    let fifo = state_file(d.path());
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let o = run(
        d.path(),
        &[],
        &["run", "db-maintainer", "--json"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v = one_json_object(&o);
    assert!(
        v["error"].as_str().unwrap().contains("not a regular file"),
        "{v:#}"
    );
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "left in place"
    );
    let o = run(d.path(), &[], &["status"], Duration::from_secs(10)).await;
    assert_eq!(o.status.code(), Some(3), "unreadable state: status unknown");
}

#[tokio::test]
async fn a_directory_as_state_or_audit_file_is_a_configuration_error() {
    let d = tempfile::tempdir().unwrap();
    let dir_path = format!("{}/", d.path().join("state-dir").display());
    for key in ["OPS_STATE_FILE", "OPS_AUDIT_FILE"] {
        for bad in [dir_path.as_str(), "/"] {
            let o = run(
                d.path(),
                &[(key, bad)],
                &["run", "db-maintainer", "--json"],
                Duration::from_secs(10),
            )
            .await;
            assert_eq!(o.status.code(), Some(2), "{key}={bad}");
            let v = one_json_object(&o);
            assert!(v["error"].as_str().unwrap().contains(key), "{v:#}");
        }
    }
    assert!(!d.path().join("logs").exists(), "rejected before any I/O");
}

#[tokio::test]
async fn a_stale_lock_token_cannot_forge_a_log_line() {
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let lock = logs.join("ops-state.json.lock");
    std::fs::write(
        &lock,
        "4242:0:1\n[2026-01-01T00:00:00.000Z] [fleet-manager] INFO forged line",
    )
    .unwrap();
    let f = std::fs::File::options().write(true).open(&lock).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    drop(f);
    let o = run(
        d.path(),
        &[],
        &["run", "db-maintainer"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("reclaiming stale lock"), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("[2026-01-01T00:00:00.000Z]")),
        "a lock file's text became a log line:\n{out}"
    );
    assert!(!lock.exists(), "reclaimed and released");
    assert!(state_file(d.path()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_audit_log_changes_nothing_but_records_the_findings() {
    let sb = demo_sandbox().await;
    let d = tempfile::tempdir().unwrap();
    // A directory where the audit log should be: it cannot be opened for append.
    std::fs::create_dir_all(d.path().join("logs").join("ops-audit.jsonl")).unwrap();
    let vars = [
        ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
        ("OPS_EMAIL", "ops@example.test"),
        ("OPS_PASSWORD", "ops-demo-password"),
    ];
    let o = run(
        d.path(),
        &vars,
        &["run", "schedule-doctor", "--json"],
        Duration::from_secs(60),
    )
    .await;
    let v = one_json_object(&o);
    assert_eq!(v["exitCode"], 2, "{}", stderr(&o));
    let writes: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.starts_with("/api/v1/auth/"))
        .collect();
    assert!(writes.is_empty(), "nothing changed: {writes:?}");
    let state: Value =
        serde_json::from_slice(&std::fs::read(state_file(d.path())).unwrap()).unwrap();
    let open: Vec<&Value> = state["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["agent"] == "schedule-doctor" && i["status"] == "open")
        .collect();
    assert!(!open.is_empty(), "the findings are recorded: {state}");
    assert!(open.iter().any(|i| i["error"] == "audit log not writable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_state_stops_the_run_before_anything_is_done() {
    let sb = demo_sandbox().await;
    let d = tempfile::tempdir().unwrap();
    // A directory where the state file should be: existing but unreadable as a file.
    std::fs::create_dir_all(state_file(d.path())).unwrap();
    let vars = [
        ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
        ("OPS_EMAIL", "ops@example.test"),
        ("OPS_PASSWORD", "ops-demo-password"),
    ];
    let o = run(
        d.path(),
        &vars,
        &["run", "content-lifecycle", "--json"],
        Duration::from_secs(60),
    )
    .await;
    let v = one_json_object(&o);
    assert_eq!(v["exitCode"], 2);
    assert!(
        v["error"].as_str().unwrap_or("").contains("ops-state.json"),
        "{v}"
    );
    assert!(
        sb.requests().is_empty(),
        "no API request was made: {:?}",
        sb.requests()
    );
}
