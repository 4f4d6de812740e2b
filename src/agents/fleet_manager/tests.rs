//! The run against a fake API, and the helpers the unit tests share.

use super::*;
use crate::agents::AlertSink;
use crate::agents::InlineAlert;
use crate::agents::entities::FromItem;
use crate::agents::{AgentContext, AgentOutcome, InlineKind};
use crate::clock::{Clock, ManualClock};
use crate::config::{Config, Source};
use crate::model::RemediationAction;
use crate::model::{AgentName, Incident, IncidentStatus, OpsState, Severity, parse_ts, ts};
use crate::state::audit::AuditLog;
use crate::vizora::VizoraApi;
use crate::vizora::{ApiError, ListResult, MutationOutcome, MutationRequest, MutationStatus};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub(super) fn t0() -> DateTime<Utc> {
    parse_ts("2026-08-26T13:42:17.000Z").unwrap()
}
pub(super) fn ago(min: f64) -> String {
    ts(t0() - Duration::milliseconds((min * 60_000.0) as i64))
}
pub(super) const TH: Thresholds = Thresholds {
    offline_s: 900,
    persistent_s: 3600,
};

pub(super) fn display(id: &str, hb_min: Option<f64>, loc: Option<&str>) -> Value {
    json!({
        "id": id, "organizationId": "org-1", "nickname": format!("Screen {id}"), "location": loc,
        "status": "online", "timezone": "UTC", "lastHeartbeat": hb_min.map(ago), "isDisabled": false,
        "currentPlaylistId": "pl-1", "pairedAt": "2026-01-01T00:00:00.000Z",
    })
}

pub(super) fn fd(v: &Value) -> FleetDisplay {
    FleetDisplay::from_item(v)
}

// ---- the run against a fake API ----

/// An in-memory Vizora with scripted fleet answers; records every request.
struct FakeApi {
    clock: Arc<ManualClock>,
    displays: Mutex<Vec<Value>>,
    schedules: Vec<Value>,
    groups: Vec<Value>,
    incomplete_displays: bool,
    /// Fleet answers in order (`None` = 201); after the list, 201.
    fleet_errors: Mutex<Vec<Option<ApiError>>>,
    /// Displays that reconnect when reloaded.
    reconnect: HashSet<String>,
    dry_run: bool,
    requests: Mutex<Vec<(String, String)>>,
}

impl FakeApi {
    fn new(clock: Arc<ManualClock>, displays: Vec<Value>) -> FakeApi {
        FakeApi {
            clock,
            displays: Mutex::new(displays),
            schedules: vec![],
            groups: vec![],
            incomplete_displays: false,
            fleet_errors: Mutex::new(vec![]),
            reconnect: HashSet::new(),
            dry_run: false,
            requests: Mutex::new(vec![]),
        }
    }
    fn writes(&self) -> Vec<(String, String)> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m != "GET")
            .cloned()
            .collect()
    }
}

fn list(items: Vec<Value>, complete: bool) -> ListResult {
    ListResult {
        total: Some(items.len() as u64 + u64::from(!complete)),
        complete,
        reason: (!complete).then(|| "page 2 failed: API 500".to_string()),
        pages: 1,
        collected: items.len(),
        items,
    }
}

