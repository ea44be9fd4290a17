//! Bulwark's metadata store and the only crate with SQL: repositories, blobs and their links,
//! manifests with their references, tags and upload sessions. [`SqliteStore`] is the embedded
//! default (WAL, one writer connection, a pool of readers); [`PostgresStore`] is the same
//! store on PostgreSQL (a connection pool, safe for replicas sharing one database).

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
