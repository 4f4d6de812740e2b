//! Hostile state-dir files (issue 9, "locks, state file, symlinks"; agents.md 4.1–4.8, 5.5): regression tests for
//! defects found by a hostile tester, each against real files and the real binary or library:
//!
//! * a lock path that can never be taken (a directory, an unwritable or immutable dir, a stale lock that cannot be
//!   removed) made runs retry forever, with a WARNING every 100 ms or a tight "reclaiming stale lock" loop;
//! * one malformed element of the shared state file had the whole file quarantined (every incident and `lastRun`
//!   lost);
//! * a symlinked state file was silently replaced by a regular file; the audit log followed symlinks and kept a
//!   wider mode.

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime};
use vizora_ops::state::audit::{AuditLog, MutationLine};
use vizora_ops::state::lock::{FileLock, LockError};
use vizora_ops::vizora::budget::{Admission, BudgetError, Limits, RateBudget};

#[path = "support/bin.rs"]
mod bin;
use bin::{demo_sandbox, run};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn error_lines(o: &Output) -> Vec<String> {
    text(o)
        .lines()
        .filter(|l| l.contains("] ERROR "))
        .map(String::from)
        .collect()
}

fn logs(dir: &Path) -> PathBuf {
    dir.join("logs")
}

fn state_file(dir: &Path) -> PathBuf {
    logs(dir).join("ops-state.json")
}

