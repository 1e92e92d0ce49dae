//! Usage metering shared by every hop: the bounded set of reasons a limit refuses something
//! ([`RejectReason`]), the counters a single-owner engine keeps as plain integers
//! ([`Rejections`], [`UsageDelta`]), and the process-wide [`UsageRecorder`] that engines (on a
//! timer) and gateways (per refused connection) hand their counts to.
//!
//! The recorder aggregates per tenant and hour in memory; a flusher task
//! (`tenantmq_control_store::usage_flush`) drains it into the control store in batches. Per-tenant
//! detail lives here and in the usage records, never in metric labels (whose cardinality must
//! stay bounded): the recorder also adds every delta to the tenant-less totals of
//! [`crate::metrics::Metrics`].
//!
//! # Counting a rejection (for code that enforces a limit)
//! * In an engine (single owner, hot path): `self.stats.rejections.add(RejectReason::MessageRate)`
//!   — a plain add into `EngineStats::rejections`; the engine hands the counts over every
//!   [`USAGE_TICK`].
//! * In a gateway (shared by all connection tasks): `ctx.stats.reject(tenant, reason)` on
//!   `GatewayStats`, which bumps the global per-reason counter and, when the process meters
//!   usage, records the tenant's rejection here.
//!
//! Add a reason by adding a variant (and its name in [`RejectReason::as_str`] and
//! [`RejectReason::ALL`]); names are a metrics contract (house rule 12), so never rename one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::TenantId;
use crate::metrics::Metrics;

/// How often an engine hands its counters to the [`UsageRecorder`]. Short enough that the
/// usage and metrics lag little; long enough that the lock is taken once a second per tenant,
/// never per message.
pub const USAGE_TICK: Duration = Duration::from_secs(1);

/// Why a limit refused a connection, a packet or a subscription. A small closed set, so it may
/// label metrics; per-tenant counts go to usage records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The tenant's concurrent connections are at `max_connections` (MQTT 5: 0x97).
    ConnectionQuota,
    /// The tenant's connect rate (`connect_rate_per_sec`) was exceeded (0x9F).
    ConnectRate,
    /// A source address connected too often (0x9F).
    SourceConnectRate,
    /// One client id reconnected in a tight loop (0x9F).
    ClientConnectRate,
    /// A client published above its or its tenant's message rate, after being slowed (MQTT 5:
    /// PUBACK/PUBREC 0x97 with the Reason String "message rate too high"; 0x96 is a
    /// DISCONNECT-only code).
    MessageRate,
    /// A client or its tenant went above the bandwidth limit.
    Bandwidth,
    /// A packet above `max_message_bytes` (0x95).
    PacketTooLarge,
    /// More subscriptions than the plan allows (0x97).
    SubscriptionQuota,
    /// A topic or filter with more levels than `max_topic_levels`.
    TopicLevels,
    /// Retained messages or bytes at the plan's limit (0x97).
    RetainedQuota,
    /// A persistent session's offline queue was full; the message was dropped.
    QueueFull,
    /// More QoS 1/2 messages in flight than allowed (an incoming QoS 2 beyond the server's
    /// Receive Maximum: 0x93).
    Inflight,
    /// A QoS above the plan's `maximum_qos` (0x9B).
    QosNotSupported,
    /// RETAIN where the plan disables it (0x9A).
    RetainNotSupported,
    /// A wildcard subscription where the plan disables them (0xA2).
    WildcardNotSupported,
    /// A shared subscription where the plan disables them (0x9E).
    SharedNotSupported,
    /// A subscription identifier where they are not supported (0xA1).
    SubscriptionIdsNotSupported,
    /// Session expiry or keep alive above the plan's cap (capped, counted).
    SessionLimit,
}

impl RejectReason {
    /// Number of reasons.
    pub const COUNT: usize = 18;

    /// Every reason, in declaration order (the index of [`Rejections`]).
    pub const ALL: [RejectReason; Self::COUNT] = [
        Self::ConnectionQuota,
        Self::ConnectRate,
        Self::SourceConnectRate,
        Self::ClientConnectRate,
        Self::MessageRate,
        Self::Bandwidth,
        Self::PacketTooLarge,
        Self::SubscriptionQuota,
        Self::TopicLevels,
        Self::RetainedQuota,
        Self::QueueFull,
        Self::Inflight,
        Self::QosNotSupported,
        Self::RetainNotSupported,
        Self::WildcardNotSupported,
        Self::SharedNotSupported,
        Self::SubscriptionIdsNotSupported,
        Self::SessionLimit,
    ];

