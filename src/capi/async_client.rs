//! The functions of Paho C's `MQTTAsync.h` (1.3.11/1.3.12), on the public Rust API.
//!
//! # Model
//!
//! An `MQTTAsync` handle is a number in a validity table ([`Registry`]), as for
//! `MQTTClient`; a destroyed or garbage handle gives an error code, never a crash. Each
//! handle has two jobs of its own while they have work, on the library's pool threads
//! (unlike Paho's process-wide send and receive threads, one handle's blocked request or
//! slow callback does not stop the others; command jobs share a few runners, see below):
//!
//! - the **command thread** runs the requests that block in the Rust API, one at a time in
//!   order: connect (a fresh [`Client`] on the handle's persistence store each time),
//!   subscribe, unsubscribe, disconnect, reconnect. Requests wait in a bounded queue
//!   (`COMMAND_QUEUE_MAX`, 1024); a full queue makes the call return
//!   `MQTTASYNC_MAX_BUFFERED_MESSAGES` instead of growing without limit;
//! - the **callback thread** calls the application's callbacks that no other thread
//!   runs: `onSuccess`/`onFailure` (and the `5` variants) of requests, `connected` after
//!   `MQTTAsync_connect`, `onSuccess` of QoS 0 publishes, and every event that found
//!   callbacks running or queued. The Rust client's events (messages, acknowledgements,
//!   connection changes) arrive on its dispatch thread, which runs the callback itself
//!   when nothing runs or waits before it (`Events`); so one callback runs at a time, in
//!   the order the events happened, and a stream costs no hand-over per event. Messages
//!   waiting for the callback thread are bounded (`EVENT_QUEUE_MAX`); when full the
//!   Rust client stops reading the socket (back-pressure) instead of buffering. A
//!   request's own callbacks are reserved by the command thread when nothing runs or
//!   waits (`Events::push_reserving`): once the request is done and no other request is
//!   queued it gives the command queue up and runs them itself (`run_reserved`), one
//!   wake-up fewer between the broker's reply and the application.
//!
//! Both threads exist only while they have work (jobs on the library's thread pool, which
//! the Rust clients' I/O and dispatch jobs use too): queueing into a queue that no thread
//! serves starts one (the queue's claim, taken under its lock, so there is never more than
//! one). The command thread leaves as soon as its queue is empty; the callback thread once
//! its queue stayed empty for `LINGER` (0.5 s) if it may linger (a few threads at most,
//! process-wide: `threads::Linger`); either gives the claim back under the queue's lock so
//! nothing queued is left unserved. An idle connected handle therefore has no thread of
//! its own, only its Rust client's I/O thread.
//!
//! Command jobs of all handles share a few runners (`threads::spawn_limited`: 8 at once;
//! a job waiting longer than 10 ms gets a thread anyway, one more per 10 ms): a program
//! that connects 1000 handles in a loop had a thread per connect in flight (~160 at once
//! on a local broker), and their stacks and malloc arenas stayed in the process. A runner
//! that finished a job polls for the next one for up to 150 µs before it leaves (adaptive,
//! at most one poller per spare CPU; three times `MQTTSYNC_SPIN_US`): a program that waits
//! for one request's `onSuccess` and then makes the next makes it sooner than a sleeping
//! thread can be woken (connect 232 -> 212 µs, disconnect 117 -> 84 µs in the benchmark's
//! cycle with a 50 µs poll; connect 210-226 -> 165-194 µs from 50 to 150 µs).
//! `MQTTAsync_destroy` closes both queues and waits for the threads (`Alive`).
//!
//! A slow callback therefore stalls only its own client, and a callback may call any
//! function of the API, including `MQTTAsync_destroy` and `MQTTAsync_waitForCompletion`
//! (a request completes on the command thread or, for a publish, on the client's I/O
//! thread, not when its callback runs).
//!
//! Publishes do not go through the command thread: `MQTTAsync_send` hands the message to
//! the Rust client at once (waiting at most `SEND_ROOM_WAIT` for room in its queue), or
//! to the handle's offline buffer, and returns.
//!
//! # Tokens
//!
//! Every request gets a token, a positive number unique among the handle's pending
//! requests (wrapping within 1..=INT_MAX), not an MQTT packet id. A token is pending until
//! its request completes; `MQTTAsync_isComplete` and `MQTTAsync_waitForCompletion` answer
//! "complete" for tokens they do not know, as Paho does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_ulong, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::async_types::*;
use super::connect_opts::{
    known_scheme, opt_str, store_from_c, strip_scheme, tls_from_c, will_from_c, CTls, WebParams,
};
use super::convert::{c_string, message_to_c, properties_from_c, properties_to_c, topic_to_c};
use super::ffi::{bytes_from_c, c_array, copy_versioned, guard, guard_rc, str_from_c};
use super::handles::{error_code, Registry, SendPtr};
use super::persistence::{family, SharedStore};
use super::properties::free_properties;
use super::types::enums::*;
use super::types::*;
use crate::client::threads::Linger;
use crate::persist::Store;
use crate::{
    Client, ConnectInfo, DeliveryEvent, DeliveryToken, Disconnect, Error, Message, Properties,
    ProtocolVersion, QoS, ReconnectOptions, RetainHandling, ServerUri, Step, SubscribeFilter,
    SubscribeOptions,
};

/// Requests (connect, subscribe, unsubscribe, disconnect) waiting for the command thread.
const COMMAND_QUEUE_MAX: usize = 1024;
/// Incoming messages waiting for the callback thread before the Rust client is made to
/// wait (and so stops reading the socket).
const EVENT_QUEUE_MAX: usize = 1024;

/// How long the callback thread naps, before it sleeps, after a batch that shows a stream
/// of QoS 0 `onSuccess` events: [`NAP_ENTER`] of them queued while it ran or woke up (the
/// application publishes without waiting for them), or [`NAP_KEEP`] during its last nap.
/// While it naps, more of them queue without waking it (a thread wake-up per few publishes
/// cost the application's thread more than the publishes themselves) and run together at
/// the nap's end, up to this much (plus the timer's slack) later. Any other event wakes
/// it as before; so does a publish whose `onSuccess` the application waits for before the
/// next (the thread is asleep then, not napping).
const NAP: Duration = Duration::from_micros(50);
/// Lazy events in a batch taken after a wake-up that start the naps.
const NAP_ENTER: u32 = 64;
/// Lazy events gathered during a nap that keep the naps going.
const NAP_KEEP: u32 = 16;
/// Events queued during a nap that end it early.
const NAP_BATCH: usize = 256;
/// How long a publish waits for room in the Rust client's queue of publishes not yet taken
/// by its I/O thread (flow control: the I/O thread empties it as fast as the socket takes
/// data) before `MQTTASYNC_MAX_BUFFERED_MESSAGES`.
const SEND_ROOM_WAIT: Duration = Duration::from_millis(100);
/// How long a QoS 1/2 send over a durable store waits for the message to be in the store
/// (the I/O thread takes it into the session when the in-flight window and the session's
/// queue have room, and writes its record then) before it writes a record itself
/// ([`hold_in_store`]).
const STORED_WAIT: Duration = Duration::from_secs(10);
/// How long subscribe and unsubscribe wait for SUBACK / UNSUBACK before `onFailure`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// First and largest pause before redelivering a message that `messageArrived` refused.
const REDELIVER_FIRST: Duration = Duration::from_millis(10);
const REDELIVER_MAX: Duration = Duration::from_secs(1);

static REGISTRY: Registry<AsyncHandle> = Registry::new();

fn lookup(h: MQTTAsync) -> Option<Arc<AsyncHandle>> {
    REGISTRY.get(h)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// response callbacks
// ---------------------------------------------------------------------------------------

/// The completion callbacks of one request and their context.
#[derive(Clone, Copy)]
struct Resp {
    ok: MQTTAsync_onSuccess,
    fail: MQTTAsync_onFailure,
    ok5: MQTTAsync_onSuccess5,
    fail5: MQTTAsync_onFailure5,
    ctx: SendPtr,
}

impl Resp {
    const NONE: Resp = Resp {
        ok: None,
        fail: None,
        ok5: None,
        fail5: None,
        ctx: SendPtr::NULL,
    };
}

/// What a successful request returns to `onSuccess` / `onSuccess5`.
enum Done {
    Connect {
        uri: CString,
        version: c_int,
        session_present: bool,
        props: Properties,
    },
    Sub {
        codes: Vec<u8>,
        props: Properties,
    },
    Unsub {
        codes: Vec<u8>,
        props: Properties,
    },
    Pub {
        topic: CString,
        payload: Bytes,
        qos: c_int,
        retained: bool,
        reason: u8,
        props: Properties,
    },
    Plain,
}

/// Why a request failed, for `onFailure` / `onFailure5`.
struct Fail {
    code: c_int,
    reason: u8,
    props: Properties,
    message: Option<CString>,
    packet_type: c_int,
}

impl Fail {
    fn code(code: c_int, message: &str) -> Fail {
        Fail {
            code,
            reason: 0,
            props: Properties::new(),
            message: Some(c_string(message)),
            packet_type: 0,
        }
    }
}

fn eyecatcher(s: &[u8; 4]) -> [c_char; 4] {
    [
        s[0] as c_char,
        s[1] as c_char,
        s[2] as c_char,
        s[3] as c_char,
    ]
}

/// Calls `onSuccess5` if set, else `onSuccess`, with the data Paho gives for the request.
/// Runs on the callback thread; everything handed over lives until the call returns.
fn call_success(resp: &Resp, token: c_int, done: &Done) {
    if resp.ok5.is_none() && resp.ok.is_none() {
        return;
    }
    let empty = Properties::new();
    let (reason, props) = match done {
        Done::Connect { props, .. } => (0, props),
        Done::Sub { codes, props } | Done::Unsub { codes, props } => {
            (codes.first().copied().unwrap_or(0), props)
        }
        Done::Pub { reason, props, .. } => (*reason, props),
        Done::Plain => (0, &empty),
    };
    let codes: Vec<c_int> = match done {
        Done::Sub { codes, .. } | Done::Unsub { codes, .. } => {
            codes.iter().map(|&c| c_int::from(c)).collect()
        }
        _ => Vec::new(),
    };
    let mut codes = codes;
    let pub_data = |m: &mut MQTTAsync_successData_pub| {
        if let Done::Pub {
            topic,
            payload,
            qos,
            retained,
            ..
        } = done
        {
            m.message.payloadlen = payload.len() as c_int;
            m.message.payload = payload.as_ptr() as *mut c_void;
            m.message.qos = *qos;
            m.message.retained = c_int::from(*retained);
            m.destinationName = topic.as_ptr() as *mut c_char;
        }
    };
    let empty_msg = MQTTAsync_message {
        struct_id: eyecatcher(b"MQTM"),
        struct_version: 1,
        payloadlen: 0,
        payload: ptr::null_mut(),
        qos: 0,
        retained: 0,
        dup: 0,
        msgid: 0,
        properties: MQTTProperties::empty(),
    };
    let mut pub_alt = MQTTAsync_successData_pub {
        message: empty_msg,
        destinationName: ptr::null_mut(),
    };
    pub_data(&mut pub_alt);
    let connect_alt = match done {
        Done::Connect {
            uri,
            version,
            session_present,
            ..
        } => MQTTAsync_successData_connect {
            serverURI: uri.as_ptr() as *mut c_char,
            MQTTVersion: *version,
            sessionPresent: c_int::from(*session_present),
        },
        _ => MQTTAsync_successData_connect {
            serverURI: ptr::null_mut(),
            MQTTVersion: 0,
            sessionPresent: 0,
        },
    };
    if let Some(f) = resp.ok5 {
        let Ok(mut p) = properties_to_c(props) else {
            return;
        };
        let codes_alt = MQTTAsync_successData5_codes {
            reasonCodeCount: if codes.len() > 1 {
                codes.len() as c_int
            } else {
                0
            },
            reasonCodes: if codes.len() > 1 {
                codes.as_mut_ptr()
            } else {
                ptr::null_mut()
            },
        };
        let alt = match done {
            Done::Connect { .. } => MQTTAsync_successData5_alt {
                connect: connect_alt,
            },
            Done::Sub { .. } => MQTTAsync_successData5_alt { sub: codes_alt },
            Done::Unsub { .. } => MQTTAsync_successData5_alt { unsub: codes_alt },
            Done::Pub { .. } => MQTTAsync_successData5_alt { r#pub: pub_alt },
            Done::Plain => MQTTAsync_successData5_alt {
                sub: MQTTAsync_successData5_codes {
                    reasonCodeCount: 0,
                    reasonCodes: ptr::null_mut(),
                },
            },
        };
        let mut data = MQTTAsync_successData5 {
            struct_id: eyecatcher(b"MQSD"),
            struct_version: 0,
            token,
            reasonCode: c_int::from(reason),
            properties: p,
            alt,
        };
        // SAFETY: the application's callback with its context; the data and everything it
        // points to (properties, codes, topic, payload) live across the call.
        unsafe { f(resp.ctx.0, &mut data) };
        p = data.properties;
        // SAFETY: built by properties_to_c above and owned here.
        unsafe { free_properties(&mut p) };
    } else if let Some(f) = resp.ok {
        let alt = match done {
            Done::Connect { .. } => MQTTAsync_successData_alt {
                connect: connect_alt,
            },
            Done::Sub { .. } if codes.len() > 1 => MQTTAsync_successData_alt {
                qosList: codes.as_mut_ptr(),
            },
            Done::Sub { .. } => MQTTAsync_successData_alt {
                qos: codes.first().copied().unwrap_or(0),
            },
            Done::Pub { .. } => MQTTAsync_successData_alt { r#pub: pub_alt },
            _ => MQTTAsync_successData_alt { qos: 0 },
        };
        let mut data = MQTTAsync_successData { token, alt };
        // SAFETY: as above.
        unsafe { f(resp.ctx.0, &mut data) };
    }
}

/// Calls `onFailure5` if set, else `onFailure`.
fn call_failure(resp: &Resp, token: c_int, fail: &Fail) {
    let msg = fail.message.as_ref().map_or(ptr::null(), |m| m.as_ptr());
    if let Some(f) = resp.fail5 {
        let Ok(mut p) = properties_to_c(&fail.props) else {
            return;
        };
        let mut data = MQTTAsync_failureData5 {
            struct_id: eyecatcher(b"MQFD"),
            struct_version: 0,
            token,
            reasonCode: c_int::from(fail.reason),
            properties: p,
            code: fail.code,
            message: msg,
            packet_type: fail.packet_type,
        };
        // SAFETY: the application's callback with its context; the data lives across it.
        unsafe { f(resp.ctx.0, &mut data) };
        p = data.properties;
        // SAFETY: built by properties_to_c above and owned here.
        unsafe { free_properties(&mut p) };
    } else if let Some(f) = resp.fail {
        let mut data = MQTTAsync_failureData {
            token,
            code: fail.code,
            message: msg,
        };
        // SAFETY: as above.
        unsafe { f(resp.ctx.0, &mut data) };
    }
}

/// Reads `MQTTAsync_responseOptions` (NULL allowed): the callbacks, and for version 1 the
/// MQTT 5 properties and subscription options.
struct RespIn {
    resp: Resp,
    props: Properties,
    /// `subscribeOptionsList`'s entries, if given.
    sub_opts: Vec<MQTTSubscribe_options>,
    /// `subscribeOptions`, for every filter when there is no list (kept out of the list:
    /// a publish's options would allocate it for nothing).
    sub_opt: Option<MQTTSubscribe_options>,
    version: c_int,
}

unsafe fn resp_from_c(p: *const MQTTAsync_responseOptions) -> Result<RespIn, c_int> {
    if p.is_null() {
        return Ok(RespIn {
            resp: Resp::NONE,
            props: Properties::new(),
            sub_opts: Vec::new(),
            sub_opt: None,
            version: -1,
        });
    }
    // SAFETY: non-NULL options of their declared version (C contract).
    let (o, v) = unsafe { copy_versioned(p)? };
    let mut r = RespIn {
        resp: Resp {
            ok: o.onSuccess,
            fail: o.onFailure,
            ok5: None,
            fail5: None,
            ctx: SendPtr(o.context),
        },
        props: Properties::new(),
        sub_opts: Vec::new(),
        sub_opt: None,
        version: v,
    };
    if v >= 1 {
        r.resp.ok5 = o.onSuccess5;
        r.resp.fail5 = o.onFailure5;
        if o.properties.count > 0 {
            // SAFETY: a valid property list inside a version 1 structure.
            r.props = unsafe { properties_from_c(ptr::addr_of!((*p).properties))? };
        }
        if o.subscribeOptionsCount > 0 && !o.subscribeOptionsList.is_null() {
            for i in 0..o.subscribeOptionsCount as usize {
                // SAFETY: subscribeOptionsCount readable entries (C contract).
                let (so, _) = unsafe { copy_versioned(o.subscribeOptionsList.add(i))? };
                r.sub_opts.push(so);
            }
        } else {
            r.sub_opt = Some(o.subscribeOptions);
        }
    }
    Ok(r)
}

/// Writes the token into `response->token` (output field) when a response is given.
unsafe fn write_token(p: *mut MQTTAsync_responseOptions, token: c_int) {
    if !p.is_null() {
        // SAFETY: validated by resp_from_c; `token` exists in every version.
        unsafe { ptr::addr_of_mut!((*p).token).write(token) };
    }
}

// ---------------------------------------------------------------------------------------
// queues
// ---------------------------------------------------------------------------------------

/// How long a handle's callback thread may wait for more work before it leaves (as the
/// Rust client's dispatch thread does): an idle handle has no thread of its own.
const LINGER: Duration = Duration::from_millis(500);

/// The thread that works on a queue: at most one at a time (the claim, taken under the
/// queue's lock by whoever queues into an unclaimed queue, who then starts it) and given
/// back under the same lock once the queue is empty (the callback queue: stayed empty for
/// [`LINGER`]), so an item is never left without a thread to take it. The threads are detached (an exited thread
/// left unjoined keeps its stack); `MQTTAsync_destroy` waits for them through [`Alive`].
#[derive(Default)]
struct Worker {
    /// A thread is taking items (or being started to).
    claimed: bool,
}

impl Worker {
    /// Claims the queue for a thread made by `start` (called under the queue's lock, so
    /// the new thread waits for the caller to finish queueing). False if it failed.
    fn start(&mut self, start: impl FnOnce() -> std::io::Result<()>) -> bool {
        match start() {
            Ok(()) => {
                self.claimed = true;
                true
            }
            Err(e) => {
                super::trace::trace(
                    MQTTCLIENT_TRACE_SEVERE,
                    &format!("mqttsync: starting a thread failed: {e}"),
                );
                false
            }
        }
    }
}

/// Gives the claim back if the thread holding it unwinds (a panic in the library's own
/// code), so the next item starts a new thread instead of waiting forever.
struct ReleaseOnPanic<'a, S>(&'a Mutex<S>, fn(&mut S) -> &mut Worker);

impl<S> Drop for ReleaseOnPanic<'_, S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.1)(&mut lock(self.0)).claimed = false;
        }
    }
}

/// The handle's requests: a bounded FIFO with a close flag, worked on by one thread at a
/// time, started on demand ([`Worker`]).
struct Queue<T> {
    q: Mutex<QueueState<T>>,
}

struct QueueState<T> {
    items: VecDeque<T>,
    closed: bool,
    worker: Worker,
}

