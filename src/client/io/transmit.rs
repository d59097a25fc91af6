//! The outbound path: session output to the socket.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{Io, IDLE_BUFFER, WRITE_HIGH_WATER};
use crate::error::Error;

impl Io {
    pub(super) fn flush(&mut self, now: Instant) {
        // Persist before transmit: a QoS 1/2 PUBLISH accepted by the session is written to
        // the store before its bytes can reach the server (as Paho does), so a process killed
        // after the broker saw it still resends it, and a record absent from the store means
        // the message never left this process. (Events were only processed after a read.)
        self.process_events();
        if self.stream.is_none() {
            return;
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        // Encode more only while the unsent backlog is small; the rest waits in the session
        // (and intake stops in `room_for_publishes`), so the buffer stays bounded.
        if self.wbuf.len() - self.wpos < WRITE_HIGH_WATER {
            self.session.poll_transmit(now, &mut self.wbuf);
        }
        while self.wpos < self.wbuf.len() {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            match stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => {
                    self.lose(Error::ConnectionLost(
                        "connection closed while writing".into(),
                    ));
                    return;
                }
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.lose(Error::Io(e));
                    return;
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
    }

    /// Writes what is queued with a short blocking deadline (used before closing).
    pub(super) fn flush_best_effort(&mut self) {
        // Store writes first, as in `flush`.
        self.process_events();
        let now = Instant::now();
        self.session.poll_transmit(now, &mut self.wbuf);
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_timeouts(Some(Duration::from_millis(500)));
            let _ = stream.write_all(&self.wbuf[self.wpos..]);
            let _ = stream.flush();
        }
        self.wbuf.clear();
        self.wpos = 0;
    }
}
