//! Scale benchmark of content-lifecycle and schedule-doctor (design/README.md §7, performance targets).
//!
//! `cargo bench --bench scale` (full scale: 100 000 displays, 500 000 content items, 50 000 schedules) or
//! `cargo bench --bench scale -- --displays 2000` for a small run (`--content` defaults to 5 × displays and
//! `--schedules` to displays / 2, the full-scale ratios; both can be given). Other options:
//! `--seed N` (7), `--concurrency N` (detail reads in flight, 16), `--no-agent-runs`, `--agent-run-timeout-s N`
//! (1800), `--agents content-lifecycle,schedule-doctor`.
//!
//! Steps:
//! 1. The tenant is generated once per argument set by `fixtures/gen_tenant.py` into
//!    `target/bench-data/tenant-seed<S>-d<D>-c<C>-s<N>.json` (the generator's `seeded …` lines are kept next to it).
//! 2. The sandbox runs in a **separate process** (`vizora-ops sandbox --fixture F --port 0 --no-throttle`); its load
//!    time and peak RSS (`VmHWM`) are reported apart from the agent figures. It is killed at the end.
//! 3. Per agent, a child process (this binary, `--phase walk`) plays the agent process: the **walk** (every list the
//!    agent reads through `vizora::Client` with a memory budget, very high rates and `max_list_items` 10 000 000,
//!    plus content-lifecycle's detail reads of every active item and live layout, 16 in flight) with wall time,
//!    request count and CPU per step; then the **local work**: the agent's pure detection functions over the fetched
//!    data, CPU time (`getrusage(RUSAGE_SELF)`, user + sys) per step, findings by type next to the generator's seeded
//!    counts; then the peak memory of that process (`VmHWM`). Targets (agent process): detection CPU < 2 s, peak
//!    memory < 200 MB.
//! 4. Per agent, another child (`--phase run`) runs the whole agent once in dry run through `runner::run_agent` with
//!    the caps raised, and reports wall time, exit code, CPU, peak memory, incidents by type and the requests the
//!    sandbox recorded (by method).
//!
//! Without `--bench` in its arguments (i.e. when `cargo test --all-targets` runs bench targets in test mode) it prints
//! a note and exits 0 at once. Figures are printed, never asserted.

mod content;
mod schedule;

use chrono::Utc;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::runner::{self, RunOptions, Wiring};
use vizora_ops::state::audit::AuditLog;
use vizora_ops::vizora::budget::{Limits, RateBudget};
use vizora_ops::vizora::{Client, ClientOptions, VizoraApi};

/// Prefix of the one machine-readable line a child prints (JSON after it).
const RESULT_PREFIX: &str = "SCALE-RESULT ";
const EMAIL: &str = "ops@example.test";
const PASSWORD: &str = "ops-demo-password";
const AGENTS: [&str; 2] = ["content-lifecycle", "schedule-doctor"];
/// Targets of the issue for the agent process.
const TARGET_DETECTION_CPU_S: f64 = 2.0;
const TARGET_PEAK_MB: f64 = 200.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(phase) = opt::<String>(&args, "--phase") {
        let r = match phase.as_str() {
            "walk" => child_walk(&args),
            "run" => child_run(&args),
            other => Err(anyhow::anyhow!("unknown phase {other}")),
        };
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scale child ({phase}): {e:#}");
                ExitCode::from(1)
            }
        };
    }
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "scale benchmark: not run in test mode (run it with `cargo bench --bench scale`; it starts a sandbox \
             over a generated 690 MB tenant)"
        );
        return ExitCode::SUCCESS;
    }
    match parent(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale benchmark failed: {e:#}");
            ExitCode::from(1)
        }
    }
}

// ─── small helpers ──────────────────────────────────────────────────────────────────────────────────────────────────

/// The value after `--name` in `args`, parsed.
fn opt<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

fn required(args: &[String], name: &str) -> anyhow::Result<String> {
    opt(args, name).ok_or_else(|| anyhow::anyhow!("missing {name}"))
}

