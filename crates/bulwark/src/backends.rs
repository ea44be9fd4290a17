//! Opening the configured storage engines: SQLite in the data directory or PostgreSQL for
//! metadata, the local filesystem or an S3-compatible bucket for blobs.

use std::sync::Arc;

use anyhow::Context;
use bulwark_auth::store::AuthStore;
use bulwark_core::store::{BlobStore, MetadataStore};
use bulwark_meta::{PostgresStore, SqliteStore};
use bulwark_scanner::jobs::ScanStore;
use bulwark_scanner::vulndb::store::VulnStore;
use bulwark_storage::{FsBlobStore, S3BlobStore};
use bulwark_trust::enforce::PolicyStore;

use crate::config::{Config, StorageBackend};

/// One metadata database seen through the ports that use it.
pub struct Metadata {
    pub registry: Arc<dyn MetadataStore>,
    pub auth: Arc<dyn AuthStore>,
    pub trust: Arc<dyn PolicyStore>,
    /// Scan jobs, results and events, and the vulnerability database they match against.
    pub scans: Arc<dyn ScanStore>,
    pub vulns: Arc<dyn VulnStore>,
    /// `postgres` or `sqlite`, for logs.
    pub kind: &'static str,
}

fn both<T: MetadataStore + AuthStore + PolicyStore + ScanStore + VulnStore + 'static>(
    store: T,
    kind: &'static str,
) -> Metadata {
    let store = Arc::new(store);
    Metadata {
        registry: store.clone(),
        auth: store.clone(),
        trust: store.clone(),
        scans: store.clone(),
        vulns: store,
        kind,
    }
}

pub async fn open_metadata(config: &Config) -> anyhow::Result<Metadata> {
    match config.database.url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::open(url)
                .await
                .context("connecting to PostgreSQL (database.url)")?;
            Ok(both(store, "postgres"))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let store = SqliteStore::open_url(url)
                .await
                .context("opening the SQLite database (database.url)")?;
            Ok(both(store, "sqlite"))
        }
        Some(url) => anyhow::bail!(
            "database.url must start with postgres://, postgresql:// or sqlite: (got a URL with another scheme{})",
            url.split_once(':')
                .map(|(s, _)| format!(" {s:?}"))
                .unwrap_or_default()
        ),
        None => {
            let store = SqliteStore::open(&config.db_path())
                .await
                .context("opening the metadata database")?;
            Ok(both(store, "sqlite"))
        }
    }
}

/// The configured PostgreSQL URL, if metadata lives in PostgreSQL.
pub fn postgres_url(config: &Config) -> Option<&str> {
    config
        .database
        .url
        .as_deref()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// A URL fit for printing: the password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The vulnerability database on PostgreSQL when `database.url` names one, `None` otherwise
/// (the caller then uses the SQLite file it is pointed at).
pub async fn open_postgres_vulndb(
    config: &Config,
) -> anyhow::Result<Option<(Arc<dyn VulnStore>, String)>> {
    let Some(url) = postgres_url(config) else {
        return Ok(None);
    };
    let store = PostgresStore::open(url)
        .await
        .context("connecting to PostgreSQL (database.url)")?;
    Ok(Some((Arc::new(store), redact_url(url))))
}

pub async fn open_blobs(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    match config.storage.backend {
        StorageBackend::Filesystem => Ok(Arc::new(
            FsBlobStore::open(&config.data_dir)
                .await
                .context("opening blob storage")?,
        )),
        StorageBackend::S3 => Ok(Arc::new(
            S3BlobStore::connect(&config.storage.s3).context("configuring S3 blob storage")?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bulwark:s3cret@db:5432/reg"),
            "postgres://bulwark:***@db:5432/reg"
        );
        assert_eq!(redact_url("postgres://db/reg"), "postgres://db/reg");
        assert_eq!(
            redact_url("postgres://user@db/reg"),
            "postgres://user@db/reg"
        );
    }
}
