//! The session shared by a runtime's runs ([`SharedSession`]), the client options and the [`Client`] itself.

use super::budget::RateBudget;
use crate::state::audit::AuditLog;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) token: String,
    pub(crate) cookies: Vec<(String, String)>,
    pub(crate) csrf: Option<String>,
}

/// The API session of a long-lived runtime (agents.md 5.2; design/README.md §3 "runtime"): the login's token, cookies
/// and CSRF header and the organization id, shared by the per-run [`Client`]s built with [`Client::with_session`], so
/// a daemon logs in once and re-logs in on a 401 instead of once per run. Per-run counters, the "one re-login per run"
/// rule and the first failed login stay in each `Client`.
#[derive(Default)]
pub struct SharedSession {
    pub(crate) session: Mutex<Option<Session>>,
    /// Held across "no session → log in" so concurrent walks (and concurrent runs) log in once.
    pub(crate) login_lock: Mutex<()>,
    pub(crate) org_id: StdMutex<Option<String>>,
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
    /// Login e-mail (`OPS_EMAIL`, else `VALIDATOR_EMAIL`); `None` → [`ApiError::NoCredentials`](super::ApiError::NoCredentials) at login (5.2).
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
    /// Dry run (agents.md 1.5): [`VizoraApi::mutate`](super::VizoraApi::mutate) reads `before` and writes the audit line but sends nothing.
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
    pub(crate) http: reqwest::Client,
    pub(crate) opts: ClientOptions,
    pub(crate) budget: Arc<RateBudget>,
    pub(crate) audit: AuditLog,
    /// The session (token, cookies, login lock, organization id): this client's own, or a runtime's shared one.
    pub(crate) shared: Arc<SharedSession>,
    /// The first failed login of this run: later callers get the same error without a request (agents.md 5.2: a
    /// failed login ends the run at once; repeated bad logins lock the account).
    pub(crate) login_failure: StdMutex<Option<String>>,
    pub(crate) relogged: StdMutex<bool>,
    pub(crate) drift: StdMutex<HashSet<String>>,
    pub(crate) stats: StdMutex<SessionStats>,
}
