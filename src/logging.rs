//! Log lines of agents.md 1.5 on `tracing` (design/stack.md: a kept library over our own code). The call API
//! (`info`/`warn`/`error(component, msg)`, [`warn_every`]/[`error_every`]) stays: each call is one `tracing` event
//! with the component as its `agent` field. One subscriber (installed on first use) formats them:
//! * [`LogFormat::Text`] (default): `[<timestamp>] [<component>] <INFO|WARNING|ERROR> <message>`, byte-identical to
//!   the lines before `tracing`;
//! * [`LogFormat::Json`] (`OPS_LOG_FORMAT=json`, agents.md 8.2): one JSON object per line for Loki/Vector.
//!
//! Redaction (5.9) and control-character escaping happen in the formatter, so no call site can forget them. Lines go
//! to stdout, or to stderr when `--json` output owns stdout. Events and spans of other crates (hyper, reqwest, …) are
//! filtered out: only `vizora_ops` targets are formatted.

use crate::model::ts;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Registry, reload};

/// The target of every event and span this crate formats; other targets never reach the formatter.
const TARGET: &str = "vizora_ops";

/// Format of log lines: `OPS_LOG_FORMAT` (agents.md 1.5, 8.2), read by `config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `text` (default): the agents.md 1.5 line `[<timestamp>] [<component>] <LEVEL> <message>`.
    #[default]
    Text,
    /// `json`: one JSON object per line with `timestamp` (RFC 3339 UTC, milliseconds), `level`
    /// (`INFO|WARNING|ERROR`), `agent`, `runId` (null outside a run), `message` and `spans` (each enclosing span's
    /// name and fields, outermost first).
    Json,
}

impl LogFormat {
    /// Parses an `OPS_LOG_FORMAT` value: `text` or `json` (case-insensitive, surrounding blanks ignored).
    ///
    /// # Errors
    /// Any other value, as `expected text or json, got "<value>"` (the caller prefixes the variable's name).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected text or json, got {s:?}")),
        }
    }

    /// The value as written in `OPS_LOG_FORMAT` (`text` or `json`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// How the one subscriber formats and where it writes; changing it rebuilds the formatting layer (a `reload`),
/// the formatter itself reads no global.
#[derive(Debug, Clone, Copy, Default)]
struct Settings {
    format: LogFormat,
    to_stderr: bool,
    quiet: bool,
}

/// The formatting layer: `fmt` with our event formatter, span fields kept as JSON (for the JSON format), our sink.
type FmtLayer = tracing_subscriber::fmt::Layer<Registry, JsonFields, LineFormat, Sink>;
type Handle = reload::Handle<Option<FmtLayer>, Registry>;

static SETTINGS: Mutex<Settings> = Mutex::new(Settings {
    format: LogFormat::Text,
    to_stderr: false,
    quiet: false,
});
static HANDLE: OnceLock<Option<Handle>> = OnceLock::new();

fn build_layer(s: Settings) -> Option<FmtLayer> {
    if s.quiet {
        return None;
    }
    Some(
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(LineFormat { format: s.format })
            .with_writer(Sink {
                to_stderr: s.to_stderr,
            }),
    )
}

/// Installs the process's subscriber on first use. `None` when another global subscriber was set first (an
/// embedding program's): events then go to it, already redacted and escaped by [`log`].
fn handle() -> Option<&'static Handle> {
    HANDLE
        .get_or_init(|| {
            let s = *SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
            let (layer, handle) = reload::Layer::new(build_layer(s));
            // `Targets` filters globally (for every layer), so other crates' events cost nothing.
            let subscriber = Registry::default()
                .with(layer)
                .with(Targets::new().with_target(TARGET, LevelFilter::INFO));
            tracing::subscriber::set_global_default(subscriber)
                .ok()
                .map(|()| handle)
        })
        .as_ref()
}

fn update(f: impl FnOnce(&mut Settings)) {
    let s = {
        let mut g = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
        *g
    };
    if let Some(h) = handle() {
        let _ = h.reload(build_layer(s));
    }
}

/// Sends log lines to stderr (used with `--json`, whose stdout is one JSON object).
pub fn log_to_stderr(on: bool) {
    update(|s| s.to_stderr = on);
}

/// Silences log lines entirely (the demo prints its own summary and keeps agent lines out of it).
pub fn set_quiet(on: bool) {
    update(|s| s.quiet = on);
}

/// Selects the line format (`OPS_LOG_FORMAT`, agents.md 8.2); `main` applies the loaded configuration's value.
pub fn set_format(format: LogFormat) {
    update(|s| s.format = format);
}

