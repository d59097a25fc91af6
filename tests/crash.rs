//! The client process killed: a publisher with `FileStore` persistence is SIGKILLed at
//! random points several times and restarted; afterwards every message has arrived, QoS 2
//! exactly once. Also: no torn record after a kill, a corrupt record is skipped (logged, not
//! a crash) and a torn one is removed at the connect, and the client persists a PUBLISH
//! before it can reach the wire.
//!
//! The publisher is this test binary run again (`child_publisher`, ignored unless
//! `MQTTSYNC_CRASH_CHILD` is set), so no separate build step is needed.
//!
//! # What "sent" means, and why QoS 2 stays exactly once across kills
//!
//! `publish()` returns once the message is queued for the client's I/O thread, before it
//! is persisted, so "publish returned" cannot be the program's progress mark: a kill right
//! after it loses the message if the program moves on, and re-publishing it duplicates a
//! QoS 2 message if it had already reached the broker. The publisher instead learns what
//! was *persisted*: its store wraps `FileStore` and, right after the client's atomic `put`
//! of a PUBLISH record returns, writes `next = seq + 1` to a progress file (tmp, fsync,
//! rename). The client persists a PUBLISH before writing it to the socket, and removes the
//! record only after the flow completed. So at a restart, for message `s`:
//!
//! * a record for `s` is in the store → the client resends it (DUP) itself; the program
//!   starts after the highest persisted sequence (`max(progress, highest record + 1)`);
//! * no record and `s >= progress` → the `put` of `s` never completed, so `s` never left
//!   the process: publishing it again is its first transmission;
//! * no record and `s < progress` → `s` was persisted and later completed: done.
//!
//! No message is lost (every accepted-and-persisted message is resent until acknowledged;
//! every other one is re-published) and none is published twice, so the broker's QoS 2
//! handshake gives the subscriber each QoS 2 message exactly once.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique_client_id, Action, Broker, Direction, FakeBroker, FaultProxy, Kind, Script};
use mqttsync::internals::persist::record;
use mqttsync::internals::proto::{Packet, ProtocolVersion};
use mqttsync::persist::{FileStore, PersistError, Store};
use mqttsync::{Client, ConnectOptions, Message, QoS};

// ---- the publisher program ---------------------------------------------------------------

