//! Reconnect statistics (agents.md 6.3.6): the 7-day window in `agentResults["fleet-manager"].stats.reconnect`,
//! its summary for `vizora-ops status`, and the run's stats object.

use super::classify::{Class, FleetDisplay};
use super::{FleetRun, Obs, STATS_WINDOW_DAYS, Scan};
use crate::model::AgentName;
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

/// This run's contribution to the reconnect statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Fleet commands the API accepted.
    pub sent: u64,
    /// Reloads whose verification read answered (kept in the stats JSON for older readers; not a count on screen).
    pub verified: u64,
    /// Reloads whose verification saw a fresh heartbeat (**reconnected**, README "What the counts mean"); every
    /// other sent reload is **not reconnected** (sent − reconnected).
    pub reconnected: u64,
}

/// `stats.reconnect` after this run: the previous object (`prev`, from the last AgentResult) with daily buckets older
/// than 7 days (counting `today`) dropped and today's bucket increased by `run`. Shape:
/// `{"windowDays":7,"commandsSent","verified","reconnected","notReconnected","successRate","daily":[{"date","sent",
/// "reconnected","verified"}]}`; totals are sums over `daily` (dates `YYYY-MM-DD`, UTC, ascending);
/// `notReconnected` = commandsSent − reconnected; `successRate` = reconnected / commandsSent as a fraction 0–1
/// (3 decimals), `null` when nothing was sent (README "What the counts mean", agents.md 6.3.6). Malformed entries
/// of `prev` are dropped.
pub fn update_reconnect_stats(prev: Option<&Value>, today: NaiveDate, run: RunCounts) -> Value {
    let oldest = today - Duration::days(STATS_WINDOW_DAYS - 1);
    let mut days: Vec<(NaiveDate, u64, u64, u64)> = Vec::new();
    if let Some(Value::Array(daily)) = prev.and_then(|p| p.get("daily")) {
        for e in daily {
            let Some(date) = e
                .get("date")
                .and_then(Value::as_str)
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if date < oldest || date > today {
                continue;
            }
            let n = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
            match days.iter_mut().find(|d| d.0 == date) {
                Some(d) => {
                    d.1 += n("sent");
                    d.2 += n("reconnected");
                    d.3 += n("verified");
                }
                None => days.push((date, n("sent"), n("reconnected"), n("verified"))),
            }
        }
    }
    if run != RunCounts::default() {
        match days.iter_mut().find(|d| d.0 == today) {
            Some(d) => {
                d.1 += run.sent;
                d.2 += run.reconnected;
                d.3 += run.verified;
            }
            None => days.push((today, run.sent, run.reconnected, run.verified)),
        }
    }
    days.sort_by_key(|d| d.0);
    let sent: u64 = days.iter().map(|d| d.1).sum();
    let reconnected: u64 = days.iter().map(|d| d.2).sum();
    let verified: u64 = days.iter().map(|d| d.3).sum();
    let rate = if sent == 0 {
        Value::Null
    } else {
        let r = (reconnected as f64 / sent as f64).min(1.0);
        json!((r * 1000.0).round() / 1000.0)
    };
    json!({
        "windowDays": STATS_WINDOW_DAYS,
        "commandsSent": sent,
        "verified": verified,
        "reconnected": reconnected,
        "notReconnected": sent.saturating_sub(reconnected),
        "successRate": rate,
        "daily": days.iter().map(|(d, s, r, v)| json!({
            "date": d.format("%Y-%m-%d").to_string(),
            "sent": s,
            "reconnected": r,
            "verified": v,
        })).collect::<Vec<_>>(),
    })
}

/// The lines `vizora-ops status` prints for fleet-manager's reconnect statistics. Accepts the agent's whole `stats`
/// object (`{"reconnect": {...}}`) or the `reconnect` object itself; returns no line when neither holds statistics.
/// Example: `fleet reconnects (last 7 days): 3 reload(s) sent, 2 reconnected, 1 not reconnected, success rate 66.7%`
/// (sent = reconnected + not reconnected, rate = reconnected / sent), then one
/// `  <date>: <sent> sent, <reconnected> reconnected, <n> not reconnected` line per day with activity.
pub fn reconnect_summary(stats: &Value) -> Vec<String> {
    let r = match stats.get("reconnect") {
        Some(r) if r.is_object() => r,
        _ if stats.get("commandsSent").is_some() => stats,
        _ => return Vec::new(),
    };
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    let days = r.get("windowDays").and_then(Value::as_u64).unwrap_or(7);
    // Computed here from sent and reconnected, not read, so that the line adds up whatever an older writer stored.
    let (sent, reconnected) = (n("commandsSent"), n("reconnected").min(n("commandsSent")));
    let rate = if sent == 0 {
        "success rate n/a (nothing sent)".to_string()
    } else {
        format!(
            "success rate {:.1}%",
            reconnected as f64 * 100.0 / sent as f64
        )
    };
    let mut out = vec![format!(
        "fleet reconnects (last {days} days): {sent} reload(s) sent, {reconnected} reconnected, {} not reconnected, \
         {rate}",
        sent - reconnected,
    )];
    if let Some(Value::Array(daily)) = r.get("daily") {
        for e in daily {
            let g = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
            if g("sent") == 0 && g("reconnected") == 0 {
                continue;
            }
            let (ds, dr) = (g("sent"), g("reconnected").min(g("sent")));
            out.push(format!(
                "  {}: {ds} sent, {dr} reconnected, {} not reconnected",
                e.get("date").and_then(Value::as_str).unwrap_or("?"),
                ds - dr
            ));
        }
    }
    out
}