#[async_trait]
impl VizoraApi for FakeApi {
    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.requests
            .lock()
            .unwrap()
            .push(("GET".into(), path.into()));
        let id = path.rsplit('/').next().unwrap_or_default();
        self.displays
            .lock()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
            .ok_or(ApiError::NotFound {
                method: "GET".into(),
                path: path.into(),
                message: "Display not found".into(),
            })
    }
    async fn walk(&self, path: &str) -> Result<ListResult, ApiError> {
        self.requests
            .lock()
            .unwrap()
            .push(("GET".into(), path.into()));
        Ok(match path {
            DISPLAYS_PATH => list(
                self.displays.lock().unwrap().clone(),
                !self.incomplete_displays,
            ),
            SCHEDULES_PATH => list(self.schedules.clone(), true),
            _ => list(self.groups.clone(), true),
        })
    }
    async fn mutate(&self, req: MutationRequest) -> MutationOutcome {
        let before = self.get(&req.before_path).await.ok();
        if before.is_none() {
            return MutationOutcome {
                status: MutationStatus::Gone,
                before: None,
                audit_id: None,
                action: None,
            };
        }
        if self.dry_run {
            return MutationOutcome {
                status: MutationStatus::DryRun,
                before,
                audit_id: Some("a".into()),
                action: None,
            };
        }
        self.requests
            .lock()
            .unwrap()
            .push((req.method.to_string(), req.path.clone()));
        let err = {
            let mut q = self.fleet_errors.lock().unwrap();
            if req.path == FLEET_COMMANDS_PATH && !q.is_empty() {
                q.remove(0)
            } else {
                None
            }
        };
        let id = req.target_id.clone();
        if err.is_none() {
            let mut ds = self.displays.lock().unwrap();
            if let Some(d) = ds.iter_mut().find(|d| d["id"] == id.as_str()) {
                if req.method == Method::PATCH {
                    d["status"] = req.body["status"].clone();
                } else if self.reconnect.contains(&id) {
                    d["lastHeartbeat"] = json!(ts(self.clock.now()));
                }
            }
        }
        let action = RemediationAction {
            agent: "fleet-manager".into(),
            timestamp: ts(self.clock.now()),
            action: req.action.clone(),
            target: req.target.clone(),
            target_id: id,
            method: req.method.to_string(),
            endpoint: Some(req.path.clone()),
            before: before.clone(),
            after: None,
            success: err.is_none(),
            error: err.as_ref().map(|e| e.to_string()),
            verified: None,
            run_id: None,
            extra: Default::default(),
        };
        MutationOutcome {
            status: match err {
                Some(e) => MutationStatus::Failed(e),
                None => MutationStatus::Done(json!({"devicesOnline": 0, "devicesQueued": 1})),
            },
            before,
            audit_id: Some(uuid::Uuid::new_v4().to_string()),
            action: Some(action),
        }
    }
    async fn post_idempotent(&self, _p: &str, _b: &Value) -> Result<Value, ApiError> {
        unreachable!("fleet-manager pushes nothing")
    }
    fn organization_id(&self) -> Option<String> {
        Some("org-1".into())
    }
    fn drifted_routes(&self) -> Vec<String> {
        vec![]
    }
}

#[derive(Default)]
struct CaptureSink(Mutex<Vec<(InlineKind, String, Vec<String>)>>);

