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

use super::config::{Scheme, ServerUri};
use crate::error::{Error, Result, Step};
use crate::transport::Stream;

/// Largest frame payload written at once; longer writes take several calls.
const MAX_OUT_FRAME: usize = 256 * 1024;

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
///
/// `max_in` is the largest incoming WebSocket message or frame accepted (the caller's
/// largest packet, with room for others sharing its frame).
pub(crate) fn handshake(
    inner: Stream,
    uri: &ServerUri,
    headers: &[(String, String)],
    max_in: usize,
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
        crate::transport::proxy::authority(&uri.host, uri.port)
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
        .max_message_size(Some(max_in))
        .max_frame_size(Some(max_in));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::thread::JoinHandle;

    use tungstenite::handshake::server::{Request, Response};

    type Server = WebSocket<TcpStream>;

    fn uri(port: u16) -> ServerUri {
        ServerUri::parse(&format!("ws://127.0.0.1:{port}/mqtt")).unwrap()
    }

    fn secs(n: u64) -> (Instant, Duration) {
        let d = Duration::from_secs(n);
        (Instant::now() + d, d)
    }

    /// A WebSocket server thread (choosing subprotocol `mqtt`) running `f`, and a client
    /// connected to it.
    fn pair<T: Send + 'static>(
        f: impl FnOnce(Server) -> T + Send + 'static,
    ) -> (WsStream, JoinHandle<T>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            // tungstenite's callback type fixes the error type.
            #[allow(clippy::result_large_err)]
            let ws = tungstenite::accept_hdr(s, |_: &Request, mut resp: Response| {
                resp.headers_mut().insert(
                    header::SEC_WEBSOCKET_PROTOCOL,
                    HeaderValue::from_static("mqtt"),
                );
                Ok(resp)
            })
            .unwrap();
            f(ws)
        });
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (deadline, total) = secs(10);
        let ws = handshake(Stream::Tcp(tcp), &uri(port), &[], 1 << 20, deadline, total).unwrap();
        (ws, server)
    }

    fn wait_writable(fd: i32) {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: `p` is a valid pollfd for the duration of the call; nfds is 1.
        let r = unsafe { libc::poll(&mut p, 1, 10_000) };
        assert_eq!(r, 1, "socket did not become writable");
    }

    #[test]
    fn binary_frames_are_one_byte_stream_across_frame_boundaries() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expect = data.clone();
        let (mut c, server) = pair(move |mut ws| {
            // Frames of 1, 2, 3, ... bytes, then one big frame holding the rest.
            let mut pos = 0;
            let mut size = 1;
            while pos < 5000 {
                ws.send(Message::binary(data[pos..pos + size].to_vec()))
                    .unwrap();
                pos += size;
                size += 1;
            }
            ws.send(Message::binary(data[pos..].to_vec())).unwrap();
            ws
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        while got.len() < expect.len() {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "early end after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, expect);
        drop(server.join().unwrap());
    }

    #[test]
    fn nonblocking_write_keeps_the_frame_across_would_block() {
        // 8 MiB does not fit into the socket buffers: writes must block at some point.
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 253) as u8).collect();
        let total = data.len();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (mut c, server) = pair(move |mut ws| {
            go_rx.recv().unwrap();
            let mut got = Vec::with_capacity(total);
            let mut frames = 0;
            while got.len() < total {
                match ws.read().unwrap() {
                    Message::Binary(b) => {
                        assert!(b.len() <= MAX_OUT_FRAME);
                        frames += 1;
                        got.extend_from_slice(&b);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            (got, frames)
        });
        c.connected();
        c.get_ref().set_nonblocking(true).unwrap();
        let fd = c.get_ref().as_raw_fd();
        let mut pos = 0;
        let mut blocked = 0;
        let mut go = Some(go_tx);
        while pos < data.len() {
            match c.write(&data[pos..]) {
                Ok(n) => {
                    assert!(n > 0);
                    pos += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked += 1;
                    if let Some(tx) = go.take() {
                        tx.send(()).unwrap();
                    }
                    wait_writable(fd);
                }
                Err(e) => panic!("{e}"),
            }
        }
        if let Some(tx) = go.take() {
            tx.send(()).unwrap();
        }
        // Whatever is still queued goes out once the socket takes it.
        loop {
            match c.flush() {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(fd),
                Err(e) => panic!("{e}"),
            }
        }
        let (got, frames) = server.join().unwrap();
        assert!(blocked > 0, "the test never filled the socket");
        assert!(frames >= total / MAX_OUT_FRAME);
        assert!(got == data, "bytes lost or repeated across WouldBlock");
    }

    #[test]
    fn ping_is_answered_and_reading_goes_on() {
        let (mut c, server) = pair(|mut ws| {
            ws.send(Message::Ping(Bytes::from_static(b"hi"))).unwrap();
            ws.send(Message::binary(b"after".to_vec())).unwrap();
            match ws.read().unwrap() {
                Message::Pong(p) => p,
                other => panic!("unexpected {other:?}"),
            }
        });
        let mut buf = [0u8; 16];
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
        assert_eq!(&server.join().unwrap()[..], b"hi");
    }

    #[test]
    fn text_frame_is_a_protocol_error() {
        // MQTT-6.0.0-1: a data frame that is not binary closes the connection.
        let (mut c, server) = pair(|mut ws| {
            ws.send(Message::text("{\"not\": \"mqtt\"}")).unwrap();
            ws
        });
        let e = c.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("MQTT-6.0.0-1"), "{e}");
        drop(server.join().unwrap());
    }

    #[test]
    fn close_frame_ends_the_stream_and_is_answered() {
        let (mut c, server) = pair(|mut ws| {
            ws.send(Message::binary(b"last".to_vec())).unwrap();
            ws.close(None).unwrap();
            loop {
                match ws.read() {
                    Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {
                        return true
                    }
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        });
        let mut buf = [0u8; 16];
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"last");
        assert_eq!(c.read(&mut buf).unwrap(), 0);
        assert_eq!(c.read(&mut buf).unwrap(), 0, "stays at end of stream");
        assert!(server.join().unwrap(), "client answered the close frame");
        let e = c.write(b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn trickling_server_cannot_stretch_the_deadline() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            // One byte of an endless header every 50 ms.
            let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\n");
            while stop_rx.recv_timeout(Duration::from_millis(50)).is_err() {
                if s.write_all(b"X").is_err() {
                    break;
                }
            }
        });
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let total = Duration::from_millis(400);
        let t0 = Instant::now();
        let e = handshake(
            Stream::Tcp(tcp),
            &uri(port),
            &[],
            1 << 20,
            t0 + total,
            total,
        )
        .unwrap_err();
        let took = t0.elapsed();
        stop_tx.send(()).unwrap();
        server.join().unwrap();
        assert!(
            matches!(
                e,
                Error::Timeout {
                    step: Step::Handshake,
                    ..
                }
            ),
            "{e}"
        );
        assert!(took < total + Duration::from_millis(300), "{took:?}");
    }
}
