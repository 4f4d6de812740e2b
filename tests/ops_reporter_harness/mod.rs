//! Shared harness of the ops-reporter integration tests (agents.md 6.5, 7): a local Slack webhook receiver that
//! records every POST and can answer 200, 500, 429 with `Retry-After`, or hang; a state file prepared per scenario;
//! a `ManualClock`; runs of the whole agent through `runner::run_agent`; the real SMTP sinks of `scripts/test.sh`.
#![allow(dead_code)]

#[path = "../support/mod.rs"]
pub mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use vizora_ops::clock::ManualClock;
use vizora_ops::config::{Config, Source};
use vizora_ops::model::{
    AgentName, Incident, IncidentStatus, OpsState, RemediationAction, Severity,
};
use vizora_ops::runner::{RunOptions, RunReport, Wiring, run_agent};

/// How the Slack receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Ok,
    Fail500,
    /// 429 with `Retry-After: 30`.
    Fail429,
    /// Never answers within the test's notify timeout.
    Hang,
    /// Answers 200 after this many milliseconds.
    SlowOk(u64),
}

/// One POST the receiver saw.
#[derive(Debug, Clone)]
pub struct Post {
    pub body: Value,
    pub answered: u16,
}

#[derive(Default)]
pub struct Rec {
    mode: Mutex<Option<Mode>>,
    posts: Mutex<Vec<Post>>,
}

impl Rec {
    /// Sets how the next POSTs are answered.
    pub fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = Some(m);
    }
    /// Every POST so far.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
    /// Bodies of the POSTs answered 200 (delivered messages).
    pub fn delivered(&self) -> Vec<Value> {
        self.posts()
            .into_iter()
            .filter(|p| p.answered == 200)
            .map(|p| p.body)
            .collect()
    }
}

async fn handle(State(rec): State<Arc<Rec>>, _uri: Uri, body: Bytes) -> Response {
    let mode = rec.mode.lock().unwrap().unwrap_or(Mode::Ok);
    let code = match mode {
        Mode::Ok | Mode::SlowOk(_) => 200,
        Mode::Fail500 => 500,
        Mode::Fail429 => 429,
        Mode::Hang => 0,
    };
    rec.posts.lock().unwrap().push(Post {
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: code,
    });
    match mode {
        Mode::Ok => (StatusCode::OK, "ok").into_response(),
        Mode::SlowOk(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            (StatusCode::OK, "ok").into_response()
        }
        Mode::Fail500 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Mode::Fail429 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "30")],
            "rate_limited",
        )
            .into_response(),
        Mode::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            (StatusCode::OK, "late").into_response()
        }
    }
}

/// Starts a Slack webhook receiver on a free loopback port: (`<base>/hook`, recorder).
pub async fn slack_receiver() -> (String, Arc<Rec>) {
    let rec = Arc::new(Rec::default());
    let app = Router::new().fallback(handle).with_state(rec.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    (format!("http://{addr}/hook"), rec)
}

/// A test instant with millisecond precision (timestamps round-trip exactly).
pub fn t0() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// An incident of `agent` detected at `detected`.
pub fn incident(
    agent: AgentName,
    kind: &str,
    severity: Severity,
    target_id: &str,
    message: &str,
    detected: DateTime<Utc>,
) -> Incident {
    Incident::new(
        agent,
        kind,
        severity,
        "display",
        target_id,
        message,
        "check the display",
        detected,
    )
}

/// A remediation action of health-guardian on `target_id`.
pub fn remediation(
    target_id: &str,
    action: &str,
    at: DateTime<Utc>,
    verified: bool,
) -> RemediationAction {
    RemediationAction {
        agent: "health-guardian".into(),
        timestamp: vizora_ops::model::ts(at),
        action: action.into(),
        target: "service".into(),
        target_id: target_id.into(),
        method: "pm2 restart".into(),
        endpoint: None,
        before: None,
        after: None,
        success: true,
        error: None,
        verified: Some(verified),
        run_id: None,
        extra: Default::default(),
    }
}

/// A recipient unique to one test, so parallel tests sharing an SMTP sink find their own messages.
pub fn unique_rcpt(tag: &str) -> String {
    format!("ops-{tag}-{}@example.test", uuid::Uuid::new_v4().simple())
}

/// The messages an SMTP sink stored for `rcpt` (`{mail_from, rcpt_tos, data}` each).
pub fn stored_for(dir: &Path, rcpt: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    names.sort();
    for p in names {
        let Ok(b) = std::fs::read(&p) else { continue };
        let Ok(v) = serde_json::from_slice::<Value>(&b) else {
            continue;
        };
        if v["rcpt_tos"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r.as_str() == Some(rcpt)))
        {
            out.push(v);
        }
    }
    out
}

