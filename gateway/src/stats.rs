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
    /// TLS handshakes that failed: junk instead of a ClientHello, an unsupported protocol
    /// version, a client certificate from no registered CA, a peer that hung up mid-handshake.
    pub tls_handshake_failures: AtomicU64,
    /// TLS handshakes not finished within the connect timeout: slowloris and half-open
    /// sockets on the TLS listeners.
    pub tls_handshake_timeouts: AtomicU64,
    /// Connections closed for a missing, malformed, late or oversized PROXY protocol header.
    pub proxy_header_errors: AtomicU64,
    /// WebSocket upgrades refused or failed: wrong path, no `mqtt` subprotocol, not an
    /// upgrade request, a peer that hung up or stalled.
    pub ws_upgrade_failures: AtomicU64,
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
