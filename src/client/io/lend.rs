//! A waiting consumer reads the socket itself (leader/follower).
//!
//! A thread that waits for a message (`Messages::recv*`) while the I/O thread sleeps in
//! poll would otherwise be woken by the I/O thread after it was woken by the socket: two
//! wake-ups in series for every reply, where a raw socket has one (`perf stat`: 4.6 context
//! switches per QoS 1 round trip against 2.0 for raw). Instead the waiting thread takes the
//! `Io` (free while the I/O thread sleeps), sends the acknowledgements it owes, takes the
//! socket's read interest away from the I/O thread's epoll and waits in `poll(2)` on the
//! socket itself; what it reads goes through the same path as on the I/O thread
//! (`Session::handle_input`, events, our queue). It gives the socket back as soon as its
//! queue has an item, the deadline passes or at most [`LEND_MAX`]: then the read interest
//! is restored, and the I/O thread is woken by that only if bytes are waiting. A consumer
//! of messages (the dispatch thread, a thread in `recv*`) instead keeps the socket while it
//! works on what it read, until its next wait or until someone takes it back
//! ([`read_for_consumer`]).
//!
//! A caller waiting for a reply (not the dispatch thread) checks the socket without
//! sleeping for up to its connection's budget before it sleeps in `poll`
//! ([`ConnectOptions::spin_wait`](crate::ConnectOptions::spin_wait)): on an idle CPU the
//! wake-up alone can take longer than a broker on the same host takes to answer (a
//! virtual machine halts an idle CPU, and waking it goes through the hypervisor). A wait
//! the poll did not answer makes the connection's next 15 waits sleep at once ([`Spin`](threads::Spin)).
//!
//! The I/O thread keeps its other jobs meanwhile (requests, timers, writes): the `Io` lock
//! is held only while bytes are processed, never while the borrower sleeps. A closed or
//! failed connection is left to the I/O thread (the borrower stops reading and gives the
//! socket back); only plain TCP streams are lent (a TLS or WebSocket layer may hold
//! decrypted bytes that `poll` cannot see).

use std::cell::Cell;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::connection::ack_now;
use super::event_loop::{next_read_chunk, read_into};
use super::transmit::Mode;
use super::{Io, SOCK};
use crate::client::threads;
use crate::client::Shared;
use crate::client::STATE_CONNECTED;
use crate::transport::Stream;

/// Longest a waiting thread reads for itself in one go; then it sleeps on the queue as
/// before and the I/O thread reads. Round trips are far shorter; an idle wait pays one
/// extra wake-up per call, and anything the borrower might not see (there should be
/// nothing: a closed stream wakes its `poll`) is late by at most this.
const LEND_MAX: Duration = Duration::from_millis(50);

/// How long a consumer resuming its lend after a stream of messages sleeps before it waits
/// on the socket, when nothing has come while it worked ([`read_for_consumer`]).
const STREAM_NAP: Duration = Duration::from_micros(30);

/// What a lend does once `ready()` ([`read_for_consumer`]): keeps the socket, idle, while
/// the consumer works (`keep`); sleeps [`STREAM_NAP`] before its first wait (`nap`).
#[derive(Clone, Copy)]
struct Keeping {
    keep: bool,
    nap: bool,
}

impl Keeping {
    const NO: Keeping = Keeping {
        keep: false,
        nap: false,
    };
}

/// Who waits on a lent socket, and so whether it polls before it sleeps
/// ([`ConnectOptions::spin_wait`](crate::ConnectOptions::spin_wait)).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wait {
    /// A caller waiting for a reply or a message (subscribe, a token, a receive): polls
    /// for the connection's budget first.
    Reply,
    /// The dispatch thread between callbacks: sleeps at once (it waits for a stream of
    /// messages, not a reply, and polling would take CPU from the callbacks' producers).
    Stream,
}

