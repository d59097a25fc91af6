//! Framing and encoding/decoding of MQTT 3.1, 3.1.1 and 5.0 packets.
//!
//! Framing ([`Framer`]) is separate from parsing ([`decode`](fn@decode)): the framer only reads the
//! fixed header, refuses oversized packets before any body byte is awaited or allocated,
//! and cuts the body off the input buffer without copying. [`decode`](fn@decode) then validates and
//! parses the body; PUBLISH payloads and other binary fields are slices of the frame body.
//!
//! [`encode`](fn@encode) appends the wire form of a packet in one pass into a buffer reserved once;
//! [`encoded_len`] computes the same size without encoding.
//!
//! # Version handling
//!
//! Fields that exist only in MQTT 5 (properties, reason codes, v5 subscription options) are
//! not on the wire for 3.1 / 3.1.1: they are ignored when encoding and come out empty / 0 /
//! default when decoding. CONNECT always uses the version it carries
//! ([`Connect::protocol`](super::packet::Connect::protocol)), whatever `version` says.
//!
//! # Leniencies (decoding)
//!
//! - MQTT 3.x PUBLISH with QoS 0 and DUP set (forbidden by MQTT-3.3.1-2 in 3.1.1) is
//!   accepted and DUP is cleared; in MQTT 5 it is rejected as malformed.
//! - MQTT 3.x CONNECT with the password flag but no user name flag (MQTT-3.1.2-22) is
//!   accepted; [`encode`](fn@encode) likewise writes whatever the [`Connect`](super::packet::Connect)
//!   holds, so a caller that wants strictness must check it itself.
//! - Variable byte integers that are not in their shortest form (MQTT-1.5.5-1) are accepted.
//! - A 5.0 CONNACK without a property length (remaining length 2) is read as having no
//!   properties.
//! - The MQTT 3.1 CONNACK first byte is "reserved": bit 0 is read as session present, the
//!   other bits are ignored (3.1.1 and 5.0 reject them, MQTT-3.2.2-1).
//! - Reason codes and return codes are not checked against the per-packet lists: any byte is
//!   passed on. SUBACK may carry any return-code byte, and an empty list.
//! - A packet identifier 0 is refused in PUBLISH (QoS > 0), SUBSCRIBE and UNSUBSCRIBE
//!   (MQTT-2.2.1-3 / 3.1.1 MQTT-2.3.1-1) but accepted in acknowledgements.
//! - Property values are not range-checked, except Subscription Identifier 0 (a protocol
//!   error per MQTT 5 section 3.8.2.1.2), which is refused.
//! - Topic names / filters are not checked for wildcards or emptiness here (see
//!   `crate::topic`); only their UTF-8 form is (MQTT-1.5.4-1, MQTT-1.5.4-2).

use bytes::{Buf, BytesMut};

use super::packet::{Packet, ProtocolVersion, Publish};

mod decode;
mod encode;
mod props;
#[cfg(test)]
mod tests;

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
    pub body: bytes::Bytes,
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
    ///
    /// As soon as the fixed header is complete, a packet whose total size (header byte,
    /// length bytes and remaining length) exceeds the limit is refused with
    /// [`DecodeError::PacketTooLarge`], without waiting for its body. A remaining length
    /// longer than 4 bytes is [`DecodeError::MalformedVarInt`]. Nothing is taken off `buf`
    /// unless a whole frame is returned; the frame body shares `buf`'s memory (no copy).
    /// After an error the stream cannot be resynchronised and should be closed.
    pub fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        let Some(&header) = buf.first() else {
            return Ok(None);
        };
        let Some((remaining, len_bytes)) = read_varint(&buf[1..])? else {
            return Ok(None);
        };
        let total = 1 + len_bytes + remaining;
        if total > self.max_packet_size {
            return Err(DecodeError::PacketTooLarge {
                size: total,
                max: self.max_packet_size,
            });
        }
        if buf.len() < total {
            return Ok(None);
        }
        buf.advance(1 + len_bytes);
        let body = buf.split_to(remaining).freeze();
        Ok(Some(Frame { header, body }))
    }
}

/// Reads a variable byte integer (MQTT 5 section 1.5.5) from the start of `buf`.
///
/// Returns the value and the number of bytes it took, `Ok(None)` if `buf` ends before the
/// integer does, and [`DecodeError::MalformedVarInt`] if it runs over 4 bytes.
pub fn read_varint(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::MalformedVarInt)
    } else {
        Ok(None)
    }
}

/// Number of bytes the variable byte integer encoding of `value` takes (1 to 4).
///
/// Values above [`MAX_REMAINING_LENGTH`] cannot be encoded; for them this returns 4, so
/// check the limit first (as [`write_varint`] does).
pub fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends the variable byte integer encoding of `value`; returns the bytes written.
///
/// Fails with [`EncodeError::PacketTooLarge`] above [`MAX_REMAINING_LENGTH`].
pub fn write_varint(value: usize, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    if value > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok(put_varint(value, out))
}

/// Infallible variable byte integer writer for values already checked against the limit.
fn put_varint(mut value: usize, out: &mut Vec<u8>) -> usize {
    let mut n = 0;
    loop {
        let mut byte = (value & 0x7F) as u8;
        value >>= 7;
        n += 1;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 || n == 4 {
            return n;
        }
    }
}

/// Decodes one frame for the given protocol version (CONNECT carries its own version).
///
/// Validates the fixed-header flags (MQTT-2.2.2-1/2), the QoS, packet identifiers, UTF-8
/// strings, properties (known, allowed in this packet, not repeated unless allowed) and
/// that the body is consumed exactly. Never panics; binary fields and the PUBLISH payload
/// are zero-copy slices of `frame.body`.
pub fn decode(frame: Frame, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    decode::decode_frame(&frame, version)
}

/// Appends the encoding of `packet` to `out`; returns the number of bytes written.
///
/// For MQTT 5 the shortest form is used: PUBACK / PUBREC / PUBREL / PUBCOMP without reason
/// and properties when the reason is 0 and there are no properties, without properties when
/// there are none; DISCONNECT / AUTH likewise with an empty body. On error nothing is
/// appended.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let remaining = encode::remaining_len(packet, version)?;
    let total = 1 + varint_len(remaining) + remaining;
    out.reserve(total);
    let start = out.len();
    encode::write_packet(packet, version, remaining, out);
    debug_assert_eq!(out.len() - start, total);
    Ok(out.len() - start)
}

/// Encodes a PUBLISH with the DUP flag given here instead of the one in `publish` (DUP is
/// ignored for QoS 0), so a stored publish can be resent without copying it. Appends to
/// `out`; returns the number of bytes written.
pub fn encode_publish(
    publish: &Publish,
    dup: bool,
    version: ProtocolVersion,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let v5 = version.is_v5();
    let dup = dup && publish.qos != crate::proto::QoS::AtMostOnce;
    let remaining = encode::publish_len(publish, dup, v5)?;
    let total = 1 + varint_len(remaining) + remaining;
    out.reserve(total);
    let start = out.len();
    encode::write_publish(publish, dup, v5, remaining, out);
    debug_assert_eq!(out.len() - start, total);
    Ok(out.len() - start)
}

/// The encoded size of `packet` in bytes, without encoding it.
///
/// Performs the same checks as [`encode`](fn@encode) and fails in the same cases.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let remaining = encode::remaining_len(packet, version)?;
    Ok(1 + varint_len(remaining) + remaining)
}
