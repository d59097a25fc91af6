//! The I/O thread's loop: one turn of work (requests, writes, reads, timers), then a sleep
//! in poll until the socket, a request or a timer needs it.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::connection::ack_now;
use super::transmit::Mode;
use super::{Io, IDLE_BUFFER, MAX_READ, MIN_READ, QUIET, READ_BUDGET, SOCK};
use crate::client::STATE_DISCONNECTED;
use crate::error::{Error, LostCause};
use crate::proto::session::SessionError;
use crate::proto::{Disconnect, ProtocolVersion};
use crate::transport::{self, Stream};

/// What the I/O thread does after a turn of work.
enum Next {
    /// Sleep in poll for at most this long; `quiet_check`: a short sleep before a long one.
    Park {
        timeout: Option<Duration>,
        quiet_check: bool,
    },
    /// Requests arrived meanwhile: another turn at once.
    Again,
    /// Shut down (already finished).
    Exit,
}

/// A job of the I/O work on a client thread: the first one from `start`, later ones when a
/// dormant client is woken (see `sleep`). The `Io` is locked for each turn of work and
/// unlocked while the thread sleeps in poll, so a caller may publish on its own thread
/// meanwhile ([`Io::publish_direct`]).
///
/// A panic (a bug in mqttsync, or in a persistence store, whose calls run here) must not
/// leave a client that looks alive with nobody serving it: the client is closed and every
/// waiter answered ([`Io::crashed`]).
pub(crate) fn run(io: Arc<Mutex<Io>>) {
    let _awake = super::sleep::AWAKE.enter_below(u32::MAX);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(&io)));
    let sleeper = match r {
        // Dormant: a later job carries on.
        Ok(Ended::Dormant) => return,
        Ok(Ended::Finished(sleeper)) => sleeper,
        Err(_) => after_panic(&io),
    };
    sleeper.finished();
}

/// A turn of the I/O work panicked: the client is closed and every waiter answered
/// ([`Io::crashed`]); returns its sleeper, to tell the closer the work has ended.
fn after_panic(io: &Mutex<Io>) -> Arc<super::Sleeper> {
    log::error!("the I/O work of an mqttsync client panicked; the client is closed");
    let mut g = io.lock().unwrap_or_else(|e| e.into_inner());
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.crashed())).is_err() {
        log::error!("cleaning up after the panic panicked as well");
    }
    g.shared.sleeper.clone()
}

/// A dormant client's first turn, on the thread that rang for it (`Sleeper::ring_here`):
/// the same turn a pool job would make first. When it leaves nothing to wait for (no
/// poll: the connection ended, or the client shut down) the work ends here, dormant or
/// finished; otherwise a pool job carries on (it takes the `Io` once this thread let go).
/// A panic is handled as in [`run`].
pub(crate) fn run_here(io: Arc<Mutex<Io>>) {
    let _awake = super::sleep::AWAKE.enter_below(u32::MAX);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut g = io.lock().unwrap_or_else(|e| e.into_inner());
        let shared = g.shared.clone();
        shared.parked.store(false, Ordering::SeqCst);
        match g.turn() {
            Next::Exit => Some(Ended::Finished(shared.sleeper.clone())),
            Next::Park { .. } if g.poll.is_none() && shared.sleeper.go_dormant() => {
                g.mark_dormant();
                Some(Ended::Dormant)
            }
            // Something to wait for (a poll), or requests came meanwhile.
            _ => {
                shared.parked.store(false, Ordering::SeqCst);
                drop(g);
                shared.sleeper.continue_in_job();
                None
            }
        }
    }));
    match r {
        Ok(Some(Ended::Finished(sleeper))) => sleeper.finished(),
        Ok(_) => {}
        Err(_) => after_panic(&io).finished(),
    }
}

/// How a job ended.
enum Ended {
    /// The client went dormant.
    Dormant,
    /// The client is finished (its sleeper, to tell the closer).
    Finished(Arc<super::Sleeper>),
}

fn serve(io: &Mutex<Io>) -> Ended {
    // Two sources: the waker and the socket (edge-triggered: more would wait for the next
    // poll, not be lost).
    let mut events = mio::Events::with_capacity(2);
    let mut g = io.lock().unwrap_or_else(|e| e.into_inner());
    let shared = g.shared.clone();
    shared.parked.store(false, Ordering::SeqCst);
    // Events of the last poll, still to be looked at.
    let mut polled: Option<bool> = None;
    loop {
        if let Some(quiet_check) = polled.take() {
            g.take_events(&events, quiet_check);
        }
        let (timeout, quiet_check) = match g.turn() {
            Next::Exit => return Ended::Finished(shared.sleeper.clone()),
            Next::Again => continue,
            Next::Park {
                timeout,
                quiet_check,
            } => (timeout, quiet_check),
        };
        // The poll leaves the `Io` while the thread sleeps in it (nobody else uses it).
        let Some(mut poll) = g.poll.take() else {
            // Without a poll (`shed`): dormant, unless a ring came meanwhile.
            if shared.sleeper.go_dormant() {
                // Still under the lock: the next job sees it (`resume`).
                g.mark_dormant();
                return Ended::Dormant;
            }
            shared.parked.store(false, Ordering::SeqCst);
            continue;
        };
        drop(g);
        let r = poll.poll(&mut events, timeout);
        shared.parked.store(false, Ordering::SeqCst);
        g = io.lock().unwrap_or_else(|e| e.into_inner());
        g.poll = Some(poll);
        match r {
            Ok(()) => polled = Some(quiet_check),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::error!("poll failed: {e}");
                g.lose(e.into());
            }
        }
    }
}

