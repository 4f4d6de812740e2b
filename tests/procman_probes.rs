//! health-guardian probes (agents.md 6.1.1) against a small axum server on 127.0.0.1: readiness (2xx, degraded,
//! 503 with/without JSON, timeouts incl. body), liveness, and the web page with its static assets (ok, 404, none,
//! same-origin and cross-origin redirects, redirect limit, slow asset).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::{Duration, Instant};
use vizora_ops::agents::probes::{
    LiveService, ProbeVerdict, live_url_for, probe_client, probe_live, probe_middleware,
    probe_realtime, probe_web,
};

const T: Duration = Duration::from_millis(800);

fn html(refs: &[&str]) -> Response {
    let mut s = String::from("<!DOCTYPE html><html><head>");
    for r in refs {
        if r.ends_with(".css") {
            s.push_str(&format!("<link rel=\"stylesheet\" href=\"{r}\"/>"));
        } else {
            s.push_str(&format!("<script src='{r}' defer></script>"));
        }
    }
    s.push_str("</head><body><h1>Vizora</h1></body></html>");
    ([(header::CONTENT_TYPE, "text/html")], s).into_response()
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Starts the test server; returns its origin (`http://127.0.0.1:<port>`).
async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let other_origin = format!("http://localhost:{port}");
    let other2 = other_origin.clone();
    let app = Router::new()
        // web pages
        .route(
            "/ok",
            get(|| async {
                html(&[
                    "/_next/static/css/app.css",
                    "/_next/static/chunks/main.js",
                    "/_next/static/chunks/gone.js",
                ])
            }),
        )
        .route(
            "/missing",
            get(|| async {
                html(&[
                    "/_next/static/chunks/main.js",
                    "/_next/static/chunks/gone.js",
                ])
            }),
        )
        .route(
            "/both-missing",
            get(|| async { html(&["/_next/static/a.js", "/_next/static/b.css?v=2"]) }),
        )
        .route(
            "/noassets",
            get(|| async {
                html(&[
                    "/favicon.ico",
                    "/_next/image?x=1",
                    "https://cdn.example.com/_next/static/x.js",
                ])
            }),
        )
        .route(
            "/page500",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        .route("/redir", get(|| async { redirect("/ok".into()) }))
        .route(
            "/hop/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    if n == 0 {
                        redirect("/ok".into())
                    } else {
                        redirect(format!("/hop/{}", n - 1))
                    }
                },
            ),
        )
        .route(
            "/cross",
            get(move || async move { redirect(format!("{other_origin}/ok")) }),
        )
        .route(
            "/asset-redirects",
            get(|| async {
                html(&[
                    "/_next/static/chunks/moved.js",
                    "/_next/static/chunks/elsewhere.js",
                ])
            }),
        )
        .route(
            "/slow-asset",
            get(|| async {
                html(&[
                    "/_next/static/chunks/main.js",
                    "/_next/static/chunks/slow.js",
                ])
            }),
        )
        // assets
        .route("/_next/static/css/app.css", get(|| async { "body{}" }))
        .route(
            "/_next/static/chunks/main.js",
            get(|| async { "console.log(1)" }),
        )
        .route(
            "/_next/static/chunks/moved.js",
            get(|| async { redirect("/_next/static/chunks/main.js".into()) }),
        )
        .route(
            "/_next/static/chunks/elsewhere.js",
            get(move || async move { redirect(format!("{other2}/_next/static/chunks/main.js")) }),
        )
        .route(
            "/_next/static/chunks/slow.js",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        // readiness and liveness
        .route(
            "/mw/ok",
            get(|| async {
                json(
                    StatusCode::OK,
                    serde_json::json!({"success": true, "data": {"status": "ok"}}),
                )
            }),
        )
        .route(
            "/mw/degraded",
            get(|| async {
                json(
                    StatusCode::OK,
                    serde_json::json!({"success": true, "data": {"status": "degraded"}}),
                )
            }),
        )
        .route(
            "/mw/503json",
            get(|| async {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "unhealthy"}),
                )
            }),
        )
        .route(
            "/mw/503html",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "<h1>Bad gateway</h1>") }),
        )
        .route(
            "/mw/500json",
            get(|| async {
                json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"e": 1}),
                )
            }),
        )
        .route("/mw/redirect", get(|| async { redirect("/mw/ok".into()) }))
        .route(
            "/mw/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/mw/slowbody",
            get(|| async {
                let stream = futures::stream::unfold(0u32, |i| async move {
                    if i < 6 {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), i + 1))
                    } else {
                        None
                    }
                });
                (StatusCode::OK, Body::from_stream(stream))
            }),
        )
        .route(
            "/live/ok",
            get(|| async { json(StatusCode::OK, serde_json::json!({"status": "ok"})) }),
        )
        .route("/live/text", get(|| async { "ok" }))
        .route(
            "/live/500",
            get(|| async {
                json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"e": 1}),
                )
            }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://127.0.0.1:{port}")
}

