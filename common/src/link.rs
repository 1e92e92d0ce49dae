//! Frames of the gateway ↔ worker link (hop 2 → 3 of the data path).
//!
//! A device session crosses the link as three kinds of frames, all carrying MQTT packets in
//! their wire encoding (one codec, no second format):
//!
//! * [`ToEngine::Open`] — the CONNECT packet plus the [`AuthContext`] the gateway established,
//!   and the [`DeviceTx`] the engine writes the device's bytes into;
//! * [`ToEngine::Packets`] — one or more whole MQTT packets read from the device, batched per
//!   socket read;
//! * [`ToEngine::Closed`] — the device side ended, and why.
//!
//! [`ToEngine::Control`] carries the control plane's requests about the tenant as a whole
//! (quota changes, listing and disconnecting clients).
//!
//! In the other direction the engine writes encoded packets into the session's [`DeviceTx`],
//! batched per engine tick, and *drops* it to close the connection once the bytes queued before
//! are written. In standalone mode these are in-process channels; the cluster link carries the
//! same frames over TCP.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::auth::AuthContext;
use crate::quota::Quotas;

/// Capacity, in chunks, of the channel towards one device. The real bound is
/// [`DeviceTx::queued_bytes`], which the engine checks before queuing more.
pub const DEVICE_CHANNEL_CHUNKS: usize = 1024;

/// Identifies a session inside the engine that hosts it: a slot and the generation of its
/// occupant, so a frame from a connection that was taken over never reaches its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// Index of the engine's connection slot.
    pub slot: u32,
    /// Generation of the slot's occupant.
    pub generation: u32,
}

/// Why the device side of a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The network connection closed (EOF or reset) without a DISCONNECT packet having been
    /// processed; the will message is published.
    ConnectionLost,
    /// Nothing arrived within 1.5 × keep alive (`MQTT-3.1.2-22`).
    KeepAliveTimeout,
    /// The gateway refused a packet before it reached the engine; the value is the MQTT 5
    /// reason code to send in DISCONNECT (e.g. 0x81 malformed, 0x95 packet too large).
    Protocol(u8),
    /// The server is shutting down (0x8B).
    ServerShutdown,
}

/// Frames from the gateway to the engine that hosts the device's tenant.
#[derive(Debug)]
pub enum ToEngine {
    /// A new device session; the engine answers on `reply`.
    Open {
        /// The session.
        open: OpenSession,
        /// Where the engine reports the outcome.
        reply: oneshot::Sender<Opened>,
    },
    /// Whole MQTT packets read from the device, in order.
    Packets {
        /// The session they belong to.
        session: SessionKey,
        /// One or more complete packets in wire encoding.
        data: Bytes,
        /// How many of the *last* PUBLISH packets in `data` arrived beyond the client's rate
        /// allowance after the gateway had already slowed it down as far as it does; the engine
        /// refuses them (MQTT 5: PUBACK/PUBREC 0x97 "message rate too high"; 0x96 exists only
        /// in DISCONNECT). Usually 0.
        over_rate: u32,
        /// When the gateway read the bytes: the start of the delivery-latency measurement.
        received_at: Instant,
    },
    /// The device side ended.
    Closed {
        /// The session that ended.
        session: SessionKey,
        /// Why.
        reason: CloseReason,
    },
    /// A request from the control plane about the tenant as a whole.
    Control(EngineControl),
}

/// Requests to a tenant's engine that come from the control plane, not from a device.
#[derive(Debug)]
pub enum EngineControl {
    /// The tenant's effective quotas changed; they apply to existing sessions too.
    Quotas(Arc<Quotas>),
    /// List the connected clients.
    ListClients(oneshot::Sender<Vec<ClientInfo>>),
    /// Disconnect a client (MQTT 5: DISCONNECT 0x98 Administrative action); answers whether
    /// it was connected.
    Kick {
        /// The client identifier.
        client_id: String,
        /// The answer.
        reply: oneshot::Sender<bool>,
    },
}

/// A connected client, as listed by [`EngineControl::ListClients`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientInfo {
    /// Client identifier.
    pub client_id: String,
    /// Username (without the `<slug>/` prefix), if any.
    pub username: Option<String>,
    /// Protocol level: 4 (3.1.1) or 5.
    pub protocol_level: u8,
    /// The device's address.
    pub peer: Option<SocketAddr>,
    /// Connection time, seconds since the Unix epoch.
    pub connected_at_unix: u64,
    /// Subscriptions held by the session.
    pub subscriptions: u32,
    /// QoS 1/2 messages in flight towards the client.
    pub inflight: u32,
    /// Messages queued for the client.
    pub queued: u32,
}

