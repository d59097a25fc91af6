//! Faults on the network path, through the harness's TCP fault proxy (`FaultProxy`) in
//! front of a real mosquitto: stalled links found by keepalive within 1.5 × the interval,
//! QoS 1/2 streams through repeated cuts and stalls in both directions (nothing lost, QoS 2
//! never duplicated), and a slowed link that still delivers everything.

mod common;

use std::collections::HashMap;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{unique_client_id, Broker, Direction, FaultProxy, DEADLINE};
use mqttsync::{Client, ConnectOptions, DeliveryToken, Message, QoS, ReconnectOptions};

/// Scheduling slack on a loaded 2-core machine for the keepalive bound.
const SLACK: Duration = Duration::from_millis(400);

/// A small xorshift generator (no dependency); the seed is printed so a failure can be
/// replayed with `MQTTSYNC_FAULT_SEED`.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("MQTTSYNC_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
                    | 1
            });
        eprintln!("fault schedule seed: {seed} (MQTTSYNC_FAULT_SEED={seed} to replay)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

/// Connects through `proxy` with keepalive `ka`; returns the client and a channel that
/// gets (time, cause) at every connection loss.
fn client_through(proxy: &FaultProxy, ka: Duration) -> (Client, mpsc::Receiver<(Instant, String)>) {
    let (tx, rx) = mpsc::channel();
    let c = Client::connect(
        ConnectOptions::new(&proxy.uri())
            .client_id(unique_client_id("ka"))
            .keep_alive(ka)
            .connect_timeout(DEADLINE)
            .on_connection_lost(move |e| {
                let _ = tx.send((Instant::now(), e.report()));
            }),
    )
    .expect("connect through the proxy");
    (c, rx)
}

/// Stalls `dir` right after a round trip and measures how long the client takes to declare
/// the connection lost. The session sends PINGREQ when nothing was sent or received for
/// the keepalive interval and gives up when nothing answers within half of it: detection
/// after between 1 × and 1.5 × the interval (plus scheduling slack).
fn keepalive_detects_stall(dir: Direction) -> (Duration, String) {
    let broker = Broker::start();
    let proxy = FaultProxy::start(broker.addr());
    let ka = Duration::from_secs(2);
    let (client, lost) = client_through(&proxy, ka);
    // A round trip: both "last sent" and "last received" are now.
    client.subscribe("ka/x", QoS::AtLeastOnce).unwrap();
    let t0 = Instant::now();
    proxy.stall(dir);
    let (at, cause) = lost
        .recv_timeout(ka * 3)
        .expect("the stalled connection is never declared lost");
    let took = at - t0;
    eprintln!("{dir:?} stall noticed after {took:?}: {cause}");
    assert!(
        took >= ka - Duration::from_millis(50),
        "lost after {took:?}, before the keepalive interval {ka:?} ({cause})"
    );
    assert!(
        took <= ka * 3 / 2 + SLACK,
        "lost after {took:?}, later than 1.5 x {ka:?} + {SLACK:?}"
    );
    drop(client);
    (took, cause)
}

#[test]
fn keepalive_notices_a_link_stalled_both_ways_within_one_and_a_half_intervals() {
    let (_, cause) = keepalive_detects_stall(Direction::Both);
    assert!(cause.contains("keepalive"), "cause: {cause}");
}

#[test]
fn keepalive_notices_a_link_stalled_towards_the_client() {
    // PINGREQ reaches the broker, PINGRESP never comes back.
    let (_, cause) = keepalive_detects_stall(Direction::Down);
    assert!(cause.contains("keepalive"), "cause: {cause}");
}

#[test]
fn keepalive_notices_a_link_stalled_towards_the_broker() {
    // PINGREQ never arrives; the broker's own keepalive (1.5 x) may close the link at about
    // the same moment, which the proxy passes on: either way within the bound.
    keepalive_detects_stall(Direction::Up);
}

fn reconnecting(proxy: &FaultProxy, prefix: &str) -> ConnectOptions {
    ConnectOptions::new(&proxy.uri())
        .client_id(unique_client_id(prefix))
        .clean_start(false)
        .keep_alive(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(30))
        .automatic_reconnect(ReconnectOptions {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(300),
            max_buffered: 1_000_000,
            ..Default::default()
        })
}

/// Takes messages until every one of `want` payloads arrived (or the deadline); counts
/// each payload.
fn collect(c: &Client, want: &[String], timeout: Duration) -> HashMap<String, usize> {
    let deadline = Instant::now() + timeout;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let missing = |seen: &HashMap<String, usize>| want.iter().any(|w| !seen.contains_key(w));
    while missing(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.messages().recv_timeout(left) {
            Ok(m) => {
                *seen
                    .entry(m.payload_str().unwrap().to_string())
                    .or_default() += 1
            }
            Err(mqttsync::Error::ConnectionLost(_)) => continue,
            Err(e) => {
                eprintln!("stopped collecting: {e}");
                break;
            }
        }
    }
    seen
}

#[test]
fn qos1_and_qos2_stream_survives_repeated_cuts_and_stalls_without_loss_or_qos2_duplicates() {
    let broker = Broker::builder().max_queued_messages(1_000_000).start();
    let pub_proxy = FaultProxy::start(broker.addr());
    let sub_proxy = FaultProxy::start(broker.addr());
    let sub = Client::connect(reconnecting(&sub_proxy, "fsub")).unwrap();
    sub.subscribe("faults/#", QoS::ExactlyOnce).unwrap();
    let publ = Arc::new(Client::connect(reconnecting(&pub_proxy, "fpub")).unwrap());

    let n = 3000usize;
    let payload = |i: usize| format!("{}-{i}", if i % 2 == 0 { "q1" } else { "q2" });

    // Publisher: a steady stream while the faults happen.
    let p = publ.clone();
    let publisher = std::thread::spawn(move || {
        let mut tokens: Vec<DeliveryToken> = Vec::with_capacity(n);
        for i in 0..n {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            tokens.push(
                p.publish(Message::new(format!("faults/{}", i % 2), payload(i)).qos(qos))
                    .expect("publish accepted"),
            );
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(30)); // ~10 s of traffic
            }
        }
        tokens
    });

    // Faults: cuts and stalls of either client's path, in every direction.
    let mut rng = Rng::from_env();
    let mut kinds: HashMap<&'static str, usize> = HashMap::new();
    let started = Instant::now();
    let want_faults = 24;
    while !publisher.is_finished() || kinds.values().sum::<usize>() < want_faults {
        std::thread::sleep(rng.millis(100, 500));
        let proxy = if rng.below(2) == 0 {
            &pub_proxy
        } else {
            &sub_proxy
        };
        let kind = match rng.below(5) {
            0 => {
                proxy.cut();
                "cut"
            }
            1 => {
                pub_proxy.cut();
                sub_proxy.cut();
                "cut both clients"
            }
            k => {
                let (dir, name) = match k {
                    2 => (Direction::Up, "stall up"),
                    3 => (Direction::Down, "stall down"),
                    _ => (Direction::Both, "stall both ways"),
                };
                proxy.stall(dir);
                // Short stalls (absorbed) and long ones (keepalive, reconnects that stall too).
                std::thread::sleep(rng.millis(100, 2000));
                proxy.resume();
                name
            }
        };
        *kinds.entry(kind).or_default() += 1;
        if started.elapsed() > Duration::from_secs(90) {
            break;
        }
    }
    pub_proxy.resume();
    sub_proxy.resume();
    let tokens = publisher.join().unwrap();

    // Every accepted QoS 1/2 publish completes (PUBACK / PUBCOMP) once the path is clean.
    for (i, t) in tokens.iter().enumerate() {
        t.wait_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("message {i} never acknowledged: {e}"));
    }
    let want: Vec<String> = (0..n).map(payload).collect();
    let seen = collect(&sub, &want, Duration::from_secs(60));
    let missing: Vec<&String> = want.iter().filter(|w| !seen.contains_key(*w)).collect();
    let qos1_dups: usize = seen
        .iter()
        .filter(|(k, _)| k.starts_with("q1"))
        .map(|(_, c)| c - 1)
        .sum();
    let qos2_dups: Vec<(&String, &usize)> = seen
        .iter()
        .filter(|(k, c)| k.starts_with("q2") && **c > 1)
        .collect();
    let faults: usize = kinds.values().sum();
    let ps = (pub_proxy.stats(), sub_proxy.stats());
    eprintln!(
        "faults injected: {faults} {kinds:?}; connections cut: {} (pub) {} (sub); \
         reconnects: {} (pub) {} (sub); messages {n}: missing {}, QoS 1 duplicates {qos1_dups}, \
         QoS 2 duplicates {}",
        ps.0.cut_connections,
        ps.1.cut_connections,
        publ.stats().reconnects,
        sub.stats().reconnects,
        missing.len(),
        qos2_dups.len()
    );
    assert!(
        missing.is_empty(),
        "{} messages lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(
        qos2_dups.is_empty(),
        "QoS 2 delivered more than once: {qos2_dups:?}"
    );
    assert!(faults >= want_faults, "only {faults} faults injected");
    assert!(
        publ.stats().reconnects + sub.stats().reconnects > 0,
        "no fault forced a reconnect"
    );
}

