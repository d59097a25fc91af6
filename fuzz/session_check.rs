//! The session fuzz check, shared by `fuzz_targets/session.rs` (libFuzzer) and
//! `tests/session_props.rs` (proptest, stable toolchain).
//!
//! The input bytes are a program: the first bytes choose the protocol version, keepalive,
//! window and clean-start flag; then each op byte picks an action (publish, subscribe,
//! unsubscribe, time passing, raw server bytes, a well-formed server packet, a lost
//! connection and reconnect, a disconnect) whose arguments come from the following bytes.
//! After every step the checker looks at everything the session put out and asserts:
//!
//! * nothing panics (the point of fuzzing);
//! * every byte `poll_transmit` writes frames and decodes with our codec, in the session's
//!   version, as a packet a client may send (never CONNACK, SUBACK, PINGRESP, ...), and
//!   re-encodes to the same bytes;
//! * before CONNACK only CONNECT, AUTH and DISCONNECT go out (MQTT-3.1.4-?, the session's
//!   "before CONNACK" policy);
//! * an outgoing QoS 1/2 PUBLISH has a non-zero packet id of a pending publish, and a
//!   SUBSCRIBE / UNSUBSCRIBE has a non-zero id not used by a pending publish (MQTT-2.2.1-3);
//! * `pending_publishes` holds exactly the QoS 1/2 publishes accepted and not yet reported
//!   done (never more than were published); each `PublishDone` names a pending id, once;
//! * no QoS 1/2 PUBLISH goes out while the window is full: after a step that sent one,
//!   `inflight_len <= send_window` (flows already at PUBREL count against the window but are
//!   always resent, MQTT-4.4.0-1, so after a reconnect to a server with a smaller Receive
//!   Maximum the count may exceed the window until they complete; the fuzzer found that
//!   case: `fuzz/corpus/session/regress-window-shrank-with-pubrels`);
//! * a QoS 2 message is delivered once per PUBLISH/PUBREL cycle: no second `Message` for a
//!   packet id until the session answered its PUBREL with PUBCOMP (MQTT-4.3.3-?
//!   exactly-once), unless the server started a new session;
//! * an incoming QoS 1/2 message is acknowledged (PUBACK / PUBREC) only after the model,
//!   playing the application, called `Session::ack` for it (at once for odd packet ids, at
//!   the next time step for even ones, so acknowledgements also cross reconnects), and a
//!   message whose acknowledgement is still owed is not delivered again;
//! * while connected with keepalive on, `poll_timeout` is set.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqttsync::internals::proto::codec::{decode, encode, Framer};
use mqttsync::internals::proto::properties::{id as prop, Properties, Property};
use mqttsync::internals::proto::session::{Event, Session, SessionConfig};
use mqttsync::internals::proto::{
    ConnAck, Connect, Disconnect, Packet, ProtocolVersion, PubResp, Publish, QoS, SubAck,
    SubscribeFilter, SubscribeOptions, UnsubAck,
};

const TOPICS: [&str; 4] = ["a", "a/b", "sensors/17/t", "x/y/z"];

/// Reads the program bytes.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }
}

/// What the checker knows about the session (the model it compares against).
struct Model {
    session: Session,
    version: ProtocolVersion,
    now: Instant,
    clean_start: bool,
    /// Between `connect` and the Connected event.
    connecting: bool,
    connected: bool,
    /// QoS 1/2 publishes accepted and not reported done.
    pending: HashSet<u16>,
    accepted: u64,
    done: u64,
    /// Incoming QoS 2 ids delivered and not yet released (answered with PUBCOMP).
    delivered_qos2: HashSet<u16>,
    /// Incoming QoS 1/2 ids delivered and not yet acknowledged by the model.
    unacked: Vec<u16>,
    /// Ids the model acknowledged in the current server session (PUBACK / PUBREC allowed).
    acked: HashSet<u16>,
    /// SUBSCRIBE / UNSUBSCRIBE ids seen going out on this connection, with filter counts.
    requests: HashMap<u16, (bool, usize)>,
    buf: BytesMut,
    /// Statistics, to see that the fuzzer gets somewhere.
    pub stats: Stats,
}