    /// The label value in metrics (`tenantmq_rejections_total{reason="…"}`): stable snake_case.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionQuota => "connection_quota",
            Self::ConnectRate => "connect_rate",
            Self::SourceConnectRate => "source_connect_rate",
            Self::ClientConnectRate => "client_connect_rate",
            Self::MessageRate => "message_rate",
            Self::Bandwidth => "bandwidth",
            Self::PacketTooLarge => "packet_too_large",
            Self::SubscriptionQuota => "subscription_quota",
            Self::TopicLevels => "topic_levels",
            Self::RetainedQuota => "retained_quota",
            Self::QueueFull => "queue_full",
            Self::Inflight => "inflight",
            Self::QosNotSupported => "qos_not_supported",
            Self::RetainNotSupported => "retain_not_supported",
            Self::WildcardNotSupported => "wildcard_not_supported",
            Self::SharedNotSupported => "shared_not_supported",
            Self::SubscriptionIdsNotSupported => "subscription_ids_not_supported",
            Self::SessionLimit => "session_limit",
        }
    }

    /// Position in [`RejectReason::ALL`] (and in per-reason arrays).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Rejections by reason, as plain integers: what a single-owner engine keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rejections([u64; RejectReason::COUNT]);

impl Rejections {
    /// Counts one rejection.
    pub fn add(&mut self, reason: RejectReason) {
        self.add_n(reason, 1);
    }

    /// Counts `n` rejections.
    pub fn add_n(&mut self, reason: RejectReason, n: u64) {
        let slot = &mut self.0[reason.index()];
        *slot = slot.saturating_add(n);
    }

    /// Rejections for `reason`.
    pub fn get(&self, reason: RejectReason) -> u64 {
        self.0[reason.index()]
    }

    /// All rejections.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// The reasons with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }

    /// `self − earlier`, per reason (counters only grow, so this is what happened since).
    pub fn since(&self, earlier: &Rejections) -> Rejections {
        let mut d = Rejections::default();
        for (i, slot) in d.0.iter_mut().enumerate() {
            *slot = self.0[i].saturating_sub(earlier.0[i]);
        }
        d
    }

    fn merge(&mut self, other: &Rejections) {
        for (i, slot) in self.0.iter_mut().enumerate() {
            *slot = slot.saturating_add(other.0[i]);
        }
    }
}

/// What one tenant used during one interval, as handed to [`UsageRecorder::record`]. Traffic of
/// the broker's own `$SYS` topics is never counted here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageDelta {
    /// Whole connection-seconds (sum over connections of time connected).
    pub connection_seconds: u64,
    /// Most concurrent connections during the interval.
    pub peak_connections: u64,
    /// PUBLISH packets received from devices (wills included).
    pub messages_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// PUBLISH packets written to devices.
    pub messages_out: u64,
    /// Payload bytes written to devices.
    pub bytes_out: u64,
    /// Refused by a limit, by reason.
    pub rejections: Rejections,
}

impl UsageDelta {
    /// True when nothing was used (the peak alone is not usage: an idle hour has no row).
    pub fn is_empty(&self) -> bool {
        self.connection_seconds == 0
            && self.peak_connections == 0
            && self.messages_in == 0
            && self.bytes_in == 0
            && self.messages_out == 0
            && self.bytes_out == 0
            && self.rejections.total() == 0
    }

    fn merge(&mut self, d: &UsageDelta) {
        self.connection_seconds = self.connection_seconds.saturating_add(d.connection_seconds);
        self.peak_connections = self.peak_connections.max(d.peak_connections);
        self.messages_in = self.messages_in.saturating_add(d.messages_in);
        self.bytes_in = self.bytes_in.saturating_add(d.bytes_in);
        self.messages_out = self.messages_out.saturating_add(d.messages_out);
        self.bytes_out = self.bytes_out.saturating_add(d.bytes_out);
        self.rejections.merge(&d.rejections);
    }
}

/// One tenant's usage in one hour, as drained from the recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourlyUsage {
    /// The tenant.
    pub tenant: TenantId,
    /// Start of the hour, seconds since the Unix epoch (a multiple of 3600).
    pub hour_unix: u64,
    /// What was used.
    pub usage: UsageDelta,
}

