//! Connect, subscribe, publish, receive and disconnect, with error handling.
//!
//! cargo run --example basic -- [tcp://localhost:1883]

use std::time::Duration;

use mqttsync::{Client, ConnectOptions, Error, Message, QoS};

fn main() {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://localhost:1883".into());
    if let Err(e) = run(&uri) {
        eprintln!("basic: {}", e.report());
        std::process::exit(1);
    }
}

fn run(uri: &str) -> Result<(), Error> {
    let options = ConnectOptions::new(uri)
        .client_id(format!("mqttsync-basic-{}", std::process::id()))
        .keep_alive(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5));
    let client = match Client::connect(options) {
        Ok(c) => c,
        Err(Error::ConnectionRefused { code, reason, .. }) => {
            eprintln!("the broker refused us: {reason} ({code})");
            return Err(Error::NotConnected);
        }
        Err(e) => return Err(e),
    };
    println!("connected to {uri}");

    let topic = format!("mqttsync/basic/{}", std::process::id());
    let granted = client.subscribe(&topic, QoS::AtLeastOnce)?;
    println!("subscribed to {topic} with QoS {granted:?}");

    // Publish and wait until the broker acknowledged (PUBACK).
    let delivered =
        client.publish_wait(Message::new(&topic, "Hello World!").qos(QoS::AtLeastOnce))?;
    println!("message {} delivered", delivered.packet_id);

    let msg = client.messages().recv_timeout(Duration::from_secs(5))?;
    println!(
        "received on {}: {}",
        msg.topic,
        msg.payload_str().unwrap_or("<binary>")
    );

    client.unsubscribe(&topic)?;
    client.close()?;
    println!("disconnected");
    Ok(())
}
