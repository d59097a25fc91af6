//! 10 000 idle clients in one process: they connect to one mosquitto, go dormant (no thread,
//! one descriptor each), stay connected for a minute with keepalive running (10 s: mosquitto drops a client silent for 15 s), then a
//! sample of them subscribe and receive a message each (idle clients wake for requests and
//! for their socket), and all close cleanly.
//!
//! The clients run in a child process (this test binary run again for `idle_child`), so
//! their descriptors, threads and memory are theirs alone. The child reports what it
//! measured; the parent checks it.
//!
//! `MQTTSYNC_IDLE_CLIENTS` (default 10 000) and `MQTTSYNC_IDLE_SECS` (default 60) change
//! the size and the length.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Broker;
use mqttsync::{Client, ConnectOptions, Message, QoS};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

#[test]
fn ten_thousand_idle_clients() {
    let n = env_or("MQTTSYNC_IDLE_CLIENTS", 10_000);
    let secs = env_or("MQTTSYNC_IDLE_SECS", 60);
    let broker = Broker::builder()
        .extra_config("max_keepalive 65535")
        .start();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "idle_child", "--ignored", "--nocapture"])
        .env("MQTTSYNC_IDLE_URI", broker.uri())
        .env("MQTTSYNC_IDLE_CLIENTS", n.to_string())
        .env("MQTTSYNC_IDLE_SECS", secs.to_string())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("IDLE "))
        .unwrap_or_else(|| panic!("no IDLE line:\n{stdout}\n{stderr}"));
    let got: HashMap<&str, f64> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    println!("{line}");
    // Every client stayed connected through the minute (keepalive kept them alive), the
    // sample received what was published to it, all closed without error.
    assert_eq!(got["connected"], n as f64, "{line}");
    assert_eq!(got["still_connected"], n as f64, "{line}");
    assert_eq!(got["received"], got["sample"], "{line}");
    assert_eq!(got["close_errors"], 0.0, "{line}");
    // One descriptor per idle client (its socket), a handful for the process.
    assert!(got["idle_fds"] <= n as f64 + 32.0, "{line}");
    // No thread per idle (dormant) client: a few for the process (watcher, pool, harness).
    assert!(got["idle_threads"] <= 32.0, "{line}");
    // Memory per idle client: the figure is in the README (about 3.3 KiB); this bound only
    // catches a regression by a wide margin.
    assert!(got["kib_per_client"] < 12.0, "{line}");
    // After close, the clients' threads are gone or waiting briefly in the pool.
    assert!(got["threads_after_close"] <= 16.0, "{line}");
}

/// The child side of [`ten_thousand_idle_clients`]; does nothing when run on its own.
#[test]
#[ignore = "run by ten_thousand_idle_clients in a child process"]
fn idle_child() {
    let Ok(uri) = std::env::var("MQTTSYNC_IDLE_URI") else {
        return;
    };
    let n = env_or("MQTTSYNC_IDLE_CLIENTS", 10_000) as usize;
    let secs = env_or("MQTTSYNC_IDLE_SECS", 60);
    let tag = std::process::id();
    let rss0 = proc_status("VmRSS:");
    let started = Instant::now();
    let mut clients = Vec::with_capacity(n);
    // Every client has a message callback (the case the memory figure is for); it reports
    // which client got a message.
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    for i in 0..n {
        let tx = tx.clone();
        let opts = ConnectOptions::new(&uri)
            .client_id(format!("idle-{tag:x}-{i}"))
            .keep_alive(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(20))
            .on_message(move |_m| {
                let _ = tx.send(i);
            });
        match Client::connect(opts) {
            Ok(c) => clients.push(c),
            Err(e) => panic!("client {i} of {n}: {}", e.report()),
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    // Wait for the descriptor count to settle (each client gives its poll back once quiet),
    // then measure.
    let settle = Instant::now() + Duration::from_secs(30);
    while open_fds() > n as u64 + 32 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    let rss1 = proc_status("VmRSS:");
    let idle_fds = open_fds();
    let idle_threads = proc_status("Threads:");
    // The minute: keepalive (10 s) goes on in the background, nothing else.
    std::thread::sleep(Duration::from_secs(secs));
    let still_connected = clients.iter().filter(|c| c.is_connected()).count();

    // A sample, spread over the range, subscribes (a request wakes an idle client) and
    // receives one message each (its socket wakes it).
    let step = (n / 50).max(1);
    let sample: Vec<usize> = (0..n).step_by(step).collect();
    for &i in &sample {
        clients[i]
            .subscribe(&format!("idle/{tag:x}/{i}"), QoS::AtLeastOnce)
            .unwrap_or_else(|e| panic!("subscribe {i}: {}", e.report()));
    }
    let publisher =
        Client::connect(ConnectOptions::new(&uri).client_id(format!("idle-{tag:x}-pub")))
            .expect("publisher");
    for &i in &sample {
        publisher
            .publish_wait(Message::new(format!("idle/{tag:x}/{i}"), "hello").qos(QoS::AtLeastOnce))
            .unwrap_or_else(|e| panic!("publish to {i}: {}", e.report()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = std::collections::BTreeSet::new();
    while got.len() < sample.len() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(i) => {
                assert!(
                    sample.contains(&i),
                    "client {i} got a message it did not ask for"
                );
                got.insert(i);
            }
            Err(_) => break,
        }
    }
    let received = got.len();
    let _ = publisher.close();

    let mut close_errors = 0;
    for c in clients {
        if c.close().is_err() {
            close_errors += 1;
        }
    }
    // Threads left: the pool's idle ones go within a second of their last job.
    let gone = Instant::now() + Duration::from_secs(10);
    while proc_status("Threads:") > 8 && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "IDLE clients={n} connected={n} connect_secs={connect_secs:.1} \
         kib_per_client={:.1} idle_fds={idle_fds} idle_threads={idle_threads} \
         still_connected={still_connected} sample={} received={received} \
         close_errors={close_errors} threads_after_close={}",
        (rss1.saturating_sub(rss0)) as f64 / n as f64,
        sample.len(),
        proc_status("Threads:"),
    );
}
