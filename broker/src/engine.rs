//! The per-tenant engine: a single-owner actor with a bounded mailbox (house rule 4).
//!
//! Every connection of one tenant sends its frames ([`ToEngine`]) into the tenant's mailbox;
//! the engine owns the topic tree, the sessions and the retained messages outright, so no lock
//! guards them and no code path can reach another tenant's state — an engine is constructed
//! for one [`TenantId`] and is only ever handed that tenant's connections.
//!
//! The loop takes up to [`MAX_BATCH`] frames at a time, handles them, then flushes: each
//! connection written to during the batch gets one chunk of bytes. The flush is also the
//! seam where cluster mode will persist the batch's durable changes before acknowledgements
//! leave (architecture: "written to Redis before the PUBACK … batched per tick").

use std::sync::Arc;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tenantmq_codec::{
    ByteString, Disconnect, Packet, ProtocolVersion, PublishProperties, ReasonCode, frame,
};
use tenantmq_common::TenantId;
use tenantmq_common::link::{CloseReason, Opened, SessionKey, ToEngine};
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::Shutdown;
use tenantmq_common::usage::UsageRecorder;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};

use crate::limits::TenantRate;
use crate::message::Message;
use crate::metering::{Meter, TICK};
use crate::retained_tree::RetainedTree;
use crate::route::FilterSubs;
use crate::session::Session;
use crate::stats::EngineStats;
use crate::sys::SysState;
use crate::timers::{Due, TimerKind, Timers};
use crate::trie::SubscriptionTrie;

/// Frames the mailbox holds before senders wait: the backpressure that slows readers of a
/// tenant whose engine is saturated.
pub const MAILBOX_CAPACITY: usize = 4096;

/// Frames handled between two flushes. Larger batches mean fewer, larger writes; smaller
/// ones mean lower latency under load.
pub const MAX_BATCH: usize = 256;

/// How often connections held back by a slow device are retried.
const CONGESTION_RETRY: Duration = Duration::from_millis(20);

/// Longest client identifier accepted (the specification only requires 23 bytes).
pub const MAX_CLIENT_ID_LEN: usize = 256;

/// A running engine.
pub struct EngineHandle {
    tx: mpsc::Sender<ToEngine>,
    task: JoinHandle<()>,
}

impl EngineHandle {
    /// Where the tenant's frames go.
    pub fn sender(&self) -> &mpsc::Sender<ToEngine> {
        &self.tx
    }

    /// True once the engine task ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the engine to end (after shutdown).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// What an engine reports besides serving its tenant. The default reports nothing.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// Where usage deltas go every `USAGE_TICK` (and, through it, the process metrics).
    pub usage: Option<Arc<UsageRecorder>>,
    /// Publish the tenant's `$SYS` statistics this often, and its clients' connect and
    /// disconnect events (see [`crate::sys`]); `None` publishes nothing.
    pub sys_interval: Option<Duration>,
}

/// Starts the engine of `tenant`.
pub fn spawn(tenant: TenantId, quotas: Arc<Quotas>, shutdown: Shutdown) -> EngineHandle {
    spawn_with(tenant, quotas, shutdown, EngineOptions::default())
}

/// Starts the engine of `tenant` with usage metering and `$SYS` as `options` say.
pub fn spawn_with(
    tenant: TenantId,
    quotas: Arc<Quotas>,
    shutdown: Shutdown,
    options: EngineOptions,
) -> EngineHandle {
    let (tx, rx) = mpsc::channel(MAILBOX_CAPACITY);
    let mut engine = Engine::new(tenant, quotas, tx.clone());
    let now = Instant::now();
    engine.meter = options.usage.map(|u| Meter::new(u, now));
    engine.sys = options.sys_interval.map(SysState::new);
    let task = tokio::spawn(engine.run(rx, shutdown));
    EngineHandle { tx, task }
}

/// A session slot: the generation counts the connections (and sessions) that occupied it, so
/// stale frames and timers are recognised.
pub(crate) struct Slot {
    pub generation: u32,
    pub session: Option<Session>,
}

