//! One MQTT connection of the tool: opening it (TCP, TLS, CONNECT/CONNACK, SUBSCRIBE/SUBACK)
//! in plain `async` code, then driving it with a hand-written poll loop.
//!
//! The poll loop ([`Conn::poll_drive`]) is where the tool's efficiency comes from. In one
//! wake-up it repeats, up to [`MAX_ROUNDS`] times: read everything the socket has into a large
//! buffer and decode every whole packet in it with the codec (frames are slices of the buffer,
//! nothing is copied or allocated); let the [`Role`] append what it wants to send — a
//! publisher encodes up to [`WRITE_BATCH_BYTES`] of PUBLISH packets at once — and write the
//! buffer with one `write` call. The clock is read once per read and once per batch: that
//! reading is the receive time of every message the read brought in and the send time of
//! every message of the batch (at max rate), which costs a few microseconds of precision at
//! most and saves a clock read per message.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tenantmq_codec::{
    ByteString, Connect, ConnectProperties, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode,
    Subscribe, SubscribeFilter, SubscribeProperties, SubscriptionOptions, frame,
};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::{Sleep, timeout_at};

use crate::error::ConnError;
use crate::plan::Params;
use crate::stream::Stream;

/// Largest packet accepted from the broker: the protocol maximum (remaining length
/// 268,435,455 plus a five-byte fixed header).
const MAX_PACKET: u32 = 268_435_460;
/// Read buffer growth step of a connection that carries messages.
pub(crate) const READ_CHUNK_ACTIVE: usize = 64 * 1024;
/// Read buffer growth step of an idle connection (`conns`): it only ever sees CONNACK and
/// PINGRESP, and tens of thousands of them must stay small.
pub(crate) const READ_CHUNK_IDLE: usize = 256;
/// A role is asked for more packets only while less than this is waiting to be written, so a
/// broker that reads slowly slows the publisher down (TCP back-pressure) instead of growing
/// the buffer.
pub(crate) const WRITE_LOW_WATER: usize = 16 * 1024;
/// How much a publisher encodes per batch: the most one `write` call carries.
pub(crate) const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Read/produce/write rounds per wake-up before yielding to the other connections of the
/// thread.
pub(crate) const MAX_ROUNDS: u32 = 4;

/// What a connection does once open: publish, subscribe, or nothing.
pub(crate) trait Role {
    /// Handles a packet from the broker (PINGRESP and DISCONNECT are handled by the driver).
    /// `now` is the time the bytes were read. Replies go to `out`.
    fn on_packet(
        &mut self,
        packet: Packet,
        now: Instant,
        out: &mut BytesMut,
        version: ProtocolVersion,
    ) -> Result<(), ConnError>;

    /// Appends the packets due now to `out`; true if it appended any. `can_write` is false
    /// while the write buffer is over [`WRITE_LOW_WATER`]: the broker is not reading fast
    /// enough, and the role must only take note that it is held back.
    fn produce(
        &mut self,
        _can_write: bool,
        _out: &mut BytesMut,
        _version: ProtocolVersion,
    ) -> Result<bool, ConnError> {
        Ok(false)
    }

    /// When [`Role::produce`] will next have something to do, if that depends only on time.
    fn next_due(&self) -> Option<Instant> {
        None
    }

    /// Called at the end of every wake-up: publish counters to the thread's totals.
    fn flush(&mut self) {}
}

/// An open MQTT connection.
pub(crate) struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    version: ProtocolVersion,
    read_chunk: usize,
    /// Half the keep alive: the longest the connection stays silent (MQTT-3.1.2-23 allows
    /// the full interval; half leaves room for a busy thread).
    ping_every: Option<Duration>,
    last_write: Instant,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
}

/// A connection just opened, with what it took.
pub(crate) struct Opened {
    /// The connection.
    pub conn: Conn,
    /// TCP connect plus TLS handshake.
    pub connect: Duration,
    /// CONNECT written to CONNACK read.
    pub connack: Duration,
    /// The broker's Receive Maximum (MQTT 5), else 65,535.
    pub receive_maximum: u16,
}

/// Who connects: the per-client strings.
pub(crate) struct Identity<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub source_ip: Option<std::net::IpAddr>,
}

