//! The operator's terminal (issue 9): what the binary prints and keeps. API names carrying control bytes can neither
//! forge log lines nor drive the terminal (agents.md 1.5); API labels are capped before they enter the state and the
//! audit (2.2); a closed stdout ends a command quietly; `status` exits with the monitoring-plugin codes and says when
//! nothing has run (1.4). Every test runs the real binary against the in-process sandbox or real files.

use serde_json::{Value, json};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use vizora_ops::model::{AgentName, Incident, OpsState, Severity};
use vizora_ops::sandbox::{Sandbox, SandboxOptions};

#[path = "support/bin.rs"]
mod bin;
use bin::{cmd, run};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("logs").join("ops-state.json")
}

fn api_vars(sb: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("VALIDATOR_BASE_URL", sb.api_url.clone()),
        ("OPS_EMAIL", "ops@example.test".into()),
        ("OPS_PASSWORD", "ops-demo-password".into()),
        ("OPS_RECONNECT_VERIFY_S", "1".into()),
        ("OPS_CONTENT_DETAIL_READS_PER_RUN", "1000".into()),
        ("OPS_RATE_PER_SECOND", "1000".into()),
        ("OPS_RATE_PER_MINUTE", "100000".into()),
        ("OPS_RATE_PER_HOUR", "1000000".into()),
    ]
}

/// The demo tenant with `rename` applied to every display nickname, content, playlist, group and schedule name.
fn tenant_with_names(rename: impl Fn(&str, &str) -> Option<String>) -> String {
    let mut t: Value = serde_json::from_str(vizora_ops::sandbox::DEMO_FIXTURE).unwrap();
    for (list, key) in [
        ("displays", "nickname"),
        ("content", "name"),
        ("playlists", "name"),
        ("displayGroups", "name"),
        ("schedules", "name"),
    ] {
        for item in t[list].as_array_mut().unwrap() {
            let old = item[key].as_str().unwrap_or("").to_string();
            if let Some(new) = rename(list, &old) {
                item[key] = Value::String(new);
            }
        }
    }
    serde_json::to_string(&t).unwrap()
}

async fn sandbox_with(fixture: &str) -> Sandbox {
    Sandbox::start(
        fixture,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts")
}

/// Control bytes and a forged log line, as an attacker would put them into a name.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}\r\0\u{9b}31m\n[2026-01-01T00:00:00.000Z] [content-lifecycle] INFO run fake done: found=0 fixed=0 escalated=0 resolved=0 exit=0 (1 ms)";

/// A genuine log line of agents.md 1.5: `[<ISO ms Z>] [<component>] <LEVEL> `.
fn is_log_line(l: &str) -> bool {
    let re = regex::Regex::new(
        r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\] \[[a-z0-9-]+\] (INFO|WARNING|ERROR) ",
    )
    .unwrap();
    re.is_match(l)
}

