//! One device connection, from the first byte to the close (generic over the byte stream, so
//! plain TCP, TLS and WebSocket share it).
//!
//! 1. Read the CONNECT under the connect timeout and the pre-authentication size limit; the
//!    first packet must be CONNECT (`MQTT-3.1.0-1`). The timeout runs from accept
//!    ([`ConnInfo::accepted_at`]), so time spent in the PROXY header, TLS handshake and
//!    WebSocket upgrade counts against it.
//! 2. Authenticate it; refusals get a CONNACK with the reason and a close.
//! 3. Open the session on the tenant's worker through the link.
//! 4. Pump: whole packets from the device go to the engine, one frame per read; the engine's
//!    chunks go to the socket, gathered into one write per wake-up. Silence beyond 1.5 × keep
//!    alive closes the connection (`MQTT-3.1.2-22`).
//!
//! The limits of [`crate::limits`] apply on the way: the source's connect rate before
//! authentication; the client id's and the tenant's connect rate and the tenant's connection
//! cap after it; and after every read, the client's publish rate and bandwidth — the reader
//! stops reading the socket (while still writing to it) until the allowance covers what was
//! read, for at most [`MAX_RATE_PAUSE`], and only then marks the excess for the engine to
//! refuse.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tenantmq_codec::{
    ConnAck, DecodeError, FixedHeader, Packet, PacketType, ProtocolVersion, ReasonCode, frame,
};
use tenantmq_common::TenantId;
use tenantmq_common::link::{
    Accepted, CloseReason, DeviceRx, OpenSession, Opened, SessionKey, ToEngine, device_channel,
};
use tenantmq_common::usage::RejectReason;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, timeout_at};

use crate::auth::{AuthRequest, Authenticator, ClientCertInfo};
use crate::config::GatewayConfig;
use crate::limits::{ClientRate, EdgeLimits, MAX_RATE_PAUSE, Take};
use crate::stats::GatewayStats;
use tenantmq_router::{ConnectionGuard, Link};

/// Bytes reserved for reading when the buffer runs low.
const READ_CHUNK: usize = 4096;

/// Most bytes gathered from several engine chunks into one socket write (rustls buffers up
/// to 64 KiB of records per connection).
const MAX_WRITE_GATHER: usize = 64 * 1024;

/// Most engine chunks in one vectored write (Tokio passes at most 64 slices to `writev`).
const MAX_WRITE_CHUNKS: usize = 64;

/// How long a connection whose device side ended waits for the engine to release it.
const LINGER: Duration = Duration::from_secs(5);

/// First pause for the rate allowance. A throttled client's packets are let through a few at
/// a time rather than one by one: each resume is a wake-up of the connection task and a frame
/// to the engine.
const MIN_WAIT: Duration = Duration::from_millis(5);

/// Longest pause between two resumes of a client that stays over its rate: each pause in a
/// row is twice the last (from [`MIN_WAIT`]) up to this. A flooding tenant's wake-ups are what
/// it costs its neighbours: they fall on the same scheduler turns and timer ticks as the
/// neighbours' packets (measured by the noisy-neighbour test: at 5 ms steps, four flooding
/// devices raised another tenant's p99 by 6–25%; at 50 ms, not measurably). The client is over
/// its rate anyway: its packets go 50 ms of allowance at a time, in one frame.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// What every connection of a gateway shares.
pub struct ConnectionContext {
    /// Per-connection limits.
    pub config: GatewayConfig,
    /// Where sessions are opened.
    pub link: Arc<dyn Link>,
    /// Who decides who a device is.
    pub authenticator: Arc<dyn Authenticator>,
    /// Counters.
    pub stats: Arc<GatewayStats>,
    /// Connect rates, connection caps and the tenants' current quotas
    /// ([`EdgeLimits::new`] with the same `config`).
    pub limits: Arc<EdgeLimits>,
}

