//! Malformed and hostile input (MQTT 5 4.13, 1.5, 2.1.3; 3.1.1 4.8): each bad packet closes
//! its connection — MQTT 5 first gets DISCONNECT with the reason (0x81 malformed, 0x82
//! protocol error) — and nothing else is disturbed: a client connected before keeps
//! working, and no code of the server panics.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, Once};
use std::time::Duration;

use bytes::BytesMut;
use tenantmq_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use tenantmq_common::quota::Quotas;
use tenantmq_e2e::DevBroker;
use tenantmq_e2e::raw::{RawClient, Received, connect_packet, will};
use tenantmq_gateway::GatewayConfig;
use tokio::time::Instant;

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// Panics raised outside the test code (i.e. by the server), from every test of this file.
static SERVER_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs, once, a panic hook that records panics located outside `tests/`.
fn watch_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| !l.file().starts_with("tests/"))
            {
                SERVER_PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(info.to_string());
            }
            previous(info);
        }));
    });
}

/// A broker with a long-lived subscriber connected before any bad input.
struct Setup {
    broker: DevBroker,
    canary: RawClient,
}

impl Setup {
    async fn new() -> Self {
        Self::with(Quotas::unlimited(), GatewayConfig::default()).await
    }

    async fn with(quotas: Quotas, config: GatewayConfig) -> Self {
        watch_panics();
        let broker = DevBroker::start_with(quotas, config).await;
        let mut canary = RawClient::connected(broker.addr, V50, "canary").await;
        canary.subscribe("canary/#", QoS::AtLeastOnce).await;
        canary.subscribe("will/#", QoS::AtLeastOnce).await;
        Self { broker, canary }
    }

    fn addr(&self) -> SocketAddr {
        self.broker.addr
    }

    /// The server still works for old and new clients, and nothing in it panicked.
    async fn assert_alive(&mut self) {
        for version in [V311, V50] {
            let mut fresh = RawClient::connected(self.addr(), version, "fresh").await;
            fresh.publish_qos1("canary/ping", b"alive").await;
            let p = self.canary.expect_publish_acked().await;
            assert_eq!(
                (p.topic.as_ref(), &p.payload[..]),
                ("canary/ping", &b"alive"[..])
            );
            fresh.disconnect().await;
        }
        let panics = SERVER_PANICS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert!(panics.is_empty(), "the server panicked: {panics:?}");
    }
}

fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet.encode(version, &mut out).expect("encodable");
    out.to_vec()
}

/// Connects (with a will) and sends `bytes`; returns the reason of the DISCONNECT that
/// preceded the close, if any, and checks the will was published.
async fn send_after_connect(
    s: &mut Setup,
    version: ProtocolVersion,
    bytes: &[u8],
) -> Option<ReasonCode> {
    let mut c = connect_packet(version, "bad");
    c.will = Some(will("will/bad", b"closed", QoS::AtMostOnce, false));
    let (mut c, _) = RawClient::connect_with(s.addr(), c).await;
    c.send_bytes(bytes).await.expect("socket I/O");
    let reason = c.expect_closed().await;
    let will = s.canary.expect_publish_acked().await;
    assert_eq!(
        will.topic, "will/bad",
        "the will of a connection closed for bad input"
    );
    reason
}

/// Bad input after CONNECT, per version: MQTT 5 gets DISCONNECT with `v5_reason`, 3.1.1 a
/// plain close (`MQTT-4.8.0-1`); both publish the will (`MQTT-3.1.2-8`).
async fn rejected_after_connect(cases: &[(&str, Vec<u8>, Vec<u8>, ReasonCode)]) {
    let mut s = Setup::new().await;
    for (name, v5_bytes, v311_bytes, v5_reason) in cases {
        let got = send_after_connect(&mut s, V50, v5_bytes).await;
        assert_eq!(got, Some(*v5_reason), "MQTT 5: {name}");
        let got = send_after_connect(&mut s, V311, v311_bytes).await;
        assert_eq!(got, None, "3.1.1: {name}");
    }
    s.assert_alive().await;
}

fn both(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (bytes.to_vec(), bytes.to_vec())
}

