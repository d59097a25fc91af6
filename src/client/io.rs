//! The per-client I/O thread: owns the stream and the session, serves requests.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::{Receiver, TryRecvError};
use mio::unix::SourceFd;
use mio::{Interest, Poll, Token, Waker};

use super::options::{
    ConnectOptions, HttpOptions, LostCallback, Message, ReconnectOptions, ServerUri, TlsOptions,
};
use super::queue::{Consumer, Producer};
use super::token::{Delivered, TokenInner};
use super::{
    Client, ConnectInfo, Control, Incoming, Messages, PubReq, Shared, STATE_CLOSED,
    STATE_CONNECTED, STATE_CONNECTING, STATE_DISCONNECTED, STATE_RECONNECTING,
};
use crate::error::{Error, Result, Step};
use crate::persist::Persister;
use crate::proto::session::{Event, PersistOp, Session, SessionConfig, SessionError};
use crate::proto::{
    reason, Connect, Disconnect, Packet, Properties, ProtocolVersion, QoS, SubAck, SubscribeFilter,
    UnsubAck,
};
use crate::transport::{self, Stream};

const WAKE: Token = Token(0);
const SOCK: Token = Token(1);
/// Bytes read in one go before other work gets a turn.
const READ_BUDGET: usize = 1 << 20;
/// Outgoing bytes buffered before requests stop being drained.
const WRITE_HIGH_WATER: usize = 1 << 20;
/// Slots of the publish request channel.
const PUBLISH_CHANNEL: usize = 64;
/// Smallest and largest single read.
const MIN_READ: usize = 2 * 1024;
const MAX_READ: usize = 256 * 1024;
/// Buffer capacity an idle connection may keep.
const IDLE_BUFFER: usize = 16 * 1024;
/// Quiet this long, a connection gives its buffers back.
const QUIET: Duration = Duration::from_millis(100);
/// A connection up for this long counts as healthy: the reconnect backoff starts over.
const STABLE_CONNECTION: Duration = Duration::from_secs(5);

pub(crate) struct Callbacks {
    pub(crate) on_message: Option<super::options::MessageCallback>,
    pub(crate) on_connected: Option<super::options::ConnectedCallback>,
    pub(crate) on_connection_lost: Option<LostCallback>,
    pub(crate) on_delivered: Option<super::options::DeliveredCallback>,
    pub(crate) on_server_disconnect: Option<super::options::ServerDisconnectCallback>,
}

struct SubWaiter {
    reply: Option<super::Reply<Result<SubAck>>>,
    filters: Vec<SubscribeFilter>,
    properties: Properties,
}

struct UnsubWaiter {
    reply: Option<super::Reply<Result<UnsubAck>>>,
    filters: Vec<String>,
}

struct Disconnecting {
    deadline: Instant,
    packet: Disconnect,
    reply: Option<super::Reply<Result<()>>>,
}

pub(crate) struct Io {
    shared: Arc<Shared>,
    registry: mio::Registry,
    session: Session,
    version: ProtocolVersion,
    servers: Vec<ServerUri>,
    tls: Option<TlsOptions>,
    http: HttpOptions,
    connect: Connect,
    connect_timeout: Duration,
    reconnect: Option<ReconnectOptions>,
    backoff: Duration,
    reconnect_at: Option<Instant>,
    user_disconnected: bool,
    max_queued: usize,
    incoming_capacity: usize,
    stream: Option<Stream>,
    readable: bool,
    rbuf: BytesMut,
    /// Size of the next read: small while idle, large once reads fill it.
    read_chunk: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    ctl_rx: Receiver<Control>,
    pub_rx: Receiver<Box<PubReq>>,
    msg_tx: Producer<Incoming>,
    dispatch_tx: Option<Producer<Incoming>>,
    messages_to_dispatch: bool,
    delivered_to_dispatch: bool,
    overflow: VecDeque<Incoming>,
    tokens: crate::proto::IdMap<u16, (u64, Arc<TokenInner>)>,
    sub_waiters: crate::proto::IdMap<u16, SubWaiter>,
    unsub_waiters: crate::proto::IdMap<u16, UnsubWaiter>,
    /// Granted subscriptions, re-issued after a reconnect that lost the session.
    subscriptions: Vec<(SubscribeFilter, Properties)>,
    resubscribe: bool,
    ever_connected: bool,
    offline: VecDeque<PubReq>,
    disconnecting: Option<Disconnecting>,
    store: Option<Persister>,
    shutdown: bool,
    rng: u64,
    connected_at: Option<Instant>,
    /// Buffers released since the last event (`release_idle_memory`).
    trimmed: bool,
    /// The session queue filled up; intake waits until it drains (`room_for_publishes`).
    intake_paused: bool,
    /// A SUBACK or UNSUBACK was read: acknowledge it at once (`ack_now`).
    ack_soon: bool,
    /// Acknowledgements taken from `Shared::acks` (kept for its allocation).
    ack_scratch: Vec<u16>,
}

