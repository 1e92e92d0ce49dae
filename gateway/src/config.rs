//! Gateway configuration: per-connection limits, with their defaults as named constants.

use std::time::Duration;

/// Sockets that have not sent a complete CONNECT within this time are closed.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest packet accepted before the client is authenticated: enough for a CONNECT with a
/// will message, small enough that unauthenticated sockets cannot make us buffer much.
pub const DEFAULT_PRE_AUTH_MAX_PACKET: u32 = 64 * 1024;

/// Default cap on concurrent connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// Default largest WebSocket message (and frame) the gateway reads: the largest Maximum Packet
/// Size of the standard plans (enterprise, 1 MiB).
pub const DEFAULT_WS_MAX_MESSAGE: usize = 1024 * 1024;

/// Per-connection limits of a gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Time allowed from accept to a complete CONNECT. It covers everything before CONNECT
    /// too: the PROXY protocol header, the TLS handshake and the WebSocket upgrade.
    pub connect_timeout: Duration,
    /// Largest packet before authentication.
    pub pre_auth_max_packet: u32,
    /// Concurrent connections one listener accepts; more are closed at accept.
    pub max_connections: usize,
    /// Largest WebSocket message and frame read from a device. WebSocket messages are
    /// reassembled whole before the MQTT framing sees them, so this bounds what one
    /// connection can make the gateway buffer, before and after authentication; set it to the
    /// largest Maximum Packet Size any tenant may have. A message may hold several packets
    /// (`MQTT-6.0.0-2`), but clients send one per message.
    pub ws_max_message: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pre_auth_max_packet: DEFAULT_PRE_AUTH_MAX_PACKET,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            ws_max_message: DEFAULT_WS_MAX_MESSAGE,
        }
    }
}
