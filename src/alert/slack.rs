//! Slack incoming-webhook payloads and delivery (agents.md 7.2).
//!
//! Builders turn incidents and summaries into legacy-attachment JSON: every piece of untrusted text (incident
//! messages, API values, the host name) is escaped (`&`, `<`, `>` only) and appears only in `title`, `text`, `fields`
//! and `footer`, never listed in `mrkdwn_in` (always `[]`), so it can neither format nor form links or mentions
//! (agents.md 9.47). The top-level `text` holds only fixed words, enum values and numbers.
//!
//! [`deliver`] performs one POST and classifies the answer; it knows nothing about queueing, retries or
//! de-duplication (the outbox and the decision own those; style.md, Alertmanager).

use super::{DeliveryOutcome, InlineKind};
use crate::model::{Incident, IncidentStatus, Severity, SystemStatus, parse_ts};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;

/// Maximum characters of one `text`, `title` or field `value` (agents.md 7.2); longer ones end in `…`.
pub const MAX_TEXT_CHARS: usize = 3_000;
/// Maximum size of one payload in bytes (40 KB, agents.md 7.2); incident attachments are dropped from the end.
pub const MAX_PAYLOAD_BYTES: usize = 40_000;
/// Incident attachments named in a status alert before `…and <k> more` (agents.md 7.2).
pub const MAX_INCIDENT_ATTACHMENTS: usize = 10;
/// Items named in the `Details` field of an inline alert before `…and <k> more` (agents.md 7.6).
pub const MAX_INLINE_ITEMS: usize = 10;

/// Slack colour of a severity: critical `danger`, warning `warning`, anything else `good`.
pub fn severity_color(s: &Severity) -> &'static str {
    match s {
        Severity::Critical => "danger",
        Severity::Warning => "warning",
        _ => "good",
    }
}

/// Slack colour of a system status: CRITICAL `danger`, DEGRADED `warning`, HEALTHY `good`.
pub fn status_color(s: SystemStatus) -> &'static str {
    match s {
        SystemStatus::Critical => "danger",
        SystemStatus::Degraded => "warning",
        SystemStatus::Healthy => "good",
    }
}

/// Escapes exactly `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;` (agents.md 7.2). Everything else (`*`, `_`, `~`,
/// backticks) stays as written.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `s` and cuts the escaped text to at most `max_chars` characters, ending in `…` when cut. The cut never
/// splits an entity such as `&amp;`.
pub fn escape_cut(s: &str, max_chars: usize) -> String {
    let escaped = escape(s);
    if escaped.chars().count() <= max_chars {
        return escaped;
    }
    let budget = max_chars.saturating_sub(1);
    let mut out = String::new();
    let mut used = 0usize;
    for c in s.chars() {
        let piece: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let n = if piece.is_empty() {
            1
        } else {
            piece.chars().count()
        };
        if used + n > budget {
            break;
        }
        if piece.is_empty() {
            out.push(c);
        } else {
            out.push_str(piece);
        }
        used += n;
    }
    out.push('…');
    out
}

/// One attachment field `{"title","value","short"}`; title and value escaped and cut.
pub fn field(title: &str, value: &str, short: bool) -> Value {
    json!({
        "title": escape_cut(title, MAX_TEXT_CHARS),
        "value": escape_cut(value, MAX_TEXT_CHARS),
        "short": short,
    })
}

/// One legacy attachment `{color, title, text, fields, footer: "vizora-ops | <host>", ts, mrkdwn_in: []}`.
/// `title`, `text` and `host` are untrusted and escaped here; `fields` must come from [`field`].
pub fn attachment(
    color: &str,
    title: &str,
    text: &str,
    fields: Vec<Value>,
    host: &str,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "color": color,
        "title": escape_cut(title, MAX_TEXT_CHARS),
        "text": escape_cut(text, MAX_TEXT_CHARS),
        "fields": fields,
        "footer": escape_cut(&format!("vizora-ops | {host}"), MAX_TEXT_CHARS),
        "ts": now.timestamp(),
        "mrkdwn_in": [],
    })
}

