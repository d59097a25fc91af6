//! Parsing of frame bodies into packets.

use bytes::Bytes;

use super::props::{allowed, may_repeat, Ctx, Seen};
use super::{DecodeError, Frame};
use crate::proto::packet::*;
use crate::proto::properties::{property_type, Properties, Property, PropertyType};

type Result<T> = std::result::Result<T, DecodeError>;

/// A field name for UTF-8 errors and the message used when the body ends inside it.
#[derive(Clone, Copy)]
struct Field(&'static str, &'static str);

macro_rules! field {
    ($name:literal) => {
        Field($name, concat!("truncated ", $name))
    };
}

/// Cursor over `buf[pos..end]`; every read is bounds-checked against `end`.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    packet: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a Bytes, packet: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            end: buf.len(),
            packet,
        }
    }

    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    fn malformed(&self, why: &'static str) -> DecodeError {
        DecodeError::Malformed(self.packet, why)
    }

    fn take(&mut self, n: usize, f: Field) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.malformed(f.1));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    fn u8(&mut self, f: Field) -> Result<u8> {
        Ok(self.take(1, f)?[0])
    }

    fn u16(&mut self, f: Field) -> Result<u16> {
        let b = self.take(2, f)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, f: Field) -> Result<u32> {
        let b = self.take(4, f)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self, f: Field) -> Result<usize> {
        match super::read_varint(&self.buf[self.pos..self.end])? {
            Some((value, n)) => {
                self.pos += n;
                Ok(value)
            }
            None => Err(self.malformed(f.1)),
        }
    }

    /// Two-byte length prefix and the bytes it announces.
    fn prefixed(&mut self, f: Field) -> Result<&'a [u8]> {
        let len = self.u16(f)?;
        self.take(usize::from(len), f)
    }

    /// UTF-8 encoded string (MQTT-1.5.4-1: well-formed; MQTT-1.5.4-2: no U+0000).
    fn string(&mut self, f: Field) -> Result<String> {
        let raw = self.prefixed(f)?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8(f.0))?;
        if raw.contains(&0) {
            return Err(DecodeError::InvalidUtf8(f.0));
        }
        Ok(s.to_owned())
    }

    /// Binary data, as a zero-copy slice of the frame body.
    fn binary(&mut self, f: Field) -> Result<Bytes> {
        let len = usize::from(self.u16(f)?);
        if self.remaining() < len {
            return Err(self.malformed(f.1));
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.buf.slice(start..self.pos))
    }

    /// Everything left, as a zero-copy slice.
    fn rest(&mut self) -> Bytes {
        let start = self.pos;
        self.pos = self.end;
        self.buf.slice(start..self.end)
    }

    fn finish(&self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.malformed("unexpected bytes after the last field"))
        }
    }

    fn packet_id(&mut self) -> Result<u16> {
        self.u16(field!("packet identifier"))
    }

    /// Packet identifier that must not be 0 (MQTT-2.2.1-3; 3.1.1 MQTT-2.3.1-1).
    fn nonzero_packet_id(&mut self) -> Result<u16> {
        match self.packet_id()? {
            0 => Err(self.malformed("packet identifier 0")),
            id => Ok(id),
        }
    }

    /// Property length and properties (MQTT 5 section 2.2.2).
    fn properties(&mut self, ctx: Ctx) -> Result<Properties> {
        let len = self.varint(field!("property length"))?;
        if len > self.remaining() {
            return Err(self.malformed("property length exceeds the packet"));
        }
        let mut sub = Reader {
            buf: self.buf,
            pos: self.pos,
            end: self.pos + len,
            packet: self.packet,
        };
        self.pos += len;
        let mut seen = Seen::default();
        let mut list = Vec::new();
        while !sub.is_empty() {
            list.push(sub.property(ctx, &mut seen)?);
        }
        Ok(Properties(list))
    }

    fn property(&mut self, ctx: Ctx, seen: &mut Seen) -> Result<Property> {
        let f = field!("property");
        // Identifiers are variable byte integers, but every known one is below 128: a
        // continuation bit means an unknown (or non-minimal) identifier.
        let id = self.u8(f)?;
        let ty = property_type(id).ok_or(DecodeError::InvalidProperty(id))?;
        if !allowed(id, ctx) || (!seen.insert(id) && !may_repeat(id, ctx)) {
            return Err(DecodeError::InvalidProperty(id));
        }
        Ok(match ty {
            PropertyType::Byte => Property::Byte(id, self.u8(f)?),
            PropertyType::TwoByteInteger => Property::TwoByte(id, self.u16(f)?),
            PropertyType::FourByteInteger => Property::FourByte(id, self.u32(f)?),
            PropertyType::VariableByteInteger => {
                let v = self.varint(f)?;
                if v == 0 {
                    // Subscription Identifier 0 is a protocol error (MQTT 5 3.8.2.1.2).
                    return Err(DecodeError::InvalidProperty(id));
                }
                // At most 4 bytes, so at most MAX_REMAINING_LENGTH: fits in u32.
                Property::VarInt(id, v as u32)
            }
            PropertyType::BinaryData => Property::Binary(id, self.binary(f)?),
            PropertyType::Utf8String => {
                Property::String(id, self.string(field!("string property"))?)
            }
            PropertyType::Utf8StringPair => {
                let name = self.string(field!("user property"))?;
                let value = self.string(field!("user property"))?;
                Property::UserProperty(name, value)
            }
        })
    }
}

