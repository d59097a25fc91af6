//! The client functions of Paho C's `MQTTClient.h`: create, connect, publish, subscribe,
//! receive, callbacks, destroy.
//!
//! # Model
//!
//! A `MQTTClient` handle is an opaque number registered in a process-wide validity table
//! (`REGISTRY`); every call looks the number up before touching anything, so a destroyed or
//! garbage handle gives an error code (the code Paho gives for a NULL handle) instead of a
//! crash. Handle numbers are never reused. The handle owns:
//! - the persistence store (one instance for the handle's life, opened at create and closed
//!   at destroy, shared by every connection through [`SharedStore`]);
//! - the callbacks, the command timeout and the delivery-token table;
//! - while connected (and after a disconnect, until the next connect or destroy), the Rust
//!   [`Client`] behind an `Arc`. Each `MQTTClient_connect` builds a fresh `Client` on the
//!   same store, so unacknowledged QoS 1/2 messages are resent.
//!
//! The handle's lock is never held while blocking: calls clone the `Arc<Client>` out and
//! block on it, so callbacks (which run on the client's dispatch thread) may call the API.
//!
//! # Delivery tokens
//!
//! Tokens are positive numbers unique within the handle (not MQTT packet ids): the Rust
//! client's token id offset by the number of publishes made on earlier connections,
//! wrapping within 1..=INT_MAX.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_ulong, c_void};
use std::ptr::{self, addr_of_mut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::connect_opts::{
    known_scheme, opt_str, store_from_c, strip_scheme, tls_from_c, will_from_c, CTls, WebParams,
};
use super::convert::{
    c_string, message_to_c, properties_from_c, properties_to_c, response_error, response_to_c,
    topic_to_c,
};
use super::ffi::{bytes_from_c, c_array, copy_versioned, guard, guard_rc, str_from_c};
use super::handles::{error_code, Registry, SendPtr};
use super::misc::MQTTClient_freeMessage;
use super::persistence::SharedStore;
use super::properties::free_properties;
use super::types::enums::*;
use super::types::*;
use crate::persist::Store;
use crate::{
    Client, ConnectInfo, DeliveryEvent, DeliveryToken, Disconnect, Error, Message, Properties,
    ProtocolVersion, QoS, RetainHandling, ServerUri, SubscribeFilter, SubscribeOptions,
};

/// Default command timeout (SUBACK/UNSUBACK waits, waiting for room to publish): 10 s.
const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 10_000;
/// Tokens kept for `waitForCompletion` before completed ones are swept.
const TOKEN_SWEEP_AT: usize = 1024;
/// First and largest pause before redelivering a message that `messageArrived` refused.
const REDELIVER_FIRST: Duration = Duration::from_millis(10);
const REDELIVER_MAX: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Handle registry
// ---------------------------------------------------------------------------------------

/// Live `MQTTClient` handles (see [`Registry`]).
static REGISTRY: Registry<Handle> = Registry::new();

/// The live handle behind `h`, or `None` for NULL, destroyed or garbage values. Never
/// dereferences `h`.
fn lookup(h: MQTTClient) -> Option<Arc<Handle>> {
    REGISTRY.get(h)
}

/// The callbacks set on a handle.
#[derive(Clone, Copy)]
struct Callbacks {
    ctx: SendPtr,
    lost: MQTTClient_connectionLost,
    arrived: MQTTClient_messageArrived,
    complete: MQTTClient_deliveryComplete,
    disc_ctx: SendPtr,
    disconnected: MQTTClient_disconnected,
    pub_ctx: SendPtr,
    published: MQTTClient_published,
}

impl Default for Callbacks {
    fn default() -> Self {
        Callbacks {
            ctx: SendPtr(ptr::null_mut()),
            lost: None,
            arrived: None,
            complete: None,
            disc_ctx: SendPtr(ptr::null_mut()),
            disconnected: None,
            pub_ctx: SendPtr(ptr::null_mut()),
            published: None,
        }
    }
}

/// One connection's view of the callbacks, shared with the closures given to the Rust
/// client.
struct Conn {
    cbs: Callbacks,
    /// Token offset of this connection (see the module docs).
    base: u64,
    /// Rust tokens 1..=restored belong to messages restored from persistence at create:
    /// their C token is their packet id.
    restored: u64,
    /// Set by disconnect, destroy and a new connect: ends a redelivery loop.
    stop: Mutex<bool>,
    stop_cv: Condvar,
    /// Set by destroy: no further callback is called.
    quiet: AtomicBool,
    /// Set when the v5 `disconnected` callback reported a server DISCONNECT: the loss
    /// that follows is not reported again through `connectionLost`.
    suppress_lost: AtomicBool,
    /// Messages an earlier connection took in that no one has received yet: handed to
    /// `messageArrived` first, once this connection is up.
    backlog: Mutex<VecDeque<Message>>,
}

/// `unsigned long` milliseconds (32 or 64 bits by platform) as a duration.
#[allow(clippy::useless_conversion)]
fn ms(v: c_ulong) -> Duration {
    Duration::from_millis(u64::from(v))
}

fn c_token(base: u64, id: u64) -> c_int {
    let seq = base.wrapping_add(id).max(1);
    // Result is in 1..=i32::MAX.
    ((seq - 1) % (i32::MAX as u64) + 1) as c_int
}

impl Conn {
    fn new(cbs: Callbacks, base: u64, restored: u64) -> Arc<Conn> {
        Arc::new(Conn {
            cbs,
            base,
            restored,
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            quiet: AtomicBool::new(false),
            suppress_lost: AtomicBool::new(false),
            backlog: Mutex::new(VecDeque::new()),
        })
    }

    /// On the dispatch thread when the connection is up: messages left from an earlier
    /// connection go to `messageArrived` before anything new.
    fn connected(&self) {
        loop {
            let next = self
                .backlog
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match next {
                Some(m) => self.message_arrived(m),
                None => return,
            }
        }
    }

    fn signal_stop(&self) {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop_cv.notify_all();
    }

    /// Waits `d` or until stopped; true when stopped.
    fn wait_stop(&self, d: Duration) -> bool {
        let g = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .stop_cv
            .wait_timeout_while(g, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    fn quiet(&self) -> bool {
        self.quiet.load(Ordering::Acquire)
    }

    /// Calls `messageArrived` until it returns non-zero (consumed), redelivering the same
    /// message after a growing pause when it returns 0, until stopped.
    fn message_arrived(&self, m: Message) {
        let Some(f) = self.cbs.arrived else {
            return;
        };
        let mut delay = REDELIVER_FIRST;
        let has_nul = m.topic.contains('\0');
        loop {
            if self.quiet() {
                return;
            }
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
                Ok(p) => p,
                Err(_) => {
                    // SAFETY: topic was malloc'd just above and not handed out.
                    unsafe { libc::free(topic.cast()) };
                    super::trace::trace(
                        MQTTCLIENT_TRACE_SEVERE,
                        "mqttsync: out of memory or oversized message: incoming message dropped",
                    );
                    return;
                }
            };
            // SAFETY: the application's callback with its context, a malloc'd topic and
            // message whose ownership passes to it when it returns non-zero.
            let rc = unsafe { f(self.cbs.ctx.0, topic, if has_nul { len } else { 0 }, msg) };
            if rc != 0 {
                // The application has it: now the broker may be told (PUBACK / PUBREC).
                // Fails only when the session or client has ended; the broker then still
                // owns the message.
                let _ = m.ack();
                return;
            }
            // Refused: the library still owns its copies (Paho contract) and frees them.
            let mut mm = msg;
            // SAFETY: both were allocated above by this library and the application was
            // told not to free them (it returned 0).
            unsafe {
                libc::free(topic.cast());
                MQTTClient_freeMessage(&mut mm);
            }
            if self.wait_stop(delay) {
                return;
            }
            delay = (delay * 2).min(REDELIVER_MAX);
        }
    }

    fn connection_lost(&self, e: &Error) {
        if self.quiet() || self.suppress_lost.swap(false, Ordering::AcqRel) {
            return;
        }
        let Some(f) = self.cbs.lost else {
            return;
        };
        let text = c_string(&e.report());
        // SAFETY: the application's callback; the cause string is owned by the library and
        // valid during the call.
        unsafe { f(self.cbs.ctx.0, text.as_ptr() as *mut c_char) };
    }

    fn delivered(&self, ev: &DeliveryEvent) {
        if self.quiet() {
            return;
        }
        let tok = if ev.token_id <= self.restored {
            c_int::from(ev.packet_id)
        } else {
            c_token(self.base, ev.token_id)
        };
        let (reason, props) = match &ev.result {
            Ok(d) => {
                if let Some(f) = self.cbs.complete {
                    // SAFETY: the application's callback with its context.
                    unsafe { f(self.cbs.ctx.0, tok) };
                }
                (d.reason, d.properties.clone())
            }
            Err(e) => match &**e {
                Error::Rejected { code, .. } => (*code, Properties::new()),
                _ => return,
            },
        };
        if let Some(f) = self.cbs.published {
            let Ok(mut p) = properties_to_c(&props) else {
                return;
            };
            // SAFETY: the application's callback; the properties are owned by the library
            // and valid during the call.
            unsafe {
                f(
                    self.cbs.pub_ctx.0,
                    tok,
                    c_int::from(ev.packet_type),
                    &mut p,
                    c_int::from(reason),
                );
                free_properties(&mut p);
            }
        }
    }

    fn server_disconnect(&self, d: &Disconnect) {
        if self.quiet() {
            return;
        }
        let Some(f) = self.cbs.disconnected else {
            return;
        };
        self.suppress_lost.store(true, Ordering::Release);
        let Ok(mut p) = properties_to_c(&d.properties) else {
            return;
        };
        // SAFETY: the application's callback; the properties are owned by the library and
        // valid during the call.
        unsafe {
            f(self.cbs.disc_ctx.0, &mut p, c_int::from(d.reason));
            free_properties(&mut p);
        }
    }
}

/// Mutable per-handle state, behind the handle's lock (never held while blocking).
struct State {
    client: Option<Arc<Client>>,
    conn: Option<Arc<Conn>>,
    callbacks: Callbacks,
    command_timeout: Duration,
    connecting: bool,
    /// Storage of `returned.serverURI` of the last successful connect.
    returned_uri: Option<CString>,
    /// Messages left unread by an earlier connection, handed out first by `receive`.
    backlog: VecDeque<Message>,
    /// Messages `receive` handed out and not yet acknowledged, by receiving thread and
    /// address of the `MQTTClient_message` given: the acknowledgement goes when the
    /// application frees that message, when that thread calls `receive` again (it has done
    /// with the message either way), or at disconnect, connect and destroy.
    taken: Vec<(std::thread::ThreadId, usize, Message)>,
}

impl State {
    /// Acknowledges what `receive` handed out: to the calling thread only, or all.
    fn release_taken(&mut self, only_this_thread: bool) {
        if self.taken.is_empty() {
            return;
        }
        let me = std::thread::current().id();
        self.taken.retain(|(t, addr, m)| {
            if only_this_thread && *t != me {
                return true;
            }
            let _ = forget_handed(*addr);
            // Fails only when the session or client has ended; the broker then still owns
            // the message.
            let _ = m.ack();
            false
        });
    }
}

/// Messages `MQTTClient_receive` handed out and not yet acknowledged: the address of the
/// `MQTTClient_message` -> the handle (`State::taken` has the message). Freeing the
/// message is the application's word that it has done with it.
static HANDED: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);
/// `HANDED`'s length, read without the lock (a message that needs no acknowledgement is
/// freed without taking it).
static HANDED_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn handed() -> MutexGuard<'static, Option<HashMap<usize, usize>>> {
    HANDED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the message at `addr` out of `HANDED`; its handle, if it was there.
fn forget_handed(addr: usize) -> Option<usize> {
    let mut g = handed();
    let map = g.as_mut()?;
    let key = map.remove(&addr)?;
    HANDED_COUNT.store(map.len(), Ordering::SeqCst);
    Some(key)
}

/// `MQTTClient_freeMessage` is about to free the message at `addr`: if `MQTTClient_receive`
/// handed it out and it is still unacknowledged, the acknowledgement goes now.
pub(crate) fn message_freed(addr: usize) {
    if HANDED_COUNT.load(Ordering::SeqCst) == 0 {
        return;
    }
    let Some(key) = forget_handed(addr) else {
        return;
    };
    let Some(h) = lookup(key as MQTTClient) else {
        return;
    };
    let m = {
        let mut st = h.state();
        match st.taken.iter().position(|(_, a, _)| *a == addr) {
            Some(i) => st.taken.remove(i).2,
            None => return,
        }
    };
    // As in `release_taken`: fails only when the session or client has ended.
    let _ = m.ack();
}

/// Tokens of QoS 1/2 publishes for `waitForCompletion` / `getPendingDeliveryTokens`.
#[derive(Default)]
struct Tokens {
    map: BTreeMap<c_int, (u64, DeliveryToken)>,
    /// Largest publish sequence number issued (the token base of the next connection).
    issued: u64,
    /// Messages restored from persistence at create, by token (their packet id, as in
    /// Paho); the Rust token once the first connection has restored them.
    restored: BTreeMap<c_int, Option<DeliveryToken>>,
}

struct Handle {
    /// The create arguments (shared with `store`).
    server_uri: Arc<str>,
    client_id: Arc<str>,
    v5: bool,
    /// DEFAULT or USER persistence: a QoS 1/2 publish must be on record when it returns.
    durable: bool,
    store: SharedStore,
    state: Mutex<State>,
    tokens: Mutex<Tokens>,
}

impl Handle {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self) -> Option<Arc<Client>> {
        self.state().client.clone()
    }

    fn connected_client(&self) -> Option<(Arc<Client>, Arc<Conn>, Duration)> {
        let st = self.state();
        match (&st.client, &st.conn) {
            (Some(c), Some(k)) if c.is_connected() => {
                Some((c.clone(), k.clone(), st.command_timeout))
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// create / destroy
// ---------------------------------------------------------------------------------------

unsafe fn create_impl(
    handle: *mut MQTTClient,
    server_uri: *const c_char,
    client_id: *const c_char,
    persistence_type: c_int,
    context: *mut c_void,
    options: *const MQTTClient_createOptions,
) -> Result<(), c_int> {
    if handle.is_null() || server_uri.is_null() || client_id.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    // SAFETY: non-NULL NUL-terminated strings per the C contract.
    let uri = unsafe { str_from_c(server_uri)? };
    // SAFETY: as above.
    let cid = unsafe { str_from_c(client_id)? };
    if cid.is_empty() && persistence_type == MQTTCLIENT_PERSISTENCE_DEFAULT {
        return Err(MQTTCLIENT_PERSISTENCE_ERROR);
    }
    if !known_scheme(uri) {
        return Err(MQTTCLIENT_BAD_PROTOCOL);
    }
    let version = if options.is_null() {
        MQTTVERSION_DEFAULT
    } else {
        // SAFETY: non-NULL createOptions of the declared version (C contract).
        let (o, _) = unsafe { copy_versioned(options)? };
        o.MQTTVersion
    };
    // SAFETY: the context is what the persistence type requires (C contract).
    let store = unsafe { store_from_c(persistence_type, context)? };
    let (cid_shared, uri_shared): (Arc<str>, Arc<str>) = (cid.into(), uri.into());
    let mut shared = SharedStore::new(store, cid_shared.clone(), uri_shared.clone());
    // Opened for the handle's life (as Paho opens at create and closes at destroy).
    shared
        .open(cid, uri)
        .map_err(|_| MQTTCLIENT_PERSISTENCE_ERROR)?;
    // In-flight records of the other MQTT version cannot be resent by this client: refused
    // here, as Paho does, instead of being skipped without a word.
    if !shared.version_ok(version >= MQTTVERSION_5) {
        return Err(MQTTCLIENT_PERSISTENCE_ERROR);
    }
    // Messages left in flight by an earlier run get tokens now, as in Paho: their packet
    // ids. Tokens of new publishes start above them.
    let mut tokens = Tokens::default();
    let family = super::persistence::family(version >= MQTTVERSION_5);
    for id in crate::persist::pending_packet_ids(&mut shared, family) {
        tokens.restored.insert(c_int::from(id), None);
        tokens.issued = tokens.issued.max(u64::from(id));
    }
    let h = Arc::new(Handle {
        server_uri: uri_shared,
        client_id: cid_shared,
        v5: version >= MQTTVERSION_5,
        durable: persistence_type != MQTTCLIENT_PERSISTENCE_NONE,
        store: shared,
        state: Mutex::new(State {
            client: None,
            conn: None,
            callbacks: Callbacks::default(),
            command_timeout: Duration::from_millis(DEFAULT_COMMAND_TIMEOUT_MS),
            connecting: false,
            returned_uri: None,
            backlog: VecDeque::new(),
            taken: Vec::new(),
        }),
        tokens: Mutex::new(tokens),
    });
    let key = REGISTRY.insert(h);
    // SAFETY: handle is non-NULL and writable (C contract).
    unsafe { handle.write(key) };
    Ok(())
}

/// Creates a client for `serverURI` (`tcp://`, `mqtt://`, `ssl://`, `mqtts://`, `ws://`,
/// `wss://`, or `host:port` meaning TCP) with client id `clientId`, and writes the new
/// handle to `*handle`. Nothing is connected yet.
///
/// Persistence: `MQTTCLIENT_PERSISTENCE_DEFAULT` keeps in-flight messages in files under
/// `<persistence_context or ".">/<clientId>-<serverURI without scheme, ':' -> '-'>/`
/// (Paho's layout); `MQTTCLIENT_PERSISTENCE_NONE` keeps them in memory for the handle's
/// life; `MQTTCLIENT_PERSISTENCE_USER` calls the eight functions of the
/// `MQTTClient_persistence` given as context (all required; it must outlive the handle).
/// The store is opened here and closed by `MQTTClient_destroy`.
///
/// Returns `MQTTCLIENT_SUCCESS`; `MQTTCLIENT_NULL_PARAMETER` for a NULL `handle`, URI or
/// client id; `MQTTCLIENT_BAD_UTF8_STRING` if the client id is not UTF-8;
/// `MQTTCLIENT_PERSISTENCE_ERROR` for an empty client id with DEFAULT persistence, an unknown
/// persistence type, an incomplete USER table, a store that cannot be opened, or a store
/// holding in-flight messages written under the other MQTT version (MQTT 5 records for an
/// MQTT 3 client or the reverse: they could not be resent, and are not skipped silently);
/// `MQTTCLIENT_BAD_PROTOCOL` for an unknown URI scheme. `*handle` is written only on success.
///
/// Ownership: the strings are copied; free the handle with `MQTTClient_destroy`. Any thread.
///
/// # Safety
/// `handle` is NULL or writable; the strings are NULL or NUL-terminated; the persistence
/// context is what the persistence type requires.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_create(
    handle: *mut MQTTClient,
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

/// As `MQTTClient_create`, with `MQTTClient_createOptions` (eyecatcher `MQCO`, version 0)
/// choosing the MQTT version: `MQTTVERSION_5` makes an MQTT 5 client, which must use the
/// `*5` functions (`connect5`, `subscribe5`, ...); the MQTT 3 functions then return
/// `MQTTCLIENT_WRONG_MQTT_VERSION`, and the reverse holds for other clients. NULL options
/// are allowed (as `MQTTClient_create`). A bad structure gives `MQTTCLIENT_BAD_STRUCTURE`;
/// other return codes as `MQTTClient_create`. Any thread.
///
/// # Safety
/// As `MQTTClient_create`; `options` is NULL or points to a readable structure.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_createWithOptions(
    handle: *mut MQTTClient,
    serverURI: *const c_char,
    clientId: *const c_char,
    persistence_type: c_int,
    persistence_context: *mut c_void,
    options: *mut MQTTClient_createOptions,
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

/// Frees a client: disconnects it if connected (without waiting for in-flight messages,
/// which stay in persistence), stops its threads and waits until they have finished (they
/// may then serve the process's next client for up to 1 s), closes its persistence store,
/// and sets `*handle` to NULL. A NULL pointer, a NULL handle or an already destroyed handle
/// is ignored.
///
/// Threads: any thread, including the client's own callbacks (then the callback thread is
/// detached instead of joined and finishes once the callback returns; no further callback
/// is called). Concurrent calls on the same handle from other threads finish normally or
/// return the "no such handle" code; they cannot crash.
///
/// # Safety
/// `handle` is NULL or points to a readable and writable `MQTTClient`.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_destroy(handle: *mut MQTTClient) {
    guard((), || {
        if handle.is_null() {
            return;
        }
        // SAFETY: non-NULL and readable (C contract).
        let h = unsafe { handle.read() };
        let Some(hd) = REGISTRY.remove(h) else {
            return;
        };
        // SAFETY: writable (C contract).
        unsafe { handle.write(ptr::null_mut()) };
        let (client, conn) = {
            let mut st = hd.state();
            st.backlog.clear();
            st.release_taken(false);
            (st.client.take(), st.conn.take())
        };
        if let Some(c) = &conn {
            c.quiet.store(true, Ordering::Release);
            c.signal_stop();
        }
        if let Some(c) = client {
            if c.is_connected() {
                let _ = c.disconnect_with(Disconnect::default(), Duration::ZERO);
            }
            drop(c); // joins the client's threads when this is the last reference
        }
        hd.tokens().map.clear();
        let mut store = hd.store.clone();
        if let Err(e) = store.close() {
            super::trace::trace(
                MQTTCLIENT_TRACE_ERROR,
                &format!(
                    "mqttsync: closing persistence failed: {}",
                    Error::from(e).report()
                ),
            );
        }
    })
}

// ---------------------------------------------------------------------------------------
// callbacks and settings
// ---------------------------------------------------------------------------------------

fn busy(st: &State) -> bool {
    st.connecting || st.client.as_ref().is_some_and(|c| c.is_connected())
}

/// Puts the client in callback mode: incoming messages go to `ma` (mandatory) instead of
/// `MQTTClient_receive`; `cl` (optional) is told when the connection is lost, with a reason
/// text (owned by the library, valid during the call; Paho passes NULL); `dc` (optional) is
/// told when a QoS 1/2 publish completes (never for QoS 0). `context` is passed to all three.
///
/// `ma(context, topicName, topicLen, message)`: `topicName` (NUL-terminated; `topicLen` is 0
/// unless the topic holds NUL characters) and `message` are allocated by the library; return
/// 1 when consumed (then free them with `MQTTClient_free` and `MQTTClient_freeMessage`), or
/// 0 to have the same message delivered again shortly (the library keeps and frees its
/// copies; retries back off from 10 ms to 1 s and end at disconnect or destroy; later
/// messages wait behind it). A QoS 1/2 message is acknowledged to the server (PUBACK /
/// PUBREC) only after `ma` returned 1: a message `ma` never accepted stays the server's and
/// comes again in the resumed session. `connectionLost` is not called after `MQTTClient_disconnect`,
/// nor after an MQTT 5 server DISCONNECT reported through `MQTTClient_setDisconnected`.
///
/// Callbacks run on the client's own dispatch thread, one at a time in order; they may call
/// any function of this API, including `publish`, `subscribe`, `waitForCompletion`,
/// `connect` (e.g. from `cl`) and `destroy`.
///
/// Returns `MQTTCLIENT_SUCCESS`; `MQTTCLIENT_FAILURE` for an unknown handle, a NULL `ma`, or
/// while connected or connecting (set callbacks before `MQTTClient_connect`). Any thread.
///
/// # Safety
/// The functions are NULL or valid to call, with `context`, until the handle is destroyed
/// or the callbacks are replaced.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_setCallbacks(
    handle: MQTTClient,
    context: *mut c_void,
    cl: MQTTClient_connectionLost,
    ma: MQTTClient_messageArrived,
    dc: MQTTClient_deliveryComplete,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
        let mut st = h.state();
        if ma.is_none() || busy(&st) {
            return Err(MQTTCLIENT_FAILURE);
        }
        st.callbacks.ctx = SendPtr(context);
        st.callbacks.lost = cl;
        st.callbacks.arrived = ma;
        st.callbacks.complete = dc;
        Ok(())
    })
}

