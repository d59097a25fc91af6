//! Property tests of the MQTT codec: round trips for every packet type in every version,
//! byte-at-a-time framing, robustness on arbitrary and mutated input, and the size limit.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use mqttsync::internals::proto::codec::{
    decode, encode, encoded_len, DecodeError, Framer, MAX_REMAINING_LENGTH,
};
use mqttsync::internals::proto::properties::{property_type, Properties, Property, PropertyType};
use mqttsync::internals::proto::*;

#[path = "../fuzz/check.rs"]
mod fuzz_check;

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

// ---- strategies -------------------------------------------------------------------------

/// UTF-8 strings without U+0000 (MQTT-1.5.4-2), including multi-byte characters.
fn string() -> impl Strategy<Value = String> {
    "[^\\x00]{0,12}"
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn subscription_id() -> impl Strategy<Value = Property> {
    (1..=MAX_REMAINING_LENGTH as u32).prop_map(|v| Property::VarInt(0x0B, v))
}

/// A value of the right wire type for property `id`.
fn property_value(id: u8) -> BoxedStrategy<Property> {
    match property_type(id).expect("known id") {
        PropertyType::Byte => any::<u8>().prop_map(move |v| Property::Byte(id, v)).boxed(),
        PropertyType::TwoByteInteger => any::<u16>()
            .prop_map(move |v| Property::TwoByte(id, v))
            .boxed(),
        PropertyType::FourByteInteger => any::<u32>()
            .prop_map(move |v| Property::FourByte(id, v))
            .boxed(),
        PropertyType::VariableByteInteger => subscription_id().boxed(),
        PropertyType::BinaryData => binary().prop_map(move |v| Property::Binary(id, v)).boxed(),
        PropertyType::Utf8String => string().prop_map(move |v| Property::String(id, v)).boxed(),
        PropertyType::Utf8StringPair => (string(), string())
            .prop_map(|(k, v)| Property::UserProperty(k, v))
            .boxed(),
    }
}

// Once-only properties allowed per packet, from the MQTT 5 section 2.2.2.2 table.
const CONNECT_PROPS: &[u8] = &[0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x27];
const WILL_PROPS: &[u8] = &[0x01, 0x02, 0x03, 0x08, 0x09, 0x18];
const CONNACK_PROPS: &[u8] = &[
    0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x27, 0x28, 0x29, 0x2A,
];
const PUBLISH_PROPS: &[u8] = &[0x01, 0x02, 0x03, 0x08, 0x09, 0x23];
const REASON_STRING_ONLY: &[u8] = &[0x1F];
const SUBSCRIBE_PROPS: &[u8] = &[0x0B];
const DISCONNECT_PROPS: &[u8] = &[0x11, 0x1C, 0x1F];
const AUTH_PROPS: &[u8] = &[0x15, 0x16, 0x1F];

/// Any subset of `once` in any order, interleaved with several user properties (and, for
/// PUBLISH, several subscription identifiers). Empty for 3.x.
fn properties(
    v: ProtocolVersion,
    once: &'static [u8],
    repeat_subscription_id: bool,
) -> BoxedStrategy<Properties> {
    if !v.is_v5() {
        return Just(Properties::new()).boxed();
    }
    let singles = proptest::sample::subsequence(once.to_vec(), 0..=once.len())
        .prop_flat_map(|ids| ids.into_iter().map(property_value).collect::<Vec<_>>());
    let users = vec(property_value(0x26), 0..3);
    let sub_ids = vec(
        subscription_id(),
        0..if repeat_subscription_id { 3 } else { 1 },
    );
    (singles, users, sub_ids)
        .prop_flat_map(|(mut all, users, sub_ids)| {
            all.extend(users);
            all.extend(sub_ids);
            Just(all).prop_shuffle()
        })
        .prop_map(Properties)
        .boxed()
}

fn reason(v: ProtocolVersion) -> BoxedStrategy<u8> {
    if v.is_v5() {
        any::<u8>().boxed()
    } else {
        Just(0).boxed()
    }
}

fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = (
        string(),
        binary(),
        qos(),
        any::<bool>(),
        properties(v, WILL_PROPS, false),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        string(),
        proptest::option::of(will),
        proptest::option::of(string()),
        proptest::option::of(binary()),
        properties(v, CONNECT_PROPS, false),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                Packet::Connect(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will: will.map(Box::new),
                    username,
                    password,
                    properties,
                })
            },
        )
}

