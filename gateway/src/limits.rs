//! The limits the gateway enforces, per connection and per source (the tenant-wide publish
//! rate and bandwidth are the engine's, `tenantmq_broker::limits`):
//!
//! * connect rate per source address (before authentication, [`EdgeLimits::source_allowed`]),
//!   per client id (a device reconnecting in a tight loop is *slowed*:
//!   [`EdgeLimits::pace_client_id`]) and per tenant ([`EdgeLimits::connect_allowed`], after
//!   authentication so that strangers cannot spend a tenant's budget);
//! * concurrent connections per tenant ([`EdgeLimits::acquire_connection`]);
//! * each client's publish rate and inbound bandwidth ([`ClientRate`], `governor` buckets that
//!   `connection.rs` consults after every read: it stops reading the socket until the tokens
//!   are there, for at most [`MAX_RATE_PAUSE`] per read, and only then lets the engine refuse
//!   what is still beyond the allowance).
//!
//! The two per-tenant counters, connections and the connect rate, must be global once there are
//! several gateways: they sit behind the [`ConnectionCounter`] seam (in-process now, Redis in
//! cluster mode).
//!
//! A tenant's current quotas live in its [`TenantEdge`]: every authenticated connection
//! brings the quotas it was authenticated with, and the control plane's change feed pushes
//! new ones ([`EdgeLimits::update_quotas`]); existing connections pick them up on their next
//! read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tenantmq_common::TenantId;
use tenantmq_common::quota::Quotas;
use tenantmq_common::usage::RejectReason;
use tenantmq_router::{ConnectionCounter, ConnectionGuard, InProcessConnections};

use crate::config::GatewayConfig;

/// Longest the gateway stops reading one client's socket for its rate before letting the
/// engine refuse what is still beyond the allowance (per read: a client that keeps
/// flooding is paused again after each refusal).
pub const MAX_RATE_PAUSE: Duration = Duration::from_secs(1);

/// Rates at or above this are treated as unlimited (governor cannot express them, and no
/// real device gets there).
const UNLIMITED_RATE: u64 = 1_000_000_000;

/// Keyed limiters forget idle keys every this many connections, so that source addresses
/// and client ids seen once do not accumulate.
const SWEEP_EVERY: u64 = 4096;

/// Tenants whose state is kept while none of their connections is open, before the idle ones
/// are swept.
const MAX_IDLE_TENANTS: usize = 10_000;

/// What the gateway's limits share across connections.
pub struct EdgeLimits {
    sources: Option<DefaultKeyedRateLimiter<IpAddr>>,
    client_ids: Option<DefaultKeyedRateLimiter<(TenantId, String)>>,
    client_id_max_delay: Duration,
    connections: Arc<dyn ConnectionCounter>,
    tenants: Mutex<HashMap<TenantId, Arc<TenantEdge>>>,
    connects: AtomicU64,
}

impl std::fmt::Debug for EdgeLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeLimits").finish_non_exhaustive()
    }
}

