//! Delivery tokens: completion handles for publishes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result, Step};
use crate::proto::Properties;

/// How a publish ended, from the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Packet id the message had (0 for QoS 0).
    pub packet_id: u16,
    /// v5 reason code of the PUBACK / PUBCOMP (0 for v3 and QoS 0).
    pub reason: u8,
    /// v5 properties of the acknowledgement.
    pub properties: Properties,
}

#[derive(Debug)]
pub(crate) enum TokenState {
    /// Accepted, not yet in the session; `held`: a store record the caller wrote for the
    /// message meanwhile ([`DeliveryToken::hold_with`]), which the session's record will
    /// name and replace.
    Pending { held: Option<Box<str>> },
    /// The I/O work is taking it into the session (it can no longer be withdrawn or held).
    Taking,
    /// In the session (and, with a store, in the store): pending still.
    Stored,
    /// Completed; `taken`: the session had taken the message first (it was not refused
    /// before that).
    Done(std::result::Result<Delivered, Arc<Error>>, bool),
}

#[derive(Debug)]
pub(crate) struct TokenInner {
    pub(crate) state: Mutex<TokenState>,
    pub(crate) cv: Condvar,
    /// Threads blocked in `wait`: completing a token nobody waits on costs no wake-up
    /// system call. Changed only while `state` is locked.
    waiters: AtomicUsize,
}

impl TokenInner {
    pub(crate) fn new() -> Arc<TokenInner> {
        Self::with_state(TokenState::Pending { held: None })
    }

    /// The token of a message already in the session (restored from the store).
    pub(crate) fn new_stored() -> Arc<TokenInner> {
        Self::with_state(TokenState::Stored)
    }

    fn with_state(state: TokenState) -> Arc<TokenInner> {
        Arc::new(TokenInner {
            state: Mutex::new(state),
            cv: Condvar::new(),
            waiters: AtomicUsize::new(0),
        })
    }

    pub(crate) fn complete(&self, r: std::result::Result<Delivered, Arc<Error>>) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*g, TokenState::Done(..)) {
            let taken = matches!(*g, TokenState::Stored) || r.is_ok();
            *g = TokenState::Done(r, taken);
        }
        let waiting = self.waiters.load(Ordering::Relaxed) > 0;
        drop(g);
        if waiting {
            self.cv.notify_all();
        }
    }

    /// The I/O work takes the message (before the session has it): `Err` when it was
    /// withdrawn (not to be sent), else the record the caller wrote meanwhile, if any
    /// ([`DeliveryToken::hold_with`]). From now on it can be neither withdrawn nor held.
    pub(crate) fn begin_take(&self) -> std::result::Result<Option<Box<str>>, ()> {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *g {
            TokenState::Pending { held } => {
                let held = held.take();
                *g = TokenState::Taking;
                Ok(held)
            }
            TokenState::Done(..) => Err(()),
            TokenState::Taking | TokenState::Stored => Ok(None),
        }
    }

    /// The session has taken the message, and its store record is written
    /// ([`DeliveryToken::wait_stored`]).
    pub(crate) fn stored(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*g, TokenState::Pending { .. } | TokenState::Taking) {
            *g = TokenState::Stored;
            if self.waiters.load(Ordering::Relaxed) > 0 {
                self.cv.notify_all();
            }
        }
    }

    /// One wait for a change of the token, until `deadline` (`None`: an hour at a time):
    /// the guard back, or `None` once the deadline has passed.
    fn wait_step<'a>(
        &'a self,
        g: MutexGuard<'a, TokenState>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, TokenState>> {
        let now = Instant::now();
        let left = match deadline {
            Some(d) if d <= now => return None,
            Some(d) => d - now,
            None => Duration::from_secs(3600),
        };
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let g = self
            .cv
            .wait_timeout(g, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        Some(g)
    }

    /// Wakes waiters so they re-check the connection state.
    pub(crate) fn poke(&self) {
        let _g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.cv.notify_all();
        }
    }
}

/// Completion handle of one publish. `wait` returns when the PUBACK (QoS 1) or PUBCOMP
/// (QoS 2) arrives; for QoS 0 when the message has been written to the socket.
/// Dropping the token does not cancel the publish.
#[derive(Debug, Clone)]
pub struct DeliveryToken {
    pub(crate) id: u64,
    pub(crate) inner: Arc<TokenInner>,
    pub(crate) shared: Arc<super::Shared>,
    pub(crate) default_timeout: Duration,
}

fn map_done(r: &std::result::Result<Delivered, Arc<Error>>) -> Result<Delivered> {
    match r {
        Ok(d) => Ok(d.clone()),
        Err(e) => Err((**e).clone()),
    }
}

impl DeliveryToken {
    /// A number unique within the client, for correlating tokens (never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True once the publish has completed (successfully or not).
    pub fn is_complete(&self) -> bool {
        let g = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        matches!(*g, TokenState::Done(..))
    }

