//! `tenantmq standalone`: gateway, worker and control API in one process, on embedded
//! defaults — SQLite under the data dir, an in-process change feed and link, generated
//! certificates. Nothing external is needed.
//!
//! Devices connect over mqtts and wss and are authenticated against the control plane (tenant
//! by SNI, `<slug>/<username>` or client certificate). `--dev-plain` adds plain-TCP and
//! plain-WebSocket listeners for anonymous clients of a built-in `dev` tenant — a developer
//! convenience that never touches real tenants.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tenantmq_broker::EngineOptions;
use tenantmq_broker::sys::SYS_INTERVAL;
use tenantmq_common::TenantId;
use tenantmq_common::metrics::Metrics;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown;
use tenantmq_common::usage::UsageRecorder;
use tenantmq_control_api::ApiConfig;
use tenantmq_control_cache::{CacheConfig, ControlCache};
use tenantmq_control_store::{
    ChangeFeed, InProcessFeed, Secret, Store, USAGE_FLUSH_INTERVAL, UsageFlusher,
};
use tenantmq_gateway::auth::{Authenticator, DevAnonymous};
use tenantmq_gateway::certs::ensure_dev_certificates;
use tenantmq_gateway::config::DEFAULT_CONNECT_TIMEOUT;
use tenantmq_gateway::connection::ConnectionContext;
use tenantmq_gateway::control_auth::ControlAuthenticator;
use tenantmq_gateway::control_cas::keep_cas_current;
use tenantmq_gateway::control_quotas::{ApplyQuotas, keep_quotas_current};
use tenantmq_gateway::limits::EdgeLimits;
use tenantmq_gateway::listener::{ListenerOptions, run_listener, run_mqtts, run_ws_plain, run_wss};
use tenantmq_gateway::stats::GatewayStats;
use tenantmq_gateway::{CaList, GatewayConfig, TlsContext, TlsSettings};
use tenantmq_router::Link;
use tenantmq_worker::Worker;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The id of the built-in `dev` tenant of the dev flags.
pub const DEV_TENANT_ID: TenantId = TenantId::from_uuid(uuid::Uuid::from_u128(
    0x0000_0000_0000_4000_8000_0000_0000_0de5,
));

/// Flags of `tenantmq standalone`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory for the database, certificates, the operator token and `endpoints.json`.
    #[arg(long, default_value = "./data", env = "TENANTMQ_DATA_DIR")]
    data_dir: PathBuf,
    /// MQTT over TLS listener (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8883", env = "TENANTMQ_MQTTS_LISTEN")]
    mqtts_listen: SocketAddr,
    /// MQTT over WebSocket over TLS listener (path `/mqtt`, subprotocol `mqtt`).
    #[arg(long, default_value = "127.0.0.1:8084", env = "TENANTMQ_WSS_LISTEN")]
    wss_listen: SocketAddr,
    /// Control API (HTTP) listener.
    #[arg(long, default_value = "127.0.0.1:8080", env = "TENANTMQ_API_LISTEN")]
    api_listen: SocketAddr,
    /// Tenants are reachable by SNI as `<slug>.<base-domain>`.
    #[arg(long, default_value = "mqtt.localhost", env = "TENANTMQ_BASE_DOMAIN")]
    base_domain: String,
    /// Server certificate (PEM); generated under `<data-dir>/certs` when not given.
    #[arg(long, requires = "tls_key", env = "TENANTMQ_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Private key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert", env = "TENANTMQ_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Expect a PROXY protocol v2 header on the mqtts and wss listeners (behind a load balancer).
    #[arg(long, env = "TENANTMQ_PROXY_PROTOCOL")]
    proxy_protocol: bool,
    /// Signups per client IP and minute on the control API.
    #[arg(long, env = "TENANTMQ_SIGNUP_PER_MINUTE")]
    signup_per_minute: Option<u32>,
    /// Signup burst per client IP.
    #[arg(long, env = "TENANTMQ_SIGNUP_BURST")]
    signup_burst: Option<u32>,
    /// Seconds a device has from accept to a complete CONNECT (TLS handshake and WebSocket
    /// upgrade included); sockets that take longer are closed.
    #[arg(
        long,
        default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..),
        env = "TENANTMQ_CONNECT_TIMEOUT_SECS"
    )]
    connect_timeout_secs: u64,
    /// Also serve anonymous clients of a built-in `dev` tenant over plain TCP and plain
    /// WebSocket (development only).
    #[arg(long)]
    dev_plain: bool,
    /// Plain-TCP listener of `--dev-plain`.
    #[arg(long, default_value = "127.0.0.1:1883", env = "TENANTMQ_MQTT_LISTEN")]
    mqtt_listen: SocketAddr,
    /// Plain-WebSocket listener of `--dev-plain`.
    #[arg(long, default_value = "127.0.0.1:8083", env = "TENANTMQ_WS_LISTEN")]
    ws_listen: SocketAddr,
    /// Ops listener: `/metrics` (Prometheus), `/healthz`, `/readyz` (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9090", env = "TENANTMQ_OPS_LISTEN")]
    ops_listen: SocketAddr,
    /// Seconds between two publications of each tenant's `$SYS` statistics.
    #[arg(
        long,
        default_value_t = SYS_INTERVAL.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..),
        env = "TENANTMQ_SYS_INTERVAL_SECS"
    )]
    sys_interval_secs: u64,
}

