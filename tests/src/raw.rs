//! A raw MQTT client over the project's codec, for tests that check exact packets: it sends
//! any [`Packet`] (or arbitrary bytes) and returns each decoded packet the server sends.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tenantmq_codec::{Packet, ProtocolVersion, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long [`RawClient::recv`] waits by default.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A raw MQTT connection.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// The protocol version packets are encoded and decoded with.
    pub version: ProtocolVersion,
}

/// What [`RawClient::recv_timeout`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A packet.
    Packet(Packet),
    /// The server closed the connection.
    Closed,
    /// Nothing within the time.
    Timeout,
}

impl RawClient {
    /// Opens a TCP connection.
    pub async fn connect(addr: SocketAddr, version: ProtocolVersion) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: BytesMut::new(), version })
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &Packet) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        packet
            .encode(self.version, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.stream.write_all(&out).await
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next packet, waiting up to `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match frame::check(&self.buf, u32::MAX) {
                Ok(Some(h)) => {
                    let frame = self.buf.split_to(h.total_len()).freeze();
                    return match Packet::decode(frame, &h, self.version) {
                        Ok(p) => Received::Packet(p),
                        Err(e) => panic!("server sent an undecodable packet: {e}"),
                    };
                }
                Ok(None) => {}
                Err(e) => panic!("server sent a bad fixed header: {e}"),
            }
            self.buf.reserve(4096);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Received::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Received::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet; panics if none arrives within [`RECV_TIMEOUT`] or the connection
    /// closes.
    pub async fn recv(&mut self) -> Packet {
        match self.recv_timeout(RECV_TIMEOUT).await {
            Received::Packet(p) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }
}
