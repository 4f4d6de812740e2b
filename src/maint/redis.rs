//! Redis memory report for db-maintainer (agents.md 6.6.4): `INFO memory`, `INFO stats`, `DBSIZE`, then a bounded
//! `SCAN` over the keyspace (touching keys lets Redis reclaim expired ones), then `DBSIZE` and `INFO stats` again.
//!
//! Read-only by construction: no `DEL`, `UNLINK`, `FLUSH*`, `CONFIG SET` or any other write is ever sent (agents.md
//! 1.6). Native client (the `redis` crate), connect timeout 5 s, per-command timeout 10 s; messages are redacted so a
//! password in `REDIS_URL` never appears.

use super::MaintError;
use crate::redact::redact_str;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Connect timeout (6.6.4): 5 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-command response timeout (6.6.4): 10 s.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// `COUNT` hint of each `SCAN` call.
pub const SCAN_COUNT: u64 = 1000;
/// Default bound on the scan duration (6.6.4): 30 s.
pub const DEFAULT_SCAN_MAX_DURATION: Duration = Duration::from_secs(30);

/// The figures of one Redis maintenance pass. Memory in bytes; counters are Redis' cumulative counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisReport {
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `used_memory_peak`, bytes (when reported).
    pub used_memory_peak: Option<u64>,
    /// `maxmemory`, bytes; `0` means no limit (then no percentage is computed).
    pub maxmemory: u64,
    /// `mem_fragmentation_ratio` (when reported).
    pub fragmentation_ratio: Option<f64>,
    /// `expired_keys` before the scan.
    pub expired_keys_before: Option<u64>,
    /// `expired_keys` after the scan.
    pub expired_keys_after: Option<u64>,
    /// `evicted_keys` (after the scan).
    pub evicted_keys: Option<u64>,
    /// `DBSIZE` before the scan.
    pub dbsize_before: u64,
    /// `DBSIZE` after the scan (`None` if that second read failed).
    pub dbsize_after: Option<u64>,
    /// Keys returned by `SCAN` (may count a key twice if the table was rehashed, as SCAN allows).
    pub keys_scanned: u64,
    /// Whether `SCAN` reached cursor 0 (false when stopped by the key or time bound or an error).
    pub scan_complete: bool,
    /// Why the scan stopped early (`max keys`, `max duration`, or an error), if it did.
    pub scan_stopped: Option<String>,
    /// Scan duration, ms.
    pub scan_duration_ms: u64,
    /// Every command sent, in order (for the audit/report).
    pub commands: Vec<String>,
}

impl RedisReport {
    /// `used_memory` as a percentage (0–100) of `maxmemory`; `None` when `maxmemory` is 0 (unlimited).
    pub fn memory_used_pct(&self) -> Option<f64> {
        (self.maxmemory > 0).then(|| self.used_memory as f64 * 100.0 / self.maxmemory as f64)
    }
    /// Keys expired during the pass (`expired_keys` after − before), when both were read.
    pub fn expired_keys_delta(&self) -> Option<u64> {
        match (self.expired_keys_before, self.expired_keys_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b)),
            _ => None,
        }
    }
}

/// Parses the `key:value` lines of an `INFO` reply (comments and blank lines skipped).
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn err(command: &str, e: impl std::fmt::Display) -> MaintError {
    MaintError::Redis {
        command: command.to_string(),
        message: redact_str(&e.to_string()),
    }
}

/// Opens a multiplexed connection with the 5 s connect and 10 s command timeouts.
///
/// # Errors
/// [`MaintError::Config`] for an unparseable URL; [`MaintError::Connect`] (redacted) when unreachable or when
/// authentication fails; [`MaintError::Timeout`] after 5 s.
pub async fn connect(url: &str) -> Result<redis::aio::MultiplexedConnection, MaintError> {
    let target = redact_str(url);
    let client = redis::Client::open(url).map_err(|e| MaintError::Config {
        setting: "REDIS_URL".into(),
        message: redact_str(&format!("{target}: {e}")),
    })?;
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT));
    // The outer bound also covers AUTH/SELECT/HELLO during setup.
    match tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(1),
        client.get_multiplexed_async_connection_with_config(&cfg),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(MaintError::Connect {
            target,
            message: redact_str(&e.to_string()),
        }),
        Err(_) => Err(MaintError::Timeout {
            what: format!("connecting to {target}"),
            after_ms: CONNECT_TIMEOUT.as_millis() as u64,
        }),
    }
}

async fn run<T: redis::FromRedisValue>(
    con: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
    label: &str,
    commands: &mut Vec<String>,
) -> Result<T, MaintError> {
    commands.push(label.to_string());
    match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(con)).await {
        Ok(r) => r.map_err(|e| err(label, e)),
        Err(_) => Err(MaintError::Timeout {
            what: format!("redis {label}"),
            after_ms: COMMAND_TIMEOUT.as_millis() as u64,
        }),
    }
}

fn num(m: &HashMap<String, String>, k: &str) -> Option<u64> {
    m.get(k).and_then(|v| v.parse().ok())
}