fn publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        string(),
        1..=u16::MAX,
        binary(),
        properties(v, PUBLISH_PROPS, true),
    )
        .prop_map(|(qos, dup, retain, topic, pkid, payload, properties)| {
            let qos0 = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !qos0, // MQTT-3.3.1-2
                qos,
                retain,
                topic,
                pkid: if qos0 { 0 } else { pkid },
                payload,
                properties,
            })
        })
}

fn pub_resp(v: ProtocolVersion) -> impl Strategy<Value = PubResp> {
    (
        any::<u16>(),
        reason(v),
        properties(v, REASON_STRING_ONLY, false),
    )
        .prop_map(|(pkid, reason, properties)| PubResp {
            pkid,
            reason,
            properties,
        })
}

fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let options = if v.is_v5() {
        (
            qos(),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                Just(RetainHandling::SendAtSubscribe),
                Just(RetainHandling::SendAtSubscribeIfNew),
                Just(RetainHandling::DoNotSend)
            ],
        )
            .prop_map(
                |(qos, no_local, retain_as_published, retain_handling)| SubscribeOptions {
                    qos,
                    no_local,
                    retain_as_published,
                    retain_handling,
                },
            )
            .boxed()
    } else {
        qos()
            .prop_map(|qos| SubscribeOptions {
                qos,
                ..SubscribeOptions::default()
            })
            .boxed()
    };
    let filter =
        (string(), options).prop_map(|(filter, options)| SubscribeFilter { filter, options });
    (
        1..=u16::MAX,
        vec(filter, 1..4),
        properties(v, SUBSCRIBE_PROPS, false),
    )
        .prop_map(|(pkid, filters, properties)| {
            Packet::Subscribe(Subscribe {
                pkid,
                filters,
                properties,
            })
        })
}

fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v5 = v.is_v5();
    let codes = if v5 {
        vec(any::<u8>(), 0..4).boxed()
    } else {
        Just(vec![]).boxed()
    };
    let mut choices: Vec<BoxedStrategy<Packet>> = vec![
        connect(v).boxed(),
        (
            any::<bool>(),
            any::<u8>(),
            properties(v, CONNACK_PROPS, false),
        )
            .prop_map(|(session_present, code, properties)| {
                Packet::ConnAck(ConnAck {
                    session_present,
                    code,
                    properties,
                })
            })
            .boxed(),
        publish(v).boxed(),
        pub_resp(v).prop_map(Packet::PubAck).boxed(),
        pub_resp(v).prop_map(Packet::PubRec).boxed(),
        pub_resp(v).prop_map(Packet::PubRel).boxed(),
        pub_resp(v).prop_map(Packet::PubComp).boxed(),
        subscribe(v).boxed(),
        (
            any::<u16>(),
            vec(any::<u8>(), 0..4),
            properties(v, REASON_STRING_ONLY, false),
        )
            .prop_map(|(pkid, return_codes, properties)| {
                Packet::SubAck(SubAck {
                    pkid,
                    return_codes,
                    properties,
                })
            })
            .boxed(),
        (1..=u16::MAX, vec(string(), 1..4), properties(v, &[], false))
            .prop_map(|(pkid, filters, properties)| {
                Packet::Unsubscribe(Unsubscribe {
                    pkid,
                    filters,
                    properties,
                })
            })
            .boxed(),
        (
            any::<u16>(),
            codes,
            properties(v, REASON_STRING_ONLY, false),
        )
            .prop_map(|(pkid, reason_codes, properties)| {
                Packet::UnsubAck(UnsubAck {
                    pkid,
                    reason_codes,
                    properties,
                })
            })
            .boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        (reason(v), properties(v, DISCONNECT_PROPS, false))
            .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }))
            .boxed(),
    ];
    if v5 {
        choices.push(
            (any::<u8>(), properties(v, AUTH_PROPS, false))
                .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }))
                .boxed(),
        );
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn version_and_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    proptest::sample::select(VERSIONS.to_vec()).prop_flat_map(|v| (Just(v), packet(v)))
}

fn version_and_packets() -> impl Strategy<Value = (ProtocolVersion, Vec<Packet>)> {
    proptest::sample::select(VERSIONS.to_vec()).prop_flat_map(|v| (Just(v), vec(packet(v), 1..6)))
}

