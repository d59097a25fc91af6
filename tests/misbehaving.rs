//! The client against misbehaving servers, played by the scripted fake broker
//! (`tests/common/fake_broker.rs`): refused CONNACKs, malformed and oversized packets,
//! protocol violations, a server that stops answering, a drop in the middle of a QoS 2
//! flow, and a server that sends faster than the application reads.
//!
//! Every case asserts the exact outcome: the error the API returns, what the client sent
//! before closing (the v5 DISCONNECT reason code), its state, `last_error()`, the
//! connection-lost callback, and that waiting calls fail promptly.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::fake_broker::{connack, pkid, raw};
use common::{unique_client_id, wait_until, FakeBroker, Flood, Kind, Script, DEADLINE};
use mqttsync::internals::proto::properties::id as prop;
use mqttsync::internals::proto::reason::{self, connack_v3_name, reason_name};
use mqttsync::internals::proto::{ConnAck, Packet, Properties, Property, PubResp, Publish, SubAck};
use mqttsync::{
    Client, ConnectOptions, Error, LostCause, Message, ProtocolVersion, QoS, ReconnectOptions,
    State, Step,
};

const V311: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Upper bound for "promptly": a waiting call ends this soon after the loss is declared
/// (well under the 10 s it would otherwise wait; generous for a loaded 2-core machine).
const PROMPT: Duration = Duration::from_secs(2);

fn opts(fake: &FakeBroker, v: ProtocolVersion) -> ConnectOptions {
    ConnectOptions::new(&fake.uri())
        .client_id(unique_client_id("mis"))
        .version(v)
        .connect_timeout(DEADLINE)
        .request_timeout(DEADLINE)
}

#[track_caller]
fn join(fake: &mut FakeBroker) {
    if let Err(e) = fake.join() {
        panic!("fake broker script failed: {e}");
    }
}

fn publish_qos0(topic: &str, payload: &'static str) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        pkid: 0,
        payload: Bytes::from_static(payload.as_bytes()),
        properties: Properties::new(),
    })
}

fn disconnect_reasons(packets: &[Packet]) -> Vec<u8> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Disconnect(d) => Some(d.reason),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Refused CONNACK
// ---------------------------------------------------------------------------------------

fn refused(v: ProtocolVersion, code: u8, properties: Properties) {
    let mut fake = FakeBroker::start(
        Script::new()
            .expect(Kind::Connect)
            .send(Packet::ConnAck(ConnAck {
                session_present: false,
                code,
                properties: properties.clone(),
            }))
            // Nothing more from the client: it just closes.
            .expect_closed(),
    );
    let err = Client::connect(opts(&fake, v)).expect_err("connect must be refused");
    let want_reason = if v == V5 {
        reason_name(code).expect("a defined v5 reason code")
    } else {
        connack_v3_name(code)
    };
    match err {
        Error::ConnectionRefused {
            code: c,
            reason,
            properties: p,
        } => {
            assert_eq!(c, code);
            assert_eq!(reason, want_reason);
            assert_eq!(p, properties, "v5 CONNACK properties are handed over");
        }
        other => panic!("expected ConnectionRefused({code:#04x}), got {other:?}"),
    }
    join(&mut fake);
}

macro_rules! refused_tests {
    ($($name:ident: $v:expr, $code:expr, $props:expr;)*) => {$(
        #[test]
        fn $name() {
            refused($v, $code, $props);
        }
    )*};
}

refused_tests! {
    refused_v3_unacceptable_protocol_version: V311, 1, Properties::new();
    refused_v3_identifier_rejected: V311, 2, Properties::new();
    refused_v3_server_unavailable: V311, 3, Properties::new();
    refused_v3_bad_user_name_or_password: V311, 4, Properties::new();
    refused_v3_not_authorized: V311, 5, Properties::new();
    refused_v31_identifier_rejected: ProtocolVersion::V31, 2, Properties::new();
    refused_v5_client_identifier_not_valid: V5, reason::CLIENT_IDENTIFIER_NOT_VALID, Properties::new();
    refused_v5_bad_user_name_or_password: V5, reason::BAD_USER_NAME_OR_PASSWORD, Properties::new();
    refused_v5_not_authorized_with_reason_string: V5, reason::NOT_AUTHORIZED,
        Properties::new().with(Property::String(prop::REASON_STRING, "go away".into()));
    refused_v5_server_unavailable: V5, reason::SERVER_UNAVAILABLE, Properties::new();
    refused_v5_use_another_server_with_server_reference: V5, reason::USE_ANOTHER_SERVER,
        Properties::new().with(Property::String(prop::SERVER_REFERENCE, "other.example:1883".into()));
}

