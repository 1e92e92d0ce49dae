//! [`ControlCache`]: cached lookups with invalidation and stale fallback.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use sha2::{Digest, Sha256};
use tenantmq_common::TenantId;
use tenantmq_common::auth::AclRules;
use tenantmq_common::ids::Slug;
use tenantmq_common::quota::Quotas;
use tenantmq_control_store::models::{CredentialSecret, RegisteredCa, Tenant, TenantStatus};
use tenantmq_control_store::{ChangeFeed, ChangeKind, Invalidation, Store, StoreError};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use crate::map::{CacheMap, Lookup};

/// How long an entry is served without asking the store again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// How long "no such tenant / credential" is believed; short, so a fresh signup works fast
/// even if its invalidation was lost.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How long a successful password verification is reused.
pub const DEFAULT_PASSWORD_OK_TTL: Duration = Duration::from_secs(60);
/// How long a failed password verification is reused (it also absorbs brute-force bursts).
pub const DEFAULT_PASSWORD_FAIL_TTL: Duration = Duration::from_secs(5);
/// Entries per map before the map sheds expired entries (or, failing that, everything).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Cache timing and size.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// TTL of positive entries.
    pub ttl: Duration,
    /// TTL of negative entries (unknown slug, tenant or username).
    pub negative_ttl: Duration,
    /// TTL of a successful password verdict.
    pub password_ok_ttl: Duration,
    /// TTL of a failed password verdict.
    pub password_fail_ttl: Duration,
    /// Bound of each map.
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            password_ok_ttl: DEFAULT_PASSWORD_OK_TTL,
            password_fail_ttl: DEFAULT_PASSWORD_FAIL_TTL,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What the data plane needs to know about a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantView {
    /// Immutable id.
    pub id: TenantId,
    /// Current slug.
    pub slug: Slug,
    /// Suspended tenants' devices must be refused.
    pub status: TenantStatus,
    /// Plan name.
    pub plan: String,
    /// Effective quotas (plan + overrides).
    pub quotas: Arc<Quotas>,
}

/// A device whose username and password were verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The credential that matched (for ACL lookups and `AuthMethod::Password`).
    pub credential_id: Uuid,
    /// The username (without any `<slug>/` prefix).
    pub username: String,
}

/// Why a lookup failed: only when the store failed and nothing (not even stale) was cached.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The store failed and there was no cached entry to fall back on.
    #[error("control store unavailable and nothing cached: {0}")]
    Store(#[from] StoreError),
    /// A stored value is unusable (e.g. an unknown plan name).
    #[error("corrupt control data: {0}")]
    Corrupt(String),
    /// The password verification task failed.
    #[error("password verification failed: {0}")]
    Verify(String),
}

/// Counters of the cache's behaviour, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from a fresh entry.
    pub hits: u64,
    /// Lookups that went to the store.
    pub misses: u64,
    /// Store failures.
    pub store_errors: u64,
    /// Store failures answered with a stale entry (static stability at work).
    pub stale_served: u64,
    /// Invalidations applied (an `All` counts once).
    pub invalidations: u64,
    /// Password hashes verified (argon2 runs): verdicts not found in the cache, each
    /// computed once however many connections asked for it at the same time.
    pub password_hashes: u64,
}

type VerdictKey = (TenantId, String, [u8; 32]);

/// A verification in progress; everyone asking for the same verdict meanwhile waits on it.
type Pending = Arc<OnceCell<Option<DeviceIdentity>>>;

struct Inner {
    store: Store,
    config: CacheConfig,
    by_slug: CacheMap<Slug, Option<Arc<TenantView>>>,
    by_id: CacheMap<TenantId, Option<Arc<TenantView>>>,
    credentials: CacheMap<(TenantId, String), Option<Arc<CredentialSecret>>>,
    verdicts: CacheMap<VerdictKey, Option<DeviceIdentity>>,
    acls: CacheMap<(TenantId, Option<Uuid>), Arc<AclRules>>,
    cas: CacheMap<(), Arc<Vec<RegisteredCa>>>,
    /// Bumped by every invalidation; a load that saw another generation when it started
    /// stores its result as stale, so a value read before a change never looks fresh after it.
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    store_errors: AtomicU64,
    stale_served: AtomicU64,
    invalidations: AtomicU64,
    password_hashes: AtomicU64,
    /// Verifications in progress by verdict key. A fleet reconnecting at once (after a
    /// deploy or a network blip) often shares one credential: without this every connection
    /// of the burst would run its own argon2 before the first verdict is cached — hundreds
    /// of 19 MiB, tens-of-milliseconds hashes for one answer.
    pending: Mutex<HashMap<VerdictKey, Pending>>,
    /// Bounds the argon2 hashes running at once to the CPUs, so that a burst of distinct
    /// credentials costs queueing time rather than a blocking thread and 19 MiB each.
    hashing: Semaphore,
}

