//! PM2 process manager (agents.md 6.1.2, 6.1.3, 1.6) against a REAL PM2 (`VIZORA_TEST_PM2_BIN`, installed by
//! scripts/test.sh; each test runs its own daemon in a temporary `PM2_HOME` and kills it at the end, also on panic),
//! plus fake `pm2` scripts for timeouts, odd output and argv recording.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use vizora_ops::procman::{
    Pm2, PmError, ProcStatus, ProcTarget, ProcessInfo, ProcessManager, parse_jlist,
    read_ecosystem_limits,
};

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/pm2/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A real PM2 daemon in its own `PM2_HOME`; `pm2 kill` on drop (panics included).
struct RealPm2 {
    bin: String,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl RealPm2 {
    fn start() -> RealPm2 {
        let bin = support::pm2_bin();
        let home = tempfile::Builder::new()
            .prefix("pm2h")
            .tempdir()
            .expect("temp PM2_HOME");
        let work = tempfile::tempdir().expect("temp work dir");
        RealPm2 { bin, home, work }
    }

    /// Runs the pm2 CLI directly (test setup only, argv only).
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("PM2_HOME", self.home.path())
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("run pm2");
        assert!(
            out.status.success(),
            "pm2 {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn manager(&self) -> Pm2 {
        let mut pm = Pm2::new(self.bin.clone());
        pm.pm2_home = Some(self.home.path().to_path_buf());
        pm
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}

impl Drop for RealPm2 {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .arg("kill")
            .env("PM2_HOME", self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Polls `pm.list()` until `pred` holds (panics with the last list after `secs`).
async fn wait_until(
    pm: &Pm2,
    secs: u64,
    what: &str,
    pred: impl Fn(&[ProcessInfo]) -> bool,
) -> Vec<ProcessInfo> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let list = pm.list().await.expect("pm2 jlist");
        if pred(&list) {
            return list;
        }
        if Instant::now() > end {
            panic!("timed out waiting for {what}; last jlist: {list:#?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn find<'a>(list: &'a [ProcessInfo], name: &str) -> Option<&'a ProcessInfo> {
    list.iter().find(|p| p.name == name)
}

fn status_of(list: &[ProcessInfo], name: &str) -> Option<ProcStatus> {
    find(list, name).map(|p| p.status.clone())
}

/// Writes an executable script (a fake `pm2`).
fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.to_string_lossy().into_owned()
}

/// A fake `pm2` that appends each argument on its own line (then `--end--`) to `<dir>/argv.log` and prints `out`.
fn recording_pm2(dir: &Path, out: &str) -> (String, PathBuf) {
    let log = dir.join("argv.log");
    let body = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{log}'; done\nprintf '%s\\n' --end-- >> '{log}'\n\
         cat <<'VIZORA_EOF'\n{out}\nVIZORA_EOF\n",
        log = log.display()
    );
    (script(dir, "pm2", &body), log)
}

/// The recorded argument vectors (without the program).
fn recorded(log: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for l in text.lines() {
        if l == "--end--" {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(l.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Real PM2

#[tokio::test]
async fn real_jlist_reads_name_pm_id_status_memory_and_limit_and_never_the_environment() {
    let pm2 = RealPm2::start();
    let secret = "hunter2-vizora-secret-value";
    pm2.cli_env(
        &[
            "start",
            &fixture("server.js"),
            "--name",
            "web-a",
            "--max-memory-restart",
            "200M",
        ],
        &[("VIZORA_FAKE_DB_PASSWORD", secret)],
    );
    pm2.cli(&["start", &fixture("server.js"), "--name", "web-b"]);
    let pm = pm2.manager();
    assert_eq!(pm.kind(), "pm2");
    let list = wait_until(&pm, 30, "both online with memory", |l| {
        ["web-a", "web-b"].iter().all(|n| {
            find(l, n)
                .is_some_and(|p| p.status == ProcStatus::Online && p.memory_bytes.unwrap_or(0) > 0)
        })
    })
    .await;
    let a = find(&list, "web-a").unwrap();
    let b = find(&list, "web-b").unwrap();
    assert_eq!(a.max_memory_restart, Some(200 * 1024 * 1024));
    assert_eq!(b.max_memory_restart, None);
    assert_ne!(a.pm_id, b.pm_id);
    assert!(a.pm_id.is_some() && b.pm_id.is_some());
    assert_eq!(a.exec_mode.as_deref(), Some("fork_mode"));
    assert_eq!(a.restart_time, Some(0));
    assert!(
        a.pm_uptime.unwrap_or(0) > 1_600_000_000_000,
        "pm_uptime is epoch ms: {:?}",
        a.pm_uptime
    );
    assert!(a.memory_bytes.unwrap() > 1024 * 1024);

    // The raw jlist carries the app's environment; nothing parsed keeps it.
    let raw = String::from_utf8_lossy(&pm2.cli(&["jlist"]).stdout).into_owned();
    assert!(
        raw.contains(secret),
        "precondition: PM2 puts the environment into jlist"
    );
    assert!(!format!("{list:?}").contains(secret));
    assert!(!serde_json::to_string(&list).unwrap().contains(secret));
}

#[tokio::test]
async fn real_restart_of_an_errored_process_brings_it_online() {
    let pm2 = RealPm2::start();
    let flag = pm2.path("crash.flag");
    std::fs::write(&flag, "x").unwrap();
    let eco = pm2.path("eco.json");
    let apps = serde_json::json!({"apps": [{
        "name": "flaky", "script": fixture("server.js"), "args": ["--fail-if", flag.to_string_lossy()],
        "max_restarts": 1, "min_uptime": 10000, "restart_delay": 0
    }]});
    std::fs::write(&eco, apps.to_string()).unwrap();
    pm2.cli(&["start", eco.to_str().unwrap()]);
    let pm = pm2.manager();
    let list = wait_until(&pm, 30, "flaky errored", |l| {
        status_of(l, "flaky") == Some(ProcStatus::Errored)
    })
    .await;
    let id = find(&list, "flaky").unwrap().pm_id.expect("pm_id");

    std::fs::remove_file(&flag).unwrap();
    let rec = pm
        .restart(&ProcTarget::PmId(id))
        .await
        .expect("pm2 restart <pm_id>");
    assert_eq!(
        rec.argv,
        vec![pm2.bin.clone(), "restart".into(), id.to_string()]
    );
    assert_eq!(rec.exit_code, Some(0));
    wait_until(&pm, 30, "flaky online", |l| {
        status_of(l, "flaky") == Some(ProcStatus::Online)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let list = pm.list().await.unwrap();
    assert_eq!(
        status_of(&list, "flaky"),
        Some(ProcStatus::Online),
        "stays online: {list:#?}"
    );
}

#[tokio::test]
async fn real_process_failing_at_start_is_errored_and_restart_by_app_name_runs() {
    let pm2 = RealPm2::start();
    let eco = pm2.path("eco.json");
    let apps = serde_json::json!({"apps": [{
        "name": "broken", "script": fixture("fail_start.js"), "max_restarts": 0, "min_uptime": 10000,
        "restart_delay": 0
    }]});
    std::fs::write(&eco, apps.to_string()).unwrap();
    pm2.cli(&["start", eco.to_str().unwrap()]);
    let pm = pm2.manager();
    wait_until(&pm, 30, "broken errored", |l| {
        status_of(l, "broken") == Some(ProcStatus::Errored)
    })
    .await;
    let rec = pm
        .restart(&ProcTarget::App("broken".into()))
        .await
        .expect("pm2 restart <app>");
    assert_eq!(
        rec.argv,
        vec![pm2.bin.clone(), "restart".into(), "broken".into()]
    );
}

#[tokio::test]
async fn real_stopped_process_shows_stopped() {
    let pm2 = RealPm2::start();
    pm2.cli(&["start", &fixture("server.js"), "--name", "halted"]);
    let pm = pm2.manager();
    wait_until(&pm, 30, "halted online", |l| {
        status_of(l, "halted") == Some(ProcStatus::Online)
    })
    .await;
    pm2.cli(&["stop", "halted"]);
    let list = pm.list().await.unwrap();
    assert_eq!(
        status_of(&list, "halted"),
        Some(ProcStatus::Stopped),
        "{list:#?}"
    );
}

#[tokio::test]
async fn real_crash_via_request_is_restarted_by_pm2_and_counted() {
    let pm2 = RealPm2::start();
    let port_file = pm2.path("port");
    pm2.cli(&[
        "start",
        &fixture("server.js"),
        "--name",
        "crashy",
        "--",
        "--port-file",
        port_file.to_str().unwrap(),
    ]);
    let pm = pm2.manager();
    wait_until(&pm, 30, "crashy online", |l| {
        status_of(l, "crashy") == Some(ProcStatus::Online)
    })
    .await;
    let port = {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(p) = std::fs::read_to_string(&port_file)
                && let Ok(p) = p.trim().parse::<u16>()
            {
                break p;
            }
            assert!(Instant::now() < end, "server wrote no port");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = reqwest::get(format!("http://127.0.0.1:{port}/crash")).await;
    let list = wait_until(&pm, 30, "crashy restarted by PM2", |l| {
        find(l, "crashy").is_some_and(|p| p.restart_time.unwrap_or(0) >= 1)
    })
    .await;
    assert!(find(&list, "crashy").unwrap().restart_time.unwrap() >= 1);
}

#[tokio::test]
async fn real_reload_of_a_cluster_instance_runs() {
    let pm2 = RealPm2::start();
    pm2.cli(&[
        "start",
        &fixture("server.js"),
        "--name",
        "clustered",
        "-i",
        "2",
    ]);
    let pm = pm2.manager();
    let list = wait_until(&pm, 30, "two cluster instances online", |l| {
        l.iter()
            .filter(|p| p.name == "clustered" && p.status == ProcStatus::Online)
            .count()
            == 2
    })
    .await;
    let inst = find(&list, "clustered").unwrap();
    assert_eq!(inst.exec_mode.as_deref(), Some("cluster_mode"));
    let id = inst.pm_id.unwrap();
    let rec = pm
        .reload(&ProcTarget::PmId(id))
        .await
        .expect("pm2 reload <pm_id>");
    assert_eq!(
        rec.argv,
        vec![pm2.bin.clone(), "reload".into(), id.to_string()]
    );
    wait_until(&pm, 30, "reloaded instance online", |l| {
        l.iter()
            .any(|p| p.pm_id == Some(id) && p.status == ProcStatus::Online)
    })
    .await;
}

#[tokio::test]
async fn real_memory_of_a_growing_process_is_reported() {
    let pm2 = RealPm2::start();
    pm2.cli(&[
        "start",
        &fixture("grow.js"),
        "--name",
        "grower",
        "--max-memory-restart",
        "1G",
        "--",
        "--max-mb",
        "160",
    ]);
    let pm = pm2.manager();
    let list = wait_until(&pm, 40, "grower above 100 MiB", |l| {
        find(l, "grower").is_some_and(|p| p.memory_bytes.unwrap_or(0) > 100 * 1024 * 1024)
    })
    .await;
    assert_eq!(
        find(&list, "grower").unwrap().max_memory_restart,
        Some(1 << 30)
    );
}

#[tokio::test]
async fn real_restart_of_an_unknown_app_fails_with_the_first_stderr_line() {
    let pm2 = RealPm2::start();
    let pm = pm2.manager();
    let e = pm
        .restart(&ProcTarget::App("no-such-app".into()))
        .await
        .unwrap_err();
    match &e {
        PmError::Failed {
            argv,
            code,
            stderr_first_line,
        } => {
            assert_eq!(
                argv,
                &vec![
                    pm2.bin.clone(),
                    "restart".to_string(),
                    "no-such-app".to_string()
                ]
            );
            assert_ne!(*code, Some(0));
            let line = stderr_first_line.as_deref().unwrap_or("");
            assert!(line.contains("not found"), "{line:?}");
            assert!(!line.contains('\u{1b}'), "colours stripped: {line:?}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn real_jlist_of_a_fresh_home_spawns_the_daemon_and_parses_empty() {
    let pm2 = RealPm2::start();
    // First call prints the banner and `[PM2] Spawning PM2 daemon…` before `[]`.
    let list = pm2
        .manager()
        .list()
        .await
        .expect("jlist on a fresh PM2_HOME");
    assert!(list.is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Fakes: missing binary, timeouts, odd output, argv

#[tokio::test]
async fn pm2_missing_from_path_is_not_found() {
    let pm = Pm2::new("vizora-ops-test-no-such-pm2");
    assert_eq!(
        pm.list().await.unwrap_err(),
        PmError::NotFound("vizora-ops-test-no-such-pm2".into())
    );
    assert!(matches!(
        pm.restart(&ProcTarget::PmId(1)).await,
        Err(PmError::NotFound(_))
    ));
    let dir = tempfile::tempdir().unwrap();
    let not_exec = dir.path().join("pm2");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let e = Pm2::new(not_exec.to_string_lossy())
        .list()
        .await
        .unwrap_err();
    assert!(matches!(e, PmError::NotFound(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("not found on PATH or not executable"),
        "{e}"
    );
}

#[tokio::test]
async fn hanging_pm2_times_out_and_its_process_group_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let bin = script(
        dir.path(),
        "pm2",
        &format!(
            "#!/bin/sh\nsleep 60 &\necho $! > '{}'\nwait\n",
            pidfile.display()
        ),
    );
    let mut pm = Pm2::new(bin.clone());
    pm.timeout_jlist = Duration::from_secs(1);
    let t0 = Instant::now();
    let e = pm.list().await.unwrap_err();
    assert_eq!(
        e,
        PmError::Timeout {
            argv: vec![bin.clone(), "jlist".into()],
            after_s: 1
        }
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(e.to_string().contains("timed out after 1 s"));

    // The script's own child (`sleep 60`) died with the group.
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if stat.is_empty() || state == "Z" {
            break;
        }
        assert!(Instant::now() < end, "grandchild {pid} still alive: {stat}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    pm.timeout_cmd = Duration::from_secs(1);
    let e = pm
        .restart(&ProcTarget::App("vizora-web".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, PmError::Timeout { after_s: 1, .. }), "{e:?}");
}

#[tokio::test]
async fn jlist_with_warning_lines_before_the_json_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, _log) = recording_pm2(
        dir.path(),
        ">>>> In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\n[PM2][WARN] Current process list is not synchronized\n\
         [{\"name\":\"vizora-web\",\"pm_id\":4,\"monit\":{\"memory\":1000},\"pm2_env\":{\"status\":\"online\",\
         \"exec_mode\":\"fork_mode\",\"env\":{\"SECRET\":\"x\"}}}]",
    );
    let list = Pm2::new(bin).list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "vizora-web");
    assert_eq!(list[0].pm_id, Some(4));
    assert_eq!(list[0].memory_bytes, Some(1000));
}

#[tokio::test]
async fn invalid_jlist_json_is_bad_output_and_a_failing_jlist_is_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, _log) = recording_pm2(
        dir.path(),
        "[{\"name\":\"vizora-web\",\"pm2_env\":{\"env\":{\"TOKEN\":\"s3cr3t-tok\"",
    );
    let e = Pm2::new(bin).list().await.unwrap_err();
    assert!(matches!(e, PmError::BadOutput(_)), "{e:?}");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");

    let dir2 = tempfile::tempdir().unwrap();
    let bin2 = script(
        dir2.path(),
        "pm2",
        "#!/bin/sh\necho '[PM2][ERROR] daemon not reachable' >&2\nexit 3\n",
    );
    let e = Pm2::new(bin2.clone()).list().await.unwrap_err();
    assert_eq!(
        e,
        PmError::Failed {
            argv: vec![bin2, "jlist".into()],
            code: Some(3),
            stderr_first_line: Some("[PM2][ERROR] daemon not reachable".into())
        }
    );
    assert!(matches!(
        parse_jlist("not json at all"),
        Err(PmError::BadOutput(_))
    ));
}

#[tokio::test]
async fn every_pm2_command_is_an_argv_of_validated_values_never_a_shell_string() {
    // A directory with a space and shell syntax in its name: a shell would split or expand the program path.
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("fake pm2 $(touch pwned) dir");
    std::fs::create_dir(&dir).unwrap();
    let (bin, log) = recording_pm2(&dir, "[]");
    let pm = Pm2::new(bin.clone());

    pm.list().await.unwrap();
    let r = pm
        .restart(&ProcTarget::App("vizora-web".into()))
        .await
        .unwrap();
    assert_eq!(
        r.argv,
        vec![bin.clone(), "restart".into(), "vizora-web".into()]
    );
    assert_eq!(r.exit_code, Some(0));
    pm.restart(&ProcTarget::PmId(12)).await.unwrap();
    pm.reload(&ProcTarget::PmId(3)).await.unwrap();
    pm.restart(&ProcTarget::App("app@1.x:y_z-w".into()))
        .await
        .unwrap();

    for bad in [
        "a b",
        "web;reboot",
        "$(touch pwned)",
        "`id`",
        "",
        "x|y",
        "a\nb",
        "../etc",
        "-h",
        "--update-env",
    ] {
        for verb in ["restart", "reload"] {
            let t = ProcTarget::App(bad.to_string());
            let res = if verb == "restart" {
                pm.restart(&t).await
            } else {
                pm.reload(&t).await
            };
            assert!(
                matches!(res, Err(PmError::Rejected(_))),
                "{verb} {bad:?}: {res:?}"
            );
        }
    }
    assert!(matches!(
        pm.restart(&ProcTarget::Unit("vizora-web.service".into()))
            .await,
        Err(PmError::Rejected(_))
    ));

    assert_eq!(
        recorded(&log),
        vec![
            vec!["jlist".to_string()],
            vec!["restart".into(), "vizora-web".into()],
            vec!["restart".into(), "12".into()],
            vec!["reload".into(), "3".into()],
            vec!["restart".into(), "app@1.x:y_z-w".into()],
        ],
        "rejected values never reached the program"
    );
    assert!(!base.path().join("pwned").exists() && !dir.join("pwned").exists());
    assert!(!Path::new("pwned").exists());
}

#[tokio::test]
async fn ecosystem_limits_are_read_with_node_from_a_path_given_as_one_argument() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("eco dir $(touch pwned)");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("ecosystem.config.js");
    std::fs::write(
        &file,
        r#"console.log('[ecosystem] loading');
module.exports = { apps: [
  { name: 'vizora-middleware', script: 'a.js', max_memory_restart: '200M', env: { DB_PASSWORD: 'hunter2-eco' } },
  { name: 'vizora-realtime', script: 'b.js', max_memory_restart: 536870912 },
  { name: 'vizora-web', script: 'c.js', max_memory_restart: '1.5g' },
  { name: 'bogus', script: 'd.js', max_memory_restart: 'lots' },
  { name: 'nolimit', script: 'e.js' },
] };
"#,
    )
    .unwrap();
    let limits = read_ecosystem_limits("node", &file, Duration::from_secs(10))
        .await
        .expect("ecosystem read");
    let mut got: Vec<_> = limits.into_iter().collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("vizora-middleware".to_string(), 200 * 1024 * 1024),
            ("vizora-realtime".to_string(), 536_870_912),
            ("vizora-web".to_string(), 3 * 512 * 1024 * 1024),
        ]
    );
    assert!(!base.path().join("pwned").exists() && !dir.join("pwned").exists());

    let e = read_ecosystem_limits(
        "node",
        &dir.join("missing.config.js"),
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    match &e {
        PmError::Failed {
            stderr_first_line: Some(l),
            argv,
            ..
        } => {
            assert!(l.starts_with("cannot load the ecosystem file"), "{l}");
            assert_eq!(argv.len(), 5, "node -e <script> -- <file>: {argv:?}");
            assert_eq!(argv[4], dir.join("missing.config.js").to_string_lossy());
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let e = read_ecosystem_limits(
        "vizora-ops-test-no-such-node",
        &file,
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PmError::NotFound(_)));
}
