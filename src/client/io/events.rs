//! Session events to the application: messages, acknowledgements of publishes,
//! subscription replies, persistence operations, and the hand-over with back-pressure.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Io;
use crate::client::options::Message;
use crate::client::token::Delivered;
use crate::client::{DeliveryEvent, Incoming};
use crate::error::{Error, LostCause};
use crate::proto::session::{Event, PersistKey, PersistOp};
use crate::proto::{reason, Packet, QoS};

impl Io {
    pub(super) fn process_events(&mut self) {
        self.take_session_events();
        self.pump_overflow();
    }

    pub(super) fn take_session_events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Message(p) => {
                    self.shared.received.fetch_add(1, Ordering::Relaxed);
                    let receipt = if p.qos == QoS::AtMostOnce {
                        None
                    } else {
                        Some(self.shared.receipt(p.pkid, p.qos))
                    };
                    let m = Message {
                        topic: p.topic,
                        payload: p.payload,
                        qos: p.qos,
                        retain: p.retain,
                        dup: p.dup,
                        packet_id: p.pkid,
                        properties: p.properties,
                        receipt,
                        held: None,
                    };
                    self.deliver(Incoming::Message(m));
                }
                Event::PublishDone { pkid, ack } => {
                    let Some((id, tok)) = self.t.tokens.remove(&pkid) else {
                        continue;
                    };
                    let packet_type = ack.packet_type();
                    let (reason, properties) = match ack {
                        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubComp(a) => {
                            (a.reason, a.properties)
                        }
                        _ => (0, Default::default()),
                    };
                    let result = if reason >= 0x80 {
                        Err(Arc::new(Error::Rejected {
                            code: reason,
                            reason: reason::reason_name(reason).unwrap_or("Unspecified error"),
                        }))
                    } else {
                        Ok(Delivered {
                            packet_id: pkid,
                            reason,
                            properties,
                        })
                    };
                    if self.delivered_to_dispatch {
                        // Messages received before the acknowledgement go first.
                        self.pump_overflow();
                        if let Some(tx) = &mut self.dispatch_tx {
                            tx.send(Incoming::Delivered(DeliveryEvent {
                                token_id: id,
                                packet_id: pkid,
                                packet_type,
                                result: result.clone(),
                            }));
                        }
                    }
                    tok.complete(result);
                }
                Event::SubscribeDone(ack) => {
                    self.ack_soon = true;
                    if let Some(w) = self.t.sub_waiters.remove(&ack.pkid) {
                        for (f, code) in w.filters.into_iter().zip(ack.return_codes.iter()) {
                            if *code < 0x80 {
                                self.subscriptions.retain(|(s, _)| s.filter != f.filter);
                                self.subscriptions.push((f, w.properties.clone()));
                            }
                        }
                        if let Some(tx) = w.reply {
                            tx.send(Ok(ack));
                        }
                    }
                }
                Event::UnsubscribeDone(ack) => {
                    self.ack_soon = true;
                    if let Some(w) = self.t.unsub_waiters.remove(&ack.pkid) {
                        self.subscriptions
                            .retain(|(s, _)| !w.filters.contains(&s.filter));
                        if let Some(tx) = w.reply {
                            tx.send(Ok(ack));
                        }
                    }
                }
                Event::ServerDisconnect(d) => {
                    let cause = LostCause::ServerDisconnect {
                        code: d.reason,
                        reason: reason::reason_name(d.reason).unwrap_or("unknown reason"),
                    };
                    self.deliver(Incoming::ServerDisconnect(d));
                    self.lose(Error::ConnectionLost(cause));
                    return;
                }
                Event::Persist(op) => self.persist(op),
                Event::Auth(a) => {
                    log::debug!("AUTH from server ignored (reason {:#04x})", a.reason)
                }
                Event::Connected(_) | Event::ConnectionRefused(_) => {
                    log::debug!("unexpected connection event after CONNACK")
                }
            }
        }
    }

    pub(super) fn persist(&mut self, op: PersistOp) {
        if let Some(st) = self.store.as_mut() {
            let server = self
                .session_server
                .and_then(|i| self.servers.get(i as usize))
                .map(|s| s.original.as_str());
            let r = match (&op, &self.t.replacing) {
                (
                    PersistOp::Put(key @ PersistKey::SentPublish(id), packet),
                    Some((r, replaced)),
                ) if id == r => st.put_replacing(*key, packet, Some(replaced)),
                _ => st.apply_from(&op, server),
            };
            if let Err(e) = r {
                log::error!("persistence write failed: {}", crate::error::report(&e));
            }
        }
    }

    /// Queues an item for the application, keeping order. Messages wait in `overflow` and
    /// are handed over in batches by `pump_overflow`, up to the incoming capacity (beyond
    /// it reading stops: back-pressure). Lifecycle notices (connected, lost, server
    /// DISCONNECT) go to the dispatch thread at once, after the messages before them; a loss
    /// also reaches the receivers of `Messages`.
    pub(super) fn deliver(&mut self, item: Incoming) {
        let lifecycle = !matches!(item, Incoming::Message(_));
        if lifecycle {
            // Messages received before it go first.
            self.pump_overflow();
            // Lifecycle notices go to both consumers, never wait behind the capacity.
            if let Some(tx) = &mut self.dispatch_tx {
                let copy = match &item {
                    Incoming::Connected(sp) => Some(Incoming::Connected(*sp)),
                    Incoming::Lost(e) => Some(Incoming::Lost(e.clone())),
                    _ => None,
                };
                if let Some(c) = copy {
                    tx.send(c);
                } else {
                    tx.send(item);
                    return;
                }
            }
            if matches!(item, Incoming::Lost(_)) && !self.messages_to_dispatch {
                self.t.overflow.push_back(item);
                self.pump_overflow();
            }
            return;
        }
        // Handed over in batches by `pump_overflow` (at the end of `process_events`): one
        // lock and at most one wake-up of the consumer per read, not per message.
        self.t.overflow.push_back(item);
    }

    pub(super) fn pump_overflow(&mut self) {
        let to_dispatch = self
            .dispatch_tx
            .as_mut()
            .filter(|_| self.messages_to_dispatch);
        let queued = to_dispatch
            .as_ref()
            .map_or_else(|| self.msg_tx.len(), |d| d.len());
        let room = self.incoming_capacity.saturating_sub(queued);
        let n = room.min(self.t.overflow.len());
        if n > 0 {
            let items = self.t.overflow.drain(..n);
            match to_dispatch {
                Some(d) => d.send_many(items),
                None => self.msg_tx.send_many(items),
            }
        }
        let paused = !self.t.overflow.is_empty();
        self.shared.read_paused.store(paused, Ordering::Release);
    }
}
