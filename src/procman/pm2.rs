//! PM2 (agents.md 6.1, 6.1.2, 6.1.3; stack.md §2): `pm2 jlist`, `pm2 restart <app|pm_id>`, `pm2 reload <pm_id>`,
//! and the ecosystem file's `max_memory_restart` values read through `node -e <fixed script> -- <file>`.

use super::cmd::{run, strip_ansi};
use super::{CommandRecord, PmError, ProcStatus, ProcTarget, ProcessInfo, ProcessManager};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// PM2 as the process manager. Commands: `<bin> jlist` (timeout `timeout_jlist`, `OPS_PM2_JLIST_TIMEOUT_S`, default
/// 15 s) and `<bin> restart|reload <target>` (timeout `timeout_cmd`, `OPS_PM2_TIMEOUT_S`, default 30 s).
#[derive(Debug, Clone)]
pub struct Pm2 {
    /// `OPS_PM2_BIN`: a name looked up on `PATH` or a path.
    pub bin: String,
    /// Timeout of `restart` and `reload`.
    pub timeout_cmd: Duration,
    /// Timeout of `jlist`.
    pub timeout_jlist: Duration,
    /// `PM2_HOME` for the child (tests use an isolated daemon); `None` inherits the environment.
    pub pm2_home: Option<PathBuf>,
}

impl Pm2 {
    /// PM2 at `bin` with the default timeouts (30 s commands, 15 s jlist) and the inherited `PM2_HOME`.
    pub fn new(bin: impl Into<String>) -> Pm2 {
        Pm2 {
            bin: bin.into(),
            timeout_cmd: Duration::from_secs(30),
            timeout_jlist: Duration::from_secs(15),
            pm2_home: None,
        }
    }

    fn envs(&self) -> Vec<(&'static str, OsString)> {
        match &self.pm2_home {
            Some(h) => vec![("PM2_HOME", h.clone().into_os_string())],
            None => Vec::new(),
        }
    }

    async fn command(&self, verb: &str, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        let arg = match target {
            ProcTarget::Unit(u) => {
                return Err(PmError::Rejected(format!(
                    "{u:?} is a systemd unit, not a PM2 app or pm_id"
                )));
            }
            t => t.arg()?,
        };
        let args = [verb.to_string(), arg];
        Ok(run(&self.bin, &args, &self.envs(), self.timeout_cmd)
            .await?
            .record)
    }
}

#[async_trait]
impl ProcessManager for Pm2 {
    fn kind(&self) -> &'static str {
        "pm2"
    }

    /// `pm2 jlist`: a non-zero exit is `Failed`, an unparseable output `BadOutput` (agents.md 6.1.2:
    /// `process-manager-unavailable`).
    async fn list(&self) -> Result<Vec<ProcessInfo>, PmError> {
        let ran = run(
            &self.bin,
            &["jlist".to_string()],
            &self.envs(),
            self.timeout_jlist,
        )
        .await?;
        parse_jlist(&ran.stdout)
    }

    /// `pm2 restart <app|pm_id>`.
    async fn restart(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        self.command("restart", target).await
    }

    /// `pm2 reload <pm_id>` (an app name is accepted too).
    async fn reload(&self, target: &ProcTarget) -> Result<CommandRecord, PmError> {
        self.command("reload", target).await
    }
}

// The only jlist fields ever read (agents.md 5.9). Everything else, environment blocks included, is skipped by
// serde without being stored.
#[derive(Deserialize)]
struct RawProc {
    name: Option<Value>,
    pm_id: Option<Value>,
    monit: Option<RawMonit>,
    pm2_env: Option<RawEnv>,
}

#[derive(Deserialize)]
struct RawMonit {
    memory: Option<Value>,
}

#[derive(Deserialize)]
struct RawEnv {
    status: Option<Value>,
    exec_mode: Option<Value>,
    restart_time: Option<Value>,
    pm_uptime: Option<Value>,
    max_memory_restart: Option<Value>,
}

/// Parses `pm2 jlist` stdout. Lines before the JSON array (warnings, the first-run banner, `[PM2] Spawning…`) are
/// skipped: the array starts on the first line beginning with `[` followed by `{`, `]` or the end of the line.
/// Only the fields of agents.md 5.9 are read; `max_memory_restart` may be bytes or a PM2 size string. Errors never
/// quote the output.
pub fn parse_jlist(stdout: &str) -> Result<Vec<ProcessInfo>, PmError> {
    let mut offset = 0;
    let mut first_err: Option<String> = None;
    let mut candidates = 0;
    for line in stdout.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        let Some(after) = trimmed.strip_prefix('[') else {
            continue;
        };
        let after = after.trim_start();
        if !(after.is_empty() || after.starts_with('{') || after.starts_with(']')) {
            continue;
        }
        candidates += 1;
        let rest = &stdout[start + (line.len() - trimmed.len())..];
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Vec<RawProc>>();
        match stream.next() {
            Some(Ok(raw)) => {
                return raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| convert(i, r))
                    .collect();
            }
            Some(Err(e)) => {
                first_err.get_or_insert_with(|| describe_json_error(&e));
            }
            None => {}
        }
    }
    Err(PmError::BadOutput(match first_err {
        Some(e) => format!("pm2 jlist: invalid JSON ({e})"),
        None if candidates == 0 => {
            format!(
                "pm2 jlist printed no JSON array ({} line(s) of output)",
                stdout.lines().count()
            )
        }
        None => "pm2 jlist: empty JSON".to_string(),
    }))
}

