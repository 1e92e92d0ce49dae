//! The device-facing edge over real sockets on loopback: TLS, mutual TLS, certificate reload,
//! WebSocket, PROXY protocol and floods of half-open connections, in front of the real worker.
//! One test binary (modules below) so that it links once.

mod flood;
mod mtls;
mod proxy;
mod reload;
mod tls;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tenantmq_codec::{
    ByteString, Connect, ConnectProperties, Packet, ProtocolVersion, Publish, PublishProperties,
    QoS, Subscribe, SubscribeFilter, SubscribeProperties, SubscriptionOptions, frame,
};
use tenantmq_common::TenantId;
use tenantmq_common::auth::AuthContext;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::{self, ShutdownTrigger};
use tenantmq_gateway::auth::{AuthFailure, AuthRequest, Authenticator, ClientCertInfo};
use tenantmq_gateway::certs::{DevCerts, ensure_dev_certificates, test_util::Pem};
use tenantmq_gateway::connection::ConnectionContext;
use tenantmq_gateway::limits::EdgeLimits;
use tenantmq_gateway::stats::GatewayStats;
use tenantmq_gateway::{
    CaList, ClientCaSource, GatewayConfig, ListenerOptions, TlsContext, TlsSettings, Transport,
};
use tenantmq_router::BoxFuture;
use tenantmq_worker::Worker;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long a test waits for something that should happen at once.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// The base domain of the test certificates.
pub(crate) const BASE_DOMAIN: &str = "mqtt.localhost";

/// What the authenticator saw of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) client_id: String,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) sni: Option<String>,
    pub(crate) client_cert: Option<ClientCertInfo>,
}

/// Lets everyone in as one tenant and records what it was told.
pub(crate) struct Recorder {
    tenant: TenantId,
    quotas: Arc<Quotas>,
    seen: Mutex<Vec<Seen>>,
}

impl Recorder {
    /// What the authenticator saw of the connection with `client_id`.
    pub(crate) fn seen(&self, client_id: &str) -> Option<Seen> {
        let seen = self.seen.lock().expect("lock");
        seen.iter()
            .rev()
            .find(|s| s.client_id == client_id)
            .cloned()
    }

    /// How many connections were authenticated.
    pub(crate) fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }
}

impl Authenticator for Recorder {
    fn authenticate<'a>(
        &'a self,
        req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthContext, AuthFailure>> {
        self.seen.lock().expect("lock").push(Seen {
            client_id: req.connect.client_id.to_string(),
            peer: req.peer,
            sni: req.sni.map(str::to_owned),
            client_cert: req.client_cert.cloned(),
        });
        let ctx = AuthContext::anonymous(self.tenant, self.quotas.clone());
        Box::pin(async move { Ok(ctx) })
    }
}

/// Which listener a test server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Ws,
    Mqtts,
    Wss,
}

/// How a test server is set up.
pub(crate) struct Options {
    pub(crate) kind: Kind,
    pub(crate) proxy_protocol: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) client_cas: Option<Arc<CaList>>,
    pub(crate) reload_interval: Duration,
}

impl Options {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            kind,
            proxy_protocol: false,
            connect_timeout: Duration::from_secs(5),
            client_cas: None,
            reload_interval: Duration::from_millis(100),
        }
    }
}

