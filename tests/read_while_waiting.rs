//! A thread waiting in `Messages::recv*` or `DeliveryToken::wait*` while the I/O thread
//! sleeps reads the socket itself (`src/client/io/lend.rs`). These tests check that nothing
//! else stalls meanwhile: publishes, acknowledgements and control requests of other threads,
//! several waiters on one client, waiters ping-ponging between two clients, a close or a
//! lost connection under a waiter. The dispatch thread reads too, and keeps the socket while
//! it runs the callbacks of what it read (`io::read_for_callbacks`): a callback that blocks
//! then must not stall anything either.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique_client_id, wait_until, Broker, DEADLINE};
use mqttsync::{Client, ConnectOptions, Error, Message, QoS};

fn connect(b: &Broker, id: &str) -> Client {
    Client::connect(ConnectOptions::new(&b.uri()).client_id(unique_client_id(id))).unwrap()
}

/// Receivers wait while other threads of the same client publish and wait for their
/// tokens, subscribe and unsubscribe: every message arrives, every call returns.
#[test]
fn waiting_receivers_leave_other_threads_of_the_client_going() {
    let b = Broker::start();
    let c = Arc::new(connect(&b, "rww"));
    c.subscribe("rww/t", QoS::AtLeastOnce).unwrap();
    const PER: usize = 150;
    const PUBLISHERS: usize = 2;
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let msgs = c.messages();
            std::thread::spawn(move || {
                let mut got = 0usize;
                loop {
                    match msgs.recv_timeout(Duration::from_secs(2)) {
                        Ok(_) => got += 1,
                        Err(e) if e.is_timeout() => return got,
                        Err(e) => panic!("receive: {e}"),
                    }
                }
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    c.publish_wait(Message::new("rww/t", format!("{p} {i}")).qos(QoS::AtLeastOnce))
                        .unwrap();
                }
            })
        })
        .collect();
    for i in 0..20 {
        let f = format!("rww/other/{i}");
        c.subscribe(&f, QoS::AtMostOnce).unwrap();
        c.unsubscribe(&f).unwrap();
    }
    for p in publishers {
        p.join().unwrap();
    }
    let got: usize = receivers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(got, PER * PUBLISHERS);
}

/// Two clients, each with a thread that waits for the other's message and answers it: the
/// pattern where both waiting threads read their own sockets.
#[test]
fn ping_pong_between_two_waiting_clients() {
    let b = Broker::start();
    let ping = connect(&b, "rwping");
    let pong = connect(&b, "rwpong");
    ping.subscribe("rw/pong", QoS::AtLeastOnce).unwrap();
    pong.subscribe("rw/ping", QoS::AtLeastOnce).unwrap();
    const N: usize = 300;
    std::thread::scope(|s| {
        s.spawn(|| {
            let msgs = pong.messages();
            for _ in 0..N {
                let m = msgs.recv_timeout(DEADLINE).unwrap();
                pong.publish(Message::new("rw/pong", m.payload.clone()).qos(QoS::AtLeastOnce))
                    .unwrap();
            }
        });
        let msgs = ping.messages();
        for i in 0..N {
            let t = ping
                .publish(Message::new("rw/ping", i.to_string()).qos(QoS::AtLeastOnce))
                .unwrap();
            let m = msgs.recv_timeout(DEADLINE).unwrap();
            assert_eq!(m.payload_str().unwrap(), i.to_string());
            t.wait().unwrap();
        }
    });
}

/// A receiver blocked without a deadline returns once the client is closed from another
/// thread, and one waiting when the broker dies hears of the loss, both promptly.
#[test]
fn close_and_loss_end_a_wait() {
    let mut b = Broker::start();
    let c = connect(&b, "rwclose");
    c.subscribe("rw/none", QoS::AtLeastOnce).unwrap();
    let msgs = c.messages();
    let waiter = std::thread::spawn(move || {
        let r = msgs.recv();
        (r.map(|_| ()), Instant::now())
    });
    let t0 = Instant::now();
    c.close().unwrap();
    let (r, at) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    assert!(at.duration_since(t0) < Duration::from_secs(2));

    let c = connect(&b, "rwlost");
    c.subscribe("rw/none", QoS::AtLeastOnce).unwrap();
    let msgs = c.messages();
    let waiter = std::thread::spawn(move || {
        let r = msgs.recv_timeout(Duration::from_secs(30));
        (r.map(|_| ()), Instant::now())
    });
    let t0 = Instant::now();
    b.kill();
    let (r, at) = waiter.join().unwrap();
    assert!(matches!(r, Err(Error::ConnectionLost(_))), "{r:?}");
    assert!(at.duration_since(t0) < Duration::from_secs(2));
}

