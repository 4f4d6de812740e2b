//! The sandbox: a faithful local stand-in for a Vizora deployment, serving one fixture (`fixtures/README.md`).
//!
//! Three services, mirroring a Vizora host (design README §4):
//! - the API on port N (`/api/v1`, the subset of `design/vizora-api.md`: envelope, pagination, validation with the
//!   development or production error form, login/JWT/cookies/CSRF/logout, organization scoping, per-IP throttling with
//!   the production limits, the mutations, fleet commands, health and ops-status);
//! - the web page on N+1 (`/` referencing two `/_next/static/` assets);
//! - the realtime gateway on N+2 (`/api/health`, `/api/health/ready`, `/api/health/live`).
//!
//! A control API under `/__sandbox/` on the API port (JSON, no auth, never throttled, never recorded) injects faults,
//! moves time and reads every API request received (route table in `src/sandbox/control.rs`, nested beside the API in
//! the one router of `src/sandbox/router.rs`); the same effects are
//! available in process through the methods of [`Sandbox`].
//!
//! Time: at load every ISO-8601 UTC timestamp string of the fixture is shifted by `now − capturedAt`, so every age
//! is preserved. The sandbox clock is real time plus an offset (`POST /__sandbox/clock`). Displays whose heartbeat
//! was within 60 s of `capturedAt` are live: their heartbeat reads as "now" unless told to stay offline. Vizora's
//! server-side jobs (content expiry, marking displays offline) run only when asked.

mod api;
mod control;
mod index;
mod model;
mod net;
mod respond;
mod router;
mod services;
mod store;
mod throttle;
mod time;
mod validate;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use net::Gate;
use store::Store;
use throttle::Throttler;
use time::SbClock;

/// The demo tenant ("Fernhill Outdoor Ltd"), shipped inside the binary.
pub const DEMO_FIXTURE: &str = include_str!("../../fixtures/tenant-demo.json");

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// API port N (web N+1, realtime N+2). 0 picks three free consecutive ports.
    pub port: u16,
    /// Production per-IP throttling (10/s, 100/min, 1000/h, 5 logins/min). Default true.
    pub throttle: bool,
    /// Production form of validation errors (`{statusCode:400,message:"Bad Request"}`). Default false: the
    /// development form with a `message` array.
    pub production_errors: bool,
    /// Keep the heartbeat of live screens fresh. Default true.
    pub keep_live_heartbeats: bool,
    /// Address to listen on. Default 127.0.0.1.
    pub bind: IpAddr,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 0,
            throttle: true,
            production_errors: false,
            keep_live_heartbeats: true,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// One of the three simulated services. Names: `"api"`, `"web"`, `"realtime"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// The middleware API (port N).
    Api,
    /// The web front end (port N+1).
    Web,
    /// The realtime gateway (port N+2).
    Realtime,
}

impl Service {
    /// All three, in port order.
    pub const ALL: [Service; 3] = [Service::Api, Service::Web, Service::Realtime];

