//! systemd process manager (agents.md 6.1, 6.1.2, 6.1.3, 1.6) against a recording fake `systemctl`: a shell script
//! written by each test that appends its argv (one argument per line) to a file and prints canned `show` output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vizora_ops::procman::{PmError, ProcStatus, ProcTarget, ProcessManager, Systemd, from_config};

const PROPS: &str = "--property=ActiveState,MemoryCurrent,MemoryMax";

/// A fake systemctl in `dir` (whose name may contain spaces): records argv to `<dir>/argv.log`; `show <unit>` prints
/// `<dir>/show-<unit>.txt` (or `ActiveState=inactive`); `restart` fails while `<dir>/fail-restart` exists.
fn fake_systemctl(dir: &Path) -> (String, PathBuf) {
    let log = dir.join("argv.log");
    let d = dir.display();
    let body = format!(
        r#"#!/bin/sh
for a in "$@"; do printf '%s\n' "$a" >> '{d}/argv.log'; done
printf '%s\n' --end-- >> '{d}/argv.log'
case "$1" in
  show)
    if [ -f '{d}/show-'"$2"'.txt' ]; then cat '{d}/show-'"$2"'.txt'; else echo ActiveState=inactive; fi ;;
  restart)
    if [ -f '{d}/fail-restart' ]; then echo "Job for $2 failed because the control process exited with error code." >&2; exit 1; fi ;;
esac
"#
    );
    let bin = dir.join("systemctl");
    std::fs::write(&bin, body).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin.to_string_lossy().into_owned(), log)
}

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

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

struct Fixture {
    _base: tempfile::TempDir,
    dir: PathBuf,
    bin: String,
    log: PathBuf,
}

fn fixture() -> Fixture {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("fake systemd $(touch pwned)");
    std::fs::create_dir(&dir).unwrap();
    let (bin, log) = fake_systemctl(&dir);
    Fixture {
        _base: base,
        dir,
        bin,
        log,
    }
}

fn units() -> Vec<String> {
    v(&[
        "vizora-middleware.service",
        "vizora-realtime.service",
        "vizora-web.service",
    ])
}

#[tokio::test]
async fn show_runs_once_per_unit_with_exact_argv_and_parses_states_and_memory() {
    let f = fixture();
    std::fs::write(
        f.dir.join("show-vizora-middleware.service.txt"),
        "ActiveState=active\nMemoryCurrent=104857600\nMemoryMax=536870912\n",
    )
    .unwrap();
    std::fs::write(
        f.dir.join("show-vizora-realtime.service.txt"),
        "MemoryMax=infinity\nActiveState=failed\nMemoryCurrent=[not set]\n",
    )
    .unwrap();
    std::fs::write(
        f.dir.join("show-vizora-web.service.txt"),
        "ActiveState=activating\nMemoryCurrent=2048\nMemoryMax=infinity\n",
    )
    .unwrap();
    let sd = Systemd {
        bin: f.bin.clone(),
        units: units(),
        timeout: Duration::from_secs(30),
    };
    assert_eq!(sd.kind(), "systemd");
    let list = sd.list().await.unwrap();

    assert_eq!(
        recorded(&f.log),
        vec![
            v(&["show", "vizora-middleware.service", PROPS]),
            v(&["show", "vizora-realtime.service", PROPS]),
            v(&["show", "vizora-web.service", PROPS]),
        ]
    );
    let names: Vec<_> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "vizora-middleware.service",
            "vizora-realtime.service",
            "vizora-web.service"
        ]
    );
    assert_eq!(list[0].status, ProcStatus::Online);
    assert_eq!(list[0].memory_bytes, Some(104_857_600));
    assert_eq!(list[0].max_memory_restart, Some(536_870_912));
    assert_eq!(list[1].status, ProcStatus::Errored);
    assert_eq!(list[1].memory_bytes, None);
    assert_eq!(
        list[1].max_memory_restart, None,
        "MemoryMax=infinity is unknown"
    );
    assert_eq!(
        list[2].status,
        ProcStatus::Transitional("activating".into())
    );
    assert!(list.iter().all(|p| p.pm_id.is_none()));
}

#[tokio::test]
async fn inactive_unit_is_stopped() {
    let f = fixture();
    let sd = Systemd {
        bin: f.bin.clone(),
        units: v(&["vizora-web.service"]),
        timeout: Duration::from_secs(30),
    };
    let list = sd.list().await.unwrap();
    assert_eq!(list[0].status, ProcStatus::Stopped);
}