impl Io {
    /// One turn of work: requests, writes, reads, timers; then how to wait.
    fn turn(&mut self) -> Next {
        let now = Instant::now();
        // Woken (a timer, a request, a write, the peer's close): whatever the turn does,
        // replies may follow, and a consumer busy with what it read (`lend`) would read
        // them only afterwards.
        self.reclaim_idle_lend();
        // Requests before the poll: a dormant client woken to shut down, or to disconnect
        // with nothing in flight, ends its connection without making a poll first.
        self.handle_controls(now);
        if self.shutdown {
            self.finish();
            return Next::Exit;
        }
        if self.t.disconnecting.is_some() {
            // The application's acknowledgements made before the disconnect go with it.
            self.take_acks();
            self.check_disconnecting(now);
        }
        self.resume();
        self.handle_publishes();
        self.take_acks();
        let _ = self.transmit(now, Mode::Turn);
        self.pump_overflow();
        // While lent, the borrower reads (`lend`); it must see every reply itself.
        if self.stream.is_some() && self.readable && !self.paused() && !self.lent {
            self.read(now);
        }
        let _ = self.transmit(now, Mode::Turn);
        if std::mem::take(&mut self.ack_soon) {
            if let Some(stream) = self.stream.as_ref() {
                ack_now(stream);
            }
        }
        self.check_disconnecting(now);
        self.run_timers(now);
        if self.shutdown {
            self.finish();
            return Next::Exit;
        }

        let mut timeout = self.next_timeout(now);
        if timeout != Some(Duration::ZERO) {
            // Without its poll after this (many jobs awake), the job goes dormant below.
            self.shed_if_crowded(now);
        }
        // Before a long sleep, a short one: if nothing happens in it, the connection is
        // quiet and its buffers go back to the allocator (memory per idle client).
        // Busy connections never reach the end of the short sleep, so pay nothing.
        let quiet_check = !self.trimmed && timeout.is_none_or(|t| t > QUIET);
        if quiet_check {
            timeout = Some(QUIET);
        } else if let Some(at) = self.shed_at() {
            // Quiet for longer still: the poll and its waker go back too (descriptors per
            // idle client), the watcher watches the socket.
            if now >= at {
                self.shed(now);
            } else {
                let wait = at - now;
                timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
            }
        }
        self.shared.parked.store(true, Ordering::SeqCst);
        if timeout != Some(Duration::ZERO) && self.has_requests() {
            self.shared.parked.store(false, Ordering::SeqCst);
            return Next::Again;
        }
        Next::Park {
            timeout,
            quiet_check,
        }
    }

    fn take_events(&mut self, events: &mio::Events, quiet_check: bool) {
        if events.is_empty() {
            if quiet_check {
                self.release_idle_memory();
            }
        } else {
            self.trimmed = false;
        }
        for ev in events.iter() {
            if ev.token() == SOCK && (ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                self.readable = true;
            }
        }
    }

