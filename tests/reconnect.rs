//! Automatic reconnect, several servers and broker restarts, against real mosquitto
//! processes: nothing the client accepted is lost.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{unique_client_id, wait_until, Broker, DEADLINE};
use mqttsync::persist::FileStore;
use mqttsync::{
    Client, ConnectOptions, DeliveryToken, Message, ProtocolVersion, QoS, ReconnectOptions, State,
};

fn fast_reconnect() -> ReconnectOptions {
    ReconnectOptions {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        max_buffered: 100_000,
        ..Default::default()
    }
}

fn persistent(uri: &str, id: &str) -> ConnectOptions {
    ConnectOptions::new(uri)
        .client_id(id)
        .clean_start(false)
        .keep_alive(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .automatic_reconnect(fast_reconnect())
}

/// Collects message payloads from a client's channel until `want` distinct ones arrived.
fn collect_distinct(c: &Client, want: usize, timeout: Duration) -> HashMap<String, usize> {
    let deadline = Instant::now() + timeout;
    let mut seen: HashMap<String, usize> = HashMap::new();
    while seen.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.messages().recv_timeout(left) {
            Ok(m) => {
                *seen
                    .entry(m.payload_str().unwrap().to_string())
                    .or_default() += 1
            }
            Err(mqttsync::Error::ConnectionLost(_)) => continue,
            Err(e) => {
                eprintln!("after {} distinct messages: {e}", seen.len());
                break;
            }
        }
    }
    seen
}

#[test]
fn broker_restart_mid_stream_loses_nothing_and_qos2_stays_exactly_once() {
    // Unlimited queue so the broker itself drops nothing for a slow subscriber.
    let mut broker = Broker::builder()
        .persistence(true)
        .max_queued_messages(100_000)
        .start();
    let uri = broker.uri();
    let sub = Client::connect(persistent(&uri, &unique_client_id("rsub"))).unwrap();
    sub.subscribe("stream/#", QoS::ExactlyOnce).unwrap();
    // Default window (20): mosquitto refuses (PUBACK 0x97, silent in 3.1.1) QoS 1/2 messages
    // beyond its max_inflight_messages of 20 per client.
    let publ = Client::connect(persistent(&uri, &unique_client_id("rpub"))).unwrap();

    let n = 2000usize;
    let mut tokens: Vec<DeliveryToken> = Vec::with_capacity(n);
    for i in 0..n {
        let qos = if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        tokens.push(
            publ.publish(Message::new(format!("stream/{}", i % 2), format!("{i}")).qos(qos))
                .unwrap(),
        );
        if i == n / 2 {
            // SIGTERM (mosquitto saves its database) and start again on the same port, in
            // the middle of the stream.
            broker.restart();
        }
    }
    for (i, t) in tokens.iter().enumerate() {
        t.wait_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("message {i} not acknowledged: {e}"));
    }
    let seen = collect_distinct(&sub, n, Duration::from_secs(30));
    let missing: Vec<usize> = (0..n)
        .filter(|i| !seen.contains_key(&i.to_string()))
        .collect();
    assert!(missing.is_empty(), "missing messages {missing:?}");
    for i in (1..n).step_by(2) {
        assert_eq!(
            seen[&i.to_string()],
            1,
            "QoS 2 message {i} delivered exactly once"
        );
    }
    let dups: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "{} messages, all received; {} QoS 1 duplicates; reconnects: pub {}, sub {}",
        n,
        dups,
        publ.stats().reconnects,
        sub.stats().reconnects
    );
    assert!(publ.stats().reconnects >= 1 && sub.stats().reconnects >= 1);
}

