//! The Vizora API client against the sandbox (agents.md section 5): session, page walk, faults, budget, mutations.

use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vizora_ops::sandbox::{FaultSpec, ListShape, Sandbox, SandboxOptions};
use vizora_ops::state::audit::AuditLog;
use vizora_ops::vizora::budget::{Limits, RateBudget};
use vizora_ops::vizora::{
    ApiError, Client, ClientOptions, MutationRequest, MutationStatus, Precondition, VizoraApi,
};

struct Env {
    sb: Sandbox,
    _dir: tempfile::TempDir,
    audit: AuditLog,
}

async fn env(throttle: bool) -> Env {
    let sb = Sandbox::start(
        vizora_ops::sandbox::DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::new(dir.path().join("ops-audit.jsonl"));
    Env {
        sb,
        _dir: dir,
        audit,
    }
}

fn fast_limits() -> Limits {
    Limits {
        per_second: 1000,
        per_minute: 100_000,
        per_hour: 1_000_000,
        logins_per_minute: 100,
    }
}

fn client(e: &Env, dry_run: bool, limits: Limits, timeout_ms: u64) -> Client {
    client_with(e, dry_run, limits, timeout_ms, 100_000)
}

/// [`client`] with its own `OPS_MAX_LIST_ITEMS`.
fn client_with(
    e: &Env,
    dry_run: bool,
    limits: Limits,
    timeout_ms: u64,
    max_list_items: usize,
) -> Client {
    Client::new(
        ClientOptions {
            base_url: e.sb.api_url.clone(),
            email: Some("ops@example.test".into()),
            password: Some("ops-demo-password".into()),
            agent: "content-lifecycle".into(),
            run_id: "test-run".into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(timeout_ms),
            notify_timeout: Duration::from_secs(2),
            retries: 3,
            max_list_items,
            dry_run,
            deadline: Instant::now() + Duration::from_secs(60),
        },
        Arc::new(RateBudget::memory(limits)),
        e.audit.clone(),
    )
    .unwrap()
}

fn fault(path: &str, status: u16, count: u32) -> FaultSpec {
    FaultSpec {
        method: Some("GET".into()),
        path: path.into(),
        status: Some(status),
        count,
        ..Default::default()
    }
}

#[tokio::test]
async fn login_walk_and_logout_release_the_refresh_token() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    let l = c.walk("/api/v1/content").await.unwrap();
    assert!(l.complete, "{:?}", l.reason);
    assert_eq!(l.total, Some(l.items.len() as u64));
    assert_eq!(l.pages as usize, l.items.len().div_ceil(100));
    assert!(c.organization_id().is_some());
    c.finish().await;
    let s = e.sb.sessions();
    assert_eq!((s.logins, s.logouts, s.refresh_revoked), (1, 1, 1));
    let logout =
        e.sb.requests()
            .into_iter()
            .find(|r| r.path == "/api/v1/auth/logout")
            .unwrap();
    assert!(
        logout.has_cookie && logout.csrf_header,
        "logout presents cookies and the CSRF header"
    );
    let others: Vec<_> =
        e.sb.requests()
            .into_iter()
            .filter(|r| r.path != "/api/v1/auth/logout")
            .collect();
    assert!(
        others.iter().all(|r| !r.has_cookie),
        "no cookies except on logout"
    );
}

/// An ItemSink that keeps only the ids and counts how often the walk restarted.
#[derive(Default)]
struct IdSink {
    ids: Vec<String>,
    restarts: u32,
}

impl vizora_ops::vizora::ItemSink for IdSink {
    fn item(&mut self, item: Value) {
        self.ids.push(item["id"].as_str().unwrap_or("").to_string());
    }
    fn restart(&mut self) {
        self.restarts += 1;
        self.ids.clear();
    }
}

