//! Requests from the API handles: control requests (connect, subscribe, unsubscribe,
//! disconnect, ...), publishes (from the channel, or on the caller's thread while the I/O
//! thread sleeps) and acknowledgements of received messages.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::transmit::Mode;
use super::{Disconnecting, Io, SubWaiter, UnsubWaiter, WRITE_HIGH_WATER};
use crate::client::token::{Delivered, TokenInner};
use crate::client::{
    ConnectInfo, Control, PubReq, STATE_CLOSED, STATE_CONNECTED, STATE_CONNECTING,
    STATE_DISCONNECTED, STATE_RECONNECTING,
};
use crate::error::{Error, LostCause};
use crate::proto::QoS;

impl Io {
    pub(super) fn handle_controls(&mut self, now: Instant) {
        loop {
            match self.shared.ctl.try_recv() {
                Some(c) => self.handle_control(now, c),
                None => break,
            }
            if self.shutdown {
                break;
            }
        }
    }

    pub(super) fn handle_control(&mut self, now: Instant, c: Control) {
        match c {
            Control::Connect { reply } => {
                if self.stream.is_some() {
                    reply.send(Ok(self.current_info()));
                    return;
                }
                self.user_disconnected = false;
                let r = self.establish();
                if let Err(e) = &r {
                    self.shared.set_state(STATE_DISCONNECTED);
                    *self
                        .shared
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(e.clone()));
                }
                reply.send(r);
            }
            Control::Subscribe {
                filters,
                properties,
                reply,
            } => {
                if self.stream.is_none() {
                    reply.send(Err(Error::NotConnected));
                    return;
                }
                match self.session.subscribe(filters.clone(), properties.clone()) {
                    Ok(id) => {
                        self.t.sub_waiters.insert(
                            id,
                            SubWaiter {
                                reply: Some(reply),
                                filters,
                                properties,
                            },
                        );
                    }
                    Err(e) => {
                        reply.send(Err(e.into()));
                    }
                }
            }
            Control::Unsubscribe {
                filters,
                properties,
                reply,
            } => {
                if self.stream.is_none() {
                    reply.send(Err(Error::NotConnected));
                    return;
                }
                match self.session.unsubscribe(filters.clone(), properties) {
                    Ok(id) => {
                        self.t.unsub_waiters.insert(
                            id,
                            UnsubWaiter {
                                reply: Some(reply),
                                filters,
                            },
                        );
                    }
                    Err(e) => {
                        reply.send(Err(e.into()));
                    }
                }
            }
            Control::Disconnect {
                packet,
                timeout,
                reply,
            } => {
                self.user_disconnected = true;
                self.reconnect_at = None;
                if self.stream.is_none() {
                    if self.shared.state.load(Ordering::Acquire) != STATE_CLOSED {
                        self.shared.set_state(STATE_DISCONNECTED);
                    }
                    self.fail_offline(Error::NotConnected);
                    self.poke_tokens();
                    reply.send(Ok(()));
                    return;
                }
                // Everything published before the disconnect goes out first.
                self.drain_all_publishes();
                self.t.disconnecting = Some(Disconnecting {
                    deadline: now + timeout,
                    packet,
                    reply: Some(reply),
                });
            }
            Control::Abort => {
                self.user_disconnected = true;
                if self.stream.is_some() {
                    self.lose(Error::ConnectionLost(LostCause::Aborted));
                }
            }
            Control::Pending { reply } => {
                // Publishes queued before this request count as pending (and are persisted).
                self.handle_publishes();
                let mut v: Vec<(u64, u16)> = self
                    .t
                    .tokens
                    .iter()
                    .map(|(pkid, (id, _))| (*id, *pkid))
                    .collect();
                v.sort_unstable();
                reply.send(v);
            }
            Control::PendingTokens { reply } => {
                self.handle_publishes();
                let mut v: Vec<(u64, u16, Arc<TokenInner>)> = self
                    .t
                    .tokens
                    .iter()
                    .map(|(pkid, (id, t))| (*id, *pkid, t.clone()))
                    .collect();
                v.sort_unstable_by_key(|e| e.0);
                reply.send(v);
            }
            Control::Shutdown => {
                self.shutdown = true;
            }
        }
    }

    pub(super) fn handle_publishes(&mut self) {
        while self.room_for_publishes() {
            match self.shared.publishes.try_recv() {
                Some(req) => self.publish(*req),
                None => break,
            }
        }
        self.intake_paused = self.session.queued_len() >= self.max_queued;
        self.room_made();
    }

    /// Wakes waiting publishers once the request channel is at most half full.
    pub(super) fn room_made(&self) {
        let half = self.shared.publishes.capacity() / 2;
        if self.shared.publishes.len() <= half {
            self.shared.notify_room();
        }
    }

    pub(super) fn drain_all_publishes(&mut self) {
        while let Some(req) = self.shared.publishes.try_recv() {
            self.publish(*req);
        }
        self.room_made();
    }

    pub(super) fn publish(&mut self, mut req: PubReq) {
        match req.token.begin_take() {
            // Withdrawn by its publisher (`DeliveryToken::withdraw`): never sent.
            Err(()) => return,
            // Held in a record of the publisher's meanwhile: the session's record names it.
            Ok(Some(held)) => req.replaces = Some(held),
            Ok(None) => {}
        }
        match self.shared.state.load(Ordering::Acquire) {
            STATE_CONNECTED if self.stream.is_some() => {}
            STATE_RECONNECTING | STATE_CONNECTING => {
                let max = self.reconnect.as_ref().map_or(0, |r| r.max_buffered);
                // With a store, a QoS 1/2 publish goes into the session now, persisted as
                // one made while connected: it survives a kill or a close before the
                // server is back (the offline buffer is memory only), and the next
                // connection sends it with the session's other queued messages.
                let stored = self.store.is_some() && req.publish.qos != QoS::AtMostOnce;
                let buffered = self.t.offline.len();
                if stored && buffered + self.session.queued_len() < max {
                    // Below, as when connected.
                } else if !stored && buffered < max {
                    self.t.offline.push_back(req);
                    return;
                } else {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "offline buffer full: publish to {} dropped",
                        req.publish.topic
                    );
                    self.remove_replaced(req.replaces);
                    req.token.complete(Err(Arc::new(Error::NotConnected)));
                    return;
                }
            }
            // Accepted while connected, and the connection went (no automatic reconnect),
            // or the client closes: with a store the session takes a QoS 1/2 message all the
            // same, and the next connection over the store (`MQTTClient_connect`,
            // `Client::reconnect`, a new client) sends it. Refused, it would be lost though
            // the caller was told it was accepted.
            _ if self.store.is_some() && req.publish.qos != QoS::AtMostOnce => {}
            _ => {
                req.token.complete(Err(Arc::new(Error::NotConnected)));
                return;
            }
        }
        let qos = req.publish.qos;
        let replaces = req.replaces;
        match self.session.publish(req.publish) {
            Ok(pkid) => {
                self.shared.published.fetch_add(1, Ordering::Relaxed);
                let stored = if qos == QoS::AtMostOnce {
                    req.token.complete(Ok(Delivered {
                        packet_id: 0,
                        reason: 0,
                        properties: Default::default(),
                    }));
                    None
                } else {
                    self.t.tokens.insert(pkid, (req.id, req.token.clone()));
                    Some(req.token)
                };
                // The session's record of it names the record it replaces, which goes
                // next: a kill between the two leaves both, and the next handle over the
                // store must know the message was taken.
                if let Some(key) = replaces {
                    self.t.replacing = Some((pkid, key));
                }
                // Persist the new flow now, not at the next read: a crash after this point
                // must not lose an accepted QoS 1/2 message.
                self.process_events();
                if let Some(token) = stored {
                    token.stored();
                }
                let replaces = self.t.replacing.take().map(|(_, key)| key);
                self.remove_replaced(replaces);
            }
            Err(e) => {
                self.remove_replaced(replaces);
                req.token.complete(Err(Arc::new(e.into())))
            }
        }
    }

    /// Removes the store record that held a publish before the client had it
    /// ([`PubReq::replaces`]): the session's record (written first, naming it) or the
    /// refusal takes its place. A kill between the two writes leaves both; the session's
    /// record tells the next handle over the store (`persist::replaced_keys`).
    fn remove_replaced(&mut self, key: Option<Box<str>>) {
        if let (Some(key), Some(st)) = (key, self.store.as_mut()) {
            if let Err(e) = st.store_mut().remove(&key) {
                log::error!("persistence remove failed: {}", crate::error::report(&e));
            }
        }
    }

    /// Publishes on the caller's thread while the I/O thread sleeps: the PUBLISH goes out
    /// at once, without waking the I/O thread (a lone request's latency). Gives the request
    /// back when the I/O thread must take it: not connected, a disconnect under way, unsent
    /// bytes or requests before it (order), no room.
    pub(crate) fn publish_direct(
        &mut self,
        req: Box<PubReq>,
    ) -> std::result::Result<(), Box<PubReq>> {
        if self.shutdown
            || self.stream.is_none()
            || self.t.disconnecting.is_some()
            || self.shared.state.load(Ordering::Acquire) != STATE_CONNECTED
            || self.wpos != self.wbuf.len()
            || !self.shared.publishes.is_empty()
            || !self.room_for_publishes()
        {
            return Err(req);
        }
        let now = Instant::now();
        self.publish(*req);
        // Anything the socket does not take now is left to the I/O thread.
        let _ = self.transmit(now, Mode::Caller);
        Ok(())
    }

    /// Takes a subscribe or unsubscribe request on the caller's thread while the I/O
    /// thread sleeps in its poll: the packet goes out at once, and the reply comes to
    /// whoever reads the socket next (the caller itself, reading while it waits: `lend`).
    /// Gives the request back when the I/O thread must take it: not connected, a
    /// disconnect under way, unsent bytes or requests before it (order), the socket lent
    /// to another thread, or dormant (no poll: the watcher has the socket).
    pub(crate) fn control_direct(&mut self, c: Control) -> std::result::Result<(), Control> {
        if self.shutdown
            || self.stream.is_none()
            || self.t.disconnecting.is_some()
            || self.lent
            || self.epoll_fd.is_none()
            || self.shared.state.load(Ordering::Acquire) != STATE_CONNECTED
            || self.wpos != self.wbuf.len()
            || !self.shared.ctl.is_empty()
        {
            return Err(c);
        }
        let now = Instant::now();
        self.handle_control(now, c);
        let _ = self.transmit(now, Mode::Caller);
        Ok(())
    }

    /// The in-flight window has at most one free slot: a QoS 1/2 publish now is the only
    /// one that can go out before the next acknowledgement, so the I/O thread would have
    /// nothing to batch it with (or it just waits in the session queue, no write at all).
    pub(crate) fn window_bound(&self) -> bool {
        self.session.inflight_len() + 1 >= self.session.send_window()
    }

    /// Sends the application's acknowledgements on the caller's thread while the I/O
    /// thread sleeps (`Shared::send_acks`). False when the I/O thread must do it: not
    /// connected, shut down, or unsent bytes before them.
    pub(crate) fn send_acks_direct(&mut self) -> bool {
        if self.shutdown || self.stream.is_none() || self.wpos != self.wbuf.len() {
            return false;
        }
        self.take_acks();
        let _ = self.transmit(Instant::now(), Mode::Caller);
        true
    }

    /// Passes the application's acknowledgements of incoming messages to the session
    /// (PUBACK / PUBREC go out with the next transmit, QoS 2 markers are stored first).
    pub(super) fn take_acks(&mut self) {
        // `Shared::take_acks` checks this too, but only after `ack_scratch` was borrowed,
        // which makes the `Pending` box: a quiet client calls this every turn.
        if !self.shared.acks_pending() {
            return;
        }
        let Some(upto) = self.shared.take_acks(&mut self.t.ack_scratch) else {
            return;
        };
        for pkid in self.t.ack_scratch.drain(..) {
            if let Err(e) = self.session.ack(pkid) {
                log::debug!("acknowledgement not sent: {e}");
            }
        }
        // With a durable store, QoS 2 markers go to the store now and whoever waits for them
        // may go on; otherwise the next transmit applies the events (nobody waits).
        if self.shared.durable_acks {
            self.process_events();
            self.shared.acks_stored(upto);
        }
    }

    /// Whether publish requests may move from the channel into the session. Once the
    /// session queue is full, intake resumes only when a quarter of it has drained: a
    /// publisher that outruns the window then blocks and wakes once per batch, not once
    /// per acknowledgement (one context switch per message was most of the cost there).
    pub(super) fn room_for_publishes(&self) -> bool {
        match self.shared.state.load(Ordering::Acquire) {
            STATE_CONNECTED => {
                let limit = if self.intake_paused {
                    self.max_queued - self.max_queued / 4
                } else {
                    self.max_queued
                };
                self.session.queued_len() < limit && self.wbuf.len() - self.wpos < WRITE_HIGH_WATER
            }
            _ => true,
        }
    }

    pub(super) fn fail_offline(&mut self, e: Error) {
        let e = Arc::new(e);
        for req in self.t.offline.drain(..) {
            req.token.complete(Err(e.clone()));
        }
    }

    pub(super) fn poke_tokens(&self) {
        for (_, t) in self.t.tokens.values() {
            t.poke();
        }
        for r in &self.t.offline {
            r.token.poke();
        }
    }

    pub(super) fn current_info(&self) -> ConnectInfo {
        self.shared
            .connect_info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(ConnectInfo {
                session_present: false,
                server: String::new(),
                version: self.version,
                properties: Default::default(),
            })
    }
}
