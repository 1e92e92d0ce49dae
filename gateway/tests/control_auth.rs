//! The production authenticator ([`ControlAuthenticator`]) and the mTLS trust list
//! ([`keep_cas_current`]) against a real control store, on Postgres and on SQLite
//! (`store_test!` runs each test on both).
//!
//! The rules are those of issue 4, items 2 and 3: the tenant is selected by SNI
//! `<slug>.<base_domain>`, by a `<slug>/<username>` username or by the client certificate's CA,
//! and every selector present must agree; every kind of bad credential gets the same answer;
//! suspended tenants are refused; control-plane changes reach new connections within 2 s;
//! devices already known keep connecting while the store is down; failures are rate-limited
//! per source address.
//!
//! Changes are written to the store and announced on the in-process feed exactly as the control
//! API's handlers announce them ([`Plane`]); that the API does announce them is proven by
//! `control-api/tests/propagation.rs`, and keeps the gateway free of any dependency on the
//! control API, tests included. Client certificates are given as [`ClientCertInfo`] values: the
//! TLS layer that produces them is tested in `tests/edge/mtls.rs`.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use bytes::Bytes;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use tenantmq_codec::{ByteString, Connect, ConnectProperties, ProtocolVersion};
use tenantmq_common::TenantId;
use tenantmq_common::auth::{AclAction, AclRule, AuthContext, AuthMethod, Permission};
use tenantmq_common::ids::Slug;
use tenantmq_common::quota::{QuotaOverrides, Quotas};
use tenantmq_common::shutdown;
use tenantmq_control_cache::{CacheConfig, ControlCache};
use tenantmq_control_store::models::{
    AdminTenantUpdate, NewAclRule, NewApiKey, NewCaCertificate, NewCredential, NewTenant,
    TenantStatus,
};
use tenantmq_control_store::{
    ChangeFeed, ChangeKind, InProcessFeed, Invalidation, Store, store_test,
};
use tenantmq_gateway::auth::{AuthFailure, AuthRequest, Authenticator, ClientCertInfo};
use tenantmq_gateway::certs::test_util::{Pem, new_ca};
use tenantmq_gateway::control_auth::ControlAuthenticator;
use tenantmq_gateway::control_cas::keep_cas_current;
use tenantmq_gateway::{CaList, ClientCaSource};
use uuid::Uuid;

/// The SNI base domain of these tests.
const BASE_DOMAIN: &str = "mqtt.localhost";

/// How long a control-plane change may take to reach new connections (issue 4, item 3).
const PROPAGATION: Duration = Duration::from_secs(2);

const BAD: Result<TenantId, AuthFailure> = Err(AuthFailure::BadCredentials);

/// The SNI name of tenant `slug`.
fn sni(slug: &str) -> String {
    format!("{slug}.{BASE_DOMAIN}")
}

/// An argon2id hash with the cheapest parameters: the cache reads them from the hash, so
/// verification is fast too.
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

/// A cache whose entries never expire, so that only invalidations can make a change visible.
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

/// The control plane as the gateway sees it: the store, the in-process change feed and the
/// read-side cache. Each write announces what the control API's handler for it announces.
struct Plane {
    store: Store,
    feed: InProcessFeed,
    cache: ControlCache,
}

impl Plane {
    fn new(store: Store) -> Self {
        Self::with_config(store, CacheConfig::default())
    }

    fn with_config(store: Store, config: CacheConfig) -> Self {
        let feed = InProcessFeed::new();
        let cache = ControlCache::new(store.clone(), &feed, config);
        Self { store, feed, cache }
    }

    fn authenticator(&self) -> ControlAuthenticator {
        ControlAuthenticator::new(self.cache.clone(), BASE_DOMAIN)
    }

    fn announce(&self, tenant: TenantId, kind: ChangeKind) {
        self.feed.publish(Invalidation::tenant(tenant, kind));
    }

