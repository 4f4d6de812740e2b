//! content-lifecycle against the sandbox serving `tenant-demo.json` (agents.md 6.2, 3.2, 9 items 14–22).
//!
//! The expected findings are derived here from the fixture itself by an independent reading of the rules (not by
//! calling the agent's functions): expired active content, orphans (references = playlist items ∪ zones of live
//! layouts ∪ replacement pointers of active items; older than 30 days; not global), images/videos without a
//! thumbnail, files above 100 MiB and the storage quota. Thumbnails of the fixture are `minio://` keys, which are not
//! examined without S3 (one test configures the local S3 stand-in and probes them).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use vizora_ops::agents::InlineKind;
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::runner::{RunOptions, RunReport, Wiring, run_agent};
use vizora_ops::sandbox::{
    DEMO_FIXTURE, FaultSpec, ListShape, RecordedRequest, Sandbox, SandboxOptions,
};
use vizora_ops::testing::{RecordedAlert, RecordingSink};

mod support;

const AGENT: AgentName = AgentName::ContentLifecycle;

// ------------------------------------------------------------------------------------------------------------
// Expected findings, computed from the fixture
// ------------------------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Expected {
    /// Expired active content: id → (replacement id if deliverable, playlists containing it).
    expired: HashMap<String, (Option<String>, Vec<String>)>,
    orphans: BTreeSet<String>,
    missing_thumbnail: BTreeSet<String>,
    oversized: BTreeSet<String>,
    /// Active non-layout content that is not an orphan although not in any playlist (zone/replacement reference,
    /// global, too young) and the exactly-100-MiB file: must raise nothing of their near-miss type.
    orphan_near_misses: BTreeSet<String>,
    size_near_misses: BTreeSet<String>,
    expiry_near_misses: BTreeSet<String>,
    /// Unreferenced, not global, 7–30 days old: archived only for storage relief.
    storage_relief: BTreeSet<String>,
    /// Unreferenced, not global, at most 7 days old: never archived.
    too_young: BTreeSet<String>,
    storage_pct: f64,
}

fn p(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

impl Expected {
    /// An expired item with a deliverable replacement and at least one playlist to repoint: (id, playlist ids).
    fn expired_with_repoint(&self) -> (&String, &Vec<String>) {
        self.expired
            .iter()
            .find(|(_, (r, p))| r.is_some() && !p.is_empty())
            .map(|(cid, (_, playlists))| (cid, playlists))
            .expect("the demo tenant has an expired item with a replacement on a playlist")
    }
}

fn expected() -> Expected {
    let fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let now = p(fx["capturedAt"].as_str().unwrap());
    let content = fx["content"].as_array().unwrap();
    let by_id: HashMap<&str, &Value> = content
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c))
        .collect();
    let active: Vec<&Value> = content.iter().filter(|c| c["status"] == "active").collect();
    let mut playlist_refs: HashSet<String> = HashSet::new();
    let mut containing: HashMap<String, Vec<String>> = HashMap::new();
    for pl in fx["playlists"].as_array().unwrap() {
        for it in pl["items"].as_array().unwrap() {
            let cid = it["contentId"].as_str().unwrap().to_string();
            playlist_refs.insert(cid.clone());
            let e = containing.entry(cid).or_default();
            let pid = pl["id"].as_str().unwrap().to_string();
            if !e.contains(&pid) {
                e.push(pid);
            }
        }
    }
    let mut refs = playlist_refs.clone();
    for c in content {
        let st = c["status"].as_str().unwrap();
        if c["type"] == "layout" && st != "archived" && st != "expired" {
            for z in c["metadata"]["zones"].as_array().into_iter().flatten() {
                if let Some(id) = z["contentId"].as_str() {
                    refs.insert(id.to_string());
                }
            }
        }
    }
    for c in &active {
        if let Some(r) = c["replacementContentId"].as_str() {
            refs.insert(r.to_string());
        }
    }
    let expired_at = |c: &Value| c["expiresAt"].as_str().map(p).is_some_and(|t| t <= now);
    let deliverable = |c: &Value| {
        c["status"] == "active" && c["expiresAt"].as_str().map(p).is_none_or(|t| t > now)
    };
    let mut e = Expected {
        expired: HashMap::new(),
        orphans: BTreeSet::new(),
        missing_thumbnail: BTreeSet::new(),
        oversized: BTreeSet::new(),
        orphan_near_misses: BTreeSet::new(),
        size_near_misses: BTreeSet::new(),
        expiry_near_misses: BTreeSet::new(),
        storage_relief: BTreeSet::new(),
        too_young: BTreeSet::new(),
        storage_pct: fx["storage"]["usedBytes"].as_f64().unwrap()
            / fx["storage"]["quotaBytes"].as_f64().unwrap()
            * 100.0,
    };
    for c in &active {
        let id = c["id"].as_str().unwrap().to_string();
        if expired_at(c) {
            let repl = c["replacementContentId"]
                .as_str()
                .and_then(|r| by_id.get(r))
                .filter(|r| deliverable(r))
                .map(|r| r["id"].as_str().unwrap().to_string());
            e.expired.insert(
                id.clone(),
                (repl, containing.get(&id).cloned().unwrap_or_default()),
            );
        } else if c["expiresAt"].is_string() {
            e.expiry_near_misses.insert(id.clone());
        }
        let kind = c["type"].as_str().unwrap();
        if matches!(kind, "image" | "video") && c["thumbnail"].is_null() {
            e.missing_thumbnail.insert(id.clone());
        }
        match c["fileSize"].as_u64() {
            Some(b) if b > 100 * 1_048_576 => {
                e.oversized.insert(id.clone());
            }
            Some(b) if b == 100 * 1_048_576 => {
                e.size_near_misses.insert(id.clone());
            }
            _ => {}
        }
        if kind == "layout" || expired_at(c) {
            continue;
        }
        let age = now - p(c["createdAt"].as_str().unwrap());
        let global = c["isGlobal"] == true;
        if !refs.contains(&id) && age > Duration::days(30) && !global {
            e.orphans.insert(id.clone());
        } else if !playlist_refs.contains(&id) {
            e.orphan_near_misses.insert(id.clone());
        }
        if !refs.contains(&id) && !global && age <= Duration::days(30) {
            if age > Duration::days(7) {
                e.storage_relief.insert(id.clone());
            } else {
                e.too_young.insert(id.clone());
            }
        }
    }
    e
}

