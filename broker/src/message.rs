//! A message as the engine keeps it once it must outlive the packet that brought it: in a
//! session's queue, in flight towards a client, as a retained message or a will.
//!
//! Cloning a [`Message`] costs reference-count increments only: topic and payload are slices
//! of the frame they arrived in, and the message-level MQTT 5 properties are shared behind an
//! `Arc` that exists only when the publisher sent some.

use std::sync::Arc;

use bytes::Bytes;
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

    /// Payload bytes this message accounts for in quotas.
    pub fn size(&self) -> usize {
        self.payload.len() + self.topic.as_str().len()
    }
}

fn shared_props(props: PublishProperties) -> Option<Arc<PublishProperties>> {
    (props != PublishProperties::default()).then(|| Arc::new(props))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytestring::ByteString;

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