fn assert_no_raw_controls(what: &str, s: &str) {
    let bad: Vec<char> = s.chars().filter(|c| *c != '\n' && c.is_control()).collect();
    assert!(
        bad.is_empty(),
        "{what} carries raw control characters {bad:?}:\n{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_names_with_control_bytes_cannot_forge_log_lines_or_drive_the_terminal() {
    let sb = sandbox_with(&tenant_with_names(|_, old| Some(format!("{old}{HOSTILE}")))).await;
    let d = tempfile::tempdir().unwrap();
    let vars = api_vars(&sb);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut saw_hostile = false;
    for agent in ["fleet-manager", "content-lifecycle", "schedule-doctor"] {
        let o = run(d.path(), &vars, &["run", agent], Duration::from_secs(60)).await;
        let out = text(&o.stdout);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{agent}: {out}{}",
            text(&o.stderr)
        );
        assert_no_raw_controls(agent, &out);
        for l in out.lines() {
            // Log lines, then the run's report lines (two spaces); nothing else, and never the forged line.
            assert!(
                is_log_line(l) || l.starts_with("  "),
                "{agent}: a stdout line is neither a log line nor a report line: {l:?}"
            );
            assert!(
                !l.trim_start().starts_with("[2026-01-01T00:00:00.000Z]"),
                "{agent}: forged line: {l:?}"
            );
        }
        saw_hostile |= out.contains("\\x1b]0;owned\\x07\\r\\0\\u{9b}31m\\n[2026-01-01");
        // `--json`: stdout stays one valid JSON document, the log on stderr stays one line per message.
        let o = run(
            d.path(),
            &vars,
            &["run", agent, "--json", "--dry-run"],
            Duration::from_secs(60),
        )
        .await;
        let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
        assert!(v.is_object());
        let err = text(&o.stderr);
        assert_no_raw_controls(agent, &err);
        assert!(err.lines().all(is_log_line), "{agent} stderr:\n{err}");
    }
    assert!(
        saw_hostile,
        "the hostile names reached no output: the test proves nothing"
    );

    // `status` text prints incident messages (API names) through the same escaping.
    let o = run(d.path(), &[], &["status"], Duration::from_secs(10)).await;
    let out = text(&o.stdout);
    assert_no_raw_controls("status", &out);
    assert!(out.contains("\\x1b"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("[2026-01-01")), "{out}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_megabyte_api_names_stay_capped_in_state_and_audit() {
    let huge = |c: char| std::iter::repeat_n(c, 2 * 1024 * 1024).collect::<String>();
    // Four content items (two expired, two orphaned: archived, so in actions and the audit), three schedules
    // (deactivated or overlapping) and a few displays (fleet incidents) get 2 MB multi-byte names: the cap must cut
    // on a char boundary.
    const CONTENT: [&str; 4] = [
        "Summer Sale 2026 - Video (15s)",
        "Summer Events Calendar 2026",
        "Easter Opening Hours 2026",
        "Spring Walking Festival Poster",
    ];
    const SCHEDULES: [&str; 3] = [
        "Summer Sale 2026 - Brand Wall",
        "Staff Training Loop",
        "Night Shift Notices",
    ];
    let fixture = tenant_with_names(|list, old| match list {
        "content" if CONTENT.contains(&old) => Some(huge('é')),
        "schedules" if SCHEDULES.contains(&old) => Some(huge('ß')),
        "displays" if old.contains("York") => Some(huge('ß')),
        _ => None,
    });
    let sb = sandbox_with(&fixture).await;
    let d = tempfile::tempdir().unwrap();
    let vars = api_vars(&sb);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for agent in [
        "fleet-manager",
        "content-lifecycle",
        "schedule-doctor",
        "ops-reporter",
    ] {
        let o = run(d.path(), &vars, &["run", agent], Duration::from_secs(120)).await;
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{agent}: {}{}",
            text(&o.stderr),
            text(&o.stdout).chars().take(4000).collect::<String>()
        );
        assert!(
            o.stdout.len() < 256 * 1024,
            "{agent} printed {} bytes",
            o.stdout.len()
        );
    }
    let state_len = std::fs::metadata(state_file(d.path())).unwrap().len();
    let audit_len = std::fs::metadata(d.path().join("logs/ops-audit.jsonl"))
        .unwrap()
        .len();
    assert!(state_len < 512 * 1024, "state file is {state_len} bytes");
    assert!(audit_len < 512 * 1024, "audit log is {audit_len} bytes");
    let st: Value = serde_json::from_slice(&std::fs::read(state_file(d.path())).unwrap()).unwrap();
    let capped = "…";
    let incidents = st["incidents"].as_array().unwrap();
    assert!(
        incidents.iter().any(|i| i["message"]
            .as_str()
            .unwrap()
            .contains(&format!("ßß{capped}"))),
        "no incident names a capped display or schedule: the test proves nothing"
    );
    let actions = st["recentRemediations"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a["action"]
            .as_str()
            .unwrap()
            .contains(&format!("éé{capped}"))),
        "no archive action names a capped content item: {actions:#?}"
    );
    // Each label is at most 200 characters: a message naming two (an overlap) stays far below 2 000.
    for i in incidents {
        let m = i["message"].as_str().unwrap();
        assert!(m.chars().count() < 2_000, "{} chars: {}", m.len(), i["id"]);
        assert!(!m.contains(&"ß".repeat(200)), "{}", i["id"]);
    }
    sb.shutdown().await;
}

