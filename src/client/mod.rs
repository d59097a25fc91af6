//! The blocking client: [`Client`], its options, delivery tokens and incoming messages.
//!
//! One named I/O thread per client owns the socket and the sans-IO [`Session`] (`io/`).
//! API calls post control requests and publishes to it over crossbeam channels and wake it
//! (no timer ticks); it answers over our own queue (`queue.rs`), which also carries messages
//! and callback events to the application. A lone publish made while the I/O thread sleeps
//! is written on the caller's thread. Acknowledgements of received messages go through the
//! ack book in [`Shared`]. Callbacks, when used, run on a second per-client dispatch thread
//! (`dispatch.rs`), so they may call the client.
//!
//! [`Session`]: crate::proto::session::Session

mod dispatch;
mod io;
pub mod options;
pub(crate) mod queue;
pub(crate) mod threads;
mod token;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

pub use options::{
    ConnectOptions, Message, Payload, ReconnectCredentials, ReconnectOptions, Scheme, ServerUri,
    TlsOptions, TlsPsk, TlsVersion,
};
pub use token::{Delivered, DeliveryToken};

use crate::error::{Error, Result, Step};
use crate::proto::{
    Disconnect, Properties, ProtocolVersion, Publish, QoS, SubAck, SubscribeFilter,
    SubscribeOptions, UnsubAck,
};

/// A publish made at least this long after the previous one is "lone": if the I/O thread
/// sleeps, the caller writes it itself instead of waking it (one thread hand-off less on the
/// way out). Closer publishes would each cost a system call; they go to the I/O thread,
/// which batches them. About the time it takes to wake the I/O thread.
const DIRECT_GAP: Duration = Duration::from_micros(20);

const STATE_CONNECTING: u8 = 0;
const STATE_CONNECTED: u8 = 1;
const STATE_RECONNECTING: u8 = 2;
const STATE_DISCONNECTED: u8 = 3;
const STATE_CLOSED: u8 = 4;

/// Connection state of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// The first connect is under way.
    Connecting,
    /// Connected to a broker.
    Connected,
    /// Lost, and automatic reconnection is trying.
    Reconnecting,
    /// Not connected and not trying (after `disconnect`, or a loss without auto-reconnect).
    Disconnected,
    /// Shut down for good.
    Closed,
}

/// Counters of one client, for observability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// PUBLISH packets handed to the session (accepted publishes).
    pub published: u64,
    /// Application messages received.
    pub received: u64,
    /// Successful reconnects after a loss.
    pub reconnects: u64,
    /// Publishes refused because the offline buffer was full.
    pub dropped: u64,
}

/// Result of a successful connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    /// The broker still had a session for this client.
    pub session_present: bool,
    /// The server URI that accepted the connection, as given, always with its scheme
    /// (`localhost:1883` is reported as `tcp://localhost:1883`); the same after
    /// [`Client::reconnect`].
    pub server: String,
    /// Protocol version in use.
    pub version: ProtocolVersion,
    /// v5 CONNACK properties (assigned client id, receive maximum, ...).
    pub properties: Properties,
}

/// Items flowing from the I/O thread to the application.
#[derive(Debug)]
pub(crate) enum Incoming {
    Message(Message),
    Connected(bool),
    Lost(Arc<Error>),
    Delivered(DeliveryEvent),
    ServerDisconnect(Disconnect),
}

/// A finished outgoing QoS 1/2 publish, as given to the `on_delivered` callback.
#[derive(Debug, Clone)]
pub struct DeliveryEvent {
    /// The id of the publish's [`DeliveryToken`].
    pub token_id: u64,
    /// Its packet id.
    pub packet_id: u16,
    /// Type of the packet that ended the flow: 4 PUBACK, 5 PUBREC (refused), 7 PUBCOMP.
    pub packet_type: u8,
    /// Outcome.
    pub result: std::result::Result<Delivered, Arc<Error>>,
}

/// State shared between API handles, the I/O thread and the dispatch thread.
#[derive(Debug)]
pub(crate) struct Shared {
    state: AtomicU8,
    last_error: Mutex<Option<Arc<Error>>>,
    connect_info: Mutex<Option<ConnectInfo>>,
    /// Control requests to the I/O thread.
    ctl: queue::Mailbox<Control>,
    /// Publish requests to the I/O thread (a short queue).
    publishes: queue::Mailbox<Box<PubReq>>,
    /// How to wake the I/O thread (`wake`).
    sleeper: Arc<io::Sleeper>,
    parked: AtomicBool,
    read_paused: AtomicBool,
    dispatch_waiting: AtomicUsize,
    /// Threads waiting for a delivery token that read nothing themselves
    /// (`io::ReplyWaiter`): while there are any, a consumer does not keep the socket
    /// unread while it works (`lend::read_for_consumer`).
    pub(crate) reply_waiters: AtomicUsize,
    /// A consumer keeps the socket lent, idle (mirrors `Io::lent_idle` for waiters that do
    /// not take the `Io` lock unless it is set).
    pub(crate) idle_lend: AtomicBool,
    /// The thread running the callbacks, while there is one (`dispatch`).
    dispatcher: Mutex<Option<threads::Worker>>,
    /// Publishers waiting for room in the full request channel, and their wake-up (sent by
    /// the I/O thread once the channel is at most half full: one wake-up per batch).
    room: Mutex<()>,
    room_cv: Condvar,
    room_waiters: AtomicUsize,
    /// When the last publish was made, in ns since `epoch` (see `DIRECT_GAP`).
    last_publish: AtomicU64,
    epoch: Instant,
    next_token: AtomicU64,
    published: AtomicU64,
    received: AtomicU64,
    reconnects: AtomicU64,
    dropped: AtomicU64,
    /// Acknowledgements of incoming QoS 1/2 messages, from the application to the I/O thread.
    acks: Mutex<AckBook>,
    /// `acks.ready` is not empty (read without the lock by the I/O thread).
    acks_pending: AtomicBool,
    /// `ConnectOptions::manual_acks`.
    manual_acks: bool,
    /// Messages go to the `on_message` callback, never to `Messages`.
    messages_to_callback: bool,
    /// The store outlives the process: a QoS 2 acknowledgement waits for its marker.
    durable_acks: bool,
    /// Signalled when the I/O thread has stored what `acks.completed` counts.
    ack_cv: Condvar,
    /// Messages `recv*` returned, not yet acknowledged, by receiving thread. Acknowledged
    /// when the application drops the message, when that thread asks for the next
    /// message, or at disconnect/close, whichever comes first.
    held: Mutex<Vec<(ThreadId, Weak<Held>)>>,
    /// `held.len()`, read without the lock.
    held_count: AtomicUsize,
}

