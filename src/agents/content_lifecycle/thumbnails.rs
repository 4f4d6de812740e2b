//! Thumbnails (agents.md 6.2.3): the pure judgement of a row's thumbnail ([`thumbnail_check`]: missing, cached,
//! to probe by HTTP or S3, not examined) and the pass over the table that probes within
//! `OPS_THUMBNAIL_PROBES_PER_RUN`, remembers each probe in the detail cache and raises `missing_thumbnail`; the size
//! check of each row runs in the same pass (`oversized`).

use super::detail_cache::{EntryRef, ThumbnailCheck};
use super::fields::fmt_bytes;
use super::oversized::{SizeVerdict, size_verdict};
use super::table::{ContentTable, ThumbState, is_http_url};
use super::thumbnail_probe::probe_http_thumbnail;
use super::{Run, T_OVERSIZED, T_THUMB};
use crate::model::{Severity, parse_ts, ts};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::json;

/// A thumbnail URL as the cache keeps it: credentials in userinfo or the query masked (agents.md 5.9; the cache file
/// is 0644), the URL itself otherwise. Probes use the listed URL; the cached form only says "same URL as probed".
pub fn cached_url_form(url: &str) -> std::borrow::Cow<'_, str> {
    if url.contains(['@', '?']) {
        std::borrow::Cow::Owned(crate::redact::redact_str(url))
    } else {
        std::borrow::Cow::Borrowed(url)
    }
}

