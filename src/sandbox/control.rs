//! The control API under `/__sandbox/` on the API port: JSON in and out, no auth, never throttled, never recorded.
//!
//! | route | body | effect / answer |
//! |---|---|---|
//! | `GET /__sandbox` | | the route list, URLs and clock |
//! | `GET /__sandbox/requests[?since=<seq>&path=<prefix>]` | | `[RecordedRequest]` (API requests, oldest first) |
//! | `POST /__sandbox/requests/clear` | | forget them |
//! | `GET /__sandbox/faults`, `POST /__sandbox/faults/clear` | | pending faults / remove them |
//! | `POST /__sandbox/faults` | `FaultSpec` (`{method?, path, status?, body?, rawBody?, delayMs?, retryAfter?, count?, service?}`) | the next `count` matching requests get that response (only `delayMs`: delay, then the normal response) |
//! | `POST /__sandbox/list-shape` | `{path:"/api/v1/content", shape:"normal"\|"items"\|"bare"\|"unknown"}` | how that list is wrapped |
//! | `POST /__sandbox/list-truncate` | `{path:"/api/v1/playlists", items:N\|null}` | that list answers only its first `N` items with `meta.total` = `N` (a lying but self-consistent list; detail reads unaffected); `null` undoes it |
//! | `GET /__sandbox/services` | | `{api|web|realtime: {state, restarts, url}}` |
//! | `POST /__sandbox/services/{svc}` | `{state}` | `healthy`, `degraded`, `unhealthy`, `down`, `assets_broken` |
//! | `POST /__sandbox/services/{svc}/restart` | | back to healthy, restarts + 1 |
//! | `POST /__sandbox/displays/{id}/reconnect` | | heartbeat now, `online`, kept fresh from then on |
//! | `POST /__sandbox/displays/{id}/stay-offline` | | heartbeat never refreshed |
//! | `GET/POST /__sandbox/fleet` | `{reconnectShare: 0..1}` | share of `reload`s to offline displays that reconnect them (every k-th) |
//! | `GET/POST /__sandbox/clock` | `{offsetSeconds}` or `{advanceSeconds}` | `{now, offsetSeconds}` |
//! | `POST /__sandbox/throttle` | `{enabled}` | throttling on/off (buckets reset) |
//! | `POST /__sandbox/errors` | `{mode:"development"\|"production"}` | validation error form |
//! | `POST /__sandbox/jobs/expire-content` | | `{expired, repointed, removed}` |
//! | `POST /__sandbox/jobs/mark-offline` | | `{markedOffline}` |
//! | `POST /__sandbox/storage` | `{usedBytes?, quotaBytes?}` | sets the organization's storage accounting |
//! | `GET /__sandbox/entities/{collection}/{id}` | | the stored entity (404 when unknown) |
//! | `GET /__sandbox/sessions` | | `{logins, failedLogins, logouts, refreshRevoked, refreshOutstanding}` |