/// Incoming QoS 1/2 messages on their way to the application, and their acknowledgements.
#[derive(Debug, Default)]
pub(crate) struct AckBook {
    /// Bumped when the server starts a new session: receipts of older messages are void.
    generation: u64,
    /// Packet ids of messages handed towards the application and not yet acknowledged.
    outstanding: crate::proto::IdSet<u16>,
    /// Acknowledged by the application, for the I/O thread to send.
    ready: Vec<u16>,
    /// Acknowledgements pushed to `ready` so far, and how many of them the I/O thread has
    /// passed to the session and stored.
    submitted: u64,
    completed: u64,
    /// Threads waiting in `Shared::ack` for `completed`.
    waiters: usize,
}

/// The acknowledgement an incoming QoS 1/2 message owes the broker ([`Message::ack`]).
#[derive(Clone)]
pub(crate) struct Receipt {
    shared: Arc<Shared>,
    pkid: u16,
    qos: QoS,
    generation: u64,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("pkid", &self.pkid)
            .field("generation", &self.generation)
            .finish()
    }
}

/// The acknowledgement of a message `recv*` returned (without `manual_acks`), shared by
/// the message's clones: it goes when the last clone is dropped, or earlier when the
/// receiving thread asks for the next message (`Shared::held` has a weak reference), once.
pub(crate) struct Held {
    receipt: Receipt,
    done: AtomicBool,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("pkid", &self.receipt.pkid)
            .field("done", &self.done)
            .finish()
    }
}

impl Held {
    /// Acknowledges unless done already (`send`: see [`Shared::ack_then`]); true if this
    /// call did.
    pub(crate) fn release(&self, send: bool) -> bool {
        if self.done.swap(true, Ordering::SeqCst) {
            return false;
        }
        let r = &self.receipt;
        // Errors: the session ended or the client closed; nothing to send then.
        let _ = r.shared.ack_then(r.pkid, r.qos, r.generation, send);
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release(true);
    }
}

impl Receipt {
    pub(crate) fn ack(&self) -> Result<()> {
        self.shared.ack(self.pkid, self.qos, self.generation)
    }

    pub(crate) fn pending(&self) -> bool {
        let b = self.shared.ack_book();
        b.generation == self.generation && b.outstanding.contains(&self.pkid)
    }
}

impl Shared {
    fn ack_book(&self) -> std::sync::MutexGuard<'_, AckBook> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the application has the message with this packet id (of this session
    /// generation) and wakes the I/O thread to send the acknowledgement. With a durable
    /// store a QoS 2 acknowledgement returns once its marker is stored, so that a process
    /// killed later does not get the message again (bounded wait: the I/O thread stores it
    /// at its next turn).
    fn ack(&self, pkid: u16, qos: QoS, generation: u64) -> Result<()> {
        self.ack_then(pkid, qos, generation, true)
    }

    /// As [`ack`](Self::ack); `send: false` leaves sending to the caller, which is about to
    /// read the socket itself (`io::read_while_waiting` sends what the book holds) or calls
    /// [`send_acks`](Self::send_acks) if it could not.
    fn ack_then(&self, pkid: u16, qos: QoS, generation: u64, send: bool) -> Result<()> {
        let mut b = self.ack_book();
        if b.generation != generation {
            return Err(Error::SessionEnded);
        }
        if !b.outstanding.remove(&pkid) {
            return Err(Error::AlreadyAcknowledged);
        }
        if self.state.load(Ordering::Acquire) == STATE_CLOSED {
            return Err(Error::Closed);
        }
        b.ready.push(pkid);
        b.submitted += 1;
        let ticket = b.submitted;
        self.acks_pending.store(true, Ordering::SeqCst);
        drop(b);
        if send || self.durable_acks {
            self.send_acks();
        }
        if qos == QoS::ExactlyOnce && self.durable_acks {
            self.wait_stored(ticket);
        }
        Ok(())
    }

