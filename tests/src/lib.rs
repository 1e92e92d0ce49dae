//! Test harness for end-to-end tests: starts the real gateway and worker in-process on a
//! loopback port chosen by the OS, and offers a raw MQTT client for tests where the exact
//! bytes on the wire matter ([`raw`]) and rumqttc, a real client, for the behaviour a normal
//! client sees ([`client`]).
#![forbid(unsafe_code)]

pub mod client;
pub mod raw;
pub mod tenants;

use std::net::SocketAddr;
use std::sync::Arc;

use tenantmq_common::TenantId;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::{self, Shutdown, ShutdownTrigger};
use tenantmq_gateway::auth::DevAnonymous;
use tenantmq_gateway::connection::ConnectionContext;
use tenantmq_gateway::limits::EdgeLimits;
use tenantmq_gateway::stats::GatewayStats;
use tenantmq_gateway::{GatewayConfig, listener, run_listener};
use tenantmq_worker::Worker;

/// A broker serving the anonymous dev tenant on plain TCP, as `tenantmq standalone
/// --dev-plain` does. Dropping it shuts it down.
pub struct DevBroker {
    /// The listener's address.
    pub addr: SocketAddr,
    /// Gateway counters.
    pub stats: Arc<GatewayStats>,
    _trigger: ShutdownTrigger,
}

impl DevBroker {
    /// Starts a broker with protocol-maximum limits.
    pub async fn start() -> Self {
        Self::start_with(Quotas::unlimited(), GatewayConfig::default()).await
    }

    /// Starts a broker whose dev tenant has `quotas`.
    pub async fn start_with(quotas: Quotas, config: GatewayConfig) -> Self {
        let (trigger, signal) = shutdown::channel();
        let worker = Worker::new(signal.clone());
        let stats = Arc::new(GatewayStats::default());
        let gateway = Arc::new(ConnectionContext {
            limits: EdgeLimits::new(&config),
            config,
            link: worker,
            authenticator: Arc::new(DevAnonymous::new(TenantId::new_v7(), quotas)),
            stats: stats.clone(),
        });
        let addr = serve_on_loopback(gateway, signal);
        Self {
            addr,
            stats,
            _trigger: trigger,
        }
    }
}

/// Serves `gateway` on a free loopback port (bound as the real listeners are) until `signal`;
/// the bound address.
pub(crate) fn serve_on_loopback(gateway: Arc<ConnectionContext>, signal: Shutdown) -> SocketAddr {
    let listener = listener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(run_listener(listener, gateway, signal));
    addr
}