    /// Frees the read and write buffers and the session's empty queues (see `QUIET`).
    pub(super) fn release_idle_memory(&mut self) {
        self.trimmed = true;
        self.quiet_at = Instant::now();
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
            self.read_chunk = MIN_READ;
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf = Vec::new();
            self.wpos = 0;
        }
        self.session.release_idle_memory();
        self.t.release();
        self.shared.publishes.trim();
        self.shared.ctl.trim();
    }

    pub(super) fn has_requests(&self) -> bool {
        !self.shared.ctl.is_empty()
            || self.shared.acks_pending()
            || (!self.shared.publishes.is_empty() && self.room_for_publishes())
    }

    pub(super) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.stream.is_some() && self.readable && !self.paused() && !self.lent {
            return Some(Duration::ZERO);
        }
        let mut t: Option<Instant> = None;
        let mut consider = |i: Option<Instant>| {
            if let Some(i) = i {
                t = Some(t.map_or(i, |c| c.min(i)));
            }
        };
        if self.stream.is_some() {
            consider(self.session.poll_timeout());
        }
        consider(self.reconnect_at);
        consider(self.t.disconnecting.as_ref().map(|d| d.deadline));
        if !self.t.overflow.is_empty() {
            // Consumers wake us when they take an item; poll now and then regardless.
            consider(Some(now + Duration::from_millis(50)));
        }
        t.map(|t| t.saturating_duration_since(now))
    }

    /// Reading is paused for back-pressure and bytes from the server wait unread in the
    /// socket: the server is alive, only the application is slow.
    pub(super) fn alive_but_unread(&self) -> bool {
        if !self.paused() {
            return false;
        }
        let Some(stream) = self.stream.as_ref() else {
            return false;
        };
        let mut byte = [0u8; 1];
        matches!(stream.tcp().peek(&mut byte), Ok(n) if n > 0)
    }

    pub(super) fn paused(&self) -> bool {
        !self.t.overflow.is_empty() && self.shared.dispatch_waiting.load(Ordering::SeqCst) == 0
    }

    pub(super) fn read(&mut self, now: Instant) {
        let mut budget = READ_BUDGET;
        let mut read_any = false;
        while budget > 0 && !self.paused() {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            match read_into(stream, &mut self.rbuf, self.read_chunk) {
                Ok(0) => {
                    self.lose(Error::ConnectionLost(LostCause::ClosedByServer));
                    return;
                }
                Ok(n) => {
                    read_any = true;
                    budget = budget.saturating_sub(n);
                    self.read_chunk = next_read_chunk(self.read_chunk, n);
                    if let Err(e) = self.session.handle_input(now, &mut self.rbuf) {
                        self.protocol_failure(e);
                        return;
                    }
                    self.process_events();
                    if self.stream.is_none() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    // An idle connection keeps no large buffer, and a wake-up that found
                    // nothing to read keeps none at all (memory per idle client).
                    if self.rbuf.is_empty() && (!read_any || self.rbuf.capacity() > IDLE_BUFFER) {
                        self.rbuf = BytesMut::new();
                    }
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.lose(transport::io_error(e));
                    return;
                }
            }
        }
    }

    pub(super) fn protocol_failure(&mut self, e: SessionError) {
        log::warn!("closing connection: {e}");
        // A keepalive timeout means the peer is gone: no goodbye (and 0x8D is a reason code
        // only the server may send, MQTT 5 table 3.14.2.1).
        if self.version == ProtocolVersion::V5 && e != SessionError::KeepAliveTimeout {
            let code = e.reason_code();
            self.session.disconnect(Disconnect {
                reason: code,
                properties: Default::default(),
            });
            let _ = self.transmit(Instant::now(), Mode::BeforeClose);
        }
        let err = match e {
            SessionError::KeepAliveTimeout => Error::ConnectionLost(LostCause::KeepAliveTimeout),
            other => Error::Protocol(other),
        };
        self.lose(err);
    }

    pub(super) fn check_disconnecting(&mut self, now: Instant) {
        let Some(d) = self.t.disconnecting.as_ref() else {
            return;
        };
        if self.stream.is_none() {
            if let Some(mut d) = self.t.disconnecting.take() {
                if let Some(r) = d.reply.take() {
                    r.send(Ok(()));
                }
            }
            return;
        }
        let done = self.session.pending_publishes().is_empty() && self.shared.publishes.is_empty();
        if !done && now < d.deadline {
            return;
        }
        let Some(mut d) = self.t.disconnecting.take() else {
            return;
        };
        self.session.disconnect(d.packet.clone());
        let _ = self.transmit(Instant::now(), Mode::BeforeClose);
        self.close_stream();
        self.session.connection_lost();
        self.fail_waiters(Error::ConnectionLost(LostCause::Disconnected));
        self.shared.set_state(STATE_DISCONNECTED);
        self.poke_tokens();
        if let Some(r) = d.reply.take() {
            r.send(Ok(()));
        }
    }

    pub(super) fn run_timers(&mut self, now: Instant) {
        if self.stream.is_some() {
            if self.alive_but_unread() {
                // Count the waiting bytes as an answer, so that keepalive does not declare a
                // live server dead while the application is slow (PINGREQs still go out when
                // the client has sent nothing for the interval).
                self.session.server_alive(now);
            }
            if let Err(e) = self.session.handle_timeout(now) {
                self.protocol_failure(e);
            }
            let _ = self.transmit(now, Mode::Turn);
        } else if let Some(at) = self.reconnect_at {
            if now >= at {
                self.reconnect_at = None;
                if !self.before_reconnect_hook() {
                    self.schedule_reconnect(Instant::now());
                    return;
                }
                match self.establish() {
                    Ok(_) => {
                        self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        log::info!("reconnect failed: {}", e.report());
                        self.schedule_reconnect(Instant::now());
                    }
                }
            }
        }
    }
}

/// Size of the next read after one of `chunk` bytes returned `n`: four times larger when the
/// read filled it, else the power of two that holds `n`, within [`MIN_READ`, `MAX_READ`].
pub(super) fn next_read_chunk(chunk: usize, n: usize) -> usize {
    if n == chunk {
        (n * 4).min(MAX_READ)
    } else {
        n.next_power_of_two().clamp(MIN_READ, MAX_READ)
    }
}

/// Reads at most `chunk` bytes from `stream` onto the end of `buf`.
pub(super) fn read_into(
    stream: &mut Stream,
    buf: &mut BytesMut,
    chunk: usize,
) -> std::io::Result<usize> {
    let len = buf.len();
    buf.resize(len + chunk, 0);
    let r = stream.read(&mut buf[len..]);
    buf.truncate(len + *r.as_ref().unwrap_or(&0));
    r
}
