//! Bulwark's metadata store and the only crate with SQL: repositories, blobs and their links,
//! manifests with their references, tags and upload sessions. [`SqliteStore`] is the embedded
//! default (WAL, one writer connection, a pool of readers).

mod sqlite;

pub use sqlite::SqliteStore;
