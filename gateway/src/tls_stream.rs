//! The server side of a TLS connection on rustls's *unbuffered* API, so that an idle
//! connection holds no buffer.
//!
//! rustls's buffered `ServerConnection` (what tokio-rustls drives) keeps a 4 KiB receive
//! buffer for every connection for its whole life: with many idle devices that was a quarter
//! of what a connection cost. Here the stream owns its buffers and lets them go whenever the
//! connection falls idle:
//!
//! * received TLS bytes (`incoming`) are read only once the socket is readable; the buffer is
//!   released when it holds no partial record and the socket has nothing more;
//! * decrypted bytes go straight into the reader's buffer, and only the rest of a record
//!   larger than that buffer is kept (`plaintext`) until read;
//! * written data is encrypted into a per-thread scratch buffer and written to the socket at
//!   once; only what the socket did not take is copied into `outgoing`, and released once
//!   sent. A write is accepted only when nothing older is still waiting: that is the
//!   stream's backpressure.
//!
//! What an idle connection keeps is rustls's connection state (keys and protocol state),
//! about 2.5 KB.
//!
//! The handshake reads the ClientHello with rustls's [`Acceptor`] first, so that the caller
//! can choose the configuration from it (ALPN, see [`crate::tls`]); the bytes stay in
//! `incoming` and the connection proper reads them again.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::server::{Acceptor, ClientHello, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes asked of the socket per read, at least.
const READ_SIZE: usize = 8 * 1024;
/// Length of a TLS record header.
const HEADER_LEN: usize = 5;
/// The largest record a peer may send: 2^14 bytes of plaintext plus 2,048 of expansion
/// (RFC 8446 section 5.2; RFC 5246 section 6.2.3).
const MAX_RECORD: usize = HEADER_LEN + (1 << 14) + 2048;
/// Plaintext taken per write at most; the caller writes the rest next.
const MAX_WRITE: usize = 64 * 1024;
/// Room for one record's header, nonce, content type and tag, rounded up.
const RECORD_OVERHEAD: usize = 64;
/// First guess at the room a handshake record needs (a certificate chain's is the largest).
const HANDSHAKE_ROOM: usize = 4096;

thread_local! {
    /// Per-thread scratch for writes: the plaintext of a vectored write gathered, and the
    /// records it encrypts to. Used only within one synchronous call.
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A server TLS stream over TCP; see the module documentation.
pub struct TlsStream {
    io: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received bytes not yet processed: at most a partial record between calls.
    incoming: Vec<u8>,
    /// Decrypted bytes not yet read; `plaintext_read` of them have been.
    plaintext: Vec<u8>,
    plaintext_read: usize,
    /// Encrypted bytes the socket has not taken yet; `outgoing_sent` of them it has.
    outgoing: Vec<u8>,
    outgoing_sent: usize,
    /// The peer sent close_notify or closed the socket: reads return the end of the stream.
    read_closed: bool,
    close_notify_sent: bool,
    /// A TLS error ended the connection: nothing more is read, written or decrypted (rustls
    /// leaves some errors, such as a record that fails to decrypt, to the caller to act on).
    failed: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("io", &self.io)
            .field("incoming", &self.incoming.len())
            .field("plaintext", &(self.plaintext.len() - self.plaintext_read))
            .field("outgoing", &(self.outgoing.len() - self.outgoing_sent))
            .finish_non_exhaustive()
    }
}

/// What [`TlsStream::drive`] does once rustls is ready for application data.
enum Intent<'a> {
    /// Encrypt the plaintext into the buffer (kept at its length, see [`encrypt_into`]).
    Encrypt(&'a [u8], &'a mut Vec<u8>),
    /// Append an encrypted close_notify alert to `outgoing`.
    CloseNotify,
}

/// Where [`TlsStream::drive`] stopped.
enum Driven {
    /// Everything received is processed and the connection can send application data;
    /// the bytes the intent wrote.
    Ready(usize),
    /// The handshake needs more bytes from the peer.
    Blocked,
    /// Both sides sent close_notify.
    Closed,
}