/// Sets the MQTT 5 callback called when the server sends DISCONNECT:
/// `co(context, properties, reasonCode)`; the properties are owned by the library and valid
/// during the call. When it is set, `connectionLost` is not called for that loss. Fires only
/// in callback mode (after `MQTTClient_setCallbacks`), on the client's dispatch thread.
/// NULL removes it.
///
/// Returns `MQTTCLIENT_SUCCESS`, or `MQTTCLIENT_FAILURE` for an unknown handle or while
/// connected or connecting. Any thread.
///
/// # Safety
/// `co` is NULL or valid to call, with `context`, until the handle is destroyed or the
/// callback is replaced.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_setDisconnected(
    handle: MQTTClient,
    context: *mut c_void,
    co: MQTTClient_disconnected,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
        let mut st = h.state();
        if busy(&st) {
            return Err(MQTTCLIENT_FAILURE);
        }
        st.callbacks.disc_ctx = SendPtr(context);
        st.callbacks.disconnected = co;
        Ok(())
    })
}

/// Sets the MQTT 5 publish-completion callback:
/// `co(context, token, packet_type, properties, reasonCode)` with the packet that ended the
/// flow (PUBACK 4, PUBREC 5 when the server refused a QoS 2 message, PUBCOMP 7), its reason
/// code and properties (owned by the library, valid during the call). Called after
/// `deliveryComplete`, and also for refusals (reason code >= 0x80, where `deliveryComplete`
/// is not called). Fires only in callback mode, on the client's dispatch thread. NULL
/// removes it.
///
/// Returns `MQTTCLIENT_SUCCESS`, or `MQTTCLIENT_FAILURE` for an unknown handle or while
/// connected or connecting. Any thread.
///
/// # Safety
/// `co` is NULL or valid to call, with `context`, until the handle is destroyed or the
/// callback is replaced.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_setPublished(
    handle: MQTTClient,
    context: *mut c_void,
    co: MQTTClient_published,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
        let mut st = h.state();
        if busy(&st) {
            return Err(MQTTCLIENT_FAILURE);
        }
        st.callbacks.pub_ctx = SendPtr(context);
        st.callbacks.published = co;
        Ok(())
    })
}