/// A disconnect made while another thread waits for a message (and may be reading the
/// socket): the in-flight publishes are completed and the disconnect returns promptly, not
/// at its deadline.
#[test]
fn disconnect_while_a_receiver_waits_returns_promptly() {
    let b = Broker::start();
    let c = Arc::new(connect(&b, "rwdisc"));
    c.subscribe("rw/quiet", QoS::AtLeastOnce).unwrap();
    let msgs = c.messages();
    let waiter = std::thread::spawn(move || msgs.recv_timeout(Duration::from_secs(30)));
    let tokens: Vec<_> = (0..50)
        .map(|i| {
            c.publish(Message::new("rw/elsewhere", i.to_string()).qos(QoS::AtLeastOnce))
                .unwrap()
        })
        .collect();
    let t0 = Instant::now();
    c.disconnect_with(Default::default(), Duration::from_secs(20))
        .unwrap();
    let took = t0.elapsed();
    for t in tokens {
        t.wait().unwrap();
    }
    assert!(took < Duration::from_secs(2), "disconnect took {took:?}");
    // Dropping the client ends the wait.
    drop(c);
    let r = waiter.join().unwrap();
    assert!(r.is_err(), "{r:?}");
}

/// A publisher that outruns a small window and queue (so it waits for room) while another
/// thread waits for a message: the acknowledgements the waiting thread reads must still
/// make room for the publisher.
#[test]
fn a_publisher_waiting_for_room_is_not_stalled_by_a_waiting_receiver() {
    let b = Broker::start();
    let c = Arc::new(
        Client::connect(
            ConnectOptions::new(&b.uri())
                .client_id(unique_client_id("rwroom"))
                .max_inflight(4)
                .max_queued(8)
                .keep_alive(Duration::from_secs(60)),
        )
        .unwrap(),
    );
    c.subscribe("rw/silent", QoS::AtLeastOnce).unwrap();
    let msgs = c.messages();
    let waiter = std::thread::spawn(move || msgs.recv_timeout(Duration::from_secs(20)));
    let t0 = Instant::now();
    let mut last = None;
    for i in 0..2000 {
        last = Some(
            c.publish(Message::new("rw/elsewhere", i.to_string()).qos(QoS::AtLeastOnce))
                .unwrap(),
        );
    }
    last.unwrap().wait_timeout(Duration::from_secs(20)).unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "2000 publishes took {took:?}"
    );
    drop(c);
    assert!(waiter.join().unwrap().is_err());
}

