//! The error classes of agents.md 5.7 and the envelope (5.1): unwrap, error messages.

use serde_json::Value;

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
