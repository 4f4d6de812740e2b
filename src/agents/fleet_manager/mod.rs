//! fleet-manager (agents.md 6.3; catalogue 3.3): classifies every enabled display by its heartbeat, reports
//! locations whose screens are all offline as one critical incident, sends capped `reload` fleet commands to displays
//! offline 15–60 min and resets displays stuck in `error`, then re-reads them to see whether they really reconnected.
//!
//! A sent command is never a fix (agents.md 9.28): only a fresh heartbeat observed after the verification wait
//! resolves `display_offline`. Displays offline past the persistence threshold are escalated without more commands.
//! Reconnect statistics over a 7-day window live in `agentResults["fleet-manager"].stats.reconnect` (6.3.6);
//! [`reconnect_summary`] renders them for `vizora-ops status`.
//!
//! It deliberately does not decide coverage gaps or fallback playlists: schedule-doctor owns those; `no_content` is
//! informational only.
//!
//! Layout, one module per check (this file only sequences observe → findings → remediate → verify → alert and maps
//! the result to the `AgentOutcome`): `observe` (the three walks, coverage, 2.5), `classify` (the pure heartbeat
//! rules of 6.3.1: [`classify`], [`location_key`]), `locations` (6.3.2, [`offline_locations`]), `offline`
//! (per-display incidents, 6.3.1), `no_content` (6.3.5), `command_caps` (6.3.3, [`CommandCaps`]), `remediate` (the
//! pass over the candidates and mutation outcomes), `error_reset` (6.3.4), `reload` (6.3.3), `verify` (by heartbeat,
//! 9.28), `drift` (catalogue 3.3), `escalation` (6.3.7), `stats` (6.3.6, [`update_reconnect_stats`]).

mod classify;
mod command_caps;
mod drift;
mod error_reset;
mod escalation;
mod locations;
mod no_content;
mod observe;
mod offline;
mod reload;
mod remediate;
mod stats;
#[cfg(test)]
mod tests;
mod verify;

pub use classify::{Class, FleetDisplay, Thresholds, classify, location_key};
pub use command_caps::{CommandCaps, Deferral, last_reload};
pub use locations::{OfflineLocation, offline_locations};
pub use stats::{RunCounts, reconnect_summary, update_reconnect_stats};

use super::entities::{DisplayGroup, Schedule};
use super::{AgentContext, AgentOutcome};
use crate::model::{AgentName, Incident};
use crate::vizora::ListResult;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// `display_offline` (warning): enabled, paired, heartbeat age 15–60 min.
pub const DISPLAY_OFFLINE: &str = "display_offline";
/// `display_offline_persistent` (warning, always escalated): heartbeat ≥ 60 min old, or paired without heartbeat.
pub const DISPLAY_OFFLINE_PERSISTENT: &str = "display_offline_persistent";
/// `display_error` (warning): `status == "error"`.
pub const DISPLAY_ERROR: &str = "display_error";
/// `location_offline` (critical): ≥ 3 enabled paired displays of one location, all offline.
pub const LOCATION_OFFLINE: &str = "location_offline";
/// `no_content` (info): online, no `currentPlaylistId`, no schedule active now.
pub const NO_CONTENT: &str = "no_content";
/// `display_never_paired` (info): `lastHeartbeat` and `pairedAt` null.
pub const DISPLAY_NEVER_PAIRED: &str = "display_never_paired";
/// `scan-truncated` (info): display, schedule or group walk incomplete.
pub const SCAN_TRUNCATED: &str = "scan-truncated";
/// `api-contract-drift` (critical): a mutation route answered 405 or 404 `Cannot …`.
pub const API_CONTRACT_DRIFT: &str = "api-contract-drift";

/// Incident types of this agent (agents.md 3.3).
pub const CATALOGUE: &[&str] = &[
    DISPLAY_OFFLINE,
    DISPLAY_OFFLINE_PERSISTENT,
    DISPLAY_ERROR,
    LOCATION_OFFLINE,
    NO_CONTENT,
    DISPLAY_NEVER_PAIRED,
    SCAN_TRUNCATED,
    API_CONTRACT_DRIFT,
];

