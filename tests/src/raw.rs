//! A raw MQTT client over the project's codec, for tests that check exact packets: it sends
//! any [`Packet`] (or arbitrary bytes) and returns each decoded packet the server sends.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tenantmq_codec::{
    ByteString, ConnAck, Connect, ConnectProperties, Disconnect, Packet, ProtocolVersion, PubAck,
    Publish, PublishProperties, QoS, ReasonCode, Subscribe, SubscribeFilter, SubscribeProperties,
    SubscriptionOptions, Unsubscribe, Will, WillProperties, frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long [`RawClient::recv`] waits by default.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A raw MQTT connection.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// Packets read ahead by a helper that was waiting for another one; returned first.
    stash: VecDeque<Packet>,
    /// The protocol version packets are encoded and decoded with.
    pub version: ProtocolVersion,
}

/// What [`RawClient::recv_timeout`] saw.
// One value at a time, returned straight to the test: boxing the packet would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A packet.
    Packet(Packet),
    /// The server closed the connection.
    Closed,
    /// Nothing within the time.
    Timeout,
}

impl RawClient {
    /// Opens a TCP connection.
    pub async fn connect(addr: SocketAddr, version: ProtocolVersion) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: BytesMut::new(),
            stash: VecDeque::new(),
            version,
        })
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        packet
            .encode(self.version, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.stream.write_all(&out).await
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next packet, waiting up to `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Received {
        if let Some(p) = self.stash.pop_front() {
            return Received::Packet(p);
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match frame::check(&self.buf, u32::MAX) {
                Ok(Some(h)) => {
                    let frame = self.buf.split_to(h.total_len()).freeze();
                    return match Packet::decode(frame, &h, self.version) {
                        Ok(p) => Received::Packet(p),
                        Err(e) => panic!("server sent an undecodable packet: {e}"),
                    };
                }
                Ok(None) => {}
                Err(e) => panic!("server sent a bad fixed header: {e}"),
            }
            self.buf.reserve(4096);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Received::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Received::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet; panics if none arrives within [`RECV_TIMEOUT`] or the connection
    /// closes.
    pub async fn recv(&mut self) -> Packet {
        match self.recv_timeout(RECV_TIMEOUT).await {
            Received::Packet(p) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }
}

/// How long tests wait before concluding that nothing more will arrive. Most "nothing
/// arrives" checks instead wait for a later marker message, which is both faster and exact;
/// this is for the few where no marker can follow.
pub const QUIET: Duration = Duration::from_millis(300);

/// A CONNECT for `version` with a clean start, no keep alive and no will: the base that
/// tests adjust field by field.
pub fn connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 0,
        client_id: ByteString::from(client_id),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

/// A CONNECT that resumes or keeps a session: Clean Start 0 and, for MQTT 5, a Session
/// Expiry Interval of 60 s (3.1.1 sessions without Clean Session never expire).
pub fn persistent_connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    let mut c = connect_packet(version, client_id);
    c.clean_start = false;
    if version == ProtocolVersion::V5 {
        c.properties.session_expiry_interval = Some(60);
    }
    c
}

/// A will message with default properties.
pub fn will(topic: &str, payload: &'static [u8], qos: QoS, retain: bool) -> Will {
    Will {
        topic: ByteString::from(topic),
        payload: Bytes::from_static(payload),
        qos,
        retain,
        properties: WillProperties::default(),
    }
}

/// A PUBLISH without properties.
pub fn publish_packet(
    topic: &str,
    qos: QoS,
    retain: bool,
    packet_id: u16,
    payload: &[u8],
) -> Publish {
    Publish {
        dup: false,
        qos,
        retain,
        topic: ByteString::from(topic),
        packet_id,
        properties: PublishProperties::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

/// Subscription options with only the QoS set.
pub fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..Default::default()
    }
}

/// A publish acknowledgement (PUBACK, PUBREC, PUBREL, PUBCOMP) with success.
pub fn ack(packet_id: u16) -> PubAck {
    PubAck {
        packet_id,
        ..Default::default()
    }
}

impl RawClient {
    /// Connects and sends `connect`, returning the client and the CONNACK. Panics when the
    /// server answers anything else.
    pub async fn connect_with(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut c = Self::connect(addr, connect.protocol)
            .await
            .expect("tcp connect");
        c.send(&Packet::Connect(Box::new(connect)))
            .await
            .expect("send CONNECT");
        match c.recv().await {
            Packet::ConnAck(ack) => (c, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with [`connect_packet`] and asserts the CONNACK is a success.
    pub async fn connected(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> Self {
        let (c, ack) = Self::connect_with(addr, connect_packet(version, client_id)).await;
        assert_eq!(ack.reason, ReasonCode::SUCCESS, "CONNACK of {client_id}");
        c
    }

    /// Subscribes to `filters` in one SUBSCRIBE and returns the SUBACK's reason codes.
    pub async fn subscribe_with(
        &mut self,
        packet_id: u16,
        filters: &[(&str, SubscriptionOptions)],
        id: Option<u32>,
    ) -> Vec<ReasonCode> {
        let packet = Subscribe {
            packet_id,
            filters: filters
                .iter()
                .map(|(f, options)| SubscribeFilter {
                    filter: ByteString::from(*f),
                    options: *options,
                })
                .collect(),
            properties: SubscribeProperties {
                subscription_identifier: id,
                ..Default::default()
            },
        };
        self.send(&Packet::Subscribe(packet))
            .await
            .expect("send SUBSCRIBE");
        match self.recv().await {
            Packet::SubAck(a) => {
                assert_eq!(a.packet_id, packet_id, "SUBACK packet id");
                a.reasons
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Subscribes to one filter at `qos` and asserts it was granted at that QoS.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let reasons = self.subscribe_with(1, &[(filter, opts(qos))], None).await;
        assert_eq!(reasons, vec![ReasonCode(qos as u8)], "SUBACK for {filter}");
    }

    /// Unsubscribes from `filter` and returns the UNSUBACK reason (always success for 3.1.1).
    pub async fn unsubscribe(&mut self, packet_id: u16, filter: &str) -> Vec<ReasonCode> {
        let packet = Unsubscribe {
            packet_id,
            filters: vec![ByteString::from(filter)],
            properties: Default::default(),
        };
        self.send(&Packet::Unsubscribe(packet))
            .await
            .expect("send UNSUBSCRIBE");
        match self.recv().await {
            Packet::UnsubAck(a) => a.reasons,
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    /// The first packet for which `pick` returns `Some`; other packets are kept, in order,
    /// for later receives. Panics after [`RECV_TIMEOUT`] or on close.
    pub async fn recv_matching<T>(&mut self, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        let mut skipped = VecDeque::new();
        let found = loop {
            let p = self.recv().await;
            match pick(&p) {
                Some(t) => break t,
                None => skipped.push_back(p),
            }
        };
        skipped.append(&mut self.stash);
        self.stash = skipped;
        found
    }

    /// Publishes and completes the QoS flow: waits for PUBACK (QoS 1) or PUBREC, sends
    /// PUBREL and waits for PUBCOMP (QoS 2). Returns the reason code of PUBACK/PUBREC
    /// (success for QoS 0). Other packets arriving meanwhile (such as the client's own
    /// message) are kept for later receives.
    pub async fn publish(&mut self, p: Publish) -> ReasonCode {
        let (qos, id) = (p.qos, p.packet_id);
        self.send(&Packet::Publish(p)).await.expect("send PUBLISH");
        match qos {
            QoS::AtMostOnce => ReasonCode::SUCCESS,
            QoS::AtLeastOnce => {
                self.recv_matching(|p| match p {
                    Packet::PubAck(a) if a.packet_id == id => Some(a.reason),
                    _ => None,
                })
                .await
            }
            QoS::ExactlyOnce => {
                let reason = self
                    .recv_matching(|p| match p {
                        Packet::PubRec(a) if a.packet_id == id => Some(a.reason),
                        _ => None,
                    })
                    .await;
                if !reason.is_error() {
                    self.send(&Packet::PubRel(ack(id)))
                        .await
                        .expect("send PUBREL");
                    self.recv_matching(|p| {
                        matches!(p, Packet::PubComp(a) if a.packet_id == id).then_some(())
                    })
                    .await;
                }
                reason
            }
        }
    }

    /// Publishes `payload` to `topic` at QoS 1 and waits for the PUBACK.
    pub async fn publish_qos1(&mut self, topic: &str, payload: &[u8]) {
        let reason = self
            .publish(publish_packet(topic, QoS::AtLeastOnce, false, 1, payload))
            .await;
        assert!(!reason.is_error(), "PUBACK reason {reason}");
    }

    /// The next packet, which must be a PUBLISH.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Receives a PUBLISH and, for QoS 1/2, acknowledges it completely (PUBACK, or PUBREC
    /// then PUBREL/PUBCOMP). Packets arriving while it waits for the PUBREL are kept for
    /// later receives.
    pub async fn expect_publish_acked(&mut self) -> Publish {
        let p = self.expect_publish().await;
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self
                .send(&Packet::PubAck(ack(p.packet_id)))
                .await
                .expect("PUBACK"),
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(ack(p.packet_id)))
                    .await
                    .expect("PUBREC");
                let id = p.packet_id;
                self.recv_matching(|p| {
                    matches!(p, Packet::PubRel(a) if a.packet_id == id).then_some(())
                })
                .await;
                self.send(&Packet::PubComp(ack(p.packet_id)))
                    .await
                    .expect("PUBCOMP");
            }
        }
        p
    }

    /// Asserts the server sends nothing and keeps the connection open for `limit`.
    pub async fn expect_silence(&mut self, limit: Duration) {
        match self.recv_timeout(limit).await {
            Received::Timeout => {}
            other => panic!("expected nothing, got {other:?}"),
        }
    }

    /// Waits for the server to close the connection and returns the reason code of the
    /// DISCONNECT it sent first, if any. Panics on any other packet or when the connection
    /// stays open for `limit`.
    pub async fn expect_closed_within(&mut self, limit: Duration) -> Option<ReasonCode> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut reason = None;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_timeout(left).await {
                Received::Closed => return reason,
                Received::Packet(Packet::Disconnect(d)) if reason.is_none() => {
                    reason = Some(d.reason)
                }
                Received::Packet(p) => panic!("expected the connection to close, got {p:?}"),
                Received::Timeout => panic!("connection still open after {limit:?}"),
            }
        }
    }

    /// [`RawClient::expect_closed_within`] with [`RECV_TIMEOUT`].
    pub async fn expect_closed(&mut self) -> Option<ReasonCode> {
        self.expect_closed_within(RECV_TIMEOUT).await
    }

    /// Sends a normal DISCONNECT (MQTT 5: with `reason` and `session_expiry`) and waits for
    /// the server to close the connection.
    pub async fn disconnect_with(&mut self, reason: ReasonCode, session_expiry: Option<u32>) {
        let mut d = Disconnect {
            reason,
            ..Default::default()
        };
        d.properties.session_expiry_interval = session_expiry;
        self.send(&Packet::Disconnect(d))
            .await
            .expect("send DISCONNECT");
        assert_eq!(
            self.expect_closed().await,
            None,
            "server answered DISCONNECT"
        );
    }

    /// Sends a normal DISCONNECT and waits for the close.
    pub async fn disconnect(&mut self) {
        self.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, None)
            .await;
    }
}
