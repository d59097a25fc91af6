//! How a client's I/O work sleeps, and how it is woken.
//!
//! A busy connection's I/O thread sleeps in its own `epoll` (`mio::Poll`) with an
//! `eventfd` waker: the socket and the requests wake it directly. A connection quiet for
//! [`super::SHED_AFTER`] goes **dormant**: it gives back its poll and waker, its socket and
//! its next timer (keepalive, reconnect) go to one process-wide watcher thread, and its
//! thread returns to the pool (`threads`). Whatever would have woken the thread (the socket
//! turning readable, the timer, a request) then starts a new I/O job on a pool thread, which
//! makes a poll again and carries on. A dormant client holds one file descriptor (its
//! socket; none while it waits to reconnect) and no thread; its memory is its state.
//!
//! The first event after a dormant spell pays one hand-over (watcher, then a pool thread,
//! created if none is idle) and four system calls for the new poll; busy connections never
//! go dormant. At most one I/O job runs per client: `Sleeper` decides under its lock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token, Waker};

use super::Io;
use crate::client::threads::{self, Worker};

/// I/O jobs running now, process-wide: each job is counted while it runs (`run`,
/// `run_here`); a running job reads the count without `getpid`.
pub(super) static AWAKE: threads::ProcessCount = threads::ProcessCount::new();

/// I/O jobs awake at once beyond which a quiet one goes dormant right after its turn
/// (`Io::shed_if_crowded`).
pub(super) const CROWDED: u32 = 32;

/// Wakes a client's I/O work, and starts it again when it is dormant.
#[derive(Debug, Default)]
pub(crate) struct Sleeper {
    state: Mutex<SleepState>,
    /// The client's I/O state, for a new job (and for threads that read while waiting).
    io: OnceLock<Weak<Mutex<Io>>>,
    /// Signalled when a job is started or the I/O work has finished (`join`).
    cv: Condvar,
}

#[derive(Default)]
struct SleepState {
    /// Set while a job sleeps (or may sleep) in its poll.
    waker: Option<Waker>,
    /// No job is running: a ring starts one.
    dormant: bool,
    /// A ring came while a job ran without a poll: it must not go dormant now.
    rung: bool,
    /// The job last started (joined by `join`).
    worker: Option<Worker>,
    /// The I/O work has ended for good (shut down, or the job panicked).
    done: bool,
}

impl std::fmt::Debug for SleepState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SleepState")
            .field("dormant", &self.dormant)
            .field("done", &self.done)
            .finish()
    }
}

impl Sleeper {
    fn lock(&self) -> MutexGuard<'_, SleepState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the I/O work: through the waker of its poll, by starting a job when it is
    /// dormant, or (a job runs without a poll) by keeping that job from going dormant.
    pub(crate) fn ring(&self) {
        let mut g = self.lock();
        if let Some(w) = g.waker.as_ref() {
            if let Err(e) = w.wake() {
                log::warn!("waking the I/O thread failed: {e}");
            }
        } else if g.dormant {
            self.start_job(&mut g);
        } else {
            g.rung = true;
        }
    }

    /// As [`ring`](Self::ring), from a thread that then waits for the outcome of its
    /// request (a disconnect, the shutdown): a dormant client's first turn runs on this
    /// thread instead of a pool thread, and most often ends there (nothing left to wait
    /// for: the client is dormant again or finished), which saves two hand-overs. A turn
    /// that leaves something to wait for hands the work to a pool job
    /// (`event_loop::run_here`).
    pub(crate) fn ring_here(&self) {
        let mut g = self.lock();
        if g.waker.is_some() || !g.dormant {
            drop(g);
            self.ring();
            return;
        }
        let Some(io) = self.io() else {
            return;
        };
        // This thread is the job now: rings until it ends set `rung` (see `go_dormant`).
        g.dormant = false;
        drop(g);
        super::event_loop::run_here(io);
    }

