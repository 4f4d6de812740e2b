//! db-maintainer PostgreSQL client against a real server (agents.md 6.6.1–6.6.3, 9 items 38, 39).
//! Each test works in its own schema (or database) so tests can run in parallel.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};
use vizora_ops::maint::MaintError;
use vizora_ops::maint::postgres::{self, PgConn, SQLSTATE_LOCK_TIMEOUT, leftover_for, prepare_url};

const VIZORA_TABLES: [&str; 7] = [
    "Content",
    "devices",
    "Schedule",
    "Playlist",
    "AuditLog",
    "users",
    "content_impressions",
];

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
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

async fn raw_connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn with_params(url: &str, params: &str) -> String {
    if url.contains('?') {
        format!("{url}&{params}")
    } else {
        format!("{url}?{params}")
    }
}

/// A throw-away database per test: the VACUUM horizon (oldest running transaction) is per database, so another
/// test's open transaction cannot keep this test's dead tuples alive.
struct TestDb {
    admin: Client,
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> TestDb {
        let admin = raw_connect(&support::pg_url()).await;
        let name = unique("vz_maint_db");
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
        TestDb { admin, name, url }
    }
    async fn drop(self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name))
            .await;
    }
}

/// Creates a schema with the Vizora tables (real physical names), autovacuum off, plus `Content_status_idx`.
async fn vizora_schema(admin: &Client) -> String {
    let s = unique("vz_maint");
    let mut sql = format!("CREATE SCHEMA \"{s}\";");
    for t in VIZORA_TABLES {
        sql.push_str(&format!(
            "CREATE TABLE \"{s}\".\"{t}\" (id serial PRIMARY KEY, status text NOT NULL, n int NOT NULL, \
             pad text) WITH (autovacuum_enabled = off);"
        ));
    }
    sql.push_str(&format!(
        "CREATE INDEX \"Content_status_idx\" ON \"{s}\".\"Content\" (status);"
    ));
    sql.push_str(&format!(
        "CREATE INDEX \"devices_status_idx\" ON \"{s}\".\"devices\" (status);"
    ));
    admin.batch_execute(&sql).await.expect("create schema");
    s
}

/// Inserts rows and updates them twice, creating dead tuples, then forces this backend's statistics flush.
async fn churn(c: &Client, schema: &str, table: &str, rows: i32) {
    c.batch_execute(&format!(
        "INSERT INTO \"{schema}\".\"{table}\" (status, n, pad) \
         SELECT CASE WHEN g % 3 = 0 THEN 'active' ELSE 'archived' END, g % 10, repeat('x', 100) \
         FROM generate_series(1, {rows}) g;\
         UPDATE \"{schema}\".\"{table}\" SET n = n + 1;\
         UPDATE \"{schema}\".\"{table}\" SET status = status || '!';"
    ))
    .await
    .expect("churn");
    c.batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .expect("flush stats");
}

/// The test database with the Vizora schema: (db, client on it, schema).
async fn setup() -> (TestDb, Client, String) {
    let db = TestDb::new().await;
    let c = raw_connect(&db.url).await;
    let s = vizora_schema(&c).await;
    (db, c, s)
}

async fn maint_conn(db: &TestDb, schema: &str) -> PgConn {
    let url = with_params(
        &db.url,
        &format!(
            "schema={schema}&connection_limit=5&pool_timeout=10&pgbouncer=true&statement_cache_size=0"
        ),
    );
    let target = prepare_url(&url).expect("prepare url");
    assert_eq!(target.schema, schema);
    assert_eq!(target.stripped_params.len(), 5);
    postgres::connect(&target, 600)
        .await
        .expect("maintenance connection")
}