#[tokio::test]
async fn restart_names_one_configured_unit_as_one_argument() {
    let f = fixture();
    let sd = Systemd {
        bin: f.bin.clone(),
        units: units(),
        timeout: Duration::from_secs(30),
    };
    let rec = sd
        .restart(&ProcTarget::Unit("vizora-web.service".into()))
        .await
        .unwrap();
    assert_eq!(
        rec.argv,
        vec![f.bin.clone(), "restart".into(), "vizora-web.service".into()]
    );
    assert_eq!(rec.exit_code, Some(0));
    // systemd has no reload for these services: reload restarts, and the record says what ran.
    let rec = sd
        .reload(&ProcTarget::Unit("vizora-realtime.service".into()))
        .await
        .unwrap();
    assert_eq!(
        rec.argv,
        vec![
            f.bin.clone(),
            "restart".into(),
            "vizora-realtime.service".into()
        ]
    );
    assert_eq!(
        recorded(&f.log),
        vec![
            v(&["restart", "vizora-web.service"]),
            v(&["restart", "vizora-realtime.service"])
        ]
    );
}

#[tokio::test]
async fn rejected_and_unconfigured_targets_never_reach_systemctl() {
    let f = fixture();
    let sd = Systemd {
        bin: f.bin.clone(),
        units: units(),
        timeout: Duration::from_secs(30),
    };
    for t in [
        ProcTarget::Unit("vizora web.service".into()),
        ProcTarget::Unit("vizora-web.service; reboot".into()),
        ProcTarget::Unit("$(touch pwned)".into()),
        ProcTarget::Unit("--no-block".into()),
        ProcTarget::Unit("other.service".into()),
        ProcTarget::PmId(3),
    ] {
        let e = sd.restart(&t).await.unwrap_err();
        assert!(matches!(e, PmError::Rejected(_)), "{t:?}: {e:?}");
    }
    // A bad configured unit stops the whole list before any command.
    let bad = Systemd {
        bin: f.bin.clone(),
        units: v(&["ok.service", "bad unit"]),
        timeout: Duration::from_secs(30),
    };
    assert!(matches!(bad.list().await, Err(PmError::Rejected(_))));
    assert_eq!(recorded(&f.log), Vec::<Vec<String>>::new());
    assert!(!f.dir.join("pwned").exists() && !Path::new("pwned").exists());
}

#[tokio::test]
async fn failed_restart_carries_the_first_stderr_line() {
    let f = fixture();
    std::fs::write(f.dir.join("fail-restart"), "").unwrap();
    let sd = Systemd {
        bin: f.bin.clone(),
        units: units(),
        timeout: Duration::from_secs(30),
    };
    let e = sd
        .restart(&ProcTarget::Unit("vizora-web.service".into()))
        .await
        .unwrap_err();
    assert_eq!(
        e.stderr_first_line(),
        Some(
            "Job for vizora-web.service failed because the control process exited with error code."
        )
    );
    assert!(matches!(e, PmError::Failed { code: Some(1), .. }));
}

#[tokio::test]
async fn show_without_active_state_is_bad_output() {
    let f = fixture();
    std::fs::write(f.dir.join("show-x.service.txt"), "MemoryCurrent=1\n").unwrap();
    let sd = Systemd {
        bin: f.bin.clone(),
        units: v(&["x.service"]),
        timeout: Duration::from_secs(30),
    };
    assert!(matches!(sd.list().await, Err(PmError::BadOutput(_))));
}

#[tokio::test]
async fn configuration_selects_systemd_with_its_binary_and_units() {
    let f = fixture();
    let cfg = vizora_ops::config::Config::from_source(
        vizora_ops::config::Source::from_pairs([
            ("OPS_PROCESS_MANAGER", "systemd"),
            ("OPS_SYSTEMCTL_BIN", f.bin.as_str()),
            ("OPS_SYSTEMD_UNIT_WEB", "web@1.service"),
        ]),
        Path::new("/tmp/ops-root"),
    )
    .expect("config");
    let pm = from_config(&cfg.health);
    assert_eq!(pm.kind(), "systemd");
    let list = pm.list().await.unwrap();
    assert_eq!(list.len(), 3);
    let mut shown: Vec<String> = recorded(&f.log).into_iter().map(|a| a[1].clone()).collect();
    shown.sort();
    assert_eq!(
        shown,
        v(&[
            "vizora-middleware.service",
            "vizora-realtime.service",
            "web@1.service"
        ])
    );
    pm.restart(&ProcTarget::Unit("web@1.service".into()))
        .await
        .unwrap();
    assert_eq!(
        recorded(&f.log).last().unwrap(),
        &v(&["restart", "web@1.service"])
    );
}
