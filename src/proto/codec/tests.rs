//! Unit tests: the specification's worked examples byte for byte, and the decoder's checks.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::proto::packet::*;
use crate::proto::properties::{id, Properties, Property};

use ProtocolVersion::{V31, V311, V5};

fn enc(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encode(p, v, &mut out).expect("encode");
    assert_eq!(n, out.len());
    assert_eq!(encoded_len(p, v).expect("encoded_len"), n);
    out
}

fn frame_of(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let f = Framer::new(usize::MAX)
        .next_frame(&mut buf)
        .expect("framing")
        .expect("complete frame");
    assert!(buf.is_empty(), "bytes left after the frame");
    f
}

fn dec(bytes: &[u8], v: ProtocolVersion) -> Result<Packet, DecodeError> {
    decode(frame_of(bytes), v)
}

/// Encodes, checks the exact bytes, and decodes them back to the same packet.
fn check_wire(p: &Packet, v: ProtocolVersion, wire: &[u8]) {
    assert_eq!(enc(p, v), wire, "encoding of {p:?} in {v:?}");
    assert_eq!(dec(wire, v).as_ref(), Ok(p), "decoding in {v:?}");
}

fn malformed(r: Result<Packet, DecodeError>) -> bool {
    matches!(r, Err(DecodeError::Malformed(..)))
}

// ---- MQTT 5 section 1.5.5 / 3.1.1 section 2.2.3: variable byte integer -----------------

