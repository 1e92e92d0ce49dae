//! A client session (spec v5 4.1): what survives a network connection when the session is
//! persistent — subscriptions, QoS 1/2 messages in flight or queued, and the packet ids of
//! incoming QoS 2 messages awaiting PUBREL — plus the live [`Conn`] while connected.
//!
//! The outbound QoS 1/2 flow lives here: packet id allocation, the in-flight window (the
//! client's Receive Maximum capped by the tenant's `max_inflight`), the queue behind it, and
//! redelivery with DUP on session resume (`MQTT-4.4.0-1`).

use std::collections::VecDeque;

use bytestring::ByteString;
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use tenantmq_codec::SubscriptionOptions;
use tenantmq_codec::{
    AckProperties, Packet, PubAck, PublishProperties, QoS, ReasonCode, TopicFilter,
};
use tokio::time::Instant;

use crate::conn::{Conn, Written};
use crate::message::Message;

/// Subscription identifiers of one delivery: one per matching subscription that has one.
pub(crate) type SubIds = SmallVec<[u32; 2]>;

/// One subscription of the session, keyed in [`Session::subscriptions`] by the filter text
/// exactly as subscribed (including any `$share/<group>/` prefix).
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    /// The filter proper.
    pub filter: TopicFilter,
    /// Share group, for `$share/<group>/<filter>`.
    pub group: Option<ByteString>,
    /// Options as granted (QoS already capped).
    pub options: SubscriptionOptions,
    /// Subscription Identifier.
    pub id: Option<u32>,
}

/// Which acknowledgement an outgoing QoS 1/2 message awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// PUBLISH QoS 1 sent, PUBACK awaited.
    Ack,
    /// PUBLISH QoS 2 sent, PUBREC awaited.
    Rec,
    /// PUBREL sent, PUBCOMP awaited.
    Comp,
}

/// A QoS 1/2 message sent and not yet acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    pub packet_id: u16,
    pub state: OutState,
    pub delivery: Delivery,
    /// Whether its last packet (PUBLISH or PUBREL) went out on the current connection; false
    /// for a PUBLISH held back on resume by the client's Receive Maximum.
    pub sent: bool,
}

/// A message with the per-subscriber parameters of its delivery.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub msg: Message,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: SubIds,
}

/// Outcome of [`Session::deliver`], for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written to the connection's output.
    Sent,
    /// Waiting in the session queue (offline, window full or congested).
    Queued,
    /// Dropped: QoS 0 to an offline or congested client, an expired message, or a packet
    /// above the client's maximum size.
    Dropped,
    /// Dropped because the session's queue holds `max_offline_queue_len` messages: the
    /// newest message is the one dropped, so what the device finds on reconnecting is the
    /// oldest, in order.
    QueueFull,
}

/// A client session.
pub(crate) struct Session {
    /// The client identifier (unique within the tenant).
    pub client_id: ByteString,
    /// The live connection, when connected.
    pub conn: Option<Conn>,
    /// Session Expiry Interval in seconds, already capped by the plan.
    pub expiry_interval: u32,
    /// Subscriptions by filter text.
    pub subscriptions: FxHashMap<ByteString, Subscription>,
    /// Outgoing QoS 1/2 messages awaiting acknowledgement, oldest first.
    pub inflight: VecDeque<Inflight>,
    /// Outgoing messages waiting for a connection or for room in the window.
    pub queue: VecDeque<Delivery>,
    /// Bytes (topic and payload) of the messages in `queue`.
    pub queue_bytes: u64,
    /// Packet ids of incoming QoS 2 messages between PUBREC and PUBREL (`MQTT-4.3.3`).
    pub incoming_qos2: FxHashSet<u16>,
    /// A will whose delay is running after the connection ended (`MQTT-3.1.3-9`: dropped if
    /// the session resumes first, published when the delay or the session ends).
    pub pending_will: Option<crate::message::Message>,
    /// Whether the engine's congestion list holds this session.
    pub congestion_listed: bool,
    /// Queued messages sent since the engine last collected them (messages, payload
    /// bytes): deliveries counted when they leave the queue, not when they enter it. The
    /// engine's meter moves them into its stats every tick (`metering.rs`).
    pub sent_from_queue: (u64, u64),
    /// In-flight messages whose PUBLISH is still to be resent on the current connection
    /// (entries with `sent == false`).
    held: usize,
    /// Next packet id to try.
    next_packet_id: u16,
}

