//! Storage quota (agents.md 6.2.5): the verdict on `GET /api/v1/organizations/storage` ([`storage_verdict`]), the
//! `storage_high` / `storage_check_failed` incidents, and above the critical threshold the relief archive of the
//! oldest unreferenced content (the orphan rule with its own minimum age, `orphans`) until the projected usage drops
//! below it, then the re-read that resolves or escalates.

use super::archive::Archive;
use super::fields::{fmt_bytes, round1};
use super::orphans::unreferenced_candidates;
use super::references::Harvest;
use super::{Run, SLUG_ARCHIVE, STORAGE_PATH, T_STORAGE_FAILED, T_STORAGE_HIGH};
use crate::agents::{InlineAlert, InlineKind};
use crate::model::{Incident, IncidentStatus, Severity};
use crate::vizora::ApiError;
use serde_json::{Value, json};

/// The storage verdict of agents.md 6.2.5.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageVerdict {
    /// No verdict (`quotaBytes` ≤ 0, missing or unparseable fields).
    NoVerdict(String),
    /// `pct` ≤ warning threshold.
    Ok {
        /// `usedBytes` (bytes).
        used: u64,
        /// `quotaBytes` (bytes, > 0).
        quota: u64,
        /// `used / quota × 100` (percent).
        pct: f64,
    },
    /// warning < `pct` ≤ critical.
    Warning {
        /// `usedBytes` (bytes).
        used: u64,
        /// `quotaBytes` (bytes, > 0).
        quota: u64,
        /// `used / quota × 100` (percent).
        pct: f64,
    },
    /// `pct` > critical.
    Critical {
        /// `usedBytes` (bytes).
        used: u64,
        /// `quotaBytes` (bytes, > 0).
        quota: u64,
        /// `used / quota × 100` (percent).
        pct: f64,
    },
}

/// Judges a `GET /organizations/storage` payload: `pct = usedBytes / quotaBytes × 100` against `warn_pct` and
/// `crit_pct` (strict `>`).
pub fn storage_verdict(payload: &Value, warn_pct: f64, crit_pct: f64) -> StorageVerdict {
    let num = |k: &str| payload.get(k).and_then(Value::as_f64);
    let (Some(used), Some(quota)) = (num("usedBytes"), num("quotaBytes")) else {
        return StorageVerdict::NoVerdict("usedBytes/quotaBytes missing or not numbers".into());
    };
    if quota <= 0.0 {
        return StorageVerdict::NoVerdict(format!("quotaBytes is {quota} (no quota)"));
    }
    if used < 0.0 {
        return StorageVerdict::NoVerdict(format!("usedBytes is {used}"));
    }
    let pct = used / quota * 100.0;
    let (used, quota) = (used as u64, quota as u64);
    if pct > crit_pct {
        StorageVerdict::Critical { used, quota, pct }
    } else if pct > warn_pct {
        StorageVerdict::Warning { used, quota, pct }
    } else {
        StorageVerdict::Ok { used, quota, pct }
    }
}