// ------------------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------------------

struct Env {
    sb: Sandbox,
    dir: tempfile::TempDir,
    cfg: Arc<Config>,
    alerts: Arc<RecordingSink>,
}

async fn sandbox() -> Sandbox {
    Sandbox::start(
        DEMO_FIXTURE,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts")
}

fn config(api_url: &str, dir: &Path, extra: &[(&str, &str)]) -> Arc<Config> {
    let log = dir.display().to_string();
    let mut pairs: Vec<(String, String)> = [
        ("VALIDATOR_BASE_URL", api_url),
        ("OPS_EMAIL", "ops@example.test"),
        ("OPS_PASSWORD", "ops-demo-password"),
        ("OPS_LOG_DIR", log.as_str()),
        ("OPS_RATE_LIMIT_BACKEND", "memory"),
        ("OPS_RATE_PER_SECOND", "1000"),
        ("OPS_RATE_PER_MINUTE", "100000"),
        ("OPS_RATE_PER_HOUR", "1000000"),
        ("OPS_LOGINS_PER_MINUTE", "100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        pairs.retain(|(kk, _)| kk != k);
        pairs.push((k.to_string(), v.to_string()));
    }
    Arc::new(Config::from_source(Source::from_pairs(pairs), dir).expect("valid config"))
}

async fn env(extra: &[(&str, &str)]) -> Env {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb.api_url, dir.path(), extra);
    Env {
        sb,
        dir,
        cfg,
        alerts: Arc::new(RecordingSink::default()),
    }
}

impl Env {
    async fn run(&self, dry_run: bool) -> RunReport {
        run_agent(
            self.cfg.clone(),
            AGENT,
            RunOptions { dry_run },
            Wiring {
                alerts: Some(self.alerts.clone()),
                ..Default::default()
            },
        )
        .await
    }
    fn state_path(&self) -> std::path::PathBuf {
        self.dir.path().join("ops-state.json")
    }
    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_path()).expect("state file written"))
            .unwrap()
    }
    /// Incidents of the state, by id.
    fn incidents(&self) -> HashMap<String, Value> {
        self.state()["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_string(), i.clone()))
            .collect()
    }
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("ops-audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    fn entity(&self, collection: &str, id: &str) -> Value {
        self.sb.entity(collection, id).unwrap_or(Value::Null)
    }
}

fn id(kind: &str, target: &str) -> String {
    format!("content-lifecycle:{kind}:{target}")
}

/// Requests that change something: every method but GET/HEAD, except login and logout.
fn writes(reqs: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    reqs.iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .filter(|r| r.path != "/api/v1/auth/login" && r.path != "/api/v1/auth/logout")
        .collect()
}

fn archive_posts(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/archive"))
        .map(|r| {
            r.path
                .trim_start_matches("/api/v1/content/")
                .trim_end_matches("/archive")
                .to_string()
        })
        .collect()
}

fn active_of_kind(inc: &HashMap<String, Value>, kind: &str) -> BTreeSet<String> {
    inc.values()
        .filter(|i| i["type"] == kind && i["status"] != "resolved")
        .map(|i| i["targetId"].as_str().unwrap().to_string())
        .collect()
}

fn resolved_of_kind(inc: &HashMap<String, Value>, kind: &str) -> BTreeSet<String> {
    inc.values()
        .filter(|i| i["type"] == kind && i["status"] == "resolved")
        .map(|i| i["targetId"].as_str().unwrap().to_string())
        .collect()
}

