//! The three servers, their states and restarts, and the web and realtime endpoints.
//!
//! Web (N+1): `/` is an HTML page referencing `/_next/static/chunks/main-<hash>.js` and `/_next/static/css/<hash>.css`
//! (both served with content). Realtime (N+2): `/api/health` (always 200 with `status`), `/api/health/ready`
//! (200 `{status:"ready",ready:true}` or 503 `{status:"not ready",ready:false}`), `/api/health/live`, `/api/status`.

use super::net::{ConnInfo, Gate, SbListener};
use super::respond::{Resp, fault_response};
use super::time::fmt_ms;
use super::{Service, ServiceState, ServiceStatus, Shared, lock};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Starts serving `svc` on an already bound listener.
pub(crate) fn spawn(
    sh: &Arc<Shared>,
    svc: Service,
    l: std::net::TcpListener,
) -> anyhow::Result<()> {
    let _g = sh.rt.enter();
    let inner = tokio::net::TcpListener::from_std(l)?;
    let gate = Arc::new(Gate::default());
    let listener = SbListener {
        inner,
        gate: gate.clone(),
        global: sh.global.clone(),
    };
    // The app comes from `Shared::app` (built in `super::router`), so this module, which the control API drives,
    // never imports the router that nests the control API.
    let app = (sh.app)(sh, svc).into_make_service_with_connect_info::<ConnInfo>();
    let task = sh.rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut s = lock(&sh.services);
    let slot = &mut s[svc as usize];
    if let Some(old) = slot.task.replace(task) {
        old.abort();
    }
    slot.gate = gate;
    slot.started = std::time::Instant::now();
    Ok(())
}

fn stop_listening(sh: &Shared, svc: Service) {
    let mut s = lock(&sh.services);
    let slot = &mut s[svc as usize];
    slot.gate.closed.store(true, Ordering::Relaxed);
    if let Some(t) = slot.task.take() {
        t.abort();
    }
}

fn listening(sh: &Shared, svc: Service) -> bool {
    lock(&sh.services)[svc as usize].task.is_some()
}

/// Listens again on the service's port (retrying for a few seconds if the port is briefly unavailable).
fn relisten(sh: &Arc<Shared>, svc: Service) {
    let addr = {
        let mut s = lock(&sh.services);
        let slot = &mut s[svc as usize];
        if slot.task.is_some() || slot.rebinding {
            return;
        }
        slot.rebinding = true;
        slot.addr
    };
    let bind = move || -> std::io::Result<std::net::TcpListener> {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(l)
    };
    match bind() {
        Ok(l) => {
            let _ = spawn(sh, svc, l);
            lock(&sh.services)[svc as usize].rebinding = false;
        }
        Err(_) => {
            let sh2 = sh.clone();
            sh.rt.spawn(async move {
                for _ in 0..100 {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    if lock(&sh2.services)[svc as usize].state == ServiceState::Down {
                        break;
                    }
                    if let Ok(l) = bind() {
                        let _ = spawn(&sh2, svc, l);
                        break;
                    }
                }
                lock(&sh2.services)[svc as usize].rebinding = false;
            });
        }
    }
}

/// Sets a service's state; `Down` closes the web/realtime listener, leaving `Down` listens again.
pub(crate) fn set_state(sh: &Arc<Shared>, svc: Service, state: ServiceState) {
    lock(&sh.services)[svc as usize].state = state;
    if svc == Service::Api {
        return;
    }
    if state == ServiceState::Down {
        stop_listening(sh, svc);
    } else if !listening(sh, svc) {
        relisten(sh, svc);
    }
}

/// Restart: back to `Healthy`, listening, uptime reset, restart count + 1 (the API's throttle buckets, held in
/// process memory, are reset too).
pub(crate) fn restart(sh: &Arc<Shared>, svc: Service) {
    {
        let mut s = lock(&sh.services);
        let slot = &mut s[svc as usize];
        slot.state = ServiceState::Healthy;
        slot.restarts += 1;
        slot.started = std::time::Instant::now();
    }
    if svc == Service::Api {
        lock(&sh.throttle).reset();
    } else if !listening(sh, svc) {
        relisten(sh, svc);
    }
}

/// State, restarts and URL of each service.
pub(crate) fn statuses(sh: &Shared) -> HashMap<Service, ServiceStatus> {
    let s = lock(&sh.services);
    Service::ALL
        .iter()
        .map(|&svc| {
            let slot = &s[svc as usize];
            (
                svc,
                ServiceStatus {
                    state: slot.state,
                    restarts: slot.restarts,
                    url: format!("http://{}", slot.addr),
                },
            )
        })
        .collect()
}

/// Applies a fault of `svc`, if one matches: `Some(response)` when it prescribes one.
async fn fault(sh: &Shared, svc: Service, method: &str, path: &str) -> Option<Response> {
    let f = sh.take_fault(svc, method, path)?;
    if let Some(ms) = f.delay_ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    (f.status.is_some() || f.body.is_some() || f.raw_body.is_some())
        .then(|| fault_response(&f).into_response())
}

