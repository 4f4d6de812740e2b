//! fleet-manager (agents.md 6.3; catalogue 3.3): classifies every enabled display by its heartbeat, reports
//! locations whose screens are all offline as one critical incident, sends capped `reload` fleet commands to displays
//! offline 15–60 min and resets displays stuck in `error`, then re-reads them to see whether they really reconnected.
//!
//! A sent command is never a fix (agents.md 9.28): only a fresh heartbeat observed after the verification wait
//! resolves `display_offline`. Displays offline past the persistence threshold are escalated without more commands.
//! Reconnect statistics over a 7-day window live in `agentResults["fleet-manager"].stats.reconnect` (6.3.6);
//! [`reconnect_summary`] renders them for `vizora-ops status`.
//!
//! The module is laid out as its rules: pure classification ([`classify`], [`location_key`],
//! [`offline_locations`]), the command caps ([`CommandCaps`]), the statistics ([`update_reconnect_stats`]), then the
//! run (observe → findings → remediate → verify → alert). It deliberately does not decide coverage gaps or fallback
//! playlists: schedule-doctor owns those; `no_content` is informational only.

use super::common::{self, DisplayIds, Heartbeat, Membership};
use super::entities::{
    CurrentPlaylist, Display, DisplayGroup, FromItem, Records, Schedule, Text, TsField, id_text,
    text,
};
use super::{AgentContext, AgentOutcome, InlineAlert, InlineKind, WriteMode};
use crate::clock::{age_s, window_elapsed};
use crate::model::{AgentName, Incident, IncidentStatus, OpsState, Severity, parse_ts, ts};
use crate::state::audit::VerificationLine;
use crate::vizora::{
    ApiError, ItemSink, ListResult, MutationOutcome, MutationRequest, MutationStatus,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{Value, json};
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

// ---------------------------------------------------------------------------------------------------------------
// Classification (6.3.1)
// ---------------------------------------------------------------------------------------------------------------

/// Heartbeat thresholds in seconds: online below `offline_s`, offline from it, persistent from `persistent_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// `OPS_OFFLINE_MINUTES` × 60 (default 900 s).
    pub offline_s: i64,
    /// `OPS_PERSISTENT_OFFLINE_MINUTES` × 60 (default 3 600 s).
    pub persistent_s: i64,
}

impl Thresholds {
    /// From the configuration (agents.md 8.5).
    pub fn from_config(cfg: &crate::config::Config) -> Thresholds {
        Thresholds {
            offline_s: cfg.entity.offline_minutes as i64 * 60,
            persistent_s: cfg.entity.persistent_offline_minutes as i64 * 60,
        }
    }
}

/// The connectivity class of an enabled display at the run's start (agents.md 6.0, 6.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `lastHeartbeat` and `pairedAt` null → info `display_never_paired`.
    NeverPaired,
    /// Heartbeat age (s) below the offline threshold.
    Online(i64),
    /// Offline 15–60 min (age in s) → `display_offline` and a capped reload.
    Offline(i64),
    /// Age (s) ≥ the persistence threshold, or `None` = paired without any heartbeat → escalated, no command.
    Persistent(Option<i64>),
    /// `lastHeartbeat` present but unparseable: not examined (agents.md 9.18).
    Unknown,
}

impl Class {
    /// Paired and offline (age ≥ the offline threshold or no heartbeat): what a location counts.
    pub fn is_offline(self) -> bool {
        matches!(self, Class::Offline(_) | Class::Persistent(_))
    }
}

/// A walked display as fleet-manager judges it (agents.md 6.0, 6.3): the shared [`Display`] record plus the
/// heartbeat, pairing, location, organisation and `status == "error"`. Timestamps are parsed once; the texts are kept
/// as written for the messages.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetDisplay {
    /// Id, label, enabled, time zone, current playlist.
    pub display: Display,
    /// `lastHeartbeat`.
    pub last_heartbeat: TsField,
    /// `lastHeartbeat` as written, when a string.
    pub heartbeat_text: Option<Text>,
    /// `pairedAt` (only its null-ness is a rule; see [`common::never_paired`]).
    pub paired_at: TsField,
    /// `pairedAt` as written, when a string.
    pub paired_at_text: Option<Text>,
    /// `location` as written, when a string.
    pub location: Option<Text>,
    /// `organizationId`, when a string.
    pub organization_id: Option<Text>,
    /// `status == "error"`.
    pub error_status: bool,
}

impl FromItem for FleetDisplay {
    fn from_item(v: &Value) -> FleetDisplay {
        FleetDisplay {
            display: Display::from_item(v),
            last_heartbeat: TsField::of(v, "lastHeartbeat"),
            heartbeat_text: text(v, "lastHeartbeat"),
            paired_at: TsField::of(v, "pairedAt"),
            paired_at_text: text(v, "pairedAt"),
            location: super::entities::label_text(v, "location"),
            organization_id: text(v, "organizationId"),
            error_status: common::s(v, "status") == Some("error"),
        }
    }
}

/// Classifies one display at `now` (the run's start). `status` is never used for connectivity (6.0).
pub fn classify(d: &FleetDisplay, now: DateTime<Utc>, th: Thresholds) -> Class {
    if common::never_paired(d.last_heartbeat, d.paired_at) {
        return Class::NeverPaired;
    }
    match common::heartbeat(d.last_heartbeat, now) {
        Heartbeat::Never => Class::Persistent(None),
        Heartbeat::Unparseable => Class::Unknown,
        Heartbeat::Age(a) if a < th.offline_s => Class::Online(a),
        Heartbeat::Age(a) if a < th.persistent_s => Class::Offline(a),
        Heartbeat::Age(a) => Class::Persistent(Some(a)),
    }
}

/// The location key of 6.3.2: `location` trimmed, inner whitespace collapsed to one space, lower-cased; empty or
/// absent → `None` (ungrouped).
pub fn location_key(location: Option<&str>) -> Option<String> {
    let k = location?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    (!k.is_empty()).then_some(k)
}

/// A location whose enabled paired displays (at least the minimum) are all offline (6.3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineLocation {
    /// The members' `organizationId` (the session's organisation when a display has none).
    pub organization_id: String,
    /// Normalised key (see [`location_key`]).
    pub key: String,
    /// `location` verbatim as on the first display of the group in list order.
    pub first_seen: String,
    /// Member display ids in list order.
    pub display_ids: Vec<String>,
    /// Oldest parseable `lastHeartbeat` of the members (`None` when none has one).
    pub oldest: Option<DateTime<Utc>>,
    /// Newest parseable `lastHeartbeat` of the members (`None` when none has one).
    pub newest: Option<DateTime<Utc>>,
    /// Members paired but without any heartbeat.
    pub without_heartbeat: usize,
}

impl OfflineLocation {
    /// The incident's target id `<organizationId>/<key>`.
    pub fn target_id(&self) -> String {
        format!("{}/{}", self.organization_id, self.key)
    }
}

/// Location verdicts of 6.3.2 over enabled displays: the all-offline locations and the target ids of locations that
/// cannot be judged (a member with an unparseable heartbeat and none online). Never-paired displays are not paired
/// and do not count; displays without a location are ungrouped.
pub fn offline_locations(
    enabled: &[&FleetDisplay],
    now: DateTime<Utc>,
    th: Thresholds,
    min_displays: usize,
    default_org: &str,
) -> (Vec<OfflineLocation>, Vec<String>) {
    struct Group<'a> {
        org: String,
        key: String,
        first_seen: String,
        members: Vec<(&'a FleetDisplay, Class)>,
    }
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: HashMap<(String, String), Group> = HashMap::new();
    for d in enabled {
        let class = classify(d, now, th);
        if class == Class::NeverPaired {
            continue;
        }
        let raw = d.location.as_deref();
        let Some(key) = location_key(raw) else {
            continue;
        };
        let org = d
            .organization_id
            .as_deref()
            .unwrap_or(default_org)
            .to_string();
        let gk = (org.clone(), key.clone());
        groups
            .entry(gk.clone())
            .or_insert_with(|| {
                order.push(gk.clone());
                Group {
                    org,
                    key,
                    first_seen: raw.unwrap_or_default().to_string(),
                    members: Vec::new(),
                }
            })
            .members
            .push((d, class));
    }
    let mut offline = Vec::new();
    let mut unknown = Vec::new();
    for gk in order {
        let g = &groups[&gk];
        if g.members.len() < min_displays {
            continue;
        }
        if g.members.iter().any(|(_, c)| matches!(c, Class::Online(_))) {
            continue;
        }
        if g.members.iter().any(|(_, c)| *c == Class::Unknown) {
            unknown.push(format!("{}/{}", g.org, g.key));
            continue;
        }
        let beats: Vec<DateTime<Utc>> = g
            .members
            .iter()
            .filter_map(|(d, _)| d.last_heartbeat.at())
            .collect();
        offline.push(OfflineLocation {
            organization_id: g.org.clone(),
            key: g.key.clone(),
            first_seen: g.first_seen.clone(),
            display_ids: g
                .members
                .iter()
                .map(|(d, _)| d.display.id.to_string())
                .collect(),
            oldest: beats.iter().min().copied(),
            newest: beats.iter().max().copied(),
            without_heartbeat: g
                .members
                .iter()
                .filter(|(_, c)| *c == Class::Persistent(None))
                .count(),
        });
    }
    (offline, unknown)
}

// ---------------------------------------------------------------------------------------------------------------
// Command caps (6.3.3, windows per 1.1)
// ---------------------------------------------------------------------------------------------------------------

/// Why a reload was held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deferral {
    /// `OPS_FLEET_MAX_COMMANDS_PER_EPISODE` commands already sent in this episode.
    EpisodeLimit {
        /// Commands already sent in this episode (the incident's `attempts`).
        sent: u32,
        /// The per-episode limit.
        max: u32,
    },
    /// The episode's previous command is less than 20 min old (age in s at the run's start).
    EpisodeSpacing {
        /// Age of the episode's last command at the run's start (seconds).
        age_s: i64,
    },
    /// The display had a reload less than `OPS_FLEET_DISPLAY_COOLDOWN_MINUTES` ago (age in s at the run's start).
    DisplayCooldown {
        /// Age of the display's latest reload at the run's start (seconds).
        age_s: i64,
    },
    /// `OPS_FLEET_MAX_COMMANDS_PER_RUN` reached.
    RunLimit {
        /// The per-run limit.
        max: usize,
    },
    /// `OPS_FLEET_COMMANDS_PER_MINUTE` commands in the last 60 s.
    MinuteLimit {
        /// The per-minute limit.
        max: usize,
    },
    /// The fleet route answered 429/503 (or drifted) earlier in this run.
    Halted(String),
}

impl std::fmt::Display for Deferral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Deferral::EpisodeLimit { sent, max } => {
                write!(f, "{sent} of {max} reloads of this episode already sent")
            }
            Deferral::EpisodeSpacing { age_s } => write!(
                f,
                "previous reload of this episode {} min ago (second one ≥ 20 min after the first)",
                age_s / 60
            ),
            Deferral::DisplayCooldown { age_s } => {
                write!(
                    f,
                    "display reloaded {} min ago (per-display cooldown)",
                    age_s / 60
                )
            }
            Deferral::RunLimit { max } => write!(f, "{max} command(s) per run already sent"),
            Deferral::MinuteLimit { max } => write!(f, "{max} command(s) in the last 60 s"),
            Deferral::Halted(why) => write!(f, "fleet commands halted for this run: {why}"),
        }
    }
}