#[test]
fn a_slowed_link_still_delivers_everything() {
    let broker = Broker::builder().max_queued_messages(100_000).start();
    let pub_proxy = FaultProxy::start(broker.addr());
    let sub_proxy = FaultProxy::start(broker.addr());
    let opts = |p: &FaultProxy, prefix: &str| {
        ConnectOptions::new(&p.uri())
            .client_id(unique_client_id(prefix))
            .keep_alive(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(60))
    };
    let sub = Client::connect(opts(&sub_proxy, "ssub")).unwrap();
    sub.subscribe("slow/#", QoS::ExactlyOnce).unwrap();
    let publ = Client::connect(opts(&pub_proxy, "spub")).unwrap();
    // 5 ms per chunk and 40 kB/s each way: ~170 kB take several seconds, longer than the
    // keepalive interval, which must not fire on a slow but live link.
    pub_proxy.slow(Duration::from_millis(5), 40_000);
    sub_proxy.slow(Duration::from_millis(5), 40_000);
    let n = 300usize;
    let body = "x".repeat(500);
    let mut tokens = Vec::new();
    let mut want = Vec::new();
    for i in 0..n {
        let qos = QoS::from_u8((i % 3) as u8).unwrap();
        let p = format!("{i}-{body}");
        want.push(p.clone());
        tokens.push(publ.publish(Message::new("slow/t", p).qos(qos)).unwrap());
    }
    let t0 = Instant::now();
    for t in &tokens {
        t.wait_timeout(Duration::from_secs(60))
            .expect("acknowledged");
    }
    let seen = collect(&sub, &want, Duration::from_secs(60));
    eprintln!(
        "slow link: {n} messages ({} bytes up) in {:?}",
        pub_proxy.stats().bytes_up,
        t0.elapsed()
    );
    let missing = want.iter().filter(|w| !seen.contains_key(*w)).count();
    assert_eq!(missing, 0, "messages lost on a slow link");
    for (k, c) in &seen {
        let i: usize = k.split('-').next().unwrap().parse().unwrap();
        if i % 3 == 2 {
            assert_eq!(*c, 1, "QoS 2 message {i} delivered {c} times");
        }
    }
    assert!(
        publ.is_connected() && sub.is_connected(),
        "keepalive fired on a live slow link"
    );
    assert_eq!(publ.stats().reconnects + sub.stats().reconnects, 0);
}