/// Why reading the CONNECT failed.
enum ConnectError {
    Io,
    Closed,
    NotConnect,
    Decode(DecodeError),
}

/// What the listener learnt about a connection before its first MQTT byte.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The device's address: the socket's peer, or the source address of the PROXY protocol
    /// header when the listener reads one.
    pub peer: Option<SocketAddr>,
    /// The TLS server name (SNI) the device asked for.
    pub sni: Option<String>,
    /// The verified client certificate of a mutual-TLS connection.
    pub client_cert: Option<ClientCertInfo>,
    /// When the socket was accepted; the connect timeout runs from here.
    pub accepted_at: Instant,
}

impl ConnInfo {
    /// A connection accepted now from `peer`, without TLS.
    pub fn new(peer: Option<SocketAddr>) -> Self {
        Self {
            peer,
            sni: None,
            client_cert: None,
            accepted_at: Instant::now(),
        }
    }
}

/// Serves one connection until it ends.
pub async fn serve<S>(mut stream: S, info: ConnInfo, ctx: &ConnectionContext)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // The CONNECT phase runs in its own boxed future: authentication, pacing and refusals
    // make it several KB, and it is over after a few milliseconds. What an open connection
    // keeps for its lifetime is the pump's state. (The box gets a statement of its own: a
    // temporary spanning the `.await` would keep room for the whole phase in this future.)
    let establishing = Box::pin(establish(&mut stream, info, ctx));
    let Some(open) = establishing.await else {
        return;
    };
    pump(stream, open.inbuf, open.rx, open.accepted, open.reader).await;
    drop(open.slot);
}

/// What the CONNECT phase hands the pump.
struct Established {
    /// Bytes read after the CONNECT.
    inbuf: BytesMut,
    rx: DeviceRx,
    accepted: Accepted,
    reader: Reader,
    /// The tenant's connection slot, held for the connection's lifetime.
    slot: ConnectionGuard,
}