/// Waiters that poll the socket before they sleep (`ConnectOptions::spin_wait`), with the
/// largest budget and with none: replies that come within the budget (subscribe, the
/// acknowledgements, the other side's answers), waits it does not cover (a receive that
/// times out, a message published only after a pause) and a publisher's token all end as
/// without polling: every message once and in order, the timeout as a timeout.
#[test]
fn waiters_that_poll_before_they_sleep_get_every_reply_and_keep_their_deadlines() {
    let b = Broker::start();
    for budget in [Duration::from_secs(1), Duration::ZERO] {
        let opts = |id: &str| {
            ConnectOptions::new(&b.uri())
                .client_id(unique_client_id(id))
                .spin_wait(budget)
        };
        let ping = Client::connect(opts("rwspin-ping")).unwrap();
        let pong = Client::connect(opts("rwspin-pong")).unwrap();
        assert_eq!(
            ping.subscribe("rwspin/pong", QoS::AtLeastOnce).unwrap(),
            QoS::AtLeastOnce
        );
        assert_eq!(
            pong.subscribe("rwspin/ping", QoS::AtLeastOnce).unwrap(),
            QoS::AtLeastOnce
        );
        let quiet = ping.messages().recv_timeout(Duration::from_millis(30));
        assert!(
            matches!(quiet, Err(ref e) if e.is_timeout()),
            "{budget:?}: {quiet:?}"
        );
        const N: usize = 200;
        std::thread::scope(|s| {
            s.spawn(|| {
                let msgs = pong.messages();
                for i in 0..N {
                    let m = msgs.recv_timeout(DEADLINE).unwrap();
                    assert_eq!(m.payload_str().unwrap(), i.to_string(), "{budget:?}");
                    if i == N / 2 {
                        // A pause longer than any budget before the answer.
                        std::thread::sleep(Duration::from_millis(80));
                    }
                    pong.publish(
                        Message::new("rwspin/pong", m.payload.clone()).qos(QoS::AtLeastOnce),
                    )
                    .unwrap()
                    .wait_timeout(DEADLINE)
                    .unwrap();
                }
            });
            let msgs = ping.messages();
            for i in 0..N {
                ping.publish(Message::new("rwspin/ping", i.to_string()).qos(QoS::AtLeastOnce))
                    .unwrap()
                    .wait_timeout(DEADLINE)
                    .unwrap();
                let m = msgs.recv_timeout(DEADLINE).unwrap();
                assert_eq!(m.payload_str().unwrap(), i.to_string(), "{budget:?}");
            }
        });
        ping.unsubscribe("rwspin/pong").unwrap();
        let after = ping.messages().recv_timeout(Duration::from_millis(20));
        assert!(
            matches!(after, Err(ref e) if e.is_timeout()),
            "{budget:?}: {after:?}"
        );
    }
}

/// Who takes a client's messages in these tests.
#[derive(Clone, Copy)]
enum Consumer {
    /// The `on_message` callback (the dispatch thread).
    Callback,
    /// A thread in `Messages::recv_timeout`.
    Receiver,
}

/// A client whose consumer stops at the message "last" until released (the callback blocks;
/// the receiving thread does not come back to `recv`), after 30 quick ones published one
/// at a time (so that the consumer, waiting, reads each itself): it has read "last" and
/// keeps the socket while it is away. Every message text goes to the returned channel.
fn client_with_a_blocked_consumer(
    b: &Broker,
    id: &str,
    consumer: Consumer,
) -> (Client, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel::<String>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let take = move |text: String| {
        let last = text == "last";
        entered_tx.send(text).unwrap();
        if last {
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        }
    };
    let o = ConnectOptions::new(&b.uri())
        .client_id(unique_client_id(id))
        .keep_alive(Duration::from_secs(60));
    let c = match consumer {
        Consumer::Callback => {
            let take = Mutex::new(take);
            let o = o.on_message(move |m| {
                (take.lock().unwrap())(m.payload_str().unwrap_or_default().to_string())
            });
            Client::connect(o).unwrap()
        }
        Consumer::Receiver => {
            let c = Client::connect(o).unwrap();
            let msgs = c.messages();
            std::thread::spawn(move || {
                while let Ok(m) = msgs.recv_timeout(Duration::from_secs(30)) {
                    take(m.payload_str().unwrap_or_default().to_string());
                }
            });
            c
        }
    };
    let topic = format!("rwblock/{id}");
    c.subscribe(&topic, QoS::AtLeastOnce).unwrap();
    let p = connect(b, &format!("{id}p"));
    for i in 0..30 {
        p.publish_wait(Message::new(&topic, i.to_string()).qos(QoS::AtLeastOnce))
            .unwrap();
        assert_eq!(entered_rx.recv_timeout(DEADLINE).unwrap(), i.to_string());
    }
    p.publish_wait(Message::new(&topic, "last").qos(QoS::AtLeastOnce))
        .unwrap();
    assert_eq!(entered_rx.recv_timeout(DEADLINE).unwrap(), "last");
    (c, entered_rx, release_tx)
}

/// A message consumer is away (a callback blocks, a receiving thread does not call again)
/// while it keeps the socket: a subscribe and a QoS 1 publish of another thread get their
/// replies meanwhile, and the message that publish brings reaches the consumer once it is
/// back.
#[test]
fn a_consumer_away_holding_the_socket_stalls_no_reply() {
    let b = Broker::start();
    for (consumer, id) in [
        (Consumer::Callback, "rwblockcb"),
        (Consumer::Receiver, "rwblockrx"),
    ] {
        let (c, entered, release) = client_with_a_blocked_consumer(&b, id, consumer);
        let t0 = Instant::now();
        c.subscribe("rwblock/other", QoS::AtLeastOnce).unwrap();
        c.publish_wait(Message::new("rwblock/other", id).qos(QoS::AtLeastOnce))
            .unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{id}: {:?}",
            t0.elapsed()
        );
        release.send(()).unwrap();
        assert_eq!(entered.recv_timeout(DEADLINE).unwrap(), id);
        c.close().unwrap();
    }
}