pub(crate) fn start(mut opts: ConnectOptions) -> Result<Client> {
    if let Some(e) = opts.error.take() {
        return Err(e);
    }
    if opts.servers.is_empty() {
        return Err(Error::InvalidArgument("no server URI".into()));
    }
    let keep_alive = opts.keep_alive.as_secs();
    if keep_alive > u64::from(u16::MAX) {
        return Err(Error::InvalidArgument("keepalive above 65535 s".into()));
    }
    if opts.client_id.is_empty() && !opts.clean_start && opts.version != ProtocolVersion::V5 {
        return Err(Error::InvalidArgument(
            "an empty client id needs a clean session (MQTT-3.1.3-7)".into(),
        ));
    }
    if opts.will_delay.is_some() && opts.will.is_none() {
        return Err(Error::InvalidArgument("will_delay without a will".into()));
    }
    if let Some(w) = &opts.will {
        crate::topic::validate_topic_name(&w.topic).map_err(|e| Error::InvalidTopic {
            topic: w.topic.clone(),
            reason: e.to_string(),
        })?;
    }
    if opts.version != ProtocolVersion::V5 && !opts.properties.is_empty() {
        return Err(Error::InvalidArgument("properties need MQTT 5".into()));
    }
    if opts.password.is_some() && opts.username.is_none() && opts.version != ProtocolVersion::V5 {
        return Err(Error::InvalidArgument(
            "a password needs a user name before MQTT 5 (MQTT-3.1.2-22)".into(),
        ));
    }

    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKE)?;
    let shared = Arc::new(Shared {
        state: STATE_CONNECTING.into(),
        last_error: Mutex::new(None),
        connect_info: Mutex::new(None),
        waker,
        parked: false.into(),
        read_paused: false.into(),
        dispatch_waiting: 0.into(),
        dispatch_thread: OnceLock::new(),
        room: Mutex::new(()),
        room_cv: std::sync::Condvar::new(),
        room_waiters: 0.into(),
        last_publish: 0.into(),
        epoch: Instant::now(),
        next_token: 1.into(),
        published: 0.into(),
        received: 0.into(),
        reconnects: 0.into(),
        dropped: 0.into(),
        acks: Default::default(),
        acks_pending: false.into(),
        manual_acks: opts.manual_acks,
        messages_to_callback: opts.on_message.is_some(),
        durable_acks: opts.persistence.as_ref().is_some_and(|s| s.is_durable()),
        ack_cv: std::sync::Condvar::new(),
        held: Mutex::new(Vec::new()),
        held_count: 0.into(),
    });
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    // Boxed requests: a bounded channel allocates all its slots up front, and with the
    // default max_queued of 10 000 unboxed requests (~110 bytes each) cost 1.1 MB per client.
    // A short request queue: the session queue behind it holds up to `max_queued`, and a
    // bounded channel allocates all its slots up front (memory per idle client).
    let (pub_tx, pub_rx) = crossbeam_channel::bounded(opts.max_queued.min(PUBLISH_CHANNEL));
    let (msg_tx, msg_rx) = super::queue::queue();

    let callbacks = Callbacks {
        on_message: opts.on_message.take(),
        on_connected: opts.on_connected.take(),
        on_connection_lost: opts.on_connection_lost.take(),
        on_delivered: opts.on_delivered.take(),
        on_server_disconnect: opts.on_server_disconnect.take(),
    };
    let delivered_to_dispatch = callbacks.on_delivered.is_some();
    let messages_to_dispatch = callbacks.on_message.is_some();
    let want_dispatch = messages_to_dispatch
        || callbacks.on_connected.is_some()
        || callbacks.on_connection_lost.is_some()
        || callbacks.on_delivered.is_some()
        || callbacks.on_server_disconnect.is_some();

    let mut session = Session::new(SessionConfig {
        version: opts.version,
        keep_alive: Duration::from_secs(keep_alive),
        ping_timeout: None,
        max_inflight: opts.max_inflight,
        max_incoming_packet_size: opts.max_packet_size,
        persist_events: opts.persistence.is_some(),
    });
    let mut store = opts
        .persistence
        .take()
        .map(|s| Persister::new(s, opts.version));
    if let Some(st) = store.as_mut() {
        let uri = opts.servers[0].original.clone();
        st.open(&opts.client_id, &uri)
            .map_err(|e| Error::Persistence(e.to_string()))?;
        restore(st, &mut session)?;
    }

    if opts.version == ProtocolVersion::V5
        && opts
            .properties
            .get(crate::proto::properties::id::RECEIVE_MAXIMUM)
            .is_none()
    {
        // Unacknowledged incoming messages wait in the client until the application takes
        // them: let the broker have no more in flight than the client will hold.
        let max = u16::try_from(opts.incoming_capacity).unwrap_or(u16::MAX);
        opts.properties.push(crate::proto::Property::TwoByte(
            crate::proto::properties::id::RECEIVE_MAXIMUM,
            max.max(1),
        ));
    }
    let connect = Connect {
        protocol: opts.version,
        clean_start: opts.clean_start,
        keep_alive: keep_alive as u16,
        client_id: opts.client_id.clone(),
        will: opts.will.take(),
        username: opts.username.take(),
        password: opts.password.take(),
        properties: std::mem::take(&mut opts.properties),
    };

    let (dispatch_tx, dispatch_thread) = if want_dispatch {
        let (tx, rx) = super::queue::queue();
        let sh = shared.clone();
        let h = super::threads::spawn(c"mqttsync-dispatch", move || {
            dispatch_loop(rx, callbacks, sh)
        })?;
        (Some(tx), Some(h))
    } else {
        (None, None)
    };

    let io = Io {
        shared: shared.clone(),
        registry: poll.registry().try_clone()?,
        session,
        version: opts.version,
        servers: opts.servers,
        tls: opts.tls.take(),
        http: std::mem::take(&mut opts.http),
        connect,
        connect_timeout: opts.connect_timeout,
        backoff: opts
            .reconnect
            .as_ref()
            .map(|r| r.min_delay)
            .unwrap_or_default(),
        reconnect: opts.reconnect.take(),
        reconnect_at: None,
        user_disconnected: false,
        max_queued: opts.max_queued,
        incoming_capacity: opts.incoming_capacity,
        stream: None,
        readable: false,
        rbuf: BytesMut::new(),
        read_chunk: MIN_READ,
        wbuf: Vec::new(),
        wpos: 0,
        ctl_rx,
        pub_rx,
        msg_tx,
        dispatch_tx,
        messages_to_dispatch,
        delivered_to_dispatch,
        overflow: VecDeque::new(),
        tokens: Default::default(),
        sub_waiters: Default::default(),
        unsub_waiters: Default::default(),
        subscriptions: Vec::new(),
        resubscribe: opts.resubscribe,
        ever_connected: false,
        offline: VecDeque::new(),
        disconnecting: None,
        store,
        shutdown: false,
        rng: seed(),
        connected_at: None,
        trimmed: false,
        intake_paused: false,
        ack_soon: false,
        ack_scratch: Vec::new(),
    };

    // Messages restored from persistence get delivery tokens, in their original order (the
    // Paho contract: a restarted program can wait for them).
    let mut io = io;
    for pkid in io.session.pending_publishes() {
        let id = shared.next_token.fetch_add(1, Ordering::Relaxed);
        io.tokens.insert(pkid, (id, TokenInner::new()));
    }
    // The first connect runs on the caller's thread (no hand-off to the I/O thread and
    // back: connect latency); the I/O thread starts once the connection is up. Each step
    // has its deadline inside `establish`.
    if let Err(e) = io.establish() {
        let retry = io.reconnect.as_ref().is_some_and(|r| r.retry_first_connect)
            && !matches!(
                e,
                Error::ConnectionRefused { .. } | Error::InvalidArgument(_) | Error::Tls { .. }
            );
        if !retry {
            io.finish();
            drop(io);
            if let Some(h) = dispatch_thread {
                h.join();
            }
            return Err(e);
        }
        log::info!("first connect failed ({e}); retrying in the background");
        *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(e));
        io.schedule_reconnect(Instant::now());
    }
    // What the handshake allocated goes back now, while the next allocations (the next
    // client's, say) can reuse it: freed later, it would stay resident as holes.
    io.release_idle_memory();
    let io = Arc::new(Mutex::new(io));
    let for_thread = io.clone();
    let io_thread = super::threads::spawn(c"mqttsync-io", move || run(for_thread, poll))?;

    Ok(Client {
        io,
        messages: Messages {
            rx: msg_rx,
            shared: shared.clone(),
        },
        shared,
        ctl_tx,
        pub_tx,
        io_thread: Mutex::new(Some(io_thread)),
        dispatch_thread: Mutex::new(dispatch_thread),
        request_timeout: opts.request_timeout,
        version: opts.version,
    })
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9);
    // The address of a local tells processes (ASLR) and threads apart without a system call.
    let here = 0u8;
    t ^ (std::ptr::addr_of!(here) as u64).rotate_left(32) | 1
}

