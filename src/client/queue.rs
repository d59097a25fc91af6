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