impl<T> Queue<T> {
    fn new() -> Self {
        Queue {
            q: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
                worker: Worker::default(),
            }),
        }
    }

    /// Appends unless closed or full (`max`), starting a thread with `start` when none
    /// works on the queue; returns the item back when refused or the thread could not be
    /// started.
    fn push(
        &self,
        item: T,
        max: usize,
        start: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<(), T> {
        let mut g = lock(&self.q);
        if g.closed || g.items.len() >= max {
            return Err(item);
        }
        if g.items.capacity() == 0 {
            // Room for one, not the four a first push makes: the buffer is made on the
            // application's thread and freed by the queue's when it runs dry, and a program
            // that connects many handles in a row leaves each one a hole in its own heap.
            g.items.reserve_exact(1);
        }
        if !g.worker.claimed {
            if !g.worker.start(start) {
                return Err(item);
            }
            g.items.push_back(item);
            return Ok(());
        }
        g.items.push_back(item);
        Ok(())
    }

    /// For the queue's thread: the next item; `None` (the claim given back, the thread must
    /// end) once closed or empty. The thread does not linger for more: it is one of the
    /// few runners of `spawn_limited`, which other handles' requests may be waiting for,
    /// and the pool's spare threads start the next job as fast as a wake-up would.
    fn pop(&self) -> Option<T> {
        let mut g = lock(&self.q);
        if !g.closed {
            if let Some(v) = g.items.pop_front() {
                return Some(v);
            }
            // An idle handle keeps no buffer from a past burst.
            g.items = VecDeque::new();
        }
        g.worker.claimed = false;
        None
    }

    /// A guard for the queue's thread (see [`ReleaseOnPanic`]).
    fn release_on_panic(&self) -> ReleaseOnPanic<'_, QueueState<T>> {
        ReleaseOnPanic(&self.q, |s| &mut s.worker)
    }

    /// For the queue's thread: gives the claim back if nothing waits (true; the thread
    /// must not take items any more, and the next push starts a new one).
    fn release_if_empty(&self) -> bool {
        let mut g = lock(&self.q);
        if g.items.is_empty() && !g.closed {
            g.worker.claimed = false;
            g.items = VecDeque::new();
            return true;
        }
        false
    }

    /// Closes the queue (its thread ends) and returns what was left in it.
    fn close(&self) -> VecDeque<T> {
        let mut g = lock(&self.q);
        g.closed = true;
        std::mem::take(&mut g.items)
    }
}

/// Something for the callback thread to do.
enum Event {
    Call(Box<dyn FnOnce(&AsyncHandle) + Send>),
    /// `onSuccess` of a request (kept inline: one allocation less per publish).
    Success(Resp, c_int, Done),
    Message(Message, Arc<Conn>),
}

struct EventState {
    q: VecDeque<Event>,
    closed: bool,
    /// A thread is running the handle's callbacks (the callback thread with a batch, or a
    /// Rust client's dispatch thread with one event of its own).
    running: bool,
    /// The command thread holds `running` for the callbacks of the request it works on:
    /// once the request is done it runs them itself if no other request waits, or hands
    /// them to the callback thread (see [`Events::push_reserving`]).
    reserved: bool,
    /// The callback thread waits for `cv` and nobody has woken it yet.
    sleeping: bool,
    /// The callback thread naps ([`NAP`]): a lazy event queued meanwhile does not wake
    /// it, the nap's end takes it; any other event does.
    napping: bool,
    /// Lazy events queued since the callback thread last took a batch.
    lazy: u32,
    /// The batch taken last showed a stream of lazy events ([`NAP_ENTER`], [`NAP_KEEP`]):
    /// the callback thread naps before it sleeps.
    nap_next: bool,
    /// The callback thread, started when an event is queued and none runs.
    worker: Worker,
}

impl EventState {
    /// Whether the caller is to wake the sleeping callback thread: true for the first
    /// caller only, so a stream of events queued while it wakes up costs one
    /// `notify_one` (a system call each), not one per event.
    fn claim_wake(&mut self) -> bool {
        std::mem::replace(&mut self.sleeping, false) || std::mem::replace(&mut self.napping, false)
    }

    /// Whether an event queued now waits for the end of the callback thread's nap rather
    /// than waking it: a lazy one, while the batch stays small.
    fn waits_for_nap(&self, lazy: bool) -> bool {
        lazy && self.napping && self.q.len() < NAP_BATCH
    }
}

/// The handle's callbacks, one at a time and in order.
///
/// Events of the Rust client (messages, acknowledgements, connection changes) arrive on
/// the client's dispatch thread; when no callback is running and none is waiting, that
/// thread runs the application's callback itself ([`AsyncHandle::post_here`]), saving the
/// hand-over to the callback thread (one thread wake-up per event in a stream). Everything
/// else (request outcomes from the command thread, `onSuccess` of QoS 0 publishes made on
/// the application's threads), and a dispatch event that finds callbacks running or
/// waiting, goes to the queue, which the callback thread takes in batches. Either way one
/// callback runs at a time, in the order the events were posted. A stream of QoS 0
/// `onSuccess` events is taken in batches a short nap apart instead of one wake-up each
/// ([`NAP`]).
struct Events {
    m: Mutex<EventState>,
    /// The callback thread waits here for work.
    cv: Condvar,
    /// Dispatch threads wait here for room for a message ([`EVENT_QUEUE_MAX`]).
    room_cv: Condvar,
    room_waiters: AtomicUsize,
}

impl Events {
    fn new() -> Self {
        Events {
            m: Mutex::new(EventState {
                q: VecDeque::new(),
                closed: false,
                running: false,
                reserved: false,
                sleeping: false,
                napping: false,
                lazy: 0,
                nap_next: false,
                worker: Worker::default(),
            }),
            cv: Condvar::new(),
            room_cv: Condvar::new(),
            room_waiters: AtomicUsize::new(0),
        }
    }

    /// Queues an event for the callback thread (dropped once closed), starting the thread
    /// with `start` when none runs. If it cannot be started, the event waits for the next
    /// one.
    ///
    /// A `lazy` event (the `onSuccess` of a QoS 0 publish, which nobody waits on for a
    /// reply from the network) does not wake the callback thread while it naps (see
    /// [`NAP`]).
    fn push(&self, ev: Event, lazy: bool, start: impl FnOnce() -> std::io::Result<()>) {
        let mut g = lock(&self.m);
        if g.closed {
            return;
        }
        g.q.push_back(ev);
        g.lazy += u32::from(lazy);
        if !g.worker.claimed {
            g.worker.start(start);
            return;
        }
        let wake = !g.running && !g.waits_for_nap(lazy) && g.claim_wake();
        drop(g);
        if wake {
            self.cv.notify_one();
        }
    }

    /// On the command thread: queues an event of the request it works on. When no
    /// callback is running or queued, the callbacks are reserved for this thread (other
    /// threads' events queue behind them, the callback thread is not woken); it runs them
    /// or hands them over once the request is done ([`Events::take_reserved`],
    /// [`Events::unreserve`]). This saves the hand-over to the callback thread and back
    /// to whoever waits for `onSuccess` (a Paho C++ token's `wait`, say).
    fn push_reserving(&self, ev: Event, start: impl FnOnce() -> std::io::Result<()>) {
        let mut g = lock(&self.m);
        if g.closed {
            return;
        }
        if g.reserved || (!g.running && g.q.is_empty()) {
            g.running = true;
            g.reserved = true;
            g.q.push_back(ev);
            return;
        }
        drop(g);
        self.push(ev, false, start);
    }

    /// Whether the command thread holds the callbacks (`push_reserving`).
    fn is_reserved(&self) -> bool {
        lock(&self.m).reserved
    }

    /// For the thread holding the reservation, which runs the callbacks itself: the
    /// events queued so far, in order (while it holds `running`, others queue behind); when
    /// none is left, the reservation ends and `false` is returned.
    fn take_reserved(&self, into: &mut VecDeque<Event>) -> bool {
        let mut g = lock(&self.m);
        if !g.reserved {
            return false;
        }
        if g.closed || g.q.is_empty() {
            g.reserved = false;
            g.running = false;
            return false;
        }
        std::mem::swap(&mut g.q, into);
        true
    }

    /// Ends the reservation without running the events: the callback thread takes them
    /// (started with `start` when none runs, else woken).
    fn unreserve(&self, start: impl FnOnce() -> std::io::Result<()>) {
        let mut g = lock(&self.m);
        if !g.reserved {
            return;
        }
        g.reserved = false;
        g.running = false;
        if g.closed || g.q.is_empty() {
            return;
        }
        if !g.worker.claimed {
            g.worker.start(start);
            return;
        }
        let wake = g.claim_wake();
        drop(g);
        if wake {
            self.cv.notify_one();
        }
    }

    /// On a dispatch thread: `run(item)` here when no callback is running or queued
    /// (`None`: done, or closed); otherwise the item comes back, to be queued.
    fn try_run_here<T>(&self, item: T, run: impl FnOnce(T)) -> Option<T> {
        let mut g = lock(&self.m);
        if g.closed {
            return None;
        }
        if g.running || !g.q.is_empty() {
            return Some(item);
        }
        g.running = true;
        drop(g);
        // Released even if the callback unwinds (the Rust client contains the panic).
        struct Done<'a>(&'a Events);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut g = lock(&self.0.m);
                g.running = false;
                let wake = !g.q.is_empty() && g.claim_wake();
                drop(g);
                if wake {
                    self.0.cv.notify_one();
                }
            }
        }
        let _done = Done(self);
        run(item);
        None
    }

    /// The callback thread: the next batch of events, waiting; false (the claim given
    /// back, the thread must end) once closed or when no event came for [`LINGER`]. The
    /// caller runs them and then calls [`Events::batch_done`].
    fn next_batch(&self, spare: &mut VecDeque<Event>) -> bool {
        let mut g = lock(&self.m);
        let mut deadline = None;
        let mut leave = None;
        let mut napped = false;
        loop {
            if g.closed {
                g.worker.claimed = false;
                return false;
            }
            if !g.running && !g.q.is_empty() {
                g.running = true;
                g.nap_next = g.lazy >= if napped { NAP_KEEP } else { NAP_ENTER };
                g.lazy = 0;
                std::mem::swap(&mut g.q, spare);
                return true;
            }
            if std::mem::take(&mut g.nap_next) && g.q.is_empty() {
                g.napping = true;
                g = self
                    .cv
                    .wait_timeout(g, NAP)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                g.napping = false;
                napped = true;
                continue;
            }
            g.sleeping = true;
            if g.q.is_empty() {
                let now = Instant::now();
                let end = *deadline.get_or_insert_with(|| {
                    leave = Linger::try_take();
                    now + Linger::wait(&leave, LINGER)
                });
                if now >= end {
                    g.sleeping = false;
                    g.worker.claimed = false;
                    // An idle handle keeps no buffer from a past burst.
                    g.q = VecDeque::new();
                    return false;
                }
                g = self
                    .cv
                    .wait_timeout(g, end - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            } else {
                // Events wait behind a callback on a dispatch thread, which wakes us (not
                // lingering: the wait ends with that callback).
                deadline = None;
                leave = None;
                g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            g.sleeping = false;
        }
    }

    /// A guard for the callback thread (see [`ReleaseOnPanic`]).
    fn release_on_panic(&self) -> ReleaseOnPanic<'_, EventState> {
        ReleaseOnPanic(&self.m, |s| &mut s.worker)
    }

    fn batch_done(&self) {
        lock(&self.m).running = false;
    }

    /// Waits until `room()` or the queue closes; false if closed.
    fn wait_room(&self, room: impl Fn() -> bool) -> bool {
        if room() {
            return true;
        }
        let mut g = lock(&self.m);
        self.room_waiters.fetch_add(1, Ordering::SeqCst);
        while !g.closed && !room() {
            g = self.room_cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        self.room_waiters.fetch_sub(1, Ordering::SeqCst);
        !g.closed
    }

    /// Wakes the threads waiting for room (after the caller made some).
    fn notify_room(&self) {
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.m);
            self.room_cv.notify_all();
        }
    }

    /// Closes the queue (the callback thread ends).
    fn close(&self) {
        let mut g = lock(&self.m);
        g.closed = true;
        let left = std::mem::take(&mut g.q);
        drop(g);
        self.cv.notify_all();
        self.room_cv.notify_all();
        // Dropped outside the lock (a message's drop may take the Rust client's locks).
        drop(left);
    }
}

/// A request for the command thread.
enum Command {
    /// The parameters are shared with `State::last` (made on the application's thread and
    /// kept there: no copy on the command thread).
    Connect(Arc<Params>, c_int),
    Reconnect,
    Subscribe {
        filters: Vec<SubscribeFilter>,
        props: Properties,
        resp: Resp,
        token: c_int,
    },
    Unsubscribe {
        filters: Vec<String>,
        props: Properties,
        resp: Resp,
        token: c_int,
    },
    Disconnect {
        packet: Disconnect,
        timeout: Duration,
        resp: Resp,
        token: c_int,
    },
}

// ---------------------------------------------------------------------------------------
// the handle
// ---------------------------------------------------------------------------------------

/// The application's callbacks (read when an event is delivered, so they may be changed at
/// any time except during a connect, as in Paho).
#[derive(Clone, Copy)]
struct Callbacks {
    ctx: SendPtr,
    lost: MQTTAsync_connectionLost,
    arrived: MQTTAsync_messageArrived,
    complete: MQTTAsync_deliveryComplete,
    conn_ctx: SendPtr,
    connected: MQTTAsync_connected,
    disc_ctx: SendPtr,
    disconnected: MQTTAsync_disconnected,
    upd_ctx: SendPtr,
    update: MQTTAsync_updateConnectOptions,
}

impl Default for Callbacks {
    fn default() -> Self {
        Callbacks {
            ctx: SendPtr::NULL,
            lost: None,
            arrived: None,
            complete: None,
            conn_ctx: SendPtr::NULL,
            connected: None,
            disc_ctx: SendPtr::NULL,
            disconnected: None,
            upd_ctx: SendPtr::NULL,
            update: None,
        }
    }
}

/// What `MQTTAsync_createOptions` said.
#[derive(Clone, Copy)]
struct CreateOpts {
    send_while_disconnected: bool,
    max_buffered: usize,
    any_time: bool,
    delete_oldest: bool,
    /// `persistQoS0`: buffered QoS 0 publishes are stored too (Paho's default).
    persist_qos0: bool,
}

/// A publish accepted while no client could take it, sent after the next connect.
struct Buffered {
    msg: Message,
    resp: Resp,
    token: c_int,
    /// Its store record while it waits (`o-<n>`, [`persist_buffered`]).
    key: Option<Box<str>>,
}

/// A QoS 1/2 publish in flight (keyed by the Rust token id).
struct InFlight {
    token: c_int,
    /// Completed by the client's I/O thread, so `MQTTAsync_waitForCompletion` called in a
    /// callback that runs on the dispatch thread (which reports deliveries) cannot wait on
    /// itself.
    rust: DeliveryToken,
    resp: Resp,
    topic: CString,
    payload: Bytes,
    qos: c_int,
    retained: bool,
}

/// The QoS 1/2 publishes of one connection in flight, by Rust token id.
#[derive(Default)]
struct Flights {
    map: BTreeMap<u64, InFlight>,
    /// Publish calls under way (the Rust client has the message, `map` not yet).
    publishing: usize,
    /// Set when the next connect replaces this connection's client: QoS 1/2 publishes
    /// are not handed to it any more ([`Conn::close_publishing`]).
    closed: bool,
    /// Deliveries reported while `publishing > 0` for ids not (yet) in `map`: the
    /// acknowledgement of a publish whose call has not finished. Cleared when no call is
    /// under way (what is left belongs to publishes that are not ours, e.g. restored ones).
    early: BTreeMap<u64, DeliveryEvent>,
}

/// One connection (one Rust [`Client`]): its publishes in flight and the gate that keeps
/// its events behind the connect's `onSuccess`.
struct Conn {
    inflight: Mutex<Flights>,
    /// Notified when the last publish call under way ends on a closed connection.
    inflight_cv: Condvar,
    ready: Mutex<bool>,
    ready_cv: Condvar,
    first_connected: AtomicBool,
    /// Rust tokens 1..=restored.len() are the messages restored from persistence by this
    /// (the handle's first) connection, in this order: their C tokens are these packet ids.
    restored: Vec<u16>,
    /// Set by disconnect, destroy and the next connect: ends a redelivery loop.
    stopped: Mutex<bool>,
    stop_cv: Condvar,
}

impl Conn {
    fn new(restored: Vec<u16>) -> Arc<Conn> {
        Arc::new(Conn {
            restored,
            inflight: Mutex::new(Flights::default()),
            inflight_cv: Condvar::new(),
            ready: Mutex::new(false),
            ready_cv: Condvar::new(),
            first_connected: AtomicBool::new(true),
            stopped: Mutex::new(false),
            stop_cv: Condvar::new(),
        })
    }

    fn set_ready(&self) {
        *lock(&self.ready) = true;
        self.ready_cv.notify_all();
    }