/// Loads the persisted in-flight state into the session; corrupt records are reported in
/// the log and skipped (they stay in the store for inspection).
fn restore(store: &mut Persister, session: &mut Session) -> Result<()> {
    let (good, bad) = store.load();
    for (key, err) in bad {
        log::error!("persisted record {key:?} is unreadable and was skipped: {err}");
    }
    for (key, packet) in good {
        session
            .restore(key, packet)
            .map_err(|e| Error::Persistence(format!("restoring {key:?}: {e}")))?;
    }
    Ok(())
}

fn dispatch_loop(rx: Consumer<Incoming>, mut cb: Callbacks, shared: Arc<Shared>) {
    let _ = shared.dispatch_thread.set(std::thread::current().id());
    while let Ok(mut item) = rx.recv() {
        // Acknowledged once the callback has returned (or panicked): then the application
        // has had the message.
        let mut taken = None;
        if let Incoming::Message(m) = &mut item {
            if !shared.manual_acks {
                taken = m.receipt.take();
            }
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match item {
            Incoming::Message(m) => {
                if let Some(f) = cb.on_message.as_mut() {
                    f(m)
                }
            }
            Incoming::Connected(sp) => {
                if let Some(f) = cb.on_connected.as_mut() {
                    f(sp)
                }
            }
            Incoming::Lost(e) => {
                if let Some(f) = cb.on_connection_lost.as_mut() {
                    f(&e)
                }
            }
            Incoming::Delivered(ev) => {
                if let Some(f) = cb.on_delivered.as_mut() {
                    f(&ev)
                }
            }
            Incoming::ServerDisconnect(d) => {
                if let Some(f) = cb.on_server_disconnect.as_mut() {
                    f(&d)
                }
            }
        }));
        if r.is_err() {
            log::error!("an mqttsync callback panicked; the panic was contained");
        }
        if let Some(receipt) = taken {
            let _ = receipt.ack();
        }
        if shared.read_paused.load(Ordering::Acquire) {
            shared.parked.store(true, Ordering::SeqCst);
            shared.wake();
        }
        if shared.state.load(Ordering::Acquire) == STATE_CLOSED && rx.is_empty() {
            break;
        }
    }
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("version", &self.version)
            .field("connected", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

/// What the I/O thread does after a turn of work.
enum Next {
    /// Sleep in poll for at most this long; `quiet_check`: a short sleep before a long one.
    Park {
        timeout: Option<Duration>,
        quiet_check: bool,
    },
    /// Requests arrived meanwhile: another turn at once.
    Again,
    /// Shut down (already finished).
    Exit,
}

/// The I/O thread. The `Io` is locked for each turn of work and unlocked while the thread
/// sleeps in poll, so a caller may publish on its own thread meanwhile
/// ([`Io::publish_direct`]).
pub(crate) fn run(io: Arc<Mutex<Io>>, mut poll: Poll) {
    let mut events = mio::Events::with_capacity(8);
    let shared = io.lock().unwrap_or_else(|e| e.into_inner()).shared.clone();
    // Events of the last poll, still to be looked at.
    let mut polled: Option<bool> = None;
    loop {
        let mut g = io.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(quiet_check) = polled.take() {
            g.take_events(&events, quiet_check);
        }
        let (timeout, quiet_check) = match g.turn() {
            Next::Exit => return,
            Next::Again => continue,
            Next::Park {
                timeout,
                quiet_check,
            } => (timeout, quiet_check),
        };
        drop(g);
        let r = poll.poll(&mut events, timeout);
        shared.parked.store(false, Ordering::SeqCst);
        match r {
            Ok(()) => polled = Some(quiet_check),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::error!("poll failed: {e}");
                io.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .lose(Error::Io(e));
            }
        }
    }
}

impl Io {
    /// One turn of work: requests, writes, reads, timers; then how to wait.
    fn turn(&mut self) -> Next {
        let now = Instant::now();
        self.handle_controls(now);
        if self.shutdown {
            self.finish();
            return Next::Exit;
        }
        self.handle_publishes(now);
        self.take_acks();
        self.flush(now);
        self.pump_overflow();
        if self.stream.is_some() && self.readable && !self.paused() {
            self.read(now);
        }
        self.flush(now);
        if std::mem::take(&mut self.ack_soon) {
            if let Some(stream) = self.stream.as_ref() {
                ack_now(stream);
            }
        }
        self.check_disconnecting(now);
        self.run_timers(now);
        if self.shutdown {
            self.finish();
            return Next::Exit;
        }

        let timeout = self.next_timeout(now);
        // Before a long sleep, a short one: if nothing happens in it, the connection is
        // quiet and its buffers go back to the allocator (memory per idle client).
        // Busy connections never reach the end of the short sleep, so pay nothing.
        let quiet_check = !self.trimmed && timeout.is_none_or(|t| t > QUIET);
        let timeout = if quiet_check { Some(QUIET) } else { timeout };
        self.shared.parked.store(true, Ordering::SeqCst);
        if timeout != Some(Duration::ZERO) && self.has_requests() {
            self.shared.parked.store(false, Ordering::SeqCst);
            return Next::Again;
        }
        Next::Park {
            timeout,
            quiet_check,
        }
    }

    fn take_events(&mut self, events: &mio::Events, quiet_check: bool) {
        if events.is_empty() {
            if quiet_check {
                self.release_idle_memory();
            }
        } else {
            self.trimmed = false;
        }
        for ev in events.iter() {
            if ev.token() == SOCK && (ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                self.readable = true;
            }
        }
    }