/// Sets the timeout of subscribe and unsubscribe calls (waiting for SUBACK / UNSUBACK) and
/// of publish calls waiting for room in a full queue. Default 10000 ms.
///
/// Returns `MQTTCLIENT_SUCCESS`, or `MQTTCLIENT_FAILURE` for an unknown handle or a value
/// below 5000 ms (as Paho). Takes effect for calls made afterwards, even while connected
/// (publish queue waits: from the next connect). Any thread.
#[no_mangle]
pub extern "C" fn MQTTClient_setCommandTimeout(handle: MQTTClient, milliSeconds: c_ulong) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
        if milliSeconds < 5000 {
            return Err(MQTTCLIENT_FAILURE);
        }
        h.state().command_timeout = ms(milliSeconds);
        Ok(())
    })
}

/// Returns 1 if the client is connected, 0 otherwise (also for an unknown handle). Any
/// thread.
#[no_mangle]
pub extern "C" fn MQTTClient_isConnected(handle: MQTTClient) -> c_int {
    guard(0, || {
        lookup(handle)
            .and_then(|h| h.client())
            .map_or(0, |c| c_int::from(c.is_connected()))
    })
}

/// Waits about 100 ms and returns. Network work (keepalive, acknowledgements, reading)
/// runs on each client's own I/O thread, so nothing needs to be driven from here; the
/// function exists for programs written for Paho. Any thread.
#[no_mangle]
pub extern "C" fn MQTTClient_yield() {
    guard((), || std::thread::sleep(Duration::from_millis(100)))
}

// ---------------------------------------------------------------------------------------
// connect
// ---------------------------------------------------------------------------------------

/// Everything read from the C connect options, owned.
struct ConnParams {
    servers: Vec<String>,
    client_id: String,
    keep_alive: Duration,
    clean: bool,
    version: c_int,
    username: Option<String>,
    password: Option<Vec<u8>>,
    will: Option<Message>,
    props: Properties,
    connect_timeout: Duration,
    command_timeout: Duration,
    max_inflight: u16,
    tls: Option<CTls>,
    web: Option<Box<WebParams>>,
}

/// Why a connect failed: a return code, or a refused CONNACK with its properties.
enum ConnectFail {
    Code(c_int),
    Refused(u8, Properties),
}

impl From<c_int> for ConnectFail {
    fn from(rc: c_int) -> Self {
        ConnectFail::Code(rc)
    }
}

/// Validates and copies the connect options, in Paho's order of checks.
unsafe fn read_connect_options(
    h: &Handle,
    o: &MQTTClient_connectOptions,
    v: c_int,
    conn_props: *const MQTTProperties,
    will_props: *const MQTTProperties,
) -> Result<ConnParams, c_int> {
    let servers: Vec<String> = if v >= 2 && o.serverURIcount > 0 {
        if o.serverURIs.is_null() {
            return Err(MQTTCLIENT_NULL_PARAMETER);
        }
        (0..o.serverURIcount as usize)
            .map(|i| {
                // SAFETY: serverURIs holds serverURIcount string pointers (C contract).
                let p = unsafe { *o.serverURIs.add(i) };
                // SAFETY: NULL or a NUL-terminated string.
                unsafe { str_from_c(p) }.map(str::to_owned)
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![h.server_uri.to_string()]
    };
    for s in &servers {
        if !known_scheme(s) {
            return Err(MQTTCLIENT_BAD_PROTOCOL);
        }
    }
    let ssl = if v >= 1 { o.ssl } else { ptr::null_mut() };
    let needs_tls = servers
        .iter()
        .any(|s| ServerUri::parse(s).is_ok_and(|u| u.scheme.is_tls()));
    if needs_tls && ssl.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    let will = if o.will.is_null() {
        None
    } else {
        // SAFETY: non-NULL will options of their declared version, valid property list
        // (C contract).
        Some(unsafe { will_from_c(o.will, will_props)? })
    };
    let tls = if ssl.is_null() {
        None
    } else {
        // SAFETY: non-NULL SSL options (C contract).
        Some(unsafe { tls_from_c(ssl)? })
    };
    let username = opt_str(o.username)?;
    let password_str = opt_str(o.password)?;
    let version = if v >= 3 {
        o.MQTTVersion
    } else {
        MQTTVERSION_DEFAULT
    };
    if version != MQTTVERSION_DEFAULT && !(MQTTVERSION_3_1..=MQTTVERSION_5).contains(&version) {
        return Err(MQTTCLIENT_BAD_MQTT_VERSION);
    }
    let cleanstart = v >= 6 && o.cleanstart != 0;
    if version >= MQTTVERSION_5 {
        if o.cleansession != 0 {
            return Err(MQTTCLIENT_BAD_MQTT_OPTION);
        }
    } else if cleanstart {
        return Err(MQTTCLIENT_BAD_MQTT_OPTION);
    }
    if h.v5 != (version >= MQTTVERSION_5) {
        return Err(MQTTCLIENT_WRONG_MQTT_VERSION);
    }
    let password = match password_str {
        Some(p) => Some(p.into_bytes()),
        None if v >= 5 && !o.binarypwd.data.is_null() => {
            // SAFETY: binarypwd.data has binarypwd.len readable bytes (C contract).
            Some(unsafe { bytes_from_c(o.binarypwd.data, o.binarypwd.len)? }.to_vec())
        }
        None => None,
    };
    let mut max_inflight: u16 = if o.reliable != 0 { 1 } else { 20 };
    if v >= 6 && o.maxInflightMessages > 0 {
        max_inflight = u16::try_from(o.maxInflightMessages).unwrap_or(u16::MAX);
    }
    // SAFETY: the fields of options of version `v` (C contract).
    let web = unsafe { WebParams::from_c(v, o.httpHeaders, o.httpProxy, o.httpsProxy)? };
    let props = if conn_props.is_null() {
        Properties::new()
    } else {
        // SAFETY: a valid property list (C contract).
        unsafe { properties_from_c(conn_props)? }
    };
    let connect_timeout = if o.connectTimeout > 0 {
        Duration::from_secs(o.connectTimeout as u64)
    } else {
        Duration::from_secs(30)
    };
    Ok(ConnParams {
        servers,
        client_id: String::new(),
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
        connect_timeout,
        command_timeout: h.state().command_timeout,
        max_inflight,
        tls,
        web,
    })
}

fn build_options(
    p: &ConnParams,
    version: ProtocolVersion,
    conn: &Arc<Conn>,
    store: &SharedStore,
) -> crate::ConnectOptions {
    let mut o = crate::ConnectOptions::new(&super::connect_opts::paho_server_uri(&p.servers[0]));
    for s in &p.servers[1..] {
        o = o.server(&super::connect_opts::paho_server_uri(s));
    }
    o = o
        .client_id(p.client_id.clone())
        .version(version)
        .clean_start(p.clean)
        .keep_alive(p.keep_alive)
        .connect_timeout(p.connect_timeout)
        .request_timeout(p.command_timeout)
        .max_inflight(p.max_inflight)
        .proxy_from_env(true)
        .manual_acks(true)
        .persistence(Box::new(store.clone()));
    if let Some(d) = super::connect_opts::spin_wait() {
        o = o.spin_wait(d);
    }
    if let Some(u) = &p.username {
        o = o.credentials(u.clone(), p.password.as_deref());
    } else if let Some(pw) = &p.password {
        // MQTT 5 allows a password without a user name; the Rust API takes both together.
        o = o.credentials(String::new(), Some(pw));
    }
    if let Some(w) = &p.will {
        o = o.will(w.clone());
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
    if conn.cbs.arrived.is_some() {
        let c = conn.clone();
        o = o.on_message(move |m| c.message_arrived(m));
        let c = conn.clone();
        o = o.on_connection_lost(move |e| c.connection_lost(e));
        // Messages an earlier connection left for this callback go first, from the
        // callbacks' thread; with none, no Connected work wakes that thread at each connect.
        if !conn
            .backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            let c = conn.clone();
            o = o.on_connected(move |_| c.connected());
        }
        if conn.cbs.complete.is_some() || conn.cbs.published.is_some() {
            let c = conn.clone();
            o = o.on_delivered(move |ev| c.delivered(ev));
        }
        if conn.cbs.disconnected.is_some() {
            let c = conn.clone();
            o = o.on_server_disconnect(move |d| c.server_disconnect(d));
        }
    }
    o
}

/// Clears the `connecting` flag when the connect ends, however it ends.
struct ConnectingGuard<'a>(&'a Handle);

impl Drop for ConnectingGuard<'_> {
    fn drop(&mut self) {
        self.0.state().connecting = false;
    }
}

