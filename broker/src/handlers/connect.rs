//! CONNECT: session lookup, takeover, clean start, limits, CONNACK (spec v5 3.1–3.2,
//! v3.1.1 3.1–3.2).

use bytes::{Bytes, BytesMut};
use tenantmq_codec::{
    ByteString, ConnAck, ConnAckProperties, Connect, DecodeError, Packet, PacketType,
    ProtocolVersion, QoS, ReasonCode, TopicName, frame,
};
use tenantmq_common::link::{Accepted, DeviceTx, OpenSession, Opened, SessionKey};
use tenantmq_common::usage::RejectReason;
use tokio::time::Instant;

use crate::acl::CompiledAcl;
use crate::conn::{Conn, PendingWill};
use crate::engine::{Close, Engine, MAX_CLIENT_ID_LEN};
use crate::message::Message;
use crate::session::Session;

/// Largest CONNECT the engine decodes; the gateway applies its own, smaller pre-auth limit.
const MAX_CONNECT_SIZE: u32 = 1 << 20;

impl Engine {
    /// Opens a session for an authenticated connection.
    pub(crate) fn open(&mut self, open: OpenSession, now: Instant) -> Opened {
        let OpenSession {
            connect,
            auth,
            peer,
            device,
        } = open;
        if !std::sync::Arc::ptr_eq(&self.quotas, &auth.quotas) && *self.quotas != *auth.quotas {
            self.set_quotas(auth.quotas.clone(), now);
        }
        let c = match decode_connect(connect) {
            Ok(c) => c,
            Err((version, reason)) => return self.refuse(device, version, reason),
        };
        let version = c.protocol;
        if let Err(reason) = self.validate(&c) {
            match reason {
                ReasonCode::QOS_NOT_SUPPORTED => {
                    self.stats.rejections.add(RejectReason::QosNotSupported);
                }
                ReasonCode::RETAIN_NOT_SUPPORTED => {
                    self.stats.rejections.add(RejectReason::RetainNotSupported);
                }
                _ => {}
            }
            return self.refuse(device, version, reason);
        }

        // Client identifier (`MQTT-3.1.3-6`, `-7`, `-8`): an empty one gets a unique id; MQTT
        // 3.1.1 allows that only with Clean Session (`MQTT-3.1.3-8`).
        let mut assigned = None;
        let client_id = if c.client_id.is_empty() {
            if version == ProtocolVersion::V311 && !c.clean_start {
                return self.refuse(device, version, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
            }
            let id = ByteString::from(format!("auto-{}", uuid::Uuid::new_v4().simple()));
            if version == ProtocolVersion::V5 {
                assigned = Some(id.clone());
            }
            id
        } else {
            c.client_id.clone()
        };

        let quotas = self.quotas.clone();
        let will = match c.will.as_ref() {
            None => None,
            Some(w) => match TopicName::new(w.topic.clone()) {
                Err(_) => return self.refuse(device, version, ReasonCode::TOPIC_NAME_INVALID),
                Ok(topic) => {
                    let acl = CompiledAcl::compile(&auth.acl, auth.username.as_deref(), &client_id);
                    if is_reserved(&topic) || !acl.allows_publish(&topic) {
                        // The will is dropped, not the connection: checked now, as the ACL of
                        // a connection is fixed at CONNECT.
                        tracing::info!(tenant = %self.tenant, "will message refused by ACL");
                        self.stats.acl_denied += 1;
                        None
                    } else if topic.level_count() > usize::from(quotas.max_topic_levels) {
                        // Treated like a will the ACL refuses: dropped, the connection
                        // accepted (a PUBLISH to such a topic gets 0x97).
                        self.stats.rejections.add(RejectReason::TopicLevels);
                        None
                    } else {
                        let delay = w.properties.will_delay_interval.unwrap_or(0);
                        Some(PendingWill {
                            message: Message::from_will(topic, w, now),
                            delay,
                        })
                    }
                }
            },
        };

        // Session Expiry Interval: MQTT 5 asks for one (default 0); MQTT 3.1.1 has sessions
        // that never expire unless Clean Session. Both are capped by the plan.
        let requested = match version {
            ProtocolVersion::V5 => c.properties.session_expiry_interval.unwrap_or(0),
            ProtocolVersion::V311 if c.clean_start => 0,
            ProtocolVersion::V311 => u32::MAX,
        };
        let expiry = requested.min(quotas.max_session_expiry_secs);
        // 3.1.1 sessions without Clean Session always ask for "forever"; only an MQTT 5
        // request above the cap is a client asking for more than its plan.
        if expiry != requested && version == ProtocolVersion::V5 {
            self.stats.rejections.add(RejectReason::SessionLimit);
        }

        let (slot, session_present) = self.attach(&client_id, c.clean_start, now);
        let generation = self.generation(slot);

        let mut conn = Conn::new(
            device,
            version,
            CompiledAcl::compile(&auth.acl, auth.username.as_deref(), &client_id),
        );
        conn.username = auth.username.clone();
        conn.peer = peer;
        conn.will = will;
        let p = &c.properties;
        if version == ProtocolVersion::V5 {
            conn.client_receive_maximum = p.receive_maximum.unwrap_or(u16::MAX);
            conn.client_max_packet_size = p.maximum_packet_size.unwrap_or(u32::MAX);
            conn.client_topic_alias_maximum = p.topic_alias_maximum.unwrap_or(0);
            conn.request_problem_information = p.request_problem_information.unwrap_or(true);
        }

        // Keep alive (`MQTT-3.1.2-21`): above the plan's maximum, or 0 where the plan has one,
        // MQTT 5 clients are told the Server Keep Alive to use; 3.1.1 clients cannot be told,
        // and the plan's maximum is simply what the gateway enforces.
        let max_ka = quotas.max_keepalive_secs;
        let capped = max_ka != u16::MAX && (c.keep_alive == 0 || c.keep_alive > max_ka);
        let keep_alive = if capped { max_ka } else { c.keep_alive };
        if capped {
            self.stats.rejections.add(RejectReason::SessionLimit);
        }

        let mut ack = ConnAck {
            session_present,
            reason: ReasonCode::SUCCESS,
            ..Default::default()
        };
        if version == ProtocolVersion::V5 {
            ack.properties = ConnAckProperties {
                session_expiry_interval: (expiry != requested).then_some(expiry),
                receive_maximum: (quotas.max_inflight != u16::MAX).then_some(quotas.max_inflight),
                // Maximum QoS may only be sent as 0 or 1 (MQTT 5 3.2.2.3.4).
                maximum_qos: match quotas.maximum_qos {
                    0 => Some(QoS::AtMostOnce),
                    1 => Some(QoS::AtLeastOnce),
                    _ => None,
                },
                retain_available: Some(quotas.retain_available),
                maximum_packet_size: announced_max_packet_size(quotas.max_message_bytes),
                assigned_client_identifier: assigned,
                topic_alias_maximum: (quotas.max_topic_alias > 0).then_some(quotas.max_topic_alias),
                wildcard_subscription_available: Some(quotas.wildcard_subscriptions_available),
                subscription_identifiers_available: Some(quotas.subscription_identifiers_available),
                shared_subscription_available: Some(quotas.shared_subscriptions_available),
                server_keep_alive: (capped).then_some(keep_alive),
                ..Default::default()
            };
        }
        conn.write_packet(&Packet::ConnAck(ack));

        let max_inflight = quotas.max_inflight;
        let empty = &self.empty_props;
        if let Some(session) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.session.as_mut())
        {
            session.expiry_interval = expiry;
            session.conn = Some(conn);
            if session_present {
                session.resend_inflight(now);
                session.drain_queue(max_inflight, now, empty);
            }
        }
        self.mark_dirty(slot);
        self.stats.connections_opened += 1;
        tracing::debug!(tenant = %self.tenant, client_id = %client_id, ?peer, session_present, "client connected");
        Opened::Accepted(Accepted {
            session: SessionKey { slot, generation },
            keep_alive,
            max_packet_size: quotas.max_message_bytes,
            engine: self.mailbox.clone(),
        })
    }

