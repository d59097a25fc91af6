//! Threads and lifetime: many threads on one client, callbacks that call back into the
//! client (publish, subscribe, disconnect, reconnect), blocking calls interrupted by
//! shutdown, a client dropped inside its own callback, and 1000 clients in one process.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, Weak};
use std::time::{Duration, Instant};

use common::{unique_client_id, wait_until, Broker, FaultProxy, DEADLINE};
use mqttsync::{Client, ConnectOptions, Error, Message, QoS, State};

fn opts(uri: &str, prefix: &str) -> ConnectOptions {
    ConnectOptions::new(uri)
        .client_id(unique_client_id(prefix))
        .connect_timeout(DEADLINE)
}

#[test]
fn sixteen_threads_publish_and_subscribe_on_one_client_with_exact_counts() {
    let broker = Broker::builder().max_queued_messages(1_000_000).start();
    let client = Client::connect(opts(&broker.uri(), "mt").max_queued(100_000)).unwrap();
    let threads = 16usize;
    let per_thread = 300usize;
    let barrier = Barrier::new(threads);
    let received: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let total = threads * per_thread;
    std::thread::scope(|s| {
        // One receiver counts everything.
        let rx = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut n = 0;
            while n < total && Instant::now() < deadline {
                if let Ok(m) = client.messages().recv_timeout(Duration::from_secs(5)) {
                    *received
                        .lock()
                        .unwrap()
                        .entry(m.payload_str().unwrap().to_string())
                        .or_default() += 1;
                    n += 1;
                }
            }
        });
        let mut workers = Vec::new();
        for t in 0..threads {
            let (client, barrier) = (&client, &barrier);
            workers.push(s.spawn(move || {
                // Concurrent SUBSCRIBEs (each thread its own subtree), and some churn.
                assert_eq!(
                    client
                        .subscribe(&format!("mt/{t}/#"), QoS::ExactlyOnce)
                        .unwrap(),
                    QoS::ExactlyOnce
                );
                client
                    .subscribe(&format!("churn/{t}"), QoS::AtLeastOnce)
                    .unwrap();
                barrier.wait();
                let mut tokens = Vec::new();
                for i in 0..per_thread {
                    let qos = QoS::from_u8((i % 3) as u8).unwrap();
                    tokens.push(
                        client
                            .publish(
                                Message::new(format!("mt/{t}/{i}"), format!("{t}:{i}")).qos(qos),
                            )
                            .unwrap(),
                    );
                    if i == per_thread / 2 {
                        client.unsubscribe(&format!("churn/{t}")).unwrap();
                    }
                }
                for tok in tokens {
                    tok.wait().expect("delivered");
                }
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
        rx.join().unwrap();
    });
    let received = received.into_inner().unwrap();
    let missing = (0..threads)
        .flat_map(|t| (0..per_thread).map(move |i| format!("{t}:{i}")))
        .filter(|k| !received.contains_key(k))
        .count();
    let dups: Vec<_> = received.iter().filter(|(_, c)| **c != 1).collect();
    eprintln!(
        "{threads} threads x {per_thread}: received {} distinct, missing {missing}, duplicates {}",
        received.len(),
        dups.len()
    );
    assert_eq!(missing, 0);
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(client.stats().published, total as u64);
    client.close().unwrap();
}

#[test]
fn callbacks_publish_subscribe_disconnect_and_reconnect_from_inside() {
    let broker = Broker::start();
    let proxy = FaultProxy::start(broker.addr());
    let me: Arc<Mutex<Weak<Client>>> = Arc::new(Mutex::new(Weak::new()));
    let (tx, rx) = mpsc::channel::<String>();
    let (m1, t1) = (me.clone(), tx.clone());
    let (m2, t2) = (me.clone(), tx.clone());
    let id = unique_client_id("cb");
    let client = Arc::new(
        Client::connect(
            ConnectOptions::new(&proxy.uri())
                .client_id(&id)
                .connect_timeout(DEADLINE)
                .clean_start(false)
                .on_message(move |m| {
                    let Some(c) = m1.lock().unwrap().upgrade() else {
                        return;
                    };
                    let r = match m.topic.as_str() {
                        "cb/cmd/sub" => c.subscribe("cb/extra/#", QoS::AtLeastOnce).map(|_| ()),
                        "cb/cmd/pub" => c
                            .publish_wait(Message::new("cb/reply", "pong").qos(QoS::ExactlyOnce))
                            .map(|_| ()),
                        "cb/cmd/cycle" => c.disconnect().and_then(|_| c.reconnect()).map(|_| ()),
                        _ => Ok(()),
                    };
                    let _ = t1.send(format!(
                        "{} {} {:?}",
                        m.topic,
                        m.payload_str().unwrap_or(""),
                        r.map_err(|e| e.to_string())
                    ));
                })
                .on_connection_lost(move |e| {
                    let Some(c) = m2.lock().unwrap().upgrade() else {
                        return;
                    };
                    let r = c.reconnect();
                    let _ = t2.send(format!(
                        "lost {e}: reconnect {:?}",
                        r.map(|i| i.session_present).map_err(|e| e.to_string())
                    ));
                }),
        )
        .unwrap(),
    );
    *me.lock().unwrap() = Arc::downgrade(&client);
    client.subscribe("cb/cmd/#", QoS::AtLeastOnce).unwrap();
    client.subscribe("cb/reply", QoS::AtLeastOnce).unwrap();
    let other = Client::connect(opts(&broker.uri(), "cbo")).unwrap();
    let send = |topic: &str| {
        other
            .publish_wait(Message::new(topic, "x").qos(QoS::AtLeastOnce))
            .unwrap();
    };
    let next = || rx.recv_timeout(DEADLINE).expect("callback reported");

    send("cb/cmd/sub");
    assert_eq!(next(), "cb/cmd/sub x Ok(())");
    send("cb/extra/1"); // the subscription made inside the callback works
    assert_eq!(next(), "cb/extra/1 x Ok(())");
    send("cb/cmd/pub");
    let mut got = vec![next(), next()];
    got.sort();
    assert_eq!(got, ["cb/cmd/pub x Ok(())", "cb/reply pong Ok(())"]);
    // A QoS 1 command is acknowledged only when its callback has returned: the broker
    // resends it after the reconnect made inside that callback, and the resend that
    // crosses the late PUBACK is answered, not delivered again (the cycle runs once).
    send("cb/cmd/cycle");
    assert_eq!(next(), "cb/cmd/cycle x Ok(())");
    assert!(client.is_connected());
    // A message is acknowledged when its callback returns: the cycle's PUBACK (the fifth)
    // must reach the broker before the cut, or the broker rightly sends it again after.
    assert!(
        broker.wait_for_log_count(&format!("Received PUBACK from {id}"), 5, DEADLINE),
        "{}",
        broker.log()
    );
    // Connection lost: the callback reconnects.
    proxy.cut();
    let lost = next();
    assert!(
        lost.starts_with("lost ") && lost.ends_with("reconnect Ok(true)"),
        "{lost}"
    );
    assert!(client.is_connected());
    send("cb/extra/2");
    assert_eq!(next(), "cb/extra/2 x Ok(())");
    drop(other);
    // The callback that reported last may still hold its upgraded reference for a moment.
    assert!(wait_until(DEADLINE, || Arc::strong_count(&client) == 1));
    match Arc::try_unwrap(client) {
        Ok(c) => c.close().unwrap(),
        Err(_) => panic!("client still shared"),
    }
}

#[test]
fn dropping_the_client_ends_a_blocked_recv_promptly() {
    let broker = Broker::start();
    let client = Client::connect(opts(&broker.uri(), "drr")).unwrap();
    let messages = client.messages();
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        (messages.recv(), t.elapsed())
    });
    let t = Instant::now();
    drop(client);
    let (r, _) = waiter.join().unwrap();
    eprintln!("drop + recv returned after {:?}", t.elapsed());
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_blocked_token_wait_and_subscribe_return_when_the_client_goes_away_under_a_paused_broker() {
    let broker = Broker::start();
    let client = Arc::new(
        Client::connect(opts(&broker.uri(), "drp").request_timeout(Duration::from_secs(1)))
            .unwrap(),
    );
    broker.pause(); // SIGSTOP: nothing is answered, the socket stays open
    let token = client
        .publish(Message::new("p/x", "1").qos(QoS::AtLeastOnce))
        .unwrap();
    let waiter = std::thread::spawn(move || token.wait_timeout(Duration::from_secs(60)));
    let c = client.clone();
    let sub = std::thread::spawn(move || {
        let t = Instant::now();
        (
            c.subscribe_many_timeout(
                vec![mqttsync::SubscribeFilter {
                    filter: "p/#".into(),
                    options: Default::default(),
                }],
                Default::default(),
                Duration::from_secs(60),
            ),
            t.elapsed(),
        )
    });
    // Both are blocked on the broker; take the connection away.
    assert!(common::wait_until(DEADLINE, || client
        .pending_deliveries()
        .map(|p| p.len() == 1)
        .unwrap_or(false)));
    let t = Instant::now();
    client.abort();
    let (r, _) = sub.join().unwrap();
    assert!(r.is_err(), "subscribe succeeded on a paused broker: {r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "subscribe took {:?} to fail",
        t.elapsed()
    );
    // The last handle dropped while the token waiter is blocked.
    let t = Instant::now();
    drop(Arc::try_unwrap(client).expect("sole owner"));
    let r = waiter.join().unwrap();
    eprintln!(
        "abort -> subscribe error, drop -> token {r:?} after {:?}",
        t.elapsed()
    );
    assert!(r.is_err(), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "drop + wait took {:?}",
        t.elapsed()
    );
    broker.resume();
}

#[test]
fn the_client_can_be_dropped_inside_its_own_callback() {
    let broker = Broker::start();
    let slot: Arc<Mutex<Option<Client>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    let s = slot.clone();
    let client = Client::connect(opts(&broker.uri(), "dcb").on_message(move |_| {
        let c = s.lock().unwrap().take();
        let t = Instant::now();
        drop(c); // the last handle, on the dispatch thread
        let _ = tx.send(t.elapsed());
    }))
    .unwrap();
    client.subscribe("dcb/x", QoS::AtLeastOnce).unwrap();
    *slot.lock().unwrap() = Some(client);
    let other = Client::connect(opts(&broker.uri(), "dco")).unwrap();
    other
        .publish_wait(Message::new("dcb/x", "bye").qos(QoS::AtLeastOnce))
        .unwrap();
    let took = rx
        .recv_timeout(DEADLINE)
        .expect("drop inside the callback returned");
    eprintln!("drop inside on_message took {took:?}");
    assert!(took < Duration::from_secs(3));
    assert!(
        broker.wait_for_log("disconnected.", DEADLINE),
        "no DISCONNECT reached the broker"
    );
}

fn proc_status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Raises the soft open-file limit to the hard limit (the broker started afterwards inherits
/// it); returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
    }
    rl.rlim_cur
}

