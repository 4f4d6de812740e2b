//! Log line formats (agents.md 1.5, `OPS_LOG_FORMAT` of 8.2) over the real binary and the in-process sandbox: the
//! default text lines keep their exact shape, `json` gives one parseable object per line with the run's id and span
//! fields, both redact secrets and escape control characters in the formatter, and an invalid value is a
//! configuration error (exit 2).

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use vizora_ops::sandbox::{Sandbox, SandboxOptions};

#[path = "support/bin.rs"]
mod bin;
use bin::{run, stderr, stdout};

/// The sandbox's login password; set as `OPS_PASSWORD` it is a registered secret (agents.md 5.9).
const PASSWORD: &str = "ops-demo-password";

/// Control bytes, a forged line and the password, as an attacker (or a careless user) would put them into a name.
const HOSTILE: &str = "\u{1b}]0;owned\u{7}\r\0\u{9b}31m\n[2026-01-01T00:00:00.000Z] [fleet-manager] INFO forged pw ops-demo-password";

/// The demo tenant with `HOSTILE` appended to every display nickname.
fn hostile_tenant() -> String {
    let mut t: Value = serde_json::from_str(vizora_ops::sandbox::DEMO_FIXTURE).unwrap();
    for d in t["displays"].as_array_mut().unwrap() {
        let old = d["nickname"].as_str().unwrap_or("").to_string();
        d["nickname"] = Value::String(format!("{old}{HOSTILE}"));
    }
    serde_json::to_string(&t).unwrap()
}

async fn sandbox(fixture: &str) -> Sandbox {
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

fn api_vars(sb: &Sandbox, format: Option<&str>) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("VALIDATOR_BASE_URL", sb.api_url.clone()),
        ("OPS_EMAIL", "ops@example.test".into()),
        ("OPS_PASSWORD", PASSWORD.into()),
        ("OPS_RECONNECT_VERIFY_S", "1".into()),
        ("OPS_RATE_PER_SECOND", "1000".into()),
        ("OPS_RATE_PER_MINUTE", "100000".into()),
        ("OPS_RATE_PER_HOUR", "1000000".into()),
    ];
    if let Some(f) = format {
        v.push(("OPS_LOG_FORMAT", f.into()));
    }
    v
}

