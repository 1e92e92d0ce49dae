//! Accepting connections: one TCP accept loop per listener, with a connection cap and the
//! shutdown signal, and the steps every connection goes through before its first MQTT byte.
//!
//! Per connection, in its own task, all under one deadline of
//! [`crate::GatewayConfig::connect_timeout`] from accept (which also covers the CONNECT):
//! 1. the PROXY protocol v2 header, when the listener has it enabled ([`crate::proxy`]) — its
//!    source address becomes the connection's peer;
//! 2. the TLS handshake on `mqtts` and `wss` ([`crate::tls`]) — SNI and the client
//!    certificate's registration come out of it;
//! 3. the WebSocket upgrade on `wss` and the dev `ws` listener ([`crate::ws`]);
//! 4. [`crate::connection::serve`].
//!
//! A connection that fails a step (junk instead of a header or ClientHello, a stalled
//! handshake, a refused upgrade) is closed with a log line and a [`GatewayStats`] counter; it
//! is its own task, so no other connection notices.
//!
//! **Memory per connection.** A task's allocation is the size of its future, and an async
//! function's future is as large as its largest state — every step above, for every transport
//! the listener could serve. The steps therefore run in a boxed future of their own that ends
//! before serving begins, serving is boxed, and [`crate::connection::serve`] boxes its CONNECT
//! phase the same way, so what an established, idle connection keeps is the pump's state for
//! its own transport; a TLS or WebSocket stream is boxed as well, so the futures it passes
//! through hold a pointer rather than copies of it. Measured with `tenantmq-bench conns`
//! (release build): an idle plain connection costs the broker 3.9 KB, an idle TLS one 8.5 KB
//! (TLS without idle buffers: [`crate::tls_stream`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tenantmq_common::shutdown::Shutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};

use crate::connection::{ConnInfo, ConnectionContext, serve};
use crate::stats::GatewayStats;
use crate::tls::{AppProtocol, Handshake, HandshakeError, TlsContext};
use crate::{proxy, ws};

/// A gateway: what its connections share.
pub type Gateway = ConnectionContext;

/// Pause after an accept error (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`, 4096 on
/// current kernels). The standard library's and Tokio's 128 overflows when a fleet reconnects
/// at once: the kernel then drops SYNs, and devices wait a second or more for the
/// retransmission.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a device listener on `addr` with a [`LISTEN_BACKLOG`] queue (port 0 picks a free
/// port).
///
/// # Errors
/// The socket could not be created, bound or put to listening.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind`: a restarted gateway can rebind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// What a listener speaks.
#[derive(Clone, Debug)]
pub enum Transport {
    /// MQTT over plain TCP (development only).
    Tcp,
    /// MQTT over plain WebSocket (development only).
    Ws,
    /// MQTT over TLS (`mqtts`, port 8883).
    Mqtts(Arc<TlsContext>),
    /// MQTT over WebSocket over TLS (`wss`, port 8084, path `/mqtt`).
    Wss(Arc<TlsContext>),
}

/// Per-listener options.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListenerOptions {
    /// Every connection starts with a PROXY protocol v2 header (off by default). Enable it
    /// only behind a load balancer that sends one: the header is trusted.
    pub proxy_protocol: bool,
}

/// Accepts plain-TCP MQTT connections on `listener` until `shutdown` fires (development
/// only: `tenantmq standalone --dev-plain`).
pub async fn run_listener(listener: TcpListener, gateway: Arc<Gateway>, shutdown: Shutdown) {
    run(
        listener,
        Transport::Tcp,
        ListenerOptions::default(),
        gateway,
        shutdown,
    )
    .await;
}

/// Accepts MQTT-over-TLS connections on `listener` until `shutdown` fires.
pub async fn run_mqtts(
    listener: TcpListener,
    tls: Arc<TlsContext>,
    gateway: Arc<Gateway>,
    options: ListenerOptions,
    shutdown: Shutdown,
) {
    run(listener, Transport::Mqtts(tls), options, gateway, shutdown).await;
}

/// Accepts MQTT-over-WebSocket-over-TLS connections on `listener` until `shutdown` fires.
pub async fn run_wss(
    listener: TcpListener,
    tls: Arc<TlsContext>,
    gateway: Arc<Gateway>,
    options: ListenerOptions,
    shutdown: Shutdown,
) {
    run(listener, Transport::Wss(tls), options, gateway, shutdown).await;
}

/// Accepts MQTT over plain WebSocket on `listener` until `shutdown` fires (development only).
pub async fn run_ws_plain(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    options: ListenerOptions,
    shutdown: Shutdown,
) {
    run(listener, Transport::Ws, options, gateway, shutdown).await;
}

/// The accept loop of every listener: accepts until `shutdown` fires, at most
/// [`crate::GatewayConfig::max_connections`] connections at a time (more are closed at once).
pub async fn run(
    listener: TcpListener,
    transport: Transport,
    options: ListenerOptions,
    gateway: Arc<Gateway>,
    mut shutdown: Shutdown,
) {
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
        let transport = transport.clone();
        tokio::spawn(async move {
            handle(socket, peer, transport, options, &gateway).await;
            drop(permit);
        });
    }
}

