//! Shared by every hop of the data path (device → gateway → tenant-router → worker → engine).
//!
//! Only what all hops truly need lives here: id newtypes ([`TenantId`]), the plan/quota model
//! ([`quota::Quotas`]), the device's authorisation context ([`auth::AuthContext`]), the frames
//! of the gateway ↔ worker link ([`link`]), the shutdown signal ([`shutdown`]), and telemetry
//! shared by all hops: usage metering ([`usage`]), metrics ([`metrics`]) and the control plane's
//! handle on connected clients ([`session_admin`]). No I/O, no database, no TLS.
#![forbid(unsafe_code)]

pub mod auth;
pub mod ids;
pub mod link;
pub mod metrics;
pub mod quota;
pub mod session_admin;
pub mod shutdown;
pub mod token_bucket;
pub mod usage;

pub use ids::TenantId;