// ---------------------------------------------------------------------------------------
// Before CONNACK
// ---------------------------------------------------------------------------------------

#[test]
fn no_connack_times_out_at_the_connect_timeout() {
    let mut fake = FakeBroker::start(Script::new().expect(Kind::Connect).stall());
    let timeout = Duration::from_secs(1);
    let start = Instant::now();
    let err = Client::connect(opts(&fake, V311).connect_timeout(timeout))
        .expect_err("no CONNACK: connect must fail");
    let took = start.elapsed();
    match err {
        Error::Timeout { step, after } => {
            assert_eq!(step, Step::ConnAck);
            assert_eq!(after, timeout);
        }
        other => panic!("expected Timeout(ConnAck), got {other:?}"),
    }
    assert!(
        took >= timeout - Duration::from_millis(50) && took < timeout + Duration::from_millis(1500),
        "connect gave up after {took:?}, the timeout is {timeout:?}"
    );
    join(&mut fake);
}

#[test]
fn connection_closed_before_connack_is_a_clear_error() {
    for v in [V311, V5] {
        let mut fake = FakeBroker::start(Script::new().expect(Kind::Connect).close());
        let err = Client::connect(opts(&fake, v)).expect_err("closed before CONNACK");
        match &err {
            Error::ConnectionLost(LostCause::ClosedBeforeConnAck) => {}
            other => panic!("{v:?}: expected ConnectionLost(.. before CONNACK), got {other:?}"),
        }
        join(&mut fake);
    }
}

#[test]
fn garbage_instead_of_connack_is_a_protocol_error() {
    // An HTTP answer: 'H' = 0x48 reads as PUBACK with flags 0x8 (invalid, MQTT-2.1.3-1) and
    // 'T' = 84 as its remaining length; padded so that the frame is complete.
    let mut http = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec();
    http.resize(86, b' ');
    // A CONNACK whose acknowledge flags have reserved bits set (MQTT-3.2.2-1).
    let bad_connack = vec![0x20, 0x02, 0xFE, 0x00];
    for v in [V311, V5] {
        for (garbage, needle) in [(http.clone(), "flags"), (bad_connack.clone(), "CONNACK")] {
            let fake = FakeBroker::start(
                Script::new()
                    .expect(Kind::Connect)
                    .send_raw(garbage.clone())
                    .drain(),
            );
            let err = Client::connect(opts(&fake, v)).expect_err("garbage CONNACK");
            match &err {
                Error::Protocol(_) => assert!(err.report().contains(needle), "{}", err.report()),
                other => panic!("{v:?} {garbage:02x?}: expected Protocol, got {other:?}"),
            }
            join_and_check_only_connect(fake, v);
        }
    }
}

