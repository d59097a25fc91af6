//! A TCP fault proxy for tests: listens on `127.0.0.1:0`, forwards every connection to a
//! target (a harness broker), and on command cuts all connections, stalls one or both
//! directions (stops forwarding but keeps the sockets open, as a dead link or a frozen NAT
//! does), slows the link down (delay per chunk and a byte rate), and resumes.
//!
//! ```ignore
//! let proxy = FaultProxy::start(broker.addr());
//! let client = Client::connect(ConnectOptions::new(&proxy.uri()))?;
//! proxy.stall(Direction::Both);   // nothing flows, nobody notices at TCP level
//! proxy.resume();
//! proxy.cut();                    // every open connection is closed (FIN to both ends)
//! proxy.slow(Duration::from_millis(5), 20_000);   // 5 ms per chunk, 20 kB/s
//! ```
//!
//! Two threads per connection (one per direction). Blocked reads time out every few
//! milliseconds so the pumps see commands; a stalled pump holds what it has read and reads
//! nothing more, so the kernel buffers fill and the sender's writes eventually block, as on
//! a real dead path. Faults apply to open and to new connections alike.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often blocked pumps look at the fault state.
const TICK: Duration = Duration::from_millis(10);
/// Largest chunk forwarded at once (smaller chunks when slowed).
const CHUNK: usize = 16 * 1024;

/// A direction of the forwarded traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to broker.
    Up,
    /// Broker to client.
    Down,
    /// Both.
    Both,
}

/// Counters of what the proxy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted.
    pub accepted: u64,
    /// `cut` commands, and connections closed by them.
    pub cuts: u64,
    /// Connections closed by cuts.
    pub cut_connections: u64,
    /// `stall` commands.
    pub stalls: u64,
    /// Bytes forwarded client → broker.
    pub bytes_up: u64,
    /// Bytes forwarded broker → client.
    pub bytes_down: u64,
}

type Conn = (TcpStream, TcpStream, Arc<AtomicBool>, Arc<AtomicBool>);

#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    stall_up: bool,
    stall_down: bool,
    /// Delay per forwarded chunk.
    delay: Duration,
    /// Bytes per second (0 = unlimited).
    rate: u64,
}

