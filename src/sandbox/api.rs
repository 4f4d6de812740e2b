//! The API on port N: the request pipeline in Nest's order (body parser → CSRF middleware → routing → throttler →
//! JWT guard → roles/subscription guards → pipes → handler → envelope) and the handlers of vizora-api.md.

use super::net::ConnInfo;
use super::store::{
    ContentFilter, ContentListItem, ContentMode, ContentRow, DisplayMode, DisplayView, GroupMode,
    GroupView, PlaylistMode, PlaylistView, R, ScheduleMode, ScheduleView, Store,
};
use super::throttle::{self, Limit};
use super::time::{fmt_ms, real_now_ms};
use super::validate::{self, F, Query, V};
use super::{
    FaultSpec, ListShape, RecordedRequest, RefreshRec, Service, ServiceState, Shared, control,
    lock, random_hex,
};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const AUTH_COOKIE: &str = "vizora_auth_token";
const REFRESH_COOKIE: &str = "vizora_refresh_token";
const CSRF_COOKIE: &str = "vizora_csrf_token";
/// Access-token lifetime, seconds (the code default `JWT_EXPIRES_IN` of 30 min).
pub(crate) const TOKEN_TTL_S: i64 = 1800;
const REFRESH_TTL_S: i64 = 30 * 86_400;
const BODY_LIMIT: usize = 100 * 1024;
const OPS_STATUS_TTL_MS: i64 = 3_600_000;
const FLEET_MAX_PER_MIN: usize = 10;

/// A response being built.
pub(crate) struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
    pub ctype: &'static str,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub(crate) fn json<T: Serialize + ?Sized>(status: u16, v: &T) -> Resp {
        Resp {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            ctype: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    }
    pub(crate) fn with_header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub(crate) fn into_response(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(self.ctype) {
            h.insert(header::CONTENT_TYPE, v);
        }
        for (k, v) in self.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                h.append(k, v);
            }
        }
        r
    }
}

#[derive(Serialize)]
struct Env<'a, T: Serialize + ?Sized> {
    success: bool,
    data: &'a T,
}

fn env<T: Serialize + ?Sized>(status: u16, data: &T) -> Resp {
    Resp::json(
        status,
        &Env {
            success: true,
            data,
        },
    )
}

/// The reason phrase of a status (Nest's `error` field).
pub(crate) fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// `{statusCode, message, error}`.
pub(crate) fn error(status: u16, msg: &str) -> Resp {
    Resp::json(
        status,
        &json!({ "statusCode": status, "message": msg, "error": reason(status) }),
    )
}

/// `{statusCode, message}` (string-only exceptions).
pub(crate) fn error_bare(status: u16, msg: &str) -> Resp {
    Resp::json(status, &json!({ "statusCode": status, "message": msg }))
}

fn unauthorized() -> Resp {
    error_bare(401, "Unauthorized")
}

fn bad_request(sh: &Shared, errs: Vec<String>) -> Resp {
    if sh.production() {
        error_bare(400, "Bad Request")
    } else {
        Resp::json(
            400,
            &json!({ "statusCode": 400, "message": errs, "error": "Bad Request" }),
        )
    }
}

fn internal() -> Resp {
    error_bare(500, "Internal server error")
}

// ---------------------------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rt {
    Health,
    Ready,
    Live,
    AppReady,
    OpsGet,
    OpsPost,
    Login,
    Logout,
    Refresh,
    OrgCurrent,
    OrgStorage,
    OrgId(String),
    ContentList,
    ContentGet(String),
    ContentArchive(String),
    ContentRestore(String),
    ContentPatch(String),
    ContentExpiration(String),
    PlaylistList,
    PlaylistGet(String),
    PlaylistPatch(String),
    DisplayList,
    DisplayGet(String),
    DisplayPatch(String),
    GroupList,
    GroupGet(String),
    ScheduleList,
    ScheduleGet(String),
    SchedulePatch(String),
    Fleet,
}

