//! A token bucket on Tokio's clock, for the rate limits that need their own (the engine's
//! tenant-wide rate and bandwidth, the tenant connect rate of the in-process counter). The
//! caller passes the time, so that one `Instant::now()` serves a whole batch and tests choose
//! their clock.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket on Tokio's clock: `rate` tokens per second, holding at most `capacity`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `capacity` is at least one second of `rate`.
    pub fn new(rate: u64, capacity: u64, now: Instant) -> Self {
        // A rate of 0 would never refill; the plan model allows it, so it means "1 per second".
        let rate = rate.max(1) as f64;
        let capacity = (capacity as f64).max(rate);
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// True when the bucket holds all it can: it is then what a new bucket would be.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, n: u64, now: Instant) -> bool {
        self.refill(now);
        let n = n as f64;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// How long until `n` tokens are there; `None` when the bucket cannot hold that many.
    pub fn wait_for(&mut self, n: u64, now: Instant) -> Option<Duration> {
        self.refill(now);
        let n = n as f64;
        if n > self.capacity {
            return None;
        }
        let missing = n - self.tokens;
        Some(if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.rate)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 10, t0);
        assert!(b.try_take(10, t0));
        assert!(!b.try_take(1, t0));
        assert_eq!(b.wait_for(1, t0), Some(Duration::from_millis(100)));
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.try_take(5, t1));
        assert!(!b.try_take(1, t1));
        // Never more than the capacity, however long it rests.
        let t2 = t1 + Duration::from_secs(60);
        assert!(b.try_take(10, t2));
        assert!(!b.try_take(1, t2));
        // A request above the capacity can never be met.
        assert_eq!(b.wait_for(11, t2), None);
        assert!(!b.try_take(11, t2 + Duration::from_secs(60)));
        assert!(b.is_full(t2 + Duration::from_secs(120)));
    }
}
