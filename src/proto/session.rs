//! The sans-IO MQTT client session. (Interface; implementation in progress.)
//!
//! Inputs: [`Session::handle_input`] / [`Session::handle_packet`] with the time they arrived,
//! [`Session::handle_timeout`], and commands ([`Session::connect`], [`Session::publish`], ...).
//! Outputs, polled: [`Session::poll_transmit`] (bytes to write), [`Session::poll_event`]
//! (things for the application) and [`Session::poll_timeout`] (when to call
//! `handle_timeout` next). No sockets, threads or clock inside.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::codec::{DecodeError, EncodeError};
use super::packet::*;
use super::properties::Properties;

/// Static configuration of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Protocol version spoken.
    pub version: ProtocolVersion,
    /// Keepalive interval; `Duration::ZERO` turns keepalive off. The server's v5
    /// Server Keep Alive overrides it after CONNACK.
    pub keep_alive: Duration,
    /// How long to wait for PINGRESP (or any packet) after a PINGREQ before the connection
    /// is declared lost. `None` means half the keepalive interval.
    pub ping_timeout: Option<Duration>,
    /// Client-side in-flight window for outgoing QoS 1/2 publishes (further publishes wait
    /// in a queue). Capped by the server's v5 Receive Maximum.
    pub max_inflight: u16,
    /// Largest incoming packet accepted (whole packet, bytes). Sent to v5 servers as
    /// Maximum Packet Size when smaller than the protocol maximum.
    pub max_incoming_packet_size: usize,
    /// Emit [`Event::Persist`] events so the caller can mirror in-flight state to a store.
    pub persist_events: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            version: ProtocolVersion::V311,
            keep_alive: Duration::from_secs(60),
            ping_timeout: None,
            max_inflight: 20,
            max_incoming_packet_size: super::codec::MAX_REMAINING_LENGTH + 5,
            persist_events: false,
        }
    }
}

/// What a persistence event refers to (maps onto Paho's `s-`, `sc-` and `r-` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersistKey {
    /// An outgoing QoS 1/2 PUBLISH not yet acknowledged (Paho `s-<id>`).
    SentPublish(u16),
    /// An outgoing PUBREL not yet completed (Paho `sc-<id>`).
    SentPubRel(u16),
    /// An incoming QoS 2 PUBLISH whose PUBREL has not come yet (Paho `r-<id>`).
    ReceivedQos2(u16),
}

/// Change to the persisted in-flight state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistOp {
    /// Store (or replace) this packet under this key.
    Put(PersistKey, Packet),
    /// Remove the key.
    Remove(PersistKey),
}

/// Something the session tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CONNACK with success: the session is up.
    Connected(ConnAck),
    /// CONNACK refusing the connection (code != 0). The connection must be closed.
    ConnectionRefused(ConnAck),
    /// An application message (already resolved from a topic alias; QoS 2 delivered once).
    Message(Publish),
    /// An outgoing publish finished: `ack` is the PUBACK (QoS 1), the failing PUBREC, or the
    /// PUBCOMP (QoS 2). `Packet::PubAck`/`PubRec`/`PubComp` are the only variants used.
    PublishDone {
        /// Packet id the publish had.
        pkid: u16,
        /// The acknowledgement that ended the flow.
        ack: Packet,
    },
    /// SUBACK for the SUBSCRIBE with this id.
    SubscribeDone(SubAck),
    /// UNSUBACK for the UNSUBSCRIBE with this id.
    UnsubscribeDone(UnsubAck),
    /// The server sent DISCONNECT (v5).
    ServerDisconnect(Disconnect),
    /// The server sent AUTH (v5 enhanced authentication).
    Auth(Auth),
    /// In-flight state changed (only with `persist_events`).
    Persist(PersistOp),
}

/// Why the session cannot go on. The owner closes the connection; for v5 it first sends
/// DISCONNECT with [`SessionError::reason_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Bytes from the server could not be decoded.
    #[error("malformed packet from server: {0}")]
    Decode(#[from] DecodeError),
    /// The server broke a protocol rule.
    #[error("protocol violation by server: {0}")]
    Protocol(String),
    /// No PINGRESP (or any packet) within the ping timeout.
    #[error("keepalive timeout: no answer from server")]
    KeepAliveTimeout,
}