impl Rt {
    fn public(&self) -> bool {
        matches!(
            self,
            Rt::Health | Rt::Ready | Rt::Live | Rt::AppReady | Rt::Login | Rt::Refresh
        )
    }
    fn health(&self) -> bool {
        matches!(
            self,
            Rt::Health | Rt::Ready | Rt::Live | Rt::AppReady | Rt::OpsGet | Rt::OpsPost
        )
    }
    /// Writes that need manager or admin and an active subscription.
    fn write(&self) -> bool {
        matches!(
            self,
            Rt::ContentArchive(_)
                | Rt::ContentRestore(_)
                | Rt::ContentPatch(_)
                | Rt::ContentExpiration(_)
                | Rt::PlaylistPatch(_)
                | Rt::DisplayPatch(_)
                | Rt::SchedulePatch(_)
                | Rt::Fleet
        )
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(method: &str, path: &str) -> Option<Rt> {
    let p = path.strip_prefix("/api/v1/")?;
    let p = p.strip_suffix('/').unwrap_or(p);
    let segs: Vec<String> = p.split('/').map(pct_decode).collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    let id = |i: usize| segs[i].clone();
    let m = if method == "HEAD" { "GET" } else { method };
    Some(match (m, l.as_slice()) {
        ("GET", ["health"]) => Rt::Health,
        ("GET", ["health", "ready"]) => Rt::Ready,
        ("GET", ["health", "live"]) => Rt::Live,
        ("GET", ["ready"]) => Rt::AppReady,
        ("GET", ["health", "ops-status"]) => Rt::OpsGet,
        ("POST", ["health", "ops-status"]) => Rt::OpsPost,
        ("POST", ["auth", "login"]) => Rt::Login,
        ("POST", ["auth", "logout"]) => Rt::Logout,
        ("POST", ["auth", "refresh"]) => Rt::Refresh,
        ("GET", ["organizations", "current"]) => Rt::OrgCurrent,
        ("GET", ["organizations", "storage"]) => Rt::OrgStorage,
        ("GET", ["organizations", _]) => Rt::OrgId(id(1)),
        ("GET", ["content"]) => Rt::ContentList,
        ("GET", ["content", _]) => Rt::ContentGet(id(1)),
        ("PATCH", ["content", _]) => Rt::ContentPatch(id(1)),
        ("POST", ["content", _, "archive"]) => Rt::ContentArchive(id(1)),
        ("POST", ["content", _, "restore"]) => Rt::ContentRestore(id(1)),
        ("PATCH", ["content", _, "expiration"]) => Rt::ContentExpiration(id(1)),
        ("GET", ["playlists"]) => Rt::PlaylistList,
        ("GET", ["playlists", _]) => Rt::PlaylistGet(id(1)),
        ("PATCH", ["playlists", _]) => Rt::PlaylistPatch(id(1)),
        ("GET", ["displays"]) => Rt::DisplayList,
        ("GET", ["displays", _]) => Rt::DisplayGet(id(1)),
        ("PATCH", ["displays", _]) => Rt::DisplayPatch(id(1)),
        ("GET", ["display-groups"]) => Rt::GroupList,
        ("GET", ["display-groups", _]) => Rt::GroupGet(id(1)),
        ("GET", ["schedules"]) => Rt::ScheduleList,
        ("GET", ["schedules", _]) => Rt::ScheduleGet(id(1)),
        ("PATCH", ["schedules", _]) => Rt::SchedulePatch(id(1)),
        ("POST", ["fleet", "commands"]) => Rt::Fleet,
        _ => return None,
    })
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_cuid(s: &str) -> bool {
    let b = s.as_bytes();
    (20..=30).contains(&b.len())
        && b[0] == b'c'
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// `ParseIdPipe`: UUID or CUID.
fn check_id(id: &str) -> Result<(), Resp> {
    let t = id.trim();
    if is_uuid(t) || is_cuid(t) {
        Ok(())
    } else {
        Err(error(
            400,
            "Validation failed (valid ID expected — UUID or CUID format)",
        ))
    }
}

/// `ParseUUIDPipe`.
fn check_uuid(id: &str) -> Result<(), Resp> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(error(400, "Validation failed (uuid is expected)"))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------------------------

fn bearer(h: &HeaderMap) -> Option<String> {
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

/// The response a fault prescribes.
pub(crate) fn fault_response(f: &FaultSpec) -> Resp {
    let status = f.status.unwrap_or(500);
    let mut r = if let Some(raw) = &f.raw_body {
        Resp {
            status,
            body: raw.clone().into_bytes(),
            ctype: "application/json; charset=utf-8",
            headers: Vec::new(),
        }
    } else {
        match &f.body {
            Some(Value::String(s)) => Resp {
                status,
                body: s.clone().into_bytes(),
                ctype: "text/plain; charset=utf-8",
                headers: Vec::new(),
            },
            Some(v) => Resp::json(status, v),
            None => Resp::json(
                status,
                &json!({ "statusCode": status, "message": reason(status) }),
            ),
        }
    };
    if let Some(ra) = &f.retry_after {
        let v = match ra {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        r.headers.push(("Retry-After".into(), v));
    }
    r
}

/// Handles every request of the API port (control routes are handed to `control`).
pub(crate) async fn entry(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(ci): ConnectInfo<ConnInfo>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_string();
    if path == "/__sandbox" || path.starts_with("/__sandbox/") {
        return control::handle(&sh, req).await;
    }
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

struct Ctx<'a> {
    sh: &'a Shared,
    headers: &'a HeaderMap,
    cookies: HashMap<String, String>,
    query: Query,
    raw_query: &'a str,
    body: Option<Value>,
    csrf: String,
    now: i64,
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
        Rt::Health => return health(sh),
        Rt::Ready => return ready(sh),
        Rt::Live => {
            return env(
                200,
                &json!({ "status": "ok", "timestamp": fmt_ms(ctx.now) }),
            );
        }
        Rt::AppReady => {
            return env(
                200,
                &json!({ "ready": sh.state(Service::Api) != ServiceState::Unhealthy }),
            );
        }
        Rt::Login => return login(ctx),
        Rt::Refresh => return refresh(ctx),
        _ => {}
    }
    debug_assert!(!rt.public());
    let user = match authenticate(ctx) {
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
        if !subscription_ok(sh, ctx.now) {
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

fn health(sh: &Shared) -> Resp {
    let up = lock(&sh.services)[0].started.elapsed().as_secs_f64();
    env(
        200,
        &json!({ "status": "ok", "timestamp": fmt_ms(sh.now()), "uptime": (up * 100.0).round() / 100.0, "database": "connected" }),
    )
}

fn ready(sh: &Shared) -> Resp {
    let up = lock(&sh.services)[0].started.elapsed().as_secs();
    let st = sh.state(Service::Api);
    let status = match st {
        ServiceState::Degraded => "degraded",
        ServiceState::Unhealthy => "unhealthy",
        _ => "ok",
    };
    let body = json!({ "status": status, "timestamp": fmt_ms(sh.now()), "uptime": up, "version": "1.0.0", "self_test": "passed" });
    if st == ServiceState::Unhealthy {
        Resp::json(503, &body)
    } else {
        env(200, &body)
    }
}

fn subscription_ok(sh: &Shared, now: i64) -> bool {
    let st = lock(&sh.store);
    let s = |k: &str| {
        st.org
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let status = s("subscriptionStatus");
    match status.as_str() {
        "active" | "past_due" | "publish_locked" => true,
        _ if s("subscriptionTier") == "free" => true,
        "trial" => super::time::parse_iso_ms(&s("trialEndsAt")).is_some_and(|t| t > now),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    sub: String,
    email: String,
    organization_id: String,
    role: String,
    is_super_admin: bool,
    #[serde(rename = "type")]
    typ: String,
    jti: String,
    iat: i64,
    exp: i64,
}

pub(crate) struct AuthUser {
    pub role: String,
    pub org: String,
    pub jti: String,
}

fn decode_jwt(secret: &str, token: &str) -> Option<Claims> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.validate_exp = false;
    v.required_spec_claims = Default::default();
    jsonwebtoken::decode::<Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &v,
    )
    .ok()
    .map(|d| d.claims)
}

fn authenticate(ctx: &Ctx) -> Result<AuthUser, Resp> {
    let sh = ctx.sh;
    let token = ctx
        .cookies
        .get(AUTH_COOKIE)
        .cloned()
        .or_else(|| bearer(ctx.headers))
        .ok_or_else(unauthorized)?;
    let c = decode_jwt(&sh.jwt_secret, &token).ok_or_else(unauthorized)?;
    if c.exp * 1000 <= ctx.now || c.typ != "user" {
        return Err(unauthorized());
    }
    if lock(&sh.auth).revoked.contains(&c.jti) {
        return Err(error(401, "Token has been revoked"));
    }
    let st = lock(&sh.store);
    let u = st
        .users
        .iter()
        .find(|u| u.get("id").and_then(Value::as_str) == Some(c.sub.as_str()))
        .ok_or_else(unauthorized)?;
    if u.get("isActive").and_then(Value::as_bool) == Some(false) {
        return Err(unauthorized());
    }
    let role = u
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("viewer")
        .to_string();
    let org = u
        .get("organizationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(AuthUser {
        role,
        org,
        jti: c.jti,
    })
}

fn issue_token(sh: &Shared, user: &Map<String, Value>, now: i64) -> (String, String) {
    let g = |k: &str| {
        user.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = Claims {
        sub: g("id"),
        email: g("email"),
        organization_id: g("organizationId"),
        role: g("role"),
        is_super_admin: user
            .get("isSuperAdmin")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        typ: "user".into(),
        jti: jti.clone(),
        iat: now / 1000,
        exp: now / 1000 + TOKEN_TTL_S,
    };
    let tok = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(sh.jwt_secret.as_bytes()),
    )
    .unwrap_or_default();
    (tok, jti)
}

fn is_email(s: &str) -> bool {
    let Some((l, d)) = s.split_once('@') else {
        return false;
    };
    !l.is_empty()
        && !d.is_empty()
        && d.contains('.')
        && !d.starts_with('.')
        && !d.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !d.contains('@')
}

fn login(ctx: &mut Ctx) -> Resp {
    let sh = ctx.sh;
    let body = match ctx.body.take() {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return bad_request(
                sh,
                vec!["an unknown value was passed to the validate function".into()],
            );
        }
    };
    let mut v = V::new(&body, "");
    v.whitelist(&["email", "password"]);
    let email = match body.get("email") {
        Some(Value::String(s)) if is_email(s.trim()) => Some(s.trim().to_lowercase()),
        _ => {
            v.errs.push("email must be an email".into());
            None
        }
    };
    let password = match body.get("password") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 128 => Some(s.clone()),
        Some(Value::String(s)) if s.is_empty() => {
            v.errs.push("password should not be empty".into());
            None
        }
        Some(Value::String(_)) => {
            v.errs
                .push("password must be shorter than or equal to 128 characters".into());
            None
        }
        _ => {
            v.errs
                .push("password must be shorter than or equal to 128 characters".into());
            v.errs.push("password should not be empty".into());
            v.errs.push("password must be a string".into());
            None
        }
    };
    if !v.errs.is_empty() {
        return bad_request(sh, v.errs);
    }
    let (email, password) = (email.unwrap_or_default(), password.unwrap_or_default());
    let now = ctx.now;
    {
        let mut a = lock(&sh.auth);
        let f = a.failures.entry(email.clone()).or_default();
        while f.front().is_some_and(|&t| t < now - 15 * 60_000) {
            f.pop_front();
        }
        if f.len() >= 10 {
            return Resp::json(
                429,
                &json!({ "statusCode": 429, "message": "Account temporarily locked due to too many failed login attempts. Try again in 15 minutes." }),
            );
        }
    }
    let mut st = lock(&sh.store);
    let pos = st.users.iter().position(|u| {
        u.get("email")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_lowercase())
            == Some(email.clone())
            && u.get("password").and_then(Value::as_str) == Some(password.as_str())
    });
    let Some(pos) = pos else {
        drop(st);
        let mut a = lock(&sh.auth);
        a.failures.entry(email).or_default().push_back(now);
        a.stats.failed_logins += 1;
        return error(401, "Invalid email or password");
    };
    if st.users[pos].get("isActive").and_then(Value::as_bool) == Some(false) {
        drop(st);
        lock(&sh.auth).stats.failed_logins += 1;
        return error(403, "Account is inactive. Contact support.");
    }
    if st.users[pos].get("mfaEnabled").and_then(Value::as_bool) == Some(true) {
        return env(
            201,
            &json!({ "mfaRequired": true, "challengeToken": random_hex(24) }),
        );
    }
    if st.org.get("mfaRequired").and_then(Value::as_bool) == Some(true) {
        return env(
            201,
            &json!({ "mfaEnrollmentRequired": true, "enrollmentToken": random_hex(24) }),
        );
    }
    st.users[pos].insert("lastLoginAt".into(), Value::String(fmt_ms(now)));
    let user = st.users[pos].clone();
    let org = json!({
        "name": st.org.get("name").cloned().unwrap_or(Value::Null),
        "subscriptionTier": st.org.get("subscriptionTier").cloned().unwrap_or(Value::Null),
    });
    drop(st);
    let (token, _jti) = issue_token(sh, &user, now);
    let refresh = random_hex(32);
    {
        let mut a = lock(&sh.auth);
        a.failures.remove(&email);
        a.refresh.insert(
            refresh.clone(),
            RefreshRec {
                revoked: false,
                user_id: user
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
        );
        a.stats.logins += 1;
        a.stats.refresh_outstanding += 1;
    }
    let mut pub_user = user;
    for k in ["password", "passwordHash", "mfaSecret"] {
        pub_user.remove(k);
    }
    pub_user.insert("organization".into(), org);
    let csrf = ctx.csrf.clone();
    Resp::json(
        201,
        &json!({ "success": true, "data": { "access_token": token, "user": pub_user, "expiresIn": TOKEN_TTL_S } }),
    )
    .with_header("Set-Cookie", format!("{AUTH_COOKIE}={token}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"))
    .with_header("Set-Cookie", format!("{REFRESH_COOKIE}={refresh}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"))
    .with_header("Set-Cookie", format!("{CSRF_COOKIE}={csrf}; Max-Age={TOKEN_TTL_S}; Path=/; SameSite=Lax"))
}

fn logout(ctx: &Ctx, user: &AuthUser) -> Resp {
    let sh = ctx.sh;
    let mut a = lock(&sh.auth);
    a.revoked.insert(user.jti.clone());
    a.stats.logouts += 1;
    if let Some(rt) = ctx.cookies.get(REFRESH_COOKIE)
        && let Some(rec) = a.refresh.get_mut(rt)
        && !rec.revoked
    {
        rec.revoked = true;
        a.stats.refresh_revoked += 1;
        a.stats.refresh_outstanding = a.stats.refresh_outstanding.saturating_sub(1);
    }
    Resp::json(
        201,
        &json!({ "success": true, "message": "Logged out successfully" }),
    )
    .with_header(
        "Set-Cookie",
        format!("{AUTH_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"),
    )
    .with_header(
        "Set-Cookie",
        format!("{REFRESH_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"),
    )
}

fn refresh(ctx: &Ctx) -> Resp {
    let sh = ctx.sh;
    let Some(rt) = ctx.cookies.get(REFRESH_COOKIE).cloned() else {
        return error(401, "No refresh token");
    };
    let user_id = {
        let mut a = lock(&sh.auth);
        match a.refresh.get_mut(&rt) {
            Some(rec) if !rec.revoked => {
                rec.revoked = true;
                rec.user_id.clone()
            }
            _ => return error(401, "Invalid refresh token"),
        }
    };
    if let Some(tok) = ctx
        .cookies
        .get(AUTH_COOKIE)
        .cloned()
        .or_else(|| bearer(ctx.headers))
        && let Some(c) = decode_jwt(&sh.jwt_secret, &tok)
    {
        lock(&sh.auth).revoked.insert(c.jti);
    }
    let user = {
        let st = lock(&sh.store);
        st.users
            .iter()
            .find(|u| u.get("id").and_then(Value::as_str) == Some(user_id.as_str()))
            .cloned()
    };
    let Some(user) = user else {
        return error(401, "Invalid refresh token");
    };
    let (token, _) = issue_token(sh, &user, ctx.now);
    let newr = random_hex(32);
    lock(&sh.auth).refresh.insert(
        newr.clone(),
        RefreshRec {
            revoked: false,
            user_id,
        },
    );
    Resp::json(
        201,
        &json!({ "success": true, "data": { "expiresIn": TOKEN_TTL_S } }),
    )
    .with_header(
        "Set-Cookie",
        format!("{AUTH_COOKIE}={token}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"),
    )
    .with_header(
        "Set-Cookie",
        format!("{REFRESH_COOKIE}={newr}; Max-Age={REFRESH_TTL_S}; Path=/; HttpOnly; SameSite=Lax"),
    )
}

// ---------------------------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    page: u64,
    limit: u64,
    total: u64,
    total_pages: u64,
}

#[derive(Serialize)]
struct PageData<'a, T: Serialize> {
    data: &'a [T],
    meta: Meta,
}

#[derive(Serialize)]
struct PageItems<'a, T: Serialize> {
    items: &'a [T],
    meta: Meta,
}

#[derive(Serialize)]
struct PageUnknown<'a, T: Serialize> {
    results: &'a [T],
    pagination: Meta,
}

fn list_resp<T: Serialize>(
    sh: &Shared,
    list_path: &str,
    items: &[T],
    page: u64,
    limit: u64,
    total: u64,
) -> Resp {
    let meta = Meta {
        page,
        limit,
        total,
        total_pages: total.div_ceil(limit.max(1)),
    };
    let shape = lock(&sh.shapes)
        .get(list_path)
        .copied()
        .unwrap_or(ListShape::Normal);
    match shape {
        ListShape::Normal => env(200, &PageData { data: items, meta }),
        ListShape::Items => env(200, &PageItems { items, meta }),
        ListShape::Bare => env(200, items),
        ListShape::Unknown => env(
            200,
            &PageUnknown {
                results: items,
                pagination: meta,
            },
        ),
    }
}

fn body_obj(ctx: &mut Ctx) -> Result<Map<String, Value>, Resp> {
    match ctx.body.take() {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(bad_request(
            ctx.sh,
            vec!["an unknown value was passed to the validate function".into()],
        )),
    }
}

fn pagination_only(ctx: &Ctx) -> Result<(u64, u64), Resp> {
    let mut errs = Vec::new();
    let (p, l) = validate::pagination(&ctx.query, &[], &mut errs);
    if errs.is_empty() {
        Ok((p, l))
    } else {
        Err(bad_request(ctx.sh, errs))
    }
}

fn new_cuid() -> String {
    use rand::Rng;
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut r = rand::rng();
    let mut s = String::from("c");
    for _ in 0..24 {
        s.push(alphabet[r.random_range(0..36)] as char);
    }
    s
}

fn dispatch(ctx: &mut Ctx, rt: Rt, user: &AuthUser) -> Result<Resp, Resp> {
    let sh = ctx.sh;
    let now = ctx.now;
    Ok(match rt {
        Rt::Logout => logout(ctx, user),
        Rt::OpsPost => {
            let mut body = ctx.body.take().unwrap_or_else(|| Value::Object(Map::new()));
            validate::sanitize(&mut body);
            *lock(&sh.ops_status) = Some((body, now + OPS_STATUS_TTL_MS));
            env(201, &json!({ "status": "ok" }))
        }
        Rt::OpsGet => {
            let g = lock(&sh.ops_status);
            match g.as_ref().filter(|(_, exp)| *exp > now) {
                Some((v, _)) => env(200, v),
                None => env(
                    200,
                    &json!({ "systemStatus": "unknown", "message": "No ops data available" }),
                ),
            }
        }
        Rt::OrgCurrent => {
            let st = lock(&sh.store);
            if st.org_id != user.org {
                return Err(error(404, "Organization not found"));
            }
            env(200, &st.org)
        }
        Rt::OrgStorage => {
            let st = lock(&sh.store);
            env(200, &st.storage)
        }
        Rt::OrgId(id) => {
            check_uuid(&id)?;
            if id != user.org {
                return Err(error(403, "You can only access your own organization"));
            }
            let st = lock(&sh.store);
            if st.org_id != id {
                return Err(error(404, "Organization not found"));
            }
            env(200, &st.org)
        }
        Rt::ContentList => content_list(ctx)?,
        Rt::ContentGet(id) => {
            check_id(&id)?;
            let st = lock(&sh.store);
            let ci = st
                .content_pos(&id)
                .ok_or_else(|| error(404, "Content not found"))?;
            env(
                200,
                &ContentRow {
                    r: R { s: &st, now },
                    ci,
                    mode: ContentMode::Detail,
                },
            )
        }
        Rt::ContentArchive(id) => set_content_status(ctx, &id, "archived", 201)?,
        Rt::ContentRestore(id) => set_content_status(ctx, &id, "active", 200)?,
        Rt::ContentPatch(id) => content_patch(ctx, &id)?,
        Rt::ContentExpiration(id) => content_expiration(ctx, &id)?,
        Rt::PlaylistList => {
            let (page, limit) = pagination_only(ctx)?;
            let st = lock(&sh.store);
            let r = R { s: &st, now };
            let items: Vec<PlaylistView> = Store::page(
                control::cut(sh, "/api/v1/playlists", &st.playlist_order),
                page,
                limit,
            )
            .iter()
            .map(|&pi| PlaylistView {
                r: Some(r),
                p: &st.playlists[pi as usize],
                pi: pi as usize,
                mode: PlaylistMode::Full,
            })
            .collect();
            list_resp(
                sh,
                "/api/v1/playlists",
                &items,
                page,
                limit,
                control::cut(sh, "/api/v1/playlists", &st.playlist_order).len() as u64,
            )
        }
        Rt::PlaylistGet(id) => {
            check_id(&id)?;
            let st = lock(&sh.store);
            let pi = st
                .playlist_pos(&id)
                .ok_or_else(|| error(404, "Playlist not found"))?;
            env(
                200,
                &PlaylistView {
                    r: Some(R { s: &st, now }),
                    p: &st.playlists[pi],
                    pi,
                    mode: PlaylistMode::Full,
                },
            )
        }
        Rt::PlaylistPatch(id) => playlist_patch(ctx, &id)?,
        Rt::DisplayList => {
            let (page, limit) = pagination_only(ctx)?;
            let st = lock(&sh.store);
            let r = R { s: &st, now };
            let items: Vec<DisplayView> = Store::page(
                control::cut(sh, "/api/v1/displays", &st.display_order),
                page,
                limit,
            )
            .iter()
            .map(|&di| DisplayView {
                r,
                di: di as usize,
                mode: DisplayMode::List,
            })
            .collect();
            list_resp(
                sh,
                "/api/v1/displays",
                &items,
                page,
                limit,
                control::cut(sh, "/api/v1/displays", &st.display_order).len() as u64,
            )
        }
        Rt::DisplayGet(id) => {
            check_uuid(&id)?;
            let st = lock(&sh.store);
            let di = st
                .display_pos(&id)
                .ok_or_else(|| error(404, "Display not found"))?;
            env(
                200,
                &DisplayView {
                    r: R { s: &st, now },
                    di,
                    mode: DisplayMode::Detail,
                },
            )
        }
        Rt::DisplayPatch(id) => display_patch(ctx, &id)?,
        Rt::GroupList => {
            let (page, limit) = pagination_only(ctx)?;
            let st = lock(&sh.store);
            let r = R { s: &st, now };
            let items: Vec<GroupView> = Store::page(
                control::cut(sh, "/api/v1/display-groups", &st.group_order),
                page,
                limit,
            )
            .iter()
            .map(|&gi| GroupView {
                r,
                gi: gi as usize,
                mode: GroupMode::List,
            })
            .collect();
            list_resp(
                sh,
                "/api/v1/display-groups",
                &items,
                page,
                limit,
                control::cut(sh, "/api/v1/display-groups", &st.group_order).len() as u64,
            )
        }
        Rt::GroupGet(id) => {
            check_id(&id)?;
            let st = lock(&sh.store);
            let gi = st
                .group_pos(&id)
                .ok_or_else(|| error(404, "Display group not found"))?;
            env(
                200,
                &GroupView {
                    r: R { s: &st, now },
                    gi,
                    mode: GroupMode::Detail,
                },
            )
        }
        Rt::ScheduleList => {
            let (page, limit) = pagination_only(ctx)?;
            let st = lock(&sh.store);
            let r = R { s: &st, now };
            let items: Vec<ScheduleView> = Store::page(
                control::cut(sh, "/api/v1/schedules", &st.schedule_order),
                page,
                limit,
            )
            .iter()
            .map(|&si| ScheduleView {
                r,
                si: si as usize,
                mode: ScheduleMode::Full,
            })
            .collect();
            list_resp(
                sh,
                "/api/v1/schedules",
                &items,
                page,
                limit,
                control::cut(sh, "/api/v1/schedules", &st.schedule_order).len() as u64,
            )
        }
        Rt::ScheduleGet(id) => {
            check_id(&id)?;
            let st = lock(&sh.store);
            let si = st
                .schedule_pos(&id)
                .ok_or_else(|| error(404, "Schedule not found"))?;
            env(
                200,
                &ScheduleView {
                    r: R { s: &st, now },
                    si,
                    mode: ScheduleMode::Full,
                },
            )
        }
        Rt::SchedulePatch(id) => schedule_patch(ctx, &id)?,
        Rt::Fleet => fleet_command(ctx, user)?,
        Rt::Health | Rt::Ready | Rt::Live | Rt::AppReady | Rt::Login | Rt::Refresh => internal(),
    })
}

const CONTENT_TYPES: &[&str] = &[
    "image", "video", "url", "html", "pdf", "template", "layout", "widget",
];
const CONTENT_STATUSES: &[&str] = &[
    "active",
    "archived",
    "draft",
    "flagged",
    "rejected",
    "pending_approval",
    "expired",
    "ready",
    "processing",
    "error",
];

fn content_list(ctx: &Ctx) -> Result<Resp, Resp> {
    let sh = ctx.sh;
    let q = &ctx.query;
    let mut errs = Vec::new();
    let extras = [
        "type",
        "status",
        "templateOrientation",
        "search",
        "dateRange",
        "tagNames",
        "tagIds",
    ];
    let (page, limit) = validate::pagination(q, &extras, &mut errs);
    let mut f = ContentFilter {
        kind: validate::query_string(q, "type", Some(CONTENT_TYPES), None, &mut errs),
        status: validate::query_string(q, "status", Some(CONTENT_STATUSES), None, &mut errs),
        template_orientation: validate::query_string(
            q,
            "templateOrientation",
            Some(&["landscape", "portrait", "both"]),
            None,
            &mut errs,
        ),
        search: validate::query_string(q, "search", None, Some(120), &mut errs),
        ..ContentFilter::default()
    };
    if let Some(d) = validate::query_string(
        q,
        "dateRange",
        Some(&["7days", "30days", "90days"]),
        None,
        &mut errs,
    ) {
        let days: i64 = d.trim_end_matches("days").parse().unwrap_or(0);
        f.created_after = Some(ctx.now - days * 86_400_000);
    }
    if let Some(vs) = q.get("tagNames") {
        let names: Vec<String> = vs
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.len() > 20 {
            errs.push("tagNames must contain no more than 20 elements".into());
        }
        f.tag_names = names;
    }
    if let Some(vs) = q.get("tagIds") {
        if vs.len() > 20 {
            errs.push("tagIds must contain no more than 20 elements".into());
        }
        f.tag_ids = vs.to_vec();
    }
    if !errs.is_empty() {
        return Err(bad_request(sh, errs));
    }
    let st = lock(&sh.store);
    let r = R {
        s: &st,
        now: ctx.now,
    };
    if f.is_empty() {
        let items: Vec<ContentListItem> = Store::page(
            control::cut(sh, "/api/v1/content", &st.content_order),
            page,
            limit,
        )
        .iter()
        .map(|&ci| ContentListItem {
            r,
            c: &st.content[ci as usize],
        })
        .collect();
        return Ok(list_resp(
            sh,
            "/api/v1/content",
            &items,
            page,
            limit,
            control::cut(sh, "/api/v1/content", &st.content_order).len() as u64,
        ));
    }
    let hits: Vec<u32> = st
        .content_order
        .iter()
        .copied()
        .filter(|&ci| f.matches(&st, &st.content[ci as usize]))
        .collect();
    let hits = control::cut(sh, "/api/v1/content", &hits);
    let items: Vec<ContentListItem> = Store::page(hits, page, limit)
        .iter()
        .map(|&ci| ContentListItem {
            r,
            c: &st.content[ci as usize],
        })
        .collect();
    Ok(list_resp(
        sh,
        "/api/v1/content",
        &items,
        page,
        limit,
        hits.len() as u64,
    ))
}

fn set_content_status(ctx: &Ctx, id: &str, status: &str, code: u16) -> Result<Resp, Resp> {
    check_id(id)?;
    let mut st = lock(&ctx.sh.store);
    let ci = st
        .content_pos(id)
        .ok_or_else(|| error(404, "Content not found"))?;
    let c = &mut st.content[ci];
    if &*c.status != status {
        c.status = Arc::from(status);
    }
    c.updated_at = ctx.now;
    Ok(env(
        code,
        &ContentRow {
            r: R {
                s: &st,
                now: ctx.now,
            },
            ci,
            mode: ContentMode::Raw,
        },
    ))
}

fn opt_box(v: F<String>) -> Option<Option<Box<str>>> {
    match v {
        F::Absent => None,
        F::Null => Some(None),
        F::Val(s) => Some(Some(s.into_boxed_str())),
    }
}

fn content_patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&[
        "name",
        "description",
        "type",
        "url",
        "thumbnail",
        "duration",
        "fileSize",
        "mimeType",
        "fileHash",
        "metadata",
        "expiresAt",
        "replacementContentId",
        "templateOrientation",
    ]);
    let name = v.string("name", true, None, None);
    let description = v.string("description", false, None, None);
    let kind = v.one_of(
        "type",
        &["image", "video", "url", "html", "pdf", "template"],
    );
    let url = v.string("url", false, None, None);
    if let F::Val(u) = &url
        && !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("minio://"))
    {
        v.errs
            .push("url must match /^(https?:\\/\\/|minio:\\/\\/)/ regular expression".into());
    }
    let thumbnail = v.string("thumbnail", false, None, None);
    let duration = v.int("duration", Some(1), None);
    let file_size = v.int("fileSize", Some(0), None);
    let mime = v.string("mimeType", false, None, None);
    let _hash = v.string("fileHash", false, None, None);
    let metadata = v.object("metadata");
    let expires = v.iso("expiresAt");
    let repl = v.string("replacementContentId", false, None, None);
    let orient = v.one_of("templateOrientation", &["landscape", "portrait", "both"]);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let ci = st
        .content_pos(id)
        .ok_or_else(|| error(404, "Content not found"))?;
    if let F::Val(u) = &url
        && let Some(rest) = u.strip_prefix("minio://")
        && !rest.starts_with(&format!("{}/", st.org_id))
    {
        return Err(error(
            403,
            "Access denied: storage object belongs to another organization",
        ));
    }
    let c = &mut st.content[ci];
    if let F::Val(n) = name {
        c.name = n;
    }
    match description {
        F::Val(d) => c.description = Some(d),
        F::Null => c.description = None,
        F::Absent => {}
    }
    if let F::Val(k) = kind {
        c.kind = Arc::from(k.as_str());
    }
    match url {
        F::Val(u) => c.url = Some(u),
        F::Null => c.url = None,
        F::Absent => {}
    }
    match thumbnail {
        F::Val(u) => c.thumbnail = Some(u),
        F::Null => c.thumbnail = None,
        F::Absent => {}
    }
    if let F::Val(d) = duration {
        c.duration = Some(d);
    }
    match file_size {
        F::Val(d) => c.file_size = Some(d),
        F::Null => c.file_size = None,
        F::Absent => {}
    }
    match mime {
        F::Val(m) => c.mime_type = Some(Arc::from(m.as_str())),
        F::Null => c.mime_type = None,
        F::Absent => {}
    }
    match metadata {
        F::Val(m) => c.metadata = Some(Value::Object(m).to_string().into_boxed_str()),
        F::Null => c.metadata = None,
        F::Absent => {}
    }
    match expires {
        F::Val(e) => c.expires_at = Some(e),
        F::Null => c.expires_at = None,
        F::Absent => {}
    }
    if let Some(r) = opt_box(repl) {
        c.replacement_content_id = r;
    }
    match orient {
        F::Val(o) => c.template_orientation = Some(Arc::from(o.as_str())),
        F::Null => c.template_orientation = None,
        F::Absent => {}
    }
    c.updated_at = ctx.now;
    Ok(env(
        200,
        &ContentRow {
            r: R {
                s: &st,
                now: ctx.now,
            },
            ci,
            mode: ContentMode::Mapped,
        },
    ))
}