/// A device session being opened.
#[derive(Debug)]
pub struct OpenSession {
    /// The complete CONNECT packet in wire encoding.
    pub connect: Bytes,
    /// Who the gateway authenticated.
    pub auth: AuthContext,
    /// The device's address (after PROXY protocol, when enabled).
    pub peer: Option<SocketAddr>,
    /// Where the engine writes the device's bytes.
    pub device: DeviceTx,
}

/// The engine's answer to [`ToEngine::Open`].
#[derive(Debug)]
pub enum Opened {
    /// The session is open and a successful CONNACK is queued on the [`DeviceTx`].
    Accepted(Accepted),
    /// The connection was refused; a CONNACK with the reason (if the protocol allows one) is
    /// queued, and the [`DeviceTx`] was dropped.
    Refused,
}

/// Details of an accepted session the gateway needs to drive the connection.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The session's key for later frames.
    pub session: SessionKey,
    /// The keep alive in force in seconds (0: none); the gateway closes the connection after
    /// 1.5 × this without a packet.
    pub keep_alive: u16,
    /// Largest packet the device may send, in bytes.
    pub max_packet_size: u32,
    /// Where to send this session's later frames.
    pub engine: mpsc::Sender<ToEngine>,
}

/// The engine's end of the channel towards one device connection.
#[derive(Debug)]
pub struct DeviceTx {
    shared: Arc<DeviceShared>,
}

/// The connection's end: the writer task drains it into the socket.
#[derive(Debug)]
pub struct DeviceRx {
    shared: Arc<DeviceShared>,
}

/// The state both ends of a device channel share.
///
/// Not Tokio's `mpsc`: a bounded `mpsc` channel allocates its shared state and a first block of
/// 32 slots up front, about 1.5 KB per connection, and most connections are idle. This one is
/// a mutex-guarded queue that allocates only while chunks wait. The lock is taken once per
/// engine flush and once per chunk the writer takes, by two parties at most, so it is all but
/// uncontended.
#[derive(Debug)]
struct DeviceShared {
    state: Mutex<DeviceState>,
    /// Bytes queued or held by the writer and not yet written (see [`DeviceRx::written`]).
    queued: AtomicUsize,
}

#[derive(Debug, Default)]
struct DeviceState {
    chunks: VecDeque<Bytes>,
    /// The writer waiting for a chunk.
    waker: Option<Waker>,
    /// The engine dropped its [`DeviceTx`]: after the queued chunks, the connection closes.
    tx_dropped: bool,
    /// The connection dropped its [`DeviceRx`]: nothing will be written any more.
    rx_dropped: bool,
}