/// Compact JSON size of a payload in bytes.
pub fn payload_bytes(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Orders incidents for alerts and digests: escalated first, then critical, then warning (then anything else),
/// newest `detected` first within each group; unparseable `detected` sorts last.
pub fn alert_order(a: &Incident, b: &Incident) -> std::cmp::Ordering {
    fn group(i: &Incident) -> u8 {
        if i.status == IncidentStatus::Escalated {
            0
        } else {
            match i.severity {
                Severity::Critical => 1,
                Severity::Warning => 2,
                _ => 3,
            }
        }
    }
    group(a)
        .cmp(&group(b))
        .then_with(|| parse_ts(&b.detected).cmp(&parse_ts(&a.detected)))
        .then_with(|| a.id.cmp(&b.id))
}

/// Counts over active incidents used by headers: (critical, warning, escalated). Only active incidents of severity
/// warning/critical count (agents.md 2.4); escalated counts escalated ones of those.
pub fn active_counts<'a>(
    incidents: impl IntoIterator<Item = &'a Incident>,
) -> (usize, usize, usize) {
    let (mut c, mut w, mut e) = (0, 0, 0);
    for i in incidents
        .into_iter()
        .filter(|i| i.is_active() && i.severity.counts())
    {
        match i.severity {
            Severity::Critical => c += 1,
            Severity::Warning => w += 1,
            _ => {}
        }
        if i.status == IncidentStatus::Escalated {
            e += 1;
        }
    }
    (c, w, e)
}

/// The attachment of one alert-worthy incident: coloured by severity, title
/// `<SEVERITY>[, escalated]: <type in words> (<target> <targetId>)` ([`crate::model::incident_words`], issue 9: one
/// vocabulary), text = message, fields Remediation, Attempts, Since.
pub fn incident_attachment(i: &Incident, host: &str, now: DateTime<Utc>) -> Value {
    let esc = if i.status == IncidentStatus::Escalated {
        ", escalated"
    } else {
        ""
    };
    let title = format!(
        "{}{esc}: {}",
        i.severity.as_str().to_ascii_uppercase(),
        crate::model::incident_words(&i.kind, &i.target, &i.target_id)
    );
    attachment(
        severity_color(&i.severity),
        &title,
        &i.message,
        vec![
            field("Remediation", &i.remediation, false),
            field("Attempts", &i.attempts.to_string(), true),
            field("Since", &i.detected, true),
        ],
        host,
        now,
    )
}

/// Inputs of a status alert (agents.md 7.2).
#[derive(Debug, Clone)]
pub struct StatusAlert<'a> {
    /// The status being reported (S).
    pub status: SystemStatus,
    /// The last reported status (R).
    pub previous: SystemStatus,
    /// All incidents (only active warning/critical ones are counted).
    pub incidents: &'a [Incident],
    /// The alert-worthy incidents of the decision (7.5), in any order; they get one attachment each.
    pub alert_worthy: &'a [&'a Incident],
    /// `recentRemediations` with `verified: true` in the last 24 h.
    pub verified_fixes_24h: usize,
    /// Host name shown in the footer.
    pub host: &'a str,
    /// The run's time: every attachment's `ts` (epoch seconds).
    pub now: DateTime<Utc>,
}

