//! Worker for rumqttc's blocking client (`Client` + `Connection` iterator; each `Connection`
//! runs its own tokio current-thread runtime). The window is `set_inflight`; the request
//! channel holds 1000 requests. Receiving is iterating the `Connection` (there is no callback
//! API, so `e2e ... cb` exits 2). rumqttc 0.24 has no TCP_NODELAY option.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttc::{Client, Connection, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::common::*;

const NAME: &str = "rumqttc";
const CAP: usize = 1000;

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn options(a: &Args, role: &str, i: usize, window: u16) -> MqttOptions {
    let mut o = MqttOptions::new(client_id(NAME, role, i), a.host.clone(), a.port);
    o.set_keep_alive(Duration::from_secs(60))
        .set_inflight(window.max(1))
        .set_max_packet_size(1 << 20, 1 << 20);
    o
}

/// Iterates until CONNACK.
fn wait_connack(conn: &mut Connection) -> Result<(), Fail> {
    for ev in conn.iter() {
        if let Event::Incoming(Packet::ConnAck(_)) = ev? {
            return Ok(());
        }
    }
    fail("connection ended before CONNACK")
}

/// Counters fed by a connection's event thread.
#[derive(Default)]
struct Counters {
    acks: AtomicU64,     // PUBACK (QoS 1) / PUBCOMP (QoS 2)
    received: AtomicU64, // incoming PUBLISH
    last_rx: Mutex<Option<Instant>>,
    closing: AtomicBool,
    error: Mutex<Option<String>>,
    cv: Condvar,
    mu: Mutex<()>,
}

impl Counters {
    fn notify(&self) {
        let _g = self.mu.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }

    /// Waits until `f()` reaches `target`; fails after STALL without progress.
    fn wait(&self, f: impl Fn() -> u64, target: u64, what: &str) -> Result<(), Fail> {
        let mut seen = f();
        let mut progress = Instant::now();
        let mut g = self.mu.lock().unwrap_or_else(|e| e.into_inner());
        while f() < target {
            if let Some(e) = self.error.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return fail(e);
            }
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            let now = f();
            if now != seen {
                seen = now;
                progress = Instant::now();
            } else if progress.elapsed() > STALL {
                return fail(format!("{what}: {now} of {target}"));
            }
        }
        Ok(())
    }
}

/// Drives a connection on its own thread (already past CONNACK), counting events.
fn drive(mut conn: Connection, c: Arc<Counters>, ack_qos: u8) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::PubAck(_))) if ack_qos <= 1 => {
                    c.acks.fetch_add(1, Ordering::Release);
                    c.notify();
                }
                Ok(Event::Incoming(Packet::PubComp(_))) if ack_qos == 2 => {
                    c.acks.fetch_add(1, Ordering::Release);
                    c.notify();
                }
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    c.received.fetch_add(1, Ordering::Release);
                    *c.last_rx.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    c.notify();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => c.notify(),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {}
                Ok(_) => {}
                Err(e) => {
                    if !c.closing.load(Ordering::Acquire) {
                        *c.error.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(format!("connection error: {e}"));
                        c.notify();
                    }
                    break;
                }
            }
        }
    })
}

fn connect(a: &Args, role: &str, i: usize, window: u16) -> Result<(Client, Connection), Fail> {
    let (client, mut conn) = Client::new(options(a, role, i, window), CAP);
    wait_connack(&mut conn)?;
    Ok((client, conn))
}

fn close(client: &Client, c: &Counters, h: JoinHandle<()>) -> Result<(), Fail> {
    c.closing.store(true, Ordering::Release);
    client.disconnect()?;
    h.join().map_err(|_| "event thread panicked".to_string())?;
    Ok(())
}

