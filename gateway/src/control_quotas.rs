//! Quota changes reach live connections: when the control plane announces that a tenant's plan
//! or overrides changed, the new effective quotas are read through the control cache and
//! handed to whoever enforces them — the gateway's [`EdgeLimits`] (per-client rates, packet
//! size, connect rate, connection cap) and the tenant's engine (tenant-wide rates, topic
//! levels, retained, subscriptions, ...). Nobody reconnects; the design asks for this within
//! 2 s, and the in-process feed makes it immediate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tenantmq_common::TenantId;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::Shutdown;
use tenantmq_control_cache::ControlCache;
use tenantmq_control_store::{ChangeKind, Invalidation};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::limits::EdgeLimits;

/// Where a tenant's new quotas go besides the gateway: in standalone mode, the worker that
/// hosts its engine (`Worker::update_quotas`).
pub type ApplyQuotas =
    Arc<dyn Fn(TenantId, Arc<Quotas>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Applies quota changes announced on `feed` until `shutdown`.
pub async fn keep_quotas_current(
    cache: ControlCache,
    mut feed: broadcast::Receiver<Invalidation>,
    limits: Arc<EdgeLimits>,
    engines: ApplyQuotas,
    mut shutdown: Shutdown,
) {
    loop {
        let event = tokio::select! {
            () = shutdown.recv() => return,
            event = feed.recv() => event,
        };
        let tenants = match event {
            Ok(
                inv @ Invalidation::Tenant {
                    tenant_id,
                    kind: ChangeKind::Quota,
                },
            ) => {
                // The cache applies the same invalidation from its own subscription; doing it
                // here too means the read below cannot return the old entry.
                cache.invalidate(inv);
                vec![tenant_id]
            }
            Ok(Invalidation::Tenant { .. }) => continue,
            // A gap: any tenant may have changed. Those with connections here are re-read.
            Ok(Invalidation::All) | Err(RecvError::Lagged(_)) => {
                cache.invalidate(Invalidation::All);
                limits.known_tenants()
            }
            // Without a feed, connections keep their quotas and new ones read the cache,
            // whose entries expire on their own.
            Err(RecvError::Closed) => return,
        };
        for tenant in tenants {
            match cache.quotas(tenant).await {
                Ok(Some(quotas)) => {
                    tracing::info!(%tenant, "quotas changed; applying to live connections");
                    limits.update_quotas(tenant, quotas.clone());
                    engines(tenant, quotas).await;
                }
                Ok(None) => {}
                // The old quotas stay in force; the next change or gap tries again.
                Err(e) => tracing::warn!(%tenant, error = %e, "cannot read changed quotas"),
            }
        }
    }
}
