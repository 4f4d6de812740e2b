//! The Vizora API client (agents.md section 5, against design/vizora-api.md): session (login, one re-login on 401,
//! awaited logout with cookies and CSRF header), envelope unwrap, error classes, page walk with completeness from
//! `meta.total`, the host-wide rate budget, retries for idempotent requests, and the audited mutation helper.
//!
//! The client has no DELETE method. Agents use it through the [`VizoraApi`] trait.

pub mod budget;

use crate::model::{RemediationAction, ts};
use crate::state::audit::{AuditLog, MutationLine};
use async_trait::async_trait;
use budget::{Admission, Limits, RateBudget};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Error classes of agents.md 5.7, with the context a user needs (`API <status> <METHOD> <path>: <message>`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Connect/TLS/reset/timeout, after retries.
    #[error("API transport error {method} {path}: {cause}")]
    Transport {
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The failure: `timeout after <ms> ms`, or the HTTP library's connect/TLS/reset error text.
        cause: String,
    },
    /// 5xx after retries.
    #[error("API {status} {method} {path}: {message}")]
    Server {
        /// The 5xx status code of the last attempt.
        status: u16,
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The error body's `message` (agents.md 5.3: array joined with "; ", else the first 500 characters), redacted.
        message: String,
    },
    /// 429 that could not be waited out.
    #[error("API 429 {method} {path}: {message}")]
    RateLimited {
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The error body's `message` (agents.md 5.3: array joined with "; ", else the first 500 characters), redacted.
        message: String,
    },
    /// 401 (after the single re-login).
    #[error("API 401 {method} {path}: {message}")]
    Unauthorized {
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The error body's `message` (agents.md 5.3: array joined with "; ", else the first 500 characters), redacted.
        message: String,
    },
    /// 403: role, subscription or CSRF.
    #[error("API 403 {method} {path}: {message}")]
    Forbidden {
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The error body's `message` (agents.md 5.3: array joined with "; ", else the first 500 characters), redacted.
        message: String,
    },
    /// 404 not starting with `Cannot `: the entity is gone.
    #[error("API 404 {method} {path}: {message}")]
    NotFound {
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The error body's `message` (agents.md 5.3: array joined with "; ", else the first 500 characters), redacted.
        message: String,
    },
    /// 404 `Cannot <METHOD> …` or 405: the route is missing (contract drift).
    #[error("API {status} {method} {path}: {message}")]
    RouteMissing {
        /// 404 (body `Cannot <METHOD> …`) or 405.
        status: u16,
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The error body's message, e.g. `Cannot POST /api/v1/content/x/archive`, redacted.
        message: String,
    },
    /// 400, 409, 413 and other 4xx.
    #[error("API {status} {method} {path}: {message}")]
    Rejected {
        /// The 4xx status code (400, 409, 413, …; not 401/403/404/405/429).
        status: u16,
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// The error body's `message` (agents.md 5.3: array joined with "; ", else the first 500 characters), redacted.
        message: String,
    },
    /// 2xx with an unparseable or unexpected body.
    #[error("API {status} {method} {path}: unexpected response body ({message})")]
    BadShape {
        /// The 2xx status code of the answer.
        status: u16,
        /// HTTP method of the request (`GET`, `POST`, `PATCH`).
        method: String,
        /// Request path under the origin, query included (e.g. `/api/v1/content?page=2&limit=100`).
        path: String,
        /// What was wrong with the body, e.g. `malformed JSON: <parser error>`.
        message: String,
    },
    /// A list answered in an unknown shape (fatal, never an empty list; agents.md 5.4).
    #[error("API {path}: unrecognised list shape ({detail})")]
    UnrecognisedListShape {
        /// The list route being walked (without the `page`/`limit` query).
        path: String,
        /// Which page, and what it held instead of a `data`/`items` array or a bare array.
        detail: String,
    },
    /// The local budget or the deadline does not allow the request (deferred, not examined).
    #[error("API budget exhausted before the run deadline ({method} {path})")]
    BudgetExhausted {
        /// HTTP method of the request that was not sent.
        method: String,
        /// Request path under the origin, query included, that was not sent.
        path: String,
    },
    /// The host-wide budget's shared file lock cannot be taken at all (agents.md 4.2, 5.5): fatal, exit 2.
    #[error("{message} ({method} {path} not sent)")]
    BudgetLock {
        /// HTTP method of the request that was not sent.
        method: String,
        /// Request path under the origin, query included, that was not sent.
        path: String,
        /// The lock failure, naming the lock file.
        message: String,
    },
    /// No credentials configured.
    #[error(
        "FATAL: no API credentials (set OPS_EMAIL/OPS_PASSWORD or VALIDATOR_EMAIL/VALIDATOR_PASSWORD)"
    )]
    NoCredentials,
    /// Login failed (any non-429 failure, MFA, no token).
    #[error("login failed: {0}")]
    LoginFailed(String),
    /// A second 401 in the run (agents.md 5.2).
    #[error("session rejected twice in this run: {0}")]
    AuthLost(String),
}

impl ApiError {
    /// Whether the run must stop with exit 2 (login/auth failures, shape).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ApiError::NoCredentials
                | ApiError::BudgetLock { .. }
                | ApiError::LoginFailed(_)
                | ApiError::AuthLost(_)
                | ApiError::UnrecognisedListShape { .. }
        )
    }
    /// HTTP status of the error, when it has one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Server { status, .. }
            | ApiError::RouteMissing { status, .. }
            | ApiError::Rejected { status, .. }
            | ApiError::BadShape { status, .. } => Some(*status),
            ApiError::RateLimited { .. } => Some(429),
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Forbidden { .. } => Some(403),
            ApiError::NotFound { .. } => Some(404),
            _ => None,
        }
    }
}

