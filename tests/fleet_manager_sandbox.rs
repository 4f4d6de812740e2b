//! fleet-manager against the sandbox serving tenant-demo.json (agents.md 6.3, 3.3, 9.28–9.31).
//!
//! Expected findings, derived from the fixture (`capturedAt` 2026-08-26T13:42:17Z, ages preserved by rebasing):
//! - `display_offline` (warning, reload sent, open unless it reconnects): "Leeds Checkout 3" (20.6 min),
//!   "Manchester Checkout 2" (45.2 min);
//! - `display_offline_persistent` (escalated, no command): "York Brand Wall" (184 min);
//! - `display_never_paired` (info): the unnamed Newcastle display (no heartbeat, no pairedAt);
//! - `display_error`: "Sheffield Checkout 2" (status `error`, heartbeat fresh) → PATCH to offline + reload, resolved;
//! - `location_offline` (critical): "Harrogate James Street" — four enabled paired displays spelled three ways,
//!   all 39–41 min offline; they get no per-display incident and no command;
//! - `no_content` (info): "Sheffield Click and Collect 2" (online, no playlist, no schedule targets it);
//! - near-misses with no finding: "Newcastle Kids Zone" (9 min), six online displays without a playlist but with an
//!   always-on base-loop schedule through their location group, every other location (≥ 1 online screen), and the
//!   two disabled displays ("Leeds Cafe Menu 3", "York Window Right (old)") although both are long offline.

use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use vizora_ops::agents::InlineKind;
use vizora_ops::agents::fleet_manager::{self, DEFERRED};
use vizora_ops::clock::ManualClock;
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::runner::{RunOptions, RunReport, Wiring, run_agent};
use vizora_ops::sandbox::{DEMO_FIXTURE, FaultSpec, ListShape, Sandbox, SandboxOptions};
use vizora_ops::testing::RecordingSink;

const FLEET: &str = "/api/v1/fleet/commands";

fn fixture() -> Value {
    serde_json::from_str(DEMO_FIXTURE).unwrap()
}

