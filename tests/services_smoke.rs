//! Smoke tests for the local services that `scripts/test.sh` starts: each one is real, reachable and speaks its
//! protocol. A missing variable makes the support helper panic naming it (no silent skip).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(host: &str, port: u16, what: &str) -> TcpStream {
    let s = TcpStream::connect((host, port)).unwrap_or_else(|e| {
        panic!("{what}: cannot connect to {host}:{port}: {e} (is scripts/test.sh running it?)")
    });
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Splits `scheme://host:port[/...]` into host and port.
fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("no port in {url}"));
    (
        host.to_string(),
        port.parse().unwrap_or_else(|_| panic!("bad port in {url}")),
    )
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

#[tokio::test]
async fn postgres_answers_select_1() {
    let url = support::pg_url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
    let conn = tokio::spawn(connection);
    let row = client
        .query_one("SELECT 1::int4 AS one, version()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>("one"), 1);
    let version: String = row.get(1);
    assert!(
        version.starts_with("PostgreSQL "),
        "unexpected version(): {version}"
    );
    drop(client);
    conn.await.unwrap().unwrap();
}

#[test]
fn redis_answers_ping() {
    let url = support::redis_url();
    let (host, port) = host_port(&url);
    let mut s = connect(&host, port, "Redis");
    s.write_all(b"PING\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert_eq!(line, "+PONG\r\n", "Redis at {url} answered {line:?}");
}

/// A minimal line-based SMTP client: enough to exercise the sinks without extra crates.
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    fn connect(host: &str, port: u16) -> (Self, String) {
        let s = connect(host, port, "SMTP");
        let mut smtp = Smtp {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        };
        let banner = smtp.reply();
        (smtp, banner)
    }

    /// Reads one (possibly multi-line) reply and returns it whole.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "SMTP connection closed; got so far: {all:?}");
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reply()
    }

    fn expect(&mut self, line: &str, code: &str) -> String {
        let r = self.cmd(line);
        assert!(
            r.starts_with(code),
            "`{line}` -> expected {code}, got {r:?}"
        );
        r
    }

    /// MAIL/RCPT/DATA of a small message whose subject is `subject`.
    fn send(&mut self, subject: &str) {
        self.expect("MAIL FROM:<smoke@vizora.test>", "250");
        self.expect("RCPT TO:<ops@vizora.test>", "250");
        self.expect("DATA", "354");
        let msg = format!(
            "From: smoke@vizora.test\r\nTo: ops@vizora.test\r\nSubject: {subject}\r\n\r\nsmoke body\r\n."
        );
        self.expect(&msg, "250");
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Waits until a stored message (`<dir>/*.json`) has `subject` in its data, and returns its JSON.
fn wait_stored(dir: &Path, subject: &str) -> serde_json::Value {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        for entry in std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("SMTP message dir {}: {e}", dir.display()))
        {
            let path: PathBuf = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                if v["data"].as_str().is_some_and(|d| d.contains(subject)) {
                    return v;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no message with subject {subject} in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn smtp_sink_stores_messages() {
    let (host, port, dir) = support::smtp_sink();
    let (mut smtp, banner) = Smtp::connect(&host, port);
    assert!(banner.starts_with("220"), "SMTP banner: {banner:?}");
    smtp.expect("EHLO smoke.test", "250");
    let subject = unique("smoke-plain");
    smtp.send(&subject);
    smtp.expect("QUIT", "221");
    let v = wait_stored(&dir, &subject);
    assert_eq!(v["mail_from"], "smoke@vizora.test");
    assert_eq!(v["rcpt_tos"], serde_json::json!(["ops@vizora.test"]));
    assert!(v["data"].as_str().unwrap().contains("smoke body"));
}

#[test]
fn smtp_auth_sink_requires_valid_credentials() {
    let (host, port, dir) = support::smtp_auth_sink();
    let user = support::require_env("VIZORA_TEST_SMTP_AUTH_USER");
    let pass = support::require_env("VIZORA_TEST_SMTP_AUTH_PASS");
    let (mut smtp, banner) = Smtp::connect(&host, port);
    assert!(banner.starts_with("220"), "SMTP banner: {banner:?}");
    let ehlo = smtp.expect("EHLO smoke.test", "250");
    assert!(
        ehlo.contains("AUTH") && ehlo.contains("PLAIN"),
        "AUTH PLAIN not offered: {ehlo:?}"
    );
    // Mail before AUTH is refused.
    smtp.expect("MAIL FROM:<smoke@vizora.test>", "530");
    // Wrong password: 535.
    let bad = base64(format!("\0{user}\0wrong-{pass}").as_bytes());
    smtp.expect(&format!("AUTH PLAIN {bad}"), "535");
    // Right credentials: 235, then the message is stored.
    let good = base64(format!("\0{user}\0{pass}").as_bytes());
    smtp.expect(&format!("AUTH PLAIN {good}"), "235");
    let subject = unique("smoke-auth");
    smtp.send(&subject);
    smtp.expect("QUIT", "221");
    wait_stored(&dir, &subject);
}

#[test]
fn s3_endpoint_answers_http() {
    let endpoint = support::s3_endpoint();
    let (host, port) = host_port(&endpoint);
    let mut s = connect(&host, port, "S3 (moto)");
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.lines().next().unwrap_or_default();
    assert!(
        status.starts_with("HTTP/1.") && status.contains(" 200"),
        "S3 at {endpoint}: {status:?}"
    );
    assert!(
        resp.contains("ListAllMyBucketsResult"),
        "not an S3 bucket listing: {resp}"
    );
}

#[test]
fn pm2_reports_its_version() {
    let bin = support::pm2_bin();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(&bin)
        .arg("--version")
        .env("PM2_HOME", home.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    assert!(out.status.success(), "{bin} --version failed: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let version = stdout.trim().lines().last().unwrap_or_default();
    let parts: Vec<&str> = version.split('.').collect();
    assert!(
        parts.len() >= 3 && parts[..2].iter().all(|p| p.parse::<u32>().is_ok()),
        "unexpected pm2 version output: {stdout:?}"
    );
    // `--version` must not leave a daemon behind; kill one if this pm2 started it anyway.
    if home.path().join("pm2.pid").exists() {
        let _ = Command::new(&bin)
            .arg("kill")
            .env("PM2_HOME", home.path())
            .output();
    }
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, want) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
    ] {
        assert_eq!(base64(input.as_bytes()), want);
    }
}
