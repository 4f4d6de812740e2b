//! The real `vizora-ops` binary in a clean environment, for the tests that drive it as an operator would (bad input,
//! hostile state files, the terminal, `config check`). Included with `#[path = "support/bin.rs"] mod bin;` because
//! `CARGO_BIN_EXE_*` is only set for integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_vizora-ops");

/// A command for the binary with an empty environment (plus `PATH`), rooted in `dir`, with `vars` set: the in-memory
/// rate budget and an unreachable Redis, so that nothing of the host leaks in.
pub fn cmd(dir: &Path, vars: &[(&str, &str)]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OPS_ROOT_DIR", dir)
        .env("OPS_LOG_DIR", dir.join("logs"))
        .env("OPS_RATE_LIMIT_BACKEND", "memory")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .current_dir(dir)
        .kill_on_drop(true);
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// Runs the binary with `args`, failing the test (instead of hanging or filling the disk) after `limit`.
pub async fn run(dir: &Path, vars: &[(&str, &str)], args: &[&str], limit: Duration) -> Output {
    let child = cmd(dir, vars).args(args).output();
    tokio::time::timeout(limit, child)
        .await
        .unwrap_or_else(|_| panic!("vizora-ops {args:?} did not finish within {limit:?}"))
        .expect("binary runs")
}

/// The command's stdout as text (lossy).
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The command's stderr as text (lossy).
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An in-process sandbox serving the demo tenant on free ports, throttling off.
pub async fn demo_sandbox() -> vizora_ops::sandbox::Sandbox {
    vizora_ops::sandbox::Sandbox::start(
        vizora_ops::sandbox::DEMO_FIXTURE,
        vizora_ops::sandbox::SandboxOptions {
            port: 0,
            throttle: false,
            ..Default::default()
        },
    )
    .await
    .expect("sandbox starts")
}
