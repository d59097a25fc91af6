//! The sans-IO MQTT client session.
//!
//! Inputs: [`Session::handle_input`] / [`Session::handle_packet`] with the time they arrived,
//! [`Session::handle_timeout`], and commands ([`Session::connect`], [`Session::publish`], ...).
//! Outputs, polled: [`Session::poll_transmit`] (bytes to write) or [`Session::poll_packet`]
//! (the same, one packet at a time, not encoded), [`Session::poll_event`] (things for the
//! application) and [`Session::poll_timeout`] (when to call `handle_timeout` next). No
//! sockets, threads or clock inside.
//!
//! # Poll order: persistence events before transmission
//!
//! After feeding input, running timers or issuing commands, the owner drains
//! [`Session::poll_event`] (applying every [`Event::Persist`] to its store) *before* it takes
//! bytes with [`Session::poll_transmit`] / [`Session::poll_packet`]. The session queues a
//! QoS 1/2 PUBLISH's store record, and the received-QoS 2 marker behind a PUBREC, as events
//! at the moment it queues the packet; polled in this order, the record is stored before the
//! packet can reach the server, so a process killed at any point either resends the message
//! or never sent it. The client's I/O thread keeps this order in one place
//! (`client::io::transmit`).
//!
//! # Policies
//!
//! * **Before CONNACK** only CONNECT, AUTH and DISCONNECT go out. Publishes, subscriptions and
//!   unsubscriptions issued while connecting or disconnected are held and sent after a
//!   successful CONNACK (QoS 0 publishes, SUBSCRIBE and UNSUBSCRIBE held this way are
//!   forgotten by [`Session::connection_lost`]; QoS 1/2 publishes are session state and are
//!   kept).
//! * **Packet identifiers** are allocated from a cursor running 1..=65535 and wrapping,
//!   skipping identifiers used by an outgoing QoS 1/2 publish (queued or in flight) or by a
//!   pending SUBSCRIBE/UNSUBSCRIBE. Incoming QoS 2 identifiers are the server's namespace.
//! * **In-flight window**: at most `min(max_inflight, server Receive Maximum)` outgoing QoS 1/2
//!   publishes are unacknowledged (a flow counts until PUBACK, PUBCOMP or a failing PUBREC).
//!   Further QoS 1/2 publishes wait in a FIFO queue, already holding their packet id. QoS 0
//!   publishes are not limited by the window and go straight out (they may overtake queued
//!   QoS 1/2 publishes).
//! * **Resend after CONNACK**: every outgoing flow that was handed to the connection is
//!   regenerated in original order: an unacknowledged PUBLISH with DUP=1 (MQTT-4.4.0-1; DUP
//!   stays 0 if the packet never reached the transport, MQTT-3.3.1-1), a PUBREL for a flow the
//!   server had acknowledged with PUBREC. PUBLISH order is the order of first sending
//!   (MQTT-4.6.0-1), PUBREL order the order the PUBRECs arrived (MQTT-4.6.0-3). If the window
//!   shrank, the excess publishes go back to the front of the queue.
//! * **Session not present** (CONNACK session_present = 0): unacknowledged PUBLISHes are still
//!   resent (with DUP=1), so nothing the application handed over is silently lost. A flow that
//!   had already reached PUBREL (the server acknowledged receipt with PUBREC) is completed
//!   locally: [`Event::PublishDone`] with a synthesized PUBCOMP (reason 0), no PUBREL is sent
//!   into a session that no longer knows it. The received-QoS 2 state is cleared as well.
//! * **Unexpected acknowledgements**: a PUBACK, PUBREC or PUBCOMP for an identifier with no
//!   matching flow, or of the wrong kind for its state (PUBACK for a QoS 2 flow, PUBCOMP before
//!   PUBREC, any ack for a publish still queued), is logged at debug level and ignored, except
//!   that an unknown PUBREC in v5 is answered with PUBREL 0x92 (Packet Identifier not found).
//!   A repeated PUBREC for a flow already at PUBREL is answered with the PUBREL again. A PUBREL
//!   for an unknown identifier is answered with PUBCOMP (v5: reason 0x92).
//! * **Keepalive** (when non-zero): PINGREQ when nothing was sent *or* nothing was received
//!   for the keepalive interval; if no packet at all arrives within the ping timeout after
//!   that, [`Session::handle_timeout`] fails with [`SessionError::KeepAliveTimeout`]. A stall
//!   is so detected within 1.5 × keepalive with the default ping timeout.
//! * **Incoming QoS 1/2: acknowledged on hand-over.** A QoS 1/2 PUBLISH from the server
//!   becomes [`Event::Message`] and is *not* acknowledged until the owner calls
//!   [`Session::ack`] with its packet id, which the owner does once the application has the
//!   message. Until then the broker still owns it: a process killed, or a connection lost,
//!   before the ack means the broker sends it again. [`Session::ack`] queues PUBACK (QoS 1),
//!   or persists the received-QoS 2 marker and then queues PUBREC (QoS 2: the marker makes a
//!   resend after a restart answered, not delivered again, until PUBREL). A resend of a
//!   message that is still with the application (same packet id, not yet acknowledged) is
//!   not delivered twice; a resend of an acknowledged one is answered with the
//!   acknowledgement. When the server starts a new session (CONNACK with session present
//!   0) every pending acknowledgement is forgotten: the ids belong to the old session.
//!   Unacknowledged messages count against the server's in-flight limit for this client
//!   (v5: the client's Receive Maximum), so reading ahead never acknowledges beyond what
//!   the application took.
//! * **Topic aliases**: incoming aliases are resolved (the delivered message has the topic
//!   filled in and keeps its TOPIC_ALIAS property). Outgoing publishes may carry a
//!   TOPIC_ALIAS property: an empty topic is resolved at [`Session::publish`] from earlier
//!   publishes; when sending, the topic is blanked if the alias is already mapped to it on this
//!   connection and sent in full (re-establishing the alias) otherwise, so resends after a
//!   reconnect stay valid.

use std::collections::VecDeque;

use super::{IdMap, IdSet, Lazy, Quiet};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{debug, error, trace};

use super::codec::{self, DecodeError, EncodeError, Framer};
use super::packet::*;
use super::properties::{id as prop, Properties, Property};
use super::reason;

/// An entry of the outgoing queue: a packet, or a stored QoS 1/2 publish by packet id
/// (encoded from the flow when it goes out, so it is never copied).
#[derive(Debug)]
enum Out {
    Packet(Packet),
    Flow(u16),
}

/// Acknowledged QoS 1 ids whose PUBACK went out, remembered per connection to answer a
/// resend that crossed the PUBACK (more than any broker keeps in flight).
const ACKED_MEMORY: usize = 1024;

/// Static configuration of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Protocol version spoken until [`Session::connect`] is called; after that, the
    /// version of the CONNECT packet is used.
    pub version: ProtocolVersion,
    /// Keepalive interval; `Duration::ZERO` turns keepalive off. The server's v5
    /// Server Keep Alive overrides it after CONNACK. [`Session::connect`] writes it (in whole
    /// seconds, rounded up, at most 65535) into the CONNECT packet, so that what the server
    /// enforces and what the session does agree.
    pub keep_alive: Duration,
    /// How long to wait for PINGRESP (or any packet) after a PINGREQ before the connection
    /// is declared lost. `None` means half the keepalive interval.
    pub ping_timeout: Option<Duration>,
    /// Client-side in-flight window for outgoing QoS 1/2 publishes (further publishes wait
    /// in a queue). Capped by the server's v5 Receive Maximum. 0 is treated as 1.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    #[error("malformed packet from server")]
    Decode(#[from] DecodeError),
    /// The server broke a protocol rule.
    #[error("protocol violation by server: {0}")]
    Protocol(String),
    /// No PINGRESP (or any packet) within the ping timeout.
    #[error("keepalive timeout: no answer from server")]
    KeepAliveTimeout,
    /// The server used topic alias 0, an alias above the client's Topic Alias Maximum, or
    /// an alias it never mapped (v5 reason 0x94).
    #[error("invalid topic alias {0} from server")]
    TopicAliasInvalid(u32),
    /// The server sent a PUBLISH whose topic name holds a wildcard (`+` or `#`,
    /// MQTT-3.3.2-2) (v5 reason 0x90).
    #[error("PUBLISH from server with invalid topic name {0:?} (wildcards are not allowed, MQTT-3.3.2-2)")]
    TopicNameInvalid(String),
}

impl SessionError {
    /// The v5 reason code for the DISCONNECT the client sends because of this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            SessionError::Decode(DecodeError::PacketTooLarge { .. }) => reason::PACKET_TOO_LARGE,
            SessionError::Decode(_) => reason::MALFORMED_PACKET,
            SessionError::Protocol(_) => reason::PROTOCOL_ERROR,
            SessionError::KeepAliveTimeout => reason::KEEP_ALIVE_TIMEOUT,
            SessionError::TopicAliasInvalid(_) => reason::TOPIC_ALIAS_INVALID,
            SessionError::TopicNameInvalid(_) => reason::TOPIC_NAME_INVALID,
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

/// Why [`Session::ack`] refused an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No message with this packet id waits for an acknowledgement: it was acknowledged
    /// already, never delivered, or belonged to a session the server has since discarded.
    #[error("no unacknowledged incoming message with packet id {0}")]
    Unknown(u16),
}

/// State of the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// No transport (never connected, or lost).
    Disconnected,
    /// CONNECT queued, waiting for CONNACK.
    Connecting,
    /// CONNACK with success received.
    Connected,
    /// DISCONNECT queued by the client: incoming packets are still processed, but nothing
    /// more is sent on this connection.
    Closing,
}

/// Where an outgoing QoS 1/2 publish is.
#[derive(Debug)]
enum Stage {
    /// Waiting for the window (never sent on the current connection).
    Queued(Publish),
    /// PUBLISH handed to the connection, waiting for PUBACK / PUBREC.
    Sent(Publish),
    /// PUBREC received, PUBREL sent (or to be resent), waiting for PUBCOMP.
    Released(PubResp),
}

/// One outgoing QoS 1/2 publish flow.
#[derive(Debug)]
struct OutFlow {
    /// Resend order: order of first sending for a PUBLISH, of PUBREC arrival for a PUBREL.
    seq: u64,
    /// The PUBLISH has reached the transport at least once (so a resend has DUP=1).
    transmitted: bool,
    stage: Stage,
}

/// A pending SUBSCRIBE or UNSUBSCRIBE (the number of filters it carried).
#[derive(Debug, Clone, Copy)]
enum Request {
    Subscribe(usize),
    Unsubscribe(usize),
}

/// The client side of one MQTT session, across reconnects.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    version: ProtocolVersion,
    framer: Framer,
    conn: ConnState,
    connack: Option<ConnAck>,
    clean_start: bool,
    /// The connection being made goes to another server than the one whose session the
    /// incoming state belongs to ([`Session::set_server_changed`]).
    server_changed: bool,

    // Timers.
    keep_alive: Duration,
    last_sent: Option<Instant>,
    last_received: Option<Instant>,
    ping_sent_at: Option<Instant>,

    // What the server announced in its last successful CONNACK (defaults before).
    limits_known: bool,
    server_receive_max: u16,
    server_max_packet_size: Option<usize>,
    server_topic_alias_max: u16,
    server_max_qos: QoS,
    server_retain_available: bool,
    assigned_client_id: Option<String>,
    /// Topic Alias Maximum the client announced in CONNECT.
    client_topic_alias_max: u16,

    // Outgoing publish flows and requests.
    next_pkid: u16,
    next_seq: u64,
    inflight: usize,

    /// Client identifier of the last CONNECT: names this client in trace-hook lines.
    trace_id: String,
    /// The maps and queues of traffic in progress: absent while the connection is idle
    /// ([`Session::release_idle_memory`]).
    t: Lazy<Traffic>,
}

/// The part of a [`Session`] that holds traffic in progress, empty while the connection is
/// idle (out of line in [`Lazy`]: about 400 bytes less per idle client).
#[derive(Debug, Default)]
struct Traffic {
    flows: IdMap<u16, OutFlow>,
    queue: VecDeque<u16>,
    requests: IdMap<u16, Request>,
    // Incoming QoS 2 identifiers acknowledged with PUBREC, waiting for PUBREL.
    incoming_qos2: IdSet<u16>,
    // Incoming QoS 1/2 messages handed to the owner and not yet acknowledged (`ack`).
    unacked: IdMap<u16, QoS>,
    // Incoming QoS 1 ids acknowledged by the owner: false while the PUBACK has not been
    // handed to the transport, true once it went out on this connection. A resend (DUP) of
    // such an id is answered, not delivered again: the broker resends at reconnect, and its
    // resend may cross our PUBACK. Sent entries are forgotten with the connection (the
    // broker may have reused the id) and beyond `ACKED_MEMORY`.
    acked_qos1: IdMap<u16, bool>,
    // Ids of `acked_qos1` whose PUBACK went out, oldest first.
    acked_sent: VecDeque<u16>,
    // Topic aliases: server -> client on this connection; client -> server as set by the
    // application's publishes, and as actually established on this connection.
    in_aliases: IdMap<u16, String>,
    app_aliases: IdMap<u16, String>,
    conn_out_aliases: IdMap<u16, String>,
    /// Packets ready for the transport.
    out: VecDeque<Out>,
    /// Commands issued before CONNACK, sent after it.
    held: VecDeque<Packet>,
    events: VecDeque<Event>,
}

impl Quiet for Traffic {
    fn empty() -> &'static Self {
        static EMPTY: std::sync::OnceLock<Traffic> = std::sync::OnceLock::new();
        EMPTY.get_or_init(Traffic::default)
    }

    fn is_quiet(&self) -> bool {
        self.flows.is_empty()
            && self.queue.is_empty()
            && self.requests.is_empty()
            && self.incoming_qos2.is_empty()
            && self.unacked.is_empty()
            && self.acked_qos1.is_empty()
            && self.acked_sent.is_empty()
            && self.in_aliases.is_empty()
            && self.app_aliases.is_empty()
            && self.conn_out_aliases.is_empty()
            && self.out.is_empty()
            && self.held.is_empty()
            && self.events.is_empty()
    }
}

/// Packet id of a packet, for logs.
fn pkid_of(packet: &Packet) -> Option<u16> {
    match packet {
        Packet::Publish(p) if p.qos != QoS::AtMostOnce => Some(p.pkid),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            Some(r.pkid)
        }
        Packet::Subscribe(s) => Some(s.pkid),
        Packet::SubAck(s) => Some(s.pkid),
        Packet::Unsubscribe(u) => Some(u.pkid),
        Packet::UnsubAck(u) => Some(u.pkid),
        _ => None,
    }
}

/// The TOPIC_ALIAS property of a publish, if any.
fn topic_alias(properties: &Properties) -> Option<u32> {
    properties.get_int(prop::TOPIC_ALIAS)
}

