//! Nothing lost on the receiving side: a slow subscriber with file persistence and a
//! persistent session (`clean_start(false)` / `cleansession = 0`) is SIGKILLed at random
//! points of a stream of QoS 1 and QoS 2 messages, at least 20 times, and restarted; at the
//! end every message was processed (written to the output file), and QoS 2 duplicates are
//! at most one per kill (the message being processed when the kill came: processed, not
//! yet acknowledged, so the broker sends it again).
//!
//! The subscriber processes a message by appending one line to a file with a single
//! `write(2)` and then working on it for 2 ms, so most kills land in the middle of
//! processing. The client acknowledges (PUBACK / PUBREC) only once the application has done
//! with a message: the `on_message` callback returned, the receiving thread came back to
//! `recv`, `Message::ack` was called (manual acknowledgement), `messageArrived` returned 1,
//! or the thread came back to `MQTTClient_receive`.
//!
//! Subscribers: the Rust API (this test binary run again as `child_subscriber`, in `recv`,
//! `callback` and `manual` modes), the C API (`tests/c/sub_kill.c`, `callback` and
//! `receive` modes) and MQTTAsync (`tests/c/async_sub_kill.c`, `messageArrived`). Figures: `cargo test --test receive_kill -- --nocapture`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{unique_client_id, Broker};
use mqttsync::persist::FileStore;
use mqttsync::{Client, ConnectOptions, Message, QoS};

/// Messages per QoS.
const PER_QOS: u64 = 200;
/// Kills per run.
const KILLS: usize = 20;

// ---- the Rust subscriber ---------------------------------------------------------------

fn process(out: &mut std::fs::File, m: &Message) {
    let line = format!("{} {}\n", m.qos as u8, m.payload_str().unwrap_or("?"));
    // One write: after a kill the line is there whole or not at all.
    out.write_all(line.as_bytes())
        .expect("write the output line");
    std::thread::sleep(Duration::from_millis(2));
}

/// The subscriber, when run as a child (`MQTTSYNC_RECV_CHILD=1`).
#[test]
#[ignore = "run by the receive kill tests as a child process"]
fn child_subscriber() {
    if std::env::var_os("MQTTSYNC_RECV_CHILD").is_none() {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let uri = env("MQTTSYNC_URI");
    let id = env("MQTTSYNC_ID");
    let mode = env("MQTTSYNC_MODE");
    let out_path = PathBuf::from(env("MQTTSYNC_OUT"));
    let store = FileStore::new(env("MQTTSYNC_STORE"));
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .expect("open the output file")
    };
    let mut opts = ConnectOptions::new(&uri)
        .client_id(&id)
        .clean_start(false)
        .keep_alive(Duration::from_secs(20))
        .persistence(Box::new(store));
    match mode.as_str() {
        "callback" => {
            let mut out = open();
            opts = opts.on_message(move |m| process(&mut out, &m));
        }
        "manual" => opts = opts.manual_acks(true),
        _ => {}
    }
    let client = Client::connect(opts).expect("child connects");
    client
        .subscribe("rk/1", QoS::AtLeastOnce)
        .expect("subscribe");
    client
        .subscribe("rk/2", QoS::ExactlyOnce)
        .expect("subscribe");
    std::fs::File::create(out_path.with_extension("ready")).expect("ready file");
    let mut out = open();
    loop {
        match mode.as_str() {
            "callback" => std::thread::sleep(Duration::from_secs(1)),
            "manual" => {
                let m = client.messages().recv().expect("recv");
                process(&mut out, &m);
                m.ack().expect("ack");
            }
            _ => {
                let m = client.messages().recv().expect("recv");
                process(&mut out, &m);
            }
        }
    }
}

fn spawn_rust(uri: &str, id: &str, mode: &str, out: &Path, store: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_subscriber",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MQTTSYNC_RECV_CHILD", "1")
        .env("MQTTSYNC_URI", uri)
        .env("MQTTSYNC_ID", id)
        .env("MQTTSYNC_MODE", mode)
        .env("MQTTSYNC_OUT", out)
        .env("MQTTSYNC_STORE", store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child subscriber")
}

// ---- the C subscriber --------------------------------------------------------------------

/// `tests/c/<name>.c` (built once) run with `args`; stderr kept for a failure report.
fn spawn_c_program(name: &str, args: &[&std::ffi::OsStr]) -> Child {
    Command::new(common::build_ours(name, false))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

fn spawn_c(uri: &str, id: &str, mode: &str, out: &Path, store: &Path) -> Child {
    let args = [
        uri.as_ref(),
        id.as_ref(),
        mode.as_ref(),
        out.as_os_str(),
        store.as_os_str(),
    ];
    spawn_c_program("sub_kill", &args)
}

fn spawn_async(uri: &str, id: &str, out: &Path, store: &Path) -> Child {
    let args = [
        uri.as_ref(),
        id.as_ref(),
        out.as_os_str(),
        store.as_os_str(),
    ];
    spawn_c_program("async_sub_kill", &args)
}

// ---- the run -----------------------------------------------------------------------------

/// (qos, seq) -> how often processed.
fn processed(out: &Path) -> HashMap<(u8, u64), u32> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let mut seen = HashMap::new();
    for line in text.lines() {
        let mut it = line.split(' ');
        let (Some(q), Some(s)) = (it.next(), it.next()) else {
            panic!("bad output line {line:?}");
        };
        *seen
            .entry((q.parse().unwrap(), s.parse().unwrap()))
            .or_insert(0) += 1;
    }
    seen
}