#[tokio::test]
async fn walk_into_hands_every_unique_item_to_the_sink_and_keeps_none() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    let collected = c.walk("/api/v1/content").await.unwrap();
    let mut sink = IdSink::default();
    let streamed = c.walk_into("/api/v1/content", &mut sink).await.unwrap();
    assert!(streamed.complete, "{:?}", streamed.reason);
    assert!(streamed.items.is_empty(), "walk_into keeps no items");
    assert!(streamed.pages >= 3, "the demo content list spans pages");
    assert_eq!(streamed.collected, sink.ids.len());
    assert_eq!(Some(streamed.collected as u64), streamed.total);
    assert_eq!(sink.restarts, 0);
    let ids: Vec<String> = collected
        .items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sink.ids, ids, "same items, same order as walk()");

    // The list cap stops the walk at exactly OPS_MAX_LIST_ITEMS items, incomplete.
    let capped_client = client_with(&e, false, fast_limits(), 5000, 150);
    let mut sink = IdSink::default();
    let capped = capped_client
        .walk_into("/api/v1/content", &mut sink)
        .await
        .unwrap();
    assert!(!capped.complete);
    assert_eq!((capped.collected, sink.ids.len()), (150, 150));
    assert!(
        capped
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("OPS_MAX_LIST_ITEMS"),
        "{:?}",
        capped.reason
    );
    assert_eq!(sink.ids[..], ids[..150]);
}

#[tokio::test]
async fn a_single_503_is_retried_and_page_one_failing_after_retries_is_an_error() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    e.sb.add_fault(fault("/api/v1/content", 503, 1));
    assert!(
        c.walk("/api/v1/content").await.unwrap().complete,
        "one 503 is retried transparently"
    );
    e.sb.add_fault(fault("/api/v1/playlists", 500, 4));
    let err = c.walk("/api/v1/playlists").await.unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 500, .. }), "{err}");
    assert!(
        err.to_string().starts_with("API 500 GET /api/v1/playlists"),
        "{err}"
    );
}

#[tokio::test]
async fn later_page_failure_makes_the_walk_incomplete_not_fatal() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    // Let page 1 through, then fail everything on the content route.
    let first = c.get("/api/v1/content?page=1&limit=100").await.unwrap();
    assert!(first["data"].as_array().unwrap().len() == 100);
    let mut seen = 0;
    // The sandbox matches by path (query ignored): fail after the first page by counting requests.
    e.sb.clear_requests();
    let walk = {
        let w = c.walk("/api/v1/content");
        tokio::pin!(w);
        loop {
            tokio::select! {
                r = &mut w => break r,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {
                    let n = e.sb.requests().iter().filter(|r| r.path == "/api/v1/content" && r.status == 200).count();
                    if n >= 1 && seen == 0 {
                        seen = 1;
                        e.sb.add_fault(fault("/api/v1/content", 503, 10));
                    }
                }
            }
        }
    }
    .unwrap();
    assert!(!walk.complete);
    assert!(
        walk.reason.as_deref().unwrap_or("").contains("failed"),
        "{:?}",
        walk.reason
    );
    assert!(!walk.items.is_empty(), "collected items are returned");
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    c.get("/api/v1/organizations/current").await.unwrap();
    e.sb.add_fault(FaultSpec {
        retry_after: Some(json!(1)),
        ..fault("/api/v1/organizations/storage", 429, 1)
    });
    let t = Instant::now();
    let v = c.get("/api/v1/organizations/storage").await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited Retry-After"
    );
    assert!(v["quotaBytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_request_hanging_past_the_timeout_is_retried() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 400);
    c.get("/api/v1/organizations/current").await.unwrap();
    e.sb.add_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/organizations/storage".into(),
        delay_ms: Some(3000),
        count: 1,
        ..Default::default()
    });
    let t = Instant::now();
    let v = c.get("/api/v1/organizations/storage").await.unwrap();
    assert!(
        v.get("usedBytes").is_some(),
        "the retry after the timeout succeeded"
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "the first attempt waited for its timeout ({took:?})"
    );
    assert!(
        took < Duration::from_millis(3000),
        "the hanging answer was not awaited ({took:?})"
    );
}

