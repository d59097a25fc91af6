//! A real mosquitto broker per test, in its own temporary directory, on a free port.
//!
//! ```ignore
//! let broker = Broker::start();                       // anonymous, plain TCP
//! let broker = Broker::builder().password("u", "p").persistence(true).start();
//! broker.uri();                                       // "tcp://127.0.0.1:PORT"
//! broker.restart();                                   // same port, same persistence dir
//! ```
//!
//! There is no "skip when mosquitto is missing": a missing broker is a failure, so a test can
//! never pass without having run.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long `start()`/`restart()` wait for the broker to accept connections.
pub const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long `stop()` waits after SIGTERM before it sends SIGKILL.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How many fresh ports `start()` tries when another process takes the one it picked.
const PORT_ATTEMPTS: usize = 10;
/// Interval between readiness probes.
const POLL: Duration = Duration::from_millis(10);

const MISSING: &str = "mosquitto not found: run .ci/run or apt-get install mosquitto";

/// Finds the mosquitto binary: `$PATH`, then `/usr/sbin/mosquitto`.
pub fn find_mosquitto() -> Option<PathBuf> {
    find_in_path("mosquitto").or_else(|| {
        let p = PathBuf::from("/usr/sbin/mosquitto");
        p.is_file().then_some(p)
    })
}

/// Finds an executable by name in `$PATH` (also looks in /usr/sbin and /usr/local/sbin, which
/// a non-root `$PATH` often lacks).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// TLS files for a TLS listener. A hook for later: the harness writes the mosquitto options,
/// the TLS tests supply the files.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA certificate (mosquitto `cafile`) used to verify client certificates.
    pub ca_file: PathBuf,
    /// Server certificate (mosquitto `certfile`).
    pub cert_file: PathBuf,
    /// Server private key (mosquitto `keyfile`).
    pub key_file: PathBuf,
    /// Ask for and verify a client certificate (mosquitto `require_certificate`).
    pub require_certificate: bool,
}

/// Configures a [`Broker`] before it starts. Obtain with [`Broker::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct BrokerBuilder {
    binary: Option<PathBuf>,
    users: Vec<(String, String)>,
    persistence: bool,
    ipv6: bool,
    max_queued_messages: Option<usize>,
    tls: Option<TlsFiles>,
    extra: Vec<String>,
}

impl BrokerBuilder {
    /// Adds a user to the broker's password file (`mosquitto_passwd -b`). With at least one
    /// user, anonymous clients are refused (`allow_anonymous false`).
    pub fn password(mut self, user: &str, password: &str) -> Self {
        self.users.push((user.to_owned(), password.to_owned()));
        self
    }

    /// Turns on persistence, with the database in the broker's temp dir (kept across
    /// [`Broker::restart`]).
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// Also listens on `[::1]` with the same port.
    pub fn listener_ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// Sets mosquitto's `max_queued_messages` (queued messages per client; default 1000).
    pub fn max_queued_messages(mut self, n: usize) -> Self {
        self.max_queued_messages = Some(n);
        self
    }

    /// Makes the listener a TLS listener with these files; [`Broker::uri`] becomes `ssl://`.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Appends a raw line to the config file (global section, after the listeners).
    pub fn extra_config(mut self, line: &str) -> Self {
        self.extra.push(line.to_owned());
        self
    }

    /// Uses this mosquitto binary instead of the one found in `$PATH` / `/usr/sbin`.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Starts the broker and waits until it accepts TCP connections.
    ///
    /// # Panics
    /// When mosquitto is not installed, or does not come up within [`START_DEADLINE`]
    /// (the panic message carries its log).
    pub fn start(self) -> Broker {
        let binary = match self.binary.clone() {
            Some(b) if b.is_file() => b,
            Some(b) => panic!("{MISSING} (no file at {})", b.display()),
            None => find_mosquitto().unwrap_or_else(|| panic!("{MISSING}")),
        };
        let dir = tempfile::Builder::new()
            .prefix("mqttsync-broker-")
            .tempdir()
            .expect("create broker temp dir");
        let mut broker = Broker {
            binary,
            config: self,
            port: 0,
            child: None,
            log_path: dir.path().join("mosquitto.log"),
            stderr_path: dir.path().join("mosquitto.stderr"),
            dir,
        };
        broker.write_password_file();
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            broker.port = free_port();
            match broker.launch() {
                Ok(()) => return broker,
                Err(Launch::PortTaken(why)) => last_failure = why,
                Err(Launch::Failed(why)) => panic!("{why}"),
            }
        }
        panic!("mosquitto: no free port after {PORT_ATTEMPTS} attempts; last: {last_failure}");
    }
}