/// Display id by nickname in the demo fixture.
fn id(nickname: &str) -> String {
    fixture()["displays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["nickname"] == nickname)
        .unwrap_or_else(|| panic!("no display {nickname:?} in the fixture"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn never_paired_id() -> String {
    let fx = fixture();
    let ds: Vec<&Value> = fx["displays"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["isDisabled"] == false && d["lastHeartbeat"].is_null() && d["pairedAt"].is_null()
        })
        .collect();
    assert_eq!(ds.len(), 1);
    ds[0]["id"].as_str().unwrap().to_string()
}

fn org_id() -> String {
    fixture()["organization"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

struct Env {
    sb: Sandbox,
    dir: tempfile::TempDir,
    cfg: Arc<Config>,
    alerts: Arc<RecordingSink>,
}

async fn env(extra: &[(&str, &str)]) -> Env {
    let sb = Sandbox::start(
        DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let mut pairs: Vec<(String, String)> = vec![
        ("VALIDATOR_BASE_URL".into(), sb.api_url.clone()),
        ("OPS_EMAIL".into(), "ops@example.test".into()),
        ("OPS_PASSWORD".into(), "ops-demo-password".into()),
        ("OPS_LOG_DIR".into(), dir.path().display().to_string()),
        ("OPS_RATE_LIMIT_BACKEND".into(), "memory".into()),
        ("OPS_RECONNECT_VERIFY_S".into(), "1".into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = Config::from_source(Source::from_pairs(pairs), dir.path()).expect("valid config");
    Env {
        sb,
        dir,
        cfg: Arc::new(cfg),
        alerts: Arc::new(RecordingSink::default()),
    }
}

impl Env {
    async fn run_with(&self, dry_run: bool, clock: Option<Arc<ManualClock>>) -> RunReport {
        let wiring = Wiring {
            alerts: Some(self.alerts.clone()),
            clock: clock.map(|c| c as Arc<dyn vizora_ops::clock::Clock>),
            ..Default::default()
        };
        run_agent(
            self.cfg.clone(),
            AgentName::FleetManager,
            RunOptions { dry_run },
            wiring,
        )
        .await
    }
    async fn run(&self) -> RunReport {
        self.run_with(false, None).await
    }
    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.cfg.state_file).expect("state written"))
            .unwrap()
    }
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.cfg.audit_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    /// Recorded API requests other than GET, without login and logout.
    fn writes(&self) -> Vec<(String, String)> {
        self.sb
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .filter(|r| r.path != "/api/v1/auth/login" && r.path != "/api/v1/auth/logout")
            .map(|r| (r.method, r.path))
            .collect()
    }
    fn fleet_targets(&self) -> Vec<String> {
        self.sb
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == FLEET)
            .map(|r| {
                r.body.unwrap()["target"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }
}

/// `(type, targetId, status)` of the run's incidents (raised ones and the sweep's resolved copies).
fn raised(r: &RunReport) -> BTreeSet<(String, String, String)> {
    r.result
        .incidents
        .iter()
        .map(|i| {
            (
                i.kind.clone(),
                i.target_id.clone(),
                i.status.as_str().to_string(),
            )
        })
        .collect()
}

fn incident<'a>(r: &'a RunReport, kind: &str, target: &str) -> &'a vizora_ops::model::Incident {
    r.result
        .incidents
        .iter()
        .find(|i| i.kind == kind && i.target_id == target)
        .unwrap_or_else(|| panic!("no {kind} for {target}: {:#?}", r.result.incidents))
}

fn t(kind: &str, target: &str, status: &str) -> (String, String, String) {
    (kind.into(), target.into(), status.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tenant_findings_are_exactly_the_seeded_faults_and_a_second_run_changes_nothing() {
    let e = env(&[]).await;
    let r = e.run().await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    let harrogate = format!("{}/harrogate james street", org_id());
    let expected: BTreeSet<_> = [
        t("display_offline", &id("Leeds Checkout 3"), "open"),
        t("display_offline", &id("Manchester Checkout 2"), "open"),
        t(
            "display_offline_persistent",
            &id("York Brand Wall"),
            "escalated",
        ),
        t("display_never_paired", &never_paired_id(), "open"),
        t("display_error", &id("Sheffield Checkout 2"), "resolved"),
        t("location_offline", &harrogate, "open"),
        t("no_content", &id("Sheffield Click and Collect 2"), "open"),
    ]
    .into_iter()
    .collect();
    assert_eq!(raised(&r), expected);
    // fixed = verified remediations (the error reset and each reload that saw a fresh heartbeat).
    assert_eq!(
        r.result.issues_fixed,
        verified_fixes_of(&e.state(), r.result.run_id.as_deref().unwrap())
    );
    assert!(
        r.result.issues_fixed >= 1,
        "the verified error reset is a fix"
    );
    let loc = incident(&r, "location_offline", &harrogate);
    assert_eq!(loc.severity.as_str(), "critical");
    assert!(
        loc.message.contains("All 4 enabled paired display(s)"),
        "{}",
        loc.message
    );
    assert!(loc.message.contains("\"Harrogate"), "{}", loc.message);
    for name in ["Leeds Checkout 3", "Manchester Checkout 2"] {
        let i = incident(&r, "display_offline", &id(name));
        assert_eq!(i.attempts, 1);
        assert!(i.last_attempt_at.is_some());
        assert!(
            i.error.as_deref().unwrap_or("").contains("no reconnection"),
            "{i:?}"
        );
    }

    // Requests: one PATCH of the error display, reloads to the two offline displays and the error display only.
    let writes = e.writes();
    assert!(writes.iter().all(|(m, _)| m != "DELETE"));
    let patch = format!("/api/v1/displays/{}", id("Sheffield Checkout 2"));
    assert_eq!(
        writes
            .iter()
            .filter(|(m, p)| m == "PATCH" && *p == patch)
            .count(),
        1
    );
    let targets: BTreeSet<String> = e.fleet_targets().into_iter().collect();
    let want: BTreeSet<String> = [
        "Leeds Checkout 3",
        "Manchester Checkout 2",
        "Sheffield Checkout 2",
    ]
    .iter()
    .map(|n| id(n))
    .collect();
    assert_eq!(targets, want);
    assert_eq!(writes.len(), 4, "{writes:?}");
    assert_eq!(
        e.sb.entity("displays", &id("Sheffield Checkout 2"))
            .unwrap()["status"],
        "offline"
    );

    // State: incidents, remediations with verification, reconnect statistics.
    let st = e.state();
    let rems = st["recentRemediations"].as_array().unwrap();
    assert_eq!(rems.len(), 4);
    let reloads: Vec<&Value> = rems.iter().filter(|a| a["endpoint"] == FLEET).collect();
    assert_eq!(reloads.len(), 3);
    assert!(
        reloads
            .iter()
            .all(|a| a["success"] == true && a["verified"].is_boolean())
    );
    let rc = &st["agentResults"]["fleet-manager"]["stats"]["reconnect"];
    // sent = reconnected + not reconnected; rate = reconnected / sent (README "What the counts mean"). The two
    // offline displays do not reconnect here; the error display's reload is judged too.
    assert_eq!(rc["commandsSent"], 3);
    assert_eq!(rc["verified"], 3);
    let rec = rc["reconnected"].as_u64().unwrap();
    assert!(rec <= 1, "{rc}");
    assert_eq!(rec + rc["notReconnected"].as_u64().unwrap(), 3, "{rc}");
    assert_eq!(
        rc["successRate"].as_f64().unwrap(),
        ((rec as f64 / 3.0) * 1000.0).round() / 1000.0
    );
    let lines = fleet_manager::reconnect_summary(&st["agentResults"]["fleet-manager"]["stats"]);
    assert!(
        lines[0].contains(&format!(
            "3 reload(s) sent, {rec} reconnected, {} not reconnected",
            3 - rec
        )),
        "{lines:?}"
    );

    // Audit: four mutation lines and one verification line per mutation.
    let audit = e.audit();
    let muts: Vec<&Value> = audit.iter().filter(|l| l["kind"] == "mutation").collect();
    let vers: Vec<&Value> = audit
        .iter()
        .filter(|l| l["kind"] == "verification")
        .collect();
    assert_eq!(muts.len(), 4);
    assert_eq!(vers.len(), 4);
    let mut_ids: HashSet<&str> = muts.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert!(
        vers.iter()
            .all(|v| mut_ids.contains(v["mutationId"].as_str().unwrap()))
    );

    // Alerts: one critical (location), one warning (persistent).
    {
        let alerts = e.alerts.all();
        let kinds: Vec<InlineKind> = alerts
            .iter()
            .map(|a| a.kind)
            .filter(|k| *k != InlineKind::Fixed)
            .collect();
        assert_eq!(kinds, vec![InlineKind::Critical, InlineKind::Warning]);
    }

    // Second run over the same sandbox: the cooldown holds the reloads, nothing is mutated, nothing re-alerts.
    e.sb.clear_requests();
    let r2 = e.run().await;
    assert_eq!(r2.exit_code, 1);
    assert!(e.writes().is_empty(), "{:?}", e.writes());
    for name in ["Leeds Checkout 3", "Manchester Checkout 2"] {
        let i = incident(&r2, "display_offline", &id(name));
        assert_eq!(i.remediation, DEFERRED);
        assert_eq!(i.attempts, 1);
    }
    assert_eq!(
        e.alerts
            .all()
            .iter()
            .filter(|a| a.kind != InlineKind::Fixed)
            .count(),
        2
    );
    let st2 = e.state();
    let err = st2["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "display_error")
        .unwrap();
    assert_eq!(err["status"], "resolved");
    assert_eq!(
        st2["agentResults"]["fleet-manager"]["stats"]["reconnect"]["commandsSent"],
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_reconnects_is_verified_resolved_and_counted() {
    let e = env(&[]).await;
    e.sb.set_reconnect_share(1.0);
    let r = e.run().await;
    for name in ["Leeds Checkout 3", "Manchester Checkout 2"] {
        let i = incident(&r, "display_offline", &id(name));
        assert_eq!(i.status.as_str(), "resolved", "{i:?}");
        assert_eq!(i.attempts, 1);
    }
    assert_eq!(
        r.result.issues_fixed,
        verified_fixes_of(&e.state(), r.result.run_id.as_deref().unwrap()),
        "fixed = the run's verified remediations"
    );
    assert!(
        r.result.issues_fixed >= 2,
        "at least the two reconnections are fixes"
    );
    assert_eq!(
        r.exit_code, 1,
        "York Brand Wall stays escalated, Harrogate stays critical"
    );
    let st = e.state();
    let rc = &st["agentResults"]["fleet-manager"]["stats"]["reconnect"];
    assert_eq!(
        (
            rc["commandsSent"].as_u64(),
            rc["verified"].as_u64(),
            rc["reconnected"].as_u64().map(|n| n >= 2)
        ),
        (Some(3), Some(3), Some(true))
    );
    let rec = rc["reconnected"].as_u64().unwrap();
    assert_eq!(rec + rc["notReconnected"].as_u64().unwrap(), 3, "{rc}");
    assert_eq!(
        rc["successRate"].as_f64().unwrap(),
        ((rec as f64 / 3.0) * 1000.0).round() / 1000.0
    );
    let leeds = id("Leeds Checkout 3");
    let verified: Vec<Value> = e
        .audit()
        .into_iter()
        .filter(|l| l["kind"] == "verification" && l["targetId"] == leeds.as_str())
        .collect();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0]["verified"], true);
    assert!(
        r.report
            .iter()
            .any(|l| l.contains("verified: \"Leeds Checkout 3\" reconnected"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_sends_no_write_and_lists_the_actions_the_real_run_then_makes() {
    let e = env(&[]).await;
    let dry = e.run_with(true, None).await;
    let non_get: Vec<(String, String)> =
        e.sb.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| (r.method, r.path))
            .collect();
    assert_eq!(
        non_get,
        vec![
            ("POST".to_string(), "/api/v1/auth/login".to_string()),
            ("POST".to_string(), "/api/v1/auth/logout".to_string())
        ]
    );
    assert!(!dry.wrote_state);
    assert!(!e.cfg.state_file.exists());
    let planned: BTreeSet<String> = dry
        .report
        .iter()
        .filter_map(|l| l.strip_prefix("would send reload to "))
        .map(|s| s.trim_end_matches(" (dry run)").to_string())
        .collect();
    assert_eq!(planned.len(), 3, "{:?}", dry.report);
    assert!(
        dry.report
            .iter()
            .any(|l| l
                .starts_with("would reset status error → offline for \"Sheffield Checkout 2\""))
    );
    let dry_lines: Vec<_> = e
        .audit()
        .into_iter()
        .filter(|l| l["kind"] == "mutation")
        .collect();
    assert_eq!(dry_lines.len(), 4);
    assert!(dry_lines.iter().all(|l| l["dryRun"] == true));

    let real = e.run().await;
    let done: BTreeSet<String> = real
        .report
        .iter()
        .filter_map(|l| l.strip_prefix("reload sent to "))
        .map(|s| s.split(" (devicesOnline").next().unwrap().to_string())
        .collect();
    assert_eq!(planned, done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_503_keeps_the_display_open_with_the_error_and_defers_the_rest() {
    let e = env(&[]).await;
    e.sb.add_fault(FaultSpec {
        method: Some("POST".into()),
        path: FLEET.into(),
        status: Some(503),
        body: Some(json!({"statusCode":503,"message":"Realtime gateway is temporarily unavailable. Commands were not sent."})),
        count: 1,
        ..Default::default()
    });
    let r = e.run().await;
    assert_eq!(r.exit_code, 1);
    let sent = e.fleet_targets();
    assert_eq!(sent.len(), 1, "never retried, nothing sent after the 503");
    let rem = fleet_action(&e.state());
    assert_eq!(rem["success"], false);
    assert!(rem["error"].as_str().unwrap().contains("503"), "{rem}");
    for name in ["Leeds Checkout 3", "Manchester Checkout 2"] {
        let i = incident(&r, "display_offline", &id(name));
        assert_eq!(i.status.as_str(), "open");
        if sent[0] == id(name) {
            assert!(
                i.error
                    .as_deref()
                    .unwrap()
                    .contains("Realtime gateway is temporarily unavailable")
            );
            assert_eq!(i.attempts, 1);
        } else {
            assert_eq!(i.remediation, DEFERRED);
            assert_eq!(i.attempts, 0);
        }
    }
    let err = incident(&r, "display_error", &id("Sheffield Checkout 2"));
    assert_eq!(
        err.status.as_str(),
        "resolved",
        "the PATCH of the error display still verifies"
    );
    if sent[0] != id("Sheffield Checkout 2") {
        assert!(err.remediation.contains(DEFERRED), "{err:?}");
    }
    assert_eq!(
        r.result.issues_fixed,
        verified_fixes_of(&e.state(), r.result.run_id.as_deref().unwrap())
    );
}

/// The one fleet-command RemediationAction of the state.
fn fleet_action(st: &Value) -> Value {
    let v: Vec<&Value> = st["recentRemediations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["endpoint"] == FLEET)
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_429_keeps_the_display_open_with_the_error() {
    let e = env(&[("OPS_HTTP_RETRIES", "0")]).await;
    e.sb.add_fault(FaultSpec {
        method: Some("POST".into()),
        path: FLEET.into(),
        status: Some(429),
        body: Some(json!({"statusCode":429,"message":"Fleet command rate limit exceeded. Max 10 commands per minute."})),
        retry_after: Some(json!(1)),
        count: 1,
        ..Default::default()
    });
    let r = e.run().await;
    assert_eq!(r.exit_code, 1);
    let sent = e.fleet_targets();
    assert_eq!(sent.len(), 1, "nothing more is sent after a 429");
    let st = e.state();
    let rem = fleet_action(&st);
    assert_eq!(rem["success"], false);
    assert!(
        rem["error"]
            .as_str()
            .unwrap()
            .contains("Max 10 commands per minute"),
        "{rem}"
    );
    for name in ["Leeds Checkout 3", "Manchester Checkout 2"] {
        let i = incident(&r, "display_offline", &id(name));
        assert_eq!(i.status.as_str(), "open");
        if sent[0] == id(name) {
            assert!(i.error.as_deref().unwrap().contains("429"), "{i:?}");
        } else {
            assert_eq!(i.remediation, DEFERRED);
        }
    }
    assert_eq!(
        st["agentResults"]["fleet-manager"]["stats"]["reconnect"]["commandsSent"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldown_allows_one_reload_per_display_per_thirty_minutes() {
    let e = env(&[]).await;
    let leeds = id("Leeds Checkout 3");
    e.run().await;
    assert_eq!(e.fleet_targets().iter().filter(|t| **t == leeds).count(), 1);

    // +11 min: within the cooldown (and the 20-min episode spacing): no second reload.
    e.sb.advance_clock(11.0 * 60.0);
    let clock = Arc::new(ManualClock::new(e.sb.now()));
    let r2 = e.run_with(false, Some(clock)).await;
    assert_eq!(e.fleet_targets().iter().filter(|t| **t == leeds).count(), 1);
    assert_eq!(
        incident(&r2, "display_offline", &leeds).remediation,
        DEFERRED
    );
    // Manchester Checkout 2 is now 56 min offline: still display_offline, also in cooldown.
    assert_eq!(
        incident(&r2, "display_offline", &id("Manchester Checkout 2")).remediation,
        DEFERRED
    );

    // +29 min (30 min − the 120 s margin has passed): Leeds gets its second and last reload of the episode;
    // Manchester is now persistent: escalated, superseding its display_offline, and no command.
    e.sb.advance_clock(18.0 * 60.0);
    let clock = Arc::new(ManualClock::new(e.sb.now()));
    let r3 = e.run_with(false, Some(clock)).await;
    assert_eq!(e.fleet_targets().iter().filter(|t| **t == leeds).count(), 2);
    assert_eq!(incident(&r3, "display_offline", &leeds).attempts, 2);
    let man = id("Manchester Checkout 2");
    assert_eq!(e.fleet_targets().iter().filter(|t| **t == man).count(), 1);
    let p = incident(&r3, "display_offline_persistent", &man);
    assert_eq!(p.status.as_str(), "escalated");
    let superseded = incident(&r3, "display_offline", &man);
    assert_eq!(superseded.status.as_str(), "resolved");
    assert!(
        superseded
            .message
            .ends_with(" — superseded by display_offline_persistent")
    );
    assert_eq!(
        p.detected, superseded.detected,
        "the episode start carries over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_unparseable_and_near_miss_heartbeats_from_the_list() {
    let e = env(&[]).await;
    let now = e.sb.now();
    let ago = |m: i64| vizora_ops::model::ts(now - chrono::Duration::minutes(m));
    let d = |id: &str, hb: Value, paired: Value, loc: &str| {
        json!({"id": id, "organizationId": org_id(), "nickname": format!("T {id}"), "location": loc,
               "status": "offline", "timezone": "UTC", "lastHeartbeat": hb, "isDisabled": false,
               "currentPlaylistId": "x", "pairedAt": paired, "tags": []})
    };
    let paired = json!("2026-01-01T00:00:00.000Z");
    let mut disabled = d("dis", json!(ago(30)), paired.clone(), "");
    disabled["isDisabled"] = json!(true);
    let items = vec![
        d("bad-hb", json!("not a timestamp"), paired.clone(), "Mall"),
        d("no-hb", Value::Null, paired.clone(), ""),
        d("never", Value::Null, Value::Null, ""),
        d("fourteen", json!(ago(14)), paired.clone(), ""),
        d("m1", json!(ago(90)), paired.clone(), "Test Mall"),
        d("m2", json!(ago(95)), paired.clone(), "test  mall"),
        d("m3", json!(ago(1)), paired.clone(), "Test Mall"),
        disabled,
    ];
    let n = items.len();
    e.sb.add_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/displays".into(),
        status: Some(200),
        body: Some(json!({"success": true, "data": {"data": items, "meta": {"page":1,"limit":100,"total":n,"totalPages":1}}})),
        count: 1,
        ..Default::default()
    });
    // A prior display_offline of the unparseable display is carried (not examined), not resolved.
    std::fs::write(
        &e.cfg.state_file,
        serde_json::to_vec(&json!({"incidents": [{
            "id": "fleet-manager:display_offline:bad-hb", "agent": "fleet-manager", "type": "display_offline",
            "severity": "warning", "target": "display", "targetId": "bad-hb", "detected": ago(40),
            "message": "m", "remediation": "r", "status": "open", "attempts": 1}]}))
        .unwrap(),
    )
    .unwrap();
    let r = e.run().await;
    let got: BTreeSet<_> = r
        .result
        .incidents
        .iter()
        .map(|i| {
            (
                i.kind.clone(),
                i.target_id.clone(),
                i.status.as_str().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<_> = [
        t("display_offline_persistent", "no-hb", "escalated"),
        t("display_never_paired", "never", "open"),
        t("display_offline_persistent", "m1", "escalated"),
        t("display_offline_persistent", "m2", "escalated"),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        got, want,
        "no location_offline for a location with one online screen"
    );
    assert!(
        incident(&r, "display_offline_persistent", "no-hb")
            .message
            .contains("never sent a heartbeat")
    );
    let st = e.state();
    let carried = st["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["targetId"] == "bad-hb")
        .unwrap();
    assert_eq!(carried["status"], "open");
    assert!(e.writes().is_empty());
    assert_eq!(r.exit_code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prior_incidents_of_disabled_displays_resolve() {
    let e = env(&[]).await;
    let dis = id("Leeds Cafe Menu 3");
    std::fs::write(
        &e.cfg.state_file,
        serde_json::to_vec(&json!({"incidents": [{
            "id": format!("fleet-manager:display_offline_persistent:{dis}"), "agent": "fleet-manager",
            "type": "display_offline_persistent", "severity": "warning", "target": "display", "targetId": dis,
            "detected": "2026-08-01T00:00:00.000Z", "message": "m", "remediation": "r", "status": "escalated",
            "attempts": 0}]}))
        .unwrap(),
    )
    .unwrap();
    let r = e.run().await;
    assert!(!e.fleet_targets().contains(&dis));
    let copy = incident(&r, "display_offline_persistent", &dis);
    assert_eq!(copy.status.as_str(), "resolved");
    assert_eq!(r.result.issues_resolved, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_scan_runs_only_per_display_rules_and_verifies_many_by_one_walk() {
    let e = env(&[]).await;
    e.sb.add_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/display-groups".into(),
        status: Some(200),
        body: Some(json!({"success": true, "data": {"data": [], "meta": {"page":1,"limit":100,"total":10,"totalPages":1}}})),
        count: 1,
        ..Default::default()
    });
    let r = e.run().await;
    let st = incident(&r, "scan-truncated", "entity-lists");
    assert_eq!(st.severity.as_str(), "info");
    assert!(st.message.contains("display-groups"), "{}", st.message);
    assert!(
        r.result
            .incidents
            .iter()
            .all(|i| i.kind != "location_offline" && i.kind != "no_content")
    );
    // The four Harrogate screens are now judged one by one: each offline 39–41 min gets a reload.
    let harrogate: Vec<String> = fixture()["displays"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["location"]
                .as_str()
                .is_some_and(|l| l.to_lowercase().contains("harrogate"))
        })
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(harrogate.len(), 4);
    for h in &harrogate {
        assert_eq!(incident(&r, "display_offline", h).attempts, 1);
    }
    assert_eq!(e.fleet_targets().len(), 7);
    let display_walks =
        e.sb.requests()
            .iter()
            .filter(|q| q.method == "GET" && q.path == "/api/v1/displays")
            .count();
    assert_eq!(
        display_walks, 2,
        "more than 5 pending → one fresh walk for verification"
    );
    let cov = r.result.coverage.clone().unwrap();
    assert!(cov.contains(&"display_offline".to_string()));
    assert!(!cov.contains(&"location_offline".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_drift_on_fleet_commands_is_critical_exit_2_with_a_full_write() {
    let e = env(&[]).await;
    e.sb.add_fault(FaultSpec {
        method: Some("POST".into()),
        path: FLEET.into(),
        status: Some(404),
        body: Some(json!({"statusCode":404,"message":"Cannot POST /api/v1/fleet/commands","error":"Not Found"})),
        count: 5,
        ..Default::default()
    });
    let r = e.run().await;
    assert_eq!(r.exit_code, 2);
    assert!(r.wrote_state);
    assert_eq!(
        e.fleet_targets().len(),
        1,
        "the route is not called again this run"
    );
    let d = incident(&r, "api-contract-drift", "post-fleet-commands");
    assert_eq!(d.severity.as_str(), "critical");
    let st = e.state();
    assert!(
        st["lastRun"]["fleet-manager"].is_string(),
        "full write stamps lastRun"
    );
    assert!(
        st["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "location_offline")
    );
    assert!(
        e.alerts
            .all()
            .iter()
            .any(|a| a.kind == InlineKind::Critical && a.summary.contains("drift"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_page_failure_or_unknown_shape_exits_2_without_writing() {
    let e = env(&[("OPS_HTTP_RETRIES", "0")]).await;
    e.sb.add_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/schedules".into(),
        status: Some(500),
        count: 1,
        ..Default::default()
    });
    let r = e.run().await;
    assert_eq!(r.exit_code, 2);
    assert!(!r.wrote_state);
    assert!(!e.cfg.state_file.exists());

    e.sb.set_list_shape("/api/v1/displays", ListShape::Unknown);
    let r = e.run().await;
    assert_eq!(r.exit_code, 2);
    assert!(
        r.fatal
            .as_deref()
            .unwrap()
            .contains("unrecognised list shape"),
        "{:?}",
        r.fatal
    );
    assert!(!e.cfg.state_file.exists());
    assert!(e.writes().is_empty());
    let _ = &e.dir;
}

/// The run's verified remediations in the state: "fixed" by its one definition (README "What the counts mean").
fn verified_fixes_of(st: &Value, run_id: &str) -> u32 {
    st["recentRemediations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["runId"] == run_id && r["verified"] == true)
        .count() as u32
}
