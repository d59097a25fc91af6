//! The threads of clients (I/O and dispatch), kept for reuse for a moment after their
//! client is gone.
//!
//! Creating a thread (stack mapping, `clone`, the new thread's start-up) costs about as much
//! as the TCP handshake with a local broker, and a program that connects and disconnects
//! repeatedly would pay it twice per connection. A finished thread therefore waits up to
//! [`LINGER`] for its next job; at most [`MAX_IDLE`] wait at a time, so a process that
//! closes many clients at once is left with few spare threads, and they go away by
//! themselves.
//!
//! Threads alive at once are what a process keeps memory for (glibc keeps a finished
//! thread's touched stack and its malloc arena for reuse), so two limits apply across all
//! clients: at most [`MAX_LINGERING`] threads wait on a client's own queue for more work
//! ([`Linger`]), and jobs that block on the network for a request (MQTTAsync's commands)
//! run on at most [`RUNNERS`] threads, the others waiting their turn or [`ESCALATE`]
//! ([`spawn_limited`]).

use std::collections::VecDeque;
use std::ffi::CStr;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a finished thread waits for another job before it exits.
pub(crate) const LINGER: Duration = Duration::from_secs(1);
/// Most threads waiting for a job at any time.
pub(crate) const MAX_IDLE: usize = 4;
/// Most threads waiting on a client's own queue for its next work at a time, process-wide
/// (see [`Linger`]).
pub(crate) const MAX_LINGERING: usize = 4;
/// Stack size of client threads (the I/O loop and callbacks need little; pages untouched
/// cost no memory).
const STACK: usize = 256 * 1024;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// [`spawn`] or [`spawn_limited`], for a caller that picks one.
pub(crate) type SpawnFn = fn(&'static CStr, Job) -> io::Result<Worker>;

/// Leave for a thread to wait on its client's queue (a client's dispatch thread, an
/// MQTTAsync handle's command or callback thread) for more work instead of leaving at once.
///
/// Lingering saves a hand-over per burst for a client that is busy, but every thread alive
/// keeps its touched stack and a malloc arena (after it exits too: glibc caches both), and
/// a program that starts work on many clients at once (connecting 100 MQTTAsync handles in
/// a loop) had one thread per client lingering: 100 threads, ~24 KiB of private memory per
/// client more. At most [`MAX_LINGERING`] threads linger; the others leave when their
/// queue is empty and the pool's spare threads take the next job.
#[derive(Debug)]
pub(crate) struct Linger(());

/// Threads lingering now (a child after `fork` starts at zero: the parent's lingering
/// threads are not in it).
static LINGERING: Mutex<PerProcess<usize>> = Mutex::new(PerProcess::new(0));

impl Linger {
    /// Leave to linger, if fewer than [`MAX_LINGERING`] threads do; released on drop.
    pub(crate) fn try_take() -> Option<Linger> {
        let mut g = lock_for_process(&LINGERING);
        if **g >= MAX_LINGERING {
            return None;
        }
        **g += 1;
        Some(Linger(()))
    }

    /// How long a thread with `leave` may wait: `linger`, or not at all.
    pub(crate) fn wait(leave: &Option<Linger>, linger: Duration) -> Duration {
        if leave.is_some() {
            linger
        } else {
            Duration::ZERO
        }
    }
}

impl Drop for Linger {
    fn drop(&mut self) {
        let mut g = lock_for_process(&LINGERING);
        **g = g.saturating_sub(1);
    }
}

/// Process-wide state about this process's threads, behind a lock. A child after `fork()`
/// inherits the memory but not the threads it describes, so the first lock in a new
/// process starts it afresh (`T::default()`).
struct PerProcess<T> {
    pid: u32,
    value: T,
}

impl<T> PerProcess<T> {
    const fn new(value: T) -> Self {
        PerProcess { pid: 0, value }
    }
}

impl<T> std::ops::Deref for PerProcess<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for PerProcess<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// A count of what this process's threads are doing now (I/O jobs awake, threads polling
/// a socket), lock-free: the count in the low 32 bits, the process it belongs to in the
/// high 32, so a child after `fork` starts at zero instead of counting its parent's
/// threads, which it does not have.
pub(crate) struct ProcessCount(std::sync::atomic::AtomicU64);

impl ProcessCount {
    pub(crate) const fn new() -> Self {
        ProcessCount(std::sync::atomic::AtomicU64::new(0))
    }

    /// Counts one more while fewer than `max` are counted; the guard counts it down.
    pub(crate) fn enter_below(&'static self, max: u32) -> Option<Counted> {
        use std::sync::atomic::Ordering::Relaxed;
        let pid = u64::from(std::process::id()) << 32;
        self.0
            .fetch_update(Relaxed, Relaxed, |v| {
                let n = if v & !0xffff_ffff == pid { v as u32 } else { 0 };
                (n < max).then_some(pid | u64::from(n + 1))
            })
            .ok()
            .map(|_| Counted(self))
    }

    /// How many are counted, as last written: this process's count for a thread that is
    /// counted itself (no `getpid` needed).
    pub(crate) fn count(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed) as u32
    }
}

