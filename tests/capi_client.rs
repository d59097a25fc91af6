//! The client functions of the C API, driven by C programs in tests/c/ against harness
//! mosquitto brokers:
//! - error paths: the same program built against Eclipse Paho C and against mqttsync prints
//!   the same return codes; mqttsync's extra checks (stale handles, QoS, wildcards) pass;
//! - publish/subscribe at QoS 0-2 through `receive` and through callbacks, MQTT 5;
//! - persistence across a process restart (file and user persistence);
//! - drop-in: a program built against Paho's header and library runs unchanged on mqttsync;
//! - everything also under AddressSanitizer + LeakSanitizer; the threaded publish/subscribe
//!   program also under valgrind's memcheck, linked with the shared library.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MARK: &str = "--- mqttsync only\n";
const ASAN_OPTIONS: &str = "detect_leaks=1:halt_on_error=1:abort_on_error=0";

fn paho_available() -> bool {
    Path::new("/usr/include/MQTTClient.h").exists()
        && [
            "/usr/lib/x86_64-linux-gnu/libpaho-mqtt3c.so",
            "/usr/lib/libpaho-mqtt3c.so",
        ]
        .iter()
        .any(|p| Path::new(p).exists())
}

/// A TCP server that accepts connections and never answers (no CONNACK).
fn silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        l.set_nonblocking(true).expect("nonblocking");
        let start = Instant::now();
        // Lives long enough for every run of the program that uses it.
        while start.elapsed() < Duration::from_secs(120) {
            match l.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, h)
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------------------------------
// error paths
// ---------------------------------------------------------------------------------------

fn errors_args(broker: &Broker, pw: &Broker, silent: u16, dir: &Path) -> Vec<String> {
    vec![
        broker.uri(),
        format!("tcp://127.0.0.1:{}", closed_port()),
        format!("tcp://127.0.0.1:{silent}"),
        pw.uri(),
        dir.display().to_string(),
    ]
}

#[test]
fn error_codes_match_paho_and_defects_are_fixed() {
    assert!(
        paho_available(),
        "install libpaho-mqtt-dev for this comparison"
    );
    let broker = Broker::start();
    let pw = Broker::builder().password("user", "secret").start();
    let (silent, _t) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let args = errors_args(&broker, &pw, silent, dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let paho = run_prog(
        &build_paho("client_errors", "paho-mqtt3c"),
        &args,
        &[],
        Duration::from_secs(60),
    );
    assert!(
        paho.ok,
        "Paho run failed:\n{}\n{}",
        paho.stdout, paho.stderr
    );
    let ours = run_prog(
        &build_ours("client_errors", false),
        &args,
        &[],
        Duration::from_secs(60),
    );
    let (common_ours, extra) = ours
        .stdout
        .split_once(MARK)
        .unwrap_or_else(|| panic!("mqttsync run incomplete:\n{}\n{}", ours.stdout, ours.stderr));
    let common_paho = paho
        .stdout
        .strip_suffix("failures: 0\n")
        .expect("paho run incomplete");
    let diff: Vec<String> = common_paho
        .lines()
        .zip(common_ours.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("paho: {a:40} ours: {b}"))
        .collect();
    assert!(
        diff.is_empty() && common_paho.lines().count() == common_ours.lines().count(),
        "return codes differ from Paho's:\n{}\n--- paho\n{common_paho}\n--- ours\n{common_ours}",
        diff.join("\n")
    );
    // returned.serverURI is the URI that connected without its scheme, as in Paho (which
    // the comparison above already shows; spelled out here).
    let port = broker.port();
    for want in [
        format!("returned_uri_create {}:{port}", broker.host()),
        format!("returned_uri_0 rc 0 {}:{port}", broker.host()),
        format!("returned_uri_1 rc 0 localhost:{port}"),
        format!("returned_uri_2 rc 0 {}:{port}", broker.host()),
    ] {
        assert!(
            common_ours.lines().any(|l| l == want),
            "missing {want:?}:\n{common_ours}"
        );
    }
    assert!(
        extra.ends_with("failures: 0\n"),
        "mqttsync checks failed:\n{extra}\n{}",
        ours.stderr
    );
}

#[test]
fn error_paths_are_clean_under_address_sanitizer() {
    let broker = Broker::start();
    let pw = Broker::builder().password("user", "secret").start();
    let (silent, _t) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let args = errors_args(&broker, &pw, silent, dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_prog(
        &build_ours("client_errors", true),
        &args,
        &[("ASAN_OPTIONS", ASAN_OPTIONS)],
        Duration::from_secs(90),
    );
    r.assert_clean("client_errors under ASan");
}

// ---------------------------------------------------------------------------------------
// publish / subscribe, callbacks, MQTT 5, will; the drop-in replacement
// ---------------------------------------------------------------------------------------

/// A scripted MQTT 5 server: answers CONNECT with CONNACK (success), then answers the next
/// packet with DISCONNECT reason 0x8E (session taken over) and closes.
fn disconnecting_server() -> u16 {
    use std::io::Write;
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                if !matches!(s.read(&mut buf), Ok(n) if n > 0) {
                    return;
                }
                let _ = s.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]);
                if matches!(s.read(&mut buf), Ok(n) if n > 0) {
                    let _ = s.write_all(&[0xE0, 0x02, 0x8E, 0x00]);
                }
            });
        }
    });
    port
}

