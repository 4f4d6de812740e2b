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
