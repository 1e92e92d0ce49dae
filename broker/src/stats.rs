//! Counters of one engine. Plain integers: the engine is single-owner, so counting costs an
//! add. Every `USAGE_TICK` the engine hands what changed to the process's `UsageRecorder`
//! (per-tenant usage records and tenant-less metrics) and every `$SYS` interval publishes them
//! to its own tenant; never as unbounded metric labels.

use tenantmq_common::usage::Rejections;

/// What an engine has done since it started.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EngineStats {
    /// Connections accepted.
    pub connections_opened: u64,
    /// Connections ended, for any reason.
    pub connections_closed: u64,
    /// Connections refused at CONNECT.
    pub connections_refused: u64,
    /// PUBLISH packets received from clients (wills included).
    pub messages_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// PUBLISH packets written to clients.
    pub messages_out: u64,
    /// Payload bytes written to clients.
    pub bytes_out: u64,
    /// Deliveries dropped (QoS 0 to slow or offline clients, full queues, expired, too large).
    pub messages_dropped: u64,
    /// PUBLISH and SUBSCRIBE refused by ACL.
    pub acl_denied: u64,
    /// Connections closed for a protocol violation.
    pub protocol_errors: u64,
    /// Refusals by a limit, by reason: count with `rejections.add(RejectReason::…)`.
    pub rejections: Rejections,
}