/// The status alert payload (agents.md 7.2): top-level `text`
/// `Vizora Ops: <STATUS> (was <PREVIOUS>) - <c> critical, <w> warning`; a header attachment coloured by status with
/// the previous status, counts, escalated count and verified fixes; then up to 10 incident attachments (escalated,
/// critical, warning, newest first) and `…and <k> more`; total size ≤ [`MAX_PAYLOAD_BYTES`] (incident attachments
/// dropped from the end, the omitted count growing accordingly).
pub fn status_payload(a: &StatusAlert<'_>) -> Value {
    let (c, w, e) = active_counts(a.incidents.iter());
    let text = format!(
        "Vizora Ops: {} (was {}) - {c} critical, {w} warning",
        a.status, a.previous
    );
    let header = attachment(
        status_color(a.status),
        &format!("Vizora Ops: {}", a.status),
        &format!(
            "{c} critical, {w} warning active ({e} escalated); {} alert-worthy",
            a.alert_worthy.len()
        ),
        vec![
            field("Previous status", a.previous.as_str(), true),
            field("Critical", &c.to_string(), true),
            field("Warning", &w.to_string(), true),
            field("Escalated", &e.to_string(), true),
            field(
                "Verified fixes (24 h)",
                &a.verified_fixes_24h.to_string(),
                true,
            ),
        ],
        a.host,
        a.now,
    );
    let mut worthy: Vec<&Incident> = a.alert_worthy.to_vec();
    worthy.sort_by(|x, y| alert_order(x, y));
    let mut shown: Vec<Value> = worthy
        .iter()
        .take(MAX_INCIDENT_ATTACHMENTS)
        .map(|i| incident_attachment(i, a.host, a.now))
        .collect();
    let status_color = status_color(a.status);
    let build = |shown: &[Value]| -> Value {
        let mut atts = vec![header.clone()];
        atts.extend(shown.iter().cloned());
        let more = worthy.len() - shown.len();
        if more > 0 {
            atts.push(attachment(
                status_color,
                "",
                &format!("…and {more} more"),
                vec![],
                a.host,
                a.now,
            ));
        }
        json!({"text": text, "attachments": atts})
    };
    let mut payload = build(&shown);
    while payload_bytes(&payload) > MAX_PAYLOAD_BYTES && !shown.is_empty() {
        shown.pop();
        payload = build(&shown);
    }
    payload
}

/// The recovery payload (agents.md 7.2): one `good` attachment `Vizora Ops: HEALTHY (recovered from <previous>)`
/// with the number of incidents resolved since the last status alert.
pub fn recovery_payload(
    previous: SystemStatus,
    resolved_since_last_alert: usize,
    host: &str,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "text": format!("Vizora Ops: HEALTHY (was {previous}) - 0 critical, 0 warning"),
        "attachments": [attachment(
            "good",
            &format!("Vizora Ops: HEALTHY (recovered from {previous})"),
            &format!("{resolved_since_last_alert} incident(s) resolved since the last status alert"),
            vec![
                field("Previous status", previous.as_str(), true),
                field("Resolved", &resolved_since_last_alert.to_string(), true),
            ],
            host,
            now,
        )],
    })
}

// The Slack rendering of the one inline kind (defined with the sink, agents.md 7.6).
impl InlineKind {
    /// `CRITICAL`, `WARNING` or `FIXED`.
    pub fn word(self) -> &'static str {
        match self {
            InlineKind::Critical => "CRITICAL",
            InlineKind::Warning => "WARNING",
            InlineKind::Fixed => "FIXED",
        }
    }
    /// Slack colour.
    pub fn color(self) -> &'static str {
        match self {
            InlineKind::Critical => "danger",
            InlineKind::Warning => "warning",
            InlineKind::Fixed => "good",
        }
    }
}

/// Title of an inline message: `Vizora Ops: <CRITICAL|WARNING|FIXED> (<agent>)`.
pub fn inline_title(kind: InlineKind, agent: &str) -> String {
    format!("Vizora Ops: {} ({agent})", kind.word())
}

/// The `Details` lines of an inline message: the first 10 items, then `…and <k> more`.
pub fn inline_details(items: &[String]) -> String {
    let mut lines: Vec<String> = items.iter().take(MAX_INLINE_ITEMS).cloned().collect();
    if items.len() > MAX_INLINE_ITEMS {
        lines.push(format!("…and {} more", items.len() - MAX_INLINE_ITEMS));
    }
    lines.join("\n")
}

