//! Size computation (with all checks) and single-pass writing of packets.
//!
//! [`remaining_len`] validates the packet and returns its remaining length; [`write_packet`]
//! then writes it without further checks into a buffer the caller reserved once. Property
//! list lengths are recomputed while writing instead of being buffered.

use super::props::{allowed, may_repeat, Ctx, Seen};
use super::{put_varint, varint_len, EncodeError, MAX_REMAINING_LENGTH};
use crate::proto::packet::*;
use crate::proto::properties::{property_type, Properties, Property, PropertyType};

type Result<T> = std::result::Result<T, EncodeError>;

// ---------------------------------------------------------------------------------------
// Sizes and checks
// ---------------------------------------------------------------------------------------

/// Size of a length-prefixed UTF-8 string; MQTT-1.5.4-2 forbids U+0000 in it.
fn str_len(s: &str, field: &'static str) -> Result<usize> {
    if s.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong(field));
    }
    if s.as_bytes().contains(&0) {
        return Err(EncodeError::Invalid(
            "string contains U+0000 (MQTT-1.5.4-2)",
        ));
    }
    Ok(2 + s.len())
}

/// Size of length-prefixed binary data.
fn bin_len(b: &[u8], field: &'static str) -> Result<usize> {
    if b.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong(field));
    }
    Ok(2 + b.len())
}

/// Checks one property (known identifier, matching value type, allowed here) and returns
/// its encoded size including the identifier byte.
fn property_len(p: &Property, ctx: Ctx) -> Result<usize> {
    let id = p.id();
    let ty = property_type(id).ok_or(EncodeError::Invalid("unknown property identifier"))?;
    if !allowed(id, ctx) {
        return Err(EncodeError::Invalid("property not allowed in this packet"));
    }
    let value = match (p, ty) {
        (Property::Byte(..), PropertyType::Byte) => 1,
        (Property::TwoByte(..), PropertyType::TwoByteInteger) => 2,
        (Property::FourByte(..), PropertyType::FourByteInteger) => 4,
        (Property::VarInt(_, v), PropertyType::VariableByteInteger) => {
            let v = *v as usize;
            if v == 0 || v > MAX_REMAINING_LENGTH {
                return Err(EncodeError::Invalid(
                    "subscription identifier outside 1..=268435455",
                ));
            }
            varint_len(v)
        }
        (Property::Binary(_, b), PropertyType::BinaryData) => bin_len(b, "binary property")?,
        (Property::String(_, s), PropertyType::Utf8String) => str_len(s, "string property")?,
        (Property::UserProperty(k, v), PropertyType::Utf8StringPair) => {
            str_len(k, "user property name")? + str_len(v, "user property value")?
        }
        _ => {
            return Err(EncodeError::Invalid(
                "property value type does not match its identifier",
            ))
        }
    };
    Ok(1 + value)
}

/// Size of a property list with its length prefix, after checking every property and
/// that once-only properties are not repeated.
fn props_len(props: &Properties, ctx: Ctx) -> Result<usize> {
    let mut seen = Seen::default();
    let mut len = 0;
    for p in props.iter() {
        len += property_len(p, ctx)?;
        if !seen.insert(p.id()) && !may_repeat(p.id(), ctx) {
            return Err(EncodeError::Invalid(
                "property repeated that may appear only once",
            ));
        }
    }
    if len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok(varint_len(len) + len)
}

/// Remaining length of `packet` after all checks.
pub(super) fn remaining_len(packet: &Packet, version: ProtocolVersion) -> Result<usize> {
    let v5 = version.is_v5();
    let len = match packet {
        Packet::Connect(c) => connect_len(c)?,
        Packet::ConnAck(c) => {
            2 + if v5 {
                props_len(&c.properties, Ctx::CONNACK)?
            } else {
                0
            }
        }
        Packet::Publish(p) => publish_len(p, p.dup, v5)?,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            if !v5 || (r.reason == 0 && r.properties.is_empty()) {
                2
            } else if r.properties.is_empty() {
                3
            } else {
                3 + props_len(&r.properties, Ctx::PUBRESP)?
            }
        }
        Packet::Subscribe(s) => {
            if s.pkid == 0 {
                return Err(EncodeError::Invalid("SUBSCRIBE with packet identifier 0"));
            }
            if s.filters.is_empty() {
                return Err(EncodeError::Invalid("SUBSCRIBE without topic filter"));
            }
            let mut len = 2;
            if v5 {
                len += props_len(&s.properties, Ctx::SUBSCRIBE)?;
            }
            for f in &s.filters {
                len += str_len(&f.filter, "topic filter")? + 1;
            }
            len
        }
        Packet::SubAck(s) => {
            let props = if v5 {
                props_len(&s.properties, Ctx::SUBACK)?
            } else {
                0
            };
            2 + props + s.return_codes.len()
        }
        Packet::Unsubscribe(u) => {
            if u.pkid == 0 {
                return Err(EncodeError::Invalid("UNSUBSCRIBE with packet identifier 0"));
            }
            if u.filters.is_empty() {
                return Err(EncodeError::Invalid("UNSUBSCRIBE without topic filter"));
            }
            let mut len = 2;
            if v5 {
                len += props_len(&u.properties, Ctx::UNSUBSCRIBE)?;
            }
            for f in &u.filters {
                len += str_len(f, "topic filter")?;
            }
            len
        }
        Packet::UnsubAck(u) => {
            if v5 {
                2 + props_len(&u.properties, Ctx::UNSUBACK)? + u.reason_codes.len()
            } else {
                2
            }
        }
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => {
            if v5 {
                reason_props_len(d.reason, &d.properties, Ctx::DISCONNECT)?
            } else {
                0
            }
        }
        Packet::Auth(a) => {
            if !v5 {
                return Err(EncodeError::WrongVersion);
            }
            reason_props_len(a.reason, &a.properties, Ctx::AUTH)?
        }
    };
    if len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok(len)
}

