//! Contract drift (agents.md catalogue 3.3): a critical `api-contract-drift` per route that answered 404/405.

use super::{API_CONTRACT_DRIFT, FleetRun, FleetWork, SLUG_FLEET, SLUG_PATCH_DISPLAYS, id_for};
use crate::agents::{InlineKind, WriteMode};
use crate::model::Severity;

impl FleetRun<'_> {
    /// Contract drift (3.3): a critical `api-contract-drift` per drifted route, alerted on its open transition,
    /// exit 2 with a full write. A route that answered this run resolves an older drift incident; one not called
    /// (or only planned in a dry run) leaves it unexamined.
    pub(super) async fn contract_drift(&mut self, work: &FleetWork) {
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
}
