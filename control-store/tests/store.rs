//! Store behaviour the API tests do not reach directly, on both back-ends.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};
use tenantmq_common::TenantId;
use tenantmq_common::ids::Slug;
use tenantmq_control_store::models::{NewApiKey, NewTenant, UsageRecord};
use tenantmq_control_store::{Store, StoreError, store_test};

async fn tenant(store: &Store, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: Slug::parse(slug).unwrap(),
        name: slug.into(),
        email: "a@b.c".into(),
    };
    store.create_tenant(new, key(slug)).await.unwrap().0.id
}

fn key(seed: &str) -> NewApiKey {
    NewApiKey {
        name: None,
        prefix: "tmq_abcdefgh".into(),
        key_hash: format!("hash-{seed}"),
    }
}

fn usage(t: TenantId, hour: DateTime<Utc>, n: i64) -> UsageRecord {
    UsageRecord {
        tenant_id: t,
        hour,
        connection_seconds: n,
        peak_connections: n,
        messages_in: n,
        messages_out: n,
        bytes_in: n,
        bytes_out: n,
        rejections: n,
    }
}

store_test! {
    async fn usage_is_added_per_hour_and_peak_is_kept(store) {
        let t = tenant(&store, "acme").await;
        let hour: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        store.record_usage(&[usage(t, hour + TimeDelta::minutes(5), 3)]).await.unwrap();
        store.record_usage(&[usage(t, hour + TimeDelta::minutes(50), 2), usage(t, hour + TimeDelta::hours(1), 1)])
            .await
            .unwrap();
        let rows = store.usage(t, hour, hour + TimeDelta::hours(2)).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].hour, hour);
        assert_eq!((rows[0].messages_in, rows[0].peak_connections, rows[0].rejections), (5, 3, 5));
        assert_eq!(rows[1].hour, hour + TimeDelta::hours(1));
        // The end of the range is exclusive.
        assert_eq!(store.usage(t, hour, hour + TimeDelta::hours(1)).await.unwrap().len(), 1);
        // A batch with an unknown tenant fails as a whole.
        let ghost = TenantId::new_v7();
        assert!(store.record_usage(&[usage(t, hour, 100), usage(ghost, hour, 1)]).await.is_err());
        assert_eq!(store.usage(t, hour, hour + TimeDelta::hours(1)).await.unwrap()[0].messages_in, 5);
    }
}

store_test! {
    async fn api_keys_need_a_tenant_and_the_last_one_stays(store) {
        assert!(matches!(store.create_api_key(TenantId::new_v7(), key("x")).await, Err(StoreError::NotFound)));
        let t = tenant(&store, "acme").await;
        let only = store.list_api_keys(t).await.unwrap()[0].id;
        assert!(matches!(store.delete_api_key(t, only).await, Err(StoreError::LastApiKey)));
        let second = store.create_api_key(t, key("second")).await.unwrap();
        assert!(matches!(store.create_api_key(t, key("second")).await, Err(StoreError::Conflict(_))));
        store.delete_api_key(t, only).await.unwrap();
        assert_eq!(store.list_api_keys(t).await.unwrap(), vec![second]);
        assert!(store.tenant_for_api_key("hash-acme").await.unwrap().is_none());
        assert_eq!(store.tenant_for_api_key("hash-second").await.unwrap().unwrap().1.id, t);
    }
}

store_test! {
    async fn tenants_page_in_signup_order(store) {
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(tenant(&store, &format!("tenant-{n}")).await);
        }
        let first = store.list_tenants(2, None).await.unwrap();
        let second = store.list_tenants(2, Some(first[1].id)).await.unwrap();
        let third = store.list_tenants(2, Some(second[1].id)).await.unwrap();
        let seen: Vec<_> = first.iter().chain(&second).chain(&third).map(|t| t.id).collect();
        assert_eq!(seen, ids);
        let dup = NewTenant { slug: Slug::parse("tenant-0").unwrap(), name: "x".into(), email: "a@b.c".into() };
        assert!(matches!(store.create_tenant(dup, key("dup")).await, Err(StoreError::Conflict("slug"))));
    }
}

#[tokio::test]
async fn connect_accepts_sqlite_files_and_refuses_other_schemes() {
    let path = std::env::temp_dir().join(format!("tenantmq-store-{}.db", uuid::Uuid::now_v7()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Store::connect(&url, true).await.unwrap();
    tenant(&store, "acme").await;
    store.close().await;
    // Reopening applies nothing new and keeps the data.
    let store = Store::connect(&url, true).await.unwrap();
    assert!(
        store
            .tenant_by_slug(&Slug::parse("acme").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    store.close().await;
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Store::connect("mysql://x", false).await,
        Err(StoreError::UnsupportedUrl)
    ));
}

store_test! {
    async fn concurrent_revocations_keep_one_key(store) {
        let t = tenant(&store, "acme").await;
        store.create_api_key(t, key("second")).await.unwrap();
        let ids: Vec<_> = store.list_api_keys(t).await.unwrap().into_iter().map(|k| k.id).collect();
        let (a, b) = tokio::join!(store.delete_api_key(t, ids[0]), store.delete_api_key(t, ids[1]));
        assert!(a.is_ok() != b.is_ok(), "exactly one revocation succeeds: {a:?} {b:?}");
        assert_eq!(store.list_api_keys(t).await.unwrap().len(), 1);
    }
}