unsafe fn connect_impl(
    handle: MQTTClient,
    options: *mut MQTTClient_connectOptions,
    v5call: bool,
    conn_props: *const MQTTProperties,
    will_props: *const MQTTProperties,
) -> Result<ConnectInfo, ConnectFail> {
    let h = lookup(handle).ok_or(MQTTCLIENT_NULL_PARAMETER)?;
    if h.v5 != v5call {
        return Err(MQTTCLIENT_WRONG_MQTT_VERSION.into());
    }
    // SAFETY: NULL or connect options of their declared version (C contract).
    let (o, v) = unsafe { copy_versioned(options.cast_const())? };
    // SAFETY: the pointers inside the options are valid per the C contract.
    let mut params = unsafe { read_connect_options(&h, &o, v, conn_props, will_props)? };
    params.client_id = h.client_id.to_string();
    let ssl_error_cb = params.tls.as_ref().and_then(|t| t.error_cb);

    // Take the previous connection down (outside the lock) before the store is reused.
    let (old, old_conn, cbs) = {
        let mut st = h.state();
        if st.connecting {
            return Err(MQTTCLIENT_FAILURE.into());
        }
        st.connecting = true;
        st.release_taken(false);
        (st.client.take(), st.conn.take(), st.callbacks)
    };
    let _reset = ConnectingGuard(&h);
    if let Some(c) = &old_conn {
        c.signal_stop();
    }
    if let Some(c) = old {
        if c.is_connected() {
            let _ = c.disconnect_with(Disconnect::default(), Duration::ZERO);
        }
        // Unread QoS 1/2 messages were never acknowledged: the broker sends them again in
        // the resumed session (keeping them here too would deliver them twice). QoS 0
        // messages exist only here.
        let leftover: Vec<Message> = std::iter::from_fn(|| c.messages().try_recv().ok().flatten())
            .filter(|m| !m.needs_ack())
            .collect();
        h.state().backlog.extend(leftover);
        drop(c);
    }
    if params.clean {
        let mut s = h.store.clone();
        if let Err(e) = s.clear() {
            super::trace::trace(
                MQTTCLIENT_TRACE_ERROR,
                &format!(
                    "mqttsync: clearing persistence for a clean session failed: {}",
                    Error::from(e).report()
                ),
            );
            return Err(MQTTCLIENT_PERSISTENCE_ERROR.into());
        }
        h.state().backlog.clear();
    }
    let (base, restored) = {
        let mut t = h.tokens();
        t.map.clear();
        if params.clean {
            t.restored.clear();
        }
        // Restored messages keep their tokens through the first connection only (later
        // connections forget earlier tokens, as for every other message).
        let first = t.restored.values().all(Option::is_none);
        if !first {
            t.restored.clear();
        }
        (t.issued, t.restored.len() as u64)
    };
    let conn = Conn::new(cbs, base, restored);
    if cbs.arrived.is_some() {
        // Callbacks set after an earlier connection took messages in: they get them.
        let old = std::mem::take(&mut h.state().backlog);
        conn.backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(old);
    }
    let versions: &[ProtocolVersion] = match params.version {
        MQTTVERSION_DEFAULT => &[ProtocolVersion::V311, ProtocolVersion::V31],
        MQTTVERSION_3_1 => &[ProtocolVersion::V31],
        MQTTVERSION_3_1_1 => &[ProtocolVersion::V311],
        _ => &[ProtocolVersion::V5],
    };
    let mut last = ConnectFail::Code(MQTTCLIENT_FAILURE);
    for (i, &ver) in versions.iter().enumerate() {
        let opts = build_options(&params, ver, &conn, &h.store);
        match Client::connect(opts) {
            Ok(client) => {
                let info = client.connect_info().unwrap_or(ConnectInfo {
                    session_present: false,
                    server: params.servers[0].clone(),
                    version: ver,
                    properties: Properties::new(),
                });
                if restored > 0 {
                    if let Ok(pending) = client.pending_tokens() {
                        let mut live: HashMap<c_int, DeliveryToken> = pending
                            .into_iter()
                            .filter(|(_, tok)| tok.id() <= restored)
                            .map(|(pkid, tok)| (c_int::from(pkid), tok))
                            .collect();
                        // A restored message missing from the list was resent and
                        // acknowledged already (the I/O thread may be that quick): it is
                        // no longer pending.
                        let mut t = h.tokens();
                        t.restored.retain(|k, v| match live.remove(k) {
                            Some(tok) => {
                                *v = Some(tok);
                                true
                            }
                            None => false,
                        });
                    }
                }
                let mut st = h.state();
                st.client = Some(Arc::new(client));
                st.conn = Some(conn);
                return Ok(info);
            }
            Err(Error::ConnectionRefused {
                code, properties, ..
            }) => {
                // MQTTVERSION_DEFAULT: 3.1.1 refused as unacceptable -> try 3.1.
                last = ConnectFail::Refused(code, properties);
                if !(code == 1 && i + 1 < versions.len()) {
                    break;
                }
            }
            Err(e) => {
                let text = format!("mqttsync: connect failed: {}", e.report());
                super::trace::trace(MQTTCLIENT_TRACE_ERROR, &text);
                if let (Error::Tls { .. }, Some(cb)) = (&e, ssl_error_cb) {
                    cb.report(&text);
                }
                last = ConnectFail::Code(match e {
                    Error::Persistence(_) => MQTTCLIENT_PERSISTENCE_ERROR,
                    _ => MQTTCLIENT_FAILURE,
                });
                break;
            }
        }
    }
    // Not connected: messages waiting for the callback stay for the next attempt.
    let left = std::mem::take(&mut *conn.backlog.lock().unwrap_or_else(|e| e.into_inner()));
    if !left.is_empty() {
        h.state().backlog.extend(left);
    }
    Err(last)
}

/// Writes `returned` (connect options version 4 and later) after a successful connect.
unsafe fn write_returned(
    h: MQTTClient,
    options: *mut MQTTClient_connectOptions,
    info: &ConnectInfo,
) {
    // SAFETY: options was validated by connect_impl (non-NULL, MQTC, version 0-8).
    let v = unsafe { (*options).struct_version };
    if v < 4 {
        return;
    }
    let Some(hd) = lookup(h) else {
        return;
    };
    let uri = CString::new(strip_scheme(&info.server)).unwrap_or_default();
    let mut st = hd.state();
    let p = uri.as_ptr();
    st.returned_uri = Some(uri);
    let level = c_int::from(info.version.level());
    // SAFETY: a version >= 4 structure has `returned`; field-wise writes through the
    // caller's pointer, which stays valid for the call. The URI string lives in the handle
    // until the next connect or destroy.
    unsafe {
        let r = addr_of_mut!((*options).returned);
        addr_of_mut!((*r).serverURI).write(p);
        addr_of_mut!((*r).MQTTVersion).write(level);
        if info.version == ProtocolVersion::V311 {
            addr_of_mut!((*r).sessionPresent).write(c_int::from(info.session_present));
        }
    }
}

