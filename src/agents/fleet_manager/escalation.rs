//! Escalation and alerts (agents.md 6.3.7): one batched warning for displays that became persistent, and
//! the inline alert helper.

use super::FleetRun;
use crate::agents::{InlineAlert, InlineKind};
use crate::model::{AgentName, Incident};

impl FleetRun<'_> {
    /// 6.3.7: one batched inline warning for the displays that became persistent this run.
    pub(super) async fn alert_persistent(&mut self, new_persistent: &[String]) {
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
    pub(super) async fn alert(&mut self, kind: InlineKind, summary: String, refs: Vec<Incident>) {
        let ctx = self.ctx;
        let items = refs.iter().map(|i| i.message.clone()).collect();
        let stamps = ctx
            .effects()
            .alert(InlineAlert {
                agent: AgentName::FleetManager,
                kind,
                summary,
                items,
                refs,
            })
            .await;
        self.o.alert_stamps.extend(stamps);
    }
}
