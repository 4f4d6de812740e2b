//! systemd (agents.md 6.1, 6.1.2, 6.1.3): `systemctl show <unit> --property=ActiveState,MemoryCurrent,MemoryMax` per
//! configured unit and `systemctl restart <unit>`; only configured units are ever named in a command.

use super::cmd::run;
use super::{CommandRecord, PmError, ProcStatus, ProcTarget, ProcessInfo, ProcessManager};
use async_trait::async_trait;
use std::time::Duration;

/// systemd as the process manager (`OPS_PROCESS_MANAGER=systemd`).
#[derive(Debug, Clone)]
pub struct Systemd {
    /// `OPS_SYSTEMCTL_BIN`: a name looked up on `PATH` or a path (tests: a recording fake).
    pub bin: String,
    /// The configured units (`OPS_SYSTEMD_UNIT_*`), the allow-list of every command.
    pub units: Vec<String>,
    /// Timeout of each `systemctl` call (`OPS_PM2_TIMEOUT_S`, default 30 s).
    pub timeout: Duration,
}

impl Systemd {
    fn unit_of(&self, target: &ProcTarget) -> Result<String, PmError> {
        let unit = match target {
            ProcTarget::Unit(u) | ProcTarget::App(u) => u,
            ProcTarget::PmId(n) => {
                return Err(PmError::Rejected(format!(
                    "{n} is a PM2 pm_id; systemd acts on units"
                )));
            }
        };
        let arg = target.arg()?;
        if !self.units.iter().any(|u| u == unit) {
            return Err(PmError::Rejected(format!(
                "{unit:?} is not a configured unit"
            )));
        }
        Ok(arg)
    }
}

#[async_trait]
impl ProcessManager for Systemd {
    fn kind(&self) -> &'static str {
        "systemd"
    }

    /// One `show` per configured unit, in order; every unit name is validated before any command runs.
    async fn list(&self) -> Result<Vec<ProcessInfo>, PmError> {
        for u in &self.units {
            super::validate_name(u)?;
        }
        let mut out = Vec::with_capacity(self.units.len());
        for u in &self.units {
            let args = [
                "show".to_string(),
                u.clone(),
                "--property=ActiveState,MemoryCurrent,MemoryMax".to_string(),
            ];
            let ran = run(&self.bin, &args, &[], self.timeout).await?;
            out.push(parse_systemd_show(u, &ran.stdout)?);
        }
        Ok(out)
    }

    /// `systemctl restart <unit>`.
    async fn restart(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        let unit = self.unit_of(target)?;
        Ok(
            run(&self.bin, &["restart".to_string(), unit], &[], self.timeout)
                .await?
                .record,
        )
    }

    /// systemd has no reload for these services (agents.md 6.1.3 names only `restart <unit>`): this runs
    /// `systemctl restart <unit>`, and the record says so.
    async fn reload(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        self.restart(target).await
    }
}

/// Parses `systemctl show` `key=value` lines for `unit` (agents.md 6.1.2): `ActiveState` → status
/// (`active`/`failed`/`inactive` = online/errored/stopped, `activating`… transitional), `MemoryCurrent` → memory,
/// `MemoryMax` → limit (`infinity` or `[not set]` = unknown). A missing `ActiveState` is `BadOutput`.
pub fn parse_systemd_show(unit: &str, stdout: &str) -> Result<ProcessInfo, PmError> {
    let mut state = None;
    let mut current = None;
    let mut max = None;
    for line in stdout.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "ActiveState" => state = Some(v.to_string()),
            "MemoryCurrent" => current = bytes(v),
            "MemoryMax" => max = bytes(v).filter(|n| *n > 0),
            _ => {}
        }
    }
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PmError::BadOutput(format!("systemctl show {unit}: no ActiveState")))?;
    Ok(ProcessInfo {
        name: unit.to_string(),
        pm_id: None,
        status: ProcStatus::from_systemd(&state),
        exec_mode: None,
        memory_bytes: current,
        max_memory_restart: max,
        restart_time: None,
        pm_uptime: None,
    })
}

/// A byte count; `infinity`, `[not set]` and `18446744073709551615` (u64::MAX, systemd's "unset") are unknown.
fn bytes(v: &str) -> Option<u64> {
    v.parse::<u64>().ok().filter(|n| *n != u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_output_parses() {
        let p = parse_systemd_show(
            "vizora-web.service",
            "ActiveState=active\nMemoryCurrent=104857600\nMemoryMax=infinity\n",
        )
        .unwrap();
        assert_eq!(p.name, "vizora-web.service");
        assert_eq!(p.status, ProcStatus::Online);
        assert_eq!(p.memory_bytes, Some(104_857_600));
        assert_eq!(p.max_memory_restart, None);
        let p = parse_systemd_show(
            "u",
            "MemoryMax=536870912\nActiveState=failed\nMemoryCurrent=[not set]\n",
        )
        .unwrap();
        assert_eq!(p.status, ProcStatus::Errored);
        assert_eq!(p.memory_bytes, None);
        assert_eq!(p.max_memory_restart, Some(536_870_912));
        assert!(matches!(
            parse_systemd_show("u", "MemoryMax=1\n"),
            Err(PmError::BadOutput(_))
        ));
    }
}