/// Connects an MQTT 3 client (created without `MQTTVERSION_5`) to the server given at
/// create, or to `options->serverURIs` in order (struct version 2+). Blocks until connected
/// or failed; each server attempt (DNS, TCP, TLS, proxy, WebSocket, CONNACK) is bounded by
/// `connectTimeout` seconds (<= 0 means 30).
///
/// Options honoured by struct version: 0 keepAliveInterval, cleansession, reliable (1 = one
/// message in flight), will (v0 string or v1 binary payload), username, password,
/// connectTimeout; 1 ssl; 2 serverURIs; 3 MQTTVersion (`MQTTVERSION_DEFAULT` tries 3.1.1,
/// then 3.1 if refused with code 1); 4 `returned` (filled on success: serverURI without
/// scheme, valid until the next connect or destroy; MQTTVersion; sessionPresent for 3.1.1
/// only); 5 binarypwd (used when password is NULL); 6 maxInflightMessages; 7 httpHeaders;
/// 8 httpProxy, httpsProxy (when unset, `http_proxy` / `https_proxy` / `no_proxy` from the
/// environment are used). Messages found in persistence are resent after CONNACK; a clean
/// session first empties the persistence store (as Paho). Connecting while connected first
/// disconnects.
///
/// TLS (`ssl`, used for `ssl://`, `mqtts://` and `wss://` servers; ignored for the others):
/// trustStore (PEM CA file), CApath (directory of CA certificates), keyStore, privateKey
/// and privateKeyPassword (client certificate for mutual TLS; PKCS#8, PKCS#1 or SEC1 keys,
/// encrypted or not), sslVersion (an enforced minimum; `MQTT_SSL_VERSION_DEFAULT` is the
/// TLS library's minimum), disableDefaultTrustStore, protos (ALPN, wire format).
/// - Verification: `enableServerCertAuth = 1` (the initializer's value) verifies the
///   certificate chain AND the host name, whatever `verify` says. Paho checks the host name
///   only when `verify = 1`; mqttsync never verifies less than a certificate check implies,
///   so `verify` has no effect. `enableServerCertAuth = 0` turns off both checks (the
///   connection is then encrypted but not authenticated).
/// - `ssl_error_cb` (struct version 3+) is called with `ssl_error_context`, on the thread
///   that called connect, with a NUL-terminated text saying why the TLS failure ended the
///   connect (unknown CA, host name mismatch, expired certificate, refused client
///   certificate, unusable key file...) followed by OpenSSL's short reason in parentheses:
///   once per connect, for the last server tried. The text is the library's, valid
///   during the call only.
/// - `enabledCipherSuites` (NULL or empty: the TLS library's defaults) is OpenSSL's cipher
///   list, as in Paho; TLS 1.3 suite names in it (`TLS_AES_256_GCM_SHA384`...) also
///   restrict TLS 1.3, which Paho's `SSL_CTX_set_cipher_list` leaves alone. A list OpenSSL
///   rejects, or one the server shares nothing with, fails the connect with
///   `MQTTCLIENT_FAILURE` and a text to `ssl_error_cb`.
/// - `ssl_psk_cb` (struct version 4+) enables TLS-PSK: it is called during the handshake on
///   the thread calling connect, with `ssl_psk_context` (see `MQTTClient_SSLOptions`); the
///   PSK cipher suites are offered from OpenSSL's default list unless `enabledCipherSuites`
///   says otherwise.
/// - Cipher lists and TLS-PSK need OpenSSL, used on Linux; on other platforms a connect
///   with either set fails with `MQTTCLIENT_FAILURE` (reason to `ssl_error_cb` and the
///   trace) instead of connecting with other settings than asked.
///
/// Returns `MQTTCLIENT_SUCCESS`; 1-5 when the server refused the connection (CONNACK code);
/// `MQTTCLIENT_NULL_PARAMETER` for NULL options, an unknown handle, a TLS URI without `ssl`,
/// a will without topic; `MQTTCLIENT_BAD_STRUCTURE` for a wrong eyecatcher or version of
/// any structure; `MQTTCLIENT_BAD_QOS` (will); `MQTTCLIENT_0_LEN_WILL_TOPIC`;
/// `MQTTCLIENT_BAD_UTF8_STRING`; `MQTTCLIENT_BAD_MQTT_VERSION`;
/// `MQTTCLIENT_BAD_MQTT_OPTION` (cleanstart with MQTT 3); `MQTTCLIENT_WRONG_MQTT_VERSION` on
/// an MQTT 5 client or with MQTTVersion 5; `MQTTCLIENT_PERSISTENCE_ERROR`;
/// `MQTTCLIENT_FAILURE` for network failures and timeouts; `MQTTCLIENT_FAILURE` as well
/// when another connect of this handle is under way.
///
/// Ownership: the options stay the caller's; only `returned` is written. Any thread,
/// including the client's own callbacks (e.g. reconnecting from `connectionLost`).
///
/// # Safety
/// `options` is NULL or points to connect options of the version it declares, whose
/// pointers are valid; `returned` is writable for version 4+.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_connect(
    handle: MQTTClient,
    options: *mut MQTTClient_connectOptions,
) -> c_int {
    guard_rc(|| {
        // SAFETY: forwarded C contract.
        match unsafe { connect_impl(handle, options, false, ptr::null(), ptr::null()) } {
            Ok(info) => {
                // SAFETY: options validated by connect_impl.
                unsafe { write_returned(handle, options, &info) };
                Ok(())
            }
            Err(ConnectFail::Code(rc)) => Err(rc),
            Err(ConnectFail::Refused(code, _)) => Err(c_int::from(code)),
        }
    })
}

/// Connects an MQTT 5 client (created with `MQTTVERSION_5`): as `MQTTClient_connect`, with
/// CONNECT properties `connectProperties` and will properties `willProperties` (either may
/// be NULL). The options must say `MQTTVersion = MQTTVERSION_5` and `cleansession = 0`
/// (use `cleanstart`; `MQTTClient_connectOptions_initializer5` does both).
///
/// Returns an `MQTTResponse`: on success reasonCode 0 and the CONNACK properties; when
/// refused, the CONNACK reason code (>= 0x80) and its properties; otherwise reasonCode is
/// one of the negative codes of `MQTTClient_connect` (`MQTTCLIENT_WRONG_MQTT_VERSION` on an
/// MQTT 3 client). Free it with `MQTTResponse_free`. Threads as `MQTTClient_connect`.
///
/// # Safety
/// As `MQTTClient_connect`; the property pointers are NULL or valid property lists.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_connect5(
    handle: MQTTClient,
    options: *mut MQTTClient_connectOptions,
    connectProperties: *mut MQTTProperties,
    willProperties: *mut MQTTProperties,
) -> MQTTResponse {
    guard(response_error(MQTTCLIENT_FAILURE), || {
        // SAFETY: forwarded C contract.
        match unsafe { connect_impl(handle, options, true, connectProperties, willProperties) } {
            Ok(info) => {
                // SAFETY: options validated by connect_impl.
                unsafe { write_returned(handle, options, &info) };
                response_to_c(0, &[], Some(&info.properties)).unwrap_or_else(response_error)
            }
            Err(ConnectFail::Code(rc)) => response_error(rc),
            Err(ConnectFail::Refused(code, props)) => {
                response_to_c(code, &[], Some(&props)).unwrap_or_else(response_error)
            }
        }
    })
}

// ---------------------------------------------------------------------------------------
// disconnect
// ---------------------------------------------------------------------------------------

fn disconnect_impl(handle: MQTTClient, timeout: c_int, packet: Disconnect) -> Result<(), c_int> {
    let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
    let (client, conn) = {
        let mut st = h.state();
        st.release_taken(false);
        (st.client.clone(), st.conn.clone())
    };
    if let Some(c) = &conn {
        c.signal_stop();
    }
    let Some(client) = client else {
        return Ok(());
    };
    if !client.is_connected() {
        return Ok(());
    }
    let t = Duration::from_millis(timeout.max(0) as u64);
    match client.disconnect_with(packet, t) {
        Ok(()) | Err(Error::Closed) | Err(Error::NotConnected) => Ok(()),
        Err(e) => Err(error_code(&e)),
    }
}

/// Disconnects: waits up to `timeout` ms for in-flight QoS 1/2 messages to complete, sends
/// DISCONNECT and closes the connection. Messages still in flight stay in persistence and
/// are resent by the next `MQTTClient_connect` with `cleansession = 0`. `connectionLost` is
/// not called. A redelivery of a message refused by `messageArrived` ends here.
///
/// Returns `MQTTCLIENT_SUCCESS` (also when already disconnected), or `MQTTCLIENT_FAILURE`
/// for an unknown handle. Any thread, including callbacks.
#[no_mangle]
pub extern "C" fn MQTTClient_disconnect(handle: MQTTClient, timeout: c_int) -> c_int {
    guard_rc(|| disconnect_impl(handle, timeout, Disconnect::default()))
}

/// MQTT 5 disconnect: as `MQTTClient_disconnect`, sending `reason` and `props` (may be
/// NULL; copied) in the DISCONNECT packet. Reason 0x04 (disconnect with will message) makes
/// the server publish the will. Returns as `MQTTClient_disconnect`, plus
/// `MQTTCLIENT_BAD_STRUCTURE` for unusable properties. Any thread.
///
/// # Safety
/// `props` is NULL or a valid property list.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_disconnect5(
    handle: MQTTClient,
    timeout: c_int,
    reason: MQTTReasonCodes,
    props: *mut MQTTProperties,
) -> c_int {
    guard_rc(|| {
        let properties = if props.is_null() {
            Properties::new()
        } else {
            // SAFETY: valid property list (C contract).
            unsafe { properties_from_c(props)? }
        };
        let reason = u8::try_from(reason).map_err(|_| MQTTCLIENT_FAILURE)?;
        disconnect_impl(handle, timeout, Disconnect { reason, properties })
    })
}

// ---------------------------------------------------------------------------------------
// subscribe / unsubscribe
// ---------------------------------------------------------------------------------------

/// A topic given by C: NULL and invalid UTF-8 both give `MQTTCLIENT_BAD_UTF8_STRING` (Paho
/// checks UTF-8 first).
unsafe fn topic_from_c<'a>(p: *const c_char) -> Result<&'a str, c_int> {
    // SAFETY: NULL or NUL-terminated (C contract).
    unsafe { str_from_c(p) }.map_err(|_| MQTTCLIENT_BAD_UTF8_STRING)
}

fn check_version(h: &Handle, v5call: bool) -> Result<(), c_int> {
    if h.v5 != v5call {
        Err(MQTTCLIENT_WRONG_MQTT_VERSION)
    } else {
        Ok(())
    }
}

/// A handle that passed [`checked_client`]: the handle, its connected client, the
/// connection's callback state and the command timeout.
type Checked = (Arc<Handle>, Arc<Client>, Arc<Conn>, Duration);

/// The checks every network call starts with, in Paho's order (measured against Paho
/// 1.3.11): unknown handle `MQTTCLIENT_FAILURE`; for the MQTT 3 functions (except
/// unsubscribe) the version `MQTTCLIENT_WRONG_MQTT_VERSION`; not connected
/// `MQTTCLIENT_DISCONNECTED`; then the version for the MQTT 5 functions and unsubscribe.
/// Argument checks (UTF-8, QoS) come after these.
fn checked_client(handle: MQTTClient, v5call: bool, version_first: bool) -> Result<Checked, c_int> {
    let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
    if version_first {
        check_version(&h, v5call)?;
    }
    let (client, conn, timeout) = h.connected_client().ok_or(MQTTCLIENT_DISCONNECTED)?;
    check_version(&h, v5call)?;
    Ok((h, client, conn, timeout))
}

