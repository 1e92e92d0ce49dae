//! Gateway counters: every connection closed for bad input is counted by cause. Shared by all
//! connection tasks, so they are atomics; they move once per connection, not per message.
//! [`GatewayStats::samples`] exposes them as metrics (names listed in `docs/architecture.md`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tenantmq_common::TenantId;
use tenantmq_common::metrics::{Sample, SampleKind};
use tenantmq_common::usage::{RejectReason, UsageRecorder};

/// Counters of one gateway.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused because the process is at its connection cap.
    pub rejected_at_capacity: AtomicU64,
    /// Connections that did not send CONNECT in time.
    pub connect_timeouts: AtomicU64,
    /// Connections whose first packet was not a valid CONNECT.
    pub bad_connect: AtomicU64,
    /// Connections whose CONNECT exceeded the pre-authentication size limit.
    pub oversized_connect: AtomicU64,
    /// Authentication failures.
    pub auth_failures: AtomicU64,
    /// Connections closed for a malformed or oversized packet after CONNECT.
    pub protocol_errors: AtomicU64,
    /// Connections closed by keep-alive timeout.
    pub keepalive_timeouts: AtomicU64,
    /// TLS handshakes that failed: junk instead of a ClientHello, an unsupported protocol
    /// version, a client certificate from no registered CA, a peer that hung up mid-handshake.
    pub tls_handshake_failures: AtomicU64,
    /// TLS handshakes not finished within the connect timeout: slowloris and half-open
    /// sockets on the TLS listeners.
    pub tls_handshake_timeouts: AtomicU64,
    /// Connections closed for a missing, malformed, late or oversized PROXY protocol header.
    pub proxy_header_errors: AtomicU64,
    /// WebSocket upgrades refused or failed: wrong path, no `mqtt` subprotocol, not an
    /// upgrade request, a peer that hung up or stalled.
    pub ws_upgrade_failures: AtomicU64,
    /// Refusals by a limit, by reason, over all tenants (see [`GatewayStats::reject`]).
    pub rejections: [AtomicU64; RejectReason::COUNT],
    /// Where per-tenant rejections are metered, when the process meters usage.
    usage: OnceLock<Arc<UsageRecorder>>,
}

impl GatewayStats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counters whose per-tenant rejections go to `usage` (billing, the usage API).
    pub fn with_usage(usage: Arc<UsageRecorder>) -> Self {
        let stats = Self::default();
        let _ = stats.usage.set(usage);
        stats
    }

    /// Counts a refusal by a limit enforced in the gateway (connect rates, connection caps,
    /// per-client rates): once in the global per-reason counter, and once for `tenant` in the
    /// usage recorder when there is one. The recorder also feeds `tenantmq_rejections_total`,
    /// so the global counter here is not exported again.
    pub fn reject(&self, tenant: TenantId, reason: RejectReason) {
        if let Some(counter) = self.rejections.get(reason.index()) {
            Self::bump(counter);
        }
        if let Some(usage) = self.usage.get() {
            usage.reject(tenant, reason);
        }
    }

    /// Refusals counted by [`GatewayStats::reject`] for `reason`.
    pub fn rejections_for(&self, reason: RejectReason) -> u64 {
        self.rejections.get(reason.index()).map_or(0, Self::get)
    }

    /// The counters as metric samples (read at scrape time).
    pub fn samples(&self, out: &mut Vec<Sample>) {
        let counter = |name, help, label, c: &AtomicU64| Sample {
            name,
            help,
            kind: SampleKind::Counter,
            label,
            value: Self::get(c),
        };
        out.push(counter(
            "tenantmq_gateway_connections_accepted",
            "Connections accepted by the gateway's listeners",
            None,
            &self.accepted,
        ));
        const REFUSED: &str = "tenantmq_gateway_connections_refused";
        const REFUSED_HELP: &str = "Connections closed before a session opened, by reason";
        for (reason, c) in [
            ("capacity", &self.rejected_at_capacity),
            ("connect_timeout", &self.connect_timeouts),
            ("bad_connect", &self.bad_connect),
            ("oversized_connect", &self.oversized_connect),
            ("auth", &self.auth_failures),
            ("tls_handshake", &self.tls_handshake_failures),
            ("tls_timeout", &self.tls_handshake_timeouts),
            ("proxy_header", &self.proxy_header_errors),
            ("ws_upgrade", &self.ws_upgrade_failures),
        ] {
            out.push(counter(REFUSED, REFUSED_HELP, Some(("reason", reason)), c));
        }
        const CLOSED: &str = "tenantmq_gateway_connections_closed";
        const CLOSED_HELP: &str = "Sessions the gateway closed, by reason";
        for (reason, c) in [
            ("protocol_error", &self.protocol_errors),
            ("keepalive_timeout", &self.keepalive_timeouts),
        ] {
            out.push(counter(CLOSED, CLOSED_HELP, Some(("reason", reason)), c));
        }
    }
}
