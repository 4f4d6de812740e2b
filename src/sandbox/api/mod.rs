//! The API on port N (`/api/v1`): the request pipeline in Nest's order (`pipeline`: body parser → CSRF middleware →
//! routing → throttler → JWT guard → roles/subscription guards → pipes → handler → envelope), the route table and
//! the pipes shared by the handlers, and one handler module per collection of vizora-api.md.
//!
//! The API keeps Nest's own routing (`route`: case-insensitive, percent-decoded segments, HEAD as GET, CSRF checked
//! before routing, Nest's 404 body) rather than axum's, so it is mounted as the fallback of the one sandbox router
//! (`super::router`); the control API is nested beside it.

mod auth;
mod content;
mod displays;
mod fleet;
mod groups;
mod health;
mod organizations;
mod pipeline;
mod playlists;
mod schedules;

pub(crate) use pipeline::entry;

use super::Shared;
use super::respond::{Resp, bad_request, error, internal};
use super::validate::{self, F, Query};
use auth::AuthUser;
use axum::http::HeaderMap;
use serde_json::{Map, Value};
use std::collections::HashMap;

const AUTH_COOKIE: &str = "vizora_auth_token";
const REFRESH_COOKIE: &str = "vizora_refresh_token";
const CSRF_COOKIE: &str = "vizora_csrf_token";
/// Access-token lifetime, seconds (the code default `JWT_EXPIRES_IN` of 30 min).
pub(crate) const TOKEN_TTL_S: i64 = 1800;
const REFRESH_TTL_S: i64 = 30 * 86_400;

// ---------------------------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------------------------

/// A route of the API subset (vizora-api.md), with its path id where it has one.
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

/// Nest's routing: `/api/v1/…`, case-insensitive, percent-decoded segments, one trailing slash, HEAD as GET.
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

/// A request as the handlers see it: parsed cookies and query, the sanitized JSON body, the CSRF token and the
/// sandbox clock's `now` (ms).
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

/// The body as an object for a DTO (none is `{}`; an array is the validation pipe's 400).
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

/// `page` and `limit` of a list that takes no other query key (an unknown key is 400).
fn pagination_only(ctx: &Ctx) -> Result<(u64, u64), Resp> {
    let mut errs = Vec::new();
    let (p, l) = validate::pagination(&ctx.query, &[], &mut errs);
    if errs.is_empty() {
        Ok((p, l))
    } else {
        Err(bad_request(ctx.sh, errs))
    }
}

/// A nullable optional field as a patch: absent → unchanged, `null` → cleared.
fn opt_box(v: F<String>) -> Option<Option<Box<str>>> {
    match v {
        F::Absent => None,
        F::Null => Some(None),
        F::Val(s) => Some(Some(s.into_boxed_str())),
    }
}

/// A fresh CUID-shaped id (Prisma's default for playlist items).
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

/// Runs the handler of an authenticated route (guards passed); `Err` is an error response.
fn dispatch(ctx: &mut Ctx, rt: Rt, user: &AuthUser) -> Result<Resp, Resp> {
    Ok(match rt {
        Rt::Logout => auth::logout(ctx, user),
        Rt::OpsPost => health::ops_post(ctx),
        Rt::OpsGet => health::ops_get(ctx),
        Rt::OrgCurrent => organizations::current(ctx, user)?,
        Rt::OrgStorage => organizations::storage(ctx),
        Rt::OrgId(id) => organizations::by_id(ctx, user, &id)?,
        Rt::ContentList => content::list(ctx)?,
        Rt::ContentGet(id) => content::get(ctx, &id)?,
        Rt::ContentArchive(id) => content::set_status(ctx, &id, "archived", 201)?,
        Rt::ContentRestore(id) => content::set_status(ctx, &id, "active", 200)?,
        Rt::ContentPatch(id) => content::patch(ctx, &id)?,
        Rt::ContentExpiration(id) => content::expiration(ctx, &id)?,
        Rt::PlaylistList => playlists::list(ctx)?,
        Rt::PlaylistGet(id) => playlists::get(ctx, &id)?,
        Rt::PlaylistPatch(id) => playlists::patch(ctx, &id)?,
        Rt::DisplayList => displays::list(ctx)?,
        Rt::DisplayGet(id) => displays::get(ctx, &id)?,
        Rt::DisplayPatch(id) => displays::patch(ctx, &id)?,
        Rt::GroupList => groups::list(ctx)?,
        Rt::GroupGet(id) => groups::get(ctx, &id)?,
        Rt::ScheduleList => schedules::list(ctx)?,
        Rt::ScheduleGet(id) => schedules::get(ctx, &id)?,
        Rt::SchedulePatch(id) => schedules::patch(ctx, &id)?,
        Rt::Fleet => fleet::command(ctx, user)?,
        Rt::Health | Rt::Ready | Rt::Live | Rt::AppReady | Rt::Login | Rt::Refresh => internal(),
    })
}