#[test]
fn a_thousand_clients_in_one_process() {
    let n = 1000usize;
    let limit = raise_fd_limit();
    // 3 descriptors per client (socket, epoll, waker) plus the broker's own per connection.
    assert!(
        limit >= (n * 4) as u64,
        "open-file limit {limit} too low for {n} clients"
    );
    let broker = Broker::builder().extra_config("max_connections -1").start();
    let uri = broker.uri();
    let rss0 = proc_status("VmRSS:");
    let threads0 = proc_status("Threads:");
    let t0 = Instant::now();
    let connected = AtomicUsize::new(0);
    // Connect from 4 threads, to be done in reasonable time on 2 cores.
    let clients: Vec<Client> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (uri, connected) = (&uri, &connected);
                s.spawn(move || {
                    (0..n / 4)
                        .map(|_| {
                            let c = Client::connect(
                                opts(uri, "k").keep_alive(Duration::from_secs(300)),
                            )
                            .expect("connect");
                            connected.fetch_add(1, Ordering::Relaxed);
                            c
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let connect_time = t0.elapsed();
    assert_eq!(clients.len(), n);
    assert!(clients.iter().all(|c| c.state() == State::Connected));
    // One round trip on a sample, to see they all work.
    for c in clients.iter().step_by(100) {
        c.publish_wait(Message::new("k/x", "1").qos(QoS::AtLeastOnce))
            .unwrap();
    }
    let rss1 = proc_status("VmRSS:");
    let threads1 = proc_status("Threads:");
    let per_client_kib = (rss1.saturating_sub(rss0)) as f64 / n as f64;
    let t1 = Instant::now();
    std::thread::scope(|s| {
        let mut chunks: Vec<Vec<Client>> = (0..4).map(|_| Vec::new()).collect();
        for (i, c) in clients.into_iter().enumerate() {
            chunks[i % 4].push(c);
        }
        for chunk in chunks {
            s.spawn(move || {
                for c in chunk {
                    c.close().unwrap();
                }
            });
        }
    });
    let threads2 = proc_status("Threads:");
    eprintln!(
        "{n} clients: connected in {connect_time:?}, closed in {:?}; RSS {rss0} -> {rss1} KiB \
         ({per_client_kib:.1} KiB per client); threads {threads0} -> {threads1} -> {threads2}; \
         fd limit {limit}",
        t1.elapsed()
    );
    // At most one thread per client (quiet clients go dormant and give theirs back); other
    // tests of this binary run threads of their own meanwhile.
    assert!(
        threads1 <= threads0 + n as u64 + 64,
        "{threads1} threads for {n} clients"
    );
    assert!(per_client_kib < 512.0, "{per_client_kib} KiB per client");
    assert!(
        common::wait_until(DEADLINE, || proc_status("Threads:") <= threads0 + 4),
        "threads left behind: {}",
        proc_status("Threads:")
    );
}
