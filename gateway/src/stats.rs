//! Gateway counters: every connection closed for bad input is counted by cause. Shared by all
//! connection tasks, so they are atomics; they move once per connection, not per message.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one gateway.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused because the process is at its connection cap.
    pub rejected_at_capacity: AtomicU64,
    /// Connections that did not send CONNECT in time.
    pub connect_timeouts: AtomicU64,
    /// Connections whose first packet was not a valid CONNECT.
    pub bad_connect: AtomicU64,
    /// Connections whose CONNECT exceeded the pre-authentication size limit.
    pub oversized_connect: AtomicU64,
    /// Authentication failures.
    pub auth_failures: AtomicU64,
    /// Connections closed for a malformed or oversized packet after CONNECT.
    pub protocol_errors: AtomicU64,
    /// Connections closed by keep-alive timeout.
    pub keepalive_timeouts: AtomicU64,
}

impl GatewayStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