/// `FileStore` plus the progress file, written after each PUBLISH record is stored.
struct ProgressStore {
    inner: FileStore,
    progress: PathBuf,
    next: u64,
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn read_progress(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The sequence number in a PUBLISH record's payload ("<seq>", or "seq=<seq>" as the
/// stream publishers of `common::stream_kill` write it).
fn record_seq(bytes: &[u8]) -> Option<u64> {
    match record::decode_record(bytes, ProtocolVersion::V311).ok()? {
        Packet::Publish(p) => {
            let text = std::str::from_utf8(&p.payload).ok()?;
            text.strip_prefix("seq=").unwrap_or(text).parse().ok()
        }
        _ => None,
    }
}

impl Store for ProgressStore {
    fn open(&mut self, client_id: &str, server_uri: &str) -> Result<(), PersistError> {
        self.inner.open(client_id, server_uri)
    }
    fn close(&mut self) -> Result<(), PersistError> {
        self.inner.close()
    }
    fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<(), PersistError> {
        self.inner.put(key, parts)?;
        trace_op(
            &self.progress,
            &format!("put {key} {:?}", record_seq(&parts.concat())),
        );
        if key.starts_with("s-") {
            if let Some(seq) = record_seq(&parts.concat()) {
                if seq + 1 > self.next {
                    self.next = seq + 1;
                    write_atomic(&self.progress, &self.next.to_string()).map_err(|e| {
                        PersistError::Io {
                            path: self.progress.clone(),
                            source: e,
                        }
                    })?;
                }
            }
        }
        Ok(())
    }
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, PersistError> {
        self.inner.get(key)
    }
    fn remove(&mut self, key: &str) -> Result<(), PersistError> {
        trace_op(&self.progress, &format!("remove {key}"));
        self.inner.remove(key)
    }
    fn keys(&mut self) -> Result<Vec<String>, PersistError> {
        self.inner.keys()
    }
    fn clear(&mut self) -> Result<(), PersistError> {
        self.inner.clear()
    }
    fn contains_key(&mut self, key: &str) -> Result<bool, PersistError> {
        self.inner.contains_key(key)
    }
}

/// With `MQTTSYNC_CRASH_TRACE` set, appends a line to `<progress>.trace` (every store
/// operation of every run, for diagnosing a failure; dumped to /tmp/crash-trace.txt).
fn trace_op(progress: &Path, line: &str) {
    use std::io::Write;
    if std::env::var_os("MQTTSYNC_CRASH_TRACE").is_none() {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(progress.with_extension("trace"))
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Highest sequence number among the PUBLISH records in the store, if any.
fn highest_in_store(root: &Path, client_id: &str, uri: &str) -> Option<u64> {
    let mut fs = FileStore::new(root);
    fs.open(client_id, uri).ok()?;
    let mut best = None;
    for k in fs.keys().unwrap_or_default() {
        if let Ok(Some(b)) = fs.get(&k) {
            if let Some(s) = record_seq(&b) {
                best = best.max(Some(s));
            }
        }
    }
    best
}

fn qos_of(seq: u64) -> QoS {
    if seq % 2 == 0 {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    }
}

/// Where a child publisher starts (the module doc: `max(progress, highest record + 1)`,
/// said on stdout as "START n") and its store, which writes `progress` after each PUBLISH
/// record.
fn progress_store(root: &Path, id: &str, uri: &str, progress: PathBuf) -> (u64, ProgressStore) {
    let stored = highest_in_store(root, id, uri).map_or(0, |s| s + 1);
    let start = read_progress(&progress).max(stored);
    println!("START {start}");
    trace_op(&progress, &format!("START {start}"));
    let store = ProgressStore {
        inner: FileStore::new(root),
        progress,
        next: start,
    };
    (start, store)
}

/// The end of a child publisher: its publishes acknowledged (each within `timeout`), the
/// flows restored from the store too, the client closed; says "DONE".
fn finish_child(
    client: Client,
    tokens: impl IntoIterator<Item = mqttsync::DeliveryToken>,
    timeout: Duration,
) {
    for t in tokens {
        t.wait_timeout(timeout).expect("acknowledged");
    }
    assert!(common::wait_until(Duration::from_secs(30), || client
        .pending_deliveries()
        .map(|p| p.is_empty())
        .unwrap_or(false)));
    client.close().expect("close");
    println!("DONE");
}

/// The publisher, when run as a child (`MQTTSYNC_CRASH_CHILD=1`).
#[test]
#[ignore = "run by the crash tests as a child process"]
fn child_publisher() {
    if std::env::var_os("MQTTSYNC_CRASH_CHILD").is_none() {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let uri = env("MQTTSYNC_URI");
    let id = env("MQTTSYNC_ID");
    let root = PathBuf::from(env("MQTTSYNC_STORE"));
    let progress = PathBuf::from(env("MQTTSYNC_PROGRESS"));
    let total: u64 = env("MQTTSYNC_TOTAL").parse().unwrap();
    let (start, store) = progress_store(&root, &id, &uri, progress);
    let client = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(&id)
            .clean_start(false)
            .request_timeout(Duration::from_secs(30))
            .persistence(Box::new(store)),
    )
    .expect("child connects");
    // The corrupt-record test holds the link before the first publish.
    if let Ok(go) = std::env::var("MQTTSYNC_GO_FILE") {
        assert!(common::wait_until(Duration::from_secs(60), || Path::new(
            &go
        )
        .exists()));
    }
    let mut tokens = Vec::new();
    for seq in start..total {
        tokens.push(
            client
                .publish(Message::new("crash/stream", seq.to_string()).qos(qos_of(seq)))
                .expect("publish"),
        );
        // Batches, so that kills land with flows at every stage.
        if tokens.len() == 25 {
            for t in tokens.drain(..) {
                t.wait().expect("acknowledged");
            }
        }
    }
    finish_child(client, tokens, Duration::from_secs(30));
}

/// The Rust API as a stream publisher of `common::stream_kill` (run as a child, with
/// `MQTTSYNC_STREAM_CHILD` set; the last five arguments are URI DIR ID TOTAL PROGRESS):
/// a file store that writes the progress file after each PUBLISH record, automatic
/// reconnect (publishes made while reconnecting go into the store), a window of 200 and
/// at most 200 messages unfinished at a time (2000 while reconnecting). Prints "START n",
/// then "DONE".
#[test]
#[ignore = "run by rust_stream_publisher_killed_repeatedly as a child process"]
fn child_stream_publisher() {
    if std::env::var_os("MQTTSYNC_STREAM_CHILD").is_none() {
        return;
    }
    let a: Vec<String> = std::env::args().collect();
    let [uri, dir, id, total, progress] = &a[a.len() - 5..] else {
        unreachable!()
    };
    let (root, progress) = (PathBuf::from(dir), PathBuf::from(progress));
    let total: u64 = total.parse().unwrap();
    let (start, store) = progress_store(&root, id, uri, progress);
    let client = Client::connect(
        ConnectOptions::new(uri)
            .client_id(id)
            .clean_start(false)
            .request_timeout(Duration::from_secs(30))
            // The 200 unfinished in flight (the default window, 20, would keep most of
            // them queued: a broker stop would stop the stream at once).
            .max_inflight(200)
            .automatic_reconnect(mqttsync::ReconnectOptions {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
                max_buffered: 100_000,
                ..Default::default()
            })
            .persistence(Box::new(store)),
    )
    .expect("child connects");
    let mut tokens = std::collections::VecDeque::new();
    for seq in start..total {
        // At most 200 unfinished, or 2000 while reconnecting (they go into the store).
        while tokens.len() >= 200 {
            let t: &mqttsync::DeliveryToken = tokens.front().unwrap();
            if t.is_complete() {
                tokens.pop_front();
            } else if !client.is_connected() && tokens.len() < 2000 {
                break;
            } else {
                let _ = t.wait_timeout(Duration::from_millis(50));
            }
        }
        let m = Message::new("astream/t", format!("seq={seq:06}")).qos(qos_of(seq));
        tokens.push_back(client.publish(m).expect("publish"));
    }
    finish_child(client, tokens, Duration::from_secs(60));
}

/// The Rust API publisher with a store and automatic reconnect through the kill-stream
/// scenario of `common::stream_kill` (kills, the broker stopped around three of them while
/// the publisher goes on into its store).
#[test]
fn rust_stream_publisher_killed_repeatedly_loses_nothing_and_qos2_stays_exactly_once() {
    let exe = std::env::current_exe().unwrap();
    common::stream_kill::publisher_killed_repeatedly(
        &exe,
        &[
            "child_stream_publisher",
            "--exact",
            "--ignored",
            "--nocapture",
        ],
        "Rust API",
        true,
        &[("MQTTSYNC_STREAM_CHILD", "1")],
    );
}

fn spawn_child(uri: &str, id: &str, root: &Path, progress: &Path, total: u64) -> Child {
    spawn_child_with(uri, id, root, progress, total, None)
}

fn spawn_child_with(
    uri: &str,
    id: &str,
    root: &Path,
    progress: &Path,
    total: u64,
    go: Option<&Path>,
) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if let Some(go) = go {
        cmd.env("MQTTSYNC_GO_FILE", go);
    }
    cmd.args([
        "child_publisher",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("MQTTSYNC_CRASH_CHILD", "1")
    .env("MQTTSYNC_URI", uri)
    .env("MQTTSYNC_ID", id)
    .env("MQTTSYNC_STORE", root)
    .env("MQTTSYNC_PROGRESS", progress)
    .env("MQTTSYNC_TOTAL", total.to_string())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn the child publisher")
}

/// Every `.msg` file under `root` is a whole record (no torn write survives a kill).
fn assert_no_torn_records(root: &Path) -> usize {
    let mut n = 0;
    for p in common::files_under(root) {
        if p.extension().is_some_and(|x| x == "msg") {
            let b = std::fs::read(&p).unwrap();
            record::decode_record(&b, ProtocolVersion::V311)
                .unwrap_or_else(|e| panic!("torn record {}: {e}", p.display()));
            n += 1;
        }
    }
    n
}

#[test]
fn publisher_killed_repeatedly_loses_nothing_and_qos2_stays_exactly_once() {
    let broker = Broker::builder().max_queued_messages(1_000_000).start();
    let uri = broker.uri();
    let sub = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(unique_client_id("csub"))
            .clean_start(false),
    )
    .unwrap();
    sub.subscribe("crash/#", QoS::ExactlyOnce).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let progress = dir.path().join("progress");
    let id = unique_client_id("cpub");
    let total = 3000u64;
    let kills = 8;
    let mut seed = (u64::from(std::process::id()) * 2654435761) | 1;
    let mut starts = Vec::new();
    let mut records_seen = 0;
    for k in 0..kills {
        let before = read_progress(&progress);
        let mut child = spawn_child(&uri, &id, &root, &progress, total);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // A random point in the stream: 20..300 messages after where this run started.
        let target = before + 20 + seed % 280;
        let reached = common::wait_until(common::DEADLINE, || {
            read_progress(&progress) >= target || child.try_wait().ok().flatten().is_some()
        });
        if !reached || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "child did not reach message {target} before kill {k}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.kill().unwrap(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        starts.push(
            stdout
                .lines()
                .find_map(|l| l.split("START ").nth(1))
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into()),
        );
        records_seen += assert_no_torn_records(&root);
    }
    let child = spawn_child(&uri, &id, &root, &progress, total);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("DONE"),
        "final run failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every flow completed: nothing is left in the store (a stale record would be resent
    // by the next start).
    assert_eq!(
        assert_no_torn_records(&root),
        0,
        "records left after the final run"
    );
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..total).any(|s| !seen.contains_key(&s)) && Instant::now() < deadline {
        match sub.messages().recv_timeout(Duration::from_secs(10)) {
            Ok(m) => {
                *seen
                    .entry(m.payload_str().unwrap().parse().unwrap())
                    .or_default() += 1
            }
            Err(e) => {
                eprintln!("receiving: {e}");
                break;
            }
        }
    }
    let missing: Vec<u64> = (0..total).filter(|s| !seen.contains_key(s)).collect();
    let qos2_dups: Vec<(u64, usize)> = seen
        .iter()
        .filter(|(s, c)| qos_of(**s) == QoS::ExactlyOnce && **c > 1)
        .map(|(s, c)| (*s, *c))
        .collect();
    let qos1_dups: usize = seen
        .iter()
        .filter(|(s, _)| qos_of(**s) == QoS::AtLeastOnce)
        .map(|(_, c)| c - 1)
        .sum();
    eprintln!(
        "kills survived: {kills}; restart points {starts:?}; records checked after kills: \
         {records_seen}; messages {total}: missing {}, QoS 1 duplicates {qos1_dups}, QoS 2 \
         duplicates {}",
        missing.len(),
        qos2_dups.len()
    );
    assert!(missing.is_empty(), "lost: {missing:?}");
    if !qos2_dups.is_empty() {
        let trace = std::fs::read_to_string(progress.with_extension("trace")).unwrap_or_default();
        std::fs::write("/tmp/crash-trace.txt", &trace).unwrap();
        std::fs::write("/tmp/crash-broker.txt", broker.log()).unwrap();
    }
    assert!(qos2_dups.is_empty(), "QoS 2 duplicated: {qos2_dups:?}");
    // The kills really hit the middle of the stream.
    let distinct_starts: std::collections::HashSet<_> = starts.iter().collect();
    assert!(
        distinct_starts.len() >= 3,
        "kills did not land mid-stream: {starts:?}"
    );
}

// ---- a logger that keeps error records, to see what the client reports -------------------

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", r.level(), r.args()));
        }
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

