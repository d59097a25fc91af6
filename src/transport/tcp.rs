//! TCP: DNS with a deadline, happy-eyeballs connect over every address, socket options.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::*;

pub(super) fn remaining(deadline: Instant, step: Step, total: Duration) -> Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(Error::timeout(step, total));
    }
    Ok(deadline - now)
}

/// Resolves `host:port` on a client thread of the pool, so that the deadline holds even when
/// the system resolver hangs (a hung lookup keeps its thread; the next connect takes another).
/// A pool thread rather than a new one: spawning a thread per connect cost about as much as
/// the TCP handshake with a local broker (`strace`: clone3, stack set-up, its exit).
/// `localhost` names are not looked up (see [`is_localhost`]). IPv6 and IPv4 addresses are
/// interleaved (IPv6 first).
pub fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
    total: Duration,
) -> Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if is_localhost(host) {
        // IPv4 first: a broker on the loopback listens there at least, IPv6 may be off.
        return Ok(vec![
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), port),
        ]);
    }
    let left = remaining(deadline, Step::Dns, total)?;
    let (tx, rx) = crate::client::queue::queue();
    let h = host.to_string();
    crate::client::threads::spawn(c"mqttsync-dns", move || {
        let r = (h.as_str(), port)
            .to_socket_addrs()
            .map(|a| a.collect::<Vec<_>>());
        tx.send(r);
    })
    .map_err(Error::from)?;
    let addrs = match rx.recv_timeout(Some(left)) {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            return Err(Error::Dns {
                host: host.to_string(),
                source: e.into(),
            })
        }
        Err(_) => return Err(Error::timeout(Step::Dns, total)),
    };
    if addrs.is_empty() {
        return Err(Error::Dns {
            host: host.to_string(),
            source: io::Error::new(io::ErrorKind::NotFound, "no addresses").into(),
        });
    }
    let (v6, v4): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv6());
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => {
                out.extend(x);
                out.extend(y);
            }
        }
    }
    Ok(out)
}

/// `localhost`, `localhost.` and names under it (`broker.localhost`), in any case: the
/// loopback addresses without asking the resolver (RFC 6761 6.3, as browsers and Go do).
/// The resolver would read /etc/nsswitch.conf and /etc/hosts, on another thread (the
/// deadline), for the name every example and local test uses.
fn is_localhost(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host).as_bytes();
    let tail = b"localhost";
    h.len() >= tail.len()
        && h[h.len() - tail.len()..].eq_ignore_ascii_case(tail)
        && (h.len() == tail.len() || h[h.len() - tail.len() - 1] == b'.')
}

/// How long an attempt may run before the next address is tried in parallel
/// (RFC 8305 "Connection Attempt Delay", the recommended 250 ms).
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to one of `addrs` within the deadline, happy-eyeballs style (RFC 8305, without
/// the DNS part): the first address is tried at once; while an attempt is pending the next
/// address is started after [`CONNECTION_ATTEMPT_DELAY`], and at once when an attempt fails.
/// The first connection to succeed wins and the others are closed. Sets TCP_NODELAY and
/// returns a blocking socket.
/// The returned socket's read and write timeouts are the time left until `deadline` (the
/// caller's next blocking step is bounded without another system call).
pub fn connect_tcp(addrs: &[SocketAddr], deadline: Instant, total: Duration) -> Result<TcpStream> {
    if let [addr] = addrs {
        return connect_one(*addr, deadline, total);
    }
    connect_tcp_staggered(addrs, deadline, total, CONNECTION_ATTEMPT_DELAY)
}

/// One address: a blocking connect bounded by the socket's send timeout, which Linux applies
/// to `connect` (it then fails with EINPROGRESS). Five system calls instead of the dozen of a
/// non-blocking connect watched by its own poller: connect latency.
pub(super) fn connect_one(
    addr: SocketAddr,
    deadline: Instant,
    total: Duration,
) -> Result<TcpStream> {
    let left = remaining(deadline, Step::TcpConnect, total)?;
    let failed = |e: io::Error| {
        log::debug!("TCP connect to {addr} failed: {e}");
        Error::Tcp {
            addr: addr.to_string(),
            source: e.into(),
        }
    };
    crate::tracehook::emit(
        crate::tracehook::MEDIUM,
        format_args!("TCP connect to {addr}"),
    );
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(Error::from)?;
    sock.set_write_timeout(Some(left)).map_err(Error::from)?;
    sock.set_read_timeout(Some(left)).map_err(Error::from)?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock =>
        {
            return Err(Error::timeout(Step::TcpConnect, total))
        }
        Err(e) => return Err(failed(e)),
    }
    sock.set_nodelay(true).map_err(Error::from)?;
    Ok(sock.into())
}

