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

/// Default new connections per second from one source address (before authentication):
/// generous, since many devices may share an address behind NAT; it stops floods of junk.
pub const DEFAULT_SOURCE_CONNECT_PER_SEC: u32 = 100;

/// Default burst of new connections from one source address.
pub const DEFAULT_SOURCE_CONNECT_BURST: u32 = 200;

/// Default CONNECTs per second of one client id, after its burst: a device that reconnects in
/// a tight loop is slowed to this.
pub const DEFAULT_CLIENT_ID_CONNECT_PER_SEC: u32 = 1;

/// Default CONNECTs one client id may make back to back.
pub const DEFAULT_CLIENT_ID_CONNECT_BURST: u32 = 5;

/// Default longest a CONNECT is held back for its client id's connect rate; a CONNECT that
/// would have to wait longer is refused with 0x9F.
pub const DEFAULT_CLIENT_ID_MAX_DELAY: Duration = Duration::from_secs(3);

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
    /// New connections per second one source address may open (0: no limit). Checked
    /// before authentication, so unauthenticated floods cost no credential checks; beyond it
    /// the connection gets CONNACK 0x9F (3.1.1: return code 3).
    pub source_connect_per_sec: u32,
    /// Connections a source address may open back to back.
    pub source_connect_burst: u32,
    /// CONNECTs per second one client id of a tenant may make (0: no limit). Beyond it the
    /// CONNECT is delayed until allowed, up to [`GatewayConfig::client_id_max_delay`].
    pub client_id_connect_per_sec: u32,
    /// CONNECTs one client id may make back to back.
    pub client_id_connect_burst: u32,
    /// Longest a CONNECT is delayed for its client id (never more than half the connect
    /// timeout, so that the device's own CONNACK timeout is not reached); beyond it CONNACK
    /// 0x9F (3.1.1: return code 3).
    pub client_id_max_delay: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pre_auth_max_packet: DEFAULT_PRE_AUTH_MAX_PACKET,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            ws_max_message: DEFAULT_WS_MAX_MESSAGE,
            source_connect_per_sec: DEFAULT_SOURCE_CONNECT_PER_SEC,
            source_connect_burst: DEFAULT_SOURCE_CONNECT_BURST,
            client_id_connect_per_sec: DEFAULT_CLIENT_ID_CONNECT_PER_SEC,
            client_id_connect_burst: DEFAULT_CLIENT_ID_CONNECT_BURST,
            client_id_max_delay: DEFAULT_CLIENT_ID_MAX_DELAY,
        }
    }
}
