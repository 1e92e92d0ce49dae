//! Hot-path benchmarks: decoding and fan-out encoding of a small QoS 0 PUBLISH.
//!
//! Run with `cargo bench -p tenantmq-codec --bench codec`; throughput is in packets
//! (elements) per second.
#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tenantmq_codec::frame::check;
use tenantmq_codec::{
    Packet, ProtocolVersion, PublishHeader, PublishProperties, QoS, encode_publish,
};

const TOPIC: &str = "sensors/device-0042/temperature";
const PAYLOAD: [u8; 64] = [0x5A; 64];
const MAX_PACKET: u32 = 1 << 20;

fn header() -> PublishHeader<'static> {
    PublishHeader {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        packet_id: 0,
        topic: TOPIC,
        topic_alias: None,
        message_expiry_interval: None,
        subscription_identifiers: &[],
    }
}

fn versions() -> [(ProtocolVersion, &'static str); 2] {
    [(ProtocolVersion::V311, "v311"), (ProtocolVersion::V5, "v5")]
}

/// A frame as the connection reader produces it: split off a read buffer and frozen, so
/// cloning it is a reference-count increment like `BytesMut::split_to(..).freeze()`.
fn frame(version: ProtocolVersion) -> Bytes {
    let mut buf = BytesMut::with_capacity(4096);
    encode_publish(
        &mut buf,
        version,
        &header(),
        &PublishProperties::default(),
        &PAYLOAD,
    )
    .expect("encodable");
    buf.extend_from_slice(&[0; 64]);
    let frame = buf.split_to(buf.len() - 64).freeze();
    // Make the frame's buffer shared up front, as it is after the first split of a read buffer.
    drop(frame.clone());
    frame
}

fn publish_decode_64b(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_decode_64b");
    group.throughput(Throughput::Elements(1));
    for (version, name) in versions() {
        let frame = frame(version);
        group.bench_function(name, |b| {
            b.iter(|| {
                let buf = black_box(&frame).clone();
                let header = check(&buf, MAX_PACKET).expect("valid").expect("complete");
                let packet = Packet::decode(buf, &header, version).expect("decodes");
                // Observed in place and dropped here, as a consumer matching on it would:
                // returning it would add a 264-byte copy into the harness's black box.
                black_box(&packet);
            });
        });
    }
    group.finish();
}

fn publish_encode_64b(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_encode_64b");
    group.throughput(Throughput::Elements(1));
    let props = PublishProperties::default();
    for (version, name) in versions() {
        let header = header();
        let mut out = BytesMut::with_capacity(64 * 1024);
        group.bench_function(name, |b| {
            b.iter(|| {
                // Like a connection's write buffer, flushed once it holds a batch.
                if out.len() > 60 * 1024 {
                    out.clear();
                }
                encode_publish(
                    &mut out,
                    version,
                    black_box(&header),
                    &props,
                    black_box(&PAYLOAD),
                )
                .expect("encodable");
            });
        });
        black_box(&out);
    }
    group.finish();
}

criterion_group!(benches, publish_decode_64b, publish_encode_64b);
criterion_main!(benches);
