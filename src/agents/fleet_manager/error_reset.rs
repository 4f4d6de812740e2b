//! Status reset of displays stuck in `error` (agents.md 6.3.4): `PATCH /displays/:id {"status":"offline"}`.

use super::remediate::{Handled, handle_mutation};
use super::{
    DISPLAY_ERROR, DISPLAYS_PATH, FleetRun, FleetWork, Obs, Pending, SLUG_PATCH_DISPLAYS, id_for,
};
use crate::vizora::MutationRequest;
use reqwest::Method;
use serde_json::json;

impl FleetRun<'_> {
    /// 6.3.4: `PATCH /displays/:id {"status":"offline"}`. Returns false when the display is gone.
    pub(super) async fn reset_error(
        &mut self,
        d: &Obs,
        p: &mut Pending,
        work: &mut FleetWork,
    ) -> bool {
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
}