/// Keepalive as whole seconds for CONNECT: rounded up, saturating at 65535.
fn keep_alive_secs(d: Duration) -> u16 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u16::try_from(secs).unwrap_or(u16::MAX)
}

fn protocol(msg: impl Into<String>) -> SessionError {
    SessionError::Protocol(msg.into())
}

impl Session {
    /// A new, disconnected session.
    pub fn new(config: SessionConfig) -> Self {
        let framer = Framer::new(config.max_incoming_packet_size);
        Session {
            version: config.version,
            keep_alive: config.keep_alive,
            framer,
            conn: ConnState::Disconnected,
            connack: None,
            clean_start: false,
            server_changed: false,
            last_sent: None,
            last_received: None,
            ping_sent_at: None,
            limits_known: false,
            server_receive_max: u16::MAX,
            server_max_packet_size: None,
            server_topic_alias_max: 0,
            server_max_qos: QoS::ExactlyOnce,
            server_retain_available: true,
            assigned_client_id: None,
            client_topic_alias_max: 0,
            next_pkid: 1,
            next_seq: 0,
            inflight: 0,
            trace_id: String::new(),
            t: Lazy::new(),
            config,
        }
    }

    /// Says whether the next connection goes to another server than the one whose session
    /// the incoming state belongs to (a failover within a list of servers). A CONNACK with
    /// session present from there resumes that server's own session, in which the packet
    /// ids of the messages received before name other messages: the incoming state is then
    /// cleared as for a session not present (those messages stay delivered; their
    /// acknowledgements are not sent, and a PUBLISH there with one of their ids is a new
    /// message). The outgoing flows are resent as the CONNACK says: to a server that shares
    /// the session they are the same flows, and to one that does not, a resent PUBLISH is a
    /// new message and a PUBREL is answered with PUBCOMP. Holds until the next accepted
    /// CONNACK.
    pub fn set_server_changed(&mut self, changed: bool) {
        self.server_changed = changed;
    }

    /// Starts a connection: queues CONNECT. Call after the transport is up.
    ///
    /// The protocol version of `connect` becomes the session's version. Its `keep_alive` is
    /// overwritten from [`SessionConfig::keep_alive`]. For v5, a MAXIMUM_PACKET_SIZE property
    /// is added when [`SessionConfig::max_incoming_packet_size`] is below the protocol maximum
    /// and the packet has none; the client's own Receive Maximum and Topic Alias Maximum are
    /// read from its properties (Topic Alias Maximum 0 when absent). For 3.x all properties are
    /// dropped. Calling `connect` on a live connection first forgets that connection
    /// (as [`connection_lost`](Self::connection_lost)). Nothing but AUTH and DISCONNECT is sent
    /// until CONNACK.
    pub fn connect(&mut self, now: Instant, mut connect: Connect) -> Result<(), CommandError> {
        if self.conn != ConnState::Disconnected {
            debug!("connect on a live connection: forgetting it first");
            self.reset_connection();
        }
        self.version = connect.protocol;
        self.clean_start = connect.clean_start;
        self.trace_id.clone_from(&connect.client_id);
        connect.keep_alive = keep_alive_secs(self.config.keep_alive);
        self.keep_alive = Duration::from_secs(u64::from(connect.keep_alive));
        if self.version.is_v5() {
            let protocol_max = codec::MAX_REMAINING_LENGTH + 5;
            if self.config.max_incoming_packet_size < protocol_max
                && connect.properties.get(prop::MAXIMUM_PACKET_SIZE).is_none()
            {
                let v = u32::try_from(self.config.max_incoming_packet_size).unwrap_or(u32::MAX);
                connect
                    .properties
                    .push(Property::FourByte(prop::MAXIMUM_PACKET_SIZE, v));
            }
            self.client_topic_alias_max = connect
                .properties
                .get_int(prop::TOPIC_ALIAS_MAXIMUM)
                .map_or(0, |v| u16::try_from(v).unwrap_or(u16::MAX));
        } else {
            connect.properties = Properties::new();
            if let Some(will) = connect.will.as_mut() {
                will.properties = Properties::new();
            }
            self.client_topic_alias_max = 0;
        }
        self.conn = ConnState::Connecting;
        self.last_sent = Some(now);
        self.last_received = Some(now);
        self.ping_sent_at = None;
        self.t.out.clear();
        self.t.out.push_back(Out::Packet(Packet::Connect(connect)));
        Ok(())
    }

    /// True between a successful CONNACK and the connection ending.
    pub fn is_connected(&self) -> bool {
        self.conn == ConnState::Connected
    }

    /// The transport closed or failed: forget the connection, keep the session state.
    ///
    /// Forgotten: unsent packets (QoS 0 publishes never written are dropped), pending
    /// SUBSCRIBE/UNSUBSCRIBE requests (the owner fails their waiters; their ids are free
    /// again), topic alias maps, keepalive state. Kept: outgoing QoS 1/2 flows (queued, in
    /// flight, at PUBREL), resent after the next CONNACK, and received QoS 2 identifiers.
    /// Idempotent.
    pub fn connection_lost(&mut self) {
        debug!(
            "connection lost: {} outgoing flows kept, {} requests forgotten",
            self.t.flows.len(),
            self.t.requests.len()
        );
        self.reset_connection();
    }

    /// Queues a PUBLISH; the packet id is assigned here (the `pkid` field is ignored) and
    /// returned (0 for QoS 0). Publishes beyond the in-flight window wait in a queue.
    ///
    /// Checked against what the server announced in its last CONNACK: Maximum QoS, Retain
    /// Available, Topic Alias Maximum and Maximum Packet Size. A v5 publish with a
    /// TOPIC_ALIAS property and an empty topic takes the topic the application last used with
    /// that alias on this connection. QoS 0 publishes issued before CONNACK are held until
    /// it (and dropped by [`connection_lost`](Self::connection_lost)).
    pub fn publish(&mut self, mut publish: Publish) -> Result<u16, CommandError> {
        let v5 = self.version.is_v5();
        if !v5 {
            publish.properties = Properties::new();
        }
        let alias = if v5 {
            topic_alias(&publish.properties)
        } else {
            None
        };
        let mut new_alias = None;
        if let Some(a) = alias {
            let a16 = match u16::try_from(a) {
                Ok(a16) if a16 != 0 => a16,
                _ => return Err(CommandError::NotAllowed("topic alias out of range")),
            };
            if self.limits_known && a16 > self.server_topic_alias_max {
                return Err(CommandError::NotAllowed(
                    "topic alias above the server's Topic Alias Maximum",
                ));
            }
            if publish.topic.is_empty() {
                match self.t.app_aliases.get(&a16) {
                    Some(topic) => publish.topic = topic.clone(),
                    None => return Err(CommandError::NotAllowed("unknown topic alias")),
                }
            } else {
                new_alias = Some(a16);
            }
        }
        if publish.topic.is_empty() {
            return Err(EncodeError::Invalid("empty topic name").into());
        }
        if publish.topic.len() > usize::from(u16::MAX) {
            return Err(EncodeError::FieldTooLong("topic").into());
        }
        if self.limits_known {
            if publish.qos > self.server_max_qos {
                return Err(CommandError::NotAllowed(
                    "QoS above the server's Maximum QoS",
                ));
            }
            if publish.retain && !self.server_retain_available {
                return Err(CommandError::NotAllowed("retain not available"));
            }
        }
        publish.dup = false;
        if publish.qos == QoS::AtMostOnce {
            publish.pkid = 0;
            self.check_size(&publish)?;
            if let Some(a) = new_alias {
                self.t.app_aliases.insert(a, publish.topic.clone());
            }
            trace!(
                "publish QoS 0 accepted: topic {} bytes, payload {} bytes",
                publish.topic.len(),
                publish.payload.len()
            );
            self.command(Packet::Publish(publish));
            return Ok(0);
        }
        let pkid = self.alloc_pkid()?;
        publish.pkid = pkid;
        self.check_size(&publish)?;
        if let Some(a) = new_alias {
            self.t.app_aliases.insert(a, publish.topic.clone());
        }
        trace!(
            "publish QoS {} accepted: pkid {pkid}, payload {} bytes",
            publish.qos as u8,
            publish.payload.len()
        );
        self.persist(PersistOp::Put(
            PersistKey::SentPublish(pkid),
            Packet::Publish(publish.clone()),
        ));
        let seq = self.take_seq();
        self.t.flows.insert(
            pkid,
            OutFlow {
                seq,
                transmitted: false,
                stage: Stage::Queued(publish),
            },
        );
        self.t.queue.push_back(pkid);
        self.drain_queue();
        Ok(pkid)
    }

    /// Queues a SUBSCRIBE; returns its packet id.
    pub fn subscribe(
        &mut self,
        mut filters: Vec<SubscribeFilter>,
        mut properties: Properties,
    ) -> Result<u16, CommandError> {
        if filters.is_empty() {
            return Err(EncodeError::Invalid("SUBSCRIBE without topic filters").into());
        }
        if !self.version.is_v5() {
            properties = Properties::new();
            for f in &mut filters {
                f.options = SubscribeOptions {
                    qos: f.options.qos,
                    ..SubscribeOptions::default()
                };
            }
        }
        let pkid = self.alloc_pkid()?;
        let count = filters.len();
        let packet = Packet::Subscribe(Subscribe {
            pkid,
            filters,
            properties,
        });
        self.check_packet_size(&packet)?;
        self.t.requests.insert(pkid, Request::Subscribe(count));
        self.command(packet);
        Ok(pkid)
    }

