//! Connection lifecycle on the I/O thread: the handshake (`establish`, also run on the
//! caller's thread for the first connect), reconnect scheduling, loss and shutdown.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::event_loop::read_into;
use super::lend::spin_readable;
use super::transmit::Mode;
use super::{Io, SubWaiter, MIN_READ, STABLE_CONNECTION};
use crate::client::options::HttpOptions;
use crate::client::{
    ConnectInfo, Incoming, PubReq, STATE_CLOSED, STATE_CONNECTED, STATE_DISCONNECTED,
    STATE_RECONNECTING,
};
use crate::error::{Error, LostCause, Result, Step};
use crate::proto::session::{Event, SessionError};
use crate::proto::{reason, Disconnect, Properties, ProtocolVersion, QoS, SubscribeFilter};
use crate::transport::{self, Stream};

/// How many times its connection's poll budget a thread waiting for the CONNACK polls
/// before it sleeps. A broker takes longer over a CONNECT than over a PUBACK (it accepts
/// the connection, looks the session up, may authenticate): with the reply budget the poll
/// missed the CONNACK of a local mosquitto on every connect and the thread slept and was
/// woken after all. A connect is rare, so the longer poll costs little even where it
/// misses (a distant broker).
const CONNACK_SPIN_FACTOR: u32 = 4;

/// The HTTP options of a client with none set.
static NO_HTTP: HttpOptions = HttpOptions {
    headers: Vec::new(),
    http_proxy: None,
    https_proxy: None,
    proxy_from_env: false,
};
/// The HTTP options of a client with only `proxy_from_env` set.
static ENV_HTTP: HttpOptions = HttpOptions {
    headers: Vec::new(),
    http_proxy: None,
    https_proxy: None,
    proxy_from_env: true,
};

impl Io {
    /// Runs the application's `before_reconnect` hook, if any, and takes the credentials
    /// it leaves; false when it asks to skip this attempt.
    pub(super) fn before_reconnect_hook(&mut self) -> bool {
        let Some(f) = self.before_reconnect.as_mut() else {
            return true;
        };
        let mut c = crate::ReconnectCredentials {
            username: self.connect.username.clone(),
            password: self.connect.password.clone(),
            properties: self.connect.properties.clone(),
        };
        let go = f(&mut c);
        self.connect.username = c.username;
        self.connect.password = c.password;
        self.connect.properties = c.properties;
        go
    }