/// A loopback port nothing listens on.
async fn dead_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = l.local_addr().unwrap().port();
    drop(l);
    p
}

fn detail(v: &ProbeVerdict) -> &str {
    v.detail()
        .unwrap_or_else(|| panic!("expected unhealthy, got {v:?}"))
}

// ---------------------------------------------------------------------------------------------------------------
// web

#[tokio::test]
async fn web_page_with_reachable_assets_is_healthy() {
    let base = server().await;
    let v = probe_web(&probe_client(), &format!("{base}/ok"), T).await;
    // Only the first 2 references are checked: the third (404) is not.
    assert_eq!(v, ProbeVerdict::Healthy { degraded: false });
}

#[tokio::test]
async fn web_asset_404_is_unhealthy_and_named() {
    let base = server().await;
    let v = probe_web(&probe_client(), &format!("{base}/missing"), T).await;
    let d = detail(&v);
    assert_eq!(d, "asset /_next/static/chunks/gone.js failed: HTTP 404");
    let v = probe_web(&probe_client(), &format!("{base}/both-missing"), T).await;
    assert_eq!(
        detail(&v),
        "asset /_next/static/a.js failed: HTTP 404; asset /_next/static/b.css?v=2 failed: HTTP 404"
    );
}

#[tokio::test]
async fn web_page_without_static_assets_is_unverifiable() {
    let base = server().await;
    let v = probe_web(&probe_client(), &format!("{base}/noassets"), T).await;
    assert!(detail(&v).starts_with("assets unverifiable"), "{v:?}");
}

#[tokio::test]
async fn web_page_error_status_is_unhealthy() {
    let base = server().await;
    let v = probe_web(&probe_client(), &format!("{base}/page500"), T).await;
    assert!(detail(&v).ends_with("HTTP 500"), "{v:?}");
}

#[tokio::test]
async fn web_same_origin_redirects_are_followed_up_to_five() {
    let base = server().await;
    let c = probe_client();
    assert!(
        probe_web(&c, &format!("{base}/redir"), T)
            .await
            .is_healthy()
    );
    // /hop/4 → … → /hop/0 → /ok: 5 redirects.
    assert!(
        probe_web(&c, &format!("{base}/hop/4"), T)
            .await
            .is_healthy()
    );
    // 6 redirects is one too many.
    let v = probe_web(&c, &format!("{base}/hop/5"), T).await;
    assert!(detail(&v).contains("more than 5 redirects"), "{v:?}");
}

#[tokio::test]
async fn web_cross_origin_redirect_is_unhealthy() {
    let base = server().await;
    let v = probe_web(&probe_client(), &format!("{base}/cross"), T).await;
    assert!(
        detail(&v).contains("redirect to another origin (http://localhost:"),
        "{v:?}"
    );
    // A client that follows redirects by itself is caught by the final URL's origin.
    let following = reqwest::Client::builder().no_proxy().build().unwrap();
    let v = probe_web(&following, &format!("{base}/cross"), T).await;
    assert!(detail(&v).contains("another origin"), "{v:?}");
}

#[tokio::test]
async fn web_asset_redirects_follow_the_same_rules() {
    let base = server().await;
    let v = probe_web(&probe_client(), &format!("{base}/asset-redirects"), T).await;
    // moved.js → main.js (same origin) passes; elsewhere.js → another origin fails.
    assert_eq!(
        detail(&v),
        format!(
            "asset /_next/static/chunks/elsewhere.js failed: redirect to another origin ({}) refused",
            base.replace("127.0.0.1", "localhost")
        )
    );
}

