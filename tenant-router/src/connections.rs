//! Concurrent connections per tenant: a counter that must be global once there are several
//! gateways, so it sits behind [`ConnectionCounter`].
//!
//! Standalone mode has one gateway and counts in the process ([`InProcessConnections`]).
//! Cluster mode will implement the same trait on Redis (a per-tenant counter whose entries are
//! owned by the gateway that holds them and expire with its lease, so a gateway that dies
//! releases its connections); nothing outside this module needs to change for that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tenantmq_common::TenantId;

/// Counts each tenant's open connections against its `max_connections`.
pub trait ConnectionCounter: Send + Sync + 'static {
    /// Takes one of `tenant`'s `max` connection slots, or `None` when all are taken. The slot
    /// is given back when the guard is dropped.
    fn try_acquire(&self, tenant: TenantId, max: u32) -> Option<ConnectionGuard>;

    /// The tenant's connections counted now.
    fn current(&self, tenant: TenantId) -> u32;
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

/// The counter of a single gateway process (standalone mode). A tenant's entry exists only
/// while it has connections, so the map is bounded by the connections themselves.
#[derive(Default)]
pub struct InProcessConnections {
    counts: Arc<Counts>,
}

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
    fn a_cap_of_zero_admits_nobody_and_leaves_no_entry() {
        let c = InProcessConnections::new();
        let t = TenantId::new_v7();
        assert!(c.try_acquire(t, 0).is_none());
        assert!(c.counts.0.lock().unwrap().is_empty());
    }
}
