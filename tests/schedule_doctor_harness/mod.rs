//! Shared harness of the schedule-doctor integration tests: a sandbox per test, a configuration pointing at it, a
//! capturing alert sink, readers for the state file and the audit log, and an **independent oracle** that derives the
//! expected findings of a fixture from agents.md 6.4 by brute force (minute-by-minute evaluation of the schedules in
//! each display's time zone), without using the agent's detection code.
#![allow(dead_code)]

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use vizora_ops::agents::AlertSink;
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::runner::{self, RunOptions, RunReport, Wiring};
use vizora_ops::sandbox::{RecordedRequest, Sandbox, SandboxOptions};
pub use vizora_ops::testing::RecordingSink;

/// The demo fixture as JSON.
pub fn demo() -> Value {
    serde_json::from_str(vizora_ops::sandbox::DEMO_FIXTURE).expect("demo fixture parses")
}

/// Starts a sandbox serving `fixture`, throttling off.
pub async fn start(fixture: &Value) -> Sandbox {
    Sandbox::start(
        &fixture.to_string(),
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts")
}

/// A configuration for `sb` with its state under `dir`, generous local rate limits and one HTTP retry; `extra`
/// pairs override.
pub fn config(sb: &Sandbox, dir: &Path, extra: &[(&str, &str)]) -> Arc<Config> {
    let log_dir = dir.join("logs");
    let mut pairs: Vec<(String, String)> = vec![
        ("VALIDATOR_BASE_URL".into(), sb.api_url.clone()),
        ("OPS_EMAIL".into(), "ops@example.test".into()),
        ("OPS_PASSWORD".into(), "ops-demo-password".into()),
        ("OPS_LOG_DIR".into(), log_dir.display().to_string()),
        ("OPS_RATE_LIMIT_BACKEND".into(), "memory".into()),
        ("OPS_RATE_PER_SECOND".into(), "1000".into()),
        ("OPS_RATE_PER_MINUTE".into(), "100000".into()),
        ("OPS_RATE_PER_HOUR".into(), "1000000".into()),
        ("OPS_LOGINS_PER_MINUTE".into(), "100".into()),
        ("OPS_HTTP_RETRIES".into(), "1".into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    Arc::new(Config::from_source(Source::from_pairs(pairs), dir).expect("valid test configuration"))
}

/// Every inline message `(summary, items, dry_run)` recorded by `sink`.
pub fn summaries(sink: &RecordingSink) -> Vec<(String, Vec<String>, bool)> {
    sink.all()
        .into_iter()
        .map(|a| (a.summary, a.items, a.dry_run))
        .collect()
}

/// A sink that records every inline message and reports none delivered.
pub fn capture_sink() -> Arc<RecordingSink> {
    Arc::new(RecordingSink::undelivered())
}

/// Runs schedule-doctor once.
pub async fn run(cfg: &Arc<Config>, dry_run: bool, sink: &Arc<RecordingSink>) -> RunReport {
    runner::run_agent(
        cfg.clone(),
        AgentName::ScheduleDoctor,
        RunOptions { dry_run },
        Wiring {
            alerts: Some(sink.clone() as Arc<dyn AlertSink>),
            ..Default::default()
        },
    )
    .await
}

/// The state file as JSON (`None` when it does not exist).
pub fn state(cfg: &Config) -> Option<Value> {
    std::fs::read_to_string(&cfg.state_file)
        .ok()
        .map(|s| serde_json::from_str(&s).expect("state file is JSON"))
}

/// Every audit line.
pub fn audit(cfg: &Config) -> Vec<Value> {
    std::fs::read_to_string(&cfg.audit_file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// `(method, endpoint, request body)` of the mutation audit lines with the given `dryRun`, sorted.
pub fn audited_mutations(cfg: &Config, dry_run: bool) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = audit(cfg)
        .into_iter()
        .filter(|l| l["kind"] == "mutation" && l["dryRun"] == dry_run)
        .map(|l| {
            (
                l["method"].as_str().unwrap_or_default().to_string(),
                l["endpoint"].as_str().unwrap_or_default().to_string(),
                l["request"].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `(method, path, body)` of recorded requests other than GET, sorted.
pub fn writes(reqs: &[RecordedRequest]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = reqs
        .iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.body.as_ref().map(Value::to_string).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Recorded writes other than login and logout.
pub fn mutations(reqs: &[RecordedRequest]) -> Vec<(String, String, String)> {
    writes(reqs)
        .into_iter()
        .filter(|(_, p, _)| p != "/api/v1/auth/login" && p != "/api/v1/auth/logout")
        .collect()
}

/// Incident ids of a run's result with their status.
pub fn incident_status(rep: &RunReport) -> BTreeMap<String, String> {
    rep.result
        .incidents
        .iter()
        .map(|i| (i.id.clone(), i.status.as_str().to_string()))
        .collect()
}

// ─── The oracle ──────────────────────────────────────────────────────────────────────────────────────────────────

/// What agents.md 6.4 says a complete run over a fixture must find and do.
#[derive(Debug, Default)]
pub struct Expected {
    /// Incident ids (`schedule-doctor:<type>:<target>`) of every finding.
    pub ids: BTreeSet<String>,
    /// Schedule ids to deactivate (6.4.2).
    pub deactivate: BTreeSet<String>,
    /// Display ids that get the fallback (coverage gaps, plus follow-ups of deleted-playlist deactivations).
    pub assign: BTreeSet<String>,
    /// Incident type → count.
    pub by_type: BTreeMap<String, usize>,
}

fn ts(v: &Value, shift: Duration) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc) + shift)
}

/// The fields of a schedule the oracle evaluates, parsed once (dates shifted).
struct Sch {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    days: [bool; 7],
    st: Option<i64>,
    et: Option<i64>,
}

impl Sch {
    fn of(s: &Value, shift: Duration) -> Sch {
        let mut days = [false; 7];
        for d in s["daysOfWeek"].as_array().into_iter().flatten() {
            if let Some(d) = d.as_i64().filter(|d| (0..7).contains(d)) {
                days[d as usize] = true;
            }
        }
        Sch {
            start: ts(&s["startDate"], shift),
            end: ts(&s["endDate"], shift),
            days,
            st: s["startTime"].as_i64(),
            et: s["endTime"].as_i64(),
        }
    }

    /// Whether it plays at instant `t`, whose local weekday and minute of day are `wd` and `m`: dates, weekday,
    /// minute window (null or equal times = whole day; start > end wraps past midnight into the next day).
    fn plays(&self, t: DateTime<Utc>, wd: usize, m: i64) -> bool {
        if self.start.is_none_or(|s| t < s) || self.end.is_some_and(|e| t > e) {
            return false;
        }
        match (self.st, self.et) {
            (Some(a), Some(b)) if a < b => self.days[wd] && a <= m && m < b,
            (Some(a), Some(b)) if a > b => {
                (self.days[wd] && m >= a) || (self.days[(wd + 6) % 7] && m < b)
            }
            _ => self.days[wd],
        }
    }
}

/// Local weekday (0 = Sunday) and minute of day of `t` in `tz`.
fn local(t: DateTime<Utc>, tz: Tz) -> (usize, i64) {
    let l = t.with_timezone(&tz);
    (
        l.weekday().num_days_from_sunday() as usize,
        (l.hour() * 60 + l.minute()) as i64,
    )
}

/// Whether schedule `s` plays at instant `t` on a display in `tz` (dates shifted by `shift`).
fn plays_at(s: &Value, t: DateTime<Utc>, tz: Tz, shift: Duration) -> bool {
    let (wd, m) = local(t, tz);
    Sch::of(s, shift).plays(t, wd, m)
}

fn tz_of(d: &Value) -> Tz {
    d["timezone"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Derives the expected findings of `fx` at sandbox time `now`, the fixture's timestamps shifted as the sandbox does
/// (`now − capturedAt`, fixtures/README.md). Overlaps are found by evaluating both schedules minute by minute over
/// the first 7 days of their date intersection on every enabled display they share.
pub fn oracle(fx: &Value, now: DateTime<Utc>) -> Expected {
    let captured = DateTime::parse_from_rfc3339(fx["capturedAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let shift = now - captured;
    let schedules = fx["schedules"].as_array().unwrap();
    let displays = fx["displays"].as_array().unwrap();
    let playlists: HashMap<&str, &Value> = fx["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let display_ids: HashSet<&str> = displays.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let groups: HashMap<&str, HashSet<&str>> = fx["displayGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["id"].as_str().unwrap(),
                g["displayIds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    let targets = |s: &Value, did: &str| -> bool {
        s["displayId"].as_str() == Some(did)
            || s["displayGroupId"]
                .as_str()
                .and_then(|g| groups.get(g))
                .is_some_and(|m| m.contains(did))
    };
    let mut e = Expected::default();
    let add = |e: &mut Expected, kind: &str, target: &str| {
        e.ids.insert(format!("schedule-doctor:{kind}:{target}"));
        *e.by_type.entry(kind.to_string()).or_default() += 1;
    };
    let mut remaining: Vec<&Value> = Vec::new();
    let mut deleted_playlist: Vec<&Value> = Vec::new();
    for s in schedules {
        if s["isActive"] != true {
            continue;
        }
        let id = s["id"].as_str().unwrap();
        let kind = if ts(&s["endDate"], shift).is_some_and(|end| end < now) {
            Some("past_end_schedule")
        } else if !s["playlistId"]
            .as_str()
            .is_some_and(|p| playlists.contains_key(p))
        {
            deleted_playlist.push(s);
            Some("deleted_playlist_schedule")
        } else {
            let d = s["displayId"].as_str();
            let g = s["displayGroupId"].as_str();
            let missing = (d.is_none() && g.is_none())
                || d.is_some_and(|d| !display_ids.contains(d))
                || g.is_some_and(|g| !groups.contains_key(g));
            missing.then_some("no_target_schedule")
        };
        match kind {
            Some(k) => {
                add(&mut e, k, id);
                e.deactivate.insert(id.to_string());
            }
            None => remaining.push(s),
        }
    }
    for s in &remaining {
        let p = playlists[s["playlistId"].as_str().unwrap()];
        if p["items"].as_array().is_some_and(|a| a.is_empty()) {
            add(&mut e, "empty_playlist_schedule", s["id"].as_str().unwrap());
        }
    }
    let enabled: Vec<&Value> = displays
        .iter()
        .filter(|d| d["isDisabled"] != true)
        .collect();
    let mut pairs: BTreeSet<String> = BTreeSet::new();
    for d in &enabled {
        let did = d["id"].as_str().unwrap();
        let tz = tz_of(d);
        let reach: Vec<&&Value> = remaining.iter().filter(|s| targets(s, did)).collect();
        for (i, a) in reach.iter().enumerate() {
            for b in &reach[i + 1..] {
                if a["priority"] != b["priority"] {
                    continue;
                }
                let lo = ts(&a["startDate"], shift)
                    .unwrap()
                    .max(ts(&b["startDate"], shift).unwrap());
                let hi = match (ts(&a["endDate"], shift), ts(&b["endDate"], shift)) {
                    (Some(x), Some(y)) => x.min(y),
                    (x, y) => x.or(y).unwrap_or(lo + Duration::days(7)),
                };
                let stop = hi.min(lo + Duration::days(7));
                let (sa, sb) = (Sch::of(a, shift), Sch::of(b, shift));
                let mut t = lo;
                let mut hit = false;
                while t <= stop {
                    let (wd, m) = local(t, tz);
                    if sa.plays(t, wd, m) && sb.plays(t, wd, m) {
                        hit = true;
                        break;
                    }
                    t += Duration::minutes(1);
                }
                if hit {
                    let (x, y) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
                    pairs.insert(if x.as_bytes() < y.as_bytes() {
                        format!("{x}+{y}")
                    } else {
                        format!("{y}+{x}")
                    });
                }
            }
        }
    }
    for p in pairs {
        add(&mut e, "schedule_overlap", &p);
    }
    let fallback_ok = fx["organization"]["settings"]["opsFallbackPlaylistId"]
        .as_str()
        .or_else(|| {
            playlists
                .values()
                .find(|p| p["isDefault"] == true)
                .and_then(|p| p["id"].as_str())
        })
        .and_then(|id| playlists.get(id))
        .is_some_and(|p| p["items"].as_array().is_some_and(|a| !a.is_empty()));
    for d in &enabled {
        let did = d["id"].as_str().unwrap();
        if d["currentPlaylistId"].as_str().is_some() {
            continue;
        }
        let tz = tz_of(d);
        let covered = schedules.iter().any(|s| {
            s["isActive"] == true
                && !e.deactivate.contains(s["id"].as_str().unwrap())
                && targets(s, did)
                && plays_at(s, now, tz, shift)
        });
        if !covered {
            add(&mut e, "coverage_gap", did);
            if fallback_ok {
                e.assign.insert(did.to_string());
            }
        }
        if fallback_ok && deleted_playlist.iter().any(|s| targets(s, did)) {
            e.assign.insert(did.to_string());
        }
    }
    e
}

/// A fixture schedule's id by name.
pub fn schedule_id(fx: &Value, name: &str) -> String {
    fx["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("schedule {name:?} in the fixture"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A fixture display's id by nickname.
pub fn display_id(fx: &Value, nickname: &str) -> String {
    fx["displays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["nickname"] == nickname)
        .unwrap_or_else(|| panic!("display {nickname:?} in the fixture"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A fixture playlist's id by name.
pub fn playlist_id(fx: &Value, name: &str) -> String {
    fx["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("playlist {name:?} in the fixture"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A JSON fault body in the API's error form.
pub fn error_body(status: u16, message: &str) -> Value {
    json!({"statusCode": status, "message": message, "error": "Not Found"})
}