/// How much a session's queue may hold: `max_offline_queue_len` messages and
/// `max_offline_queue_bytes` bytes of topic and payload.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimit {
    /// Messages.
    pub messages: usize,
    /// Bytes.
    pub bytes: u64,
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: ByteString) -> Self {
        Self {
            client_id,
            conn: None,
            expiry_interval: 0,
            subscriptions: FxHashMap::default(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            queue_bytes: 0,
            incoming_qos2: FxHashSet::default(),
            pending_will: None,
            congestion_listed: false,
            sent_from_queue: (0, 0),
            held: 0,
            next_packet_id: 1,
        }
    }

    /// The in-flight window: the client's Receive Maximum capped by the plan.
    fn window(&self, max_inflight: u16) -> usize {
        let client = self
            .conn
            .as_ref()
            .map_or(u16::MAX, |c| c.client_receive_maximum);
        usize::from(client.min(max_inflight).max(1))
    }

    /// A packet id not used by any message in flight (`MQTT-2.2.1-3`).
    fn allocate_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if !self.inflight.iter().any(|i| i.packet_id == id) {
                return id;
            }
        }
    }

    /// Delivers one message to this session: writes it when connected and allowed, queues
    /// QoS 1/2 otherwise. Returns the outcome and whether the connection became dirty.
    ///
    /// QoS 0 deliveries are written straight from the borrowed message; only QoS 1/2
    /// deliveries, which must be kept until acknowledged, clone it (reference counts only).
    #[allow(clippy::too_many_arguments)]
    pub fn deliver(
        &mut self,
        msg: &Message,
        qos: QoS,
        retain: bool,
        sub_ids: SubIds,
        max_inflight: u16,
        max_queue: QueueLimit,
        now: Instant,
        empty: &PublishProperties,
    ) -> Outcome {
        let can_send = self.conn.as_ref().is_some_and(|c| !c.congested());
        if qos == QoS::AtMostOnce {
            if !can_send {
                return Outcome::Dropped;
            }
            let Ok(expiry) = msg.remaining_expiry(now) else {
                return Outcome::Dropped;
            };
            let Some(conn) = self.conn.as_mut() else {
                return Outcome::Dropped;
            };
            return match conn.write_publish(msg, qos, retain, false, 0, &sub_ids, expiry, empty) {
                Written::Sent => Outcome::Sent,
                Written::TooLarge => Outcome::Dropped,
            };
        }
        if msg.remaining_expiry(now).is_err() {
            return Outcome::Dropped;
        }
        let d = Delivery {
            msg: msg.clone(),
            qos,
            retain,
            sub_ids,
        };
        if can_send
            && self.queue.is_empty()
            && self.held == 0
            && self.inflight.len() < self.window(max_inflight)
        {
            return self.send_inflight(d, now, empty);
        }
        let size = d.msg.size() as u64;
        if self.queue.len() >= max_queue.messages
            || self.queue_bytes.saturating_add(size) > max_queue.bytes
        {
            return Outcome::QueueFull;
        }
        self.queue_bytes += size;
        self.queue.push_back(d);
        Outcome::Queued
    }

    /// Sends a QoS 1/2 delivery as a new in-flight message.
    fn send_inflight(&mut self, d: Delivery, now: Instant, empty: &PublishProperties) -> Outcome {
        let Ok(expiry) = d.msg.remaining_expiry(now) else {
            return Outcome::Dropped;
        };
        let packet_id = self.allocate_packet_id();
        let Some(conn) = self.conn.as_mut() else {
            return Outcome::Dropped;
        };
        match conn.write_publish(
            &d.msg, d.qos, d.retain, false, packet_id, &d.sub_ids, expiry, empty,
        ) {
            Written::Sent => {
                let state = if d.qos == QoS::AtLeastOnce {
                    OutState::Ack
                } else {
                    OutState::Rec
                };
                self.inflight.push_back(Inflight {
                    packet_id,
                    state,
                    delivery: d,
                    sent: true,
                });
                Outcome::Sent
            }
            Written::TooLarge => Outcome::Dropped,
        }
    }

    /// True when messages wait to be sent: held back on resume, or queued.
    pub fn has_pending(&self) -> bool {
        self.held > 0 || !self.queue.is_empty()
    }

    /// Sends what waits while the window has room and the connection is not congested:
    /// first the in-flight PUBLISHes held back on resume, in their original order
    /// (`MQTT-4.6.0-1`), then queued messages. Returns true when something was written.
    pub fn drain_queue(
        &mut self,
        max_inflight: u16,
        now: Instant,
        empty: &PublishProperties,
    ) -> bool {
        let window = self.window(max_inflight);
        let mut wrote = self.held > 0 && self.resend_held(window, now, empty);
        while self.held == 0
            && self.inflight.len() < window
            && self.conn.as_ref().is_some_and(|c| !c.congested())
        {
            let Some(d) = self.queue.pop_front() else {
                break;
            };
            self.queue_bytes = self.queue_bytes.saturating_sub(d.msg.size() as u64);
            let bytes = d.msg.payload.len() as u64;
            if self.send_inflight(d, now, empty) == Outcome::Sent {
                wrote = true;
                self.sent_from_queue.0 += 1;
                self.sent_from_queue.1 += bytes;
            }
        }
        wrote
    }

    /// Resends held-back PUBLISHes (DUP set, original packet ids) while fewer than `window`
    /// PUBLISHes are unacknowledged on this connection (`MQTT-3.3.4-9`). Returns true when
    /// something was written.
    fn resend_held(&mut self, window: usize, now: Instant, empty: &PublishProperties) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        // PUBRELs do not use the send quota (4.9), so only sent PUBLISHes count.
        let mut in_window = self
            .inflight
            .iter()
            .filter(|i| i.sent && i.state != OutState::Comp)
            .count();
        let mut wrote = false;
        let mut pos = 0;
        while self.held > 0 && in_window < window && pos < self.inflight.len() && !conn.congested()
        {
            let Some(i) = self.inflight.get_mut(pos) else {
                break;
            };
            if i.sent {
                pos += 1;
                continue;
            }
            self.held -= 1;
            let d = &i.delivery;
            let expiry = d.msg.remaining_expiry(now).unwrap_or(None);
            match conn.write_publish(
                &d.msg,
                d.qos,
                d.retain,
                true,
                i.packet_id,
                &d.sub_ids,
                expiry,
                empty,
            ) {
                Written::Sent => {
                    i.sent = true;
                    in_window += 1;
                    wrote = true;
                    pos += 1;
                }
                // Too large for the new connection's limit: discarded as if delivered
                // (`MQTT-3.1.2-25`), so it does not hold a place in the window forever.
                Written::TooLarge => {
                    self.inflight.remove(pos);
                }
            }
        }
        wrote
    }

    /// True when messages that could be sent are held back only by output congestion.
    pub fn blocked_by_congestion(&self, max_inflight: u16) -> bool {
        let waiting = self.held > 0
            || (!self.queue.is_empty() && self.inflight.len() < self.window(max_inflight));
        waiting && self.conn.as_ref().is_some_and(Conn::congested)
    }

    /// Continues everything in flight after the session was resumed on a new connection
    /// (`MQTT-4.4.0-1`): PUBREL now for messages already past PUBREC; the PUBLISHes, with DUP
    /// set, are left to [`Session::drain_queue`], which resends them within the client's new
    /// Receive Maximum. Messages that expired meanwhile are dropped from the window.
    pub fn resend_inflight(&mut self, now: Instant) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        self.inflight
            .retain(|i| i.state == OutState::Comp || i.delivery.msg.remaining_expiry(now).is_ok());
        self.held = 0;
        for i in &mut self.inflight {
            match i.state {
                OutState::Comp => {
                    conn.write_packet(&Packet::PubRel(ack(i.packet_id, ReasonCode::SUCCESS)));
                    i.sent = true;
                }
                OutState::Ack | OutState::Rec => {
                    i.sent = false;
                    self.held += 1;
                }
            }
        }
    }

    /// Handles PUBACK (QoS 1) or PUBCOMP (QoS 2) from the client: the message is done.
    /// Returns false when no message awaited it.
    pub fn complete(&mut self, packet_id: u16, expected: OutState) -> bool {
        match self
            .inflight
            .iter()
            .position(|i| i.packet_id == packet_id && i.state == expected)
        {
            Some(pos) => {
                // The client may acknowledge a message it got before the resume, ahead of
                // its resend.
                if self.inflight.remove(pos).is_some_and(|i| !i.sent) {
                    self.held = self.held.saturating_sub(1);
                }
                true
            }
            None => false,
        }
    }

    /// Handles PUBREC: moves the message to "PUBREL sent". Returns the reason code of the
    /// PUBREL to answer with (0x92 Packet Identifier not found when no QoS 2 message has
    /// that id), or `None` when nothing is sent back.
    ///
    /// Only a QoS 2 message matches (awaiting PUBREC, or already released when the PUBREC is
    /// repeated): a PUBREC naming the id of a QoS 1 message leaves that message unacknowledged
    /// until its PUBACK (`MQTT-4.3.2-2`).
    pub fn received(&mut self, packet_id: u16, reason: ReasonCode) -> Option<ReasonCode> {
        let pos = self
            .inflight
            .iter()
            .position(|i| i.packet_id == packet_id && i.state != OutState::Ack);
        match pos {
            Some(pos) if reason.is_error() => {
                // A failed PUBREC ends the exchange (MQTT 5 4.3.3): no PUBREL.
                if self.inflight.remove(pos).is_some_and(|i| !i.sent) {
                    self.held = self.held.saturating_sub(1);
                }
                None
            }
            Some(pos) => {
                if let Some(i) = self.inflight.get_mut(pos) {
                    i.state = OutState::Comp;
                    // The PUBREL answering it is this entry's packet on this connection.
                    if !i.sent {
                        i.sent = true;
                        self.held = self.held.saturating_sub(1);
                    }
                }
                Some(ReasonCode::SUCCESS)
            }
            None => Some(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND),
        }
    }

    /// Clears everything but the identity: the state of a session started clean. The caller
    /// removes the subscriptions from the trie first.
    pub fn reset(&mut self) {
        self.subscriptions.clear();
        self.pending_will = None;
        self.inflight.clear();
        self.queue.clear();
        self.queue_bytes = 0;
        self.incoming_qos2.clear();
        self.held = 0;
        self.next_packet_id = 1;
    }
}