fn check_flags(packet_type: u8, flags: u8, expected: u8) -> Result<()> {
    if flags == expected {
        Ok(())
    } else {
        Err(DecodeError::InvalidFlags { packet_type, flags })
    }
}

pub(super) fn decode_frame(frame: &Frame, version: ProtocolVersion) -> Result<Packet> {
    let packet_type = frame.header >> 4;
    let flags = frame.header & 0x0F;
    let body = &frame.body;
    let v5 = version.is_v5();
    // MQTT-2.2.2-1 / MQTT-2.2.2-2: reserved flags are 0b0010 for PUBREL, SUBSCRIBE and
    // UNSUBSCRIBE, 0 for every other packet but PUBLISH.
    match packet_type {
        3 => {}
        6 | 8 | 10 => check_flags(packet_type, flags, 0b0010)?,
        15 if !v5 => return Err(DecodeError::InvalidPacketType(15)),
        1..=15 => check_flags(packet_type, flags, 0)?,
        _ => return Err(DecodeError::InvalidPacketType(packet_type)),
    }
    Ok(match packet_type {
        1 => Packet::Connect(connect(body)?),
        2 => Packet::ConnAck(connack(body, version)?),
        3 => Packet::Publish(publish(flags, body, v5)?),
        4 => Packet::PubAck(pub_resp(body, "PUBACK", v5)?),
        5 => Packet::PubRec(pub_resp(body, "PUBREC", v5)?),
        6 => Packet::PubRel(pub_resp(body, "PUBREL", v5)?),
        7 => Packet::PubComp(pub_resp(body, "PUBCOMP", v5)?),
        8 => Packet::Subscribe(subscribe(body, v5)?),
        9 => Packet::SubAck(suback(body, v5)?),
        10 => Packet::Unsubscribe(unsubscribe(body, v5)?),
        11 => Packet::UnsubAck(unsuback(body, v5)?),
        12 => {
            Reader::new(body, "PINGREQ").finish()?;
            Packet::PingReq
        }
        13 => {
            Reader::new(body, "PINGRESP").finish()?;
            Packet::PingResp
        }
        14 => {
            let (reason, properties) = reason_and_props(body, "DISCONNECT", v5, Ctx::DISCONNECT)?;
            Packet::Disconnect(Disconnect { reason, properties })
        }
        _ => {
            let (reason, properties) = reason_and_props(body, "AUTH", v5, Ctx::AUTH)?;
            Packet::Auth(Auth { reason, properties })
        }
    })
}

