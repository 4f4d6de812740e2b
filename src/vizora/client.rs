//! Building the client, sending one request and classifying its answer (agents.md 5.6, 5.7).

use super::budget::{Admission, Limits, RateBudget};
use super::*;
use crate::state::audit::AuditLog;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
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

pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
    pub(crate) headers: reqwest::header::HeaderMap,
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

    pub(crate) fn remaining(&self) -> Duration {
        self.opts.deadline.saturating_duration_since(Instant::now())
    }

    /// `vizora-ops/<version> (<agent>)` (agents.md 5.1), per request because a runtime's HTTP client serves every agent.
    pub(crate) fn user_agent(&self) -> String {
        format!(
            "vizora-ops/{} ({})",
            env!("CARGO_PKG_VERSION"),
            self.opts.agent
        )
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.opts.base_url.trim_end_matches('/'), path)
    }

    /// One HTTP exchange through the budget (no retries). `auth`: send the bearer token.
    pub(crate) async fn send_once(
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

    pub(crate) fn classify(&self, method: &Method, path: &str, r: &RawResponse) -> ApiError {
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
}
