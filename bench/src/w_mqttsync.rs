//! Worker for mqttsync's Rust API: `Client::connect`, `publish` + tokens, `messages()` or
//! `on_message`. The window is `max_inflight`; everything else is left at its default
//! (queue of 10000 publishes, incoming capacity 10000). QoS 0 publishes are kept to at most
//! 1000 not yet written (their tokens complete when written), as for libmosquitto: the
//! library itself takes QoS 0 publishes without bound.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mqttsync::{Client, ConnectOptions, DeliveryToken, Message, QoS};

use crate::common::*;

const NAME: &str = "mqttsync";
/// QoS 0 publishes allowed between `publish` returning and the message being written.
const QOS0_QUEUE: usize = 1000;

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn options(a: &Args, role: &str, i: usize, window: u16) -> ConnectOptions {
    ConnectOptions::new(&format!("tcp://{}:{}", a.host, a.port))
        .client_id(client_id(NAME, role, i))
        .max_inflight(window.max(1))
        .keep_alive(Duration::from_secs(60))
}

/// Publishes for `secs`, then waits for every token; returns the count.
fn publish_for(
    c: &Client,
    topic: &str,
    q: u8,
    body: &bytes::Bytes,
    start: Instant,
    secs: f64,
) -> Result<u64, Fail> {
    let mut pending: VecDeque<DeliveryToken> = VecDeque::new();
    let mut n = 0u64;
    let cap = max_msgs(body.len());
    while start.elapsed().as_secs_f64() < secs && n < cap {
        let t = c.publish_timeout(
            Message::new(topic, body.clone()).qos(qos(q)),
            Duration::from_secs(60),
        )?;
        n += 1;
        pending.push_back(t);
        // Drop finished tokens from the front so the deque stays small.
        while pending.front().is_some_and(|t| t.is_complete()) {
            if let Some(t) = pending.pop_front() {
                t.wait()?;
            }
        }
        // QoS 0: at most QOS0_QUEUE publishes accepted but not yet written (the library would
        // otherwise take them without bound; the C drivers keep the same bound).
        while q == 0 && pending.len() > QOS0_QUEUE {
            if let Some(t) = pending.pop_front() {
                t.wait_timeout(Duration::from_secs(60))?;
            }
        }
    }
    if std::env::var_os("BENCH_DEBUG").is_some() {
        eprintln!("publish loop: {n} in {:?}", start.elapsed());
    }
    for t in pending {
        t.wait_timeout(Duration::from_secs(60))?;
    }
    Ok(n)
}