fn pubsub_run(exe: &Path, envs: &[(&str, &str)]) -> Run {
    pubsub_run_under(exe, &[], envs)
}

/// Runs `cmd pre... BROKER_URI DISCONNECTING_URI` (`cmd` is the program, or a tool such as
/// valgrind with the program among `pre`).
fn pubsub_run_under(cmd: &Path, pre: &[&str], envs: &[(&str, &str)]) -> Run {
    let broker = Broker::start();
    let uri = broker.uri();
    let disc = format!("tcp://127.0.0.1:{}", disconnecting_server());
    let mut args = pre.to_vec();
    args.extend([uri.as_str(), disc.as_str()]);
    let r = run_prog(cmd, &args, envs, Duration::from_secs(180));
    if !r.stdout.ends_with("failures: 0\n") {
        eprintln!("{}", broker.log());
    }
    r
}

#[test]
fn pubsub_qos_callbacks_v5_and_will() {
    let r = pubsub_run(&build_ours("client_pubsub", false), &[]);
    r.assert_clean("client_pubsub (mqttsync)");
    assert!(r.stdout.contains("product: mqttsync"), "{}", r.stdout);
    for part in [
        "receive: done",
        "callbacks: done",
        "v5: done",
        "reconnect: done",
        "will: done",
    ] {
        assert!(r.stdout.contains(part), "{part} missing:\n{}", r.stdout);
    }
}

#[test]
fn pubsub_is_clean_under_address_sanitizer() {
    let r = pubsub_run(
        &build_ours("client_pubsub", true),
        &[("ASAN_OPTIONS", ASAN_OPTIONS)],
    );
    r.assert_clean("client_pubsub under ASan");
}

/// The threaded program (client and dispatch threads, callbacks calling the API, reconnect
/// and destroy from callbacks) linked with `libmqttsync.so`, under valgrind's memcheck: no
/// invalid access, no use of uninitialised memory, no definite leak ("possibly lost" is not
/// an error: std keeps the main thread's `Thread` handle until exit). (ThreadSanitizer is
/// not used: the Rust side, std included, would have to be built instrumented with a
/// nightly `-Zbuild-std`, or it reports false races on every lock-free handover.)
#[test]
fn pubsub_is_clean_under_valgrind() {
    assert!(
        have("valgrind"),
        "valgrind is required for this test (apt-get install valgrind)"
    );
    let exe = build_ours_shared("client_pubsub");
    let exe_s = exe.display().to_string();
    let start = Instant::now();
    let r = pubsub_run_under(
        Path::new("valgrind"),
        &[
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--num-callers=30",
            &exe_s,
        ],
        &[],
    );
    eprintln!("client_pubsub under valgrind: {:?}", start.elapsed());
    r.assert_clean("client_pubsub under valgrind");
    assert!(
        r.stderr.contains("ERROR SUMMARY: 0 errors"),
        "valgrind summary missing:\n{}",
        r.stderr
    );
}