const VARINT_EXAMPLES: &[(usize, &[u8])] = &[
    (0, &[0x00]),
    (127, &[0x7F]),
    (128, &[0x80, 0x01]),
    (16_383, &[0xFF, 0x7F]),
    (16_384, &[0x80, 0x80, 0x01]),
    (2_097_151, &[0xFF, 0xFF, 0x7F]),
    (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
];

#[test]
fn varint_spec_examples_1_5_5() {
    for &(value, wire) in VARINT_EXAMPLES {
        let mut out = Vec::new();
        assert_eq!(write_varint(value, &mut out), Ok(wire.len()));
        assert_eq!(out, wire, "encoding of {value}");
        assert_eq!(varint_len(value), wire.len());
        assert_eq!(read_varint(wire), Ok(Some((value, wire.len()))));
        // Every proper prefix is incomplete, not an error.
        for cut in 0..wire.len() {
            assert_eq!(read_varint(&wire[..cut]), Ok(None));
        }
    }
}

#[test]
fn varint_over_four_bytes_is_malformed_1_5_5() {
    assert_eq!(
        read_varint(&[0x80, 0x80, 0x80, 0x80, 0x01]),
        Err(DecodeError::MalformedVarInt)
    );
    assert_eq!(
        read_varint(&[0xFF, 0xFF, 0xFF, 0xFF]),
        Err(DecodeError::MalformedVarInt)
    );
    let mut out = Vec::new();
    assert_eq!(
        write_varint(MAX_REMAINING_LENGTH + 1, &mut out),
        Err(EncodeError::PacketTooLarge)
    );
    assert!(out.is_empty());
}

#[test]
fn non_minimal_varint_is_accepted_leniently_mqtt_1_5_5_1() {
    // MQTT-1.5.5-1 binds the sender; we read 0x80 0x00 as 0.
    assert_eq!(read_varint(&[0x80, 0x00]), Ok(Some((0, 2))));
    assert_eq!(dec(&[0xC0, 0x80, 0x00], V311), Ok(Packet::PingReq));
}

// ---- Framer --------------------------------------------------------------------------

#[test]
fn framer_waits_for_header_length_and_body() {
    let framer = Framer::new(1024);
    let wire = [0x30, 0x05, 0x00, 0x01, b'a', b'x', b'y'];
    let mut buf = BytesMut::new();
    for (i, &b) in wire.iter().enumerate() {
        assert_eq!(framer.next_frame(&mut buf), Ok(None), "after {i} bytes");
        assert_eq!(buf.len(), i, "nothing consumed while incomplete");
        buf.extend_from_slice(&[b]);
    }
    let f = framer.next_frame(&mut buf).unwrap().unwrap();
    assert_eq!(f.header, 0x30);
    assert_eq!(&f.body[..], &wire[2..]);
    assert!(buf.is_empty());
    // A multi-byte remaining length cut in the middle is incomplete too.
    let mut buf = BytesMut::from(&[0x30u8, 0x80][..]);
    assert_eq!(framer.next_frame(&mut buf), Ok(None));
}

#[test]
fn framer_refuses_oversized_frame_from_header_alone() {
    // 0x30, remaining length 200 (0xC8 0x01): total 203 bytes > 100; only 3 bytes present.
    let framer = Framer::new(100);
    let mut buf = BytesMut::from(&[0x30u8, 0xC8, 0x01][..]);
    assert_eq!(
        framer.next_frame(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: 203,
            max: 100
        })
    );
    // Exactly at the limit is fine: 1 + 1 + 98 = 100.
    let mut buf = BytesMut::from(&[0x30u8, 98][..]);
    assert_eq!(framer.next_frame(&mut buf), Ok(None));
    buf.extend_from_slice(&[0u8; 98]);
    assert!(framer.next_frame(&mut buf).unwrap().is_some());
    // The largest announceable frame, with the header only.
    let framer = Framer::new(MAX_REMAINING_LENGTH);
    let mut buf = BytesMut::from(&[0x30u8, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert_eq!(
        framer.next_frame(&mut buf),
        Err(DecodeError::PacketTooLarge {
            size: MAX_REMAINING_LENGTH + 5,
            max: MAX_REMAINING_LENGTH
        })
    );
}

#[test]
fn framer_rejects_five_byte_remaining_length() {
    let mut buf = BytesMut::from(&[0x30u8, 0x80, 0x80, 0x80, 0x80, 0x01][..]);
    assert_eq!(
        Framer::new(usize::MAX).next_frame(&mut buf),
        Err(DecodeError::MalformedVarInt)
    );
}

#[test]
fn framer_splits_consecutive_frames() {
    let mut buf = BytesMut::from(&[0xC0u8, 0x00, 0xD0, 0x00, 0xE0][..]);
    let framer = Framer::new(16);
    assert_eq!(framer.next_frame(&mut buf).unwrap().unwrap().header, 0xC0);
    assert_eq!(framer.next_frame(&mut buf).unwrap().unwrap().header, 0xD0);
    assert_eq!(framer.next_frame(&mut buf), Ok(None));
    assert_eq!(&buf[..], &[0xE0]);
}

#[test]
fn publish_payload_is_a_zero_copy_slice_of_the_frame() {
    let wire = [0x30, 0x07, 0x00, 0x01, b't', b'a', b'b', b'c', b'd'];
    let frame = frame_of(&wire);
    let body_range = frame.body.as_ptr_range();
    let Ok(Packet::Publish(p)) = decode(frame, V311) else {
        panic!("not a publish")
    };
    assert_eq!(&p.payload[..], b"abcd");
    assert!(body_range.contains(&p.payload.as_ptr()));
}

// ---- Fixed-size packets (3.1.1 sections 3.12-3.14, 5.0 sections 3.12-3.14) ---------------

#[test]
fn pingreq_pingresp_are_c0_00_and_d0_00() {
    for v in [V31, V311, V5] {
        check_wire(&Packet::PingReq, v, &[0xC0, 0x00]);
        check_wire(&Packet::PingResp, v, &[0xD0, 0x00]);
    }
    // 3.12 / 3.13: no variable header or payload.
    assert!(malformed(dec(&[0xC0, 0x01, 0x00], V311)));
}

#[test]
fn disconnect_v3_is_e0_00_section_3_14() {
    for v in [V31, V311] {
        check_wire(&Packet::Disconnect(Disconnect::default()), v, &[0xE0, 0x00]);
        assert!(malformed(dec(&[0xE0, 0x01, 0x00], v)));
    }
}

#[test]
fn disconnect_v5_short_forms_section_3_14_2_1() {
    // Reason 0, no properties: remaining length 0 (MQTT 5 3.14.2.1).
    check_wire(
        &Packet::Disconnect(Disconnect::default()),
        V5,
        &[0xE0, 0x00],
    );
    // Reason only.
    let d = Disconnect {
        reason: crate::proto::reason::DISCONNECT_WITH_WILL_MESSAGE,
        properties: Properties::new(),
    };
    check_wire(&Packet::Disconnect(d), V5, &[0xE0, 0x01, 0x04]);
    // Reason 0 with a property length 0 (long form) decodes to the same packet.
    assert_eq!(
        dec(&[0xE0, 0x02, 0x00, 0x00], V5),
        Ok(Packet::Disconnect(Disconnect::default()))
    );
    // With a session expiry interval.
    let d = Disconnect {
        reason: 0,
        properties: Properties::new().with(Property::FourByte(id::SESSION_EXPIRY_INTERVAL, 0)),
    };
    check_wire(
        &Packet::Disconnect(d),
        V5,
        &[0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00],
    );
}

#[test]
fn auth_is_v5_only_section_3_15() {
    assert_eq!(
        encode(&Packet::Auth(Auth::default()), V311, &mut Vec::new()),
        Err(EncodeError::WrongVersion)
    );
    assert_eq!(
        dec(&[0xF0, 0x00], V311),
        Err(DecodeError::InvalidPacketType(15))
    );
    assert_eq!(
        dec(&[0xF0, 0x00], V31),
        Err(DecodeError::InvalidPacketType(15))
    );
    check_wire(&Packet::Auth(Auth::default()), V5, &[0xF0, 0x00]);
    let a = Auth {
        reason: crate::proto::reason::CONTINUE_AUTHENTICATION,
        properties: Properties::new()
            .with(Property::String(id::AUTHENTICATION_METHOD, "M".into()))
            .with(Property::Binary(
                id::AUTHENTICATION_DATA,
                Bytes::from_static(b"d"),
            )),
    };
    check_wire(
        &Packet::Auth(a),
        V5,
        &[
            0xF0, 0x0A, 0x18, 0x08, 0x15, 0x00, 0x01, b'M', 0x16, 0x00, 0x01, b'd',
        ],
    );
}

// ---- CONNECT (3.1.1 section 3.1, 5.0 section 3.1) --------------------------------------

#[test]
fn connect_v311_client_id_and_keepalive_section_3_1() {
    let c = Connect {
        protocol: V311,
        clean_start: true,
        keep_alive: 60,
        client_id: "a".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    };
    let wire = [
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, b'a',
    ];
    check_wire(&Packet::Connect(c.clone()), V311, &wire);
    // CONNECT carries its own version: decoding with another version gives the same.
    assert_eq!(dec(&wire, V5), Ok(Packet::Connect(c)));
}

#[test]
fn connect_v31_uses_mqisdp_level_3() {
    let c = Connect {
        protocol: V31,
        clean_start: true,
        keep_alive: 60,
        client_id: "a".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::new(),
    };
    let wire = [
        0x10, 0x0F, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x01, b'a',
    ];
    check_wire(&Packet::Connect(c), V31, &wire);
}

fn example_connect(protocol: ProtocolVersion) -> Connect {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 10,
        client_id: "c1".into(),
        will: Some(Box::new(LastWill {
            topic: "w".into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::new(),
        })),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
        properties: Properties::new(),
    }
}

#[test]
fn connect_v311_variable_header_example_flags_ce_section_3_1_2_10() {
    // 3.1.1 Figure 3.6: flags 0xCE (user name, password, will QoS 1, will, clean session),
    // keep alive 10.
    #[rustfmt::skip]
    let wire = [
        0x10, 0x1A,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xCE, 0x00, 0x0A,
        0x00, 0x02, b'c', b'1', 0x00, 0x01, b'w', 0x00, 0x01, b'x',
        0x00, 0x01, b'u', 0x00, 0x01, b'p',
    ];
    check_wire(&Packet::Connect(example_connect(V311)), V311, &wire);
}

#[test]
fn connect_v5_with_properties_section_3_1_2_12() {
    // MQTT 5 Figure 3-6: flags 0xCE, keep alive 10, properties length 5, Session Expiry
    // Interval (0x11) = 10; then an empty will property list.
    let mut c = example_connect(V5);
    c.properties
        .push(Property::FourByte(id::SESSION_EXPIRY_INTERVAL, 10));
    #[rustfmt::skip]
    let wire = [
        0x10, 0x21,
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xCE, 0x00, 0x0A,
        0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,
        0x00, 0x02, b'c', b'1', 0x00, 0x00, 0x01, b'w', 0x00, 0x01, b'x',
        0x00, 0x01, b'u', 0x00, 0x01, b'p',
    ];
    check_wire(&Packet::Connect(c), V5, &wire);
}

fn connect_with_flags(level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', level, flags, 0x00, 0x00];
    if level == 5 {
        body.push(0x00);
    }
    body.extend_from_slice(&[0x00, 0x00]); // empty client id
    body.extend_from_slice(rest);
    let mut wire = vec![0x10, body.len() as u8];
    wire.extend_from_slice(&body);
    wire
}

#[test]
fn connect_reserved_flag_must_be_zero_mqtt_3_1_2_3() {
    assert!(malformed(dec(&connect_with_flags(4, 0x03, &[]), V311)));
    assert!(dec(&connect_with_flags(4, 0x02, &[]), V311).is_ok());
}

#[test]
fn connect_will_qos_and_retain_need_will_flag_mqtt_3_1_2_11_13_15() {
    assert!(malformed(dec(&connect_with_flags(4, 0x08, &[]), V311))); // will QoS 1
    assert!(malformed(dec(&connect_with_flags(5, 0x20, &[]), V5))); // will retain
                                                                    // Will QoS 3 (MQTT-3.1.2-14).
    let will = [0x00, 0x01, b't', 0x00, 0x00];
    assert_eq!(
        dec(&connect_with_flags(4, 0x1C, &will), V311),
        Err(DecodeError::InvalidQoS)
    );
    let ok = dec(&connect_with_flags(4, 0x34, &will), V311); // will, QoS 2, retain
    let Ok(Packet::Connect(Connect { will: Some(w), .. })) = ok else {
        panic!("{ok:?}")
    };
    assert_eq!(
        (w.qos, w.retain, w.topic.as_str()),
        (QoS::ExactlyOnce, true, "t")
    );
}

#[test]
fn connect_password_without_username_mqtt_3_1_2_22() {
    // Forbidden for 3.1.1 senders (MQTT-3.1.2-22); accepted leniently. Allowed in 5.0.
    for level in [4, 5] {
        let v = ProtocolVersion::from_level(level).unwrap();
        let p = dec(
            &connect_with_flags(level, 0x40, &[0x00, 0x02, b'p', b'w']),
            v,
        );
        let Ok(Packet::Connect(c)) = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            (c.username, c.password),
            (None, Some(Bytes::from_static(b"pw")))
        );
    }
}

