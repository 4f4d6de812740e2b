//! The sandbox's simulated services as a process manager (design README §1 `demo`, §4): `GET
//! {control_url}/services` lists them, `POST {control_url}/services/{svc}/restart` restarts one. Nothing runs on the
//! host; this is how the demo shows a restart and its verification safely.

use super::{CommandRecord, PmError, ProcStatus, ProcTarget, ProcessInfo, ProcessManager};
use async_trait::async_trait;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Sandbox service key, the app name health-guardian knows it by, and its pseudo pm_id.
const SERVICES: [(&str, &str, u32); 3] = [
    ("api", "vizora-middleware", 0),
    ("realtime", "vizora-realtime", 1),
    ("web", "vizora-web", 2),
];

/// Timeout of each control request (agents.md 5.6: like other local control calls, 10 s).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// The sandbox control API as a process manager (`OPS_PROCESS_MANAGER=sandbox`, `OPS_SANDBOX_CONTROL_URL`).
#[derive(Debug, Clone)]
pub struct SandboxProcessManager {
    /// Base of the control API, e.g. `http://127.0.0.1:4000/__sandbox` (a bare origin gets `/__sandbox`).
    pub control_url: String,
    /// HTTP client for the control API.
    pub client: reqwest::Client,
}

impl SandboxProcessManager {
    /// A manager for the control API at `control_url` (an origin without a path means `<origin>/__sandbox`).
    pub fn new(control_url: impl Into<String>) -> SandboxProcessManager {
        let mut control_url: String = control_url.into();
        if let Ok(u) = url::Url::parse(&control_url)
            && (u.path().is_empty() || u.path() == "/")
        {
            control_url = format!("{}/__sandbox", control_url.trim_end_matches('/'));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(CONTROL_TIMEOUT)
            .build()
            .unwrap_or_default();
        SandboxProcessManager {
            control_url: control_url.trim_end_matches('/').to_string(),
            client,
        }
    }

    fn base(&self) -> Result<&str, PmError> {
        if self.control_url.is_empty() {
            Err(PmError::Http(
                "OPS_SANDBOX_CONTROL_URL is not set".to_string(),
            ))
        } else {
            Ok(&self.control_url)
        }
    }

    /// The sandbox service key (`api`, `realtime`, `web`) and app name of a target.
    fn service_of(target: &ProcTarget) -> Result<(&'static str, &'static str), PmError> {
        let found = match target {
            ProcTarget::PmId(n) => SERVICES.iter().find(|(_, _, id)| id == n),
            ProcTarget::App(s) | ProcTarget::Unit(s) => {
                super::validate_name(s)?;
                let s = s.strip_suffix(".service").unwrap_or(s);
                SERVICES.iter().find(|(key, app, _)| *key == s || *app == s)
            }
        };
        found
            .map(|(k, a, _)| (*k, *a))
            .ok_or_else(|| PmError::Rejected(format!("{target} is not a sandbox service")))
    }

    async fn restart_service(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        let (svc, app) = Self::service_of(target)?;
        let url = format!("{}/services/{svc}/restart", self.base()?);
        let started = Instant::now();
        let resp = self
            .client
            .post(&url)
            .send()
            .await
            .map_err(|e| PmError::Http(format!("POST {url}: {}", chain(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let first = body
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            let first: String = first.chars().take(200).collect();
            return Err(PmError::Http(crate::redact::redact_str(&format!(
                "POST {url}: HTTP {status} {first}"
            ))));
        }
        Ok(CommandRecord {
            argv: vec![
                "sandbox".to_string(),
                "restart".to_string(),
                app.to_string(),
            ],
            exit_code: None,
            stderr_first_line: None,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

#[async_trait]
impl ProcessManager for SandboxProcessManager {
    fn kind(&self) -> &'static str {
        "sandbox"
    }

    /// `GET {control_url}/services`: `api`/`realtime`/`web` → `vizora-middleware`/`vizora-realtime`/`vizora-web`
    /// with pm_ids 0/1/2; a `down` service is `errored`, any other state `online`. A service missing from the
    /// answer is not listed.
    async fn list(&self) -> Result<Vec<ProcessInfo>, PmError> {
        let url = format!("{}/services", self.base()?);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| PmError::Http(format!("GET {url}: {}", chain(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(PmError::Http(format!("GET {url}: HTTP {status}")));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| PmError::Http(format!("GET {url}: body is not JSON: {}", chain(&e))))?;
        parse_services(&body)
            .ok_or_else(|| PmError::BadOutput(format!("GET {url}: unexpected JSON shape")))
    }

    /// `POST {control_url}/services/{svc}/restart`; recorded as `sandbox restart <app>`.
    async fn restart(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        self.restart_service(target).await
    }

    /// The sandbox has no reload: restarts (recorded as `sandbox restart <app>`, what really ran).
    async fn reload(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        self.restart_service(target).await
    }
}

/// Reads the services object (`{"api": {...}, ...}`, or the same under `services`, or an array of objects with a
/// `name`/`service` key). Each service's state is its `state` or `status` string (or a bare string).
fn parse_services(body: &Value) -> Option<Vec<ProcessInfo>> {
    let root = body
        .get("services")
        .or_else(|| body.get("data"))
        .unwrap_or(body);
    let entries: Vec<(String, &Value)> = match root {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|v| {
                let k = v
                    .get("name")
                    .or_else(|| v.get("service"))
                    .and_then(Value::as_str)?;
                Some((k.to_string(), v))
            })
            .collect(),
        _ => return None,
    };
    let mut out = Vec::new();
    for (key, app, id) in SERVICES {
        let Some((_, v)) = entries.iter().find(|(k, _)| k == key || k == app) else {
            continue;
        };
        let state = match v {
            Value::String(s) => Some(s.as_str()),
            _ => v
                .get("state")
                .or_else(|| v.get("status"))
                .and_then(Value::as_str),
        }?;
        let restarts = ["restarts", "restartCount", "restart_count", "restart_time"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_u64));
        out.push(ProcessInfo {
            name: app.to_string(),
            pm_id: Some(id),
            status: if state.eq_ignore_ascii_case("down") {
                ProcStatus::Errored
            } else {
                ProcStatus::Online
            },
            exec_mode: Some("fork_mode".to_string()),
            memory_bytes: None,
            max_memory_restart: None,
            restart_time: restarts,
            pm_uptime: None,
        });
    }
    Some(out)
}

/// An error with its sources, redacted (reqwest's top-level text alone hides the cause).
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
    crate::redact::redact_str(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_map_to_app_names_and_states() {
        let body = serde_json::json!({
            "api": {"state": "Down", "restarts": 2},
            "web": {"state": "Unhealthy", "restarts": 0},
            "realtime": {"state": "Up"}
        });
        let v = parse_services(&body).unwrap();
        let names: Vec<_> = v
            .iter()
            .map(|p| (p.name.as_str(), p.pm_id, p.status.clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("vizora-middleware", Some(0), ProcStatus::Errored),
                ("vizora-realtime", Some(1), ProcStatus::Online),
                ("vizora-web", Some(2), ProcStatus::Online),
            ]
        );
        assert_eq!(v[0].restart_time, Some(2));
    }

    #[test]
    fn targets_map_to_services() {
        assert_eq!(
            SandboxProcessManager::service_of(&ProcTarget::App("vizora-web".into())).unwrap(),
            ("web", "vizora-web")
        );
        assert_eq!(
            SandboxProcessManager::service_of(&ProcTarget::PmId(0))
                .unwrap()
                .0,
            "api"
        );
        assert!(matches!(
            SandboxProcessManager::service_of(&ProcTarget::App("a b".into())),
            Err(PmError::Rejected(_))
        ));
        assert!(matches!(
            SandboxProcessManager::service_of(&ProcTarget::App("other".into())),
            Err(PmError::Rejected(_))
        ));
    }

    #[test]
    fn bare_origin_gets_the_control_prefix() {
        assert_eq!(
            SandboxProcessManager::new("http://127.0.0.1:9/").control_url,
            "http://127.0.0.1:9/__sandbox"
        );
        assert_eq!(
            SandboxProcessManager::new("http://127.0.0.1:9/__sandbox/").control_url,
            "http://127.0.0.1:9/__sandbox"
        );
    }
}
