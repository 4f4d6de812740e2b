//! schedule-doctor against the sandbox serving tenant-demo.json (agents.md 6.4): every seeded fault found and nothing
//! on the near-misses (the expected set comes from an independent brute-force oracle over the fixture), dry run vs
//! real run, verified fixes, an idempotent second run, and the fallback playlist variants (6.4.1).

mod schedule_doctor_harness;

use schedule_doctor_harness as h;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const FALLBACK_NAME: &str = "Ops Fallback - Brand Evergreen";

fn types(ids: &BTreeSet<String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.split(':').nth(1).unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_then_real_run_find_every_seeded_fault_fix_verify_and_a_second_run_changes_nothing()
{
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    // The oracle must see every seeded category, or this test proves nothing.
    for t in [
        "past_end_schedule",
        "deleted_playlist_schedule",
        "no_target_schedule",
        "empty_playlist_schedule",
        "schedule_overlap",
        "coverage_gap",
    ] {
        assert!(
            expected.by_type.get(t).copied().unwrap_or(0) > 0,
            "the fixture seeds {t}: {:?}",
            expected.by_type
        );
    }
    assert!(!expected.assign.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let sink = h::capture_sink();

    // ── Dry run: every read, no write but login/logout, the same actions listed ──
    let dry = h::run(&cfg, true, &sink).await;
    let dry_ids: BTreeSet<String> = h::incident_status(&dry).keys().cloned().collect();
    assert_eq!(
        dry_ids,
        expected.ids,
        "dry run findings = oracle ({:?})",
        types(&expected.ids)
    );
    assert!(
        dry.result
            .incidents
            .iter()
            .all(|i| i.status.as_str() == "open"),
        "planned fixes are not attempted"
    );
    assert_eq!(dry.exit_code, 1);
    assert!(
        !dry.wrote_state && h::state(&cfg).is_none(),
        "a dry run writes no state"
    );
    let reqs = sb.requests();
    let dry_writes = h::writes(&reqs);
    assert!(
        dry_writes
            .iter()
            .all(|(m, p, _)| m == "POST"
                && (p == "/api/v1/auth/login" || p == "/api/v1/auth/logout")),
        "only login and logout: {dry_writes:?}"
    );
    let planned = h::audited_mutations(&cfg, true);
    let mut expected_actions: Vec<(String, String, String)> = expected
        .deactivate
        .iter()
        .map(|id| {
            (
                "PATCH".into(),
                format!("/api/v1/schedules/{id}"),
                json!({"isActive": false}).to_string(),
            )
        })
        .chain(expected.assign.iter().map(|id| {
            (
                "PATCH".into(),
                format!("/api/v1/displays/{id}"),
                json!({"currentPlaylistId": h::playlist_id(&fx, FALLBACK_NAME)}).to_string(),
            )
        }))
        .collect();
    expected_actions.sort();
    assert_eq!(
        planned, expected_actions,
        "the dry run lists every planned action"
    );
    for id in &expected.deactivate {
        assert_eq!(
            sb.entity("schedules", id).unwrap()["isActive"],
            true,
            "dry run changed nothing"
        );
    }
    let dry_alerts = h::summaries(&sink);
    assert!(
        dry_alerts.iter().any(|(s, _, d)| *d
            && s == &format!("Auto-deactivated {} schedule(s)", expected.deactivate.len())),
        "{dry_alerts:?}"
    );
    sink.take();

    // ── Real run: the same actions, sent and verified ──
    sb.clear_requests();
    let real = h::run(&cfg, false, &sink).await;
    let status = h::incident_status(&real);
    let real_ids: BTreeSet<String> = status.keys().cloned().collect();
    assert_eq!(real_ids, expected.ids);
    for (id, st) in &status {
        let kind = id.split(':').nth(1).unwrap();
        let want = match kind {
            "past_end_schedule"
            | "deleted_playlist_schedule"
            | "no_target_schedule"
            | "coverage_gap" => "resolved",
            _ => "open",
        };
        assert_eq!(st, want, "{id}");
    }
    assert_eq!(
        real.exit_code, 1,
        "overlaps and the empty playlist stay open"
    );
    assert!(real.wrote_state && real.fatal.is_none(), "{:?}", real.fatal);
    let sent = h::mutations(&sb.requests());
    assert_eq!(
        sent, expected_actions,
        "the real run makes exactly the actions the dry run listed"
    );
    assert_eq!(h::audited_mutations(&cfg, false), expected_actions);
    assert!(sb.requests().iter().all(|r| r.method != "DELETE"));
    let count = |path: &str| {
        sb.requests()
            .iter()
            .filter(|r| r.path == path && r.status < 300)
            .count()
    };
    assert_eq!(
        count("/api/v1/auth/login"),
        1,
        "one lazy login shared by the concurrent walks"
    );
    assert_eq!(count("/api/v1/auth/logout"), 1);
    for id in &expected.deactivate {
        assert_eq!(
            sb.entity("schedules", id).unwrap()["isActive"],
            false,
            "{id} deactivated"
        );
    }
    let fallback = h::playlist_id(&fx, FALLBACK_NAME);
    for id in &expected.assign {
        assert_eq!(
            sb.entity("displays", id).unwrap()["currentPlaylistId"],
            fallback.as_str(),
            "{id}"
        );
    }
    let fixes = expected.deactivate.len() + expected.assign.len();
    assert_eq!(real.result.issues_fixed as usize, fixes);
    let verifications: Vec<Value> = h::audit(&cfg)
        .into_iter()
        .filter(|l| l["kind"] == "verification")
        .collect();
    assert_eq!(verifications.len(), fixes);
    assert!(
        verifications
            .iter()
            .all(|l| l["verified"] == true && l["agent"] == "schedule-doctor")
    );
    let alerts = h::summaries(&sink);
    let deact = alerts
        .iter()
        .find(|(s, _, _)| s.starts_with("Auto-deactivated"))
        .expect("batched deactivation notification");
    assert_eq!(
        deact.0,
        format!("Auto-deactivated {} schedule(s)", expected.deactivate.len())
    );
    assert!(
        deact
            .1
            .iter()
            .any(|i| i.contains("\"Summer Sale 2026 - Brand Wall\"") && i.contains("ended"))
    );
    let assigned = alerts
        .iter()
        .find(|(s, _, _)| s.starts_with("Assigned fallback"))
        .expect("batched fallback notification");
    assert_eq!(
        assigned.0,
        format!(
            "Assigned fallback playlist \"{FALLBACK_NAME}\" to {} display(s)",
            expected.assign.len()
        )
    );
    assert_eq!(alerts.len(), 2, "one message per kind per run: {alerts:?}");
    let st = h::state(&cfg).expect("state written");
    assert!(st["lastRun"]["schedule-doctor"].is_string());
    let rem = st["recentRemediations"].as_array().unwrap();
    assert_eq!(rem.iter().filter(|r| r["verified"] == true).count(), fixes);
    let overlap = real
        .result
        .incidents
        .iter()
        .find(|i| i.kind == "schedule_overlap")
        .unwrap();
    let (a, b) = overlap.target_id.split_once('+').unwrap();
    assert!(
        a.as_bytes() < b.as_bytes(),
        "pair ids in ascending byte order"
    );
    assert!(
        overlap.message.contains(a)
            && overlap.message.contains(b)
            && overlap.message.contains("priority")
    );
    assert!(
        !real.report.is_empty(),
        "report lines for the findings and fixes"
    );

    // ── Second run: nothing more to change ──
    sb.clear_requests();
    sink.take();
    let second = h::run(&cfg, false, &sink).await;
    assert!(
        h::mutations(&sb.requests()).is_empty(),
        "second run mutates nothing"
    );
    let again: BTreeSet<String> = h::incident_status(&second).keys().cloned().collect();
    let still: BTreeSet<String> = expected
        .ids
        .iter()
        .filter(|id| id.contains(":schedule_overlap:") || id.contains(":empty_playlist_schedule:"))
        .cloned()
        .collect();
    assert_eq!(
        again, still,
        "only the findings without an automatic fix remain"
    );
    assert_eq!(second.result.issues_fixed, 0);
    assert!(
        h::summaries(&sink).is_empty(),
        "no fix notification without fixes"
    );
    let st = h::state(&cfg).unwrap();
    for inc in st["incidents"].as_array().unwrap() {
        let id = inc["id"].as_str().unwrap();
        if expected.ids.contains(id) && !still.contains(id) {
            assert_eq!(inc["status"], "resolved", "{id}");
        }
    }
    assert_eq!(
        sb.sessions().refresh_outstanding,
        0,
        "every session released"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_misses_raise_nothing() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let sink = h::capture_sink();
    let rep = h::run(&cfg, true, &sink).await;
    let targets: Vec<String> = rep
        .result
        .incidents
        .iter()
        .map(|i| i.target_id.clone())
        .collect();
    let mentions = |id: &str| targets.iter().any(|t| t.split('+').any(|x| x == id));
    // Inactive schedule on an empty playlist; a schedule targeting a disabled (but existing) display; two
    // equal-priority campaigns on one screen whose dates do not meet; a different-priority pair on one screen;
    // back-to-back cafe menus; a Mon–Sat / Sunday split.
    for name in [
        "Black Friday 2026 Countdown",
        "York Window Right - Local Events",
        "Trail Running Month",
        "Hiking Boots Fortnight",
        "York Flash Sale Saturdays",
        "Cafe Breakfast Menu",
        "Cafe Lunch Menu",
        "Cafe Afternoon Treats",
        "Back to School 2026 - Sundays",
        "Back to School 2026 - Mon-Sat",
    ] {
        assert!(
            !mentions(&h::schedule_id(&fx, name)),
            "near-miss {name:?} raised: {targets:?}"
        );
    }
    // A disabled display without content is not a coverage gap; neither is one covered by an always-on base loop.
    for nick in [
        "Leeds Cafe Menu 3",
        "York Window Right (old)",
        "Leeds Climbing Wall",
    ] {
        assert!(
            !mentions(&h::display_id(&fx, nick)),
            "near-miss display {nick:?} raised"
        );
    }
    sb.shutdown().await;
}

/// Removes every fallback source from the demo fixture.
fn without_fallback(mut fx: Value) -> Value {
    fx["organization"]["settings"]
        .as_object_mut()
        .unwrap()
        .remove("opsFallbackPlaylistId");
    for p in fx["playlists"].as_array_mut().unwrap() {
        p["isDefault"] = json!(false);
    }
    fx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fallback_coverage_gaps_stay_open_and_explain_how_to_configure_one() {
    let fx = without_fallback(h::demo());
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    let gaps: Vec<_> = rep
        .result
        .incidents
        .iter()
        .filter(|i| i.kind == "coverage_gap")
        .collect();
    assert_eq!(gaps.len(), expected.by_type["coverage_gap"]);
    for g in &gaps {
        assert_eq!(g.status.as_str(), "open");
        assert!(
            g.remediation.contains("settings.opsFallbackPlaylistId")
                && g.remediation.contains("OPS_FALLBACK_PLAYLIST_ID"),
            "{}",
            g.remediation
        );
    }
    assert!(
        h::mutations(&sb.requests())
            .iter()
            .all(|(_, p, _)| !p.starts_with("/api/v1/displays/")),
        "no assignment without a fallback"
    );
    assert!(
        !rep.result
            .incidents
            .iter()
            .any(|i| i.kind == "fallback_playlist_invalid"),
        "unconfigured is not invalid"
    );
    assert_eq!(rep.exit_code, 1);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_fallback_is_used_when_the_organization_names_none() {
    let fx = without_fallback(h::demo());
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    let pid = h::playlist_id(&fx, "Brand Story Loop");
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[("OPS_FALLBACK_PLAYLIST_ID", &pid)]);
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    let gaps: Vec<_> = rep
        .result
        .incidents
        .iter()
        .filter(|i| i.kind == "coverage_gap")
        .collect();
    assert_eq!(gaps.len(), expected.by_type["coverage_gap"]);
    for g in &gaps {
        assert_eq!(g.status.as_str(), "resolved", "{}", g.remediation);
        assert_eq!(
            sb.entity("displays", &g.target_id).unwrap()["currentPlaylistId"],
            pid.as_str()
        );
    }
    assert!(
        h::summaries(&sink)
            .iter()
            .any(|(s, _, _)| s.contains("\"Brand Story Loop\""))
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_configured_fallback_is_reported_invalid_and_never_assigned() {
    let mut fx = h::demo();
    let empty = h::playlist_id(&fx, "Winter Planning (empty)");
    fx["organization"]["settings"]["opsFallbackPlaylistId"] = json!(empty);
    let org_id = fx["organization"]["id"].as_str().unwrap().to_string();
    let sb = h::start(&fx).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[]);
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    let inv = rep
        .result
        .incidents
        .iter()
        .find(|i| i.kind == "fallback_playlist_invalid")
        .expect("fallback_playlist_invalid raised");
    assert_eq!(inv.target, "organization");
    assert_eq!(inv.target_id, org_id);
    assert!(inv.message.contains("0 items"), "{}", inv.message);
    assert!(
        h::mutations(&sb.requests())
            .iter()
            .all(|(_, p, _)| !p.starts_with("/api/v1/displays/"))
    );
    assert!(
        rep.result
            .incidents
            .iter()
            .filter(|i| i.kind == "coverage_gap")
            .all(|i| i.status.as_str() == "open")
    );

    // Fixing the setting resolves it on the next run (type covered, not re-raised).
    let good = h::demo();
    let sb2 = h::start(&good).await;
    let cfg2 = h::config(&sb2, dir.path(), &[]);
    let rep2 = h::run(&cfg2, false, &sink).await;
    assert!(
        !rep2
            .result
            .incidents
            .iter()
            .any(|i| i.kind == "fallback_playlist_invalid" && i.is_active())
    );
    let st = h::state(&cfg2).unwrap();
    let stored = st["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == format!("schedule-doctor:fallback_playlist_invalid:{org_id}"))
        .unwrap();
    assert_eq!(stored["status"], "resolved");
    sb.shutdown().await;
    sb2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_demo_order_after_fleet_manager_the_findings_are_the_same() {
    let fx = h::demo();
    let sb = h::start(&fx).await;
    let expected = h::oracle(&fx, sb.now());
    let dir = tempfile::tempdir().unwrap();
    let cfg = h::config(&sb, dir.path(), &[("OPS_RECONNECT_VERIFY_S", "1")]);
    let fleet = vizora_ops::runner::run_agent(
        cfg.clone(),
        vizora_ops::model::AgentName::FleetManager,
        vizora_ops::runner::RunOptions { dry_run: false },
        Default::default(),
    )
    .await;
    // fleet-manager never assigns playlists or touches schedules.
    let sent = h::mutations(&sb.requests());
    assert!(
        sent.iter()
            .all(|(_, p, b)| !p.starts_with("/api/v1/schedules/")
                && !b.contains("currentPlaylistId")),
        "fleet-manager (exit {}) sent {sent:?}",
        fleet.exit_code
    );
    let sink = h::capture_sink();
    let rep = h::run(&cfg, false, &sink).await;
    let ids: BTreeSet<String> = h::incident_status(&rep).keys().cloned().collect();
    assert_eq!(ids, expected.ids);
    assert!(rep.fatal.is_none(), "{:?}", rep.fatal);
    sb.shutdown().await;
}
