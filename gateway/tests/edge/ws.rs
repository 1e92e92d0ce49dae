//! MQTT over WebSocket: the upgrade rules and the framing of packets in messages.

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::StatusCode;

use crate::*;

/// A wss connection: TLS with ALPN `http/1.1`, then the upgrade.
async fn wss(
    s: &Server,
    path: &str,
    protocol: Option<&str>,
) -> Result<WsWire<TlsStream<TcpStream>>, WsError> {
    let config = s.client_config(rustls::ALL_VERSIONS, &[b"http/1.1"], None);
    let tls = s
        .tls(config, "acme.mqtt.localhost")
        .await
        .expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    ws_handshake(tls, "acme.mqtt.localhost", path, protocol)
        .await
        .map(WsWire)
}

fn status(e: WsError) -> StatusCode {
    match e {
        WsError::Http(response) => response.status(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// CONNECT, SUBSCRIBE and PUBLISH over wss, with SNI reaching the authenticator.
#[tokio::test]
async fn wss_round_trip() {
    let s = Server::start(Options::new(Kind::Wss)).await;
    let ws = wss(&s, "/mqtt", Some("mqtt")).await.expect("upgrade");
    Client::connect(ws, "over-wss")
        .await
        .round_trip("t/wss")
        .await;
    let seen = s.auth.seen("over-wss").expect("seen");
    assert_eq!(seen.sni.as_deref(), Some("acme.mqtt.localhost"));
    assert_eq!(s.stat(|s| &s.ws_upgrade_failures), 0);
}

/// Only `/mqtt` upgrades (else 404), only with the `mqtt` subprotocol (else 400); both are
/// counted and the listener keeps serving.
#[tokio::test]
async fn wrong_path_and_missing_subprotocol_are_refused() {
    let s = Server::start(Options::new(Kind::Wss)).await;
    let e = wss(&s, "/", Some("mqtt")).await.err().expect("refused");
    assert_eq!(status(e), StatusCode::NOT_FOUND);
    let e = wss(&s, "/mqtt", None).await.err().expect("refused");
    assert_eq!(status(e), StatusCode::BAD_REQUEST);
    let e = wss(&s, "/mqtt", Some("mqttv3.1"))
        .await
        .err()
        .expect("refused");
    assert_eq!(status(e), StatusCode::BAD_REQUEST);
    s.wait_stat("upgrade failures", |s| &s.ws_upgrade_failures, 3)
        .await;

    // Not an upgrade at all: plain HTTP is closed.
    let config = s.client_config(rustls::ALL_VERSIONS, &[b"http/1.1"], None);
    let mut tls = s.tls(config, "localhost").await.expect("TLS");
    tls.write_all(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tls.read_to_end(&mut rest))
        .await
        .expect("closed");
    s.wait_stat("upgrade failures", |s| &s.ws_upgrade_failures, 4)
        .await;

    let ws = wss(&s, "/mqtt", Some("mqtt")).await.expect("upgrade");
    Client::connect(ws, "still-serving").await;
}

/// A packet may span WebSocket messages and a message may hold several packets
/// (`MQTT-6.0.0-2`); on the plain dev listener.
#[tokio::test]
async fn packets_and_messages_need_not_align() {
    let s = Server::start(Options::new(Kind::Ws)).await;
    let tcp = TcpStream::connect(s.addr).await.expect("connect");
    let ws = ws_handshake(tcp, "localhost", "/mqtt", Some("mqtt"))
        .await
        .expect("upgrade");
    let mut c = Client::new(WsWire(ws));

    // CONNECT split in two messages.
    let connect = encode(&connect_packet("split"));
    let (head, tail) = connect.split_at(3);
    c.wire.send_bytes(head).await.expect("send");
    c.wire.send_bytes(tail).await.expect("send");
    assert!(matches!(c.recv().await, Some(Packet::ConnAck(_))));

    // SUBSCRIBE and PUBLISH in one message.
    let mut both = encode(&subscribe_packet("t/ws", 1));
    both.extend_from_slice(&encode(&publish_packet("t/ws", 2, b"x")));
    c.wire.send_bytes(&both).await.expect("send");
    assert!(matches!(c.recv().await, Some(Packet::SubAck(_))));
    c.expect_puback_and_message("t/ws", 2).await;
}

/// A text message is a protocol error that closes the connection (`MQTT-6.0.0-1`).
#[tokio::test]
async fn text_message_closes_the_connection() {
    let s = Server::start(Options::new(Kind::Ws)).await;
    let tcp = TcpStream::connect(s.addr).await.expect("connect");
    let mut ws = ws_handshake(tcp, "localhost", "/mqtt", Some("mqtt"))
        .await
        .expect("upgrade");
    ws.send(Message::Binary(encode(&connect_packet("texter")).into()))
        .await
        .expect("send");
    assert!(
        matches!(ws.next().await, Some(Ok(Message::Binary(_)))),
        "CONNACK"
    );
    ws.send(Message::Text("hello".into())).await.expect("send");
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open");
}
