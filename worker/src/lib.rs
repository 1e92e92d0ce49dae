//! Hop 3 → 4 of the data path: a worker hosts one broker engine per active tenant and accepts
//! the sessions the link brings.
//!
//! In standalone mode the worker lives in the gateway's process and *is* the [`Link`]: opening
//! a session is a message to the tenant's engine, and the session's later frames go straight
//! to that engine's mailbox. Engines start on a tenant's first connection.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tenantmq_broker::EngineHandle;
use tenantmq_common::TenantId;
use tenantmq_common::link::{OpenSession, Opened, ToEngine};
use tenantmq_common::shutdown::Shutdown;
use tenantmq_router::{BoxFuture, Link, LinkError};
use tokio::sync::oneshot;

/// The engines of this process, by tenant.
pub struct Worker {
    engines: Mutex<HashMap<TenantId, EngineHandle>>,
    shutdown: Shutdown,
}

impl Worker {
    /// A worker whose engines stop when `shutdown` fires.
    pub fn new(shutdown: Shutdown) -> Arc<Self> {
        Arc::new(Self {
            engines: Mutex::new(HashMap::new()),
            shutdown,
        })
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
                    tenantmq_broker::spawn(tenant, open.auth.quotas.clone(), self.shutdown.clone())
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
