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
        // Escaped after redaction so one message is always one line (agents.md 1.5): API text may carry CR/LF,
        // ESC/OSC sequences, NUL or BEL that would forge lines or drive the operator's terminal.
        escape_controls(&crate::redact::redact_str(msg))
    );
    if TO_STDERR.load(Ordering::SeqCst) {
        let _ = std::io::stderr().write_all(line.as_bytes());
    } else {
        write_stdout(line.as_bytes());
    }
}

/// Escapes every control character of `s` so it prints as inert text on one line (agents.md 1.5): `\n`, `\r`,
/// `\t`, `\0`, other C0 controls and DEL as `\x1b`-style escapes, C1 controls, the Unicode line/paragraph
/// separators and bidirectional overrides as `\u{202e}`. Printable text (any script) is unchanged; borrowed when
/// nothing needs escaping. Used by the log formatter and by every place that prints API-derived text to stdout.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    fn needs(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }
    if !s.chars().any(needs) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x80 && needs(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if needs(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to stdout; a closed stdout (`vizora-ops status --json | head -1`) ends the output quietly: the
/// first failed write marks stdout closed, later writes are skipped and the command finishes with its own exit code
/// (design/README.md §1). Chosen over restoring the default SIGPIPE action, which would kill a run between its
/// remediation and its state write.
pub fn write_stdout(bytes: &[u8]) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_all(bytes).and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Prints one line of command output to stdout (a newline is added), control characters escaped with
/// [`escape_controls`] so API-derived text in it can neither add lines nor drive the terminal, and without panicking
/// on a closed pipe (see [`write_stdout`]). Multi-line documents (JSON, deployment files) go through
/// [`write_stdout`] as they are.
pub fn out(line: impl AsRef<str>) {
    let mut s = escape_controls(line.as_ref()).into_owned();
    s.push('\n');
    write_stdout(s.as_bytes());
}

/// Prints a document made of whole lines (pretty JSON, whose strings serde already escapes; deployment files) to
/// stdout as it is, plus a final newline, quiet on a closed pipe (see [`write_stdout`]).
pub fn out_raw(text: impl AsRef<str>) {
    let mut s = String::with_capacity(text.as_ref().len() + 1);
    s.push_str(text.as_ref());
    s.push('\n');
    write_stdout(s.as_bytes());
}

/// `println!` for command output: formats, then prints through [`logging::out`](crate::logging::out) (control
/// characters escaped, one line per call, quiet on a closed pipe).
#[macro_export]
macro_rules! outln {
    () => { $crate::logging::out("") };
    ($($t:tt)*) => { $crate::logging::out(format!($($t)*)) };
}

/// `eprintln!` that escapes control characters and never panics on a closed stderr
/// ([`logging::err_out`](crate::logging::err_out)).
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::logging::err_out(format!($($t)*)) };
}

/// Prints one line to stderr, control characters escaped like [`out`], ignoring a closed stderr (no panic, unlike
/// `eprintln!`).
pub fn err_out(line: impl AsRef<str>) {
    let mut s = escape_controls(line.as_ref()).into_owned();
    s.push('\n');
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
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