fn connect(body: &Bytes) -> Result<Connect> {
    let mut r = Reader::new(body, "CONNECT");
    let name = r.prefixed(field!("protocol name"))?;
    let level = r.u8(field!("protocol level"))?;
    let protocol = match (name, level) {
        (b"MQIsdp", 3) => ProtocolVersion::V31,
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        _ => return Err(DecodeError::UnsupportedProtocol),
    };
    let v5 = protocol.is_v5();
    let flags = r.u8(field!("connect flags"))?;
    if flags & 0x01 != 0 {
        // MQTT-3.1.2-3
        return Err(r.malformed("reserved connect flag set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = QoS::from_u8((flags >> 3) & 0x03).ok_or(DecodeError::InvalidQoS)?;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        // MQTT-3.1.2-11 / MQTT-3.1.2-13 / MQTT-3.1.2-15
        return Err(r.malformed("will QoS or will retain set without the will flag"));
    }
    let keep_alive = r.u16(field!("keep alive"))?;
    let properties = if v5 {
        r.properties(Ctx::CONNECT)?
    } else {
        Properties::new()
    };
    let client_id = r.string(field!("client identifier"))?;
    let will = if will_flag {
        let properties = if v5 {
            r.properties(Ctx::WILL)?
        } else {
            Properties::new()
        };
        let topic = r.string(field!("will topic"))?;
        let payload = r.binary(field!("will payload"))?;
        Some(Box::new(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        }))
    } else {
        None
    };
    // Password without user name: forbidden by 3.1.1 MQTT-3.1.2-22, accepted leniently.
    let username = if has_username {
        Some(r.string(field!("user name"))?)
    } else {
        None
    };
    let password = if has_password {
        Some(r.binary(field!("password"))?)
    } else {
        None
    };
    r.finish()?;
    Ok(Connect {
        protocol,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn connack(body: &Bytes, version: ProtocolVersion) -> Result<ConnAck> {
    let mut r = Reader::new(body, "CONNACK");
    let flags = r.u8(field!("acknowledge flags"))?;
    if flags & 0xFE != 0 && version != ProtocolVersion::V31 {
        // MQTT-3.2.2-1 (3.1.1) / 5.0 section 3.2.2.1: bits 7-1 reserved.
        return Err(r.malformed("reserved acknowledge flags set"));
    }
    let code = r.u8(field!("return code"))?;
    let properties = if version.is_v5() && !r.is_empty() {
        r.properties(Ctx::CONNACK)?
    } else {
        Properties::new()
    };
    r.finish()?;
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        code,
        properties,
    })
}

fn publish(flags: u8, body: &Bytes, v5: bool) -> Result<Publish> {
    let mut r = Reader::new(body, "PUBLISH");
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::InvalidQoS)?; // MQTT-3.3.1-4
    let mut dup = flags & 0x08 != 0;
    if dup && qos == QoS::AtMostOnce {
        // MQTT-3.3.1-2: malformed in 5.0; tolerated (and cleared) for 3.x.
        if v5 {
            return Err(r.malformed("DUP flag set on a QoS 0 message"));
        }
        dup = false;
    }
    let topic = r.string(field!("topic name"))?;
    let pkid = if qos == QoS::AtMostOnce {
        0
    } else {
        r.nonzero_packet_id()?
    };
    let properties = if v5 {
        r.properties(Ctx::PUBLISH)?
    } else {
        Properties::new()
    };
    let payload = r.rest();
    Ok(Publish {
        dup,
        qos,
        retain: flags & 0x01 != 0,
        topic,
        pkid,
        payload,
        properties,
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP. In 5.0 a remaining length of 2 means reason 0 and no
/// properties, 3 means a reason code without properties (section 3.4.2.1).
fn pub_resp(body: &Bytes, name: &'static str, v5: bool) -> Result<PubResp> {
    let mut r = Reader::new(body, name);
    let pkid = r.packet_id()?;
    let mut resp = PubResp::new(pkid);
    if v5 && !r.is_empty() {
        resp.reason = r.u8(field!("reason code"))?;
        if !r.is_empty() {
            resp.properties = r.properties(Ctx::PUBRESP)?;
        }
    }
    r.finish()?;
    Ok(resp)
}

/// DISCONNECT and AUTH: empty body = reason 0; a reason alone = no properties (5.0
/// sections 3.14.2.1 and 3.15.2.1). In 3.x DISCONNECT has no body at all.
fn reason_and_props(
    body: &Bytes,
    name: &'static str,
    v5: bool,
    ctx: Ctx,
) -> Result<(u8, Properties)> {
    let mut r = Reader::new(body, name);
    let mut reason = 0;
    let mut properties = Properties::new();
    if v5 && !r.is_empty() {
        reason = r.u8(field!("reason code"))?;
        if !r.is_empty() {
            properties = r.properties(ctx)?;
        }
    }
    r.finish()?;
    Ok((reason, properties))
}

fn subscribe(body: &Bytes, v5: bool) -> Result<Subscribe> {
    let mut r = Reader::new(body, "SUBSCRIBE");
    let pkid = r.nonzero_packet_id()?;
    let properties = if v5 {
        r.properties(Ctx::SUBSCRIBE)?
    } else {
        Properties::new()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string(field!("topic filter"))?;
        let opts = r.u8(field!("subscription options"))?;
        let qos = QoS::from_u8(opts & 0x03).ok_or(DecodeError::InvalidQoS)?;
        let options = if v5 {
            if opts & 0xC0 != 0 {
                // MQTT-3.8.3-5
                return Err(r.malformed("reserved subscription option bits set"));
            }
            let retain_handling = match (opts >> 4) & 0x03 {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendAtSubscribeIfNew,
                2 => RetainHandling::DoNotSend,
                // 5.0 section 3.8.3.1: retain handling 3 is a protocol error.
                _ => return Err(r.malformed("retain handling 3")),
            };
            SubscribeOptions {
                qos,
                no_local: opts & 0x04 != 0,
                retain_as_published: opts & 0x08 != 0,
                retain_handling,
            }
        } else {
            if opts & 0xFC != 0 {
                // 3.1.1 MQTT-3-8.3-4: upper 6 bits reserved.
                return Err(r.malformed("reserved subscription option bits set"));
            }
            SubscribeOptions {
                qos,
                ..SubscribeOptions::default()
            }
        };
        filters.push(SubscribeFilter { filter, options });
    }
    if filters.is_empty() {
        // MQTT-3.8.3-2 (5.0) / MQTT-3.8.3-3 (3.1.1)
        return Err(r.malformed("no topic filter"));
    }
    Ok(Subscribe {
        pkid,
        filters,
        properties,
    })
}

fn suback(body: &Bytes, v5: bool) -> Result<SubAck> {
    let mut r = Reader::new(body, "SUBACK");
    let pkid = r.packet_id()?;
    let properties = if v5 {
        r.properties(Ctx::SUBACK)?
    } else {
        Properties::new()
    };
    Ok(SubAck {
        pkid,
        return_codes: r.rest().to_vec(),
        properties,
    })
}

fn unsubscribe(body: &Bytes, v5: bool) -> Result<Unsubscribe> {
    let mut r = Reader::new(body, "UNSUBSCRIBE");
    let pkid = r.nonzero_packet_id()?;
    let properties = if v5 {
        r.properties(Ctx::UNSUBSCRIBE)?
    } else {
        Properties::new()
    };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string(field!("topic filter"))?);
    }
    if filters.is_empty() {
        // MQTT-3.10.3-2
        return Err(r.malformed("no topic filter"));
    }
    Ok(Unsubscribe {
        pkid,
        filters,
        properties,
    })
}

fn unsuback(body: &Bytes, v5: bool) -> Result<UnsubAck> {
    let mut r = Reader::new(body, "UNSUBACK");
    let pkid = r.packet_id()?;
    if !v5 {
        r.finish()?;
        return Ok(UnsubAck {
            pkid,
            reason_codes: Vec::new(),
            properties: Properties::new(),
        });
    }
    let properties = r.properties(Ctx::UNSUBACK)?;
    Ok(UnsubAck {
        pkid,
        reason_codes: r.rest().to_vec(),
        properties,
    })
}
