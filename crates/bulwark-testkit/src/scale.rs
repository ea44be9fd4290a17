//! PostgreSQL + S3 for tests that run Bulwark "at scale": a fresh database and bucket per
//! server on the loopback servers scripts/test.sh starts (`BULWARK_TEST_POSTGRES_URL`,
//! `BULWARK_TEST_S3_ENDPOINT`), and the `BULWARK_*` variables that point a replica at them.
//! With `BULWARK_TEST_BACKEND=postgres-s3`, every [`crate::TestServer::start_with`] runs on
//! its own database and bucket instead of the embedded default.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn required(var: &str) -> bool {
    std::env::var(var).as_deref() == Ok("1")
}

/// Loopback-only PostgreSQL and S3 endpoints, or `None` to skip.
pub fn backends() -> Option<(String, String)> {
    let pg = std::env::var("BULWARK_TEST_POSTGRES_URL").ok();
    let s3 = std::env::var("BULWARK_TEST_S3_ENDPOINT").ok();
    match (pg, s3) {
        (Some(pg), Some(s3)) => Some((pg, s3)),
        (pg, s3) => {
            assert!(
                !(required("BULWARK_REQUIRE_POSTGRES") && pg.is_none()),
                "BULWARK_REQUIRE_POSTGRES=1 but BULWARK_TEST_POSTGRES_URL is not set"
            );
            assert!(
                !(required("BULWARK_REQUIRE_S3") && s3.is_none()),
                "BULWARK_REQUIRE_S3=1 but BULWARK_TEST_S3_ENDPOINT is not set"
            );
            eprintln!("skipped: needs BULWARK_TEST_POSTGRES_URL and BULWARK_TEST_S3_ENDPOINT");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fresh database for one test, dropped (with FORCE) when the guard goes.
pub struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    pub fn create(admin: &str) -> Database {
        let name = unique("bulwark_replicas");
        run_sql(admin, &format!("CREATE DATABASE {name}"));
        Database {
            admin: admin.to_owned(),
            url: replace_database(admin, &name),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        run_sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn run_sql(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test PostgreSQL");
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("test PostgreSQL");
        conn.execute(sql).await.expect("test PostgreSQL");
        conn.close().await.ok();
    });
}

/// `PUT /<bucket>` on the loopback S3 server (moto accepts unsigned requests).
pub fn create_bucket(endpoint: &str) -> String {
    let bucket = unique("replicas").replace('_', "-");
    let authority = endpoint
        .strip_prefix("http://")
        .expect("an http:// endpoint")
        .trim_end_matches('/');
    assert!(
        authority.starts_with("127.0.0.1:"),
        "loopback only: {authority}"
    );
    let mut s = std::net::TcpStream::connect(authority).expect("test S3 server");
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("test S3 server");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("test S3 server");
    assert!(resp.starts_with("HTTP/1.1 200"), "create bucket: {resp}");
    bucket
}

pub struct Cluster {
    _db: Database,
    pub envs: Vec<(String, String)>,
}

impl Cluster {
    pub fn new(pg: &str, s3: &str) -> Cluster {
        let db = Database::create(pg);
        let bucket = create_bucket(s3);
        let envs = vec![
            ("BULWARK_DATABASE__URL".into(), db.url.clone()),
            ("BULWARK_STORAGE__BACKEND".into(), "s3".into()),
            ("BULWARK_STORAGE__S3__BUCKET".into(), bucket),
            ("BULWARK_STORAGE__S3__PREFIX".into(), "registry".into()),
            ("BULWARK_STORAGE__S3__ENDPOINT".into(), s3.to_owned()),
            ("BULWARK_STORAGE__S3__REGION".into(), "us-east-1".into()),
            (
                "BULWARK_STORAGE__S3__ACCESS_KEY_ID".into(),
                "testing".into(),
            ),
            (
                "BULWARK_STORAGE__S3__SECRET_ACCESS_KEY".into(),
                "testing".into(),
            ),
            ("BULWARK_STORAGE__S3__ALLOW_HTTP".into(), "true".into()),
            ("BULWARK_GC__INTERVAL_SECS".into(), "0".into()),
        ];
        Cluster { _db: db, envs }
    }

    /// The cluster's environment with `extra` added (a key in `extra` replaces the cluster's).
    pub fn envs_with<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .collect();
        envs.extend_from_slice(extra);
        envs
    }
}
