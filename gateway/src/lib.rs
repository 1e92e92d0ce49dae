//! Hop 1 of the data path: the device-facing edge.
//!
//! A connection is accepted by a [`listener`], its CONNECT is read under a connect timeout and
//! a small pre-authentication packet limit, an [`auth::Authenticator`] decides which tenant it
//! belongs to and who it is, and the session is opened on the worker through the tenant
//! router's `Link`. From then on [`connection`] pumps bytes: whole MQTT packets from the device
//! go to the engine batched per read (framing only — bodies are decoded by the engine), and
//! the engine's output goes to the socket batched per wake-up. The gateway keeps no session
//! state: a new gateway finds the session where the worker keeps it.
//!
//! Where the bytes come in: [`listener`] runs one accept loop per listener (`mqtts`, `wss`,
//! and plain TCP / WebSocket for development); before the first MQTT byte a connection may
//! pass a PROXY protocol v2 header ([`proxy`]), a TLS handshake ([`tls`], with optional client
//! certificates from tenants' registered CAs in [`mtls`]) and a WebSocket upgrade ([`ws`]).
//! [`certs`] generates the development certificates of `tenantmq standalone`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod certs;
pub mod config;
pub mod connection;
pub mod control_auth;
pub mod control_cas;
pub mod control_quotas;
pub mod limits;
pub mod listener;
pub mod mtls;
pub mod proxy;
pub mod stats;
pub mod tls;
pub mod tls_stream;
pub mod ws;

pub use config::GatewayConfig;
pub use listener::{
    Gateway, ListenerOptions, Transport, run_listener, run_mqtts, run_ws_plain, run_wss,
};
pub use mtls::{CaList, ClientCaSource, TenantCa};
pub use tls::{TlsContext, TlsSettings};
