//! The queue from the I/O thread to the application (messages, callback events).
//!
//! One producer (the I/O thread), any number of consumers. A consumer that finds the queue
//! empty sleeps at once on a condition variable; the producer signals only when someone
//! sleeps. (crossbeam's channels spin and then call `sched_yield` four times before they
//! sleep, on every blocking receive: on a 2-core machine that CPU belongs to the broker and
//! the other client threads, and profiles showed those calls in every receive path.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a receive returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// Nothing arrived in time (or, for `try_recv`, nothing was waiting).
    Empty,
    /// The producer is gone and the queue is empty.
    Closed,
}

struct State<T> {
    items: VecDeque<T>,
    sleepers: usize,
    closed: bool,
    /// A consumer has claimed the queue (see [`Producer::send_claim`]).
    claimed: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    cv: Condvar,
    /// Items waiting, readable without the lock.
    len: AtomicUsize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The producing side; dropping it closes the queue (consumers drain what is left, then
/// get [`RecvError::Closed`]).
pub(crate) struct Producer<T>(Arc<Shared<T>>);

/// A consuming side; clones share the queue (each item goes to one consumer).
pub(crate) struct Consumer<T>(Arc<Shared<T>>);

impl<T> Clone for Consumer<T> {
    fn clone(&self) -> Self {
        Consumer(self.0.clone())
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("len", &self.len())
            .finish()
    }
}

/// A new, empty queue.
pub(crate) fn queue<T>() -> (Producer<T>, Consumer<T>) {
    let s = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            sleepers: 0,
            closed: false,
            claimed: false,
        }),
        cv: Condvar::new(),
        len: AtomicUsize::new(0),
    });
    (Producer(s.clone()), Consumer(s))
}

impl<T> Producer<T> {
    /// Appends an item and wakes a sleeping consumer, if any.
    pub(crate) fn send(&self, item: T) {
        let mut g = self.0.lock();
        g.items.push_back(item);
        self.0.len.store(g.items.len(), Ordering::Release);
        // Only the first item wakes someone: whoever takes it passes the turn on while
        // items remain (see `recv_timeout`), so a burst costs one wake-up call, not one
        // per item.
        let wake = g.items.len() == 1 && g.sleepers > 0;
        drop(g);
        if wake {
            self.0.cv.notify_one();
        }
    }

    /// Appends items under one lock, with at most one wake-up call.
    pub(crate) fn send_many(&self, items: impl IntoIterator<Item = T>) {
        let mut g = self.0.lock();
        let was_empty = g.items.is_empty();
        g.items.extend(items);
        self.0.len.store(g.items.len(), Ordering::Release);
        let wake = was_empty && !g.items.is_empty() && g.sleepers > 0;
        drop(g);
        if wake {
            self.0.cv.notify_one();
        }
    }

    /// Appends items under one lock, with at most one wake-up call; `true`: no consumer
    /// had claimed the queue, and the caller must start one (it is claimed for it).
    ///
    /// For a queue served by a consumer that comes and goes (`recv_or_release`): exactly
    /// one consumer serves it while it has items.
    pub(crate) fn send_claim(&self, items: impl IntoIterator<Item = T>) -> bool {
        let mut g = self.0.lock();
        let was_empty = g.items.is_empty();
        g.items.extend(items);
        self.0.len.store(g.items.len(), Ordering::Release);
        if g.items.is_empty() {
            return false;
        }
        let start = !g.claimed;
        g.claimed = true;
        let wake = was_empty && g.sleepers > 0;
        drop(g);
        if wake {
            self.0.cv.notify_one();
        }
        start
    }

    /// Claims the queue if no consumer has: `true` when the caller now owns it (nobody
    /// will consume any more, for one).
    pub(crate) fn claim(&self) -> bool {
        let mut g = self.0.lock();
        !std::mem::replace(&mut g.claimed, true)
    }

    /// Gives up a claim taken by `send_claim` whose consumer could not be started.
    pub(crate) fn unclaim(&self) {
        self.0.lock().claimed = false;
    }

    /// Items not yet taken.
    pub(crate) fn len(&self) -> usize {
        self.0.len.load(Ordering::Acquire)
    }

    /// Closes the queue now, as dropping the producer would.
    pub(crate) fn close(&self) {
        let mut g = self.0.lock();
        g.closed = true;
        drop(g);
        self.0.cv.notify_all();
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.closed = true;
        drop(g);
        self.0.cv.notify_all();
    }
}

impl<T> Consumer<T> {
    fn take(&self, g: &mut State<T>) -> Option<T> {
        let item = g.items.pop_front();
        if item.is_some() {
            self.0.len.store(g.items.len(), Ordering::Release);
            if g.items.is_empty() && g.items.capacity() > 64 {
                // A burst is over: do not keep its memory.
                g.items = VecDeque::new();
            }
        }
        item
    }