/// Fixed-header violations found by framing (`MQTT-2.1.3-1`, `MQTT-3.3.1-4`, `MQTT-1.5.5-1`):
/// reserved packet type, wrong reserved flags, PUBLISH QoS 3, bad Remaining Length.
#[tokio::test]
async fn fixed_header_violations() {
    let m = ReasonCode::MALFORMED_PACKET;
    let cases: Vec<(&str, Vec<u8>, Vec<u8>, ReasonCode)> = [
        ("reserved packet type 0", &[0x00, 0x00][..]),
        ("reserved packet type 0 with flags", &[0x0F, 0x00][..]),
        (
            "SUBSCRIBE with flags 0",
            &[0x80, 0x06, 0, 1, 0, 1, b't', 0][..],
        ),
        (
            "UNSUBSCRIBE with flags 0",
            &[0xA0, 0x05, 0, 1, 0, 1, b't'][..],
        ),
        ("PUBREL with flags 0", &[0x60, 0x02, 0, 1][..]),
        ("PINGREQ with flags 1", &[0xC1, 0x00][..]),
        ("DISCONNECT with flags 2", &[0xE2, 0x00][..]),
        ("PUBLISH with QoS 3", &[0x36, 0x05, 0, 1, b't', 0, 1][..]),
        (
            "Remaining Length of five bytes",
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..],
        ),
        ("Remaining Length not minimal", &[0x30, 0x80, 0x00][..]),
    ]
    .into_iter()
    .map(|(name, b)| {
        let (v5, v3) = both(b);
        (name, v5, v3, m)
    })
    .collect();
    rejected_after_connect(&cases).await;
}

/// Framing errors are caught by the gateway, which counts them.
#[tokio::test]
async fn framing_errors_are_counted() {
    let mut s = Setup::new().await;
    for version in [V50, V311] {
        send_after_connect(&mut s, version, &[0x00, 0x00]).await;
    }
    assert_eq!(s.broker.stats.protocol_errors.load(Ordering::Relaxed), 2);
    s.assert_alive().await;
}

/// Bodies the codec cannot parse (`MQTT-1.5.4-1`, 2.2.1, 3.8.3): found by the engine, same
/// outcome.
#[tokio::test]
async fn malformed_packet_bodies() {
    let m = ReasonCode::MALFORMED_PACKET;
    let p = ReasonCode::PROTOCOL_ERROR;
    let cases: Vec<(&str, Vec<u8>, Vec<u8>, ReasonCode)> = vec![
        // Topic length 16 in a packet of 3 bytes.
        (
            "string past the packet",
            vec![0x30, 0x03, 0x00, 0x10, b'a'],
            vec![0x30, 0x03, 0x00, 0x10, b'a'],
            m,
        ),
        // Topic "\xC3\x28" is not UTF-8.
        (
            "topic not UTF-8",
            vec![0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00],
            vec![0x30, 0x04, 0x00, 0x02, 0xC3, 0x28],
            m,
        ),
        // PUBACK too short for its packet id.
        (
            "PUBACK of one byte",
            vec![0x40, 0x01, 0x00],
            vec![0x40, 0x01, 0x00],
            m,
        ),
        // QoS 1 PUBLISH with packet id 0 (`MQTT-2.2.1-3`).
        (
            "packet id 0",
            vec![0x32, 0x06, 0, 1, b't', 0, 0, 0],
            vec![0x32, 0x05, 0, 1, b't', 0, 0],
            m,
        ),
        // SUBSCRIBE without any filter (v5 3.8.3: protocol error).
        (
            "SUBSCRIBE without filters",
            vec![0x82, 0x03, 0, 1, 0],
            vec![0x82, 0x02, 0, 1],
            p,
        ),
        // Payload Format Indicator twice (v5 2.2.2.2: protocol error); 3.1.1 has no
        // properties, so the same idea is a SUBSCRIBE option byte with reserved bits.
        (
            "property twice / reserved option bits",
            vec![0x30, 0x09, 0, 1, b't', 4, 0x01, 0, 0x01, 0, b'x'],
            vec![0x82, 0x06, 0, 1, 0, 1, b't', 0x04],
            p,
        ),
    ];
    rejected_after_connect(&cases).await;
}

/// CONNECT and AUTH after the CONNECT are protocol errors (`MQTT-3.1.0-2`; AUTH without an
/// authentication method, 4.12).
#[tokio::test]
async fn second_connect_and_unexpected_auth() {
    let p = ReasonCode::PROTOCOL_ERROR;
    let second_v5 = encode(&Packet::Connect(Box::new(connect_packet(V50, "bad"))), V50);
    let second_v3 = encode(
        &Packet::Connect(Box::new(connect_packet(V311, "bad"))),
        V311,
    );
    let auth = encode(&Packet::Auth(Default::default()), V50);
    let cases = vec![
        ("second CONNECT", second_v5, second_v3, p),
        ("AUTH", auth, vec![0xF0, 0x00], p),
    ];
    rejected_after_connect(&cases).await;
}

