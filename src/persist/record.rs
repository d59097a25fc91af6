//! Key names and the on-disk record format for persisted in-flight packets.
//!
//! Key names follow Paho C (`MQTTPersistence.h`): `s-<id>` outgoing QoS 1/2 PUBLISH,
//! `sc-<id>` outgoing PUBREL, `r-<id>` incoming QoS 2 PUBLISH; MQTT 5.0 uses `s5-`, `sc5-`,
//! `r5-`. `<id>` is the packet id in decimal, 1..=65535, without leading zeros.
//!
//! A record is the MQTT encoding of the packet behind a small header:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "MQSP"
//! 4       1     format version (1)
//! 5       4     CRC-32 (IEEE, big endian) of everything from offset 9 to the end
//! 9       8     sequence number (big endian): insertion order of the key
//! 17      ..    the packet, MQTT-encoded for the store's protocol version
//! ```
//!
//! Format version 2 is the record of an outgoing PUBLISH that took the place of another
//! record holding the same message (MQTTAsync's buffer of publishes made while
//! disconnected, `o-<n>`): between the sequence number and the packet it names that record,
//! so that a restart after a kill between the write of this record and the removal of the
//! other can tell the message was already taken (see [`replaced_key`]):
//!
//! ```text
//! 17      2     length L of the replaced record's key (big endian)
//! 19      L     the key, UTF-8
//! 19+L    ..    the packet
//! ```
//!
//! A torn or damaged record fails the magic, version or CRC check and is reported as
//! [`PersistError::Corrupt`]; nothing in here panics on any input.

use bytes::BytesMut;

use super::{PersistError, Result};
use crate::proto::codec::{decode, encode, Framer, MAX_REMAINING_LENGTH};
use crate::proto::session::PersistKey;
use crate::proto::{Packet, ProtocolVersion};

/// First bytes of every record.
pub const MAGIC: [u8; 4] = *b"MQSP";
/// Record format version written by this code.
pub const FORMAT_VERSION: u8 = 1;
/// Record format version of a record that names the record it replaced.
pub const FORMAT_REPLACING: u8 = 2;
/// Size of the header before the packet bytes.
pub const HEADER_LEN: usize = 4 + 1 + 4 + 8;

/// Paho's key name for `key`: `s-<id>`, `sc-<id>`, `r-<id>`, or with `v5` `s5-<id>`,
/// `sc5-<id>`, `r5-<id>`.
pub fn key_name(key: PersistKey, v5: bool) -> String {
    let (prefix, id) = match key {
        PersistKey::SentPublish(id) => ("s", id),
        PersistKey::SentPubRel(id) => ("sc", id),
        PersistKey::ReceivedQos2(id) => ("r", id),
    };
    let five = if v5 { "5" } else { "" };
    format!("{prefix}{five}-{id}")
}

/// Parses a key name made by [`key_name`]: the key and whether it belongs to MQTT 5.0.
/// `None` for anything else (Paho's `q-`, `c-` keys, ids 0, > 65535 or with leading zeros).
pub fn parse_key(name: &str) -> Option<(PersistKey, bool)> {
    type Make = fn(u16) -> PersistKey;
    const PREFIXES: [(&str, Make, bool); 6] = [
        ("s-", PersistKey::SentPublish, false),
        ("sc-", PersistKey::SentPubRel, false),
        ("r-", PersistKey::ReceivedQos2, false),
        ("s5-", PersistKey::SentPublish, true),
        ("sc5-", PersistKey::SentPubRel, true),
        ("r5-", PersistKey::ReceivedQos2, true),
    ];
    PREFIXES.iter().find_map(|&(prefix, make, v5)| {
        let digits = name.strip_prefix(prefix)?;
        let canonical = !digits.is_empty()
            && digits.len() <= 5
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !canonical {
            return None;
        }
        let id: u16 = digits.parse().ok()?;
        Some((make(id), v5))
    })
}

/// CRC-32 (IEEE 802.3, reflected, as in zlib/PNG) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

fn corrupt(reason: &'static str) -> PersistError {
    PersistError::Corrupt {
        key: String::new(),
        reason,
    }
}

/// Puts the record header (magic, format version, CRC, `seq`) in front of `body`.
pub fn wrap(seq: u64, body: &[u8]) -> Vec<u8> {
    wrap_inner(seq, None, body)
}

/// As [`wrap`], for a record that takes the place of the record `replaced` (format
/// version 2). A key longer than 65535 bytes is not named (version 1).
pub fn wrap_replacing(seq: u64, replaced: &str, body: &[u8]) -> Vec<u8> {
    wrap_inner(seq, Some(replaced).filter(|k| k.len() <= 0xffff), body)
}