/// How far one run got (for tests that want to see coverage, and for the corpus).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Successful CONNACKs.
    pub connects: u32,
    /// Messages delivered to the application.
    pub messages: u32,
    /// Outgoing flows completed.
    pub done: u64,
    /// Session errors (malformed input, protocol violations, keepalive).
    pub errors: u32,
}

impl Model {
    fn check_output(&mut self) {
        // Events first: a CONNACK in this step allows the resends that follow it.
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Connected(ack) => {
                    assert!(self.connecting, "Connected event without a connect");
                    self.connecting = false;
                    self.connected = true;
                    self.stats.connects += 1;
                    if !ack.session_present {
                        self.delivered_qos2.clear();
                        // Owed acknowledgements died with the old session.
                        self.unacked.clear();
                        self.acked.clear();
                    }
                }
                Event::ConnectionRefused(_) => {
                    self.connecting = false;
                    self.connected = false;
                }
                Event::Message(p) => {
                    self.stats.messages += 1;
                    assert!(!p.topic.is_empty(), "message without a topic: {p:?}");
                    if p.qos == QoS::ExactlyOnce {
                        assert!(
                            self.delivered_qos2.insert(p.pkid),
                            "QoS 2 message {} delivered twice before its PUBREL",
                            p.pkid
                        );
                    }
                    if p.qos != QoS::AtMostOnce {
                        assert!(
                            !self.unacked.contains(&p.pkid),
                            "message {} delivered again before it was acknowledged",
                            p.pkid
                        );
                        if p.pkid % 2 == 1 {
                            self.ack(p.pkid);
                        } else {
                            self.unacked.push(p.pkid);
                        }
                    }
                }
                Event::PublishDone { pkid, ack } => {
                    assert!(
                        self.pending.remove(&pkid),
                        "PublishDone for {pkid}, which is not pending ({ack:?})"
                    );
                    assert!(matches!(
                        ack,
                        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_)
                    ));
                    self.done += 1;
                    self.stats.done += 1;
                }
                Event::SubscribeDone(ack) => {
                    self.requests.remove(&ack.pkid);
                }
                Event::UnsubscribeDone(ack) => {
                    self.requests.remove(&ack.pkid);
                }
                Event::ServerDisconnect(_) | Event::Auth(_) | Event::Persist(_) => {}
            }
        }
        let mut out = Vec::new();
        self.session.poll_transmit(self.now, &mut out);
        let version = self.session.version();
        let mut bytes = BytesMut::from(&out[..]);
        let framer = Framer::new(usize::MAX);
        let mut sent_publish = false;
        loop {
            let frame = match framer.next_frame(&mut bytes) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => panic!("poll_transmit wrote an unframeable packet: {e}"),
            };
            let packet = decode(frame, version)
                .unwrap_or_else(|e| panic!("poll_transmit wrote an undecodable packet: {e}"));
            let mut again = Vec::new();
            encode(&packet, version, &mut again).expect("re-encodes");
            sent_publish |= matches!(&packet, Packet::Publish(p) if p.qos != QoS::AtMostOnce);
            self.check_sent(packet);
        }
        assert!(bytes.is_empty(), "poll_transmit left a partial packet");
        let pending = self.session.pending_publishes();
        assert_eq!(
            pending.len() as u64,
            self.accepted - self.done,
            "pending_publishes {pending:?} vs accepted {} done {}",
            self.accepted,
            self.done
        );
        assert!(pending.len() as u64 <= self.accepted);
        for id in &pending {
            assert!(self.pending.contains(id), "unknown pending id {id}");
        }
        if sent_publish {
            assert!(
                self.session.inflight_len() <= self.session.send_window(),
                "PUBLISH sent with {} in flight, window {}",
                self.session.inflight_len(),
                self.session.send_window()
            );
        }
        if self.connected && self.session.is_connected() && !self.session.keep_alive().is_zero() {
            assert!(
                self.session.poll_timeout().is_some(),
                "keepalive without a timer"
            );
        }
    }

    fn check_sent(&mut self, packet: Packet) {
        if self.connecting {
            assert!(
                matches!(
                    packet,
                    Packet::Connect(_) | Packet::Auth(_) | Packet::Disconnect(_)
                ),
                "{} sent before CONNACK",
                packet.name()
            );
        }
        match packet {
            Packet::Publish(p) if p.qos != QoS::AtMostOnce => {
                assert_ne!(p.pkid, 0, "QoS {:?} PUBLISH with packet id 0", p.qos);
                assert!(
                    self.pending.contains(&p.pkid),
                    "PUBLISH {} is not a pending publish",
                    p.pkid
                );
            }
            Packet::Subscribe(s) => {
                assert_ne!(s.pkid, 0);
                assert!(
                    !self.pending.contains(&s.pkid),
                    "SUBSCRIBE reuses {}",
                    s.pkid
                );
                self.requests.insert(s.pkid, (true, s.filters.len()));
            }
            Packet::Unsubscribe(u) => {
                assert_ne!(u.pkid, 0);
                assert!(
                    !self.pending.contains(&u.pkid),
                    "UNSUBSCRIBE reuses {}",
                    u.pkid
                );
                self.requests.insert(u.pkid, (false, u.filters.len()));
            }
            Packet::PubComp(r) => {
                self.delivered_qos2.remove(&r.pkid);
            }
            Packet::PubAck(ref r) | Packet::PubRec(ref r) => {
                assert!(
                    self.acked.contains(&r.pkid),
                    "{} for {} before the application acknowledged it",
                    packet.name(),
                    r.pkid
                );
            }
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                panic!("client sent {}", packet.name())
            }
            _ => {}
        }
    }

    /// The application acknowledges a delivered message.
    fn ack(&mut self, pkid: u16) {
        self.session
            .ack(pkid)
            .unwrap_or_else(|e| panic!("ack of delivered message {pkid} refused: {e}"));
        self.acked.insert(pkid);
    }

    fn lost(&mut self) {
        self.session.connection_lost();
        self.connected = false;
        self.connecting = false;
        self.requests.clear();
        self.buf.clear();
        // Nothing may come out of a session without a connection.
        let mut out = Vec::new();
        assert!(!self.session.poll_transmit(self.now, &mut out));
    }

    fn connect(&mut self, input: &mut Input) {
        self.lost();
        let connect = Connect {
            protocol: self.version,
            clean_start: self.clean_start,
            keep_alive: 0,
            client_id: "fuzz".into(),
            will: None,
            username: None,
            password: None,
            properties: Properties::new(),
        };
        self.session
            .connect(self.now, connect)
            .expect("connect is accepted");
        self.connecting = true;
        self.check_output();
        // CONNACK, from the input: session present (only legal without clean start) and, for
        // v5, limits.
        let flags = input.byte().unwrap_or(0);
        let mut props = Properties::new();
        if self.version.is_v5() {
            if flags & 2 != 0 {
                let rm = u16::from(input.byte().unwrap_or(1).max(1) % 8).max(1);
                props.push(Property::TwoByte(prop::RECEIVE_MAXIMUM, rm));
            }
            if flags & 4 != 0 {
                let mps = 16 + u32::from(input.byte().unwrap_or(0));
                props.push(Property::FourByte(prop::MAXIMUM_PACKET_SIZE, mps));
            }
            if flags & 8 != 0 {
                props.push(Property::Byte(
                    prop::MAXIMUM_QOS,
                    input.byte().unwrap_or(0) % 2,
                ));
            }
            if flags & 16 != 0 {
                props.push(Property::TwoByte(prop::TOPIC_ALIAS_MAXIMUM, 4));
            }
            if flags & 32 != 0 {
                props.push(Property::TwoByte(prop::SERVER_KEEP_ALIVE, 3));
            }
        }
        let code = if flags & 64 != 0 && flags & 128 != 0 {
            if self.version.is_v5() {
                0x87
            } else {
                5
            }
        } else {
            0
        };
        let ack = Packet::ConnAck(ConnAck {
            session_present: !self.clean_start && flags & 1 != 0,
            code,
            properties: props,
        });
        self.feed_packet(&ack);
    }

    fn feed_packet(&mut self, packet: &Packet) {
        let mut bytes = Vec::new();
        if encode(packet, self.session.version(), &mut bytes).is_err() {
            return;
        }
        self.feed_bytes(&bytes, bytes.len());
    }

    /// Feeds bytes in chunks of `chunk`, checking output after each (so a PUBCOMP is seen
    /// between two deliveries of the same id in one read).
    fn feed_bytes(&mut self, bytes: &[u8], chunk: usize) {
        for part in bytes.chunks(chunk.max(1)) {
            self.buf.extend_from_slice(part);
            let mut buf = std::mem::take(&mut self.buf);
            let r = self.session.handle_input(self.now, &mut buf);
            self.buf = buf;
            self.check_output();
            if r.is_err() {
                self.stats.errors += 1;
                self.lost();
                return;
            }
        }
    }

    fn publish(&mut self, input: &mut Input) {
        let b = input.byte().unwrap_or(0);
        let qos = QoS::from_u8(b % 3).unwrap_or_default();
        let topic = TOPICS[usize::from(b >> 2) % TOPICS.len()];
        let len = usize::from(input.byte().unwrap_or(0) % 64);
        let mut properties = Properties::new();
        if self.version.is_v5() && b & 0x40 != 0 {
            properties.push(Property::TwoByte(prop::TOPIC_ALIAS, u16::from(b & 3) + 1));
        }
        let publish = Publish {
            dup: false,
            qos,
            retain: b & 0x80 != 0,
            topic: if b & 0x20 != 0 && self.version.is_v5() {
                String::new()
            } else {
                topic.to_string()
            },
            pkid: 0,
            payload: Bytes::from(vec![b; len]),
            properties,
        };
        if let Ok(id) = self.session.publish(publish) {
            if qos != QoS::AtMostOnce {
                assert_ne!(id, 0);
                assert!(self.pending.insert(id), "packet id {id} given out twice");
                self.accepted += 1;
            } else {
                assert_eq!(id, 0);
            }
        }
        self.check_output();
    }

    fn server_packet(&mut self, input: &mut Input) {
        let kind = input.byte().unwrap_or(0);
        let sel = input.byte().unwrap_or(0);
        // Mostly ids the client uses, sometimes others.
        let pending: Vec<u16> = self.session.pending_publishes();
        let id = if sel & 0x80 == 0 && !pending.is_empty() {
            pending[usize::from(sel) % pending.len()]
        } else {
            u16::from(sel % 5)
        };
        let reason = if kind & 0x80 != 0 && self.version.is_v5() {
            0x80
        } else {
            0
        };
        let resp = PubResp {
            pkid: id,
            reason,
            properties: Properties::new(),
        };
        let packet = match kind % 10 {
            0 => Packet::PubAck(resp),
            1 => Packet::PubRec(resp),
            2 => Packet::PubComp(resp),
            3 => Packet::PubRel(PubResp {
                pkid: u16::from(sel % 5).max(1),
                ..resp
            }),
            4..=6 => {
                let qos = QoS::from_u8((kind >> 4) % 3).unwrap_or_default();
                let mut properties = Properties::new();
                let mut topic = TOPICS[usize::from(sel) % TOPICS.len()].to_string();
                if self.version.is_v5() && kind & 0x40 != 0 {
                    properties.push(Property::TwoByte(prop::TOPIC_ALIAS, u16::from(sel % 3)));
                    if sel & 0x40 != 0 {
                        topic.clear();
                    }
                }
                Packet::Publish(Publish {
                    dup: kind & 8 != 0,
                    qos,
                    retain: false,
                    topic,
                    pkid: if qos == QoS::AtMostOnce {
                        0
                    } else {
                        u16::from(sel % 5).max(1)
                    },
                    payload: Bytes::from_static(b"p"),
                    properties,
                })
            }
            7 | 8 => {
                let reqs: Vec<(u16, (bool, usize))> =
                    self.requests.iter().map(|(k, v)| (*k, *v)).collect();
                let (rid, (sub, n)) = if reqs.is_empty() {
                    (u16::from(sel), (kind & 1 == 0, 1))
                } else {
                    reqs[usize::from(sel) % reqs.len()]
                };
                let n = if kind & 0x40 != 0 { n + 1 } else { n };
                if sub {
                    Packet::SubAck(SubAck {
                        pkid: rid,
                        return_codes: vec![sel % 3; n],
                        properties: Properties::new(),
                    })
                } else {
                    Packet::UnsubAck(UnsubAck {
                        pkid: rid,
                        reason_codes: if self.version.is_v5() {
                            vec![0; n]
                        } else {
                            Vec::new()
                        },
                        properties: Properties::new(),
                    })
                }
            }
            _ => {
                if kind & 0x40 != 0 && self.version.is_v5() {
                    Packet::Disconnect(Disconnect {
                        reason: 0x8B,
                        properties: Properties::new(),
                    })
                } else {
                    Packet::PingResp
                }
            }
        };
        self.feed_packet(&packet);
    }

    fn step(&mut self, input: &mut Input) -> bool {
        let Some(op) = input.byte() else {
            return false;
        };
        match op % 10 {
            0 | 1 => self.publish(input),
            2 => {
                let b = input.byte().unwrap_or(0);
                let n = usize::from(b % 3) + 1;
                let filters = (0..n)
                    .map(|i| SubscribeFilter {
                        filter: ["a/#", "+/b", "x/y/z"][(usize::from(b) + i) % 3].to_string(),
                        options: SubscribeOptions {
                            qos: QoS::from_u8(b % 3).unwrap_or_default(),
                            no_local: b & 0x80 != 0,
                            ..Default::default()
                        },
                    })
                    .collect();
                let _ = self.session.subscribe(filters, Properties::new());
                self.check_output();
            }
            3 => {
                let b = input.byte().unwrap_or(0);
                let _ = self
                    .session
                    .unsubscribe(vec![TOPICS[usize::from(b) % 4].into()], Properties::new());
                self.check_output();
            }
            4 => {
                // Time passes: up to ~64 s in coarse steps, then the timers run.
                let b = input.byte().unwrap_or(0);
                for id in std::mem::take(&mut self.unacked) {
                    self.ack(id);
                }
                self.now += Duration::from_millis(u64::from(b) * 250);
                if let Some(t) = self.session.poll_timeout() {
                    if b & 1 != 0 && t > self.now {
                        self.now = t;
                    }
                }
                if self.session.handle_timeout(self.now).is_err() {
                    self.stats.errors += 1;
                    self.check_output();
                    self.lost();
                } else {
                    self.check_output();
                }
            }
            5 => {
                // Raw bytes from the server, in chunks.
                let len = usize::from(input.byte().unwrap_or(0) % 64);
                let chunk = usize::from(input.byte().unwrap_or(1) % 8) + 1;
                let bytes = input.take(len).to_vec();
                if !self.connected && !self.connecting {
                    self.connect(input);
                }
                self.feed_bytes(&bytes, chunk);
            }
            6 | 7 => {
                if !self.connected && !self.connecting {
                    self.connect(input);
                } else {
                    self.server_packet(input);
                }
            }
            8 => self.connect(input),
            _ => {
                self.session.disconnect(Disconnect::default());
                self.check_output();
                self.lost();
            }
        }
        true
    }
}

