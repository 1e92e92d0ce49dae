//! The subscriber role: acknowledges what the broker delivers (PUBACK for QoS 1, PUBREC and
//! PUBCOMP for QoS 2) and reads each payload's stamp for sequence tracking and latency.
//!
//! Latency is recorded only for messages received inside the measured window, into the
//! thread's histogram; the receive time is the clock reading of the read that brought the
//! message in.

use std::time::Instant;

use bytes::BytesMut;
use tenantmq_codec::{Packet, ProtocolVersion, PubAck, QoS};

use crate::conn::Role;
use crate::error::ConnError;
use crate::payload::Stamp;
use crate::shard::{Phase, Phased, Progress, ShardState, StreamResult, nanos};
use crate::tracker::{Seen, SeqTracker};

/// A subscriber connection.
pub(crate) struct Subscriber<'a> {
    state: &'a ShardState,
    /// Publishers `first..first + trackers.len()` are expected.
    first: u32,
    trackers: Vec<SeqTracker>,
    window: Option<(u64, u64)>,
    unflushed: u64,
    unflushed_unique: u64,
    delivered: u64,
    delivered_in_window: u64,
    foreign: u64,
}

impl<'a> Subscriber<'a> {
    pub(crate) fn new(state: &'a ShardState, first: u32, count: u32) -> Self {
        Self {
            state,
            first,
            trackers: vec![SeqTracker::default(); count as usize],
            window: None,
            unflushed: 0,
            unflushed_unique: 0,
            delivered: 0,
            delivered_in_window: 0,
            foreign: 0,
        }
    }
}

impl Role for Subscriber<'_> {
    fn on_packet(
        &mut self,
        packet: Packet,
        now: Instant,
        out: &mut BytesMut,
        version: ProtocolVersion,
    ) -> Result<(), ConnError> {
        let publish = match packet {
            Packet::Publish(p) => p,
            Packet::PubRel(a) => {
                let comp = PubAck {
                    packet_id: a.packet_id,
                    ..PubAck::default()
                };
                return Ok(Packet::PubComp(comp).encode(version, out)?);
            }
            _ => {
                return Err(ConnError::Unexpected(
                    "a packet other than PUBLISH or PUBREL",
                ));
            }
        };
        let ack = PubAck {
            packet_id: publish.packet_id,
            ..PubAck::default()
        };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => Packet::PubAck(ack).encode(version, out)?,
            QoS::ExactlyOnce => Packet::PubRec(ack).encode(version, out)?,
        }
        self.unflushed += 1;
        self.delivered += 1;
        let Some(stamp) = Stamp::read(&publish.payload) else {
            self.foreign += 1;
            return Ok(());
        };
        let slot = stamp.publisher.wrapping_sub(self.first) as usize;
        let Some(tracker) = self.trackers.get_mut(slot) else {
            self.foreign += 1;
            return Ok(());
        };
        if tracker.record(stamp.seq) == Seen::New {
            self.unflushed_unique += 1;
        }
        if let Some((start, end)) = self.window {
            let now_ns = nanos(now.saturating_duration_since(self.state.params.epoch));
            if (start..end).contains(&now_ns) {
                self.delivered_in_window += 1;
                self.state
                    .results
                    .borrow_mut()
                    .latency
                    .saturating_record(now_ns.saturating_sub(stamp.sent_ns));
            }
        }
        Ok(())
    }

    fn flush(&mut self) {
        let p = &self.state.progress;
        Progress::add(&p.delivered, self.unflushed);
        Progress::add(&p.delivered_unique, self.unflushed_unique);
        self.unflushed = 0;
        self.unflushed_unique = 0;
    }
}

impl Phased for Subscriber<'_> {
    fn on_phase(&mut self, phase: Phase) {
        if let Phase::Run(t) = phase {
            self.window = Some((t.window_start_ns, t.window_end_ns));
        }
    }

    fn finish(&mut self) {
        self.flush();
        let mut r = self.state.results.borrow_mut();
        r.delivered += self.delivered;
        r.delivered_in_window += self.delivered_in_window;
        r.foreign += self.foreign;
        for (k, t) in self.trackers.iter().enumerate() {
            r.streams.push(StreamResult {
                publisher: self.first + k as u32,
                unique: t.unique,
                duplicates: t.duplicates,
            });
        }
    }
}