    /// Holds the Rust client's callbacks until the connect's success has been queued.
    fn wait_ready(&self) {
        let mut g = lock(&self.ready);
        while !*g {
            g = self.ready_cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Hands no more QoS 1/2 publishes to this connection's client and waits for the calls
    /// that are handing one over (each returns within [`SEND_ROOM_WAIT`]): afterwards the
    /// client's queue holds every publish it will ever get.
    fn close_publishing(&self) {
        let mut f = lock(&self.inflight);
        f.closed = true;
        while f.publishing > 0 {
            f = self.inflight_cv.wait(f).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn stop(&self) {
        *lock(&self.stopped) = true;
        self.stop_cv.notify_all();
        self.set_ready();
    }

    /// Waits `d` or until stopped; true when stopped.
    fn wait_stop(&self, d: Duration) -> bool {
        let g = lock(&self.stopped);
        let (g, _) = self
            .stop_cv
            .wait_timeout_while(g, d, |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

/// Connect parameters, kept for `MQTTAsync_reconnect`.
#[derive(Clone)]
struct Params {
    servers: Vec<String>,
    keep_alive: Duration,
    clean: bool,
    version: c_int,
    username: Option<String>,
    password: Option<Vec<u8>>,
    /// Boxed: most connects have none (kept per handle).
    will: Option<Box<Message>>,
    props: Properties,
    connect_timeout: Duration,
    max_inflight: u16,
    tls: Option<Arc<CTls>>,
    web: Option<Box<WebParams>>,
    reconnect: Option<(Duration, Duration)>,
    resp: Resp,
}

/// The tokens of requests not yet complete, and how many threads wait for one.
#[derive(Default)]
struct Pending {
    set: BTreeSet<c_int>,
    waiters: usize,
}

struct State {
    client: Option<Arc<Client>>,
    conn: Option<Arc<Conn>>,
    cbs: Callbacks,
    connecting: bool,
    should_be_connected: bool,
    last: Option<Arc<Params>>,
    /// Publishes waiting for a connection: made before the first connect, while an
    /// automatic reconnect is under way, or behind such publishes. Bounded by
    /// `maxBufferedMessages` (`deleteOldestMessages` drops the oldest).
    offline: VecDeque<Buffered>,
    /// The number of the next buffered publish's store record (`o-<n>`).
    next_offline: u64,
    /// The dispatch thread is handing `offline` to the reconnected client: new publishes
    /// queue behind.
    draining: bool,
}

struct AsyncHandle {
    /// The create arguments (shared with `store`).
    server_uri: Arc<str>,
    client_id: Arc<str>,
    v5: bool,
    create: CreateOpts,
    store: SharedStore,
    state: Mutex<State>,
    commands: Queue<Command>,
    events: Events,
    /// Messages in `events` (bounded by EVENT_QUEUE_MAX).
    queued_messages: AtomicUsize,
    pending: Mutex<Pending>,
    pending_cv: Condvar,
    next_token: AtomicI32,
    /// Packet ids of the messages an earlier run left in flight in persistence, found at
    /// create: their tokens (as in Paho) until the first connect has resent them.
    restored: Mutex<Vec<u16>>,
    /// QoS 1/2 publishes a replaced client left in flight, by packet id: the next client
    /// over the store resends them, and their tokens complete when it is done
    /// ([`retire_client`], [`adopt_carried`]).
    carried: Mutex<Vec<(u16, InFlight)>>,
    destroyed: AtomicBool,
    /// The handle itself, for the threads it starts on demand.
    me: Weak<AsyncHandle>,
    /// Its command and callback threads running.
    alive: Arc<Alive>,
}

/// How many of a handle's threads are running, for `MQTTAsync_destroy` to wait for.
#[derive(Default)]
struct Alive {
    n: Mutex<usize>,
    cv: Condvar,
}

impl Alive {
    fn add(&self) {
        *lock(&self.n) += 1;
    }

    fn done(&self) {
        *lock(&self.n) -= 1;
        self.cv.notify_all();
    }

    /// Waits until at most `n` threads run.
    fn wait_for(&self, n: usize) {
        let mut g = lock(&self.n);
        while *g > n {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Ends a thread's count in [`Alive`] (also when it unwinds).
struct Ended(Arc<Alive>);

impl Drop for Ended {
    fn drop(&mut self) {
        HANDLE_THREAD.with(|t| t.set(0));
        // The pool thread stops carrying the handle's thread name before the handle can
        // count it gone (destroy waits for `done`).
        crate::client::threads::mark_spare();
        self.0.done();
    }
}

thread_local! {
    /// On a handle's command or callback thread: its handle's [`Alive`] (as an address).
    static HANDLE_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// On a handle's command thread while it works on requests: the handle (as an
    /// address), whose callbacks it posts reserving them ([`Events::push_reserving`]).
    static COMMANDING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the thread as the command thread of a handle while alive; if it unwinds holding
/// the callbacks' reservation, the callback thread gets them.
struct Commanding<'a>(&'a AsyncHandle);

impl<'a> Commanding<'a> {
    fn set(h: &'a AsyncHandle) -> Self {
        COMMANDING.with(|c| c.set(h as *const AsyncHandle as usize));
        Commanding(h)
    }
}

impl Drop for Commanding<'_> {
    fn drop(&mut self) {
        COMMANDING.with(|c| c.set(0));
        if std::thread::panicking() {
            let h = self.0;
            h.hand_callbacks_over();
        }
    }
}

impl AsyncHandle {
    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn cbs(&self) -> Callbacks {
        self.st().cbs
    }

    /// A new pending token.
    fn new_token(&self) -> Result<c_int, c_int> {
        let mut p = lock(&self.pending);
        for _ in 0..1000 {
            let t = self
                .next_token
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                    Some(if t == i32::MAX { 1 } else { t + 1 })
                })
                .unwrap_or(1);
            if p.set.insert(t) {
                return Ok(t);
            }
        }
        Err(MQTTASYNC_NO_MORE_MSGIDS)
    }

    fn complete(&self, token: c_int) {
        let mut p = lock(&self.pending);
        p.set.remove(&token);
        if p.set.is_empty() {
            // An emptied `BTreeSet` keeps its node: an idle handle keeps none.
            p.set = BTreeSet::new();
        }
        if p.waiters > 0 {
            drop(p);
            self.pending_cv.notify_all();
        }
    }

    /// Starts a job of this handle running `f` (the command or the callback loop) on a
    /// client thread of the pool (a thread per start cost a `clone` and a stack for every
    /// connect, and again for its onSuccess), counted in [`Alive`] until its very end.
    fn start(&self, name: &'static CStr, f: fn(Arc<AsyncHandle>)) -> std::io::Result<()> {
        self.start_with(crate::client::threads::spawn, name, f)
    }

    /// [`AsyncHandle::start`] through `spawn` (the pool's `spawn`, or `spawn_limited` for
    /// the command job).
    fn start_with(
        &self,
        spawn: crate::client::threads::SpawnFn,
        name: &'static CStr,
        f: fn(Arc<AsyncHandle>),
    ) -> std::io::Result<()> {
        let h = self
            .me
            .upgrade()
            .ok_or_else(|| std::io::Error::other("the handle is being freed"))?;
        let alive = self.alive.clone();
        alive.add();
        let r = spawn(name, {
            let alive = alive.clone();
            Box::new(move || {
                // Dropped last, after `f` and its handle: then nothing of the handle runs.
                let _ended = Ended(alive);
                HANDLE_THREAD.with(|t| t.set(Arc::as_ptr(&_ended.0) as usize));
                f(h);
            })
        });
        match r {
            // Nobody joins the job: `Alive` tells when it is over.
            Ok(_job) => Ok(()),
            Err(e) => {
                alive.done();
                Err(e)
            }
        }
    }

    /// Starts the callback thread (see [`Events`]).
    fn start_callback_thread(&self) -> std::io::Result<()> {
        self.start(c"mqttasync-cb", callback_loop)
    }

    /// Ends the command thread's reservation of the callbacks: the callback thread runs
    /// what it queued ([`Events::unreserve`]).
    fn hand_callbacks_over(&self) {
        self.events.unreserve(|| self.start_callback_thread());
    }

    /// Queues an event for the callback thread, starting it if none runs (dropped after
    /// destroy).
    fn push_event(&self, ev: Event, lazy: bool) {
        let start = || self.start_callback_thread();
        if COMMANDING.with(|c| c.get()) == self as *const AsyncHandle as usize {
            self.events.push_reserving(ev, start);
        } else {
            self.events.push(ev, lazy, start);
        }
    }

    /// Queues a callback for the callback thread (dropped after destroy).
    fn post(&self, f: impl FnOnce(&AsyncHandle) + Send + 'static) {
        self.push_event(Event::Call(Box::new(f)), false);
    }

    /// On a Rust client's dispatch thread: runs the callback there when nothing runs or
    /// waits before it, else queues it (see [`Events`]).
    fn post_here(&self, f: impl FnOnce(&AsyncHandle) + Send + 'static) {
        if self.destroyed.load(Ordering::Acquire) {
            return;
        }
        if let Some(f) = self.events.try_run_here(f, |f| f(self)) {
            self.post(f);
        }
    }

    fn post_success(&self, resp: Resp, token: c_int, done: Done) {
        self.post_success_as(resp, token, done, false);
    }

    /// `lazy`: see [`Events::push`].
    fn post_success_as(&self, resp: Resp, token: c_int, done: Done, lazy: bool) {
        self.complete(token);
        if resp.ok.is_some() || resp.ok5.is_some() {
            self.push_event(Event::Success(resp, token, done), lazy);
        }
    }

    fn post_failure(&self, resp: Resp, token: c_int, fail: Fail) {
        self.complete(token);
        if resp.fail.is_some() || resp.fail5.is_some() {
            self.post(move |_| call_failure(&resp, token, &fail));
        }
    }

    fn connected_client(&self) -> Option<(Arc<Client>, Arc<Conn>)> {
        let st = self.st();
        match (&st.client, &st.conn) {
            (Some(c), Some(k)) if c.is_connected() => Some((c.clone(), k.clone())),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// the callback thread
// ---------------------------------------------------------------------------------------

/// The callback thread: runs queued events until none came for [`LINGER`].
fn callback_loop(h: Arc<AsyncHandle>) {
    let _release = h.events.release_on_panic();
    let mut batch = VecDeque::new();
    while h.events.next_batch(&mut batch) {
        for ev in batch.drain(..) {
            run_event(&h, ev);
        }
        h.events.batch_done();
    }
}

/// Runs one event of the callback queue (on whichever thread runs the callbacks now).
fn run_event(h: &AsyncHandle, ev: Event) {
    if h.destroyed.load(Ordering::Acquire) {
        // Dropped unrun; the queue closes right after.
        return;
    }
    match ev {
        Event::Call(f) => f(h),
        Event::Success(resp, token, done) => call_success(&resp, token, &done),
        Event::Message(m, conn) => {
            h.queued_messages.fetch_sub(1, Ordering::AcqRel);
            h.events.notify_room();
            message_arrived(h, m, &conn);
        }
    }
}

/// The command thread gave the command queue up holding the callbacks of its last
/// request: it runs them, and whatever queued behind them meanwhile, as the callback
/// thread would. If a callback unwinds, the rest go to the callback thread.
fn run_reserved(h: &Arc<AsyncHandle>) {
    struct Unwind<'a>(&'a Arc<AsyncHandle>);
    impl Drop for Unwind<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let h = self.0;
                h.hand_callbacks_over();
            }
        }
    }
    let _unwind = Unwind(h);
    let mut batch = VecDeque::new();
    while h.events.take_reserved(&mut batch) {
        for ev in batch.drain(..) {
            run_event(h, ev);
        }
    }
}

/// Calls `messageArrived` until it returns non-zero, redelivering after a growing pause
/// when it returns 0 (until disconnect, destroy or the next connect).
fn message_arrived(h: &AsyncHandle, m: Message, conn: &Conn) {
    let mut delay = REDELIVER_FIRST;
    loop {
        if h.destroyed.load(Ordering::Acquire) {
            return;
        }
        let cbs = h.cbs();
        let Some(f) = cbs.arrived else {
            // No callback: the message is dropped (as Paho does), so it is acknowledged.
            let _ = m.ack();
            return;
        };
        let (topic, len) = match topic_to_c(&m.topic) {
            Ok(t) => t,
            Err(_) => {
                super::trace::trace(
                    MQTTCLIENT_TRACE_SEVERE,
                    "mqttsync: out of memory: incoming message dropped",
                );
                return;
            }
        };
        let msg = match message_to_c(
            &m.payload,
            m.qos as u8,
            m.retain,
            m.dup,
            m.packet_id,
            &m.properties,
        ) {
            Ok(p) => p.cast::<MQTTAsync_message>(),
            Err(_) => {
                // SAFETY: malloc'd just above, not handed out.
                unsafe { libc::free(topic.cast()) };
                super::trace::trace(
                    MQTTCLIENT_TRACE_SEVERE,
                    "mqttsync: out of memory or oversized message: incoming message dropped",
                );
                return;
            }
        };
        // SAFETY: the application's callback with its context, a malloc'd topic with its
        // length (Paho's async client always passes the length, unlike MQTTClient) and
        // message (MQTTAsync_message has MQTTClient_message's layout) that pass to it when
        // it returns non-zero.
        let rc = unsafe { f(cbs.ctx.0, topic, len, msg) };
        if rc != 0 {
            // The application has the message: only now is a QoS 1/2 message acknowledged
            // to the broker (the client connects with manual acknowledgements). A failure
            // (session ended, client closed) leaves nothing to do: the broker resends.
            let _ = m.ack();
            return;
        }
        let mut mm = msg.cast::<MQTTClient_message>();
        // SAFETY: both allocated above; the application returned 0 and keeps neither.
        unsafe {
            libc::free(topic.cast());
            super::misc::MQTTClient_freeMessage(&mut mm);
        }
        if conn.wait_stop(delay) {
            return;
        }
        delay = (delay * 2).min(REDELIVER_MAX);
    }
}

// ---------------------------------------------------------------------------------------
// the command thread
// ---------------------------------------------------------------------------------------

/// The command thread: runs queued requests until none is left.
fn command_loop(h: Arc<AsyncHandle>) {
    if serve_commands(&h) {
        run_reserved(&h);
    }
}

/// Runs requests until none is left (false), or until a request done with its
/// callbacks reserved finds no other request waiting (true: the command queue is given up,
/// the caller runs the callbacks).
fn serve_commands(h: &Arc<AsyncHandle>) -> bool {
    let _release = h.commands.release_on_panic();
    let _commanding = Commanding::set(h);
    while let Some(cmd) = h.commands.pop() {
        if h.destroyed.load(Ordering::Acquire) {
            // Dropped unrun; the queue closes right after.
            continue;
        }
        run_command(h, cmd);
        if h.events.is_reserved() {
            if h.commands.release_if_empty() {
                return true;
            }
            h.hand_callbacks_over();
        }
    }
    false
}

/// The connected client (with `resp` back), or `None` once `onFailure` (not connected) is
/// posted.
fn client_or_fail(h: &AsyncHandle, resp: Resp, token: c_int) -> Option<(Arc<Client>, Resp)> {
    match h.connected_client() {
        Some((client, _)) => Some((client, resp)),
        None => {
            h.post_failure(
                resp,
                token,
                Fail::code(MQTTASYNC_DISCONNECTED, "not connected"),
            );
            None
        }
    }
}

/// One request of the command queue.
fn run_command(h: &Arc<AsyncHandle>, cmd: Command) {
    match cmd {
        Command::Connect(p, token) => do_connect(h, p, token),
        Command::Reconnect => {
            let last = h.st().last.clone();
            if let Some(mut p) = last {
                update_credentials(h, &mut p);
                let token = h.new_token().unwrap_or(0);
                do_connect(h, p, token);
            }
        }
        Command::Subscribe {
            filters,
            props,
            resp,
            token,
        } => {
            let Some((client, resp)) = client_or_fail(h, resp, token) else {
                return;
            };
            let n = filters.len();
            match client.subscribe_many_timeout(filters, props, REQUEST_TIMEOUT) {
                Ok(ack) => {
                    let first = ack.return_codes.first().copied().unwrap_or(0x80);
                    if n == 1 && first >= 0x80 {
                        // One filter refused: onFailure, as Paho does.
                        let mut f = Fail::code(
                            if h.v5 {
                                MQTTASYNC_FAILURE
                            } else {
                                MQTT_BAD_SUBSCRIBE
                            },
                            "subscription refused",
                        );
                        f.reason = first;
                        f.props = ack.properties;
                        h.post_failure(resp, token, f);
                    } else {
                        let done = Done::Sub {
                            codes: ack.return_codes,
                            props: ack.properties,
                        };
                        h.post_success(resp, token, done);
                    }
                }
                Err(e) => h.post_failure(resp, token, error_fail(&e)),
            }
        }
        Command::Unsubscribe {
            filters,
            props,
            resp,
            token,
        } => {
            let Some((client, resp)) = client_or_fail(h, resp, token) else {
                return;
            };
            match client.unsubscribe_many_timeout(filters, props, REQUEST_TIMEOUT) {
                Ok(ack) => h.post_success(
                    resp,
                    token,
                    Done::Unsub {
                        codes: ack.reason_codes,
                        props: ack.properties,
                    },
                ),
                Err(e) => h.post_failure(resp, token, error_fail(&e)),
            }
        }
        Command::Disconnect {
            packet,
            timeout,
            resp,
            token,
        } => {
            let (client, conn) = {
                let st = h.st();
                (st.client.clone(), st.conn.clone())
            };
            if let Some(c) = &conn {
                c.stop();
            }
            let r = match client {
                Some(c) if c.is_connected() => c.disconnect_with(packet, timeout),
                _ => Ok(()),
            };
            match r {
                Ok(()) | Err(Error::Closed) | Err(Error::NotConnected) => {
                    h.post_success(resp, token, Done::Plain)
                }
                Err(e) => h.post_failure(resp, token, error_fail(&e)),
            }
        }
    }
}

fn error_fail(e: &Error) -> Fail {
    let code = match e {
        Error::ConnectionLost(_) | Error::Closed | Error::NotConnected => MQTTASYNC_DISCONNECTED,
        Error::Rejected { .. } => MQTTASYNC_FAILURE,
        e => error_code(e),
    };
    let mut f = Fail::code(code, &e.to_string());
    if let Error::Rejected { code, .. } = e {
        f.reason = *code;
    }
    f
}

/// Calls `updateConnectOptions` (if set) before a reconnect; a non-zero return replaces
/// the user name and password.
fn update_credentials(h: &AsyncHandle, p: &mut Arc<Params>) {
    if let Some((user, pw)) = call_update(h, p.username.as_deref(), p.password.as_deref()) {
        let p = Arc::make_mut(p);
        p.username = user;
        p.password = pw;
    }
}

/// Calls `updateConnectOptions` (if set) with the current user name and password; the new
/// values when the callback returned non-zero and replaced either, else `None`.
fn call_update(
    h: &AsyncHandle,
    user: Option<&str>,
    pw: Option<&[u8]>,
) -> Option<(Option<String>, Option<Vec<u8>>)> {
    let cbs = h.cbs();
    let f = cbs.update?;
    let user_c = user.and_then(|u| CString::new(u).ok());
    let mut data = MQTTAsync_connectData {
        struct_id: eyecatcher(b"MQCD"),
        struct_version: 0,
        username: user_c.as_ref().map_or(ptr::null(), |u| u.as_ptr()),
        binarypwd: MQTTAsync_connectData_binarypwd {
            len: pw.map_or(0, |p| p.len() as c_int),
            data: pw.map_or(ptr::null(), |p| p.as_ptr().cast()),
        },
    };
    let orig_user = data.username;
    let orig_pw = data.binarypwd.data;
    // SAFETY: the application's callback with its context; the data lives across the call.
    if unsafe { f(cbs.upd_ctx.0, &mut data) } == 0 {
        return None;
    }
    if data.username == orig_user && data.binarypwd.data == orig_pw {
        return None;
    }
    // Paho's contract: new values are malloc'd by the application and freed by the library.
    let new_user = if data.username == orig_user {
        user.map(str::to_owned)
    } else if data.username.is_null() {
        None
    } else {
        // SAFETY: a NUL-terminated string from the application.
        let s = unsafe { std::ffi::CStr::from_ptr(data.username) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: allocated by the application with malloc for the library to free.
        unsafe { libc::free(data.username as *mut c_void) };
        Some(s)
    };
    let new_pw = if data.binarypwd.data == orig_pw {
        pw.map(<[u8]>::to_vec)
    } else if data.binarypwd.data.is_null() {
        None
    } else {
        // SAFETY: len readable bytes (C contract).
        let v = unsafe { bytes_from_c(data.binarypwd.data, data.binarypwd.len) }
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        // SAFETY: malloc'd by the application for the library to free.
        unsafe { libc::free(data.binarypwd.data as *mut c_void) };
        Some(v)
    };
    Some((new_user, new_pw))
}

/// How long the Rust client's I/O thread waits for `updateConnectOptions` before an
/// automatic reconnect attempt (then it reconnects with the credentials it has).
const UPDATE_WAIT: Duration = Duration::from_secs(30);

/// A one-time answer from the callback thread; dropped unanswered (destroy) it answers
/// `None`.
struct Answer<T> {
    slot: Arc<(Mutex<Option<Option<T>>>, Condvar)>,
}

impl<T> Answer<T> {
    fn give(self, v: T) {
        *lock(&self.slot.0) = Some(Some(v));
        self.slot.1.notify_all();
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        let mut g = lock(&self.slot.0);
        if g.is_none() {
            *g = Some(None);
            self.slot.1.notify_all();
        }
    }
}

/// The Rust client's hook before an automatic reconnect attempt (on its I/O thread): has
/// the callback thread call `updateConnectOptions` (so that it runs in order with the
/// handle's other callbacks and may call any function, `MQTTAsync_destroy` included), and
/// takes the new user name and password for this and later attempts (and for
/// `MQTTAsync_reconnect`). False (skip the attempt) once the handle is destroyed.
fn before_reconnect(h: &AsyncHandle, cred: &mut crate::ReconnectCredentials) -> bool {
    if h.destroyed.load(Ordering::Acquire) {
        return false;
    }
    if h.cbs().update.is_none() {
        return true;
    }
    let slot = Arc::new((Mutex::new(None), Condvar::new()));
    let answer = Answer { slot: slot.clone() };
    let user = cred.username.clone();
    let pw = cred.password.as_ref().map(|p| p.to_vec());
    h.post(move |h| answer.give(call_update(h, user.as_deref(), pw.as_deref())));
    let g = lock(&slot.0);
    let (g, _) = slot
        .1
        .wait_timeout_while(g, UPDATE_WAIT, |a| a.is_none())
        .unwrap_or_else(|e| e.into_inner());
    match &*g {
        Some(Some(Some((user, pw)))) => {
            cred.username = user.clone();
            cred.password = pw.clone().map(Bytes::from);
            if let Some(last) = h.st().last.as_mut() {
                let last = Arc::make_mut(last);
                last.username = user.clone();
                last.password = pw.clone();
            }
            true
        }
        Some(None) => !h.destroyed.load(Ordering::Acquire),
        _ => true,
    }
}

fn build_options(
    h: &Arc<AsyncHandle>,
    p: &Params,
    version: ProtocolVersion,
    conn: &Arc<Conn>,
) -> crate::ConnectOptions {
    let mut o = crate::ConnectOptions::new(&super::connect_opts::paho_server_uri(&p.servers[0]));
    for s in &p.servers[1..] {
        o = o.server(&super::connect_opts::paho_server_uri(s));
    }
    o = o
        .client_id(h.client_id.to_string())
        .version(version)
        .clean_start(p.clean)
        .keep_alive(p.keep_alive)
        .connect_timeout(p.connect_timeout)
        .max_inflight(p.max_inflight)
        .proxy_from_env(true)
        .persistence(Box::new(h.store.clone()));
    // Messages are acknowledged by message_arrived once the C callback has taken them
    // (the Rust callback below runs it or queues it for the callback thread).
    o = o.manual_acks(true);
    if let Some(d) = super::connect_opts::spin_wait() {
        o = o.spin_wait(d);
    }
    if let Some(u) = &p.username {
        o = o.credentials(u.clone(), p.password.as_deref());
    } else if let Some(pw) = &p.password {
        o = o.credentials(String::new(), Some(pw));
    }
    if let Some(w) = &p.will {
        o = o.will(Message::clone(w));
    }
    if !p.props.is_empty() {
        o = o.properties(p.props.clone());
    }
    if let Some(t) = &p.tls {
        o = o.tls(t.opts.clone());
    }
    if let Some(web) = &p.web {
        o = web.apply(o);
    }
    if let Some((min, max)) = p.reconnect {
        let w = Arc::downgrade(h);
        o = o.before_reconnect(move |cred| w.upgrade().is_some_and(|h| before_reconnect(&h, cred)));
        o = o.automatic_reconnect(ReconnectOptions {
            min_delay: min,
            max_delay: max,
            max_buffered: if h.create.send_while_disconnected {
                h.create.max_buffered
            } else {
                0
            },
            // Paho retries only connections that were up.
            retry_first_connect: false,
        });
    }
    let w: Weak<AsyncHandle> = Arc::downgrade(h);
    let c = conn.clone();
    o = o.on_message({
        let w = w.clone();
        move |m| {
            c.wait_ready();
            let Some(h) = w.upgrade() else { return };
            if h.destroyed.load(Ordering::Acquire) {
                return;
            }
            let Some(m) = h.events.try_run_here(m, |m| message_arrived(&h, m, &c)) else {
                return;
            };
            // Callbacks are running or waiting: queue it behind them. Back-pressure:
            // wait while the callback thread is behind.
            if !h
                .events
                .wait_room(|| h.queued_messages.load(Ordering::Acquire) < EVENT_QUEUE_MAX)
            {
                return;
            }
            h.queued_messages.fetch_add(1, Ordering::AcqRel);
            h.push_event(Event::Message(m, c.clone()), false);
        }
    });
    let c = conn.clone();
    o = o.on_delivered({
        let w = w.clone();
        move |ev| {
            c.wait_ready();
            if let Some(h) = w.upgrade() {
                delivered(&h, &c, ev);
            }
        }
    });
    let c = conn.clone();
    o = o.on_connection_lost({
        let w = w.clone();
        move |e| {
            c.wait_ready();
            let Some(h) = w.upgrade() else { return };
            let cause = c_string(&e.to_string());
            h.post_here(move |h| {
                let cbs = h.cbs();
                if let Some(f) = cbs.lost {
                    // SAFETY: the application's callback; the cause text lives across it.
                    unsafe { f(cbs.ctx.0, cause.as_ptr() as *mut c_char) };
                }
            });
        }
    });
    // Only automatic reconnects are reported from here (the first connect by the command
    // thread): without them no Connected work wakes the client's callbacks' thread.
    if p.reconnect.is_some() {
        let c = conn.clone();
        o = o.on_connected({
            let w = w.clone();
            move |_session_present| {
                c.wait_ready();
                if c.first_connected.swap(false, Ordering::AcqRel) {
                    return; // the first connect is reported by the command thread
                }
                let Some(h) = w.upgrade() else { return };
                h.post_here(|h| {
                    let cbs = h.cbs();
                    if let Some(f) = cbs.connected {
                        let cause = c"automatic reconnect";
                        // SAFETY: the application's callback; the text is static.
                        unsafe { f(cbs.conn_ctx.0, cause.as_ptr() as *mut c_char) };
                    }
                });
                drain_offline(&h, &c);
            }
        });
    }
    let c = conn.clone();
    o = o.on_server_disconnect(move |d| {
        c.wait_ready();
        let Some(h) = w.upgrade() else { return };
        let d = d.clone();
        h.post_here(move |h| {
            let cbs = h.cbs();
            if let Some(f) = cbs.disconnected {
                let Ok(mut p) = properties_to_c(&d.properties) else {
                    return;
                };
                // SAFETY: the application's callback; the properties live across it and
                // are freed after.
                unsafe {
                    f(cbs.disc_ctx.0, &mut p, c_int::from(d.reason));
                    free_properties(&mut p);
                }
            }
        });
    });
    o
}

/// After an automatic reconnect (on the dispatch thread): hands the publishes buffered
/// meanwhile to the client, oldest first; publishes made during this queue behind them.
fn drain_offline(h: &AsyncHandle, conn: &Arc<Conn>) {
    let client = {
        let mut st = h.st();
        match (&st.client, &st.conn) {
            (Some(c), Some(k)) if Arc::ptr_eq(k, conn) => {
                let c = c.clone();
                st.draining = true;
                c
            }
            _ => return,
        }
    };
    loop {
        let b = {
            let mut st = h.st();
            let current = st.conn.as_ref().is_some_and(|k| Arc::ptr_eq(k, conn));
            match st.offline.pop_front() {
                Some(b) if current => b,
                other => {
                    // Empty, or a new connect took over (it sends what is left).
                    if let Some(b) = other {
                        st.offline.push_front(b);
                    }
                    st.draining = false;
                    return;
                }
            }
        };
        if let Some(b) = hand_over(h, &client, conn, b) {
            // The connection went, or the client's queue stayed full: first in the buffer
            // again (its record kept), for the next connection.
            let mut st = h.st();
            st.offline.push_front(b);
            st.draining = false;
            return;
        }
    }
}

/// Hands a buffered publish to the client, waiting for room in its queue as long as it
/// stays connected (at most [`STORED_WAIT`]): a publish the application was told is
/// accepted is not failed for flow control. Gives it back when it was not taken.
fn hand_over(h: &AsyncHandle, client: &Client, conn: &Conn, b: Buffered) -> Option<Buffered> {
    let deadline = Instant::now() + STORED_WAIT;
    loop {
        let copy = Buffered {
            msg: b.msg.clone(),
            key: b.key.clone(),
            ..b
        };
        match publish_now(h, client, conn, copy, true) {
            Ok(()) => return None,
            Err(Some(rc)) => {
                h.post_failure(b.resp, b.token, Fail::code(rc, "buffered publish failed"));
                return None;
            }
            Err(None) if client.is_connected() && Instant::now() < deadline => {}
            Err(None) => return Some(b),
        }
    }
}

/// Buffers a publish until the next connection (the caller checked that buffering is
/// allowed); with a full buffer, drops the oldest (`deleteOldestMessages`: its `onFailure`
/// gets `MQTTASYNC_MAX_BUFFERED_MESSAGES`) or refuses the new one.
fn buffer_publish(h: &AsyncHandle, st: &mut State, mut b: Buffered) -> Result<(), c_int> {
    let c = h.create;
    if st.offline.len() >= c.max_buffered {
        if !c.delete_oldest || c.max_buffered == 0 {
            h.complete(b.token);
            return Err(MQTTASYNC_MAX_BUFFERED_MESSAGES);
        }
        if let Some(old) = st.offline.pop_front() {
            remove_record(h, old.key.as_deref());
            h.post_failure(
                old.resp,
                old.token,
                Fail::code(
                    MQTTASYNC_MAX_BUFFERED_MESSAGES,
                    "dropped from the full buffer",
                ),
            );
        }
    }
    match persist_buffered(h, st, &b.msg) {
        Ok(key) => b.key = key,
        Err(rc) => {
            h.complete(b.token);
            return Err(rc);
        }
    }
    st.offline.push_back(b);
    Ok(())
}

/// Our prefix for the store records of buffered publishes. Not Paho's `c-` (its command
/// records have another format, which Paho's async client would try to read); Paho's
/// restore drops a record it cannot read as a packet.
const OFFLINE_KEY: &str = "o-";

/// The number of a buffered publish's record key (`o-<n>`), `None` for any other key.
fn offline_number(key: &str) -> Option<u64> {
    key.strip_prefix(OFFLINE_KEY)?.parse().ok()
}

/// With a durable store, a buffered publish is written to it (`o-<n>`, the
/// record format of the client's own records) before the call returns: a kill or
/// `MQTTAsync_destroy` before a connection takes it leaves it to the next handle over the
/// store. The Rust client removes the record once its own record of the message, which
/// names this one, is written ([`Client::publish_replacing`]; a kill between the two:
/// [`restore_buffered`]). A QoS 0 publish is stored as well unless `persistQoS0` is 0; its
/// record goes when the client has queued it for the socket (a kill after that can lose
/// it, never send it twice).
fn persist_buffered(
    h: &AsyncHandle,
    st: &mut State,
    m: &Message,
) -> Result<Option<Box<str>>, c_int> {
    if (m.qos == QoS::AtMostOnce && !h.create.persist_qos0) || !h.store.is_durable() {
        return Ok(None);
    }
    write_buffered(h, st.take_offline_number(), m).map(Some)
}

impl State {
    /// The number of the next buffered publish's store record (`o-<n>`), taken.
    fn take_offline_number(&mut self) -> u64 {
        self.next_offline += 1;
        self.next_offline - 1
    }
}

/// Writes `m` to the store as the buffered publish `o-<seq>`; its key, or
/// `MQTTASYNC_PERSISTENCE_ERROR` (traced).
fn write_buffered(h: &AsyncHandle, seq: u64, m: &Message) -> Result<Box<str>, c_int> {
    let key = format!("{OFFLINE_KEY}{seq}");
    crate::persist::encode_message_record(m, family(h.v5), seq)
        .and_then(|bytes| h.store.clone().put(&key, &[&bytes]))
        .map_err(|e| {
            super::trace::trace(
                MQTTCLIENT_TRACE_ERROR,
                &format!("mqttsync: a publish could not be stored: {e}"),
            );
            MQTTASYNC_PERSISTENCE_ERROR
        })?;
    Ok(key.into())
}

/// Buffers the stored publishes ([`persist_buffered`]) the buffer does not hold yet,
/// oldest first, in front of the others: at create an earlier handle's, at a connect
/// those create could not read (written through a persistence transform that the
/// application set after create); a torn one at a connect is removed
/// (`at_connect`, see [`restore_buffered`]). Fails only when no token is left.
fn pick_up_buffered(h: &AsyncHandle, st: &mut State, at_connect: bool) -> Result<(), c_int> {
    if !h.store.is_durable() {
        return Ok(());
    }
    let (found, next) = {
        let offline = &st.offline;
        let known = |k: &str| offline.iter().any(|b| b.key.as_deref() == Some(k));
        restore_buffered(&mut h.store.clone(), h.v5, &known, at_connect)
    };
    st.next_offline = st.next_offline.max(next);
    for (key, msg) in found.into_iter().rev() {
        st.offline.push_front(Buffered {
            msg,
            resp: Resp::NONE,
            token: h.new_token()?,
            key: Some(key),
        });
    }
    Ok(())
}

/// Removes the store record of a buffered publish that will not be sent.
fn remove_record(h: &AsyncHandle, key: Option<&str>) {
    if let Some(k) = key {
        remove_stored(&mut h.store.clone(), k);
    }
}

fn remove_stored(store: &mut SharedStore, key: &str) {
    if let Err(e) = store.remove(key) {
        super::trace::trace(
            MQTTCLIENT_TRACE_ERROR,
            &format!("mqttsync: removing {key:?} failed: {e}"),
        );
    }
}

/// The publishes an earlier handle over this store buffered and no connection took
/// ([`persist_buffered`]), oldest first, with their keys, and the number after the
/// highest (of these and of the keys the client's records name); records `known(key)` are
/// not read, unreadable ones are traced and left in the store (removed `at_connect` when
/// torn: [`crate::persist::is_torn_record`]), and
/// those the client's own records say it took (a kill between its write and their
/// removal) are removed.
///
/// `at_connect`: called at a connect rather than at create. Without a read transform the
/// client's records are then read only if a buffered record was found (the Rust client
/// reads them all anyway): the numbers they name are below the handle's next number since
/// create. With one (set after create, so create could not decode them) they are read.
fn restore_buffered(
    store: &mut SharedStore,
    v5: bool,
    known: &dyn Fn(&str) -> bool,
    at_connect: bool,
) -> (Vec<(Box<str>, Message)>, u64) {
    let mut found: Vec<(u64, String)> = store
        .keys()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| Some((offline_number(&k)?, k)))
        .collect();
    found.sort_unstable();
    let mut out: Vec<(Box<str>, Message)> = Vec::new();
    for (_, key) in found.iter().filter(|(_, k)| !known(k)) {
        // An unreadable record, and whether it is torn (checked only then).
        let read = match store.get(key) {
            // Removed since listed: a client took it.
            Ok(None) => continue,
            Ok(Some(b)) => crate::persist::decode_message_record(&b, family(v5))
                .map_err(|e| (e, crate::persist::is_torn_record(&b))),
            Err(e) => Err((e, false)),
        };
        match read {
            Ok(m) => out.push((key.as_str().into(), m)),
            Err((e, torn)) => {
                // The record is written before the send returns: a torn one at a connect
                // (read transforms are set by then) is a write a kill cut short, of a send
                // that never returned; left, it would stay for ever. Any other may hold a
                // message (a transform that does not match, damage): left for inspection.
                let drop = at_connect && torn;
                let done = if drop {
                    "torn and was removed"
                } else {
                    "skipped"
                };
                super::trace::trace(
                    MQTTCLIENT_TRACE_ERROR,
                    &format!(
                        "mqttsync: stored buffered publish {key:?} is unreadable and {done}: {e}"
                    ),
                );
                if drop {
                    remove_stored(store, key);
                }
            }
        }
    }
    // Records a client took (its own record names them) but a kill kept from removing;
    // read after them, so that a client's record written meanwhile is seen as well.
    let taken = if at_connect && out.is_empty() && !store.has_read_transform() {
        BTreeSet::new()
    } else {
        crate::persist::replaced_keys(store).unwrap_or_default()
    };
    out.retain(|(key, _)| {
        let keep = !taken.contains(&**key);
        if !keep {
            remove_stored(store, key);
        }
        keep
    });
    // Past every key an in-flight record names as well: a new record under such a key
    // would be taken for the old one at the next restart.
    let next = found
        .iter()
        .map(|(n, _)| *n)
        .chain(taken.iter().filter_map(|k| offline_number(k)))
        .max()
        .map_or(1, |n| n + 1);
    (out, next)
}

/// A QoS 1/2 publish finished (on the dispatch thread): complete its token, then
/// `deliveryComplete` and its `onSuccess` / `onFailure`.
fn delivered(h: &AsyncHandle, conn: &Conn, ev: &DeliveryEvent) {
    let info = {
        let mut f = lock(&conn.inflight);
        match f.map.remove(&ev.token_id) {
            Some(info) => info,
            None if (1..=conn.restored.len() as u64).contains(&ev.token_id) => {
                drop(f);
                restored_delivered(h, ev);
                return;
            }
            None => {
                if f.publishing > 0 {
                    f.early.insert(ev.token_id, ev.clone());
                }
                return;
            }
        }
    };
    finish_delivery(h, info, ev, true);
}

/// A message restored from persistence completed: its token (the packet id) completes and,
/// when acknowledged, `deliveryComplete` is called with it (it has no `onSuccess`, as in
/// Paho).
fn restored_delivered(h: &AsyncHandle, ev: &DeliveryEvent) {
    let token = c_int::from(ev.packet_id);
    h.complete(token);
    if ev.result.is_ok() {
        h.post_here(move |h| {
            let cbs = h.cbs();
            if let Some(f) = cbs.complete {
                // SAFETY: the application's callback with its context.
                unsafe { f(cbs.ctx.0, token) };
            }
        });
    }
}

/// Completes the token of a finished publish and reports it: on this thread when `here`
/// (a dispatch thread), else through the callback thread.
fn finish_delivery(h: &AsyncHandle, info: InFlight, ev: &DeliveryEvent, here: bool) {
    let post = |f: Box<dyn FnOnce(&AsyncHandle) + Send>| {
        if here {
            h.post_here(f)
        } else {
            h.post(f)
        }
    };
    h.complete(info.token);
    match &ev.result {
        Ok(d) => {
            let reason = d.reason;
            let props = d.properties.clone();
            post(Box::new(move |h| {
                let cbs = h.cbs();
                if let Some(f) = cbs.complete {
                    // SAFETY: the application's callback with its context.
                    unsafe { f(cbs.ctx.0, info.token) };
                }
                let done = Done::Pub {
                    topic: info.topic,
                    payload: info.payload,
                    qos: info.qos,
                    retained: info.retained,
                    reason,
                    props,
                };
                call_success(&info.resp, info.token, &done);
            }));
        }
        Err(e) => {
            let mut f = error_fail(e);
            f.packet_type = c_int::from(ev.packet_type);
            post(Box::new(move |_| call_failure(&info.resp, info.token, &f)));
        }
    }
}

fn do_connect(h: &Arc<AsyncHandle>, p: Arc<Params>, token: c_int) {
    // Take the previous connection down first (the store is reused).
    let (old, old_conn) = {
        let mut st = h.st();
        st.connecting = true;
        st.should_be_connected = true;
        st.last = Some(p.clone());
        (st.client.take(), st.conn.take())
    };
    if let Some(c) = &old_conn {
        c.stop();
    }
    if let Some(c) = old {
        retire_client(h, c, old_conn.as_deref());
    }
    let finish = |h: &AsyncHandle| h.st().connecting = false;
    if p.clean {
        let mut s = h.store.clone();
        if let Err(e) = s.clear() {
            finish(h);
            h.post_failure(
                p.resp,
                token,
                Fail::code(MQTTASYNC_PERSISTENCE_ERROR, &e.to_string()),
            );
            return;
        }
    }
    let versions: &[ProtocolVersion] = match p.version {
        MQTTVERSION_DEFAULT => &[ProtocolVersion::V311, ProtocolVersion::V31],
        MQTTVERSION_3_1 => &[ProtocolVersion::V31],
        MQTTVERSION_3_1_1 => &[ProtocolVersion::V311],
        _ => &[ProtocolVersion::V5],
    };
    // Messages restored from persistence keep their tokens through the first connection
    // (a clean one discards them: their tokens complete).
    let restored = std::mem::take(&mut *lock(&h.restored));
    let restored = if p.clean {
        for &id in &restored {
            h.complete(c_int::from(id));
        }
        Vec::new()
    } else {
        restored
    };
    let conn = Conn::new(restored.clone());
    let mut fail = Fail::code(MQTTASYNC_FAILURE, "connect failed");
    for (i, &ver) in versions.iter().enumerate() {
        let opts = build_options(h, &p, ver, &conn);
        // The order in which the client will restore what the store holds in flight: its
        // tokens 1..=n (as for `restored`).
        let order = if lock(&h.carried).is_empty() {
            Vec::new()
        } else {
            crate::persist::pending_packet_ids(
                &mut h.store.clone(),
                family(ver == ProtocolVersion::V5),
            )
        };
        match Client::connect(opts) {
            Ok(client) => {
                let info = client.connect_info().unwrap_or(ConnectInfo {
                    session_present: false,
                    server: p.servers[0].clone(),
                    version: ver,
                    properties: Properties::new(),
                });
                // Before any publish of the application can reach it (packet ids).
                adopt_carried(h, &order, &client, &conn);
                let client = Arc::new(client);
                let buffered = {
                    let mut st = h.st();
                    st.client = Some(client.clone());
                    st.conn = Some(conn.clone());
                    st.connecting = false;
                    // No token left for one: it stays in the store for a later connect.
                    let _ = pick_up_buffered(h, &mut st, true);
                    // Publishes made from now on queue behind the buffered ones.
                    st.draining = !st.offline.is_empty();
                    st.draining
                };
                let uri = if p.servers.len() == 1 {
                    strip_scheme(&p.servers[0]).to_owned()
                } else {
                    // The list entry as the application gave it (Paho's serverURI).
                    let got = strip_scheme(&info.server);
                    p.servers
                        .iter()
                        .find(|s| strip_scheme(&super::connect_opts::paho_server_uri(s)) == got)
                        .cloned()
                        .unwrap_or_else(|| info.server.clone())
                };
                let done = Done::Connect {
                    uri: CString::new(uri).unwrap_or_default(),
                    version: c_int::from(info.version.level()),
                    session_present: info.session_present,
                    props: info.properties,
                };
                h.post_success(p.resp, token, done);
                h.post(|h| {
                    let cbs = h.cbs();
                    if let Some(f) = cbs.connected {
                        let cause = c"connect onSuccess called";
                        // SAFETY: the application's callback; the text is static.
                        unsafe { f(cbs.conn_ctx.0, cause.as_ptr() as *mut c_char) };
                    }
                });
                conn.set_ready();
                if buffered {
                    // Handing these over may wait for room, which callbacks make: the
                    // callbacks posted so far go to the callback thread now.
                    h.hand_callbacks_over();
                    drain_offline(h, &conn);
                }
                return;
            }
            Err(Error::ConnectionRefused {
                code, properties, ..
            }) => {
                fail = Fail::code(c_int::from(code), "connection refused");
                if ver == ProtocolVersion::V5 {
                    fail.code = MQTTASYNC_FAILURE;
                    fail.reason = code;
                    fail.props = properties;
                }
                if !(code == 1 && i + 1 < versions.len()) {
                    break;
                }
            }
            Err(e) => {
                let text = format!("mqttsync: connect failed: {e}");
                super::trace::trace(MQTTCLIENT_TRACE_ERROR, &text);
                if let (Error::Tls { .. }, Some(cb)) = (&e, p.tls.as_ref().and_then(|t| t.error_cb))
                {
                    cb.report(&text);
                }
                fail = Fail::code(
                    match e {
                        Error::Persistence(_) => MQTTASYNC_PERSISTENCE_ERROR,
                        _ => MQTTASYNC_FAILURE,
                    },
                    &text,
                );
                break;
            }
        }
    }
    finish(h);
    // Not connected: the next connect restores them.
    *lock(&h.restored) = restored;
    h.post_failure(p.resp, token, fail);
}

/// Takes a handle's client out of service before the next connect makes a new one over
/// the same store: no more publishes are handed to it, it disconnects (without waiting for
/// acknowledgements), takes what it was given into its session, and its I/O work ends even
/// while a sending thread still holds it. So every message it took is in the store before
/// the new client reads it (before 2026-12-07 a publish it took after that read was known
/// to neither session, and the new one could reuse its packet id and record). Its QoS 1/2
/// publishes still in flight go to `h.carried` with their packet ids: the new client
/// resends them from the store, and their tokens complete when it is done
/// ([`adopt_carried`]), as in Paho, where a connect after a loss finishes them.
fn retire_client(h: &AsyncHandle, c: Arc<Client>, conn: Option<&Conn>) {
    if let Some(k) = conn {
        k.close_publishing();
    }
    if !matches!(c.state(), crate::State::Disconnected | crate::State::Closed) {
        let _ = c.disconnect_with(Disconnect::default(), Duration::ZERO);
    }
    // Disconnected, the client takes every queued publish into its session for this.
    let pending = c.pending_tokens().unwrap_or_default();
    c.shut_down();
    drop(c);
    let Some(k) = conn else { return };
    let mut f = lock(&k.inflight);
    let mut carried = lock(&h.carried);
    for (pkid, t) in pending {
        if t.is_complete() {
            continue; // reported by the client's last events
        }
        if let Some(info) = f.map.remove(&t.id()) {
            carried.push((pkid, info));
        } else if (1..=k.restored.len() as u64).contains(&t.id()) {
            // Restored at create and not resent yet: its token is its packet id.
            carried.push((
                pkid,
                InFlight {
                    token: c_int::from(pkid),
                    rust: t,
                    resp: Resp::NONE,
                    topic: CString::default(),
                    payload: Bytes::new(),
                    qos: 1,
                    retained: false,
                },
            ));
        }
    }
}

/// The publishes a replaced client left in flight ([`retire_client`]) that the new `client`
/// restored from the store complete under their tokens when it is done with them; the
/// others (a clean session, or a store that no longer has them) complete now, without
/// callbacks. `order`: the packet ids the store held in flight before the client was
/// made, in the order it restored them (its tokens 1..=n): the client may have finished
/// some already, their events wait for `conn` to be ready. Called before the client is
/// published to senders and before `conn` lets its events through.
fn adopt_carried(h: &AsyncHandle, order: &[u16], client: &Client, conn: &Conn) {
    let carried = std::mem::take(&mut *lock(&h.carried));
    if carried.is_empty() {
        return;
    }
    let mut by_packet: BTreeMap<u16, InFlight> = carried.into_iter().collect();
    let mut live: BTreeMap<u64, DeliveryToken> = client
        .pending_tokens()
        .map(|v| v.into_iter().map(|(_, t)| (t.id(), t)).collect())
        .unwrap_or_default();
    let mut f = lock(&conn.inflight);
    for (i, pkid) in order.iter().enumerate() {
        let id = i as u64 + 1;
        if let Some(mut info) = by_packet.remove(pkid) {
            // For `MQTTAsync_waitForCompletion` (one already done keeps the old token
            // until its event, which follows).
            if let Some(t) = live.remove(&id) {
                info.rust = t;
            }
            f.map.insert(id, info);
        }
    }
    drop(f);
    for info in by_packet.into_values() {
        h.complete(info.token);
    }
}

/// Hands a publish to the Rust client. QoS 0 completes at once (`onSuccess` queued); QoS
/// 1/2 complete when acknowledged. `Err(Some(rc))`: refused (its token completed, its
/// store record removed); `Err(None)`, only with `keep`: not taken now (no room in the
/// client's queue, or the connection went), token and record left for a later try.
fn publish_now(
    h: &AsyncHandle,
    client: &Client,
    conn: &Conn,
    b: Buffered,
    keep: bool,
) -> Result<(), Option<c_int>> {
    let Buffered {
        msg: m,
        resp,
        token,
        key,
    } = b;
    let topic = c_string(&m.topic);
    let payload = m.payload.clone();
    let qos = m.qos;
    let retained = m.retain;
    if qos == QoS::AtMostOnce {
        // No acknowledgement to wait for, so nothing for `conn.inflight`.
        return match client.publish_replacing(m, SEND_ROOM_WAIT, key.clone()) {
            Ok(_) => {
                let done = Done::Pub {
                    topic,
                    payload,
                    qos: 0,
                    retained,
                    reason: 0,
                    props: Properties::new(),
                };
                h.post_success_as(resp, token, done, true);
                Ok(())
            }
            Err(e) => Err(not_taken(h, e, keep, key.as_deref(), token)),
        };
    }
    // As in Paho, whose send stores the command first: with a durable store the message is
    // in it when the call returns (a kill right after it loses nothing). A buffered one
    // (`key`) is in the store already.
    let copy = (key.is_none() && h.store.is_durable()).then(|| m.clone());
    {
        let mut f = lock(&conn.inflight);
        if f.closed {
            // The next connect is replacing this client.
            drop(f);
            return Err(not_taken(
                h,
                Error::NotConnected,
                keep,
                key.as_deref(),
                token,
            ));
        }
        f.publishing += 1;
    }
    let r = client.publish_replacing(m, SEND_ROOM_WAIT, key.clone());
    let mut f = lock(&conn.inflight);
    f.publishing -= 1;
    if f.publishing == 0 && f.closed {
        conn.inflight_cv.notify_all();
    }
    let early = match &r {
        Ok(t) => f.early.remove(&t.id()),
        Err(_) => None,
    };
    if f.publishing == 0 {
        f.early.clear();
    }
    match r {
        Ok(t) => {
            let id = t.id();
            let wait = copy.map(|m| (t.clone(), m));
            let info = InFlight {
                token,
                rust: t,
                resp,
                topic,
                payload,
                qos: qos as c_int,
                retained,
            };
            match early {
                // Acknowledged before this call could record it.
                Some(ev) => {
                    drop(f);
                    finish_delivery(h, info, &ev, false);
                }
                None => {
                    f.map.insert(id, info);
                    drop(f);
                }
            }
            if let Some((t, m)) = wait {
                if let Err(Error::Timeout { .. }) = t.wait_stored(STORED_WAIT) {
                    hold_in_store(h, &t, &m);
                }
            }
            Ok(())
        }
        Err(e) => {
            drop(f);
            Err(not_taken(h, e, keep, key.as_deref(), token))
        }
    }
}

/// A QoS 1/2 send the client has not taken into its session (and store) within
/// [`STORED_WAIT`] (the in-flight window and the session's queue full): written to the
/// store as a buffered publish (`o-<n>`, [`persist_buffered`]) while the client is kept
/// from taking it, so that it is in the store when the send returns; the client's record
/// of it names that record and replaces it when the client takes it. A kill before that
/// leaves it to the next handle, which sends it at its connect. Taken meanwhile: its record
/// is being written, waited for as before. Not stored (a failing write, traced): it stays
/// queued, and completes or fails as any other.
fn hold_in_store(h: &AsyncHandle, t: &crate::DeliveryToken, m: &Message) {
    let seq = h.st().take_offline_number();
    if !t.hold_with(|| write_buffered(h, seq, m).ok()) {
        // The client began to take it meanwhile: its record is being written.
        let _ = t.wait_stored(STORED_WAIT);
    }
}

/// A publish the Rust client refused (`e`): `None` if `keep` asks to keep one that can
/// be taken later (not connected, or no room yet); otherwise it fails now (the caller
/// reports the code), its buffer record removed, and is not sent later.
fn not_taken(
    h: &AsyncHandle,
    e: Error,
    keep: bool,
    key: Option<&str>,
    token: c_int,
) -> Option<c_int> {
    let later = matches!(
        e,
        Error::Timeout {
            step: Step::Queue,
            ..
        } | Error::NotConnected
            | Error::ConnectionLost(_)
            | Error::Closed
    );
    if keep && later {
        return None;
    }
    let rc = match e {
        Error::Timeout {
            step: Step::Queue, ..
        } => MQTTASYNC_MAX_BUFFERED_MESSAGES,
        e => error_code(&e),
    };
    remove_record(h, key);
    h.complete(token);
    Some(rc)
}

// ---------------------------------------------------------------------------------------
// create / destroy
// ---------------------------------------------------------------------------------------

unsafe fn create_impl(
    handle: *mut MQTTAsync,
    server_uri: *const c_char,
    client_id: *const c_char,
    persistence_type: c_int,
    context: *mut c_void,
    options: *const MQTTAsync_createOptions,
) -> Result<(), c_int> {
    if handle.is_null() || server_uri.is_null() || client_id.is_null() {
        return Err(MQTTASYNC_NULL_PARAMETER);
    }
    // `MQTTSYNC_SPIN_US` also sets how long command runners poll for the next request:
    // read before this handle's first command runs.
    let _ = super::connect_opts::spin_wait();
    // SAFETY: NUL-terminated strings (C contract).
    let uri = unsafe { str_from_c(server_uri)? };
    // SAFETY: as above.
    let cid = unsafe { str_from_c(client_id)? };
    if cid.is_empty() && persistence_type == MQTTCLIENT_PERSISTENCE_DEFAULT {
        return Err(MQTTASYNC_PERSISTENCE_ERROR);
    }
    if !known_scheme(uri) {
        return Err(MQTTASYNC_BAD_PROTOCOL);
    }
    let mut create = CreateOpts {
        send_while_disconnected: false,
        max_buffered: 100,
        any_time: false,
        delete_oldest: false,
        persist_qos0: true,
    };
    let mut version = MQTTVERSION_DEFAULT;
    let mut restore = true;
    if !options.is_null() {
        // SAFETY: create options of their declared version (C contract).
        let (o, v) = unsafe { copy_versioned(options)? };
        if o.maxBufferedMessages < 0 {
            return Err(MQTTASYNC_MAX_BUFFERED);
        }
        create.send_while_disconnected = o.sendWhileDisconnected != 0;
        create.max_buffered = o.maxBufferedMessages as usize;
        if v >= 1 {
            version = o.MQTTVersion;
        }
        if v >= 2 {
            create.any_time = o.allowDisconnectedSendAtAnyTime != 0;
            create.delete_oldest = o.deleteOldestMessages != 0;
            restore = o.restoreMessages != 0;
            // Read from version 2 on, as Paho does (its header says 3).
            create.persist_qos0 = o.persistQoS0 != 0;
        }
    }
    // SAFETY: the context is what the persistence type requires (C contract).
    let store = unsafe { store_from_c(persistence_type, context)? };
    let (cid_shared, uri_shared): (Arc<str>, Arc<str>) = (cid.into(), uri.into());
    let mut shared = SharedStore::new(store, cid_shared.clone(), uri_shared.clone());
    shared
        .open(cid, uri)
        .map_err(|_| MQTTASYNC_PERSISTENCE_ERROR)?;
    if !restore {
        shared.clear().map_err(|_| MQTTASYNC_PERSISTENCE_ERROR)?;
    }
    // In-flight records of the other MQTT version: refused, as MQTTClient_create does.
    if !shared.version_ok(version >= MQTTVERSION_5) {
        return Err(MQTTASYNC_PERSISTENCE_ERROR);
    }
    // Messages left in flight by an earlier run get tokens now, as in Paho (and as
    // MQTTClient_create does): their packet ids. New tokens are issued above them.
    let restored =
        crate::persist::pending_packet_ids(&mut shared, family(version >= MQTTVERSION_5));
    let mut pending = Pending::default();
    pending
        .set
        .extend(restored.iter().map(|&id| c_int::from(id)));
    let first_token = restored.iter().copied().max().map_or(1, c_int::from);
    let h = Arc::new_cyclic(|me| AsyncHandle {
        server_uri: uri_shared,
        client_id: cid_shared,
        v5: version >= MQTTVERSION_5,
        create,
        store: shared,
        state: Mutex::new(State {
            client: None,
            conn: None,
            cbs: Callbacks::default(),
            connecting: false,
            should_be_connected: false,
            last: None,
            offline: VecDeque::new(),
            next_offline: 1,
            draining: false,
        }),
        commands: Queue::new(),
        events: Events::new(),
        queued_messages: AtomicUsize::new(0),
        pending: Mutex::new(pending),
        pending_cv: Condvar::new(),
        next_token: AtomicI32::new(first_token),
        restored: Mutex::new(restored),
        carried: Mutex::new(Vec::new()),
        destroyed: AtomicBool::new(false),
        me: me.clone(),
        alive: Arc::default(),
    });
    // Publishes an earlier handle buffered and never sent: buffered again, with tokens
    // after the restored messages'.
    pick_up_buffered(&h, &mut h.st(), false)?;
    let key = REGISTRY.insert(h);
    // SAFETY: non-NULL and writable (C contract).
    unsafe { handle.write(key) };
    Ok(())
}

/// Creates a client for `serverURI` (`tcp://`, `mqtt://`, `ssl://`, `mqtts://`, `ws://`,
/// `wss://`, or `host:port` meaning TCP) with client id `clientId`, and writes the new
/// handle to `*handle`. Starts no thread (the handle's threads start with its first
/// request or callback); nothing is
/// connected yet. Persistence types as `MQTTClient_create` (DEFAULT files in Paho's layout,
/// NONE memory, USER the application's `MQTTClient_persistence`), opened here and closed by
/// `MQTTAsync_destroy`.
///
/// Returns `MQTTASYNC_SUCCESS`; `MQTTASYNC_NULL_PARAMETER` for a NULL handle, URI or client
/// id; `MQTTASYNC_BAD_UTF8_STRING`; `MQTTASYNC_PERSISTENCE_ERROR` (empty client id with
/// DEFAULT persistence, unknown type, incomplete USER table, store cannot be opened or
/// holds in-flight messages of the other MQTT version);
/// `MQTTASYNC_BAD_PROTOCOL` for an unknown scheme. `*handle` is written only on success.
///
/// Ownership: the strings are copied; free the handle with `MQTTAsync_destroy`. Any
/// thread.
///
/// # Safety
/// `handle` is NULL or writable; the strings are NULL or NUL-terminated; the persistence
/// context is what the type requires.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_create(
    handle: *mut MQTTAsync,
    serverURI: *const c_char,
    clientId: *const c_char,
    persistence_type: c_int,
    persistence_context: *mut c_void,
) -> c_int {
    guard_rc(|| {
        // SAFETY: forwarded C contract.
        unsafe {
            create_impl(
                handle,
                serverURI,
                clientId,
                persistence_type,
                persistence_context,
                ptr::null(),
            )
        }
    })
}

/// As `MQTTAsync_create`, with `MQTTAsync_createOptions` (eyecatcher `MQCO`, versions 0-2;
/// NULL allowed): `sendWhileDisconnected` accepts publishes while disconnected, up to
/// `maxBufferedMessages` (sent after the next connect; before the first connect only with
/// `allowDisconnectedSendAtAnyTime`), `deleteOldestMessages` drops the oldest buffered
/// publish (its `onFailure` gets `MQTTASYNC_MAX_BUFFERED_MESSAGES`) instead of refusing the
/// new one, `restoreMessages = 0` empties the persistence store, `MQTTVersion =
/// MQTTVERSION_5` makes an MQTT 5 client. With file or user persistence a buffered
/// publish (QoS 0 only with `persistQoS0`, read from version 2 on as Paho does, default 1)
/// is in the store when the call that buffered it returns, and a handle created over the
/// store later buffers it again (a token after create, sent at its connect). Returns as
/// `MQTTAsync_create`, plus `MQTTASYNC_BAD_STRUCTURE` for
/// a bad structure and `MQTTASYNC_MAX_BUFFERED` for a negative `maxBufferedMessages`. Any
/// thread.
///
/// # Safety
/// As `MQTTAsync_create`; `options` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_createWithOptions(
    handle: *mut MQTTAsync,
    serverURI: *const c_char,
    clientId: *const c_char,
    persistence_type: c_int,
    persistence_context: *mut c_void,
    options: *mut MQTTAsync_createOptions,
) -> c_int {
    guard_rc(|| {
        // SAFETY: forwarded C contract.
        unsafe {
            create_impl(
                handle,
                serverURI,
                clientId,
                persistence_type,
                persistence_context,
                options,
            )
        }
    })
}

/// Frees a client: no callback is called after this starts; pending requests are dropped
/// (their tokens complete); a connected client is closed without waiting (in-flight
/// messages stay in persistence); the handle's threads are stopped and waited for (a thread
/// of the handle calling this, i.e. a callback, ends when the callback returns); the
/// persistence store is closed; `*handle` is set to NULL. NULL, a NULL
/// handle or a destroyed handle is ignored.
///
/// Threads: any thread, including the handle's own callbacks.
///
/// # Safety
/// `handle` is NULL or points to a readable and writable `MQTTAsync`.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_destroy(handle: *mut MQTTAsync) {
    guard((), || {
        if handle.is_null() {
            return;
        }
        // SAFETY: readable (C contract).
        let hv = unsafe { handle.read() };
        let Some(h) = REGISTRY.remove(hv) else {
            return;
        };
        // SAFETY: writable (C contract).
        unsafe { handle.write(ptr::null_mut()) };
        h.destroyed.store(true, Ordering::Release);
        h.commands.close();
        h.events.close();
        let (client, conn) = {
            let mut st = h.st();
            st.offline.clear();
            (st.client.take(), st.conn.take())
        };
        if let Some(c) = &conn {
            c.stop();
        }
        if let Some(c) = client {
            if c.is_connected() {
                let _ = c.disconnect_with(Disconnect::default(), Duration::ZERO);
            }
            drop(c);
        }
        // The handle's threads end now (closed queues); wait for them, except for the one
        // running this (a callback), which ends when the callback returns.
        let mine = HANDLE_THREAD.with(|t| t.get()) == Arc::as_ptr(&h.alive) as usize;
        h.alive.wait_for(usize::from(mine));
        lock(&h.pending).set.clear();
        h.pending_cv.notify_all();
        let mut store = h.store.clone();
        if let Err(e) = store.close() {
            super::trace::trace(
                MQTTCLIENT_TRACE_ERROR,
                &format!("mqttsync: closing persistence failed: {e}"),
            );
        }
    })
}

// ---------------------------------------------------------------------------------------
// callbacks and settings
// ---------------------------------------------------------------------------------------

fn set_cbs(handle: MQTTAsync, f: impl FnOnce(&mut Callbacks)) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        let mut st = h.st();
        if st.connecting {
            return Err(MQTTASYNC_FAILURE);
        }
        f(&mut st.cbs);
        Ok(())
    })
}

