//! The threads of clients (I/O and dispatch), kept for reuse for a moment after their
//! client is gone.
//!
//! Creating a thread (stack mapping, `clone`, the new thread's start-up) costs about as much
//! as the TCP handshake with a local broker, and a program that connects and disconnects
//! repeatedly would pay it twice per connection. A finished thread therefore waits up to
//! [`LINGER`] for its next job; at most [`MAX_IDLE`] wait at a time, so a process that
//! closes many clients at once is left with few spare threads, and they go away by
//! themselves.

use std::ffi::CStr;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a finished thread waits for another job before it exits.
pub(crate) const LINGER: Duration = Duration::from_secs(1);
/// Most threads waiting for a job at any time.
pub(crate) const MAX_IDLE: usize = 4;
/// Stack size of client threads (the I/O loop and callbacks need little; pages untouched
/// cost no memory).
const STACK: usize = 256 * 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A one-way flag with a sleeper: set once, waited for by anyone.
#[derive(Debug, Default)]
struct Flag {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Flag {
    fn raise(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut g = self.set.lock().unwrap_or_else(|e| e.into_inner());
        while !*g {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Raises its flag when dropped: at the end of a job, also when the job panicked.
struct Done(Arc<Flag>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// Work for a thread: the job, its name, and what tells [`Worker::join`] that the job is
/// over.
struct Task {
    job: Job,
    name: &'static CStr,
    done: Done,
}

/// Where an idle thread waits for its next task. The spawner puts the task in before it
/// signals, so the woken thread finds it at once and nobody spins: with crossbeam's
/// rendezvous channel (and its channel for `join`), strace showed the woken thread calling
/// `sched_yield` twice per connect and the joining caller four times per close.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

#[derive(Default)]
struct SlotState {
    task: Option<Task>,
    /// The thread stopped waiting; a task must not be put here any more.
    closed: bool,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Threads waiting for a task.
static IDLE: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());
/// The process whose threads `IDLE` lists.
static IDLE_OWNER: AtomicU32 = AtomicU32::new(0);

fn idle() -> MutexGuard<'static, Vec<Arc<Slot>>> {
    let mut g = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if IDLE_OWNER.load(Ordering::Relaxed) != pid {
        // After fork() the child inherits the list but not the threads: a task handed to
        // one of them would never run (a client created in the child hung). Start empty.
        g.clear();
        IDLE_OWNER.store(pid, Ordering::Relaxed);
    }
    g
}

/// A job running on a client thread; `join` waits for it to end (the thread itself may
/// stay, waiting for another job).
#[derive(Debug)]
pub(crate) struct Worker {
    done: Arc<Flag>,
}

impl Worker {
    /// Waits until the job has returned (or panicked).
    pub(crate) fn join(self) {
        self.done.wait();
    }
}

/// Runs `job` on an idle client thread, or on a new one.
pub(crate) fn spawn(
    name: &'static CStr,
    job: impl FnOnce() + Send + 'static,
) -> io::Result<Worker> {
    let flag = Arc::new(Flag::default());
    let task = Task {
        job: Box::new(job),
        name,
        done: Done(flag.clone()),
    };
    loop {
        let Some(slot) = idle().pop() else { break };
        let mut st = slot.lock();
        // A thread that timed out between our pop and its own clean-up has gone.
        if st.closed {
            continue;
        }
        st.task = Some(task);
        drop(st);
        slot.cv.notify_one();
        return Ok(Worker { done: flag });
    }
    // No std name: the thread serves other jobs later, and `set_name` gives the system its
    // current one (a std name would be one more allocation per thread, and stale).
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || serve(task))?;
    Ok(Worker { done: flag })
}

/// A client thread: runs its task, then waits for the next one for a while.
fn serve(first: Task) {
    let mut task = first;
    loop {
        set_name(task.name);
        let Task { job, done, .. } = task;
        // A panicking job is contained so the thread can serve again; the client notices
        // through its channels, as when a thread dies.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        drop(done);
        mark_spare();
        match next_task() {
            Some(t) => task = t,
            None => return,
        }
    }
}

/// Offers this thread for reuse and waits up to [`LINGER`]; `None`: exit.
fn next_task() -> Option<Task> {
    let slot = Arc::new(Slot::default());
    {
        let mut idle = idle();
        if idle.len() >= MAX_IDLE {
            return None;
        }
        idle.push(slot.clone());
    }
    let deadline = Instant::now() + LINGER;
    let mut st = slot.lock();
    loop {
        if let Some(t) = st.task.take() {
            return Some(t);
        }
        let now = Instant::now();
        if now >= deadline {
            // Closed under the lock: a spawner that popped this slot meanwhile sees it and
            // takes another thread.
            st.closed = true;
            drop(st);
            idle().retain(|s| !Arc::ptr_eq(s, &slot));
            return None;
        }
        st = slot
            .cv
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Names the calling thread as a spare of the pool ([`SPARE`]): a waiting thread does not
/// keep the name of its last job (`top -H`, and tests counting a client's threads by name).
pub(crate) fn mark_spare() {
    set_name(SPARE);
}

/// The name of a pool thread between jobs.
const SPARE: &CStr = c"mqttsync-spare";

#[cfg(target_os = "linux")]
fn set_name(name: &CStr) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (truncated to 15 bytes) that lives
    // for the duration of the call; it changes only the calling thread's name.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
    }
}

#[cfg(not(target_os = "linux"))]
fn set_name(_name: &CStr) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn join_waits_for_the_job_and_threads_are_reused() {
        let ran = Arc::new(AtomicUsize::new(0));
        let mut ids = Vec::new();
        for _ in 0..20 {
            let r = ran.clone();
            let (tx, rx) = crossbeam_channel::bounded(1);
            let w = spawn(c"mqttsync-test", move || {
                std::thread::sleep(Duration::from_millis(1));
                let _ = tx.send(std::thread::current().id());
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            w.join();
            ids.push(rx.recv().unwrap());
        }
        assert_eq!(ran.load(Ordering::SeqCst), 20);
        ids.sort_by_key(|i| format!("{i:?}"));
        ids.dedup();
        // Other tests share the pool, so a fresh thread may be taken now and then; still,
        // twenty sequential jobs need far fewer than twenty threads.
        assert!(
            ids.len() < 20,
            "{} threads for 20 sequential jobs",
            ids.len()
        );
    }

    #[test]
    fn a_panicking_job_ends_its_join_and_spares_the_thread() {
        let w = spawn(c"mqttsync-test", || panic!("contained")).unwrap();
        w.join();
        let (tx, rx) = crossbeam_channel::bounded(1);
        spawn(c"mqttsync-test", move || {
            let _ = tx.send(7);
        })
        .unwrap()
        .join();
        assert_eq!(rx.recv().unwrap(), 7);
    }
}
