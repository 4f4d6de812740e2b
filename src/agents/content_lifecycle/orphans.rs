//! The orphan rule (agents.md 6.2.4), in one place: which content is an unreferenced candidate
//! ([`unreferenced_candidates`], also used by storage relief, 6.2.5), its confirmation on the audited `before` read
//! ([`confirm_orphan`], [`Candidate::confirmation`]), when orphans may be archived at all (a complete scan and a
//! complete reference harvest), and the archive of each candidate within `OPS_MAX_ARCHIVES_PER_RUN`.

use super::archive::Archive;
use super::detail_cache::DetailCache;
use super::fields::{fmt_days, is_active, s};
use super::references::Harvest;
use super::table::ContentTable;
use super::{Run, SLUG_ARCHIVE, T_ORPHANED};
use crate::agents::resolved;
use crate::model::{Severity, ts};
use crate::vizora::Precondition;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;

/// An unreferenced archive candidate (orphan or storage relief), by row; [`CandidateRef::materialize`] gives the
/// owned fields for messages and the confirm read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateRef {
    /// Row of the item in the [`ContentTable`].
    pub row: u32,
    /// The listed `createdAt` (UTC), the sort key (oldest first).
    pub created_at: DateTime<Utc>,
}

/// An unreferenced archive candidate with its owned fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Row of the item in the [`ContentTable`].
    pub row: u32,
    /// The content id.
    pub id: String,
    /// The listed label: `name`, else `title`, else the id.
    pub name: String,
    /// The listed `type` (e.g. `image`, `video`; `?` when missing or not a string).
    pub kind: String,
    /// The listed `createdAt` (UTC).
    pub created_at: DateTime<Utc>,
    /// The listed `updatedAt` (the confirm read must show the same).
    pub updated_at: String,
    /// `fileSize` in bytes (0 when null).
    pub file_size: u64,
}

impl Candidate {
    /// The confirmation of its archive, run on the audited `before` read ([`confirm_orphan`] against the listed
    /// `updatedAt`, agents.md 6.2.4; storage relief uses the same, 6.2.5).
    pub fn confirmation(&self) -> Precondition {
        let listed_updated_at = self.updated_at.clone();
        Precondition::new(move |before| confirm_orphan(before, &listed_updated_at))
    }
}

impl CandidateRef {
    /// The owned fields of the candidate.
    pub fn materialize(&self, table: &ContentTable) -> Candidate {
        let r = self.row;
        Candidate {
            row: r,
            id: table.id(r).to_string(),
            name: table.label(r).to_string(),
            kind: table.kind(r).unwrap_or("?").to_string(),
            created_at: self.created_at,
            updated_at: table.updated_text(r).into_owned(),
            file_size: table.file_size(r),
        }
    }
}