fn reason_props_len(reason: u8, props: &Properties, ctx: Ctx) -> Result<usize> {
    Ok(if props.is_empty() {
        usize::from(reason != 0)
    } else {
        1 + props_len(props, ctx)?
    })
}

fn protocol_name(version: ProtocolVersion) -> &'static [u8] {
    match version {
        ProtocolVersion::V31 => b"MQIsdp",
        ProtocolVersion::V311 | ProtocolVersion::V5 => b"MQTT",
    }
}

fn connect_len(c: &Connect) -> Result<usize> {
    let v5 = c.protocol.is_v5();
    // protocol name, level, flags, keep alive
    let mut len = 2 + protocol_name(c.protocol).len() + 1 + 1 + 2;
    if v5 {
        len += props_len(&c.properties, Ctx::CONNECT)?;
    }
    len += str_len(&c.client_id, "client identifier")?;
    if let Some(w) = &c.will {
        if v5 {
            len += props_len(&w.properties, Ctx::WILL)?;
        }
        len += str_len(&w.topic, "will topic")? + bin_len(&w.payload, "will payload")?;
    }
    if let Some(u) = &c.username {
        len += str_len(u, "user name")?;
    }
    if let Some(p) = &c.password {
        len += bin_len(p, "password")?;
    }
    Ok(len)
}

/// Remaining length of a PUBLISH sent with the DUP flag `dup` (which may differ from
/// `p.dup`: a stored publish is resent without being copied).
pub(super) fn publish_len(p: &Publish, dup: bool, v5: bool) -> Result<usize> {
    match (p.qos, p.pkid) {
        (QoS::AtMostOnce, 0) if dup => {
            return Err(EncodeError::Invalid(
                "DUP set on a QoS 0 PUBLISH (MQTT-3.3.1-2)",
            ))
        }
        (QoS::AtMostOnce, 0) => {}
        (QoS::AtMostOnce, _) => {
            return Err(EncodeError::Invalid(
                "QoS 0 PUBLISH with a packet identifier",
            ))
        }
        (_, 0) => {
            return Err(EncodeError::Invalid(
                "QoS > 0 PUBLISH with packet identifier 0",
            ))
        }
        _ => {}
    }
    let mut len = str_len(&p.topic, "topic name")? + p.payload.len();
    if p.qos != QoS::AtMostOnce {
        len += 2;
    }
    if v5 {
        len += props_len(&p.properties, Ctx::PUBLISH)?;
    }
    Ok(len)
}

// ---------------------------------------------------------------------------------------
// Writing (no checks: remaining_len has validated the packet)
// ---------------------------------------------------------------------------------------

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Length-prefixed bytes; the length was checked to fit in 16 bits.
fn put_prefixed(out: &mut Vec<u8>, b: &[u8]) {
    put_u16(out, b.len() as u16);
    out.extend_from_slice(b);
}

/// Byte length of the property list body (without its length prefix).
fn props_body_len(props: &Properties) -> usize {
    props
        .iter()
        .map(|p| {
            1 + match p {
                Property::Byte(..) => 1,
                Property::TwoByte(..) => 2,
                Property::FourByte(..) => 4,
                Property::VarInt(_, v) => varint_len(*v as usize),
                Property::Binary(_, b) => 2 + b.len(),
                Property::String(_, s) => 2 + s.len(),
                Property::UserProperty(k, v) => 4 + k.len() + v.len(),
            }
        })
        .sum()
}