fn content_expiration(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&["expiresAt", "replacementContentId"]);
    let expires = match v.iso("expiresAt") {
        F::Val(e) => Some(e),
        F::Absent if body.contains_key("expiresAt") => None,
        _ => {
            v.errs
                .push("expiresAt must be a valid ISO 8601 date string".into());
            None
        }
    };
    let repl = v.string("replacementContentId", false, None, None);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let expires = expires.unwrap_or_default();
    let mut st = lock(&sh.store);
    let ci = st
        .content_pos(id)
        .ok_or_else(|| error(404, "Content not found"))?;
    if expires <= ctx.now {
        return Err(error(400, "expiresAt must be in the future"));
    }
    if let F::Val(r) = &repl
        && st.content_pos(r).is_none()
    {
        return Err(error(400, "Replacement content not found"));
    }
    let c = &mut st.content[ci];
    c.expires_at = Some(expires);
    if let Some(r) = opt_box(repl) {
        c.replacement_content_id = r;
    }
    c.updated_at = ctx.now;
    Ok(env(
        200,
        &ContentRow {
            r: R {
                s: &st,
                now: ctx.now,
            },
            ci,
            mode: ContentMode::Mapped,
        },
    ))
}

/// `{contentId, order?, duration?}` of a playlist PATCH.
type ItemSpec = (String, Option<i64>, Option<i64>);

