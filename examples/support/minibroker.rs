//! A tiny in-process MQTT broker on mqttsync's own codec, so the quickstart runs on a
//! machine with only the Rust toolchain. It serves QoS 0/1/2, retained messages and
//! wildcards for a handful of local clients; it is a demo, not a production broker
//! (no persistence, no retries, no will, no authentication).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::BytesMut;
use mqttsync::internals::proto::codec::{decode, encode, Framer};
use mqttsync::internals::proto::{
    ConnAck, Packet, ProtocolVersion, PubResp, Publish, QoS, SubAck, UnsubAck,
};

struct Conn {
    version: ProtocolVersion,
    writer: Mutex<TcpStream>,
    next_id: AtomicU16,
}

impl Conn {
    fn send(&self, p: &Packet) {
        let mut buf = Vec::new();
        if encode(p, self.version, &mut buf).is_ok() {
            let _ = self.writer.lock().map(|mut w| w.write_all(&buf));
        }
    }
}

#[derive(Default)]
struct State {
    subs: Vec<(usize, String, QoS)>,
    conns: HashMap<usize, Arc<Conn>>,
    retained: HashMap<String, Publish>,
}

/// A running tiny broker on 127.0.0.1 (stopped when dropped).
pub struct MiniBroker {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MiniBroker {
    /// Starts on a free port.
    pub fn start() -> std::io::Result<MiniBroker> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State::default()));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut next = 0usize;
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                next += 1;
                let id = next;
                let state = state.clone();
                std::thread::spawn(move || serve(id, stream, state));
            }
        });
        Ok(MiniBroker {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for MiniBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn route(state: &Mutex<State>, p: &Publish) {
    let targets: Vec<(Arc<Conn>, QoS)> = {
        let Ok(st) = state.lock() else { return };
        st.subs
            .iter()
            .filter(|(_, f, _)| mqttsync::topic::matches(f, &p.topic))
            .filter_map(|(c, _, q)| st.conns.get(c).map(|conn| (conn.clone(), (*q).min(p.qos))))
            .collect()
    };
    for (conn, qos) in targets {
        deliver(&conn, p, qos, false);
    }
}

fn deliver(conn: &Conn, p: &Publish, qos: QoS, retain: bool) {
    let pkid = if qos == QoS::AtMostOnce {
        0
    } else {
        conn.next_id.fetch_add(1, Ordering::Relaxed).max(1)
    };
    let mut out = p.clone();
    out.qos = qos;
    out.pkid = pkid;
    out.dup = false;
    out.retain = retain;
    if conn.version != ProtocolVersion::V5 {
        out.properties = Default::default();
    }
    conn.send(&Packet::Publish(out));
}

fn serve(id: usize, mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let framer = Framer::new(1 << 24);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut version = ProtocolVersion::V311;
    let mut conn: Option<Arc<Conn>> = None;
    'outer: loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let frame = match framer.next_frame(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => break 'outer,
            };
            let Ok(packet) = decode(frame, version) else {
                break 'outer;
            };
            match packet {
                Packet::Connect(c) => {
                    version = c.protocol;
                    let Ok(w) = stream.try_clone() else {
                        break 'outer;
                    };
                    let cn = Arc::new(Conn {
                        version,
                        writer: Mutex::new(w),
                        next_id: AtomicU16::new(1),
                    });
                    if let Ok(mut st) = state.lock() {
                        st.conns.insert(id, cn.clone());
                    }
                    cn.send(&Packet::ConnAck(ConnAck {
                        session_present: false,
                        code: 0,
                        properties: Default::default(),
                    }));
                    conn = Some(cn);
                }
                Packet::Publish(p) => {
                    let Some(cn) = conn.as_ref() else {
                        break 'outer;
                    };
                    match p.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => cn.send(&Packet::PubAck(PubResp::new(p.pkid))),
                        QoS::ExactlyOnce => cn.send(&Packet::PubRec(PubResp::new(p.pkid))),
                    }
                    if p.retain {
                        if let Ok(mut st) = state.lock() {
                            if p.payload.is_empty() {
                                st.retained.remove(&p.topic);
                            } else {
                                st.retained.insert(p.topic.clone(), p.clone());
                            }
                        }
                    }
                    route(&state, &p);
                }
                Packet::PubRel(r) => {
                    if let Some(cn) = conn.as_ref() {
                        cn.send(&Packet::PubComp(PubResp::new(r.pkid)));
                    }
                }
                Packet::PubRec(r) => {
                    if let Some(cn) = conn.as_ref() {
                        cn.send(&Packet::PubRel(PubResp::new(r.pkid)));
                    }
                }
                Packet::Subscribe(s) => {
                    let Some(cn) = conn.as_ref() else {
                        break 'outer;
                    };
                    let mut codes = Vec::new();
                    let mut retained = Vec::new();
                    if let Ok(mut st) = state.lock() {
                        for f in &s.filters {
                            st.subs
                                .retain(|(c, flt, _)| !(*c == id && *flt == f.filter));
                            st.subs.push((id, f.filter.clone(), f.options.qos));
                            codes.push(f.options.qos as u8);
                            for r in st.retained.values() {
                                if mqttsync::topic::matches(&f.filter, &r.topic) {
                                    retained.push((r.clone(), f.options.qos.min(r.qos)));
                                }
                            }
                        }
                    }
                    cn.send(&Packet::SubAck(SubAck {
                        pkid: s.pkid,
                        return_codes: codes,
                        properties: Default::default(),
                    }));
                    for (r, q) in retained {
                        deliver(cn, &r, q, true);
                    }
                }
                Packet::Unsubscribe(u) => {
                    let Some(cn) = conn.as_ref() else {
                        break 'outer;
                    };
                    if let Ok(mut st) = state.lock() {
                        st.subs
                            .retain(|(c, f, _)| !(*c == id && u.filters.contains(f)));
                    }
                    let reason_codes = if version == ProtocolVersion::V5 {
                        vec![0; u.filters.len()]
                    } else {
                        Vec::new()
                    };
                    cn.send(&Packet::UnsubAck(UnsubAck {
                        pkid: u.pkid,
                        reason_codes,
                        properties: Default::default(),
                    }));
                }
                Packet::PingReq => {
                    if let Some(cn) = conn.as_ref() {
                        cn.send(&Packet::PingResp);
                    }
                }
                Packet::Disconnect(_) => break 'outer,
                _ => {}
            }
        }
    }
    if let Ok(mut st) = state.lock() {
        st.conns.remove(&id);
        st.subs.retain(|(c, _, _)| *c != id);
    }
}