unsafe fn subscribe_impl(
    handle: MQTTClient,
    count: c_int,
    topics: *const *const c_char,
    qos: *const c_int,
    opts: *const MQTTSubscribe_options,
    props: *const MQTTProperties,
    v5call: bool,
) -> Result<crate::SubAck, c_int> {
    let (_h, client, _, timeout) = checked_client(handle, v5call, !v5call)?;
    if count <= 0 {
        return Err(MQTTCLIENT_FAILURE);
    }
    if topics.is_null() || qos.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    let mut filters = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        // SAFETY: `count` topic pointers and QoS values (C contract).
        let (t, q) = unsafe { (*topics.add(i), *qos.add(i)) };
        // SAFETY: NULL or NUL-terminated.
        let topic = unsafe { topic_from_c(t)? };
        let q = QoS::from_u8(u8::try_from(q).map_err(|_| MQTTCLIENT_BAD_QOS)?)
            .ok_or(MQTTCLIENT_BAD_QOS)?;
        let mut o = SubscribeOptions {
            qos: q,
            ..Default::default()
        };
        if !opts.is_null() {
            // SAFETY: `count` subscribe option structures (C contract).
            let (so, _) = unsafe { copy_versioned(opts.add(i))? };
            o.no_local = so.noLocal != 0;
            o.retain_as_published = so.retainAsPublished != 0;
            o.retain_handling = match so.retainHandling {
                1 => RetainHandling::SendAtSubscribeIfNew,
                2 => RetainHandling::DoNotSend,
                _ => RetainHandling::SendAtSubscribe,
            };
        }
        filters.push(SubscribeFilter {
            filter: topic.to_owned(),
            options: o,
        });
    }
    let properties = if props.is_null() {
        Properties::new()
    } else {
        // SAFETY: valid property list (C contract).
        unsafe { properties_from_c(props)? }
    };
    client
        .subscribe_many_timeout(filters, properties, timeout)
        .map_err(|e| match e {
            Error::ConnectionLost(_) => MQTTCLIENT_FAILURE,
            e => error_code(&e),
        })
}

/// Subscribes to `topic` (wildcards allowed) at `qos` and waits for the SUBACK, at most the
/// command timeout (`MQTTClient_setCommandTimeout`, default 10 s).
///
/// Returns `MQTTCLIENT_SUCCESS`; `MQTT_BAD_SUBSCRIBE` (0x80) if the server refused;
/// `MQTTCLIENT_BAD_UTF8_STRING` for a NULL, non-UTF-8 or invalid filter;
/// `MQTTCLIENT_BAD_QOS`; `MQTTCLIENT_DISCONNECTED`; `MQTTCLIENT_WRONG_MQTT_VERSION` on an
/// MQTT 5 client; `MQTTCLIENT_FAILURE` for an unknown handle, a timeout or a connection lost
/// during the wait. Any thread, including callbacks.
///
/// # Safety
/// `topic` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_subscribe(
    handle: MQTTClient,
    topic: *const c_char,
    qos: c_int,
) -> c_int {
    guard_rc(|| {
        let topics = [topic];
        // SAFETY: one topic and one QoS on the stack.
        let ack = unsafe {
            subscribe_impl(
                handle,
                1,
                topics.as_ptr(),
                &qos,
                ptr::null(),
                ptr::null(),
                false,
            )?
        };
        match ack.return_codes.first() {
            Some(&c) if c < 0x80 => Ok(()),
            _ => Err(MQTT_BAD_SUBSCRIBE),
        }
    })
}

/// Subscribes to `count` filters with their QoS, waiting for the SUBACK (command timeout).
/// On success `qos[i]` is overwritten with what the server granted (0-2, or 0x80 for a
/// refused filter), as Paho does. Returns as `MQTTClient_subscribe` (never 0x80; look at
/// `qos[]`); `MQTTCLIENT_NULL_PARAMETER` for NULL arrays; `MQTTCLIENT_FAILURE` for
/// `count <= 0`. Any thread.
///
/// # Safety
/// `topic` and `qos` hold `count` entries; `qos` is writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_subscribeMany(
    handle: MQTTClient,
    count: c_int,
    topic: *const *mut c_char,
    qos: *mut c_int,
) -> c_int {
    guard_rc(|| {
        // SAFETY: forwarded C contract.
        let ack = unsafe {
            subscribe_impl(
                handle,
                count,
                topic.cast(),
                qos,
                ptr::null(),
                ptr::null(),
                false,
            )?
        };
        for (i, &c) in ack.return_codes.iter().take(count as usize).enumerate() {
            // SAFETY: qos has `count` writable entries (C contract).
            unsafe { *qos.add(i) = c_int::from(c) };
        }
        Ok(())
    })
}

fn sub_response(ack: &crate::SubAck, count: usize) -> MQTTResponse {
    let codes: &[u8] = if count > 1 { &ack.return_codes } else { &[] };
    let first = ack.return_codes.first().copied().unwrap_or(0x80);
    response_to_c(first, codes, Some(&ack.properties)).unwrap_or_else(response_error)
}

/// MQTT 5 subscribe to one filter with subscription options `opts` (eyecatcher `MQSO`, may
/// be NULL for defaults) and SUBSCRIBE properties `props` (may be NULL). Waits for the
/// SUBACK (command timeout).
///
/// Returns an `MQTTResponse` whose reasonCode is the SUBACK code (granted QoS 0-2, or a
/// failure reason >= 0x80) with the SUBACK properties; or a negative code as
/// `MQTTClient_subscribe` (`MQTTCLIENT_WRONG_MQTT_VERSION` on an MQTT 3 client,
/// `MQTTCLIENT_BAD_STRUCTURE` for bad options). Free it with `MQTTResponse_free`. Any
/// thread.
///
/// # Safety
/// `topic` is NULL or NUL-terminated; `opts` and `props` are NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_subscribe5(
    handle: MQTTClient,
    topic: *const c_char,
    qos: c_int,
    opts: *mut MQTTSubscribe_options,
    props: *mut MQTTProperties,
) -> MQTTResponse {
    guard(response_error(MQTTCLIENT_FAILURE), || {
        let topics = [topic];
        // SAFETY: one topic, QoS and option structure.
        match unsafe { subscribe_impl(handle, 1, topics.as_ptr(), &qos, opts, props, true) } {
            Ok(ack) => sub_response(&ack, 1),
            Err(rc) => response_error(rc),
        }
    })
}

/// MQTT 5 subscribe to `count` filters, with `count` option structures in `opts` (or NULL
/// for defaults) and properties `props` (may be NULL). On success reasonCode is the first
/// SUBACK code and, when `count > 1`, the response holds all of them in `reasonCodes` /
/// `reasonCodeCount` (as Paho). `qos[]` is not modified. Errors as
/// `MQTTClient_subscribe5`. Free the response with `MQTTResponse_free`. Any thread.
///
/// # Safety
/// `topic` and `qos` (and `opts` when not NULL) hold `count` entries; `props` is NULL or
/// valid.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_subscribeMany5(
    handle: MQTTClient,
    count: c_int,
    topic: *const *mut c_char,
    qos: *mut c_int,
    opts: *mut MQTTSubscribe_options,
    props: *mut MQTTProperties,
) -> MQTTResponse {
    guard(response_error(MQTTCLIENT_FAILURE), || {
        // SAFETY: forwarded C contract.
        match unsafe { subscribe_impl(handle, count, topic.cast(), qos, opts, props, true) } {
            Ok(ack) => sub_response(&ack, count as usize),
            Err(rc) => response_error(rc),
        }
    })
}

unsafe fn unsubscribe_impl(
    handle: MQTTClient,
    count: c_int,
    topics: *const *const c_char,
    props: *const MQTTProperties,
    v5call: bool,
) -> Result<crate::UnsubAck, c_int> {
    let (_h, client, _, timeout) = checked_client(handle, v5call, false)?;
    if count <= 0 {
        return Err(MQTTCLIENT_FAILURE);
    }
    if topics.is_null() {
        return Err(MQTTCLIENT_NULL_PARAMETER);
    }
    let mut filters = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        // SAFETY: `count` topic pointers (C contract); each NULL or NUL-terminated.
        let topic = unsafe { topic_from_c(*topics.add(i))? };
        filters.push(topic.to_owned());
    }
    let properties = if props.is_null() {
        Properties::new()
    } else {
        // SAFETY: valid property list (C contract).
        unsafe { properties_from_c(props)? }
    };
    client
        .unsubscribe_many_timeout(filters, properties, timeout)
        .map_err(|e| match e {
            Error::ConnectionLost(_) => MQTTCLIENT_FAILURE,
            e => error_code(&e),
        })
}

/// Unsubscribes from `topic` and waits for the UNSUBACK (command timeout). Returns
/// `MQTTCLIENT_SUCCESS`, or errors as `MQTTClient_subscribe`. Any thread.
///
/// # Safety
/// `topic` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_unsubscribe(handle: MQTTClient, topic: *const c_char) -> c_int {
    guard_rc(|| {
        let topics = [topic];
        // SAFETY: one topic on the stack.
        unsafe { unsubscribe_impl(handle, 1, topics.as_ptr(), ptr::null(), false) }.map(|_| ())
    })
}

/// Unsubscribes from `count` filters and waits for the UNSUBACK (command timeout). Returns
/// as `MQTTClient_unsubscribe`; `MQTTCLIENT_FAILURE` for `count <= 0`. Any thread.
///
/// # Safety
/// `topic` holds `count` entries.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_unsubscribeMany(
    handle: MQTTClient,
    count: c_int,
    topic: *const *mut c_char,
) -> c_int {
    guard_rc(|| {
        // SAFETY: forwarded C contract.
        unsafe { unsubscribe_impl(handle, count, topic.cast(), ptr::null(), false) }.map(|_| ())
    })
}

fn unsub_response(ack: &crate::UnsubAck, count: usize) -> MQTTResponse {
    let codes: &[u8] = if count > 1 { &ack.reason_codes } else { &[] };
    let first = ack.reason_codes.first().copied().unwrap_or(0);
    response_to_c(first, codes, Some(&ack.properties)).unwrap_or_else(response_error)
}

/// MQTT 5 unsubscribe from one filter with UNSUBSCRIBE properties `props` (may be NULL).
/// Returns an `MQTTResponse` with the UNSUBACK reason code and properties, or a negative
/// code as `MQTTClient_subscribe5`. Free it with `MQTTResponse_free`. Any thread.
///
/// # Safety
/// `topic` is NULL or NUL-terminated; `props` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_unsubscribe5(
    handle: MQTTClient,
    topic: *const c_char,
    props: *mut MQTTProperties,
) -> MQTTResponse {
    guard(response_error(MQTTCLIENT_FAILURE), || {
        let topics = [topic];
        // SAFETY: one topic on the stack; props per the C contract.
        match unsafe { unsubscribe_impl(handle, 1, topics.as_ptr(), props, true) } {
            Ok(ack) => unsub_response(&ack, 1),
            Err(rc) => response_error(rc),
        }
    })
}

