//! How an I/O thread sleeps, and how it is woken.
//!
//! A busy connection sleeps in its own `epoll` (`mio::Poll`) with an `eventfd` waker: the
//! socket and the requests wake it directly. A connection quiet for [`super::SHED_AFTER`]
//! gives both back and sleeps on a condition variable instead; its socket is watched by one
//! process-wide watcher thread, which rings the condition variable when the socket has
//! something to read. An idle client then holds one file descriptor (its socket) instead
//! of three, so 10 000 idle clients fit in a process limited to 20 000 descriptors, and a
//! client waiting to reconnect holds none. The first event after such a sleep pays one
//! hand-over (watcher thread, then the client's thread) and the re-creation of its poll.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Token, Waker};

/// The wake-up of one I/O thread, shared with everyone who may need to wake it.
#[derive(Debug, Default)]
pub(crate) struct Sleeper {
    state: Mutex<SleepState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct SleepState {
    /// Set while the thread sleeps in its poll; `None` while it sleeps on the condition
    /// variable.
    waker: Option<Waker>,
    /// A ring for the condition-variable sleep not yet seen.
    rung: bool,
}

impl Sleeper {
    fn lock(&self) -> MutexGuard<'_, SleepState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the thread, whichever way it sleeps (or makes its next sleep return at once).
    pub(crate) fn ring(&self) {
        let mut g = self.lock();
        if let Some(w) = g.waker.as_ref() {
            if let Err(e) = w.wake() {
                log::warn!("waking the I/O thread failed: {e}");
            }
        } else {
            g.rung = true;
            self.cv.notify_one();
        }
    }

    /// From now on rings go to `waker` (the thread is about to sleep in its poll).
    pub(super) fn use_waker(&self, waker: Waker) {
        self.lock().waker = Some(waker);
    }

    /// From now on rings go to the condition variable; returns the waker given up.
    pub(super) fn use_condvar(&self) -> Option<Waker> {
        let mut g = self.lock();
        g.rung = false;
        g.waker.take()
    }

    /// Sleeps on the condition variable until rung or `timeout` has passed.
    pub(super) fn sleep(&self, timeout: Option<Duration>) {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = self.lock();
        while !g.rung {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        g.rung = false;
    }
}

/// A new poll with its waker registered, the socket (if any) registered edge-triggered.
pub(super) fn new_poll(
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

/// The process-wide watcher of idle sockets.
struct Watcher {
    registry: mio::Registry,
    /// Who to ring for each registration key.
    owners: Mutex<HashMap<usize, Weak<Sleeper>>>,
    next_key: AtomicUsize,
}

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
        owners: Mutex::new(HashMap::new()),
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

fn watch(mut poll: Poll, w: Arc<Watcher>) {
    let mut events = mio::Events::with_capacity(256);
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Without the watcher idle clients would sleep until their next timer:
                // wake them all; they go back to polling themselves.
                log::error!("the idle-socket watcher failed: {e}");
                let owners =
                    std::mem::take(&mut *w.owners.lock().unwrap_or_else(|e| e.into_inner()));
                for s in owners.values().filter_map(Weak::upgrade) {
                    s.ring();
                }
                return;
            }
        }
        let owners = w.owners.lock().unwrap_or_else(|e| e.into_inner());
        for ev in events.iter() {
            if let Some(s) = owners.get(&ev.token().0).and_then(Weak::upgrade) {
                s.ring();
            }
        }
    }
}

/// A socket handed to the watcher; [`Watched::release`] takes it back.
pub(super) struct Watched {
    key: usize,
    fd: RawFd,
    watcher: Arc<Watcher>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").field("fd", &self.fd).finish()
    }
}

/// Hands `fd` to the watcher: `sleeper` is rung when it becomes readable (or closed). A
/// socket already readable rings at once.
pub(super) fn watch_socket(fd: RawFd, sleeper: &Arc<Sleeper>) -> std::io::Result<Watched> {
    let w = watcher()?;
    let key = w.next_key.fetch_add(1, Ordering::Relaxed);
    w.owners
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, Arc::downgrade(sleeper));
    if let Err(e) = w
        .registry
        .register(&mut SourceFd(&fd), Token(key), Interest::READABLE)
    {
        w.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        return Err(e);
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
        let _ = w.registry.deregister(&mut SourceFd(&self.fd));
        w.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
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
            None => {
                self.poll = Some(new_poll(
                    &self.shared.sleeper,
                    Some(fd),
                    super::WAKE,
                    super::SOCK,
                )?);
                Ok(())
            }
        }
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
        let quiet = self.trimmed
            && self.poll.is_some()
            && self.wpos == self.wbuf.len()
            && self.overflow.is_empty()
            && self.disconnecting.is_none()
            && !self.readable;
        quiet.then_some(self.quiet_at + super::SHED_AFTER)
    }

    /// Gives back the poll and its waker; the socket, if any, goes to the watcher.
    pub(super) fn shed(&mut self) {
        if let Some(stream) = self.stream.as_ref() {
            match watch_socket(stream.as_raw_fd(), &self.shared.sleeper) {
                Ok(w) => self.watched = Some(w),
                Err(e) => {
                    log::debug!("idle sleep without a poll refused: {e}");
                    return;
                }
            }
        }
        // Rings go to the condition variable before the waker goes.
        drop(self.shared.sleeper.use_condvar());
        self.poll = None;
    }

    /// After a sleep without a poll: a poll again (the wake-up, whatever it was, counts as
    /// activity, so the connection stays with its poll for a while).
    pub(super) fn resume(&mut self) {
        if self.poll.is_some() {
            return;
        }
        if let Some(w) = self.watched.take() {
            w.release();
        }
        let fd = self.stream.as_ref().map(|s| s.as_raw_fd());
        match new_poll(&self.shared.sleeper, fd, super::WAKE, super::SOCK) {
            Ok(p) => {
                self.poll = Some(p);
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