#[test]
fn resubscribes_when_the_broker_lost_the_session() {
    // No persistence: a restarted broker knows nothing of the subscription.
    let mut broker = Broker::start();
    let uri = broker.uri();
    let (conn_tx, conn_rx) = mpsc::channel();
    let sub = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(unique_client_id("resub"))
            .automatic_reconnect(fast_reconnect())
            .on_connected(move |sp| {
                let _ = conn_tx.send(sp);
            }),
    )
    .unwrap();
    assert!(!conn_rx.recv_timeout(DEADLINE).unwrap());
    sub.subscribe("resub/+", QoS::AtLeastOnce).unwrap();
    broker.restart();
    // Reconnected without a session: the client subscribes again by itself.
    assert!(
        !conn_rx.recv_timeout(DEADLINE).unwrap(),
        "second connect, session lost"
    );
    assert!(
        broker.wait_for_log_count("Received SUBSCRIBE from", 2, DEADLINE),
        "{}",
        broker.log()
    );
    let publ =
        Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("rp"))).unwrap();
    publ.publish_wait(Message::new("resub/x", "after restart").qos(QoS::AtLeastOnce))
        .unwrap();
    let m = sub.messages().recv_timeout(DEADLINE);
    let m = match m {
        Err(mqttsync::Error::ConnectionLost(_)) => sub.messages().recv_timeout(DEADLINE),
        other => other,
    }
    .unwrap();
    assert_eq!(m.payload_str(), Some("after restart"));
    assert_eq!(sub.stats().reconnects, 1);
}

/// Automatic reconnect every 100-200 ms, at most ten publishes buffered meanwhile.
fn ten_buffered() -> ReconnectOptions {
    ReconnectOptions {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(200),
        max_buffered: 10,
        ..Default::default()
    }
}

/// Fifteen publishes to `topic` (payloads "0".."14", QoS `qos(i)`) by a client that
/// reconnects with [`ten_buffered`]: the 11th..15th are refused at once.
fn publish_fifteen(c: &Client, topic: &str, qos: impl Fn(usize) -> QoS) -> Vec<DeliveryToken> {
    let tokens: Vec<_> = (0..15)
        .map(|i| {
            c.publish(Message::new(topic, format!("{i}")).qos(qos(i)))
                .unwrap()
        })
        .collect();
    for t in &tokens[10..] {
        assert!(matches!(
            t.wait_timeout(DEADLINE),
            Err(mqttsync::Error::NotConnected)
        ));
    }
    tokens
}

#[test]
fn publishes_while_disconnected_are_buffered_up_to_a_bound_and_drops_are_counted() {
    let mut broker = Broker::start();
    let uri = broker.uri();
    let watcher_opts = |b: &Broker| ConnectOptions::new(&b.uri()).client_id(unique_client_id("w"));
    let c = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(unique_client_id("buf"))
            .automatic_reconnect(ten_buffered()),
    )
    .unwrap();
    broker.stop();
    assert!(wait_until(DEADLINE, || c.state() == State::Reconnecting));
    let tokens = publish_fifteen(&c, "buf", |_| QoS::AtLeastOnce);
    // The five refused are counted.
    assert_eq!(c.stats().dropped, 5);
    broker.start_again();
    let w = Client::connect(watcher_opts(&broker)).unwrap();
    w.subscribe("buf", QoS::AtLeastOnce).unwrap();
    // The first ten go out once the client is back (it may reconnect before or after the
    // watcher subscribed; wait for the tokens, which complete only on PUBACK).
    for t in &tokens[..10] {
        t.wait_timeout(DEADLINE).unwrap();
    }
    assert!(c.is_connected());
}

/// With a store, QoS 1/2 publishes made while the client reconnects are persisted at once
/// (up to the same bound): the client closed before the server came back leaves them in
/// its store (as a kill would), and the next client over the store sends them.
#[test]
fn publishes_while_reconnecting_are_persisted_and_sent_by_the_next_client() {
    let mut broker = Broker::start();
    let root = common::run_subdir("offline");
    let id = unique_client_id("offpub");
    let opts = |b: &Broker| {
        ConnectOptions::new(&b.uri())
            .client_id(&id)
            .clean_start(false)
            .persistence(Box::new(FileStore::new(&root)))
            .automatic_reconnect(ten_buffered())
    };
    let c = Client::connect(opts(&broker)).unwrap();
    broker.stop();
    assert!(wait_until(DEADLINE, || c.state() == State::Reconnecting));
    let qos = |i: usize| {
        if i % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        }
    };
    let tokens = publish_fifteen(&c, "off/x", qos);
    let records = || {
        common::files_under(&root)
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("s-"))
            })
            .count()
    };
    assert!(
        wait_until(DEADLINE, || records() == 10),
        "the ten accepted publishes are in the store ({} records)",
        records()
    );
    drop(tokens);
    drop(c);
    assert_eq!(records(), 10, "closing keeps them");

    broker.start_again();
    let sub =
        Client::connect(ConnectOptions::new(&broker.uri()).client_id(unique_client_id("offsub")))
            .unwrap();
    sub.subscribe("off/#", QoS::ExactlyOnce).unwrap();
    let next = Client::connect(opts(&broker)).unwrap();
    let got = collect_distinct(&sub, 10, DEADLINE);
    let mut names: Vec<usize> = got.keys().map(|k| k.parse().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, (0..10).collect::<Vec<_>>());
    for (k, n) in &got {
        let i: usize = k.parse().unwrap();
        if qos(i) == QoS::ExactlyOnce {
            assert_eq!(*n, 1, "QoS 2 message {i} exactly once");
        }
    }
    assert!(wait_until(DEADLINE, || records() == 0), "all completed");
    next.disconnect().unwrap();
}