/// A TLS protocol error as the I/O error the stream reports.
fn tls_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// How many more bytes complete the record `incoming` starts with (a whole read's worth when
/// not even its header is there).
fn record_remaining(incoming: &[u8]) -> usize {
    match incoming.get(3..HEADER_LEN) {
        Some(len) => {
            let total = HEADER_LEN + usize::from(u16::from_be_bytes([len[0], len[1]]));
            total.min(MAX_RECORD).saturating_sub(incoming.len())
        }
        None => READ_SIZE,
    }
}

/// A rustls error that may be a request for a larger output buffer.
trait NeedsRoom: std::fmt::Display {
    /// The size the buffer must have, when that is what went wrong.
    fn needs(&self) -> Option<usize>;
}

impl NeedsRoom for EncryptError {
    fn needs(&self) -> Option<usize> {
        match self {
            Self::InsufficientSize(e) => Some(e.required_size),
            _ => None,
        }
    }
}

impl NeedsRoom for EncodeError {
    fn needs(&self) -> Option<usize> {
        match self {
            Self::InsufficientSize(e) => Some(e.required_size),
            _ => None,
        }
    }
}

/// Encrypts with `write` into `out`, growing it to what rustls asks for. `out` is scratch
/// kept at its length between calls (so it is zeroed once, not per write); the bytes
/// written are `out[..n]`.
fn encrypt_into(
    out: &mut Vec<u8>,
    estimate: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<usize> {
    if out.len() < estimate {
        out.resize(estimate, 0);
    }
    loop {
        match write(out) {
            Ok(n) => return Ok(n),
            Err(e) => match e.needs() {
                Some(size) if size > out.len() => out.resize(size, 0),
                _ => return Err(tls_error(e.to_string())),
            },
        }
    }
}

/// Appends what `write` produces (encrypted or encoded records) to `out`, starting with
/// `room` bytes for it and growing to what rustls asks for.
fn append<E: NeedsRoom>(
    out: &mut Vec<u8>,
    mut room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> io::Result<()> {
    let start = out.len();
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match e.needs() {
                Some(size) if size > room => room = size,
                _ => {
                    out.truncate(start);
                    return Err(tls_error(e.to_string()));
                }
            },
        }
    }
}

/// Hands a decrypted record to the reader: into its buffer while there is room and nothing
/// older waits, the rest into `plaintext`.
fn deliver(payload: &[u8], read: Option<&mut ReadBuf<'_>>, plaintext: &mut Vec<u8>) {
    let mut rest = payload;
    if plaintext.is_empty()
        && let Some(buf) = read
    {
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        rest = &rest[n..];
    }
    plaintext.extend_from_slice(rest);
}