#[tokio::test]
async fn vacuum_reports_dead_tuples_before_and_after_for_real_table_names() {
    let (db, admin, s) = setup().await;
    churn(&admin, &s, "Content", 3000).await;
    churn(&admin, &s, "content_impressions", 500).await;
    let conn = maint_conn(&db, &s).await;
    assert!(conn.server_version_num() >= 120_000);
    assert!(
        conn.setup_statements()
            .iter()
            .any(|q| q == "SET statement_timeout = '600s'")
    );

    let mut names: Vec<String> = VIZORA_TABLES.iter().map(|t| t.to_string()).collect();
    names.push("content".into()); // ORM-style lower-case name: not the physical table
    names.push("AlertFire".into());
    let (present, missing) = conn.existing_tables(&s, &names).await.unwrap();
    assert_eq!(
        present,
        VIZORA_TABLES
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        missing,
        vec!["content".to_string(), "AlertFire".to_string()]
    );

    let r = conn.vacuum_table(&s, "Content", 5).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.statement, format!("VACUUM (ANALYZE) \"{s}\".\"Content\""));
    assert!(
        r.statements
            .contains(&"SET lock_timeout = '5s'".to_string()),
        "{:?}",
        r.statements
    );
    let set_pos = r
        .statements
        .iter()
        .position(|q| q.starts_with("SET lock_timeout"))
        .unwrap();
    let vac_pos = r.statements.iter().position(|q| q == &r.statement).unwrap();
    assert!(set_pos < vac_pos);
    let before = r.dead_tuples_before.expect("dead tuples before");
    let after = r.dead_tuples_after.expect("dead tuples after");
    assert!(before >= 3000, "before={before}");
    assert!(after < before, "after={after} before={before}");
    assert_eq!(after, 0);
    assert!(r.size_before_bytes.unwrap() > 0 && r.size_after_bytes.unwrap() > 0);

    let r2 = conn.vacuum_table(&s, "content_impressions", 5).await;
    assert!(
        r2.ok() && r2.dead_tuples_before.unwrap() > r2.dead_tuples_after.unwrap(),
        "{r2:?}"
    );
    let json = serde_json::to_value(&r2).unwrap();
    assert!(json.get("deadTuplesBefore").is_some() && json.get("durationMs").is_some());

    drop(conn);
    drop(admin);
    db.drop().await;
}

#[tokio::test]
async fn vacuum_fails_fast_on_lock_timeout_and_never_hangs() {
    let (db, admin, s) = setup().await;
    let holder = raw_connect(&db.url).await;
    holder
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{s}\".\"devices\" IN ACCESS EXCLUSIVE MODE;"
        ))
        .await
        .unwrap();
    let conn = maint_conn(&db, &s).await;
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(20), conn.vacuum_table(&s, "devices", 1))
        .await
        .expect("VACUUM must not hang behind a lock");
    let took = started.elapsed();
    assert!(!r.ok());
    assert!(r.is_lock_timeout(), "{r:?}");
    assert_eq!(r.sqlstate.as_deref(), Some(SQLSTATE_LOCK_TIMEOUT));
    assert!(
        r.error.as_deref().unwrap().contains("lock timeout"),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // Other tables are unaffected.
    assert!(conn.vacuum_table(&s, "users", 1).await.ok());
    holder.batch_execute("ROLLBACK").await.unwrap();
    drop(conn);
    drop(admin);
    db.drop().await;
}

#[tokio::test]
async fn reindex_concurrently_reports_sizes_and_statements() {
    let (db, admin, s) = setup().await;
    churn(&admin, &s, "Content", 5000).await;
    churn(&admin, &s, "devices", 1000).await;
    let conn = maint_conn(&db, &s).await;
    assert!(conn.supports_reindex_concurrently());

    let wanted = vec![
        "Content_status_idx".to_string(),
        "devices_status_idx".to_string(),
        "PlaylistItem_playlistId_idx".into(),
    ];
    let (present, missing) = conn.existing_indexes(&s, &wanted).await.unwrap();
    assert_eq!(present, wanted[..2].to_vec());
    assert_eq!(missing, vec!["PlaylistItem_playlistId_idx".to_string()]);
    // A table name is not an index (relkind 'i').
    let (_, missing) = conn
        .existing_indexes(&s, &["Content".to_string()])
        .await
        .unwrap();
    assert_eq!(missing, vec!["Content".to_string()]);

    let r = conn.reindex_index(&s, "Content_status_idx", 5).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        r.statement,
        format!("REINDEX INDEX CONCURRENTLY \"{s}\".\"Content_status_idx\"")
    );
    assert!(
        r.statements
            .iter()
            .position(|q| q.starts_with("SET lock_timeout"))
            .unwrap()
            < r.statements.iter().position(|q| q == &r.statement).unwrap()
    );
    assert_eq!(r.table.as_deref(), Some("Content"));
    let (before, after) = (r.size_before_bytes.unwrap(), r.size_after_bytes.unwrap());
    assert!(
        before > 0 && after > 0 && after <= before,
        "before={before} after={after}"
    );

    let t = conn.reindex_table(&s, "devices", 5).await;
    assert!(t.ok(), "{t:?}");
    assert_eq!(
        t.statement,
        format!("REINDEX TABLE CONCURRENTLY \"{s}\".\"devices\"")
    );
    assert!(t.indexes_size_before_bytes.unwrap() > 0 && t.indexes_size_after_bytes.unwrap() > 0);

    // A missing index fails in the report, not by panicking or hanging.
    let m = conn.reindex_index(&s, "Nope_idx", 1).await;
    assert!(!m.ok() && m.size_before_bytes.is_none());
    assert!(conn.invalid_leftovers(&s).await.unwrap().is_empty());
    drop(conn);
    drop(admin);
    db.drop().await;
}

