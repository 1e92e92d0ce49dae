//! Hourly usage per tenant: written in batches by the data plane, read by the usage API.
//!
//! The data plane writes through [`Store::record_usage_batch`]: each batch carries an id that is
//! recorded in `usage_batches` in the same transaction as its rows, so applying a batch twice
//! (a retry after a lost answer) counts it once. Batch ids are kept
//! [`USAGE_BATCH_RETENTION_DAYS`]; retries happen within seconds.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tenantmq_common::TenantId;
use uuid::Uuid;

use crate::db::{DbId, DbTime};
use crate::models::UsageRecord;
use crate::{Store, StoreError};

#[derive(sqlx::FromRow)]
struct UsageRow {
    tenant_id: DbId,
    hour: DbTime,
    connection_seconds: i64,
    peak_connections: i64,
    messages_in: i64,
    messages_out: i64,
    bytes_in: i64,
    bytes_out: i64,
    rejections: i64,
}

impl From<UsageRow> for UsageRecord {
    fn from(r: UsageRow) -> Self {
        UsageRecord {
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            hour: r.hour.0,
            connection_seconds: r.connection_seconds,
            peak_connections: r.peak_connections,
            messages_in: r.messages_in,
            messages_out: r.messages_out,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            rejections: r.rejections,
        }
    }
}

/// How long applied batch ids are remembered. A retry comes seconds after the first attempt;
/// a week also covers a flusher that kept a batch through a long store outage.
pub const USAGE_BATCH_RETENTION_DAYS: i64 = 7;

/// `t` rounded down to the start of its hour.
pub(crate) fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

impl Store {
    /// Adds a batch of usage to the hourly rows in one transaction: counters are summed with
    /// what is stored, `peak_connections` keeps the larger value. Each record's `hour` is
    /// truncated to the hour. Records of deleted tenants fail the whole batch (foreign key).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn record_usage(&self, batch: &[UsageRecord]) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for r in batch {
                sqlx::query(
                    "INSERT INTO usage_hourly (tenant_id, hour, connection_seconds, \
                     peak_connections, messages_in, messages_out, bytes_in, bytes_out, rejections) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (tenant_id, hour) DO UPDATE SET \
                     connection_seconds = usage_hourly.connection_seconds + excluded.connection_seconds, \
                     peak_connections = CASE WHEN excluded.peak_connections > usage_hourly.peak_connections \
                         THEN excluded.peak_connections ELSE usage_hourly.peak_connections END, \
                     messages_in = usage_hourly.messages_in + excluded.messages_in, \
                     messages_out = usage_hourly.messages_out + excluded.messages_out, \
                     bytes_in = usage_hourly.bytes_in + excluded.bytes_in, \
                     bytes_out = usage_hourly.bytes_out + excluded.bytes_out, \
                     rejections = usage_hourly.rejections + excluded.rejections",
                )
                .bind(DbId(*r.tenant_id.as_uuid()))
                .bind(DbTime(hour_of(r.hour)))
                .bind(r.connection_seconds)
                .bind(r.peak_connections)
                .bind(r.messages_in)
                .bind(r.messages_out)
                .bind(r.bytes_in)
                .bind(r.bytes_out)
                .bind(r.rejections)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Applies a batch of usage once: if `batch_id` was already applied, nothing changes and
    /// the answer is `false`. Otherwise its records are added like [`Store::record_usage`]
    /// does and the id is remembered, in one transaction. Records of tenants that do not exist
    /// (deleted meanwhile, or the built-in dev tenant) are skipped rather than failing the
    /// batch, so one deleted tenant cannot block everyone's usage.
    ///
    /// # Errors
    /// [`StoreError::Database`]; then nothing was applied, and the same batch (same id) may
    /// be retried.
    pub async fn record_usage_batch(
        &self,
        batch_id: Uuid,
        batch: &[UsageRecord],
    ) -> Result<bool, StoreError> {
        let now = crate::db::now();
        let forget_before = now - TimeDelta::days(USAGE_BATCH_RETENTION_DAYS);
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO usage_batches (id, applied_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            )
            .bind(DbId(batch_id))
            .bind(DbTime(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            for r in batch {
                sqlx::query(
                    "INSERT INTO usage_hourly (tenant_id, hour, connection_seconds, \
                     peak_connections, messages_in, messages_out, bytes_in, bytes_out, rejections) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
                     WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1) \
                     ON CONFLICT (tenant_id, hour) DO UPDATE SET \
                     connection_seconds = usage_hourly.connection_seconds + excluded.connection_seconds, \
                     peak_connections = CASE WHEN excluded.peak_connections > usage_hourly.peak_connections \
                         THEN excluded.peak_connections ELSE usage_hourly.peak_connections END, \
                     messages_in = usage_hourly.messages_in + excluded.messages_in, \
                     messages_out = usage_hourly.messages_out + excluded.messages_out, \
                     bytes_in = usage_hourly.bytes_in + excluded.bytes_in, \
                     bytes_out = usage_hourly.bytes_out + excluded.bytes_out, \
                     rejections = usage_hourly.rejections + excluded.rejections",
                )
                .bind(DbId(*r.tenant_id.as_uuid()))
                .bind(DbTime(hour_of(r.hour)))
                .bind(r.connection_seconds)
                .bind(r.peak_connections)
                .bind(r.messages_in)
                .bind(r.messages_out)
                .bind(r.bytes_in)
                .bind(r.bytes_out)
                .bind(r.rejections)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM usage_batches WHERE applied_at < $1")
                .bind(DbTime(forget_before))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Every tenant's hourly rows with `from <= hour < to`, by hour then tenant (the
    /// operator's export).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn usage_all(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let rows: Vec<UsageRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT tenant_id, hour, connection_seconds, peak_connections, messages_in, \
                 messages_out, bytes_in, bytes_out, rejections FROM usage_hourly \
                 WHERE hour >= $1 AND hour < $2 ORDER BY hour, tenant_id",
            )
            .bind(DbTime(from))
            .bind(DbTime(to))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(UsageRecord::from).collect())
    }

    /// The tenant's hourly rows with `from <= hour < to`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn usage(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let rows: Vec<UsageRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT tenant_id, hour, connection_seconds, peak_connections, messages_in, \
                 messages_out, bytes_in, bytes_out, rejections FROM usage_hourly \
                 WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour",
            )
            .bind(DbId(*tenant.as_uuid()))
            .bind(DbTime(from))
            .bind(DbTime(to))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(UsageRecord::from).collect())
    }
}
