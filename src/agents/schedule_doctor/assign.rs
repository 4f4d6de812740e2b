//! Fallback assignment (agents.md 6.4.4, and the follow-up of a deleted-playlist deactivation in 6.4.2):
//! `PATCH /api/v1/displays/:id {"currentPlaylistId":…}` on an enabled display that still has no playlist.

use super::remediate::{Fix, FixNote, named};
use super::{DISPLAYS, PATCH_DISPLAYS, Run};
use crate::agents::common::{self, s};
use crate::agents::entities::Display;
use crate::model::Incident;
use crate::vizora::Precondition;
use serde_json::json;

impl Run<'_> {
    /// Assigns the fallback playlist to a display (6.4.4). `inc` is the `coverage_gap` incident (a placeholder for
    /// follow-up assignments after a deleted-playlist deactivation, which raise nothing themselves).
    pub(super) async fn assign(
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
        if !common::path_safe_id(&id) {
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