    /// Sends the acknowledgements made so far: on this thread while the I/O thread sleeps
    /// (as a lone publish, `Io::send_acks_direct`: no wake-up of the I/O thread, whose turn
    /// for one PUBACK cost a context switch per received message), else by waking it. With
    /// a durable store the I/O thread stores and sends them (`wait_stored`).
    fn send_acks(&self) {
        if self.parked.load(Ordering::SeqCst) && !self.durable_acks {
            if let Some(io) = self.sleeper.io() {
                if let Ok(mut g) = io.try_lock() {
                    if g.send_acks_direct() {
                        return;
                    }
                }
            }
        }
        self.wake();
    }

    /// Waits until the I/O thread has stored acknowledgement number `ticket` (at most 5 s;
    /// not on the I/O thread, which is the one that stores).
    fn wait_stored(&self, ticket: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut b = self.ack_book();
        b.waiters += 1;
        while b.completed < ticket && self.state.load(Ordering::Acquire) != STATE_CLOSED {
            let now = Instant::now();
            if now >= deadline {
                log::warn!("acknowledgement not stored within 5 s; going on");
                break;
            }
            b = self
                .ack_cv
                .wait_timeout(b, (deadline - now).min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        b.waiters -= 1;
    }

    /// The I/O thread has passed acknowledgements up to `upto` to the session and stored
    /// their markers.
    pub(crate) fn acks_stored(&self, upto: u64) {
        let mut b = self.ack_book();
        if upto > b.completed {
            b.completed = upto;
            if b.waiters > 0 {
                self.ack_cv.notify_all();
            }
        }
    }

    /// A receipt for an incoming QoS 1/2 message about to be handed over.
    pub(crate) fn receipt(self: &Arc<Self>, pkid: u16, qos: QoS) -> Receipt {
        let mut b = self.ack_book();
        b.outstanding.insert(pkid);
        Receipt {
            shared: self.clone(),
            pkid,
            qos,
            generation: b.generation,
        }
    }

    /// The server started a new session: receipts of earlier messages are void.
    pub(crate) fn new_ack_generation(&self) {
        let mut b = self.ack_book();
        b.generation += 1;
        b.outstanding.clear();
        b.ready.clear();
        self.acks_pending.store(false, Ordering::SeqCst);
    }

    /// Moves the acknowledgements made by the application into `into` (I/O thread);
    /// returns the count to report to [`acks_stored`](Self::acks_stored) once they are
    /// stored, if any were taken.
    pub(crate) fn take_acks(&self, into: &mut Vec<u16>) -> Option<u64> {
        if !self.acks_pending.load(Ordering::SeqCst) {
            return None;
        }
        let mut b = self.ack_book();
        self.acks_pending.store(false, Ordering::SeqCst);
        std::mem::swap(&mut b.ready, into);
        Some(b.submitted)
    }

    pub(crate) fn acks_pending(&self) -> bool {
        self.acks_pending.load(Ordering::SeqCst)
    }

    /// A message `recv*` is about to return (without `manual_acks`): it is acknowledged
    /// when the application drops it (its last clone) or this thread comes back for the
    /// next one (the application has then done with it), or at disconnect/close. The
    /// receipt moves into the message's [`Held`].
    fn hold(&self, m: &mut Message) {
        if self.manual_acks {
            return;
        }
        if let Some(receipt) = m.receipt.take() {
            let held = Arc::new(Held {
                receipt,
                done: AtomicBool::new(false),
            });
            let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
            // Entries of messages already dropped (acknowledged then) go here too.
            h.retain(|(_, w)| w.strong_count() > 0);
            h.push((std::thread::current().id(), Arc::downgrade(&held)));
            self.held_count.store(h.len(), Ordering::SeqCst);
            m.held = Some(held);
        }
    }

    /// The calling thread is back for another message: what it took before is done.
    /// `send: false`: see [`ack_then`](Self::ack_then); returns whether anything was
    /// acknowledged.
    fn release_held_by_this_thread(&self, send: bool) -> bool {
        if self.held_count.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let me = std::thread::current().id();
        let mut mine = Vec::new();
        {
            let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
            h.retain(|(t, w)| {
                if *t == me {
                    mine.extend(w.upgrade());
                }
                *t != me
            });
            self.held_count.store(h.len(), Ordering::SeqCst);
        }
        let mut any = false;
        for held in &mine {
            any |= held.release(send);
        }
        // `mine` is dropped here: `release` has marked each done, so no second ack.
        any
    }

    /// Disconnect or close: every message `recv*` returned counts as taken.
    pub(crate) fn release_all_held(&self) {
        if self.held_count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let all = {
            let mut h = self.held.lock().unwrap_or_else(|e| e.into_inner());
            self.held_count.store(0, Ordering::SeqCst);
            std::mem::take(&mut *h)
        };
        for (_, w) in all {
            if let Some(held) = w.upgrade() {
                held.release(true);
            }
        }
    }

    pub(crate) fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            STATE_CONNECTING => State::Connecting,
            STATE_CONNECTED => State::Connected,
            STATE_RECONNECTING => State::Reconnecting,
            STATE_DISCONNECTED => State::Disconnected,
            _ => State::Closed,
        }
    }

    fn set_state(&self, s: u8) {
        self.state.store(s, Ordering::Release);
    }

    /// Disconnected or closed: waits for the network cannot succeed.
    pub(crate) fn is_down(&self) -> bool {
        self.state.load(Ordering::Acquire) >= STATE_DISCONNECTED
    }

    pub(crate) fn down_error(&self) -> Error {
        if self.state.load(Ordering::Acquire) == STATE_CLOSED {
            return Error::Closed;
        }
        Error::NotConnected
    }