/// An inline alert or fix notification (agents.md 7.2, 7.6): one attachment coloured by kind, text = summary, a
/// `Details` field naming the first 10 items when there are any. The top-level text is the title (fixed words and
/// the agent name only; an agent name outside `[a-z-]` is replaced by `agent`).
pub fn inline_payload(
    kind: InlineKind,
    agent: &str,
    summary: &str,
    items: &[String],
    host: &str,
    now: DateTime<Utc>,
) -> Value {
    let safe_agent = if !agent.is_empty()
        && agent
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
    {
        agent
    } else {
        "agent"
    };
    let fields = if items.is_empty() {
        vec![]
    } else {
        vec![field("Details", &inline_details(items), false)]
    };
    json!({
        "text": inline_title(kind, safe_agent),
        "attachments": [attachment(kind.color(), &inline_title(kind, agent), summary, fields, host, now)],
    })
}

/// POSTs `payload` to the webhook once and classifies the answer (agents.md 7.2): 2xx → delivered; 429 (its
/// `Retry-After` reported in the reason; nothing sleeps), 5xx, timeout or transport error → [`DeliveryOutcome::Retry`];
/// any other status → [`DeliveryOutcome::Drop`]. Reasons name the host only, never the webhook path (5.9).
pub async fn deliver(
    client: &reqwest::Client,
    webhook: &str,
    payload: &Value,
    timeout: Duration,
) -> DeliveryOutcome {
    let host = crate::redact::url_host_only(webhook);
    let resp = client
        .post(webhook)
        .timeout(timeout)
        .json(payload)
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let kind = if e.is_timeout() {
                format!("timeout after {} ms", timeout.as_millis())
            } else {
                "transport error".to_string()
            };
            return DeliveryOutcome::Retry(format!(
                "Slack POST {host}: {kind}: {}",
                crate::redact::redact_str(&e.without_url().to_string())
            ));
        }
    };
    let status = resp.status();
    if status.is_success() {
        return DeliveryOutcome::Delivered;
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string());
    let body = tokio::time::timeout(timeout, resp.text())
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let body: String = crate::redact::redact_str(body.trim())
        .chars()
        .take(200)
        .collect();
    let mut reason = format!("Slack POST {host}: HTTP {}", status.as_u16());
    if !body.is_empty() {
        reason.push_str(&format!(" ({body})"));
    }
    if status.as_u16() == 429 {
        if let Some(ra) = retry_after {
            reason.push_str(&format!("; Retry-After {ra} s"));
        }
        DeliveryOutcome::Retry(reason)
    } else if status.is_server_error() {
        DeliveryOutcome::Retry(reason)
    } else if status.is_client_error() {
        DeliveryOutcome::Drop(reason)
    } else {
        DeliveryOutcome::Retry(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AgentName;

    fn inc(sev: Severity, status: IncidentStatus, detected: &str, id: &str) -> Incident {
        let mut i = Incident::new(
            AgentName::HealthGuardian,
            "service-down",
            sev,
            "service",
            id,
            "msg",
            "rem",
            Utc::now(),
        );
        i.status = status;
        i.detected = detected.into();
        i
    }

    #[test]
    fn escape_replaces_exactly_three_characters() {
        assert_eq!(
            escape("Disk <http://x> *bold* & co"),
            "Disk &lt;http://x&gt; *bold* &amp; co"
        );
        assert_eq!(
            escape("<!channel> _x_ ~y~ `z`"),
            "&lt;!channel&gt; _x_ ~y~ `z`"
        );
    }

    #[test]
    fn cut_never_splits_an_entity_and_ends_with_ellipsis() {
        let s = "a".repeat(2_997) + "&&&&";
        let c = escape_cut(&s, MAX_TEXT_CHARS);
        assert_eq!(c.chars().count(), 2_998);
        assert!(c.ends_with("a…"), "{}", &c[c.len() - 10..]);
        let short = escape_cut("x & y", 100);
        assert_eq!(short, "x &amp; y");
        let long = escape_cut(&"é".repeat(5_000), MAX_TEXT_CHARS);
        assert_eq!(long.chars().count(), MAX_TEXT_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn status_alert_orders_escalated_critical_warning_newest_first_and_counts_the_rest() {
        let incs = vec![
            inc(
                Severity::Warning,
                IncidentStatus::Open,
                "2026-01-01T00:00:00.000Z",
                "w-old",
            ),
            inc(
                Severity::Warning,
                IncidentStatus::Open,
                "2026-01-02T00:00:00.000Z",
                "w-new",
            ),
            inc(
                Severity::Critical,
                IncidentStatus::Open,
                "2026-01-01T00:00:00.000Z",
                "c",
            ),
            inc(
                Severity::Warning,
                IncidentStatus::Escalated,
                "2025-12-01T00:00:00.000Z",
                "e",
            ),
            inc(
                Severity::Info,
                IncidentStatus::Open,
                "2026-01-01T00:00:00.000Z",
                "i",
            ),
        ];
        let worthy: Vec<&Incident> = incs.iter().take(4).collect();
        let p = status_payload(&StatusAlert {
            status: SystemStatus::Critical,
            previous: SystemStatus::Degraded,
            incidents: &incs,
            alert_worthy: &worthy,
            verified_fixes_24h: 2,
            host: "ops-1",
            now: Utc::now(),
        });
        assert_eq!(
            p["text"],
            "Vizora Ops: CRITICAL (was DEGRADED) - 1 critical, 3 warning"
        );
        let atts = p["attachments"].as_array().unwrap();
        assert_eq!(atts[0]["color"], "danger");
        let titles: Vec<&str> = atts[1..]
            .iter()
            .map(|a| a["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            vec![
                "WARNING, escalated: service down (service e)",
                "CRITICAL: service down (service c)",
                "WARNING: service down (service w-new)",
                "WARNING: service down (service w-old)",
            ]
        );
        assert_eq!(atts[1]["footer"], "vizora-ops | ops-1");
        assert_eq!(atts[1]["mrkdwn_in"], json!([]));
    }

    #[test]
    fn more_than_ten_worthy_incidents_name_ten_then_and_k_more() {
        let incs: Vec<Incident> = (0..13)
            .map(|n| {
                inc(
                    Severity::Warning,
                    IncidentStatus::Open,
                    "2026-01-01T00:00:00.000Z",
                    &format!("s{n:02}"),
                )
            })
            .collect();
        let worthy: Vec<&Incident> = incs.iter().collect();
        let p = status_payload(&StatusAlert {
            status: SystemStatus::Degraded,
            previous: SystemStatus::Healthy,
            incidents: &incs,
            alert_worthy: &worthy,
            verified_fixes_24h: 0,
            host: "h",
            now: Utc::now(),
        });
        let atts = p["attachments"].as_array().unwrap();
        assert_eq!(atts.len(), 1 + 10 + 1);
        assert_eq!(atts[11]["text"], "…and 3 more");
    }

    #[test]
    fn inline_details_name_first_ten_items() {
        let items: Vec<String> = (0..12).map(|n| format!("item {n}")).collect();
        let p = inline_payload(
            InlineKind::Fixed,
            "content-lifecycle",
            "Archived 12 items",
            &items,
            "h",
            Utc::now(),
        );
        assert_eq!(p["text"], "Vizora Ops: FIXED (content-lifecycle)");
        let a = &p["attachments"][0];
        assert_eq!(a["color"], "good");
        let details = a["fields"][0]["value"].as_str().unwrap();
        assert!(details.starts_with("item 0\n"));
        assert!(details.ends_with("item 9\n…and 2 more"));
    }
}