#[test]
fn backoff_spaces_out_reconnect_attempts() {
    let mut broker = Broker::start();
    let (lost_tx, lost_rx) = mpsc::channel();
    let c = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("backoff"))
            .connect_timeout(Duration::from_millis(500))
            .automatic_reconnect(ReconnectOptions {
                min_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(400),
                max_buffered: 10,
                ..Default::default()
            })
            .on_connection_lost(move |_| {
                let _ = lost_tx.send(Instant::now());
            }),
    )
    .unwrap();
    broker.kill();
    lost_rx.recv_timeout(DEADLINE).unwrap();
    // Count connection attempts against the closed port by listening on it ourselves
    // for two seconds: with delays 50-100, 100-200, 200-400, 200-400, ... ms there are
    // between 4 and 12 attempts; without backoff there would be thousands.
    let listener = std::net::TcpListener::bind(broker.addr()).expect("port free after kill");
    listener.set_nonblocking(true).unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(2);
    let mut held = Vec::new();
    while Instant::now() < until {
        match listener.accept() {
            Ok((s, _)) => {
                attempts.fetch_add(1, Ordering::SeqCst);
                held.push(s); // never answer: the client times out waiting for CONNACK
                drop(held.remove(0));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let n = attempts.load(Ordering::SeqCst);
    assert!((2..=12).contains(&n), "{n} attempts in 2 s");
    assert_eq!(c.state(), State::Reconnecting);
    drop(listener);
    drop(held);
    // Close it without waiting for the next attempt to succeed.
    c.disconnect().unwrap();
    assert_eq!(c.state(), State::Disconnected);
}

/// Two servers that share nothing; the subscriber has a persistent session on each. The
/// second queues three messages while the subscriber is on the first, whose three messages
/// the application has not taken when the subscriber fails over. The second server's
/// packet ids (1, 2, 3) are those of the first server's messages: they name other
/// messages there, and all six must reach the application.
fn failover_to_a_server_with_its_own_session_delivers_both(qos: QoS) {
    let mut a = Broker::start();
    let b = Broker::start();
    let sid = unique_client_id("fo2sub");
    let pre = Client::connect(persistent(&b.uri(), &sid)).unwrap();
    pre.subscribe("fo/#", qos).unwrap();
    pre.disconnect().unwrap();
    drop(pre);
    let sub = Client::connect(persistent(&a.uri(), &sid).server(&b.uri())).unwrap();
    sub.subscribe("fo/#", qos).unwrap();

    let to_a =
        Client::connect(ConnectOptions::new(&a.uri()).client_id(unique_client_id("fo2a"))).unwrap();
    for i in 0..3 {
        to_a.publish_wait(Message::new("fo/x", format!("a{i}")).qos(qos))
            .unwrap();
    }
    // In the subscriber's queue, not taken (so not acknowledged to the first server).
    assert!(wait_until(DEADLINE, || sub.messages().len() == 3));
    let to_b =
        Client::connect(ConnectOptions::new(&b.uri()).client_id(unique_client_id("fo2b"))).unwrap();
    for i in 0..3 {
        to_b.publish_wait(Message::new("fo/x", format!("b{i}")).qos(qos))
            .unwrap();
    }

    a.kill();
    assert!(
        wait_until(DEADLINE, || sub.is_connected()
            && sub
                .connect_info()
                .is_some_and(|i| i.server.contains(&b.port().to_string()))),
        "failed over to the second server"
    );
    let got = collect_distinct(&sub, 6, DEADLINE);
    let mut names: Vec<&str> = got.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["a0", "a1", "a2", "b0", "b1", "b2"],
        "{qos:?}: every message of both servers reaches the application"
    );
    // The second server's three were acknowledged there (taken and dropped above).
    let acked = if qos == QoS::AtLeastOnce {
        format!("Received PUBACK from {sid}")
    } else {
        format!("Received PUBREC from {sid}")
    };
    assert!(
        b.wait_for_log_count(&acked, 3, DEADLINE),
        "{qos:?}: the second server's messages acknowledged there"
    );
    sub.disconnect().unwrap();
}

#[test]
fn failover_to_a_server_with_its_own_session_delivers_both_qos1() {
    failover_to_a_server_with_its_own_session_delivers_both(QoS::AtLeastOnce);
}

#[test]
fn failover_to_a_server_with_its_own_session_delivers_both_qos2() {
    failover_to_a_server_with_its_own_session_delivers_both(QoS::ExactlyOnce);
}

/// A subscriber with two servers and file persistence is on the second when it stops with
/// three QoS 2 messages of that server half done (taken and acknowledged with PUBREC, no
/// PUBREL yet: their markers `r-1`..`r-3` stay in the store). Started again, it connects to
/// the first server, whose own session has queued three messages under the same packet
/// ids: the markers must not be taken for theirs (each would be dropped as a resend).
#[test]
fn restarted_client_tells_its_qos2_markers_from_another_servers_messages() {
    let mut a = Broker::builder().persistence(true).start();
    let mut b = Broker::start();
    let sid = unique_client_id("fo3sub");
    let root = common::run_subdir("fo3");
    let opts = |servers: &[&str]| {
        let mut o = persistent(servers[0], &sid).persistence(Box::new(FileStore::new(&root)));
        for s in &servers[1..] {
            o = o.server(s);
        }
        o
    };
    let (a_uri, b_uri) = (a.uri(), b.uri());
    let both = [a_uri.as_str(), b_uri.as_str()];

    // The subscriber's session on the first server, which queues three messages for it.
    let pre = Client::connect(opts(&both[..1])).unwrap();
    pre.subscribe("m/#", QoS::ExactlyOnce).unwrap();
    pre.disconnect().unwrap();
    drop(pre);
    let to_a =
        Client::connect(ConnectOptions::new(&a.uri()).client_id(unique_client_id("fo3a"))).unwrap();
    for i in 0..3 {
        to_a.publish_wait(Message::new("m/x", format!("a{i}")).qos(QoS::ExactlyOnce))
            .unwrap();
    }
    drop(to_a);
    a.stop(); // its session and queue are saved

    // With the first server down the subscriber is on the second, and takes its three
    // messages while that server is frozen: no PUBREL can complete them.
    let sub = Client::connect(opts(&both)).unwrap();
    assert!(sub
        .connect_info()
        .unwrap()
        .server
        .contains(&b.port().to_string()));
    sub.subscribe("m/#", QoS::ExactlyOnce).unwrap();
    let to_b =
        Client::connect(ConnectOptions::new(&b.uri()).client_id(unique_client_id("fo3b"))).unwrap();
    for i in 0..3 {
        to_b.publish_wait(Message::new("m/x", format!("b{i}")).qos(QoS::ExactlyOnce))
            .unwrap();
    }
    assert!(wait_until(DEADLINE, || sub.messages().len() == 3));
    b.pause();
    for i in 0..3 {
        // Acknowledged when dropped: the marker is stored, then PUBREC goes out.
        let m = sub.messages().recv_timeout(DEADLINE).unwrap();
        assert_eq!(m.payload_str().unwrap(), format!("b{i}"));
    }
    assert!(
        wait_until(DEADLINE, || ["r-1.msg", "r-2.msg", "r-3.msg"]
            .iter()
            .all(|f| common::files_under(&root).iter().any(|p| p.ends_with(f)))),
        "the three markers are stored"
    );
    b.kill();
    drop(sub);

    // Started again with the first server back: its three messages reach the application.
    a.start_again();
    let sub = Client::connect(opts(&both)).unwrap();
    assert!(sub
        .connect_info()
        .unwrap()
        .server
        .contains(&a.port().to_string()));
    let got = collect_distinct(&sub, 3, DEADLINE);
    let mut names: Vec<&str> = got.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["a0", "a1", "a2"],
        "the first server's messages are not taken for resends"
    );
    sub.disconnect().unwrap();
}

