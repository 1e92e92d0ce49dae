//! Usage metering into the store (issue 6, item 4): batches are idempotent, a restarted
//! recorder never doubles what was written, unknown tenants do not block a batch.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeDelta, Utc};
use tenantmq_common::TenantId;
use tenantmq_common::ids::Slug;
use tenantmq_common::metrics::Metrics;
use tenantmq_common::usage::{RejectReason, UsageDelta, UsageRecorder};
use tenantmq_control_store::models::{NewApiKey, NewTenant, UsageRecord};
use tenantmq_control_store::{Store, UsageFlusher, store_test};

async fn tenant(store: &Store, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: Slug::parse(slug).unwrap(),
        name: slug.into(),
        email: "a@b.c".into(),
    };
    let key = NewApiKey {
        name: None,
        prefix: "tmq_abcdefgh".into(),
        key_hash: format!("hash-{slug}"),
    };
    store.create_tenant(new, key).await.unwrap().0.id
}

fn hour(h: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from(UNIX_EPOCH) + TimeDelta::hours(h)
}

fn record(t: TenantId, h: i64, n: i64) -> UsageRecord {
    UsageRecord {
        tenant_id: t,
        hour: hour(h),
        connection_seconds: n,
        peak_connections: n,
        messages_in: n,
        messages_out: n,
        bytes_in: n,
        bytes_out: n,
        rejections: n,
    }
}

/// A test hour well inside the usage API's range, as a `SystemTime`.
fn at(h: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(h).unwrap() * 3600 + 17)
}

async fn total_in(store: &Store, t: TenantId, h: i64) -> i64 {
    let rows = store.usage(t, hour(h), hour(h + 1)).await.unwrap();
    rows.iter().map(|r| r.messages_in).sum()
}

store_test! {
    async fn a_batch_applied_twice_counts_once(store) {
        let a = tenant(&store, "tenant-a").await;
        let id = uuid::Uuid::now_v7();
        let batch = [record(a, 500_000, 3)];
        assert!(store.record_usage_batch(id, &batch).await.unwrap());
        assert!(!store.record_usage_batch(id, &batch).await.unwrap());
        assert_eq!(total_in(&store, a, 500_000).await, 3);
        assert!(store.record_usage_batch(uuid::Uuid::now_v7(), &batch).await.unwrap());
        let rows = store.usage(a, hour(500_000), hour(500_001)).await.unwrap();
        assert_eq!((rows[0].messages_in, rows[0].peak_connections), (6, 3));
    }
}

store_test! {
    async fn records_of_unknown_tenants_are_skipped_not_fatal(store) {
        let a = tenant(&store, "tenant-a").await;
        let ghost = TenantId::new_v7();
        let batch = [record(ghost, 500_000, 9), record(a, 500_000, 2)];
        assert!(store.record_usage_batch(uuid::Uuid::now_v7(), &batch).await.unwrap());
        assert_eq!(total_in(&store, a, 500_000).await, 2);
        assert!(store.usage(ghost, hour(0), hour(600_000)).await.unwrap().is_empty());
    }
}

store_test! {
    async fn usage_all_lists_every_tenant_by_hour(store) {
        let a = tenant(&store, "tenant-a").await;
        let b = tenant(&store, "tenant-b").await;
        let batch = [record(b, 500_001, 1), record(a, 500_000, 2), record(a, 500_001, 3)];
        store.record_usage_batch(uuid::Uuid::now_v7(), &batch).await.unwrap();
        let all = store.usage_all(hour(500_000), hour(500_002)).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].hour <= w[1].hour));
        assert_eq!(store.usage_all(hour(500_001), hour(500_002)).await.unwrap().len(), 2);
    }
}

store_test! {
    async fn flusher_writes_once_and_a_restart_does_not_double(store) {
        let a = tenant(&store, "tenant-a").await;
        let h = 500_000;
        let delta = |n| {
            let mut d = UsageDelta { messages_in: n, connection_seconds: n, peak_connections: 1, ..UsageDelta::default() };
            d.rejections.add(RejectReason::MessageRate);
            d
        };

        // First process: records, flushes twice (the second finds nothing new).
        let recorder = UsageRecorder::new(Arc::new(Metrics::new()));
        let mut flusher = UsageFlusher::new(recorder.clone(), store.clone());
        recorder.record_at(a, &delta(5), at(h));
        assert_eq!(flusher.flush().await.unwrap(), 1);
        assert_eq!(flusher.flush().await.unwrap(), 0);
        assert_eq!(recorder.metrics().usage_batches.get(), 1);
        flusher.finish().await;

        // A restart: a new recorder over the same database adds only its own usage.
        let recorder = UsageRecorder::new(Arc::new(Metrics::new()));
        let mut flusher = UsageFlusher::new(recorder.clone(), store.clone());
        recorder.record_at(a, &delta(2), at(h));
        flusher.flush().await.unwrap();
        flusher.finish().await;
        let rows = store.usage(a, hour(h), hour(h + 1)).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].messages_in, rows[0].connection_seconds, rows[0].rejections), (7, 7, 2));
    }
}

store_test! {
    async fn a_failed_write_is_retried_with_the_same_batch_and_counted_once(store) {
        let a = tenant(&store, "tenant-a").await;
        let h = 500_000;
        let recorder = UsageRecorder::new(Arc::new(Metrics::new()));
        let mut flusher = UsageFlusher::new(recorder.clone(), store.clone());
        recorder.record_at(a, &UsageDelta { messages_in: 4, ..UsageDelta::default() }, at(h));

        // The store refuses the batch: it stays waiting; usage recorded meanwhile waits too.
        let (fail, heal) = match store.backend_name() {
            "postgres" => ("CREATE FUNCTION fail_usage() RETURNS trigger AS $$ BEGIN \
                            RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
                            CREATE TRIGGER fail_usage BEFORE INSERT ON usage_batches \
                            FOR EACH ROW EXECUTE FUNCTION fail_usage();",
                           "DROP TRIGGER fail_usage ON usage_batches"),
            _ => ("CREATE TRIGGER fail_usage BEFORE INSERT ON usage_batches \
                   BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
                  "DROP TRIGGER fail_usage"),
        };
        store.execute_raw(fail).await.unwrap();
        assert!(flusher.flush().await.is_err());
        recorder.record_at(a, &UsageDelta { messages_in: 1, ..UsageDelta::default() }, at(h));
        assert_eq!(recorder.metrics().usage_write_errors.get(), 1);
        assert_eq!(total_in(&store, a, h).await, 0);

        store.execute_raw(heal).await.unwrap();
        assert_eq!(flusher.flush().await.unwrap(), 1);
        assert_eq!(total_in(&store, a, h).await, 4);
        flusher.finish().await;
        assert_eq!(total_in(&store, a, h).await, 5);
    }
}
