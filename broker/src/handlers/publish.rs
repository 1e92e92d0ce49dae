//! PUBLISH from a client (spec v5 3.3, 4.3; v3.1.1 3.3, 4.3).

use tenantmq_codec::{ByteString, Packet, ProtocolVersion, Publish, QoS, ReasonCode, TopicName};
use tenantmq_common::usage::RejectReason;
use tokio::time::Instant;

use super::connect::is_reserved;
use crate::engine::Engine;
use crate::message::Message;
use crate::session::ack;

/// Reason String of a PUBLISH refused for the client's or the tenant's rate or bandwidth.
const RATE_REFUSED: &str = "message rate too high";

/// Reason String of a PUBLISH whose topic has more levels than the plan allows.
const TOO_MANY_LEVELS: &str = "topic has too many levels";

/// Reason String of a retained PUBLISH beyond the retained-message quota.
const RETAINED_FULL: &str = "retained message quota exceeded";

impl Engine {
    /// Handles PUBLISH. `over_rate` says the message arrived beyond the client's or the
    /// tenant's rate allowance (see `limits.rs`) and must be refused. `Err` carries the reason
    /// code that ends the connection.
    pub(crate) fn on_publish(
        &mut self,
        slot: u32,
        p: Publish,
        over_rate: bool,
        now: Instant,
    ) -> Result<(), ReasonCode> {
        let quotas = self.quotas.clone();
        // The server told the client what it supports; sending more is an error
        // (`MQTT-3.2.2-11`, `MQTT-3.2.2-14`), answered with DISCONNECT 0x9B / 0x9A (MQTT 5)
        // or a closed connection (3.1.1, which cannot name the reason).
        if p.qos as u8 > quotas.maximum_qos {
            self.stats.rejections.add(RejectReason::QosNotSupported);
            return Err(ReasonCode::QOS_NOT_SUPPORTED);
        }
        if p.retain && !quotas.retain_available {
            self.stats.rejections.add(RejectReason::RetainNotSupported);
            return Err(ReasonCode::RETAIN_NOT_SUPPORTED);
        }
        let Some(session) = self.session_mut(slot) else {
            return Ok(());
        };
        let Some(conn) = session.conn.as_mut() else {
            return Ok(());
        };
        let version = conn.version;

        let topic = match p.properties.topic_alias {
            Some(alias) => {
                let named = if p.topic.is_empty() {
                    None
                } else {
                    Some(TopicName::new(p.topic).map_err(|_| ReasonCode::TOPIC_NAME_INVALID)?)
                };
                conn.resolve_alias(alias, named, quotas.max_topic_alias)
                    .map_err(|e| match e {
                        crate::conn::AliasError::Invalid => ReasonCode::TOPIC_ALIAS_INVALID,
                        crate::conn::AliasError::Unknown => ReasonCode::PROTOCOL_ERROR,
                    })?
            }
            // A zero-length topic without an alias is a protocol error (MQTT 5 3.3.2.1).
            None if p.topic.is_empty() => return Err(ReasonCode::PROTOCOL_ERROR),
            None => TopicName::new(p.topic).map_err(|_| ReasonCode::TOPIC_NAME_INVALID)?,
        };
        let allowed = !is_reserved(&topic) && conn.acl.allows_publish(&topic);
        let resend = p.qos == QoS::ExactlyOnce && session.incoming_qos2.contains(&p.packet_id);
        let awaiting_release = session.incoming_qos2.len();

        // A QoS 2 packet id still awaiting PUBREL is a resend: acknowledge again, deliver once
        // (`MQTT-4.3.3-9`).
        if resend {
            self.write(slot, &Packet::PubRec(ack(p.packet_id, ReasonCode::SUCCESS)));
            return Ok(());
        }
        if p.qos == QoS::ExactlyOnce && awaiting_release >= usize::from(quotas.max_inflight) {
            // More than the Receive Maximum we announced (`MQTT-3.3.4-8`).
            self.stats.rejections.add(RejectReason::Inflight);
            return Err(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
        }

        let payload_ok = p.properties.payload_format_indicator != Some(1)
            || std::str::from_utf8(&p.payload).is_ok();
        // Limits are refused with 0x97 Quota exceeded and a Reason String naming the limit:
        // 0x96 Message rate too high exists only in DISCONNECT (MQTT 5 3.14.2.1), and the
        // PUBACK/PUBREC codes (3.4.2.1, 3.5.2.1) have nothing closer for a rate.
        let refusal = if over_rate {
            // Counted where the rate was found exceeded (gateway or `limits.rs`).
            Some((ReasonCode::QUOTA_EXCEEDED, Some(RATE_REFUSED)))
        } else if !allowed {
            self.stats.acl_denied += 1;
            Some((ReasonCode::NOT_AUTHORIZED, None))
        } else if !payload_ok {
            // The receiver may check a payload declared UTF-8 (MQTT 5 3.3.2.3.2).
            Some((ReasonCode::PAYLOAD_FORMAT_INVALID, None))
        } else if topic.level_count() > usize::from(quotas.max_topic_levels) {
            self.stats.rejections.add(RejectReason::TopicLevels);
            Some((ReasonCode::QUOTA_EXCEEDED, Some(TOO_MANY_LEVELS)))
        } else if p.retain && !self.retained_fits(&topic, p.payload.len()) {
            // Refused entirely — not stored, not delivered — so that the publisher learns
            // (MQTT 5) that its retained state did not change.
            self.stats.rejections.add(RejectReason::RetainedQuota);
            Some((ReasonCode::QUOTA_EXCEEDED, Some(RETAINED_FULL)))
        } else {
            None
        };

        self.stats.messages_in += 1;
        self.stats.bytes_in += p.payload.len() as u64;
        let mut reason = ReasonCode::SUCCESS;
        let mut why = None;
        match refusal {
            // MQTT 3.1.1 cannot report a refusal; the message is acknowledged and dropped
            // (`MQTT-3.3.5-2`: acknowledge positively or close; closing would make a device
            // that is merely too fast resend everything). MQTT 5 gets the reason in
            // PUBACK/PUBREC (3.4.2.1); QoS 0 is dropped.
            Some((rc, text)) if version == ProtocolVersion::V5 => (reason, why) = (rc, text),
            Some(_) => {}
            None => {
                let msg =
                    Message::from_publish(topic, p.qos, p.retain, p.payload, p.properties, now);
                if msg.retain {
                    self.store_retained(&msg);
                }
                if self.route(&msg, Some(slot), now) == 0 && version == ProtocolVersion::V5 {
                    reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
                }
            }
        }

        let mut answer = ack(p.packet_id, reason);
        answer.properties.reason_string = why.map(ByteString::from_static);
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.write(slot, &Packet::PubAck(answer)),
            QoS::ExactlyOnce => {
                // A failed PUBREC ends the exchange, so only successful ones are remembered.
                if !reason.is_error()
                    && let Some(s) = self.session_mut(slot)
                {
                    s.incoming_qos2.insert(p.packet_id);
                }
                self.write(slot, &Packet::PubRec(answer));
            }
        }
        Ok(())
    }
}