/// Unwraps the envelope: an object with a boolean `success` and a `data` key → `data`; otherwise the whole body.
pub fn unwrap_envelope(v: Value) -> Value {
    match v {
        Value::Object(mut m)
            if m.get("success").is_some_and(Value::is_boolean) && m.contains_key("data") =>
        {
            m.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// The message of an error body: `message` (string, or array joined with "; "), else the first 500 characters.
pub fn error_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(m)) => match m.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => body.chars().take(500).collect(),
        },
        _ => body.chars().take(500).collect(),
    }
}

/// A page walk's outcome (agents.md 5.4).
#[derive(Debug, Clone, Default)]
pub struct ListResult {
    /// The collected items, de-duplicated by `id`, in list order. Empty after [`VizoraApi::walk_into`], which hands
    /// the items to its sink instead.
    pub items: Vec<Value>,
    /// How many unique items the walk handed over (equals `items.len()` after [`VizoraApi::walk`]).
    pub collected: usize,
    /// True only if every page succeeded, all reported the same `meta.total` and the unique ids equal it.
    pub complete: bool,
    /// The last `meta.total` seen.
    pub total: Option<u64>,
    /// Why the walk is incomplete.
    pub reason: Option<String>,
    /// Number of page requests made.
    pub pages: u32,
}

/// One audited API mutation (agents.md 5.8).
#[derive(Debug, Clone)]
pub struct MutationRequest {
    /// Human action, e.g. `Archive expired content "Summer Sale"`.
    pub action: String,
    /// Entity kind (`content`, `display`, `schedule`, `playlist`).
    pub target: String,
    /// Id of the target entity (audit `targetId`, RemediationAction `targetId`).
    pub target_id: String,
    /// HTTP method of the write (`POST` or `PATCH`; the client has no DELETE, agents.md 5.1).
    pub method: Method,
    /// Path under the origin, including `/api/v1`.
    pub path: String,
    /// JSON request body, sent as is; its top-level keys are also kept in the state's `before`/`after` projections.
    pub body: Value,
    /// Path of the fresh `before` read.
    pub before_path: String,
    /// Route slug for contract drift (`post-content-archive`, `patch-playlists`, …).
    pub route_slug: String,
    /// Retried on 5xx/timeouts (false for `POST /fleet/commands`; agents.md 5.6).
    pub idempotent: bool,
    /// A check of the fresh `before` read that must pass for the write to be sent (the agent's confirm step, e.g.
    /// "still active and unreferenced", 6.2.4); `None` = always send. One read serves as both the confirmation and
    /// the audited `before`.
    pub precondition: Option<Precondition>,
}

/// A confirmation of a mutation's fresh `before` read: `Ok(())` to send the write, `Err(evidence)` to skip it (the
/// evidence says why the finding no longer holds, e.g. `no longer active (status=archived)`). It may also require
/// absences ([`Precondition::absent`]): a verdict that rests on an id missing from another list is confirmed by a
/// direct read of that id answering 404 before anything is written (agents.md 6.0 "absence is confirmed").
#[derive(Clone)]
pub struct Precondition {
    check: Arc<PreconditionFn>,
    absent: Vec<Absence>,
}

/// The check behind a [`Precondition`]: the `before` read → `Ok(())` or the evidence.
pub type PreconditionFn = dyn Fn(&Value) -> Result<(), String> + Send + Sync;

/// An entity that must not exist for a write to be sent: `GET path` must answer 404 (agents.md 6.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    /// The detail path read, e.g. `/api/v1/playlists/<id>` (an id already checked to be path-safe).
    pub path: String,
    /// What it is, for the evidence, e.g. `playlist <id>`.
    pub what: String,
}

impl Precondition {
    /// Wraps a check of the `before` read.
    pub fn new(
        check: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Precondition {
        Precondition {
            check: Arc::new(check),
            absent: Vec::new(),
        }
    }

    /// Also requires `GET path` to answer 404, read after the `before` read passed its check (one budgeted,
    /// retried GET per absence; a dry run makes it too). An answer with the entity → [`MutationStatus::Unneeded`]
    /// with the evidence `a direct read shows <what> exists …`; another failure → [`MutationStatus::PreReadFailed`]
    /// (absence unconfirmed, nothing written).
    pub fn absent(mut self, path: impl Into<String>, what: impl Into<String>) -> Precondition {
        self.absent.push(Absence {
            path: path.into(),
            what: what.into(),
        });
        self
    }

    /// Runs the check on `before`.
    pub fn check(&self, before: &Value) -> Result<(), String> {
        (self.check)(before)
    }

    /// The absences to confirm by direct reads, in order.
    pub fn absences(&self) -> &[Absence] {
        &self.absent
    }
}

impl std::fmt::Debug for Precondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Precondition(..)")
    }
}

/// Outcome of a mutation.
#[derive(Debug, Clone)]
pub enum MutationStatus {
    /// Sent and succeeded; the unwrapped response (`Null` for a bad body, with a WARNING).
    Done(Value),
    /// Dry run: the audit line was written, nothing sent.
    DryRun,
    /// The `before` read answered 404: nothing written; the caller resolves.
    Gone,
    /// The `before` read failed otherwise: nothing written, finding stays open (`pre-write read failed: …`).
    PreReadFailed(ApiError),
    /// The `before` read failed the request's [`Precondition`]: nothing written, no audit line; the evidence why.
    Unneeded(String),
    /// The route drifted earlier in this run: not called.
    SkippedDrift,
    /// Sent and failed.
    Failed(ApiError),
}