/// The read-side cache. Cheap to clone; clones share entries.
#[derive(Clone)]
pub struct ControlCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ControlCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ControlCache {
    /// A cache over `store` that applies `feed`'s invalidations. Spawns the listener task, so
    /// it must be called inside a Tokio runtime; the task ends when the cache is dropped and
    /// the next invalidation arrives, or when the feed closes.
    pub fn new(store: Store, feed: &dyn ChangeFeed, config: CacheConfig) -> Self {
        let max = config.max_entries;
        let inner = Arc::new(Inner {
            store,
            config,
            by_slug: CacheMap::new(max),
            by_id: CacheMap::new(max),
            credentials: CacheMap::new(max),
            verdicts: CacheMap::new(max),
            acls: CacheMap::new(max),
            cas: CacheMap::new(1),
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            stale_served: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            password_hashes: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
        });
        tokio::spawn(listen(Arc::downgrade(&inner), feed.subscribe()));
        Self { inner }
    }

    /// The tenant with this slug (SNI or `<slug>/<username>`), `None` if there is none.
    ///
    /// # Errors
    /// [`CacheError::Store`] when the store fails and nothing is cached for the slug.
    pub async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Arc<TenantView>>, CacheError> {
        let store = self.inner.store.clone();
        let slug2 = slug.clone();
        let view = self
            .cached(
                &self.inner.by_slug,
                slug.clone(),
                |v| v.is_some(),
                || async move { store.tenant_by_slug(&slug2).await },
            )
            .await?;
        Ok(view)
    }

    /// The tenant with this id, `None` if there is none.
    ///
    /// # Errors
    /// [`CacheError::Store`] when the store fails and nothing is cached for the id.
    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Arc<TenantView>>, CacheError> {
        let store = self.inner.store.clone();
        self.cached(
            &self.inner.by_id,
            id,
            |v| v.is_some(),
            || async move { store.tenant(id).await },
        )
        .await
    }

    /// The tenant's effective quotas, `None` if there is no such tenant.
    ///
    /// # Errors
    /// As [`ControlCache::tenant_by_id`].
    pub async fn quotas(&self, id: TenantId) -> Result<Option<Arc<Quotas>>, CacheError> {
        Ok(self.tenant_by_id(id).await?.map(|t| t.quotas.clone()))
    }

    /// The rules for a device: the tenant-wide rules plus those of `credential` (pass `None`
    /// for devices without a credential, e.g. certificate-authenticated ones).
    ///
    /// # Errors
    /// [`CacheError::Store`] when the store fails and nothing is cached.
    pub async fn acl_rules(
        &self,
        tenant: TenantId,
        credential: Option<Uuid>,
    ) -> Result<Arc<AclRules>, CacheError> {
        let store = self.inner.store.clone();
        let load = || async move {
            let rules = store.acl_rules_for(tenant, credential).await?;
            Ok(Arc::new(AclRules { rules }))
        };
        self.cached_raw(&self.inner.acls, (tenant, credential), |_| true, load)
            .await
    }

    /// Every tenant's registered CA certificates, for the gateway's client-certificate
    /// verifier.
    ///
    /// # Errors
    /// [`CacheError::Store`] when the store fails and nothing is cached.
    pub async fn ca_certificates(&self) -> Result<Arc<Vec<RegisteredCa>>, CacheError> {
        let store = self.inner.store.clone();
        let load = || async move { Ok(Arc::new(store.all_ca_certificates().await?)) };
        self.cached_raw(&self.inner.cas, (), |_| true, load).await
    }

