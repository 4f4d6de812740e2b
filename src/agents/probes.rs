//! health-guardian's HTTP probes (agents.md 6.1, 6.1.1): middleware and realtime readiness, liveness, and the web page
//! with its first two static assets. Each returns a verdict; the confirmation probe, incidents and restarts are the
//! agent's job.
//!
//! Probes target loopback only (a non-loopback URL is unhealthy without a request). Each request, body included,
//! must finish within the probe timeout (`OPS_PROBE_TIMEOUT_MS`, 5 s, agents.md 5.6). Redirects are followed here,
//! not by the client: only same-origin ones, at most 5 (web page and assets); use [`probe_client`], which follows
//! none. A client that follows redirects by itself is still checked: its final URL must be same-origin.

use futures::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::sync::LazyLock;
use std::time::Duration;
use url::Url;

/// Most redirects followed for the web page and for each asset (agents.md 6.1.1).
pub const MAX_REDIRECTS: usize = 5;
/// Assets checked per page (agents.md 6.1.1: the first 2 references).
pub const ASSETS_CHECKED: usize = 2;
/// Most body bytes kept (for JSON or HTML parsing); the rest of a body is read and discarded.
const BODY_KEEP: usize = 4 * 1024 * 1024;

/// A probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// Answered as required. `degraded`: middleware readiness said `data.status == "degraded"` (info
    /// `service-degraded`).
    Healthy {
        /// Middleware readiness reported `degraded`.
        degraded: bool,
    },
    /// Failed; `detail` says how (status, transport error, timeout, failing assets), redacted.
    Unhealthy {
        /// What failed, for the incident's `error`.
        detail: String,
        /// The readiness probe answered 503 with a JSON body: the process is alive and a dependency is down, so
        /// liveness decides between `service-unready` and `service-down` (agents.md 6.1.1).
        readiness_503_json: bool,
    },
}

impl ProbeVerdict {
    /// Whether the verdict is healthy (degraded included).
    pub fn is_healthy(&self) -> bool {
        matches!(self, ProbeVerdict::Healthy { .. })
    }

    /// The failure detail, if unhealthy.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ProbeVerdict::Unhealthy { detail, .. } => Some(detail),
            ProbeVerdict::Healthy { .. } => None,
        }
    }

    fn unhealthy(detail: impl AsRef<str>) -> ProbeVerdict {
        ProbeVerdict::Unhealthy {
            detail: crate::redact::redact_str(detail.as_ref()),
            readiness_503_json: false,
        }
    }
}

/// Services that have a liveness route (agents.md 6.1: same origin as readiness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveService {
    /// `/api/v1/health/live`.
    Middleware,
    /// `/api/health/live`.
    Realtime,
}

/// The client for probes: follows no redirect, ignores proxy settings (loopback), connects within 5 s.
pub fn probe_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("a reqwest client without TLS options always builds")
}

