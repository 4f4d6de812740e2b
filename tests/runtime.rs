//! The runtime and the store layer (design/README.md §3 "runtime", "store"; agents.md 1.3, 1.4, 4.6, 5.2): `run_once`
//! with a fake agent over the real file stores (exit codes, the merged state, the run lock), a `Runtime` reused for
//! two runs against the in-process sandbox (one login, no logout until shutdown; the sandbox's request log proves
//! it), the one-shot `run_agent` (login and logout per run), and the agent registry.

use async_trait::async_trait;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use vizora_ops::agents::{AgentContext, AgentOutcome, WriteMode};
use vizora_ops::config::{Config, Source};
use vizora_ops::model::{AgentName, Severity};
use vizora_ops::runtime::{Agent, ApiUse, RunOptions, Runtime, Wiring, registry, run_once};
use vizora_ops::sandbox::{Sandbox, SandboxOptions};
use vizora_ops::store::file::{FileRunLock, FileStateStore};
use vizora_ops::store::{RunLock, RunLockError, StateStore};

const KIND: &str = "fake-finding";

/// A fake agent with fleet-manager's name: `gets` API reads, then one finding (or none) of the covered type `KIND`.
struct Fake {
    finding: bool,
    api: ApiUse,
    gets: usize,
    runs: AtomicUsize,
}

impl Fake {
    fn new(finding: bool, api: ApiUse, gets: usize) -> Fake {
        Fake {
            finding,
            api,
            gets,
            runs: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Agent for Fake {
    fn name(&self) -> AgentName {
        AgentName::FleetManager
    }
    fn catalogue(&self) -> &'static [&'static str] {
        &[KIND]
    }
    fn api_use(&self) -> ApiUse {
        self.api
    }
    async fn run(&self, ctx: &AgentContext) -> AgentOutcome {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let mut o = AgentOutcome::new(&[KIND]);
        for _ in 0..self.gets {
            if let Err(e) = ctx.api().get("/api/v1/displays?page=1&limit=1").await {
                o.fail(e.to_string(), WriteMode::None);
                return o;
            }
        }
        o.cover(KIND);
        if self.finding {
            o.raise(ctx.incident(
                KIND,
                Severity::Warning,
                "display",
                "d-1",
                "fake finding",
                "none",
            ));
        }
        o
    }
}

fn config(dir: &Path, api_url: &str, creds: bool) -> Arc<Config> {
    let mut pairs: Vec<(String, String)> = vec![
        ("VALIDATOR_BASE_URL".into(), api_url.into()),
        ("OPS_LOG_DIR".into(), dir.join("logs").display().to_string()),
        ("OPS_RATE_LIMIT_BACKEND".into(), "memory".into()),
        ("OPS_RATE_PER_SECOND".into(), "1000".into()),
        ("OPS_RATE_PER_MINUTE".into(), "100000".into()),
        ("OPS_RATE_PER_HOUR".into(), "1000000".into()),
        ("OPS_LOGINS_PER_MINUTE".into(), "100".into()),
        ("OPS_HTTP_RETRIES".into(), "1".into()),
    ];
    if creds {
        pairs.push(("OPS_EMAIL".into(), "ops@example.test".into()));
        pairs.push(("OPS_PASSWORD".into(), "ops-demo-password".into()));
    }
    Arc::new(Config::from_source(Source::from_pairs(pairs), dir).expect("valid test configuration"))
}

fn state(cfg: &Config) -> Option<Value> {
    std::fs::read_to_string(&cfg.state_file)
        .ok()
        .map(|s| serde_json::from_str(&s).expect("state file is JSON"))
}

fn incident<'a>(st: &'a Value, id_part: &str) -> &'a Value {
    st["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"].as_str().unwrap().contains(id_part))
        .unwrap_or_else(|| panic!("no incident {id_part} in {st}"))
}

