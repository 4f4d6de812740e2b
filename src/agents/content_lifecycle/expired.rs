//! Expired content (agents.md 6.2.2): the pure detection over the table and the cache ([`detect_expired`]), the
//! confirmation on the fresh read ([`confirm_expired`]), and the remediation: repoint playlists to a deliverable
//! replacement (`repoint`), then archive (`archive`) and settle the incident.

use super::archive::Archive;
use super::detail_cache::DetailCache;
use super::fields::{is_active, is_deliverable, label, s};
use super::repoint::{Repoint, playlists_of};
use super::table::ContentTable;
use super::{CONTENT_LIST, Run, SLUG_ARCHIVE, T_EXPIRED};
use crate::agents::common;
use crate::agents::resolved;
use crate::model::{Severity, parse_ts, ts};
use crate::vizora::ApiError;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// An active listed item whose fresh detail says it expired (agents.md 6.2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredFinding {
    /// Row of the item in the [`ContentTable`].
    pub row: u32,
    /// The content id (`<targetId>` of its `expired-content` incident).
    pub id: String,
    /// The listed label: `name`, else `title`, else the id.
    pub name: String,
    /// `expiresAt` as read.
    pub expires_at: String,
    /// `replacementContentId` of the cached detail (the fresh `before` read decides).
    pub replacement: Option<String>,
    /// The listed `fileSize` in bytes (0 when null).
    pub file_size: u64,
}

/// The expiry check over the list and the cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpiredScan {
    /// Active items whose fresh cache entry has `expiresAt` ≤ `now`, in row order.
    pub findings: Vec<ExpiredFinding>,
    /// Rows of active items without a fresh entry or with an unparseable `expiresAt`: not examined.
    pub unexamined: Vec<u32>,
}

/// Expired content (agents.md 6.2.2): a listed `active` item with a fresh cache entry and `expiresAt` ≤ `now`;
/// without a fresh entry, or with an unparseable `expiresAt`, it is not examined. One pass over the rows; strings are
/// allocated only for findings.
pub fn detect_expired(
    table: &ContentTable,
    cache: &DetailCache,
    now: DateTime<Utc>,
) -> ExpiredScan {
    let mut out = ExpiredScan::default();
    for r in table.rows().filter(|r| table.is_active(*r)) {
        let Some(e) = cache.fresh(table, r) else {
            out.unexamined.push(r);
            continue;
        };
        match e.expires_time() {
            None => {}
            Some(Some(t)) if t <= now => out.findings.push(ExpiredFinding {
                row: r,
                id: table.id(r).to_string(),
                name: table.label(r).to_string(),
                expires_at: e.expires_at().unwrap_or_default().into_owned(),
                replacement: e.replacement().map(String::from),
                file_size: table.file_size(r),
            }),
            Some(Some(_)) => {}
            Some(None) => out.unexamined.push(r),
        }
    }
    out
}

