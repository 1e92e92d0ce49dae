//! One thread of the tool and the connections it drives.
//!
//! Each thread runs a current-thread tokio runtime whose single task drives all the thread's
//! connections (a `FuturesUnordered` of per-connection futures). Connections therefore share
//! the thread's statistics through plain `Cell`/`RefCell` — no lock or atomic per message —
//! and the only cross-thread traffic is a handful of relaxed counters ([`Progress`]) updated
//! once per wake-up, which the coordinator reads for progress lines and phase changes.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, watch};

use crate::BenchError;
use crate::conn::{self, Conn, Identity, READ_CHUNK_ACTIVE, READ_CHUNK_IDLE, Role};
use crate::error::ConnError;
use crate::plan::{ConnSpec, Params, RoleSpec};
use crate::publisher::Publisher;
use crate::subscriber::Subscriber;

/// Connection handshakes one thread has in progress at most when `--connect-rate` is 0.
pub(crate) const MAX_PENDING_CONNECTS: usize = 256;
/// How long closing a connection (DISCONNECT, TLS close_notify) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Error messages kept per thread; the rest are only counted.
const ERRORS_KEPT: usize = 10;
/// Highest value the histograms track: an hour, in nanoseconds.
const HISTOGRAM_MAX_NS: u64 = 3_600_000_000_000;

/// The run's phase, set by the coordinator and watched by every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing yet.
    Setup,
    /// Subscribers connect and subscribe.
    ConnectSubscribers,
    /// Publishers and idle connections connect.
    ConnectOthers,
    /// Publishers publish.
    Run(Times),
    /// Publishers stop; in-flight messages drain.
    Stop,
    /// Everyone disconnects.
    Close,
}

impl Phase {
    fn rank(self) -> u8 {
        match self {
            Phase::Setup => 0,
            Phase::ConnectSubscribers => 1,
            Phase::ConnectOthers => 2,
            Phase::Run(_) => 3,
            Phase::Stop => 4,
            Phase::Close => 5,
        }
    }
}

/// The run's instants, in nanoseconds since the epoch of [`Params::epoch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Times {
    /// Fixed-rate schedules start here.
    pub start_ns: u64,
    /// The measured window.
    pub window_start_ns: u64,
    pub window_end_ns: u64,
}

/// Counters of one thread that the coordinator reads while the run goes on.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// CONNACKs received.
    pub opened: AtomicU64,
    /// Connections that could not be opened (or subscribed).
    pub failed: AtomicU64,
    /// Connections opened, subscribed if subscribers.
    pub ready: AtomicU64,
    /// Connections lost while running.
    pub dropped: AtomicU64,
    /// PUBLISH packets sent.
    pub published: AtomicU64,
    /// PUBLISH packets received, duplicates included.
    pub delivered: AtomicU64,
    /// PUBLISH packets received for the first time.
    pub delivered_unique: AtomicU64,
    /// Publishers stopped with nothing left in flight.
    pub drained: AtomicU64,
}

impl Progress {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Per-stream outcome: one publisher as seen by one subscriber.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamResult {
    pub publisher: u32,
    pub unique: u64,
    pub duplicates: u64,
}

/// What a thread measured, merged by the coordinator at the end.
pub(crate) struct ShardResults {
    /// End-to-end latency of messages received in the window, ns.
    pub latency: Histogram<u64>,
    /// TCP connect + TLS handshake, ns.
    pub connect: Histogram<u64>,
    /// CONNECT to CONNACK, ns.
    pub connack: Histogram<u64>,
    /// Messages sent, per publisher.
    pub published: Vec<(u32, u64)>,
    pub published_in_window: u64,
    pub delivered: u64,
    pub delivered_in_window: u64,
    /// Messages whose payload names no publisher the subscriber expects.
    pub foreign: u64,
    pub streams: Vec<StreamResult>,
    /// Last CONNACK of the thread.
    pub last_connack: Option<Instant>,
    pub setup_failures: u64,
    pub drops: u64,
    pub errors: Vec<String>,
}

/// A histogram of nanoseconds, 3 significant digits, up to an hour.
pub(crate) fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3)
        .map_err(|e| BenchError::Runtime(format!("histogram: {e}")))
}

impl ShardResults {
    pub(crate) fn new() -> Result<Self, BenchError> {
        Ok(Self {
            latency: histogram()?,
            connect: histogram()?,
            connack: histogram()?,
            published: Vec::new(),
            published_in_window: 0,
            delivered: 0,
            delivered_in_window: 0,
            foreign: 0,
            streams: Vec::new(),
            last_connack: None,
            setup_failures: 0,
            drops: 0,
            errors: Vec::new(),
        })
    }

    fn error(&mut self, client_id: &str, what: &str, e: &ConnError) {
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(format!("{client_id}: {what}: {e}"));
        }
    }
}

/// What the connections of a thread share.
pub(crate) struct ShardState {
    pub params: Arc<Params>,
    pub progress: Arc<Progress>,
    pub results: RefCell<ShardResults>,
    phase: watch::Receiver<Phase>,
    next_connect: Cell<Option<Instant>>,
    connect_slots: Semaphore,
}

impl ShardState {
    /// The next instant this thread may start a connection at, per `--connect-rate`.
    fn connect_slot(&self) -> Option<Instant> {
        let interval = self.params.connect_interval?;
        let now = Instant::now();
        let at = self.next_connect.get().map_or(now, |n| n.max(now));
        self.next_connect.set(Some(at + interval));
        Some(at)
    }
}

