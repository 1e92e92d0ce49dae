//! UNSUBSCRIBE (spec v5 3.10–3.11, v3.1.1 3.10–3.11).

use tenantmq_codec::{Packet, ReasonCode, UnsubAck, Unsubscribe, topic::parse_subscription};

use crate::engine::Engine;

impl Engine {
    /// Handles UNSUBSCRIBE: removes each filter exactly as it was subscribed (shared ones by
    /// their full `$share/<group>/<filter>` text) and answers UNSUBACK.
    pub(crate) fn on_unsubscribe(&mut self, slot: u32, u: &Unsubscribe) -> Result<(), ReasonCode> {
        let mut reasons = Vec::with_capacity(u.filters.len());
        for text in &u.filters {
            if parse_subscription(text.clone()).is_err() {
                reasons.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            }
            let removed = self
                .session_mut(slot)
                .and_then(|s| s.subscriptions.remove(text));
            match removed {
                Some(sub) => {
                    self.unlink_subscription(slot, &sub);
                    reasons.push(ReasonCode::SUCCESS);
                }
                None => reasons.push(ReasonCode::NO_SUBSCRIPTION_EXISTED),
            }
        }
        let unsuback = UnsubAck {
            packet_id: u.packet_id,
            reasons,
            properties: Default::default(),
        };
        self.write(slot, &Packet::UnsubAck(unsuback));
        Ok(())
    }
}