    /// `"api"`, `"web"` or `"realtime"`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Api => "api",
            Service::Web => "web",
            Service::Realtime => "realtime",
        }
    }

    /// Parses a service name (case-insensitive; `middleware` is accepted for `api`).
    pub fn parse(s: &str) -> Option<Service> {
        match s.trim().to_ascii_lowercase().as_str() {
            "api" | "middleware" => Some(Service::Api),
            "web" => Some(Service::Web),
            "realtime" => Some(Service::Realtime),
            _ => None,
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The state of a simulated service. Names: `"healthy"`, `"degraded"`, `"unhealthy"`, `"down"`, `"assets_broken"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Everything answers normally.
    Healthy,
    /// API readiness 200 with `status:"degraded"`; realtime `/api/health` reports `degraded` (readiness still 200).
    Degraded,
    /// A dependency is down: readiness 503 with a JSON body (api: un-enveloped `{status:"unhealthy",…}`, realtime:
    /// `{status:"not ready",ready:false}`), liveness still 200 JSON; the web page answers 500. API data routes keep
    /// working (the dependency is object storage, not the database).
    Unhealthy,
    /// The process does not answer: web and realtime stop listening (connection refused) until restarted; the API
    /// port (which also hosts the control API) cuts every API connection without a response.
    Down,
    /// Web only: the page answers but its static assets are 404 (other services treat it as healthy).
    AssetsBroken,
}

impl ServiceState {
    /// Parses a state name (case-insensitive; `-`, `_` and spaces ignored: `assets-broken`, `assetsBroken`).
    pub fn parse(s: &str) -> Option<ServiceState> {
        let k: String = s
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect::<String>()
            .to_ascii_lowercase();
        match k.as_str() {
            "healthy" | "ok" | "up" => Some(ServiceState::Healthy),
            "degraded" => Some(ServiceState::Degraded),
            "unhealthy" | "unready" => Some(ServiceState::Unhealthy),
            "down" | "stopped" => Some(ServiceState::Down),
            "assetsbroken" | "brokenassets" => Some(ServiceState::AssetsBroken),
            _ => None,
        }
    }
}

/// One API request received by the sandbox (control routes are not recorded). JSON field names are the Rust names
/// (snake_case).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// 1, 2, 3… in arrival order.
    pub seq: u64,
    /// `GET`, `POST`, `PATCH`…
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string (without `?`, empty when none), secret parameters masked (agents.md 5.9).
    pub query: String,
    /// The request body: its JSON, or a JSON string holding the raw text when it is not JSON; `None` when empty.
    /// Redacted like every log (agents.md 5.9, `crate::redact`): the login's `password` reads `"[REDACTED]"`.
    pub body: Option<Value>,
    /// The status answered (0 when the connection was cut without a response).
    pub status: u16,
    /// Sandbox time of arrival, ISO-8601.
    pub at: String,
    /// A `Cookie` header was sent.
    pub has_cookie: bool,
    /// An `X-CSRF-Token` header was sent.
    pub csrf_header: bool,
    /// An `Authorization: Bearer …` header was sent.
    #[serde(default)]
    pub has_bearer: bool,
}

/// A scripted response for the next `count` matching requests (`POST /__sandbox/faults`, JSON in camelCase).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpec {
    /// Method to match (any when absent), case-insensitive.
    #[serde(default)]
    pub method: Option<String>,
    /// Exact path, or a prefix ending in `*` (query string ignored).
    pub path: String,
    /// Status to answer; absent with `delay_ms` = delay, then the normal response.
    #[serde(default)]
    pub status: Option<u16>,
    /// JSON body (a JSON string is sent as plain text). Default: `{statusCode, message:<reason phrase>}`.
    #[serde(default)]
    pub body: Option<Value>,
    /// Body sent byte for byte with `Content-Type: application/json` (e.g. malformed JSON); wins over `body`.
    #[serde(default)]
    pub raw_body: Option<String>,
    /// Delay before answering, ms.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// `Retry-After` header value (seconds, or an HTTP date string).
    #[serde(default)]
    pub retry_after: Option<Value>,
    /// How many matching requests get it (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Which service's requests it applies to (default `api`).
    #[serde(default)]
    pub service: Option<Service>,
}

fn one() -> u32 {
    1
}

/// How a list route wraps its page (`POST /__sandbox/list-shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListShape {
    /// `{success, data:{data:[…], meta}}`.
    Normal,
    /// `{success, data:{items:[…], meta}}`.
    Items,
    /// `{success, data:[…]}` (no total).
    Bare,
    /// `{success, data:{results:[…], pagination:{…}}}`: neither `data` nor `items`.
    Unknown,
}

/// Login/logout counters (`GET /__sandbox/sessions`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionStats {
    /// Successful logins.
    pub logins: u64,
    /// Failed logins (401/403).
    pub failed_logins: u64,
    /// Successful logouts.
    pub logouts: u64,
    /// Logouts that also revoked the refresh token (refresh cookie presented, CSRF passed).
    pub refresh_revoked: u64,
    /// Refresh tokens issued and never revoked (leaked rows, vizora-api.md §1.4).
    pub refresh_outstanding: u64,
}

/// State and restart count of one service (`GET /__sandbox/services`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceStatus {
    /// Current state.
    pub state: ServiceState,
    /// Restarts so far.
    pub restarts: u32,
    /// Its URL.
    pub url: String,
}

pub(crate) struct SvcSlot {
    pub state: ServiceState,
    pub restarts: u32,
    pub started: std::time::Instant,
    pub addr: SocketAddr,
    pub gate: Arc<Gate>,
    pub task: Option<tokio::task::JoinHandle<()>>,
    pub rebinding: bool,
}