    /// A turn on a ringing thread (`ring_here`) left work for a job.
    pub(super) fn continue_in_job(&self) {
        let mut g = self.lock();
        self.start_job(&mut g);
        if g.worker.is_none() {
            // Could not start one: dormant again, the next ring tries (as `start_job`).
            g.dormant = true;
        }
    }

    fn start_job(&self, g: &mut SleepState) {
        let Some(io) = self.io() else {
            return;
        };
        match threads::spawn(c"mqttsync-io", move || super::run(io)) {
            Ok(w) => {
                g.dormant = false;
                g.worker = Some(w);
                self.cv.notify_all();
            }
            Err(e) => {
                // Stays dormant; the next ring (a request, the watcher's timer or socket)
                // tries again.
                log::error!("starting the I/O thread failed: {e}");
            }
        }
    }

    /// The first job, started by `start`.
    pub(super) fn first_job(&self, io: &Arc<Mutex<Io>>) -> std::io::Result<()> {
        let _ = self.io.set(Arc::downgrade(io));
        let mut g = self.lock();
        let io = io.clone();
        g.worker = Some(threads::spawn(c"mqttsync-io", move || super::run(io))?);
        Ok(())
    }

    /// Instead of the first job: the client starts dormant (`Io::start_dormant` gave its
    /// socket and timer to the watcher). False when a ring came meanwhile: then the caller
    /// starts the first job.
    pub(super) fn first_dormant(&self, io: &Arc<Mutex<Io>>) -> bool {
        let _ = self.io.set(Arc::downgrade(io));
        let mut g = self.lock();
        if std::mem::take(&mut g.rung) {
            return false;
        }
        g.dormant = true;
        true
    }

    /// The client's I/O state, while the client exists.
    pub(crate) fn io(&self) -> Option<Arc<Mutex<Io>>> {
        self.io.get().and_then(Weak::upgrade)
    }

    /// From now on rings go to `waker` (the job is about to sleep in its poll).
    pub(super) fn use_waker(&self, waker: Waker) {
        let mut g = self.lock();
        g.waker = Some(waker);
        g.rung = false;
    }

    /// The job gives its poll up; returns the waker.
    pub(super) fn drop_waker(&self) -> Option<Waker> {
        let mut g = self.lock();
        g.rung = false;
        g.waker.take()
    }

    /// The job (without a poll, with nothing to do) ends here unless a ring came since it
    /// gave its poll up: `true` = dormant now, the job must return.
    pub(super) fn go_dormant(&self) -> bool {
        let mut g = self.lock();
        if std::mem::take(&mut g.rung) {
            return false;
        }
        g.dormant = true;
        true
    }

    /// The I/O work has ended for good.
    pub(super) fn finished(&self) {
        self.lock().done = true;
        self.cv.notify_all();
    }

    /// Waits until the I/O work has ended for good (the caller asked it to shut down and
    /// rang). Joins each job in turn.
    pub(crate) fn join(&self) {
        let mut g = self.lock();
        loop {
            if let Some(w) = g.worker.take() {
                drop(g);
                w.join();
                g = self.lock();
                continue;
            }
            if g.done {
                return;
            }
            if g.dormant {
                // Cannot happen with the shutdown request queued (the job checks for
                // requests before it goes dormant); start one to be sure.
                self.start_job(&mut g);
                if g.worker.is_none() {
                    return;
                }
                continue;
            }
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A new poll with its waker registered, the socket (if any) registered edge-triggered.
fn new_poll(
    sleeper: &Sleeper,
    socket: Option<RawFd>,
    wake: Token,
    sock: Token,
) -> std::io::Result<Poll> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), wake)?;
    if let Some(fd) = socket {
        poll.registry().register(
            &mut SourceFd(&fd),
            sock,
            Interest::READABLE | Interest::WRITABLE,
        )?;
    }
    sleeper.use_waker(waker);
    Ok(poll)
}

/// The process-wide watcher of dormant clients: their sockets and their timers.
struct Watcher {
    registry: mio::Registry,
    /// Wakes the watcher when a timer earlier than its current sleep comes.
    waker: Waker,
    inner: Mutex<WatchState>,
    next_key: AtomicUsize,
}

