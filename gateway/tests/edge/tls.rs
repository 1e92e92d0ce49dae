//! mqtts: protocol versions, ALPN, SNI, and what happens to junk and stalled handshakes.

use std::time::Duration;

use rustls::ProtocolVersion;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::*;

/// TLS 1.3 and TLS 1.2 clients complete the handshake and an MQTT round trip; SNI reaches
/// the authenticator and ALPN `mqtt` is selected.
#[tokio::test]
async fn tls13_and_tls12_handshakes_round_trip() {
    let s = Server::start(Options::new(Kind::Mqtts)).await;
    for (version, want) in [
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
    ] {
        let config = s.client_config(&[version], &[b"mqtt"], None);
        let sni = "acme.mqtt.localhost";
        let tls = s.tls(config, sni).await.expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(want));
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"mqtt"[..]));
        let id = format!("{want:?}");
        let mut c = Client::connect(StreamWire(tls), &id).await;
        c.round_trip("t/tls").await;
        let seen = s.auth.seen(&id).expect("authenticated");
        assert_eq!(seen.sni.as_deref(), Some(sni));
        assert!(seen.client_cert.is_none());
    }
    assert_eq!(s.stat(|s| &s.tls_handshake_failures), 0);
}

/// ALPN is never required: a client offering only another protocol (AWS IoT's
/// `x-amzn-mqtt-ca`) or none at all is served without ALPN; clients without SNI too.
#[tokio::test]
async fn alpn_is_optional_and_sni_too() {
    let s = Server::start(Options::new(Kind::Mqtts)).await;
    for (i, alpn) in [&[&b"x-amzn-mqtt-ca"[..]][..], &[][..]]
        .into_iter()
        .enumerate()
    {
        let config = s.client_config(rustls::ALL_VERSIONS, alpn, None);
        let tls = s.tls(config, "localhost").await.expect("handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), None);
        Client::connect(StreamWire(tls), &format!("alpn-{i}")).await;
    }
    // An IP address is never sent as SNI (RFC 6066 section 3).
    let tls = s
        .tls(s.default_client(), "127.0.0.1")
        .await
        .expect("handshake");
    Client::connect(StreamWire(tls), "no-sni").await;
    assert_eq!(s.auth.seen("no-sni").expect("seen").sni, None);
}

/// A ClientHello that offers TLS 1.1 at most (legacy_version 0x0302, no supported_versions
/// extension) gets a protocol_version alert, never a ServerHello.
#[tokio::test]
async fn tls11_client_is_refused() {
    let s = Server::start(Options::new(Kind::Mqtts)).await;
    let mut stream = TcpStream::connect(s.addr).await.expect("connect");
    stream.write_all(&tls11_client_hello()).await.expect("send");
    let answer = expect_closed(&mut stream, PATIENCE).await;
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "an alert record: {answer:02x?}"
    );
    // Alert level fatal (2), description protocol_version (70), RFC 5246 section 7.2.
    assert_eq!(answer.get(5..7), Some(&[2u8, 70][..]), "{answer:02x?}");
    s.wait_stat("handshake failures", |s| &s.tls_handshake_failures, 1)
        .await;
    assert_eq!(s.auth.count(), 0);
}

/// Junk instead of a ClientHello (here: plain MQTT to the TLS port, then HTTP) is closed and
/// counted; the listener keeps serving.
#[tokio::test]
async fn junk_instead_of_client_hello_is_closed_and_counted() {
    let s = Server::start(Options::new(Kind::Mqtts)).await;
    let junk: [&[u8]; 3] = [
        &encode(&connect_packet("plain")),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    ];
    for (i, bytes) in junk.iter().enumerate() {
        let mut stream = TcpStream::connect(s.addr).await.expect("connect");
        stream.write_all(bytes).await.expect("send");
        let answer = expect_closed(&mut stream, PATIENCE).await;
        assert!(
            answer.first().is_none_or(|b| *b == 0x15),
            "only an alert: {answer:02x?}"
        );
        s.wait_stat(
            "handshake failures",
            |s| &s.tls_handshake_failures,
            i as u64 + 1,
        )
        .await;
    }
    let tls = s
        .tls(s.default_client(), "localhost")
        .await
        .expect("handshake");
    Client::connect(StreamWire(tls), "after-junk")
        .await
        .round_trip("t/after")
        .await;
}

/// A handshake that stalls (half a record header, then nothing) is closed at the connect
/// timeout and counted as a handshake timeout.
#[tokio::test]
async fn stalled_handshake_is_closed_after_the_timeout() {
    let mut options = Options::new(Kind::Mqtts);
    options.connect_timeout = Duration::from_millis(500);
    let s = Server::start(options).await;
    let started = tokio::time::Instant::now();
    let mut stream = TcpStream::connect(s.addr).await.expect("connect");
    stream.write_all(&[0x16, 0x03, 0x01]).await.expect("send");
    expect_closed(&mut stream, PATIENCE).await;
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "closed too early"
    );
    s.wait_stat("handshake timeouts", |s| &s.tls_handshake_timeouts, 1)
        .await;
    assert_eq!(s.stat(|s| &s.tls_handshake_failures), 0);
}

/// A TLS 1.1-only ClientHello: legacy_version 0x0302, two suites (one a CBC suite TLS 1.1
/// clients offer), no supported_versions extension.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0xC0, 0x2B, 0xC0, 0x13]); // cipher suites
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let extensions = [
        0x00, 0x0A, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups: secp256r1
        0x00, 0x0B, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
        0x00, 0x0D, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms: ECDSA P-256
    ];
    body.extend_from_slice(
        &u16::try_from(extensions.len())
            .expect("short")
            .to_be_bytes(),
    );
    body.extend_from_slice(&extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16::try_from(body.len()).expect("short").to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).expect("short").to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}