#[tokio::test]
async fn run_once_with_a_finding_exits_1_and_writes_the_merged_state() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "http://127.0.0.1:9", false);
    let rt = Runtime::new(cfg.clone(), Wiring::default()).unwrap();

    let found = Fake::new(true, ApiUse::None, 0);
    let r = run_once(&rt, &found, RunOptions::default()).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    assert!(r.wrote_state);
    let st = state(&cfg).expect("state written");
    let inc = incident(&st, KIND);
    assert_eq!(inc["status"], "open", "{inc}");
    assert_eq!(inc["agent"], "fleet-manager");
    assert_eq!(st["agentResults"]["fleet-manager"]["exitCode"], 1);
    assert_eq!(st["agentResults"]["fleet-manager"]["issuesFound"], 1);
    assert!(st["lastRun"]["fleet-manager"].is_string(), "{st}");

    // The same runtime, the finding gone: the covered type's sweep resolves it in the merge (agents.md 4.6).
    let clear = Fake::new(false, ApiUse::None, 0);
    let r = run_once(&rt, &clear, RunOptions::default()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.fatal);
    assert_eq!(r.result.issues_resolved, Some(1));
    let st = state(&cfg).unwrap();
    assert_eq!(incident(&st, KIND)["status"], "resolved");
    assert_eq!(st["agentResults"]["fleet-manager"]["exitCode"], 0);
}

#[tokio::test]
async fn a_dry_run_of_run_once_writes_no_state() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "http://127.0.0.1:9", false);
    let rt = Runtime::new(cfg.clone(), Wiring::default()).unwrap();
    let r = run_once(
        &rt,
        &Fake::new(true, ApiUse::None, 0),
        RunOptions { dry_run: true },
    )
    .await;
    assert_eq!(r.exit_code, 1);
    assert!(!r.wrote_state);
    assert!(state(&cfg).is_none());
}

#[tokio::test]
async fn a_held_run_lock_exits_2_writes_nothing_and_never_runs_the_agent() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "http://127.0.0.1:9", false);
    let rt = Runtime::new(cfg.clone(), Wiring::default()).unwrap();
    // Another run (here: the same host's guard, as a one-shot beside a daemon would hold it) holds the lock.
    let held = FileRunLock::new(cfg.state_dir())
        .try_acquire(AgentName::FleetManager)
        .expect("first lease");
    let fake = Fake::new(true, ApiUse::None, 0);
    let r = run_once(&rt, &fake, RunOptions::default()).await;
    assert_eq!(r.exit_code, 2, "agents.md 1.3 step 2: held → exit 2");
    let why = r.fatal.clone().unwrap();
    assert!(
        why.contains("another fleet-manager run is in progress")
            && why.contains("ops-run-fleet-manager.lock"),
        "{why}"
    );
    assert_eq!(fake.runs.load(Ordering::SeqCst), 0);
    assert!(!r.wrote_state);
    assert!(state(&cfg).is_none());
    // Released on drop: the next run goes ahead.
    drop(held);
    let r = run_once(&rt, &fake, RunOptions::default()).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    assert_eq!(fake.runs.load(Ordering::SeqCst), 1);
}

#[test]
fn file_run_lock_refuses_a_second_lease_until_the_first_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let lock = FileRunLock::new(d.path().join("state"));
    let first = lock.try_acquire(AgentName::DbMaintainer).unwrap();
    match lock.try_acquire(AgentName::DbMaintainer) {
        Err(RunLockError::Held { agent, location }) => {
            assert_eq!(agent, "db-maintainer");
            assert!(
                location.ends_with("ops-run-db-maintainer.lock"),
                "{location}"
            );
        }
        other => panic!("expected Held, got {other:?}"),
    }
    // Another agent's lock is independent.
    let _other = lock.try_acquire(AgentName::HealthGuardian).unwrap();
    drop(first);
    lock.try_acquire(AgentName::DbMaintainer).unwrap();
}