    /// Wakes the I/O thread if it is parked (in its poll, or on its condition variable).
    pub(crate) fn wake(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            self.sleeper.ring();
        }
    }

    /// As [`wake`](Self::wake), from a thread that then waits for its request (disconnect,
    /// shutdown): a dormant client makes its turn on this thread (`Sleeper::ring_here`).
    pub(crate) fn wake_here(&self) {
        if self.parked.swap(false, Ordering::SeqCst) {
            self.sleeper.ring_here();
        }
    }

    /// Wakes publishers waiting for room in the request channel.
    pub(crate) fn notify_room(&self) {
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.room.lock().unwrap_or_else(|e| e.into_inner());
            self.room_cv.notify_all();
        }
    }

    fn on_dispatch_thread(&self) -> bool {
        dispatch::on_dispatch_thread(self)
    }

    fn dispatcher(&self) -> std::sync::MutexGuard<'_, Option<threads::Worker>> {
        self.dispatcher.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the callbacks' thread, if any, has finished (unless called on it).
    fn join_dispatcher(&self) {
        if self.on_dispatch_thread() {
            return;
        }
        let w = self.dispatcher().take();
        if let Some(w) = w {
            w.join();
        }
    }
}

/// While alive, tells the I/O thread that the dispatch thread is blocked in an API call, so
/// it keeps reading past the incoming capacity (otherwise the reply could never be read).
struct DispatchWaitGuard<'a>(Option<&'a Shared>);

impl<'a> DispatchWaitGuard<'a> {
    fn new(shared: &'a Shared) -> Self {
        if shared.on_dispatch_thread() {
            shared.dispatch_waiting.fetch_add(1, Ordering::SeqCst);
            shared.parked.store(true, Ordering::SeqCst);
            shared.wake();
            DispatchWaitGuard(Some(shared))
        } else {
            DispatchWaitGuard(None)
        }
    }
}

impl Drop for DispatchWaitGuard<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            s.dispatch_waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Where the I/O thread sends the answer to one control request; dropped unanswered, it
/// tells the waiting caller that the client is gone.
pub(crate) type Reply<T> = queue::Producer<T>;

pub(crate) enum Control {
    Connect {
        reply: Reply<Result<ConnectInfo>>,
    },
    Subscribe {
        filters: Vec<SubscribeFilter>,
        properties: Properties,
        reply: Reply<Result<SubAck>>,
    },
    Unsubscribe {
        filters: Vec<String>,
        properties: Properties,
        reply: Reply<Result<UnsubAck>>,
    },
    Disconnect {
        packet: Disconnect,
        timeout: Duration,
        reply: Reply<Result<()>>,
    },
    Abort,
    Pending {
        reply: Reply<Vec<(u64, u16)>>,
    },
    PendingTokens {
        reply: Reply<Vec<(u64, u16, Arc<token::TokenInner>)>>,
    },
    Shutdown,
}

pub(crate) struct PubReq {
    pub(crate) publish: Publish,
    pub(crate) id: u64,
    pub(crate) token: Arc<token::TokenInner>,
    /// A store record that holds this message until now (MQTTAsync's offline buffer):
    /// removed once the session's own record of the message (which names it) is written,
    /// or when the message is refused for good.
    pub(crate) replaces: Option<Box<str>>,
}

/// How a control request reaches the I/O work (`Client::control_on`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Deliver {
    /// Queued, and the I/O work woken.
    Wake,
    /// Queued; a dormant client makes its turn on this thread (`Shared::wake_here`).
    Here,
    /// Handled on this thread while the I/O thread sleeps in its poll
    /// (`Io::control_direct`), the reply read on this thread too; else as `Wake`.
    Direct,
}

/// Incoming application messages, as a channel. Cloning gives another handle on the same
/// queue (each message goes to one receiver).
///
/// An incoming QoS 1/2 message is acknowledged to the broker (PUBACK / PUBREC) when the
/// application drops it (all its clones) or the thread that received it calls `recv`,
/// `recv_timeout`, `try_recv` (or the iterator's `next`) again, whichever comes first, or
/// at disconnect/close: so a process that dies while it handles a message gets it again
/// from the broker in a resumed session. With
/// [`ConnectOptions::manual_acks`] the application calls [`Message::ack`] itself.
#[derive(Debug, Clone)]
pub struct Messages {
    rx: queue::Consumer<Incoming>,
    shared: Arc<Shared>,
}

impl Messages {
    /// `recv*` on a client whose messages go to `on_message` would wait forever.
    fn check_mode(&self) -> Result<()> {
        if self.shared.messages_to_callback {
            return Err(Error::WouldDeadlock(
                "this client's messages go to its on_message callback; Messages::recv would wait forever",
            ));
        }
        Ok(())
    }

    /// Before waiting for a message: acknowledges what this thread took before, and if
    /// nothing is waiting while the I/O thread sleeps, reads the socket on this thread until
    /// something arrives (one wake-up per reply instead of two in series; see
    /// `client/io/lend.rs`).
    fn release_and_read(&self, deadline: Option<Instant>) {
        if !self.rx.is_empty() {
            self.shared.release_held_by_this_thread(true);
            return;
        }
        // The acknowledgements go out once this thread has the socket (one step less before
        // it does: a reply arriving first would wake the I/O thread instead).
        let acked = self.shared.release_held_by_this_thread(false);
        // The socket stays with this thread while the application handles what it read,
        // until its next call (`io::read_for_consumer`).
        let lent = match self.shared.sleeper.io() {
            Some(io) => {
                io::read_for_consumer(&io, deadline, &|| !self.rx.is_empty(), io::Wait::Reply)
            }
            None => false,
        };
        if acked && !lent {
            self.shared.send_acks();
        }
    }

