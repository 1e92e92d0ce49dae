//! Usage metering and metrics of one engine, off the hot path.
//!
//! Handlers count into [`EngineStats`] with plain adds. Every [`USAGE_TICK`] the engine calls
//! [`Engine::meter_tick`], which hands what changed since the previous tick to the process's
//! [`UsageRecorder`] (per tenant and hour, for billing) — one short lock per tenant per tick,
//! never one per message — and moves the process-wide gauges by this engine's change.
//!
//! Connection-seconds are integrated exactly: every connect and disconnect first adds
//! "connections × time since the last change", so a connection of 300 ms between two ticks
//! counts 300 ms. Whole seconds are handed over and the remainder carried.

use std::sync::Arc;

use tenantmq_common::metrics::Metrics;
use tenantmq_common::usage::{Rejections, USAGE_TICK, UsageDelta, UsageRecorder};
use tokio::time::Instant;

use crate::engine::{Engine, MAILBOX_CAPACITY};
use crate::stats::EngineStats;

/// What the engine has already reported.
#[derive(Debug)]
pub(crate) struct Meter {
    recorder: Arc<UsageRecorder>,
    /// The counters as of the previous tick.
    reported: Reported,
    /// Connection-milliseconds not yet handed over.
    conn_ms: u64,
    /// When `conn_ms` was last brought up to date.
    integrated_at: Instant,
    /// Most concurrent connections since the previous tick.
    peak: u64,
    /// Gauge contributions of this engine, so that a tick moves the process-wide gauges by
    /// this engine's change only.
    gauges: Gauges,
}

#[derive(Debug, Default, Clone, Copy)]
struct Reported {
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
    dropped: u64,
    opened: u64,
    closed: u64,
    refused: u64,
    rejections: Rejections,
}

#[derive(Debug, Default, Clone, Copy)]
struct Gauges {
    connections: i64,
    mailbox: i64,
    queued: i64,
}

impl Meter {
    /// A meter reporting to `recorder`, starting now.
    pub fn new(recorder: Arc<UsageRecorder>, now: Instant) -> Self {
        recorder.metrics().engines.inc();
        Self {
            recorder,
            reported: Reported::default(),
            conn_ms: 0,
            integrated_at: now,
            peak: 0,
            gauges: Gauges::default(),
        }
    }

    fn metrics(&self) -> &Metrics {
        self.recorder.metrics()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        // The engine ended: take its share out of the gauges.
        let m = self.recorder.metrics();
        m.engines.dec();
        m.connections.dec_by(self.gauges.connections);
        m.mailbox_depth.dec_by(self.gauges.mailbox);
        m.session_queue_depth.dec_by(self.gauges.queued);
    }
}

impl Engine {
    /// Devices connected now.
    pub(crate) fn connected(&self) -> u64 {
        self.stats
            .connections_opened
            .saturating_sub(self.stats.connections_closed)
    }

    /// Brings connection time up to `now`; call *before* the number of connections changes.
    pub(crate) fn meter_connections(&mut self, now: Instant) {
        let connected = self.connected();
        if let Some(meter) = self.meter.as_mut() {
            let elapsed = now.saturating_duration_since(meter.integrated_at);
            let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            meter.conn_ms = meter.conn_ms.saturating_add(ms.saturating_mul(connected));
            meter.integrated_at = now;
        }
    }

    /// Notes the connection count after a connection opened (for the peak).
    pub(crate) fn meter_peak(&mut self) {
        let connected = self.connected();
        if let Some(meter) = self.meter.as_mut() {
            meter.peak = meter.peak.max(connected);
        }
    }

    /// Hands what changed since the last tick to the recorder and the metrics. Called every
    /// [`USAGE_TICK`] and once more when the engine stops.
    pub(crate) fn meter_tick(&mut self, now: Instant) {
        self.meter_connections(now);
        let connected = self.connected();
        let mut queued = 0usize;
        for session in self.slots.iter_mut().filter_map(|s| s.session.as_mut()) {
            queued += session.queue.len();
            let (messages, bytes) = std::mem::take(&mut session.sent_from_queue);
            self.stats.messages_out += messages;
            self.stats.bytes_out += bytes;
        }
        let mailbox = MAILBOX_CAPACITY.saturating_sub(self.mailbox.capacity());
        let tenant = self.tenant;
        let stats: &EngineStats = &self.stats;
        let Some(meter) = self.meter.as_mut() else {
            return;
        };
        let now_counters = Reported {
            messages_in: stats.messages_in,
            bytes_in: stats.bytes_in,
            messages_out: stats.messages_out,
            bytes_out: stats.bytes_out,
            dropped: stats.messages_dropped,
            opened: stats.connections_opened,
            closed: stats.connections_closed,
            refused: stats.connections_refused,
            rejections: stats.rejections,
        };
        let was = meter.reported;
        let delta = UsageDelta {
            connection_seconds: meter.conn_ms / 1000,
            peak_connections: meter.peak.max(connected),
            messages_in: now_counters.messages_in - was.messages_in,
            bytes_in: now_counters.bytes_in - was.bytes_in,
            messages_out: now_counters.messages_out - was.messages_out,
            bytes_out: now_counters.bytes_out - was.bytes_out,
            rejections: now_counters.rejections.since(&was.rejections),
        };
        meter.conn_ms %= 1000;
        meter.peak = connected;
        meter.reported = now_counters;
        meter.recorder.record(tenant, &delta);

        let m = meter.metrics();
        m.messages_dropped
            .inc_by(now_counters.dropped - was.dropped);
        m.connections_opened
            .inc_by(now_counters.opened - was.opened);
        m.connections_closed
            .inc_by(now_counters.closed - was.closed);
        m.connect_refused.inc_by(now_counters.refused - was.refused);
        let gauges = Gauges {
            connections: i64::try_from(connected).unwrap_or(i64::MAX),
            mailbox: i64::try_from(mailbox).unwrap_or(i64::MAX),
            queued: i64::try_from(queued).unwrap_or(i64::MAX),
        };
        m.connections
            .inc_by(gauges.connections - meter.gauges.connections);
        m.mailbox_depth
            .inc_by(gauges.mailbox - meter.gauges.mailbox);
        m.session_queue_depth
            .inc_by(gauges.queued - meter.gauges.queued);
        meter.gauges = gauges;
    }

    /// Observes the delivery latency of one batch: from the earliest `received_at` of its
    /// packets to now, when its deliveries were handed to the subscribers' connections. Only
    /// batches that delivered something count.
    pub(crate) fn observe_latency(&self, earliest: Option<Instant>, sent_before: u64) {
        if let (Some(meter), Some(at)) = (self.meter.as_ref(), earliest)
            && self.stats.messages_out > sent_before
        {
            let secs = Instant::now().saturating_duration_since(at).as_secs_f64();
            meter.metrics().delivery_latency.observe(secs);
        }
    }
}

/// Ensures the tick constant stays meaningful for callers that read it from here.
pub(crate) const TICK: std::time::Duration = USAGE_TICK;
