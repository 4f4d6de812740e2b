//! schedule-doctor (agents.md 6.4, catalogue 3.4): audits the organisation's schedules every 15 minutes.
//!
//! * Reads the four lists concurrently (schedules, displays, playlists, display groups; page walks of 5.4) and
//!   `GET /organizations/current` for `settings.opsFallbackPlaylistId`. `scanComplete` = all four walks complete;
//!   otherwise only check 1 (past end) runs and an info `scan-truncated` is raised. A first page that fails or has an
//!   unknown shape ends the run with exit 2 and no state write.
//! * 6.4.2: active schedules past their end, on a deleted playlist, or without an existing target are deactivated
//!   (`PATCH /api/v1/schedules/:id {"isActive":false}`, fresh read first, verified by a re-read). After a verified
//!   deleted-playlist deactivation its enabled displays without `currentPlaylistId` get the fallback playlist.
//! * 6.4.3: remaining active, not-ended schedules on empty playlists, and equal-priority overlaps per enabled display.
//! * 6.4.4: enabled displays without `currentPlaylistId` and with no schedule active now (`coverage_gap`) get the
//!   fallback playlist (6.4.1) when it is valid (`PATCH /api/v1/displays/:id {"currentPlaylistId":…}`, verified).
//! * 6.4.5: fix notifications batched per run (7.6), an inline critical on contract drift, and the unexamined ids.
//!
//! Layout, one module per check or concern (dependencies go one way, towards the pure rules): `observe` (inputs,
//! `scan-truncated`); the 6.4.2 checks `past_end`, `broken_refs` (deleted playlist, malformed references) and
//! `no_target`, composed first-match by `active`; `targeting` (entity sets, which schedules reach which display,
//! lists that omit embedded ids); `fallback` (6.4.1), `empty_playlists` and `overlaps` with its time-zone handling
//! `overlap_window` (6.4.3), `coverage_gaps` (6.4.4); `remediate` (the audited PATCH) with `deactivate`, `assign` and
//! `verify`; `alerts` (drift, fix notifications) and `report` (stats, sweep coverage). [`detect`] re-exports the pure
//! rules under their public path. This file holds the run's state (`Run`: outcome, abort, drift) and sequences.

mod active;
mod alerts;
mod assign;
mod broken_refs;
mod coverage_gaps;
mod deactivate;
pub mod detect;
mod empty_playlists;
mod fallback;
mod no_target;
mod observe;
mod overlap_window;
mod overlaps;
mod past_end;
mod remediate;
mod report;
mod targeting;
#[cfg(test)]
mod test_support;
mod verify;

pub use observe::{Observation, Walked, observe};

use super::{AgentContext, AgentOutcome, WriteMode};
use crate::model::AgentName;
use crate::vizora::{ApiError, VizoraApi};
use remediate::FixNote;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use targeting::EntitySets;

/// Incident types of this agent (agents.md 3.4).
pub const CATALOGUE: &[&str] = &[
    "past_end_schedule",
    "deleted_playlist_schedule",
    "no_target_schedule",
    "schedule_overlap",
    "coverage_gap",
    "empty_playlist_schedule",
    "fallback_playlist_invalid",
    "scan-truncated",
    "api-contract-drift",
];

pub(super) const SCHEDULES: &str = "/api/v1/schedules";
const DISPLAYS: &str = "/api/v1/displays";
const PLAYLISTS: &str = "/api/v1/playlists";
const GROUPS: &str = "/api/v1/display-groups";
const ORG: &str = "/api/v1/organizations/current";
/// Route slug of `PATCH /api/v1/schedules/:id` (3.4 `api-contract-drift`).
const PATCH_SCHEDULES: &str = "patch-schedules";
/// Route slug of `PATCH /api/v1/displays/:id`.
const PATCH_DISPLAYS: &str = "patch-displays";

const AGENT: AgentName = AgentName::ScheduleDoctor;

struct Run<'a> {
    ctx: &'a AgentContext,
    api: Arc<dyn VizoraApi>,
    o: AgentOutcome,
    /// A write was sent this run (an abort then writes partially, 1.4).
    mutated: bool,
    /// A fatal API error (second 401, …): no further requests.
    aborted: bool,
    /// Route slugs with a successful write this run.
    route_ok: HashSet<&'static str>,
    /// Drifted route slug → (method and path, error text).
    drift: BTreeMap<&'static str, (String, String)>,
    deactivated: Vec<FixNote>,
    assigned: Vec<FixNote>,
}

impl<'a> Run<'a> {
    fn new(ctx: &'a AgentContext) -> Self {
        Run {
            ctx,
            api: ctx.api().clone(),
            o: AgentOutcome::new(CATALOGUE),
            mutated: false,
            aborted: false,
            route_ok: HashSet::new(),
            drift: BTreeMap::new(),
            deactivated: Vec::new(),
            assigned: Vec::new(),
        }
    }