/// Bound addresses and files, written to `<data-dir>/endpoints.json` so that scripts and tests
/// can find listeners started on port 0.
#[derive(Serialize, Debug, Default)]
struct Endpoints {
    mqtts: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    api: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mqtt: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ws: Option<SocketAddr>,
    ca_file: Option<PathBuf>,
    operator_token_file: Option<PathBuf>,
    ops: Option<SocketAddr>,
}

/// Runs standalone mode until SIGINT or SIGTERM.
pub async fn run(args: Args, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    let (trigger, signal) = shutdown::channel();
    let mut tasks = JoinSet::new();

    // Control plane: SQLite, in-process feed, HTTP API, read-side cache.
    let db = dir.join("tenantmq.db");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display()), true)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let feed: Arc<dyn ChangeFeed> = Arc::new(InProcessFeed::new());

    // Observability: usage metering into the store, the ops listener.
    let usage = UsageRecorder::new(metrics.clone());
    let flusher = tokio::spawn(
        UsageFlusher::new(usage.clone(), store.clone()).run(USAGE_FLUSH_INTERVAL, signal.clone()),
    );
    let ops = crate::ops::OpsState::new(metrics.clone(), Some(store.clone()));
    let ops_listener = bind(args.ops_listen, "ops (metrics, health)").await?;
    let ops_addr = ops_listener.local_addr()?;
    tasks.spawn({
        let (ops, signal) = (ops.clone(), signal.clone());
        async move {
            if let Err(e) = crate::ops::serve(ops_listener, ops, signal).await {
                tracing::error!(error = %e, "ops listener stopped");
            }
        }
    });
    // The worker exists before the API, which lists and kicks clients through it.
    let worker = Worker::with_options(
        signal.clone(),
        EngineOptions {
            usage: Some(usage.clone()),
            sys_interval: Some(Duration::from_secs(args.sys_interval_secs)),
        },
    );
    let gateway_stats = Arc::new(GatewayStats::with_usage(usage.clone()));
    metrics.register_collector(crate::ops::gateway_collector(gateway_stats.clone()));

    let token_file = dir.join("operator-token");
    let token = operator_token(&token_file)?;
    let mut api = ApiConfig {
        listen: args.api_listen,
        operator_token: Some(Secret::new(token.clone())),
        ..ApiConfig::default()
    };
    if let Some(n) = args.signup_per_minute {
        api.signup_per_minute = n;
    }
    if let Some(n) = args.signup_burst {
        api.signup_burst = n;
    }
    let api_listener = bind(args.api_listen, "control API").await?;
    let api_addr = api_listener.local_addr()?;
    let api_state = tenantmq_control_api::AppState::new(api, store.clone(), feed.clone())
        .context("control API configuration")?
        .with_session_admin(worker.clone());
    tasks.spawn({
        let signal = signal.clone();
        async move {
            if let Err(e) = tenantmq_control_api::serve(api_listener, api_state, signal).await {
                tracing::error!(error = %e, "control API stopped");
            }
        }
    });
    let cache = ControlCache::new(store.clone(), feed.as_ref(), CacheConfig::default());
    metrics.register_collector(crate::ops::cache_collector(cache.clone()));

    // TLS: the given certificate, or one generated for localhost and the base domain.
    let (cert, key, ca_file) = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), None),
        _ => {
            let certs = ensure_dev_certificates(&dir.join("certs"), &args.base_domain)
                .context("generating the standalone certificates")?;
            (certs.server_cert, certs.server_key, Some(certs.ca_cert))
        }
    };
    let client_cas = Arc::new(CaList::new(Vec::new()));
    tasks.spawn(keep_cas_current(
        cache.clone(),
        feed.subscribe(),
        client_cas.clone(),
        signal.clone(),
    ));
    let mut settings = TlsSettings::new(&cert, &key);
    settings.client_cas = Some(client_cas);
    let tls = TlsContext::new(settings).context("loading the TLS certificate")?;
    tasks.spawn({
        let reloader = tls.spawn_reloader(signal.clone());
        async move {
            let _ = reloader.await;
        }
    });

    // Data plane: one worker, the authenticated gateway, and the dev gateway when asked.
    let authenticator = Arc::new(ControlAuthenticator::new(cache.clone(), &args.base_domain));
    let config = GatewayConfig {
        connect_timeout: Duration::from_secs(args.connect_timeout_secs),
        ..GatewayConfig::default()
    };
    let gateway = context(
        worker.clone(),
        authenticator,
        gateway_stats.clone(),
        config.clone(),
    );
    // Plan and override changes reach live connections and the tenant's engine (issue 6:
    // within 2 s, without reconnecting).
    let engines: ApplyQuotas = {
        let worker = worker.clone();
        Arc::new(move |tenant, quotas| {
            let worker = worker.clone();
            Box::pin(async move {
                worker.update_quotas(tenant, quotas).await;
            })
        })
    };
    tasks.spawn(keep_quotas_current(
        cache,
        feed.subscribe(),
        gateway.limits.clone(),
        engines,
        signal.clone(),
    ));
    let options = ListenerOptions {
        proxy_protocol: args.proxy_protocol,
    };
    let mqtts = bind(args.mqtts_listen, "mqtts").await?;
    let wss = bind(args.wss_listen, "wss").await?;
    let mut endpoints = Endpoints {
        mqtts: Some(mqtts.local_addr()?),
        wss: Some(wss.local_addr()?),
        api: Some(api_addr),
        ca_file: ca_file.clone(),
        operator_token_file: Some(token_file.clone()),
        ops: Some(ops_addr),
        ..Endpoints::default()
    };
    tasks.spawn(run_mqtts(
        mqtts,
        tls.clone(),
        gateway.clone(),
        options,
        signal.clone(),
    ));
    tasks.spawn(run_wss(wss, tls, gateway, options, signal.clone()));
    if args.dev_plain {
        // The dev tenant has only protocol limits (it is what benchmarks load), so its
        // listeners do not limit connect rates either.
        let dev_config = GatewayConfig {
            source_connect_per_sec: 0,
            client_id_connect_per_sec: 0,
            ..config
        };
        let dev = context(
            worker.clone(),
            Arc::new(DevAnonymous::new(DEV_TENANT_ID, Quotas::unlimited())),
            gateway_stats.clone(),
            dev_config,
        );
        let tcp = bind(args.mqtt_listen, "dev plain MQTT").await?;
        let ws = bind(args.ws_listen, "dev plain WebSocket").await?;
        endpoints.mqtt = Some(tcp.local_addr()?);
        endpoints.ws = Some(ws.local_addr()?);
        tasks.spawn(run_listener(tcp, dev.clone(), signal.clone()));
        tasks.spawn(run_ws_plain(
            ws,
            dev,
            ListenerOptions::default(),
            signal.clone(),
        ));
    }
    write_endpoints(dir, &endpoints)?;
    ops.set_listeners_bound();
    print_banner(&endpoints, &token, &args.base_domain);

    crate::signal::wait_for_signal().await;
    tracing::info!("shutting down");
    trigger.trigger();
    while tasks.join_next().await.is_some() {}
    worker.join().await;
    // The engines handed over their last usage when they stopped; write it before exiting.
    if let Ok(flusher) = flusher.await {
        flusher.finish().await;
    }
    store.close().await;
    Ok(())
}

