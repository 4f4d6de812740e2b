//! health-guardian settings (agents.md 8.4, 6.1): process manager commands, loopback probes, memory thresholds,
//! restart cooldown and backoff, and the edge watch.

use super::Source;
use super::apps::{ProcessManagerKind, parse_apps};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default of `OPS_PM2_BIN` (found on `PATH`).
pub const DEFAULT_PM2_BIN: &str = "pm2";
/// Default of `OPS_SYSTEMCTL_BIN` (found on `PATH`).
pub const DEFAULT_SYSTEMCTL_BIN: &str = "systemctl";
/// Default of `OPS_NODE_BIN` (found on `PATH`).
pub const DEFAULT_NODE_BIN: &str = "node";
/// Default of `OPS_ECOSYSTEM_FILE`, relative to the root directory.
pub const DEFAULT_ECOSYSTEM_FILE: &str = "ecosystem.config.js";
/// Default of `OPS_PM2_TIMEOUT_S`, in seconds.
pub const DEFAULT_PM2_TIMEOUT_S: u64 = 30;
/// Default of `OPS_PM2_JLIST_TIMEOUT_S`, in seconds.
pub const DEFAULT_PM2_JLIST_TIMEOUT_S: u64 = 15;
/// Default of `OPS_MIDDLEWARE_PROBE_URL`.
pub const DEFAULT_MIDDLEWARE_PROBE_URL: &str = "http://127.0.0.1:3000/api/v1/health/ready";
/// Default of `OPS_REALTIME_PROBE_URL`.
pub const DEFAULT_REALTIME_PROBE_URL: &str = "http://127.0.0.1:3002/api/health/ready";
/// Default of `OPS_WEB_PROBE_URL`.
pub const DEFAULT_WEB_PROBE_URL: &str = "http://127.0.0.1:3001/";
/// Default of `OPS_PROBE_CONFIRM_S`, in seconds.
pub const DEFAULT_PROBE_CONFIRM_S: u64 = 5;
/// Default of `OPS_MEMORY_THRESHOLD_PCT` and `OPS_HOST_MEMORY_THRESHOLD_PCT`, percent.
pub const DEFAULT_MEMORY_THRESHOLD_PCT: f64 = 85.0;
/// Default of `OPS_RESTART_COOLDOWN_S`, in seconds.
pub const DEFAULT_RESTART_COOLDOWN_S: u64 = 30;
/// Default of `OPS_RESTART_BACKOFF_BASE_S`, in seconds.
pub const DEFAULT_RESTART_BACKOFF_BASE_S: u64 = 30;
/// Default of `OPS_RESTART_BACKOFF_CAP_S`, in seconds.
pub const DEFAULT_RESTART_BACKOFF_CAP_S: u64 = 600;
/// Default of `OPS_RESTART_MAX_ATTEMPTS`.
pub const DEFAULT_RESTART_MAX_ATTEMPTS: u64 = 2;
/// Default of `OPS_BACKOFF_RESET_MINUTES`, in minutes.
pub const DEFAULT_BACKOFF_RESET_MINUTES: u64 = 30;

