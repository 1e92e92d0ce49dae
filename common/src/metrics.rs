//! Process metrics in the Prometheus model (`prometheus-client`), served on `/metrics` by every
//! process's ops listener and mirrored to OpenTelemetry when OTLP export is configured.
//!
//! Names are a contract (house rule 12): `docs/architecture.md` lists them and a test scrapes
//! them. Labels come only from small closed sets (a [`crate::usage::RejectReason`], a refusal
//! cause); never a tenant, client id or topic — per-tenant detail goes to usage records.
//!
//! The hot path never touches these atomics per message: engines count in plain integers and
//! hand deltas over once per [`crate::usage::USAGE_TICK`] through the
//! [`crate::usage::UsageRecorder`]; the delivery-latency histogram is observed once per engine
//! batch. Counters that other crates keep as their own atomics (gateway, control cache) are
//! exported by a [`SampleCollector`] that reads them at scrape time.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::usage::{RejectReason, UsageDelta};

/// Lowest bucket of the delivery-latency histogram, in seconds (50 µs).
pub const LATENCY_FIRST_BUCKET_SECS: f64 = 0.000_05;
/// Buckets of the delivery-latency histogram, each twice the previous (50 µs … 1.6 s).
pub const LATENCY_BUCKETS: u16 = 16;

/// The label set of per-reason families.
type ReasonLabel = [(&'static str, &'static str); 1];

