//! `tenantmq standalone`: gateway, worker and (later) control API in one process, on
//! embedded defaults.
//!
//! Built so far: the broker engine behind a plain-TCP listener for the anonymous `dev`
//! tenant (`--dev-plain`). The TLS gateway, device authentication and the embedded control
//! API are the next issue; until they land, `--dev-plain` is required.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;
use tenantmq_common::TenantId;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown;
use tenantmq_gateway::auth::DevAnonymous;
use tenantmq_gateway::connection::ConnectionContext;
use tenantmq_gateway::stats::GatewayStats;
use tenantmq_gateway::{GatewayConfig, run_listener};
use tenantmq_worker::Worker;
use tokio::net::TcpListener;

/// The id of the built-in `dev` tenant of the dev flags.
pub const DEV_TENANT_ID: TenantId = TenantId::from_uuid(uuid::Uuid::from_u128(
    0x0000_0000_0000_4000_8000_0000_0000_0de5,
));

/// Flags of `tenantmq standalone`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve anonymous clients of a built-in `dev` tenant over plain TCP (development only).
    #[arg(long)]
    dev_plain: bool,
    /// Address of the plain-TCP MQTT listener of `--dev-plain` (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1883", env = "TENANTMQ_MQTT_LISTEN")]
    mqtt_listen: SocketAddr,
    /// Directory for state, certificates and `endpoints.json`.
    #[arg(long, default_value = "./data", env = "TENANTMQ_DATA_DIR")]
    data_dir: PathBuf,
}

/// Bound addresses, written to `<data-dir>/endpoints.json` so that scripts and tests can find
/// listeners started on port 0.
#[derive(Serialize, Debug)]
struct Endpoints {
    /// Plain MQTT (dev flag only).
    #[serde(skip_serializing_if = "Option::is_none")]
    mqtt: Option<SocketAddr>,
}

/// Runs standalone mode until SIGINT or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if !args.dev_plain {
        bail!(
            "the TLS gateway is not built yet; run `tenantmq standalone --dev-plain` for the \
             plain-TCP developer listener"
        );
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;

    let (trigger, signal) = shutdown::channel();
    let worker = Worker::new(signal.clone());
    let gateway = Arc::new(ConnectionContext {
        config: GatewayConfig::default(),
        link: worker.clone(),
        authenticator: Arc::new(DevAnonymous::new(DEV_TENANT_ID, Quotas::unlimited())),
        stats: Arc::new(GatewayStats::default()),
    });

    let listener = TcpListener::bind(args.mqtt_listen)
        .await
        .with_context(|| format!("binding the MQTT listener on {}", args.mqtt_listen))?;
    let mqtt = listener.local_addr()?;
    let endpoints = Endpoints { mqtt: Some(mqtt) };
    write_endpoints(&args.data_dir, &endpoints)?;
    println!("tenantmq standalone (dev-plain) ready");
    println!("  mqtt (plain, anonymous dev tenant): {mqtt}");
    println!(
        "  endpoints file: {}",
        args.data_dir.join("endpoints.json").display()
    );
    println!(
        "  try: mosquitto_sub -h {} -p {} -t 'demo/#' -v",
        mqtt.ip(),
        mqtt.port()
    );

    let listener_task = tokio::spawn(run_listener(listener, gateway, signal));
    crate::signal::wait_for_signal().await;
    tracing::info!("shutting down");
    trigger.trigger();
    let _ = listener_task.await;
    worker.join().await;
    Ok(())
}

fn write_endpoints(dir: &Path, endpoints: &Endpoints) -> anyhow::Result<()> {
    let path = dir.join("endpoints.json");
    let tmp = dir.join("endpoints.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(endpoints)?)?;
    // Rename is atomic: a reader never sees a half-written file.
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