/// The liveness URL on the origin of `ready_url`: middleware `/api/v1/health/live`, realtime `/api/health/live`.
/// An unparseable `ready_url` gives an empty string (which no probe answers).
pub fn live_url_for(ready_url: &str, svc: LiveService) -> String {
    let path = match svc {
        LiveService::Middleware => "/api/v1/health/live",
        LiveService::Realtime => "/api/health/live",
    };
    match Url::parse(ready_url) {
        Ok(mut u) => {
            u.set_path(path);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => String::new(),
    }
}

/// Middleware readiness (`/api/v1/health/ready`): 2xx healthy (`data.status == "degraded"` → `degraded: true`);
/// 503, any other status or a transport error → unhealthy, with `readiness_503_json` when it was a 503 whose body
/// parses as JSON.
pub async fn probe_middleware(client: &Client, ready_url: &str, timeout: Duration) -> ProbeVerdict {
    probe_ready(client, ready_url, timeout, true).await
}

/// Realtime readiness (`/api/health/ready`): 2xx healthy, anything else unhealthy (503 + JSON noted as for the
/// middleware).
pub async fn probe_realtime(client: &Client, ready_url: &str, timeout: Duration) -> ProbeVerdict {
    probe_ready(client, ready_url, timeout, false).await
}

async fn probe_ready(
    client: &Client,
    ready_url: &str,
    timeout: Duration,
    read_degraded: bool,
) -> ProbeVerdict {
    let url = match loopback_url(ready_url) {
        Ok(u) => u,
        Err(d) => return ProbeVerdict::unhealthy(d),
    };
    match fetch(client, &url, timeout, 0).await {
        Ok(f) if f.status.is_success() => {
            let degraded = read_degraded
                && serde_json::from_slice::<Value>(&f.body)
                    .ok()
                    .is_some_and(|v| {
                        v.pointer("/data/status")
                            .or_else(|| v.get("status"))
                            .and_then(Value::as_str)
                            == Some("degraded")
                    });
            ProbeVerdict::Healthy { degraded }
        }
        Ok(f) => {
            let json = serde_json::from_slice::<Value>(&f.body).is_ok();
            let is_503_json = f.status == StatusCode::SERVICE_UNAVAILABLE && json;
            ProbeVerdict::Unhealthy {
                detail: crate::redact::redact_str(&format!(
                    "{url}: HTTP {}{}",
                    f.status.as_u16(),
                    if is_503_json { " (JSON body)" } else { "" }
                )),
                readiness_503_json: is_503_json,
            }
        }
        Err(e) => ProbeVerdict::unhealthy(format!("{url}: {e}")),
    }
}

/// Liveness: true only for a 2xx answer whose body parses as JSON (agents.md 6.1.1).
pub async fn probe_live(client: &Client, live_url: &str, timeout: Duration) -> bool {
    let Ok(url) = loopback_url(live_url) else {
        return false;
    };
    match fetch(client, &url, timeout, 0).await {
        Ok(f) => f.status.is_success() && serde_json::from_slice::<Value>(&f.body).is_ok(),
        Err(_) => false,
    }
}

/// The web probe (agents.md 6.1.1): the page answers 2xx (≤ 5 same-origin redirects), and the first
/// [`ASSETS_CHECKED`] asset references ([`extract_asset_refs`]) answer 2xx (≤ 5 same-origin redirects each). No
/// reference → unhealthy `assets unverifiable`. The detail names each failing asset with its status or error.
pub async fn probe_web(client: &Client, url: &str, timeout: Duration) -> ProbeVerdict {
    let page_url = match loopback_url(url) {
        Ok(u) => u,
        Err(d) => return ProbeVerdict::unhealthy(d),
    };
    let page = match fetch(client, &page_url, timeout, MAX_REDIRECTS).await {
        Ok(f) if f.status.is_success() => f,
        Ok(f) => return ProbeVerdict::unhealthy(format!("{page_url}: HTTP {}", f.status.as_u16())),
        Err(e) => return ProbeVerdict::unhealthy(format!("{page_url}: {e}")),
    };
    let html = String::from_utf8_lossy(&page.body);
    let refs = extract_asset_refs(&html, &page.final_url);
    if refs.is_empty() {
        return ProbeVerdict::unhealthy(format!(
            "assets unverifiable: {page_url} references no /_next/static/ .js or .css asset"
        ));
    }
    let checks = refs.iter().take(ASSETS_CHECKED).map(|a| async move {
        let failure = match fetch(client, a, timeout, MAX_REDIRECTS).await {
            Ok(f) if f.status.is_success() => None,
            Ok(f) => Some(format!("HTTP {}", f.status.as_u16())),
            Err(e) => Some(e.to_string()),
        };
        failure.map(|why| format!("asset {} failed: {why}", path_and_query(a)))
    });
    let failures: Vec<String> = join_all(checks).await.into_iter().flatten().collect();
    if failures.is_empty() {
        ProbeVerdict::Healthy { degraded: false }
    } else {
        ProbeVerdict::unhealthy(failures.join("; "))
    }
}

static ATTR: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"(?i)[\s"'/](?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)')"#).expect("regex")
});

