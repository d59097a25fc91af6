//! A last will that fires when a client dies, with a persistent session and a connect
//! timeout.
//!
//! A "watcher" subscribes to the status topic with a persistent session; a "device"
//! connects with a will and then dies without saying goodbye (its connection is closed
//! abruptly, as when a process crashes or a cable is pulled). The broker publishes the
//! will, and the watcher sees it.
//!
//! cargo run --example last_will -- [tcp://localhost:1883]

use std::time::Duration;

use mqttsync::{Client, ConnectOptions, Error, Message, QoS};

fn main() {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://localhost:1883".into());
    if let Err(e) = run(&uri) {
        eprintln!("last_will: {}", e.report());
        std::process::exit(1);
    }
}

fn run(uri: &str) -> Result<(), Error> {
    let pid = std::process::id();
    let status = format!("mqttsync/devices/{pid}/status");

    // Persistent session: the broker keeps the subscription and queues QoS 1 messages
    // while the watcher is away.
    let watcher = Client::connect(
        ConnectOptions::new(uri)
            .client_id(format!("watcher-{pid}"))
            .clean_start(false)
            .connect_timeout(Duration::from_secs(3)),
    )?;
    watcher.subscribe(&status, QoS::AtLeastOnce)?;

    let device = Client::connect(
        ConnectOptions::new(uri)
            .client_id(format!("device-{pid}"))
            .keep_alive(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .will(
                Message::new(&status, "offline")
                    .qos(QoS::AtLeastOnce)
                    .retain(true),
            ),
    )?;
    device.publish_wait(Message::new(&status, "online").qos(QoS::AtLeastOnce))?;
    println!("device online");

    // The device dies: no DISCONNECT reaches the broker.
    device.abort();
    println!("device connection dropped");

    let messages = watcher.messages();
    loop {
        let m = messages.recv_timeout(Duration::from_secs(10))?;
        println!(
            "watcher saw {} = {}",
            m.topic,
            m.payload_str().unwrap_or("?")
        );
        if m.payload.as_ref() == b"offline" {
            break;
        }
    }
    // Clean up the retained will and the persistent session.
    watcher.publish_wait(Message::new(&status, "").qos(QoS::AtLeastOnce).retain(true))?;
    watcher.close()?;
    drop(device);
    let cleanup = Client::connect(ConnectOptions::new(uri).client_id(format!("watcher-{pid}")))?;
    cleanup.close()?;
    Ok(())
}
