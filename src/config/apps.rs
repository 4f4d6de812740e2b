//! The process manager and the names of the three services in it (agents.md 8.4, 6.1.2, 6.1.3): PM2 app names and
//! systemd units per service key.

use super::Source;
use std::collections::BTreeMap;

/// The service keys with their default PM2 app name and systemd unit (agents.md 8.4).
pub const DEFAULT_APPS: [(&str, &str, &str); 3] = [
    (
        "middleware",
        "vizora-middleware",
        "vizora-middleware.service",
    ),
    ("realtime", "vizora-realtime", "vizora-realtime.service"),
    ("web", "vizora-web", "vizora-web.service"),
];

/// `pm2 restart all` restarts every process: why `OPS_PM2_APP_*=all` is a configuration error (agents.md 8.4).
const PM2_ALL_REASON: &str = "\"all\" is rejected: pm2 reads it as every process, so restarting this one service \
                              would restart every app on the host (the ops agents included); set the app's own name";

/// Which process manager health-guardian uses (agents.md 8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessManagerKind {
    /// `pm2` (the default): `pm2 jlist` / `pm2 restart|reload` run as `OPS_PM2_BIN` (agents.md 6.1.2, 6.1.3).
    Pm2,
    /// `systemd`: `systemctl show|restart <unit>` run as `OPS_SYSTEMCTL_BIN` (agents.md 6.1.2, 6.1.3).
    Systemd,
    /// The demo's simulated services, restarted through the sandbox control API.
    Sandbox,
}

impl ProcessManagerKind {
    /// `OPS_PROCESS_MANAGER`: `pm2` (default), `systemd` or `sandbox`; anything else is recorded as an error.
    pub(super) fn parse(src: &Source) -> ProcessManagerKind {
        match src.get("OPS_PROCESS_MANAGER").as_deref() {
            None | Some("pm2") => ProcessManagerKind::Pm2,
            Some("systemd") => ProcessManagerKind::Systemd,
            Some("sandbox") => ProcessManagerKind::Sandbox,
            Some(o) => {
                src.fail(format!(
                    "OPS_PROCESS_MANAGER: expected pm2, systemd or sandbox, got {o:?}"
                ));
                ProcessManagerKind::Pm2
            }
        }
    }
}

/// `OPS_PM2_APP_<SERVICE>` and `OPS_SYSTEMD_UNIT_<SERVICE>` (defaults [`DEFAULT_APPS`]): service key → PM2 app name
/// and service key → systemd unit. Names that can never enter a command are left to `config check`
/// (`run_time_problems`); only `all` is refused here.
pub(super) fn parse_apps(src: &Source) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut pm2_apps = BTreeMap::new();
    let mut systemd_units = BTreeMap::new();
    for (svc, app, unit) in DEFAULT_APPS {
        let up = svc.to_ascii_uppercase();
        let key = format!("OPS_PM2_APP_{up}");
        let name = src.get(&key).unwrap_or(app.into());
        // pm2 reads `all` as every process: a restart of this one service would restart every app on the host,
        // the ops agents included, and nothing at run time stops it (agents.md 6.1.3, 8.4).
        if name.eq_ignore_ascii_case("all") {
            src.fail(format!("{key}: {PM2_ALL_REASON}"));
        }
        pm2_apps.insert(svc.to_string(), name);
        systemd_units.insert(
            svc.to_string(),
            src.get(&format!("OPS_SYSTEMD_UNIT_{up}"))
                .unwrap_or(unit.into()),
        );
    }
    (pm2_apps, systemd_units)
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use super::ProcessManagerKind;

    #[test]
    fn pm2_app_all_is_rejected_in_any_case_and_units_default_per_service() {
        let e = cfg(&[("OPS_PM2_APP_REALTIME", "All")]).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert!(
            e.0[0].starts_with("OPS_PM2_APP_REALTIME: \"all\" is rejected"),
            "{e}"
        );
        let c = cfg(&[
            ("OPS_PROCESS_MANAGER", "systemd"),
            ("OPS_SYSTEMD_UNIT_WEB", "web@1.service"),
        ])
        .unwrap();
        assert_eq!(c.health.process_manager, ProcessManagerKind::Systemd);
        assert_eq!(c.health.systemd_units["web"], "web@1.service");
        assert_eq!(
            c.health.systemd_units["middleware"],
            "vizora-middleware.service"
        );
        assert_eq!(c.health.pm2_apps["realtime"], "vizora-realtime");
    }
}