#[test]
fn failover_between_two_bridged_brokers_keeps_every_qos1_message() {
    // Node B, and node A bridged to it in both directions. B queues without limit for the
    // subscriber while it is on A: the bridge's copies and the publisher's messages come to
    // more than mosquitto's default 1000, and B would drop the newest.
    let b = Broker::builder().max_queued_messages(0).start();
    let mut a = Broker::builder()
        .extra_config("connection a-to-b")
        .extra_config(&format!("address 127.0.0.1:{}", b.port()))
        .extra_config("topic cluster/# both 1")
        .extra_config("cleansession true")
        .extra_config("try_private true")
        .extra_config("notifications false")
        .start();
    assert!(a.wait_for_log("Connecting bridge", DEADLINE) || a.wait_for_log("bridge", DEADLINE));

    // Subscriber with both URIs, first A. Its persistent session on B is made beforehand,
    // so B queues everything while the subscriber is on A.
    let sid = unique_client_id("fsub");
    let pre = Client::connect(persistent(&b.uri(), &sid)).unwrap();
    pre.subscribe("cluster/#", QoS::AtLeastOnce).unwrap();
    pre.disconnect().unwrap();
    drop(pre);
    let sub = Client::connect(persistent(&a.uri(), &sid).server(&b.uri())).unwrap();
    sub.subscribe("cluster/#", QoS::AtLeastOnce).unwrap();
    assert!(sub
        .connect_info()
        .unwrap()
        .server
        .contains(&a.port().to_string()));

    // Publisher with both URIs, first A too. It tells when it has lost A: by then it has
    // read everything A sent (a loss is noticed at the end of the stream).
    let (lost_tx, lost_rx) = mpsc::channel();
    let publ = Client::connect(
        persistent(&a.uri(), &unique_client_id("fpub"))
            .server(&b.uri())
            .max_inflight(20)
            .automatic_reconnect(ReconnectOptions {
                min_delay: Duration::from_millis(500),
                ..fast_reconnect()
            })
            .on_connection_lost(move |_| {
                let _ = lost_tx.send(());
            }),
    )
    .unwrap();
    // Wait until the bridge carries traffic A -> B -> (queue for sid).
    let n = 1000usize;
    let mut tokens = Vec::new();
    let mut snapshot: Option<HashSet<usize>> = None;
    for i in 0..n {
        tokens.push(
            publ.publish(Message::new("cluster/x", format!("{i}")).qos(QoS::AtLeastOnce))
                .unwrap(),
        );
        if i == n / 2 {
            // Freeze A so it acknowledges nothing more, kill it, and note what A
            // acknowledged once the publisher has noticed the loss (it has then read all
            // that A sent; its first reconnect comes half a second later).
            a.pause();
            a.kill();
            lost_rx
                .recv_timeout(DEADLINE)
                .expect("publisher noticed A's death");
            snapshot = Some(
                (0..tokens.len())
                    .filter(|i| tokens[*i].is_complete())
                    .collect(),
            );
        }
    }
    for (i, t) in tokens.iter().enumerate() {
        t.wait_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("message {i} never acknowledged: {e}"));
    }
    assert!(
        publ.connect_info()
            .unwrap()
            .server
            .contains(&b.port().to_string()),
        "publisher failed over"
    );
    let acked_by_a = snapshot.unwrap();
    // Every message A had not acknowledged was resent to B by the client and must arrive.
    let must: HashSet<usize> = (0..n).filter(|i| !acked_by_a.contains(i)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got: HashSet<usize> = HashSet::new();
    while !must.is_subset(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        match sub.messages().recv_timeout(left) {
            Ok(m) => {
                got.insert(m.payload_str().unwrap().parse().unwrap());
            }
            Err(mqttsync::Error::ConnectionLost(_)) => {}
            Err(e) => {
                let missing: Vec<_> = must.difference(&got).collect();
                panic!("missing {} messages: {e}: {missing:?}", missing.len())
            }
        }
    }
    // Give stragglers from B's queue a moment to arrive for the report.
    while let Ok(m) = sub.messages().recv_timeout(Duration::from_millis(300)) {
        got.insert(m.payload_str().unwrap().parse().unwrap());
    }
    let lost_by_a = acked_by_a.iter().filter(|i| !got.contains(i)).count();
    eprintln!(
        "failover: {n} messages, {} acknowledged by A before it died, {lost_by_a} of those died with A, all {} others arrived",
        acked_by_a.len(),
        must.len()
    );
    assert!(
        sub.connect_info()
            .unwrap()
            .server
            .contains(&b.port().to_string()),
        "subscriber failed over"
    );
    let _ = ProtocolVersion::V311;
}