/// Step 1 of 6.2.2 on the fresh `before` read: `Ok` if the item is still `active` and expired at `now`; otherwise the
/// evidence why the finding is dropped (not active any more, expiry moved forward, expiry cleared).
pub fn confirm_expired(before: &Value, now: DateTime<Utc>) -> Result<(), String> {
    if !is_active(before) {
        return Err(format!(
            "content no longer active (status={})",
            s(before, "status").unwrap_or("?")
        ));
    }
    match before.get("expiresAt") {
        None | Some(Value::Null) => Err("expiry cleared (expiresAt is null)".into()),
        Some(Value::String(t)) => match parse_ts(t) {
            Some(t) if t <= now => Ok(()),
            Some(t) => Err(format!("expiry moved forward to {}", ts(t))),
            None => Err(format!("expiresAt unparseable ({t})")),
        },
        Some(other) => Err(format!("expiresAt unparseable ({other})")),
    }
}
impl Run<'_> {
    pub(super) async fn expired(&mut self, scan_complete: bool) {
        let scan = detect_expired(&self.table, &self.cache, self.now);
        for r in scan.unexamined {
            let id = self.table.id(r).to_string();
            self.unexamined(T_EXPIRED, &id);
        }
        if scan_complete {
            self.out.cover(T_EXPIRED);
        }
        self.stats
            .insert("expiredFound".into(), json!(scan.findings.len()));
        for f in scan.findings {
            if self.abort.is_some() {
                self.unexamined(T_EXPIRED, &f.id);
                continue;
            }
            self.handled.insert(f.id.clone());
            self.expired_one(f).await;
        }
    }

    pub(super) async fn expired_one(&mut self, f: ExpiredFinding) {
        let name = &f.name;
        let mut inc = self.incident(
            T_EXPIRED,
            Severity::Warning,
            "content",
            &f.id,
            format!(
                "\"{name}\" is active but expired at {} (run time {})",
                f.expires_at,
                ts(self.now)
            ),
            "Archive it (after repointing playlists to a deliverable replacement)",
        );
        if let Some(d) = self.drift.get(SLUG_ARCHIVE).cloned() {
            // No repoint either: a repointed but unarchivable item helps nobody.
            inc.error = Some(d);
            inc.remediation =
                "Not archived: the archive route drifted earlier in this run; archive it in the Vizora dashboard"
                    .into();
            self.note_incident(&inc, "expired");
            self.out.raise(inc);
            return;
        }
        if !self.plain_id("content", &f.id) {
            self.unexamined(T_EXPIRED, &f.id);
            return;
        }
        let cpath = format!("{CONTENT_LIST}/{}", f.id);
        // Step 1: fresh read.
        let before = match self.api.get(&cpath).await {
            Ok(v) => v,
            Err(ApiError::NotFound { .. }) => {
                self.evidence(&inc.id, "content gone (404)");
                self.out.note(format!(
                    "expired \"{name}\" ({}): gone, nothing to do",
                    f.id
                ));
                return;
            }
            Err(e) => {
                self.check_fatal(&e);
                inc.error = Some(format!("pre-write read failed: {e}"));
                inc.remediation =
                    "Not archived this run (pre-write read failed); retried next run".into();
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
                return;
            }
        };
        if let Err(ev) = confirm_expired(&before, self.now) {
            self.evidence(&inc.id, &ev);
            self.out
                .note(format!("expired \"{name}\" ({}): dropped — {ev}", f.id));
            return;
        }
        // Step 2: replacement.
        let replacement = s(&before, "replacementContentId")
            .filter(|r| !r.is_empty())
            .map(String::from);
        let mut repl_note = String::new();
        let mut deliverable_repl: Option<(String, String)> = None;
        if let Some(r) = &replacement
            && !self.plain_id("replacement content", r)
        {
            // Never requested; such an id cannot name deliverable content (design/vizora-api.md 2.6).
            repl_note = format!(
                "; replacement \"{}\" is not a plain id (never requested)",
                common::shown_id(r)
            );
        } else if let Some(r) = &replacement {
            match self.api.get(&format!("{CONTENT_LIST}/{r}")).await {
                Ok(rv) if is_deliverable(&rv, self.now) => {
                    deliverable_repl = Some((r.clone(), label(&rv)));
                }
                Ok(rv) => {
                    repl_note = format!(
                        "; replacement {r} is not deliverable (status={})",
                        s(&rv, "status").unwrap_or("?")
                    );
                }
                Err(ApiError::NotFound { .. }) => {
                    repl_note = format!("; replacement {r} does not exist");
                }
                Err(e) => {
                    self.check_fatal(&e);
                    inc.error = Some(format!("replacement read failed: {e}"));
                    inc.remediation =
                        "Not archived: the replacement could not be read, so playlists could not be repointed; \
                         retried next run"
                            .into();
                    self.note_incident(&inc, "expired");
                    self.out.raise(inc);
                    return;
                }
            }
        }
        let mut repointed = 0usize;
        let mut planned_repoints = 0usize;
        if let Some((r, rname)) = &deliverable_repl {
            for pid in playlists_of(&before) {
                match self.repoint(&pid, &f.id, name, r).await {
                    Ok(Repoint::Done) => repointed += 1,
                    Ok(Repoint::DryRun) => planned_repoints += 1,
                    Ok(Repoint::Skipped(why)) => {
                        self.ctx.info(format!("repoint of {pid} skipped: {why}"));
                    }
                    Err(e) => {
                        // Step 3: a failed repoint → no archive.
                        inc.error = Some(e.clone());
                        inc.remediation = format!(
                            "Not archived: repointing playlist {pid} to \"{rname}\" failed ({e}); retried next run"
                        );
                        if repointed > 0 {
                            inc.remediation
                                .push_str(&format!(" ({repointed} playlist(s) already repointed)"));
                        }
                        self.attempted(&mut inc);
                        self.note_incident(&inc, "expired");
                        self.out.raise(inc);
                        return;
                    }
                }
            }
            self.stats.insert(
                "repointedPlaylists".into(),
                json!(
                    self.stats
                        .get("repointedPlaylists")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        + repointed as u64
                ),
            );
        }
        // Step 4–5: archive and verify.
        let res = self
            .archive(&f.id, format!("Archive expired content \"{name}\""), None)
            .await;
        let repl_text = match &deliverable_repl {
            Some((r, rname)) if self.ctx.effects().is_dry_run() => {
                format!("; would repoint {planned_repoints} playlist(s) to \"{rname}\" ({r})")
            }
            Some((r, rname)) => format!("; repointed {repointed} playlist(s) to \"{rname}\" ({r})"),
            None => repl_note.clone(),
        };
        match res {
            Archive::Verified(detail) => {
                self.attempted(&mut inc);
                inc.remediation = format!("Archived (verified: {detail}){repl_text}");
                let inc = resolved(inc, self.ctx.now());
                self.out.fixed += 1;
                self.archived.insert(f.id.clone(), f.file_size);
                self.table.mark_archived(f.row);
                self.out.note(format!(
                    "expired \"{name}\" ({}): archived and verified{repl_text}",
                    f.id
                ));
                self.fixed_expired.push((name.clone(), inc.clone()));
                self.out.raise(inc);
            }
            Archive::DryRun => {
                inc.remediation = format!("Dry run: would archive{repl_text}");
                self.planned_expired.push(format!("\"{name}\" ({})", f.id));
                self.planned_sizes.insert(f.id.clone(), f.file_size);
                self.out.note(format!(
                    "expired \"{name}\" ({}): would archive{repl_text}",
                    f.id
                ));
                self.out.raise(inc);
            }
            Archive::Gone(ev) => {
                self.evidence(&inc.id, &ev);
                self.out
                    .note(format!("expired \"{name}\" ({}): {ev}", f.id));
            }
            Archive::Drift(e) => {
                self.attempted(&mut inc);
                inc.error = Some(e);
                inc.remediation = format!(
                    "Not archived: the archive route is missing (API contract drift); archive it in the Vizora \
                     dashboard{repl_text}"
                );
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
            }
            Archive::Failed(e) | Archive::NotConfirmed(e) => {
                self.attempted(&mut inc);
                inc.error = Some(e);
                inc.remediation =
                    format!("Archive attempted, not confirmed; retried next run{repl_text}");
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
            }
            Archive::NotSent(e) | Archive::PreReadFailed(e) | Archive::Unneeded(e) => {
                inc.error = Some(e);
                inc.remediation = format!("Not archived this run; retried next run{repl_text}");
                self.note_incident(&inc, "expired");
                self.out.raise(inc);
            }
        }
    }
}