/// Whether storage archiving must go on: projected usage `(used − freed) / quota × 100` is still ≥ `crit_pct`.
pub fn storage_still_critical(used: u64, freed: u64, quota: u64, crit_pct: f64) -> bool {
    quota > 0 && (used.saturating_sub(freed) as f64 / quota as f64 * 100.0) >= crit_pct
}
impl Run<'_> {
    pub(super) async fn storage(
        &mut self,
        read: Result<Value, ApiError>,
        harvest: &Harvest,
        archivable: bool,
    ) {
        let org = self
            .api
            .organization_id()
            .or_else(|| self.table.organization_id().map(String::from))
            .unwrap_or_else(|| "organization".into());
        let high_id = self.id(T_STORAGE_HIGH, &org);
        let payload = match read {
            Ok(v) => v,
            Err(e) => {
                self.check_fatal(&e);
                if self.abort.is_some() {
                    return;
                }
                let inc = self.incident(
                    T_STORAGE_FAILED,
                    Severity::Warning,
                    "storage",
                    &org,
                    format!("GET {STORAGE_PATH} failed after retries: {e}"),
                    "Check vizora-middleware and its database; storage usage is not known this run",
                );
                self.out.note(format!("storage check failed: {e}"));
                self.out.raise(inc);
                self.out.unexamined.insert(high_id);
                return;
            }
        };
        self.out.cover(T_STORAGE_FAILED);
        let cfg = &self.ctx.cfg.entity;
        let (warn, crit) = (cfg.storage_warn_pct, cfg.storage_critical_pct);
        let verdict = storage_verdict(&payload, warn, crit);
        let describe = |used: u64, quota: u64, pct: f64| {
            format!(
                "storage usage {pct:.1} % of quota ({} of {}; warning above {warn} %, critical above {crit} %)",
                fmt_bytes(used),
                fmt_bytes(quota)
            )
        };
        match verdict {
            StorageVerdict::NoVerdict(why) => {
                self.ctx.info(format!("storage: no verdict ({why})"));
                self.out.unexamined.insert(high_id);
            }
            StorageVerdict::Ok { used, quota, pct } => {
                self.out.cover(T_STORAGE_HIGH);
                self.stats.insert("storagePct".into(), json!(round1(pct)));
                self.ctx.info(describe(used, quota, pct));
            }
            StorageVerdict::Warning { used, quota, pct } => {
                self.out.cover(T_STORAGE_HIGH);
                self.stats.insert("storagePct".into(), json!(round1(pct)));
                let msg = describe(used, quota, pct);
                self.out.note(msg.clone());
                let inc = self.incident(
                    T_STORAGE_HIGH,
                    Severity::Warning,
                    "storage",
                    &org,
                    msg,
                    "Review and archive unused media, or raise the organization's storage quota; automatic \
                     archiving starts above the critical threshold",
                );
                self.out.raise(inc);
            }
            StorageVerdict::Critical { used, quota, pct } => {
                self.out.cover(T_STORAGE_HIGH);
                self.stats.insert("storagePct".into(), json!(round1(pct)));
                let msg = describe(used, quota, pct);
                self.out.note(msg.clone());
                let inc = self.incident(
                    T_STORAGE_HIGH,
                    Severity::Critical,
                    "storage",
                    &org,
                    msg,
                    "Archive unreferenced content",
                );
                self.storage_critical(inc, harvest, archivable, used, quota)
                    .await;
            }
        }
    }

    pub(super) async fn storage_critical(
        &mut self,
        mut inc: Incident,
        harvest: &Harvest,
        archivable: bool,
        used: u64,
        quota: u64,
    ) {
        let crit = self.ctx.cfg.entity.storage_critical_pct;
        let prior_escalated = self
            .priors
            .get(&inc.id)
            .is_some_and(|p| p.status == IncidentStatus::Escalated);
        if prior_escalated {
            inc.status = IncidentStatus::Escalated;
            inc.remediation =
                "Escalated earlier: archiving did not free quota; manual clean-up or a larger quota is needed".into();
            self.out.raise(inc);
            return;
        }
        if !archivable {
            inc.remediation =
                "No automatic archiving: the scan or the reference harvest is incomplete this run"
                    .into();
            self.out.raise(inc);
            return;
        }
        if let Some(d) = self.drift.get(SLUG_ARCHIVE) {
            inc.remediation = "No automatic archiving: the archive route drifted this run".into();
            inc.error = Some(d.clone());
            self.out.raise(inc);
            return;
        }
        let min_age = self.ctx.cfg.entity.storage_archive_min_age_days;
        let cap = self.ctx.cfg.entity.storage_max_archives_per_run;
        let mut exclude = self.handled.clone();
        exclude.extend(self.archived.keys().cloned());
        exclude.extend(self.planned_sizes.keys().cloned());
        let cands = unreferenced_candidates(
            &self.table,
            harvest,
            &self.cache,
            self.now,
            min_age,
            &exclude,
        );
        // Archives of this run (expired, orphans) count towards the projection.
        let mut freed: u64 =
            self.archived.values().sum::<u64>() + self.planned_sizes.values().sum::<u64>();
        let (mut archived_n, mut planned) = (0usize, Vec::new());
        let mut failures = Vec::new();
        for c in &cands {
            if !storage_still_critical(used, freed, quota, crit)
                || archived_n + planned.len() >= cap
            {
                break;
            }
            if self.abort.is_some() || self.past_deadline() || self.drift.contains_key(SLUG_ARCHIVE)
            {
                break;
            }
            let c = c.materialize(&self.table);
            match self
                .archive(
                    &c.id,
                    format!(
                        "Archive unreferenced content \"{}\" (storage critical)",
                        c.name
                    ),
                    Some(c.confirmation()),
                )
                .await
            {
                Archive::Unneeded(ev) => {
                    self.ctx.info(format!(
                        "storage candidate \"{}\" ({}) skipped: {ev}",
                        c.name, c.id
                    ));
                }
                Archive::PreReadFailed(e) => {
                    self.ctx.warn(format!(
                        "storage candidate {}: confirm read failed ({e})",
                        c.id
                    ));
                }
                Archive::Verified(_) => {
                    archived_n += 1;
                    freed += c.file_size;
                    self.archived.insert(c.id.clone(), c.file_size);
                    self.table.mark_archived(c.row);
                    self.storage_archived.push(format!(
                        "\"{}\" ({}, {})",
                        c.name,
                        c.id,
                        fmt_bytes(c.file_size)
                    ));
                    self.out.note(format!(
                        "storage: archived unreferenced \"{}\" ({}), {}",
                        c.name,
                        c.id,
                        fmt_bytes(c.file_size)
                    ));
                }
                Archive::DryRun => {
                    freed += c.file_size;
                    planned.push(c.id.clone());
                    self.out.note(format!(
                        "storage: would archive unreferenced \"{}\" ({}), {}",
                        c.name,
                        c.id,
                        fmt_bytes(c.file_size)
                    ));
                }
                Archive::Gone(_) => {}
                Archive::Drift(e)
                | Archive::Failed(e)
                | Archive::NotConfirmed(e)
                | Archive::NotSent(e) => {
                    failures.push(e);
                }
            }
        }
        if let Some(e) = failures.last() {
            inc.error = Some(e.clone());
        }
        if self.ctx.effects().is_dry_run() {
            inc.remediation = format!(
                "Dry run: would archive {} unreferenced item(s) (oldest first, older than {min_age} days)",
                planned.len()
            );
            self.out.raise(inc);
            return;
        }
        let total = self.archived.len();
        let what = format!(
            "Archived {total} item(s) this run ({archived_n} unreferenced for storage relief)"
        );
        if total == 0 {
            inc.remediation = format!(
                "No unreferenced content older than {min_age} days could be archived; manual clean-up or a larger \
                 quota is needed"
            );
            self.out.raise(inc);
            return;
        }
        self.attempted(&mut inc);
        match self.api.get(STORAGE_PATH).await {
            Ok(v) => {
                let used2 = v.get("usedBytes").and_then(Value::as_f64).map(|u| u as u64);
                match used2 {
                    Some(u2) if u2 < used => {
                        inc.remediation = format!(
                            "{what}; usage went from {} to {}",
                            fmt_bytes(used),
                            fmt_bytes(u2)
                        );
                        self.out.raise(inc);
                    }
                    other => {
                        inc.status = IncidentStatus::Escalated;
                        inc.remediation = format!(
                            "{what} but usage did not go down ({} → {}): archiving does not free quota; \
                             manual clean-up or a larger quota is needed",
                            fmt_bytes(used),
                            other.map(fmt_bytes).unwrap_or_else(|| "unknown".into())
                        );
                        let refs = vec![inc.clone()];
                        let items = self.storage_archived.clone();
                        let stamps = self
                            .ctx
                            .effects()
                            .alert(InlineAlert {
                                agent: self.ctx.agent,
                                kind: InlineKind::Critical,
                                summary: format!("Storage critical and escalated: {}", inc.message),
                                items,
                                refs,
                            })
                            .await;
                        self.out.alert_stamps.extend(stamps);
                        self.out.raise(inc);
                    }
                }
            }
            Err(e) => {
                self.check_fatal(&e);
                inc.error = Some(format!("storage re-read failed: {e}"));
                inc.remediation = format!("{what}; the storage re-read failed");
                self.out.raise(inc);
            }
        }
    }
}
