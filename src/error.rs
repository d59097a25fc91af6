//! The one error type of the Rust API.
//!
//! [`Error`] is `Clone` (one failure often reaches several waiters) and keeps its causes
//! typed: an I/O error as `Arc<io::Error>`, a protocol failure as [`SessionError`], a
//! persistence failure as [`PersistError`], a lost connection as [`LostCause`]. Following
//! the convention of `std::error::Error`, `Display` describes this error only and
//! [`source`](std::error::Error::source) gives the cause; [`Error::report`] renders both,
//! as the client's logs and the C API's connection-lost text do.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::persist::PersistError;
use crate::proto::session::{CommandError, SessionError};
use crate::proto::Properties;

/// Which step of an operation a timeout or failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Resolving the broker's host name.
    Dns,
    /// Establishing the TCP connection.
    TcpConnect,
    /// The TLS handshake.
    TlsHandshake,
    /// The WebSocket or proxy handshake.
    Handshake,
    /// Waiting for CONNACK.
    ConnAck,
    /// Waiting for room in the client's request queue (publishing faster than the link).
    Queue,
    /// Waiting for PUBACK / PUBCOMP.
    Delivery,
    /// Waiting for SUBACK.
    SubAck,
    /// Waiting for UNSUBACK.
    UnsubAck,
    /// Waiting for in-flight messages before DISCONNECT.
    Disconnect,
    /// Waiting for an incoming message.
    Receive,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Step::Dns => "DNS resolution",
            Step::TcpConnect => "TCP connect",
            Step::TlsHandshake => "TLS handshake",
            Step::Handshake => "transport handshake",
            Step::ConnAck => "waiting for CONNACK",
            Step::Queue => "waiting for room in the request queue",
            Step::Delivery => "waiting for PUBACK/PUBCOMP",
            Step::SubAck => "waiting for SUBACK",
            Step::UnsubAck => "waiting for UNSUBACK",
            Step::Disconnect => "waiting for in-flight messages before disconnecting",
            Step::Receive => "waiting for a message",
        };
        f.write_str(s)
    }
}

/// Broad class of a TLS failure, to act on without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The server's certificate chain does not lead to a trusted CA.
    UnknownCa,
    /// The certificate does not match the host name (or configured server name).
    NameMismatch,
    /// The certificate has expired or is not yet valid.
    Expired,
    /// The server refused the handshake (e.g. it requires a client certificate).
    HandshakeRefused,
    /// Certificates, keys or options given by the caller could not be used.
    Configuration,
    /// Anything else.
    Other,
}

impl std::fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsErrorKind::UnknownCa => "server certificate not trusted",
            TlsErrorKind::NameMismatch => "host name mismatch",
            TlsErrorKind::Expired => "certificate expired or not yet valid",
            TlsErrorKind::HandshakeRefused => "handshake refused",
            TlsErrorKind::Configuration => "TLS configuration error",
            TlsErrorKind::Other => "TLS failure",
        })
    }
}

fn tls_heading(kind: TlsErrorKind) -> &'static str {
    match kind {
        TlsErrorKind::Configuration => "configuration error",
        _ => "connection failed",
    }
}