/// The program built against Paho's header and `-lpaho-mqtt3c` passes against Paho, and
/// passes again unchanged when `libpaho-mqtt3c.so.1` resolves to `libmqttsync.so`.
#[test]
fn drop_in_replacement_for_libpaho_mqtt3c() {
    assert!(
        paho_available(),
        "install libpaho-mqtt-dev for the drop-in test"
    );
    let exe = build_paho("client_pubsub", "paho-mqtt3c");
    let paho = pubsub_run(&exe, &[]);
    paho.assert_clean("client_pubsub against Paho");
    assert!(
        !paho.stdout.contains("product: mqttsync"),
        "{}",
        paho.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let lib = &release_libs().shared_lib;
    std::os::unix::fs::symlink(lib, dir.path().join("libpaho-mqtt3c.so.1")).unwrap();
    let ld = dir.path().display().to_string();
    let ours = pubsub_run(&exe, &[("LD_LIBRARY_PATH", &ld)]);
    ours.assert_clean("client_pubsub (Paho build) on libmqttsync.so");
    assert!(ours.stdout.contains("product: mqttsync"), "{}", ours.stdout);
    // And with the parts Paho cannot run (its output then says "reconnect: done").
    let extras = pubsub_run(&exe, &[("LD_LIBRARY_PATH", &ld), ("MQTTSYNC_EXTRAS", "1")]);
    extras.assert_clean("client_pubsub (Paho build, extras) on libmqttsync.so");
    assert!(
        extras.stdout.contains("reconnect: done"),
        "{}",
        extras.stdout
    );
    let strip = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.starts_with("product:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&paho.stdout), strip(&ours.stdout));
}

// ---------------------------------------------------------------------------------------
// persistence across a process restart
// ---------------------------------------------------------------------------------------

/// With persistence, a QoS 1 `MQTTClient_publish` the client cannot take on record within
/// the command timeout (a store taking 6 s per record, held by another thread's publish)
/// returns `MQTTCLIENT_MAX_MESSAGES_INFLIGHT` and the message is never sent: published
/// again, it arrives once (before 2026-12-07, night, the call returned success with the
/// message in memory only: a kill lost it, a retry sent it twice).
#[test]
fn client_publish_not_taken_on_record_in_time_is_withdrawn() {
    let exe = build_ours("client_persist", false);
    let broker = Broker::start();
    let uri = broker.uri();
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let sub = subscribed(&uri, "wdsub", "T/persist", mqttsync::QoS::AtLeastOnce);
    let r = run_prog(
        &exe,
        &["withdraw", "user", &uri, &dir_s, &unique_client_id("wd")],
        &[],
        Duration::from_secs(60),
    );
    r.assert_clean("client_persist withdraw");
    assert!(
        r.stdout.contains("withdrawn: -4\n") && r.stdout.contains("again: 0\n"),
        "{}",
        r.stdout
    );
    let mut got = Vec::new();
    while let Ok(m) = sub.messages().recv_timeout(Duration::from_secs(2)) {
        got.push(m.payload_str().unwrap().to_owned());
    }
    got.sort();
    assert_eq!(got, ["p1", "p2"], "each once");
}

/// Program A publishes three QoS 1/2 messages to a frozen broker and exits abruptly; the
/// broker is killed and restarted empty; program B, same client id, connects with
/// cleansession 0 and the stored messages are resent and reach a subscriber.
fn persistence_across_restart(kind: &str, asan: bool) {
    use std::io::{BufRead, BufReader};
    let exe = build_ours("client_persist", asan);
    let envs: &[(&str, &str)] = if asan {
        &[("ASAN_OPTIONS", ASAN_OPTIONS)]
    } else {
        &[]
    };
    let mut broker = Broker::start();
    let uri = broker.uri();
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let cid = unique_client_id("persist");

    let mut a = Command::new(&exe)
        .args(["publish", kind, &uri, &dir_s, &cid])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn A");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = a.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(first.as_deref(), Ok("ready"), "program A did not connect");
    broker.pause();
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let status = a.wait().expect("wait A");
    let mut err = String::new();
    if let Some(mut e) = a.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let text = lines.join("\n");
    assert!(
        status.success() && text.contains("published 3") && text.ends_with("failures: 0"),
        "program A failed ({status}):\n{text}\n{err}"
    );
    let store_dir = if kind == "file" {
        dir.path()
            .join(format!("{cid}-127.0.0.1-{}", broker.port()))
    } else {
        dir.path().join("user").join(&cid)
    };
    let stored: Vec<String> = std::fs::read_dir(&store_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", store_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let sent: Vec<&String> = stored.iter().filter(|n| n.starts_with("s-")).collect();
    assert_eq!(sent.len(), 3, "stored records: {stored:?}");
    if kind == "file" {
        assert!(sent.iter().all(|n| n.ends_with(".msg")), "{stored:?}");
    }

    // The frozen broker dies with the unacknowledged publishes; a fresh one starts.
    broker.kill();
    broker.start_again();
    let sub = subscribed(&uri, "psub", "T/persist", mqttsync::QoS::ExactlyOnce);

    let b = run_prog(
        &exe,
        &["resend", kind, &uri, &dir_s, &cid],
        envs,
        Duration::from_secs(60),
    );
    b.assert_clean(&format!("program B ({kind})"));
    let mut got = std::collections::BTreeSet::new();
    let msgs = sub.messages();
    while got.len() < 3 {
        match msgs.recv_timeout(Duration::from_secs(10)) {
            Ok(m) => {
                got.insert(String::from_utf8_lossy(&m.payload).into_owned());
            }
            Err(e) => panic!("resent messages missing ({got:?}): {e}"),
        }
    }
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        ["p1", "p2", "p3"],
        "resent payloads"
    );
    let left: Vec<_> = std::fs::read_dir(&store_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "store not emptied: {left:?}");
}

#[test]
fn file_persistence_survives_a_process_restart() {
    persistence_across_restart("file", false);
}

#[test]
fn user_persistence_survives_a_process_restart() {
    persistence_across_restart("user", false);
}

#[test]
fn persistence_is_clean_under_address_sanitizer() {
    persistence_across_restart("file", true);
    persistence_across_restart("user", true);
}

// ---------------------------------------------------------------------------------------
// nothing lost on the receiving side
// ---------------------------------------------------------------------------------------

/// `tests/c/receive_guarantee.c SCENARIO` on mqttsync (under AddressSanitizer) and on Paho C:
/// both receive every message. "unread": a subscriber that never called receive is
/// destroyed and created again; "callbacks": the same subscriber gets a messageArrived
/// callback before it connects again.
fn receive_guarantee(scenario: &str) {
    let mut b = Broker::builder().max_queued_messages(100_000);
    if scenario == "freed" {
        b = b.extra_config("max_inflight_messages 1");
    }
    let broker = b.start();
    let uri = broker.uri();
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let ours = run_prog(
        &build_ours("receive_guarantee", true),
        &[scenario, &uri, &dir_s],
        &[("ASAN_OPTIONS", ASAN_OPTIONS)],
        Duration::from_secs(60),
    );
    ours.assert_clean(&format!("receive_guarantee {scenario} on mqttsync"));
    assert!(
        paho_available(),
        "install libpaho-mqtt-dev for this comparison"
    );
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let paho = run_prog(
        &build_paho("receive_guarantee", "paho-mqtt3c"),
        &[scenario, &uri, &dir_s],
        &[],
        Duration::from_secs(60),
    );
    eprintln!(
        "receive_guarantee {scenario}: mqttsync: {}Paho C 1.3: {}",
        ours.stdout.lines().next().unwrap_or_default().to_owned() + "\n",
        paho.stdout.lines().next().unwrap_or_default()
    );
    if scenario != "callbacks" {
        // Paho reads nothing before `receive`: the broker still owns the messages.
        paho.assert_clean(&format!("receive_guarantee {scenario} on Paho C"));
    }
    // "callbacks": Paho C loses most of them (it took them in before the disconnect and
    // drops them); the comparison is printed, not asserted.
}

#[test]
fn unread_messages_survive_disconnect_and_destroy() {
    receive_guarantee("unread");
}

#[test]
fn callbacks_set_after_a_disconnect_get_the_messages_taken_in_before() {
    receive_guarantee("callbacks");
}

#[test]
fn messages_to_the_own_subscription_survive_disconnect_destroy_and_create() {
    receive_guarantee("own");
}

/// `MQTTClient_freeMessage` acknowledges a message from `MQTTClient_receive` at once (the
/// broker, allowed one message in flight, sends the next only then), also when another
/// thread than the receiver frees it.
#[test]
fn freeing_a_received_message_acknowledges_it() {
    receive_guarantee("freed");
}

#[test]
fn create_refuses_a_store_of_the_other_mqtt_version() {
    use mqttsync::internals::persist::Persister;
    use mqttsync::internals::proto::session::PersistKey;
    use mqttsync::internals::proto::{Packet, PubResp};
    use mqttsync::persist::FileStore;
    use mqttsync::ProtocolVersion;
    let dir = tempfile::tempdir().unwrap();
    let uri = "tcp://127.0.0.1:1883";
    let id = "version-check";
    let mut p = Persister::new(Box::new(FileStore::new(dir.path())), ProtocolVersion::V5);
    p.open(id, uri).unwrap();
    p.put(PersistKey::SentPubRel(9), &Packet::PubRel(PubResp::new(9)))
        .unwrap();
    drop(p);
    let dir_s = dir.path().display().to_string();
    let run = run_prog(
        &build_ours("persist_version", true),
        &[uri, id, &dir_s],
        &[("ASAN_OPTIONS", ASAN_OPTIONS)],
        Duration::from_secs(60),
    );
    run.assert_clean("persist_version");
}

#[test]
fn a_forked_child_can_use_the_library() {
    // Daemons and pre-fork servers: the parent used a client before fork().
    let broker = Broker::start();
    let run = run_prog(
        &build_ours("fork_child", false),
        &[&broker.uri()],
        &[],
        Duration::from_secs(60),
    );
    run.assert_clean("fork_child");
    assert!(run.stdout.contains("child done"), "{}", run.stdout);
}

// ---------------------------------------------------------------------------------------
// trace callback
// ---------------------------------------------------------------------------------------

/// tests/c/client_trace.c: packets at MQTTCLIENT_TRACE_PROTOCOL with ids that pair up,
/// connect attempts and topics at MQTTCLIENT_TRACE_MAXIMUM, never the payload, nothing once
/// the callback is removed (the program checks; here its output is checked again).
#[test]
fn trace_callback_reports_packets_without_payloads() {
    let broker = Broker::start();
    let id = unique_client_id("trace");
    let r = run_prog(
        &build_ours("client_trace", false),
        &[&broker.uri(), &id],
        &[],
        Duration::from_secs(60),
    );
    r.assert_clean("client_trace");
    let protocol: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("trace[4] "))
        .collect();
    for packet in [
        "-> CONNECT MQTT 3.1.1 clean 1",
        "<- CONNACK code 0x00",
        "-> SUBSCRIBE id ",
        "<- SUBACK id ",
        "-> PUBLISH id ",
        "<- PUBACK id ",
        "<- PUBREC id ",
        "-> PUBREL id ",
        "<- PUBCOMP id ",
        "-> UNSUBSCRIBE id ",
        "<- UNSUBACK id ",
        "-> DISCONNECT",
    ] {
        assert!(
            protocol
                .iter()
                .any(|l| l.starts_with(&format!("{id}-p {packet}"))),
            "no {packet:?} line:\n{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("TOPSECRET"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("trace[3] {id}-m: connecting to {}", broker.uri())),
        "{}",
        r.stdout
    );
    // The callback runs on the I/O thread too: clean under AddressSanitizer.
    let r = run_prog(
        &build_ours("client_trace", true),
        &[&broker.uri(), &unique_client_id("trace-asan")],
        &[("ASAN_OPTIONS", ASAN_OPTIONS)],
        Duration::from_secs(60),
    );
    r.assert_clean("client_trace under ASan");
}

/// The stream publisher of the kill test is a Paho program: built against Paho C, and
/// against mqttsync, it publishes a stream of QoS 1/2 messages to the end, every one
/// arrives, and its user persistence is empty afterwards.
#[test]
fn the_stream_publisher_runs_the_same_on_paho_c_and_mqttsync() {
    let broker = Broker::builder()
        .extra_config("max_inflight_messages 0")
        .start();
    let uri = broker.uri();
    let total = 200u64;
    for (what, exe) in [
        ("Paho C", build_paho("client_stream", "paho-mqtt3c")),
        ("mqttsync", build_ours("client_stream", false)),
    ] {
        let sub = subscribed(&uri, "psub", "astream/#", mqttsync::QoS::ExactlyOnce);
        let dir = tempfile::tempdir().unwrap();
        let progress = dir.path().join("progress");
        let r = run_prog(
            &exe,
            &[
                &uri,
                &dir.path().display().to_string(),
                &unique_client_id("pstream"),
                &total.to_string(),
                &progress.display().to_string(),
            ],
            &[],
            Duration::from_secs(120),
        );
        assert!(
            r.ok && r.stdout.contains("START 0") && r.stdout.contains("DONE"),
            "{what}: {}\n{}",
            r.stdout,
            r.stderr
        );
        let left: Vec<_> = files_under(dir.path())
            .into_iter()
            .filter(|p| !p.starts_with(&progress))
            .collect();
        assert!(left.is_empty(), "{what} left records: {left:?}");
        let mut got: Vec<u64> = Vec::new();
        while (got.len() as u64) < total {
            let m = sub
                .messages()
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{what}: {} of {total} arrived: {e}", got.len()));
            got.push(m.payload_str().unwrap()["seq=".len()..].parse().unwrap());
        }
        // Each once, in order within each QoS (odd numbers are QoS 2). MQTT orders nothing
        // across QoS levels: mosquitto forwards a QoS 2 message at its PUBREL, which Paho's
        // synchronous client sends when a call has it read the PUBREC.
        for odd in [false, true] {
            let of_qos: Vec<u64> = got
                .iter()
                .copied()
                .filter(|s| (s % 2 == 1) == odd)
                .collect();
            let want: Vec<u64> = (0..total).filter(|s| (s % 2 == 1) == odd).collect();
            assert_eq!(of_qos, want, "{what}: QoS {}", if odd { 2 } else { 1 });
        }
    }
}

/// An MQTTClient publisher (tests/c/client_stream.c: user persistence, completions awaited
/// after every 20 messages, connecting again when the connection is gone) killed
/// repeatedly in a stream of QoS 1/2 messages, the broker stopped and started around some
/// kills (`common::stream_kill`).
#[test]
fn client_publisher_killed_repeatedly_loses_nothing_and_qos2_stays_exactly_once() {
    common::stream_kill::publisher_killed_repeatedly(
        &build_ours("client_stream", false),
        &[],
        "MQTTClient",
        false,
        &[],
    );
}