/// Unreferenced content (agents.md 6.2.4 candidates; 6.2.5 uses the same rules with its own minimum age): listed
/// `active`, `type` ≠ `layout`, `createdAt` more than `min_age_days` days before `now`, not in the harvested
/// references, cache `isGlobal` not true, not in `exclude`; oldest first (then id). Items without a fresh entry or
/// with an unparseable `createdAt` are never candidates. One pass; no string is allocated.
pub fn unreferenced_candidates(
    table: &ContentTable,
    harvest: &Harvest,
    cache: &DetailCache,
    now: DateTime<Utc>,
    min_age_days: u64,
    exclude: &HashSet<String>,
) -> Vec<CandidateRef> {
    let min_age = ChronoDuration::days(min_age_days as i64);
    let mut out: Vec<CandidateRef> = table
        .rows()
        .filter(|r| table.is_active(*r) && !table.is_layout(*r))
        .filter_map(|r| {
            let created = table.created(r)?;
            if now - created <= min_age {
                return None;
            }
            let id = table.id(r);
            if harvest.references(id) {
                return None;
            }
            let e = cache.fresh(table, r)?;
            if e.is_global() == Some(true) || (!exclude.is_empty() && exclude.contains(id)) {
                return None;
            }
            Some(CandidateRef {
                row: r,
                created_at: created,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| table.id(a.row).cmp(table.id(b.row)))
    });
    out
}

/// The per-candidate confirm of agents.md 6.2.4 on the fresh `before` read: `active`, empty `playlistItems`,
/// `isGlobal` not true and the listed `updatedAt`; otherwise the evidence to skip it.
pub fn confirm_orphan(before: &Value, listed_updated_at: &str) -> Result<(), String> {
    if !is_active(before) {
        return Err(format!(
            "no longer active (status={})",
            s(before, "status").unwrap_or("?")
        ));
    }
    match before.get("playlistItems") {
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(a)) => {
            return Err(format!("now referenced by {} playlist item(s)", a.len()));
        }
        _ => return Err("detail carries no playlistItems array (references unknown)".into()),
    }
    if before.get("isGlobal").and_then(Value::as_bool) == Some(true) {
        return Err("global content (isGlobal=true)".into());
    }
    let upd = s(before, "updatedAt").unwrap_or("");
    if upd != listed_updated_at {
        return Err(format!(
            "changed since it was listed (updatedAt {listed_updated_at} → {upd})"
        ));
    }
    Ok(())
}
impl Run<'_> {
    pub(super) async fn orphans(&mut self, harvest: &Harvest) {
        self.out.cover(T_ORPHANED);
        let cands = unreferenced_candidates(
            &self.table,
            harvest,
            &self.cache,
            self.now,
            self.ctx.cfg.entity.orphan_min_age_days,
            &self.handled,
        );
        self.stats
            .insert("orphanCandidates".into(), json!(cands.len()));
        let cap = self.ctx.cfg.entity.max_archives_per_run;
        let (now_list, deferred) = if cands.len() > cap {
            cands.split_at(cap)
        } else {
            (&cands[..], &[][..])
        };
        if !deferred.is_empty() {
            self.ctx.info(format!(
                "deferring {} orphan candidate(s) (OPS_MAX_ARCHIVES_PER_RUN={cap})",
                deferred.len()
            ));
            self.out.note(format!(
                "deferring {} orphan candidate(s) to later runs",
                deferred.len()
            ));
            for c in deferred {
                let id = self.table.id(c.row).to_string();
                self.unexamined(T_ORPHANED, &id);
            }
        }
        let (mut read_failed, mut late) = (0usize, 0usize);
        for c in now_list {
            let c = c.materialize(&self.table);
            let iid = self.id(T_ORPHANED, &c.id);
            if self.abort.is_some() || self.past_deadline() {
                late += 1;
                self.unexamined(T_ORPHANED, &c.id);
                continue;
            }
            self.handled.insert(c.id.clone());
            let min_age = self.ctx.cfg.entity.orphan_min_age_days;
            let mut inc = self.incident(
                T_ORPHANED,
                Severity::Info,
                "content",
                &c.id,
                format!(
                    "\"{}\" ({}) created {} ({} days ago, more than {min_age}) is active and referenced by no \
                     playlist, layout zone or replacement pointer",
                    c.name,
                    c.kind,
                    ts(c.created_at),
                    fmt_days(self.now - c.created_at)
                ),
                "Archive it (restorable from the Vizora dashboard)",
            );
            if let Some(d) = self.drift.get(SLUG_ARCHIVE).cloned() {
                inc.error = Some(d);
                inc.remediation =
                    "Not archived: the archive route drifted earlier in this run".into();
                self.out.raise(inc);
                continue;
            }
            let res = self
                .archive(
                    &c.id,
                    format!("Archive orphaned content \"{}\"", c.name),
                    Some(c.confirmation()),
                )
                .await;
            match res {
                Archive::Unneeded(ev) => {
                    self.evidence(&iid, &ev);
                    self.ctx.info(format!(
                        "orphan candidate \"{}\" ({}) skipped: {ev}",
                        c.name, c.id
                    ));
                    self.out.note(format!(
                        "orphan candidate \"{}\" ({}): skipped — {ev}",
                        c.name, c.id
                    ));
                }
                Archive::PreReadFailed(e) => {
                    read_failed += 1;
                    self.ctx.warn(format!(
                        "orphan candidate \"{}\" ({}): confirm read failed ({e}); not examined",
                        c.name, c.id
                    ));
                    self.unexamined(T_ORPHANED, &c.id);
                }
                Archive::Verified(detail) => {
                    self.attempted(&mut inc);
                    inc.remediation = format!("Archived (verified: {detail})");
                    let inc = resolved(inc, self.ctx.now());
                    self.out.fixed += 1;
                    self.archived.insert(c.id.clone(), c.file_size);
                    self.table.mark_archived(c.row);
                    self.out.note(format!(
                        "orphaned \"{}\" ({}): archived and verified",
                        c.name, c.id
                    ));
                    self.fixed_orphans.push((c.name.clone(), inc.clone()));
                    self.out.raise(inc);
                }
                Archive::DryRun => {
                    inc.remediation = "Dry run: would archive".into();
                    self.planned_sizes.insert(c.id.clone(), c.file_size);
                    self.planned_orphans
                        .push(format!("\"{}\" ({})", c.name, c.id));
                    self.out
                        .note(format!("orphaned \"{}\" ({}): would archive", c.name, c.id));
                    self.out.raise(inc);
                }
                Archive::Gone(ev) => {
                    self.evidence(&iid, &ev);
                    self.out
                        .note(format!("orphaned \"{}\" ({}): {ev}", c.name, c.id));
                }
                Archive::Drift(e) | Archive::Failed(e) | Archive::NotConfirmed(e) => {
                    self.attempted(&mut inc);
                    inc.error = Some(e);
                    inc.remediation = "Archive attempted, not confirmed; retried next run".into();
                    self.note_incident(&inc, "orphaned");
                    self.out.raise(inc);
                }
                Archive::NotSent(e) => {
                    inc.error = Some(e);
                    inc.remediation = "Not archived this run; retried next run".into();
                    self.note_incident(&inc, "orphaned");
                    self.out.raise(inc);
                }
            }
        }
        if read_failed + late + deferred.len() > 0 {
            self.ctx.info(format!(
                "orphan candidates skipped without evidence: {read_failed} read failed, {} deferred",
                late + deferred.len()
            ));
        }
    }
}
