//! Verification of health-guardian's commands (agents.md 6.1.3): after the run's commands, one
//! `OPS_RESTART_COOLDOWN_S` wait, a re-probe of the affected services and a fresh process list; each incident is then
//! checked against what its command was meant to fix.

use super::probes::{Health, Prober, Svc};
use super::rules::{mib, over_threshold};
use crate::procman::{PmError, ProcStatus, ProcessInfo, ProcessManager};
use std::collections::BTreeMap;

/// What verification checks for one incident.
#[derive(Debug, Clone)]
pub(super) enum Verify {
    /// The service's probe is healthy again.
    Probe(Svc),
    /// The process (by name and pm_id) is `online`.
    Online { name: String, pm_id: Option<u32> },
    /// The process is `online` with memory at or below the threshold of its limit (bytes).
    Memory {
        name: String,
        pm_id: Option<u32>,
        limit: u64,
    },
}

/// Checks one incident after the cooldown (6.1.3): service probe healthy; process `online`; memory ≤ threshold.
pub(super) fn check(
    v: &Verify,
    reprobed: &BTreeMap<Svc, Health>,
    relist: Option<&Result<Vec<ProcessInfo>, PmError>>,
    systemd: bool,
    threshold: f64,
) -> (bool, String) {
    let find = |name: &str, pm_id: Option<u32>| -> Result<Option<ProcessInfo>, String> {
        match relist {
            Some(Ok(l)) => Ok(l
                .iter()
                .find(|p| p.name == name && (systemd || p.pm_id == pm_id))
                .cloned()),
            Some(Err(e)) => Err(format!("process list unreadable after the restart: {e}")),
            None => Err("process list not re-read".into()),
        }
    };
    match v {
        Verify::Probe(svc) => match reprobed.get(svc) {
            Some(hl) if hl.is_healthy() => (true, format!("{} probe {}", svc.key(), hl.word())),
            Some(hl) => (false, format!("{} probe {}", svc.key(), hl.describe())),
            None => (false, format!("{} not re-probed", svc.key())),
        },
        Verify::Online { name, pm_id } => match find(name, *pm_id) {
            Ok(Some(p)) if p.status == ProcStatus::Online => (true, "status=online".into()),
            Ok(Some(p)) => (false, format!("status={}", p.status)),
            Ok(None) => (false, "process gone from the list".into()),
            Err(e) => (false, e),
        },
        Verify::Memory { name, pm_id, limit } => match find(name, *pm_id) {
            Ok(Some(p)) if p.status == ProcStatus::Online => {
                let limit = p.max_memory_restart.unwrap_or(*limit);
                match p.memory_bytes {
                    Some(m) if !over_threshold(m, limit, threshold) => (
                        true,
                        format!("status=online memory={} limit={}", mib(m), mib(limit)),
                    ),
                    Some(m) => (
                        false,
                        format!("memory still {} of limit {}", mib(m), mib(limit)),
                    ),
                    None => (false, "memory not reported".into()),
                }
            }
            Ok(Some(p)) => (false, format!("status={}", p.status)),
            Ok(None) => (false, "process gone from the list".into()),
            Err(e) => (false, e),
        },
    }
}

/// What the verification saw after the cooldown: the re-probed services and the fresh process list.
#[derive(Default)]
pub(super) struct Recheck {
    /// Health of each re-probed service.
    pub(super) reprobed: BTreeMap<Svc, Health>,
    /// The process list read after the cooldown (`None` = not re-read: nothing ran).
    pub(super) relist: Option<Result<Vec<ProcessInfo>, PmError>>,
}

/// Waits `OPS_RESTART_COOLDOWN_S` once (saying what for and until when), re-probes `affected` without confirmation
/// and re-reads the process list (6.1.3).
pub(super) async fn after_cooldown(
    prober: &Prober<'_>,
    pm: &dyn ProcessManager,
    affected: &[Svc],
) -> Recheck {
    let ctx = prober.ctx;
    let h = &ctx.cfg.health;
    // Says what for and until when (issue 9: a long wait never looks like a hang).
    let until = ctx.now() + chrono::Duration::seconds(h.restart_cooldown_s as i64);
    ctx.info(format!(
        "waiting {} s, until {}, for the restarted service(s) to come up (OPS_RESTART_COOLDOWN_S), then \
         re-probing to verify",
        h.restart_cooldown_s,
        until.format("%H:%M:%S UTC")
    ));
    ctx.wait_s(h.restart_cooldown_s).await;
    let mut reprobed = BTreeMap::new();
    for (svc, hl, _) in prober.probe(affected, false).await {
        reprobed.insert(svc, hl);
    }
    Recheck {
        reprobed,
        relist: Some(pm.list().await),
    }
}