/// A gateway with one listener in front of a real worker. Dropping it shuts it down.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) stats: Arc<GatewayStats>,
    pub(crate) auth: Arc<Recorder>,
    pub(crate) certs: DevCerts,
    pub(crate) ca: Pem,
    dir: PathBuf,
    _trigger: ShutdownTrigger,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    pub(crate) async fn start(options: Options) -> Self {
        let dir = std::env::temp_dir().join(format!("tenantmq-edge-{}", uuid::Uuid::new_v4()));
        let certs = ensure_dev_certificates(&dir, BASE_DOMAIN).expect("dev certificates");
        let ca = Pem {
            cert: std::fs::read_to_string(&certs.ca_cert).expect("ca.pem"),
            key: std::fs::read_to_string(&certs.ca_key).expect("ca.key"),
        };
        let (trigger, signal) = shutdown::channel();
        let mut settings = TlsSettings::new(&certs.server_cert, &certs.server_key);
        settings.reload_interval = options.reload_interval;
        settings.client_cas = options.client_cas.map(|c| -> Arc<dyn ClientCaSource> { c });
        let tls = TlsContext::new(settings).expect("TLS context");
        tls.spawn_reloader(signal.clone());

        let stats = Arc::new(GatewayStats::default());
        let auth = Arc::new(Recorder {
            tenant: TenantId::new_v7(),
            quotas: Arc::new(Quotas::unlimited()),
            seen: Mutex::new(Vec::new()),
        });
        let gateway = Arc::new(ConnectionContext {
            config: GatewayConfig {
                connect_timeout: options.connect_timeout,
                ..GatewayConfig::default()
            },
            link: Worker::new(signal.clone()),
            authenticator: auth.clone(),
            stats: stats.clone(),
            limits: EdgeLimits::new(&GatewayConfig::default()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let transport = match options.kind {
            Kind::Tcp => Transport::Tcp,
            Kind::Ws => Transport::Ws,
            Kind::Mqtts => Transport::Mqtts(tls),
            Kind::Wss => Transport::Wss(tls),
        };
        let listener_options = ListenerOptions {
            proxy_protocol: options.proxy_protocol,
        };
        tokio::spawn(tenantmq_gateway::listener::run(
            listener,
            transport,
            listener_options,
            gateway,
            signal,
        ));
        Self {
            addr,
            stats,
            auth,
            certs,
            ca,
            dir,
            _trigger: trigger,
        }
    }

    /// A counter's value.
    pub(crate) fn stat(
        &self,
        pick: impl Fn(&GatewayStats) -> &std::sync::atomic::AtomicU64,
    ) -> u64 {
        GatewayStats::get(pick(&self.stats))
    }

    /// Waits until a counter reaches `want`; panics after [`PATIENCE`].
    pub(crate) async fn wait_stat(
        &self,
        what: &str,
        pick: impl Fn(&GatewayStats) -> &std::sync::atomic::AtomicU64,
        want: u64,
    ) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.stat(&pick) < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} stayed at {} (want {want})",
                self.stat(&pick)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(self.stat(&pick), want, "{what}");
    }

    /// A client configuration trusting the dev CA.
    pub(crate) fn client_config(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&[u8]],
        client_cert: Option<&Pem>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.certs.ca_cert).expect("ca.pem") {
            roots.add(cert.expect("ca cert")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match client_cert {
            Some(pem) => {
                let chain = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client cert");
                let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS 1.3/1.2 client configuration trusting the dev CA, ALPN `mqtt`.
    pub(crate) fn default_client(&self) -> Arc<ClientConfig> {
        self.client_config(rustls::ALL_VERSIONS, &[b"mqtt"], None)
    }

    /// Opens a TLS connection with `config`, asking for `sni`.
    pub(crate) async fn tls(
        &self,
        config: Arc<ClientConfig>,
        sni: &str,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from(sni.to_owned()).expect("server name");
        TlsConnector::from(config).connect(name, tcp).await
    }
}

/// Encodes one packet (MQTT 3.1.1).
pub(crate) fn encode(packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet
        .encode(ProtocolVersion::V311, &mut out)
        .expect("encode");
    out.to_vec()
}

pub(crate) fn connect_packet(client_id: &str) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V311,
        clean_start: true,
        keep_alive: 0,
        client_id: ByteString::from(client_id),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }))
}

pub(crate) fn subscribe_packet(filter: &str, packet_id: u16) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        filters: vec![SubscribeFilter {
            filter: ByteString::from(filter),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..Default::default()
            },
        }],
        properties: SubscribeProperties::default(),
    })
}

pub(crate) fn publish_packet(topic: &str, packet_id: u16, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: ByteString::from(topic),
        packet_id,
        properties: PublishProperties::default(),
        payload: Bytes::copy_from_slice(payload),
    })
}

/// A transport an MQTT test client can speak over.
pub(crate) trait Wire {
    /// Sends bytes (over WebSocket: as one binary message).
    async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// The next bytes from the server; `None` once it closed.
    async fn recv_bytes(&mut self) -> Option<Vec<u8>>;
}

