//! API client settings (agents.md 8.3, 5.5, 5.6): origin, login, timeouts, retries and the host-wide rate budget.

use super::Source;
use std::time::Duration;

/// Default of `VALIDATOR_BASE_URL`, the Vizora API origin.
pub const DEFAULT_BASE_URL: &str = "http://localhost:3000";
/// Default of `OPS_HTTP_CONNECT_TIMEOUT_MS`, in milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Default of `OPS_HTTP_TIMEOUT_MS`, in milliseconds.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default of `OPS_PROBE_TIMEOUT_MS`, in milliseconds.
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 5_000;
/// Default of `OPS_NOTIFY_TIMEOUT_MS`, in milliseconds.
pub const DEFAULT_NOTIFY_TIMEOUT_MS: u64 = 10_000;
/// Largest value of every `OPS_*_TIMEOUT_MS` of this section, in milliseconds (10 minutes).
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Default of `OPS_HTTP_RETRIES`.
pub const DEFAULT_RETRIES: u64 = 3;
/// Default of `OPS_MAX_LIST_ITEMS`.
pub const DEFAULT_MAX_LIST_ITEMS: u64 = 100_000;
/// Default of `OPS_RATE_PER_SECOND`, requests.
pub const DEFAULT_RATE_PER_SECOND: u64 = 10;
/// Default of `OPS_RATE_PER_MINUTE`, requests.
pub const DEFAULT_RATE_PER_MINUTE: u64 = 100;
/// Default of `OPS_RATE_PER_HOUR`, requests.
pub const DEFAULT_RATE_PER_HOUR: u64 = 1_000;
/// Default of `OPS_LOGINS_PER_MINUTE`, logins.
pub const DEFAULT_LOGINS_PER_MINUTE: u64 = 5;

/// Backend of the host-wide rate budget (agents.md 5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBackend {
    /// `memory`: sliding windows kept in this process only, not shared with other processes (agents.md 5.5).
    Memory,
    /// `file`, and `auto` without `OPS_RATE_LIMIT_REDIS_URL`: `<state dir>/ops-ratelimit.json`, shared by the host's
    /// processes under its own lock (agents.md 5.5).
    File,
    /// `redis`, and `auto` with `OPS_RATE_LIMIT_REDIS_URL`: not available in this version, so
    /// [`Config::from_source`](super::Config::from_source) rejects it with a configuration error.
    Redis,
}

/// API client settings (agents.md 8.3).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// API origin (default [`DEFAULT_BASE_URL`]; a path is ignored).
    pub base_url: String,
    /// Login e-mail: `OPS_EMAIL`, else `VALIDATOR_EMAIL`; empty counts as unset. `None` → a run that needs
    /// the API fails with `no API credentials`, exit 2 (agents.md 5.2).
    pub email: Option<String>,
    /// Login password: `OPS_PASSWORD`, else `VALIDATOR_PASSWORD` (empty = unset); a secret registered with
    /// the redactor (agents.md 5.2, 5.9). `None` as for `email`.
    pub password: Option<String>,
    /// `OPS_HTTP_CONNECT_TIMEOUT_MS` (default [`DEFAULT_CONNECT_TIMEOUT_MS`], 1..=[`MAX_TIMEOUT_MS`]): connect timeout
    /// of the API client and of the run's shared HTTP client (agents.md 5.6).
    pub connect_timeout: Duration,
    /// `OPS_HTTP_TIMEOUT_MS` (default [`DEFAULT_REQUEST_TIMEOUT_MS`]): one API request, body included (agents.md 5.6).
    pub request_timeout: Duration,
    /// `OPS_PROBE_TIMEOUT_MS` (default [`DEFAULT_PROBE_TIMEOUT_MS`]): each health, edge and thumbnail probe and each
    /// dead-man heartbeat (agents.md 5.6, 7.8).
    pub probe_timeout: Duration,
    /// `OPS_NOTIFY_TIMEOUT_MS` (default [`DEFAULT_NOTIFY_TIMEOUT_MS`]): Slack, SMTP, dashboard push and logout
    /// (agents.md 5.6).
    pub notify_timeout: Duration,
    /// `OPS_HTTP_RETRIES` (default [`DEFAULT_RETRIES`], 0..=10): retries of idempotent API requests on transport
    /// errors, timeouts, 5xx and 429 (agents.md 5.6).
    pub retries: u32,
    /// `OPS_MAX_LIST_ITEMS` (default [`DEFAULT_MAX_LIST_ITEMS`]): items after which a page walk stops, incomplete
    /// (agents.md 5.4).
    pub max_list_items: usize,
    /// `OPS_RATE_PER_SECOND` (default [`DEFAULT_RATE_PER_SECOND`]): host-wide API requests per sliding second
    /// (agents.md 5.5).
    pub rate_per_second: u32,
    /// `OPS_RATE_PER_MINUTE` (default [`DEFAULT_RATE_PER_MINUTE`]): host-wide API requests per sliding minute
    /// (agents.md 5.5).
    pub rate_per_minute: u32,
    /// `OPS_RATE_PER_HOUR` (default [`DEFAULT_RATE_PER_HOUR`]): host-wide API requests per sliding hour
    /// (agents.md 5.5).
    pub rate_per_hour: u32,
    /// `OPS_LOGINS_PER_MINUTE` (default [`DEFAULT_LOGINS_PER_MINUTE`]): host-wide logins per sliding minute
    /// (agents.md 5.5).
    pub logins_per_minute: u32,
    /// `OPS_RATE_LIMIT_BACKEND` (`auto` default, `memory`, `file`, `redis`): where the rate budget is kept
    /// (agents.md 5.5).
    pub rate_backend: RateLimitBackend,
    /// `OPS_RATE_LIMIT_REDIS_URL` (`redis://` or `rediss://`, a secret); `None` when unset.
    pub rate_redis_url: Option<String>,
}

