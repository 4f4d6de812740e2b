//! Login, one re-login on 401, and the awaited logout (agents.md 5.2).

use super::budget::Admission;
use super::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

impl Client {
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

    pub(crate) async fn login_attempt(&self, email: &str, password: &str) -> Result<(), ApiError> {
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

    pub(crate) async fn token(&self) -> Result<String, ApiError> {
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

    pub(crate) async fn logout_session(&self, s: Session) {
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
}
