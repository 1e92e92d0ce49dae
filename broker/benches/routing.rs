//! In-process routing throughput: PUBLISH packets sent into one tenant's engine as link
//! frames, routed, encoded and handed to subscriber channels — decode → route → encode, the
//! whole engine hop, without sockets.
//!
//! Run: `cargo bench -p tenantmq-broker --bench routing`. Throughput is reported in
//! deliveries per second (messages arriving at subscribers).
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tenantmq_broker::spawn;
use tenantmq_codec::{
    ByteString, Connect, ConnectProperties, Packet, ProtocolVersion, Publish, PublishProperties,
    QoS, Subscribe, SubscribeFilter, SubscribeProperties, SubscriptionOptions,
};
use tenantmq_common::TenantId;
use tenantmq_common::auth::AuthContext;
use tenantmq_common::link::{OpenSession, Opened, SessionKey, ToEngine, device_channel};
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::Shutdown;
use tokio::sync::{mpsc, oneshot};

const V: ProtocolVersion = ProtocolVersion::V311;
const PAYLOAD: usize = 64;
/// PUBLISH packets per link frame, as a gateway batches one socket read.
const PER_FRAME: usize = 64;

fn encode(p: &Packet) -> Bytes {
    let mut b = BytesMut::new();
    p.encode(V, &mut b).expect("encodable");
    b.freeze()
}

fn publish(topic: &str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: ByteString::from(topic),
        packet_id: 0,
        properties: PublishProperties::default(),
        payload: Bytes::from(vec![7u8; PAYLOAD]),
    })
}

/// A session opened on the engine; its output bytes are counted by a drain task.
struct Client {
    key: SessionKey,
    received: Arc<AtomicU64>,
}

async fn open(
    engine: &mpsc::Sender<ToEngine>,
    tenant: TenantId,
    quotas: &Arc<Quotas>,
    id: &str,
) -> Client {
    let connect = Packet::Connect(Box::new(Connect {
        protocol: V,
        clean_start: true,
        keep_alive: 0,
        client_id: ByteString::from(id),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }));
    let (device, mut rx) = device_channel();
    let (reply, answer) = oneshot::channel();
    let open = OpenSession {
        connect: encode(&connect),
        auth: AuthContext::anonymous(tenant, quotas.clone()),
        peer: None,
        device,
    };
    engine
        .send(ToEngine::Open { open, reply })
        .await
        .expect("engine up");
    let Ok(Opened::Accepted(acc)) = answer.await else {
        panic!("session refused")
    };
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    Client {
        key: acc.session,
        received,
    }
}

async fn subscribe(engine: &mpsc::Sender<ToEngine>, c: &Client, filter: &str) {
    let sub = Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![SubscribeFilter {
            filter: ByteString::from(filter),
            options: SubscriptionOptions::default(),
        }],
        properties: SubscribeProperties::default(),
    });
    engine
        .send(ToEngine::Packets {
            session: c.key,
            data: encode(&sub),
            over_rate: 0,
            received_at: tokio::time::Instant::now(),
        })
        .await
        .expect("engine up");
}

/// A scenario: publishers, each with its frame of PUBLISH packets, and the subscribers whose
/// received bytes prove delivery.
struct Scenario {
    engine: mpsc::Sender<ToEngine>,
    publishers: Vec<(SessionKey, Bytes)>,
    subscribers: Vec<Client>,
    /// Deliveries per frame sent by one publisher.
    deliveries_per_frame: u64,
    /// Bytes of one delivered PUBLISH.
    delivered_len: u64,
}

