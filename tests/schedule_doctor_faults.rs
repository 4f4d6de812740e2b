//! schedule-doctor under injected faults (agents.md 1.4, 5.4, 5.7, 6.4): a later page failing (scan-truncated, only
//! check 1, nothing swept), page 1 failing or an unknown list shape (exit 2, no write), `PATCH` answering
//! `404 Cannot PATCH …` (contract drift, full write, route not called again), 401 mid-run (one re-login), a second
//! 401 after a write (partial write), and a write that does not verify.

mod schedule_doctor_harness;

use schedule_doctor_harness as h;
use serde_json::{Value, json};
use vizora_ops::sandbox::{FaultSpec, ListShape};

fn fault(
    method: Option<&str>,
    path: &str,
    status: Option<u16>,
    body: Option<Value>,
    count: u32,
) -> FaultSpec {
    FaultSpec {
        method: method.map(String::from),
        path: path.into(),
        status,
        body,
        count,
        ..Default::default()
    }
}

/// The demo fixture plus `n` inactive, low-priority schedules (sorted last by the API), so the schedule list has a
/// second page.
fn with_extra_schedules(n: usize) -> Value {
    let mut fx = h::demo();
    let template = fx["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["isActive"] == false)
        .unwrap()
        .clone();
    let arr = fx["schedules"].as_array_mut().unwrap();
    for i in 0..n {
        let mut s = template.clone();
        s["id"] = json!(format!("cxtra{:020}", i));
        s["name"] = json!(format!("Archived campaign {i}"));
        s["priority"] = json!(-1);
        arr.push(s);
    }
    fx
}

/// A prior state with one active incident of each given id (agent schedule-doctor).
fn seed_state(cfg: &vizora_ops::config::Config, incidents: &[(&str, &str, &str, &str)]) {
    let now = vizora_ops::model::ts(chrono::Utc::now() - chrono::Duration::hours(1));
    let incs: Vec<Value> = incidents
        .iter()
        .map(|(kind, target, tid, sev)| {
            json!({"id": format!("schedule-doctor:{kind}:{tid}"), "agent": "schedule-doctor", "type": kind,
                   "severity": sev, "target": target, "targetId": tid, "detected": now, "message": "seeded",
                   "remediation": "seeded", "status": "open", "attempts": 0})
        })
        .collect();
    let st = json!({"systemStatus": "DEGRADED", "lastUpdated": now, "lastRun": {}, "incidents": incs,
                    "recentRemediations": [], "agentResults": {}});
    std::fs::create_dir_all(cfg.state_file.parent().unwrap()).unwrap();
    std::fs::write(&cfg.state_file, serde_json::to_vec_pretty(&st).unwrap()).unwrap();
}

fn stored_status(cfg: &vizora_ops::config::Config, id: &str) -> String {
    h::state(cfg).unwrap()["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .map(|i| i["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{id} stored"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_page_failing_truncates_the_scan_runs_only_the_past_end_check_and_sweeps_nothing() {
    let fx = with_extra_schedules(60);
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let covered_display = h::display_id(&fx, "Leeds Entrance");
    let a_schedule = h::schedule_id(&fx, "Leeds - Base Loop");
    seed_state(
        &cfg,
        &[
            ("coverage_gap", "display", &covered_display, "warning"),
            (
                "empty_playlist_schedule",
                "schedule",
                &a_schedule,
                "warning",
            ),
        ],
    );
    // Page 1 of the schedules answers normally (a delay-only fault), page 2 fails on every attempt.
    sb.add_fault(FaultSpec {
        path: "/api/v1/schedules".into(),
        delay_ms: Some(1),
        ..Default::default()
    });
    sb.add_fault(fault(Some("GET"), "/api/v1/schedules", Some(500), None, 2));
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert!(rep.fatal.is_none(), "{:?}", rep.fatal);
    let st = h::incident_status(&rep);
    assert_eq!(
        st.get("schedule-doctor:scan-truncated:entity-lists")
            .map(String::as_str),
        Some("open")
    );
    let trunc = rep
        .result
        .incidents
        .iter()
        .find(|i| i.kind == "scan-truncated")
        .unwrap();
    assert_eq!(trunc.severity.as_str(), "info");
    assert!(
        trunc.message.contains("schedules") && trunc.message.contains("page 2"),
        "{}",
        trunc.message
    );
    let past_end: Vec<&String> = expected
        .ids
        .iter()
        .filter(|i| i.contains(":past_end_schedule:"))
        .collect();
    assert!(!past_end.is_empty());
    for id in &past_end {
        assert_eq!(
            st.get(*id).map(String::as_str),
            Some("resolved"),
            "verified past-end fixes still resolve"
        );
    }
    assert_eq!(st.len(), past_end.len() + 1, "only check 1 runs: {st:?}");
    let sent = h::mutations(&sb.requests());
    assert_eq!(sent.len(), past_end.len());
    assert!(
        sent.iter()
            .all(|(_, p, b)| p.starts_with("/api/v1/schedules/") && b == r#"{"isActive":false}"#)
    );
    assert_eq!(rep.exit_code, 0, "info only, every warning fixed");
    // An incomplete scan covers nothing: the seeded incidents are neither re-raised nor swept.
    assert_eq!(
        stored_status(
            &cfg,
            &format!("schedule-doctor:coverage_gap:{covered_display}")
        ),
        "open"
    );
    assert_eq!(
        stored_status(
            &cfg,
            &format!("schedule-doctor:empty_playlist_schedule:{a_schedule}")
        ),
        "open"
    );
    assert!(rep.result.coverage.as_ref().is_some_and(|c| c.is_empty()));

    // The next complete scan sweeps them and resolves scan-truncated.
    let rep2 = h::run(&cfg, false, &sink).await;
    assert!(rep2.fatal.is_none());
    assert_eq!(
        stored_status(
            &cfg,
            &format!("schedule-doctor:coverage_gap:{covered_display}")
        ),
        "resolved"
    );
    assert_eq!(
        stored_status(
            &cfg,
            &format!("schedule-doctor:empty_playlist_schedule:{a_schedule}")
        ),
        "resolved"
    );
    assert_eq!(
        stored_status(&cfg, "schedule-doctor:scan-truncated:entity-lists"),
        "resolved"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_page_failure_exits_2_without_writing_anything() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    sb.add_fault(fault(
        Some("GET"),
        "/api/v1/display-groups",
        Some(503),
        None,
        5,
    ));
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert_eq!(rep.exit_code, 2);
    assert!(
        rep.fatal
            .as_deref()
            .is_some_and(|f| f.contains("/api/v1/display-groups")),
        "{:?}",
        rep.fatal
    );
    assert!(!rep.wrote_state && h::state(&cfg).is_none());
    assert!(h::mutations(&sb.requests()).is_empty());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_list_shape_or_malformed_json_exits_2_without_writing() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let sink = h::capture_sink();
    sb.set_list_shape("/api/v1/schedules", ListShape::Unknown);
    let rep = h::run(&cfg, false, &sink).await;
    assert_eq!(rep.exit_code, 2);
    assert!(
        rep.fatal
            .as_deref()
            .is_some_and(|f| f.contains("unrecognised list shape")),
        "{:?}",
        rep.fatal
    );
    assert!(!rep.wrote_state && h::state(&cfg).is_none());
    sb.set_list_shape("/api/v1/schedules", ListShape::Normal);

    sb.add_fault(FaultSpec {
        method: Some("GET".into()),
        path: "/api/v1/playlists".into(),
        status: Some(200),
        raw_body: Some("{\"success\":true,\"data\":{\"data\":[".into()),
        count: 5,
        ..Default::default()
    });
    let rep = h::run(&cfg, false, &sink).await;
    assert_eq!(rep.exit_code, 2, "{:?}", rep.fatal);
    assert!(!rep.wrote_state && h::state(&cfg).is_none());
    assert!(h::mutations(&sb.requests()).is_empty());
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_answering_cannot_patch_is_contract_drift_with_a_full_write_and_no_second_call() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    assert!(expected.deactivate.len() > 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    sb.add_fault(fault(
        Some("PATCH"),
        "/api/v1/schedules/*",
        Some(404),
        Some(h::error_body(404, "Cannot PATCH /api/v1/schedules/x")),
        100,
    ));
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert_eq!(rep.exit_code, 2);
    assert!(rep.wrote_state, "drift is a full write");
    let drift = rep
        .result
        .incidents
        .iter()
        .find(|i| i.id == "schedule-doctor:api-contract-drift:patch-schedules")
        .expect("drift incident");
    assert_eq!(drift.severity.as_str(), "critical");
    assert_eq!(drift.target, "api");
    let patches: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with("/api/v1/schedules/"))
        .collect();
    assert_eq!(patches.len(), 1, "the drifted route is not called again");
    // Other checks continue: the schedules stay open, the coverage gaps still get the fallback.
    for id in &expected.deactivate {
        let inc = rep
            .result
            .incidents
            .iter()
            .find(|i| i.target_id == *id)
            .unwrap();
        assert_eq!(inc.status.as_str(), "open", "{id}");
    }
    let displays_patched = h::mutations(&sb.requests())
        .iter()
        .filter(|(_, p, _)| p.starts_with("/api/v1/displays/"))
        .count();
    assert!(displays_patched > 0);
    let st = h::state(&cfg).unwrap();
    assert!(
        st["lastRun"]["schedule-doctor"].is_string(),
        "full write stamps lastRun"
    );
    assert!(
        h::summaries(&sink)
            .iter()
            .any(|(s, items, _)| s.contains("contract drift") && !items.is_empty())
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_mid_run_logs_in_again_once_and_the_run_completes() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    sb.add_fault(fault(
        Some("GET"),
        "/api/v1/schedules/*",
        Some(401),
        Some(json!({"statusCode":401,"message":"Unauthorized"})),
        1,
    ));
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert!(rep.fatal.is_none(), "{:?}", rep.fatal);
    assert_eq!(rep.exit_code, 1);
    let ids: std::collections::BTreeSet<String> =
        h::incident_status(&rep).keys().cloned().collect();
    assert_eq!(ids, expected.ids);
    let logins = sb
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/auth/login" && r.status < 300)
        .count();
    assert_eq!(logins, 2, "one re-login after the 401");
    for id in &expected.deactivate {
        assert_eq!(sb.entity("schedules", id).unwrap()["isActive"], false);
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_401_after_a_write_aborts_with_a_partial_write() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    sb.add_fault(fault(
        Some("PATCH"),
        "/api/v1/schedules/*",
        Some(401),
        Some(json!({"statusCode":401,"message":"Unauthorized"})),
        2,
    ));
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert_eq!(rep.exit_code, 2);
    assert!(rep.wrote_state, "partial write after an attempted mutation");
    let st = h::state(&cfg).unwrap();
    assert!(
        st["lastRun"].get("schedule-doctor").is_none(),
        "partial write leaves lastRun unstamped"
    );
    assert!(!st["incidents"].as_array().unwrap().is_empty());
    let patches = sb.requests().iter().filter(|r| r.method == "PATCH").count();
    assert_eq!(
        patches, 2,
        "the 401, then the retry after re-login; nothing after the abort"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivation_the_re_read_does_not_confirm_stays_open_unverified() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let target = h::schedule_id(&fx, "Summer Sale 2026 - Brand Wall");
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    // Both reads of this schedule (the helper's `before`, which is also the pre-check, and the verification) claim
    // it is still active.
    sb.add_fault(fault(
        Some("GET"),
        &format!("/api/v1/schedules/{target}"),
        Some(200),
        Some(json!({"success": true, "data": {"id": target, "name": "Summer Sale 2026 - Brand Wall", "isActive": true}})),
        2,
    ));
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    let inc = rep
        .result
        .incidents
        .iter()
        .find(|i| i.id == format!("schedule-doctor:past_end_schedule:{target}"))
        .unwrap();
    assert_eq!(inc.status.as_str(), "open");
    assert!(
        inc.error
            .as_deref()
            .is_some_and(|e| e.contains("verification failed")),
        "{:?}",
        inc.error
    );
    assert_eq!(inc.attempts, 1);
    let st = h::state(&cfg).unwrap();
    let rem = st["recentRemediations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["targetId"] == target.as_str())
        .unwrap();
    assert_eq!(rem["verified"], false);
    assert_eq!(rem["success"], true);
    assert!(
        !h::summaries(&sink)
            .iter()
            .any(|(s, items, _)| s.starts_with("Auto-deactivated")
                && items.iter().any(|i| i.contains(&target)))
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_with_a_malformed_reference_is_not_examined_and_keeps_its_incidents() {
    // agents.md 9 item 18: a `displayId` that is neither a string nor null is unparseable, so the schedule is not
    // examined: no deactivation ("no target" would be false), and its prior incidents (overlap included) are not
    // swept as resolved. The schedule list (one page) is served with that one field changed.
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let mut schedules: Vec<Value> = fx["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| sb.entity("schedules", s["id"].as_str().unwrap()).unwrap())
        .collect();
    let sch = schedules
        .iter_mut()
        .find(|s| s["isActive"] == true && s["displayId"].is_string())
        .unwrap();
    let sid = sch["id"].as_str().unwrap().to_string();
    sch["displayId"] = json!(777);
    let n = schedules.len();
    assert!(n <= 100, "one page");
    sb.add_fault(fault(
        Some("GET"),
        "/api/v1/schedules",
        Some(200),
        Some(json!({"success": true, "data": {"data": schedules,
                    "meta": {"page": 1, "limit": 100, "total": n, "totalPages": 1}}})),
        5,
    ));
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let pair = format!("{sid}+zzzz-other-schedule");
    seed_state(
        &cfg,
        &[
            ("no_target_schedule", "schedule", &sid, "warning"),
            ("schedule_overlap", "schedule", &pair, "warning"),
        ],
    );
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert!(rep.fatal.is_none(), "{:?}", rep.fatal);
    assert!(
        !sb.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == format!("/api/v1/schedules/{sid}")),
        "the malformed schedule is never written"
    );
    assert_eq!(sb.entity("schedules", &sid).unwrap()["isActive"], true);
    assert_eq!(
        stored_status(&cfg, &format!("schedule-doctor:no_target_schedule:{sid}")),
        "open"
    );
    assert_eq!(
        stored_status(&cfg, &format!("schedule-doctor:schedule_overlap:{pair}")),
        "open"
    );
}

/// Issue 9: with `GET /playlists` cut to 10 items and `total=10` (a lying but self-consistent list), schedule-doctor
/// deactivated 32 schedules as "deleted playlist" although each schedule's embedded `playlist` showed it existed. A
/// schedule embedding its playlist is not "deleted playlist", and a playlist missing from the list is confirmed by
/// `GET /playlists/:id` → 404 before any deactivation: the deactivations are exactly the untruncated run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_playlists_list_makes_no_deactivation() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    let listed = fx["playlists"].as_array().unwrap().len();
    assert!(listed > 10, "the cut must hide playlists");
    sb.truncate_list("/api/v1/playlists", Some(10));
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert!(rep.fatal.is_none(), "{:?}", rep.fatal);
    let ids: Vec<String> = h::incident_status(&rep).into_keys().collect();
    assert!(
        !ids.iter().any(|i| i.contains(":scan-truncated:")),
        "the cut list is self-consistent, so the walk calls it complete: {ids:?}"
    );
    let reqs = sb.requests();
    let list_pages: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/api/v1/playlists")
        .collect();
    assert!(!list_pages.is_empty());
    // Only schedules the untruncated oracle deactivates are deactivated (past end, really deleted playlist, no
    // target), and all of them still are: nothing of the demo's fixes is lost.
    let deactivated: Vec<String> = h::mutations(&reqs)
        .into_iter()
        .filter(|(m, p, _)| m == "PATCH" && p.starts_with("/api/v1/schedules/"))
        .map(|(_, p, _)| p.trim_start_matches("/api/v1/schedules/").to_string())
        .collect();
    let want: Vec<String> = expected.deactivate.iter().cloned().collect();
    let mut got = deactivated.clone();
    got.sort();
    assert_eq!(got, want, "exactly the real faults are deactivated");
    let wrongly: Vec<&String> = ids
        .iter()
        .filter(|i| i.contains(":deleted_playlist_schedule:") && !expected.ids.contains(*i))
        .collect();
    assert!(
        wrongly.is_empty(),
        "false deleted-playlist verdicts: {wrongly:?}"
    );
    // Every real deleted-playlist deactivation was preceded by a direct read of its playlist answering 404.
    let pl_ids: std::collections::HashSet<&str> = fx["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    for s in fx["schedules"].as_array().unwrap() {
        let sid = s["id"].as_str().unwrap();
        let pid = s["playlistId"].as_str().unwrap_or_default();
        if expected.deactivate.contains(sid)
            && expected
                .ids
                .contains(&format!("schedule-doctor:deleted_playlist_schedule:{sid}"))
        {
            assert!(!pl_ids.contains(pid));
            let read = reqs
                .iter()
                .position(|r| r.method == "GET" && r.path == format!("/api/v1/playlists/{pid}"))
                .unwrap_or_else(|| panic!("no confirming read of playlist {pid}"));
            assert_eq!(reqs[read].status, 404);
            let patch = reqs
                .iter()
                .position(|r| r.method == "PATCH" && r.path == format!("/api/v1/schedules/{sid}"))
                .unwrap();
            assert!(read < patch, "absence confirmed before the write");
        }
    }
    for s in fx["schedules"].as_array().unwrap() {
        let sid = s["id"].as_str().unwrap();
        if !expected.deactivate.contains(sid) {
            assert_eq!(
                sb.entity("schedules", sid).unwrap()["isActive"],
                s["isActive"],
                "{sid} unchanged"
            );
        }
    }
    // The fallback playlist is among the hidden ones: a direct read finds it, so it is not "invalid" and the
    // coverage gaps still get it, exactly as without the cut.
    assert!(
        !ids.iter()
            .any(|i| i.contains(":fallback_playlist_invalid:")),
        "false fallback_playlist_invalid: {ids:?}"
    );
    let mut assigned: Vec<String> = h::mutations(&reqs)
        .into_iter()
        .filter(|(m, p, _)| m == "PATCH" && p.starts_with("/api/v1/displays/"))
        .map(|(_, p, _)| p.trim_start_matches("/api/v1/displays/").to_string())
        .collect();
    assigned.sort();
    let want: Vec<String> = expected.assign.iter().cloned().collect();
    assert_eq!(
        assigned, want,
        "the demo's fallback assignments are unchanged"
    );
    sb.shutdown().await;
}

/// The same for the display and group lists (agents.md 6.4.2 check 3): with `GET /displays` and
/// `GET /display-groups` cut to 5 items each, no schedule is deactivated as "no target" beyond the real faults; a
/// target missing from its list is confirmed by `GET /displays/:id` or `GET /display-groups/:id` → 404 first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_display_and_group_lists_make_no_no_target_deactivation() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    sb.truncate_list("/api/v1/displays", Some(5));
    sb.truncate_list("/api/v1/display-groups", Some(5));
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    assert!(rep.fatal.is_none(), "{:?}", rep.fatal);
    let ids: Vec<String> = h::incident_status(&rep).into_keys().collect();
    let wrongly: Vec<&String> = ids
        .iter()
        .filter(|i| i.contains(":no_target_schedule:") && !expected.ids.contains(*i))
        .collect();
    assert!(wrongly.is_empty(), "false no-target verdicts: {wrongly:?}");
    let reqs = sb.requests();
    for (m, p, _) in h::mutations(&reqs) {
        if m == "PATCH" && p.starts_with("/api/v1/schedules/") {
            let sid = p.trim_start_matches("/api/v1/schedules/");
            assert!(
                expected.deactivate.contains(sid),
                "{sid} wrongly deactivated"
            );
        }
    }
    // The real no-target faults with a named target were confirmed by a direct 404 read.
    for s in fx["schedules"].as_array().unwrap() {
        let sid = s["id"].as_str().unwrap();
        if !expected
            .ids
            .contains(&format!("schedule-doctor:no_target_schedule:{sid}"))
        {
            continue;
        }
        let target = match (s["displayId"].as_str(), s["displayGroupId"].as_str()) {
            (Some(d), _) => format!("/api/v1/displays/{d}"),
            (_, Some(g)) => format!("/api/v1/display-groups/{g}"),
            _ => continue,
        };
        assert!(
            reqs.iter()
                .any(|r| r.method == "GET" && r.path == target && r.status == 404),
            "no confirming 404 read of {target}"
        );
    }
    sb.shutdown().await;
}
