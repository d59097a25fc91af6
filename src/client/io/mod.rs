//! The per-client I/O thread: owns the stream and the session, serves requests.
//!
//! One [`Io`] per client, locked by the I/O thread while it works and free while it sleeps
//! in poll. Its jobs, one file each:
//!
//! - [`connection`]: the handshake (`establish`; the first connect runs it on the caller's
//!   thread), reconnect scheduling, loss of the connection and shutdown;
//! - [`event_loop`]: `run` and one `turn` of work, reads, timers;
//! - [`requests`]: control requests, publishes and acknowledgements from the API handles;
//! - [`events`]: session events to the application (messages, tokens, replies, store);
//! - [`transmit`]: the one outbound path, session output to the socket.
//!
//! The callbacks run on another thread, in [`super::dispatch`].

mod connection;
mod event_loop;
mod events;
mod lend;
mod requests;
mod sleep;
mod transmit;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::{Poll, Token};

pub(crate) use event_loop::run;
pub(crate) use lend::{read_for_consumer, read_while_waiting, send_and_read, ReplyWaiter, Wait};
pub(crate) use sleep::Sleeper;

use super::dispatch::{Callbacks, Dispatcher};
use super::options::{ConnectOptions, HttpOptions, ReconnectOptions, ServerUri, TlsOptions};
use super::queue::{Mailbox, Producer};
use super::token::TokenInner;
use super::{Client, Incoming, Messages, PubReq, Shared, STATE_CONNECTING};
use crate::error::{Error, Result};
use crate::persist::Persister;
use crate::proto::session::{Session, SessionConfig};
use crate::proto::{
    Connect, Disconnect, IdMap, Lazy, Properties, ProtocolVersion, Quiet, SubAck, SubscribeFilter,
    UnsubAck,
};
use crate::transport::Stream;

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
/// Quiet this long after giving its buffers back, a connection gives back its poll and
/// waker as well, and the process-wide watcher watches its socket (see `sleep`).
const SHED_AFTER: Duration = Duration::from_millis(250);
/// Quiet this long, a connection gives its buffers back.
const QUIET: Duration = Duration::from_millis(100);
/// A connection up for this long counts as healthy: the reconnect backoff starts over.
const STABLE_CONNECTION: Duration = Duration::from_secs(5);

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
    /// The thread's poll (socket and waker); `None` while it sleeps without one (idle, see
    /// `sleep`), and while the thread sleeps in it.
    poll: Option<Poll>,
    /// The socket, while the process-wide watcher watches it for this sleeping client.
    watched: Option<sleep::Watched>,
    /// When the buffers were last released (`release_idle_memory`): quiet since then.
    quiet_at: Instant,
    session: Session,
    version: ProtocolVersion,
    servers: Vec<ServerUri>,
    /// Boxed: most clients have none, and the options are large (memory per client).
    tls: Option<Box<TlsOptions>>,
    /// `None` for the usual case (no headers, no explicit proxy): memory per client.
    http: Option<Box<HttpOptions>>,
    /// With `http` `None`: whether the proxy comes from the environment (read at each
    /// connect).
    proxy_from_env: bool,
    connect: Connect,
    connect_timeout: Duration,
    /// Boxed: most clients have none (memory per client).
    reconnect: Option<Box<ReconnectOptions>>,
    before_reconnect: Option<crate::client::options::BeforeReconnect>,
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
    msg_tx: Producer<Incoming>,
    dispatch_tx: Option<Dispatcher>,
    messages_to_dispatch: bool,
    delivered_to_dispatch: bool,
    /// Granted subscriptions, re-issued after a reconnect that lost the session.
    subscriptions: Vec<(SubscribeFilter, Properties)>,
    resubscribe: bool,
    ever_connected: bool,
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
    /// A waiting thread reads the socket (`lend`); the I/O thread's epoll reports no reads.
    lent: bool,
    /// The borrower is a consumer (the dispatch thread, a receiving thread) busy with what
    /// it read, keeping the socket meanwhile (`lend::read_for_consumer`); whoever needs the
    /// socket read takes it back (`reclaim_idle_lend`).
    lent_idle: bool,
    /// The socket's epoll interest includes writes (`lend::want_writable`).
    write_interest: bool,
    /// The epoll descriptor of `poll` (also while the thread sleeps in it, when `poll` is
    /// out of the `Io`): a borrower changes the socket's interest there (`lend`).
    epoll_fd: Option<std::os::fd::RawFd>,
    /// The first connect, on the caller's thread: a new socket is not registered with a
    /// poll (none is made), the client may start dormant (`Io::start_dormant`).
    first_connect: bool,
    /// When a job of this connection last ended dormant (not set when the connection
    /// started dormant).
    dormant_since: Option<Instant>,
    /// The index in `servers` of the server whose session the incoming state belongs to
    /// (the last CONNACK's, or the one the store names); `None` before the first when the
    /// store does not say (`u32::MAX`: a server not in the list).
    session_server: Option<u32>,
    /// This wake-up came within [`QUIET`] of going dormant: the connection is busy, and
    /// keeps its poll even when many jobs are awake (`shed_if_crowded`).
    rewoken_fast: bool,
    /// Whether a thread waiting for a reply polls before it sleeps (`lend`).
    spin: crate::client::threads::Spin,
    /// Requests and deliveries in progress: absent while the client is idle
    /// (`release_idle_memory`).
    t: Lazy<Pending>,
}

