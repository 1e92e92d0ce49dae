//! Hop 1 of the data path: the device-facing edge.
//!
//! A connection is accepted by a [`listener`], its CONNECT is read under a connect timeout and
//! a small pre-authentication packet limit, an [`auth::Authenticator`] decides which tenant it
//! belongs to and who it is, and the session is opened on the worker through the tenant
//! router's `Link`. From then on [`connection`] pumps bytes: whole MQTT packets from the device
//! go to the engine batched per read (framing only — bodies are decoded by the engine), and
//! the engine's output goes to the socket batched per wake-up. The gateway keeps no session
//! state: a new gateway finds the session where the worker keeps it.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod connection;
pub mod listener;
pub mod stats;

pub use config::GatewayConfig;
pub use listener::{Gateway, run_listener};