/// Sets the connection-lost, message-arrived (mandatory) and delivery-complete callbacks
/// with one `context`. All callbacks of a handle run one at a time, in order (on the
/// handle's callback thread, or on its client's dispatch thread when nothing is queued
/// before them), and may call any function of this API (including `MQTTAsync_destroy`).
///
/// `ma(context, topicName, topicLen, message)`: topic (NUL-terminated; `topicLen` is its
/// length, always given as Paho's async client does) and message are allocated by the
/// library; return non-zero when consumed (then free them with `MQTTAsync_free` and
/// `MQTTAsync_freeMessage`), or 0 to have the same message delivered again after a pause
/// growing from 10 ms to 1 s (the library frees its copies; later messages wait). `cl`
/// receives a text saying why the connection was lost (Paho passes NULL). `dc` is called
/// with the token of each QoS 1/2 publish once acknowledged.
///
/// Returns `MQTTASYNC_SUCCESS`, or `MQTTASYNC_FAILURE` for an unknown handle, a NULL `ma`
/// or while a connect is in progress. Callbacks may be changed while connected; the new
/// ones apply to the next event. Any thread.
///
/// # Safety
/// The functions are NULL or valid to call with `context` until replaced or destroyed.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_setCallbacks(
    handle: MQTTAsync,
    context: *mut c_void,
    cl: MQTTAsync_connectionLost,
    ma: MQTTAsync_messageArrived,
    dc: MQTTAsync_deliveryComplete,
) -> c_int {
    if ma.is_none() {
        return MQTTASYNC_FAILURE;
    }
    set_cbs(handle, |c| {
        c.ctx = SendPtr(context);
        c.lost = cl;
        c.arrived = ma;
        c.complete = dc;
    })
}