fn fence(c: &Client, topic: &str, body: &bytes::Bytes) -> Result<(), Fail> {
    // Not publish_wait: its deadline is the 10 s request timeout, and a slow drain of the
    // queue ahead of the fence should show as a low rate, not as a failure.
    c.publish(Message::new(topic, body.clone()).qos(QoS::AtLeastOnce))?
        .wait_timeout(Duration::from_secs(60))?;
    Ok(())
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
            let body = bytes::Bytes::from(payload(size));
            let c = Client::connect(options(&a, "pub", 0, window))?;
            let (t0, c0) = (Instant::now(), cpu_us());
            let n = publish_for(&c, &topic, q, &body, t0, secs)?;
            if q == 0 {
                fence(&c, &topic, &body)?;
            }
            print_throughput(n, t0.elapsed().as_secs_f64(), cpu_us() - c0);
            c.close()?;
        }
        Work::E2e {
            qos: q,
            size,
            window,
            secs,
            cb,
        } => e2e(&a, &topic, q, size, window, secs, cb)?,
        Work::Lat { count } => {
            let c = Client::connect(options(&a, "lat", 0, 10))?;
            c.subscribe(&topic, QoS::AtLeastOnce)?;
            let body = bytes::Bytes::from(payload(64));
            let msgs = c.messages();
            let warm = warmup(count);
            let mut v = Vec::with_capacity(count);
            let c0 = cpu_us();
            let lat_start = Instant::now();
            let mut i = 0;
            while lat_going(i, warm, count, lat_start) {
                i += 1;
                let i = i - 1;
                let t0 = Instant::now();
                let tok = c.publish(Message::new(&topic, body.clone()).qos(QoS::AtLeastOnce))?;
                let m = msgs
                    .recv_timeout(STALL)
                    .map_err(|e| format!("lost messages: round trip {i}: {e}"))?;
                let dt = t0.elapsed();
                // Done with it: acknowledged now (as the raw client does once it has parsed
                // the message, and the C driver by MQTTClient_freeMessage).
                drop(m);
                tok.wait()?;
                if i >= warm {
                    v.push(dt.as_secs_f64() * 1e6);
                }
            }
            print_latency(&mut v, cpu_us() - c0);
            c.close()?;
        }
        Work::Conn { secs, cb } => {
            let (mut cv, mut dv) = (Vec::new(), Vec::new());
            let start = Instant::now();
            let mut i = 0;
            while keep_going(i, start, secs) {
                let t0 = Instant::now();
                let mut o = options(&a, "conn", i, 10);
                if cb {
                    // As the C driver's `conn cb`: message, lost and delivered callbacks.
                    o = o
                        .on_message(|_m| {})
                        .on_connection_lost(|_e| {})
                        .on_delivered(|_ev| {});
                }
                let c = Client::connect(o)?;
                let t1 = Instant::now();
                c.close()?;
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
                // With a message callback, as an application that subscribes has.
                cs.push(Client::connect(
                    options(&a, "idle", i, 10).on_message(|_m| {}),
                )?);
            }
            std::thread::sleep(Duration::from_millis(1500));
            print_idle(before, proc_status());
            for c in cs {
                c.close()?;
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Count {
    received: u64,
    last_at: Option<Instant>,
}

#[allow(clippy::too_many_arguments)]
fn e2e(
    a: &Args,
    topic: &str,
    q: u8,
    size: usize,
    window: u16,
    secs: f64,
    cb: bool,
) -> Result<(), Fail> {
    let body = bytes::Bytes::from(payload(size));
    let state = Arc::new((Mutex::new(Count::default()), Condvar::new()));
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let mut sub_opts = options(a, "sub", 0, window);
    if cb {
        let st = state.clone();
        let exp = expected.clone();
        sub_opts = sub_opts.on_message(move |_m| {
            let (mu, cv) = &*st;
            let mut g = mu.lock().unwrap_or_else(|e| e.into_inner());
            g.received += 1;
            g.last_at = Some(Instant::now());
            if g.received >= exp.load(Ordering::Acquire) {
                cv.notify_all();
            }
        });
    }
    let sub = Client::connect(sub_opts)?;
    sub.subscribe(topic, qos(q))?;
    let publ = Client::connect(options(a, "pub", 0, window))?;

    let (t0, c0) = (Instant::now(), cpu_us());
    let receiver = (!cb).then(|| {
        let msgs = sub.messages();
        let exp = expected.clone();
        std::thread::spawn(move || {
            let mut got = 0u64;
            let mut last = Instant::now();
            while got < exp.load(Ordering::Acquire) {
                match msgs.recv_timeout(Duration::from_millis(100)) {
                    Ok(_) => {
                        got += 1;
                        last = Instant::now();
                    }
                    Err(e) if e.is_timeout() => {
                        if last.elapsed() > STALL {
                            break;
                        }
                    }
                    Err(e) => return Err(format!("receive: {e}")),
                }
            }
            Ok((got, last))
        })
    });
    let n = publish_for(&publ, topic, q, &body, t0, secs)?;
    expected.store(n, Ordering::Release);
    let (got, last) = match receiver {
        Some(h) => h.join().map_err(|_| "receiver panicked".to_string())??,
        None => {
            let (mu, cv) = &*state;
            let mut g = mu.lock().unwrap_or_else(|e| e.into_inner());
            let mut seen = g.received;
            let mut progress = Instant::now();
            while g.received < n {
                g = cv
                    .wait_timeout(g, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                if g.received != seen {
                    seen = g.received;
                    progress = Instant::now();
                } else if progress.elapsed() > STALL {
                    break;
                }
            }
            (g.received, g.last_at.unwrap_or(t0))
        }
    };
    if got != n {
        return fail(format!("lost messages: received {got} of {n}"));
    }
    print_throughput(n, (last - t0).as_secs_f64(), cpu_us() - c0);
    publ.close()?;
    sub.close()?;
    Ok(())
}