#[tokio::test]
async fn malformed_json_and_unknown_list_shapes_are_errors_never_empty_lists() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    e.sb.add_fault(FaultSpec {
        raw_body: Some("{\"success\":true,\"data\":{\"data\":[".into()),
        ..fault("/api/v1/schedules", 200, 1)
    });
    let err = c.walk("/api/v1/schedules").await.unwrap_err();
    assert!(matches!(err, ApiError::BadShape { .. }), "{err}");
    e.sb.set_list_shape("/api/v1/schedules", ListShape::Unknown);
    let err = c.walk("/api/v1/schedules").await.unwrap_err();
    assert!(
        matches!(err, ApiError::UnrecognisedListShape { .. }),
        "{err}"
    );
    assert!(err.is_fatal());
    e.sb.set_list_shape("/api/v1/schedules", ListShape::Bare);
    let l = c.walk("/api/v1/schedules").await.unwrap();
    assert!(!l.complete, "a bare array has no total: never complete");
    e.sb.set_list_shape("/api/v1/schedules", ListShape::Items);
    assert!(c.walk("/api/v1/schedules").await.unwrap().complete);
}

#[tokio::test]
async fn a_401_mid_run_logs_in_again_once_and_a_second_is_fatal() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    c.get("/api/v1/organizations/current").await.unwrap();
    e.sb.add_fault(fault("/api/v1/organizations/storage", 401, 1));
    c.get("/api/v1/organizations/storage").await.unwrap();
    assert_eq!(e.sb.sessions().logins, 2);
    assert_eq!(
        e.sb.sessions().logouts,
        1,
        "the rejected session was logged out"
    );
    e.sb.add_fault(fault("/api/v1/organizations/storage", 401, 1));
    let err = c.get("/api/v1/organizations/storage").await.unwrap_err();
    assert!(matches!(err, ApiError::AuthLost(_)), "{err}");
}

#[tokio::test]
async fn archive_404_not_found_differs_from_a_missing_route_which_is_drift() {
    let e = env(false).await;
    let c = client(&e, false, fast_limits(), 5000);
    let content = c.walk("/api/v1/content").await.unwrap();
    let item = content
        .items
        .iter()
        .find(|i| i["status"] == "active")
        .unwrap();
    let id = item["id"].as_str().unwrap().to_string();
    let req = |id: &str| MutationRequest {
        action: format!("Archive content {id}"),
        target: "content".into(),
        target_id: id.into(),
        method: Method::POST,
        path: format!("/api/v1/content/{id}/archive"),
        body: json!({}),
        before_path: format!("/api/v1/content/{id}"),
        route_slug: "post-content-archive".into(),
        idempotent: true,
        precondition: None,
    };
    e.sb.add_fault(FaultSpec {
        method: Some("POST".into()),
        path: format!("/api/v1/content/{id}/archive"),
        status: Some(404),
        body: Some(json!({"statusCode":404,"message":"Content not found","error":"Not Found"})),
        count: 1,
        ..Default::default()
    });
    let o = c.mutate(req(&id)).await;
    assert!(
        matches!(o.status, MutationStatus::Failed(ApiError::NotFound { .. })),
        "{:?}",
        o.status
    );
    assert!(!o.is_drift());
    e.sb.add_fault(FaultSpec {
        method: Some("POST".into()),
        path: format!("/api/v1/content/{id}/archive"),
        status: Some(404),
        body: Some(json!({"statusCode":404,"message":format!("Cannot POST /api/v1/content/{id}/archive"),"error":"Not Found"})),
        count: 1,
        ..Default::default()
    });
    let o = c.mutate(req(&id)).await;
    assert!(o.is_drift());
    assert_eq!(c.drifted_routes(), vec!["post-content-archive".to_string()]);
    let o = c.mutate(req(&id)).await;
    assert!(
        matches!(o.status, MutationStatus::SkippedDrift),
        "route not called again this run"
    );
    let lines = e.audit.read_all();
    assert_eq!(lines.len(), 2, "one audit line per attempted mutation");
    assert_eq!(lines[1]["success"], false);
    assert!(lines[1]["error"].as_str().unwrap().contains("Cannot POST"));
    // The real archive works, is audited with before/after, and is idempotent.
    let c2 = client(&e, false, fast_limits(), 5000);
    let o = c2.mutate(req(&id)).await;
    let MutationStatus::Done(after) = &o.status else {
        panic!("{:?}", o.status)
    };
    assert_eq!(after["status"], "archived");
    assert_eq!(o.before.as_ref().unwrap()["status"], "active");
    assert_eq!(e.sb.entity("content", &id).unwrap()["status"], "archived");
}