    /// Checks a device's username and password against the tenant's credentials. Only the
    /// credential is checked: callers refuse suspended tenants via [`TenantView::status`].
    ///
    /// # Errors
    /// [`CacheError::Store`] when the store fails and the credential is not cached;
    /// [`CacheError::Verify`] if the hashing task dies.
    pub async fn verify_password(
        &self,
        tenant: TenantId,
        username: &str,
        password: &[u8],
    ) -> Result<Option<DeviceIdentity>, CacheError> {
        let key: VerdictKey = (tenant, username.to_owned(), Sha256::digest(password).into());
        if let Lookup::Fresh(verdict) = self.inner.verdicts.get(&key) {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(verdict);
        }
        // Join the verification of this exact (tenant, username, password) already running,
        // or start it. A failed one leaves the cell empty: the next waiter tries itself.
        let pending = {
            let mut map = self
                .inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            map.entry(key.clone()).or_default().clone()
        };
        let verdict = pending
            .get_or_try_init(|| self.verify_uncached(&key, password))
            .await
            .cloned();
        {
            let mut map = self
                .inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if map.get(&key).is_some_and(|p| Arc::ptr_eq(p, &pending)) {
                map.remove(&key);
            }
        }
        verdict
    }

    /// Reads the credential and runs argon2, then caches the verdict.
    async fn verify_uncached(
        &self,
        key: &VerdictKey,
        password: &[u8],
    ) -> Result<Option<DeviceIdentity>, CacheError> {
        // A verification that finished between our cache miss and joining `pending`.
        if let Lookup::Fresh(verdict) = self.inner.verdicts.get(key) {
            return Ok(verdict);
        }
        let (tenant, username, _) = key;
        let tenant = *tenant;
        let generation = self.inner.generation.load(Ordering::Acquire);
        let store = self.inner.store.clone();
        let user = username.clone();
        let credential = self
            .cached_raw(
                &self.inner.credentials,
                (tenant, user.clone()),
                Option::is_some,
                || async move { Ok(store.credential_secret(tenant, &user).await?.map(Arc::new)) },
            )
            .await?;
        let verdict = match credential {
            None => None,
            Some(c) => {
                let _permit = self
                    .inner
                    .hashing
                    .acquire()
                    .await
                    .map_err(|e| CacheError::Verify(e.to_string()))?;
                self.inner.password_hashes.fetch_add(1, Ordering::Relaxed);
                verify(c, password.to_vec()).await?
            }
        };
        let cfg = &self.inner.config;
        let ttl = if verdict.is_some() {
            cfg.password_ok_ttl
        } else {
            cfg.password_fail_ttl
        };
        let raced = self.inner.generation.load(Ordering::Acquire) != generation;
        self.inner
            .verdicts
            .insert(key.clone(), verdict.clone(), ttl, raced);
        Ok(verdict)
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let i = &self.inner;
        CacheStats {
            hits: i.hits.load(Ordering::Relaxed),
            misses: i.misses.load(Ordering::Relaxed),
            store_errors: i.store_errors.load(Ordering::Relaxed),
            stale_served: i.stale_served.load(Ordering::Relaxed),
            invalidations: i.invalidations.load(Ordering::Relaxed),
            password_hashes: i.password_hashes.load(Ordering::Relaxed),
        }
    }

    /// Applies an invalidation directly (the feed listener does this; exposed for callers
    /// with their own feed plumbing).
    pub fn invalidate(&self, invalidation: Invalidation) {
        self.inner.apply(invalidation);
    }

    /// Tenant lookups: converts the stored tenant into a view.
    async fn cached<K, F, Fut>(
        &self,
        map: &CacheMap<K, Option<Arc<TenantView>>>,
        key: K,
        positive: fn(&Option<Arc<TenantView>>) -> bool,
        load: F,
    ) -> Result<Option<Arc<TenantView>>, CacheError>
    where
        K: Hash + Eq + Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Tenant>, StoreError>>,
    {
        let load = || async move {
            match load().await? {
                None => Ok(None),
                Some(t) => match view(t) {
                    Ok(v) => Ok(Some(Arc::new(v))),
                    Err(e) => Err(StoreError::Corrupt(e)),
                },
            }
        };
        self.cached_raw(map, key, positive, load).await
    }

