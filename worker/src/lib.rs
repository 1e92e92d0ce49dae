//! Hop 3 → 4 of the data path: a worker hosts one broker engine per active tenant and accepts
//! the sessions the link brings.
//!
//! In standalone mode the worker lives in the gateway's process and *is* the [`Link`]: opening
//! a session is a message to the tenant's engine, and the session's later frames go straight
//! to that engine's mailbox. Engines start on a tenant's first connection.
//!
//! The worker is also the control plane's [`SessionAdmin`]: listing and kicking a tenant's
//! clients are [`EngineControl`] frames to that tenant's engine, and to no other.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenantmq_broker::{EngineHandle, EngineOptions};
use tenantmq_common::TenantId;
use tenantmq_common::link::{ClientInfo, EngineControl, OpenSession, Opened, ToEngine};
use tenantmq_common::quota::Quotas;
use tenantmq_common::session_admin::{AdminFuture, SessionAdmin, SessionAdminError};
use tenantmq_common::shutdown::Shutdown;
use tenantmq_router::{BoxFuture, Link, LinkError};
use tokio::sync::{mpsc, oneshot};

/// How long a control request waits for a busy engine before the API answers 503.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// The engines of this process, by tenant.
pub struct Worker {
    engines: Mutex<HashMap<TenantId, EngineHandle>>,
    shutdown: Shutdown,
    options: EngineOptions,
}

impl Worker {
    /// A worker whose engines stop when `shutdown` fires.
    pub fn new(shutdown: Shutdown) -> Arc<Self> {
        Self::with_options(shutdown, EngineOptions::default())
    }

    /// A worker whose engines meter usage and publish `$SYS` as `options` say.
    pub fn with_options(shutdown: Shutdown, options: EngineOptions) -> Arc<Self> {
        Arc::new(Self {
            engines: Mutex::new(HashMap::new()),
            shutdown,
            options,
        })
    }

    /// The mailbox of the tenant's running engine, if any.
    fn engine(
        &self,
        tenant: TenantId,
    ) -> Result<Option<mpsc::Sender<ToEngine>>, SessionAdminError> {
        let engines = self
            .engines
            .lock()
            .map_err(|_| SessionAdminError::Unavailable)?;
        Ok(engines
            .get(&tenant)
            .filter(|e| !e.is_finished())
            .map(|e| e.sender().clone()))
    }

    /// Sends a control request to the tenant's engine and waits for its answer; `None` when
    /// the tenant has no running engine.
    async fn control<T>(
        &self,
        tenant: TenantId,
        request: impl FnOnce(oneshot::Sender<T>) -> EngineControl,
    ) -> Result<Option<T>, SessionAdminError> {
        let Some(engine) = self.engine(tenant)? else {
            return Ok(None);
        };
        let (reply, answer) = oneshot::channel();
        let asked = async {
            engine
                .send(ToEngine::Control(request(reply)))
                .await
                .map_err(|_| SessionAdminError::Unavailable)?;
            answer.await.map_err(|_| SessionAdminError::Unavailable)
        };
        match tokio::time::timeout(CONTROL_TIMEOUT, asked).await {
            Ok(result) => result.map(Some),
            Err(_) => Err(SessionAdminError::Unavailable),
        }
    }

    /// Hands the tenant's new quotas to its engine, which applies them to existing sessions
    /// too (rate buckets, topic levels, retained and subscription limits). Returns whether an
    /// engine took them; a tenant without a running engine needs nothing, as its next engine
    /// starts with the quotas of the connection that starts it.
    pub async fn update_quotas(&self, tenant: TenantId, quotas: Arc<Quotas>) -> bool {
        let Ok(Some(engine)) = self.engine(tenant) else {
            return false;
        };
        let sent = engine.send(ToEngine::Control(EngineControl::Quotas(quotas)));
        matches!(
            tokio::time::timeout(CONTROL_TIMEOUT, sent).await,
            Ok(Ok(()))
        )
    }

    /// Number of tenants with a running engine.
    pub fn active_tenants(&self) -> usize {
        self.engines.lock().map_or(0, |e| e.len())
    }

    async fn open_session(&self, open: OpenSession) -> Result<Opened, LinkError> {
        let tenant = open.auth.tenant;
        let sender = {
            let mut engines = self.engines.lock().map_err(|_| LinkError::Unavailable)?;
            let stale = engines.get(&tenant).is_some_and(EngineHandle::is_finished);
            if stale {
                engines.remove(&tenant);
            }
            engines
                .entry(tenant)
                .or_insert_with(|| {
                    tracing::info!(%tenant, "starting tenant engine");
                    tenantmq_broker::spawn_with(
                        tenant,
                        open.auth.quotas.clone(),
                        self.shutdown.clone(),
                        self.options.clone(),
                    )
                })
                .sender()
                .clone()
        };
        let (reply, answer) = oneshot::channel();
        sender
            .send(ToEngine::Open { open, reply })
            .await
            .map_err(|_| LinkError::WorkerGone)?;
        answer.await.map_err(|_| LinkError::WorkerGone)
    }

    /// Waits for every engine to finish (after shutdown fired).
    pub async fn join(&self) {
        let engines: Vec<EngineHandle> = match self.engines.lock() {
            Ok(mut e) => e.drain().map(|(_, h)| h).collect(),
            Err(_) => return,
        };
        for e in engines {
            e.join().await;
        }
    }
}

impl Link for Worker {
    fn open(&self, open: OpenSession) -> BoxFuture<'_, Result<Opened, LinkError>> {
        Box::pin(self.open_session(open))
    }
}

impl SessionAdmin for Worker {
    fn list_clients(
        &self,
        tenant: TenantId,
    ) -> AdminFuture<'_, Result<Vec<ClientInfo>, SessionAdminError>> {
        Box::pin(async move {
            let clients = self.control(tenant, EngineControl::ListClients).await?;
            Ok(clients.unwrap_or_default())
        })
    }

    fn kick(
        &self,
        tenant: TenantId,
        client_id: String,
    ) -> AdminFuture<'_, Result<bool, SessionAdminError>> {
        Box::pin(async move {
            let kicked = self
                .control(tenant, |reply| EngineControl::Kick { client_id, reply })
                .await?;
            Ok(kicked.unwrap_or(false))
        })
    }
}
