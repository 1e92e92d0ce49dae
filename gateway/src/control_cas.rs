//! Keeps the mutual-TLS verifier's trust anchors in step with the control plane: every tenant's
//! registered CA certificates, reloaded when the change feed reports a CA change (or a gap in
//! the feed) and at a fixed interval as a safety net. The verifier itself reads a
//! [`CaList`] synchronously during handshakes, so the list is kept ready rather than fetched.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tenantmq_common::shutdown::Shutdown;
use tenantmq_control_cache::ControlCache;
use tenantmq_control_store::{ChangeKind, Invalidation};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::mtls::{CaList, TenantCa};

/// Reload interval when the feed is quiet (invalidations reload at once).
pub const CA_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Loads the CA list now, then keeps it current until `shutdown`.
pub async fn keep_cas_current(
    cache: ControlCache,
    mut feed: broadcast::Receiver<Invalidation>,
    list: Arc<CaList>,
    mut shutdown: Shutdown,
) {
    reload(&cache, &list).await;
    let mut tick = tokio::time::interval(CA_REFRESH_INTERVAL);
    tick.tick().await;
    let mut feed_open = true;
    loop {
        tokio::select! {
            () = shutdown.recv() => return,
            _ = tick.tick() => reload(&cache, &list).await,
            event = feed.recv(), if feed_open => match event {
                Ok(inv @ Invalidation::Tenant { kind: ChangeKind::CaCertificate | ChangeKind::Deleted, .. })
                | Ok(inv @ Invalidation::All) => {
                    // The cache applies the same invalidation from its own subscription; doing
                    // it here too means the reload below cannot read the old entry first.
                    cache.invalidate(inv);
                    reload(&cache, &list).await;
                }
                Ok(Invalidation::Tenant { .. }) => {}
                Err(RecvError::Lagged(_)) => {
                    cache.invalidate(Invalidation::All);
                    reload(&cache, &list).await;
                }
                // Without a feed the interval still refreshes the list. The receiver is not
                // polled again: a closed one answers `Closed` at once, every time, and the loop
                // would spin (a fresh receiver whose sender is already dropped does the same).
                Err(RecvError::Closed) => feed_open = false,
            },
        }
    }
}

async fn reload(cache: &ControlCache, list: &CaList) {
    match cache.ca_certificates().await {
        Ok(cas) => list.replace(
            cas.iter()
                .map(|ca| TenantCa {
                    tenant: ca.tenant_id,
                    ca_id: ca.id,
                    der: CertificateDer::from(ca.der.clone()),
                })
                .collect(),
        ),
        // The previous list stays in force: devices keep connecting while the store is down.
        Err(e) => tracing::warn!(error = %e, "cannot reload tenant CA certificates"),
    }
}