/// Garbage pipelined in the same TCP segment as the CONNECT: CONNACK, then the same
/// treatment as garbage sent later.
#[tokio::test]
async fn garbage_in_the_same_write_as_connect() {
    let mut s = Setup::new().await;
    for version in [V50, V311] {
        let mut bytes = encode(
            &Packet::Connect(Box::new(connect_packet(version, "bad"))),
            version,
        );
        bytes.extend_from_slice(&[0x00, 0x00, 0x00]);
        let mut c = RawClient::connect(s.addr(), version)
            .await
            .expect("socket I/O");
        c.send_bytes(&bytes).await.expect("socket I/O");
        match c.recv().await {
            Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::SUCCESS),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        let expected = (version == V50).then_some(ReasonCode::MALFORMED_PACKET);
        assert_eq!(c.expect_closed().await, expected, "{version:?}");
    }
    s.assert_alive().await;
}

/// Asserts the server closes `c` without sending a byte.
async fn assert_closed_silently(c: &mut RawClient, what: &str) {
    match c.recv_timeout(Duration::from_secs(3)).await {
        Received::Closed => {}
        other => panic!("{what}: expected a silent close, got {other:?}"),
    }
}

/// Asserts the server refuses the CONNECT of `c`: a close, optionally preceded by a CONNACK
/// with an error reason (4.13 lets the server send one before closing).
async fn assert_refused(c: &mut RawClient, what: &str) {
    match c.recv_timeout(Duration::from_secs(3)).await {
        Received::Closed => {}
        Received::Packet(Packet::ConnAck(a)) if a.reason.is_error() => {
            assert_eq!(c.expect_closed().await, None, "{what}: close after CONNACK");
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// The first packet must be CONNECT (`MQTT-3.1.0-1`): anything else is closed without an
/// answer, whatever it is.
#[tokio::test]
async fn first_packet_not_connect_is_closed() {
    let mut s = Setup::new().await;
    let publish = encode(
        &Packet::Publish(tenantmq_e2e::raw::publish_packet(
            "t",
            QoS::AtMostOnce,
            false,
            0,
            b"x",
        )),
        V311,
    );
    let cases: [(&str, &[u8]); 5] = [
        ("PINGREQ", &[0xC0, 0x00]),
        ("PUBLISH", &publish),
        ("reserved type 0", &[0x00]),
        ("DISCONNECT", &[0xE0, 0x00]),
        ("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    for (name, bytes) in cases {
        let mut c = RawClient::connect(s.addr(), V311)
            .await
            .expect("socket I/O");
        c.send_bytes(bytes).await.expect("socket I/O");
        assert_closed_silently(&mut c, name).await;
    }
    assert_eq!(
        s.broker.stats.bad_connect.load(Ordering::Relaxed),
        cases.len() as u64
    );
    s.assert_alive().await;
}

/// CONNECT packets that are themselves invalid.
#[tokio::test]
async fn invalid_connect_packets() {
    let mut s = Setup::new().await;
    let valid = encode(&Packet::Connect(Box::new(connect_packet(V311, "c"))), V311);
    // Layout of `valid`: 0x10, remaining length, 0x00 0x04 "MQTT", level, flags, keep alive.
    let level_at = 8;
    let flags_at = 9;

    // Unsupported protocol level: CONNACK return code 1, then close (`MQTT-3.1.2-2`).
    let mut level6 = valid.clone();
    level6[level_at] = 6;
    let mut c = RawClient::connect(s.addr(), V311)
        .await
        .expect("socket I/O");
    c.send_bytes(&level6).await.expect("socket I/O");
    match c.recv().await {
        Packet::ConnAck(a) => assert_eq!(a.reason, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION),
        other => panic!("expected CONNACK 1, got {other:?}"),
    }
    assert_eq!(c.expect_closed().await, None);

    // Wrong protocol name (`MQTT-3.1.2-1`), reserved flag set (`MQTT-3.1.2-3`), Will QoS
    // without Will Flag (`MQTT-3.1.2-11`), password without user name in 3.1.1
    // (`MQTT-3.1.2-22`): refused. (The engine answers a wrong protocol name with return
    // code 1, the others with a bare close.)
    let mut name = valid.clone();
    name[7] = b'X';
    let mut reserved = valid.clone();
    reserved[flags_at] |= 0x01;
    let mut will_qos = valid.clone();
    will_qos[flags_at] |= 0x08;
    let mut password = valid.clone();
    password[flags_at] |= 0x40;
    for (what, bytes) in [
        ("protocol name", name),
        ("reserved flag", reserved),
        ("will QoS", will_qos),
        ("password", password),
    ] {
        let mut c = RawClient::connect(s.addr(), V311)
            .await
            .expect("socket I/O");
        c.send_bytes(&bytes).await.expect("socket I/O");
        assert_refused(&mut c, what).await;
    }

    // MQTT 5 with the reserved flag: refused too.
    let mut v5 = encode(&Packet::Connect(Box::new(connect_packet(V50, "c"))), V50);
    v5[flags_at] |= 0x01;
    let mut c = RawClient::connect(s.addr(), V50).await.expect("socket I/O");
    c.send_bytes(&v5).await.expect("socket I/O");
    assert_refused(&mut c, "MQTT 5 reserved flag").await;
    s.assert_alive().await;
}

/// A CONNECT above the pre-authentication limit is refused without being buffered: the
/// connection closes as soon as the fixed header announces the size, without a CONNACK.
#[tokio::test]
async fn oversized_connect_before_authentication_is_closed() {
    let config = GatewayConfig {
        pre_auth_max_packet: 512,
        ..GatewayConfig::default()
    };
    let mut s = Setup::with(Quotas::unlimited(), config).await;

    let mut c = connect_packet(V311, "big");
    c.will = Some(tenantmq_codec::Will {
        payload: bytes::Bytes::from(vec![0u8; 2000]),
        ..will("will/big", b"", QoS::AtMostOnce, false)
    });
    let mut raw = RawClient::connect(s.addr(), V311)
        .await
        .expect("socket I/O");
    raw.send_bytes(&encode(&Packet::Connect(Box::new(c)), V311))
        .await
        .expect("socket I/O");
    assert_closed_silently(&mut raw, "CONNECT of 2 kB").await;

    // Only a header announcing 1 MB; the body never comes.
    let mut raw = RawClient::connect(s.addr(), V311)
        .await
        .expect("socket I/O");
    raw.send_bytes(&[0x10, 0x80, 0x80, 0x40])
        .await
        .expect("socket I/O");
    assert_closed_silently(&mut raw, "header of a 1 MB CONNECT").await;

    assert_eq!(s.broker.stats.oversized_connect.load(Ordering::Relaxed), 2);
    s.assert_alive().await;
}

/// A socket that does not complete its CONNECT within the connect timeout is closed —
/// whether it sends nothing or half a packet.
#[tokio::test]
async fn connect_timeout_closes_idle_sockets() {
    let config = GatewayConfig {
        connect_timeout: Duration::from_millis(300),
        ..GatewayConfig::default()
    };
    let mut s = Setup::with(Quotas::unlimited(), config).await;
    let connect = encode(&Packet::Connect(Box::new(connect_packet(V50, "slow"))), V50);
    for (what, bytes) in [
        ("nothing", &connect[..0]),
        ("half a CONNECT", &connect[..connect.len() / 2]),
    ] {
        let start = Instant::now();
        let mut c = RawClient::connect(s.addr(), V50).await.expect("socket I/O");
        c.send_bytes(bytes).await.expect("socket I/O");
        assert_closed_silently(&mut c, what).await;
        let after = start.elapsed();
        assert!(
            after >= Duration::from_millis(250) && after < Duration::from_secs(2),
            "{what}: closed after {after:?}, timeout is 300 ms"
        );
    }
    assert_eq!(s.broker.stats.connect_timeouts.load(Ordering::Relaxed), 2);
    s.assert_alive().await;
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = 1 + (self.next() as usize) % max_len;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Random bytes — after a valid CONNECT, and as a "CONNECT" itself — on many connections at
/// once: whatever each connection's fate, the server never panics and keeps serving.
#[tokio::test]
async fn random_bytes_never_crash_the_server() {
    let mut s = Setup::new().await;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let version = if i % 2 == 0 { V50 } else { V311 };
        let mut bytes = if i < 40 {
            encode(
                &Packet::Connect(Box::new(connect_packet(version, &format!("r{i}")))),
                version,
            )
        } else {
            vec![0x10] // Looks like a CONNECT, so the CONNECT parser sees the rest.
        };
        // Packet-like prefixes make it past framing more often than pure noise.
        let mut junk = rng.bytes(64);
        if i % 3 == 0 {
            junk[0] = [0x30, 0x32, 0x82, 0x62, 0xA2, 0xE0, 0xF0][(rng.next() % 7) as usize];
            if junk.len() > 1 {
                junk[1] = (junk.len() - 2) as u8;
            }
        }
        bytes.extend(junk);
        let addr = s.addr();
        tasks.spawn(async move {
            let mut c = RawClient::connect(addr, version).await.expect("socket I/O");
            c.send_bytes(&bytes).await.expect("socket I/O");
            // Read whatever comes until close or a short quiet period; undecodable answers
            // cannot come from a correct server, so the raw client's decoding is the check.
            loop {
                match c.recv_timeout(Duration::from_millis(300)).await {
                    Received::Packet(_) => {}
                    Received::Closed | Received::Timeout => return,
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("a client task failed");
    }
    s.assert_alive().await;
}