    /// Queues an UNSUBSCRIBE; returns its packet id.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<String>,
        mut properties: Properties,
    ) -> Result<u16, CommandError> {
        if filters.is_empty() {
            return Err(EncodeError::Invalid("UNSUBSCRIBE without topic filters").into());
        }
        if !self.version.is_v5() {
            properties = Properties::new();
        }
        let pkid = self.alloc_pkid()?;
        let count = filters.len();
        let packet = Packet::Unsubscribe(Unsubscribe {
            pkid,
            filters,
            properties,
        });
        self.check_packet_size(&packet)?;
        self.t.requests.insert(pkid, Request::Unsubscribe(count));
        self.command(packet);
        Ok(pkid)
    }

    /// Queues DISCONNECT (for 3.x without reason code or properties). After it nothing more
    /// is sent on this connection; incoming packets are still processed. Does nothing when
    /// there is no connection.
    pub fn disconnect(&mut self, mut disconnect: Disconnect) {
        if matches!(self.conn, ConnState::Disconnected | ConnState::Closing) {
            debug!("disconnect without a live connection: nothing to send");
            return;
        }
        if !self.version.is_v5() {
            disconnect = Disconnect::default();
        }
        self.t
            .out
            .push_back(Out::Packet(Packet::Disconnect(disconnect)));
        self.conn = ConnState::Closing;
    }

    /// Queues AUTH (v5 enhanced authentication; allowed before CONNACK).
    pub fn auth(&mut self, auth: Auth) -> Result<(), CommandError> {
        if !self.version.is_v5() {
            return Err(EncodeError::WrongVersion.into());
        }
        if !matches!(self.conn, ConnState::Connecting | ConnState::Connected) {
            return Err(CommandError::NotAllowed("AUTH needs a live connection"));
        }
        self.t.out.push_back(Out::Packet(Packet::Auth(auth)));
        Ok(())
    }

    /// Acknowledges the incoming QoS 1/2 message delivered with this packet id
    /// ([`Event::Message`]): the application has it now.
    ///
    /// QoS 1: PUBACK is queued (while connected; otherwise the server's resend after the
    /// reconnect is answered). QoS 2: the received-QoS 2 marker is persisted
    /// ([`PersistOp::Put`] of [`PersistKey::ReceivedQos2`]) and then PUBREC is queued, so
    /// the marker reaches the store before the PUBREC can reach the server.
    pub fn ack(&mut self, pkid: u16) -> Result<(), AckError> {
        let Some(qos) = self.t.unacked.remove(&pkid) else {
            return Err(AckError::Unknown(pkid));
        };
        match qos {
            QoS::ExactlyOnce => {
                self.t.incoming_qos2.insert(pkid);
                self.persist(PersistOp::Put(
                    PersistKey::ReceivedQos2(pkid),
                    Packet::PubRec(PubResp::new(pkid)),
                ));
                self.respond(Packet::PubRec(PubResp::new(pkid)));
            }
            _ => {
                self.t.acked_qos1.insert(pkid, false);
                self.respond(Packet::PubAck(PubResp::new(pkid)));
            }
        }
        Ok(())
    }

    /// Number of incoming QoS 1/2 messages delivered and not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.t.unacked.len()
    }

    /// Feeds bytes read from the transport; complete frames are taken off `buf`.
    pub fn handle_input(&mut self, now: Instant, buf: &mut BytesMut) -> Result<(), SessionError> {
        while let Some(frame) = self.framer.next_frame(buf)? {
            trace!(
                "frame in: type {} body {} bytes",
                frame.header >> 4,
                frame.body.len()
            );
            let packet = codec::decode(frame, self.version)?;
            self.handle_packet(now, packet)?;
        }
        Ok(())
    }

    /// Tells the session the server is alive without a packet to show for it (bytes are
    /// waiting in the transport while the application is slow to take messages), so
    /// keepalive does not declare a live server dead. Only while connected.
    pub fn server_alive(&mut self, now: Instant) {
        if self.conn == ConnState::Connected {
            self.last_received = Some(now);
            self.ping_sent_at = None;
        }
    }

    /// Feeds one decoded packet.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<(), SessionError> {
        trace!("recv {} pkid {:?}", packet.name(), pkid_of(&packet));
        crate::tracehook::packet_in(&self.trace_id, self.version, &packet);
        match self.conn {
            ConnState::Disconnected => {
                return Err(protocol(format!(
                    "{} received without a connection",
                    packet.name()
                )))
            }
            ConnState::Connecting => {
                self.last_received = Some(now);
                return match packet {
                    Packet::ConnAck(ack) => self.handle_connack(now, ack),
                    Packet::Auth(auth) => self.handle_auth(auth),
                    Packet::Disconnect(d) => self.handle_disconnect(d),
                    other => Err(protocol(format!("{} before CONNACK", other.name()))),
                };
            }
            ConnState::Connected | ConnState::Closing => {}
        }
        self.last_received = Some(now);
        self.ping_sent_at = None;
        match packet {
            Packet::ConnAck(_) if self.conn == ConnState::Closing && self.connack.is_none() => {
                debug!("CONNACK after DISCONNECT was queued: ignored");
                Ok(())
            }
            Packet::ConnAck(_) => Err(protocol("second CONNACK")),
            Packet::Publish(p) => self.handle_publish(p),
            Packet::PubAck(r) => {
                self.handle_puback(r);
                Ok(())
            }
            Packet::PubRec(r) => {
                self.handle_pubrec(r);
                Ok(())
            }
            Packet::PubRel(r) => {
                self.handle_pubrel(r);
                Ok(())
            }
            Packet::PubComp(r) => {
                self.handle_pubcomp(r);
                Ok(())
            }
            Packet::SubAck(ack) => self.handle_suback(ack),
            Packet::UnsubAck(ack) => self.handle_unsuback(ack),
            Packet::PingResp => Ok(()),
            Packet::Disconnect(d) => self.handle_disconnect(d),
            Packet::Auth(a) => self.handle_auth(a),
            other @ (Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::PingReq) => Err(protocol(format!(
                "{} is not sent by a server",
                other.name()
            ))),
        }
    }

    /// Runs timers (keepalive). Call when `poll_timeout` is reached; an earlier call does
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.conn != ConnState::Connected || self.keep_alive.is_zero() {
            return Ok(());
        }
        if let Some(sent) = self.ping_sent_at {
            match sent.checked_add(self.ping_timeout()) {
                Some(deadline) if now >= deadline => {
                    debug!("keepalive timeout: nothing received since PINGREQ");
                    return Err(SessionError::KeepAliveTimeout);
                }
                _ => return Ok(()),
            }
        }
        if let Some(deadline) = self.ping_due() {
            if now >= deadline {
                trace!("keepalive: queueing PINGREQ");
                self.t.out.push_back(Out::Packet(Packet::PingReq));
                self.ping_sent_at = Some(now);
            }
        }
        Ok(())
    }

    /// Appends every queued outgoing packet, encoded, to `out`; returns true if anything was
    /// appended. A packet that cannot be encoded is logged and dropped. Drain
    /// [`poll_event`](Self::poll_event) first (module documentation, "Poll order").
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        let mut any = false;
        let version = self.version;
        while let Some(entry) = self.t.existing_mut().and_then(|t| t.out.pop_front()) {
            let start = out.len();
            // A stored QoS 1/2 publish is encoded straight from its flow, without copying
            // topic or payload, unless a v5 topic alias may change its topic on the wire.
            let (name, pkid, encoded) = match entry {
                Out::Flow(pkid) if !self.flow_has_alias(pkid) => {
                    let Some((p, dup)) = self.hand_out_flow(now, pkid) else {
                        continue;
                    };
                    let r = codec::encode_publish(p, dup, version, out);
                    ("PUBLISH", Some(pkid), r)
                }
                entry => {
                    let Some(packet) = self.hand_out(now, entry) else {
                        continue;
                    };
                    let r = codec::encode(&packet, version, out);
                    (packet.name(), pkid_of(&packet), r)
                }
            };
            match encoded {
                Ok(n) => {
                    trace!("frame out: {name} pkid {pkid:?} {n} bytes");
                    any = true;
                }
                Err(e) => {
                    out.truncate(start);
                    error!("dropping {name} (pkid {pkid:?}): cannot encode: {e}");
                }
            }
        }
        any
    }

    /// Whether the stored publish of this flow carries a v5 topic alias.
    fn flow_has_alias(&self, pkid: u16) -> bool {
        self.version.is_v5()
            && matches!(self.t.flows.get(&pkid),
                Some(OutFlow { stage: Stage::Sent(p), .. }) if topic_alias(&p.properties).is_some())
    }

    /// Hands out the stored publish of a flow (without copying it) and the DUP flag it goes
    /// with, counting it as sent at `now`. `None` for a flow acknowledged (by a confused
    /// server) before it went out.
    fn hand_out_flow(&mut self, now: Instant, pkid: u16) -> Option<(&Publish, bool)> {
        let flow = self.t.flows.get_mut(&pkid)?;
        let Stage::Sent(p) = &flow.stage else {
            return None;
        };
        let dup = flow.transmitted;
        flow.transmitted = true;
        self.last_sent = Some(now);
        trace!("send PUBLISH pkid {pkid} dup {dup}");
        crate::tracehook::publish_out(&self.trace_id, self.version, p, dup);
        Some((p, dup))
    }

    /// Next queued outgoing packet, not encoded (what [`poll_transmit`](Self::poll_transmit)
    /// encodes). Handing a packet out counts as sending it at `now` (keepalive, DUP on resend).
    pub fn poll_packet(&mut self, now: Instant) -> Option<Packet> {
        loop {
            let entry = self.t.existing_mut()?.out.pop_front()?;
            if let Some(packet) = self.hand_out(now, entry) {
                return Some(packet);
            }
        }
    }

    /// One entry of the outgoing queue as a packet, counted as sent at `now`; `None` for a
    /// flow acknowledged (by a confused server) before it went out.
    fn hand_out(&mut self, now: Instant, entry: Out) -> Option<Packet> {
        let mut packet = match entry {
            Out::Packet(p) => p,
            Out::Flow(pkid) => {
                let flow = self.t.flows.get(&pkid)?;
                let Stage::Sent(p) = &flow.stage else {
                    return None;
                };
                let mut wire = p.clone();
                wire.dup = flow.transmitted;
                Packet::Publish(wire)
            }
        };
        self.last_sent = Some(now);
        match &mut packet {
            Packet::PingReq => self.ping_sent_at = Some(now),
            Packet::PubAck(r) => {
                if let Some(sent) = self.t.acked_qos1.get_mut(&r.pkid) {
                    if !*sent {
                        *sent = true;
                        self.t.acked_sent.push_back(r.pkid);
                        if self.t.acked_sent.len() > ACKED_MEMORY {
                            if let Some(old) = self.t.acked_sent.pop_front() {
                                self.t.acked_qos1.remove(&old);
                            }
                        }
                    }
                }
            }
            Packet::Publish(p) => {
                if p.qos != QoS::AtMostOnce {
                    if let Some(flow) = self.t.flows.get_mut(&p.pkid) {
                        flow.transmitted = true;
                    }
                }
                if self.version.is_v5() {
                    self.apply_out_alias(p);
                }
            }
            _ => {}
        }
        trace!("send {} pkid {:?}", packet.name(), pkid_of(&packet));
        crate::tracehook::packet_out(&self.trace_id, self.version, &packet);
        Some(packet)
    }

    /// Next event for the owner.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.t.existing_mut()?.events.pop_front()
    }

    /// When `handle_timeout` must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.conn != ConnState::Connected || self.keep_alive.is_zero() {
            return None;
        }
        match self.ping_sent_at {
            Some(sent) => sent.checked_add(self.ping_timeout()),
            None => self.ping_due(),
        }
    }

    /// Packet ids of outgoing QoS 1/2 publishes not yet completed (sent or queued), in the
    /// order they were accepted.
    pub fn pending_publishes(&self) -> Vec<u16> {
        let mut ids: Vec<(u64, u16)> = self.t.flows.iter().map(|(id, f)| (f.seq, *id)).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// Gives back the memory of empty internal queues and tables (a quiet connection keeps
    /// nothing it does not need; the next use allocates again).
    pub fn release_idle_memory(&mut self) {
        if self.t.release() {
            return;
        }
        let Some(t) = self.t.existing_mut() else {
            return;
        };
        if t.out.is_empty() {
            t.out = VecDeque::new();
        }
        if t.events.is_empty() {
            t.events = VecDeque::new();
        }
        if t.queue.is_empty() {
            t.queue = VecDeque::new();
        }
        if t.flows.is_empty() {
            t.flows = IdMap::default();
        }
        if t.requests.is_empty() {
            t.requests = IdMap::default();
        }
        if t.incoming_qos2.is_empty() {
            t.incoming_qos2 = IdSet::default();
        }
        if t.unacked.is_empty() {
            t.unacked = IdMap::default();
        }
        if t.acked_qos1.is_empty() {
            t.acked_qos1 = IdMap::default();
            t.acked_sent = VecDeque::new();
        }
    }

    /// Number of outgoing publishes waiting for the window to open.
    pub fn queued_len(&self) -> usize {
        self.t.queue.len()
    }

    /// A PINGREQ was sent (or handed to the transport) and no packet has come since.
    pub fn awaiting_pingresp(&self) -> bool {
        self.ping_sent_at.is_some()
    }

    /// Number of outgoing QoS 1/2 publishes counted against the window (sent, not completed).
    pub fn inflight_len(&self) -> usize {
        self.inflight
    }

    /// The current in-flight window: `min(max_inflight, server Receive Maximum)`.
    pub fn send_window(&self) -> usize {
        usize::from(
            self.config
                .max_inflight
                .max(1)
                .min(self.server_receive_max.max(1)),
        )
    }

    /// The protocol version in use.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The keepalive interval in force (after the server's Server Keep Alive, if any).
    pub fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    /// The server's Maximum Packet Size from the last CONNACK, if it announced one.
    pub fn server_max_packet_size(&self) -> Option<usize> {
        self.server_max_packet_size
    }

    /// The Assigned Client Identifier from the last CONNACK (v5), if any.
    pub fn assigned_client_id(&self) -> Option<&str> {
        self.assigned_client_id.as_deref()
    }

    /// Restores in-flight state read back from a store, before the first `connect`.
    /// Accepts `PUBLISH` (sent, unacknowledged), `PUBREL` (sent, not completed) and, for
    /// received QoS 2 messages, `PUBREC` packets carrying the packet id (a `PUBLISH` is
    /// accepted too).
    ///
    /// Outgoing flows are resent in the order they are restored (call in original sending
    /// order; by packet id if the store keeps no order). A PUBLISH is resent with DUP=1. A
    /// PUBREL for an id that also has a PUBLISH supersedes it (the store was caught between
    /// the two writes at PUBREC); a PUBLISH for an id already at PUBREL is ignored. Either
    /// way the stale PUBLISH record is removed (`Event::Persist(Remove(SentPublish))` with
    /// `persist_events`), so it cannot come back after a later restart.
    pub fn restore(&mut self, key: PersistKey, packet: Packet) -> Result<(), CommandError> {
        if self.conn != ConnState::Disconnected {
            return Err(CommandError::NotAllowed("restore on a live connection"));
        }
        let invalid = |what| Err(CommandError::Encode(EncodeError::Invalid(what)));
        match (key, packet) {
            (PersistKey::SentPublish(id), Packet::Publish(mut p)) => {
                if id == 0 || p.qos == QoS::AtMostOnce || p.topic.is_empty() {
                    return invalid("restored PUBLISH needs QoS 1/2, a packet id and a topic");
                }
                if let Some(flow) = self.t.flows.get(&id) {
                    if matches!(flow.stage, Stage::Released(_)) {
                        debug!("restore: PUBLISH {id} superseded by its PUBREL");
                        // Drop the stale record too: only the PUBREL's is removed when the
                        // flow completes, and a PUBLISH left behind would be resent as a new
                        // message after the next restart (a QoS 2 duplicate).
                        self.persist(PersistOp::Remove(PersistKey::SentPublish(id)));
                        return Ok(());
                    }
                }
                if self.t.requests.contains_key(&id) {
                    return Err(CommandError::NoPacketId);
                }
                p.pkid = id;
                p.dup = false;
                let seq = self.take_seq();
                self.t.flows.insert(
                    id,
                    OutFlow {
                        seq,
                        transmitted: true,
                        stage: Stage::Sent(p),
                    },
                );
                self.inflight = self.count_inflight();
                Ok(())
            }
            (PersistKey::SentPubRel(id), Packet::PubRel(mut r)) => {
                if id == 0 {
                    return invalid("restored PUBREL needs a packet id");
                }
                if self.t.requests.contains_key(&id) {
                    return Err(CommandError::NoPacketId);
                }
                r.pkid = id;
                if matches!(
                    self.t.flows.get(&id).map(|f| &f.stage),
                    Some(Stage::Sent(_))
                ) {
                    debug!("restore: PUBREL {id} supersedes its PUBLISH");
                    self.persist(PersistOp::Remove(PersistKey::SentPublish(id)));
                }
                let seq = self.take_seq();
                self.t.flows.insert(
                    id,
                    OutFlow {
                        seq,
                        transmitted: true,
                        stage: Stage::Released(r),
                    },
                );
                self.inflight = self.count_inflight();
                Ok(())
            }
            (PersistKey::ReceivedQos2(id), Packet::PubRec(_) | Packet::Publish(_)) => {
                if id == 0 {
                    return invalid("restored QoS 2 state needs a packet id");
                }
                self.t.incoming_qos2.insert(id);
                Ok(())
            }
            _ => invalid("packet does not match its persistence key"),
        }
    }

    /// The CONNACK of the current connection, if connected.
    pub fn connack(&self) -> Option<&ConnAck> {
        match self.conn {
            ConnState::Connected | ConnState::Closing => self.connack.as_ref(),
            _ => None,
        }
    }

    // ----- internals -----

    fn reset_connection(&mut self) {
        // PUBACKs that went out on this connection may or may not have arrived: on the next
        // one a resend is delivered again (QoS 1 allows it) rather than risk answering a new
        // message that reuses the id. PUBACKs not yet sent still answer the resend.
        self.conn = ConnState::Disconnected;
        self.connack = None;
        if let Some(t) = self.t.existing_mut() {
            for id in t.acked_sent.drain(..) {
                t.acked_qos1.remove(&id);
            }
            t.out.clear();
            t.held.clear();
            t.requests.clear();
            t.in_aliases.clear();
            t.app_aliases.clear();
            t.conn_out_aliases.clear();
        }
        self.ping_sent_at = None;
        self.last_sent = None;
        self.last_received = None;
        // A Sent flow whose PUBLISH was still in `out` stays Sent with transmitted=false:
        // it is regenerated at the next CONNACK with DUP=0.
    }

    fn ping_timeout(&self) -> Duration {
        self.config.ping_timeout.unwrap_or(self.keep_alive / 2)
    }

    /// When the next PINGREQ is due (no ping outstanding).
    fn ping_due(&self) -> Option<Instant> {
        let base = match (self.last_sent, self.last_received) {
            (Some(s), Some(r)) => s.min(r),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => return None,
        };
        base.checked_add(self.keep_alive)
    }

    fn take_seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    fn pkid_in_use(&self, id: u16) -> bool {
        self.t.flows.contains_key(&id) || self.t.requests.contains_key(&id)
    }

    /// Next free packet id (not yet marked used: the caller inserts it).
    fn alloc_pkid(&mut self) -> Result<u16, CommandError> {
        if self.t.flows.len() + self.t.requests.len() >= usize::from(u16::MAX) {
            return Err(CommandError::NoPacketId);
        }
        loop {
            let id = self.next_pkid;
            self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
            if id != 0 && !self.pkid_in_use(id) {
                return Ok(id);
            }
        }
    }

    fn check_size(&self, publish: &Publish) -> Result<(), CommandError> {
        if self.server_max_packet_size.is_some() {
            self.check_packet_size(&Packet::Publish(publish.clone()))?;
        }
        Ok(())
    }

    fn check_packet_size(&self, packet: &Packet) -> Result<(), CommandError> {
        if let Some(max) = self.server_max_packet_size {
            let size = codec::encoded_len(packet, self.version)?;
            if size > max {
                return Err(CommandError::PacketTooLarge { size, max });
            }
        }
        Ok(())
    }

    fn persist(&mut self, op: PersistOp) {
        if self.config.persist_events {
            self.t.events.push_back(Event::Persist(op));
        }
    }

    /// A command packet: out now when connected, else held until CONNACK.
    fn command(&mut self, packet: Packet) {
        if self.conn == ConnState::Connected {
            self.t.out.push_back(Out::Packet(packet));
        } else {
            self.t.held.push_back(packet);
        }
    }

    /// A response to a server packet: dropped once DISCONNECT is queued.
    fn respond(&mut self, packet: Packet) {
        if self.conn == ConnState::Connected {
            self.t.out.push_back(Out::Packet(packet));
        } else {
            trace!("not sending {}: connection closing", packet.name());
        }
    }

    fn count_inflight(&self) -> usize {
        self.t
            .flows
            .values()
            .filter(|f| !matches!(f.stage, Stage::Queued(_)))
            .count()
    }

    /// Moves queued publishes into the connection while the window allows.
    fn drain_queue(&mut self) {
        if self.conn != ConnState::Connected {
            return;
        }
        let window = self.send_window();
        while self.inflight < window {
            let Some(pkid) = self.t.existing_mut().and_then(|t| t.queue.pop_front()) else {
                break;
            };
            let Some(flow) = self.t.flows.get_mut(&pkid) else {
                continue;
            };
            let stage = std::mem::replace(&mut flow.stage, Stage::Released(PubResp::new(pkid)));
            match stage {
                Stage::Queued(p) => {
                    flow.stage = Stage::Sent(p);
                    self.inflight += 1;
                    self.t.out.push_back(Out::Flow(pkid));
                }
                other => flow.stage = other,
            }
        }
    }

    /// Blanks or records the topic of an outgoing v5 publish with a topic alias.
    fn apply_out_alias(&mut self, p: &mut Publish) {
        let Some(a) = topic_alias(&p.properties) else {
            return;
        };
        let a = match u16::try_from(a) {
            Ok(a) if a != 0 && a <= self.server_topic_alias_max => a,
            _ => {
                debug!("dropping topic alias {a}: not allowed on this connection");
                p.properties.remove(prop::TOPIC_ALIAS);
                return;
            }
        };
        if p.topic.is_empty() {
            return;
        }
        if self.t.conn_out_aliases.get(&a) == Some(&p.topic) {
            p.topic = String::new();
        } else {
            self.t.conn_out_aliases.insert(a, p.topic.clone());
        }
    }

    fn handle_connack(&mut self, now: Instant, ack: ConnAck) -> Result<(), SessionError> {
        if ack.code != 0 {
            debug!("connection refused: code {:#x}", ack.code);
            self.reset_connection();
            self.t.events.push_back(Event::ConnectionRefused(ack));
            return Ok(());
        }
        if self.clean_start && ack.session_present {
            return Err(protocol("session present with clean start (MQTT-3.2.2-4)"));
        }
        let mut receive_max = u16::MAX;
        let mut max_packet = None;
        let mut alias_max = 0u16;
        let mut max_qos = QoS::ExactlyOnce;
        let mut retain = true;
        let mut keep_alive = self.keep_alive;
        let mut assigned = None;
        if self.version.is_v5() {
            let props = &ack.properties;
            if let Some(v) = props.get_int(prop::RECEIVE_MAXIMUM) {
                receive_max = match u16::try_from(v) {
                    Ok(v) if v != 0 => v,
                    _ => return Err(protocol("Receive Maximum 0 in CONNACK")),
                };
            }
            if let Some(v) = props.get_int(prop::MAXIMUM_PACKET_SIZE) {
                if v == 0 {
                    return Err(protocol("Maximum Packet Size 0 in CONNACK"));
                }
                max_packet = Some(usize::try_from(v).unwrap_or(usize::MAX));
            }
            if let Some(v) = props.get_int(prop::TOPIC_ALIAS_MAXIMUM) {
                alias_max = u16::try_from(v).unwrap_or(u16::MAX);
            }
            if let Some(v) = props.get_int(prop::MAXIMUM_QOS) {
                max_qos = match v {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => return Err(protocol("invalid Maximum QoS in CONNACK")),
                };
            }
            if let Some(v) = props.get_int(prop::RETAIN_AVAILABLE) {
                retain = match v {
                    0 => false,
                    1 => true,
                    _ => return Err(protocol("invalid Retain Available in CONNACK")),
                };
            }
            if let Some(v) = props.get_int(prop::SERVER_KEEP_ALIVE) {
                keep_alive = Duration::from_secs(u64::from(v));
            }
            assigned = props
                .get_str(prop::ASSIGNED_CLIENT_IDENTIFIER)
                .map(str::to_owned);
        }
        debug!(
            "connected: session present {}, receive max {receive_max}, max packet {max_packet:?}, keepalive {keep_alive:?}",
            ack.session_present
        );
        self.limits_known = true;
        self.server_receive_max = receive_max;
        self.server_max_packet_size = max_packet;
        self.server_topic_alias_max = alias_max;
        self.server_max_qos = max_qos;
        self.server_retain_available = retain;
        self.keep_alive = keep_alive;
        if assigned.is_some() {
            self.assigned_client_id = assigned;
        }
        self.conn = ConnState::Connected;
        self.connack = Some(ack.clone());
        self.last_received = Some(now);
        self.ping_sent_at = None;
        let session_present = ack.session_present;
        self.t.events.push_back(Event::Connected(ack));
        self.resend(session_present);
        while let Some(p) = self.t.existing_mut().and_then(|t| t.held.pop_front()) {
            self.t.out.push_back(Out::Packet(p));
        }
        self.drain_queue();
        Ok(())
    }

    /// Regenerates the outgoing flows after CONNACK (see the module policy).
    fn resend(&mut self, session_present: bool) {
        // Taken whatever the CONNACK says: it holds for this connection only.
        let server_changed = std::mem::take(&mut self.server_changed);
        let forget_incoming = !session_present || server_changed;
        let mut sent: Vec<(u64, u16)> = self
            .t
            .flows
            .iter()
            .filter(|(_, f)| !matches!(f.stage, Stage::Queued(_)))
            .map(|(id, f)| (f.seq, *id))
            .collect();
        sent.sort_unstable();
        if !session_present {
            sent.retain(|&(_, id)| {
                let released = matches!(
                    self.t.flows.get(&id).map(|f| &f.stage),
                    Some(Stage::Released(_))
                );
                if released {
                    debug!("session not present: completing QoS 2 flow {id} locally");
                    self.t.flows.remove(&id);
                    if self.config.persist_events {
                        self.t.events.push_back(Event::Persist(PersistOp::Remove(
                            PersistKey::SentPubRel(id),
                        )));
                    }
                    self.t.events.push_back(Event::PublishDone {
                        pkid: id,
                        ack: Packet::PubComp(PubResp::new(id)),
                    });
                }
                !released
            });
        }
        if forget_incoming {
            self.forget_incoming();
        }
        let window = self.send_window();
        let mut inflight = self
            .t
            .flows
            .values()
            .filter(|f| matches!(f.stage, Stage::Released(_)))
            .count();
        let mut deferred = Vec::new();
        let t = &mut *self.t;
        for (_, id) in sent {
            let Some(flow) = t.flows.get_mut(&id) else {
                continue;
            };
            let stage = std::mem::replace(&mut flow.stage, Stage::Released(PubResp::new(id)));
            match stage {
                Stage::Released(r) => {
                    t.out.push_back(Out::Packet(Packet::PubRel(r.clone())));
                    flow.stage = Stage::Released(r);
                }
                Stage::Sent(p) if inflight < window => {
                    flow.stage = Stage::Sent(p);
                    inflight += 1;
                    t.out.push_back(Out::Flow(id));
                }
                Stage::Sent(p) | Stage::Queued(p) => {
                    flow.stage = Stage::Queued(p);
                    deferred.push(id);
                }
            }
        }
        for id in deferred.into_iter().rev() {
            t.queue.push_front(id);
        }
        self.inflight = inflight;
    }

    /// The incoming side starts afresh: the server's session is not the one the ids of
    /// the messages received so far belong to (a new session, or another server's).
    /// Acknowledgements owed there must not reach it, where the same ids may name other
    /// messages, nor may a new message there be taken for a resend of one of them.
    fn forget_incoming(&mut self) {
        let mut received: Vec<u16> = self.t.incoming_qos2.drain().collect();
        received.sort_unstable();
        for id in received {
            self.persist(PersistOp::Remove(PersistKey::ReceivedQos2(id)));
        }
        self.t.unacked.clear();
        self.t.acked_qos1.clear();
        self.t.acked_sent.clear();
    }

    fn handle_auth(&mut self, auth: Auth) -> Result<(), SessionError> {
        if !self.version.is_v5() {
            return Err(protocol("AUTH in MQTT 3"));
        }
        self.t.events.push_back(Event::Auth(auth));
        Ok(())
    }

    fn handle_disconnect(&mut self, d: Disconnect) -> Result<(), SessionError> {
        if !self.version.is_v5() {
            return Err(protocol("DISCONNECT from the server in MQTT 3"));
        }
        debug!("server DISCONNECT, reason {:#x}", d.reason);
        self.reset_connection();
        self.t.events.push_back(Event::ServerDisconnect(d));
        Ok(())
    }

    fn handle_publish(&mut self, mut p: Publish) -> Result<(), SessionError> {
        if self.version.is_v5() {
            if let Some(a) = topic_alias(&p.properties) {
                let a16 = match u16::try_from(a) {
                    Ok(v) if v != 0 && v <= self.client_topic_alias_max => v,
                    _ => return Err(SessionError::TopicAliasInvalid(a)),
                };
                if p.topic.is_empty() {
                    match self.t.in_aliases.get(&a16) {
                        Some(t) => p.topic = t.clone(),
                        None => return Err(SessionError::TopicAliasInvalid(a)),
                    }
                } else {
                    self.t.in_aliases.insert(a16, p.topic.clone());
                }
            }
        }
        if p.topic.is_empty() {
            return Err(protocol("PUBLISH with an empty topic name"));
        }
        if p.topic.contains(['+', '#']) {
            return Err(SessionError::TopicNameInvalid(p.topic));
        }
        if p.qos != QoS::AtMostOnce && p.pkid == 0 {
            return Err(protocol("QoS 1/2 PUBLISH with packet id 0"));
        }
        trace!(
            "message: QoS {} pkid {} payload {} bytes",
            p.qos as u8,
            p.pkid,
            p.payload.len()
        );
        match p.qos {
            QoS::AtMostOnce => self.t.events.push_back(Event::Message(p)),
            QoS::AtLeastOnce | QoS::ExactlyOnce => {
                let pkid = p.pkid;
                if self.t.unacked.contains_key(&pkid) {
                    // MQTT-4.3.2/4.3.3: the same id before our acknowledgement is the same
                    // message, resent; the first copy is still with the application.
                    debug!("PUBLISH {pkid} again while the first copy is unacknowledged: not delivered twice");
                } else if p.qos == QoS::ExactlyOnce && self.t.incoming_qos2.contains(&pkid) {
                    debug!("QoS 2 PUBLISH {pkid} again before PUBREL: not delivered twice");
                    self.respond(Packet::PubRec(PubResp::new(pkid)));
                } else if p.qos == QoS::AtLeastOnce
                    && p.dup
                    && self.t.acked_qos1.contains_key(&pkid)
                {
                    debug!("QoS 1 PUBLISH {pkid} resent, already acknowledged: PUBACK");
                    self.respond(Packet::PubAck(PubResp::new(pkid)));
                } else {
                    if p.qos == QoS::AtLeastOnce && self.t.acked_qos1.remove(&pkid).is_some() {
                        // DUP 0: a new message; the broker had our PUBACK and reused the id.
                        self.t.acked_sent.retain(|&id| id != pkid);
                    }
                    self.t.unacked.insert(pkid, p.qos);
                    self.t.events.push_back(Event::Message(p));
                }
            }
        }
        Ok(())
    }

    /// Ends an outgoing flow: frees its id, opens the window.
    fn finish_flow(&mut self, pkid: u16, key: PersistKey, ack: Packet) {
        self.t.flows.remove(&pkid);
        self.inflight = self.inflight.saturating_sub(1);
        self.persist(PersistOp::Remove(key));
        self.t.events.push_back(Event::PublishDone { pkid, ack });
        self.drain_queue();
    }

    fn handle_puback(&mut self, r: PubResp) {
        let pkid = r.pkid;
        match self.t.flows.get(&pkid).map(|f| &f.stage) {
            Some(Stage::Sent(p)) if p.qos == QoS::AtLeastOnce => {
                self.finish_flow(pkid, PersistKey::SentPublish(pkid), Packet::PubAck(r));
            }
            Some(_) => debug!("PUBACK {pkid} does not match the flow's state: ignored"),
            None => debug!("PUBACK for unknown packet id {pkid}: ignored"),
        }
    }

    fn handle_pubrec(&mut self, r: PubResp) {
        let pkid = r.pkid;
        let v5 = self.version.is_v5();
        match self.t.flows.get(&pkid).map(|f| &f.stage) {
            Some(Stage::Sent(p)) if p.qos == QoS::ExactlyOnce => {
                if v5 && r.reason >= 0x80 {
                    debug!("PUBREC {pkid} failed with reason {:#x}", r.reason);
                    self.finish_flow(pkid, PersistKey::SentPublish(pkid), Packet::PubRec(r));
                    return;
                }
                let rel = PubResp::new(pkid);
                let seq = self.take_seq();
                if let Some(flow) = self.t.flows.get_mut(&pkid) {
                    flow.stage = Stage::Released(rel.clone());
                    flow.seq = seq;
                }
                self.persist(PersistOp::Put(
                    PersistKey::SentPubRel(pkid),
                    Packet::PubRel(rel.clone()),
                ));
                self.persist(PersistOp::Remove(PersistKey::SentPublish(pkid)));
                self.respond(Packet::PubRel(rel));
            }
            Some(Stage::Released(rel)) => {
                debug!("PUBREC {pkid} again: resending PUBREL");
                let rel = rel.clone();
                self.respond(Packet::PubRel(rel));
            }
            Some(_) => debug!("PUBREC {pkid} does not match the flow's state: ignored"),
            None if v5 => {
                debug!("PUBREC for unknown packet id {pkid}: PUBREL 0x92");
                self.respond(Packet::PubRel(PubResp {
                    pkid,
                    reason: reason::PACKET_IDENTIFIER_NOT_FOUND,
                    properties: Properties::new(),
                }));
            }
            None => debug!("PUBREC for unknown packet id {pkid}: ignored"),
        }
    }

    fn handle_pubcomp(&mut self, r: PubResp) {
        let pkid = r.pkid;
        match self.t.flows.get(&pkid).map(|f| &f.stage) {
            Some(Stage::Released(_)) => {
                self.finish_flow(pkid, PersistKey::SentPubRel(pkid), Packet::PubComp(r));
            }
            Some(_) => debug!("PUBCOMP {pkid} before PUBREC: ignored"),
            None => debug!("PUBCOMP for unknown packet id {pkid}: ignored"),
        }
    }

    fn handle_pubrel(&mut self, r: PubResp) {
        let pkid = r.pkid;
        let mut comp = PubResp::new(pkid);
        if self.t.incoming_qos2.remove(&pkid) {
            self.persist(PersistOp::Remove(PersistKey::ReceivedQos2(pkid)));
        } else if self.version.is_v5() {
            debug!("PUBREL for unknown packet id {pkid}: PUBCOMP 0x92");
            comp.reason = reason::PACKET_IDENTIFIER_NOT_FOUND;
        } else {
            debug!("PUBREL for unknown packet id {pkid}: PUBCOMP");
        }
        self.respond(Packet::PubComp(comp));
    }

    fn handle_suback(&mut self, ack: SubAck) -> Result<(), SessionError> {
        match self.t.requests.get(&ack.pkid) {
            Some(Request::Subscribe(n)) => {
                if ack.return_codes.len() != *n {
                    return Err(protocol(format!(
                        "SUBACK {} has {} return codes for {} filters",
                        ack.pkid,
                        ack.return_codes.len(),
                        n
                    )));
                }
                self.t.requests.remove(&ack.pkid);
                self.t.events.push_back(Event::SubscribeDone(ack));
            }
            _ => debug!("SUBACK for unknown packet id {}: ignored", ack.pkid),
        }
        Ok(())
    }

    fn handle_unsuback(&mut self, ack: UnsubAck) -> Result<(), SessionError> {
        match self.t.requests.get(&ack.pkid) {
            Some(Request::Unsubscribe(n)) => {
                if self.version.is_v5() && ack.reason_codes.len() != *n {
                    return Err(protocol(format!(
                        "UNSUBACK {} has {} reason codes for {} filters",
                        ack.pkid,
                        ack.reason_codes.len(),
                        n
                    )));
                }
                self.t.requests.remove(&ack.pkid);
                self.t.events.push_back(Event::UnsubscribeDone(ack));
            }
            _ => debug!("UNSUBACK for unknown packet id {}: ignored", ack.pkid),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const V3: ProtocolVersion = ProtocolVersion::V311;
    const V5: ProtocolVersion = ProtocolVersion::V5;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn config(version: ProtocolVersion) -> SessionConfig {
        SessionConfig {
            version,
            keep_alive: Duration::ZERO,
            ..SessionConfig::default()
        }
    }

    fn connect_packet(version: ProtocolVersion) -> Connect {
        Connect {
            protocol: version,
            clean_start: false,
            keep_alive: 0,
            client_id: "c".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        }
    }

    fn connack(session_present: bool) -> Packet {
        Packet::ConnAck(ConnAck {
            session_present,
            code: 0,
            properties: Properties::new(),
        })
    }

    fn connack_props(properties: Properties) -> Packet {
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: 0,
            properties,
        })
    }

    fn publish(topic: &str, qos: QoS) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            pkid: 0,
            payload: Bytes::from_static(b"payload"),
            properties: Properties::new(),
        }
    }

    fn incoming(topic: &str, qos: QoS, pkid: u16) -> Packet {
        Packet::Publish(Publish {
            pkid,
            ..publish(topic, qos)
        })
    }

    fn resp(pkid: u16) -> PubResp {
        PubResp::new(pkid)
    }

    fn resp_reason(pkid: u16, reason: u8) -> PubResp {
        PubResp {
            pkid,
            reason,
            properties: Properties::new(),
        }
    }

    /// Everything queued for the transport.
    fn sent(s: &mut Session, now: Instant) -> Vec<Packet> {
        std::iter::from_fn(|| s.poll_packet(now)).collect()
    }

    fn events(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    /// Connects `s` at `now` with the given CONNACK; returns the packets sent after CONNACK.
    fn reconnect(s: &mut Session, now: Instant, ack: Packet) -> Vec<Packet> {
        let version = s.version();
        s.connect(now, connect_packet(version)).unwrap();
        let first = sent(s, now);
        assert!(
            matches!(first.as_slice(), [Packet::Connect(_)]),
            "{first:?}"
        );
        s.handle_packet(now, ack).unwrap();
        sent(s, now)
    }

    fn connected(cfg: SessionConfig, now: Instant) -> Session {
        let mut s = Session::new(cfg);
        let after = reconnect(&mut s, now, connack(false));
        assert!(after.is_empty());
        assert!(matches!(events(&mut s).as_slice(), [Event::Connected(_)]));
        s
    }

    fn pub_ids(packets: &[Packet]) -> Vec<(u16, bool)> {
        packets
            .iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((p.pkid, p.dup)),
                _ => None,
            })
            .collect()
    }

    // ----- connect -----

    /// Every record the session asks to store reads back through the persistence layer
    /// and restores into a fresh session: outgoing PUBLISH, outgoing PUBREL and the
    /// received-QoS 2 marker (the marker was refused by the loader for a while, a PUBREC
    /// where it expected a PUBLISH).
    #[test]
    fn every_record_the_session_stores_restores() {
        use crate::persist::{MemoryStore, Persister};
        for v in [V3, V5] {
            let t0 = Instant::now();
            let cfg = SessionConfig {
                persist_events: true,
                ..config(v)
            };
            let mut s = connected(cfg.clone(), t0);
            let q1 = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
            let q2 = s.publish(publish("b", QoS::ExactlyOnce)).unwrap();
            s.handle_packet(t0, Packet::PubRec(PubResp::new(q2)))
                .unwrap();
            s.handle_packet(
                t0,
                Packet::Publish(Publish {
                    pkid: 9,
                    ..publish("in", QoS::ExactlyOnce)
                }),
            )
            .unwrap();
            s.ack(9).unwrap();
            let mut p = Persister::new(Box::new(MemoryStore::new()), v);
            p.open("c", "tcp://h:1883").unwrap();
            for e in events(&mut s) {
                if let Event::Persist(op) = e {
                    p.apply(&op).unwrap();
                }
            }
            let (good, bad) = p.load();
            assert!(bad.is_empty(), "{v:?}: {bad:?}");
            let mut keys: Vec<PersistKey> = good.iter().map(|(k, _)| *k).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    PersistKey::SentPublish(q1),
                    PersistKey::SentPubRel(q2),
                    PersistKey::ReceivedQos2(9)
                ],
                "{v:?}"
            );
            let mut fresh = Session::new(cfg);
            for (k, packet) in good {
                fresh.restore(k, packet).unwrap();
            }
        }
    }

    #[test]
    fn nothing_but_connect_before_connack() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V3));
        s.connect(t0, connect_packet(V3)).unwrap();
        let id = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        let sub = s
            .subscribe(
                vec![SubscribeFilter {
                    filter: "x".into(),
                    options: SubscribeOptions::default(),
                }],
                Properties::new(),
            )
            .unwrap();
        s.publish(publish("q0", QoS::AtMostOnce)).unwrap();
        let out = sent(&mut s, t0);
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0], Packet::Connect(_)));
        assert!(!s.is_connected());
        assert_eq!(s.pending_publishes(), vec![id]);

        s.handle_packet(t0, connack(false)).unwrap();
        assert!(s.is_connected());
        assert!(matches!(events(&mut s).as_slice(), [Event::Connected(_)]));
        let out = sent(&mut s, t0);
        // Held commands (in order), then the publish queue.
        assert!(matches!(&out[0], Packet::Subscribe(x) if x.pkid == sub));
        assert!(matches!(&out[1], Packet::Publish(p) if p.qos == QoS::AtMostOnce));
        assert!(matches!(&out[2], Packet::Publish(p) if p.pkid == id && !p.dup));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn connect_overwrites_keepalive_and_adds_max_packet_size_v5() {
        let t0 = Instant::now();
        let mut cfg = config(V5);
        cfg.keep_alive = Duration::from_millis(1500);
        cfg.max_incoming_packet_size = 1024;
        let mut s = Session::new(cfg.clone());
        s.connect(t0, connect_packet(V5)).unwrap();
        let Some(Packet::Connect(c)) = s.poll_packet(t0) else {
            panic!("no CONNECT")
        };
        assert_eq!(c.keep_alive, 2);
        assert_eq!(c.properties.get_int(prop::MAXIMUM_PACKET_SIZE), Some(1024));

        // An explicit property is left alone.
        let mut s = Session::new(cfg.clone());
        let mut cp = connect_packet(V5);
        cp.properties
            .push(Property::FourByte(prop::MAXIMUM_PACKET_SIZE, 4096));
        s.connect(t0, cp).unwrap();
        let Some(Packet::Connect(c)) = s.poll_packet(t0) else {
            panic!("no CONNECT")
        };
        assert_eq!(c.properties.0.len(), 1);
        assert_eq!(c.properties.get_int(prop::MAXIMUM_PACKET_SIZE), Some(4096));

        // MQTT 3.x: no properties at all.
        cfg.version = V3;
        let mut s = Session::new(cfg);
        let mut cp = connect_packet(V3);
        cp.properties
            .push(Property::TwoByte(prop::RECEIVE_MAXIMUM, 5));
        s.connect(t0, cp).unwrap();
        let Some(Packet::Connect(c)) = s.poll_packet(t0) else {
            panic!("no CONNECT")
        };
        assert!(c.properties.is_empty());
    }

    #[test]
    fn connack_refused() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V3));
        s.connect(t0, connect_packet(V3)).unwrap();
        sent(&mut s, t0);
        let refusal = ConnAck {
            session_present: false,
            code: 5,
            properties: Properties::new(),
        };
        s.handle_packet(t0, Packet::ConnAck(refusal.clone()))
            .unwrap();
        assert_eq!(events(&mut s), vec![Event::ConnectionRefused(refusal)]);
        assert!(!s.is_connected());
        assert!(s.connack().is_none());
    }

    #[test]
    fn packets_out_of_place_are_protocol_errors() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V3));
        assert!(matches!(
            s.handle_packet(t0, Packet::PingResp),
            Err(SessionError::Protocol(_))
        ));
        s.connect(t0, connect_packet(V3)).unwrap();
        let e = s
            .handle_packet(t0, incoming("a", QoS::AtMostOnce, 0))
            .unwrap_err();
        assert!(matches!(e, SessionError::Protocol(_)));
        assert_eq!(e.reason_code(), reason::PROTOCOL_ERROR);

        let mut s = connected(config(V3), t0);
        assert!(matches!(
            s.handle_packet(t0, connack(false)),
            Err(SessionError::Protocol(_))
        ));
        assert!(matches!(
            s.handle_packet(t0, Packet::PingReq),
            Err(SessionError::Protocol(_))
        ));
        // Servers do not send DISCONNECT in 3.1.1.
        assert!(matches!(
            s.handle_packet(t0, Packet::Disconnect(Disconnect::default())),
            Err(SessionError::Protocol(_))
        ));
    }

    #[test]
    fn session_present_with_clean_start_is_protocol_error() {
        // MQTT-3.2.2-4
        let t0 = Instant::now();
        let mut s = Session::new(config(V3));
        let mut cp = connect_packet(V3);
        cp.clean_start = true;
        s.connect(t0, cp).unwrap();
        assert!(matches!(
            s.handle_packet(t0, connack(true)),
            Err(SessionError::Protocol(_))
        ));
    }

    // ----- outgoing flows -----

    #[test]
    fn outgoing_qos0() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        let mut p = publish("a", QoS::AtMostOnce);
        p.pkid = 77;
        assert_eq!(s.publish(p).unwrap(), 0);
        let out = sent(&mut s, t0);
        assert!(matches!(&out[..], [Packet::Publish(p)] if p.pkid == 0));
        assert!(events(&mut s).is_empty());
        assert!(s.pending_publishes().is_empty());
    }

    #[test]
    fn outgoing_qos1() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        let id = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        assert_eq!(id, 1);
        let out = sent(&mut s, t0);
        assert!(matches!(&out[..], [Packet::Publish(p)] if p.pkid == id && !p.dup));
        assert_eq!(s.pending_publishes(), vec![id]);
        s.handle_packet(t0, Packet::PubAck(resp(id))).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::PublishDone {
                pkid: id,
                ack: Packet::PubAck(resp(id))
            }]
        );
        assert!(s.pending_publishes().is_empty());
        assert_eq!(s.inflight_len(), 0);
    }

    #[test]
    fn releasing_idle_memory_keeps_flows_and_state() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        let a = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(a, false)]);
        // Mid-flow: the pending flow must survive; empty queues are dropped.
        s.release_idle_memory();
        assert_eq!(s.pending_publishes(), vec![a]);
        s.handle_packet(t0, Packet::PubAck(resp(a))).unwrap();
        assert!(
            matches!(events(&mut s).as_slice(), [Event::PublishDone { pkid, .. }] if *pkid == a)
        );
        s.release_idle_memory();
        // And the session works as before afterwards.
        let b = s.publish(publish("b", QoS::ExactlyOnce)).unwrap();
        assert_ne!(b, 0);
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(b, false)]);
        assert_eq!(s.inflight_len(), 1);
    }

    #[test]
    fn outgoing_qos2() {
        let t0 = Instant::now();
        let mut s = connected(config(V5), t0);
        let id = s.publish(publish("a", QoS::ExactlyOnce)).unwrap();
        sent(&mut s, t0);
        // PUBCOMP before PUBREC and a PUBACK for a QoS 2 flow are ignored.
        s.handle_packet(t0, Packet::PubComp(resp(id))).unwrap();
        s.handle_packet(t0, Packet::PubAck(resp(id))).unwrap();
        assert!(events(&mut s).is_empty());
        assert!(sent(&mut s, t0).is_empty());

        s.handle_packet(t0, Packet::PubRec(resp(id))).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRel(resp(id))]);
        assert!(events(&mut s).is_empty());
        // A repeated PUBREC gets the PUBREL again.
        s.handle_packet(t0, Packet::PubRec(resp(id))).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRel(resp(id))]);

        s.handle_packet(t0, Packet::PubComp(resp(id))).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::PublishDone {
                pkid: id,
                ack: Packet::PubComp(resp(id))
            }]
        );
        assert!(s.pending_publishes().is_empty());
    }

    #[test]
    fn outgoing_qos2_failed_pubrec_ends_flow_v5() {
        let t0 = Instant::now();
        let mut s = connected(config(V5), t0);
        let id = s.publish(publish("a", QoS::ExactlyOnce)).unwrap();
        sent(&mut s, t0);
        let rec = resp_reason(id, reason::QUOTA_EXCEEDED);
        s.handle_packet(t0, Packet::PubRec(rec.clone())).unwrap();
        assert!(
            sent(&mut s, t0).is_empty(),
            "no PUBREL after a failing PUBREC"
        );
        assert_eq!(
            events(&mut s),
            vec![Event::PublishDone {
                pkid: id,
                ack: Packet::PubRec(rec)
            }]
        );
        assert_eq!(s.inflight_len(), 0);
    }

    #[test]
    fn unknown_acks() {
        let t0 = Instant::now();
        let mut s = connected(config(V5), t0);
        s.handle_packet(t0, Packet::PubAck(resp(9))).unwrap();
        s.handle_packet(t0, Packet::PubComp(resp(9))).unwrap();
        assert!(sent(&mut s, t0).is_empty());
        s.handle_packet(t0, Packet::PubRec(resp(9))).unwrap();
        assert_eq!(
            sent(&mut s, t0),
            vec![Packet::PubRel(resp_reason(
                9,
                reason::PACKET_IDENTIFIER_NOT_FOUND
            ))]
        );
        // QoS 1 flow: a PUBREC does not fit it.
        let id = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        sent(&mut s, t0);
        s.handle_packet(t0, Packet::PubRec(resp(id))).unwrap();
        assert!(sent(&mut s, t0).is_empty());
        assert_eq!(s.pending_publishes(), vec![id]);
        assert!(events(&mut s).is_empty());

        let mut s = connected(config(V3), t0);
        s.handle_packet(t0, Packet::PubRec(resp(9))).unwrap();
        assert!(sent(&mut s, t0).is_empty());
    }

    #[test]
    fn unknown_pubrel_answered_with_pubcomp() {
        let t0 = Instant::now();
        let mut s = connected(config(V5), t0);
        s.handle_packet(t0, Packet::PubRel(resp(4))).unwrap();
        assert_eq!(
            sent(&mut s, t0),
            vec![Packet::PubComp(resp_reason(
                4,
                reason::PACKET_IDENTIFIER_NOT_FOUND
            ))]
        );
        // MQTT 3.1.1 4.3.3: always answer PUBREL with PUBCOMP (no reason code).
        let mut s = connected(config(V3), t0);
        s.handle_packet(t0, Packet::PubRel(resp(4))).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubComp(resp(4))]);
    }

    // ----- incoming flows -----

    #[test]
    fn incoming_qos0_and_qos1() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        s.handle_packet(t0, incoming("a", QoS::AtMostOnce, 0))
            .unwrap();
        assert!(sent(&mut s, t0).is_empty());
        s.handle_packet(t0, incoming("b", QoS::AtLeastOnce, 3))
            .unwrap();
        // Not acknowledged until the owner says the application has it.
        assert!(sent(&mut s, t0).is_empty());
        let ev = events(&mut s);
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], Event::Message(m) if m.topic == "a"));
        assert!(matches!(&ev[1], Event::Message(m) if m.topic == "b" && m.pkid == 3));
        assert_eq!(s.unacked_len(), 1);
        s.ack(3).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubAck(resp(3))]);
        assert_eq!(s.unacked_len(), 0);
        assert_eq!(s.ack(3), Err(AckError::Unknown(3)));
        assert_eq!(s.ack(0), Err(AckError::Unknown(0)));
        assert!(sent(&mut s, t0).is_empty());
    }

    #[test]
    fn incoming_resend_while_unacknowledged_is_not_delivered_twice() {
        // MQTT-4.3.2 / 4.3.3: until the receiver acknowledges, the same packet id is the
        // same message.
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t0 = Instant::now();
            let mut s = connected(config(V3), t0);
            s.handle_packet(t0, incoming("a", qos, 4)).unwrap();
            assert_eq!(events(&mut s).len(), 1);
            let mut dup = incoming("a", qos, 4);
            if let Packet::Publish(p) = &mut dup {
                p.dup = true;
            }
            s.handle_packet(t0, dup.clone()).unwrap();
            assert!(events(&mut s).is_empty(), "{qos:?}");
            assert!(sent(&mut s, t0).is_empty(), "{qos:?}");
            // The same after a reconnect with the session present: the broker resends.
            s.connection_lost();
            reconnect(&mut s, t0, connack(true));
            events(&mut s);
            s.handle_packet(t0, dup.clone()).unwrap();
            assert!(events(&mut s).is_empty(), "{qos:?}");
            // The application takes the first copy: the acknowledgement goes out on the
            // new connection.
            s.ack(4).unwrap();
            assert_eq!(sent(&mut s, t0), vec![receipt_ack(qos, 4)]);
        }
    }

    #[test]
    fn another_servers_session_does_not_share_the_ids_received_before() {
        // Failover within a server list: the second server resumes a session of its own,
        // whose message 4 is not the first server's message 4 still with the application.
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t0 = Instant::now();
            let mut s = connected(config(V3), t0);
            s.handle_packet(t0, incoming("a", qos, 4)).unwrap();
            assert_eq!(events(&mut s).len(), 1);
            s.connection_lost();
            s.set_server_changed(true);
            let after = reconnect(&mut s, t0, connack(true));
            assert!(
                after.is_empty(),
                "{qos:?}: nothing owed goes to the new server"
            );
            events(&mut s);
            s.handle_packet(t0, incoming("b", qos, 4)).unwrap();
            assert!(
                matches!(events(&mut s).as_slice(), [Event::Message(m)] if m.topic == "b"),
                "{qos:?}: the new server's message is delivered"
            );
            // One acknowledgement, the new message's; the first one's is not owed here.
            s.ack(4).unwrap();
            assert_eq!(sent(&mut s, t0), vec![receipt_ack(qos, 4)]);
            assert!(s.ack(4).is_err(), "{qos:?}");
            // The change holds for one CONNACK: back with the same server, a resend of an
            // unacknowledged message is recognised again.
            s.handle_packet(t0, incoming("c", qos, 5)).unwrap();
            events(&mut s);
            s.connection_lost();
            reconnect(&mut s, t0, connack(true));
            events(&mut s);
            s.handle_packet(t0, resent("c", qos, 5)).unwrap();
            assert!(events(&mut s).is_empty(), "{qos:?}: not delivered twice");
            // Also when that CONNACK said session not present.
            s.ack(5).unwrap();
            sent(&mut s, t0);
            s.connection_lost();
            s.set_server_changed(true);
            reconnect(&mut s, t0, connack(false));
            events(&mut s);
            s.handle_packet(t0, incoming("d", qos, 6)).unwrap();
            events(&mut s);
            s.connection_lost();
            reconnect(&mut s, t0, connack(true));
            events(&mut s);
            s.handle_packet(t0, resent("d", qos, 6)).unwrap();
            assert!(
                events(&mut s).is_empty(),
                "{qos:?}: the change did not outlast its CONNACK"
            );
        }
    }

    #[test]
    fn ack_while_disconnected_answers_the_resend() {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t0 = Instant::now();
            let mut s = connected(config(V3), t0);
            s.handle_packet(t0, incoming("a", qos, 9)).unwrap();
            events(&mut s);
            s.connection_lost();
            s.ack(9).unwrap();
            reconnect(&mut s, t0, connack(true));
            events(&mut s);
            assert!(
                sent(&mut s, t0).is_empty(),
                "{qos:?}: nothing before the resend"
            );
            s.handle_packet(t0, resent("a", qos, 9)).unwrap();
            assert!(events(&mut s).is_empty(), "{qos:?}: not delivered again");
            assert_eq!(sent(&mut s, t0), vec![receipt_ack(qos, 9)]);
            if qos == QoS::AtLeastOnce {
                // Once the PUBACK went out the id is free: a new message (DUP 0) may use it.
                s.handle_packet(t0, incoming("b", qos, 9)).unwrap();
                assert!(matches!(events(&mut s).as_slice(), [Event::Message(m)] if m.topic == "b"));
            }
        }
    }

    /// What acknowledges receipt of an incoming message of this QoS (1 or 2).
    fn receipt_ack(qos: QoS, pkid: u16) -> Packet {
        if qos == QoS::AtLeastOnce {
            Packet::PubAck(resp(pkid))
        } else {
            Packet::PubRec(resp(pkid))
        }
    }

    fn resent(topic: &str, qos: QoS, pkid: u16) -> Packet {
        let mut p = incoming(topic, qos, pkid);
        if let Packet::Publish(p) = &mut p {
            p.dup = true;
        }
        p
    }

    #[test]
    fn resend_crossing_our_puback_is_answered_not_delivered() {
        // The broker resends at reconnect (DUP 1) before it has read the PUBACK we sent
        // on the new connection: the same message, not a new one.
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        s.handle_packet(t0, incoming("a", QoS::AtLeastOnce, 5))
            .unwrap();
        events(&mut s);
        s.ack(5).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubAck(resp(5))]);
        s.handle_packet(t0, resent("a", QoS::AtLeastOnce, 5))
            .unwrap();
        assert!(events(&mut s).is_empty());
        assert_eq!(sent(&mut s, t0), vec![Packet::PubAck(resp(5))]);
        // DUP 0 with the same id: the broker had the PUBACK and reused the id.
        s.handle_packet(t0, incoming("b", QoS::AtLeastOnce, 5))
            .unwrap();
        assert!(matches!(events(&mut s).as_slice(), [Event::Message(m)] if m.topic == "b"));
        // A PUBACK that went out on a lost connection may have arrived: on the next one a
        // resend is delivered again (QoS 1 allows it) rather than taken for acknowledged.
        s.ack(5).unwrap();
        sent(&mut s, t0);
        s.connection_lost();
        reconnect(&mut s, t0, connack(true));
        events(&mut s);
        s.handle_packet(t0, resent("b", QoS::AtLeastOnce, 5))
            .unwrap();
        assert!(matches!(events(&mut s).as_slice(), [Event::Message(m)] if m.topic == "b"));
    }

    #[test]
    fn new_session_forgets_owed_acknowledgements() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        s.handle_packet(t0, incoming("a", QoS::AtLeastOnce, 5))
            .unwrap();
        s.handle_packet(t0, incoming("b", QoS::ExactlyOnce, 6))
            .unwrap();
        events(&mut s);
        s.connection_lost();
        reconnect(&mut s, t0, connack(false));
        events(&mut s);
        // The ids belong to the old session: no acknowledgement may reach the new one.
        assert_eq!(s.ack(5), Err(AckError::Unknown(5)));
        assert_eq!(s.ack(6), Err(AckError::Unknown(6)));
        assert!(sent(&mut s, t0).is_empty());
        // The same ids are new messages now.
        s.handle_packet(t0, incoming("c", QoS::AtLeastOnce, 5))
            .unwrap();
        assert!(matches!(events(&mut s).as_slice(), [Event::Message(m)] if m.topic == "c"));
    }

    #[test]
    fn wildcard_topic_from_server_is_refused() {
        // MQTT-3.3.2-2: the Topic Name in a PUBLISH sent by a server must not contain
        // wildcards; v5 closes with 0x90 Topic Name invalid.
        for topic in ["a/+", "#", "a/#", "+"] {
            let t0 = Instant::now();
            let mut s = connected(config(V5), t0);
            let e = s
                .handle_packet(t0, incoming(topic, QoS::AtMostOnce, 0))
                .unwrap_err();
            assert_eq!(e, SessionError::TopicNameInvalid(topic.to_string()));
            assert_eq!(e.reason_code(), reason::TOPIC_NAME_INVALID);
            assert!(events(&mut s).is_empty());
        }
    }

    #[test]
    fn incoming_qos2_delivered_once() {
        // MQTT-4.3.3-2 (3.1.1): until PUBREL, a PUBLISH with the same id is answered with
        // PUBREC and not delivered again.
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        s.handle_packet(t0, incoming("a", QoS::ExactlyOnce, 5))
            .unwrap();
        assert!(matches!(events(&mut s).as_slice(), [Event::Message(_)]));
        assert!(sent(&mut s, t0).is_empty());
        s.ack(5).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRec(resp(5))]);

        let mut dup = incoming("a", QoS::ExactlyOnce, 5);
        if let Packet::Publish(p) = &mut dup {
            p.dup = true;
        }
        s.handle_packet(t0, dup.clone()).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRec(resp(5))]);
        assert!(events(&mut s).is_empty());

        // Also across a reconnect with the session present.
        s.connection_lost();
        reconnect(&mut s, t0, connack(true));
        events(&mut s);
        s.handle_packet(t0, dup).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRec(resp(5))]);
        assert!(events(&mut s).is_empty());

        s.handle_packet(t0, Packet::PubRel(resp(5))).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubComp(resp(5))]);
        // After PUBREL the id is a new message.
        s.handle_packet(t0, incoming("a", QoS::ExactlyOnce, 5))
            .unwrap();
        assert!(matches!(events(&mut s).as_slice(), [Event::Message(_)]));
    }

    #[test]
    fn incoming_qos1_without_pkid_is_protocol_error() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        assert!(matches!(
            s.handle_packet(t0, incoming("a", QoS::AtLeastOnce, 0)),
            Err(SessionError::Protocol(_))
        ));
        assert!(matches!(
            s.handle_packet(t0, incoming("", QoS::AtMostOnce, 0)),
            Err(SessionError::Protocol(_))
        ));
    }

    // ----- window -----

    #[test]
    fn window_limits_inflight_and_queue_drains_in_order() {
        let t0 = Instant::now();
        let mut cfg = config(V3);
        cfg.max_inflight = 2;
        let mut s = connected(cfg, t0);
        let ids: Vec<u16> = (0..5)
            .map(|i| {
                let qos = if i % 2 == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                s.publish(publish("a", qos)).unwrap()
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(1, false), (2, false)]);
        assert_eq!(s.queued_len(), 3);
        assert_eq!(s.inflight_len(), 2);
        // QoS 0 is not held back by the window.
        s.publish(publish("z", QoS::AtMostOnce)).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(0, false)]);

        s.handle_packet(t0, Packet::PubAck(resp(1))).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(3, false)]);
        // PUBREC does not open the window: the flow still counts until PUBCOMP.
        s.handle_packet(t0, Packet::PubRec(resp(2))).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRel(resp(2))]);
        assert_eq!(s.queued_len(), 2);
        s.handle_packet(t0, Packet::PubComp(resp(2))).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(4, false)]);
        s.handle_packet(t0, Packet::PubAck(resp(3))).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(5, false)]);
        assert_eq!(s.queued_len(), 0);
        assert_eq!(s.pending_publishes(), vec![4, 5]);
    }

    #[test]
    fn receive_maximum_caps_window_v5() {
        let t0 = Instant::now();
        let mut cfg = config(V5);
        cfg.max_inflight = 10;
        let mut s = Session::new(cfg);
        let after = reconnect(
            &mut s,
            t0,
            connack_props(Properties::new().with(Property::TwoByte(prop::RECEIVE_MAXIMUM, 3))),
        );
        assert!(after.is_empty());
        assert_eq!(s.send_window(), 3);
        for _ in 0..5 {
            s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        }
        assert_eq!(pub_ids(&sent(&mut s, t0)).len(), 3);
        assert_eq!(s.queued_len(), 2);
    }

    #[test]
    fn receive_maximum_zero_is_protocol_error() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V5));
        s.connect(t0, connect_packet(V5)).unwrap();
        let r = s.handle_packet(
            t0,
            connack_props(Properties::new().with(Property::TwoByte(prop::RECEIVE_MAXIMUM, 0))),
        );
        assert!(matches!(r, Err(SessionError::Protocol(_))));
    }

    #[test]
    fn server_limits_checked_at_publish_v5() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V5));
        reconnect(
            &mut s,
            t0,
            connack_props(
                Properties::new()
                    .with(Property::Byte(prop::MAXIMUM_QOS, 1))
                    .with(Property::Byte(prop::RETAIN_AVAILABLE, 0)),
            ),
        );
        assert!(matches!(
            s.publish(publish("a", QoS::ExactlyOnce)),
            Err(CommandError::NotAllowed(_))
        ));
        let mut p = publish("a", QoS::AtLeastOnce);
        p.retain = true;
        assert!(matches!(s.publish(p), Err(CommandError::NotAllowed(_))));
        assert!(s.pending_publishes().is_empty());
        assert!(s.publish(publish("a", QoS::AtLeastOnce)).is_ok());
    }

    #[test]
    fn server_maximum_packet_size_refuses_large_publish() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V5));
        reconnect(
            &mut s,
            t0,
            connack_props(
                Properties::new().with(Property::FourByte(prop::MAXIMUM_PACKET_SIZE, 100)),
            ),
        );
        assert_eq!(s.server_max_packet_size(), Some(100));
        let mut big = publish("a", QoS::AtLeastOnce);
        big.payload = Bytes::from(vec![0u8; 200]);
        assert!(matches!(
            s.publish(big),
            Err(CommandError::PacketTooLarge { max: 100, .. })
        ));
        assert!(s.pending_publishes().is_empty());
        assert!(s.publish(publish("a", QoS::AtLeastOnce)).is_ok());
    }

    // ----- reconnect -----

    /// Session with QoS 1 id 1 sent, QoS 2 id 2 at PUBREL, QoS 1 id 3 sent, QoS 2 id 4 sent.
    fn session_mid_flows(cfg: SessionConfig, t0: Instant) -> Session {
        let mut s = connected(cfg, t0);
        s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        s.publish(publish("b", QoS::ExactlyOnce)).unwrap();
        s.publish(publish("c", QoS::AtLeastOnce)).unwrap();
        s.publish(publish("d", QoS::ExactlyOnce)).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)).len(), 4);
        s.handle_packet(t0, Packet::PubRec(resp(2))).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRel(resp(2))]);
        s.handle_packet(t0, incoming("in", QoS::ExactlyOnce, 7))
            .unwrap();
        s.ack(7).unwrap();
        sent(&mut s, t0);
        events(&mut s);
        s.connection_lost();
        assert!(!s.is_connected());
        s
    }

    #[test]
    fn resend_with_dup_after_reconnect_session_present() {
        // MQTT-4.4.0-1: resend unacknowledged PUBLISH (DUP=1) and PUBREL on reconnect.
        // MQTT-4.6.0-1 / -3: PUBLISH in original order, PUBREL in PUBREC order.
        let t0 = Instant::now();
        let mut s = session_mid_flows(config(V3), t0);
        let out = reconnect(&mut s, t0 + secs(1), connack(true));
        assert_eq!(
            out.iter().map(Packet::name).collect::<Vec<_>>(),
            vec!["PUBLISH", "PUBLISH", "PUBLISH", "PUBREL"]
        );
        assert_eq!(pub_ids(&out), vec![(1, true), (3, true), (4, true)]);
        assert_eq!(out[3], Packet::PubRel(resp(2)));
        assert!(matches!(events(&mut s).as_slice(), [Event::Connected(_)]));
        // The incoming QoS 2 state survives: a resend is not delivered again.
        s.handle_packet(t0, incoming("in", QoS::ExactlyOnce, 7))
            .unwrap();
        assert!(events(&mut s).is_empty());
        // Flows complete normally.
        s.handle_packet(t0, Packet::PubComp(resp(2))).unwrap();
        s.handle_packet(t0, Packet::PubAck(resp(1))).unwrap();
        assert_eq!(events(&mut s).len(), 2);
        assert_eq!(s.pending_publishes(), vec![3, 4]);
    }

    #[test]
    fn poll_transmit_fast_path_matches_poll_packet() {
        // Stored publishes are encoded straight from the flow by poll_transmit; the bytes
        // must equal encoding what poll_packet hands out, DUP flags included.
        for version in [V3, V5] {
            let t0 = Instant::now();
            let mut a = session_mid_flows(config(version), t0);
            let mut b = session_mid_flows(config(version), t0);
            let mut bytes_a = Vec::new();
            let mut bytes_b = Vec::new();
            for (s, bytes, fast) in [(&mut a, &mut bytes_a, true), (&mut b, &mut bytes_b, false)] {
                s.connect(t0, connect_packet(version)).unwrap();
                let _ = sent(s, t0);
                s.handle_packet(t0, connack(true)).unwrap();
                s.publish(publish("fresh", QoS::AtLeastOnce)).unwrap();
                if fast {
                    s.poll_transmit(t0, bytes);
                } else {
                    for p in sent(s, t0) {
                        codec::encode(&p, version, bytes).unwrap();
                    }
                }
            }
            assert!(!bytes_a.is_empty());
            assert_eq!(bytes_a, bytes_b, "{version:?}");
        }
    }

    #[test]
    fn session_not_present_policy() {
        let t0 = Instant::now();
        let mut cfg = config(V3);
        cfg.persist_events = true;
        let mut s = session_mid_flows(cfg, t0);
        let out = reconnect(&mut s, t0 + secs(1), connack(false));
        // Unacknowledged PUBLISHes are still sent; no PUBREL into a fresh session.
        assert_eq!(out.len(), 3);
        assert_eq!(pub_ids(&out), vec![(1, true), (3, true), (4, true)]);
        let ev = events(&mut s);
        assert!(matches!(ev[0], Event::Connected(_)));
        assert_eq!(
            ev[1..].to_vec(),
            vec![
                Event::Persist(PersistOp::Remove(PersistKey::SentPubRel(2))),
                Event::PublishDone {
                    pkid: 2,
                    ack: Packet::PubComp(resp(2))
                },
                Event::Persist(PersistOp::Remove(PersistKey::ReceivedQos2(7))),
            ]
        );
        assert_eq!(s.pending_publishes(), vec![1, 3, 4]);
        // Incoming QoS 2 state was cleared: id 7 is a new message now.
        s.handle_packet(t0, incoming("in", QoS::ExactlyOnce, 7))
            .unwrap();
        assert!(events(&mut s)
            .iter()
            .any(|e| matches!(e, Event::Message(_))));
    }

    #[test]
    fn never_transmitted_publish_resent_without_dup() {
        // MQTT-3.3.1-1: DUP is 0 on the first attempt to send a PUBLISH.
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        s.publish(publish("q0", QoS::AtMostOnce)).unwrap();
        // Lost before anything was written: the QoS 0 publish is dropped.
        s.connection_lost();
        let out = reconnect(&mut s, t0, connack(true));
        assert_eq!(pub_ids(&out), vec![(1, false)]);
    }

    #[test]
    fn shrunken_window_defers_resends_to_queue_front() {
        let t0 = Instant::now();
        let mut cfg = config(V5);
        cfg.max_inflight = 10;
        let mut s = connected(cfg, t0);
        for _ in 0..4 {
            s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        }
        sent(&mut s, t0);
        s.publish(publish("a", QoS::AtLeastOnce)).unwrap(); // id 5, never written
        s.connection_lost();
        s.connect(t0, connect_packet(V5)).unwrap();
        sent(&mut s, t0);
        s.handle_packet(
            t0,
            Packet::ConnAck(ConnAck {
                session_present: true,
                code: 0,
                properties: Properties::new().with(Property::TwoByte(prop::RECEIVE_MAXIMUM, 2)),
            }),
        )
        .unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(1, true), (2, true)]);
        assert_eq!(s.queued_len(), 3);
        s.handle_packet(t0, Packet::PubAck(resp(3))).unwrap(); // still queued: ignored
        assert!(events(&mut s)
            .iter()
            .all(|e| !matches!(e, Event::PublishDone { .. })));
        s.handle_packet(t0, Packet::PubAck(resp(1))).unwrap();
        s.handle_packet(t0, Packet::PubAck(resp(2))).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(3, true), (4, true)]);
        s.handle_packet(t0, Packet::PubAck(resp(3))).unwrap();
        assert_eq!(pub_ids(&sent(&mut s, t0)), vec![(5, false)]);
    }

    #[test]
    fn connection_lost_forgets_requests() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        let sub = s
            .subscribe(
                vec![SubscribeFilter {
                    filter: "x".into(),
                    options: SubscribeOptions::default(),
                }],
                Properties::new(),
            )
            .unwrap();
        sent(&mut s, t0);
        s.connection_lost();
        let out = reconnect(&mut s, t0, connack(true));
        assert!(out.is_empty());
        events(&mut s);
        // A late SUBACK for the forgotten request is ignored; the id is free again.
        s.handle_packet(
            t0,
            Packet::SubAck(SubAck {
                pkid: sub,
                return_codes: vec![0],
                properties: Properties::new(),
            }),
        )
        .unwrap();
        assert!(events(&mut s).is_empty());
    }

    // ----- subscribe -----

    #[test]
    fn subscribe_and_unsubscribe() {
        let t0 = Instant::now();
        let mut s = connected(config(V5), t0);
        let filters = vec![
            SubscribeFilter {
                filter: "a".into(),
                options: SubscribeOptions::default(),
            },
            SubscribeFilter {
                filter: "b".into(),
                options: SubscribeOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    ..SubscribeOptions::default()
                },
            },
        ];
        let sub = s.subscribe(filters.clone(), Properties::new()).unwrap();
        let out = sent(&mut s, t0);
        assert!(
            matches!(&out[..], [Packet::Subscribe(x)] if x.pkid == sub && x.filters == filters)
        );
        let ack = SubAck {
            pkid: sub,
            return_codes: vec![0, 1],
            properties: Properties::new(),
        };
        s.handle_packet(t0, Packet::SubAck(ack.clone())).unwrap();
        assert_eq!(events(&mut s), vec![Event::SubscribeDone(ack)]);

        let un = s.unsubscribe(vec!["a".into()], Properties::new()).unwrap();
        assert_ne!(un, 0);
        sent(&mut s, t0);
        let ack = UnsubAck {
            pkid: un,
            reason_codes: vec![0],
            properties: Properties::new(),
        };
        s.handle_packet(t0, Packet::UnsubAck(ack.clone())).unwrap();
        assert_eq!(events(&mut s), vec![Event::UnsubscribeDone(ack)]);

        // Unknown ids are ignored.
        s.handle_packet(
            t0,
            Packet::SubAck(SubAck {
                pkid: 999,
                return_codes: vec![0],
                properties: Properties::new(),
            }),
        )
        .unwrap();
        assert!(events(&mut s).is_empty());
        assert!(s.subscribe(vec![], Properties::new()).is_err());
    }

    #[test]
    fn suback_count_mismatch_is_protocol_error() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        let sub = s
            .subscribe(
                vec![SubscribeFilter {
                    filter: "a".into(),
                    options: SubscribeOptions::default(),
                }],
                Properties::new(),
            )
            .unwrap();
        let r = s.handle_packet(
            t0,
            Packet::SubAck(SubAck {
                pkid: sub,
                return_codes: vec![0, 0],
                properties: Properties::new(),
            }),
        );
        assert!(matches!(r, Err(SessionError::Protocol(_))));
    }

    #[test]
    fn v3_never_emits_v5_fields() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        let props = Properties::new().with(Property::UserProperty("k".into(), "v".into()));
        let mut p = publish("a", QoS::AtLeastOnce);
        p.properties = props.clone();
        s.publish(p).unwrap();
        s.subscribe(
            vec![SubscribeFilter {
                filter: "a".into(),
                options: SubscribeOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
            }],
            props.clone(),
        )
        .unwrap();
        s.disconnect(Disconnect {
            reason: 0x04,
            properties: props,
        });
        let out = sent(&mut s, t0);
        assert_eq!(out.len(), 3);
        for p in &out {
            match p {
                Packet::Publish(p) => assert!(p.properties.is_empty()),
                Packet::Subscribe(x) => {
                    assert!(x.properties.is_empty());
                    assert_eq!(
                        x.filters[0].options,
                        SubscribeOptions {
                            qos: QoS::AtLeastOnce,
                            ..SubscribeOptions::default()
                        }
                    );
                }
                Packet::Disconnect(d) => assert_eq!(*d, Disconnect::default()),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Nothing more goes out after DISCONNECT.
        s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        s.handle_packet(t0, incoming("x", QoS::AtLeastOnce, 1))
            .unwrap();
        assert!(sent(&mut s, t0).is_empty());
        assert!(!s.is_connected());
    }

    #[test]
    fn server_disconnect_and_auth_v5() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V5));
        s.connect(t0, connect_packet(V5)).unwrap();
        sent(&mut s, t0);
        let auth = Auth {
            reason: reason::CONTINUE_AUTHENTICATION,
            properties: Properties::new(),
        };
        s.handle_packet(t0, Packet::Auth(auth.clone())).unwrap();
        s.auth(auth.clone()).unwrap();
        assert_eq!(sent(&mut s, t0), vec![Packet::Auth(auth.clone())]);
        s.handle_packet(t0, connack(false)).unwrap();
        let d = Disconnect {
            reason: reason::SERVER_SHUTTING_DOWN,
            properties: Properties::new(),
        };
        s.handle_packet(t0, Packet::Disconnect(d.clone())).unwrap();
        let ev = events(&mut s);
        assert_eq!(ev[0], Event::Auth(auth));
        assert!(matches!(ev[1], Event::Connected(_)));
        assert_eq!(ev[2], Event::ServerDisconnect(d));
        assert!(!s.is_connected());
    }

    // ----- keepalive -----

    fn ka_session(t0: Instant) -> Session {
        let mut cfg = config(V3);
        cfg.keep_alive = secs(10);
        connected(cfg, t0)
    }

    #[test]
    fn pingreq_after_idle_and_timeout_within_one_and_a_half_keepalive() {
        let t0 = Instant::now();
        let mut s = ka_session(t0);
        assert_eq!(s.poll_timeout(), Some(t0 + secs(10)));
        // Early call: nothing.
        s.handle_timeout(t0 + secs(5)).unwrap();
        assert!(sent(&mut s, t0 + secs(5)).is_empty());
        s.handle_timeout(t0 + secs(10)).unwrap();
        assert_eq!(sent(&mut s, t0 + secs(10)), vec![Packet::PingReq]);
        assert_eq!(s.poll_timeout(), Some(t0 + secs(15)));
        // Only one PINGREQ outstanding.
        s.handle_timeout(t0 + secs(12)).unwrap();
        assert!(sent(&mut s, t0 + secs(12)).is_empty());
        s.handle_timeout(t0 + Duration::from_millis(14_999))
            .unwrap();
        assert_eq!(
            s.handle_timeout(t0 + secs(15)),
            Err(SessionError::KeepAliveTimeout)
        );
        assert_eq!(
            SessionError::KeepAliveTimeout.reason_code(),
            reason::KEEP_ALIVE_TIMEOUT
        );
    }

    #[test]
    fn pingresp_clears_ping() {
        let t0 = Instant::now();
        let mut s = ka_session(t0);
        s.handle_timeout(t0 + secs(10)).unwrap();
        sent(&mut s, t0 + secs(10));
        s.handle_packet(t0 + secs(11), Packet::PingResp).unwrap();
        s.handle_timeout(t0 + secs(15)).unwrap();
        assert_eq!(s.poll_timeout(), Some(t0 + secs(20)));
    }

    #[test]
    fn no_ping_while_traffic_flows_both_ways() {
        let t0 = Instant::now();
        let mut s = ka_session(t0);
        for i in 1..=20u64 {
            let now = t0 + secs(4 * i);
            s.publish(publish("a", QoS::AtMostOnce)).unwrap();
            s.handle_packet(now, incoming("b", QoS::AtMostOnce, 0))
                .unwrap();
            let deadline = s.poll_timeout().unwrap();
            s.handle_timeout(now).unwrap();
            assert!(deadline > now);
            let out = sent(&mut s, now);
            assert!(!out.contains(&Packet::PingReq), "{out:?}");
        }
    }

    #[test]
    fn ping_when_only_sending() {
        // A QoS 0 stream into a dead link is still noticed.
        let t0 = Instant::now();
        let mut s = ka_session(t0);
        let mut pinged = None;
        for i in 1..=5u64 {
            let now = t0 + secs(3 * i);
            s.publish(publish("a", QoS::AtMostOnce)).unwrap();
            s.handle_timeout(now).unwrap();
            if sent(&mut s, now).contains(&Packet::PingReq) && pinged.is_none() {
                pinged = Some(now);
            }
        }
        assert_eq!(pinged, Some(t0 + secs(12)), "first tick at or after 10 s");
        assert_eq!(
            s.handle_timeout(t0 + secs(17)),
            Err(SessionError::KeepAliveTimeout)
        );
    }

    #[test]
    fn ping_when_only_receiving() {
        let t0 = Instant::now();
        let mut s = ka_session(t0);
        for i in 1..=3u64 {
            s.handle_packet(t0 + secs(3 * i), incoming("b", QoS::AtMostOnce, 0))
                .unwrap();
        }
        assert_eq!(s.poll_timeout(), Some(t0 + secs(10)));
        s.handle_timeout(t0 + secs(10)).unwrap();
        assert_eq!(sent(&mut s, t0 + secs(10)), vec![Packet::PingReq]);
    }

    #[test]
    fn server_keep_alive_overrides_v5() {
        let t0 = Instant::now();
        let mut cfg = config(V5);
        cfg.keep_alive = secs(60);
        let mut s = Session::new(cfg);
        reconnect(
            &mut s,
            t0,
            connack_props(Properties::new().with(Property::TwoByte(prop::SERVER_KEEP_ALIVE, 5))),
        );
        assert_eq!(s.keep_alive(), secs(5));
        assert_eq!(s.poll_timeout(), Some(t0 + secs(5)));
        let mut s = connected(config(V3), t0);
        assert_eq!(s.poll_timeout(), None, "keepalive off");
        s.handle_timeout(t0 + secs(1000)).unwrap();
        assert!(sent(&mut s, t0).is_empty());
    }

    // ----- topic aliases -----

    fn alias_session(t0: Instant) -> Session {
        let mut s = Session::new(config(V5));
        let mut cp = connect_packet(V5);
        cp.properties
            .push(Property::TwoByte(prop::TOPIC_ALIAS_MAXIMUM, 10));
        s.connect(t0, cp).unwrap();
        sent(&mut s, t0);
        s.handle_packet(
            t0,
            connack_props(Properties::new().with(Property::TwoByte(prop::TOPIC_ALIAS_MAXIMUM, 5))),
        )
        .unwrap();
        events(&mut s);
        s
    }

    fn aliased(topic: &str, alias: u16) -> Publish {
        let mut p = publish(topic, QoS::AtMostOnce);
        p.properties
            .push(Property::TwoByte(prop::TOPIC_ALIAS, alias));
        p
    }

    #[test]
    fn incoming_topic_alias_resolved() {
        let t0 = Instant::now();
        let mut s = alias_session(t0);
        s.handle_packet(t0, Packet::Publish(aliased("t/1", 3)))
            .unwrap();
        s.handle_packet(t0, Packet::Publish(aliased("", 3)))
            .unwrap();
        let ev = events(&mut s);
        assert_eq!(ev.len(), 2);
        for e in ev {
            let Event::Message(m) = e else {
                panic!("{e:?}")
            };
            assert_eq!(m.topic, "t/1");
            assert_eq!(m.properties.get_int(prop::TOPIC_ALIAS), Some(3));
        }
        // Aliases are per connection.
        s.connection_lost();
        reconnect(&mut s, t0, connack(false));
        assert_eq!(
            s.handle_packet(t0, Packet::Publish(aliased("", 3))),
            Err(SessionError::TopicAliasInvalid(3))
        );
    }

    #[test]
    fn invalid_incoming_topic_alias() {
        let t0 = Instant::now();
        let mut s = alias_session(t0);
        for (topic, alias) in [("t", 0u16), ("t", 11), ("", 4)] {
            let e = s
                .handle_packet(t0, Packet::Publish(aliased(topic, alias)))
                .unwrap_err();
            assert_eq!(e, SessionError::TopicAliasInvalid(u32::from(alias)));
            assert_eq!(e.reason_code(), reason::TOPIC_ALIAS_INVALID);
        }
        // Client announced no Topic Alias Maximum: every alias is invalid.
        let mut s = connected(config(V5), t0);
        assert!(matches!(
            s.handle_packet(t0, Packet::Publish(aliased("t", 1))),
            Err(SessionError::TopicAliasInvalid(1))
        ));
    }

    #[test]
    fn outgoing_topic_alias() {
        let t0 = Instant::now();
        let mut s = alias_session(t0);
        assert!(matches!(
            s.publish(aliased("t", 6)),
            Err(CommandError::NotAllowed(_))
        ));
        assert!(matches!(
            s.publish(aliased("", 2)),
            Err(CommandError::NotAllowed(_))
        ));
        s.publish(aliased("t/x", 2)).unwrap();
        s.publish(aliased("", 2)).unwrap();
        s.publish(aliased("t/x", 2)).unwrap();
        let topics: Vec<String> = sent(&mut s, t0)
            .into_iter()
            .map(|p| match p {
                Packet::Publish(p) => p.topic,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(topics, vec!["t/x", "", ""]);

        // A QoS 1 publish resent on a new connection carries the full topic again.
        let mut p = aliased("", 2);
        p.qos = QoS::AtLeastOnce;
        let id = s.publish(p).unwrap();
        let out = sent(&mut s, t0);
        assert!(matches!(&out[..], [Packet::Publish(p)] if p.topic.is_empty()));
        s.connection_lost();
        let out = reconnect(
            &mut s,
            t0,
            connack_props(Properties::new().with(Property::TwoByte(prop::TOPIC_ALIAS_MAXIMUM, 5))),
        );
        assert!(
            matches!(&out[..], [Packet::Publish(p)] if p.pkid == id && p.topic == "t/x" && p.dup)
        );
    }

    // ----- packet ids -----

    #[test]
    fn packet_ids_skip_ids_in_use_and_wrap() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        s.next_pkid = 65534;
        let a = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        let b = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        let c = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        assert_eq!((a, b, c), (65534, 65535, 1));
        // Wrap again: 65534 and 1 are in use, 65535 is free after its PUBACK.
        s.handle_packet(t0, Packet::PubAck(resp(65535))).unwrap();
        s.next_pkid = 65534;
        let d = s
            .subscribe(
                vec![SubscribeFilter {
                    filter: "x".into(),
                    options: SubscribeOptions::default(),
                }],
                Properties::new(),
            )
            .unwrap();
        assert_eq!(d, 65535);
        let e = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        assert_eq!(e, 2);
    }

    #[test]
    fn packet_ids_exhausted() {
        let t0 = Instant::now();
        let mut s = connected(config(V3), t0);
        for _ in 0..65535u32 {
            s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        }
        assert_eq!(
            s.publish(publish("a", QoS::AtLeastOnce)),
            Err(CommandError::NoPacketId)
        );
        assert_eq!(
            s.unsubscribe(vec!["a".into()], Properties::new()),
            Err(CommandError::NoPacketId)
        );
        // QoS 0 needs no id.
        assert_eq!(s.publish(publish("a", QoS::AtMostOnce)), Ok(0));
        sent(&mut s, t0);
        // An ack for a queued id is ignored; one for an id in flight frees it.
        s.handle_packet(t0, Packet::PubAck(resp(1000))).unwrap();
        assert_eq!(
            s.publish(publish("a", QoS::AtLeastOnce)),
            Err(CommandError::NoPacketId)
        );
        s.handle_packet(t0, Packet::PubAck(resp(10))).unwrap();
        assert_eq!(s.publish(publish("a", QoS::AtLeastOnce)), Ok(10));
    }

    // ----- persistence -----

    #[test]
    fn persistence_event_sequence() {
        let t0 = Instant::now();
        let mut cfg = config(V5);
        cfg.persist_events = true;
        let mut s = connected(cfg, t0);
        use PersistKey::*;
        use PersistOp::*;

        let id = s.publish(publish("a", QoS::ExactlyOnce)).unwrap();
        let Some(Event::Persist(Put(SentPublish(k), Packet::Publish(p)))) = s.poll_event() else {
            panic!("no Put before sending")
        };
        assert_eq!((k, p.pkid), (id, id));
        sent(&mut s, t0);
        s.handle_packet(t0, Packet::PubRec(resp(id))).unwrap();
        assert_eq!(
            events(&mut s),
            vec![
                Event::Persist(Put(SentPubRel(id), Packet::PubRel(resp(id)))),
                Event::Persist(Remove(SentPublish(id))),
            ]
        );
        s.handle_packet(t0, Packet::PubComp(resp(id))).unwrap();
        assert_eq!(
            events(&mut s),
            vec![
                Event::Persist(Remove(SentPubRel(id))),
                Event::PublishDone {
                    pkid: id,
                    ack: Packet::PubComp(resp(id))
                },
            ]
        );

        let id = s.publish(publish("a", QoS::AtLeastOnce)).unwrap();
        assert!(matches!(
            s.poll_event(),
            Some(Event::Persist(Put(SentPublish(k), _))) if k == id
        ));
        s.handle_packet(t0, Packet::PubAck(resp(id))).unwrap();
        assert_eq!(
            events(&mut s),
            vec![
                Event::Persist(Remove(SentPublish(id))),
                Event::PublishDone {
                    pkid: id,
                    ack: Packet::PubAck(resp(id))
                },
            ]
        );

        s.handle_packet(t0, incoming("in", QoS::ExactlyOnce, 9))
            .unwrap();
        // Nothing is stored before the application has the message ...
        assert!(matches!(events(&mut s).as_slice(), [Event::Message(_)]));
        // ... then the marker, before the PUBREC can go out.
        s.ack(9).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::Persist(Put(
                ReceivedQos2(9),
                Packet::PubRec(resp(9))
            ))]
        );
        assert_eq!(sent(&mut s, t0).last(), Some(&Packet::PubRec(resp(9))));
        s.handle_packet(t0, Packet::PubRel(resp(9))).unwrap();
        assert_eq!(
            events(&mut s),
            vec![Event::Persist(Remove(ReceivedQos2(9)))]
        );

        // QoS 0 leaves no trace.
        s.publish(publish("a", QoS::AtMostOnce)).unwrap();
        assert!(events(&mut s).is_empty());
    }

    #[test]
    fn restore_then_reconnect_resends() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V3));
        let stored = |id| {
            Packet::Publish(Publish {
                pkid: id,
                ..publish("r", QoS::ExactlyOnce)
            })
        };
        s.restore(PersistKey::SentPublish(5), stored(5)).unwrap();
        s.restore(PersistKey::SentPublish(3), stored(3)).unwrap();
        s.restore(PersistKey::SentPubRel(3), Packet::PubRel(resp(3)))
            .unwrap();
        s.restore(PersistKey::SentPublish(9), stored(9)).unwrap();
        s.restore(PersistKey::ReceivedQos2(4), Packet::PubRec(resp(4)))
            .unwrap();
        assert!(s
            .restore(PersistKey::SentPubRel(1), Packet::PubAck(resp(1)))
            .is_err());
        assert_eq!(s.pending_publishes(), vec![5, 3, 9]);
        s.next_pkid = 3;
        let new = s.publish(publish("n", QoS::AtLeastOnce)).unwrap();
        assert_eq!(new, 4, "ids in use are skipped");

        let out = reconnect(&mut s, t0, connack(true));
        assert_eq!(
            out.iter().map(Packet::name).collect::<Vec<_>>(),
            vec!["PUBLISH", "PUBREL", "PUBLISH", "PUBLISH"]
        );
        // Restore order; the PUBREL for 3 was restored after PUBLISH 5, before PUBLISH 9.
        assert_eq!(pub_ids(&out), vec![(5, true), (9, true), (4, false)]);
        assert_eq!(out[1], Packet::PubRel(resp(3)));
        // Restored incoming QoS 2 id: a resend is not delivered.
        events(&mut s);
        s.handle_packet(t0, incoming("x", QoS::ExactlyOnce, 4))
            .unwrap();
        assert!(events(&mut s).is_empty());
        assert_eq!(sent(&mut s, t0), vec![Packet::PubRec(resp(4))]);
        // Restoring on a live connection is refused.
        assert!(s.restore(PersistKey::SentPublish(20), stored(20)).is_err());
    }

    #[test]
    fn disconnect_before_connack() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V5));
        s.connect(t0, connect_packet(V5)).unwrap();
        s.publish(publish("q0", QoS::AtMostOnce)).unwrap();
        s.disconnect(Disconnect::default());
        let out = sent(&mut s, t0);
        assert_eq!(out.len(), 2);
        assert!(matches!(out[0], Packet::Connect(_)));
        assert!(matches!(out[1], Packet::Disconnect(_)));
        s.handle_packet(t0, connack(false)).unwrap();
        assert!(sent(&mut s, t0).is_empty());
        assert!(!s.is_connected());
        assert!(events(&mut s).is_empty());
    }

    #[test]
    fn connack_only_after_connect() {
        let t0 = Instant::now();
        let mut s = Session::new(config(V3));
        assert!(s.handle_packet(t0, connack(false)).is_err());
        assert!(s.poll_timeout().is_none());
        assert!(s.poll_packet(t0).is_none());
        s.disconnect(Disconnect::default());
        assert!(s.poll_packet(t0).is_none());
    }
}
