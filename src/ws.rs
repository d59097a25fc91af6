//! MQTT over WebSocket (`ws://`, `wss://`): the upgrade handshake and a byte stream over
//! binary frames, on top of a TCP or TLS [`Stream`].
//!
//! - The upgrade asks for the `mqtt` subprotocol and fails when the server chooses none
//!   (MQTT 3.1.1 and 5.0, section 6).
//! - Every `write` sends the bytes given as one binary frame (MQTT-6.0.0-1). A `write`
//!   that cannot finish the frame reports `WouldBlock` and must be repeated with the same
//!   bytes at the front, as with TLS: the frame is kept and completed by the retry.
//! - `read` returns the payload of binary frames as one byte stream (a packet may span
//!   frames, a frame may hold several packets), answers pings, ends (`Ok(0)`) at a close
//!   frame, and fails on text frames (MQTT-6.0.0-1). It returns `WouldBlock` only when
//!   neither the socket nor the WebSocket layer holds anything more.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{header, HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::client::options::{Scheme, ServerUri};
use crate::error::{Error, Result, Step};
use crate::transport::Stream;

/// Largest frame payload written at once; longer writes take several calls.
const MAX_OUT_FRAME: usize = 256 * 1024;

/// Largest incoming message or frame accepted: a maximal MQTT packet, with room for
/// others sharing its frame.
const MAX_IN: usize = 2 * (crate::proto::codec::MAX_REMAINING_LENGTH + 5);

/// The transport under the WebSocket layer. Until the connection is fully set up (the
/// upgrade and then CONNACK) every socket call is bounded by the connect deadline, so a
/// server that trickles bytes cannot stretch it.
pub(crate) struct Guarded {
    inner: Stream,
    deadline: Cell<Option<Instant>>,
}

impl Guarded {
    fn guard(&self, write: bool) -> io::Result<()> {
        let Some(deadline) = self.deadline.get() else {
            return Ok(());
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect deadline reached",
            ));
        }
        let left = Some((deadline - now).max(Duration::from_millis(1)));
        if write {
            self.inner.tcp().set_write_timeout(left)
        } else {
            self.inner.tcp().set_read_timeout(left)
        }
    }
}

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.guard(false)?;
        self.inner.read(buf)
    }
}

impl Write for Guarded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.guard(true)?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A WebSocket connection carrying MQTT (see the [module docs](self)).
pub struct WsStream {
    ws: WebSocket<Guarded>,
    /// Unread rest of the last binary message.
    rx: Bytes,
    /// Bytes of a frame queued by a `write` that reported `WouldBlock`.
    pending: usize,
    /// A close frame arrived or the peer went away.
    closed: bool,
}

impl fmt::Debug for WsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsStream")
            .field("inner", &self.ws.get_ref().inner)
            .field("buffered", &self.rx.len())
            .field("pending", &self.pending)
            .field("closed", &self.closed)
            .finish()
    }
}

impl WsStream {
    /// The TCP or TLS stream under the WebSocket layer.
    pub fn get_ref(&self) -> &Stream {
        &self.ws.get_ref().inner
    }

    /// Ends the connect phase: from now on socket calls are no longer bounded by the
    /// connect deadline (the caller's own timeouts or non-blocking mode apply).
    pub(crate) fn connected(&self) {
        self.ws.get_ref().deadline.set(None);
    }

    fn flush_ws(&mut self) -> io::Result<()> {
        self.ws.flush().map_err(|e| self.io_error(e))
    }

    fn io_error(&mut self, e: tungstenite::Error) -> io::Error {
        use tungstenite::error::ProtocolError;
        use tungstenite::Error as E;
        match e {
            E::Io(e) => e,
            E::ConnectionClosed
            | E::AlreadyClosed
            | E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                self.closed = true;
                io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket connection closed")
            }
            E::Protocol(ProtocolError::SendAfterClosing) => {
                io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket connection closed")
            }
            other => io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {other}")),
        }
    }
}

impl Read for WsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.rx.is_empty() {
                let n = buf.len().min(self.rx.len());
                buf[..n].copy_from_slice(&self.rx[..n]);
                self.rx.advance(n);
                return Ok(n);
            }
            if self.closed {
                return Ok(0);
            }
            match self.ws.read() {
                Ok(Message::Binary(b)) => self.rx = b,
                // Pings are answered by tungstenite (queued now, sent on the next call).
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Text(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WebSocket text frame: MQTT travels in binary frames only (MQTT-6.0.0-1)",
                    ))
                }
                Ok(Message::Close(frame)) => {
                    log::debug!("WebSocket close frame from the server: {frame:?}");
                    self.closed = true;
                    // Send the close reply if the socket takes it now; no waiting.
                    let _ = self.ws.flush();
                    return Ok(0);
                }
                Err(tungstenite::Error::Io(e)) => return Err(e),
                Err(e) => {
                    let e = self.io_error(e);
                    if self.closed {
                        return Ok(0);
                    }
                    return Err(e);
                }
            }
        }
    }
}