#[test]
fn connect_unknown_protocol_is_refused() {
    let mut wire = connect_with_flags(4, 0x02, &[]);
    wire[8] = 6; // level 6
    assert_eq!(dec(&wire, V311), Err(DecodeError::UnsupportedProtocol));
    let mut wire = connect_with_flags(4, 0x02, &[]);
    wire[4] = b'X'; // "MXTT"
    assert_eq!(dec(&wire, V311), Err(DecodeError::UnsupportedProtocol));
}

// ---- CONNACK ------------------------------------------------------------------------

#[test]
fn connack_examples_section_3_2() {
    let ack = |sp, code| ConnAck {
        session_present: sp,
        code,
        properties: Properties::new(),
    };
    check_wire(
        &Packet::ConnAck(ack(true, 0)),
        V311,
        &[0x20, 0x02, 0x01, 0x00],
    );
    check_wire(
        &Packet::ConnAck(ack(false, 5)),
        V31,
        &[0x20, 0x02, 0x00, 0x05],
    );
    check_wire(
        &Packet::ConnAck(ack(false, 0)),
        V5,
        &[0x20, 0x03, 0x00, 0x00, 0x00],
    );
    // MQTT-3.2.2-1: reserved bits of the acknowledge flags.
    assert!(malformed(dec(&[0x20, 0x02, 0x02, 0x00], V311)));
    let mut c = ack(false, 0);
    c.properties.push(Property::Byte(id::MAXIMUM_QOS, 1));
    c.properties.push(Property::String(
        id::ASSIGNED_CLIENT_IDENTIFIER,
        "id".into(),
    ));
    check_wire(
        &Packet::ConnAck(c),
        V5,
        &[
            0x20, 0x0A, 0x00, 0x00, 0x07, 0x24, 0x01, 0x12, 0x00, 0x02, b'i', b'd',
        ],
    );
}