/// Sets only the connection-lost callback (and the shared context of
/// `MQTTAsync_setCallbacks`); NULL removes it. Returns and threads as
/// `MQTTAsync_setCallbacks`.
///
/// # Safety
/// As `MQTTAsync_setCallbacks`.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_setConnectionLostCallback(
    handle: MQTTAsync,
    context: *mut c_void,
    cl: MQTTAsync_connectionLost,
) -> c_int {
    set_cbs(handle, |c| {
        c.ctx = SendPtr(context);
        c.lost = cl;
    })
}

/// Sets only the message-arrived callback (and the shared context); NULL removes it, and
/// incoming messages are then dropped. Returns and threads as `MQTTAsync_setCallbacks`.
///
/// # Safety
/// As `MQTTAsync_setCallbacks`.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_setMessageArrivedCallback(
    handle: MQTTAsync,
    context: *mut c_void,
    ma: MQTTAsync_messageArrived,
) -> c_int {
    set_cbs(handle, |c| {
        c.ctx = SendPtr(context);
        c.arrived = ma;
    })
}

/// Sets only the delivery-complete callback (and the shared context); NULL removes it.
/// Returns and threads as `MQTTAsync_setCallbacks`.
///
/// # Safety
/// As `MQTTAsync_setCallbacks`.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_setDeliveryCompleteCallback(
    handle: MQTTAsync,
    context: *mut c_void,
    dc: MQTTAsync_deliveryComplete,
) -> c_int {
    set_cbs(handle, |c| {
        c.ctx = SendPtr(context);
        c.complete = dc;
    })
}

