//! Concurrent connections and the connect rate per tenant: counters that must be global once
//! there are several gateways, so they sit behind [`ConnectionCounter`].
//!
//! Standalone mode has one gateway and counts in the process ([`InProcessConnections`]).
//! Cluster mode will implement the same trait on Redis (a per-tenant counter whose entries are
//! owned by the gateway that holds them and expire with its lease, so a gateway that dies
//! releases its connections; a token bucket per tenant updated by a script); nothing outside
//! this module needs to change for that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tenantmq_common::TenantId;
use tenantmq_common::token_bucket::TokenBucket;
use tokio::time::Instant;

/// Connect rates at or above this are not limited (the plan model's "unlimited").
pub const UNLIMITED_CONNECT_RATE: u32 = 1_000_000_000;

/// Tenants with a connect bucket kept before the full (idle) buckets are dropped.
const MAX_CONNECT_BUCKETS: usize = 10_000;

/// Counts each tenant's open connections against its `max_connections`, and its connects
/// against its `connect_rate_per_sec`.
pub trait ConnectionCounter: Send + Sync + 'static {
    /// Takes one of `tenant`'s `max` connection slots, or `None` when all are taken. The slot
    /// is given back when the guard is dropped.
    fn try_acquire(&self, tenant: TenantId, max: u32) -> Option<ConnectionGuard>;

    /// The tenant's connections counted now.
    fn current(&self, tenant: TenantId) -> u32;

    /// Takes one of `tenant`'s connects at `rate_per_sec`, with a burst of one second's worth
    /// (0 means 1 per second; [`UNLIMITED_CONNECT_RATE`] and above, no limit); `false` when
    /// the tenant is over its rate. A changed rate starts with a full bucket.
    fn try_connect(&self, tenant: TenantId, rate_per_sec: u32) -> bool;
}

/// Something to call when a counted connection ends.
pub trait Release: Send + Sync {
    /// Gives `tenant`'s slot back.
    fn release(&self, tenant: TenantId);
}

/// One counted connection; dropping it gives the slot back.
#[must_use = "the slot is released when the guard is dropped"]
pub struct ConnectionGuard {
    tenant: TenantId,
    owner: Arc<dyn Release>,
}

impl ConnectionGuard {
    /// A guard that calls `owner.release(tenant)` when dropped (for implementations).
    pub fn new(tenant: TenantId, owner: Arc<dyn Release>) -> Self {
        Self { tenant, owner }
    }
}

impl std::fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.owner.release(self.tenant);
    }
}

/// The counter of a single gateway process (standalone mode). A tenant's connection count
/// exists only while it has connections, so that map is bounded by the connections
/// themselves; connect buckets that have refilled completely are dropped when there are many.
#[derive(Default)]
pub struct InProcessConnections {
    counts: Arc<Counts>,
    connects: Mutex<HashMap<TenantId, ConnectBucket>>,
}

/// A tenant's connect bucket and the rate it was built for (a changed rate starts full).
type ConnectBucket = (u32, TokenBucket);

#[derive(Default)]
struct Counts(Mutex<HashMap<TenantId, u32>>);

impl Release for Counts {
    fn release(&self, tenant: TenantId) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&tenant);
            }
        }
    }
}

impl InProcessConnections {
    /// An empty counter.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl ConnectionCounter for InProcessConnections {
    fn try_acquire(&self, tenant: TenantId, max: u32) -> Option<ConnectionGuard> {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(tenant).or_insert(0);
        if *n >= max {
            if *n == 0 {
                counts.remove(&tenant);
            }
            return None;
        }
        *n += 1;
        drop(counts);
        Some(ConnectionGuard::new(tenant, self.counts.clone()))
    }

    fn current(&self, tenant: TenantId) -> u32 {
        let counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&tenant).copied().unwrap_or(0)
    }

    fn try_connect(&self, tenant: TenantId, rate_per_sec: u32) -> bool {
        self.try_connect_at(tenant, rate_per_sec, Instant::now())
    }
}

impl InProcessConnections {
    fn try_connect_at(&self, tenant: TenantId, rate_per_sec: u32, now: Instant) -> bool {
        if rate_per_sec >= UNLIMITED_CONNECT_RATE {
            return true;
        }
        let mut buckets = self.connects.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_CONNECT_BUCKETS && !buckets.contains_key(&tenant) {
            // A full bucket is what a new one would be: forgetting it changes nothing.
            buckets.retain(|_, (_, bucket)| !bucket.is_full(now));
        }
        let rate = u64::from(rate_per_sec);
        let (built_for, bucket) = buckets
            .entry(tenant)
            .or_insert_with(|| (rate_per_sec, TokenBucket::new(rate, rate, now)));
        if *built_for != rate_per_sec {
            (*built_for, *bucket) = (rate_per_sec, TokenBucket::new(rate, rate, now));
        }
        bucket.try_take(1, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_tenant_and_come_back_on_drop() {
        let c = InProcessConnections::new();
        let (a, b) = (TenantId::new_v7(), TenantId::new_v7());
        let g1 = c.try_acquire(a, 2).unwrap();
        let g2 = c.try_acquire(a, 2).unwrap();
        assert!(c.try_acquire(a, 2).is_none(), "third of two");
        assert!(
            c.try_acquire(b, 2).is_some(),
            "another tenant is not affected"
        );
        assert_eq!(c.current(a), 2);
        drop(g1);
        assert_eq!(c.current(a), 1);
        let _g3 = c.try_acquire(a, 2).unwrap();
        drop(g2);
        assert_eq!(c.current(a), 1);
    }

    #[test]
    fn connects_follow_the_rate_per_tenant_with_a_burst_of_one_second() {
        let c = InProcessConnections::new();
        let (a, b) = (TenantId::new_v7(), TenantId::new_v7());
        assert!(c.try_connect(a, 2) && c.try_connect(a, 2));
        assert!(!c.try_connect(a, 2), "third within the second");
        assert!(c.try_connect(b, 2), "another tenant has its own bucket");
        // A changed quota starts full.
        for _ in 0..5 {
            assert!(c.try_connect(a, 5));
        }
        assert!(!c.try_connect(a, 5));
        // 0 is one per second; the unlimited rate never refuses.
        assert!(c.try_connect(b, 0) && !c.try_connect(b, 0));
        for _ in 0..10_000 {
            assert!(c.try_connect(a, UNLIMITED_CONNECT_RATE));
        }
    }

    #[test]
    fn full_connect_buckets_are_forgotten_when_there_are_many() {
        let c = InProcessConnections::new();
        let t0 = Instant::now();
        for _ in 0..MAX_CONNECT_BUCKETS {
            // Each takes one of two tokens: not full again for half a second.
            assert!(c.try_connect_at(TenantId::new_v7(), 2, t0));
        }
        assert_eq!(c.connects.lock().unwrap().len(), MAX_CONNECT_BUCKETS);
        // A second later they are full again: the next new tenant makes room by forgetting
        // them; its own bucket (just spent) stays.
        let t1 = t0 + std::time::Duration::from_secs(1);
        let busy = TenantId::new_v7();
        assert!(c.try_connect_at(busy, 1, t1));
        let buckets = c.connects.lock().unwrap();
        assert_eq!(buckets.len(), 1);
        assert!(buckets.contains_key(&busy));
    }

    #[test]
    fn a_cap_of_zero_admits_nobody_and_leaves_no_entry() {
        let c = InProcessConnections::new();
        let t = TenantId::new_v7();
        assert!(c.try_acquire(t, 0).is_none());
        assert!(c.counts.0.lock().unwrap().is_empty());
    }
}