/// A running mosquitto (see the module doc). Killed on drop; its log goes to stderr when the
/// test is panicking.
#[derive(Debug)]
pub struct Broker {
    binary: PathBuf,
    config: BrokerBuilder,
    port: u16,
    child: Option<Child>,
    log_path: PathBuf,
    stderr_path: PathBuf,
    // Last field: dropped after the child has been killed.
    dir: TempDir,
}

enum Launch {
    /// Another process holds the port (bind failed): retry on another one.
    PortTaken(String),
    /// Anything else: give up.
    Failed(String),
}

impl Broker {
    /// A builder for a broker with non-default settings.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// Starts an anonymous plain-TCP broker (`Broker::builder().start()`).
    pub fn start() -> Broker {
        Self::builder().start()
    }

    /// The TCP port it listens on (on 127.0.0.1, and on ::1 with `listener_ipv6`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host to connect to: `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The server URI in Paho form: `tcp://127.0.0.1:PORT` (`ssl://` with TLS).
    pub fn uri(&self) -> String {
        let scheme = if self.config.tls.is_some() {
            "ssl"
        } else {
            "tcp"
        };
        format!("{scheme}://{}:{}", self.host(), self.port)
    }

    /// The socket address `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The broker's temp dir (config, log, password file, persistence database).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the broker process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Everything the broker has logged so far (all starts), plus what it wrote to stderr.
    pub fn log(&self) -> String {
        let mut log = fs::read_to_string(&self.log_path).unwrap_or_default();
        if let Ok(err) = fs::read_to_string(&self.stderr_path) {
            if !err.trim().is_empty() {
                let _ = write!(log, "--- mosquitto stderr ---\n{err}");
            }
        }
        log
    }

    /// How many times `needle` occurs in the log.
    pub fn log_count(&self, needle: &str) -> usize {
        fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .matches(needle)
            .count()
    }

    /// Waits until the log contains `needle` at least `count` times; false on timeout.
    /// Use it to wait for broker-side events (e.g. `"Received SUBSCRIBE from <id>"`).
    pub fn wait_for_log_count(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        super::wait_until(timeout, || self.log_count(needle) >= count)
    }

