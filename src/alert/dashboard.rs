//! The dashboard push payload (agents.md 7.4, 9.49): the state's six top-level keys as compact, redacted JSON,
//! reduced only as far as needed to stay smaller than `OPS_DASHBOARD_MAX_BYTES`.
//!
//! [`cap_payload`] is pure. [`push_ops_server`] performs the optional push to our own ops server; the push to the
//! Vizora API goes through the API client (it needs the ops user's session). Outcomes of both are recorded in the
//! outbox `channels` record by the caller.

use crate::model::{OpsState, parse_ts};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Characters kept of `message`, `remediation` and `error` in step 4 of agents.md 7.4.
pub const FIELD_CAP_CHARS: usize = 300;

fn len_of(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

fn map_len(m: &Map<String, Value>) -> usize {
    serde_json::to_vec(m).map(|b| b.len()).unwrap_or(usize::MAX)
}

fn marker(incidents: usize, remediations: usize) -> Value {
    json!({"incidentsOmitted": incidents, "remediationsOmitted": remediations})
}

/// Bytes the `truncated` key adds to a non-empty compact object: `,"truncated":{...}`.
fn marker_len(incidents: usize, remediations: usize) -> usize {
    1 + "\"truncated\":".len() + len_of(&marker(incidents, remediations))
}

/// Tracks the exact compact size while elements are removed from arrays.
struct Sizer {
    size: usize,
    reduced: bool,
    inc_omitted: usize,
    rem_omitted: usize,
    max: usize,
}

impl Sizer {
    fn fits(&self) -> bool {
        let extra = if self.reduced {
            marker_len(self.inc_omitted, self.rem_omitted)
        } else {
            0
        };
        self.size + extra < self.max
    }
    /// Size change of removing an element of encoded length `l` from an array holding `n` elements.
    fn remove(&mut self, l: usize, n: usize) {
        self.size -= l + usize::from(n > 1);
    }
}

fn time_of(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key).and_then(Value::as_str).and_then(parse_ts)
}

fn is_resolved(v: &Value) -> bool {
    v.get("status").and_then(Value::as_str) == Some("resolved")
}

fn severity_rank(v: &Value) -> u8 {
    match v.get("severity").and_then(Value::as_str) {
        Some("info") => 1,
        Some("warning") => 2,
        Some("critical") => 3,
        _ => 0,
    }
}

fn cut_chars(s: &str, n: usize) -> Option<String> {
    if s.chars().count() <= n {
        None
    } else {
        Some(s.chars().take(n).collect())
    }
}

/// Which omitted counter a removal increments.
#[derive(Clone, Copy)]
enum Counted {
    Incidents,
    Remediations,
}

/// Removes elements of `arr` in `order` (indices) until `sizer` fits, counting each removal in the marker.
fn drop_until_fits(arr: &mut Vec<Value>, order: Vec<usize>, sizer: &mut Sizer, what: Counted) {
    let mut gone = vec![false; arr.len()];
    let mut n = arr.len();
    for i in order {
        if sizer.fits() {
            break;
        }
        sizer.remove(len_of(&arr[i]), n);
        match what {
            Counted::Incidents => sizer.inc_omitted += 1,
            Counted::Remediations => sizer.rem_omitted += 1,
        }
        gone[i] = true;
        n -= 1;
    }
    let mut idx = 0;
    arr.retain(|_| {
        let keep = !gone[idx];
        idx += 1;
        keep
    });
}

