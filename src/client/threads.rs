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
use std::sync::Mutex;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// How long a finished thread waits for another job before it exits.
pub(crate) const LINGER: Duration = Duration::from_secs(1);
/// Most threads waiting for a job at any time.
pub(crate) const MAX_IDLE: usize = 4;
/// Stack size of client threads (the I/O loop and callbacks need little; pages untouched
/// cost no memory).
const STACK: usize = 256 * 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Work for a thread: the job, its name, and the sender whose drop tells [`Worker::join`]
/// that the job is over.
struct Task {
    job: Job,
    name: &'static CStr,
    done: Sender<()>,
}

/// Threads waiting for a task, each by the sending side of its own slot.
static IDLE: Mutex<Vec<Sender<Task>>> = Mutex::new(Vec::new());

fn idle() -> std::sync::MutexGuard<'static, Vec<Sender<Task>>> {
    IDLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A job running on a client thread; `join` waits for it to end (the thread itself may
/// stay, waiting for another job).
#[derive(Debug)]
pub(crate) struct Worker {
    done: Receiver<()>,
}

impl Worker {
    /// Waits until the job has returned (or panicked).
    pub(crate) fn join(self) {
        // Nothing is ever sent: the sender's drop at the end of the job disconnects.
        let _ = self.done.recv();
    }
}

/// Runs `job` on an idle client thread, or on a new one.
pub(crate) fn spawn(
    name: &'static CStr,
    job: impl FnOnce() + Send + 'static,
) -> io::Result<Worker> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(0);
    let mut task = Task {
        job: Box::new(job),
        name,
        done: done_tx,
    };
    loop {
        let Some(slot) = idle().pop() else { break };
        // A thread that timed out between our pop and its own clean-up has gone.
        match slot.send(task) {
            Ok(()) => return Ok(Worker { done: done_rx }),
            Err(e) => task = e.into_inner(),
        }
    }
    let thread_name = name.to_string_lossy().into_owned();
    std::thread::Builder::new()
        .name(thread_name)
        .stack_size(STACK)
        .spawn(move || serve(task))?;
    Ok(Worker { done: done_rx })
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
        match next_task() {
            Some(t) => task = t,
            None => return,
        }
    }
}

/// Offers this thread for reuse and waits up to [`LINGER`]; `None`: exit.
fn next_task() -> Option<Task> {
    // A rendezvous slot: a send succeeds only into a waiting thread, so a task can never be
    // left in a slot whose thread has given up.
    let (tx, rx) = crossbeam_channel::bounded(0);
    {
        let mut idle = idle();
        if idle.len() >= MAX_IDLE {
            return None;
        }
        idle.push(tx.clone());
    }
    match rx.recv_timeout(LINGER) {
        Ok(t) => Some(t),
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            idle().retain(|s| !s.same_channel(&tx));
            drop(tx);
            // A spawner already blocked in `send` on this slot gets served.
            rx.try_recv().ok()
        }
    }
}

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
