//! content-lifecycle (agents.md 6.2, catalogue 3.2): expired content (archive, with replacement repoint), orphaned
//! content (archive), missing thumbnails, oversized files and the organisation's storage quota.
//!
//! Flow of one run:
//!
//! 1. `GET /api/v1/organizations/storage` (read first: it also opens the session, so the concurrent walks share one
//!    login). The detail cache ([`detail_cache`], 6.2.1) is loaded, then [`observe`] walks
//!    `GET /api/v1/content` and `GET /api/v1/playlists` concurrently (5.4), turning each item into the compact
//!    [`ContentTable`] / [`PlaylistRefs`] as its page arrives (no JSON kept; rows are linked to their cache entries).
//!    A page-1 failure or an unknown list shape ends the run with exit 2 and no state write; an incomplete walk raises
//!    info `scan-truncated` and covers none of the types depending on the lists.
//! 2. [`refresh_details`] refreshes stale entries within `OPS_CONTENT_DETAIL_READS_PER_RUN` reads, the budget and the
//!    deadline, storing each detail compactly as it arrives.
//! 3. Detection is pure ([`detect_expired`], [`harvest_references`], [`unreferenced_candidates`],
//!    [`thumbnail_check`], [`size_verdict`], [`storage_verdict`]); every mutation then goes through the audited
//!    mutation helper with a fresh `before` read and a confirming read of its own ([`confirm_expired`],
//!    [`confirm_orphan`]).
//! 4. Expired content (6.2.2): repoint playlists to a deliverable replacement (`PATCH /api/v1/playlists/:id` with the
//!    complete item list, [`repoint_body`]), then `POST /api/v1/content/:id/archive` and verify by re-reading.
//! 5. Orphans (6.2.4) only on a complete scan and a complete reference harvest; storage (6.2.5); thumbnails and
//!    sizes (6.2.3).
//! 6. Contract drift (exit 2, full write), fix notifications (7.6), inline critical alerts on drift and storage
//!    escalation, report lines, stats, and at the very end the cache write (never in a dry run, never without a
//!    state write). The runtime writes the state after this returns, so the cache is written just before it.
//!
//! Nothing here deletes anything: content is archived, playlists are repointed.

mod archive;
pub mod compact;
pub mod detail_cache;
mod expired;
mod fields;
mod finish;
mod observe;
mod orphans;
mod outcome;
mod oversized;
mod references;
mod refresh;
mod repoint;
mod storage;
pub mod table;
#[cfg(test)]
mod tests;
mod thumbnail_probe;
mod thumbnails;

pub use expired::{ExpiredFinding, ExpiredScan, confirm_expired, detect_expired};
pub use fields::{fmt_bytes, is_deliverable, label};
pub use observe::{ContentSink, Observation, observe};
pub use orphans::{Candidate, CandidateRef, confirm_orphan, unreferenced_candidates};
pub use oversized::{SizeVerdict, size_verdict};
pub use references::{Harvest, PlaylistRefs, PlaylistSink, harvest_references};
pub use refresh::{RefreshReport, refresh_details, refresh_plan};
pub use repoint::{playlist_contains, playlists_of, repoint_body};
pub use storage::{StorageVerdict, storage_still_critical, storage_verdict};
pub use thumbnail_probe::probe_http_thumbnail;
pub use thumbnails::{ThumbCheck, cached_url_form, thumbnail_check};

use super::{AgentContext, AgentOutcome, WriteMode};
use crate::model::{Incident, Severity};
use crate::vizora::{ApiError, VizoraApi};
use chrono::{DateTime, Utc};
use detail_cache::{CacheFile, DetailCache};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use table::{ContentTable, PriorSeen, TableOptions};

/// Incident types of this agent (agents.md 3.2).
pub const CATALOGUE: &[&str] = &[
    T_EXPIRED,
    T_ORPHANED,
    T_THUMB,
    T_OVERSIZED,
    T_STORAGE_HIGH,
    T_STORAGE_FAILED,
    T_REF_INCOMPLETE,
    T_SCAN_TRUNCATED,
    T_DRIFT,
];

const T_EXPIRED: &str = "expired_content";
const T_ORPHANED: &str = "orphaned_content";
const T_THUMB: &str = "missing_thumbnail";
const T_OVERSIZED: &str = "oversized_file";
const T_STORAGE_HIGH: &str = "storage_high";
const T_STORAGE_FAILED: &str = "storage_check_failed";
const T_REF_INCOMPLETE: &str = "reference-scan-incomplete";
const T_SCAN_TRUNCATED: &str = "scan-truncated";
const T_DRIFT: &str = "api-contract-drift";

/// Route slug of the archive route (contract drift, 3.2).
pub const SLUG_ARCHIVE: &str = "post-content-archive";
/// Route slug of the playlist PATCH (contract drift, 3.2).
pub const SLUG_PATCH_PLAYLISTS: &str = "patch-playlists";