    fn after_take(&self) {
        if self.shared.read_paused.load(Ordering::Acquire) {
            self.shared.parked.store(true, Ordering::SeqCst);
            self.shared.wake();
        }
    }

    fn map(&self, item: Incoming) -> Option<Result<Message>> {
        match item {
            Incoming::Message(mut m) => {
                self.shared.hold(&mut m);
                Some(Ok(m))
            }
            Incoming::Lost(e) => Some(Err((*e).clone().into_lost())),
            _ => None,
        }
    }

    /// Blocks until a message arrives. `Err(ConnectionLost)` once when the connection
    /// drops (messages received before the loss come first), `Err(Closed)` when the client
    /// has been shut down and every message was taken, `Err(WouldDeadlock)` at once when
    /// the client's messages go to an `on_message` callback.
    pub fn recv(&self) -> Result<Message> {
        self.check_mode()?;
        self.release_and_read(None);
        loop {
            match self.rx.recv() {
                Ok(item) => {
                    self.after_take();
                    if let Some(r) = self.map(item) {
                        return r;
                    }
                }
                Err(_) => return Err(Error::Closed),
            }
        }
    }

    /// As [`recv`](Self::recv), giving up after `timeout` with `Err(Timeout)`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message> {
        self.check_mode()?;
        let deadline = Instant::now().checked_add(timeout);
        self.release_and_read(deadline);
        loop {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(86400),
            };
            match self.rx.recv_timeout(Some(left)) {
                Ok(item) => {
                    self.after_take();
                    if let Some(r) = self.map(item) {
                        return r;
                    }
                }
                Err(queue::RecvError::Empty) => return Err(Error::timeout(Step::Receive, timeout)),
                Err(queue::RecvError::Closed) => return Err(Error::Closed),
            }
        }
    }

    /// A message if one is waiting; `Ok(None)` if none is.
    pub fn try_recv(&self) -> Result<Option<Message>> {
        self.check_mode()?;
        self.shared.release_held_by_this_thread(true);
        loop {
            match self.rx.try_recv() {
                Ok(item) => {
                    self.after_take();
                    if let Some(r) = self.map(item) {
                        return r.map(Some);
                    }
                }
                Err(queue::RecvError::Empty) => return Ok(None),
                Err(queue::RecvError::Closed) => return Err(Error::Closed),
            }
        }
    }

    /// Number of messages waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Iterates over messages until the client is closed; connection-lost notices are
    /// skipped (with automatic reconnect the stream simply continues).
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        std::iter::from_fn(move || loop {
            match self.recv() {
                Ok(m) => return Some(m),
                Err(Error::ConnectionLost(_)) => continue,
                Err(_) => return None,
            }
        })
    }
}

/// A connected MQTT client. `Send + Sync`: share it between threads with `Arc` or scoped
/// threads. Dropping it sends DISCONNECT (after waiting up to the request timeout for
/// in-flight messages) and joins its threads.
#[derive(Debug)]
pub struct Client {
    /// False for the view of the client that `*_with_client` callbacks get: dropping it
    /// leaves the client alone.
    owner: bool,
    shared: Arc<Shared>,
    messages: Messages,
    /// The I/O thread's state, locked by that thread while it works and free while it
    /// sleeps (then a publish may go out on the caller's thread).
    io: Arc<Mutex<io::Io>>,
    request_timeout: Duration,
    version: ProtocolVersion,
}

fn validate_topic(topic: &str) -> Result<()> {
    crate::topic::validate_topic_name(topic).map_err(|e| Error::InvalidTopic {
        topic: topic.to_string(),
        reason: e.to_string(),
    })
}

fn validate_filter(filter: &str) -> Result<()> {
    crate::topic::validate_topic_filter(filter).map_err(|e| Error::InvalidTopic {
        topic: filter.to_string(),
        reason: e.to_string(),
    })
}

impl Client {
    /// Connects to the first server of `options` that accepts (DNS, TCP, TLS and CONNACK
    /// within the connect timeout for each) and returns the connected client.
    pub fn connect(options: ConnectOptions) -> Result<Client> {
        io::start(options)
    }

    /// The incoming message channel (empty when an `on_message` callback is set).
    pub fn messages(&self) -> Messages {
        self.messages.clone()
    }