/// The part of an [`Io`] that holds requests and deliveries in progress, empty while the
/// client is idle (out of line in [`Lazy`]: memory per idle client).
#[derive(Default)]
struct Pending {
    overflow: VecDeque<Incoming>,
    tokens: IdMap<u16, (u64, Arc<TokenInner>)>,
    sub_waiters: IdMap<u16, SubWaiter>,
    unsub_waiters: IdMap<u16, UnsubWaiter>,
    offline: VecDeque<PubReq>,
    disconnecting: Option<Disconnecting>,
    /// Acknowledgements taken from `Shared::acks` (kept for its allocation).
    ack_scratch: Vec<u16>,
    /// The packet id of a publish being taken from another store record and that
    /// record's key ([`PubReq::replaces`]), from the session's publish until its record is
    /// written: that record names the one it replaces (`Persister::put_replacing`).
    replacing: Option<(u16, Box<str>)>,
}

impl Quiet for Pending {
    fn empty() -> &'static Self {
        static EMPTY: std::sync::OnceLock<Pending> = std::sync::OnceLock::new();
        EMPTY.get_or_init(Pending::default)
    }

    fn is_quiet(&self) -> bool {
        self.overflow.is_empty()
            && self.offline.is_empty()
            && self.tokens.is_empty()
            && self.sub_waiters.is_empty()
            && self.unsub_waiters.is_empty()
            && self.ack_scratch.is_empty()
            && self.disconnecting.is_none()
            && self.replacing.is_none()
    }
}

