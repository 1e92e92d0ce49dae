//! SUBSCRIBE (spec v5 3.8–3.9, 4.8; v3.1.1 3.8–3.9).

use bytestring::ByteString;
use tenantmq_codec::{
    Packet, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeFilter,
    topic::parse_subscription,
};
use tenantmq_common::usage::RejectReason;
use tokio::time::Instant;

use crate::engine::Engine;
use crate::route::SubEntry;
use crate::session::Subscription;

/// The outcome of one filter: granted (and whether retained messages follow) or refused.
enum Granted {
    Yes {
        sub: Subscription,
        send_retained: bool,
    },
    No(ReasonCode),
}

impl Engine {
    /// Handles SUBSCRIBE: one reason code per filter in SUBACK, then the retained messages of
    /// the new subscriptions.
    pub(crate) fn on_subscribe(
        &mut self,
        slot: u32,
        s: Subscribe,
        now: Instant,
    ) -> Result<(), ReasonCode> {
        let sub_id = s.properties.subscription_identifier;
        // CONNACK announced them unavailable: a SUBSCRIBE carrying one is answered with
        // DISCONNECT 0xA1 (MQTT 5 3.2.2.3.12). Only MQTT 5 packets carry the property.
        if sub_id.is_some() && !self.quotas.subscription_identifiers_available {
            self.stats
                .rejections
                .add(RejectReason::SubscriptionIdsNotSupported);
            return Err(ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
        }
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut retained = Vec::new();
        for f in s.filters {
            match self.subscribe_one(slot, f, sub_id)? {
                Granted::Yes { sub, send_retained } => {
                    reasons.push(ReasonCode(sub.options.qos as u8));
                    if send_retained {
                        retained.push(sub);
                    }
                }
                Granted::No(rc) => reasons.push(rc),
            }
        }
        let suback = SubAck {
            packet_id: s.packet_id,
            reasons,
            properties: Default::default(),
        };
        self.write(slot, &Packet::SubAck(suback));
        for sub in &retained {
            self.send_retained(slot, sub, now);
        }
        Ok(())
    }

    /// Validates and records one filter. `Err` is a protocol error that ends the connection.
    fn subscribe_one(
        &mut self,
        slot: u32,
        f: SubscribeFilter,
        id: Option<u32>,
    ) -> Result<Granted, ReasonCode> {
        let q = self.quotas.clone();
        let no = |rc| Ok(Granted::No(rc));
        // A copy of its own: the subscription lives as long as the session, and a slice of the
        // SUBSCRIBE would keep the whole read buffer it arrived in allocated.
        let key = ByteString::from(&*f.filter);
        let Ok((group, filter)) = parse_subscription(key.clone()) else {
            return no(ReasonCode::TOPIC_FILTER_INVALID);
        };
        if group.is_some() {
            // No Local on a shared subscription is a protocol error (`MQTT-3.8.3-4`).
            if f.options.no_local {
                return Err(ReasonCode::PROTOCOL_ERROR);
            }
            // CONNACK announced it (MQTT 5 3.2.2.3.13); SUBACK 0x9E refuses this filter only
            // (3.9.3), which 3.1.1 clients see as 0x80.
            if !q.shared_subscriptions_available {
                self.stats.rejections.add(RejectReason::SharedNotSupported);
                return no(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
            }
        }
        if filter.has_wildcards() && !q.wildcard_subscriptions_available {
            // As above (3.2.2.3.11): SUBACK 0xA2 for this filter.
            self.stats
                .rejections
                .add(RejectReason::WildcardNotSupported);
            return no(ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
        }
        // The shared-subscription prefix does not count: the levels are the filter's.
        if filter.level_count() > usize::from(q.max_topic_levels) {
            self.stats.rejections.add(RejectReason::TopicLevels);
            return no(ReasonCode::QUOTA_EXCEEDED);
        }
        let Some(session) = self.session(slot) else {
            return no(ReasonCode::UNSPECIFIED_ERROR);
        };
        let Some(conn) = session.conn.as_ref() else {
            return no(ReasonCode::UNSPECIFIED_ERROR);
        };
        if !conn.acl.allows_subscribe(&filter) {
            self.stats.acl_denied += 1;
            return no(ReasonCode::NOT_AUTHORIZED);
        }
        let existed = session.subscriptions.contains_key(&key);
        // A repeated filter replaces the subscription (`MQTT-3.8.4-3`), so it never counts
        // against the limit.
        if !existed
            && (session.subscriptions.len() >= q.max_subscriptions_per_client as usize
                || self.subscription_count >= q.max_subscriptions_per_tenant as usize)
        {
            self.stats.rejections.add(RejectReason::SubscriptionQuota);
            return no(ReasonCode::QUOTA_EXCEEDED);
        }
        let mut options = f.options;
        options.qos = options
            .qos
            .min(QoS::from_u8(q.maximum_qos).unwrap_or(QoS::ExactlyOnce));
        if conn.version == ProtocolVersion::V311 {
            // 3.1.1 has neither option; the codec leaves them false, this keeps it so.
            options.no_local = false;
            options.retain_as_published = false;
        }
        let sub = Subscription {
            filter,
            group,
            options,
            id,
        };
        self.subs
            .entry(&sub.filter)
            .upsert(sub.group.as_ref(), SubEntry { slot, options, id });
        if let Some(s) = self.session_mut(slot)
            && s.subscriptions.insert(key, sub.clone()).is_none()
        {
            self.subscription_count += 1;
        }
        // Retained messages go to new non-shared subscriptions only (MQTT 5 4.8.2), as
        // Retain Handling says (`MQTT-3.3.1-9` to `-11`).
        let send_retained = sub.group.is_none()
            && match options.retain_handling {
                RetainHandling::SendOnSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
        Ok(Granted::Yes { sub, send_retained })
    }
}