#[async_trait]
impl AlertSink for CaptureSink {
    async fn inline(&self, a: InlineAlert, _now: DateTime<Utc>, _dry: bool) -> Vec<String> {
        let ids = a.refs.iter().map(|i| i.id.clone()).collect();
        self.0.lock().unwrap().push((a.kind, a.summary, a.items));
        ids
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    sink: Arc<CaptureSink>,
    cfg: Arc<Config>,
}

fn harness(extra: &[(&str, &str)]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().display().to_string();
    let mut pairs: Vec<(String, String)> = vec![
        ("OPS_LOG_DIR".into(), log),
        ("OPS_RECONNECT_VERIFY_S".into(), "0".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = Config::from_source(Source::from_pairs(pairs), dir.path()).unwrap();
    Harness {
        _dir: dir,
        clock: Arc::new(ManualClock::new(t0())),
        sink: Arc::new(CaptureSink::default()),
        cfg: Arc::new(cfg),
    }
}

impl Harness {
    async fn run(&self, api: Arc<FakeApi>, snapshot: OpsState, dry_run: bool) -> AgentOutcome {
        let ctx = AgentContext {
            cfg: self.cfg.clone(),
            agent: AgentName::FleetManager,
            run_id: "run-1".into(),
            started: self.clock.now(),
            clock: self.clock.clone(),
            dry_run,
            snapshot,
            audit: AuditLog::new(self.cfg.audit_file.clone()),
            deadline: Instant::now() + std::time::Duration::from_secs(60),
            alerts: self.sink.clone(),
            api: Some(api),
            http: reqwest::Client::new(),
            process_manager: None,
        };
        run(&ctx).await
    }
}

fn find<'a>(o: &'a AgentOutcome, kind: &str, target: &str) -> Option<&'a Incident> {
    o.incidents
        .iter()
        .find(|i| i.kind == kind && i.target_id == target)
}

fn state_with(incidents: Vec<Incident>) -> OpsState {
    let mut st = OpsState::empty(t0());
    st.incidents = incidents;
    st
}

#[tokio::test]
async fn a_reload_that_reconnects_is_verified_and_resolved() {
    let h = harness(&[]);
    let mut api = FakeApi::new(h.clock.clone(), vec![display("d1", Some(20.0), None)]);
    api.reconnect.insert("d1".into());
    let api = Arc::new(api);
    let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
    let inc = find(&o, DISPLAY_OFFLINE, "d1").expect("raised");
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.attempts, 1);
    assert_eq!(o.fixed, 1);
    assert_eq!(o.remediations.len(), 1);
    assert_eq!(o.remediations[0].verified, Some(true));
    let r = &o.stats.as_ref().unwrap()["reconnect"];
    assert_eq!(
        (
            r["commandsSent"].as_u64(),
            r["verified"].as_u64(),
            r["reconnected"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(
        api.writes(),
        vec![("POST".into(), FLEET_COMMANDS_PATH.into())]
    );
}

#[tokio::test]
async fn a_sent_reload_without_reconnection_stays_open_and_is_never_a_fix() {
    let h = harness(&[]);
    let api = Arc::new(FakeApi::new(
        h.clock.clone(),
        vec![display("d1", Some(20.0), None)],
    ));
    let o = h.run(api, OpsState::empty(t0()), false).await;
    let inc = find(&o, DISPLAY_OFFLINE, "d1").unwrap();
    assert_eq!(inc.status, IncidentStatus::Open);
    assert_eq!(inc.attempts, 1);
    assert_eq!(inc.last_attempt_at.as_deref(), Some(ts(t0()).as_str()));
    assert!(inc.error.as_deref().unwrap().contains("no reconnection"));
    assert_eq!(o.fixed, 0);
    assert_eq!(o.remediations[0].verified, Some(false));
    assert_eq!(o.stats.as_ref().unwrap()["reconnect"]["successRate"], 0.0);
}

#[tokio::test]
async fn persistent_display_is_escalated_without_a_command_and_supersedes_display_offline() {
    let h = harness(&[]);
    let api = Arc::new(FakeApi::new(
        h.clock.clone(),
        vec![display("d1", Some(75.0), None)],
    ));
    let mut prior = Incident::new(
        AgentName::FleetManager,
        DISPLAY_OFFLINE,
        Severity::Warning,
        "display",
        "d1",
        "m",
        "r",
        t0() - Duration::minutes(60),
    );
    prior.attempts = 2;
    let o = h
        .run(api.clone(), state_with(vec![prior.clone()]), false)
        .await;
    let p = find(&o, DISPLAY_OFFLINE_PERSISTENT, "d1").unwrap();
    assert_eq!(p.status, IncidentStatus::Escalated);
    assert_eq!(p.detected, prior.detected, "the episode start carries over");
    assert!(find(&o, DISPLAY_OFFLINE, "d1").is_none());
    assert_eq!(
        o.resolve_suffix.get(&prior.id).map(String::as_str),
        Some(SUPERSEDED_SUFFIX)
    );
    assert!(api.writes().is_empty());
    let alerts = h.sink.0.lock().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0, InlineKind::Warning);
    assert_eq!(o.alert_stamps, vec![p.id.clone()]);
}

#[tokio::test]
async fn fleet_429_keeps_the_display_open_with_the_error_and_halts_further_commands() {
    let h = harness(&[]);
    let api = FakeApi::new(
        h.clock.clone(),
        vec![
            display("d1", Some(20.0), None),
            display("d2", Some(30.0), None),
        ],
    );
    *api.fleet_errors.lock().unwrap() = vec![Some(ApiError::RateLimited {
        method: "POST".into(),
        path: FLEET_COMMANDS_PATH.into(),
        message: "Fleet command rate limit exceeded. Max 10 commands per minute.".into(),
    })];
    let api = Arc::new(api);
    let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
    let d1 = find(&o, DISPLAY_OFFLINE, "d1").unwrap();
    assert_eq!(d1.status, IncidentStatus::Open);
    assert!(d1.error.as_deref().unwrap().contains("429"));
    let d2 = find(&o, DISPLAY_OFFLINE, "d2").unwrap();
    assert_eq!(d2.remediation, DEFERRED);
    assert_eq!(api.writes().len(), 1, "nothing sent after the 429");
    assert_eq!(o.stats.as_ref().unwrap()["reconnect"]["commandsSent"], 0);
}

#[tokio::test]
async fn per_run_cap_defers_the_rest_with_the_budget_remediation() {
    let h = harness(&[("OPS_FLEET_MAX_COMMANDS_PER_RUN", "2")]);
    let ds = (0..4)
        .map(|i| display(&format!("d{i}"), Some(20.0), None))
        .collect();
    let api = Arc::new(FakeApi::new(h.clock.clone(), ds));
    let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
    let deferred = o
        .incidents
        .iter()
        .filter(|i| i.remediation == DEFERRED)
        .count();
    assert_eq!(deferred, 2);
    assert_eq!(api.writes().len(), 2);
}

#[tokio::test]
async fn cooldown_blocks_a_second_reload_within_thirty_minutes_then_allows_it() {
    let h = harness(&[]);
    let api = Arc::new(FakeApi::new(
        h.clock.clone(),
        vec![display("d1", Some(20.0), None)],
    ));
    let first = h.run(api.clone(), OpsState::empty(t0()), false).await;
    let mut st = state_with(first.incidents.clone());
    st.recent_remediations = first.remediations.clone();
    h.clock.advance(Duration::minutes(10));
    let second = h.run(api.clone(), st.clone(), false).await;
    assert_eq!(api.writes().len(), 1, "no second reload after 10 min");
    assert_eq!(
        find(&second, DISPLAY_OFFLINE, "d1").unwrap().remediation,
        DEFERRED
    );
    // At +29 min: keep the display inside the 15–60 min band (heartbeat 20 min old at this run's start).
    h.clock.advance(Duration::minutes(19));
    api.displays.lock().unwrap()[0]["lastHeartbeat"] =
        json!(ts(h.clock.now() - Duration::minutes(20)));
    let third = h.run(api.clone(), st, false).await;
    assert_eq!(
        api.writes().len(),
        2,
        "window passes at 29 min (30 min − 120 s margin)"
    );
    assert_eq!(find(&third, DISPLAY_OFFLINE, "d1").unwrap().attempts, 2);
}

#[tokio::test]
async fn error_display_is_reset_then_reloaded_and_resolved_on_re_read() {
    let h = harness(&[]);
    let mut d = display("e1", Some(0.5), None);
    d["status"] = json!("error");
    let api = Arc::new(FakeApi::new(h.clock.clone(), vec![d]));
    let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
    assert_eq!(
        api.writes(),
        vec![
            ("PATCH".into(), "/api/v1/displays/e1".into()),
            ("POST".into(), FLEET_COMMANDS_PATH.into())
        ]
    );
    let e = find(&o, DISPLAY_ERROR, "e1").unwrap();
    assert_eq!(e.status, IncidentStatus::Resolved);
    assert_eq!(e.attempts, 1);
    assert_eq!(o.fixed, 1);
    // Every sent reload is judged, so that sent = reconnected + not reconnected (README "What the counts mean").
    let r = &o.stats.as_ref().unwrap()["reconnect"];
    assert_eq!(r["commandsSent"], 1);
    assert_eq!(
        r["reconnected"].as_u64().unwrap() + r["notReconnected"].as_u64().unwrap(),
        1,
        "{r}"
    );
}

#[tokio::test]
async fn dry_run_sends_nothing_and_lists_the_would_be_actions() {
    let h = harness(&[]);
    let mut e = display("e1", Some(0.5), None);
    e["status"] = json!("error");
    let mut api = FakeApi::new(h.clock.clone(), vec![display("d1", Some(20.0), None), e]);
    api.dry_run = true;
    let api = Arc::new(api);
    let o = h.run(api.clone(), OpsState::empty(t0()), true).await;
    assert!(api.writes().is_empty());
    assert!(
        o.report
            .iter()
            .any(|l| l.contains("would send reload to \"Screen d1\""))
    );
    assert!(
        o.report
            .iter()
            .any(|l| l.contains("would reset status error"))
    );
    assert_eq!(o.fixed, 0);
    assert!(o.remediations.is_empty());
}

#[tokio::test]
async fn offline_location_replaces_per_display_incidents_and_carries_their_priors() {
    let h = harness(&[]);
    let ds = vec![
        display("h1", Some(40.0), Some("Harrogate  James Street ")),
        display("h2", Some(41.0), Some("harrogate james street")),
        display("h3", Some(39.0), Some("Harrogate James Street")),
        display("x1", Some(0.2), Some("Leeds")),
    ];
    let api = Arc::new(FakeApi::new(h.clock.clone(), ds));
    let prior = Incident::new(
        AgentName::FleetManager,
        DISPLAY_OFFLINE,
        Severity::Warning,
        "display",
        "h1",
        "m",
        "r",
        t0() - Duration::minutes(20),
    );
    let o = h
        .run(api.clone(), state_with(vec![prior.clone()]), false)
        .await;
    let loc = find(&o, LOCATION_OFFLINE, "org-1/harrogate james street").unwrap();
    assert_eq!(loc.severity, Severity::Critical);
    assert!(loc.message.contains("\"Harrogate  James Street \""));
    assert!(loc.message.contains("All 3"));
    assert!(o.incidents.iter().all(|i| i.target != "display"));
    assert!(o.unexamined.contains(&prior.id));
    assert!(api.writes().is_empty());
    assert_eq!(h.sink.0.lock().unwrap()[0].0, InlineKind::Critical);
    // Already open next time: no second critical alert.
    let again = h.run(api, state_with(o.incidents.clone()), false).await;
    assert!(find(&again, LOCATION_OFFLINE, "org-1/harrogate james street").is_some());
    assert_eq!(h.sink.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn incomplete_display_walk_runs_per_display_rules_only_and_covers_nothing_it_depends_on() {
    let h = harness(&[]);
    let ds = vec![
        display("h1", Some(40.0), Some("Harrogate")),
        display("h2", Some(41.0), Some("Harrogate")),
        display("h3", Some(39.0), Some("Harrogate")),
    ];
    let mut api = FakeApi::new(h.clock.clone(), ds);
    api.incomplete_displays = true;
    let o = h.run(Arc::new(api), OpsState::empty(t0()), false).await;
    assert!(find(&o, LOCATION_OFFLINE, "org-1/harrogate").is_none());
    assert_eq!(
        o.incidents
            .iter()
            .filter(|i| i.kind == DISPLAY_OFFLINE)
            .count(),
        3
    );
    let st = find(&o, SCAN_TRUNCATED, "entity-lists").unwrap();
    assert!(st.message.contains("displays: collected 3 of 4"));
    for t in [DISPLAY_OFFLINE, LOCATION_OFFLINE, NO_CONTENT] {
        assert!(!o.covered_types.contains(t), "{t} must not be covered");
    }
}

#[tokio::test]
async fn disabled_displays_are_ignored_and_unparseable_heartbeats_not_examined() {
    let h = harness(&[]);
    let mut dis = display("x", Some(30.0), None);
    dis["isDisabled"] = json!(true);
    let mut bad = display("b", None, None);
    bad["lastHeartbeat"] = json!("not-a-time");
    let api = Arc::new(FakeApi::new(h.clock.clone(), vec![dis, bad]));
    let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
    assert!(o.incidents.is_empty(), "{:?}", o.incidents);
    assert!(o.unexamined.contains(&id_for(DISPLAY_OFFLINE, "b")));
    assert!(!o.unexamined.contains(&id_for(DISPLAY_OFFLINE, "x")));
    assert!(o.covered_types.contains(DISPLAY_OFFLINE));
    assert!(api.writes().is_empty());
}

#[tokio::test]
async fn empty_fleet_is_a_normal_covered_run() {
    let h = harness(&[]);
    let o = h
        .run(
            Arc::new(FakeApi::new(h.clock.clone(), vec![])),
            OpsState::empty(t0()),
            false,
        )
        .await;
    assert!(o.fatal.is_none());
    assert!(o.incidents.is_empty());
    assert!(o.covered_types.contains(LOCATION_OFFLINE));
    assert_eq!(o.stats.as_ref().unwrap()["reconnect"]["commandsSent"], 0);
}
