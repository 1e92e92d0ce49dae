//! Subscription-trie benchmarks: matching a published topic (the per-message hot path) against
//! 10k, 100k and 1M subscriptions shaped like a device fleet, and insertion throughput.
//!
//! Run: `cargo bench -p tenantmq-broker --bench trie -- --warm-up-time 1 --measurement-time 3`
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tenantmq_broker::trie::SubscriptionTrie;
use tenantmq_codec::{TopicFilter, TopicName};

const DEVICES_PER_AREA: usize = 100;
const METRICS: [&str; 9] = [
    "temperature",
    "humidity",
    "pressure",
    "battery",
    "status",
    "rssi",
    "co2",
    "voltage",
    "current",
];
/// Topics published that nobody subscribes to exactly, so some lookups miss their leaf.
const UNSUBSCRIBED_METRICS: [&str; 2] = ["firmware", "uptime"];
/// Topics are rotated through a pre-built set, so the bench measures lookups rather than the
/// branch predictor learning one topic.
const TOPIC_SET: usize = 4096;

fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).expect("bench filters are valid")
}

/// `n` filters for a tenant with areas of 100 devices: ~89% exact
/// `tenant-area-{a}/device-{d}/{metric}`, ~10% per-device `…/device-{d}/#`, per-area
/// `tenant-area-{a}/+/{metric}`, fleet-wide `+/device-{d}/#`, `+/+/status` and one `#`.
/// A published metric topic matches 2 to 6 of them.
fn fleet_filters(n: usize) -> (Vec<TopicFilter>, usize) {
    let per_area = METRICS.len() + DEVICES_PER_AREA * (METRICS.len() + 1);
    let areas = n / per_area + 1;
    let mut out = Vec::with_capacity(n + per_area);
    out.push(filter("#"));
    out.push(filter("+/+/status"));
    for d in 0..DEVICES_PER_AREA {
        out.push(filter(&format!("+/device-{d}/#")));
    }
    for a in 0..areas {
        for m in METRICS {
            out.push(filter(&format!("tenant-area-{a}/+/{m}")));
        }
        for d in 0..DEVICES_PER_AREA {
            out.push(filter(&format!("tenant-area-{a}/device-{d}/#")));
            for m in METRICS {
                out.push(filter(&format!("tenant-area-{a}/device-{d}/{m}")));
            }
        }
    }
    out.truncate(n);
    (out, areas)
}

/// Published topics over the same fleet; a few devices and metrics have no subscription.
fn fleet_topics(areas: usize) -> Vec<TopicName> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..TOPIC_SET)
        .map(|_| {
            let a = rng.random_range(0..areas);
            let d = rng.random_range(0..DEVICES_PER_AREA + 10);
            let m = if rng.random_ratio(1, 10) {
                UNSUBSCRIBED_METRICS[rng.random_range(0..UNSUBSCRIBED_METRICS.len())]
            } else {
                METRICS[rng.random_range(0..METRICS.len())]
            };
            TopicName::try_from(format!("tenant-area-{a}/device-{d}/{m}").as_str())
                .expect("bench topics are valid")
        })
        .collect()
}

/// A filter's subscribers, the size of the engine's value (direct subscribers and share
/// groups): the trie stores values inline, so their size shapes its cache footprint.
#[derive(Default)]
struct Subscribers {
    direct: Vec<u32>,
    groups: Vec<u32>,
}

/// One subscriber per filter.
fn build(filters: &[TopicFilter]) -> SubscriptionTrie<Subscribers> {
    let mut trie: SubscriptionTrie<Subscribers> = SubscriptionTrie::new();
    for (i, f) in filters.iter().enumerate() {
        trie.entry(f).direct.push(i as u32);
    }
    trie
}

fn trie_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("trie_match");
    group.throughput(Throughput::Elements(1));
    for (label, n) in [("10k", 10_000), ("100k", 100_000), ("1M", 1_000_000)] {
        let (filters, areas) = fleet_filters(n);
        let trie = build(&filters);
        let topics = fleet_topics(areas);
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                let topic = &topics[i % TOPIC_SET];
                i += 1;
                let mut matches = 0;
                trie.for_each_match(black_box(topic), |subscribers| {
                    matches += subscribers.direct.len() + subscribers.groups.len()
                });
                black_box(matches)
            })
        });
        let total: usize = topics
            .iter()
            .map(|t| {
                let mut m = 0;
                trie.for_each_match(t, |_| m += 1);
                m
            })
            .sum();
        println!(
            "trie_match/{label}: {} filters, {:.2} matches per topic on average",
            trie.len(),
            total as f64 / TOPIC_SET as f64
        );
    }
    group.finish();
}

fn trie_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("trie_insert");
    let n = 100_000;
    let (filters, _) = fleet_filters(n);
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("100k"), |b| {
        // The built trie is returned so that dropping it is not timed.
        b.iter_batched(|| (), |()| build(&filters), BatchSize::PerIteration)
    });
    group.finish();
}

criterion_group!(benches, trie_match, trie_insert);
criterion_main!(benches);