/// Publishes for `secs` (the library keeps the window), then waits for all acks.
fn publish_for(
    client: &Client,
    c: &Counters,
    topic: &str,
    q: u8,
    body: &[u8],
    start: Instant,
    secs: f64,
) -> Result<u64, Fail> {
    let mut n = 0u64;
    let cap = max_msgs(body.len());
    while start.elapsed().as_secs_f64() < secs && n < cap {
        client.publish(topic, qos(q), false, body.to_vec())?;
        n += 1;
    }
    if q > 0 {
        c.wait(|| c.acks.load(Ordering::Acquire), n, "acknowledgements")?;
    }
    Ok(n)
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
            let body = payload(size);
            let (client, conn) = connect(&a, "pub", 0, window)?;
            let c = Arc::new(Counters::default());
            // QoS 0 counts the fence's PUBACK.
            let h = drive(conn, c.clone(), q.max(1));
            let (t0, c0) = (Instant::now(), cpu_us());
            let n = publish_for(&client, &c, &topic, q, &body, t0, secs)?;
            if q == 0 {
                client.publish(&topic, QoS::AtLeastOnce, false, body.clone())?;
                c.wait(|| c.acks.load(Ordering::Acquire), 1, "fence")?;
            }
            print_throughput(n, t0.elapsed().as_secs_f64(), cpu_us() - c0);
            close(&client, &c, h)?;
        }
        Work::E2e {
            qos: q,
            size,
            window,
            secs,
            cb,
        } => {
            if cb {
                return Err(Fail::Unsupported("rumqttc has no callback API"));
            }
            let body = payload(size);
            let (sub, sconn) = connect(&a, "sub", 0, window)?;
            let sc = Arc::new(Counters::default());
            // The subscriber's thread is its receive loop; wait for SUBACK through it.
            let (tx, rx) = mpsc::channel();
            let sh = {
                let sc = sc.clone();
                let mut sconn = sconn;
                std::thread::spawn(move || {
                    for ev in sconn.iter() {
                        match ev {
                            Ok(Event::Incoming(Packet::SubAck(_))) => {
                                let _ = tx.send(());
                            }
                            Ok(Event::Incoming(Packet::Publish(_))) => {
                                sc.received.fetch_add(1, Ordering::Release);
                                *sc.last_rx.lock().unwrap_or_else(|e| e.into_inner()) =
                                    Some(Instant::now());
                                sc.notify();
                            }
                            Ok(_) => {}
                            Err(e) => {
                                if !sc.closing.load(Ordering::Acquire) {
                                    *sc.error.lock().unwrap_or_else(|e| e.into_inner()) =
                                        Some(format!("connection error: {e}"));
                                    sc.notify();
                                }
                                break;
                            }
                        }
                    }
                })
            };
            sub.subscribe(&topic, qos(q))?;
            rx.recv_timeout(STALL)
                .map_err(|_| "no SUBACK".to_string())?;
            let (publ, pconn) = connect(&a, "pub", 0, window)?;
            let pc = Arc::new(Counters::default());
            let ph = drive(pconn, pc.clone(), q);
            let (t0, c0) = (Instant::now(), cpu_us());
            let n = publish_for(&publ, &pc, &topic, q, &body, t0, secs)?;
            sc.wait(
                || sc.received.load(Ordering::Acquire),
                n,
                "lost messages: received",
            )?;
            let last = sc
                .last_rx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(t0);
            print_throughput(n, (last - t0).as_secs_f64(), cpu_us() - c0);
            close(&publ, &pc, ph)?;
            close(&sub, &sc, sh)?;
        }
        Work::Lat { count } => {
            // Single-threaded: publish, then drive the connection until the message is back.
            let (client, mut conn) = connect(&a, "lat", 0, 10)?;
            client.subscribe(&topic, QoS::AtLeastOnce)?;
            loop {
                if let Event::Incoming(Packet::SubAck(_)) = conn
                    .recv_timeout(STALL)
                    .map_err(|_| "no SUBACK".to_string())??
                {
                    break;
                }
            }
            let body = payload(64);
            let warm = warmup(count);
            let mut v = Vec::with_capacity(count);
            let c0 = cpu_us();
            let lat_start = Instant::now();
            let mut i = 0;
            while lat_going(i, warm, count, lat_start) {
                i += 1;
                let i = i - 1;
                let t0 = Instant::now();
                client.publish(&topic, QoS::AtLeastOnce, false, body.clone())?;
                let (mut back, mut acked, mut dt) = (false, false, Duration::ZERO);
                while !(back && acked) {
                    match conn
                        .recv_timeout(STALL)
                        .map_err(|_| format!("lost messages: round trip {i}"))??
                    {
                        Event::Incoming(Packet::Publish(_)) => {
                            dt = t0.elapsed();
                            back = true;
                        }
                        Event::Incoming(Packet::PubAck(_)) => acked = true,
                        _ => {}
                    }
                }
                if i >= warm {
                    v.push(dt.as_secs_f64() * 1e6);
                }
            }
            print_latency(&mut v, cpu_us() - c0);
            client.disconnect()?;
            for ev in conn.iter() {
                if ev.is_err() {
                    break;
                }
            }
        }
        Work::Conn { cb: true, .. } => {
            return Err(Fail::Unsupported("rumqttc has no callbacks"));
        }
        Work::Conn { secs, cb: false } => {
            let (mut cv, mut dv) = (Vec::new(), Vec::new());
            let start = Instant::now();
            let mut i = 0;
            while keep_going(i, start, secs) {
                let t0 = Instant::now();
                let (client, mut conn) = connect(&a, "conn", i, 10)?;
                let t1 = Instant::now();
                client.disconnect()?;
                for ev in conn.iter() {
                    match ev {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                drop(conn);
                drop(client);
                cv.push((t1 - t0).as_secs_f64() * 1e6);
                dv.push(t1.elapsed().as_secs_f64() * 1e6);
                i += 1;
            }
            print_conn(&mut cv, &mut dv);
        }
        Work::Idle { n } => {
            let before = proc_status();
            let mut cs = Vec::with_capacity(n);
            for i in 0..n {
                let (client, conn) = connect(&a, "idle", i, 10)?;
                let c = Arc::new(Counters::default());
                let h = drive(conn, c.clone(), 1);
                cs.push((client, c, h));
            }
            std::thread::sleep(Duration::from_millis(1500));
            print_idle(before, proc_status());
            for (client, c, h) in cs {
                close(&client, &c, h)?;
            }
        }
    }
    Ok(())
}