/// Runs a thread's connections to the end of the run.
pub(crate) async fn run(
    specs: Vec<ConnSpec>,
    params: Arc<Params>,
    phase: watch::Receiver<Phase>,
    progress: Arc<Progress>,
    results: ShardResults,
) -> ShardResults {
    let state = ShardState {
        params,
        progress,
        results: RefCell::new(results),
        phase,
        next_connect: Cell::new(None),
        connect_slots: Semaphore::new(MAX_PENDING_CONNECTS),
    };
    let mut conns: FuturesUnordered<_> = specs.into_iter().map(|s| lifecycle(&state, s)).collect();
    while conns.next().await.is_some() {}
    drop(conns);
    state.results.into_inner()
}

/// One connection from start to end: wait for its group's turn, connect, subscribe, run the
/// role through the phases, close.
async fn lifecycle(state: &ShardState, spec: ConnSpec) {
    let mut phase = state.phase.clone();
    let group = match spec.role {
        RoleSpec::Subscriber { .. } => Phase::ConnectSubscribers,
        _ => Phase::ConnectOthers,
    };
    match phase.wait_for(|p| p.rank() >= group.rank()).await {
        Ok(p) if p.rank() < Phase::Stop.rank() => {}
        _ => return,
    }
    let Some((conn, receive_maximum)) = connect(state, &spec).await else {
        Progress::add(&state.progress.failed, 1);
        return;
    };
    Progress::add(&state.progress.ready, 1);
    let id = &spec.client_id;
    match spec.role {
        RoleSpec::Publisher { publisher, topic } => {
            let role = Publisher::new(state, publisher, topic, receive_maximum);
            drive(state, id, conn, role, phase).await;
        }
        RoleSpec::Subscriber { first, count, .. } => {
            let role = Subscriber::new(state, first, count);
            drive(state, id, conn, role, phase).await;
        }
        RoleSpec::Idle => drive(state, id, conn, Idle, phase).await,
    }
}

/// Opens the connection (and subscribes a subscriber), recording latencies or the failure.
/// Returns the connection and the broker's Receive Maximum.
async fn connect(state: &ShardState, spec: &ConnSpec) -> Option<(Conn, u16)> {
    let params = &state.params;
    let opened = {
        // The permit bounds handshakes in progress; the slot paces them.
        let _permit = state.connect_slots.acquire().await.ok()?;
        if let Some(at) = state.connect_slot() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        }
        let who = Identity {
            client_id: &spec.client_id,
            username: spec.username.as_deref(),
            password: spec.password.as_deref(),
            source_ip: spec.source_ip,
        };
        let chunk = match spec.role {
            RoleSpec::Idle => READ_CHUNK_IDLE,
            _ => READ_CHUNK_ACTIVE,
        };
        conn::open(params, &who, chunk).await
    };
    let mut opened = match opened {
        Ok(o) => o,
        Err(e) => {
            let mut r = state.results.borrow_mut();
            r.setup_failures += 1;
            r.error(&spec.client_id, "connect", &e);
            return None;
        }
    };
    {
        let now = Instant::now();
        let mut r = state.results.borrow_mut();
        r.connect.saturating_record(nanos(opened.connect));
        r.connack.saturating_record(nanos(opened.connack));
        r.last_connack = Some(now);
    }
    Progress::add(&state.progress.opened, 1);
    if let RoleSpec::Subscriber { filter, .. } = &spec.role
        && let Err(e) = opened
            .conn
            .subscribe(filter, params.qos, params.connect_timeout)
            .await
    {
        let mut r = state.results.borrow_mut();
        r.setup_failures += 1;
        r.error(&spec.client_id, "subscribe", &e);
        return None;
    }
    Some((opened.conn, opened.receive_maximum))
}

/// What a role does beyond [`Role`]: follow the phases and hand in its figures at the end.
pub(crate) trait Phased: Role {
    /// The run entered `phase`.
    fn on_phase(&mut self, phase: Phase);
    /// The connection is done: move per-connection figures into the thread's results.
    fn finish(&mut self);
}

/// Drives `conn` for `role` through the phases until Close, or until the connection fails.
async fn drive<R: Phased>(
    state: &ShardState,
    client_id: &str,
    mut conn: Conn,
    mut role: R,
    mut phase: watch::Receiver<Phase>,
) {
    loop {
        let current = *phase.borrow_and_update();
        if current == Phase::Close {
            break;
        }
        role.on_phase(current);
        let still_there = tokio::select! {
            biased;
            changed = phase.changed() => changed.is_ok(),
            result = std::future::poll_fn(|cx| conn.poll_drive(cx, &mut role)) => {
                let e = result.err().unwrap_or(ConnError::Closed);
                Progress::add(&state.progress.dropped, 1);
                {
                    let mut r = state.results.borrow_mut();
                    r.drops += 1;
                    r.error(client_id, "lost", &e);
                }
                role.finish();
                return;
            }
        };
        if !still_there {
            break;
        }
    }
    role.finish();
    conn.close(CLOSE_TIMEOUT).await;
}

/// `conns`: a connection that only keeps alive.
struct Idle;

impl Role for Idle {
    fn on_packet(
        &mut self,
        _packet: tenantmq_codec::Packet,
        _now: Instant,
        _out: &mut bytes::BytesMut,
        _version: tenantmq_codec::ProtocolVersion,
    ) -> Result<(), ConnError> {
        Err(ConnError::Unexpected("a packet on an idle connection"))
    }
}

impl Phased for Idle {
    fn on_phase(&mut self, _phase: Phase) {}
    fn finish(&mut self) {}
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