/// health-guardian settings (agents.md 8.4).
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// `OPS_PROCESS_MANAGER`: `pm2` (default), `systemd` or `sandbox` (the demo).
    pub process_manager: ProcessManagerKind,
    /// `OPS_PM2_BIN` (default [`DEFAULT_PM2_BIN`]): program run for PM2 commands, from an argv (agents.md 1.6).
    pub pm2_bin: String,
    /// `OPS_SYSTEMCTL_BIN` (default [`DEFAULT_SYSTEMCTL_BIN`]).
    pub systemctl_bin: String,
    /// `OPS_PM2_TIMEOUT_S` (default [`DEFAULT_PM2_TIMEOUT_S`], 1..=3600): `pm2 restart|reload` and `systemctl`
    /// commands (agents.md 5.6).
    pub pm2_timeout: Duration,
    /// `OPS_PM2_JLIST_TIMEOUT_S` (default [`DEFAULT_PM2_JLIST_TIMEOUT_S`], 1..=3600): `pm2 jlist` (agents.md 5.6).
    pub pm2_jlist_timeout: Duration,
    /// service key (`middleware`, `realtime`, `web`) → PM2 app name (defaults [`super::apps::DEFAULT_APPS`]).
    pub pm2_apps: BTreeMap<String, String>,
    /// service key → systemd unit (defaults [`super::apps::DEFAULT_APPS`]).
    pub systemd_units: BTreeMap<String, String>,
    /// `OPS_MIDDLEWARE_PROBE_URL` (default [`DEFAULT_MIDDLEWARE_PROBE_URL`]); loopback only, any other host is a
    /// configuration error (agents.md 6.1).
    pub middleware_probe_url: String,
    /// `OPS_REALTIME_PROBE_URL` (default [`DEFAULT_REALTIME_PROBE_URL`]); loopback only (agents.md 6.1).
    pub realtime_probe_url: String,
    /// `OPS_WEB_PROBE_URL` (default [`DEFAULT_WEB_PROBE_URL`]); loopback only (agents.md 6.1).
    pub web_probe_url: String,
    /// `OPS_PROBE_CONFIRM_S` (default [`DEFAULT_PROBE_CONFIRM_S`], 0..=600): wait before a failed probe is
    /// repeated (agents.md 6.1.1); also [`HealthConfig::probe_confirm`].
    pub probe_confirm_s: u64,
    /// `OPS_ECOSYSTEM_FILE` (default `<root>/`[`DEFAULT_ECOSYSTEM_FILE`]): PM2 ecosystem file read for memory limits
    /// jlist does not report (agents.md 6.1.2).
    pub ecosystem_file: PathBuf,
    /// `OPS_NODE_BIN` (default [`DEFAULT_NODE_BIN`]): program that reads the ecosystem file (agents.md 6.1).
    pub node_bin: String,
    /// `OPS_MEMORY_THRESHOLD_PCT` (default [`DEFAULT_MEMORY_THRESHOLD_PCT`], percent 0–100): a process using more
    /// than this share of its memory limit is `high-memory` (agents.md 6.1.2).
    pub memory_threshold_pct: f64,
    /// `OPS_HOST_MEMORY_THRESHOLD_PCT` (default [`DEFAULT_MEMORY_THRESHOLD_PCT`], percent 0–100): host memory use
    /// above it is `host-memory-high` (agents.md 6.1.2).
    pub host_memory_threshold_pct: f64,
    /// `OPS_RESTART_COOLDOWN_S` (default [`DEFAULT_RESTART_COOLDOWN_S`], 0..=3600): wait after the run's commands
    /// before re-probing (agents.md 6.1.3); also [`HealthConfig::restart_cooldown`].
    pub restart_cooldown_s: u64,
    /// `OPS_RESTART_BACKOFF_BASE_S` (default [`DEFAULT_RESTART_BACKOFF_BASE_S`]): base of the restart backoff
    /// `min(base × 2^n, cap)` (agents.md 6.1.3).
    pub restart_backoff_base_s: u64,
    /// `OPS_RESTART_BACKOFF_CAP_S` (default [`DEFAULT_RESTART_BACKOFF_CAP_S`]): cap of the restart backoff
    /// (agents.md 6.1.3).
    pub restart_backoff_cap_s: u64,
    /// `OPS_RESTART_MAX_ATTEMPTS` (default [`DEFAULT_RESTART_MAX_ATTEMPTS`], 1..=100): attempts after which an
    /// incident is escalated (agents.md 6.1.3).
    pub restart_max_attempts: u32,
    /// `OPS_BACKOFF_RESET_MINUTES` (default [`DEFAULT_BACKOFF_RESET_MINUTES`]): an incident resolved less than this
    /// ago continues its episode and backoff (agents.md 2.5, 6.1.3).
    pub backoff_reset_minutes: u64,
    /// `WEB_URL` when http(s) with a non-loopback host (edge watch), else `None`.
    pub edge_url: Option<String>,
    /// Why the edge watch is off, for the log.
    pub edge_off_reason: Option<String>,
    /// Sandbox control API (demo process manager).
    pub sandbox_control_url: Option<String>,
}

