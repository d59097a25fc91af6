//! A scripted fake MQTT broker built on our own codec, for what mosquitto won't do:
//! refused CONNACKs, malformed packets, a server that stops answering, floods.
//!
//! ```ignore
//! let fake = FakeBroker::start(
//!     Script::new()
//!         .handshake()                        // expect CONNECT, answer CONNACK 0
//!         .expect(Kind::Publish)              // decode with the CONNECT's version
//!         .send_raw(vec![0x60, 0x02, 0, 1])   // PUBREL with bad flags
//!         .expect(Kind::Disconnect)
//!         .expect_closed(),
//! );
//! let client = Client::connect(ConnectOptions::new(&fake.uri()))?;
//! fake.join().unwrap();                       // the script result, with a log on failure
//! fake.received();                            // every packet the fake decoded (all of them
//!                                             // once joined)
//! ```
//!
//! One thread per fake. It accepts one connection when it starts and another at each
//! [`Action::Accept`]; every step has a deadline (default [`STEP_DEADLINE`], changed by
//! [`Action::Deadline`]) and a failing step ends the script with a message naming the step.
//! Waiting is done on sockets with short read/write timeouts (so the fake notices when the
//! test is over), never by sleeping.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqttsync::internals::proto::codec::{decode, encode, Framer, MAX_REMAINING_LENGTH};
use mqttsync::internals::proto::{
    ConnAck, Packet, Properties, ProtocolVersion, PubResp, Publish, QoS, SubAck, UnsubAck,
};

/// Default deadline of each step.
pub const STEP_DEADLINE: Duration = Duration::from_secs(10);
/// Longest a [`Action::Stall`] keeps the socket open when nobody releases it.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);
/// Granularity at which blocked reads/writes look at the stop flag and the deadline.
const TICK: Duration = Duration::from_millis(20);

/// Packet kinds, to say what a step expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CONNECT
    Connect,
    /// CONNACK
    ConnAck,
    /// PUBLISH
    Publish,
    /// PUBACK
    PubAck,
    /// PUBREC
    PubRec,
    /// PUBREL
    PubRel,
    /// PUBCOMP
    PubComp,
    /// SUBSCRIBE
    Subscribe,
    /// SUBACK
    SubAck,
    /// UNSUBSCRIBE
    Unsubscribe,
    /// UNSUBACK
    UnsubAck,
    /// PINGREQ
    PingReq,
    /// PINGRESP
    PingResp,
    /// DISCONNECT
    Disconnect,
    /// AUTH
    Auth,
}

impl Kind {
    /// The kind of `p`.
    pub fn of(p: &Packet) -> Kind {
        match p {
            Packet::Connect(_) => Kind::Connect,
            Packet::ConnAck(_) => Kind::ConnAck,
            Packet::Publish(_) => Kind::Publish,
            Packet::PubAck(_) => Kind::PubAck,
            Packet::PubRec(_) => Kind::PubRec,
            Packet::PubRel(_) => Kind::PubRel,
            Packet::PubComp(_) => Kind::PubComp,
            Packet::Subscribe(_) => Kind::Subscribe,
            Packet::SubAck(_) => Kind::SubAck,
            Packet::Unsubscribe(_) => Kind::Unsubscribe,
            Packet::UnsubAck(_) => Kind::UnsubAck,
            Packet::PingReq => Kind::PingReq,
            Packet::PingResp => Kind::PingResp,
            Packet::Disconnect(_) => Kind::Disconnect,
            Packet::Auth(_) => Kind::Auth,
        }
    }
}

/// A flood of QoS 0 publishes, written as fast as the socket accepts them.
#[derive(Debug, Clone)]
pub struct Flood {
    /// Topic of every message.
    pub topic: String,
    /// Payload size; the first 8 bytes carry the message's sequence number (little endian).
    pub payload_len: usize,
    /// Number of messages.
    pub count: u64,
    /// No progress for this long counts as "the socket stopped accepting data": the
    /// stats record it and the signal `"flood-blocked"` is raised (once).
    pub block_after: Duration,
    /// The flood fails when it is still running after this long.
    pub limit: Duration,
}

/// Progress of a [`Flood`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodStats {
    /// Bytes the socket accepted.
    pub bytes_accepted: u64,
    /// Messages written completely.
    pub messages_sent: u64,
    /// `bytes_accepted` when the socket first stopped accepting data for `block_after`.
    pub blocked_at_bytes: Option<u64>,
    /// `messages_sent` at that moment.
    pub blocked_at_messages: Option<u64>,
    /// The peer closed the connection before the flood was over.
    pub ended_by_peer: bool,
}

