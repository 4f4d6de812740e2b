//! The sandbox process manager (design README §1 `demo`, §4): its contract against a small axum stand-in of the
//! control API (exact requests, mapping, errors), then against the real in-process sandbox together with the probes
//! (a service taken down is seen as errored and unhealthy, restarted, and probed healthy again).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vizora_ops::agents::probes::{
    LiveService, live_url_for, probe_client, probe_live, probe_middleware, probe_web,
};
use vizora_ops::procman::{
    PmError, ProcStatus, ProcTarget, ProcessManager, SandboxProcessManager, from_config,
};
use vizora_ops::sandbox::{DEMO_FIXTURE, Sandbox, SandboxOptions, Service, ServiceState};

type Calls = Arc<Mutex<Vec<String>>>;

/// A stand-in control API; returns its origin and the list of received requests (`METHOD path`).
async fn mock_control() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = Router::new()
        .route(
            "/__sandbox/services",
            get(|State(c): State<Calls>| async move {
                c.lock().unwrap().push("GET /__sandbox/services".into());
                axum::Json(serde_json::json!({
                    "api": {"state": "down", "restarts": 3, "url": "http://127.0.0.1:1"},
                    "web": {"state": "assets_broken", "restarts": 0, "url": "http://127.0.0.1:2"},
                    "realtime": {"state": "unhealthy", "restarts": 1, "url": "http://127.0.0.1:3"}
                }))
            }),
        )
        .route(
            "/__sandbox/services/{svc}/restart",
            post(
                |State(c): State<Calls>, Path(svc): Path<String>| async move {
                    c.lock()
                        .unwrap()
                        .push(format!("POST /__sandbox/services/{svc}/restart"));
                    if svc == "realtime" {
                        (StatusCode::INTERNAL_SERVER_ERROR, "restart failed\nmore")
                    } else {
                        (StatusCode::OK, "{}")
                    }
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}"), calls)
}

#[tokio::test]
async fn list_maps_services_to_app_names_pm_ids_and_states() {
    let (origin, calls) = mock_control().await;
    let pm = SandboxProcessManager::new(format!("{origin}/__sandbox"));
    assert_eq!(pm.kind(), "sandbox");
    let list = pm.list().await.unwrap();
    let got: Vec<_> = list
        .iter()
        .map(|p| (p.name.as_str(), p.pm_id, p.status.clone(), p.restart_time))
        .collect();
    assert_eq!(
        got,
        vec![
            ("vizora-middleware", Some(0), ProcStatus::Errored, Some(3)),
            ("vizora-realtime", Some(1), ProcStatus::Online, Some(1)),
            ("vizora-web", Some(2), ProcStatus::Online, Some(0)),
        ]
    );
    assert_eq!(*calls.lock().unwrap(), vec!["GET /__sandbox/services"]);
}

#[tokio::test]
async fn restart_posts_to_the_service_and_records_a_sandbox_argv() {
    let (origin, calls) = mock_control().await;
    // A bare origin gets the /__sandbox prefix.
    let pm = SandboxProcessManager::new(origin.clone());
    let r = pm
        .restart(&ProcTarget::App("vizora-web".into()))
        .await
        .unwrap();
    assert_eq!(r.argv, vec!["sandbox", "restart", "vizora-web"]);
    assert_eq!(r.exit_code, None);
    let r = pm.reload(&ProcTarget::PmId(0)).await.unwrap();
    assert_eq!(
        r.argv,
        vec!["sandbox", "restart", "vizora-middleware"],
        "reload restarts"
    );
    for bad in [
        ProcTarget::App("vizora web".into()),
        ProcTarget::App("$(id)".into()),
        ProcTarget::App("vizora-other".into()),
        ProcTarget::PmId(7),
    ] {
        assert!(
            matches!(pm.restart(&bad).await, Err(PmError::Rejected(_))),
            "{bad:?}"
        );
    }
    let e = pm
        .restart(&ProcTarget::App("vizora-realtime".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PmError::Http(m) if m.contains("HTTP 500") && m.contains("restart failed")),
        "{e:?}"
    );
    assert_eq!(
        *calls.lock().unwrap(),
        vec![
            "POST /__sandbox/services/web/restart",
            "POST /__sandbox/services/api/restart",
            "POST /__sandbox/services/realtime/restart",
        ]
    );
}

#[tokio::test]
async fn unreachable_or_unconfigured_control_api_is_an_http_error() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let pm = SandboxProcessManager::new(format!("http://127.0.0.1:{port}/__sandbox"));
    assert!(matches!(pm.list().await, Err(PmError::Http(_))));
    let pm = SandboxProcessManager::new("");
    let e = pm.list().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "sandbox control API: OPS_SANDBOX_CONTROL_URL is not set"
    );
}

