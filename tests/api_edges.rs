//! Rough edges of the Rust API a new user meets: payloads and topics from whatever the
//! application has, a text password, sub-second keepalive, `will_delay` in either order,
//! a path on a `tcp://` URI, `recv` on a client whose messages go to a callback, and an
//! opt-in retry of the first connect.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::{unique_client_id, Broker, DEADLINE};
use mqttsync::{
    Client, ConnectOptions, Error, Message, ProtocolVersion, QoS, ReconnectOptions, State,
};

#[test]
#[allow(clippy::needless_borrows_for_generic_args)] // the borrowed forms are the point
fn payloads_and_topics_from_borrowed_and_owned_data() {
    let topic = String::from("a/b");
    let text = String::from("text");
    let local = [1u8, 2, 3];
    let vec = vec![4u8, 5];
    let cases = [
        Message::new(&topic, &text),
        Message::new(topic.as_str(), text.as_str()),
        Message::new(topic.clone(), text.clone()),
        Message::new("a/b", &local[..]),
        Message::new("a/b", &local),
        Message::new("a/b", &vec),
        Message::new("a/b", vec.clone()),
        Message::new("a/b", Bytes::from_static(b"b")),
    ];
    let payloads: Vec<&[u8]> = cases.iter().map(|m| &m.payload[..]).collect();
    assert_eq!(
        payloads,
        [
            &b"text"[..],
            b"text",
            b"text",
            &[1, 2, 3],
            &[1, 2, 3],
            &[4, 5],
            &[4, 5],
            b"b"
        ]
    );
    assert!(cases.iter().all(|m| m.topic == "a/b"));
}

#[test]
fn a_path_on_a_tcp_uri_is_an_error() {
    for uri in ["tcp://localhost:1883/mqtt", "ssl://h:8883/x", "h:1883/a"] {
        match Client::connect(ConnectOptions::new(uri)) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("path"), "{uri}: {m}"),
            other => panic!("{uri}: {other:?}"),
        }
    }
    // A trailing slash is harmless; ws:// keeps its path.
    assert!(mqttsync::ServerUri::parse("tcp://h:1883/").is_ok());
    let ws = mqttsync::ServerUri::parse("ws://h:80/mqtt-ws").unwrap();
    assert_eq!(ws.path, "/mqtt-ws");
}

#[test]
fn will_delay_needs_a_will_and_works_in_either_order() {
    let e = Client::connect(ConnectOptions::new("tcp://127.0.0.1:1").will_delay(5)).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("will")),
        "{e}"
    );

    // Before and after `will`: the broker keeps the will back for the delay either way.
    let broker = Broker::start();
    for before in [true, false] {
        let will = Message::new("w/delayed", "gone").qos(QoS::AtLeastOnce);
        let id = unique_client_id("wd");
        let mut o = ConnectOptions::new(&broker.uri())
            .client_id(&id)
            .version(ProtocolVersion::V5)
            .session_expiry(60);
        o = if before {
            o.will_delay(30).will(will)
        } else {
            o.will(will).will_delay(30)
        };
        let watcher =
            Client::connect(ConnectOptions::new(&broker.uri()).client_id(unique_client_id("ww")))
                .unwrap();
        watcher.subscribe("w/delayed", QoS::AtLeastOnce).unwrap();
        let c = Client::connect(o).unwrap();
        c.abort(); // dies without DISCONNECT: the will is due after the delay only
                   // The broker has seen the connection go.
        assert!(broker.wait_for_log(&format!("Client {id} closed its connection"), DEADLINE));
        // Nothing within a second (mosquitto would publish an undelayed will at once).
        assert!(
            matches!(
                watcher.messages().recv_timeout(Duration::from_secs(1)),
                Err(Error::Timeout { .. })
            ),
            "will published without its delay (will_delay {} will)",
            if before { "before" } else { "after" }
        );
    }
}

#[test]
fn sub_second_keepalive_is_rounded_up_not_turned_off() {
    let broker = Broker::start();
    let id = unique_client_id("ka");
    let _c = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(&id)
            .keep_alive(Duration::from_millis(500)),
    )
    .unwrap();
    // mosquitto logs the keepalive the CONNECT carried: 1 s, not 0 (off).
    assert!(
        broker.wait_for_log(&format!("as {id} (p2, c1, k1)"), DEADLINE),
        "{}",
        broker.log()
    );
}