    /// Records an exit-2 reason, keeping the most restrictive write mode (None > Partial > Full).
    fn fail(&mut self, reason: String, mode: WriteMode) {
        let rank = |m: WriteMode| match m {
            WriteMode::Full => 0,
            WriteMode::Partial => 1,
            WriteMode::None => 2,
        };
        match &self.o.fatal {
            None => self.o.fail(reason, mode),
            Some(prev) => {
                let joined = format!("{prev}; {reason}");
                let m = if rank(mode) > rank(self.o.write) {
                    mode
                } else {
                    self.o.write
                };
                self.o.fail(joined, m);
            }
        }
    }

    /// A fatal API error (session lost, …) stops the run: partial write after a sent mutation, else no write.
    fn abort(&mut self, e: &ApiError) {
        self.aborted = true;
        let mode = if self.mutated {
            WriteMode::Partial
        } else {
            WriteMode::None
        };
        self.fail(format!("run aborted: {e}"), mode);
    }

    /// Whether the prior state holds this incident id active (agents.md 2.5).
    fn prior_active(&self, id: &str) -> bool {
        self.ctx
            .snapshot
            .incidents
            .iter()
            .any(|i| i.id == id && i.is_active())
    }

    /// Logs a finding line and keeps it for the run report.
    fn note(&mut self, line: String) {
        self.ctx.info(&line);
        self.o.note(line);
    }
}

/// Runs schedule-doctor once (agents.md 6.4). See the module documentation for the steps; exit codes, sweeps and the
/// state write are the runtime's.
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut r = Run::new(ctx);
    let now = ctx.started;

    // ── Inputs ──
    let Some(inp) = r.inputs().await else {
        return r.o;
    };
    let obs = &inp.obs;
    let schedules = &obs.schedules.items;

    // ── 6.4.2 Active schedules ──
    let sets = inp
        .scan_complete
        .then(|| EntitySets::new(&obs.playlists.items, &obs.displays.items, &obs.groups.items));
    let checks = active::check_schedules(schedules, now, sets.as_ref());
    if let Some(sets) = &sets {
        targeting::warn_omissions(ctx, schedules, sets);
    }
    let mut unexamined: HashSet<String> = HashSet::new();
    past_end::note_unknown_ends(ctx, schedules, &checks.end_unknown, &mut unexamined);
    overlaps::warn_malformed_weeks(ctx, schedules, &checks.remaining);
    broken_refs::note_unknown_refs(ctx, schedules, &checks.refs_unknown, &mut unexamined);
    let done = r.deactivate_faults(schedules, &checks).await;
    let mut stats = report::base_stats(&inp, checks.active);

    // ── 6.4.1, 6.4.3, 6.4.4: complete scans only ──
    if let Some(sets) = &sets
        && !r.aborted
    {
        let inputs = CompleteInputs {
            obs,
            sets,
            enabled: &inp.enabled,
            org_id: inp.org_id.as_deref(),
            remaining: &checks.remaining,
            inactive_now: &done.inactive_now,
            follow_up_schedules: &done.follow_up,
            unremediated: &done.unremediated,
        };
        complete_scan_checks(&mut r, &inputs, &mut unexamined, &mut stats).await;
    }

    // ── Alerts (6.4.5, 7.6), then the sweep's coverage and the stats ──
    r.contract_drift().await;
    r.fix_notifications(&stats).await;
    r.finish(inp.scan_complete, unexamined, stats)
}

/// What the checks of a complete scan read (agents.md 6.4.1, 6.4.3, 6.4.4).
struct CompleteInputs<'x> {
    obs: &'x Observation,
    sets: &'x EntitySets<'x>,
    /// Positions of the enabled displays.
    enabled: &'x [u32],
    org_id: Option<&'x str>,
    /// Active schedules without a 6.4.2 fault.
    remaining: &'x [usize],
    /// Schedules deactivated (or found inactive, or planned in a dry run) this run, by position.
    inactive_now: &'x [bool],
    /// Positions of schedules whose deleted-playlist deactivation succeeded (or is planned).
    follow_up_schedules: &'x [usize],
    /// Ids of still-active schedules whose 6.4.2 deactivation failed (not past end): overlap verdicts unknown.
    unremediated: &'x HashSet<String>,
}

/// Checks that need a complete scan, in order: fallback (6.4.1), empty playlists and overlaps (6.4.3), coverage
/// (6.4.4, which uses the fallback).
async fn complete_scan_checks(
    r: &mut Run<'_>,
    inp: &CompleteInputs<'_>,
    unexamined: &mut HashSet<String>,
    stats: &mut serde_json::Value,
) {
    let fallback = fallback::resolve_for_run(r, inp, unexamined, stats).await;
    empty_playlists::raise_for_run(r, inp, unexamined);
    overlaps::raise_for_run(r, inp, unexamined, stats);
    coverage_gaps::raise_for_run(r, inp, &fallback, unexamined, stats).await;
}