/// One entry in a [`ProcessCount`], for the guard's lifetime.
pub(crate) struct Counted(&'static ProcessCount);

impl Drop for Counted {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let pid = u64::from(std::process::id()) << 32;
        let _ = self.0 .0.fetch_update(Relaxed, Relaxed, |v| {
            (v & !0xffff_ffff == pid && v as u32 > 0).then(|| v - 1)
        });
    }
}

/// After a wait that its poll did not answer, how many waits sleep at once before one
/// polls again (the share of the budget a slow link costs: 1 in this many).
const SPIN_PROBE_EVERY: u8 = 16;

/// A poll-before-sleep budget (a connection's, the MQTTAsync runners') and how the last
/// polls went.
#[derive(Debug)]
pub(crate) struct Spin {
    /// Microseconds; zero: never (or one CPU only).
    budget_us: u16,
    /// A poll found nothing within the budget: waits sleep at once, but every
    /// [`SPIN_PROBE_EVERY`]th.
    missed: bool,
    /// Waits that slept at once since the last miss.
    skipped: u8,
}

impl Spin {
    pub(crate) fn new(budget: Duration) -> Spin {
        let us = u16::try_from(budget.as_micros()).unwrap_or(u16::MAX);
        Spin {
            budget_us: if max_polling() == 0 { 0 } else { us },
            missed: false,
            skipped: 0,
        }
    }

    /// The budget for this wait, if it polls.
    pub(crate) fn turn(&mut self) -> Option<Duration> {
        if self.budget_us == 0 {
            return None;
        }
        if self.missed {
            self.skipped += 1;
            if self.skipped < SPIN_PROBE_EVERY {
                return None;
            }
            self.skipped = 0;
        }
        Some(Duration::from_micros(u64::from(self.budget_us)))
    }

    /// Whether the poll saw bytes within the budget.
    pub(crate) fn record(&mut self, hit: bool) {
        self.missed = !hit;
        self.skipped = 0;
    }
}

/// Threads of this process polling now ([`poll_until`]).
static POLLING: ProcessCount = ProcessCount::new();

/// How many threads may poll at once: one CPU fewer than the process may use, so that
/// the threads and the broker they wait for always have one (none on one CPU).
fn max_polling() -> u32 {
    static MAX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::thread::available_parallelism().map_or(0, |n| {
            u32::try_from(n.get()).unwrap_or(u32::MAX).saturating_sub(1)
        })
    })
}