/// Reads, checks and authenticates the CONNECT and opens the session; `None` when the
/// connection was refused or ended (answered and logged here).
async fn establish<S>(
    stream: &mut S,
    info: ConnInfo,
    ctx: &ConnectionContext,
) -> Option<Established>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let stats = &ctx.stats;
    let peer = info.peer;
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let limit = ctx.config.pre_auth_max_packet;
    let (header, frame) = match timeout_at(
        info.accepted_at + ctx.config.connect_timeout,
        read_connect(stream, &mut inbuf, limit),
    )
    .await
    {
        Err(_) => {
            GatewayStats::bump(&stats.connect_timeouts);
            tracing::info!(?peer, "closed: no CONNECT within the connect timeout");
            return None;
        }
        Ok(Err(ConnectError::Io | ConnectError::Closed)) => return None,
        Ok(Err(ConnectError::NotConnect)) => {
            GatewayStats::bump(&stats.bad_connect);
            tracing::info!(?peer, "closed: first packet is not CONNECT");
            return None;
        }
        Ok(Err(ConnectError::Decode(e))) => {
            let counter = match e {
                DecodeError::PacketTooLarge { .. } => &stats.oversized_connect,
                _ => &stats.bad_connect,
            };
            GatewayStats::bump(counter);
            tracing::info!(?peer, error = %e, "closed: bad CONNECT");
            return None;
        }
        Ok(Ok(f)) => f,
    };
    let connect = match Packet::decode(frame.clone(), &header, ProtocolVersion::V5) {
        Ok(Packet::Connect(c)) => c,
        Ok(_) => return None,
        Err(e) => {
            GatewayStats::bump(&stats.bad_connect);
            tracing::info!(?peer, error = %e, "closed: malformed CONNECT");
            match e {
                // `MQTT-3.1.2-2`: answer an unsupported level with return code 0x01.
                DecodeError::UnsupportedProtocolVersion => {
                    refuse(stream, ProtocolVersion::V311, e.reason_code()).await;
                }
                _ if level_of(&frame) == Some(5) => {
                    refuse(stream, ProtocolVersion::V5, e.reason_code()).await;
                }
                _ => {}
            }
            return None;
        }
    };
    let version = connect.protocol;
    // Before authentication, so that a flood of CONNECTs costs no credential checks.
    if !ctx.limits.source_allowed(peer.map(|p| p.ip())) {
        if let Some(c) = stats
            .rejections
            .get(RejectReason::SourceConnectRate.index())
        {
            GatewayStats::bump(c);
        }
        tracing::info!(?peer, "connection refused: source connect rate");
        refuse(stream, version, ReasonCode::CONNECTION_RATE_EXCEEDED).await;
        return None;
    }

    let request = AuthRequest {
        connect: &connect,
        sni: info.sni.as_deref(),
        peer,
        client_cert: info.client_cert.as_ref(),
    };
    let auth = match ctx.authenticator.authenticate(request).await {
        Ok(auth) => auth,
        Err(failure) => {
            GatewayStats::bump(&stats.auth_failures);
            tracing::info!(?peer, %failure, "connection refused");
            refuse(stream, version, failure.reason_code()).await;
            return None;
        }
    };
    let tenant = auth.tenant;
    let edge = ctx.limits.tenant(tenant, &auth.quotas);
    // Slowed first: a device reconnecting in a tight loop waits here (its CONNACK comes
    // later), and is refused only when the wait would be too long.
    if !ctx.limits.pace_client_id(tenant, &connect.client_id).await {
        stats.reject(tenant, RejectReason::ClientConnectRate);
        tracing::info!(?peer, %tenant, "connection refused: client id connect rate");
        refuse(stream, version, ReasonCode::CONNECTION_RATE_EXCEEDED).await;
        return None;
    }
    drop(connect);
    // The tenant's budget is spent only by devices that proved they belong to it.
    if !ctx.limits.connect_allowed(tenant, &edge) {
        stats.reject(tenant, RejectReason::ConnectRate);
        tracing::info!(?peer, %tenant, "connection refused: tenant connect rate");
        refuse(stream, version, ReasonCode::CONNECTION_RATE_EXCEEDED).await;
        return None;
    }
    let Some(slot) = ctx.limits.acquire_connection(tenant, &edge) else {
        stats.reject(tenant, RejectReason::ConnectionQuota);
        tracing::info!(?peer, %tenant, "connection refused: tenant at max_connections");
        refuse(stream, version, ReasonCode::QUOTA_EXCEEDED).await;
        return None;
    };

    let (device_tx, mut device_rx) = device_channel();
    let open = OpenSession {
        connect: frame,
        auth,
        peer,
        device: device_tx,
    };
    let accepted = match ctx.link.open(open).await {
        Ok(Opened::Accepted(a)) => a,
        Ok(Opened::Refused) => {
            // The engine queued its CONNACK; deliver it, then close.
            while let Some(chunk) = device_rx.recv().await {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = stream.shutdown().await;
            return None;
        }
        Err(e) => {
            tracing::warn!(?peer, error = %e, "no worker for the session");
            refuse(stream, version, ReasonCode::SERVER_UNAVAILABLE).await;
            return None;
        }
    };
    let reader = Reader {
        engine: accepted.engine.clone(),
        session: accepted.session,
        rate: ClientRate::new(edge),
        waiting_since: None,
        pause: MIN_WAIT,
        tenant,
        stats: ctx.stats.clone(),
    };
    Some(Established {
        inbuf,
        rx: device_rx,
        accepted,
        reader,
        slot,
    })
}