/// A connection's serving future, boxed: see [`handle`].
type Serving<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Takes one accepted socket through the steps before CONNECT, then serves it.
///
/// The steps run in a boxed future of their own ([`prepare`]) that ends before serving
/// begins, and serving is boxed too: what the connection's task keeps for its lifetime is two
/// pointers, not room for every step of every transport (an async function's future is as
/// large as its largest state; a partly moved TLS handshake result alone kept kilobytes).
async fn handle(
    socket: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    options: ListenerOptions,
    gateway: &Gateway,
) {
    let serving = Box::pin(prepare(socket, peer, transport, options, gateway)).await;
    if let Some(serving) = serving {
        serving.await;
    }
}

/// The steps before CONNECT (PROXY header, TLS handshake, WebSocket upgrade); the serving
/// future of the connection, or `None` when a step closed it. Each step is boxed as well, so
/// that this future holds one step at a time.
async fn prepare(
    mut socket: TcpStream,
    peer: SocketAddr,
    transport: Transport,
    options: ListenerOptions,
    gateway: &Gateway,
) -> Option<Serving<'_>> {
    let mut info = ConnInfo::new(Some(peer));
    let deadline = info.accepted_at + gateway.config.connect_timeout;
    if options.proxy_protocol {
        let header = Box::pin(read_proxy_header(&mut socket, peer, deadline, gateway));
        info.peer = Some(header.await?);
    }
    let serving: Serving<'_> = match transport {
        Transport::Tcp => Box::pin(serve(socket, info, gateway)),
        Transport::Ws => {
            let upgrading = Box::pin(upgrade(socket, &info, deadline, gateway));
            let ws = upgrading.await?;
            Box::pin(serve(Box::new(ws), info, gateway))
        }
        Transport::Mqtts(tls) => {
            let proto = AppProtocol::Mqtt;
            let handshaking = Box::pin(handshake(&tls, socket, proto, &info, deadline, gateway));
            let hs = handshaking.await?;
            info.sni = hs.sni;
            info.client_cert = hs.client_cert;
            Box::pin(serve(hs.stream, info, gateway))
        }
        Transport::Wss(tls) => {
            let proto = AppProtocol::WebSocket;
            let handshaking = Box::pin(handshake(&tls, socket, proto, &info, deadline, gateway));
            let hs = handshaking.await?;
            info.sni = hs.sni;
            info.client_cert = hs.client_cert;
            let upgrading = Box::pin(upgrade(hs.stream, &info, deadline, gateway));
            let ws = upgrading.await?;
            Box::pin(serve(Box::new(ws), info, gateway))
        }
    };
    Some(serving)
}

/// Reads the PROXY header; the address to use as the peer, or `None` to close.
async fn read_proxy_header(
    socket: &mut TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    gateway: &Gateway,
) -> Option<SocketAddr> {
    let stats = &gateway.stats;
    match timeout_at(deadline, proxy::read_header(socket)).await {
        Ok(Ok(header)) => Some(header.source().unwrap_or(peer)),
        Ok(Err(e)) => {
            GatewayStats::bump(&stats.proxy_header_errors);
            tracing::info!(%peer, error = %e, "closed: bad PROXY protocol header");
            None
        }
        Err(_) => {
            GatewayStats::bump(&stats.proxy_header_errors);
            tracing::info!(%peer, "closed: no PROXY protocol header within the connect timeout");
            None
        }
    }
}

/// Runs the TLS handshake; `None` (counted and logged) when it fails.
async fn handshake(
    tls: &TlsContext,
    socket: TcpStream,
    protocol: AppProtocol,
    info: &ConnInfo,
    deadline: Instant,
    gateway: &Gateway,
) -> Option<Handshake> {
    let stats = &gateway.stats;
    let peer = info.peer;
    match timeout_at(deadline, tls.accept(socket, protocol)).await {
        Ok(Ok(hs)) => Some(hs),
        Ok(Err(e)) => {
            GatewayStats::bump(&stats.tls_handshake_failures);
            match e {
                HandshakeError::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    tracing::debug!(?peer, "closed: peer left during the TLS handshake");
                }
                e => tracing::info!(?peer, error = %e, "closed: TLS handshake failed"),
            }
            None
        }
        Err(_) => {
            GatewayStats::bump(&stats.tls_handshake_timeouts);
            tracing::info!(
                ?peer,
                "closed: TLS handshake not finished within the connect timeout"
            );
            None
        }
    }
}

/// Runs the WebSocket upgrade; `None` (counted and logged) when it fails.
async fn upgrade<S>(
    stream: S,
    info: &ConnInfo,
    deadline: Instant,
    gateway: &Gateway,
) -> Option<ws::WsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let stats = &gateway.stats;
    let peer = info.peer;
    match timeout_at(deadline, ws::accept(stream, gateway.config.ws_max_message)).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            GatewayStats::bump(&stats.ws_upgrade_failures);
            tracing::info!(?peer, error = %e, "closed: WebSocket upgrade refused");
            None
        }
        Err(_) => {
            GatewayStats::bump(&stats.ws_upgrade_failures);
            tracing::info!(
                ?peer,
                "closed: WebSocket upgrade not finished within the connect timeout"
            );
            None
        }
    }
}