#[test]
fn file_run_lock_in_an_unusable_directory_is_unavailable_not_held() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    match FileRunLock::new(&file).try_acquire(AgentName::DbMaintainer) {
        Err(RunLockError::Unavailable(why)) => assert!(why.contains("not-a-dir"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn the_state_store_trait_records_a_run_through_the_pure_merge() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "http://127.0.0.1:9", false);
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::from_config(&cfg));
    let now = chrono::Utc::now();
    store.check(true).unwrap();
    assert!(store.try_snapshot(now).unwrap().incidents.is_empty());
    let inc = vizora_ops::model::Incident::new(
        AgentName::DbMaintainer,
        "vacuum-failed",
        Severity::Critical,
        "database",
        "db",
        "vacuum failed",
        "look",
        now,
    );
    let record = vizora_ops::store::RunRecord {
        result: vizora_ops::model::AgentResult {
            agent: "db-maintainer".into(),
            timestamp: vizora_ops::model::ts(now),
            incidents: vec![inc.clone()],
            ..Default::default()
        },
        covered_types: Default::default(),
        unexamined: Default::default(),
        catalogue: vec!["vacuum-failed".into()],
        resolve_suffix: Default::default(),
        remediations: vec![],
        partial: false,
        stamp_window: vizora_ops::store::StampWindow::from_config(&cfg, now),
    };
    let (stored, written) = store
        .record_run(
            now,
            record,
            Some(Box::new(|st: &mut vizora_ops::model::OpsState| {
                st.incidents[0].alerted_at = Some("2026-01-01T00:00:00.000Z".into());
            })),
        )
        .unwrap();
    assert_eq!(stored.issues_resolved, Some(0));
    assert_eq!(written.incidents.len(), 1);
    // The snapshot reads back what the locked write stored, the after-merge change included.
    let snap = store.snapshot(now);
    assert_eq!(snap.incidents[0].id, inc.id);
    assert_eq!(
        snap.incidents[0].alerted_at.as_deref(),
        Some("2026-01-01T00:00:00.000Z")
    );
    assert_eq!(snap.system_status, snap.computed_status());
    assert!(store.location().ends_with("ops-state.json"));
}

async fn sandbox() -> Sandbox {
    Sandbox::start(
        vizora_ops::sandbox::DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts")
}

fn count(sb: &Sandbox, method: &str, path: &str) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

#[tokio::test]
async fn a_runtime_reused_for_two_runs_logs_in_once_and_logs_out_at_shutdown() {
    let sb = sandbox().await;
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), &sb.api_url, true);
    let rt = Runtime::new(cfg.clone(), Wiring::default()).unwrap();
    let fake = Fake::new(false, ApiUse::Required, 2);
    for _ in 0..2 {
        let r = run_once(&rt, &fake, RunOptions::default()).await;
        assert_eq!(r.exit_code, 0, "{:?}", r.fatal);
    }
    assert_eq!(count(&sb, "GET", "/api/v1/displays"), 4);
    assert_eq!(
        count(&sb, "POST", "/api/v1/auth/login"),
        1,
        "one session for both runs"
    );
    assert_eq!(
        count(&sb, "POST", "/api/v1/auth/logout"),
        0,
        "a long-lived runtime keeps its session"
    );
    assert!(rt.session().is_logged_in().await);
    rt.shutdown().await;
    assert_eq!(count(&sb, "POST", "/api/v1/auth/logout"), 1);
    assert_eq!(sb.sessions().logouts, 1);
    assert!(!rt.session().is_logged_in().await);
    // Nothing more to release: a second shutdown sends nothing.
    rt.shutdown().await;
    assert_eq!(count(&sb, "POST", "/api/v1/auth/logout"), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_one_shot_runner_logs_in_and_out_on_every_run() {
    let sb = sandbox().await;
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), &sb.api_url, true);
    let rt = Runtime::new(cfg.clone(), Wiring::default())
        .unwrap()
        .one_shot();
    let fake = Fake::new(false, ApiUse::Required, 1);
    for _ in 0..2 {
        let r = run_once(&rt, &fake, RunOptions::default()).await;
        assert_eq!(r.exit_code, 0, "{:?}", r.fatal);
    }
    assert_eq!(count(&sb, "POST", "/api/v1/auth/login"), 2);
    assert_eq!(count(&sb, "POST", "/api/v1/auth/logout"), 2);
    assert_eq!(sb.sessions().logouts, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn an_api_agent_without_credentials_exits_2_before_anything_is_opened() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "http://127.0.0.1:9", false);
    let rt = Runtime::new(cfg.clone(), Wiring::default()).unwrap();
    let fake = Fake::new(true, ApiUse::Required, 1);
    let r = run_once(&rt, &fake, RunOptions::default()).await;
    assert_eq!(r.exit_code, 2);
    assert_eq!(fake.runs.load(Ordering::SeqCst), 0);
    assert!(!cfg.audit_file.exists());
    assert!(state(&cfg).is_none());
}

