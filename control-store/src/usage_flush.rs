//! The usage flusher: drains the data plane's in-memory [`UsageRecorder`] into the store in
//! idempotent batches (every [`USAGE_FLUSH_INTERVAL`] and once more at shutdown).
//!
//! Exactly-once, as far as a crash allows: a drained batch gets an id and is retried *with the
//! same id* until the store accepts it; the store records the id in the same transaction as the
//! rows, so a retry of a batch that was in fact committed adds nothing. Usage recorded while a
//! batch waits is left in the recorder for the next batch, never merged into the waiting one
//! (which would change what its id stands for). A process that dies loses at most what was not
//! yet written; it never writes anything twice.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use tenantmq_common::shutdown::Shutdown;
use tenantmq_common::usage::{HourlyUsage, UsageRecorder};
use uuid::Uuid;

use crate::models::UsageRecord;
use crate::{Store, StoreError};

/// How often usage is written to the store. Billing needs hours, dashboards minutes; one write
/// every 15 s keeps the control store's load negligible.
pub const USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(15);

/// Writes a recorder's usage to the store.
#[derive(Debug)]
pub struct UsageFlusher {
    recorder: Arc<UsageRecorder>,
    store: Store,
    /// A drained batch not yet written, with its id.
    waiting: Option<(Uuid, Vec<UsageRecord>)>,
}

impl UsageFlusher {
    /// A flusher from `recorder` into `store`.
    pub fn new(recorder: Arc<UsageRecorder>, store: Store) -> Self {
        Self {
            recorder,
            store,
            waiting: None,
        }
    }

    /// Writes the waiting batch, or drains a new one and writes it. Returns the number of
    /// records written (0 when there was nothing).
    ///
    /// # Errors
    /// The store's error; the batch stays waiting and the next call retries it with its id.
    pub async fn flush(&mut self) -> Result<usize, StoreError> {
        let metrics = self.recorder.metrics().clone();
        if self.waiting.is_none() {
            let drained = self.recorder.drain();
            if drained.is_empty() {
                metrics.usage_pending.set(0);
                return Ok(0);
            }
            let records = drained.iter().map(to_record).collect();
            self.waiting = Some((Uuid::now_v7(), records));
        }
        let Some((id, records)) = &self.waiting else {
            return Ok(0);
        };
        let pending =
            i64::try_from(records.len() + self.recorder.pending_len()).unwrap_or(i64::MAX);
        metrics.usage_pending.set(pending);
        match self.store.record_usage_batch(*id, records).await {
            Ok(applied) => {
                let n = records.len();
                if !applied {
                    tracing::info!(batch = %id, "usage batch was already applied");
                }
                self.waiting = None;
                metrics.usage_batches.inc();
                metrics
                    .usage_pending
                    .set(i64::try_from(self.recorder.pending_len()).unwrap_or(i64::MAX));
                Ok(n)
            }
            Err(e) => {
                metrics.usage_write_errors.inc();
                tracing::warn!(batch = %id, error = %e, "writing usage failed; will retry");
                Err(e)
            }
        }
    }

    /// Flushes every `interval` until `shutdown` fires. The final flush is the caller's, after
    /// the engines have handed over their last counts ([`UsageFlusher::finish`]).
    pub async fn run(mut self, interval: Duration, mut shutdown: Shutdown) -> Self {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.recv() => return self,
                _ = tick.tick() => {
                    let _ = self.flush().await;
                }
            }
        }
    }

    /// The last flushes at shutdown: the waiting batch, then what the engines handed over
    /// last. A few attempts, since the process is about to exit and unwritten usage is lost.
    pub async fn finish(mut self) {
        for _ in 0..3 {
            match self.flush().await {
                Ok(0) if self.waiting.is_none() && self.recorder.pending_len() == 0 => return,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        if self.waiting.is_some() || self.recorder.pending_len() > 0 {
            tracing::error!("usage not written at shutdown is lost");
        }
    }
}

fn to_record(u: &HourlyUsage) -> UsageRecord {
    let hour = DateTime::<Utc>::from(UNIX_EPOCH + Duration::from_secs(u.hour_unix));
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    UsageRecord {
        tenant_id: u.tenant,
        hour,
        connection_seconds: i(u.usage.connection_seconds),
        peak_connections: i(u.usage.peak_connections),
        messages_in: i(u.usage.messages_in),
        messages_out: i(u.usage.messages_out),
        bytes_in: i(u.usage.bytes_in),
        bytes_out: i(u.usage.bytes_out),
        rejections: i(u.usage.rejections.total()),
    }
}