impl Write for WsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending > 0 {
            // A retry: the frame holding the first `pending` bytes is already queued.
            self.flush_ws()?;
            let n = std::mem::take(&mut self.pending);
            return Ok(n.min(buf.len()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(MAX_OUT_FRAME);
        match self
            .ws
            .write(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
        {
            Ok(()) => {}
            // The frame is queued; the flush below goes on with it.
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(self.io_error(e)),
        }
        match self.flush_ws() {
            Ok(()) => Ok(n),
            Err(e) => {
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    self.pending = n;
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_ws()
    }
}

fn ws_error(url: &str, status: Option<u16>, message: impl Into<String>) -> Error {
    Error::WebSocket {
        url: url.to_string(),
        status,
        message: message.into(),
    }
}

fn handshake_error(url: &str, e: tungstenite::Error, total: Duration) -> Error {
    use tungstenite::error::{ProtocolError, SubProtocolError};
    use tungstenite::Error as E;
    match e {
        E::Io(io)
            if matches!(
                io.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Error::timeout(Step::Handshake, total)
        }
        E::Io(io) => ws_error(
            url,
            None,
            format!("connection failed during the upgrade: {io}"),
        ),
        E::Http(resp) => {
            let status = resp.status();
            let mut message = format!(
                "the server answered {} {} instead of 101 Switching Protocols",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            if let Some(body) = resp.body().as_deref().filter(|b| !b.is_empty()) {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                message.push_str(&format!(" ({})", text.trim()));
            }
            ws_error(url, Some(status.as_u16()), message)
        }
        E::Protocol(ProtocolError::SecWebSocketSubProtocolError(sp)) => {
            let m = match sp {
                SubProtocolError::NoSubProtocol => {
                    "the server chose no WebSocket subprotocol (Sec-WebSocket-Protocol); \
                     MQTT needs \"mqtt\""
                }
                SubProtocolError::InvalidSubProtocol => {
                    "the server chose a WebSocket subprotocol that was not offered"
                }
                _ => "the server chose a WebSocket subprotocol although none was offered",
            };
            ws_error(url, None, m)
        }
        E::Url(u) => Error::InvalidArgument(format!("WebSocket URL {url:?}: {u}")),
        E::HttpFormat(h) => Error::InvalidArgument(format!("WebSocket request {url:?}: {h}")),
        other => ws_error(url, None, other.to_string()),
    }
}

/// Upgrades `inner` to a WebSocket connection for `uri` (its path; subprotocol `mqtt`;
/// `headers` added to the request), within `deadline`.
pub(crate) fn handshake(
    inner: Stream,
    uri: &ServerUri,
    headers: &[(String, String)],
    deadline: Instant,
    total: Duration,
) -> Result<WsStream> {
    let scheme = if uri.scheme == Scheme::Wss {
        "wss"
    } else {
        "ws"
    };
    let path = if uri.path.is_empty() { "/" } else { &uri.path };
    let url = format!(
        "{scheme}://{}{path}",
        crate::proxy::authority(&uri.host, uri.port)
    );
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| handshake_error(&url, e, total))?;
    let h = req.headers_mut();
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("mqtt"),
    );
    let mut replaced: Vec<HeaderName> = Vec::new();
    for (k, v) in headers {
        let bad = |why: String| Error::InvalidArgument(format!("HTTP header {k:?}: {why}"));
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let value = HeaderValue::from_bytes(v.as_bytes()).map_err(|e| bad(e.to_string()))?;
        if name == header::HOST || name == header::SEC_WEBSOCKET_PROTOCOL {
            if !replaced.contains(&name) {
                replaced.push(name.clone());
                h.insert(name, value);
                continue;
            }
            if name == header::HOST {
                return Err(bad("given twice".into()));
            }
        }
        h.append(name, value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_IN))
        .max_frame_size(Some(MAX_IN));
    let guarded = Guarded {
        inner,
        deadline: Cell::new(Some(deadline)),
    };
    let mut attempt = tungstenite::client::client_with_config(req, guarded, Some(config));
    loop {
        match attempt {
            Ok((ws, resp)) => {
                log::debug!(
                    "WebSocket upgrade to {url} done (subprotocol {:?})",
                    resp.headers().get(header::SEC_WEBSOCKET_PROTOCOL)
                );
                return Ok(WsStream {
                    ws,
                    rx: Bytes::new(),
                    pending: 0,
                    closed: false,
                });
            }
            Err(HandshakeError::Interrupted(mid)) => {
                // A read or write timed out (blocking socket with a timeout).
                if Instant::now() >= deadline {
                    return Err(Error::timeout(Step::Handshake, total));
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(handshake_error(&url, e, total)),
        }
    }
}