#[test]
fn every_agent_name_is_registered_once_with_its_catalogue() {
    let names: Vec<AgentName> = registry().iter().map(|a| a.name()).collect();
    for n in AgentName::ALL.iter().chain([AgentName::OpsWatchdog].iter()) {
        assert_eq!(
            names.iter().filter(|m| *m == n).count(),
            1,
            "{n:?} registered once"
        );
        let a = vizora_ops::runtime::agent::agent(*n);
        assert_eq!(a.name(), *n);
        assert!(!a.catalogue().is_empty(), "{n:?} has a catalogue");
    }
    assert_eq!(names.len(), AgentName::ALL.len() + 1);
    // Who logs in (agents.md 6.x inputs), as the runner always decided it.
    for (n, api) in [
        (AgentName::HealthGuardian, false),
        (AgentName::ContentLifecycle, true),
        (AgentName::FleetManager, true),
        (AgentName::ScheduleDoctor, true),
        (AgentName::OpsReporter, false),
        (AgentName::DbMaintainer, false),
    ] {
        assert_eq!(vizora_ops::runner::needs_api(n), api, "{n:?}");
    }
}

#[tokio::test]
async fn a_runtime_session_expired_between_runs_is_renewed_on_the_401() {
    let sb = sandbox().await;
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), &sb.api_url, true);
    let rt = Runtime::new(cfg.clone(), Wiring::default()).unwrap();
    let fake = Fake::new(false, ApiUse::Required, 1);
    let r = run_once(&rt, &fake, RunOptions::default()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.fatal);
    // Past the access token's lifetime (vizora-api.md §1): the kept session now draws a 401.
    sb.advance_clock(24.0 * 3600.0);
    let r = run_once(&rt, &fake, RunOptions::default()).await;
    assert_eq!(r.exit_code, 0, "{:?}", r.fatal);
    let log = sb.requests();
    let statuses: Vec<(String, String, u16)> = log
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.status))
        .collect();
    assert_eq!(count(&sb, "POST", "/api/v1/auth/login"), 2, "{statuses:?}");
    assert!(
        log.iter()
            .any(|r| r.path == "/api/v1/displays" && r.status == 401),
        "{statuses:?}"
    );
    rt.shutdown().await;
    sb.shutdown().await;
}

/// A daemon spawns runs on the tokio runtime: `run_once`'s future must be `Send` for every registered agent. Checked
/// at compile time (the body only builds the futures, it never polls them).
#[tokio::test]
async fn run_once_futures_are_send_for_every_registered_agent() {
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "http://127.0.0.1:9", false);
    let rt = Runtime::new(cfg, Wiring::default()).unwrap();
    let mut built = 0;
    for a in registry() {
        drop(assert_send(run_once(&rt, *a, RunOptions::default())));
        built += 1;
    }
    assert_eq!(built, registry().len());
}