/// A publish acknowledgement without properties.
pub(crate) fn ack(packet_id: u16, reason: ReasonCode) -> PubAck {
    PubAck {
        packet_id,
        reason,
        properties: AckProperties::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tenantmq_codec::{ProtocolVersion, TopicName};
    use tenantmq_common::link::device_channel;

    use crate::acl::CompiledAcl;

    fn msg(qos: QoS) -> Message {
        let topic = TopicName::new(ByteString::from_static("t")).unwrap();
        Message::from_publish(
            topic,
            qos,
            false,
            Bytes::from_static(b"x"),
            Default::default(),
            Instant::now(),
        )
    }

    /// A queue limit no test here reaches.
    const ROOMY: QueueLimit = QueueLimit {
        messages: 10,
        bytes: u64::MAX,
    };

    fn put(s: &mut Session, qos: QoS, max_inflight: u16, max_queue: usize) -> Outcome {
        let limit = QueueLimit {
            messages: max_queue,
            bytes: u64::MAX,
        };
        put_within(s, qos, max_inflight, limit)
    }

    fn put_within(s: &mut Session, qos: QoS, max_inflight: u16, limit: QueueLimit) -> Outcome {
        let empty = PublishProperties::default();
        s.deliver(
            &msg(qos),
            qos,
            false,
            SubIds::new(),
            max_inflight,
            limit,
            Instant::now(),
            &empty,
        )
    }

    fn connected(receive_max: u16) -> (Session, tenantmq_common::link::DeviceRx) {
        let (tx, rx) = device_channel();
        let mut s = Session::new(ByteString::from_static("c"));
        let mut conn = Conn::new(tx, ProtocolVersion::V5, CompiledAcl::default());
        conn.client_receive_maximum = receive_max;
        s.conn = Some(conn);
        (s, rx)
    }

    #[test]
    fn the_queue_holds_at_most_its_bytes_and_gives_them_back() {
        let empty = PublishProperties::default();
        let now = Instant::now();
        let size = msg(QoS::AtLeastOnce).size() as u64;
        let limit = QueueLimit {
            messages: 100,
            bytes: 2 * size,
        };
        // Window of one: the first goes in flight, two fit in the queue, the fourth not.
        let (mut s, _rx) = connected(1);
        let outcomes: Vec<_> = (0..4)
            .map(|_| put_within(&mut s, QoS::AtLeastOnce, 10, limit))
            .collect();
        use Outcome::{QueueFull, Queued, Sent};
        assert_eq!(outcomes, vec![Sent, Queued, Queued, QueueFull]);
        assert_eq!(s.queue_bytes, 2 * size);
        // An acknowledgement lets one out of the queue, and its bytes with it.
        assert!(s.complete(1, OutState::Ack));
        assert!(s.drain_queue(10, now, &empty));
        assert_eq!((s.queue.len(), s.queue_bytes), (1, size));
        assert_eq!(put_within(&mut s, QoS::AtLeastOnce, 10, limit), Queued);
        // A clean start empties the count with the queue.
        s.reset();
        assert_eq!(s.queue_bytes, 0);
    }

    #[test]
    fn window_limits_inflight_and_acks_drain_the_queue() {
        let empty = PublishProperties::default();
        let now = Instant::now();
        let (mut s, _rx) = connected(2);
        for _ in 0..5 {
            put(&mut s, QoS::AtLeastOnce, 100, 100);
        }
        assert_eq!(s.inflight.len(), 2);
        assert_eq!(s.queue.len(), 3);
        assert!(s.complete(1, OutState::Ack));
        assert!(!s.complete(1, OutState::Ack), "already completed");
        assert!(s.drain_queue(100, now, &empty));
        assert_eq!((s.inflight.len(), s.queue.len()), (2, 2));
        // The plan's cap wins over a larger client Receive Maximum.
        let (mut s, _rx) = connected(1000);
        for _ in 0..5 {
            put(&mut s, QoS::ExactlyOnce, 3, 100);
        }
        assert_eq!(s.inflight.len(), 3);
    }

    #[test]
    fn qos2_flow_and_unknown_ids() {
        let (mut s, _rx) = connected(10);
        put(&mut s, QoS::ExactlyOnce, 10, 10);
        assert_eq!(
            s.received(1, ReasonCode::SUCCESS),
            Some(ReasonCode::SUCCESS)
        );
        assert_eq!(s.inflight[0].state, OutState::Comp);
        assert_eq!(
            s.received(1, ReasonCode::SUCCESS),
            Some(ReasonCode::SUCCESS),
            "repeated PUBREC"
        );
        assert_eq!(
            s.received(9, ReasonCode::SUCCESS),
            Some(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        );
        assert!(!s.complete(1, OutState::Ack));
        assert!(s.complete(1, OutState::Comp));
        assert!(s.inflight.is_empty());
    }

    #[test]
    fn pubrec_for_a_qos1_id_leaves_the_message_awaiting_puback() {
        let (mut s, _rx) = connected(10);
        put(&mut s, QoS::AtLeastOnce, 10, 10);
        assert_eq!(
            s.received(1, ReasonCode::SUCCESS),
            Some(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        );
        assert_eq!(
            s.received(1, ReasonCode::UNSPECIFIED_ERROR),
            Some(ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        );
        assert_eq!(s.inflight[0].state, OutState::Ack);
        assert!(s.complete(1, OutState::Ack));
    }

    #[test]
    fn failed_pubrec_ends_the_exchange_without_pubrel() {
        let (mut s, _rx) = connected(10);
        put(&mut s, QoS::ExactlyOnce, 10, 10);
        assert_eq!(s.received(1, ReasonCode::QUOTA_EXCEEDED), None);
        assert!(s.inflight.is_empty());
    }

    /// Every packet written to the connection so far, decoded.
    fn written(s: &mut Session, rx: &mut tenantmq_common::link::DeviceRx) -> Vec<Packet> {
        let mut bytes = Vec::new();
        if let Some(conn) = s.conn.as_mut() {
            conn.flush();
        }
        while let Some(chunk) = rx.try_recv() {
            bytes.extend_from_slice(&chunk);
        }
        let mut data = Bytes::from(bytes);
        let mut packets = Vec::new();
        while let Some(h) = tenantmq_codec::frame::check(&data, u32::MAX).unwrap() {
            let frame = data.split_to(h.total_len());
            packets.push(Packet::decode(frame, &h, ProtocolVersion::V5).unwrap());
        }
        assert!(data.is_empty(), "a partial packet was written");
        packets
    }

    /// Replaces the connection, as a resumed session gets a new one.
    fn reconnect(s: &mut Session, receive_max: u16) -> tenantmq_common::link::DeviceRx {
        let (tx, rx) = device_channel();
        let mut conn = Conn::new(tx, ProtocolVersion::V5, CompiledAcl::default());
        conn.client_receive_maximum = receive_max;
        s.conn = Some(conn);
        rx
    }

    fn expiring(secs: u32, now: Instant) -> Message {
        let topic = TopicName::new(ByteString::from_static("t")).unwrap();
        let props = PublishProperties {
            message_expiry_interval: Some(secs),
            ..Default::default()
        };
        Message::from_publish(
            topic,
            QoS::AtLeastOnce,
            false,
            Bytes::from_static(b"e"),
            props,
            now,
        )
    }

    #[test]
    fn resume_resends_publish_with_dup_and_pubrel_for_released_qos2() {
        let empty = PublishProperties::default();
        let now = Instant::now();
        let (mut s, mut rx) = connected(10);
        put(&mut s, QoS::AtLeastOnce, 10, 10);
        put(&mut s, QoS::ExactlyOnce, 10, 10);
        put(&mut s, QoS::ExactlyOnce, 10, 10);
        assert_eq!(
            s.received(3, ReasonCode::SUCCESS),
            Some(ReasonCode::SUCCESS)
        );
        let first: Vec<_> = written(&mut s, &mut rx)
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((p.packet_id, p.dup)),
                _ => None,
            })
            .collect();
        assert_eq!(first, vec![(1, false), (2, false), (3, false)]);

        s.conn = None;
        let mut rx = reconnect(&mut s, 10);
        s.resend_inflight(now);
        s.drain_queue(10, now, &empty);
        let resent = written(&mut s, &mut rx);
        assert_eq!(resent.len(), 3);
        assert!(matches!(&resent[0], Packet::PubRel(a) if a.packet_id == 3));
        for (packet, id) in resent[1..].iter().zip([1u16, 2]) {
            match packet {
                Packet::Publish(p) => assert_eq!((p.packet_id, p.dup), (id, true)),
                other => panic!("expected PUBLISH {id} with DUP, got {other:?}"),
            }
        }
        assert_eq!(s.inflight.len(), 3, "resending does not complete anything");
    }

    /// The PUBLISH packets (id, DUP) among `packets`.
    fn publishes(packets: &[Packet]) -> Vec<(u16, bool)> {
        packets
            .iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((p.packet_id, p.dup)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn resume_resends_within_the_new_receive_maximum_in_order() {
        let empty = PublishProperties::default();
        let now = Instant::now();
        let (mut s, _rx) = connected(10);
        for _ in 0..5 {
            put(&mut s, QoS::AtLeastOnce, 10, 10);
        }
        s.conn = None;
        // Queued while away, behind the five in flight.
        assert_eq!(put(&mut s, QoS::AtLeastOnce, 10, 10), Outcome::Queued);

        let mut rx = reconnect(&mut s, 2);
        s.resend_inflight(now);
        assert!(s.drain_queue(10, now, &empty));
        assert_eq!(
            publishes(&written(&mut s, &mut rx)),
            vec![(1, true), (2, true)]
        );
        assert!(s.has_pending());
        // A new message waits behind the held ones.
        assert_eq!(put(&mut s, QoS::AtLeastOnce, 10, 10), Outcome::Queued);

        // The client acknowledges 4 (received before the resume) ahead of its resend, then
        // 1: the next held one, 3, goes out; 4 is never resent.
        assert!(s.complete(4, OutState::Ack));
        assert!(!s.drain_queue(10, now, &empty), "window still full");
        assert!(s.complete(1, OutState::Ack));
        assert!(s.drain_queue(10, now, &empty));
        assert_eq!(publishes(&written(&mut s, &mut rx)), vec![(3, true)]);
        assert!(s.complete(2, OutState::Ack));
        s.drain_queue(10, now, &empty);
        assert_eq!(publishes(&written(&mut s, &mut rx)), vec![(5, true)]);
        // Held ones done: queued messages follow, new and without DUP.
        assert!(s.complete(3, OutState::Ack));
        s.drain_queue(10, now, &empty);
        assert_eq!(publishes(&written(&mut s, &mut rx)), vec![(6, false)]);
        assert!(s.complete(5, OutState::Ack));
        s.drain_queue(10, now, &empty);
        assert_eq!(publishes(&written(&mut s, &mut rx)), vec![(7, false)]);
        assert!(!s.has_pending());
    }

    #[test]
    fn pubrec_for_a_held_message_releases_it_and_pubrels_do_not_use_the_window() {
        let empty = PublishProperties::default();
        let now = Instant::now();
        let (mut s, _rx) = connected(10);
        for _ in 0..3 {
            put(&mut s, QoS::ExactlyOnce, 10, 10);
        }
        assert_eq!(
            s.received(1, ReasonCode::SUCCESS),
            Some(ReasonCode::SUCCESS)
        );
        let mut rx = reconnect(&mut s, 1);
        s.resend_inflight(now);
        s.drain_queue(10, now, &empty);
        let out = written(&mut s, &mut rx);
        // PUBREL 1 does not count: PUBLISH 2 goes out within Receive Maximum 1.
        assert!(matches!(&out[0], Packet::PubRel(a) if a.packet_id == 1));
        assert_eq!(publishes(&out), vec![(2, true)]);
        // PUBREC for 3, which the client got before the resume: PUBREL, nothing held.
        assert_eq!(
            s.received(3, ReasonCode::SUCCESS),
            Some(ReasonCode::SUCCESS)
        );
        assert!(!s.has_pending());
    }

    #[test]
    fn expired_messages_are_dropped_when_queued_or_in_flight_but_pubrel_survives() {
        let empty = PublishProperties::default();
        let t0 = Instant::now();
        let later = t0 + std::time::Duration::from_secs(2);
        // Offline: queued, then expired by the time the client is back.
        let mut s = Session::new(ByteString::from_static("c"));
        let short = expiring(1, t0);
        let long = expiring(60, t0);
        for m in [&short, &long] {
            assert_eq!(
                s.deliver(
                    m,
                    QoS::AtLeastOnce,
                    false,
                    SubIds::new(),
                    10,
                    ROOMY,
                    t0,
                    &empty
                ),
                Outcome::Queued
            );
        }
        let mut rx = reconnect(&mut s, 10);
        assert!(s.drain_queue(10, later, &empty));
        let sent = written(&mut s, &mut rx);
        assert_eq!(sent.len(), 1);
        match &sent[0] {
            Packet::Publish(p) => assert_eq!(p.properties.message_expiry_interval, Some(58)),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
        // Already expired when routed: dropped at once.
        assert_eq!(
            s.deliver(
                &short,
                QoS::AtLeastOnce,
                false,
                SubIds::new(),
                10,
                ROOMY,
                later,
                &empty
            ),
            Outcome::Dropped
        );

        // In flight: an expired PUBLISH is not resent (the engine's choice: the session drops
        // what outlived its interval), a PUBREL always is.
        let (mut s, _rx) = connected(10);
        for _ in 0..2 {
            s.deliver(
                &short,
                QoS::ExactlyOnce,
                false,
                SubIds::new(),
                10,
                ROOMY,
                t0,
                &empty,
            );
        }
        assert_eq!(
            s.received(2, ReasonCode::SUCCESS),
            Some(ReasonCode::SUCCESS)
        );
        let mut rx = reconnect(&mut s, 10);
        s.resend_inflight(later);
        let resent = written(&mut s, &mut rx);
        assert!(
            matches!(resent.as_slice(), [Packet::PubRel(a)] if a.packet_id == 2),
            "{resent:?}"
        );
        assert_eq!(s.inflight.len(), 1);
    }

    #[test]
    fn messages_above_the_client_maximum_packet_size_are_skipped() {
        let empty = PublishProperties::default();
        let now = Instant::now();
        let (mut s, mut rx) = connected(10);
        if let Some(c) = s.conn.as_mut() {
            c.client_max_packet_size = 20;
        }
        let topic = TopicName::new(ByteString::from_static("t")).unwrap();
        let big = Message::from_publish(
            topic,
            QoS::AtLeastOnce,
            false,
            Bytes::from(vec![0u8; 100]),
            Default::default(),
            now,
        );
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            assert_eq!(
                s.deliver(&big, qos, false, SubIds::new(), 10, ROOMY, now, &empty),
                Outcome::Dropped
            );
        }
        assert!(s.inflight.is_empty() && s.queue.is_empty());
        assert_eq!(put(&mut s, QoS::AtLeastOnce, 10, 10), Outcome::Sent);
        assert_eq!(written(&mut s, &mut rx).len(), 1);
    }

    #[test]
    fn queue_keeps_order_and_reset_clears_everything() {
        let empty = PublishProperties::default();
        let now = Instant::now();
        let mut s = Session::new(ByteString::from_static("c"));
        let topic = TopicName::new(ByteString::from_static("t")).unwrap();
        for i in 0..3u8 {
            let m = Message::from_publish(
                topic.clone(),
                QoS::AtLeastOnce,
                false,
                Bytes::from(vec![i]),
                Default::default(),
                now,
            );
            s.deliver(
                &m,
                QoS::AtLeastOnce,
                false,
                SubIds::new(),
                10,
                ROOMY,
                now,
                &empty,
            );
        }
        let mut rx = reconnect(&mut s, 2);
        s.drain_queue(10, now, &empty);
        let payloads: Vec<u8> = written(&mut s, &mut rx)
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some(p.payload[0]),
                _ => None,
            })
            .collect();
        assert_eq!(payloads, vec![0, 1], "oldest first, within the window");
        s.incoming_qos2.insert(7);
        s.reset();
        assert!(s.inflight.is_empty() && s.queue.is_empty() && s.incoming_qos2.is_empty());
        assert_eq!(s.allocate_packet_id(), 1);
    }

    #[test]
    fn offline_sessions_queue_qos1_drop_qos0_and_respect_the_queue_cap() {
        let mut s = Session::new(ByteString::from_static("c"));
        assert_eq!(put(&mut s, QoS::AtMostOnce, 10, 2), Outcome::Dropped);
        assert_eq!(put(&mut s, QoS::AtLeastOnce, 10, 2), Outcome::Queued);
        assert_eq!(put(&mut s, QoS::AtLeastOnce, 10, 2), Outcome::Queued);
        assert_eq!(put(&mut s, QoS::AtLeastOnce, 10, 2), Outcome::QueueFull);
    }

    #[test]
    fn packet_ids_skip_ids_in_flight_and_wrap() {
        let (mut s, _rx) = connected(u16::MAX);
        s.next_packet_id = u16::MAX;
        put(&mut s, QoS::AtLeastOnce, u16::MAX, 10);
        put(&mut s, QoS::AtLeastOnce, u16::MAX, 10);
        let ids: Vec<u16> = s.inflight.iter().map(|i| i.packet_id).collect();
        assert_eq!(ids, vec![u16::MAX, 1]);
        s.next_packet_id = 1;
        assert_eq!(s.allocate_packet_id(), 2);
    }
}
