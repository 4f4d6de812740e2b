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
//! Detection is pure ([`detect`]); this file does the I/O, remediation, verification and bookkeeping.

pub mod detect;

use super::common::{self, s};
use super::entities::{Display, DisplayGroup, PlaylistSummary, Records, Schedule};
use super::{AgentContext, AgentOutcome, InlineAlert, InlineKind, WriteMode, resolved};
use crate::model::{AgentName, Incident, Severity, incident_id, ts};
use crate::state::audit::VerificationLine;
use crate::vizora::{
    ApiError, ListResult, MutationRequest, MutationStatus, Precondition, VizoraApi,
};
use detect::{ActiveFault, Coverage, EntitySets, Fallback, MissingTarget};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

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

const SCHEDULES: &str = "/api/v1/schedules";
const DISPLAYS: &str = "/api/v1/displays";
const PLAYLISTS: &str = "/api/v1/playlists";
const GROUPS: &str = "/api/v1/display-groups";
const ORG: &str = "/api/v1/organizations/current";
/// Route slug of `PATCH /api/v1/schedules/:id` (3.4 `api-contract-drift`).
const PATCH_SCHEDULES: &str = "patch-schedules";
/// Route slug of `PATCH /api/v1/displays/:id`.
const PATCH_DISPLAYS: &str = "patch-displays";

const AGENT: AgentName = AgentName::ScheduleDoctor;

/// How one remediation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fix {
    /// Sent and verified by a re-read.
    Verified,
    /// Nothing to write: the fresh read shows it done already, or the entity is gone (the string says which).
    AlreadyDone(String),
    /// Dry run: the audit line was written, nothing sent.
    Planned,
    /// Not done (error text in the incident).
    NotDone,
    /// Not done because the finding was false: a fresh read embeds the "missing" playlist/display/group, or a direct
    /// read of it answered (agents.md 6.4.2). The schedule stays active; the string is the evidence.
    Refuted(String),
}

/// Whether a skipped write's evidence shows that the entity its verdict called absent exists (the precondition's
/// relation check below, or the client's absence read, [`Precondition::absent`]).
fn refutes_absence(evidence: &str) -> bool {
    evidence.starts_with("a direct read") || evidence.starts_with(EMBEDS_EVIDENCE)
}

/// Start of the evidence when the schedule's fresh read embeds the relation its verdict called missing.
const EMBEDS_EVIDENCE: &str = "a fresh read of the schedule embeds";

