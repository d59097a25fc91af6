//! Soak: a bounded run of steady QoS 0/1/2 traffic with periodic broker restarts
//! (persistence on, automatic reconnect, persistent sessions). Reports messages sent,
//! received, lost (0 for QoS 1/2) and duplicated (0 for QoS 2), and the process RSS; the RSS
//! must not keep growing. Default 60 s; `MQTTSYNC_SOAK_SECS=600 cargo test --release --test
//! soak -- --nocapture` for a longer run.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique_client_id, wait_until, Broker};
use mqttsync::{Client, ConnectOptions, Message, QoS, ReconnectOptions};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn options(uri: &str, prefix: &str) -> ConnectOptions {
    ConnectOptions::new(uri)
        .client_id(unique_client_id(prefix))
        .clean_start(false)
        .keep_alive(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(30))
        .automatic_reconnect(ReconnectOptions {
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            max_buffered: 1_000_000,
            ..Default::default()
        })
}

#[test]
fn soak_steady_traffic_with_broker_restarts() {
    let secs: u64 = std::env::var("MQTTSYNC_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let run = Duration::from_secs(secs);
    let mut broker = Broker::builder()
        .persistence(true)
        .max_queued_messages(10_000_000)
        .start();
    let uri = broker.uri();
    let sub = Client::connect(options(&uri, "soaks")).unwrap();
    sub.subscribe("soak/#", QoS::ExactlyOnce).unwrap();
    let publ = Client::connect(options(&uri, "soakp")).unwrap();

    // counts[qos][i]: how often message i of that QoS arrived.
    let counts: Arc<Mutex<[Vec<u8>; 3]>> =
        Arc::new(Mutex::new([Vec::new(), Vec::new(), Vec::new()]));
    let sent = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut rss = Vec::new();
    let mut restarts = 0;
    std::thread::scope(|s| {
        let recv_counts = counts.clone();
        let messages = sub.messages();
        let stop_rx = &stop;
        let receiver = s.spawn(move || loop {
            match messages.recv_timeout(Duration::from_millis(500)) {
                Ok(m) => {
                    let p = m.payload_str().unwrap_or("");
                    let mut parts = p.split('-');
                    let q: usize = parts.next().and_then(|v| v.parse().ok()).expect("qos");
                    let i: usize = parts.next().and_then(|v| v.parse().ok()).expect("index");
                    let mut c = recv_counts.lock().unwrap();
                    if c[q].len() <= i {
                        c[q].resize(i + 1, 0);
                    }
                    c[q][i] = c[q][i].saturating_add(1);
                }
                Err(mqttsync::Error::ConnectionLost(_)) => {}
                Err(_) if stop_rx.load(Ordering::SeqCst) => break,
                Err(_) => {}
            }
        });
        let (publ, sent, stop_pub) = (&publ, &sent, &stop);
        let publisher = s.spawn(move || {
            let mut i = [0u64; 3];
            let pad = "x".repeat(90);
            while start.elapsed() < run && !stop_pub.load(Ordering::SeqCst) {
                // ~1500 messages a second, 100-byte payloads.
                for k in 0..15 {
                    let q = k % 3;
                    let m = Message::new(format!("soak/{q}"), format!("{q}-{}-{pad}", i[q]))
                        .qos(QoS::from_u8(q as u8).unwrap());
                    if publ.publish(m).is_ok() {
                        sent[q].fetch_add(1, Ordering::Relaxed);
                        i[q] += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        // The restarter (this thread): a broker restart every ~run/6, RSS samples.
        let every = (run / 6).max(Duration::from_secs(3));
        let mut next = start + every;
        while start.elapsed() < run {
            std::thread::sleep(Duration::from_millis(200));
            if rss.is_empty() && start.elapsed() > run / 6 {
                rss.push((start.elapsed(), rss_kib())); // after warm-up
            }
            if Instant::now() >= next && start.elapsed() + Duration::from_secs(2) < run {
                broker.restart();
                restarts += 1;
                next = Instant::now() + every;
            }
        }
        publisher.join().unwrap();
        // Everything the publisher accepted at QoS 1/2 gets acknowledged.
        assert!(
            wait_until(Duration::from_secs(120), || publ
                .pending_deliveries()
                .map(|p| p.is_empty())
                .unwrap_or(false)),
            "publisher still has {:?} pending",
            publ.pending_deliveries().map(|p| p.len())
        );
        // And the subscriber gets every QoS 1/2 message.
        let want = [1usize, 2].map(|q| sent[q].load(Ordering::Relaxed) as usize);
        wait_until(Duration::from_secs(120), || {
            let c = counts.lock().unwrap();
            [1usize, 2]
                .iter()
                .zip(want)
                .all(|(&q, w)| c[q].len() >= w && c[q][..w].iter().all(|&n| n > 0))
        });
        stop.store(true, Ordering::SeqCst);
        receiver.join().unwrap();
    });
    rss.push((start.elapsed(), rss_kib()));

    let c = counts.lock().unwrap();
    let mut line = format!("soak {secs} s, {restarts} broker restarts:");
    let mut lost = [0usize; 3];
    let mut dups = [0usize; 3];
    for q in 0..3 {
        let n = sent[q].load(Ordering::Relaxed) as usize;
        let got: &[u8] = &c[q];
        lost[q] = (0..n)
            .filter(|&i| got.get(i).copied().unwrap_or(0) == 0)
            .count();
        dups[q] = got.iter().map(|&k| usize::from(k.saturating_sub(1))).sum();
        let received: usize = got.iter().map(|&k| usize::from(k)).sum();
        line += &format!(
            " QoS {q}: sent {n} received {received} lost {} duplicates {};",
            lost[q], dups[q]
        );
    }
    let (rss0, rss1) = (rss[0].1, rss[rss.len() - 1].1);
    line += &format!(" RSS {rss0} KiB (at {:?}) -> {rss1} KiB", rss[0].0);
    println!("{line}");
    assert!(restarts >= 2, "too few restarts: {restarts}");
    assert_eq!(lost[1], 0, "QoS 1 lost");
    assert_eq!(lost[2], 0, "QoS 2 lost");
    assert_eq!(dups[2], 0, "QoS 2 duplicated");
    // Memory: bounded growth after warm-up (counting vectors and allocator noise only).
    assert!(
        rss1 < rss0 + 32 * 1024,
        "RSS grew from {rss0} to {rss1} KiB"
    );
    drop(c);
    publ.close().unwrap();
    sub.close().unwrap();
}
