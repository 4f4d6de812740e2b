//! The inputs of one run (agents.md 6.4 "Inputs"): the organisation and the four page walks (5.4), and for an
//! incomplete scan the info `scan-truncated` (only the past-end check then runs, nothing is swept).

use super::{DISPLAYS, GROUPS, ORG, PLAYLISTS, Run, SCHEDULES};
use crate::agents::WriteMode;
use crate::agents::common::s;
use crate::agents::entities::{Display, DisplayGroup, PlaylistSummary, Records, Schedule};
use crate::model::Severity;
use crate::vizora::{ApiError, ListResult, VizoraApi};
use serde_json::Value;

/// One line per list for the `scan-truncated` message: complete with its count, or collected/total and why.
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

/// What the run reads once: the observation, the enabled displays and the organisation id.
pub(super) struct Inputs {
    /// The lists and the organisation.
    pub(super) obs: Observation,
    /// `scanComplete` (all four walks complete).
    pub(super) scan_complete: bool,
    /// Positions of the enabled displays.
    pub(super) enabled: Vec<u32>,
    /// The organisation's id (from its read, else from the session).
    pub(super) org_id: Option<String>,
}

impl Run<'_> {
    /// Reads the inputs and logs what was fetched; raises `scan-truncated` for an incomplete scan. `None` when a
    /// list could not be read at all: the run fails with exit 2 and no state write.
    pub(super) async fn inputs(&mut self) -> Option<Inputs> {
        let ctx = self.ctx;
        let api = self.api.clone();
        let obs = match observe(api.as_ref()).await {
            Ok(o) => o,
            Err(reason) => {
                self.fail(reason, WriteMode::None);
                return None;
            }
        };
        if let Some(w) = &obs.org_warning {
            ctx.warn(w);
        }
        let scan_complete = obs.complete();
        let enabled = obs.enabled();
        let disabled = obs.displays.items.len() - enabled.len();
        ctx.info(format!(
            "fetched {} schedules, {} displays ({} enabled), {} playlists, {} groups",
            obs.schedules.items.len(),
            obs.displays.items.len(),
            enabled.len(),
            obs.playlists.items.len(),
            obs.groups.items.len()
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
            self.scan_truncated(&obs);
        }
        Some(Inputs {
            obs,
            scan_complete,
            enabled,
            org_id,
        })
    }

    /// The info `scan-truncated` (agents.md 6.4): which list fell short and why.
    fn scan_truncated(&mut self, obs: &Observation) {
        let ctx = self.ctx;
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
        self.note(format!("scan-truncated: {detail}"));
        self.o.raise(inc);
    }
}