/// A verified (or, in a dry run, planned) fix for the batched notifications.
struct FixNote {
    item: String,
    incident: Option<Incident>,
}

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

    fn prior_active(&self, id: &str) -> bool {
        self.ctx
            .snapshot
            .incidents
            .iter()
            .any(|i| i.id == id && i.is_active())
    }

    fn note(&mut self, line: String) {
        self.ctx.info(&line);
        self.o.note(line);
    }

    fn verification_line(
        &self,
        audit_id: Option<&str>,
        target: &str,
        id: &str,
        ok: bool,
        detail: &str,
    ) {
        if let Some(mid) = audit_id {
            let line = VerificationLine::new(
                &self.ctx.run_id,
                AGENT.as_str(),
                mid,
                target,
                id,
                ok,
                detail,
                self.ctx.now(),
            );
            if let Err(e) = self.ctx.audit.append(&line) {
                self.ctx.error(format!("audit append failed: {e}"));
            }
        }
    }

    /// Sends one audited PATCH and verifies it with `verified(re-read)`. The helper's fresh `before` read is also the
    /// confirmation: `precondition` fails on it → nothing written, [`Fix::AlreadyDone`] with the evidence; 404 →
    /// `the <target> no longer exists; nothing to write`. `inc` gets attempts, errors and the remediation text.
    /// `slug` is the route slug for drift.
    #[allow(clippy::too_many_arguments)]
    async fn patch(
        &mut self,
        inc: &mut Incident,
        action: String,
        target: &str,
        id: &str,
        path: &str,
        body: Value,
        slug: &'static str,
        precondition: Precondition,
        verified: impl Fn(&Value) -> bool,
        verify_detail: &str,
    ) -> Fix {
        let out = self
            .api
            .mutate(MutationRequest {
                action,
                target: target.to_string(),
                target_id: id.to_string(),
                method: Method::PATCH,
                path: path.to_string(),
                body: body.clone(),
                before_path: path.to_string(),
                route_slug: slug.to_string(),
                idempotent: true,
                precondition: Some(precondition),
            })
            .await;
        let now = self.ctx.now();
        match out.status {
            MutationStatus::DryRun => Fix::Planned,
            MutationStatus::Gone => {
                Fix::AlreadyDone(format!("the {target} no longer exists; nothing to write"))
            }
            MutationStatus::Unneeded(evidence) => Fix::AlreadyDone(evidence),
            MutationStatus::SkippedDrift => {
                inc.error = Some(format!(
                    "PATCH {path} not sent: the route drifted earlier in this run"
                ));
                Fix::NotDone
            }
            MutationStatus::PreReadFailed(e) => {
                if e.is_fatal() {
                    self.abort(&e);
                }
                inc.error = Some(format!("pre-write read failed: {e}"));
                Fix::NotDone
            }
            MutationStatus::Failed(e) => {
                self.mutated = true;
                inc.attempts += 1;
                inc.last_attempt_at = Some(ts(now));
                inc.error = Some(e.to_string());
                if let Some(a) = out.action {
                    self.o.remediations.push(a);
                }
                if matches!(e, ApiError::RouteMissing { .. }) {
                    self.drift
                        .entry(slug)
                        .or_insert_with(|| (format!("PATCH {path}"), e.to_string()));
                } else if e.is_fatal() {
                    self.abort(&e);
                }
                Fix::NotDone
            }
            MutationStatus::Done(_) => {
                self.mutated = true;
                self.route_ok.insert(slug);
                inc.attempts += 1;
                inc.last_attempt_at = Some(ts(now));
                let (ok, detail, fix) = match self.api.get(path).await {
                    Ok(v) if verified(&v) => (true, verify_detail.to_string(), Fix::Verified),
                    Ok(_) => {
                        let d = format!("re-read does not show {verify_detail}");
                        inc.error = Some(format!("verification failed: {d}"));
                        (false, d, Fix::NotDone)
                    }
                    Err(ApiError::NotFound { .. }) => (
                        false,
                        format!("{target} gone after the write"),
                        Fix::AlreadyDone(format!("{target} no longer exists")),
                    ),
                    Err(e) => {
                        if e.is_fatal() {
                            self.abort(&e);
                        }
                        inc.error = Some(format!("verification read failed: {e}"));
                        (
                            false,
                            format!("verification read failed: {e}"),
                            Fix::NotDone,
                        )
                    }
                };
                self.verification_line(out.audit_id.as_deref(), target, id, ok, &detail);
                if let Some(mut a) = out.action {
                    a.verified = Some(ok);
                    self.o.remediations.push(a);
                }
                if ok {
                    self.o.fixed += 1;
                }
                fix
            }
        }
    }

    /// Deactivates a schedule for a 6.4.2 fault and returns the incident in its final status.
    async fn deactivate(&mut self, sch: &Schedule, fault: &ActiveFault) -> (Incident, Fix) {
        let id = sch.id.to_string();
        let name = sch.name_or_id().to_string();
        let kind = fault.kind();
        let path = format!("{SCHEDULES}/{id}");
        let request = format!("PATCH {path} {{\"isActive\":false}}");
        let mut inc = self.ctx.incident(
            kind,
            Severity::Warning,
            "schedule",
            &id,
            format!(
                "Schedule \"{name}\" ({id}) is active but {}",
                fault.reason()
            ),
            format!("Deactivate the schedule ({request})"),
        );
        if self.aborted {
            inc.error = Some("not remediated: the run was aborted".into());
            return (inc, Fix::NotDone);
        }
        if !detect::path_safe_id(&id) {
            inc.remediation =
                "Deactivate the schedule in the Vizora dashboard (its id is not safe to put in a request path)"
                    .into();
            return (inc, Fix::NotDone);
        }
        if let Some((route, _)) = self.drift.get(PATCH_SCHEDULES) {
            inc.error = Some(format!(
                "{route} answered as a missing route earlier in this run (api-contract-drift); not called again"
            ));
            return (inc, Fix::NotDone);
        }
        let human = match fault {
            ActiveFault::PastEnd { .. } => "past-end",
            ActiveFault::DeletedPlaylist { .. } => "deleted-playlist",
            ActiveFault::NoTarget { .. } => "no-target",
        };
        // A verdict resting on absence from another list is confirmed before the write (agents.md 6.4.2): the fresh
        // `before` read must not embed the relation, and a direct read of the missing id must answer 404.
        let absent: Option<(String, String, &'static str)> = match fault {
            ActiveFault::PastEnd { .. } | ActiveFault::DeletedPlaylist { playlist_id: None } => {
                None
            }
            ActiveFault::DeletedPlaylist {
                playlist_id: Some(p),
            } => Some((
                format!("{PLAYLISTS}/{p}"),
                format!("playlist {p}"),
                "playlist",
            )),
            ActiveFault::NoTarget { missing: None, .. } => None,
            ActiveFault::NoTarget {
                missing: Some(MissingTarget::Display(d)),
                ..
            } => Some((format!("{DISPLAYS}/{d}"), format!("display {d}"), "display")),
            ActiveFault::NoTarget {
                missing: Some(MissingTarget::Group(g)),
                ..
            } => Some((
                format!("{GROUPS}/{g}"),
                format!("display group {g}"),
                "displayGroup",
            )),
        };
        if let Some((apath, what, _)) = &absent {
            let missing_id = apath.rsplit('/').next().unwrap_or_default();
            if !detect::path_safe_id(missing_id) {
                self.ctx.warn(format!(
                    "schedule {id}: {} is not a plain id; its absence cannot be confirmed by a direct read, so the \
                     schedule is not deactivated",
                    what.escape_debug()
                ));
                inc.remediation = format!(
                    "Check the schedule in the Vizora dashboard: {what} is missing from its list, but its id is not \
                     safe to put in a request path, so its absence was not confirmed"
                );
                return (inc, Fix::NotDone);
            }
        }
        let mut precondition = Precondition::new({
            let rel = absent.as_ref().map(|(_, what, rel)| (*rel, what.clone()));
            move |v| {
                if v.get("isActive").and_then(Value::as_bool) == Some(false) {
                    return Err(
                        "a fresh read shows the schedule already inactive; nothing to write".into(),
                    );
                }
                if let Some((rel, what)) = &rel
                    && v.get(*rel).is_some_and(Value::is_object)
                {
                    return Err(format!(
                        "{EMBEDS_EVIDENCE} {what}, so it exists; nothing to write"
                    ));
                }
                Ok(())
            }
        });
        if let Some((apath, what, _)) = absent {
            precondition = precondition.absent(apath, what);
        }
        let fix = self
            .patch(
                &mut inc,
                format!("Deactivate {human} schedule \"{name}\""),
                "schedule",
                &id,
                &path,
                json!({"isActive": false}),
                PATCH_SCHEDULES,
                precondition,
                |v| v.get("isActive").and_then(Value::as_bool) == Some(false),
                "isActive=false",
            )
            .await;
        let now = self.ctx.now();
        let inc = match &fix {
            Fix::Verified => {
                inc.remediation =
                    format!("Deactivated ({request}); a re-read shows isActive=false");
                self.deactivated.push(FixNote {
                    item: format!("\"{name}\" ({id}): {}", fault.reason()),
                    incident: Some(resolved(inc.clone(), now)),
                });
                resolved(inc, now)
            }
            Fix::AlreadyDone(why) if refutes_absence(why) => {
                let why = why.clone();
                let (inc, _) = self.already(inc, &why);
                return (inc, Fix::Refuted(why));
            }
            Fix::AlreadyDone(why) => {
                let why = why.clone();
                return self.already(inc, &why);
            }
            Fix::Planned => {
                inc.remediation = format!("Dry run: would deactivate the schedule ({request})");
                self.deactivated.push(FixNote {
                    item: format!("\"{name}\" ({id}): {}", fault.reason()),
                    incident: None,
                });
                inc
            }
            Fix::NotDone | Fix::Refuted(_) => inc,
        };
        (inc, fix)
    }

    /// Resolution with evidence but no write: the incident is reported resolved only when a prior episode is active.
    fn already(&mut self, mut inc: Incident, why: &str) -> (Incident, Fix) {
        inc.remediation = why.to_string();
        (
            resolved(inc, self.ctx.now()),
            Fix::AlreadyDone(why.to_string()),
        )
    }

    /// Assigns the fallback playlist to a display (6.4.4). `inc` is the `coverage_gap` incident (a placeholder for
    /// follow-up assignments after a deleted-playlist deactivation, which raise nothing themselves).
    async fn assign(
        &mut self,
        display: &Display,
        fb_id: &str,
        fb_name: &str,
        inc: &mut Incident,
    ) -> Fix {
        let id = display.id.to_string();
        let label = display.label().to_string();
        let path = format!("{DISPLAYS}/{id}");
        let request = format!("PATCH {path} {{\"currentPlaylistId\":\"{fb_id}\"}}");
        inc.remediation = format!("Assign the fallback playlist \"{fb_name}\" ({request})");
        if self.aborted {
            inc.error = Some("not remediated: the run was aborted".into());
            return Fix::NotDone;
        }
        if !detect::path_safe_id(&id) {
            inc.remediation = format!(
                "Assign a playlist (e.g. the fallback \"{fb_name}\") in the Vizora dashboard; the display id is not \
                 safe to put in a request path"
            );
            return Fix::NotDone;
        }
        if let Some((route, _)) = self.drift.get(PATCH_DISPLAYS) {
            inc.error = Some(format!(
                "{route} answered as a missing route earlier in this run (api-contract-drift); not called again"
            ));
            return Fix::NotDone;
        }
        let fb = fb_id.to_string();
        let fix = self
            .patch(
                inc,
                format!(
                    "Assign fallback playlist \"{fb_name}\" to display {}",
                    named(&label, &id)
                ),
                "display",
                &id,
                &path,
                json!({"currentPlaylistId": fb_id}),
                PATCH_DISPLAYS,
                Precondition::new(|v| {
                    if let Some(p) = s(v, "currentPlaylistId").filter(|p| !p.trim().is_empty()) {
                        return Err(format!(
                            "a fresh read shows playlist {p} already assigned; nothing to write"
                        ));
                    }
                    if !common::is_enabled_value(v) {
                        return Err("the display is disabled now; nothing to write".into());
                    }
                    Ok(())
                }),
                move |v| s(v, "currentPlaylistId") == Some(fb.as_str()),
                &format!("currentPlaylistId={fb_id}"),
            )
            .await;
        match &fix {
            Fix::Verified => {
                inc.remediation = format!(
                    "Assigned the fallback playlist \"{fb_name}\" ({request}); a re-read shows it assigned"
                );
                self.assigned.push(FixNote {
                    item: named(&label, &id),
                    incident: None,
                });
            }
            Fix::Planned => {
                inc.remediation = format!(
                    "Dry run: would assign the fallback playlist \"{fb_name}\" ({request})"
                );
                self.assigned.push(FixNote {
                    item: named(&label, &id),
                    incident: None,
                });
            }
            Fix::AlreadyDone(why) | Fix::Refuted(why) => inc.remediation = why.clone(),
            Fix::NotDone => {}
        }
        fix
    }
}