/// Static asset references of a page (agents.md 6.1.1): `src`/`href` attribute values in either quote whose path
/// starts with `/_next/static/` and ends in `.js` or `.css` (query ignored), relative or on the page's origin,
/// resolved against `page_url`, without fragment, de-duplicated in document order.
pub fn extract_asset_refs(html: &str, page_url: &Url) -> Vec<Url> {
    let mut out: Vec<Url> = Vec::new();
    for c in ATTR.captures_iter(html) {
        let Some(raw) = c.get(1).or_else(|| c.get(2)) else {
            continue;
        };
        let value = raw.as_str().trim().replace("&amp;", "&");
        if value.is_empty() {
            continue;
        }
        let Ok(mut u) = page_url.join(&value) else {
            continue;
        };
        u.set_fragment(None);
        let path = u.path();
        if u.origin() != page_url.origin()
            || !path.starts_with("/_next/static/")
            || !(path.ends_with(".js") || path.ends_with(".css"))
        {
            continue;
        }
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

/// `/path?query` of a URL, for details.
fn path_and_query(u: &Url) -> String {
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// Parses `s` and requires an http(s) URL on a loopback host (agents.md 6.1: probes are loopback only).
fn loopback_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("invalid probe URL {s:?}: {e}"))?;
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !(loopback && matches!(u.scheme(), "http" | "https")) {
        return Err(format!(
            "refusing to probe {}: probes are loopback http(s) only",
            crate::redact::url_host_only(s)
        ));
    }
    Ok(u)
}

/// A response: final status, the kept part of the body, and the URL that answered.
struct Fetched {
    status: StatusCode,
    body: Vec<u8>,
    final_url: Url,
}

/// Why a fetch gave no response to judge.
#[derive(Debug)]
enum FetchError {
    Timeout(Duration),
    Transport(String),
    CrossOrigin(String),
    TooManyRedirects(usize),
    BadRedirect(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Timeout(d) => {
                write!(f, "timed out after {} ms (body included)", d.as_millis())
            }
            FetchError::Transport(e) => write!(f, "no answer ({e})"),
            FetchError::CrossOrigin(to) => write!(f, "redirect to another origin ({to}) refused"),
            FetchError::TooManyRedirects(n) => write!(f, "more than {n} redirects"),
            FetchError::BadRedirect(why) => write!(f, "bad redirect ({why})"),
        }
    }
}

/// GET `url`, following at most `max_redirects` same-origin redirects; each request, body included, within
/// `timeout`. A 3xx is returned as is when `max_redirects` is 0.
async fn fetch(
    client: &Client,
    url: &Url,
    timeout: Duration,
    max_redirects: usize,
) -> Result<Fetched, FetchError> {
    let origin = url.origin();
    let mut current = url.clone();
    let mut hops = 0;
    loop {
        let (status, location, body, answered) =
            match tokio::time::timeout(timeout, get_once(client, &current)).await {
                Err(_) => return Err(FetchError::Timeout(timeout)),
                Ok(r) => r?,
            };
        // A client that follows redirects itself may have left the origin.
        if answered.origin() != origin {
            return Err(FetchError::CrossOrigin(origin_text(&answered)));
        }
        let is_redirect = status.is_redirection() && status != StatusCode::NOT_MODIFIED;
        if !is_redirect || max_redirects == 0 {
            return Ok(Fetched {
                status,
                body,
                final_url: answered,
            });
        }
        if hops == max_redirects {
            return Err(FetchError::TooManyRedirects(max_redirects));
        }
        let loc = location.ok_or_else(|| {
            FetchError::BadRedirect(format!("HTTP {} without Location", status.as_u16()))
        })?;
        let next = answered
            .join(&loc)
            .map_err(|e| FetchError::BadRedirect(format!("Location: {e}")))?;
        if next.origin() != origin {
            return Err(FetchError::CrossOrigin(origin_text(&next)));
        }
        current = next;
        hops += 1;
    }
}

