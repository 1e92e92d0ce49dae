//! `tenantmq control-api` and `tenantmq migrate`: configuration loading and start-up of the
//! control plane. Layers: defaults → `--config` file (TOML, or JSON by extension) →
//! `TENANTMQ_*` environment variables → command-line flags (clap reads both of the last two).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tenantmq_common::shutdown;
use tenantmq_control_api::ApiConfig;
use tenantmq_control_store::{ChangeFeed, InProcessFeed, RedisFeed, Secret, Store};

/// Options of `tenantmq control-api`. Secrets are best given through the environment
/// (`TENANTMQ_DATABASE_URL`, `TENANTMQ_OPERATOR_TOKEN`, `TENANTMQ_REDIS_URL`) or the file:
/// command-line arguments are visible to other users of the machine.
#[derive(clap::Args, Debug)]
pub struct ControlApiArgs {
    /// Configuration file (TOML, or JSON when it ends in `.json`).
    #[arg(long, env = "TENANTMQ_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0:8080].
    #[arg(long, env = "TENANTMQ_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// `postgres://…` or `sqlite://…?mode=rwc`.
    #[arg(long, env = "TENANTMQ_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Apply pending migrations at start-up.
    #[arg(long, env = "TENANTMQ_MIGRATE")]
    pub migrate: bool,
    /// Redis for the change feed (cluster mode); without it invalidations stay in-process.
    #[arg(long, env = "TENANTMQ_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Bearer token of the operator routes (at least 16 characters).
    #[arg(long, env = "TENANTMQ_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Signups per client IP and minute.
    #[arg(long, env = "TENANTMQ_SIGNUP_PER_MINUTE")]
    pub signup_per_minute: Option<u32>,
    /// Signup burst per client IP.
    #[arg(long, env = "TENANTMQ_SIGNUP_BURST")]
    pub signup_burst: Option<u32>,
    /// Rate-limit signups by the last `X-Forwarded-For` entry (only behind a trusted proxy).
    #[arg(long, env = "TENANTMQ_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: Option<bool>,
    /// Argon2id memory cost in KiB for new device passwords.
    #[arg(long, env = "TENANTMQ_ARGON2_MEMORY_KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// Argon2id passes.
    #[arg(long, env = "TENANTMQ_ARGON2_ITERATIONS")]
    pub argon2_iterations: Option<u32>,
    /// Argon2id lanes.
    #[arg(long, env = "TENANTMQ_ARGON2_PARALLELISM")]
    pub argon2_parallelism: Option<u32>,
    /// Largest request body in bytes.
    #[arg(long, env = "TENANTMQ_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Ops listener: `/metrics`, `/healthz`, `/readyz` (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9090", env = "TENANTMQ_OPS_LISTEN")]
    pub ops_listen: SocketAddr,
}

/// Options of `tenantmq migrate`.
#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// `postgres://…` or `sqlite://…?mode=rwc`.
    #[arg(long, env = "TENANTMQ_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

impl ControlApiArgs {
    /// The layered configuration.
    fn load(self) -> anyhow::Result<ApiConfig> {
        let mut c = match &self.config {
            Some(path) => ApiConfig::from_file(path)?,
            None => ApiConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        set!(listen, signup_per_minute, signup_burst, trust_forwarded_for);
        set!(
            argon2_memory_kib,
            argon2_iterations,
            argon2_parallelism,
            max_body_bytes
        );
        if let Some(url) = self.database_url {
            c.database_url = Secret::new(url);
        }
        if let Some(url) = self.redis_url {
            c.redis_url = Some(Secret::new(url));
        }
        if let Some(token) = self.operator_token {
            c.operator_token = Some(Secret::new(token));
        }
        c.migrate |= self.migrate;
        c.validate()?;
        Ok(c)
    }
}

/// Runs `tenantmq control-api` until SIGINT/SIGTERM.
///
/// # Errors
/// Invalid configuration, an unreachable database or Redis, a failed migration, or a listen
/// address that cannot be bound.
pub async fn run_control_api(
    args: ControlApiArgs,
    metrics: Arc<tenantmq_common::metrics::Metrics>,
) -> anyhow::Result<()> {
    let ops_listen = args.ops_listen;
    let config = args.load()?;
    let store = Store::connect(config.database_url.expose(), config.migrate)
        .await
        .context("cannot open the control database")?;
    let (trigger, signal) = shutdown::channel();
    let feed: Arc<dyn ChangeFeed> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisFeed::connect(url.expose(), signal.clone())
                .await
                .context("cannot connect to Redis for the change feed")?,
        ),
        None => {
            tracing::warn!("no redis_url: invalidations are not sent to other processes");
            Arc::new(InProcessFeed::new())
        }
    };
    if config.operator_token.is_none() {
        tracing::warn!("no operator_token: the /v1/admin routes refuse every request");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let ops_listener = tokio::net::TcpListener::bind(ops_listen)
        .await
        .with_context(|| format!("cannot listen for ops on {ops_listen}"))?;
    let ops = crate::ops::OpsState::new(metrics, Some(store.clone()));
    ops.set_listeners_bound();
    tracing::info!(addr = ?ops_listener.local_addr().ok(), "ops listener (metrics, health)");
    tokio::spawn(crate::ops::serve(ops_listener, ops, signal.clone()));
    let server = tokio::spawn(tenantmq_control_api::run(
        listener,
        config,
        store.clone(),
        feed,
        signal,
    ));
    crate::signal::wait_for_signal().await;
    trigger.trigger();
    server.await.context("control API task failed")??;
    store.close().await;
    Ok(())
}

/// Runs `tenantmq migrate`: applies the pending migrations of the URL's back-end and exits.
///
/// # Errors
/// An unreachable database or a failed migration.
pub async fn run_migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database_url, true)
        .await
        .context("migration failed")?;
    tracing::info!(backend = store.backend_name(), "migrations applied");
    store.close().await;
    Ok(())
}
