//! Callbacks for connect, connection lost and arriving messages, instead of a channel.
//! Callbacks run on the client's own dispatch thread and may call the client (here the
//! message callback publishes a reply).
//!
//! cargo run --example callbacks -- [tcp://localhost:1883]

use std::sync::mpsc;
use std::time::Duration;

use mqttsync::{Client, ConnectOptions, Error, Message, QoS};

fn main() {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://localhost:1883".into());
    if let Err(e) = run(&uri) {
        eprintln!("callbacks: {}", e.report());
        std::process::exit(1);
    }
}

fn run(uri: &str) -> Result<(), Error> {
    let pid = std::process::id();
    let requests = format!("mqttsync/cb/{pid}/request");
    let replies = format!("mqttsync/cb/{pid}/reply");
    let (done_tx, done_rx) = mpsc::channel();

    let replies2 = replies.clone();
    let options = ConnectOptions::new(uri)
        .client_id(format!("mqttsync-callbacks-{pid}"))
        .on_connected(|session_present| println!("connected (session present: {session_present})"))
        .on_connection_lost(|cause| println!("connection lost: {cause}"))
        // The message callback gets the client too, to publish a reply.
        .on_message_with_client(move |client: &Client, m: Message| {
            println!(
                "message on {}: {}",
                m.topic,
                m.payload_str().unwrap_or("<binary>")
            );
            if m.topic.ends_with("/request") {
                // Calling the client from inside a callback is allowed.
                let reply =
                    Message::new(&replies2, format!("re: {}", m.payload_str().unwrap_or("")));
                if let Err(e) = client.publish(reply.qos(QoS::AtLeastOnce)) {
                    eprintln!("reply failed: {}", e.report());
                }
            } else {
                let _ = done_tx.send(());
            }
        });
    let client = Client::connect(options)?;
    client.subscribe(&requests, QoS::AtLeastOnce)?;
    client.subscribe(&replies, QoS::AtLeastOnce)?;
    client.publish_wait(Message::new(&requests, "ping").qos(QoS::AtLeastOnce))?;
    done_rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| Error::Timeout {
            step: mqttsync::Step::Receive,
            after: Duration::from_secs(5),
        })?;
    client.disconnect()?;
    Ok(())
}
