//! The sandbox against its contract (design/vizora-api.md, fixtures/README.md): reqwest against a sandbox started
//! in-process on free ports with the demo tenant.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use vizora_ops::sandbox::{
    DEMO_FIXTURE, FaultSpec, ListShape, Sandbox, SandboxOptions, Service, ServiceState,
};

const EMAIL: &str = "ops@example.test";
const PASSWORD: &str = "ops-demo-password";

async fn start(throttle: bool) -> Sandbox {
    Sandbox::start(
        DEMO_FIXTURE,
        SandboxOptions {
            throttle,
            ..SandboxOptions::default()
        },
    )
    .await
    .expect("sandbox starts")
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Session {
    token: String,
    /// `name=value` pairs from the login's Set-Cookie headers.
    cookies: Vec<(String, String)>,
}

impl Session {
    fn cookie(&self, name: &str) -> String {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

async fn login(c: &Client, sb: &Sandbox) -> Session {
    let r = c
        .post(format!("{}/api/v1/auth/login", sb.api_url))
        .json(&json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let b: Value = r.json().await.unwrap();
    Session {
        token: b["data"]["access_token"].as_str().unwrap().to_string(),
        cookies,
    }
}

async fn get(c: &Client, sb: &Sandbox, s: &Session, path: &str) -> (StatusCode, Value) {
    let r = c
        .get(format!("{}{path}", sb.api_url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn post(
    c: &Client,
    sb: &Sandbox,
    s: &Session,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = c
        .post(format!("{}{path}", sb.api_url))
        .bearer_auth(&s.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn patch(
    c: &Client,
    sb: &Sandbox,
    s: &Session,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = c
        .patch(format!("{}{path}", sb.api_url))
        .bearer_auth(&s.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn control(c: &Client, sb: &Sandbox, path: &str, body: Value) -> Value {
    let r = c
        .post(format!("{}{path}", sb.control_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "control {path}: {}", r.status());
    r.json().await.unwrap()
}

fn age_s(iso: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(iso).unwrap();
    (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
}

#[tokio::test]
async fn login_cookies_and_logout_with_csrf() {
    let sb = start(false).await;
    let c = client();
    // Wrong password and unknown keys.
    let r = c
        .post(format!("{}/api/v1/auth/login", sb.api_url))
        .json(&json!({"email": EMAIL, "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["message"], "Invalid email or password");
    let r = c
        .post(format!("{}/api/v1/auth/login", sb.api_url))
        .json(&json!({"email": EMAIL, "password": PASSWORD, "remember": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["message"], json!(["property remember should not exist"]));

    let r = c
        .post(format!("{}/api/v1/auth/login", sb.api_url))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let names: HashSet<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split('=').next().unwrap().to_string())
        .collect();
    for n in [
        "vizora_auth_token",
        "vizora_refresh_token",
        "vizora_csrf_token",
    ] {
        assert!(names.contains(n), "missing cookie {n}");
    }
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["success"], true);
    assert_eq!(b["data"]["expiresIn"], 1800);
    assert!(b["data"]["user"].get("password").is_none());
    assert_eq!(b["data"]["user"]["role"], "manager");
    // The JWT carries the documented claims.
    let tok = b["data"]["access_token"].as_str().unwrap();
    let payload = tok.split('.').nth(1).unwrap();
    let claims: Value = {
        let s = payload.replace('-', "+").replace('_', "/");
        serde_json::from_slice(&base64_decode(&s)).unwrap()
    };
    for k in [
        "sub",
        "email",
        "organizationId",
        "role",
        "isSuperAdmin",
        "type",
        "jti",
        "iat",
        "exp",
    ] {
        assert!(claims.get(k).is_some(), "claim {k}");
    }

    let s = login(&c, &sb).await;
    // No auth at all → 401.
    let r = c
        .get(format!("{}/api/v1/displays", sb.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Cookie auth works for reads.
    let r = c
        .get(format!("{}/api/v1/displays", sb.api_url))
        .header("cookie", s.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Logout with cookies but without the CSRF header → 403; without the CSRF cookie → 403 "CSRF cookie missing".
    let url = format!("{}/api/v1/auth/logout", sb.api_url);
    let r = c
        .post(&url)
        .bearer_auth(&s.token)
        .header("cookie", s.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Invalid CSRF token"
    );
    let no_csrf = format!(
        "vizora_auth_token={}; vizora_refresh_token={}",
        s.cookie("vizora_auth_token"),
        s.cookie("vizora_refresh_token")
    );
    let r = c
        .post(&url)
        .bearer_auth(&s.token)
        .header("cookie", no_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "CSRF cookie missing"
    );
    assert_eq!(sb.sessions().logouts, 0);
    // Proper logout: cookies + X-CSRF-Token → 201, refresh revoked.
    let r = c
        .post(&url)
        .bearer_auth(&s.token)
        .header("cookie", s.cookie_header())
        .header("x-csrf-token", s.cookie("vizora_csrf_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b,
        json!({"success": true, "message": "Logged out successfully"})
    );
    let st = sb.sessions();
    assert_eq!((st.logouts, st.refresh_revoked), (1, 1));
    // The revoked token is refused.
    let (code, b) = get(&c, &sb, &s, "/api/v1/displays").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(b["message"], "Token has been revoked");
    // Recorded requests say what was sent.
    let reqs = sb.requests();
    let last_logout = reqs
        .iter()
        .rev()
        .find(|r| r.path == "/api/v1/auth/logout" && r.status == 201)
        .unwrap();
    assert!(last_logout.has_cookie && last_logout.csrf_header);
    sb.shutdown().await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for ch in s.bytes() {
        if ch == b'=' {
            break;
        }
        let v = alphabet.iter().position(|&a| a == ch).unwrap() as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test]
async fn pagination_meta_and_limits() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (code, b) = get(&c, &sb, &s, "/api/v1/content").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(b["data"]["meta"]["limit"], 10);
    assert_eq!(b["data"]["data"].as_array().unwrap().len(), 10);
    let total = b["data"]["meta"]["total"].as_u64().unwrap();
    assert_eq!(total, 288);
    // Walk every page at limit 100: ids unique, count = total, createdAt descending.
    let mut ids = HashSet::new();
    let mut last = String::from("9999");
    for page in 1.. {
        let (_, b) = get(
            &c,
            &sb,
            &s,
            &format!("/api/v1/content?page={page}&limit=100"),
        )
        .await;
        let items = b["data"]["data"].as_array().unwrap().clone();
        assert_eq!(b["data"]["meta"]["totalPages"], 3);
        for it in &items {
            ids.insert(it["id"].as_str().unwrap().to_string());
            let ca = it["createdAt"].as_str().unwrap().to_string();
            assert!(ca <= last, "content not in createdAt desc order");
            last = ca;
            // Narrow projection: no expiresAt/url in the list.
            assert!(it.get("expiresAt").is_none() && it.get("url").is_none());
            assert_eq!(it["title"], it["name"]);
        }
        if items.len() < 100 {
            break;
        }
    }
    assert_eq!(ids.len() as u64, total);
    // limit 101 and page 0 → 400 with the class-validator messages.
    let (code, b) = get(&c, &sb, &s, "/api/v1/content?limit=101").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"statusCode": 400, "message": ["limit must not be greater than 100"], "error": "Bad Request"})
    );
    let (code, b) = get(&c, &sb, &s, "/api/v1/displays?page=0").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(b["message"], json!(["page must not be less than 1"]));
    // The content list accepts its declared filters.
    let (code, b) = get(&c, &sb, &s, "/api/v1/content?status=active&limit=100").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        b["data"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "active")
    );
    // Playlists carry derived fields; schedules carry the full display row.
    let (_, b) = get(&c, &sb, &s, "/api/v1/playlists?limit=100").await;
    let p = &b["data"]["data"][0];
    assert_eq!(
        p["itemCount"].as_u64().unwrap() as usize,
        p["items"].as_array().unwrap().len()
    );
    assert!(p["_count"]["schedules"].is_u64() && p["totalDuration"].is_i64());
    let (_, b) = get(&c, &sb, &s, "/api/v1/schedules?limit=100").await;
    let with_display = b["data"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["display"].is_object())
        .unwrap();
    assert!(with_display["display"].get("jwtToken").is_some());
    assert!(
        with_display["playlist"].is_null() || with_display["playlist"]["_count"]["items"].is_u64()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn unknown_query_key_dev_and_production_forms() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (code, b) = get(&c, &sb, &s, "/api/v1/schedules?isActive=true").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        json!({"statusCode": 400, "message": ["property isActive should not exist"], "error": "Bad Request"})
    );
    control(&c, &sb, "/errors", json!({"mode": "production"})).await;
    let (code, b) = get(&c, &sb, &s, "/api/v1/schedules?isActive=true").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(b, json!({"statusCode": 400, "message": "Bad Request"}));
    // Unknown body keys too, and the status the DTO refuses.
    let (_, list) = get(&c, &sb, &s, "/api/v1/content?limit=1").await;
    let id = list["data"]["data"][0]["id"].as_str().unwrap().to_string();
    sb.set_production_errors(false);
    let (code, b) = patch(
        &c,
        &sb,
        &s,
        &format!("/api/v1/content/{id}"),
        json!({"status": "archived"}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(b["message"], json!(["property status should not exist"]));
    sb.shutdown().await;
}

#[tokio::test]
async fn archive_is_idempotent_and_404s_differ() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (_, b) = get(&c, &sb, &s, "/api/v1/content?status=active&limit=1").await;
    let id = b["data"]["data"][0]["id"].as_str().unwrap().to_string();
    let (_, storage_before) = get(&c, &sb, &s, "/api/v1/organizations/storage").await;
    for _ in 0..2 {
        let (code, b) = post(
            &c,
            &sb,
            &s,
            &format!("/api/v1/content/{id}/archive"),
            json!({}),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
        assert_eq!(b["data"]["status"], "archived");
        assert!(b["data"].get("title").is_none(), "raw row has no aliases");
    }
    assert_eq!(sb.entity("content", &id).unwrap()["status"], "archived");
    let (_, storage_after) = get(&c, &sb, &s, "/api/v1/organizations/storage").await;
    assert_eq!(storage_before, storage_after, "archiving frees no quota");
    let (code, b) = post(
        &c,
        &sb,
        &s,
        "/api/v1/content/cabcdefghijklmnopqrstuvwxy/archive",
        json!({}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        b,
        json!({"statusCode": 404, "message": "Content not found", "error": "Not Found"})
    );
    let (code, b) = post(&c, &sb, &s, "/api/v1/content/not-an-id/archive", json!({})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("Validation failed")
    );
    let (code, b) = post(
        &c,
        &sb,
        &s,
        "/api/v1/displays/ping",
        json!({"displayId": "x"}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(b["message"], "Cannot POST /api/v1/displays/ping");
    let r = c
        .delete(format!("{}/api/v1/content/{id}", sb.api_url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        format!("Cannot DELETE /api/v1/content/{id}")
    );
    // Restore brings it back.
    let (code, b) = post(
        &c,
        &sb,
        &s,
        &format!("/api/v1/content/{id}/restore"),
        json!({}),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(b["data"]["status"], "active");
    sb.shutdown().await;
}

#[tokio::test]
async fn display_patch_rules() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (_, b) = get(&c, &sb, &s, "/api/v1/displays?limit=1").await;
    let id = b["data"]["data"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/displays/{id}");
    let (code, b) = patch(&c, &sb, &s, &path, json!({"status": "inactive"})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["message"],
        json!(["status must be one of the following values: online, offline, error"])
    );
    let (code, _) = patch(&c, &sb, &s, &path, json!({"isDisabled": false})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let (code, b) = patch(
        &c,
        &sb,
        &s,
        &path,
        json!({"currentPlaylistId": "cabcdefghijklmnopqrstuvwxy"}),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        b["message"],
        "Playlist not found or does not belong to your organization"
    );
    let (_, pl) = get(&c, &sb, &s, "/api/v1/playlists?limit=1").await;
    let pid = pl["data"]["data"][0]["id"].as_str().unwrap().to_string();
    let (code, b) = patch(
        &c,
        &sb,
        &s,
        &path,
        json!({"currentPlaylistId": pid, "status": "offline"}),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(b["data"]["currentPlaylistId"], json!(pid));
    assert!(b["data"]["groups"].is_array() && b["data"]["schedules"].is_array());
    let (code, _) = get(&c, &sb, &s, "/api/v1/displays/not-a-uuid").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    sb.shutdown().await;
}

#[tokio::test]
async fn fault_injection_status_retry_after_and_delay() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    control(
        &c,
        &sb,
        "/faults",
        json!({"path": "/api/v1/displays", "status": 503, "count": 1}),
    )
    .await;
    let (code, _) = get(&c, &sb, &s, "/api/v1/displays").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let (code, _) = get(&c, &sb, &s, "/api/v1/displays").await;
    assert_eq!(code, StatusCode::OK);

    control(&c, &sb, "/faults", json!({"method": "GET", "path": "/api/v1/content*", "status": 429, "retryAfter": 2, "count": 2})).await;
    for _ in 0..2 {
        let r = c
            .get(format!("{}/api/v1/content?limit=5", sb.api_url))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "2");
    }
    let (code, _) = get(&c, &sb, &s, "/api/v1/content").await;
    assert_eq!(code, StatusCode::OK);

    sb.add_fault(FaultSpec {
        path: "/api/v1/organizations/current".into(),
        delay_ms: Some(400),
        ..FaultSpec::default()
    });
    let t = std::time::Instant::now();
    let (code, b) = get(&c, &sb, &s, "/api/v1/organizations/current").await;
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(code, StatusCode::OK);
    assert_eq!(b["data"]["name"], "Fernhill Outdoor Ltd");

    control(&c, &sb, "/faults", json!({"path": "/api/v1/schedules", "status": 200, "rawBody": "{\"success\":true,\"data\":"})).await;
    let r = c
        .get(format!("{}/api/v1/schedules", sb.api_url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.json::<Value>().await.is_err(),
        "malformed JSON is sent as-is"
    );
    // Faulted requests are recorded with the status they got.
    assert!(
        sb.requests()
            .iter()
            .any(|r| r.path == "/api/v1/displays" && r.status == 503)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn list_shape_unknown() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    control(
        &c,
        &sb,
        "/list-shape",
        json!({"path": "/api/v1/content", "shape": "unknown"}),
    )
    .await;
    let (_, b) = get(&c, &sb, &s, "/api/v1/content").await;
    assert!(b["data"].is_object());
    assert!(b["data"].get("data").is_none() && b["data"].get("items").is_none());
    sb.set_list_shape("/api/v1/content", ListShape::Bare);
    let (_, b) = get(&c, &sb, &s, "/api/v1/content").await;
    assert!(b["data"].is_array());
    sb.set_list_shape("/api/v1/content", ListShape::Normal);
    let (_, b) = get(&c, &sb, &s, "/api/v1/content").await;
    assert!(b["data"]["data"].is_array());
    sb.shutdown().await;
}

#[tokio::test]
async fn services_down_refuse_connections_and_restart() {
    let sb = start(false).await;
    let c = client();
    let r = c.get(format!("{}/", sb.web_url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let js = html
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(js.starts_with("/_next/static/chunks/main-") && js.ends_with(".js"));
    assert!(html.contains("/_next/static/css/"));
    assert_eq!(
        c.get(format!("{}{js}", sb.web_url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    control(&c, &sb, "/services/web", json!({"state": "down"})).await;
    control(&c, &sb, "/services/realtime", json!({"state": "down"})).await;
    let e = c.get(format!("{}/", sb.web_url)).send().await.unwrap_err();
    assert!(e.is_connect(), "web: {e:?}");
    let e = c
        .get(format!("{}/api/health/ready", sb.realtime_url))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "realtime: {e:?}");

    control(&c, &sb, "/services/web/restart", json!({})).await;
    sb.restart_service(Service::Realtime);
    assert_eq!(
        c.get(format!("{}/", sb.web_url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = c
        .get(format!("{}/api/health/ready", sb.realtime_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "ready", "ready": true})
    );
    let svcs: Value = c
        .get(format!("{}/services", sb.control_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(svcs["web"]["restarts"], 1);
    assert_eq!(svcs["realtime"]["state"], "healthy");

    // Unhealthy: readiness 503 with a JSON body, liveness 200.
    sb.set_service(Service::Api, ServiceState::Unhealthy);
    let r = c
        .get(format!("{}/api/v1/health/ready", sb.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "unhealthy");
    let r = c
        .get(format!("{}/api/v1/health/live", sb.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["status"], "ok");
    sb.set_service(Service::Realtime, ServiceState::Unhealthy);
    let r = c
        .get(format!("{}/api/health/ready", sb.realtime_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    sb.set_service(Service::Web, ServiceState::AssetsBroken);
    assert_eq!(
        c.get(format!("{}{js}", sb.web_url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // API down: transport failure on API routes, control API still answers.
    sb.set_service(Service::Api, ServiceState::Down);
    let e = c
        .get(format!("{}/api/v1/health/ready", sb.api_url))
        .send()
        .await
        .unwrap_err();
    assert!(!e.is_status(), "{e:?}");
    let r = c
        .get(format!("{}/services", sb.control_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["api"]["state"], "down");
    sb.restart_service(Service::Api);
    let r = c
        .get(format!("{}/api/v1/health/ready", sb.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["status"], "ok");
    sb.shutdown().await;
}

#[tokio::test]
async fn throttle_429_after_ten_per_second() {
    let sb = start(true).await;
    let c = client();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..11 {
        let r = c
            .get(format!("{}/api/v1/health/live", sb.api_url))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let b: Value = r.json().await.unwrap();
            assert_eq!(
                b,
                json!({"statusCode": 429, "message": "ThrottlerException: Too Many Requests"})
            );
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert_eq!(&statuses[..10], &[200; 10]);
    assert_eq!(statuses[10], 429);
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Control routes are never throttled; turning throttling off admits again.
    control(&c, &sb, "/throttle", json!({"enabled": false})).await;
    let r = c
        .get(format!("{}/api/v1/health/live", sb.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Logins: 5 per minute per IP.
    sb.set_throttle(true);
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = c
            .post(format!("{}/api/v1/auth/login", sb.api_url))
            .json(&json!({"email": EMAIL, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers()["retry-after"], "60");
        }
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, vec![201, 201, 201, 201, 201, 429]);
    sb.shutdown().await;
}

#[tokio::test]
async fn fleet_commands_capped_at_ten_per_minute() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (_, b) = get(&c, &sb, &s, "/api/v1/displays?limit=100").await;
    let online = b["data"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] == "online" && age_s(d["lastHeartbeat"].as_str().unwrap()) < 60.0)
        .unwrap();
    let id = online["id"].as_str().unwrap().to_string();
    for i in 0..10 {
        let (code, b) = post(
            &c,
            &sb,
            &s,
            "/api/v1/fleet/commands",
            json!({"command": "reload", "target": {"type": "device", "id": id}}),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "command {i}: {b}");
        let d = &b["data"];
        assert_eq!(
            (
                d["devicesTargeted"].as_u64(),
                d["devicesOnline"].as_u64(),
                d["devicesQueued"].as_u64()
            ),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(d["target"]["type"], "device");
    }
    let (code, b) = post(
        &c,
        &sb,
        &s,
        "/api/v1/fleet/commands",
        json!({"command": "reload", "target": {"type": "device", "id": id}}),
    )
    .await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        b["message"],
        "Fleet command rate limit exceeded. Max 10 commands per minute."
    );
    // A minute later (sandbox clock) it admits again; an unknown device is 404.
    sb.advance_clock(61.0);
    let (code, b) = post(&c, &sb, &s, "/api/v1/fleet/commands", json!({"command": "reload", "target": {"type": "device", "id": "00000000-0000-4000-8000-000000000000"}})).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{b}");
    let (code, _) = post(
        &c,
        &sb,
        &s,
        "/api/v1/fleet/commands",
        json!({"command": "ping", "target": {"type": "device", "id": id}}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    sb.shutdown().await;
}

#[tokio::test]
async fn rebasing_keeps_ages_and_live_heartbeats_stay_fresh() {
    // The fixture's own view: a display whose heartbeat was ~20 min old at capturedAt.
    let fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let captured =
        chrono::DateTime::parse_from_rfc3339(fx["capturedAt"].as_str().unwrap()).unwrap();
    let (id, age) = fx["displays"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| {
            let hb = chrono::DateTime::parse_from_rfc3339(d["lastHeartbeat"].as_str()?).ok()?;
            let a = (captured - hb).num_seconds();
            (900..3600)
                .contains(&a)
                .then(|| (d["id"].as_str().unwrap().to_string(), a as f64))
        })
        .next()
        .unwrap();
    let live = fx["displays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| {
            d["lastHeartbeat"].as_str().is_some_and(|h| {
                (captured - chrono::DateTime::parse_from_rfc3339(h).unwrap()).num_seconds() < 60
            })
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (_, b) = get(&c, &sb, &s, &format!("/api/v1/displays/{id}")).await;
    let now_age = age_s(b["data"]["lastHeartbeat"].as_str().unwrap());
    assert!(
        (now_age - age).abs() < 5.0,
        "age {now_age} vs {age} at capture"
    );
    let (_, b) = get(&c, &sb, &s, &format!("/api/v1/displays/{live}")).await;
    assert!(age_s(b["data"]["lastHeartbeat"].as_str().unwrap()).abs() < 5.0);
    // Stay-offline freezes it; reconnect refreshes an old one.
    control(
        &c,
        &sb,
        &format!("/displays/{live}/stay-offline"),
        json!({}),
    )
    .await;
    sb.advance_clock(600.0);
    let (_, b) = get(&c, &sb, &s, &format!("/api/v1/displays/{live}")).await;
    let hb =
        chrono::DateTime::parse_from_rfc3339(b["data"]["lastHeartbeat"].as_str().unwrap()).unwrap();
    assert!(
        (sb.now() - hb.with_timezone(&chrono::Utc)).num_seconds() >= 599,
        "frozen heartbeat ages with the sandbox clock"
    );
    assert!(sb.reconnect_display(&id));
    let e = sb.entity("displays", &id).unwrap();
    assert_eq!(e["status"], "online");
    assert!(e["_sandbox"]["online"].as_bool().unwrap());
    // The mark-offline job only runs when told.
    let r = control(&c, &sb, "/jobs/mark-offline", json!({})).await;
    assert!(r["markedOffline"].as_u64().unwrap() >= 1);
    assert_eq!(sb.entity("displays", &live).unwrap()["status"], "offline");
    sb.shutdown().await;
}

#[tokio::test]
async fn ops_status_round_trip() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (code, b) = get(&c, &sb, &s, "/api/v1/health/ops-status").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        b["data"],
        json!({"systemStatus": "unknown", "message": "No ops data available"})
    );
    let state = json!({"systemStatus": "DEGRADED", "lastUpdated": "2026-08-26T13:42:17.000Z", "incidents": [{"id": "x", "message": "  padded  "}]});
    let (code, b) = post(&c, &sb, &s, "/api/v1/health/ops-status", state).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(b, json!({"success": true, "data": {"status": "ok"}}));
    let (_, b) = get(&c, &sb, &s, "/api/v1/health/ops-status").await;
    assert_eq!(b["data"]["systemStatus"], "DEGRADED");
    assert_eq!(b["data"]["incidents"][0]["message"], "padded");
    // > 100 kB → 413; expiry after 3600 s of sandbox time.
    let big = json!({"blob": "x".repeat(110 * 1024)});
    let (code, _) = post(&c, &sb, &s, "/api/v1/health/ops-status", big).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    sb.advance_clock(3601.0);
    let s2 = login(&c, &sb).await;
    let (_, b) = get(&c, &sb, &s2, "/api/v1/health/ops-status").await;
    assert_eq!(b["data"]["systemStatus"], "unknown");
    sb.shutdown().await;
}

/// Issue 9: `GET /__sandbox/requests` showed the login password in clear. The request log is redacted like every
/// other log (agents.md 5.9): the login body keeps its keys, the password reads `[REDACTED]`, nowhere in clear.
#[tokio::test]
async fn sandbox_request_log_never_shows_the_login_password() {
    let sb = start(false).await;
    let c = client();
    let _s = login(&c, &sb).await;
    let r = c
        .get(format!(
            "{}/requests?path=/api/v1/auth/login",
            sb.control_url
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(PASSWORD),
        "password in the request log: {text}"
    );
    let log: Value = serde_json::from_str(&text).unwrap();
    let body = &log.as_array().unwrap()[0]["body"];
    assert_eq!(body["email"], EMAIL);
    assert_eq!(body["password"], "[REDACTED]");
    let inproc = serde_json::to_string(&sb.requests()).unwrap();
    assert!(!inproc.contains(PASSWORD));
    sb.shutdown().await;
}

/// The list-truncation fault: a list answers its first N items with a consistent `meta.total` = N (a lying but
/// self-consistent list) while detail reads still find every entity; `items: null` undoes it.
#[tokio::test]
async fn list_truncate_cuts_a_list_with_a_consistent_total_and_detail_reads_still_work() {
    let sb = start(false).await;
    let c = client();
    let s = login(&c, &sb).await;
    let (_, full) = get(&c, &sb, &s, "/api/v1/playlists?page=1&limit=100").await;
    let all = full["data"]["data"].as_array().unwrap().clone();
    assert!(all.len() > 3);
    control(
        &c,
        &sb,
        "/list-truncate",
        json!({"path": "/api/v1/playlists", "items": 3}),
    )
    .await;
    let (_, b) = get(&c, &sb, &s, "/api/v1/playlists?page=1&limit=100").await;
    assert_eq!(b["data"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(b["data"]["meta"]["total"], 3);
    assert_eq!(b["data"]["meta"]["totalPages"], 1);
    let hidden = all.last().unwrap()["id"].as_str().unwrap();
    let (st, _) = get(&c, &sb, &s, &format!("/api/v1/playlists/{hidden}")).await;
    assert_eq!(st, StatusCode::OK, "detail reads are not cut");
    control(
        &c,
        &sb,
        "/list-truncate",
        json!({"path": "/api/v1/playlists", "items": null}),
    )
    .await;
    let (_, b) = get(&c, &sb, &s, "/api/v1/playlists?page=1&limit=100").await;
    assert_eq!(b["data"]["meta"]["total"], all.len());
    sb.shutdown().await;
}

/// Issue 9: `vizora-ops sandbox` defaulted to port 3000 (Vizora's own API port), and its banner suggested a dry run
/// that took 63 s on the demo tenant (the client's 100/min budget) with no progress. Without `--port` it now serves on
/// free high ports it prints, and with `--no-throttle` the banner's command (copied as printed, run from an empty
/// directory) finishes in seconds without a budget wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_banner_command_finishes_in_seconds_on_a_free_high_port() {
    use tokio::io::AsyncBufReadExt;
    const BIN: &str = env!("CARGO_BIN_EXE_vizora-ops");
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["sandbox", "--no-throttle"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sandbox starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let read = async {
        while let Some(l) = lines.next_line().await.unwrap() {
            let done = l.starts_with("Ctrl-C");
            banner.push(l);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("banner within 30 s");
    let api = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("api:"))
        .expect("api URL printed")
        .trim()
        .to_string();
    let port: u16 = api.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 3000, "not Vizora's own port");
    assert!(port >= 10_000, "a high port: {port}");
    let cmdline = banner
        .iter()
        .find(|l| l.contains("vizora-ops run "))
        .expect("the banner gives a command")
        .trim()
        .to_string();
    assert!(
        cmdline.contains(&format!("VALIDATOR_BASE_URL={api}")),
        "{cmdline}"
    );
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "vizora-ops").unwrap();
    let mut run = tokio::process::Command::new(BIN);
    run.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .kill_on_drop(true);
    for kv in &words[..at] {
        let (k, v) = kv.split_once('=').expect("VAR=value");
        run.env(k, v);
    }
    // The heaviest agent on the demo tenant (288 content items, 88 detail reads) through the same overrides.
    for agent in [words[at + 2], "content-lifecycle"] {
        let mut args: Vec<&str> = words[at + 1..].to_vec();
        args[1] = agent;
        let t0 = std::time::Instant::now();
        let out = tokio::time::timeout(Duration::from_secs(60), run.args(&args).output())
            .await
            .expect("finishes")
            .unwrap();
        run = tokio::process::Command::new(BIN);
        run.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(dir.path())
            .kill_on_drop(true);
        for kv in &words[..at] {
            let (k, v) = kv.split_once('=').unwrap();
            run.env(k, v);
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{agent}: findings remain: {err}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{agent} took {:?}",
            t0.elapsed()
        );
        assert!(!err.contains("waiting"), "{agent} waited: {err}");
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// Every wait says what it waits for and until when, once per wait however many tasks wait (issue 9: "waiting 48 s"
/// with no progress, one line per concurrent walk). Here a `429 Retry-After: 3` hits the first page of each of the
/// four concurrent list walks: they all wait for the same instant, so one line says it, with its end and its cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wait_says_what_for_and_until_when_once_per_wait() {
    const BIN: &str = env!("CARGO_BIN_EXE_vizora-ops");
    let sb = start(false).await;
    for list in ["schedules", "displays", "playlists", "display-groups"] {
        sb.add_fault(FaultSpec {
            method: Some("GET".into()),
            path: format!("/api/v1/{list}"),
            status: Some(429),
            retry_after: Some(json!(3)),
            count: 1,
            ..Default::default()
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(BIN)
            .args(["run", "schedule-doctor", "--dry-run"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VALIDATOR_BASE_URL", &sb.api_url)
            .env("OPS_EMAIL", EMAIL)
            .env("OPS_PASSWORD", PASSWORD)
            .env("OPS_LOG_DIR", dir.path())
            .env("OPS_RATE_LIMIT_BACKEND", "memory")
            .current_dir(dir.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("finishes")
    .unwrap();
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let waits: Vec<&str> = log.lines().filter(|l| l.contains("waiting")).collect();
    assert!(!waits.is_empty(), "the waits are announced: {log}");
    assert_eq!(
        waits.len(),
        1,
        "one line per wait, not per walk: {waits:#?}"
    );
    for w in &waits {
        assert!(
            w.contains(", until ") && w.contains(" UTC, for "),
            "until when: {w}"
        );
        assert!(w.contains("Retry-After"), "what for: {w}");
    }
    sb.shutdown().await;
}

/// Issue 10: the control API moved from a hand-routed branch of the API handler into an axum router nested under
/// `/__sandbox` (`src/sandbox/router.rs`). Its answers stay as they were: the index with and without the trailing
/// slash, 404 `{error}` for an unknown route or method, 400 for a body that is not JSON on any route, never recorded,
/// never hit by an API fault, and still answering while the API service is down.
#[tokio::test]
async fn control_api_nested_in_the_one_router_answers_as_before() {
    let sb = start(false).await;
    let c = client();
    for url in [sb.control_url.clone(), format!("{}/", sb.control_url)] {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["routes"].as_array().map(Vec::len), Some(20), "{url}: {b}");
        assert_eq!(b["services"]["api"]["state"], "healthy", "{url}: {b}");
    }
    for (method, path) in [
        (reqwest::Method::GET, "/nope"),
        (reqwest::Method::DELETE, "/clock"),
        (reqwest::Method::GET, "/services/api/restart"),
    ] {
        let r = c
            .request(method.clone(), format!("{}{path}", sb.control_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({ "error": format!("unknown control route: {method} /__sandbox{path}") })
        );
    }
    for path in ["/clock", "/requests/clear"] {
        let r = c
            .post(format!("{}{path}", sb.control_url))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let b: Value = r.json().await.unwrap();
        assert!(
            b["error"]
                .as_str()
                .unwrap_or("")
                .starts_with("invalid JSON: "),
            "{path}: {b}"
        );
    }
    // A fault matching every path of the API port applies to the API only.
    control(
        &c,
        &sb,
        "/faults",
        json!({ "path": "*", "status": 500, "count": 3 }),
    )
    .await;
    let r = c
        .get(format!("{}/clock", sb.control_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(format!("{}/api/v1/health", sb.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    control(&c, &sb, "/faults/clear", json!({})).await;
    // The API down: its requests fail, the control API still answers and brings it back.
    control(&c, &sb, "/services/api", json!({ "state": "down" })).await;
    match c.get(format!("{}/api/v1/health", sb.api_url)).send().await {
        Ok(r) => assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE),
        Err(e) => assert!(e.is_connect() || e.is_request(), "{e:?}"),
    }
    let svcs: Value = client()
        .get(format!("{}/services", sb.control_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(svcs["api"]["state"], "down", "{svcs}");
    control(&c, &sb, "/services/api/restart", json!({})).await;
    let r = client()
        .get(format!("{}/api/v1/health", sb.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let log = sb.requests();
    assert!(
        log.iter().all(|r| !r.path.starts_with("/__sandbox")),
        "control requests are never recorded: {:?}",
        log.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(log.iter().any(|r| r.path == "/api/v1/health"));
    sb.shutdown().await;
}