    /// Waits until the log contains `needle`; false on timeout.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for_log_count(needle, 1, timeout)
    }

    /// Stops the broker with SIGTERM and waits for it to exit (SIGKILL after
    /// [`STOP_DEADLINE`]). With persistence, mosquitto saves its database on SIGTERM.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, libc::SIGTERM);
        let start = Instant::now();
        let deadline = start + STOP_DEADLINE;
        // Once (1 run in several hundred) mosquitto 2.0.11 went on running after a SIGTERM
        // sent right after its start-up, as if the signal was lost; a repeated SIGTERM
        // does no harm (its handler only clears the run flag), so it is sent again each
        // second.
        let mut resent = start;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    if resent.elapsed() >= Duration::from_secs(1) {
                        eprintln!(
                            "mosquitto still running {:?} after SIGTERM: sending it again",
                            start.elapsed()
                        );
                        signal(&child, libc::SIGTERM);
                        resent = Instant::now();
                    }
                    std::thread::sleep(POLL)
                }
                _ => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("mosquitto did not exit within {STOP_DEADLINE:?} of SIGTERM; log printed below");
    }

    /// Freezes the broker (SIGSTOP): its sockets stay open but nothing is answered, like a
    /// dead peer behind a live link.
    pub fn pause(&self) {
        if let Some(child) = self.child.as_ref() {
            signal(child, libc::SIGSTOP);
        }
    }

    /// Lets a paused broker run again (SIGCONT).
    pub fn resume(&self) {
        if let Some(child) = self.child.as_ref() {
            signal(child, libc::SIGCONT);
        }
    }

    /// Kills the broker with SIGKILL (no database save) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Gives `user` the password `password` in the broker's password file (adding the user
    /// if new); a running broker reads it again after [`Broker::restart`].
    pub fn set_password(&mut self, user: &str, password: &str) {
        match self.config.users.iter_mut().find(|(u, _)| u == user) {
            Some(entry) => entry.1 = password.to_owned(),
            None => self
                .config
                .users
                .push((user.to_owned(), password.to_owned())),
        }
        self.write_password_file();
    }

    /// Process id of the running broker.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the broker (SIGTERM) if it runs, then starts it again with the same config, on
    /// the same port and with the same persistence directory, and waits until it accepts
    /// connections.
    ///
    /// # Panics
    /// When it does not come up within [`START_DEADLINE`] (e.g. someone else took the port).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts a stopped or killed broker again (same port, same directory).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: broker is running");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match self.launch() {
                Ok(()) => return,
                // The old socket may linger, or another process took the port meanwhile.
                Err(Launch::PortTaken(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(Launch::PortTaken(why) | Launch::Failed(why)) => {
                    panic!("restart on port {}: {why}", self.port)
                }
            }
        }
    }

    fn write_password_file(&self) {
        let Some(((first_user, first_pass), rest)) = self.config.users.split_first() else {
            return;
        };
        let passwd = find_in_path("mosquitto_passwd").unwrap_or_else(|| {
            panic!("mosquitto_passwd not found: run .ci/run or apt-get install mosquitto")
        });
        let file = self.dir.path().join("passwd");
        let run = |args: &[&str]| {
            let out = Command::new(&passwd)
                .args(args)
                .output()
                .expect("run mosquitto_passwd");
            assert!(
                out.status.success(),
                "mosquitto_passwd {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let f = file.to_str().expect("utf-8 temp path");
        run(&["-b", "-c", f, first_user, first_pass]);
        for (user, pass) in rest {
            run(&["-b", f, user, pass]);
        }
    }

    fn config_text(&self) -> String {
        let c = &self.config;
        let dir = self.dir.path();
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        // mosquitto started as root drops to user "mosquitto", which cannot write our temp
        // dir; "root" keeps it as is (ignored when not started as root).
        line("user root".into());
        line(format!("listener {} 127.0.0.1", self.port));
        if c.ipv6 {
            line(format!("listener {} ::1", self.port));
        }
        if let Some(tls) = &c.tls {
            // Without per_listener_settings these apply to the listeners above.
            line(format!("cafile {}", tls.ca_file.display()));
            line(format!("certfile {}", tls.cert_file.display()));
            line(format!("keyfile {}", tls.key_file.display()));
            line(format!("require_certificate {}", tls.require_certificate));
        }
        if c.users.is_empty() {
            line("allow_anonymous true".into());
        } else {
            line("allow_anonymous false".into());
            line(format!("password_file {}", dir.join("passwd").display()));
        }
        line(format!("log_dest file {}", self.log_path.display()));
        line("log_type all".into());
        line("log_timestamp_format %H:%M:%S".into());
        line("connection_messages true".into());
        line("set_tcp_nodelay true".into());
        if c.persistence {
            line("persistence true".into());
            // mosquitto concatenates location and file name: keep the trailing slash.
            line(format!("persistence_location {}/", dir.display()));
        } else {
            line("persistence false".into());
        }
        if let Some(n) = c.max_queued_messages {
            line(format!("max_queued_messages {n}"));
        }
        for extra in &c.extra {
            line(extra.clone());
        }
        s
    }

    /// Writes the config and runs mosquitto on `self.port`; returns once it accepts
    /// connections.
    fn launch(&mut self) -> Result<(), Launch> {
        let conf_path = self.dir.path().join("mosquitto.conf");
        fs::write(&conf_path, self.config_text()).expect("write mosquitto.conf");
        // Only what this start logs counts for readiness (the log survives restarts).
        let log_start = fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("open mosquitto.stderr");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("dup stderr file"))
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{MISSING} ({}: {e})", self.binary.display()));
        self.child = Some(child);

        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let new_log = read_from(&self.log_path, log_start);
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                let why = format!(
                    "mosquitto exited during start on port {} ({status}); its log is printed below",
                    self.port,
                );
                return Err(if new_log.contains("Address already in use") {
                    Launch::PortTaken(why)
                } else {
                    Launch::Failed(why)
                });
            }
            // "running" is logged once every listener is bound, so the port is ours; the
            // connect proves it accepts.
            if new_log.contains(" running") && self.accepts_connections() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(Launch::Failed(format!(
                    "mosquitto did not accept connections on port {} within {START_DEADLINE:?}; \
                     its log is printed below",
                    self.port,
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    fn accepts_connections(&self) -> bool {
        TcpStream::connect_timeout(&self.addr(), Duration::from_millis(500)).is_ok()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "===== mosquitto log (port {}, {}) =====\n{}===== end of mosquitto log =====",
                self.port,
                self.dir.path().display(),
                self.log()
            );
        }
    }
}

/// A port that was free a moment ago: bind 127.0.0.1:0, read the port, release it.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            s = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    s
}

fn signal(child: &Child, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers; `pid` is our own child, not yet reaped (we hold
    // its `Child` and have not waited on it), so the pid cannot have been reused.
    unsafe {
        libc::kill(pid, sig);
    }
}