fn html(status: u16, body: String) -> Response {
    Resp {
        status,
        body: body.into_bytes(),
        ctype: "text/html; charset=utf-8",
        headers: Vec::new(),
    }
    .into_response()
}

fn nest_404(method: &str, url: &str) -> Response {
    Resp::json(404, &json!({ "message": format!("Cannot {method} {url}"), "error": "Not Found", "statusCode": 404 })).into_response()
}

/// The web page on N+1 (`/`, its two `/_next/static/` assets, Next's 404 page otherwise).
pub(crate) async fn web(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(ci): ConnectInfo<ConnInfo>,
    req: Request,
) -> Response {
    let state = sh.state(Service::Web);
    if state == ServiceState::Down {
        ci.cut();
        return html(503, String::new());
    }
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    drop(req);
    if let Some(r) = fault(&sh, Service::Web, &method, &path).await {
        return r;
    }
    let path = path.as_str();
    if path == "/" || path == "/index.html" {
        if state == ServiceState::Unhealthy {
            return html(
                500,
                "<!DOCTYPE html><html><body><h1>500 - Internal Server Error</h1></body></html>"
                    .into(),
            );
        }
        let page = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><title>Vizora</title>\
             <link rel=\"stylesheet\" href=\"{css}\" data-n-g=\"\"/>\
             <script src=\"{js}\" defer=\"\"></script></head>\
             <body><div id=\"__next\"><main>Vizora — digital signage</main></div></body></html>",
            css = sh.asset_css,
            js = sh.asset_js
        );
        return html(200, page);
    }
    if path.starts_with("/_next/static/") {
        let asset = if path == sh.asset_js {
            Some((
                "application/javascript; charset=utf-8",
                "(self.webpackChunk=self.webpackChunk||[]).push([[179],{}]);\n",
            ))
        } else if path == sh.asset_css {
            Some((
                "text/css; charset=utf-8",
                "html,body{margin:0;padding:0;font-family:sans-serif}\n",
            ))
        } else {
            None
        };
        if let Some((ct, body)) = asset
            && state != ServiceState::AssetsBroken
        {
            return Resp {
                status: 200,
                body: body.as_bytes().to_vec(),
                ctype: ct,
                headers: Vec::new(),
            }
            .into_response();
        }
    }
    html(
        404,
        "<!DOCTYPE html><html><body><h1>404 - This page could not be found.</h1></body></html>"
            .into(),
    )
}

/// The realtime gateway on N+2 (`/api/health`, `/api/health/ready`, `/api/health/live`, `/api/status`).
pub(crate) async fn realtime(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(ci): ConnectInfo<ConnInfo>,
    req: Request,
) -> Response {
    let state = sh.state(Service::Realtime);
    if state == ServiceState::Down {
        ci.cut();
        return html(503, String::new());
    }
    let method = req.method().as_str().to_string();
    let raw_path = req.uri().path().to_string();
    let url = match req.uri().query() {
        Some(q) => format!("{raw_path}?{q}"),
        None => raw_path.clone(),
    };
    drop(req);
    if let Some(r) = fault(&sh, Service::Realtime, &method, &raw_path).await {
        return r;
    }
    let now = fmt_ms(sh.now());
    let up = lock(&sh.services)[Service::Realtime as usize]
        .started
        .elapsed()
        .as_secs_f64();
    let uptime = (up * 10.0).round() / 10.0;
    let path = raw_path.trim_end_matches('/').to_string();
    let get = method == "GET" || method == "HEAD";
    match (get, path.as_str()) {
        (true, "/api/health") => {
            let (status, redis) = match state {
                ServiceState::Degraded => ("degraded", json!({ "status": "degraded", "latencyMs": 250 })),
                ServiceState::Unhealthy => ("unhealthy", json!({ "status": "unhealthy", "latencyMs": 0, "error": "connect ECONNREFUSED 127.0.0.1:6379" })),
                _ => ("healthy", json!({ "status": "healthy", "latencyMs": 1 })),
            };
            Resp::json(
                200,
                &json!({ "status": status, "service": "realtime-gateway", "timestamp": now, "uptime": uptime,
                    "dependencies": { "redis": redis, "database": { "status": "healthy", "latencyMs": 3 }, "websocket": { "status": "healthy" } } }),
            )
            .into_response()
        }
        (true, "/api/health/ready") => {
            if state == ServiceState::Unhealthy {
                Resp::json(503, &json!({ "status": "not ready", "ready": false })).into_response()
            } else {
                Resp::json(200, &json!({ "status": "ready", "ready": true })).into_response()
            }
        }
        (true, "/api/health/live") => Resp::json(200, &json!({ "status": "ok" })).into_response(),
        (true, "/api/status") => {
            Resp::json(200, &json!({ "status": "running", "service": "realtime-gateway", "version": "1.0.0", "websocket": "active" }))
                .into_response()
        }
        _ => nest_404(&method, &url),
    }
}