    /// Takes the next item, waiting at most `timeout` (`None`: without limit).
    pub(crate) fn recv_timeout(&self, timeout: Option<Duration>) -> Result<T, RecvError> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut g = self.0.lock();
        loop {
            if let Some(item) = self.take(&mut g) {
                // Another item for another sleeping consumer.
                if !g.items.is_empty() && g.sleepers > 0 {
                    self.0.cv.notify_one();
                }
                return Ok(item);
            }
            if g.closed {
                return Err(RecvError::Closed);
            }
            g.sleepers += 1;
            g = match deadline {
                // No timeout, or one too far to represent.
                None => self.0.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        g.sleepers -= 1;
                        return Err(RecvError::Empty);
                    }
                    self.0
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            g.sleepers -= 1;
        }
    }

    /// For the consumer that claimed the queue: the next item, waiting at most `linger`;
    /// when none came, the claim is released ([`RecvError::Empty`]: the next
    /// `send_claim` starts a consumer again). [`RecvError::Closed`] releases it too.
    pub(crate) fn recv_or_release(&self, linger: Duration) -> Result<T, RecvError> {
        let r = self.recv_timeout(Some(linger));
        if r.is_ok() {
            return r;
        }
        let mut g = self.0.lock();
        // An item may have come between the timeout and this lock: the claim stays.
        if let Some(item) = self.take(&mut g) {
            return Ok(item);
        }
        g.claimed = false;
        // The consumer leaves: its queue keeps no memory while idle.
        g.items = VecDeque::new();
        if g.closed {
            Err(RecvError::Closed)
        } else {
            Err(RecvError::Empty)
        }
    }

    /// Takes the next item, waiting as long as needed.
    pub(crate) fn recv(&self) -> Result<T, RecvError> {
        self.recv_timeout(None)
    }

    /// Takes the next item if one is waiting.
    pub(crate) fn try_recv(&self) -> Result<T, RecvError> {
        let mut g = self.0.lock();
        match self.take(&mut g) {
            Some(item) => Ok(item),
            None if g.closed => Err(RecvError::Closed),
            None => Err(RecvError::Empty),
        }
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.0.len.load(Ordering::Acquire)
    }

    /// True when nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why [`Mailbox::try_send`] refused an item (given back).
#[derive(Debug)]
pub(crate) enum SendError<T> {
    /// At capacity.
    Full(T),
    /// Closed: the I/O thread has finished.
    Closed(T),
}

/// The requests to the I/O thread: any number of senders, one receiver (the I/O thread,
/// which drains it in batches and is woken separately, see `Shared::wake`).
///
/// A locked deque rather than a channel: it takes no memory while empty (a bounded
/// crossbeam channel allocates all its slots and cache-padded counters up front, about
/// 1.7 KiB per client for the publish channel, 0.5 KiB for the unbounded one), and the
/// I/O thread gives its memory back when quiet ([`Mailbox::trim`]).
pub(crate) struct Mailbox<T> {
    state: Mutex<MailState<T>>,
    /// Items waiting, readable without the lock.
    len: AtomicUsize,
    cap: usize,
}

struct MailState<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> std::fmt::Debug for Mailbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("len", &self.len())
            .field("cap", &self.cap)
            .finish()
    }
}

impl<T> Mailbox<T> {
    /// An empty mailbox holding at most `cap` items.
    pub(crate) fn new(cap: usize) -> Self {
        Mailbox {
            state: Mutex::new(MailState {
                items: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MailState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an item unless the mailbox is full or closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), SendError<T>> {
        let mut g = self.lock();
        if g.closed {
            return Err(SendError::Closed(item));
        }
        if g.items.len() >= self.cap {
            return Err(SendError::Full(item));
        }
        g.items.push_back(item);
        self.len.store(g.items.len(), Ordering::Release);
        Ok(())
    }

    /// Takes the oldest item.
    pub(crate) fn try_recv(&self) -> Option<T> {
        let mut g = self.lock();
        let item = g.items.pop_front();
        if item.is_some() {
            self.len.store(g.items.len(), Ordering::Release);
        }
        item
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.cap
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Refuses further items; returns those still waiting.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut g = self.lock();
        g.closed = true;
        self.len.store(0, Ordering::Release);
        std::mem::take(&mut g.items)
    }

    /// Gives the deque's memory back if it is empty.
    pub(crate) fn trim(&self) {
        let mut g = self.lock();
        if g.items.is_empty() && g.items.capacity() > 0 {
            g.items = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_then_closed_after_drain() {
        let (p, c) = queue();
        p.send(1);
        p.send(2);
        assert_eq!(p.len(), 2);
        assert_eq!(c.try_recv(), Ok(1));
        drop(p);
        assert_eq!(c.recv(), Ok(2));
        assert_eq!(c.recv(), Err(RecvError::Closed));
        assert_eq!(c.try_recv(), Err(RecvError::Closed));
    }

    #[test]
    fn timeout_when_nothing_comes() {
        let (_p, c) = queue::<u8>();
        let t0 = Instant::now();
        assert_eq!(
            c.recv_timeout(Some(Duration::from_millis(50))),
            Err(RecvError::Empty)
        );
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert_eq!(c.try_recv(), Err(RecvError::Empty));
    }

    #[test]
    fn every_item_reaches_exactly_one_consumer_and_all_wake_on_close() {
        let (p, c) = queue::<u32>();
        let n = 10_000u32;
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(v) = c.recv() {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        let all: Vec<u32> = (0..n).collect();
        for (k, chunk) in all.chunks(7).enumerate() {
            // Batches and single items, as the I/O thread hands them over.
            if k % 2 == 0 {
                p.send_many(chunk.iter().copied());
            } else {
                chunk.iter().for_each(|&i| p.send(i));
            }
        }
        drop(p);
        let mut all: Vec<u32> = consumers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
}
