//! The `bulwark` binary: configuration, logging and the command line (`serve`, `gc`, `admin`,
//! `scan`, `vulndb`, ...).

mod admin;
mod backends;
mod config;
mod migrate;
mod scan;
mod trust;
mod vulndb;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bulwark_auth::service::{AuthConfig, AuthService, BOOTSTRAP_ADMIN};
use bulwark_auth::store::AuthStore;
use bulwark_auth::{Limit, RateLimitConfig, Secret};
use bulwark_core::gc::GcOptions;
use bulwark_core::{Registry, RegistryConfig, SystemClock};
use bulwark_server::{AppState, Settings};
use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "bulwark", version, about = "A secure OCI container registry")]
struct Cli {
    /// TOML configuration file (defaults apply without one; BULWARK_* variables override both).
    #[arg(long, short, global = true, env = "BULWARK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve,
    /// Remove unreferenced blobs and untagged manifests older than the grace window.
    Gc {
        /// Report what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
        /// Override the configured grace window (seconds).
        #[arg(long)]
        grace_secs: Option<i64>,
    },
    /// Print the effective configuration as TOML.
    Config,
    /// Manage users, projects, robot accounts and the signing key: offline on the data
    /// directory (refused while a server runs there), or through a running server with --url.
    Admin(admin::AdminArgs),
    /// Copy the embedded SQLite database (and with --blobs the data directory's blobs) to
    /// PostgreSQL (and S3); refused while a server runs on the data directory.
    Migrate(migrate::MigrateArgs),
    /// Inventory an image on disk: an OCI layout directory or a `docker save`/OCI tarball.
    Scan {
        /// OCI image layout directory, or a tar archive.
        path: PathBuf,
        /// Which image of the layout/archive (tag or reference name); default: the only one.
        #[arg(long)]
        reference: Option<String>,
        /// Platform to pick from a multi-platform index.
        #[arg(long, default_value = "linux/amd64")]
        platform: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Metadata database to match vulnerabilities against (default: the data directory's;
        /// matching is skipped while it holds no vulnerability data).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Grade as of this time (RFC 3339) instead of now.
        #[arg(long, hide = true)]
        now: Option<String>,
        #[command(flatten)]
        output: scan::OutputArgs,
    },
    /// Vulnerability database: import feeds, show status.
    Vulndb {
        #[command(subcommand)]
        command: vulndb::VulndbCommand,
    },
    /// Signing keys: `key generate` writes a cosign-compatible key pair.
    Key {
        #[command(subcommand)]
        command: trust::KeyCommand,
    },
    /// Sign an image in any registry with a cosign-compatible key.
    Sign(trust::SignArgs),
    /// Verify an image's cosign signatures against trusted public keys (exit 0 only if one holds).
    Verify(trust::VerifyArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    init_tracing(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Gc {
                dry_run,
                grace_secs,
            } => gc(config, dry_run, grace_secs).await,
            Command::Scan {
                path,
                reference,
                platform,
                json,
                db,
                now,
                output,
            } => {
                let args = scan::ScanArgs {
                    path,
                    reference,
                    platform,
                    json,
                    db,
                    now,
                    output,
                };
                scan::run(&config, args).await
            }
            Command::Vulndb { command } => vulndb::run(&config, command).await,
            Command::Key { command } => trust::run_key(command).await,
            Command::Sign(args) => trust::run_sign(args).await,
            Command::Verify(args) => trust::run_verify(args).await,
            Command::Config => {
                println!("{}", toml::to_string_pretty(&config)?);
                Ok(())
            }
            Command::Admin(args) => admin::run(config, args).await,
            Command::Migrate(args) => migrate::run(&config, args).await,
        }
    })
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Exclusive lock on the data directory, held for the life of the process. In-process digest
/// locks make online GC safe; a second process (server or offline `gc`) would bypass them.
pub(crate) fn lock_data_dir(config: &Config) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let path = config.data_dir.join("bulwark.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another bulwark process is using {}; a running server collects garbage itself \
             (gc.interval_secs), stop it to run `bulwark gc` offline",
            config.data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

async fn open_registry(config: &Config) -> anyhow::Result<(Arc<Registry>, backends::Metadata)> {
    let blobs = backends::open_blobs(config).await?;
    let meta = backends::open_metadata(config).await?;
    tracing::debug!(metadata = meta.kind, "metadata store open");
    let registry = Arc::new(Registry::new(
        blobs,
        meta.registry.clone(),
        Arc::new(SystemClock),
        RegistryConfig {
            max_manifest_bytes: config.limits.max_manifest_bytes,
            max_blob_bytes: (config.limits.max_blob_bytes > 0)
                .then_some(config.limits.max_blob_bytes),
            upload_expiry_secs: config.uploads.expiry_secs,
            ..RegistryConfig::default()
        },
    ));
    Ok((registry, meta))
}

/// The access-control service over the metadata store, with the first admin created on an
/// empty store.
pub(crate) async fn open_auth(
    config: &Config,
    store: Arc<dyn AuthStore>,
) -> anyhow::Result<Arc<AuthService>> {
    let a = &config.auth;
    let window = a.failed_login_window_secs.max(1);
    let auth = AuthService::new(
        store,
        Arc::new(SystemClock),
        AuthConfig {
            service: a.service.clone(),
            issuer: a.service.clone(),
            access_ttl: Duration::from_secs(a.access_token_ttl_secs.max(1)),
            refresh_ttl: Duration::from_secs(a.refresh_token_ttl_secs.max(1)),
            project_creation: a.project_creation,
            rate_limit: RateLimitConfig {
                per_user: Limit {
                    max_failures: a.max_failed_logins_per_user,
                    window_secs: window,
                },
                per_ip: Limit {
                    max_failures: a.max_failed_logins_per_ip,
                    window_secs: window,
                },
                ..RateLimitConfig::default()
            },
        },
    )
    .await
    .context("loading access control")?;
    if let Some(generated) = auth
        .bootstrap(admin_password_from_env()?)
        .await
        .context("creating the first admin")?
    {
        // Shown exactly once, on the start that created the account.
        tracing::warn!(
            "created user '{BOOTSTRAP_ADMIN}' with password {} — change it with \
             `bulwark admin user passwd {BOOTSTRAP_ADMIN}`; it is not shown again",
            generated.expose()
        );
    }
    Ok(Arc::new(auth))
}

fn admin_password_from_env() -> anyhow::Result<Option<Secret>> {
    if let Some(p) = std::env::var_os("BULWARK_ADMIN_PASSWORD") {
        let p = p
            .into_string()
            .map_err(|_| anyhow::anyhow!("BULWARK_ADMIN_PASSWORD is not UTF-8"))?;
        return Ok(Some(Secret::new(p)));
    }
    if let Some(path) = std::env::var_os("BULWARK_ADMIN_PASSWORD_FILE") {
        let p = std::fs::read_to_string(&path)
            .with_context(|| format!("reading BULWARK_ADMIN_PASSWORD_FILE {path:?}"))?;
        return Ok(Some(Secret::new(p.trim_end_matches(['\n', '\r']))));
    }
    Ok(None)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _lock = lock_data_dir(&config)?;
    // Before anything registers a metric: handles taken earlier would stay no-ops.
    let metrics = if config.metrics.enabled {
        Some(install_metrics_recorder()?)
    } else {
        None
    };
    let (registry, meta) = open_registry(&config).await?;
    let auth = open_auth(&config, meta.auth.clone()).await?;
    let trust = bulwark_server::trust::enforcer(registry.clone(), meta.trust.clone());
    let audit_task = trust.spawn_audit_flusher(Duration::from_secs(5));
    // Results may come from any replica's scanner, so the gate reads them even when this
    // replica does not scan.
    trust.set_scan_findings(Arc::new(bulwark_server::trust::StoredFindings(
        meta.scans.clone(),
    )));
    let cleaned = registry
        .clean_uploads()
        .await
        .context("cleaning stale uploads")?;
    if cleaned > 0 {
        tracing::info!(removed = cleaned, "removed stale upload data");
    }
    let gc_task = (config.gc.interval_secs > 0).then(|| {
        bulwark_server::worker::spawn_gc(
            registry.clone(),
            Duration::from_secs(config.gc.interval_secs),
            config.gc.grace_secs,
        )
    });
    let scans = config.scanner.enabled.then(|| {
        let c = &config.scanner;
        Arc::new(bulwark_server::scan::ScanService::new(
            registry.clone(),
            meta.registry.clone(),
            meta.scans.clone(),
            meta.vulns.clone(),
            bulwark_server::scan::ScanConfig {
                workers: c.workers,
                lease_secs: c.lease_secs.max(1),
                rescan_interval_secs: c.rescan_interval_secs,
                sbom_referrer: c.sbom_referrer,
                job_retention_secs: i64::try_from(c.job_retention_days.saturating_mul(86_400))
                    .unwrap_or(i64::MAX),
                backfill_on_start: c.backfill_on_start,
                queue_metrics: config.metrics.enabled,
                ..Default::default()
            },
        ))
    });
    let scan_tasks = scans.as_ref().map(|s| s.spawn()).unwrap_or_default();
    let mut app = bulwark_server::router(AppState {
        registry,
        auth,
        settings: Arc::new(Settings {
            realm: config.auth.realm.clone(),
            tls: config.tls.is_some(),
            gc_grace_secs: config.gc.grace_secs,
        }),
        trust: trust.clone(),
        scans,
    });
    let upkeep_task = match metrics {
        Some(handle) => {
            let render = handle.clone();
            app = bulwark_server::telemetry::with_metrics_endpoint(
                app,
                bulwark_server::telemetry::MetricsEndpoint {
                    path: config.metrics.path.clone(),
                    token: config.metrics.token.clone(),
                    render: Arc::new(move || render.render()),
                },
            )
            .map_err(|e| anyhow::anyhow!(e))
            .context("configuring [metrics]")?;
            // Histogram samples accumulate between scrapes; upkeep folds them in.
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            }))
        }
        None => None,
    };

    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(
        handle.clone(),
        Duration::from_secs(config.shutdown_grace_secs),
    ));
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match &config.tls {
        Some(tls) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .context("loading TLS certificate and key")?;
            tracing::info!(%addr, data_dir = %config.data_dir.display(), "bulwark listening (https)");
            axum_server::from_tcp_rustls(listener, rustls)
                .handle(handle)
                .serve(service)
                .await?;
        }
        None => {
            tracing::info!(%addr, data_dir = %config.data_dir.display(), "bulwark listening (http)");
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(service)
                .await?;
        }
    }
    if let Some(task) = gc_task {
        task.abort();
    }
    scan_tasks.iter().for_each(|t| t.abort());
    if let Some(task) = upkeep_task {
        task.abort();
    }
    audit_task.abort();
    if let Err(e) = trust.flush_audit().await {
        tracing::error!(error = %e, "writing the last trust decisions failed");
    }
    tracing::info!("bulwark stopped");
    Ok(())
}

/// The process-wide Prometheus recorder; histograms get buckets (not summaries) so that
/// replicas can be aggregated.
fn install_metrics_recorder() -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    const LATENCY_BUCKETS: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        300.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(bulwark_server::telemetry::HTTP_DURATION.into()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(bulwark_server::scan::metric::DURATION.into()),
            &[
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ],
        )?
        .install_recorder()
        .context("installing the metrics recorder")?;
    bulwark_server::telemetry::describe_metrics();
    bulwark_server::scan::init_metrics();
    bulwark_core::gc::init_metrics();
    Ok(handle)
}

async fn shutdown_on_signal(handle: axum_server::Handle, grace: Duration) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down; letting in-flight requests finish"
    );
    handle.graceful_shutdown(Some(grace));
}

async fn gc(config: Config, dry_run: bool, grace_secs: Option<i64>) -> anyhow::Result<()> {
    let _lock = lock_data_dir(&config)?;
    let (registry, _) = open_registry(&config).await?;
    let report = registry
        .collect_garbage(GcOptions {
            grace_secs: grace_secs.unwrap_or(config.gc.grace_secs),
            dry_run,
        })
        .await
        .context("garbage collection")?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
