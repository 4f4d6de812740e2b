//! Running one external program from an argument vector (agents.md 1.6, 5.6): no shell, null stdin, captured
//! stdout/stderr, its own process group, and a hard timeout that kills the whole group.

use super::{CommandRecord, PmError};
use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// Longest stderr line kept, in characters.
const STDERR_LINE_MAX: usize = 300;
/// Most stdout kept from one command (a jlist of many apps is a few MiB because of the environment blocks).
const STDOUT_MAX: usize = 64 * 1024 * 1024;

/// A finished command: its record and its stdout (the caller parses stdout and drops it).
pub(crate) struct Ran {
    pub record: CommandRecord,
    pub stdout: String,
}

/// Runs `bin args…` with extra environment variables, within `timeout`. A non-zero exit is `PmError::Failed`.
pub(crate) async fn run(
    bin: &str,
    args: &[String],
    envs: &[(&str, OsString)],
    timeout: Duration,
) -> Result<Ran, PmError> {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(bin.to_string());
    argv.extend(args.iter().cloned());

    let started = Instant::now();
    let mut child = spawn(bin, args, envs)?;
    let pid = child.id();
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();

    let waited = tokio::time::timeout(timeout, async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(p) = out_pipe.as_mut() {
                let _ = p.take(STDOUT_MAX as u64).read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.take(1024 * 1024).read_to_end(&mut err).await;
            }
        };
        let ((), (), status) = tokio::join!(read_out, read_err, child.wait());
        (out, err, status)
    })
    .await;

    let (out, err, status) = match waited {
        Ok(v) => v,
        Err(_) => {
            kill_group(pid);
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            return Err(PmError::Timeout {
                argv,
                after_s: timeout.as_secs_f64().ceil() as u64,
            });
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let stderr_first_line = first_line(&err);
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return Err(PmError::Failed {
                argv,
                code: None,
                stderr_first_line: Some(format!("could not wait for the process: {e}")),
            });
        }
    };
    if !status.success() {
        return Err(PmError::Failed {
            argv,
            code: status.code(),
            stderr_first_line,
        });
    }
    Ok(Ran {
        record: CommandRecord {
            argv,
            exit_code: status.code(),
            stderr_first_line,
            duration_ms,
        },
        stdout: String::from_utf8_lossy(&out).into_owned(),
    })
}

fn spawn(
    bin: &str,
    args: &[String],
    envs: &[(&str, OsString)],
) -> Result<tokio::process::Child, PmError> {
    let mut attempt = 0;
    loop {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        match cmd.spawn() {
            Ok(c) => return Ok(c),
            // A just-written executable can be briefly busy while another thread forks; retry a few times.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 20 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                return Err(PmError::NotFound(bin.to_string()));
            }
            Err(e) => {
                return Err(PmError::Failed {
                    argv: std::iter::once(bin.to_string())
                        .chain(args.iter().cloned())
                        .collect(),
                    code: None,
                    stderr_first_line: Some(format!("could not start: {e}")),
                });
            }
        }
    }
}

/// SIGKILL to the child's process group (the child leads it: `process_group(0)`), so helpers it forked die too.
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
        // SAFETY: killpg only sends a signal; the group is the one our child created and still leads (it has not
        // been reaped, so its id cannot have been reused).
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

/// First non-empty line of `bytes`, ANSI escape sequences removed, trimmed, shortened and redacted.
pub(crate) fn first_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let clean = strip_ansi(&text);
    let line = clean.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut short: String = line.chars().take(STDERR_LINE_MAX).collect();
    if line.chars().count() > STDERR_LINE_MAX {
        short.push('…');
    }
    Some(crate::redact::redact_str(&short))
}

/// Removes ANSI CSI sequences (`ESC [ … letter`) and stray escape characters.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_skips_blank_lines_and_colours() {
        let b = b"\n  \n\x1b[31m[PM2][ERROR] \x1b[39mProcess or Namespace nosuch not found\nmore\n";
        assert_eq!(
            first_line(b).as_deref(),
            Some("[PM2][ERROR] Process or Namespace nosuch not found")
        );
        assert_eq!(first_line(b"\n\n"), None);
        let long = "x".repeat(1000);
        assert_eq!(
            first_line(long.as_bytes()).unwrap().chars().count(),
            STDERR_LINE_MAX + 1
        );
    }
}
