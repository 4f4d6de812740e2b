//! The fleet command caps (agents.md 6.3.3, windows per 1.1): per episode, per display, per run and per
//! minute, and the last reload of a display from state.

use super::{EPISODE_SPACING_S, FLEET_COMMANDS_PATH};
use crate::clock::{age_s, window_elapsed};
use crate::model::{AgentName, OpsState, parse_ts};
use chrono::{DateTime, Duration, Utc};

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
pub(super) fn is_fleet_action(a: &crate::model::RemediationAction) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::fleet_manager::DISPLAY_OFFLINE;
    use crate::agents::fleet_manager::tests::{ago, t0};
    use crate::model::RemediationAction;

    use crate::model::{AgentName, Incident, IncidentStatus, OpsState, Severity, parse_ts};

    use chrono::{DateTime, Duration, Utc};

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
}