const CONTENT_LIST: &str = "/api/v1/content";
const PLAYLIST_LIST: &str = "/api/v1/playlists";
const STORAGE_PATH: &str = "/api/v1/organizations/storage";
/// Detail reads in flight at once (the host-wide budget paces them; the client re-logs in once for several
/// in-flight requests rejected with the same 401, agents.md 5.2).
const DETAIL_CONCURRENCY: usize = 4;
/// Most redirects a thumbnail HEAD follows (agents.md 6.2.3).
pub const THUMBNAIL_MAX_REDIRECTS: usize = 5;

struct Run<'a> {
    ctx: &'a AgentContext,
    api: Arc<dyn VizoraApi>,
    out: AgentOutcome,
    now: DateTime<Utc>,
    priors: HashMap<String, Incident>,
    /// Prior incident kinds by target id (only stored incidents matter for `unexamined`).
    prior_kinds: HashMap<String, Vec<String>>,
    cache: DetailCache,
    table: ContentTable,
    /// Set when a fatal API error (second 401, login failure) stops the run.
    abort: Option<ApiError>,
    /// A mutation was sent (for the partial-write rule of 1.4).
    mutated: bool,
    /// Ids archived (verified) this run, with their file size.
    archived: HashMap<String, u64>,
    /// Ids judged by a remediation path this run (expired, orphan): excluded from later archive candidates.
    handled: HashSet<String>,
    drift: HashMap<&'static str, String>,
    route_ok: HashSet<&'static str>,
    fixed_expired: Vec<(String, Incident)>,
    fixed_orphans: Vec<(String, Incident)>,
    storage_archived: Vec<String>,
    planned_expired: Vec<String>,
    planned_orphans: Vec<String>,
    /// Dry run: ids that would have been archived, with their size (so the plan matches the real run).
    planned_sizes: HashMap<String, u64>,
    stats: serde_json::Map<String, Value>,
    s3: Option<Result<Arc<object_store::aws::AmazonS3>, String>>,
    /// Ids from the API refused for a request path ([`common::path_safe_id`]), by use: count and the first one
    /// (one WARNING per use at the end of the run, never one per item).
    bad_ids: std::collections::BTreeMap<&'static str, (usize, String)>,
}

/// Runs the agent once (agents.md 6.2).
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let priors = ctx.priors();
    let mut prior_kinds: HashMap<String, Vec<String>> = HashMap::new();
    for id in priors.keys() {
        if let Some((agent, kind, target)) = crate::model::parse_incident_id(id)
            && agent == ctx.agent.as_str()
        {
            prior_kinds
                .entry(target.to_string())
                .or_default()
                .push(kind.to_string());
        }
    }
    let mut r = Run {
        ctx,
        api: ctx.api().clone(),
        out: AgentOutcome::new(CATALOGUE),
        now: ctx.started,
        priors,
        prior_kinds,
        cache: DetailCache::default(),
        table: ContentTable::default(),
        abort: None,
        mutated: false,
        archived: HashMap::new(),
        handled: HashSet::new(),
        drift: HashMap::new(),
        route_ok: HashSet::new(),
        fixed_expired: Vec::new(),
        fixed_orphans: Vec::new(),
        storage_archived: Vec::new(),
        planned_expired: Vec::new(),
        planned_orphans: Vec::new(),
        planned_sizes: HashMap::new(),
        stats: serde_json::Map::new(),
        s3: None,
        bad_ids: std::collections::BTreeMap::new(),
    };
    r.run().await;
    r.out
}

/// The per-content incident types whose prior incidents the sweep judges from the list.
const PER_CONTENT: [&str; 4] = [T_EXPIRED, T_ORPHANED, T_THUMB, T_OVERSIZED];