impl ApiConfig {
    /// Reads and validates the section; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> ApiConfig {
        let base_url = src
            .url(
                "VALIDATOR_BASE_URL",
                Some(DEFAULT_BASE_URL),
                &["http", "https"],
            )
            .map(|u| origin_of(&u))
            .unwrap_or_default();
        let email = src.get("OPS_EMAIL").or_else(|| src.get("VALIDATOR_EMAIL"));
        let password = src
            .get("OPS_PASSWORD")
            .or_else(|| src.get("VALIDATOR_PASSWORD"));
        let rate_backend = rate_backend(src);
        let ms = |key: &str, default: u64| {
            Duration::from_millis(src.u64(key, default, 1, MAX_TIMEOUT_MS))
        };
        ApiConfig {
            base_url,
            email,
            password,
            connect_timeout: ms("OPS_HTTP_CONNECT_TIMEOUT_MS", DEFAULT_CONNECT_TIMEOUT_MS),
            request_timeout: ms("OPS_HTTP_TIMEOUT_MS", DEFAULT_REQUEST_TIMEOUT_MS),
            probe_timeout: ms("OPS_PROBE_TIMEOUT_MS", DEFAULT_PROBE_TIMEOUT_MS),
            notify_timeout: ms("OPS_NOTIFY_TIMEOUT_MS", DEFAULT_NOTIFY_TIMEOUT_MS),
            retries: src.u64("OPS_HTTP_RETRIES", DEFAULT_RETRIES, 0, 10) as u32,
            max_list_items: src.u64("OPS_MAX_LIST_ITEMS", DEFAULT_MAX_LIST_ITEMS, 1, 100_000_000)
                as usize,
            rate_per_second: src.u64("OPS_RATE_PER_SECOND", DEFAULT_RATE_PER_SECOND, 1, 1_000_000)
                as u32,
            rate_per_minute: src.u64(
                "OPS_RATE_PER_MINUTE",
                DEFAULT_RATE_PER_MINUTE,
                1,
                100_000_000,
            ) as u32,
            rate_per_hour: src.u64("OPS_RATE_PER_HOUR", DEFAULT_RATE_PER_HOUR, 1, 1_000_000_000)
                as u32,
            logins_per_minute: src.u64(
                "OPS_LOGINS_PER_MINUTE",
                DEFAULT_LOGINS_PER_MINUTE,
                1,
                1_000_000,
            ) as u32,
            rate_backend,
            rate_redis_url: src.url("OPS_RATE_LIMIT_REDIS_URL", None, &["redis", "rediss"]),
        }
    }
}

/// `OPS_RATE_LIMIT_BACKEND`; the Redis budget is rejected because this version has none (agents.md 5.5).
fn rate_backend(src: &Source) -> RateLimitBackend {
    let backend = match src.get("OPS_RATE_LIMIT_BACKEND").as_deref() {
        None | Some("auto") => {
            if src.get("OPS_RATE_LIMIT_REDIS_URL").is_some() {
                RateLimitBackend::Redis
            } else {
                RateLimitBackend::File
            }
        }
        Some("memory") => RateLimitBackend::Memory,
        Some("file") => RateLimitBackend::File,
        Some("redis") => RateLimitBackend::Redis,
        Some(o) => {
            src.fail(format!(
                "OPS_RATE_LIMIT_BACKEND: expected auto, memory, file or redis, got {o:?}"
            ));
            RateLimitBackend::File
        }
    };
    if backend == RateLimitBackend::Redis {
        src.fail(
            "OPS_RATE_LIMIT_BACKEND: the redis rate budget is not available in this version; use file or memory",
        );
    }
    backend
}

/// The origin of a URL (scheme, host, port): the API client appends its own paths.
fn origin_of(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) => p.origin().ascii_serialization(),
        Err(_) => u.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use std::time::Duration;

    #[test]
    fn ops_credentials_win_over_validator_and_empty_is_unset() {
        let c = cfg(&[
            ("OPS_EMAIL", ""),
            ("VALIDATOR_EMAIL", "v@x.test"),
            ("OPS_PASSWORD", "opspw-1"),
            ("VALIDATOR_PASSWORD", "valpw-1"),
        ])
        .unwrap();
        assert_eq!(c.api.email.as_deref(), Some("v@x.test"));
        assert_eq!(c.api.password.as_deref(), Some("opspw-1"));
    }

    #[test]
    fn api_defaults_are_the_named_constants_and_the_origin_drops_the_path() {
        let c = cfg(&[("VALIDATOR_BASE_URL", "https://api.example.test:8443/api/v1")]).unwrap();
        assert_eq!(c.api.base_url, "https://api.example.test:8443");
        assert_eq!(
            c.api.connect_timeout,
            Duration::from_millis(super::DEFAULT_CONNECT_TIMEOUT_MS)
        );
        assert_eq!(c.api.request_timeout, Duration::from_secs(30));
        assert_eq!(c.api.rate_per_hour, 1_000);
        assert_eq!(c.api.rate_backend, super::RateLimitBackend::File);
        let e = cfg(&[("OPS_RATE_LIMIT_REDIS_URL", "redis://r:6379")]).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert!(
            e.0[0].starts_with("OPS_RATE_LIMIT_BACKEND: the redis rate budget"),
            "{e}"
        );
    }
}