/// Sets the callback called after each successful connect: with cause "connect onSuccess
/// called" after the `onSuccess` of `MQTTAsync_connect` / `MQTTAsync_reconnect`, and
/// "automatic reconnect" after an automatic reconnect. NULL removes it. Returns
/// `MQTTASYNC_SUCCESS`, or `MQTTASYNC_FAILURE` for an unknown handle or during a connect.
/// Runs in order with the handle's other callbacks (see `MQTTAsync_setCallbacks`). Any
/// thread.
///
/// # Safety
/// `co` is NULL or valid to call with `context` until replaced or destroyed.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_setConnected(
    handle: MQTTAsync,
    context: *mut c_void,
    co: MQTTAsync_connected,
) -> c_int {
    set_cbs(handle, |c| {
        c.conn_ctx = SendPtr(context);
        c.connected = co;
    })
}

/// Sets the MQTT 5 callback for a DISCONNECT sent by the server (its properties, owned by
/// the library and valid during the call, and reason code). `connectionLost` is called
/// after it as well. NULL removes it. Returns as `MQTTAsync_setConnected`.
///
/// # Safety
/// `co` is NULL or valid to call with `context` until replaced or destroyed.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_setDisconnected(
    handle: MQTTAsync,
    context: *mut c_void,
    co: MQTTAsync_disconnected,
) -> c_int {
    set_cbs(handle, |c| {
        c.disc_ctx = SendPtr(context);
        c.disconnected = co;
    })
}

/// Sets the callback that may change the user name and password before each automatic
/// reconnect attempt (as Paho) and before `MQTTAsync_reconnect` connects again: it gets an
/// `MQTTAsync_connectData` with the current values and returns non-zero when it replaced
/// them with `malloc`'d values (which the library frees); the new values are used for that
/// attempt and every later one. NULL removes it. Returns as `MQTTAsync_setConnected`.
/// Runs on the handle's callback thread before automatic reconnects (the client's I/O
/// thread waits for it, up to 30 s), on its command thread before `MQTTAsync_reconnect`;
/// it may call any function.
///
/// # Safety
/// `co` is NULL or valid to call with `context` until replaced or destroyed.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_setUpdateConnectOptions(
    handle: MQTTAsync,
    context: *mut c_void,
    co: MQTTAsync_updateConnectOptions,
) -> c_int {
    set_cbs(handle, |c| {
        c.upd_ctx = SendPtr(context);
        c.update = co;
    })
}

/// Sets a callback that transforms every record before it is written to persistence (e.g.
/// to encrypt it): `co(context, bufcount, buffers, buflens)` gets malloc'd copies of the
/// record's parts; it may change them in place, change the lengths, or put other buffers
/// in the array (those stay the application's, as in Paho); non-zero fails the write.
/// Called on the client's I/O thread. NULL `co` removes it. Returns `MQTTASYNC_SUCCESS`, or
/// `MQTTASYNC_FAILURE` for an unknown handle. Any thread; set it before connecting.
#[no_mangle]
pub extern "C" fn MQTTAsync_setBeforePersistenceWrite(
    handle: MQTTAsync,
    context: *mut c_void,
    co: MQTTPersistence_beforeWrite,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        h.store.set_before_write(co, context);
        Ok(())
    })
}

/// Sets a callback that transforms every record read back from persistence (e.g. to
/// decrypt it): `co(context, &buffer, &buflen)` gets a malloc'd copy; it may work in place
/// or replace the buffer with another malloc'd one (the library frees whichever is left,
/// as in Paho); non-zero makes the record unreadable (reported and skipped). Called on the
/// connecting thread and the client's I/O thread. NULL `co` removes it. Returns
/// `MQTTASYNC_SUCCESS`, or `MQTTASYNC_FAILURE` for an unknown handle. Any thread; set it
/// before connecting.
#[no_mangle]
pub extern "C" fn MQTTAsync_setAfterPersistenceRead(
    handle: MQTTAsync,
    context: *mut c_void,
    co: MQTTPersistence_afterRead,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        h.store.set_after_read(co, context);
        Ok(())
    })
}

/// Returns 1 if the client is connected, 0 otherwise (also for an unknown handle). Any
/// thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_isConnected(handle: MQTTAsync) -> c_int {
    guard(0, || {
        lookup(handle)
            .and_then(|h| h.st().client.clone())
            .map_or(0, |c| c_int::from(c.is_connected()))
    })
}

// ---------------------------------------------------------------------------------------
// connect / reconnect / disconnect
// ---------------------------------------------------------------------------------------

unsafe fn read_connect_options(
    h: &AsyncHandle,
    options: *const MQTTAsync_connectOptions,
) -> Result<Params, c_int> {
    // SAFETY: NULL or options of their declared version (C contract).
    let (o, v) = unsafe { copy_versioned(options)? };
    let servers: Vec<String> = if v >= 2 && o.serverURIcount > 0 {
        if o.serverURIs.is_null() {
            return Err(MQTTASYNC_NULL_PARAMETER);
        }
        (0..o.serverURIcount as usize)
            .map(|i| {
                // SAFETY: serverURIcount string pointers (C contract), each NUL-terminated.
                unsafe { str_from_c(*o.serverURIs.add(i)) }.map(str::to_owned)
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![h.server_uri.to_string()]
    };
    for s in &servers {
        if !known_scheme(s) {
            return Err(MQTTASYNC_BAD_PROTOCOL);
        }
    }
    let will_props = if v >= 6 {
        o.willProperties
    } else {
        ptr::null_mut()
    };
    let will = if o.will.is_null() {
        None
    } else {
        // SAFETY: will options (same layout as MQTTClient_willOptions) and property list
        // valid per the C contract.
        Some(Box::new(unsafe {
            will_from_c(o.will.cast::<MQTTClient_willOptions>(), will_props)?
        }))
    };
    let ssl = if v >= 1 { o.ssl } else { ptr::null_mut() };
    let tls = if ssl.is_null() {
        None
    } else {
        // SAFETY: SSL options (same layout as MQTTClient_SSLOptions), C contract.
        Some(Arc::new(unsafe {
            tls_from_c(ssl.cast::<MQTTClient_SSLOptions>())?
        }))
    };
    let needs_tls = servers
        .iter()
        .any(|s| ServerUri::parse(s).is_ok_and(|u| u.scheme.is_tls()));
    if needs_tls && tls.is_none() {
        return Err(MQTTASYNC_NULL_PARAMETER);
    }
    let version = if v >= 3 {
        o.MQTTVersion
    } else {
        MQTTVERSION_DEFAULT
    };
    if version != MQTTVERSION_DEFAULT && !(MQTTVERSION_3_1..=MQTTVERSION_5).contains(&version) {
        return Err(MQTTASYNC_BAD_MQTT_VERSION_ASYNC);
    }
    if version >= MQTTVERSION_5 && !h.v5 {
        return Err(MQTTASYNC_WRONG_MQTT_VERSION);
    }
    let username = opt_str(o.username)?;
    let password_str = opt_str(o.password)?;
    let cleanstart = v >= 6 && o.cleanstart != 0;
    if version >= MQTTVERSION_5 {
        if o.cleansession != 0 {
            return Err(MQTTASYNC_BAD_MQTT_OPTION);
        }
    } else if v >= 6
        && (cleanstart
            || o.onSuccess5.is_some()
            || o.onFailure5.is_some()
            || !o.connectProperties.is_null()
            || !o.willProperties.is_null())
    {
        return Err(MQTTASYNC_BAD_MQTT_OPTION);
    }
    let password = match password_str {
        Some(p) => Some(p.into_bytes()),
        None if v >= 5 && !o.binarypwd.data.is_null() => {
            // SAFETY: binarypwd.len readable bytes (C contract).
            Some(unsafe { bytes_from_c(o.binarypwd.data, o.binarypwd.len)? }.to_vec())
        }
        None => None,
    };
    // SAFETY: the fields of options of version `v` (C contract); MQTTAsync_nameValue has
    // MQTTClient_nameValue's layout.
    let web = unsafe {
        WebParams::from_c(
            v,
            o.httpHeaders.cast::<MQTTClient_nameValue>(),
            o.httpProxy,
            o.httpsProxy,
        )?
    };
    let props = if v >= 6 && !o.connectProperties.is_null() {
        // SAFETY: a valid property list (C contract).
        unsafe { properties_from_c(o.connectProperties)? }
    } else {
        Properties::new()
    };
    let reconnect = if v >= 4 && o.automaticReconnect != 0 {
        let min = Duration::from_secs(o.minRetryInterval.max(1) as u64);
        let max = Duration::from_secs(o.maxRetryInterval.max(1) as u64).max(min);
        Some((min, max))
    } else {
        None
    };
    Ok(Params {
        servers,
        keep_alive: Duration::from_secs(o.keepAliveInterval.max(0) as u64),
        clean: if version >= MQTTVERSION_5 {
            cleanstart
        } else {
            o.cleansession != 0
        },
        version,
        username,
        password,
        will,
        props,
        connect_timeout: Duration::from_secs(if o.connectTimeout > 0 {
            o.connectTimeout as u64
        } else {
            30
        }),
        max_inflight: u16::try_from(o.maxInflight.max(1)).unwrap_or(u16::MAX),
        tls,
        web,
        reconnect,
        resp: Resp {
            ok: o.onSuccess,
            fail: o.onFailure,
            ok5: if v >= 6 { o.onSuccess5 } else { None },
            fail5: if v >= 6 { o.onFailure5 } else { None },
            ctx: SendPtr(o.context),
        },
    })
}

/// `MQTTASYNC_BAD_MQTT_VERSION` does not exist in MQTTAsync.h; Paho's async connect
/// reports an unknown `MQTTVersion` as a bad structure.
const MQTTASYNC_BAD_MQTT_VERSION_ASYNC: c_int = MQTTASYNC_BAD_STRUCTURE;

/// Queues a request for the command thread, starting it if none runs.
fn push_command(h: &AsyncHandle, cmd: Command) -> Result<(), c_int> {
    let mut started = true;
    h.commands
        .push(cmd, COMMAND_QUEUE_MAX, || {
            let r = h.start_with(
                crate::client::threads::spawn_limited,
                c"mqttasync-cmd",
                command_loop,
            );
            started = r.is_ok();
            r
        })
        .map_err(|_| {
            if started {
                MQTTASYNC_MAX_BUFFERED_MESSAGES
            } else {
                MQTTASYNC_FAILURE
            }
        })
}

/// Starts connecting with `options` (eyecatcher `MQTC`, versions 0-8) and returns at once;
/// the outcome goes to `options->onSuccess` (successData `alt.connect`: serverURI,
/// MQTTVersion, sessionPresent) or `onFailure` (code: a CONNACK return code 1-5, or
/// `MQTTASYNC_FAILURE` for network failures and timeouts), or for MQTT 5 `onSuccess5` /
/// `onFailure5` (CONNACK reason code and properties), all with `options->context`; then
/// `connected` (see `MQTTAsync_setConnected`). Servers are tried in order (`serverURIs`,
/// version 2+); `MQTTVERSION_DEFAULT` tries 3.1.1, then 3.1 when refused with code 1.
/// `automaticReconnect` (version 4+) reconnects after a loss with a delay from
/// `minRetryInterval` doubling up to `maxRetryInterval` seconds; publishes made meanwhile
/// are buffered when the client was created with `sendWhileDisconnected`. Connect options,
/// will, TLS, WebSocket headers and proxies as for `MQTTClient_connect` (TLS verification
/// and unsupported options as documented there). A connect while connected first
/// disconnects. Buffered publishes are sent after the connect succeeds.
///
/// Returns `MQTTASYNC_SUCCESS` when the request is queued; `MQTTASYNC_FAILURE` for an
/// unknown handle; `MQTTASYNC_NULL_PARAMETER` (NULL options, will without topic, TLS server
/// without `ssl`); `MQTTASYNC_BAD_STRUCTURE` (any structure, unknown `MQTTVersion`);
/// `MQTTASYNC_BAD_QOS` (will); `MQTTASYNC_0_LEN_WILL_TOPIC`; `MQTTASYNC_BAD_UTF8_STRING`;
/// `MQTTASYNC_BAD_MQTT_OPTION` (MQTT 5 options with MQTT 3 or `cleansession` with MQTT 5);
/// `MQTTASYNC_WRONG_MQTT_VERSION` (MQTT 5 on a client not created for it);
/// `MQTTASYNC_BAD_PROTOCOL`; `MQTTASYNC_MAX_BUFFERED_MESSAGES` when the request queue is
/// full (`MQTTASYNC_FAILURE` if no thread can be started to run it).
///
/// Ownership: the options are copied; the callbacks run later on the handle's callback
/// thread. Any thread, including callbacks.
///
/// # Safety
/// `options` is NULL or points to options of the version it declares, whose pointers are
/// valid for the call.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_connect(
    handle: MQTTAsync,
    options: *const MQTTAsync_connectOptions,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        // SAFETY: forwarded C contract.
        let p = unsafe { read_connect_options(&h, options)? };
        let token = h.new_token()?;
        h.st().should_be_connected = true;
        push_command(&h, Command::Connect(Arc::new(p), token)).inspect_err(|_| h.complete(token))
    })
}