impl Run<'_> {
    async fn run(&mut self) {
        // The storage figures are read first: this request also opens the session, so the two concurrent walks
        // below share one login instead of racing to log in twice.
        let storage_read = self.api.get(STORAGE_PATH).await;
        if let Err(e) = &storage_read
            && e.is_fatal()
        {
            self.out
                .fail(format!("{STORAGE_PATH}: {e}"), WriteMode::None);
            return;
        }

        // The detail cache (6.2.1) is loaded before the walks, so each listed item is linked to its entry as it
        // streams past.
        let cache_file = CacheFile::from_config(&self.ctx.cfg);
        let loaded = cache_file.load(self.ctx.effects().is_dry_run());
        for w in &loaded.warnings {
            self.ctx.warn(w);
        }
        for e in &loaded.errors {
            self.ctx.error(e);
        }
        self.cache = loaded.cache;

        // 1. Walks (concurrent, 5.4), straight into the compact table.
        let prior_targets = self
            .priors
            .values()
            .filter(|p| p.is_active() && PER_CONTENT.contains(&p.kind.as_str()))
            .map(|p| p.target_id.clone())
            .collect();
        let opts = TableOptions {
            s3_configured: self.ctx.cfg.db.s3_endpoint.is_some(),
            prior_targets,
        };
        let api = self.api.clone();
        let obs = match observe(&*api, &self.cache, opts).await {
            Ok(o) => o,
            Err(msg) => {
                self.out.fail(msg, WriteMode::None);
                return;
            }
        };
        let scan_complete = obs.scan_complete();
        let Observation {
            table,
            playlists,
            content_list: content,
            playlist_list,
        } = obs;
        self.table = table;
        self.ctx.info(format!(
            "fetched {} content item(s) ({}), {} playlist(s) ({})",
            content.collected,
            if content.complete {
                "complete"
            } else {
                "incomplete"
            },
            playlist_list.collected,
            if playlist_list.complete {
                "complete"
            } else {
                "incomplete"
            }
        ));
        self.stats
            .insert("contentListed".into(), json!(content.collected));
        self.stats
            .insert("playlistsListed".into(), json!(playlist_list.collected));
        self.stats
            .insert("scanComplete".into(), json!(scan_complete));
        self.out.cover(T_SCAN_TRUNCATED);
        if !scan_complete {
            let mut parts = Vec::new();
            for (name, l) in [("content", &content), ("playlists", &playlist_list)] {
                if !l.complete {
                    parts.push(format!(
                        "{name}: collected {}/{} ({})",
                        l.collected,
                        l.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                        l.reason.as_deref().unwrap_or("incomplete")
                    ));
                }
            }
            let msg = format!("entity list walk incomplete: {}", parts.join("; "));
            self.ctx.warn(&msg);
            self.out
                .note(format!("scan truncated: {}", parts.join("; ")));
            let inc = self.incident(
                T_SCAN_TRUNCATED,
                Severity::Info,
                "content",
                "entity-lists",
                msg,
                "Investigate the failing page or the API (logs of vizora-middleware); content-list checks and \
                 archiving wait for a complete scan",
            );
            self.out.raise(inc);
        }

        // 2. Detail cache refresh (6.2.1).
        self.refresh_details().await;
        if scan_complete {
            let dropped = self.cache.retain_listed(&self.table);
            if dropped > 0 {
                self.ctx.info(format!(
                    "content cache: dropped {dropped} entries no longer needed"
                ));
            }
        }
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 3. Expired content (6.2.2).
        self.expired(scan_complete).await;
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 4. Orphans (6.2.4).
        let harvest = harvest_references(&self.table, playlists, &self.cache);
        let archivable = if !scan_complete {
            Err("content or playlist walk incomplete".to_string())
        } else if !harvest.complete() {
            Err(format!(
                "reference harvest incomplete: {}",
                harvest.reason()
            ))
        } else {
            Ok(())
        };
        self.out.cover(T_REF_INCOMPLETE);
        match &archivable {
            Ok(()) => {
                self.orphans(&harvest).await;
            }
            Err(reason) => {
                self.ctx.info(format!("orphan archive skipped: {reason}"));
                self.out.note(format!("orphan archive skipped: {reason}"));
                let inc = self.incident(
                    T_REF_INCOMPLETE,
                    Severity::Info,
                    "content",
                    "content-references",
                    format!(
                        "References to content are not all known ({reason}); orphan and storage archiving \
                         skipped this run"
                    ),
                    "None needed if the cache is still warming (one run reads up to \
                     OPS_CONTENT_DETAIL_READS_PER_RUN details); otherwise check the failing reads in the log",
                );
                self.out.raise(inc);
            }
        }
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 5. Storage (6.2.5).
        self.storage(storage_read, &harvest, archivable.is_ok())
            .await;
        if self.abort.is_some() {
            return self.finish(&cache_file).await;
        }

        // 6. Thumbnails and size (6.2.3).
        self.thumbnails_and_size(scan_complete).await;

        // Sweep evidence for prior per-content incidents.
        if scan_complete {
            let mut suffixes = Vec::new();
            for p in self.priors.values().filter(|p| p.is_active()) {
                if !PER_CONTENT.contains(&p.kind.as_str()) {
                    continue;
                }
                let sfx = match self.table.prior_seen(&p.target_id) {
                    None => " — content no longer listed (gone)".to_string(),
                    Some(PriorSeen::Inactive(st)) => {
                        format!(" — content no longer active (status={st})")
                    }
                    Some(PriorSeen::Active) => continue,
                };
                suffixes.push((p.id.clone(), sfx));
            }
            for (id, sfx) in suffixes {
                self.out.resolve_suffix.entry(id).or_insert(sfx);
            }
        }
        self.finish(&cache_file).await;
    }
}