/// Checks `ready()` without sleeping until it holds (`Some(true)`) or `until`
/// (`Some(false)`): for a reply that should come sooner than a sleeping thread could be
/// woken (`ConnectOptions::spin_wait`). `None`, at once, when [`max_polling`] threads of
/// the process poll already: the caller then sleeps as without a budget.
pub(crate) fn poll_until(until: Instant, mut ready: impl FnMut() -> bool) -> Option<bool> {
    let _counted = POLLING.enter_below(max_polling())?;
    loop {
        if ready() {
            return Some(true);
        }
        if Instant::now() >= until {
            return Some(false);
        }
        std::hint::spin_loop();
    }
}

/// Locks `m`, starting its value afresh in a process that has not used it yet.
fn lock_for_process<T: Default>(
    m: &'static Mutex<PerProcess<T>>,
) -> MutexGuard<'static, PerProcess<T>> {
    let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if g.pid != pid {
        g.value = T::default();
        g.pid = pid;
    }
    g
}

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

impl Task {
    /// A task for `job`, and the handle that waits for its end.
    fn new(name: &'static CStr, job: impl FnOnce() + Send + 'static) -> (Task, Worker) {
        let flag = Arc::new(Flag::default());
        let task = Task {
            job: Box::new(job),
            name,
            done: Done(flag.clone()),
        };
        (task, Worker { done: flag })
    }

    /// Runs the job under its name. A panicking job is contained so the thread can serve
    /// again; the client notices through its channels, as when a thread dies.
    fn run(self) {
        set_name(self.name);
        let Task { job, done, .. } = self;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        drop(done);
    }
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

/// Threads waiting for a task. After fork() the child inherits the list but not the
/// threads: a task handed to one of them would never run (a client created in the child
/// hung), so a new process starts with an empty list.
static IDLE: Mutex<PerProcess<Vec<Arc<Slot>>>> = Mutex::new(PerProcess::new(Vec::new()));

fn idle() -> MutexGuard<'static, PerProcess<Vec<Arc<Slot>>>> {
    lock_for_process(&IDLE)
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
    let (task, worker) = Task::new(name, job);
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
        return Ok(worker);
    }
    // No std name: the thread serves other jobs later, and `set_name` gives the system its
    // current one (a std name would be one more allocation per thread, and stale).
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || serve(task))?;
    Ok(worker)
}

/// Most jobs of [`spawn_limited`] running at once before one more needs [`ESCALATE`] of
/// waiting.
pub(crate) const RUNNERS: usize = 8;
/// How long the oldest waiting job of [`spawn_limited`] waits before it gets a thread of
/// its own even though [`RUNNERS`] jobs run: a job that blocks for long (a connect to an
/// unreachable host, a callback that waits) delays the others by at most this much each.
pub(crate) const ESCALATE: Duration = Duration::from_millis(10);

/// Jobs of [`spawn_limited`]: how many run, and the ones waiting for a runner (a child
/// after `fork` starts empty: the parent's runners are not in it, and its waiting jobs
/// cannot run there).
#[derive(Default)]
struct Backlog {
    running: usize,
    waiting: VecDeque<(Instant, Task)>,
    /// A thread watches the oldest waiting job (`escalate`).
    watching: bool,
    /// When a runner was last added beyond [`RUNNERS`]: at most one per [`ESCALATE`], so a
    /// backlog of slow jobs grows the runners gradually, not to one per job.
    escalated: Option<Instant>,
    /// Runners that finished their job and poll for the next one before they leave
    /// ([`run_limited`]): a new job goes into `waiting` for them instead of to a thread.
    polling: usize,
    /// The runners' poll budget and how their last polls went (`None`: not set up yet in
    /// this process).
    poll: Option<Spin>,
}

static BACKLOG: Mutex<PerProcess<Backlog>> = Mutex::new(PerProcess::new(Backlog {
    running: 0,
    waiting: VecDeque::new(),
    watching: false,
    escalated: None,
    polling: 0,
    poll: None,
}));

/// The runners' poll budget in microseconds ([`set_runner_poll`]).
static RUNNER_POLL_US: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(DEFAULT_RUNNER_POLL.as_micros() as u64);

