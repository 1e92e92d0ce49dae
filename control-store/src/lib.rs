//! Control plane, off the data path: the source of truth the data plane's caches read from.
//!
//! Tenants, API keys, device credentials, CA certificates, ACL rules and hourly usage live in
//! one [`Store`] that runs on Postgres (cluster mode) or SQLite (standalone) with the same
//! behaviour and the same SQL text: only the column types differ ([`db`]). Every write runs in a
//! transaction. Changes that matter to the data plane are announced on a [`feed::ChangeFeed`]
//! (in-process broadcast or Redis pub/sub) after the transaction commits.
#![forbid(unsafe_code)]

/// Runs `$body` with `$pool` bound to the concrete pool of the store's back-end. The body is
/// compiled once per back-end, so one SQL text and one row struct serve both.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Postgres($pool) => $body,
            $crate::store::Backend::Sqlite($pool) => $body,
        }
    };
}

mod acls;
mod api_keys;
mod ca_certificates;
mod credentials;
mod db;
mod error;
pub mod feed;
pub mod models;
mod redis_feed;
mod secret;
mod store;
mod tenants;
mod usage;
pub mod usage_flush;

pub use error::StoreError;
pub use feed::{ChangeFeed, ChangeKind, InProcessFeed, Invalidation};
pub use redis_feed::{INVALIDATIONS_CHANNEL, RedisFeed};
pub use secret::Secret;
pub use store::Store;
pub use usage::USAGE_BATCH_RETENTION_DAYS;
pub use usage_flush::{USAGE_FLUSH_INTERVAL, UsageFlusher};

#[cfg(feature = "test-util")]
pub mod test_util;