// ---- PUBLISH (3.1.1 section 3.3, 5.0 section 3.3) -----------------------------------------

fn publish(qos: QoS, pkid: u16, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: "a/b".into(),
        pkid,
        payload: Bytes::from_static(payload),
        properties: Properties::new(),
    }
}

#[test]
fn publish_variable_header_example_section_3_3_2_3() {
    // 3.1.1 Figure 3.11: topic "a/b", packet identifier 10.
    let p = publish(QoS::AtLeastOnce, 10, b"hi");
    let wire = [
        0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'h', b'i',
    ];
    check_wire(&Packet::Publish(p.clone()), V311, &wire);
    // 5.0: property length 0 follows the packet identifier.
    let wire5 = [
        0x32, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, 0x00, b'h', b'i',
    ];
    check_wire(&Packet::Publish(p), V5, &wire5);
    // QoS 0, retain: no packet identifier.
    let mut p = publish(QoS::AtMostOnce, 0, b"");
    p.retain = true;
    check_wire(
        &Packet::Publish(p),
        V311,
        &[0x31, 0x05, 0x00, 0x03, b'a', b'/', b'b'],
    );
}

#[test]
fn publish_qos_3_is_invalid_mqtt_3_3_1_4() {
    let wire = [0x36, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01];
    assert_eq!(dec(&wire, V311), Err(DecodeError::InvalidQoS));
}