    pub(super) fn establish(&mut self) -> Result<ConnectInfo> {
        let mut last = None;
        for i in 0..self.servers.len() {
            match self.establish_one(i) {
                Ok(info) => return Ok(info),
                Err(e) => {
                    let uri = &self.servers[i];
                    log::info!("connect to {uri} failed: {}", e.report());
                    crate::tracehook::emit(
                        crate::tracehook::MINIMUM,
                        format_args!("{}: connect to {uri} failed: {e}", self.connect.client_id),
                    );
                    self.session.connection_lost();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::NotConnected))
    }

    /// Connects to `self.servers[index]`.
    pub(super) fn establish_one(&mut self, index: usize) -> Result<ConnectInfo> {
        // Cloned: the connect below needs `self` mutably.
        let uri = &self.servers[index].clone();
        crate::tracehook::emit(
            crate::tracehook::MINIMUM,
            format_args!(
                "{}: connecting to {uri} ({}:{}) with MQTT protocol level {}",
                self.connect.client_id,
                uri.host,
                uri.port,
                self.connect.protocol.level()
            ),
        );
        let total = self.connect_timeout;
        let start = Instant::now();
        let deadline = start + total;
        let mut stream = transport::open_with(
            uri,
            self.tls.as_deref(),
            self.http.as_deref().unwrap_or(if self.proxy_from_env {
                &ENV_HTTP
            } else {
                &NO_HTTP
            }),
            deadline,
            total,
        )?;
        self.rbuf.clear();
        self.wbuf.clear();
        self.wpos = 0;
        // Failing over to another server of the list: its session is its own (see
        // `Session::set_server_changed`).
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let server_changed = self.session_server.is_some_and(|s| s != index);
        self.session.set_server_changed(server_changed);
        self.session.connect(start, self.connect.clone())?;
        self.transmit(Instant::now(), Mode::Handshake(&mut stream))
            .map_err(|e| map_timeout(e, Step::ConnAck, total))?;
        // A plain TCP stream comes from `connect_tcp` with its timeouts ending at the
        // deadline (give or take the CONNECT write): the first read needs no refresh.
        let mut fresh = matches!(stream, Stream::Tcp(_));
        let connack = loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::timeout(Step::ConnAck, total));
            }
            if !fresh {
                let left = (deadline - now).max(Duration::from_millis(1));
                stream.tcp().set_read_timeout(Some(left))?;
            }
            fresh = false;
            // A local broker answers sooner than this thread, asleep in `read`, can be
            // woken: poll for the connection's budget first (`threads::Spin`), here
            // [`CONNACK_SPIN_FACTOR`] times as long.
            if let Stream::Tcp(tcp) = &stream {
                let until = self
                    .spin
                    .turn()
                    .map(|budget| (now + budget * CONNACK_SPIN_FACTOR).min(deadline));
                if let Some(hit) = until.and_then(|u| spin_readable(tcp.as_raw_fd(), u)) {
                    self.spin.record(hit);
                }
            }
            let n = read_into(&mut stream, &mut self.rbuf, MIN_READ)
                .map_err(|e| map_timeout(e, Step::ConnAck, total))?;
            if n == 0 {
                return Err(Error::ConnectionLost(LostCause::ClosedBeforeConnAck));
            }
            self.session
                .handle_input(Instant::now(), &mut self.rbuf)
                .map_err(session_error)?;
            let mut found = None;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    Event::Connected(ack) => {
                        found = Some(Ok(ack));
                        break;
                    }
                    Event::ConnectionRefused(ack) => {
                        let reason = if self.version == ProtocolVersion::V5 {
                            reason::reason_name(ack.code).unwrap_or("Unspecified error")
                        } else {
                            reason::connack_v3_name(ack.code)
                        };
                        found = Some(Err(Error::ConnectionRefused {
                            code: ack.code,
                            reason,
                            properties: ack.properties,
                        }));
                        break;
                    }
                    Event::ServerDisconnect(d) => {
                        found = Some(Err(Error::ConnectionLost(
                            LostCause::DisconnectBeforeConnAck { code: d.reason },
                        )));
                        break;
                    }
                    // Store changes (from `restore`, or left from the last connection)
                    // must not be lost with the other early events.
                    Event::Persist(op) => self.persist(op),
                    other => log::debug!("event before CONNACK ignored: {other:?}"),
                }
            }
            if let Some(f) = found {
                break f?;
            }
        };
        // Queued messages of a resumed session may follow the CONNACK at once. Without a
        // session nothing follows it before the client's next packet, which carries the ACK.
        if connack.session_present {
            ack_now(&stream);
        }
        // Non-blocking from here on, so the handshake's timeouts no longer apply.
        stream.set_nonblocking(true)?;
        let fd = stream.as_raw_fd();
        self.watch_in_own_poll(fd)?;
        self.stream = Some(stream);
        self.readable = true;
        let info = ConnectInfo {
            session_present: connack.session_present,
            // One form, with the scheme: a URI given without one is TCP.
            server: if uri.original.contains("://") {
                uri.original.clone()
            } else {
                format!("tcp://{}", uri.original)
            },
            version: self.version,
            properties: connack.properties.clone(),
        };
        *self
            .shared
            .connect_info
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(info.clone());
        self.shared.set_state(STATE_CONNECTED);
        self.backoff = self
            .reconnect
            .as_ref()
            .map(|r| r.min_delay)
            .unwrap_or_default();
        log::info!(
            "connected to {uri} (session present: {})",
            connack.session_present
        );
        self.session_server = Some(index);
        if !connack.session_present || server_changed {
            // Receipts of messages from an earlier session (or another server's) must not
            // acknowledge ids of this one.
            self.shared.new_ack_generation();
        }
        crate::tracehook::emit(
            crate::tracehook::MINIMUM,
            format_args!(
                "{}: connected to {uri} (session present {})",
                self.connect.client_id,
                u8::from(connack.session_present)
            ),
        );
        if self.ever_connected && !connack.session_present {
            self.resubscribe_all();
        }
        self.ever_connected = true;
        let offline: Vec<PubReq> = match self.t.existing_mut() {
            Some(p) => p.offline.drain(..).collect(),
            None => Vec::new(),
        };
        for req in offline {
            self.publish(req);
        }
        self.deliver(Incoming::Connected(connack.session_present));
        // Events that arrived together with CONNACK.
        self.process_events();
        Ok(info)
    }

    /// After a reconnect that found no session: subscribe again to everything granted
    /// before (grouped as they were requested is not needed; one SUBSCRIBE per properties
    /// set keeps subscription identifiers right).
    pub(super) fn resubscribe_all(&mut self) {
        if !self.resubscribe || self.subscriptions.is_empty() {
            return;
        }
        let mut groups: Vec<(Properties, Vec<SubscribeFilter>)> = Vec::new();
        for (f, p) in &self.subscriptions {
            match groups.iter_mut().find(|(gp, _)| gp == p) {
                Some((_, v)) => v.push(f.clone()),
                None => groups.push((p.clone(), vec![f.clone()])),
            }
        }
        for (properties, filters) in groups {
            log::info!(
                "session lost: re-subscribing to {} filter(s)",
                filters.len()
            );
            match self.session.subscribe(filters.clone(), properties.clone()) {
                Ok(id) => {
                    self.t.sub_waiters.insert(
                        id,
                        SubWaiter {
                            reply: None,
                            filters,
                            properties,
                        },
                    );
                }
                Err(e) => log::error!("re-subscribe failed: {e}"),
            }
        }
    }

    pub(super) fn schedule_reconnect(&mut self, now: Instant) {
        let Some(r) = self.reconnect.as_ref() else {
            return;
        };
        // Exponential backoff with "full jitter" between half and all of the delay.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let d = self.backoff;
        let jitter = (d.as_nanos() as u64 / 2).max(1);
        let delay = d / 2 + Duration::from_nanos(self.rng % jitter);
        self.reconnect_at = Some(now + delay);
        self.backoff = (d * 2).min(r.max_delay).max(r.min_delay);
        self.shared.set_state(STATE_RECONNECTING);
    }

    /// The connection failed: close it, keep the session, tell everyone, maybe reconnect.
    pub(super) fn lose(&mut self, err: Error) {
        if self.stream.is_none() {
            return;
        }
        log::warn!("{}", err.clone().into_lost().report());
        self.close_stream();
        self.session.connection_lost();
        self.fail_waiters(err.clone().into_lost());
        if let Some(mut d) = self.t.existing_mut().and_then(|p| p.disconnecting.take()) {
            if let Some(r) = d.reply.take() {
                r.send(Ok(()));
            }
        }
        // A connection that lived a while resets the backoff; one the broker drops at once
        // (refusing us in a loop) keeps it growing, so there is no reconnect storm.
        if self
            .connected_at
            .take()
            .is_some_and(|t| t.elapsed() >= STABLE_CONNECTION)
        {
            self.backoff = self
                .reconnect
                .as_ref()
                .map(|r| r.min_delay)
                .unwrap_or_default();
        }
        let err = Arc::new(err);
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(err.clone());
        if self.reconnect.is_some() && !self.user_disconnected && !self.shutdown {
            self.schedule_reconnect(Instant::now());
        } else {
            self.shared.set_state(STATE_DISCONNECTED);
        }
        self.poke_tokens();
        self.deliver(Incoming::Lost(err));
    }

    pub(super) fn close_stream(&mut self) {
        if let Some(s) = self.stream.take() {
            self.unwatch(s.as_raw_fd());
            s.shutdown();
        }
        self.readable = false;
        self.rbuf.clear();
        self.wbuf.clear();
        self.wpos = 0;
    }

    /// Answers every waiting subscribe and unsubscribe with `err`.
    pub(super) fn fail_waiters(&mut self, err: Error) {
        let Some(p) = self.t.existing_mut() else {
            return;
        };
        for (_, w) in p.sub_waiters.drain() {
            if let Some(tx) = w.reply {
                tx.send(Err(err.clone()));
            }
        }
        for (_, w) in p.unsub_waiters.drain() {
            if let Some(tx) = w.reply {
                tx.send(Err(err.clone()));
            }
        }
    }

    pub(super) fn finish(&mut self) {
        // Acknowledgements made until now: QoS 2 markers reach the store, PUBACK/PUBREC go
        // out with the goodbye.
        self.shared.release_all_held();
        self.take_acks();
        self.process_events();
        if self.stream.is_some() {
            self.session.disconnect(Disconnect::default());
            let _ = self.transmit(Instant::now(), Mode::BeforeClose);
            self.close_stream();
        }
        // Publishes accepted and not taken yet: with a store, QoS 1/2 ones go into the
        // session (so into the store, for the next client over it) before it closes.
        let queued = self.shared.publishes.close();
        for req in queued {
            if self.store.is_some() && req.publish.qos != QoS::AtMostOnce {
                self.publish(*req);
            } else {
                req.token.complete(Err(Arc::new(Error::Closed)));
            }
        }
        self.shared.set_state(STATE_CLOSED);
        self.fail_waiters(Error::ConnectionLost(LostCause::ClientClosed));
        self.fail_offline(Error::Closed);
        // Control requests not taken: dropping their reply ends the caller's wait.
        drop(self.shared.ctl.close());
        // Publishers waiting for room see the closed state.
        self.shared.notify_room();
        self.poke_tokens();
        if let Some(st) = self.store.as_mut() {
            if let Err(e) = st.close() {
                log::warn!("closing persistence failed: {}", crate::error::report(&e));
            }
        }
        // Remaining overflow is handed over so nothing received is dropped.
        while let Some(item) = self.t.overflow.pop_front() {
            match self
                .dispatch_tx
                .as_mut()
                .filter(|_| self.messages_to_dispatch)
            {
                Some(d) => d.send(item),
                None => self.msg_tx.send(item),
            }
        }
        self.dispatch_tx = None;
    }

    /// The I/O thread panicked: the client is closed and everyone waiting is answered with
    /// [`LostCause::IoThreadPanicked`], touching as little as possible (no store, no
    /// goodbye to the server: the state the panic left is not to be trusted).
    pub(super) fn crashed(&mut self) {
        let err = Error::ConnectionLost(LostCause::IoThreadPanicked);
        // First, so that new calls fail at once and waiters that wake see it.
        self.shared.set_state(STATE_CLOSED);
        self.shutdown = true;
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(err.clone()));
        if let Some(s) = self.stream.take() {
            self.unwatch(s.as_raw_fd());
            s.shutdown();
        }
        self.fail_waiters(err.clone());
        if let Some(mut d) = self.t.disconnecting.take() {
            if let Some(r) = d.reply.take() {
                r.send(Err(err.clone()));
            }
        }
        // Control requests not taken: dropping their reply ends the caller's wait.
        drop(self.shared.ctl.close());
        let shared_err = Arc::new(err.clone());
        for (_, (_, token)) in self.t.tokens.drain() {
            token.complete(Err(shared_err.clone()));
        }
        for req in self.t.offline.drain(..) {
            req.token.complete(Err(shared_err.clone()));
        }
        for req in self.shared.publishes.close() {
            req.token.complete(Err(shared_err.clone()));
        }
        self.shared.notify_room();
        // Receivers: the loss first (one of them gets it), then the end of the queue.
        self.msg_tx.send(Incoming::Lost(shared_err.clone()));
        self.msg_tx.close();
        if let Some(mut tx) = self.dispatch_tx.take() {
            tx.send(Incoming::Lost(shared_err));
        }
        self.shared.acks_stored(u64::MAX);
    }
}

