//! The live network connection of a session, as the engine sees it: where its bytes go, the
//! limits the client announced, and the per-connection protocol state (topic aliases, will).
//!
//! Output is batched: packets are encoded into [`Conn::out`] as they are produced, and the
//! engine hands the whole buffer to the connection's writer once per tick ([`Conn::flush`]),
//! so a burst of deliveries costs one channel send and one socket write.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use rustc_hash::FxHashMap;
use tenantmq_codec::{
    Packet, ProtocolVersion, PublishHeader, PublishProperties, QoS, TopicName, encode_publish,
    encoded_publish_len,
};
use tenantmq_common::link::DeviceTx;

use crate::acl::CompiledAcl;
use crate::message::Message;

/// Bytes queued towards a client (in the channel and not yet flushed) above which the
/// connection counts as congested: QoS 0 deliveries are dropped and QoS 1/2 deliveries wait in
/// the session queue instead of growing memory without bound.
pub(crate) const MAX_QUEUED_OUTPUT_BYTES: usize = 1 << 20;

/// Capacity a connection's output buffer grows by once a second packet is encoded before a
/// flush (the first gets exactly its size, see [`Conn::reserve`]).
const OUT_BUFFER_CHUNK: usize = 4096;

/// An output buffer that has shrunk below this after a flush is dropped rather than kept, so
/// idle connections hold no output memory.
const OUT_BUFFER_KEEP_MIN: usize = 512;

/// A will message waiting for its connection to end.
#[derive(Debug, Clone)]
pub(crate) struct PendingWill {
    /// The message to publish.
    pub message: Message,
    /// Will Delay Interval in seconds (MQTT 5; 0 for 3.1.1).
    pub delay: u32,
}

/// A session's live connection.
pub(crate) struct Conn {
    /// Where encoded packets go.
    pub device: DeviceTx,
    /// Protocol level of the connection.
    pub version: ProtocolVersion,
    /// Packets encoded since the last flush.
    out: BytesMut,
    /// Chunks the device channel refused; retried first at the next flush.
    backlog: VecDeque<Bytes>,
    /// Receive Maximum of the client: QoS 1/2 PUBLISHes we may have unacknowledged.
    pub client_receive_maximum: u16,
    /// Maximum Packet Size of the client.
    pub client_max_packet_size: u32,
    /// Topic Alias Maximum of the client (aliases we may assign, server → client).
    pub client_topic_alias_maximum: u16,
    /// Aliases we assigned towards the client.
    out_aliases: FxHashMap<ByteString, u16>,
    /// Next alias to assign or, once all are in use, to recycle.
    next_out_alias: u16,
    /// Aliases the client assigned (index = alias − 1), up to our Topic Alias Maximum.
    in_aliases: Vec<Option<TopicName>>,
    /// MQTT 5 Request Problem Information: whether reason strings and user properties may be
    /// sent in packets other than PUBLISH, CONNACK and DISCONNECT (`MQTT-3.1.2-29`).
    pub request_problem_information: bool,
    /// The will, until the connection ends.
    pub will: Option<PendingWill>,
    /// The connection's ACL.
    pub acl: CompiledAcl,
    /// The username, for logs and `$SYS` events.
    pub username: Option<String>,
    /// Whether the connection is in the engine's dirty list.
    pub dirty: bool,
    /// The device's address.
    pub peer: Option<std::net::SocketAddr>,
    /// When the connection was accepted, seconds since the Unix epoch.
    pub connected_at_unix: u64,
}

/// Outcome of writing a PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Encoded into the output buffer.
    Sent,
    /// Larger than the client's Maximum Packet Size: discarded as if sent (`MQTT-3.1.2-25`).
    TooLarge,
}

