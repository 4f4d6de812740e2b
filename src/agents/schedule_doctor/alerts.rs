//! The alerts of schedule-doctor (agents.md 6.4.5, 7.6): the critical `api-contract-drift` (exit 2 with a full
//! write) with an inline critical on its open transition, and the fix notifications batched per run.

use super::{AGENT, Run};
use crate::agents::{InlineAlert, InlineKind, WriteMode};
use crate::model::{Incident, Severity};
use serde_json::Value;

impl Run<'_> {
    /// A route that answered as missing this run (agents.md 3.4 `api-contract-drift`): one critical incident per
    /// route, the run fails with a full write, and the open transition alerts inline.
    pub(super) async fn contract_drift(&mut self) {
        let r = self;
        let ctx = r.ctx;
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
    }

    /// The batched fix notifications (7.6): the schedules deactivated and the displays given the fallback playlist
    /// (named from `stats.fallbackPlaylist`).
    pub(super) async fn fix_notifications(&mut self, stats: &Value) {
        let r = self;
        let ctx = r.ctx;
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
    }
}