#[derive(Debug)]
struct Inner {
    target: SocketAddr,
    faults: Mutex<Faults>,
    changed: Condvar,
    stop: AtomicBool,
    /// Open connections: (client side, broker side, closed-by-cut flag).
    /// Open connections: client side, broker side, closed, client-to-broker pump ended.
    conns: Mutex<Vec<Conn>>,
    accepted: AtomicU64,
    cuts: AtomicU64,
    cut_connections: AtomicU64,
    stalls: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// The proxy; stops (and closes every connection) on drop.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `target` on a free port of 127.0.0.1.
    pub fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let inner = Arc::new(Inner {
            target,
            faults: Mutex::new(Faults::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            cut_connections: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        let i = inner.clone();
        let acceptor = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(listener, i))
            .expect("spawn proxy");
        FaultProxy {
            addr,
            inner,
            acceptor: Some(acceptor),
        }
    }

    /// `tcp://127.0.0.1:PORT` of the proxy.
    pub fn uri(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn update(&self, f: impl FnOnce(&mut Faults)) {
        let mut g = self.inner.faults.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
        drop(g);
        self.inner.changed.notify_all();
    }

    /// Closes every open connection (both ends see the connection end). New connections
    /// are still accepted.
    pub fn cut(&self) {
        self.inner.cuts.fetch_add(1, Ordering::Relaxed);
        let conns: Vec<_> =
            std::mem::take(&mut *self.inner.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for (c, b, flag, _) in conns {
            if !flag.swap(true, Ordering::SeqCst) {
                self.inner.cut_connections.fetch_add(1, Ordering::Relaxed);
            }
            let _ = c.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        self.inner.changed.notify_all();
    }

    /// Stops forwarding in `dir` (sockets stay open; data read is held, not dropped).
    pub fn stall(&self, dir: Direction) {
        self.inner.stalls.fetch_add(1, Ordering::Relaxed);
        self.update(|f| match dir {
            Direction::Up => f.stall_up = true,
            Direction::Down => f.stall_down = true,
            Direction::Both => {
                f.stall_up = true;
                f.stall_down = true;
            }
        });
    }

    /// Delays every forwarded chunk by `delay` and limits each direction to
    /// `bytes_per_sec` (0 = no limit).
    pub fn slow(&self, delay: Duration, bytes_per_sec: u64) {
        self.update(|f| {
            f.delay = delay;
            f.rate = bytes_per_sec;
        });
    }

    /// Ends stalls and slowness: data flows freely again.
    pub fn resume(&self) {
        self.update(|f| *f = Faults::default());
    }

    /// Connections currently open through the proxy.
    pub fn open_connections(&self) -> usize {
        let mut g = self.inner.conns.lock().unwrap_or_else(|e| e.into_inner());
        g.retain(|(_, _, closed, _)| !closed.load(Ordering::SeqCst));
        g.len()
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        let i = &self.inner;
        ProxyStats {
            accepted: i.accepted.load(Ordering::Relaxed),
            cuts: i.cuts.load(Ordering::Relaxed),
            cut_connections: i.cut_connections.load(Ordering::Relaxed),
            stalls: i.stalls.load(Ordering::Relaxed),
            bytes_up: i.bytes_up.load(Ordering::Relaxed),
            bytes_down: i.bytes_down.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    while !inner.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                inner.accepted.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_nonblocking(false);
                forward_closed_first(&inner);
                let Ok(broker) = TcpStream::connect_timeout(&inner.target, Duration::from_secs(2))
                else {
                    // The broker is down: the client sees its connection closed.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = broker.set_nodelay(true);
                let closed = Arc::new(AtomicBool::new(false));
                let (Ok(c2), Ok(b2), Ok(c3), Ok(b3)) = (
                    client.try_clone(),
                    broker.try_clone(),
                    client.try_clone(),
                    broker.try_clone(),
                ) else {
                    continue;
                };
                let up_done = Arc::new(AtomicBool::new(false));
                inner.conns.lock().unwrap_or_else(|e| e.into_inner()).push((
                    c3,
                    b3,
                    closed.clone(),
                    up_done.clone(),
                ));
                let (i1, i2) = (inner.clone(), inner.clone());
                let (f1, f2) = (closed.clone(), closed);
                let _ = std::thread::Builder::new()
                    .name("fault-proxy-up".into())
                    .spawn(move || {
                        let inner = i1.clone();
                        pump(client, b2, Direction::Up, i1, f1);
                        let _g = inner.faults.lock().unwrap_or_else(|e| e.into_inner());
                        up_done.store(true, Ordering::SeqCst);
                        inner.changed.notify_all();
                    });
                let _ = std::thread::Builder::new()
                    .name("fault-proxy-down".into())
                    .spawn(move || pump(broker, c2, Direction::Down, i2, f2));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
    }
}

/// Before a new connection is forwarded: what clients sent on connections they have
/// since closed goes to the broker first (at most 2 s), as on a direct connection, where
/// those bytes are in the broker's socket before the new connection exists. (A client that
/// disconnects and connects again at once would otherwise race its own DISCONNECT and
/// acknowledgements, still in a pump thread, with its new CONNECT.)
fn forward_closed_first(inner: &Inner) {
    let closing: Vec<Arc<AtomicBool>> = {
        let g = inner.conns.lock().unwrap_or_else(|e| e.into_inner());
        g.iter()
            .filter(|(c, _, closed, done)| {
                if closed.load(Ordering::SeqCst) || done.load(Ordering::SeqCst) {
                    return false;
                }
                let _ = c.set_nonblocking(true);
                let mut b = [0u8; 1];
                // Ok(0): the client closed, its pump has read everything (and is writing
                // it or ending); Ok(n): unread bytes; WouldBlock: an open connection.
                let ended = !matches!(c.peek(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock);
                let _ = c.set_nonblocking(false);
                ended
            })
            .map(|(_, _, _, done)| done.clone())
            .collect()
    };
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let mut g = inner.faults.lock().unwrap_or_else(|e| e.into_inner());
    for done in closing {
        while !done.load(Ordering::SeqCst) {
            let now = std::time::Instant::now();
            if now >= until {
                return;
            }
            g = inner
                .changed
                .wait_timeout(g, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn stalled(f: &Faults, dir: Direction) -> bool {
    match dir {
        Direction::Up => f.stall_up,
        Direction::Down => f.stall_down,
        Direction::Both => f.stall_up || f.stall_down,
    }
}

/// Waits while `dir` is stalled; false when the connection was closed meanwhile.
fn wait_unstalled(inner: &Inner, dir: Direction, closed: &AtomicBool) -> Option<Faults> {
    let mut g = inner.faults.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if closed.load(Ordering::SeqCst) || inner.stop.load(Ordering::SeqCst) {
            return None;
        }
        if !stalled(&g, dir) {
            return Some(*g);
        }
        g = inner
            .changed
            .wait_timeout(g, TICK)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    dir: Direction,
    inner: Arc<Inner>,
    closed: Arc<AtomicBool>,
) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = vec![0u8; CHUNK];
    let counter = match dir {
        Direction::Up => &inner.bytes_up,
        _ => &inner.bytes_down,
    };
    // Read nothing while stalled (the data stays in the kernel, the sender's window fills
    // up).
    while let Some(faults) = wait_unstalled(&inner, dir, &closed) {
        let max = if faults.rate > 0 {
            // About 20 chunks a second at the given rate.
            usize::try_from(faults.rate / 20)
                .unwrap_or(CHUNK)
                .clamp(1, CHUNK)
        } else {
            CHUNK
        };
        let n = match from.read(&mut buf[..max]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // A stall that began while we were reading holds these bytes too.
        let Some(faults) = wait_unstalled(&inner, dir, &closed) else {
            break;
        };
        let mut pause = faults.delay;
        if faults.rate > 0 {
            pause += Duration::from_secs_f64(n as f64 / faults.rate as f64);
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    // One side ended (or a cut): end the other, so each end sees what a real path does.
    closed.store(true, Ordering::SeqCst);
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