/// How long a runner of [`spawn_limited`] polls for the next job before it leaves, as a
/// multiple of `ConnectOptions::spin_wait`'s budget, for the same reason: a program that
/// waits for one request's `onSuccess` and then makes the next one makes it sooner than a
/// sleeping thread can be woken. Longer than a reply's poll because that request comes
/// back through the application: its own wake-up from `onSuccess` (tens of microseconds
/// on the benchmarks' VM, as any wake-up) and what it does before the next call. With the
/// reply's budget the runner had always left when an MQTTAsync connect followed the last
/// request's `onSuccess`: 2000 connect/disconnect cycles woke a runner for every connect.
const RUNNER_POLL_FACTOR: u32 = 3;

/// [`RUNNER_POLL_FACTOR`] times the default reply budget.
const DEFAULT_RUNNER_POLL: Duration = Duration::from_micros(
    crate::client::options::DEFAULT_SPIN_WAIT.as_micros() as u64 * RUNNER_POLL_FACTOR as u64,
);

/// Sets how long a runner of [`spawn_limited`] polls for the next job after finishing one
/// to [`RUNNER_POLL_FACTOR`] times a reply's poll `budget` (zero: never), for the whole
/// process; the C layer's `MQTTSYNC_SPIN_US`.
pub(crate) fn set_runner_poll(budget: Duration) {
    let us = u64::try_from(budget.as_micros())
        .unwrap_or(u64::MAX)
        .saturating_mul(u64::from(RUNNER_POLL_FACTOR));
    RUNNER_POLL_US.store(us, std::sync::atomic::Ordering::Relaxed);
    backlog().poll = None;
}

fn backlog() -> MutexGuard<'static, PerProcess<Backlog>> {
    lock_for_process(&BACKLOG)
}

/// Whether a job waits in the backlog: the check a polling runner repeats for up to its
/// budget, so without [`backlog`]'s `getpid` under the lock each time. After a `fork` the
/// parent's stale list can only end a child's poll early; the runner then locks with
/// [`backlog`], which starts the list afresh, and finds nothing to take.
fn job_waiting() -> bool {
    !BACKLOG
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .waiting
        .is_empty()
}

/// Runs `job` on a client thread like [`spawn`], but with at most [`RUNNERS`] such jobs
/// running at once: the others wait (first come, first served) for a runner to finish,
/// or [`ESCALATE`] at most, then get a thread anyway.
///
/// For requests that block on the network (MQTTAsync's command jobs: a connect waits for
/// the TCP handshake and the CONNACK): a program that connects 1000 handles in a loop had
/// a thread per connect in flight, ~160 at once on a local broker, and every thread's
/// touched stack and malloc arena stayed in the process after it ended (glibc keeps both
/// for reuse): ~7 KiB of private memory per client.
pub(crate) fn spawn_limited(
    name: &'static CStr,
    job: impl FnOnce() + Send + 'static,
) -> io::Result<Worker> {
    let (task, worker) = Task::new(name, job);
    let mut g = backlog();
    if g.polling > g.waiting.len() {
        // A runner polls for work: it takes this job within microseconds.
        g.waiting.push_back((Instant::now(), task));
        return Ok(worker);
    }
    if g.running < RUNNERS {
        g.running += 1;
        drop(g);
        if let Err(e) = spawn(name, move || run_limited(task)) {
            backlog().running -= 1;
            return Err(e);
        }
        return Ok(worker);
    }
    g.waiting.push_back((Instant::now(), task));
    if !g.watching {
        g.watching = true;
        drop(g);
        if spawn(c"mqttsync-backlog", escalate).is_err() {
            // The job still runs when a runner finishes; only the escalation is lost.
            backlog().watching = false;
        }
    }
    Ok(worker)
}