#[derive(Default)]
struct WatchState {
    /// Who to ring for each registration key.
    owners: HashMap<usize, Weak<Sleeper>>,
    /// Deadlines, earliest first (entries of released keys are skipped).
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
}

/// The watcher's own waker token (registration keys start at 1).
const WATCHER_WAKE: Token = Token(0);

/// The watcher, and the process it was started in (a forked child starts its own: threads
/// do not survive `fork`).
static WATCHER: Mutex<Option<(u32, Arc<Watcher>)>> = Mutex::new(None);

fn watcher() -> std::io::Result<Arc<Watcher>> {
    let mut g = WATCHER.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some((p, w)) = g.as_ref() {
        if *p == pid {
            return Ok(w.clone());
        }
    }
    let poll = Poll::new()?;
    let w = Arc::new(Watcher {
        registry: poll.registry().try_clone()?,
        waker: Waker::new(poll.registry(), WATCHER_WAKE)?,
        inner: Mutex::new(WatchState::default()),
        next_key: AtomicUsize::new(1),
    });
    let for_thread = w.clone();
    std::thread::Builder::new()
        .name("mqttsync-idle".into())
        .stack_size(64 * 1024)
        .spawn(move || watch(poll, for_thread))?;
    *g = Some((pid, w.clone()));
    Ok(w)
}

impl Watcher {
    fn lock(&self) -> MutexGuard<'_, WatchState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn watch(mut poll: Poll, w: Arc<Watcher>) {
    let mut events = mio::Events::with_capacity(256);
    let mut due = Vec::new();
    loop {
        let timeout = w
            .lock()
            .timers
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Without the watcher dormant clients would never wake: wake them all, and
                // stop (they keep their own polls from then on, see `shed`).
                log::error!("the watcher of idle clients failed: {e}");
                let st = std::mem::take(&mut *w.lock());
                for s in st.owners.values().filter_map(Weak::upgrade) {
                    s.ring();
                }
                return;
            }
        }
        let now = Instant::now();
        {
            let mut st = w.lock();
            for ev in events.iter() {
                if ev.token() != WATCHER_WAKE {
                    if let Some(s) = st.owners.get(&ev.token().0).and_then(Weak::upgrade) {
                        due.push(s);
                    }
                }
            }
            while let Some(Reverse((at, key))) = st.timers.peek().copied() {
                if at > now {
                    break;
                }
                st.timers.pop();
                if let Some(s) = st.owners.get(&key).and_then(Weak::upgrade) {
                    due.push(s);
                }
            }
        }
        // Rung outside the watcher's lock: a ring may start a thread.
        for s in due.drain(..) {
            s.ring();
        }
    }
}

/// A dormant client's registration with the watcher; [`Watched::release`] ends it.
pub(super) struct Watched {
    key: usize,
    fd: Option<RawFd>,
    watcher: Arc<Watcher>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").field("fd", &self.fd).finish()
    }
}

/// Hands `fd` (if any) and the deadline (if any) to the watcher: `sleeper` is rung when the
/// socket becomes readable or closed (at once if it already is), or at the deadline.
fn watch_dormant(
    fd: Option<RawFd>,
    deadline: Option<Instant>,
    sleeper: &Arc<Sleeper>,
) -> std::io::Result<Watched> {
    let w = watcher()?;
    let key = w.next_key.fetch_add(1, Ordering::Relaxed);
    w.lock().owners.insert(key, Arc::downgrade(sleeper));
    if let Some(fd) = fd {
        if let Err(e) = w
            .registry
            .register(&mut SourceFd(&fd), Token(key), Interest::READABLE)
        {
            w.lock().owners.remove(&key);
            return Err(e);
        }
    }
    if let Some(at) = deadline {
        let mut st = w.lock();
        let earliest = st.timers.peek().is_none_or(|Reverse((t, _))| at < *t);
        st.timers.push(Reverse((at, key)));
        drop(st);
        if earliest {
            w.waker.wake()?;
        }
    }
    Ok(Watched {
        key,
        fd,
        watcher: w,
    })
}