/// `before_reconnect` changes the password of the automatic reconnects: after a broker
/// restart with a new password the client with the hook is back, one without it is refused
/// (not authorised) and stays away.
#[test]
fn before_reconnect_hook_changes_the_password_of_automatic_reconnects() {
    let mut broker = Broker::builder().password("u", "old").start();
    let uri = broker.uri();
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let hooked = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(unique_client_id("hooked"))
            .credentials("u", Some(b"old"))
            .connect_timeout(Duration::from_secs(2))
            .automatic_reconnect(fast_reconnect())
            .before_reconnect({
                let calls = calls.clone();
                move |c| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(c.username.as_deref(), Some("u"));
                    c.password = Some(bytes::Bytes::from_static(b"new"));
                    true
                }
            })
            .on_connected(move |_| {
                let _ = tx.send(());
            }),
    )
    .unwrap();
    let plain = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(unique_client_id("plain"))
            .credentials("u", Some(b"old"))
            .connect_timeout(Duration::from_secs(2))
            .automatic_reconnect(fast_reconnect()),
    )
    .unwrap();
    rx.recv_timeout(DEADLINE)
        .expect("on_connected of the first connect");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "not called for the first connect"
    );

    broker.stop();
    broker.set_password("u", "new");
    broker.start_again();
    rx.recv_timeout(DEADLINE)
        .expect("the client with the hook reconnects with the new password");
    assert!(hooked.is_connected());
    assert!(calls.load(Ordering::SeqCst) >= 1);
    // The same password on every later attempt: a publish round trip works.
    hooked
        .publish(Message::new("hook/t", "x").qos(QoS::AtLeastOnce))
        .unwrap()
        .wait()
        .unwrap();
    // mosquitto names a refused client <unknown>; the hooked client never sends the old
    // password again, so the refusal is the plain client's.
    assert!(
        broker.wait_for_log("disconnected, not authorised", DEADLINE),
        "{}",
        broker.log()
    );
    assert!(!plain.is_connected());
}

/// A hook returning false skips the attempt: no CONNECT reaches the broker until it
/// allows one.
#[test]
fn before_reconnect_hook_can_skip_attempts() {
    let mut broker = Broker::start();
    let uri = broker.uri();
    let allow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let skipped = Arc::new(AtomicUsize::new(0));
    let id = unique_client_id("skip");
    let c = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(id.clone())
            .connect_timeout(Duration::from_secs(2))
            .automatic_reconnect(fast_reconnect())
            .before_reconnect({
                let allow = allow.clone();
                let skipped = skipped.clone();
                move |_| {
                    let go = allow.load(Ordering::SeqCst);
                    if !go {
                        skipped.fetch_add(1, Ordering::SeqCst);
                    }
                    go
                }
            }),
    )
    .unwrap();
    broker.restart();
    let connects = broker.log_count(&format!("as {id}"));
    assert!(wait_until(DEADLINE, || skipped.load(Ordering::SeqCst) >= 3));
    assert!(!c.is_connected());
    assert_eq!(
        broker.log_count(&format!("as {id}")),
        connects,
        "no CONNECT since the restart: {}",
        broker.log()
    );
    allow.store(true, Ordering::SeqCst);
    assert!(wait_until(DEADLINE, || c.is_connected()));
}
