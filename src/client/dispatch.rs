//! The dispatch thread: runs the application's callbacks, one at a time, off the I/O
//! thread (so a callback may call the client, and a slow callback delays no socket work).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::options::LostCallback;
use super::queue::{Consumer, RecvError};
use super::{Incoming, Shared, STATE_CLOSED};

pub(super) struct Callbacks {
    pub(crate) on_message: Option<super::options::MessageCallback>,
    pub(crate) on_connected: Option<super::options::ConnectedCallback>,
    pub(crate) on_connection_lost: Option<LostCallback>,
    pub(crate) on_delivered: Option<super::options::DeliveredCallback>,
    pub(crate) on_server_disconnect: Option<super::options::ServerDisconnectCallback>,
}

/// The next item for the callbacks. With nothing queued while the I/O thread sleeps, this
/// thread reads the socket itself (`io::read_while_waiting`): an acknowledgement or message
/// then reaches its callback without a hand-over from the I/O thread (C publish with a
/// window of 10 counted in deliveryComplete: I/O thread -> dispatch thread -> publisher was
/// three wake-ups per message).
fn next_item(rx: &Consumer<Incoming>, shared: &Shared) -> Result<Incoming, RecvError> {
    if rx.is_empty() {
        if let Some(io) = shared.io.get().and_then(std::sync::Weak::upgrade) {
            super::io::read_while_waiting(&io, None, &|| !rx.is_empty());
        }
    }
    rx.recv()
}

pub(super) fn dispatch_loop(rx: Consumer<Incoming>, mut cb: Callbacks, shared: Arc<Shared>) {
    let _ = shared.dispatch_thread.set(std::thread::current().id());
    while let Ok(mut item) = next_item(&rx, &shared) {
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