/// Reads the socket on the calling thread until `ready()` (checked after each read),
/// `deadline`, or [`LEND_MAX`]. Returns false, doing nothing, when the socket cannot be
/// lent now (the I/O thread is awake or busy, another thread has it, not connected, a
/// write or back-pressure pending, not plain TCP); true when the calling thread took the
/// socket (acknowledgements made by the application were then sent as well).
pub(crate) fn read_while_waiting(
    io: &Mutex<Io>,
    deadline: Option<Instant>,
    ready: &dyn Fn() -> bool,
    wait: Wait,
) -> bool {
    if deadline.is_some_and(|d| d <= Instant::now()) {
        // A zero timeout (`MQTTClient_receive(.., 0)`): nothing to wait for.
        return false;
    }
    let Some((g, lent)) = borrow(io) else {
        return false;
    };
    read_lent_until(io, g, lent, deadline, ready, wait, Keeping::NO);
    true
}

/// A thread waiting for a delivery token without reading the socket itself (a consumer
/// had it, or the I/O thread was awake): while this lives, a consumer does not keep the
/// socket unread while it works ([`read_for_consumer`]), and a lend kept when this is made
/// goes back to the I/O thread, so the acknowledgement is read when it comes. Without it,
/// a receiving thread that got its last message and called `recv` no more kept the
/// socket, the I/O thread slept until the keepalive (a lend was out: no quiet check, no
/// shed), and the waiting publisher got its acknowledgement only then
/// (`tests/read_while_waiting.rs`; tests/lifetime.rs's sixteen threads, one run in eight
/// under load). The `Io` is locked only when a lend is kept (`Shared::idle_lend`), not
/// in every such wait: a window of publishes whose tokens are awaited while the I/O
/// thread is awake would take that lock once per message.
pub(crate) struct ReplyWaiter<'a>(&'a Shared);

impl<'a> ReplyWaiter<'a> {
    pub(crate) fn new(io: &Mutex<Io>, shared: &'a Shared) -> Self {
        // Counted before looking: a consumer keeping the socket announces it before it
        // reads the count, so either it sees this waiter (and does not keep the socket) or
        // this sees its announcement and takes the socket back.
        shared.reply_waiters.fetch_add(1, Ordering::SeqCst);
        if shared.idle_lend.load(Ordering::SeqCst) {
            io.lock()
                .unwrap_or_else(|e| e.into_inner())
                .reclaim_idle_lend();
        }
        ReplyWaiter(shared)
    }
}