/// Sets a file's mtime `secs` seconds in the past (a lock older than 30 s is stale, agents.md 4.2).
fn age(p: &Path, secs: u64) {
    let f = std::fs::File::open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

/// Makes `dir` refuse new and removed entries until dropped: mode 0555 for a normal user; for root (whom modes do not
/// stop) the ext4/tmpfs immutable flag, set through the `FS_IOC_SETFLAGS` ioctl (no external program).
struct Unwritable {
    dir: PathBuf,
    flags: Option<libc::c_long>,
}

const FS_IMMUTABLE_FL: libc::c_long = 0x10;

fn ioctl_flags(dir: &Path, set: Option<libc::c_long>) -> libc::c_long {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).unwrap();
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read or write one c_long through a valid pointer on an open descriptor.
    unsafe {
        if let Some(v) = set {
            flags = v;
            assert_eq!(
                libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags),
                0,
                "FS_IOC_SETFLAGS on {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        } else {
            assert_eq!(
                libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags),
                0,
                "FS_IOC_GETFLAGS on {}: {}",
                dir.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    flags
}

impl Unwritable {
    fn new(dir: &Path) -> Unwritable {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let old = ioctl_flags(dir, None);
            ioctl_flags(dir, Some(old | FS_IMMUTABLE_FL));
            Unwritable {
                dir: dir.to_path_buf(),
                flags: Some(old),
            }
        } else {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            Unwritable {
                dir: dir.to_path_buf(),
                flags: None,
            }
        }
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        match self.flags {
            Some(old) => {
                ioctl_flags(&self.dir, Some(old));
            }
            None => {
                let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
}

fn limits() -> Limits {
    Limits {
        per_second: 10,
        per_minute: 100,
        per_hour: 1000,
        logins_per_minute: 5,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Lock errors: fail once, fast, without flooding.

#[test]
fn lock_path_that_is_a_directory_or_symlink_fails_at_once_instead_of_spinning() {
    let d = tempfile::tempdir().unwrap();
    let dir_lock = d.path().join("a.json.lock");
    std::fs::create_dir(&dir_lock).unwrap();
    age(&dir_lock, 120); // "stale": the old code tried remove_file on it in a tight loop
    let link_lock = d.path().join("b.json.lock");
    std::os::unix::fs::symlink(d.path().join("nowhere"), &link_lock).unwrap();
    for (p, what) in [(&dir_lock, "a directory"), (&link_lock, "a symbolic link")] {
        let t0 = Instant::now();
        let e = FileLock::acquire(p, Duration::from_secs(5)).unwrap_err();
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "{what}: {:?}",
            t0.elapsed()
        );
        assert!(matches!(e, LockError::Io { .. }), "{what}: {e}");
        assert!(e.to_string().contains(what), "{e}");
    }
    assert!(dir_lock.is_dir(), "left in place");
}

#[test]
fn stale_lock_that_cannot_be_removed_is_a_lock_failure_not_a_tight_loop() {
    let d = tempfile::tempdir().unwrap();
    let lock = d.path().join("s.json.lock");
    std::fs::write(&lock, "4242:0:1").unwrap();
    age(&lock, 120);
    let _ro = Unwritable::new(d.path());
    let t0 = Instant::now();
    let e = FileLock::acquire(&lock, Duration::from_secs(5)).unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert!(matches!(e, LockError::Io { .. }), "{e}");
    assert!(
        e.to_string().contains("cannot remove the stale lock"),
        "{e}"
    );
}

#[tokio::test]
async fn rate_budget_lock_that_cannot_be_created_fails_the_admission_at_once() {
    let d = tempfile::tempdir().unwrap();
    // (a) a directory at the lock path, (b) a state dir where nothing can be created.
    let a = d.path().join("a");
    std::fs::create_dir_all(a.join("ops-ratelimit.json.lock")).unwrap();
    let b = d.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    let _ro = Unwritable::new(&b);
    for dir in [&a, &b] {
        let budget = RateBudget::file(limits(), dir.join("ops-ratelimit.json"));
        assert!(matches!(budget.check(), Err(BudgetError::Lock(_))));
        let t0 = Instant::now();
        let r = budget
            .acquire(Admission::Request, Instant::now() + Duration::from_secs(30))
            .await;
        assert!(
            matches!(&r, Err(BudgetError::Lock(m)) if m.contains("ops-ratelimit.json.lock")),
            "{r:?}"
        );
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "{:?}",
            t0.elapsed()
        );
        // A 429 block is still kept by this process when the shared file cannot take it.
        budget.block_for(Duration::from_secs(30));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_budget_lock_directory_ends_the_run_with_exit_2_and_one_error() {
    let sb = demo_sandbox().await;
    let d = tempfile::tempdir().unwrap();
    let lock = logs(d.path()).join("ops-ratelimit.json.lock");
    std::fs::create_dir_all(&lock).unwrap();
    age(&lock, 120);
    let t0 = Instant::now();
    let o = run(
        d.path(),
        &[
            ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
            ("OPS_EMAIL", "ops@example.test"),
            ("OPS_PASSWORD", "ops-demo-password"),
            ("OPS_RATE_LIMIT_BACKEND", "file"),
            ("OPS_LOCK_TIMEOUT_MS", "2000"),
        ],
        &["run", "fleet-manager"],
        Duration::from_secs(30),
    )
    .await;
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let errors = error_lines(&o);
    assert_eq!(errors.len(), 1, "{}", text(&o));
    assert!(errors[0].contains("ops-ratelimit.json.lock"), "{errors:?}");
    assert!(text(&o).lines().count() <= 5, "{}", text(&o));
    assert!(sb.requests().is_empty(), "{:?}", sb.requests());
    assert!(!state_file(d.path()).exists(), "no write");
    sb.shutdown().await;
}

#[tokio::test]
async fn state_lock_directory_or_unwritable_state_dir_ends_the_run_with_exit_2_and_one_error() {
    // (a) a stale directory at ops-state.json.lock (the tight "reclaiming stale lock" loop);
    let d = tempfile::tempdir().unwrap();
    let lock = logs(d.path()).join("ops-state.json.lock");
    std::fs::create_dir_all(&lock).unwrap();
    age(&lock, 120);
    // (b) an existing, readable state in a dir where no lock can be created (EACCES / EPERM).
    let e = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs(e.path())).unwrap();
    let before =
        r#"{"systemStatus":"HEALTHY","lastRun":{"fleet-manager":"2026-01-01T00:00:00.000Z"}}"#;
    std::fs::write(state_file(e.path()), before).unwrap();
    // The single-instance guard file exists already (it is opened, never created, in an unwritable dir).
    std::fs::write(logs(e.path()).join("ops-run-db-maintainer.lock"), "").unwrap();
    let _ro = Unwritable::new(&logs(e.path()));
    for (dir, what) in [(d.path(), "directory"), (e.path(), "unwritable dir")] {
        let t0 = Instant::now();
        let o = run(
            dir,
            &[("OPS_LOCK_TIMEOUT_MS", "2000")],
            &["run", "db-maintainer"],
            Duration::from_secs(30),
        )
        .await;
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            t0.elapsed()
        );
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(&o));
        let errors = error_lines(&o);
        assert_eq!(errors.len(), 1, "{what}: {}", text(&o));
        assert!(errors[0].contains("ops-state.json.lock"), "{errors:?}");
        assert!(text(&o).lines().count() <= 5, "{what}: {}", text(&o));
    }
    assert!(lock.is_dir(), "left in place");
    assert!(!state_file(d.path()).exists(), "no write");
    assert_eq!(
        std::fs::read_to_string(state_file(e.path())).unwrap(),
        before
    );
}

#[test]
fn repeated_warnings_are_written_at_most_once_a_second_per_cause() {
    use vizora_ops::logging::warn_every;
    let cause = format!("test-cause-{}", std::process::id());
    let t0 = Instant::now();
    let mut written = 0;
    while t0.elapsed() < Duration::from_millis(2_300) {
        if warn_every("test", &cause, "repeated") {
            written += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!((2..=3).contains(&written), "{written} lines in 2.3 s");
    assert!(warn_every(
        "test",
        &format!("{cause}-other"),
        "another cause is not held back"
    ));
}

// ---------------------------------------------------------------------------------------------------------------
// 3. One malformed element keeps the rest of the state.

fn good_incident(n: usize) -> Value {
    json!({"id": format!("fleet-manager:display_offline:d{n}"), "agent": "fleet-manager",
        "type": "display_offline", "severity": "warning", "target": "display", "targetId": format!("d{n}"),
        "detected": "2026-12-01T00:00:00.000Z", "message": "offline", "remediation": "reload",
        "status": "open", "attempts": 1})
}

#[tokio::test]
async fn one_malformed_state_element_is_kept_verbatim_instead_of_wiping_the_state() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs(d.path())).unwrap();
    let mut incidents: Vec<Value> = (0..32).map(good_incident).collect();
    let mut numeric_id = good_incident(100);
    numeric_id["id"] = json!(12345);
    let mut epoch_resolved = good_incident(101);
    epoch_resolved["status"] = json!("resolved");
    epoch_resolved["resolvedAt"] = json!(1_765_000_000_000u64);
    let mut text_attempts = good_incident(102);
    text_attempts["attempts"] = json!("3");
    let malformed = vec![numeric_id, epoch_resolved, text_attempts, Value::Null];
    incidents.extend(malformed.iter().cloned());
    let odd_time = json!({"agent": "fleet-manager", "timestamp": "yesterday-ish", "action": "Reload display",
        "target": "display", "targetId": "d1", "method": "POST", "success": true});
    let doc = json!({
        "systemStatus": "DEGRADED",
        "lastUpdated": "2026-12-01T00:00:00.000Z",
        "lastRun": {"fleet-manager": "2026-12-01T00:00:00.000Z", "config-drift-detector": "2026-12-01T00:01:00.000Z"},
        "incidents": incidents,
        "recentRemediations": [null, odd_time],
        "agentResults": {"config-drift-detector": {"agent": "config-drift-detector", "custom": [1, 2]}},
        "tsOnlyKey": {"kept": true}
    });
    std::fs::write(state_file(d.path()), serde_json::to_vec(&doc).unwrap()).unwrap();

    let o = run(
        d.path(),
        &[],
        &["run", "db-maintainer"],
        Duration::from_secs(60),
    )
    .await;
    assert_ne!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    let verbatim: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("kept verbatim"))
        .collect();
    assert_eq!(verbatim.len(), 1, "reported once:\n{out}");
    assert!(
        verbatim[0].contains("] ERROR ") && verbatim[0].contains("5 elements"),
        "{out}"
    );
    let names: Vec<String> = std::fs::read_dir(logs(d.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".corrupt-")), "{names:?}");

    let st: Value = serde_json::from_slice(&std::fs::read(state_file(d.path())).unwrap()).unwrap();
    let incs = st["incidents"].as_array().unwrap();
    for n in 0..32 {
        assert!(incs.contains(&good_incident(n)), "incident d{n} survives");
    }
    for m in &malformed {
        assert!(incs.contains(m), "kept verbatim: {m}");
    }
    let rems = st["recentRemediations"].as_array().unwrap();
    assert!(rems.contains(&Value::Null), "{rems:?}");
    assert!(
        rems.contains(&odd_time),
        "a remediation with an unparseable timestamp is kept: {rems:?}"
    );
    assert_eq!(st["lastRun"]["fleet-manager"], "2026-12-01T00:00:00.000Z");
    assert_eq!(
        st["lastRun"]["config-drift-detector"],
        "2026-12-01T00:01:00.000Z"
    );
    assert!(st["lastRun"]["db-maintainer"].is_string());
    assert_eq!(
        st["agentResults"]["config-drift-detector"]["custom"],
        json!([1, 2])
    );
    assert_eq!(
        st["tsOnlyKey"],
        json!({"kept": true}),
        "unknown top-level keys survive a write"
    );
    assert_eq!(
        st["systemStatus"], "DEGRADED",
        "the good warning incidents still count"
    );

    // status copes: the text view counts the typed incidents, --json shows the file with the verbatim elements.
    let o = run(
        d.path(),
        &[],
        &["status", "--json"],
        Duration::from_secs(20),
    )
    .await;
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(v["computedStatus"], "DEGRADED");
    assert!(v["incidents"].as_array().unwrap().contains(&Value::Null));
    // `status` exits by the computed status (agents.md 1.4): DEGRADED is 1, and it did not fail on the elements.
    let o = run(d.path(), &[], &["status"], Duration::from_secs(20)).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

// ---------------------------------------------------------------------------------------------------------------
// 6. Symlinks and the audit log's mode.

#[tokio::test]
async fn a_symlinked_state_file_is_refused_and_never_replaced_by_a_regular_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs(d.path())).unwrap();
    let real = d.path().join("elsewhere.json");
    let body =
        r#"{"systemStatus":"HEALTHY","lastRun":{"fleet-manager":"2026-01-01T00:00:00.000Z"}}"#;
    std::fs::write(&real, body).unwrap();
    std::os::unix::fs::symlink(&real, state_file(d.path())).unwrap();
    let o = run(
        d.path(),
        &[],
        &["run", "db-maintainer"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let errors = error_lines(&o);
    assert_eq!(errors.len(), 1, "{}", text(&o));
    assert!(errors[0].contains("symbolic link"), "{errors:?}");
    assert!(
        std::fs::symlink_metadata(state_file(d.path()))
            .unwrap()
            .file_type()
            .is_symlink(),
        "still a link"
    );
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        body,
        "target untouched"
    );
    // An unreadable (here: refused) state file is "unknown" for `status`: exit 3 (agents.md 1.4).
    let o = run(d.path(), &[], &["status"], Duration::from_secs(20)).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // The generic atomic write refuses a symlink too (outbox, content cache, rate budget).
    let e = vizora_ops::state::atomic_write(&state_file(d.path()), b"{}", 0o644).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), body);
}

