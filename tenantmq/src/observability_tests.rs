//! End-to-end tests of issue 6, items 4–7, on the pieces `standalone` wires together: real MQTT
//! clients over real listeners of two tenants, the control API and the ops listener on
//! loopback port 0. They check what an operator and a tenant see: usage in the usage API
//! after traffic, the metric names of the contract (`docs/architecture.md`) moving on
//! `/metrics`, each tenant's `$SYS` showing its own numbers only, and list/kick of clients.

// Test code panics on purpose when set-up fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tenantmq_broker::EngineOptions;
use tenantmq_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use tenantmq_common::TenantId;
use tenantmq_common::metrics::Metrics;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::{self, Shutdown};
use tenantmq_common::usage::UsageRecorder;
use tenantmq_control_api::{ApiConfig, AppState};
use tenantmq_control_store::{ChangeFeed, InProcessFeed, Secret, Store, UsageFlusher};
use tenantmq_e2e::raw::{RawClient, publish_packet};
use tenantmq_gateway::GatewayConfig;
use tenantmq_gateway::auth::DevAnonymous;
use tenantmq_gateway::listener::run_listener;
use tenantmq_gateway::stats::GatewayStats;
use tenantmq_worker::Worker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const OPERATOR: &str = "operator-token-for-observability-tests";

/// A minimal HTTP/1.1 exchange (`Connection: close`): status and body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        req.push_str("content-type: application/json\r\n");
    }
    req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Small bodies: axum sends them with a content length; chunked ones are de-chunked.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Everything standalone runs, on port 0: API, ops, a worker with metering and `$SYS`, and a
/// plain-TCP listener per tenant (each listener's anonymous clients belong to one tenant).
struct World {
    api: SocketAddr,
    ops: SocketAddr,
    store: Store,
    usage: Arc<UsageRecorder>,
    signal: Shutdown,
    worker: Arc<Worker>,
    stats: Arc<GatewayStats>,
    _trigger: shutdown::ShutdownTrigger,
}

impl World {
    async fn start() -> Self {
        let (trigger, signal) = shutdown::channel();
        let metrics = Arc::new(Metrics::new());
        let store = Store::connect("sqlite::memory:", true).await.unwrap();
        let feed: Arc<dyn ChangeFeed> = Arc::new(InProcessFeed::new());
        let cache = tenantmq_control_cache::ControlCache::new(
            store.clone(),
            feed.as_ref(),
            tenantmq_control_cache::CacheConfig::default(),
        );
        metrics.register_collector(crate::ops::cache_collector(cache));
        let usage = UsageRecorder::new(metrics.clone());
        let worker = Worker::with_options(
            signal.clone(),
            EngineOptions {
                usage: Some(usage.clone()),
                sys_interval: Some(Duration::from_millis(300)),
            },
        );
        let stats = Arc::new(GatewayStats::with_usage(usage.clone()));
        metrics.register_collector(crate::ops::gateway_collector(stats.clone()));

        let config = ApiConfig {
            operator_token: Some(Secret::new(OPERATOR.to_owned())),
            argon2_memory_kib: 8,
            argon2_iterations: 1,
            ..ApiConfig::default()
        };
        let state = AppState::new(config, store.clone(), feed)
            .unwrap()
            .with_session_admin(worker.clone());
        let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = api_listener.local_addr().unwrap();
        tokio::spawn(tenantmq_control_api::serve(
            api_listener,
            state,
            signal.clone(),
        ));

        let ops_state = crate::ops::OpsState::new(metrics, Some(store.clone()));
        let ops_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ops = ops_listener.local_addr().unwrap();
        tokio::spawn(crate::ops::serve(
            ops_listener,
            ops_state.clone(),
            signal.clone(),
        ));
        ops_state.set_listeners_bound();
        Self {
            api,
            ops,
            store,
            usage,
            signal,
            worker,
            stats,
            _trigger: trigger,
        }
    }