/// One request: status, `Location`, the kept body (the rest drained), and the URL that answered.
async fn get_once(
    client: &Client,
    url: &Url,
) -> Result<(StatusCode, Option<String>, Vec<u8>, Url), FetchError> {
    let mut resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| FetchError::Transport(transport_text(e)))?;
    let status = resp.status();
    let answered = resp.url().clone();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() < BODY_KEEP {
                    let room = BODY_KEEP - body.len();
                    body.extend_from_slice(&c[..c.len().min(room)]);
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(FetchError::Transport(format!(
                    "reading the body: {}",
                    chain(&e)
                )));
            }
        }
    }
    Ok((status, location, body, answered))
}

fn origin_text(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// A transport failure in a few words, without repeating the URL (the caller names it): `timed out`,
/// `cannot connect (tcp connect error: Connection refused (os error 111))`, else the error with its causes.
fn transport_text(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let connect = e.is_connect();
    let e = e.without_url();
    let mut root = None;
    let mut cur = std::error::Error::source(&e);
    while let Some(c) = cur {
        root = Some(c.to_string());
        cur = c.source();
    }
    match (connect, root) {
        (true, Some(r)) => format!("cannot connect ({r})"),
        _ => chain(&e),
    }
}

/// An error with its sources (reqwest's own text hides the cause, e.g. `connection refused`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_refs_follow_the_rules() {
        let page = Url::parse("http://127.0.0.1:3001/en/home").unwrap();
        let html = r#"<html><head>
            <link rel="stylesheet" href="/_next/static/css/app.css?v=1"/>
            <link rel='preload' as='script' href='/_next/static/chunks/main.js'>
            <script src="/_next/static/chunks/main.js"></script>
            <script src="http://127.0.0.1:3001/_next/static/chunks/abs.js"></script>
            <script src="https://cdn.example.com/_next/static/chunks/cdn.js"></script>
            <script src="//localhost:3001/_next/static/chunks/other-host.js"></script>
            <script src="/_next/static/chunks/data.json"></script>
            <img src="/_next/static/media/logo.png">
            <a href="/_next/image?url=/_next/static/x.js">x</a>
            <script src="../_next/static/chunks/rel.js#frag"></script>
            <script>self.__next_f.push("/_next/static/chunks/inline.js")</script>
            <script data-x="1"src="/_next/static/chunks/tight.js"></script>
        </head></html>"#;
        let got: Vec<String> = extract_asset_refs(html, &page)
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "http://127.0.0.1:3001/_next/static/css/app.css?v=1",
                "http://127.0.0.1:3001/_next/static/chunks/main.js",
                "http://127.0.0.1:3001/_next/static/chunks/abs.js",
                "http://127.0.0.1:3001/_next/static/chunks/rel.js",
                "http://127.0.0.1:3001/_next/static/chunks/tight.js",
            ]
        );
    }

    #[test]
    fn live_urls_share_the_readiness_origin() {
        assert_eq!(
            live_url_for(
                "http://127.0.0.1:3000/api/v1/health/ready",
                LiveService::Middleware
            ),
            "http://127.0.0.1:3000/api/v1/health/live"
        );
        assert_eq!(
            live_url_for(
                "http://localhost:3002/api/health/ready?x=1",
                LiveService::Realtime
            ),
            "http://localhost:3002/api/health/live"
        );
        assert_eq!(live_url_for("not a url", LiveService::Realtime), "");
    }

    #[test]
    fn non_loopback_targets_are_refused() {
        assert!(loopback_url("http://127.0.0.1:3000/").is_ok());
        assert!(loopback_url("http://[::1]:3000/").is_ok());
        assert!(loopback_url("http://localhost/").is_ok());
        assert!(loopback_url("http://10.0.0.1/").is_err());
        assert!(loopback_url("http://example.com/").is_err());
        assert!(loopback_url("ftp://127.0.0.1/").is_err());
    }
}