/// MQTT 5 unsubscribe from `count` filters. With `count > 1` the UNSUBACK codes are in
/// `reasonCodes` / `reasonCodeCount`. Otherwise as `MQTTClient_unsubscribe5`. Any thread.
///
/// # Safety
/// `topic` holds `count` entries; `props` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_unsubscribeMany5(
    handle: MQTTClient,
    count: c_int,
    topic: *const *mut c_char,
    props: *mut MQTTProperties,
) -> MQTTResponse {
    guard(response_error(MQTTCLIENT_FAILURE), || {
        // SAFETY: forwarded C contract.
        match unsafe { unsubscribe_impl(handle, count, topic.cast(), props, true) } {
            Ok(ack) => unsub_response(&ack, count as usize),
            Err(rc) => response_error(rc),
        }
    })
}

// ---------------------------------------------------------------------------------------
// publish
// ---------------------------------------------------------------------------------------

/// What to publish, still as given by C (checked in Paho's order by [`publish_impl`]).
struct PubArgs {
    topic: *const c_char,
    payloadlen: c_int,
    payload: *const c_void,
    qos: c_int,
    retained: bool,
    props: *const MQTTProperties,
}

/// Publishes; returns the token for QoS > 0. Order of checks: handle, version (MQTT 3
/// functions), connected, version (MQTT 5 functions), topic UTF-8, QoS, length, payload,
/// properties, topic rules.
unsafe fn publish_impl(
    handle: MQTTClient,
    v5call: bool,
    a: PubArgs,
) -> Result<Option<c_int>, c_int> {
    let (h, client, conn, _) = checked_client(handle, v5call, !v5call)?;
    // SAFETY: NULL or NUL-terminated (C contract).
    let topic = unsafe { topic_from_c(a.topic)? };
    let qos = u8::try_from(a.qos)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or(MQTTCLIENT_BAD_QOS)?;
    // SAFETY: payload has payloadlen readable bytes (C contract).
    let data = unsafe { bytes_from_c(a.payload, a.payloadlen)? }.to_vec();
    let mut m = Message::new(topic, Bytes::from(data))
        .qos(qos)
        .retain(a.retained);
    if h.v5 && !a.props.is_null() {
        // SAFETY: valid property list (C contract).
        m.properties = unsafe { properties_from_c(a.props)? };
    }
    let token = client.publish(m).map_err(|e| error_code(&e))?;
    if qos != QoS::AtMostOnce && h.durable {
        // As in Paho, a QoS 1/2 message is in persistence when publish returns. Without
        // durable persistence there is nothing to wait for, and publishing stays pipelined.
        match token.wait_stored(client.request_timeout()) {
            Ok(()) => {}
            // Still queued after the command timeout (window and queue full): taken back,
            // so the caller, told MQTTCLIENT_MAX_MESSAGES_INFLIGHT as by Paho with a full
            // window, still has the only copy. Returning success would leave a message the
            // caller counts as accepted in memory only, lost by a kill.
            Err(Error::Timeout { .. }) if token.withdraw() => {
                return Err(MQTTCLIENT_MAX_MESSAGES_INFLIGHT)
            }
            // Taken meanwhile: its record is being written.
            Err(Error::Timeout { .. }) => {
                let _ = token.wait_stored(client.request_timeout());
            }
            // Refused without being taken: the caller may publish it again.
            Err(e) => return Err(error_code(&e)),
        }
    }
    let mut t = h.tokens();
    let seq = conn.base.wrapping_add(token.id());
    t.issued = t.issued.max(seq);
    if qos == QoS::AtMostOnce {
        return Ok(None);
    }
    let tok = c_token(conn.base, token.id());
    if t.map.len() >= TOKEN_SWEEP_AT {
        t.map.retain(|_, (_, tk)| !tk.is_complete());
    }
    t.map.insert(tok, (seq, token));
    Ok(Some(tok))
}

#[allow(clippy::too_many_arguments)]
unsafe fn publish_raw(
    handle: MQTTClient,
    topic: *const c_char,
    payloadlen: c_int,
    payload: *const c_void,
    qos: c_int,
    retained: c_int,
    props: *const MQTTProperties,
    dt: *mut MQTTClient_deliveryToken,
    v5call: bool,
) -> Result<(), c_int> {
    // SAFETY: forwarded C contract.
    let tok = unsafe {
        publish_impl(
            handle,
            v5call,
            PubArgs {
                topic,
                payloadlen,
                payload,
                qos,
                retained: retained != 0,
                props,
            },
        )?
    };
    if let Some(t) = tok {
        // SAFETY: dt is NULL or writable (C contract).
        unsafe { super::ffi::write_out(dt, t) };
    }
    Ok(())
}

/// Publishes `payloadlen` bytes at `payload` to `topicName` with `qos` and the `retained`
/// flag. The data is copied; the call returns once the message is queued (not when it is
/// acknowledged; with file or user persistence a QoS 1/2 message is in the store by then,
/// as in Paho), waiting for queue room at most the command timeout. For QoS 1/2 the
/// delivery token is written to `*dt` (if `dt` is not NULL); use it with
/// `MQTTClient_waitForCompletion`. Tokens are positive numbers unique within the handle,
/// not MQTT packet ids.
///
/// Returns `MQTTCLIENT_SUCCESS`; `MQTTCLIENT_BAD_UTF8_STRING` for a NULL, non-UTF-8, empty
/// topic or one holding the wildcards `+`/`#`; `MQTTCLIENT_BAD_QOS` for QoS outside 0-2
/// (Paho does not check); `MQTTCLIENT_FAILURE` for a negative length or unknown handle;
/// `MQTTCLIENT_NULL_PARAMETER` for a NULL payload with a positive length;
/// `MQTTCLIENT_DISCONNECTED` (also when, with persistence, the connection went before the
/// client took the message and it refused it: nothing went out, publish it again);
/// `MQTTCLIENT_MAX_MESSAGES_INFLIGHT` if there was no room within the command timeout
/// (with persistence: room in the in-flight window or the client's queue, and so in the
/// store; the message was not taken and is never sent: publish it again later);
/// `MQTTCLIENT_WRONG_MQTT_VERSION` on an MQTT 5 client. `*dt` is written only on success.
/// Any thread, including callbacks.
///
/// # Safety
/// `topicName` is NULL or NUL-terminated; `payload` has `payloadlen` readable bytes; `dt`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_publish(
    handle: MQTTClient,
    topicName: *const c_char,
    payloadlen: c_int,
    payload: *const c_void,
    qos: c_int,
    retained: c_int,
    dt: *mut MQTTClient_deliveryToken,
) -> c_int {
    guard_rc(|| {
        // SAFETY: forwarded C contract.
        unsafe {
            publish_raw(
                handle,
                topicName,
                payloadlen,
                payload,
                qos,
                retained,
                ptr::null(),
                dt,
                false,
            )
        }
    })
}

/// MQTT 5 publish: as `MQTTClient_publish` with PUBLISH `properties` (may be NULL; copied).
/// Returns an `MQTTResponse` whose reasonCode is `MQTTCLIENT_SUCCESS` or the error code
/// (`MQTTCLIENT_WRONG_MQTT_VERSION` on an MQTT 3 client); it holds no allocations, but
/// freeing it with `MQTTResponse_free` is harmless. Any thread.
///
/// # Safety
/// As `MQTTClient_publish`; `properties` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_publish5(
    handle: MQTTClient,
    topicName: *const c_char,
    payloadlen: c_int,
    payload: *const c_void,
    qos: c_int,
    retained: c_int,
    properties: *mut MQTTProperties,
    dt: *mut MQTTClient_deliveryToken,
) -> MQTTResponse {
    guard(response_error(MQTTCLIENT_FAILURE), || {
        // SAFETY: forwarded C contract.
        let rc = match unsafe {
            publish_raw(
                handle, topicName, payloadlen, payload, qos, retained, properties, dt, true,
            )
        } {
            Ok(()) => MQTTCLIENT_SUCCESS,
            Err(rc) => rc,
        };
        response_error(rc)
    })
}

unsafe fn publish_message_impl(
    handle: MQTTClient,
    topic: *const c_char,
    msg: *const MQTTClient_message,
    dt: *mut MQTTClient_deliveryToken,
    v5call: bool,
) -> Result<(), c_int> {
    lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
    // The structure is checked first (Paho: -8 even when disconnected).
    // SAFETY: NULL or a message of its declared version (C contract).
    let (m, v) = unsafe { copy_versioned(msg)? };
    let props = if v >= 1 && m.properties.count > 0 {
        // SAFETY: msg is a valid version 1 message; the field is inside it.
        unsafe { ptr::addr_of!((*msg).properties) }
    } else {
        ptr::null()
    };
    // SAFETY: forwarded C contract (payload and properties of the message).
    let tok = unsafe {
        publish_impl(
            handle,
            v5call,
            PubArgs {
                topic,
                payloadlen: m.payloadlen,
                payload: m.payload,
                qos: m.qos,
                retained: m.retained != 0,
                props,
            },
        )?
    };
    if let Some(t) = tok {
        // SAFETY: dt is NULL or writable (C contract).
        unsafe { super::ffi::write_out(dt, t) };
    }
    Ok(())
}

/// Publishes an `MQTTClient_message` (eyecatcher `MQTM`, version 0 or 1; its payloadlen,
/// payload, qos and retained are used; properties are ignored by MQTT 3 clients) to
/// `topicName`. The caller keeps ownership of the message and payload. Returns as
/// `MQTTClient_publish`, plus `MQTTCLIENT_NULL_PARAMETER` for a NULL message and
/// `MQTTCLIENT_BAD_STRUCTURE` for a bad eyecatcher or version. Any thread.
///
/// # Safety
/// `topicName` is NULL or NUL-terminated; `msg` is NULL or a valid message; `dt` is NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_publishMessage(
    handle: MQTTClient,
    topicName: *const c_char,
    msg: *mut MQTTClient_message,
    dt: *mut MQTTClient_deliveryToken,
) -> c_int {
    // SAFETY: forwarded C contract.
    guard_rc(|| unsafe { publish_message_impl(handle, topicName, msg, dt, false) })
}

