//! Bad-input regression tests for the streaming walk and typed records (agents.md 9 items 18 and 21, 6.0, 6.2.1,
//! 6.4.2). Each test names a bug found by a bad-input trial against the sandbox (all fixed).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use vizora_ops::agents::content_lifecycle::detail_cache::{CACHE_FILE_NAME, CacheFile};
use vizora_ops::agents::entities::{Display, DisplayGroup, FromItem, PlaylistSummary, Schedule};
use vizora_ops::agents::schedule_doctor::detect::{ActiveVerdict, EntitySets, check_active};

fn now() -> DateTime<Utc> {
    "2026-11-29T12:00:00.000Z".parse().unwrap()
}

fn schedule(fields: Value) -> Schedule {
    let mut s = json!({
        "id": "s1", "name": "Healthy", "isActive": true,
        "startDate": "2026-01-01T00:00:00.000Z", "endDate": null,
        "daysOfWeek": [0, 1, 2, 3, 4, 5, 6], "startTime": null, "endTime": null, "priority": 10,
        "playlistId": "p1", "displayId": "d1", "displayGroupId": null
    });
    for (k, v) in fields.as_object().unwrap() {
        s[k] = v.clone();
    }
    Schedule::from_item(&s)
}

/// A schedule whose `playlistId` or `displayId` is present but not a string is malformed: agents.md 9.18 says "not
/// examined", so it must not reach a deactivation (the sandbox trial deactivated it as "it has no playlist" /
/// "it has neither a displayId nor a displayGroupId").
#[test]
fn wrong_typed_schedule_references_are_not_examined_never_deactivated() {
    let playlists = [PlaylistSummary::from_item(
        &json!({"id": "p1", "name": "P", "itemCount": 3}),
    )];
    let displays = [Display::from_item(&json!({"id": "d1"}))];
    let groups: [DisplayGroup; 0] = [];
    let sets = EntitySets::new(&playlists, &displays, &groups);
    assert!(
        matches!(
            check_active(&schedule(json!({})), now(), Some(&sets)),
            ActiveVerdict::Healthy { .. }
        ),
        "control: the well-formed schedule is healthy"
    );
    for bad in [
        json!({"playlistId": 12345}),
        json!({"playlistId": {"id": "p1"}}),
        json!({"displayId": 777}),
        json!({"displayId": ["d1"]}),
        json!({"displayId": null, "displayGroupId": 5}),
    ] {
        let v = check_active(&schedule(bad.clone()), now(), Some(&sets));
        assert!(
            !matches!(v, ActiveVerdict::Fault(_)),
            "{bad}: a malformed reference must not become a deactivating fault, got {v:?}"
        );
    }
}

/// A group member whose `displayId` is not a string makes the group's membership unknown (like a group without a
/// `displays` array, agents.md 6.0), instead of silently dropping the member: dropping it made schedule-doctor plan
/// a fallback assignment (`coverage_gap`) for a display that an active group schedule covers.
#[test]
fn malformed_group_member_makes_membership_unknown() {
    let ok = DisplayGroup::from_item(&json!({"id": "g", "displays": [{"displayId": "d1"}]}));
    assert_eq!(ok.members.as_deref().map(<[_]>::len), Some(1), "control");
    for member in [
        json!({"displayId": 12345}),
        json!({"displayId": null}),
        json!({"displayId": {"id": "d2"}}),
        json!("d2"),
    ] {
        let g = DisplayGroup::from_item(
            &json!({"id": "g", "displays": [{"displayId": "d1"}, member.clone()]}),
        );
        assert!(
            g.members.is_none(),
            "member {member}: membership must be unknown, got {:?}",
            g.members
        );
    }
}

/// A FIFO in place of `ops-content-cache.json` must not block the run (the rate budget already refuses to read
/// one, see src/vizora/budget.rs): the trial run hung after `start` until killed, holding the cache lock, with no
/// state write. Expected: an error ("not a regular file; continuing without it") within the lock timeout.
#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_the_content_cache_does_not_block_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CACHE_FILE_NAME);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    for dry_run in [false, true] {
        let file = CacheFile::new(path.clone(), Duration::from_millis(500));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let loaded = file.load(dry_run);
            let _ = tx.send((loaded.cache.len(), loaded.errors));
        });
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok((entries, errors)) => {
                assert_eq!(entries, 0);
                assert!(
                    !errors.is_empty(),
                    "dry_run={dry_run}: a FIFO is reported, not silently skipped"
                );
            }
            Err(_) => {
                // Unblock the stuck open so the thread can end, then fail.
                let _ = std::fs::OpenOptions::new().write(true).open(&path);
                panic!("dry_run={dry_run}: CacheFile::load blocked on a FIFO for 5 s");
            }
        }
    }
}

/// Names and URLs from the API end up in incident text and report lines; secrets in them are redacted before the
/// state, alerts or the dashboard see them (agents.md 5.9). The trial put a password and a bearer JWT in a content
/// name and found both in `ops-state.json` and on stdout.
#[test]
fn incident_text_and_report_lines_are_redacted() {
    use vizora_ops::agents::AgentOutcome;
    use vizora_ops::model::{AgentName, Incident, Severity};
    let name = "promo password=hunter2xyz Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF";
    let mut o = AgentOutcome::new(&["missing_thumbnail"]);
    let mut inc = Incident::new(
        AgentName::ContentLifecycle,
        "missing_thumbnail",
        Severity::Warning,
        "content",
        "c1",
        format!("\"{name}\" (image) has no usable thumbnail"),
        format!("Regenerate the thumbnail of \"{name}\""),
        now(),
    );
    inc.error = Some(format!(
        "probe of https://admin:s3cr3tpw@cdn.example/x?token=tok_SECRET_123 for {name}"
    ));
    o.raise(inc);
    o.note(format!("missing thumbnail: \"{name}\""));
    let i = &o.incidents[0];
    let texts = [
        i.message.as_str(),
        i.remediation.as_str(),
        i.error.as_deref().unwrap(),
        o.report[0].as_str(),
    ];
    for t in texts {
        for secret in [
            "hunter2xyz",
            "eyJhbGciOiJIUzI1NiJ9",
            "s3cr3tpw",
            "tok_SECRET_123",
        ] {
            assert!(!t.contains(secret), "{secret} leaked in {t:?}");
        }
        assert!(t.contains("promo"), "the rest of the text stays: {t:?}");
    }
}
