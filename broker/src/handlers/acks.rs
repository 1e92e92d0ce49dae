//! PUBACK, PUBREC, PUBREL and PUBCOMP from a client: the QoS 1 and QoS 2 flows (spec v5 4.3).

use tenantmq_codec::{Packet, PubAck, ReasonCode};
use tokio::time::Instant;

use crate::engine::Engine;
use crate::session::{OutState, ack};

impl Engine {
    /// PUBACK: a QoS 1 delivery is done; the window has room for the next.
    pub(crate) fn on_puback(
        &mut self,
        slot: u32,
        a: &PubAck,
        now: Instant,
    ) -> Result<(), ReasonCode> {
        if let Some(s) = self.session_mut(slot) {
            s.complete(a.packet_id, OutState::Ack);
        }
        self.refill(slot, now);
        Ok(())
    }

    /// PUBREC: answer PUBREL (0x92 when the id is unknown).
    pub(crate) fn on_pubrec(&mut self, slot: u32, a: &PubAck) -> Result<(), ReasonCode> {
        let Some(s) = self.session_mut(slot) else {
            return Ok(());
        };
        // A PUBREC reporting failure ends the exchange; nothing is sent back.
        if let Some(reason) = s.received(a.packet_id, a.reason) {
            self.write(slot, &Packet::PubRel(ack(a.packet_id, reason)));
        }
        Ok(())
    }

    /// PUBREL: the client releases an incoming QoS 2 message; answer PUBCOMP.
    pub(crate) fn on_pubrel(&mut self, slot: u32, a: &PubAck) -> Result<(), ReasonCode> {
        let Some(s) = self.session_mut(slot) else {
            return Ok(());
        };
        let reason = if s.incoming_qos2.remove(&a.packet_id) {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        self.write(slot, &Packet::PubComp(ack(a.packet_id, reason)));
        Ok(())
    }

    /// PUBCOMP: a QoS 2 delivery is done.
    pub(crate) fn on_pubcomp(
        &mut self,
        slot: u32,
        a: &PubAck,
        now: Instant,
    ) -> Result<(), ReasonCode> {
        if let Some(s) = self.session_mut(slot) {
            s.complete(a.packet_id, OutState::Comp);
        }
        self.refill(slot, now);
        Ok(())
    }

    /// Moves queued messages into the freed window.
    fn refill(&mut self, slot: u32, now: Instant) {
        let max_inflight = self.quotas.max_inflight;
        let empty = &self.empty_props;
        let Some(s) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.session.as_mut())
        else {
            return;
        };
        if s.has_pending() && s.drain_queue(max_inflight, now, empty) {
            self.mark_dirty(slot);
        }
    }
}