/// CPU time of this process so far (user + system), seconds, all threads.
fn cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// `ru_maxrss` of this process, KiB: only a fallback where `/proc` has no `VmHWM`; Linux keeps `ru_maxrss` across
/// fork and exec, so in a child it can show the parent's peak.
fn maxrss_kib() -> u64 {
    // SAFETY: as above.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss.max(0) as u64
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM` = peak RSS, `VmRSS` = current RSS); `pid` `None` = this process.
fn proc_kib(pid: Option<u32>, key: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Wall and CPU cost of one step.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall_s: f64,
    cpu_s: f64,
}

/// Runs `f`, measuring its wall time and this process's CPU time.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Cost) {
    let (c0, w0) = (cpu_s(), Instant::now());
    let r = f();
    (
        r,
        Cost {
            wall_s: w0.elapsed().as_secs_f64(),
            cpu_s: cpu_s() - c0,
        },
    )
}

/// The generator's `seeded <category> <n>` lines.
fn parse_seeded(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next()? == "seeded").then_some(())?;
            let k = it.next()?.to_string();
            let n = it.next()?.parse().ok()?;
            Some((k, n))
        })
        .collect()
}

/// The sum of the seeded categories `keys`, formatted as `n (a + b)`; empty when none is known.
fn seeded_sum(seeded: &BTreeMap<String, u64>, keys: &[&str]) -> String {
    let known: Vec<(&str, u64)> = keys
        .iter()
        .filter_map(|k| seeded.get(*k).map(|n| (*k, *n)))
        .collect();
    if known.is_empty() {
        return "-".into();
    }
    let total: u64 = known.iter().map(|(_, n)| n).sum();
    format!(
        "{total} ({})",
        known
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(" + ")
    )
}

// ─── parent ─────────────────────────────────────────────────────────────────────────────────────────────────────────

struct Opts {
    seed: u64,
    displays: u64,
    content: u64,
    schedules: u64,
    concurrency: usize,
    agent_runs: bool,
    agent_run_timeout: Duration,
    agents: Vec<String>,
}

fn parent(args: &[String]) -> anyhow::Result<()> {
    let displays: u64 = opt(args, "--displays").unwrap_or(100_000);
    let o = Opts {
        seed: opt(args, "--seed").unwrap_or(7),
        displays,
        content: opt(args, "--content").unwrap_or(displays * 5),
        schedules: opt(args, "--schedules").unwrap_or(displays / 2),
        concurrency: opt(args, "--concurrency").unwrap_or(16).max(1),
        agent_runs: !flag(args, "--no-agent-runs"),
        agent_run_timeout: Duration::from_secs(opt(args, "--agent-run-timeout-s").unwrap_or(1800)),
        agents: opt::<String>(args, "--agents")
            .map(|a| a.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_else(|| AGENTS.iter().map(|s| s.to_string()).collect()),
    };
    for a in &o.agents {
        anyhow::ensure!(AGENTS.contains(&a.as_str()), "unknown agent {a}");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    println!(
        "== vizora-ops scale benchmark: seed {} · {} displays · {} content · {} schedules · {} CPU core(s)",
        o.seed,
        o.displays,
        o.content,
        o.schedules,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    // 1. The tenant.
    let (fixture, seeded_path, gen_note) = generate(&root, &o)?;
    let fixture_mb = std::fs::metadata(&fixture)?.len() as f64 / 1e6;
    println!(
        "tenant: {} ({fixture_mb:.0} MB, {gen_note})",
        fixture.display()
    );

    // 2. The sandbox, out of process.
    let sb = SandboxProc::start(&fixture)?;
    println!(
        "sandbox: pid {} at {} — ready {:.1} s after spawn (its own load time {}), RSS {:.0} MiB, peak {:.0} MiB",
        sb.pid(),
        sb.api_url,
        sb.ready_s,
        sb.load_s
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "?".into()),
        mib(proc_kib(Some(sb.pid()), "VmRSS").unwrap_or(0)),
        mib(proc_kib(Some(sb.pid()), "VmHWM").unwrap_or(0)),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let control = reqwest::Client::new();

    // 3 and 4. The agents.
    let exe = std::env::current_exe()?;
    let mut walks: Vec<(String, Option<Value>)> = Vec::new();
    let mut runs: Vec<(String, RunSummary)> = Vec::new();
    for agent in &o.agents {
        println!("\n== {agent}: walk and local work (agent process = child pid below)");
        rt.block_on(clear_requests(&control, &sb.control_url));
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--phase",
            "walk",
            "--agent",
            agent,
            "--api",
            &sb.api_url,
            "--concurrency",
            &o.concurrency.to_string(),
            "--seeded",
        ])
        .arg(&seeded_path);
        let (res, _, _) = run_child(cmd, Duration::from_secs(24 * 3600), "walk")?;
        walks.push((agent.clone(), res));
        if o.agent_runs {
            println!(
                "\n== {agent}: whole agent, one dry run through runner::run_agent (caps raised)"
            );
            rt.block_on(clear_requests(&control, &sb.control_url));
            let mut cmd = Command::new(&exe);
            cmd.args(["--phase", "run", "--agent", agent, "--api", &sb.api_url]);
            let (res, status, wall) = run_child(cmd, o.agent_run_timeout, "agent run")?;
            let requests = rt.block_on(count_requests(&control, &sb.control_url));
            if let Some((total, by_method)) = &requests {
                println!(
                    "  sandbox recorded {total} API request(s): {}",
                    by_method
                        .iter()
                        .map(|(m, n)| format!("{m} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            runs.push((
                agent.clone(),
                RunSummary {
                    result: res,
                    finished: status.is_some(),
                    wall_s: wall,
                    requests: requests.map(|r| r.0),
                },
            ));
        }
    }
    rt.block_on(clear_requests(&control, &sb.control_url));
    let sb_rss = proc_kib(Some(sb.pid()), "VmRSS").unwrap_or(0);
    let sb_hwm = proc_kib(Some(sb.pid()), "VmHWM").unwrap_or(0);

    // The table.
    println!("\n================ summary ================");
    println!(
        "tenant: seed {} · {} displays · {} content · {} schedules ({fixture_mb:.0} MB JSON)",
        o.seed, o.displays, o.content, o.schedules
    );
    println!(
        "sandbox (separate process, throttling off): load {} · ready after {:.1} s · RSS now {:.0} MiB · peak {:.0} MiB",
        sb.load_s
            .map(|s| format!("{s:.1} s"))
            .unwrap_or_else(|| "?".into()),
        sb.ready_s,
        mib(sb_rss),
        mib(sb_hwm)
    );
    println!(
        "\n{:<18} | {:>9} {:>9} {:>8} | {:>13} {:>8} | {:>10} {:>8}",
        "agent",
        "walk wall",
        "requests",
        "walk CPU",
        "detection CPU",
        "(< 2 s)",
        "peak RSS",
        "(<200MB)"
    );
    println!("{}", "-".repeat(104));
    for (agent, res) in &walks {
        match res {
            Some(r) => {
                let det = r["local"]["cpuS"].as_f64().unwrap_or(f64::NAN);
                let peak = r["memory"]["peakKiB"].as_u64().unwrap_or(0);
                println!(
                    "{:<18} | {:>8.2}s {:>9} {:>7.2}s | {:>12.3}s {:>8} | {:>7.0} MiB {:>8}",
                    agent,
                    r["walk"]["wallS"].as_f64().unwrap_or(f64::NAN),
                    r["walk"]["requests"].as_u64().unwrap_or(0),
                    r["walk"]["cpuS"].as_f64().unwrap_or(f64::NAN),
                    det,
                    if det < TARGET_DETECTION_CPU_S {
                        "ok"
                    } else {
                        "OVER"
                    },
                    mib(peak),
                    if mib(peak) * 1.048_576 < TARGET_PEAK_MB {
                        "ok"
                    } else {
                        "OVER"
                    },
                );
            }
            None => println!("{agent:<18} | walk child failed (see above)"),
        }
    }
    if !runs.is_empty() {
        println!(
            "\n{:<18} | {:>9} {:>5} {:>9} {:>9} {:>10} | incidents raised (open/escalated)",
            "whole agent (dry)", "wall", "exit", "requests", "CPU", "peak RSS"
        );
        println!("{}", "-".repeat(104));
        for (agent, r) in &runs {
            match (&r.result, r.finished) {
                (Some(v), true) => println!(
                    "{:<18} | {:>8.1}s {:>5} {:>9} {:>8.1}s {:>6.0} MiB | {}",
                    agent,
                    v["wallS"].as_f64().unwrap_or(r.wall_s),
                    v["exitCode"].as_i64().unwrap_or(-1),
                    r.requests
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "?".into()),
                    v["cpuS"].as_f64().unwrap_or(f64::NAN),
                    mib(v["peakKiB"].as_u64().unwrap_or(0)),
                    v["incidentsByType"]
                        .as_object()
                        .map(|m| m
                            .iter()
                            .map(|(k, n)| format!("{k} {n}"))
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                ),
                (_, false) => println!(
                    "{agent:<18} | did not finish within {:.0} s (killed); {} API request(s) recorded by then",
                    r.wall_s,
                    r.requests
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "?".into())
                ),
                (None, true) => println!(
                    "{agent:<18} | finished after {:.1} s without a result line (see above)",
                    r.wall_s
                ),
            }
        }
    }
    println!(
        "\ntargets (agent process, design/README.md §7): detection CPU < {TARGET_DETECTION_CPU_S} s, peak memory < \
         {TARGET_PEAK_MB} MB; the sandbox is excluded. Peak RSS = VmHWM of the child process that did the work."
    );
    drop(sb);
    Ok(())
}

struct RunSummary {
    result: Option<Value>,
    finished: bool,
    wall_s: f64,
    requests: Option<u64>,
}

/// Generates the tenant unless cached; returns (fixture, seeded-lines file, note).
fn generate(root: &Path, o: &Opts) -> anyhow::Result<(PathBuf, PathBuf, String)> {
    let dir = root.join("target").join("bench-data");
    std::fs::create_dir_all(&dir)?;
    let stem = format!(
        "tenant-seed{}-d{}-c{}-s{}",
        o.seed, o.displays, o.content, o.schedules
    );
    let json = dir.join(format!("{stem}.json"));
    let seeded = dir.join(format!("{stem}.seeded.txt"));
    if json.exists() && seeded.exists() {
        return Ok((json, seeded, "cached".into()));
    }
    println!("generating the tenant (the full scale takes about 25 s) …");
    let tmp = dir.join(format!("{stem}.json.tmp"));
    let t0 = Instant::now();
    let out = Command::new("python3")
        .arg(root.join("fixtures").join("gen_tenant.py"))
        .args([
            "--seed",
            &o.seed.to_string(),
            "--displays",
            &o.displays.to_string(),
            "--content",
            &o.content.to_string(),
            "--schedules",
            &o.schedules.to_string(),
            "--out",
        ])
        .arg(&tmp)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    anyhow::ensure!(
        out.status.success(),
        "gen_tenant.py failed ({}): {stderr}",
        out.status
    );
    std::fs::write(&seeded, &stderr)?;
    std::fs::rename(&tmp, &json)?;
    Ok((
        json,
        seeded,
        format!("generated in {:.1} s", t0.elapsed().as_secs_f64()),
    ))
}

/// The sandbox child process; killed on drop.
struct SandboxProc {
    child: Child,
    api_url: String,
    control_url: String,
    load_s: Option<f64>,
    ready_s: f64,
}

impl SandboxProc {
    fn start(fixture: &Path) -> anyhow::Result<SandboxProc> {
        let t0 = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vizora-ops"))
            .arg("sandbox")
            .arg("--fixture")
            .arg(fixture)
            .args(["--port", "0", "--no-throttle"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    // Keep draining so the sandbox never blocks on a full pipe.
                    continue;
                }
            }
        });
        let mut sb = SandboxProc {
            child,
            api_url: String::new(),
            control_url: String::new(),
            load_s: None,
            ready_s: 0.0,
        };
        let deadline = Instant::now() + Duration::from_secs(900);
        while sb.api_url.is_empty() || sb.control_url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok(l) => l,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(st) = sb.child.try_wait()? {
                        anyhow::bail!("the sandbox exited during load ({st})");
                    }
                    anyhow::ensure!(
                        Instant::now() < deadline,
                        "the sandbox did not print its URLs within 900 s"
                    );
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("the sandbox closed its stdout before printing its URLs")
                }
            };
            let t = line.trim();
            if let Some(rest) = t.split("(loaded in ").nth(1) {
                sb.load_s = rest.trim_end_matches(" s)").trim().parse().ok();
            } else if let Some(u) = t.strip_prefix("api:") {
                sb.api_url = u.trim().to_string();
            } else if let Some(u) = t.strip_prefix("control:") {
                sb.control_url = u.trim().to_string();
            }
        }
        sb.ready_s = t0.elapsed().as_secs_f64();
        Ok(sb)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn clear_requests(c: &reqwest::Client, control: &str) {
    let _ = c.post(format!("{control}/requests/clear")).send().await;
}

/// The API requests the sandbox recorded since the last clear: total and by method.
async fn count_requests(
    c: &reqwest::Client,
    control: &str,
) -> Option<(u64, BTreeMap<String, u64>)> {
    let v: Value = c
        .get(format!("{control}/requests"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let arr = v.as_array()?;
    let mut by = BTreeMap::new();
    for r in arr {
        let m = r["method"].as_str().unwrap_or("?");
        let key = if m == "POST" || m == "PATCH" || m == "PUT" || m == "DELETE" {
            format!("{m} {}", r["path"].as_str().unwrap_or("?"))
        } else {
            m.to_string()
        };
        *by.entry(key).or_insert(0) += 1;
    }
    Some((arr.len() as u64, by))
}

/// Runs a child phase, forwarding its stdout and catching its result line; kills it after `timeout`. Returns the
/// result JSON, the exit status (`None` when killed) and the wall time.
fn run_child(
    mut cmd: Command,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<(Option<Value>, Option<std::process::ExitStatus>, f64)> {
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    println!("  ({what}: child pid {})", child.id());
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(j) = line.strip_prefix(RESULT_PREFIX) {
                if let Ok(v) = serde_json::from_str(j) {
                    let _ = tx.send(v);
                }
            } else {
                println!("{line}");
            }
        }
    });
    let mut next_note = 60u64;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        let el = t0.elapsed();
        if el >= timeout {
            println!(
                "  {what}: still running after {:.0} s: killed",
                el.as_secs_f64()
            );
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if el.as_secs() >= next_note {
            println!("  {what}: still running after {} s …", el.as_secs());
            next_note += 60;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall = t0.elapsed().as_secs_f64();
    let _ = reader.join();
    if let Some(st) = &status
        && !st.success()
    {
        println!("  {what}: child exited with {st}");
    }
    Ok((rx.try_iter().last(), status, wall))
}

// ─── children: shared ───────────────────────────────────────────────────────────────────────────────────────────────

/// The benchmark configuration: the sandbox, memory budget, rates and caps raised, long deadline.
fn bench_config(api: &str, dir: &Path) -> anyhow::Result<Config> {
    let pairs: Vec<(String, String)> = [
        ("VALIDATOR_BASE_URL", api),
        ("OPS_EMAIL", EMAIL),
        ("OPS_PASSWORD", PASSWORD),
        ("OPS_LOG_DIR", &dir.join("logs").to_string_lossy()),
        ("OPS_RATE_LIMIT_BACKEND", "memory"),
        ("OPS_RATE_PER_SECOND", "1000000"),
        ("OPS_RATE_PER_MINUTE", "100000000"),
        ("OPS_RATE_PER_HOUR", "1000000000"),
        ("OPS_LOGINS_PER_MINUTE", "1000"),
        ("OPS_MAX_LIST_ITEMS", "10000000"),
        ("OPS_CONTENT_DETAIL_READS_PER_RUN", "10000000"),
        ("OPS_THUMBNAIL_PROBES_PER_RUN", "0"),
        ("OPS_RUN_DEADLINE_S", "86400"),
        ("OPS_HTTP_TIMEOUT_MS", "60000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Config::from_source(Source::from_pairs(pairs), dir).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The detail walk's and detection's view of memory at a point: (current RSS, peak RSS) in KiB.
fn mem_now() -> (u64, u64) {
    (
        proc_kib(None, "VmRSS").unwrap_or(0),
        proc_kib(None, "VmHWM").unwrap_or_else(maxrss_kib),
    )
}

/// One walk step's figures.
struct Step {
    name: String,
    wall_s: f64,
    cpu_s: f64,
    requests: u64,
    items: usize,
    note: String,
}

fn print_steps(title: &str, steps: &[Step]) {
    println!("  {title}");
    println!(
        "    {:<44} {:>9} {:>9} {:>9} {:>9}  note",
        "step", "wall", "CPU", "requests", "items"
    );
    for s in steps {
        println!(
            "    {:<44} {:>8.3}s {:>8.3}s {:>9} {:>9}  {}",
            s.name, s.wall_s, s.cpu_s, s.requests, s.items, s.note
        );
    }
}

/// One local-work step's figures.
struct Local {
    name: &'static str,
    cost: Cost,
    note: String,
}

fn print_local(steps: &[Local]) -> f64 {
    println!(
        "  local work (detection over the fetched data; CPU = getrusage user+sys of this process)"
    );
    println!("    {:<52} {:>9} {:>9}  result", "step", "CPU", "wall");
    let mut total = 0.0;
    for s in steps {
        total += s.cost.cpu_s;
        println!(
            "    {:<52} {:>8.3}s {:>8.3}s  {}",
            s.name, s.cost.cpu_s, s.cost.wall_s, s.note
        );
    }
    println!("    {:<52} {:>8.3}s", "total detection CPU", total);
    total
}

fn print_findings(rows: &[(&str, usize, String)]) {
    println!("  findings by type (sanity: the generator's seeded counts)");
    println!("    {:<34} {:>8}  seeded", "type", "found");
    for (k, n, seeded) in rows {
        println!("    {k:<34} {n:>8}  {seeded}");
    }
}

/// The logout at the end of a walk phase as one step.
async fn logout_step(client: &Client) -> Step {
    let (r0, c0, t0) = (client.stats().requests, cpu_s(), Instant::now());
    client.finish().await;
    Step {
        name: "logout".into(),
        wall_s: t0.elapsed().as_secs_f64(),
        cpu_s: cpu_s() - c0,
        requests: client.stats().requests - r0,
        items: 0,
        note: String::new(),
    }
}

/// A single GET through the client as one step.
async fn get_step(c: &Client, name: &str, path: &str) -> anyhow::Result<(Value, Step)> {
    let (r0, c0, t0) = (c.stats().requests, cpu_s(), Instant::now());
    let v = c.get(path).await?;
    let step = Step {
        name: name.into(),
        wall_s: t0.elapsed().as_secs_f64(),
        cpu_s: cpu_s() - c0,
        requests: c.stats().requests - r0,
        items: 1,
        note: String::new(),
    };
    Ok((v, step))
}

fn walk_total(steps: &[Step], wall_s: f64) -> Step {
    Step {
        name: "walk total (incl. login/logout)".into(),
        wall_s,
        cpu_s: steps.iter().map(|s| s.cpu_s).sum(),
        requests: steps.iter().map(|s| s.requests).sum(),
        items: steps.iter().map(|s| s.items).sum(),
        note: String::new(),
    }
}

// ─── child: walk and local work ─────────────────────────────────────────────────────────────────────────────────────

fn child_walk(args: &[String]) -> anyhow::Result<()> {
    let agent = required(args, "--agent")?;
    let api = required(args, "--api")?;
    let concurrency: usize = opt(args, "--concurrency").unwrap_or(16);
    let seeded = opt::<String>(args, "--seeded")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_seeded(&t))
        .unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let cfg = bench_config(&api, dir.path())?;
    vizora_ops::logging::set_quiet(true);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = Client::new(
        ClientOptions {
            base_url: api.clone(),
            email: Some(EMAIL.into()),
            password: Some(PASSWORD.into()),
            agent: agent.clone(),
            run_id: "scale-bench".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            notify_timeout: Duration::from_secs(5),
            retries: 3,
            max_list_items: 10_000_000,
            dry_run: true,
            deadline: Instant::now() + Duration::from_secs(24 * 3600),
        },
        Arc::new(RateBudget::memory(Limits {
            per_second: 1_000_000,
            per_minute: 100_000_000,
            per_hour: 1_000_000_000,
            logins_per_minute: 1000,
        })),
        AuditLog::new(dir.path().join("ops-audit.jsonl")),
    )?;
    let (base_rss, _) = mem_now();
    println!(
        "  agent process pid {} · RSS at start {:.0} MiB",
        std::process::id(),
        mib(base_rss)
    );
    let result = match agent.as_str() {
        "content-lifecycle" => content::content_lifecycle(&rt, client, &cfg, concurrency, &seeded)?,
        "schedule-doctor" => schedule::schedule_doctor(&rt, client, &cfg, &seeded)?,
        other => anyhow::bail!("unknown agent {other}"),
    };
    println!("{RESULT_PREFIX}{result}");
    Ok(())
}

fn memory_json(after_walk: (u64, u64), after_local: (u64, u64)) -> Value {
    let (rss_end, hwm) = after_local;
    println!(
        "  memory of the agent process: RSS after the walk {:.0} MiB (peak so far {:.0} MiB); RSS after detection \
         {:.0} MiB; peak (VmHWM) {:.0} MiB = {:.0} MB (target < {TARGET_PEAK_MB} MB)",
        mib(after_walk.0),
        mib(after_walk.1),
        mib(rss_end),
        mib(hwm),
        hwm as f64 * 1024.0 / 1e6,
    );
    json!({"afterWalkKiB": after_walk.0, "peakAfterWalkKiB": after_walk.1, "endKiB": rss_end, "peakKiB": hwm})
}

fn child_run(args: &[String]) -> anyhow::Result<()> {
    let agent = required(args, "--agent")?;
    let api = required(args, "--api")?;
    let name = AgentName::parse(&agent).map_err(|e| anyhow::anyhow!(e))?;
    let dir = tempfile::tempdir()?;
    let cfg = Arc::new(bench_config(&api, dir.path())?);
    vizora_ops::logging::set_quiet(true);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (c0, t0) = (cpu_s(), Instant::now());
    let report = rt.block_on(runner::run_agent(
        cfg,
        name,
        RunOptions { dry_run: true },
        Wiring::default(),
    ));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_s() - c0;
    let (_, hwm) = mem_now();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for i in &report.result.incidents {
        if i.is_active() {
            *by_type.entry(i.kind.clone()).or_default() += 1;
        }
    }
    println!(
        "  exit code {} after {wall:.1} s wall, {cpu:.1} s CPU; peak RSS (VmHWM) {:.0} MiB; {} report line(s); \
         fatal: {}",
        report.exit_code,
        mib(hwm),
        report.report.len(),
        report.fatal.as_deref().unwrap_or("none")
    );
    if let Some(st) = &report.result.stats {
        println!("  stats: {st}");
    }
    println!(
        "  incidents raised and still active by type: {}",
        by_type
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = json!({
        "agent": agent,
        "wallS": wall,
        "cpuS": cpu,
        "exitCode": report.exit_code,
        "fatal": report.fatal,
        "peakKiB": hwm,
        "incidentsByType": by_type,
        "stats": report.result.stats,
    });
    println!("{RESULT_PREFIX}{out}");
    Ok(())
}
