//! The content-lifecycle part of the scale benchmark: walk, detail reads and detection in the agent process.

use super::*;
pub(super) fn content_lifecycle(
    rt: &tokio::runtime::Runtime,
    client: Client,
    cfg: &Config,
    concurrency: usize,
    seeded: &BTreeMap<String, u64>,
) -> anyhow::Result<Value> {
    // ── The walk ──
    let t_walk = Instant::now();
    let mut plan_cost = Cost::default();
    let mut parse_s = 0.0f64;
    let (storage, content, playlists, entries, steps, gone, failed) = rt.block_on(async {
        let mut steps = Vec::new();
        // The agent reads the storage figures first (it opens the session).
        let (storage, st) = get_step(
            &client,
            "GET /organizations/storage (+login)",
            "/api/v1/organizations/storage",
        )
        .await?;
        steps.push(st);
        let (content, st) = walk_step(&client, "list /content", "/api/v1/content").await?;
        steps.push(st);
        let (playlists, st) = walk_step(&client, "list /playlists", "/api/v1/playlists").await?;
        steps.push(st);
        // Which details to read: the agent's own plan with an empty cache and no cap (local work, timed apart).
        let ((plan, stale), pc) =
            timed(|| refresh_plan(&content, &DetailCache::default(), usize::MAX));
        plan_cost = pc;
        let (r0, c0, t0, m0) = (
            client.stats().requests,
            cpu_s(),
            Instant::now(),
            mem_now().0,
        );
        let now = Utc::now();
        let n_plan = plan.len();
        let client_ref = &client;
        let mut stream = futures::stream::iter(plan)
            .map(|id| async move {
                let r = client_ref.get(&format!("/api/v1/content/{id}")).await;
                (id, r)
            })
            .buffer_unordered(concurrency);
        // Each detail becomes a cache entry as it arrives (the JSON is not kept), like the agent's cache does.
        let mut entries: Vec<(String, CacheEntry)> = Vec::with_capacity(n_plan);
        let (mut gone, mut failed) = (0usize, 0usize);
        let mut first_error: Option<String> = None;
        while let Some((id, r)) = stream.next().await {
            match r {
                Ok(v) => {
                    let t = Instant::now();
                    let e = CacheEntry::from_detail(&v, now);
                    parse_s += t.elapsed().as_secs_f64();
                    match e {
                        Ok(e) => entries.push((id, e)),
                        Err(_) => failed += 1,
                    }
                }
                Err(ApiError::NotFound { .. }) => gone += 1,
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        steps.push(Step {
            name: format!("GET /content/:id ×{n_plan} ({concurrency} in flight)"),
            wall_s: t0.elapsed().as_secs_f64(),
            cpu_s: cpu_s() - c0,
            requests: client.stats().requests - r0,
            items: entries.len(),
            note: format!(
                "RSS {:+.0} MiB; {stale} stale of {} listed; {gone} gone, {failed} failed{}",
                mib(mem_now().0) - mib(m0),
                content.len(),
                first_error
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            ),
        });
        let (r0, c0, t0) = (client.stats().requests, cpu_s(), Instant::now());
        client.finish().await;
        steps.push(Step {
            name: "logout".into(),
            wall_s: t0.elapsed().as_secs_f64(),
            cpu_s: cpu_s() - c0,
            requests: client.stats().requests - r0,
            items: 0,
            note: String::new(),
        });
        anyhow::Ok((storage, content, playlists, entries, steps, gone, failed))
    })?;
    let walk_wall = t_walk.elapsed().as_secs_f64();
    drop(client);
    let mut steps = steps;
    let total = walk_total(&steps, walk_wall);
    steps.push(total);
    print_steps(
        "walk (through vizora::Client against the sandbox process)",
        &steps,
    );
    let after_walk = mem_now();

    // ── Local work ──
    let now = Utc::now();
    let e = &cfg.entity;
    let mut local = vec![Local {
        name: "refresh plan (content_cache::refresh_plan)",
        cost: plan_cost,
        note: "ran before the detail reads".into(),
    }];
    local.push(Local {
        name: "detail parse (CacheEntry::from_detail, summed)",
        cost: Cost {
            wall_s: parse_s,
            cpu_s: parse_s,
        },
        note: format!(
            "{} entries; wall time summed per detail during the walk (≈ CPU)",
            entries.len()
        ),
    });
    let (cache, cost) = timed(|| {
        let mut cache = DetailCache::default();
        for (id, entry) in entries {
            cache.store(&id, entry);
        }
        let dropped = cache.retain_listed(&content);
        (cache, dropped)
    });
    let (cache, dropped) = cache;
    local.push(Local {
        name: "detail cache build (store + retain_listed)",
        cost,
        note: format!("{} entries, {dropped} dropped", cache.items.len()),
    });
    let (expired, cost) = timed(|| detect_expired(&content, &cache, now));
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
    let (harvest, cost) = timed(|| harvest_references(&content, &playlists, &cache));
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
            &content,
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
            ex.extend(orphans.iter().map(|c| c.id.clone()));
            Some(unreferenced_candidates(
                &content,
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
    let (counts, cost) = timed(|| {
        let mut k: BTreeMap<&'static str, usize> = BTreeMap::new();
        for c in content
            .iter()
            .filter(|c| c.get("status").and_then(Value::as_str) == Some("active"))
        {
            match size_verdict(c, e.max_file_size_bytes) {
                SizeVerdict::Oversized(_) => *k.entry("oversized").or_default() += 1,
                SizeVerdict::Unparseable => *k.entry("size unparseable").or_default() += 1,
                SizeVerdict::Ok => {}
            }
            let entry = cache.fresh(c).cloned();
            match thumbnail_check(c, entry.as_ref(), now, e.thumbnail_recheck_hours, false) {
                Some(ThumbCheck::Missing) => *k.entry("thumbnail missing").or_default() += 1,
                Some(ThumbCheck::Cached { .. }) => *k.entry("thumbnail cached").or_default() += 1,
                Some(ThumbCheck::Http(_) | ThumbCheck::S3(_)) => {
                    *k.entry("thumbnail to probe").or_default() += 1
                }
                Some(ThumbCheck::NotExamined(_)) => {
                    *k.entry("thumbnail not examined (no S3)").or_default() += 1
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
    let total_steps = steps.last().expect("total step");
    Ok(json!({
        "agent": "content-lifecycle",
        "walk": {"wallS": walk_wall, "requests": total_steps.requests, "cpuS": total_steps.cpu_s,
                 "detailGone": gone, "detailFailed": failed},
        "local": {"cpuS": detection_cpu},
        "findings": findings.iter().map(|(k, n, _)| ((*k).to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "memory": mem,
    }))
}
