//! The receiving side keeps QoS 1/2's promise: a message is acknowledged to the broker
//! only once the application has it, so a subscriber closed (or dropped) without reading
//! gets everything again in its resumed session, and manual acknowledgement
//! (`ConnectOptions::manual_acks`) leaves the acknowledgement to the application, with
//! clear errors for acknowledging twice, after the session ended, or after close.
//! (Killed subscribers: tests/receive_kill.rs.)

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use common::{unique_client_id, wait_until, Broker, DEADLINE};
use mqttsync::{Client, ConnectOptions, Error, Message, ProtocolVersion, QoS, ReconnectOptions};

const N: u64 = 30;

fn sub_opts(uri: &str, id: &str, v: ProtocolVersion) -> ConnectOptions {
    let o = ConnectOptions::new(uri)
        .client_id(id)
        .version(v)
        .clean_start(false);
    if v == ProtocolVersion::V5 {
        o.session_expiry(600)
    } else {
        o
    }
}

/// Publishes N QoS 1 messages to rg/1 and N QoS 2 to rg/2 ("<qos> <i>"), each completed.
fn publish_all(uri: &str) {
    let p = Client::connect(ConnectOptions::new(uri).client_id(unique_client_id("rgpub"))).unwrap();
    for i in 0..N {
        p.publish_wait(Message::new("rg/1", format!("1 {i}")).qos(QoS::AtLeastOnce))
            .unwrap();
        p.publish_wait(Message::new("rg/2", format!("2 {i}")).qos(QoS::ExactlyOnce))
            .unwrap();
    }
    p.close().unwrap();
}

/// Receives until every one of the 2N messages was seen; (qos, i) -> count.
fn receive_all(c: &Client) -> HashMap<(u8, u64), u32> {
    let mut seen = HashMap::new();
    while seen.len() < (2 * N) as usize {
        let m = c
            .messages()
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("after {} distinct messages: {e}", seen.len()));
        let text = m.payload_str().unwrap().to_owned();
        let (q, i) = text.split_once(' ').unwrap();
        *seen
            .entry((q.parse().unwrap(), i.parse().unwrap()))
            .or_insert(0) += 1;
    }
    seen
}

fn unread_messages_come_back(v: ProtocolVersion, close: bool) {
    let broker = Broker::builder().max_queued_messages(100_000).start();
    let uri = broker.uri();
    let id = unique_client_id("unread");
    let c = Client::connect(sub_opts(&uri, &id, v)).unwrap();
    c.subscribe("rg/1", QoS::AtLeastOnce).unwrap();
    c.subscribe("rg/2", QoS::ExactlyOnce).unwrap();
    publish_all(&uri);
    // The client reads ahead: the messages wait in it, unacknowledged.
    assert!(
        wait_until(DEADLINE, || c.stats().received >= 20),
        "only {} messages taken in",
        c.stats().received
    );
    let taken_in = c.stats().received;
    if close {
        c.close().unwrap();
    } else {
        drop(c);
    }
    // The broker still owns every one of them.
    let c = Client::connect(sub_opts(&uri, &id, v)).unwrap();
    assert!(c.connect_info().unwrap().session_present);
    let seen = receive_all(&c);
    let qos2_dups: u32 = seen
        .iter()
        .filter(|((q, _), _)| *q == 2)
        .map(|(_, n)| n - 1)
        .sum();
    assert_eq!(qos2_dups, 0, "QoS 2 delivered twice: {seen:?}");
    eprintln!(
        "{v:?}: {taken_in} taken in unread before close, all {} back",
        2 * N
    );
    c.close().unwrap();
}

#[test]
fn unread_messages_come_back_after_close_v311() {
    unread_messages_come_back(ProtocolVersion::V311, true);
}

#[test]
fn unread_messages_come_back_after_drop_v5() {
    unread_messages_come_back(ProtocolVersion::V5, false);
}

#[test]
fn v5_connect_announces_a_receive_maximum_the_client_can_hold() {
    // The broker then has no more unacknowledged messages in flight than the client keeps.
    let broker = Broker::start();
    let c = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("rmax"))
            .version(ProtocolVersion::V5)
            .incoming_capacity(7),
    )
    .unwrap();
    c.subscribe("rm/#", QoS::AtLeastOnce).unwrap();
    let p = Client::connect(ConnectOptions::new(&broker.uri()).client_id(unique_client_id("rmp")))
        .unwrap();
    for i in 0..20 {
        p.publish_wait(Message::new("rm/x", format!("{i}")).qos(QoS::AtLeastOnce))
            .unwrap();
    }
    // Nothing read: the broker stops at 7 in flight.
    assert!(wait_until(DEADLINE, || c.stats().received >= 7));
    let msgs = c.messages();
    assert_eq!(
        msgs.len(),
        7,
        "the broker sent more than the Receive Maximum"
    );
    // Reading lets the rest come.
    for i in 0..20 {
        let m = msgs.recv_timeout(DEADLINE).unwrap();
        assert_eq!(m.payload_str(), Some(i.to_string().as_str()));
    }
}

