//! The schedule-doctor part of the scale benchmark: the agent's own observation (`schedule_doctor::observe`: the
//! organisation read and the four concurrent walks into typed records) and its own pure detection functions
//! (`schedule_doctor::detect`), composed as `schedule_doctor::run` composes them in a dry run (every 6.4.2 fault counts
//! as deactivated, every deleted-playlist fault as a fallback follow-up).

use super::*;
use vizora_ops::agents::schedule_doctor::detect::{self, Coverage, EntitySets, Fallback};
use vizora_ops::agents::schedule_doctor::{self, Observation};

pub(super) fn schedule_doctor(
    rt: &tokio::runtime::Runtime,
    client: Client,
    cfg: &Config,
    seeded: &BTreeMap<String, u64>,
) -> anyhow::Result<Value> {
    // ── The walk: the agent's observe() ──
    let t_walk = Instant::now();
    let (obs, steps) = rt.block_on(async {
        let mut steps = Vec::new();
        let (r0, c0, t0, m0) = (
            client.stats().requests,
            cpu_s(),
            Instant::now(),
            mem_now().0,
        );
        let obs: Observation = schedule_doctor::observe(&client)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let items = obs.schedules.items.len()
            + obs.displays.items.len()
            + obs.playlists.items.len()
            + obs.groups.items.len();
        let list = |name: &str, w: &vizora_ops::vizora::ListResult| {
            format!(
                "{name} {} in {} page(s){}",
                w.collected,
                w.pages,
                if w.complete { "" } else { " INCOMPLETE" }
            )
        };
        steps.push(Step {
            name: "observe (+login): org, 4 walks into records".into(),
            wall_s: t0.elapsed().as_secs_f64(),
            cpu_s: cpu_s() - c0,
            requests: client.stats().requests - r0,
            items,
            note: format!(
                "RSS {:+.0} MiB; {}; {}; {}; {}",
                mib(mem_now().0) - mib(m0),
                list("schedules", &obs.schedules.walk),
                list("displays", &obs.displays.walk),
                list("playlists", &obs.playlists.walk),
                list("groups", &obs.groups.walk),
            ),
        });
        steps.push(logout_step(&client).await);
        anyhow::Ok((obs, steps))
    })?;
    let walk_wall = t_walk.elapsed().as_secs_f64();
    drop(client);
    let mut steps = steps;
    let total = walk_total(&steps, walk_wall);
    steps.push(total);
    print_steps(
        "walk (schedule_doctor::observe through vizora::Client against the sandbox process; four concurrent walks)",
        &steps,
    );
    anyhow::ensure!(
        obs.complete(),
        "the scan is incomplete: no complete-scan checks to measure"
    );
    let after_walk = mem_now();

    // ── Local work: the agent's detection functions, composed as schedule_doctor::run does in a dry run ──
    let now = Utc::now();
    let cap = cfg.entity.overlap_max_comparisons;
    let schedules = &obs.schedules.items;
    let displays = &obs.displays.items;
    let mut local = Vec::new();
    let ((enabled, sets, checks), cost) = timed(|| {
        let enabled = obs.enabled();
        let sets = EntitySets::new(&obs.playlists.items, displays, &obs.groups.items);
        let checks = detect::check_schedules(schedules, now, Some(&sets));
        (enabled, sets, checks)
    });
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, f) in &checks.faults {
        *by_kind.entry(f.kind()).or_default() += 1;
    }
    local.push(Local {
        name: "id sets + active schedules (check_schedules, 6.4.2)",
        cost,
        note: format!(
            "{} active, {} faults, {} end unknown, {} enabled displays, {} groups",
            checks.active,
            checks.faults.len(),
            checks.end_unknown.len(),
            enabled.len(),
            sets.membership.len()
        ),
    });
    let ((fallback, empty), cost) = timed(|| {
        let (fallback, _warnings) = detect::resolve_fallback(
            obs.org.as_ref(),
            &obs.playlists.items,
            cfg.entity.fallback_playlist_id.as_deref(),
        );
        let empty = detect::empty_playlists(schedules, &checks.remaining, &sets);
        (fallback, empty)
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
            "fallback {fallback_label}; {} on empty playlists, {} counts unknown",
            empty.findings.len(),
            empty.unknown.len()
        ),
    });
    let ((ov, blind), cost) =
        timed(|| detect::overlaps(schedules, displays, &enabled, &checks.remaining, &sets, cap));
    local.push(Local {
        name: "overlaps (TargetIndex, find_overlaps, 6.4.3)",
        cost,
        note: format!(
            "{} pairs, {} comparisons, {} capped displays (cap {cap}), {} schedules not examined",
            ov.pairs.len(),
            ov.comparisons,
            ov.capped_displays.len(),
            blind.len()
        ),
    });
    let (cov, cost) = timed(|| {
        let mut inactive_now = vec![false; schedules.len()];
        let mut follow_up = Vec::new();
        for (i, f) in &checks.faults {
            inactive_now[*i] = true;
            if matches!(f, detect::ActiveFault::DeletedPlaylist { .. }) {
                follow_up.push(*i);
            }
        }
        detect::coverage_verdicts(
            schedules,
            displays,
            &enabled,
            &sets,
            &inactive_now,
            &follow_up,
            now,
        )
    });
    let count = |v: Coverage| cov.displays.iter().filter(|d| d.verdict == v).count();
    let gaps = count(Coverage::Gap);
    local.push(Local {
        name: "coverage (TargetIndex, coverage_verdicts, 6.4.4)",
        cost,
        note: format!(
            "{gaps} gaps, {} unknown, {} covered by a schedule; {} deleted-playlist follow-ups; {} judged in UTC",
            count(Coverage::Unknown),
            cov.covered,
            cov.displays.iter().filter(|d| d.follow_up).count(),
            cov.tz_fallbacks
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
            empty.findings.len(),
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