/// The reload budget of one run (agents.md 6.3.3): per episode, per display across episodes, per run and per 60 s.
/// Episode and cooldown windows take the age at the run's start with the early margin of 1.1; the per-minute cap is
/// a rate measured at the instant of sending (no margin, the API's own limit is 10 per minute per organisation).
#[derive(Debug, Clone)]
pub struct CommandCaps {
    /// Reloads per offline episode (`OPS_FLEET_MAX_COMMANDS_PER_EPISODE`).
    pub per_episode: u32,
    /// Per-display cooldown across episodes, in seconds (`OPS_FLEET_DISPLAY_COOLDOWN_MINUTES` × 60).
    pub cooldown_s: i64,
    /// Commands per run (`OPS_FLEET_MAX_COMMANDS_PER_RUN`).
    pub per_run: usize,
    /// Commands in any 60 s (`OPS_FLEET_COMMANDS_PER_MINUTE`).
    pub per_minute: usize,
    /// Early margin of the episode and cooldown windows, in seconds (`OPS_WINDOW_TOLERANCE_S`, agents.md 1.1).
    pub tolerance_s: i64,
    /// Commands sent (or, in a dry run, planned) this run.
    pub sent_this_run: usize,
    /// Send instants of fleet commands (prior runs' recent ones and this run's), for the 60 s window.
    pub recent_sends: Vec<DateTime<Utc>>,
    /// Set after a 429/503/drift of the fleet route: nothing more is sent this run.
    pub halted: Option<String>,
}

impl CommandCaps {
    /// Caps from the configuration, seeded with the fleet commands of the state (for the 60 s window).
    pub fn from_config(
        cfg: &crate::config::Config,
        prior_sends: Vec<DateTime<Utc>>,
    ) -> CommandCaps {
        CommandCaps {
            per_episode: cfg.entity.fleet_max_commands_per_episode,
            cooldown_s: cfg.entity.fleet_display_cooldown_minutes as i64 * 60,
            per_run: cfg.entity.fleet_max_commands_per_run,
            per_minute: cfg.entity.fleet_commands_per_minute,
            tolerance_s: cfg.window_tolerance_s,
            sent_this_run: 0,
            recent_sends: prior_sends,
            halted: None,
        }
    }

    /// Whether one more reload may be sent to a display now. `started` is the run's start (windows), `now` the
    /// instant of sending (60 s rate), `attempts`/`last_attempt` those of the episode, `last_reload` the display's
    /// latest reload across episodes.
    pub fn check(
        &self,
        started: DateTime<Utc>,
        now: DateTime<Utc>,
        attempts: u32,
        last_attempt: Option<DateTime<Utc>>,
        last_reload: Option<DateTime<Utc>>,
    ) -> Result<(), Deferral> {
        if let Some(h) = &self.halted {
            return Err(Deferral::Halted(h.clone()));
        }
        if attempts >= self.per_episode {
            return Err(Deferral::EpisodeLimit {
                sent: attempts,
                max: self.per_episode,
            });
        }
        if attempts >= 1
            && let Some(t) = last_attempt
            && !window_elapsed(started, t, EPISODE_SPACING_S, self.tolerance_s)
        {
            return Err(Deferral::EpisodeSpacing {
                age_s: age_s(started, t),
            });
        }
        if let Some(t) = last_reload
            && !window_elapsed(started, t, self.cooldown_s, self.tolerance_s)
        {
            return Err(Deferral::DisplayCooldown {
                age_s: age_s(started, t),
            });
        }
        if self.sent_this_run >= self.per_run {
            return Err(Deferral::RunLimit { max: self.per_run });
        }
        let in_minute = self
            .recent_sends
            .iter()
            .filter(|t| {
                let d = now - **t;
                d >= Duration::zero() && d < Duration::seconds(60)
            })
            .count();
        if in_minute >= self.per_minute {
            return Err(Deferral::MinuteLimit {
                max: self.per_minute,
            });
        }
        Ok(())
    }

    /// Records one command sent (or planned) at `at`.
    pub fn record(&mut self, at: DateTime<Utc>) {
        self.sent_this_run += 1;
        self.recent_sends.push(at);
    }
}

/// Whether a remediation action is one of this agent's fleet commands.
fn is_fleet_action(a: &crate::model::RemediationAction) -> bool {
    a.agent == AgentName::FleetManager.as_str()
        && a.endpoint.as_deref() == Some(FLEET_COMMANDS_PATH)
}

/// The latest reload of a display recorded in the state: its fleet-command RemediationActions and the
/// `lastAttemptAt` of its incidents (6.3.3). Unparseable timestamps are ignored.
pub fn last_reload(state: &OpsState, display_id: &str) -> Option<DateTime<Utc>> {
    let actions = state
        .recent_remediations
        .iter()
        .filter(|a| is_fleet_action(a) && a.target_id == display_id)
        .filter_map(|a| parse_ts(&a.timestamp));
    let incidents = state
        .incidents
        .iter()
        .filter(|i| {
            i.agent == AgentName::FleetManager.as_str()
                && i.target == "display"
                && i.target_id == display_id
        })
        .filter_map(|i| i.last_attempt_at.as_deref().and_then(parse_ts));
    actions.chain(incidents).max()
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics (6.3.6)
// ---------------------------------------------------------------------------------------------------------------

/// This run's contribution to the reconnect statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Fleet commands the API accepted.
    pub sent: u64,
    /// Reloads whose verification read answered (kept in the stats JSON for older readers; not a count on screen).
    pub verified: u64,
    /// Reloads whose verification saw a fresh heartbeat (**reconnected**, README "What the counts mean"); every
    /// other sent reload is **not reconnected** (sent − reconnected).
    pub reconnected: u64,
}

/// `stats.reconnect` after this run: the previous object (`prev`, from the last AgentResult) with daily buckets older
/// than 7 days (counting `today`) dropped and today's bucket increased by `run`. Shape:
/// `{"windowDays":7,"commandsSent","verified","reconnected","notReconnected","successRate","daily":[{"date","sent",
/// "reconnected","verified"}]}`; totals are sums over `daily` (dates `YYYY-MM-DD`, UTC, ascending);
/// `notReconnected` = commandsSent − reconnected; `successRate` = reconnected / commandsSent as a fraction 0–1
/// (3 decimals), `null` when nothing was sent (README "What the counts mean", agents.md 6.3.6). Malformed entries
/// of `prev` are dropped.
pub fn update_reconnect_stats(prev: Option<&Value>, today: NaiveDate, run: RunCounts) -> Value {
    let oldest = today - Duration::days(STATS_WINDOW_DAYS - 1);
    let mut days: Vec<(NaiveDate, u64, u64, u64)> = Vec::new();
    if let Some(Value::Array(daily)) = prev.and_then(|p| p.get("daily")) {
        for e in daily {
            let Some(date) = e
                .get("date")
                .and_then(Value::as_str)
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if date < oldest || date > today {
                continue;
            }
            let n = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
            match days.iter_mut().find(|d| d.0 == date) {
                Some(d) => {
                    d.1 += n("sent");
                    d.2 += n("reconnected");
                    d.3 += n("verified");
                }
                None => days.push((date, n("sent"), n("reconnected"), n("verified"))),
            }
        }
    }
    if run != RunCounts::default() {
        match days.iter_mut().find(|d| d.0 == today) {
            Some(d) => {
                d.1 += run.sent;
                d.2 += run.reconnected;
                d.3 += run.verified;
            }
            None => days.push((today, run.sent, run.reconnected, run.verified)),
        }
    }
    days.sort_by_key(|d| d.0);
    let sent: u64 = days.iter().map(|d| d.1).sum();
    let reconnected: u64 = days.iter().map(|d| d.2).sum();
    let verified: u64 = days.iter().map(|d| d.3).sum();
    let rate = if sent == 0 {
        Value::Null
    } else {
        let r = (reconnected as f64 / sent as f64).min(1.0);
        json!((r * 1000.0).round() / 1000.0)
    };
    json!({
        "windowDays": STATS_WINDOW_DAYS,
        "commandsSent": sent,
        "verified": verified,
        "reconnected": reconnected,
        "notReconnected": sent.saturating_sub(reconnected),
        "successRate": rate,
        "daily": days.iter().map(|(d, s, r, v)| json!({
            "date": d.format("%Y-%m-%d").to_string(),
            "sent": s,
            "reconnected": r,
            "verified": v,
        })).collect::<Vec<_>>(),
    })
}

