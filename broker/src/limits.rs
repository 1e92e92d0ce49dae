//! The tenant-wide publish rate and inbound bandwidth (`publish_rate_per_sec`,
//! `bandwidth_bytes_per_sec`), enforced where they are exact: every PUBLISH of a tenant passes
//! its one engine.
//!
//! Like the gateway's per-client limits, these first slow the tenant down and only then refuse.
//! A frame whose PUBLISH packets the buckets cannot cover yet is *held*, and the engine stops
//! taking frames from its mailbox until the tokens are there. The mailbox fills, the tenant's
//! gateway readers wait to hand over their next frame and stop reading their sockets, and TCP
//! slows the devices: the backpressure path of `engine.rs`, used on purpose. A frame is held
//! until at most [`MAX_RATE_PAUSE`] after the gateway handed it over (time queued in the
//! mailbox counts); whatever is still beyond the allowance then is refused (MQTT 5:
//! PUBACK/PUBREC 0x97 with the Reason String "message rate too high"; QoS 0 and MQTT 3.1.1:
//! dropped, see `handlers/publish.rs`) and counted, so a tenant that keeps flooding cannot
//! hold its own devices' other packets back for long.
//!
//! The buckets take the time as an argument (Tokio's clock in the engine). A tenant
//! whose limits are beyond any real rate (the `dev` tenant, benchmarks) has no buckets and pays
//! nothing on the hot path.

use std::collections::VecDeque;

use bytes::Bytes;
use tenantmq_codec::{PacketType, frame};
use tenantmq_common::link::ToEngine;
use tenantmq_common::quota::Quotas;
use tenantmq_common::token_bucket::TokenBucket;
use tenantmq_common::usage::{RejectReason, Rejections};
use tokio::time::{Duration, Instant};

use crate::engine::Engine;

/// Longest the engine holds a tenant's frames back for its rate before refusing the excess.
pub const MAX_RATE_PAUSE: Duration = Duration::from_secs(1);

/// Shortest hold: the held frames are looked at again a batch at a time, not frame by frame,
/// so that a tenant held at its rate does not wake its engine (and take CPU from others)
/// for every frame.
const MIN_WAIT: Duration = Duration::from_millis(20);

/// Rates at or above this are treated as unlimited: no real tenant gets there, and the
/// bookkeeping would only cost time.
const UNLIMITED_RATE: u64 = 1_000_000_000;

/// The tenant-wide buckets and the frames held back for them.
#[derive(Debug, Default)]
pub(crate) struct TenantRate {
    messages: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
    /// Frames waiting for tokens, oldest first; nothing else is taken from the mailbox
    /// meanwhile, which keeps every session's frames in order. A frame waits at most until
    /// [`MAX_RATE_PAUSE`] after the gateway read it.
    held: VecDeque<ToEngine>,
    /// When to look at the held frames again.
    pub resume_at: Option<Instant>,
}

/// What to do with a frame.
enum Verdict {
    /// Handle it now, refusing this many of its last PUBLISH packets (beyond those the gateway
    /// already marked).
    Go(u32),
    /// Hold it until then.
    Hold(Instant),
}

/// The PUBLISH packets of a frame: how many, and their bytes.
fn publishes(data: &Bytes) -> (u64, u64) {
    let mut at = 0;
    let (mut count, mut bytes) = (0, 0);
    while at < data.len() {
        // The gateway frames whole packets; anything else is the decoder's to report.
        let Ok(Some(h)) = frame::check(&data[at..], u32::MAX) else {
            break;
        };
        if h.packet_type == PacketType::Publish {
            count += 1;
            bytes += h.total_len() as u64;
        }
        at += h.total_len();
    }
    (count, bytes)
}

/// The number of PUBLISH packets in a frame.
pub(crate) fn publish_count(data: &Bytes) -> u32 {
    u32::try_from(publishes(data).0).unwrap_or(u32::MAX)
}

/// The sizes of the first `n` PUBLISH packets of a frame.
fn publish_sizes(data: &Bytes, n: u64) -> impl Iterator<Item = u64> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < data.len() {
            let Ok(Some(h)) = frame::check(&data[at..], u32::MAX) else {
                return None;
            };
            at += h.total_len();
            if h.packet_type == PacketType::Publish {
                return Some(h.total_len() as u64);
            }
        }
        None
    })
    .take(usize::try_from(n).unwrap_or(usize::MAX))
}

impl TenantRate {
    /// Buckets for `quotas`, full.
    pub fn new(quotas: &Quotas, now: Instant) -> Self {
        let mut rate = Self::default();
        rate.apply(quotas, now);
        rate
    }

    /// Rebuilds the buckets for new quotas (full: a changed plan starts with its burst). Held
    /// frames stay held and are looked at again at once.
    pub fn apply(&mut self, quotas: &Quotas, now: Instant) {
        let messages = u64::from(quotas.publish_rate_per_sec);
        let bytes = quotas.bandwidth_bytes_per_sec;
        self.messages =
            (messages < UNLIMITED_RATE).then(|| TokenBucket::new(messages, messages, now));
        // The byte bucket holds at least one largest packet, so that every packet can pass.
        let capacity = bytes.max(u64::from(quotas.max_message_bytes));
        self.bytes = (bytes < UNLIMITED_RATE).then(|| TokenBucket::new(bytes, capacity, now));
        if !self.held.is_empty() {
            self.resume_at = Some(now);
        }
    }