/// The audited `PATCH /schedules/:id {"isActive":false}` of schedule `id`.
fn deactivate(id: &str, precondition: Option<Precondition>) -> MutationRequest {
    MutationRequest {
        action: "Deactivate schedule".into(),
        target: "schedule".into(),
        target_id: id.to_string(),
        method: Method::PATCH,
        path: format!("/api/v1/schedules/{id}"),
        body: json!({"isActive": false}),
        before_path: format!("/api/v1/schedules/{id}"),
        route_slug: "patch-schedules".into(),
        idempotent: true,
        precondition,
    }
}

#[tokio::test]
async fn a_failed_precondition_on_the_before_read_sends_and_audits_nothing() {
    let e = env(false).await;
    for dry_run in [false, true] {
        let c = client(&e, dry_run, fast_limits(), 5000);
        let sched = c.walk("/api/v1/schedules").await.unwrap();
        let id = sched.items[0]["id"].as_str().unwrap().to_string();
        e.sb.clear_requests();
        let req = |check: Precondition| deactivate(&id, Some(check));
        let audited = e.audit.read_all().len();
        let o = c
            .mutate(req(Precondition::new(|before| {
                Err(format!("evidence: name is {}", before["name"]))
            })))
            .await;
        let MutationStatus::Unneeded(evidence) = &o.status else {
            panic!("{:?}", o.status)
        };
        assert!(evidence.starts_with("evidence: name is"), "{evidence}");
        assert!(o.before.is_some() && o.audit_id.is_none() && o.action.is_none());
        assert_eq!(e.audit.read_all().len(), audited, "no audit line");
        let reqs = e.sb.requests();
        assert_eq!(reqs.len(), 1, "only the before read: {reqs:?}");
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].path.as_str()),
            ("GET", format!("/api/v1/schedules/{id}").as_str())
        );
        // A passing precondition lets the same request through (sent, or audited as planned in a dry run).
        let o = c.mutate(req(Precondition::new(|_| Ok(())))).await;
        if dry_run {
            assert!(matches!(o.status, MutationStatus::DryRun), "{:?}", o.status);
        } else {
            assert!(
                matches!(o.status, MutationStatus::Done(_)),
                "{:?}",
                o.status
            );
            assert_eq!(e.sb.entity("schedules", &id).unwrap()["isActive"], false);
        }
        assert_eq!(e.audit.read_all().len(), audited + 1);
        c.finish().await;
    }
}

#[tokio::test]
async fn dry_run_mutation_sends_nothing_but_audits_the_plan() {
    let e = env(false).await;
    let c = client(&e, true, fast_limits(), 5000);
    let sched = c.walk("/api/v1/schedules").await.unwrap();
    let id = sched.items[0]["id"].as_str().unwrap().to_string();
    let o = c.mutate(deactivate(&id, None)).await;
    assert!(matches!(o.status, MutationStatus::DryRun));
    c.finish().await;
    let writes: Vec<_> =
        e.sb.requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.path.starts_with("/api/v1/auth/"))
            .collect();
    assert!(writes.is_empty(), "{writes:?}");
    let line = &e.audit.read_all()[0];
    assert_eq!(line["dryRun"], true);
    assert_eq!(line["request"], json!({"isActive": false}));
    assert!(line.get("after").is_none());
}

#[tokio::test]
async fn the_production_budget_keeps_a_long_walk_under_the_throttle() {
    let e = env(true).await;
    let c = client(
        &e,
        false,
        Limits {
            per_second: 10,
            per_minute: 100,
            per_hour: 1000,
            logins_per_minute: 5,
        },
        5000,
    );
    for _ in 0..3 {
        let l = c.walk("/api/v1/content").await.unwrap();
        assert!(l.complete);
    }
    let throttled = e.sb.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(
        throttled, 0,
        "the shared budget never lets the sandbox throttle us"
    );
    let v: Value = c.get("/api/v1/organizations/current").await.unwrap();
    assert!(v.get("id").is_some());
}