impl Watched {
    /// Takes the socket back from the watcher (before it is polled again or closed).
    pub(super) fn release(self) {
        let w = &self.watcher;
        if let Some(fd) = self.fd {
            let _ = w.registry.deregister(&mut SourceFd(&fd));
        }
        // A timer entry left behind finds no owner and is skipped; when such entries
        // outnumber the live ones (clients that connect and close in a loop, each leaving a
        // keepalive deadline), they are dropped in one pass.
        let mut st = w.lock();
        let WatchState { owners, timers } = &mut *st;
        owners.remove(&self.key);
        if timers.len() > 2 * owners.len() + 64 {
            timers.retain(|Reverse((_, key))| owners.contains_key(key));
        }
    }
}

impl super::Io {
    /// Registers a new connection's socket with the thread's own poll (made anew if the
    /// thread slept without one).
    pub(super) fn watch_in_own_poll(&mut self, fd: RawFd) -> std::io::Result<()> {
        if let Some(w) = self.watched.take() {
            w.release();
        }
        match self.poll.as_ref() {
            Some(p) => p.registry().register(
                &mut SourceFd(&fd),
                super::SOCK,
                Interest::READABLE | Interest::WRITABLE,
            ),
            // The first connect: the poll, if one is needed, comes after it (`start`).
            None if self.first_connect => Ok(()),
            None => self.make_poll(Some(fd)),
        }
    }

    /// Makes the thread's poll (its waker registered, `socket` if any edge-triggered for
    /// reads and writes) and records its descriptor for borrowers (`lend`).
    pub(super) fn make_poll(&mut self, socket: Option<RawFd>) -> std::io::Result<()> {
        let p = new_poll(&self.shared.sleeper, socket, super::WAKE, super::SOCK)?;
        self.epoll_fd = Some(p.as_raw_fd());
        self.poll = Some(p);
        self.write_interest = true;
        Ok(())
    }

    /// Takes a socket about to be closed out of whatever watches it.
    pub(super) fn unwatch(&mut self, fd: RawFd) {
        if let Some(w) = self.watched.take() {
            w.release();
        }
        if let Some(p) = self.poll.as_ref() {
            let _ = p.registry().deregister(&mut SourceFd(&fd));
        }
    }

    /// When the connection will have been quiet long enough to sleep without its own poll
    /// (`None`: not quiet, or already without it).
    pub(super) fn shed_at(&self) -> Option<Instant> {
        (self.trimmed && self.nothing_in_hand()).then_some(self.quiet_at + super::SHED_AFTER)
    }

    /// The job holds nothing the watcher could not wait for: it has a poll to give back,
    /// nothing left to write or to read, no disconnect under way, no borrower.
    fn nothing_in_hand(&self) -> bool {
        self.poll.is_some()
            && self.wpos == self.wbuf.len()
            && self.t.overflow.is_empty()
            && self.t.disconnecting.is_none()
            && !self.readable
            && !self.lent
    }

    /// With more than [`CROWDED`] I/O jobs awake in the process, a job with nothing in
    /// hand and no request waiting gives its poll back now and goes dormant after this
    /// turn, instead of staying [`super::SHED_AFTER`] with its thread; unless it was woken
    /// within [`super::QUIET`] of its last dormant spell (a busy connection, as one
    /// receiving a stream: it would pay a new poll per message).
    ///
    /// A message to every one of many dormant clients (a fan-out) woke a job for each, and
    /// each stayed 350 ms: 1000 subscribers ran 1000 I/O threads at once (Paho C: one), and
    /// glibc kept their stacks and malloc arenas afterwards (+2.4 MB for good).
    pub(super) fn shed_if_crowded(&mut self, now: Instant) {
        if !self.rewoken_fast
            && self.nothing_in_hand()
            && AWAKE.count() > CROWDED
            && !self.has_requests()
        {
            self.release_idle_memory();
            self.shed(now);
        }
    }

