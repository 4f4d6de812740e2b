//! The detail cache refresh of one run (agents.md 6.2.1): which entries to read ([`refresh_plan`]), the bounded,
//! paced reads ([`refresh_details`]) and the run's log line and stats.

use super::detail_cache::DetailCache;
use super::table::ContentTable;
use super::{CONTENT_LIST, DETAIL_CONCURRENCY, Run};
use crate::agents::common;
use crate::vizora::{ApiError, VizoraApi};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;
use std::time::Instant;

/// The detail reads of one run (agents.md 6.2.1): rows of `table` that have no fresh entry in `cache` (every row
/// needs a detail: see [`ContentTable`]), layouts first, then oldest `createdAt` (unparseable last), then id; at most
/// `limit`. The second value is the number of stale or missing entries in total (the rest wait for later runs).
pub fn refresh_plan(table: &ContentTable, cache: &DetailCache, limit: usize) -> (Vec<u32>, usize) {
    let mut stale: Vec<(bool, Option<DateTime<Utc>>, u32)> = table
        .rows()
        .filter(|r| cache.fresh(table, *r).is_none())
        .map(|r| (table.is_layout(r), table.created(r), r))
        .collect();
    let total = stale.len();
    let cmp = |a: &(bool, Option<DateTime<Utc>>, u32), b: &(bool, Option<DateTime<Utc>>, u32)| {
        b.0.cmp(&a.0)
            .then_with(|| match (a.1, b.1) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| table.id(a.2).cmp(table.id(b.2)))
    };
    if limit < stale.len() {
        stale.select_nth_unstable_by(limit, cmp);
        stale.truncate(limit);
    }
    stale.sort_unstable_by(cmp);
    (stale.into_iter().map(|(_, _, r)| r).collect(), total)
}

/// Counts of one [`refresh_details`] pass.
#[derive(Debug, Default)]
pub struct RefreshReport {
    /// Details read and stored.
    pub ok: usize,
    /// Reads that failed or returned an unusable detail (the item stays not examined).
    pub failed: usize,
    /// Reads not made (deadline or budget): they wait for the next run.
    pub deferred: usize,
    /// Items whose detail answered 404 (gone since the list was read; marked gone in the table, entry removed).
    pub gone: usize,
    /// Stale or missing entries before the pass.
    pub stale_total: usize,
    /// Reads planned this run (at most the limit).
    pub planned: usize,
    /// Listed ids that are not plain ids ([`common::path_safe_id`]): never requested, the item stays not examined.
    pub invalid_ids: usize,
    /// The first fatal API error (login lost): the run stops after this pass.
    pub fatal: Option<ApiError>,
}

/// Refreshes stale or missing entries (agents.md 6.2.1): the [`refresh_plan`] of `limit` reads,
/// `GET /api/v1/content/:id` with `concurrency` in flight (paced by the client's budget), no new read after
/// `deadline`. Each detail becomes a compact entry as it arrives (no payload is kept); 404 → the row is marked gone and
/// its entry removed. `warn` receives one line per failed read; `now` stamps `fetchedAt`.
#[allow(clippy::too_many_arguments)]
pub async fn refresh_details(
    api: &dyn VizoraApi,
    table: &mut ContentTable,
    cache: &mut DetailCache,
    limit: usize,
    concurrency: usize,
    deadline: Instant,
    now: &(dyn Fn() -> DateTime<Utc> + Sync),
    warn: &mut (dyn FnMut(String) + Send),
) -> RefreshReport {
    let (mut plan, stale_total) = refresh_plan(table, cache, limit);
    // An API id enters a request path only when it is a plain id (design/vizora-api.md 2.6); the others are never
    // requested and stay not examined, reported by one WARNING per pass (never one per item).
    let before = plan.len();
    let mut first_bad: Option<String> = None;
    plan.retain(|&r| {
        let ok = common::path_safe_id(table.id(r));
        if !ok && first_bad.is_none() {
            first_bad = Some(common::shown_id(table.id(r)));
        }
        ok
    });
    let mut rep = RefreshReport {
        stale_total,
        planned: plan.len(),
        invalid_ids: before - plan.len(),
        ..RefreshReport::default()
    };
    if let Some(ex) = first_bad {
        warn(format!(
            "{CONTENT_LIST}: {} listed id(s) are not plain ids (e.g. \"{ex}\"); never requested, not examined",
            rep.invalid_ids
        ));
    }
    let mut links: Vec<(u32, u32)> = Vec::with_capacity(plan.len());
    let mut gone: Vec<u32> = Vec::new();
    {
        let t: &ContentTable = table;
        let mut results = futures::stream::iter(plan)
            .map(|r| {
                let path = format!("{CONTENT_LIST}/{}", t.id(r));
                async move {
                    if Instant::now() >= deadline {
                        return (r, None);
                    }
                    (r, Some(api.get(&path).await))
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((r, res)) = results.next().await {
            let id = t.id(r);
            match res {
                None => rep.deferred += 1,
                Some(Ok(v)) => match cache.store_detail(id, &v, now()) {
                    Ok(slot) => {
                        links.push((r, slot));
                        rep.ok += 1;
                    }
                    Err(why) => {
                        rep.failed += 1;
                        warn(format!(
                            "content {id}: detail not usable ({why}); not examined"
                        ));
                    }
                },
                Some(Err(ApiError::NotFound { .. })) => {
                    cache.remove(id);
                    gone.push(r);
                }
                Some(Err(e)) => {
                    if e.is_fatal() && rep.fatal.is_none() {
                        rep.fatal = Some(e.clone());
                    }
                    if matches!(e, ApiError::BudgetExhausted { .. }) {
                        rep.deferred += 1;
                    } else {
                        rep.failed += 1;
                        warn(format!("content detail read failed: {e}"));
                    }
                }
            }
        }
    }
    for (r, slot) in links {
        table.set_entry(r, slot);
    }
    rep.gone = gone.len();
    for r in gone {
        table.mark_gone(r);
    }
    rep
}

impl Run<'_> {
    /// Refreshes stale or missing entries within the read budget and the deadline ([`refresh_details`]) and logs the
    /// counts.
    pub(super) async fn refresh_details(&mut self) {
        let limit = self.ctx.cfg.entity.content_detail_reads_per_run;
        let api = self.api.clone();
        let ctx = self.ctx;
        let now = || ctx.now();
        let mut warn = |m: String| ctx.warn(m);
        let rep = refresh_details(
            &*api,
            &mut self.table,
            &mut self.cache,
            limit,
            DETAIL_CONCURRENCY,
            ctx.deadline,
            &now,
            &mut warn,
        )
        .await;
        if let Some(e) = &rep.fatal {
            self.check_fatal(e);
        }
        let left = rep.stale_total.saturating_sub(rep.ok + rep.gone);
        self.ctx.info(format!(
            "detail cache: {} entries, {} refreshed, {} failed, {} deferred, {} gone, {left} still stale",
            self.cache.len(),
            rep.ok,
            rep.failed,
            rep.deferred,
            rep.gone
        ));
        self.stats
            .insert("detailReads".into(), json!(rep.ok + rep.failed + rep.gone));
        self.stats
            .insert("detailReadFailures".into(), json!(rep.failed));
        self.stats.insert("staleEntriesLeft".into(), json!(left));
    }
}