    /// True while frames are held: the engine takes nothing from its mailbox.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// The verdict for `frame`; tokens are taken for what is let through.
    fn judge(&mut self, frame: &ToEngine, now: Instant, rejections: &mut Rejections) -> Verdict {
        if self.messages.is_none() && self.bytes.is_none() {
            return Verdict::Go(0);
        }
        let ToEngine::Packets {
            data,
            over_rate,
            received_at,
            ..
        } = frame
        else {
            return Verdict::Go(0);
        };
        let (count, all_bytes) = publishes(data);
        // The gateway's refusals do not count against the tenant.
        let counted = count.saturating_sub(u64::from(*over_rate));
        if counted == 0 {
            return Verdict::Go(0);
        }
        let bytes = if counted == count {
            all_bytes
        } else {
            publish_sizes(data, counted).sum()
        };
        if self.fits(counted, bytes, now) {
            self.take(counted, bytes, now);
            return Verdict::Go(0);
        }
        // The pause counts from when the gateway handed the packets over, so that time spent
        // queued in the mailbox behind other held frames counts too: under a sustained flood
        // the excess is refused as it reaches the engine instead of piling up in the mailbox
        // (where it would also hold back the tenant's other frames, pings and closes).
        let deadline = (*received_at).min(now) + MAX_RATE_PAUSE;
        if now < deadline {
            // A frame larger than a bucket can never pass whole: it waits out the pause and
            // is then let through as far as the buckets allow.
            let resume = self
                .wait_for(counted, bytes, now)
                .map_or(deadline, |wait| (now + wait.max(MIN_WAIT)).min(deadline));
            return Verdict::Hold(resume);
        }
        // Slowed down as far as we do: what fits goes through, the rest is refused.
        let mut allowed = 0;
        let mut reason = RejectReason::MessageRate;
        for size in publish_sizes(data, counted) {
            if !self.messages_fit(1, now) {
                break;
            }
            if !self.bytes_fit(size, now) {
                reason = RejectReason::Bandwidth;
                break;
            }
            self.take(1, size, now);
            allowed += 1;
        }
        let refused = counted - allowed;
        rejections.add_n(reason, refused);
        Verdict::Go(u32::try_from(refused).unwrap_or(u32::MAX))
    }

    fn messages_fit(&mut self, n: u64, now: Instant) -> bool {
        self.messages
            .as_mut()
            .is_none_or(|b| b.wait_for(n, now).is_some_and(|w| w.is_zero()))
    }

    fn bytes_fit(&mut self, n: u64, now: Instant) -> bool {
        self.bytes
            .as_mut()
            .is_none_or(|b| b.wait_for(n, now).is_some_and(|w| w.is_zero()))
    }

    fn fits(&mut self, messages: u64, bytes: u64, now: Instant) -> bool {
        self.messages_fit(messages, now) && self.bytes_fit(bytes, now)
    }

    fn take(&mut self, messages: u64, bytes: u64, now: Instant) {
        if let Some(b) = self.messages.as_mut() {
            b.try_take(messages, now);
        }
        if let Some(b) = self.bytes.as_mut() {
            b.try_take(bytes, now);
        }
    }

    /// How long until both buckets cover a frame; `None` when one never can.
    fn wait_for(&mut self, messages: u64, bytes: u64, now: Instant) -> Option<Duration> {
        let m = match self.messages.as_mut() {
            Some(b) => b.wait_for(messages, now)?,
            None => Duration::ZERO,
        };
        let b = match self.bytes.as_mut() {
            Some(b) => b.wait_for(bytes, now)?,
            None => Duration::ZERO,
        };
        Some(m.max(b))
    }
}

impl Engine {
    /// Handles a frame from the mailbox, or holds it (and everything after it) while the
    /// tenant is beyond its rate.
    pub(crate) fn admit(&mut self, frame: ToEngine, now: Instant) {
        if self.rate.holding() {
            self.rate.held.push_back(frame);
            return;
        }
        match self.rate.judge(&frame, now, &mut self.stats.rejections) {
            Verdict::Go(refused) => self.handle_refusing(frame, refused, now),
            Verdict::Hold(until) => {
                self.rate.held.push_back(frame);
                self.rate.resume_at = Some(until);
            }
        }
    }

    /// Looks at the held frames again: handles those the buckets now cover (or, once the
    /// pause is over, handles them refusing the excess).
    pub(crate) fn resume_held(&mut self, now: Instant) {
        self.rate.resume_at = None;
        while let Some(frame) = self.rate.held.pop_front() {
            match self.rate.judge(&frame, now, &mut self.stats.rejections) {
                Verdict::Go(refused) => self.handle_refusing(frame, refused, now),
                Verdict::Hold(until) => {
                    self.rate.held.push_front(frame);
                    self.rate.resume_at = Some(until);
                    return;
                }
            }
        }
    }

    /// Replaces the tenant's quotas; the buckets follow at once.
    pub(crate) fn set_quotas(&mut self, quotas: std::sync::Arc<Quotas>, now: Instant) {
        self.rate.apply(&quotas, now);
        self.quotas = quotas;
    }

    fn handle_refusing(&mut self, frame: ToEngine, refused: u32, now: Instant) {
        match frame {
            ToEngine::Packets {
                session,
                data,
                over_rate,
                received_at,
            } => self.handle(
                ToEngine::Packets {
                    session,
                    data,
                    over_rate: over_rate.saturating_add(refused),
                    received_at,
                },
                now,
            ),
            other => self.handle(other, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_quotas_have_no_buckets() {
        let rate = TenantRate::new(&Quotas::unlimited(), Instant::now());
        assert!(rate.messages.is_none() && rate.bytes.is_none());
        let rate = TenantRate::new(&Quotas::free(), Instant::now());
        assert!(rate.messages.is_some() && rate.bytes.is_some());
    }
}