/// `"label" (id)`, or just the id when the label is the id (a display without a nickname).
fn named(label: &str, id: &str) -> String {
    if label == id {
        id.to_string()
    } else {
        format!("\"{label}\" ({id})")
    }
}

fn list_summary(name: &str, r: &ListResult) -> String {
    match (r.complete, r.total) {
        (true, _) => format!("{name} complete ({})", r.collected),
        (false, Some(t)) => format!(
            "{name} {}/{t} ({})",
            r.collected,
            r.reason.as_deref().unwrap_or("incomplete")
        ),
        (false, None) => format!(
            "{name} {}/unknown ({})",
            r.collected,
            r.reason.as_deref().unwrap_or("incomplete")
        ),
    }
}

/// One walked list as typed records, with the walk's completeness (its `items` are empty; `collected` counts).
#[derive(Debug)]
pub struct Walked<T> {
    /// The records in list order.
    pub items: Vec<T>,
    /// Completeness, totals, reason and page count of the walk (agents.md 5.4).
    pub walk: ListResult,
}

/// The inputs of one run (agents.md 6.4 "Inputs"), held as typed records (about 100–300 bytes per entity).
#[derive(Debug)]
pub struct Observation {
    /// `GET /organizations/current` when it answered with an object; `None` = the fallback is unknown this run.
    pub org: Option<Value>,
    /// Why `org` is `None` (logged as a warning), when it is.
    pub org_warning: Option<String>,
    /// `GET /api/v1/schedules`.
    pub schedules: Walked<Schedule>,
    /// `GET /api/v1/displays` (unfiltered: disabled displays included).
    pub displays: Walked<Display>,
    /// `GET /api/v1/playlists` (without their embedded items).
    pub playlists: Walked<PlaylistSummary>,
    /// `GET /api/v1/display-groups`.
    pub groups: Walked<DisplayGroup>,
}

