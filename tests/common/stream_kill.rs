//! A stream publisher killed mid-stream: a C program (tests/c/async_stream.c on MQTTAsync,
//! tests/c/client_stream.c on MQTTClient; both learn where to start again from their
//! store's writes, tests/c/stream_progress.h) or a Rust one (tests/crash.rs
//! `child_stream_publisher`) SIGKILLed 8 times at random points of a
//! stream of 3000 QoS 1/2 messages and started again. At every third kill the broker is
//! stopped first (MQTTAsync's publisher buffers meanwhile, MQTTClient's connects again
//! when it is back) and the kill comes soon after the publisher is connected again. Every message arrives, each QoS 2 one once, and the
//! store is empty at the end.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{files_under, run_prog, unique_client_id, wait_until, Broker};

/// A program (killed with SIGKILL when dropped, however the test ends) and its stdout line
/// by line.
pub struct LineProc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl LineProc {
    /// Starts `exe args` with `envs` added to the environment; stdin is a pipe (take it
    /// from `child`), stderr is the test's.
    pub fn spawn(exe: &Path, args: &[&str], envs: &[(&str, &str)]) -> LineProc {
        let mut child = Command::new(exe)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        LineProc { child, lines }
    }

    /// The next line, or `None` after 30 s.
    pub fn line(&self) -> Option<String> {
        self.lines.recv_timeout(Duration::from_secs(30)).ok()
    }
}

impl Drop for LineProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_progress(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the scenario of the module doc with the stream publisher `exe` (arguments `lead`,
/// then URI DIR ID TOTAL PROGRESS); `what` names it in the report; `buffers`: it goes on
/// publishing while the broker is down (MQTTAsync's sendWhileDisconnected, the Rust API's
/// automatic reconnect with a store); `env` is added to the publisher's environment. With `AS_TRACE=FILE` in the test's environment the publisher
/// logs every store write and removal there.
pub fn publisher_killed_repeatedly(
    exe: &Path,
    lead: &[&str],
    what: &str,
    buffers: bool,
    env: &[(&str, &str)],
) {
    // No incoming quota: mosquitto 2.0.11 (Debian 12) answers a QoS 1 PUBLISH beyond its
    // incoming in-flight quota (max_inflight_messages, 20) from an MQTT 3.1.1 client with a
    // PUBACK and drops the message (its log: "Sending PUBACK ... rc151"); the publisher's
    // resends after a restart exceed 20.
    let mut broker = Broker::builder()
        .persistence(true)
        .max_queued_messages(1_000_000)
        .extra_config("max_inflight_messages 0")
        .start();
    let uri = broker.uri();
    let sub = mqttsync::Client::connect(
        mqttsync::ConnectOptions::new(&uri)
            .client_id(unique_client_id("asub"))
            .clean_start(false)
            .automatic_reconnect(mqttsync::ReconnectOptions {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
                ..Default::default()
            }),
    )
    .unwrap();
    sub.subscribe("astream/#", mqttsync::QoS::ExactlyOnce)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let progress = dir.path().join("progress");
    let progress_s = progress.display().to_string();
    let id = unique_client_id("astream");
    let total = 3000u64;
    let total_s = total.to_string();
    let args: Vec<&str> = lead
        .iter()
        .copied()
        .chain([uri.as_str(), &dir_s, &id, &total_s, &progress_s])
        .collect();
    let mut seed = (u64::from(std::process::id()) * 2654435761) | 1;
    let mut starts = Vec::new();
    let connected = format!(" as {id} ");
    let reach = |child: &mut LineProc, n: u64, what: &str| {
        let ok = wait_until(Duration::from_secs(60), || {
            read_progress(&progress) >= n || child.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            ok && child.child.try_wait().unwrap().is_none(),
            "the publisher did not reach message {n} ({what})"
        );
    };
    // One file per scenario: the tests of a binary run in parallel.
    let trace = std::env::var("AS_TRACE")
        .map(|t| format!("{t}.{}", what.replace(' ', "_")))
        .unwrap_or_default();
    let mut envs: Vec<(&str, &str)> = env.to_vec();
    if !trace.is_empty() {
        envs.push(("AS_TRACE", trace.as_str()));
    }
    for k in 0..8 {
        let before = read_progress(&progress);
        let mut child = LineProc::spawn(exe, &args, &envs);
        // Its "START n" line (a test binary prints its own lines first).
        let start = std::iter::from_fn(|| child.line())
            .take(10)
            .find(|l| l.starts_with("START"));
        starts.push(start.unwrap_or_default());
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target = before + 20 + seed % 280;
        reach(&mut child, target, "before the kill");
        if k % 3 == 1 {
            let connects = broker.log_count(&connected);
            broker.stop();
            if buffers {
                reach(
                    &mut child,
                    target + 30,
                    "buffering while the broker is down",
                );
            }
            broker.start_again();
            assert!(
                broker.wait_for_log_count(&connected, connects + 1, Duration::from_secs(30)),
                "the publisher did not reconnect"
            );
            // Into the resends, and the hand-over of what it buffered (sends beyond the
            // 200 unfinished wait for it).
            let now = read_progress(&progress);
            reach(
                &mut child,
                now + 1 + seed % 40,
                "after the broker came back",
            );
        }
        drop(child); // SIGKILL
    }
    let last = run_prog(exe, &args, &envs, Duration::from_secs(120));
    assert!(
        last.ok && last.stdout.contains("DONE"),
        "final run: {}\n{}",
        last.stdout,
        last.stderr
    );
    let left: Vec<PathBuf> = files_under(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(&progress))
        .collect();
    assert_eq!(
        left,
        Vec::<PathBuf>::new(),
        "records left after the final run"
    );

    // Until every message is in (or a minute), then late duplicates. A loss of the
    // subscriber's connection at a broker stop is reported by the receive; it reconnects.
    let mut seen: HashMap<u64, usize> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settle = None;
    loop {
        if settle.is_none() && seen.len() as u64 == total {
            settle = Some(Instant::now() + Duration::from_millis(500));
        }
        let until = settle.unwrap_or(deadline);
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            break;
        };
        match sub.messages().recv_timeout(left) {
            Ok(m) => {
                let seq = m.payload_str().unwrap()["seq=".len()..].parse().unwrap();
                *seen.entry(seq).or_default() += 1;
            }
            Err(mqttsync::Error::ConnectionLost(_)) => {}
            Err(_) => break,
        }
    }
    let missing: Vec<u64> = (0..total).filter(|s| !seen.contains_key(s)).collect();
    let qos2_dups: Vec<(u64, usize)> = seen
        .iter()
        .filter(|(s, c)| *s % 2 == 1 && **c > 1)
        .map(|(s, c)| (*s, *c))
        .collect();
    let qos1_dups: usize = seen
        .iter()
        .filter(|(s, _)| *s % 2 == 0)
        .map(|(_, c)| c - 1)
        .sum();
    eprintln!(
        "{what}: kills: 8 (3 with the broker stopped and started); starts {starts:?}; \
         missing {}, QoS 1 duplicates {qos1_dups}, QoS 2 duplicates {}",
        missing.len(),
        qos2_dups.len()
    );
    assert!(
        missing.is_empty(),
        "lost {}, the first: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(qos2_dups.is_empty(), "QoS 2 duplicated: {qos2_dups:?}");
    let distinct: HashSet<_> = starts.iter().collect();
    assert!(
        distinct.len() >= 3,
        "kills did not land mid-stream: {starts:?}"
    );
}