/// Acknowledges what was read at once instead of after the delayed-ACK timer (up to 40 ms
/// on Linux). A broker that leaves Nagle's algorithm on (stock mosquitto does) holds its next
/// small packet until the previous one is acknowledged, and after an exchange such as
/// SUBSCRIBE/SUBACK the client has nothing to send that would carry the ACK: the first
/// message on a new subscription then arrived 40 ms late (`cargo run --example quickstart`
/// against a stock mosquitto: 41 ms, 0.2 ms with this). Used after CONNACK, SUBACK and
/// UNSUBACK only: doing it after every read also removed the broker's Nagle stalls inside
/// QoS 0 streams (p90 35 ms -> 0.2 ms at 10 000 messages/s), but cost 25 % more client CPU
/// per message and a quarter of the throughput of a saturated stream, overriding a batching
/// choice that belongs to the broker (`set_tcp_nodelay`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn ack_now(stream: &Stream) {
    use std::os::fd::AsRawFd;
    // 2 rather than 1: a pending ACK goes out either way, and with the low bit clear Linux
    // then returns the socket to delayed acknowledgements (`__tcp_sock_set_quickack`).
    let val: libc::c_int = 2;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local; the fd belongs
    // to the open stream for the duration of the call. A failure changes nothing and is
    // ignored (the ACK then goes out on the kernel's timer, as without this call).
    unsafe {
        libc::setsockopt(
            stream.tcp().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            std::ptr::addr_of!(val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn ack_now(_stream: &Stream) {}

pub(super) fn map_timeout(e: std::io::Error, step: Step, total: Duration) -> Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            Error::timeout(step, total)
        }
        _ => crate::transport::io_error(e),
    }
}

fn session_error(e: SessionError) -> Error {
    Error::Protocol(e)
}
