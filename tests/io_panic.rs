//! A panic on a client's I/O thread closes the client and answers every waiter.
//!
//! The panic comes from a persistence store whose `put` panics for a received-QoS 2 marker:
//! that write happens on the I/O thread only (when it passes the application's
//! acknowledgement to the session), never on a caller's thread. Before the fix the I/O
//! thread died silently and every waiter below slept until its own timeout, the client
//! still reporting `Connected`.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{unique_client_id, FakeBroker, Script, DEADLINE};
use mqttsync::internals::proto::{Packet, Publish};
use mqttsync::persist::{MemoryStore, PersistError, Store};
use mqttsync::Properties;
use mqttsync::{Client, ConnectOptions, Error, LostCause, Message, ProtocolVersion, QoS, State};

/// How long a waiter may take to get its error once the I/O thread has panicked.
const PROMPT: Duration = Duration::from_secs(3);
/// The waiters' own deadlines: far longer than `PROMPT`, so a timeout cannot pass for it.
const LONG: Duration = Duration::from_secs(60);

/// A memory store whose `put` panics for received-QoS 2 markers (keys `r-...`).
struct PanicOnMarker(MemoryStore);

impl Store for PanicOnMarker {
    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<(), PersistError> {
        self.0.open(client_id, server_uri)
    }
    fn close(&mut self) -> Result<(), PersistError> {
        self.0.close()
    }
    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<(), PersistError> {
        if key.starts_with("r-") {
            panic!("injected: store put({key}) panics");
        }
        self.0.put(key, parts)
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, PersistError> {
        self.0.get(key)
    }
    fn remove(&mut self, key: &str) -> Result<(), PersistError> {
        self.0.remove(key)
    }
    fn keys(&mut self) -> Result<Vec<String>, PersistError> {
        self.0.keys()
    }
    fn clear(&mut self) -> Result<(), PersistError> {
        self.0.clear()
    }
    fn contains_key(&mut self, key: &str) -> Result<bool, PersistError> {
        self.0.contains_key(key)
    }
}

#[test]
fn a_panic_on_the_io_thread_closes_the_client_and_answers_every_waiter() {
    let incoming = Packet::Publish(Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "in".into(),
        pkid: 7,
        payload: Bytes::from_static(b"qos2"),
        properties: Properties::new(),
    });
    // The fake broker hands over one QoS 2 message, then reads and never answers.
    let mut fake = FakeBroker::start(Script::new().handshake().send(incoming).drain());
    let client = Client::connect(
        ConnectOptions::new(&fake.uri())
            .client_id(unique_client_id("panic"))
            .version(ProtocolVersion::V311)
            .connect_timeout(DEADLINE)
            .request_timeout(LONG)
            .manual_acks(true)
            .max_inflight(1)
            .max_queued(1)
            .persistence(Box::new(PanicOnMarker(MemoryStore::new()))),
    )
    .expect("connect");
    let messages = client.messages();
    let m = messages.recv_timeout(DEADLINE).expect("the QoS 2 message");
    assert_eq!(m.qos, QoS::ExactlyOnce);
    // A QoS 1 publish the server never acknowledges: its token waits.
    let token = client
        .publish(Message::new("out", "pending").qos(QoS::AtLeastOnce))
        .expect("publish");

    let (panicked_at, results) = std::thread::scope(|s| {
        let waiters = vec![
            (
                "delivery token",
                s.spawn(|| (token.wait_timeout(LONG).map(|_| ()), Instant::now())),
            ),
            (
                "subscribe",
                s.spawn(|| {
                    let r = client.subscribe("s/#", QoS::AtLeastOnce).map(|_| ());
                    (r, Instant::now())
                }),
            ),
            (
                "unsubscribe",
                s.spawn(|| (client.unsubscribe("u/#"), Instant::now())),
            ),
            (
                // Window 1, queue 1, channel 1: the third or fourth publish waits for room.
                "publisher waiting for room",
                s.spawn(|| loop {
                    let r = client
                        .publish_timeout(Message::new("out", "more").qos(QoS::AtLeastOnce), LONG);
                    if let Err(e) = r {
                        break (Err(e), Instant::now());
                    }
                }),
            ),
            (
                "receiver",
                s.spawn(|| (messages.recv_timeout(LONG).map(|_| ()), Instant::now())),
            ),
        ];
        // Let every waiter get to its wait.
        std::thread::sleep(Duration::from_millis(500));
        for (what, h) in &waiters {
            assert!(!h.is_finished(), "{what} returned before the panic");
        }
        assert_eq!(client.state(), State::Connected);
        // The acknowledgement makes the I/O thread store the QoS 2 marker: the store panics.
        let panicked_at = Instant::now();
        let _ = m.ack();
        let results: Vec<_> = waiters
            .into_iter()
            .map(|(what, h)| (what, h.join().expect("waiter thread")))
            .collect();
        (panicked_at, results)
    });

    for (what, (r, at)) in &results {
        let took = at.saturating_duration_since(panicked_at);
        assert!(r.is_err(), "{what}: expected an error, got {r:?}");
        assert!(took < PROMPT, "{what}: answered after {took:?}: {r:?}");
        eprintln!("{what}: {took:?}: {}", r.as_ref().unwrap_err().report());
    }
    assert_eq!(client.state(), State::Closed);
    assert!(matches!(
        client.last_error().as_deref(),
        Some(Error::ConnectionLost(LostCause::IoThreadPanicked))
    ));
    assert!(matches!(
        client.publish(Message::new("out", "late")),
        Err(Error::Closed)
    ));
    drop(client);
    fake.join().expect("fake broker script");
}