/// Connects again with the options of the last `MQTTAsync_connect` (after calling
/// `updateConnectOptions`, if set); the outcome goes to that connect's callbacks.
///
/// Returns `MQTTASYNC_SUCCESS` when queued; `MQTTASYNC_FAILURE` for an unknown handle or
/// when `MQTTAsync_connect` was never called; `MQTTASYNC_MAX_BUFFERED_MESSAGES` when the
/// request queue is full (`MQTTASYNC_FAILURE` if no thread can be started to run it). Any
/// thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_reconnect(handle: MQTTAsync) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        if h.st().last.is_none() {
            return Err(MQTTASYNC_FAILURE);
        }
        push_command(&h, Command::Reconnect)
    })
}

/// Starts disconnecting: waits up to `options->timeout` ms for in-flight messages, sends
/// DISCONNECT (MQTT 5: with `reasonCode` and `properties`, version 1) and closes; then
/// `onSuccess` / `onSuccess5`. Ends automatic reconnection and redelivery of a refused
/// message; `connectionLost` is not called. Publishes still in flight stay in persistence.
/// NULL options mean timeout 0 and no callbacks.
///
/// Returns `MQTTASYNC_SUCCESS` when queued; `MQTTASYNC_FAILURE` for an unknown handle;
/// `MQTTASYNC_DISCONNECTED` when not connected; `MQTTASYNC_BAD_STRUCTURE`;
/// `MQTTASYNC_MAX_BUFFERED_MESSAGES` when the request queue is full (`MQTTASYNC_FAILURE` if
/// no thread can be started to run it). Any thread.
///
/// # Safety
/// `options` is NULL or points to options of the version it declares.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_disconnect(
    handle: MQTTAsync,
    options: *const MQTTAsync_disconnectOptions,
) -> c_int {
    guard_rc(|| {
        let (o, v) = if options.is_null() {
            (None, 0)
        } else {
            // SAFETY: options of their declared version (C contract).
            let (o, v) = unsafe { copy_versioned(options)? };
            (Some(o), v)
        };
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        let o = o.map(|mut o| {
            if v == 0 && h.v5 {
                // Paho reads the MQTT 5 callbacks whatever the version, and Paho C++ sets
                // them in a version 0 structure for MQTT 5 clients: honour them there too.
                // SAFETY: a program using an MQTT 5 client is built against a header whose
                // structure has these fields (C contract, as for Paho).
                unsafe {
                    o.onSuccess5 = ptr::addr_of!((*options).onSuccess5).read_unaligned();
                    o.onFailure5 = ptr::addr_of!((*options).onFailure5).read_unaligned();
                }
            }
            o
        });
        let mut packet = Disconnect::default();
        let mut resp = Resp::NONE;
        let mut timeout = Duration::ZERO;
        if let Some(o) = o {
            timeout = Duration::from_millis(o.timeout.max(0) as u64);
            resp.ok = o.onSuccess;
            resp.fail = o.onFailure;
            resp.ctx = SendPtr(o.context);
            resp.ok5 = o.onSuccess5;
            resp.fail5 = o.onFailure5;
            if v >= 1 {
                packet.reason = u8::try_from(o.reasonCode).map_err(|_| MQTTASYNC_FAILURE)?;
                if o.properties.count > 0 {
                    // SAFETY: a valid property list inside version 1 options.
                    packet.properties =
                        unsafe { properties_from_c(ptr::addr_of!((*options).properties))? };
                }
            }
        }
        {
            let mut st = h.st();
            st.should_be_connected = false;
            if let Some(c) = &st.conn {
                c.stop();
            }
            if !st.client.as_ref().is_some_and(|c| c.is_connected()) && !st.connecting {
                return Err(MQTTASYNC_DISCONNECTED);
            }
        }
        // Paho gives disconnect no token (its callbacks see 0).
        push_command(
            &h,
            Command::Disconnect {
                packet,
                timeout,
                resp,
                token: 0,
            },
        )
    })
}

// ---------------------------------------------------------------------------------------
// subscribe / unsubscribe
// ---------------------------------------------------------------------------------------

unsafe fn topics_from_c(count: c_int, topics: *const *mut c_char) -> Result<Vec<String>, c_int> {
    if count <= 0 {
        return Err(MQTTASYNC_FAILURE);
    }
    if topics.is_null() {
        return Err(MQTTASYNC_NULL_PARAMETER);
    }
    (0..count as usize)
        .map(|i| {
            // SAFETY: `count` pointers (C contract), each NULL or NUL-terminated.
            unsafe { str_from_c(*topics.add(i)) }
                .map(str::to_owned)
                .map_err(|_| MQTTASYNC_BAD_UTF8_STRING)
        })
        .collect()
}

unsafe fn subscribe_impl(
    handle: MQTTAsync,
    count: c_int,
    topics: *const *mut c_char,
    qos: *const c_int,
    response: *mut MQTTAsync_responseOptions,
) -> Result<(), c_int> {
    let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
    if h.connected_client().is_none() {
        return Err(MQTTASYNC_DISCONNECTED);
    }
    // SAFETY: forwarded C contract.
    let names = unsafe { topics_from_c(count, topics)? };
    if qos.is_null() {
        return Err(MQTTASYNC_NULL_PARAMETER);
    }
    // SAFETY: NULL or response options of their version (C contract).
    let r = unsafe { resp_from_c(response)? };
    if !h.v5 && r.version >= 1 && (!r.props.is_empty() || r.resp.ok5.is_some()) {
        return Err(MQTTASYNC_BAD_MQTT_OPTION);
    }
    let mut filters = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        // SAFETY: `count` QoS values (C contract).
        let q = unsafe { *qos.add(i) };
        let q = u8::try_from(q)
            .ok()
            .and_then(QoS::from_u8)
            .ok_or(MQTTASYNC_BAD_QOS)?;
        if crate::topic::validate_topic_filter(&name).is_err() {
            return Err(MQTTASYNC_BAD_UTF8_STRING);
        }
        let mut o = SubscribeOptions {
            qos: q,
            ..Default::default()
        };
        if h.v5 {
            let list = r.sub_opts.get(i).or(r.sub_opts.first());
            if let Some(so) = list.or(r.sub_opt.as_ref()) {
                o.no_local = so.noLocal != 0;
                o.retain_as_published = so.retainAsPublished != 0;
                o.retain_handling = match so.retainHandling {
                    1 => RetainHandling::SendAtSubscribeIfNew,
                    2 => RetainHandling::DoNotSend,
                    _ => RetainHandling::SendAtSubscribe,
                };
            }
        }
        filters.push(SubscribeFilter {
            filter: name,
            options: o,
        });
    }
    let token = h.new_token()?;
    push_command(
        &h,
        Command::Subscribe {
            filters,
            props: r.props,
            resp: r.resp,
            token,
        },
    )
    .inspect_err(|_| h.complete(token))?;
    // SAFETY: validated above.
    unsafe { write_token(response, token) };
    Ok(())
}

/// Starts subscribing to `topic` (wildcards allowed) at `qos`; returns at once. The
/// SUBACK goes to `response->onSuccess` (`alt.qos` = granted QoS) or, when refused,
/// `onFailure` (code `MQTT_BAD_SUBSCRIBE`); MQTT 5: `onSuccess5` / `onFailure5` with the
/// reason code and properties; subscription options and properties from `response`
/// (version 1). `response` may be NULL; its `token` is written.
///
/// Returns `MQTTASYNC_SUCCESS` when queued; `MQTTASYNC_FAILURE` for an unknown handle;
/// `MQTTASYNC_DISCONNECTED`; `MQTTASYNC_BAD_UTF8_STRING` (NULL, not UTF-8 or invalid
/// filter); `MQTTASYNC_BAD_QOS`; `MQTTASYNC_BAD_STRUCTURE` (response);
/// `MQTTASYNC_BAD_MQTT_OPTION` (MQTT 5 options on an MQTT 3 client);
/// `MQTTASYNC_MAX_BUFFERED_MESSAGES` when the request queue is full (`MQTTASYNC_FAILURE` if
/// no thread can be started to run it). Any thread.
///
/// # Safety
/// `topic` is NULL or NUL-terminated; `response` is NULL or valid and writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_subscribe(
    handle: MQTTAsync,
    topic: *const c_char,
    qos: c_int,
    response: *mut MQTTAsync_responseOptions,
) -> c_int {
    guard_rc(|| {
        let topics = [topic as *mut c_char];
        // SAFETY: one topic and QoS on the stack; response per the C contract.
        unsafe { subscribe_impl(handle, 1, topics.as_ptr(), &qos, response) }
    })
}

/// Starts subscribing to `count` filters; on success `alt.qosList` holds the granted QoS
/// of each (valid during the callback; MQTT 5: `alt.sub.reasonCodes`). With MQTT 5,
/// `response->subscribeOptionsList` (`subscribeOptionsCount` entries) gives per-filter
/// options. Returns as `MQTTAsync_subscribe`; `MQTTASYNC_FAILURE` for `count <= 0`,
/// `MQTTASYNC_NULL_PARAMETER` for NULL arrays. Any thread.
///
/// # Safety
/// `topic` and `qos` hold `count` entries; `response` is NULL or valid and writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_subscribeMany(
    handle: MQTTAsync,
    count: c_int,
    topic: *const *mut c_char,
    qos: *const c_int,
    response: *mut MQTTAsync_responseOptions,
) -> c_int {
    // SAFETY: forwarded C contract.
    guard_rc(|| unsafe { subscribe_impl(handle, count, topic, qos, response) })
}

unsafe fn unsubscribe_impl(
    handle: MQTTAsync,
    count: c_int,
    topics: *const *mut c_char,
    response: *mut MQTTAsync_responseOptions,
) -> Result<(), c_int> {
    let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
    if h.connected_client().is_none() {
        return Err(MQTTASYNC_DISCONNECTED);
    }
    // SAFETY: forwarded C contract.
    let filters = unsafe { topics_from_c(count, topics)? };
    for f in &filters {
        if crate::topic::validate_topic_filter(f).is_err() {
            return Err(MQTTASYNC_BAD_UTF8_STRING);
        }
    }
    // SAFETY: NULL or response options of their version (C contract).
    let r = unsafe { resp_from_c(response)? };
    let token = h.new_token()?;
    push_command(
        &h,
        Command::Unsubscribe {
            filters,
            props: r.props,
            resp: r.resp,
            token,
        },
    )
    .inspect_err(|_| h.complete(token))?;
    // SAFETY: validated above.
    unsafe { write_token(response, token) };
    Ok(())
}

/// Starts unsubscribing from `topic`; the UNSUBACK goes to `onSuccess` (MQTT 5:
/// `onSuccess5` with the reason code and properties). Returns as `MQTTAsync_subscribe`
/// (no QoS check). Any thread.
///
/// # Safety
/// `topic` is NULL or NUL-terminated; `response` is NULL or valid and writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_unsubscribe(
    handle: MQTTAsync,
    topic: *const c_char,
    response: *mut MQTTAsync_responseOptions,
) -> c_int {
    guard_rc(|| {
        let topics = [topic as *mut c_char];
        // SAFETY: one topic on the stack; response per the C contract.
        unsafe { unsubscribe_impl(handle, 1, topics.as_ptr(), response) }
    })
}

/// Starts unsubscribing from `count` filters (MQTT 5: `alt.unsub.reasonCodes` in
/// `onSuccess5`). Returns as `MQTTAsync_subscribeMany`. Any thread.
///
/// # Safety
/// `topic` holds `count` entries; `response` is NULL or valid and writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_unsubscribeMany(
    handle: MQTTAsync,
    count: c_int,
    topic: *const *mut c_char,
    response: *mut MQTTAsync_responseOptions,
) -> c_int {
    // SAFETY: forwarded C contract.
    guard_rc(|| unsafe { unsubscribe_impl(handle, count, topic, response) })
}

// ---------------------------------------------------------------------------------------
// publish
// ---------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
unsafe fn send_impl(
    handle: MQTTAsync,
    topic: *const c_char,
    payloadlen: c_int,
    payload: *const c_void,
    qos: c_int,
    retained: bool,
    props: *const MQTTProperties,
    response: *mut MQTTAsync_responseOptions,
) -> Result<(), c_int> {
    let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
    // SAFETY: NULL or NUL-terminated (C contract).
    let name = unsafe { str_from_c(topic) }.map_err(|_| MQTTASYNC_BAD_UTF8_STRING)?;
    let q = u8::try_from(qos)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or(MQTTASYNC_BAD_QOS)?;
    // SAFETY: NULL or response options of their version (C contract).
    let r = unsafe { resp_from_c(response)? };
    if crate::topic::validate_topic_name(name).is_err() {
        return Err(MQTTASYNC_BAD_UTF8_STRING);
    }
    // SAFETY: payload has payloadlen readable bytes (C contract).
    let data = unsafe { bytes_from_c(payload, payloadlen)? }.to_vec();
    let mut m = Message::new(name, Bytes::from(data))
        .qos(q)
        .retain(retained);
    if h.v5 {
        if !props.is_null() {
            // SAFETY: a valid property list (C contract).
            m.properties = unsafe { properties_from_c(props)? };
        }
        if m.properties.is_empty() && !r.props.is_empty() {
            m.properties = r.props.clone();
        }
    }
    let (client, conn, should) = {
        let st = h.st();
        (st.client.clone(), st.conn.clone(), st.should_be_connected)
    };
    let live = match (&client, &conn) {
        (Some(c), Some(k))
            if c.state() != crate::State::Disconnected && c.state() != crate::State::Closed =>
        {
            Some((c.clone(), k.clone()))
        }
        _ => None,
    };
    let token = h.new_token()?;
    let buffered = Buffered {
        msg: m,
        resp: r.resp,
        token,
        key: None,
    };
    let result = if let Some((client, conn)) = live {
        let mut st = h.st();
        if client.is_connected() && st.offline.is_empty() && !st.draining {
            drop(st);
            publish_now(&h, &client, &conn, buffered, false)
                .map_err(|rc| rc.unwrap_or(MQTTASYNC_FAILURE))
        } else if client.is_connected() || h.create.send_while_disconnected {
            // Reconnecting, or publishes buffered meanwhile are still being handed over:
            // behind them.
            buffer_publish(&h, &mut st, buffered)
        } else {
            drop(st);
            h.complete(token);
            return Err(MQTTASYNC_DISCONNECTED);
        }
    } else {
        let c = h.create;
        if !c.send_while_disconnected || !(should || c.any_time) {
            h.complete(token);
            return Err(MQTTASYNC_DISCONNECTED);
        }
        buffer_publish(&h, &mut h.st(), buffered)
    };
    result?;
    // SAFETY: validated above.
    unsafe { write_token(response, token) };
    Ok(())
}

/// Publishes `payloadlen` bytes at `payload` to `destinationName` with `qos` and the
/// `retained` flag; the data is copied. Returns at once, except that with file or user
/// persistence a QoS 1/2 message is in the store when the call returns, as in Paho (it
/// waits for the client to write it, up to 10 s while the in-flight window and the
/// client's queue are full, then writes a record of its own that the client's replaces
/// when it takes the message). The request token is written
/// to `response->token` (`response` may be NULL); MQTT 5 properties come from
/// `response->properties` (version 1). QoS 0 completes when queued (while the
/// application sends them faster than their `onSuccess` callbacks run one by one, those
/// run in batches up to about 0.1 ms apart); QoS 1/2 when
/// acknowledged, with `deliveryComplete` then `onSuccess` (`alt.pub`: the message and
/// topic, valid during the call; MQTT 5 `onSuccess5` with the PUBACK/PUBCOMP reason code),
/// or `onFailure5` when the server refuses it. While disconnected the publish is buffered
/// if the client was created with `sendWhileDisconnected` (see
/// `MQTTAsync_createWithOptions`).
///
/// Returns `MQTTASYNC_SUCCESS`; `MQTTASYNC_FAILURE` for an unknown handle or a negative
/// length; `MQTTASYNC_BAD_UTF8_STRING` for a NULL, non-UTF-8, empty or wildcard topic;
/// `MQTTASYNC_BAD_QOS`; `MQTTASYNC_NULL_PARAMETER` (NULL payload with a length);
/// `MQTTASYNC_BAD_STRUCTURE` (response); `MQTTASYNC_DISCONNECTED` (not connected and not
/// buffering); `MQTTASYNC_MAX_BUFFERED_MESSAGES` when the buffer is full, or the client's
/// queue of publishes not yet taken by its I/O thread stays full for 100 ms (flow control).
/// Any thread, including callbacks.
///
/// # Safety
/// `destinationName` is NULL or NUL-terminated; `payload` has `payloadlen` readable bytes;
/// `response` is NULL or valid and writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_send(
    handle: MQTTAsync,
    destinationName: *const c_char,
    payloadlen: c_int,
    payload: *const c_void,
    qos: c_int,
    retained: c_int,
    response: *mut MQTTAsync_responseOptions,
) -> c_int {
    guard_rc(|| {
        // SAFETY: forwarded C contract.
        unsafe {
            send_impl(
                handle,
                destinationName,
                payloadlen,
                payload,
                qos,
                retained != 0,
                ptr::null(),
                response,
            )
        }
    })
}

/// Publishes an `MQTTAsync_message` (eyecatcher `MQTM`, version 0 or 1; its payload, qos,
/// retained and, for MQTT 5 clients, properties) to `destinationName`. The caller keeps
/// ownership of the message. Returns as `MQTTAsync_send`, plus `MQTTASYNC_NULL_PARAMETER`
/// for a NULL message and `MQTTASYNC_BAD_STRUCTURE` for a bad one. Any thread.
///
/// # Safety
/// As `MQTTAsync_send`; `msg` is NULL or a valid message.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_sendMessage(
    handle: MQTTAsync,
    destinationName: *const c_char,
    msg: *const MQTTAsync_message,
    response: *mut MQTTAsync_responseOptions,
) -> c_int {
    guard_rc(|| {
        lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        // SAFETY: NULL or a message of its declared version (C contract).
        let (m, v) = unsafe { copy_versioned(msg)? };
        let props = if v >= 1 && m.properties.count > 0 {
            // SAFETY: msg is a valid version 1 message.
            unsafe { ptr::addr_of!((*msg).properties) }
        } else {
            ptr::null()
        };
        // SAFETY: forwarded C contract.
        unsafe {
            send_impl(
                handle,
                destinationName,
                m.payloadlen,
                m.payload,
                m.qos,
                m.retained != 0,
                props,
                response,
            )
        }
    })
}