/// One gateway's connection context; every listener of the process shares `stats`.
pub(crate) fn context(
    link: Arc<dyn Link>,
    authenticator: Arc<dyn Authenticator>,
    stats: Arc<GatewayStats>,
    config: GatewayConfig,
) -> Arc<ConnectionContext> {
    Arc::new(ConnectionContext {
        limits: EdgeLimits::new(&config),
        config,
        link,
        authenticator,
        stats,
    })
}

/// Binds with the gateway's deep accept queue (a fleet reconnecting at once must not
/// overflow it).
async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    tenantmq_gateway::listener::bind(addr).with_context(|| {
        format!(
            "cannot listen for {what} on {addr} (pass another address, or port 0 for any free port)"
        )
    })
}

/// The operator token: read from the file, or generated once and stored there (mode 0600).
fn operator_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let token = existing.trim().to_owned();
        if token.len() >= 16 {
            return Ok(token);
        }
    }
    let token = format!(
        "tmqop_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(path, token.as_bytes())?;
    Ok(token)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
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

fn print_banner(e: &Endpoints, token: &str, base_domain: &str) {
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "-".to_owned(), |a| a.to_string());
    let api = format!("http://{}", show(e.api));
    let mqtts_port = e.mqtts.map_or(8883, |a| a.port());
    let ca = e
        .ca_file
        .as_ref()
        .map_or_else(|| "<your CA file>".to_owned(), |p| p.display().to_string());
    println!("tenantmq standalone ready");
    println!(
        "  mqtts: {}   (MQTT over TLS; tenant by SNI <slug>.{base_domain} or username <slug>/<user>)",
        show(e.mqtts)
    );
    println!(
        "  wss:   {}/mqtt   (MQTT over WebSocket over TLS, subprotocol mqtt)",
        show(e.wss)
    );
    println!("  api:   {api}/v1   (OpenAPI at {api}/v1/openapi.json)");
    println!(
        "  ops:   http://{}/metrics   (Prometheus; /healthz, /readyz)",
        show(e.ops)
    );
    if let Some(m) = e.mqtt {
        println!(
            "  dev plain MQTT (anonymous dev tenant): {m}, dev plain WebSocket: {}/mqtt",
            show(e.ws)
        );
    }
    println!("  CA certificate: {ca}");
    println!("  operator token: {token}");
    if let Some(f) = &e.operator_token_file {
        println!("    (also in {})", f.display());
    }
    println!();
    println!("Quickstart:");
    println!("  1. Sign up (note the api_key in the answer):");
    println!(
        "     curl -s -X POST {api}/v1/signup -H 'content-type: application/json' \\\n       -d '{{\"name\":\"Acme\",\"slug\":\"acme\",\"email\":\"ops@acme.example\"}}'"
    );
    println!("  2. Create a device credential:");
    println!(
        "     curl -s -X POST {api}/v1/credentials -H \"authorization: Bearer $API_KEY\" \\\n       -H 'content-type: application/json' -d '{{\"username\":\"sensor-1\",\"password\":\"change-me-please\"}}'"
    );
    println!("  3. Subscribe and publish over mqtts:");
    println!(
        "     mosquitto_sub -h localhost -p {mqtts_port} --cafile {ca} -u acme/sensor-1 -P change-me-please -t 'demo/#' -v &"
    );
    println!(
        "     mosquitto_pub -h localhost -p {mqtts_port} --cafile {ca} -u acme/sensor-1 -P change-me-please -t demo/hello -m hi"
    );
}
