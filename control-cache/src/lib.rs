//! Hop 1–4 support, off the message path: the read side of the control plane for gateways
//! (tenant by slug, device password verification, registered CAs) and workers (quotas, ACLs).
//!
//! Every answer comes from a local cache filled from the control [`Store`]:
//! * entries expire after a TTL, and invalidations from the [`ChangeFeed`] mark a tenant's
//!   entries stale at once (a lagged feed or a Redis reconnect marks everything stale);
//! * **static stability**: when the store fails, a stale entry is served rather than an error
//!   (logged and counted in [`CacheStats::stale_served`]), so devices already known keep
//!   connecting while the database is down;
//! * password verification caches the *verdict* per (tenant, username, SHA-256 of the
//!   password) for a short time — never the password — and runs argon2 on the blocking pool.
#![forbid(unsafe_code)]

mod cache;
mod map;

pub use cache::{CacheConfig, CacheError, CacheStats, ControlCache, DeviceIdentity, TenantView};
pub use cache::{
    DEFAULT_MAX_ENTRIES, DEFAULT_NEGATIVE_TTL, DEFAULT_PASSWORD_FAIL_TTL, DEFAULT_PASSWORD_OK_TTL,
    DEFAULT_TTL,
};
pub use tenantmq_control_store::{ChangeFeed, Store};