impl Observation {
    /// `scanComplete`: all four walks complete.
    pub fn complete(&self) -> bool {
        self.schedules.walk.complete
            && self.displays.walk.complete
            && self.playlists.walk.complete
            && self.groups.walk.complete
    }

    /// Positions of the enabled displays (`isDisabled !== true`), in list order.
    pub fn enabled(&self) -> Vec<u32> {
        (0..self.displays.items.len() as u32)
            .filter(|&i| self.displays.items[i as usize].enabled)
            .collect()
    }
}

/// Reads the inputs (agents.md 6.4): `GET /organizations/current` first (its request performs the run's single lazy
/// login, so the walks share that session), then the four page walks concurrently, each item converted to its typed
/// record as its page arrives ([`crate::vizora::VizoraApi::walk_into`]; no page of JSON is kept). `Err(reason)` when
/// a list's first page fails or has an unknown shape, or the organisation read fails fatally (session lost):
/// exit 2 without a state write.
pub async fn observe(api: &dyn VizoraApi) -> Result<Observation, String> {
    let rorg = api.get(ORG).await;
    let (mut s, mut d, mut p, mut g) = (
        Records::<Schedule>::default(),
        Records::<Display>::default(),
        Records::<PlaylistSummary>::default(),
        Records::<DisplayGroup>::default(),
    );
    let (rs, rd, rp, rg) = tokio::join!(
        api.walk_into(SCHEDULES, &mut s),
        api.walk_into(DISPLAYS, &mut d),
        api.walk_into(PLAYLISTS, &mut p),
        api.walk_into(GROUPS, &mut g)
    );
    let fail = |path: &str, e: ApiError| format!("cannot read {path}: {e}");
    let rs = rs.map_err(|e| fail(SCHEDULES, e))?;
    let rd = rd.map_err(|e| fail(DISPLAYS, e))?;
    let rp = rp.map_err(|e| fail(PLAYLISTS, e))?;
    let rg = rg.map_err(|e| fail(GROUPS, e))?;
    let (org, org_warning) = match rorg {
        Ok(v) if v.is_object() => (Some(v), None),
        Ok(_) => (
            None,
            Some(format!(
                "{ORG}: unexpected body; the fallback playlist is unknown this run"
            )),
        ),
        Err(e) if e.is_fatal() => return Err(format!("cannot read {ORG}: {e}")),
        Err(e) => (
            None,
            Some(format!("{e}; the fallback playlist is unknown this run")),
        ),
    };
    Ok(Observation {
        org,
        org_warning,
        schedules: Walked {
            items: s.items,
            walk: rs,
        },
        displays: Walked {
            items: d.items,
            walk: rd,
        },
        playlists: Walked {
            items: p.items,
            walk: rp,
        },
        groups: Walked {
            items: g.items,
            walk: rg,
        },
    })
}