/// Per-display incident types (carried unchanged for displays of an offline location, 6.3.2).
const PER_DISPLAY_TYPES: [&str; 5] = [
    DISPLAY_OFFLINE,
    DISPLAY_OFFLINE_PERSISTENT,
    DISPLAY_ERROR,
    NO_CONTENT,
    DISPLAY_NEVER_PAIRED,
];

const DISPLAYS_PATH: &str = "/api/v1/displays";
const SCHEDULES_PATH: &str = "/api/v1/schedules";
const GROUPS_PATH: &str = "/api/v1/display-groups";
/// The fleet command route (vizora-api.md §7).
pub const FLEET_COMMANDS_PATH: &str = "/api/v1/fleet/commands";
/// Route slug of `POST /fleet/commands` for contract drift.
pub const SLUG_FLEET: &str = "post-fleet-commands";
/// Route slug of `PATCH /displays/:id` for contract drift.
pub const SLUG_PATCH_DISPLAYS: &str = "patch-displays";
/// Remediation text of a reload held back by one of the caps of 6.3.3.
pub const DEFERRED: &str = "reload deferred (command budget)";
/// Message suffix of a `display_offline` closed because the display became persistent (3.3).
pub const SUPERSEDED_SUFFIX: &str = " — superseded by display_offline_persistent";
/// Minimum spacing of the second command of an episode, in seconds (fixed, 6.3.3).
pub const EPISODE_SPACING_S: i64 = 20 * 60;
/// More pending verifications than this → one fresh `/displays` walk instead of detail reads (6.3.3).
pub const MAX_DETAIL_VERIFICATIONS: usize = 5;
/// The statistics window in days (6.3.6).
pub const STATS_WINDOW_DAYS: i64 = 7;

/// One enabled display as the run sees it.
#[derive(Debug, Clone)]
struct Obs {
    id: String,
    label: String,
    class: Class,
    heartbeat: Option<String>,
    paired_at: Option<String>,
    location: Option<String>,
    error_status: bool,
}

impl Obs {
    fn new(d: &FleetDisplay, now: DateTime<Utc>, th: Thresholds) -> Obs {
        Obs {
            id: d.display.id.to_string(),
            label: d.display.label().to_string(),
            class: classify(d, now, th),
            heartbeat: d.heartbeat_text.as_deref().map(String::from),
            paired_at: d.paired_at_text.as_deref().map(String::from),
            location: d.location.as_deref().map(String::from),
            error_status: d.error_status,
        }
    }
}

/// What a verification read must decide for one display.
struct Pending {
    display_id: String,
    label: String,
    /// Heartbeat of the reload's `before` read (the reload was sent), else `None` with `reload_audit = None`.
    before_heartbeat: Option<DateTime<Utc>>,
    reload_audit: Option<String>,
    reload_action: Option<usize>,
    /// The reload was for an offline display (counts in the reconnect statistics).
    offline: bool,
    patch_audit: Option<String>,
    patch_action: Option<usize>,
}

/// The incident set under construction, in raise order.
#[derive(Default)]
struct Raised {
    list: Vec<Incident>,
}

impl Raised {
    fn put(&mut self, inc: Incident) {
        match self.list.iter_mut().find(|i| i.id == inc.id) {
            Some(e) => *e = inc,
            None => self.list.push(inc),
        }
    }
    fn get_mut(&mut self, id: &str) -> Option<&mut Incident> {
        self.list.iter_mut().find(|i| i.id == id)
    }
    fn remove(&mut self, id: &str) {
        self.list.retain(|i| i.id != id);
    }
}

fn id_for(kind: &str, target: &str) -> String {
    crate::model::incident_id(AgentName::FleetManager, kind, target)
}

/// Ids of displays are put into request paths: only plain ids are accepted (the shared check of every agent).
fn path_safe(id: &str) -> bool {
    super::common::path_safe_id(id)
}

fn minutes(age_s: i64) -> i64 {
    age_s / 60
}