impl SessionError {
    /// The v5 reason code for the DISCONNECT the client sends because of this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            SessionError::Decode(DecodeError::PacketTooLarge { .. }) => super::reason::PACKET_TOO_LARGE,
            SessionError::Decode(_) => super::reason::MALFORMED_PACKET,
            SessionError::Protocol(_) => super::reason::PROTOCOL_ERROR,
            SessionError::KeepAliveTimeout => super::reason::KEEP_ALIVE_TIMEOUT,
        }
    }
}

/// Why a command was refused (nothing was queued).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// All 65535 packet identifiers are in use.
    #[error("no free packet identifier")]
    NoPacketId,
    /// The packet exceeds the server's Maximum Packet Size.
    #[error("packet of {size} bytes exceeds the server's maximum packet size {max}")]
    PacketTooLarge {
        /// Encoded size.
        size: usize,
        /// Server limit.
        max: usize,
    },
    /// The server does not allow this (QoS above Maximum QoS, retain not available,
    /// topic alias above Topic Alias Maximum).
    #[error("not allowed by the server: {0}")]
    NotAllowed(&'static str),
    /// Could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// The client side of one MQTT session, across reconnects.
#[derive(Debug)]
pub struct Session {
    _config: SessionConfig,
}

impl Session {
    /// A new, disconnected session.
    pub fn new(config: SessionConfig) -> Self {
        Session { _config: config }
    }

    /// Starts a connection: queues CONNECT. Call after the transport is up.
    pub fn connect(&mut self, now: Instant, connect: Connect) -> Result<(), CommandError> {
        let _ = (now, connect);
        todo!()
    }

    /// True between a successful CONNACK and the connection ending.
    pub fn is_connected(&self) -> bool {
        todo!()
    }

    /// The transport closed or failed: forget the connection, keep the session state.
    pub fn connection_lost(&mut self) {
        todo!()
    }

    /// Queues a PUBLISH; the packet id is assigned here (the `pkid` field is ignored) and
    /// returned (0 for QoS 0). Publishes beyond the in-flight window wait in a queue.
    pub fn publish(&mut self, now: Instant, publish: Publish) -> Result<u16, CommandError> {
        let _ = (now, publish);
        todo!()
    }

    /// Queues a SUBSCRIBE; returns its packet id.
    pub fn subscribe(
        &mut self,
        now: Instant,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<u16, CommandError> {
        let _ = (now, filters, properties);
        todo!()
    }

    /// Queues an UNSUBSCRIBE; returns its packet id.
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        filters: Vec<String>,
        properties: Properties,
    ) -> Result<u16, CommandError> {
        let _ = (now, filters, properties);
        todo!()
    }

    /// Queues DISCONNECT.
    pub fn disconnect(&mut self, now: Instant, disconnect: Disconnect) {
        let _ = (now, disconnect);
        todo!()
    }

    /// Feeds bytes read from the transport; complete frames are taken off `buf`.
    pub fn handle_input(&mut self, now: Instant, buf: &mut BytesMut) -> Result<(), SessionError> {
        let _ = (now, buf);
        todo!()
    }

    /// Feeds one decoded packet.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<(), SessionError> {
        let _ = (now, packet);
        todo!()
    }

    /// Runs timers (keepalive). Call when `poll_timeout` is reached.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        let _ = now;
        todo!()
    }

    /// Appends every queued outgoing packet, encoded, to `out`; returns true if anything was
    /// appended.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let _ = (now, out);
        todo!()
    }

    /// Next event for the owner.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// When `handle_timeout` must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// Packet ids of outgoing QoS 1/2 publishes not yet completed (sent or queued).
    pub fn pending_publishes(&self) -> Vec<u16> {
        todo!()
    }

    /// Number of outgoing publishes waiting for the window to open.
    pub fn queued_len(&self) -> usize {
        todo!()
    }

    /// Restores in-flight state read back from a store, before the first `connect`.
    /// Accepts `PUBLISH` (sent, unacknowledged), `PUBREL` (sent, not completed) and, for
    /// received QoS 2 messages, `PUBREC` packets carrying the packet id.
    pub fn restore(&mut self, key: PersistKey, packet: Packet) -> Result<(), CommandError> {
        let _ = (key, packet);
        todo!()
    }

    /// The CONNACK of the current connection, if connected.
    pub fn connack(&self) -> Option<&ConnAck> {
        todo!()
    }
}