fn playlist_patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&["name", "description", "loop", "isDefault", "items"]);
    let name = v.string("name", true, None, None);
    let description = v.string("description", false, None, None);
    let lp = v.boolean("loop");
    let is_default = v.boolean("isDefault");
    let mut items: Option<Vec<ItemSpec>> = None;
    match body.get("items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, it) in a.iter().enumerate() {
                match it {
                    Value::Object(m) => {
                        let mut iv = V::new(m, &format!("items.{i}."));
                        iv.whitelist(&["contentId", "order", "duration"]);
                        let cid = iv.req_string("contentId", None);
                        let order = iv.int("order", Some(0), None).val();
                        let dur = iv.int("duration", Some(1), Some(86_400)).val();
                        v.errs.append(&mut iv.errs);
                        if let Some(cid) = cid {
                            out.push((cid, order, dur));
                        }
                    }
                    _ => v.errs.push(format!(
                        "nested property items.{i} must be either object or array"
                    )),
                }
            }
            items = Some(out);
        }
        Some(_) => {
            v.errs
                .push("nested property items must be either object or array".into());
            v.errs.push("items must be an array".into());
        }
    }
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let pi = st
        .playlist_pos(id)
        .ok_or_else(|| error(404, "Playlist not found"))?;
    let mut new_items = None;
    if let Some(items) = items {
        let mut distinct: Vec<&str> = items.iter().map(|(c, _, _)| c.as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let valid = distinct
            .iter()
            .filter(|c| st.content_pos(c).is_some())
            .count();
        if !items.is_empty() && valid != items.len() {
            return Err(error(404, "One or more content items not found"));
        }
        let built: Vec<super::model::PlaylistItem> = items
            .into_iter()
            .enumerate()
            .map(|(i, (cid, order, dur))| super::model::PlaylistItem {
                id: new_cuid().into_boxed_str(),
                content_id: cid.into_boxed_str(),
                order: order.unwrap_or(i as i64),
                duration: dur,
            })
            .collect();
        let mut orders: Vec<i64> = built.iter().map(|i| i.order).collect();
        orders.sort_unstable();
        if orders.windows(2).any(|w| w[0] == w[1]) {
            // Unique (playlistId, order) violated inside the transaction: Prisma P2002, not caught → 500.
            return Err(internal());
        }
        new_items = Some(built);
    }
    if let Some(items) = new_items {
        st.set_playlist_items(pi, items);
    }
    let p = &mut st.playlists[pi];
    if let F::Val(n) = name {
        p.name = n;
    }
    match description {
        F::Val(d) => p.description = Some(d),
        F::Null => p.description = None,
        F::Absent => {}
    }
    if let F::Val(b) = lp {
        p.loop_ = Some(b);
    }
    if let F::Val(b) = is_default {
        p.is_default = b;
    }
    p.updated_at = ctx.now;
    let st = &*st;
    Ok(env(
        200,
        &PlaylistView {
            r: Some(R {
                s: st,
                now: ctx.now,
            }),
            p: &st.playlists[pi],
            pi,
            mode: PlaylistMode::Full,
        },
    ))
}