impl FleetRun<'_> {
    /// 6.3.6: `stats.reconnect` carried from the previous result over 7 days, plus this run's fleet counts; other
    /// keys of the previous stats are kept.
    pub(super) fn stats(
        &mut self,
        scan: &Scan,
        enabled: &[(u32, &FleetDisplay)],
        disabled: usize,
        obs: &[Obs],
        in_offline_locations: usize,
    ) {
        let prev = self
            .ctx
            .snapshot
            .agent_result(AgentName::FleetManager.as_str())
            .and_then(|r| r.stats);
        let reconnect = update_reconnect_stats(
            prev.as_ref().and_then(|s| s.get("reconnect")),
            self.now.date_naive(),
            self.counts,
        );
        let mut stats = match prev {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let count = |f: fn(Class) -> bool| obs.iter().filter(|d| f(d.class)).count();
        stats.insert("reconnect".into(), reconnect);
        stats.insert(
            "fleet".into(),
            json!({
                "displays": scan.displays.len(),
                "enabled": enabled.len(),
                "disabled": disabled,
                "online": count(|c| matches!(c, Class::Online(_))),
                "offline": count(|c| matches!(c, Class::Offline(_))),
                "persistent": count(|c| matches!(c, Class::Persistent(_))),
                "neverPaired": count(|c| c == Class::NeverPaired),
                "inOfflineLocations": in_offline_locations,
                "scanComplete": scan.complete(),
            }),
        );
        self.o.stats = Some(Value::Object(stats));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::NaiveDate;
    use serde_json::{Value, json};

    #[test]
    fn reconnect_stats_keep_seven_days_and_sum_the_window() {
        let today = NaiveDate::from_ymd_opt(2026, 8, 26).unwrap();
        let prev = json!({"daily": [
            {"date": "2026-08-19", "sent": 9, "reconnected": 9, "verified": 9},
            {"date": "2026-08-20", "sent": 2, "reconnected": 1, "verified": 2},
            {"date": "2026-08-26", "sent": 1, "reconnected": 0, "verified": 1},
            {"date": "bogus", "sent": 5},
        ]});
        let s = update_reconnect_stats(
            Some(&prev),
            today,
            RunCounts {
                sent: 3,
                verified: 3,
                reconnected: 2,
            },
        );
        assert_eq!(s["windowDays"], 7);
        assert_eq!(s["commandsSent"], 6);
        assert_eq!(s["verified"], 6);
        assert_eq!(s["reconnected"], 3);
        assert_eq!(s["successRate"], 0.5);
        let dates: Vec<&str> = s["daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["date"].as_str().unwrap())
            .collect();
        assert_eq!(dates, vec!["2026-08-20", "2026-08-26"]);
        assert_eq!(s["daily"][1]["sent"], 4);
    }

    #[test]
    fn success_rate_is_reconnected_over_sent_and_null_when_nothing_was_sent() {
        let today = NaiveDate::from_ymd_opt(2026, 8, 26).unwrap();
        let s = update_reconnect_stats(
            None,
            today,
            RunCounts {
                sent: 2,
                ..Default::default()
            },
        );
        assert_eq!(s["commandsSent"], 2);
        assert_eq!(s["successRate"], 0.0);
        assert_eq!(s["notReconnected"], 2);
        let lines = reconnect_summary(&json!({ "reconnect": s }));
        assert_eq!(
            lines[0],
            "fleet reconnects (last 7 days): 2 reload(s) sent, 0 reconnected, 2 not reconnected, success rate 0.0%"
        );
        assert_eq!(
            lines[1],
            "  2026-08-26: 2 sent, 0 reconnected, 2 not reconnected"
        );
        let none = update_reconnect_stats(None, today, RunCounts::default());
        assert!(none["successRate"].is_null());
    }

    #[test]
    fn reconnect_summary_accepts_the_reconnect_object_and_ignores_missing_stats() {
        let s = json!({"windowDays":7,"commandsSent":4,"verified":3,"reconnected":2,"successRate":0.667,
            "daily":[{"date":"2026-08-25","sent":0,"reconnected":0}]});
        assert_eq!(
            reconnect_summary(&s),
            vec![
                "fleet reconnects (last 7 days): 4 reload(s) sent, 2 reconnected, 2 not reconnected, success rate \
                 50.0%"
                    .to_string()
            ]
        );
        assert!(reconnect_summary(&json!({})).is_empty());
        assert!(reconnect_summary(&Value::Null).is_empty());
    }
}
