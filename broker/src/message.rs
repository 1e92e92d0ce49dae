//! A message as the engine keeps it once it must outlive the packet that brought it: in a
//! session's queue, in flight towards a client, as a retained message or a will.
//!
//! Cloning a [`Message`] costs reference-count increments only: topic and payload are slices
//! of the frame they arrived in, and the message-level MQTT 5 properties are shared behind an
//! `Arc` that exists only when the publisher sent some.

use std::sync::Arc;

use bytes::Bytes;
use bytestring::ByteString;
use tenantmq_codec::{PublishProperties, QoS, TopicName, Will};
use tokio::time::{Duration, Instant};

/// A message in the engine.
#[derive(Clone, Debug)]
pub(crate) struct Message {
    /// The full topic name (aliases already resolved).
    pub topic: TopicName,
    /// Application payload.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// RETAIN flag it was published with.
    pub retain: bool,
    /// Message-level properties (payload format, response topic, correlation data, user
    /// properties, content type); `None` when there are none. Per-hop properties (topic alias,
    /// subscription identifiers, expiry) are never stored here.
    pub props: Option<Arc<PublishProperties>>,
    /// When the Message Expiry Interval runs out (`MQTT-3.3.2-5`).
    pub expires_at: Option<Instant>,
}

/// The message outlived its Message Expiry Interval and must not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expired;

impl Message {
    /// Builds a message from a received PUBLISH whose topic is resolved to `topic`.
    pub fn from_publish(
        topic: TopicName,
        qos: QoS,
        retain: bool,
        payload: Bytes,
        mut props: PublishProperties,
        now: Instant,
    ) -> Self {
        let expires_at = props
            .message_expiry_interval
            .map(|s| now + Duration::from_secs(s.into()));
        props.topic_alias = None;
        props.message_expiry_interval = None;
        props.subscription_identifiers.clear();
        Self {
            topic,
            payload,
            qos,
            retain,
            props: shared_props(props),
            expires_at,
        }
    }

    /// Builds the message a will stands for.
    pub fn from_will(topic: TopicName, will: &Will, now: Instant) -> Self {
        let p = &will.properties;
        let props = PublishProperties {
            payload_format_indicator: p.payload_format_indicator,
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation_data.clone(),
            user_properties: p.user_properties.clone(),
            content_type: p.content_type.clone(),
            ..PublishProperties::default()
        };
        Self {
            topic,
            payload: will.payload.clone(),
            qos: will.qos,
            retain: will.retain,
            props: shared_props(props),
            expires_at: p
                .message_expiry_interval
                .map(|s| now + Duration::from_secs(s.into())),
        }
    }

    /// The Message Expiry Interval to send now: the time left, rounded up so that a message
    /// with a few milliseconds left is still delivered with a non-zero interval
    /// (`MQTT-3.3.2-6`).
    pub fn remaining_expiry(&self, now: Instant) -> Result<Option<u32>, Expired> {
        let Some(at) = self.expires_at else {
            return Ok(None);
        };
        let left = at.saturating_duration_since(now);
        if left.is_zero() {
            return Err(Expired);
        }
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Ok(Some(u32::try_from(secs).unwrap_or(u32::MAX)))
    }

    /// A copy that shares no memory with the packet it came in. A retained message is kept
    /// for long, and a zero-copy slice would keep the whole read buffer it arrived in (often
    /// holding other packets too) allocated with it.
    pub fn detached(&self) -> Self {
        Self {
            topic: TopicName::new(ByteString::from(self.topic.as_str()))
                .unwrap_or_else(|_| self.topic.clone()),
            payload: Bytes::copy_from_slice(&self.payload),
            props: self.props.as_deref().map(|p| Arc::new(detached_props(p))),
            ..self.clone()
        }
    }

    /// Payload bytes this message accounts for in quotas.
    pub fn size(&self) -> usize {
        self.payload.len() + self.topic.as_str().len()
    }
}

