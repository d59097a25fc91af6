//! Bad input from callers of the Rust API: every entry point with its invalid arguments
//! returns the documented error (and the client keeps working). Extends
//! `tests/client.rs::invalid_arguments_are_errors` (wildcards in topic names, malformed
//! filters, v5 subscription options on 3.1.1, unknown scheme, bad port, empty client id
//! with a persistent session), which it does not repeat.

mod common;

use std::time::Duration;

use common::{unique_client_id, Broker, DEADLINE};
use mqttsync::{
    Client, CommandError, ConnectOptions, Disconnect, Error, Message, Properties, Property,
    ProtocolVersion, QoS, RetainHandling, SubscribeFilter, SubscribeOptions,
};

fn connect(uri: &str, v: ProtocolVersion) -> Client {
    Client::connect(
        ConnectOptions::new(uri)
            .client_id(unique_client_id("bad"))
            .version(v)
            .connect_timeout(DEADLINE),
    )
    .unwrap()
}

fn is_invalid_topic<T: std::fmt::Debug>(r: &mqttsync::Result<T>) -> bool {
    matches!(r, Err(Error::InvalidTopic { .. }))
}

fn is_invalid_arg<T: std::fmt::Debug>(r: &mqttsync::Result<T>) -> bool {
    matches!(r, Err(Error::InvalidArgument(_)))
}

#[test]
fn topic_names_and_filters_refused_by_every_entry_point() {
    let broker = Broker::start();
    for v in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let c = connect(&broker.uri(), v);
        let long = "t".repeat(65_536); // MQTT-1.5.3: at most 65535 bytes
        for topic in [long.as_str(), "+", "#", "a/b#", "x/+/y", "nul\0", "\0"] {
            assert!(
                is_invalid_topic(&c.publish(Message::new(topic, "x"))),
                "{v:?} publish {topic:.20?}"
            );
            assert!(
                is_invalid_topic(
                    &c.publish_timeout(Message::new(topic, "x"), Duration::from_secs(1))
                ),
                "{v:?} publish_timeout {topic:.20?}"
            );
            assert!(
                is_invalid_topic(&c.publish_wait(Message::new(topic, "x"))),
                "{v:?} publish_wait"
            );
        }
        for filter in [long.as_str(), "nul\0/#", "a/b+", "#x", "+/#/+"] {
            assert!(
                is_invalid_topic(&c.subscribe(filter, QoS::AtLeastOnce)),
                "{v:?} subscribe {filter:.20?}"
            );
            assert!(
                is_invalid_topic(&c.unsubscribe(filter)),
                "{v:?} unsubscribe {filter:.20?}"
            );
            assert!(
                is_invalid_topic(
                    &c.unsubscribe_many(vec!["ok".into(), filter.into()], Properties::new())
                ),
                "{v:?} unsubscribe_many"
            );
            assert!(
                is_invalid_topic(&c.subscribe_many(
                    vec![
                        SubscribeFilter {
                            filter: "ok".into(),
                            options: Default::default()
                        },
                        SubscribeFilter {
                            filter: filter.into(),
                            options: Default::default()
                        },
                    ],
                    Properties::new()
                )),
                "{v:?} subscribe_many"
            );
        }
        // Empty filter lists (MQTT-3.8.3-3, MQTT-3.10.3-2).
        assert!(is_invalid_arg(&c.subscribe_many(vec![], Properties::new())));
        assert!(is_invalid_arg(&c.subscribe_many_timeout(
            vec![],
            Properties::new(),
            Duration::from_secs(1)
        )));
        assert!(is_invalid_arg(
            &c.unsubscribe_many(vec![], Properties::new())
        ));
        // v5-only subscription options (retain handling, retain as published) before v5.
        if v != ProtocolVersion::V5 {
            for options in [
                SubscribeOptions {
                    retain_as_published: true,
                    ..Default::default()
                },
                SubscribeOptions {
                    retain_handling: RetainHandling::DoNotSend,
                    ..Default::default()
                },
            ] {
                let r = c.subscribe_many(
                    vec![SubscribeFilter {
                        filter: "x".into(),
                        options,
                    }],
                    Properties::new(),
                );
                assert!(is_invalid_arg(&r), "{v:?} {options:?}: {r:?}");
            }
        }
        // Nothing of that reached the broker or hurt the connection.
        c.publish_wait(Message::new("still/ok", "x").qos(QoS::ExactlyOnce))
            .unwrap();
        c.close().unwrap();
    }
}