/// A custom step: gets the current connection.
pub type CustomStep = Box<dyn FnOnce(&mut Conn) -> Result<(), String> + Send>;
/// Builds a packet from the last packet received.
pub type ReplyFn = Box<dyn FnOnce(&Packet) -> Packet + Send>;

/// One step of a script.
pub enum Action {
    /// Read and decode the next packet (version from the CONNECT); fail if it is of
    /// another kind or the peer closes first.
    Expect(Kind),
    /// Encode and send a packet.
    Send(Packet),
    /// Send bytes as they are.
    SendRaw(Vec<u8>),
    /// Send the packet the closure builds from the last packet received.
    Reply(ReplyFn),
    /// Send the normal answer to the last packet received (CONNACK 0, PUBACK/PUBREC,
    /// PUBCOMP, SUBACK granting what was asked, UNSUBACK, PINGRESP).
    AckLast,
    /// Raise a named signal the test can wait for ([`FakeBroker::wait_signal`]).
    Signal(&'static str),
    /// Half-close (FIN), then read and record until the peer closes too (no RST).
    Close,
    /// Read until the peer closes; fail if a packet arrives first.
    ExpectClosed,
    /// Read and record everything without answering until the peer closes.
    Drain,
    /// Stop reading and writing, keep the socket open until [`FakeBroker::join`] or drop.
    Stall,
    /// Accept the next connection (dropping the current one).
    Accept,
    /// Deadline of the steps after this one.
    Deadline(Duration),
    /// Write a flood of QoS 0 publishes (see [`Flood`]).
    Flood(Flood),
    /// Anything else.
    Custom(CustomStep),
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Expect(k) => write!(f, "Expect({k:?})"),
            Action::Send(p) => write!(f, "Send({})", p.name()),
            Action::SendRaw(b) => write!(f, "SendRaw({b:02x?})"),
            Action::Reply(_) => f.write_str("Reply"),
            Action::AckLast => f.write_str("AckLast"),
            Action::Signal(s) => write!(f, "Signal({s})"),
            Action::Close => f.write_str("Close"),
            Action::ExpectClosed => f.write_str("ExpectClosed"),
            Action::Drain => f.write_str("Drain"),
            Action::Stall => f.write_str("Stall"),
            Action::Accept => f.write_str("Accept"),
            Action::Deadline(d) => write!(f, "Deadline({d:?})"),
            Action::Flood(fl) => write!(f, "Flood({} x {} bytes)", fl.count, fl.payload_len),
            Action::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A list of steps, built fluently.
#[derive(Debug, Default)]
pub struct Script {
    actions: Vec<Action>,
}

impl From<Vec<Action>> for Script {
    fn from(actions: Vec<Action>) -> Self {
        Script { actions }
    }
}

impl Script {
    /// An empty script (the fake accepts one connection and closes it).
    pub fn new() -> Self {
        Script::default()
    }

    /// Appends a step.
    pub fn then(mut self, a: Action) -> Self {
        self.actions.push(a);
        self
    }

    /// Expect CONNECT, answer CONNACK 0 without session present.
    pub fn handshake(self) -> Self {
        self.expect(Kind::Connect).send(connack(0, false))
    }

    /// [`Action::Expect`].
    pub fn expect(self, k: Kind) -> Self {
        self.then(Action::Expect(k))
    }

    /// [`Action::Send`].
    pub fn send(self, p: Packet) -> Self {
        self.then(Action::Send(p))
    }

    /// [`Action::SendRaw`].
    pub fn send_raw(self, b: impl Into<Vec<u8>>) -> Self {
        self.then(Action::SendRaw(b.into()))
    }

    /// [`Action::Reply`].
    pub fn reply(self, f: impl FnOnce(&Packet) -> Packet + Send + 'static) -> Self {
        self.then(Action::Reply(Box::new(f)))
    }

    /// [`Action::AckLast`].
    pub fn ack_last(self) -> Self {
        self.then(Action::AckLast)
    }

    /// [`Action::Signal`].
    pub fn signal(self, name: &'static str) -> Self {
        self.then(Action::Signal(name))
    }

    /// [`Action::Close`].
    pub fn close(self) -> Self {
        self.then(Action::Close)
    }

    /// [`Action::ExpectClosed`].
    pub fn expect_closed(self) -> Self {
        self.then(Action::ExpectClosed)
    }

    /// [`Action::Drain`].
    pub fn drain(self) -> Self {
        self.then(Action::Drain)
    }

    /// [`Action::Stall`].
    pub fn stall(self) -> Self {
        self.then(Action::Stall)
    }

    /// [`Action::Accept`].
    pub fn accept(self) -> Self {
        self.then(Action::Accept)
    }

    /// [`Action::Deadline`].
    pub fn deadline(self, d: Duration) -> Self {
        self.then(Action::Deadline(d))
    }

    /// [`Action::Flood`].
    pub fn flood(self, f: Flood) -> Self {
        self.then(Action::Flood(f))
    }

    /// [`Action::Custom`].
    pub fn custom(self, f: impl FnOnce(&mut Conn) -> Result<(), String> + Send + 'static) -> Self {
        self.then(Action::Custom(Box::new(f)))
    }
}

// ---- packet helpers ----

/// CONNACK with a code and the session present flag.
pub fn connack(code: u8, session_present: bool) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present,
        code,
        properties: Properties::new(),
    })
}