#[tokio::test]
async fn invalid_ccnew_leftover_is_detected_and_never_dropped() {
    let (db, admin, s) = setup().await;
    churn(&admin, &s, "Playlist", 50).await; // n has duplicates
    let err = admin
        .batch_execute(&format!(
            "CREATE UNIQUE INDEX CONCURRENTLY \"x_ccnew\" ON \"{s}\".\"Playlist\" (n)"
        ))
        .await
        .expect_err("unique violation leaves an INVALID index");
    assert_eq!(err.code().map(|c| c.code()), Some("23505"));
    let conn = maint_conn(&db, &s).await;
    let leftovers = conn.invalid_leftovers(&s).await.unwrap();
    assert_eq!(leftovers, vec!["x_ccnew".to_string()]);
    assert_eq!(leftover_for("x", &leftovers), Some("x_ccnew"));
    assert_eq!(leftover_for("Content_status_idx", &leftovers), None);
    // Checking and maintaining other objects never removes it.
    let _ = conn.vacuum_table(&s, "Playlist", 5).await;
    let _ = conn.reindex_index(&s, "Content_status_idx", 5).await;
    let still: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = 'x_ccnew'",
            &[&s],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(still, 1);
    assert_eq!(
        conn.invalid_leftovers(&s).await.unwrap(),
        vec!["x_ccnew".to_string()]
    );
    drop(conn);
    drop(admin);
    db.drop().await;
}

#[tokio::test]
async fn pgstatindex_figures_are_reported_when_pgstattuple_is_installed() {
    let db = TestDb::new().await;
    let db_url = db.url.clone();
    {
        let c = raw_connect(&db_url).await;
        c.batch_execute(
            "CREATE EXTENSION pgstattuple; \
             CREATE TABLE \"AuditLog\" (id serial PRIMARY KEY, \"createdAt\" timestamptz NOT NULL) \
               WITH (autovacuum_enabled = off); \
             CREATE INDEX \"AuditLog_createdAt_idx\" ON \"AuditLog\" (\"createdAt\"); \
             INSERT INTO \"AuditLog\" (\"createdAt\") SELECT now() - g * interval '1 second' \
               FROM generate_series(1, 20000) g; \
             DELETE FROM \"AuditLog\" WHERE id % 2 = 0;",
        )
        .await
        .unwrap();
        let target = prepare_url(&db_url).unwrap();
        assert_eq!(target.schema, "public");
        let conn = postgres::connect(&target, 600).await.unwrap();
        assert_eq!(conn.pgstattuple_schema().await.as_deref(), Some("public"));
        let r = conn
            .reindex_index("public", "AuditLog_createdAt_idx", 5)
            .await;
        assert!(r.ok(), "{r:?}");
        let (d0, d1) = (
            r.avg_leaf_density_before.unwrap(),
            r.avg_leaf_density_after.unwrap(),
        );
        assert!(d1 > d0, "density before {d0} after {d1}");
        assert!(r.leaf_fragmentation_before.is_some() && r.leaf_fragmentation_after.is_some());
        assert!(
            r.size_after_bytes.unwrap() < r.size_before_bytes.unwrap(),
            "{r:?}"
        );
        assert!(r.statements.iter().any(|q| q.contains("pgstatindex")));
    }
    db.drop().await;
}