/// A message consumer is away while it keeps the socket, and the broker stops (a clean
/// close: the client gets a FIN, no error): the loss is noticed within seconds (keepalive
/// is a minute away), not when the consumer comes back.
#[test]
fn a_consumer_away_holding_the_socket_hides_no_loss() {
    for (consumer, id) in [
        (Consumer::Callback, "rwlosscb"),
        (Consumer::Receiver, "rwlossrx"),
    ] {
        let mut b = Broker::start();
        let (c, _entered, release) = client_with_a_blocked_consumer(&b, id, consumer);
        assert!(c.is_connected());
        b.stop();
        assert!(
            wait_until(Duration::from_secs(5), || !c.is_connected()),
            "{id}: the loss was not noticed while the consumer was away"
        );
        release.send(()).unwrap();
    }
}

/// A thread waiting for its token gets the acknowledgement when it comes, also when a
/// receiving thread read everything before it and then stopped calling `recv`. Scripted
/// as tests/lifetime.rs's sixteen threads ended when it stalled: a stream (5000 messages,
/// so the client's I/O work is awake), a publish whose PUBACK the server holds back, 30
/// more messages 10 ms apart (the receiver reads them on its own thread; the I/O thread,
/// whose last wake-up was the publish, goes to sleep until the keepalive), then the
/// PUBACK, 100 ms after the receiver's last message. Before 2026-12-07, late evening, the
/// receiver kept the socket after its last message and nobody read the PUBACK until the
/// keepalive (3 of 3 runs); the waiting thread now makes it give the socket back.
#[test]
fn a_token_waits_no_longer_than_its_acknowledgement_after_a_receiver_stops() {
    use common::fake_broker::{Flood, Kind};
    use common::{FakeBroker, Script};
    use mqttsync::internals::proto::{Packet, Properties, Publish};
    const STREAM: usize = 5000;
    const PACED: usize = 30;
    let mut script = Script::new()
        .handshake()
        .flood(Flood {
            topic: "rww/a".into(),
            payload_len: 16,
            count: STREAM as u64,
            block_after: Duration::from_secs(30),
            limit: DEADLINE,
        })
        .expect(Kind::Publish);
    for _ in 0..PACED {
        // Pacing of the stream, not synchronisation: the outcome does not depend on it.
        script = script
            .custom(|_| {
                std::thread::sleep(Duration::from_millis(10));
                Ok(())
            })
            .send(Packet::Publish(Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: false,
                topic: "rww/a".into(),
                pkid: 0,
                payload: bytes::Bytes::from_static(b"paced"),
                properties: Properties::new(),
            }));
    }
    let mut fake = FakeBroker::start(
        script
            .custom(|_| {
                std::thread::sleep(Duration::from_millis(100));
                Ok(())
            })
            .ack_last()
            .drain(),
    );
    let c = Client::connect(
        ConnectOptions::new(&fake.uri())
            .client_id(unique_client_id("rwwstop"))
            .keep_alive(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let msgs = c.messages();
    let (streamed_tx, streamed_rx) = mpsc::channel::<()>();
    let receiver = std::thread::spawn(move || {
        for i in 0..STREAM + PACED {
            msgs.recv_timeout(DEADLINE).expect("message");
            if i + 1 == STREAM {
                let _ = streamed_tx.send(());
            }
        }
        // No further `recv` on this thread.
    });
    streamed_rx.recv_timeout(DEADLINE).unwrap();
    let token = c
        .publish(Message::new("rww/b", "x").qos(QoS::AtLeastOnce))
        .unwrap();
    let start = Instant::now();
    let r = token.wait_timeout(Duration::from_secs(10));
    assert!(r.is_ok(), "token: {r:?} after {:?}", start.elapsed());
    receiver.join().unwrap();
    c.close().unwrap();
    if let Err(e) = fake.join() {
        panic!("fake broker script failed: {e}");
    }
}
