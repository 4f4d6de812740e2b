//! Shared harness of the db-maintainer integration tests (agents.md 6.6): throw-away PostgreSQL databases with the
//! Vizora tables under their physical names, configuration building, running the whole agent through
//! `runner::run_agent`, and reading back the state file, the audit log and the inline alerts.
#![allow(dead_code)]

#[path = "../support/mod.rs"]
pub mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_postgres::{Client, NoTls};
use vizora_ops::agents::AlertSink;
use vizora_ops::config::{Config, Source};
use vizora_ops::model::AgentName;
use vizora_ops::runner::{self, RunOptions, RunReport, Wiring};
use vizora_ops::state::audit::AuditLog;
pub use vizora_ops::testing::RecordingSink;

/// The Vizora tables db-maintainer vacuums by default (agents.md 6.6.2), physical names.
pub const VIZORA_TABLES: [&str; 7] = [
    "Content",
    "devices",
    "Schedule",
    "Playlist",
    "AuditLog",
    "users",
    "content_impressions",
];

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A plain client on `url` (the connection task runs in the background).
pub async fn raw_connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A throw-away database with the Vizora tables in `public` (autovacuum off), `Content_status_idx` and
/// `devices_status_idx`. Dropped (forced) by [`TestDb::drop`].
pub struct TestDb {
    admin: Client,
    pub name: String,
    /// URL of the test database (trust auth, no password).
    pub url: String,
    /// A client on the test database.
    pub client: Client,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let admin = raw_connect(&support::pg_url()).await;
        let name = unique("vz_dbm");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        let base = support::pg_url();
        let (head, query) = match base.split_once('?') {
            Some((h, q)) => (h.to_string(), format!("?{q}")),
            None => (base.clone(), String::new()),
        };
        let (prefix, _) = head.rsplit_once('/').expect("URL with a database");
        let url = format!("{prefix}/{name}{query}");
        let client = raw_connect(&url).await;
        let mut sql = String::new();
        for t in VIZORA_TABLES {
            sql.push_str(&format!(
                "CREATE TABLE \"{t}\" (id serial PRIMARY KEY, status text NOT NULL, n int NOT NULL, pad text) \
                 WITH (autovacuum_enabled = off);"
            ));
        }
        sql.push_str("CREATE INDEX \"Content_status_idx\" ON \"Content\" (status);");
        sql.push_str("CREATE INDEX \"devices_status_idx\" ON \"devices\" (status);");
        client.batch_execute(&sql).await.expect("create tables");
        TestDb {
            admin,
            name,
            url,
            client,
        }
    }

    /// Inserts `rows` rows into `table` and updates them twice (2 × `rows` dead tuples), then flushes this
    /// backend's statistics so the maintainer sees them.
    pub async fn churn(&self, table: &str, rows: i32) {
        self.client
            .batch_execute(&format!(
                "INSERT INTO \"{table}\" (status, n, pad) \
                 SELECT CASE WHEN g % 3 = 0 THEN 'active' ELSE 'archived' END, g % 10, repeat('x', 100) \
                 FROM generate_series(1, {rows}) g;\
                 UPDATE \"{table}\" SET n = n + 1;\
                 UPDATE \"{table}\" SET status = status || '!';"
            ))
            .await
            .expect("churn");
        self.client
            .batch_execute("SELECT pg_stat_force_next_flush()")
            .await
            .expect("flush stats");
    }

    /// `n_dead_tup` of a table (statistics read in its own transaction).
    pub async fn dead_tuples(&self, table: &str) -> i64 {
        let row = self
            .client
            .query_one(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = $1",
                &[&table],
            )
            .await
            .expect("n_dead_tup");
        row.get(0)
    }

    pub async fn drop(self) {
        drop(self.client);
        let _ = self
            .admin
            .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name))
            .await;
    }
}

/// A configuration under construction: a temp dir (log dir `<dir>/logs`) plus variables.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub pairs: Vec<(String, String)>,
}

impl Setup {
    /// Log dir in a temp dir, in-memory rate limit, nothing else configured (Redis at the default URL).
    pub fn bare() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        Setup {
            pairs: vec![
                ("OPS_LOG_DIR".into(), logs.display().to_string()),
                ("OPS_RATE_LIMIT_BACKEND".into(), "memory".into()),
            ],
            dir,
        }
    }

    /// [`Setup::bare`] with `REDIS_URL` pointing at the test Redis.
    pub fn with_redis() -> Setup {
        Setup::bare().set("REDIS_URL", support::redis_url())
    }

    pub fn set(mut self, k: &str, v: impl Into<String>) -> Setup {
        let v = v.into();
        self.pairs.retain(|(key, _)| key != k);
        self.pairs.push((k.to_string(), v));
        self
    }

    /// The log dir (`<dir>/logs`).
    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// The configuration and the temp dir that holds its log dir (keep it alive for the test).
    pub fn build(self) -> (Arc<Config>, tempfile::TempDir) {
        let cfg = self.config();
        (cfg, self.dir)
    }

    pub fn config(&self) -> Arc<Config> {
        Arc::new(
            Config::from_source(Source::from_pairs(self.pairs.clone()), self.dir.path())
                .expect("valid configuration"),
        )
    }
}