async fn run_agent(
    dir: &Path,
    vars: &[(&'static str, String)],
    args: &[&str],
) -> std::process::Output {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run(dir, &vars, args, Duration::from_secs(60)).await
}

fn assert_no_raw_controls(what: &str, s: &str) {
    let bad: Vec<char> = s.chars().filter(|c| *c != '\n' && c.is_control()).collect();
    assert!(
        bad.is_empty(),
        "{what} carries raw control characters {bad:?}:\n{s}"
    );
}

/// A text line with its run id and every number (timestamps, durations, "N min ago") blanked, for comparing two runs.
fn normalized(l: &str) -> String {
    let uuid =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let num = regex::Regex::new(r"\d+").unwrap();
    num.replace_all(&uuid.replace_all(l, "<id>"), "0")
        .into_owned()
}

/// Default and `OPS_LOG_FORMAT=text` print the same agents.md 1.5 lines (dry runs: the sandbox is unchanged between
/// them), each `[<ISO ms Z>] [<component>] <LEVEL> <message>`, the run's first line `run <id> start (dry run)` and its
/// last `run <id> done: …`, redacted and escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_text_lines_keep_the_agents_md_format_redacted_and_escaped() {
    let sb = sandbox(&hostile_tenant()).await;
    let d = tempfile::tempdir().unwrap();
    let line = regex::Regex::new(
        r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\] \[[a-z0-9-]+\] (INFO|WARNING|ERROR) ",
    )
    .unwrap();
    // A real run first: its open incidents make the dry runs below log more of the hostile names.
    let o = run_agent(d.path(), &api_vars(&sb, None), &["run", "fleet-manager"]).await;
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        !stdout(&o).contains(PASSWORD),
        "the password reached stdout:\n{}",
        stdout(&o)
    );
    let start =
        regex::Regex::new(r"\[fleet-manager\] INFO run [0-9a-f-]{36} start \(dry run\)$").unwrap();
    let done = regex::Regex::new(
        r"\[fleet-manager\] INFO run [0-9a-f-]{36} done: found=\d+ fixed=\d+ escalated=\d+ resolved=\d+ exit=[01] \(\d+ ms\)$",
    )
    .unwrap();
    let mut outputs = vec![];
    let mut saw_hostile = false;
    for format in [None, Some("text"), Some(" TEXT ")] {
        let o = run_agent(
            d.path(),
            &api_vars(&sb, format),
            &["run", "fleet-manager", "--dry-run"],
        )
        .await;
        let out = stdout(&o);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{format:?}: {out}{}",
            stderr(&o)
        );
        assert_no_raw_controls("stdout", &out);
        assert!(
            !out.contains(PASSWORD),
            "the password reached stdout:\n{out}"
        );
        let logs: Vec<&str> = out.lines().filter(|l| !l.starts_with("  ")).collect();
        assert!(
            logs.iter().all(|l| line.is_match(l)),
            "{format:?}: not a 1.5 line in\n{out}"
        );
        let first = logs.first().expect("log lines");
        assert!(start.is_match(first), "{first}");
        assert!(
            done.is_match(logs.last().unwrap()),
            "{}",
            logs.last().unwrap()
        );
        saw_hostile |= logs
            .iter()
            .any(|l| l.contains("\\x1b]0;owned\\x07\\r\\0\\u{9b}31m") && l.contains("pw ***"));
        outputs.push(logs.iter().map(|l| normalized(l)).collect::<Vec<_>>());
    }
    // The hostile nickname reached the log, escaped and with the password masked: the checks above prove something.
    assert!(
        saw_hostile,
        "the hostile name reached no log line:\n{}",
        outputs[0].join("\n")
    );
    assert_eq!(
        outputs[0], outputs[1],
        "default and OPS_LOG_FORMAT=text differ"
    );
    assert_eq!(
        outputs[0], outputs[2],
        "OPS_LOG_FORMAT is not case-insensitive"
    );
    sb.shutdown().await;
}

/// Checks one JSON log line and returns it parsed.
fn json_line(l: &str) -> Value {
    let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
    let ts = v["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("timestamp: {l}"));
    assert!(ts.ends_with('Z'), "timestamp not UTC: {l}");
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|e| panic!("timestamp not RFC 3339 ({e}): {l}"));
    assert!(
        matches!(v["level"].as_str(), Some("INFO" | "WARNING" | "ERROR")),
        "level: {l}"
    );
    assert!(
        v["agent"].as_str().is_some_and(|a| !a.is_empty()),
        "agent: {l}"
    );
    assert!(v["message"].is_string(), "message: {l}");
    assert!(v["spans"].is_array(), "spans: {l}");
    v
}