/// Runs schedule-doctor once (agents.md 6.4). See the module documentation for the steps; exit codes, sweeps and the
/// state write are the runtime's.
pub async fn run(ctx: &AgentContext) -> AgentOutcome {
    let mut r = Run::new(ctx);
    let now = ctx.started;
    let api = r.api.clone();

    // ── Inputs ──
    let obs = match observe(api.as_ref()).await {
        Ok(o) => o,
        Err(reason) => {
            r.fail(reason, WriteMode::None);
            return r.o;
        }
    };
    if let Some(w) = &obs.org_warning {
        ctx.warn(w);
    }
    let scan_complete = obs.complete();
    let schedules = &obs.schedules.items;
    let displays = &obs.displays.items;
    let playlists = &obs.playlists.items;
    let groups = &obs.groups.items;
    let enabled = obs.enabled();
    let disabled = displays.len() - enabled.len();
    ctx.info(format!(
        "fetched {} schedules, {} displays ({} enabled), {} playlists, {} groups",
        schedules.len(),
        displays.len(),
        enabled.len(),
        playlists.len(),
        groups.len()
    ));
    if disabled > 0 {
        ctx.info(format!("skipping {disabled} disabled display(s)"));
    }
    let org_id = obs
        .org
        .as_ref()
        .and_then(|o| s(o, "id").map(String::from))
        .or_else(|| api.organization_id());

    if !scan_complete {
        let detail = [
            list_summary("schedules", &obs.schedules.walk),
            list_summary("displays", &obs.displays.walk),
            list_summary("playlists", &obs.playlists.walk),
            list_summary("display-groups", &obs.groups.walk),
        ]
        .join("; ");
        ctx.warn(format!(
            "incomplete scan ({detail}): only the past-end check runs; nothing is swept"
        ));
        let inc = ctx.incident(
            "scan-truncated",
            Severity::Info,
            "schedules",
            "entity-lists",
            format!("Schedule audit could not read every list completely: {detail}"),
            "Investigate the failing page or the API (the reason is in the message); until a complete scan, only \
             past-end schedules are checked and no incident is resolved by the sweep",
        );
        r.note(format!("scan-truncated: {detail}"));
        r.o.raise(inc);
    }

    // ── 6.4.2 Active schedules ──
    let sets = scan_complete.then(|| EntitySets::new(playlists, displays, groups));
    let checks = detect::check_schedules(schedules, now, sets.as_ref());
    if let Some(sets) = &sets {
        // A list that omits what schedules embed is cut short (agents.md 6.4.2): one warning per list per run.
        let om = detect::list_omissions(schedules, sets);
        for ((n, examples), list) in om.iter().zip([PLAYLISTS, DISPLAYS, GROUPS]) {
            if *n > 0 {
                ctx.warn(format!(
                    "{list} omits {n} id(s) that schedules embed (e.g. {}) although its total says complete: \
                     the list is not trusted for absence; such references count as existing",
                    examples.join(", ")
                ));
            }
        }
    }
    let mut unexamined: HashSet<String> = HashSet::new();
    for &i in &checks.end_unknown {
        let sch = &schedules[i];
        ctx.warn(format!(
            "schedule {}: endDate {:?} is unparseable; not examined",
            sch.id,
            sch.end_text.as_deref().unwrap_or("(not a string)")
        ));
        unexamined.insert(incident_id(AGENT, "past_end_schedule", &sch.id));
        unexamined.insert(incident_id(AGENT, "empty_playlist_schedule", &sch.id));
    }
    for &i in &checks.remaining {
        if schedules[i].week.is_none() {
            ctx.warn(format!(
                "schedule {}: daysOfWeek/startTime/endTime malformed; its overlaps and coverage are not examined",
                schedules[i].id
            ));
        }
    }
    for &(i, field) in &checks.refs_unknown {
        let sch = &schedules[i];
        ctx.warn(format!(
            "schedule {}: {field} is neither a string nor null; its references are not examined",
            sch.id
        ));
        for kind in [
            "deleted_playlist_schedule",
            "no_target_schedule",
            "empty_playlist_schedule",
        ] {
            unexamined.insert(incident_id(AGENT, kind, &sch.id));
        }
        // It is left out of the overlap check too: its prior overlap incidents (target `<a>+<b>`) stay as they are.
        for p in ctx.snapshot.incidents.iter().filter(|p| {
            p.agent == AGENT.as_str()
                && p.kind == "schedule_overlap"
                && p.is_active()
                && p.target_id.split('+').any(|x| x == &*sch.id)
        }) {
            unexamined.insert(p.id.clone());
        }
    }
    let mut inactive_now: Vec<bool> = vec![false; schedules.len()];
    let mut follow_up_schedules: Vec<usize> = Vec::new();
    let mut unremediated: HashSet<String> = HashSet::new();
    for (i, fault) in &checks.faults {
        let sch = &schedules[*i];
        let (inc, fix) = r.deactivate(sch, fault).await;
        let label = format!(
            "{} \"{}\" ({})",
            crate::model::kind_label(fault.kind()),
            sch.name.as_deref().unwrap_or_default(),
            sch.id
        );
        let outcome = match &fix {
            Fix::Verified => "deactivated, verified".to_string(),
            Fix::Planned => "would deactivate (dry run)".to_string(),
            Fix::AlreadyDone(w) => w.clone(),
            Fix::Refuted(w) => format!("not deactivated: {w}"),
            Fix::NotDone => format!("open: {}", inc.error.as_deref().unwrap_or(&inc.remediation)),
        };
        r.note(format!("{label}: {} — {outcome}", fault.reason()));
        match &fix {
            Fix::Verified | Fix::Planned | Fix::AlreadyDone(_) => {
                inactive_now[*i] = true;
                if matches!(fault, ActiveFault::DeletedPlaylist { .. })
                    && matches!(fix, Fix::Verified | Fix::Planned)
                {
                    follow_up_schedules.push(*i);
                }
            }
            // Still active: its overlap verdicts were not computed (it was not in `remaining`), so they stay
            // unexamined like those of a failed deactivation.
            Fix::NotDone | Fix::Refuted(_) => {
                if !matches!(fault, ActiveFault::PastEnd { .. }) {
                    unremediated.insert(sch.id.to_string());
                }
            }
        }
        if matches!(fix, Fix::AlreadyDone(_) | Fix::Refuted(_)) && !r.prior_active(&inc.id) {
            continue;
        }
        r.o.raise(inc);
    }

    let mut stats = json!({
        "schedules": schedules.len(),
        "displays": displays.len(),
        "enabledDisplays": enabled.len(),
        "playlists": playlists.len(),
        "groups": groups.len(),
        "scanComplete": scan_complete,
        "activeSchedules": checks.active,
    });

    if let Some(sets) = &sets
        && !r.aborted
    {
        complete_scan_checks(
            &mut r,
            CompleteInputs {
                obs: &obs,
                sets,
                enabled: &enabled,
                org_id: org_id.as_deref(),
                remaining: &checks.remaining,
                inactive_now: &inactive_now,
                follow_up_schedules: &follow_up_schedules,
                unremediated: &unremediated,
            },
            &mut unexamined,
            &mut stats,
        )
        .await;
    }

    // ── Contract drift (critical, exit 2 with a full write) ──
    let mut drift_incs = Vec::new();
    for (slug, (route, err)) in r.drift.clone() {
        let inc = ctx.incident(
            "api-contract-drift",
            Severity::Critical,
            "api",
            slug,
            format!("{route} answered as a missing route ({err}): possible API contract change"),
            "Check the Vizora API version against vizora-api.md §4 and update vizora-ops; the route was not called \
             again this run",
        );
        r.note(format!("api-contract-drift {slug}: {err}"));
        r.fail(
            format!("API contract drift on {route}: {err}"),
            WriteMode::Full,
        );
        // Inline critical on the open transition only (7.6).
        if !r.prior_active(&inc.id) {
            drift_incs.push(inc.clone());
        }
        r.o.raise(inc);
    }
    if !drift_incs.is_empty() {
        let alert = InlineAlert {
            agent: AGENT,
            kind: InlineKind::Critical,
            summary: format!("API contract drift on {} route(s)", drift_incs.len()),
            items: drift_incs.iter().map(|i| i.message.clone()).collect(),
            refs: drift_incs,
        };
        let stamps = ctx.effects().alert(alert).await;
        r.o.alert_stamps.extend(stamps);
    }

    // ── Fix notifications, batched (7.6) ──
    if !r.deactivated.is_empty() {
        let refs: Vec<Incident> = r
            .deactivated
            .iter()
            .filter_map(|f| f.incident.clone())
            .collect();
        let alert = InlineAlert {
            agent: AGENT,
            kind: InlineKind::Fixed,
            summary: format!("Auto-deactivated {} schedule(s)", r.deactivated.len()),
            items: r.deactivated.iter().map(|f| f.item.clone()).collect(),
            refs,
        };
        let stamps = ctx.effects().alert(alert).await;
        r.o.alert_stamps.extend(stamps);
    }
    if !r.assigned.is_empty() {
        let name = stats
            .get("fallbackPlaylist")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let refs: Vec<Incident> = r
            .assigned
            .iter()
            .filter_map(|f| f.incident.clone())
            .collect();
        let alert = InlineAlert {
            agent: AGENT,
            kind: InlineKind::Fixed,
            summary: format!(
                "Assigned fallback playlist \"{name}\" to {} display(s)",
                r.assigned.len()
            ),
            items: r.assigned.iter().map(|f| f.item.clone()).collect(),
            refs,
        };
        let stamps = ctx.effects().alert(alert).await;
        r.o.alert_stamps.extend(stamps);
    }

    // ── Coverage (2.5, 6.4.5): complete scans only ──
    if scan_complete {
        for t in CATALOGUE {
            if *t != "api-contract-drift" {
                r.o.cover(t);
            }
        }
        // A drift incident resolves when its route succeeds later; a route not exercised this run proves nothing.
        r.o.cover("api-contract-drift");
        for slug in [PATCH_SCHEDULES, PATCH_DISPLAYS] {
            let id = incident_id(AGENT, "api-contract-drift", slug);
            if !r.route_ok.contains(slug) && r.prior_active(&id) {
                unexamined.insert(id);
            }
        }
    }
    if let Value::Object(m) = &mut stats {
        m.insert("deactivated".into(), json!(r.deactivated.len()));
        m.insert("fallbackAssigned".into(), json!(r.assigned.len()));
        m.insert("unexamined".into(), json!(unexamined.len()));
    }
    if !unexamined.is_empty() {
        ctx.info(format!(
            "{} incident id(s) not examined this run",
            unexamined.len()
        ));
    }
    r.o.unexamined.extend(unexamined);
    r.o.stats = Some(stats);
    r.o
}

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

