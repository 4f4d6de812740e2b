//! What runs and how (agents.md 8.2, 1.2, 1.1, 1.5): enabled agents, run deadlines, schedules, dry run, the window
//! tolerance and the demo flag. The fields live flat in [`super::Config`].

use super::Source;
use crate::model::AgentName;
use std::collections::BTreeMap;

/// Largest run deadline, in seconds (one day).
pub const MAX_DEADLINE_S: u64 = 86_400;
/// Default of `OPS_WINDOW_TOLERANCE_S`, in seconds.
pub const DEFAULT_WINDOW_TOLERANCE_S: u64 = 120;

/// The enabled agents and their run deadlines.
pub(super) struct Agents {
    /// `OPS_AGENTS`, all six when unset or empty.
    pub(super) enabled: Vec<AgentName>,
    /// `OPS_RUN_DEADLINE_S_<AGENT>`, else `OPS_RUN_DEADLINE_S`, else the agent's default (agents.md 1.2).
    pub(super) deadlines_s: BTreeMap<AgentName, u64>,
}

impl Agents {
    /// Reads and validates `OPS_AGENTS`, the deadlines and `OPS_SCHEDULE_<AGENT>` (checked as 5-field cron
    /// expressions only: the scheduler is the host's, agents.md 8.2); every invalid value is recorded in `src`.
    pub(super) fn parse(src: &Source) -> Agents {
        let enabled = match src.list("OPS_AGENTS") {
            None => AgentName::ALL.to_vec(),
            Some(l) if l.is_empty() => AgentName::ALL.to_vec(),
            Some(l) => l
                .iter()
                .filter_map(|a| {
                    AgentName::parse(a)
                        .map_err(|e| src.fail(format!("OPS_AGENTS: {e}")))
                        .ok()
                })
                .collect(),
        };
        let global_deadline = src
            .get("OPS_RUN_DEADLINE_S")
            .map(|_| src.u64("OPS_RUN_DEADLINE_S", 0, 1, MAX_DEADLINE_S));
        let mut deadlines_s = BTreeMap::new();
        for a in AgentName::ALL {
            let k = format!("OPS_RUN_DEADLINE_S_{}", a.env_suffix());
            let d = match src.get(&k) {
                Some(_) => src.u64(&k, 0, 1, MAX_DEADLINE_S),
                None => global_deadline.unwrap_or(a.default_deadline_s()),
            };
            deadlines_s.insert(a, d);
        }
        for a in AgentName::ALL {
            let k = format!("OPS_SCHEDULE_{}", a.env_suffix());
            if let Some(c) = src.get(&k)
                && c.split_whitespace().count() != 5
            {
                src.fail(format!(
                    "{k}: expected a 5-field cron expression, got {c:?}"
                ));
            }
        }
        Agents {
            enabled,
            deadlines_s,
        }
    }
}

/// The run-wide switches.
pub(super) struct RunFlags {
    /// `OPS_DRY_RUN`.
    pub(super) dry_run: bool,
    /// `OPS_LOG_FORMAT`.
    pub(super) log_format: crate::logging::LogFormat,
    /// `OPS_WINDOW_TOLERANCE_S`.
    pub(super) window_tolerance_s: i64,
    /// `OPS_DEMO`.
    pub(super) demo: bool,
}

impl RunFlags {
    /// Reads and validates them; every invalid value is recorded in `src` and replaced by its default.
    pub(super) fn parse(src: &Source) -> RunFlags {
        RunFlags {
            dry_run: src.bool("OPS_DRY_RUN", false),
            log_format: src
                .get("OPS_LOG_FORMAT")
                .map_or_else(Default::default, |v| {
                    crate::logging::LogFormat::parse(&v).unwrap_or_else(|e| {
                        src.fail(format!("OPS_LOG_FORMAT: {e}"));
                        Default::default()
                    })
                }),
            window_tolerance_s: src.u64(
                "OPS_WINDOW_TOLERANCE_S",
                DEFAULT_WINDOW_TOLERANCE_S,
                0,
                86_400,
            ) as i64,
            demo: src.bool("OPS_DEMO", false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::cfg;
    use crate::model::AgentName;

    #[test]
    fn a_per_agent_deadline_wins_over_the_global_one_and_schedules_need_five_fields() {
        let c = cfg(&[
            ("OPS_RUN_DEADLINE_S", "99"),
            ("OPS_RUN_DEADLINE_S_FLEET_MANAGER", "5"),
            ("OPS_AGENTS", " "),
        ])
        .unwrap();
        assert_eq!(c.deadline(AgentName::FleetManager).as_secs(), 5);
        assert_eq!(c.deadline(AgentName::DbMaintainer).as_secs(), 99);
        assert_eq!(c.agents, AgentName::ALL.to_vec());
        let e = cfg(&[
            ("OPS_SCHEDULE_OPS_REPORTER", "*/5 * * *"),
            ("OPS_RUN_DEADLINE_S", "0"),
        ])
        .unwrap_err();
        assert_eq!(e.0.len(), 2, "{e}");
        assert!(
            e.0[0].starts_with("OPS_RUN_DEADLINE_S: 0 is out of range 1..="),
            "{e}"
        );
        assert!(
            e.0[1].starts_with("OPS_SCHEDULE_OPS_REPORTER: expected a 5-field cron"),
            "{e}"
        );
    }
}