pub(crate) struct FaultEntry {
    pub spec: FaultSpec,
    pub remaining: u32,
}

pub(crate) struct RefreshRec {
    pub revoked: bool,
    pub user_id: String,
}

#[derive(Default)]
pub(crate) struct AuthState {
    pub revoked: HashSet<String>,
    pub refresh: HashMap<String, RefreshRec>,
    pub stats: SessionStats,
    pub failures: HashMap<String, VecDeque<i64>>,
}

#[derive(Default)]
pub(crate) struct FleetState {
    pub window: VecDeque<i64>,
    pub reconnect_share: f64,
    pub reload_offline_seen: u64,
    pub commands: u64,
}

const LOG_CAP: usize = 1_000_000;

/// Everything the three servers share.
pub(crate) struct Shared {
    pub clock: SbClock,
    pub store: Mutex<Store>,
    pub auth: Mutex<AuthState>,
    pub throttle: Mutex<Throttler>,
    pub throttle_on: AtomicBool,
    pub production_errors: AtomicBool,
    pub faults: Mutex<Vec<FaultEntry>>,
    pub shapes: Mutex<HashMap<String, ListShape>>,
    /// List path → the number of items its list answers (`POST /__sandbox/list-truncate`).
    pub truncations: Mutex<HashMap<String, usize>>,
    pub log: Mutex<VecDeque<RecordedRequest>>,
    pub seq: AtomicU64,
    pub services: Mutex<Vec<SvcSlot>>,
    pub ops_status: Mutex<Option<(Value, i64)>>,
    pub fleet: Mutex<FleetState>,
    pub jwt_secret: String,
    pub global: Arc<Gate>,
    pub asset_js: String,
    pub asset_css: String,
    pub rt: tokio::runtime::Handle,
    pub me: Mutex<std::sync::Weak<Shared>>,
    /// Builds the app of a service (`router::app`); `services` calls it to listen, so it needs no import of the
    /// router (which nests the control API, which drives `services`).
    pub app: fn(&Arc<Shared>, Service) -> axum::Router,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }
    pub(crate) fn state(&self, s: Service) -> ServiceState {
        lock(&self.services)[s.idx()].state
    }
    pub(crate) fn production(&self) -> bool {
        self.production_errors.load(Ordering::Relaxed)
    }
    pub(crate) fn record(&self, r: RecordedRequest) {
        let mut l = lock(&self.log);
        if l.len() >= LOG_CAP {
            l.pop_front();
        }
        l.push_back(r);
    }
    /// Takes the first live fault matching (service, method, path), decrementing its count.
    pub(crate) fn take_fault(&self, svc: Service, method: &str, path: &str) -> Option<FaultSpec> {
        let mut f = lock(&self.faults);
        let pos = f.iter().position(|e| {
            let s = &e.spec;
            e.remaining > 0
                && s.service.unwrap_or(Service::Api) == svc
                && s.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && match s.path.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => s.path == path,
                }
        })?;
        f[pos].remaining -= 1;
        let spec = f[pos].spec.clone();
        if f[pos].remaining == 0 {
            f.remove(pos);
        }
        Some(spec)
    }
}