use super::store::{R, Store, raw_entity};
use super::time::fmt_ms;
use super::{
    FaultEntry, FaultSpec, ListShape, RecordedRequest, Service, ServiceState, SessionStats, Shared,
    lock, services,
};
use axum::Router;
use axum::extract::{FromRequest, OriginalUri, Path, RawQuery, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The handlers' state: everything the servers share.
type St = State<Arc<Shared>>;

fn reply(status: u16, v: Value) -> Response {
    let mut r = axum::Json(v).into_response();
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r
}

fn bad(msg: impl Into<String>) -> Response {
    reply(400, json!({ "error": msg.into() }))
}

/// Normalizes a list path (`/api/v1/content/` → `/api/v1/content`).
fn norm_path(p: &str) -> String {
    let p = p.trim();
    let p = p.strip_suffix('/').unwrap_or(p);
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

pub(crate) fn set_shape(sh: &Shared, path: &str, shape: ListShape) {
    let mut m = lock(&sh.shapes);
    if shape == ListShape::Normal {
        m.remove(&norm_path(path));
    } else {
        m.insert(norm_path(path), shape);
    }
}

pub(crate) fn set_truncation(sh: &Shared, path: &str, items: Option<usize>) {
    let mut m = lock(&sh.truncations);
    match items {
        Some(n) => m.insert(norm_path(path), n),
        None => m.remove(&norm_path(path)),
    };
}

pub(crate) fn reconnect(sh: &Shared, id: &str) -> bool {
    let now = sh.now();
    let mut st = lock(&sh.store);
    match st.display_pos(id) {
        Some(di) => {
            st.reconnect(di, now);
            true
        }
        None => false,
    }
}

pub(crate) fn stay_offline(sh: &Shared, id: &str) -> bool {
    let now = sh.now();
    let mut st = lock(&sh.store);
    match st.display_pos(id) {
        Some(di) => {
            st.materialize_heartbeat(di, now);
            let d = &mut st.displays[di];
            d.live = false;
            d.stay_offline = true;
            true
        }
        None => false,
    }
}

pub(crate) fn expire_job(sh: &Shared) -> Value {
    let now = sh.now();
    let (e, rp, rm) = lock(&sh.store).expire_content(now);
    json!({ "expired": e, "repointed": rp, "removed": rm })
}

pub(crate) fn mark_offline_job(sh: &Shared) -> Value {
    let now = sh.now();
    let n = lock(&sh.store).mark_offline(now);
    json!({ "markedOffline": n })
}

pub(crate) fn sessions(sh: &Shared) -> SessionStats {
    lock(&sh.auth).stats.clone()
}

fn clock_json(sh: &Shared) -> Value {
    let (captured, shift) = {
        let st = lock(&sh.store);
        (st.captured_at, st.shift_ms)
    };
    json!({
        "now": fmt_ms(sh.now()),
        "offsetSeconds": sh.clock.offset_ms() as f64 / 1000.0,
        "capturedAt": fmt_ms(captured),
        "rebaseShiftSeconds": shift as f64 / 1000.0,
    })
}

/// The control routes, nested under `/__sandbox` by `super::router` (the table above). An unknown route or method
/// is 404 `{error}`, as before the router.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(index))
        .route("/requests", get(requests).delete(requests_clear))
        .route("/requests/clear", post(requests_clear))
        .route("/faults", get(faults).post(faults_add).delete(faults_clear))
        .route("/faults/clear", post(faults_clear))
        .route("/list-shape", post(list_shape))
        .route("/list-truncate", post(list_truncate))
        .route("/services", get(services_get))
        .route("/services/{svc}", post(service_set))
        .route("/services/{svc}/restart", post(service_restart))
        .route("/displays/{id}/reconnect", post(display_reconnect))
        .route("/displays/{id}/stay-offline", post(display_stay_offline))
        .route("/fleet", get(fleet_get).post(fleet_set))
        .route("/clock", get(clock_get).post(clock_set))
        .route("/throttle", post(throttle))
        .route("/errors", post(errors))
        .route("/jobs/expire-content", post(job_expire))
        .route("/jobs/mark-offline", post(job_mark_offline))
        .route("/storage", post(storage))
        .route("/entities/{coll}/{id}", get(entity))
        .route("/sessions", get(sessions_get))
        .fallback(unknown)
        .method_not_allowed_fallback(unknown)
}

/// `GET /__sandbox/`, the index as well: a nest matches `/__sandbox` and `/__sandbox/x` but not the trailing slash,
/// so `super::router` routes it here beside the nest.
pub(crate) fn index_route() -> MethodRouter<Arc<Shared>> {
    get(index).fallback(unknown)
}

/// A control request's JSON body (`Null` when empty). Every route takes it, so a body that is not JSON is 400
/// `{error}` on any route, as the control API has always answered.
struct Body(Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        let bytes = axum::body::to_bytes(req.into_body(), 64 << 20)
            .await
            .map_err(|e| bad(format!("body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| bad(format!("invalid JSON: {e}")))
    }
}

/// 404 `{error}` for a route or method the control API does not have.
async fn unknown(method: Method, OriginalUri(uri): OriginalUri, _: Body) -> Response {
    reply(
        404,
        json!({ "error": format!("unknown control route: {method} {}", uri.path()) }),
    )
}

fn statuses_json(sh: &Shared) -> serde_json::Map<String, Value> {
    services::statuses(sh)
        .into_iter()
        .map(|(k, v)| (k.name().to_string(), json!(v)))
        .collect()
}

/// `GET /__sandbox`: services, clock, switches and the route list.
async fn index(State(sh): St, _: Body) -> Response {
    reply(
        200,
        json!({
            "services": statuses_json(&sh),
            "clock": clock_json(&sh),
            "throttle": sh.throttle_on.load(Ordering::Relaxed),
            "errors": if sh.production() { "production" } else { "development" },
            "routes": [
                "GET /__sandbox/requests", "POST /__sandbox/requests/clear", "GET|POST /__sandbox/faults",
                "POST /__sandbox/faults/clear", "POST /__sandbox/list-shape", "POST /__sandbox/list-truncate", "GET /__sandbox/services",
                "POST /__sandbox/services/{svc}", "POST /__sandbox/services/{svc}/restart",
                "POST /__sandbox/displays/{id}/reconnect", "POST /__sandbox/displays/{id}/stay-offline",
                "GET|POST /__sandbox/fleet", "GET|POST /__sandbox/clock", "POST /__sandbox/throttle",
                "POST /__sandbox/errors", "POST /__sandbox/jobs/expire-content", "POST /__sandbox/jobs/mark-offline",
                "POST /__sandbox/storage", "GET /__sandbox/entities/{collection}/{id}", "GET /__sandbox/sessions"
            ],
        }),
    )
}

async fn requests(State(sh): St, RawQuery(query): RawQuery, _: Body) -> Response {
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let since: u64 = q
        .iter()
        .find(|(k, _)| k == "since")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let prefix = q.iter().find(|(k, _)| k == "path").map(|(_, v)| v.clone());
    let l = lock(&sh.log);
    let v: Vec<&RecordedRequest> = l
        .iter()
        .filter(|r| r.seq > since && prefix.as_deref().is_none_or(|p| r.path.starts_with(p)))
        .collect();
    reply(200, json!(v))
}

async fn requests_clear(State(sh): St, _: Body) -> Response {
    lock(&sh.log).clear();
    reply(200, json!({ "cleared": true }))
}

async fn faults(State(sh): St, _: Body) -> Response {
    let f = lock(&sh.faults);
    let v: Vec<Value> = f
        .iter()
        .map(|e| json!({ "spec": e.spec, "remaining": e.remaining }))
        .collect();
    reply(200, json!(v))
}

async fn faults_clear(State(sh): St, _: Body) -> Response {
    lock(&sh.faults).clear();
    reply(200, json!({ "cleared": true }))
}

async fn faults_add(State(sh): St, Body(body): Body) -> Response {
    let specs: Vec<Value> = match body {
        Value::Array(a) => a,
        v => vec![v],
    };
    let mut added = 0;
    for s in specs {
        let spec: FaultSpec = match serde_json::from_value(s) {
            Ok(s) => s,
            Err(e) => return bad(format!("fault: {e}")),
        };
        if spec.status.is_none()
            && spec.delay_ms.is_none()
            && spec.body.is_none()
            && spec.raw_body.is_none()
        {
            return bad("fault: give status, body, rawBody or delayMs");
        }
        let remaining = spec.count.max(1);
        lock(&sh.faults).push(FaultEntry { spec, remaining });
        added += 1;
    }
    reply(200, json!({ "added": added }))
}

async fn list_shape(State(sh): St, Body(body): Body) -> Response {
    let Some(p) = body.get("path").and_then(Value::as_str) else {
        return bad("path required");
    };
    let shape: ListShape = match body.get("shape").cloned().map(serde_json::from_value) {
        Some(Ok(s)) => s,
        _ => return bad("shape must be normal, items, bare or unknown"),
    };
    set_shape(&sh, p, shape);
    reply(200, json!({ "path": norm_path(p), "shape": shape }))
}

async fn list_truncate(State(sh): St, Body(body): Body) -> Response {
    let Some(p) = body.get("path").and_then(Value::as_str) else {
        return bad("path required");
    };
    let items = match body.get("items") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) => Some(n as usize),
            None => return bad("items must be a non-negative integer or null (no cut)"),
        },
    };
    set_truncation(&sh, p, items);
    reply(200, json!({ "path": norm_path(p), "items": items }))
}

