//! The API's request pipeline in Nest's order: request log and faults (`entry`), body parser and CSRF cookie
//! (`process`), CSRF middleware → routing → throttler → JWT guard → roles/subscription guards → handler (`pipeline`).

use super::{
    AUTH_COOKIE, CSRF_COOKIE, Ctx, Rt, TOKEN_TTL_S, auth, dispatch, health, pct_decode, route,
};
use crate::sandbox::net::ConnInfo;
use crate::sandbox::respond::{Resp, error, error_bare, fault_response};
use crate::sandbox::throttle::{self, Limit};
use crate::sandbox::time::{fmt_ms, real_now_ms};
use crate::sandbox::validate::{self, Query};
use crate::sandbox::{RecordedRequest, Service, ServiceState, Shared, lock, random_hex};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Express's JSON body limit (100 kB).
const BODY_LIMIT: usize = 100 * 1024;

/// The bearer token of `Authorization`, if any.
pub(super) fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, tok) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| tok.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn cookies(h: &HeaderMap) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for v in h.get_all(header::COOKIE) {
        if let Ok(s) = v.to_str() {
            for part in s.split(';') {
                if let Some((k, v)) = part.split_once('=') {
                    out.entry(k.trim().to_string())
                        .or_insert_with(|| pct_decode(v.trim()));
                }
            }
        }
    }
    out
}

fn client_ip(h: &HeaderMap, peer: std::net::SocketAddr) -> IpAddr {
    h.get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.rsplit(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(peer.ip())
}

/// The request body as the request log keeps it, redacted like every other log (agents.md 5.9): the login's
/// `password`, tokens and secret-looking text never reach `GET /__sandbox/requests`.
pub(crate) fn record_body(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    Some(match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => crate::redact::redact_value(&v),
        Err(_) => Value::String(crate::redact::redact_str(&String::from_utf8_lossy(bytes))),
    })
}

/// The query string as the request log keeps it: secret parameters (`password`, `token`, …) masked (agents.md 5.9).
fn record_query(q: &str) -> String {
    if q.is_empty() {
        return String::new();
    }
    let r = crate::redact::redact_str(&format!("?{q}"));
    r.strip_prefix('?').unwrap_or(&r).to_string()
}