/// `OPS_LOG_FORMAT=json`: every log line is one JSON object with timestamp, level, agent, run id, message and the
/// `run` span's fields; the password never appears; control characters are escaped in the message (as in the text
/// format) so no raw control byte is written; with `--json` the lines go to stderr and stdout stays one document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_parse_with_run_id_and_span_fields_and_carry_no_secret_or_raw_control() {
    let sb = sandbox(&hostile_tenant()).await;
    let d = tempfile::tempdir().unwrap();
    let vars = api_vars(&sb, Some("json"));

    // A misspelt variable: its warning is logged before the run starts, outside the `run` span.
    let mut first_vars = vars.clone();
    first_vars.push(("OPS_LOG_FORMATX", "json".into()));
    let o = run_agent(d.path(), &first_vars, &["run", "fleet-manager"]).await;
    let out = stdout(&o);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{out}{}",
        stderr(&o)
    );
    assert_no_raw_controls("stdout", &out);
    assert!(
        !out.contains(PASSWORD),
        "the password reached stdout:\n{out}"
    );
    let mut lines: Vec<Value> = out
        .lines()
        .filter(|l| !l.starts_with("  "))
        .map(json_line)
        .collect();
    let outside = lines.remove(0);
    assert_eq!(outside["agent"], "config", "{outside}");
    assert_eq!(outside["level"], "WARNING", "{outside}");
    assert!(
        outside["message"]
            .as_str()
            .unwrap()
            .starts_with("OPS_LOG_FORMATX (env) is set but not used"),
        "{outside}"
    );
    assert_eq!(outside["runId"], Value::Null, "{outside}");
    assert_eq!(outside["spans"], serde_json::json!([]), "{outside}");
    let start = lines
        .iter()
        .find(|v| v["message"].as_str().unwrap().ends_with(" start"))
        .unwrap_or_else(|| panic!("no start line:\n{out}"));
    let run_id = start["message"]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(run_id.len(), 36, "{start}");
    let last = lines.last().unwrap();
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("run {run_id} done: found=")),
        "{last}"
    );
    for v in &lines {
        // Every line of the run, also those of shared components, carries the run's id and span.
        assert_eq!(v["runId"], Value::String(run_id.clone()), "{v}");
        let span = &v["spans"][0];
        assert_eq!(span["name"], "run", "{v}");
        assert_eq!(span["runId"], Value::String(run_id.clone()), "{v}");
        assert_eq!(span["agent"], "fleet-manager", "{v}");
        assert_eq!(span["dryRun"], false, "{v}");
    }
    assert!(
        lines.iter().any(|v| v["agent"] == "api-client"),
        "shared components keep their name:\n{out}"
    );

    // `--json --dry-run`: stdout is the AgentResult, the JSON log lines are on stderr with dryRun true.
    let o = run_agent(
        d.path(),
        &vars,
        &["run", "fleet-manager", "--json", "--dry-run"],
    )
    .await;
    let doc: Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["agent"], "fleet-manager", "{doc}");
    let err = stderr(&o);
    assert_no_raw_controls("stderr", &err);
    assert!(
        !err.contains(PASSWORD),
        "the password reached stderr:\n{err}"
    );
    let lines: Vec<Value> = err.lines().map(json_line).collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(
        lines.iter().all(|v| v["spans"][0]["dryRun"] == true),
        "{err}"
    );
    // The dry run's alert lines quote the hostile names: escaped like the text format, the password masked.
    let hostile = lines
        .iter()
        .find(|v| {
            v["message"]
                .as_str()
                .unwrap()
                .contains("\\x1b]0;owned\\x07\\r\\0\\u{9b}31m")
        })
        .unwrap_or_else(|| panic!("the hostile name reached no log line:\n{err}"));
    assert!(
        hostile["message"].as_str().unwrap().contains("pw ***"),
        "{hostile}"
    );
    sb.shutdown().await;
}

/// An `OPS_LOG_FORMAT` other than text or json is a configuration error naming the variable and the value:
/// `config check` and `run` exit 2 before any work (no state file written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_log_format_is_a_configuration_error_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let vars = [("OPS_LOG_FORMAT", "yaml")];
    let o = run(
        d.path(),
        &vars,
        &["config", "check"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o)
            .contains("configuration error: OPS_LOG_FORMAT: expected text or json, got \"yaml\""),
        "{}",
        stderr(&o)
    );
    let o = run(
        d.path(),
        &vars,
        &["run", "db-maintainer"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("OPS_LOG_FORMAT"), "{}", stderr(&o));
    assert!(!d.path().join("logs").join("ops-state.json").exists());
    // A valid value passes the same check.
    let o = run(
        d.path(),
        &[("OPS_LOG_FORMAT", "json")],
        &["config", "check"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(!stderr(&o).contains("OPS_LOG_FORMAT"), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains("OPS_LOG_FORMAT (env) is set but not used"),
        "{}",
        stdout(&o)
    );
}
