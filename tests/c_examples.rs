//! The C and C++ examples (examples/c/) as a user builds them: mqttsync installed into a
//! prefix with scripts/install-c.sh, examples/c configured with CMake's
//! `find_package(mqttsync)` twice (`-DMQTTSYNC_STATIC=ON` and `OFF`), then every program
//! run against a harness mosquitto:
//! - subscriber (waits on `receive`) gets the three messages (QoS 0, 1, 2) of publisher;
//! - cpp_client (C++11 RAII wrappers) round-trips a message at each QoS;
//! - callbacks_will answers a ping sent by a Rust client (`mqttsync::Client`) with a pong
//!   published from inside messageArrived; after a clean disconnect the broker keeps the
//!   retained "online" status, after an exit without DISCONNECT (`-k`) it publishes the
//!   retained "offline" will.
//!
//! The shared-library builds run through the RUNPATH that CMake writes into build-tree
//! executables (checked with readelf): no LD_LIBRARY_PATH needed.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use mqttsync::{Client, ConnectOptions, Message, QoS};

const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// The installed prefix and the two CMake build directories.
struct Examples {
    static_dir: PathBuf,
    shared_dir: PathBuf,
    prefix: PathBuf,
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

fn readelf_dynamic(exe: &Path) -> String {
    String::from_utf8_lossy(&run(Command::new("readelf").arg("-d").arg(exe)).stdout).into_owned()
}

fn cmake_build(prefix: &Path, build: &Path, static_link: bool) {
    run(Command::new("cmake")
        .arg("-S")
        .arg(root().join("examples/c"))
        .arg("-B")
        .arg(build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .arg(format!(
            "-DMQTTSYNC_STATIC={}",
            if static_link { "ON" } else { "OFF" }
        ))
        .arg("-DCMAKE_BUILD_TYPE=Debug"));
    run(Command::new("cmake")
        .arg("--build")
        .arg(build)
        .args(["--parallel", "2"]));
}

/// Installs mqttsync and builds the examples both ways, once per test binary.
fn examples() -> &'static Examples {
    static EX: OnceLock<Examples> = OnceLock::new();
    EX.get_or_init(|| {
        for tool in ["cmake", "c++", "readelf"] {
            assert!(have(tool), "{tool} is required to build the C/C++ examples");
        }
        let start = Instant::now();
        let tmp = run_subdir("examples");
        let prefix = tmp.join("prefix");
        install_c(&prefix);
        let static_dir = tmp.join("build-static");
        let shared_dir = tmp.join("build-shared");
        cmake_build(&prefix, &static_dir, true);
        cmake_build(&prefix, &shared_dir, false);
        eprintln!("install + two CMake builds: {:?}", start.elapsed());
        Examples {
            static_dir,
            shared_dir,
            prefix,
        }
    })
}

/// Path of example `name` built with `link`, after checking how it is linked.
fn example(name: &str, link: Link) -> PathBuf {
    let ex = examples();
    let exe = match link {
        Link::Static => ex.static_dir.join(name),
        Link::Shared => ex.shared_dir.join(name),
    };
    assert!(exe.is_file(), "{} was not built", exe.display());
    let dynamic = readelf_dynamic(&exe);
    match link {
        Link::Static => assert!(
            !dynamic.contains("libmqttsync"),
            "{name} (static) depends on a shared mqttsync:\n{dynamic}"
        ),
        Link::Shared => {
            assert!(
                dynamic.contains("Shared library: [libmqttsync.so.0]"),
                "{name} (shared) does not load libmqttsync.so.0:\n{dynamic}"
            );
            let lib = ex.prefix.join("lib").display().to_string();
            assert!(
                dynamic
                    .lines()
                    .any(|l| (l.contains("(RUNPATH)") || l.contains("(RPATH)"))
                        && l.contains(&lib)),
                "{name} (shared) has no RUNPATH to {lib}:\n{dynamic}"
            );
        }
    }
    exe
}

/// A program running in the background whose stdout is read line by line.
struct Prog {
    what: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Prog {
    fn spawn(exe: &Path, args: &[&str]) -> Prog {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Prog {
            what: format!("{} {}", exe.display(), args.join(" ")),
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Blocks until the program prints the line `want`.
    #[track_caller]
    fn wait_for_line(&mut self, want: &str) {
        let deadline = Instant::now() + RUN_DEADLINE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line == want;
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!(
            "{} never printed {want:?}; stdout so far:\n{}\nstderr:\n{}",
            self.what,
            self.seen.join("\n"),
            self.stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default()
        );
    }

    /// Waits for the program to exit (killed at the deadline); returns its status and the
    /// whole stdout.
    fn finish(mut self) -> (Option<ExitStatus>, String, String) {
        let deadline = Instant::now() + RUN_DEADLINE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        // The reader thread ends at EOF: collect the rest.
        self.seen.extend(self.lines.iter());
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let mut out = self.seen.join("\n");
        out.push('\n');
        (status, out, stderr)
    }
}

impl Drop for Prog {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// publisher -> subscriber
// ---------------------------------------------------------------------------------------

fn publisher_to_subscriber(link: Link) {
    let broker = Broker::start();
    let uri = broker.uri();
    let topic = format!("examples/{}", unique_client_id("pubsub"));
    let mut sub = Prog::spawn(&example("subscriber", link), &[&uri, &topic, "3", "30"]);
    sub.wait_for_line("subscribed");

    let publ = run_prog(
        &example("publisher", link),
        &[&uri, &topic, "3"],
        &[],
        RUN_DEADLINE,
    );
    assert!(
        publ.ok,
        "publisher ({link:?}) failed:\n{}\n{}",
        publ.stdout, publ.stderr
    );
    for (i, qos) in [0, 1, 2].iter().enumerate() {
        assert!(
            publ.stdout
                .contains(&format!("delivered \"message {i}\" at QoS {qos}\n")),
            "{}",
            publ.stdout
        );
    }

    let (status, out, err) = sub.finish();
    assert!(
        status.is_some_and(|s| s.success()),
        "subscriber ({link:?}) failed ({status:?}):\n{out}\n{err}\n{}",
        broker.log()
    );
    let expected: String = (0..3)
        .map(|i| format!("{topic} message {i} (QoS {i})\n"))
        .collect();
    assert_eq!(out, format!("subscribed\n{expected}"), "{link:?}");
}

#[test]
fn publisher_to_subscriber_static() {
    publisher_to_subscriber(Link::Static);
}

#[test]
fn publisher_to_subscriber_shared() {
    publisher_to_subscriber(Link::Shared);
}

// ---------------------------------------------------------------------------------------
// C++
// ---------------------------------------------------------------------------------------

fn cpp_round_trip(link: Link) {
    let broker = Broker::start();
    let topic = format!("examples/{}", unique_client_id("cpp"));
    let r = run_prog(
        &example("cpp_client", link),
        &[&broker.uri(), &topic],
        &[],
        RUN_DEADLINE,
    );
    assert!(
        r.ok,
        "cpp_client ({link:?}) failed:\n{}\n{}",
        r.stdout, r.stderr
    );
    let expected: String = (0..3)
        .map(|q| format!("{topic}: hello from C++ at QoS {q}\n"))
        .collect();
    assert_eq!(r.stdout, expected);
}

#[test]
fn cpp_client_round_trip_static() {
    cpp_round_trip(Link::Static);
}

#[test]
fn cpp_client_round_trip_shared() {
    cpp_round_trip(Link::Shared);
}

// ---------------------------------------------------------------------------------------
// callbacks + will
// ---------------------------------------------------------------------------------------

/// The next message on `topic` (others are skipped).
#[track_caller]
fn next_on(c: &Client, topic: &str) -> Message {
    let deadline = Instant::now() + DEADLINE;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match c.messages().recv_timeout(left) {
            Ok(m) if m.topic == topic => return m,
            Ok(_) => {}
            Err(e) => panic!("no message on {topic}: {e}"),
        }
    }
    panic!("no message on {topic} within {DEADLINE:?}");
}

/// What a fresh subscriber to `topic` gets as the retained message.
#[track_caller]
fn retained(uri: &str, topic: &str) -> Message {
    let c = Client::connect(ConnectOptions::new(uri).client_id(unique_client_id("ret")))
        .expect("connect");
    c.subscribe(topic, QoS::AtLeastOnce).expect("subscribe");
    let m = next_on(&c, topic);
    let _ = c.disconnect();
    m
}

/// callbacks_will answers a ping from a Rust client with a pong published in
/// messageArrived, then exits with (`kill == false`) or without a DISCONNECT.
fn callbacks_will(link: Link, kill: bool) {
    let broker = Broker::start();
    let uri = broker.uri();
    let base = format!("examples/{}", unique_client_id("cbw"));
    let (status_t, ping_t, pong_t) = (
        format!("{base}/status"),
        format!("{base}/ping"),
        format!("{base}/pong"),
    );
    let observer = Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("obs")))
        .expect("observer connects");
    observer
        .subscribe(&format!("{base}/+"), QoS::AtLeastOnce)
        .expect("observer subscribes");

    let mut args = vec![uri.as_str(), base.as_str(), "1"];
    if kill {
        args.push("-k");
    }
    let mut prog = Prog::spawn(&example("callbacks_will", link), &args);
    prog.wait_for_line("ready");
    let online = next_on(&observer, &status_t);
    assert_eq!(online.payload_str(), Some("online"));

    observer
        .publish_wait(Message::new(&ping_t, "ping-42").qos(QoS::AtLeastOnce))
        .expect("ping");
    let pong = next_on(&observer, &pong_t);
    assert_eq!(pong.payload_str(), Some("ping-42"));
    assert_eq!(pong.qos, QoS::AtLeastOnce);

    let (status, out, err) = prog.finish();
    assert!(
        status.is_some_and(|s| s.success()),
        "callbacks_will ({link:?}, kill {kill}) failed ({status:?}):\n{out}\n{err}"
    );
    assert!(out.contains("ping ping-42 -> pong rc=0\n"), "{out}");

    if kill {
        assert!(out.contains("exiting without disconnect\n"), "{out}");
        // MQTT-3.1.2-8: the connection closed without DISCONNECT, so the broker publishes
        // the will; MQTT-3.1.2-17: with will retain 1 it is also kept as retained.
        let will = next_on(&observer, &status_t);
        assert_eq!(will.payload_str(), Some("offline"));
        assert_eq!(will.qos, QoS::AtLeastOnce);
        let kept = retained(&uri, &status_t);
        assert_eq!(kept.payload_str(), Some("offline"));
        assert!(kept.retain, "MQTT-3.1.2-17: the will is retained");
    } else {
        // MQTT-3.1.2-10: the will is discarded on DISCONNECT. Once the broker has logged the
        // clean disconnect, the retained status is still "online".
        assert!(
            broker.wait_for_log("Client mqttsync-c-callbacks disconnected.", DEADLINE),
            "{}",
            broker.log()
        );
        let kept = retained(&uri, &status_t);
        assert_eq!(kept.payload_str(), Some("online"));
        assert!(kept.retain);
    }
    let _ = observer.disconnect();
}

#[test]
fn callbacks_pong_from_message_arrived_and_clean_disconnect_static() {
    callbacks_will(Link::Static, false);
}

#[test]
fn callbacks_pong_from_message_arrived_and_clean_disconnect_shared() {
    callbacks_will(Link::Shared, false);
}

#[test]
fn exit_without_disconnect_publishes_retained_will_static() {
    callbacks_will(Link::Static, true);
}

#[test]
fn exit_without_disconnect_publishes_retained_will_shared() {
    callbacks_will(Link::Shared, true);
}
