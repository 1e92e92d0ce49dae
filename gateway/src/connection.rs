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

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tenantmq_codec::{
    ConnAck, DecodeError, FixedHeader, Packet, PacketType, ProtocolVersion, ReasonCode, frame,
};
use tenantmq_common::link::{
    Accepted, CloseReason, DeviceRx, OpenSession, Opened, ToEngine, device_channel,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use crate::auth::{AuthRequest, Authenticator, ClientCertInfo};
use crate::config::GatewayConfig;
use crate::stats::GatewayStats;
use tenantmq_router::Link;

/// Bytes reserved for reading when the buffer runs low.
const READ_CHUNK: usize = 4096;

/// Most bytes gathered from several engine chunks into one socket write.
const MAX_WRITE_GATHER: usize = 64 * 1024;

/// How long a connection whose device side ended waits for the engine to release it.
const LINGER: Duration = Duration::from_secs(5);

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
    let stats = &ctx.stats;
    let peer = info.peer;
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let limit = ctx.config.pre_auth_max_packet;
    let (header, frame) = match timeout_at(
        info.accepted_at + ctx.config.connect_timeout,
        read_connect(&mut stream, &mut inbuf, limit),
    )
    .await
    {
        Err(_) => {
            GatewayStats::bump(&stats.connect_timeouts);
            tracing::info!(?peer, "closed: no CONNECT within the connect timeout");
            return;
        }
        Ok(Err(ConnectError::Io | ConnectError::Closed)) => return,
        Ok(Err(ConnectError::NotConnect)) => {
            GatewayStats::bump(&stats.bad_connect);
            tracing::info!(?peer, "closed: first packet is not CONNECT");
            return;
        }
        Ok(Err(ConnectError::Decode(e))) => {
            let counter = match e {
                DecodeError::PacketTooLarge { .. } => &stats.oversized_connect,
                _ => &stats.bad_connect,
            };
            GatewayStats::bump(counter);
            tracing::info!(?peer, error = %e, "closed: bad CONNECT");
            return;
        }
        Ok(Ok(f)) => f,
    };
    let connect = match Packet::decode(frame.clone(), &header, ProtocolVersion::V5) {
        Ok(Packet::Connect(c)) => c,
        Ok(_) => return,
        Err(e) => {
            GatewayStats::bump(&stats.bad_connect);
            tracing::info!(?peer, error = %e, "closed: malformed CONNECT");
            match e {
                // `MQTT-3.1.2-2`: answer an unsupported level with return code 0x01.
                DecodeError::UnsupportedProtocolVersion => {
                    refuse(&mut stream, ProtocolVersion::V311, e.reason_code()).await;
                }
                _ if level_of(&frame) == Some(5) => {
                    refuse(&mut stream, ProtocolVersion::V5, e.reason_code()).await;
                }
                _ => {}
            }
            return;
        }
    };
    let version = connect.protocol;

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
            refuse(&mut stream, version, failure.reason_code()).await;
            return;
        }
    };
    drop(connect);

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
            return;
        }
        Err(e) => {
            tracing::warn!(?peer, error = %e, "no worker for the session");
            refuse(&mut stream, version, ReasonCode::SERVER_UNAVAILABLE).await;
            return;
        }
    };
    pump(stream, inbuf, device_rx, accepted, stats).await;
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
                let frame = inbuf.split_to(header.total_len()).freeze();
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