    /// The one lookup path: fresh entry → store → (on store failure) stale entry → error.
    async fn cached_raw<K, V, F, Fut>(
        &self,
        map: &CacheMap<K, V>,
        key: K,
        positive: fn(&V) -> bool,
        load: F,
    ) -> Result<V, CacheError>
    where
        K: Hash + Eq + Clone,
        V: Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, StoreError>>,
    {
        let i = &self.inner;
        let stale = match map.get(&key) {
            Lookup::Fresh(v) => {
                i.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(v);
            }
            Lookup::Stale(v) => Some(v),
            Lookup::Missing => None,
        };
        i.misses.fetch_add(1, Ordering::Relaxed);
        let generation = i.generation.load(Ordering::Acquire);
        match load().await {
            Ok(v) => {
                let ttl = if positive(&v) {
                    i.config.ttl
                } else {
                    i.config.negative_ttl
                };
                let raced = i.generation.load(Ordering::Acquire) != generation;
                map.insert(key, v.clone(), ttl, raced);
                Ok(v)
            }
            Err(e) => {
                i.store_errors.fetch_add(1, Ordering::Relaxed);
                match stale {
                    Some(v) => {
                        i.stale_served.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "control store failed; serving stale cache entry");
                        Ok(v)
                    }
                    None => {
                        tracing::error!(error = %e, "control store failed; nothing cached");
                        Err(CacheError::Store(e))
                    }
                }
            }
        }
    }
}

fn view(t: Tenant) -> Result<TenantView, String> {
    let quotas = t.effective_quotas().map_err(|e| e.to_string())?;
    Ok(TenantView {
        id: t.id,
        slug: t.slug,
        status: t.status,
        plan: t.plan,
        quotas: Arc::new(quotas),
    })
}

/// argon2 verification on the blocking pool (it takes tens of milliseconds by design).
async fn verify(
    credential: Arc<CredentialSecret>,
    password: Vec<u8>,
) -> Result<Option<DeviceIdentity>, CacheError> {
    tokio::task::spawn_blocking(move || {
        let hash = match PasswordHash::new(&credential.password_hash) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(credential = %credential.id, error = %e, "unreadable password hash");
                return None;
            }
        };
        Argon2::default().verify_password(&password, &hash).ok().map(|()| DeviceIdentity {
            tenant_id: credential.tenant_id,
            credential_id: credential.id,
            username: credential.username.clone(),
        })
    })
    .await
    .map_err(|e| CacheError::Verify(e.to_string()))
}

impl Inner {
    fn apply(&self, invalidation: Invalidation) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        match invalidation {
            Invalidation::All => {
                self.by_slug.mark_stale(|_, _| true);
                self.by_id.mark_stale(|_, _| true);
                self.credentials.mark_stale(|_, _| true);
                self.acls.mark_stale(|_, _| true);
                self.cas.mark_stale(|_, _| true);
                // Verdicts are never served stale: drop them.
                self.verdicts.remove_where(|_, _| true);
            }
            Invalidation::Tenant { tenant_id: t, kind } => {
                let is_t = |v: &Option<Arc<TenantView>>| v.as_ref().is_some_and(|v| v.id == t);
                let is_none = |v: &Option<Arc<TenantView>>| v.is_none();
                if kind == ChangeKind::Created {
                    // Somebody may have asked for this slug before it existed.
                    self.by_slug.mark_stale(|_, v| is_none(v));
                }
                self.by_slug.mark_stale(|_, v| is_t(v));
                self.by_id.mark_stale(|k, _| *k == t);
                self.credentials.mark_stale(|k, _| k.0 == t);
                self.acls.mark_stale(|k, _| k.0 == t);
                self.verdicts.remove_where(|k, _| k.0 == t);
                if matches!(kind, ChangeKind::CaCertificate | ChangeKind::Deleted) {
                    self.cas.mark_stale(|_, _| true);
                }
            }
        }
    }
}

async fn listen(inner: Weak<Inner>, mut rx: tokio::sync::broadcast::Receiver<Invalidation>) {
    loop {
        let invalidation = match rx.recv().await {
            Ok(i) => i,
            // Missed messages: we cannot know what changed.
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "invalidation feed lagged; marking everything stale"
                );
                Invalidation::All
            }
            Err(RecvError::Closed) => return,
        };
        let Some(inner) = inner.upgrade() else { return };
        inner.apply(invalidation);
    }
}
