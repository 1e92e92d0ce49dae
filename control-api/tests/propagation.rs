//! API changes reach the data plane's cache (tenantmq-control-cache) within 2 s through the
//! change feed — in-process and over Redis.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{CA_PEM, OPERATOR_TOKEN, TestApp, test_config};
use tenantmq_common::TenantId;
use tenantmq_common::ids::Slug;
use tenantmq_control_cache::{CacheConfig, ControlCache};
use tenantmq_control_store::models::TenantStatus;
use tenantmq_control_store::{ChangeFeed, InProcessFeed, RedisFeed, store_test};

const PROPAGATION: Duration = Duration::from_secs(2);

/// A cache whose entries never expire, so only invalidations can make changes visible.
fn long_lived() -> CacheConfig {
    let hour = Duration::from_secs(3600);
    CacheConfig {
        ttl: hour,
        negative_ttl: hour,
        password_ok_ttl: hour,
        password_fail_ttl: hour,
        ..CacheConfig::default()
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PROPAGATION;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not visible within {PROPAGATION:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn api_changes_reach_the_cache(app: TestApp, cache: ControlCache) {
    let slug = Slug::parse("acme").unwrap();
    // Before signup: a negative entry that must not outlive the signup.
    assert!(cache.tenant_by_slug(&slug).await.unwrap().is_none());
    let (id, key) = app.signup("acme").await;
    let t = TenantId::from_uuid(id.parse().unwrap());
    eventually("signup", || async {
        cache.tenant_by_slug(&slug).await.unwrap().is_some()
    })
    .await;

    assert!(
        cache
            .verify_password(t, "sensor-1", b"s3cret-pass")
            .await
            .unwrap()
            .is_none()
    );
    let cred = app.credential(&key, "sensor-1").await;
    eventually("credential", || async {
        cache
            .verify_password(t, "sensor-1", b"s3cret-pass")
            .await
            .unwrap()
            .is_some()
    })
    .await;

    let cred_id = Some(cred.parse().unwrap());
    assert!(cache.acl_rules(t, cred_id).await.unwrap().rules.is_empty());
    let rule = json!({"credential_id": cred, "action": "publish", "topic_filter": "t/${clientid}", "permission": "allow"});
    assert_eq!(
        app.post("/v1/acls", &key, rule).await.status,
        StatusCode::CREATED
    );
    eventually("ACL rule", || async {
        cache.acl_rules(t, cred_id).await.unwrap().rules.len() == 1
    })
    .await;

    assert!(cache.ca_certificates().await.unwrap().is_empty());
    assert_eq!(
        app.post("/v1/ca-certificates", &key, json!({"pem": CA_PEM}))
            .await
            .status,
        StatusCode::CREATED
    );
    eventually("CA", || async {
        cache.ca_certificates().await.unwrap().len() == 1
    })
    .await;

    let admin = format!("/v1/admin/tenants/{id}");
    let patch = json!({"status": "suspended", "plan": "pro"});
    assert_eq!(
        app.call(Method::PATCH, &admin, Some(OPERATOR_TOKEN), Some(patch))
            .await
            .status,
        StatusCode::OK
    );
    eventually("suspension and plan", || async {
        let v = cache.tenant_by_id(t).await.unwrap().unwrap();
        v.status == TenantStatus::Suspended && v.plan == "pro" && v.quotas.max_connections == 10_000
    })
    .await;

    assert_eq!(
        app.delete(&format!("/v1/credentials/{cred}"), &key)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let patch = json!({"status": "active"});
    app.call(Method::PATCH, &admin, Some(OPERATOR_TOKEN), Some(patch))
        .await;
    assert_eq!(
        app.delete(&format!("/v1/credentials/{cred}"), &key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    eventually("credential deletion", || async {
        cache
            .verify_password(t, "sensor-1", b"s3cret-pass")
            .await
            .unwrap()
            .is_none()
    })
    .await;

    assert_eq!(
        app.delete(&admin, OPERATOR_TOKEN).await.status,
        StatusCode::NO_CONTENT
    );
    eventually("tenant deletion", || async {
        cache.tenant_by_slug(&slug).await.unwrap().is_none()
            && cache.ca_certificates().await.unwrap().is_empty()
    })
    .await;
}

store_test! {
    async fn in_process(store) {
        let feed: Arc<dyn ChangeFeed> = Arc::new(InProcessFeed::new());
        let cache = ControlCache::new(store.clone(), feed.as_ref(), long_lived());
        api_changes_reach_the_cache(TestApp::with_feed(store, test_config(), feed), cache).await;
    }
}

store_test! {
    async fn over_redis(store) {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let (_trigger, shutdown) = tenantmq_common::shutdown::channel();
        // Two connections, as an API process and a gateway process would have.
        let api_feed: Arc<dyn ChangeFeed> = Arc::new(RedisFeed::connect(&url, shutdown.clone()).await.expect("redis"));
        let gateway_feed = RedisFeed::connect(&url, shutdown).await.unwrap();
        let cache = ControlCache::new(store.clone(), &gateway_feed, long_lived());
        api_changes_reach_the_cache(TestApp::with_feed(store, test_config(), api_feed), cache).await;
    }
}