/// A mutation's outcome with its audit id, `before` and the RemediationAction recorded for it (none for dry runs,
/// skipped or pre-read failures).
#[derive(Debug, Clone)]
pub struct MutationOutcome {
    /// What happened to the write.
    pub status: MutationStatus,
    /// The fresh `before` read (unwrapped entity JSON); `None` when the route drifted or the read failed or was 404.
    pub before: Option<Value>,
    /// Id (UUID) of the audit line written for this mutation (also for dry runs); `None` when nothing was audited.
    pub audit_id: Option<String>,
    /// The RemediationAction recorded for a sent write (success or failure, `verified: None`), with `before`/`after`
    /// projections (agents.md 2.3, 5.8); `None` unless the write was sent.
    pub action: Option<RemediationAction>,
}

impl MutationOutcome {
    /// The route answered 404 `Cannot …` or 405.
    pub fn is_drift(&self) -> bool {
        matches!(
            &self.status,
            MutationStatus::Failed(ApiError::RouteMissing { .. })
        )
    }
}

/// Receives the unique items of a page walk as each page arrives, so that an agent keeps only the small typed record
/// it needs of each item instead of whole pages of JSON (a 500 000-item content list is about 1.5 GB as
/// `serde_json::Value`s).
pub trait ItemSink: Send {
    /// One unique item (de-duplicated by `id`), in list order.
    fn item(&mut self, item: Value);
    /// The walk starts over (the list's total changed during the walk, agents.md 5.4): forget every item received.
    fn restart(&mut self);
}

impl ItemSink for Vec<Value> {
    fn item(&mut self, item: Value) {
        self.push(item);
    }
    fn restart(&mut self) {
        self.clear();
    }
}

/// What agents need from the API (a trait, so agents run against fakes in unit tests).
#[async_trait]
pub trait VizoraApi: Send + Sync {
    /// `GET path`, unwrapped.
    async fn get(&self, path: &str) -> Result<Value, ApiError>;
    /// Page walk of a list route, collecting the items in [`ListResult::items`].
    async fn walk(&self, path: &str) -> Result<ListResult, ApiError>;
    /// Page walk of a list route handing each unique item to `sink` as its page arrives; the result carries the
    /// counts and completeness, no items. The default collects through [`VizoraApi::walk`] (fakes); the real client
    /// streams, keeping one page in memory at a time.
    async fn walk_into(&self, path: &str, sink: &mut dyn ItemSink) -> Result<ListResult, ApiError> {
        let mut r = self.walk(path).await?;
        r.collected = r.items.len();
        for item in std::mem::take(&mut r.items) {
            sink.item(item);
        }
        Ok(r)
    }
    /// Audited mutation (agents.md 5.8).
    async fn mutate(&self, req: MutationRequest) -> MutationOutcome;
    /// Idempotent non-mutation POST (dashboard push), retried per 5.6. Not audited.
    async fn post_idempotent(&self, path: &str, body: &Value) -> Result<Value, ApiError>;
    /// The organization id of the ops user (after login).
    fn organization_id(&self) -> Option<String>;
    /// Route slugs that drifted in this run.
    fn drifted_routes(&self) -> Vec<String>;
}

#[derive(Debug, Clone)]
struct Session {
    token: String,
    cookies: Vec<(String, String)>,
    csrf: Option<String>,
}

/// The API session of a long-lived runtime (agents.md 5.2; design/README.md §3 "runtime"): the login's token, cookies
/// and CSRF header and the organization id, shared by the per-run [`Client`]s built with [`Client::with_session`], so
/// a daemon logs in once and re-logs in on a 401 instead of once per run. Per-run counters, the "one re-login per run"
/// rule and the first failed login stay in each `Client`.
#[derive(Default)]
pub struct SharedSession {
    session: Mutex<Option<Session>>,
    /// Held across "no session → log in" so concurrent walks (and concurrent runs) log in once.
    login_lock: Mutex<()>,
    org_id: StdMutex<Option<String>>,
}

impl SharedSession {
    /// A holder with no session yet (the first request logs in).
    pub fn new() -> SharedSession {
        SharedSession::default()
    }

    /// Whether a session is currently held (logged in and not yet logged out).
    pub async fn is_logged_in(&self) -> bool {
        self.session.lock().await.is_some()
    }
}

/// Settings of one client.
#[derive(Clone)]
pub struct ClientOptions {
    /// API origin (`VALIDATOR_BASE_URL`, e.g. `http://localhost:3000`); request paths carry `/api/v1` (agents.md 5.1).
    pub base_url: String,
    /// Login e-mail (`OPS_EMAIL`, else `VALIDATOR_EMAIL`); `None` → [`ApiError::NoCredentials`] at login (5.2).
    pub email: Option<String>,
    /// Login password (`OPS_PASSWORD`, else `VALIDATOR_PASSWORD`); secret, never logged; `None` → `NoCredentials`.
    pub password: Option<String>,
    /// Agent name, shown in the `User-Agent` (`vizora-ops/<version> (<agent>)`) and written to audit lines.
    pub agent: String,
    /// Run id written to audit lines and RemediationActions.
    pub run_id: String,
    /// TCP/TLS connect timeout (`OPS_HTTP_CONNECT_TIMEOUT_MS`, 5 s; agents.md 5.6).
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included (`OPS_HTTP_TIMEOUT_MS`, 30 s; agents.md 5.6); capped by the deadline.
    pub request_timeout: Duration,
    /// Logout timeout (`OPS_NOTIFY_TIMEOUT_MS`, 10 s; agents.md 5.6).
    pub notify_timeout: Duration,
    /// Retries after the first attempt for idempotent requests and 429 waits (`OPS_HTTP_RETRIES`, 3; agents.md 5.6).
    pub retries: u32,
    /// Items after which a page walk stops, incomplete (`OPS_MAX_LIST_ITEMS`, 100 000; agents.md 5.4).
    pub max_list_items: usize,
    /// Dry run (agents.md 1.5): [`VizoraApi::mutate`] reads `before` and writes the audit line but sends nothing.
    pub dry_run: bool,
    /// The run deadline: no wait or request starts past it.
    pub deadline: Instant,
}