/// Process-wide aggregation of usage per tenant and hour. Cheap to share (`Arc`); a
/// short lock per call, taken by each engine once per [`USAGE_TICK`] and by gateways per
/// refused connection — never per message.
#[derive(Debug)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<(TenantId, u64), UsageDelta>>,
    metrics: Arc<Metrics>,
}

impl UsageRecorder {
    /// A recorder that also feeds the tenant-less totals of `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            pending: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// The metrics this recorder feeds.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Adds `delta` to the tenant's current hour.
    pub fn record(&self, tenant: TenantId, delta: &UsageDelta) {
        self.record_at(tenant, delta, SystemTime::now());
    }

    /// Adds `delta` to the tenant's hour that contains `at` (tests pick the hour).
    pub fn record_at(&self, tenant: TenantId, delta: &UsageDelta, at: SystemTime) {
        self.metrics.add_usage(delta);
        if delta.is_empty() {
            return;
        }
        let hour = hour_of(at);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.entry((tenant, hour)).or_default().merge(delta);
    }

    /// Counts one rejection of `tenant` (gateways; engines count in their own stats).
    pub fn reject(&self, tenant: TenantId, reason: RejectReason) {
        let mut delta = UsageDelta::default();
        delta.rejections.add(reason);
        self.record(tenant, &delta);
    }

    /// Takes everything recorded so far. The caller owns it from now on: once it is written
    /// it must not be handed back, or it would be counted twice; if writing fails, hand it
    /// back with [`UsageRecorder::restore`] or retry it as the same batch.
    pub fn drain(&self) -> Vec<HourlyUsage> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<HourlyUsage> = pending
            .drain()
            .map(|((tenant, hour_unix), usage)| HourlyUsage {
                tenant,
                hour_unix,
                usage,
            })
            .collect();
        out.sort_by_key(|u| (u.hour_unix, u.tenant));
        out
    }

    /// Puts drained usage back (merged with what arrived since), e.g. when it could not even
    /// be formed into a batch.
    pub fn restore(&self, usage: &[HourlyUsage]) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for u in usage {
            pending
                .entry((u.tenant, u.hour_unix))
                .or_default()
                .merge(&u.usage);
        }
    }

    /// Number of (tenant, hour) entries waiting.
    pub fn pending_len(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Start of the hour containing `t`, seconds since the Unix epoch.
pub fn hour_of(t: SystemTime) -> u64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs - secs % 3600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_order_and_named_uniquely() {
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RejectReason::COUNT);
    }

    #[test]
    fn recorder_sums_per_tenant_and_hour_and_keeps_the_peak() {
        let rec = UsageRecorder::new(Arc::new(Metrics::new()));
        let (a, b) = (TenantId::new_v7(), TenantId::new_v7());
        let t0 = UNIX_EPOCH + Duration::from_secs(3600 * 10 + 5);
        let t1 = t0 + Duration::from_secs(3600);
        let d = |n: u64| UsageDelta {
            messages_in: n,
            peak_connections: n,
            ..UsageDelta::default()
        };
        rec.record_at(a, &d(2), t0);
        rec.record_at(a, &d(5), t0);
        rec.record_at(a, &d(1), t1);
        rec.record_at(b, &d(7), t0);
        rec.reject(b, RejectReason::MessageRate);
        let drained = rec.drain();
        let get = |t, h| {
            drained
                .iter()
                .find(|u| u.tenant == t && u.hour_unix == h)
                .map(|u| u.usage)
        };
        let a0 = get(a, 36000).unwrap();
        assert_eq!((a0.messages_in, a0.peak_connections), (7, 5));
        assert_eq!(get(a, 39600).unwrap().messages_in, 1);
        assert_eq!(get(b, 36000).unwrap().messages_in, 7);
        assert_eq!(rec.pending_len(), 0);
        rec.restore(&drained);
        assert_eq!(rec.drain().len(), drained.len());
    }

    #[test]
    fn rejections_since_is_the_difference() {
        let mut a = Rejections::default();
        a.add(RejectReason::Inflight);
        let before = a;
        a.add_n(RejectReason::Inflight, 2);
        a.add(RejectReason::Bandwidth);
        let d = a.since(&before);
        assert_eq!(d.get(RejectReason::Inflight), 2);
        assert_eq!(d.total(), 3);
        assert_eq!(d.iter().count(), 2);
    }
}