fn copy_str(s: &ByteString) -> ByteString {
    ByteString::from(&**s)
}

fn detached_props(p: &PublishProperties) -> PublishProperties {
    PublishProperties {
        response_topic: p.response_topic.as_ref().map(copy_str),
        correlation_data: p.correlation_data.as_deref().map(Bytes::copy_from_slice),
        user_properties: p
            .user_properties
            .iter()
            .map(|(k, v)| (copy_str(k), copy_str(v)))
            .collect(),
        content_type: p.content_type.as_ref().map(copy_str),
        ..p.clone()
    }
}

fn shared_props(props: PublishProperties) -> Option<Arc<PublishProperties>> {
    (props != PublishProperties::default()).then(|| Arc::new(props))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `part` lies inside `whole`'s memory.
    fn within(part: &[u8], whole: &[u8]) -> bool {
        let range = whole.as_ptr_range();
        range.contains(&part.as_ptr())
    }

    #[test]
    fn a_detached_message_shares_no_memory_with_its_packet() {
        let packet = Bytes::from_static(b"room/1 hello ct rt cd key value");
        let slice = |from: usize, to: usize| packet.slice(from..to);
        let text = |from: usize, to: usize| ByteString::try_from(slice(from, to)).expect("utf-8");
        let props = PublishProperties {
            content_type: Some(text(13, 15)),
            response_topic: Some(text(16, 18)),
            correlation_data: Some(slice(19, 21)),
            user_properties: vec![(text(22, 25), text(26, 31))],
            ..Default::default()
        };
        let now = Instant::now();
        let topic = TopicName::new(text(0, 6)).unwrap();
        let m = Message::from_publish(topic, QoS::AtLeastOnce, true, slice(7, 12), props, now);
        let d = m.detached();
        let p = d.props.as_deref().unwrap();
        let (k, v) = &p.user_properties[0];
        let parts: [&[u8]; 7] = [
            d.topic.as_str().as_bytes(),
            &d.payload,
            p.content_type.as_deref().unwrap().as_bytes(),
            p.response_topic.as_deref().unwrap().as_bytes(),
            p.correlation_data.as_deref().unwrap(),
            k.as_bytes(),
            v.as_bytes(),
        ];
        for part in parts {
            assert!(
                !within(part, &packet),
                "{part:?} still points into the packet"
            );
        }
        assert_eq!(d.topic, m.topic);
        assert_eq!(d.payload, m.payload);
        assert_eq!(d.props, m.props);
        assert_eq!((d.qos, d.retain), (m.qos, m.retain));
    }

    fn topic(s: &'static str) -> TopicName {
        TopicName::new(ByteString::from_static(s)).unwrap()
    }

    #[test]
    fn per_hop_properties_are_not_stored_and_empty_props_are_none() {
        let now = Instant::now();
        let props = PublishProperties {
            topic_alias: Some(3),
            subscription_identifiers: [7].into_iter().collect(),
            ..Default::default()
        };
        let m = Message::from_publish(topic("a"), QoS::AtMostOnce, false, Bytes::new(), props, now);
        assert!(m.props.is_none());
        assert!(m.expires_at.is_none());
    }

    #[test]
    fn remaining_expiry_rounds_up_and_expires() {
        let now = Instant::now();
        let props = PublishProperties {
            message_expiry_interval: Some(10),
            ..Default::default()
        };
        let m = Message::from_publish(
            topic("a"),
            QoS::AtLeastOnce,
            false,
            Bytes::new(),
            props,
            now,
        );
        assert_eq!(m.remaining_expiry(now), Ok(Some(10)));
        assert_eq!(
            m.remaining_expiry(now + Duration::from_millis(9_500)),
            Ok(Some(1))
        );
        assert_eq!(
            m.remaining_expiry(now + Duration::from_secs(10)),
            Err(Expired)
        );
    }
}