/// Starts a non-blocking connect; `true` when it completed at once.
pub(super) fn start_connect(addr: SocketAddr) -> io::Result<(Socket, bool)> {
    crate::tracehook::emit(
        crate::tracehook::MEDIUM,
        format_args!("TCP connect to {addr} (one of several addresses)"),
    );
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    match sock.connect(&addr.into()) {
        Ok(()) => Ok((sock, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((sock, false)),
        Err(e) => Err(e),
    }
}

/// A blocking connect that waits at most `limit` (the socket's send timeout, which Linux
/// applies to `connect`); `false`: still in progress after it, the socket now non-blocking
/// for a poller to watch the rest.
fn blocking_attempt(addr: SocketAddr, limit: Duration) -> io::Result<(Socket, bool)> {
    crate::tracehook::emit(
        crate::tracehook::MEDIUM,
        format_args!("TCP connect to {addr} (one of several addresses)"),
    );
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A zero timeout would mean none: at least a millisecond.
    sock.set_write_timeout(Some(limit.max(Duration::from_millis(1))))?;
    match sock.connect(&addr.into()) {
        Ok(()) => Ok((sock, true)),
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock
                // A signal: the connect goes on in the background.
                || e.kind() == io::ErrorKind::Interrupted =>
        {
            sock.set_nonblocking(true)?;
            Ok((sock, false))
        }
        Err(e) => Err(e),
    }
}

pub(super) fn finish_connect(
    sock: Socket,
    deadline: Instant,
    total: Duration,
) -> Result<TcpStream> {
    sock.set_nonblocking(false).map_err(Error::from)?;
    ready_for_handshake(sock, deadline, total)
}

/// A connected blocking socket: TCP_NODELAY, and read and write timeouts ending at the
/// deadline (the handshake's blocking steps).
fn ready_for_handshake(sock: Socket, deadline: Instant, total: Duration) -> Result<TcpStream> {
    sock.set_nodelay(true).map_err(Error::from)?;
    let left = remaining(deadline, Step::TcpConnect, total)?;
    sock.set_write_timeout(Some(left)).map_err(Error::from)?;
    sock.set_read_timeout(Some(left)).map_err(Error::from)?;
    Ok(sock.into())
}

pub(super) fn connect_tcp_staggered(
    addrs: &[SocketAddr],
    deadline: Instant,
    total: Duration,
    delay: Duration,
) -> Result<TcpStream> {
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};

    if addrs.is_empty() {
        return Err(Error::InvalidArgument("no address to connect to".into()));
    }
    let mut last: Option<Error> = None;
    let failed = |i: usize, e: io::Error| {
        log::debug!("TCP connect to {} failed: {e}", addrs[i]);
        Error::Tcp {
            addr: addrs[i].to_string(),
            source: e.into(),
        }
    };
    // Until an attempt is left pending, each is a plain blocking connect bounded by the
    // attempt delay (as `connect_one`): most finish or are refused well within it, and no
    // poller is needed (an epoll instance and non-blocking mode cost five more system calls
    // per connect, on the loopback `localhost` gives two addresses). One still in progress
    // after the delay goes on in the background, watched with the next ones.
    let mut next = 0usize;
    let mut first_pending = None;
    while next < addrs.len() {
        let i = next;
        next += 1;
        let left = remaining(deadline, Step::TcpConnect, total)?;
        match blocking_attempt(addrs[i], left.min(delay)) {
            Ok((sock, true)) => return ready_for_handshake(sock, deadline, total),
            Ok((sock, false)) => {
                first_pending = Some((i, sock));
                break;
            }
            Err(e) => last = Some(failed(i, e)),
        }
    }
    let Some((i, sock)) = first_pending else {
        return Err(
            last.unwrap_or_else(|| Error::InvalidArgument("no address to connect to".into()))
        );
    };
    let mut poll = Poll::new().map_err(Error::from)?;
    let mut events = Events::with_capacity(addrs.len());
    let watch = |poll: &Poll, i: usize, sock: &Socket| {
        poll.registry()
            .register(
                &mut SourceFd(&sock.as_raw_fd()),
                Token(i),
                Interest::WRITABLE,
            )
            .map_err(Error::from)
    };
    watch(&poll, i, &sock)?;
    // (index into addrs = mio token, socket) of the attempts under way.
    let mut pending: Vec<(usize, Socket)> = Vec::with_capacity(addrs.len());
    pending.push((i, sock));
    // The pending attempt has had its delay: the next one starts now.
    let mut next_start = Instant::now();
    loop {
        // Start attempts: at once while none is pending, else one when the delay is up.
        while next < addrs.len() && (pending.is_empty() || Instant::now() >= next_start) {
            let i = next;
            next += 1;
            match start_connect(addrs[i]) {
                Ok((sock, true)) => return finish_connect(sock, deadline, total),
                Ok((sock, false)) => {
                    watch(&poll, i, &sock)?;
                    pending.push((i, sock));
                    next_start = Instant::now() + delay;
                    break;
                }
                // Refused or unreachable at once: the next address goes now.
                Err(e) => last = Some(failed(i, e)),
            }
        }
        if pending.is_empty() {
            return Err(
                last.unwrap_or_else(|| Error::InvalidArgument("no address to connect to".into()))
            );
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::timeout(Step::TcpConnect, total));
        }
        let mut wait = deadline - now;
        if next < addrs.len() {
            wait = wait.min(next_start.saturating_duration_since(now));
        }
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(pos) = pending.iter().position(|(t, _)| *t == i) else {
                continue;
            };
            let outcome = match pending[pos].1.take_error() {
                Ok(None) => match pending[pos].1.peer_addr() {
                    Ok(_) => Ok(true),
                    // Woken before the connect finished: keep waiting.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                    Err(e) => Err(e),
                },
                Ok(Some(e)) | Err(e) => Err(e),
            };
            match outcome {
                Ok(false) => {}
                Ok(true) => {
                    let (_, sock) = pending.swap_remove(pos);
                    // The losers are closed when `pending` drops.
                    return finish_connect(sock, deadline, total);
                }
                Err(e) => {
                    let (_, sock) = pending.swap_remove(pos);
                    let _ = poll.registry().deregister(&mut SourceFd(&sock.as_raw_fd()));
                    last = Some(failed(i, e));
                    next_start = Instant::now();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names_are_recognised() {
        for h in [
            "localhost",
            "LocalHost",
            "localhost.",
            "broker.localhost",
            "a.b.LOCALHOST.",
        ] {
            assert!(is_localhost(h), "{h}");
        }
        for h in [
            "",
            "localhost.example",
            "mylocalhost",
            "localhos",
            "local",
            "example.com",
            "localhost..",
        ] {
            assert!(!is_localhost(h), "{h}");
        }
    }

    #[test]
    fn localhost_resolves_to_the_loopback_addresses_ipv4_first() {
        let total = Duration::from_secs(1);
        let a = resolve("localhost", 1883, Instant::now() + total, total).unwrap();
        assert_eq!(
            a,
            vec![
                SocketAddr::from(([127, 0, 0, 1], 1883)),
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 1883)),
            ]
        );
    }

    #[test]
    fn a_name_is_looked_up_on_a_pool_thread_within_the_deadline() {
        // A name that must not resolve (RFC 6761 .invalid): the resolver's answer comes back
        // from the pool thread, or, where it waits on an unreachable DNS server, the deadline
        // ends the wait.
        let total = Duration::from_secs(3);
        let t0 = Instant::now();
        let r = resolve("no-such-host.invalid", 1883, t0 + total, total);
        assert!(
            matches!(
                r,
                Err(Error::Dns { .. })
                    | Err(Error::Timeout {
                        step: Step::Dns,
                        ..
                    })
            ),
            "{r:?}"
        );
        assert!(t0.elapsed() < total + Duration::from_secs(1));
    }
}