/// Session and error counters of a run (agents.md 5.2).
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// Successful logins.
    pub logins: u32,
    /// Logouts answered 2xx.
    pub logouts_ok: u32,
    /// Logouts answered non-2xx (403 = CSRF header missing) or not sent (transport error, budget): token not revoked.
    pub logouts_failed: u32,
    /// Requests sent through the budget (logins and page requests included; logouts not).
    pub requests: u64,
}

/// The real client.
pub struct Client {
    http: reqwest::Client,
    opts: ClientOptions,
    budget: Arc<RateBudget>,
    audit: AuditLog,
    /// The session (token, cookies, login lock, organization id): this client's own, or a runtime's shared one.
    shared: Arc<SharedSession>,
    /// The first failed login of this run: later callers get the same error without a request (agents.md 5.2: a
    /// failed login ends the run at once; repeated bad logins lock the account).
    login_failure: StdMutex<Option<String>>,
    relogged: StdMutex<bool>,
    drift: StdMutex<HashSet<String>>,
    stats: StdMutex<SessionStats>,
}

/// Keys kept in the state's small projections of `before`/`after` (agents.md 5.8), besides the body's keys.
const PROJECTION_KEYS: [&str; 16] = [
    "id",
    "name",
    "nickname",
    "status",
    "isActive",
    "currentPlaylistId",
    "updatedAt",
    "expiresAt",
    "lastHeartbeat",
    "commandId",
    "devicesTargeted",
    "devicesOnline",
    "devicesQueued",
    "devicesDelivered",
    "devicesFailed",
    "itemCount",
];

