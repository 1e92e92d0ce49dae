//! The publisher role: stamps and encodes PUBLISH packets in batches, at a fixed rate or as
//! fast as the broker reads, keeping at most a window of QoS 1/2 messages unacknowledged.
//!
//! At max rate the publisher encodes up to [`WRITE_BATCH_BYTES`] per batch, all stamped with
//! the one clock reading of the batch.
//!
//! At a fixed rate, message n of a publisher is due at `start + offset + n × interval` (the
//! offset spreads the publishers over one interval). Its stamp is chosen so that latency
//! measures the broker, not the tool, and never hides the broker's stalls (no coordinated
//! omission):
//! * while the broker holds the publisher back — its in-flight window is full, or it does not
//!   read what was written — every message that falls due carries its *due* time, so the
//!   wait is charged to the broker in full, until the backlog is sent;
//! * otherwise a message carries the time it is encoded, a little after its due time: the
//!   difference is the tool's timer resolution (1 ms in tokio) and thread scheduling, which
//!   would otherwise add up to a millisecond to every latency.
//!
//! Either way the rate holds: the schedule, not the send times, decides what is due.

use std::time::Instant;

use bytes::BytesMut;
use tenantmq_codec::{
    Packet, ProtocolVersion, PubAck, PublishHeader, PublishProperties, QoS, ReasonCode,
    encode_publish,
};

use crate::conn::{Role, WRITE_BATCH_BYTES};
use crate::error::ConnError;
use crate::payload::Stamp;
use crate::shard::{Phase, Phased, Progress, ShardState, Times, nanos};

/// A publisher connection.
pub(crate) struct Publisher<'a> {
    state: &'a ShardState,
    publisher: u32,
    topic: String,
    qos: QoS,
    props: PublishProperties,
    payload: Vec<u8>,
    /// Sequence number of the next message.
    seq: u32,
    times: Option<Times>,
    /// Fixed rate: due time of message 0 and the interval, ns since the epoch.
    schedule: Option<(u64, u64)>,
    /// Fixed rate: due time of the first message the broker held back, while the backlog
    /// lasts.
    blocked_since: Option<u64>,
    stopping: bool,
    inflight: Option<InFlight>,
    /// Most messages in flight: `--inflight`, capped by the broker's Receive Maximum.
    window: u32,
    unflushed: u64,
    published: u64,
    published_in_window: u64,
    drained: bool,
}

impl<'a> Publisher<'a> {
    pub(crate) fn new(
        state: &'a ShardState,
        publisher: u32,
        topic: String,
        receive_maximum: u16,
    ) -> Self {
        let p = &state.params;
        Self {
            state,
            publisher,
            topic,
            qos: p.qos,
            props: PublishProperties::default(),
            payload: vec![0; p.payload],
            seq: 0,
            times: None,
            schedule: None,
            blocked_since: None,
            stopping: false,
            inflight: (p.qos != QoS::AtMostOnce).then(InFlight::new),
            window: u32::from(p.inflight.min(receive_maximum)),
            unflushed: 0,
            published: 0,
            published_in_window: 0,
            drained: false,
        }
    }

    /// When message `seq` is due at a fixed rate, in ns since the epoch.
    fn due(&self, seq: u32) -> Option<u64> {
        let (first, interval) = self.schedule?;
        Some(first.saturating_add(u64::from(seq).saturating_mul(interval)))
    }

    fn room(&self) -> u32 {
        match &self.inflight {
            None => u32::MAX,
            Some(f) => self.window.saturating_sub(f.count),
        }
    }
}