/// The `run` span of agents.md 1.3 (fields `run_id`, `agent`, `dry_run`): the runner wraps a run in it, so every line
/// of the run (also those of shared components like `api-client`) carries its run id in the JSON format.
pub fn run_span(run_id: &str, agent: &str, dry_run: bool) -> tracing::Span {
    handle();
    tracing::info_span!(target: TARGET, "run", run_id = run_id, agent = agent, dry_run = dry_run)
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

/// Emits one log event for `component` (an agent name, `ops-state`, `api-client`, `alerting`, …); the formatter
/// redacts and escapes it.
pub fn log(component: &str, level: Level, msg: &str) {
    // Under a foreign global subscriber our formatter does not run: redact and escape here, secrets never leak.
    let foreign;
    let msg = if handle().is_none() {
        foreign = clean(msg);
        foreign.as_str()
    } else {
        msg
    };
    match level {
        Level::Info => tracing::info!(target: TARGET, agent = component, message = msg),
        Level::Warning => tracing::warn!(target: TARGET, agent = component, message = msg),
        Level::Error => tracing::error!(target: TARGET, agent = component, message = msg),
    }
}

/// The fields of one of our events.
#[derive(Default)]
struct EventFields {
    agent: Option<String>,
    message: String,
}

impl tracing::field::Visit for EventFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "agent" => self.agent = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Redacts (5.9), then escapes control characters (1.5): one message is one inert line in either format.
fn clean(s: &str) -> String {
    escape_controls(&crate::redact::redact_str(s)).into_owned()
}

/// `run_id` → `runId`: the JSON log uses the state file's camelCase names.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut up = false;
    for c in name.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The event formatter of both formats (agents.md 1.5).
struct LineFormat {
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut f = EventFields::default();
        event.record(&mut f);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARNING",
            _ => "INFO",
        };
        let agent = f
            .agent
            .unwrap_or_else(|| event.metadata().target().to_string());
        let now = ts(chrono::Utc::now());
        match self.format {
            LogFormat::Text => writeln!(w, "[{now}] [{agent}] {level} {}", clean(&f.message)),
            LogFormat::Json => {
                let mut run_id = serde_json::Value::Null;
                let mut spans = Vec::new();
                if let Some(scope) = ctx.event_scope() {
                    for span in scope.from_root() {
                        let mut obj = serde_json::Map::new();
                        obj.insert("name".into(), span.name().into());
                        let ext = span.extensions();
                        // Span fields are stored by `JsonFields` as one JSON object.
                        let fields = ext
                            .get::<FormattedFields<N>>()
                            .and_then(|ff| serde_json::from_str::<serde_json::Value>(ff).ok());
                        if let Some(serde_json::Value::Object(m)) = fields {
                            for (k, v) in m {
                                let v = match v {
                                    serde_json::Value::String(s) => {
                                        serde_json::Value::String(clean(&s))
                                    }
                                    v => v,
                                };
                                if k == "run_id" {
                                    run_id = v.clone();
                                }
                                obj.insert(camel(&k), v);
                            }
                        }
                        spans.push(serde_json::Value::Object(obj));
                    }
                }
                let line = serde_json::json!({
                    "timestamp": now,
                    "level": level,
                    "agent": clean(&agent),
                    "runId": run_id,
                    "message": clean(&f.message),
                    "spans": spans,
                });
                writeln!(w, "{line}")
            }
        }
    }
}

/// Where formatted lines go: stdout through [`write_stdout`] (quiet on a closed pipe), or stderr.
struct Sink {
    to_stderr: bool,
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = SinkWriter;
    fn make_writer(&'a self) -> SinkWriter {
        SinkWriter {
            to_stderr: self.to_stderr,
        }
    }
}

/// One line's writer; `fmt` writes each formatted line with one `write_all`. Never fails: a closed stream only
/// drops lines (design/README.md §1).
struct SinkWriter {
    to_stderr: bool,
}

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.to_stderr {
            let _ = std::io::stderr().lock().write_all(buf);
        } else {
            write_stdout(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_accepts_text_and_json_only() {
        assert_eq!(LogFormat::parse("text"), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(" JSON "), Ok(LogFormat::Json));
        let e = LogFormat::parse("yaml").unwrap_err();
        assert_eq!(e, "expected text or json, got \"yaml\"");
        assert!(LogFormat::parse("").is_err());
        assert_eq!(LogFormat::Json.as_str(), "json");
    }

    #[test]
    fn span_field_names_become_camel_case() {
        assert_eq!(camel("run_id"), "runId");
        assert_eq!(camel("dry_run"), "dryRun");
        assert_eq!(camel("agent"), "agent");
    }
}