    /// Publishes on the caller's thread while the I/O thread sleeps: the PUBLISH goes out
    /// at once, without waking the I/O thread (a lone request's latency). Gives the request
    /// back when the I/O thread must take it: not connected, a disconnect under way, unsent
    /// bytes or requests before it (order), no room.
    pub(crate) fn publish_direct(
        &mut self,
        req: Box<PubReq>,
    ) -> std::result::Result<(), Box<PubReq>> {
        if self.shutdown
            || self.stream.is_none()
            || self.disconnecting.is_some()
            || self.shared.state.load(Ordering::Acquire) != STATE_CONNECTED
            || self.wpos != self.wbuf.len()
            || !self.pub_rx.is_empty()
            || !self.room_for_publishes()
        {
            return Err(req);
        }
        let now = Instant::now();
        self.publish(now, *req);
        // Persist before transmit, as in `flush`.
        self.process_events();
        self.session.poll_transmit(now, &mut self.wbuf);
        let mut handed_over = false;
        if let Some(stream) = self.stream.as_mut() {
            while self.wpos < self.wbuf.len() {
                match stream.write(&self.wbuf[self.wpos..]) {
                    Ok(n) if n > 0 => self.wpos += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // Full socket, closed or failed: the I/O thread finishes the write or
                    // meets the error itself (and handles the loss).
                    _ => {
                        handed_over = true;
                        break;
                    }
                }
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        if handed_over {
            self.shared.wake();
        }
        Ok(())
    }

    /// Frees the read and write buffers and the session's empty queues (see `QUIET`).
    fn release_idle_memory(&mut self) {
        self.trimmed = true;
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
            self.read_chunk = MIN_READ;
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
        self.session.release_idle_memory();
    }

    fn has_requests(&self) -> bool {
        !self.ctl_rx.is_empty()
            || self.shared.acks_pending()
            || (!self.pub_rx.is_empty() && self.room_for_publishes())
    }

    /// Passes the application's acknowledgements of incoming messages to the session
    /// (PUBACK / PUBREC go out with the next flush, QoS 2 markers are stored first).
    fn take_acks(&mut self) {
        let Some(upto) = self.shared.take_acks(&mut self.ack_scratch) else {
            return;
        };
        for pkid in self.ack_scratch.drain(..) {
            if let Err(e) = self.session.ack(pkid) {
                log::debug!("acknowledgement not sent: {e}");
            }
        }
        // QoS 2 markers go to the store now; then whoever waits for them may go on.
        self.process_events();
        self.shared.acks_stored(upto);
    }

    /// Whether publish requests may move from the channel into the session. Once the
    /// session queue is full, intake resumes only when a quarter of it has drained: a
    /// publisher that outruns the window then blocks and wakes once per batch, not once
    /// per acknowledgement (one context switch per message was most of the cost there).
    fn room_for_publishes(&self) -> bool {
        match self.shared.state.load(Ordering::Acquire) {
            STATE_CONNECTED => {
                let limit = if self.intake_paused {
                    self.max_queued - self.max_queued / 4
                } else {
                    self.max_queued
                };
                self.session.queued_len() < limit && self.wbuf.len() - self.wpos < WRITE_HIGH_WATER
            }
            _ => true,
        }
    }

    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.stream.is_some() && self.readable && !self.paused() {
            return Some(Duration::ZERO);
        }
        let mut t: Option<Instant> = None;
        let mut consider = |i: Option<Instant>| {
            if let Some(i) = i {
                t = Some(t.map_or(i, |c| c.min(i)));
            }
        };
        if self.stream.is_some() {
            consider(self.session.poll_timeout());
        }
        consider(self.reconnect_at);
        consider(self.disconnecting.as_ref().map(|d| d.deadline));
        if !self.overflow.is_empty() {
            // Consumers wake us when they take an item; poll now and then regardless.
            consider(Some(now + Duration::from_millis(50)));
        }
        t.map(|t| t.saturating_duration_since(now))
    }

    /// Reading is paused for back-pressure and bytes from the server wait unread in the
    /// socket: the server is alive, only the application is slow.
    fn alive_but_unread(&self) -> bool {
        if !self.paused() {
            return false;
        }
        let Some(stream) = self.stream.as_ref() else {
            return false;
        };
        let mut byte = [0u8; 1];
        matches!(stream.tcp().peek(&mut byte), Ok(n) if n > 0)
    }

    fn paused(&self) -> bool {
        !self.overflow.is_empty() && self.shared.dispatch_waiting.load(Ordering::SeqCst) == 0
    }

    // ---- requests ----

    fn handle_controls(&mut self, now: Instant) {
        loop {
            match self.ctl_rx.try_recv() {
                Ok(c) => self.handle_control(now, c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.shutdown = true;
                    break;
                }
            }
            if self.shutdown {
                break;
            }
        }
    }

    fn handle_control(&mut self, now: Instant, c: Control) {
        match c {
            Control::Connect { reply } => {
                if self.stream.is_some() {
                    reply.send(Ok(self.current_info()));
                    return;
                }
                self.user_disconnected = false;
                let r = self.establish();
                if let Err(e) = &r {
                    self.shared.set_state(STATE_DISCONNECTED);
                    *self
                        .shared
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(super::clone_error(e)));
                }
                reply.send(r);
            }
            Control::Subscribe {
                filters,
                properties,
                reply,
            } => {
                if self.stream.is_none() {
                    reply.send(Err(Error::NotConnected));
                    return;
                }
                match self
                    .session
                    .subscribe(now, filters.clone(), properties.clone())
                {
                    Ok(id) => {
                        self.sub_waiters.insert(
                            id,
                            SubWaiter {
                                reply: Some(reply),
                                filters,
                                properties,
                            },
                        );
                    }
                    Err(e) => {
                        reply.send(Err(e.into()));
                    }
                }
            }
            Control::Unsubscribe {
                filters,
                properties,
                reply,
            } => {
                if self.stream.is_none() {
                    reply.send(Err(Error::NotConnected));
                    return;
                }
                match self.session.unsubscribe(now, filters.clone(), properties) {
                    Ok(id) => {
                        self.unsub_waiters.insert(
                            id,
                            UnsubWaiter {
                                reply: Some(reply),
                                filters,
                            },
                        );
                    }
                    Err(e) => {
                        reply.send(Err(e.into()));
                    }
                }
            }
            Control::Disconnect {
                packet,
                timeout,
                reply,
            } => {
                self.user_disconnected = true;
                self.reconnect_at = None;
                if self.stream.is_none() {
                    if self.shared.state.load(Ordering::Acquire) != STATE_CLOSED {
                        self.shared.set_state(STATE_DISCONNECTED);
                    }
                    self.fail_offline(Error::NotConnected);
                    self.poke_tokens();
                    reply.send(Ok(()));
                    return;
                }
                // Everything published before the disconnect goes out first.
                self.drain_all_publishes(now);
                self.disconnecting = Some(Disconnecting {
                    deadline: now + timeout,
                    packet,
                    reply: Some(reply),
                });
            }
            Control::Abort => {
                self.user_disconnected = true;
                if self.stream.is_some() {
                    self.lose(Error::ConnectionLost("closed by the application".into()));
                }
            }
            Control::Pending { reply } => {
                // Publishes queued before this request count as pending (and are persisted).
                self.handle_publishes(now);
                let mut v: Vec<(u64, u16)> = self
                    .tokens
                    .iter()
                    .map(|(pkid, (id, _))| (*id, *pkid))
                    .collect();
                v.sort_unstable();
                reply.send(v);
            }
            Control::PendingTokens { reply } => {
                self.handle_publishes(now);
                let mut v: Vec<(u64, u16, Arc<TokenInner>)> = self
                    .tokens
                    .iter()
                    .map(|(pkid, (id, t))| (*id, *pkid, t.clone()))
                    .collect();
                v.sort_unstable_by_key(|e| e.0);
                reply.send(v);
            }
            Control::Shutdown => {
                self.shutdown = true;
            }
        }
    }

