//! Bulwark's metadata store and the only crate with SQL: repositories, blobs and their links,
//! manifests with their references, tags and upload sessions, and the access-control data
//! (users, teams, projects, members, repository rules, robots, personal access tokens and token
//! signing keys, through [`bulwark_auth::store::AuthStore`]), the vulnerability database
//! (through `bulwark_scanner::vulndb::store::VulnStore`), scan jobs, results and events
//! (through `bulwark_scanner::jobs::ScanStore`) and trust policies with their decision log
//! (through `bulwark_trust::enforce::PolicyStore`). [`SqliteStore`] is the embedded
//! default (WAL, one writer connection, a pool of readers); [`PostgresStore`] is the same
//! store on PostgreSQL (a connection pool, safe for replicas sharing one database).

mod migrate;
mod postgres;
mod postgres_auth;
mod postgres_vuln;
mod scan;
mod sqlite;
mod sqlite_auth;
mod sqlite_vuln;
mod trust;

/// A count or size for an `INTEGER`/`BIGINT` column (saturating: neither database has u64).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A count or size read back (a negative value, which the store never writes, reads as 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub use migrate::{
    MigrateError, MigrationReport, check_sqlite_to_postgres, copy_sqlite_to_postgres,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
