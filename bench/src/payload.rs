//! The first 16 bytes of every payload: who sent it, its sequence number and when.
//!
//! ```text
//! bytes 0..4   publisher index   u32, little endian
//! bytes 4..8   sequence number   u32, little endian, from 0 per publisher
//! bytes 8..16  send time         u64, little endian, nanoseconds since the run's epoch
//! ```
//!
//! The rest of the payload is zeros. The send time is measured on the monotonic clock from an
//! `Instant` taken once per run; publishers and subscribers live in the same process, so
//! subscribers subtract it from their own reading of the same clock. At a fixed rate it is the
//! time the message was *scheduled* to be sent, not when it went out, so a broker that stalls
//! the publisher is charged the wait (no coordinated omission).

/// Bytes of the stamp at the start of a payload: the smallest allowed payload.
pub const STAMP_LEN: usize = 16;

/// What a payload carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the publisher (0-based within the run).
    pub publisher: u32,
    /// Sequence number of the message for its publisher, from 0.
    pub seq: u32,
    /// Send time (or scheduled send time) in nanoseconds since the run's epoch.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp into the first [`STAMP_LEN`] bytes of `payload`; a shorter buffer is
    /// left alone (the command line refuses payloads under 16 bytes).
    #[inline]
    pub fn write(&self, payload: &mut [u8]) {
        if let Some(dst) = payload.get_mut(..STAMP_LEN) {
            dst[0..4].copy_from_slice(&self.publisher.to_le_bytes());
            dst[4..8].copy_from_slice(&self.seq.to_le_bytes());
            dst[8..16].copy_from_slice(&self.sent_ns.to_le_bytes());
        }
    }

    /// Reads the stamp at the start of `payload`; `None` when it is shorter than
    /// [`STAMP_LEN`].
    #[inline]
    pub fn read(payload: &[u8]) -> Option<Self> {
        let b: &[u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
        let [p0, p1, p2, p3, s0, s1, s2, s3, t @ ..] = *b;
        Some(Self {
            publisher: u32::from_le_bytes([p0, p1, p2, p3]),
            seq: u32::from_le_bytes([s0, s1, s2, s3]),
            sent_ns: u64::from_le_bytes(t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let stamp = Stamp {
            publisher: 0x0102_0304,
            seq: u32::MAX - 1,
            sent_ns: 0x1122_3344_5566_7788,
        };
        let mut payload = vec![0u8; 64];
        stamp.write(&mut payload);
        assert_eq!(&payload[..4], &[4, 3, 2, 1]);
        assert_eq!(&payload[8..16], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert!(payload[16..].iter().all(|&b| b == 0));
        assert_eq!(Stamp::read(&payload), Some(stamp));

        let mut exact = [0u8; STAMP_LEN];
        stamp.write(&mut exact);
        assert_eq!(Stamp::read(&exact), Some(stamp));
    }

    #[test]
    fn short_payloads() {
        assert_eq!(Stamp::read(&[0u8; 15]), None);
        assert_eq!(Stamp::read(&[]), None);
        let mut short = [7u8; 8];
        Stamp {
            publisher: 1,
            seq: 2,
            sent_ns: 3,
        }
        .write(&mut short);
        assert_eq!(short, [7u8; 8]);
    }
}