/// The lines `vizora-ops status` prints for fleet-manager's reconnect statistics. Accepts the agent's whole `stats`
/// object (`{"reconnect": {...}}`) or the `reconnect` object itself; returns no line when neither holds statistics.
/// Example: `fleet reconnects (last 7 days): 3 reload(s) sent, 2 reconnected, 1 not reconnected, success rate 66.7%`
/// (sent = reconnected + not reconnected, rate = reconnected / sent), then one
/// `  <date>: <sent> sent, <reconnected> reconnected, <n> not reconnected` line per day with activity.
pub fn reconnect_summary(stats: &Value) -> Vec<String> {
    let r = match stats.get("reconnect") {
        Some(r) if r.is_object() => r,
        _ if stats.get("commandsSent").is_some() => stats,
        _ => return Vec::new(),
    };
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    let days = r.get("windowDays").and_then(Value::as_u64).unwrap_or(7);
    // Computed here from sent and reconnected, not read, so that the line adds up whatever an older writer stored.
    let (sent, reconnected) = (n("commandsSent"), n("reconnected").min(n("commandsSent")));
    let rate = if sent == 0 {
        "success rate n/a (nothing sent)".to_string()
    } else {
        format!(
            "success rate {:.1}%",
            reconnected as f64 * 100.0 / sent as f64
        )
    };
    let mut out = vec![format!(
        "fleet reconnects (last {days} days): {sent} reload(s) sent, {reconnected} reconnected, {} not reconnected, \
         {rate}",
        sent - reconnected,
    )];
    if let Some(Value::Array(daily)) = r.get("daily") {
        for e in daily {
            let g = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
            if g("sent") == 0 && g("reconnected") == 0 {
                continue;
            }
            let (ds, dr) = (g("sent"), g("reconnected").min(g("sent")));
            out.push(format!(
                "  {}: {ds} sent, {dr} reconnected, {} not reconnected",
                e.get("date").and_then(Value::as_str).unwrap_or("?"),
                ds - dr
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------------------

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

fn describe_walk(name: &str, l: &ListResult) -> String {
    format!(
        "{name}: collected {} of {} ({})",
        l.collected,
        l.total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "unknown".into()),
        l.reason.as_deref().unwrap_or("incomplete")
    )
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

    /// Inputs of 6.3: the three walks, concurrently. A first-page failure or an unknown shape ends the run with
    /// exit 2 and no write (`None`).
    async fn observe(&mut self) -> Option<Scan> {
        let api = self.ctx.api();
        let mut displays = Records::<FleetDisplay>::default();
        let mut schedules = Records::<Schedule>::default();
        let mut groups = Records::<DisplayGroup>::default();
        let (dw, sw, gw) = tokio::join!(
            api.walk_into(DISPLAYS_PATH, &mut displays),
            api.walk_into(SCHEDULES_PATH, &mut schedules),
            api.walk_into(GROUPS_PATH, &mut groups)
        );
        match (dw, sw, gw) {
            (Ok(displays_walk), Ok(schedules_walk), Ok(groups_walk)) => Some(Scan {
                displays: displays.items,
                schedules: schedules.items,
                groups: groups.items,
                displays_walk,
                schedules_walk,
                groups_walk,
                default_org: api
                    .organization_id()
                    .unwrap_or_else(|| "unknown-organization".into()),
            }),
            (d, s, g) => {
                let e = [
                    d.err().map(|e| format!("{DISPLAYS_PATH}: {e}")),
                    s.err().map(|e| format!("{SCHEDULES_PATH}: {e}")),
                    g.err().map(|e| format!("{GROUPS_PATH}: {e}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
                self.o.fail(
                    format!("cannot read the fleet (first page failed or unknown shape): {e}"),
                    WriteMode::None,
                );
                None
            }
        }
    }

    /// Coverage (2.5, 5.4): per-display types need the display list complete; locations and no-content need the
    /// whole scan. An incomplete scan raises the info `scan-truncated`.
    fn coverage(&mut self, scan: &Scan) {
        self.o.cover(SCAN_TRUNCATED);
        if scan.displays_walk.complete {
            for t in [
                DISPLAY_OFFLINE,
                DISPLAY_OFFLINE_PERSISTENT,
                DISPLAY_ERROR,
                DISPLAY_NEVER_PAIRED,
            ] {
                self.o.cover(t);
            }
        }
        if scan.complete() {
            self.o.cover(LOCATION_OFFLINE);
            self.o.cover(NO_CONTENT);
            return;
        }
        let parts: Vec<String> = [
            ("displays", &scan.displays_walk),
            ("schedules", &scan.schedules_walk),
            ("display-groups", &scan.groups_walk),
        ]
        .iter()
        .filter(|(_, l)| !l.complete)
        .map(|(n, l)| describe_walk(n, l))
        .collect();
        let msg = format!("Incomplete scan: {}", parts.join("; "));
        self.ctx.warn(&msg);
        self.o.note(format!("scan truncated: {}", parts.join("; ")));
        self.raised.put(self.ctx.incident(
            SCAN_TRUNCATED,
            Severity::Info,
            "display",
            "entity-lists",
            msg,
            "Investigate the failing page or API; location and no-content checks were skipped and nothing was \
             resolved for the incomplete lists",
        ));
    }

    /// 6.3.2 (complete scans, before remediation): one critical `location_offline` per all-offline location,
    /// alerted on its open transition; returns the member displays, whose per-display incidents are carried
    /// unchanged (unexamined) and who get no command.
    async fn locations(
        &mut self,
        enabled: &[(u32, &FleetDisplay)],
        default_org: &str,
    ) -> HashSet<String> {
        let ctx = self.ctx;
        let now = self.now;
        let enabled: Vec<&FleetDisplay> = enabled.iter().map(|(_, d)| *d).collect();
        let (locs, unknown) = offline_locations(
            &enabled,
            now,
            self.th,
            ctx.cfg.entity.location_min_displays,
            default_org,
        );
        for tid in unknown {
            self.o.unexamined.insert(id_for(LOCATION_OFFLINE, &tid));
            self.o.note(format!(
                "location {tid}: a display's lastHeartbeat is unparseable; not examined"
            ));
        }
        let mut members = HashSet::new();
        let mut new_critical = Vec::new();
        for loc in locs {
            let hb = |t: Option<DateTime<Utc>>| match t {
                Some(t) => format!("{} ({} min ago)", ts(t), minutes(age_s(now, t))),
                None => "none".into(),
            };
            let mut msg = format!(
                "All {} enabled paired display(s) at location \"{}\" are offline; oldest heartbeat {}, newest \
                 heartbeat {}",
                loc.display_ids.len(),
                loc.first_seen,
                hb(loc.oldest),
                hb(loc.newest)
            );
            if loc.without_heartbeat > 0 {
                msg.push_str(&format!(
                    "; {} paired without any heartbeat",
                    loc.without_heartbeat
                ));
            }
            let inc = ctx.incident(
                LOCATION_OFFLINE,
                Severity::Critical,
                "location",
                &loc.target_id(),
                msg.clone(),
                "Check power and network at the site; per-display reloads are suppressed while the whole \
                 location is down",
            );
            if self.prior_active(&inc.id).is_none() {
                new_critical.push(inc.clone());
            }
            self.o.note(format!("location offline: {msg}"));
            for did in &loc.display_ids {
                members.insert(did.clone());
                for t in PER_DISPLAY_TYPES {
                    self.o.unexamined.insert(id_for(t, did));
                }
            }
            self.raised.put(inc);
        }
        if !new_critical.is_empty() {
            let summary = format!("{} location(s) entirely offline", new_critical.len());
            self.alert(InlineKind::Critical, summary, new_critical)
                .await;
        }
        members
    }

    /// 6.3.1 for the displays outside offline locations: raises never-paired, offline, persistent (escalated,
    /// superseding `display_offline`) and error incidents. Returns the remediation candidates (offline 15–60 min, and
    /// `error` displays) and the ids of incidents that just became persistent.
    fn classify_displays<'o>(&mut self, obs: &'o [Obs]) -> (Vec<&'o Obs>, Vec<String>) {
        let ctx = self.ctx;
        let th = self.th;
        let mut candidates = Vec::new();
        let mut new_persistent = Vec::new();
        for d in obs {
            match d.class {
                Class::NeverPaired => {
                    self.o.note(if d.label == d.id {
                        format!("never paired: display {}", d.id)
                    } else {
                        format!("never paired: \"{}\" ({})", d.label, d.id)
                    });
                    self.raised.put(ctx.incident(
                        DISPLAY_NEVER_PAIRED,
                        Severity::Info,
                        "display",
                        &d.id,
                        format!(
                            "Display \"{}\" has never been paired (no heartbeat, no pairedAt)",
                            d.label
                        ),
                        "Pair the device, or disable the display record if it is not in use",
                    ));
                }
                Class::Online(_) => {}
                Class::Offline(a) => {
                    self.raised.put(ctx.incident(
                        DISPLAY_OFFLINE,
                        Severity::Warning,
                        "display",
                        &d.id,
                        format!(
                            "Display \"{}\" offline for {} min (last heartbeat {}; threshold {} min)",
                            d.label,
                            minutes(a),
                            d.heartbeat.as_deref().unwrap_or("none"),
                            th.offline_s / 60
                        ),
                        "reload command pending",
                    ));
                    candidates.push(d);
                }
                Class::Persistent(a) => {
                    let msg = match a {
                        Some(a) => format!(
                            "Display \"{}\" offline for {} min (last heartbeat {}; persistent threshold {} min)",
                            d.label,
                            minutes(a),
                            d.heartbeat.as_deref().unwrap_or("none"),
                            th.persistent_s / 60
                        ),
                        None => format!(
                            "Display \"{}\" was paired ({}) but has never sent a heartbeat",
                            d.label,
                            d.paired_at.as_deref().unwrap_or("unknown time")
                        ),
                    };
                    let mut inc = ctx.incident(
                        DISPLAY_OFFLINE_PERSISTENT,
                        Severity::Warning,
                        "display",
                        &d.id,
                        msg.clone(),
                        format!(
                            "Escalated: a reload cannot reach a device that stays offline; check power and \
                             network of the screen{} on site",
                            d.location
                                .as_deref()
                                .map(|l| format!(" at \"{l}\""))
                                .unwrap_or_default()
                        ),
                    );
                    inc.status = IncidentStatus::Escalated;
                    let off_id = id_for(DISPLAY_OFFLINE, &d.id);
                    let superseded = self.prior_active(&off_id).map(|p| p.detected.clone());
                    if self.prior_active(&inc.id).is_none() {
                        if let Some(detected) = &superseded {
                            inc.detected = detected.clone();
                        }
                        new_persistent.push(inc.id.clone());
                    }
                    if superseded.is_some() {
                        self.o
                            .resolve_suffix
                            .insert(off_id, SUPERSEDED_SUFFIX.into());
                    }
                    self.o
                        .note(format!("persistent offline (escalated): {msg}"));
                    self.raised.put(inc);
                }
                Class::Unknown => {
                    for t in [DISPLAY_OFFLINE, DISPLAY_OFFLINE_PERSISTENT, NO_CONTENT] {
                        self.o.unexamined.insert(id_for(t, &d.id));
                    }
                    ctx.warn(format!(
                        "display \"{}\" ({}): lastHeartbeat {:?} is unparseable; not examined",
                        d.label,
                        d.id,
                        d.heartbeat.as_deref().unwrap_or("")
                    ));
                    self.o.note(format!(
                        "not examined: \"{}\" has an unparseable lastHeartbeat",
                        d.label
                    ));
                }
            }
            if d.error_status {
                self.raised.put(ctx.incident(
                    DISPLAY_ERROR,
                    Severity::Warning,
                    "display",
                    &d.id,
                    format!("Display \"{}\" reports status \"error\"", d.label),
                    "status reset pending",
                ));
                if !matches!(d.class, Class::Offline(_)) {
                    candidates.push(d);
                }
            }
        }
        (candidates, new_persistent)
    }

    /// 6.3.5 (complete scans): online, no `currentPlaylistId`, no schedule active now → info `no_content`.
    fn no_content(
        &mut self,
        enabled: &[(u32, &FleetDisplay)],
        scan: &Scan,
        skip: &HashSet<String>,
    ) {
        let ids = DisplayIds::build(scan.displays.iter().map(|d| &*d.display.id));
        let group_map = Membership::build(&scan.groups, &ids);
        let schedules: Vec<&Schedule> = scan.schedules.iter().collect();
        for &(ix, d) in enabled {
            let id = &*d.display.id;
            if skip.contains(id)
                || !matches!(classify(d, self.now, self.th), Class::Online(_))
                || d.display.current_playlist != CurrentPlaylist::Null
            {
                continue;
            }
            let label = d.display.label();
            match common::any_schedule_active_for(&d.display, ix, &schedules, &group_map, self.now)
            {
                Some(true) => {}
                Some(false) => {
                    self.o.note(format!(
                        "no content: \"{label}\" is online with nothing to play"
                    ));
                    self.raised.put(self.ctx.incident(
                        NO_CONTENT,
                        Severity::Info,
                        "display",
                        id,
                        format!(
                            "Display \"{label}\" is online but has no current playlist and no schedule active now"
                        ),
                        "schedule-doctor's coverage_gap owns the fix (fallback playlist); assign a playlist or a \
                         schedule",
                    ));
                }
                None => {
                    self.o.unexamined.insert(id_for(NO_CONTENT, id));
                    self.o.note(format!(
                        "no-content check of \"{label}\" not examined (group membership or schedule fields unknown)"
                    ));
                }
            }
        }
    }

    /// 6.3.3 and 6.3.4 for every candidate, in list order: PATCH an `error` display to `offline`, then a reload
    /// within every cap (never for persistent, never-paired or unknown displays).
    async fn remediate(&mut self, candidates: Vec<&Obs>) -> FleetWork {
        let ctx = self.ctx;
        let prior_sends: Vec<DateTime<Utc>> = ctx
            .snapshot
            .recent_remediations
            .iter()
            .filter(|a| is_fleet_action(a))
            .filter_map(|a| parse_ts(&a.timestamp))
            .collect();
        let mut caps = CommandCaps::from_config(&ctx.cfg, prior_sends);
        let mut work = FleetWork::default();
        let mut gone: HashSet<String> = HashSet::new();
        for d in candidates {
            if gone.contains(&d.id) {
                continue;
            }
            if !path_safe(&d.id) {
                let why = format!("display id {:?} is not a plain id; no request sent", d.id);
                ctx.warn(&why);
                for t in [DISPLAY_OFFLINE, DISPLAY_ERROR] {
                    if let Some(i) = self.raised.get_mut(&id_for(t, &d.id)) {
                        i.remediation = "no automatic remediation (unsafe id)".into();
                        i.error = Some(why.clone());
                    }
                }
                continue;
            }
            let mut p = Pending {
                display_id: d.id.clone(),
                label: d.label.clone(),
                before_heartbeat: None,
                reload_audit: None,
                reload_action: None,
                offline: matches!(d.class, Class::Offline(_)),
                patch_audit: None,
                patch_action: None,
            };
            if d.error_status && !self.reset_error(d, &mut p, &mut work).await {
                gone.insert(d.id.clone());
                continue;
            }
            if matches!(d.class, Class::Offline(_) | Class::Online(_))
                && !self.reload(d, &mut p, &mut caps, &mut work).await
            {
                gone.insert(d.id.clone());
                continue;
            }
            if p.reload_audit.is_some() || p.patch_audit.is_some() {
                work.pending.push(p);
            }
        }
        work
    }

    /// 6.3.4: `PATCH /displays/:id {"status":"offline"}`. Returns false when the display is gone.
    async fn reset_error(&mut self, d: &Obs, p: &mut Pending, work: &mut FleetWork) -> bool {
        let out = self
            .ctx
            .api()
            .mutate(MutationRequest {
                action: format!("Reset display \"{}\" from error to offline", d.label),
                target: "display".into(),
                target_id: d.id.clone(),
                method: Method::PATCH,
                path: format!("{DISPLAYS_PATH}/{}", d.id),
                body: json!({"status": "offline"}),
                before_path: format!("{DISPLAYS_PATH}/{}", d.id),
                route_slug: SLUG_PATCH_DISPLAYS.into(),
                idempotent: true,
                precondition: None,
            })
            .await;
        let err_id = id_for(DISPLAY_ERROR, &d.id);
        let inc = self.raised.get_mut(&err_id).expect("display_error raised");
        match handle_mutation(self.ctx, &out, inc, "status reset to offline (PATCH)", true) {
            Handled::Gone => {
                self.mark_gone(&d.id, &d.label);
                return false;
            }
            Handled::Done => {
                work.route_ok.insert(SLUG_PATCH_DISPLAYS);
                self.o.note(format!(
                    "status reset error → offline sent for \"{}\"",
                    d.label
                ));
                p.patch_audit = out.audit_id.clone();
            }
            Handled::DryRun => self.o.note(format!(
                "would reset status error → offline for \"{}\" (dry run)",
                d.label
            )),
            Handled::Failed(e) => {
                if out.is_drift() {
                    work.drift_errors
                        .push((SLUG_PATCH_DISPLAYS.into(), e.clone()));
                }
                self.o.note(format!("PATCH of \"{}\" failed: {e}", d.label));
            }
        }
        if let Some(a) = out.action {
            self.o.remediations.push(a);
            if p.patch_audit.is_some() {
                p.patch_action = Some(self.o.remediations.len() - 1);
            }
        }
        true
    }

    /// 6.3.3: one `reload` within the caps, or the deferral. Returns false when the display is gone.
    async fn reload(
        &mut self,
        d: &Obs,
        p: &mut Pending,
        caps: &mut CommandCaps,
        work: &mut FleetWork,
    ) -> bool {
        let ctx = self.ctx;
        let offline = p.offline;
        let inc_id = id_for(
            if offline {
                DISPLAY_OFFLINE
            } else {
                DISPLAY_ERROR
            },
            &d.id,
        );
        let (attempts, last_attempt) = self
            .prior_active(&inc_id)
            .map(|i| (i.attempts, i.last_attempt_at.as_deref().and_then(parse_ts)))
            .unwrap_or((0, None));
        let last = last_reload(&ctx.snapshot, &d.id);
        if let Some(t) = last.into_iter().chain(last_attempt).find(|t| *t > self.now) {
            ctx.warn(format!(
                "display \"{}\": last reload {} lies in the future (clock moved backwards?); counted as age 0",
                d.label,
                ts(t)
            ));
        }
        let send_at = ctx.now();
        if let Err(why) = caps.check(self.now, send_at, attempts, last_attempt, last) {
            ctx.info(format!("reload of \"{}\" deferred: {why}", d.label));
            self.o
                .note(format!("reload deferred for \"{}\": {why}", d.label));
            if let Some(i) = self.raised.get_mut(&inc_id) {
                i.remediation = if offline {
                    DEFERRED.to_string()
                } else {
                    format!("{}; {DEFERRED}", i.remediation)
                };
            }
            return true;
        }
        let out = ctx
            .api()
            .mutate(MutationRequest {
                action: format!("Send reload command to display \"{}\"", d.label),
                target: "display".into(),
                target_id: d.id.clone(),
                method: Method::POST,
                path: FLEET_COMMANDS_PATH.into(),
                body: json!({"command": "reload", "target": {"type": "device", "id": d.id}}),
                before_path: format!("{DISPLAYS_PATH}/{}", d.id),
                route_slug: SLUG_FLEET.into(),
                idempotent: false,
                precondition: None,
            })
            .await;
        if matches!(
            out.status,
            MutationStatus::Done(_) | MutationStatus::DryRun | MutationStatus::Failed(_)
        ) {
            caps.record(send_at);
        }
        let what = if offline {
            "reload command sent; waiting for reconnection (a command alone is not a fix)"
        } else {
            "status reset; reload command sent"
        };
        // For an error display the PATCH of this run already counted as its attempt.
        let count = offline || !d.error_status;
        let inc = self.raised.get_mut(&inc_id).expect("incident raised");
        match handle_mutation(ctx, &out, inc, what, count) {
            Handled::Gone => {
                self.mark_gone(&d.id, &d.label);
                return false;
            }
            Handled::Done => {
                work.route_ok.insert(SLUG_FLEET);
                self.counts.sent += 1;
                work.last_command = Some(Instant::now());
                let after = match &out.status {
                    MutationStatus::Done(v) => v.clone(),
                    _ => Value::Null,
                };
                let n = |k: &str| after.get(k).and_then(Value::as_u64).unwrap_or(0);
                self.o.note(format!(
                    "reload sent to \"{}\" (devicesOnline {}, queued {}, delivered {})",
                    d.label,
                    n("devicesOnline"),
                    n("devicesQueued"),
                    n("devicesDelivered")
                ));
                p.before_heartbeat = out
                    .before
                    .as_ref()
                    .and_then(|b| common::s(b, "lastHeartbeat"))
                    .and_then(parse_ts);
                p.reload_audit = out.audit_id.clone();
            }
            Handled::DryRun => {
                self.o
                    .note(format!("would send reload to \"{}\" (dry run)", d.label));
            }
            Handled::Failed(e) => {
                self.o
                    .note(format!("reload of \"{}\" failed: {e}", d.label));
                match &out.status {
                    MutationStatus::Failed(ApiError::RateLimited { .. })
                    | MutationStatus::Failed(ApiError::Server { status: 503, .. }) => {
                        caps.halted = Some(e.clone());
                    }
                    _ if out.is_drift() => {
                        caps.halted = Some(format!("route {SLUG_FLEET} drifted"));
                        work.drift_errors.push((SLUG_FLEET.into(), e.clone()));
                    }
                    _ => {}
                }
            }
        }
        if let Some(a) = out.action {
            self.o.remediations.push(a);
            if p.reload_audit.is_some() {
                p.reload_action = Some(self.o.remediations.len() - 1);
            }
        }
        true
    }

    /// A display vanished between the list and the mutation's `before` read: drop its per-display findings of this
    /// run (the sweep resolves them: "resolves when its entity is gone", section 3).
    fn mark_gone(&mut self, display_id: &str, label: &str) {
        for t in PER_DISPLAY_TYPES {
            let id = id_for(t, display_id);
            self.raised.remove(&id);
            self.o
                .resolve_suffix
                .insert(id, " — display no longer exists".into());
        }
        self.o.note(format!(
            "display \"{label}\" no longer exists; nothing sent"
        ));
    }

    /// Verification (6.3.3, 6.3.4): `OPS_RECONNECT_VERIFY_S` after the last command, re-read each display; a fresh
    /// heartbeat later than the `before` read resolves `display_offline` (fixed), a status other than `error`
    /// resolves `display_error` (fixed). Every verdict gets an audit verification line.
    async fn verify(&mut self, work: &FleetWork) {
        let ctx = self.ctx;
        if work.pending.is_empty() {
            return;
        }
        if let Some(t) = work.last_command {
            let rest = ctx
                .cfg
                .entity
                .reconnect_verify_s
                .saturating_sub(t.elapsed().as_secs());
            if rest > 0 {
                // Says what for and until when (issue 9: a long wait never looks like a hang).
                let until = ctx.now() + chrono::Duration::seconds(rest as i64);
                ctx.info(format!(
                    "waiting {rest} s, until {}, for {} display(s) to reconnect after the reload command(s) \
                     (OPS_RECONNECT_VERIFY_S), then verifying",
                    until.format("%H:%M:%S UTC"),
                    work.pending.len()
                ));
                ctx.wait_s(rest).await;
            }
        }
        let reads = read_back(ctx, &work.pending).await;
        let mut fixed_items = Vec::new();
        let mut fixed_refs = Vec::new();
        for p in &work.pending {
            let read = reads.get(&p.display_id);
            let vnow = ctx.now();
            let failed = |read: Option<&Result<Option<Value>, String>>| match read {
                Some(Ok(None)) => "display no longer exists".to_string(),
                Some(Err(e)) => format!("verification read failed: {e}"),
                _ => "verification read not made".to_string(),
            };
            if let Some(audit_id) = &p.reload_audit {
                let (ok, detail) = match read {
                    Some(Ok(Some(after))) => {
                        let hb = common::s(after, "lastHeartbeat").and_then(parse_ts);
                        let fresh = hb.is_some_and(|h| {
                            p.before_heartbeat.is_none_or(|b| h > b)
                                && age_s(vnow, h) < self.th.offline_s
                        });
                        // Every sent reload is judged (offline or error reset alike), so that sent =
                        // reconnected + not reconnected (README "What the counts mean").
                        self.counts.verified += 1;
                        self.counts.reconnected += u64::from(fresh);
                        let show =
                            |t: Option<DateTime<Utc>>| t.map(ts).unwrap_or_else(|| "none".into());
                        (
                            fresh,
                            format!(
                                "lastHeartbeat before={} after={}",
                                show(p.before_heartbeat),
                                show(hb)
                            ),
                        )
                    }
                    other => (false, failed(other)),
                };
                audit_verification(ctx, audit_id, &p.display_id, ok, &detail);
                if let Some(ix) = p.reload_action {
                    self.o.remediations[ix].verified = Some(ok);
                }
                let off_id = id_for(DISPLAY_OFFLINE, &p.display_id);
                match self.raised.get_mut(&off_id) {
                    Some(inc) if p.offline && ok => {
                        inc.remediation =
                            "reload command sent; reconnection observed (fresh heartbeat)".into();
                        let r = super::resolved(inc.clone(), vnow);
                        fixed_refs.push(r.clone());
                        self.raised.put(r);
                        self.o.fixed += 1;
                        fixed_items.push(format!("\"{}\" reconnected after a reload", p.label));
                        self.o
                            .note(format!("verified: \"{}\" reconnected ({detail})", p.label));
                    }
                    Some(inc) if p.offline => {
                        inc.error = Some(format!(
                            "no reconnection observed after the reload ({detail})"
                        ));
                        self.o.note(format!(
                            "not reconnected: \"{}\", incident stays open ({detail})",
                            p.label
                        ));
                    }
                    _ => self.o.note(format!(
                        "reload of \"{}\": {} ({detail})",
                        p.label,
                        // A fresh heartbeat, not `status` (which the error reset sets to offline; 6.0).
                        if ok {
                            "reconnected (fresh heartbeat)"
                        } else {
                            "not reconnected (no fresh heartbeat)"
                        }
                    )),
                }
            }
            if let Some(audit_id) = &p.patch_audit {
                let (ok, detail) = match read {
                    Some(Ok(Some(after))) => {
                        let st = common::s(after, "status").unwrap_or("");
                        (st != "error", format!("status={st}"))
                    }
                    other => (false, failed(other)),
                };
                audit_verification(ctx, audit_id, &p.display_id, ok, &detail);
                if let Some(ix) = p.patch_action {
                    self.o.remediations[ix].verified = Some(ok);
                }
                let err_id = id_for(DISPLAY_ERROR, &p.display_id);
                if let Some(inc) = self.raised.get_mut(&err_id) {
                    if ok {
                        let r = super::resolved(inc.clone(), vnow);
                        fixed_refs.push(r.clone());
                        self.raised.put(r);
                        self.o.fixed += 1;
                        fixed_items.push(format!("\"{}\" no longer in error ({detail})", p.label));
                        self.o.note(format!(
                            "verified: \"{}\" left the error state ({detail}, set by the reset; \
                             connectivity is judged by heartbeat)",
                            p.label
                        ));
                    } else {
                        inc.error = Some(format!("error state not cleared ({detail})"));
                        self.o.note(format!(
                            "not fixed: \"{}\" still in error ({detail})",
                            p.label
                        ));
                    }
                }
            }
        }
        if !fixed_items.is_empty() {
            // A fix notification (7.6): Slack only, never stamped.
            // The same numbers as the run's summary (README "What the counts mean"): fixed = verified
            // remediations, closed = the incidents they closed.
            let summary = format!(
                "{} verified fix(es) closed {} display incident(s)",
                crate::model::verified_fix_count(&self.o.remediations),
                fixed_items.len()
            );
            let _ = ctx
                .alerts
                .inline(
                    InlineAlert {
                        agent: AgentName::FleetManager,
                        kind: InlineKind::Fixed,
                        summary,
                        items: fixed_items,
                        refs: fixed_refs,
                    },
                    ctx.now(),
                    ctx.dry_run,
                )
                .await;
        }
    }

    /// Contract drift (3.3): a critical `api-contract-drift` per drifted route, alerted on its open transition,
    /// exit 2 with a full write. A route that answered this run resolves an older drift incident; one not called
    /// (or only planned in a dry run) leaves it unexamined.
    async fn contract_drift(&mut self, work: &FleetWork) {
        let ctx = self.ctx;
        let drifted = ctx.api().drifted_routes();
        let mut new_drift = Vec::new();
        let mut any = false;
        for slug in [SLUG_FLEET, SLUG_PATCH_DISPLAYS] {
            let drift_id = id_for(API_CONTRACT_DRIFT, slug);
            if !drifted.iter().any(|s| s == slug) {
                if !work.route_ok.contains(slug) {
                    self.o.unexamined.insert(drift_id);
                }
                continue;
            }
            any = true;
            let e = work
                .drift_errors
                .iter()
                .find(|(s, _)| s == slug)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| "route answered 404 Cannot … or 405".into());
            let inc = ctx.incident(
                API_CONTRACT_DRIFT,
                Severity::Critical,
                "api",
                slug,
                format!("Vizora API contract drift on {slug}: {e}"),
                "Update vizora-ops to the current Vizora API; the route is not called again this run",
            );
            if self.prior_active(&inc.id).is_none() {
                new_drift.push(inc.clone());
            }
            self.o.note(format!("API contract drift: {slug}: {e}"));
            self.raised.put(inc);
        }
        self.o.cover(API_CONTRACT_DRIFT);
        if !any {
            return;
        }
        let slugs: Vec<String> = self
            .raised
            .list
            .iter()
            .filter(|i| i.kind == API_CONTRACT_DRIFT)
            .map(|i| i.target_id.clone())
            .collect();
        self.o.fail(
            format!("API contract drift on {}", slugs.join(", ")),
            WriteMode::Full,
        );
        if !new_drift.is_empty() {
            let summary = "Vizora API contract drift: fleet remediation stopped".to_string();
            self.alert(InlineKind::Critical, summary, new_drift).await;
        }
    }

    /// 6.3.7: one batched inline warning for the displays that became persistent this run.
    async fn alert_persistent(&mut self, new_persistent: &[String]) {
        let refs: Vec<Incident> = self
            .raised
            .list
            .iter()
            .filter(|i| new_persistent.contains(&i.id))
            .cloned()
            .collect();
        if !refs.is_empty() {
            let summary = format!(
                "{} display(s) offline for {} min or more (escalated)",
                refs.len(),
                self.th.persistent_s / 60
            );
            self.alert(InlineKind::Warning, summary, refs).await;
        }
    }

    /// Sends one inline alert covering `refs`; delivered ids are stamped in this run's write.
    async fn alert(&mut self, kind: InlineKind, summary: String, refs: Vec<Incident>) {
        let ctx = self.ctx;
        let items = refs.iter().map(|i| i.message.clone()).collect();
        let stamps = ctx
            .alerts
            .inline(
                InlineAlert {
                    agent: AgentName::FleetManager,
                    kind,
                    summary,
                    items,
                    refs,
                },
                ctx.now(),
                ctx.dry_run,
            )
            .await;
        self.o.alert_stamps.extend(stamps);
    }

    /// Prior incidents of displays that no longer exist (unfiltered set, complete list) close through the sweep;
    /// the suffix says why. Disabled displays still exist: theirs close without a suffix.
    fn explain_gone(&mut self, scan: &Scan) {
        if !scan.displays_walk.complete {
            return;
        }
        let all: HashSet<&str> = scan.displays.iter().map(|d| &*d.display.id).collect();
        for (id, p) in &self.priors {
            if p.is_active() && p.target == "display" && !all.contains(p.target_id.as_str()) {
                self.o
                    .resolve_suffix
                    .entry(id.clone())
                    .or_insert_with(|| " — display no longer exists".into());
            }
        }
    }

    /// 6.3.6: `stats.reconnect` carried from the previous result over 7 days, plus this run's fleet counts; other
    /// keys of the previous stats are kept.
    fn stats(
        &mut self,
        scan: &Scan,
        enabled: &[(u32, &FleetDisplay)],
        disabled: usize,
        obs: &[Obs],
        in_offline_locations: usize,
    ) {
        let prev = self
            .ctx
            .snapshot
            .agent_result(AgentName::FleetManager.as_str())
            .and_then(|r| r.stats);
        let reconnect = update_reconnect_stats(
            prev.as_ref().and_then(|s| s.get("reconnect")),
            self.now.date_naive(),
            self.counts,
        );
        let mut stats = match prev {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let count = |f: fn(Class) -> bool| obs.iter().filter(|d| f(d.class)).count();
        stats.insert("reconnect".into(), reconnect);
        stats.insert(
            "fleet".into(),
            json!({
                "displays": scan.displays.len(),
                "enabled": enabled.len(),
                "disabled": disabled,
                "online": count(|c| matches!(c, Class::Online(_))),
                "offline": count(|c| matches!(c, Class::Offline(_))),
                "persistent": count(|c| matches!(c, Class::Persistent(_))),
                "neverPaired": count(|c| c == Class::NeverPaired),
                "inOfflineLocations": in_offline_locations,
                "scanComplete": scan.complete(),
            }),
        );
        self.o.stats = Some(Value::Object(stats));
    }
}

/// How a mutation outcome was applied to its incident.
enum Handled {
    Done,
    DryRun,
    Gone,
    Failed(String),
}

/// Applies a mutation outcome to its incident: attempts + 1 and `lastAttemptAt` for a request that reached the API,
/// remediation text, or the error (agents.md 5.7–5.8).
fn handle_mutation(
    ctx: &AgentContext,
    out: &MutationOutcome,
    inc: &mut Incident,
    done_text: &str,
    count_attempt: bool,
) -> Handled {
    let attempt = |inc: &mut Incident| {
        if count_attempt {
            inc.attempts += 1;
        }
        inc.last_attempt_at = Some(ts(ctx.now()));
    };
    match &out.status {
        MutationStatus::Done(_) => {
            attempt(inc);
            inc.remediation = done_text.to_string();
            inc.error = None;
            Handled::Done
        }
        MutationStatus::DryRun => {
            inc.remediation = format!("dry run: would do: {done_text}");
            Handled::DryRun
        }
        MutationStatus::Gone => Handled::Gone,
        MutationStatus::PreReadFailed(e) => {
            let e = format!("pre-write read failed: {e}");
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
        MutationStatus::SkippedDrift => {
            let e = "route drifted earlier in this run; not called".to_string();
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
        // fleet-manager sends its writes without a precondition; kept total for the type.
        MutationStatus::Unneeded(why) => {
            let e = format!("not sent: {why}");
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
        MutationStatus::Failed(e) => {
            attempt(inc);
            let e = e.to_string();
            inc.error = Some(e.clone());
            Handled::Failed(e)
        }
    }
}

fn audit_verification(
    ctx: &AgentContext,
    audit_id: &str,
    display_id: &str,
    ok: bool,
    detail: &str,
) {
    let line = VerificationLine::new(
        &ctx.run_id,
        ctx.agent.as_str(),
        audit_id,
        "display",
        display_id,
        ok,
        detail,
        ctx.now(),
    );
    if let Err(e) = ctx.audit.append(&line) {
        ctx.error(format!("audit append failed for a verification: {e}"));
    }
}

/// Keeps, of a display walk, only the whole rows of the displays being verified (their ids in `wanted`).
struct PendingRows {
    wanted: HashSet<String>,
    rows: HashMap<String, Value>,
}

impl ItemSink for PendingRows {
    fn item(&mut self, item: Value) {
        let (id, _) = id_text(&item);
        if self.wanted.contains(&*id) {
            self.rows.entry(id.into()).or_insert(item);
        }
    }
    fn restart(&mut self) {
        self.rows.clear();
    }
}

/// The verification reads: `GET /displays/:id` each, or one fresh `/displays` walk when more than
/// [`MAX_DETAIL_VERIFICATIONS`] are pending. Per display: `Ok(Some(row))`, `Ok(None)` = gone, `Err` = unknown.
async fn read_back(
    ctx: &AgentContext,
    pending: &[Pending],
) -> HashMap<String, Result<Option<Value>, String>> {
    let api = ctx.api();
    let mut out = HashMap::new();
    let ids: Vec<&str> = pending.iter().map(|p| p.display_id.as_str()).collect();
    if ids.len() > MAX_DETAIL_VERIFICATIONS {
        let mut keep = PendingRows {
            wanted: ids.iter().copied().map(String::from).collect(),
            rows: HashMap::new(),
        };
        match api.walk_into(DISPLAYS_PATH, &mut keep).await {
            Ok(l) => {
                for id in ids {
                    let r = match keep.rows.remove(id) {
                        Some(d) => Ok(Some(d)),
                        None if l.complete => Ok(None),
                        None => Err(format!(
                            "not in the incomplete verification walk ({})",
                            l.reason.as_deref().unwrap_or("incomplete")
                        )),
                    };
                    out.insert(id.to_string(), r);
                }
            }
            Err(e) => {
                for id in ids {
                    out.insert(id.to_string(), Err(e.to_string()));
                }
            }
        }
    } else {
        for id in ids {
            let r = match api.get(&format!("{DISPLAYS_PATH}/{id}")).await {
                Ok(v) => Ok(Some(v)),
                Err(ApiError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            out.insert(id.to_string(), r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::AlertSink;
    use crate::clock::{Clock, ManualClock};
    use crate::config::{Config, Source};
    use crate::model::RemediationAction;
    use crate::state::audit::AuditLog;
    use crate::vizora::{ListResult, VizoraApi};
    use async_trait::async_trait;
    use std::sync::{Arc, Mutex};

    fn t0() -> DateTime<Utc> {
        parse_ts("2026-08-26T13:42:17.000Z").unwrap()
    }
    fn ago(min: f64) -> String {
        ts(t0() - Duration::milliseconds((min * 60_000.0) as i64))
    }
    const TH: Thresholds = Thresholds {
        offline_s: 900,
        persistent_s: 3600,
    };

    fn display(id: &str, hb_min: Option<f64>, loc: Option<&str>) -> Value {
        json!({
            "id": id, "organizationId": "org-1", "nickname": format!("Screen {id}"), "location": loc,
            "status": "online", "timezone": "UTC", "lastHeartbeat": hb_min.map(ago), "isDisabled": false,
            "currentPlaylistId": "pl-1", "pairedAt": "2026-01-01T00:00:00.000Z",
        })
    }

    fn fd(v: &Value) -> FleetDisplay {
        FleetDisplay::from_item(v)
    }

    // ---- classification ----

    #[test]
    fn heartbeat_ages_classify_at_the_fifteen_and_sixty_minute_edges() {
        let c = |m| classify(&fd(&display("a", Some(m), None)), t0(), TH);
        assert_eq!(c(14.9), Class::Online(894));
        assert_eq!(c(15.0), Class::Offline(900));
        assert_eq!(c(59.9), Class::Offline(3594));
        assert_eq!(c(60.0), Class::Persistent(Some(3600)));
    }

    #[test]
    fn never_paired_paired_without_heartbeat_and_unparseable_are_distinct() {
        let mut d = display("a", None, None);
        assert_eq!(classify(&fd(&d), t0(), TH), Class::Persistent(None));
        d["pairedAt"] = Value::Null;
        assert_eq!(classify(&fd(&d), t0(), TH), Class::NeverPaired);
        let mut u = display("b", None, None);
        u["lastHeartbeat"] = json!("last tuesday");
        assert_eq!(classify(&fd(&u), t0(), TH), Class::Unknown);
        assert!(!Class::Unknown.is_offline());
    }

    // ---- locations ----

    #[test]
    fn location_key_trims_collapses_whitespace_and_lowercases() {
        assert_eq!(
            location_key(Some("  Harrogate \t James   Street ")).as_deref(),
            Some("harrogate james street")
        );
        assert_eq!(location_key(Some("   ")), None);
        assert_eq!(location_key(None), None);
    }

    #[test]
    fn spellings_of_one_location_form_one_offline_group() {
        let ds = [
            display("a", Some(40.0), Some("Harrogate  James Street ")),
            display("b", Some(41.0), Some("Harrogate James Street")),
            display("c", Some(39.0), Some("harrogate james street")),
            display("d", Some(200.0), Some("HARROGATE JAMES STREET")),
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        let (locs, unknown) = offline_locations(&refs, t0(), TH, 3, "org-x");
        assert!(unknown.is_empty());
        assert_eq!(locs.len(), 1);
        let l = &locs[0];
        assert_eq!(l.target_id(), "org-1/harrogate james street");
        assert_eq!(l.first_seen, "Harrogate  James Street ");
        assert_eq!(l.display_ids, vec!["a", "b", "c", "d"]);
        assert_eq!(l.oldest, parse_ts(&ago(200.0)));
        assert_eq!(l.newest, parse_ts(&ago(39.0)));
    }

    #[test]
    fn one_online_screen_or_too_few_displays_is_no_location_offline() {
        let ds = [
            display("a", Some(40.0), Some("Leeds")),
            display("b", Some(41.0), Some("Leeds")),
            display("c", Some(14.0), Some("Leeds")),
            display("d", Some(40.0), Some("York")),
            display("e", Some(40.0), Some("York")),
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        let (locs, _) = offline_locations(&refs, t0(), TH, 3, "org-x");
        assert!(locs.is_empty(), "{locs:?}");
    }

    #[test]
    fn never_paired_displays_do_not_count_and_organizations_are_separate() {
        let mut np = display("n", None, Some("Leeds"));
        np["pairedAt"] = Value::Null;
        let mut other_org = display("o", Some(40.0), Some("Leeds"));
        other_org["organizationId"] = json!("org-2");
        let ds = [
            display("a", Some(40.0), Some("Leeds")),
            display("b", None, Some("Leeds")),
            np,
            other_org,
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        assert!(offline_locations(&refs, t0(), TH, 3, "x").0.is_empty());
        let (locs, _) = offline_locations(&refs, t0(), TH, 2, "x");
        assert_eq!(locs.len(), 1);
        assert_eq!(locs[0].display_ids, vec!["a", "b"]);
        assert_eq!(locs[0].without_heartbeat, 1);
    }

    #[test]
    fn a_location_with_an_unparseable_heartbeat_and_none_online_is_not_examined() {
        let mut u = display("u", None, Some("Leeds"));
        u["lastHeartbeat"] = json!("garbage");
        let ds = [
            display("a", Some(40.0), Some("Leeds")),
            display("b", Some(40.0), Some("Leeds")),
            u,
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        let (locs, unknown) = offline_locations(&refs, t0(), TH, 3, "x");
        assert!(locs.is_empty());
        assert_eq!(unknown, vec!["org-1/leeds".to_string()]);
    }

    // ---- caps and windows ----

    fn caps() -> CommandCaps {
        CommandCaps {
            per_episode: 2,
            cooldown_s: 1800,
            per_run: 20,
            per_minute: 10,
            tolerance_s: 120,
            sent_this_run: 0,
            recent_sends: vec![],
            halted: None,
        }
    }
    fn before(min: i64) -> Option<DateTime<Utc>> {
        Some(t0() - Duration::minutes(min))
    }

    #[test]
    fn second_reload_of_an_episode_waits_twenty_minutes_with_the_early_margin() {
        let c = caps();
        assert!(matches!(
            c.check(t0(), t0(), 1, before(10), None),
            Err(Deferral::EpisodeSpacing { .. })
        ));
        assert!(c.check(t0(), t0(), 1, before(18), None).is_ok());
        assert!(matches!(
            c.check(t0(), t0(), 2, before(50), None),
            Err(Deferral::EpisodeLimit { sent: 2, max: 2 })
        ));
    }

    #[test]
    fn display_cooldown_spans_episodes_and_passes_at_thirty_minutes_minus_margin() {
        let c = caps();
        assert!(matches!(
            c.check(t0(), t0(), 0, None, before(20)),
            Err(Deferral::DisplayCooldown { age_s: 1200 })
        ));
        assert!(c.check(t0(), t0(), 0, None, before(28)).is_ok());
        assert!(c.check(t0(), t0(), 0, None, before(27)).is_err());
    }

    #[test]
    fn a_reload_in_the_future_counts_as_age_zero_and_never_opens_the_window() {
        let c = caps();
        let future = Some(t0() + Duration::minutes(90));
        assert!(matches!(
            c.check(t0(), t0(), 0, None, future),
            Err(Deferral::DisplayCooldown { age_s: 0 })
        ));
    }

    #[test]
    fn run_and_minute_caps_defer_further_reloads() {
        let mut c = caps();
        c.per_run = 3;
        for i in 0..3 {
            assert!(c.check(t0(), t0(), 0, None, None).is_ok());
            c.record(t0() + Duration::seconds(i));
        }
        assert_eq!(
            c.check(t0(), t0(), 0, None, None),
            Err(Deferral::RunLimit { max: 3 })
        );
        let mut m = caps();
        m.recent_sends = (0..10).map(|i| t0() - Duration::seconds(50 - i)).collect();
        assert_eq!(
            m.check(t0(), t0(), 0, None, None),
            Err(Deferral::MinuteLimit { max: 10 })
        );
        assert!(
            m.check(t0(), t0() + Duration::seconds(15), 0, None, None)
                .is_ok(),
            "sends older than 60 s leave the window"
        );
        m.halted = Some("429".into());
        assert!(matches!(
            m.check(t0(), t0() + Duration::minutes(5), 0, None, None),
            Err(Deferral::Halted(_))
        ));
    }

    #[test]
    fn last_reload_takes_the_latest_of_fleet_actions_and_incident_attempts() {
        let mut st = OpsState::empty(t0());
        let action = |t: &str, id: &str, endpoint: &str| RemediationAction {
            agent: "fleet-manager".into(),
            timestamp: t.into(),
            action: "reload".into(),
            target: "display".into(),
            target_id: id.into(),
            method: "POST".into(),
            endpoint: Some(endpoint.into()),
            before: None,
            after: None,
            success: true,
            error: None,
            verified: None,
            run_id: None,
            extra: Default::default(),
        };
        st.recent_remediations
            .push(action(&ago(40.0), "d1", FLEET_COMMANDS_PATH));
        st.recent_remediations
            .push(action(&ago(5.0), "d1", "/api/v1/displays/d1"));
        st.recent_remediations
            .push(action(&ago(1.0), "d2", FLEET_COMMANDS_PATH));
        assert_eq!(last_reload(&st, "d1"), parse_ts(&ago(40.0)));
        let mut inc = Incident::new(
            AgentName::FleetManager,
            DISPLAY_OFFLINE,
            Severity::Warning,
            "display",
            "d1",
            "m",
            "r",
            t0(),
        );
        inc.status = IncidentStatus::Resolved;
        inc.last_attempt_at = Some(ago(25.0));
        st.incidents.push(inc);
        assert_eq!(last_reload(&st, "d1"), parse_ts(&ago(25.0)));
        assert_eq!(last_reload(&st, "d3"), None);
    }

    // ---- statistics ----

    #[test]
    fn reconnect_stats_keep_seven_days_and_sum_the_window() {
        let today = NaiveDate::from_ymd_opt(2026, 8, 26).unwrap();
        let prev = json!({"daily": [
            {"date": "2026-08-19", "sent": 9, "reconnected": 9, "verified": 9},
            {"date": "2026-08-20", "sent": 2, "reconnected": 1, "verified": 2},
            {"date": "2026-08-26", "sent": 1, "reconnected": 0, "verified": 1},
            {"date": "bogus", "sent": 5},
        ]});
        let s = update_reconnect_stats(
            Some(&prev),
            today,
            RunCounts {
                sent: 3,
                verified: 3,
                reconnected: 2,
            },
        );
        assert_eq!(s["windowDays"], 7);
        assert_eq!(s["commandsSent"], 6);
        assert_eq!(s["verified"], 6);
        assert_eq!(s["reconnected"], 3);
        assert_eq!(s["successRate"], 0.5);
        let dates: Vec<&str> = s["daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["date"].as_str().unwrap())
            .collect();
        assert_eq!(dates, vec!["2026-08-20", "2026-08-26"]);
        assert_eq!(s["daily"][1]["sent"], 4);
    }

    #[test]
    fn success_rate_is_reconnected_over_sent_and_null_when_nothing_was_sent() {
        let today = NaiveDate::from_ymd_opt(2026, 8, 26).unwrap();
        let s = update_reconnect_stats(
            None,
            today,
            RunCounts {
                sent: 2,
                ..Default::default()
            },
        );
        assert_eq!(s["commandsSent"], 2);
        assert_eq!(s["successRate"], 0.0);
        assert_eq!(s["notReconnected"], 2);
        let lines = reconnect_summary(&json!({ "reconnect": s }));
        assert_eq!(
            lines[0],
            "fleet reconnects (last 7 days): 2 reload(s) sent, 0 reconnected, 2 not reconnected, success rate 0.0%"
        );
        assert_eq!(
            lines[1],
            "  2026-08-26: 2 sent, 0 reconnected, 2 not reconnected"
        );
        let none = update_reconnect_stats(None, today, RunCounts::default());
        assert!(none["successRate"].is_null());
    }

    #[test]
    fn reconnect_summary_accepts_the_reconnect_object_and_ignores_missing_stats() {
        let s = json!({"windowDays":7,"commandsSent":4,"verified":3,"reconnected":2,"successRate":0.667,
            "daily":[{"date":"2026-08-25","sent":0,"reconnected":0}]});
        assert_eq!(
            reconnect_summary(&s),
            vec![
                "fleet reconnects (last 7 days): 4 reload(s) sent, 2 reconnected, 2 not reconnected, success rate \
                 50.0%"
                    .to_string()
            ]
        );
        assert!(reconnect_summary(&json!({})).is_empty());
        assert!(reconnect_summary(&Value::Null).is_empty());
    }

    // ---- the run against a fake API ----

    /// An in-memory Vizora with scripted fleet answers; records every request.
    struct FakeApi {
        clock: Arc<ManualClock>,
        displays: Mutex<Vec<Value>>,
        schedules: Vec<Value>,
        groups: Vec<Value>,
        incomplete_displays: bool,
        /// Fleet answers in order (`None` = 201); after the list, 201.
        fleet_errors: Mutex<Vec<Option<ApiError>>>,
        /// Displays that reconnect when reloaded.
        reconnect: HashSet<String>,
        dry_run: bool,
        requests: Mutex<Vec<(String, String)>>,
    }

    impl FakeApi {
        fn new(clock: Arc<ManualClock>, displays: Vec<Value>) -> FakeApi {
            FakeApi {
                clock,
                displays: Mutex::new(displays),
                schedules: vec![],
                groups: vec![],
                incomplete_displays: false,
                fleet_errors: Mutex::new(vec![]),
                reconnect: HashSet::new(),
                dry_run: false,
                requests: Mutex::new(vec![]),
            }
        }
        fn writes(&self) -> Vec<(String, String)> {
            self.requests
                .lock()
                .unwrap()
                .iter()
                .filter(|(m, _)| m != "GET")
                .cloned()
                .collect()
        }
    }

    fn list(items: Vec<Value>, complete: bool) -> ListResult {
        ListResult {
            total: Some(items.len() as u64 + u64::from(!complete)),
            complete,
            reason: (!complete).then(|| "page 2 failed: API 500".to_string()),
            pages: 1,
            collected: items.len(),
            items,
        }
    }

    #[async_trait]
    impl VizoraApi for FakeApi {
        async fn get(&self, path: &str) -> Result<Value, ApiError> {
            self.requests
                .lock()
                .unwrap()
                .push(("GET".into(), path.into()));
            let id = path.rsplit('/').next().unwrap_or_default();
            self.displays
                .lock()
                .unwrap()
                .iter()
                .find(|d| d["id"] == id)
                .cloned()
                .ok_or(ApiError::NotFound {
                    method: "GET".into(),
                    path: path.into(),
                    message: "Display not found".into(),
                })
        }
        async fn walk(&self, path: &str) -> Result<ListResult, ApiError> {
            self.requests
                .lock()
                .unwrap()
                .push(("GET".into(), path.into()));
            Ok(match path {
                DISPLAYS_PATH => list(
                    self.displays.lock().unwrap().clone(),
                    !self.incomplete_displays,
                ),
                SCHEDULES_PATH => list(self.schedules.clone(), true),
                _ => list(self.groups.clone(), true),
            })
        }
        async fn mutate(&self, req: MutationRequest) -> MutationOutcome {
            let before = self.get(&req.before_path).await.ok();
            if before.is_none() {
                return MutationOutcome {
                    status: MutationStatus::Gone,
                    before: None,
                    audit_id: None,
                    action: None,
                };
            }
            if self.dry_run {
                return MutationOutcome {
                    status: MutationStatus::DryRun,
                    before,
                    audit_id: Some("a".into()),
                    action: None,
                };
            }
            self.requests
                .lock()
                .unwrap()
                .push((req.method.to_string(), req.path.clone()));
            let err = {
                let mut q = self.fleet_errors.lock().unwrap();
                if req.path == FLEET_COMMANDS_PATH && !q.is_empty() {
                    q.remove(0)
                } else {
                    None
                }
            };
            let id = req.target_id.clone();
            if err.is_none() {
                let mut ds = self.displays.lock().unwrap();
                if let Some(d) = ds.iter_mut().find(|d| d["id"] == id.as_str()) {
                    if req.method == Method::PATCH {
                        d["status"] = req.body["status"].clone();
                    } else if self.reconnect.contains(&id) {
                        d["lastHeartbeat"] = json!(ts(self.clock.now()));
                    }
                }
            }
            let action = RemediationAction {
                agent: "fleet-manager".into(),
                timestamp: ts(self.clock.now()),
                action: req.action.clone(),
                target: req.target.clone(),
                target_id: id,
                method: req.method.to_string(),
                endpoint: Some(req.path.clone()),
                before: before.clone(),
                after: None,
                success: err.is_none(),
                error: err.as_ref().map(|e| e.to_string()),
                verified: None,
                run_id: None,
                extra: Default::default(),
            };
            MutationOutcome {
                status: match err {
                    Some(e) => MutationStatus::Failed(e),
                    None => MutationStatus::Done(json!({"devicesOnline": 0, "devicesQueued": 1})),
                },
                before,
                audit_id: Some(uuid::Uuid::new_v4().to_string()),
                action: Some(action),
            }
        }
        async fn post_idempotent(&self, _p: &str, _b: &Value) -> Result<Value, ApiError> {
            unreachable!("fleet-manager pushes nothing")
        }
        fn organization_id(&self) -> Option<String> {
            Some("org-1".into())
        }
        fn drifted_routes(&self) -> Vec<String> {
            vec![]
        }
    }

    #[derive(Default)]
    struct CaptureSink(Mutex<Vec<(InlineKind, String, Vec<String>)>>);

    #[async_trait]
    impl AlertSink for CaptureSink {
        async fn inline(&self, a: InlineAlert, _now: DateTime<Utc>, _dry: bool) -> Vec<String> {
            let ids = a.refs.iter().map(|i| i.id.clone()).collect();
            self.0.lock().unwrap().push((a.kind, a.summary, a.items));
            ids
        }
    }

    struct Harness {
        _dir: tempfile::TempDir,
        clock: Arc<ManualClock>,
        sink: Arc<CaptureSink>,
        cfg: Arc<Config>,
    }

    fn harness(extra: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().display().to_string();
        let mut pairs: Vec<(String, String)> = vec![
            ("OPS_LOG_DIR".into(), log),
            ("OPS_RECONNECT_VERIFY_S".into(), "0".into()),
        ];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cfg = Config::from_source(Source::from_pairs(pairs), dir.path()).unwrap();
        Harness {
            _dir: dir,
            clock: Arc::new(ManualClock::new(t0())),
            sink: Arc::new(CaptureSink::default()),
            cfg: Arc::new(cfg),
        }
    }

    impl Harness {
        async fn run(&self, api: Arc<FakeApi>, snapshot: OpsState, dry_run: bool) -> AgentOutcome {
            let ctx = AgentContext {
                cfg: self.cfg.clone(),
                agent: AgentName::FleetManager,
                run_id: "run-1".into(),
                started: self.clock.now(),
                clock: self.clock.clone(),
                dry_run,
                snapshot,
                audit: AuditLog::new(self.cfg.audit_file.clone()),
                deadline: Instant::now() + std::time::Duration::from_secs(60),
                alerts: self.sink.clone(),
                api: Some(api),
                http: reqwest::Client::new(),
                process_manager: None,
            };
            run(&ctx).await
        }
    }

    fn find<'a>(o: &'a AgentOutcome, kind: &str, target: &str) -> Option<&'a Incident> {
        o.incidents
            .iter()
            .find(|i| i.kind == kind && i.target_id == target)
    }

    fn state_with(incidents: Vec<Incident>) -> OpsState {
        let mut st = OpsState::empty(t0());
        st.incidents = incidents;
        st
    }

    #[tokio::test]
    async fn a_reload_that_reconnects_is_verified_and_resolved() {
        let h = harness(&[]);
        let mut api = FakeApi::new(h.clock.clone(), vec![display("d1", Some(20.0), None)]);
        api.reconnect.insert("d1".into());
        let api = Arc::new(api);
        let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
        let inc = find(&o, DISPLAY_OFFLINE, "d1").expect("raised");
        assert_eq!(inc.status, IncidentStatus::Resolved);
        assert_eq!(inc.attempts, 1);
        assert_eq!(o.fixed, 1);
        assert_eq!(o.remediations.len(), 1);
        assert_eq!(o.remediations[0].verified, Some(true));
        let r = &o.stats.as_ref().unwrap()["reconnect"];
        assert_eq!(
            (
                r["commandsSent"].as_u64(),
                r["verified"].as_u64(),
                r["reconnected"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(
            api.writes(),
            vec![("POST".into(), FLEET_COMMANDS_PATH.into())]
        );
    }

    #[tokio::test]
    async fn a_sent_reload_without_reconnection_stays_open_and_is_never_a_fix() {
        let h = harness(&[]);
        let api = Arc::new(FakeApi::new(
            h.clock.clone(),
            vec![display("d1", Some(20.0), None)],
        ));
        let o = h.run(api, OpsState::empty(t0()), false).await;
        let inc = find(&o, DISPLAY_OFFLINE, "d1").unwrap();
        assert_eq!(inc.status, IncidentStatus::Open);
        assert_eq!(inc.attempts, 1);
        assert_eq!(inc.last_attempt_at.as_deref(), Some(ts(t0()).as_str()));
        assert!(inc.error.as_deref().unwrap().contains("no reconnection"));
        assert_eq!(o.fixed, 0);
        assert_eq!(o.remediations[0].verified, Some(false));
        assert_eq!(o.stats.as_ref().unwrap()["reconnect"]["successRate"], 0.0);
    }

    #[tokio::test]
    async fn persistent_display_is_escalated_without_a_command_and_supersedes_display_offline() {
        let h = harness(&[]);
        let api = Arc::new(FakeApi::new(
            h.clock.clone(),
            vec![display("d1", Some(75.0), None)],
        ));
        let mut prior = Incident::new(
            AgentName::FleetManager,
            DISPLAY_OFFLINE,
            Severity::Warning,
            "display",
            "d1",
            "m",
            "r",
            t0() - Duration::minutes(60),
        );
        prior.attempts = 2;
        let o = h
            .run(api.clone(), state_with(vec![prior.clone()]), false)
            .await;
        let p = find(&o, DISPLAY_OFFLINE_PERSISTENT, "d1").unwrap();
        assert_eq!(p.status, IncidentStatus::Escalated);
        assert_eq!(p.detected, prior.detected, "the episode start carries over");
        assert!(find(&o, DISPLAY_OFFLINE, "d1").is_none());
        assert_eq!(
            o.resolve_suffix.get(&prior.id).map(String::as_str),
            Some(SUPERSEDED_SUFFIX)
        );
        assert!(api.writes().is_empty());
        let alerts = h.sink.0.lock().unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].0, InlineKind::Warning);
        assert_eq!(o.alert_stamps, vec![p.id.clone()]);
    }

    #[tokio::test]
    async fn fleet_429_keeps_the_display_open_with_the_error_and_halts_further_commands() {
        let h = harness(&[]);
        let api = FakeApi::new(
            h.clock.clone(),
            vec![
                display("d1", Some(20.0), None),
                display("d2", Some(30.0), None),
            ],
        );
        *api.fleet_errors.lock().unwrap() = vec![Some(ApiError::RateLimited {
            method: "POST".into(),
            path: FLEET_COMMANDS_PATH.into(),
            message: "Fleet command rate limit exceeded. Max 10 commands per minute.".into(),
        })];
        let api = Arc::new(api);
        let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
        let d1 = find(&o, DISPLAY_OFFLINE, "d1").unwrap();
        assert_eq!(d1.status, IncidentStatus::Open);
        assert!(d1.error.as_deref().unwrap().contains("429"));
        let d2 = find(&o, DISPLAY_OFFLINE, "d2").unwrap();
        assert_eq!(d2.remediation, DEFERRED);
        assert_eq!(api.writes().len(), 1, "nothing sent after the 429");
        assert_eq!(o.stats.as_ref().unwrap()["reconnect"]["commandsSent"], 0);
    }

    #[tokio::test]
    async fn per_run_cap_defers_the_rest_with_the_budget_remediation() {
        let h = harness(&[("OPS_FLEET_MAX_COMMANDS_PER_RUN", "2")]);
        let ds = (0..4)
            .map(|i| display(&format!("d{i}"), Some(20.0), None))
            .collect();
        let api = Arc::new(FakeApi::new(h.clock.clone(), ds));
        let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
        let deferred = o
            .incidents
            .iter()
            .filter(|i| i.remediation == DEFERRED)
            .count();
        assert_eq!(deferred, 2);
        assert_eq!(api.writes().len(), 2);
    }

    #[tokio::test]
    async fn cooldown_blocks_a_second_reload_within_thirty_minutes_then_allows_it() {
        let h = harness(&[]);
        let api = Arc::new(FakeApi::new(
            h.clock.clone(),
            vec![display("d1", Some(20.0), None)],
        ));
        let first = h.run(api.clone(), OpsState::empty(t0()), false).await;
        let mut st = state_with(first.incidents.clone());
        st.recent_remediations = first.remediations.clone();
        h.clock.advance(Duration::minutes(10));
        let second = h.run(api.clone(), st.clone(), false).await;
        assert_eq!(api.writes().len(), 1, "no second reload after 10 min");
        assert_eq!(
            find(&second, DISPLAY_OFFLINE, "d1").unwrap().remediation,
            DEFERRED
        );
        // At +29 min: keep the display inside the 15–60 min band (heartbeat 20 min old at this run's start).
        h.clock.advance(Duration::minutes(19));
        api.displays.lock().unwrap()[0]["lastHeartbeat"] =
            json!(ts(h.clock.now() - Duration::minutes(20)));
        let third = h.run(api.clone(), st, false).await;
        assert_eq!(
            api.writes().len(),
            2,
            "window passes at 29 min (30 min − 120 s margin)"
        );
        assert_eq!(find(&third, DISPLAY_OFFLINE, "d1").unwrap().attempts, 2);
    }

    #[tokio::test]
    async fn error_display_is_reset_then_reloaded_and_resolved_on_re_read() {
        let h = harness(&[]);
        let mut d = display("e1", Some(0.5), None);
        d["status"] = json!("error");
        let api = Arc::new(FakeApi::new(h.clock.clone(), vec![d]));
        let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
        assert_eq!(
            api.writes(),
            vec![
                ("PATCH".into(), "/api/v1/displays/e1".into()),
                ("POST".into(), FLEET_COMMANDS_PATH.into())
            ]
        );
        let e = find(&o, DISPLAY_ERROR, "e1").unwrap();
        assert_eq!(e.status, IncidentStatus::Resolved);
        assert_eq!(e.attempts, 1);
        assert_eq!(o.fixed, 1);
        // Every sent reload is judged, so that sent = reconnected + not reconnected (README "What the counts mean").
        let r = &o.stats.as_ref().unwrap()["reconnect"];
        assert_eq!(r["commandsSent"], 1);
        assert_eq!(
            r["reconnected"].as_u64().unwrap() + r["notReconnected"].as_u64().unwrap(),
            1,
            "{r}"
        );
    }

    #[tokio::test]
    async fn dry_run_sends_nothing_and_lists_the_would_be_actions() {
        let h = harness(&[]);
        let mut e = display("e1", Some(0.5), None);
        e["status"] = json!("error");
        let mut api = FakeApi::new(h.clock.clone(), vec![display("d1", Some(20.0), None), e]);
        api.dry_run = true;
        let api = Arc::new(api);
        let o = h.run(api.clone(), OpsState::empty(t0()), true).await;
        assert!(api.writes().is_empty());
        assert!(
            o.report
                .iter()
                .any(|l| l.contains("would send reload to \"Screen d1\""))
        );
        assert!(
            o.report
                .iter()
                .any(|l| l.contains("would reset status error"))
        );
        assert_eq!(o.fixed, 0);
        assert!(o.remediations.is_empty());
    }

    #[tokio::test]
    async fn offline_location_replaces_per_display_incidents_and_carries_their_priors() {
        let h = harness(&[]);
        let ds = vec![
            display("h1", Some(40.0), Some("Harrogate  James Street ")),
            display("h2", Some(41.0), Some("harrogate james street")),
            display("h3", Some(39.0), Some("Harrogate James Street")),
            display("x1", Some(0.2), Some("Leeds")),
        ];
        let api = Arc::new(FakeApi::new(h.clock.clone(), ds));
        let prior = Incident::new(
            AgentName::FleetManager,
            DISPLAY_OFFLINE,
            Severity::Warning,
            "display",
            "h1",
            "m",
            "r",
            t0() - Duration::minutes(20),
        );
        let o = h
            .run(api.clone(), state_with(vec![prior.clone()]), false)
            .await;
        let loc = find(&o, LOCATION_OFFLINE, "org-1/harrogate james street").unwrap();
        assert_eq!(loc.severity, Severity::Critical);
        assert!(loc.message.contains("\"Harrogate  James Street \""));
        assert!(loc.message.contains("All 3"));
        assert!(o.incidents.iter().all(|i| i.target != "display"));
        assert!(o.unexamined.contains(&prior.id));
        assert!(api.writes().is_empty());
        assert_eq!(h.sink.0.lock().unwrap()[0].0, InlineKind::Critical);
        // Already open next time: no second critical alert.
        let again = h.run(api, state_with(o.incidents.clone()), false).await;
        assert!(find(&again, LOCATION_OFFLINE, "org-1/harrogate james street").is_some());
        assert_eq!(h.sink.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn incomplete_display_walk_runs_per_display_rules_only_and_covers_nothing_it_depends_on()
    {
        let h = harness(&[]);
        let ds = vec![
            display("h1", Some(40.0), Some("Harrogate")),
            display("h2", Some(41.0), Some("Harrogate")),
            display("h3", Some(39.0), Some("Harrogate")),
        ];
        let mut api = FakeApi::new(h.clock.clone(), ds);
        api.incomplete_displays = true;
        let o = h.run(Arc::new(api), OpsState::empty(t0()), false).await;
        assert!(find(&o, LOCATION_OFFLINE, "org-1/harrogate").is_none());
        assert_eq!(
            o.incidents
                .iter()
                .filter(|i| i.kind == DISPLAY_OFFLINE)
                .count(),
            3
        );
        let st = find(&o, SCAN_TRUNCATED, "entity-lists").unwrap();
        assert!(st.message.contains("displays: collected 3 of 4"));
        for t in [DISPLAY_OFFLINE, LOCATION_OFFLINE, NO_CONTENT] {
            assert!(!o.covered_types.contains(t), "{t} must not be covered");
        }
    }

    #[tokio::test]
    async fn disabled_displays_are_ignored_and_unparseable_heartbeats_not_examined() {
        let h = harness(&[]);
        let mut dis = display("x", Some(30.0), None);
        dis["isDisabled"] = json!(true);
        let mut bad = display("b", None, None);
        bad["lastHeartbeat"] = json!("not-a-time");
        let api = Arc::new(FakeApi::new(h.clock.clone(), vec![dis, bad]));
        let o = h.run(api.clone(), OpsState::empty(t0()), false).await;
        assert!(o.incidents.is_empty(), "{:?}", o.incidents);
        assert!(o.unexamined.contains(&id_for(DISPLAY_OFFLINE, "b")));
        assert!(!o.unexamined.contains(&id_for(DISPLAY_OFFLINE, "x")));
        assert!(o.covered_types.contains(DISPLAY_OFFLINE));
        assert!(api.writes().is_empty());
    }

    #[tokio::test]
    async fn empty_fleet_is_a_normal_covered_run() {
        let h = harness(&[]);
        let o = h
            .run(
                Arc::new(FakeApi::new(h.clock.clone(), vec![])),
                OpsState::empty(t0()),
                false,
            )
            .await;
        assert!(o.fatal.is_none());
        assert!(o.incidents.is_empty());
        assert!(o.covered_types.contains(LOCATION_OFFLINE));
        assert_eq!(o.stats.as_ref().unwrap()["reconnect"]["commandsSent"], 0);
    }
}