fn display_patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_uuid(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&[
        "name",
        "description",
        "location",
        "deviceId",
        "status",
        "orientation",
        "resolution",
        "metadata",
        "currentPlaylistId",
    ]);
    let name = v.string("name", false, Some(1), Some(100));
    let description = v.string("description", false, None, None);
    let location = v.string("location", false, None, None);
    let device_id = v.string("deviceId", false, None, None);
    let status = v.one_of("status", &["online", "offline", "error"]);
    let orientation = v.one_of(
        "orientation",
        &[
            "landscape",
            "portrait",
            "landscape_flipped",
            "portrait_flipped",
        ],
    );
    let resolution = v.string("resolution", false, None, None);
    let metadata = v.object("metadata");
    let playlist = v.string("currentPlaylistId", false, None, None);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let di = st
        .display_pos(id)
        .ok_or_else(|| error(404, "Display not found"))?;
    if let F::Val(p) = &playlist
        && st.playlist_pos(p).is_none()
    {
        return Err(error(
            404,
            "Playlist not found or does not belong to your organization",
        ));
    }
    if let F::Val(dev) = &device_id
        && st
            .displays
            .iter()
            .enumerate()
            .any(|(i, d)| i != di && d.device_identifier == *dev)
    {
        return Err(error(409, "Device ID already in use"));
    }
    let d = &mut st.displays[di];
    if let F::Val(n) = name {
        d.nickname = Some(n);
    }
    match description {
        F::Val(x) => d.description = Some(x),
        F::Null => d.description = None,
        F::Absent => {}
    }
    match location {
        F::Val(x) => d.location = Some(Arc::from(x.as_str())),
        F::Null => d.location = None,
        F::Absent => {}
    }
    if let F::Val(x) = device_id {
        d.device_identifier = x;
    }
    if let F::Val(x) = status {
        d.status = Arc::from(x.as_str());
    }
    if let F::Val(x) = orientation {
        d.orientation = Arc::from(x.as_str());
    }
    match resolution {
        F::Val(x) => d.resolution = Some(Arc::from(x.as_str())),
        F::Null => d.resolution = None,
        F::Absent => {}
    }
    match metadata {
        F::Val(m) => d.metadata = Some(Value::Object(m).to_string().into_boxed_str()),
        F::Null => d.metadata = None,
        F::Absent => {}
    }
    if let Some(p) = opt_box(playlist) {
        d.current_playlist_id = p;
    }
    d.updated_at = ctx.now;
    Ok(env(
        200,
        &DisplayView {
            r: R {
                s: &st,
                now: ctx.now,
            },
            di,
            mode: DisplayMode::Detail,
        },
    ))
}