/// A serde_json error without any quoted input: its category and position only.
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected shape",
        Category::Eof => "truncated",
    };
    format!(
        "{what} at line {} column {} of the array",
        e.line(),
        e.column()
    )
}

fn convert(i: usize, r: RawProc) -> Result<ProcessInfo, PmError> {
    let name = match r.name {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(PmError::BadOutput(format!(
                "pm2 jlist: entry {i} has no name"
            )));
        }
    };
    let env = r.pm2_env;
    let status = match env.as_ref().and_then(|e| e.status.as_ref()) {
        Some(Value::String(s)) => ProcStatus::from_pm2(s),
        _ => ProcStatus::Other("unknown".to_string()),
    };
    let exec_mode = env.as_ref().and_then(|e| match &e.exec_mode {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    });
    let max_memory_restart = env.as_ref().and_then(|e| match &e.max_memory_restart {
        Some(Value::String(s)) => parse_memory_limit(s),
        Some(v) => as_u64(v).filter(|n| *n > 0),
        None => None,
    });
    Ok(ProcessInfo {
        name,
        pm_id: r
            .pm_id
            .as_ref()
            .and_then(as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        status,
        exec_mode,
        memory_bytes: r.monit.and_then(|m| m.memory).as_ref().and_then(as_u64),
        max_memory_restart,
        restart_time: env
            .as_ref()
            .and_then(|e| e.restart_time.as_ref())
            .and_then(as_u64),
        pm_uptime: env
            .as_ref()
            .and_then(|e| e.pm_uptime.as_ref())
            .and_then(as_i64),
    })
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a memory limit (agents.md 6.1.2): a number is bytes, or `<number>[K|M|G][B]`, case-insensitive, 1024-based
/// (`200M` = 209 715 200, `1.5G`, `512kb`, `100B`). Surrounding spaces and a space before the unit are allowed.
/// Anything else, a negative value or zero is `None` (unknown: the check is skipped, never defaulted).
pub fn parse_memory_limit(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim_start().to_ascii_uppercase();
    let mult: u64 = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        "G" | "GB" => 1 << 30,
        _ => return None,
    };
    let bytes = (n * mult as f64).floor();
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return None;
    }
    Some(bytes as u64)
}

/// Prefix of the line that carries the reader's result (the ecosystem file may print lines of its own).
const ECOSYSTEM_MARK: &str = "@@VIZORA_ECOSYSTEM_LIMITS@@";

/// The fixed script given to `node -e`: loads the file named by its only argument and prints `{app: limit}` for the
/// apps that set `max_memory_restart`. Nothing else (environment blocks included) leaves the node process.
const ECOSYSTEM_SCRIPT: &str = r#"'use strict';
const path = require('path');
let cfg;
try {
  cfg = require(path.resolve(process.argv[1]));
} catch (e) {
  process.stderr.write('cannot load the ecosystem file: ' + String((e && e.message) || e).split('\n')[0] + '\n');
  process.exit(3);
}
if (cfg && typeof cfg === 'object' && cfg.apps === undefined && cfg.default !== undefined) cfg = cfg.default;
let apps = cfg && typeof cfg === 'object' && cfg.apps !== undefined ? cfg.apps : cfg;
if (!Array.isArray(apps)) apps = apps && typeof apps === 'object' ? [apps] : [];
const out = {};
for (const a of apps) {
  if (a && typeof a === 'object' && typeof a.name === 'string' && a.max_memory_restart !== undefined && a.max_memory_restart !== null) {
    out[a.name] = String(a.max_memory_restart);
  }
}
process.stdout.write('\n@@VIZORA_ECOSYSTEM_LIMITS@@' + JSON.stringify(out) + '\n');
process.exit(0);
"#;

