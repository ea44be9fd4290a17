//! PostgreSQL for the metadata suites: each test gets a database of its own on the server
//! named by `BULWARK_TEST_POSTGRES_URL` (skipped without it, unless
//! `BULWARK_REQUIRE_POSTGRES=1`), dropped afterwards whatever the outcome.
#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server's URL, or `None` (having said so) when the PostgreSQL tests are skipped.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("BULWARK_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("BULWARK_REQUIRE_POSTGRES").as_deref() == Ok("1") => panic!(
            "BULWARK_REQUIRE_POSTGRES=1 but BULWARK_TEST_POSTGRES_URL is not set: point it at a \
             PostgreSQL server whose user may create databases, e.g. \
             postgres://postgres@127.0.0.1:5432/postgres (scripts/test.sh starts one)"
        ),
        _ => {
            println!("skipped: BULWARK_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// `url` with its database name replaced by `database` (query parameters are kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(i) => &base[..authority + i],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Run `test` with the URL of a new, empty database of its own on the test server, and drop
/// the database afterwards, whether the test passed or panicked.
pub async fn with_postgres_database<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    use futures::FutureExt;
    use sqlx::{Connection, Executor};

    let Some(admin) = postgres_admin_url() else {
        return;
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!(
        "bulwark_{}_{}_{}_{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id(),
        nanos % 1_000_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to BULWARK_TEST_POSTGRES_URL: {e}"));
    // An ICU collation whose order is not byte order where the server has ICU (PostgreSQL 15
    // and later), so the checks also show that the store does not depend on the database's
    // default collation; a plain database elsewhere.
    let icu = format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
         LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
    );
    if conn.execute(icu.as_str()).await.is_err() {
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    }
    let outcome = AssertUnwindSafe(test(with_database(&admin, &name)))
        .catch_unwind()
        .await;
    // FORCE: a store a panicking test left open must not keep the database alive.
    let dropped = conn
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await;
    conn.close().await.ok();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.unwrap_or_else(|e| panic!("cannot drop test database {name}: {e}"));
}
