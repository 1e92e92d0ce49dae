//! Hop 3 of the data path: the only code that decides *where* things live — which worker
//! hosts a tenant (placement) and which connection owns a client id (session ownership) — and
//! the gateway ↔ worker [`link`] that carries sessions there.
//!
//! Built so far: the [`Link`] seam the gateway opens sessions through, with the in-process
//! implementation of standalone mode (a worker in the same process implements it directly),
//! and the per-tenant [`connections`] counter behind the [`ConnectionCounter`] seam.
//! Cluster mode adds a Redis-backed placement with leases and fencing tokens, a TCP link
//! carrying the frames of `tenantmq_common::link` and a Redis connection counter; they slot in
//! behind [`Link`] and [`ConnectionCounter`].
#![forbid(unsafe_code)]

pub mod connections;

pub use connections::{
    ConnectionCounter, ConnectionGuard, InProcessConnections, UNLIMITED_CONNECT_RATE,
};

use std::future::Future;
use std::pin::Pin;

use tenantmq_common::link::{OpenSession, Opened};

/// A boxed future, so that [`Link`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No worker can host the tenant right now (CONNACK 0x88 Server unavailable).
    #[error("no worker available for the tenant")]
    Unavailable,
    /// The worker went away while the session was being opened.
    #[error("the worker hosting the tenant went away")]
    WorkerGone,
}

/// Opens device sessions on whichever worker hosts their tenant.
pub trait Link: Send + Sync + 'static {
    /// Opens `open` on the worker that hosts `open.auth.tenant` and returns its answer.
    fn open(&self, open: OpenSession) -> BoxFuture<'_, Result<Opened, LinkError>>;
}
