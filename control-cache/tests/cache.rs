//! The read-side cache: lookups, invalidation through both feeds, static stability.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tenantmq_common::TenantId;
use tenantmq_common::auth::{AclAction, Permission};
use tenantmq_common::ids::Slug;
use tenantmq_control_cache::{CacheConfig, ControlCache};
use tenantmq_control_store::models::{
    AdminTenantUpdate, NewAclRule, NewApiKey, NewCaCertificate, NewCredential, NewTenant,
    TenantStatus,
};
use tenantmq_control_store::{
    ChangeFeed, ChangeKind, InProcessFeed, Invalidation, RedisFeed, Store, store_test,
};
use uuid::Uuid;

/// How long a change may take to show through the cache.
const PROPAGATION: Duration = Duration::from_secs(2);

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn cheap_hash(password: &str) -> String {
    let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8, 1, 1, None).unwrap(),
    )
    .hash_password(password.as_bytes(), &salt)
    .unwrap()
    .to_string()
}

async fn tenant(store: &Store, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: Slug::parse(slug).unwrap(),
        name: slug.into(),
        email: "a@b.c".into(),
    };
    let key = NewApiKey {
        name: None,
        prefix: "tmq_x".into(),
        key_hash: format!("hash-{slug}"),
    };
    store.create_tenant(new, key).await.unwrap().0.id
}

async fn credential(store: &Store, t: TenantId, username: &str, password: &str) -> Uuid {
    let new = NewCredential {
        username: username.into(),
        password_hash: cheap_hash(password),
    };
    store.create_credential(t, new).await.unwrap().id
}

fn rule(credential_id: Option<Uuid>, filter: &str) -> NewAclRule {
    NewAclRule {
        credential_id,
        action: AclAction::Publish,
        topic_filter: filter.into(),
        permission: Permission::Allow,
    }
}

/// Polls `check` until it holds or [`PROPAGATION`] passes.
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

store_test! {
    async fn lookups(store) {
        let feed = InProcessFeed::new();
        let cache = ControlCache::new(store.clone(), &feed, CacheConfig::default());
        let t = tenant(&store, "acme").await;
        let c = credential(&store, t, "sensor-1", "correct horse").await;
        store.create_acl_rule(t, rule(None, "wide/#")).await.unwrap();
        store.create_acl_rule(t, rule(Some(c), "own/${username}")).await.unwrap();

        let view = cache.tenant_by_slug(&Slug::parse("acme").unwrap()).await.unwrap().unwrap();
        assert_eq!((view.id, view.status, view.plan.as_str()), (t, TenantStatus::Active, "free"));
        assert_eq!(*cache.quotas(t).await.unwrap().unwrap(), tenantmq_common::quota::Quotas::free());
        assert!(cache.tenant_by_slug(&Slug::parse("nobody").unwrap()).await.unwrap().is_none());
        assert!(cache.tenant_by_id(TenantId::new_v7()).await.unwrap().is_none());

        let id = cache.verify_password(t, "sensor-1", b"correct horse").await.unwrap().unwrap();
        assert_eq!((id.credential_id, id.username.as_str()), (c, "sensor-1"));
        assert!(cache.verify_password(t, "sensor-1", b"wrong horse").await.unwrap().is_none());
        assert!(cache.verify_password(t, "nobody", b"correct horse").await.unwrap().is_none());
        let other = tenant(&store, "other").await;
        assert!(cache.verify_password(other, "sensor-1", b"correct horse").await.unwrap().is_none());

        assert_eq!(cache.acl_rules(t, Some(c)).await.unwrap().rules.len(), 2);
        assert_eq!(cache.acl_rules(t, None).await.unwrap().rules.len(), 1);

        let hits = cache.stats().hits;
        cache.verify_password(t, "sensor-1", b"correct horse").await.unwrap().unwrap();
        cache.acl_rules(t, Some(c)).await.unwrap();
        assert_eq!(cache.stats().hits, hits + 2);
    }
}

