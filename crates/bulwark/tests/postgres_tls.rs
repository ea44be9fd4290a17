//! TLS to PostgreSQL: `database.url` with `sslmode=verify-full&sslrootcert=…` connects over
//! TLS and checks the server's certificate, and the wrong CA is refused. Needs a server with
//! `ssl=on` named by `BULWARK_TEST_POSTGRES_TLS_URL` and the CA that signed its certificate in
//! `BULWARK_TEST_POSTGRES_TLS_CA` (scripts/test.sh starts one); skipped without them, unless
//! `BULWARK_REQUIRE_POSTGRES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sqlx::{Connection, Executor, PgConnection, Row};

/// (server URL, CA file), or `None` (having said so) when these tests are skipped.
fn tls_server() -> Option<(String, String)> {
    let url = std::env::var("BULWARK_TEST_POSTGRES_TLS_URL").unwrap_or_default();
    let ca = std::env::var("BULWARK_TEST_POSTGRES_TLS_CA").unwrap_or_default();
    if !url.trim().is_empty() && !ca.trim().is_empty() {
        return Some((url, ca));
    }
    if std::env::var("BULWARK_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!(
            "BULWARK_REQUIRE_POSTGRES=1 but BULWARK_TEST_POSTGRES_TLS_URL or \
             BULWARK_TEST_POSTGRES_TLS_CA is not set: point them at a PostgreSQL server with \
             ssl=on (e.g. postgres://postgres@127.0.0.1:5432/postgres) and the CA file that \
             signed its certificate (scripts/test.sh starts one)"
        );
    }
    println!("skipped: BULWARK_TEST_POSTGRES_TLS_URL / BULWARK_TEST_POSTGRES_TLS_CA not set");
    None
}

/// `url` with its own `sslmode`/`sslrootcert` replaced by these (other parameters kept), and
/// its database replaced by `database` when given.
fn with_ssl(url: &str, database: Option<&str>, sslmode: &str, ca: Option<&str>) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match database {
        Some(db) => {
            let authority = base.find("://").map_or(0, |i| i + 3);
            let host_end = base[authority..]
                .find('/')
                .map_or(base.len(), |i| authority + i);
            format!("{}/{db}", &base[..host_end])
        }
        None => base.to_owned(),
    };
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode=") && !p.starts_with("sslrootcert="))
        .map(str::to_owned)
        .collect();
    params.push(format!("sslmode={sslmode}"));
    if let Some(ca) = ca {
        params.push(format!("sslrootcert={ca}"));
    }
    format!("{base}?{}", params.join("&"))
}

async fn uses_tls(conn: &mut PgConnection) -> bool {
    conn.fetch_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await
        .unwrap()
        .get::<bool, _>(0)
}

#[tokio::test]
async fn verify_full_connects_over_tls_and_the_store_opens() {
    let Some((url, ca)) = tls_server() else {
        return;
    };
    let verified = with_ssl(&url, None, "verify-full", Some(&ca));
    let mut conn = PgConnection::connect(&verified)
        .await
        .unwrap_or_else(|e| panic!("verify-full with the right CA failed: {e}"));
    assert!(
        uses_tls(&mut conn).await,
        "verify-full connected without TLS"
    );

    // The metadata store's own connection path (pools, startup options, migrations) on a
    // database of its own.
    let name = format!("bulwark_tls_{}", std::process::id());
    conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await
        .unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let store =
        bulwark_meta::PostgresStore::open(&with_ssl(&url, Some(&name), "verify-full", Some(&ca)))
            .await;
    if let Ok(store) = &store {
        store.close().await;
    }
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    if let Err(e) = store {
        panic!("PostgresStore::open with verify-full failed: {e}");
    }

    // Plain connections still work where TLS is not asked for.
    let mut plain = PgConnection::connect(&with_ssl(&url, None, "disable", None))
        .await
        .unwrap();
    assert!(!uses_tls(&mut plain).await, "sslmode=disable used TLS");
    plain.close().await.ok();
    conn.close().await.ok();
}

#[tokio::test]
async fn verify_full_refuses_a_server_certificate_from_another_ca() {
    let Some((url, _)) = tls_server() else {
        return;
    };
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "not the server's CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let wrong = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, wrong.pem()).unwrap();
    let wrong_url = with_ssl(&url, None, "verify-full", wrong_ca.to_str());

    let Err(err) = PgConnection::connect(&wrong_url).await else {
        panic!("verify-full accepted a certificate from another CA");
    };
    let msg = err.to_string();
    println!("wrong CA: {msg}");
    assert!(
        msg.contains("UnknownIssuer") || msg.to_ascii_lowercase().contains("certificate"),
        "unclear error for the wrong CA: {msg}"
    );
    // The store reports it too, rather than falling back to an unverified connection.
    let Err(err) = bulwark_meta::PostgresStore::open(&wrong_url).await else {
        panic!("PostgresStore::open accepted a certificate from another CA");
    };
    let msg = err.to_string();
    assert!(
        msg.contains("UnknownIssuer") || msg.to_ascii_lowercase().contains("certificate"),
        "unclear error for the wrong CA: {msg}"
    );
}

#[test]
fn ssl_parameters_are_replaced() {
    assert_eq!(
        with_ssl(
            "postgres://u@h:1/db?sslmode=require&application_name=x",
            Some("other"),
            "verify-full",
            Some("/ca.pem")
        ),
        "postgres://u@h:1/other?application_name=x&sslmode=verify-full&sslrootcert=/ca.pem"
    );
    assert_eq!(
        with_ssl("postgres://u@h:1/db", None, "disable", None),
        "postgres://u@h:1/db?sslmode=disable"
    );
}