/// Reads until a whole first packet is buffered and returns it if it is a CONNECT.
async fn read_connect<S>(
    stream: &mut S,
    inbuf: &mut BytesMut,
    limit: u32,
) -> Result<(FixedHeader, Bytes), ConnectError>
where
    S: AsyncRead + Unpin,
{
    loop {
        if let Some(&first) = inbuf.first()
            && first >> 4 != PacketType::Connect as u8
        {
            return Err(ConnectError::NotConnect);
        }
        match frame::check(inbuf, limit) {
            Ok(Some(header)) => {
                // A copy of its own: the engine keeps parts of the CONNECT (client id, will,
                // user name) for the session's lifetime, and a slice would keep the whole
                // read buffer allocated with them — 4 KiB per idle connection.
                let frame = Bytes::copy_from_slice(&inbuf[..header.total_len()]);
                inbuf.advance(header.total_len());
                return Ok((header, frame));
            }
            Ok(None) => {}
            Err(e) => return Err(ConnectError::Decode(e)),
        }
        inbuf.reserve(READ_CHUNK);
        match stream.read_buf(inbuf).await {
            Ok(0) => return Err(ConnectError::Closed),
            Ok(_) => {}
            Err(_) => return Err(ConnectError::Io),
        }
    }
}

/// The protocol level byte of a CONNECT frame, if present.
fn level_of(frame: &[u8]) -> Option<u8> {
    let header_len = 1 + frame.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
    frame.get(header_len + 6).copied()
}

/// Sends a refusing CONNACK and closes.
async fn refuse<S>(stream: &mut S, version: ProtocolVersion, reason: ReasonCode)
where
    S: AsyncWrite + Unpin,
{
    let packet = Packet::ConnAck(ConnAck {
        session_present: false,
        reason,
        ..Default::default()
    });
    let mut out = BytesMut::with_capacity(packet.encoded_len(version));
    if packet.encode(version, &mut out).is_ok() {
        let _ = stream.write_all(&out).await;
    }
    let _ = stream.shutdown().await;
}

/// How a read ended.
enum Read {
    Data,
    Eof,
    Timeout,
}

/// The device-to-engine half of a connection: where its packets go and how fast they may.
struct Reader {
    engine: tokio::sync::mpsc::Sender<ToEngine>,
    session: SessionKey,
    rate: ClientRate,
    /// When the packets now buffered started waiting for the rate allowance.
    waiting_since: Option<Instant>,
    /// The next pause for the rate allowance: [`MIN_WAIT`], doubled (up to [`MAX_WAIT`]) for
    /// each pause in a row.
    pause: Duration,
    tenant: TenantId,
    stats: Arc<GatewayStats>,
}

/// Moves bytes both ways until the engine releases the connection.
async fn pump<S>(
    mut stream: S,
    mut inbuf: BytesMut,
    mut rx: DeviceRx,
    accepted: Accepted,
    mut reader: Reader,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // The gateway's framing follows the tenant's current `max_message_bytes`
    // (`ClientRate::max_packet_size`), not the value at CONNECT.
    let keep_alive = accepted.keep_alive;
    let idle = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
    let mut deadline = idle.map(|d| Instant::now() + d);
    let mut reading = true;
    let mut writable = true;
    // While set, the socket is not read: the client is over its rate allowance.
    let mut resume_at = None;

    // Packets pipelined right behind the CONNECT.
    match reader.forward(&mut inbuf).await {
        Ok(resume) => resume_at = resume,
        Err(reason) => {
            reading = false;
            reader.report(reason).await;
        }
    }

    let mut linger = None;
    loop {
        if !reading && linger.is_none() {
            linger = Some(Instant::now() + LINGER);
        }
        tokio::select! {
            chunk = rx.recv_held() => {
                let Some(chunk) = chunk else {
                    // The engine released the connection: everything queued was delivered.
                    if writable {
                        let _ = stream.shutdown().await;
                    }
                    return;
                };
                if writable && write_chunks(&mut stream, chunk, &mut rx).await.is_err() {
                    writable = false;
                    if reading {
                        reading = false;
                        reader.report(CloseReason::ConnectionLost).await;
                    }
                }
            }
            read = read_some(&mut stream, &mut inbuf, deadline), if reading && resume_at.is_none() => {
                let reason = match read {
                    Ok(Read::Data) => match reader.forward(&mut inbuf).await {
                        Ok(resume) => {
                            resume_at = resume;
                            // Counted from when the packets were handed over: waiting for
                            // the engine's mailbox is not the device's silence.
                            deadline = idle.map(|d| Instant::now() + d);
                            continue;
                        }
                        Err(reason) => reason,
                    },
                    Ok(Read::Timeout) => CloseReason::KeepAliveTimeout,
                    Ok(Read::Eof) | Err(_) => CloseReason::ConnectionLost,
                };
                reading = false;
                reader.report(reason).await;
            }
            () = sleep_until_opt(resume_at), if reading && resume_at.is_some() => {
                match reader.forward(&mut inbuf).await {
                    // The keep-alive deadline restarts: the pause was ours, not the device's
                    // silence (`MQTT-3.1.2-22` is about the client not sending).
                    Ok(resume) => {
                        resume_at = resume;
                        deadline = idle.map(|d| Instant::now() + d);
                    }
                    Err(reason) => {
                        reading = false;
                        reader.report(reason).await;
                    }
                }
            }
            () = sleep_until_opt(linger), if linger.is_some() => return,
        }
    }
}