    /// Signup (`POST /v1/signup`).
    async fn tenant(&self, slug: &str) -> TenantId {
        let new = NewTenant {
            slug: Slug::parse(slug).unwrap(),
            name: slug.into(),
            email: "ops@example.com".into(),
        };
        let key = NewApiKey {
            name: None,
            prefix: "tmq_x".into(),
            key_hash: format!("hash-{slug}"),
        };
        let id = self.store.create_tenant(new, key).await.unwrap().0.id;
        self.announce(id, ChangeKind::Created);
        id
    }

    /// `POST /v1/credentials`.
    async fn credential(&self, tenant: TenantId, username: &str, password: &str) -> Uuid {
        let new = NewCredential {
            username: username.into(),
            password_hash: cheap_hash(password),
        };
        let id = self.store.create_credential(tenant, new).await.unwrap().id;
        self.announce(tenant, ChangeKind::Credential);
        id
    }

    /// `DELETE /v1/credentials/{id}` (its ACL rules go with it).
    async fn delete_credential(&self, tenant: TenantId, id: Uuid) {
        self.store.delete_credential(tenant, id).await.unwrap();
        self.announce(tenant, ChangeKind::Credential);
        self.announce(tenant, ChangeKind::Acl);
    }

    /// `POST /v1/acls`: an allow rule for publishing to `filter`; returns the rule as the
    /// engine will see it.
    async fn allow(&self, tenant: TenantId, credential: Option<Uuid>, filter: &str) -> AclRule {
        let new = NewAclRule {
            credential_id: credential,
            action: AclAction::Publish,
            topic_filter: filter.into(),
            permission: Permission::Allow,
        };
        self.store.create_acl_rule(tenant, new).await.unwrap();
        self.announce(tenant, ChangeKind::Acl);
        AclRule {
            action: AclAction::Publish,
            topic_filter: filter.into(),
            permission: Permission::Allow,
        }
    }

    /// `PATCH /v1/admin/tenants/{id}` with an operator's change.
    async fn admin_update(&self, tenant: TenantId, update: AdminTenantUpdate) {
        let mut kinds = Vec::new();
        if update.status.is_some() {
            kinds.push(ChangeKind::Status);
        }
        if update.plan.is_some() || update.quota_overrides.is_some() {
            kinds.push(ChangeKind::Quota);
        }
        self.store
            .admin_update_tenant(tenant, update)
            .await
            .unwrap();
        for kind in kinds {
            self.announce(tenant, kind);
        }
    }

    async fn set_status(&self, tenant: TenantId, status: TenantStatus) {
        let update = AdminTenantUpdate {
            status: Some(status),
            ..AdminTenantUpdate::default()
        };
        self.admin_update(tenant, update).await;
    }

    /// `DELETE /v1/admin/tenants/{id}`.
    async fn delete_tenant(&self, tenant: TenantId) {
        self.store.delete_tenant(tenant).await.unwrap();
        self.announce(tenant, ChangeKind::Deleted);
    }

    /// `POST /v1/ca-certificates`.
    async fn register_ca(&self, tenant: TenantId, ca: &Pem) -> Uuid {
        let der = CertificateDer::from_pem_slice(ca.cert.as_bytes()).unwrap();
        let new = NewCaCertificate {
            name: None,
            pem: ca.cert.clone(),
            der: der.to_vec(),
            fingerprint_sha256: Sha256::digest(&der)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            subject: "CN=test".into(),
            not_after: chrono::Utc::now() + chrono::TimeDelta::days(365),
        };
        let id = self
            .store
            .create_ca_certificate(tenant, new)
            .await
            .unwrap()
            .id;
        self.announce(tenant, ChangeKind::CaCertificate);
        id
    }

    /// `DELETE /v1/ca-certificates/{id}`.
    async fn delete_ca(&self, tenant: TenantId, id: Uuid) {
        self.store.delete_ca_certificate(tenant, id).await.unwrap();
        self.announce(tenant, ChangeKind::CaCertificate);
    }
}

/// One connection attempt: what the CONNECT, the TLS layer and the socket tell the
/// authenticator.
#[derive(Clone, Debug, Default)]
struct Attempt {
    sni: Option<String>,
    username: Option<String>,
    password: Option<&'static str>,
    peer: Option<SocketAddr>,
    cert: Option<ClientCertInfo>,
}

