//! The production [`Authenticator`]: tenants, credentials, CAs and ACLs from the control plane,
//! read through `tenantmq-control-cache` (cached, invalidated by the change feed, served stale
//! when the database is down).
//!
//! Tenant selection, in order (all must agree when several are present, so that one tenant's
//! name can never be combined with another tenant's credential):
//! 1. TLS SNI `<slug>.<base_domain>`;
//! 2. a username `<slug>/<username>` (device usernames never contain `/`);
//! 3. the client certificate: the tenant whose registered CA issued it. A CA registered by
//!    several tenants selects none of them on its own.
//!
//! Device authentication: a password is checked against the tenant's credential (argon2id,
//! results cached briefly); without a password, a verified client certificate from one of the
//! tenant's CAs authenticates the device as its subject CN. Anything else is refused.
//!
//! Failed attempts are rate-limited per source address: past the allowance a source is refused
//! with "connection rate exceeded" (0x9F / 3.1.1 return code 3) before any credential is read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tenantmq_common::auth::{AuthContext, AuthMethod};
use tenantmq_common::ids::Slug;
use tenantmq_control_cache::{ControlCache, TenantView};
use tenantmq_control_store::models::TenantStatus;
use tenantmq_router::BoxFuture;

use crate::auth::{AuthFailure, AuthRequest, Authenticator, ClientCertInfo};

/// Failed authentications allowed per source address and minute (after the burst).
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 30;

/// Failed authentications a source may make in a burst.
pub const DEFAULT_AUTH_FAILURE_BURST: u32 = 10;

/// Sources remembered as blocked before old entries are swept.
const MAX_BLOCKED_SOURCES: usize = 100_000;