/// The packet identifier of a packet that has one (0 otherwise).
pub fn pkid(p: &Packet) -> u16 {
    match p {
        Packet::Publish(p) => p.pkid,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => r.pkid,
        Packet::Subscribe(s) => s.pkid,
        Packet::SubAck(s) => s.pkid,
        Packet::Unsubscribe(u) => u.pkid,
        Packet::UnsubAck(u) => u.pkid,
        _ => 0,
    }
}

/// Raw bytes of a packet: first byte, remaining length as given (may lie), then `body`.
pub fn raw(header: u8, remaining: usize, body: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    let mut v = remaining;
    loop {
        let mut b = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        out.push(b);
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// The normal answer to `p`, if it has one.
pub fn ack_for(p: &Packet, version: ProtocolVersion) -> Option<Packet> {
    Some(match p {
        Packet::Connect(_) => connack(0, false),
        Packet::Publish(p) if p.qos == QoS::AtLeastOnce => Packet::PubAck(PubResp::new(p.pkid)),
        Packet::Publish(p) if p.qos == QoS::ExactlyOnce => Packet::PubRec(PubResp::new(p.pkid)),
        Packet::PubRel(r) => Packet::PubComp(PubResp::new(r.pkid)),
        Packet::Subscribe(s) => Packet::SubAck(SubAck {
            pkid: s.pkid,
            return_codes: s.filters.iter().map(|f| f.options.qos as u8).collect(),
            properties: Properties::new(),
        }),
        Packet::Unsubscribe(u) => Packet::UnsubAck(UnsubAck {
            pkid: u.pkid,
            reason_codes: if version.is_v5() {
                vec![0; u.filters.len()]
            } else {
                Vec::new()
            },
            properties: Properties::new(),
        }),
        Packet::PingReq => Packet::PingResp,
        _ => return None,
    })
}

// ---- shared state ----

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<(usize, Packet)>>,
    log: Mutex<Vec<String>>,
    signals: Mutex<Vec<&'static str>>,
    signal_cv: Condvar,
    released: Mutex<bool>,
    release_cv: Condvar,
    stop: AtomicBool,
    flood: Mutex<FloodStats>,
    started: Mutex<Option<Instant>>,
}

impl Shared {
    fn log(&self, msg: String) {
        let t0 = *self.started.lock().unwrap_or_else(|e| e.into_inner());
        let t = t0.map(|t| t.elapsed()).unwrap_or_default();
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{:>8.3}s {msg}", t.as_secs_f64()));
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The connection the script is working on; given to [`Action::Custom`] steps.
pub struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    framer: Framer,
    /// Protocol version (from the last CONNECT; 3.1.1 before any).
    pub version: ProtocolVersion,
    /// Index of this connection (0 for the first).
    pub index: usize,
    /// Deadline of a step.
    pub step_deadline: Duration,
    last: Option<Packet>,
    shared: Arc<Shared>,
}

impl Conn {
    /// The last packet received on this connection.
    pub fn last(&self) -> Option<&Packet> {
        self.last.as_ref()
    }

    /// Reads the next packet within `within`: `Ok(None)` when the peer closed (EOF or reset).
    pub fn read_packet(&mut self, within: Duration) -> Result<Option<Packet>, String> {
        let deadline = Instant::now() + within;
        let mut tmp = [0u8; 16 * 1024];
        loop {
            match self.framer.next_frame(&mut self.rbuf) {
                Ok(Some(frame)) => {
                    let packet = decode(frame, self.version)
                        .map_err(|e| format!("cannot decode a packet from the client: {e}"))?;
                    if let Packet::Connect(c) = &packet {
                        self.version = c.protocol;
                    }
                    self.shared
                        .log(format!("conn {} <- {}", self.index, describe(&packet)));
                    self.shared
                        .received
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((self.index, packet.clone()));
                    self.last = Some(packet.clone());
                    return Ok(Some(packet));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("cannot frame the client's bytes: {e}")),
            }
            if self.shared.stopped() {
                return Err("stopped: the test ended".into());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("no packet from the client within {within:?}"));
            }
            let _ = self
                .stream
                .set_read_timeout(Some((deadline - now).clamp(Duration::from_millis(1), TICK)));
            match self.stream.read(&mut tmp) {
                Ok(0) => {
                    self.shared.log(format!("conn {}: peer closed", self.index));
                    return Ok(None);
                }
                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    self.shared
                        .log(format!("conn {}: peer reset the connection", self.index));
                    return Ok(None);
                }
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// Reads the next packet and checks its kind.
    pub fn expect(&mut self, kind: Kind) -> Result<Packet, String> {
        match self.read_packet(self.step_deadline)? {
            Some(p) if Kind::of(&p) == kind => Ok(p),
            Some(p) => Err(format!("expected {kind:?}, got {}", describe(&p))),
            None => Err(format!(
                "expected {kind:?}, but the client closed the connection"
            )),
        }
    }

    /// Encodes and sends a packet.
    pub fn send(&mut self, p: &Packet) -> Result<(), String> {
        let mut out = Vec::new();
        encode(p, self.version, &mut out).map_err(|e| format!("cannot encode {p:?}: {e}"))?;
        self.shared
            .log(format!("conn {} -> {}", self.index, describe(p)));
        self.write_all(&out)
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.shared
            .log(format!("conn {} -> raw {:02x?}", self.index, bytes));
        self.write_all(bytes)
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        let deadline = Instant::now() + self.step_deadline;
        let _ = self.stream.set_write_timeout(Some(TICK));
        while !bytes.is_empty() {
            if self.shared.stopped() {
                return Err("stopped: the test ended".into());
            }
            if Instant::now() >= deadline {
                return Err(format!("write blocked for {:?}", self.step_deadline));
            }
            match self.stream.write(bytes) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        Ok(())
    }

    /// Reads and records until the peer closes; with `strict`, a packet is a failure.
    fn until_closed(&mut self, strict: bool) -> Result<(), String> {
        let deadline = Instant::now() + self.step_deadline;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the client did not close the connection within {:?}",
                    self.step_deadline
                ));
            }
            match self.read_packet(left) {
                Ok(None) => return Ok(()),
                Ok(Some(p)) if strict => {
                    return Err(format!(
                        "expected the connection to close, got {}",
                        describe(&p)
                    ))
                }
                Ok(Some(_)) => {}
                Err(e) if !strict && e.starts_with("cannot") => {
                    // Undecodable bytes while draining: skip them.
                    self.rbuf.clear();
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn flood(&mut self, f: &Flood) -> Result<(), String> {
        let payload_len = f.payload_len.max(8);
        let publish = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: f.topic.clone(),
            pkid: 0,
            payload: Bytes::from(vec![0xA5u8; payload_len]),
            properties: Properties::new(),
        });
        let mut wire = Vec::new();
        encode(&publish, self.version, &mut wire).map_err(|e| format!("encode: {e}"))?;
        let seq_at = wire.len() - payload_len;
        let _ = self.stream.set_write_timeout(Some(TICK));
        let start = Instant::now();
        let mut last_progress = Instant::now();
        self.shared.log(format!(
            "conn {} flood: {} x {} bytes",
            self.index, f.count, payload_len
        ));
        for seq in 0..f.count {
            wire[seq_at..seq_at + 8].copy_from_slice(&seq.to_le_bytes());
            let mut pos = 0;
            while pos < wire.len() {
                if self.shared.stopped() {
                    return Err("stopped: the test ended during the flood".into());
                }
                if start.elapsed() > f.limit {
                    return Err(format!("flood still running after {:?}", f.limit));
                }
                match self.stream.write(&wire[pos..]) {
                    Ok(0) => return Err("write returned 0".into()),
                    Ok(n) => {
                        pos += n;
                        last_progress = Instant::now();
                        let mut st = self.shared.flood.lock().unwrap_or_else(|e| e.into_inner());
                        st.bytes_accepted += n as u64;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                        ) =>
                    {
                        if last_progress.elapsed() >= f.block_after {
                            let mut st =
                                self.shared.flood.lock().unwrap_or_else(|e| e.into_inner());
                            if st.blocked_at_bytes.is_none() {
                                st.blocked_at_bytes = Some(st.bytes_accepted);
                                st.blocked_at_messages = Some(st.messages_sent);
                                let msg = format!(
                                    "flood blocked after {} bytes / {} messages",
                                    st.bytes_accepted, st.messages_sent
                                );
                                drop(st);
                                self.shared.log(msg);
                                raise(&self.shared, "flood-blocked");
                            }
                        }
                    }
                    Err(e) => {
                        self.shared.log(format!("flood ended by the peer: {e}"));
                        self.shared
                            .flood
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .ended_by_peer = true;
                        raise(&self.shared, "flood-ended");
                        return Ok(());
                    }
                }
            }
            self.shared
                .flood
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .messages_sent += 1;
        }
        self.shared.log("flood done".into());
        raise(&self.shared, "flood-done");
        raise(&self.shared, "flood-ended");
        Ok(())
    }
}

fn raise(shared: &Shared, name: &'static str) {
    shared
        .signals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(name);
    shared.signal_cv.notify_all();
}

/// Short description of a packet for logs and messages.
pub fn describe(p: &Packet) -> String {
    match p {
        Packet::Publish(p) => format!(
            "PUBLISH(topic {:?}, qos {}, pkid {}, dup {}, {} bytes)",
            p.topic,
            p.qos as u8,
            p.pkid,
            p.dup,
            p.payload.len()
        ),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            format!("{}(pkid {}, reason {:#04x})", p.name(), r.pkid, r.reason)
        }
        Packet::Disconnect(d) => format!("DISCONNECT(reason {:#04x})", d.reason),
        Packet::ConnAck(a) => format!("CONNACK(code {:#04x}, sp {})", a.code, a.session_present),
        other => format!("{}(pkid {})", other.name(), pkid(other)),
    }
}

/// A running fake broker.
pub struct FakeBroker {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), String>>>,
    result: Option<Result<(), String>>,
}

