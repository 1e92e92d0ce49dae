//! Hop 4 of the data path: the per-tenant MQTT broker engine, run by workers.
#![forbid(unsafe_code)]

pub mod trie;