/// The metrics of one process. Cheap to share behind an `Arc`; every metric is an atomic.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Devices connected to this process's engines (`tenantmq_connections`).
    pub connections: Gauge,
    /// Tenant engines running (`tenantmq_engines`).
    pub engines: Gauge,
    /// Sessions accepted by engines (`tenantmq_engine_connections_opened_total`).
    pub connections_opened: Counter,
    /// Sessions ended (`tenantmq_engine_connections_closed_total`).
    pub connections_closed: Counter,
    /// CONNECTs refused by an engine after authentication: bad client id, unsupported
    /// options (`tenantmq_engine_connect_refused_total`).
    pub connect_refused: Counter,
    /// PUBLISH received from devices (`tenantmq_messages_received_total`).
    pub messages_received: Counter,
    /// PUBLISH written to devices (`tenantmq_messages_sent_total`).
    pub messages_sent: Counter,
    /// Payload bytes received (`tenantmq_bytes_received_total`).
    pub bytes_received: Counter,
    /// Payload bytes sent (`tenantmq_bytes_sent_total`).
    pub bytes_sent: Counter,
    /// Deliveries dropped: QoS 0 to congested or offline clients, full queues, expired
    /// (`tenantmq_messages_dropped_total`).
    pub messages_dropped: Counter,
    /// Refusals by a limit, by reason (`tenantmq_rejections_total{reason}`).
    pub rejections: Family<ReasonLabel, Counter>,
    /// From the gateway reading a PUBLISH to the engine handing its deliveries to the
    /// subscribers' connections (`tenantmq_delivery_latency_seconds`), one observation per
    /// engine batch.
    pub delivery_latency: Histogram,
    /// Frames waiting in engine mailboxes, summed over engines (`tenantmq_engine_mailbox_depth`).
    pub mailbox_depth: Gauge,
    /// Messages queued in sessions (offline or behind the in-flight window), summed
    /// (`tenantmq_session_queue_depth`).
    pub session_queue_depth: Gauge,
    /// Usage entries (tenant × hour) waiting to be written (`tenantmq_usage_pending`).
    pub usage_pending: Gauge,
    /// Usage batches written to the control store (`tenantmq_usage_batches_total`).
    pub usage_batches: Counter,
    /// Failed attempts to write a usage batch (`tenantmq_usage_write_errors_total`).
    pub usage_write_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            registry: Mutex::new(Registry::default()),
            connections: Gauge::default(),
            engines: Gauge::default(),
            connections_opened: Counter::default(),
            connections_closed: Counter::default(),
            connect_refused: Counter::default(),
            messages_received: Counter::default(),
            messages_sent: Counter::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            messages_dropped: Counter::default(),
            rejections: Family::default(),
            delivery_latency: Histogram::new(exponential_buckets(
                LATENCY_FIRST_BUCKET_SECS,
                2.0,
                LATENCY_BUCKETS,
            )),
            mailbox_depth: Gauge::default(),
            session_queue_depth: Gauge::default(),
            usage_pending: Gauge::default(),
            usage_batches: Counter::default(),
            usage_write_errors: Counter::default(),
        };
        let r = &mut registry;
        r.register(
            "tenantmq_connections",
            "Devices connected to this process's engines",
            m.connections.clone(),
        );
        r.register(
            "tenantmq_engines",
            "Tenant engines running",
            m.engines.clone(),
        );
        r.register(
            "tenantmq_engine_connections_opened",
            "Sessions accepted by engines",
            m.connections_opened.clone(),
        );
        r.register(
            "tenantmq_engine_connections_closed",
            "Sessions ended",
            m.connections_closed.clone(),
        );
        r.register(
            "tenantmq_engine_connect_refused",
            "CONNECTs refused by an engine after authentication",
            m.connect_refused.clone(),
        );
        r.register(
            "tenantmq_messages_received",
            "PUBLISH packets received from devices",
            m.messages_received.clone(),
        );
        r.register(
            "tenantmq_messages_sent",
            "PUBLISH packets written to devices",
            m.messages_sent.clone(),
        );
        r.register(
            "tenantmq_bytes_received",
            "Payload bytes received from devices",
            m.bytes_received.clone(),
        );
        r.register(
            "tenantmq_bytes_sent",
            "Payload bytes written to devices",
            m.bytes_sent.clone(),
        );
        r.register(
            "tenantmq_messages_dropped",
            "Deliveries dropped (congested or offline QoS 0, full queues, expired)",
            m.messages_dropped.clone(),
        );
        r.register(
            "tenantmq_rejections",
            "Connections, packets and subscriptions refused by a limit, by reason",
            m.rejections.clone(),
        );
        r.register(
            "tenantmq_delivery_latency_seconds",
            "From the gateway reading a PUBLISH to its deliveries reaching the subscribers' connections",
            m.delivery_latency.clone(),
        );
        r.register(
            "tenantmq_engine_mailbox_depth",
            "Frames waiting in engine mailboxes",
            m.mailbox_depth.clone(),
        );
        r.register(
            "tenantmq_session_queue_depth",
            "Messages queued in sessions",
            m.session_queue_depth.clone(),
        );
        r.register(
            "tenantmq_usage_pending",
            "Usage entries (tenant x hour) not yet written to the control store",
            m.usage_pending.clone(),
        );
        r.register(
            "tenantmq_usage_batches",
            "Usage batches written to the control store",
            m.usage_batches.clone(),
        );
        r.register(
            "tenantmq_usage_write_errors",
            "Failed attempts to write a usage batch",
            m.usage_write_errors.clone(),
        );
        // Every reason appears from the start, so dashboards and tests see the whole set.
        for reason in RejectReason::ALL {
            let _ = m.rejections.get_or_create(&[("reason", reason.as_str())]);
        }
        *m.registry.lock().unwrap_or_else(PoisonError::into_inner) = registry;
        m
    }

    /// Adds one tenant's delta to the tenant-less totals.
    pub fn add_usage(&self, d: &UsageDelta) {
        self.messages_received.inc_by(d.messages_in);
        self.messages_sent.inc_by(d.messages_out);
        self.bytes_received.inc_by(d.bytes_in);
        self.bytes_sent.inc_by(d.bytes_out);
        for (reason, n) in d.rejections.iter() {
            self.rejections
                .get_or_create(&[("reason", reason.as_str())])
                .inc_by(n);
        }
    }

    /// Rejections counted so far for `reason`.
    pub fn rejections_for(&self, reason: RejectReason) -> u64 {
        self.rejections
            .get_or_create(&[("reason", reason.as_str())])
            .get()
    }

    /// Adds a collector read at every scrape (counters other crates keep as atomics).
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register_collector(Box::new(collector));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            // Writing into a String cannot fail; keep what was written.
            let _ = writeln!(out, "# encoding error");
        }
        out
    }
}