#[test]
fn publish_qos0_with_dup_mqtt_3_3_1_2() {
    let wire = [0x38, 0x05, 0x00, 0x03, b'a', b'/', b'b'];
    // 3.x: tolerated, DUP cleared.
    assert_eq!(
        dec(&wire, V311),
        Ok(Packet::Publish(publish(QoS::AtMostOnce, 0, b"")))
    );
    let wire5 = [0x38, 0x06, 0x00, 0x03, b'a', b'/', b'b', 0x00];
    assert!(malformed(dec(&wire5, V5)));
    // Never encoded.
    let mut p = publish(QoS::AtMostOnce, 0, b"");
    p.dup = true;
    assert!(matches!(
        encoded_len(&Packet::Publish(p), V311),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn publish_packet_identifier_rules_mqtt_2_2_1_2_and_3() {
    // Packet identifier 0 with QoS > 0 (MQTT-2.2.1-3; 3.1.1 MQTT-2.3.1-1).
    let wire = [0x32, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x00];
    assert!(malformed(dec(&wire, V311)));
    for (qos, pkid) in [
        (QoS::AtLeastOnce, 0),
        (QoS::ExactlyOnce, 0),
        (QoS::AtMostOnce, 7),
    ] {
        let r = encode(
            &Packet::Publish(publish(qos, pkid, b"")),
            V5,
            &mut Vec::new(),
        );
        assert!(matches!(r, Err(EncodeError::Invalid(_))), "{qos:?} {pkid}");
    }
}

#[test]
fn publish_v5_properties_in_order_with_repeated_user_and_subscription_ids() {
    let mut p = publish(QoS::AtMostOnce, 0, b"");
    p.properties = Properties::new()
        .with(Property::UserProperty("k".into(), "1".into()))
        .with(Property::VarInt(id::SUBSCRIPTION_IDENTIFIER, 128))
        .with(Property::Byte(id::PAYLOAD_FORMAT_INDICATOR, 1))
        .with(Property::UserProperty("k".into(), "2".into()))
        .with(Property::VarInt(id::SUBSCRIPTION_IDENTIFIER, 2));
    #[rustfmt::skip]
    let wire = [
        0x30, 0x1B, 0x00, 0x03, b'a', b'/', b'b',
        0x15,
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'1',
        0x0B, 0x80, 0x01,
        0x01, 0x01,
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'2',
        0x0B, 0x02,
    ];
    check_wire(&Packet::Publish(p), V5, &wire);
}

// ---- Properties (MQTT 5 section 2.2.2) ---------------------------------------------------

fn publish_v5_with_props(props: &[u8]) -> Vec<u8> {
    let mut wire = vec![
        0x30,
        (4 + props.len()) as u8,
        0x00,
        0x01,
        b't',
        props.len() as u8,
    ];
    wire.extend_from_slice(props);
    wire
}

#[test]
fn unknown_property_is_invalid_section_2_2_2_2() {
    let r = dec(&publish_v5_with_props(&[0x7F, 0x00]), V5);
    assert_eq!(r, Err(DecodeError::InvalidProperty(0x7F)));
}

#[test]
fn property_not_allowed_in_packet_is_invalid() {
    // Session Expiry Interval is not a PUBLISH property.
    let r = dec(&publish_v5_with_props(&[0x11, 0, 0, 0, 1]), V5);
    assert_eq!(r, Err(DecodeError::InvalidProperty(0x11)));
    let p = Publish {
        properties: Properties::new().with(Property::FourByte(id::SESSION_EXPIRY_INTERVAL, 1)),
        ..publish(QoS::AtMostOnce, 0, b"")
    };
    assert!(matches!(
        encoded_len(&Packet::Publish(p), V5),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn duplicate_once_only_property_is_a_protocol_error() {
    // 5.0 3.3.2.3.2: more than one Payload Format Indicator is a protocol error.
    let r = dec(&publish_v5_with_props(&[0x01, 0x00, 0x01, 0x01]), V5);
    assert_eq!(r, Err(DecodeError::InvalidProperty(0x01)));
    // Two subscription identifiers in SUBSCRIBE (3.8.2.1.2).
    let wire = [
        0x82, 0x0A, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b't', 0x00,
    ];
    // (remaining length fixed up below)
    let mut wire = wire.to_vec();
    wire[1] = (wire.len() - 2) as u8;
    assert_eq!(dec(&wire, V5), Err(DecodeError::InvalidProperty(0x0B)));
}

#[test]
fn subscription_identifier_zero_is_refused_section_3_8_2_1_2() {
    let r = dec(&publish_v5_with_props(&[0x0B, 0x00]), V5);
    assert_eq!(r, Err(DecodeError::InvalidProperty(0x0B)));
}

#[test]
fn property_length_beyond_packet_and_truncated_values_are_malformed() {
    let mut wire = publish_v5_with_props(&[0x02, 0x00, 0x00]); // 4-byte value cut short
    assert!(malformed(dec(&wire, V5)));
    wire[5] = 9; // property length longer than what follows
    assert!(malformed(dec(&wire, V5)));
}

#[test]
fn property_type_mismatch_is_refused_when_encoding() {
    let p = Publish {
        properties: Properties::new().with(Property::Byte(id::MESSAGE_EXPIRY_INTERVAL, 1)),
        ..publish(QoS::AtMostOnce, 0, b"")
    };
    assert!(matches!(
        encoded_len(&Packet::Publish(p), V5),
        Err(EncodeError::Invalid(_))
    ));
}

// ---- UTF-8 strings (section 1.5.4) ---------------------------------------------------------

#[test]
fn invalid_utf8_is_refused_mqtt_1_5_4_1() {
    let wire = [0x30, 0x04, 0x00, 0x02, 0xC3, 0x28];
    assert_eq!(
        dec(&wire, V311),
        Err(DecodeError::InvalidUtf8("topic name"))
    );
    // Encoded surrogate U+D800 (ED A0 80) is not valid UTF-8 either.
    let wire = [0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80];
    assert_eq!(
        dec(&wire, V311),
        Err(DecodeError::InvalidUtf8("topic name"))
    );
}

#[test]
fn null_character_is_refused_mqtt_1_5_4_2() {
    let wire = [0x30, 0x04, 0x00, 0x02, b'a', 0x00];
    assert_eq!(
        dec(&wire, V311),
        Err(DecodeError::InvalidUtf8("topic name"))
    );
    let p = Publish {
        topic: "a\0".into(),
        ..publish(QoS::AtMostOnce, 0, b"")
    };
    assert!(matches!(
        encoded_len(&Packet::Publish(p), V311),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn truncated_string_is_malformed() {
    let wire = [0x30, 0x03, 0x00, 0x05, b'a'];
    assert!(malformed(dec(&wire, V311)));
}

// ---- PUBACK / PUBREC / PUBREL / PUBCOMP (sections 3.4-3.7) -------------------------------

#[test]
fn puback_forms_section_3_4() {
    let ok = PubResp::new(1);
    check_wire(&Packet::PubAck(ok.clone()), V311, &[0x40, 0x02, 0x00, 0x01]);
    // 5.0 3.4.2.1: remaining length 2 means reason 0 and no properties.
    check_wire(&Packet::PubAck(ok.clone()), V5, &[0x40, 0x02, 0x00, 0x01]);
    let reason_only = PubResp {
        reason: crate::proto::reason::NO_MATCHING_SUBSCRIBERS,
        ..ok.clone()
    };
    check_wire(
        &Packet::PubAck(reason_only),
        V5,
        &[0x40, 0x03, 0x00, 0x01, 0x10],
    );
    let with_props = PubResp {
        reason: 0x80,
        pkid: 0x1234,
        properties: Properties::new().with(Property::String(id::REASON_STRING, "no".into())),
    };
    check_wire(
        &Packet::PubAck(with_props),
        V5,
        &[
            0x40, 0x09, 0x12, 0x34, 0x80, 0x05, 0x1F, 0x00, 0x02, b'n', b'o',
        ],
    );
    // 3.x has no reason code: extra bytes are malformed.
    assert!(malformed(dec(&[0x40, 0x03, 0x00, 0x01, 0x10], V311)));
    assert!(malformed(dec(&[0x40, 0x01, 0x00], V5)));
    check_wire(
        &Packet::PubRec(PubResp::new(2)),
        V311,
        &[0x50, 0x02, 0x00, 0x02],
    );
    check_wire(
        &Packet::PubRel(PubResp::new(3)),
        V311,
        &[0x62, 0x02, 0x00, 0x03],
    );
    check_wire(
        &Packet::PubComp(PubResp::new(4)),
        V5,
        &[0x70, 0x02, 0x00, 0x04],
    );
}

#[test]
fn fixed_header_flags_mqtt_2_2_2_1_and_2() {
    // PUBREL with flags 0 (MQTT-3.6.1-1 requires 0b0010).
    assert_eq!(
        dec(&[0x60, 0x02, 0x00, 0x01], V311),
        Err(DecodeError::InvalidFlags {
            packet_type: 6,
            flags: 0
        })
    );
    // PUBACK with a flag set.
    assert_eq!(
        dec(&[0x42, 0x02, 0x00, 0x01], V5),
        Err(DecodeError::InvalidFlags {
            packet_type: 4,
            flags: 2
        })
    );
    // SUBSCRIBE 0x80 (MQTT-3.8.1-1) and UNSUBSCRIBE 0xA0 (MQTT-3.10.1-1).
    let sub = [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b't', 0x00];
    assert!(matches!(
        dec(&sub, V311),
        Err(DecodeError::InvalidFlags { packet_type: 8, .. })
    ));
    let unsub = [0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, b't'];
    assert!(matches!(
        dec(&unsub, V311),
        Err(DecodeError::InvalidFlags {
            packet_type: 10,
            ..
        })
    ));
    // PINGREQ with a flag set.
    assert!(matches!(
        dec(&[0xC1, 0x00], V311),
        Err(DecodeError::InvalidFlags { .. })
    ));
    // Type 0 is reserved.
    assert_eq!(
        dec(&[0x00, 0x00], V311),
        Err(DecodeError::InvalidPacketType(0))
    );
}

// ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK (sections 3.8-3.11) ----------------------

fn sub(filter: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter {
        filter: filter.into(),
        options: SubscribeOptions {
            qos,
            ..SubscribeOptions::default()
        },
    }
}

#[test]
fn subscribe_payload_example_fixed_header_0x82_section_3_8() {
    // 3.1.1 Figure 3.21/3.22: packet identifier 10, "a/b" QoS 1, "c/d" QoS 2.
    let s = Subscribe {
        pkid: 10,
        filters: vec![sub("a/b", QoS::AtLeastOnce), sub("c/d", QoS::ExactlyOnce)],
        properties: Properties::new(),
    };
    #[rustfmt::skip]
    let wire = [
        0x82, 0x0E, 0x00, 0x0A,
        0x00, 0x03, b'a', b'/', b'b', 0x01,
        0x00, 0x03, b'c', b'/', b'd', 0x02,
    ];
    check_wire(&Packet::Subscribe(s), V311, &wire);
}

#[test]
fn subscribe_v5_options_byte_section_3_8_3_1() {
    let s = Subscribe {
        pkid: 1,
        filters: vec![SubscribeFilter {
            filter: "t".into(),
            options: SubscribeOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        }],
        properties: Properties::new().with(Property::VarInt(id::SUBSCRIPTION_IDENTIFIER, 5)),
    };
    check_wire(
        &Packet::Subscribe(s),
        V5,
        &[
            0x82, 0x09, 0x00, 0x01, 0x02, 0x0B, 0x05, 0x00, 0x01, b't', 0x2D,
        ],
    );
}

#[test]
fn subscribe_invalid_options_and_empty_payload() {
    let with_opts = |o: u8| [0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b't', o];
    let v3 = |o: u8| [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b't', o];
    // 5.0: reserved bits 6-7 (MQTT-3.8.3-5) and retain handling 3 (3.8.3.1).
    assert!(malformed(dec(&with_opts(0x40), V5)));
    assert!(malformed(dec(&with_opts(0x30), V5)));
    assert_eq!(dec(&with_opts(0x03), V5), Err(DecodeError::InvalidQoS));
    // 3.1.1 MQTT-3-8.3-4: upper 6 bits reserved.
    assert!(malformed(dec(&v3(0x04), V311)));
    assert!(dec(&v3(0x02), V311).is_ok());
    // No topic filter (MQTT-3.8.3-3) and packet identifier 0 (MQTT-2.3.1-1).
    assert!(malformed(dec(&[0x82, 0x02, 0x00, 0x01], V311)));
    assert!(malformed(dec(
        &[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b't', 0x00],
        V311
    )));
    let empty = Subscribe {
        pkid: 1,
        filters: vec![],
        properties: Properties::new(),
    };
    assert!(matches!(
        encoded_len(&Packet::Subscribe(empty), V311),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn suback_return_codes_any_byte_section_3_9_3() {
    // 3.1.1 Figure 3.26: return codes 0, 1, 2 and failure 0x80.
    let s = SubAck {
        pkid: 10,
        return_codes: vec![0x00, 0x01, 0x02, 0x80],
        properties: Properties::new(),
    };
    check_wire(
        &Packet::SubAck(s.clone()),
        V311,
        &[0x90, 0x06, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x80],
    );
    check_wire(
        &Packet::SubAck(s),
        V5,
        &[0x90, 0x07, 0x00, 0x0A, 0x00, 0x00, 0x01, 0x02, 0x80],
    );
    let odd = dec(&[0x90, 0x03, 0x00, 0x01, 0x77], V311);
    assert!(
        matches!(odd, Ok(Packet::SubAck(SubAck { ref return_codes, .. })) if return_codes == &[0x77])
    );
}

#[test]
fn unsubscribe_payload_example_section_3_10_3() {
    // 3.1.1 Figure 3.30: "a/b" and "c/d"; fixed header 0xA2 (MQTT-3.10.1-1).
    let u = Unsubscribe {
        pkid: 10,
        filters: vec!["a/b".into(), "c/d".into()],
        properties: Properties::new(),
    };
    #[rustfmt::skip]
    let wire = [
        0xA2, 0x0C, 0x00, 0x0A,
        0x00, 0x03, b'a', b'/', b'b',
        0x00, 0x03, b'c', b'/', b'd',
    ];
    check_wire(&Packet::Unsubscribe(u), V311, &wire);
    // MQTT-3.10.3-2: at least one topic filter.
    assert!(malformed(dec(&[0xA2, 0x02, 0x00, 0x01], V311)));
}

#[test]
fn unsuback_v3_has_no_reason_codes_section_3_11() {
    let u = UnsubAck {
        pkid: 10,
        reason_codes: vec![],
        properties: Properties::new(),
    };
    check_wire(
        &Packet::UnsubAck(u.clone()),
        V311,
        &[0xB0, 0x02, 0x00, 0x0A],
    );
    assert!(malformed(dec(&[0xB0, 0x03, 0x00, 0x0A, 0x00], V311)));
    let u5 = UnsubAck {
        reason_codes: vec![0x00, 0x11],
        ..u
    };
    check_wire(
        &Packet::UnsubAck(u5),
        V5,
        &[0xB0, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x11],
    );
}

// ---- Encoder limits -------------------------------------------------------------------

#[test]
fn field_longer_than_65535_is_refused_section_1_5_4() {
    let p = Publish {
        topic: "a".repeat(65_536),
        ..publish(QoS::AtMostOnce, 0, b"")
    };
    let mut out = Vec::new();
    assert_eq!(
        encode(&Packet::Publish(p), V311, &mut out),
        Err(EncodeError::FieldTooLong("topic name"))
    );
    assert!(out.is_empty(), "nothing appended on error");
    let mut c = example_connect(V311);
    c.password = Some(Bytes::from(vec![0u8; 65_536]));
    assert_eq!(
        encoded_len(&Packet::Connect(c), V311),
        Err(EncodeError::FieldTooLong("password"))
    );
    // Exactly 65535 is fine.
    let p = Publish {
        topic: "a".repeat(65_535),
        ..publish(QoS::AtMostOnce, 0, b"")
    };
    assert_eq!(
        encoded_len(&Packet::Publish(p), V311),
        Ok(1 + 3 + 2 + 65_535)
    );
}

#[test]
fn packet_over_max_remaining_length_is_refused() {
    // A zeroed allocation is not touched by encoded_len / the failing encode, so this stays
    // cheap in resident memory.
    let payload = Bytes::from(vec![0u8; MAX_REMAINING_LENGTH]);
    let p = Packet::Publish(Publish {
        topic: "t".into(),
        payload,
        ..publish(QoS::AtMostOnce, 0, b"")
    });
    assert_eq!(encoded_len(&p, V311), Err(EncodeError::PacketTooLarge));
    let mut out = Vec::new();
    assert_eq!(encode(&p, V311, &mut out), Err(EncodeError::PacketTooLarge));
    assert_eq!(out.capacity(), 0);
}

#[test]
fn encode_appends_to_existing_bytes() {
    let mut out = vec![0xAA];
    assert_eq!(encode(&Packet::PingReq, V311, &mut out), Ok(2));
    assert_eq!(out, [0xAA, 0xC0, 0x00]);
}

#[test]
fn v3_ignores_v5_only_fields_when_encoding() {
    let r = PubResp {
        pkid: 1,
        reason: 0x80,
        properties: Properties::new().with(Property::String(id::REASON_STRING, "x".into())),
    };
    assert_eq!(enc(&Packet::PubAck(r), V311), [0x40, 0x02, 0x00, 0x01]);
}
