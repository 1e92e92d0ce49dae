//! A broker with several tenants, for the tests of quotas and rate limits (issue 6): each
//! tenant has its own quotas, devices name their tenant in the username, and the test can read
//! what the limits counted per tenant and reason, and change a tenant's quotas while its
//! devices are connected — as `tenantmq standalone` does when the control plane announces a
//! change (`gateway::control_quotas`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenantmq_broker::EngineOptions;
use tenantmq_codec::{ByteString, Connect, ProtocolVersion};
use tenantmq_common::TenantId;
use tenantmq_common::auth::AuthContext;
use tenantmq_common::metrics::Metrics;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::{self, ShutdownTrigger};
use tenantmq_common::usage::{RejectReason, Rejections, UsageDelta, UsageRecorder};
use tenantmq_gateway::GatewayConfig;
use tenantmq_gateway::auth::{AuthFailure, AuthRequest, Authenticator};
use tenantmq_gateway::connection::ConnectionContext;
use tenantmq_gateway::limits::EdgeLimits;
use tenantmq_gateway::stats::GatewayStats;
use tenantmq_router::BoxFuture;
use tenantmq_worker::Worker;

use crate::raw::connect_packet;

/// How long [`TenantsBroker::wait_rejections`] waits: engines hand their counts over every
/// second.
pub const COUNTED_WITHIN: Duration = Duration::from_secs(4);

/// Lets a device in as the tenant its username names, with that tenant's current quotas.
struct ByUsername {
    tenants: Mutex<HashMap<String, (TenantId, Arc<Quotas>)>>,
}

impl Authenticator for ByUsername {
    fn authenticate<'a>(
        &'a self,
        req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthContext, AuthFailure>> {
        let found = req.connect.username.as_deref().and_then(|name| {
            let tenants = self.tenants.lock().expect("tenants");
            tenants.get(name).cloned()
        });
        Box::pin(async move {
            let (tenant, quotas) = found.ok_or(AuthFailure::BadCredentials)?;
            Ok(AuthContext::anonymous(tenant, quotas))
        })
    }
}

/// A broker serving several tenants on plain TCP. Dropping it shuts it down.
pub struct TenantsBroker {
    /// The listener's address.
    pub addr: SocketAddr,
    /// Gateway counters.
    pub stats: Arc<GatewayStats>,
    /// The gateway's limits.
    pub limits: Arc<EdgeLimits>,
    /// The worker hosting the engines.
    pub worker: Arc<Worker>,
    auth: Arc<ByUsername>,
    usage: Arc<UsageRecorder>,
    counted: Mutex<HashMap<TenantId, UsageDelta>>,
    _trigger: ShutdownTrigger,
}

impl TenantsBroker {
    /// Starts a broker with the named tenants and their quotas.
    pub async fn start(tenants: &[(&str, Quotas)], config: GatewayConfig) -> Self {
        let (trigger, signal) = shutdown::channel();
        let usage = UsageRecorder::new(Arc::new(Metrics::new()));
        let options = EngineOptions {
            usage: Some(usage.clone()),
            sys_interval: None,
        };
        let worker = Worker::with_options(signal.clone(), options);
        let stats = Arc::new(GatewayStats::with_usage(usage.clone()));
        let auth = Arc::new(ByUsername {
            tenants: Mutex::new(
                tenants
                    .iter()
                    .map(|(name, q)| {
                        (
                            (*name).to_owned(),
                            (TenantId::new_v7(), Arc::new(q.clone())),
                        )
                    })
                    .collect(),
            ),
        });
        let limits = EdgeLimits::new(&config);
        let gateway = Arc::new(ConnectionContext {
            config,
            link: worker.clone(),
            authenticator: auth.clone(),
            stats: stats.clone(),
            limits: limits.clone(),
        });
        let addr = crate::serve_on_loopback(gateway, signal);
        Self {
            addr,
            stats,
            limits,
            worker,
            auth,
            usage,
            counted: Mutex::new(HashMap::new()),
            _trigger: trigger,
        }
    }

    /// Starts a broker with one tenant, `t`.
    pub async fn one(quotas: Quotas) -> Self {
        Self::start(&[("t", quotas)], GatewayConfig::default()).await
    }

    /// The id of tenant `name`.
    pub fn tenant(&self, name: &str) -> TenantId {
        self.auth.tenants.lock().expect("tenants")[name].0
    }

    /// Changes tenant `name`'s quotas for new and existing connections, as the standalone
    /// wiring does on a quota change from the control plane.
    pub async fn set_quotas(&self, name: &str, quotas: Quotas) {
        let quotas = Arc::new(quotas);
        let tenant = {
            let mut tenants = self.auth.tenants.lock().expect("tenants");
            let entry = tenants.get_mut(name).expect("known tenant");
            entry.1 = quotas.clone();
            entry.0
        };
        self.limits.update_quotas(tenant, quotas.clone());
        self.worker.update_quotas(tenant, quotas).await;
    }

    /// Everything counted for tenant `name` so far (by gateway and engine; an engine's counts
    /// arrive up to a second late).
    pub fn rejections(&self, name: &str) -> Rejections {
        self.usage(name).rejections
    }

    /// The usage metered for tenant `name` so far: messages and bytes in and out, rejections
    /// (the peak and connection-seconds are not summed).
    pub fn usage(&self, name: &str) -> UsageDelta {
        let tenant = self.tenant(name);
        let mut counted = self.counted.lock().expect("counted");
        for u in self.usage.drain() {
            let entry = counted.entry(u.tenant).or_default();
            entry.messages_in += u.usage.messages_in;
            entry.bytes_in += u.usage.bytes_in;
            entry.messages_out += u.usage.messages_out;
            entry.bytes_out += u.usage.bytes_out;
            for (reason, n) in u.usage.rejections.iter() {
                entry.rejections.add_n(reason, n);
            }
        }
        counted.get(&tenant).copied().unwrap_or_default()
    }

    /// Waits until tenant `name` has at least `n` rejections for `reason` and returns the
    /// count; panics after [`COUNTED_WITHIN`].
    pub async fn wait_rejections(&self, name: &str, reason: RejectReason, n: u64) -> u64 {
        let deadline = tokio::time::Instant::now() + COUNTED_WITHIN;
        loop {
            let got = self.rejections(name).get(reason);
            if got >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: {got} rejections for {reason:?}, expected at least {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A CONNECT of tenant `tenant` (clean start, no keep alive): [`connect_packet`] with the
/// tenant's name as username.
pub fn tenant_connect(version: ProtocolVersion, tenant: &str, client_id: &str) -> Connect {
    let mut c = connect_packet(version, client_id);
    c.username = Some(ByteString::from(tenant));
    c
}