/// A running sandbox. Dropping it without [`Sandbox::shutdown`] leaves the servers running until the runtime ends.
pub struct Sandbox {
    /// `http://127.0.0.1:N`.
    pub api_url: String,
    /// `http://127.0.0.1:N+1`.
    pub web_url: String,
    /// `http://127.0.0.1:N+2`.
    pub realtime_url: String,
    /// `api_url + "/__sandbox"`.
    pub control_url: String,
    shared: Arc<Shared>,
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bind_std(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Binds three consecutive ports starting at `port` (0: a free run of three, outside the ephemeral range).
fn bind_three(ip: IpAddr, port: u16) -> anyhow::Result<[std::net::TcpListener; 3]> {
    if port != 0 {
        let n = port;
        anyhow::ensure!(
            n <= u16::MAX - 2,
            "port {n} too high: the sandbox needs N, N+1 and N+2"
        );
        let a =
            bind_std(SocketAddr::new(ip, n)).with_context(|| format!("binding API port {n}"))?;
        let b = bind_std(SocketAddr::new(ip, n + 1))
            .with_context(|| format!("binding web port {}", n + 1))?;
        let c = bind_std(SocketAddr::new(ip, n + 2))
            .with_context(|| format!("binding realtime port {}", n + 2))?;
        return Ok([a, b, c]);
    }
    use rand::Rng;
    for _ in 0..200 {
        let n: u16 = rand::rng().random_range(20_000..32_000);
        let Ok(a) = bind_std(SocketAddr::new(ip, n)) else {
            continue;
        };
        let Ok(b) = bind_std(SocketAddr::new(ip, n + 1)) else {
            continue;
        };
        let Ok(c) = bind_std(SocketAddr::new(ip, n + 2)) else {
            continue;
        };
        return Ok([a, b, c]);
    }
    anyhow::bail!("no three free consecutive ports found")
}

impl Sandbox {
    /// Parses `fixture_json`, rebases its times and serves it. Large fixtures are parsed off the async threads.
    ///
    /// Errors: invalid fixture JSON or format, ports not bindable.
    pub async fn start(fixture_json: &str, opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let keep = opts.keep_live_heartbeats;
        let fx = if fixture_json.len() > 4 << 20 {
            let s = fixture_json.to_string();
            tokio::task::spawn_blocking(move || model::load_str(&s, keep, time::real_now_ms))
                .await??
        } else {
            model::load_str(fixture_json, keep, time::real_now_ms)?
        };
        Self::serve(Store::new(fx), opts).await
    }

    /// Like [`Sandbox::start`] with a fixture file, streamed (the benchmark tenant is ~690 MB).
    ///
    /// Errors: unreadable file, invalid fixture, ports not bindable.
    pub async fn start_from_file(path: &Path, opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let keep = opts.keep_live_heartbeats;
        let p = path.to_path_buf();
        let fx = tokio::task::spawn_blocking(move || -> anyhow::Result<model::Fixture> {
            model::load_file(&p, keep, time::real_now_ms)
                .with_context(|| format!("loading fixture {}", p.display()))
        })
        .await??;
        Self::serve(Store::new(fx), opts).await
    }

    async fn serve(store: Store, opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let [a, w, r] = bind_three(opts.bind, opts.port)?;
        let addrs = [a.local_addr()?, w.local_addr()?, r.local_addr()?];
        let initial: Vec<ServiceState> = Service::ALL
            .iter()
            .map(|s| {
                store
                    .services_initial
                    .get(s.name())
                    .and_then(Value::as_str)
                    .and_then(ServiceState::parse)
                    .unwrap_or(ServiceState::Healthy)
            })
            .collect();
        let global = Arc::new(Gate::default());
        let now = std::time::Instant::now();
        let slots = (0..3)
            .map(|i| SvcSlot {
                state: ServiceState::Healthy,
                restarts: 0,
                started: now,
                addr: addrs[i],
                gate: Arc::new(Gate::default()),
                task: None,
                rebinding: false,
            })
            .collect();
        let hash = random_hex(8);
        let shared = Arc::new(Shared {
            clock: SbClock::default(),
            store: Mutex::new(store),
            auth: Mutex::new(AuthState::default()),
            throttle: Mutex::new(Throttler::default()),
            throttle_on: AtomicBool::new(opts.throttle),
            production_errors: AtomicBool::new(opts.production_errors),
            faults: Mutex::new(Vec::new()),
            shapes: Mutex::new(HashMap::new()),
            truncations: Mutex::new(HashMap::new()),
            log: Mutex::new(VecDeque::new()),
            seq: AtomicU64::new(0),
            services: Mutex::new(slots),
            ops_status: Mutex::new(None),
            fleet: Mutex::new(FleetState::default()),
            jwt_secret: format!("vizora-sandbox-{}", random_hex(24)),
            global,
            asset_js: format!("/_next/static/chunks/main-{hash}.js"),
            asset_css: format!("/_next/static/css/{}.css", random_hex(8)),
            rt: tokio::runtime::Handle::current(),
            me: Mutex::new(std::sync::Weak::new()),
            app: router::app,
        });
        *lock(&shared.me) = Arc::downgrade(&shared);
        let [a, w, r] = [a, w, r];
        services::spawn(&shared, Service::Api, a)?;
        services::spawn(&shared, Service::Web, w)?;
        services::spawn(&shared, Service::Realtime, r)?;
        for (i, st) in initial.into_iter().enumerate() {
            if st != ServiceState::Healthy {
                services::set_state(&shared, Service::ALL[i], st);
            }
        }
        let url = |a: SocketAddr| {
            let host = if a.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                a.ip().to_string()
            };
            if a.is_ipv6() {
                format!("http://[{host}]:{}", a.port())
            } else {
                format!("http://{host}:{}", a.port())
            }
        };
        let api_url = url(addrs[0]);
        Ok(Sandbox {
            control_url: format!("{api_url}/__sandbox"),
            api_url,
            web_url: url(addrs[1]),
            realtime_url: url(addrs[2]),
            shared,
        })
    }

    /// Stops every server and cuts every open connection.
    pub async fn shutdown(self) {
        self.shared.global.closed.store(true, Ordering::Relaxed);
        let tasks: Vec<_> = lock(&self.shared.services)
            .iter_mut()
            .filter_map(|s| s.task.take())
            .collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    /// Sets a service's state (same as `POST /__sandbox/services/{svc}`).
    pub fn set_service(&self, svc: Service, state: ServiceState) {
        services::set_state(&self.shared, svc, state);
    }

    /// Restarts a service: back to `Healthy` (listening again), restart count + 1.
    pub fn restart_service(&self, svc: Service) {
        services::restart(&self.shared, svc);
    }

    /// State, restart count and URL of every service.
    pub fn services(&self) -> HashMap<Service, ServiceStatus> {
        services::statuses(&self.shared)
    }

    /// Every recorded API request, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log).iter().cloned().collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Adds a fault (same as `POST /__sandbox/faults`).
    pub fn add_fault(&self, spec: FaultSpec) {
        let remaining = spec.count.max(1);
        lock(&self.shared.faults).push(FaultEntry { spec, remaining });
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Sets how the list at `path` (e.g. `/api/v1/content`) is wrapped.
    pub fn set_list_shape(&self, path: &str, shape: ListShape) {
        control::set_shape(&self.shared, path, shape);
    }

    /// Cuts the list at `path` (e.g. `/api/v1/playlists`) to its first `items` entries with a consistent
    /// `meta.total` (same as `POST /__sandbox/list-truncate`); `None` restores the whole list. Detail reads still find
    /// every entity: the list lies, the API does not.
    pub fn truncate_list(&self, path: &str, items: Option<usize>) {
        control::set_truncation(&self.shared, path, items);
    }

    /// Makes a display reconnect now (fresh heartbeat, `online`, kept fresh from then on). False if unknown.
    pub fn reconnect_display(&self, id: &str) -> bool {
        control::reconnect(&self.shared, id)
    }

    /// Stops refreshing a display's heartbeat (even a live one). False if unknown.
    pub fn stay_offline(&self, id: &str) -> bool {
        control::stay_offline(&self.shared, id)
    }

    /// Share (0…1) of `reload` commands to offline displays that make them reconnect at once (every k-th).
    pub fn set_reconnect_share(&self, share: f64) {
        lock(&self.shared.fleet).reconnect_share = share.clamp(0.0, 1.0);
    }

    /// Sets the sandbox clock offset from real time, seconds.
    pub fn set_clock_offset(&self, seconds: f64) {
        self.shared
            .clock
            .set_offset_ms((seconds * 1000.0).round() as i64);
    }

    /// Moves the sandbox clock forward (negative: backwards) by `seconds`.
    pub fn advance_clock(&self, seconds: f64) {
        let o = self.shared.clock.offset_ms();
        self.shared
            .clock
            .set_offset_ms(o + (seconds * 1000.0).round() as i64);
    }

    /// The sandbox's "now".
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.shared.now()).unwrap_or_default()
    }

    /// Turns per-IP throttling on or off (buckets are reset).
    pub fn set_throttle(&self, enabled: bool) {
        self.shared.throttle_on.store(enabled, Ordering::Relaxed);
        lock(&self.shared.throttle).reset();
    }

    /// Chooses the production (true) or development (false) form of validation errors.
    pub fn set_production_errors(&self, production: bool) {
        self.shared
            .production_errors
            .store(production, Ordering::Relaxed);
    }

    /// Runs Vizora's hourly content-expiry job once; returns `{expired, repointed, removed}`.
    pub fn run_expire_content_job(&self) -> Value {
        control::expire_job(&self.shared)
    }

    /// Runs Vizora's per-minute "mark offline" job once; returns `{markedOffline}`.
    pub fn run_mark_offline_job(&self) -> Value {
        control::mark_offline_job(&self.shared)
    }

    /// The stored entity as JSON (collections: `content`, `displays`, `playlists`, `schedules`, `display-groups`,
    /// `organization`, `users`), as `GET /__sandbox/entities/{collection}/{id}` returns it.
    pub fn entity(&self, collection: &str, id: &str) -> Option<Value> {
        let st = lock(&self.shared.store);
        store::raw_entity(
            store::R {
                s: &st,
                now: self.shared.now(),
            },
            collection,
            id,
        )
    }

    /// Login/logout counters.
    pub fn sessions(&self) -> SessionStats {
        control::sessions(&self.shared)
    }

    /// The HS256 secret the sandbox signs its JWTs with (for servers that verify Vizora tokens).
    pub fn jwt_secret(&self) -> &str {
        &self.shared.jwt_secret
    }

    /// The stored ops-status object, if any and not expired.
    pub fn ops_status(&self) -> Option<Value> {
        let now = self.shared.now();
        lock(&self.shared.ops_status)
            .as_ref()
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
    }
}

/// The banner's "point an agent at it" lines (issue 9): a command that finishes in seconds against this sandbox.
/// Without throttling the client's budget is raised to match (`OPS_RATE_PER_*`, kept in memory so a host's shared
/// `ops-ratelimit.json` is not touched); with production throttling the client keeps the production budget (raising
/// it would only earn 429s), so the lines say how long that takes and how to get the fast form (`--no-throttle`).
/// State and logs go to `./vizora-ops-sandbox/` (`OPS_LOG_DIR`), never the host's own.
pub fn banner_command(api_url: &str, throttle: bool, demo: bool) -> Vec<String> {
    let login = if demo {
        "OPS_EMAIL=ops@example.test OPS_PASSWORD=ops-demo-password"
    } else {
        "OPS_EMAIL=<login> OPS_PASSWORD=<password>"
    };
    let common = format!(
        "VALIDATOR_BASE_URL={api_url} {login} OPS_LOG_DIR=./vizora-ops-sandbox OPS_RATE_LIMIT_BACKEND=memory"
    );
    if throttle {
        vec![
            "  point an agent at it (production limits: the client keeps to 100 requests/min, so a dry run of the \
             demo tenant takes about a minute; for seconds, restart with --no-throttle):"
                .into(),
            format!("    {common} vizora-ops run schedule-doctor --dry-run"),
        ]
    } else {
        vec![
            "  point an agent at it (throttling is off, so the client's budget is raised to match; finishes in \
             seconds):"
                .into(),
            format!(
                "    {common} OPS_RATE_PER_SECOND=1000 OPS_RATE_PER_MINUTE=100000 OPS_RATE_PER_HOUR=1000000 \
                 vizora-ops run schedule-doctor --dry-run"
            ),
        ]
    }
}

/// Runs a sandbox until Ctrl-C (`vizora-ops sandbox --fixture F --port P`): the demo tenant when `fixture` is None;
/// prints the three service URLs and the control URL.
///
/// Errors: fixture unreadable or invalid, ports not bindable.
pub async fn run_standalone(
    fixture: Option<PathBuf>,
    port: u16,
    throttle: bool,
) -> anyhow::Result<()> {
    let opts = SandboxOptions {
        port,
        throttle,
        ..SandboxOptions::default()
    };
    let t0 = std::time::Instant::now();
    let sb = match &fixture {
        Some(p) => Sandbox::start_from_file(p, opts).await?,
        None => Sandbox::start(DEMO_FIXTURE, opts).await?,
    };
    let name = fixture
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in demo tenant".into());
    crate::outln!(
        "vizora-ops sandbox: serving {name} (loaded in {:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    crate::outln!("  api:      {}", sb.api_url);
    crate::outln!("  web:      {}", sb.web_url);
    crate::outln!("  realtime: {}", sb.realtime_url);
    crate::outln!("  control:  {}", sb.control_url);
    crate::outln!(
        "  throttling: {}",
        if throttle { "production limits" } else { "off" }
    );
    if fixture.is_none() {
        crate::outln!(
            "  login:    ops@example.test / ops-demo-password (demo account, sandbox only)"
        );
    }
    for line in banner_command(&sb.api_url, throttle, fixture.is_none()) {
        crate::outln!("{line}");
    }
    crate::outln!("Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sb.shutdown().await;
    Ok(())
}