fn encode_ok(p: &Packet, v: ProtocolVersion) -> Vec<u8> {
    let mut out = Vec::new();
    let n = encode(p, v, &mut out).expect("encode");
    assert_eq!(n, out.len());
    out
}

// ---- properties ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// encode -> Framer -> decode gives the original packet; encoded_len is exact.
    #[test]
    fn round_trip_every_packet_every_version((v, p) in version_and_packet()) {
        let wire = encode_ok(&p, v);
        prop_assert_eq!(encoded_len(&p, v), Ok(wire.len()));
        let mut buf = BytesMut::from(&wire[..]);
        let frame = Framer::new(wire.len()).next_frame(&mut buf).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decode(frame, v), Ok(p));
    }

    /// Bytes arriving one at a time yield the same packets, in order.
    #[test]
    fn byte_at_a_time_framing((v, packets) in version_and_packets()) {
        let mut wire = Vec::new();
        for p in &packets {
            let n = encode(p, v, &mut wire).unwrap();
            prop_assert_eq!(encoded_len(p, v), Ok(n));
        }
        let framer = Framer::new(MAX_REMAINING_LENGTH + 5);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in &wire {
            buf.extend_from_slice(&[b]);
            while let Some(frame) = framer.next_frame(&mut buf).unwrap() {
                out.push(decode(frame, v).unwrap());
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(out, packets);
    }

    /// Arbitrary bytes never panic, and whatever decodes re-encodes (the fuzz check).
    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..300)) {
        let _ = fuzz_check::check_decode(&data);
    }

    /// Arbitrary bytes behind a valid header byte of each type reach the body parsers.
    #[test]
    fn arbitrary_bodies_never_panic(header in any::<u8>(), body in vec(any::<u8>(), 0..120)) {
        let mut data = vec![header, body.len() as u8];
        data.extend_from_slice(&body);
        let _ = fuzz_check::check_decode(&data);
    }

    /// Valid encodings with bytes changed, inserted or cut never panic either.
    #[test]
    fn mutated_encodings_never_panic(
        (v, p) in version_and_packet(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut wire = encode_ok(&p, v);
        for (at, byte, kind) in edits {
            if wire.is_empty() {
                break;
            }
            let i = at.index(wire.len());
            match kind {
                0 => wire[i] = byte,
                1 => wire.insert(i, byte),
                _ => wire.truncate(i),
            }
        }
        let _ = fuzz_check::check_decode(&wire);
    }

    /// A frame announcing more than the maximum is refused with only its header present.
    #[test]
    fn oversized_frame_refused_from_header_alone(
        header in any::<u8>(),
        remaining in 0..=MAX_REMAINING_LENGTH,
        max_frac in 0.0f64..1.0,
    ) {
        let mut head = vec![header];
        mqttsync::internals::proto::codec::write_varint(remaining, &mut head).unwrap();
        let total = head.len() + remaining;
        let max = ((total as f64) * max_frac) as usize; // strictly below total
        prop_assume!(max < total);
        let mut buf = BytesMut::from(&head[..]);
        prop_assert_eq!(
            Framer::new(max).next_frame(&mut buf),
            Err(DecodeError::PacketTooLarge { size: total, max })
        );
        prop_assert_eq!(buf.len(), head.len(), "nothing consumed");
        // With the limit at the total size, the same header just waits for the body.
        prop_assert_eq!(Framer::new(total).next_frame(&mut buf), Ok(None));
    }
}

/// The fuzz target's check on a few hand-picked inputs (one per packet type and version).
#[test]
fn fuzz_check_on_valid_stream() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for v in VERSIONS {
        let mut wire = Vec::new();
        for _ in 0..200 {
            let p = packet(v).new_tree(&mut runner).unwrap().current();
            encode(&p, v, &mut wire).unwrap();
        }
        // Every packet decodes in its own version (others may accept some as well).
        assert!(fuzz_check::check_decode(&wire) >= 200, "{v:?}");
    }
}

/// Every input kept in the decode fuzz corpus (`fuzz/corpus/decode`) still passes the
/// fuzz check.
#[test]
fn decode_fuzz_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut n = 0;
    let mut decoded = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/decode exists") {
        let data = std::fs::read(entry.expect("dir entry").path()).expect("corpus file");
        decoded += fuzz_check::check_decode(&data);
        n += 1;
    }
    assert!(
        n >= 10 && decoded > 0,
        "{n} inputs, {decoded} packets decoded"
    );
}