/// Opens a connection: TCP (bound to the source address, if any), TLS, CONNECT, CONNACK.
///
/// # Errors
/// [`ConnError`] for any failure or the `connect_timeout` passing.
pub(crate) async fn open(
    params: &Params,
    who: &Identity<'_>,
    read_chunk: usize,
) -> Result<Opened, ConnError> {
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::from_std(t0 + params.connect_timeout);
    let socket = match params.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = who.source_ip {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let tcp = timeout_at(deadline, socket.connect(params.addr))
        .await
        .map_err(|_| ConnError::Timeout("TCP connect"))??;
    tcp.set_nodelay(true)?;
    let stream = match &params.tls {
        None => Stream::Tcp(tcp),
        Some(tls) => Stream::Tls(Box::new(
            timeout_at(deadline, tls.connector.connect(tls.name.clone(), tcp))
                .await
                .map_err(|_| ConnError::Timeout("TLS handshake"))??,
        )),
    };
    let t1 = Instant::now();

    let mut conn = Conn {
        stream,
        rbuf: BytesMut::new(),
        wbuf: BytesMut::new(),
        version: params.version,
        read_chunk,
        ping_every: (params.keepalive > 0)
            .then(|| Duration::from_secs(u64::from(params.keepalive)) / 2),
        last_write: t1,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        timer_at: None,
    };
    let mut properties = ConnectProperties::default();
    if params.version == ProtocolVersion::V5 && !params.clean {
        // Without an expiry an MQTT 5 session ends with the connection (spec 3.1.2.11.2),
        // which is not what --clean false asks for.
        properties.session_expiry_interval = Some(SESSION_EXPIRY_SECS);
    }
    let connect = Connect {
        protocol: params.version,
        clean_start: params.clean,
        keep_alive: params.keepalive,
        client_id: ByteString::from(who.client_id),
        will: None,
        username: who.username.map(ByteString::from),
        password: who.password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
        properties,
    };
    Packet::Connect(Box::new(connect)).encode(params.version, &mut conn.wbuf)?;
    conn.write_all(deadline).await?;
    let receive_maximum = match conn.recv(deadline, "CONNACK").await? {
        Packet::ConnAck(ack) if ack.reason == ReasonCode::SUCCESS => {
            ack.properties.receive_maximum.unwrap_or(u16::MAX)
        }
        Packet::ConnAck(ack) => return Err(ConnError::Refused(ack.reason)),
        _ => return Err(ConnError::Unexpected("a packet before CONNACK")),
    };
    let t2 = Instant::now();
    Ok(Opened {
        conn,
        connect: t1 - t0,
        connack: t2 - t1,
        receive_maximum,
    })
}

/// Session expiry of `--clean false` under MQTT 5, in seconds.
const SESSION_EXPIRY_SECS: u32 = 300;

impl Conn {
    /// Subscribes to `filter` and waits for the SUBACK.
    ///
    /// # Errors
    /// [`ConnError::SubscribeRefused`] for a failure reason code, or any connection error.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        timeout: Duration,
    ) -> Result<(), ConnError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let subscribe = Subscribe {
            packet_id: 1,
            filters: vec![SubscribeFilter {
                filter: ByteString::from(filter),
                options: SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            }],
            properties: SubscribeProperties::default(),
        };
        Packet::Subscribe(subscribe).encode(self.version, &mut self.wbuf)?;
        self.write_all(deadline).await?;
        match self.recv(deadline, "SUBACK").await? {
            Packet::SubAck(ack) => match ack.reasons.first() {
                Some(r) if r.0 < 0x80 => Ok(()),
                Some(r) => Err(ConnError::SubscribeRefused(*r)),
                None => Err(ConnError::Unexpected("SUBACK without a reason code")),
            },
            _ => Err(ConnError::Unexpected("a packet before SUBACK")),
        }
    }

    /// Sends DISCONNECT (normal) and closes, giving up silently after `timeout`: the broker
    /// may already be gone, and the run's figures are taken by then.
    pub(crate) async fn close(mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        if Packet::Disconnect(Disconnect::default())
            .encode(self.version, &mut self.wbuf)
            .is_ok()
        {
            let _ = self.write_all(deadline).await;
        }
        let _ = timeout_at(deadline, self.stream.shutdown()).await;
    }

    async fn write_all(&mut self, deadline: tokio::time::Instant) -> Result<(), ConnError> {
        let write = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        };
        timeout_at(deadline, write)
            .await
            .map_err(|_| ConnError::Timeout("the broker to read"))??;
        self.wbuf.clear();
        self.last_write = Instant::now();
        Ok(())
    }

    /// The next packet, read outside the poll loop (connection set-up).
    async fn recv(
        &mut self,
        deadline: tokio::time::Instant,
        what: &'static str,
    ) -> Result<Packet, ConnError> {
        loop {
            if let Some(h) = frame::check(&self.rbuf, MAX_PACKET)? {
                let frame = self.rbuf.split_to(h.total_len()).freeze();
                return Ok(Packet::decode(frame, &h, self.version)?);
            }
            self.rbuf.reserve(self.read_chunk);
            let n = timeout_at(
                deadline,
                tokio::io::AsyncReadExt::read_buf(&mut self.stream, &mut self.rbuf),
            )
            .await
            .map_err(|_| ConnError::Timeout(what))??;
            if n == 0 {
                return Err(ConnError::Closed);
            }
        }
    }

    /// Drives the connection for `role`. Never returns `Ready(Ok)`: a connection runs until
    /// its owner stops polling it (the run's phase changes) or it fails.
    pub(crate) fn poll_drive<R: Role>(
        &mut self,
        cx: &mut Context<'_>,
        role: &mut R,
    ) -> Poll<Result<(), ConnError>> {
        let result = self.poll_rounds(cx, role);
        role.flush();
        result
    }

    fn poll_rounds<R: Role>(
        &mut self,
        cx: &mut Context<'_>,
        role: &mut R,
    ) -> Poll<Result<(), ConnError>> {
        let mut rounds = 0;
        loop {
            rounds += 1;
            let now = Instant::now();
            let mut busy = false;

            match self.poll_read(cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(ConnError::Closed)),
                Poll::Ready(Ok(_)) => {
                    busy = true;
                    // The receive time of everything this read brought in.
                    if let Err(e) = self.handle_packets(role, Instant::now()) {
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => {}
            }

            let can_write = self.wbuf.len() < WRITE_LOW_WATER;
            match role.produce(can_write, &mut self.wbuf, self.version) {
                Ok(produced) => busy |= produced,
                Err(e) => return Poll::Ready(Err(e)),
            }
            if let Some(every) = self.ping_every
                && self.wbuf.is_empty()
                && now >= self.last_write + every
                && let Err(e) = Packet::PingReq.encode(self.version, &mut self.wbuf)
            {
                return Poll::Ready(Err(e.into()));
            }
            match self.poll_write_out(cx, now) {
                Ok(wrote) => busy |= wrote,
                Err(e) => return Poll::Ready(Err(e)),
            }

            if busy {
                if rounds < MAX_ROUNDS {
                    continue;
                }
                // Still work to do: let the thread's other connections have their turn.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }

            // Idle: every source has registered the waker; add the timer.
            let due = match (role.next_due(), self.ping_every) {
                (Some(a), Some(every)) => Some(a.min(self.last_write + every)),
                (Some(a), None) => Some(a),
                (None, Some(every)) => Some(self.last_write + every),
                (None, None) => None,
            };
            let Some(due) = due else {
                return Poll::Pending;
            };
            if self.timer_at != Some(due) {
                self.timer_at = Some(due);
                self.timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(due));
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    self.timer_at = None;
                    if rounds >= MAX_ROUNDS {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 4 {
            self.rbuf.reserve(self.read_chunk);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.rbuf)
    }

    /// Decodes and dispatches every whole packet in the read buffer.
    fn handle_packets<R: Role>(&mut self, role: &mut R, now: Instant) -> Result<(), ConnError> {
        while let Some(h) = frame::check(&self.rbuf, MAX_PACKET)? {
            let frame = self.rbuf.split_to(h.total_len()).freeze();
            match Packet::decode(frame, &h, self.version)? {
                Packet::PingResp => {}
                Packet::Disconnect(d) => return Err(ConnError::Disconnected(d.reason)),
                p => role.on_packet(p, now, &mut self.wbuf, self.version)?,
            }
        }
        Ok(())
    }

    /// Writes as much of the write buffer as the socket takes; true if it wrote anything.
    fn poll_write_out(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<bool, ConnError> {
        let mut wrote = false;
        while !self.wbuf.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.wbuf) {
                Poll::Ready(Ok(0)) => return Err(ConnError::Closed),
                Poll::Ready(Ok(n)) => {
                    self.wbuf.advance(n);
                    wrote = true;
                    self.last_write = now;
                }
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => break,
            }
        }
        if wrote || matches!(self.stream, Stream::Tls(_)) {
            // TLS keeps encrypted bytes the socket did not take; flushing pushes them (and
            // registers the waker if the socket is full). A no-op for plain TCP.
            if let Poll::Ready(Err(e)) = Pin::new(&mut self.stream).poll_flush(cx) {
                return Err(e.into());
            }
        }
        Ok(wrote)
    }
}