/// How a thumbnail is judged (agents.md 6.2.3); strings borrow from the table and the cache.
#[derive(Debug, Clone, PartialEq)]
pub enum ThumbCheck<'a> {
    /// `thumbnail` is null: finding without a probe.
    Missing,
    /// A cached probe of the same URL younger than the recheck interval.
    Cached {
        /// The cached probe answered as required (final 2xx, or the object exists).
        ok: bool,
        /// Why the cached probe failed (redacted); `None` when it passed or gave no reason.
        detail: Option<&'a str>,
    },
    /// Probe `HEAD url` (http/https).
    Http(&'a str),
    /// Probe `HeadObject` of this key in `MINIO_BUCKET`.
    S3(&'a str),
    /// Not examined (S3 unconfigured, unknown URL form, unparseable field).
    NotExamined(&'static str),
}

/// The thumbnail check of row `r` if it is a listed active image or video (`None` for other items): null →
/// [`ThumbCheck::Missing`]; a cached result for the same URL checked less than `recheck_hours` before `now` →
/// [`ThumbCheck::Cached`]; `http(s)` → [`ThumbCheck::Http`]; `minio://<key>` → [`ThumbCheck::S3`] when
/// `s3_configured`, else not examined; anything else → not examined. `entry` is the row's fresh cache entry.
pub fn thumbnail_check<'a>(
    table: &'a ContentTable,
    r: u32,
    entry: Option<EntryRef<'a>>,
    now: DateTime<Utc>,
    recheck_hours: u64,
    s3_configured: bool,
) -> Option<ThumbCheck<'a>> {
    if !table.is_active(r) {
        return None;
    }
    let url = match table.thumb(r) {
        ThumbState::NoCheck => return None,
        ThumbState::Missing => return Some(ThumbCheck::Missing),
        ThumbState::NotString => return Some(ThumbCheck::NotExamined("thumbnail is not a string")),
        // Not kept: the cache held no probe for the item, so only the URL form decides.
        ThumbState::MinioNotKept if s3_configured => {
            return Some(ThumbCheck::NotExamined("minio:// thumbnail URL not kept"));
        }
        ThumbState::MinioNotKept => {
            return Some(ThumbCheck::NotExamined(
                "minio:// thumbnail and S3 is not configured",
            ));
        }
        ThumbState::OtherNotKept => {
            return Some(ThumbCheck::NotExamined("unknown thumbnail URL form"));
        }
        ThumbState::Url(span) => table.text(span),
    };
    if let Some(t) = entry.and_then(|e| e.thumbnail())
        && t.url == cached_url_form(url)
        && parse_ts(&t.checked_at).is_some_and(|at| {
            let age = now - at;
            age >= ChronoDuration::zero() && age < ChronoDuration::hours(recheck_hours as i64)
        })
    {
        return Some(ThumbCheck::Cached {
            ok: t.ok,
            detail: t.detail.as_deref(),
        });
    }
    Some(if is_http_url(url) {
        ThumbCheck::Http(url)
    } else if let Some(key) = url.strip_prefix("minio://") {
        if s3_configured {
            ThumbCheck::S3(key)
        } else {
            ThumbCheck::NotExamined("minio:// thumbnail and S3 is not configured")
        }
    } else {
        ThumbCheck::NotExamined("unknown thumbnail URL form")
    })
}
impl Run<'_> {
    pub(super) async fn thumbnails_and_size(&mut self, scan_complete: bool) {
        if scan_complete {
            self.out.cover(T_THUMB);
            self.out.cover(T_OVERSIZED);
        }
        let cfg = self.ctx.cfg.clone();
        let s3_configured = cfg.db.s3_endpoint.is_some();
        let max_probes = cfg.entity.thumbnail_probes_per_run;
        let mut probes = 0usize;
        let mut not_examined = 0usize;
        /// What one row's thumbnail needs, owned (the check borrows the table and the cache).
        enum Todo {
            Nothing,
            Finding(String),
            NotExamined,
            Http(String),
            S3(String),
        }
        for r in 0..self.table.len() as u32 {
            if self.table.is_gone(r) || !self.table.is_active(r) || self.table.is_archived(r) {
                continue;
            }
            // Size.
            match size_verdict(&self.table, r, cfg.entity.max_file_size_bytes) {
                SizeVerdict::Ok => {}
                SizeVerdict::Unparseable => {
                    let id = self.table.id(r).to_string();
                    self.unexamined(T_OVERSIZED, &id);
                }
                SizeVerdict::Oversized(b) => {
                    let (id, name) = (self.table.id(r).to_string(), self.table.label(r));
                    let msg = format!(
                        "\"{name}\" has fileSize {} > {} (OPS_MAX_FILE_SIZE_MB)",
                        fmt_bytes(b),
                        fmt_bytes(cfg.entity.max_file_size_bytes)
                    );
                    self.out.note(format!("oversized: {msg}"));
                    let inc = self.incident(
                        T_OVERSIZED,
                        Severity::Warning,
                        "content",
                        &id,
                        msg,
                        "Re-encode or compress the file and replace it; large files slow down players",
                    );
                    self.out.raise(inc);
                }
            }
            // Thumbnail.
            let todo = {
                let entry = self.cache.fresh(&self.table, r);
                match thumbnail_check(
                    &self.table,
                    r,
                    entry,
                    self.ctx.now(),
                    cfg.entity.thumbnail_recheck_hours,
                    s3_configured,
                ) {
                    None | Some(ThumbCheck::Cached { ok: true, .. }) => Todo::Nothing,
                    Some(ThumbCheck::Missing) => Todo::Finding("thumbnail is null".into()),
                    Some(ThumbCheck::Cached { ok: false, detail }) => Todo::Finding(format!(
                        "thumbnail probe failed ({}; cached result)",
                        detail.unwrap_or("no detail")
                    )),
                    Some(ThumbCheck::NotExamined(_)) => Todo::NotExamined,
                    Some(ThumbCheck::Http(_) | ThumbCheck::S3(_))
                        if probes >= max_probes || self.past_deadline() =>
                    {
                        Todo::NotExamined
                    }
                    Some(ThumbCheck::Http(u)) => Todo::Http(u.to_string()),
                    Some(ThumbCheck::S3(k)) => Todo::S3(k.to_string()),
                }
            };
            let failure: Option<String> = match todo {
                Todo::Nothing => None,
                Todo::Finding(f) => Some(f),
                Todo::NotExamined => {
                    not_examined += 1;
                    let id = self.table.id(r).to_string();
                    self.unexamined(T_THUMB, &id);
                    None
                }
                Todo::Http(url) => {
                    probes += 1;
                    let id = self.table.id(r).to_string();
                    let res =
                        probe_http_thumbnail(&self.ctx.http, &url, cfg.api.probe_timeout).await;
                    self.remember_thumbnail(&id, &url, &res);
                    res.err().map(|e| format!("thumbnail probe failed: {e}"))
                }
                Todo::S3(key) => {
                    probes += 1;
                    let id = self.table.id(r).to_string();
                    match self.s3_head(&key).await {
                        Ok(res) => {
                            let url = format!("minio://{key}");
                            self.remember_thumbnail(&id, &url, &res);
                            res.err().map(|e| format!("thumbnail probe failed: {e}"))
                        }
                        Err(e) => {
                            self.ctx.warn(format!(
                                "thumbnail of {id}: S3 HeadObject failed ({e}); not examined"
                            ));
                            not_examined += 1;
                            self.unexamined(T_THUMB, &id);
                            None
                        }
                    }
                }
            };
            if let Some(why) = failure {
                let id = self.table.id(r).to_string();
                let msg = format!(
                    "\"{}\" ({}) has no usable thumbnail: {}",
                    self.table.label(r),
                    self.table.kind(r).unwrap_or("?"),
                    crate::redact::redact_str(&why)
                );
                self.out.note(format!("missing thumbnail: {msg}"));
                let inc = self.incident(
                    T_THUMB,
                    Severity::Warning,
                    "content",
                    &id,
                    msg,
                    "Regenerate the thumbnail (re-upload or re-process the media in the Vizora dashboard)",
                );
                self.out.raise(inc);
            }
        }
        self.stats.insert("thumbnailProbes".into(), json!(probes));
        if not_examined > 0 {
            self.ctx
                .info(format!("{not_examined} thumbnail(s) not examined (S3 unconfigured, probe cap, or unknown form)"));
        }
    }

    pub(super) fn remember_thumbnail(&mut self, id: &str, url: &str, r: &Result<(), String>) {
        let now = ts(self.ctx.now());
        self.cache.set_thumbnail(
            id,
            ThumbnailCheck {
                url: cached_url_form(url).into_owned(),
                ok: r.is_ok(),
                checked_at: now,
                detail: r.as_ref().err().map(|e| crate::redact::redact_str(e)),
            },
        );
    }
}