/// A governor quota of `rate` per second and `burst`, or `None` for "no limit".
fn quota(rate: u64, burst: u64) -> Option<Quota> {
    if rate >= UNLIMITED_RATE {
        return None;
    }
    // A rate of 0 would never refill; the plan model allows it, so it means "1 per second".
    let rate = NonZeroU32::new(u32::try_from(rate).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
    let burst =
        NonZeroU32::new(u32::try_from(burst).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl EdgeLimits {
    /// Limits as `config` says, counting connections in this process.
    pub fn new(config: &GatewayConfig) -> Arc<Self> {
        Self::with_counter(config, InProcessConnections::new())
    }

    /// Limits as `config` says, counting connections with `connections` (cluster mode: a
    /// counter shared by every gateway).
    pub fn with_counter(
        config: &GatewayConfig,
        connections: Arc<dyn ConnectionCounter>,
    ) -> Arc<Self> {
        fn keyed<K: std::hash::Hash + Eq + Clone>(
            rate: u32,
            burst: u32,
        ) -> Option<DefaultKeyedRateLimiter<K>> {
            (rate > 0)
                .then(|| quota(u64::from(rate), u64::from(burst)))
                .flatten()
                .map(RateLimiter::keyed)
        }
        Arc::new(Self {
            sources: keyed(config.source_connect_per_sec, config.source_connect_burst),
            client_ids: keyed(
                config.client_id_connect_per_sec,
                config.client_id_connect_burst,
            ),
            client_id_max_delay: config.client_id_max_delay.min(config.connect_timeout / 2),
            connections,
            tenants: Mutex::new(HashMap::new()),
            connects: AtomicU64::new(0),
        })
    }

    /// Whether `ip` may open another connection now (no address: always).
    pub fn source_allowed(&self, ip: Option<IpAddr>) -> bool {
        self.sweep();
        match (&self.sources, ip) {
            (Some(limiter), Some(ip)) => limiter.check_key(&ip).is_ok(),
            _ => true,
        }
    }

    /// Waits until `client_id` of `tenant` may connect again, at most the configured delay.
    /// Returns `false` when it would have to wait longer (refuse with 0x9F). An empty client
    /// id is the server's to assign, so it is never paced.
    pub async fn pace_client_id(&self, tenant: TenantId, client_id: &str) -> bool {
        let Some(limiter) = &self.client_ids else {
            return true;
        };
        if client_id.is_empty() {
            return true;
        }
        let key = (tenant, client_id.to_owned());
        let give_up = tokio::time::Instant::now() + self.client_id_max_delay;
        loop {
            let Err(not_until) = limiter.check_key(&key) else {
                return true;
            };
            let wait = not_until.wait_time_from(limiter.clock().now());
            if tokio::time::Instant::now() + wait > give_up {
                return false;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// The state of `tenant`, whose connection was just authenticated with `quotas`.
    pub fn tenant(&self, tenant: TenantId, quotas: &Arc<Quotas>) -> Arc<TenantEdge> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(edge) = tenants.get(&tenant) {
            edge.observe(quotas);
            return edge.clone();
        }
        if tenants.len() >= MAX_IDLE_TENANTS {
            // Only the map holds an idle tenant's state: forgetting it loses a connect-rate
            // window at most.
            tenants.retain(|_, edge| Arc::strong_count(edge) > 1);
        }
        let edge = Arc::new(TenantEdge::new(quotas.clone()));
        tenants.insert(tenant, edge.clone());
        edge
    }

    /// New quotas for `tenant` (from the control plane): its connections' limits follow on
    /// their next read. A tenant this gateway has not seen needs nothing: its connections
    /// will bring their quotas.
    pub fn update_quotas(&self, tenant: TenantId, quotas: Arc<Quotas>) {
        let tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(edge) = tenants.get(&tenant) {
            edge.observe(&quotas);
        }
    }

    /// The tenants this gateway keeps state for (those with connections, and recent ones).
    pub fn known_tenants(&self) -> Vec<TenantId> {
        let tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        tenants.keys().copied().collect()
    }

    /// The tenant's current quotas as this gateway knows them.
    pub fn quotas(&self, tenant: TenantId) -> Option<Arc<Quotas>> {
        let tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        tenants.get(&tenant).map(|e| e.quotas())
    }

    /// One of the tenant's `max_connections` slots, held for the connection's lifetime;
    /// `None` when all are taken (refuse with 0x97).
    pub fn acquire_connection(
        &self,
        tenant: TenantId,
        edge: &TenantEdge,
    ) -> Option<ConnectionGuard> {
        self.connections
            .try_acquire(tenant, edge.quotas().max_connections)
    }

    /// Takes one of the tenant's connects (`connect_rate_per_sec`, burst of one second's
    /// worth, counted by the [`ConnectionCounter`]); `false` when the tenant is over its rate
    /// (refuse with 0x9F).
    pub fn connect_allowed(&self, tenant: TenantId, edge: &TenantEdge) -> bool {
        self.connections
            .try_connect(tenant, edge.quotas().connect_rate_per_sec)
    }

    /// The tenant's open connections, as counted.
    pub fn connections(&self, tenant: TenantId) -> u32 {
        self.connections.current(tenant)
    }

    fn sweep(&self) {
        if self.connects.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY != SWEEP_EVERY - 1 {
            return;
        }
        if let Some(limiter) = &self.sources {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.client_ids {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// One tenant as the gateway sees it: its current quotas.
pub struct TenantEdge {
    quotas: ArcSwap<Quotas>,
}

impl TenantEdge {
    pub(crate) fn new(quotas: Arc<Quotas>) -> Self {
        Self {
            quotas: ArcSwap::new(quotas),
        }
    }

    /// The tenant's quotas now.
    pub fn quotas(&self) -> Arc<Quotas> {
        self.quotas.load_full()
    }

    fn observe(&self, quotas: &Arc<Quotas>) {
        let current = self.quotas.load();
        if !Arc::ptr_eq(&current, quotas) && **current != **quotas {
            self.quotas.store(quotas.clone());
        }
    }
}

/// The outcome of [`ClientRate::try_take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Within the allowance; the tokens are taken.
    Ok,
    /// Beyond it: the PUBLISH could pass after this long; the reason names the bucket.
    Wait(Duration, RejectReason),
}

/// One connection's publish-rate and bandwidth buckets, rebuilt when the tenant's quotas
/// change. Bandwidth counts PUBLISH packets only: acknowledgements and pings follow from what
/// the server sends, and throttling them would slow the client's own deliveries.
pub struct ClientRate {
    edge: Arc<TenantEdge>,
    built_from: Arc<Quotas>,
    messages: Option<DefaultDirectRateLimiter>,
    bytes: Option<DefaultDirectRateLimiter>,
    byte_burst: NonZeroU32,
    /// The PUBLISH that last had to wait already took its message token (the buckets cannot
    /// be checked without taking), so its retry only needs bytes.
    message_prepaid: bool,
}

impl std::fmt::Debug for ClientRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRate")
            .field("quotas", &self.built_from)
            .finish_non_exhaustive()
    }
}

impl ClientRate {
    /// Full buckets for a new connection of the tenant.
    pub fn new(edge: Arc<TenantEdge>) -> Self {
        let quotas = edge.quotas();
        let mut rate = Self {
            edge,
            built_from: quotas,
            messages: None,
            bytes: None,
            byte_burst: NonZeroU32::MIN,
            message_prepaid: false,
        };
        rate.build();
        rate
    }

    fn build(&mut self) {
        let q = &self.built_from;
        let messages = u64::from(q.publish_rate_per_client);
        self.messages = quota(messages, messages).map(RateLimiter::direct);
        // One largest packet always fits the byte bucket, or it could never pass.
        let bytes = q.bandwidth_bytes_per_client;
        let burst = bytes.max(u64::from(q.max_message_bytes));
        let bucket = quota(bytes, burst);
        self.byte_burst = bucket.map_or(NonZeroU32::MIN, |q| q.burst_size());
        self.bytes = bucket.map(RateLimiter::direct);
        self.message_prepaid = false;
    }

    /// Picks up the tenant's current quotas if they changed (new buckets start full).
    pub fn refresh(&mut self) {
        let current = self.edge.quotas.load();
        if !Arc::ptr_eq(&current, &self.built_from) {
            self.built_from = Arc::clone(&current);
            self.build();
        }
    }

    /// Largest packet the client may send now (`max_message_bytes`, MQTT 5 Maximum Packet
    /// Size).
    pub fn max_packet_size(&self) -> u32 {
        self.built_from.max_message_bytes
    }

    /// Takes the tokens of one PUBLISH of `len` bytes, or says how long until it could pass.
    pub fn try_take(&mut self, len: usize) -> Take {
        if let Some(m) = &self.messages
            && !self.message_prepaid
            && let Err(not_until) = m.check()
        {
            let wait = not_until.wait_time_from(m.clock().now());
            return Take::Wait(wait, RejectReason::MessageRate);
        }
        self.message_prepaid = false;
        let Some(b) = &self.bytes else {
            return Take::Ok;
        };
        let n = NonZeroU32::new(u32::try_from(len).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN)
            .min(self.byte_burst);
        match b.check_n(n) {
            Ok(Ok(())) | Err(_) => Take::Ok,
            Ok(Err(not_until)) => {
                self.message_prepaid = self.messages.is_some();
                let wait = not_until.wait_time_from(b.clock().now());
                Take::Wait(wait, RejectReason::Bandwidth)
            }
        }
    }

    /// The PUBLISH that waited is refused after all: its prepaid token is forgotten.
    pub fn forget_prepaid(&mut self) {
        self.message_prepaid = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(f: impl FnOnce(&mut Quotas)) -> Arc<Quotas> {
        let mut q = Quotas::unlimited();
        f(&mut q);
        Arc::new(q)
    }

    #[test]
    fn unlimited_quotas_build_no_buckets() {
        let limits = EdgeLimits::new(&GatewayConfig::default());
        let tenant = TenantId::new_v7();
        let edge = limits.tenant(tenant, &Arc::new(Quotas::unlimited()));
        let mut rate = ClientRate::new(edge.clone());
        assert!(rate.messages.is_none() && rate.bytes.is_none());
        for _ in 0..10_000 {
            assert_eq!(rate.try_take(1000), Take::Ok);
            assert!(limits.connect_allowed(tenant, &edge));
        }
    }

    #[test]
    fn publish_rate_allows_its_burst_then_says_how_long_to_wait() {
        let limits = EdgeLimits::new(&GatewayConfig::default());
        let edge = limits.tenant(
            TenantId::new_v7(),
            &quotas(|q| q.publish_rate_per_client = 10),
        );
        let mut rate = ClientRate::new(edge);
        for _ in 0..10 {
            assert_eq!(rate.try_take(50), Take::Ok);
        }
        match rate.try_take(50) {
            Take::Wait(wait, RejectReason::MessageRate) => {
                assert!(wait <= Duration::from_millis(100), "{wait:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bandwidth_waits_without_spending_the_message_token_twice() {
        let limits = EdgeLimits::new(&GatewayConfig::default());
        let q = quotas(|q| {
            q.publish_rate_per_client = 1000;
            q.bandwidth_bytes_per_client = 1000;
            q.max_message_bytes = 1000;
        });
        let mut rate = ClientRate::new(limits.tenant(TenantId::new_v7(), &q));
        assert_eq!(rate.try_take(1000), Take::Ok);
        assert!(matches!(
            rate.try_take(500),
            Take::Wait(_, RejectReason::Bandwidth)
        ));
        assert!(rate.message_prepaid);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(rate.try_take(500), Take::Ok);
        assert!(!rate.message_prepaid);
    }

    #[test]
    fn a_packet_larger_than_the_byte_rate_still_passes_on_a_full_bucket() {
        let limits = EdgeLimits::new(&GatewayConfig::default());
        let q = quotas(|q| {
            q.bandwidth_bytes_per_client = 100;
            q.max_message_bytes = 10_000;
        });
        let mut rate = ClientRate::new(limits.tenant(TenantId::new_v7(), &q));
        assert_eq!(rate.try_take(10_000), Take::Ok);
    }

    #[test]
    fn quota_changes_reach_existing_connections() {
        let limits = EdgeLimits::new(&GatewayConfig::default());
        let tenant = TenantId::new_v7();
        let edge = limits.tenant(tenant, &quotas(|q| q.publish_rate_per_client = 1));
        let mut rate = ClientRate::new(edge);
        assert_eq!(rate.try_take(10), Take::Ok);
        assert!(matches!(rate.try_take(10), Take::Wait(..)));
        limits.update_quotas(
            tenant,
            quotas(|q| {
                q.publish_rate_per_client = 100;
                q.max_message_bytes = 77;
            }),
        );
        rate.refresh();
        assert_eq!(rate.max_packet_size(), 77);
        for _ in 0..100 {
            assert_eq!(rate.try_take(10), Take::Ok);
        }
    }

    #[test]
    fn tenant_connect_rate_follows_its_quota() {
        let limits = EdgeLimits::new(&GatewayConfig::default());
        let tenant = TenantId::new_v7();
        let edge = limits.tenant(tenant, &quotas(|q| q.connect_rate_per_sec = 2));
        let allowed = || limits.connect_allowed(tenant, &edge);
        assert!(allowed() && allowed());
        assert!(!allowed());
        limits.update_quotas(tenant, quotas(|q| q.connect_rate_per_sec = 5));
        for _ in 0..5 {
            assert!(allowed());
        }
        assert!(!allowed());
    }

    #[test]
    fn connection_slots_follow_max_connections() {
        let limits = EdgeLimits::new(&GatewayConfig::default());
        let tenant = TenantId::new_v7();
        let edge = limits.tenant(tenant, &quotas(|q| q.max_connections = 1));
        let guard = limits.acquire_connection(tenant, &edge).unwrap();
        assert!(limits.acquire_connection(tenant, &edge).is_none());
        drop(guard);
        assert!(limits.acquire_connection(tenant, &edge).is_some());
    }

    #[test]
    fn sources_are_limited_per_address_and_zero_turns_the_limit_off() {
        let config = GatewayConfig {
            source_connect_per_sec: 1,
            source_connect_burst: 2,
            ..GatewayConfig::default()
        };
        let limits = EdgeLimits::new(&config);
        let (a, b) = (
            Some(IpAddr::from([10, 0, 0, 1])),
            Some(IpAddr::from([10, 0, 0, 2])),
        );
        assert!(limits.source_allowed(a) && limits.source_allowed(a));
        assert!(!limits.source_allowed(a));
        assert!(limits.source_allowed(b));
        assert!(limits.source_allowed(None));
        let off = EdgeLimits::new(&GatewayConfig {
            source_connect_per_sec: 0,
            ..GatewayConfig::default()
        });
        for _ in 0..1000 {
            assert!(off.source_allowed(a));
        }
    }

    #[tokio::test]
    async fn a_client_id_in_a_tight_loop_is_slowed_then_refused() {
        let config = GatewayConfig {
            client_id_connect_per_sec: 10,
            client_id_connect_burst: 2,
            client_id_max_delay: Duration::from_millis(150),
            ..GatewayConfig::default()
        };
        let limits = EdgeLimits::new(&config);
        let tenant = TenantId::new_v7();
        assert!(limits.pace_client_id(tenant, "c").await);
        assert!(limits.pace_client_id(tenant, "c").await);
        let start = std::time::Instant::now();
        assert!(
            limits.pace_client_id(tenant, "c").await,
            "slowed, not refused"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
        // Another id, another tenant's same id and the empty id are not affected.
        assert!(limits.pace_client_id(tenant, "d").await);
        assert!(limits.pace_client_id(TenantId::new_v7(), "c").await);
        for _ in 0..10 {
            assert!(limits.pace_client_id(tenant, "").await);
        }
        // Rate 1/s with a 150 ms cap: the wait would be too long.
        let slow = EdgeLimits::new(&GatewayConfig {
            client_id_connect_per_sec: 1,
            client_id_connect_burst: 1,
            client_id_max_delay: Duration::from_millis(150),
            ..GatewayConfig::default()
        });
        assert!(slow.pace_client_id(tenant, "c").await);
        assert!(!slow.pace_client_id(tenant, "c").await);
    }
}