fn schedule_patch(ctx: &mut Ctx, id: &str) -> Result<Resp, Resp> {
    check_id(id)?;
    let sh = ctx.sh;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&[
        "name",
        "description",
        "startDate",
        "endDate",
        "startTime",
        "endTime",
        "daysOfWeek",
        "priority",
        "isActive",
        "playlistId",
        "displayId",
        "displayGroupId",
    ]);
    let name = v.string("name", false, None, None);
    let description = v.string("description", false, None, None);
    let start_date = v.iso("startDate");
    let end_date = v.iso("endDate");
    let start_time = v.int("startTime", Some(0), Some(1439));
    let end_time = v.int("endTime", Some(0), Some(1439));
    let days = v.int_array("daysOfWeek", 0, 6);
    let priority = v.int("priority", None, None);
    let active = v.boolean("isActive");
    let playlist = v.string("playlistId", false, None, None);
    let display = v.string("displayId", false, None, None);
    let group = v.string("displayGroupId", false, None, None);
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let mut st = lock(&sh.store);
    let si = st
        .schedule_pos(id)
        .ok_or_else(|| error(404, "Schedule not found"))?;
    if matches!(display, F::Val(_)) && matches!(group, F::Val(_)) {
        return Err(error(
            400,
            "Cannot specify both displayId and displayGroupId",
        ));
    }
    if let F::Val(p) = &playlist
        && st.playlist_pos(p).is_none()
    {
        return Err(error(404, "Playlist not found"));
    }
    if let F::Val(d) = &display
        && st.display_pos(d).is_none()
    {
        return Err(error(404, "Display not found"));
    }
    if let F::Val(g) = &group
        && st.group_pos(g).is_none()
    {
        return Err(error(404, "Display group not found"));
    }
    let old_playlist = st.schedules[si].playlist_id.clone();
    let old_display = st.schedules[si].display_id.clone();
    let old_priority = st.schedules[si].priority;
    let x = &mut st.schedules[si];
    if let F::Val(n) = name {
        x.name = n;
    }
    match description {
        F::Val(d) => x.description = Some(d),
        F::Null => x.description = None,
        F::Absent => {}
    }
    if let F::Val(d) = start_date {
        x.start_date = d;
    }
    if let F::Val(d) = end_date {
        x.end_date = Some(d);
    }
    match start_time {
        F::Val(t) => x.start_time = Some(t),
        F::Null => x.start_time = None,
        F::Absent => {}
    }
    match end_time {
        F::Val(t) => x.end_time = Some(t),
        F::Null => x.end_time = None,
        F::Absent => {}
    }
    if let F::Val(d) = days {
        x.days_of_week = d;
    }
    if let F::Val(p) = priority {
        x.priority = p;
    }
    if let F::Val(a) = active {
        x.is_active = a;
    }
    if let F::Val(p) = playlist {
        x.playlist_id = p.into_boxed_str();
    }
    if let F::Val(d) = display {
        x.display_id = Some(d.into_boxed_str());
        x.display_group_id = None;
    } else if let F::Val(g) = group {
        x.display_group_id = Some(g.into_boxed_str());
        x.display_id = None;
    }
    x.updated_at = ctx.now;
    let new_priority = x.priority;
    st.relink_schedule(si, &old_playlist, old_display.as_deref());
    if new_priority != old_priority {
        st.sort_schedules();
    }
    Ok(env(
        200,
        &ScheduleView {
            r: R {
                s: &st,
                now: ctx.now,
            },
            si,
            mode: ScheduleMode::Full,
        },
    ))
}

