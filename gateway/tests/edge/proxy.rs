//! PROXY protocol v2 in front of the TLS and plain listeners.

use std::net::SocketAddr;

use tenantmq_gateway::proxy::SIGNATURE;
use tokio::io::AsyncWriteExt;

use crate::*;

/// A v2 PROXY header for a TCP/IPv4 connection from `source`.
fn header(source: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(v4) = source else {
        panic!("IPv4 only");
    };
    let mut h = SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0x00, 12]);
    h.extend_from_slice(&v4.ip().octets());
    h.extend_from_slice(&[10, 0, 0, 1]);
    h.extend_from_slice(&v4.port().to_be_bytes());
    h.extend_from_slice(&8883u16.to_be_bytes());
    h
}

/// The header's source address, not the load balancer's, is the peer the authenticator sees:
/// on mqtts (header, then the TLS handshake) and on plain TCP.
#[tokio::test]
async fn source_address_from_the_header_is_the_peer() {
    for kind in [Kind::Mqtts, Kind::Tcp] {
        let mut options = Options::new(kind);
        options.proxy_protocol = true;
        let s = Server::start(options).await;
        let device: SocketAddr = "203.0.113.7:4242".parse().expect("addr");
        let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
        tcp.write_all(&header(device)).await.expect("send header");
        let id = format!("proxied-{kind:?}");
        let mut c = if kind == Kind::Mqtts {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let tls = TlsConnector::from(s.default_client())
                .connect(name, tcp)
                .await
                .expect("handshake");
            // Erase the stream type: both arms are byte streams.
            let boxed: Box<dyn AsyncReadWrite> = Box::new(tls);
            Client::connect(StreamWire(boxed), &id).await
        } else {
            let boxed: Box<dyn AsyncReadWrite> = Box::new(tcp);
            Client::connect(StreamWire(boxed), &id).await
        };
        c.round_trip("t/proxied").await;
        assert_eq!(
            s.auth.seen(&id).expect("seen").peer,
            Some(device),
            "{kind:?}"
        );
        assert_eq!(s.stat(|s| &s.proxy_header_errors), 0);
    }
}

/// Junk instead of the header (a TLS ClientHello sent directly, a v1 text header) is closed
/// and counted.
#[tokio::test]
async fn junk_instead_of_the_header_is_closed_and_counted() {
    let mut options = Options::new(Kind::Mqtts);
    options.proxy_protocol = true;
    let s = Server::start(options).await;
    // A direct TLS client, bypassing the proxy.
    assert!(s.tls(s.default_client(), "localhost").await.is_err());
    s.wait_stat("proxy errors", |s| &s.proxy_header_errors, 1)
        .await;
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    tcp.write_all(b"PROXY TCP4 203.0.113.7 10.0.0.1 4242 8883\r\n")
        .await
        .expect("send");
    expect_closed(&mut tcp, PATIENCE).await;
    s.wait_stat("proxy errors", |s| &s.proxy_header_errors, 2)
        .await;
    assert_eq!(s.stat(|s| &s.tls_handshake_failures), 0);
}

/// With the header disabled, a v2 header is just garbage in front of the ClientHello.
#[tokio::test]
async fn header_on_a_listener_without_it_is_garbage() {
    let s = Server::start(Options::new(Kind::Mqtts)).await;
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    tcp.write_all(&header("203.0.113.7:4242".parse().expect("addr")))
        .await
        .expect("send");
    expect_closed(&mut tcp, PATIENCE).await;
    s.wait_stat("handshake failures", |s| &s.tls_handshake_failures, 1)
        .await;
    assert_eq!(s.auth.count(), 0);
}

/// A byte stream of any type.
pub(crate) trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}
