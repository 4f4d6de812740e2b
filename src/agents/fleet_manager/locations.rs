//! Locations down (agents.md 6.3.2): locations whose enabled paired screens are all offline, as one
//! critical `location_offline` each, replacing the per-display incidents of their members.

use super::classify::{Class, FleetDisplay, Thresholds, classify, location_key};
use super::{FleetRun, LOCATION_OFFLINE, PER_DISPLAY_TYPES, id_for, minutes};
use crate::agents::InlineKind;
use crate::clock::age_s;
use crate::model::{Severity, ts};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// A location whose enabled paired displays (at least the minimum) are all offline (6.3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineLocation {
    /// The members' `organizationId` (the session's organisation when a display has none).
    pub organization_id: String,
    /// Normalised key (see [`location_key`]).
    pub key: String,
    /// `location` verbatim as on the first display of the group in list order.
    pub first_seen: String,
    /// Member display ids in list order.
    pub display_ids: Vec<String>,
    /// Oldest parseable `lastHeartbeat` of the members (`None` when none has one).
    pub oldest: Option<DateTime<Utc>>,
    /// Newest parseable `lastHeartbeat` of the members (`None` when none has one).
    pub newest: Option<DateTime<Utc>>,
    /// Members paired but without any heartbeat.
    pub without_heartbeat: usize,
}

impl OfflineLocation {
    /// The incident's target id `<organizationId>/<key>`.
    pub fn target_id(&self) -> String {
        format!("{}/{}", self.organization_id, self.key)
    }
}

/// Location verdicts of 6.3.2 over enabled displays: the all-offline locations and the target ids of locations that
/// cannot be judged (a member with an unparseable heartbeat and none online). Never-paired displays are not paired
/// and do not count; displays without a location are ungrouped.
pub fn offline_locations(
    enabled: &[&FleetDisplay],
    now: DateTime<Utc>,
    th: Thresholds,
    min_displays: usize,
    default_org: &str,
) -> (Vec<OfflineLocation>, Vec<String>) {
    struct Group<'a> {
        org: String,
        key: String,
        first_seen: String,
        members: Vec<(&'a FleetDisplay, Class)>,
    }
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: HashMap<(String, String), Group> = HashMap::new();
    for d in enabled {
        let class = classify(d, now, th);
        if class == Class::NeverPaired {
            continue;
        }
        let raw = d.location.as_deref();
        let Some(key) = location_key(raw) else {
            continue;
        };
        let org = d
            .organization_id
            .as_deref()
            .unwrap_or(default_org)
            .to_string();
        let gk = (org.clone(), key.clone());
        groups
            .entry(gk.clone())
            .or_insert_with(|| {
                order.push(gk.clone());
                Group {
                    org,
                    key,
                    first_seen: raw.unwrap_or_default().to_string(),
                    members: Vec::new(),
                }
            })
            .members
            .push((d, class));
    }
    let mut offline = Vec::new();
    let mut unknown = Vec::new();
    for gk in order {
        let g = &groups[&gk];
        if g.members.len() < min_displays {
            continue;
        }
        if g.members.iter().any(|(_, c)| matches!(c, Class::Online(_))) {
            continue;
        }
        if g.members.iter().any(|(_, c)| *c == Class::Unknown) {
            unknown.push(format!("{}/{}", g.org, g.key));
            continue;
        }
        let beats: Vec<DateTime<Utc>> = g
            .members
            .iter()
            .filter_map(|(d, _)| d.last_heartbeat.at())
            .collect();
        offline.push(OfflineLocation {
            organization_id: g.org.clone(),
            key: g.key.clone(),
            first_seen: g.first_seen.clone(),
            display_ids: g
                .members
                .iter()
                .map(|(d, _)| d.display.id.to_string())
                .collect(),
            oldest: beats.iter().min().copied(),
            newest: beats.iter().max().copied(),
            without_heartbeat: g
                .members
                .iter()
                .filter(|(_, c)| *c == Class::Persistent(None))
                .count(),
        });
    }
    (offline, unknown)
}

