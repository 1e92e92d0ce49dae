//! Control plane, off the data path: the HTTP API through which tenants sign up and manage
//! API keys, device credentials, CA certificates and ACLs, read their quotas and usage, and
//! through which the operator manages tenants.
//!
//! Library first: [`router`] builds the whole API for `Router::oneshot` tests, [`run`] serves
//! it on an already bound listener until shutdown. The OpenAPI document at `/v1/openapi.json`
//! is generated from the same declarations as the router ([`openapi`]). Nothing in the data
//! plane depends on this crate; gateways and workers read through `tenantmq-control-cache`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenantmq_common::session_admin::SessionAdmin;
use tenantmq_common::shutdown::Shutdown;
use tenantmq_control_store::{ChangeFeed, Invalidation, Store};
use tokio::net::TcpListener;

mod config;
mod error;
mod extract;
mod keys;
mod password;
mod ratelimit;
mod routes;
pub mod validate;

pub use config::{ApiConfig, ConfigError};
pub use config::{
    DEFAULT_ARGON2_ITERATIONS, DEFAULT_ARGON2_MEMORY_KIB, DEFAULT_ARGON2_PARALLELISM,
    DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_SIGNUP_BURST,
    DEFAULT_SIGNUP_PER_MINUTE,
};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use keys::{API_KEY_PREFIX, API_KEY_RANDOM_LEN};
pub use routes::{USAGE_CSV_HEADER, openapi, router};

/// How often the signup limiter forgets idle client IPs.
const LIMITER_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    feed: Arc<dyn ChangeFeed>,
    config: ApiConfig,
    argon2: argon2::Params,
    signup_limiter: ratelimit::SignupLimiter,
    session_admin: Option<Arc<dyn SessionAdmin>>,
}

impl AppState {
    /// State for a router over `store`, announcing changes on `feed`.
    ///
    /// # Errors
    /// [`ConfigError`] when the configuration is invalid.
    pub fn new(
        config: ApiConfig,
        store: Store,
        feed: Arc<dyn ChangeFeed>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let argon2 =
            password::params(&config).map_err(|e| ConfigError::Invalid(format!("argon2: {e}")))?;
        let signup_limiter = ratelimit::SignupLimiter::new(&config);
        Ok(Self(Arc::new(Inner {
            store,
            feed,
            config,
            argon2,
            signup_limiter,
            session_admin: None,
        })))
    }

    /// Lets the client routes (`/v1/clients`, `/v1/admin/tenants/{id}/clients`) reach the data
    /// plane through `admin`. Without it they answer 503 `data_plane_unavailable`. Call before
    /// the state is cloned (it is ignored on a shared state).
    pub fn with_session_admin(mut self, admin: Arc<dyn SessionAdmin>) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.session_admin = Some(admin),
            None => tracing::error!("with_session_admin on a shared AppState is ignored"),
        }
        self
    }

    pub(crate) fn session_admin(&self) -> Option<&Arc<dyn SessionAdmin>> {
        self.0.session_admin.as_ref()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    pub(crate) fn argon2(&self) -> argon2::Params {
        self.0.argon2.clone()
    }

    pub(crate) fn signup_limiter(&self) -> &ratelimit::SignupLimiter {
        &self.0.signup_limiter
    }

    /// Announces committed changes; call only after the write's transaction committed.
    pub(crate) fn publish(&self, invalidations: impl IntoIterator<Item = Invalidation>) {
        for invalidation in invalidations {
            self.0.feed.publish(invalidation);
        }
    }
}

/// Errors of [`run`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Serving failed.
    #[error("serving the control API failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the API on `listener` until `shutdown` fires, then lets in-flight requests finish.
///
/// # Errors
/// [`RunError::Config`] for an invalid configuration, [`RunError::Io`] when accepting fails.
pub async fn run(
    listener: TcpListener,
    config: ApiConfig,
    store: Store,
    feed: Arc<dyn ChangeFeed>,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    serve(listener, AppState::new(config, store, feed)?, shutdown).await
}

/// Serves the API of `state` on `listener` until `shutdown` fires (for callers that build the
/// state themselves, e.g. with a [`SessionAdmin`]).
///
/// # Errors
/// [`RunError::Io`] when accepting fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let app = router(state.clone());
    tracing::info!(addr = ?listener.local_addr().ok(), backend = state.store().backend_name(), "control API listening");

    let mut cleanup_shutdown = shutdown.clone();
    let cleanup_state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LIMITER_CLEANUP_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => cleanup_state.signup_limiter().retain_recent(),
                () = cleanup_shutdown.recv() => return,
            }
        }
    });

    let mut shutdown = shutdown;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.recv().await })
    .await?;
    tracing::info!("control API stopped");
    Ok(())
}