/// Why a connection was lost ([`Error::ConnectionLost`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LostCause {
    /// The server closed the connection.
    #[error("connection closed by the server")]
    ClosedByServer,
    /// The server closed the connection before it answered CONNECT.
    #[error("server closed the connection before CONNACK")]
    ClosedBeforeConnAck,
    /// The connection closed while the client was writing.
    #[error("connection closed while writing")]
    ClosedWhileWriting,
    /// The server sent DISCONNECT (MQTT 5).
    #[error("server sent DISCONNECT: {code:#04x} ({reason})")]
    ServerDisconnect {
        /// Its reason code.
        code: u8,
        /// The text of the code.
        reason: &'static str,
    },
    /// The server sent DISCONNECT instead of CONNACK.
    #[error("server sent DISCONNECT ({code:#04x}) before CONNACK")]
    DisconnectBeforeConnAck {
        /// Its reason code.
        code: u8,
    },
    /// Nothing came from the server within the keepalive's ping timeout.
    #[error("keepalive timeout: no answer from the server")]
    KeepAliveTimeout,
    /// The server broke the protocol; the client closed the connection.
    #[error("the server broke the protocol")]
    Protocol(#[source] SessionError),
    /// Reading or writing failed.
    #[error("I/O error on the connection")]
    Io(#[source] Arc<io::Error>),
    /// Another failure ended the connection (a TLS error while reading, say).
    #[error("the connection failed")]
    Other(#[source] Box<Error>),
    /// [`Client::abort`](crate::Client::abort).
    #[error("closed by the application")]
    Aborted,
    /// [`Client::disconnect`](crate::Client::disconnect) while this request waited.
    #[error("disconnected by the application")]
    Disconnected,
    /// The client was closed while this request waited.
    #[error("client closed")]
    ClientClosed,
    /// The client's I/O thread panicked (a bug in mqttsync or in a persistence store);
    /// the client is closed.
    #[error("the client's I/O thread panicked")]
    IoThreadPanicked,
}

/// Every error of the mqttsync Rust API.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A caller-supplied value is not acceptable (bad URI, QoS, option combination...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A topic name or filter breaks the MQTT topic rules.
    #[error("invalid topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The host name could not be resolved.
    #[error("DNS resolution of {host:?} failed")]
    Dns {
        /// Host name.
        host: String,
        /// Resolver error.
        #[source]
        source: Arc<io::Error>,
    },
    /// No address of the server accepted a TCP connection.
    #[error("TCP connect to {addr} failed")]
    Tcp {
        /// The last address tried.
        addr: String,
        /// Socket error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The TLS handshake or TLS configuration failed.
    ///
    /// Displayed as `TLS connection failed: <message>` (or `TLS configuration error:
    /// <message>`), where the message names the cause in words, then OpenSSL's short reason:
    /// `the server's certificate is self-signed and not trusted (OpenSSL: certificate
    /// verify failed: self-signed certificate)`.
    #[error("TLS {}: {message}", tls_heading(*.kind))]
    Tls {
        /// What kind of failure.
        kind: TlsErrorKind,
        /// The cause in words, followed by the TLS library's short reason in parentheses
        /// (no source file paths or error codes).
        message: String,
    },
    /// The HTTP CONNECT proxy could not be used: it refused the tunnel (the status line is
    /// in `message`, e.g. `HTTP/1.1 407 Proxy Authentication Required`), answered with
    /// something that is not HTTP, or its address is unusable.
    #[error("HTTP proxy {proxy}: {message}")]
    Proxy {
        /// The proxy as `host:port` (never with credentials).
        proxy: String,
        /// The HTTP status code of the proxy's answer, when it gave one.
        status: Option<u16>,
        /// What went wrong (the proxy's status line when it answered).
        message: String,
    },
    /// The WebSocket upgrade failed (the server answered with an HTTP error such as 404,
    /// chose no `mqtt` subprotocol, or broke the handshake).
    #[error("WebSocket handshake with {url} failed: {message}")]
    WebSocket {
        /// The URL of the upgrade request.
        url: String,
        /// The HTTP status code of the server's answer, when it was not 101.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// The server answered CONNACK with a non-zero code.
    #[error("connection refused by server: code {code:#04x} ({reason})")]
    ConnectionRefused {
        /// v3 return code (1-5) or v5 reason code.
        code: u8,
        /// Text of the code.
        reason: &'static str,
        /// v5 CONNACK properties (reason string, server reference...).
        properties: Properties,
    },
    /// A deadline expired.
    #[error("timed out after {after:?} ({step})")]
    Timeout {
        /// The step that timed out.
        step: Step,
        /// The deadline that applied.
        after: Duration,
    },
    /// The server broke the protocol (malformed packet, unexpected packet...).
    #[error("the server broke the protocol")]
    Protocol(#[source] SessionError),
    /// The server acknowledged with a failure reason code (v5 PUBACK/PUBREC >= 0x80).
    #[error("rejected by server: reason code {code:#04x} ({reason})")]
    Rejected {
        /// The reason code.
        code: u8,
        /// Its text.
        reason: &'static str,
    },
    /// The command cannot be carried out by the session (packet too large, no packet id...).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// An I/O error on the connection.
    #[error(transparent)]
    Io(Arc<io::Error>),
    /// The client is not connected (and not reconnecting).
    #[error("not connected")]
    NotConnected,
    /// The connection was lost while the operation was under way.
    #[error("connection lost")]
    ConnectionLost(#[source] LostCause),
    /// The client has been shut down.
    #[error("client is closed")]
    Closed,
    /// The publish was taken back before the client took it
    /// ([`DeliveryToken::withdraw`](crate::DeliveryToken::withdraw)): it was never sent.
    #[error("publish withdrawn before the client took it")]
    Withdrawn,
    /// Persistence failed.
    #[error("persistence failed")]
    Persistence(#[source] Arc<PersistError>),
    /// The call would wait for something only the calling thread can deliver
    /// (e.g. waiting inside a callback for the callback thread).
    #[error("operation would deadlock: {0}")]
    WouldDeadlock(&'static str),
    /// [`Message::ack`](crate::Message::ack) was called a second time for the same message.
    #[error("message already acknowledged")]
    AlreadyAcknowledged,
    /// [`Message::ack`](crate::Message::ack) for a message of a session the server has
    /// since discarded (it reconnected with a new session): nothing can be acknowledged.
    #[error("cannot acknowledge: the session the message arrived in has ended")]
    SessionEnded,
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl From<PersistError> for Error {
    fn from(e: PersistError) -> Self {
        Error::Persistence(Arc::new(e))
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        Error::Protocol(e)
    }
}

impl Error {
    /// True for timeouts.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// True when the connection was lost under an operation ([`Error::ConnectionLost`]).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::ConnectionLost(_))
    }

    /// True when the client is not connected or has been closed ([`Error::NotConnected`],
    /// [`Error::Closed`]).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::NotConnected | Error::Closed)
    }

    /// The cause of a lost connection.
    pub fn lost_cause(&self) -> Option<&LostCause> {
        match self {
            Error::ConnectionLost(c) => Some(c),
            _ => None,
        }
    }

    /// This error followed by its chain of sources, joined with `": "`, e.g.
    /// `connection lost: the server broke the protocol: malformed packet from server:
    /// ...`. What the client logs, and the text the C API hands to `connectionLost`.
    pub fn report(&self) -> String {
        report(self)
    }

    /// The same failure as seen by an operation that was under way on the connection:
    /// [`Error::ConnectionLost`] with the cause.
    pub(crate) fn into_lost(self) -> Error {
        match self {
            e @ Error::ConnectionLost(_) => e,
            Error::Protocol(e) => Error::ConnectionLost(LostCause::Protocol(e)),
            Error::Io(e) => Error::ConnectionLost(LostCause::Io(e)),
            other => Error::ConnectionLost(LostCause::Other(Box::new(other))),
        }
    }

    pub(crate) fn timeout(step: Step, after: Duration) -> Error {
        Error::Timeout { step, after }
    }
}

/// Any error followed by its chain of sources, joined with `": "` (for logs).
pub(crate) fn report(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(e) = next {
        s.push_str(": ");
        s.push_str(&e.to_string());
        next = e.source();
    }
    s
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