impl Conn {
    /// A new connection with the client's announced limits.
    pub fn new(device: DeviceTx, version: ProtocolVersion, acl: CompiledAcl) -> Self {
        Self {
            device,
            version,
            out: BytesMut::new(),
            backlog: VecDeque::new(),
            client_receive_maximum: u16::MAX,
            client_max_packet_size: u32::MAX,
            client_topic_alias_maximum: 0,
            out_aliases: FxHashMap::default(),
            next_out_alias: 1,
            in_aliases: Vec::new(),
            request_problem_information: true,
            will: None,
            acl,
            username: None,
            dirty: false,
            peer: None,
            connected_at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Bytes waiting for the device: in the channel, the backlog and the output buffer.
    pub fn queued_bytes(&self) -> usize {
        self.device.queued_bytes()
            + self.out.len()
            + self.backlog.iter().map(Bytes::len).sum::<usize>()
    }

    /// True when no more should be queued for this client for now.
    pub fn congested(&self) -> bool {
        self.queued_bytes() >= MAX_QUEUED_OUTPUT_BYTES
    }

    /// Encodes a control packet. Packets over the client's Maximum Packet Size lose their
    /// reason string and user properties first (`MQTT-3.1.2-25`); if still too large they are
    /// not sent. Returns true when something was written (the caller marks the conn dirty).
    pub fn write_packet(&mut self, packet: &Packet) -> bool {
        let max = self.client_max_packet_size as usize;
        let stripped;
        let mut packet = packet;
        let too_large = packet.encoded_len(self.version) > max;
        if !self.request_problem_information || too_large {
            stripped = strip_diagnostics(packet, too_large);
            packet = &stripped;
            if packet.encoded_len(self.version) > max {
                return false;
            }
        }
        self.reserve(packet.encoded_len(self.version));
        // An encode error means the packet is not representable in this version; nothing was
        // appended, and dropping it is the only option.
        packet.encode(self.version, &mut self.out).is_ok()
    }

    /// Encodes one delivery of `msg`. `topic_alias` assignment happens here.
    #[allow(clippy::too_many_arguments)]
    pub fn write_publish(
        &mut self,
        msg: &Message,
        qos: QoS,
        retain: bool,
        dup: bool,
        packet_id: u16,
        sub_ids: &[u32],
        expiry: Option<u32>,
        empty: &PublishProperties,
    ) -> Written {
        let props = msg.props.as_deref().unwrap_or(empty);
        let mut header = PublishHeader {
            dup,
            qos,
            retain,
            packet_id,
            topic: msg.topic.as_str(),
            topic_alias: None,
            message_expiry_interval: expiry,
            subscription_identifiers: if self.version == ProtocolVersion::V5 {
                sub_ids
            } else {
                &[]
            },
        };
        let full_len = encoded_publish_len(self.version, &header, props, msg.payload.len());
        if full_len > self.client_max_packet_size as usize {
            return Written::TooLarge;
        }
        if self.version == ProtocolVersion::V5 && self.client_topic_alias_maximum > 0 {
            match self.out_aliases.get(msg.topic.as_str()) {
                Some(&alias) => {
                    header.topic = "";
                    header.topic_alias = Some(alias);
                }
                None => header.topic_alias = Some(self.assign_alias(msg.topic.as_str())),
            }
        }
        let len = encoded_publish_len(self.version, &header, props, msg.payload.len());
        self.reserve(len);
        match encode_publish(&mut self.out, self.version, &header, props, &msg.payload) {
            Ok(()) => Written::Sent,
            Err(_) => Written::TooLarge,
        }
    }

    /// Assigns an outgoing alias to `topic`, recycling the oldest once all are in use.
    fn assign_alias(&mut self, topic: &str) -> u16 {
        let alias = self.next_out_alias;
        self.next_out_alias = if alias >= self.client_topic_alias_maximum {
            1
        } else {
            alias + 1
        };
        if self.out_aliases.len() >= usize::from(self.client_topic_alias_maximum) {
            self.out_aliases.retain(|_, a| *a != alias);
        }
        self.out_aliases.insert(ByteString::from(topic), alias);
        alias
    }

    /// Records or resolves an incoming topic alias (MQTT 5 3.3.2.3.4). `max` is the Topic
    /// Alias Maximum we announced.
    pub fn resolve_alias(
        &mut self,
        alias: u16,
        topic: Option<TopicName>,
        max: u16,
    ) -> Result<TopicName, AliasError> {
        if alias == 0 || alias > max {
            return Err(AliasError::Invalid);
        }
        let idx = usize::from(alias - 1);
        match topic {
            Some(t) => {
                if self.in_aliases.len() <= idx {
                    self.in_aliases.resize(idx + 1, None);
                }
                self.in_aliases[idx] = Some(t.clone());
                Ok(t)
            }
            None => self
                .in_aliases
                .get(idx)
                .cloned()
                .flatten()
                .ok_or(AliasError::Unknown),
        }
    }

    /// Makes room for `len` more bytes. An empty buffer gets exactly `len`: most connections
    /// are idle, writing a CONNACK, a SUBACK or a PINGRESP now and then, and a buffer of that
    /// size is used up by the packet and dropped at the flush (below `OUT_BUFFER_KEEP_MIN`)
    /// instead of keeping 4 KiB per idle connection. A second packet before the flush means
    /// a busy connection: the buffer grows by whole chunks, and the rest of a chunk is kept
    /// for the next tick.
    fn reserve(&mut self, len: usize) {
        if self.out.capacity() - self.out.len() < len {
            let chunk = if self.out.capacity() == 0 {
                len
            } else {
                len.max(OUT_BUFFER_CHUNK)
            };
            self.out.reserve(chunk);
        }
    }

    /// Hands everything encoded since the last flush to the device channel.
    pub fn flush(&mut self) {
        while let Some(chunk) = self.backlog.pop_front() {
            if let Err(chunk) = self.device.try_send(chunk) {
                self.backlog.push_front(chunk);
                break;
            }
        }
        if !self.out.is_empty() {
            let chunk = self.out.split().freeze();
            if self.backlog.is_empty() {
                if let Err(chunk) = self.device.try_send(chunk) {
                    self.backlog.push_back(chunk);
                }
            } else {
                self.backlog.push_back(chunk);
            }
        }
        if self.out.capacity() < OUT_BUFFER_KEEP_MIN {
            self.out = BytesMut::new();
        }
    }

    /// True while chunks wait for room in the device channel.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }
}

/// Why an incoming topic alias was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AliasError {
    /// 0 or above our Topic Alias Maximum: DISCONNECT 0x94.
    Invalid,
    /// An alias without topic that was never set: a protocol error (0x82).
    Unknown,
}

/// A copy of `packet` without reason string and user properties: always for acknowledgements,
/// for CONNACK and DISCONNECT only when the packet is too large (they may carry diagnostics
/// even when the client asked for none, `MQTT-3.1.2-29`). PUBLISH is never passed here.
fn strip_diagnostics(packet: &Packet, too_large: bool) -> Packet {
    let mut p = packet.clone();
    match &mut p {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            a.properties = Default::default();
        }
        Packet::SubAck(a) => a.properties = Default::default(),
        Packet::UnsubAck(a) => a.properties = Default::default(),
        Packet::Disconnect(d) if too_large => {
            d.properties.reason_string = None;
            d.properties.user_properties.clear();
        }
        Packet::ConnAck(c) if too_large => {
            c.properties.reason_string = None;
            c.properties.user_properties.clear();
        }
        _ => {}
    }
    p
}