/// Reads once, bounded by the keep-alive deadline.
async fn read_some<S>(
    stream: &mut S,
    inbuf: &mut BytesMut,
    deadline: Option<Instant>,
) -> io::Result<Read>
where
    S: AsyncRead + Unpin,
{
    let read = async {
        if inbuf.is_empty() {
            wait_for_data(stream, inbuf).await?;
        }
        if inbuf.capacity() - inbuf.len() < READ_CHUNK / 4 {
            inbuf.reserve(READ_CHUNK);
        }
        stream.read_buf(inbuf).await
    };
    let n = match deadline {
        Some(d) => match timeout_at(d, read).await {
            Ok(r) => r?,
            Err(_) => return Ok(Read::Timeout),
        },
        None => read.await?,
    };
    Ok(if n == 0 { Read::Eof } else { Read::Data })
}

/// Waits until `stream` has bytes (or its end) to read, without a read buffer: most
/// connections are idle most of the time, and 4 KiB of read buffer each is most of what an
/// idle connection would cost. A read into no room returns as soon as the stream has data —
/// TCP once the socket is readable, TLS once a record decrypted to plaintext (kept by
/// rustls), WebSocket once a message arrived — and consumes nothing; while it waits, the
/// connection's empty buffer is freed.
async fn wait_for_data<S>(stream: &mut S, inbuf: &mut BytesMut) -> io::Result<()>
where
    S: AsyncRead + Unpin,
{
    std::future::poll_fn(|cx| {
        let poll = Pin::new(&mut *stream).poll_read(cx, &mut ReadBuf::new(&mut []));
        if poll.is_pending() && inbuf.capacity() > 0 {
            *inbuf = BytesMut::new();
        }
        poll
    })
    .await
}