/// The dashboard payload (agents.md 7.4): `systemStatus, lastUpdated, lastRun, incidents, recentRemediations,
/// agentResults` as compact redacted JSON whose size is smaller than `max_bytes`. Until it fits: (1) drop remediation
/// `before`/`after` and the `incidents` arrays inside `agentResults`; (2) drop resolved incidents, oldest `resolvedAt`
/// first (missing first); (3) drop remediations, oldest first; (4) cut `message`, `remediation`, `error` to 300
/// characters; (5) drop active incidents, info then warning then critical, oldest `detected` first. When any step
/// ran, `"truncated":{"incidentsOmitted":n,"remediationsOmitted":n}` is added. If even the reduced document does not
/// fit (huge `lastRun`/`agentResults`), a WARNING is logged and the reduced document returned.
pub fn cap_payload(state: &OpsState, max_bytes: usize) -> Value {
    let Value::Object(mut doc) = crate::redact::redact_value(&state.to_value()) else {
        unreachable!("state serialises to an object");
    };
    // The payload has the six documented keys; other writers' unknown top-level keys stay in the file only.
    doc.retain(|k, _| {
        matches!(
            k.as_str(),
            "systemStatus"
                | "lastUpdated"
                | "lastRun"
                | "incidents"
                | "recentRemediations"
                | "agentResults"
        )
    });
    let mut sizer = Sizer {
        size: map_len(&doc),
        reduced: false,
        inc_omitted: 0,
        rem_omitted: 0,
        max: max_bytes,
    };
    if sizer.fits() {
        return Value::Object(doc);
    }
    sizer.reduced = true;

    // (1) before/after of remediations and incidents arrays inside agentResults.
    if let Some(Value::Array(rems)) = doc.get_mut("recentRemediations") {
        for r in rems.iter_mut() {
            if let Value::Object(o) = r {
                o.remove("before");
                o.remove("after");
            }
        }
    }
    if let Some(Value::Object(results)) = doc.get_mut("agentResults") {
        for (_, r) in results.iter_mut() {
            if let Value::Object(o) = r {
                o.remove("incidents");
            }
        }
    }
    sizer.size = map_len(&doc);

    // (2) resolved incidents, oldest resolvedAt first (missing or unparseable first).
    if !sizer.fits()
        && let Some(Value::Array(incs)) = doc.get_mut("incidents")
    {
        let mut order: Vec<usize> = (0..incs.len()).filter(|&i| is_resolved(&incs[i])).collect();
        order.sort_by_key(|&i| (time_of(&incs[i], "resolvedAt"), i));
        drop_until_fits(incs, order, &mut sizer, Counted::Incidents);
    }

    // (3) remediations, oldest first.
    if !sizer.fits()
        && let Some(Value::Array(rems)) = doc.get_mut("recentRemediations")
    {
        let mut order: Vec<usize> = (0..rems.len()).collect();
        order.sort_by_key(|&i| (time_of(&rems[i], "timestamp"), i));
        drop_until_fits(rems, order, &mut sizer, Counted::Remediations);
    }

    // (4) cut message, remediation, error.
    if !sizer.fits() {
        for key in ["incidents", "recentRemediations"] {
            if let Some(Value::Array(items)) = doc.get_mut(key) {
                for it in items.iter_mut() {
                    if let Value::Object(o) = it {
                        cut_fields(o);
                    }
                }
            }
        }
        sizer.size = map_len(&doc);
    }

    // (5) active incidents: info, then warning, then critical (unknown severities first), oldest first.
    if !sizer.fits()
        && let Some(Value::Array(incs)) = doc.get_mut("incidents")
    {
        let mut order: Vec<usize> = (0..incs.len()).collect();
        order.sort_by_key(|&i| (severity_rank(&incs[i]), time_of(&incs[i], "detected"), i));
        drop_until_fits(incs, order, &mut sizer, Counted::Incidents);
    }

    doc.insert(
        "truncated".into(),
        marker(sizer.inc_omitted, sizer.rem_omitted),
    );
    let out = Value::Object(doc);
    let size = len_of(&out);
    if size >= max_bytes {
        crate::logging::warn(
            "alerting",
            format!(
                "dashboard payload is {size} bytes after dropping every incident and remediation (limit {max_bytes})"
            ),
        );
    }
    out
}

fn cut_fields(o: &mut Map<String, Value>) {
    for k in ["message", "remediation", "error"] {
        if let Some(Value::String(s)) = o.get(k)
            && let Some(c) = cut_chars(s, FIELD_CAP_CHARS)
        {
            o.insert(k.into(), Value::String(c));
        }
    }
}

/// POSTs the payload to `<OPS_SERVER_URL>/api/v1/health/ops-status` with `Authorization: Bearer <OPS_API_TOKEN>`
/// (agents.md 7.4). `Err` carries a reason naming the host only, never the token.
pub async fn push_ops_server(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    payload: &Value,
    timeout: Duration,
) -> Result<(), String> {
    let url = format!(
        "{}/api/v1/health/ops-status",
        base_url.trim_end_matches('/')
    );
    let host = crate::redact::url_host_only(&url);
    let scrub = |s: String| crate::redact::redact_str(&s.replace(token, "***"));
    match client
        .post(&url)
        .bearer_auth(token)
        .timeout(timeout)
        .json(payload)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!(
            "ops server push {host}: HTTP {}",
            r.status().as_u16()
        )),
        Err(e) => Err(scrub(format!(
            "ops server push {host}: {}",
            e.without_url()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentName, Incident, IncidentStatus, Severity, ts};

    #[test]
    fn small_state_is_sent_whole_without_marker() {
        let st = OpsState::empty(Utc::now());
        let v = cap_payload(&st, 90_000);
        assert!(v.get("truncated").is_none());
        assert_eq!(v.as_object().unwrap().len(), 6);
    }

    #[test]
    fn resolved_go_before_active_and_critical_survive_longest() {
        let now = Utc::now();
        let mut st = OpsState::empty(now);
        for n in 0..300 {
            let sev = match n % 3 {
                0 => Severity::Info,
                1 => Severity::Warning,
                _ => Severity::Critical,
            };
            let mut i = Incident::new(
                AgentName::FleetManager,
                "display_offline",
                sev,
                "display",
                &format!("d{n}"),
                "x".repeat(1000),
                "r",
                now,
            );
            if n < 50 {
                i.status = IncidentStatus::Resolved;
                i.resolved_at = Some(ts(now));
            }
            st.incidents.push(i);
        }
        let v = cap_payload(&st, 30_000);
        let bytes = serde_json::to_vec(&v).unwrap().len();
        assert!(bytes < 30_000, "{bytes}");
        let incs = v["incidents"].as_array().unwrap();
        assert!(incs.iter().all(|i| i["status"] != "resolved"));
        assert!(
            incs.iter().all(|i| i["severity"] == "critical"),
            "info and warning dropped first"
        );
        assert!(
            incs.iter()
                .all(|i| i["message"].as_str().unwrap().len() == 300)
        );
        assert_eq!(
            v["truncated"]["incidentsOmitted"].as_u64().unwrap() as usize,
            300 - incs.len()
        );
    }
}