// ---------------------------------------------------------------------------------------
// tokens
// ---------------------------------------------------------------------------------------

/// Writes to `*tokens` a `malloc`'d array of the tokens of requests not yet complete
/// (ending with -1), or NULL when there are none; free it with `MQTTAsync_free`. QoS 1/2
/// messages an earlier run left in flight in persistence are listed from
/// `MQTTAsync_create` on, under their packet ids (as in Paho), until the first connect has
/// resent them (then `deliveryComplete` gets that token; a clean first connect discards
/// them and their tokens complete). Returns
/// `MQTTASYNC_SUCCESS`, `MQTTASYNC_FAILURE` for an unknown handle,
/// `MQTTASYNC_NULL_PARAMETER` for a NULL `tokens`. Any thread.
///
/// # Safety
/// `tokens` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_getPendingTokens(
    handle: MQTTAsync,
    tokens: *mut *mut MQTTAsync_token,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        if tokens.is_null() {
            return Err(MQTTASYNC_NULL_PARAMETER);
        }
        let mut v: Vec<c_int> = lock(&h.pending).set.iter().copied().collect();
        v.sort_unstable();
        let out = if v.is_empty() {
            ptr::null_mut()
        } else {
            v.push(-1);
            c_array(&v)?
        };
        // SAFETY: non-NULL and writable (C contract).
        unsafe { tokens.write(out) };
        Ok(())
    })
}

/// The Rust token of a QoS 1/2 publish still in flight on the current connection.
fn publish_token(h: &AsyncHandle, token: c_int) -> Option<DeliveryToken> {
    let conn = h.st().conn.clone()?;
    let inflight = lock(&conn.inflight);
    inflight
        .map
        .values()
        .find(|i| i.token == token)
        .map(|i| i.rust.clone())
}

/// Returns 1 (`MQTTASYNC_TRUE`) if the request with `token` is complete (or unknown), 0 if
/// it is pending, `MQTTASYNC_FAILURE` for an unknown handle. Any thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_isComplete(handle: MQTTAsync, token: MQTTAsync_token) -> c_int {
    guard(MQTTASYNC_FAILURE, || match lookup(handle) {
        None => MQTTASYNC_FAILURE,
        Some(h) => c_int::from(
            !lock(&h.pending).set.contains(&token)
                || publish_token(&h, token).is_some_and(|t| t.is_complete()),
        ),
    })
}

/// Waits up to `timeout` ms until the request with `token` completes (blocking on it, no
/// polling). Returns `MQTTASYNC_SUCCESS` when it completed (whatever its outcome) or is
/// unknown; `MQTTASYNC_FAILURE` on timeout or for an unknown handle;
/// `MQTTASYNC_DISCONNECTED` when the client is neither connected nor connecting. Any
/// thread, including callbacks (requests complete on the command thread, acknowledgements
/// on the I/O thread).
#[no_mangle]
pub extern "C" fn MQTTAsync_waitForCompletion(
    handle: MQTTAsync,
    token: MQTTAsync_token,
    timeout: c_ulong,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTASYNC_FAILURE)?;
        {
            let st = h.st();
            let up = st.connecting || st.client.as_ref().is_some_and(|c| c.is_connected());
            if !up && !lock(&h.pending).set.contains(&token) {
                return Ok(());
            }
            if !up && !st.should_be_connected {
                return Err(MQTTASYNC_DISCONNECTED);
            }
        }
        #[allow(clippy::useless_conversion)]
        let timeout = Duration::from_millis(u64::from(timeout));
        let deadline = Instant::now() + timeout;
        if let Some(t) = publish_token(&h, token) {
            // A publish in flight: its Rust token completes on the I/O thread.
            match t.wait_timeout(timeout) {
                Ok(_) => return Ok(()),
                Err(_) if t.is_complete() => return Ok(()),
                Err(Error::Timeout { .. }) => return Err(MQTTASYNC_FAILURE),
                // Not connected: wait for the token below (a reconnect may complete it).
                Err(_) => {}
            }
        }
        let mut p = lock(&h.pending);
        p.waiters += 1;
        let r = loop {
            if !p.set.contains(&token) {
                break Ok(());
            }
            let now = Instant::now();
            if now >= deadline || h.destroyed.load(Ordering::Acquire) {
                break Err(MQTTASYNC_FAILURE);
            }
            p = h
                .pending_cv
                .wait_timeout(p, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        p.waiters -= 1;
        r
    })
}

// ---------------------------------------------------------------------------------------
// library functions
// ---------------------------------------------------------------------------------------

/// Frees a message received in `messageArrived` (payload, properties, structure) and sets
/// `*msg` to NULL; not the topic (use `MQTTAsync_free`). NULL is ignored. Any thread.
///
/// # Safety
/// `msg` is NULL or points to NULL or to a message allocated by this library.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_freeMessage(msg: *mut *mut MQTTAsync_message) {
    // SAFETY: same layout as MQTTClient_message; forwarded contract.
    unsafe { super::misc::MQTTClient_freeMessage(msg.cast()) }
}

/// Frees memory the library allocated for the application (topic names, token arrays);
/// same as `free()`. NULL is ignored. Any thread.
///
/// # Safety
/// `ptr` is NULL or was allocated by this library (or `malloc`) and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_free(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { super::misc::MQTTClient_free(ptr) }
}

/// Allocates memory that `MQTTAsync_free` (or `free`) releases. NULL when out of memory.
/// Any thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_malloc(size: usize) -> *mut c_void {
    super::misc::MQTTClient_malloc(size)
}

/// Global initialisation (optional): checks the structure (`MQTG`, version 0) and
/// otherwise does nothing (OpenSSL initialises itself). Any thread, any time.
///
/// # Safety
/// `inits` is NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn MQTTAsync_global_init(inits: *mut MQTTAsync_init_options) {
    // SAFETY: same layout as MQTTClient_init_options; forwarded contract.
    unsafe { super::misc::MQTTClient_global_init(inits.cast()) }
}

/// Sets the process-wide trace level (shared with `MQTTClient_setTraceLevel`). Any thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_setTraceLevel(level: MQTTASYNC_TRACE_LEVELS) {
    super::misc::MQTTClient_setTraceLevel(level)
}

/// Sets the process-wide trace callback (shared with `MQTTClient_setTraceCallback`; NULL
/// turns tracing off). It may run on any library thread and must not call the API; the
/// text is valid during the call. Any thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_setTraceCallback(callback: MQTTAsync_traceCallback) {
    super::misc::MQTTClient_setTraceCallback(callback)
}

/// Returns a static array of name/value pairs describing the library, ending with a NULL
/// name. Do not free or modify. Any thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_getVersionInfo() -> *mut MQTTAsync_nameValue {
    super::misc::MQTTClient_getVersionInfo().cast()
}

macro_rules! cs {
    ($s:expr) => {
        concat!($s, "\0").as_ptr().cast::<c_char>()
    };
}

/// Returns a text for an `MQTTASYNC_*` code (static; do not free), or NULL for an unknown
/// code, as the header says. Any thread.
#[no_mangle]
pub extern "C" fn MQTTAsync_strerror(code: c_int) -> *const c_char {
    guard(ptr::null(), || match code {
        MQTTASYNC_SUCCESS => cs!("Success"),
        MQTTASYNC_FAILURE => cs!("Failure"),
        MQTTASYNC_PERSISTENCE_ERROR => cs!("Persistence error"),
        MQTTASYNC_DISCONNECTED => cs!("Disconnected"),
        MQTTASYNC_MAX_MESSAGES_INFLIGHT => cs!("Maximum in-flight messages amount reached"),
        MQTTASYNC_BAD_UTF8_STRING => cs!("Invalid UTF8 string"),
        MQTTASYNC_NULL_PARAMETER => cs!("Invalid (NULL) parameter"),
        MQTTASYNC_TOPICNAME_TRUNCATED => cs!("Topic containing NULL characters has been truncated"),
        MQTTASYNC_BAD_STRUCTURE => cs!("Bad structure"),
        MQTTASYNC_BAD_QOS => cs!("Invalid QoS value"),
        MQTTASYNC_NO_MORE_MSGIDS => cs!("Too many pending commands"),
        MQTTASYNC_OPERATION_INCOMPLETE => cs!("Operation discarded before completion"),
        MQTTASYNC_MAX_BUFFERED_MESSAGES => cs!("No more messages can be buffered"),
        MQTTASYNC_SSL_NOT_SUPPORTED => cs!("SSL is not supported"),
        MQTTASYNC_BAD_PROTOCOL => cs!("Invalid protocol scheme"),
        MQTTASYNC_BAD_MQTT_OPTION => cs!("Options for wrong MQTT version"),
        MQTTASYNC_WRONG_MQTT_VERSION => cs!("Client created for another version of MQTT"),
        MQTTASYNC_0_LEN_WILL_TOPIC => cs!("Zero length will topic on connect"),
        MQTTASYNC_COMMAND_IGNORED => cs!("Connect or disconnect command ignored"),
        MQTTASYNC_MAX_BUFFERED => cs!("maxBufferedMessages in the connect options must be >= 0"),
        _ => ptr::null(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_handles_give_error_codes() {
        let bad = 0x1234 as MQTTAsync;
        assert_eq!(MQTTAsync_isConnected(bad), 0);
        assert_eq!(MQTTAsync_isComplete(bad, 1), MQTTASYNC_FAILURE);
        assert_eq!(MQTTAsync_waitForCompletion(bad, 1, 10), MQTTASYNC_FAILURE);
        assert_eq!(MQTTAsync_reconnect(bad), MQTTASYNC_FAILURE);
        assert_eq!(
            unsafe { MQTTAsync_disconnect(bad, ptr::null()) },
            MQTTASYNC_FAILURE
        );
        let mut h = bad;
        unsafe { MQTTAsync_destroy(&mut h) };
        assert_eq!(h, bad, "an unknown handle is left alone");
    }

    #[test]
    fn strerror_knows_the_async_codes() {
        let s = |c| {
            unsafe { std::ffi::CStr::from_ptr(MQTTAsync_strerror(c)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(
            s(MQTTASYNC_MAX_BUFFERED_MESSAGES),
            "No more messages can be buffered"
        );
        assert_eq!(s(MQTTASYNC_DISCONNECTED), "Disconnected");
        assert!(MQTTAsync_strerror(12345).is_null());
    }

    /// A stand-in for a handle's thread: claims the queue; the test takes the items.
    fn fake_thread(starts: &AtomicUsize) -> std::io::Result<()> {
        starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    #[test]
    fn queue_is_bounded_starts_its_thread_on_demand_and_closes() {
        let q = Queue::new();
        let starts = AtomicUsize::new(0);
        assert!(q.push(1, 2, || fake_thread(&starts)).is_ok());
        assert!(q.push(2, 2, || fake_thread(&starts)).is_ok());
        assert_eq!(q.push(3, 2, || fake_thread(&starts)), Err(3));
        assert_eq!(starts.load(Ordering::SeqCst), 1, "one thread for the queue");
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), Some(2));
        // Empty: the thread gives the queue back at once and must end (a command runner
        // does not linger, see `Queue::pop`).
        assert_eq!(q.pop(), None);
        // The next item starts a thread again.
        assert!(q.push(4, 2, || fake_thread(&starts)).is_ok());
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_eq!(q.close(), [4]);
        assert_eq!(q.pop(), None);
        assert_eq!(q.push(5, 2, || fake_thread(&starts)), Err(5));
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_item_whose_thread_cannot_start_is_refused_and_the_next_starts_one() {
        let q = Queue::new();
        let failed = q.push(1, 2, || Err(std::io::Error::other("no thread")));
        assert_eq!(failed, Err(1));
        let starts = AtomicUsize::new(0);
        assert!(q.push(2, 2, || fake_thread(&starts)).is_ok());
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(q.pop(), Some(2));
    }

    #[test]
    fn events_start_the_callback_thread_on_demand_and_it_leaves_when_idle() {
        let ev = Events::new();
        let starts = AtomicUsize::new(0);
        let ran = Arc::new(AtomicUsize::new(0));
        let call = |ran: &Arc<AtomicUsize>| {
            let ran = ran.clone();
            Event::Call(Box::new(move |_| {
                ran.fetch_add(1, Ordering::SeqCst);
            }))
        };
        // Nothing queued or running: a dispatch thread runs the callback itself.
        assert!(ev.try_run_here(7, |_| {}).is_none());
        assert_eq!(starts.load(Ordering::SeqCst), 0);
        ev.push(call(&ran), false, || fake_thread(&starts));
        ev.push(call(&ran), false, || fake_thread(&starts));
        assert_eq!(starts.load(Ordering::SeqCst), 1, "one callback thread");
        // Queued events go first: a dispatch thread's event queues behind them.
        assert_eq!(ev.try_run_here(8, |_| {}), Some(8));
        let mut batch = VecDeque::new();
        assert!(ev.next_batch(&mut batch));
        assert_eq!(batch.len(), 2);
        batch.clear();
        ev.batch_done();
        let t0 = Instant::now();
        assert!(
            !ev.next_batch(&mut batch),
            "leaves after LINGER without work"
        );
        assert!(t0.elapsed() >= LINGER);
        ev.push(call(&ran), false, || fake_thread(&starts));
        assert_eq!(starts.load(Ordering::SeqCst), 2, "started again");
        ev.close();
        assert!(!ev.next_batch(&mut batch));
    }

    #[test]
    fn a_stream_of_lazy_events_makes_the_callback_thread_nap_and_others_wake_it() {
        let ev = Arc::new(Events::new());
        let starts = AtomicUsize::new(0);
        let noop = || Event::Call(Box::new(|_| {}));
        let mut batch = VecDeque::new();
        let take = |ev: &Events, batch: &mut VecDeque<Event>| {
            assert!(ev.next_batch(batch));
            let n = batch.len();
            batch.clear();
            ev.batch_done();
            (n, lock(&ev.m).nap_next)
        };
        // A few lazy events after a wake-up: no stream, the thread will sleep.
        for _ in 1..NAP_ENTER {
            ev.push(noop(), true, || fake_thread(&starts));
        }
        assert_eq!(take(&ev, &mut batch), (NAP_ENTER as usize - 1, false));
        // Enough of them (or others beside them) to start the naps.
        ev.push(noop(), false, || fake_thread(&starts));
        for _ in 0..NAP_ENTER {
            ev.push(noop(), true, || fake_thread(&starts));
        }
        assert_eq!(take(&ev, &mut batch), (NAP_ENTER as usize + 1, true));

        // While it naps, a lazy event waits for the nap's end (and is taken then); any
        // other one wakes it, and so does a full batch.
        let mut st = EventState {
            q: VecDeque::new(),
            closed: false,
            running: false,
            reserved: false,
            sleeping: false,
            napping: true,
            lazy: 0,
            nap_next: false,
            worker: Worker::default(),
        };
        assert!(st.waits_for_nap(true));
        assert!(!st.waits_for_nap(false));
        assert!(st.claim_wake(), "the first other event wakes it");
        assert!(!st.claim_wake(), "once");
        st.napping = true;
        st.q.extend((0..NAP_BATCH).map(|_| noop()));
        assert!(!st.waits_for_nap(true), "a full batch ends the nap");
        st.napping = false;
        st.sleeping = true;
        st.q.clear();
        assert!(
            !st.waits_for_nap(true),
            "asleep: even a lazy event wakes it"
        );
        assert!(st.claim_wake() && !st.claim_wake());

        // A lazy event queued during the nap is run: the nap ends by itself.
        let pusher = {
            let ev = ev.clone();
            std::thread::spawn(move || {
                let starts = AtomicUsize::new(1);
                loop {
                    let g = lock(&ev.m);
                    if g.napping || g.sleeping {
                        break;
                    }
                    drop(g);
                    std::thread::yield_now();
                }
                ev.push(Event::Call(Box::new(|_| {})), true, || fake_thread(&starts));
            })
        };
        assert_eq!(take(&ev, &mut batch), (1, false));
        pusher.join().unwrap();
        ev.close();
    }

    /// A store that counts the records read (`get`).
    struct CountingStore(crate::persist::OneSpaceMemoryStore, Arc<AtomicUsize>);

    impl crate::persist::Store for CountingStore {
        fn is_durable(&self) -> bool {
            true
        }
        fn open(&mut self, c: &str, s: &str) -> crate::persist::Result<()> {
            self.0.open(c, s)
        }
        fn close(&mut self) -> crate::persist::Result<()> {
            self.0.close()
        }
        fn put(&mut self, k: &str, parts: &[&[u8]]) -> crate::persist::Result<()> {
            self.0.put(k, parts)
        }
        fn get(&mut self, k: &str) -> crate::persist::Result<Option<Vec<u8>>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.get(k)
        }
        fn remove(&mut self, k: &str) -> crate::persist::Result<()> {
            self.0.remove(k)
        }
        fn keys(&mut self) -> crate::persist::Result<Vec<String>> {
            self.0.keys()
        }
        fn clear(&mut self) -> crate::persist::Result<()> {
            self.0.clear()
        }
        fn contains_key(&mut self, k: &str) -> crate::persist::Result<bool> {
            self.0.contains_key(k)
        }
    }

    #[test]
    fn a_connect_reads_the_clients_records_for_buffered_ones_only_when_there_are_any() {
        use crate::persist::Store;
        let gets = Arc::new(AtomicUsize::new(0));
        let inner = CountingStore(Default::default(), gets.clone());
        let mut store = SharedStore::new(Box::new(inner), "c".into(), "tcp://h:1".into());
        store.open("c", "tcp://h:1").unwrap();
        // An in-flight record of the client (its content does not matter here).
        store.put("s-1", &[b"not a record"]).unwrap();
        let none = |_: &str| false;
        let reads = |store: &mut SharedStore, at_connect| {
            gets.store(0, Ordering::SeqCst);
            let (found, _) = restore_buffered(store, false, &none, at_connect);
            (found.len(), gets.load(Ordering::SeqCst))
        };
        // At create it is read (the numbers it names), at a connect with nothing buffered
        // not (the Rust client reads it next).
        assert_eq!(reads(&mut store, false), (0, 1));
        assert_eq!(reads(&mut store, true), (0, 0));
        // A buffered publish: it and the client's record are read.
        let m = Message::new("t", Bytes::from_static(b"p")).qos(QoS::AtLeastOnce);
        let rec = crate::persist::encode_message_record(&m, family(false), 1).unwrap();
        store.put("o-1", &[&rec]).unwrap();
        assert_eq!(reads(&mut store, true), (1, 2));
        // With a read transform (set after create) the client's records are read at a
        // connect as well.
        store.remove("o-1").unwrap();
        unsafe extern "C" fn same(_: *mut c_void, _: *mut *mut c_char, _: *mut c_int) -> c_int {
            0
        }
        store.set_after_read(Some(same), ptr::null_mut());
        assert_eq!(reads(&mut store, true), (0, 1));
    }
}