fn mutation_lines(audit: &[Value], dry: bool) -> BTreeSet<(String, String, String, String)> {
    audit
        .iter()
        .filter(|l| l["kind"] == "mutation" && l["dryRun"] == dry)
        .map(|l| {
            (
                l["method"].as_str().unwrap().to_string(),
                l["endpoint"].as_str().unwrap_or("").to_string(),
                l["targetId"].as_str().unwrap().to_string(),
                l["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expired_ids(e: &Expected) -> BTreeSet<String> {
    e.expired.keys().cloned().collect()
}

// ------------------------------------------------------------------------------------------------------------
// Findings, fixes, verification, second run
// ------------------------------------------------------------------------------------------------------------

#[test]
fn the_fixture_seeds_every_content_fault_category() {
    let e = expected();
    assert!(e.expired.len() >= 3, "{e:?}");
    assert!(
        e.expired.values().any(|(r, _)| r.is_some()),
        "an expired item with a deliverable replacement"
    );
    assert!(
        e.expired.values().any(|(r, _)| r.is_none()),
        "an expired item without one"
    );
    assert!(!e.orphans.is_empty() && !e.missing_thumbnail.is_empty() && !e.oversized.is_empty());
    assert!(!e.orphan_near_misses.is_empty() && !e.size_near_misses.is_empty());
    assert!(
        e.storage_pct > 80.0 && e.storage_pct <= 90.0,
        "{}",
        e.storage_pct
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seeded_content_fault_is_found_fixed_verified_and_a_second_run_changes_nothing() {
    let e = expected();
    let env = env(&[]).await;
    let r = env.run(false).await;
    assert_eq!(
        r.exit_code, 1,
        "warnings stay open: {:?} {:?}",
        r.fatal, r.report
    );
    assert!(r.wrote_state);
    let inc = env.incidents();

    // Expired: archived (verified), resolved; replacement repointed in every playlist.
    assert_eq!(
        resolved_of_kind(&inc, "expired_content"),
        expired_ids(&e),
        "{:#?}",
        r.report
    );
    assert!(active_of_kind(&inc, "expired_content").is_empty());
    for (cid, (repl, playlists)) in &e.expired {
        assert_eq!(env.entity("content", cid)["status"], "archived", "{cid}");
        let i = &inc[&id("expired_content", cid)];
        assert_eq!(i["severity"], "warning");
        assert_eq!(i["attempts"], 1);
        for pid in playlists {
            let pl = env.entity("playlists", pid);
            let ids: Vec<&str> = pl["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["contentId"].as_str().unwrap())
                .collect();
            match repl {
                Some(rid) => {
                    assert!(!ids.contains(&cid.as_str()), "{pid} still holds {cid}");
                    assert!(ids.contains(&rid.as_str()), "{pid} lacks replacement {rid}");
                }
                // Without a deliverable replacement nothing is repointed (the item is only archived).
                None => assert!(ids.contains(&cid.as_str())),
            }
        }
    }
    // Orphans: info, archived and resolved at once.
    assert_eq!(resolved_of_kind(&inc, "orphaned_content"), e.orphans);
    for o in &e.orphans {
        assert_eq!(inc[&id("orphaned_content", o)]["severity"], "info");
        assert_eq!(env.entity("content", o)["status"], "archived");
    }
    // Findings without a fix stay open; near-misses raise nothing.
    assert_eq!(
        active_of_kind(&inc, "missing_thumbnail"),
        e.missing_thumbnail
    );
    assert_eq!(active_of_kind(&inc, "oversized_file"), e.oversized);
    for n in &e.orphan_near_misses {
        assert!(
            !inc.contains_key(&id("orphaned_content", n)),
            "near-miss {n} flagged"
        );
        assert_eq!(
            env.entity("content", n)["status"],
            "active",
            "near-miss {n} archived"
        );
    }
    for n in &e.size_near_misses {
        assert!(!inc.contains_key(&id("oversized_file", n)));
    }
    for n in &e.expiry_near_misses {
        assert!(!inc.contains_key(&id("expired_content", n)));
    }
    let storage: Vec<&Value> = inc
        .values()
        .filter(|i| i["type"] == "storage_high")
        .collect();
    assert_eq!(storage.len(), 1);
    assert_eq!(storage[0]["severity"], "warning");
    assert_eq!(
        storage[0]["targetId"],
        "f1ca5bfa-218e-40f8-8238-7dfef8c4cf34"
    );
    assert!(
        !inc.keys()
            .any(|k| k.contains("scan-truncated") || k.contains("reference-scan-incomplete"))
    );

    // The result: counts, coverage, fixes, stats.
    let res = &env.state()["agentResults"]["content-lifecycle"];
    // fixed = the run's verified remediations (README "What the counts mean"): archives and repoints alike.
    let verified = env.state()["recentRemediations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["runId"] == res["runId"] && r["verified"] == true)
        .count();
    assert!(verified >= e.expired.len() + e.orphans.len());
    assert_eq!(res["issuesFixed"], json!(verified));
    let cov: BTreeSet<&str> = res["coverage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for t in [
        "expired_content",
        "orphaned_content",
        "missing_thumbnail",
        "oversized_file",
        "storage_high",
    ] {
        assert!(cov.contains(t), "{t} covered: {cov:?}");
    }
    assert_eq!(res["stats"]["archived"]["expired"], json!(e.expired.len()));
    assert_eq!(res["stats"]["scanComplete"], true);

    // Every archive and repoint is audited and verified.
    let audit = env.audit();
    let muts: Vec<&Value> = audit.iter().filter(|l| l["kind"] == "mutation").collect();
    let vers: Vec<&Value> = audit
        .iter()
        .filter(|l| l["kind"] == "verification")
        .collect();
    let repoints: usize = e
        .expired
        .values()
        .filter(|(r, _)| r.is_some())
        .map(|(_, p)| p.len())
        .sum();
    assert_eq!(muts.len(), e.expired.len() + e.orphans.len() + repoints);
    assert_eq!(vers.len(), muts.len());
    assert!(vers.iter().all(|v| v["verified"] == true));
    // A repoint sends the complete list in order with the expired id replaced and null durations omitted.
    let fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let reqs = env.sb.requests();
    for (cid, (repl, playlists)) in &e.expired {
        let Some(rid) = repl else { continue };
        for pid in playlists {
            let sent = reqs
                .iter()
                .find(|q| q.method == "PATCH" && q.path == format!("/api/v1/playlists/{pid}"))
                .unwrap_or_else(|| panic!("PATCH of {pid}"));
            let orig = fx["playlists"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["id"] == pid.as_str())
                .unwrap();
            let mut items: Vec<Value> = orig["items"].as_array().unwrap().clone();
            items.sort_by_key(|i| i["order"].as_i64().unwrap());
            let want: Vec<Value> = items
                .iter()
                .map(|i| {
                    let c = if i["contentId"] == cid.as_str() {
                        rid.as_str()
                    } else {
                        i["contentId"].as_str().unwrap()
                    };
                    let mut o = json!({"contentId": c, "order": i["order"]});
                    if !i["duration"].is_null() {
                        o["duration"] = i["duration"].clone();
                    }
                    o
                })
                .collect();
            assert_eq!(sent.body, Some(json!({"items": want})), "{pid}");
        }
    }
    // Archive bodies are `{}`.
    assert!(
        reqs.iter()
            .filter(|q| q.path.ends_with("/archive"))
            .all(|q| q.body == Some(json!({})))
    );
    assert!(!reqs.iter().any(|q| q.method == "DELETE"));
    // An orphan is read three times: its detail for the cache, the audited `before` read that is also the
    // confirmation (6.2.4, one read), and the verification.
    for o in &e.orphans {
        let reads = reqs
            .iter()
            .filter(|q| q.method == "GET" && q.path == format!("/api/v1/content/{o}"))
            .count();
        assert_eq!(reads, 3, "GETs of orphan {o}");
    }

    // Fix notifications, one per kind, naming the items.
    let alerts = env.alerts.all();
    let fixed: Vec<&RecordedAlert> = alerts
        .iter()
        .filter(|a| a.kind == InlineKind::Fixed)
        .collect();
    assert!(
        fixed
            .iter()
            .any(|a| a.summary
                == format!("Auto-archived {} expired content item(s)", e.expired.len()))
    );
    assert!(fixed.iter().any(
        |a| a.summary == format!("Auto-archived {} orphaned content item(s)", e.orphans.len())
    ));
    assert_eq!(fixed.len(), 2);

    // The detail cache was written (0644) and holds only what is needed.
    let cache_path = env.dir.path().join("ops-content-cache.json");
    let cache: Value = serde_json::from_slice(&std::fs::read(&cache_path).unwrap()).unwrap();
    assert_eq!(cache["version"], 1);
    for a in e.orphans.iter().chain(e.expired.keys()) {
        assert!(
            cache["items"].get(a).is_none(),
            "archived {a} dropped from the cache"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache_path).unwrap().permissions().mode() & 0o777,
        0o644
    );

    // Second run: same open findings, nothing changed, no write request at all.
    env.sb.clear_requests();
    let r2 = env.run(false).await;
    assert_eq!(r2.exit_code, 1);
    let w = writes(&env.sb.requests())
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert!(w.is_empty(), "second run mutated: {w:#?}");
    let inc2 = env.incidents();
    assert_eq!(
        active_of_kind(&inc2, "missing_thumbnail"),
        e.missing_thumbnail
    );
    assert_eq!(active_of_kind(&inc2, "oversized_file"), e.oversized);
    assert!(active_of_kind(&inc2, "orphaned_content").is_empty());
    assert!(active_of_kind(&inc2, "expired_content").is_empty());
    // The warm cache spares the detail reads of unchanged items.
    let detail_reads = env
        .sb
        .requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.starts_with("/api/v1/content/"))
        .count();
    assert_eq!(
        detail_reads, 0,
        "the cache is fresh for every unchanged item"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reads_only_and_lists_the_same_actions_the_real_run_makes() {
    let e = expected();
    let env = env(&[]).await;
    let r = env.run(true).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    assert!(!r.wrote_state);
    assert!(!env.state_path().exists(), "dry run writes no state");
    assert!(
        !env.dir.path().join("ops-content-cache.json").exists(),
        "dry run writes no cache"
    );
    let reqs = env.sb.requests();
    let w = writes(&reqs).into_iter().cloned().collect::<Vec<_>>();
    assert!(w.is_empty(), "dry run sent writes: {w:#?}");
    assert!(reqs.iter().any(|q| q.path == "/api/v1/auth/login"));
    assert!(reqs.iter().any(|q| q.path == "/api/v1/auth/logout"));
    for c in e.expired.keys().chain(e.orphans.iter()) {
        assert_eq!(env.entity("content", c)["status"], "active");
    }
    let planned = mutation_lines(&env.audit(), true);
    assert!(!planned.is_empty());
    assert!(
        r.report.iter().any(|l| l.contains("would archive")),
        "{:#?}",
        r.report
    );
    // Would-be notifications are printed (dry run), not delivered.
    assert!(env.alerts.all().iter().all(|a| a.dry_run));

    let r2 = env.run(false).await;
    assert_eq!(r2.exit_code, 1);
    let done = mutation_lines(&env.audit(), false);
    assert_eq!(
        planned, done,
        "the dry run listed exactly the actions the real run made"
    );
}

// ------------------------------------------------------------------------------------------------------------
// Storage critical → archive unreferenced content, not lower → escalated
// ------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_critical_archives_unreferenced_content_then_escalates_when_usage_does_not_drop() {
    let e = expected();
    // 84 % usage is critical with these thresholds, and the run's expired and orphan archives (their fileSize
    // counts) do not bring the projection under 82 %: storage relief archives the 7–30-day unreferenced items.
    assert!(
        !e.storage_relief.is_empty() && !e.too_young.is_empty(),
        "{e:?}"
    );
    let env = env(&[
        ("OPS_STORAGE_WARN_PCT", "70"),
        ("OPS_STORAGE_CRITICAL_PCT", "82"),
    ])
    .await;
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    let inc = env.incidents();
    let st: Vec<&Value> = inc
        .values()
        .filter(|i| i["type"] == "storage_high")
        .collect();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["severity"], "critical");
    // The sandbox's archive does not lower usedBytes (as in Vizora): proof that archiving cannot help.
    assert_eq!(st[0]["status"], "escalated", "{:#}", st[0]);
    assert_eq!(st[0]["attempts"], 1);
    let archived = archive_posts(&env.sb.requests());
    let storage_archived: BTreeSet<String> = archived
        .iter()
        .filter(|a| !e.orphans.contains(*a) && !e.expired.contains_key(*a))
        .cloned()
        .collect();
    assert_eq!(storage_archived, e.storage_relief, "{archived:?}");
    for a in &storage_archived {
        assert_eq!(env.entity("content", a)["status"], "archived");
    }
    // Never referenced, global or too young content.
    for n in e
        .orphan_near_misses
        .iter()
        .filter(|n| !e.storage_relief.contains(*n))
    {
        assert_eq!(env.entity("content", n)["status"], "active", "{n}");
    }
    for y in &e.too_young {
        assert_eq!(env.entity("content", y)["status"], "active", "{y}");
    }
    let alerts = env.alerts.all();
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == InlineKind::Critical && a.summary.contains("escalated")),
        "{alerts:#?}"
    );
    // Next run: stays escalated, archives nothing more.
    env.sb.clear_requests();
    let r2 = env.run(false).await;
    assert_eq!(r2.exit_code, 1);
    assert!(archive_posts(&env.sb.requests()).is_empty());
    let st2 = env
        .incidents()
        .into_values()
        .find(|i| i["type"] == "storage_high")
        .unwrap();
    assert_eq!(st2["status"], "escalated");
}

// ------------------------------------------------------------------------------------------------------------
// API faults
// ------------------------------------------------------------------------------------------------------------

fn fault(method: &str, path: &str, status: u16, count: u32) -> FaultSpec {
    FaultSpec {
        method: Some(method.into()),
        path: path.into(),
        status: Some(status),
        count,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_of_a_later_content_page_truncates_the_scan_and_archives_no_orphan() {
    let e = expected();
    let env = env(&[("OPS_HTTP_RETRIES", "0")]).await;
    // Page 1 is served normally (a delay-only fault), page 2 answers 503.
    env.sb.add_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/content".into(),
        delay_ms: Some(1),
        count: 1,
        ..Default::default()
    });
    env.sb.add_fault(fault("GET", "/api/v1/content", 503, 1));
    let r = env.run(false).await;
    assert!(r.fatal.is_none(), "{:?}", r.fatal);
    assert!(r.wrote_state);
    let inc = env.incidents();
    let st = &inc[&id("scan-truncated", "entity-lists")];
    assert_eq!(st["severity"], "info");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("content: collected 100/"),
        "{st}"
    );
    assert_eq!(
        inc[&id("reference-scan-incomplete", "content-references")]["status"],
        "open"
    );
    let archived: HashSet<String> = archive_posts(&env.sb.requests()).into_iter().collect();
    for o in &e.orphans {
        assert!(
            !archived.contains(o),
            "orphan {o} archived on an incomplete scan"
        );
        assert_eq!(env.entity("content", o)["status"], "active");
    }
    let cov = env.state()["agentResults"]["content-lifecycle"]["coverage"].clone();
    for t in [
        "orphaned_content",
        "expired_content",
        "missing_thumbnail",
        "oversized_file",
    ] {
        assert!(
            !cov.as_array().unwrap().iter().any(|c| c == t),
            "{t} covered on an incomplete scan"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_page_failure_or_bad_list_exits_2_without_writing_state() {
    for (label, setup) in [
        ("500", 0),
        ("503", 1),
        ("malformed json", 2),
        ("unknown shape", 3),
    ] {
        let env = env(&[("OPS_HTTP_RETRIES", "1")]).await;
        match setup {
            0 => env.sb.add_fault(fault("GET", "/api/v1/content", 500, 2)),
            1 => env.sb.add_fault(fault("GET", "/api/v1/playlists", 503, 2)),
            2 => env.sb.add_fault(FaultSpec {
                raw_body: Some("{\"success\":true,\"data\":{\"data\":[".into()),
                ..fault("GET", "/api/v1/content", 200, 1)
            }),
            _ => env
                .sb
                .set_list_shape("/api/v1/playlists", ListShape::Unknown),
        }
        let r = env.run(false).await;
        assert_eq!(r.exit_code, 2, "{label}");
        assert!(r.fatal.is_some(), "{label}");
        assert!(!r.wrote_state, "{label}");
        assert!(!env.state_path().exists(), "{label}: no state write");
        assert!(
            writes(&env.sb.requests()).is_empty(),
            "{label}: nothing mutated"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_404_content_not_found_resolves_the_incident() {
    let e = expected();
    let (target, _) = e.expired.iter().find(|(_, (r, _))| r.is_none()).unwrap();
    let env = env(&[("OPS_HTTP_RETRIES", "0")]).await;
    let path = format!("/api/v1/content/{target}/archive");
    // Run 1: the archive fails transiently → open, retried next run.
    env.sb.add_fault(fault("POST", &path, 500, 1));
    env.run(false).await;
    let i = &env.incidents()[&id("expired_content", target)];
    assert_eq!(i["status"], "open", "{i}");
    assert!(i["error"].as_str().unwrap().contains("500"), "{i}");
    // Run 2: the archive answers 404 Content not found → gone, resolved.
    env.sb.add_fault(FaultSpec {
        body: Some(
            json!({"statusCode": 404, "message": "Content not found", "error": "Not Found"}),
        ),
        ..fault("POST", &path, 404, 1)
    });
    let r = env.run(false).await;
    assert!(r.fatal.is_none(), "{:?}", r.fatal);
    let i = &env.incidents()[&id("expired_content", target)];
    assert_eq!(i["status"], "resolved", "{i}");
    assert!(i["message"].as_str().unwrap().contains("gone"), "{i}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_404_cannot_post_is_contract_drift_with_exit_2_and_no_further_archives() {
    let e = expected();
    let env = env(&[]).await;
    env.sb.add_fault(FaultSpec {
        body: Some(json!({"statusCode": 404, "message": "Cannot POST /api/v1/content/x/archive", "error": "Not Found"})),
        ..fault("POST", "/api/v1/content/*", 404, 1000)
    });
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 2);
    assert!(r.fatal.as_deref().unwrap().contains("post-content-archive"));
    assert!(r.wrote_state, "contract drift is a full write");
    let archives = archive_posts(&env.sb.requests());
    assert_eq!(
        archives.len(),
        1,
        "no archive after the drift: {archives:?}"
    );
    let st = env.state();
    assert!(
        st["lastRun"]["content-lifecycle"].is_string(),
        "full write stamps lastRun"
    );
    let inc = env.incidents();
    let d = &inc[&id("api-contract-drift", "post-content-archive")];
    assert_eq!(d["severity"], "critical");
    assert_eq!(d["status"], "open");
    // Every expired item stays open; orphans are not archived.
    assert_eq!(active_of_kind(&inc, "expired_content"), expired_ids(&e));
    for o in &e.orphans {
        assert_eq!(env.entity("content", o)["status"], "active");
    }
    let alerts = env.alerts.all();
    assert!(
        alerts
            .iter()
            .any(|a| a.kind == InlineKind::Critical && a.summary.contains("post-content-archive"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_mid_run_logs_in_again_once_and_the_run_completes() {
    let e = expected();
    let env = env(&[]).await;
    env.sb
        .add_fault(fault("GET", "/api/v1/organizations/storage", 401, 1));
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    assert_eq!(env.sb.sessions().logins, 2);
    let inc = env.incidents();
    assert!(
        inc.values()
            .any(|i| i["type"] == "storage_high" && i["status"] == "open")
    );
    assert_eq!(resolved_of_kind(&inc, "orphaned_content"), e.orphans);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_during_the_detail_reads_logs_in_again_and_no_detail_is_lost() {
    let e = expected();
    let env = env(&[]).await;
    env.sb.add_fault(fault("GET", "/api/v1/content/*", 401, 1));
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    assert_eq!(env.sb.sessions().logins, 2);
    let inc = env.incidents();
    assert_eq!(resolved_of_kind(&inc, "expired_content"), expired_ids(&e));
    assert_eq!(resolved_of_kind(&inc, "orphaned_content"), e.orphans);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_waited_out_and_the_scan_stays_complete() {
    let env = env(&[]).await;
    env.sb.add_fault(FaultSpec {
        retry_after: Some(json!(1)),
        ..fault("GET", "/api/v1/playlists", 429, 1)
    });
    let t0 = std::time::Instant::now();
    let r = env.run(true).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    let reqs = env.sb.requests();
    let pl: Vec<&RecordedRequest> = reqs
        .iter()
        .filter(|q| q.path == "/api/v1/playlists")
        .collect();
    assert_eq!(pl[0].status, 429);
    assert_eq!(pl[1].status, 200);
    let gap = DateTime::parse_from_rfc3339(&pl[1].at).unwrap()
        - DateTime::parse_from_rfc3339(&pl[0].at).unwrap();
    assert!(gap.num_milliseconds() >= 950, "Retry-After honoured: {gap}");
    assert!(t0.elapsed().as_millis() >= 950);
    assert!(
        !r.report.iter().any(|l| l.contains("scan truncated")),
        "{:#?}",
        r.report
    );
}

// ------------------------------------------------------------------------------------------------------------
// Cache
// ------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_cache_is_written_only_after_a_successful_state_write() {
    // agents.md 6.2.1: the cache is written after the state write. A state lock held by someone else makes the state
    // write time out (exit 2): the cache must not be written either.
    let env = env(&[("OPS_LOCK_TIMEOUT_MS", "300")]).await;
    let lock = env.dir.path().join("ops-state.json.lock");
    std::fs::write(&lock, "99999:1:1").unwrap();
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 2, "{:?}", r.fatal);
    assert!(
        r.fatal.as_deref().unwrap_or("").contains("lock"),
        "{:?}",
        r.fatal
    );
    assert!(!r.wrote_state);
    let cache = env.dir.path().join("ops-content-cache.json");
    assert!(!cache.exists(), "no cache without a state write");
    // Lock released: the next run writes the state, then the cache.
    std::fs::remove_file(&lock).unwrap();
    let r = env.run(false).await;
    assert!(r.wrote_state, "{:?}", r.fatal);
    assert!(cache.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cache_is_quarantined_untouched_and_rebuilt() {
    let env = env(&[]).await;
    let cache = env.dir.path().join("ops-content-cache.json");
    std::fs::write(&cache, b"{\"version\":1,\"items\":[").unwrap();
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1, "{:?}", r.fatal);
    let q: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| {
            p.to_string_lossy()
                .contains("ops-content-cache.json.corrupt-")
        })
        .collect();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(std::fs::read(&q[0]).unwrap(), b"{\"version\":1,\"items\":[");
    let rebuilt: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert!(rebuilt["items"].as_object().unwrap().len() > 50);
    assert!(!env.dir.path().join("ops-content-cache.json.lock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_file_in_the_old_pretty_form_is_loaded_and_spares_every_detail_read() {
    let env = env(&[]).await;
    env.run(false).await;
    let cache = env.dir.path().join("ops-content-cache.json");
    let written: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let n = written["items"].as_object().unwrap().len();
    assert!(n > 50, "{n} entries");
    // The form the earlier code wrote: pretty-printed, `version` first.
    let old = serde_json::to_vec_pretty(&json!({"version": 1, "items": written["items"].clone()}))
        .unwrap();
    std::fs::write(&cache, &old).unwrap();
    env.sb.clear_requests();
    let r = env.run(false).await;
    assert!(r.fatal.is_none(), "{:?}", r.fatal);
    let detail_reads = env
        .sb
        .requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.starts_with("/api/v1/content/"))
        .count();
    assert_eq!(detail_reads, 0, "every entry of the old file is fresh");
    let rewritten: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(
        rewritten["items"], written["items"],
        "same entries written back"
    );
    assert!(
        !std::fs::read_dir(env.dir.path()).unwrap().any(|d| d
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".corrupt-")),
        "not quarantined"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_detail_budget_defers_expiry_and_orphan_verdicts_until_the_cache_is_warm() {
    let e = expected();
    let env = env(&[("OPS_CONTENT_DETAIL_READS_PER_RUN", "40")]).await;
    let r = env.run(false).await;
    assert!(r.fatal.is_none());
    let inc = env.incidents();
    assert_eq!(
        inc[&id("reference-scan-incomplete", "content-references")]["status"],
        "open"
    );
    assert!(
        r.report
            .iter()
            .any(|l| l.starts_with("orphan archive skipped"))
    );
    for o in &e.orphans {
        assert_eq!(
            env.entity("content", o)["status"],
            "active",
            "nothing archived before the harvest is complete"
        );
    }
    // A few more runs warm the cache; then the orphans are archived and the info incident resolves.
    for _ in 0..3 {
        env.run(false).await;
    }
    let inc = env.incidents();
    assert_eq!(
        inc[&id("reference-scan-incomplete", "content-references")]["status"],
        "resolved"
    );
    assert_eq!(resolved_of_kind(&inc, "orphaned_content"), e.orphans);
    assert_eq!(resolved_of_kind(&inc, "expired_content"), expired_ids(&e));
}

// ------------------------------------------------------------------------------------------------------------
// Thumbnails in S3 (local S3 stand-in started by scripts/test.sh)
// ------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_thumbnails_are_probed_with_head_object_when_s3_is_configured() {
    use object_store::{ObjectStoreExt, PutPayload};
    let endpoint = support::s3_endpoint();
    let bucket = format!("cl-thumbs-{}", uuid::Uuid::new_v4().simple());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        created.status().is_success(),
        "bucket: {}",
        created.status()
    );
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap();
    // Upload every active image/video thumbnail but one.
    let fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let thumbs: Vec<(String, String)> = fx["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["status"] == "active" && matches!(c["type"].as_str(), Some("image" | "video"))
        })
        .filter_map(|c| {
            let t = c["thumbnail"].as_str()?.strip_prefix("minio://")?;
            Some((c["id"].as_str().unwrap().to_string(), t.to_string()))
        })
        .collect();
    assert!(thumbs.len() > 2);
    let (missing_id, _) = thumbs[0].clone();
    for (_, key) in &thumbs[1..] {
        store
            .put(
                &object_store::path::Path::from(key.as_str()),
                PutPayload::from_static(b"jpg"),
            )
            .await
            .unwrap();
    }
    let e = expected();
    let env = env(&[
        ("OPS_S3_ENDPOINT", endpoint.as_str()),
        ("OPS_S3_ACCESS_KEY", "test"),
        ("OPS_S3_SECRET_KEY", "test-secret"),
        ("MINIO_BUCKET", bucket.as_str()),
    ])
    .await;
    let r = env.run(true).await;
    assert!(r.fatal.is_none(), "{:?}", r.fatal);
    let want: BTreeSet<String> = e
        .missing_thumbnail
        .iter()
        .cloned()
        .chain([missing_id.clone()])
        .collect();
    let got: BTreeSet<String> = r
        .result
        .incidents
        .iter()
        .filter(|i| i.kind == "missing_thumbnail" && i.is_active())
        .map(|i| i.target_id.clone())
        .collect();
    assert_eq!(got, want);
    let msg = &r
        .result
        .incidents
        .iter()
        .find(|i| i.target_id == missing_id && i.kind == "missing_thumbnail")
        .unwrap()
        .message;
    assert!(msg.contains("not found"), "{msg}");
}

// ------------------------------------------------------------------------------------------------------------
// http(s) thumbnails: HEAD with redirects, cached per URL, recheck interval, probe cap
// ------------------------------------------------------------------------------------------------------------

/// A thumbnail host: `/ok` redirects twice then answers 200, `/gone` answers 404, `/loop` redirects forever.
/// Returns its origin and the number of HEAD requests received.
async fn thumbnail_host() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let heads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = heads.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let h = h.clone();
        async move {
            if req.method() == axum::http::Method::HEAD {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let redirect = |to: &str| {
                (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
            };
            match req.uri().path() {
                "/ok" => redirect("/ok/step1"),
                "/ok/step1" => redirect("step2"),
                "/ok/step2" => StatusCode::OK.into_response(),
                "/loop" => redirect("/loop"),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (origin, heads)
}

/// The demo fixture with three active images' thumbnails pointing at `origin` (`/ok`, `/gone`, `/loop`).
fn fixture_with_http_thumbnails(origin: &str) -> (String, [String; 3]) {
    let mut fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let mut ids = Vec::new();
    for (c, path) in fx["content"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|c| c["status"] == "active" && c["type"] == "image" && c["thumbnail"].is_string())
        .zip(["/ok", "/gone", "/loop"])
    {
        let url = format!("{origin}{path}");
        c["thumbnail"] = json!(url);
        c["thumbnailUrl"] = json!(url);
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    (fx.to_string(), ids.try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_thumbnails_are_probed_with_head_following_redirects_and_the_result_is_cached() {
    let (origin, heads) = thumbnail_host().await;
    let (fixture, [ok, gone, looping]) = fixture_with_http_thumbnails(&origin);
    let sb = Sandbox::start(
        &fixture,
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        cfg: config(&sb.api_url, dir.path(), &[]),
        sb,
        dir,
        alerts: Arc::default(),
    };
    let thumbs = |r: &RunReport| -> BTreeSet<String> {
        r.result
            .incidents
            .iter()
            .filter(|i| i.kind == "missing_thumbnail" && i.is_active())
            .map(|i| i.target_id.clone())
            .collect()
    };
    let e = expected();
    let r = env.run(false).await;
    assert!(r.fatal.is_none(), "{:?}", r.fatal);
    let got = thumbs(&r);
    assert!(
        !got.contains(&ok),
        "two redirects then 200 is a usable thumbnail"
    );
    assert!(got.contains(&gone) && got.contains(&looping), "{got:?}");
    assert_eq!(got.len(), e.missing_thumbnail.len() + 2);
    let inc = env.incidents();
    assert!(
        inc[&id("missing_thumbnail", &gone)]["message"]
            .as_str()
            .unwrap()
            .contains("404")
    );
    assert!(
        inc[&id("missing_thumbnail", &looping)]["message"]
            .as_str()
            .unwrap()
            .contains("more than 5 redirects")
    );
    // /ok: 3 HEADs; /gone: 1; /loop: 6 (the first request and 5 redirects).
    let first = heads.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(first, 3 + 1 + 6);
    let cache: Value = serde_json::from_slice(
        &std::fs::read(env.dir.path().join("ops-content-cache.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cache["items"][&ok]["thumbnail"]["ok"], true);
    assert_eq!(cache["items"][&gone]["thumbnail"]["ok"], false);

    // Within OPS_THUMBNAIL_RECHECK_HOURS the cached result is reused: no HEAD, same verdicts.
    let r2 = env.run(false).await;
    assert_eq!(heads.load(std::sync::atomic::Ordering::SeqCst), first);
    assert_eq!(thumbs(&r2), got);

    // A recheck interval of 0 probes again, but at most OPS_THUMBNAIL_PROBES_PER_RUN; the rest is not examined,
    // so their open incidents are carried, not resolved.
    let env = Env {
        cfg: config(
            &env.sb.api_url,
            env.dir.path(),
            &[
                ("OPS_THUMBNAIL_RECHECK_HOURS", "0"),
                ("OPS_THUMBNAIL_PROBES_PER_RUN", "1"),
            ],
        ),
        ..env
    };
    let r3 = env.run(false).await;
    assert!(heads.load(std::sync::atomic::Ordering::SeqCst) > first);
    assert!(heads.load(std::sync::atomic::Ordering::SeqCst) <= first + 6);
    let inc = env.incidents();
    assert_ne!(inc[&id("missing_thumbnail", &gone)]["status"], "resolved");
    assert_ne!(
        inc[&id("missing_thumbnail", &looping)]["status"],
        "resolved"
    );
    assert!(r3.fatal.is_none());
}

// ------------------------------------------------------------------------------------------------------------
// Sweep with evidence
// ------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_resolves_with_evidence_when_its_content_is_no_longer_active() {
    let e = expected();
    let env = env(&[]).await;
    env.run(false).await;
    let target = e.missing_thumbnail.iter().next().unwrap().clone();
    assert_eq!(
        env.incidents()[&id("missing_thumbnail", &target)]["status"],
        "open"
    );
    // Someone archives it in the dashboard.
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", env.sb.api_url))
        .json(&json!({"email": "ops@example.test", "password": "ops-demo-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["access_token"].as_str().unwrap();
    let archived = http
        .post(format!(
            "{}/api/v1/content/{target}/archive",
            env.sb.api_url
        ))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(archived.status().is_success());
    let r = env.run(false).await;
    assert!(r.fatal.is_none());
    let i = &env.incidents()[&id("missing_thumbnail", &target)];
    assert_eq!(i["status"], "resolved");
    assert!(
        i["message"]
            .as_str()
            .unwrap()
            .ends_with(" — content no longer active (status=archived)"),
        "{i}"
    );
}

// ------------------------------------------------------------------------------------------------------------
// Repoint failures
// ------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_repoint_leaves_the_expired_item_unarchived_and_open() {
    let e = expected();
    let (cid, playlists) = e.expired_with_repoint();
    let env = env(&[]).await;
    env.sb.add_fault(FaultSpec {
        body: Some(json!({"statusCode": 400, "message": ["items.0.contentId must be a string"], "error": "Bad Request"})),
        ..fault("PATCH", &format!("/api/v1/playlists/{}", playlists[0]), 400, 1)
    });
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1);
    assert!(r.fatal.is_none());
    let i = &env.incidents()[&id("expired_content", cid)];
    assert_eq!(i["status"], "open", "{i}");
    assert!(i["error"].as_str().unwrap().contains("400"), "{i}");
    assert_eq!(
        env.entity("content", cid)["status"],
        "active",
        "no archive after a failed repoint"
    );
    assert!(!archive_posts(&env.sb.requests()).contains(cid));
    // The other expired items are still handled.
    let others: BTreeSet<String> = expired_ids(&e).into_iter().filter(|x| x != cid).collect();
    assert_eq!(
        resolved_of_kind(&env.incidents(), "expired_content"),
        others
    );
    // Next run (no fault): repointed and archived.
    env.run(false).await;
    assert_eq!(
        env.incidents()[&id("expired_content", cid)]["status"],
        "resolved"
    );
    assert_eq!(env.entity("content", cid)["status"], "archived");
    assert_eq!(env.incidents()[&id("expired_content", cid)]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_changed_between_its_read_and_the_write_is_not_repointed() {
    // The repoint's PATCH replaces the whole item list, so it is built from a read and sent only if the audited
    // `before` read still shows the same items. Here the first read answers an older version (one more item).
    let e = expected();
    let (cid, playlists) = e.expired_with_repoint();
    let pid = &playlists[0];
    let env = env(&[]).await;
    let fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let mut stale = fx["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == pid.as_str())
        .unwrap()
        .clone();
    let n = stale["items"].as_array().unwrap().len();
    stale["items"]
        .as_array_mut()
        .unwrap()
        .push(json!({"contentId": cid, "order": n + 1, "duration": null}));
    env.sb.add_fault(FaultSpec {
        body: Some(stale),
        ..fault("GET", &format!("/api/v1/playlists/{pid}"), 200, 1)
    });
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 1);
    let reqs = env.sb.requests();
    assert!(
        !reqs
            .iter()
            .any(|q| q.method == "PATCH" && q.path == format!("/api/v1/playlists/{pid}")),
        "no PATCH built from the stale read"
    );
    let i = &env.incidents()[&id("expired_content", cid)];
    assert_eq!(i["status"], "open", "{i}");
    assert!(
        i["error"]
            .as_str()
            .unwrap()
            .contains("changed since it was read"),
        "{i}"
    );
    assert_eq!(env.entity("content", cid)["status"], "active", "no archive");
    // Next run: the reads agree, the playlist is repointed and the item archived.
    env.run(false).await;
    assert_eq!(
        env.incidents()[&id("expired_content", cid)]["status"],
        "resolved"
    );
    assert_eq!(env.entity("content", cid)["status"], "archived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_playlist_patch_route_is_contract_drift() {
    let e = expected();
    let env = env(&[]).await;
    env.sb.add_fault(FaultSpec {
        body: Some(json!({"statusCode": 404, "message": "Cannot PATCH /api/v1/playlists/x", "error": "Not Found"})),
        ..fault("PATCH", "/api/v1/playlists/*", 404, 100)
    });
    let r = env.run(false).await;
    assert_eq!(r.exit_code, 2);
    assert!(r.wrote_state);
    let inc = env.incidents();
    assert_eq!(
        inc[&id("api-contract-drift", "patch-playlists")]["severity"],
        "critical"
    );
    let patches = env
        .sb
        .requests()
        .iter()
        .filter(|q| q.method == "PATCH")
        .count();
    assert_eq!(patches, 1, "the drifted route is not called again");
    for (cid, (repl, pls)) in &e.expired {
        let want = if repl.is_some() && !pls.is_empty() {
            "active"
        } else {
            "archived"
        };
        assert_eq!(env.entity("content", cid)["status"], want, "{cid}");
    }
}

/// Issue 9 item 8: content ids from the API entered request paths without the id check fleet-manager and
/// schedule-doctor apply. A listed item whose id is not a plain id (here one that would climb out of
/// `/api/v1/content/`) is never requested, read or archived; the rest of the run is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_id_that_is_not_a_plain_id_is_never_put_in_a_request_path() {
    let e = expected();
    let mut fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let evil = "evil/../../organizations/current";
    let orphan = e
        .orphans
        .iter()
        .next()
        .expect("the demo seeds orphans")
        .clone();
    let mut c = fx["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == orphan.as_str())
        .unwrap()
        .clone();
    c["id"] = json!(evil);
    c["name"] = json!("Orphan with a hostile id");
    fx["content"].as_array_mut().unwrap().push(c);
    let sb = Sandbox::start(
        &fx.to_string(),
        SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sb.api_url, dir.path(), &[]);
    let r = run_agent(cfg, AGENT, RunOptions { dry_run: false }, Wiring::default()).await;
    assert!(r.fatal.is_none(), "{:?}", r.fatal);
    let reqs = sb.requests();
    assert!(
        reqs.iter()
            .all(|q| !q.path.contains("evil") && !q.query.contains("evil")),
        "the hostile id reached a request"
    );
    assert_eq!(sb.entity("content", evil).unwrap()["status"], "active");
    // The rest of the run goes on: the expired items are still archived. (Orphans wait: the unread item's
    // replacement pointer is unknown, so the reference harvest is incomplete, 6.2.4.)
    let archived = archive_posts(&reqs);
    for x in e.expired.keys() {
        assert!(archived.contains(x), "expired {x} not archived");
    }
    sb.shutdown().await;
}

/// Issue 9: an orphan verdict rests on absence from the playlists list. With `GET /playlists` cut to 10 items and a
/// consistent total, the list looks complete, so content used by the hidden playlists looks unreferenced; the
/// archive's own `before` read (`playlistItems` of the content detail) proves the use, so nothing referenced is
/// archived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_playlists_list_archives_no_referenced_content() {
    let e = expected();
    let env = env(&[]).await;
    env.sb.truncate_list("/api/v1/playlists", Some(10));
    let r = env.run(false).await;
    assert!(r.fatal.is_none(), "{:?}", r.fatal);
    let fx: Value = serde_json::from_str(DEMO_FIXTURE).unwrap();
    let referenced: HashSet<String> = fx["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter())
        .filter_map(|i| i["contentId"].as_str().map(String::from))
        .collect();
    let archived = archive_posts(&env.sb.requests());
    assert!(
        !archived.is_empty(),
        "the real orphans and expired items are still archived"
    );
    for a in &archived {
        assert!(
            !referenced.contains(a) || e.expired.contains_key(a),
            "{a} is used by a playlist and was archived as unreferenced"
        );
    }
}