/// A runner of [`spawn_limited`]: its task, then waiting tasks until none is left, then
/// (within its budget, [`Spin`]) the tasks that come while it polls for them.
fn run_limited(first: Task) {
    let mut task = first;
    loop {
        task.run();
        let mut g = backlog();
        if let Some((_, next)) = g.waiting.pop_front() {
            task = next;
            continue;
        }
        let budget = g
            .poll
            .get_or_insert_with(|| {
                Spin::new(Duration::from_micros(
                    RUNNER_POLL_US.load(std::sync::atomic::Ordering::Relaxed),
                ))
            })
            .turn();
        if let Some(budget) = budget {
            g.polling += 1;
            drop(g);
            let polled = poll_until(Instant::now() + budget, job_waiting);
            g = backlog();
            g.polling -= 1;
            if let (Some(hit), Some(poll)) = (polled, g.poll.as_mut()) {
                poll.record(hit);
            }
            // Also when the poll ended just before a job came: it was queued for us.
            if let Some((_, next)) = g.waiting.pop_front() {
                task = next;
                continue;
            }
        }
        g.running = g.running.saturating_sub(1);
        return;
    }
}

/// Watches the oldest waiting job of [`spawn_limited`]: once it has waited [`ESCALATE`]
/// (and the last escalation is as old), this thread runs it (one runner more), leaving the
/// watch to a new thread if more wait.
fn escalate() {
    let mut g = backlog();
    loop {
        let Some(&(since, _)) = g.waiting.front() else {
            g.watching = false;
            return;
        };
        let due = g.escalated.map_or(since, |t| t.max(since)) + ESCALATE;
        let now = Instant::now();
        if now < due {
            drop(g);
            std::thread::sleep(due - now);
            g = backlog();
            continue;
        }
        let Some((_, task)) = g.waiting.pop_front() else {
            continue;
        };
        g.running += 1;
        g.escalated = Some(now);
        let more = !g.waiting.is_empty();
        g.watching = more;
        drop(g);
        if more && spawn(c"mqttsync-backlog", escalate).is_err() {
            backlog().watching = false;
        }
        run_limited(task);
        return;
    }
}

