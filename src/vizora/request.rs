//! Authenticated requests with retries (5.6) and the page walk with completeness from `meta.total` (5.3).

use super::budget::Admission;
use super::*;
use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

impl Client {
    /// An authenticated request with the retry policy of agents.md 5.6 and the 401 rule of 5.2.
    pub(crate) async fn request(
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
    pub(crate) async fn request_with_status(
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

    pub(crate) async fn walk_once(
        &self,
        path: &str,
        sink: &mut dyn ItemSink,
    ) -> Result<ListResult, ApiError> {
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
