//! The change feed of cluster mode: Redis pub/sub on one channel, JSON messages.
//!
//! Publishing goes through a bounded outbox drained by one task, so the API never waits on
//! Redis. Subscribing runs one task that re-subscribes with backoff after any error and then
//! emits [`Invalidation::All`]: messages published while it was away are gone for good (pub/sub
//! keeps nothing), so caches must re-validate everything.

use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tenantmq_common::shutdown::Shutdown;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::feed::{ChangeFeed, FEED_CAPACITY, Invalidation};

/// The Redis channel invalidations travel on.
pub const INVALIDATIONS_CHANNEL: &str = "tenantmq:invalidations";

/// Invalidations waiting to be published; beyond this `publish` drops (and logs) them.
const OUTBOX_CAPACITY: usize = 4096;
/// First and largest pause between reconnection attempts of the subscriber.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the subscriber pings Redis, so a silently dead connection is noticed.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// How long a ping or a publish may take before the connection counts as dead.
const IO_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts per message before the publisher gives up on it.
const PUBLISH_ATTEMPTS: u32 = 3;

/// A [`ChangeFeed`] over Redis pub/sub. Every process (API replicas, gateways, workers) both
/// publishes to and receives from the same channel; a process receives its own messages too.
#[derive(Clone, Debug)]
pub struct RedisFeed {
    local: broadcast::Sender<Invalidation>,
    outbox: mpsc::Sender<Invalidation>,
}

impl RedisFeed {
    /// Connects, subscribes and starts the publisher and subscriber tasks, which stop on
    /// `shutdown`. Returns once the first subscription is active, so nothing published after
    /// this returns is missed.
    ///
    /// # Errors
    /// The Redis error when the URL is invalid or Redis cannot be reached at start-up.
    pub async fn connect(url: &str, shutdown: Shutdown) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let publisher = ConnectionManager::new(client.clone()).await?;
        let (local, _) = broadcast::channel(FEED_CAPACITY);
        let (outbox, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(publish_loop(publisher, rx, shutdown.clone()));
        tokio::spawn(subscribe_loop(client, local.clone(), ready_tx, shutdown));
        ready_rx.await.map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::IoError, "subscriber stopped"))
        })??;
        Ok(Self { local, outbox })
    }
}

impl ChangeFeed for RedisFeed {
    fn publish(&self, invalidation: Invalidation) {
        if self.outbox.try_send(invalidation).is_err() {
            tracing::warn!(?invalidation, "invalidation outbox full or closed; dropped");
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Invalidation> {
        self.local.subscribe()
    }
}

async fn publish_loop(
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Invalidation>,
    mut shutdown: Shutdown,
) {
    loop {
        let invalidation = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => return },
            () = shutdown.recv() => return,
        };
        let Ok(json) = serde_json::to_string(&invalidation) else {
            continue;
        };
        let mut delay = BACKOFF_MIN;
        for attempt in 1..=PUBLISH_ATTEMPTS {
            let sent = tokio::time::timeout(
                IO_TIMEOUT,
                conn.publish::<_, _, i64>(INVALIDATIONS_CHANNEL, &json),
            )
            .await;
            match sent {
                Ok(Ok(_)) => break,
                Ok(Err(e)) if attempt == PUBLISH_ATTEMPTS => {
                    tracing::error!(error = %e, ?invalidation, "publishing invalidation failed; caches rely on expiry")
                }
                Err(_) if attempt == PUBLISH_ATTEMPTS => {
                    tracing::error!(
                        ?invalidation,
                        "publishing invalidation timed out; caches rely on expiry"
                    )
                }
                _ => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

async fn subscribe_loop(
    client: redis::Client,
    local: broadcast::Sender<Invalidation>,
    ready: oneshot::Sender<Result<(), redis::RedisError>>,
    mut shutdown: Shutdown,
) {
    let mut ready = Some(ready);
    let mut backoff = BACKOFF_MIN;
    loop {
        match subscribe_once(&client).await {
            Ok((sink, stream)) => {
                backoff = BACKOFF_MIN;
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Ok(()));
                    }
                    None => {
                        tracing::info!("re-subscribed to invalidations; flushing caches");
                        let _ = local.send(Invalidation::All);
                    }
                }
                if !pump(sink, stream, &local, &mut shutdown).await {
                    return;
                }
                tracing::warn!("invalidation subscription lost; reconnecting");
            }
            Err(e) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(e));
                    return;
                }
                tracing::warn!(error = %e, ?backoff, "cannot subscribe to invalidations; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.recv() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn subscribe_once(
    client: &redis::Client,
) -> Result<(redis::aio::PubSubSink, redis::aio::PubSubStream), redis::RedisError> {
    let (mut sink, stream) = client.get_async_pubsub().await?.split();
    tokio::time::timeout(IO_TIMEOUT, sink.subscribe(INVALIDATIONS_CHANNEL))
        .await
        .map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::IoError, "subscribe timed out"))
        })??;
    Ok((sink, stream))
}

/// Forwards messages until the connection fails (returns true: reconnect) or shutdown (false).
async fn pump(
    mut sink: redis::aio::PubSubSink,
    mut stream: redis::aio::PubSubStream,
    local: &broadcast::Sender<Invalidation>,
    shutdown: &mut Shutdown,
) -> bool {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return true };
                match serde_json::from_slice::<Invalidation>(msg.get_payload_bytes()) {
                    Ok(inv) => { let _ = local.send(inv); }
                    // Unknown message (e.g. a newer version's kind): flushing is always safe.
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable invalidation; flushing");
                        let _ = local.send(Invalidation::All);
                    }
                }
            }
            _ = ping.tick() => {
                let pong = tokio::time::timeout(IO_TIMEOUT, sink.ping::<String>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return true;
                }
            }
            () = shutdown.recv() => return false,
        }
    }
}
