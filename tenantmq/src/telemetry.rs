//! Telemetry set-up: `tracing` with text or JSON output, filtered by `RUST_LOG` (default
//! `info`), and — when an OTLP endpoint is configured (`--otlp-endpoint`, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) — OpenTelemetry traces (every `tracing` span) and metrics
//! (the process's [`Metrics`], read by observable instruments) exported over OTLP/HTTP
//! (protobuf) to `<endpoint>/v1/traces` and `<endpoint>/v1/metrics`. Off by default.
//!
//! JSON log lines carry `timestamp`, `level`, `target`, `fields` (with `message` and the
//! event's own fields such as `tenant`, `client_id`, `peer`) and `span`/`spans`; these names are
//! a contract for log pipelines.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::{Resource, runtime};
use tenantmq_common::metrics::Metrics;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How often metrics are pushed over OTLP.
pub const OTLP_METRICS_INTERVAL: Duration = Duration::from_secs(15);

/// The service name in OTLP resources.
pub const SERVICE_NAME: &str = "tenantmq";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// The OpenTelemetry providers, flushed and shut down with [`Telemetry::shutdown`].
#[derive(Default)]
pub struct Telemetry {
    otlp: Option<Otlp>,
}

/// A running OTLP pipeline.
pub struct Otlp {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
}

impl Telemetry {
    /// Flushes what is buffered and stops the exporters.
    pub fn shutdown(self) {
        if let Some(otlp) = self.otlp {
            otlp.shutdown();
        }
    }
}

impl Otlp {
    /// Flushes and stops both providers.
    pub fn shutdown(self) {
        if let Err(e) = self.tracer.shutdown() {
            tracing::warn!(error = %e, "OTLP trace export did not shut down cleanly");
        }
        if let Err(e) = self.meter.shutdown() {
            tracing::warn!(error = %e, "OTLP metrics export did not shut down cleanly");
        }
    }
}

/// Installs the global subscriber and, with `otlp_endpoint`, the OTLP pipeline. Must run
/// inside the Tokio runtime (the exporters run on it).
///
/// # Errors
/// When the OTLP exporters cannot be built (e.g. an invalid endpoint).
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let otlp = otlp_endpoint.map(|e| pipeline(e, metrics)).transpose()?;
    let otel_layer = otlp
        .as_ref()
        .map(|o| tracing_opentelemetry::layer().with_tracer(o.tracer.tracer(SERVICE_NAME)));
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel_layer)
        .with(filter)
        .init();
    if let Some(endpoint) = otlp_endpoint {
        tracing::info!(%endpoint, "exporting traces and metrics over OTLP/HTTP");
    }
    Ok(Telemetry { otlp })
}

/// Builds the OTLP trace and metric pipelines towards `endpoint` (e.g.
/// `http://127.0.0.1:4318`). Nothing is sent until there is something to export, so this
/// succeeds without a collector.
///
/// # Errors
/// When an exporter cannot be built.
pub fn pipeline(endpoint: &str, metrics: &Arc<Metrics>) -> anyhow::Result<Otlp> {
    let base = endpoint.trim_end_matches('/');
    let resource = Resource::builder().with_service_name(SERVICE_NAME).build();

    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/traces"))
        .build()
        .context("building the OTLP span exporter")?;
    // The batch processor on the Tokio runtime: the hyper-based exporter needs it.
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            spans,
            runtime::Tokio,
        )
        .build();
    let tracer = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.clone())
        .build();

    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("{base}/v1/metrics"))
        .build()
        .context("building the OTLP metric exporter")?;
    let reader =
        opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader::builder(
            exporter,
            runtime::Tokio,
        )
        .with_interval(OTLP_METRICS_INTERVAL)
        .build();
    let meter = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource)
        .build();
    observe(&meter, metrics);
    Ok(Otlp { tracer, meter })
}

/// Reads a counter of [`Metrics`].
type ReadU64 = fn(&Metrics) -> u64;
/// Reads a gauge of [`Metrics`].
type ReadI64 = fn(&Metrics) -> i64;

/// Mirrors the main Prometheus metrics as OTLP observable instruments, read at each export:
/// one source of truth, two exports.
fn observe(provider: &SdkMeterProvider, metrics: &Arc<Metrics>) {
    let meter = provider.meter(SERVICE_NAME);
    let counters: [(&'static str, ReadU64); 6] = [
        ("tenantmq.messages.received", |m| m.messages_received.get()),
        ("tenantmq.messages.sent", |m| m.messages_sent.get()),
        ("tenantmq.bytes.received", |m| m.bytes_received.get()),
        ("tenantmq.bytes.sent", |m| m.bytes_sent.get()),
        ("tenantmq.messages.dropped", |m| m.messages_dropped.get()),
        ("tenantmq.engine.connections.opened", |m| {
            m.connections_opened.get()
        }),
    ];
    for (name, read) in counters {
        let m = metrics.clone();
        // Registered callbacks live as long as the provider; the handle is not needed.
        let _ = meter
            .u64_observable_counter(name)
            .with_callback(move |o| o.observe(read(&m), &[]))
            .build();
    }
    let gauges: [(&'static str, ReadI64); 4] = [
        ("tenantmq.connections", |m| m.connections.get()),
        ("tenantmq.engines", |m| m.engines.get()),
        ("tenantmq.engine.mailbox.depth", |m| m.mailbox_depth.get()),
        ("tenantmq.session.queue.depth", |m| {
            m.session_queue_depth.get()
        }),
    ];
    for (name, read) in gauges {
        let m = metrics.clone();
        let _ = meter
            .i64_observable_gauge(name)
            .with_callback(move |o| o.observe(read(&m), &[]))
            .build();
    }
    let m = metrics.clone();
    let _ = meter
        .u64_observable_counter("tenantmq.rejections")
        .with_callback(move |o| {
            for reason in tenantmq_common::usage::RejectReason::ALL {
                o.observe(
                    m.rejections_for(reason),
                    &[opentelemetry::KeyValue::new("reason", reason.as_str())],
                );
            }
        })
        .build();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_otlp_pipeline_initialises_and_shuts_down_without_a_collector() {
        let metrics = Arc::new(Metrics::new());
        // Nothing listens on port 9 of loopback: building must not need a collector.
        let otlp = pipeline("http://127.0.0.1:9/", &metrics).expect("pipeline");
        let tracer = otlp.tracer.tracer(SERVICE_NAME);
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("test_span", tenant = "t");
            let _guard = span.enter();
            tracing::info!("inside");
        });
        let done = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::task::spawn_blocking(move || otlp.shutdown()),
        )
        .await;
        assert!(done.is_ok(), "shutdown hung");
    }
}