pub(crate) fn start(mut opts: ConnectOptions) -> Result<Client> {
    opts.validate()?;
    let keep_alive = opts.keep_alive.as_secs();

    let sleeper = Arc::new(Sleeper::default());
    let shared = Arc::new(Shared {
        state: STATE_CONNECTING.into(),
        last_error: Mutex::new(None),
        connect_info: Mutex::new(None),
        sleeper,
        ctl: Mailbox::new(usize::MAX),
        // Boxed requests, a short queue: the session queue behind it holds up to
        // `max_queued` anyway.
        publishes: Mailbox::new(opts.max_queued.min(PUBLISH_CHANNEL)),
        parked: false.into(),
        read_paused: false.into(),
        dispatch_waiting: 0.into(),
        reply_waiters: 0.into(),
        idle_lend: false.into(),
        dispatcher: Mutex::new(None),
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
        st.open(&opts.client_id, &uri).map_err(Error::from)?;
        restore(st, &mut session)?;
    }
    // The server whose session the restored incoming state belongs to, when the store
    // says (one not in this list: another server than any of these).
    let session_server = store.as_ref().and_then(Persister::server).map(|uri| {
        opts.servers
            .iter()
            .position(|s| s.original == uri)
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::MAX)
    });

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
        will: opts.will.take().map(Box::new),
        username: opts.username.take(),
        password: opts.password.take(),
        properties: std::mem::take(&mut opts.properties),
    };

    // The callbacks' thread starts with their first work (`Dispatcher`).
    let dispatch_tx = want_dispatch.then(|| Dispatcher::new(callbacks, shared.clone()));

    let http = std::mem::take(&mut opts.http);
    // Only the proxy-from-environment switch (as the C API sets): the shared `ENV_HTTP`
    // stands for it.
    let proxy_from_env = http.proxy_from_env;
    let plain_http =
        http.headers.is_empty() && http.http_proxy.is_none() && http.https_proxy.is_none();
    let io = Io {
        shared: shared.clone(),
        poll: None,
        watched: None,
        quiet_at: Instant::now(),
        session,
        version: opts.version,
        servers: {
            let mut s = opts.servers;
            s.shrink_to_fit();
            s
        },
        tls: opts.tls.take().map(Box::new),
        http: (!plain_http).then(|| Box::new(http)),
        proxy_from_env,
        connect,
        connect_timeout: opts.connect_timeout,
        backoff: opts
            .reconnect
            .as_ref()
            .map(|r| r.min_delay)
            .unwrap_or_default(),
        reconnect: opts.reconnect.take().map(Box::new),
        before_reconnect: opts.before_reconnect.take(),
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
        msg_tx,
        dispatch_tx,
        messages_to_dispatch,
        delivered_to_dispatch,
        subscriptions: Vec::new(),
        resubscribe: opts.resubscribe,
        ever_connected: false,
        store,
        shutdown: false,
        rng: seed(),
        connected_at: None,
        trimmed: false,
        intake_paused: false,
        ack_soon: false,
        lent: false,
        lent_idle: false,
        write_interest: true,
        epoll_fd: None,
        first_connect: true,
        dormant_since: None,
        session_server,
        rewoken_fast: false,
        t: Lazy::new(),
        spin: crate::client::threads::Spin::new(opts.spin_wait),
    };

    // Messages restored from persistence get delivery tokens, in their original order (the
    // Paho contract: a restarted program can wait for them).
    let mut io = io;
    for pkid in io.session.pending_publishes() {
        let id = shared.next_token.fetch_add(1, Ordering::Relaxed);
        io.t.tokens.insert(pkid, (id, TokenInner::new_stored()));
    }
    // The first connect runs on the caller's thread (no hand-off to the I/O thread and
    // back: connect latency); the I/O work starts once the connection is up. Each step
    // has its deadline inside `establish`.
    let established = io.establish();
    io.first_connect = false;
    if let Err(e) = established {
        let retry = io.reconnect.as_ref().is_some_and(|r| r.retry_first_connect)
            && !matches!(
                e,
                Error::ConnectionRefused { .. } | Error::InvalidArgument(_) | Error::Tls { .. }
            );
        if !retry {
            io.finish();
            drop(io);
            shared.join_dispatcher();
            return Err(e);
        }
        log::info!(
            "first connect failed ({}); retrying in the background",
            e.report()
        );
        *shared.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(e));
        io.schedule_reconnect(Instant::now());
    }
    // What the handshake allocated goes back now, while the next allocations (the next
    // client's, say) can reuse it: freed later, it would stay resident as holes.
    io.release_idle_memory();
    // A connection with nothing to do yet starts dormant: its socket and keepalive timer go
    // to the watcher, and the first request, message or timer starts its I/O job. Starting
    // a job here instead cost the connect a thread wake-up (the woken job, which has just
    // slept, ran before the caller got its client back: ~20 us of a ~200 us connect here)
    // plus its poll and waker (3 system calls), for a job that would only go to sleep.
    let dormant = io.start_dormant(Instant::now());
    let io = Arc::new(Mutex::new(io));
    if dormant && shared.sleeper.first_dormant(&io) {
        // As a client that went dormant: a publish may go out on the caller's thread.
        shared.parked.store(true, Ordering::SeqCst);
    } else {
        // The job makes its poll (`Io::resume`) and takes the socket back from the watcher.
        shared.sleeper.first_job(&io)?;
    }

    let client = Client {
        owner: true,
        io,
        messages: Messages {
            rx: msg_rx,
            shared: shared.clone(),
        },
        shared,
        request_timeout: opts.request_timeout,
        version: opts.version,
    };
    if let Some(slot) = opts.client_slot.take() {
        slot.fill_with_view_of(&client);
    }
    Ok(client)
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

/// Loads the persisted in-flight state into the session; unreadable records are reported
/// in the log and skipped. A torn one (a write a kill cut short, through a store that writes
/// in place: the session writes each record before its packet goes out, so that packet was
/// never sent) is removed; any other stays in the store for inspection, since it may hold
/// a message (a read transform that does not match the write transform, damage).
fn restore(store: &mut Persister, session: &mut Session) -> Result<()> {
    let (good, bad) = store.load();
    for (key, err) in bad {
        let done = match store.remove_if_torn(&key) {
            Ok(true) => "was torn (a write cut short) and was removed",
            Ok(false) => "was skipped",
            Err(_) => "was torn and could not be removed",
        };
        log::error!(
            "persisted record {key:?} is unreadable and {done}: {}",
            crate::error::report(&err)
        );
    }
    for (key, packet) in good {
        session.restore(key, packet).map_err(|e| {
            log::error!("persisted record {key:?} cannot be restored: {e}");
            Error::from(crate::persist::PersistError::Corrupt {
                key: format!("{key:?}"),
                reason: "the session refused the record",
            })
        })?;
    }
    Ok(())
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("version", &self.version)
            .field("connected", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}
