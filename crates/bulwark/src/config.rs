//! Configuration: built-in defaults, then an optional TOML file, then `BULWARK_*` environment
//! variables (nested keys joined with `__`, e.g. `BULWARK_GC__GRACE_SECS`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bulwark_auth::service::ProjectCreation;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory holding blobs, upload data and the SQLite database.
    pub data_dir: PathBuf,
    pub log: LogConfig,
    /// Serve HTTPS with these PEM files when set.
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub uploads: Uploads,
    pub gc: GcConfig,
    pub auth: AuthSection,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub scanner: ScannerConfig,
    pub metrics: MetricsConfig,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

/// Where metadata lives: unset `url` is SQLite at `<data_dir>/bulwark.db`; `postgres://…` is
/// PostgreSQL (required for several replicas); `sqlite:PATH` names another SQLite file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// `<data_dir>/blobs`.
    #[default]
    Filesystem,
    /// An S3-compatible bucket (`[storage.s3]`).
    S3,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub s3: bulwark_storage::S3Config,
}

/// Access control. The first admin's password comes from `BULWARK_ADMIN_PASSWORD` or the file
/// named by `BULWARK_ADMIN_PASSWORD_FILE` (read only on first start), never from this file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// The token `service` (JWT audience) clients must present.
    pub service: String,
    /// Token realm URL to advertise; unset: `http(s)://<Host>/token` of this server.
    pub realm: Option<String>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Who may create a project by pushing to it: `users` or `admins`.
    pub project_creation: ProjectCreation,
    /// Failed logins tolerated per client IP within `failed_login_window_secs` before 429.
    pub max_failed_logins_per_ip: u32,
    /// Failed logins tolerated per username within `failed_login_window_secs` before 429.
    pub max_failed_logins_per_user: u32,
    pub failed_login_window_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            service: "bulwark".into(),
            realm: None,
            access_token_ttl_secs: 300,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            project_creation: ProjectCreation::Users,
            max_failed_logins_per_ip: 50,
            max_failed_logins_per_user: 10,
            failed_login_window_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `bulwark=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_manifest_bytes: u64,
    /// Largest blob accepted; 0 means no limit.
    pub max_blob_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Uploads {
    /// Upload sessions untouched for this long are removed (at start-up and by GC).
    pub expiry_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcConfig {
    /// Seconds between online GC runs; 0 turns the online collector off.
    pub interval_secs: u64,
    /// Unreferenced content younger than this is kept (protects pushes in flight).
    pub grace_secs: i64,
}

/// Prometheus metrics (text exposition format) at `path`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub path: String,
    /// When set, scrapers must send `Authorization: Bearer <token>`; unset, the endpoint is
    /// open to anyone who can reach the listener.
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            path: "/metrics".into(),
            token: None,
        }
    }
}

/// Scanning in the server: scan on push, rescans when the vulnerability database changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScannerConfig {
    /// Scan pushed images and serve the scan API.
    pub enabled: bool,
    /// Scan workers of this server.
    pub workers: usize,
    /// Seconds between checks for a newer vulnerability-database import (then stored results
    /// are matched again, without reading layers); 0 turns rescans off.
    pub rescan_interval_secs: u64,
    /// A scan job not finished after this many seconds is claimed again (its replica died).
    pub lease_secs: i64,
    /// Attach a CycloneDX SBOM to each scanned image as an OCI referrer.
    pub sbom_referrer: bool,
    /// Finished scan jobs older than this many days are deleted (the newest job of each
    /// manifest is kept); 0 keeps them all.
    pub job_retention_days: u64,
    /// On start, queue a scan of every image that has none (pushed while scanning was off).
    pub backfill_on_start: bool,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        ScannerConfig {
            enabled: true,
            workers: 2,
            rescan_interval_secs: 60,
            lease_secs: 600,
            sbom_referrer: true,
            job_retention_days: 7,
            backfill_on_start: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            data_dir: PathBuf::from("./bulwark-data"),
            log: LogConfig::default(),
            tls: None,
            limits: Limits::default(),
            uploads: Uploads::default(),
            gc: GcConfig::default(),
            auth: AuthSection::default(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            scanner: ScannerConfig::default(),
            metrics: MetricsConfig::default(),
            shutdown_grace_secs: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_blob_bytes: 0,
        }
    }
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads {
            expiry_secs: 24 * 3600,
        }
    }
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval_secs: 3600,
            grace_secs: 24 * 3600,
        }
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "log",
    "tls",
    "limits",
    "uploads",
    "gc",
    "auth",
    "database",
    "storage",
    "scanner",
    "metrics",
    "shutdown_grace_secs",
];

impl Config {
    pub fn load(file: Option<&Path>) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            fig = fig.merge(Toml::file_exact(file));
        }
        // Only our own keys: other BULWARK_* variables (used by tools and tests) are not config.
        let env = Env::prefixed("BULWARK_").split("__").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            let top = k.split(['.']).next().unwrap_or("");
            let top = top.split("__").next().unwrap_or("");
            TOP_LEVEL_KEYS.contains(&top)
        });
        fig.merge(env).extract().map_err(Box::new)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("bulwark.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn defaults_file_and_env_layer() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None).unwrap();
            assert_eq!(c.listen.to_string(), "127.0.0.1:5000");
            assert_eq!(c.data_dir, PathBuf::from("./bulwark-data"));
            assert_eq!(c.limits.max_manifest_bytes, 4 * 1024 * 1024);
            assert!(c.metrics.enabled);
            assert_eq!(c.metrics.path, "/metrics");
            assert_eq!(c.metrics.token, None);
            jail.create_file(
                "b.toml",
                "listen = \"127.0.0.1:6000\"\n[gc]\ngrace_secs = 60\n[log]\nformat = \"json\"\n",
            )?;
            jail.set_env("BULWARK_GC__GRACE_SECS", "5");
            jail.set_env("BULWARK_DATA_DIR", "/tmp/x");
            jail.set_env("BULWARK_METRICS__TOKEN", "scrape-me");
            jail.set_env("BULWARK_REQUIRE_CLIENTS", "1");
            let c = Config::load(Some(Path::new("b.toml"))).unwrap();
            assert_eq!(c.listen.port(), 6000);
            assert_eq!(c.gc.grace_secs, 5);
            assert_eq!(c.log.format, LogFormat::Json);
            assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
            assert_eq!(c.metrics.token.as_deref(), Some("scrape-me"));
            jail.create_file("bad.toml", "lissten = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }
}