    /// The result if complete, without waiting.
    pub fn try_result(&self) -> Option<Result<Delivered>> {
        let g = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        match &*g {
            TokenState::Done(r, _) => Some(map_done(r)),
            TokenState::Pending { .. } | TokenState::Taking | TokenState::Stored => None,
        }
    }

    /// Waits at most `timeout` until the client has taken the message into its session
    /// and, with a store ([`ConnectOptions::persistence`](crate::ConnectOptions::persistence)),
    /// written it there: from then on a crash of the process does not lose it (the next
    /// client over the store sends it). `publish` returns before that, as soon as the
    /// message is queued for the client's I/O work. `Ok` as well once the publish has
    /// completed after that, even with an error; the error when the client refused the
    /// message without taking it (`NotConnected`: the connection went and the client has no
    /// store; `Closed`); `Err(Timeout)` when the time is up (the message stays queued: the
    /// in-flight window and the session's queue were full; [`withdraw`](Self::withdraw)
    /// takes it back).
    pub fn wait_stored(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now().checked_add(timeout);
        let mut g = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*g {
                TokenState::Stored => return Ok(()),
                TokenState::Done(_, true) => return Ok(()),
                TokenState::Done(r, false) => return map_done(r).map(|_| ()),
                TokenState::Pending { .. } | TokenState::Taking => {}
            }
            // Not `is_down`: a client that lost its connection still takes, or refuses,
            // what it accepted (and a closing one has before it is closed).
            g = self
                .inner
                .wait_step(g, deadline)
                .ok_or_else(|| Error::timeout(Step::Queue, timeout))?;
        }
    }

    /// Takes the message back if the client has not yet begun to take it into its session
    /// (it waits in the queue in front of the session: the in-flight window and the
    /// session's queue are full). True if so: it will never be sent, and the token
    /// completes with [`Error::Withdrawn`]. False once the client has it (or the publish
    /// has completed); it then goes on as any other. With
    /// [`wait_stored`](Self::wait_stored), a publisher that must not block long and must
    /// not lose a message it was told was accepted can bound its wait and keep the message.
    pub fn withdraw(&self) -> bool {
        let mut g = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        let TokenState::Pending { held } = &*g else {
            return false;
        };
        if held.is_some() {
            return false;
        }
        *g = TokenState::Done(Err(Arc::new(Error::Withdrawn)), false);
        let waiting = self.inner.waiters.load(Ordering::Relaxed) > 0;
        drop(g);
        if waiting {
            self.inner.cv.notify_all();
        }
        true
    }

    /// Runs `write` if the client has not yet begun to take the message into its session,
    /// with the client kept from taking it meanwhile: `write` stores the message in a
    /// record of the caller's own (in the client's record format, in the client's store)
    /// and returns its key, or `None` if it did not. The client's record of the message,
    /// written when it takes it, then names that key, and the client removes the record
    /// after (a restart finding both knows the message was taken:
    /// [`persist::replaced_keys`](crate::persist::replaced_keys)); a refused message's
    /// record is removed too. Whether `write` ran. MQTTAsync's send uses this to have the
    /// message in the store when it returns, however long the client's queue stays full.
    #[doc(hidden)]
    pub fn hold_with(&self, write: impl FnOnce() -> Option<Box<str>>) -> bool {
        let mut g = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *g {
            TokenState::Pending { held } if held.is_none() => {
                *held = write();
                true
            }
            _ => false,
        }
    }

    /// Waits with the client's request timeout.
    pub fn wait(&self) -> Result<Delivered> {
        self.wait_timeout(self.default_timeout)
    }

    /// Waits at most `timeout`. Returns `Err(NotConnected)` at once if the client is
    /// disconnected and not reconnecting (the message stays pending and is resent on the
    /// next connect); `Err(Timeout)` when the time is up.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Delivered> {
        let deadline = Instant::now().checked_add(timeout);
        let io = if self.is_complete() {
            None
        } else {
            self.shared.sleeper.io()
        };
        if let Some(io) = &io {
            // While the I/O thread sleeps, read the acknowledgement on this thread (one
            // wake-up instead of two in series; `client/io/lend.rs`).
            super::io::read_while_waiting(
                io,
                deadline,
                &|| self.is_complete(),
                super::io::Wait::Reply,
            );
        }
        // Not read here: whoever has the socket must not keep it unread.
        let _waiter = io
            .as_deref()
            .filter(|_| !self.is_complete())
            .map(|io| super::io::ReplyWaiter::new(io, &self.shared));
        let mut g = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let TokenState::Done(r, _) = &*g {
                return map_done(r);
            }
            if self.shared.is_down() {
                return Err(self.shared.down_error());
            }
            g = self
                .inner
                .wait_step(g, deadline)
                .ok_or_else(|| Error::timeout(Step::Delivery, timeout))?;
        }
    }
}
