//! Hop 4 of the data path: the per-tenant MQTT broker engine, run by workers.
//!
//! One [`engine`] per active tenant owns that tenant's topic tree ([`trie`]), sessions,
//! retained messages ([`retained_tree`]) and queues. Connections reach it through the link
//! frames of `tenantmq_common::link`: [`spawn`] starts an engine and returns the sender its
//! frames go to. Packet handlers are in `handlers/`, one file per packet type.
#![forbid(unsafe_code)]

mod acl;
mod conn;
pub mod engine;
mod handlers;
pub mod limits;
mod message;
mod metering;
pub mod retained_tree;
mod route;
mod session;
pub mod stats;
pub mod sys;
mod timers;
pub mod trie;

pub use engine::{EngineHandle, EngineOptions, spawn, spawn_with};
