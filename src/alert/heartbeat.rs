//! Dead-man heartbeats (agents.md 7.8).

use super::COMPONENT;
use crate::logging;
use std::time::Duration;

/// Dead-man heartbeat (agents.md 7.8): `POST <url>`, or `POST <url>/fail` when `fail`. Failures are only logged
/// (WARNING naming the host, never the URL); returns whether the ping was accepted (2xx). The caller skips it in dry
/// run (1.5).
pub async fn heartbeat(client: &reqwest::Client, url: &str, fail: bool, timeout: Duration) -> bool {
    let target = if fail {
        format!("{}/fail", url.trim_end_matches('/'))
    } else {
        url.to_string()
    };
    let host = crate::redact::url_host_only(url);
    match client.post(&target).timeout(timeout).send().await {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            logging::warn(
                COMPONENT,
                format!("heartbeat to {host} failed: HTTP {}", r.status().as_u16()),
            );
            false
        }
        Err(e) => {
            let why = if e.is_timeout() {
                "timeout".to_string()
            } else {
                e.without_url().to_string()
            };
            logging::warn(
                COMPONENT,
                format!(
                    "heartbeat to {host} failed: {}",
                    crate::redact::redact_str(&why)
                ),
            );
            false
        }
    }
}