impl Reader {
    /// Sends the whole packets buffered to the engine, as far as the client's rate allows.
    ///
    /// Returns `Some(when)` when PUBLISH packets beyond the allowance stay buffered: the
    /// caller stops reading until then and calls again. Once they have waited
    /// [`MAX_RATE_PAUSE`], they go with `over_rate` set and the engine refuses them (MQTT 5:
    /// 0x97 "message rate too high"). A framing error (malformed fixed header, packet above
    /// `max_message_bytes`) is returned as the reason to close, after the packets before it.
    async fn forward(&mut self, inbuf: &mut BytesMut) -> Result<Option<Instant>, CloseReason> {
        self.rate.refresh();
        let max_packet_size = self.rate.max_packet_size();
        let mut whole = 0;
        let mut failure = None;
        // The first PUBLISH beyond the allowance: where it starts, when it could pass, why.
        let mut blocked: Option<(usize, Duration, RejectReason)> = None;
        let mut over: u32 = 0;
        loop {
            match frame::check(&inbuf[whole..], max_packet_size) {
                Ok(Some(h)) => {
                    let len = h.total_len();
                    if h.packet_type == PacketType::Publish {
                        if blocked.is_none()
                            && let Take::Wait(wait, why) = self.rate.try_take(len)
                        {
                            blocked = Some((whole, wait, why));
                        }
                        if blocked.is_some() {
                            over += 1;
                        }
                    }
                    whole += len;
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(CloseReason::Protocol(e.reason_code().0));
                    break;
                }
            }
        }
        let now = Instant::now();
        let (send, over_rate, resume) = match blocked {
            None => {
                self.waiting_since = None;
                self.pause = MIN_WAIT;
                (whole, 0, None)
            }
            Some((at, wait, why)) => {
                let give_up = *self.waiting_since.get_or_insert(now) + MAX_RATE_PAUSE;
                if failure.is_none() && now < give_up {
                    // Slow down: what fits goes now, the rest when the tokens are there.
                    let pause = wait.max(self.pause);
                    self.pause = (self.pause * 2).min(MAX_WAIT);
                    (at, 0, Some((now + pause).min(give_up)))
                } else {
                    // Slowed as far as we do; the engine refuses the excess.
                    self.waiting_since = None;
                    self.rate.forget_prepaid();
                    for _ in 0..over {
                        self.stats.reject(self.tenant, why);
                    }
                    (whole, over, None)
                }
            }
        };
        if send > 0 {
            let data = inbuf.split_to(send).freeze();
            let frame = ToEngine::Packets {
                session: self.session,
                data,
                over_rate,
                received_at: now,
            };
            if self.engine.send(frame).await.is_err() {
                return Err(CloseReason::ServerShutdown);
            }
        }
        failure.map_or(Ok(resume), Err)
    }

    /// Tells the engine the device side ended, and counts why.
    async fn report(&self, reason: CloseReason) {
        let stats = &self.stats;
        match reason {
            CloseReason::KeepAliveTimeout => GatewayStats::bump(&stats.keepalive_timeouts),
            CloseReason::Protocol(code) => {
                GatewayStats::bump(&stats.protocol_errors);
                if code == ReasonCode::PACKET_TOO_LARGE.0 {
                    stats.reject(self.tenant, RejectReason::PacketTooLarge);
                }
            }
            _ => {}
        }
        tracing::debug!(?reason, "device side ended");
        let closed = ToEngine::Closed {
            session: self.session,
            reason,
        };
        let _ = self.engine.send(closed).await;
    }
}

/// Writes `first` and whatever else is ready as one write — a vectored one, so the chunks
/// are not copied together first: TLS encrypts them straight into full records and sends
/// those with one `writev`. The chunks count as queued towards the device (the engine's
/// congestion measure) until the socket took them.
async fn write_chunks<S>(stream: &mut S, first: Bytes, rx: &mut DeviceRx) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let result = match rx.try_recv_held() {
        None => {
            let n = first.len();
            let written = stream.write_all(&first).await;
            rx.written(n);
            written
        }
        Some(second) => {
            let mut chunks = Gather::new(first, second);
            while chunks.remaining() < MAX_WRITE_GATHER && chunks.len() < MAX_WRITE_CHUNKS {
                match rx.try_recv_held() {
                    Some(c) => chunks.push(c),
                    None => break,
                }
            }
            let n = chunks.remaining();
            let written = stream.write_all_buf(&mut chunks).await;
            rx.written(n);
            written
        }
    };
    result?;
    stream.flush().await
}

/// Engine chunks being written as one vectored write.
struct Gather {
    chunks: Vec<Bytes>,
    /// The first chunk not yet written completely.
    next: usize,
    remaining: usize,
}