#[tokio::test]
async fn real_sandbox_service_down_is_errored_restarted_and_probed_healthy() {
    let opts = SandboxOptions {
        throttle: false,
        ..SandboxOptions::default()
    };
    let sb = Sandbox::start(DEMO_FIXTURE, opts).await.expect("sandbox");
    let cfg = vizora_ops::config::Config::from_source(
        vizora_ops::config::Source::from_pairs([
            ("OPS_PROCESS_MANAGER", "sandbox"),
            ("OPS_SANDBOX_CONTROL_URL", sb.control_url.as_str()),
        ]),
        std::path::Path::new("/tmp/ops-root"),
    )
    .expect("config");
    let pm = from_config(&cfg.health);
    assert_eq!(pm.kind(), "sandbox");
    let client = probe_client();
    let t = Duration::from_secs(5);
    let ready = format!("{}/api/v1/health/ready", sb.api_url);
    let web = format!("{}/", sb.web_url);

    // Healthy start.
    let list = pm.list().await.unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.iter().all(|p| p.status == ProcStatus::Online),
        "{list:#?}"
    );
    assert!(probe_web(&client, &web, t).await.is_healthy());
    assert!(probe_middleware(&client, &ready, t).await.is_healthy());

    // Web down: errored, unhealthy; restart brings it back.
    sb.set_service(Service::Web, ServiceState::Down);
    let list = pm.list().await.unwrap();
    let w = list.iter().find(|p| p.name == "vizora-web").unwrap();
    assert_eq!(w.status, ProcStatus::Errored);
    let before = w.restart_time.unwrap_or(0);
    assert!(!probe_web(&client, &web, t).await.is_healthy());
    let rec = pm
        .restart(&ProcTarget::App("vizora-web".into()))
        .await
        .unwrap();
    assert_eq!(rec.argv, vec!["sandbox", "restart", "vizora-web"]);
    let list = pm.list().await.unwrap();
    let w = list.iter().find(|p| p.name == "vizora-web").unwrap();
    assert_eq!(w.status, ProcStatus::Online);
    assert_eq!(w.restart_time, Some(before + 1));
    assert!(
        probe_web(&client, &web, t).await.is_healthy(),
        "{:?}",
        probe_web(&client, &web, t).await
    );

    // Broken assets: the page answers, its assets do not.
    sb.set_service(Service::Web, ServiceState::AssetsBroken);
    let v = probe_web(&client, &web, t).await;
    assert!(
        v.detail()
            .is_some_and(|d| d.contains("asset /_next/static/")),
        "{v:?}"
    );

    // API unhealthy: readiness 503 with JSON, liveness alive (service-unready, not a restart case).
    sb.set_service(Service::Api, ServiceState::Unhealthy);
    match probe_middleware(&client, &ready, t).await {
        vizora_ops::agents::probes::ProbeVerdict::Unhealthy {
            readiness_503_json, ..
        } => assert!(readiness_503_json),
        h => panic!("{h:?}"),
    }
    assert!(probe_live(&client, &live_url_for(&ready, LiveService::Middleware), t).await);

    // API down: the control API (same port) still answers; the middleware is errored until restarted by pm_id.
    sb.set_service(Service::Api, ServiceState::Down);
    assert!(!probe_middleware(&client, &ready, t).await.is_healthy());
    assert!(!probe_live(&client, &live_url_for(&ready, LiveService::Middleware), t).await);
    let list = pm.list().await.unwrap();
    let api = list.iter().find(|p| p.name == "vizora-middleware").unwrap();
    assert_eq!(api.status, ProcStatus::Errored);
    let rec = pm
        .restart(&ProcTarget::PmId(api.pm_id.unwrap()))
        .await
        .unwrap();
    assert_eq!(rec.argv, vec!["sandbox", "restart", "vizora-middleware"]);
    assert!(probe_middleware(&client, &ready, t).await.is_healthy());
    sb.shutdown().await;
}