/// Connects to `url` and produces the report of 6.6.4. The scan stops at cursor 0, after `scan_max_keys` keys
/// (`OPS_REDIS_SCAN_MAX_KEYS`, 100 000; 0 = no scan) or after `scan_max_duration` (30 s); a failed SCAN page or
/// second read leaves the report partial rather than failing it.
///
/// # Errors
/// Connection errors of [`connect`]; [`MaintError::Redis`]/[`MaintError::Timeout`] when `INFO memory`, `INFO stats`
/// or the first `DBSIZE` fails (the agent's `redis-unobservable`), or `used_memory` is missing.
pub async fn redis_report(
    url: &str,
    scan_max_keys: u64,
    scan_max_duration: Duration,
) -> Result<RedisReport, MaintError> {
    let mut con = connect(url).await?;
    let mut commands = Vec::new();
    let mem: String = run(
        &mut con,
        redis::cmd("INFO").arg("memory"),
        "INFO memory",
        &mut commands,
    )
    .await?;
    let mem = parse_info(&mem);
    let used_memory = num(&mem, "used_memory")
        .ok_or_else(|| err("INFO memory", "no used_memory in the reply"))?;
    let stats: String = run(
        &mut con,
        redis::cmd("INFO").arg("stats"),
        "INFO stats",
        &mut commands,
    )
    .await?;
    let stats = parse_info(&stats);
    let dbsize_before: u64 = run(&mut con, &redis::cmd("DBSIZE"), "DBSIZE", &mut commands).await?;

    let started = Instant::now();
    let mut cursor: u64 = 0;
    let mut keys_scanned: u64 = 0;
    let mut scan_complete = false;
    let mut scan_stopped = None;
    let mut scan_calls = 0u64;
    if scan_max_keys == 0 {
        scan_stopped = Some("max keys".to_string());
    } else {
        loop {
            if keys_scanned >= scan_max_keys {
                scan_stopped = Some("max keys".into());
                break;
            }
            if started.elapsed() >= scan_max_duration {
                scan_stopped = Some("max duration".into());
                break;
            }
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor).arg("COUNT").arg(SCAN_COUNT);
            scan_calls += 1;
            let page: Result<(u64, Vec<Vec<u8>>), _> = {
                let mut scratch = Vec::new();
                run(&mut con, &cmd, "SCAN", &mut scratch).await
            };
            match page {
                Ok((next, keys)) => {
                    keys_scanned += keys.len() as u64;
                    cursor = next;
                    if cursor == 0 {
                        scan_complete = true;
                        break;
                    }
                }
                Err(e) => {
                    scan_stopped = Some(e.to_string());
                    break;
                }
            }
        }
    }
    if scan_calls > 0 {
        commands.push(format!("SCAN <cursor> COUNT {SCAN_COUNT} (x{scan_calls})"));
    }
    let scan_duration_ms = started.elapsed().as_millis() as u64;
    let dbsize_after: Option<u64> = run(&mut con, &redis::cmd("DBSIZE"), "DBSIZE", &mut commands)
        .await
        .ok();
    let stats_after = run::<String>(
        &mut con,
        redis::cmd("INFO").arg("stats"),
        "INFO stats",
        &mut commands,
    )
    .await
    .ok()
    .map(|s| parse_info(&s));
    Ok(RedisReport {
        used_memory,
        used_memory_peak: num(&mem, "used_memory_peak"),
        maxmemory: num(&mem, "maxmemory").unwrap_or(0),
        fragmentation_ratio: mem
            .get("mem_fragmentation_ratio")
            .and_then(|v| v.parse().ok()),
        expired_keys_before: num(&stats, "expired_keys"),
        expired_keys_after: stats_after.as_ref().and_then(|s| num(s, "expired_keys")),
        evicted_keys: stats_after
            .as_ref()
            .and_then(|s| num(s, "evicted_keys"))
            .or_else(|| num(&stats, "evicted_keys")),
        dbsize_before,
        dbsize_after,
        keys_scanned,
        scan_complete,
        scan_stopped,
        scan_duration_ms,
        commands,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_parsed_and_unlimited_memory_has_no_percentage() {
        let m = parse_info(
            "# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\nmem_fragmentation_ratio:1.53\r\n",
        );
        assert_eq!(num(&m, "used_memory"), Some(1_048_576));
        assert_eq!(
            m.get("mem_fragmentation_ratio").map(String::as_str),
            Some("1.53")
        );
        let mut r = RedisReport {
            used_memory: 50,
            used_memory_peak: None,
            maxmemory: 0,
            fragmentation_ratio: None,
            expired_keys_before: Some(3),
            expired_keys_after: Some(5),
            evicted_keys: None,
            dbsize_before: 0,
            dbsize_after: None,
            keys_scanned: 0,
            scan_complete: true,
            scan_stopped: None,
            scan_duration_ms: 0,
            commands: vec![],
        };
        assert_eq!(r.memory_used_pct(), None);
        r.maxmemory = 200;
        assert_eq!(r.memory_used_pct(), Some(25.0));
        assert_eq!(r.expired_keys_delta(), Some(2));
    }
}