fn fleet_command(ctx: &mut Ctx, user: &AuthUser) -> Result<Resp, Resp> {
    let sh = ctx.sh;
    let now = ctx.now;
    let body = body_obj(ctx)?;
    let mut v = V::new(&body, "");
    v.whitelist(&["command", "target", "payload"]);
    let command = v.req_one_of(
        "command",
        &[
            "reload",
            "restart",
            "reboot",
            "clear_cache",
            "push_content",
            "update",
        ],
    );
    let target = v.nested("target", true, |t| {
        t.whitelist(&["type", "id"]);
        let ty = t.req_one_of("type", &["device", "group", "organization", "tag"]);
        let id = t.req_string("id", Some("target.id must be a non-empty string"));
        (ty, id)
    });
    let payload = v.nested("payload", false, |p| {
        p.whitelist(&["contentId", "duration", "priority", "feedUrl"]);
        let content = p.string("contentId", false, None, None).val();
        if let Some(d) = p.obj_get("duration")
            && !matches!(d.as_i64(), Some(15 | 30 | 60 | 120 | 240))
        {
            p.push_err("duration must be one of the following values: 15, 30, 60, 120, 240");
            if !d.is_number() {
                p.push_err("duration must be a number conforming to the specified constraints");
            }
        }
        let priority = p.one_of("priority", &["normal", "emergency"]).val();
        let _feed = p.string("feedUrl", false, None, None);
        (content, priority)
    });
    if !v.errs.is_empty() {
        return Err(bad_request(sh, v.errs));
    }
    let command = command.unwrap_or_default();
    let (ttype, tid) = match target {
        Some((Some(t), Some(i))) => (t, i),
        _ => return Err(bad_request(sh, vec!["target must be an object".into()])),
    };
    let (content_id, priority) = payload.unwrap_or((None, None));
    if priority.as_deref() == Some("emergency") && user.role != "admin" {
        return Err(error(403, "Emergency override requires admin role"));
    }
    if command == "update" && user.role != "admin" {
        return Err(error(
            403,
            "Insufficient permissions. Required roles: admin",
        ));
    }
    {
        let mut f = lock(&sh.fleet);
        while f.window.front().is_some_and(|&t| t <= now - 60_000) {
            f.window.pop_front();
        }
        if f.window.len() >= FLEET_MAX_PER_MIN {
            return Err(error_bare(
                429,
                "Fleet command rate limit exceeded. Max 10 commands per minute.",
            ));
        }
        f.window.push_back(now);
    }
    let mut st = lock(&sh.store);
    let (targets, name): (Vec<usize>, String) = match ttype.as_str() {
        "device" => {
            let di = st
                .display_pos(&tid)
                .ok_or_else(|| error(404, &format!("Device {tid} not found in organization")))?;
            let d = &st.displays[di];
            (
                vec![di],
                d.nickname
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| d.id.to_string()),
            )
        }
        "group" => {
            let gi = st
                .group_pos(&tid)
                .ok_or_else(|| error(404, &format!("Group {tid} not found in organization")))?;
            let g = &st.groups[gi];
            (
                g.display_ids
                    .iter()
                    .filter_map(|id| st.display_pos(id))
                    .collect(),
                g.name.clone(),
            )
        }
        "organization" => (
            st.display_order.iter().map(|&i| i as usize).collect(),
            "All Devices".to_string(),
        ),
        _ => {
            let ti = st
                .tag_pos(&tid)
                .ok_or_else(|| error(404, &format!("Tag {tid} not found in organization")))?;
            let ds = st
                .display_order
                .iter()
                .map(|&i| i as usize)
                .filter(|&di| st.displays[di].tags.iter().any(|l| l.tag as usize == ti))
                .collect();
            (ds, format!("tag: {}", st.tags[ti].name))
        }
    };
    if command == "push_content" {
        let Some(cid) = content_id else {
            return Err(error(400, "contentId required for push_content"));
        };
        if st.content_pos(&cid).is_none() {
            return Err(error(404, "Content not found"));
        }
    }
    let online = targets
        .iter()
        .filter(|&&di| Store::is_online(&st.displays[di], now))
        .count();
    let mut reconnect = Vec::new();
    if command == "reload" {
        let mut f = lock(&sh.fleet);
        for &di in &targets {
            let d = &st.displays[di];
            // Only a paired, enabled player that is merely disconnected can pick up its queued command.
            if Store::is_online(d, now) || d.stay_offline || d.is_disabled || d.paired_at.is_none()
            {
                continue;
            }
            let k = f.reload_offline_seen;
            f.reload_offline_seen += 1;
            let share = f.reconnect_share;
            if share > 0.0 && ((k + 1) as f64 * share).floor() > (k as f64 * share).floor() {
                reconnect.push(di);
            }
        }
        f.commands += 1;
    } else {
        lock(&sh.fleet).commands += 1;
    }
    for di in reconnect {
        control::reconnect_at(&mut st, di, now);
    }
    let n = targets.len();
    Ok(env(
        201,
        &json!({
            "commandId": uuid::Uuid::new_v4().to_string(),
            "command": command,
            "target": { "type": ttype, "id": tid, "name": name },
            "devicesTargeted": n,
            "devicesOnline": online,
            "devicesQueued": n - online,
            "devicesDelivered": online,
            "devicesFailed": 0,
        }),
    ))
}
