//! The dispatch thread: runs the application's callbacks, one at a time, off the I/O
//! thread (so a callback may call the client, and a slow callback delays no socket work).
//!
//! The thread is there only while there is work: the first item for the callbacks starts
//! it (a thread of the pool, `threads`), and it leaves once nothing has come for
//! [`LINGER`]. An idle client with callbacks therefore has one thread (its I/O thread), not
//! two. At most one dispatch thread serves a client at a time (the queue's claim), so the
//! callbacks still run one at a time and in order.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::options::LostCallback;
use super::queue::{Consumer, Producer, RecvError};
use super::{Incoming, Shared};

/// How long a dispatch thread waits for more work before it leaves.
const LINGER: Duration = Duration::from_millis(500);

pub(super) struct Callbacks {
    pub(crate) on_message: Option<super::options::MessageCallback>,
    pub(crate) on_connected: Option<super::options::ConnectedCallback>,
    pub(crate) on_connection_lost: Option<LostCallback>,
    pub(crate) on_delivered: Option<super::options::DeliveredCallback>,
    pub(crate) on_server_disconnect: Option<super::options::ServerDisconnectCallback>,
}

thread_local! {
    /// The client (its `Shared`) whose callbacks this thread is running, if any.
    static DISPATCHING: Cell<usize> = const { Cell::new(0) };
}

/// Whether the calling thread is running `shared`'s callbacks.
pub(super) fn on_dispatch_thread(shared: &Shared) -> bool {
    DISPATCHING.with(|d| d.get() == shared as *const Shared as usize)
}

/// Marks the thread as running a client's callbacks while alive.
struct Mark;

impl Mark {
    fn set(shared: &Shared) -> Mark {
        DISPATCHING.with(|d| d.set(shared as *const Shared as usize));
        Mark
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        DISPATCHING.with(|d| d.set(0));
    }
}

type SharedCallbacks = Arc<Mutex<Option<Callbacks>>>;

fn lock(cb: &SharedCallbacks) -> MutexGuard<'_, Option<Callbacks>> {
    cb.lock().unwrap_or_else(|e| e.into_inner())
}

/// The I/O thread's side: hands items to the callbacks, starting a dispatch thread when
/// none is running. The queue is made with the first item: a client that never has one
/// for its callbacks (an idle client) holds them and nothing more. Dropping it ends the
/// queue; the callbacks (and what they hold) are dropped once the last item has been
/// handled.
pub(super) struct Dispatcher {
    /// The queue and the callbacks, from the first item on.
    live: Option<Live>,
    /// The callbacks until then.
    waiting: Option<Callbacks>,
    shared: Arc<Shared>,
    connected: bool,
    lost: bool,
    server_disconnect: bool,
}

/// A [`Dispatcher`]'s queue, shared with its dispatch thread.
struct Live {
    tx: Producer<Incoming>,
    rx: Consumer<Incoming>,
    callbacks: SharedCallbacks,
}

impl Dispatcher {
    pub(super) fn new(callbacks: Callbacks, shared: Arc<Shared>) -> Dispatcher {
        Dispatcher {
            live: None,
            connected: callbacks.on_connected.is_some(),
            lost: callbacks.on_connection_lost.is_some(),
            server_disconnect: callbacks.on_server_disconnect.is_some(),
            waiting: Some(callbacks),
            shared,
        }
    }

    /// Hands one item over (an item no callback wants is dropped here).
    pub(crate) fn send(&mut self, item: Incoming) {
        let wanted = match &item {
            Incoming::Connected(_) => self.connected,
            Incoming::Lost(_) => self.lost,
            Incoming::ServerDisconnect(_) => self.server_disconnect,
            Incoming::Message(_) | Incoming::Delivered(_) => true,
        };
        if wanted {
            self.send_many(std::iter::once(item));
        }
    }

    /// Hands items over under one lock.
    pub(crate) fn send_many(&mut self, items: impl IntoIterator<Item = Incoming>) {
        let live = self.live.get_or_insert_with(|| {
            let (tx, rx) = super::queue::queue();
            Live {
                tx,
                rx,
                callbacks: Arc::new(Mutex::new(self.waiting.take())),
            }
        });
        if live.tx.send_claim(items) {
            live.start(&self.shared);
        }
    }

    /// Items not yet handled.
    pub(crate) fn len(&self) -> usize {
        self.live.as_ref().map_or(0, |l| l.tx.len())
    }
}

impl Live {
    /// Starts a dispatch thread on the queue (its claim taken by the caller).
    fn start(&self, shared: &Arc<Shared>) {
        let rx = self.rx.clone();
        let cb = self.callbacks.clone();
        let sh = shared.clone();
        match super::threads::spawn(c"mqttsync-dispatch", move || dispatch_loop(rx, cb, sh)) {
            // The previous thread, if any, has released the queue: it is done or leaving.
            Ok(w) => *shared.dispatcher() = Some(w),
            Err(e) => {
                // Tried again with the next item.
                log::error!("starting the callback thread failed: {e}");
                self.tx.unclaim();
            }
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let Some(live) = &self.live else {
            // Never used: the callbacks go with it.
            return;
        };
        live.tx.close();
        if live.tx.claim() {
            // No dispatch thread will come: the callbacks go now (outside the lock: what
            // they hold may be anything).
            let cbs = lock(&live.callbacks).take();
            drop(cbs);
        }
    }
}

fn dispatch_loop(rx: Consumer<Incoming>, callbacks: SharedCallbacks, shared: Arc<Shared>) {
    let mut guard = lock(&callbacks);
    let Some(cb) = guard.as_mut() else {
        // The client is finished; nothing to run.
        let _ = rx.recv_or_release(Duration::ZERO);
        return;
    };
    let _mark = Mark::set(&shared);
    loop {
        if rx.is_empty() {
            // Nothing queued while the I/O thread sleeps: this thread reads the socket itself
            // (`io::read_for_consumer`, which keeps it while the callbacks of what it read
            // run), so an acknowledgement or message reaches its callback without a
            // hand-over from the I/O thread.
            if let Some(io) = shared.sleeper.io() {
                let ready = || !rx.is_empty();
                super::io::read_for_consumer(&io, None, &ready, super::io::Wait::Stream);
            }
        }
        // Leave to linger only when there is nothing to take now (this thread is the
        // queue's only consumer): a stream of messages does not touch the shared count.
        let leave = rx
            .is_empty()
            .then(super::threads::Linger::try_take)
            .flatten();
        let next = rx.recv_or_release(super::threads::Linger::wait(&leave, LINGER));
        drop(leave);
        let mut item = match next {
            Ok(item) => item,
            Err(RecvError::Empty) => return,
            Err(RecvError::Closed) => {
                let cbs = guard.take();
                drop(guard);
                drop(cbs);
                return;
            }
        };
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
    }
}
