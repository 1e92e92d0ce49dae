//! Shared by every hop of the data path (device → gateway → tenant-router → worker → engine).
//!
//! Only what all hops truly need lives here: id newtypes ([`TenantId`]), the plan/quota model
//! ([`quota::Quotas`]), the device's authorisation context ([`auth::AuthContext`]), the frames
//! of the gateway ↔ worker link ([`link`]) and the shutdown signal ([`shutdown`]). No I/O, no
//! database, no TLS.
#![forbid(unsafe_code)]

pub mod auth;
pub mod ids;
pub mod link;
pub mod quota;
pub mod shutdown;

pub use ids::TenantId;