#[tokio::test]
async fn connection_errors_are_clear_and_never_show_the_password() {
    let base = support::pg_url();
    let u = url::Url::parse(&base).unwrap();
    let host = u.host_str().unwrap().to_string();
    let port = u.port().unwrap_or(5432);
    let secret = "Sup3r-Secret-pw";

    // Refused port.
    let t = prepare_url(&format!(
        "postgres://postgres:{secret}@{host}:1/postgres?sslmode=disable"
    ))
    .unwrap();
    assert!(!t.url_redacted.contains(secret) && !format!("{t:?}").contains(secret));
    let e = postgres::connect(&t, 60).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, MaintError::Connect { .. }), "{e:?}");
    assert!(!msg.contains(secret), "{msg}");
    assert!(
        msg.to_lowercase().contains("refused") || msg.contains("connecting"),
        "{msg}"
    );

    // Unknown role (the test server trusts local connections, so a wrong password is not rejected; an unknown role
    // is the authentication failure we can provoke).
    let t = prepare_url(&format!(
        "postgres://no_such_role_x:{secret}@{host}:{port}/postgres"
    ))
    .unwrap();
    let e = postgres::connect(&t, 60).await.unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains(secret), "{msg}");
    assert!(
        msg.contains("no_such_role_x") && msg.contains("does not exist"),
        "{msg}"
    );

    // sslmode=require against a server that declines TLS (a listener answering the SSLRequest with `N`, as a server
    // without ssl=on does): a clear connection error, never a silent downgrade to plain text.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    let declines = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut sock, _) = plain.accept().await.unwrap();
        let mut req = [0u8; 8];
        sock.read_exact(&mut req).await.unwrap();
        // SSLRequest: length 8, code 80877103.
        assert_eq!(req, [0, 0, 0, 8, 4, 210, 22, 47]);
        sock.write_all(b"N").await.unwrap();
        // Anything after this would be a plain-text startup message: record whether one came.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), sock.read_to_end(&mut rest)).await;
        rest
    });
    let t = prepare_url(&format!(
        "postgres://postgres:{secret}@127.0.0.1:{plain_port}/postgres?sslmode=require"
    ))
    .unwrap();
    let e = postgres::connect(&t, 60).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, MaintError::Connect { .. }), "{e:?}");
    assert!(msg.to_lowercase().contains("tls"), "{msg}");
    assert!(!msg.contains(secret), "{msg}");
    let after = declines.await.unwrap();
    assert!(
        after.is_empty(),
        "a startup message was sent in plain text after the server declined TLS"
    );

    // Unroutable address: bounded by the 5 s connect timeout.
    let t = prepare_url(&format!(
        "postgres://postgres:{secret}@10.255.255.1:5432/postgres"
    ))
    .unwrap();
    let started = Instant::now();
    let e = postgres::connect(&t, 60).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(!e.to_string().contains(secret));
}

/// Whether the session of `conn` is encrypted, from the server's own view (`pg_stat_ssl`).
async fn session_encrypted(conn: &PgConn) -> bool {
    conn.client()
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get::<_, bool>(0)
}

#[tokio::test]
async fn sslmode_is_honoured_against_a_tls_enabled_server() {
    // scripts/test.sh starts the test cluster with ssl=on and a self-signed certificate; libpq's require/prefer do
    // not verify the certificate, and neither does vizora-ops.
    let base = support::pg_url();
    for (mode, encrypted) in [("require", true), ("prefer", true), ("disable", false)] {
        let t = prepare_url(&with_params(&base, &format!("sslmode={mode}"))).unwrap();
        let conn = postgres::connect(&t, 60)
            .await
            .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert_eq!(
            session_encrypted(&conn).await,
            encrypted,
            "sslmode={mode} (is the test cluster running with ssl=on? see scripts/test.sh)"
        );
    }
    // No sslmode: libpq's default `prefer`, so TLS when the server offers it.
    let t = prepare_url(&base).unwrap();
    let conn = postgres::connect(&t, 60).await.unwrap();
    assert!(session_encrypted(&conn).await);
}

#[tokio::test]
async fn invalid_identifiers_are_rejected_before_any_sql() {
    let (db, admin, s) = setup().await;
    let conn = maint_conn(&db, &s).await;
    let e = conn
        .existing_tables(&s, &["Content; DROP TABLE users".to_string()])
        .await
        .unwrap_err();
    assert!(matches!(e, MaintError::Config { .. }), "{e:?}");
    let r = conn.vacuum_table(&s, "users\"", 1).await;
    assert!(!r.ok() && r.statements.is_empty());
    drop(conn);
    drop(admin);
    db.drop().await;
}
