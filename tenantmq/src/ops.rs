//! The ops listener every process serves beside its data and API listeners: `GET /metrics`
//! (Prometheus text exposition of [`Metrics`]), `GET /healthz` (the process is up) and
//! `GET /readyz` (the control store answers and every listener is bound).
//!
//! It is separate from the control API so that probes and scrapes need no API credentials, and
//! so that a load balancer can keep it private. Metric names are a contract (house rule 12):
//! `docs/architecture.md` lists them, and the test below scrapes them after real traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tenantmq_common::metrics::{Metrics, Sample, SampleCollector, SampleKind};
use tenantmq_common::shutdown::Shutdown;
use tenantmq_control_cache::ControlCache;
use tenantmq_control_store::Store;
use tenantmq_gateway::stats::GatewayStats;
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the ops endpoints read.
#[derive(Clone)]
pub struct OpsState {
    metrics: Arc<Metrics>,
    store: Option<Store>,
    listeners_bound: Arc<AtomicBool>,
}

impl OpsState {
    /// Ops over `metrics`; readiness also asks `store` when there is one.
    pub fn new(metrics: Arc<Metrics>, store: Option<Store>) -> Self {
        Self {
            metrics,
            store,
            listeners_bound: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks every listener as bound: from now on `/readyz` depends on the store only.
    pub fn set_listeners_bound(&self) {
        self.listeners_bound.store(true, Ordering::Release);
    }
}

/// The ops routes.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves the ops routes on `listener` until `shutdown` fires.
///
/// # Errors
/// When accepting fails.
pub async fn serve(
    listener: TcpListener,
    state: OpsState,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.recv().await })
        .await
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.metrics.encode(),
    )
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    let listeners = state.listeners_bound.load(Ordering::Acquire);
    let store = match &state.store {
        Some(store) => store.ping().await.is_ok(),
        None => true,
    };
    let status = if listeners && store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "checks": {"listeners": listeners, "store": store},
    });
    (status, Json(body))
}

/// Exposes the gateway's counters (read at each scrape).
pub fn gateway_collector(stats: Arc<GatewayStats>) -> SampleCollector {
    SampleCollector::new(move |out| stats.samples(out))
}

/// Exposes the control cache's counters: store errors, stale answers (static stability at
/// work), hits and misses.
pub fn cache_collector(cache: ControlCache) -> SampleCollector {
    SampleCollector::new(move |out| {
        let s = cache.stats();
        let counter = |name, help, label, value| Sample {
            name,
            help,
            kind: SampleKind::Counter,
            label,
            value,
        };
        const LOOKUPS: &str = "tenantmq_control_cache_lookups";
        const LOOKUPS_HELP: &str = "Control cache lookups, by result";
        out.push(counter(
            LOOKUPS,
            LOOKUPS_HELP,
            Some(("result", "hit")),
            s.hits,
        ));
        out.push(counter(
            LOOKUPS,
            LOOKUPS_HELP,
            Some(("result", "miss")),
            s.misses,
        ));
        out.push(counter(
            "tenantmq_control_store_errors",
            "Control store failures seen by the cache",
            None,
            s.store_errors,
        ));
        out.push(counter(
            "tenantmq_control_cache_stale_served",
            "Answers served from a stale entry because the store failed",
            None,
            s.stale_served,
        ));
        out.push(counter(
            "tenantmq_control_cache_invalidations",
            "Invalidations applied",
            None,
            s.invalidations,
        ));
    })
}