/// Why a connection is being closed by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// The device side ended (reported by the gateway).
    Link(CloseReason),
    /// The engine found a protocol violation: MQTT 5 gets DISCONNECT with this code.
    Violation(ReasonCode),
    /// The client sent DISCONNECT; `with_will` for reason 0x04.
    ClientDisconnect { with_will: bool },
    /// Another connection took the session over (0x8E).
    TakenOver,
    /// The server is shutting down (0x8B).
    Shutdown,
}

/// The engine of one tenant.
pub(crate) struct Engine {
    pub tenant: TenantId,
    pub quotas: Arc<Quotas>,
    pub slots: Vec<Slot>,
    free: Vec<u32>,
    pub by_client_id: FxHashMap<ByteString, u32>,
    /// Slots written to since the last flush.
    pub dirty: Vec<u32>,
    /// Slots whose output or queue waits for a slow device.
    pub congested: Vec<u32>,
    pub subs: SubscriptionTrie<FilterSubs>,
    /// Subscriptions all sessions hold together (`max_subscriptions_per_tenant`).
    pub subscription_count: usize,
    pub retained: RetainedTree<Message>,
    pub retained_bytes: u64,
    pub timers: Timers,
    pub stats: EngineStats,
    /// Reused by routing to collect matches without allocating.
    pub scratch: Vec<crate::route::Target>,
    /// Properties of messages that have none, so encoding needs no branch.
    pub empty_props: PublishProperties,
    /// A clone of the mailbox sender, handed to accepted sessions.
    pub mailbox: mpsc::Sender<ToEngine>,
    /// The tenant-wide publish rate and bandwidth, and the frames held back for them
    /// (`limits.rs`).
    pub rate: TenantRate,
    /// Usage metering, when the process meters (`metering.rs`).
    pub meter: Option<Meter>,
    /// `$SYS` publishing, when enabled (`sys.rs`).
    pub sys: Option<SysState>,
}

impl Engine {
    pub fn new(tenant: TenantId, quotas: Arc<Quotas>, mailbox: mpsc::Sender<ToEngine>) -> Self {
        Self {
            tenant,
            quotas: quotas.clone(),
            slots: Vec::new(),
            free: Vec::new(),
            by_client_id: FxHashMap::default(),
            dirty: Vec::new(),
            congested: Vec::new(),
            subs: SubscriptionTrie::new(),
            subscription_count: 0,
            retained: RetainedTree::new(),
            retained_bytes: 0,
            timers: Timers::default(),
            stats: EngineStats::default(),
            scratch: Vec::new(),
            empty_props: PublishProperties::default(),
            mailbox,
            rate: TenantRate::new(&quotas, Instant::now()),
            meter: None,
            sys: None,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<ToEngine>, mut shutdown: Shutdown) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut retry_at: Option<Instant> = None;
        let mut tick_at = Instant::now() + TICK;
        // `$SYS` statistics go out at once, so a subscriber never waits a whole interval.
        let mut sys_at = self.sys.as_ref().map(|_| Instant::now());
        loop {
            let deadline = self.timers.next_deadline();
            // Earliest `received_at` of the batch and deliveries before it: one latency
            // observation per batch, not per message.
            let mut latency: Option<(Instant, u64)> = None;
            tokio::select! {
                biased;
                () = shutdown.recv() => break,
                // While frames are held for the tenant's rate, the mailbox is left to fill: the
                // backpressure that stops the tenant's gateway readers (`limits.rs`).
                n = rx.recv_many(&mut batch, MAX_BATCH), if !self.rate.holding() => {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    let sent_before = self.stats.messages_out;
                    for frame in batch.drain(..) {
                        if let ToEngine::Packets { received_at, .. } = &frame {
                            let earliest = latency.map_or(*received_at, |(e, _)| e.min(*received_at));
                            latency = Some((earliest, sent_before));
                        }
                        self.admit(frame, now);
                    }
                }
                () = sleep_until_opt(self.rate.resume_at), if self.rate.resume_at.is_some() => {
                    self.resume_held(Instant::now());
                }
                () = tokio::time::sleep_until(tick_at), if self.meter.is_some() => {
                    let now = Instant::now();
                    self.meter_tick(now);
                    tick_at = now + TICK;
                }
                () = sleep_until_opt(sys_at), if sys_at.is_some() => {
                    let now = Instant::now();
                    self.publish_sys_stats(now);
                    sys_at = self.sys.as_ref().map(|s| now + s.interval);
                }
                () = sleep_until_opt(deadline), if deadline.is_some() => {
                    self.fire_timers(Instant::now());
                }
                () = sleep_until_opt(retry_at), if retry_at.is_some() => {
                    retry_at = None;
                    self.retry_congested(Instant::now());
                }
            }
            self.flush();
            if let Some((earliest, sent_before)) = latency {
                self.observe_latency(Some(earliest), sent_before);
            }
            if retry_at.is_none() && !self.congested.is_empty() {
                retry_at = Some(Instant::now() + CONGESTION_RETRY);
            }
        }
        self.shutdown_all();
        // The last usage goes to the recorder before the engine ends, so the final flush at
        // shutdown writes it.
        self.meter_tick(Instant::now());
    }