/// Moves bytes both ways until the engine releases the connection.
async fn pump<S>(
    mut stream: S,
    mut inbuf: BytesMut,
    mut rx: DeviceRx,
    accepted: Accepted,
    stats: &GatewayStats,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Accepted {
        session,
        keep_alive,
        max_packet_size,
        engine,
    } = accepted;
    let idle = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
    let mut deadline = idle.map(|d| Instant::now() + d);
    let mut reading = true;
    let mut writable = true;
    let mut wbuf = BytesMut::new();

    // Packets pipelined right behind the CONNECT.
    if let Err(reason) = forward(&mut inbuf, max_packet_size, &engine, session).await {
        reading = false;
        report(&engine, session, reason, stats).await;
    }

    let mut linger = None;
    loop {
        if !reading && linger.is_none() {
            linger = Some(Instant::now() + LINGER);
        }
        tokio::select! {
            chunk = rx.recv() => {
                let Some(chunk) = chunk else {
                    // The engine released the connection: everything queued was delivered.
                    if writable {
                        let _ = stream.shutdown().await;
                    }
                    return;
                };
                if writable && write_chunks(&mut stream, chunk, &mut rx, &mut wbuf).await.is_err() {
                    writable = false;
                    if reading {
                        reading = false;
                        report(&engine, session, CloseReason::ConnectionLost, stats).await;
                    }
                }
            }
            read = read_some(&mut stream, &mut inbuf, deadline), if reading => {
                let reason = match read {
                    Ok(Read::Data) => {
                        deadline = idle.map(|d| Instant::now() + d);
                        match forward(&mut inbuf, max_packet_size, &engine, session).await {
                            Ok(()) => continue,
                            Err(reason) => reason,
                        }
                    }
                    Ok(Read::Timeout) => CloseReason::KeepAliveTimeout,
                    Ok(Read::Eof) | Err(_) => CloseReason::ConnectionLost,
                };
                reading = false;
                report(&engine, session, reason, stats).await;
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
    if inbuf.capacity() - inbuf.len() < READ_CHUNK / 4 {
        inbuf.reserve(READ_CHUNK);
    }
    let n = match deadline {
        Some(d) => match timeout_at(d, stream.read_buf(inbuf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(Read::Timeout),
        },
        None => stream.read_buf(inbuf).await?,
    };
    Ok(if n == 0 { Read::Eof } else { Read::Data })
}

/// Sends every whole packet buffered to the engine as one frame. A framing error (malformed
/// fixed header, packet above the limit) is returned as the reason to close.
async fn forward(
    inbuf: &mut BytesMut,
    max_packet_size: u32,
    engine: &tokio::sync::mpsc::Sender<ToEngine>,
    session: tenantmq_common::link::SessionKey,
) -> Result<(), CloseReason> {
    let mut whole = 0;
    let mut failure = None;
    loop {
        match frame::check(&inbuf[whole..], max_packet_size) {
            Ok(Some(h)) => whole += h.total_len(),
            Ok(None) => break,
            Err(e) => {
                failure = Some(CloseReason::Protocol(e.reason_code().0));
                break;
            }
        }
    }
    if whole > 0 {
        let data = inbuf.split_to(whole).freeze();
        if engine
            .send(ToEngine::Packets {
                session,
                data,
                over_rate: 0,
                received_at: Instant::now(),
            })
            .await
            .is_err()
        {
            return Err(CloseReason::ServerShutdown);
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Tells the engine the device side ended, and counts why.
async fn report(
    engine: &tokio::sync::mpsc::Sender<ToEngine>,
    session: tenantmq_common::link::SessionKey,
    reason: CloseReason,
    stats: &GatewayStats,
) {
    match reason {
        CloseReason::KeepAliveTimeout => GatewayStats::bump(&stats.keepalive_timeouts),
        CloseReason::Protocol(_) => GatewayStats::bump(&stats.protocol_errors),
        _ => {}
    }
    tracing::debug!(?reason, "device side ended");
    let _ = engine.send(ToEngine::Closed { session, reason }).await;
}

/// Writes `first` and whatever else is ready as one write.
async fn write_chunks<S>(
    stream: &mut S,
    first: Bytes,
    rx: &mut DeviceRx,
    wbuf: &mut BytesMut,
) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    match rx.try_recv() {
        None => stream.write_all(&first).await?,
        Some(second) => {
            wbuf.clear();
            wbuf.extend_from_slice(&first);
            wbuf.extend_from_slice(&second);
            while wbuf.len() < MAX_WRITE_GATHER {
                match rx.try_recv() {
                    Some(c) => wbuf.extend_from_slice(&c),
                    None => break,
                }
            }
            stream.write_all(wbuf).await?;
            if wbuf.capacity() > 4 * MAX_WRITE_GATHER {
                *wbuf = BytesMut::new();
            }
        }
    }
    stream.flush().await
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