#[test]
fn manual_acks_redeliver_what_was_not_acknowledged() {
    let broker = Broker::start();
    let uri = broker.uri();
    let id = unique_client_id("manual");
    let opts = || {
        sub_opts(&uri, &id, ProtocolVersion::V311)
            .manual_acks(true)
            .incoming_capacity(100)
    };
    let c = Client::connect(opts()).unwrap();
    c.subscribe("ma/#", QoS::ExactlyOnce).unwrap();
    let p = Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("map"))).unwrap();
    p.publish_wait(Message::new("ma/1", "one").qos(QoS::AtLeastOnce))
        .unwrap();
    p.publish_wait(Message::new("ma/2", "two").qos(QoS::ExactlyOnce))
        .unwrap();
    p.publish_wait(Message::new("ma/0", "zero")).unwrap();
    let msgs = c.messages();
    let mut got: Vec<Message> = (0..3)
        .map(|_| msgs.recv_timeout(DEADLINE).unwrap())
        .collect();
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    let (zero, one, two) = (&got[0], &got[1], &got[2]);
    assert!(!zero.needs_ack(), "QoS 0 needs no acknowledgement");
    zero.ack().expect("acking QoS 0 is a no-op");
    assert!(one.needs_ack() && two.needs_ack());
    // Only the QoS 1 message is acknowledged; the QoS 2 one is not.
    one.ack().unwrap();
    assert!(!one.needs_ack());
    assert!(matches!(one.ack(), Err(Error::AlreadyAcknowledged)));
    assert!(matches!(one.clone().ack(), Err(Error::AlreadyAcknowledged)));
    c.close().unwrap();
    assert!(
        matches!(two.ack(), Err(Error::Closed)),
        "acknowledging after close is an error"
    );

    // Next session: the unacknowledged QoS 2 message comes again, the acknowledged QoS 1
    // one does not.
    let c = Client::connect(opts()).unwrap();
    let again = c.messages().recv_timeout(DEADLINE).unwrap();
    assert_eq!(again.topic, "ma/2");
    assert_eq!(again.payload_str(), Some("two"));
    assert!(again.dup, "a resend carries DUP");
    again.ack().unwrap();
    p.publish_wait(Message::new("ma/3", "fence").qos(QoS::AtLeastOnce))
        .unwrap();
    let next = c.messages().recv_timeout(DEADLINE).unwrap();
    assert_eq!(next.topic, "ma/3", "ma/1 came again although acknowledged");
    next.ack().unwrap();
    c.close().unwrap();
}

#[test]
fn manual_ack_after_the_session_ended_is_an_error() {
    let mut broker = Broker::start();
    let (conn_tx, conn_rx) = mpsc::channel();
    let c = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("ended"))
            .manual_acks(true)
            .automatic_reconnect(ReconnectOptions {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
                ..Default::default()
            })
            .on_connected(move |present| {
                let _ = conn_tx.send(present);
            }),
    )
    .unwrap();
    assert_eq!(conn_rx.recv_timeout(DEADLINE), Ok(false));
    c.subscribe("se/#", QoS::AtLeastOnce).unwrap();
    let p = Client::connect(ConnectOptions::new(&broker.uri()).client_id(unique_client_id("sep")))
        .unwrap();
    p.publish_wait(Message::new("se/1", "x").qos(QoS::AtLeastOnce))
        .unwrap();
    p.close().unwrap();
    let m = c.messages().recv_timeout(DEADLINE).unwrap();
    assert!(m.needs_ack());
    // The broker restarts without persistence: the client reconnects into a new session.
    broker.restart();
    assert_eq!(conn_rx.recv_timeout(Duration::from_secs(20)), Ok(false));
    assert!(!m.needs_ack());
    assert!(matches!(m.ack(), Err(Error::SessionEnded)), "{:?}", m.ack());
}

#[test]
fn callback_messages_are_acknowledged_when_the_callback_returns() {
    // A callback that has not returned holds its message: closing then leaves it with the
    // broker, which sends it again in the resumed session.
    let broker = Broker::start();
    let uri = broker.uri();
    let id = unique_client_id("cbret");
    let (in_tx, in_rx) = mpsc::channel::<String>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let c = Client::connect(
        sub_opts(&uri, &id, ProtocolVersion::V311).on_message(move |m| {
            let _ = in_tx.send(m.payload_str().unwrap_or_default().to_owned());
            // Blocks until the test says so (or the test is over).
            let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(30));
        }),
    )
    .unwrap();
    c.subscribe("cb/#", QoS::ExactlyOnce).unwrap();
    let p = Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("cbp"))).unwrap();
    p.publish_wait(Message::new("cb/1", "held").qos(QoS::ExactlyOnce))
        .unwrap();
    assert_eq!(in_rx.recv_timeout(DEADLINE).as_deref(), Ok("held"));
    // The callback is still running: the connection goes down first, then the callback
    // is released.
    c.abort();
    assert!(wait_until(DEADLINE, || !c.is_connected()));
    drop(go_tx);
    let c2 = Client::connect(sub_opts(&uri, &id, ProtocolVersion::V311)).unwrap();
    let again = c2.messages().recv_timeout(DEADLINE).unwrap();
    assert_eq!(again.payload_str(), Some("held"));
}