    fn handle_publishes(&mut self, now: Instant) {
        while self.room_for_publishes() {
            match self.pub_rx.try_recv() {
                Ok(req) => self.publish(now, *req),
                Err(_) => break,
            }
        }
        self.intake_paused = self.session.queued_len() >= self.max_queued;
        self.room_made();
    }

    /// Wakes waiting publishers once the request channel is at most half full.
    fn room_made(&self) {
        let half = self.pub_rx.capacity().unwrap_or(1) / 2;
        if self.pub_rx.len() <= half {
            self.shared.notify_room();
        }
    }

    fn drain_all_publishes(&mut self, now: Instant) {
        while let Ok(req) = self.pub_rx.try_recv() {
            self.publish(now, *req);
        }
        self.room_made();
    }

    fn publish(&mut self, now: Instant, req: PubReq) {
        match self.shared.state.load(Ordering::Acquire) {
            STATE_CONNECTED if self.stream.is_some() => {}
            STATE_RECONNECTING | STATE_CONNECTING => {
                let max = self.reconnect.as_ref().map_or(0, |r| r.max_buffered);
                if self.offline.len() < max {
                    self.offline.push_back(req);
                } else {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "offline buffer full: publish to {} dropped",
                        req.publish.topic
                    );
                    req.token.complete(Err(Arc::new(Error::NotConnected)));
                }
                return;
            }
            _ => {
                req.token.complete(Err(Arc::new(Error::NotConnected)));
                return;
            }
        }
        let qos = req.publish.qos;
        match self.session.publish(now, req.publish) {
            Ok(pkid) => {
                self.shared.published.fetch_add(1, Ordering::Relaxed);
                if qos == QoS::AtMostOnce {
                    req.token.complete(Ok(Delivered {
                        packet_id: 0,
                        reason: 0,
                        properties: Default::default(),
                    }));
                } else {
                    self.tokens.insert(pkid, (req.id, req.token));
                }
                // Persist the new flow now, not at the next read: a crash after this point
                // must not lose an accepted QoS 1/2 message.
                self.process_events();
            }
            Err(e) => req.token.complete(Err(Arc::new(e.into()))),
        }
    }

    fn fail_offline(&mut self, e: Error) {
        let e = Arc::new(e);
        for req in self.offline.drain(..) {
            req.token.complete(Err(e.clone()));
        }
    }

    fn poke_tokens(&self) {
        for (_, t) in self.tokens.values() {
            t.poke();
        }
        for r in &self.offline {
            r.token.poke();
        }
    }

    fn current_info(&self) -> ConnectInfo {
        self.shared
            .connect_info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(ConnectInfo {
                session_present: false,
                server: String::new(),
                version: self.version,
                properties: Default::default(),
            })
    }

    // ---- connection establishment ----

    fn establish(&mut self) -> Result<ConnectInfo> {
        let mut last = None;
        for i in 0..self.servers.len() {
            let uri = self.servers[i].clone();
            match self.establish_one(&uri) {
                Ok(info) => return Ok(info),
                Err(e) => {
                    log::info!("connect to {uri} failed: {e}");
                    crate::tracehook::emit(
                        crate::tracehook::MINIMUM,
                        format_args!("{}: connect to {uri} failed: {e}", self.connect.client_id),
                    );
                    self.session.connection_lost();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::NotConnected))
    }

    fn establish_one(&mut self, uri: &ServerUri) -> Result<ConnectInfo> {
        crate::tracehook::emit(
            crate::tracehook::MINIMUM,
            format_args!(
                "{}: connecting to {uri} ({}:{}) with MQTT protocol level {}",
                self.connect.client_id,
                uri.host,
                uri.port,
                self.connect.protocol.level()
            ),
        );
        let total = self.connect_timeout;
        let start = Instant::now();
        let deadline = start + total;
        let mut stream = transport::open_with(uri, self.tls.as_ref(), &self.http, deadline, total)?;
        self.rbuf.clear();
        self.wbuf.clear();
        self.wpos = 0;
        self.session.connect(start, self.connect.clone())?;
        let mut out = Vec::new();
        self.session.poll_transmit(Instant::now(), &mut out);
        stream
            .write_all(&out)
            .map_err(|e| map_timeout(e, Step::ConnAck, total))?;
        // A plain TCP stream comes from `connect_tcp` with its timeouts ending at the
        // deadline (give or take the CONNECT write): the first read needs no refresh.
        let mut fresh = matches!(stream, Stream::Tcp(_));
        let connack = loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::timeout(Step::ConnAck, total));
            }
            if !fresh {
                let left = (deadline - now).max(Duration::from_millis(1));
                stream.tcp().set_read_timeout(Some(left))?;
            }
            fresh = false;
            let n = read_into(&mut stream, &mut self.rbuf, MIN_READ)
                .map_err(|e| map_timeout(e, Step::ConnAck, total))?;
            if n == 0 {
                return Err(Error::ConnectionLost(
                    "server closed the connection before CONNACK".into(),
                ));
            }
            self.session
                .handle_input(Instant::now(), &mut self.rbuf)
                .map_err(session_error)?;
            let mut found = None;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    Event::Connected(ack) => {
                        found = Some(Ok(ack));
                        break;
                    }
                    Event::ConnectionRefused(ack) => {
                        let reason = if self.version == ProtocolVersion::V5 {
                            reason::reason_name(ack.code).unwrap_or("Unspecified error")
                        } else {
                            reason::connack_v3_name(ack.code)
                        };
                        found = Some(Err(Error::ConnectionRefused {
                            code: ack.code,
                            reason,
                            properties: ack.properties,
                        }));
                        break;
                    }
                    Event::ServerDisconnect(d) => {
                        found = Some(Err(Error::ConnectionLost(format!(
                            "server sent DISCONNECT ({:#04x}) before CONNACK",
                            d.reason
                        ))));
                        break;
                    }
                    // Store changes (from `restore`, or left from the last connection)
                    // must not be lost with the other early events.
                    Event::Persist(op) => self.persist(op),
                    other => log::debug!("event before CONNACK ignored: {other:?}"),
                }
            }
            if let Some(f) = found {
                break f?;
            }
        };
        // Queued messages of a resumed session may follow the CONNACK at once.
        ack_now(&stream);
        // Non-blocking from here on, so the handshake's timeouts no longer apply.
        stream.set_nonblocking(true)?;
        let fd = stream.as_raw_fd();
        self.registry.register(
            &mut SourceFd(&fd),
            SOCK,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.stream = Some(stream);
        self.readable = true;
        let info = ConnectInfo {
            session_present: connack.session_present,
            server: uri.original.clone(),
            version: self.version,
            properties: connack.properties.clone(),
        };
        *self
            .shared
            .connect_info
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(info.clone());
        self.shared.set_state(STATE_CONNECTED);
        self.backoff = self
            .reconnect
            .as_ref()
            .map(|r| r.min_delay)
            .unwrap_or_default();
        log::info!(
            "connected to {uri} (session present: {})",
            connack.session_present
        );
        if !connack.session_present {
            // Receipts of messages from an earlier session must not acknowledge ids of
            // this one.
            self.shared.new_ack_generation();
        }
        crate::tracehook::emit(
            crate::tracehook::MINIMUM,
            format_args!(
                "{}: connected to {uri} (session present {})",
                self.connect.client_id,
                u8::from(connack.session_present)
            ),
        );
        let now = Instant::now();
        if self.ever_connected && !connack.session_present {
            self.resubscribe_all(now);
        }
        self.ever_connected = true;
        let offline: Vec<PubReq> = self.offline.drain(..).collect();
        for req in offline {
            self.publish(now, req);
        }
        self.deliver(Incoming::Connected(connack.session_present), false);
        // Events that arrived together with CONNACK.
        self.process_events();
        Ok(info)
    }

    // ---- I/O ----

    fn flush(&mut self, now: Instant) {
        // Persist before transmit: a QoS 1/2 PUBLISH accepted by the session is written to
        // the store before its bytes can reach the server (as Paho does), so a process killed
        // after the broker saw it still resends it, and a record absent from the store means
        // the message never left this process. (Events were only processed after a read.)
        self.process_events();
        if self.stream.is_none() {
            return;
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        // Encode more only while the unsent backlog is small; the rest waits in the session
        // (and intake stops in `room_for_publishes`), so the buffer stays bounded.
        if self.wbuf.len() - self.wpos < WRITE_HIGH_WATER {
            self.session.poll_transmit(now, &mut self.wbuf);
        }
        while self.wpos < self.wbuf.len() {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            match stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => {
                    self.lose(Error::ConnectionLost(
                        "connection closed while writing".into(),
                    ));
                    return;
                }
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.lose(Error::Io(e));
                    return;
                }
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
            if self.wbuf.capacity() > 4 * IDLE_BUFFER {
                self.wbuf = Vec::new();
            }
        } else if self.wpos >= 64 * 1024 && self.wpos >= self.wbuf.len() / 2 {
            // Compact only when the written part is at least half: each byte moves at
            // most once on average (compacting after every partial write was quadratic).
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
    }

    fn read(&mut self, now: Instant) {
        let mut budget = READ_BUDGET;
        let mut read_any = false;
        while budget > 0 && !self.paused() {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            match read_into(stream, &mut self.rbuf, self.read_chunk) {
                Ok(0) => {
                    self.lose(Error::ConnectionLost(
                        "connection closed by the server".into(),
                    ));
                    return;
                }
                Ok(n) => {
                    read_any = true;
                    budget = budget.saturating_sub(n);
                    self.read_chunk = if n == self.read_chunk {
                        (n * 4).min(MAX_READ)
                    } else {
                        n.next_power_of_two().clamp(MIN_READ, MAX_READ)
                    };
                    if let Err(e) = self.session.handle_input(now, &mut self.rbuf) {
                        self.protocol_failure(e);
                        return;
                    }
                    self.process_events();
                    if self.stream.is_none() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    // An idle connection keeps no large buffer, and a wake-up that found
                    // nothing to read keeps none at all (memory per idle client).
                    if self.rbuf.is_empty() && (!read_any || self.rbuf.capacity() > IDLE_BUFFER) {
                        self.rbuf = BytesMut::new();
                    }
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.lose(transport::io_error(e));
                    return;
                }
            }
        }
    }

    fn protocol_failure(&mut self, e: SessionError) {
        log::warn!("closing connection: {e}");
        // A keepalive timeout means the peer is gone: no goodbye (and 0x8D is a reason code
        // only the server may send, MQTT 5 table 3.14.2.1).
        if self.version == ProtocolVersion::V5 && e != SessionError::KeepAliveTimeout {
            let code = e.reason_code();
            self.session.disconnect(
                Instant::now(),
                Disconnect {
                    reason: code,
                    properties: Default::default(),
                },
            );
            self.flush_best_effort();
        }
        let err = match e {
            SessionError::KeepAliveTimeout => {
                Error::ConnectionLost("keepalive timeout: no answer from the server".into())
            }
            other => Error::Protocol(other.to_string()),
        };
        self.lose(err);
    }

    /// Writes what is queued with a short blocking deadline (used before closing).
    fn flush_best_effort(&mut self) {
        // Store writes first, as in `flush`.
        self.process_events();
        let now = Instant::now();
        self.session.poll_transmit(now, &mut self.wbuf);
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_timeouts(Some(Duration::from_millis(500)));
            let _ = stream.write_all(&self.wbuf[self.wpos..]);
            let _ = stream.flush();
        }
        self.wbuf.clear();
        self.wpos = 0;
    }

    fn process_events(&mut self) {
        self.take_session_events();
        self.pump_overflow();
    }

    fn take_session_events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Message(p) => {
                    self.shared.received.fetch_add(1, Ordering::Relaxed);
                    let receipt = if p.qos == QoS::AtMostOnce {
                        None
                    } else {
                        Some(self.shared.receipt(p.pkid, p.qos))
                    };
                    let m = Message {
                        topic: p.topic,
                        payload: p.payload,
                        qos: p.qos,
                        retain: p.retain,
                        dup: p.dup,
                        packet_id: p.pkid,
                        properties: p.properties,
                        receipt,
                    };
                    let to_dispatch = self.messages_to_dispatch;
                    self.deliver(Incoming::Message(m), to_dispatch);
                }
                Event::PublishDone { pkid, ack } => {
                    let Some((id, tok)) = self.tokens.remove(&pkid) else {
                        continue;
                    };
                    let packet_type = ack.packet_type();
                    let (reason, properties) = match ack {
                        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubComp(a) => {
                            (a.reason, a.properties)
                        }
                        _ => (0, Default::default()),
                    };
                    let result = if reason >= 0x80 {
                        Err(Arc::new(Error::Rejected {
                            code: reason,
                            reason: reason::reason_name(reason).unwrap_or("Unspecified error"),
                        }))
                    } else {
                        Ok(Delivered {
                            packet_id: pkid,
                            reason,
                            properties,
                        })
                    };
                    if self.delivered_to_dispatch {
                        // Messages received before the acknowledgement go first.
                        self.pump_overflow();
                        if let Some(tx) = &self.dispatch_tx {
                            tx.send(Incoming::Delivered(super::DeliveryEvent {
                                token_id: id,
                                packet_id: pkid,
                                packet_type,
                                result: result.clone(),
                            }));
                        }
                    }
                    tok.complete(result);
                }
                Event::SubscribeDone(ack) => {
                    self.ack_soon = true;
                    if let Some(w) = self.sub_waiters.remove(&ack.pkid) {
                        for (f, code) in w.filters.into_iter().zip(ack.return_codes.iter()) {
                            if *code < 0x80 {
                                self.subscriptions.retain(|(s, _)| s.filter != f.filter);
                                self.subscriptions.push((f, w.properties.clone()));
                            }
                        }
                        if let Some(tx) = w.reply {
                            tx.send(Ok(ack));
                        }
                    }
                }
                Event::UnsubscribeDone(ack) => {
                    self.ack_soon = true;
                    if let Some(w) = self.unsub_waiters.remove(&ack.pkid) {
                        self.subscriptions
                            .retain(|(s, _)| !w.filters.contains(&s.filter));
                        if let Some(tx) = w.reply {
                            tx.send(Ok(ack));
                        }
                    }
                }
                Event::ServerDisconnect(d) => {
                    let text = format!(
                        "server sent DISCONNECT: {:#04x} ({})",
                        d.reason,
                        reason::reason_name(d.reason).unwrap_or("unknown reason")
                    );
                    self.deliver(Incoming::ServerDisconnect(d), true);
                    self.lose(Error::ConnectionLost(text));
                    return;
                }
                Event::Persist(op) => self.persist(op),
                Event::Auth(a) => {
                    log::debug!("AUTH from server ignored (reason {:#04x})", a.reason)
                }
                Event::Connected(_) | Event::ConnectionRefused(_) => {
                    log::debug!("unexpected connection event after CONNACK")
                }
            }
        }
    }

    fn persist(&mut self, op: PersistOp) {
        if let Some(st) = self.store.as_mut() {
            if let Err(e) = st.apply(&op) {
                log::error!("persistence write failed: {e}");
            }
        }
    }

    /// Hands an item to the application channel, keeping order; beyond the capacity items
    /// wait in `overflow` and reading stops (back-pressure).
    fn deliver(&mut self, item: Incoming, to_dispatch: bool) {
        let lifecycle = !matches!(item, Incoming::Message(_));
        if lifecycle {
            // Messages received before it go first.
            self.pump_overflow();
            // Lifecycle notices go to both consumers, never wait behind the capacity.
            if let Some(tx) = &self.dispatch_tx {
                let copy = match &item {
                    Incoming::Connected(sp) => Some(Incoming::Connected(*sp)),
                    Incoming::Lost(e) => Some(Incoming::Lost(e.clone())),
                    _ => None,
                };
                if let Some(c) = copy {
                    tx.send(c);
                } else {
                    tx.send(item);
                    return;
                }
            }
            if matches!(item, Incoming::Lost(_)) && !self.messages_to_dispatch {
                self.overflow.push_back(item);
                self.pump_overflow();
            }
            return;
        }
        let _ = to_dispatch;
        // Handed over in batches by `pump_overflow` (at the end of `process_events`): one
        // lock and at most one wake-up of the consumer per read, not per message.
        self.overflow.push_back(item);
    }

    fn pump_overflow(&mut self) {
        let tx = if self.messages_to_dispatch {
            match &self.dispatch_tx {
                Some(t) => t,
                None => &self.msg_tx,
            }
        } else {
            &self.msg_tx
        };
        let room = self.incoming_capacity.saturating_sub(tx.len());
        let n = room.min(self.overflow.len());
        if n > 0 {
            tx.send_many(self.overflow.drain(..n));
        }
        let paused = !self.overflow.is_empty();
        self.shared.read_paused.store(paused, Ordering::Release);
    }

    fn check_disconnecting(&mut self, now: Instant) {
        let Some(d) = self.disconnecting.as_ref() else {
            return;
        };
        if self.stream.is_none() {
            if let Some(mut d) = self.disconnecting.take() {
                if let Some(r) = d.reply.take() {
                    r.send(Ok(()));
                }
            }
            return;
        }
        let done = self.session.pending_publishes().is_empty() && self.pub_rx.is_empty();
        if !done && now < d.deadline {
            return;
        }
        let Some(mut d) = self.disconnecting.take() else {
            return;
        };
        self.session.disconnect(now, d.packet.clone());
        self.flush_best_effort();
        self.close_stream();
        self.session.connection_lost();
        self.fail_waiters("disconnected by the application");
        self.shared.set_state(STATE_DISCONNECTED);
        self.poke_tokens();
        if let Some(r) = d.reply.take() {
            r.send(Ok(()));
        }
    }

    fn run_timers(&mut self, now: Instant) {
        if self.stream.is_some() {
            if self.alive_but_unread() {
                // Count the waiting bytes as an answer, so that keepalive does not declare a
                // live server dead while the application is slow (PINGREQs still go out when
                // the client has sent nothing for the interval).
                self.session.server_alive(now);
            }
            if let Err(e) = self.session.handle_timeout(now) {
                self.protocol_failure(e);
            }
            self.flush(now);
        } else if let Some(at) = self.reconnect_at {
            if now >= at {
                self.reconnect_at = None;
                match self.establish() {
                    Ok(_) => {
                        self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        log::info!("reconnect failed: {e}");
                        self.schedule_reconnect(Instant::now());
                    }
                }
            }
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        let Some(r) = self.reconnect.as_ref() else {
            return;
        };
        // Exponential backoff with "full jitter" between half and all of the delay.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let d = self.backoff;
        let jitter = (d.as_nanos() as u64 / 2).max(1);
        let delay = d / 2 + Duration::from_nanos(self.rng % jitter);
        self.reconnect_at = Some(now + delay);
        self.backoff = (d * 2).min(r.max_delay).max(r.min_delay);
        self.shared.set_state(STATE_RECONNECTING);
    }

    fn close_stream(&mut self) {
        if let Some(s) = self.stream.take() {
            let fd = s.as_raw_fd();
            let _ = self.registry.deregister(&mut SourceFd(&fd));
            s.shutdown();
        }
        self.readable = false;
        self.rbuf.clear();
        self.wbuf.clear();
        self.wpos = 0;
    }

    fn fail_waiters(&mut self, why: &str) {
        for (_, w) in self.sub_waiters.drain() {
            if let Some(tx) = w.reply {
                tx.send(Err(Error::ConnectionLost(why.to_string())));
            }
        }
        for (_, w) in self.unsub_waiters.drain() {
            if let Some(tx) = w.reply {
                tx.send(Err(Error::ConnectionLost(why.to_string())));
            }
        }
    }

    /// After a reconnect that found no session: subscribe again to everything granted
    /// before (grouped as they were requested is not needed; one SUBSCRIBE per properties
    /// set keeps subscription identifiers right).
    fn resubscribe_all(&mut self, now: Instant) {
        if !self.resubscribe || self.subscriptions.is_empty() {
            return;
        }
        let mut groups: Vec<(Properties, Vec<SubscribeFilter>)> = Vec::new();
        for (f, p) in &self.subscriptions {
            match groups.iter_mut().find(|(gp, _)| gp == p) {
                Some((_, v)) => v.push(f.clone()),
                None => groups.push((p.clone(), vec![f.clone()])),
            }
        }
        for (properties, filters) in groups {
            log::info!(
                "session lost: re-subscribing to {} filter(s)",
                filters.len()
            );
            match self
                .session
                .subscribe(now, filters.clone(), properties.clone())
            {
                Ok(id) => {
                    self.sub_waiters.insert(
                        id,
                        SubWaiter {
                            reply: None,
                            filters,
                            properties,
                        },
                    );
                }
                Err(e) => log::error!("re-subscribe failed: {e}"),
            }
        }
    }

    /// The connection failed: close it, keep the session, tell everyone, maybe reconnect.
    fn lose(&mut self, err: Error) {
        if self.stream.is_none() {
            return;
        }
        log::warn!("connection lost: {err}");
        self.close_stream();
        self.session.connection_lost();
        let text = err.to_string();
        self.fail_waiters(&text);
        if let Some(mut d) = self.disconnecting.take() {
            if let Some(r) = d.reply.take() {
                r.send(Ok(()));
            }
        }
        // A connection that lived a while resets the backoff; one the broker drops at once
        // (refusing us in a loop) keeps it growing, so there is no reconnect storm.
        if self
            .connected_at
            .take()
            .is_some_and(|t| t.elapsed() >= STABLE_CONNECTION)
        {
            self.backoff = self
                .reconnect
                .as_ref()
                .map(|r| r.min_delay)
                .unwrap_or_default();
        }
        let err = Arc::new(err);
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(err.clone());
        if self.reconnect.is_some() && !self.user_disconnected && !self.shutdown {
            self.schedule_reconnect(Instant::now());
        } else {
            self.shared.set_state(STATE_DISCONNECTED);
        }
        self.poke_tokens();
        self.deliver(Incoming::Lost(err), false);
    }

    fn finish(&mut self) {
        // Acknowledgements made until now: QoS 2 markers reach the store, PUBACK/PUBREC go
        // out with the goodbye.
        self.shared.release_all_held();
        self.take_acks();
        self.process_events();
        if self.stream.is_some() {
            self.session
                .disconnect(Instant::now(), Disconnect::default());
            self.flush_best_effort();
            self.close_stream();
        }
        self.shared.set_state(STATE_CLOSED);
        self.fail_waiters("client closed");
        let closed = Arc::new(Error::Closed);
        self.fail_offline(Error::Closed);
        while let Ok(req) = self.pub_rx.try_recv() {
            req.token.complete(Err(closed.clone()));
        }
        // Publishers waiting for room see the closed state.
        self.shared.notify_room();
        self.poke_tokens();
        if let Some(st) = self.store.as_mut() {
            if let Err(e) = st.close() {
                log::warn!("closing persistence failed: {e}");
            }
        }
        // Remaining overflow is handed over so nothing received is dropped.
        while let Some(item) = self.overflow.pop_front() {
            let tx = if self.messages_to_dispatch {
                self.dispatch_tx.as_ref().unwrap_or(&self.msg_tx)
            } else {
                &self.msg_tx
            };
            tx.send(item);
        }
        self.dispatch_tx = None;
    }
}

