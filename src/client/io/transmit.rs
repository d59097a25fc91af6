//! The outbound path: session output to the socket, in one function.
//!
//! Every byte the client sends goes through [`Io::transmit`], which first processes the
//! session's events, persistence operations included, and only then takes bytes from the
//! session (`Session::poll_transmit`). So a QoS 1/2 PUBLISH accepted by the session is
//! written to the store before its bytes can reach the server (as Paho does): a process
//! killed after the broker saw it still resends it, and a record absent from the store
//! means the message never left this process. The same holds for the QoS 2 marker written
//! before a PUBREC. What differs between callers is only how the bytes are written
//! ([`Mode`]).

use std::io::Write;
use std::time::{Duration, Instant};

use super::{Io, IDLE_BUFFER, WRITE_HIGH_WATER};
use crate::error::{Error, LostCause};
use crate::transport::Stream;

/// How [`Io::transmit`] writes.
pub(super) enum Mode<'a> {
    /// A turn of the I/O thread: non-blocking writes until the socket is full; the rest
    /// waits in the write buffer for the next turn. A failed write loses the connection.
    Turn,
    /// A publish on the caller's thread while the I/O thread sleeps
    /// ([`Io::publish_direct`]): as `Turn`, but what the socket does not take, or a
    /// failure, is left to the I/O thread, which is woken to finish (or to handle the loss).
    Caller,
    /// The last bytes before the connection is closed (DISCONNECT): blocking, at most
    /// 500 ms per write; failures are ignored, the connection closes next anyway.
    BeforeClose,
    /// The CONNECT of a handshake, on a stream not yet owned by the loop: blocking within
    /// the handshake's deadlines; a failure is returned to the handshake.
    Handshake(&'a mut Stream),
}

impl Io {
    /// Processes the session's events (persistence first of all), takes the session's
    /// output and writes it as `mode` says. Only [`Mode::Handshake`] returns an error; the
    /// other modes deal with failures themselves.
    pub(super) fn transmit(&mut self, now: Instant, mode: Mode<'_>) -> std::io::Result<()> {
        // Persist before transmit (module documentation).
        self.process_events();
        let stream = match mode {
            Mode::Handshake(stream) => {
                self.wbuf.clear();
                self.wpos = 0;
                self.session.poll_transmit(now, &mut self.wbuf);
                let r = stream.write_all(&self.wbuf);
                self.wbuf.clear();
                return r;
            }
            _ if self.stream.is_none() => return Ok(()),
            Mode::BeforeClose => {
                self.session.poll_transmit(now, &mut self.wbuf);
                if let Some(stream) = self.stream.as_mut() {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_timeouts(Some(Duration::from_millis(500)));
                    let _ = stream.write_all(&self.wbuf[self.wpos..]);
                    let _ = stream.flush();
                }
                self.wbuf.clear();
                self.wpos = 0;
                return Ok(());
            }
            m => m,
        };
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        // Encode more only while the unsent backlog is small; the rest waits in the session
        // (and intake stops in `room_for_publishes`), so the buffer stays bounded.
        if self.wbuf.len() - self.wpos < WRITE_HIGH_WATER {
            self.session.poll_transmit(now, &mut self.wbuf);
        }
        let caller = matches!(stream, Mode::Caller);
        let mut handed_over = false;
        while self.wpos < self.wbuf.len() {
            let Some(stream) = self.stream.as_mut() else {
                return Ok(());
            };
            match stream.write(&self.wbuf[self.wpos..]) {
                Ok(n) if n > 0 => self.wpos += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // Full socket, closed or failed: the I/O thread finishes the write or meets
                // the error itself (and handles the loss).
                _ if caller => {
                    handed_over = true;
                    break;
                }
                Ok(_) => {
                    self.lose(Error::ConnectionLost(LostCause::ClosedWhileWriting));
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.lose(e.into());
                    return Ok(());
                }
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
            if self.wbuf.capacity() > 4 * IDLE_BUFFER {
                self.wbuf = Vec::new();
            }
        } else if self.wpos >= 64 * 1024 && self.wpos >= self.wbuf.len() / 2 {
            // Compact only when the written part is at least half: each byte moves at
            // most once on average (compacting after every partial write was quadratic).
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        if handed_over {
            self.shared.wake();
        } else if self.wpos != self.wbuf.len() {
            // The rest goes when epoll reports the socket writable.
            self.want_writable();
        }
        Ok(())
    }
}
