//! The ceiling: a raw TCP writer of pre-encoded MQTT 3.1.1 packets. No client library, no
//! per-message work: PUBLISH packets are encoded once into a ring (packet ids 1..=R, so ids
//! never repeat within any window <= R) and written with large `write` calls. For QoS 1/2 a
//! reader thread counts PUBACK / PUBCOMP (answering PUBREC with PUBREL) and the writer keeps
//! the same window as the clients. The subscriber side parses and acknowledges by hand.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

const NAME: &str = "raw";
/// Largest single write of pre-encoded packets.
const BATCH_BYTES: usize = 64 * 1024;

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn str16(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn publish_packet(topic: &str, body: &[u8], qos: u8, pkid: u16) -> Vec<u8> {
    let mut out = vec![0x30 | (qos << 1)];
    let len = 2 + topic.len() + if qos > 0 { 2 } else { 0 } + body.len();
    varint(len, &mut out);
    str16(topic.as_bytes(), &mut out);
    if qos > 0 {
        out.extend_from_slice(&pkid.to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn connect(a: &Args, role: &str, i: usize) -> Result<TcpStream, Fail> {
    let mut s = TcpStream::connect((a.host.as_str(), a.port))?;
    s.set_nodelay(true)?;
    let id = client_id(NAME, role, i);
    let mut var = Vec::new();
    str16(b"MQTT", &mut var);
    var.extend_from_slice(&[4, 0x02, 0, 60]); // 3.1.1, clean session, keepalive 60
    str16(id.as_bytes(), &mut var);
    let mut pkt = vec![0x10];
    varint(var.len(), &mut pkt);
    pkt.extend_from_slice(&var);
    s.write_all(&pkt)?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack)?;
    if ack[0] != 0x20 || ack[3] != 0 {
        return fail(format!("CONNACK refused: {ack:?}"));
    }
    Ok(s)
}

fn subscribe(s: &mut TcpStream, topic: &str, qos: u8) -> Result<(), Fail> {
    let mut var = vec![0, 1];
    str16(topic.as_bytes(), &mut var);
    var.push(qos);
    let mut pkt = vec![0x82];
    varint(var.len(), &mut pkt);
    pkt.extend_from_slice(&var);
    s.write_all(&pkt)?;
    let mut ack = [0u8; 5];
    s.read_exact(&mut ack)?;
    if ack[0] != 0x90 || ack[4] > 2 {
        return fail(format!("SUBACK refused: {ack:?}"));
    }
    Ok(())
}

fn disconnect(mut s: TcpStream) {
    let _ = s.write_all(&[0xe0, 0]);
    let _ = s.shutdown(Shutdown::Both);
}

/// Incremental parser of incoming packets: yields (first byte, body).
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
    pos: usize,
}

impl Parser {
    fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 1 << 20 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn next(&mut self) -> Option<(u8, &[u8])> {
        let b = &self.buf[self.pos..];
        if b.len() < 2 {
            return None;
        }
        let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
        loop {
            let byte = *b.get(i)?;
            len += (byte & 0x7f) as usize * mult;
            mult *= 128;
            i += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if b.len() < i + len {
            return None;
        }
        let start = self.pos;
        self.pos += i + len;
        Some((self.buf[start], &self.buf[start + i..start + i + len]))
    }
}

fn id_of(body: &[u8]) -> u16 {
    u16::from_be_bytes([body[0], body[1]])
}

struct Window {
    done: Mutex<u64>,
    cv: Condvar,
}

/// Writes pre-encoded publishes for `secs` keeping at most `window` QoS 1/2 unacknowledged,
/// then waits for all of them (QoS 0 with `fence`: one QoS 1 publish acknowledged). Returns
/// the count.
#[allow(clippy::too_many_arguments)]
fn publish_for(
    s: TcpStream,
    topic: &str,
    q: u8,
    size: usize,
    window: u16,
    start: Instant,
    secs: f64,
    fence: bool,
) -> Result<(u64, TcpStream), Fail> {
    let body = payload(size);
    let one = publish_packet(topic, &body, q, 1).len();
    let window = u64::from(window.max(1));
    let ring_n = ((BATCH_BYTES * 4 / one).max(2 * window as usize)).clamp(16, 65535);
    let mut ring = Vec::with_capacity(ring_n * one);
    for i in 0..ring_n {
        ring.extend_from_slice(&publish_packet(topic, &body, q, (i + 1) as u16));
    }
    let per_batch = (BATCH_BYTES / one).max(1) as u64;
    let writer = Arc::new(Mutex::new(s.try_clone()?));
    let win = Arc::new(Window {
        done: Mutex::new(0),
        cv: Condvar::new(),
    });
    // Reader: counts completions, answers PUBREC with PUBREL. Also sees the fence's PUBACK.
    let reader = {
        let mut rs = s.try_clone()?;
        let win = win.clone();
        let writer = writer.clone();
        std::thread::spawn(move || -> Result<(), String> {
            let mut p = Parser::default();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = rs.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Ok(());
                }
                p.feed(&buf[..n]);
                let (mut done, mut rel) = (0u64, Vec::new());
                while let Some((h, b)) = p.next() {
                    match h >> 4 {
                        4 | 7 => done += 1,
                        5 => rel.extend_from_slice(&[0x62, 2, b[0], b[1]]),
                        t => return Err(format!("unexpected packet type {t}")),
                    }
                }
                if !rel.is_empty() {
                    let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
                    w.write_all(&rel).map_err(|e| e.to_string())?;
                }
                if done > 0 {
                    *win.done.lock().unwrap_or_else(|e| e.into_inner()) += done;
                    win.cv.notify_all();
                }
            }
        })
    };
    let wait_done = |target: u64, what: &str| -> Result<(), Fail> {
        let mut g = win.done.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + STALL;
        while *g < target {
            if Instant::now() > deadline {
                return fail(format!("{what}: {} of {target}", *g));
            }
            g = win
                .cv
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    };
    let mut sent = 0u64;
    let cap = max_msgs(size);
    while start.elapsed().as_secs_f64() < secs && sent < cap {
        let mut k = per_batch.min(cap - sent);
        if q > 0 {
            let mut g = win.done.lock().unwrap_or_else(|e| e.into_inner());
            while sent - *g >= window {
                g = win.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            k = k.min(window - (sent - *g));
        }
        let slot = (sent % ring_n as u64) as usize;
        let k = (k as usize).min(ring_n - slot);
        let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
        w.write_all(&ring[slot * one..(slot + k) * one])?;
        drop(w);
        sent += k as u64;
    }
    if q > 0 {
        wait_done(sent, "acknowledgements")?;
    } else if fence {
        let pkt = publish_packet(topic, &body, 1, 1);
        writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(&pkt)?;
        wait_done(1, "fence")?;
    }
    drop(reader); // detached: it ends when the socket closes
    Ok((sent, s))
}

pub fn run(a: Args) -> Result<(), Fail> {
    let topic = topic(NAME);
    match a.work {
        Work::Pub {
            qos: q,
            size,
            window,
            secs,
        } => {
            let s = connect(&a, "pub", 0)?;
            let (t0, c0) = (Instant::now(), cpu_us());
            let (n, s) = publish_for(s, &topic, q, size, window, t0, secs, true)?;
            print_throughput(n, t0.elapsed().as_secs_f64(), cpu_us() - c0);
            disconnect(s);
        }
        Work::E2e {
            qos: q,
            size,
            window,
            secs,
            cb,
        } => {
            let _ = cb; // one raw subscriber serves as the ceiling of both rows
            let mut sub = connect(&a, "sub", 0)?;
            subscribe(&mut sub, &topic, q)?;
            let expected = Arc::new(AtomicU64::new(u64::MAX));
            let rx = {
                let mut sub = sub.try_clone()?;
                let expected = expected.clone();
                sub.set_read_timeout(Some(Duration::from_millis(100)))?;
                std::thread::spawn(move || -> Result<(u64, Instant), String> {
                    let mut p = Parser::default();
                    let mut buf = vec![0u8; 256 * 1024];
                    let (mut got, mut last) = (0u64, Instant::now());
                    while got < expected.load(Ordering::Acquire) {
                        let n = match sub.read(&mut buf) {
                            Ok(0) => return Err("subscriber connection closed".into()),
                            Ok(n) => n,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) =>
                            {
                                if last.elapsed() > STALL {
                                    break;
                                }
                                continue;
                            }
                            Err(e) => return Err(e.to_string()),
                        };
                        p.feed(&buf[..n]);
                        let mut acks = Vec::new();
                        while let Some((h, b)) = p.next() {
                            match (h >> 4, (h >> 1) & 3) {
                                (3, qos) => {
                                    got += 1;
                                    if qos > 0 {
                                        let tl = id_of(b) as usize;
                                        let id = &b[2 + tl..4 + tl];
                                        let t = if qos == 1 { 0x40 } else { 0x50 };
                                        acks.extend_from_slice(&[t, 2, id[0], id[1]]);
                                    }
                                }
                                (6, _) => acks.extend_from_slice(&[0x70, 2, b[0], b[1]]),
                                (t, _) => return Err(format!("unexpected packet type {t}")),
                            }
                        }
                        last = Instant::now();
                        if !acks.is_empty() {
                            sub.write_all(&acks).map_err(|e| e.to_string())?;
                        }
                    }
                    Ok((got, last))
                })
            };
            let publ = connect(&a, "pub", 0)?;
            let (t0, c0) = (Instant::now(), cpu_us());
            let (n, publ) = publish_for(publ, &topic, q, size, window, t0, secs, false)?;
            expected.store(n, Ordering::Release);
            let (got, last) = rx.join().map_err(|_| "receiver panicked".to_string())??;
            if got != n {
                return fail(format!("lost messages: received {got} of {n}"));
            }
            print_throughput(n, (last - t0).as_secs_f64(), cpu_us() - c0);
            disconnect(publ);
            disconnect(sub);
        }
        Work::Lat { count } => {
            let mut s = connect(&a, "lat", 0)?;
            subscribe(&mut s, &topic, 1)?;
            let body = payload(64);
            let warm = warmup(count);
            let mut v = Vec::with_capacity(count);
            let mut p = Parser::default();
            let mut buf = vec![0u8; 64 * 1024];
            s.set_read_timeout(Some(STALL))?;
            let c0 = cpu_us();
            let lat_start = Instant::now();
            let mut i = 0;
            while lat_going(i, warm, count, lat_start) {
                i += 1;
                let i = i - 1;
                let id = (i % 65535 + 1) as u16;
                let t0 = Instant::now();
                s.write_all(&publish_packet(&topic, &body, 1, id))?;
                let (mut back, mut acked, mut dt) = (false, false, Duration::ZERO);
                while !(back && acked) {
                    let mut acks = Vec::new();
                    while let Some((h, b)) = p.next() {
                        match h >> 4 {
                            3 => {
                                dt = t0.elapsed();
                                back = true;
                                let tl = id_of(b) as usize;
                                acks.extend_from_slice(&[0x40, 2, b[2 + tl], b[3 + tl]]);
                            }
                            4 => acked = true,
                            t => return fail(format!("unexpected packet type {t}")),
                        }
                    }
                    if !acks.is_empty() {
                        s.write_all(&acks)?;
                    }
                    if back && acked {
                        break;
                    }
                    let n = s
                        .read(&mut buf)
                        .map_err(|e| format!("lost messages: round trip {i}: {e}"))?;
                    if n == 0 {
                        return fail("connection closed");
                    }
                    p.feed(&buf[..n]);
                }
                if i >= warm {
                    v.push(dt.as_secs_f64() * 1e6);
                }
            }
            print_latency(&mut v, cpu_us() - c0);
            disconnect(s);
        }
        // A raw socket has no callbacks: its connect is the ceiling of both forms.
        Work::Conn { secs, .. } => {
            let (mut cv, mut dv) = (Vec::new(), Vec::new());
            let start = Instant::now();
            let mut i = 0;
            while keep_going(i, start, secs) {
                let t0 = Instant::now();
                let s = connect(&a, "conn", i)?;
                let t1 = Instant::now();
                disconnect(s);
                cv.push((t1 - t0).as_secs_f64() * 1e6);
                dv.push(t1.elapsed().as_secs_f64() * 1e6);
                i += 1;
            }
            print_conn(&mut cv, &mut dv);
        }
        Work::Idle { .. } => return Err(Fail::Unsupported("raw has no idle-client figure")),
    }
    Ok(())
}