#[test]
fn the_outbox_store_trait_queues_through_the_locked_file_and_a_dry_run_writes_nothing() {
    use vizora_ops::alert::outbox::{Channel, EntryKind, OutboxEntry};
    use vizora_ops::store::OutboxStore;
    use vizora_ops::store::file::FileOutboxStore;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("ops-outbox.json");
    let now = chrono::Utc::now();
    let entry = || {
        OutboxEntry::new(
            Channel::Slack,
            EntryKind::Inline,
            &serde_json::json!({"text": "hello"}),
            vec![],
            now,
        )
    };

    let dry: Arc<dyn OutboxStore> = Arc::new(FileOutboxStore::new(
        &path,
        std::time::Duration::from_secs(1),
        true,
    ));
    let e = entry();
    dry.update(now, Box::new(move |f| f.enqueue(e))).unwrap();
    assert!(!path.exists(), "a dry run writes no outbox (agents.md 1.5)");

    let store: Arc<dyn OutboxStore> = Arc::new(FileOutboxStore::new(
        &path,
        std::time::Duration::from_secs(1),
        false,
    ));
    let e = entry();
    let id = e.id.clone();
    store.update(now, Box::new(move |f| f.enqueue(e))).unwrap();
    let pending = store.read().pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(store.location(), path.display().to_string());
    // Written with mode 0600 (it holds alert text, agents.md 7.7).
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A store that is not a file (the shape a Redis store of issue 16 takes): the document in memory.
#[derive(Default)]
struct MemoryState {
    doc: std::sync::Mutex<Option<vizora_ops::model::OpsState>>,
    updates: AtomicUsize,
}

impl StateStore for MemoryState {
    fn location(&self) -> String {
        "memory".into()
    }
    fn check(&self, _probe_lock: bool) -> Result<(), vizora_ops::store::StateError> {
        Ok(())
    }
    fn snapshot(&self, now: chrono::DateTime<chrono::Utc>) -> vizora_ops::model::OpsState {
        self.doc
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| vizora_ops::model::OpsState::empty(now))
    }
    fn try_snapshot(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<vizora_ops::model::OpsState, String> {
        Ok(self.snapshot(now))
    }
    fn update(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        change: vizora_ops::store::StateChange<'_>,
    ) -> Result<vizora_ops::model::OpsState, vizora_ops::store::StateError> {
        let mut g = self.doc.lock().unwrap();
        let mut st = g
            .clone()
            .unwrap_or_else(|| vizora_ops::model::OpsState::empty(now));
        change(&mut st);
        self.updates.fetch_add(1, Ordering::SeqCst);
        *g = Some(st.clone());
        Ok(st)
    }
}

/// A cluster-wide lease held elsewhere (issue 16's shape): always refused.
struct HeldElsewhere;

impl RunLock for HeldElsewhere {
    fn try_acquire(&self, agent: AgentName) -> Result<vizora_ops::store::RunLease, RunLockError> {
        Err(RunLockError::Held {
            agent: agent.as_str().into(),
            location: "lease on another instance".into(),
        })
    }
}

#[tokio::test]
async fn run_once_goes_through_the_store_traits_not_the_files() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "http://127.0.0.1:9", false);
    let mem = Arc::new(MemoryState::default());
    let rt = Runtime::new(cfg.clone(), Wiring::default())
        .unwrap()
        .with_state_store(mem.clone());
    let r = run_once(
        &rt,
        &Fake::new(true, ApiUse::None, 0),
        RunOptions::default(),
    )
    .await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    assert!(r.wrote_state);
    assert_eq!(
        mem.updates.load(Ordering::SeqCst),
        1,
        "one locked write per run"
    );
    let st = mem.snapshot(chrono::Utc::now());
    assert_eq!(st.incidents.len(), 1);
    assert_eq!(st.incidents[0].kind, KIND);
    assert!(st.agent_results.contains_key("fleet-manager"));
    assert!(!cfg.state_file.exists(), "no file behind the store's back");

    let rt = rt.with_run_lock(Arc::new(HeldElsewhere));
    let fake = Fake::new(true, ApiUse::None, 0);
    let r = run_once(&rt, &fake, RunOptions::default()).await;
    assert_eq!(r.exit_code, 2);
    assert!(r.fatal.unwrap().contains("lease on another instance"));
    assert_eq!(fake.runs.load(Ordering::SeqCst), 0);
    assert_eq!(mem.updates.load(Ordering::SeqCst), 1);
}