/// Acknowledges what was read at once instead of after the delayed-ACK timer (up to 40 ms
/// on Linux). A broker that leaves Nagle's algorithm on (stock mosquitto does) holds its next
/// small packet until the previous one is acknowledged, and after an exchange such as
/// SUBSCRIBE/SUBACK the client has nothing to send that would carry the ACK: the first
/// message on a new subscription then arrived 40 ms late (`cargo run --example quickstart`
/// against a stock mosquitto: 41 ms, 0.2 ms with this). Used after CONNACK, SUBACK and
/// UNSUBACK only: doing it after every read also removed the broker's Nagle stalls inside
/// QoS 0 streams (p90 35 ms -> 0.2 ms at 10 000 messages/s), but cost 25 % more client CPU
/// per message and a quarter of the throughput of a saturated stream, overriding a batching
/// choice that belongs to the broker (`set_tcp_nodelay`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn ack_now(stream: &Stream) {
    use std::os::fd::AsRawFd;
    // 2 rather than 1: a pending ACK goes out either way, and with the low bit clear Linux
    // then returns the socket to delayed acknowledgements (`__tcp_sock_set_quickack`).
    let val: libc::c_int = 2;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local; the fd belongs
    // to the open stream for the duration of the call. A failure changes nothing and is
    // ignored (the ACK then goes out on the kernel's timer, as without this call).
    unsafe {
        libc::setsockopt(
            stream.tcp().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            std::ptr::addr_of!(val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn ack_now(_stream: &Stream) {}

/// Reads at most `chunk` bytes from `stream` onto the end of `buf`.
fn read_into(stream: &mut Stream, buf: &mut BytesMut, chunk: usize) -> std::io::Result<usize> {
    let len = buf.len();
    buf.resize(len + chunk, 0);
    let r = stream.read(&mut buf[len..]);
    buf.truncate(len + *r.as_ref().unwrap_or(&0));
    r
}

fn map_timeout(e: std::io::Error, step: Step, total: Duration) -> Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            Error::timeout(step, total)
        }
        _ => crate::transport::io_error(e),
    }
}

fn session_error(e: SessionError) -> Error {
    Error::Protocol(e.to_string())
}
