//! The content-lifecycle part of the scale benchmark, measuring the agent's own code: the walk phase is
//! [`observe`] (both list walks straight into the compact table) and [`refresh_details`] (every detail read of an
//! empty cache, each stored compactly as it arrives); the local work is the agent's pure detection functions over
//! that observation; then, apart from the figures of the walk+detection process, the cache file write and re-load.

use super::*;
use vizora_ops::agents::content_lifecycle::detail_cache::{
    CACHE_FILE_NAME, CacheEntry, CacheFile, DetailCache,
};
use vizora_ops::agents::content_lifecycle::table::TableOptions;
use vizora_ops::agents::content_lifecycle::{
    SizeVerdict, StorageVerdict, ThumbCheck, detect_expired, harvest_references, observe,
    refresh_details, refresh_plan, size_verdict, storage_verdict, thumbnail_check,
    unreferenced_candidates,
};

pub(super) fn content_lifecycle(
    rt: &tokio::runtime::Runtime,
    client: Client,
    cfg: &Config,
    concurrency: usize,
    seeded: &BTreeMap<String, u64>,
) -> anyhow::Result<Value> {
    let e = &cfg.entity;
    let s3_configured = cfg.db.s3_endpoint.is_some();
    // ── The walk: the agent's observe + refresh_details ──
    let t_walk = Instant::now();
    let (storage, obs, cache, refresh, steps) = rt.block_on(async {
        let mut steps = Vec::new();
        // The agent reads the storage figures first (it opens the session).
        let (storage, st) = get_step(
            &client,
            "GET /organizations/storage (+login)",
            "/api/v1/organizations/storage",
        )
        .await?;
        steps.push(st);
        // An empty cache (the first run over the tenant: every active item and live layout is read).
        let mut cache = DetailCache::default();
        let (r0, c0, t0, m0) = (
            client.stats().requests,
            cpu_s(),
            Instant::now(),
            mem_now().0,
        );
        let opts = TableOptions {
            s3_configured,
            prior_targets: HashSet::new(),
        };
        let mut obs = observe(&client, &cache, opts)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let list_note = |l: &vizora_ops::vizora::ListResult| {
            if l.complete {
                format!("{} page(s) complete", l.pages)
            } else {
                format!(
                    "INCOMPLETE: {}",
                    l.reason.as_deref().unwrap_or("incomplete")
                )
            }
        };
        steps.push(Step {
            name: "list /content + /playlists (observe)".into(),
            wall_s: t0.elapsed().as_secs_f64(),
            cpu_s: cpu_s() - c0,
            requests: client.stats().requests - r0,
            items: obs.content_list.collected + obs.playlist_list.collected,
            note: format!(
                "RSS {:+.0} MiB; content {} ({}), {} row(s) kept ({:.0} MiB); playlists {} ({}), {} reference(s)",
                mib(mem_now().0) - mib(m0),
                obs.content_list.collected,
                list_note(&obs.content_list),
                obs.table.len(),
                obs.table.heap_bytes() as f64 / 1_048_576.0,
                obs.playlist_list.collected,
                list_note(&obs.playlist_list),
                obs.playlists.refs.len()
            ),
        });
        let (r0, c0, t0, m0) = (
            client.stats().requests,
            cpu_s(),
            Instant::now(),
            mem_now().0,
        );
        let now = Utc::now;
        let mut first_warning: Option<String> = None;
        let mut warn = |w: String| {
            first_warning.get_or_insert(w);
        };
        let refresh = refresh_details(
            &client,
            &mut obs.table,
            &mut cache,
            e.content_detail_reads_per_run,
            concurrency,
            Instant::now() + Duration::from_secs(24 * 3600),
            &now,
            &mut warn,
        )
        .await;
        steps.push(Step {
            name: format!(
                "GET /content/:id ×{} (refresh_details, {concurrency} in flight)",
                refresh.planned
            ),
            wall_s: t0.elapsed().as_secs_f64(),
            cpu_s: cpu_s() - c0,
            requests: client.stats().requests - r0,
            items: refresh.ok,
            note: format!(
                "RSS {:+.0} MiB; {} stale of {} rows; {} gone, {} failed, {} deferred; cache {} entries ({:.0} MiB){}",
                mib(mem_now().0) - mib(m0),
                refresh.stale_total,
                obs.table.len(),
                refresh.gone,
                refresh.failed,
                refresh.deferred,
                cache.len(),
                cache.heap_bytes() as f64 / 1_048_576.0,
                first_warning
                    .map(|w| format!(" (first failure: {w})"))
                    .unwrap_or_default()
            ),
        });
        steps.push(logout_step(&client).await);
        anyhow::Ok((storage, obs, cache, refresh, steps))
    })?;
    let walk_wall = t_walk.elapsed().as_secs_f64();
    drop(client);
    let mut steps = steps;
    let total = walk_total(&steps, walk_wall);
    steps.push(total);
    print_steps(
        "walk (the agent's observe + refresh_details through vizora::Client against the sandbox process)",
        &steps,
    );
    let after_walk = mem_now();

    // ── Local work: the agent's pure functions over the observation ──
    let now = Utc::now();
    let scan_complete = obs.scan_complete();
    let (mut table, playlists) = (obs.table, obs.playlists);
    let mut cache = cache;
    let mut local = Vec::new();
    let (dropped, cost) = timed(|| {
        if scan_complete {
            cache.retain_listed(&table)
        } else {
            0
        }
    });
    local.push(Local {
        name: "cache retain (DetailCache::retain_listed)",
        cost,
        note: format!("{} entries kept, {dropped} dropped", cache.len()),
    });
    let ((plan, stale), cost) =
        timed(|| refresh_plan(&table, &cache, e.content_detail_reads_per_run));
    local.push(Local {
        name: "next refresh plan (content_lifecycle::refresh_plan)",
        cost,
        note: format!("{} read(s) planned, {stale} stale", plan.len()),
    });
    let (expired, cost) = timed(|| detect_expired(&table, &cache, now));
    let with_repl = expired
        .findings
        .iter()
        .filter(|f| f.replacement.is_some())
        .count();
    local.push(Local {
        name: "expired (detect_expired, 6.2.2)",
        cost,
        note: format!(
            "{} expired ({with_repl} with a replacement id), {} unexamined",
            expired.findings.len(),
            expired.unexamined.len()
        ),
    });
    let (harvest, cost) = timed(|| harvest_references(&table, playlists, &cache));
    local.push(Local {
        name: "reference harvest (harvest_references, 6.2.4)",
        cost,
        note: format!(
            "{} references, {}",
            harvest.refs.len(),
            if harvest.complete() {
                "complete".to_string()
            } else {
                format!("incomplete: {}", harvest.reason())
            }
        ),
    });
    let handled: HashSet<String> = expired.findings.iter().map(|f| f.id.clone()).collect();
    let (orphans, cost) = timed(|| {
        unreferenced_candidates(
            &table,
            &harvest,
            &cache,
            now,
            e.orphan_min_age_days,
            &handled,
        )
    });
    local.push(Local {
        name: "orphans (unreferenced_candidates, 6.2.4)",
        cost,
        note: format!(
            "{} candidates (min age {} d)",
            orphans.len(),
            e.orphan_min_age_days
        ),
    });
    let ((verdict, storage_cands), cost) = timed(|| {
        let v = storage_verdict(&storage, e.storage_warn_pct, e.storage_critical_pct);
        let cands = if matches!(v, StorageVerdict::Critical { .. }) {
            let mut ex = handled.clone();
            ex.extend(orphans.iter().map(|c| table.id(c.row).to_string()));
            Some(unreferenced_candidates(
                &table,
                &harvest,
                &cache,
                now,
                e.storage_archive_min_age_days,
                &ex,
            ))
        } else {
            None
        };
        (v, cands)
    });
    let storage_label = match &verdict {
        StorageVerdict::Ok { pct, .. } => format!("ok ({pct:.1} %)"),
        StorageVerdict::Warning { pct, .. } => format!("warning ({pct:.1} %)"),
        StorageVerdict::Critical { pct, .. } => format!("critical ({pct:.1} %)"),
        StorageVerdict::NoVerdict(w) => format!("no verdict ({w})"),
    };
    local.push(Local {
        name: "storage (storage_verdict, 6.2.5)",
        cost,
        note: format!(
            "{storage_label}{}",
            storage_cands
                .map(|c| format!(", {} relief candidates", c.len()))
                .unwrap_or_default()
        ),
    });
    // The agent skips items archived this run; mark the would-be archives (expired and orphans) like it does.
    for r in expired
        .findings
        .iter()
        .map(|f| f.row)
        .chain(orphans.iter().map(|c| c.row))
    {
        table.mark_archived(r);
    }
    let (counts, cost) = timed(|| {
        let mut k: BTreeMap<&'static str, usize> = BTreeMap::new();
        for r in table.rows() {
            if !table.is_active(r) || table.is_archived(r) {
                continue;
            }
            match size_verdict(&table, r, e.max_file_size_bytes) {
                SizeVerdict::Oversized(_) => *k.entry("oversized").or_default() += 1,
                SizeVerdict::Unparseable => *k.entry("size unparseable").or_default() += 1,
                SizeVerdict::Ok => {}
            }
            let entry = cache.fresh(&table, r);
            match thumbnail_check(
                &table,
                r,
                entry,
                now,
                e.thumbnail_recheck_hours,
                s3_configured,
            ) {
                Some(ThumbCheck::Missing) => *k.entry("thumbnail missing").or_default() += 1,
                Some(ThumbCheck::Cached { .. }) => *k.entry("thumbnail cached").or_default() += 1,
                Some(ThumbCheck::Http(_) | ThumbCheck::S3(_)) => {
                    *k.entry("thumbnail to probe").or_default() += 1
                }
                Some(ThumbCheck::NotExamined(_)) => {
                    *k.entry("thumbnail not examined").or_default() += 1
                }
                None => {}
            }
        }
        k
    });
    local.push(Local {
        name: "thumbnails and size (thumbnail_check, size_verdict)",
        cost,
        note: counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    });
    let detection_cpu = print_local(&local);
    let after_local = mem_now();
    let oversized = counts.get("oversized").copied().unwrap_or(0);
    let thumbs = counts.get("thumbnail missing").copied().unwrap_or(0);
    let storage_found = usize::from(matches!(
        verdict,
        StorageVerdict::Warning { .. } | StorageVerdict::Critical { .. }
    ));
    let findings = [
        (
            "expired_content",
            expired.findings.len(),
            seeded_sum(
                seeded,
                &[
                    "content_expired_no_replacement",
                    "content_expired_valid_replacement",
                    "content_expired_archived_replacement",
                ],
            ),
        ),
        (
            "orphaned_content",
            orphans.len(),
            seeded_sum(seeded, &["content_orphaned"]),
        ),
        (
            "missing_thumbnail",
            thumbs,
            seeded_sum(seeded, &["content_missing_thumbnail"]),
        ),
        (
            "oversized_content",
            oversized,
            seeded_sum(seeded, &["content_oversized"]),
        ),
        (
            "storage warning/critical",
            storage_found,
            seeded_sum(seeded, &["storage_usage_84_percent"]),
        ),
    ];
    print_findings(&findings);
    let mem = memory_json(after_walk, after_local);

    // ── Apart from the figures above: the cache file the run writes at its end and the next run loads ──
    let dir = tempfile::tempdir()?;
    let file = CacheFile::new(dir.path().join(CACHE_FILE_NAME), Duration::from_secs(5));
    let sample_id = cache.ids().next().map(String::from);
    let sample: Option<CacheEntry> = sample_id.as_deref().and_then(|id| cache.get(id));
    let entries = cache.len();
    let (saved, save_cost) = timed(|| file.save(&cache));
    saved.map_err(|e| anyhow::anyhow!(e))?;
    let bytes = std::fs::metadata(file.path())?.len();
    drop((table, cache, harvest));
    let rss_before_load = mem_now().0;
    let (loaded, load_cost) = timed(|| file.load(false));
    let round_trip = sample_id.as_deref().and_then(|id| loaded.cache.get(id)) == sample
        && loaded.cache.len() == entries
        && loaded.errors.is_empty();
    println!(
        "  cache file (CacheFile::save / load, not part of the figures above): {entries} entries, {:.1} MB; save \
         {:.3} s CPU, load {:.3} s CPU (RSS {:+.0} MiB); round trip {}",
        bytes as f64 / 1e6,
        save_cost.cpu_s,
        load_cost.cpu_s,
        mib(mem_now().0) - mib(rss_before_load),
        if round_trip { "ok" } else { "MISMATCH" }
    );
    let total_steps = steps.last().expect("total step");
    Ok(json!({
        "agent": "content-lifecycle",
        "walk": {"wallS": walk_wall, "requests": total_steps.requests, "cpuS": total_steps.cpu_s,
                 "detailGone": refresh.gone, "detailFailed": refresh.failed},
        "local": {"cpuS": detection_cpu},
        "findings": findings.iter().map(|(k, n, _)| ((*k).to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "memory": mem,
        "cacheFile": {"bytes": bytes, "saveCpuS": save_cost.cpu_s, "loadCpuS": load_cost.cpu_s, "roundTrip": round_trip},
    }))
}