fn put_props(out: &mut Vec<u8>, props: &Properties) {
    put_varint(props_body_len(props), out);
    for p in props.iter() {
        out.push(p.id());
        match p {
            Property::Byte(_, v) => out.push(*v),
            Property::TwoByte(_, v) => put_u16(out, *v),
            Property::FourByte(_, v) => out.extend_from_slice(&v.to_be_bytes()),
            Property::VarInt(_, v) => {
                put_varint(*v as usize, out);
            }
            Property::Binary(_, b) => put_prefixed(out, b),
            Property::String(_, s) => put_prefixed(out, s.as_bytes()),
            Property::UserProperty(k, v) => {
                put_prefixed(out, k.as_bytes());
                put_prefixed(out, v.as_bytes());
            }
        }
    }
}

/// Writes the fixed header and body of a packet validated by [`remaining_len`].
pub(super) fn write_packet(
    packet: &Packet,
    version: ProtocolVersion,
    remaining: usize,
    out: &mut Vec<u8>,
) {
    let v5 = version.is_v5();
    if let Packet::Publish(p) = packet {
        return write_publish(p, p.dup, v5, remaining, out);
    }
    let flags = match packet {
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    };
    out.push(packet.packet_type() << 4 | flags);
    put_varint(remaining, out);
    match packet {
        Packet::Connect(c) => write_connect(c, out),
        Packet::ConnAck(c) => {
            out.push(u8::from(c.session_present));
            out.push(c.code);
            if v5 {
                put_props(out, &c.properties);
            }
        }
        Packet::Publish(_) => {} // written by `write_publish` above
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            put_u16(out, r.pkid);
            if remaining >= 3 {
                out.push(r.reason);
            }
            if remaining > 3 {
                put_props(out, &r.properties);
            }
        }
        Packet::Subscribe(s) => {
            put_u16(out, s.pkid);
            if v5 {
                put_props(out, &s.properties);
            }
            for f in &s.filters {
                put_prefixed(out, f.filter.as_bytes());
                let o = &f.options;
                let mut byte = o.qos as u8;
                if v5 {
                    byte |= u8::from(o.no_local) << 2
                        | u8::from(o.retain_as_published) << 3
                        | (o.retain_handling as u8) << 4;
                }
                out.push(byte);
            }
        }
        Packet::SubAck(s) => {
            put_u16(out, s.pkid);
            if v5 {
                put_props(out, &s.properties);
            }
            out.extend_from_slice(&s.return_codes);
        }
        Packet::Unsubscribe(u) => {
            put_u16(out, u.pkid);
            if v5 {
                put_props(out, &u.properties);
            }
            for f in &u.filters {
                put_prefixed(out, f.as_bytes());
            }
        }
        Packet::UnsubAck(u) => {
            put_u16(out, u.pkid);
            if v5 {
                put_props(out, &u.properties);
                out.extend_from_slice(&u.reason_codes);
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(Disconnect { reason, properties })
        | Packet::Auth(Auth { reason, properties }) => {
            if remaining >= 1 {
                out.push(*reason);
            }
            if remaining > 1 {
                put_props(out, properties);
            }
        }
    }
}

/// The one PUBLISH writer (every PUBLISH the crate sends goes through it): fixed header
/// with the DUP flag `dup`, variable header and payload, validated by
/// [`publish_len`]`(p, dup, v5)`, which gave `remaining`.
pub(super) fn write_publish(p: &Publish, dup: bool, v5: bool, remaining: usize, out: &mut Vec<u8>) {
    out.push(3 << 4 | u8::from(dup) << 3 | (p.qos as u8) << 1 | u8::from(p.retain));
    put_varint(remaining, out);
    put_prefixed(out, p.topic.as_bytes());
    if p.qos != QoS::AtMostOnce {
        put_u16(out, p.pkid);
    }
    if v5 {
        put_props(out, &p.properties);
    }
    out.extend_from_slice(&p.payload);
}

fn write_connect(c: &Connect, out: &mut Vec<u8>) {
    let v5 = c.protocol.is_v5();
    put_prefixed(out, protocol_name(c.protocol));
    out.push(c.protocol.level());
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos as u8) << 3 | u8::from(w.retain) << 5;
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    out.push(flags);
    put_u16(out, c.keep_alive);
    if v5 {
        put_props(out, &c.properties);
    }
    put_prefixed(out, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        if v5 {
            put_props(out, &w.properties);
        }
        put_prefixed(out, w.topic.as_bytes());
        put_prefixed(out, &w.payload);
    }
    if let Some(u) = &c.username {
        put_prefixed(out, u.as_bytes());
    }
    if let Some(p) = &c.password {
        put_prefixed(out, p);
    }
}