fn capture_logs() {
    let _ = log::set_logger(&LOGS);
    log::set_max_level(if std::env::var_os("MQTTSYNC_DEBUG_LOG").is_some() {
        log::LevelFilter::Trace
    } else {
        log::LevelFilter::Warn
    });
}

#[test]
fn a_corrupt_record_is_reported_and_skipped_and_the_others_are_resent() {
    capture_logs();
    let broker = Broker::builder().max_queued_messages(100_000).start();
    let sub = Client::connect(
        ConnectOptions::new(&broker.uri())
            .client_id(unique_client_id("gsub"))
            .clean_start(false),
    )
    .unwrap();
    sub.subscribe("crash/#", QoS::ExactlyOnce).unwrap();
    // The publisher's path goes through a proxy that holds everything it sends, so its
    // messages stay unacknowledged in the store when it is killed.
    let proxy = FaultProxy::start(broker.addr());
    let uri = proxy.uri();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let progress = dir.path().join("progress");
    let id = unique_client_id("gpub");
    let total = 10u64;
    let go = dir.path().join("go");
    let mut child = spawn_child_with(&uri, &id, &root, &progress, total, Some(&go));
    // Let CONNECT/CONNACK through, then hold every byte towards the broker, then let the
    // child publish.
    assert!(common::wait_until(common::DEADLINE, || proxy
        .stats()
        .bytes_down
        >= 4));
    proxy.stall(Direction::Up);
    std::fs::write(&go, b"go").unwrap();
    let client_dir = root.join(mqttsync::internals::persist::client_dir_name(&id, &uri));
    assert!(
        // Generous: every record is fsynced, and the kill test fsyncs thousands meanwhile.
        common::wait_until(Duration::from_secs(60), || std::fs::read_dir(&client_dir)
            .map(|d| d
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "msg"))
                .count())
            .unwrap_or(0)
            == total as usize),
        "the child did not persist {total} records: {:?}\n{}",
        std::fs::read_dir(&client_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
        {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    );
    child.kill().unwrap();
    let _ = child.wait();
    proxy.cut(); // what it held is dropped with the connection
    proxy.resume();
    assert_eq!(assert_no_torn_records(&root), total as usize);

    // Garbage into one record.
    let victim = client_dir.join("s-3.msg");
    assert!(victim.exists(), "expected {}", victim.display());
    std::fs::write(&victim, b"\x00garbage, not a record").unwrap();
    // And what a kill leaves of records being written through a store that writes in
    // place: nothing yet, and a part. Their packets never went out (a record is written
    // before its packet is sent).
    let torn = [client_dir.join("s-11.msg"), client_dir.join("sc-12.msg")];
    std::fs::write(&torn[0], b"").unwrap();
    let whole = std::fs::read(client_dir.join("s-1.msg")).unwrap();
    std::fs::write(&torn[1], &whole[..whole.len() / 2]).unwrap();

    // The same client restarts in this process: connects, reports the bad record, resends
    // the other nine.
    let client = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(&id)
            .clean_start(false)
            .persistence(Box::new(FileStore::new(&root))),
    )
    .expect("a corrupt record must not stop the client from connecting");
    let mut got = std::collections::HashSet::new();
    let deadline = Instant::now() + common::DEADLINE;
    while got.len() < total as usize - 1 && Instant::now() < deadline {
        if let Ok(m) = sub.messages().recv_timeout(Duration::from_secs(2)) {
            got.insert(m.payload_str().unwrap().to_string());
        }
    }
    assert_eq!(
        got.len(),
        total as usize - 1,
        "resent: {got:?}; pending {:?}; logs {:?}",
        client.pending_deliveries(),
        LOGS.0.lock().unwrap()
    );
    // s-3 held message "2" (packet ids start at 1).
    assert!(
        !got.contains("2"),
        "the corrupt record's message cannot have been resent"
    );
    let logs = LOGS.0.lock().unwrap().clone();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("ERROR") && l.contains("s-3") && l.contains("skipped")),
        "corrupt record not reported: {logs:?}"
    );
    // The damaged record stays for inspection (it may hold a message); the torn ones are
    // removed at the connect, so that they do not stay for ever.
    assert!(victim.exists(), "the corrupt record was removed");
    for t in &torn {
        assert!(!t.exists(), "torn record {} left in the store", t.display());
        let name = t.file_stem().unwrap().to_str().unwrap();
        assert!(
            logs.iter().any(|l| l.starts_with("ERROR")
                && l.contains(&format!("{name:?}"))
                && l.contains("removed")),
            "removal of {name} not reported: {logs:?}"
        );
    }
    assert!(client.is_connected());
    client.close().unwrap();
}