impl HealthConfig {
    /// Reads and validates the section; every invalid value is recorded in `src` and replaced by its default.
    /// `root` is the base of the default ecosystem file.
    pub(super) fn parse(src: &Source, root: &Path) -> HealthConfig {
        let process_manager = ProcessManagerKind::parse(src);
        let (pm2_apps, systemd_units) = parse_apps(src);
        let middleware_probe_url = probe_url(
            src,
            "OPS_MIDDLEWARE_PROBE_URL",
            DEFAULT_MIDDLEWARE_PROBE_URL,
        );
        let realtime_probe_url =
            probe_url(src, "OPS_REALTIME_PROBE_URL", DEFAULT_REALTIME_PROBE_URL);
        let web_probe_url = probe_url(src, "OPS_WEB_PROBE_URL", DEFAULT_WEB_PROBE_URL);
        let (edge_url, edge_off_reason) = edge(src);
        let pct = |key: &str| src.f64(key, DEFAULT_MEMORY_THRESHOLD_PCT, 0.0, 100.0);
        HealthConfig {
            process_manager,
            pm2_bin: src
                .get("OPS_PM2_BIN")
                .unwrap_or_else(|| DEFAULT_PM2_BIN.into()),
            systemctl_bin: src
                .get("OPS_SYSTEMCTL_BIN")
                .unwrap_or_else(|| DEFAULT_SYSTEMCTL_BIN.into()),
            pm2_timeout: Duration::from_secs(src.u64(
                "OPS_PM2_TIMEOUT_S",
                DEFAULT_PM2_TIMEOUT_S,
                1,
                3600,
            )),
            pm2_jlist_timeout: Duration::from_secs(src.u64(
                "OPS_PM2_JLIST_TIMEOUT_S",
                DEFAULT_PM2_JLIST_TIMEOUT_S,
                1,
                3600,
            )),
            pm2_apps,
            systemd_units,
            middleware_probe_url,
            realtime_probe_url,
            web_probe_url,
            probe_confirm_s: src.u64("OPS_PROBE_CONFIRM_S", DEFAULT_PROBE_CONFIRM_S, 0, 600),
            ecosystem_file: src
                .get("OPS_ECOSYSTEM_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join(DEFAULT_ECOSYSTEM_FILE)),
            node_bin: src
                .get("OPS_NODE_BIN")
                .unwrap_or_else(|| DEFAULT_NODE_BIN.into()),
            memory_threshold_pct: pct("OPS_MEMORY_THRESHOLD_PCT"),
            host_memory_threshold_pct: pct("OPS_HOST_MEMORY_THRESHOLD_PCT"),
            restart_cooldown_s: src.u64(
                "OPS_RESTART_COOLDOWN_S",
                DEFAULT_RESTART_COOLDOWN_S,
                0,
                3600,
            ),
            restart_backoff_base_s: src.u64(
                "OPS_RESTART_BACKOFF_BASE_S",
                DEFAULT_RESTART_BACKOFF_BASE_S,
                0,
                86_400,
            ),
            restart_backoff_cap_s: src.u64(
                "OPS_RESTART_BACKOFF_CAP_S",
                DEFAULT_RESTART_BACKOFF_CAP_S,
                0,
                86_400,
            ),
            restart_max_attempts: src.u64(
                "OPS_RESTART_MAX_ATTEMPTS",
                DEFAULT_RESTART_MAX_ATTEMPTS,
                1,
                100,
            ) as u32,
            backoff_reset_minutes: src.u64(
                "OPS_BACKOFF_RESET_MINUTES",
                DEFAULT_BACKOFF_RESET_MINUTES,
                0,
                100_000,
            ),
            edge_url,
            edge_off_reason,
            sandbox_control_url: src.url("OPS_SANDBOX_CONTROL_URL", None, &["http"]),
        }
    }

    /// [`HealthConfig::probe_confirm_s`] as a duration.
    pub fn probe_confirm(&self) -> Duration {
        Duration::from_secs(self.probe_confirm_s)
    }

    /// [`HealthConfig::restart_cooldown_s`] as a duration.
    pub fn restart_cooldown(&self) -> Duration {
        Duration::from_secs(self.restart_cooldown_s)
    }
}

/// A probe URL: http(s) and loopback only, so that a probe never leaves the host (agents.md 6.1); the default
/// stands in for an invalid one.
fn probe_url(src: &Source, key: &str, default: &str) -> String {
    let u = src
        .url(key, Some(default), &["http", "https"])
        .unwrap_or_default();
    if !is_loopback_url(&u) {
        src.fail(format!(
            "{key}: probes are loopback only (got a non-loopback host)"
        ));
        return default.to_string();
    }
    u
}

/// `WEB_URL` as the edge watch target, or why the watch is off: a loopback or non-http(s) URL is no edge
/// (agents.md 6.1).
fn edge(src: &Source) -> (Option<String>, Option<String>) {
    match src.get("WEB_URL") {
        None => (None, Some("WEB_URL is unset".to_string())),
        Some(w) => match url::Url::parse(&w) {
            Ok(p) if (p.scheme() == "http" || p.scheme() == "https") && !is_loopback_url(&w) => {
                (Some(w), None)
            }
            Ok(_) => (None, Some("WEB_URL is loopback or not http(s)".to_string())),
            Err(_) => {
                src.fail("WEB_URL: not a valid URL");
                (None, Some("WEB_URL is not a valid URL".to_string()))
            }
        },
    }
}

/// Whether a URL's host is `localhost` or a loopback address.
fn is_loopback_url(u: &str) -> bool {
    url::Url::parse(u)
        .ok()
        .and_then(|p| p.host_str().map(|h| h.to_string()))
        .map(|h| {
            let h = h.trim_start_matches('[').trim_end_matches(']').to_string();
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use std::time::Duration;

    #[test]
    fn probes_are_loopback_only_and_the_edge_watch_needs_a_public_web_url() {
        let e = cfg(&[(
            "OPS_MIDDLEWARE_PROBE_URL",
            "http://example.com/api/v1/health/ready",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OPS_MIDDLEWARE_PROBE_URL") && e.contains("loopback"),
            "{e}"
        );
        let c = cfg(&[
            ("OPS_WEB_PROBE_URL", "http://[::1]:3001/"),
            ("WEB_URL", "http://localhost:3001"),
        ])
        .unwrap();
        assert_eq!(c.health.web_probe_url, "http://[::1]:3001/");
        assert_eq!(c.health.edge_url, None);
        assert_eq!(
            c.health.edge_off_reason.as_deref(),
            Some("WEB_URL is loopback or not http(s)")
        );
        let c = cfg(&[("WEB_URL", "https://signage.example.test")]).unwrap();
        assert_eq!(
            c.health.edge_url.as_deref(),
            Some("https://signage.example.test")
        );
        assert_eq!(
            c.health.probe_confirm(),
            Duration::from_secs(super::DEFAULT_PROBE_CONFIRM_S)
        );
        assert_eq!(c.health.restart_cooldown(), Duration::from_secs(30));
        assert_eq!(
            c.health.ecosystem_file,
            std::path::Path::new("/tmp/ops-root/ecosystem.config.js")
        );
    }
}
