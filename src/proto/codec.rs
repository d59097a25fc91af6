//! Framing and encoding/decoding of MQTT packets. (Interface; implementation in progress.)

use bytes::{Bytes, BytesMut};

use super::packet::{Packet, ProtocolVersion};

/// Largest remaining length MQTT can express (the variable byte integer maximum).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Why bytes from the peer could not be turned into a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame larger than the allowed maximum packet size; refused before allocation.
    #[error("packet of {size} bytes exceeds the maximum packet size {max}")]
    PacketTooLarge {
        /// Total packet size announced by the fixed header.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// Variable byte integer longer than 4 bytes.
    #[error("malformed variable byte integer")]
    MalformedVarInt,
    /// Packet type 0 or a type not valid for this protocol version (AUTH in 3.x).
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// Reserved fixed-header flags set wrongly.
    #[error("invalid fixed header flags {flags:#x} for packet type {packet_type}")]
    InvalidFlags {
        /// Packet type.
        packet_type: u8,
        /// The low nibble received.
        flags: u8,
    },
    /// The body ended before a field was complete, or had bytes left over.
    #[error("malformed {0} packet: {1}")]
    Malformed(&'static str, &'static str),
    /// A string was not valid UTF-8 or contained U+0000.
    #[error("invalid UTF-8 string in {0}")]
    InvalidUtf8(&'static str),
    /// QoS 3 or QoS bits invalid.
    #[error("invalid QoS")]
    InvalidQoS,
    /// Unknown property identifier, or a property not allowed in this packet.
    #[error("invalid property {0:#x}")]
    InvalidProperty(u8),
    /// Unknown protocol name or level in CONNECT.
    #[error("unsupported protocol name or level")]
    UnsupportedProtocol,
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Larger than MQTT can express.
    #[error("packet too large to encode")]
    PacketTooLarge,
    /// A string or binary field over 65535 bytes.
    #[error("field {0} longer than 65535 bytes")]
    FieldTooLong(&'static str),
    /// The packet does not exist in this protocol version (AUTH in 3.x).
    #[error("packet not valid for this protocol version")]
    WrongVersion,
    /// Any other invalid field combination (e.g. QoS 0 PUBLISH with a packet id).
    #[error("invalid packet: {0}")]
    Invalid(&'static str),
}

/// One complete frame: the first header byte and the body after the remaining length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The first byte: packet type (high nibble) and flags (low nibble).
    pub header: u8,
    /// The variable header and payload (remaining length bytes).
    pub body: Bytes,
}

/// Splits a byte stream into frames, refusing oversized frames before allocating.
#[derive(Debug, Clone)]
pub struct Framer {
    max_packet_size: usize,
}

impl Framer {
    /// A framer that refuses packets larger than `max_packet_size` bytes (whole packet).
    pub fn new(max_packet_size: usize) -> Self {
        Framer { max_packet_size }
    }

    /// The limit in force.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Takes the next complete frame off the front of `buf`; `Ok(None)` if more bytes are needed.
    pub fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let _ = buf;
        todo!()
    }
}

/// Decodes one frame for the given protocol version (CONNECT carries its own version).
pub fn decode(frame: Frame, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    let _ = (frame, version);
    todo!()
}

/// Appends the encoding of `packet` to `out`; returns the number of bytes written.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let _ = (packet, version, out);
    todo!()
}

/// The encoded size of `packet` in bytes, without encoding it.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let _ = (packet, version);
    todo!()
}
