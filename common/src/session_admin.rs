//! How the control plane reaches the data plane to list and disconnect a tenant's clients,
//! without depending on it: `control-api` holds a `dyn SessionAdmin`, the worker implements it
//! by sending [`EngineControl::ListClients`](crate::link::EngineControl::ListClients) and
//! [`EngineControl::Kick`](crate::link::EngineControl::Kick) to the tenant's engine. In cluster
//! mode the implementation will ask the worker that hosts the tenant.

use std::future::Future;
use std::pin::Pin;

use crate::TenantId;
use crate::link::ClientInfo;

/// A boxed, sendable future (object-safe async trait methods).
pub type AdminFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the data plane could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionAdminError {
    /// The worker hosting the tenant did not answer (shutting down, overloaded, gone).
    #[error("the data plane is unavailable")]
    Unavailable,
}

/// Listing and disconnecting one tenant's connected clients. Every call names its tenant, and
/// an implementation only ever asks that tenant's engine: one tenant can never see or touch
/// another's clients, even with the same client id.
pub trait SessionAdmin: Send + Sync {
    /// The tenant's connected clients; empty when the tenant has no running engine.
    fn list_clients(
        &self,
        tenant: TenantId,
    ) -> AdminFuture<'_, Result<Vec<ClientInfo>, SessionAdminError>>;

    /// Disconnects `client_id` (MQTT 5: DISCONNECT 0x98 Administrative action; 3.1.1: the
    /// connection is closed). `Ok(false)` when no such client is connected.
    fn kick(
        &self,
        tenant: TenantId,
        client_id: String,
    ) -> AdminFuture<'_, Result<bool, SessionAdminError>>;
}