impl TlsStream {
    /// Runs the server side of a handshake on `io`; `choose` picks the configuration from
    /// the ClientHello. Returns the stream and the SNI name the client asked for. The
    /// caller bounds it in time.
    ///
    /// # Errors
    /// The peer left, or sent something that is not an acceptable handshake (rustls's
    /// alert was sent, as far as the socket took it at once).
    pub async fn accept(
        io: TcpStream,
        choose: impl FnOnce(&ClientHello<'_>) -> Arc<ServerConfig>,
    ) -> io::Result<(Box<Self>, Option<String>)> {
        let mut incoming = Vec::new();
        let mut acceptor = Acceptor::default();
        let mut fed = 0;
        let (config, sni) = loop {
            incoming.reserve(READ_SIZE);
            io.readable().await?;
            match io.try_read_buf(&mut incoming) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
            let mut fresh = &incoming[fed..];
            while !fresh.is_empty() {
                if acceptor.read_tls(&mut fresh)? == 0 {
                    return Err(tls_error("the ClientHello was not taken"));
                }
            }
            fed = incoming.len();
            match acceptor.accept() {
                Ok(None) => {}
                Ok(Some(accepted)) => {
                    let hello = accepted.client_hello();
                    let sni = hello.server_name().map(str::to_owned);
                    break (choose(&hello), sni);
                }
                Err((e, mut alert)) => {
                    let mut out = Vec::new();
                    if alert.write_all(&mut out).is_ok() {
                        let _ = io.try_write(&out);
                    }
                    return Err(tls_error(e));
                }
            }
        };
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut stream = Box::new(Self {
            io,
            conn,
            incoming,
            plaintext: Vec::new(),
            plaintext_read: 0,
            outgoing: Vec::new(),
            outgoing_sent: 0,
            read_closed: false,
            close_notify_sent: false,
            failed: false,
        });
        loop {
            match stream.drive(None, None) {
                Ok(Driven::Ready(_)) if !stream.conn.is_handshaking() => break,
                Ok(Driven::Ready(_) | Driven::Blocked) => {}
                Ok(Driven::Closed) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Err(e) => {
                    let _ = stream
                        .io
                        .try_write(&stream.outgoing[stream.outgoing_sent..]);
                    return Err(e);
                }
            }
            poll_fn(|cx| stream.poll_flush_outgoing(cx)).await?;
            if poll_fn(|cx| stream.poll_fill(cx)).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        poll_fn(|cx| stream.poll_flush_outgoing(cx)).await?;
        stream.release_idle();
        Ok((stream, sni))
    }

    /// The certificate chain the client presented, leaf first.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// Processes the records in `incoming` until rustls needs more bytes or is ready for
    /// application data, then carries out `intent`. Decrypted records go to `read` as far
    /// as it has room, the rest to `plaintext`; handshake records and alerts to `outgoing`.
    /// An error is final: the alert rustls owes the peer is put in `outgoing`, and every
    /// later call fails.
    fn drive(
        &mut self,
        read: Option<&mut ReadBuf<'_>>,
        intent: Option<Intent<'_>>,
    ) -> io::Result<Driven> {
        if self.failed {
            return Err(self.failure());
        }
        let driven = self.process(read, intent);
        if driven.is_err() {
            self.failed = true;
            self.queue_alert();
        }
        driven
    }

    /// What every call reports once the connection failed.
    fn failure(&self) -> io::Error {
        tls_error("the TLS connection failed")
    }

    /// [`Self::drive`] without the bookkeeping of failure.
    fn process(
        &mut self,
        mut read: Option<&mut ReadBuf<'_>>,
        mut intent: Option<Intent<'_>>,
    ) -> io::Result<Driven> {
        let Self {
            conn,
            incoming,
            plaintext,
            outgoing,
            read_closed,
            ..
        } = self;
        loop {
            let status = conn.process_tls_records(incoming);
            let mut discard = status.discard;
            let state = match status.state {
                Ok(state) => state,
                Err(e) => {
                    // rustls's positions assume the discard was made, error or not.
                    incoming.drain(..discard.min(incoming.len()));
                    return Err(tls_error(e));
                }
            };
            let outcome = match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        deliver(record.payload, read.as_deref_mut(), plaintext);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append(outgoing, HANDSHAKE_ROOM, |buf| encode.encode(buf))?;
                    None
                }
                // The encoded records are in `outgoing`, which is sent before anything
                // written later: as good as transmitted.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::PeerClosed => {
                    *read_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    *read_closed = true;
                    match intent {
                        Some(Intent::Encrypt(..)) => return Err(io::ErrorKind::BrokenPipe.into()),
                        _ => Some(Driven::Closed),
                    }
                }
                ConnectionState::BlockedHandshake => Some(Driven::Blocked),
                ConnectionState::WriteTraffic(mut traffic) => {
                    let written = match intent.take() {
                        None => 0,
                        Some(Intent::Encrypt(data, out)) => {
                            let records = data.len() / (1 << 14) + 1;
                            let estimate = data.len() + records * RECORD_OVERHEAD;
                            encrypt_into(out, estimate, |buf| traffic.encrypt(data, buf))?
                        }
                        Some(Intent::CloseNotify) => {
                            append(outgoing, 2 * RECORD_OVERHEAD, |buf| {
                                traffic.queue_close_notify(buf)
                            })?;
                            0
                        }
                    };
                    Some(Driven::Ready(written))
                }
                ConnectionState::ReadEarlyData(_) => {
                    return Err(tls_error("early data is not accepted"));
                }
                _ => return Err(tls_error("unexpected TLS connection state")),
            };
            if discard > 0 {
                incoming.drain(..discard.min(incoming.len()));
            }
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
    }