fn lines(out: &Path) -> usize {
    std::fs::read(out)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

fn kill(mut child: Child, what: &str) {
    if let Some(status) = child.try_wait().unwrap() {
        let out = child.wait_with_output().unwrap();
        panic!(
            "{what} exited by itself ({status}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

struct Figures {
    kills: usize,
    qos1_dups: u32,
    qos2_dups: u32,
}

fn run(what: &str, spawn: impl Fn(&str, &str, &Path, &Path) -> Child) -> Figures {
    let broker = Broker::builder().max_queued_messages(1_000_000).start();
    let uri = broker.uri();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let id = unique_client_id("rkill");

    // First run: the session and its subscriptions exist at the broker from here on.
    let child = spawn(&uri, &id, &out, &store);
    assert!(
        common::wait_until(Duration::from_secs(60), || out
            .with_extension("ready")
            .exists()),
        "{what}: the subscriber did not come up"
    );

    // The stream, interleaved QoS 1 and QoS 2, published while the subscriber is killed
    // and restarted.
    let publisher = {
        let uri = uri.clone();
        std::thread::spawn(move || {
            // The default window (20) stays within mosquitto's incoming limit: beyond it,
            // mosquitto drops a v3.1.1 publisher's QoS 1 messages and still acknowledges
            // them (reason 0x97 in its log only).
            let p = Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("rkpub")))
                .expect("publisher connects");
            let mut tokens = Vec::new();
            for seq in 0..PER_QOS {
                for (topic, qos) in [("rk/1", QoS::AtLeastOnce), ("rk/2", QoS::ExactlyOnce)] {
                    tokens.push(
                        p.publish(Message::new(topic, seq.to_string()).qos(qos))
                            .expect("publish"),
                    );
                }
            }
            for t in tokens {
                t.wait_timeout(Duration::from_secs(60))
                    .expect("publish acknowledged");
            }
            p.close().expect("publisher closes");
        })
    };

    let total = (2 * PER_QOS) as usize;
    let step = total / (KILLS + 2);
    let mut child = Some(child);
    for k in 0..KILLS {
        let c = match child.take() {
            Some(c) => c,
            None => spawn(&uri, &id, &out, &store),
        };
        let target = lines(&out) + step;
        let mut c = c;
        let reached = common::wait_until(Duration::from_secs(60), || {
            lines(&out) >= target || c.try_wait().ok().flatten().is_some()
        });
        assert!(reached, "{what}: no progress before kill {k}");
        kill(c, what);
    }
    // The last run takes the rest.
    let mut c = spawn(&uri, &id, &out, &store);
    let all = common::wait_until(Duration::from_secs(120), || {
        processed(&out).len() == total || c.try_wait().ok().flatten().is_some()
    });
    kill(c, what);
    publisher.join().expect("publisher");

    let seen = processed(&out);
    let mut missing = Vec::new();
    for seq in 0..PER_QOS {
        for q in [1u8, 2] {
            if !seen.contains_key(&(q, seq)) {
                missing.push((q, seq));
            }
        }
    }
    assert!(
        all && missing.is_empty(),
        "{what}: {} messages lost after {KILLS} kills: {missing:?}",
        missing.len()
    );
    let dups = |q: u8| -> u32 {
        seen.iter()
            .filter(|((qq, _), _)| *qq == q)
            .map(|(_, n)| n - 1)
            .sum()
    };
    let f = Figures {
        kills: KILLS,
        qos1_dups: dups(1),
        qos2_dups: dups(2),
    };
    eprintln!(
        "{what}: {} kills, {PER_QOS} QoS 1 + {PER_QOS} QoS 2 messages: 0 lost; duplicates QoS 1 {}, QoS 2 {}",
        f.kills, f.qos1_dups, f.qos2_dups
    );
    assert!(
        f.qos2_dups as usize <= f.kills,
        "{what}: {} QoS 2 duplicates after {} kills (at most the message in processing per kill)",
        f.qos2_dups,
        f.kills
    );
    f
}

#[test]
fn rust_recv_subscriber_killed_loses_nothing() {
    run("Rust recv", |u, i, o, s| spawn_rust(u, i, "recv", o, s));
}

#[test]
fn rust_callback_subscriber_killed_loses_nothing() {
    run("Rust on_message", |u, i, o, s| {
        spawn_rust(u, i, "callback", o, s)
    });
}

#[test]
fn rust_manual_ack_subscriber_killed_loses_nothing() {
    run("Rust manual_acks", |u, i, o, s| {
        spawn_rust(u, i, "manual", o, s)
    });
}

#[test]
fn c_callback_subscriber_killed_loses_nothing() {
    run("C messageArrived", |u, i, o, s| {
        spawn_c(u, i, "callback", o, s)
    });
}

#[test]
fn c_receive_subscriber_killed_loses_nothing() {
    run("C MQTTClient_receive", |u, i, o, s| {
        spawn_c(u, i, "receive", o, s)
    });
}

#[test]
fn c_async_callback_subscriber_killed_loses_nothing() {
    run("C MQTTAsync messageArrived", spawn_async);
}

#[test]
fn kill_figures_are_consistent() {
    // The harness itself: a file with a duplicate and a missing line is read as such.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::write(&out, "1 0\n2 0\n2 0\n1 1\n").unwrap();
    let seen = processed(&out);
    assert_eq!(seen.get(&(2, 0)), Some(&2));
    assert_eq!(seen.get(&(1, 1)), Some(&1));
    assert_eq!(seen.get(&(2, 1)), None);
    assert_eq!(lines(&out), 4);
}