/// A byte stream (TCP, TLS).
pub(crate) struct StreamWire<S>(pub S);

impl<S: AsyncRead + AsyncWrite + Unpin> Wire for StreamWire<S> {
    async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes).await?;
        self.0.flush().await
    }

    async fn recv_bytes(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        match self.0.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(buf)
            }
        }
    }
}

/// A WebSocket: binary messages carry the bytes.
pub(crate) struct WsWire<S>(pub WebSocketStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> Wire for WsWire<S> {
    async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0
            .send(Message::Binary(Bytes::copy_from_slice(bytes)))
            .await
            .map_err(std::io::Error::other)
    }

    async fn recv_bytes(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.0.next().await {
                Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    }
}

/// Opens a WebSocket over `stream` to `path`, offering `protocol`.
pub(crate) async fn ws_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    path: &str,
    protocol: Option<&str>,
) -> Result<WebSocketStream<S>, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{host}{path}")
        .into_client_request()
        .expect("request");
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
    }
    let (ws, response) = tokio_tungstenite::client_async(request, stream).await?;
    if protocol.is_some() {
        assert_eq!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .map(|v| v.as_bytes()),
            Some(&b"mqtt"[..]),
            "the server echoes the mqtt subprotocol"
        );
    }
    Ok(ws)
}

/// A minimal MQTT 3.1.1 client over the project's codec.
pub(crate) struct Client<W> {
    pub(crate) wire: W,
    buf: BytesMut,
}

impl<W: Wire> Client<W> {
    pub(crate) fn new(wire: W) -> Self {
        Self {
            wire,
            buf: BytesMut::new(),
        }
    }

    /// Sends CONNECT and expects a successful CONNACK.
    pub(crate) async fn connect(wire: W, client_id: &str) -> Self {
        let mut c = Self::new(wire);
        c.send(&connect_packet(client_id)).await;
        match c.recv().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason.0, 0, "CONNACK {ack:?}"),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        c
    }

    pub(crate) async fn send(&mut self, packet: &Packet) {
        self.wire.send_bytes(&encode(packet)).await.expect("send");
    }

    /// The next packet; `None` when the server closed. Panics after [`PATIENCE`].
    pub(crate) async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(h) = frame::check(&self.buf, u32::MAX).expect("fixed header") {
                    let f = self.buf.split_to(h.total_len()).freeze();
                    return Some(Packet::decode(f, &h, ProtocolVersion::V311).expect("decode"));
                }
                let bytes = self.wire.recv_bytes().await?;
                self.buf.extend_from_slice(&bytes);
            }
        })
        .await
        .expect("no packet within the patience")
    }

    /// Subscribes to `topic`, publishes to it at QoS 1 and expects the PUBACK and the message.
    pub(crate) async fn round_trip(&mut self, topic: &str) {
        self.send(&subscribe_packet(topic, 1)).await;
        assert!(matches!(self.recv().await, Some(Packet::SubAck(_))));
        self.send(&publish_packet(topic, 2, b"hello")).await;
        self.expect_puback_and_message(topic, 2).await;
    }

    /// Expects the PUBACK of `packet_id` and a PUBLISH on `topic`, in either order.
    pub(crate) async fn expect_puback_and_message(&mut self, topic: &str, packet_id: u16) {
        let (mut acked, mut got) = (false, false);
        while !(acked && got) {
            match self.recv().await {
                Some(Packet::PubAck(a)) if a.packet_id == packet_id => acked = true,
                Some(Packet::Publish(p)) if p.topic == topic => {
                    got = true;
                    if p.qos == QoS::AtLeastOnce {
                        let ack = tenantmq_codec::PubAck {
                            packet_id: p.packet_id,
                            ..Default::default()
                        };
                        self.send(&Packet::PubAck(ack)).await;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// Waits until the server closes `stream` (EOF or reset), discarding what it sends; returns
/// the bytes it sent. Panics after `limit`.
pub(crate) async fn expect_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server kept the connection open");
    got
}