impl FleetRun<'_> {
    /// 6.3.2 (complete scans, before remediation): one critical `location_offline` per all-offline location,
    /// alerted on its open transition; returns the member displays, whose per-display incidents are carried
    /// unchanged (unexamined) and who get no command.
    pub(super) async fn locations(
        &mut self,
        enabled: &[(u32, &FleetDisplay)],
        default_org: &str,
    ) -> HashSet<String> {
        let ctx = self.ctx;
        let now = self.now;
        let enabled: Vec<&FleetDisplay> = enabled.iter().map(|(_, d)| *d).collect();
        let (locs, unknown) = offline_locations(
            &enabled,
            now,
            self.th,
            ctx.cfg.entity.location_min_displays,
            default_org,
        );
        for tid in unknown {
            self.o.unexamined.insert(id_for(LOCATION_OFFLINE, &tid));
            self.o.note(format!(
                "location {tid}: a display's lastHeartbeat is unparseable; not examined"
            ));
        }
        let mut members = HashSet::new();
        let mut new_critical = Vec::new();
        for loc in locs {
            let hb = |t: Option<DateTime<Utc>>| match t {
                Some(t) => format!("{} ({} min ago)", ts(t), minutes(age_s(now, t))),
                None => "none".into(),
            };
            let mut msg = format!(
                "All {} enabled paired display(s) at location \"{}\" are offline; oldest heartbeat {}, newest \
                 heartbeat {}",
                loc.display_ids.len(),
                loc.first_seen,
                hb(loc.oldest),
                hb(loc.newest)
            );
            if loc.without_heartbeat > 0 {
                msg.push_str(&format!(
                    "; {} paired without any heartbeat",
                    loc.without_heartbeat
                ));
            }
            let inc = ctx.incident(
                LOCATION_OFFLINE,
                Severity::Critical,
                "location",
                &loc.target_id(),
                msg.clone(),
                "Check power and network at the site; per-display reloads are suppressed while the whole \
                 location is down",
            );
            if self.prior_active(&inc.id).is_none() {
                new_critical.push(inc.clone());
            }
            self.o.note(format!("location offline: {msg}"));
            for did in &loc.display_ids {
                members.insert(did.clone());
                for t in PER_DISPLAY_TYPES {
                    self.o.unexamined.insert(id_for(t, did));
                }
            }
            self.raised.put(inc);
        }
        if !new_critical.is_empty() {
            let summary = format!("{} location(s) entirely offline", new_critical.len());
            self.alert(InlineKind::Critical, summary, new_critical)
                .await;
        }
        members
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::fleet_manager::tests::{TH, ago, display, fd, t0};

    use crate::model::parse_ts;

    use serde_json::{Value, json};

    #[test]
    fn location_key_trims_collapses_whitespace_and_lowercases() {
        assert_eq!(
            location_key(Some("  Harrogate \t James   Street ")).as_deref(),
            Some("harrogate james street")
        );
        assert_eq!(location_key(Some("   ")), None);
        assert_eq!(location_key(None), None);
    }

    #[test]
    fn spellings_of_one_location_form_one_offline_group() {
        let ds = [
            display("a", Some(40.0), Some("Harrogate  James Street ")),
            display("b", Some(41.0), Some("Harrogate James Street")),
            display("c", Some(39.0), Some("harrogate james street")),
            display("d", Some(200.0), Some("HARROGATE JAMES STREET")),
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        let (locs, unknown) = offline_locations(&refs, t0(), TH, 3, "org-x");
        assert!(unknown.is_empty());
        assert_eq!(locs.len(), 1);
        let l = &locs[0];
        assert_eq!(l.target_id(), "org-1/harrogate james street");
        assert_eq!(l.first_seen, "Harrogate  James Street ");
        assert_eq!(l.display_ids, vec!["a", "b", "c", "d"]);
        assert_eq!(l.oldest, parse_ts(&ago(200.0)));
        assert_eq!(l.newest, parse_ts(&ago(39.0)));
    }

    #[test]
    fn one_online_screen_or_too_few_displays_is_no_location_offline() {
        let ds = [
            display("a", Some(40.0), Some("Leeds")),
            display("b", Some(41.0), Some("Leeds")),
            display("c", Some(14.0), Some("Leeds")),
            display("d", Some(40.0), Some("York")),
            display("e", Some(40.0), Some("York")),
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        let (locs, _) = offline_locations(&refs, t0(), TH, 3, "org-x");
        assert!(locs.is_empty(), "{locs:?}");
    }

    #[test]
    fn never_paired_displays_do_not_count_and_organizations_are_separate() {
        let mut np = display("n", None, Some("Leeds"));
        np["pairedAt"] = Value::Null;
        let mut other_org = display("o", Some(40.0), Some("Leeds"));
        other_org["organizationId"] = json!("org-2");
        let ds = [
            display("a", Some(40.0), Some("Leeds")),
            display("b", None, Some("Leeds")),
            np,
            other_org,
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        assert!(offline_locations(&refs, t0(), TH, 3, "x").0.is_empty());
        let (locs, _) = offline_locations(&refs, t0(), TH, 2, "x");
        assert_eq!(locs.len(), 1);
        assert_eq!(locs[0].display_ids, vec!["a", "b"]);
        assert_eq!(locs[0].without_heartbeat, 1);
    }

    #[test]
    fn a_location_with_an_unparseable_heartbeat_and_none_online_is_not_examined() {
        let mut u = display("u", None, Some("Leeds"));
        u["lastHeartbeat"] = json!("garbage");
        let ds = [
            display("a", Some(40.0), Some("Leeds")),
            display("b", Some(40.0), Some("Leeds")),
            u,
        ];
        let recs: Vec<FleetDisplay> = ds.iter().map(fd).collect();
        let refs: Vec<&FleetDisplay> = recs.iter().collect();
        let (locs, unknown) = offline_locations(&refs, t0(), TH, 3, "x");
        assert!(locs.is_empty());
        assert_eq!(unknown, vec!["org-1/leeds".to_string()]);
    }
}
