//! Gateway configuration: per-connection limits, with their defaults as named constants.

use std::time::Duration;

/// Sockets that have not sent a complete CONNECT within this time are closed.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest packet accepted before the client is authenticated: enough for a CONNECT with a
/// will message, small enough that unauthenticated sockets cannot make us buffer much.
pub const DEFAULT_PRE_AUTH_MAX_PACKET: u32 = 64 * 1024;

/// Default cap on concurrent connections per gateway process.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// Per-connection limits of a gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Time allowed from accept to a complete CONNECT.
    pub connect_timeout: Duration,
    /// Largest packet before authentication.
    pub pre_auth_max_packet: u32,
    /// Concurrent connections this process accepts; more are closed at accept.
    pub max_connections: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pre_auth_max_packet: DEFAULT_PRE_AUTH_MAX_PACKET,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}