impl FakeBroker {
    /// Binds 127.0.0.1 on a free port and runs `script` on a thread: accepts one
    /// connection, then runs the steps in order.
    pub fn start(script: impl Into<Script>) -> FakeBroker {
        let script = script.into();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared::default());
        *shared.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-broker".into())
            .spawn(move || run(listener, script, sh))
            .expect("spawn fake broker");
        FakeBroker {
            addr,
            shared,
            thread: Some(thread),
            result: None,
        }
    }

    /// `tcp://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Every packet the fake decoded, in order, over all connections.
    pub fn received(&self) -> Vec<Packet> {
        self.received_all().into_iter().map(|(_, p)| p).collect()
    }

    /// The packets decoded on connection `index` (0 = first).
    pub fn received_on(&self, index: usize) -> Vec<Packet> {
        self.received_all()
            .into_iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, p)| p)
            .collect()
    }

    fn received_all(&self) -> Vec<(usize, Packet)> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What the fake did so far, one line per event, for failure messages.
    pub fn log(&self) -> String {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Waits until the script has raised `name` (true) or `timeout` passed (false).
    pub fn wait_signal(&self, name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self
            .shared
            .signals
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            if g.contains(&name) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .shared
                .signal_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Progress of the flood step.
    pub fn flood_stats(&self) -> FloodStats {
        *self.shared.flood.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a [`Action::Stall`] (the socket closes when the script ends).
    pub fn release(&self) {
        *self
            .shared
            .released
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.release_cv.notify_all();
    }

    /// Releases a stall and waits for the script to end; its result, with the fake's log
    /// appended to a failure. Calling it again returns the same result; the packets
    /// received stay available ([`received`](Self::received)) and are complete after it.
    pub fn join(&mut self) -> Result<(), String> {
        self.release();
        if let Some(t) = self.thread.take() {
            let r = match t.join() {
                Ok(r) => r,
                Err(_) => Err("the fake broker thread panicked".into()),
            };
            self.result =
                Some(r.map_err(|e| format!("{e}\n--- fake broker log ---\n{}", self.log())));
        }
        self.result.clone().unwrap_or(Ok(()))
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.stop.store(true, Ordering::SeqCst);
            self.release();
            let _ = t.join();
        }
    }
}

fn accept(listener: &TcpListener, shared: &Shared, within: Duration) -> Result<TcpStream, String> {
    let deadline = Instant::now() + within;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("set_nonblocking: {e}"))?;
    loop {
        match listener.accept() {
            Ok((s, peer)) => {
                s.set_nonblocking(false)
                    .map_err(|e| format!("set_nonblocking: {e}"))?;
                let _ = s.set_nodelay(true);
                shared.log(format!("accepted {peer}"));
                return Ok(s);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("accept failed: {e}")),
        }
        if shared.stopped() {
            return Err("stopped: the test ended while waiting for a connection".into());
        }
        if Instant::now() >= deadline {
            return Err(format!("no connection within {within:?}"));
        }
        // Nothing to block on for a non-blocking listener: poll it at a short interval.
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn run(listener: TcpListener, script: Script, shared: Arc<Shared>) -> Result<(), String> {
    let mut step_deadline = STEP_DEADLINE;
    let stream = accept(&listener, &shared, step_deadline)
        .map_err(|e| format!("step 0 (initial accept): {e}"))?;
    let mut conn = Conn {
        stream,
        rbuf: BytesMut::with_capacity(16 * 1024),
        framer: Framer::new(MAX_REMAINING_LENGTH + 5),
        version: ProtocolVersion::V311,
        index: 0,
        step_deadline,
        last: None,
        shared: shared.clone(),
    };
    for (i, action) in script.actions.into_iter().enumerate() {
        let what = format!("{action:?}");
        let r = step(&listener, &mut conn, &mut step_deadline, action);
        if let Err(e) = r {
            shared.log(format!("step {} {what} failed: {e}", i + 1));
            return Err(format!("step {} {what}: {e}", i + 1));
        }
    }
    shared.log("script done".into());
    Ok(())
}

fn step(
    listener: &TcpListener,
    conn: &mut Conn,
    step_deadline: &mut Duration,
    action: Action,
) -> Result<(), String> {
    match action {
        Action::Expect(k) => conn.expect(k).map(|_| ()),
        Action::Send(p) => conn.send(&p),
        Action::SendRaw(b) => conn.send_raw(&b),
        Action::Reply(f) => {
            let last = conn.last.clone().ok_or("Reply: nothing received yet")?;
            let p = f(&last);
            conn.send(&p)
        }
        Action::AckLast => {
            let last = conn.last.clone().ok_or("AckLast: nothing received yet")?;
            let p = ack_for(&last, conn.version)
                .ok_or_else(|| format!("AckLast: no answer to {}", describe(&last)))?;
            conn.send(&p)
        }
        Action::Signal(name) => {
            conn.shared.log(format!("signal {name}"));
            raise(&conn.shared, name);
            Ok(())
        }
        Action::Close => {
            conn.shared.log(format!("conn {}: half-close", conn.index));
            let _ = conn.stream.shutdown(Shutdown::Write);
            conn.until_closed(false)
        }
        Action::ExpectClosed => conn.until_closed(true),
        Action::Drain => conn.until_closed(false),
        Action::Stall => {
            conn.shared.log(format!("conn {}: stall", conn.index));
            let deadline = Instant::now() + STALL_LIMIT;
            let mut g = conn
                .shared
                .released
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            while !*g && Instant::now() < deadline {
                g = conn
                    .shared
                    .release_cv
                    .wait_timeout(g, deadline.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            Ok(())
        }
        Action::Accept => {
            let stream = accept(listener, &conn.shared, *step_deadline)?;
            conn.stream = stream;
            conn.rbuf.clear();
            conn.index += 1;
            conn.last = None;
            Ok(())
        }
        Action::Deadline(d) => {
            *step_deadline = d;
            conn.step_deadline = d;
            Ok(())
        }
        Action::Flood(f) => conn.flood(&f),
        Action::Custom(f) => f(conn),
    }
}