    /// Current connection state.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        self.shared.state() == State::Connected
    }

    /// Protocol version in use.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// What the last successful connect returned.
    pub fn connect_info(&self) -> Option<ConnectInfo> {
        self.shared
            .connect_info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The cause of the last connection loss, if any.
    pub fn last_error(&self) -> Option<Arc<Error>> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            published: self.shared.published.load(Ordering::Relaxed),
            received: self.shared.received.load(Ordering::Relaxed),
            reconnects: self.shared.reconnects.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }

    /// The default deadline of blocking calls.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn control<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Control,
        step: Step,
        timeout: Duration,
    ) -> Result<T> {
        self.control_on(make, step, timeout, Deliver::Wake)
    }

    fn control_on<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Control,
        step: Step,
        timeout: Duration,
        how: Deliver,
    ) -> Result<T> {
        if self.shared.state() == State::Closed {
            return Err(Error::Closed);
        }
        // Our queue rather than a crossbeam channel: the caller sleeps at once instead of
        // spinning and calling sched_yield while the I/O thread works on the request.
        let (tx, rx) = queue::queue();
        let mut req = make(tx);
        let _guard = DispatchWaitGuard::new(&self.shared);
        if how == Deliver::Direct && self.shared.parked.load(Ordering::SeqCst) {
            // Written here and the reply read here: it wakes this thread, not the I/O
            // thread and then this one. (A request the session refused has its reply
            // already: `rx` is not empty, nothing is read.)
            let deadline = Instant::now().checked_add(timeout);
            match io::send_and_read(&self.io, deadline, &|| !rx.is_empty(), req, |g, c| {
                g.control_direct(c)
            }) {
                Ok(()) => return recv_reply(&rx, step, timeout),
                Err(c) => req = c,
            }
        }
        self.shared.ctl.try_send(req).map_err(|_| Error::Closed)?;
        if how == Deliver::Here {
            self.shared.wake_here();
        } else {
            self.shared.wake();
        }
        recv_reply(&rx, step, timeout)
    }

    /// Queues a publish and returns its token at once (blocking only while the client's
    /// queue is full, at most the request timeout). QoS 1/2 messages are resent after a
    /// reconnect until acknowledged.
    pub fn publish(&self, message: Message) -> Result<DeliveryToken> {
        self.publish_timeout(message, self.request_timeout)
    }

    /// As [`publish`](Self::publish) with an explicit deadline for queue room.
    pub fn publish_timeout(&self, message: Message, timeout: Duration) -> Result<DeliveryToken> {
        self.publish_replacing(message, timeout, None)
    }

    /// As [`publish_timeout`](Self::publish_timeout); the record `replaces` of the
    /// client's store (which held the message until now, e.g. written with
    /// [`persist::encode_message_record`](crate::persist::encode_message_record)) is
    /// removed once the client's own record of the message is written, or when the
    /// message is refused for good, so the message is never absent from the store. The
    /// client's record names `replaces`: after a kill between the two writes,
    /// [`persist::replaced_keys`](crate::persist::replaced_keys) tells that the message was
    /// taken. Left in place when this returns an error.
    #[doc(hidden)]
    pub fn publish_replacing(
        &self,
        message: Message,
        timeout: Duration,
        replaces: Option<Box<str>>,
    ) -> Result<DeliveryToken> {
        validate_topic(&message.topic)?;
        match self.shared.state() {
            State::Connected | State::Reconnecting | State::Connecting => {}
            State::Disconnected => return Err(Error::NotConnected),
            State::Closed => return Err(Error::Closed),
        }
        let inner = token::TokenInner::new();
        let id = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        let req = Box::new(PubReq {
            publish: Publish {
                dup: false,
                qos: message.qos,
                retain: message.retain,
                topic: message.topic,
                pkid: 0,
                payload: message.payload,
                properties: message.properties,
            },
            id,
            token: inner.clone(),
            replaces,
        });
        // A lone publish (none in the last DIRECT_GAP) while the I/O thread sleeps goes out
        // on this thread; publishes in quick succession go through the channel, so the I/O
        // thread writes them in batches. So does a QoS 1/2 publish that the in-flight window
        // leaves nothing to batch with (`Io::window_bound`): a publisher that waits for
        // each completion (Paho's deliveryComplete pattern) publishes every 10-20 us.
        let now = self.shared.epoch.elapsed().as_nanos() as u64;
        let prev = self.shared.last_publish.swap(now, Ordering::Relaxed);
        let lone = now.saturating_sub(prev) >= DIRECT_GAP.as_nanos() as u64;
        let mut req = req;
        if (lone || req.publish.qos != QoS::AtMostOnce)
            && self.shared.parked.load(Ordering::SeqCst)
            && self.shared.publishes.is_empty()
        {
            let io = match self.io.try_lock() {
                Ok(g) => Some(g),
                // The I/O thread sleeps, so the holder is a thread borrowing the socket or
                // sending acknowledgements, for a few microseconds: waiting for it beats a
                // hand-over through the channel that wakes the I/O thread (C publish with
                // deliveryComplete: the dispatch thread takes the socket again right after
                // the callback that lets this publish go). Not with a durable store, whose
                // writes (fsync) run under the same lock.
                Err(std::sync::TryLockError::WouldBlock)
                    if req.publish.qos != QoS::AtMostOnce && !self.shared.durable_acks =>
                {
                    let g = self.io.lock().unwrap_or_else(|e| e.into_inner());
                    self.shared.parked.load(Ordering::SeqCst).then_some(g)
                }
                Err(_) => None,
            };
            if let Some(mut io) = io {
                let r = if lone || io.window_bound() {
                    io.publish_direct(req)
                } else {
                    Err(req)
                };
                match r {
                    Ok(()) => {
                        return Ok(DeliveryToken {
                            id,
                            inner,
                            shared: self.shared.clone(),
                            default_timeout: self.request_timeout,
                        })
                    }
                    Err(r) => req = r,
                }
            }
        }
        match self.shared.publishes.try_send(req) {
            Ok(()) => {}
            Err(queue::SendError::Full(mut req)) => {
                // Not the channel's own blocking send: it spins and yields before sleeping,
                // and would wake for every slot freed. This sleeps until the I/O thread has
                // emptied half the channel.
                let deadline = Instant::now() + timeout;
                let _guard = DispatchWaitGuard::new(&self.shared);
                loop {
                    self.shared.wake();
                    self.wait_for_room(deadline, timeout)?;
                    match self.shared.publishes.try_send(req) {
                        Ok(()) => break,
                        Err(queue::SendError::Full(r)) => req = r,
                        Err(queue::SendError::Closed(_)) => return Err(Error::Closed),
                    }
                }
            }
            Err(queue::SendError::Closed(_)) => return Err(Error::Closed),
        }
        self.shared.wake();
        Ok(DeliveryToken {
            id,
            inner,
            shared: self.shared.clone(),
            default_timeout: self.request_timeout,
        })
    }

    /// Sleeps until the request channel has room (`Ok`), the client is closed
    /// (`Err(Closed)`), or the deadline (`Err(Timeout)`).
    fn wait_for_room(&self, deadline: Instant, timeout: Duration) -> Result<()> {
        let sh = &self.shared;
        let mut g = sh.room.lock().unwrap_or_else(|e| e.into_inner());
        // Counted under the lock, then re-checked: the I/O thread frees room before it
        // looks at the count, so either it sees us or we see the room.
        sh.room_waiters.fetch_add(1, Ordering::SeqCst);
        let r = loop {
            if sh.state.load(Ordering::Acquire) == STATE_CLOSED {
                break Err(Error::Closed);
            }
            if !self.shared.publishes.is_full() {
                break Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                break Err(Error::timeout(Step::Queue, timeout));
            }
            g = sh
                .room_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        sh.room_waiters.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Publishes and waits for the acknowledgement (PUBACK / PUBCOMP; for QoS 0 until the
    /// message is handed to the connection), within the request timeout.
    pub fn publish_wait(&self, message: Message) -> Result<Delivered> {
        let deadline = Instant::now() + self.request_timeout;
        let token = self.publish(message)?;
        let _guard = DispatchWaitGuard::new(&self.shared);
        token.wait_timeout(deadline.saturating_duration_since(Instant::now()))
    }

    /// Subscribes to one filter and returns the QoS the broker granted. A refusal (SUBACK
    /// code >= 0x80) is `Err(Rejected)`.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS> {
        let ack = self.subscribe_many(
            vec![SubscribeFilter {
                filter: filter.to_string(),
                options: SubscribeOptions {
                    qos,
                    ..Default::default()
                },
            }],
            Properties::new(),
        )?;
        let code = ack.return_codes.first().copied().unwrap_or(0x80);
        QoS::from_u8(code).ok_or(Error::Rejected {
            code,
            reason: crate::proto::reason::reason_name(code).unwrap_or("Unspecified error"),
        })
    }

    /// Subscribes to several filters with full (v5) options and properties; returns the
    /// SUBACK (one code per filter: granted QoS, or a failure code >= 0x80).
    pub fn subscribe_many(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<SubAck> {
        self.subscribe_many_timeout(filters, properties, self.request_timeout)
    }

    /// As [`subscribe_many`](Self::subscribe_many) with an explicit deadline.
    pub fn subscribe_many_timeout(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
        timeout: Duration,
    ) -> Result<SubAck> {
        if filters.is_empty() {
            return Err(Error::InvalidArgument("no topic filter".into()));
        }
        for f in &filters {
            validate_filter(&f.filter)?;
            if self.version != ProtocolVersion::V5
                && (f.options.no_local
                    || f.options.retain_as_published
                    || f.options.retain_handling != Default::default())
            {
                return Err(Error::InvalidArgument(
                    "subscription options need MQTT 5".into(),
                ));
            }
        }
        self.control_on(
            |reply| Control::Subscribe {
                filters,
                properties,
                reply,
            },
            Step::SubAck,
            timeout,
            Deliver::Direct,
        )?
    }

    /// Removes one subscription.
    pub fn unsubscribe(&self, filter: &str) -> Result<()> {
        let ack = self.unsubscribe_many(vec![filter.to_string()], Properties::new())?;
        match ack.reason_codes.first() {
            Some(&c) if c >= 0x80 => Err(Error::Rejected {
                code: c,
                reason: crate::proto::reason::reason_name(c).unwrap_or("Unspecified error"),
            }),
            _ => Ok(()),
        }
    }

    /// Removes several subscriptions; returns the UNSUBACK (v5 reason codes; empty for 3.x).
    pub fn unsubscribe_many(
        &self,
        filters: Vec<String>,
        properties: Properties,
    ) -> Result<UnsubAck> {
        self.unsubscribe_many_timeout(filters, properties, self.request_timeout)
    }

    /// As [`unsubscribe_many`](Self::unsubscribe_many) with an explicit deadline (the C
    /// API's `MQTTClient_setCommandTimeout` can change it after connecting).
    pub fn unsubscribe_many_timeout(
        &self,
        filters: Vec<String>,
        properties: Properties,
        timeout: Duration,
    ) -> Result<UnsubAck> {
        if filters.is_empty() {
            return Err(Error::InvalidArgument("no topic filter".into()));
        }
        for f in &filters {
            validate_filter(f)?;
        }
        self.control_on(
            |reply| Control::Unsubscribe {
                filters,
                properties,
                reply,
            },
            Step::UnsubAck,
            timeout,
            Deliver::Direct,
        )?
    }

    /// Waits up to the request timeout for in-flight messages, sends DISCONNECT (normal)
    /// and closes the connection. The client can [`reconnect`](Self::reconnect) later.
    /// Succeeds when already disconnected.
    pub fn disconnect(&self) -> Result<()> {
        self.disconnect_with(Disconnect::default(), self.request_timeout)
    }

    /// Disconnects with a v5 reason code and properties, waiting at most `timeout` for
    /// in-flight messages first.
    pub fn disconnect_with(&self, packet: Disconnect, timeout: Duration) -> Result<()> {
        if self.shared.state() == State::Closed {
            return Ok(());
        }
        // Messages the application took are acknowledged before the goodbye.
        self.shared.release_all_held();
        self.control_on(
            |reply| Control::Disconnect {
                packet,
                timeout,
                reply,
            },
            Step::Disconnect,
            timeout + Duration::from_secs(5),
            Deliver::Here,
        )?
    }

    /// Closes the network connection without DISCONNECT, as if the link had failed: the
    /// broker publishes the will. No automatic reconnect follows.
    pub fn abort(&self) {
        if self.shared.ctl.try_send(Control::Abort).is_ok() {
            self.shared.wake();
        }
    }

    /// Connects again with the same options and session (unacknowledged messages are
    /// resent). Returns at once if already connected.
    pub fn reconnect(&self) -> Result<ConnectInfo> {
        let t = self.connect_deadline();
        self.control(|reply| Control::Connect { reply }, Step::ConnAck, t)?
    }

    fn connect_deadline(&self) -> Duration {
        Duration::from_secs(3600)
    }

    /// Outgoing QoS 1/2 publishes not yet completed: (token id, packet id). Publishes made
    /// before this call are taken into the session first (and so are in persistence, when
    /// configured) unless the in-flight window or the connection state holds them back.
    pub fn pending_deliveries(&self) -> Result<Vec<(u64, u16)>> {
        self.control(
            |reply| Control::Pending { reply },
            Step::Queue,
            self.request_timeout,
        )
    }

    /// Delivery tokens of the outgoing QoS 1/2 publishes not yet completed, with their packet
    /// ids, in the order they were accepted: also for messages restored from persistence
    /// when the client was created (they get tokens then, so a program restarted after a
    /// crash can wait for them, and `on_delivered` reports them).
    pub fn pending_tokens(&self) -> Result<Vec<(u16, DeliveryToken)>> {
        let v = self.control(
            |reply| Control::PendingTokens { reply },
            Step::Queue,
            self.request_timeout,
        )?;
        Ok(v.into_iter()
            .map(|(id, pkid, inner)| {
                (
                    pkid,
                    DeliveryToken {
                        id,
                        inner,
                        shared: self.shared.clone(),
                        default_timeout: self.request_timeout,
                    },
                )
            })
            .collect())
    }

    /// Disconnects (as [`disconnect`](Self::disconnect)) and shuts the client down,
    /// reporting a failure that `Drop` would have to swallow.
    pub fn close(self) -> Result<()> {
        let r = if self.is_connected() {
            self.disconnect()
        } else {
            Ok(())
        };
        drop(self);
        r
    }
}

/// Where `*_with_client` callbacks find their client: filled by `Client::connect` once the
/// client exists (a callback that runs before that, for a message that came with CONNACK,
/// waits for it).
#[derive(Default)]
pub(crate) struct ClientSlot {
    client: OnceLock<Client>,
    ready: Mutex<bool>,
    cv: Condvar,
}

impl ClientSlot {
    fn fill(&self, c: Client) {
        let _ = self.client.set(c);
        *self.ready.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// The client, once `Client::connect` has built it.
    pub(crate) fn get(&self) -> &Client {
        let mut g = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        while !*g {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        drop(g);
        self.client.get().expect("filled before ready")
    }

    /// A second handle on `c` that does not own it (its drop does nothing).
    pub(crate) fn fill_with_view_of(&self, c: &Client) {
        self.fill(Client {
            owner: false,
            shared: c.shared.clone(),
            messages: c.messages.clone(),
            io: c.io.clone(),
            request_timeout: c.request_timeout,
            version: c.version,
        });
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        // Messages the application took are acknowledged first: by the disconnect when
        // connected, else by the shutdown.
        if self.is_connected() {
            let _ = self.disconnect();
        }
        self.shut_down();
    }
}

impl Client {
    /// Shuts the client down as dropping it does, without a DISCONNECT first (a connected
    /// client sends one as it closes), while other threads may still hold it (in an
    /// `Arc`): when this returns its I/O work has ended, every QoS 1/2 publish it accepted
    /// is in its session's store (when it has one) or failed, its callbacks have run, and
    /// later calls fail with [`Error::Closed`]. For the C layer, which replaces a handle's
    /// client at a connect and must not let the old one write to the store the new one has
    /// read.
    #[doc(hidden)]
    pub fn shut_down(&self) {
        if !self.owner {
            return;
        }
        self.shared.release_all_held();
        let _ = self.shared.ctl.try_send(Control::Shutdown);
        self.shared.parked.store(true, Ordering::SeqCst);
        self.shared.wake_here();
        // The I/O work ends (a dormant client is woken for it).
        self.shared.sleeper.join();
        // The I/O thread has handed over its last items: their callbacks run before this
        // returns (unless it is one of them).
        self.shared.join_dispatcher();
    }
}

/// Waits for the reply to a control request.
fn recv_reply<T>(rx: &queue::Consumer<T>, step: Step, timeout: Duration) -> Result<T> {
    match rx.recv_timeout(Some(timeout)) {
        Ok(v) => Ok(v),
        Err(queue::RecvError::Empty) => Err(Error::timeout(step, timeout)),
        Err(queue::RecvError::Closed) => Err(Error::Closed),
    }
}