/// Creates a credential, an ACL rule and a suspension in the store, announcing each on
/// `publisher`, and checks `cache` (fed by another feed object) sees each within 2 s.
async fn changes_propagate(store: Store, publisher: &dyn ChangeFeed, cache: ControlCache) {
    let t = tenant(&store, "acme").await;
    let slug = Slug::parse("acme").unwrap();
    // Warm the cache with the "before" state.
    assert!(
        cache
            .verify_password(t, "late", b"password-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(cache.acl_rules(t, None).await.unwrap().rules.is_empty());
    assert_eq!(
        cache.tenant_by_slug(&slug).await.unwrap().unwrap().status,
        TenantStatus::Active
    );

    credential(&store, t, "late", "password-1").await;
    publisher.publish(Invalidation::tenant(t, ChangeKind::Credential));
    eventually("new credential", || async {
        cache
            .verify_password(t, "late", b"password-1")
            .await
            .unwrap()
            .is_some()
    })
    .await;

    store.create_acl_rule(t, rule(None, "a/b")).await.unwrap();
    publisher.publish(Invalidation::tenant(t, ChangeKind::Acl));
    eventually("new ACL rule", || async {
        cache.acl_rules(t, None).await.unwrap().rules.len() == 1
    })
    .await;

    let suspend = AdminTenantUpdate {
        status: Some(TenantStatus::Suspended),
        ..Default::default()
    };
    store.admin_update_tenant(t, suspend).await.unwrap();
    publisher.publish(Invalidation::tenant(t, ChangeKind::Status));
    eventually("suspension", || async {
        cache.tenant_by_slug(&slug).await.unwrap().unwrap().status == TenantStatus::Suspended
    })
    .await;
}

store_test! {
    async fn changes_propagate_through_the_in_process_feed(store) {
        let feed = InProcessFeed::new();
        // A long TTL, so only the invalidations can explain fresh answers.
        let config = CacheConfig { ttl: Duration::from_secs(3600), negative_ttl: Duration::from_secs(3600),
            password_fail_ttl: Duration::from_secs(3600), ..CacheConfig::default() };
        let cache = ControlCache::new(store.clone(), &feed, config);
        changes_propagate(store, &feed, cache).await;
    }
}

store_test! {
    async fn changes_propagate_through_redis(store) {
        let (_trigger, shutdown) = tenantmq_common::shutdown::channel();
        let api_side = RedisFeed::connect(&redis_url(), shutdown.clone()).await.expect("redis at REDIS_URL");
        let data_side = RedisFeed::connect(&redis_url(), shutdown).await.unwrap();
        let config = CacheConfig { ttl: Duration::from_secs(3600), negative_ttl: Duration::from_secs(3600),
            password_fail_ttl: Duration::from_secs(3600), ..CacheConfig::default() };
        let cache = ControlCache::new(store.clone(), &data_side, config);
        changes_propagate(store, &api_side, cache).await;
    }
}

/// A private `redis-server` on a free port, so that killing it disturbs no other test.
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server in PATH (scripts/test installs it)");
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("private redis-server did not start");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next_matching(
    rx: &mut tokio::sync::broadcast::Receiver<Invalidation>,
    want: Invalidation,
    within: Duration,
) -> bool {
    tokio::time::timeout(within, async {
        loop {
            if rx.recv().await.unwrap() == want {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn redis_feed_flushes_everything_after_a_reconnect() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let (_trigger, shutdown) = tenantmq_common::shutdown::channel();
    let feed = RedisFeed::connect(&redis.url(), shutdown)
        .await
        .expect("private redis");
    let mut rx = feed.subscribe();
    let t = TenantId::new_v7();
    feed.publish(Invalidation::tenant(t, ChangeKind::Acl));
    assert!(
        next_matching(
            &mut rx,
            Invalidation::tenant(t, ChangeKind::Acl),
            PROPAGATION
        )
        .await
    );

    // The server goes away and comes back: the subscriber must reconnect and announce the
    // gap, since pub/sub kept nothing for it meanwhile.
    drop(redis);
    let redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    assert!(
        next_matching(&mut rx, Invalidation::All, Duration::from_secs(10)).await,
        "no flush after reconnect"
    );
    // Publishing works again too (the publisher's connection manager reconnects).
    feed.publish(Invalidation::tenant(t, ChangeKind::Quota));
    assert!(
        next_matching(
            &mut rx,
            Invalidation::tenant(t, ChangeKind::Quota),
            Duration::from_secs(5)
        )
        .await
    );
}

store_test! {
    async fn serves_stale_entries_when_the_store_is_down(store) {
        let feed = InProcessFeed::new();
        // Zero TTL: every lookup goes to the store, so every answer below after the store
        // closes is a stale fallback.
        let config = CacheConfig { ttl: Duration::ZERO, negative_ttl: Duration::ZERO,
            password_ok_ttl: Duration::ZERO, password_fail_ttl: Duration::ZERO, ..CacheConfig::default() };
        let cache = ControlCache::new(store.clone(), &feed, config);
        let t = tenant(&store, "acme").await;
        let c = credential(&store, t, "sensor-1", "correct horse").await;
        store.create_acl_rule(t, rule(Some(c), "x/#")).await.unwrap();
        let ca = NewCaCertificate { name: None, pem: "pem".into(), der: vec![1, 2, 3],
            fingerprint_sha256: "f".repeat(64), subject: "CN=x".into(), not_after: chrono::Utc::now() };
        store.create_ca_certificate(t, ca).await.unwrap();
        let slug = Slug::parse("acme").unwrap();
        cache.tenant_by_slug(&slug).await.unwrap().unwrap();
        cache.tenant_by_id(t).await.unwrap().unwrap();
        cache.verify_password(t, "sensor-1", b"correct horse").await.unwrap().unwrap();
        cache.acl_rules(t, Some(c)).await.unwrap();
        cache.ca_certificates().await.unwrap();

        store.close().await;
        // An invalidation while the store is down marks entries stale but keeps them.
        feed.publish(Invalidation::All);
        tokio::time::sleep(Duration::from_millis(50)).await;

        assert_eq!(cache.tenant_by_slug(&slug).await.unwrap().unwrap().id, t);
        assert_eq!(cache.tenant_by_id(t).await.unwrap().unwrap().slug, slug);
        let id = cache.verify_password(t, "sensor-1", b"correct horse").await.unwrap().unwrap();
        assert_eq!(id.credential_id, c);
        assert!(cache.verify_password(t, "sensor-1", b"wrong").await.unwrap().is_none());
        assert_eq!(cache.acl_rules(t, Some(c)).await.unwrap().rules.len(), 1);
        assert_eq!(cache.ca_certificates().await.unwrap()[0].der, vec![1, 2, 3]);
        let stats = cache.stats();
        assert!(stats.stale_served >= 6 && stats.store_errors >= stats.stale_served, "{stats:?}");

        // Nothing cached and no store: an error, not a guess.
        assert!(cache.tenant_by_slug(&Slug::parse("unknown").unwrap()).await.is_err());
        assert!(cache.verify_password(t, "nobody", b"x").await.is_err());
    }
}

#[tokio::test]
async fn cache_is_shareable() {
    let store = tenantmq_control_store::test_util::sqlite_store().await;
    let cache = Arc::new(ControlCache::new(
        store,
        &InProcessFeed::new(),
        CacheConfig::default(),
    ));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.tenant_by_id(TenantId::new_v7()).await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connections_with_one_credential_hashes_once() {
    let store = tenantmq_control_store::test_util::sqlite_store().await;
    let t = tenant(&store, "fleet").await;
    credential(&store, t, "dev", "shared secret").await;
    let cache = ControlCache::new(store, &InProcessFeed::new(), CacheConfig::default());
    let check = |password: &'static [u8]| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.verify_password(t, "dev", password).await.unwrap() })
    };
    let burst: Vec<_> = (0..64).map(|_| check(b"shared secret")).collect();
    let wrong = check(b"not the secret");
    for task in burst {
        assert!(task.await.unwrap().is_some());
    }
    // A wrong password never rides on the right one's verdict: it is hashed on its own.
    assert!(wrong.await.unwrap().is_none());
    assert_eq!(cache.stats().password_hashes, 2);
    assert!(check(b"shared secret").await.unwrap().is_some());
    assert_eq!(cache.stats().password_hashes, 2, "the verdict is cached");
}