impl DeviceShared {
    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        // Nothing panics while holding the lock; a poisoned one still holds a valid queue.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A device channel with room for [`DEVICE_CHANNEL_CHUNKS`] chunks.
pub fn device_channel() -> (DeviceTx, DeviceRx) {
    let shared = Arc::new(DeviceShared {
        state: Mutex::new(DeviceState::default()),
        queued: AtomicUsize::new(0),
    });
    (
        DeviceTx {
            shared: shared.clone(),
        },
        DeviceRx { shared },
    )
}

impl DeviceTx {
    /// Queues a chunk of encoded packets without waiting.
    ///
    /// # Errors
    /// Gives the chunk back when the channel is full or the connection is gone.
    pub fn try_send(&self, chunk: Bytes) -> Result<(), Bytes> {
        let len = chunk.len();
        let waker = {
            let mut state = self.shared.lock();
            if state.rx_dropped || state.chunks.len() >= DEVICE_CHANNEL_CHUNKS {
                return Err(chunk);
            }
            state.chunks.push_back(chunk);
            self.shared.queued.fetch_add(len, Ordering::Relaxed);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Bytes queued and not yet written to the device (or, for readers that take chunks with
    /// [`DeviceRx::recv`], not yet taken): the engine's measure of a slow device.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// True once the connection's writer is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().rx_dropped
    }
}

impl Drop for DeviceTx {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.tx_dropped = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl DeviceRx {
    /// The next chunk, or `None` once the engine dropped its [`DeviceTx`] (close the
    /// connection). The chunk no longer counts as queued.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let chunk = self.recv_held().await?;
        self.written(chunk.len());
        Some(chunk)
    }

    /// A chunk if one is ready now. The chunk no longer counts as queued.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        let chunk = self.try_recv_held()?;
        self.written(chunk.len());
        Some(chunk)
    }

    /// The next chunk, or `None` once the engine dropped its [`DeviceTx`]. Its bytes still
    /// count in [`DeviceTx::queued_bytes`] until [`DeviceRx::written`] says the socket took
    /// them: a writer stuck on a slow socket holds them, and the engine must see that.
    pub async fn recv_held(&mut self) -> Option<Bytes> {
        std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(chunk) = state.chunks.pop_front() {
                return Poll::Ready(Some(chunk));
            }
            if state.tx_dropped {
                return Poll::Ready(None);
            }
            if state.chunks.capacity() > IDLE_QUEUE_CAPACITY {
                // A burst is over: an idle connection keeps no room for hundreds of chunks.
                state.chunks = VecDeque::new();
            }
            match &state.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => state.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// A chunk if one is ready now, counted as [`DeviceRx::recv_held`] does.
    pub fn try_recv_held(&mut self) -> Option<Bytes> {
        let mut state = self.shared.lock();
        let chunk = state.chunks.pop_front();
        if state.chunks.is_empty() && state.chunks.capacity() > IDLE_QUEUE_CAPACITY {
            // A burst is over: an idle connection keeps no room for hundreds of chunks.
            state.chunks = VecDeque::new();
        }
        chunk
    }

    /// `bytes` of chunks taken with [`DeviceRx::recv_held`] were written to the socket.
    pub fn written(&self, bytes: usize) {
        self.shared.queued.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Drop for DeviceRx {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.shared.lock();
            state.rx_dropped = true;
            std::mem::take(&mut state.chunks)
        };
        // Freed outside the lock; nothing queued will be written now.
        drop(dropped);
    }
}

/// Queue capacity a device channel keeps once it is empty again.
const IDLE_QUEUE_CAPACITY: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queued_bytes_follow_sends_and_receives_and_drop_closes() {
        let (tx, mut rx) = device_channel();
        tx.try_send(Bytes::from_static(b"abc")).unwrap();
        tx.try_send(Bytes::from_static(b"de")).unwrap();
        assert_eq!(tx.queued_bytes(), 5);
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"abc"));
        assert_eq!(tx.queued_bytes(), 2);
        assert_eq!(rx.try_recv().unwrap(), Bytes::from_static(b"de"));
        assert_eq!(tx.queued_bytes(), 0);
        drop(tx);
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn held_chunks_count_until_written() {
        let (tx, mut rx) = device_channel();
        tx.try_send(Bytes::from_static(b"abc")).unwrap();
        tx.try_send(Bytes::from_static(b"de")).unwrap();
        let first = rx.recv_held().await.unwrap();
        let second = rx.try_recv_held().unwrap();
        assert_eq!(tx.queued_bytes(), 5, "held by the writer, not yet written");
        rx.written(first.len());
        assert_eq!(tx.queued_bytes(), 2);
        rx.written(second.len());
        assert_eq!(tx.queued_bytes(), 0);
        assert!(rx.try_recv_held().is_none());
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_a_chunk_and_by_the_close() {
        let (tx, mut rx) = device_channel();
        let writer = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(c) = rx.recv().await {
                got.push(c);
            }
            got
        });
        tokio::task::yield_now().await;
        tx.try_send(Bytes::from_static(b"x")).unwrap();
        tokio::task::yield_now().await;
        tx.try_send(Bytes::from_static(b"y")).unwrap();
        drop(tx);
        let got = writer.await.unwrap();
        assert_eq!(got, [Bytes::from_static(b"x"), Bytes::from_static(b"y")]);
    }

    #[test]
    fn full_channel_gives_the_chunk_back() {
        let (tx, rx) = device_channel();
        for _ in 0..DEVICE_CHANNEL_CHUNKS {
            tx.try_send(Bytes::from_static(b"x")).unwrap();
        }
        assert_eq!(
            tx.try_send(Bytes::from_static(b"y")),
            Err(Bytes::from_static(b"y"))
        );
        drop(rx);
        assert!(tx.is_closed());
    }
}