    /// Signs up `slug`; returns its id, API key and an MQTT listener for its devices.
    async fn tenant(&self, slug: &str) -> (TenantId, String, SocketAddr) {
        let body = format!(r#"{{"name":"{slug}","slug":"{slug}","email":"ops@{slug}.example"}}"#);
        let (status, text) = http(self.api, "POST", "/v1/signup", None, Some(&body)).await;
        assert_eq!(status, 201, "{text}");
        let v = json(&text);
        let id: TenantId = v["tenant"]["id"].as_str().unwrap().parse().unwrap();
        let key = v["api_key"].as_str().unwrap().to_owned();
        let gateway = crate::standalone::context(
            self.worker.clone(),
            Arc::new(DevAnonymous::new(id, Quotas::unlimited())),
            self.stats.clone(),
            GatewayConfig::default(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run_listener(listener, gateway, self.signal.clone()));
        (id, key, addr)
    }

    async fn scrape(&self) -> String {
        let (status, text) = http(self.ops, "GET", "/metrics", None, None).await;
        assert_eq!(status, 200);
        text
    }
}

/// The value of an unlabelled sample, or of `name{labels}`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits for a `$SYS` statistic of `client`'s tenant to satisfy `ok`.
async fn sys_value(client: &mut RawClient, topic: &str, ok: impl Fn(u64) -> bool) -> u64 {
    loop {
        let value = client
            .recv_matching(|p| match p {
                Packet::Publish(p) if &*p.topic == topic => {
                    std::str::from_utf8(&p.payload).ok()?.parse::<u64>().ok()
                }
                _ => None,
            })
            .await;
        if ok(value) {
            return value;
        }
    }
}

#[tokio::test]
async fn traffic_shows_in_usage_metrics_and_own_sys_topics_only() {
    let w = World::start().await;
    let (a_id, a_key, a_addr) = w.tenant("tenant-a").await;
    let (_b_id, b_key, b_addr) = w.tenant("tenant-b").await;
    const V5: ProtocolVersion = ProtocolVersion::V5;

    let mut a_sys = RawClient::connected(a_addr, V5, "a-sys-watcher").await;
    a_sys.subscribe("$SYS/#", QoS::AtMostOnce).await;
    let mut b_sys = RawClient::connected(b_addr, V5, "b-sys-watcher").await;
    b_sys.subscribe("$SYS/#", QoS::AtMostOnce).await;
    let mut a_sub = RawClient::connected(a_addr, V5, "a-sub").await;
    a_sub.subscribe("t/#", QoS::AtLeastOnce).await;
    let mut a_pub = RawClient::connected(a_addr, V5, "a-pub").await;
    for i in 0..20u16 {
        a_pub
            .publish(publish_packet(
                "t/x",
                QoS::AtLeastOnce,
                false,
                i + 1,
                b"0123456789",
            ))
            .await;
    }
    for _ in 0..20 {
        a_sub.expect_publish_acked().await;
    }

    // $SYS: A sees its own 20 messages and its own client events; B sees none of it.
    sys_value(&mut a_sys, "$SYS/broker/messages/received", |n| n >= 20).await;
    let connected = a_sys
        .recv_matching(|p| match p {
            Packet::Publish(p) if &*p.topic == "$SYS/events/clients/connected" => {
                Some(String::from_utf8_lossy(&p.payload).into_owned())
            }
            _ => None,
        })
        .await;
    assert!(connected.starts_with("{\"client_id\":\"a-"), "{connected}");
    assert!(connected.contains("\"protocol\":\"5.0\""), "{connected}");
    sys_value(&mut b_sys, "$SYS/broker/clients/connected", |n| n == 1).await;
    let b_received = sys_value(&mut b_sys, "$SYS/broker/messages/received", |_| true).await;
    assert_eq!(b_received, 0, "B's $SYS must not count A's traffic");
    let quota = b_sys
        .recv_matching(|p| match p {
            Packet::Publish(p) if &*p.topic == "$SYS/broker/quota/connections" => {
                Some(String::from_utf8_lossy(&p.payload).into_owned())
            }
            _ => None,
        })
        .await;
    assert!(quota.starts_with("1/"), "{quota}");
    // Nothing of A ever reached B: read what B gets for a while and look for A's client ids
    // (statistics keep coming every interval, so this reads for a fixed time).
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < until {
        match b_sys.recv_timeout(Duration::from_millis(400)).await {
            tenantmq_e2e::raw::Received::Packet(Packet::Publish(p)) => {
                let text = String::from_utf8_lossy(&p.payload);
                assert!(
                    !text.contains("a-"),
                    "B saw A's data on {}: {text}",
                    &*p.topic
                );
            }
            tenantmq_e2e::raw::Received::Packet(_) => {}
            _ => break,
        }
    }
    // Clients still cannot publish to $SYS.
    let rc = a_pub
        .publish(publish_packet(
            "$SYS/broker/clients/connected",
            QoS::AtLeastOnce,
            false,
            99,
            b"666",
        ))
        .await;
    assert_eq!(rc, ReasonCode::NOT_AUTHORIZED);

    // Usage: after a tick and a flush, the usage API shows A's traffic; B's shows none of it.
    tokio::time::sleep(tenantmq_common::usage::USAGE_TICK + Duration::from_millis(300)).await;
    let mut flusher = UsageFlusher::new(w.usage.clone(), w.store.clone());
    flusher.flush().await.unwrap();
    let (status, text) = http(w.api, "GET", "/v1/usage", Some(&a_key), None).await;
    assert_eq!(status, 200, "{text}");
    let items = json(&text)["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{text}");
    let row = &items[0];
    // 20 messages, maybe the refused $SYS publish; never the broker's own $SYS traffic.
    let messages_in = row["messages_in"].as_i64().unwrap_or(0);
    assert!((20..=21).contains(&messages_in), "{text}");
    assert_eq!(row["messages_out"], 20, "{text}");
    assert!(row["bytes_in"].as_i64() >= Some(200), "{text}");
    assert_eq!(row["peak_connections"], 3, "{text}");
    let (_, text) = http(w.api, "GET", "/v1/usage", Some(&b_key), None).await;
    let b_items = json(&text)["items"].as_array().cloned().unwrap_or_default();
    assert!(b_items.iter().all(|r| r["messages_in"] == 0), "{text}");
    let (status, csv) = http(
        w.api,
        "GET",
        "/v1/admin/usage?format=csv",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(csv.contains(&a_id.to_string()), "{csv}");

    // Metrics: the contract's names are there and the counters moved.
    let text = w.scrape().await;
    for name in [
        "tenantmq_connections",
        "tenantmq_engines",
        "tenantmq_engine_connections_opened_total",
        "tenantmq_engine_connections_closed_total",
        "tenantmq_engine_connect_refused_total",
        "tenantmq_messages_received_total",
        "tenantmq_messages_sent_total",
        "tenantmq_bytes_received_total",
        "tenantmq_bytes_sent_total",
        "tenantmq_messages_dropped_total",
        "tenantmq_delivery_latency_seconds_count",
        "tenantmq_engine_mailbox_depth",
        "tenantmq_session_queue_depth",
        "tenantmq_usage_pending",
        "tenantmq_usage_batches_total",
        "tenantmq_usage_write_errors_total",
        "tenantmq_gateway_connections_accepted_total",
    ] {
        assert!(sample(&text, name).is_some(), "no {name} in\n{text}");
    }
    for series in [
        "tenantmq_rejections_total{reason=\"message_rate\"}",
        "tenantmq_rejections_total{reason=\"connection_quota\"}",
        "tenantmq_gateway_connections_refused_total{reason=\"auth\"}",
        "tenantmq_gateway_connections_refused_total{reason=\"tls_handshake\"}",
        "tenantmq_gateway_connections_closed_total{reason=\"keepalive_timeout\"}",
    ] {
        assert!(sample(&text, series).is_some(), "no {series} in\n{text}");
    }
    assert_eq!(sample(&text, "tenantmq_connections"), Some(4.0));
    assert_eq!(sample(&text, "tenantmq_engines"), Some(2.0));
    assert!(sample(&text, "tenantmq_messages_received_total") >= Some(20.0));
    assert!(sample(&text, "tenantmq_messages_sent_total") >= Some(20.0));
    assert!(sample(&text, "tenantmq_bytes_received_total") >= Some(200.0));
    assert!(sample(&text, "tenantmq_delivery_latency_seconds_count") >= Some(1.0));
    assert!(sample(&text, "tenantmq_gateway_connections_accepted_total") >= Some(4.0));
    assert_eq!(sample(&text, "tenantmq_usage_batches_total"), Some(1.0));
    assert!(
        !text.contains(&a_id.to_string()),
        "a tenant id leaked into a metric label"
    );
    let (status, _) = http(w.ops, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    let (status, body) = http(w.ops, "GET", "/readyz", None, None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn clients_are_listed_and_kicked_per_tenant() {
    let w = World::start().await;
    let (_a, a_key, a_addr) = w.tenant("tenant-a").await;
    let (_b, b_key, b_addr) = w.tenant("tenant-b").await;
    let mut v5 = RawClient::connected(a_addr, ProtocolVersion::V5, "sensor-5").await;
    let mut v3 = RawClient::connected(a_addr, ProtocolVersion::V311, "sensor-3").await;
    let mut b_same = RawClient::connected(b_addr, ProtocolVersion::V5, "sensor-5").await;

    let (status, text) = http(w.api, "GET", "/v1/clients", Some(&a_key), None).await;
    assert_eq!(status, 200, "{text}");
    let ids: Vec<String> = json(&text)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["sensor-3", "sensor-5"]);
    assert_eq!(json(&text)["items"][0]["protocol"], "3.1.1");
    let (_, text) = http(w.api, "GET", "/v1/clients", Some(&b_key), None).await;
    assert_eq!(json(&text)["items"].as_array().unwrap().len(), 1, "{text}");

    // B cannot kick A's client; kicking its own "sensor-5" leaves A's alone.
    let (status, _) = http(w.api, "DELETE", "/v1/clients/sensor-3", Some(&b_key), None).await;
    assert_eq!(status, 404);
    let (status, _) = http(w.api, "DELETE", "/v1/clients/sensor-5", Some(&b_key), None).await;
    assert_eq!(status, 204);
    assert_eq!(
        b_same.expect_closed().await,
        Some(ReasonCode::ADMINISTRATIVE_ACTION)
    );
    v5.send(&Packet::PingReq).await.unwrap();
    assert!(matches!(v5.recv().await, Packet::PingResp));

    // A kicks its own: MQTT 5 sees DISCONNECT 0x98, MQTT 3.1.1 sees the connection close.
    let (status, _) = http(w.api, "DELETE", "/v1/clients/sensor-5", Some(&a_key), None).await;
    assert_eq!(status, 204);
    assert_eq!(
        v5.expect_closed().await,
        Some(ReasonCode::ADMINISTRATIVE_ACTION)
    );
    let (status, _) = http(w.api, "DELETE", "/v1/clients/sensor-3", Some(&a_key), None).await;
    assert_eq!(status, 204);
    assert_eq!(v3.expect_closed().await, None);
    let (status, text) = http(w.api, "DELETE", "/v1/clients/sensor-3", Some(&a_key), None).await;
    assert_eq!(
        (status, json(&text)["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (_, text) = http(w.api, "GET", "/v1/clients", Some(&a_key), None).await;
    assert_eq!(
        json(&text)["items"].as_array().map(Vec::len),
        Some(0),
        "{text}"
    );
}

#[tokio::test]
async fn messages_queued_for_an_offline_session_count_when_they_are_sent() {
    let w = World::start().await;
    let (_a, a_key, a_addr) = w.tenant("tenant-a").await;
    const V5: ProtocolVersion = ProtocolVersion::V5;
    let connect = tenantmq_e2e::raw::persistent_connect_packet(V5, "offline");
    let (mut sub, _) = RawClient::connect_with(a_addr, connect.clone()).await;
    sub.subscribe("q/#", QoS::AtLeastOnce).await;
    sub.disconnect().await;
    let mut publisher = RawClient::connected(a_addr, V5, "pub").await;
    for i in 0..3u16 {
        publisher
            .publish(publish_packet(
                "q/x",
                QoS::AtLeastOnce,
                false,
                i + 1,
                b"abcd",
            ))
            .await;
    }
    let (mut sub, ack) = RawClient::connect_with(a_addr, connect).await;
    assert!(ack.session_present);
    for _ in 0..3 {
        sub.expect_publish_acked().await;
    }
    tokio::time::sleep(tenantmq_common::usage::USAGE_TICK + Duration::from_millis(300)).await;
    UsageFlusher::new(w.usage.clone(), w.store.clone())
        .flush()
        .await
        .unwrap();
    let (_, text) = http(w.api, "GET", "/v1/usage", Some(&a_key), None).await;
    let row = &json(&text)["items"][0];
    assert_eq!(
        (row["messages_out"].as_i64(), row["bytes_out"].as_i64()),
        (Some(3), Some(12)),
        "{text}"
    );
}

/// The metric names listed in `docs/architecture.md` (its metrics table).
fn documented_metrics() -> Vec<String> {
    let doc = include_str!("../../docs/architecture.md");
    let table = doc
        .split("<!-- metrics-table -->")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("the metrics table in docs/architecture.md");
    table
        .split('`')
        .filter(|s| {
            s.starts_with("tenantmq_") && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_documented_metric_names_are_exactly_the_exported_ones() {
    let w = World::start().await;
    let text = w.scrape().await;
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let documented = documented_metrics();
    assert!(documented.len() >= 20, "{documented:?}");
    for name in &documented {
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            exported.contains(&family),
            "{name} is documented but not exported:\n{text}"
        );
    }
    for family in &exported {
        assert!(
            documented
                .iter()
                .any(|d| d == family || *d == format!("{family}_total")),
            "{family} is exported but not in docs/architecture.md"
        );
    }
}
