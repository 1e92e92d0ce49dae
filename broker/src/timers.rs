//! The engine's deadlines: will delays and session expiries.
//!
//! A binary heap ordered by deadline, with lazy cancellation: each entry remembers the
//! generation of the session slot when it was armed, and an entry whose slot has moved on (a
//! client reconnected, the slot was reused) is discarded when it comes due. Keep alive is not
//! here: the gateway times out silent connections, where the socket is.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKind {
    /// Publish the will of a disconnected session (MQTT 5 Will Delay Interval).
    WillDelay,
    /// End a disconnected session (Session Expiry Interval).
    SessionExpiry,
}

/// A deadline that came due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    /// Which deadline.
    pub kind: TimerKind,
    /// Session slot.
    pub slot: u32,
    /// The slot's generation when the deadline was armed.
    pub generation: u32,
}

/// The heap of deadlines.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Due)>>,
}

impl Timers {
    /// Arms a deadline.
    pub fn arm(&mut self, at: Instant, due: Due) {
        self.heap.push(Reverse((at, due)));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the next deadline at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Due> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, d))| d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut t = Timers::default();
        let d = |slot| Due {
            kind: TimerKind::SessionExpiry,
            slot,
            generation: 0,
        };
        t.arm(now + Duration::from_secs(2), d(2));
        t.arm(now + Duration::from_secs(1), d(1));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.pop_due(now + Duration::from_secs(5)), Some(d(1)));
        assert_eq!(t.pop_due(now + Duration::from_secs(5)), Some(d(2)));
        assert_eq!(t.pop_due(now + Duration::from_secs(5)), None);
    }
}