/// Bytes that never complete a frame: the client keeps waiting for the rest and the
/// connect timeout ends it.
#[test]
fn incomplete_garbage_instead_of_connack_times_out() {
    let mut fake = FakeBroker::start(
        Script::new()
            .expect(Kind::Connect)
            .send_raw(b"HTTP/1.1 400 Bad Request\r\n".to_vec())
            .stall(),
    );
    let timeout = Duration::from_secs(1);
    let start = Instant::now();
    let err = Client::connect(opts(&fake, V311).connect_timeout(timeout)).expect_err("garbage");
    assert!(
        matches!(
            err,
            Error::Timeout {
                step: Step::ConnAck,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(start.elapsed() < timeout + Duration::from_millis(1500));
    join(&mut fake);
}

#[test]
fn packet_other_than_connack_first_is_a_protocol_error() {
    let fake = FakeBroker::start(
        Script::new()
            .expect(Kind::Connect)
            .send(publish_qos0("t", "early"))
            .drain(),
    );
    let err = Client::connect(opts(&fake, V311)).expect_err("PUBLISH before CONNACK");
    match &err {
        Error::Protocol(m) => assert!(m.to_string().contains("PUBLISH before CONNACK"), "{m}"),
        other => panic!("expected Protocol, got {other:?}"),
    }
    join_and_check_only_connect(fake, V311);
}

/// Before CONNACK the client may close with or without a DISCONNECT (MQTT 5 section 4.13);
/// anything else is wrong.
fn join_and_check_only_connect(mut fake: FakeBroker, v: ProtocolVersion) {
    join(&mut fake);
    let got = fake.received();
    assert!(matches!(got.first(), Some(Packet::Connect(_))), "{got:?}");
    match &got[1..] {
        [] => {}
        [Packet::Disconnect(d)] if v == V5 => assert!(d.reason >= 0x80, "{got:?}"),
        other => panic!("{v:?}: unexpected packets after CONNECT: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Fatal misbehaviour after CONNACK
// ---------------------------------------------------------------------------------------

/// Connects, leaves a QoS 1 publish unacknowledged and a subscribe waiting for SUBACK, then
/// lets the fake do `bad`. Asserts: v5 DISCONNECT with `v5_reason` (v3: a bare close); the
/// subscribe fails with ConnectionLost and the token with NotConnected, both promptly; state
/// Disconnected; `last_error()` and the lost callback carry a Protocol error containing
/// `needle`.
fn fatal_after_connect(
    v: ProtocolVersion,
    tweak: impl FnOnce(ConnectOptions) -> ConnectOptions,
    bad: impl FnOnce(Script) -> Script,
    v5_reason: u8,
    needle: &str,
) -> FakeBroker {
    let script = Script::new()
        .handshake()
        .expect(Kind::Publish)
        .signal("publish")
        .expect(Kind::Subscribe)
        .signal("subscribe");
    let script = bad(script);
    let script = if v == V5 {
        script.expect(Kind::Disconnect).expect_closed()
    } else {
        script.expect_closed()
    };
    let mut fake = FakeBroker::start(script);
    let (lost_tx, lost_rx) = mpsc::channel::<String>();
    let client = Client::connect(tweak(opts(&fake, v)).on_connection_lost(move |e| {
        let _ = lost_tx.send(format!("{e:?}: {}", e.report()));
    }))
    .expect("connect");
    let token = client
        .publish(Message::new("a/b", "pending").qos(QoS::AtLeastOnce))
        .expect("publish");
    assert!(fake.wait_signal("publish", DEADLINE), "{}", fake.log());

    std::thread::scope(|s| {
        let sub = s.spawn(|| {
            let r = client.subscribe("s/#", QoS::AtLeastOnce);
            (r, Instant::now())
        });
        assert!(fake.wait_signal("subscribe", DEADLINE), "{}", fake.log());
        let bad_sent = Instant::now();
        let (r, at) = sub.join().expect("subscribe thread");
        match r {
            Err(e @ Error::ConnectionLost(_)) => {
                assert!(e.report().contains(needle), "{}", e.report())
            }
            other => panic!("pending subscribe: expected ConnectionLost, got {other:?}"),
        }
        assert!(
            at.saturating_duration_since(bad_sent) < PROMPT,
            "the subscribe failed only after {:?}",
            at - bad_sent
        );
    });

    let t = Instant::now();
    match token.wait_timeout(DEADLINE) {
        Err(Error::NotConnected) => {}
        other => panic!("pending QoS 1 token: expected NotConnected, got {other:?}"),
    }
    assert!(t.elapsed() < PROMPT, "token wait took {:?}", t.elapsed());
    assert!(
        wait_until(DEADLINE, || client.state() == State::Disconnected),
        "state {:?}",
        client.state()
    );
    match client.last_error().as_deref() {
        Some(e @ Error::Protocol(_)) => assert!(e.report().contains(needle), "{}", e.report()),
        other => panic!("last_error: expected Protocol, got {other:?}"),
    }
    let lost = lost_rx
        .recv_timeout(DEADLINE)
        .expect("connection-lost callback");
    assert!(
        lost.starts_with("Protocol(") && lost.contains(needle),
        "callback got {lost}"
    );
    drop(client);

    join(&mut fake);
    let got = fake.received();
    if v == V5 {
        assert_eq!(
            disconnect_reasons(&got),
            vec![v5_reason],
            "v5: DISCONNECT with reason {v5_reason:#04x} before closing; got {got:?}"
        );
    } else {
        assert!(
            disconnect_reasons(&got).is_empty(),
            "no DISCONNECT in 3.x: {got:?}"
        );
    }
    fake
}

macro_rules! fatal_tests {
    ($($name:ident: $v:expr, $tweak:expr, $bad:expr, $reason:expr, $needle:expr;)*) => {$(
        #[test]
        fn $name() {
            let mut fake = fatal_after_connect($v, $tweak, $bad, $reason, $needle);
            join(&mut fake);
        }
    )*};
}

fn same(o: ConnectOptions) -> ConnectOptions {
    o
}

fn small_packets(o: ConnectOptions) -> ConnectOptions {
    o.max_packet_size(1024)
}

fn alias_max_10(o: ConnectOptions) -> ConnectOptions {
    o.properties(Properties::new().with(Property::TwoByte(prop::TOPIC_ALIAS_MAXIMUM, 10)))
}

/// PUBREL must have flags 0b0010 (MQTT-3.6.1-1); 0 is malformed (MQTT-2.1.3-1).
fn bad_pubrel_flags(s: Script) -> Script {
    s.send_raw(raw(0x60, 2, &[0x00, 0x01]))
}

/// A PUBACK whose body ends inside the packet identifier.
fn truncated_puback(s: Script) -> Script {
    s.send_raw(raw(0x40, 1, &[0x00]))
}

/// QoS 0 PUBLISH whose topic is C3 28: not UTF-8 (MQTT-1.5.4-1).
fn bad_utf8_topic_v3(s: Script) -> Script {
    s.send_raw(raw(0x30, 5, &[0x00, 0x02, 0xC3, 0x28, b'x']))
}

fn bad_utf8_topic_v5(s: Script) -> Script {
    s.send_raw(raw(0x30, 6, &[0x00, 0x02, 0xC3, 0x28, 0x00, b'x']))
}

/// A PUBLISH announcing 2000 bytes; only its first bytes are sent: the client must refuse it
/// from the fixed header alone.
fn oversized_publish(s: Script) -> Script {
    s.send_raw(raw(0x30, 2000, &[0x00, 0x03, b'a', b'/', b'b']))
}

fn packet_type_0(s: Script) -> Script {
    s.send_raw(raw(0x00, 0, &[]))
}

fn packet_type_15(s: Script) -> Script {
    s.send_raw(raw(0xF0, 0, &[]))
}

fn second_connack(s: Script) -> Script {
    s.send(connack(0, false))
}

/// SUBACK with two return codes for a SUBSCRIBE of one filter.
fn suback_wrong_count(s: Script) -> Script {
    s.reply(|last| {
        Packet::SubAck(SubAck {
            pkid: pkid(last),
            return_codes: vec![1, 1],
            properties: Properties::new(),
        })
    })
}

fn publish_with_alias(topic: &str, alias: u16) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        pkid: 0,
        payload: Bytes::from_static(b"x"),
        properties: Properties::new().with(Property::TwoByte(prop::TOPIC_ALIAS, alias)),
    })
}

/// Empty topic with alias 3, never defined on this connection (MQTT 5 section 3.3.2.3.4).
fn undefined_topic_alias(s: Script) -> Script {
    s.send(publish_with_alias("", 3))
}

/// Alias 11 when the client allows 10 (MQTT-3.3.2-9).
fn topic_alias_over_maximum(s: Script) -> Script {
    s.send(publish_with_alias("a/b", 11))
}

/// Alias with a client that allows none (Topic Alias Maximum absent = 0).
fn topic_alias_not_allowed(s: Script) -> Script {
    s.send(publish_with_alias("a/b", 1))
}

/// A topic name with wildcards in a server PUBLISH (MQTT-3.3.2-2): closed, v5 with 0x90.
fn wildcard_topic(s: Script) -> Script {
    s.send(Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "a/+/c".into(),
        pkid: 7,
        payload: Bytes::from_static(b"x"),
        properties: Properties::new(),
    }))
}

fatal_tests! {
    wildcard_topic_name_v3: V311, same, wildcard_topic, 0, "wildcards";
    wildcard_topic_name_v5_disconnects_0x90: V5, same, wildcard_topic, reason::TOPIC_NAME_INVALID, "wildcards";
    pubrel_with_bad_flags_v3: V311, same, bad_pubrel_flags, 0, "flags";
    pubrel_with_bad_flags_v5_disconnects_0x81: V5, same, bad_pubrel_flags, reason::MALFORMED_PACKET, "flags";
    truncated_body_v3: V311, same, truncated_puback, 0, "malformed PUBACK";
    truncated_body_v5_disconnects_0x81: V5, same, truncated_puback, reason::MALFORMED_PACKET, "malformed PUBACK";
    invalid_utf8_topic_v3: V311, same, bad_utf8_topic_v3, 0, "UTF-8";
    invalid_utf8_topic_v5_disconnects_0x81: V5, same, bad_utf8_topic_v5, reason::MALFORMED_PACKET, "UTF-8";
    remaining_length_over_max_packet_size_v3: V311, small_packets, oversized_publish, 0, "exceeds the maximum packet size";
    remaining_length_over_max_packet_size_v5_disconnects_0x95: V5, small_packets, oversized_publish, reason::PACKET_TOO_LARGE, "exceeds the maximum packet size";
    packet_type_0_v3: V311, same, packet_type_0, 0, "invalid packet type 0";
    packet_type_15_v3: V311, same, packet_type_15, 0, "invalid packet type 15";
    packet_type_0_v5_disconnects_0x81: V5, same, packet_type_0, reason::MALFORMED_PACKET, "invalid packet type 0";
    second_connack_v3: V311, same, second_connack, 0, "second CONNACK";
    second_connack_v5_disconnects_0x82: V5, same, second_connack, reason::PROTOCOL_ERROR, "second CONNACK";
    suback_with_wrong_count_v3: V311, same, suback_wrong_count, 0, "2 return codes for 1 filters";
    suback_with_wrong_count_v5_disconnects_0x82: V5, same, suback_wrong_count, reason::PROTOCOL_ERROR, "2 return codes for 1 filters";
    undefined_topic_alias_v5_disconnects_0x94: V5, alias_max_10, undefined_topic_alias, reason::TOPIC_ALIAS_INVALID, "alias";
    topic_alias_over_maximum_v5_disconnects_0x94: V5, alias_max_10, topic_alias_over_maximum, reason::TOPIC_ALIAS_INVALID, "alias";
    topic_alias_not_allowed_v5_disconnects_0x94: V5, same, topic_alias_not_allowed, reason::TOPIC_ALIAS_INVALID, "alias";
}

#[test]
fn v5_connect_announces_the_maximum_packet_size() {
    // The oversized-packet case relies on the client telling the server its limit.
    let mut fake = fatal_after_connect(
        V5,
        small_packets,
        oversized_publish,
        reason::PACKET_TOO_LARGE,
        "exceeds",
    );
    join(&mut fake);
    let got = fake.received();
    match got.first() {
        Some(Packet::Connect(c)) => {
            assert_eq!(c.properties.get_int(prop::MAXIMUM_PACKET_SIZE), Some(1024))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stream_truncated_mid_packet_is_connection_lost() {
    for v in [V311, V5] {
        // 10 of 100 announced bytes, then the server closes.
        let mut fake = FakeBroker::start(
            Script::new()
                .handshake()
                .signal("connected")
                .send_raw(raw(
                    0x30,
                    100,
                    &[0x00, 0x03, b'a', b'/', b'b', 1, 2, 3, 4, 5],
                ))
                .close(),
        );
        let client = Client::connect(opts(&fake, v)).expect("connect");
        assert!(
            wait_until(DEADLINE, || client.state() == State::Disconnected),
            "{}",
            fake.log()
        );
        match client.last_error().as_deref() {
            Some(Error::ConnectionLost(LostCause::ClosedByServer)) => {}
            other => panic!("{v:?}: expected ConnectionLost, got {other:?}"),
        }
        drop(client);
        join(&mut fake);
        let got = fake.received();
        assert_eq!(got.len(), 1, "only CONNECT: {got:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Misbehaviour the client survives
// ---------------------------------------------------------------------------------------

/// Unknown PUBACK / PUBCOMP ids are ignored (session policy "unexpected acknowledgements");
/// the connection stays up: a later QoS 1 publish and two keepalive rounds work.
fn acks_for_unused_ids_are_ignored(v: ProtocolVersion) {
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .send(Packet::PubAck(PubResp::new(4242)))
            .send(Packet::PubComp(PubResp::new(4243)))
            // Processed after the bogus acks (one ordered stream): the test waits for it.
            .send(publish_qos0("marker", "after the bogus acks"))
            .expect(Kind::Publish)
            .ack_last()
            .expect(Kind::PingReq)
            .ack_last()
            .expect(Kind::PingReq)
            .ack_last()
            .signal("pinged twice")
            .stall(),
    );
    let client = Client::connect(opts(&fake, v).keep_alive(Duration::from_secs(1))).unwrap();
    let m = client.messages().recv_timeout(DEADLINE).expect("marker");
    assert_eq!(m.topic, "marker");
    assert_eq!(client.state(), State::Connected);
    let d = client
        .publish_wait(Message::new("a/b", "still works").qos(QoS::AtLeastOnce))
        .expect("publish after bogus acks");
    assert_ne!(d.packet_id, 4242);
    assert!(fake.wait_signal("pinged twice", DEADLINE), "{}", fake.log());
    assert_eq!(client.state(), State::Connected);
    assert!(client.last_error().is_none());
    drop(client);
    join(&mut fake);
}

#[test]
fn acks_for_unused_ids_are_ignored_v3() {
    acks_for_unused_ids_are_ignored(V311);
}

#[test]
fn acks_for_unused_ids_are_ignored_v5() {
    acks_for_unused_ids_are_ignored(V5);
}

/// A PUBREL for an id the server never sent a PUBLISH with is answered with PUBCOMP (v5:
/// 0x92 Packet Identifier not found); the connection stays up.
fn unknown_pubrel(v: ProtocolVersion) {
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .send(Packet::PubRel(PubResp::new(77)))
            .expect(Kind::PubComp)
            .send(publish_qos0("marker", "after"))
            .stall(),
    );
    let client = Client::connect(opts(&fake, v)).unwrap();
    assert_eq!(
        client.messages().recv_timeout(DEADLINE).unwrap().topic,
        "marker"
    );
    assert_eq!(client.state(), State::Connected);
    let got = fake.received();
    drop(client);
    join(&mut fake);
    let want = if v == V5 {
        reason::PACKET_IDENTIFIER_NOT_FOUND
    } else {
        0
    };
    match &got[1] {
        Packet::PubComp(r) => {
            assert_eq!(r.pkid, 77);
            assert_eq!(r.reason, want);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_pubrel_answered_with_pubcomp_v3() {
    unknown_pubrel(V311);
}

#[test]
fn unknown_pubrel_answered_with_pubcomp_0x92_v5() {
    unknown_pubrel(V5);
}

/// PUBREL before PUBREC for the id of *our* QoS 2 publish: PUBREL is the server's side of
/// an incoming flow, so the session treats it as an unknown incoming id (PUBCOMP, v5 0x92)
/// and leaves the outgoing flow alone; the real PUBREC later completes it normally.
fn pubrel_before_pubrec(v: ProtocolVersion) {
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .expect(Kind::Publish)
            .reply(|p| Packet::PubRel(PubResp::new(pkid(p))))
            .expect(Kind::PubComp)
            .reply(|p| Packet::PubRec(PubResp::new(pkid(p))))
            .expect(Kind::PubRel)
            .ack_last()
            .stall(),
    );
    let client = Client::connect(opts(&fake, v)).unwrap();
    let d = client
        .publish_wait(Message::new("q2", "exactly once").qos(QoS::ExactlyOnce))
        .expect("the QoS 2 flow completes");
    assert_eq!(client.state(), State::Connected);
    let got = fake.received();
    drop(client);
    join(&mut fake);
    let id = d.packet_id;
    let want = if v == V5 {
        reason::PACKET_IDENTIFIER_NOT_FOUND
    } else {
        0
    };
    assert!(matches!(&got[1], Packet::Publish(p) if p.pkid == id));
    assert!(
        matches!(&got[2], Packet::PubComp(r) if r.pkid == id && r.reason == want),
        "{got:?}"
    );
    assert!(
        matches!(&got[3], Packet::PubRel(r) if r.pkid == id && r.reason == 0),
        "{got:?}"
    );
}

#[test]
fn pubrel_before_pubrec_v3() {
    pubrel_before_pubrec(V311);
}

#[test]
fn pubrel_before_pubrec_v5() {
    pubrel_before_pubrec(V5);
}

// ---------------------------------------------------------------------------------------
// A server that stops answering
// ---------------------------------------------------------------------------------------

/// Keepalive 1 s, the server goes silent after CONNACK (it still reads): PINGREQ at 1 s,
/// loss declared half a keepalive later (1.5 s after CONNACK), and the pending QoS 1 publish
/// fails at that moment, not at its 10 s timeout.
fn server_stops_answering(v: ProtocolVersion) {
    let mut fake = FakeBroker::start(Script::new().handshake().expect(Kind::Publish).drain());
    let (lost_tx, lost_rx) = mpsc::channel::<(Instant, String)>();
    let client = Client::connect(
        opts(&fake, v)
            .keep_alive(Duration::from_secs(1))
            .on_connection_lost(move |e| {
                let _ = lost_tx.send((Instant::now(), e.report()));
            }),
    )
    .unwrap();
    let connected = Instant::now();
    let token = client
        .publish(Message::new("a/b", "never acked").qos(QoS::AtLeastOnce))
        .unwrap();
    let r = token.wait_timeout(DEADLINE);
    let failed = connected.elapsed();
    assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");
    assert!(
        failed >= Duration::from_millis(1200) && failed <= Duration::from_millis(2500),
        "loss declared after {failed:?}; expected about 1.5 s"
    );
    let (lost_at, cause) = lost_rx.recv_timeout(DEADLINE).expect("lost callback");
    assert!(cause.contains("keepalive timeout"), "{cause}");
    assert!(
        lost_at.saturating_duration_since(connected) <= Duration::from_millis(2500),
        "callback after {:?}",
        lost_at - connected
    );
    assert_eq!(client.state(), State::Disconnected);
    assert!(matches!(
        client.last_error().as_deref(),
        Some(Error::ConnectionLost(LostCause::KeepAliveTimeout))
    ));
    drop(client);
    join(&mut fake);
    let got = fake.received();
    let kinds: Vec<Kind> = got.iter().map(Kind::of).collect();
    // No DISCONNECT after a keepalive timeout: the peer is gone, and 0x8D is a reason code
    // only a server may send (MQTT 5 table 3.14.2.1).
    let want = vec![Kind::Connect, Kind::Publish, Kind::PingReq];
    assert_eq!(kinds, want, "{got:?}");
}

#[test]
fn server_stops_answering_keepalive_declares_loss_v3() {
    server_stops_answering(V311);
}

#[test]
fn server_stops_answering_keepalive_declares_loss_v5() {
    server_stops_answering(V5);
}

// ---------------------------------------------------------------------------------------
// Drop in the middle of a QoS 2 flow, automatic reconnect to the same fake
// ---------------------------------------------------------------------------------------

fn reconnecting(fake: &FakeBroker, v: ProtocolVersion) -> ConnectOptions {
    let o = opts(fake, v)
        .clean_start(false)
        .automatic_reconnect(ReconnectOptions {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_buffered: 10,
            ..Default::default()
        });
    if v == V5 {
        o.session_expiry(600)
    } else {
        o
    }
}

/// Dropped after PUBREC: with session present the client resends PUBREL, not the PUBLISH
/// (MQTT-4.4.0-1, MQTT-4.6.0-3).
fn drop_after_pubrec(v: ProtocolVersion) {
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .expect(Kind::Publish)
            .reply(|p| Packet::PubRec(PubResp::new(pkid(p))))
            .close()
            .accept()
            .expect(Kind::Connect)
            .send(connack(0, true))
            .expect(Kind::PubRel)
            .ack_last()
            .stall(),
    );
    let client = Client::connect(reconnecting(&fake, v)).unwrap();
    let token = client
        .publish(Message::new("q2", "once").qos(QoS::ExactlyOnce))
        .unwrap();
    let d = token
        .wait_timeout(DEADLINE)
        .expect("completed after reconnect");
    assert_eq!(client.stats().reconnects, 1);
    assert_eq!(client.state(), State::Connected);
    drop(client);
    join(&mut fake);
    let first = fake.received_on(0);
    let second = fake.received_on(1);
    assert!(matches!(&first[1], Packet::Publish(p) if p.pkid == d.packet_id && !p.dup));
    match &second[..] {
        [Packet::Connect(c), Packet::PubRel(r)] => {
            assert!(!c.clean_start);
            assert_eq!(r.pkid, d.packet_id);
        }
        other => panic!("second connection: expected CONNECT, PUBREL; got {other:?}"),
    }
}

/// Dropped before PUBREC: the PUBLISH is resent with DUP=1 and the same id (MQTT-4.4.0-1).
fn drop_before_pubrec(v: ProtocolVersion) {
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .expect(Kind::Publish)
            .close()
            .accept()
            .expect(Kind::Connect)
            .send(connack(0, true))
            .expect(Kind::Publish)
            .ack_last()
            .expect(Kind::PubRel)
            .ack_last()
            .stall(),
    );
    let client = Client::connect(reconnecting(&fake, v)).unwrap();
    let token = client
        .publish(Message::new("q2", "once").qos(QoS::ExactlyOnce))
        .unwrap();
    let d = token
        .wait_timeout(DEADLINE)
        .expect("completed after reconnect");
    assert_eq!(client.stats().reconnects, 1);
    drop(client);
    join(&mut fake);
    let first = fake.received_on(0);
    let second = fake.received_on(1);
    assert!(
        matches!(&first[..], [Packet::Connect(_), Packet::Publish(p)] if p.pkid == d.packet_id && !p.dup),
        "{first:?}"
    );
    match &second[..] {
        [Packet::Connect(_), Packet::Publish(p), Packet::PubRel(r)] => {
            assert!(p.dup, "resent PUBLISH has DUP=1");
            assert_eq!(p.pkid, d.packet_id);
            assert_eq!(p.payload, "once");
            assert_eq!(r.pkid, d.packet_id);
        }
        other => panic!("second connection: got {other:?}"),
    }
}

#[test]
fn qos2_dropped_after_pubrec_resends_pubrel_v3() {
    drop_after_pubrec(V311);
}

#[test]
fn qos2_dropped_after_pubrec_resends_pubrel_v5() {
    drop_after_pubrec(V5);
}

#[test]
fn qos2_dropped_before_pubrec_resends_publish_with_dup_v3() {
    drop_before_pubrec(V311);
}

#[test]
fn qos2_dropped_before_pubrec_resends_publish_with_dup_v5() {
    drop_before_pubrec(V5);
}

// ---------------------------------------------------------------------------------------
// A server that sends faster than the application reads
// ---------------------------------------------------------------------------------------

fn vm_rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

#[test]
fn flood_faster_than_the_application_reads_pushes_back_on_the_socket() {
    const PAYLOAD: usize = 64 * 1024;
    const COUNT: u64 = 16 * 1024; // 1 GiB offered
    const MIB: u64 = 1024 * 1024;
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .expect(Kind::Subscribe)
            .ack_last()
            .flood(Flood {
                topic: "flood/t".into(),
                payload_len: PAYLOAD,
                count: COUNT,
                block_after: Duration::from_millis(500),
                limit: Duration::from_secs(120),
            }),
    );
    let client = Client::connect(opts(&fake, V311).incoming_capacity(100)).unwrap();
    let rss_before = vm_rss_bytes();
    client.subscribe("flood/#", QoS::AtMostOnce).unwrap();

    // The application does not read: the socket must stop accepting data.
    assert!(
        fake.wait_signal("flood-blocked", Duration::from_secs(30)),
        "the fake never saw the socket block: {:?}\n{}",
        fake.flood_stats(),
        fake.log()
    );
    let blocked = fake.flood_stats();
    let blocked_bytes = blocked.blocked_at_bytes.unwrap();
    let blocked_msgs = blocked.blocked_at_messages.unwrap();
    let rss_after = vm_rss_bytes();
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "flood blocked after {} MiB ({blocked_msgs} messages) of {} MiB offered; RSS {} -> {} MiB; {} messages queued",
        blocked_bytes / MIB,
        COUNT * PAYLOAD as u64 / MIB,
        rss_before / MIB,
        rss_after / MIB,
        client.messages().len()
    );
    // Client buffer (100 messages + what one read brings) plus kernel socket buffers.
    assert!(
        blocked_bytes < 64 * MIB,
        "{blocked_bytes} bytes accepted before blocking"
    );
    assert!(blocked_msgs < COUNT);
    assert_eq!(
        client.messages().len(),
        100,
        "the channel holds its capacity"
    );
    assert!(growth < 64 * MIB, "RSS grew by {} MiB", growth / MIB);
    assert_eq!(client.state(), State::Connected);

    // Reading again: messages flow again, in order, none lost.
    let messages = client.messages();
    let target = blocked_msgs + 300;
    for expected in 0..target {
        let m = messages
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("message {expected}: {e}; {:?}", fake.flood_stats()));
        assert_eq!(m.payload.len(), PAYLOAD);
        let seq = u64::from_le_bytes(m.payload[..8].try_into().unwrap());
        assert_eq!(seq, expected, "messages arrive in order without gaps");
    }
    assert!(fake.flood_stats().messages_sent > blocked_msgs);
    assert_eq!(client.state(), State::Connected);
    drop(client);
    // The client closed its end: the flood ends there, well short of 1 GiB.
    assert!(fake.wait_signal("flood-ended", DEADLINE), "{}", fake.log());
    let end = fake.flood_stats();
    assert!(end.ended_by_peer, "{end:?}");
    join(&mut fake);
}

/// Back-pressure must not look like a dead server: while the application is slow the client
/// stops reading, but the server is alive and its bytes are waiting in the socket, so the
/// keepalive must not declare the connection lost; the client still sends PINGREQ so that
/// the server, too, sees it alive (MQTT-3.1.2-23).
#[test]
fn slow_application_is_not_a_keepalive_timeout() {
    const COUNT: u64 = 2_000;
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .expect(Kind::Subscribe)
            .ack_last()
            .flood(Flood {
                topic: "flood/t".into(),
                payload_len: 16 * 1024,
                count: COUNT,
                block_after: Duration::from_millis(300),
                limit: Duration::from_secs(120),
            })
            // What the client sent meanwhile, up to its DISCONNECT.
            .drain(),
    );
    let client = Client::connect(
        opts(&fake, V311)
            .keep_alive(Duration::from_secs(1))
            .incoming_capacity(10),
    )
    .unwrap();
    client.subscribe("flood/#", QoS::AtMostOnce).unwrap();
    assert!(
        fake.wait_signal("flood-blocked", Duration::from_secs(30)),
        "{}",
        fake.log()
    );
    // The application is busy for three keepalive intervals (this sleep *is* the scenario).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        client.state(),
        State::Connected,
        "lost: {:?}",
        client.last_error()
    );
    let messages = client.messages();
    for expected in 0..COUNT {
        let m = messages
            .recv_timeout(DEADLINE)
            .expect("messages flow again");
        assert_eq!(
            u64::from_le_bytes(m.payload[..8].try_into().unwrap()),
            expected
        );
    }
    assert_eq!(client.state(), State::Connected);
    assert!(fake.wait_signal("flood-done", DEADLINE), "{}", fake.log());
    drop(client);
    join(&mut fake);
    let got = fake.received();
    let pings = got.iter().filter(|p| matches!(p, Packet::PingReq)).count();
    assert!(
        pings >= 2,
        "PINGREQs while reading was paused: {pings}; {got:?}"
    );
    assert!(matches!(got.last(), Some(Packet::Disconnect(_))), "{got:?}");
}
