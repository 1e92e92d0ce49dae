//! MQTT over WebSocket (MQTT 5.0 and 3.1.1, section 6; RFC 6455).
//!
//! The upgrade is accepted only on [`WS_PATH`] (else `404 Not Found`) and only when the client
//! offers the `mqtt` subprotocol, which the response echoes (`MQTT-6.0.0-3`, `MQTT-6.0.0-4`).
//! A client that offers no subprotocol, or only others (`mqttv3.1` is MQTT 3.1, which we do
//! not speak), gets `400 Bad Request`: accepting it without echoing a subprotocol would break
//! clients that check the echo, and silently speaking MQTT to a client that asked for
//! something else helps no one.
//!
//! After the upgrade, [`WsStream`] makes the WebSocket an `AsyncRead + AsyncWrite` byte
//! stream so that [`crate::connection::serve`] runs unchanged: the payloads of binary messages
//! are concatenated, so a packet may span messages and a message may hold several packets
//! (`MQTT-6.0.0-2`); each write (the connection writes one engine chunk, or a vectored batch
//! of them, at a time) is sent as one binary message. A text message is a protocol error that
//! closes the connection (`MQTT-6.0.0-1`); pings are answered by tungstenite.
//!
//! Incoming messages and frames are limited to [`crate::GatewayConfig::ws_max_message`], the
//! only bound on what tungstenite buffers before the MQTT framing sees a byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The only path the upgrade is accepted on.
pub const WS_PATH: &str = "/mqtt";

/// The WebSocket subprotocol of MQTT (`MQTT-6.0.0-3`).
pub const SUBPROTOCOL: &str = "mqtt";

/// Initial read buffer of a WebSocket connection. tungstenite's default (128 KiB) is sized for
/// throughput; most devices are idle most of the time, so memory per connection wins.
const READ_BUFFER: usize = 4096;

/// Upgrades `stream` to a WebSocket carrying MQTT (the caller bounds it in time).
///
/// # Errors
/// The tungstenite error: a refused upgrade (`Http`, with the response already sent), a
/// request that is not a WebSocket upgrade, or an I/O failure.
pub async fn accept<S>(stream: S, max_message: usize) -> Result<WsStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        // Written messages go to the socket at once: the connection flushes after each
        // write anyway.
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, check_upgrade, Some(config))
        .await?;
    Ok(WsStream {
        inner: ws,
        pending: Bytes::new(),
        eof: false,
    })
}

/// Accepts an upgrade request for [`WS_PATH`] offering [`SUBPROTOCOL`], and echoes it.
#[allow(clippy::result_large_err)] // The signature is tungstenite's callback's.
fn check_upgrade(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() != WS_PATH {
        return Err(refusal(StatusCode::NOT_FOUND, "not found"));
    }
    // The header is a comma-separated list and may be repeated (RFC 6455 section 11.3.4).
    let offered = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offered {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol \"mqtt\" is required",
        ));
    }
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

fn refusal(status: StatusCode, text: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text.to_owned()));
    *response.status_mut() = status;
    response
}

/// A WebSocket seen as the byte stream of MQTT packets inside its binary messages.
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The unread rest of the last binary message.
    pending: Bytes,
    /// The peer closed the WebSocket.
    eof: bool,
}

fn io_error(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::from(io::ErrorKind::BrokenPipe)
        }
        other => io::Error::other(other),
    }
}

impl<S> AsyncRead for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(data))) => this.pending = data,
                Some(Ok(Message::Text(_))) => {
                    // `MQTT-6.0.0-1`: any data frame but binary closes the connection.
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WebSocket text message",
                    )));
                }
                Some(Ok(Message::Close(_))) | None => this.eof = true,
                // Pings are answered by tungstenite on the next read or write.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl<S> AsyncWrite for WsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let inner = &mut self.inner;
        ready!(inner.poll_ready_unpin(cx)).map_err(io_error)?;
        inner
            .start_send_unpin(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(io_error)?;
        Poll::Ready(Ok(buf.len()))
    }

    /// Several engine chunks in one binary message: the payload is copied into the message
    /// anyway, so gathering costs nothing extra and saves frames and writes.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        let inner = &mut self.inner;
        ready!(inner.poll_ready_unpin(cx)).map_err(io_error)?;
        let mut payload = Vec::with_capacity(len);
        for b in bufs {
            payload.extend_from_slice(b);
        }
        inner
            .start_send_unpin(Message::Binary(payload.into()))
            .map_err(io_error)?;
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_flush_unpin(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sends a Close frame (RFC 6455 section 5.5.1) and flushes.
        match ready!(self.inner.poll_close_unpin(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(path: &str, protocols: Option<&str>) -> Request {
        let mut b = Request::builder().uri(path);
        if let Some(p) = protocols {
            b = b.header(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        b.body(()).expect("request")
    }

    #[test]
    fn upgrade_rules() {
        let ok = check_upgrade(&upgrade("/mqtt", Some("mqttv3.1, mqtt")), Response::new(()))
            .expect("accepted");
        assert_eq!(ok.headers()[header::SEC_WEBSOCKET_PROTOCOL], "mqtt");
        let with_query = check_upgrade(&upgrade("/mqtt?x=1", Some("mqtt")), Response::new(()));
        assert!(with_query.is_ok());
        let status = |r: Result<Response, ErrorResponse>| r.err().map(|e| e.status());
        assert_eq!(
            status(check_upgrade(
                &upgrade("/", Some("mqtt")),
                Response::new(())
            )),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            status(check_upgrade(&upgrade("/mqtt", None), Response::new(()))),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            status(check_upgrade(
                &upgrade("/mqtt", Some("mqttv3.1")),
                Response::new(())
            )),
            Some(StatusCode::BAD_REQUEST)
        );
    }
}