    /// After a TLS error: encodes the alert rustls queued for the peer into `outgoing`, then
    /// drops what was received. rustls hands out what it queued before it processes received
    /// bytes again; calling it once more after that would process them (and fail) again, so
    /// it is not.
    fn queue_alert(&mut self) {
        for _ in 0..4 {
            let status = self.conn.process_tls_records(&mut self.incoming);
            match status.state {
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    while traffic.next_record().is_some() {}
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    let _ = append(&mut self.outgoing, HANDSHAKE_ROOM, |buf| encode.encode(buf));
                    break;
                }
                _ => break,
            }
        }
        self.incoming = Vec::new();
    }

    /// Reads what the socket has into `incoming`; `Ok(0)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            match self.io.poll_read_ready(cx) {
                Poll::Pending => {
                    self.release_idle();
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            self.incoming
                .reserve(record_remaining(&self.incoming).max(READ_SIZE));
            match self.io.try_read_buf(&mut self.incoming) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Sends `outgoing` until the socket has taken all of it, then releases it.
    fn poll_flush_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.outgoing_sent < self.outgoing.len() {
            let rest = &self.outgoing[self.outgoing_sent..];
            match ready!(Pin::new(&mut self.io).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.outgoing_sent += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if self.outgoing.capacity() > 0 {
            self.outgoing = Vec::new();
            self.outgoing_sent = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes `records` to the socket as far as it takes them now; keeps the rest in
    /// `outgoing` (sent by the next flush).
    fn send(&mut self, cx: &mut Context<'_>, records: &[u8]) -> io::Result<()> {
        let mut sent = 0;
        while sent < records.len() {
            match Pin::new(&mut self.io).poll_write(cx, &records[sent..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => sent += n,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        self.outgoing.extend_from_slice(&records[sent..]);
        Ok(())
    }

    /// Encrypts `data` and sends it (see [`Self::send`]).
    fn write_records(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let Driven::Ready(n) = self.drive(None, Some(Intent::Encrypt(data, &mut *out)))? else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        self.send(cx, &out[..n])
    }

    /// Lets go of the buffers that hold nothing.
    fn release_idle(&mut self) {
        if self.incoming.is_empty() && self.incoming.capacity() > 0 {
            self.incoming = Vec::new();
        }
        if self.plaintext.is_empty() && self.plaintext.capacity() > 0 {
            self.plaintext = Vec::new();
        }
    }

    /// The socket ended: the stream's end, or an error when it cut a record short.
    fn end_of_socket(&mut self) -> io::Result<()> {
        self.read_closed = true;
        if self.incoming.is_empty() {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }

    /// Copies waiting plaintext into `buf`; releases it once all read.
    fn take_plaintext(&mut self, buf: &mut ReadBuf<'_>) {
        let waiting = &self.plaintext[self.plaintext_read..];
        let n = waiting.len().min(buf.remaining());
        buf.put_slice(&waiting[..n]);
        self.plaintext_read += n;
        if self.plaintext_read == self.plaintext.len() {
            self.plaintext = Vec::new();
            self.plaintext_read = 0;
        }
    }
}

impl AsyncRead for TlsStream {
    /// With an empty `buf`, returns once there is something to read (plaintext waiting or a
    /// whole record received) or the stream ended, and consumes nothing: a caller can wait
    /// for data without a buffer, and while it waits the stream holds none either.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Err(this.failure()));
        }
        if !this.plaintext.is_empty() {
            this.take_plaintext(buf);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() == 0 {
            // Waiting for data without a buffer: the bytes are read into `incoming` (which a
            // read that finds the socket empty releases again) until a whole record is
            // there, and left for the read that follows to decrypt into its own buffer.
            loop {
                if this.read_closed || record_remaining(&this.incoming) == 0 {
                    return Poll::Ready(Ok(()));
                }
                match ready!(this.poll_fill(cx)) {
                    Ok(0) => return Poll::Ready(this.end_of_socket()),
                    Ok(_) => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
        loop {
            if !this.incoming.is_empty() {
                let before = buf.filled().len();
                if let Err(e) = this.drive(Some(buf), None) {
                    let _ = this.poll_flush_outgoing(cx);
                    return Poll::Ready(Err(e));
                }
                // An answer rustls owes the peer (a key update) goes out now if it can.
                if this.outgoing.len() > this.outgoing_sent {
                    let _ = this.poll_flush_outgoing(cx);
                }
                if buf.filled().len() > before || !this.plaintext.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(this.end_of_socket()),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Err(this.failure()));
        }
        ready!(this.poll_flush_outgoing(cx))?;
        let result = SCRATCH.with_borrow_mut(|(plain, cipher)| {
            let mut with_data = bufs.iter().filter(|b| !b.is_empty());
            let data: &[u8] = match (with_data.next(), with_data.next()) {
                (None, _) => return Ok(0),
                // One slice with data: encrypted from where it is.
                (Some(only), None) => &only[..only.len().min(MAX_WRITE)],
                (Some(_), Some(_)) => {
                    plain.clear();
                    for b in bufs {
                        let room = MAX_WRITE - plain.len();
                        plain.extend_from_slice(&b[..b.len().min(room)]);
                        if plain.len() == MAX_WRITE {
                            break;
                        }
                    }
                    plain
                }
            };
            this.write_records(cx, data, cipher)?;
            Ok(data.len())
        });
        Poll::Ready(result)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_flush_outgoing(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    /// Sends close_notify (once), then shuts the socket down for writing.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_sent && !this.failed {
            this.close_notify_sent = true;
            // A connection that already failed has no alert to send; the socket still closes.
            let _ = this.drive(None, Some(Intent::CloseNotify));
        }
        ready!(this.poll_flush_outgoing(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use rustls::{ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::client::TlsStream as ClientStream;

    use super::*;
    use crate::tls::{AppProtocol, TlsContext, TlsSettings};

    /// A server context on freshly generated certificates, and a client configuration
    /// trusting them for `versions`.
    fn contexts(
        versions: &[&'static SupportedProtocolVersion],
    ) -> (Arc<TlsContext>, Arc<ClientConfig>) {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("tls-stream-{}", uuid::Uuid::new_v4()));
        let certs = crate::certs::ensure_dev_certificates(&dir, "example.test").expect("certs");
        let server = TlsContext::new(TlsSettings::new(&certs.server_cert, &certs.server_key))
            .expect("server context");
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&certs.ca_cert).expect("ca.pem") {
            roots.add(cert.expect("ca cert")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"mqtt".to_vec()];
        let _ = std::fs::remove_dir_all(&dir);
        (server, Arc::new(client))
    }

    /// A handshaken pair over loopback: our server stream and a tokio-rustls client, whose
    /// transport is `wrap`ped (to trickle its bytes, say).
    async fn pair_with<W, F>(
        versions: &[&'static SupportedProtocolVersion],
        wrap: F,
    ) -> (Box<TlsStream>, ClientStream<W>)
    where
        W: AsyncRead + AsyncWrite + Unpin,
        F: FnOnce(TcpStream) -> W,
    {
        let (server, client) = contexts(versions);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connecting = async move {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            let name = ServerName::try_from("localhost").expect("name");
            TlsConnector::from(client)
                .connect(name, wrap(tcp))
                .await
                .expect("client handshake")
        };
        let accepting = async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            server
                .accept(tcp, AppProtocol::Mqtt)
                .await
                .expect("server handshake")
        };
        let (client, handshake) = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(connecting, accepting)
        })
        .await
        .expect("handshake in time");
        assert_eq!(handshake.sni.as_deref(), Some("localhost"));
        (handshake.stream, client)
    }

    async fn pair(
        versions: &[&'static SupportedProtocolVersion],
    ) -> (Box<TlsStream>, ClientStream<TcpStream>) {
        pair_with(versions, |tcp| tcp).await
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Whether a read with an empty buffer is still waiting (the stream has nothing).
    async fn waits(stream: &mut TlsStream) -> bool {
        let wait = poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut ReadBuf::new(&mut [])));
        tokio::time::timeout(Duration::from_millis(50), wait)
            .await
            .is_err()
    }

    fn holds_no_buffer(stream: &TlsStream) -> bool {
        stream.incoming.capacity() == 0
            && stream.plaintext.capacity() == 0
            && stream.outgoing.capacity() == 0
    }

    #[tokio::test]
    async fn carries_data_both_ways_on_tls13_and_tls12() {
        for (versions, expected) in [
            (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
            (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        ] {
            let (mut server, mut client) = pair(versions).await;
            assert_eq!(client.get_ref().1.protocol_version(), Some(expected));

            // Client to server, read through a buffer far smaller than a record.
            let up = pattern(200_000, 1);
            let sending = {
                let up = up.clone();
                async move {
                    client.write_all(&up).await.expect("client write");
                    client.flush().await.expect("client flush");
                    client
                }
            };
            let receiving = async {
                let mut got = Vec::new();
                let mut buf = [0u8; 1000];
                while got.len() < up.len() {
                    let n = server.read(&mut buf).await.expect("server read");
                    assert!(n > 0, "early end of stream");
                    got.extend_from_slice(&buf[..n]);
                }
                got
            };
            let (mut client, got) = tokio::join!(sending, receiving);
            assert!(
                got == up,
                "{expected:?}: the server read other bytes than were sent"
            );

            // Server to client, in vectored writes of several slices.
            let down = pattern(300_000, 7);
            let sending = async {
                let mut at = 0;
                while at < down.len() {
                    let end = (at + 10_000).min(down.len());
                    let mid = at + (end - at) / 3;
                    let slices = [
                        IoSlice::new(&down[at..mid]),
                        IoSlice::new(&[]),
                        IoSlice::new(&down[mid..end]),
                    ];
                    let n = server.write_vectored(&slices).await.expect("server write");
                    assert!(n > 0);
                    at += n;
                }
                server.flush().await.expect("server flush");
            };
            let receiving = async {
                let mut got = vec![0u8; down.len()];
                client.read_exact(&mut got).await.expect("client read");
                got
            };
            let ((), got) = tokio::join!(sending, receiving);
            assert!(
                got == down,
                "{expected:?}: the client read other bytes than were sent"
            );
        }
    }

    /// A transport that sends at most 7 bytes at a time with a pause after each, so that
    /// the server receives the ClientHello and every record in pieces.
    struct Trickle {
        inner: TcpStream,
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            if let Some(pause) = self.pause.as_mut() {
                ready!(pause.as_mut().poll(cx));
                self.pause = None;
            }
            let n = buf.len().min(7);
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]));
            self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_micros(300))));
            Poll::Ready(written)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn reassembles_hello_and_records_that_arrive_in_pieces() {
        let trickle = |inner| Trickle { inner, pause: None };
        let (mut server, mut client) = pair_with(rustls::ALL_VERSIONS, trickle).await;
        let up = pattern(3_000, 3);
        let sending = async {
            for part in up.chunks(1_000) {
                client.write_all(part).await.expect("client write");
                client.flush().await.expect("client flush");
            }
        };
        let receiving = async {
            let mut got = vec![0u8; up.len()];
            server.read_exact(&mut got).await.expect("server read");
            got
        };
        let ((), got) = tokio::join!(sending, receiving);
        assert!(got == up);
    }

    #[tokio::test]
    async fn follows_a_key_update_the_client_asks_for() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13]).await;
        client.write_all(b"before").await.expect("write");
        client.flush().await.expect("flush");
        let mut buf = [0u8; 6];
        server.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"before");

        // The client updates its keys and asks the server to update its own.
        client
            .get_mut()
            .1
            .refresh_traffic_keys()
            .expect("key update");
        client.write_all(b"after!").await.expect("write");
        client.flush().await.expect("flush");
        server
            .read_exact(&mut buf)
            .await
            .expect("read after the client's key update");
        assert_eq!(&buf, b"after!");

        // The server answered with its own update; the client decrypts what follows.
        server.write_all(b"reply").await.expect("write");
        server.flush().await.expect("flush");
        let mut reply = [0u8; 5];
        client
            .read_exact(&mut reply)
            .await
            .expect("read after the server's key update");
        assert_eq!(&reply, b"reply");
    }

    #[tokio::test]
    async fn close_notify_ends_the_stream_cleanly_both_ways() {
        let (mut server, mut client) = pair(rustls::ALL_VERSIONS).await;
        client.write_all(b"last words").await.expect("write");
        client.shutdown().await.expect("client close_notify");
        let mut got = Vec::new();
        server
            .read_to_end(&mut got)
            .await
            .expect("server reads to a clean end");
        assert_eq!(got, b"last words");

        server.write_all(b"goodbye").await.expect("write");
        server.shutdown().await.expect("server close_notify");
        let mut got = Vec::new();
        client
            .read_to_end(&mut got)
            .await
            .expect("client reads to a clean end");
        assert_eq!(got, b"goodbye");
    }

    #[tokio::test]
    async fn an_idle_stream_holds_no_buffer() {
        let (mut server, mut client) = pair(rustls::ALL_VERSIONS).await;
        for round in 0..3u8 {
            let data = pattern(40_000, round);
            client.write_all(&data).await.expect("write");
            client.flush().await.expect("flush");
            // Wait for the data without a buffer, then read it in small pieces.
            poll_fn(|cx| Pin::new(&mut *server).poll_read(cx, &mut ReadBuf::new(&mut [])))
                .await
                .expect("wait");
            let mut got = vec![0u8; data.len()];
            server.read_exact(&mut got).await.expect("read");
            assert!(got == data);
            server.write_all(&data).await.expect("echo");
            server.flush().await.expect("flush");
            client.read_exact(&mut got).await.expect("client read");
            assert!(waits(&mut server).await, "nothing more was sent");
            assert!(
                holds_no_buffer(&server),
                "idle stream keeps {} / {} / {} bytes of buffer",
                server.incoming.capacity(),
                server.plaintext.capacity(),
                server.outgoing.capacity()
            );
        }
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_blocks_the_writer_with_bounded_memory() {
        let (mut server, mut client) = pair(rustls::ALL_VERSIONS).await;
        let chunk = pattern(32 * 1024, 9);
        let mut written = 0usize;
        // The client reads nothing: the socket buffers fill and the writes stop.
        let patience = Duration::from_millis(300);
        while let Ok(n) = tokio::time::timeout(patience, server.write(&chunk)).await {
            written += n.expect("write");
            assert!(written < 64 << 20, "writes never blocked");
            assert!(
                server.outgoing.len() <= MAX_WRITE + 8 * RECORD_OVERHEAD,
                "{} bytes queued in the stream",
                server.outgoing.len()
            );
        }
        let reading = async {
            let mut got = vec![0u8; written];
            client.read_exact(&mut got).await.expect("client read");
            got
        };
        let flushing = async { server.flush().await.expect("flush") };
        let (got, ()) = tokio::join!(reading, flushing);
        let expected: Vec<u8> = chunk.iter().copied().cycle().take(written).collect();
        assert!(got == expected);
    }

    #[tokio::test]
    async fn a_forged_record_fails_the_read_and_the_peer_gets_an_alert() {
        let (mut server, mut client) = pair(rustls::ALL_VERSIONS).await;
        // An application-data record of the right shape that no key encrypted.
        let mut forged = vec![0x17, 0x03, 0x03, 0x00, 0x30];
        forged.extend_from_slice(&[0xAB; 0x30]);
        client
            .get_mut()
            .0
            .write_all(&forged)
            .await
            .expect("raw write");
        let mut buf = [0u8; 64];
        let read = server.read(&mut buf).await;
        let err = read.expect_err("a forged record was accepted");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // The client learns why (bad_record_mac) rather than seeing a bare close.
        let answer = client.read(&mut buf).await;
        assert!(answer.is_err(), "the client read {answer:?}, not an alert");
        // The failure is final: nothing more is read or written.
        let again = tokio::time::timeout(Duration::from_secs(2), server.read(&mut buf)).await;
        assert!(
            matches!(again, Ok(Err(_))),
            "a read after the failure: {again:?}"
        );
        assert!(server.write(b"more").await.is_err());
    }

    #[tokio::test]
    async fn a_record_cut_short_by_the_end_of_the_socket_is_an_error() {
        let (mut server, mut client) = pair(rustls::ALL_VERSIONS).await;
        let raw = &mut client.get_mut().0;
        raw.write_all(&[0x17, 0x03, 0x03, 0x01, 0x00, 1, 2, 3])
            .await
            .expect("raw write");
        raw.shutdown().await.expect("shutdown");
        let mut buf = [0u8; 64];
        let err = server
            .read(&mut buf)
            .await
            .expect_err("a cut record read as the end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_handshake_of_junk_is_refused() {
        let (server, _) = contexts(rustls::ALL_VERSIONS);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut junk = TcpStream::connect(addr).await.expect("connect");
        junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let (tcp, _) = listener.accept().await.expect("accept");
        let refused = tokio::time::timeout(
            Duration::from_secs(5),
            server.accept(tcp, AppProtocol::Mqtt),
        )
        .await
        .expect("answered in time");
        assert!(refused.is_err(), "a non-TLS greeting was accepted");
        // Whatever the server sent (an alert, or nothing), it then closed the connection.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), junk.read_to_end(&mut rest)).await;
        assert!(rest.len() < 64);
    }
}