fn line() -> MutationLine {
    MutationLine::new(
        "r1",
        "fleet-manager",
        "Reload display",
        "POST",
        "display",
        "d1",
        chrono::Utc::now(),
        json!({}),
        false,
    )
}

#[test]
fn audit_log_refuses_a_symlink_and_narrows_a_wider_mode_to_0600() {
    let d = tempfile::tempdir().unwrap();
    // A symlink at the audit path: nothing is appended through it.
    let target = d.path().join("target.jsonl");
    std::fs::write(&target, "").unwrap();
    let linked = d.path().join("linked-audit.jsonl");
    std::os::unix::fs::symlink(&target, &linked).unwrap();
    let log = AuditLog::new(&linked);
    let e = log.check_writable().unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(log.append(&line()).is_err());
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"",
        "nothing written through the link"
    );
    // An existing file with mode 0644 is narrowed to 0600 on the next open.
    let p = d.path().join("ops-audit.jsonl");
    std::fs::write(&p, "").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = AuditLog::new(&p);
    log.append(&line()).unwrap();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(log.read_all().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_audit_log_changes_nothing_and_exits_2() {
    let sb = demo_sandbox().await;
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(logs(d.path())).unwrap();
    let target = d.path().join("elsewhere.jsonl");
    std::fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, logs(d.path()).join("ops-audit.jsonl")).unwrap();
    let o = run(
        d.path(),
        &[
            ("VALIDATOR_BASE_URL", sb.api_url.as_str()),
            ("OPS_EMAIL", "ops@example.test"),
            ("OPS_PASSWORD", "ops-demo-password"),
        ],
        &["run", "schedule-doctor"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("symbolic link"), "{}", text(&o));
    let writes: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.starts_with("/api/v1/auth/"))
        .collect();
    assert!(writes.is_empty(), "nothing changed: {writes:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    sb.shutdown().await;
}
