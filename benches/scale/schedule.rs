//! The schedule-doctor part of the scale benchmark: walks and detection in the agent process.

use super::*;
pub(super) fn schedule_doctor(
    rt: &tokio::runtime::Runtime,
    client: Client,
    cfg: &Config,
    seeded: &BTreeMap<String, u64>,
) -> anyhow::Result<Value> {
    // ── The walk ──
    let t_walk = Instant::now();
    let (org, schedules, displays, playlists, groups, steps) = rt.block_on(async {
        let mut steps = Vec::new();
        // The agent reads the organisation first (it opens the session), then the four lists.
        let (org, st) = get_step(
            &client,
            "GET /organizations/current (+login)",
            "/api/v1/organizations/current",
        )
        .await?;
        steps.push(st);
        let (schedules, st) = walk_step(&client, "list /schedules", "/api/v1/schedules").await?;
        steps.push(st);
        let (displays, st) = walk_step(&client, "list /displays", "/api/v1/displays").await?;
        steps.push(st);
        let (playlists, st) = walk_step(&client, "list /playlists", "/api/v1/playlists").await?;
        steps.push(st);
        let (groups, st) =
            walk_step(&client, "list /display-groups", "/api/v1/display-groups").await?;
        steps.push(st);
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
        anyhow::Ok((org, schedules, displays, playlists, groups, steps))
    })?;
    let walk_wall = t_walk.elapsed().as_secs_f64();
    drop(client);
    let mut steps = steps;
    let total = walk_total(&steps, walk_wall);
    steps.push(total);
    print_steps(
        "walk (through vizora::Client against the sandbox process; the agent walks the four lists concurrently)",
        &steps,
    );
    let after_walk = mem_now();

    // ── Local work, composed as schedule_doctor::run composes it (dry run: every fault counts as deactivated) ──
    let now = Utc::now();
    let cap = cfg.entity.overlap_max_comparisons;
    let mut local = Vec::new();
    let ((enabled, faults, remaining, active_count), cost) = timed(|| {
        let enabled: Vec<&Value> = displays
            .iter()
            .filter(|d| common::is_enabled_display(d))
            .collect();
        let sets = EntitySets::new(&playlists, &displays, &groups);
        let mut faults: Vec<(usize, &'static str, bool)> = Vec::new();
        let mut remaining: Vec<usize> = Vec::new();
        let mut active = 0usize;
        for (i, sch) in schedules.iter().enumerate() {
            match detect::check_active(sch, now, Some(&sets)) {
                ActiveVerdict::Inactive => {}
                ActiveVerdict::Fault(f) => {
                    active += 1;
                    let deleted = matches!(f, detect::ActiveFault::DeletedPlaylist { .. });
                    faults.push((i, f.kind(), deleted));
                }
                ActiveVerdict::Healthy { .. } => {
                    active += 1;
                    remaining.push(i);
                }
            }
        }
        (enabled, faults, remaining, active)
    });
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, k, _) in &faults {
        *by_kind.entry(k).or_default() += 1;
    }
    local.push(Local {
        name: "active schedules (check_active, 6.4.2)",
        cost,
        note: format!(
            "{active_count} active, {} faults, {} enabled displays",
            faults.len(),
            enabled.len()
        ),
    });
    let ((members, fallback, empty, ended_unknown), cost) = timed(|| {
        let members = common::group_members(&groups);
        let playlist_by_id: HashMap<String, &Value> =
            playlists.iter().map(|p| (common::id_of(p), p)).collect();
        let (fallback, _warnings) = detect::resolve_fallback(
            Some(&org),
            &playlists,
            cfg.entity.fallback_playlist_id.as_deref(),
        );
        let ended_unknown: HashSet<usize> = remaining
            .iter()
            .copied()
            .filter(|&i| detect::end_date(&schedules[i]) == detect::EndDate::Unparseable)
            .collect();
        let mut empty = 0usize;
        for &i in &remaining {
            if ended_unknown.contains(&i) {
                continue;
            }
            let sch = &schedules[i];
            let pid = common::s(sch, "playlistId").unwrap_or_default();
            if detect::playlist_item_count(playlist_by_id.get(pid).copied(), sch) == Some(0) {
                empty += 1;
            }
        }
        (members, fallback, empty, ended_unknown)
    });
    let fallback_label = match &fallback {
        Fallback::Valid { name, .. } => format!("valid (\"{name}\")"),
        Fallback::Invalid { reason, .. } => format!("invalid ({reason})"),
        Fallback::Unknown(w) => format!("unknown ({w})"),
        Fallback::Unconfigured => "unconfigured".into(),
    };
    local.push(Local {
        name: "fallback + empty playlists (6.4.1, 6.4.3)",
        cost,
        note: format!(
            "fallback {fallback_label}; {empty} on empty playlists; {} groups",
            members.len()
        ),
    });
    let (ov, cost) = timed(|| {
        let index = TargetIndex::build(&schedules, remaining.iter().copied(), &members);
        let mut parsed: Vec<Option<OverlapSchedule>> = vec![None; schedules.len()];
        for &i in &remaining {
            if !ended_unknown.contains(&i) {
                parsed[i] = OverlapSchedule::parse(&schedules[i]);
            }
        }
        detect::find_overlaps(&enabled, &index, &parsed, cap)
    });
    local.push(Local {
        name: "overlaps (TargetIndex, find_overlaps, 6.4.3)",
        cost,
        note: format!(
            "{} pairs, {} comparisons, {} capped displays (cap {cap})",
            ov.pairs.len(),
            ov.comparisons,
            ov.capped_displays.len()
        ),
    });
    let ((gaps, unknown, covered, follow_ups), cost) = timed(|| {
        let inactive_now: HashSet<usize> = faults.iter().map(|(i, _, _)| *i).collect();
        let still_active: Vec<usize> = (0..schedules.len())
            .filter(|i| !inactive_now.contains(i))
            .filter(|&i| schedules[i].get("isActive").and_then(Value::as_bool) == Some(true))
            .collect();
        let cov_index = TargetIndex::build(&schedules, still_active.iter().copied(), &members);
        let maybe: Vec<&Value> = cov_index
            .unknown_membership
            .iter()
            .map(|&i| &schedules[i])
            .collect();
        let deleted: Vec<usize> = faults
            .iter()
            .filter(|(_, _, d)| *d)
            .map(|(i, _, _)| *i)
            .collect();
        let follow_up: HashSet<String> = TargetIndex::build(&schedules, deleted, &members)
            .by_display
            .keys()
            .cloned()
            .collect();
        let (mut gaps, mut unknown, mut covered, mut fu) = (0usize, 0usize, 0usize, 0usize);
        for d in enabled.iter().copied() {
            if detect::current_playlist(d).is_some() {
                continue;
            }
            let did = common::id_of(d);
            let reaching: Vec<&Value> = cov_index
                .for_display(&did)
                .iter()
                .map(|&i| &schedules[i])
                .collect();
            let _ = common::display_tz(d);
            match detect::coverage(d, &reaching, &maybe, now) {
                Coverage::Gap => gaps += 1,
                Coverage::Unknown => unknown += 1,
                Coverage::Covered => covered += 1,
            }
            if follow_up.contains(&did) {
                fu += 1;
            }
        }
        (gaps, unknown, covered, fu)
    });
    local.push(Local {
        name: "coverage (TargetIndex, coverage, 6.4.4)",
        cost,
        note: format!(
            "{gaps} gaps, {unknown} unknown, {covered} covered by a schedule; {follow_ups} deleted-playlist \
             follow-ups"
        ),
    });
    let detection_cpu = print_local(&local);
    let after_local = mem_now();
    let k = |name: &str| by_kind.get(name).copied().unwrap_or(0);
    let findings = [
        (
            "past_end_schedule",
            k("past_end_schedule"),
            seeded_sum(seeded, &["schedule_past_end_still_active"]),
        ),
        (
            "deleted_playlist_schedule",
            k("deleted_playlist_schedule"),
            seeded_sum(seeded, &["schedule_deleted_playlist"]),
        ),
        (
            "no_target_schedule",
            k("no_target_schedule"),
            seeded_sum(seeded, &["schedule_no_target", "schedule_display_gone"]),
        ),
        (
            "empty_playlist_schedule",
            empty,
            seeded_sum(seeded, &["schedule_on_empty_playlist"]),
        ),
        (
            "schedule_overlap",
            ov.pairs.len(),
            seeded_sum(seeded, &["schedule_overlap_pair"]),
        ),
        (
            "coverage_gap",
            gaps,
            seeded_sum(
                seeded,
                &["display_online_no_content", "display_never_paired"],
            ),
        ),
    ];
    print_findings(&findings);
    let mem = memory_json(after_walk, after_local);
    let total_steps = steps.last().expect("total step");
    Ok(json!({
        "agent": "schedule-doctor",
        "walk": {"wallS": walk_wall, "requests": total_steps.requests, "cpuS": total_steps.cpu_s},
        "local": {"cpuS": detection_cpu},
        "findings": findings.iter().map(|(k, n, _)| ((*k).to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "memory": mem,
    }))
}

// ─── child: the whole agent ─────────────────────────────────────────────────────────────────────────────────────────