    /// Gives back the poll and its waker; the socket (if any) and the next timer go to the
    /// watcher. The job then goes dormant unless something comes first (`go_dormant`).
    pub(super) fn shed(&mut self, now: Instant) {
        let fd = self.stream.as_ref().map(|s| s.as_raw_fd());
        let deadline = self.next_timeout(now).map(|t| now + t);
        // The waker goes first: from here on a ring (a request, or the watcher as soon as the
        // socket is registered, at once if bytes are already there) marks the job `rung`,
        // so it does not go dormant. Dropped after the registration instead, it cleared the
        // mark of a ring that came in between (or, with a waker, woke a poll about to be
        // dropped): the watcher's one edge for bytes already there was lost, and the client
        // slept on them (a resumed session's resent message, seen under load in the tests).
        let waker = self.shared.sleeper.drop_waker();
        match watch_dormant(fd, deadline, &self.shared.sleeper) {
            Ok(w) => self.watched = Some(w),
            Err(e) => {
                log::debug!("going dormant refused: {e}");
                if let Some(w) = waker {
                    // Requests that rang meanwhile are still queued: the turn sees them.
                    self.shared.sleeper.use_waker(w);
                }
                return;
            }
        }
        drop(waker);
        self.poll = None;
        self.epoll_fd = None;
    }

    /// Right after the first connect (no poll made yet): if the connection has nothing to
    /// do (plain TCP, nothing read or left to write, no request), hands the socket and the
    /// next timer to the watcher and returns true: the client starts dormant. Otherwise
    /// false, and the first job makes its poll (`resume`).
    pub(super) fn start_dormant(&mut self, now: Instant) -> bool {
        if self.poll.is_some() || !matches!(self.stream, Some(crate::transport::Stream::Tcp(_))) {
            return false;
        }
        // What the connect left to send (a restored session's messages, offline publishes)
        // goes now, on this thread; a rest (full socket) needs the job.
        let _ = self.transmit(now, super::transmit::Mode::Caller);
        if self.stream.is_none()
            || !self.rbuf.is_empty()
            || self.wpos != self.wbuf.len()
            || !self.t.overflow.is_empty()
            || self.t.disconnecting.is_some()
            || self.has_requests()
        {
            return false;
        }
        // Bytes that came after CONNACK make the watcher ring at once (an edge-triggered
        // registration reports a readable socket).
        self.readable = false;
        self.shed(now);
        if self.watched.is_some() {
            true
        } else {
            self.readable = true;
            false
        }
    }

    /// Notes when this connection went dormant, for [`resume`](Self::resume)'s busy-
    /// connection test, unless a PINGRESP is due: the wake-up it brings is expected at
    /// once and says nothing about traffic. With it counted, every client of a process
    /// that pinged while many jobs were awake (10 000 clients connected within a few
    /// seconds ping within a few seconds) came back "rewoken fast" with the PINGRESP and
    /// kept its poll and thread 350 ms: 1300-1700 threads and as many epoll descriptors
    /// every keepalive interval.
    pub(super) fn mark_dormant(&mut self) {
        self.dormant_since = (!self.session.awaiting_pingresp()).then(Instant::now);
    }

    /// After a dormant spell: a poll again (the wake-up, whatever it was, counts as
    /// activity, so the connection stays with its poll for a while).
    pub(super) fn resume(&mut self) {
        if self.poll.is_some() {
            return;
        }
        if let Some(w) = self.watched.take() {
            w.release();
        }
        self.rewoken_fast = self
            .dormant_since
            .is_some_and(|t| t.elapsed() < super::QUIET);
        if self.stream.is_none() && self.reconnect_at.is_none() {
            // Nothing to watch (disconnected for good, or closed just now): the job does
            // what it was woken for and goes dormant again, without a poll.
            return;
        }
        let fd = self.stream.as_ref().map(|s| s.as_raw_fd());
        match self.make_poll(fd) {
            Ok(()) => {
                self.trimmed = false;
                if fd.is_some() {
                    self.readable = true;
                }
            }
            Err(e) => {
                log::error!("creating the I/O thread's poll failed: {e}");
                self.lose(e.into());
            }
        }
    }
}