/// A CONNECT with a username and a password.
fn login(username: &str, password: &'static str) -> Attempt {
    Attempt {
        username: Some(username.into()),
        password: Some(password),
        ..Attempt::default()
    }
}

/// A CONNECT with a username and no password.
fn username_only(username: &str) -> Attempt {
    Attempt {
        username: Some(username.into()),
        ..Attempt::default()
    }
}

/// A CONNECT with a password and no username (MQTT 5 allows it, 3.1.2.9).
fn password_only(password: &'static str) -> Attempt {
    Attempt {
        password: Some(password),
        ..Attempt::default()
    }
}

/// A CONNECT with neither username nor password.
fn anonymous() -> Attempt {
    Attempt::default()
}

impl Attempt {
    fn sni(mut self, name: &str) -> Self {
        self.sni = Some(name.into());
        self
    }

    fn cert(mut self, cert: &ClientCertInfo) -> Self {
        self.cert = Some(cert.clone());
        self
    }

    fn from(mut self, peer: &str) -> Self {
        self.peer = Some(peer.parse().unwrap());
        self
    }

    async fn run(&self, auth: &ControlAuthenticator) -> Result<AuthContext, AuthFailure> {
        let connect = Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 30,
            client_id: ByteString::from("device-1"),
            will: None,
            username: self.username.as_deref().map(ByteString::from),
            password: self.password.map(|p| Bytes::from_static(p.as_bytes())),
            properties: ConnectProperties::default(),
        };
        let req = AuthRequest {
            connect: &connect,
            sni: self.sni.as_deref(),
            peer: self.peer,
            client_cert: self.cert.as_ref(),
        };
        auth.authenticate(req).await
    }

    /// The tenant the attempt got into, or why it was refused.
    async fn tenant(&self, auth: &ControlAuthenticator) -> Result<TenantId, AuthFailure> {
        self.run(auth).await.map(|ctx| ctx.tenant)
    }

    /// Retries until the attempt's outcome is `expected`, failing after [`PROPAGATION`].
    async fn eventually(
        &self,
        auth: &ControlAuthenticator,
        expected: Result<TenantId, AuthFailure>,
    ) {
        let deadline = tokio::time::Instant::now() + PROPAGATION;
        loop {
            let outcome = self.tenant(auth).await;
            if outcome == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{self:?}: still {outcome:?} after {PROPAGATION:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A verified client certificate of the CA registration `ca_id` of `tenant`, naming `cn`.
fn client_cert(tenant: TenantId, ca_id: Uuid, cn: Option<&str>) -> ClientCertInfo {
    ClientCertInfo {
        tenant,
        ca_id,
        common_name: cn.map(str::to_owned),
        other_registrations: Vec::new(),
    }
}

store_test! {
    async fn sni_and_username_select_the_tenant_and_must_agree(store) {
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        let beta = plane.tenant("beta").await;
        // The same username in both tenants: only the selector decides whose is checked.
        plane.credential(acme, "dev", "acme-pass").await;
        plane.credential(beta, "dev", "beta-pass").await;
        let auth = plane.authenticator();

        assert_eq!(login("dev", "acme-pass").sni(&sni("acme")).tenant(&auth).await, Ok(acme));
        assert_eq!(login("dev", "beta-pass").sni(&sni("beta")).tenant(&auth).await, Ok(beta));
        assert_eq!(login("acme/dev", "acme-pass").tenant(&auth).await, Ok(acme));
        assert_eq!(login("beta/dev", "beta-pass").tenant(&auth).await, Ok(beta));
        // Both present and agreeing.
        assert_eq!(login("acme/dev", "acme-pass").sni(&sni("acme")).tenant(&auth).await, Ok(acme));
        // Both present and disagreeing, whichever tenant the password is right for.
        for (name, password) in [("acme", "acme-pass"), ("beta", "beta-pass")] {
            let acme_in_beta = login("acme/dev", password).sni(&sni("beta"));
            assert_eq!(acme_in_beta.tenant(&auth).await, BAD, "{name}'s password");
            let beta_in_acme = login("beta/dev", password).sni(&sni("acme"));
            assert_eq!(beta_in_acme.tenant(&auth).await, BAD, "{name}'s password");
        }
        // A name that is not `<label>.<base_domain>` selects nothing: the username decides.
        let outside = ["beta.example.com", "beta.notmqtt.localhost", "beta", "localhost"];
        for name in [BASE_DOMAIN].into_iter().chain(outside) {
            let attempt = login("acme/dev", "acme-pass").sni(name);
            assert_eq!(attempt.tenant(&auth).await, Ok(acme), "SNI {name}");
        }
        // DNS names are case-insensitive (RFC 4343).
        let shouting = login("dev", "acme-pass").sni("ACME.Mqtt.LOCALHOST");
        assert_eq!(shouting.tenant(&auth).await, Ok(acme));
        // Something that is not a slug, in the username or in front of the base domain.
        for username in ["Acme/dev", "ac/dev", "/dev", "ac me/dev", "acme_1/dev", "acme.x/dev"] {
            let attempt = login(username, "acme-pass");
            assert_eq!(attempt.tenant(&auth).await, BAD, "username {username}");
        }
        let not_slugs = ["ac", "acme_1", "x.acme", ""].map(sni);
        for name in &not_slugs {
            let attempt = login("acme/dev", "acme-pass").sni(name);
            assert_eq!(attempt.tenant(&auth).await, BAD, "SNI {name}");
        }
    }
}

store_test! {
    async fn every_bad_credential_gets_the_same_answer(store) {
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        let beta = plane.tenant("beta").await;
        plane.credential(acme, "dev", "acme-pass").await;
        plane.credential(acme, "acme-only", "acme-only-pass").await;
        plane.credential(beta, "dev", "beta-pass").await;
        let auth = plane.authenticator();
        assert_eq!(login("acme/dev", "acme-pass").tenant(&auth).await, Ok(acme));

        // Unknown tenant, unknown user, wrong password: one answer, so that probing tells
        // nothing about which slugs or usernames exist.
        assert_eq!(login("ghost/dev", "acme-pass").tenant(&auth).await, BAD);
        assert_eq!(login("dev", "acme-pass").sni(&sni("ghost")).tenant(&auth).await, BAD);
        assert_eq!(login("acme/nobody", "acme-pass").tenant(&auth).await, BAD);
        assert_eq!(login("acme/dev", "wrong").tenant(&auth).await, BAD);
        assert_eq!(login("acme/dev", "").tenant(&auth).await, BAD);
        // Nothing to authenticate with.
        assert_eq!(anonymous().tenant(&auth).await, BAD);
        assert_eq!(anonymous().sni(&sni("acme")).tenant(&auth).await, BAD);
        assert_eq!(username_only("acme/dev").tenant(&auth).await, BAD);
        // MQTT 5 allows a password without a username (3.1.2.9); there is no one to check it for.
        assert_eq!(password_only("acme-pass").tenant(&auth).await, BAD);
        assert_eq!(password_only("acme-pass").sni(&sni("acme")).tenant(&auth).await, BAD);
        // One tenant's credential under another tenant's name.
        assert_eq!(login("beta/dev", "acme-pass").tenant(&auth).await, BAD);
        assert_eq!(login("dev", "acme-pass").sni(&sni("beta")).tenant(&auth).await, BAD);
        assert_eq!(login("beta/acme-only", "acme-only-pass").tenant(&auth).await, BAD);
        assert_eq!(login("acme-only", "acme-only-pass").sni(&sni("beta")).tenant(&auth).await, BAD);
    }
}

store_test! {
    async fn suspended_tenants_are_refused_and_deleted_ones_unknown(store) {
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        plane.credential(acme, "dev", "acme-pass").await;
        let auth = plane.authenticator();
        let device = login("acme/dev", "acme-pass");
        assert_eq!(device.tenant(&auth).await, Ok(acme));

        plane.set_status(acme, TenantStatus::Suspended).await;
        device.eventually(&auth, Err(AuthFailure::NotAuthorized)).await;
        let by_sni = login("dev", "acme-pass").sni(&sni("acme"));
        assert_eq!(by_sni.tenant(&auth).await, Err(AuthFailure::NotAuthorized));
        // "Not authorized" is for devices that proved who they are: anyone else learns
        // nothing about the tenant, not even that it exists and is suspended.
        assert_eq!(login("acme/dev", "wrong").tenant(&auth).await, BAD);
        assert_eq!(login("acme/nobody", "acme-pass").tenant(&auth).await, BAD);
        assert_eq!(anonymous().sni(&sni("acme")).tenant(&auth).await, BAD);

        plane.set_status(acme, TenantStatus::Active).await;
        device.eventually(&auth, Ok(acme)).await;

        plane.delete_tenant(acme).await;
        device.eventually(&auth, BAD).await;
        assert_eq!(by_sni.tenant(&auth).await, BAD);
    }
}

store_test! {
    async fn the_context_carries_identity_quotas_and_acl_rules(store) {
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        let beta = plane.tenant("beta").await;
        let overrides = QuotaOverrides {
            max_connections: Some(7),
            retain_available: Some(false),
            ..QuotaOverrides::default()
        };
        let update = AdminTenantUpdate {
            plan: Some("pro".into()),
            quota_overrides: Some(overrides.clone()),
            ..AdminTenantUpdate::default()
        };
        plane.admin_update(acme, update).await;
        let dev = plane.credential(acme, "dev", "acme-pass").await;
        let other = plane.credential(acme, "other", "other-pass").await;
        let tenant_wide = plane.allow(acme, None, "public/#").await;
        plane.allow(acme, Some(other), "other/#").await;
        let own = plane.allow(acme, Some(dev), "devices/${username}/#").await;
        plane.allow(beta, None, "beta/#").await;
        let auth = plane.authenticator();

        let by_sni = login("dev", "acme-pass").sni(&sni("acme"));
        for attempt in [login("acme/dev", "acme-pass"), by_sni] {
            let ctx = attempt.run(&auth).await.unwrap();
            assert_eq!(ctx.tenant, acme);
            assert_eq!(ctx.username.as_deref(), Some("dev"), "without the slug");
            assert_eq!(ctx.method, AuthMethod::Password { credential_id: dev });
            let expected = Quotas::for_plan("pro").unwrap().with_overrides(&overrides);
            assert_ne!(expected, Quotas::for_plan("free").unwrap());
            assert_eq!(*ctx.quotas, expected);
            // Tenant-wide plus the credential's own, in creation order; not another
            // credential's, not another tenant's.
            assert_eq!(ctx.acl.rules, vec![tenant_wide.clone(), own.clone()]);
        }
    }
}

store_test! {
    async fn client_certificates_select_and_authenticate(store) {
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        let beta = plane.tenant("beta").await;
        let dev = plane.credential(acme, "dev", "acme-pass").await;
        plane.credential(beta, "dev", "beta-pass").await;
        let tenant_wide = plane.allow(acme, None, "public/#").await;
        plane.allow(acme, Some(dev), "devices/dev/#").await;
        let auth = plane.authenticator();
        let (acme_ca, beta_ca) = (Uuid::now_v7(), Uuid::now_v7());
        let cert = client_cert(acme, acme_ca, Some("sensor-7"));

        // The certificate alone: its CA's tenant, the device named by its CN, tenant-wide
        // rules only (there is no credential).
        let ctx = anonymous().cert(&cert).run(&auth).await.unwrap();
        assert_eq!(ctx.tenant, acme);
        assert_eq!(ctx.username.as_deref(), Some("sensor-7"));
        let by_cert = AuthMethod::ClientCertificate {
            ca_id: acme_ca,
            common_name: "sensor-7".into(),
        };
        assert_eq!(ctx.method, by_cert);
        assert_eq!(ctx.acl.rules, vec![tenant_wide]);
        // With an agreeing SNI or username; a claimed username does not replace the CN.
        assert_eq!(anonymous().sni(&sni("acme")).cert(&cert).tenant(&auth).await, Ok(acme));
        let claimed = username_only("acme/admin").cert(&cert);
        assert_eq!(claimed.run(&auth).await.unwrap().username.as_deref(), Some("sensor-7"));

        // A's certificate presented to B, with or without B's valid password.
        assert_eq!(anonymous().sni(&sni("beta")).cert(&cert).tenant(&auth).await, BAD);
        assert_eq!(username_only("beta/x").cert(&cert).tenant(&auth).await, BAD);
        assert_eq!(login("beta/dev", "beta-pass").cert(&cert).tenant(&auth).await, BAD);
        let beta_sni = login("dev", "beta-pass").sni(&sni("beta"));
        assert_eq!(beta_sni.cert(&cert).tenant(&auth).await, BAD);

        // A CA registered by both: it selects neither on its own, the SNI picks the
        // registration.
        let shared = ClientCertInfo { other_registrations: vec![(beta, beta_ca)], ..cert.clone() };
        assert_eq!(anonymous().cert(&shared).tenant(&auth).await, BAD);
        let ctx = anonymous().sni(&sni("acme")).cert(&shared).run(&auth).await.unwrap();
        assert_eq!((ctx.tenant, ctx.method), (acme, by_cert));
        let ctx = anonymous().sni(&sni("beta")).cert(&shared).run(&auth).await.unwrap();
        let beta_method = AuthMethod::ClientCertificate {
            ca_id: beta_ca,
            common_name: "sensor-7".into(),
        };
        assert_eq!((ctx.tenant, ctx.method), (beta, beta_method));

        // No CN: nobody to authenticate as.
        let nameless = client_cert(acme, acme_ca, None);
        assert_eq!(anonymous().cert(&nameless).tenant(&auth).await, BAD);
        assert_eq!(anonymous().sni(&sni("acme")).cert(&nameless).tenant(&auth).await, BAD);

        // Certificate and password: the password is checked too, and decides the identity.
        let ctx = login("acme/dev", "acme-pass").cert(&cert).run(&auth).await.unwrap();
        assert_eq!(ctx.method, AuthMethod::Password { credential_id: dev });
        assert_eq!(ctx.username.as_deref(), Some("dev"));
        assert_eq!(login("acme/dev", "wrong").cert(&cert).tenant(&auth).await, BAD);
        assert_eq!(login("dev", "wrong").sni(&sni("acme")).cert(&cert).tenant(&auth).await, BAD);
        assert_eq!(password_only("acme-pass").cert(&cert).tenant(&auth).await, BAD);

        // A certificate of a tenant that no longer exists, or is suspended.
        let orphan = client_cert(TenantId::new_v7(), Uuid::now_v7(), Some("sensor-7"));
        assert_eq!(anonymous().cert(&orphan).tenant(&auth).await, BAD);
        plane.set_status(acme, TenantStatus::Suspended).await;
        anonymous().cert(&cert).eventually(&auth, Err(AuthFailure::NotAuthorized)).await;
        assert_eq!(anonymous().cert(&nameless).tenant(&auth).await, BAD);
        assert_eq!(login("acme/dev", "wrong").cert(&cert).tenant(&auth).await, BAD);
    }
}

store_test! {
    async fn control_plane_changes_reach_new_connections_within_two_seconds(store) {
        // Nothing expires on its own: every change below is seen through the feed or not at all.
        let plane = Plane::with_config(store, long_lived());
        let auth = plane.authenticator();
        let device = login("newco/dev", "pass-1");
        assert_eq!(device.tenant(&auth).await, BAD);

        let newco = plane.tenant("newco").await;
        let dev = plane.credential(newco, "dev", "pass-1").await;
        device.eventually(&auth, Ok(newco)).await;

        let late = login("newco/late", "pass-2");
        assert_eq!(late.tenant(&auth).await, BAD);
        let late_id = plane.credential(newco, "late", "pass-2").await;
        late.eventually(&auth, Ok(newco)).await;

        assert!(device.run(&auth).await.unwrap().acl.rules.is_empty());
        let rule = plane.allow(newco, Some(dev), "t/${clientid}").await;
        let deadline = tokio::time::Instant::now() + PROPAGATION;
        while device.run(&auth).await.unwrap().acl.rules != [rule.clone()] {
            assert!(
                tokio::time::Instant::now() < deadline,
                "ACL rule not visible within {PROPAGATION:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        plane.delete_credential(newco, late_id).await;
        late.eventually(&auth, BAD).await;

        plane.set_status(newco, TenantStatus::Suspended).await;
        device.eventually(&auth, Err(AuthFailure::NotAuthorized)).await;
        plane.set_status(newco, TenantStatus::Active).await;
        device.eventually(&auth, Ok(newco)).await;

        plane.delete_tenant(newco).await;
        device.eventually(&auth, BAD).await;
    }
}

store_test! {
    async fn known_devices_keep_connecting_while_the_store_is_down(store) {
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        let dev = plane.credential(acme, "dev", "acme-pass").await;
        let rule = plane.allow(acme, None, "public/#").await;
        let auth = plane.authenticator();
        let device = login("acme/dev", "acme-pass");
        let cert = client_cert(acme, Uuid::now_v7(), Some("sensor-7"));
        assert_eq!(device.tenant(&auth).await, Ok(acme));
        assert_eq!(anonymous().cert(&cert).tenant(&auth).await, Ok(acme));

        plane.store.close().await;
        assert_eq!(device.tenant(&auth).await, Ok(acme));
        // A gap in the feed (a lagged receiver, a Redis reconnect) marks everything stale and
        // drops the cached password verdicts: what is left is served stale.
        plane.cache.invalidate(Invalidation::All);
        let stale_before = plane.cache.stats().stale_served;
        let ctx = device.run(&auth).await.unwrap();
        assert_eq!(ctx.tenant, acme);
        assert_eq!(ctx.method, AuthMethod::Password { credential_id: dev });
        assert_eq!(ctx.acl.rules, vec![rule]);
        assert!(plane.cache.stats().stale_served > stale_before, "served from stale entries");
        assert_eq!(anonymous().cert(&cert).tenant(&auth).await, Ok(acme));
        assert_eq!(login("acme/dev", "wrong").tenant(&auth).await, BAD);

        // Devices the cache never saw cannot be told apart from impostors: unavailable, not
        // refused.
        let unknown = [
            login("acme/other", "acme-pass"),
            login("ghost/dev", "acme-pass"),
            login("dev", "acme-pass").sni(&sni("ghost")),
        ];
        for attempt in unknown {
            assert_eq!(attempt.tenant(&auth).await, Err(AuthFailure::Unavailable), "{attempt:?}");
        }
    }
}

store_test! {
    async fn failures_are_rate_limited_per_source_address(store) {
        const BURST: u32 = 3;
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        plane.credential(acme, "dev", "acme-pass").await;
        // One failure a minute after the burst: nothing is replenished during the test.
        let auth =
            ControlAuthenticator::with_failure_limit(plane.cache.clone(), BASE_DOMAIN, 1, BURST);
        let right = login("acme/dev", "acme-pass");
        let wrong = [login("acme/dev", "wrong"), login("ghost/dev", "acme-pass")];

        // The burst: a device with a few typos is not locked out.
        for n in 0..BURST {
            let attempt = wrong[n as usize % 2].clone().from(&format!("192.0.2.1:{}", 1000 + n));
            assert_eq!(attempt.tenant(&auth).await, BAD);
        }
        assert_eq!(right.clone().from("192.0.2.1:2000").tenant(&auth).await, Ok(acme));
        // One failure more, and the address is refused before any credential is looked at,
        // from every port, right password or not.
        assert_eq!(wrong[0].clone().from("192.0.2.1:2001").tenant(&auth).await, BAD);
        let limited = Err(AuthFailure::RateLimited);
        assert_eq!(right.clone().from("192.0.2.1:2002").tenant(&auth).await, limited);
        let by_sni = login("dev", "acme-pass").sni(&sni("acme")).from("192.0.2.1:2003");
        assert_eq!(by_sni.tenant(&auth).await, limited);
        assert_eq!(wrong[1].clone().from("192.0.2.1:2004").tenant(&auth).await, limited);

        // Other addresses are not affected.
        assert_eq!(right.clone().from("192.0.2.2:1000").tenant(&auth).await, Ok(acme));
        assert_eq!(right.clone().from("[2001:db8::1]:1000").tenant(&auth).await, Ok(acme));

        // Without a peer address there is no source to blame: never blocked.
        for n in 0..3 * BURST {
            assert_eq!(wrong[n as usize % 2].tenant(&auth).await, BAD);
        }
        assert_eq!(right.tenant(&auth).await, Ok(acme));
    }
}

/// The `(tenant, ca_id)` pairs a [`CaList`] currently serves.
fn served(list: &CaList) -> BTreeSet<(TenantId, Uuid)> {
    list.anchors()
        .iter()
        .map(|ca| (ca.tenant, ca.ca_id))
        .collect()
}

/// Waits until `list` serves exactly `expected`.
async fn cas_become(list: &CaList, expected: &[(TenantId, Uuid)]) {
    let expected: BTreeSet<_> = expected.iter().copied().collect();
    let deadline = tokio::time::Instant::now() + PROPAGATION;
    while served(list) != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "CA list {:?} after {PROPAGATION:?}, expected {expected:?}",
            served(list)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

store_test! {
    async fn the_ca_list_follows_the_control_plane(store) {
        let plane = Plane::new(store);
        let acme = plane.tenant("acme").await;
        let beta = plane.tenant("beta").await;
        let acme_pem = new_ca("acme devices").unwrap();
        let beta_pem = new_ca("beta devices").unwrap();
        let first = plane.register_ca(acme, &acme_pem).await;

        let list = Arc::new(CaList::default());
        let (trigger, signal) = shutdown::channel();
        let feed = plane.feed.subscribe();
        let task = tokio::spawn(keep_cas_current(plane.cache.clone(), feed, list.clone(), signal));
        // Loaded at start; later changes within 2 s, long before the 30 s refresh.
        cas_become(&list, &[(acme, first)]).await;
        let second = plane.register_ca(beta, &beta_pem).await;
        cas_become(&list, &[(acme, first), (beta, second)]).await;
        let beta_der = CertificateDer::from_pem_slice(beta_pem.cert.as_bytes()).unwrap();
        let anchors = list.anchors();
        assert_eq!(anchors.iter().find(|ca| ca.ca_id == second).unwrap().der, beta_der);

        plane.delete_ca(acme, first).await;
        cas_become(&list, &[(beta, second)]).await;
        // The same CA registered by two tenants is two entries.
        let third = plane.register_ca(acme, &beta_pem).await;
        cas_become(&list, &[(beta, second), (acme, third)]).await;
        // Deleting a tenant takes its CAs with it.
        plane.delete_tenant(beta).await;
        cas_become(&list, &[(acme, third)]).await;

        trigger.trigger();
        tokio::time::timeout(PROPAGATION, task).await.unwrap().unwrap();
    }
}

/// CPU time the calling thread has used (Linux: `/proc/thread-self/stat`, fields 14 and 15,
/// in clock ticks of 10 ms).
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The command name (field 2) may contain spaces: count fields after its parenthesis.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// When every publisher of the feed is gone the task falls back to the interval refresh; it
/// must not busy-loop on the closed receiver. On a current-thread runtime the task runs on
/// the test's thread, so a spinning task shows as that thread's CPU time while the test sleeps.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_ca_task_idles_when_the_feed_closes() {
    let store = tenantmq_control_store::test_util::sqlite_store().await;
    let feed = InProcessFeed::new();
    let cache = ControlCache::new(store, &feed, CacheConfig::default());
    let list = Arc::new(CaList::default());
    let (trigger, signal) = shutdown::channel();
    let task = tokio::spawn(keep_cas_current(cache, feed.subscribe(), list, signal));
    drop(feed);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let window = Duration::from_millis(500);
    let before = thread_cpu_time();
    tokio::time::sleep(window).await;
    let used = thread_cpu_time() - before;
    trigger.trigger();
    tokio::time::timeout(PROPAGATION, task)
        .await
        .unwrap()
        .unwrap();
    assert!(
        used < window / 4,
        "the CA task used {used:?} of CPU in {window:?} with nothing to do"
    );
}