impl Drop for ReplyWaiter<'_> {
    fn drop(&mut self) {
        self.0.reply_waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Takes the socket for the calling thread if it can be lent now (the I/O thread sleeps,
/// nobody else reads it, connected over plain TCP, nothing to write): the locked `Io` and
/// whether its read interest was taken away from the I/O thread's epoll. A consumer that
/// keeps the socket while it works gives it up to the caller (who may be that consumer,
/// waiting inside a callback).
fn borrow(io: &Mutex<Io>) -> Option<(MutexGuard<'_, Io>, bool)> {
    let mut g = io.try_lock().ok()?;
    g.reclaim_idle_lend();
    if !g.shared.parked.load(Ordering::SeqCst) || !g.can_lend() {
        return None;
    }
    // The socket first, then the acknowledgements this thread owes (a reply to the publish
    // just made may be close behind: it must find the socket lent, or the I/O thread wakes).
    let lent = g.set_interest(false, false);
    Some((g, lent))
}

/// A consumer's wait for work (`ready()`: its queue has an item): the dispatch thread
/// between callbacks, a thread in `Messages::recv*` (`MQTTClient_receive`). As
/// [`read_while_waiting`], except that when what it read gave it work it keeps the socket
/// while it does that work, instead of giving it back at once (the `Io` marked
/// `lent_idle`), and its next call resumes the lend. Given back, in a stream of messages
/// the socket woke the I/O thread for the next bytes while the consumer was busy, and the
/// I/O thread woke the consumer to hand them over: about one context switch per message
/// for each of the two threads on this VM, where a thread that reads and runs the
/// callbacks itself (libmosquitto's) has almost none.
///
/// Nobody reads the socket while the consumer works: what comes meanwhile waits in the
/// kernel's buffer for the next read (in a stream, that read takes it all at once). Who
/// needs it read takes the socket back (`Io::reclaim_idle_lend`): the I/O thread at each
/// turn (a timer such as the keepalive or the quiet check, a request, a write), a thread
/// about to wait for a reply; the peer's close still wakes the I/O thread. A consumer that
/// took longer than [`KEEP_WHILE_QUICK`] over its last work does not keep the socket for
/// the next, so slow callbacks or a slow application leave it unread at most once.
///
/// After a read that brought a stream of messages (two or more), a resumed lend sleeps
/// [`STREAM_NAP`] if nothing came while the consumer worked, before it waits on the socket:
/// the next messages gather and come in one read, and the server's writes meanwhile wake
/// nobody. Waking a sleeping reader is the sender's cost (`sock_def_readable`: 7 % of
/// mosquitto's time in an end-to-end stream on this VM), and on a 2-core machine the
/// server is what a stream waits for. A message may then wait up to [`STREAM_NAP`] longer,
/// only when messages come closer together than that.
///
/// The state between calls is the calling thread's ([`LAST_LEND`]). Returns whether this
/// thread read the socket (and so sent the acknowledgements it owed).
pub(crate) fn read_for_consumer(
    io: &Mutex<Io>,
    deadline: Option<Instant>,
    ready: &dyn Fn() -> bool,
    wait: Wait,
) -> bool {
    if deadline.is_some_and(|d| d <= Instant::now()) {
        return false;
    }
    let me = io as *const Mutex<Io> as usize;
    let last = LAST_LEND.with(|l| l.get()).filter(|l| l.io == me);
    LAST_LEND.with(|l| l.set(None));
    let quick = last.is_none_or(|l| l.ended.elapsed() < KEEP_WHILE_QUICK);
    let mut resumed = None;
    if last.is_some_and(|l| l.kept) {
        let mut g = io.lock().unwrap_or_else(|e| e.into_inner());
        if g.lent && g.lent_idle {
            g.lent_idle = false;
            g.shared.idle_lend.store(false, Ordering::SeqCst);
            if quick {
                let nap = last.is_some_and(|l| l.stream);
                resumed = Some((g, true, nap));
            } else {
                g.give_socket_back();
            }
        }
    }
    let (g, lent, nap) = match resumed {
        Some(r) => r,
        None => {
            let Some((g, lent)) = borrow(io) else {
                return false;
            };
            (g, lent, false)
        }
    };
    let out = read_lent_until(
        io,
        g,
        lent,
        deadline,
        ready,
        wait,
        Keeping { keep: quick, nap },
    );
    if out.ready {
        LAST_LEND.with(|l| {
            l.set(Some(LastLend {
                io: me,
                ended: Instant::now(),
                kept: out.kept,
                stream: out.stream,
            }))
        });
    }
    true
}

/// Work taking longer than this after a consumer's lend makes its next lend give the
/// socket back as soon as it has work ([`read_for_consumer`]).
const KEEP_WHILE_QUICK: Duration = Duration::from_millis(2);

/// How a thread's last lend ([`read_for_consumer`]) ended with work for it.
#[derive(Clone, Copy)]
struct LastLend {
    /// The client's `Io` (its address).
    io: usize,
    /// When.
    ended: Instant,
    /// The socket stays lent to it, idle.
    kept: bool,
    /// It read two messages or more.
    stream: bool,
}

thread_local! {
    static LAST_LEND: Cell<Option<LastLend>> = const { Cell::new(None) };
}

/// Sends a request on the calling thread while the I/O thread sleeps and reads its reply
/// there, as [`read_while_waiting`] does, with the socket taken from the I/O thread's poll
/// before the request goes out: a reply that comes back before this thread is in its own
/// `poll` must not wake the I/O thread instead. `send` writes `item` (or gives it back
/// without writing: `Err`, returned as it is, the socket given back); `ready()` says when
/// the reply is in. `Err(item)` untouched when the I/O work must take the request (the
/// I/O thread is awake or busy, another thread has the socket). When the socket cannot be
/// lent (not plain TCP, the deadline passed), `item` is sent without reading.
pub(crate) fn send_and_read<R>(
    io: &Mutex<Io>,
    deadline: Option<Instant>,
    ready: &dyn Fn() -> bool,
    item: R,
    send: impl FnOnce(&mut Io, R) -> Result<(), R>,
) -> Result<(), R> {
    let Ok(mut g) = io.try_lock() else {
        return Err(item);
    };
    g.reclaim_idle_lend();
    if !g.shared.parked.load(Ordering::SeqCst) {
        return Err(item);
    }
    if deadline.is_some_and(|d| d <= Instant::now()) || !g.can_lend() {
        return send(&mut g, item);
    }
    let lent = g.set_interest(false, false);
    let sent = send(&mut g, item);
    if sent.is_err() || g.write_interest {
        // Not sent, or not all of it (the socket's buffer is full): the I/O thread has
        // the socket back, and writes the rest.
        if lent {
            g.give_socket_back();
        }
        return sent;
    }
    read_lent_until(io, g, lent, deadline, ready, Wait::Reply, Keeping::NO);
    Ok(())
}

/// How a lend ended.
struct Ended {
    /// `ready()` ended it.
    ready: bool,
    /// The socket stays lent, idle ([`read_for_consumer`]).
    kept: bool,
    /// It read two messages or more (a stream: the next lend naps).
    stream: bool,
}

/// The lending loop: `g` holds the `Io`, whose read interest was taken away if `lent`.
/// Sends the acknowledgements this thread owes, then reads until `ready()`, `deadline` or
/// [`LEND_MAX`], and gives the socket back; except when `keep` and `ready()` ended it:
/// then the socket stays lent, marked idle ([`read_for_consumer`]).
fn read_lent_until<'a>(
    io: &'a Mutex<Io>,
    mut g: MutexGuard<'a, Io>,
    lent: bool,
    deadline: Option<Instant>,
    ready: &dyn Fn() -> bool,
    wait: Wait,
    keeping: Keeping,
) -> Ended {
    let Keeping { keep, mut nap } = keeping;
    // A stream waits as the dispatch thread does: no polling before it sleeps (the nap
    // gathers the next messages instead).
    let wait = if nap { Wait::Stream } else { wait };
    let start = Instant::now();
    let end = deadline.map_or(start + LEND_MAX, |d| d.min(start + LEND_MAX));
    g.lent = lent;
    g.take_acks();
    let _ = g.transmit(start, Mode::Caller);
    let received = g.shared.received.load(Ordering::Relaxed);
    let mut ended = Ended {
        ready: false,
        kept: false,
        stream: false,
    };
    if !lent {
        return ended;
    }
    let fd = g.stream.as_ref().map_or(-1, |s| s.as_raw_fd());
    loop {
        let now = Instant::now();
        // Ready before the first read: a request the session refused has its reply.
        if ready() {
            ended.ready = true;
            let now_received = g.shared.received.load(Ordering::Relaxed);
            ended.stream = now_received.wrapping_sub(received) >= 2;
            if keep && g.can_keep_idle(fd) {
                // Announced before the waiters are counted, as a waiter counts itself before
                // it looks ([`ReplyWaiter`]): one of the two sees the other.
                g.shared.idle_lend.store(true, Ordering::SeqCst);
                if g.shared.reply_waiters.load(Ordering::SeqCst) == 0 {
                    g.lent_idle = true;
                    ended.kept = true;
                    return ended;
                }
                g.shared.idle_lend.store(false, Ordering::SeqCst);
            }
            break;
        }
        if now >= end {
            break;
        }
        let spin_until = match wait {
            Wait::Reply => g.spin.turn().map(|budget| (now + budget).min(end)),
            Wait::Stream => None,
        };
        drop(g);
        if std::mem::take(&mut nap) && !readable_now(fd) {
            // A stream of messages: let the next ones gather (see `read_for_consumer`).
            std::thread::sleep(STREAM_NAP);
        }
        let hit = spin_until.and_then(|until| spin_readable(fd, until));
        let polled =
            hit == Some(true) || poll_readable(fd, end.saturating_duration_since(Instant::now()));
        g = io.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = hit {
            g.spin.record(hit);
        }
        if !polled || g.stream.as_ref().map(|s| s.as_raw_fd()) != Some(fd) {
            break;
        }
        let now = Instant::now();
        let go_on = g.read_lent(now);
        let _ = g.transmit(now, Mode::Caller);
        if std::mem::take(&mut g.ack_soon) {
            if let Some(stream) = g.stream.as_ref() {
                ack_now(stream);
            }
        }
        if g.waits_on_input() {
            // What was read may be what the I/O thread waits for (room for queued
            // publishes, the end of a disconnect): it takes a turn (it does not read).
            g.shared.wake();
        }
        if !go_on {
            break;
        }
    }
    g.give_socket_back();
    ended
}

impl Io {
    /// Ends a lend: the I/O thread's epoll reports reads again (and writes, if bytes
    /// wait). A connection lost meanwhile wakes the I/O thread instead: it has a reconnect
    /// to schedule or a loss to handle.
    fn give_socket_back(&mut self) {
        self.lent = false;
        self.lent_idle = false;
        self.shared.idle_lend.store(false, Ordering::SeqCst);
        let pending_write = self.wpos != self.wbuf.len();
        if self.stream.is_none() || !self.set_interest(true, pending_write) {
            self.shared.wake();
        }
    }

    /// Takes the socket back from a consumer that keeps it while it works
    /// ([`read_for_consumer`]): whoever calls this needs the socket read now (the I/O
    /// thread at each turn, a thread about to wait for a reply).
    pub(super) fn reclaim_idle_lend(&mut self) {
        if self.lent_idle {
            self.give_socket_back();
        }
    }

    /// A consumer that has just read work for itself may keep the socket while it does
    /// that work: the connection is still the one it borrowed and still lendable
    /// ([`Io::connection_lendable`]), and the I/O thread waits for no input.
    fn can_keep_idle(&self, fd: RawFd) -> bool {
        self.lent
            && self.stream.as_ref().map(|s| s.as_raw_fd()) == Some(fd)
            && self.connection_lendable()
            && !self.waits_on_input()
    }

    /// The I/O thread has work that input read by a borrower can unblock: publish requests
    /// waiting for room, control requests, a disconnect waiting for in-flight messages,
    /// messages beyond the incoming capacity.
    fn waits_on_input(&self) -> bool {
        !self.shared.publishes.is_empty()
            || !self.shared.ctl.is_empty()
            || self.t.disconnecting.is_some()
            || !self.t.overflow.is_empty()
    }

    fn can_lend(&self) -> bool {
        cfg!(any(target_os = "linux", target_os = "android"))
            && !self.lent
            // A dormant client has no poll to take the read interest from; its first event
            // goes through the watcher.
            && self.epoll_fd.is_some()
            && matches!(self.stream, Some(Stream::Tcp(_)))
            && self.connection_lendable()
    }

    /// What a borrower needs to start reading or to keep the socket ([`Io::can_lend`],
    /// [`Io::can_keep_idle`]): connected and not closing, nothing left to write (the I/O
    /// thread's epoll then reports writes, and it must read what they bring), reading not
    /// paused for back-pressure.
    fn connection_lendable(&self) -> bool {
        !self.shutdown
            && self.t.disconnecting.is_none()
            && self.shared.state.load(Ordering::Acquire) == STATE_CONNECTED
            && self.wpos == self.wbuf.len()
            && !self.paused()
    }

    /// Reads what the socket holds, as the I/O thread's `read` does, but leaves end of
    /// stream and errors to the I/O thread. False: stop borrowing.
    fn read_lent(&mut self, now: Instant) -> bool {
        loop {
            if self.paused() {
                return false;
            }
            let chunk = self.read_chunk;
            let Some(stream) = self.stream.as_mut() else {
                return false;
            };
            match read_into(stream, &mut self.rbuf, chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.read_chunk = next_read_chunk(chunk, n);
                    if let Err(e) = self.session.handle_input(now, &mut self.rbuf) {
                        self.protocol_failure(e);
                        return false;
                    }
                    self.process_events();
                    if self.stream.is_none() {
                        return false;
                    }
                    // A short read emptied the socket: no second call just to hear
                    // WouldBlock (bytes arriving later wake `poll`, or the I/O thread once
                    // its read interest is back).
                    if n < chunk {
                        self.readable = false;
                        return true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Sets what the I/O thread's epoll reports for the socket: reads unless lent, writes
    /// while unsent bytes wait. mio cannot register an empty interest, and re-registering
    /// `WRITABLE` on a writable socket reports it at once (a wake-up for nothing), hence
    /// `epoll_ctl` directly, with mio's flags and token.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn set_interest(&mut self, read: bool, write: bool) -> bool {
        let Some(fd) = self.stream.as_ref().map(|s| s.as_raw_fd()) else {
            return false;
        };
        let Some(epfd) = self.epoll_fd else {
            return false;
        };
        // The peer's close is reported to the I/O thread even while the socket is lent: a
        // consumer busy with what it read (`read_for_consumer`) reads nothing meanwhile,
        // and the I/O thread, woken, takes the socket back and sees the end (errors and
        // hang-ups are reported whatever the mask says).
        let mut bits = libc::EPOLLET | libc::EPOLLRDHUP;
        if read {
            bits |= libc::EPOLLIN;
        }
        if write {
            bits |= libc::EPOLLOUT;
        }
        let mut ev = libc::epoll_event {
            events: bits as u32,
            u64: SOCK.0 as u64,
        };
        // SAFETY: both descriptors are open (the poll's epoll instance, kept while `epoll_fd`
        // is set, and the stream
        // that `self` owns, registered with it); `ev` is a live local the kernel only reads.
        let r =
            unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, std::ptr::addr_of_mut!(ev)) };
        if r == 0 {
            self.write_interest = write;
        }
        r == 0
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn set_interest(&mut self, _read: bool, _write: bool) -> bool {
        false
    }

    /// Unsent bytes wait in the write buffer: make sure epoll reports the socket writable
    /// (a lend leaves only the read interest behind).
    pub(super) fn want_writable(&mut self) {
        if !self.write_interest && self.stream.is_some() {
            let read = !self.lent;
            self.set_interest(read, true);
        }
    }
}

/// Waits until `fd` is readable (or closed) or `timeout`; false if `poll` failed.
fn poll_readable(fd: RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    // SAFETY: one pollfd, a live local; `fd` may have been closed meanwhile (then poll
    // reports it, or waits on whatever now has that number, at most `timeout`, and the
    // caller sees the changed stream under the lock).
    let r = unsafe { libc::poll(std::ptr::addr_of_mut!(p), 1, ms) };
    r >= 0 || std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
}

/// Checks `fd` for input without sleeping until it has some (`Some(true)`) or `until`
/// (`Some(false)`); `None`, at once, when enough threads poll already
/// ([`threads::poll_until`]).
pub(super) fn spin_readable(fd: RawFd, until: Instant) -> Option<bool> {
    threads::poll_until(until, || readable_now(fd))
}

/// Whether `fd` has input (or is closed, or `poll` failed: the read under the lock tells
/// which), without sleeping.
fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, a live local; a zero timeout never sleeps. `fd` may have been
    // closed meanwhile: poll then reports it (or whatever has the number now), and the
    // caller sees the changed stream under the lock.
    unsafe { libc::poll(std::ptr::addr_of_mut!(p), 1, 0) != 0 }
}
