//! Shared test harness: include with `mod common;` from any integration test.
//!
//! - [`Broker`]: a real mosquitto per test (see `broker.rs`).
//! - [`FakeBroker`]: a scripted fake broker on our own codec (see `fake_broker.rs`).
//! - [`FaultProxy`]: a TCP proxy that cuts, stalls and slows connections (see
//!   `fault_proxy.rs`).
//! - [`mosquitto_pub`], [`mosquitto_sub`], [`mosquitto_sub_ready`]: the real CLI clients
//!   against a harness broker, with a deadline, returning their output.
//! - [`pki`]: a generated test PKI and TLS brokers (see `pki.rs`).
//! - [`unique_client_id`], [`wait_until`], [`subscribed`].

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod broker;
pub mod clib;
pub mod fake_broker;
pub mod fault_proxy;
#[cfg(target_os = "linux")]
pub mod pki;
pub mod run_dir;
pub mod stream_kill;

#[allow(unused_imports)] // each test binary uses a different part
pub use broker::{find_in_path, find_mosquitto, Broker, BrokerBuilder, TlsFiles};
#[allow(unused_imports)]
pub use clib::*;
#[allow(unused_imports)]
pub use fake_broker::{Action, FakeBroker, Flood, FloodStats, Kind, Script};
#[allow(unused_imports)]
pub use fault_proxy::{Direction, FaultProxy, ProxyStats};
#[allow(unused_imports)]
pub use run_dir::{files_under, run_dir, run_subdir};
#[allow(unused_imports)]
pub use stream_kill::LineProc;

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default deadline for a CLI tool run and for waits in tests.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A client id unique within this machine for the life of the test run: `prefix`, the
/// process id and a counter. At most 23 characters (the MQTT 3.1 limit) when `prefix` has
/// at most 8; a longer prefix is cut.
pub fn unique_client_id(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix: String = prefix.chars().take(8).collect();
    format!("{prefix}-{:x}-{n:x}", std::process::id())
}

/// A Rust client (id from `prefix`) connected to `uri` and subscribed to `filter` at
/// `qos`: the observer of what C programs under test deliver.
pub fn subscribed(uri: &str, prefix: &str, filter: &str, qos: mqttsync::QoS) -> mqttsync::Client {
    let sub = mqttsync::Client::connect(
        mqttsync::ConnectOptions::new(uri).client_id(unique_client_id(prefix)),
    )
    .expect("subscriber connects");
    sub.subscribe(filter, qos).expect("subscribe");
    sub
}

/// Polls `cond` every few milliseconds until it returns true (→ `true`) or `timeout` has
/// passed (→ `false`). For conditions with no event to wait on; assert on the result.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return cond();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a finished CLI tool run produced.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status; `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether the deadline passed and the tool was killed.
    pub timed_out: bool,
}

impl CliOutput {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The exit code, if it exited by itself.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Panics with the whole output unless the run succeeded; returns `self` for chaining.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "command failed: {self:#?}");
        self
    }
}

/// A CLI tool running in the background. Killed on drop if still running.
#[derive(Debug)]
pub struct CliProcess {
    command: String,
    child: Option<Child>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl CliProcess {
    /// Spawns `tool` with `-h 127.0.0.1 -p PORT` for `broker`, then `args`.
    ///
    /// # Panics
    /// When the tool is not installed (mosquitto-clients).
    pub fn spawn(tool: &str, broker: &Broker, args: &[&str]) -> CliProcess {
        let port = broker.port().to_string();
        let mut full: Vec<&str> = vec!["-h", broker.host(), "-p", &port];
        full.extend_from_slice(args);
        Self::spawn_raw(tool, &full)
    }

    /// Spawns `tool` with exactly `args`.
    pub fn spawn_raw(tool: &str, args: &[&str]) -> CliProcess {
        let path = find_in_path(tool).unwrap_or_else(|| {
            panic!("{tool} not found: run .ci/run or apt-get install mosquitto-clients")
        });
        let mut child = Command::new(&path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", path.display()));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        CliProcess {
            command: format!("{tool} {}", args.join(" ")),
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits up to [`DEADLINE`] for the tool to exit.
    pub fn wait(self) -> CliOutput {
        self.wait_timeout(DEADLINE)
    }

    /// Waits up to `timeout` for the tool to exit; kills it after that (`timed_out`).
    pub fn wait_timeout(mut self, timeout: Duration) -> CliOutput {
        let mut child = self.child.take().expect("child present until waited");
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    timed_out = true;
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let text = |h: Option<JoinHandle<Vec<u8>>>| {
            h.and_then(|h| h.join().ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        CliOutput {
            command: self.command.clone(),
            status,
            stdout: text(self.stdout.take()),
            stderr: text(self.stderr.take()),
            timed_out,
        }
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs `mosquitto_pub -h 127.0.0.1 -p PORT <args>` to completion (deadline [`DEADLINE`]).
pub fn mosquitto_pub(broker: &Broker, args: &[&str]) -> CliOutput {
    CliProcess::spawn("mosquitto_pub", broker, args).wait()
}

/// Spawns `mosquitto_sub -h 127.0.0.1 -p PORT <args>` in the background; collect its output
/// with [`CliProcess::wait`]. Pass `-C n` and `-W secs` so it ends by itself.
pub fn mosquitto_sub(broker: &Broker, args: &[&str]) -> CliProcess {
    CliProcess::spawn("mosquitto_sub", broker, args)
}

/// Spawns `mosquitto_sub -i <client_id> <args>` and returns once the broker has logged its
/// SUBSCRIBE (no sleeping: messages published after this reach it).
///
/// # Panics
/// When the broker does not see the SUBSCRIBE within [`DEADLINE`].
pub fn mosquitto_sub_ready(broker: &Broker, client_id: &str, args: &[&str]) -> CliProcess {
    let needle = format!("Received SUBSCRIBE from {client_id}\n");
    let before = broker.log_count(&needle);
    let mut full = vec!["-i", client_id];
    full.extend_from_slice(args);
    let sub = mosquitto_sub(broker, &full);
    if !broker.wait_for_log_count(&needle, before + 1, DEADLINE) {
        let out = sub.wait_timeout(Duration::ZERO);
        panic!("broker never saw the SUBSCRIBE of {client_id}: {out:#?}");
    }
    sub
}