fn wrap_inner(seq: u64, replaced: Option<&str>, body: &[u8]) -> Vec<u8> {
    let extra = replaced.map_or(0, |k| 2 + k.len());
    let mut out = Vec::with_capacity(HEADER_LEN + extra + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(if replaced.is_some() {
        FORMAT_REPLACING
    } else {
        FORMAT_VERSION
    });
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_be_bytes());
    if let Some(k) = replaced {
        out.extend_from_slice(&(k.len() as u16).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
    }
    out.extend_from_slice(body);
    let crc = crc32(&out[9..]);
    out[5..9].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Checks the record header of `bytes`; returns the sequence number and the body.
/// Any mismatch (short, wrong magic, unknown format version, CRC) is `Corrupt` (key empty).
pub fn unwrap(bytes: &[u8]) -> Result<(u64, &[u8])> {
    unwrap_full(bytes).map(|(seq, _, body)| (seq, body))
}

/// As [`unwrap`], with the key of the record this one replaced (format version 2).
fn unwrap_full(bytes: &[u8]) -> Result<(u64, Option<&str>, &[u8])> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt("record shorter than its header"));
    }
    let (magic, rest) = bytes.split_at(4);
    if magic != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let version = rest[0];
    if version != FORMAT_VERSION && version != FORMAT_REPLACING {
        return Err(corrupt("unknown record format version"));
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&rest[1..5]);
    let covered = &rest[5..];
    if crc32(covered) != u32::from_be_bytes(crc) {
        return Err(corrupt("checksum mismatch"));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&covered[..8]);
    let seq = u64::from_be_bytes(seq);
    let body = &covered[8..];
    if version == FORMAT_VERSION {
        return Ok((seq, None, body));
    }
    let (len, rest) = body
        .split_first_chunk::<2>()
        .ok_or_else(|| corrupt("record shorter than its header"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(corrupt("record shorter than its header"));
    }
    let (key, body) = rest.split_at(len);
    let key = std::str::from_utf8(key).map_err(|_| corrupt("replaced key is not UTF-8"))?;
    Ok((seq, Some(key), body))
}

/// Whether `bytes` are one of these records whose write was cut short: nothing, a part of
/// the magic, or the magic and a known format version followed by less than the header or
/// by bytes the checksum does not cover (a record damaged after its header looks the same).
/// Bytes that do not start as one of these records (another program's, or read back
/// through a transform that does not undo the one they were written with) are not torn.
pub fn is_torn(bytes: &[u8]) -> bool {
    let magic = &bytes[..bytes.len().min(MAGIC.len())];
    if !MAGIC.starts_with(magic) {
        return false;
    }
    match bytes.get(4) {
        None => true,
        Some(&v) if v != FORMAT_VERSION && v != FORMAT_REPLACING => false,
        Some(_) if bytes.len() < HEADER_LEN => true,
        Some(_) => {
            let crc = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
            crc32(&bytes[9..]) != crc
        }
    }
}

/// The key of the record that `bytes` (a record) took the place of, when it names one
/// ([`wrap_replacing`]); `None` for any other record or anything unreadable.
pub fn replaced_key(bytes: &[u8]) -> Option<&str> {
    unwrap_full(bytes).ok().and_then(|(_, k, _)| k)
}

/// Encodes `packet` as a record with sequence number 0. See [`encode_record_seq`].
pub fn encode_record(packet: &Packet, version: ProtocolVersion) -> Result<Vec<u8>> {
    encode_record_seq(packet, version, 0)
}

/// Encodes `packet` (MQTT encoding for `version`) as a record with sequence number `seq`.
pub fn encode_record_seq(packet: &Packet, version: ProtocolVersion, seq: u64) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    encode(packet, version, &mut body)?;
    Ok(wrap(seq, &body))
}

/// As [`encode_record_seq`], naming the record this one takes the place of
/// ([`wrap_replacing`]).
pub fn encode_record_replacing(
    packet: &Packet,
    version: ProtocolVersion,
    seq: u64,
    replaced: &str,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    encode(packet, version, &mut body)?;
    Ok(wrap_replacing(seq, replaced, &body))
}

/// Decodes a record made by [`encode_record`] / [`encode_record_seq`].
pub fn decode_record(bytes: &[u8], version: ProtocolVersion) -> Result<Packet> {
    decode_record_seq(bytes, version).map(|(_, p)| p)
}

/// Decodes a record: its sequence number and packet. The body must be exactly one
/// well-formed MQTT packet; anything else is `Corrupt` (key empty; see
/// [`PersistError::with_key`]).
pub fn decode_record_seq(bytes: &[u8], version: ProtocolVersion) -> Result<(u64, Packet)> {
    let (seq, body) = unwrap(bytes)?;
    let mut buf = BytesMut::from(body);
    let frame = match Framer::new(MAX_REMAINING_LENGTH + 5).next_frame(&mut buf) {
        Ok(Some(f)) => f,
        Ok(None) => return Err(corrupt("truncated packet")),
        Err(_) => return Err(corrupt("malformed packet framing")),
    };
    if !buf.is_empty() {
        return Err(corrupt("bytes after the packet"));
    }
    let packet = decode(frame, version).map_err(|_| corrupt("malformed packet"))?;
    Ok((seq, packet))
}

/// Checks that a decoded packet is what its key says: a PUBLISH with that packet id for
/// `s-`, a PUBREL with that id for `sc-`, and for `r-` the PUBREC the client stores as the
/// marker of a received QoS 2 message (or the PUBLISH itself, as Paho stores it).
pub fn check_matches_key(key: PersistKey, packet: &Packet) -> Result<()> {
    let ok = match (key, packet) {
        (PersistKey::SentPublish(id), Packet::Publish(p))
        | (PersistKey::ReceivedQos2(id), Packet::Publish(p)) => p.pkid == id,
        (PersistKey::ReceivedQos2(id), Packet::PubRec(r)) => r.pkid == id,
        (PersistKey::SentPubRel(id), Packet::PubRel(r)) => r.pkid == id,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(corrupt("record does not match its key"))
    }
}