/// MQTT 5 `MQTTClient_publishMessage`: the message's properties (version 1) are sent.
/// Returns an `MQTTResponse` with reasonCode `MQTTCLIENT_SUCCESS` or the error code. Any
/// thread.
///
/// # Safety
/// As `MQTTClient_publishMessage`.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_publishMessage5(
    handle: MQTTClient,
    topicName: *const c_char,
    msg: *mut MQTTClient_message,
    dt: *mut MQTTClient_deliveryToken,
) -> MQTTResponse {
    guard(response_error(MQTTCLIENT_FAILURE), || {
        // SAFETY: forwarded C contract.
        let rc = match unsafe { publish_message_impl(handle, topicName, msg, dt, true) } {
            Ok(()) => MQTTCLIENT_SUCCESS,
            Err(rc) => rc,
        };
        response_error(rc)
    })
}

// ---------------------------------------------------------------------------------------
// completion and pending tokens
// ---------------------------------------------------------------------------------------

/// Waits until the QoS 1/2 publish with token `dt` completes (PUBACK or PUBCOMP received),
/// at most `timeout` ms. Blocks on the token itself (no polling).
///
/// Returns `MQTTCLIENT_SUCCESS` when the publish completed (also when the server refused it
/// with an MQTT 5 reason code; see `MQTTClient_setPublished`), or when the token is unknown
/// (a QoS 0 token, one already waited for, or one from before the last connect: its message
/// is resent from persistence but no longer tracked); `MQTTCLIENT_DISCONNECTED` when the
/// client is not connected or the connection drops during the wait (the message stays
/// pending); `MQTTCLIENT_FAILURE` on timeout (`timeout` 0: at once unless complete; Paho
/// answers -1 to every timeout-0 wait), for an unknown handle, and, as in Paho, for a
/// timeout-0 wait on a disconnected client.
///
/// Any thread, including callbacks (the acknowledgement is read by the I/O thread, so a
/// wait inside `messageArrived` works).
#[no_mangle]
pub extern "C" fn MQTTClient_waitForCompletion(
    handle: MQTTClient,
    dt: MQTTClient_deliveryToken,
    timeout: c_ulong,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
        if h.connected_client().is_none() {
            // Paho: with timeout 0 its wait loop never runs and it reports a timeout.
            return Err(if timeout == 0 {
                MQTTCLIENT_FAILURE
            } else {
                MQTTCLIENT_DISCONNECTED
            });
        }
        let token = {
            let t = h.tokens();
            match (t.map.get(&dt), t.restored.get(&dt)) {
                (Some((_, tk)), _) | (None, Some(Some(tk))) => tk.clone(),
                _ => return Ok(()),
            }
        };
        match token.wait_timeout(ms(timeout)) {
            Ok(_) | Err(Error::Rejected { .. }) => {
                let mut t = h.tokens();
                t.map.remove(&dt);
                t.restored.remove(&dt);
                Ok(())
            }
            Err(Error::Timeout { .. }) => Err(MQTTCLIENT_FAILURE),
            Err(e) => Err(match error_code(&e) {
                MQTTCLIENT_DISCONNECTED => MQTTCLIENT_DISCONNECTED,
                _ => MQTTCLIENT_FAILURE,
            }),
        }
    })
}

/// Writes to `*tokens` an array of the tokens of QoS 1/2 publishes not yet completed,
/// ending with -1, or NULL when there are none. The array is allocated with `malloc`: free
/// it with `MQTTClient_free`. Tokens of messages restored from persistence at connect are
/// not listed (they have no token in this handle).
///
/// Returns `MQTTCLIENT_SUCCESS`, `MQTTCLIENT_FAILURE` for an unknown handle,
/// `MQTTCLIENT_NULL_PARAMETER` for a NULL `tokens`. On every error `*tokens` (when `tokens`
/// is not NULL) is set to NULL, as Paho does, so a caller may free it unconditionally.
/// Any thread.
///
/// # Safety
/// `tokens` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_getPendingDeliveryTokens(
    handle: MQTTClient,
    tokens: *mut *mut MQTTClient_deliveryToken,
) -> c_int {
    if tokens.is_null() {
        return MQTTCLIENT_NULL_PARAMETER;
    }
    // SAFETY: non-NULL and writable (C contract). Written first, so that every error path
    // (unknown handle, allocation failure, a caught panic) leaves NULL there.
    unsafe { tokens.write(ptr::null_mut()) };
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
        let mut pending: Vec<(u64, c_int)> = {
            let mut t = h.tokens();
            t.map.retain(|_, (_, tk)| !tk.is_complete());
            t.restored
                .retain(|_, tk| !tk.as_ref().is_some_and(DeliveryToken::is_complete));
            // Restored messages first (sequence 0), in packet id order.
            let restored = t.restored.keys().map(|&k| (0, k));
            let published = t.map.iter().map(|(&k, (seq, _))| (*seq, k));
            restored.chain(published).collect()
        };
        pending.sort_unstable();
        let out = if pending.is_empty() {
            ptr::null_mut()
        } else {
            let mut v: Vec<c_int> = pending.into_iter().map(|(_, k)| k).collect();
            v.push(-1);
            c_array(&v)?
        };
        // SAFETY: non-NULL and writable (C contract).
        unsafe { tokens.write(out) };
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// receive
// ---------------------------------------------------------------------------------------

/// Hands `m` to C: writes the outputs and returns the code (`MQTTCLIENT_TOPICNAME_TRUNCATED`
/// when the topic holds NUL characters).
unsafe fn give_message(
    m: &Message,
    topic_name: *mut *mut c_char,
    topic_len: *mut c_int,
    message: *mut *mut MQTTClient_message,
) -> Result<(), c_int> {
    let (t, len) = topic_to_c(&m.topic)?;
    let msg = match message_to_c(
        &m.payload,
        m.qos as u8,
        m.retain,
        m.dup,
        m.packet_id,
        &m.properties,
    ) {
        Ok(p) => p,
        Err(rc) => {
            // SAFETY: malloc'd just above, not handed out.
            unsafe { libc::free(t.cast()) };
            return Err(rc);
        }
    };
    // SAFETY: the three outputs were checked non-NULL by the caller and are writable.
    unsafe {
        topic_name.write(t);
        topic_len.write(len);
        message.write(msg);
    }
    if m.topic.contains('\0') {
        Err(MQTTCLIENT_TOPICNAME_TRUNCATED)
    } else {
        Ok(())
    }
}

/// Waits up to `timeout` ms for an incoming message (for clients without a
/// `messageArrived` callback). On success `*topicName` (NUL-terminated, free with
/// `MQTTClient_free`), `*topicLen` (its real length) and `*message` (free with
/// `MQTTClient_freeMessage`) are set. On timeout it returns `MQTTCLIENT_SUCCESS` with
/// `*topicName` and `*message` set to NULL.
///
/// Messages that arrived before the connection was lost are still handed out first; only
/// then does a disconnected client get `MQTTCLIENT_DISCONNECTED`. A QoS 1/2 message is
/// acknowledged to the server (PUBACK / PUBREC) only once the application has done with
/// it: when it frees the message (`MQTTClient_freeMessage`) or the thread that received it
/// calls `MQTTClient_receive` again, whichever comes first, or at disconnect, connect or
/// destroy; until then the server still owns it, so a process killed while it handles a
/// message gets it again in the resumed session (`cleansession = 0`).
///
/// Returns `MQTTCLIENT_SUCCESS`; `MQTTCLIENT_TOPICNAME_TRUNCATED` (message delivered) when
/// the topic holds NUL characters; `MQTTCLIENT_DISCONNECTED`; `MQTTCLIENT_NULL_PARAMETER`
/// for NULL outputs; `MQTTCLIENT_FAILURE` for an unknown handle or when this client has a
/// `messageArrived` callback (other clients' callbacks do not matter).
///
/// Threads: any thread; messages are handed out once, so several threads may receive.
///
/// # Safety
/// The three outputs are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn MQTTClient_receive(
    handle: MQTTClient,
    topicName: *mut *mut c_char,
    topicLen: *mut c_int,
    message: *mut *mut MQTTClient_message,
    timeout: c_ulong,
) -> c_int {
    guard_rc(|| {
        let h = lookup(handle).ok_or(MQTTCLIENT_FAILURE)?;
        if topicName.is_null() || topicLen.is_null() || message.is_null() {
            return Err(MQTTCLIENT_NULL_PARAMETER);
        }
        let (backlog, client) = {
            let mut st = h.state();
            if st.callbacks.arrived.is_some() {
                return Err(MQTTCLIENT_FAILURE);
            }
            // This thread is back: it has done with what it received before.
            st.release_taken(true);
            (st.backlog.pop_front(), st.client.clone())
        };
        let give = |m: &Message| {
            // SAFETY: outputs checked non-NULL above, writable (C contract).
            unsafe { give_message(m, topicName, topicLen, message) }
        };
        // Acknowledged (PUBACK / PUBREC) only once the caller has done with it: when this
        // thread calls `receive` again, or at disconnect/destroy. A message that could not
        // be handed out stays the broker's.
        let give = |m: Message| {
            let r = give(&m);
            if matches!(r, Ok(()) | Err(MQTTCLIENT_TOPICNAME_TRUNCATED)) && m.needs_ack() {
                // SAFETY: checked non-NULL above; `give_message` has just written it.
                let addr = unsafe { message.read() } as usize;
                h.state().taken.push((std::thread::current().id(), addr, m));
                let mut g = handed();
                let map = g.get_or_insert_with(HashMap::new);
                map.insert(addr, handle as usize);
                HANDED_COUNT.store(map.len(), Ordering::SeqCst);
            }
            r
        };
        if let Some(m) = backlog {
            return give(m);
        }
        let client = client.ok_or(MQTTCLIENT_DISCONNECTED)?;
        let msgs = client.messages();
        if !client.is_connected() {
            return match msgs.try_recv() {
                Ok(Some(m)) => give(m),
                _ => Err(MQTTCLIENT_DISCONNECTED),
            };
        }
        match msgs.recv_timeout(ms(timeout)) {
            Ok(m) => give(m),
            Err(Error::Timeout { .. }) => {
                // SAFETY: checked non-NULL, writable.
                unsafe {
                    topicName.write(ptr::null_mut());
                    message.write(ptr::null_mut());
                }
                Ok(())
            }
            Err(_) => Err(MQTTCLIENT_DISCONNECTED),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stay_positive_and_wrap() {
        assert_eq!(c_token(0, 1), 1);
        assert_eq!(c_token(5, 1), 6);
        assert_eq!(c_token(i32::MAX as u64, 1), 1);
        assert_eq!(c_token(0, 0), 1);
    }

    #[test]
    fn stale_and_garbage_handles_are_rejected() {
        assert!(lookup(ptr::null_mut()).is_none());
        assert!(lookup(0xdead_beef_usize as MQTTClient).is_none());
        assert_eq!(MQTTClient_isConnected(0x1234 as MQTTClient), 0);
        assert_eq!(
            MQTTClient_setCommandTimeout(0x1234 as MQTTClient, 6000),
            MQTTCLIENT_FAILURE
        );
    }
}
