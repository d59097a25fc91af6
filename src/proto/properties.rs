//! MQTT 5 properties: an ordered list, as on the wire (and as Paho's `MQTTProperties`).

use bytes::Bytes;

/// Property identifiers of MQTT 5.0 (section 2.2.2.2).
pub mod id {
    #![allow(missing_docs)]
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// Wire data type of a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    /// One byte.
    Byte,
    /// Two-byte integer.
    TwoByteInteger,
    /// Four-byte integer.
    FourByteInteger,
    /// Variable byte integer.
    VariableByteInteger,
    /// Binary data (two-byte length prefix).
    BinaryData,
    /// UTF-8 string (two-byte length prefix).
    Utf8String,
    /// UTF-8 string pair (user property).
    Utf8StringPair,
}

/// One MQTT 5 property. The identifier decides the wire type (see [`property_type`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    /// Byte-valued property: identifier and value.
    Byte(u8, u8),
    /// Two-byte-integer property.
    TwoByte(u8, u16),
    /// Four-byte-integer property.
    FourByte(u8, u32),
    /// Variable-byte-integer property (subscription identifier).
    VarInt(u8, u32),
    /// Binary-data property (correlation data, authentication data).
    Binary(u8, Bytes),
    /// UTF-8 string property.
    String(u8, String),
    /// User property (name, value).
    UserProperty(String, String),
}

impl Property {
    /// The property identifier.
    pub fn id(&self) -> u8 {
        match self {
            Property::Byte(id, _)
            | Property::TwoByte(id, _)
            | Property::FourByte(id, _)
            | Property::VarInt(id, _)
            | Property::Binary(id, _)
            | Property::String(id, _) => *id,
            Property::UserProperty(..) => id::USER_PROPERTY,
        }
    }
}

/// The wire type of a property identifier, `None` for an unknown identifier.
pub fn property_type(identifier: u8) -> Option<PropertyType> {
    use id::*;
    Some(match identifier {
        PAYLOAD_FORMAT_INDICATOR
        | REQUEST_PROBLEM_INFORMATION
        | REQUEST_RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => PropertyType::Byte,
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => {
            PropertyType::TwoByteInteger
        }
        MESSAGE_EXPIRY_INTERVAL
        | SESSION_EXPIRY_INTERVAL
        | WILL_DELAY_INTERVAL
        | MAXIMUM_PACKET_SIZE => PropertyType::FourByteInteger,
        SUBSCRIPTION_IDENTIFIER => PropertyType::VariableByteInteger,
        CORRELATION_DATA | AUTHENTICATION_DATA => PropertyType::BinaryData,
        CONTENT_TYPE
        | RESPONSE_TOPIC
        | ASSIGNED_CLIENT_IDENTIFIER
        | AUTHENTICATION_METHOD
        | RESPONSE_INFORMATION
        | SERVER_REFERENCE
        | REASON_STRING => PropertyType::Utf8String,
        USER_PROPERTY => PropertyType::Utf8StringPair,
        _ => return None,
    })
}

/// The MQTT 5 name of a property identifier ("Message Expiry Interval", ...).
pub fn property_name(identifier: u8) -> Option<&'static str> {
    use id::*;
    Some(match identifier {
        PAYLOAD_FORMAT_INDICATOR => "PAYLOAD_FORMAT_INDICATOR",
        MESSAGE_EXPIRY_INTERVAL => "MESSAGE_EXPIRY_INTERVAL",
        CONTENT_TYPE => "CONTENT_TYPE",
        RESPONSE_TOPIC => "RESPONSE_TOPIC",
        CORRELATION_DATA => "CORRELATION_DATA",
        SUBSCRIPTION_IDENTIFIER => "SUBSCRIPTION_IDENTIFIER",
        SESSION_EXPIRY_INTERVAL => "SESSION_EXPIRY_INTERVAL",
        ASSIGNED_CLIENT_IDENTIFIER => "ASSIGNED_CLIENT_IDENTIFER",
        SERVER_KEEP_ALIVE => "SERVER_KEEP_ALIVE",
        AUTHENTICATION_METHOD => "AUTHENTICATION_METHOD",
        AUTHENTICATION_DATA => "AUTHENTICATION_DATA",
        REQUEST_PROBLEM_INFORMATION => "REQUEST_PROBLEM_INFORMATION",
        WILL_DELAY_INTERVAL => "WILL_DELAY_INTERVAL",
        REQUEST_RESPONSE_INFORMATION => "REQUEST_RESPONSE_INFORMATION",
        RESPONSE_INFORMATION => "RESPONSE_INFORMATION",
        SERVER_REFERENCE => "SERVER_REFERENCE",
        REASON_STRING => "REASON_STRING",
        RECEIVE_MAXIMUM => "RECEIVE_MAXIMUM",
        TOPIC_ALIAS_MAXIMUM => "TOPIC_ALIAS_MAXIMUM",
        TOPIC_ALIAS => "TOPIC_ALIAS",
        MAXIMUM_QOS => "MAXIMUM_QOS",
        RETAIN_AVAILABLE => "RETAIN_AVAILABLE",
        USER_PROPERTY => "USER_PROPERTY",
        MAXIMUM_PACKET_SIZE => "MAXIMUM_PACKET_SIZE",
        WILDCARD_SUBSCRIPTION_AVAILABLE => "WILDCARD_SUBSCRIPTION_AVAILABLE",
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => "SUBSCRIPTION_IDENTIFIER_AVAILABLE",
        SHARED_SUBSCRIPTION_AVAILABLE => "SHARED_SUBSCRIPTION_AVAILABLE",
        _ => return None,
    })
}

/// An ordered list of MQTT 5 properties. Empty for MQTT 3.x packets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties(pub Vec<Property>);

impl Properties {
    /// An empty list.
    pub fn new() -> Self {
        Properties(Vec::new())
    }

    /// True when the list holds no property.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a property.
    pub fn push(&mut self, p: Property) {
        self.0.push(p);
    }

    /// Builder form of [`push`](Self::push).
    pub fn with(mut self, p: Property) -> Self {
        self.0.push(p);
        self
    }

    /// Iterates over the properties in wire order.
    pub fn iter(&self) -> std::slice::Iter<'_, Property> {
        self.0.iter()
    }

    /// First property with this identifier.
    pub fn get(&self, identifier: u8) -> Option<&Property> {
        self.0.iter().find(|p| p.id() == identifier)
    }

    /// Removes every property with this identifier.
    pub fn remove(&mut self, identifier: u8) {
        self.0.retain(|p| p.id() != identifier);
    }

    /// Integer value (byte, two-byte, four-byte or variable) of the first property with this id.
    pub fn get_int(&self, identifier: u8) -> Option<u32> {
        match self.get(identifier)? {
            Property::Byte(_, v) => Some(u32::from(*v)),
            Property::TwoByte(_, v) => Some(u32::from(*v)),
            Property::FourByte(_, v) | Property::VarInt(_, v) => Some(*v),
            _ => None,
        }
    }

    /// String value of the first property with this id.
    pub fn get_str(&self, identifier: u8) -> Option<&str> {
        match self.get(identifier)? {
            Property::String(_, s) => Some(s),
            _ => None,
        }
    }

    /// Binary value of the first property with this id.
    pub fn get_binary(&self, identifier: u8) -> Option<&Bytes> {
        match self.get(identifier)? {
            Property::Binary(_, b) => Some(b),
            _ => None,
        }
    }

    /// All user properties, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((k.as_str(), v.as_str())),
            _ => None,
        })
    }
}