impl Role for Publisher<'_> {
    fn on_packet(
        &mut self,
        packet: Packet,
        _now: Instant,
        out: &mut BytesMut,
        version: ProtocolVersion,
    ) -> Result<(), ConnError> {
        let Some(inflight) = &mut self.inflight else {
            return Err(ConnError::Unexpected("an acknowledgement at QoS 0"));
        };
        match packet {
            Packet::PubAck(a) | Packet::PubComp(a) => {
                inflight.release(a.packet_id);
            }
            // A failure reason (v5, 0x80 and up) ends the exchange (spec 4.3.3).
            Packet::PubRec(a) if a.reason.0 >= 0x80 => {
                inflight.release(a.packet_id);
            }
            Packet::PubRec(a) => {
                let reason = if inflight.contains(a.packet_id) {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
                };
                let rel = PubAck {
                    packet_id: a.packet_id,
                    reason,
                    ..PubAck::default()
                };
                Packet::PubRel(rel).encode(version, out)?;
            }
            _ => {
                return Err(ConnError::Unexpected(
                    "a packet other than an ack to a publisher",
                ));
            }
        }
        Ok(())
    }

    fn produce(
        &mut self,
        can_write: bool,
        out: &mut BytesMut,
        version: ProtocolVersion,
    ) -> Result<bool, ConnError> {
        let Some(times) = self.times else {
            return Ok(false);
        };
        if self.stopping {
            return Ok(false);
        }
        // One clock reading per batch.
        let now_ns = nanos(self.state.params.epoch.elapsed());
        let mut room = if can_write { self.room() } else { 0 };
        if room == 0 {
            if let Some(due) = self.due(self.seq)
                && due <= now_ns
            {
                // The broker holds us back (window full, or not reading): from here on,
                // messages carry their due time until the backlog is sent.
                self.blocked_since.get_or_insert(due);
            }
            return Ok(false);
        }
        let start_len = out.len();
        let mut sent = 0u64;
        while room > 0 && out.len() - start_len < WRITE_BATCH_BYTES {
            let sent_ns = match self.due(self.seq) {
                None => now_ns,
                Some(due) if due > now_ns => {
                    self.blocked_since = None;
                    break;
                }
                Some(due) if self.blocked_since.is_some() => due,
                Some(_) => now_ns,
            };
            Stamp {
                publisher: self.publisher,
                seq: self.seq,
                sent_ns,
            }
            .write(&mut self.payload);
            let packet_id = match &mut self.inflight {
                Some(f) => f.acquire(),
                None => 0,
            };
            let header = PublishHeader {
                dup: false,
                qos: self.qos,
                retain: false,
                packet_id,
                topic: &self.topic,
                topic_alias: None,
                message_expiry_interval: None,
                subscription_identifiers: &[],
            };
            encode_publish(out, version, &header, &self.props, &self.payload)?;
            if (times.window_start_ns..times.window_end_ns).contains(&sent_ns) {
                self.published_in_window += 1;
            }
            self.seq = self.seq.wrapping_add(1);
            sent += 1;
            room -= 1;
        }
        self.unflushed += sent;
        self.published += sent;
        Ok(sent > 0)
    }

    fn next_due(&self) -> Option<std::time::Instant> {
        if self.stopping || self.room() == 0 {
            return None;
        }
        let due = self.due(self.seq)?;
        Some(self.state.params.epoch + std::time::Duration::from_nanos(due))
    }

    fn flush(&mut self) {
        Progress::add(&self.state.progress.published, self.unflushed);
        self.unflushed = 0;
        let idle = self.inflight.as_ref().is_none_or(|f| f.count == 0);
        if self.stopping && idle && !self.drained {
            self.drained = true;
            Progress::add(&self.state.progress.drained, 1);
        }
    }
}

impl Phased for Publisher<'_> {
    fn on_phase(&mut self, phase: Phase) {
        match phase {
            Phase::Run(times) if self.times.is_none() => {
                self.times = Some(times);
                let p = &self.state.params;
                self.schedule = p.rate_interval_ns.map(|interval| {
                    let offset =
                        interval / u64::from(p.publishers.max(1)) * u64::from(self.publisher);
                    (times.start_ns + offset, interval)
                });
            }
            Phase::Stop => {
                self.stopping = true;
                self.flush();
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        self.flush();
        let mut r = self.state.results.borrow_mut();
        r.published.push((self.publisher, self.published));
        r.published_in_window += self.published_in_window;
    }
}

/// Packet identifiers of QoS 1/2 messages awaiting their PUBACK or PUBCOMP: a bit per
/// identifier (8 KiB), handed out in order and skipped while still in use.
struct InFlight {
    bits: Box<[u64; 1024]>,
    count: u32,
    next: u16,
}

impl InFlight {
    fn new() -> Self {
        Self {
            bits: Box::new([0; 1024]),
            count: 0,
            next: 1,
        }
    }

    fn contains(&self, id: u16) -> bool {
        self.bits[usize::from(id >> 6)] & (1 << (id & 63)) != 0
    }

    /// A free identifier, marked in use. The caller keeps `count` below 65,535, so one is
    /// always found.
    fn acquire(&mut self) -> u16 {
        loop {
            let id = self.next;
            self.next = if id == u16::MAX { 1 } else { id + 1 };
            if !self.contains(id) {
                self.bits[usize::from(id >> 6)] |= 1 << (id & 63);
                self.count += 1;
                return id;
            }
        }
    }

    /// Frees `id`; an unknown identifier (a duplicate ack) is ignored.
    fn release(&mut self, id: u16) {
        if id != 0 && self.contains(id) {
            self.bits[usize::from(id >> 6)] &= !(1 << (id & 63));
            self.count -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_ids_wrap_and_skip_used_ones() {
        let mut f = InFlight::new();
        assert_eq!(f.acquire(), 1);
        assert_eq!(f.acquire(), 2);
        f.release(1);
        f.release(1);
        f.release(0);
        assert_eq!(f.count, 1);
        f.next = u16::MAX;
        assert_eq!(f.acquire(), u16::MAX);
        // Wraps to 1 (free), then skips 2 (in use).
        assert_eq!(f.acquire(), 1);
        assert_eq!(f.acquire(), 3);
        assert!(f.contains(2) && f.contains(u16::MAX));
        assert_eq!(f.count, 4);
    }
}