    /// Handles one frame from the link.
    pub fn handle(&mut self, frame: ToEngine, now: Instant) {
        match frame {
            ToEngine::Open { open, reply } => {
                self.meter_connections(now);
                let opened = self.open(open, now);
                if let Opened::Accepted(accepted) = &opened {
                    self.meter_peak();
                    self.sys_connected(accepted.session.slot, now);
                }
                // A gateway that gave up waiting has dropped the connection; the session is
                // then closed by its Closed frame or found dead at the next write.
                let _ = reply.send(opened);
            }
            ToEngine::Packets {
                session,
                data,
                over_rate,
                ..
            } => self.on_packets(session, data, over_rate, now),
            ToEngine::Control(control) => self.on_control(control, now),
            ToEngine::Closed { session, reason } => {
                if self.live(session) {
                    self.close(session.slot, Close::Link(reason), now);
                }
            }
        }
    }

    /// Is `key` the current connection of its slot?
    pub fn live(&self, key: SessionKey) -> bool {
        self.slots.get(key.slot as usize).is_some_and(|s| {
            s.generation == key.generation && s.session.as_ref().is_some_and(|s| s.conn.is_some())
        })
    }

    /// The session in `slot`.
    pub fn session(&self, slot: u32) -> Option<&Session> {
        self.slots.get(slot as usize)?.session.as_ref()
    }

    /// The session in `slot`, mutably.
    pub fn session_mut(&mut self, slot: u32) -> Option<&mut Session> {
        self.slots.get_mut(slot as usize)?.session.as_mut()
    }

    /// The generation of `slot`.
    pub fn generation(&self, slot: u32) -> u32 {
        self.slots.get(slot as usize).map_or(0, |s| s.generation)
    }

