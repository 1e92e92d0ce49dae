//! The change feed: invalidations the control plane publishes after a committed change, so the
//! data plane's caches drop what they hold instead of waiting for it to expire.
//!
//! Delivery is best effort: a cache must also expire entries on its own, and must treat a gap
//! (a lagged receiver, a reconnect to Redis) as [`Invalidation::All`].

use serde::{Deserialize, Serialize};
use tenantmq_common::TenantId;
use tokio::sync::broadcast;

/// Invalidations a subscriber can fall behind by before it sees `Lagged` (and must then flush
/// everything it caches).
pub const FEED_CAPACITY: usize = 1024;

/// What changed about a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The tenant was created (caches drop negative slug lookups).
    Created,
    /// A device credential was created or deleted.
    Credential,
    /// A CA certificate was registered or deleted.
    CaCertificate,
    /// An ACL rule was created or deleted (or a credential with rules was deleted).
    Acl,
    /// The plan or the quota overrides changed.
    Quota,
    /// The tenant was suspended or reactivated.
    Status,
    /// The tenant and all its data were deleted.
    Deleted,
    /// An API key was created or revoked (not data-plane state, but other API replicas may
    /// cache keys in the future).
    ApiKey,
}

/// One message of the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Invalidation {
    /// Something about one tenant changed.
    Tenant {
        /// The tenant.
        tenant_id: TenantId,
        /// What changed.
        kind: ChangeKind,
    },
    /// Messages may have been missed: drop (or re-validate) everything.
    All,
}

impl Invalidation {
    /// An invalidation for one tenant.
    pub fn tenant(tenant_id: TenantId, kind: ChangeKind) -> Self {
        Self::Tenant { tenant_id, kind }
    }
}

/// A channel of invalidations, shared by the API (publisher) and the caches (subscribers).
pub trait ChangeFeed: Send + Sync + 'static {
    /// Announces a change. Never blocks and never fails the caller: the write it announces is
    /// already committed, and caches expire entries on their own if a message is lost.
    fn publish(&self, invalidation: Invalidation);

    /// A receiver of every invalidation published from now on. A receiver that falls behind by
    /// more than [`FEED_CAPACITY`] gets `RecvError::Lagged` and must flush everything.
    fn subscribe(&self) -> broadcast::Receiver<Invalidation>;
}

/// The feed of standalone mode: a broadcast channel inside the process.
#[derive(Clone, Debug)]
pub struct InProcessFeed {
    tx: broadcast::Sender<Invalidation>,
}

impl InProcessFeed {
    /// A new, empty feed.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl Default for InProcessFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeFeed for InProcessFeed {
    fn publish(&self, invalidation: Invalidation) {
        // An error only means nobody is subscribed, which is fine.
        let _ = self.tx.send(invalidation);
    }

    fn subscribe(&self) -> broadcast::Receiver<Invalidation> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        let id: TenantId = "0190e0a0-0000-7000-8000-000000000001".parse().unwrap();
        let inv = Invalidation::tenant(id, ChangeKind::CaCertificate);
        let json = serde_json::to_string(&inv).unwrap();
        assert_eq!(
            json,
            r#"{"type":"tenant","tenant_id":"0190e0a0-0000-7000-8000-000000000001","kind":"ca_certificate"}"#
        );
        assert_eq!(serde_json::from_str::<Invalidation>(&json).unwrap(), inv);
        assert_eq!(
            serde_json::to_string(&Invalidation::All).unwrap(),
            r#"{"type":"all"}"#
        );
    }

    #[tokio::test]
    async fn in_process_feed_delivers_to_every_subscriber() {
        let feed = InProcessFeed::new();
        let (mut a, mut b) = (feed.subscribe(), feed.subscribe());
        feed.publish(Invalidation::All);
        assert_eq!(a.recv().await.unwrap(), Invalidation::All);
        assert_eq!(b.recv().await.unwrap(), Invalidation::All);
    }
}