#[test]
fn a_store_of_the_other_protocol_version_is_refused() {
    use mqttsync::internals::persist::Persister;
    use mqttsync::internals::proto::session::PersistKey;
    use mqttsync::internals::proto::{Packet, Publish};
    use mqttsync::persist::{FileStore, PersistError};
    // A store an MQTT 5 client left with one message in flight.
    let dir = tempfile::tempdir().unwrap();
    let uri = "tcp://127.0.0.1:1";
    let id = "other-version";
    let mut p = Persister::new(Box::new(FileStore::new(dir.path())), ProtocolVersion::V5);
    p.open(id, uri).unwrap();
    p.put(
        PersistKey::SentPublish(3),
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "a/b".into(),
            pkid: 3,
            payload: bytes::Bytes::from_static(b"x"),
            properties: Default::default(),
        }),
    )
    .unwrap();
    drop(p);
    // An MQTT 3.1.1 client on it: refused before any network traffic, nothing skipped.
    let mut p3 = Persister::new(Box::new(FileStore::new(dir.path())), ProtocolVersion::V311);
    assert!(matches!(
        p3.open(id, uri),
        Err(PersistError::OtherVersion {
            found: "MQTT 5",
            ..
        })
    ));
    let e = Client::connect(
        ConnectOptions::new(uri)
            .client_id(id)
            .clean_start(false)
            .persistence(Box::new(FileStore::new(dir.path()))),
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Persistence(p) if matches!(**p, PersistError::OtherVersion { found: "MQTT 5", .. })),
        "{e}"
    );
    // The record is still there for an MQTT 5 client.
    let mut p5 = Persister::new(Box::new(FileStore::new(dir.path())), ProtocolVersion::V5);
    p5.open(id, uri).unwrap();
    assert_eq!(p5.load().0.len(), 1);
}

/// A message from `Messages` is acknowledged as soon as the application drops it (its last
/// clone), or calls `Message::ack`, without another `recv` by the receiving thread: the
/// broker, allowed one message in flight to the client, sends the next only then. Each next
/// message is awaited by another thread, whose `recv` acknowledges nothing of this one's.
#[test]
fn dropping_a_received_message_acknowledges_it() {
    let broker = Broker::builder()
        .extra_config("max_inflight_messages 1")
        .start();
    let uri = broker.uri();
    let c = Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("drop"))).unwrap();
    c.subscribe("dr/#", QoS::ExactlyOnce).unwrap();
    let p =
        Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("dropp"))).unwrap();
    for (i, q) in [
        QoS::AtLeastOnce,
        QoS::ExactlyOnce,
        QoS::AtLeastOnce,
        QoS::ExactlyOnce,
    ]
    .into_iter()
    .enumerate()
    {
        p.publish_wait(Message::new(format!("dr/{i}"), format!("m{i}")).qos(q))
            .unwrap();
    }
    let msgs = c.messages();
    let next_on_another_thread = || {
        let msgs = msgs.clone();
        std::thread::spawn(move || msgs.recv_timeout(DEADLINE))
    };
    let first = msgs.recv_timeout(DEADLINE).unwrap();
    assert_eq!(first.payload_str(), Some("m0"));

    // Dropped: acknowledged.
    let waiter = next_on_another_thread();
    drop(first);
    let second = waiter.join().unwrap().expect("m1 after m0 was dropped");
    assert_eq!(second.payload_str(), Some("m1"));

    // Cloned: acknowledged when the last clone goes.
    let copy = second.clone();
    let waiter = next_on_another_thread();
    drop(second);
    drop(copy);
    let third = waiter
        .join()
        .unwrap()
        .expect("m2 after both clones of m1 were dropped");
    assert_eq!(third.payload_str(), Some("m2"));

    // `ack` while the message is kept: acknowledged then, and not again at the drop.
    let waiter = next_on_another_thread();
    third.ack().unwrap();
    let fourth = waiter
        .join()
        .unwrap()
        .expect("m3 after m2 was acknowledged");
    assert_eq!(fourth.payload_str(), Some("m3"));
    drop(third);
    drop(fourth);
    // Each acknowledgement went once: the next message still comes.
    p.publish_wait(Message::new("dr/end", "end").qos(QoS::AtLeastOnce))
        .unwrap();
    assert_eq!(
        msgs.recv_timeout(DEADLINE).unwrap().payload_str(),
        Some("end")
    );
}
