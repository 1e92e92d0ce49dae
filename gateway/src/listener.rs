//! Accepting connections: a TCP accept loop with a connection cap and the shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use tenantmq_common::shutdown::Shutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::connection::{ConnectionContext, serve};
use crate::stats::GatewayStats;

/// A gateway: what its connections share.
pub type Gateway = ConnectionContext;

/// Pause after an accept error (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts plain-TCP MQTT connections on `listener` until `shutdown` fires.
pub async fn run_listener(listener: TcpListener, gateway: Arc<Gateway>, mut shutdown: Shutdown) {
    let slots = Arc::new(Semaphore::new(gateway.config.max_connections));
    loop {
        let accepted = tokio::select! {
            () = shutdown.recv() => return,
            a = listener.accept() => a,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            GatewayStats::bump(&gateway.stats.rejected_at_capacity);
            continue;
        };
        GatewayStats::bump(&gateway.stats.accepted);
        let _ = socket.set_nodelay(true);
        let gateway = gateway.clone();
        tokio::spawn(async move {
            serve(socket, Some(peer), None, &gateway).await;
            drop(permit);
        });
    }
}