/// Reads `max_memory_restart` per app from a PM2 ecosystem file (agents.md 6.1, 6.1.2) with
/// `<node_bin> -e <fixed script> -- <file>` (the file path is one argv element, not validated as a name; agents.md 5.6 gives the read 10 s).
/// Limits are parsed with [`parse_memory_limit`]; an app whose limit cannot be parsed is left out (unknown) and
/// logged as a WARNING. A file that cannot be loaded is `Failed` with the loader's first error line.
pub async fn read_ecosystem_limits(
    node_bin: &str,
    file: &Path,
    timeout: Duration,
) -> Result<HashMap<String, u64>, PmError> {
    let args = [
        "-e".to_string(),
        ECOSYSTEM_SCRIPT.to_string(),
        "--".to_string(),
        file.to_string_lossy().into_owned(),
    ];
    let ran = run(node_bin, &args, &[], timeout).await?;
    let line = ran
        .stdout
        .lines()
        .rev()
        .find_map(|l| {
            strip_ansi(l)
                .trim()
                .strip_prefix(ECOSYSTEM_MARK)
                .map(str::to_string)
        })
        .ok_or_else(|| PmError::BadOutput("ecosystem reader printed no result".to_string()))?;
    let raw: HashMap<String, Value> = serde_json::from_str(&line).map_err(|e| {
        PmError::BadOutput(format!("ecosystem reader: {}", describe_json_error(&e)))
    })?;
    let mut out = HashMap::new();
    for (app, v) in raw {
        let parsed = match &v {
            Value::String(s) => parse_memory_limit(s),
            other => as_u64(other).filter(|n| *n > 0),
        };
        match parsed {
            Some(n) => {
                out.insert(app, n);
            }
            None => crate::logging::warn(
                "health-guardian",
                format!(
                    "ecosystem file: max_memory_restart of app {app:?} is not a size ({v}); limit unknown"
                ),
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits_are_1024_based_and_case_insensitive() {
        assert_eq!(parse_memory_limit("209715200"), Some(209_715_200));
        assert_eq!(parse_memory_limit("200M"), Some(200 * 1024 * 1024));
        assert_eq!(parse_memory_limit("200mb"), Some(200 * 1024 * 1024));
        assert_eq!(parse_memory_limit("512K"), Some(512 * 1024));
        assert_eq!(parse_memory_limit("512kB"), Some(512 * 1024));
        assert_eq!(parse_memory_limit("1G"), Some(1 << 30));
        assert_eq!(parse_memory_limit("1.5g"), Some(3 << 29));
        assert_eq!(parse_memory_limit(" 100B "), Some(100));
        assert_eq!(parse_memory_limit("100 M"), Some(100 << 20));
        for bad in [
            "", "M", "abc", "-5M", "5T", "5MiB", "1..2M", ".5M", "0", "0M", "5 M B",
        ] {
            assert_eq!(parse_memory_limit(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn jlist_skips_banner_and_pm2_lines_and_reads_only_allowed_fields() {
        let out = "\n  -------\n[PM2] Spawning PM2 daemon with pm2_home=/tmp/x\n[PM2][WARN] something\n\
            [{\"pid\":1,\"name\":\"vizora-web\",\"pm_id\":3,\"monit\":{\"memory\":1048576,\"cpu\":1},\
            \"pm2_env\":{\"status\":\"online\",\"exec_mode\":\"cluster_mode\",\"restart_time\":4,\
            \"pm_uptime\":1795940641883,\"max_memory_restart\":209715200,\
            \"env\":{\"DB_PASSWORD\":\"hunter2-secret\"},\"DB_PASSWORD\":\"hunter2-secret\"}}]\n";
        let v = parse_jlist(out).unwrap();
        assert_eq!(
            v,
            vec![ProcessInfo {
                name: "vizora-web".into(),
                pm_id: Some(3),
                status: ProcStatus::Online,
                exec_mode: Some("cluster_mode".into()),
                memory_bytes: Some(1_048_576),
                max_memory_restart: Some(209_715_200),
                restart_time: Some(4),
                pm_uptime: Some(1_795_940_641_883),
            }]
        );
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn jlist_errors_never_quote_the_output() {
        let out = "[{\"name\":\"a\",\"pm2_env\":{\"env\":{\"TOKEN\":\"hunter2-secret\"}},]";
        let e = parse_jlist(out).unwrap_err();
        assert!(matches!(e, PmError::BadOutput(_)), "{e:?}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = parse_jlist("[PM2] only chatter\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unparseable process-manager output: pm2 jlist printed no JSON array (1 line(s) of output)"
        );
        assert_eq!(parse_jlist("[]").unwrap(), vec![]);
        assert!(matches!(
            parse_jlist("[{\"pm_id\":1}]"),
            Err(PmError::BadOutput(_))
        ));
    }

    #[test]
    fn jlist_string_limits_and_missing_fields() {
        let out = r#"[{"name":"a","pm2_env":{"status":"waiting restart","max_memory_restart":"300M"}},{"name":"b"}]"#;
        let v = parse_jlist(out).unwrap();
        assert_eq!(
            v[0].status,
            ProcStatus::Transitional("waiting restart".into())
        );
        assert_eq!(v[0].max_memory_restart, Some(300 << 20));
        assert_eq!(v[0].pm_id, None);
        assert_eq!(v[1].status, ProcStatus::Other("unknown".into()));
        assert_eq!(v[1].memory_bytes, None);
    }
}