impl Scenario {
    async fn new(pubs: usize, subs: usize, shape: Shape) -> Self {
        let tenant = TenantId::new_v7();
        let quotas = Arc::new(Quotas::unlimited());
        let engine = spawn(tenant, quotas.clone(), Shutdown::never());
        let tx = engine.sender().clone();
        let mut subscribers = Vec::new();
        for i in 0..subs {
            let c = open(&tx, tenant, &quotas, &format!("sub-{i}")).await;
            let filter = match shape {
                Shape::Pairs => format!("bench/{i:04}/data"),
                Shape::FanOut => "bench/0all/data".to_owned(),
                Shape::FanIn => "bench/+/data".to_owned(),
            };
            subscribe(&tx, &c, &filter).await;
            subscribers.push(c);
        }
        let mut publishers = Vec::new();
        for i in 0..pubs {
            let c = open(&tx, tenant, &quotas, &format!("pub-{i}")).await;
            let topic = match shape {
                Shape::Pairs | Shape::FanIn => format!("bench/{i:04}/data"),
                Shape::FanOut => "bench/0all/data".to_owned(),
            };
            let one = encode(&publish(&topic));
            let mut frame = BytesMut::new();
            for _ in 0..PER_FRAME {
                frame.extend_from_slice(&one);
            }
            publishers.push((c.key, frame.freeze()));
        }
        let per_publisher_subs = match shape {
            Shape::Pairs | Shape::FanIn => 1,
            Shape::FanOut => subs as u64,
        };
        // Wait for CONNACK/SUBACK bytes to settle, then count from here.
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Every topic of every shape has the same length, so every delivery has this size.
        let delivered_len = encode(&publish("bench/0000/data")).len() as u64;
        std::mem::forget(engine); // Lives for the whole benchmark.
        Self {
            engine: tx,
            publishers,
            subscribers,
            deliveries_per_frame: PER_FRAME as u64 * per_publisher_subs,
            delivered_len,
        }
    }

    fn received_bytes(&self) -> u64 {
        self.subscribers
            .iter()
            .map(|c| c.received.load(Ordering::Relaxed))
            .sum()
    }

    /// Sends `frames` frames round-robin over the publishers, keeping at most [`WINDOW`]
    /// frames ahead of the subscribers (a slow subscriber would otherwise have QoS 0
    /// messages dropped, as a broker must), and waits until every delivery has reached its
    /// subscriber channel.
    async fn run(&self, frames: u64) -> Duration {
        let frame_bytes = self.deliveries_per_frame * self.delivered_len;
        let start_bytes = self.received_bytes();
        let delivered = || (self.received_bytes() - start_bytes) / frame_bytes;
        let start = Instant::now();
        let mut sent = 0;
        let mut last_progress = (0, Instant::now());
        while sent < frames || delivered() < frames {
            while sent < frames && sent.saturating_sub(delivered()) < WINDOW {
                let (key, frame) = &self.publishers[(sent as usize) % self.publishers.len()];
                self.engine
                    .send(ToEngine::Packets {
                        session: *key,
                        data: frame.clone(),
                        over_rate: 0,
                        received_at: tokio::time::Instant::now(),
                    })
                    .await
                    .expect("engine up");
                sent += 1;
            }
            tokio::task::yield_now().await;
            let d = delivered();
            if d != last_progress.0 {
                last_progress = (d, Instant::now());
            } else if last_progress.1.elapsed() > STALL {
                panic!("no delivery progress for {STALL:?}: messages were dropped");
            }
        }
        start.elapsed()
    }
}

/// Frames in flight between the bench driver and the subscribers.
const WINDOW: u64 = 8;

/// A run without progress for this long has lost messages and fails instead of hanging.
const STALL: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
enum Shape {
    Pairs,
    FanOut,
    FanIn,
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("routing");
    g.measurement_time(Duration::from_secs(5));
    for (name, pubs, subs, shape) in [
        ("pairs_10_qos0", 10, 10, Shape::Pairs),
        ("fanin_100_to_1_qos0", 100, 1, Shape::FanIn),
        ("fanout_1_to_1000_qos0", 1, 1000, Shape::FanOut),
    ] {
        let scenario = rt.block_on(Scenario::new(pubs, subs, shape));
        g.throughput(Throughput::Elements(scenario.deliveries_per_frame));
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|frames| {
                let s = &scenario;
                async move { s.run(frames).await }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