async fn services_get(State(sh): St, _: Body) -> Response {
    reply(200, Value::Object(statuses_json(&sh)))
}

async fn service_set(State(sh): St, Path(svc): Path<String>, Body(body): Body) -> Response {
    let Some(svc) = Service::parse(&svc) else {
        return bad("unknown service (api, web, realtime)");
    };
    let Some(state) = body
        .get("state")
        .and_then(Value::as_str)
        .and_then(ServiceState::parse)
    else {
        return bad("state must be healthy, degraded, unhealthy, down or assets_broken");
    };
    services::set_state(&sh, svc, state);
    reply(200, json!(services::statuses(&sh).get(&svc)))
}

async fn service_restart(State(sh): St, Path(svc): Path<String>, _: Body) -> Response {
    let Some(svc) = Service::parse(&svc) else {
        return bad("unknown service (api, web, realtime)");
    };
    services::restart(&sh, svc);
    reply(200, json!(services::statuses(&sh).get(&svc)))
}

async fn display_reconnect(State(sh): St, Path(id): Path<String>, _: Body) -> Response {
    if reconnect(&sh, &id) {
        reply(200, json!({ "id": id, "reconnected": true }))
    } else {
        reply(404, json!({ "error": "display not found" }))
    }
}

async fn display_stay_offline(State(sh): St, Path(id): Path<String>, _: Body) -> Response {
    if stay_offline(&sh, &id) {
        reply(200, json!({ "id": id, "stayOffline": true }))
    } else {
        reply(404, json!({ "error": "display not found" }))
    }
}