/// The client writes a QoS 1/2 PUBLISH to its store before the bytes can reach the server.
/// (Before this was fixed, the record was written only after the next read from the socket,
/// i.e. after the PUBACK: a process killed in between had sent a message it no longer
/// knew about.)
#[test]
fn a_publish_is_persisted_before_the_server_sees_it() {
    struct Watch {
        inner: mqttsync::persist::MemoryStore,
        server_saw_publish: Arc<AtomicBool>,
        seen_at_put: Arc<Mutex<Vec<bool>>>,
    }
    impl Store for Watch {
        fn open(&mut self, c: &str, u: &str) -> Result<(), PersistError> {
            self.inner.open(c, u)
        }
        fn close(&mut self) -> Result<(), PersistError> {
            self.inner.close()
        }
        fn put(&mut self, key: &str, parts: &[&[u8]]) -> Result<(), PersistError> {
            if key.starts_with("s-") {
                self.seen_at_put
                    .lock()
                    .unwrap()
                    .push(self.server_saw_publish.load(Ordering::SeqCst));
            }
            self.inner.put(key, parts)
        }
        fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, PersistError> {
            self.inner.get(key)
        }
        fn remove(&mut self, key: &str) -> Result<(), PersistError> {
            self.inner.remove(key)
        }
        fn keys(&mut self) -> Result<Vec<String>, PersistError> {
            self.inner.keys()
        }
        fn clear(&mut self) -> Result<(), PersistError> {
            self.inner.clear()
        }
        fn contains_key(&mut self, key: &str) -> Result<bool, PersistError> {
            self.inner.contains_key(key)
        }
    }
    let saw = Arc::new(AtomicBool::new(false));
    let seen_at_put = Arc::new(Mutex::new(Vec::new()));
    let flag = saw.clone();
    let mut fake = FakeBroker::start(
        Script::new()
            .handshake()
            .expect(Kind::Publish)
            .custom(move |_| {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
            .ack_last()
            .then(Action::Drain),
    );
    let client = Client::connect(
        ConnectOptions::new(&fake.uri())
            .client_id("persist-first")
            .persistence(Box::new(Watch {
                inner: mqttsync::persist::MemoryStore::new(),
                server_saw_publish: saw,
                seen_at_put: seen_at_put.clone(),
            })),
    )
    .unwrap();
    client
        .publish_wait(Message::new("t", "x").qos(QoS::AtLeastOnce))
        .unwrap();
    drop(client);
    let _ = fake.join();
    assert_eq!(
        *seen_at_put.lock().unwrap(),
        vec![false],
        "the PUBLISH record was written after the server had it"
    );
}

/// A store caught between the two writes at PUBREC holds both the PUBLISH (`s-<id>`) and
/// the PUBREL (`sc-<id>`) record of a QoS 2 flow. The client resends the PUBREL, and when
/// the flow completes nothing of it may be left in the store: a stale PUBLISH record would
/// be resent as a new message after the next restart, a QoS 2 duplicate. (Found by the kill
/// test: the broker log showed a PUBLISH DUP for an id whose PUBREL the previous run had
/// completed.)
#[test]
fn a_superseded_publish_record_is_removed_at_restore() {
    use mqttsync::internals::proto::{Packet, PubResp, Publish};
    let broker = Broker::start();
    let uri = broker.uri();
    let dir = tempfile::tempdir().unwrap();
    let id = unique_client_id("stale");
    let mut fs = FileStore::new(dir.path());
    fs.open(&id, &uri).unwrap();
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: "stale/x".into(),
        pkid: 7,
        payload: "old".into(),
        properties: Default::default(),
    });
    let pubrel = Packet::PubRel(PubResp::new(7));
    let v = ProtocolVersion::V311;
    fs.put(
        "s-7",
        &[&record::encode_record_seq(&publish, v, 1).unwrap()],
    )
    .unwrap();
    fs.put(
        "sc-7",
        &[&record::encode_record_seq(&pubrel, v, 2).unwrap()],
    )
    .unwrap();
    let client_dir = fs.client_dir().unwrap().to_path_buf();
    drop(fs);
    let client = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(&id)
            .clean_start(false)
            .persistence(Box::new(FileStore::new(dir.path()))),
    )
    .unwrap();
    let msgs = || {
        std::fs::read_dir(&client_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(
        common::wait_until(common::DEADLINE, || msgs().is_empty()),
        "records left after the flow completed: {:?}",
        msgs()
    );
    client.close().unwrap();
}

/// A received QoS 2 message the application took (PUBREC sent, the marker `r-<id>` stored)
/// and the server had not released when the client stopped: the server, which never saw
/// the PUBREC, sends it again to the next client over the same store. That client must
/// know the message (the marker is read back), answer PUBREC without delivering it a second
/// time, and complete the flow on PUBREL, leaving nothing in the store once closed.
#[test]
fn a_received_qos2_marker_survives_a_restart() {
    use mqttsync::internals::proto::{ConnAck, Properties, PubResp, Publish};
    let dir = tempfile::tempdir().unwrap();
    let publish = |dup| {
        Packet::Publish(Publish {
            dup,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "marker/x".into(),
            pkid: 7,
            payload: "once".into(),
            properties: Default::default(),
        })
    };
    let connack = |session_present| {
        Packet::ConnAck(ConnAck {
            session_present,
            code: 0,
            properties: Properties::new(),
        })
    };
    let mut fake = FakeBroker::start(
        Script::new()
            .expect(Kind::Connect)
            .send(connack(false))
            .send(publish(false))
            .expect(Kind::PubRec)
            .close()
            .accept()
            .expect(Kind::Connect)
            .send(connack(true))
            .send(publish(true))
            .expect(Kind::PubRec)
            .send(Packet::PubRel(PubResp::new(7)))
            .expect(Kind::PubComp)
            .signal("completed")
            .drain(),
    );
    let opts = || {
        ConnectOptions::new(&fake.uri())
            .client_id("marker-restart")
            .clean_start(false)
            .persistence(Box::new(FileStore::new(dir.path())))
    };
    let first = Client::connect(opts()).unwrap();
    let m = first.messages().recv_timeout(common::DEADLINE).unwrap();
    assert_eq!(m.payload_str(), Some("once"));
    drop(m); // the application is done with it: marker, then PUBREC
    assert!(common::wait_until(common::DEADLINE, || !first.is_connected()));
    drop(first);

    let second = Client::connect(opts()).unwrap();
    assert!(
        fake.wait_signal("completed", common::DEADLINE),
        "{}",
        fake.log()
    );
    // The resend came before the PUBREL, so it was handled when PUBCOMP went out.
    assert!(
        second.messages().try_recv().unwrap().is_none(),
        "the message was delivered a second time"
    );
    let marker = |p: &PathBuf| p.file_name().is_some_and(|n| n == "r-7.msg");
    assert!(
        common::wait_until(common::DEADLINE, || !common::files_under(dir.path())
            .iter()
            .any(marker)),
        "the marker is removed when the flow completes"
    );
    drop(second);
    fake.join().unwrap();
    // The record naming the server went with the last marker, at close.
    assert_eq!(common::files_under(dir.path()), Vec::<PathBuf>::new());
}

/// A publish the client has not yet taken into its session (the in-flight window and the
/// session's queue full: the broker frozen, nothing acknowledged) can be withdrawn, and is
/// then never sent; or held in a record of the caller's, which the client's own record of
/// the message names and which the client removes once that is written. What came before
/// and after goes out in order, each once.
#[test]
fn a_publish_not_yet_taken_can_be_withdrawn_or_held_in_a_record_of_the_callers() {
    let broker = Broker::start();
    let uri = broker.uri();
    let sub =
        Client::connect(ConnectOptions::new(&uri).client_id(unique_client_id("wsub"))).unwrap();
    sub.subscribe("w/#", QoS::AtLeastOnce).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let id = unique_client_id("wpub");
    let client = Client::connect(
        ConnectOptions::new(&uri)
            .client_id(&id)
            .clean_start(false)
            .max_inflight(1)
            .max_queued(2)
            .persistence(Box::new(FileStore::new(&root))),
    )
    .unwrap();
    let client_dir = root.join(mqttsync::internals::persist::client_dir_name(&id, &uri));
    broker.pause();
    let msg = |p: &str| Message::new("w/t", p.as_bytes().to_vec()).qos(QoS::AtLeastOnce);
    // m1 in flight, m2 and m3 in the session's queue: taken.
    let taken: Vec<_> = ["m1", "m2", "m3"]
        .iter()
        .map(|p| {
            let t = client.publish(msg(p)).unwrap();
            t.wait_stored(common::DEADLINE).unwrap();
            t
        })
        .collect();
    let not_taken = |t: &mqttsync::DeliveryToken| {
        t.wait_stored(Duration::from_millis(300))
            .unwrap_err()
            .is_timeout()
    };
    let t4 = client.publish(msg("m4")).unwrap();
    assert!(not_taken(&t4), "no room: not taken");
    assert!(t4.withdraw());
    assert!(matches!(
        t4.wait_timeout(Duration::from_secs(1)),
        Err(mqttsync::Error::Withdrawn)
    ));
    assert!(!t4.withdraw(), "once");
    assert!(!taken[0].withdraw(), "the client has it");

    let t5 = client.publish(msg("m5")).unwrap();
    assert!(not_taken(&t5));
    let held = client_dir.join("o-7.msg");
    assert!(t5.hold_with(|| {
        let rec =
            mqttsync::persist::encode_message_record(&msg("m5"), ProtocolVersion::V311, 7).unwrap();
        std::fs::write(&held, rec).unwrap();
        Some("o-7".into())
    }));
    assert!(!t5.withdraw(), "held: the client will take it");
    assert!(!t5.hold_with(|| unreachable!()), "once");

    broker.resume();
    for t in taken.iter().chain([&t5]) {
        t.wait_timeout(common::DEADLINE).unwrap();
    }
    assert!(!held.exists(), "the client removes the record it replaced");
    let mut got = Vec::new();
    while let Ok(m) = sub.messages().recv_timeout(Duration::from_secs(2)) {
        got.push(m.payload_str().unwrap().to_owned());
    }
    assert_eq!(got, ["m1", "m2", "m3", "m5"]);
    client.close().unwrap();
    assert_eq!(common::files_under(&client_dir), Vec::<PathBuf>::new());
}
