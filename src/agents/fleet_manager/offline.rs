//! Offline, persistent, never-paired and error displays (agents.md 6.3.1): the per-display incidents and the
//! remediation candidates.

use super::classify::Class;
use super::{
    DISPLAY_ERROR, DISPLAY_NEVER_PAIRED, DISPLAY_OFFLINE, DISPLAY_OFFLINE_PERSISTENT, FleetRun,
    NO_CONTENT, Obs, SUPERSEDED_SUFFIX, id_for, minutes,
};
use crate::model::{IncidentStatus, Severity};

impl FleetRun<'_> {
    /// 6.3.1 for the displays outside offline locations: raises never-paired, offline, persistent (escalated,
    /// superseding `display_offline`) and error incidents. Returns the remediation candidates (offline 15–60 min, and
    /// `error` displays) and the ids of incidents that just became persistent.
    pub(super) fn classify_displays<'o>(&mut self, obs: &'o [Obs]) -> (Vec<&'o Obs>, Vec<String>) {
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
                    if let Some(id) = self.persistent(d, a) {
                        new_persistent.push(id);
                    }
                }
                Class::Unknown => self.not_examined(d),
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

    /// Offline past `OPS_OFFLINE_PERSISTENT_MIN` (or paired without a heartbeat): escalated at once, no command;
    /// supersedes an active `display_offline` and keeps its detection time (6.3.1). Returns the incident id when it
    /// just became persistent (for the batched alert of 6.3.7).
    fn persistent(&mut self, d: &Obs, a: Option<i64>) -> Option<String> {
        let ctx = self.ctx;
        let th = self.th;
        let mut new_id = None;
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
            new_id = Some(inc.id.clone());
        }
        if superseded.is_some() {
            self.o
                .resolve_suffix
                .insert(off_id, SUPERSEDED_SUFFIX.into());
        }
        self.o
            .note(format!("persistent offline (escalated): {msg}"));
        self.raised.put(inc);
        new_id
    }

    /// An unparseable heartbeat: the display's per-display incidents are carried unexamined (2.5).
    fn not_examined(&mut self, d: &Obs) {
        let ctx = self.ctx;
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