/// A client thread: runs its task, then waits for the next one for a while.
fn serve(first: Task) {
    let mut task = first;
    loop {
        task.run();
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

    fn spin(us: u64) -> Spin {
        // `Spin::new` turns polling off on a one-CPU machine; the state machine is the same.
        Spin {
            budget_us: us as u16,
            missed: false,
            skipped: 0,
        }
    }

    #[test]
    fn a_missed_poll_leaves_fifteen_waits_in_sixteen_to_sleep_at_once() {
        let mut s = spin(50);
        assert_eq!(s.turn(), Some(Duration::from_micros(50)));
        s.record(true);
        assert_eq!(
            s.turn(),
            Some(Duration::from_micros(50)),
            "answered: polls again"
        );
        s.record(false);
        let polls: Vec<bool> = (0..32).map(|_| s.turn().is_some()).collect();
        // Only the 16th and 32nd waits poll (nothing recorded in between: they slept).
        let expected: Vec<bool> = (1..=32).map(|i| i % 16 == 0).collect();
        assert_eq!(polls, expected);
        s.record(true);
        assert!(
            s.turn().is_some(),
            "a probe that was answered ends the back-off"
        );
    }

    #[test]
    fn a_zero_budget_never_polls() {
        let mut s = spin(0);
        assert!((0..40).all(|_| s.turn().is_none()));
        assert_eq!(Spin::new(Duration::ZERO).budget_us, 0);
        // Budgets beyond u16 microseconds are capped, not wrapped to a short one.
        let big = Spin::new(Duration::from_secs(1)).budget_us;
        assert!(big == u16::MAX || big == 0, "{big}");
    }

    /// Jobs that come while a runner polls for the next one (right after a job ended, as
    /// an MQTTAsync program's next request does) go to that runner; jobs that come a
    /// moment after its poll ended get a thread. Either way each runs exactly once, and
    /// no runner is left counted. Run by the one test that uses `spawn_limited` (its counts
    /// are process-wide).
    fn jobs_arriving_while_runners_poll_each_run_once() {
        const N: usize = 600;
        let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
        let mut workers = Vec::new();
        for i in 0..N {
            let r = ran.clone();
            workers.push(
                spawn_limited(c"test-poll", move || {
                    r[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
            );
            // Gaps from none to past the poll budget (0-90 us), so arrivals hit polling
            // runners, runners at the end of their poll, and runners gone.
            let gap = Duration::from_micros((i as u64 * 37) % 91);
            let until = Instant::now() + gap;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            if i % 50 == 0 {
                // Now and then, one at a time: the next job comes after this one ended.
                workers.pop().unwrap().join();
            }
        }
        for w in workers {
            w.join();
        }
        let counts: Vec<usize> = ran.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert!(counts.iter().all(|&c| c == 1), "{counts:?}");
        // Runners leave after their poll: none stays counted.
        let idle = || {
            let g = backlog();
            (g.running, g.polling, g.waiting.len()) == (0, 0, 0)
        };
        let start = Instant::now();
        while !idle() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(idle(), "a runner stayed counted");
    }

    #[test]
    fn a_process_count_admits_up_to_its_limit_and_counts_down_on_drop() {
        static C: ProcessCount = ProcessCount::new();
        let a = C.enter_below(2).expect("first");
        let b = C.enter_below(2).expect("second");
        assert_eq!(C.count(), 2);
        assert!(C.enter_below(2).is_none(), "a third is refused");
        drop(a);
        assert_eq!(C.count(), 1);
        let c = C.enter_below(2).expect("room again");
        drop((b, c));
        assert_eq!(C.count(), 0);
        // A count written by another process (as after fork) is not ours: we start at zero.
        C.0.store(
            u64::from(std::process::id().wrapping_add(1)) << 32 | 5,
            Ordering::Relaxed,
        );
        let d = C
            .enter_below(1)
            .expect("the other process's count does not apply");
        assert_eq!(C.count(), 1);
        drop(d);
        assert_eq!(C.count(), 0);
    }

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

    /// The only test of this binary that uses `spawn_limited` (its counts are process-wide):
    /// the escalation, then polling runners.
    #[test]
    fn limited_jobs_wait_for_a_runner_or_escalate_one_at_a_time() {
        limited_jobs_escalate_one_at_a_time();
        jobs_arriving_while_runners_poll_each_run_once();
    }

    fn limited_jobs_escalate_one_at_a_time() {
        let (gate_tx, gate_rx) = crossbeam_channel::unbounded::<()>();
        let (started_tx, started_rx) = crossbeam_channel::unbounded::<Instant>();
        // A job that tells when it started, then blocks until the gate closes.
        let blocked = || {
            let (gate, started) = (gate_rx.clone(), started_tx.clone());
            spawn_limited(c"mqttsync-test", move || {
                let _ = started.send(Instant::now());
                let _ = gate.recv();
            })
            .unwrap()
        };
        let mut workers: Vec<Worker> = (0..RUNNERS).map(|_| blocked()).collect();
        for _ in 0..RUNNERS {
            started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        // Every runner is blocked: the next jobs wait, then get a thread one per ESCALATE.
        let queued = Instant::now();
        workers.extend((0..2).map(|_| blocked()));
        let first = started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let second = started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            first >= queued + ESCALATE,
            "a job started {:?} after queueing behind {RUNNERS} blocked runners",
            first - queued
        );
        // Escalated no sooner than ESCALATE after the first escalation, itself no sooner
        // than ESCALATE after queueing.
        assert!(
            second >= queued + 2 * ESCALATE,
            "the second extra runner came {:?} after queueing ({:?} after the first)",
            second - queued,
            second - first
        );
        drop(gate_tx);
        for w in workers {
            w.join();
        }
        // The runners give their places back once their jobs are done.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let g = backlog();
            if g.running == 0 && g.waiting.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{} runners left", g.running);
            drop(g);
            std::thread::yield_now();
        }
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