    /// Checks what the plan allows before anything changes (`MQTT-3.2.2-12` and friends).
    fn validate(&self, c: &Connect) -> Result<(), ReasonCode> {
        if c.client_id.len() > MAX_CLIENT_ID_LEN {
            return Err(ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
        }
        if c.properties.authentication_method.is_some() {
            // Enhanced authentication is not offered (MQTT 5 4.12).
            return Err(ReasonCode::BAD_AUTHENTICATION_METHOD);
        }
        if let Some(w) = &c.will {
            if w.qos as u8 > self.quotas.maximum_qos {
                return Err(ReasonCode::QOS_NOT_SUPPORTED);
            }
            if w.retain && !self.quotas.retain_available {
                return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
            }
        }
        Ok(())
    }

    /// Finds or creates the session of `client_id`, taking over a live connection (v5:
    /// DISCONNECT 0x8E, `MQTT-3.1.4-3`) and discarding state for Clean Start. Returns the slot
    /// (already on a new generation) and Session Present.
    fn attach(&mut self, client_id: &ByteString, clean_start: bool, now: Instant) -> (u32, bool) {
        let Some(&slot) = self.by_client_id.get(client_id) else {
            return (self.allocate(Session::new(client_id.clone())), false);
        };
        if self.session(slot).is_some_and(|s| s.conn.is_some()) {
            // The old connection's will follows the usual rules; with a delay it is dropped
            // because a new connection resumes the session (`MQTT-3.1.3-9`) — unless the new
            // connection starts clean, which ends the old session and releases the will.
            self.close(slot, Close::TakenOver, now);
        }
        if self.session(slot).is_none() {
            // The old session ended on close (expiry 0).
            return (self.allocate(Session::new(client_id.clone())), false);
        }
        self.bump_generation(slot);
        if clean_start {
            let pending = self.session_mut(slot).and_then(|s| s.pending_will.take());
            if let Some(will) = pending {
                self.publish_will(will, now);
            }
            let subs: Vec<_> = self
                .session(slot)
                .map(|s| s.subscriptions.values().cloned().collect())
                .unwrap_or_default();
            for sub in &subs {
                self.unlink_subscription(slot, sub);
            }
            if let Some(s) = self.session_mut(slot) {
                s.reset();
            }
            (slot, false)
        } else {
            if let Some(s) = self.session_mut(slot) {
                s.pending_will = None;
            }
            (slot, true)
        }
    }

    /// Answers a refused CONNECT and drops the connection.
    fn refuse(&mut self, device: DeviceTx, version: ProtocolVersion, reason: ReasonCode) -> Opened {
        self.stats.connections_refused += 1;
        let ack = ConnAck {
            session_present: false,
            reason,
            ..Default::default()
        };
        let packet = Packet::ConnAck(ack);
        let mut out = BytesMut::with_capacity(packet.encoded_len(version));
        if packet.encode(version, &mut out).is_ok() {
            let _ = device.try_send(out.freeze());
        }
        Opened::Refused
    }
}

/// Largest packet MQTT can express: a 268,435,455-byte remaining length behind a five-byte
/// fixed header.
const PROTOCOL_MAX_PACKET_SIZE: u32 = frame::MAX_REMAINING_LENGTH + 5;

/// The Maximum Packet Size to put in CONNACK for a plan limit of `limit` bytes.
///
/// Absent means "no limit beyond the protocol's" (MQTT 5 3.2.2.3.6), which is exactly what a
/// limit at the protocol maximum is. Real clients also refuse values above 268,435,455 as if
/// the property were a Variable Byte Integer (paho-mqtt for Python drops the connection), so a
/// limit in the last few bytes below the protocol maximum is announced as 268,435,455: a
/// little stricter than enforced, never looser.
fn announced_max_packet_size(limit: u32) -> Option<u32> {
    (limit < PROTOCOL_MAX_PACKET_SIZE).then_some(limit.min(frame::MAX_REMAINING_LENGTH))
}

/// Topics clients may not publish to: the broker's own `$SYS` tree.
pub(crate) fn is_reserved(topic: &TopicName) -> bool {
    let t = topic.as_str();
    t == "$SYS" || t.starts_with("$SYS/")
}

/// Decodes the CONNECT frame. On failure, returns the version to answer in (from the protocol
/// level byte when readable) and the CONNACK reason.
fn decode_connect(data: Bytes) -> Result<Box<Connect>, (ProtocolVersion, ReasonCode)> {
    let version = guess_version(&data);
    let header = match frame::check(&data, MAX_CONNECT_SIZE) {
        Ok(Some(h)) if h.packet_type == PacketType::Connect && h.total_len() == data.len() => h,
        Ok(_) => return Err((version, ReasonCode::MALFORMED_PACKET)),
        Err(e) => return Err((version, e.reason_code())),
    };
    match Packet::decode(data, &header, version) {
        Ok(Packet::Connect(c)) => Ok(c),
        Ok(_) => Err((version, ReasonCode::PROTOCOL_ERROR)),
        // An unsupported level is answered in 3.1.1 form, which every client understands
        // (`MQTT-3.1.2-2`: return code 0x01).
        Err(DecodeError::UnsupportedProtocolVersion) => Err((
            ProtocolVersion::V311,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
        )),
        Err(e) => Err((version, e.reason_code())),
    }
}

/// The protocol level byte of a CONNECT, read without decoding it.
fn guess_version(data: &[u8]) -> ProtocolVersion {
    // Fixed header (2–5 bytes), then a two-byte length and "MQTT", then the level.
    let header_len = 1
        + data
            .iter()
            .skip(1)
            .take(4)
            .position(|b| b & 0x80 == 0)
            .unwrap_or(0)
        + 1;
    match data.get(header_len + 6) {
        Some(5) => ProtocolVersion::V5,
        _ => ProtocolVersion::V311,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_packet_size_is_omitted_at_the_protocol_limit_and_never_above_what_clients_parse() {
        assert_eq!(announced_max_packet_size(128 * 1024), Some(128 * 1024));
        assert_eq!(announced_max_packet_size(PROTOCOL_MAX_PACKET_SIZE), None);
        assert_eq!(announced_max_packet_size(u32::MAX), None);
        assert_eq!(
            announced_max_packet_size(PROTOCOL_MAX_PACKET_SIZE - 1),
            Some(frame::MAX_REMAINING_LENGTH)
        );
    }
}