#[tokio::test]
async fn web_slow_asset_times_out_within_the_probe_timeout() {
    let base = server().await;
    let t0 = Instant::now();
    let v = probe_web(&probe_client(), &format!("{base}/slow-asset"), T).await;
    assert_eq!(
        detail(&v),
        "asset /_next/static/chunks/slow.js failed: timed out after 800 ms (body included)"
    );
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn web_connection_refused_and_non_loopback_are_unhealthy() {
    let port = dead_port().await;
    let v = probe_web(&probe_client(), &format!("http://127.0.0.1:{port}/"), T).await;
    assert!(detail(&v).contains("no answer"), "{v:?}");
    let v = probe_web(&probe_client(), "http://192.0.2.1/", T).await;
    assert!(detail(&v).contains("loopback"), "{v:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// readiness and liveness

#[tokio::test]
async fn middleware_readiness_verdicts() {
    let base = server().await;
    let c = probe_client();
    assert_eq!(
        probe_middleware(&c, &format!("{base}/mw/ok"), T).await,
        ProbeVerdict::Healthy { degraded: false }
    );
    assert_eq!(
        probe_middleware(&c, &format!("{base}/mw/degraded"), T).await,
        ProbeVerdict::Healthy { degraded: true }
    );
    match probe_middleware(&c, &format!("{base}/mw/503json"), T).await {
        ProbeVerdict::Unhealthy {
            detail,
            readiness_503_json,
        } => {
            assert!(readiness_503_json);
            assert!(detail.contains("HTTP 503"), "{detail}");
        }
        h => panic!("{h:?}"),
    }
    for path in ["/mw/503html", "/mw/500json", "/mw/redirect"] {
        match probe_middleware(&c, &format!("{base}{path}"), T).await {
            ProbeVerdict::Unhealthy {
                readiness_503_json, ..
            } => assert!(!readiness_503_json, "{path}"),
            h => panic!("{path}: {h:?}"),
        }
    }
}

#[tokio::test]
async fn readiness_timeouts_include_the_body() {
    let base = server().await;
    let c = probe_client();
    for path in ["/mw/slow", "/mw/slowbody"] {
        let t0 = Instant::now();
        let v = probe_middleware(&c, &format!("{base}{path}"), T).await;
        assert!(
            detail(&v).contains("timed out after 800 ms"),
            "{path}: {v:?}"
        );
        assert!(
            t0.elapsed() < Duration::from_millis(1600),
            "{path}: {:?}",
            t0.elapsed()
        );
    }
}

#[tokio::test]
async fn realtime_readiness_is_2xx_only() {
    let base = server().await;
    let c = probe_client();
    // Realtime never reports degraded.
    assert_eq!(
        probe_realtime(&c, &format!("{base}/mw/degraded"), T).await,
        ProbeVerdict::Healthy { degraded: false }
    );
    match probe_realtime(&c, &format!("{base}/mw/503json"), T).await {
        ProbeVerdict::Unhealthy {
            readiness_503_json, ..
        } => assert!(readiness_503_json),
        h => panic!("{h:?}"),
    }
    let port = dead_port().await;
    let v = probe_realtime(&c, &format!("http://127.0.0.1:{port}/api/health/ready"), T).await;
    match &v {
        ProbeVerdict::Unhealthy {
            detail,
            readiness_503_json,
        } => {
            assert!(!readiness_503_json);
            assert!(detail.contains("no answer"), "{detail}");
        }
        h => panic!("{h:?}"),
    }
}

#[tokio::test]
async fn liveness_needs_2xx_with_a_json_body() {
    let base = server().await;
    let c = probe_client();
    assert!(probe_live(&c, &format!("{base}/live/ok"), T).await);
    assert!(!probe_live(&c, &format!("{base}/live/text"), T).await);
    assert!(!probe_live(&c, &format!("{base}/live/500"), T).await);
    assert!(!probe_live(&c, &format!("{base}/mw/slow"), T).await);
    assert!(!probe_live(&c, &format!("http://127.0.0.1:{}/", dead_port().await), T).await);
}

#[test]
fn live_urls_keep_the_readiness_origin() {
    assert_eq!(
        live_url_for(
            "http://127.0.0.1:3000/api/v1/health/ready",
            LiveService::Middleware
        ),
        "http://127.0.0.1:3000/api/v1/health/live"
    );
    assert_eq!(
        live_url_for(
            "http://127.0.0.1:3002/api/health/ready",
            LiveService::Realtime
        ),
        "http://127.0.0.1:3002/api/health/live"
    );
}
