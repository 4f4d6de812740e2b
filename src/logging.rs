//! Log lines of agents.md 1.5: `[<timestamp>] [<component>] <INFO|WARNING|ERROR> <message>`, redacted (5.9).
//! Lines go to stdout, or to stderr when `--json` output owns stdout.

use crate::model::ts;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static TO_STDERR: AtomicBool = AtomicBool::new(false);
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sends log lines to stderr (used with `--json`, whose stdout is one JSON object).
pub fn log_to_stderr(on: bool) {
    TO_STDERR.store(on, Ordering::SeqCst);
}

/// Silences log lines entirely (the demo prints its own summary and keeps agent lines out of it).
pub fn set_quiet(on: bool) {
    QUIET.store(on, Ordering::SeqCst);
}

/// Log level of agents.md 1.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Written as `INFO`: normal progress, findings and the run's summary line.
    Info,
    /// Written as `WARNING`: something is off but the run continues.
    Warning,
    /// Written as `ERROR`: something failed, e.g. the fatal reason of a run that exits 2.
    Error,
}

/// Writes one redacted log line for `component` (an agent name, `ops-state`, `api-client`, `alerting`, …).
pub fn log(component: &str, level: Level, msg: &str) {
    if QUIET.load(Ordering::SeqCst) {
        return;
    }
    let lvl = match level {
        Level::Info => "INFO",
        Level::Warning => "WARNING",
        Level::Error => "ERROR",
    };
    let line = format!(
        "[{}] [{}] {} {}\n",
        ts(chrono::Utc::now()),
        component,
        lvl,
        crate::redact::redact_str(msg)
    );
    if TO_STDERR.load(Ordering::SeqCst) {
        let _ = std::io::stderr().write_all(line.as_bytes());
    } else {
        let _ = std::io::stdout().write_all(line.as_bytes());
    }
}

/// INFO line.
pub fn info(component: &str, msg: impl AsRef<str>) {
    log(component, Level::Info, msg.as_ref());
}
/// WARNING line.
pub fn warn(component: &str, msg: impl AsRef<str>) {
    log(component, Level::Warning, msg.as_ref());
}
/// ERROR line.
pub fn error(component: &str, msg: impl AsRef<str>) {
    log(component, Level::Error, msg.as_ref());
}

/// Last time each rate-limited cause was logged (process-wide).
static LAST_BY_CAUSE: std::sync::Mutex<
    Option<std::collections::HashMap<String, std::time::Instant>>,
> = std::sync::Mutex::new(None);

/// Whether a line for `cause` may be written now: at most one per second per cause (common working rules: never
/// flood). Lines held back are dropped, not queued.
fn may_log(cause: &str) -> bool {
    let now = std::time::Instant::now();
    let mut g = LAST_BY_CAUSE.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(Default::default);
    match map.get(cause) {
        Some(t) if now.duration_since(*t) < std::time::Duration::from_secs(1) => false,
        _ => {
            // Bounded memory: causes are few (a lock path, a file); forget them all if a caller invents many.
            if map.len() >= 1024 {
                map.clear();
            }
            map.insert(cause.to_string(), now);
            true
        }
    }
}

/// WARNING line for `component`, written at most once per second per `cause` (e.g. `"budget-lock:<path>"`); use it
/// for any warning that can repeat in a loop. Returns whether the line was written.
pub fn warn_every(component: &str, cause: &str, msg: impl AsRef<str>) -> bool {
    let ok = may_log(cause);
    if ok {
        warn(component, msg);
    }
    ok
}

/// ERROR line for `component`, written at most once per second per `cause` (like [`warn_every`]). Returns whether
/// the line was written.
pub fn error_every(component: &str, cause: &str, msg: impl AsRef<str>) -> bool {
    let ok = may_log(cause);
    if ok {
        error(component, msg);
    }
    ok
}
