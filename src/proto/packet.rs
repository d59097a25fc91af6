//! MQTT control packet types shared by every protocol version.
//!
//! One struct per packet; fields that only exist in MQTT 5 (properties, reason codes) are
//! present for every version and simply ignored (encoded as nothing) for 3.1 / 3.1.1.

use bytes::Bytes;

use super::properties::Properties;

/// MQTT protocol level as sent in CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3).
    V31,
    /// MQTT 3.1.1 (protocol name `MQTT`, level 4).
    V311,
    /// MQTT 5.0 (protocol name `MQTT`, level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT (3, 4 or 5).
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V31 => 3,
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// Maps a protocol level byte back to a version.
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            3 => Some(ProtocolVersion::V31),
            4 => Some(ProtocolVersion::V311),
            5 => Some(ProtocolVersion::V5),
            _ => None,
        }
    }

    /// True for MQTT 5.0.
    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service of a PUBLISH or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    /// At most once (0).
    #[default]
    AtMostOnce = 0,
    /// At least once (1).
    AtLeastOnce = 1,
    /// Exactly once (2).
    ExactlyOnce = 2,
}

impl QoS {
    /// Validates a QoS number (0, 1 or 2).
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Will (last will and testament) carried in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Topic the broker publishes the will to.
    pub topic: String,
    /// Will payload (text or binary).
    pub payload: Bytes,
    /// QoS of the will publication.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
    /// v5 will properties (will delay interval, message expiry, content type, ...).
    pub properties: Properties,
}

/// CONNECT (type 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version; also selects the protocol name (`MQIsdp` for 3.1).
    pub protocol: ProtocolVersion,
    /// Clean session (3.x) / clean start (5.0).
    pub clean_start: bool,
    /// Keepalive in seconds (0 = off).
    pub keep_alive: u16,
    /// Client identifier (may be empty with clean session).
    pub client_id: String,
    /// Optional will (boxed: most clients have none, and a client keeps its CONNECT for
    /// reconnects).
    pub will: Option<Box<LastWill>>,
    /// Optional user name.
    pub username: Option<String>,
    /// Optional binary password.
    pub password: Option<Bytes>,
    /// v5 CONNECT properties.
    pub properties: Properties,
}

/// CONNACK (type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session present flag.
    pub session_present: bool,
    /// v3 return code (0-5) or v5 reason code.
    pub code: u8,
    /// v5 CONNACK properties.
    pub properties: Properties,
}

/// PUBLISH (type 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; may be empty in v5 when a topic alias is used.
    pub topic: String,
    /// Packet identifier (0 for QoS 0).
    pub pkid: u16,
    /// Application payload.
    pub payload: Bytes,
    /// v5 PUBLISH properties.
    pub properties: Properties,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share this shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResp {
    /// Packet identifier.
    pub pkid: u16,
    /// v5 reason code (0 = success); always 0 for v3.
    pub reason: u8,
    /// v5 properties.
    pub properties: Properties,
}

impl PubResp {
    /// A plain success response for `pkid`.
    pub fn new(pkid: u16) -> Self {
        PubResp {
            pkid,
            reason: 0,
            properties: Properties::default(),
        }
    }
}

/// Retain handling option of a v5 subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// Send retained messages at subscribe time (0).
    #[default]
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription is new (1).
    SendAtSubscribeIfNew = 1,
    /// Do not send retained messages (2).
    DoNotSend = 2,
}

/// Options of one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscribeOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// v5 no-local.
    pub no_local: bool,
    /// v5 retain-as-published.
    pub retain_as_published: bool,
    /// v5 retain handling.
    pub retain_handling: RetainHandling,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// Topic filter (may hold wildcards).
    pub filter: String,
    /// Subscription options.
    pub options: SubscribeOptions,
}

/// SUBSCRIBE (type 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub pkid: u16,
    /// At least one filter.
    pub filters: Vec<SubscribeFilter>,
    /// v5 properties (subscription identifier, user properties).
    pub properties: Properties,
}

/// SUBACK (type 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier.
    pub pkid: u16,
    /// Granted QoS (0-2) or failure (0x80 / v5 reason codes), one per filter.
    pub return_codes: Vec<u8>,
    /// v5 properties.
    pub properties: Properties,
}

/// UNSUBSCRIBE (type 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub pkid: u16,
    /// Filters to remove.
    pub filters: Vec<String>,
    /// v5 properties.
    pub properties: Properties,
}

/// UNSUBACK (type 11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier.
    pub pkid: u16,
    /// v5 reason codes, one per filter; empty for v3.
    pub reason_codes: Vec<u8>,
    /// v5 properties.
    pub properties: Properties,
}

/// DISCONNECT (type 14).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// v5 reason code (0 = normal disconnection).
    pub reason: u8,
    /// v5 properties.
    pub properties: Properties,
}

/// AUTH (type 15, v5 only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// Reason code (0 success, 0x18 continue, 0x19 re-authenticate).
    pub reason: u8,
    /// Properties (authentication method / data).
    pub properties: Properties,
}

/// Any MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT
    Connect(Connect),
    /// CONNACK
    ConnAck(ConnAck),
    /// PUBLISH
    Publish(Publish),
    /// PUBACK
    PubAck(PubResp),
    /// PUBREC
    PubRec(PubResp),
    /// PUBREL
    PubRel(PubResp),
    /// PUBCOMP
    PubComp(PubResp),
    /// SUBSCRIBE
    Subscribe(Subscribe),
    /// SUBACK
    SubAck(SubAck),
    /// UNSUBSCRIBE
    Unsubscribe(Unsubscribe),
    /// UNSUBACK
    UnsubAck(UnsubAck),
    /// PINGREQ
    PingReq,
    /// PINGRESP
    PingResp,
    /// DISCONNECT
    Disconnect(Disconnect),
    /// AUTH
    Auth(Auth),
}

impl Packet {
    /// The packet type number (1..=15).
    pub fn packet_type(&self) -> u8 {
        match self {
            Packet::Connect(_) => 1,
            Packet::ConnAck(_) => 2,
            Packet::Publish(_) => 3,
            Packet::PubAck(_) => 4,
            Packet::PubRec(_) => 5,
            Packet::PubRel(_) => 6,
            Packet::PubComp(_) => 7,
            Packet::Subscribe(_) => 8,
            Packet::SubAck(_) => 9,
            Packet::Unsubscribe(_) => 10,
            Packet::UnsubAck(_) => 11,
            Packet::PingReq => 12,
            Packet::PingResp => 13,
            Packet::Disconnect(_) => 14,
            Packet::Auth(_) => 15,
        }
    }

    /// Upper-case packet name for logs ("PUBLISH", ...).
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}
