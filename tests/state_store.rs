//! State store behaviour under concurrency and bad files (agents.md 4.2–4.7, 9.1–9.6).

use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use vizora_ops::model::{AgentName, Incident, OpsState, Severity};
use vizora_ops::state::{Retention, StateStore};

fn incident(n: usize) -> Incident {
    Incident::new(
        AgentName::FleetManager,
        "display_offline",
        Severity::Warning,
        "display",
        &format!("d{n}"),
        "offline",
        "reload",
        Utc::now(),
    )
}

#[test]
fn concurrent_writers_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let store = Arc::new(StateStore::new(
        d.path().join("ops-state.json"),
        Duration::from_secs(20),
        Retention::default(),
    ));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for k in 0..10 {
                    s.update(Utc::now(), |st: &mut OpsState| {
                        st.incidents.push(incident(t * 100 + k))
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let st = store.snapshot(Utc::now());
    assert_eq!(
        st.incidents.len(),
        80,
        "every locked read-modify-write kept the others' work"
    );
    assert!(
        !d.path().join("ops-state.json.lock").exists(),
        "no lock left behind"
    );
}

#[test]
fn held_lock_times_out_without_writing_and_stale_lock_is_reclaimed() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("ops-state.json");
    let store = StateStore::new(&path, Duration::from_millis(300), Retention::default());
    store
        .update(Utc::now(), |st| st.incidents.push(incident(1)))
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    // A live holder: a fresh lock file with a foreign token.
    std::fs::write(d.path().join("ops-state.json.lock"), "4242:0:1").unwrap();
    let err = store
        .update(Utc::now(), |st| st.incidents.push(incident(2)))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("ops-state lock timeout after"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "nothing written without the lock"
    );
    // The same lock, 60 s old: stale, reclaimed.
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(d.path().join("ops-state.json.lock"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    store
        .update(Utc::now(), |st| st.incidents.push(incident(3)))
        .unwrap();
    assert_eq!(store.snapshot(Utc::now()).incidents.len(), 2);
}

#[test]
fn state_written_is_readable_by_the_ts_field_definitions() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("ops-state.json");
    let store = StateStore::new(&path, Duration::from_secs(2), Retention::default());
    store
        .update(Utc::now(), |st| {
            st.incidents.push(incident(7));
            st.agent_results.insert(
                "config-drift-detector".into(),
                serde_json::json!({"agent":"config-drift-detector","x":1}),
            );
        })
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "systemStatus",
            "lastUpdated",
            "lastRun",
            "incidents",
            "recentRemediations",
            "agentResults"
        ]
    );
    assert_eq!(v["systemStatus"], "DEGRADED");
    let i = &v["incidents"][0];
    assert_eq!(i["id"], "fleet-manager:display_offline:d7");
    for k in [
        "agent",
        "type",
        "severity",
        "target",
        "targetId",
        "detected",
        "message",
        "remediation",
        "status",
        "attempts",
    ] {
        assert!(i.get(k).is_some(), "incident field {k}");
    }
    assert!(
        i.get("resolvedAt").is_none(),
        "optional fields are omitted, not null"
    );
    assert_eq!(
        v["agentResults"]["config-drift-detector"]["x"], 1,
        "foreign entries untouched"
    );
}