/// A pipe whose read end is already closed: the child's first write to stdout fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe() fills two valid descriptors; each is owned exactly once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] and fds[1] are open descriptors owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

async fn run_into_closed_pipe(dir: &Path, args: &[&str]) -> Output {
    let child = cmd(dir, &[])
        .args(args)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output();
    tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .expect("finishes")
        .expect("runs")
}

#[tokio::test]
async fn a_closed_stdout_ends_every_command_quietly_with_its_own_exit_code() {
    let d = tempfile::tempdir().unwrap();
    // run: its log lines and report go nowhere, the run still completes and records its result.
    let o = run_into_closed_pipe(d.path(), &["run", "db-maintainer"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stderr), "");
    assert!(state_file(d.path()).exists(), "the run completed");
    for (args, code) in [
        (&["status", "--json"][..], 0),
        (&["status"][..], 0),
        (&["config", "check"][..], 0),
        (&["deploy", "pm2"][..], 0),
        (&["run", "db-maintainer", "--json"][..], 0),
    ] {
        let o = run_into_closed_pipe(d.path(), args).await;
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o.stderr));
        // `--json` keeps its log lines on stderr; nothing is said about the pipe, nothing panics.
        let err = text(&o.stderr);
        assert!(
            !err.contains("panicked") && !err.to_lowercase().contains("broken pipe"),
            "{args:?}: {err}"
        );
    }
    // A command whose code is not 0 keeps it.
    let e = tempfile::tempdir().unwrap();
    let o = run_into_closed_pipe(e.path(), &["status"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
}

fn write_state(dir: &Path, incidents: Vec<Incident>) {
    let now = chrono::Utc::now();
    let mut st = OpsState::empty(now);
    st.incidents = incidents;
    st.system_status = st.computed_status();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(
        state_file(dir),
        serde_json::to_vec_pretty(&st.to_value()).unwrap(),
    )
    .unwrap();
}

fn incident(kind: &str, sev: Severity) -> Incident {
    Incident::new(
        AgentName::FleetManager,
        kind,
        sev,
        "display",
        "d1",
        "Display \"Lobby\" offline",
        "reload",
        chrono::Utc::now(),
    )
}

#[tokio::test]
async fn status_without_a_state_file_says_nothing_has_run_and_exits_3() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &[], &["status"], Duration::from_secs(10)).await;
    assert_eq!(o.status.code(), Some(3));
    let out = text(&o.stdout);
    assert!(out.contains("nothing has run yet"), "{out}");
    assert!(!out.contains("HEALTHY"), "{out}");
    let o = run(
        d.path(),
        &[],
        &["status", "--json"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(o.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["systemStatus"], Value::Null, "{v:#}");
    assert_eq!(v["neverRun"], json!(true), "{v:#}");
    assert!(!state_file(d.path()).exists(), "status creates nothing");
}

#[tokio::test]
async fn status_exit_code_is_0_healthy_1_degraded_2_critical() {
    let d = tempfile::tempdir().unwrap();
    for (incidents, code, word) in [
        (vec![], 0, "HEALTHY"),
        (
            vec![incident("display_never_paired", Severity::Info)],
            0,
            "HEALTHY",
        ),
        (
            vec![incident("display_offline", Severity::Warning)],
            1,
            "DEGRADED",
        ),
        (
            vec![
                incident("display_offline", Severity::Warning),
                incident("location_offline", Severity::Critical),
            ],
            2,
            "CRITICAL",
        ),
    ] {
        write_state(d.path(), incidents);
        let o = run(d.path(), &[], &["status"], Duration::from_secs(10)).await;
        assert_eq!(o.status.code(), Some(code), "{word}: {}", text(&o.stdout));
        assert!(text(&o.stdout).contains(&format!("System status: {word}")));
        let o = run(
            d.path(),
            &[],
            &["status", "--json"],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.status.code(), Some(code), "{word}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["computedStatus"], word);
        assert_eq!(v["neverRun"], json!(false));
    }
}

/// The count in `line` after `word ` (`fixed 1` → 1).
fn count_after(line: &str, word: &str) -> u32 {
    let at = line
        .find(&format!("{word} "))
        .unwrap_or_else(|| panic!("no {word:?} in {line}"));
    line[at + word.len() + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {word:?} in {line}"))
}

#[tokio::test]
async fn demo_counts_agree_and_incident_types_are_in_human_words() {
    let d = tempfile::tempdir().unwrap();
    let o = run(
        d.path(),
        &[],
        &["demo", "--dir", d.path().join("demo").to_str().unwrap()],
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let header = out
        .lines()
        .find(|l| l.starts_with("== health-guardian"))
        .unwrap_or_else(|| panic!("{out}"));
    let alert = out
        .lines()
        .find(|l| l.contains("FIXED (health-guardian)"))
        .unwrap_or_else(|| panic!("{out}"));
    // One restart fixed the web service and closed two incidents: the summary and the alert say the same numbers.
    assert_eq!(count_after(header, "fixed"), 1, "{header}");
    assert_eq!(count_after(header, "closed"), 2, "{header}");
    assert_eq!(
        count_after(header, "found"),
        count_after(header, "closed"),
        "{header}"
    );
    assert!(
        alert.contains(&format!(
            "{} verified fix(es) closed {} incident(s)",
            count_after(header, "fixed"),
            count_after(header, "closed")
        )),
        "{alert}\n{header}"
    );
    let closed_lines = out
        .lines()
        .filter(|l| l.contains(": closed by the verified fix"))
        .count() as u32;
    assert_eq!(closed_lines, count_after(header, "closed"), "{out}");
    // Human words on screen: no catalogue type id anywhere in the demo output (report lines, the "alert names"
    // line, the captured alerts).
    for id in [
        "deleted_playlist_schedule",
        "past_end_schedule",
        "no_target_schedule",
        "empty_playlist_schedule",
        "schedule_overlap",
        "coverage_gap",
        "service-down",
        "pm2-errored",
        "schedule-playlist-deleted",
        "display_offline",
        "display_never_paired",
        "location_offline",
        "no_content",
        "storage_high",
        "oversized_file",
        "missing_thumbnail",
        "expired_content",
        "orphaned_content",
        "db-not-configured",
        "backup-not-configured",
        "fleet-manager:",
        "content-lifecycle:",
        "schedule-doctor:",
    ] {
        for l in out.lines() {
            assert!(!l.contains(id), "raw type {id} on screen: {l}");
        }
    }
    assert!(
        out.contains("[slack] Vizora Ops: CRITICAL (was HEALTHY) - "),
        "{out}"
    );
    assert!(!out.contains("— (was"), "{out}");
}

#[tokio::test]
async fn rejected_process_name_log_line_gives_the_real_reason_not_always_characters_outside() {
    // `--help` has only allowed characters: the reason is its leading '-', which the log line must say.
    let sb = sandbox_with(vizora_ops::sandbox::DEMO_FIXTURE).await;
    let d = tempfile::tempdir().unwrap();
    let mw = format!("{}/api/v1/health/ready", sb.api_url);
    let rt = format!("{}/api/health/ready", sb.realtime_url);
    let web = format!("{}/", sb.web_url);
    let vars = [
        ("OPS_PROCESS_MANAGER", "sandbox"),
        ("OPS_SANDBOX_CONTROL_URL", sb.control_url.as_str()),
        ("OPS_MIDDLEWARE_PROBE_URL", mw.as_str()),
        ("OPS_REALTIME_PROBE_URL", rt.as_str()),
        ("OPS_WEB_PROBE_URL", web.as_str()),
        ("OPS_HOST_MEMORY_THRESHOLD_PCT", "100"),
        ("OPS_PM2_APP_WEB", "--help"),
    ];
    let o = run(
        d.path(),
        &vars,
        &["run", "health-guardian"],
        Duration::from_secs(60),
    )
    .await;
    // Log lines go to stdout or stderr depending on the level routing: look at both.
    let err = format!("{}{}", text(&o.stdout), text(&o.stderr));
    let line = err
        .lines()
        .find(|l| l.contains("rejected process name or id for web"))
        .unwrap_or_else(|| panic!("no rejection line in {err}"));
    assert!(line.contains("starts with '-'"), "{line}");
    assert!(!line.contains("characters outside"), "{line}");
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("rejected process name or id for"))
            .count(),
        1,
        "{err}"
    );
}
