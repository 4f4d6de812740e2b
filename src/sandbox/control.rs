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
    FaultEntry, FaultSpec, ListShape, Service, ServiceState, SessionStats, Shared, lock, services,
};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

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

/// The list fault of `POST /__sandbox/list-truncate`: the first `N` entries of `order` when the collection at `path`
/// is cut to `N` (its list then answers those items only, with a consistent `meta.total` = `N`: a lying but
/// self-consistent list), else all of `order`. Detail reads are not affected.
pub(crate) fn cut<'a, T>(sh: &Shared, path: &str, order: &'a [T]) -> &'a [T] {
    match lock(&sh.truncations).get(path) {
        Some(&n) => &order[..n.min(order.len())],
        None => order,
    }
}

pub(crate) fn set_truncation(sh: &Shared, path: &str, items: Option<usize>) {
    let mut m = lock(&sh.truncations);
    match items {
        Some(n) => m.insert(norm_path(path), n),
        None => m.remove(&norm_path(path)),
    };
}

/// Reconnects display `di` at `now`: fresh heartbeat, `online`, live from then on.
pub(crate) fn reconnect_at(st: &mut Store, di: usize, now: i64) {
    let d = &mut st.displays[di];
    d.last_heartbeat = Some(now);
    d.status = Arc::from("online");
    d.live = true;
    d.stay_offline = false;
    d.updated_at = now;
}

pub(crate) fn reconnect(sh: &Shared, id: &str) -> bool {
    let now = sh.now();
    let mut st = lock(&sh.store);
    match st.display_pos(id) {
        Some(di) => {
            reconnect_at(&mut st, di, now);
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

/// Handles one control request.
pub(crate) async fn handle(sh: &Arc<Shared>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let bytes = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => return bad(format!("body: {e}")),
    };
    let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => return bad(format!("invalid JSON: {e}")),
        }
    };
    let rest = path.trim_start_matches("/__sandbox");
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let m = method.as_str();
    match (m, segs.as_slice()) {
        ("GET", []) => reply(
            200,
            json!({
                "services": services::statuses(sh).into_iter().map(|(k, v)| (k.name().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "clock": clock_json(sh),
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
        ),
        ("GET", ["requests"]) => {
            let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let since: u64 = q
                .iter()
                .find(|(k, _)| k == "since")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let prefix = q.iter().find(|(k, _)| k == "path").map(|(_, v)| v.clone());
            let l = lock(&sh.log);
            let v: Vec<&super::RecordedRequest> = l
                .iter()
                .filter(|r| {
                    r.seq > since && prefix.as_deref().is_none_or(|p| r.path.starts_with(p))
                })
                .collect();
            reply(200, json!(v))
        }
        ("POST", ["requests", "clear"]) | ("DELETE", ["requests"]) => {
            lock(&sh.log).clear();
            reply(200, json!({ "cleared": true }))
        }
        ("GET", ["faults"]) => {
            let f = lock(&sh.faults);
            let v: Vec<Value> = f
                .iter()
                .map(|e| json!({ "spec": e.spec, "remaining": e.remaining }))
                .collect();
            reply(200, json!(v))
        }
        ("POST", ["faults", "clear"]) | ("DELETE", ["faults"]) => {
            lock(&sh.faults).clear();
            reply(200, json!({ "cleared": true }))
        }
        ("POST", ["faults"]) => {
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
        ("POST", ["list-shape"]) => {
            let Some(p) = body.get("path").and_then(Value::as_str) else {
                return bad("path required");
            };
            let shape: ListShape = match body.get("shape").cloned().map(serde_json::from_value) {
                Some(Ok(s)) => s,
                _ => return bad("shape must be normal, items, bare or unknown"),
            };
            set_shape(sh, p, shape);
            reply(200, json!({ "path": norm_path(p), "shape": shape }))
        }
        ("POST", ["list-truncate"]) => {
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
            set_truncation(sh, p, items);
            reply(200, json!({ "path": norm_path(p), "items": items }))
        }
        ("GET", ["services"]) => {
            let v: serde_json::Map<String, Value> = services::statuses(sh)
                .into_iter()
                .map(|(k, v)| (k.name().to_string(), json!(v)))
                .collect();
            reply(200, Value::Object(v))
        }
        ("POST", ["services", svc]) => {
            let Some(svc) = Service::parse(svc) else {
                return bad("unknown service (api, web, realtime)");
            };
            let Some(state) = body
                .get("state")
                .and_then(Value::as_str)
                .and_then(ServiceState::parse)
            else {
                return bad("state must be healthy, degraded, unhealthy, down or assets_broken");
            };
            services::set_state(sh, svc, state);
            reply(200, json!(services::statuses(sh).get(&svc)))
        }
        ("POST", ["services", svc, "restart"]) => {
            let Some(svc) = Service::parse(svc) else {
                return bad("unknown service (api, web, realtime)");
            };
            services::restart(sh, svc);
            reply(200, json!(services::statuses(sh).get(&svc)))
        }
        ("POST", ["displays", id, "reconnect"]) => {
            if reconnect(sh, id) {
                reply(200, json!({ "id": id, "reconnected": true }))
            } else {
                reply(404, json!({ "error": "display not found" }))
            }
        }
        ("POST", ["displays", id, "stay-offline"]) => {
            if stay_offline(sh, id) {
                reply(200, json!({ "id": id, "stayOffline": true }))
            } else {
                reply(404, json!({ "error": "display not found" }))
            }
        }
        ("GET", ["fleet"]) => {
            let f = lock(&sh.fleet);
            reply(
                200,
                json!({ "reconnectShare": f.reconnect_share, "commands": f.commands, "inLastMinute": f.window.len() }),
            )
        }
        ("POST", ["fleet"]) => {
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
        ("GET", ["clock"]) => reply(200, clock_json(sh)),
        ("POST", ["clock"]) => {
            if let Some(o) = body.get("offsetSeconds").and_then(Value::as_f64) {
                sh.clock.set_offset_ms((o * 1000.0).round() as i64);
            } else if let Some(a) = body.get("advanceSeconds").and_then(Value::as_f64) {
                sh.clock
                    .set_offset_ms(sh.clock.offset_ms() + (a * 1000.0).round() as i64);
            } else {
                return bad("offsetSeconds or advanceSeconds required");
            }
            reply(200, clock_json(sh))
        }
        ("POST", ["throttle"]) => {
            let Some(on) = body.get("enabled").and_then(Value::as_bool) else {
                return bad("enabled (bool) required");
            };
            sh.throttle_on.store(on, Ordering::Relaxed);
            lock(&sh.throttle).reset();
            reply(200, json!({ "enabled": on }))
        }
        ("POST", ["errors"]) => {
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
        ("POST", ["jobs", "expire-content"]) => reply(200, expire_job(sh)),
        ("POST", ["jobs", "mark-offline"]) => reply(200, mark_offline_job(sh)),
        ("POST", ["storage"]) => {
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
        ("GET", ["entities", coll, id]) => {
            let st = lock(&sh.store);
            match raw_entity(
                R {
                    s: &st,
                    now: sh.now(),
                },
                coll,
                id,
            ) {
                Some(v) => reply(200, v),
                None => reply(404, json!({ "error": format!("{coll}/{id} not found") })),
            }
        }
        ("GET", ["sessions"]) => reply(200, json!(sessions(sh))),
        _ => reply(
            404,
            json!({ "error": format!("unknown control route: {method} {path}") }),
        ),
    }
}