#[test]
fn connect_options_refused_before_any_io() {
    // An address nothing listens on: every refusal below happens before connecting.
    let uri = "tcp://127.0.0.1:1";
    let check = |o: ConnectOptions, what: &str| {
        let r = Client::connect(o.connect_timeout(Duration::from_secs(1)));
        assert!(
            matches!(
                r,
                Err(Error::InvalidArgument(_)) | Err(Error::InvalidTopic { .. })
            ),
            "{what}: {r:?}"
        );
    };
    for bad in [
        "",
        "tcp://",
        "tcp://:1883",
        "tcp://[::1",
        "tcp://[::1]x",
        "tcp://h:99999",
        "tcp://h:-1",
        "tcp://h:",
        "http://h:1883",
    ] {
        check(ConnectOptions::new(bad), &format!("uri {bad:?}"));
        check(
            ConnectOptions::new(uri).server(bad),
            &format!("second server {bad:?}"),
        );
    }
    // (A password without a user name, MQTT-3.1.2-22, cannot be expressed in the Rust API:
    // `credentials` always takes the user; the check in `Client::connect` serves the C layer.)
    // Valid options on the same address get as far as TCP.
    for v in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let r = Client::connect(
            ConnectOptions::new(uri)
                .version(v)
                .client_id("x")
                .credentials("u", Some(b"p"))
                .keep_alive(Duration::from_secs(65_535))
                .connect_timeout(Duration::from_secs(1)),
        );
        assert!(
            matches!(r, Err(Error::Tcp { .. })),
            "valid options reach TCP: {r:?}"
        );
    }
    // Keepalive above 65535 s (the CONNECT field is 16 bits).
    check(
        ConnectOptions::new(uri).keep_alive(Duration::from_secs(65_536)),
        "keepalive 65536 s",
    );
    check(
        ConnectOptions::new(uri).keep_alive(Duration::from_secs(u64::MAX)),
        "keepalive u64::MAX",
    );
    // v5 properties on a 3.x connection.
    let mut props = Properties::new();
    props.push(Property::FourByte(0x11, 60));
    check(
        ConnectOptions::new(uri).properties(props),
        "properties on 3.1.1",
    );
    // A will whose topic is not a valid topic name.
    for t in ["will/#", "", "w\0"] {
        check(
            ConnectOptions::new(uri).will(Message::new(t, "bye")),
            &format!("will topic {t:?}"),
        );
    }
    // Empty client id with a persistent session on 3.1 too (MQTT-3.1.3-7).
    check(
        ConnectOptions::new(uri)
            .version(ProtocolVersion::V31)
            .clean_start(false),
        "3.1 empty id",
    );
    // HTTP headers that belong to the WebSocket handshake, or are not tokens / have CR LF.
    for (k, v) in [
        ("Upgrade", "x"),
        ("Sec-WebSocket-Key", "x"),
        ("bad name", "x"),
        ("X-Ok", "a\r\nb"),
    ] {
        check(
            ConnectOptions::new("ws://127.0.0.1:1").http_headers(vec![(k.into(), v.into())]),
            &format!("header {k:?}"),
        );
    }
    // Proxy URIs.
    check(
        ConnectOptions::new(uri).http_proxy("ftp://p:1"),
        "proxy scheme",
    );
    check(
        ConnectOptions::new(uri).http_proxy("http://p:notaport"),
        "proxy port",
    );
}

#[test]
fn limits_announced_by_a_v5_broker_are_errors_not_disconnects() {
    // mosquitto announces Maximum Packet Size, Maximum QoS and Retain Available in CONNACK.
    let broker = Broker::builder()
        .extra_config("max_packet_size 1000")
        .extra_config("max_qos 1")
        .extra_config("retain_available false")
        .start();
    let c = connect(&broker.uri(), ProtocolVersion::V5);
    let token = c
        .publish(Message::new("big", vec![0u8; 2000]).qos(QoS::AtLeastOnce))
        .unwrap();
    let r = token.wait_timeout(DEADLINE);
    assert!(
        matches!(
            r,
            Err(Error::Command(CommandError::PacketTooLarge {
                max: 1000,
                ..
            }))
        ),
        "oversized payload: {r:?}"
    );
    let r = c.publish_wait(Message::new("q", "x").qos(QoS::ExactlyOnce));
    assert!(
        matches!(r, Err(Error::Command(CommandError::NotAllowed(_)))),
        "QoS 2 above max_qos 1: {r:?}"
    );
    let r = c.publish_wait(Message::new("r", "x").retain(true));
    assert!(
        matches!(r, Err(Error::Command(CommandError::NotAllowed(_)))),
        "retain: {r:?}"
    );
    // Topic alias 0 and one above the server's Topic Alias Maximum.
    for alias in [0u16, 60_000] {
        let mut p = Properties::new();
        p.push(Property::TwoByte(0x23, alias));
        let r = c.publish_wait(Message::new("a", "x").properties(p));
        assert!(
            matches!(r, Err(Error::Command(CommandError::NotAllowed(_)))),
            "alias {alias}: {r:?}"
        );
    }
    // Still connected, and what is allowed works.
    assert!(c.is_connected());
    c.publish_wait(Message::new("small", vec![0u8; 100]).qos(QoS::AtLeastOnce))
        .unwrap();
    c.close().unwrap();
}

#[test]
fn calls_on_a_disconnected_or_closed_client() {
    let broker = Broker::start();
    let c = connect(&broker.uri(), ProtocolVersion::V311);
    let messages = c.messages();
    c.disconnect().unwrap();
    assert!(matches!(
        c.publish(Message::new("a", "x")),
        Err(Error::NotConnected)
    ));
    let r = c.subscribe("a", QoS::AtMostOnce);
    assert!(r.is_err(), "{r:?}");
    assert!(
        c.disconnect().is_ok(),
        "disconnect when disconnected succeeds"
    );
    // A v5 reason code on a 3.1.1 client is simply not sent.
    assert!(c
        .disconnect_with(
            Disconnect {
                reason: 0x04,
                ..Default::default()
            },
            Duration::from_secs(1)
        )
        .is_ok());
    c.close().unwrap();
    assert!(matches!(
        messages.recv_timeout(Duration::from_secs(1)),
        Err(Error::Closed) | Err(Error::ConnectionLost(_))
    ));
}