/// The plain-text part of a stored message.
pub fn mail_text(stored: &Value) -> String {
    use mail_parser::{MessageParser, PartType};
    let raw = stored["data"].as_str().unwrap_or_default();
    let msg = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("parsable message");
    msg.parts
        .iter()
        .find_map(|p| match &p.body {
            PartType::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// One test scenario: its own directory, clock, Slack receiver and configuration pairs.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub hook: String,
    pub slack: Arc<Rec>,
    pub pairs: Vec<(String, String)>,
}

impl Env {
    /// A scenario at `t0()`: state in the temp dir, Slack to the local receiver, nothing watched (`OPS_AGENTS` =
    /// ops-reporter) and a short notify timeout; `extra` pairs override.
    pub async fn new(extra: &[(&str, &str)]) -> Env {
        let (hook, slack) = slack_receiver().await;
        let dir = tempfile::tempdir().unwrap();
        let mut e = Env {
            clock: Arc::new(ManualClock::new(t0())),
            pairs: Vec::new(),
            dir,
            hook,
            slack,
        };
        let log = e.dir.path().display().to_string();
        let hook = e.hook.clone();
        e.set(&[
            ("OPS_LOG_DIR", log.as_str()),
            ("SLACK_WEBHOOK_URL", hook.as_str()),
            ("OPS_AGENTS", "ops-reporter"),
            ("OPS_NOTIFY_TIMEOUT_MS", "1500"),
            ("OPS_RATE_LIMIT_BACKEND", "memory"),
        ]);
        e.set(extra);
        e
    }

    /// Sets configuration pairs (replacing earlier values).
    pub fn set(&mut self, pairs: &[(&str, &str)]) {
        for (k, v) in pairs {
            self.pairs.retain(|(kk, _)| kk != k);
            self.pairs.push((k.to_string(), v.to_string()));
        }
    }

    /// Removes configuration keys.
    pub fn unset(&mut self, keys: &[&str]) {
        self.pairs.retain(|(k, _)| !keys.contains(&k.as_str()));
    }

    /// Routes the e-mail digest to the plain SMTP sink for a unique recipient; returns (recipient, sink dir).
    pub fn with_smtp_sink(&mut self, tag: &str) -> (String, PathBuf) {
        let (host, port, dir) = support::smtp_sink();
        let rcpt = unique_rcpt(tag);
        let port = port.to_string();
        self.set(&[
            ("SMTP_HOST", host.as_str()),
            ("SMTP_PORT", port.as_str()),
            ("SMTP_SECURE", "none"),
            ("OPS_ALERT_EMAIL", rcpt.as_str()),
        ]);
        (rcpt, dir)
    }

    /// The validated configuration.
    pub fn cfg(&self) -> Arc<Config> {
        Arc::new(
            Config::from_source(Source::from_pairs(self.pairs.clone()), self.dir.path())
                .expect("valid config"),
        )
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("ops-state.json")
    }

    pub fn outbox_path(&self) -> PathBuf {
        self.dir.path().join("ops-outbox.json")
    }

    /// Writes the state file.
    pub fn write_state(&self, st: &OpsState) {
        std::fs::write(
            self.state_path(),
            serde_json::to_vec_pretty(&st.to_value()).unwrap(),
        )
        .unwrap();
    }

    /// Reads the state file (empty when missing).
    pub fn state(&self) -> OpsState {
        match std::fs::read(self.state_path()) {
            Ok(b) => vizora_ops::state::parse_state(&b, Utc::now()).expect("state parses"),
            Err(_) => OpsState::empty(Utc::now()),
        }
    }

    /// Reads, changes and writes the state file (what other agents' runs would do between reporter runs).
    pub fn edit_state(&self, f: impl FnOnce(&mut OpsState)) {
        let mut st = self.state();
        f(&mut st);
        self.write_state(&st);
    }

    /// The state file's incident with `id`.
    pub fn incident(&self, id: &str) -> Incident {
        self.state()
            .incidents
            .into_iter()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("incident {id} in the state"))
    }

    /// The outbox JSON (`Null` when missing).
    pub fn outbox(&self) -> Value {
        std::fs::read(self.outbox_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// Number of queued outbox entries.
    pub fn queued(&self) -> usize {
        self.outbox()["entries"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0)
    }

    /// Moves the clock to `start + seconds`.
    pub fn at_s(&self, start: DateTime<Utc>, seconds: i64) {
        self.clock.set(start + Duration::seconds(seconds));
    }

    /// One ops-reporter run with this scenario's clock.
    pub async fn run(&self) -> RunReport {
        self.run_opts(false).await
    }

    /// One ops-reporter run, optionally a dry run.
    pub async fn run_opts(&self, dry_run: bool) -> RunReport {
        let r = run_agent(
            self.cfg(),
            AgentName::OpsReporter,
            RunOptions { dry_run },
            Wiring {
                clock: Some(self.clock.clone()),
                ..Default::default()
            },
        )
        .await;
        for l in &r.report {
            eprintln!("  report: {l}");
        }
        r
    }
}

/// The state with `incidents` and every agent's `lastRun` at `at` (so a watchdog would be quiet).
pub fn state_with(incidents: Vec<Incident>, at: DateTime<Utc>) -> OpsState {
    let mut st = OpsState::empty(at);
    for a in AgentName::ALL {
        st.last_run
            .insert(a.as_str().into(), Value::String(vizora_ops::model::ts(at)));
    }
    st.incidents = incidents;
    st
}

/// Marks `id` resolved at `at` in `st` (its owner's sweep or verified fix).
pub fn resolve(st: &mut OpsState, id: &str, at: DateTime<Utc>) {
    for i in st.incidents.iter_mut().filter(|i| i.id == id) {
        i.status = IncidentStatus::Resolved;
        i.resolved_at = Some(vizora_ops::model::ts(at));
    }
}

/// Titles of a Slack payload's attachments.
pub fn titles(body: &Value) -> Vec<String> {
    body["attachments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["title"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}