/// Runs db-maintainer once through the runtime.
pub async fn run(cfg: &Arc<Config>, dry_run: bool, sink: &Arc<RecordingSink>) -> RunReport {
    runner::run_agent(
        cfg.clone(),
        AgentName::DbMaintainer,
        RunOptions { dry_run },
        Wiring {
            alerts: Some(sink.clone() as Arc<dyn AlertSink>),
            ..Default::default()
        },
    )
    .await
}

/// The state file as JSON (`Value::Null` when it does not exist).
pub fn state(cfg: &Config) -> Value {
    match std::fs::read_to_string(&cfg.state_file) {
        Ok(t) => serde_json::from_str(&t).expect("state JSON"),
        Err(_) => Value::Null,
    }
}

/// `agentResults["db-maintainer"].stats.maintenance` of the state file.
pub fn maintenance(cfg: &Config) -> Value {
    state(cfg)["agentResults"]["db-maintainer"]["stats"]["maintenance"].clone()
}

/// Every incident of the state file with id `id`.
pub fn incident(cfg: &Config, id: &str) -> Option<Value> {
    state(cfg)["incidents"]
        .as_array()?
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
}

/// The audit log lines.
pub fn audit(cfg: &Config) -> Vec<Value> {
    AuditLog::new(cfg.audit_file.clone()).read_all()
}

/// Active incidents raised by the run (type, targetId, severity).
pub fn raised(r: &RunReport) -> Vec<(String, String, String)> {
    r.result
        .incidents
        .iter()
        .filter(|i| i.is_active())
        .map(|i| {
            (
                i.kind.clone(),
                i.target_id.clone(),
                i.severity.as_str().to_string(),
            )
        })
        .collect()
}

/// Whether the run raised an active incident of `kind` for `target_id`.
pub fn has(r: &RunReport, kind: &str, target_id: &str) -> bool {
    r.result
        .incidents
        .iter()
        .any(|i| i.is_active() && i.kind == kind && i.target_id == target_id)
}

/// The run's active incident of `kind` for `target_id`.
pub fn get<'a>(r: &'a RunReport, kind: &str, target_id: &str) -> &'a vizora_ops::model::Incident {
    r.result
        .incidents
        .iter()
        .find(|i| i.is_active() && i.kind == kind && i.target_id == target_id)
        .unwrap_or_else(|| panic!("no active {kind} {target_id}: {:?}", raised(r)))
}

/// Writes `bytes` bytes to `dir/rel` and sets its modification time `age` in the past.
pub fn aged_file(dir: &Path, rel: &str, bytes: usize, age: std::time::Duration) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, vec![b'b'; bytes]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - age)
        .unwrap();
    p
}

/// A log file of `bytes` bytes made of 100-byte lines.
pub fn log_file(path: &Path, bytes: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(bytes);
    let mut i = 0;
    while data.len() < bytes {
        let line = format!(
            "{:>8} log line padding padding padding padding padding padding padding padding\n",
            i
        );
        data.extend_from_slice(line.as_bytes());
        i += 1;
    }
    data.truncate(bytes);
    std::fs::write(path, &data).unwrap();
    data
}

/// A fresh S3 bucket on the test endpoint (moto accepts an unsigned `PUT /<bucket>`) holding `objects`.
pub async fn bucket_with(objects: &[(&str, usize)]) -> String {
    use object_store::ObjectStoreExt;
    let bucket = unique("vz-dbm").replace('_', "-").to_lowercase();
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/{bucket}",
            support::s3_endpoint().trim_end_matches('/')
        ))
        .send()
        .await
        .expect("S3 test endpoint reachable");
    assert!(
        resp.status().is_success(),
        "create bucket: {}",
        resp.status()
    );
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(support::s3_endpoint())
        .with_allow_http(true)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_access_key_id("testing")
        .with_secret_access_key("testing-secret")
        .build()
        .unwrap();
    for (key, size) in objects {
        store
            .put(
                &object_store::path::Path::from(*key),
                vec![b'x'; *size].into(),
            )
            .await
            .expect("put object");
    }
    bucket
}

/// A closed loopback port (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