#[test]
fn a_text_password_is_accepted() {
    let broker = Broker::builder().password("user", "s3cret").start();
    let c = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("pw"))
            .username("user")
            .password("s3cret"),
    )
    .unwrap();
    assert!(c.is_connected());
    let e = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("pw"))
            .username("user")
            .password(String::from("wrong")),
    )
    .unwrap_err();
    assert!(matches!(e, Error::ConnectionRefused { code: 5, .. }), "{e}");
}

#[test]
fn recv_on_a_callback_client_is_an_error_not_a_hang() {
    let broker = Broker::start();
    let c = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("cbr"))
            .on_message(|_| {}),
    )
    .unwrap();
    for r in [
        c.messages()
            .recv_timeout(Duration::from_secs(30))
            .map(|_| ()),
        c.messages().recv().map(|_| ()),
        c.messages().try_recv().map(|_| ()),
    ] {
        assert!(matches!(r, Err(Error::WouldDeadlock(_))), "{r:?}");
    }
}

#[test]
fn the_first_connect_can_be_retried_in_the_background() {
    let mut broker = Broker::start();
    let uri = broker.uri();
    broker.stop(); // nobody listens on its port now
    let (tx, rx) = mpsc::channel();
    let c = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(unique_client_id("first"))
            .connect_timeout(Duration::from_secs(2))
            .automatic_reconnect(ReconnectOptions {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
                retry_first_connect: true,
                ..Default::default()
            })
            .on_connected(move |present| {
                let _ = tx.send(present);
            }),
    )
    .expect("returns while the broker is down");
    assert_eq!(c.state(), State::Reconnecting);
    // A publish made meanwhile is buffered and goes out once connected.
    let token = c
        .publish(Message::new("first/t", "buffered").qos(QoS::AtLeastOnce))
        .unwrap();
    broker.start_again();
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(false));
    token
        .wait_timeout(DEADLINE)
        .expect("buffered publish delivered");
    // Without the option the first connect fails as before.
    let e = Client::connect(
        ConnectOptions::new("tcp://127.0.0.1:1").automatic_reconnect(ReconnectOptions::default()),
    );
    assert!(e.is_err());
}

#[test]
fn callbacks_can_be_given_their_client() {
    let broker = Broker::start();
    let (tx, rx) = mpsc::channel::<String>();
    let (lost_tx, lost_rx) = mpsc::channel::<bool>();
    let c = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("cbc"))
            .on_message_with_client(move |c, m| {
                if m.topic == "cbc/ask" {
                    // Reply from inside the callback through the client it was given.
                    c.publish(Message::new("cbc/answer", m.payload.clone()).qos(QoS::AtLeastOnce))
                        .expect("publish from the callback");
                } else {
                    let _ = tx.send(m.payload_str().unwrap_or("").to_owned());
                }
            })
            .on_connection_lost_with_client(move |c, _| {
                let _ = lost_tx.send(c.reconnect().is_ok());
            }),
    )
    .unwrap();
    c.subscribe("cbc/#", QoS::AtLeastOnce).unwrap();
    c.publish(Message::new("cbc/ask", "42").qos(QoS::AtLeastOnce))
        .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE).as_deref(), Ok("42"));
    // The lost callback reconnects with the client it was given.
    c.abort();
    assert_eq!(lost_rx.recv_timeout(DEADLINE), Ok(true));
    assert!(c.is_connected());
    // The callbacks' handle does not keep the client alive: closing returns.
    c.close().unwrap();
}

#[test]
fn connect_info_names_the_server_with_its_scheme_before_and_after_reconnect() {
    let broker = Broker::start();
    let bare = format!("127.0.0.1:{}", broker.port());
    let c = Client::connect(ConnectOptions::new(&bare).client_id(unique_client_id("ci"))).unwrap();
    let want = format!("tcp://{bare}");
    assert_eq!(c.connect_info().unwrap().server, want);
    c.disconnect().unwrap();
    assert_eq!(c.reconnect().unwrap().server, want);
    assert_eq!(c.connect_info().unwrap().server, want);
}