/// A small projection of an entity (agents.md 5.8): the fixed `PROJECTION_KEYS` (`id`, label, `status`,
/// `updatedAt`, `devices*` counters, …) plus the `extra` keys (the fields the mutation changes); a kept playlist
/// `items` array keeps only each item's `contentId` and `order`; strings are capped at 200 characters
/// ([`crate::model::label`]). A non-object is returned as is.
pub fn project(v: &Value, extra: &[&str]) -> Value {
    match v {
        Value::Object(m) => {
            let mut o = Map::new();
            for (k, x) in m {
                if PROJECTION_KEYS.contains(&k.as_str()) || extra.contains(&k.as_str()) {
                    let x = if k == "items" {
                        // Playlist items: ids and order only.
                        Value::Array(
                            x.as_array()
                                .map(|a| {
                                    a.iter()
                                        .map(|i| json!({"contentId": i.get("contentId"), "order": i.get("order")}))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        )
                    } else if let Value::String(t) = x {
                        // API text (a 2 MB name) is capped like every label (agents.md 2.2, 5.8).
                        Value::String(crate::model::label(t).into_owned())
                    } else {
                        x.clone()
                    };
                    o.insert(k.clone(), x);
                }
            }
            Value::Object(o)
        }
        other => other.clone(),
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let mut best: Option<Duration> = None;
    for (name, val) in headers {
        let n = name.as_str().to_ascii_lowercase();
        if n != "retry-after" && !n.starts_with("retry-after-") {
            continue;
        }
        let Ok(s) = val.to_str() else { continue };
        let d = if let Ok(secs) = s.trim().parse::<f64>() {
            Some(Duration::from_secs_f64(secs.max(0.0)))
        } else if let Ok(t) = httpdate::parse_http_date(s.trim()) {
            Some(
                t.duration_since(std::time::SystemTime::now())
                    .unwrap_or_default(),
            )
        } else {
            None
        };
        if let Some(d) = d {
            best = Some(best.map_or(d, |b| b.max(d)));
        }
    }
    best.map(|d| d.max(Duration::from_secs(1)))
}

struct RawResponse {
    status: StatusCode,
    body: String,
    headers: reqwest::header::HeaderMap,
}

impl Client {
    /// Builds a client with its own session and HTTP client. Errors only if the HTTP client cannot be built.
    pub fn new(
        opts: ClientOptions,
        budget: Arc<RateBudget>,
        audit: AuditLog,
    ) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!(
                "vizora-ops/{} ({})",
                env!("CARGO_PKG_VERSION"),
                opts.agent
            ))
            .build()?;
        Ok(Client::with_session(
            opts,
            budget,
            audit,
            http,
            Arc::new(SharedSession::new()),
        ))
    }

    /// A client for one run over a runtime's HTTP client and shared session (design/README.md §3 "runtime"): the run's
    /// agent, run id, dry run and deadline are this client's; the login is the session's. `http` must not follow
    /// redirects (5.1); the `User-Agent` naming the agent is set on each request.
    pub fn with_session(
        opts: ClientOptions,
        budget: Arc<RateBudget>,
        audit: AuditLog,
        http: reqwest::Client,
        shared: Arc<SharedSession>,
    ) -> Client {
        Client {
            http,
            opts,
            budget,
            audit,
            shared,
            login_failure: StdMutex::new(None),
            relogged: StdMutex::new(false),
            drift: StdMutex::new(HashSet::new()),
            stats: StdMutex::new(SessionStats::default()),
        }
    }

    /// A budget from configuration: file backend at `<state dir>/ops-ratelimit.json` or memory.
    pub fn budget_from_config(cfg: &crate::config::Config) -> Arc<RateBudget> {
        let l = Limits {
            per_second: cfg.api.rate_per_second,
            per_minute: cfg.api.rate_per_minute,
            per_hour: cfg.api.rate_per_hour,
            logins_per_minute: cfg.api.logins_per_minute,
        };
        Arc::new(match cfg.api.rate_backend {
            crate::config::RateLimitBackend::File => {
                RateBudget::file(l, cfg.state_dir().join("ops-ratelimit.json"))
            }
            _ => RateBudget::memory(l),
        })
    }

    /// Session counters so far.
    pub fn stats(&self) -> SessionStats {
        self.stats.lock().expect("stats").clone()
    }

    fn remaining(&self) -> Duration {
        self.opts.deadline.saturating_duration_since(Instant::now())
    }

    /// `vizora-ops/<version> (<agent>)` (agents.md 5.1), per request because a runtime's HTTP client serves every agent.
    fn user_agent(&self) -> String {
        format!(
            "vizora-ops/{} ({})",
            env!("CARGO_PKG_VERSION"),
            self.opts.agent
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.opts.base_url.trim_end_matches('/'), path)
    }

    /// One HTTP exchange through the budget (no retries). `auth`: send the bearer token.
    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        kind: Admission,
        timeout: Duration,
    ) -> Result<RawResponse, ApiError> {
        self.budget
            .acquire(kind, self.opts.deadline)
            .await
            .map_err(|e| match e {
                budget::BudgetError::Exhausted => ApiError::BudgetExhausted {
                    method: method.to_string(),
                    path: path.to_string(),
                },
                budget::BudgetError::Lock(message) => ApiError::BudgetLock {
                    method: method.to_string(),
                    path: path.to_string(),
                    message,
                },
            })?;
        self.stats.lock().expect("stats").requests += 1;
        let timeout = timeout.min(self.remaining().max(Duration::from_millis(1)));
        let mut rb = self
            .http
            .request(method.clone(), self.url(path))
            .header("Accept", "application/json")
            .header("User-Agent", self.user_agent())
            .timeout(timeout);
        if let Some(t) = token {
            rb = rb.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let tr = |e: reqwest::Error| ApiError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            cause: if e.is_timeout() {
                format!("timeout after {} ms", timeout.as_millis())
            } else {
                e.to_string()
            },
        };
        let resp = rb.send().await.map_err(tr)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.map_err(tr)?;
        Ok(RawResponse {
            status,
            body,
            headers,
        })
    }

    fn classify(&self, method: &Method, path: &str, r: &RawResponse) -> ApiError {
        let m = method.to_string();
        let p = path.to_string();
        let message = crate::redact::redact_str(&error_message(&r.body));
        let s = r.status.as_u16();
        match s {
            401 => ApiError::Unauthorized {
                method: m,
                path: p,
                message,
            },
            403 => ApiError::Forbidden {
                method: m,
                path: p,
                message,
            },
            404 if message.starts_with("Cannot ") => ApiError::RouteMissing {
                status: 404,
                method: m,
                path: p,
                message,
            },
            405 => ApiError::RouteMissing {
                status: 405,
                method: m,
                path: p,
                message,
            },
            404 => ApiError::NotFound {
                method: m,
                path: p,
                message,
            },
            429 => ApiError::RateLimited {
                method: m,
                path: p,
                message,
            },
            500..=599 => ApiError::Server {
                status: s,
                method: m,
                path: p,
                message,
            },
            _ => ApiError::Rejected {
                status: s,
                method: m,
                path: p,
                message,
            },
        }
    }

    /// Logs in (agents.md 5.2). Retried only after a 429. A login that failed once in this client fails again at once
    /// with the same message and sends nothing, so concurrent list walks of one run never repeat a bad login.
    pub async fn login(&self) -> Result<(), ApiError> {
        let (Some(email), Some(password)) = (&self.opts.email, &self.opts.password) else {
            return Err(ApiError::NoCredentials);
        };
        if let Some(first) = self.login_failure.lock().expect("login failure").clone() {
            return Err(ApiError::LoginFailed(format!(
                "{first} (not retried in this run)"
            )));
        }
        let r = self.login_attempt(email, password).await;
        if let Err(e) = &r {
            let msg = match e {
                ApiError::LoginFailed(m) => m.clone(),
                other => other.to_string(),
            };
            *self.login_failure.lock().expect("login failure") = Some(msg);
        }
        r
    }

    async fn login_attempt(&self, email: &str, password: &str) -> Result<(), ApiError> {
        let path = "/api/v1/auth/login";
        let body = json!({"email": email, "password": password});
        let mut tries = 0;
        let r = loop {
            let r = self
                .send_once(
                    &Method::POST,
                    path,
                    Some(&body),
                    None,
                    Admission::Login,
                    self.opts.request_timeout,
                )
                .await
                .map_err(|e| ApiError::LoginFailed(e.to_string()))?;
            if r.status.as_u16() == 429 && tries < self.opts.retries {
                let wait = retry_after(&r.headers).unwrap_or(Duration::from_secs(1));
                self.budget.block_for(wait);
                if wait <= Duration::from_secs(60) && wait < self.remaining() {
                    tries += 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            break r;
        };
        if !r.status.is_success() {
            return Err(ApiError::LoginFailed(
                self.classify(&Method::POST, path, &r).to_string(),
            ));
        }
        let cookies: Vec<(String, String)> = r
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let data = serde_json::from_str::<Value>(&r.body)
            .map(unwrap_envelope)
            .map_err(|e| ApiError::LoginFailed(format!("unparseable login response: {e}")))?;
        if data.get("mfaRequired").and_then(Value::as_bool) == Some(true)
            || data.get("mfaEnrollmentRequired").and_then(Value::as_bool) == Some(true)
        {
            return Err(ApiError::LoginFailed(
                "the ops account requires MFA; use an account without MFA in an organization that does not require it"
                    .into(),
            ));
        }
        let token = ["access_token", "accessToken", "token"]
            .iter()
            .find_map(|k| data.get(*k).and_then(Value::as_str))
            .ok_or_else(|| ApiError::LoginFailed("login response carries no token".into()))?
            .to_string();
        crate::redact::register_secret(&token);
        if let Some(org) = data.pointer("/user/organizationId").and_then(Value::as_str) {
            *self.shared.org_id.lock().expect("org") = Some(org.to_string());
        }
        let csrf = cookies
            .iter()
            .find(|(k, _)| k == "vizora_csrf_token")
            .map(|(_, v)| v.clone());
        for (_, v) in &cookies {
            crate::redact::register_secret(v);
        }
        *self.shared.session.lock().await = Some(Session {
            token,
            cookies,
            csrf,
        });
        self.stats.lock().expect("stats").logins += 1;
        Ok(())
    }

    async fn token(&self) -> Result<String, ApiError> {
        let _one_login = self.shared.login_lock.lock().await;
        {
            let g = self.shared.session.lock().await;
            if let Some(s) = g.as_ref() {
                return Ok(s.token.clone());
            }
        }
        self.login().await?;
        Ok(self
            .shared
            .session
            .lock()
            .await
            .as_ref()
            .map(|s| s.token.clone())
            .unwrap_or_default())
    }

    /// Logs out the current session, if any (agents.md 5.2): the session is forgotten first; cookies and the CSRF
    /// header are presented. Failures are logged and counted, never raised.
    pub async fn logout(&self) {
        let Some(s) = self.shared.session.lock().await.take() else {
            return;
        };
        self.logout_session(s).await;
    }

    async fn logout_session(&self, s: Session) {
        let path = "/api/v1/auth/logout";
        let res: Result<StatusCode, String> = async {
            self.budget
                .acquire(
                    Admission::Request,
                    self.opts
                        .deadline
                        .max(Instant::now() + self.opts.notify_timeout),
                )
                .await
                .map_err(|e| e.to_string())?;
            let mut rb = self
                .http
                .post(self.url(path))
                .timeout(self.opts.notify_timeout)
                .header("Accept", "application/json")
                .header("User-Agent", self.user_agent())
                .header("Authorization", format!("Bearer {}", s.token));
            if !s.cookies.is_empty() {
                rb = rb.header(
                    "Cookie",
                    s.cookies
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
            if let Some(c) = &s.csrf {
                rb = rb.header("X-CSRF-Token", c);
            }
            let r = rb.send().await.map_err(|e| e.to_string())?;
            Ok(r.status())
        }
        .await;
        let mut st = self.stats.lock().expect("stats");
        match res {
            Ok(code) if code.is_success() => st.logouts_ok += 1,
            Ok(code) => {
                st.logouts_failed += 1;
                crate::logging::error(
                    "api-client",
                    format!("logout answered {code}: refresh token not revoked"),
                );
            }
            Err(e) => {
                st.logouts_failed += 1;
                crate::logging::error(
                    "api-client",
                    format!("logout failed ({e}): refresh token not revoked"),
                );
            }
        }
    }

    /// Logs out and prints `released <n> session(s)` or `ERROR: <failed>/<n> session release(s) failed`.
    pub async fn finish(&self) {
        self.logout().await;
        let st = self.stats();
        let n = st.logouts_ok + st.logouts_failed;
        if n == 0 {
            return;
        }
        if st.logouts_failed == 0 {
            crate::logging::info("api-client", format!("released {n} session(s)"));
        } else {
            crate::logging::error(
                "api-client",
                format!("{}/{n} session release(s) failed", st.logouts_failed),
            );
        }
    }

    /// An authenticated request with the retry policy of agents.md 5.6 and the 401 rule of 5.2.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Value, ApiError> {
        self.request_with_status(method, path, body, idempotent)
            .await
            .map(|(_, v)| v)
    }

    /// As `request`, also returning the HTTP status of the successful answer.
    async fn request_with_status(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<(u16, Value), ApiError> {
        let mut attempt: u32 = 0;
        loop {
            let token = self.token().await?;
            let r = self
                .send_once(
                    &method,
                    path,
                    body,
                    Some(&token),
                    Admission::Request,
                    self.opts.request_timeout,
                )
                .await;
            let err = match r {
                Ok(r) if r.status.is_success() => {
                    let code = r.status.as_u16();
                    return match serde_json::from_str::<Value>(&r.body) {
                        Ok(v) => Ok((code, unwrap_envelope(v))),
                        Err(_) if r.body.trim().is_empty() => Ok((code, Value::Null)),
                        Err(e) => Err(ApiError::BadShape {
                            status: r.status.as_u16(),
                            method: method.to_string(),
                            path: path.to_string(),
                            message: format!("malformed JSON: {e}"),
                        }),
                    };
                }
                Ok(r) if r.status.as_u16() == 401 => {
                    let e = self.classify(&method, path, &r);
                    let _one_login = self.shared.login_lock.lock().await;
                    // Another task may already have replaced the rejected session: just retry with the new one.
                    let current = self
                        .shared
                        .session
                        .lock()
                        .await
                        .as_ref()
                        .map(|s| s.token.clone());
                    if current.as_deref().is_some_and(|t| t != token) {
                        continue;
                    }
                    let already = {
                        let mut g = self.relogged.lock().expect("relogged");
                        let a = *g;
                        *g = true;
                        a
                    };
                    if already {
                        return Err(ApiError::AuthLost(e.to_string()));
                    }
                    crate::logging::warn("api-client", format!("{e}; logging in again"));
                    if let Some(old) = self.shared.session.lock().await.take() {
                        self.logout_session(old).await;
                    }
                    self.login().await?;
                    continue;
                }
                Ok(r) if r.status.as_u16() == 429 => {
                    let e = self.classify(&method, path, &r);
                    let wait = retry_after(&r.headers).unwrap_or(Duration::from_secs(1));
                    self.budget.block_for(wait);
                    if attempt < self.opts.retries
                        && wait <= Duration::from_secs(60)
                        && wait < self.remaining()
                    {
                        attempt += 1;
                        // Says what for and until when, once per wait (concurrent walks share it; issue 9).
                        let until = chrono::Utc::now().timestamp_millis() + wait.as_millis() as i64;
                        self.budget.announce_wait(until, || {
                            format!(
                                "{e}; waiting {} s, until {}, for the API's Retry-After before retrying",
                                wait.as_secs(),
                                budget::utc_hms(until)
                            )
                        });
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(e);
                }
                Ok(r) => {
                    let e = self.classify(&method, path, &r);
                    if !(idempotent && r.status.is_server_error()) {
                        return Err(e);
                    }
                    e
                }
                Err(e @ ApiError::Transport { .. }) if idempotent => e,
                Err(e) => return Err(e),
            };
            if attempt >= self.opts.retries {
                return Err(err);
            }
            attempt += 1;
            let wait = Duration::from_secs_f64(
                rand::rng().random_range(0.5..1.0) * 2f64.powi(attempt as i32 - 1),
            );
            if wait >= self.remaining() {
                return Err(err);
            }
            crate::logging::warn(
                "api-client",
                format!("{err}; retry {attempt} in {} ms", wait.as_millis()),
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn walk_once(&self, path: &str, sink: &mut dyn ItemSink) -> Result<ListResult, ApiError> {
        use std::hash::BuildHasher;
        let mut out = ListResult::default();
        // Ids seen, as 64-bit hashes (8 bytes per item instead of a string): a collision makes the walk drop an item
        // as a duplicate, so the unique count falls short of `meta.total` and the walk is incomplete, which is the
        // safe direction (no archive or deactivation on incomplete data).
        let hasher = std::collections::hash_map::RandomState::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut totals: HashSet<u64> = HashSet::new();
        let mut has_total = true;
        let mut without_id: usize = 0;
        let mut page: u64 = 1;
        let sep = if path.contains('?') { '&' } else { '?' };
        loop {
            let p = format!("{path}{sep}page={page}&limit=100");
            let payload = match self.request(Method::GET, &p, None, true).await {
                Ok(v) => v,
                Err(e) if page == 1 => return Err(e),
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    out.reason = Some(format!("page {page} failed: {e}"));
                    return Ok(out);
                }
            };
            out.pages += 1;
            let (arr, meta) = match payload {
                Value::Array(a) => {
                    has_total = false;
                    (a, None)
                }
                Value::Object(mut m) => {
                    let key = if matches!(m.get("data"), Some(Value::Array(_))) {
                        "data"
                    } else {
                        "items"
                    };
                    match m.remove(key) {
                        Some(Value::Array(a)) => (
                            a,
                            m.remove("meta")
                                .or_else(|| m.remove("total").map(|t| json!({"total": t}))),
                        ),
                        _ => {
                            return Err(ApiError::UnrecognisedListShape {
                                path: path.to_string(),
                                detail: format!(
                                    "page {page}: object without a data/items array (keys: {})",
                                    m.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            });
                        }
                    }
                }
                other => {
                    return Err(ApiError::UnrecognisedListShape {
                        path: path.to_string(),
                        detail: format!("page {page}: {} instead of a list", json_kind(&other)),
                    });
                }
            };
            let total = meta
                .as_ref()
                .and_then(|m| m.get("total"))
                .and_then(Value::as_u64);
            let total_pages = meta
                .as_ref()
                .and_then(|m| m.get("totalPages"))
                .and_then(Value::as_u64);
            match total {
                Some(t) => {
                    totals.insert(t);
                    out.total = Some(t);
                }
                None => has_total = false,
            }
            let n = arr.len();
            for item in arr {
                if out.collected >= self.opts.max_list_items {
                    break;
                }
                // Only a non-empty string or a number is an id; an item without one (or `null`, `""`, an object…)
                // is kept but can never prove completeness (agents.md 5.4 step 4, 9 #18).
                let id_hash = match item.get("id") {
                    Some(Value::String(s)) if !s.trim().is_empty() => {
                        Some(hasher.hash_one(s.as_str()))
                    }
                    Some(Value::Number(n)) => Some(hasher.hash_one(n.to_string())),
                    _ => None,
                };
                match id_hash {
                    Some(h) => {
                        if seen.insert(h) {
                            out.collected += 1;
                            sink.item(item);
                        }
                    }
                    None => {
                        without_id += 1;
                        out.collected += 1;
                        sink.item(item);
                    }
                }
            }
            if out.collected >= self.opts.max_list_items {
                out.reason = Some(format!(
                    "stopped at OPS_MAX_LIST_ITEMS ({})",
                    self.opts.max_list_items
                ));
                return Ok(out);
            }
            if n < 100 || total_pages.is_some_and(|tp| page >= tp) {
                break;
            }
            page += 1;
        }
        if without_id > 0 {
            out.reason = Some(format!(
                "{without_id} item(s) without an id; completeness cannot be proven"
            ));
        } else if !has_total {
            out.reason = Some("the list reports no total; completeness cannot be proven".into());
        } else if totals.len() > 1 {
            out.reason = Some(format!("pages reported different totals ({totals:?})"));
        } else if out.total != Some(out.collected as u64) {
            out.reason = Some(format!(
                "collected {} unique items but the API reports {}",
                out.collected,
                out.total.unwrap_or(0)
            ));
        } else {
            out.complete = true;
        }
        Ok(out)
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[async_trait]
impl VizoraApi for Client {
    async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.request(Method::GET, path, None, true).await
    }

    async fn walk(&self, path: &str) -> Result<ListResult, ApiError> {
        let mut items: Vec<Value> = Vec::new();
        let mut r = self.walk_into(path, &mut items).await?;
        r.items = items;
        Ok(r)
    }

    async fn walk_into(&self, path: &str, sink: &mut dyn ItemSink) -> Result<ListResult, ApiError> {
        let first = self.walk_once(path, sink).await?;
        if first
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("different totals"))
        {
            crate::logging::warn(
                "api-client",
                format!("{path}: totals changed during the walk; walking once more"),
            );
            sink.restart();
            return self.walk_once(path, sink).await;
        }
        Ok(first)
    }

    async fn mutate(&self, req: MutationRequest) -> MutationOutcome {
        let none = |status| MutationOutcome {
            status,
            before: None,
            audit_id: None,
            action: None,
        };
        if self.drift.lock().expect("drift").contains(&req.route_slug) {
            return none(MutationStatus::SkippedDrift);
        }
        let started = chrono::Utc::now();
        let before = match self.get(&req.before_path).await {
            Ok(v) => v,
            Err(ApiError::NotFound { .. }) => return none(MutationStatus::Gone),
            Err(e) => return none(MutationStatus::PreReadFailed(e)),
        };
        if let Some(p) = &req.precondition
            && let Err(evidence) = p.check(&before)
        {
            return MutationOutcome {
                status: MutationStatus::Unneeded(evidence),
                before: Some(before),
                audit_id: None,
                action: None,
            };
        }
        // Absence from a list proves nothing (a list can lie consistently); a direct 404 does (agents.md 6.0).
        for a in req.precondition.iter().flat_map(|p| p.absences()) {
            match self.get(&a.path).await {
                Err(ApiError::NotFound { .. }) => {}
                Ok(_) => {
                    return MutationOutcome {
                        status: MutationStatus::Unneeded(format!(
                            "a direct read (GET {}) shows {} exists although its list omits it; nothing to write",
                            a.path, a.what
                        )),
                        before: Some(before),
                        audit_id: None,
                        action: None,
                    };
                }
                Err(e) => {
                    return MutationOutcome {
                        status: MutationStatus::PreReadFailed(e),
                        before: Some(before),
                        audit_id: None,
                        action: None,
                    };
                }
            }
        }
        let body_keys: Vec<&str> = req
            .body
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut line = MutationLine::new(
            &self.opts.run_id,
            &self.opts.agent,
            &req.action,
            req.method.as_str(),
            &req.target,
            &req.target_id,
            started,
            before.clone(),
            self.opts.dry_run,
        );
        line.endpoint = Some(req.path.clone());
        line.request = Some(req.body.clone());
        if self.opts.dry_run {
            if let Err(e) = self.audit.append(&line) {
                crate::logging::error("api-client", format!("audit append failed: {e}"));
            }
            return MutationOutcome {
                status: MutationStatus::DryRun,
                before: Some(before),
                audit_id: Some(line.id),
                action: None,
            };
        }
        let t0 = Instant::now();
        let res = self
            .request(
                req.method.clone(),
                &req.path,
                Some(&req.body),
                req.idempotent,
            )
            .await;
        line.duration_ms = Some(t0.elapsed().as_millis() as u64);
        let (status, after, error, http) = match res {
            Ok(v) => (MutationStatus::Done(v.clone()), Some(v), None, Some(200)),
            Err(ApiError::BadShape { status, .. }) => {
                crate::logging::warn(
                    "api-client",
                    format!(
                        "{} {}: success with an unparseable body",
                        req.method, req.path
                    ),
                );
                (
                    MutationStatus::Done(Value::Null),
                    Some(Value::Null),
                    None,
                    Some(status),
                )
            }
            Err(e) => {
                if matches!(e, ApiError::RouteMissing { .. }) {
                    self.drift
                        .lock()
                        .expect("drift")
                        .insert(req.route_slug.clone());
                }
                let s = e.status();
                (
                    MutationStatus::Failed(e.clone()),
                    None,
                    Some(e.to_string()),
                    s,
                )
            }
        };
        line.success = error.is_none();
        line.after = after.clone();
        line.error = error.clone();
        line.http_status = http;
        if let Err(e) = self.audit.append(&line) {
            crate::logging::error(
                "api-client",
                format!("audit append failed after a mutation: {e}"),
            );
        }
        let action = RemediationAction {
            agent: self.opts.agent.clone(),
            timestamp: ts(started),
            action: req.action.clone(),
            target: req.target.clone(),
            target_id: req.target_id.clone(),
            method: req.method.to_string(),
            endpoint: Some(req.path.clone()),
            before: Some(project(&before, &body_keys)),
            after: after.as_ref().map(|a| project(a, &body_keys)),
            success: error.is_none(),
            error,
            verified: None,
            run_id: Some(self.opts.run_id.clone()),
            extra: Map::new(),
        };
        MutationOutcome {
            status,
            before: Some(before),
            audit_id: Some(line.id),
            action: Some(action),
        }
    }

    async fn post_idempotent(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.request(Method::POST, path, Some(body), true).await
    }

    fn organization_id(&self) -> Option<String> {
        self.shared.org_id.lock().expect("org").clone()
    }

    fn drifted_routes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.drift.lock().expect("drift").iter().cloned().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_error_bodies_unwrap_as_the_api_sends_them() {
        assert_eq!(
            unwrap_envelope(json!({"success":true,"data":{"a":1}})),
            json!({"a":1})
        );
        assert_eq!(
            unwrap_envelope(json!({"success":true,"message":"x"})),
            json!({"success":true,"message":"x"})
        );
        assert_eq!(
            error_message(r#"{"statusCode":400,"message":["a","b"],"error":"Bad Request"}"#),
            "a; b"
        );
        assert_eq!(error_message("<html>oops</html>"), "<html>oops</html>");
    }

    #[test]
    fn retry_after_takes_the_largest_header_and_at_least_one_second() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "0".parse().unwrap());
        h.insert("retry-after-medium", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "0".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(1)));
    }
}