/// Authenticates devices against the control plane.
pub struct ControlAuthenticator {
    cache: ControlCache,
    /// `<slug>.` + this is a tenant's SNI name; stored with a leading dot, lowercase.
    sni_suffix: String,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl ControlAuthenticator {
    /// An authenticator over `cache` for SNI names under `base_domain`.
    pub fn new(cache: ControlCache, base_domain: &str) -> Self {
        Self::with_failure_limit(
            cache,
            base_domain,
            DEFAULT_AUTH_FAILURES_PER_MINUTE,
            DEFAULT_AUTH_FAILURE_BURST,
        )
    }

    /// As [`ControlAuthenticator::new`] with a given allowance of failed attempts per source.
    pub fn with_failure_limit(
        cache: ControlCache,
        base_domain: &str,
        per_minute: u32,
        burst: u32,
    ) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            cache,
            sni_suffix: format!(".{}", base_domain.trim_matches('.').to_ascii_lowercase()),
            failures: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn is_blocked(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let Ok(mut blocked) = self.blocked.lock() else {
            return false;
        };
        match blocked.get(&ip) {
            Some(until) if *until > now => true,
            Some(_) => {
                blocked.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Counts a failed attempt; past the allowance the source is blocked until the limiter
    /// would let it try again.
    fn record_failure(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        if let Err(not_until) = self.failures.check_key(&ip) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            if let Ok(mut blocked) = self.blocked.lock() {
                if blocked.len() >= MAX_BLOCKED_SOURCES {
                    let now = Instant::now();
                    blocked.retain(|_, until| *until > now);
                    self.failures.retain_recent();
                }
                blocked.insert(ip, Instant::now() + wait.max(Duration::from_millis(1)));
            }
        }
    }

    /// The slug an SNI name selects: `Ok(None)` for a name outside the base domain (it names
    /// no tenant; the username or certificate decides), the slug for `<slug>.<base_domain>`.
    ///
    /// # Errors
    /// A name under the base domain whose first part is not a slug (`x.<base_domain>`,
    /// `a.b.<base_domain>`) is refused like an invalid slug in a username, not ignored:
    /// ignoring it would let a device that addressed a tenant name that cannot exist fall
    /// through to the username's tenant.
    fn sni_slug(&self, sni: &str) -> Result<Option<Slug>, AuthFailure> {
        let sni = sni.to_ascii_lowercase();
        match sni.strip_suffix(&self.sni_suffix) {
            None => Ok(None),
            Some(label) => Slug::parse(label)
                .map(Some)
                .map_err(|_| AuthFailure::BadCredentials),
        }
    }

    async fn authenticate_inner(&self, req: &AuthRequest<'_>) -> Result<AuthContext, AuthFailure> {
        let c = req.connect;
        let (user_slug, username) = match c.username.as_deref() {
            Some(u) => match u.split_once('/') {
                Some((slug, user)) => (
                    Some(Slug::parse(slug).map_err(|_| AuthFailure::BadCredentials)?),
                    Some(user),
                ),
                None => (None, Some(u)),
            },
            None => (None, None),
        };
        let sni_slug = req.sni.map(|s| self.sni_slug(s)).transpose()?.flatten();
        if let (Some(a), Some(b)) = (&sni_slug, &user_slug)
            && a != b
        {
            return Err(AuthFailure::BadCredentials);
        }
        let tenant = match sni_slug.or(user_slug) {
            Some(slug) => {
                let t = self.lookup(self.cache.tenant_by_slug(&slug).await)?;
                if let Some(cert) = req.client_cert
                    && !issued_for(cert, &t)
                {
                    return Err(AuthFailure::BadCredentials);
                }
                t
            }
            None => match req.client_cert {
                Some(cert) if cert.other_registrations.is_empty() => {
                    self.lookup(self.cache.tenant_by_id(cert.tenant).await)?
                }
                _ => return Err(AuthFailure::BadCredentials),
            },
        };
        let (method, username, credential) = match (&c.password, username, req.client_cert) {
            (Some(password), Some(user), _) => {
                let identity = self
                    .cache
                    .verify_password(tenant.id, user, password)
                    .await
                    .map_err(|_| AuthFailure::Unavailable)?
                    .ok_or(AuthFailure::BadCredentials)?;
                let method = AuthMethod::Password {
                    credential_id: identity.credential_id,
                };
                (
                    method,
                    Some(identity.username),
                    Some(identity.credential_id),
                )
            }
            (None, _, Some(cert)) => {
                let ca_id = ca_of(cert, &tenant).ok_or(AuthFailure::BadCredentials)?;
                let cn = cert
                    .common_name
                    .clone()
                    .ok_or(AuthFailure::BadCredentials)?;
                let method = AuthMethod::ClientCertificate {
                    ca_id,
                    common_name: cn.clone(),
                };
                (method, Some(cn), None)
            }
            _ => return Err(AuthFailure::BadCredentials),
        };
        // Only after the device proved who it is (0x87 means "authenticated but not
        // allowed"): refusing a suspended tenant before that would tell anyone who guesses a
        // slug that the tenant exists and is suspended, which unknown slugs never reveal.
        if tenant.status != TenantStatus::Active {
            return Err(AuthFailure::NotAuthorized);
        }
        let acl = self
            .cache
            .acl_rules(tenant.id, credential)
            .await
            .map_err(|_| AuthFailure::Unavailable)?;
        Ok(AuthContext {
            tenant: tenant.id,
            username,
            method,
            acl,
            quotas: tenant.quotas.clone(),
        })
    }

    /// A tenant lookup's answer: unknown tenants are bad credentials (never "no such tenant",
    /// which would tell an attacker which slugs exist).
    fn lookup<E>(
        &self,
        found: Result<Option<Arc<TenantView>>, E>,
    ) -> Result<Arc<TenantView>, AuthFailure> {
        found
            .map_err(|_| AuthFailure::Unavailable)?
            .ok_or(AuthFailure::BadCredentials)
    }
}

/// Whether the certificate's CA is registered by `tenant`.
fn issued_for(cert: &ClientCertInfo, tenant: &TenantView) -> bool {
    ca_of(cert, tenant).is_some()
}

/// The id of `tenant`'s registration of the certificate's CA.
fn ca_of(cert: &ClientCertInfo, tenant: &TenantView) -> Option<uuid::Uuid> {
    std::iter::once((cert.tenant, cert.ca_id))
        .chain(cert.other_registrations.iter().copied())
        .find(|(t, _)| *t == tenant.id)
        .map(|(_, ca)| ca)
}

impl Authenticator for ControlAuthenticator {
    fn authenticate<'a>(
        &'a self,
        req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthContext, AuthFailure>> {
        Box::pin(async move {
            let ip = req.peer.map(|p| p.ip());
            if ip.is_some_and(|ip| self.is_blocked(ip)) {
                return Err(AuthFailure::RateLimited);
            }
            let result = self.authenticate_inner(&req).await;
            if matches!(result, Err(AuthFailure::BadCredentials)) {
                self.record_failure(ip);
            }
            result
        })
    }
}