async fn fleet_get(State(sh): St, _: Body) -> Response {
    let f = lock(&sh.fleet);
    reply(
        200,
        json!({ "reconnectShare": f.reconnect_share, "commands": f.commands, "inLastMinute": f.window.len() }),
    )
}

async fn fleet_set(State(sh): St, Body(body): Body) -> Response {
    let Some(s) = body.get("reconnectShare").and_then(Value::as_f64) else {
        return bad("reconnectShare (0..1) required");
    };
    if !(0.0..=1.0).contains(&s) {
        return bad("reconnectShare must be within 0..1");
    }
    let mut f = lock(&sh.fleet);
    f.reconnect_share = s;
    f.reload_offline_seen = 0;
    reply(200, json!({ "reconnectShare": s }))
}

async fn clock_get(State(sh): St, _: Body) -> Response {
    reply(200, clock_json(&sh))
}

async fn clock_set(State(sh): St, Body(body): Body) -> Response {
    if let Some(o) = body.get("offsetSeconds").and_then(Value::as_f64) {
        sh.clock.set_offset_ms((o * 1000.0).round() as i64);
    } else if let Some(a) = body.get("advanceSeconds").and_then(Value::as_f64) {
        sh.clock
            .set_offset_ms(sh.clock.offset_ms() + (a * 1000.0).round() as i64);
    } else {
        return bad("offsetSeconds or advanceSeconds required");
    }
    reply(200, clock_json(&sh))
}

async fn throttle(State(sh): St, Body(body): Body) -> Response {
    let Some(on) = body.get("enabled").and_then(Value::as_bool) else {
        return bad("enabled (bool) required");
    };
    sh.throttle_on.store(on, Ordering::Relaxed);
    lock(&sh.throttle).reset();
    reply(200, json!({ "enabled": on }))
}

async fn errors(State(sh): St, Body(body): Body) -> Response {
    let prod = match body.get("mode").and_then(Value::as_str) {
        Some("production") => true,
        Some("development") => false,
        _ => return bad("mode must be development or production"),
    };
    sh.production_errors.store(prod, Ordering::Relaxed);
    reply(
        200,
        json!({ "mode": if prod { "production" } else { "development" } }),
    )
}

async fn job_expire(State(sh): St, _: Body) -> Response {
    reply(200, expire_job(&sh))
}

async fn job_mark_offline(State(sh): St, _: Body) -> Response {
    reply(200, mark_offline_job(&sh))
}

async fn storage(State(sh): St, Body(body): Body) -> Response {
    let mut st = lock(&sh.store);
    let get = |k: &str, st: &Store| st.storage.get(k).and_then(Value::as_i64).unwrap_or(0);
    let used = body
        .get("usedBytes")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| get("usedBytes", &st));
    let quota = body
        .get("quotaBytes")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| get("quotaBytes", &st));
    let pct = if quota > 0 {
        ((used as f64 / quota as f64) * 100.0).round() as i64
    } else {
        0
    };
    st.storage.insert("usedBytes".into(), json!(used));
    st.storage.insert("quotaBytes".into(), json!(quota));
    st.storage
        .insert("availableBytes".into(), json!((quota - used).max(0)));
    st.storage.insert("usagePercent".into(), json!(pct));
    st.org.insert("storageUsedBytes".into(), json!(used));
    st.org.insert("storageQuotaBytes".into(), json!(quota));
    reply(200, Value::Object(st.storage.clone()))
}

async fn entity(State(sh): St, Path((coll, id)): Path<(String, String)>, _: Body) -> Response {
    let st = lock(&sh.store);
    match raw_entity(
        R {
            s: &st,
            now: sh.now(),
        },
        &coll,
        &id,
    ) {
        Some(v) => reply(200, v),
        None => reply(404, json!({ "error": format!("{coll}/{id} not found") })),
    }
}

async fn sessions_get(State(sh): St, _: Body) -> Response {
    reply(200, json!(sessions(&sh)))
}
