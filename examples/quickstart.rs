//! The README's first command: publish and receive through a broker.
//!
//! cargo run --example quickstart [-- tcp://host:port]
//!
//! Broker choice, in order: the URI given as argument (or in `MQTT_BROKER`); else a broker
//! already listening on localhost:1883; else a `mosquitto` found on this machine, started on a
//! free port; else the tiny broker built into this example (`-- --builtin` forces it). It
//! says which one it used.

#[path = "support/minibroker.rs"]
mod minibroker;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqttsync::{Client, ConnectOptions, Message, ProtocolVersion, QoS};

enum Broker {
    External(String),
    Mosquitto(Child, String),
    Mini(#[allow(dead_code)] minibroker::MiniBroker, String),
}

impl Broker {
    fn uri(&self) -> &str {
        match self {
            Broker::External(u) | Broker::Mosquitto(_, u) | Broker::Mini(_, u) => u,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Mosquitto(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find_broker() -> Broker {
    let arg = std::env::args().nth(1);
    if arg.as_deref() != Some("--builtin") {
        if let Some(b) = find_external(arg) {
            return b;
        }
    }
    let mini = minibroker::MiniBroker::start().expect("start the built-in broker");
    let uri = format!("tcp://127.0.0.1:{}", mini.port());
    println!("using the tiny broker built into this example at {uri}");
    Broker::Mini(mini, uri)
}

fn find_external(arg: Option<String>) -> Option<Broker> {
    if let Some(uri) = arg.or_else(|| std::env::var("MQTT_BROKER").ok()) {
        println!("using the broker you named: {uri}");
        return Some(Broker::External(uri));
    }
    if TcpStream::connect_timeout(
        &"127.0.0.1:1883".parse().unwrap(),
        Duration::from_millis(300),
    )
    .is_ok()
    {
        println!("using the broker already running on localhost:1883");
        return Some(Broker::External("tcp://127.0.0.1:1883".into()));
    }
    let b = start_mosquitto();
    if b.is_none() {
        println!("no broker named, none on localhost:1883 and no mosquitto installed");
    }
    b
}

fn start_mosquitto() -> Option<Broker> {
    let bin = ["mosquitto", "/usr/sbin/mosquitto"].into_iter().find(|b| {
        Command::new(b)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })?;
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new(bin)
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let uri = format!("tcp://127.0.0.1:{port}");
            println!("started the local mosquitto ({bin}) at {uri}");
            return Some(Broker::Mosquitto(child, uri));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = child;
    let _ = child.kill();
    None
}

fn main() {
    let broker = find_broker();
    if let Err(e) = run(broker.uri()) {
        eprintln!("quickstart failed: {}", e.report());
        std::process::exit(1);
    }
}

fn run(uri: &str) -> mqttsync::Result<()> {
    let topic = format!("mqttsync/quickstart/{}", std::process::id());
    let subscriber = Client::connect(
        ConnectOptions::new(uri)
            .client_id(format!("qs-sub-{}", std::process::id()))
            .version(ProtocolVersion::V5)
            .connect_timeout(Duration::from_secs(5)),
    )?;
    subscriber.subscribe(&topic, QoS::ExactlyOnce)?;
    let publisher = Client::connect(
        ConnectOptions::new(uri)
            .client_id(format!("qs-pub-{}", std::process::id()))
            .connect_timeout(Duration::from_secs(5)),
    )?;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let sent = format!("hello at {qos:?}");
        let started = Instant::now();
        let ack = publisher.publish_wait(Message::new(&topic, sent.clone()).qos(qos))?;
        let m = subscriber.messages().recv_timeout(Duration::from_secs(5))?;
        println!(
            "published {sent:?} (packet id {}), received {:?} on {} in {:?}",
            ack.packet_id,
            m.payload_str().unwrap_or("<binary>"),
            m.topic,
            started.elapsed()
        );
        assert_eq!(m.payload_str(), Some(sent.as_str()));
        let took = started.elapsed();
        if qos == QoS::AtLeastOnce && took >= Duration::from_millis(30) {
            // ~40 ms is the delayed-ACK timer: a broker with Nagle's algorithm on holds a
            // small packet until the previous one is acknowledged.
            println!(
                "note: {took:?} for a round trip on a local link usually means the broker \
                 keeps Nagle's algorithm on; mosquitto: `set_tcp_nodelay true` in its config"
            );
        }
    }
    publisher.close()?;
    subscriber.close()?;
    println!("ok: 3 messages published and received");
    Ok(())
}