/// Runs the program in `data` against a fresh session, asserting the invariants above after
/// every step. Returns how far it got.
pub fn check_session(data: &[u8]) -> Stats {
    let mut input = Input { data, pos: 0 };
    let head = input.byte().unwrap_or(0);
    let version = [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ][usize::from(head % 3)];
    let keep_alive = Duration::from_secs(u64::from((head >> 2) % 4) * 5);
    let max_inflight = u16::from(input.byte().unwrap_or(0) % 6);
    let config = SessionConfig {
        version,
        keep_alive,
        ping_timeout: None,
        max_inflight,
        max_incoming_packet_size: if head & 0x40 != 0 { 64 } else { 1 << 16 },
        persist_events: head & 0x80 != 0,
    };
    let mut m = Model {
        session: Session::new(config),
        version,
        now: Instant::now(),
        clean_start: head & 0x20 != 0,
        connecting: false,
        connected: false,
        pending: HashSet::new(),
        accepted: 0,
        done: 0,
        delivered_qos2: HashSet::new(),
        unacked: Vec::new(),
        acked: HashSet::new(),
        requests: HashMap::new(),
        buf: BytesMut::new(),
        stats: Stats::default(),
    };
    m.connect(&mut input);
    let mut steps = 0;
    while steps < 4096 && m.step(&mut input) {
        steps += 1;
    }
    m.stats
}