/// Whether a [`Sample`] is a counter or a gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleKind {
    /// Only grows; exposed with a `_total` suffix.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One value read at scrape time by a [`SampleCollector`].
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Metric name without `_total`.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: SampleKind,
    /// One label from a closed set, if any: samples of one name differ only by it.
    pub label: Option<(&'static str, &'static str)>,
    /// The value.
    pub value: u64,
}

/// A function producing samples.
type SampleFn = dyn Fn(&mut Vec<Sample>) + Send + Sync;

/// Exposes counters kept elsewhere (e.g. `GatewayStats`, `CacheStats`) by reading them at each
/// scrape; samples of the same name must be adjacent.
pub struct SampleCollector(Arc<SampleFn>);

impl SampleCollector {
    /// A collector over `read`.
    pub fn new(read: impl Fn(&mut Vec<Sample>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(read))
    }
}

impl std::fmt::Debug for SampleCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SampleCollector")
    }
}

impl Collector for SampleCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut samples = Vec::new();
        (self.0)(&mut samples);
        let mut i = 0;
        while i < samples.len() {
            let first = samples[i];
            let mut j = i;
            while j < samples.len() && samples[j].name == first.name {
                j += 1;
            }
            let metric_type = match first.kind {
                SampleKind::Counter => MetricType::Counter,
                SampleKind::Gauge => MetricType::Gauge,
            };
            let mut metric =
                encoder.encode_descriptor(first.name, first.help, None, metric_type)?;
            if first.label.is_none() {
                // An unlabelled metric has one value.
                encode_value(&first, metric)?;
            } else {
                for s in &samples[i..j] {
                    let labels: Vec<(&str, &str)> = s.label.into_iter().collect();
                    let family = metric.encode_family(&labels)?;
                    encode_value(s, family)?;
                }
            }
            i = j;
        }
        Ok(())
    }
}

fn encode_value(
    s: &Sample,
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    match s.kind {
        SampleKind::Counter => ConstCounter::new(s.value).encode(encoder),
        SampleKind::Gauge => {
            ConstGauge::new(i64::try_from(s.value).unwrap_or(i64::MAX)).encode(encoder)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_contracted_names_and_collected_samples() {
        let m = Metrics::new();
        let mut d = UsageDelta {
            messages_in: 3,
            ..UsageDelta::default()
        };
        d.rejections.add(RejectReason::MessageRate);
        m.add_usage(&d);
        m.delivery_latency.observe(0.001);
        m.register_collector(SampleCollector::new(|out| {
            out.push(Sample {
                name: "tenantmq_test_refused",
                help: "test",
                kind: SampleKind::Counter,
                label: Some(("reason", "a")),
                value: 4,
            });
            out.push(Sample {
                name: "tenantmq_test_refused",
                help: "test",
                kind: SampleKind::Counter,
                label: Some(("reason", "b")),
                value: 5,
            });
            out.push(Sample {
                name: "tenantmq_test_level",
                help: "test",
                kind: SampleKind::Gauge,
                label: None,
                value: 6,
            });
        }));
        let text = m.encode();
        for line in [
            "tenantmq_messages_received_total 3",
            "tenantmq_rejections_total{reason=\"message_rate\"} 1",
            "tenantmq_rejections_total{reason=\"queue_full\"} 0",
            "tenantmq_delivery_latency_seconds_count 1",
            "tenantmq_test_refused_total{reason=\"a\"} 4",
            "tenantmq_test_refused_total{reason=\"b\"} 5",
            "tenantmq_test_level 6",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