/// Runs fleet-manager once (agents.md 6.3). Exit 2 without a write when a list's first page fails or has an unknown
/// shape; exit 2 with a full write on contract drift; otherwise the runtime's exit code from the raised incidents.
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut r = FleetRun {
        ctx,
        o: AgentOutcome::new(CATALOGUE),
        raised: Raised::default(),
        priors: ctx.priors(),
        th: Thresholds::from_config(&ctx.cfg),
        now: ctx.started,
        counts: RunCounts::default(),
    };
    let Some(scan) = r.observe().await else {
        return r.o;
    };
    let enabled: Vec<(u32, &FleetDisplay)> = scan
        .displays
        .iter()
        .enumerate()
        .filter(|(_, d)| d.display.enabled)
        .map(|(i, d)| (i as u32, d))
        .collect();
    let disabled = scan.displays.len() - enabled.len();
    if disabled > 0 {
        ctx.info(format!("skipping {disabled} disabled display(s)"));
    }
    ctx.info(format!(
        "{} display(s), {} enabled; {} schedule(s), {} group(s){}",
        scan.displays.len(),
        enabled.len(),
        scan.schedules.len(),
        scan.groups.len(),
        if scan.complete() {
            ""
        } else {
            " (incomplete scan)"
        }
    ));
    r.coverage(&scan);

    let in_offline_location = if scan.complete() {
        r.locations(&enabled, &scan.default_org).await
    } else {
        HashSet::new()
    };
    let obs: Vec<Obs> = enabled
        .iter()
        .map(|(_, d)| Obs::new(d, r.now, r.th))
        .filter(|d| !in_offline_location.contains(&d.id))
        .collect();
    let (candidates, new_persistent) = r.classify_displays(&obs);
    if scan.complete() {
        r.no_content(&enabled, &scan, &in_offline_location);
    }

    let fleet = r.remediate(candidates).await;
    r.verify(&fleet).await;
    r.contract_drift(&fleet).await;
    r.alert_persistent(&new_persistent).await;
    r.explain_gone(&scan);
    r.stats(&scan, &enabled, disabled, &obs, in_offline_location.len());
    let FleetRun { mut o, raised, .. } = r;
    for inc in raised.list {
        o.raise(inc);
    }
    o
}

/// The three walks of one run, as typed records (each item converted as its page arrives); the `ListResult`s
/// carry completeness and counts only.
struct Scan {
    displays: Vec<FleetDisplay>,
    schedules: Vec<Schedule>,
    groups: Vec<DisplayGroup>,
    displays_walk: ListResult,
    schedules_walk: ListResult,
    groups_walk: ListResult,
    /// The ops user's organisation, for displays without `organizationId`.
    default_org: String,
}

impl Scan {
    /// `scanComplete` of 6.3: all three walks complete (before the disabled filter).
    fn complete(&self) -> bool {
        self.displays_walk.complete && self.schedules_walk.complete && self.groups_walk.complete
    }
}

/// What the remediation pass did, for verification, drift and statistics.
#[derive(Default)]
struct FleetWork {
    pending: Vec<Pending>,
    /// Route slugs that answered 2xx this run.
    route_ok: HashSet<&'static str>,
    /// `(slug, error)` of routes that answered 404 `Cannot …`/405.
    drift_errors: Vec<(String, String)>,
    /// When the last fleet command was sent (the verification wait runs from it).
    last_command: Option<Instant>,
}

/// One run's working set: the context, the outcome under construction and the incidents raised so far.
struct FleetRun<'a> {
    ctx: &'a AgentContext,
    o: AgentOutcome,
    raised: Raised,
    priors: HashMap<String, Incident>,
    th: Thresholds,
    /// The run's start: "now" for every age and window (agents.md 1.1).
    now: DateTime<Utc>,
    counts: RunCounts,
}

impl FleetRun<'_> {
    fn prior_active(&self, id: &str) -> Option<&Incident> {
        self.priors.get(id).filter(|i| i.is_active())
    }
}