/// Handles every API request (the control API is nested beside it in `super::super::router`): records it,
/// answers 503 and cuts the connection while the API is down, applies an injected fault, then runs the pipeline.
pub(crate) async fn entry(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(ci): ConnectInfo<ConnInfo>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let mut rec = RecordedRequest {
        seq: sh.seq.fetch_add(1, Ordering::Relaxed) + 1,
        method: req.method().as_str().to_string(),
        path,
        query: record_query(&raw_query),
        body: None,
        status: 0,
        at: fmt_ms(sh.now()),
        has_cookie: headers.contains_key(header::COOKIE),
        csrf_header: headers.contains_key("x-csrf-token"),
        has_bearer: bearer(&headers).is_some(),
    };
    if sh.state(Service::Api) == ServiceState::Down {
        ci.cut();
        sh.record(rec);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let bytes = match axum::body::to_bytes(req.into_body(), 16 << 20).await {
        Ok(b) => b,
        Err(_) => {
            rec.status = 413;
            sh.record(rec);
            return error(413, "request entity too large").into_response();
        }
    };
    rec.body = record_body(&bytes);
    if let Some(f) = sh.take_fault(Service::Api, &rec.method, &rec.path) {
        if let Some(ms) = f.delay_ms {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        if f.status.is_some() || f.body.is_some() || f.raw_body.is_some() {
            let r = fault_response(&f);
            rec.status = r.status;
            sh.record(rec);
            return r.into_response();
        }
        if sh.state(Service::Api) == ServiceState::Down {
            ci.cut();
            sh.record(rec);
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let ip = client_ip(&headers, ci.addr);
    let r = process(
        &sh,
        &rec.method,
        &rec.path,
        &raw_query,
        &headers,
        &bytes,
        ip,
    );
    rec.status = r.status;
    sh.record(rec);
    r.into_response()
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
}

fn json_error_message(bytes: &[u8], e: &serde_json::Error) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut pos = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        if i + 1 == e.line() {
            pos += e.column().saturating_sub(1);
            break;
        }
        pos += line.len() + 1;
    }
    let tok = text
        .get(pos..)
        .and_then(|s| s.chars().next())
        .map(|c| c.to_string())
        .unwrap_or_default();
    if tok.is_empty() {
        "Unexpected end of JSON input".to_string()
    } else {
        format!(
            "Unexpected token '{tok}', \"{}\" is not valid JSON",
            text.chars().take(30).collect::<String>()
        )
    }
}

fn process(
    sh: &Shared,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    bytes: &[u8],
    ip: IpAddr,
) -> Resp {
    // Express's JSON body parser (100 kB, strict: objects and arrays only).
    let body = if bytes.is_empty() || !is_json(headers) {
        None
    } else if bytes.len() > BODY_LIMIT {
        return error(413, "request entity too large");
    } else {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
            Ok(_) => {
                return error(
                    400,
                    &format!(
                        "Unexpected token in JSON at position 0: \"{}\" is not an object or array",
                        String::from_utf8_lossy(bytes)
                    ),
                );
            }
            Err(e) => return error(400, &json_error_message(bytes, &e)),
        }
    };
    let cookies = cookies(headers);
    let csrf = cookies
        .get(CSRF_COOKIE)
        .cloned()
        .unwrap_or_else(|| random_hex(32));
    let mut ctx = Ctx {
        sh,
        headers,
        cookies,
        query: Query::parse(query),
        raw_query: query,
        body,
        csrf: csrf.clone(),
        now: sh.now(),
    };
    if let Some(b) = &mut ctx.body {
        validate::sanitize(b);
    }
    let mut r = pipeline(&mut ctx, method, path, ip);
    // The CSRF middleware refreshes the cookie and exposes the token on every response.
    if !r
        .headers
        .iter()
        .any(|(k, v)| k == "Set-Cookie" && v.starts_with(CSRF_COOKIE))
    {
        r.headers.push((
            "Set-Cookie".into(),
            format!("{CSRF_COOKIE}={csrf}; Max-Age={TOKEN_TTL_S}; Path=/; SameSite=Lax"),
        ));
    }
    r.headers.push(("X-CSRF-Token".into(), csrf));
    r
}

fn csrf_exempt(path: &str) -> bool {
    let p = path.strip_suffix('/').unwrap_or(path);
    matches!(
        p,
        "/api/v1/auth/login"
            | "/api/v1/auth/register"
            | "/api/v1/auth/google"
            | "/api/v1/auth/forgot-password"
            | "/api/v1/auth/reset-password"
    ) || p == "/api/v1/mcp"
        || p.starts_with("/api/v1/mcp/")
        || p == "/api/v1/internal"
        || p.starts_with("/api/v1/internal/")
}

fn throttle_limits(rt: &Rt) -> Vec<(Limit, &'static str)> {
    let mut v = vec![
        (throttle::SHORT, "short"),
        (throttle::MEDIUM, "medium"),
        (throttle::LONG, "long"),
    ];
    match rt {
        _ if rt.health() => {}
        Rt::Login => v.push((throttle::LOGIN, "login")),
        Rt::Refresh => v.push((throttle::REFRESH, "refresh")),
        _ => v.push((throttle::DEFAULT, "default")),
    }
    v
}

fn pipeline(ctx: &mut Ctx, method: &str, path: &str, ip: IpAddr) -> Resp {
    let sh = ctx.sh;
    // CSRF middleware (double submit), skipped for bearer-only requests.
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") && !csrf_exempt(path) {
        let bearer_only = bearer(ctx.headers).is_some() && !ctx.cookies.contains_key(AUTH_COOKIE);
        if !bearer_only {
            let Some(cookie) = ctx.cookies.get(CSRF_COOKIE) else {
                return error(403, "CSRF cookie missing");
            };
            let hdr = ctx
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if hdr.is_empty() || hdr != cookie {
                return error(403, "Invalid CSRF token");
            }
        }
    }
    let Some(rt) = route(method, path) else {
        let url = if ctx.raw_query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", ctx.raw_query)
        };
        return Resp::json(
            404,
            &json!({ "message": format!("Cannot {method} {url}"), "error": "Not Found", "statusCode": 404 }),
        );
    };
    if sh.throttle_on.load(Ordering::Relaxed)
        && let Err(t) = lock(&sh.throttle).hit(ip, &throttle_limits(&rt), real_now_ms())
    {
        let mut r = error_bare(429, "ThrottlerException: Too Many Requests")
            .with_header("Retry-After", t.retry_after_s.to_string());
        if t.name != "default" {
            r = r.with_header(
                &format!("Retry-After-{}", t.name),
                t.retry_after_s.to_string(),
            );
        }
        return r;
    }
    match rt {
        Rt::Health => return health::health(sh),
        Rt::Ready => return health::ready(sh),
        Rt::Live => return health::live(ctx),
        Rt::AppReady => return health::app_ready(sh),
        Rt::Login => return auth::login(ctx),
        Rt::Refresh => return auth::refresh(ctx),
        _ => {}
    }
    debug_assert!(!rt.public());
    let user = match auth::authenticate(ctx) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if rt.write() {
        if user.role != "admin" && user.role != "manager" {
            return error(
                403,
                "Insufficient permissions. Required roles: admin, manager",
            );
        }
        if !auth::subscription_ok(sh, ctx.now) {
            return error(
                403,
                "Your subscription is inactive. Please upgrade to continue using this feature.",
            );
        }
    }
    match dispatch(ctx, rt, &user) {
        Ok(r) => r,
        Err(r) => r,
    }
}