/// Checks that need a complete scan: fallback (6.4.1), empty playlists and overlaps (6.4.3), coverage (6.4.4).
async fn complete_scan_checks(
    r: &mut Run<'_>,
    inp: CompleteInputs<'_>,
    unexamined: &mut HashSet<String>,
    stats: &mut Value,
) {
    let ctx = r.ctx;
    let now = ctx.started;
    let schedules = &inp.obs.schedules.items;
    let displays = &inp.obs.displays.items;

    // ── 6.4.1 Fallback ──
    let (mut fallback, warnings) = detect::resolve_fallback(
        inp.obs.org.as_ref(),
        &inp.obs.playlists.items,
        ctx.cfg.entity.fallback_playlist_id.as_deref(),
    );
    for w in warnings {
        ctx.warn(w);
    }
    // "Does not exist" rests on absence from the playlists list, which can lie (agents.md 6.0): one direct read.
    if let Fallback::Invalid { id, source, .. } = &fallback
        && inp.sets.playlist(id).is_none()
        && detect::path_safe_id(id)
    {
        let (id, source) = (id.clone(), *source);
        match r.api.get(&format!("{PLAYLISTS}/{id}")).await {
            Err(ApiError::NotFound { .. }) => {}
            Ok(v) => {
                let name = s(&v, "name").unwrap_or(&id).to_string();
                let items = v.get("itemCount").and_then(Value::as_u64).or_else(|| {
                    v.get("items")
                        .and_then(Value::as_array)
                        .map(|a| a.len() as u64)
                });
                ctx.warn(format!(
                    "fallback playlist \"{name}\" ({id}) is missing from {PLAYLISTS} but a direct read finds it; \
                     the list is not trusted for it"
                ));
                fallback = match items {
                    Some(0) => Fallback::Invalid {
                        reason: format!("playlist \"{name}\" ({id}) has 0 items"),
                        id,
                        source,
                    },
                    Some(_) => Fallback::Valid { id, name, source },
                    None => Fallback::Unknown(format!(
                        "the item count of fallback playlist \"{name}\" ({id}) is unknown"
                    )),
                };
            }
            Err(e) => {
                if e.is_fatal() {
                    r.abort(&e);
                }
                fallback = Fallback::Unknown(format!(
                    "the fallback playlist {id} is missing from the list and its direct read failed: {e}"
                ));
            }
        }
    }
    match (&fallback, inp.org_id) {
        (Fallback::Invalid { id, source, reason }, Some(org_id)) => {
            let inc = ctx.incident(
                "fallback_playlist_invalid",
                Severity::Warning,
                "organization",
                org_id,
                format!("The fallback playlist {id} (from {}) is unusable: {reason}", source.describe()),
                "Point settings.opsFallbackPlaylistId (or OPS_FALLBACK_PLAYLIST_ID) at an existing playlist with \
                 content; displays without content get no fallback until then",
            );
            r.note(format!(
                "{}: {}",
                crate::model::kind_label(&inc.kind),
                inc.message
            ));
            r.o.raise(inc);
        }
        (Fallback::Unknown(why), Some(org_id)) => {
            ctx.warn(format!(
                "fallback playlist unknown: {why}; assignments not examined"
            ));
            unexamined.insert(incident_id(AGENT, "fallback_playlist_invalid", org_id));
        }
        _ => {}
    }
    if let (Value::Object(m), Fallback::Valid { id, name, .. }) = (&mut *stats, &fallback) {
        m.insert("fallbackPlaylist".into(), json!(name));
        m.insert("fallbackPlaylistId".into(), json!(id));
    }

    // ── 6.4.3 Empty playlists (remaining active, not-ended schedules) ──
    let empty = detect::empty_playlists(schedules, inp.remaining, inp.sets);
    for &i in &empty.unknown {
        unexamined.insert(incident_id(
            AGENT,
            "empty_playlist_schedule",
            &schedules[i].id,
        ));
    }
    for &i in &empty.findings {
        let sch = &schedules[i];
        let sid = &*sch.id;
        let name = sch.name_or_id();
        let pid = sch.playlist_id.as_deref().unwrap_or_default();
        let pname = inp
            .sets
            .playlist(pid)
            .and_then(|p| p.name.as_deref())
            .unwrap_or(pid);
        let until = sch
            .end_text
            .as_deref()
            .map(|e| format!("until {e}"))
            .unwrap_or("with no end date".into());
        let inc = ctx.incident(
            "empty_playlist_schedule",
            Severity::Warning,
            "schedule",
            sid,
            format!(
                "Schedule \"{name}\" ({sid}) is active {until} but its playlist \"{pname}\" ({pid}) has 0 items: \
                 its displays show nothing while it applies"
            ),
            format!(
                "Add content to playlist \"{pname}\", point the schedule at a playlist with content, or \
                 deactivate it (PATCH {SCHEDULES}/{sid} {{\"isActive\":false}})"
            ),
        );
        r.note(format!(
            "{} \"{name}\" ({sid}): playlist \"{pname}\" has 0 items",
            crate::model::kind_label("empty_playlist_schedule")
        ));
        r.o.raise(inc);
    }

    // ── 6.4.3 Overlaps ──
    let cap = ctx.cfg.entity.overlap_max_comparisons;
    let (ov, blind) = detect::overlaps(
        schedules,
        displays,
        inp.enabled,
        inp.remaining,
        inp.sets,
        cap,
    );
    let mut overlap_blind: HashSet<&str> = inp.unremediated.iter().map(String::as_str).collect();
    overlap_blind.extend(blind.iter().map(|&i| &*schedules[i].id));
    if !ov.capped_displays.is_empty() {
        ctx.warn(format!(
            "{} display(s) hit OPS_OVERLAP_MAX_COMPARISONS ({cap}); their overlap verdicts are not examined",
            ov.capped_displays.len(),
        ));
    }
    overlap_blind.extend(ov.capped_schedules.iter().map(String::as_str));
    for pair in ov.pairs.values() {
        let inc = ctx.incident(
            "schedule_overlap",
            Severity::Warning,
            "schedule",
            &pair.key,
            pair.message(),
            "Give one schedule a higher priority, or change their dates, weekdays or time windows so they no longer \
             intersect",
        );
        r.note(format!(
            "{}: {}",
            crate::model::kind_label("schedule_overlap"),
            pair.message()
        ));
        r.o.raise(inc);
    }
    for (id, prior) in ctx.priors() {
        if prior.kind == "schedule_overlap" && prior.is_active() {
            let blind = prior
                .target_id
                .split('+')
                .any(|sid| overlap_blind.contains(sid));
            if blind && !ov.pairs.contains_key(&prior.target_id) {
                unexamined.insert(id);
            }
        }
    }

    // ── 6.4.4 Coverage (after this run's deactivations) ──
    let cov = detect::coverage_verdicts(
        schedules,
        displays,
        inp.enabled,
        inp.sets,
        inp.inactive_now,
        inp.follow_up_schedules,
        now,
    );
    let mut assigned_once: HashSet<u32> = HashSet::new();
    let mut gaps = 0usize;
    for dc in &cov.displays {
        let d = &displays[dc.display as usize];
        let did = &*d.id;
        let label = d.label();
        let (tz, fell_back) = d.tz();
        if dc.verdict == Coverage::Unknown {
            unexamined.insert(incident_id(AGENT, "coverage_gap", did));
            if !dc.follow_up {
                continue;
            }
        }
        let gap = dc.verdict == Coverage::Gap;
        let local = now.with_timezone(&tz).format("%a %H:%M");
        let mut inc = ctx.incident(
            "coverage_gap",
            Severity::Warning,
            "display",
            did,
            format!(
                "Display {} is enabled, has no currentPlaylistId and no schedule is active now \
                 ({local} {}{}; {} active schedule(s) target it): it has nothing to play",
                named(label, did),
                tz.name(),
                if fell_back {
                    ", timezone missing or invalid so UTC"
                } else {
                    ""
                },
                dc.reaching
            ),
            String::new(),
        );
        if gap {
            gaps += 1;
        }
        let fix = match &fallback {
            Fallback::Valid { id, name, .. } => {
                if !assigned_once.insert(dc.display) {
                    continue;
                }
                Some(r.assign(d, id, name, &mut inc).await)
            }
            Fallback::Unconfigured => {
                inc.remediation = format!(
                    "No fallback playlist is configured: set the organization's settings.opsFallbackPlaylistId to a \
                     playlist with content (PATCH /api/v1/organizations/{} {{\"settings\":{{\"opsFallbackPlaylistId\":\
                     \"<playlistId>\"}}}}) or set OPS_FALLBACK_PLAYLIST_ID, or assign a playlist or an always-on \
                     schedule to this display",
                    inp.org_id.unwrap_or("<organizationId>")
                );
                None
            }
            Fallback::Invalid { reason, .. } => {
                inc.remediation = format!(
                    "The configured fallback playlist is unusable ({reason}; see fallback_playlist_invalid): fix \
                     settings.opsFallbackPlaylistId or OPS_FALLBACK_PLAYLIST_ID, or assign a playlist or an always-on \
                     schedule to this display"
                );
                None
            }
            Fallback::Unknown(why) => {
                inc.remediation = format!(
                    "The fallback playlist is unknown this run ({why}); assign a playlist or an always-on schedule \
                     to this display, or wait for the next run"
                );
                None
            }
        };
        let outcome = match &fix {
            Some(Fix::Verified) => "fallback assigned, verified".to_string(),
            Some(Fix::Planned) => "would assign the fallback (dry run)".to_string(),
            Some(Fix::AlreadyDone(w) | Fix::Refuted(w)) => w.clone(),
            Some(Fix::NotDone) => {
                format!("open: {}", inc.error.as_deref().unwrap_or(&inc.remediation))
            }
            None => "open: no usable fallback playlist".to_string(),
        };
        if !gap {
            // Follow-up of a deleted-playlist deactivation: an assignment, not a coverage finding.
            r.note(format!(
                "fallback for display {} after its deleted-playlist schedule was deactivated: {outcome}",
                named(label, did)
            ));
            continue;
        }
        r.note(format!(
            "{} {}: {outcome}",
            crate::model::kind_label("coverage_gap"),
            named(label, did)
        ));
        let now2 = ctx.now();
        match fix {
            Some(Fix::Verified) => {
                let done = resolved(inc, now2);
                if let Some(n) = r.assigned.last_mut() {
                    n.incident = Some(done.clone());
                }
                r.o.raise(done);
            }
            Some(Fix::AlreadyDone(_)) => {
                let done = resolved(inc, now2);
                if r.prior_active(&done.id) {
                    r.o.raise(done);
                }
            }
            _ => r.o.raise(inc),
        }
    }
    if cov.tz_fallbacks > 0 {
        ctx.info(format!(
            "{} display(s) without content have a missing or invalid timezone: judged in UTC",
            cov.tz_fallbacks
        ));
    }
    if let Value::Object(m) = stats {
        m.insert("overlapComparisons".into(), json!(ov.comparisons));
        m.insert(
            "overlapCappedDisplays".into(),
            json!(ov.capped_displays.len()),
        );
        m.insert("overlapPairs".into(), json!(ov.pairs.len()));
        m.insert("coverageGaps".into(), json!(gaps));
    }
}