    /// Places a new session in a free slot.
    pub fn allocate(&mut self, session: Session) -> u32 {
        let client_id = session.client_id.clone();
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    s.generation = s.generation.wrapping_add(1);
                    s.session = Some(session);
                }
                slot
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    session: Some(session),
                });
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_client_id.insert(client_id, slot);
        slot
    }

    /// Starts a new generation of `slot` (a connection attached to its session).
    pub fn bump_generation(&mut self, slot: u32) -> u32 {
        match self.slots.get_mut(slot as usize) {
            Some(s) => {
                s.generation = s.generation.wrapping_add(1);
                s.generation
            }
            None => 0,
        }
    }

    /// Encodes `packet` to the connection of `slot`, if any.
    pub fn write(&mut self, slot: u32, packet: &Packet) {
        let Some(conn) = self.session_mut(slot).and_then(|s| s.conn.as_mut()) else {
            return;
        };
        if conn.write_packet(packet) && !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Marks the connection of `slot` as written to.
    pub fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.session_mut(slot).and_then(|s| s.conn.as_mut())
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Parses and dispatches the packets of one frame; its last `over_rate` PUBLISH packets
    /// are refused for the rate (`limits.rs`).
    fn on_packets(&mut self, key: SessionKey, mut data: Bytes, over_rate: u32, now: Instant) {
        if !self.live(key) {
            return;
        }
        let Some(version) = self
            .session(key.slot)
            .and_then(|s| s.conn.as_ref())
            .map(|c| c.version)
        else {
            return;
        };
        let max = self.quotas.max_message_bytes;
        let mut refuse_from = match over_rate {
            0 => u32::MAX,
            n => crate::limits::publish_count(&data).saturating_sub(n),
        };
        while !data.is_empty() {
            let packet = match frame::check(&data, max) {
                Ok(Some(header)) => {
                    let frame = data.split_to(header.total_len());
                    Packet::decode(frame, &header, version)
                }
                // The gateway forwards whole packets only; a partial one is malformed.
                Ok(None) => Err(tenantmq_codec::DecodeError::Malformed("truncated packet")),
                Err(e) => Err(e),
            };
            let result = match packet {
                Ok(Packet::Publish(p)) => {
                    let over = refuse_from == 0;
                    refuse_from = refuse_from.saturating_sub(1);
                    self.on_publish(key.slot, p, over, now)
                }
                Ok(packet) => self.dispatch(key.slot, packet, now),
                Err(e) => {
                    tracing::debug!(tenant = %self.tenant, error = %e, "bad packet from client");
                    self.stats.protocol_errors += 1;
                    Err(e.reason_code())
                }
            };
            if let Err(reason) = result {
                self.close(key.slot, Close::Violation(reason), now);
                return;
            }
            if !self.live(key) {
                return; // DISCONNECT ended the connection.
            }
        }
    }

    /// Routes one packet to its handler (house rule 3: a short match).
    fn dispatch(&mut self, slot: u32, packet: Packet, now: Instant) -> Result<(), ReasonCode> {
        match packet {
            Packet::Publish(p) => self.on_publish(slot, p, false, now),
            Packet::PubAck(a) => self.on_puback(slot, &a, now),
            Packet::PubRec(a) => self.on_pubrec(slot, &a),
            Packet::PubRel(a) => self.on_pubrel(slot, &a),
            Packet::PubComp(a) => self.on_pubcomp(slot, &a, now),
            Packet::Subscribe(s) => self.on_subscribe(slot, s, now),
            Packet::Unsubscribe(u) => self.on_unsubscribe(slot, &u),
            Packet::PingReq => {
                self.write(slot, &Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => self.on_disconnect(slot, &d, now),
            // No authentication method was accepted at CONNECT, so AUTH is a protocol error
            // (MQTT 5 4.12); a second CONNECT is one too (`MQTT-3.1.0-2`), as is any packet
            // only a server may send.
            Packet::Auth(_)
            | Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => Err(ReasonCode::PROTOCOL_ERROR),
        }
    }

    /// Ends the connection of `slot`: the will, the session's fate, the DISCONNECT for MQTT 5.
    pub fn close(&mut self, slot: u32, how: Close, now: Instant) {
        self.meter_connections(now);
        self.sys_disconnected(slot, how, now);
        let generation = self.generation(slot);
        let Some(session) = self.session_mut(slot) else {
            return;
        };
        let Some(mut conn) = session.conn.take() else {
            return;
        };
        let reason = match how {
            Close::Violation(rc) => Some(rc),
            Close::Link(CloseReason::Protocol(code)) => Some(ReasonCode(code)),
            Close::Link(CloseReason::KeepAliveTimeout) => Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
            Close::Link(CloseReason::ServerShutdown) | Close::Shutdown => {
                Some(ReasonCode::SERVER_SHUTTING_DOWN)
            }
            Close::TakenOver => Some(ReasonCode::SESSION_TAKEN_OVER),
            Close::Link(CloseReason::ConnectionLost) | Close::ClientDisconnect { .. } => None,
        };
        if let (Some(rc), ProtocolVersion::V5) = (reason, conn.version) {
            let d = Disconnect {
                reason: rc,
                ..Default::default()
            };
            conn.write_packet(&Packet::Disconnect(d));
        }
        conn.flush();
        let publish_will = match how {
            Close::ClientDisconnect { with_will } => with_will,
            Close::Shutdown | Close::Link(CloseReason::ServerShutdown) => false,
            _ => true,
        };
        let will = conn.will.take().filter(|_| publish_will);
        drop(conn); // Dropping the device channel closes the connection once it is written.
        let expiry = session.expiry_interval;
        self.stats.connections_closed += 1;

        if let Some(will) = will {
            let delay = will.delay.min(expiry);
            if delay == 0 {
                self.publish_will(will.message, now);
            } else if let Some(s) = self.session_mut(slot) {
                s.pending_will = Some(will.message);
                let at = now + Duration::from_secs(delay.into());
                self.timers.arm(
                    at,
                    Due {
                        kind: TimerKind::WillDelay,
                        slot,
                        generation,
                    },
                );
            }
        }
        if expiry == 0 {
            self.end_session(slot, now);
        } else if expiry != u32::MAX {
            let at = now + Duration::from_secs(expiry.into());
            self.timers.arm(
                at,
                Due {
                    kind: TimerKind::SessionExpiry,
                    slot,
                    generation,
                },
            );
        }
    }

    /// Ends the session in `slot`: its delayed will goes out, its subscriptions go, the slot
    /// is freed.
    pub fn end_session(&mut self, slot: u32, now: Instant) {
        let Some(mut session) = self
            .slots
            .get_mut(slot as usize)
            .and_then(|s| s.session.take())
        else {
            return;
        };
        if let Some(conn) = session.conn.take() {
            drop(conn);
        }
        for sub in session.subscriptions.values() {
            self.unlink_subscription(slot, sub);
        }
        self.stats.messages_out += session.sent_from_queue.0;
        self.stats.bytes_out += session.sent_from_queue.1;
        self.by_client_id.remove(&session.client_id);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.generation = s.generation.wrapping_add(1);
        }
        self.free.push(slot);
        if let Some(will) = session.pending_will.take() {
            self.publish_will(will, now);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(due) = self.timers.pop_due(now) {
            if self.generation(due.slot) != due.generation {
                continue;
            }
            match due.kind {
                TimerKind::WillDelay => {
                    if let Some(will) = self
                        .session_mut(due.slot)
                        .and_then(|s| s.pending_will.take())
                    {
                        self.publish_will(will, now);
                    }
                }
                TimerKind::SessionExpiry => {
                    if self.session(due.slot).is_some_and(|s| s.conn.is_none()) {
                        self.end_session(due.slot, now);
                    }
                }
            }
        }
    }

    /// Hands each written connection its chunk.
    fn flush(&mut self) {
        let max_inflight = self.quotas.max_inflight;
        for i in 0..self.dirty.len() {
            let slot = self.dirty[i];
            let Some(session) = self
                .slots
                .get_mut(slot as usize)
                .and_then(|s| s.session.as_mut())
            else {
                continue;
            };
            let Some(conn) = session.conn.as_mut() else {
                continue;
            };
            conn.dirty = false;
            conn.flush();
            if (conn.has_backlog() || session.blocked_by_congestion(max_inflight))
                && !session.congestion_listed
            {
                session.congestion_listed = true;
                self.congested.push(slot);
            }
        }
        self.dirty.clear();
    }

    /// Retries connections held back by slow devices.
    fn retry_congested(&mut self, now: Instant) {
        let max_inflight = self.quotas.max_inflight;
        let slots = std::mem::take(&mut self.congested);
        for slot in slots {
            let empty = &self.empty_props;
            let Some(session) = self
                .slots
                .get_mut(slot as usize)
                .and_then(|s| s.session.as_mut())
            else {
                continue;
            };
            session.congestion_listed = false;
            if session.conn.is_none() {
                continue;
            }
            session.drain_queue(max_inflight, now, empty);
            self.mark_dirty(slot);
        }
    }

    /// Closes every connection with DISCONNECT 0x8B (MQTT 5).
    fn shutdown_all(&mut self) {
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            let slot = u32::try_from(slot).unwrap_or(u32::MAX);
            if self.session(slot).is_some_and(|s| s.conn.is_some()) {
                self.close(slot, Close::Shutdown, now);
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
