//! Two agent processes writing the state at the same moment (agents.md 4.2, 9.1): both runs are recorded, nothing is
//! lost, and no lock file is left behind.

use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn two_agent_processes_racing_for_the_state_lock_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Hold the state lock (a live foreign owner) so both processes reach the write and contend for it together.
    let lock = logs.join("ops-state.json.lock");
    std::fs::write(&lock, "999999:0:1").unwrap();
    let spawn = |agent: &str| {
        Command::new(env!("CARGO_BIN_EXE_vizora-ops"))
            .args(["run", agent, "--json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OPS_ROOT_DIR", dir.path())
            .env("OPS_LOG_DIR", &logs)
            .env("OPS_LOCK_TIMEOUT_MS", "20000")
            // health-guardian: nothing listens on these loopback ports; no pm2 binary at this path.
            .env(
                "OPS_MIDDLEWARE_PROBE_URL",
                "http://127.0.0.1:9/api/v1/health/ready",
            )
            .env(
                "OPS_REALTIME_PROBE_URL",
                "http://127.0.0.1:9/api/health/ready",
            )
            .env("OPS_WEB_PROBE_URL", "http://127.0.0.1:9/")
            .env("OPS_PROBE_CONFIRM_S", "0")
            .env("OPS_RESTART_COOLDOWN_S", "0")
            .env("OPS_PM2_BIN", dir.path().join("no-such-pm2"))
            .env("OPS_RATE_LIMIT_BACKEND", "memory")
            // db-maintainer: nothing configured but a Redis port that refuses.
            .env("REDIS_URL", "redis://127.0.0.1:9")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("health-guardian");
    let b = spawn("db-maintainer");
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_file(&lock).unwrap();
    let oa = a.wait_with_output().unwrap();
    let ob = b.wait_with_output().unwrap();
    for (name, o) in [("health-guardian", &oa), ("db-maintainer", &ob)] {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{name} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
        assert_ne!(
            v["exitCode"],
            2,
            "{name} could run: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(logs.join("ops-state.json")).unwrap()).unwrap();
    assert!(state["lastRun"]["health-guardian"].is_string(), "{state}");
    assert!(state["lastRun"]["db-maintainer"].is_string(), "{state}");
    assert!(state["agentResults"]["health-guardian"].is_object());
    assert!(state["agentResults"]["db-maintainer"].is_object());
    let ids: Vec<&str> = state["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(
        ids.iter().any(|i| i.starts_with("health-guardian:")),
        "{ids:?}"
    );
    assert!(
        ids.iter().any(|i| i.starts_with("db-maintainer:")),
        "{ids:?}"
    );
    assert!(!lock.exists(), "no lock left behind");
}
