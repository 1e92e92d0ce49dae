//! Losses and duplicates of one stream (one publisher as seen by one subscriber), from the
//! sequence numbers in the payloads.
//!
//! The tracker counts distinct sequence numbers received; a run's losses are what the
//! publisher sent minus that count, computed once the run has drained. Duplicates are
//! recognised within a window of the last [`WINDOW`] sequence numbers below the highest seen,
//! which covers any reordering a broker does in practice (MQTT orders messages per topic and
//! QoS, spec 4.6, so there should be none); a number older than that is counted as a
//! duplicate, the conservative reading.

/// How far below the highest sequence number a message may arrive and still be told apart
/// from a duplicate.
pub const WINDOW: u32 = 128;

/// What one received sequence number was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before.
    New,
    /// Seen before (or too old to tell).
    Duplicate,
}

/// Sequence state of one stream.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    /// One more than the highest sequence number seen (0: none yet).
    next: u32,
    /// Bit k set: sequence number `next - 1 - k` was seen.
    window: u128,
    /// Distinct sequence numbers seen.
    pub unique: u64,
    /// Messages seen again.
    pub duplicates: u64,
}

impl SeqTracker {
    /// Records sequence number `seq`.
    #[inline]
    pub fn record(&mut self, seq: u32) -> Seen {
        if seq >= self.next {
            let shift = seq - self.next + 1;
            self.window = if shift >= WINDOW {
                0
            } else {
                self.window << shift
            };
            self.window |= 1;
            self.next = seq.saturating_add(1);
            self.unique += 1;
            return Seen::New;
        }
        let back = self.next - 1 - seq;
        if back >= WINDOW || self.window & (1u128 << back) != 0 {
            self.duplicates += 1;
            return Seen::Duplicate;
        }
        self.window |= 1u128 << back;
        self.unique += 1;
        Seen::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_gaps_and_duplicates() {
        let mut t = SeqTracker::default();
        for s in 0..10 {
            assert_eq!(t.record(s), Seen::New);
        }
        assert_eq!(t.record(9), Seen::Duplicate);
        assert_eq!(t.record(3), Seen::Duplicate);
        // A gap: 10 and 11 lost for now.
        assert_eq!(t.record(12), Seen::New);
        // 11 arrives late: new, not a duplicate.
        assert_eq!(t.record(11), Seen::New);
        assert_eq!(t.record(11), Seen::Duplicate);
        assert_eq!((t.unique, t.duplicates), (12, 3));
    }

    #[test]
    fn far_jumps_and_old_numbers() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record(1000), Seen::New);
        assert_eq!(t.record(1000 - WINDOW + 1), Seen::New);
        // Older than the window: counted as a duplicate, conservatively.
        assert_eq!(t.record(1000 - WINDOW), Seen::Duplicate);
        assert_eq!(t.record(5000), Seen::New);
        assert_eq!(t.record(1000), Seen::Duplicate);
        assert_eq!((t.unique, t.duplicates), (3, 2));
    }

    #[test]
    fn first_message_zero() {
        let mut t = SeqTracker::default();
        assert_eq!(t.record(0), Seen::New);
        assert_eq!(t.record(0), Seen::Duplicate);
        assert_eq!(t.record(1), Seen::New);
    }
}