impl Gather {
    fn new(first: Bytes, second: Bytes) -> Self {
        let remaining = first.len() + second.len();
        let mut chunks = Vec::with_capacity(8);
        chunks.push(first);
        chunks.push(second);
        Self {
            chunks,
            next: 0,
            remaining,
        }
    }

    fn push(&mut self, chunk: Bytes) {
        self.remaining += chunk.len();
        self.chunks.push(chunk);
    }

    fn len(&self) -> usize {
        self.chunks.len()
    }
}

impl Buf for Gather {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.get(self.next).map_or(&[], |c| c.as_ref())
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let pending = self.chunks.iter().skip(self.next);
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(pending) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        self.remaining -= cnt.min(self.remaining);
        while cnt > 0 {
            let Some(chunk) = self.chunks.get_mut(self.next) else {
                return;
            };
            if cnt < chunk.len() {
                chunk.advance(cnt);
                return;
            }
            cnt -= chunk.len();
            self.next += 1;
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::TenantEdge;
    use tenantmq_common::quota::Quotas;

    /// A reader for a client allowed `per_sec` PUBLISH packets a second, and its engine side.
    fn reader(per_sec: u32) -> (Reader, tokio::sync::mpsc::Receiver<ToEngine>) {
        let quotas = Arc::new(Quotas {
            publish_rate_per_client: per_sec,
            ..Quotas::unlimited()
        });
        let (engine, rx) = tokio::sync::mpsc::channel(16);
        let reader = Reader {
            engine,
            session: SessionKey {
                slot: 0,
                generation: 0,
            },
            rate: ClientRate::new(Arc::new(TenantEdge::new(quotas))),
            waiting_since: None,
            pause: MIN_WAIT,
            tenant: TenantId::from_uuid(uuid::Uuid::nil()),
            stats: Arc::default(),
        };
        (reader, rx)
    }

    /// `n` QoS 0 PUBLISH packets to `t` with a 2-byte payload.
    fn publishes(n: usize) -> BytesMut {
        let mut buf = BytesMut::new();
        for _ in 0..n {
            buf.extend_from_slice(&[0x30, 5, 0, 1, b't', b'x', b'y']);
        }
        buf
    }

    #[tokio::test]
    async fn a_client_that_stays_over_its_rate_is_resumed_less_and_less_often() {
        let (mut reader, mut rx) = reader(1000);
        let mut inbuf = publishes(1500);
        let mut expected = MIN_WAIT;
        for round in 0..6 {
            let before = Instant::now();
            let resume = reader
                .forward(&mut inbuf)
                .await
                .expect("forward")
                .expect("the client is over its rate: reading stops");
            // One more packet needs 1 ms of allowance; the pause is the longer one.
            assert!(
                resume - before >= expected,
                "round {round}: paused {:?}, expected {expected:?}",
                resume - before
            );
            expected = (expected * 2).min(MAX_WAIT);
            assert_eq!(reader.pause, expected, "round {round}: next pause");
        }
        assert_eq!(expected, MAX_WAIT, "the pauses reached their longest");
        // The first read took the burst (a second's allowance), the later ones nothing.
        match rx.try_recv() {
            Ok(ToEngine::Packets {
                data, over_rate, ..
            }) => {
                assert_eq!(data.len(), 1000 * 7, "a second's allowance went at once");
                assert_eq!(over_rate, 0);
            }
            _ => panic!("expected the allowed packets"),
        }
        assert!(rx.try_recv().is_err(), "nothing went while over the rate");
        assert_eq!(inbuf.len(), 500 * 7, "the rest waits in the buffer");

        // A read that is within the rate (here: no PUBLISH) starts again from the shortest.
        let mut ping = BytesMut::from(&[0xC0u8, 0][..]);
        let resume = reader.forward(&mut ping).await.expect("forward");
        assert_eq!(resume, None, "a PINGREQ is not held for the rate");
        assert_eq!(reader.pause, MIN_WAIT);
    }
}
